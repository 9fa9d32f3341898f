#!/usr/bin/env bash
# Metrics endpoint: promtool accepts /metrics, the foundation families are
# there with the right values, /healthz answers, and the listener is bound
# to loopback only.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"

command -v promtool >/dev/null || fail "promtool missing (apt-get install prometheus)"
t_config "$T_TMP/migd.conf"
migd_start "$T_TMP/migd.conf"
port=$(migd_metrics_port)
url=http://127.0.0.1:$port

curl -sf -D "$T_TMP/headers" "$url/metrics" >"$T_TMP/metrics"
assert_contains "$(cat "$T_TMP/headers")" "Content-Type: text/plain; version=0.0.4" "content type"
promtool check metrics <"$T_TMP/metrics" >"$T_TMP/promtool.out" 2>&1 ||
	fail "promtool rejected /metrics: $(cat "$T_TMP/promtool.out")"
[[ ! -s $T_TMP/promtool.out ]] || fail "promtool lint findings: $(cat "$T_TMP/promtool.out")"
ok "promtool check metrics accepts /metrics with no findings"

m=$(cat "$T_TMP/metrics")
version=$("$MIGD_BIN" --version | awk '{print $2}')
assert_contains "$m" "migd_build_info{version=\"$version\"," "build info"
assert_contains "$m" $'\nmigd_up 1\n' "migd_up"
assert_contains "$m" 'migd_phase{phase="init"} 1' "phase gauge"
assert_contains "$m" 'migd_phase{phase="synced"} 0' "other phases 0"
[[ $(grep -c '^migd_phase{' <<<"$m") == 12 ]] || fail "expected 12 migd_phase series"
[[ $(grep '^migd_phase{' <<<"$m" | grep -c ' 1$') == 1 ]] || fail "exactly one phase must be 1"
for p in process_cpu_seconds_total process_resident_memory_bytes process_open_fds \
	process_max_fds process_start_time_seconds process_virtual_memory_bytes; do
	grep -q "^$p " <<<"$m" || fail "missing $p"
done
rss=$(awk '/^process_resident_memory_bytes /{print $2}' <<<"$m")
((${rss%.*} > 100000)) || fail "implausible RSS $rss"
ok "migd_build_info, migd_up, migd_phase (one-hot) and process metrics present"

mctl reload >/dev/null
assert_contains "$(curl -sf "$url/metrics")" 'migd_config_reloads_total{result="ok"} 1' "reload counter"
ok "metrics follow the daemon (reload counter)"

assert_eq "$(curl -sf "$url/healthz")" "ok" "healthz body"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$url/nope")" 404 "unknown path"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/metrics")" 405 "POST"
ok "/healthz 200 ok, unknown path 404, POST 405"

listen=$(ss -Htln "sport = :$port" | awk '{print $4}')
assert_eq "$listen" "127.0.0.1:$port" "metrics listen address"
ok "metrics listener bound to 127.0.0.1 only"

# A port already taken is a clear start-up error (exit 73).
t_config "$T_TMP/clash.conf" "[metrics]" "port = $port"
sed -i '0,/^port = 0$/{/^port = 0$/d}' "$T_TMP/clash.conf"
sed -i "s|^socket = .*|socket = $T_TMP/other.sock|" "$T_TMP/clash.conf"
expect_rc 73 "$MIGD_BIN" --foreground -c "$T_TMP/clash.conf"
assert_contains "$OUT" "Address already in use" "port clash"
[[ ! -e $T_TMP/other.sock ]] || fail "failed start left its socket behind"
ok "a metrics port in use is refused at start with the reason (exit 73)"
migd_stop 0
