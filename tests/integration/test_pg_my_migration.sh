#!/usr/bin/env bash
# PostgreSQL -> MariaDB on real servers: slot capture, chunked backfill into
# MariaDB ([tables] target_schema puts public.* into database test, and one
# table is renamed, one of its columns too), pgoutput CDC applied by the
# MariaDB sink under live writes, kill -9 of migd during backfill and CDC
# and a crash of the target; a text key column with a case-insensitive collation on the target is
# refused by name at start; freeze (grants on the PostgreSQL source,
# read_only on the target), cutover (AUTO_INCREMENT continues after the
# source's sequence), the application's writes on MariaDB carried back into
# PostgreSQL out of the target's binlog, rollback (the source's sequence
# continues after the target's rows); identical row for row at each step.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair postgresql mariadb

harness_sql SRC "CREATE ROLE app LOGIN;
CREATE TABLE accounts (id bigserial PRIMARY KEY, balance numeric(12,2) NOT NULL, note text,
	flag boolean, data bytea, at timestamptz, u uuid, j jsonb);
CREATE TABLE tags (k text NOT NULL, n int NOT NULL, v bigint, PRIMARY KEY (k, n));
INSERT INTO accounts (balance, note, flag, data, at, u, j)
	SELECT g * 1.5, CASE WHEN g % 5 = 0 THEN E'it''s\ttab ' || g || ' 😀' END, g % 2 = 0,
	       CASE WHEN g % 3 = 0 THEN decode(md5(g::text), 'hex') END,
	       '2024-01-01 00:00:00+02'::timestamptz + g * interval '1.000001 second',
	       overlay(overlay(md5(g::text) placing '4' from 13) placing '8' from 17)::uuid,
	       jsonb_build_object('g', g)
	FROM generate_series(1, 20000) g;
INSERT INTO tags SELECT 'k' || (g % 300), g, g::bigint * 1000003 FROM generate_series(1, 3000) g;
INSERT INTO tags VALUES ('K1', 1, 1), ('k1 ', 1, 2);
GRANT SELECT, INSERT, UPDATE, DELETE ON accounts, tags TO app;
GRANT USAGE ON SEQUENCE accounts_id_seq TO app;"
TGT_DDL="CREATE TABLE accounts (id bigint AUTO_INCREMENT PRIMARY KEY, balance decimal(12,2) NOT NULL,
	note text, flag boolean, data blob, at datetime(6), u uuid, j json);
CREATE TABLE labels (k varchar(20) COLLATE utf8mb4_nopad_bin NOT NULL, n int NOT NULL, val bigint,
	PRIMARY KEY (k, n));
CREATE USER app@'%' IDENTIFIED BY 'app';
GRANT SELECT, INSERT, UPDATE, DELETE ON test.* TO app@'%';"
harness_sql TGT "$TGT_DDL"

# The copy is throttled (about 5 s) so that the first kill lands in it on a loaded machine.
t_pg_config "$T_TMP/migd.conf" "[freeze]" "roles = app" "drain_timeout = 30s" \
	"[gate]" "require_validation =" "max_failed_records = 1" "[backfill]" "rows_per_second = 5000"
sed -i '/^\[target\]$/,/^engine/ s/^engine = postgresql$/engine = mariadb/' "$T_TMP/migd.conf"
sed -i 's/^include = public\.\*$/include = public.*\ntarget_schema = test\nrename = public.tags=labels\ncolumns = public.tags.v=val/' "$T_TMP/migd.conf"
grep -q '^engine = mariadb' "$T_TMP/migd.conf" || fail "config: target engine not set"

ACC_PG="concat_ws('|', id, balance, coalesce(note, 'N'), coalesce(flag::int::text, 'N'), coalesce(encode(data, 'hex'), 'N'), to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), u, j::text)"
ACC_MY="CONCAT_WS('|', id, balance, COALESCE(note, 'N'), COALESCE(flag, 'N'), COALESCE(LOWER(HEX(data)), 'N'), DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), u, j)"
TAG_PG="concat_ws('|', k, n, v)"
TAG_MY="CONCAT_WS('|', k, n, val)"
pg_rows() { harness_sql SRC "SELECT count(*) || ' ' || md5(coalesce(string_agg($2, E'\n' ORDER BY $3), '')) FROM $1"; }
my_rows() { harness_sql TGT "SET SESSION group_concat_max_len = 1073741824; SELECT CONCAT(COUNT(*), ' ', MD5(COALESCE(GROUP_CONCAT($2 ORDER BY $3 SEPARATOR '\n'), ''))) FROM $1"; }
same() { # pg-table pg-expr my-table my-expr order-by
	local a b
	a=$(pg_rows "$1" "$2" "$5")
	b=$(my_rows "$3" "$4" "$5")
	if [[ $a != "$b" ]]; then
		diff <(harness_sql SRC "SELECT $2 FROM $1 ORDER BY $5") \
			<(harness_sql TGT "SELECT $4 FROM $3 ORDER BY $5" | sed 's/\\t/\t/g') | head -6 >&2
		fail "$1 differs: source [$a] target [$b] ($6)"
	fi
}
# Text keys in C order on PostgreSQL, bytes on MariaDB (nopad_bin): the same order.
assert_all_same() {
	same accounts "$ACC_PG" accounts "$ACC_MY" id "$1"
	same tags "$TAG_PG" labels "$TAG_MY" "k COLLATE \"C\", n" "$1"
}
# assert_all_same passes the MariaDB side the same ORDER BY: drop the PostgreSQL-only COLLATE.
my_rows() { harness_sql TGT "SET SESSION group_concat_max_len = 1073741824; SELECT CONCAT(COUNT(*), ' ', MD5(COALESCE(GROUP_CONCAT($2 ORDER BY ${3// COLLATE \"C\"/} SEPARATOR '\n'), ''))) FROM $1"; }

# A case-insensitive key collation on the target would merge 'K1' and 'k1': refused by name.
harness_sql TGT "ALTER TABLE labels MODIFY k varchar(20) COLLATE utf8mb4_general_ci NOT NULL"
migd_start "$T_TMP/migd.conf"
wait_for 30 '[[ $(mctl --json status | jfield .migration_state.last_error) == *collation* ]]' ||
	fail "the key collation was not refused: $(mctl status)"
assert_contains "$(mctl --json status | jfield .migration_state.last_error)" "key column k of \`test\`.\`labels\` has collation utf8mb4_general_ci" "names the column"
migd_stop 0
harness_sql TGT "ALTER TABLE labels MODIFY k varchar(20) COLLATE utf8mb4_nopad_bin NOT NULL"
ok "a target key column whose collation folds case is refused by name before anything is copied"

writer() {
	local i=0
	while [[ ! -f $T_TMP/stop_writer ]]; do
		i=$((i + 1))
		harness_sql SRC "BEGIN;
UPDATE accounts SET balance = balance + 1, note = 'u' || $i, at = now() WHERE id = (random() * 19999 + 1)::int;
DELETE FROM accounts WHERE id = (random() * 19999 + 1)::int;
INSERT INTO accounts (balance, note, flag, data, j) VALUES ($i, NULL, true, '\\x00ff', '[1]');
UPDATE tags SET v = v + 1 WHERE k = 'k' || ($i % 300);
INSERT INTO tags VALUES ('w' || ($i % 50), $i, $i) ON CONFLICT (k, n) DO UPDATE SET v = tags.v + 1;
COMMIT;" >/dev/null 2>&1 || true
	done
}
writer &
WRITER=$!
t_on_exit "touch $T_TMP/stop_writer; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"

migd_start "$T_TMP/migd.conf"
wait_for 60 '[[ $(mctl --json backfill 2>/dev/null | jfield .backfill.chunks_done) -ge 3 ]]' ||
	fail "backfill did not get going: $(mctl status)"
assert_eq "$(migd_phase)" backfilling "phase at the first kill"
kill -KILL "$MIGD_PID"
wait "$MIGD_PID" 2>/dev/null || true
ok "kill -9 during backfill into MariaDB"
migd_start "$T_TMP/migd.conf"
wait_phase 120 'catching_up|synced'
sleep 2
kill -KILL "$MIGD_PID"
wait "$MIGD_PID" 2>/dev/null || true
harness_restart TGT --crash >/dev/null
ok "kill -9 during CDC and a crash of the target MariaDB"
migd_start "$T_TMP/migd.conf"
wait_phase 120 synced
sleep 2
touch "$T_TMP/stop_writer"
wait "$WRITER" || true
wait_caught_up 60
assert_all_same "after CDC"
expect_rc 0 mctl validate --kind checksums --wait
harness_sql TGT "UPDATE labels SET val = val + 1 WHERE k = 'k7' AND n = 7"
expect_rc 5 mctl validate --kind checksums --wait
assert_contains "$(mctl --json validation)" '{"key":{"k":"k7","n":"7"},"issue":"differs","columns":[{"column":"v"' "the tampered key of the renamed table"
harness_sql TGT "UPDATE labels SET val = val - 1 WHERE k = 'k7' AND n = 7"
ok "after two kill -9 and a target crash, accounts and tags (renamed labels, its v named val) identical row for row; checksums agree, and find a value changed in val"

# MariaDB's UUID type takes RFC 4122 variants only: another is a failed record, never altered.
harness_sql SRC "INSERT INTO accounts (id, balance, u) VALUES (900001, 1, '0d8b5e80-4141-b229-7b65-df6ff6c9ce27'), (900002, 2, NULL)"
wait_for 30 '[[ $(harness_sql TGT "SELECT count(*) FROM accounts WHERE id = 900002") == 1 ]]' ||
	fail "the change after the unmappable one was not applied: $(mctl status)"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM accounts WHERE id = 900001")" 0 "refused row not applied"
fr=$(harness_sql TGT "SELECT CONCAT(table_name, ' ', \`key\`, ' ', error) FROM migd.failed_records WHERE \`key\` LIKE '%900001%'")
assert_contains "$fr" "Incorrect uuid value" "failed record says why"
harness_sql SRC "DELETE FROM accounts WHERE id = 900001"
ok "a uuid MariaDB refuses is a failed record ($fr); the next change applied"

APP_TGT() { mariadb --no-defaults -N -B -h 127.0.0.1 -P "$TGT_PORT" -u app -papp test -e "$1"; }
APP_SRC="host=127.0.0.1 port=$SRC_PORT user=app dbname=postgres"
expect_rc 0 mctl freeze
assert_contains "$OUT" "freeze enforced" "enforced"
psql -X -q "$APP_SRC" -c "INSERT INTO accounts (balance) VALUES (1)" 2>/dev/null && fail "the app wrote on the frozen source"
APP_TGT "INSERT INTO accounts (balance) VALUES (1)" 2>/dev/null && fail "the app wrote on the candidate"
wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not open: $(mctl gate || true)"
expect_rc 0 mctl cutover
assert_contains "$OUT" "phase      watching" "phase after cutover"
src_next=$(harness_sql SRC "SELECT last_value FROM accounts_id_seq")
for i in $(seq 1 20); do
	APP_TGT "BEGIN; INSERT INTO accounts (balance, note) VALUES ($i, 'tgt $i'); UPDATE labels SET val = -$i WHERE n = $i; COMMIT;" ||
		fail "the app could not write on the new owner"
done
tgt_min=$(harness_sql TGT "SELECT min(id) FROM accounts WHERE note LIKE 'tgt %'")
((tgt_min > src_next)) || fail "AUTO_INCREMENT: the source's sequence stood at $src_next, the target wrote $tgt_min"
wait_for 30 '[[ $(harness_sql SRC "SELECT count(*) FROM accounts WHERE note LIKE '"'tgt %'"'") == 20 ]]' ||
	fail "reverse replication did not bring the target's writes back: $(mctl status)"
ok "cutover: the target's AUTO_INCREMENT continues after the sequence ($tgt_min > $src_next); reverse replication from MariaDB's binlog into PostgreSQL"

expect_rc 0 mctl rollback
assert_contains "$OUT" "phase      rolled_back" "phase after rollback"
assert_all_same "after the rollback"
tgt_max=$(harness_sql TGT "SELECT max(id) FROM accounts")
id=$(psql -X -q -At "$APP_SRC" -c "INSERT INTO accounts (balance) VALUES (1) RETURNING id") ||
	fail "the source refuses the app after the rollback"
((id > tgt_max)) || fail "sequence after rollback: target rows up to $tgt_max, the source gave $id"
ok "rollback: identical row for row, the source's sequence continues after the target's rows ($id > $tgt_max)"
migd_stop 0
