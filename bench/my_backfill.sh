#!/usr/bin/env bash
# bench/my_backfill.sh: MariaDB -> PostgreSQL backfill, migd side by side with
# pgloader (Debian's 3.6.9) on the same data, one run, ratios printed.
#
# Data (not timed): $TABLES tables test.sbtest1.. of $ROWS rows each in the
# source MariaDB, sysbench's shape (id int PK, k int with an index, c
# char(120), pad char(60)) plus a decimal, a datetime(6) and a nullable text
# column, so both tools convert more than integers and strings.
#
# Each run drops and recreates the target database `bench`, then:
#   migd       the schema created first (migd requires it: the mapped types of
#              docs/type-mapping.md, primary keys and the k index); timed from
#              migd's start to the journal row backfilling -> catching_up (every
#              chunk copied, the deferred indexes built); parallel 2, chunk_rows
#              $CHUNK_ROWS
#   pgloader   `pgloader mysql://... postgresql://...` into the empty database:
#              its own schema conversion, data, indexes; workers 2, concurrency 1
#              (its defaults are 4 and 1: 2 matches the cores and migd)
# The tools take turns, the order rotating per run. After each run the target's
# row count and sum(k) must equal the source's.
#
# Environment: ROWS (500000), TABLES (2), RUNS (3), CHUNK_ROWS (50000).
# A quick try: ROWS=50000 RUNS=1.
set -euo pipefail
BENCH_SELF=$0
BENCH_ARGS=("$@")
cd "$(dirname "$0")/.."
ROOT=$PWD
source "$ROOT/bench/lib.sh"
bench_header ROWS TABLES RUNS CHUNK_ROWS
ROWS=${ROWS:-500000}
TABLES=${TABLES:-2}
RUNS=${RUNS:-3}
CHUNK_ROWS=${CHUNK_ROWS:-50000}
bench_prepare
command -v pgloader >/dev/null || {
	echo "# installing pgloader"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgloader >/dev/null
}
echo "# $(pgloader --version | head -1)"

source "$ROOT/tests/harness/harness.sh"
harness_start_mariadb SRC
harness_start_pg TGT 'autovacuum = off'
W=$HARNESS_ROOT/bench
mkdir -p "$W"
my() { harness_sql_db SRC test "$1"; }
echo "# mariadb $(my 'SELECT VERSION()'); loading $TABLES x $ROWS rows"
for i in $(seq 1 "$TABLES"); do
	my "CREATE TABLE sbtest$i (id int NOT NULL PRIMARY KEY, k int NOT NULL DEFAULT 0,
		c char(120) NOT NULL DEFAULT '', pad char(60) NOT NULL DEFAULT '',
		price decimal(12,2), created datetime(6), note text, KEY k_$i (k));
	INSERT INTO sbtest$i SELECT seq, FLOOR(RAND() * $ROWS), MD5(seq), SHA1(seq), seq / 7,
		TIMESTAMP('2024-01-01') + INTERVAL seq SECOND, IF(seq % 3 = 0, NULL, CONCAT('n', seq))
	FROM seq_1_to_$ROWS"
done
want=$(for i in $(seq 1 "$TABLES"); do my "SELECT CONCAT(COUNT(*), ' ', SUM(k)) FROM sbtest$i"; done | tr '\n' ' ')

schema() {
	local i
	echo "CREATE SCHEMA test;"
	for i in $(seq 1 "$TABLES"); do
		echo "CREATE TABLE test.sbtest$i (id integer PRIMARY KEY, k integer NOT NULL,
			c varchar(120) NOT NULL, pad varchar(60) NOT NULL, price numeric(12,2),
			created timestamp(6), note text);
		CREATE INDEX k_$i ON test.sbtest$i (k);"
	done
}
fresh_target() {
	sql TGT postgres "DROP DATABASE IF EXISTS bench" >/dev/null
	sql TGT postgres "CREATE DATABASE bench" >/dev/null
	sql TGT postgres "CHECKPOINT" >/dev/null
}
check_target() { # TOOL
	local got i
	got=$(for i in $(seq 1 "$TABLES"); do sql TGT bench "SELECT count(*) || ' ' || sum(k) FROM test.sbtest$i"; done | tr '\n' ' ')
	[[ $got == "$want" ]] || {
		echo "bench: $1 left the target different: [$got] want [$want]" >&2
		exit 1
	}
}

run_migd() {
	fresh_target
	sql TGT bench "$(schema)" >/dev/null
	rm -rf "$W/state"
	cat >"$W/migd.conf" <<-CONF
		[migration]
		name = bench
		state_dir = $W/state
		[source]
		engine = mariadb
		dsn = $SRC_DSN
		[target]
		engine = postgresql
		dsn = $(pg_dsn TGT bench)
		[tables]
		include = test.sbtest*
		[backfill]
		parallel = 2
		chunk_rows = $CHUNK_ROWS
		[control]
		socket = $W/migd.sock
		[metrics]
		enabled = false
		[log]
		level = notice
	CONF
	local t0 pid
	t0=$(now)
	"$MIGD" --foreground -c "$W/migd.conf" >>"$W/migd.log" 2>&1 &
	pid=$!
	poll_until 0.1 1800 '[[ $(sql TGT bench "SELECT count(*) FROM migd.journal WHERE to_phase = '"'catching_up'"'" 2>/dev/null) == 1 ]]'
	T=$(elapsed "$t0" "$(now)")
	CPU=$(proc_cpu "$pid")
	kill -TERM "$pid"
	wait "$pid" || true
	check_target migd
}

run_pgloader() {
	fresh_target
	cat >"$W/load.pgl" <<-LOAD
		LOAD DATABASE
		  FROM mysql://migd:migd@127.0.0.1:$SRC_PORT/test
		  INTO $(pg_uri TGT bench)
		WITH workers = 2, concurrency = 1
		SET PostgreSQL PARAMETERS maintenance_work_mem to '128MB';
	LOAD
	cpurun "$W/pgloader.cpu" pgloader --no-ssl-cert-verification "$W/load.pgl" >"$W/pgloader.log" 2>&1 ||
		{
			tail -n 20 "$W/pgloader.log" >&2
			exit 1
		}
	read -r T CPU <"$W/pgloader.cpu"
	check_target pgloader
}

declare -A times
tools=(migd pgloader)
for run in $(seq 1 "$RUNS"); do
	order=("${tools[@]}")
	((run % 2 == 0)) && order=(pgloader migd)
	for tool in "${order[@]}"; do
		"run_$tool"
		printf 'run %d %-9s %7.2f s  client cpu %6.2f s\n' "$run" "$tool" "$T" "$CPU"
		times[$tool]+="$T "
	done
done
m=$(tr ' ' '\n' <<<"${times[migd]}" | grep . | median)
p=$(tr ' ' '\n' <<<"${times[pgloader]}" | grep . | median)
echo
echo "| tool | median s | rows/s |"
echo "|---|---|---|"
printf '| migd | %s | %.0f |\n' "$m" "$(awk -v n=$((ROWS * TABLES)) -v t="$m" 'BEGIN { print n / t }')"
printf '| pgloader | %s | %.0f |\n' "$p" "$(awk -v n=$((ROWS * TABLES)) -v t="$p" 'BEGIN { print n / t }')"
echo "t(pgloader) / t(migd): $(ratio "$p" "$m") (target > 1.0)"
