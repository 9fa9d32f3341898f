# tests/lib.sh: shared helpers for migd's integration tests (bash).
#
#   source "$(dirname "$0")/../lib.sh"
#   t_config "$T_TMP/migd.conf"          # a valid config in the test's temp dir
#   migd_start "$T_TMP/migd.conf"        # runs migd --foreground, waits for ping
#   mctl status                          # migctl on the test's socket
#   migd_stop                            # SIGTERM, expects exit 0
#
# Everything lives in $T_TMP, removed on exit along with any migd started.
# $MIGD_WRAPPER (e.g. valgrind) is put in front of every migd and migctl run.
# Database servers come from tests/harness/harness.sh (source it as well).

set -euo pipefail

MIGD_SRCDIR=${MIGD_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
MIGD_BUILDDIR=${MIGD_BUILDDIR:-$MIGD_SRCDIR}
MIGD_BIN=$MIGD_BUILDDIR/daemon/migd
MIGCTL_BIN=$MIGD_BUILDDIR/daemon/migctl
TOOLS=$MIGD_BUILDDIR/tests/tools
read -r -a T_WRAP <<<"${MIGD_WRAPPER:-}"

T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/migd-test.XXXXXX")
chmod 755 "$T_TMP" # other uids (permission tests) must reach the socket
T_SOCK=$T_TMP/migd.sock
MIGD_PID=
T_CLEANUP=()

t_on_exit() { T_CLEANUP+=("$*"); }

t_cleanup() {
	local rc=$?
	local i
	for ((i = ${#T_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${T_CLEANUP[i]}" || true
	done
	if [[ -n $MIGD_PID ]] && kill -0 "$MIGD_PID" 2>/dev/null; then
		kill -KILL "$MIGD_PID" 2>/dev/null || true
		wait "$MIGD_PID" 2>/dev/null || true
	fi
	# Servers from the harness go after migd (whose connections they serve).
	if declare -F harness_cleanup >/dev/null; then
		harness_cleanup || true
	fi
	if ((rc != 0)) && [[ -f $T_TMP/migd.log ]]; then
		echo "--- last lines of migd.log ---" >&2
		tail -n 30 "$T_TMP/migd.log" >&2
	fi
	rm -rf "$T_TMP"
	exit $rc
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok - $*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

assert_eq() { # actual expected what
	[[ $1 == "$2" ]] || fail "$3: expected '$2', got '$1'"
}

assert_contains() { # haystack needle what
	[[ $1 == *"$2"* ]] || fail "$3: '$2' not found in: $1"
}

assert_not_contains() { # haystack needle what
	[[ $1 != *"$2"* ]] || fail "$3: '$2' must not appear in: $1"
}

# Runs a command expecting exit status $1; its output lands in $OUT.
expect_rc() {
	local want=$1
	shift
	local rc=0
	OUT=$("$@" 2>&1) || rc=$?
	[[ $rc == "$want" ]] || fail "'$*' exited $rc, expected $want; output: $OUT"
}

# Polls a shell condition for up to $1 seconds.
wait_for() {
	local secs=$1
	shift
	local deadline=$((SECONDS + secs))
	until eval "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# Debian's python3 itself: a pyenv shim ahead of it in PATH costs 0.3 s a
# call, and the tests ask it for every JSON field (slow polls let phases
# pass between a check and the action it gates).
if [[ -x /usr/bin/python3 ]]; then
	python3() { /usr/bin/python3 "$@"; }
	export -f python3
fi

# JSON field from stdin: jfield '.a.b' (python3 is on every Debian).
jfield() {
	python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].strip(".").split("."):
    if k:
        v = v[int(k)] if isinstance(v, list) else v.get(k)
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$1"
}

# Writes a valid config to $1; extra lines in "$@" are appended.
t_config() {
	local f=$1
	shift
	cat >"$f" <<-EOF
		[migration]
		state_dir = $T_TMP
		[source]
		engine = postgresql
		dsn = host=127.0.0.1 port=1 dbname=src
		[target]
		engine = postgresql
		dsn = host=127.0.0.1 port=1 dbname=tgt
		[tables]
		include = public.*
		[control]
		socket = $T_SOCK
		idle_timeout = ${T_IDLE_TIMEOUT:-30s}
		max_clients = ${T_MAX_CLIENTS:-32}
		[metrics]
		port = 0
		[log]
		level = debug
	EOF
	local l
	for l in "$@"; do printf '%s\n' "$l" >>"$f"; done
}

mctl() { "${T_WRAP[@]}" "$MIGCTL_BIN" -s "$T_SOCK" "$@"; }

# Starts migd in the foreground on config $1 (log: $T_TMP/migd.log) and
# waits until it answers ping.
migd_start() {
	"${T_WRAP[@]}" "$MIGD_BIN" --foreground -c "$1" >>"$T_TMP/migd.log" 2>&1 &
	MIGD_PID=$!
	if ! wait_for 30 '"$MIGCTL_BIN" -s "$T_SOCK" ping >/dev/null 2>&1'; then
		fail "migd did not start within 30 s"
	fi
}

# The metrics port migd bound (it logs it and reports it in status).
migd_metrics_port() { mctl --json status | jfield .metrics.port; }

# A config for a real migration between the harness's SRC and TGT servers.
t_pg_config() {
	local f=$1
	shift
	cat >"$f" <<-EOF
		[migration]
		name = t
		state_dir = $T_TMP/state
		[source]
		engine = postgresql
		dsn = $SRC_DSN
		[target]
		engine = postgresql
		dsn = $TGT_DSN
		[tables]
		include = public.*
		[backfill]
		parallel = 2
		chunk_rows = 1000
		[apply]
		batch_delay = 50ms
		[control]
		socket = $T_SOCK
		[metrics]
		port = 0
		[log]
		level = info
	EOF
	local l
	for l in "$@"; do printf '%s\n' "$l" >>"$f"; done
}

# Phase from status.
migd_phase() { mctl --json status | jfield .phase; }

# Waits up to $1 s for a phase matching regex $2 (fails with the status when it does not come).
wait_phase() {
	local secs=$1 want=$2
	if ! wait_for "$secs" '[[ $(migd_phase 2>/dev/null) =~ ^('"$want"')$ ]]'; then
		mctl status >&2 || true
		fail "phase $want not reached within $secs s"
	fi
}

# Waits until everything the source has written so far is applied: migd has
# confirmed past the source's current WAL position (read here, so the check
# does not depend on how fresh migd's own view is) and its lag is 0.
wait_caught_up() { # [SECONDS [SERVER]]: SERVER the PostgreSQL source (SRC)
	local secs=${1:-60} srv=${2:-SRC} want
	want=$(harness_sql "$srv" "SELECT pg_current_wal_lsn()")
	if ! wait_for "$secs" 'caught_up_to "$want" "$srv"'; then
		mctl lag >&2 || true
		fail "target did not catch up to $want within $secs s"
	fi
}

caught_up_to() {
	local st confirmed bytes
	st=$(mctl --json lag 2>/dev/null) || return 1
	confirmed=$(jfield .stream.confirmed_pos <<<"$st")
	bytes=$(jfield .lag.bytes <<<"$st")
	[[ $bytes == 0 ]] &&
		[[ $(harness_sql "${2:-SRC}" "SELECT '$confirmed'::pg_lsn >= '$1'::pg_lsn") == t ]]
}

# Row-for-row comparison of one table: an ordered digest of every row.
table_digest() { # NAME table order-by
	harness_sql "$1" "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY $3)), '-') FROM $2 t"
}

assert_same_table() { # table order-by
	local a b
	a=$(table_digest SRC "$1" "$2")
	b=$(table_digest TGT "$1" "$2")
	[[ $a == "$b" ]] || fail "$1 differs: source [$a] target [$b]"
}

# MariaDB SRC -> PostgreSQL TGT: a table's rows in a canonical text on each
# side (a CONCAT_WS / concat_ws expression per engine), counted and hashed.
rows_my() { # table my-expr [order-by]
	harness_sql SRC "SET SESSION group_concat_max_len = 1073741824; SELECT COUNT(*), MD5(COALESCE(GROUP_CONCAT($2 ORDER BY ${3:-id} SEPARATOR '\n'), '')) FROM $1" | tr '\t' ' '
}
rows_pg() { # table pg-expr [order-by]; the table is in schema test (the MariaDB database)
	harness_sql TGT "SELECT count(*) || ' ' || md5(coalesce(string_agg($2, E'\n' ORDER BY ${3:-id}), '')) FROM test.$1"
}
assert_same_rows() { # table my-expr pg-expr [order-by]: on a difference, the first differing rows
	local a b o=${4:-id}
	a=$(rows_my "$1" "$2" "$o")
	b=$(rows_pg "$1" "$3" "$o")
	if [[ $a != "$b" ]]; then
		harness_sql SRC "SELECT $2 FROM $1 ORDER BY $o" | sed "s/\\\\t/\t/g" >"$T_TMP/src.rows"
		harness_sql TGT "SELECT $3 FROM test.$1 ORDER BY $o" >"$T_TMP/tgt.rows"
		diff "$T_TMP/src.rows" "$T_TMP/tgt.rows" | head -10 >&2
		fail "$1 differs: source [$a] target [$b]"
	fi
}

# MariaDB SRC: caught up once the applied GTID has reached the source's binlog GTID position.
wait_my_caught_up() {
	local want
	want=$(harness_sql SRC "SELECT @@gtid_binlog_pos")
	want=${want##*-}
	if ! wait_for "${1:-60}" '[[ $(mctl --json lag | jfield .apply.applied_pos) =~ -([0-9]+)@ ]] && (( BASH_REMATCH[1] >= want ))'; then
		mctl status >&2 || true
		fail "target did not catch up to GTID seq $want"
	fi
}

# SIGTERM; expects exit code ${1:-0}.
migd_stop() {
	local want=${1:-0} rc=0
	kill -TERM "$MIGD_PID"
	wait "$MIGD_PID" || rc=$?
	MIGD_PID=
	[[ $rc == "$want" ]] || fail "migd exited $rc after SIGTERM, expected $want"
}
