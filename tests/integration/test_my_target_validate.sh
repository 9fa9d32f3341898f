#!/usr/bin/env bash
# test_my_target_validate: validation against a MariaDB target, for both
# pairs that have one -- MariaDB -> MariaDB (SRC -> TGT, database test) and
# PostgreSQL -> MariaDB (PG -> TGT, public.* into database pgt) -- through
# migd and migctl with the real applier, on real servers.  For each pair:
#
#  1. Online: counts, checksums, invariants and queries pass twice while a
#     writer changes the source, and recent writes pass since a position;
#     every result names the source position it holds for (GTID@binlog or
#     an LSN), at or after the one read before the run; no secret printed.
#  2. Divergence behind migd's back on the target -- a changed value, a
#     missing row, two extra rows, a decimal off in the last digit, a
#     datetime shifted by an hour, a trailing space, a case difference --
#     found by checksums with each key, issue and the differing column's
#     values on both sides; counts see the extra row; the run is stored in
#     the target's migd.validation.
#  3. The gate with require_validation = counts,checksums,invariants:
#     results from before the freeze position are refused, a fresh run
#     after the freeze opens it; an invariant broken on the target closes
#     it again, and it opens once the invariant holds.
# PostgreSQL -> MariaDB also: every type of docs/type-mapping.md's
# "PostgreSQL -> MariaDB" table (kinds: boolean, char(n), inet, timestamptz
# into TIMESTAMP and into DATETIME, jsonb, ...) compares equal when the
# data is the same, and a change in any one column of it is found with
# that column named; a column pair without an exact common text (real
# against a DOUBLE) is refused by name, never passed.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
# shellcheck source=../harness/harness.sh
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair mariadb mariadb # SRC: the MariaDB source, TGT: the MariaDB target of both pairs
harness_start_pg PG          # the PostgreSQL source of the second pair

# One line per result and per differing key and column (of migctl --json validate):
#   result <schema.table|check> <kind> ok=<bool> <source rows> <target rows> <position>
#   key <table> <kind> <key json> <issue>
#   col <table> <key json> <column>: source <json> target <json>
#   pos <position>      (every position a result holds for)
summary() {
	python3 -c '
import json, sys
v = json.load(sys.stdin)["validation"]
for r in v["results"]:
    name = r.get("name") or "%s.%s" % (r["schema"], r["table"])
    pos = r.get("position") or r.get("position_min") or r.get("since") or "-"
    print("result", name, r["kind"], "ok=%s" % str(r["ok"]).lower(), r.get("source_rows"),
          r.get("target_rows"), pos)
    if r.get("error"): print("error", name, r["kind"], r["error"])
    for p in ("position", "position_max", "position_min"):
        if p in r: print("pos", r[p])
    for k in r.get("keys", []):
        kj = json.dumps(k["key"], separators=(",", ":"), ensure_ascii=False)
        print("key", name, r["kind"], kj, k["issue"])
        for c in k.get("columns", []):
            print("col", name, kj, c["column"] + ": source", json.dumps(c["source"], ensure_ascii=False),
                  "target", json.dumps(c["target"], ensure_ascii=False))
print("mismatches", v["mismatches"])
print("status", v["status"])'
}
# vrun RC ARGS...: migctl --json validate --wait ARGS expecting exit status RC; summary in $S.
vrun() {
	local want=$1
	shift
	expect_rc "$want" mctl --json validate --wait "$@"
	assert_not_contains "$OUT" "password" "validation output carries no secret"
	S=$(summary <<<"$OUT")
}
# The differing-key count of a table's result of a kind.
ndiff() { # table kind
	python3 -c 'import json, sys
print([r["differing_keys"] for r in json.load(sys.stdin)["validation"]["results"]
       if r["table"] == sys.argv[1] and r["kind"] == sys.argv[2]][0])' "$1" "$2" <<<"$OUT"
}
# Positions as numbers to compare: pos_scalar() of GTID@binlog (file << 32 | offset), or an LSN.
scalar() {
	local p=$1
	if [[ $p == */* ]]; then
		echo $((16#${p%/*} << 32 | 16#${p#*/}))
		return
	fi
	p=${p##*@}
	p=${p#binlog:}
	local f=${p%:*} o=${p##*:}
	echo $((10#${f##*.} << 32 | o))
}
# Every position in $S has the pair's form and is at or after $1.
assert_positions() { # not-before regex what
	local p n=0
	while read -r _ p; do
		[[ $p =~ $2 ]] || fail "$3: position '$p' is not of the source's form"
		(($(scalar "$p") >= $(scalar "$1"))) || fail "$3: a result holds for $p, before $1"
		n=$((n + 1))
	done < <(grep '^pos ' <<<"$S")
	((n > 0)) || fail "$3: no result names a position"
}
GTID_RE='^gtid:[0-9]+-[0-9]+-[0-9]+@mariadb-bin\.[0-9]{6}:[0-9]+$'
LSN_RE='^[0-9A-F]+/[0-9A-F]+$'
my_pos() { # the MariaDB source's position, GTID@binlog
	local g f o
	g=$(harness_sql SRC "SELECT @@gtid_binlog_pos")
	read -r f o < <(harness_sql SRC "SHOW MASTER STATUS" | awk '{print $1, $2}')
	echo "gtid:$g@$f:$o"
}
pg_pos() { harness_sql PG "SELECT pg_current_wal_lsn()"; }
pg_caught_up() {
	local want
	want=$(pg_pos)
	wait_for 60 '[[ $(mctl --json lag | jfield .lag.bytes) == 0 ]] &&
		[[ $(harness_sql PG "SELECT '"'"'$(mctl --json lag | jfield .stream.confirmed_pos)'"'"'::pg_lsn >= '"'"'$want'"'"'::pg_lsn") == t ]]' ||
		fail "the target did not catch up to $want"
}

conf() { # file name source-engine source-dsn schema [more [tables] lines]
	local f=$1 name=$2 eng=$3 dsn=$4 db=$5
	shift 5
	cat >"$f" <<-EOF
		[migration]
		name = $name
		state_dir = $T_TMP/state-$name
		[source]
		engine = $eng
		dsn = $dsn
		[target]
		engine = mariadb
		dsn = $TGT_DSN
		[tables]
		$(printf '%s\n' "$@")
		[backfill]
		chunk_rows = 1000
		[apply]
		batch_delay = 50ms
		[validation]
		rechecks = 3
		recheck_wait = 30s
		max_keys = 50
		[freeze]
		roles = app
		drain_timeout = 30s
		[gate]
		require_validation = counts,checksums,invariants
		[control]
		socket = $T_SOCK
		[metrics]
		port = 0
		[invariant balance_total]
		source = SELECT SUM(balance) FROM $([[ $eng == mariadb ]] && echo test.acc || echo acc)
		target = SELECT SUM(balance) FROM $db.acc
		[invariant no_negative_balance]
		expect = empty
		target = SELECT id, balance FROM $db.acc WHERE balance < 0
		[query first_owners]
		source = SELECT id, owner FROM $([[ $eng == mariadb ]] && echo test.acc || echo acc) WHERE id <= 5 ORDER BY id
		target = SELECT id, owner FROM $db.acc WHERE id <= 5 ORDER BY id
	EOF
}

# The steps every pair goes through; $1 names the target database, $2 the
# source's position function, $3 its form, $4 a command waiting until the
# target has caught up, $5 the source's SQL runner, $6 the writer's SQL.
# TAB is the migrated table name as results show it (schema.acc on the source).
pair_steps() {
	local db=$1 posf=$2 re=$3 caught=$4 srcsql=$5 wsql=$6 p0 i
	local acc=$SCHEMA.acc

	# ----------------------------------------------------------- 1: online, clean
	p0=$($posf)
	rm -f "$T_TMP/stop_writer"
	(while [[ ! -f $T_TMP/stop_writer ]]; do $srcsql "$wsql" >/dev/null 2>&1 || true; done) &
	WRITER=$!
	t_on_exit "touch $T_TMP/stop_writer; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"
	# The runs happen while the writer writes: the source moves before the first and during them.
	wait_for 20 '(( $(scalar "$($posf)") > $(scalar "$p0") ))' || fail "$PAIR: the writer does not write"
	local p1
	p1=$($posf)
	for i in 1 2; do
		vrun 0
		assert_contains "$S" "mismatches 0" "$PAIR online run $i"
		assert_contains "$S" "result $acc counts ok=true" "$PAIR online run $i: counts"
		assert_contains "$S" "result $acc checksums ok=true" "$PAIR online run $i: checksums"
		assert_contains "$S" "result $SCHEMA.live checksums ok=true" "$PAIR online run $i: the written table"
		for c in "balance_total invariant" "no_negative_balance invariant" "first_owners query"; do
			assert_contains "$S" "result $c ok=true" "$PAIR online run $i: $c"
		done
		assert_positions "$p0" "$re" "$PAIR online run $i"
	done
	(($(scalar "$($posf)") > $(scalar "$p1"))) || fail "$PAIR: no write during the runs"
	assert_eq "$(jfield .validation.results.1.digest <<<"$OUT")" hashtextextended "$PAIR: digest kind"
	vrun 0 --kind recent --since "$p0"
	assert_contains "$S" "result $SCHEMA.live recent ok=true" "$PAIR recent writes"
	local nk
	nk=$(python3 -c 'import json, sys
print([r["keys_checked"] for r in json.load(sys.stdin)["validation"]["results"] if r["table"] == "live"][0])' <<<"$OUT")
	((nk > 0)) || fail "$PAIR recent writes: no key of live checked"
	touch "$T_TMP/stop_writer"
	wait "$WRITER" || true
	$caught
	ok "$PAIR: counts, checksums, invariants, queries pass twice under concurrent writes and recent writes since $p0 pass; every result holds for a source position at or after it"

	# ----------------------------------------------------------- 2: divergence on the target
	harness_sql TGT "CREATE DATABASE IF NOT EXISTS scratch; DROP TABLE IF EXISTS scratch.acc;
CREATE TABLE scratch.acc LIKE $db.acc; INSERT INTO scratch.acc SELECT * FROM $db.acc;
UPDATE $db.acc SET owner = 'tampered' WHERE id = 10;
DELETE FROM $db.acc WHERE id = 20;
INSERT INTO $db.acc (id, owner, balance, updated) VALUES (999998, 'ghost', 1, '2026-01-01'), (999999, 'ghost', 1, '2026-01-01');
UPDATE $db.acc SET balance = balance + 0.01 WHERE id = 30;
UPDATE $db.acc SET updated = updated + INTERVAL 1 HOUR WHERE id = 40;
UPDATE $db.acc SET owner = CONCAT(owner, ' ') WHERE id = 50;
UPDATE $db.acc SET owner = UPPER(owner) WHERE id = 60;"
	vrun 5 --kind checksums
	assert_contains "$S" "result $acc checksums ok=false" "$PAIR divergence: reported"
	assert_eq "$(ndiff acc checksums)" 8 "$PAIR divergence: differing keys"
	for want in "key $acc checksums {\"id\":\"10\"} differs" \
		"col $acc {\"id\":\"10\"} owner: source \"owner 10\" target \"tampered\"" \
		"key $acc checksums {\"id\":\"20\"} missing on target" \
		"key $acc checksums {\"id\":\"999998\"} extra on target" \
		"key $acc checksums {\"id\":\"999999\"} extra on target" \
		"col $acc {\"id\":\"30\"} balance: source \"37.50\" target \"37.51\"" \
		"col $acc {\"id\":\"40\"} updated: source \"2026-01-01 00:40:00\" target \"2026-01-01 01:40:00\"" \
		"col $acc {\"id\":\"50\"} owner: source \"owner 50\" target \"owner 50 \"" \
		"col $acc {\"id\":\"60\"} owner: source \"owner 60\" target \"OWNER 60\""; do
		assert_contains "$S" "$want" "$PAIR divergence"
	done
	assert_not_contains "$S" "{\"id\":\"10\"} balance" "$PAIR divergence: only differing columns listed"
	assert_contains "$S" "result $SCHEMA.live checksums ok=true" "$PAIR divergence: an untouched table passes"
	stored=$(harness_sql TGT "SELECT status, mismatches, position_min FROM migd.validation WHERE name = '$PAIR' ORDER BY id DESC LIMIT 1")
	[[ $stored =~ ^done$'\t'8$'\t' ]] || fail "$PAIR: stored run: $stored"
	[[ ${stored##*$'\t'} =~ $re ]] || fail "$PAIR: stored position: $stored"
	vrun 5 --kind counts
	assert_contains "$S" "result $acc counts ok=false 5000 5001" "$PAIR divergence: counts"
	ok "$PAIR: a changed value, a missing row, two extra rows, the last decimal digit, +1 hour, a trailing space and a case difference on the target: each found with its key, issue and both sides' values; counts 5000 vs 5001; the run is stored in the target's migd.validation"

	harness_sql TGT "DELETE FROM $db.acc WHERE id IN (10, 20, 30, 40, 50, 60, 999998, 999999);
INSERT INTO $db.acc SELECT * FROM scratch.acc WHERE id IN (10, 20, 30, 40, 50, 60);"
	vrun 0 --kind checksums
	ok "$PAIR: repaired, checksums pass again"
}

# The gate: only results at or after the freeze position count; an invariant broken closes it.
gate_steps() {
	local db=$1 posf=$2 srcsql=$3 touch_sql=$4
	vrun 0
	local before
	before=$($posf)
	$srcsql "$touch_sql" >/dev/null # the freeze position is past the run's
	$5
	expect_rc 0 mctl freeze
	assert_contains "$OUT" "freeze enforced" "$PAIR freeze"
	expect_rc 5 mctl gate
	assert_contains "$OUT" "NO   validation_counts" "$PAIR gate: counts from before the freeze"
	assert_contains "$OUT" "before the freeze position" "$PAIR gate: says why"
	assert_contains "$OUT" "NO   validation_checksums" "$PAIR gate: checksums from before the freeze"
	vrun 0
	wait_for 30 'mctl gate >/dev/null 2>&1' || fail "$PAIR: the gate did not open after a fresh run: $(mctl gate || true)"
	expect_rc 0 mctl gate
	assert_contains "$OUT" "ok   validation_checksums" "$PAIR gate: fresh checksums"
	assert_contains "$OUT" "(freeze at " "$PAIR gate: names the freeze position"
	ok "$PAIR: the gate refuses results from before the freeze position ($before) and opens with a fresh run after it"

	harness_sql TGT "UPDATE $db.acc SET balance = -balance WHERE id = 70"
	vrun 5 --kind invariants
	assert_contains "$S" "result no_negative_balance invariant ok=false" "$PAIR: broken invariant"
	assert_contains "$S" "result balance_total invariant ok=false" "$PAIR: sums differ"
	assert_contains "$OUT" '"V2:70|V6:-87.50"' "$PAIR: the violating row"
	expect_rc 5 mctl gate
	assert_contains "$OUT" "NO   validation_invariants" "$PAIR gate: the invariant closes it"
	harness_sql TGT "UPDATE $db.acc SET balance = -balance WHERE id = 70"
	vrun 0 --kind invariants
	expect_rc 0 mctl gate
	ok "$PAIR: an invariant broken on the target closes the gate; holding again, it opens"
}

# ================================================================ MariaDB -> MariaDB
ACC_MY="seq, CONCAT('owner ', seq), seq * 1.25, TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq MINUTE,
  TIMESTAMP'2025-06-01 12:00:00.5' + INTERVAL seq SECOND, IF(seq % 5 = 0, NULL, CONCAT('note ', seq)),
  seq % 2 = 0, UNHEX(MD5(seq))"
DDL="CREATE TABLE acc (id INT PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance DECIMAL(12,2) NOT NULL,
  updated DATETIME(6) NOT NULL, at TIMESTAMP(6) NULL DEFAULT NULL, note TEXT, flag BOOLEAN, photo BLOB);
CREATE TABLE live (id INT PRIMARY KEY, n BIGINT NOT NULL);
CREATE TABLE types (id int PRIMARY KEY,
	d1 decimal(5,2), d2 decimal(38,12), d3 decimal(10,0) unsigned,
	i1 tinyint, i2 smallint unsigned, i3 mediumint, i4 int unsigned, i8 bigint, u8 bigint unsigned,
	f float, db double, dt date, tm time(6), tm0 time, dtm datetime(6), ts timestamp(3) NULL,
	y year, c char(4), vc varchar(40), tx text, bn binary(4), vb varbinary(20), bl blob,
	e enum('a','b','c d'), s set('x','y','z'), bt bit(10), j json, u uuid, i6 inet6, i4a inet4);
CREATE USER app@'%' IDENTIFIED BY 'app';
GRANT SELECT, INSERT, UPDATE, DELETE ON test.* TO app@'%';"
harness_sql SRC "$DDL"
harness_sql TGT "$DDL"
harness_sql SRC "SET time_zone = '+00:00';
INSERT INTO acc SELECT $ACC_MY FROM seq_1_to_5000;
INSERT INTO live SELECT seq, 0 FROM seq_1_to_2000;
INSERT INTO types VALUES
 (1, -999.99, -12345678901234567890123456.123456789012, 9999999999,
  -128, 65535, -8388608, 4294967295, -9223372036854775808, 18446744073709551615,
  -3.40282e38, -1.7976931348623157e308, '1000-01-01', '-838:59:59.000000', '838:59:59',
  '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999', 2155,
  'ab ', 'x😀y', '', X'00ff0a00', X'', X'5c0a0d09', 'a', '', b'1111111111', '{\"a\": [1, 2.5, null]}',
  '00000000-0000-1000-8000-00000000000a', '::ffff:192.0.2.1', '10.0.0.1'),
 (2, 0.01, 0.000000000001, 0, 127, 0, 8388607, 0, 9223372036854775807, 0,
  1.5, 0.1, '2024-02-29', '-00:00:00.500000', '00:00:00', '1000-01-01 00:00:00.000001',
  '1970-01-01 00:00:01.000', 1901, '', 'tab\there', 'line\nbreak \\\\\\\\ back', X'20202020',
  X'00', X'', 'c d', 'x,z', b'0', '[]', 'ffffffff-ffff-1fff-bfff-ffffffffffff', '2001:db8::1', '0.0.0.0'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"

PAIR=m
SCHEMA=test
conf "$T_TMP/m.conf" m mariadb "$SRC_DSN" test "include = test.*"
migd_start "$T_TMP/m.conf"
wait_phase 120 synced
pair_steps test my_pos "$GTID_RE" "wait_my_caught_up 60" "harness_sql SRC" \
	"UPDATE live SET n = n + 1 WHERE id = FLOOR(1 + RAND() * 1999);
UPDATE acc SET note = CONCAT('w', RAND()) WHERE id = 1000 + FLOOR(RAND() * 4000);
UPDATE live SET n = n + 1 WHERE id = FLOOR(1 + RAND() * 1999)"
gate_steps test my_pos "harness_sql SRC" "UPDATE live SET n = n + 1 WHERE id = 1" "wait_my_caught_up 60"
migd_stop 0
harness_sql TGT "SET GLOBAL read_only = 0"
ok "MariaDB -> MariaDB: validation against the MariaDB target works end to end"

# ================================================================ PostgreSQL -> MariaDB
# acc as in the first pair (same values), and kinds: a column of every type
# of the "PostgreSQL -> MariaDB" table in its MariaDB column, edge values
# included (char(n) padding, IPv4 and IPv4-mapped inet, timestamptz in and
# out of UTC, empty vs NULL, tabs, backslashes, 4-byte UTF-8).
harness_sql PG "CREATE ROLE app LOGIN;
CREATE TABLE acc (id bigint PRIMARY KEY, owner varchar(40) NOT NULL, balance numeric(12,2) NOT NULL,
  updated timestamp(6) NOT NULL, at timestamptz, note text, flag boolean, photo bytea);
CREATE TABLE live (id int PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE kinds (id int PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, n numeric(20,6), r real,
  d double precision, da date, iv interval, ts timestamp(3), tz timestamptz, tzd timestamptz,
  vc varchar(20), tx text, c char(6), bya bytea, bt bit(10), b boolean, u uuid, ip inet, j json, jb jsonb);
INSERT INTO acc SELECT g, 'owner ' || g, g * 1.25, '2026-01-01 00:00:00'::timestamp + g * interval '1 minute',
  '2025-06-01 12:00:00.5+00'::timestamptz + g * interval '1 second',
  CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g END, g % 2 = 0, decode(md5(g::text), 'hex')
  FROM generate_series(1, 5000) g;
INSERT INTO live SELECT g, 0 FROM generate_series(1, 2000) g;
INSERT INTO kinds SELECT g, (g * 100 - 1000)::smallint, g * 100000, g * 10000000000::bigint, g / 7.0,
  (g / 3.0)::real, g / 9.0, date '2000-01-01' + g, make_interval(secs => g * 61.5 - 700),
  '2010-05-06 07:08:09.123'::timestamp + g * interval '1 hour',
  '2020-01-01 00:00:00.5+02'::timestamptz + g * interval '1 day',
  '1999-12-31 23:59:59.25-05'::timestamptz + g * interval '1 day',
  'v' || g || CASE g % 4 WHEN 0 THEN ' ' WHEN 1 THEN E'\t' ELSE '' END,
  CASE g % 3 WHEN 0 THEN E'line ' || g || E'\r\n\\\\ end' WHEN 1 THEN 'Grüße ☃ 😀 ' || g ELSE 'plain ' || g END,
  CASE WHEN g % 2 = 0 THEN 'ab' ELSE 'abcde' || (g % 10) END, decode(lpad(to_hex(g), 6, '0'), 'hex'),
  (g % 1024)::bit(10), g % 2 = 0, ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
  CASE g % 3 WHEN 0 THEN ('10.0.0.' || g)::inet WHEN 1 THEN ('2001:db8::' || to_hex(g))::inet
    ELSE ('::ffff:192.0.2.' || g)::inet END,
  ('{\"n\": ' || g || ',  \"s\": \"a\"}')::json, jsonb_build_object('g', g, 'a', ARRAY[1, 2])
  FROM generate_series(1, 24) g;
INSERT INTO kinds (id) VALUES (25);
INSERT INTO kinds VALUES (26, -32768, -2147483648, 9223372036854775807, -99999999999999.999999, 1e-30,
  1e300, '1000-01-01', '-838:59:59.5', '9999-12-31 23:59:59.999', '2038-01-19 03:14:07+00',
  '1000-01-01 00:00:00+00', '', '', '', '\\x', B'1111111111', false, 'ffffffff-ffff-4fff-bfff-ffffffffffff',
  '::', '[]', '{}');
GRANT SELECT, INSERT, UPDATE, DELETE ON acc, live, kinds TO app;"
harness_sql TGT "CREATE DATABASE pgt;
CREATE TABLE pgt.acc (id BIGINT PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance DECIMAL(12,2) NOT NULL,
  updated DATETIME(6) NOT NULL, at DATETIME(6), note LONGTEXT, flag TINYINT(1), photo LONGBLOB);
CREATE TABLE pgt.live (id INT PRIMARY KEY, n BIGINT NOT NULL);
CREATE TABLE pgt.kinds (id INT PRIMARY KEY, i2 SMALLINT, i4 INT, i8 BIGINT, n DECIMAL(20,6), r FLOAT,
  d DOUBLE, da DATE, iv TIME(6), ts DATETIME(3), tz TIMESTAMP(6) NULL DEFAULT NULL, tzd DATETIME(6),
  vc VARCHAR(20), tx LONGTEXT, c CHAR(6), bya LONGBLOB, bt BIT(10), b TINYINT(1), u UUID, ip INET6,
  j JSON, jb JSON);"

PAIR=p
SCHEMA=public
conf "$T_TMP/p.conf" p postgresql "$PG_DSN" pgt "include = public.*" "target_schema = pgt"
migd_start "$T_TMP/p.conf"
wait_phase 120 synced
assert_eq "$(harness_sql TGT "SELECT count(*) FROM pgt.kinds")" 26 "every kinds row copied"

# Every type compares equal when the data is the same, and a change in any one column is found.
vrun 0 --kind checksums --table public.kinds
assert_contains "$S" "result public.kinds checksums ok=true 26 26" "kinds: every type agrees"
harness_sql TGT "DROP TABLE IF EXISTS scratch.kinds; CREATE TABLE scratch.kinds LIKE pgt.kinds;
INSERT INTO scratch.kinds SELECT * FROM pgt.kinds;
UPDATE pgt.kinds SET i2 = i2 + 1 WHERE id = 1; UPDATE pgt.kinds SET i4 = i4 + 1 WHERE id = 2;
UPDATE pgt.kinds SET i8 = i8 + 1 WHERE id = 3; UPDATE pgt.kinds SET n = n + 0.000001 WHERE id = 4;
UPDATE pgt.kinds SET r = r + 1 WHERE id = 5; UPDATE pgt.kinds SET d = d + 1 WHERE id = 6;
UPDATE pgt.kinds SET da = da + INTERVAL 1 DAY WHERE id = 7;
UPDATE pgt.kinds SET iv = ADDTIME(iv, '00:00:01') WHERE id = 8;
UPDATE pgt.kinds SET ts = ts + INTERVAL 1 HOUR WHERE id = 9;
UPDATE pgt.kinds SET tz = tz + INTERVAL 1 HOUR WHERE id = 10;
UPDATE pgt.kinds SET tzd = tzd + INTERVAL 1 HOUR WHERE id = 11;
UPDATE pgt.kinds SET vc = CONCAT(vc, 'x') WHERE id = 12; UPDATE pgt.kinds SET tx = CONCAT(tx, ' ') WHERE id = 13;
UPDATE pgt.kinds SET c = 'zz' WHERE id = 14; UPDATE pgt.kinds SET bya = CONCAT(bya, X'00') WHERE id = 15;
UPDATE pgt.kinds SET bt = bt ^ 1 WHERE id = 16; UPDATE pgt.kinds SET b = 1 - b WHERE id = 17;
UPDATE pgt.kinds SET u = '00000000-0000-4000-8000-0000000000ff' WHERE id = 18;
UPDATE pgt.kinds SET ip = '::1' WHERE id = 19; UPDATE pgt.kinds SET j = '{\"n\": 0}' WHERE id = 20;
UPDATE pgt.kinds SET jb = '{\"g\": 0}' WHERE id = 21; UPDATE pgt.kinds SET b = NULL WHERE id = 22;
UPDATE pgt.kinds SET tx = UPPER(tx) WHERE id = 23; UPDATE pgt.kinds SET vc = NULL WHERE id = 26;"
vrun 5 --kind checksums --table public.kinds
assert_eq "$(ndiff kinds checksums)" 24 "kinds: one differing key per changed column"
i=0
for c in i2 i4 i8 n r d da iv ts tz tzd vc tx c bya bt b u ip j jb b tx; do
	i=$((i + 1))
	assert_contains "$S" "col public.kinds {\"id\":\"$i\"} $c: source" "kinds: column $c of key $i"
done
for want in 'col public.kinds {"id":"17"} b: source "0" target "1"' \
	'col public.kinds {"id":"22"} b: source "1" target null' \
	'col public.kinds {"id":"14"} c: source "ab" target "zz"' \
	'col public.kinds {"id":"19"} ip: source "2001:db8::13" target "::1"' \
	'col public.kinds {"id":"11"} tzd: source "2000-01-12 04:59:59.25" target "2000-01-12 05:59:59.25"' \
	'col public.kinds {"id":"4"} n: source "0.571429" target "0.571430"' \
	'col public.kinds {"id":"26"} vc: source "" target null'; do
	assert_contains "$S" "$want" "kinds"
done
harness_sql TGT "DELETE FROM pgt.kinds; INSERT INTO pgt.kinds SELECT * FROM scratch.kinds"
vrun 0 --kind checksums --table public.kinds
ok "PostgreSQL -> MariaDB: every type of the mapping (smallint .. jsonb; boolean as TINYINT(1), char(n) as CHAR(n), inet as INET6, timestamptz as TIMESTAMP and as DATETIME) compares equal, and a change in any one column -- NULL vs value and empty vs NULL included -- is found naming it"

pair_steps pgt pg_pos "$LSN_RE" pg_caught_up "harness_sql PG" \
	"UPDATE live SET n = n + 1 WHERE id = (random() * 1999 + 1)::int;
UPDATE acc SET note = 'w' || random() WHERE id = 1000 + (random() * 3999)::int;
UPDATE live SET n = n + 1 WHERE id = (random() * 1999 + 1)::int"

# A pair of column types without an exact common text is refused by name, never passed.
harness_sql TGT "ALTER TABLE pgt.kinds MODIFY r DOUBLE"
vrun 5 --kind checksums --table public.kinds
assert_contains "$S" "result public.kinds checksums ok=false" "refused: not a pass"
assert_contains "$S" "column r: PostgreSQL real against the target's double: no exact comparison" "refused: names the column and both types"
harness_sql TGT "ALTER TABLE pgt.kinds MODIFY r FLOAT"
vrun 0 --kind checksums --table public.kinds
ok "PostgreSQL -> MariaDB: real against a DOUBLE column is refused by name (checksums fail, saying why); back to FLOAT it passes"

gate_steps pgt pg_pos "harness_sql PG" "UPDATE live SET n = n + 1 WHERE id = 1" pg_caught_up
migd_stop 0
ok "PostgreSQL -> MariaDB: validation against the MariaDB target works end to end"
