#!/bin/bash
# test_my_types: a MariaDB source's types, read two ways, agree with each
# other and with PostgreSQL.
#
#  1. A type-matrix table (every type docs/type-mapping.md maps, edge
#     values) is inserted; myrender reads it through the snapshot reader
#     (mysnap_copy_range, the binary protocol) and reads the same rows'
#     WRITE_ROWS events from the binlog (binlog_rows), and the two
#     renderings must be identical value by value for every row.
#  2. The snapshot's COPY lines are loaded into a PostgreSQL table of the
#     mapped types (mymeta's) and copied out again (TimeZone UTC,
#     extra_float_digits at its default): PostgreSQL must take every value
#     and print back exactly the same lines -- the rendering is its
#     canonical text.
#  3. Values PostgreSQL cannot take (zero and invalid dates, YEAR 0, text
#     with a NUL, bytes not valid in the column's character set) get the
#     same status from both readers, and the snapshot refuses the range
#     naming table, key and column.
#  4. Chunk planning on keys whose MariaDB order differs from PostgreSQL's
#     (case-insensitive and PAD SPACE collations, latin1, ENUM, UUID) and
#     on composite keys of every other key type: each chunk's rows on
#     MariaDB are exactly the rows its key range selects on PostgreSQL,
#     which is what the target's range DELETE relies on.
#  5. The catalog: docs/type-mapping.md's mapping table is what mymeta
#     maps, column by column; unmappable columns and keyless tables are
#     refused by name; a NOT NULL unique key stands in for a missing
#     primary key.
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../harness/harness.sh
. "$MIGD_SRCDIR/tests/harness/harness.sh"
. "$MIGD_SRCDIR/tests/integration/types_matrix.sh"

# under $MIGD_WRAPPER (valgrind in make check-valgrind) like migd itself
myrender() { "${T_WRAP[@]}" "$TOOLS/myrender" "$@"; }
harness_pair mariadb postgresql # SRC: MariaDB, TGT: PostgreSQL

binlog_pos() { harness_sql SRC "SHOW MASTER STATUS" | awk '{print $1, $2}'; }

# Loads the snapshot lines of $1 (a file of "snap\t..." lines) into the
# PostgreSQL table test.$2 created from myrender's DDL, and checks that
# PostgreSQL prints every line back identically.
pg_roundtrip() {
	local lines=$1 table=$2
	myrender ddl "$SRC_DSN" "test.$table" | harness_sql TGT - ||
		fail "$table: PostgreSQL refused the mapped DDL"
	grep '^snap	' "$lines" | cut -f2- | LC_ALL=C sort >"$T_TMP/$table.mysql"
	{
		echo "COPY test.$table FROM STDIN;"
		cat "$T_TMP/$table.mysql"
		echo '\.'
	} | harness_sql TGT - || fail "$table: PostgreSQL refused a value of the snapshot"
	printf "SET TimeZone = 'UTC';\nCOPY test.%s TO STDOUT;\n" "$table" | harness_sql TGT - |
		LC_ALL=C sort >"$T_TMP/$table.pg"
	if ! cmp -s "$T_TMP/$table.mysql" "$T_TMP/$table.pg"; then
		diff "$T_TMP/$table.mysql" "$T_TMP/$table.pg" | head -20 >&2
		fail "$table: PostgreSQL prints values differently from the rendering"
	fi
}

# ----------------------------------------------------------------- 1 + 2: the matrix
harness_sql SRC "$(types_matrix_ddl)"
read -r bfile bstart < <(binlog_pos)
# Non-strict for one value only: ENUM's '' error value (row 1); the
# warnings are checked below so that nothing else was changed.
warnings=$(harness_sql SRC "SET time_zone = '+00:00', sql_mode = 'NO_ENGINE_SUBSTITUTION';
$(types_matrix_rows "''" "'0001-01-01'")
SHOW WARNINGS;
INSERT INTO types (id) VALUES (4)")
assert_eq "$warnings" "Warning	1265	Data truncated for column 'e' at row 1" "types: insert warnings"
read -r _ bend < <(binlog_pos)

myrender compare "$SRC_DSN" test.types "$bfile" "$bstart" "$bend" >"$T_TMP/types.out" ||
	{
		grep -E '^(mismatch|missing|compared)' "$T_TMP/types.out" >&2 || true
		fail "types: snapshot and binlog renderings differ"
	}
summary=$(tail -n 1 "$T_TMP/types.out")
assert_eq "$summary" "compared rows=6 values=354 mismatches=0" "types: every value compared"
assert_eq "$(grep -c '^snap	' "$T_TMP/types.out")" 6 "types: snapshot COPY lines"
assert_eq "$(grep -c '^binlog	' "$T_TMP/types.out")" 6 "types: binlog rows"
assert_not_contains "$(cat "$T_TMP/types.out")" "snap-error" "types: every value is mappable"
# COPY lines are the same bytes, not only the same values
diff <(grep '^snap	' "$T_TMP/types.out" | cut -f2- | LC_ALL=C sort) \
	<(grep '^binlog	' "$T_TMP/types.out" | cut -f2- | LC_ALL=C sort) >/dev/null ||
	fail "types: COPY lines differ between snapshot and binlog"
# A few renderings spelled out (PostgreSQL's text, COPY-escaped), by column name.
mapfile -t cols < <(myrender ddl "$SRC_DSN" test.types | grep -oP '^  "\K[^"]+')
val() { # ID COLUMN: the snapshot's COPY field
	local i
	for i in "${!cols[@]}"; do
		if [[ ${cols[i]} == "$2" ]]; then
			grep -P "^snap\t$1\t" "$T_TMP/types.out" | cut -f $((i + 2))
			return
		fi
	done
	fail "no column $2"
}
assert_eq "$(val 1 d10)" "-0.000001" "DECIMAL(10,6) -0.000001"
assert_eq "$(val 1 dbl)" "9.999999999999999e+22" "DOUBLE 1e23 (PostgreSQL's shortest digits)"
assert_eq "$(val 1 f)" "0.1" "FLOAT 0.1"
assert_eq "$(val 1 t6)" "-00:00:00.5" "TIME(6) -00:00:00.5"
assert_eq "$(val 1 dt6)" "2024-02-29 12:34:56.5" "DATETIME(6) .5"
assert_eq "$(val 1 ts3)" "2038-01-19 03:14:07.999+00" "TIMESTAMP(3)"
assert_eq "$(val 1 c)" "ab" "CHAR trailing spaces"
assert_eq "$(val 1 tt)" "" "empty string"
assert_eq "$(val 4 tt)" '\N' "NULL"
assert_eq "$(val 1 b4)" '\\x61000000' "BINARY(4) trailing zero bytes"
assert_eq "$(val 1 e)" "" "ENUM error value"
assert_eq "$(val 1 s)" "" "empty SET"
assert_eq "$(val 1 v)" "😀" "4-byte UTF-8"
assert_eq "$(val 1 mt)" 'l1\nl2\r' "newline and CR escaped"
assert_eq "$(val 2 bu)" "18446744073709551615" "max BIGINT UNSIGNED"
assert_eq "$(val 1 bi)" "-9223372036854775808" "min BIGINT"
assert_eq "$(val 2 f)" "1e-40" "FLOAT 1e-40 (subnormal)"
assert_eq "$(val 2 dbl)" "0" "DOUBLE -0"
assert_eq "$(val 2 i6)" "::ffff:192.0.2.1" "INET6 v4-mapped"
assert_eq "$(val 2 b64)" "1111111111111111111111111111111111111111111111111111111111111111" "BIT(64)"
assert_eq "$(val 2 y)" "2155" "YEAR 2155"
assert_eq "$(val 3 f)" "3.4e+38" "FLOAT 3.4e38"
assert_eq "$(val 3 d65)" "0.000000000000000000000000000001" "DECIMAL(65,30)"
assert_eq "$(val 3 tx)" 'form\ffeed' "form feed escaped"
assert_eq "$(val 3 lt)" '\\N' "a backslash-N text is not NULL"
assert_eq "$(val 5 f)" "1.6777216e+07" "FLOAT 16777217"
assert_eq "$(val 5 d18)" "1000000000.5000" "DECIMAL(18,4)"
assert_eq "$(val 5 d20)" "12345678901234.000001" "DECIMAL(20,6)"
ok "types: snapshot and binlog agree on every value of every row (6 rows, 59 columns)"

pg_roundtrip "$T_TMP/types.out" types
ok "types: PostgreSQL takes every rendered value and prints it back identically"

# ----------------------------------------------------------------- 3: unmappable values
harness_sql SRC "CREATE TABLE bad (id INT PRIMARY KEY, da DATE, dt DATETIME(3),
  ts TIMESTAMP NULL DEFAULT NULL, y YEAR, tx TEXT, va VARCHAR(5) CHARACTER SET ascii)"
read -r bfile bstart < <(binlog_pos)
harness_sql SRC "SET time_zone = '+00:00', sql_mode = 'ALLOW_INVALID_DATES';
 INSERT INTO bad VALUES (1, '0000-00-00', '0000-00-00 00:00:00', 0, 0, 'ok', 'ok'),
  (2, '2020-02-30', '2020-00-15 10:00:00.5', NULL, 2000, 'a\\0b', X'80'),
  (3, '2021-01-01', '2021-01-01 00:00:00', '2021-01-01 00:00:00', 2021, 'fine', 'ok')"
read -r _ bend < <(binlog_pos)
myrender compare "$SRC_DSN" test.bad "$bfile" "$bstart" "$bend" >"$T_TMP/bad.out" ||
	{
		grep -E '^(mismatch|missing|compared)' "$T_TMP/bad.out" >&2 || true
		fail "bad: the readers disagree on unmappable values"
	}
snapbad=$(grep -P '^bad\tsnap\t' "$T_TMP/bad.out" | cut -f3- | LC_ALL=C sort)
binbad=$(grep -P '^bad\tbinlog\t' "$T_TMP/bad.out" | cut -f3- | LC_ALL=C sort)
assert_eq "$snapbad" "$binbad" "bad: statuses from snapshot and binlog"
expected=$(printf '%s\n' \
	$'{1}\tda\tzero_date\t0000-00-00' \
	$'{1}\tdt\tzero_date\t0000-00-00 00:00:00' \
	$'{1}\tts\tzero_date\t0000-00-00 00:00:00' \
	$'{1}\ty\tzero_date\t0000' \
	$'{2}\tda\tbad_date\t2020-02-30' \
	$'{2}\tdt\tbad_date\t2020-00-15 10:00:00.5' \
	$'{2}\ttx\tnul_in_text\t\\x610062' \
	$'{2}\tva\tbad_text\t\\x80' | LC_ALL=C sort)
assert_eq "$snapbad" "$expected" "bad: the statuses"
assert_contains "$(cat "$T_TMP/bad.out")" \
	$'snap-error\ttest.bad key {1}: column da: zero_date value \'0000-00-00\' (and other values of the row)' \
	"bad: the snapshot refuses the range naming table, key and column"
ok "bad: zero/invalid dates, YEAR 0, NUL and non-ASCII bytes get the same status from both readers"

harness_sql SRC "CREATE TABLE badkey (d DATE PRIMARY KEY);
 SET sql_mode = ''; INSERT INTO badkey VALUES ('0000-00-00'), ('2020-01-01')"
expect_rc 2 myrender chunks "$SRC_DSN" test.badkey 1
assert_contains "$OUT" "test.badkey key {0000-00-00}: column d: zero_date value '0000-00-00' cannot be a chunk boundary" \
	"badkey: a zero date cannot be a boundary"
ok "badkey: a key PostgreSQL cannot hold is refused as a chunk boundary"

# ----------------------------------------------------------------- 4: chunk ranges
# Keys whose MariaDB order differs from PostgreSQL's byte order ("C"):
# case-insensitive, PAD SPACE ('a' > 'a\t' there), accents, emoji, latin1
# bytes, ENUM member numbers, UUID time fields.
harness_sql SRC "SET time_zone = '+00:00';
 CREATE TABLE tk (k VARCHAR(20) PRIMARY KEY, n INT);
 INSERT INTO tk SELECT CONCAT(ELT(1 + seq % 7, 'a', 'B', 'é', '_', 'Z', 'ä', '😀'),
   seq, IF(seq % 3 = 0, CHAR(9), ''), IF(seq % 5 = 0, ' x', '')), seq
 FROM seq_1_to_300;
 INSERT INTO tk VALUES ('a', -1), (CONCAT('a', CHAR(9)), -2), ('', -3), ('NULL', -5),
   ('{\"q\",x}', -6), ('back\\\\slash', -7);
 CREATE TABLE lk (k VARCHAR(10) CHARACTER SET latin1 NOT NULL, e ENUM('zz', 'b', 'aa') NOT NULL,
   n INT, PRIMARY KEY (e, k));
 INSERT INTO lk SELECT ELT(1 + seq % 6, 'é', '€', 'z', 'F', 'ÿ', 'Œ'),
   ELT(1 + (seq DIV 6) % 3, 'zz', 'b', 'aa'),
   seq FROM seq_1_to_18;
 CREATE TABLE uk (u UUID PRIMARY KEY, n INT);
 INSERT INTO uk SELECT CONCAT(LPAD(HEX(seq * 7919 % 4096), 8, '0'), '-0000-1000-8000-',
   LPAD(HEX(seq), 12, '0')), seq FROM seq_1_to_100;
 CREATE TABLE kmix (d DECIMAL(10,3), dt DATETIME(6), ts TIMESTAMP(3) NOT NULL, tm TIME(6),
   n INT, PRIMARY KEY (d, dt, ts, tm));
 INSERT INTO kmix SELECT (seq % 5) - 2.5, TIMESTAMP'2020-01-01 00:00:00' + INTERVAL (seq % 4) * 1.5 SECOND,
   FROM_UNIXTIME(1600000000 + seq % 3), SEC_TO_TIME((seq % 7) - 3.25), seq FROM seq_1_to_120;
 CREATE TABLE kmix2 (vb VARBINARY(8), bt BIT(4), i6 INET6, i4 INET4, f FLOAT, dbl DOUBLE, y YEAR,
   n INT, PRIMARY KEY (vb, bt, i6, i4, f, dbl, y));
 INSERT INTO kmix2 SELECT IF(seq = 64, X'', UNHEX(LPAD(HEX(seq), 2 * (1 + seq % 3), '0'))),
   seq % 3, CONCAT('::', HEX(seq % 2)), CONCAT('10.0.0.', seq % 2), (seq % 2) / 10, seq % 2 - 0.1,
   1990 + seq % 2, seq FROM seq_1_to_64"
for spec in tk:7 lk:4 uk:9 kmix:11 kmix2:5; do
	table=${spec%%:*}
	myrender ddl "$SRC_DSN" "test.$table" | harness_sql TGT - >/dev/null
	myrender snap "$SRC_DSN" "test.$table" |
		{
			echo "COPY test.$table FROM STDIN;"
			cat
			echo '\.'
		} | harness_sql TGT - >/dev/null
	total=$(harness_sql SRC "SELECT count(*) FROM $table")
	myrender chunks "$SRC_DSN" "test.$table" "${spec#*:}" >"$T_TMP/$table.chunks" ||
		fail "$table: planning failed: $(cat "$T_TMP/$table.chunks")"
	assert_eq "$(tail -n 1 "$T_TMP/$table.chunks")" "total	$total" "$table: chunks cover the table"
	nchunks=0 sum=0
	while IFS=$'\t' read -r tag rows pred; do
		[[ $tag == chunk ]] || continue
		pgrows=$(harness_sql TGT "SELECT count(*) FROM test.$table WHERE $pred")
		[[ $pgrows == "$rows" ]] ||
			fail "$table: chunk [$pred] has $rows rows on MariaDB, $pgrows on PostgreSQL"
		nchunks=$((nchunks + 1)) sum=$((sum + pgrows))
	done <"$T_TMP/$table.chunks"
	assert_eq "$sum" "$total" "$table: PostgreSQL's ranges partition the table"
	((nchunks > 3)) || fail "$table: only $nchunks chunks"
done
ok "chunks: every chunk's MariaDB rows are exactly its PostgreSQL key range (text, latin1, ENUM, UUID, decimal/temporal/binary/bit/inet/float keys)"

# ----------------------------------------------------------------- 5: the catalog
# The documented table, row by row: | `MariaDB DDL` | `PostgreSQL type` | ...
mapfile -t docrows < <(awk '/^## MariaDB → PostgreSQL/ {on = 1; next} /^## / {on = 0}
	on && /^\| `[^`]+` \| `[^`]+` \|/' "$MIGD_SRCDIR/docs/type-mapping.md")
((${#docrows[@]} > 40)) || fail "docs/type-mapping.md: mapping table not found"
ddl="CREATE TABLE docmap (id INT PRIMARY KEY" want=()
for i in "${!docrows[@]}"; do
	IFS='`' read -r _ mytype _ pgtype _ <<<"${docrows[i]}"
	ddl+=", c$i $mytype"
	want+=("  \"c$i\" $pgtype")
done
harness_sql SRC "$ddl)"
mapfile -t got < <(myrender ddl "$SRC_DSN" test.docmap | grep '^  "c' | sed 's/,$//')
assert_eq "${#got[@]}" "${#want[@]}" "docmap: mapped columns"
for i in "${!want[@]}"; do
	assert_eq "${got[i]}" "${want[i]}" "docs/type-mapping.md row '${docrows[i]}'"
done
ok "catalog: mymeta maps every type exactly as docs/type-mapping.md says (${#want[@]} rows)"

harness_sql SRC "CREATE TABLE refused (id INT PRIMARY KEY, c VARCHAR(10) COMPRESSED,
   u VARCHAR(5) CHARACTER SET ucs2, ok INT);
 CREATE TABLE nokey (a INT, b INT);
 CREATE TABLE uq (a INT NULL UNIQUE, b INT NOT NULL, c VARCHAR(3) NOT NULL, g INT AS (b + 1),
   UNIQUE KEY wide (b, c, a), UNIQUE KEY bc (b, c))"
expect_rc 2 myrender ddl "$SRC_DSN" test.refused
assert_contains "$OUT" "test.refused: column c is varchar(10) /*M!100301 COMPRESSED*/: MariaDB COMPRESSED columns are not supported" "refused: COMPRESSED"
assert_contains "$OUT" "test.refused: column u is varchar(5): character set not supported" "refused: ucs2"
expect_rc 2 myrender ddl "$SRC_DSN" test.nokey
assert_contains "$OUT" "test.nokey has no primary key or unique key on NOT NULL columns" "nokey"
OUT=$(myrender ddl "$SRC_DSN" test.uq)
assert_contains "$OUT" 'PRIMARY KEY ("b", "c")' "uq: the NOT NULL unique key is the key"
assert_not_contains "$OUT" '"g"' "uq: generated columns are left out"
assert_contains "$OUT" '"c" character varying(3) COLLATE "C" NOT NULL' "uq: text key column"
ok "catalog: unmappable columns and keyless tables refused by name; unique NOT NULL key used"
