#!/usr/bin/env bash
# test_my_roundtrip: the type matrix (types_matrix.sh: every MariaDB type
# docs/type-mapping.md maps, edge values) goes MariaDB -> PostgreSQL ->
# MariaDB through two real migrations, each carrying it by backfill and by
# CDC, and comes back byte for byte as it was:
#
#  1. "there", MariaDB SRC -> PostgreSQL TGT: rows 1-6 (and the all-NULL
#     rows 31-36, 41-46) are backfilled from the consistent snapshot; once
#     synced, copies of rows 1-6 are inserted as 11-16 and rows 31-36 are
#     updated to the values of 1-6, so the same values also arrive as
#     binlog WRITE and UPDATE images.  On PostgreSQL every copy's COPY text
#     equals its original's.
#  2. "back", PostgreSQL TGT -> MariaDB BACK (a table of the source's own
#     DDL): everything is backfilled from the slot's snapshot; once synced,
#     copies of rows 1-6 are inserted as 21-26 and rows 41-46 updated to
#     them on PostgreSQL, so the values also travel as pgoutput INSERTs and
#     UPDATEs through the MariaDB sink.
#  3. On BACK, each group (1-6, 11-16, 21-26, 31-36, 41-46) equals SRC's
#     rows 1-6, every column as the client prints it (time_zone UTC, binary
#     included); no failed record on either migration.
#
# Two values of the matrix cannot go back and are not in it here: ENUM's ''
# error value and dates before year 1000 (test_my_my_backfill.sh shows
# they become failed records).
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
. "$MIGD_SRCDIR/tests/integration/types_matrix.sh"
harness_pair mariadb postgresql # SRC: MariaDB, TGT: PostgreSQL
harness_start_mariadb BACK >/dev/null

myrender() { "${T_WRAP[@]}" "$TOOLS/myrender" "$@"; }
UTC="SET time_zone = '+00:00';"

harness_sql SRC "$(types_matrix_ddl)"
harness_sql BACK "$(types_matrix_ddl)"
harness_sql SRC "$UTC $(types_matrix_rows "'a'" "'1001-01-01'")
INSERT INTO types (id) VALUES (4);
INSERT INTO types (id) SELECT seq FROM seq_31_to_36;
INSERT INTO types (id) SELECT seq FROM seq_41_to_46;"
harness_sql TGT "CREATE SCHEMA test"
myrender ddl "$SRC_DSN" test.types | harness_sql TGT - || fail "PostgreSQL refused the mapped DDL"

# Every column but id, for the copies.
COLS=$(harness_sql SRC "SELECT GROUP_CONCAT(column_name ORDER BY ordinal_position)
	FROM information_schema.columns WHERE table_schema = 'test' AND table_name = 'types' AND column_name <> 'id'")
IFS=, read -r -a COL <<<"$COLS"
[[ ${#COL[@]} == 58 ]] || fail "expected 58 columns besides id, got ${#COL[@]}"

# A group of six rows of a MariaDB server as the client prints them, id left out.
my_group() { # SERVER FIRST_ID
	harness_sql "$1" "$UTC SELECT * FROM types WHERE id BETWEEN $2 AND $(($2 + 5)) ORDER BY id" | cut -f2-
}
assert_group() { # SERVER FIRST_ID what
	my_group SRC 1 >"$T_TMP/want"
	my_group "$1" "$2" >"$T_TMP/got"
	[[ $(wc -l <"$T_TMP/want") == 6 ]] || fail "SRC rows 1-6: $(wc -l <"$T_TMP/want") lines"
	if ! cmp -s "$T_TMP/want" "$T_TMP/got"; then
		diff "$T_TMP/want" "$T_TMP/got" | cut -c1-300 | head -10 >&2
		fail "$3: rows $2-$(($2 + 5)) on $1 differ from the source's rows 1-6"
	fi
}

wait_rows() { # SERVER SQL-COUNT WANT what
	local srv=$1 q=$2 n=$3
	wait_for 60 '[[ $(harness_sql "$srv" "$q" 2>/dev/null) == "$n" ]]' ||
		{ mctl status >&2 || true; fail "$4: $(harness_sql "$srv" "$q") rows, expected $n"; }
}

# ----------------------------------------------------------------- 1: there
t_pg_config "$T_TMP/there.conf"
sed -i '0,/^engine = postgresql$/s//engine = mariadb/; s/^include = public\.\*$/include = test.*/;
	s/^name = t$/name = there/; s|^state_dir = .*|state_dir = '"$T_TMP"'/there|' "$T_TMP/there.conf"
migd_start "$T_TMP/there.conf"
wait_phase 120 synced
# The same values again, now as binlog row images: WRITE (11-16) and UPDATE (31-36).
set_list=$(for c in "${COL[@]}"; do printf 't.%s = o.%s, ' "$c" "$c"; done | sed 's/, $//')
harness_sql SRC "$UTC INSERT INTO types SELECT id + 10, $COLS FROM types WHERE id BETWEEN 1 AND 6;
UPDATE types t JOIN types o ON o.id = t.id - 30 SET $set_list WHERE t.id BETWEEN 31 AND 36"
assert_group SRC 31 "the UPDATE on the source"
wait_my_caught_up 60
assert_eq "$(harness_sql TGT "SELECT count(*) FROM test.types")" 24 "there: rows on PostgreSQL"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM migd.failed_records")" 0 "there: no failed record"
pg_group() { # FIRST_ID: COPY text of six rows, id left out
	printf "SET TimeZone = 'UTC';\nCOPY (SELECT * FROM test.types WHERE id BETWEEN %d AND %d ORDER BY id) TO STDOUT;\n" \
		"$1" $(($1 + 5)) | harness_sql TGT - | cut -f2-
}
pg_group 1 >"$T_TMP/pg.snap"
for first in 11 31; do
	pg_group "$first" >"$T_TMP/pg.cdc"
	cmp -s "$T_TMP/pg.snap" "$T_TMP/pg.cdc" || {
		diff "$T_TMP/pg.snap" "$T_TMP/pg.cdc" | cut -c1-300 | head -10 >&2
		fail "there: rows $first.. (binlog) differ from rows 1-6 (snapshot) on PostgreSQL"
	}
done
migd_stop 0
ok "there: MariaDB -> PostgreSQL, the matrix by snapshot and by binlog WRITE and UPDATE images, the same text"

# ----------------------------------------------------------------- 2: back
SRC_DSN=$TGT_DSN TGT_DSN=$BACK_DSN t_pg_config "$T_TMP/back.conf"
sed -i '/^\[target\]$/,/^engine/ s/^engine = postgresql$/engine = mariadb/; s/^include = public\.\*$/include = test.*/;
	s/^name = t$/name = back/; s|^state_dir = .*|state_dir = '"$T_TMP"'/back|' "$T_TMP/back.conf"
grep -q '^engine = mariadb$' "$T_TMP/back.conf" || fail "back.conf: no MariaDB target"
migd_start "$T_TMP/back.conf"
wait_phase 120 synced
# Through pgoutput now: INSERTs (21-26) and UPDATEs (41-46) of the same values.
pg_cols=$(printf '"%s", ' "${COL[@]}" | sed 's/, $//')
harness_sql TGT "INSERT INTO test.types SELECT id + 20, $pg_cols FROM test.types WHERE id BETWEEN 1 AND 6;
UPDATE test.types t SET ($pg_cols) = (SELECT $pg_cols FROM test.types o WHERE o.id = t.id - 40)
	WHERE t.id BETWEEN 41 AND 46"
wait_rows BACK "SELECT COUNT(*) FROM types" 30 "back: the inserts"
wait_caught_up 60 TGT
assert_eq "$(harness_sql BACK "SELECT COUNT(*) FROM migd.failed_records")" 0 "back: no failed record"
for first in 1 11 21 31 41; do
	assert_group BACK "$first" "back"
done
ok "back: PostgreSQL -> MariaDB by snapshot and by pgoutput INSERTs and UPDATEs; all 30 rows equal the source's originals, every column byte for byte"

# Bytes that are no geometry (a POINT header without its coordinates): the
# server refuses them, a failed record with the key; the next change applies.
harness_sql TGT "UPDATE test.types SET g = '\\x000000000101000000ff' WHERE id = 26;
UPDATE test.types SET v = 'after' WHERE id = 25"
wait_rows BACK "SELECT v FROM types WHERE id = 25" after "back: the change after the refused one"
fr=$(harness_sql BACK "SELECT table_name, \`key\`, error FROM migd.failed_records")
assert_contains "$fr" $'test.types\t{"id":"26"}\t' "back: the refused geometry is a failed record with its key"
assert_contains "$fr" "geometry" "back: the failed record says why"
assert_eq "$(harness_sql BACK "SELECT HEX(g) FROM types WHERE id = 26")" \
	"$(harness_sql SRC "SELECT HEX(g) FROM types WHERE id = 6")" "back: the row keeps its geometry"
migd_stop 0
ok "back: a value the server refuses for a geometry column is a failed record ($fr)"
