#!/usr/bin/env bash
# MariaDB -> MariaDB, the whole story on real servers: consistent snapshot
# capture, chunked backfill into MariaDB and binlog CDC through the MariaDB
# sink under live writes; kill -9 of migd during backfill and CDC and a crash
# of the target; edge values of every column type written during CDC; a
# zero date is a failed record with its key; freeze (read_only on both
# sides), gate, cutover (the target's AUTO_INCREMENT continues after the
# source's, the reverse position taken from the target's binlog), the
# application's writes on the target carried back by reverse replication
# out of the target's binlog, rollback; source and target identical row for
# row (every column, binary included) at each step.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair mariadb mariadb

DDL="CREATE TABLE items (id int PRIMARY KEY, name varchar(40) NOT NULL,
	price decimal(12,2), created datetime(6), note text);
CREATE TABLE tags (k varchar(20) NOT NULL, n int unsigned NOT NULL, v bigint,
	PRIMARY KEY (k, n));
CREATE TABLE events (id bigint AUTO_INCREMENT PRIMARY KEY, what varchar(100) NOT NULL);
CREATE TABLE types (id int PRIMARY KEY,
	d1 decimal(5,2), d2 decimal(38,12), d3 decimal(10,0) unsigned,
	i1 tinyint, i2 smallint unsigned, i3 mediumint, i4 int unsigned, i8 bigint, u8 bigint unsigned,
	f float, db double, dt date, tm time(6), tm0 time, dtm datetime(6), ts timestamp(3) NULL,
	y year, c char(4), vc varchar(40), tx text, bn binary(4), vb varbinary(20), bl blob,
	e enum('a','b','c d'), s set('x','y','z'), bt bit(10), j json);
CREATE USER app@'%' IDENTIFIED BY 'app';
GRANT SELECT, INSERT, UPDATE, DELETE ON test.* TO app@'%';"
harness_sql SRC "$DDL"
harness_sql TGT "$DDL"
harness_sql SRC "INSERT INTO items
	SELECT seq, CONCAT('item ', seq), IF(seq % 7 = 0, NULL, seq * 1.25 - 5000),
	       TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq SECOND + INTERVAL (seq % 1000) MICROSECOND,
	       IF(seq % 5 = 0, CONCAT('it''s\t', seq, ' 😀'), NULL)
	FROM seq_1_to_150000;
INSERT INTO tags SELECT CONCAT('k', seq % 300), seq, seq * 1000003 FROM seq_1_to_3000;
INSERT INTO events (what) SELECT CONCAT('e', seq) FROM seq_1_to_100;"
# Edge values, written once before the capture (backfill) and again during CDC (ids + 1000).
types_rows() { # id offset
	cat <<-EOF
		INSERT INTO types VALUES
		($(($1 + 1)), -999.99, -12345678901234567890123456.123456789012, 9999999999,
		 -128, 65535, -8388608, 4294967295, -9223372036854775808, 18446744073709551615,
		 -3.40282e38, -1.7976931348623157e308, '1000-01-01', '-838:59:59.000000', '838:59:59',
		 '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999', 2155,
		 'ab ', 'x😀y', '', X'00ff0a00', X'', X'5c0a0d09', 'a', '', b'1111111111', '{"a": [1, 2.5, null]}'),
		($(($1 + 2)), 0.01, 0.000000000001, 0, 127, 0, 8388607, 0, 9223372036854775807, 0,
		 1.5, 0.1, '2024-02-29', '-00:00:00.500000', '00:00:00', '1000-01-01 00:00:00.000001',
		 '1970-01-01 00:00:01.000', 1901, '', 'tab\there', 'line\nbreak \\\\ back', X'20202020',
		 X'00', X'', 'c d', 'x,z', b'0', '[]'),
		($(($1 + 3)), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
		 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	EOF
}
harness_sql SRC "$(types_rows 0)"

# The copy is throttled (about 4 s) so that the first kill lands in it on a loaded machine.
t_pg_config "$T_TMP/migd.conf" "[freeze]" "roles = app" "drain_timeout = 30s" \
	"[gate]" "require_validation =" "max_failed_records = 1" "[backfill]" "rows_per_second = 40000"
sed -i 's/^engine = postgresql$/engine = mariadb/; s/^include = public\.\*$/include = test.*/' "$T_TMP/migd.conf"

# Whole tables on both sides, every column as the client prints it: identical data, identical text.
dump() { # side table order-by
	harness_sql "$1" "SELECT * FROM $2 ORDER BY $3" | md5sum | cut -d' ' -f1
}
same_table() { # table order-by
	local a b
	a=$(dump SRC "$1" "$2")
	b=$(dump TGT "$1" "$2")
	if [[ $a != "$b" ]]; then
		diff <(harness_sql SRC "SELECT * FROM $1 ORDER BY $2") \
			<(harness_sql TGT "SELECT * FROM $1 ORDER BY $2") | head -10 >&2
		return 1
	fi
}
assert_all_same() {
	local t
	for t in "items id" "tags k, n" "events id" "types id"; do
		same_table "${t%% *}" "${t#* }" || fail "${t%% *} differs between source and target ($1)"
	done
}

writer() {
	local i=0
	while [[ ! -f $T_TMP/stop_writer ]]; do
		i=$((i + 1))
		harness_sql SRC "BEGIN;
UPDATE items SET price = price + 1, note = CONCAT('u', $i) WHERE id = FLOOR(1 + RAND() * 150000);
DELETE FROM items WHERE id = FLOOR(1 + RAND() * 150000);
INSERT INTO items VALUES (1000000 + $i, 'new', $i / 4, NOW(6), NULL);
UPDATE items SET id = id + 5000000 WHERE id = FLOOR(1 + RAND() * 150000);
INSERT INTO tags VALUES (CONCAT('w', $i % 50), $i, $i) ON DUPLICATE KEY UPDATE v = v + 1;
INSERT INTO events (what) VALUES (CONCAT('w', $i));
COMMIT;" >/dev/null 2>&1 || true
	done
}
writer &
WRITER=$!
t_on_exit "touch $T_TMP/stop_writer; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"

migd_start "$T_TMP/migd.conf"
wait_for 60 '[[ $(mctl --json backfill 2>/dev/null | jfield .backfill.chunks_done) -ge 3 ]]' ||
	fail "backfill did not get going: $(mctl status)"
assert_eq "$(harness_sql TGT "SELECT phase FROM migd.migration WHERE name = 't'")" backfilling "state in the target's migd database"
kill -KILL "$MIGD_PID"
wait "$MIGD_PID" 2>/dev/null || true
ok "kill -9 during backfill into MariaDB"

migd_start "$T_TMP/migd.conf"
wait_phase 120 'catching_up|synced'
done_twice=$(harness_sql TGT "SELECT count(*) FROM migd.chunks WHERE name = 't' AND state = 'done' AND attempts > 1")
assert_eq "$done_twice" 0 "no chunk committed twice"
harness_sql SRC "$(types_rows 1000)"
sleep 2
kill -KILL "$MIGD_PID"
wait "$MIGD_PID" 2>/dev/null || true
harness_restart TGT --crash >/dev/null
ok "kill -9 during CDC and a crash of the target MariaDB"
migd_start "$T_TMP/migd.conf"
wait_phase 120 synced
harness_sql SRC "UPDATE types SET d2 = -d2, tm = '-12:00:00.000001', vb = X'ff00', s = 'y' WHERE id = 1001;
DELETE FROM types WHERE id = 1002;"
sleep 2
touch "$T_TMP/stop_writer"
wait "$WRITER" || true
wait_my_caught_up 90
assert_all_same "after CDC"
nw=$(harness_sql SRC "SELECT count(*) FROM events WHERE what LIKE 'w%'")
((nw > 10)) || fail "the writer committed only $nw transactions"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM types")" 5 "edge rows copied and streamed"
ok "after two kill -9 and a target crash, items, tags, events and every edge value identical ($(harness_sql TGT "SELECT count(*) FROM items") items, $nw writer transactions)"

# The canonical form has no zero date: a failed record with its key, the next change applied.
harness_sql SRC "SET SESSION sql_mode = ''; INSERT INTO types (id, dt) VALUES (2001, '0000-00-00'); INSERT INTO types (id) VALUES (2002);"
wait_for 30 '[[ $(harness_sql TGT "SELECT count(*) FROM types WHERE id = 2002") == 1 ]]' ||
	fail "the change after the unmappable one was not applied: $(mctl status)"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM types WHERE id = 2001")" 0 "zero date not applied"
fr=$(harness_sql TGT "SELECT CONCAT(table_name, ' ', \`key\`, ' ', error) FROM migd.failed_records WHERE \`key\` LIKE '%2001%'")
assert_contains "$fr" "2001" "failed record names the key"
assert_contains "$fr" "zero" "failed record says why"
ok "zero date: failed record in the target's migd database ($fr)"
harness_sql SRC "DELETE FROM types WHERE id = 2001"

APP_SRC() { mariadb --no-defaults -N -B -h 127.0.0.1 -P "$SRC_PORT" -u app -papp test -e "$1"; }
APP_TGT() { mariadb --no-defaults -N -B -h 127.0.0.1 -P "$TGT_PORT" -u app -papp test -e "$1"; }
expect_rc 0 mctl freeze
assert_contains "$OUT" "freeze enforced" "enforced"
assert_eq "$(harness_sql SRC "SELECT @@global.read_only")" 1 "source read_only"
assert_eq "$(harness_sql TGT "SELECT @@global.read_only")" 1 "target read_only before the flip"
APP_SRC "INSERT INTO events (what) VALUES ('x')" 2>/dev/null && fail "the app wrote on the frozen source"
APP_TGT "INSERT INTO events (what) VALUES ('x')" 2>/dev/null && fail "the app wrote on the candidate"
wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not open: $(mctl gate || true)"
ok "freeze: read_only on source and target, the app refused on both, gate open"

expect_rc 0 mctl cutover
assert_contains "$OUT" "phase      watching" "phase after cutover"
assert_eq "$(harness_sql TGT "SELECT @@global.read_only")" 0 "target writable after the flip"
assert_eq "$(harness_sql SRC "SELECT @@global.read_only")" 1 "source stays read_only"
rev=$(harness_sql TGT "SELECT reverse_pos FROM migd.migration WHERE name = 't'")
assert_contains "$rev" "@mariadb-bin." "reverse position from the target's binlog"
src_max=$(harness_sql SRC "SELECT max(id) FROM events")
for i in $(seq 1 20); do
	APP_TGT "BEGIN; INSERT INTO events (what) VALUES ('tgt $i'); UPDATE items SET note = 'tgt $i' WHERE id = $i; DELETE FROM tags WHERE n = $i; COMMIT;" ||
		fail "the app could not write on the new owner"
done
tgt_min=$(harness_sql TGT "SELECT min(id) FROM events WHERE what LIKE 'tgt %'")
((tgt_min > src_max)) || fail "AUTO_INCREMENT: source up to $src_max, target wrote $tgt_min"
wait_for 30 '[[ $(harness_sql SRC "SELECT count(*) FROM events WHERE what LIKE '"'tgt %'"'") == 20 ]]' ||
	fail "reverse replication did not bring the target's writes back: $(mctl status)"
ok "cutover: the target owns the data, its AUTO_INCREMENT continues ($tgt_min > $src_max), reverse replication from its binlog reaches the source"

expect_rc 0 mctl rollback
assert_contains "$OUT" "phase      rolled_back" "phase after rollback"
assert_eq "$(harness_sql SRC "SELECT @@global.read_only")" 0 "source writable after the rollback"
assert_eq "$(harness_sql TGT "SELECT @@global.read_only")" 1 "target frozen after the rollback"
assert_all_same "after the rollback"
APP_SRC "INSERT INTO events (what) VALUES ('source again')" || fail "the source refuses the app after the rollback"
ok "rollback: the source owns the data again, identical row for row, every target write on it"
migd_stop 0
