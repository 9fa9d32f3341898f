#!/usr/bin/env bash
# bench/pg_freeze_window.sh: the write-unavailability window of a cutover and
# of a rollback, while pgbench writes at a steady rate (default 500 txn/s)
# as the application role.
#
#   window(cutover)  = from `migctl freeze` starting to `migctl cutover` returning
#                      (with validation and the gate in between, as an operator runs it)
#   window(rollback) = `migctl rollback` from start to end
# The gate needs a validation at the freeze position, so the cutover window
# includes `migctl validate --kind counts --wait` (and, with CHECKSUMS=1,
# checksums too): that is the honest end-to-end cost.  Each run uses fresh
# servers (a cutover happens once per migration).
#   RUNS (5)  RATE (500)  SCALE (pgbench scale, 10)  CHECKSUMS (0)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-5}
RATE=${RATE:-500}
SCALE=${SCALE:-10}
CHECKSUMS=${CHECKSUMS:-0}
if [[ ${1:-} != --one ]]; then
	echo "# $0 RUNS=$RUNS RATE=$RATE SCALE=$SCALE CHECKSUMS=$CHECKSUMS ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
	scripts/build >/dev/null
fi
MIGD=$ROOT/daemon/migd
MIGCTL=$ROOT/daemon/migctl

ms() { date +%s%3N; }

# One run per process: the harness owns its shell's main process.
one_run() {
		source "$ROOT/tests/harness/harness.sh"
		harness_pair postgresql postgresql >/dev/null 2>&1
		pgbench -q -i -s "$SCALE" "$SRC_DSN" >/dev/null 2>&1
		harness_sql SRC "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY" >/dev/null
		pg_dump --schema-only --no-owner "$SRC_DSN" | psql -q -X "$TGT_DSN" >/dev/null
		for side in SRC TGT; do
			harness_sql $side "CREATE ROLE app LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app;" >/dev/null
		done
		D=$HARNESS_ROOT/bench
		mkdir -p "$D"
		cat >"$D/migd.conf" <<CONF
[migration]
name = bench
state_dir = $D/state
[source]
engine = postgresql
dsn = $SRC_DSN
[target]
engine = postgresql
dsn = $TGT_DSN
[tables]
include = public.pgbench_*
[backfill]
chunk_rows = 100000
[freeze]
roles = app
[gate]
require_validation = $([[ $CHECKSUMS == 1 ]] && echo counts,checksums || echo counts)
[hooks]
flip = true
rollback = true
[control]
socket = $D/migd.sock
[metrics]
port = 0
[log]
level = warn
CONF
		"$MIGD" -c "$D/migd.conf" 2>"$D/migd.log"
		export MIGD_SOCKET=$D/migd.sock
		harness_on_exit "kill \$($MIGCTL --json ping | python3 -c 'import json,sys;print(json.load(sys.stdin)[\"pid\"])') 2>/dev/null || true"
		until [[ $($MIGCTL --json phase | python3 -c 'import json,sys;print(json.load(sys.stdin)["phase"])') == synced ]]; do sleep 0.2; done
		APP_SRC="host=127.0.0.1 port=$SRC_PORT user=app dbname=postgres"
		APP_TGT="host=127.0.0.1 port=$TGT_PORT user=app dbname=postgres"
		# Steady writes; the freeze ends these sessions (pgbench reports the errors).
		pgbench -n -c 4 -j 2 -R "$RATE" -T 600 "$APP_SRC" >"$D/pgbench_src.log" 2>&1 &
		PGB=$!
		sleep 3
		kinds=counts
		[[ $CHECKSUMS == 1 ]] && kinds=all
		t0=$(ms)
		$MIGCTL freeze >/dev/null
		t1=$(ms)
		$MIGCTL validate --kind "$kinds" --wait >/dev/null
		t2=$(ms)
		$MIGCTL gate >/dev/null
		$MIGCTL cutover >/dev/null
		t3=$(ms)
		kill "$PGB" 2>/dev/null || true
		wait "$PGB" 2>/dev/null || true
		pgbench -n -c 4 -j 2 -R "$RATE" -T 600 "$APP_TGT" >"$D/pgbench_tgt.log" 2>&1 &
		PGB=$!
		sleep 3
		t4=$(ms)
		$MIGCTL rollback >/dev/null
		t5=$(ms)
		kill "$PGB" 2>/dev/null || true
		wait "$PGB" 2>/dev/null || true
		echo "RUN cutover_window_ms=$((t3 - t0)) freeze_ms=$((t1 - t0)) validate_ms=$((t2 - t1)) gate_cutover_ms=$((t3 - t2)) rollback_window_ms=$((t5 - t4))"
}
if [[ ${1:-} == --one ]]; then
	one_run
	exit 0
fi
for ((r = 1; r <= RUNS; r++)); do
	bash "$0" --one 2>/dev/null | grep '^RUN' | tee -a /tmp/freeze_window.$$ || echo "# run $r failed"
done
mapfile -t cut_w < <(grep -o 'cutover_window_ms=[0-9]*' /tmp/freeze_window.$$ | cut -d= -f2 | sort -n)
mapfile -t rb_w < <(grep -o 'rollback_window_ms=[0-9]*' /tmp/freeze_window.$$ | cut -d= -f2 | sort -n)
rm -f /tmp/freeze_window.$$
p50() { local a=("$@"); echo "${a[$(((${#a[@]} - 1) / 2))]}"; }
echo
printf 'write-unavailability window at %s txn/s (%s runs):\n' "$RATE" "${#cut_w[@]}"
printf '  freeze -> cutover done : p50 %s ms, max %s ms (target: < 2000 ms)\n' "$(p50 "${cut_w[@]}")" "${cut_w[-1]}"
printf '  rollback               : p50 %s ms, max %s ms\n' "$(p50 "${rb_w[@]}")" "${rb_w[-1]}"
