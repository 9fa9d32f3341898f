# shellcheck shell=bash
# bench/lib.sh: helpers shared by the benchmarks (source it; bash only).
#
#   bench_header VAR...      the exact command line (with the VARs that were set), machine facts
#   bench_prepare            builds migd when needed, checks the client tools
#   now                      wall clock, seconds with decimals
#   cpurun OUT CMD...        runs CMD; OUT gets "elapsed_s cpu_s" (CMD and all its children)
#   proc_cpu PID             user+system seconds of a live process (all its threads)
#   server_cpu NAME          user+system seconds of a harness server: postmaster, live
#                            children, and the children it already reaped
#   median / minmax          of numbers on stdin
#   ratio A B                A/B with 2 decimals ("-" when unknown)
#   pg_dsn NAME DB           key=value DSN of harness server NAME, database DB
#   pg_uri NAME DB           the same as a postgres:// URI
#   sql NAME DB SQL          psql -X -At as superuser (like harness_sql_db, quieter)

BENCH_ROOT=${BENCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
MIGD=$BENCH_ROOT/daemon/migd
MIGCTL=$BENCH_ROOT/daemon/migctl
CLK_TCK=$(getconf CLK_TCK)

bench_header() {
	local v set=()
	for v in "$@"; do
		if [[ -n ${!v+x} ]]; then set+=("$v=$(printf %q "${!v}")"); fi
	done
	printf '$'
	if ((${#set[@]})); then printf ' %s' "${set[@]}"; fi
	printf ' %s' "$BENCH_SELF" "${BENCH_ARGS[@]}"
	printf '\n'
	printf '# %s on %s: %s cores, %s GiB RAM, load average %s\n' "$(date -u '+%Y-%m-%d %H:%M:%SZ')" \
		"$(uname -r)" "$(nproc)" "$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)" \
		"$(cut -d' ' -f1-3 /proc/loadavg)"
	printf '# %s; %s\n' "$(/usr/lib/postgresql/15/bin/postgres --version)" "$(migd_version)"
}

migd_version() {
	local v="migd not built yet"
	if [[ -x $MIGD ]]; then
		v="$("$MIGD" --version 2>/dev/null || echo migd) built $(date -u -r "$MIGD" '+%Y-%m-%d %H:%M:%SZ')"
	fi
	printf '%s; tree %s' "$v" "$(git -C "$BENCH_ROOT" describe --always --dirty 2>/dev/null || echo '?')"
}

bench_prepare() {
	if [[ ! -x $MIGD || ! -x $MIGCTL ]]; then
		echo "# building migd (scripts/build)"
		"$BENCH_ROOT/scripts/build" >/dev/null
	fi
	local t
	for t in pgbench pg_dump pg_restore psql python3; do
		command -v "$t" >/dev/null || {
			echo "bench: $t is missing (scripts/deps installs it)" >&2
			exit 1
		}
	done
}

now() { date +%s.%N; }

# Seconds between two `now` readings (or any two numbers), 3 decimals.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

cpurun() { # OUT CMD...: elapsed and CPU (self + every waited-for descendant) into OUT
	local out=$1
	shift
	python3 -c '
import resource, subprocess, sys, time
t0 = time.monotonic()
rc = subprocess.call(sys.argv[2:])
t = time.monotonic() - t0
r = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write("%.3f %.3f\n" % (t, r.ru_utime + r.ru_stime))
sys.exit(rc)' "$out" "$@"
}

_stat_ticks() { # PID [all]: utime+stime (+ cutime+cstime with "all") in clock ticks
	local s f
	s=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo 0
		return
	}
	s=${s##*) }
	read -r -a f <<<"$s"
	if [[ ${2:-} == all ]]; then
		echo $((f[11] + f[12] + f[13] + f[14]))
	else
		echo $((f[11] + f[12]))
	fi
}

# (one line each: validate.sh sums several servers' lines with awk)
proc_cpu() { awk -v t="$(_stat_ticks "$1")" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f\n", t / hz }'; }

server_cpu() { # NAME
	local pm kid total
	pm=$(cat "$HARNESS_ROOT/$1/pid")
	total=$(_stat_ticks "$pm" all)
	for kid in $(ps -o pid= --ppid "$pm" 2>/dev/null || true); do
		total=$((total + $(_stat_ticks "$kid" all)))
	done
	awk -v t="$total" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f\n", t / hz }'
}

median() {
	sort -g | awk '{ a[NR] = $1 } END {
		if (NR == 0) { print "-"; exit }
		if (NR % 2) printf "%.2f\n", a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%.2f-%.2f\n", lo, hi; else print "-" }'; }

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

pg_dsn() {
	local h=${1}_HOST p=${1}_PORT
	printf 'host=%s port=%s user=postgres dbname=%s' "${!h}" "${!p}" "$2"
}

pg_uri() {
	local h=${1}_HOST p=${1}_PORT
	printf 'postgres://postgres@%s:%s/%s' "${!h}" "${!p}" "$2"
}

sql() { # NAME DB SQL
	PGOPTIONS='-c client_min_messages=warning' psql -X -q -At -v ON_ERROR_STOP=1 -d "$(pg_dsn "$1" "$2")" -c "$3"
}

# Polls "$@" (a shell condition) every $1 seconds until true or $2 seconds pass.
poll_until() {
	local every=$1 secs=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until eval "$*"; do
		((SECONDS < deadline)) || return 1
		sleep "$every"
	done
}

# Drops a replication slot, waiting for its walsender to go away first.
drop_slot() { # NAME DB SLOT
	local _
	for _ in $(seq 100); do
		if [[ $(sql "$1" "$2" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$3'") == 0 ]]; then
			return 0
		fi
		if sql "$1" "$2" "SELECT pg_drop_replication_slot('$3')" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "bench: cannot drop slot $3" >&2
	return 1
}
