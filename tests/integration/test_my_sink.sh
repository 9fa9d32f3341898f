#!/usr/bin/env bash
# The MariaDB sink (lib/mysink.c) against a real MariaDB 10.11, driven by
# tests/tools/sinkdrive the way the applier drives it: multi-row batching,
# order within a batch, key changes, partial images, idempotent deletes,
# truncate, exactly-once position, rollback, isolate mode turning
# unmappable values and refusals into failed records, schema errors parking
# changes, freeze violations, every value conversion through the server,
# and a crash of the target between (and inside) batches.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_start_mariadb TGT

DRIVE=$TOOLS/sinkdrive
drive() { # NAME < script: runs the driver, output in $T_TMP/out (also on failure)
	"${T_WRAP[@]}" "$DRIVE" mysql "$TGT_DSN" "$1" >"$T_TMP/out" 2>"$T_TMP/err" ||
		{
			cat "$T_TMP/out" "$T_TMP/err" >&2
			fail "sinkdrive $1 failed"
		}
	cat "$T_TMP/out"
}
q() { harness_sql TGT "$1"; }
status() { q "SHOW GLOBAL STATUS LIKE '$1'" | cut -f2; }

q "CREATE TABLE t1 (id int PRIMARY KEY, v varchar(20), n int, d double, big text);
CREATE TABLE k2 (a int, b varchar(10), v text, PRIMARY KEY (a, b));
CREATE TABLE t3 (id int PRIMARY KEY, v text);
CREATE TABLE s1 (id int PRIMARY KEY, v varchar(5), d double, nn int NOT NULL);
CREATE TABLE drift (id int PRIMARY KEY, v text);
CREATE TABLE nouniq (id int, v text);
CREATE TABLE tags (a int, b varchar(10), PRIMARY KEY (a, b));
CREATE TABLE logt (id int, v text);
CREATE TABLE ty (id int PRIMARY KEY, u8 bigint unsigned, dc decimal(10,2), f float,
  dbl double, bo tinyint(1), bt bit(4), ts timestamp(6) NULL, dt datetime(6), dd date,
  tm time(6), y year, u uuid, ip inet6, vb varbinary(10), j json, e enum('x','y'), tx text)"

TABLES="table 1 test.t1 id:int4:key v:text n:int4 d:float8 big:text
table 2 test.k2 a:int4:key b:text:key v:text
table 3 test.t3 id:int4:key v:text
table 4 test.s1 id:int4:key v:text d:float8 nn:int4
table 5 test.drift id:int4:key v:text
table 6 test.nouniq id:int4:key v:text
table 7 test.ty id:int4:key u8:numeric dc:numeric f:float4 dbl:float8 bo:bool bt:bit ts:timestamptz dt:timestamp dd:date tm:interval y:int2 u:uuid ip:inet vb:bytea j:jsonb e:text tx:text
table 8 test.tags a:int4:key b:text:key
table 9 test.logt id:int4 v:text"
RELS="rel 1 test.t1 id:int4:key v:text n:int4 d:float8 big:text
rel 2 test.k2 a:int4:key b:text:key v:text
rel 3 test.t3 id:int4:key v:text
rel 4 test.s1 id:int4:key v:text d:float8 nn:int4
rel 7 test.ty id:int4:key u8:numeric dc:numeric f:float4 dbl:float8 bo:bool bt:bit ts:timestamptz dt:timestamp dd:date tm:interval y:int2 u:uuid ip:inet vb:bytea j:jsonb e:text tx:text
rel 8 test.tags a:int4:key b:text:key
rel 9 test.logt id:int4 v:text"

# --- 1. thousands of rows in one batch travel as multi-row statements ---------------
ins0=$(status Com_insert)
out=$(drive t <<EOF
$TABLES
open
$RELS
txn pg:0/10
begin
insgen 1 1 5000 {} val-{} {} {}.5 big-{}
insgen 3 1 3 {} t3-{}
commit pg:0/100 1700000000123456
EOF
)
assert_contains "$out" "applied=none commit_us=0" "first open: nothing applied"
assert_eq "$(q "SELECT count(*), sum(n), min(id), max(id) FROM t1")" $'5000\t12502500\t1\t5000' "5000 rows"
assert_eq "$(q "SELECT v, n, d, big FROM t1 WHERE id = 4321")" $'val-4321\t4321\t4321.5\tbig-4321' "row values"
# 5 INSERTs of 1000 rows for t1, 1 for t3, 1 for the progress row
assert_eq "$(($(status Com_insert) - ins0))" 7 "INSERT statements for 5003 rows"
assert_eq "$(q "SELECT applied_pos, applied_txns, applied_changes, applied_commit_time FROM migd.progress WHERE name = 't'")" \
	$'pg:0/100\t1\t5003\t2023-11-14 22:13:20.123456' "progress row"
# sql_log_bin stays on: the applied rows and migd's progress row are in the target's binlog
binlog=$(q "SHOW BINLOG EVENTS")
assert_contains "$binlog" "(test.t1)" "applied rows binlogged"
assert_contains "$binlog" "(migd.progress)" "progress row binlogged"
ok "5003 inserts in one batch: 6 multi-row statements of at most 1000 rows, progress in the same transaction"

# --- 2. order within one batch, key changes, partial images, deletes, truncate ------
del0=$(status Com_delete)
out=$(drive t <<EOF
$TABLES
open
$RELS
txn pg:0/150
begin
# insert -> update -> delete -> insert of the same keys, interleaved
ins 1 7001 a 1 1 x
upd 1 7001 b 2 2 x
del 1 7001
ins 1 7002 a 1 1 x
upd 1 7002 b 2 2 x
ins 1 7003 a 1 1 x
del 1 7003
ins 1 7003 c 3 3 x
ins 1 7003 d 4 4 x
# a key-changing update (old key given)
updk 1 7002 / 7004 moved 4 4 y
# composite key: insert, move, delete
ins 2 1 x v1
ins 2 1 y v2
updk 2 1 x / 2 x moved
del 2 1 y
# partial image: n changes, v d big are unchanged TOAST and must stay
upd 1 5 \U 99 \U \U
upd 1 999999 \U 1 \U \U
# deletes of missing rows are no-ops; 2000 deletes in 2 statements
del 1 888888
delgen 1 1001 3000 {}
# truncate, then a row in the same batch
trunc 3
ins 3 10 after
# a table whose columns are all key columns; a keyless (insert-only) table
ins 8 1 x
ins 8 1 x
ins 8 1 y
del 8 1 y
ins 9 1 a
ins 9 1 a
commit pg:0/200 1700000001000000
counts
open
EOF
)
assert_eq "$(q "SELECT count(*) FROM t1 WHERE id = 7001")" 0 "insert-update-delete"
assert_eq "$(q "SELECT v, n FROM t1 WHERE id = 7003")" $'d\t4' "insert-delete-insert-upsert"
assert_eq "$(q "SELECT count(*) FROM t1 WHERE id = 7002")" 0 "key change: old key gone"
assert_eq "$(q "SELECT v, n, big FROM t1 WHERE id = 7004")" $'moved\t4\ty' "key change: new key"
assert_eq "$(q "SELECT a, b, v FROM k2 ORDER BY a, b")" $'2\tx\tmoved' "composite key moved, other deleted"
assert_eq "$(q "SELECT v, n, d, big FROM t1 WHERE id = 5")" $'val-5\t99\t5.5\tbig-5' "partial image"
assert_eq "$(q "SELECT count(*) FROM t1 WHERE id = 999999")" 0 "partial image of a missing row"
assert_eq "$(q "SELECT count(*) FROM t1")" 3002 "2000 deletes"
assert_eq "$(q "SELECT group_concat(id, ':', v) FROM t3")" "10:after" "truncate then insert"
assert_eq "$(q "SELECT a, b FROM tags")" $'1\tx' "all-key table: upsert and delete"
assert_eq "$(q "SELECT count(*) FROM logt WHERE id = 1 AND v = 'a'")" 2 "insert-only table"
assert_contains "$out" "changes=2024 failed=0 parked=0 missing=1" "counts"
assert_contains "$out" "applied=pg:0/200 commit_us=1700000001000000" "position read back"
# one per run of deletes (7001, 7003, the key changes of t1 and k2, k2's delete),
# 3 for the 2001 consecutive deletes, 1 for the truncate, 1 for tags
assert_eq "$(($(status Com_delete) - del0))" 10 "DELETE statements"
ok "order within a batch kept (same key repeated, key changes, composite keys, all-key and keyless tables); partial image keeps unchanged columns; missing-row delete and update are no-ops; truncate is a DELETE in the batch; 2001 consecutive deletes in 3 statements"

# --- 3. rollback leaves nothing; normal-mode refusals fail the batch ----------------
out=$(drive t <<EOF
$TABLES
open
$RELS
begin
ins 1 9999 gone 1 1 x
insgen 1 20001 21500 {} r {} 1 x
rollback
open
begin
ins 4 1 ok 1 1
!ins 4 2 toolong 1 1
rollback
begin
ins 4 3 ok 1 \N
!commit pg:0/250
rollback
open
EOF
)
assert_eq "$(q "SELECT count(*) FROM t1 WHERE id = 9999 OR id > 20000")" 0 "rolled back rows"
assert_eq "$(q "SELECT count(*) FROM s1")" 0 "failed batches left nothing"
assert_contains "$out" "failed: unmappable value for test.s1.v: text of 7 characters is longer than varchar(5)" \
	"normal mode: unmappable value fails the change"
assert_contains "$out" "failed: target: Column 'nn' cannot be null" "normal mode: refusal fails the commit"
assert_eq "$(grep -c 'applied=pg:0/200 ' <<<"$out")" 3 "position unchanged after rollbacks"
ok "rollback leaves no rows and the position unchanged; in normal mode an unmappable value or a refusal fails the batch"

# --- 4. isolate mode: refusals become failed records, the rest commits ---------------
out=$(drive t <<EOF
$TABLES
open
$RELS
txn pg:0/300
begin isolate
ins 4 1 ok 1 1
ins 4 2 toolong 1 1
ins 4 3 ok NaN 1
ins 4 4 ok 1 \N
updk 4 9 / 5 toolong 2 2
ins 4 5 fine 5 5
upd 9 1 b
commit pg:0/310
counts
EOF
)
assert_eq "$(q "SELECT group_concat(id, ':', v ORDER BY id) FROM s1")" "1:ok,5:fine" "accepted changes"
assert_contains "$out" "changes=2 failed=5 parked=0 missing=0" "counts"
fr=$(q "SELECT table_name, source_pos, \`key\`, JSON_VALUE(\`change\`, '$.op'), error FROM migd.failed_records ORDER BY id")
assert_contains "$fr" $'test.s1\tpg:0/300\t{"id":"2"}\tinsert\tunmappable value for test.s1.v: text of 7 characters is longer than varchar(5)' "failed: too long"
assert_contains "$fr" $'{"id":"3"}\tinsert\tunmappable value for test.s1.d: NaN has no MariaDB double value' "failed: NaN"
assert_contains "$fr" $'{"id":"4"}\tinsert\ttarget: Column \'nn\' cannot be null' "failed: server refusal"
assert_contains "$fr" $'{"id":"5"}\tupdate\tunmappable value' "failed: key-changing update"
assert_contains "$fr" $'test.logt\tpg:0/300\t{}\tupdate\ttest.logt is insert-only but received an UPDATE' "failed: insert-only"
assert_eq "$(q "SELECT JSON_VALUE(\`change\`, '$.new.v') FROM migd.failed_records WHERE \`key\` = '{\"id\":\"2\"}'")" toolong "change kept"
assert_eq "$(q "SELECT applied_pos FROM migd.progress")" pg:0/310 "position"
ok "isolate mode: too long text, NaN, NOT NULL refusal, a key change and an update of an insert-only table become failed records (table, key, position, change, error); the rest commits"

# A row larger than max_allowed_packet would make the server drop the link on every
# retry: it is refused before it is sent, and its failed record omits the values.
q "SET GLOBAL max_allowed_packet = 16384"
big=$(head -c 20000 /dev/zero | tr '\0' a)
out=$(drive t <<EOF
$TABLES
open
$RELS
txn pg:0/320
begin
!ins 1 40000 v 1 1 $big
rollback
begin isolate
ins 1 40000 v 1 1 $big
ins 1 40001 small 1 1 x
commit pg:0/330
EOF
)
q "SET GLOBAL max_allowed_packet = DEFAULT"
assert_contains "$out" "failed: unmappable row for test.t1: 20" "normal mode"
assert_contains "$out" "bytes of SQL do not fit the target's max_allowed_packet (16384)" "reason"
assert_eq "$(q "SELECT group_concat(id) FROM t1 WHERE id >= 40000")" 40001 "the rest commits"
assert_eq "$(q "SELECT \`key\`, \`change\` FROM migd.failed_records WHERE table_name = 'test.t1'")" \
	$'{"id":"40000"}\t{"op":"insert","bytes":20069,"omitted":"larger than half the target\'s max_allowed_packet"}' \
	"failed record without the values"
ok "a row larger than the target's max_allowed_packet is a failed record (key kept, values omitted), not a retry loop"

# --- 5. schema errors park changes; freeze violations ---------------------------------
out=$(drive t <<EOF
$TABLES
open
$RELS
rel 5 test.drift id:int4:key v:text extra:text
rel 6 test.nouniq id:int4:key v:text
txn pg:0/400
begin
ins 5 1 a b
upd 5 1 c d
del 5 1
ins 6 1 a
trunc 5
ins 1 8000 applied 1 1 x
violation pg:0/390 pg:0/400 1234 test.t1
commit pg:0/410
begin
violation pg:0/390 pg:0/420 1235 test.t1
rollback
violations pg:0/390
violations pg:0/1
schema_errors
counts
EOF
)
assert_contains "$out" "schema_errors=test.drift: schema changed on the source: the source now has 3 columns, 2 at capture|test.nouniq: target table \`test\`.\`nouniq\` has no PRIMARY KEY or UNIQUE index on the key columns: upserts would duplicate rows" "schema errors"
assert_contains "$out" "changes=1 failed=0 parked=5 missing=0" "counts"
assert_eq "$(q "SELECT count(*) FROM drift")" 0 "nothing applied to drift"
assert_eq "$(q "SELECT count(*) FROM nouniq")" 0 "nothing applied to nouniq"
assert_eq "$(q "SELECT count(*) FROM t1 WHERE id = 8000")" 1 "other tables applied"
parked=$(q "SELECT table_name, source_pos, JSON_VALUE(\`change\`, '$.op'), reason FROM migd.parked ORDER BY id")
assert_eq "$(cut -f1,3 <<<"$parked" | tr '\t\n' ': ')" "test.drift:insert test.drift:update test.drift:delete test.nouniq:insert test.drift:truncate " "parked in order"
assert_contains "$parked" $'test.drift\tpg:0/400\tinsert\tschema changed on the source: the source now has 3 columns, 2 at capture key={"id":"1"}' "parked row"
assert_contains "$out" "violations=1" "violation committed with its batch"
assert_contains "$out" "violations=0" "violations of another freeze position"
assert_eq "$(q "SELECT name, freeze_pos, source_pos, xid, table_name FROM migd.freeze_violations")" \
	$'t\tpg:0/390\tpg:0/400\t1234\ttest.t1' "violation row"
assert_eq "$(q "SHOW BINLOG EVENTS" | grep -c "CREATE TABLE IF NOT EXISTS migd.progress")" 1 \
	"migd's tables created once, not on every open"
ok "schema errors (source drift, target without a unique key) park changes in order with the reason; freeze violations are recorded in the batch"

# --- 6. every value form through the server --------------------------------------------
out=$(drive t <<'EOF'
table 7 test.ty id:int4:key u8:numeric dc:numeric f:float4 dbl:float8 bo:bool bt:bit ts:timestamptz dt:timestamp dd:date tm:interval y:int2 u:uuid ip:inet vb:bytea j:jsonb e:text tx:text
open
rel 7 test.ty id:int4:key u8:numeric dc:numeric f:float4 dbl:float8 bo:bool bt:bit ts:timestamptz dt:timestamp dd:date tm:interval y:int2 u:uuid ip:inet vb:bytea j:jsonb e:text tx:text
begin
ins 7 1 18446744073709551615 -12.50 3.4028235e+38 -1e+300 t 0101 2024-01-02%2003:04:05.5+05:30 2024-01-02%2003:04:05.25 2024-02-29 -00:00:01.5 2024 550e8400-e29b-41d4-a716-446655440000 ::ffff:1.2.3.4 \x00ff {"a":%201} x %f0%9d%84%9e%27%5c%22%0a
ins 7 2 0 0 0 0 f 0 1970-01-01%2000:00:01+00 1000-01-01%2000:00:00 9999-12-31 838:59:59 0 \N \N \x \N \N \E
ins 7 3 \N \N \N \N \N \N \N \N \N \N \N \N \N \N \N \N \N
commit pg:0/500
EOF
)
# TIMESTAMP is shown in the session's time zone: UTC, as migd's sessions
assert_eq "$(q "SET time_zone = '+00:00'; SELECT id, u8, dc, f > 3.4e38, dbl, bo, LPAD(BIN(bt), 4, '0'), ts, dt, dd, tm, y, u, ip, HEX(vb), j, e, HEX(tx) FROM ty WHERE id = 1")" \
	$'1\t18446744073709551615\t-12.50\t1\t-1e300\t1\t0101\t2024-01-01 21:34:05.500000\t2024-01-02 03:04:05.250000\t2024-02-29\t-00:00:01.500000\t2024\t550e8400-e29b-41d4-a716-446655440000\t::ffff:1.2.3.4\t00FF\t{"a": 1}\tx\tF09D849E275C220A' "row 1"
assert_eq "$(q "SET time_zone = '+00:00'; SELECT id, u8, dc, f, dbl, bo, BIN(bt), ts, dt, dd, tm, y, u IS NULL, ip IS NULL, HEX(vb), vb IS NULL, j IS NULL, e IS NULL, tx, tx IS NULL FROM ty WHERE id = 2")" \
	$'2\t0\t0.00\t0\t0\t0\t0\t1970-01-01 00:00:01.000000\t1000-01-01 00:00:00.000000\t9999-12-31\t838:59:59.000000\t0000\t1\t1\t\t0\t1\t1\t\t0' "row 2: edges; empty strings are not NULL"
nulls=$(for c in u8 dc f dbl bo bt ts dt dd tm y u ip vb j e tx; do printf '(%s IS NULL) + ' "$c"; done)
assert_eq "$(q "SELECT ${nulls}0 FROM ty WHERE id = 3")" 17 "row 3: NULLs"
ok "every PostgreSQL text form is accepted by MariaDB as the exact value (unsigned bigint max, FLOAT max, offsets to UTC, negative TIME, bit, uuid, inet6, bytea, json, 4-byte UTF-8, empty vs NULL)"

# --- 7. the target crashes inside a batch and between batches ----------------------------
rm -f "$T_TMP/go"
"${T_WRAP[@]}" "$DRIVE" mysql "$TGT_DSN" t >"$T_TMP/crash.out" 2>"$T_TMP/crash.err" <<EOF &
$TABLES
open
$RELS
begin
ins 1 30000 before 1 1 x
commit pg:0/600
begin
insgen 1 30001 32000 {} lost {} 1 x
pause $T_TMP/go
!commit pg:0/700
reopen
begin
insgen 1 30001 32000 {} again {} 1 x
commit pg:0/700 1700000002000000
EOF
drv=$!
t_on_exit "kill $drv 2>/dev/null"
wait_for 30 'grep -qs paused "$T_TMP/crash.out"' || fail "driver did not pause: $(cat "$T_TMP/crash.err")"
# 1000 of the 2000 rows were sent inside the open transaction
harness_restart TGT --crash
touch "$T_TMP/go"
wait "$drv" || fail "driver failed after the crash: $(cat "$T_TMP/crash.out" "$T_TMP/crash.err")"
out=$(cat "$T_TMP/crash.out")
sed 's/^/# /' <<<"$out"
assert_contains "$out" "(broken)" "the lost link marks the sink broken"
assert_contains "$out" "applied=pg:0/600 commit_us=0" "reopened at the last committed position"
assert_eq "$(q "SELECT count(*), min(v), max(v) FROM t1 WHERE id BETWEEN 30000 AND 32000")" $'2001\tagain\tbefore' "no row of the lost batch, all of the replay"
assert_eq "$(q "SELECT applied_pos, applied_commit_time FROM migd.progress WHERE name = 't'")" $'pg:0/700\t2023-11-14 22:13:22.000000' "position after the crash"
ok "after a crash of the target inside a batch the sink reports a broken link, reopens at the committed position and the replayed batch commits"

out=$(drive t <<EOF
$TABLES
open
EOF
)
assert_contains "$out" "applied=pg:0/700 commit_us=1700000002000000" "position survives"
ok "position and commit time survive the crash and a new connection"
