#!/usr/bin/env bash
# bench/pg_backfill.sh: PostgreSQL -> PostgreSQL backfill, migd side by side with
# the tools a user would otherwise pick, on the same data in one run.
#
# Source: pgbench scale $SCALE (100000 x SCALE accounts rows; pgbench_history gets
# a bigserial primary key first, on both sides, since migd needs keys).  Every tool
# copies it into a fresh database on the same target server (re-created before
# every run, followed by a CHECKPOINT on both servers), with parallelism 2:
#
#   migd           schema present (pg_dump --schema-only); from `migd` start until
#                  the journal row backfilling -> catching_up (every chunk done and
#                  every index migd dropped for the copy built again: the target
#                  tables are empty, so [backfill] defer_indexes builds their keys
#                  after the data); once per chunk_rows value in $CHUNK_ROWS
#   migd-keys      a diagnostic: the same with defer_indexes = false (keys present
#                  during the copy, as pipe-keys), first CHUNK_ROWS value
#   pgcopydb       `pgcopydb clone --table-jobs 2 --index-jobs 2` into an empty
#                  database (it creates the schema, copies, builds indexes, VACUUM ANALYZE)
#   pgcopydb-split the same with --split-tables-larger-than $SPLIT (same-table parallelism)
#   dump+restore   `pg_dump -Fd -j2` then `pg_restore -j2` into an empty database
#   pipe-keys      `psql -c "COPY t TO STDOUT" | psql -c "COPY t FROM STDIN"` per table,
#                  2 tables at a time, into tables that already have their keys
#                  (migd-keys' case)
#   pipe-after     the same pipe into tables without keys, then the post-data section
#                  (primary keys) built: data + keys (migd's case)
#   pipe-chunks    a diagnostic: the raw pipe over migd's key-range chunks (planned the
#                  way migd plans them), 2 at a time, keys present: migd's access
#                  pattern without migd
#
# Medians of $RUNS runs; the tools take turns within a run (the order rotates).
# Cache: warm.  The source's files are read once before the first run and stay in the
# page cache (RAM is far larger than the data); shared_buffers (128MB) holds only a part.
# Durability: the harness target as is: fsync = on, synchronous_commit = on (the
# default) for every tool; pgcopydb sets synchronous_commit = off in its own sessions,
# which matters little for a few large transactions.  wal_level = logical on both.
#
# Each line also shows each server's CPU, the WAL the target wrote and the size of
# pgbench_accounts_pkey at the end (concurrent inserts into the middle of an index
# leave it larger than in-order inserts or CREATE INDEX).
#
# Environment: SCALE (50), RUNS (3), PARALLEL (2), CHUNK_ROWS ("500000 250000 1000000":
# the first is the migd figure the ratios use), TOOLS (all of them, in the names above),
# SPLIT (pgcopydb's split threshold, 100MB), MIGD_PERF=1 records a perf profile of one
# extra migd run (perf must be installed).  SCALE=5 RUNS=1 is a quick try.
set -euo pipefail
BENCH_SELF=$0
BENCH_ARGS=("$@")
cd "$(dirname "$0")/.."
ROOT=$PWD
source "$ROOT/bench/lib.sh"
bench_header SCALE RUNS PARALLEL CHUNK_ROWS TOOLS SPLIT MIGD_PERF TIMEOUT

SCALE=${SCALE:-50}
RUNS=${RUNS:-3}
PARALLEL=${PARALLEL:-2}
CHUNK_ROWS=${CHUNK_ROWS:-"500000 250000 1000000"}
TOOLS=${TOOLS:-"migd migd-keys pgcopydb pgcopydb-split dump+restore pipe-keys pipe-after pipe-chunks"}
SPLIT=${SPLIT:-100MB}
MIGD_PERF=${MIGD_PERF:-0}
TIMEOUT=${TIMEOUT:-1800} # seconds any one tool run may take

echo "# SCALE=$SCALE RUNS=$RUNS PARALLEL=$PARALLEL CHUNK_ROWS=\"$CHUNK_ROWS\" TOOLS=\"$TOOLS\" SPLIT=$SPLIT"
bench_prepare
if [[ " $TOOLS " == *" pgcopydb"* ]] && ! command -v pgcopydb >/dev/null; then
	echo "# installing pgcopydb (apt-get)"
	apt-get install -y pgcopydb >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y pgcopydb >/dev/null; }
fi

source "$ROOT/tests/harness/harness.sh"
harness_pair postgresql postgresql
W=$HARNESS_ROOT/bench
mkdir -p "$W"
chmod 755 "$W"
TDB=bench # the target database every tool writes into

# ----------------------------------------------------------------------- data
echo "# loading pgbench scale $SCALE into the source"
t0=$(now)
pgbench -q -i -s "$SCALE" "$SRC_DSN" >"$W/pgbench-init.log" 2>&1
sql SRC postgres "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY"
sql SRC postgres "VACUUM ANALYZE"
echo "# loaded in $(elapsed "$t0" "$(now)") s: $(sql SRC postgres "SELECT pg_size_pretty(pg_database_size('postgres'))") \
($(sql SRC postgres "SELECT pg_size_pretty(pg_total_relation_size('pgbench_accounts'))") in pgbench_accounts with its key)"
ACCOUNTS=$(sql SRC postgres "SELECT count(*) FROM pgbench_accounts")
TABLES=(pgbench_accounts pgbench_tellers pgbench_branches pgbench_history) # biggest first
pg_dump --schema-only --no-owner --no-publications --no-subscriptions "$SRC_DSN" >"$W/schema.sql"
pg_dump --schema-only --no-owner --no-publications --no-subscriptions --section=pre-data "$SRC_DSN" >"$W/pre.sql"
pg_dump --schema-only --no-owner --no-publications --no-subscriptions --section=post-data "$SRC_DSN" >"$W/post.sql"
# Warm cache: read the source's files once.
cat "$SRC_DATADIR"/base/*/* >/dev/null 2>&1 || true
sql SRC postgres "SELECT count(*) FROM pgbench_accounts" >/dev/null

# ------------------------------------------------------------------- helpers
fresh_db() { # [schema file]: re-creates the target database, then checkpoints
	sql TGT postgres "DROP DATABASE IF EXISTS $TDB WITH (FORCE)"
	sql TGT postgres "CREATE DATABASE $TDB"
	if [[ -n ${1:-} ]]; then
		psql -X -q -v ON_ERROR_STOP=1 -d "$(pg_dsn TGT $TDB)" -f "$1" >/dev/null
	fi
	sql TGT postgres "CHECKPOINT"
	sql SRC postgres "CHECKPOINT"
	sync
}

check_rows() { # TOOL: the copy is complete (outside the timing)
	local n
	n=$(sql TGT $TDB "SELECT count(*) FROM pgbench_accounts")
	if [[ $n != "$ACCOUNTS" ]]; then
		echo "bench: $1 left $n accounts rows on the target, the source has $ACCOUNTS" >&2
		exit 1
	fi
	n=$(sql TGT $TDB "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
		WHERE c.relname LIKE 'pgbench_%' AND i.indisprimary")
	if [[ $n != 4 ]]; then
		echo "bench: $1 left $n primary keys on the target, expected 4" >&2
		exit 1
	fi
}

# Results: one line per tool run in $W/results: TOOL RUN SECONDS CLIENT_CPU SERVER_CPU EXTRA
record() { echo "$*" >>"$W/results"; }

cpu_before() {
	CPU0_SRC=$(server_cpu SRC) CPU0_TGT=$(server_cpu TGT)
	WAL0=$(sql TGT postgres "SELECT pg_current_wal_lsn()")
}
cpu_after() { # SRV = both servers' CPU seconds since cpu_before; WAL1 = the target's WAL position
	WAL1=$(sql TGT postgres "SELECT pg_current_wal_lsn()")
	local s t
	s=$(server_cpu SRC) t=$(server_cpu TGT)
	SRV=$(awk -v a="$CPU0_SRC" -v b="$CPU0_TGT" -v c="$s" -v d="$t" 'BEGIN { printf "%.2f", (c - a) + (d - b) }')
	SRV_SPLIT=$(awk -v a="$CPU0_SRC" -v b="$CPU0_TGT" -v c="$s" -v d="$t" 'BEGIN { printf "src_cpu=%.2f tgt_cpu=%.2f", c - a, d - b }')
}
# Server CPU split, WAL the target wrote during the run, size of the big table's primary key.
target_facts() {
	sql TGT $TDB "SELECT '$SRV_SPLIT tgt_wal_mb=' || round(pg_wal_lsn_diff('$WAL1', '$WAL0') / 1048576) ||
		' pkey_mb=' || round(pg_relation_size('pgbench_accounts_pkey') / 1048576.0)"
}

migd_phase() {
	"$MIGCTL" -s "$W/migd.sock" -t 5 --json status 2>/dev/null |
		sed -n 's/.*"phase": *"\([a-z_]*\)".*/\1/p' | head -1
}

# One migd run with chunk_rows $2; records the result under TOOL:CHUNK_ROWS.
run_migd() { # RUN CHUNK_ROWS [perf] [TOOL]: TOOL migd-keys keeps the keys during the copy
	local run=$1 chunk=$2 perf=${3:-} tool=${4:-migd} defer=true
	[[ $tool == migd-keys ]] && defer=false
	fresh_db "$W/schema.sql"
	rm -rf "$W/state" "$W/migd.sock"
	cat >"$W/migd.conf" <<-CONF
		[migration]
		name = bf
		state_dir = $W/state
		[source]
		engine = postgresql
		dsn = $SRC_DSN
		[target]
		engine = postgresql
		dsn = $(pg_dsn TGT $TDB)
		[tables]
		include = public.pgbench_*
		[backfill]
		parallel = $PARALLEL
		chunk_rows = $chunk
		defer_indexes = $defer
		[control]
		socket = $W/migd.sock
		[metrics]
		enabled = false
	CONF
	cpu_before
	local t0 pid ph
	t0=$(now)
	"$MIGD" --foreground -c "$W/migd.conf" >>"$W/migd.log" 2>&1 &
	pid=$!
	local perfpid=
	if [[ -n $perf ]]; then
		perf record -F 999 -g -p "$pid" -o "$W/perf.data" >/dev/null 2>&1 &
		perfpid=$!
	fi
	local deadline=$((SECONDS + TIMEOUT))
	while :; do
		ph=$(migd_phase || true)
		[[ $ph == catching_up || $ph == synced ]] && break
		if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
			echo "bench: migd did not finish its backfill (phase '${ph}'); last log lines:" >&2
			tail -n 20 "$W/migd.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	local cpu srv
	cpu=$(proc_cpu "$pid")
	cpu_after
	srv=$SRV
	if [[ -n $perfpid ]]; then
		kill -INT "$perfpid" 2>/dev/null || true
		wait "$perfpid" 2>/dev/null || true
	fi
	kill -TERM "$pid"
	wait "$pid" || true
	# Phase times from the journal (the target's clock is this machine's clock).
	local j
	j=$(sql TGT $TDB "SELECT
		max(extract(epoch FROM at)) FILTER (WHERE to_phase = 'captured'),
		max(extract(epoch FROM at)) FILTER (WHERE to_phase = 'backfilling'),
		max(extract(epoch FROM at)) FILTER (WHERE to_phase = 'catching_up')
		FROM migd.journal WHERE name = 'bf'")
	local cap cu
	IFS='|' read -r cap _ cu <<<"$j"
	local c
	c=$(sql TGT $TDB "SELECT count(*), extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at)),
		extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY finished_at - started_at))
		FROM migd.chunks WHERE name = 'bf'")
	local nch c0 c1 cmed
	IFS='|' read -r nch c0 c1 cmed <<<"$c"
	local total
	total=$(elapsed "$t0" "$cu")
	# extra: start->captured, captured->first chunk (slot, planning), copy window,
	# last chunk->catching_up (the index builds after the last chunk, the ledger check), chunks
	local extra
	extra=$(awk -v t0="$t0" -v cap="$cap" -v c0="$c0" -v c1="$c1" -v cu="$cu" -v n="$nch" -v m="$cmed" \
		'BEGIN { printf "start->captured=%.2f plan=%.2f copy=%.2f done->catching_up=%.2f chunks=%d chunk_median=%.2f",
			cap - t0, c0 - cap, c1 - c0, cu - c1, n, m }')
	check_rows "migd"
	extra="$extra $(target_facts)"
	drop_slot SRC postgres migd_bf
	sql SRC postgres "DROP PUBLICATION IF EXISTS migd_bf"
	record "$tool:$chunk" "$run" "$total" "$cpu" "$srv" "$extra"
	printf '  run %d  %-22s %7.2f s  migd cpu %6.2f s  servers cpu %6.2f s  (%s)\n' \
		"$run" "$tool chunk_rows=$chunk" "$total" "$cpu" "$srv" "$extra"
}

# Times one client-tool run: RUN TOOL -- CMD...
run_client() {
	local run=$1 tool=$2 extra=""
	shift 3
	cpu_before
	if ! cpurun "$W/cpurun" "$@" >"$W/$tool.log" 2>&1; then
		echo "bench: $tool failed; last lines of its output:" >&2
		tail -n 20 "$W/$tool.log" >&2
		exit 1
	fi
	local t cpu srv
	read -r t cpu <"$W/cpurun"
	cpu_after
	srv=$SRV
	record "$tool" "$run" "$t" "$cpu" "$srv" "$extra"
	printf '  run %d  %-22s %7.2f s  client cpu %5.2f s  servers cpu %6.2f s\n' \
		"$run" "$tool" "$t" "$cpu" "$srv"
	amend "$(target_facts)"
}

# Adds detail to the last result line (and shows it).
amend() {
	sed -i '$ s/$/ '"$1"'/' "$W/results"
	echo "                                   ($1)"
}

# The raw pipe: per table psql COPY TO STDOUT | psql COPY FROM STDIN, $PARALLEL at a time.
cat >"$W/pipe.sh" <<'PIPE'
#!/usr/bin/env bash
# pipe.sh SRC_DSN TGT_DSN PARALLEL TABLE...: one pipe per table, PARALLEL at a time
set -euo pipefail
src=$1 tgt=$2 par=$3
shift 3
printf '%s\n' "$@" | xargs -P "$par" -I{} bash -c 'set -o pipefail
psql -X -q -d "$1" -c "COPY $3 TO STDOUT" | psql -X -q -v ON_ERROR_STOP=1 -d "$2" -c "COPY $3 FROM STDIN"' \
	pipe "$src" "$tgt" {}
PIPE
# The raw pipe over key-range chunks, the way migd cuts and copies them (a diagnostic:
# migd's access pattern without migd).  pipe-chunks.sh SRC TGT PARALLEL CHUNK_ROWS MARKS:
# pgbench_accounts cut every CHUNK_ROWS keys, found as migd plans (ORDER BY key OFFSET
# n-1 LIMIT 1 after the previous boundary), the other tables whole; PARALLEL at a time.
cat >"$W/pipe-chunks.sh" <<'PIPE'
#!/usr/bin/env bash
set -euo pipefail
src=$1 tgt=$2 par=$3 rows=$4 marks=$5
date +%s.%N >"$marks"
items=() prev=""
while :; do
	b=$(psql -X -At -d "$src" -c "SELECT aid FROM pgbench_accounts ${prev:+WHERE aid > $prev} ORDER BY aid OFFSET $((rows - 1)) LIMIT 1")
	if [[ -z $b ]]; then
		items+=("pgbench_accounts|${prev:+aid > $prev}${prev:-true}")
		break
	fi
	items+=("pgbench_accounts|${prev:+aid > $prev AND }aid <= $b")
	prev=$b
done
items+=(pgbench_tellers pgbench_branches pgbench_history)
date +%s.%N >>"$marks"
printf '%s\n' "${items[@]}" | xargs -P "$par" -d '\n' -I{} bash -c 'set -o pipefail
t=${3%%|*} w=true
[[ $3 == *"|"* ]] && w=${3#*|}
psql -X -q -d "$1" -c "COPY (SELECT * FROM $t WHERE $w) TO STDOUT" | psql -X -q -v ON_ERROR_STOP=1 -d "$2" -c "COPY $t FROM STDIN"' \
	pipe "$src" "$tgt" {}
date +%s.%N >>"$marks"
PIPE

# Times split into parts: TIMES_FILE gets one `date +%s.%N` per mark.
cat >"$W/marks.sh" <<'MARKS'
#!/usr/bin/env bash
# marks.sh FILE CMD1 -- CMD2 [-- CMD3...]: runs the commands in turn, a time mark before each and at the end
set -euo pipefail
f=$1
shift
date +%s.%N >"$f"
cmd=()
for a in "$@" --; do
	if [[ $a == -- ]]; then
		"${cmd[@]}"
		date +%s.%N >>"$f"
		cmd=()
	else
		cmd+=("$a")
	fi
done
MARKS

# "part1=... part2=..." from a marks file and part names.
marks_text() { # FILE NAME...
	local file=$1
	shift
	awk -v names="$*" 'BEGIN { n = split(names, nm, " ") } { t[NR] = $1 }
		END { for (i = 1; i < NR && i <= n; i++) printf "%s%s=%.2f", (i > 1 ? " " : ""), nm[i], t[i + 1] - t[i] }' "$file"
}

run_tool() { # RUN TOOL
	local run=$1 tool=$2 c
	case $tool in
	migd)
		for c in $CHUNK_ROWS; do run_migd "$run" "$c"; done
		;;
	migd-keys)
		run_migd "$run" "${CHUNK_ROWS%% *}" "" migd-keys
		;;
	pgcopydb | pgcopydb-split)
		local split=()
		[[ $tool == pgcopydb-split ]] && split=(--split-tables-larger-than "$SPLIT")
		fresh_db
		rm -rf "$W/pgcopydb"
		run_client "$run" "$tool" -- pgcopydb clone --source "$(pg_uri SRC postgres)" \
			--target "$(pg_uri TGT $TDB)" --dir "$W/pgcopydb" --table-jobs "$PARALLEL" \
			--index-jobs "$PARALLEL" "${split[@]}"
		check_rows "$tool"
		;;
	dump+restore)
		fresh_db
		rm -rf "$W/dump"
		run_client "$run" "$tool" -- bash "$W/marks.sh" "$W/marks" \
			pg_dump -Fd -j"$PARALLEL" -f "$W/dump" "$SRC_DSN" -- \
			pg_restore -j"$PARALLEL" -d "$(pg_dsn TGT $TDB)" "$W/dump"
		amend "$(marks_text "$W/marks" dump restore)"
		check_rows "$tool"
		;;
	pipe-keys)
		fresh_db "$W/schema.sql"
		run_client "$run" "$tool" -- bash "$W/pipe.sh" "$SRC_DSN" "$(pg_dsn TGT $TDB)" "$PARALLEL" "${TABLES[@]}"
		check_rows "$tool"
		;;
	pipe-chunks)
		fresh_db "$W/schema.sql"
		run_client "$run" "$tool" -- bash "$W/pipe-chunks.sh" "$SRC_DSN" "$(pg_dsn TGT $TDB)" "$PARALLEL" \
			"${CHUNK_ROWS%% *}" "$W/marks"
		amend "$(marks_text "$W/marks" plan copy)"
		check_rows "$tool"
		;;
	pipe-after)
		fresh_db "$W/pre.sql"
		run_client "$run" "$tool" -- bash "$W/marks.sh" "$W/marks" \
			bash "$W/pipe.sh" "$SRC_DSN" "$(pg_dsn TGT $TDB)" "$PARALLEL" "${TABLES[@]}" -- \
			psql -X -q -v ON_ERROR_STOP=1 -d "$(pg_dsn TGT $TDB)" -f "$W/post.sql"
		amend "$(marks_text "$W/marks" data keys)"
		check_rows "$tool"
		;;
	*)
		echo "bench: unknown tool $tool" >&2
		exit 64
		;;
	esac
}

# ---------------------------------------------------------------------- runs
read -r -a TOOL_LIST <<<"$TOOLS"
: >"$W/results"
# Warm-up, not counted: the target's first bulk write creates its WAL segments (later
# runs recycle them), which would penalise whichever tool goes first.
echo "# warm-up (not counted): pipe-keys, migd"
run_tool 0 pipe-keys >/dev/null
run_migd 0 "${CHUNK_ROWS%% *}" >/dev/null
for ((run = 1; run <= RUNS; run++)); do
	echo "# run $run of $RUNS"
	n=${#TOOL_LIST[@]}
	for ((i = 0; i < n; i++)); do
		run_tool "$run" "${TOOL_LIST[(i + run - 1) % n]}"
	done
done
if [[ $MIGD_PERF == 1 ]]; then
	echo "# an extra migd run under perf record (not counted)"
	run_migd 0 "${CHUNK_ROWS%% *}" perf
	perf report -i "$W/perf.data" --no-children -g none --percent-limit 1 --sort comm,dso,symbol \
		--stdio 2>/dev/null | grep '%' | head -25 || true
fi

# ------------------------------------------------------------------- summary
# Lines "TOOL RUN SECONDS CPU SRV EXTRA..." -> per tool: median seconds, range, cpu.
summary() {
	local tool=$1
	awk -v t="$tool" '$1 == t && $2 > 0 { print $3 }' "$W/results" | median
}
MAIN=migd:${CHUNK_ROWS%% *}
TM=$(summary "$MAIN")
echo
echo "== backfill of pgbench scale $SCALE ($ACCOUNTS accounts rows), parallelism $PARALLEL, warm cache, medians of $RUNS run(s)"
field() { # TOOL KEY: the KEY=value numbers of a tool's counted runs
	awk -v t="$1" -v k="$2=" '$1 == t && $2 > 0 { for (i = 6; i <= NF; i++) if (index($i, k) == 1) print substr($i, length(k) + 1) }' "$W/results"
}
printf '%-16s %8s %12s %10s %10s %8s %8s %10s\n' tool "median s" "range s" "client cpu" "server cpu" "tgt WAL" "pkey" "t/t(migd)"
for tool in $(awk '$2 > 0 { print $1 }' "$W/results" | awk '!seen[$0]++'); do
	med=$(summary "$tool")
	rng=$(awk -v t="$tool" '$1 == t && $2 > 0 { print $3 }' "$W/results" | minmax)
	cc=$(awk -v t="$tool" '$1 == t && $2 > 0 { print $4 }' "$W/results" | median)
	sc=$(awk -v t="$tool" '$1 == t && $2 > 0 { print $5 }' "$W/results" | median)
	wal=$(field "$tool" tgt_wal_mb | median)
	pk=$(field "$tool" pkey_mb | median)
	printf '%-16s %8s %12s %10s %10s %5.0f MB %5.0f MB %10s\n' "$tool" "$med" "$rng" "$cc" "$sc" "$wal" "$pk" "$(ratio "$med" "$TM")"
done
echo "(seconds and CPU seconds are medians; client cpu: migd's own process, or the tool and its children;"
echo " server cpu: both PostgreSQL servers; tgt WAL: WAL the target wrote; pkey: size of pgbench_accounts_pkey after)"
echo
echo "ratios against $MAIN (t = median seconds; > 1 means migd is faster):"
for tool in pgcopydb pgcopydb-split dump+restore pipe-keys pipe-after pipe-chunks; do
	med=$(summary "$tool")
	[[ $med == - ]] && continue
	printf '  t(%s)/t(migd) = %s\n' "$tool" "$(ratio "$med" "$TM")"
done
TK=$(summary "migd-keys:${CHUNK_ROWS%% *}")
if [[ $TK != - ]]; then
	echo "keys present during the copy (migd-keys: defer_indexes = false):"
	printf '  t(pipe-keys)/t(migd-keys) = %s\n' "$(ratio "$(summary pipe-keys)" "$TK")"
	printf '  t(migd-keys)/t(migd) = %s (what building the keys after the data buys)\n' "$(ratio "$TK" "$TM")"
fi
echo
echo "migd per run (phases from migd.journal and migd.chunks):"
awk '$1 ~ /^migd(-keys)?:/ && $2 > 0 { printf "  %-20s run %s  %7.2f s  cpu %6.2f s  %s\n", $1, $2, $3, $4, substr($0, index($0, $6)) }' "$W/results"
