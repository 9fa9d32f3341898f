#!/bin/bash
# test_my_my_backfill: migd's backfill into a MariaDB target, driven by
# tests/tools/bfdrive (backfill_plan + backfill_run, the daemon's code
# without its pipeline), against real servers.
#
#  1. MariaDB -> MariaDB: the type matrix of test_my_types.sh (edge values
#     of every type docs/type-mapping.md maps) and tables keyed by
#     integers, composite decimal/temporal keys, binary/bit/inet/float
#     keys, text keys in case-insensitive and latin1 collations, ENUM and
#     UUID keys are copied in small chunks by 2 workers and end identical
#     row for row (SELECT * ORDER BY key on both servers, UTC, byte for
#     byte).  The values MariaDB -> MariaDB cannot carry through
#     PostgreSQL's canonical text (ENUM's '' error value, dates before
#     year 1000) and a zero date the source cannot render become failed
#     records with their key and reason, never altered rows.
#  2. PostgreSQL -> MariaDB: integer, text (COLLATE "C") + bytea keys and
#     a broad set of types; PostgreSQL's COPY and the MariaDB target read
#     back as canonical text (myrender snap) are identical.  NaN,
#     infinity and a UUID MariaDB refuses become failed records.
#  3. kill -9 of bfdrive mid-copy, then a second run: the chunks done
#     before the kill are not copied again (ledger attempts and
#     finished_at unchanged), the table ends identical.
#  4. Non-empty target tables (the range DELETE path): extra and stale
#     rows inside and around every range are replaced by the source's;
#     a PostgreSQL source whose text key sorts by a linguistic collation
#     is refused at plan time (its ranges would not match MariaDB's).
#  5. A target table missing a column: a clear error, nothing copied.
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../harness/harness.sh
. "$MIGD_SRCDIR/tests/harness/harness.sh"
. "$MIGD_SRCDIR/tests/integration/types_matrix.sh"

bfdrive() { "${T_WRAP[@]}" "$TOOLS/bfdrive" "$@"; }
myrender() { "${T_WRAP[@]}" "$TOOLS/myrender" "$@"; }
harness_pair mariadb mariadb # SRC, TGT
harness_start_pg PG

both() { # the same SQL (DDL) on source and target
	harness_sql SRC "$1"
	harness_sql TGT "$1"
}

# Both MariaDB tables row for row: SELECT * in key order, UTC, as the
# client prints it (-B escapes NUL, tab, newline and backslash).
assert_same_my() { # table order-by [source-where]
	harness_sql SRC "SET time_zone = '+00:00'; SELECT * FROM $1 WHERE ${3:-TRUE} ORDER BY $2" \
		>"$T_TMP/$1.src"
	harness_sql TGT "SET time_zone = '+00:00'; SELECT * FROM $1 ORDER BY $2" >"$T_TMP/$1.tgt"
	if ! cmp -s "$T_TMP/$1.src" "$T_TMP/$1.tgt"; then
		diff "$T_TMP/$1.src" "$T_TMP/$1.tgt" | cut -c1-300 | head -10 >&2
		fail "$1 differs between source and target"
	fi
	[[ -s $T_TMP/$1.src ]] || fail "$1: no rows compared"
}

failed_records() { # name
	harness_sql TGT "SELECT table_name, \`key\`, error FROM migd.failed_records
		WHERE name = '$1' ORDER BY table_name, \`key\`"
}

# ----------------------------------------------------------------- 1: MariaDB -> MariaDB
both "$(types_matrix_ddl)"
harness_sql SRC - <<SQL
SET time_zone = '+00:00', sql_mode = 'NO_ENGINE_SUBSTITUTION';
$(types_matrix_rows "'a'" "'1001-01-01'")
INSERT INTO types (id) VALUES (4);
INSERT INTO types (id, e) VALUES (7, '');
INSERT INTO types (id, da, dt0) VALUES (8, '0001-01-01', '0999-12-31 23:59:59');
SQL
both "SET time_zone = '+00:00';
 CREATE TABLE tk (k VARCHAR(20) PRIMARY KEY, n INT);
 CREATE TABLE lk (k VARCHAR(10) CHARACTER SET latin1 NOT NULL, e ENUM('zz', 'b', 'aa') NOT NULL,
   n INT, PRIMARY KEY (e, k));
 CREATE TABLE uk (u UUID PRIMARY KEY, n INT);
 CREATE TABLE kmix (d DECIMAL(10,3), dt DATETIME(6), ts TIMESTAMP(3) NOT NULL, tm TIME(6),
   n INT, PRIMARY KEY (d, dt, ts, tm));
 CREATE TABLE kmix2 (vb VARBINARY(8), bt BIT(4), i6 INET6, i4 INET4, f FLOAT, dbl DOUBLE, y YEAR,
   n INT, PRIMARY KEY (vb, bt, i6, i4, f, dbl, y));
 CREATE TABLE zd (id INT PRIMARY KEY, d DATE, v VARCHAR(5))"
harness_sql SRC "SET time_zone = '+00:00';
 INSERT INTO tk SELECT CONCAT(ELT(1 + seq % 7, 'a', 'B', 'é', '_', 'Z', 'ä', '😀'),
   seq, IF(seq % 3 = 0, CHAR(9), ''), IF(seq % 5 = 0, ' x', '')), seq
 FROM seq_1_to_300;
 INSERT INTO tk VALUES ('a', -1), (CONCAT('a', CHAR(9)), -2), ('', -3), ('NULL', -5),
   ('{\"q\",x}', -6), ('back\\\\slash', -7);
 INSERT INTO lk SELECT ELT(1 + seq % 6, 'é', '€', 'z', 'F', 'ÿ', 'Œ'),
   ELT(1 + (seq DIV 6) % 3, 'zz', 'b', 'aa'), seq FROM seq_1_to_18;
 INSERT INTO uk SELECT CONCAT(LPAD(HEX(seq * 7919 % 4096), 8, '0'), '-0000-1000-8000-',
   LPAD(HEX(seq), 12, '0')), seq FROM seq_1_to_100;
 INSERT INTO kmix SELECT (seq % 5) - 2.5, TIMESTAMP'2020-01-01 00:00:00' + INTERVAL (seq % 4) * 1.5 SECOND,
   FROM_UNIXTIME(1600000000 + seq % 3), SEC_TO_TIME((seq % 7) - 3.25), seq FROM seq_1_to_120;
 INSERT INTO kmix2 SELECT IF(seq = 64, X'', UNHEX(LPAD(HEX(seq), 2 * (1 + seq % 3), '0'))),
   seq % 3, CONCAT('::', HEX(seq % 2)), CONCAT('10.0.0.', seq % 2), (seq % 2) / 10, seq % 2 - 0.1,
   1990 + seq % 2, seq FROM seq_1_to_64;
 SET sql_mode = '';
 INSERT INTO zd VALUES (1, '2020-01-01', 'a'), (2, '0000-00-00', 'b'), (3, NULL, NULL)"

bfdrive --chunk-rows 7 mariadb "$SRC_DSN" mariadb "$TGT_DSN" \
	'test.types,test.tk,test.lk,test.uk,test.kmix,test.kmix2,test.zd' >"$T_TMP/my.out" 2>&1 ||
	fail "MariaDB -> MariaDB backfill failed: $(cat "$T_TMP/my.out")"
assert_contains "$(cat "$T_TMP/my.out")" "failed=0" "MariaDB -> MariaDB: no chunk failed"
assert_same_my types id "id NOT IN (7, 8)"
assert_same_my tk "CAST(k AS BINARY)"
assert_same_my lk "e, CAST(k AS BINARY)"
assert_same_my uk u
assert_same_my kmix "d, dt, ts, tm"
assert_same_my kmix2 "vb, bt, i6, i4, f, dbl, y"
assert_same_my zd id "id <> 2"
expected=$(printf '%s\n' \
	$'test.types\t{"id":"7"}\tunmappable value for column e: \'\' (ENUM\'s error value) has no literal in strict mode' \
	$'test.types\t{"id":"8"}\tunmappable value for column da: 0001-01-01: year 1 is outside date\'s 1000-9999' \
	$'test.zd\t{"id":"2"}\tunmappable value from the source: column d: zero_date \'0000-00-00\'')
assert_eq "$(failed_records bf)" "$expected" "MariaDB -> MariaDB: failed records"
ok "MariaDB -> MariaDB: type matrix and integer, composite, text, latin1/ENUM, UUID and binary keys identical; refused values are failed records"

# ----------------------------------------------------------------- 2: PostgreSQL -> MariaDB
harness_sql PG "CREATE SCHEMA test;
 CREATE TABLE test.pt (id int PRIMARY KEY, s smallint, i int, b bigint, n numeric(12,3), r real,
   d double precision, da date, ts timestamp(6), tz timestamptz(3), iv interval, vc varchar(10),
   tx text, by bytea, bt bit(5), bo boolean, u uuid, ip inet, j json, jb jsonb);
 INSERT INTO test.pt SELECT g, g % 100 - 50, g * 7, g::bigint * -1000000007, g / -7.0, g / 3.0,
   g / 9.0, date '1000-01-01' + g * 1000, timestamp '2020-01-01' + g * interval '1.5 second',
   timestamptz '2020-01-01 00:00:00+00' + g * interval '0.25 second',
   (g % 50 - 25) * interval '1 minute 0.5 second', 'v' || g, repeat(E'x\t\n\\\\€😀', g % 4),
   decode(md5(g::text), 'hex'), (g % 32)::bit(5), g % 2 = 0,
   overlay(overlay(md5(g::text) placing '4' from 13) placing '8' from 17)::uuid,
   ('2001:db8::' || to_hex(g))::inet, ('{\"a\": ' || g || ', \"s\": \"é\"}')::json,
   ('{\"b\": [' || g || ', null]}')::jsonb FROM generate_series(1, 2000) g;
 INSERT INTO test.pt (id, tx, by) VALUES (0, '', ''), (-1, NULL, NULL);
 CREATE TABLE test.pk (k text COLLATE \"C\", b bytea, n int, PRIMARY KEY (k, b));
 INSERT INTO test.pk SELECT (ARRAY['a', 'A', 'é', '😀', E'a\t', ''])[1 + g % 6] || (g % 9),
   decode(lpad(to_hex(g * 37 % 256), 2 * (1 + g % 3), '0'), 'hex'), g FROM generate_series(1, 500) g
   ON CONFLICT DO NOTHING;
 CREATE TABLE test.pbad (id int PRIMARY KEY, n numeric, ts timestamp, u uuid);
 INSERT INTO test.pbad VALUES (1, 1.5, '2020-01-01', NULL), (2, 'NaN', NULL, NULL),
   (3, NULL, 'infinity', NULL), (4, NULL, NULL, 'cee63112-1c2e-c923-2f3a-2f028ad5c89b'),
   (5, -2, '1999-12-31 23:59:59.5', '550e8400-e29b-41d4-a716-446655440000')"
harness_sql TGT "CREATE TABLE pt (id INT PRIMARY KEY, s SMALLINT, i INT, b BIGINT, n DECIMAL(12,3),
   r FLOAT, d DOUBLE, da DATE, ts DATETIME(6), tz TIMESTAMP(3) NULL, iv TIME(6), vc VARCHAR(10),
   tx LONGTEXT, \`by\` LONGBLOB, bt BIT(5), bo TINYINT(1), u UUID, ip INET6, j JSON, jb JSON);
 CREATE TABLE pk (k VARCHAR(40) COLLATE utf8mb4_bin, b VARBINARY(16), n INT, PRIMARY KEY (k, b));
 CREATE TABLE pbad (id INT PRIMARY KEY, n DECIMAL(10,2), ts DATETIME(6), u UUID)"
bfdrive --name pg --chunk-rows 97 postgresql "$PG_DSN" mariadb "$TGT_DSN" 'test.pt,test.pk,test.pbad' \
	>"$T_TMP/pg.out" 2>&1 || fail "PostgreSQL -> MariaDB backfill failed: $(cat "$T_TMP/pg.out")"
assert_contains "$(cat "$T_TMP/pg.out")" "failed=0" "PostgreSQL -> MariaDB: no chunk failed"
# canonical text on both sides: PostgreSQL's COPY (UTC), MariaDB's rendered as its mapped types
pg_copy() { # select
	printf "SET TimeZone = 'UTC';\nCOPY (%s) TO STDOUT;\n" "$1" | harness_sql PG - >"$T_TMP/pg.copy"
}
assert_same_copy() { # table pg-select
	pg_copy "$2"
	myrender snap "$TGT_DSN" "test.$1" >"$T_TMP/my.copy"
	if ! cmp -s "$T_TMP/pg.copy" "$T_TMP/my.copy"; then
		diff "$T_TMP/pg.copy" "$T_TMP/my.copy" | cut -c1-300 | head -10 >&2
		fail "PostgreSQL -> MariaDB: $1 differs"
	fi
	[[ -s $T_TMP/pg.copy ]] || fail "$1: no rows compared"
}
assert_same_copy pt "SELECT id, s, i, b, n, r, d, da, ts, tz, iv, vc, tx, by, bt, bo::int, u, ip, j, jb
	FROM test.pt ORDER BY id"
assert_same_copy pk "SELECT k, b, n FROM test.pk ORDER BY k, b"
assert_same_copy pbad "SELECT id, n::numeric(10,2), ts, u FROM test.pbad WHERE id IN (1, 5) ORDER BY id"
got=$(failed_records pg)
assert_contains "$got" $'test.pbad\t{"id":"2"}\tunmappable value for column n: NaN has no decimal(10,2) value' "pbad: NaN"
assert_contains "$got" $'test.pbad\t{"id":"3"}\tunmappable value for column ts: infinity has no MariaDB value' "pbad: infinity"
assert_contains "$got" $'test.pbad\t{"id":"4"}\tthe target refused the row: target: Incorrect uuid value' "pbad: a UUID MariaDB refuses"
assert_eq "$(wc -l <<<"$got")" 3 "PostgreSQL -> MariaDB: failed records"
ok "PostgreSQL -> MariaDB: integer, text + bytea keys and 20 types identical as canonical text; NaN, infinity and a refused UUID are failed records"

# ----------------------------------------------------------------- 3: kill -9 and again
both "CREATE TABLE big (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL,
   pad CHAR(60) NOT NULL, KEY (k))"
harness_sql SRC "INSERT INTO big SELECT seq, seq * 7919 % 100000, MD5(seq), SHA1(seq)
   FROM seq_1_to_300000"
done_chunks() { harness_sql TGT "SELECT COUNT(*) FROM migd.chunks WHERE name = 'big' AND state = 'done'"; }
"$TOOLS/bfdrive" --name big --chunk-rows 1000 mariadb "$SRC_DSN" mariadb "$TGT_DSN" test.big \
	>"$T_TMP/big1.out" 2>&1 &
pid=$!
t_on_exit "kill -9 $pid 2>/dev/null"
wait_for 120 '(( $(done_chunks) >= 3 ))' || fail "big: no chunk done within 120 s"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
ledger() { harness_sql TGT "SELECT chunk_no, attempts, finished_at FROM migd.chunks
	WHERE name = 'big' AND state = 'done' ORDER BY chunk_no"; }
before=$(ledger)
ndone=$(wc -l <<<"$before")
((ndone < 301)) || fail "big: every chunk was done before the kill; nothing to test"
bfdrive --name big --chunk-rows 1000 mariadb "$SRC_DSN" mariadb "$TGT_DSN" test.big \
	>"$T_TMP/big2.out" 2>&1 || fail "big: the second run failed: $(cat "$T_TMP/big2.out")"
assert_contains "$(cat "$T_TMP/big2.out")" "chunks=301 done=301 failed=0 rows=300000" "big: ledger"
keys=$(cut -f1 <<<"$before" | paste -sd,)
after=$(harness_sql TGT "SELECT chunk_no, attempts, finished_at FROM migd.chunks
	WHERE name = 'big' AND chunk_no IN ($keys) ORDER BY chunk_no")
assert_eq "$after" "$before" "big: chunks done before the kill (attempts, finished_at)"
assert_same_my big id
ok "kill -9 mid-copy: $ndone done chunks not copied again, the rest copied, identical"

# ----------------------------------------------------------------- 4: non-empty targets
both "CREATE TABLE ne (k VARCHAR(20) NOT NULL, n INT NOT NULL, v VARCHAR(20), PRIMARY KEY (k, n))"
harness_sql SRC "INSERT INTO ne SELECT ELT(1 + seq % 5, 'a', 'B', 'é', 'b ', 'Z'), seq, CONCAT('src', seq)
   FROM seq_1_to_400"
# stale values of source keys, and keys the source does not have: before, between and after
harness_sql TGT "INSERT INTO ne SELECT ELT(1 + seq % 5, 'a', 'B', 'é', 'b ', 'Z'), seq, 'stale'
   FROM seq_1_to_400 WHERE seq % 3 = 0;
 INSERT INTO ne SELECT ELT(1 + seq % 6, '', 'A', 'a', 'zz', '😀', 'b'), seq, 'extra'
   FROM seq_401_to_700;
 INSERT INTO ne VALUES ('a', 0, 'extra'), ('a', -5, 'extra'), ('é', 100000, 'extra')"
bfdrive --name ne --chunk-rows 30 mariadb "$SRC_DSN" mariadb "$TGT_DSN" test.ne \
	>"$T_TMP/ne.out" 2>&1 || fail "ne: backfill failed: $(cat "$T_TMP/ne.out")"
assert_eq "$(harness_sql TGT "SELECT COUNT(*), SUM(target_empty) FROM migd.chunks WHERE name = 'ne'")" \
	"14	0" "ne: chunks planned for a non-empty target"
assert_same_my ne "CAST(k AS BINARY), n"
harness_sql PG "CREATE TABLE test.pne (k text COLLATE \"C\", n int, PRIMARY KEY (k, n));
 INSERT INTO test.pne SELECT (ARRAY['a', 'A', 'é', '😀', 'b'])[1 + g % 5], g FROM generate_series(1, 200) g;
 CREATE TABLE test.icu (k text COLLATE \"und-x-icu\" PRIMARY KEY);
 INSERT INTO test.icu VALUES ('a'), ('B')"
harness_sql TGT "CREATE TABLE pne (k VARCHAR(20) COLLATE utf8mb4_bin, n INT, PRIMARY KEY (k, n));
 INSERT INTO pne SELECT ELT(1 + seq % 4, 'a', 'A', '😀', 'zz'), seq FROM seq_1_to_400;
 CREATE TABLE icu (k VARCHAR(20) PRIMARY KEY); INSERT INTO icu VALUES ('x')"
bfdrive --name pne --chunk-rows 17 postgresql "$PG_DSN" mariadb "$TGT_DSN" test.pne \
	>"$T_TMP/pne.out" 2>&1 || fail "pne: backfill failed: $(cat "$T_TMP/pne.out")"
assert_same_copy pne "SELECT k, n FROM test.pne ORDER BY k, n"
expect_rc 1 bfdrive --name icu postgresql "$PG_DSN" mariadb "$TGT_DSN" test.icu
assert_contains "$OUT" "planning test.icu: the target table \"test\".\"icu\" is not empty and key column k sorts by collation und-x-icu on the source" \
	"icu: a linguistic source order is refused for a non-empty target"
assert_eq "$(harness_sql TGT "SELECT COUNT(*) FROM migd.chunks WHERE name = 'icu'")" 0 "icu: nothing planned"
ok "non-empty targets: range deletes make text-keyed tables identical (MariaDB and PostgreSQL sources); a linguistic source collation is refused"

# ----------------------------------------------------------------- 5: a column missing
harness_sql SRC "CREATE TABLE mc (id INT PRIMARY KEY, a INT, b INT); INSERT INTO mc VALUES (1, 2, 3)"
harness_sql TGT "CREATE TABLE mc (id INT PRIMARY KEY, a INT)"
expect_rc 1 bfdrive --name mc mariadb "$SRC_DSN" mariadb "$TGT_DSN" test.mc
assert_contains "$OUT" 'bfdrive: planning test.mc: target table `test`.`mc` has no column b (the source'"'"'s test.mc has it)' \
	"mc: a missing column is named"
assert_eq "$(harness_sql TGT "SELECT COUNT(*) FROM mc")" 0 "mc: nothing copied"
ok "a target table missing a column: refused at plan time with table and column named"
