#!/usr/bin/env bash
# bench/pg_steady.sh: PostgreSQL -> PostgreSQL CDC in steady state: the replication lag
# while the source writes at a fixed rate, migd side by side with the built-in
# logical replication subscription.
#
# What is measured, per consumer (migd, the built-in subscription) and per rate:
#   lag p50/p99/max  sampled every 0.1 s: clock_timestamp() on the target server minus
#                    the heartbeat row's ts visible in the target.  A writer updates that
#                    row (ts = clock_timestamp()) every 0.1 s in the source, in its own
#                    session with synchronous_commit = on.  Both servers run on this
#                    machine and read the same clock.  Nothing is subtracted: a sample is
#                    the true lag plus the age of the newest heartbeat (0..0.1 s), so a
#                    consumer with no lag at all shows p50 ~0.05 s and p99 ~0.1 s.  The
#                    resolution is 0.1 s.
#   rate             asked: pgbench -R; got: source transactions per second in the window
#                    (pgbench_history's sequence, read on the source).
#   cpu s/M chg      CPU seconds per million row changes produced in the window (each
#                    TPC-B transaction is 3 UPDATEs and 1 INSERT; the heartbeat's 10
#                    updates/s are not counted).  "all": migd's process + every process of
#                    both servers (this includes the source backends that run the load,
#                    the same work for both consumers).  "repl": what replication costs:
#                    migd's process + the consumer's walsender + every target process.
#                    pgbench's client process is shown per run, not in either.  The CPU
#                    window runs from the end of the warm-up until the consumer has caught
#                    up after the load stopped, so work a slow consumer does late counts.
#   tail             seconds from the end of the load until the last heartbeat is visible
#                    in the target.
# Then the highest rate that keeps p99 under 1 s: after LEVELS (25/50/75 % of the built-in
# catch-up rate) the rate goes up through MAX_STEPS (80..150 %) for each consumer until its
# p99 reaches 1 s or pgbench cannot deliver the rate (got < 95 % of asked: the machine is
# saturated, the result is then a lower bound).
#
# The built-in catch-up rate is measured first: with the subscription disabled, a backlog of
# BACKLOG transactions is written, then the subscription is enabled and timed until the
# marker (a heartbeat update after the backlog) is visible in the target.  migd's catch-up
# of the same backlog is timed the same way (migd started), for comparison only.  The load
# ceiling is what pgbench delivers unthrottled for CEIL_SECS with no consumer running (in a
# third copy of the data that no slot decodes): rates above it cannot be asked for.
#
# Design choices:
#  - One consumer at a time, same load: on 2 cores, two consumers plus the load and two
#    walsenders would compete for CPU, and each would slow the other by an amount that
#    depends on the other.  Consumers take turns per rate (the order alternates), the idle
#    one is stopped (migd SIGTERM, ALTER SUBSCRIPTION ... DISABLE).
#  - Two source databases with the same data (`builtin` is created from `migd` as its
#    template after setup): migd replicates source db migd into target db migd, the
#    subscription source db builtin into target db builtin.  With one source database the
#    idle consumer would have to apply every other run's load before its own turn (minutes
#    per full run); with two it only skips the other database's WAL.  Before each run the
#    consumer is started and waited for until a fresh heartbeat is visible in its target.
#  - The load is TPC-B, but each transaction is one call of a plpgsql function bench_tpcb()
#    doing pgbench's tpcb-like statements (UPDATE accounts ... RETURNING abalance, UPDATE
#    tellers, UPDATE branches, INSERT history), run with -M prepared: one round trip per
#    transaction.  The changes the consumers see are the same as pgbench's built-in script.
#    The built-in script (7 round trips) tops out at 4-6k txn/s on this machine, below 25 %
#    of the built-in subscription's catch-up rate; the function reaches 9-16k txn/s alone,
#    depending on what else runs on the machine.  LOAD=builtin uses pgbench's own script.
#  - The load sessions commit with synchronous_commit = LOAD_SYNC (off: with on, 4 clients
#    wait on fsync at ~2.5k txn/s).  The heartbeat commits with synchronous_commit = on, so
#    its WAL (and all before it) is flushed at once and decodable: async commit on the
#    source does not delay what is measured.
#  - Both consumers apply with the same synchronous_commit = SYNC (off, the subscription's
#    default): migd through ALTER DATABASE migd SET synchronous_commit (its apply connection
#    inherits it), the subscription WITH (synchronous_commit = ...).
#  - autovacuum is off on both servers (a vacuum would land in one consumer's run); every
#    run VACUUMs its source and target database first (not timed).
#
# Environment: SCALE (pgbench scale, 10), LEVELS ("25 50 75", % of the built-in catch-up
# rate), MAX_STEPS ("80 90 100 110 125 150"), DURATION (30 s measured per run), WARMUP
# (5 s, before the window), BACKLOG (200000 transactions for the catch-up rate),
# BUILTIN_RATE (txn/s: skip measuring it), CLIENTS (4), JOBS (2), LOAD (func | builtin),
# LOAD_SYNC (off), SYNC (off: the consumers' synchronous_commit), CONSUMERS ("migd
# builtin"), MIGD_EXTRA (lines appended to migd.conf, e.g. $'[apply]\nbatch_delay = 50ms'),
# TIMEOUT (300 s: catch-up after a run), QUICK=1 (LEVELS="25 75" MAX_STEPS="125"
# DURATION=10 WARMUP=2 BACKLOG=50000, ~3 min).  The full default takes ~10-15 min.
set -euo pipefail
BENCH_SELF=$0
BENCH_ARGS=("$@")
cd "$(dirname "$0")/.."
ROOT=$PWD
source "$ROOT/bench/lib.sh"
bench_header QUICK SCALE LEVELS MAX_STEPS DURATION WARMUP BACKLOG BUILTIN_RATE CLIENTS JOBS LOAD \
	LOAD_SYNC SYNC CONSUMERS MIGD_EXTRA TIMEOUT CEIL_SECS

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
	LEVELS=${LEVELS:-"25 75"} MAX_STEPS=${MAX_STEPS:-"125"}
	DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} BACKLOG=${BACKLOG:-50000}
fi
SCALE=${SCALE:-10}
LEVELS=${LEVELS:-"25 50 75"}
MAX_STEPS=${MAX_STEPS:-"80 90 100 110 125 150"}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-5}
BACKLOG=${BACKLOG:-200000}
BUILTIN_RATE=${BUILTIN_RATE:-}
CLIENTS=${CLIENTS:-4}
JOBS=${JOBS:-2}
LOAD=${LOAD:-func}
LOAD_SYNC=${LOAD_SYNC:-off}
SYNC=${SYNC:-off}
CONSUMERS=${CONSUMERS:-"migd builtin"}
MIGD_EXTRA=${MIGD_EXTRA:-}
TIMEOUT=${TIMEOUT:-300}
CEIL_SECS=${CEIL_SECS:-$((QUICK == 1 ? 5 : 10))}
P99_LIMIT=1.0
echo "# SCALE=$SCALE LEVELS=\"$LEVELS\" MAX_STEPS=\"$MAX_STEPS\" DURATION=$DURATION WARMUP=$WARMUP" \
	"BACKLOG=$BACKLOG CLIENTS=$CLIENTS JOBS=$JOBS LOAD=$LOAD LOAD_SYNC=$LOAD_SYNC SYNC=$SYNC CONSUMERS=\"$CONSUMERS\""
bench_prepare
has() { [[ " $CONSUMERS " == *" $1 "* ]]; }

source "$ROOT/tests/harness/harness.sh"
harness_start_pg SRC 'max_replication_slots = 20' 'max_wal_senders = 20' 'autovacuum = off'
harness_start_pg TGT 'max_logical_replication_workers = 8' 'max_worker_processes = 16' \
	'wal_retrieve_retry_interval = 100ms' 'autovacuum = off'
W=$HARNESS_ROOT/bench
mkdir -p "$W"
chmod 755 "$W"

# ----------------------------------------------------------------------- setup
echo "# loading pgbench scale $SCALE into source database migd, copying it to builtin and ceiling"
sql SRC postgres "CREATE DATABASE migd"
pgbench -q -i -s "$SCALE" "$(pg_dsn SRC migd)" >"$W/pgbench-init.log" 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d "$(pg_dsn SRC migd)" >/dev/null <<-'SQL'
	ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY;
	CREATE TABLE heartbeat (id int PRIMARY KEY, ts timestamptz);
	INSERT INTO heartbeat VALUES (1, clock_timestamp());
	-- pgbench's tpcb-like transaction in one round trip (see the header)
	CREATE FUNCTION bench_tpcb(p_aid int, p_bid int, p_tid int, p_delta int) RETURNS int
	LANGUAGE plpgsql AS $$
	DECLARE b int;
	BEGIN
		UPDATE pgbench_accounts SET abalance = abalance + p_delta WHERE aid = p_aid RETURNING abalance INTO b;
		UPDATE pgbench_tellers SET tbalance = tbalance + p_delta WHERE tid = p_tid;
		UPDATE pgbench_branches SET bbalance = bbalance + p_delta WHERE bid = p_bid;
		INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (p_tid, p_bid, p_aid, p_delta, CURRENT_TIMESTAMP);
		RETURN b;
	END $$;
SQL
pg_dump --schema-only --no-owner --no-publications --no-subscriptions "$(pg_dsn SRC migd)" >"$W/schema.sql"
sql SRC postgres "CREATE DATABASE builtin TEMPLATE migd"
sql SRC postgres "CREATE DATABASE ceiling TEMPLATE migd" # the load ceiling's, no consumer
sql SRC builtin "CREATE PUBLICATION bench_pub FOR TABLE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history, heartbeat"
for db in migd builtin; do
	sql TGT postgres "CREATE DATABASE $db"
	psql -X -q -v ON_ERROR_STOP=1 -d "$(pg_dsn TGT "$db")" -f "$W/schema.sql" >/dev/null
done
sql TGT postgres "ALTER DATABASE migd SET synchronous_commit = $SYNC"

cat >"$W/tpcb.sql" <<-'S'
	\set aid random(1, 100000 * :scale)
	\set bid random(1, 1 * :scale)
	\set tid random(1, 10 * :scale)
	\set delta random(-5000, 5000)
	SELECT bench_tpcb(:aid, :bid, :tid, :delta);
S
printf 'UPDATE heartbeat SET ts = clock_timestamp() WHERE id = 1;\n\\sleep 100 ms\n' >"$W/heartbeat.sql"
load_args() { # the pgbench arguments of the load (without -R/-T/-t)
	if [[ $LOAD == builtin ]]; then
		echo "-n -b tpcb-like -c $CLIENTS -j $JOBS"
	else
		echo "-n -M prepared -f $W/tpcb.sql -D scale=$SCALE -c $CLIENTS -j $JOBS"
	fi
}

cat >"$W/migd.conf" <<CONF
[migration]
name = steady
state_dir = $W/state
[source]
engine = postgresql
dsn = $(pg_dsn SRC migd)
[target]
engine = postgresql
dsn = $(pg_dsn TGT migd)
[tables]
include = public.*
[backfill]
parallel = 2
chunk_rows = 250000
[control]
socket = $W/migd.sock
[metrics]
enabled = false
[log]
level = notice
CONF
if [[ -n $MIGD_EXTRA ]]; then printf '%s\n' "$MIGD_EXTRA" >>"$W/migd.conf"; fi

MIGD_PID=
migd_start() {
	"$MIGD" --foreground -c "$W/migd.conf" >>"$W/migd.log" 2>&1 &
	MIGD_PID=$!
}
migd_stop() {
	if [[ -n $MIGD_PID ]]; then
		kill -TERM "$MIGD_PID" 2>/dev/null || true
		wait "$MIGD_PID" 2>/dev/null || true
		MIGD_PID=
	fi
}
BG_PIDS=()
bg_stop() { # the sampler and load processes still running (at exit)
	local p
	for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	BG_PIDS=()
}
harness_on_exit 'migd_stop'
harness_on_exit 'bg_stop'
jget() { sed -n 's/.*"'"$1"'": *"\{0,1\}\([^",}]*\).*/\1/p' | head -1; }
die() {
	echo "bench: $*" >&2
	if [[ -f $W/migd.log ]]; then tail -n 20 "$W/migd.log" >&2; fi
	exit 1
}

sub_workers() { sql TGT builtin "SELECT count(pid) FROM pg_stat_subscription WHERE subname = 'bench_sub'"; }
builtin_stop() {
	sql TGT builtin "ALTER SUBSCRIPTION bench_sub DISABLE"
	poll_until 0.1 60 '[[ $(sub_workers) == 0 ]]' || die "the subscription's worker did not stop"
}
consumer_start() { # C
	if [[ $1 == migd ]]; then migd_start; else sql TGT builtin "ALTER SUBSCRIPTION bench_sub ENABLE"; fi
}
consumer_stop() { # C
	if [[ $1 == migd ]]; then migd_stop; else builtin_stop; fi
}
slot_of() { if [[ $1 == migd ]]; then echo migd_steady; else echo bench_sub; fi; }

# The heartbeat as the source has it and as the target shows it (epoch seconds).
HBQ="SELECT extract(epoch FROM ts) FROM heartbeat WHERE id = 1"
hb_beat() { # DB: one heartbeat (synchronous commit), prints its ts
	PGOPTIONS='-c synchronous_commit=on' sql SRC "$1" "UPDATE heartbeat SET ts = clock_timestamp() WHERE id = 1 RETURNING extract(epoch FROM ts)"
}
# Waits until the target shows heartbeat ts VALUE (or a later one); 1 on timeout.
hb_wait() { # DB VALUE SECS
	local deadline=$((SECONDS + $3)) v
	while :; do
		v=$(sql TGT "$1" "$HBQ")
		if awk -v a="$v" -v b="$2" 'BEGIN { exit !(a != "" && a >= b) }'; then return 0; fi
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

if has migd; then
	echo "# migd (source migd -> target migd, synchronous_commit = $SYNC): initial copy until phase synced"
	migd_start
	poll_until 0.2 600 '[[ $("$MIGCTL" -s "$W/migd.sock" --json status 2>/dev/null | jget phase) == synced ]]' ||
		die "migd did not reach synced"
	migd_stop
fi
if has builtin; then
	echo "# built-in subscription bench_sub (source builtin -> target builtin, synchronous_commit = $SYNC): initial copy"
	sql TGT builtin "CREATE SUBSCRIPTION bench_sub CONNECTION '$(pg_dsn SRC builtin)' PUBLICATION bench_pub
		WITH (synchronous_commit = '$SYNC')"
	poll_until 0.2 600 '[[ $(sql TGT builtin "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> '"'r'"'") == 0 ]]' ||
		die "the subscription did not finish its initial copy"
	builtin_stop
fi

# ------------------------------------------------------------- catch-up rate
# A backlog of BACKLOG transactions with the consumer stopped, a heartbeat as the marker,
# then the consumer started and timed until the marker is visible in its target.
catchup_rate() { # C: sets CU_RATE (txn/s) and CU_SECS
	local c=$1 mark t0 t
	sql SRC "$c" "VACUUM" >/dev/null
	sql TGT "$c" "VACUUM" >/dev/null
	# shellcheck disable=SC2046
	PGOPTIONS='-c synchronous_commit=off' pgbench $(load_args) -t $((BACKLOG / CLIENTS)) "$(pg_dsn SRC "$c")" \
		>"$W/backlog-$c.log" 2>&1 || {
		cat "$W/backlog-$c.log" >&2
		die "pgbench failed building the backlog"
	}
	mark=$(hb_beat "$c")
	sql SRC postgres "CHECKPOINT"
	sql TGT postgres "CHECKPOINT"
	t0=$(now)
	consumer_start "$c"
	hb_wait "$c" "$mark" "$TIMEOUT" || die "$c did not drain the backlog of $BACKLOG transactions"
	t=$(elapsed "$t0" "$(now)")
	consumer_stop "$c"
	CU_SECS=$t
	CU_RATE=$(awk -v n="$(((BACKLOG / CLIENTS) * CLIENTS + 1))" -v t="$t" 'BEGIN { printf "%.0f", n / t }')
}
echo "# uptime before: $(uptime)"
if [[ -z $BUILTIN_RATE ]]; then
	has builtin || die "BUILTIN_RATE is needed when the built-in subscription is not among CONSUMERS"
	catchup_rate builtin
	BUILTIN_RATE=$CU_RATE
	echo "  built-in catch-up rate: $BUILTIN_RATE txn/s (a backlog of $BACKLOG transactions in $CU_SECS s, synchronous_commit = $SYNC)"
else
	echo "  built-in catch-up rate: $BUILTIN_RATE txn/s (BUILTIN_RATE, not measured)"
fi
MIGD_RATE=-
if has migd; then
	catchup_rate migd
	MIGD_RATE=$CU_RATE
	echo "  migd catch-up rate:     $MIGD_RATE txn/s (the same backlog in $CU_SECS s, from process start; for comparison)"
fi

# What the load generator does with no consumer running: pgbench unthrottled for
# CEIL_SECS in the third copy (no slot decodes it, both consumers' walsenders skip it).
# shellcheck disable=SC2046
PGOPTIONS="-c synchronous_commit=$LOAD_SYNC" pgbench $(load_args) -T "$CEIL_SECS" "$(pg_dsn SRC ceiling)" >"$W/ceiling.log" 2>&1 ||
	die "pgbench failed measuring the load ceiling: $(cat "$W/ceiling.log")"
LOAD_CEIL=$(sed -n 's/^tps = \([0-9]*\).*/\1/p' "$W/ceiling.log")
echo "  load ceiling:           $LOAD_CEIL txn/s (pgbench $LOAD unthrottled for $CEIL_SECS s, no consumer running;" \
	"$(ratio "$LOAD_CEIL" "$BUILTIN_RATE") x the built-in catch-up rate)"

# ----------------------------------------------------------------- one run
: >"$W/results"
# Source clock and history sequence in one reading: "epoch last_value".
src_mark() { sql SRC "$1" "SELECT extract(epoch FROM clock_timestamp()) || ' ' || last_value FROM pgbench_history_id_seq"; }
cpu_snap() { # C WSPID: "own walsender src tgt"
	local own=0 ws=0
	if [[ $1 == migd ]]; then own=$(proc_cpu "$MIGD_PID"); fi
	if [[ -n $2 ]]; then ws=$(proc_cpu "$2"); fi
	echo "$own $ws $(server_cpu SRC) $(server_cpu TGT)"
}
migd_batches() { "$MIGCTL" -s "$W/migd.sock" --json status 2>/dev/null | sed 's/.*"apply"//' | jget "$1"; }

# run C LABEL PCT RATE: one measured run; appends a line to results, prints it
run() {
	local c=$1 label=$2 pct=$3 rate=$4 secs=$((WARMUP + DURATION)) mark ws
	sql SRC "$c" "VACUUM" >/dev/null
	sql TGT "$c" "VACUUM" >/dev/null
	consumer_start "$c"
	mark=$(hb_beat "$c")
	hb_wait "$c" "$mark" "$TIMEOUT" || die "$c did not catch up before its run"
	ws=$(sql SRC postgres "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '$(slot_of "$c")'")

	# The sampler: one psql session on the target, every 0.1 s "target epoch|lag".
	psql -X -At -d "$(pg_dsn TGT "$c")" >"$W/samples" 2>"$W/sampler.err" <<<"SELECT extract(epoch FROM clock_timestamp()), extract(epoch FROM clock_timestamp() - ts) FROM heartbeat WHERE id = 1 \watch 0.1" &
	local sampler=$!
	PGOPTIONS='-c synchronous_commit=on' pgbench -n -f "$W/heartbeat.sql" -c 1 -T "$secs" "$(pg_dsn SRC "$c")" >"$W/heartbeat.log" 2>&1 &
	local beater=$!
	# shellcheck disable=SC2046
	PGOPTIONS="-c synchronous_commit=$LOAD_SYNC" cpurun "$W/load.cpu" pgbench $(load_args) -R "$rate" -T "$secs" \
		"$(pg_dsn SRC "$c")" >"$W/load.log" 2>&1 &
	local loader=$!
	BG_PIDS=("$sampler" "$beater" "$loader")
	sleep "$WARMUP"
	local a b0 b1 x0
	a=$(src_mark "$c")
	local cpu0
	cpu0=$(cpu_snap "$c" "$ws")
	if [[ $c == migd ]]; then b0=$(migd_batches batches) x0=$(migd_batches transactions); fi
	wait "$loader" || {
		cat "$W/load.log" >&2
		die "pgbench (the load) failed"
	}
	local z
	z=$(src_mark "$c")
	wait "$beater" || die "the heartbeat writer failed: $(cat "$W/heartbeat.log")"
	BG_PIDS=("$sampler")
	local tz last tail
	tz=$(now)
	last=$(sql SRC "$c" "$HBQ")
	hb_wait "$c" "$last" "$TIMEOUT" || die "$c did not catch up within $TIMEOUT s after its run"
	tail=$(elapsed "$tz" "$(now)")
	local cpu1
	cpu1=$(cpu_snap "$c" "$ws")
	local batches=- tpb=-
	if [[ $c == migd ]]; then
		b1=$(migd_batches batches)
		batches=$((b1 - b0))
		tpb=$(awk -v a="$(($(migd_batches transactions) - x0))" -v b="$batches" 'BEGIN { if (b) printf "%.0f", a / b; else print "-" }')
	fi
	kill -TERM "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	BG_PIDS=()
	consumer_stop "$c"

	local ta na tb nb
	read -r ta na <<<"$a"
	read -r tb nb <<<"$z"
	# lag samples inside the window [end of warm-up, end of load]
	awk -F'|' -v a="$ta" -v b="$tb" 'NF == 2 && $1 >= a && $1 <= b { print $2 }' "$W/samples" | sort -g >"$W/lags"
	local n p50 p99 max
	n=$(wc -l <"$W/lags")
	((n > 0)) || die "no lag samples in the window ($(cat "$W/sampler.err"))"
	p50=$(awk -v n="$n" -v q=0.50 'BEGIN { k = int(q * n + 0.999999) } NR == k { printf "%.3f", $1 }' "$W/lags")
	p99=$(awk -v n="$n" -v q=0.99 'BEGIN { k = int(q * n + 0.999999) } NR == k { printf "%.3f", $1 }' "$W/lags")
	max=$(tail -n 1 "$W/lags" | awk '{ printf "%.3f", $1 }')
	local got chg
	got=$(awk -v n=$((nb - na)) -v t="$(elapsed "$ta" "$tb")" 'BEGIN { printf "%.0f", n / t }')
	chg=$((4 * (nb - na)))
	local own wsc src tgt all repl lcpu lproc sched
	read -r own wsc src tgt <<<"$(paste -d' ' <(tr ' ' '\n' <<<"$cpu0") <(tr ' ' '\n' <<<"$cpu1") |
		awk '{ printf "%.2f ", $2 - $1 }')"
	all=$(awk -v a="$own" -v s="$src" -v t="$tgt" -v n="$chg" 'BEGIN { printf "%.1f", (a + s + t) / n * 1e6 }')
	repl=$(awk -v a="$own" -v w="$wsc" -v t="$tgt" -v n="$chg" 'BEGIN { printf "%.1f", (a + w + t) / n * 1e6 }')
	read -r _ lcpu <"$W/load.cpu"
	lproc=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$W/load.log")
	lcpu=$(awk -v c="$lcpu" -v n="${lproc:-0}" 'BEGIN { if (n) printf "%.1f", c / (4 * n) * 1e6; else print "-" }')
	sched=$(sed -n 's/^rate limit schedule lag: avg \([0-9.]*\) (max \([0-9.]*\)).*/\1\/\2/p' "$W/load.log")
	local ok=yes
	awk -v p="$p99" -v l="$P99_LIMIT" 'BEGIN { exit !(p >= l) }' && ok=no
	local delivered=yes
	awk -v g="$got" -v r="$rate" 'BEGIN { exit !(g < 0.95 * r) }' && delivered=no
	# results: C LABEL PCT ASKED GOT P50 P99 MAX TAIL ALL REPL N OK DELIVERED ...
	echo "$c $label $pct $rate $got $p50 $p99 $max $tail $all $repl $n $ok $delivered own=$own walsender=$wsc src=$src tgt=$tgt load_client_s/M=$lcpu sched_lag_ms=${sched:-?} batches=$batches txns/batch=$tpb" >>"$W/results"
	printf '  %-7s %-5s asked %6d txn/s  got %6d  lag p50 %6.3f  p99 %6.3f  max %6.3f s  tail %5.2f s  cpu s/M chg all %6.1f repl %6.1f%s\n' \
		"$c" "$label" "$rate" "$got" "$p50" "$p99" "$max" "$tail" "$all" "$repl" \
		"$([[ $delivered == no ]] && echo '  (pgbench short of the rate)')"
	printf '          samples=%d own=%s walsender=%s src=%s tgt=%s load_client_s/M=%s sched_lag_avg/max_ms=%s batches=%s txns/batch=%s\n' \
		"$n" "$own" "$wsc" "$src" "$tgt" "$lcpu" "${sched:-?}" "$batches" "$tpb"
}

rate_of() { awk -v r="$BUILTIN_RATE" -v p="$1" 'BEGIN { printf "%d", r * p / 100 + 0.5 }'; }
order() { # IDX: the consumers of run IDX, the first alternating
	local cs=() c
	for c in migd builtin; do has "$c" && cs+=("$c"); done
	if (($1 % 2 == 1)) && ((${#cs[@]} == 2)); then cs=("${cs[1]}" "${cs[0]}"); fi
	echo "${cs[@]}"
}

# ------------------------------------------------------------ measurement
i=0
for pct in $LEVELS; do
	echo "# level $pct% of the built-in catch-up rate: $(rate_of "$pct") txn/s for $WARMUP+$DURATION s"
	for c in $(order $i); do run "$c" "L$pct" "$pct" "$(rate_of "$pct")"; done
	i=$((i + 1))
done
# Stepping on: a consumer leaves once its p99 reaches the limit or pgbench falls short.
stepping() { # C: still stepping (no failed or short run yet)
	! awk -v c="$1" '$1 == c && ($13 == "no" || $14 == "no") { f = 1 } END { exit !f }' "$W/results"
}
for pct in $MAX_STEPS; do
	cs=()
	for c in $(order $i); do stepping "$c" && cs+=("$c"); done
	((${#cs[@]})) || break
	echo "# step $pct% of the built-in catch-up rate: $(rate_of "$pct") txn/s for $WARMUP+$DURATION s (${cs[*]})"
	for c in "${cs[@]}"; do run "$c" "S$pct" "$pct" "$(rate_of "$pct")"; done
	i=$((i + 1))
done

# ----------------------------------------------------------------- verify
verify() { # every target equals its source, after letting each consumer catch up
	local q="SELECT (SELECT count(*) FROM pgbench_accounts) || ' ' || (SELECT sum(abalance) FROM pgbench_accounts)
		|| ' ' || (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' || (SELECT sum(bbalance) FROM pgbench_branches)
		|| ' ' || (SELECT count(*) FROM pgbench_history) || ' ' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
		|| ' ' || (SELECT extract(epoch FROM ts) FROM heartbeat WHERE id = 1)"
	local c mark want got
	for c in migd builtin; do
		has "$c" || continue
		consumer_start "$c"
		mark=$(hb_beat "$c")
		hb_wait "$c" "$mark" "$TIMEOUT" || die "$c did not catch up for the final check"
		consumer_stop "$c"
		want=$(sql SRC "$c" "$q")
		got=$(sql TGT "$c" "$q")
		[[ $got == "$want" ]] || die "target database $c differs from its source: [$got] vs [$want]"
		echo "  target $c equals its source (counts, balances, history, heartbeat): $want"
	done
}
echo "# final check"
verify
echo "# uptime after: $(uptime)"

# ----------------------------------------------------------------- summary
echo
echo "== steady-state lag, pgbench TPC-B ($LOAD) at a fixed rate, $DURATION s windows after $WARMUP s warm-up;" \
	"built-in catch-up rate $BUILTIN_RATE txn/s, migd's $MIGD_RATE txn/s (synchronous_commit = $SYNC)"
echo "load ceiling (pgbench alone) $LOAD_CEIL txn/s"
printf '%-6s %-8s %8s %8s %7s %7s %7s %7s %11s %12s\n' run consumer "asked/s" "got/s" "p50 s" "p99 s" "max s" "tail s" "all cpu s/M" "repl cpu s/M"
sort -k3,3n -k1,1r "$W/results" | awk '{ printf "%-6s %-8s %8d %8d %7.3f %7.3f %7.3f %7.2f %11.1f %12.1f%s\n",
	$2, $1, $4, $5, $6, $7, $8, $9, $10, $11, ($14 == "no" ? "  short" : "") }'
echo "(lag: target clock minus the visible heartbeat, resolution 0.1 s (a lag-free consumer shows ~0.05/0.1);"
echo " all cpu: migd + both servers; repl cpu: migd + its walsender + the target; per million TPC-B row changes;"
echo " short: pgbench delivered < 95% of the asked rate)"
echo
if has migd && has builtin; then
	echo "ratios per run (> 1 means migd is better):"
	for label in $(awk '{ print $2 }' "$W/results" | awk '!seen[$0]++'); do
		m=$(awk -v l="$label" '$1 == "migd" && $2 == l' "$W/results")
		b=$(awk -v l="$label" '$1 == "builtin" && $2 == l' "$W/results")
		[[ -n $m && -n $b ]] || continue
		read -r _ _ _ _ _ mp50 mp99 _ _ mall mrepl _ <<<"$m"
		read -r _ _ _ _ _ bp50 bp99 _ _ ball brepl _ <<<"$b"
		printf '  %-5s p50 builtin/migd %5s   p99 builtin/migd %5s   all cpu builtin/migd %5s   repl cpu builtin/migd %5s\n' \
			"$label" "$(ratio "$bp50" "$mp50")" "$(ratio "$bp99" "$mp99")" "$(ratio "$ball" "$mall")" "$(ratio "$brepl" "$mrepl")"
	done
	echo
fi
# The highest rate with p99 < 1 s: in rising order, up to the first failed run.
echo "highest rate with lag p99 < ${P99_LIMIT} s:"
best() { # C: "rate pct why"
	sort -k3,3n "$W/results" | awk -v c="$1" -v lim="$P99_LIMIT" '
		$1 != c { next }
		$13 == "no" { why = sprintf("p99 %.3f s at %d txn/s (%s%%%s)", $7, $5, $3, ($14 == "no" ? ", pgbench short of the rate" : "")); done = 1; exit }
		{ best = $5; pct = $3; if ($14 == "no") { why = sprintf("pgbench short of the rate at %s%%: a lower bound", $3); done = 1; exit } }
		END { if (!done) why = "every step passed: a lower bound"; if (best == "") { best = "-"; pct = "-" }; printf "%s %s %s\n", best, pct, why }'
}
for c in migd builtin; do
	has "$c" || continue
	read -r r p why <<<"$(best "$c")"
	printf '  %-8s %8s txn/s got (run at %s%% of the built-in catch-up rate); stopped by: %s\n' "$c" "$r" "$p" "$why"
	eval "BEST_$c=\$r"
done
if has migd && has builtin; then
	echo "  ratio migd/builtin = $(ratio "${BEST_migd:--}" "${BEST_builtin:--}")"
fi
echo
echo "per run:"
sed 's/^/  /' "$W/results"
