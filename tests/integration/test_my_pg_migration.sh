#!/usr/bin/env bash
# MariaDB -> PostgreSQL: consistent snapshot capture, chunked backfill and
# binlog CDC under live writes, through kill -9 of migd (backfill and CDC)
# and a crash of MariaDB, ending row for row identical; DDL on one table and
# a non-FULL row image on another stop only those tables (schema errors);
# an unmappable value (zero date) becomes a failed record, never altered;
# freeze sets read_only, abort lifts it.  A table without a key (insert-only)
# is copied at its snapshot's own binlog position and its changes before it
# are skipped: none doubled, although every worker snapshot is later than the
# capture.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair mariadb postgresql

harness_sql SRC "CREATE TABLE items (id int PRIMARY KEY, name varchar(40) NOT NULL,
	price decimal(12,2), created datetime(6), note text);
CREATE TABLE tags (k varchar(20) NOT NULL, n int unsigned NOT NULL, v bigint,
	PRIMARY KEY (k, n));
CREATE TABLE imgs (id int PRIMARY KEY, a int, b int);
CREATE TABLE zev (at datetime(6) NOT NULL, what varchar(40) NOT NULL);
INSERT INTO imgs VALUES (1, 1, 1), (2, 2, 2);
INSERT INTO zev SELECT NOW(6), CONCAT('pre ', seq) FROM seq_1_to_300;"
harness_sql TGT "CREATE SCHEMA test;
CREATE TABLE test.items (id integer PRIMARY KEY, name varchar(40) NOT NULL,
	price numeric(12,2), created timestamp(6), note text);
CREATE TABLE test.tags (k varchar(20) COLLATE \"C\" NOT NULL, n bigint NOT NULL, v bigint,
	PRIMARY KEY (k, n));
CREATE TABLE test.imgs (id integer PRIMARY KEY, a integer, b integer);
CREATE TABLE test.zev (at timestamp(6) NOT NULL, what varchar(40) NOT NULL);"
# 20000 items and 3000 tags, some values NULL, text with quotes, tabs and 4-byte UTF-8.
harness_sql SRC "INSERT INTO items
	SELECT seq, CONCAT('item ', seq), IF(seq % 7 = 0, NULL, seq * 1.25 - 5000),
	       TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq SECOND + INTERVAL (seq % 1000) MICROSECOND,
	       IF(seq % 5 = 0, CONCAT('it''s\t', seq, ' 😀'), NULL)
	FROM seq_1_to_20000;
INSERT INTO tags SELECT CONCAT('k', seq % 300), seq, seq * 1000003 FROM seq_1_to_3000;"

# The copy is throttled (about 5 s) so that the first kill lands in it on a loaded machine.
t_pg_config "$T_TMP/migd.conf" "[tables]" "insert_only = test.zev" "[backfill]" "rows_per_second = 5000"
sed -i '0,/^engine = postgresql$/s//engine = mariadb/; s/^include = public\.\*$/include = test.*/' "$T_TMP/migd.conf"

writer() {
	local i=0
	while [[ ! -f $T_TMP/stop_writer ]]; do
		i=$((i + 1))
		harness_sql SRC "BEGIN;
UPDATE items SET price = price + 1, note = CONCAT('u', $i) WHERE id = FLOOR(1 + RAND() * 20000);
DELETE FROM items WHERE id = FLOOR(1 + RAND() * 20000);
INSERT INTO items VALUES (100000 + $i, 'new', $i / 4, NOW(6), NULL);
UPDATE items SET id = id + 500000 WHERE id = FLOOR(1 + RAND() * 20000);
INSERT INTO tags VALUES (CONCAT('w', $i % 50), $i, $i) ON DUPLICATE KEY UPDATE v = v + 1;
INSERT INTO zev VALUES (NOW(6), CONCAT('live ', $i));
COMMIT;" >/dev/null 2>&1 || true
	done
}
writer &
WRITER=$!
t_on_exit "touch $T_TMP/stop_writer; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"

ITEMS_MY="CONCAT_WS('|', id, name, COALESCE(price, 'N'), DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s.%f'), COALESCE(note, 'N'))"
ITEMS_PG="concat_ws('|', id, name, coalesce(price::text, 'N'), to_char(created, 'YYYY-MM-DD HH24:MI:SS.US'), coalesce(note, 'N'))"
TAGS_MY="CONCAT_WS('|', k, n, v)"
TAGS_PG="concat_ws('|', k, n, v)"

migd_start "$T_TMP/migd.conf"
wait_for 60 '[[ $(mctl --json backfill 2>/dev/null | jfield .backfill.chunks_done) -ge 3 ]]' ||
	fail "backfill did not get going: $(mctl status)"
st=$(mctl --json status)
assert_contains "$(jfield .migration_state.capture.consistent_pos <<<"$st")" "@mariadb-bin." "consistent position is GTID@binlog"
assert_eq "$(jfield .migration_state.capture.source <<<"$st")" binlog "capture kind"
# Lag in bytes across a binlog rotation: while the backfill is paused the
# applier waits, and 1.2 MB of rows written before a FLUSH BINARY LOGS is still
# behind in the older file; the lag counts it, not only the newer file's bytes.
expect_rc 0 mctl backfill pause
harness_sql SRC "INSERT INTO items SELECT 800000 + seq, 'big', 1, NOW(6), REPEAT('x', 60000) FROM seq_1_to_20; FLUSH BINARY LOGS"
wait_for 10 '(( $(mctl --json lag | jfield .lag.bytes) >= 1000000 ))' ||
	fail "lag across a rotation: $(mctl --json lag | jfield .lag.bytes) bytes, with more than 1000000 behind in the older file"
ok "lag across a binlog rotation counts the older file's remainder ($(mctl --json lag | jfield .lag.bytes) bytes)"
# The kill comes while paused: still in the backfill however slow the test runs (valgrind).
assert_eq "$(migd_phase)" backfilling "phase at the first kill"
kill -KILL "$MIGD_PID"
wait "$MIGD_PID" 2>/dev/null || true
ok "kill -9 during backfill, paused (the consistent snapshot goes with the process)"

migd_start "$T_TMP/migd.conf"
wait_phase 120 'catching_up|synced'
sleep 2
kill -KILL "$MIGD_PID"
wait "$MIGD_PID" 2>/dev/null || true
ok "kill -9 during CDC"
harness_restart SRC --crash >/dev/null
ok "MariaDB crashed and came back"
migd_start "$T_TMP/migd.conf"
wait_phase 120 synced
sleep 2
touch "$T_TMP/stop_writer"
wait "$WRITER" || true
wait_my_caught_up 90
assert_same_rows items "$ITEMS_MY" "$ITEMS_PG" id
assert_same_rows tags "$TAGS_MY" "$TAGS_PG" "k, n"
assert_same_rows imgs "CONCAT_WS('|', id, a, b)" "concat_ws('|', id, a, b)" id
assert_same_rows zev "CONCAT_WS('|', DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), what)" \
	"concat_ws('|', to_char(at, 'YYYY-MM-DD HH24:MI:SS.US'), what)" what
assert_eq "$(harness_sql TGT "SELECT count(*) - count(DISTINCT what) FROM test.zev")" 0 "doubled zev rows"
assert_contains "$(harness_sql TGT "SELECT copied_at FROM migd.chunks WHERE table_name = 'test.zev'")" \
	"@mariadb-bin." "the keyless table's copy position in the ledger"
ok "after two kill -9 and a MariaDB crash, items, tags, imgs, zev identical row for row ($(rows_pg items "$ITEMS_PG" id | cut -d' ' -f1) items)"

# A value PostgreSQL cannot hold is a failed record with its key, never altered.
harness_sql SRC "SET SESSION sql_mode = ''; INSERT INTO items VALUES (900001, 'zero', 1, '0000-00-00 00:00:00', NULL); INSERT INTO items VALUES (900002, 'fine', 2, NULL, NULL);"
wait_for 30 '[[ $(harness_sql TGT "SELECT count(*) FROM test.items WHERE id = 900002") == 1 ]]' ||
	fail "the change after the unmappable one was not applied"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM test.items WHERE id = 900001")" 0 "unmappable row not applied"
fr=$(harness_sql TGT "SELECT table_name || ' ' || key::text || ' ' || error FROM migd.failed_records WHERE key::text LIKE '%900001%'")
assert_contains "$fr" "900001" "failed record names the key"
assert_contains "$fr" "zero_date" "failed record says why"
ok "zero date: failed record ($fr); the next change applied"

# DDL on tags and a MINIMAL row image on imgs stop those tables only.
harness_sql SRC "ALTER TABLE tags ADD COLUMN extra int; INSERT INTO tags VALUES ('ddl', 1, 1, 7);"
harness_sql SRC "SET SESSION binlog_row_image = MINIMAL; UPDATE imgs SET a = 10 WHERE id = 1;"
harness_sql SRC "INSERT INTO items VALUES (900003, 'after ddl', 3, NULL, NULL)"
wait_for 30 '[[ $(harness_sql TGT "SELECT count(*) FROM test.items WHERE id = 900003") == 1 ]]' ||
	fail "items stopped after DDL on another table"
wait_for 30 '[[ $(mctl --json lag | jfield .apply.schema_errors) == *test.tags*test.imgs* || $(mctl --json lag | jfield .apply.schema_errors) == *test.imgs*test.tags* ]]' ||
	fail "schema errors not shown: $(mctl status)"
se=$(mctl --json lag | jfield .apply.schema_errors)
assert_contains "$se" "test.tags" "DDL table in schema errors"
assert_contains "$se" "DDL on the source" "DDL reason"
assert_contains "$se" "test.imgs" "non-FULL table in schema errors"
assert_contains "$se" "not FULL" "non-FULL reason"
assert_eq "$(harness_sql TGT "SELECT a FROM test.imgs WHERE id = 1")" 1 "partial image not applied"
parked=$(harness_sql TGT "SELECT count(*) FROM migd.parked")
[[ $parked -ge 2 ]] || fail "changes of stopped tables not parked ($parked)"
ok "DDL and a MINIMAL row image stop only their tables, with reasons; $parked changes parked, items goes on"

# Freeze sets read_only on the source (no [freeze] roles: not enforced);
# abort lifts it again (test_my_pg_cutover.sh covers the flip and rollback).
expect_rc 0 mctl freeze
assert_contains "$OUT" "freeze NOT fully enforced" "no roles: not enforced"
assert_eq "$(harness_sql SRC "SELECT @@global.read_only")" 1 "read_only after the freeze"
expect_rc 0 mctl abort
assert_eq "$(migd_phase)" aborted "phase after abort"
assert_eq "$(harness_sql SRC "SELECT @@global.read_only")" 0 "abort lifts read_only"
ok "freeze sets read_only on the MariaDB source; abort lifts it"
migd_stop 0
