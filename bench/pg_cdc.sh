#!/usr/bin/env bash
# bench/pg_cdc.sh: PostgreSQL -> PostgreSQL CDC catch-up, migd side by side with
# PostgreSQL's built-in logical replication and the decode ceiling, one backlog.
#
# Setup (not timed): pgbench scale $CDC_SCALE in the source (pgbench_history gets a
# bigserial primary key), one publication of the 4 pgbench tables for the built-in
# subscription and pg_recvlogical.  For every synchronous_commit value in $SYNC, the
# target server gets
#   m_<sc>  a database migd migrates into (`ALTER DATABASE ... SET synchronous_commit`,
#           which migd's apply connection inherits): migd runs until phase synced, then
#           is stopped (SIGTERM);
#   s_<sc>  a database with CREATE SUBSCRIPTION ... WITH (synchronous_commit = <sc>):
#           initial copy, caught up, then ALTER SUBSCRIPTION ... DISABLE.
#
# Both servers run with autovacuum = off (a vacuum during a drain would add WAL to
# decode or CPU to whichever consumer runs then).  Each run first VACUUMs every
# database and lets every consumer catch up past the WAL that has nothing for it (not
# timed), then builds one backlog while every consumer is stopped: a fresh extra
# slot `ceiling` (pgoutput), then `pgbench -n -c $CLIENTS -t $((TXNS / CLIENTS))`
# (the pgbench sessions commit with synchronous_commit = off to build it quickly; this
# changes nothing in the WAL the consumers decode), then one marker transaction that
# inserts a pgbench_history row.  L_MARK = pg_current_wal_insert_lsn() inside the
# marker transaction before its COMMIT: a consumer has applied the whole backlog when
# its committed position passes L_MARK.  L_END = pg_current_wal_lsn() after it.
#
# Then the same backlog is drained by each consumer in turn, alone on the machine:
#   ceiling   pg_recvlogical --start --endpos L_END -o proto_version=1
#             -o publication_names=bench_pub -f /dev/null (walsender decoding only)
#   migd/sc   migd started; done when `migctl --json lag` shows lag.bytes == 0 and
#             apply.applied_pos (the position committed in the target with the rows)
#             >= L_MARK
#   builtin/sc  ALTER SUBSCRIPTION ... ENABLE; done when the marker row is visible in
#             the target (the apply worker commits in source commit order).  The time
#             pg_stat_subscription.latest_end_lsn (what it confirmed to the source)
#             passes L_MARK is shown too.
# Polling is every 0.1 s.  Every target is checked against the source afterwards
# (row counts and sum(abalance)).  The target's wal_retrieve_retry_interval is 100ms
# so that the launcher starts the enabled subscription's worker at once (PG 15 starts
# at most one worker per interval, 5 s by default).
#
# CPU: migd's own (/proc/<pid>/stat), pg_recvlogical's (rusage), and both servers'
# (postmaster + children, /proc): "cpu s/M" is all of them per million row changes.
# Each migd and built-in line also shows how busy the walsender and the applying
# target process were (CPU seconds, and % of the drain's wall time) and, for migd,
# its three busiest threads: the one near 100% is what bounds the drain; and
# tgt_rowops, the row operations the target's statistics counted (the built-in
# worker does one per change; migd folds a batch's changes per key).
#
# Environment: TXNS (250000 transactions = 1M row changes, TPC-B: 3 updates + 1 insert),
# CLIENTS (4), CDC_SCALE (10), RUNS (3), SYNC ("off on"), CONSUMERS ("ceiling migd
# builtin"), MIGD_EXTRA (lines appended to migd.conf, e.g. $'[apply]\nbatch_txns = 2000'),
# MIGD_PERF=1 (perf record of migd's first drain at the first synchronous_commit value).
# TXNS=20000 RUNS=1 is a quick try.
set -euo pipefail
BENCH_SELF=$0
BENCH_ARGS=("$@")
cd "$(dirname "$0")/.."
ROOT=$PWD
source "$ROOT/bench/lib.sh"
bench_header TXNS CLIENTS CDC_SCALE RUNS SYNC CONSUMERS MIGD_EXTRA MIGD_PERF TIMEOUT

TXNS=${TXNS:-250000}
CLIENTS=${CLIENTS:-4}
CDC_SCALE=${CDC_SCALE:-10}
RUNS=${RUNS:-3}
SYNC=${SYNC:-"off on"}
CONSUMERS=${CONSUMERS:-"ceiling migd builtin"}
MIGD_EXTRA=${MIGD_EXTRA:-}
MIGD_PERF=${MIGD_PERF:-0}
TIMEOUT=${TIMEOUT:-900} # seconds one drain may take
PER_CLIENT=$((TXNS / CLIENTS))
NTX=$((PER_CLIENT * CLIENTS + 1))     # + the marker
NCHG=$((PER_CLIENT * CLIENTS * 4 + 1)) # TPC-B: 3 updates + 1 insert each, + the marker
echo "# TXNS=$TXNS ($NTX with the marker, $NCHG row changes) CLIENTS=$CLIENTS CDC_SCALE=$CDC_SCALE RUNS=$RUNS SYNC=\"$SYNC\" CONSUMERS=\"$CONSUMERS\""
bench_prepare
command -v pg_recvlogical >/dev/null || {
	echo "bench: pg_recvlogical is missing" >&2
	exit 1
}
has() { [[ " $CONSUMERS " == *" $1 "* ]]; }

source "$ROOT/tests/harness/harness.sh"
# autovacuum off on both: a vacuum during a drain would add WAL to decode (source) or
# CPU (target) to whichever consumer happens to run then; the script VACUUMs between runs.
harness_start_pg SRC 'max_replication_slots = 20' 'max_wal_senders = 20' 'autovacuum = off'
harness_start_pg TGT 'max_logical_replication_workers = 8' 'max_worker_processes = 16' \
	'wal_retrieve_retry_interval = 100ms' 'autovacuum = off'
W=$HARNESS_ROOT/bench
mkdir -p "$W"
chmod 755 "$W"
TABLES="pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"

lsn_num() { # 16/B374D848 -> integer (also accepts pg:16/B374D848)
	local l=${1#pg:}
	[[ $l == */* ]] || {
		echo 0
		return
	}
	echo $(((16#${l%/*} << 32) + 16#${l#*/}))
}

# ----------------------------------------------------------------------- setup
echo "# loading pgbench scale $CDC_SCALE into the source"
pgbench -q -i -s "$CDC_SCALE" "$SRC_DSN" >"$W/pgbench-init.log" 2>&1
sql SRC postgres "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY"
sql SRC postgres "CREATE PUBLICATION bench_pub FOR TABLE $TABLES"
pg_dump --schema-only --no-owner --no-publications --no-subscriptions "$SRC_DSN" >"$W/schema.sql"

migd_conf() { # SC
	cat <<-CONF
		[migration]
		name = c$1
		state_dir = $W/state-$1
		[source]
		engine = postgresql
		dsn = $SRC_DSN
		[target]
		engine = postgresql
		dsn = $(pg_dsn TGT "m_$1")
		[tables]
		include = public.pgbench_*
		[backfill]
		parallel = 2
		chunk_rows = 250000
		[control]
		socket = $W/migd-$1.sock
		[metrics]
		enabled = false
		[log]
		level = notice
	CONF
	if [[ -n $MIGD_EXTRA ]]; then printf '%s\n' "$MIGD_EXTRA"; fi
}

MIGD_PID=
migd_start() { # SC
	"$MIGD" --foreground -c "$W/migd-$1.conf" >>"$W/migd-$1.log" 2>&1 &
	MIGD_PID=$!
}
migd_stop() {
	if [[ -n $MIGD_PID ]]; then
		kill -TERM "$MIGD_PID" 2>/dev/null || true
		wait "$MIGD_PID" 2>/dev/null || true
		MIGD_PID=
	fi
}
harness_on_exit 'migd_stop'
# The raw JSON from migctl is one line; these pick fields without a python per poll.
jget() { sed -n 's/.*"'"$1"'": *"\{0,1\}\([^",}]*\).*/\1/p' | head -1; }

for sc in $SYNC; do
	if has migd; then
		sql TGT postgres "CREATE DATABASE m_$sc"
		psql -X -q -v ON_ERROR_STOP=1 -d "$(pg_dsn TGT "m_$sc")" -f "$W/schema.sql" >/dev/null
		sql TGT postgres "ALTER DATABASE m_$sc SET synchronous_commit = $sc"
		migd_conf "$sc" >"$W/migd-$sc.conf"
		echo "# migd (target database m_$sc, synchronous_commit = $sc): initial copy until phase synced"
		migd_start "$sc"
		poll_until 0.2 600 '[[ $("$MIGCTL" -s "$W/migd-$sc.sock" --json status 2>/dev/null | jget phase) == synced ]]' ||
			{
				echo "bench: migd did not reach synced" >&2
				tail -n 20 "$W/migd-$sc.log" >&2
				exit 1
			}
		migd_stop
	fi
	if has builtin; then
		sql TGT postgres "CREATE DATABASE s_$sc"
		psql -X -q -v ON_ERROR_STOP=1 -d "$(pg_dsn TGT "s_$sc")" -f "$W/schema.sql" >/dev/null
		echo "# built-in subscription sub_$sc (target database s_$sc, synchronous_commit = $sc): initial copy"
		sql TGT "s_$sc" "CREATE SUBSCRIPTION sub_$sc CONNECTION '$SRC_DSN' PUBLICATION bench_pub
			WITH (synchronous_commit = '$sc')"
		poll_until 0.2 600 '[[ $(sql TGT "s_$sc" "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> '"'r'"'") == 0 ]]' ||
			{
				echo "bench: subscription sub_$sc did not finish its initial copy" >&2
				exit 1
			}
		sql TGT "s_$sc" "ALTER SUBSCRIPTION sub_$sc DISABLE"
		poll_until 0.1 60 '[[ $(sql TGT "s_$sc" "SELECT count(pid) FROM pg_stat_subscription WHERE subname = '"'sub_$sc'"'") == 0 ]]'
	fi
done

# Every consumer's slot past the source's current WAL position (WAL with nothing for
# them: the setup's, the VACUUMs'), then every consumer stopped again.  Untimed, so
# that each timed drain starts where the backlog starts.
slot_at() { # SLOT LSN_NUM
	(($(lsn_num "$(sql SRC postgres "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$1'")") >= $2))
}
catch_up_all() {
	local l sc
	l=$(lsn_num "$(sql SRC postgres "SELECT pg_current_wal_lsn()")")
	for sc in $SYNC; do
		if has migd; then
			migd_start "$sc"
			poll_until 0.2 300 "slot_at migd_c$sc $l" || {
				echo "bench: migd ($sc) did not catch up with the source" >&2
				tail -n 20 "$W/migd-$sc.log" >&2
				exit 1
			}
			migd_stop
		fi
		if has builtin; then
			sql TGT "s_$sc" "ALTER SUBSCRIPTION sub_$sc ENABLE"
			poll_until 0.2 300 "slot_at sub_$sc $l" || {
				echo "bench: subscription sub_$sc did not catch up with the source" >&2
				exit 1
			}
			sql TGT "s_$sc" "ALTER SUBSCRIPTION sub_$sc DISABLE"
			poll_until 0.1 60 '[[ $(sql TGT "s_$sc" "SELECT count(pid) FROM pg_stat_subscription WHERE subname = '"'sub_$sc'"'") == 0 ]]'
		fi
	done
	poll_until 0.1 60 '[[ $(sql SRC postgres "SELECT count(*) FROM pg_replication_slots WHERE active") == 0 ]]'
}

# ---------------------------------------------------------------- measurement
: >"$W/results" # CONSUMER RUN SECONDS OWN_CPU SERVER_CPU EXTRA
record() { echo "$*" >>"$W/results"; }
cpu_before() {
	CPU0_SRC=$(server_cpu SRC) CPU0_TGT=$(server_cpu TGT)
	WAL0=$(sql TGT postgres "SELECT pg_current_wal_lsn()")
}
cpu_after() { # SRV: both servers' CPU seconds since cpu_before; SPLIT: "src_cpu=.. tgt_cpu=.."
	local s t
	s=$(server_cpu SRC) t=$(server_cpu TGT)
	SRV=$(awk -v a="$CPU0_SRC" -v b="$CPU0_TGT" -v c="$s" -v d="$t" 'BEGIN { printf "%.2f", (c - a) + (d - b) }')
	SPLIT=$(awk -v a="$CPU0_SRC" -v b="$CPU0_TGT" -v c="$s" -v d="$t" 'BEGIN { printf "src_cpu=%.2f tgt_cpu=%.2f", c - a, d - b }')
	SPLIT="$SPLIT tgt_wal_mb=$(sql TGT postgres "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$WAL0') / 1048576)")"
}
# "NAME=cpu(busy%)" of one process that lived through the drain of T seconds.
busy() { # NAME PID T
	if [[ -z $2 ]]; then
		echo "$1=?"
		return
	fi
	awk -v n="$1" -v c="$(proc_cpu "$2")" -v t="$3" 'BEGIN { printf "%s=%.2fs(%.0f%%)", n, c, 100 * c / t }'
}
# CPU seconds of migd's busiest threads, "a+b+c".
migd_threads() { # PID
	local f s ticks=()
	for f in /proc/"$1"/task/*/stat; do
		s=$(cat "$f" 2>/dev/null) || continue
		s=${s##*) }
		read -r -a s <<<"$s"
		ticks+=($((s[11] + s[12])))
	done
	printf '%s\n' "${ticks[@]}" | sort -rn | head -3 | awk -v hz="$CLK_TCK" '{ printf "%s%.2f", (NR > 1 ? "+" : ""), $1 / hz }'
}
show() { # CONSUMER RUN SECONDS OWN SRV EXTRA
	local own
	own=$(printf '%.2f' "$4")
	[[ $1 == builtin/* ]] && own=- # its apply worker is a target server process
	printf '  run %d  %-12s %6.2f s %6.0f txn/s %7.0f changes/s  own cpu %5s s  servers cpu %5.2f s  %s\n' \
		"$2" "$1" "$3" "$(awk -v n="$NTX" -v t="$3" 'BEGIN { print n / t }')" \
		"$(awk -v n="$NCHG" -v t="$3" 'BEGIN { print n / t }')" "$own" "$5" "${6:-}"
}

# Row operations (inserted + updated + deleted) the target database's statistics
# count for the pgbench tables.  Read with the consumer stopped and its backend
# gone: a backend flushes its counts as it exits.
tgt_rowops() { # DB
	poll_until 0.1 30 '[[ $(sql TGT postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = '"'$1'"' AND backend_type <> '"'autovacuum worker'"' AND pid <> pg_backend_pid() AND (application_name LIKE '"'migd%'"' OR backend_type = '"'logical replication worker'"')") == 0 ]]' || true
	sql TGT "$1" "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables WHERE relname LIKE 'pgbench_%'"
}

drain_ceiling() { # RUN
	cpu_before
	cpurun "$W/cpurun" pg_recvlogical -d "$SRC_DSN" -S ceiling --start --endpos "$L_END" --no-loop \
		-o proto_version=1 -o publication_names=bench_pub -f /dev/null >"$W/recvlogical.log" 2>&1 ||
		{
			echo "bench: pg_recvlogical failed:" >&2
			cat "$W/recvlogical.log" >&2
			exit 1
		}
	local t cpu
	read -r t cpu <"$W/cpurun"
	cpu_after
	record ceiling "$1" "$t" "$cpu" "$SRV" "$SPLIT"
	show ceiling "$1" "$t" "$cpu" "$SRV" "$SPLIT"
}

drain_migd() { # RUN SC
	local run=$1 sc=$2 perfpid="" j b a t0 t cpu
	local lm ops0
	lm=$(lsn_num "$L_MARK")
	ops0=$(tgt_rowops "m_$sc")
	cpu_before
	t0=$(now)
	migd_start "$sc"
	if [[ $MIGD_PERF == 1 && $run == 1 && $sc == "${SYNC%% *}" ]]; then
		perf record -F 999 -g -p "$MIGD_PID" -o "$W/perf.data" >/dev/null 2>&1 &
		perfpid=$!
	fi
	local deadline=$((SECONDS + TIMEOUT))
	while :; do
		j=$("$MIGCTL" -s "$W/migd-$sc.sock" -t 5 --json lag 2>/dev/null || true)
		b=$(jget bytes <<<"$j")
		a=$(jget applied_pos <<<"$j")
		if [[ $b == 0 ]] && (($(lsn_num "$a") >= lm)); then
			break
		fi
		if ! kill -0 "$MIGD_PID" 2>/dev/null || ((SECONDS > deadline)); then
			echo "bench: migd did not drain the backlog (lag bytes '$b', applied '$a', L_MARK $L_MARK)" >&2
			tail -n 20 "$W/migd-$sc.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	t=$(elapsed "$t0" "$(now)")
	cpu=$(proc_cpu "$MIGD_PID")
	cpu_after
	# Who was busy: the walsender decoding for migd, migd's busiest target backend, migd's threads.
	local ws be procs
	ws=$(sql SRC postgres "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'migd_c$sc'")
	be=$(sql TGT postgres "SELECT pid FROM pg_stat_activity WHERE datname = 'm_$sc' AND application_name LIKE 'migd%'")
	local p best="" bc=0 c
	for p in $be; do
		c=$(_stat_ticks "$p")
		if ((c >= bc)); then best=$p bc=$c; fi
	done
	procs="$(busy walsender "$ws" "$t") $(busy apply_backend "$best" "$t") migd_threads=$(migd_threads "$MIGD_PID")"
	if [[ -n $perfpid ]]; then
		kill -INT "$perfpid" 2>/dev/null || true
		wait "$perfpid" 2>/dev/null || true
	fi
	local st batches txns
	st=$("$MIGCTL" -s "$W/migd-$sc.sock" --json status)
	batches=$(jget batches <<<"${st#*\"apply\"}")
	txns=$(jget transactions <<<"${st#*\"apply\"}")
	migd_stop
	local extra
	extra="$SPLIT $procs batches=$batches txns/batch=$(awk -v a="$txns" -v b="$batches" 'BEGIN { if (b) printf "%.0f", a / b; else print "-" }') tgt_rowops=$(($(tgt_rowops "m_$sc") - ops0))${perfpid:+ perf=1}"
	record "migd/$sc" "$run" "$t" "$cpu" "$SRV" "$extra"
	show "migd/$sc" "$run" "$t" "$cpu" "$SRV" "$extra"
}

drain_builtin() { # RUN SC
	local run=$1 sc=$2 t0 t ack="" v
	local lm ops0
	lm=$(lsn_num "$L_MARK")
	ops0=$(tgt_rowops "s_$sc")
	cpu_before
	t0=$(now)
	sql TGT "s_$sc" "ALTER SUBSCRIPTION sub_$sc ENABLE"
	local deadline=$((SECONDS + TIMEOUT))
	while :; do
		v=$(sql TGT "s_$sc" "SELECT (SELECT count(*) FROM pgbench_history WHERE id = $MARK_ID),
			(SELECT coalesce(latest_end_lsn::text, '') FROM pg_stat_subscription WHERE subname = 'sub_$sc')")
		if [[ -z $ack && $(lsn_num "${v#*|}") -ge $lm ]]; then
			ack=$(elapsed "$t0" "$(now)")
		fi
		[[ ${v%%|*} == 1 ]] && break
		if ((SECONDS > deadline)); then
			echo "bench: the built-in subscription sub_$sc did not drain the backlog" >&2
			exit 1
		fi
		sleep 0.1
	done
	t=$(elapsed "$t0" "$(now)")
	cpu_after
	local ws aw procs
	ws=$(sql SRC postgres "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'sub_$sc'")
	aw=$(sql TGT "s_$sc" "SELECT pid FROM pg_stat_subscription WHERE subname = 'sub_$sc' AND relid IS NULL")
	procs="$(busy walsender "$ws" "$t") $(busy apply_worker "$aw" "$t")"
	# ... and until it confirmed the marker's position to the source (not in the rate).
	if [[ -z $ack ]]; then
		poll_until 0.1 60 '[[ $(lsn_num "$(sql TGT "s_$sc" "SELECT coalesce(latest_end_lsn::text, '"''"') FROM pg_stat_subscription WHERE subname = '"'sub_$sc'"'")") -ge $lm ]]' &&
			ack=$(elapsed "$t0" "$(now)") || ack=-
	fi
	sql TGT "s_$sc" "ALTER SUBSCRIPTION sub_$sc DISABLE"
	poll_until 0.1 60 '[[ $(sql TGT "s_$sc" "SELECT count(pid) FROM pg_stat_subscription WHERE subname = '"'sub_$sc'"'") == 0 ]]'
	procs="$procs confirmed_to_source_after=${ack}s tgt_rowops=$(($(tgt_rowops "s_$sc") - ops0))"
	record "builtin/$sc" "$run" "$t" 0 "$SRV" "$SPLIT $procs"
	show "builtin/$sc" "$run" "$t" 0 "$SRV" "$SPLIT $procs"
}

verify() { # the source and every target agree (counts and balances)
	local q="SELECT (SELECT count(*) FROM pgbench_accounts) || ' ' || (SELECT sum(abalance) FROM pgbench_accounts)
		|| ' ' || (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' || (SELECT sum(bbalance) FROM pgbench_branches)
		|| ' ' || (SELECT count(*) FROM pgbench_history) || ' ' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)"
	local want got db sc
	want=$(sql SRC postgres "$q")
	for sc in $SYNC; do
		for db in m_$sc s_$sc; do
			[[ $db == m_* ]] && ! has migd && continue
			[[ $db == s_* ]] && ! has builtin && continue
			got=$(sql TGT "$db" "$q")
			if [[ $got != "$want" ]]; then
				echo "bench: target database $db differs from the source: [$got] vs [$want]" >&2
				exit 1
			fi
		done
	done
	echo "  every target equals the source (counts, balances, history): $want"
}

for ((run = 1; run <= RUNS; run++)); do
	echo "# run $run of $RUNS: VACUUM, consumers caught up, then a backlog of $NTX transactions with every consumer stopped"
	sql SRC postgres "VACUUM" >/dev/null
	for sc in $SYNC; do
		if has migd; then sql TGT "m_$sc" "VACUUM" >/dev/null; fi
		if has builtin; then sql TGT "s_$sc" "VACUUM" >/dev/null; fi
	done
	catch_up_all
	if [[ $(sql SRC postgres "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'ceiling'") == 1 ]]; then
		drop_slot SRC postgres ceiling
	fi
	has ceiling && pg_recvlogical -d "$SRC_DSN" -S ceiling --create-slot -P pgoutput >/dev/null 2>&1
	L0=$(sql SRC postgres "SELECT pg_current_wal_lsn()")
	t0=$(now)
	PGOPTIONS='-c synchronous_commit=off' pgbench -n -c "$CLIENTS" -j 2 -t "$PER_CLIENT" "$SRC_DSN" >"$W/pgbench.log" 2>&1
	got=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$W/pgbench.log")
	if [[ $got != $((PER_CLIENT * CLIENTS)) ]]; then
		echo "bench: pgbench processed '$got' transactions, expected $((PER_CLIENT * CLIENTS))" >&2
		cat "$W/pgbench.log" >&2
		exit 1
	fi
	m=$(sql SRC postgres "BEGIN;
		INSERT INTO pgbench_history (tid, bid, aid, delta, mtime, filler) VALUES (-1, -1, -1, 0, now(), 'bench marker $run') RETURNING id;
		SELECT pg_current_wal_insert_lsn();
		COMMIT;
		SELECT pg_current_wal_lsn();" | tr '\n' ' ')
	read -r MARK_ID L_MARK L_END <<<"$m"
	echo "  built in $(elapsed "$t0" "$(now)") s: $L0 .. $L_END, $(($(lsn_num "$L_END") - $(lsn_num "$L0"))) bytes of WAL; marker id $MARK_ID at $L_MARK"
	sql SRC postgres "CHECKPOINT"
	sql TGT postgres "CHECKPOINT"
	sync
	if has ceiling; then drain_ceiling "$run"; fi
	for sc in $SYNC; do
		if has migd; then drain_migd "$run" "$sc"; fi
		if has builtin; then drain_builtin "$run" "$sc"; fi
	done
	verify
done
if [[ -f $W/perf.data ]]; then
	echo "# perf profile of migd's first drain (synchronous_commit = ${SYNC%% *}), by thread and symbol"
	perf report -i "$W/perf.data" --no-children -g none --percent-limit 1 --sort comm,dso,symbol \
		--stdio 2>/dev/null | grep '%' | head -30 || true
fi

# ------------------------------------------------------------------- summary
col() { awk -v c="$1" -v k="$2" '$1 == c { print $k }' "$W/results"; }
echo
echo "== CDC catch-up of a backlog of $NTX transactions ($NCHG row changes), medians of $RUNS run(s)"
field() { # CONSUMER KEY: the KEY=value numbers of a consumer's runs
	awk -v c="$1" -v k="$2=" '$1 == c { for (i = 6; i <= NF; i++) if (index($i, k) == 1) print substr($i, length(k) + 1) }' "$W/results"
}
printf '%-12s %8s %12s %8s %10s %8s %8s %8s %12s %8s\n' consumer "median s" "range s" "txn/s" "changes/s" "own cpu" "src cpu" "tgt cpu" "cpu s/M chg" "tgt WAL"
for c in $(awk '{ print $1 }' "$W/results" | awk '!seen[$0]++'); do
	med=$(col "$c" 3 | median)
	cpm=$(awk -v c="$c" -v n="$NCHG" '$1 == c { print ($4 + $5) / n * 1e6 }' "$W/results" | median)
	own=$(col "$c" 4 | median)
	[[ $c == builtin/* ]] && own=-
	printf '%-12s %8s %12s %8.0f %10.0f %8s %8s %8s %12s %5.0f MB\n' "$c" "$med" "$(col "$c" 3 | minmax)" \
		"$(awk -v n="$NTX" -v t="$med" 'BEGIN { print n / t }')" "$(awk -v n="$NCHG" -v t="$med" 'BEGIN { print n / t }')" \
		"$own" "$(field "$c" src_cpu | median)" "$(field "$c" tgt_cpu | median)" "$cpm" "$(field "$c" tgt_wal_mb | median)"
done
echo "(CPU seconds, medians. own: migd's process or pg_recvlogical; src/tgt: each server's processes;"
echo " cpu s/M chg: own + both servers per million row changes; tgt WAL: WAL the target wrote during the drain)"
echo
echo "rate ratios (median rates; > 1 means migd is faster):"
TC=$(col ceiling 3 | median)
for sc in $SYNC; do
	TMI=$(col "migd/$sc" 3 | median)
	TBI=$(col "builtin/$sc" 3 | median)
	printf '  synchronous_commit = %-3s  migd/built-in = %s   migd/ceiling = %s   built-in/ceiling = %s\n' "$sc" \
		"$(ratio "$TBI" "$TMI")" "$(ratio "$TC" "$TMI")" "$(ratio "$TC" "$TBI")"
done
echo
echo "per run:"
awk '{ printf "  %-14s run %s  %7.2f s  own cpu %6.2f  servers cpu %6.2f  %s\n", $1, $2, $3, $4, $5, ($6 == "" ? "" : substr($0, index($0, $6))) }' "$W/results"
