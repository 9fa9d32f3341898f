#!/usr/bin/env bash
# test_my_validate: validation that can say no, for a MariaDB source and a
# PostgreSQL target.
#
# The same rows are put on MariaDB and on the PostgreSQL target by the test
# (the target loaded from mysnap's COPY lines through myrender) and the
# backfill ledger is planned as migd plans it and marked done (myvalidate
# plan): nothing depends on migd's own backfill from MariaDB.  Sections 1-5
# run validation as migd runs it (myvalidate run: validate_thread() with a
# simulated applier, so fencing can be held back); section 6 runs migd,
# which finds its ledger done and goes to CDC, and validates through
# migctl with the real applier, key log and applied-past check.
#
#  1. Canonical form: a table's digest is the same from MariaDB (mysnap
#     lines hashed here), from PostgreSQL's server-side SQL and from
#     PostgreSQL's own COPY TO STDOUT hashed here; on a PostgreSQL-only
#     table of types the mapping never produces (boolean, inet, char(n),
#     arrays, jsonb, infinities, NaN) the server-side SQL is byte for byte
#     COPY's, row by row.
#  2. Identical data: counts, checksums (per ledger chunk), invariants and
#     queries pass with 0 mismatches; every result holds for a source
#     position in GTID@binlog form at or after the one before the run.
#  3. Divergence on the target behind migd's back -- a changed value, a
#     missing row, an extra row, a decimal off in the last digit, a
#     timestamp shifted by an hour, a trailing space, a case difference,
#     and a text key holding a tab -- is found with the right key, issue
#     and columns (both sides' values); max_keys bounds the listing;
#     counts see a row count difference; a broken invariant and a read
#     comparison show their rows.
#  4. Recent writes: only the keys of batches committed after --since are
#     compared (key log written with keylog.h's writer).
#  5. Fencing: a source change the applier has not applied makes the
#     check wait for the fence (the binlog position read after the source
#     read) and pass once it is applied; never applied, the run fails
#     naming the position it waited for.
#  6. migd (synced on the binlog) validates a MariaDB source through
#     migctl: a clean run passes at GTID@binlog positions; recent writes
#     come from the applier's key log; tampering is found by checksums and
#     recent, stored in migd.validation and shown in the gate with the
#     source's position.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
# shellcheck source=../harness/harness.sh
source "$MIGD_SRCDIR/tests/harness/harness.sh"

myrender() { "${T_WRAP[@]}" "$TOOLS/myrender" "$@"; }
myvalidate() { "${T_WRAP[@]}" "$TOOLS/myvalidate" "$@"; }
# vrun RC ARGS...: myvalidate run ARGS expecting exit status RC; the JSON in $OUT (stderr apart).
vrun() {
	local want=$1 rc=0
	shift
	OUT=$(myvalidate run "$@" 2>"$T_TMP/vrun.err") || rc=$?
	[[ $rc == "$want" ]] ||
		fail "'myvalidate run $*' exited $rc, expected $want: $OUT $(cat "$T_TMP/vrun.err")"
}
harness_pair mariadb postgresql # SRC: MariaDB, TGT: PostgreSQL

# The source's position now, GTID@binlog (as validation reads it).
src_pos() {
	local g f o
	g=$(harness_sql SRC "SELECT @@gtid_binlog_pos")
	read -r f o < <(harness_sql SRC "SHOW MASTER STATUS" | awk '{print $1, $2}')
	echo "gtid:$g@$f:$o"
}
# pos_scalar() of a GTID@binlog or binlog: position: file number << 32 | offset.
scalar() {
	local c=${1##*@}
	c=${c#binlog:}
	local f=${c%:*} o=${c##*:}
	echo $((10#${f##*.} << 32 | o))
}
GTID_RE='^gtid:[0-9]+-[0-9]+-[0-9]+@mariadb-bin\.[0-9]{6}:[0-9]+$'

# One line per result and per differing key and column, for assertions:
#   result <schema.table|check> <kind> ok=<bool> [source/target rows] [position]
#   key <table> <kind> <key json> <issue>
#   col <table> <key json> <column>: source <json> target <json> [status]
summary() {
	python3 -c '
import json, sys
v = json.load(sys.stdin)
for r in v["results"]:
    name = r.get("name") or "%s.%s" % (r["schema"], r["table"])
    pos = r.get("position") or r.get("position_min") or r.get("since") or "-"
    print("result", name, r["kind"], "ok=%s" % str(r["ok"]).lower(), r.get("source_rows"),
          r.get("target_rows"), pos)
    for p in ("position", "position_max", "position_min", "since"):
        if p in r: print("pos", r[p])
    for k in r.get("keys", []):
        kj = json.dumps(k["key"], separators=(",", ":"), ensure_ascii=False)
        print("key", name, r["kind"], kj, k["issue"])
        for c in k.get("columns", []):
            print("col", name, kj, c["column"] + ": source", json.dumps(c["source"], ensure_ascii=False),
                  "target", json.dumps(c["target"], ensure_ascii=False), c.get("source_status", ""))
print("mismatches", v["mismatches"])
print("status", v["status"])
print("pos", v["position_min"])
print("pos", v["position_max"])'
}

# --------------------------------------------------------------- data on both sides
harness_sql SRC "SET time_zone = '+00:00';
CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner VARCHAR(40) NOT NULL,
  balance DECIMAL(12,2) NOT NULL, updated TIMESTAMP(6) NOT NULL, active BOOLEAN, photo BLOB);
INSERT INTO accounts SELECT seq, CONCAT('owner ', seq), seq * 1.25,
  TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq MINUTE, seq % 2 = 0, UNHEX(MD5(seq))
  FROM seq_1_to_20000;
CREATE TABLE tags (k VARCHAR(20) PRIMARY KEY, note TEXT, at DATETIME(3), n DOUBLE);
INSERT INTO tags VALUES ('a', 'plain', '2020-01-01 00:00:00.5', 0.1), ('Z', 'upper', NULL, -0e0),
  ('a\tb', 'tab in the key', '2020-01-02 03:04:05', 1e300), ('b c', 'back\\\\slash\nnewline', NULL, NULL),
  ('{q,\"x\"}', 'quotes ''\"', '1000-01-01 00:00:00', 3.5), ('é', 'Grüße ☃ 😀', NULL, 2.5e-300),
  ('NULL', NULL, NULL, 1), ('', 'empty key', NULL, 2);
CREATE TABLE kinds (id INT PRIMARY KEY, d DECIMAL(20,6), f FLOAT, dbl DOUBLE, da DATE, t TIME(6),
  dt DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, y YEAR, c CHAR(10), e ENUM('x','y'),
  s SET('p','q'), b BIT(10), j JSON, u UUID, i6 INET6, i4 INET4, vb VARBINARY(10), tx TEXT);
INSERT INTO kinds SELECT seq, seq / 7, seq / 3, seq / 9, DATE'2000-01-01' + INTERVAL seq DAY,
  SEC_TO_TIME(seq * 61.5 - 3000), TIMESTAMP'2010-05-06 07:08:09.123456' + INTERVAL seq HOUR,
  FROM_UNIXTIME(1600000000 + seq), 1901 + seq % 200, IF(seq % 3, 'ab  ', NULL), ELT(1 + seq % 2, 'x', 'y'),
  IF(seq % 4, 'p,q', ''), seq % 1024, CONCAT('{\"n\": ', seq, '}'),
  CONCAT('00000000-0000-1000-8000-', LPAD(HEX(seq), 12, '0')), CONCAT('::', HEX(seq)),
  CONCAT('10.0.', seq % 256, '.', seq DIV 256), UNHEX(LPAD(HEX(seq), 6, '0')),
  CONCAT('line ', seq, IF(seq % 5 = 0, '\r\n\\\\\t', ''))
  FROM seq_1_to_500;
CREATE TABLE live (id INT PRIMARY KEY, n BIGINT NOT NULL);
INSERT INTO live SELECT seq, 0 FROM seq_1_to_3000;"
for t in accounts tags kinds live; do
	myrender ddl "$SRC_DSN" "test.$t" | harness_sql TGT - >/dev/null
	myrender snap "$SRC_DSN" "test.$t" | {
		echo "COPY test.$t FROM STDIN;"
		cat
		echo '\.'
	} | harness_sql TGT - >/dev/null
done

mkdir -p "$T_TMP/state"
conf() { # FILE [more [validation] lines...]
	local f=$1
	shift
	local more
	more=$(printf '%s\n' "$@")
	cat >"$f" <<-EOF
		[migration]
		name = t
		state_dir = $T_TMP/state
		[source]
		engine = mariadb
		dsn = $SRC_DSN
		[target]
		engine = postgresql
		dsn = $TGT_DSN
		[tables]
		include = test.*
		[backfill]
		chunk_rows = 1000
		[apply]
		batch_delay = 50ms
		[validation]
		rechecks = 2
		recheck_wait = 3s
		$more
		[control]
		socket = $T_SOCK
		[metrics]
		port = 0
		[invariant balance_total]
		source = SELECT sum(balance) FROM accounts
		target = SELECT sum(balance) FROM test.accounts
		[invariant no_negative_balance]
		expect = empty
		target = SELECT id, balance FROM test.accounts WHERE balance < 0
		[query small_balances]
		source = SELECT owner, balance FROM accounts WHERE balance < 2 ORDER BY balance, id
		target = SELECT owner, balance FROM test.accounts WHERE balance < 2 ORDER BY balance, id
		[query per_day]
		source = SELECT DATE_FORMAT(updated, '%Y-%m-%d'), COUNT(*) FROM accounts GROUP BY 1
		target = SELECT to_char(updated, 'YYYY-MM-DD'), count(*) FROM test.accounts GROUP BY 1
	EOF
}
CONF=$T_TMP/my.conf
conf "$CONF"
OUT=$(myvalidate plan "$CONF" 1000)
assert_contains "$OUT" $'test.accounts\t21' "ledger: accounts in 21 chunks (the last one open)"
assert_contains "$OUT" $'test.tags\t1' "ledger: tags in 1 chunk"

# ------------------------------------------------------------- 1: canonical form agrees
for t in accounts tags kinds live; do
	expect_rc 0 myvalidate pgdigest "$TGT_DSN" "test.$t"
	server=$(grep '^server ' <<<"$OUT") copy=$(grep '^copy ' <<<"$OUT")
	my=$(myvalidate mydigest "$SRC_DSN" "test.$t")
	assert_eq "${copy#copy }" "${server#server }" "$t: PostgreSQL server-side digest vs COPY"
	assert_eq "${my#mariadb }" "${server#server }" "$t: MariaDB digest vs PostgreSQL"
done
ok "canonical form: MariaDB (mysnap, hashed here), PostgreSQL in SQL and PostgreSQL's COPY hashed here agree on every table"

harness_sql TGT "CREATE SCHEMA pgonly;
CREATE TABLE pgonly.kinds (id int PRIMARY KEY, b boolean, i inet, ci cidr, c char(6), a text[],
  jb jsonb, tz timestamptz, ts timestamp, iv interval, n numeric, f float8, r real, bt bit varying(8),
  bya bytea, m macaddr, tt time with time zone, x xml, p point, e int4range);
INSERT INTO pgonly.kinds VALUES
 (1, true, '10.1.2.3', '10.1.0.0/16', 'ab', ARRAY['x y', 'q\"', 'back\\slash', NULL, ''],
  '{\"k\": [1, \"t\\tab\"]}', 'infinity', '-infinity', '1 year 2 days 03:04:05.5', 'NaN', 'Infinity',
  '-0', B'101', '\\x00ff5c', '08:00:2b:01:02:03', '04:05:06+02', '<a>\\</a>', '(1,2)', '[1,5)'),
 (2, false, '::1/64', '::/0', 'é', '{}', '\"s\"', '2026-03-29 01:30:00+00', '1999-12-31 23:59:59.999999',
  '-1 mons', '-0.000100', '1e-300', 'NaN', B'', '\\x', NULL, NULL, NULL, NULL, 'empty'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, '0001-01-01 00:00:00+00 BC', NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, true, '1.2.3.4/32', '1.2.3.4/32', E'tab\\t', ARRAY[E'new\\nline'], 'null', now(), now(),
  '0', 12345678901234567890.123, 0.1, 0.1, B'11111111', E'\\\\x0a0d', NULL, NULL,
  E'<t>\\r</t>', NULL, NULL)"
expect_rc 0 myvalidate pgdigest "$TGT_DSN" pgonly.kinds
assert_not_contains "$OUT" "row " "pgonly: every row's server-side text is COPY's"
assert_contains "$OUT" "server 4/" "pgonly: 4 rows"
ok "canonical form: PostgreSQL's server-side text is COPY's, row by row, also for types a PostgreSQL source brings (boolean, inet, char(n), arrays, jsonb, infinities, NaN, xml)"

# ------------------------------------------------------------- 2: identical data passes
before=$(src_pos)
vrun 0 "$CONF" counts,checksums,invariants,queries
s=$(summary <<<"$OUT")
assert_contains "$s" "mismatches 0" "clean: no mismatch"
assert_contains "$s" "status done" "clean: done"
for t in accounts tags kinds live; do
	assert_contains "$s" "result test.$t counts ok=true" "clean: $t counts"
	assert_contains "$s" "result test.$t checksums ok=true" "clean: $t checksums"
done
assert_contains "$s" "result test.accounts counts ok=true 20000 20000" "clean: counted rows"
assert_contains "$(jfield .results.1.chunks <<<"$OUT")" "21" "clean: checksums per ledger chunk"
# MariaDB's rows hashed here as PostgreSQL's hashtextextended() hashes the target's.
assert_eq "$(jfield .results.1.digest <<<"$OUT")" hashtextextended "clean: digest kind"
for c in balance_total no_negative_balance small_balances per_day; do
	assert_contains "$s" "result $c " "clean: check $c ran"
done
assert_not_contains "$s" "ok=false" "clean: every check passes"
while read -r _ p; do
	[[ $p =~ $GTID_RE ]] || fail "position '$p' is not GTID@binlog"
	(($(scalar "$p") >= $(scalar "$before"))) || fail "result holds for $p, before the run ($before)"
done < <(grep '^pos ' <<<"$s")
ok "identical data: counts, checksums (21 ledger chunks), invariants and queries (per_day: DATE_FORMAT on MariaDB, to_char on PostgreSQL) pass; every result holds for a GTID@binlog position >= $before"

# ------------------------------------------------------------- 3: divergence behind migd's back
harness_sql TGT "
UPDATE test.accounts SET owner = 'tampered' WHERE id = 10;
DELETE FROM test.accounts WHERE id = 20;
INSERT INTO test.accounts VALUES (999999, 'ghost', 1, now(), 1, NULL);
UPDATE test.accounts SET balance = balance + 0.01 WHERE id = 30;
UPDATE test.accounts SET updated = updated + interval '1 hour' WHERE id = 40;
UPDATE test.accounts SET owner = owner || ' ' WHERE id = 50;
UPDATE test.accounts SET owner = upper(owner) WHERE id = 60;
UPDATE test.tags SET note = 'changed' WHERE k = E'a\\tb';
UPDATE test.kinds SET d = d + 0.000001, tx = NULL WHERE id = 7;"
vrun 5 "$CONF" checksums
s=$(summary <<<"$OUT")
assert_contains "$s" "result test.accounts checksums ok=false" "accounts: mismatch reported"
assert_eq "$(python3 -c 'import json,sys; print([r["differing_keys"] for r in json.load(sys.stdin)["results"] if r["table"] == "accounts"][0])' <<<"$OUT")" 7 "accounts: 7 differing keys"
for want in 'key test.accounts checksums {"id":"10"} differs' \
	'col test.accounts {"id":"10"} owner: source "owner 10" target "tampered"' \
	'key test.accounts checksums {"id":"20"} missing on target' \
	'key test.accounts checksums {"id":"999999"} extra on target' \
	'col test.accounts {"id":"30"} balance: source "37.50" target "37.51"' \
	'col test.accounts {"id":"40"} updated: source "2026-01-01 00:40:00+00" target "2026-01-01 01:40:00+00"' \
	'col test.accounts {"id":"50"} owner: source "owner 50" target "owner 50 "' \
	'col test.accounts {"id":"60"} owner: source "owner 60" target "OWNER 60"' \
	'col test.tags {"k":"a\tb"} note: source "tab in the key" target "changed"' \
	'col test.kinds {"id":"7"} d: source "1.000000" target "1.000001"' \
	'col test.kinds {"id":"7"} tx: source "line 7" target null'; do
	assert_contains "$s" "$want" "reported difference"
done
assert_not_contains "$s" '{"id":"10"} active' "only differing columns are listed"
assert_contains "$s" "result test.live checksums ok=true" "an untouched table still passes"
assert_contains "$s" "mismatches 9" "9 differing keys in the run"
ok "changed value, missing row, extra row, last decimal digit, +1 hour, trailing space, case, a tab in a text key, NULL vs value: each found with its key, issue and both sides' values"

conf "$T_TMP/few.conf" "max_keys = 3"
vrun 5 "$T_TMP/few.conf" checksums --table test.accounts
assert_eq "$(jfield .results.0.differing_keys <<<"$OUT")" 7 "max_keys: all counted"
assert_eq "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["results"][0]["keys"]))' <<<"$OUT")" 3 "max_keys: 3 listed"
ok "the listing is bounded by [validation] max_keys (7 counted, 3 described)"

vrun 0 "$CONF" counts --table test.accounts
assert_contains "$(summary <<<"$OUT")" "result test.accounts counts ok=true 20000 20000" "counts: one row missing, one extra"
harness_sql TGT "INSERT INTO test.accounts VALUES (1000000, 'ghost 2', 1, now(), NULL, NULL)"
vrun 5 "$CONF" counts
s=$(summary <<<"$OUT")
assert_contains "$s" "result test.accounts counts ok=false 20000 20001" "counts: difference"
assert_contains "$s" "result test.tags counts ok=true 8 8" "counts: other tables"
ok "counts: equal counts pass (a missing and an extra row cancel out: checksums catch those); one more row fails"

harness_sql TGT "UPDATE test.accounts SET balance = -5 WHERE id = 70"
vrun 5 "$CONF" invariants
assert_contains "$OUT" '"target_violations": [' "invariant: violating rows"
assert_contains "$OUT" '"V2:70|V5:-5.00"' "invariant: the violating row"
assert_contains "$(summary <<<"$OUT")" "result balance_total invariant ok=false" "invariant: sums differ"
vrun 5 "$CONF" queries
assert_contains "$OUT" '"V5:ghost|V4:1.00"' "query: the extra row on the target"
ok "invariants and queries: MariaDB's source SQL against PostgreSQL's target SQL, rows shown"

# ------------------------------------------------------------- 4: recent writes
# The key log's records are escaped (a key with a tab, a newline and a
# backslash round-trips); a batch in the older format (K records, fields as
# they are) is still read.
p0=$(src_pos)
harness_sql SRC "UPDATE accounts SET owner = 'moved' WHERE id = 90; UPDATE accounts SET owner = 'x' WHERE id = 91;
INSERT INTO tags VALUES ('t\tn\nb\\\\', 'tab, newline, backslash', NULL, 4)"
p1=$(src_pos)
harness_sql TGT "UPDATE test.accounts SET owner = 'moved' WHERE id = 90; UPDATE test.accounts SET owner = 'x' WHERE id = 91;
INSERT INTO test.tags VALUES (E't\tn\nb\\\\', 'tab, newline, backslash', NULL, 4)"
KL=$T_TMP/state/touched-t.log
myvalidate keylog "$KL" "$p0" "$p0" test.accounts '{"10"}' # committed before --since
myvalidate keylog "$KL" "$p0" "$p1" test.accounts '{"90"}' '{"91"}'
myvalidate keylog "$KL" "$p0" "$p1" test.tags $'{"t\tn\nb\\\\"}'
printf 'S\t%s\nK\ttest.accounts\t{"92"}\nC\t%s\n' "$p0" "$p1" >>"$KL" # the older format
grep -qF 'k	test.tags	{"t\tn\nb\\\\"}' "$KL" || fail "key log: the tags key is not escaped: $(cat "$KL")"
checked() { python3 -c 'import json, sys
print([r["keys_checked"] for r in json.load(sys.stdin)["results"] if r["table"] == sys.argv[1]][0])' "$1"; }
vrun 0 "$CONF" recent --since "$p0"
s=$(summary <<<"$OUT")
assert_contains "$s" "result test.accounts recent ok=true" "recent: applied keys match"
assert_contains "$s" "result test.tags recent ok=true" "recent: the tags key matches"
assert_eq "$(checked accounts <<<"$OUT")" 3 "recent: keys 90, 91 and 92 (older format) only"
assert_eq "$(checked tags <<<"$OUT")" 1 "recent: the tags key"
assert_eq "$(jfield .results.0.since <<<"$OUT")" "$p0" "recent: since, GTID@binlog"
harness_sql TGT "UPDATE test.accounts SET owner = 'tampered after apply' WHERE id = 90;
UPDATE test.accounts SET owner = 'tampered too' WHERE id = 92;
UPDATE test.tags SET note = 'tampered' WHERE k = E't\tn\nb\\\\'"
vrun 5 "$CONF" recent --since "$p0"
s=$(summary <<<"$OUT")
assert_contains "$s" 'col test.accounts {"id":"90"} owner: source "moved" target "tampered after apply"' "recent finds 90"
assert_contains "$s" 'col test.accounts {"id":"92"} owner: source "owner 92" target "tampered too"' "recent finds 92 (older format)"
assert_contains "$s" 'col test.tags {"k":"t\tn\nb\\"} note: source "tab, newline, backslash" target "tampered"' "recent finds the key with a tab, a newline and a backslash"
assert_not_contains "$s" '"id":"10"' "recent is scoped to keys committed after --since"
ok "recent writes since $p0: the logged keys are compared and the tampered ones found (90; 92 from a batch in the older format; a text key with a tab, a newline and a backslash); key 10 (committed before) is out of scope"

# ------------------------------------------------------------- 5: fencing
applied=$T_TMP/applied
src_pos >"$applied"
harness_sql SRC "UPDATE live SET n = 42 WHERE id = 1500"
moved=$(src_pos)
myvalidate run "$CONF" checksums --table test.live --applied-file "$applied" >"$T_TMP/fence.out" 2>"$T_TMP/fence.err" &
RUN=$!
t_on_exit "kill $RUN 2>/dev/null || true"
wait_for 10 'grep -q " no$" "$T_TMP/fence.err"' || fail "fence: the check did not wait for the applier"
sleep 0.5
kill -0 $RUN 2>/dev/null || fail "fence: the check ended while the change was not applied"
harness_sql TGT "UPDATE test.live SET n = 42 WHERE id = 1500"
src_pos >"$applied"
rc=0
wait $RUN || rc=$?
assert_eq "$rc" 0 "fence: passes once applied: $(cat "$T_TMP/fence.out" "$T_TMP/fence.err")"
waited=$(awk '$3 == "no" {print $2; exit}' "$T_TMP/fence.err")
(( waited >= $(scalar "$moved") )) || fail "fence: waited for $waited, before the change at $moved"
grep -q "^wait $waited yes$" "$T_TMP/fence.err" || fail "fence: never released: $(cat "$T_TMP/fence.err")"
s=$(summary <"$T_TMP/fence.out")
assert_contains "$s" "result test.live checksums ok=true" "fence: live passes"
ok "fencing: a source change not yet applied holds the check at its fence ($waited >= the change at $moved) until it is applied; then it passes"

harness_sql SRC "UPDATE live SET n = 43 WHERE id = 1500"
vrun 2 "$CONF" counts --table test.live --applied-file "$applied"
assert_contains "$OUT" "the applier did not reach gtid:" "fence: never applied"
assert_contains "$OUT" "within the recheck wait" "fence: the wait is bounded"
ok "fencing: a change never applied fails the run after recheck_wait, naming the GTID@binlog position"

# ------------------------------------------------------------- 6: through migd
# The ledger `myvalidate plan` wrote says every chunk is done and the test
# loads the target itself, so migd goes from capture to streaming the
# binlog and applying it, whether or not its own backfill from MariaDB is
# wired: the real applier, key log and applied-past check are in play.
for t in accounts tags kinds live; do
	myrender snap "$SRC_DSN" "test.$t" | {
		echo "TRUNCATE test.$t; COPY test.$t FROM STDIN;"
		cat
		echo '\.'
	} | harness_sql TGT - >/dev/null
done
rm -f "$KL"
conf "$T_TMP/migd.conf"
migd_start "$T_TMP/migd.conf"
wait_phase 60 synced
expect_rc 0 mctl validate --wait
assert_contains "$OUT" "validation done (counts,checksums,invariants,queries, table *): PASSED" "migd: clean run"
assert_contains "$OUT" "holds for  source positions gtid:" "migd: GTID@binlog positions"
p2=$(src_pos)
harness_sql SRC "UPDATE accounts SET owner = 'via binlog' WHERE id = 5; DELETE FROM live WHERE id = 7;
UPDATE tags SET note = 'via binlog' WHERE k = 't\tn\nb\\\\'"
wait_for 30 '[[ $(harness_sql TGT "SELECT count(*) FROM test.tags WHERE note = '"'via binlog'"'") == 1 ]]' ||
	fail "migd did not apply the source's change"
expect_rc 0 mctl validate --wait --kind recent --since "$p2"
[[ $OUT == *"ok   test.accounts recent since $p2: "[12]" keys checked"* ]] || fail "migd: recent, accounts: $OUT"
[[ $OUT == *"ok   test.live recent since $p2: 1 keys checked"* ]] || fail "migd: recent, live: $OUT"
[[ $OUT == *"ok   test.tags recent since $p2: "[12]" keys checked"* ]] || fail "migd: recent, tags: $OUT"
ok "migd validates a MariaDB source: everything passes at GTID@binlog positions; recent writes come from the applier's key log (a key with a tab and a newline included)"

# Online validation under concurrent writes: fences and rechecks, no false alarm.
writer() {
	while [[ ! -f $T_TMP/stop_writer ]]; do
		harness_sql SRC "UPDATE live SET n = n + 1 WHERE id = FLOOR(1 + RAND() * 2999);
UPDATE live SET n = n + 1 WHERE id = FLOOR(1 + RAND() * 2999)" >/dev/null
	done
}
writer &
WRITER=$!
t_on_exit "touch $T_TMP/stop_writer; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"
for i in 1 2 3; do
	expect_rc 0 mctl validate --wait --table test.live
done
touch "$T_TMP/stop_writer"
wait "$WRITER" || true
ok "migd: three online validations of a MariaDB source during concurrent writes, no false alarm"

harness_sql TGT "UPDATE test.accounts SET balance = balance + 0.01 WHERE id = 5; DELETE FROM test.accounts WHERE id = 6;
UPDATE test.tags SET note = 'tampered' WHERE k = E't\tn\nb\\\\'"
expect_rc 5 mctl validate --wait --kind checksums --table test.accounts
assert_contains "$OUT" "DIFF test.accounts checksums" "migd: mismatch"
assert_contains "$OUT" "2 differing keys" "migd: two keys"
assert_contains "$OUT" 'key {"id":"5"}: differs' "migd: changed row"
assert_contains "$OUT" 'balance: source "6.25", target "6.26"' "migd: its column"
assert_contains "$OUT" 'key {"id":"6"}: missing on target' "migd: missing row"
expect_rc 5 mctl validate --wait --kind recent --since "$p2"
assert_contains "$OUT" 'key {"id":"5"}: differs' "migd: recent finds 5"
assert_contains "$OUT" 'key {"k":"t\tn\nb\\"}: differs' "migd: recent finds the key with a tab and a newline"
assert_not_contains "$OUT" '"id":"6"' "migd: recent is scoped to touched keys"
stored=$(harness_sql TGT "SELECT status, mismatches, position_min FROM migd.validation ORDER BY id DESC LIMIT 1")
[[ $stored =~ ^done$'\t'2$'\t'gtid: ]] || fail "migd: stored run: $stored"
expect_rc 5 mctl gate
assert_contains "$OUT" "difference(s) at binlog:mariadb-bin." "migd: the gate names the source position"
ok "migd: tampering behind its back is found by checksums and recent writes, stored, and shown in the gate"
migd_stop 0
