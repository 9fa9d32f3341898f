#!/usr/bin/env bash
# Control socket under bad input: every case gets a clear error reply or a
# clean close, and the daemon keeps answering.  Permissions: socket mode
# 0660, and a uid outside root/daemon/[control] group cannot mutate.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"

RAW=$TOOLS/ctlraw
T_IDLE_TIMEOUT=1s T_MAX_CLIENTS=4 t_config "$T_TMP/migd.conf"
migd_start "$T_TMP/migd.conf"

alive() { mctl ping >/dev/null || fail "daemon stopped answering after: $1"; }

# send BYTES -> first reply line's error code
err_code() { printf '%b' "$1" | "$RAW" -w 3000 "$T_SOCK" | head -n 1 | jfield .error.code; }

assert_eq "$(err_code '{"cmd":\n')" bad_json "truncated JSON"
assert_eq "$(err_code 'not json at all\n')" bad_json "garbage"
assert_eq "$(err_code '[1,2,3]\n')" bad_request "array request"
assert_eq "$(err_code '{"command":"status"}\n')" bad_request "missing cmd"
assert_eq "$(err_code '{"cmd":"status","args":"x"}\n')" bad_request "args not an array"
assert_eq "$(err_code '{"cmd":"no_such_thing"}\n')" unknown_command "unknown command"
assert_eq "$(err_code '{"cmd":"st\\x00atus"}\n')" bad_json "NUL byte"
assert_eq "$(err_code '\xff\xfe{"cmd":"ping"}\n')" bad_json "invalid UTF-8"
alive "malformed requests"
ok "malformed JSON, wrong shapes, NUL and bad UTF-8 get error replies"

# Several requests in one write: answered in order, one line each.
out=$(printf '{"cmd":"ping"}\n\n{"cmd":"nope"}\r\n{"cmd":"status"}\n' | "$RAW" "$T_SOCK")
assert_eq "$(sed -n 1p <<<"$out" | jfield .pong)" true "pipelined 1"
assert_eq "$(sed -n 2p <<<"$out" | jfield .error.code)" unknown_command "pipelined 2"
assert_eq "$(sed -n 3p <<<"$out" | jfield .phase)" init "pipelined 3"
ok "pipelined requests (blank lines and CRLF tolerated) are answered in order"

# Oversized line: too_large, then the connection is closed.
out=$(head -c 70000 /dev/zero | tr '\0' 'a' | "$RAW" -k -w 3000 "$T_SOCK")
assert_eq "$(head -n 1 <<<"$out" | jfield .error.code)" too_large "oversized line"
assert_contains "$out" "[closed" "oversized line closes the connection"
alive "oversized line"
ok "a line over 64 KiB gets too_large and the connection is closed"

# A client that vanishes mid-request.
printf '{"cmd":"sta' | "$RAW" -w 200 "$T_SOCK" >/dev/null
alive "vanished client"
ok "a client that disconnects mid-request does not disturb the daemon"

# A slow client is cut off after idle_timeout (1 s here).
start=$SECONDS
out=$(printf '' | "$RAW" -k -w 5000 "$T_SOCK")
assert_contains "$out" "[closed]" "idle client closed"
((SECONDS - start <= 4)) || fail "idle client was held for $((SECONDS - start)) s"
alive "slow client"
ok "an idle client is disconnected after idle_timeout"

# More than max_clients (4): the extra one gets busy, the others still work.
pids=()
for i in 1 2 3 4; do
	printf '' | "$RAW" -k -w 3000 "$T_SOCK" >/dev/null &
	pids+=($!)
done
sleep 0.3
out=$(printf '{"cmd":"ping"}\n' | "$RAW" -w 2000 "$T_SOCK")
assert_eq "$(head -n 1 <<<"$out" | jfield .error.code)" busy "fifth client"
wait "${pids[@]}"
wait_for 5 'mctl ping >/dev/null 2>&1' || fail "daemon did not recover after busy"
ok "beyond max_clients a client gets busy; the daemon recovers"
migd_stop 0

# Permissions.  nobody can connect (the socket's group is nobody's group) but
# is neither root, the daemon's uid, nor in [control] group: read-only.
nobody_group=$(id -gn nobody)
t_config "$T_TMP/perm.conf" "[control]" "socket_group = $nobody_group"
migd_start "$T_TMP/perm.conf"
mode=$(stat -c '%a %G' "$T_SOCK")
assert_eq "$mode" "660 $nobody_group" "socket mode and group"
as_nobody() { runuser -u nobody -- "$MIGCTL_BIN" -s "$T_SOCK" "$@"; }
expect_rc 0 as_nobody status
expect_rc 1 as_nobody reload
assert_contains "$OUT" "permission_denied" "nobody reload"
assert_contains "$OUT" "uid $(id -u nobody) may only read" "permission message names the uid"
expect_rc 0 mctl reload
ok "socket is 0660; a non-permitted uid may read but is refused mutating commands"

# Putting nobody's group in [control] group (reloadable) lets it mutate.
printf '[control]\ngroup = %s\n' "$nobody_group" >>"$T_TMP/perm.conf"
expect_rc 0 mctl reload
expect_rc 0 as_nobody reload
ok "members of [control] group may mutate"

# A uid outside the socket's group cannot connect at all.
chgrp root "$T_SOCK"
expect_rc 3 as_nobody status
assert_contains "$OUT" "permission denied" "connect refused by file mode"
ok "a uid outside the socket's group cannot connect (clear message, exit 3)"
migd_stop 0
