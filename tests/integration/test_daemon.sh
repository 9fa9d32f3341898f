#!/usr/bin/env bash
# Daemon lifecycle: start (attached and detached), migctl round trips,
# reload (applied, needs restart, refused), one daemon per socket, SIGTERM.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"

t_config "$T_TMP/migd.conf"
migd_start "$T_TMP/migd.conf"

expect_rc 0 mctl ping
assert_eq "$OUT" "pong: yes
pid: $MIGD_PID" "ping output"
ok "migctl ping"

st=$(mctl --json status)
assert_eq "$(jfield .phase <<<"$st")" "init" "status phase"
assert_eq "$(jfield .owner <<<"$st")" "source" "status owner"
assert_eq "$(jfield .config_path <<<"$st")" "$T_TMP/migd.conf" "status config path"
assert_eq "$(jfield .version <<<"$st")" "$("$MIGD_BIN" --version | awk '{print $2}')" "version"
assert_eq "$(jfield .source.engine <<<"$st")" "postgresql" "source engine"
[[ $(jfield .uptime_seconds <<<"$st") =~ ^[0-9.]+$ ]] || fail "uptime not a number: $st"
expect_rc 0 mctl status
assert_contains "$OUT" "phase      init" "readable status"
ok "migctl status (json and readable)"

expect_rc 0 mctl help
for c in config help ping reload status; do assert_contains "$OUT" " $c " "help lists $c"; done
assert_contains "$OUT" "* reload" "help marks mutating commands"
ok "migctl help comes from the daemon's table"

expect_rc 1 mctl frobnicate
assert_contains "$OUT" "unknown command 'frobnicate'" "unknown command"
expect_rc 2 "$MIGCTL_BIN"
expect_rc 2 "$MIGCTL_BIN" --timeout x status
ok "migctl exit codes: 1 command failed, 2 usage"

# Reload: a reloadable key applies, a restart-only key is reported.
sed -i 's/^level = debug/level = info/; s/^idle_timeout = .*/idle_timeout = 45s/' "$T_TMP/migd.conf"
sed -i 's/^\[metrics\]/[metrics]\nenabled = false/' "$T_TMP/migd.conf"
expect_rc 0 mctl --json reload
assert_eq "$(jfield .pending_restart <<<"$OUT")" '["metrics.enabled"]' "reload pending"
cfg=$(mctl config)
assert_contains "$cfg" "level = info" "log level reloaded"
assert_contains "$cfg" "idle_timeout = 45s" "idle timeout reloaded"
assert_contains "$cfg" "enabled = true" "metrics.enabled kept until restart"
assert_contains "$(cat "$T_TMP/migd.log")" 'event=reload result=ok' "reload logged"
assert_contains "$(mctl status)" "restart needed for: metrics.enabled" "status shows pending restart"
ok "reload applies reloadable keys and reports metrics.enabled as needing a restart"

# SIGHUP does the same; a broken file is refused and the daemon keeps going.
echo "bogus line" >>"$T_TMP/migd.conf"
kill -HUP "$MIGD_PID"
wait_for 5 '[[ $(mctl --json status | jfield .last_reload.result) == refused ]]' ||
	fail "SIGHUP with a broken config was not reported as refused"
expect_rc 1 mctl reload
assert_contains "$OUT" "reload refused" "migctl reload on broken config"
assert_contains "$OUT" "migd.conf:" "reload error names file:line"
expect_rc 0 mctl ping
ok "a broken config on reload is refused with file:line; the daemon keeps running"
sed -i '$d' "$T_TMP/migd.conf"

# One daemon per socket.
expect_rc 73 "$MIGD_BIN" --foreground -c "$T_TMP/migd.conf"
assert_contains "$OUT" "another daemon is already listening on $T_SOCK" "second daemon"
expect_rc 0 mctl ping
ok "a second migd on the same socket is refused (exit 73); the first is unaffected"

# Clean stop removes the socket.
migd_stop 0
[[ ! -e $T_SOCK ]] || fail "socket left behind after SIGTERM"
assert_contains "$(cat "$T_TMP/migd.log")" "event=shutdown reason=SIGTERM" "shutdown logged"
expect_rc 3 mctl status
assert_contains "$OUT" "migd is not running" "unreachable message"
ok "SIGTERM: exit 0, socket removed; migctl then says migd is not running (exit 3)"

# A stale socket file from a crash is replaced.
migd_start "$T_TMP/migd.conf"
kill -KILL "$MIGD_PID"
wait "$MIGD_PID" 2>/dev/null || true
MIGD_PID=
[[ -S $T_SOCK ]] || fail "expected a stale socket after SIGKILL"
migd_start "$T_TMP/migd.conf"
ok "restart after kill -9 replaces the stale socket"
migd_stop 0

# Detached start: the parent exits 0 once the child serves, or with its error.
if [[ -z ${MIGD_WRAPPER:-} ]]; then
	# The detached daemon keeps stderr, so it must not be our capture pipe.
	rc=0
	"$MIGD_BIN" -c "$T_TMP/migd.conf" 2>>"$T_TMP/migd.log" || rc=$?
	assert_eq "$rc" 0 "detached start exit code"
	expect_rc 0 mctl ping
	pid=$(mctl --json ping | jfield .pid)
	kill -TERM "$pid"
	wait_for 10 '! kill -0 '"$pid"' 2>/dev/null' || fail "detached migd did not stop"
	t_config "$T_TMP/nodir.conf"
	sed -i "s|^socket = .*|socket = $T_TMP/no/such/dir/migd.sock|" "$T_TMP/nodir.conf"
	rc=0
	"$MIGD_BIN" -c "$T_TMP/nodir.conf" 2>>"$T_TMP/migd.log" || rc=$?
	assert_eq "$rc" 73 "detached start with an impossible socket path"
	assert_contains "$(tail -n 3 "$T_TMP/migd.log")" "cannot bind control socket" "detached error logged"
	ok "detached start reports the child's outcome (0 serving, 73 socket failure)"
fi
