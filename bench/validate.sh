#!/usr/bin/env bash
# bench/validate.sh: checksum validation speed, migd side by side with what a
# user would otherwise run to prove two databases hold the same rows, on the
# same data in one run, ratios printed.
#
# PostgreSQL -> PostgreSQL (ENGINES has pg).  pgbench scale $SCALE in one
# server (pgbench_history gets a bigserial primary key: migd needs keys),
# dumped once with pg_dump -Fc and restored into both servers, so the two
# sides hold the same rows (then VACUUM ANALYZE on both).  The backfill ledger
# migd validates by is planned as migd's backfill plans it ($CHUNK_ROWS rows
# per chunk, tests/tools/vbench plan).  Timed, each alone:
#   migd         tests/tools/vbench run: validate_thread() -- the code
#                `migctl validate --kind checksums --wait` runs in migd --
#                driven directly, without a migration around it (no slot, no
#                applier, no control socket), with an applier that has applied
#                everything: the data is at rest.  Per ledger chunk, a digest
#                of every row in canonical form on each side; all 4 tables.
#   copy-sorted  per table `cmp <(psql src -c "COPY (SELECT * FROM t ORDER BY
#                key) TO STDOUT") <(psql tgt -c ...)`: both sides streamed in key
#                order at once and compared byte for byte, one table at a time
#                (the cheapest exact comparison a user would script)
#   dump-sort    per table `pg_dump --data-only -t t | LC_ALL=C sort | md5sum`
#                on both sides at once, hashes compared: pg_dump's row order is
#                physical, so it has to be sorted
#   pgcopydb     `pgcopydb compare data` when the installed pgcopydb has it
#                (Debian's 0.10 has no compare command: the script says so)
# Every tool must find the sides equal.  Then (not timed) one accounts row is
# changed on the target and every tool must find the difference.
#
# MariaDB (ENGINES has my).  $MY_TABLES sysbench-shaped tables test.sbtest1..
# ($MY_ROWS rows each: id int PK, k int with an index, c char(120), pad
# char(60)) in a source MariaDB that a second MariaDB replicates (GTID,
# set up before the data is loaded, so the replica gets every row through
# the binlog).  migd backfills a PostgreSQL target from the source (until
# synced, then stopped), which also leaves its ledger ($CHUNK_ROWS per chunk).
# Timed, each alone:
#   migd               vbench run: the MariaDB source's rows read through
#                      mysnap and hashed by migd, the PostgreSQL target's in
#                      the server, per ledger chunk
#   pt-table-checksum  Percona Toolkit (Debian's, installed with apt-get when
#                      missing) on the source; it checksums chunks on the
#                      source with statement-based replication of its REPLACE
#                      ... SELECT, so the replica computes its own, and compares
#                      them (replica found through a DSN table,
#                      --no-check-binlog-format since the replica logs ROW)
# Both must find the sides equal; then (not timed) one row is changed on the
# PostgreSQL target and on the replica, and both must find it.
#
# Medians of $RUNS runs, the tools taking turns (the order rotates per run),
# after an uncounted warm-up round (caches warm: the data fits in RAM).  rows/s
# is source rows compared per second (the same count for every tool).
#
# Environment: SCALE (50), MY_ROWS (500000), MY_TABLES (2), RUNS (3),
# CHUNK_ROWS (100000, migd's default chunk_rows), ENGINES ("pg my"), PG_TOOLS
# ("migd copy-sorted dump-sort pgcopydb"), MY_TOOLS ("migd pt-table-checksum"),
# TIMEOUT (900 s per tool run).  QUICK=1: SCALE=5 MY_ROWS=50000 RUNS=1.
set -euo pipefail
BENCH_SELF=$0
BENCH_ARGS=("$@")
cd "$(dirname "$0")/.."
ROOT=$PWD
source "$ROOT/bench/lib.sh"
bench_header QUICK SCALE MY_ROWS MY_TABLES RUNS CHUNK_ROWS ENGINES PG_TOOLS MY_TOOLS TIMEOUT
if [[ ${QUICK:-0} == 1 ]]; then
	SCALE=${SCALE:-5} MY_ROWS=${MY_ROWS:-50000} RUNS=${RUNS:-1}
fi
SCALE=${SCALE:-50}
MY_ROWS=${MY_ROWS:-500000}
MY_TABLES=${MY_TABLES:-2}
RUNS=${RUNS:-3}
CHUNK_ROWS=${CHUNK_ROWS:-100000}
ENGINES=${ENGINES:-"pg my"}
PG_TOOLS=${PG_TOOLS:-"migd copy-sorted dump-sort pgcopydb"}
MY_TOOLS=${MY_TOOLS:-"migd pt-table-checksum"}
TIMEOUT=${TIMEOUT:-900}
bench_prepare
make -s -C "$ROOT" tests/tools/vbench tests/tools/myrender >/dev/null
VBENCH=$ROOT/tests/tools/vbench
if [[ " $ENGINES " == *" pg "* && " $PG_TOOLS " == *" pgcopydb "* ]] && ! command -v pgcopydb >/dev/null; then
	echo "# installing pgcopydb (apt-get)"
	apt-get install -y pgcopydb >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y pgcopydb >/dev/null; }
fi
if [[ " $ENGINES " == *" my "* && " $MY_TOOLS " == *" pt-table-checksum "* ]] &&
	! command -v pt-table-checksum >/dev/null; then
	echo "# installing percona-toolkit (apt-get)"
	apt-get install -y percona-toolkit >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y percona-toolkit >/dev/null; }
fi

source "$ROOT/tests/harness/harness.sh"
harness_init
W=$HARNESS_ROOT/bench
mkdir -p "$W"
chmod 755 "$W"
export TMPDIR=$W # sort's spill files
: >"$W/results"

# Results: "ENGINE TOOL RUN SECONDS CLIENT_CPU SERVER_CPU" lines.
record() { echo "$*" >>"$W/results"; }

# Runs a tool: ENGINE TOOL RUN WANT_RC CMD...; the servers in $SERVERS are charged.
timed() {
	local engine=$1 tool=$2 run=$3 want=$4 rc=0
	shift 4
	local c0 c1 s
	c0=$(for s in $SERVERS; do server_cpu "$s"; done | awk '{ t += $1 } END { print t }')
	cpurun "$W/cpurun" timeout "$TIMEOUT" "$@" >"$W/$tool.out" 2>&1 || rc=$?
	if [[ $rc != "$want" ]]; then
		echo "bench: $engine $tool exited $rc (wanted $want); its output ends:" >&2
		tail -n 20 "$W/$tool.out" >&2
		exit 1
	fi
	c1=$(for s in $SERVERS; do server_cpu "$s"; done | awk '{ t += $1 } END { print t }')
	local t cpu srv
	read -r t cpu <"$W/cpurun"
	srv=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
	if ((run > 0)); then
		record "$engine" "$tool" "$run" "$t" "$cpu" "$srv"
		printf '  run %d  %-18s %7.2f s  %10.0f rows/s  client cpu %6.2f s  servers cpu %6.2f s\n' \
			"$run" "$tool" "$t" "$(awk -v r="$ROWS_TOTAL" -v t="$t" 'BEGIN { print r / t }')" "$cpu" "$srv"
	fi
}

summary() { # ENGINE MAIN_TOOL TITLE
	local engine=$1 main=$2 tool med rng cc sc tm
	echo
	echo "== $3, medians of $RUNS run(s)"
	printf '%-18s %8s %12s %12s %10s %10s %10s\n' tool "median s" "range s" "rows/s" "client cpu" \
		"server cpu" "t/t(migd)"
	tm=$(awk -v e="$engine" -v t="$main" '$1 == e && $2 == t { print $4 }' "$W/results" | median)
	for tool in $(awk -v e="$engine" '$1 == e { print $2 }' "$W/results" | awk '!seen[$0]++'); do
		med=$(awk -v e="$engine" -v t="$tool" '$1 == e && $2 == t { print $4 }' "$W/results" | median)
		rng=$(awk -v e="$engine" -v t="$tool" '$1 == e && $2 == t { print $4 }' "$W/results" | minmax)
		cc=$(awk -v e="$engine" -v t="$tool" '$1 == e && $2 == t { print $5 }' "$W/results" | median)
		sc=$(awk -v e="$engine" -v t="$tool" '$1 == e && $2 == t { print $6 }' "$W/results" | median)
		printf '%-18s %8s %12s %12.0f %10s %10s %10s\n' "$tool" "$med" "$rng" \
			"$(awk -v r="$ROWS_TOTAL" -v t="$med" 'BEGIN { print r / t }')" "$cc" "$sc" "$(ratio "$med" "$tm")"
	done
	echo "(client cpu: the tool and its children; server cpu: the servers involved; t/t(migd) > 1: migd is faster)"
}

# One round: ENGINE RUN TOOL... (the order rotates with RUN)
round() {
	local engine=$1 run=$2 i n
	shift 2
	local tools=("$@")
	n=${#tools[@]}
	for ((i = 0; i < n; i++)); do
		"${engine}_tool" "${tools[(i + run) % n]}" "$run"
	done
}

# ------------------------------------------------------------ PostgreSQL
PG_KEYS=(pgbench_accounts:aid pgbench_tellers:tid pgbench_branches:bid pgbench_history:id)

pg_tool() { # TOOL RUN [WANT_RC]: WANT_RC 5 for "must find a difference"
	local tool=$1 run=$2 want=${3:-0}
	case $tool in
	migd)
		timed pg migd "$run" "$want" "$VBENCH" run "$W/pg.conf" checksums
		;;
	copy-sorted)
		timed pg copy-sorted "$run" "$((want ? 1 : 0))" bash "$W/copy-sorted.sh" "$(pg_dsn PGS postgres)" \
			"$(pg_dsn PGT postgres)" "${PG_KEYS[@]}"
		;;
	dump-sort)
		timed pg dump-sort "$run" "$((want ? 1 : 0))" bash "$W/dump-sort.sh" "$(pg_dsn PGS postgres)" \
			"$(pg_dsn PGT postgres)" "${PG_KEYS[@]}"
		;;
	pgcopydb)
		timed pg pgcopydb "$run" "$((want ? 1 : 0))" bash "$W/pgcopydb-compare.sh" "$(pg_uri PGS postgres)" \
			"$(pg_uri PGT postgres)" "$W/pgcopydb"
		;;
	esac
}

pg_bench() {
	echo "# PostgreSQL: pgbench scale $SCALE, restored from one dump into both servers"
	harness_start_pg PGS 'autovacuum = off' >/dev/null
	harness_start_pg PGT 'autovacuum = off' >/dev/null
	SERVERS="PGS PGT"
	local t0
	t0=$(now)
	pgbench -q -i -s "$SCALE" "$(pg_dsn PGS postgres)" >"$W/pgbench-init.log" 2>&1
	sql PGS postgres "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY"
	# pgbench_history is empty after -i: some rows so that every table has some.
	sql PGS postgres "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
		SELECT 1 + g % (10 * $SCALE), 1 + g % $SCALE, g, g % 1000, now() FROM generate_series(1, 1000 * $SCALE) g"
	pg_dump -Fc -f "$W/pgbench.dump" "$(pg_dsn PGS postgres)"
	sql PGS postgres "DROP TABLE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"
	pg_restore -j 2 -d "$(pg_dsn PGS postgres)" "$W/pgbench.dump"
	pg_restore -j 2 -d "$(pg_dsn PGT postgres)" "$W/pgbench.dump"
	sql PGS postgres "VACUUM ANALYZE"
	sql PGT postgres "VACUUM ANALYZE"
	ROWS_TOTAL=$(sql PGS postgres "SELECT (SELECT count(*) FROM pgbench_accounts) + (SELECT count(*) FROM pgbench_tellers)
		+ (SELECT count(*) FROM pgbench_branches) + (SELECT count(*) FROM pgbench_history)")
	echo "# loaded in $(elapsed "$t0" "$(now)") s: $ROWS_TOTAL rows, $(sql PGS postgres \
		"SELECT pg_size_pretty(pg_database_size('postgres'))") per side"
	cat >"$W/pg.conf" <<-CONF
		[migration]
		name = vb
		state_dir = $W/state
		[source]
		engine = postgresql
		dsn = $(pg_dsn PGS postgres)
		[target]
		engine = postgresql
		dsn = $(pg_dsn PGT postgres)
		[tables]
		include = public.pgbench_*
	CONF
	"$VBENCH" plan "$W/pg.conf" "$CHUNK_ROWS" | sed 's/^/# ledger: /'
	local tools=()
	for t in $PG_TOOLS; do
		if [[ $t == pgcopydb ]] && ! grep -qw compare <<<"$(pgcopydb --help 2>&1)"; then
			echo "# pgcopydb: $(pgcopydb --version 2>&1 | grep -o 'version [^ ]*' | head -1) has no compare" \
				"command ('pgcopydb --help' lists: $(pgcopydb --help 2>&1 | awk '/^    [a-z]/ || /^  \+ / { printf "%s ", $1 == "+" ? $2 : $1 }')); left out"
			continue
		fi
		tools+=("$t")
	done
	echo "# warm-up (not counted)"
	round pg 0 "${tools[@]}"
	for ((run = 1; run <= RUNS; run++)); do
		echo "# run $run of $RUNS"
		round pg "$run" "${tools[@]}"
	done
	echo "# a changed row on the target: every tool must find it (not timed)"
	sql PGT postgres "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = $((SCALE * 50000))"
	for t in "${tools[@]}"; do pg_tool "$t" 0 5; done
	echo "#   found by: ${tools[*]}"
	summary pg migd "checksum validation of pgbench scale $SCALE ($ROWS_TOTAL rows), PostgreSQL -> PostgreSQL"
	harness_stop PGS
	harness_stop PGT
}

cat >"$W/copy-sorted.sh" <<'EOF'
#!/usr/bin/env bash
# copy-sorted.sh SRC TGT TABLE:KEY...: both sides in key order, compared byte for byte; exit 1 on a difference
set -euo pipefail
src=$1 tgt=$2
shift 2
for tk in "$@"; do
	t=${tk%%:*} k=${tk#*:}
	q="COPY (SELECT * FROM $t ORDER BY $k) TO STDOUT"
	cmp <(psql -X -q -d "$src" -c "$q") <(psql -X -q -d "$tgt" -c "$q") || exit 1
done
EOF
cat >"$W/dump-sort.sh" <<'EOF'
#!/usr/bin/env bash
# dump-sort.sh SRC TGT TABLE:KEY...: pg_dump --data-only per table on both sides at once, sorted, hashed
set -euo pipefail
src=$1 tgt=$2
shift 2
rk=()
# (no `| grep -q` under pipefail: pg_dump's SIGPIPE would fail the test at random)
if [[ $(pg_dump --help) == *--restrict-key* ]]; then rk=(--restrict-key=bench); fi
for tk in "$@"; do
	t=${tk%%:*}
	# a fixed \restrict key: pg_dump picks a random one per dump (15.14 and later)
	one() { pg_dump --data-only "${rk[@]}" -t "public.$t" -d "$1" | LC_ALL=C sort | md5sum; }
	one "$src" >"$TMPDIR/dump-src.md5" &
	a=$!
	one "$tgt" >"$TMPDIR/dump-tgt.md5" &
	b=$!
	wait $a
	wait $b
	cmp -s "$TMPDIR/dump-src.md5" "$TMPDIR/dump-tgt.md5" || exit 1
done
EOF
cat >"$W/pgcopydb-compare.sh" <<'EOF'
#!/usr/bin/env bash
# pgcopydb-compare.sh SRC TGT DIR: pgcopydb compare data (versions that have it); exit 1 on a difference
set -euo pipefail
rm -rf "$3"
out=$(pgcopydb compare data --source "$1" --target "$2" --dir "$3" 2>&1) || { echo "$out"; exit 2; }
echo "$out"
! grep -qi 'mismatch\|differ' <<<"$out"
EOF

# ------------------------------------------------------------ MariaDB
my_tool() { # TOOL RUN [WANT_RC]
	local tool=$1 run=$2 want=${3:-0}
	case $tool in
	migd)
		timed my migd "$run" "$want" "$VBENCH" run "$W/my.conf" checksums
		;;
	pt-table-checksum)
		timed my pt-table-checksum "$run" "$((want ? 1 : 0))" bash "$W/ptc.sh" "$MYS_PORT" "$MY_TABLE_LIST"
		;;
	esac
}

cat >"$W/ptc.sh" <<'EOF'
#!/usr/bin/env bash
# ptc.sh PORT TABLES: pt-table-checksum on the source; exit 1 when a table differs, 2 on errors
set -uo pipefail
out=$(pt-table-checksum "h=127.0.0.1,P=$1,u=migd,p=migd" --databases test --tables "$2" \
	--recursion-method "dsn=h=127.0.0.1,P=$1,u=migd,p=migd,D=percona,t=dsns" \
	--no-check-binlog-format --replicate percona.checksums 2>&1)
echo "$out"
# TS ERRORS DIFFS ROWS DIFF_ROWS CHUNKS SKIPPED TIME TABLE
awk 'NF == 9 && $2 ~ /^[0-9]+$/ { n++; if ($2 + $7 > 0) err = 1; if ($3 > 0) diff = 1 }
	END { if (n == 0 || err) exit 2; exit diff ? 1 : 0 }' <<<"$out"
EOF

my_bench() {
	echo "# MariaDB: $MY_TABLES tables x $MY_ROWS rows (sysbench's shape), a replica, and a PostgreSQL target"
	harness_start_mariadb MYS 'innodb_flush_log_at_trx_commit = 2' 'sync_binlog = 0' >/dev/null
	harness_start_mariadb MYR 'innodb_flush_log_at_trx_commit = 2' >/dev/null
	harness_start_pg MPT 'autovacuum = off' >/dev/null
	SERVERS="MYS MYR MPT"
	local i t0 dsn
	t0=$(now)
	echo "# mariadb $(harness_sql MYS 'SELECT VERSION()'); $(pt-table-checksum --version 2>/dev/null || echo 'no pt-table-checksum')"
	harness_sql_db MYR mysql "SET GLOBAL gtid_slave_pos = '';
		CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = $MYS_PORT,
		MASTER_USER = 'migd', MASTER_PASSWORD = 'migd', MASTER_USE_GTID = slave_pos; START SLAVE"
	harness_sql_db MYS mysql "CREATE DATABASE percona; CREATE TABLE percona.dsns (id int AUTO_INCREMENT
		PRIMARY KEY, parent_id int DEFAULT NULL, dsn varchar(255) NOT NULL);
		INSERT INTO percona.dsns (dsn) VALUES ('h=127.0.0.1,P=$MYR_PORT,u=migd,p=migd')"
	MY_TABLE_LIST=
	for ((i = 1; i <= MY_TABLES; i++)); do
		harness_sql MYS "CREATE TABLE sbtest$i (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, k int NOT NULL DEFAULT 0,
			c char(120) NOT NULL DEFAULT '', pad char(60) NOT NULL DEFAULT '', KEY k (k));
			INSERT INTO sbtest$i (k, c, pad) SELECT FLOOR(RAND() * $MY_ROWS),
			CONCAT_WS('-', MD5(seq), MD5(seq + 1), MD5(seq + 2)), SHA1(seq) FROM seq_1_to_$MY_ROWS"
		MY_TABLE_LIST+=${MY_TABLE_LIST:+,}sbtest$i
	done
	ROWS_TOTAL=$((MY_TABLES * MY_ROWS))
	local want
	want=$(harness_sql MYS "SELECT @@gtid_binlog_pos")
	poll_until 0.5 600 '[[ $(harness_sql MYR "SELECT @@gtid_slave_pos") == "$want" ]]' || {
		echo "bench: the replica did not catch up" >&2
		harness_sql_db MYR mysql "SHOW SLAVE STATUS\G" >&2
		exit 1
	}
	sql MPT postgres "CREATE DATABASE mybench"
	dsn=$(pg_dsn MPT mybench)
	sql MPT mybench "CREATE SCHEMA test"
	for ((i = 1; i <= MY_TABLES; i++)); do
		"$ROOT/tests/tools/myrender" ddl "$MYS_DSN" "test.sbtest$i" | psql -X -q -v ON_ERROR_STOP=1 -d "$dsn" >/dev/null
	done
	cat >"$W/my.conf" <<-CONF
		[migration]
		name = vb
		state_dir = $W/mystate
		[source]
		engine = mariadb
		dsn = $MYS_DSN
		[target]
		engine = postgresql
		dsn = $dsn
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
	echo "# migd backfills the PostgreSQL target (until synced; its ledger is what validation uses)"
	"$MIGD" --foreground -c "$W/my.conf" >>"$W/migd.log" 2>&1 &
	local pid=$!
	harness_on_exit "kill -TERM $pid 2>/dev/null || true"
	poll_until 0.2 "$TIMEOUT" '[[ $("$MIGCTL" -s "$W/migd.sock" --json status 2>/dev/null |
		sed -n "s/.*\"phase\": *\"\([a-z_]*\)\".*/\1/p" | head -1) == synced ]]' || {
		echo "bench: migd did not reach synced" >&2
		tail -n 20 "$W/migd.log" >&2
		exit 1
	}
	kill -TERM "$pid"
	wait "$pid" || true
	sql MPT mybench "VACUUM ANALYZE"
	echo "# loaded in $(elapsed "$t0" "$(now)") s: $ROWS_TOTAL rows; ledger: $(sql MPT mybench \
		"SELECT count(*) FROM migd.chunks WHERE name = 'vb'") chunks"
	local tools=()
	read -r -a tools <<<"$MY_TOOLS"
	echo "# warm-up (not counted)"
	round my 0 "${tools[@]}"
	for ((run = 1; run <= RUNS; run++)); do
		echo "# run $run of $RUNS"
		round my "$run" "${tools[@]}"
	done
	echo "# a changed row on the PostgreSQL target and on the replica: every tool must find it (not timed)"
	local mid=$((MY_ROWS / 2))
	sql MPT mybench "UPDATE test.sbtest1 SET k = k + 1 WHERE id = $mid"
	harness_sql MYR "SET sql_log_bin = 0; UPDATE sbtest1 SET k = k + 1 WHERE id = $mid"
	for t in "${tools[@]}"; do
		my_tool "$t" 0 5
		if [[ $t == pt-table-checksum ]]; then
			awk 'NF == 9 && ($2 ~ /^[0-9]+$/ || $1 == "TS") { print "#   " $0 }' "$W/$t.out"
		fi
	done
	echo "#   found by: ${tools[*]}"
	summary my migd "checksum validation of $MY_TABLES x $MY_ROWS sysbench rows, MariaDB source"
	echo "(migd: MariaDB source against its PostgreSQL target; pt-table-checksum: the source against its replica)"
}

for e in $ENGINES; do
	case $e in
	pg) pg_bench ;;
	my) my_bench ;;
	*)
		echo "bench: unknown engine $e (pg, my)" >&2
		exit 64
		;;
	esac
done
echo
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
