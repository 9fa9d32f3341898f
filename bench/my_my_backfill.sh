#!/usr/bin/env bash
# bench/my_my_backfill.sh: MariaDB -> MariaDB backfill, migd side by side with
# mydumper/myloader (Debian's 0.10.1) on the same data, medians of RUNS runs,
# ratios printed.
#
# Data (not timed): $TABLES tables test.sbtest1.. of $ROWS rows each in the
# source MariaDB, sysbench's shape (id int PK, k int with an index, c
# char(120), pad char(60)) plus a decimal, a datetime(6) and a nullable text
# column, so both tools convert more than integers and strings.
#
# Each run drops and recreates the target database `test` (and migd's
# ledger database `migd`), then:
#   migd       the schema created first (migd requires it: the source's DDL,
#              keys and the k index); timed: tests/tools/bfdrive, which runs
#              the daemon's backfill (backfill_plan + backfill_run: plan the
#              chunks, copy them, the final ledger check) without the rest of
#              the daemon -- from its start to its exit; parallel $PARALLEL,
#              chunk_rows $CHUNK_ROWS.  The daemon's MariaDB target path
#              drives the same code once the coordinator supports it.
#   mydumper   `mydumper -t $PARALLEL -r $CHUNK_ROWS --trx-consistency-only`
#              into a directory, then `myloader -t $PARALLEL -o -e` into the
#              empty database (schema, data, indexes; -e keeps the binlog
#              on, as migd's writes are binlogged).  Timed: both, end to
#              end; the dump's share is printed too.
# Durability is the harness target's for both: innodb_flush_log_at_trx_commit
# = 1, log_bin on, sync_binlog 0.  The tools take turns, the order rotating
# per run.  After each run the target's row count and sum(k) must equal the
# source's, and a CHECKSUM TABLE of every table must match the source's.
#
# Environment: ROWS (500000), TABLES (2), RUNS (3), CHUNK_ROWS (50000),
# PARALLEL (2).  A quick try: ROWS=50000 RUNS=1.
set -euo pipefail
BENCH_SELF=$0
BENCH_ARGS=("$@")
cd "$(dirname "$0")/.."
ROOT=$PWD
source "$ROOT/bench/lib.sh"
bench_header ROWS TABLES RUNS CHUNK_ROWS PARALLEL
ROWS=${ROWS:-500000}
TABLES=${TABLES:-2}
RUNS=${RUNS:-3}
CHUNK_ROWS=${CHUNK_ROWS:-50000}
PARALLEL=${PARALLEL:-2}
bench_prepare
BFDRIVE=$ROOT/tests/tools/bfdrive
if [[ ! -x $BFDRIVE ]]; then
	echo "# building tests/tools/bfdrive"
	make -s -C "$ROOT" tests/tools/bfdrive >/dev/null
fi
command -v mydumper >/dev/null || {
	echo "# installing mydumper"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q mydumper >/dev/null
}
echo "# $(mydumper --version | head -1)"

source "$ROOT/tests/harness/harness.sh"
harness_start_mariadb SRC
harness_start_mariadb TGT
W=$HARNESS_ROOT/bench
mkdir -p "$W"
src() { harness_sql_db SRC test "$1"; }
tgt() { harness_sql_db TGT mysql "$1"; }
echo "# mariadb $(src 'SELECT VERSION()'); loading $TABLES x $ROWS rows"
schema() {
	local i
	for i in $(seq 1 "$TABLES"); do
		echo "CREATE TABLE sbtest$i (id int NOT NULL PRIMARY KEY, k int NOT NULL DEFAULT 0,
			c char(120) NOT NULL DEFAULT '', pad char(60) NOT NULL DEFAULT '',
			price decimal(12,2), created datetime(6), note text, KEY k_$i (k));"
	done
}
src "$(schema)"
for i in $(seq 1 "$TABLES"); do
	src "INSERT INTO sbtest$i SELECT seq, FLOOR(RAND() * $ROWS), MD5(seq), SHA1(seq), seq / 7,
		TIMESTAMP('2024-01-01') + INTERVAL seq SECOND, IF(seq % 3 = 0, NULL, CONCAT('n', seq))
	FROM seq_1_to_$ROWS"
done
sums() { # NAME: count and sum(k) of every table
	local i
	for i in $(seq 1 "$TABLES"); do
		harness_sql_db "$1" test "SELECT CONCAT(COUNT(*), ' ', SUM(k)) FROM sbtest$i"
	done | tr '\n' ' '
}
checksums() { # NAME
	local i
	for i in $(seq 1 "$TABLES"); do harness_sql_db "$1" test "CHECKSUM TABLE sbtest$i" | cut -f2; done |
		tr '\n' ' '
}
want=$(sums SRC)
want_ck=$(checksums SRC)

fresh_target() {
	tgt "DROP DATABASE IF EXISTS test; DROP DATABASE IF EXISTS migd; CREATE DATABASE test" >/dev/null
}
check_target() { # TOOL
	local got ck
	got=$(sums TGT)
	ck=$(checksums TGT)
	[[ $got == "$want" && $ck == "$want_ck" ]] || {
		echo "bench: $1 left the target different: [$got] [$ck] want [$want] [$want_ck]" >&2
		exit 1
	}
}

run_migd() {
	fresh_target
	harness_sql_db TGT test "$(schema)"
	cpurun "$W/migd.cpu" "$BFDRIVE" --name bench --parallel "$PARALLEL" --chunk-rows "$CHUNK_ROWS" \
		mariadb "$SRC_DSN" mariadb "$TGT_DSN" 'test.sbtest*' >"$W/migd.log" 2>&1 ||
		{
			tail -n 20 "$W/migd.log" >&2
			exit 1
		}
	read -r T CPU <"$W/migd.cpu"
	EXTRA=""
	check_target migd
}

run_mydumper() {
	fresh_target
	rm -rf "$W/dump"
	cpurun "$W/dump.cpu" mydumper -h 127.0.0.1 -P "$SRC_PORT" -u migd -p migd -B test \
		-t "$PARALLEL" -r "$CHUNK_ROWS" --trx-consistency-only -o "$W/dump" \
		>"$W/mydumper.log" 2>&1 || {
		tail -n 20 "$W/mydumper.log" >&2
		exit 1
	}
	cpurun "$W/load.cpu" myloader -h 127.0.0.1 -P "$TGT_PORT" -u migd -p migd -B test \
		-t "$PARALLEL" -o -e -d "$W/dump" >"$W/myloader.log" 2>&1 || {
		tail -n 20 "$W/myloader.log" >&2
		exit 1
	}
	local td cd tl cl
	read -r td cd <"$W/dump.cpu"
	read -r tl cl <"$W/load.cpu"
	T=$(awk -v a="$td" -v b="$tl" 'BEGIN { printf "%.3f", a + b }')
	CPU=$(awk -v a="$cd" -v b="$cl" 'BEGIN { printf "%.3f", a + b }')
	EXTRA="  (dump $td s, load $tl s)"
	check_target mydumper
}

declare -A times
tools=(migd mydumper)
for run in $(seq 1 "$RUNS"); do
	order=("${tools[@]}")
	((run % 2 == 0)) && order=(mydumper migd)
	for tool in "${order[@]}"; do
		"run_$tool"
		printf 'run %d %-9s %7.2f s  client cpu %6.2f s%s\n' "$run" "$tool" "$T" "$CPU" "$EXTRA"
		times[$tool]+="$T "
	done
done
m=$(tr ' ' '\n' <<<"${times[migd]}" | grep . | median)
d=$(tr ' ' '\n' <<<"${times[mydumper]}" | grep . | median)
echo
echo "| tool | median s | range s | rows/s |"
echo "|---|---|---|---|"
for tool in migd mydumper; do
	med=$(tr ' ' '\n' <<<"${times[$tool]}" | grep . | median)
	printf '| %s | %s | %s | %.0f |\n' "$tool" "$med" \
		"$(tr ' ' '\n' <<<"${times[$tool]}" | grep . | minmax)" \
		"$(awk -v n=$((ROWS * TABLES)) -v t="$med" 'BEGIN { print n / t }')"
done
echo "t(mydumper+myloader) / t(migd): $(ratio "$d" "$m") (target > 1.0)"
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
