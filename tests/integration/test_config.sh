#!/usr/bin/env bash
# Config: the sample is valid and current, bad files are refused with
# file:line: reason and exit 78, secrets never leak.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"

expect_rc 0 "$MIGD_BIN" --check-config -c "$MIGD_SRCDIR/conf/migd.conf"
ok "conf/migd.conf passes --check-config"

"$MIGD_BIN" --print-sample-config >"$T_TMP/sample.conf"
diff -u "$MIGD_SRCDIR/conf/migd.conf" "$T_TMP/sample.conf" ||
	fail "conf/migd.conf is stale: regenerate with migd --print-sample-config"
ok "conf/migd.conf is what migd --print-sample-config prints"

# Each bad file: the exact file:line: reason, exit 78, nothing started.
bad() { # what expected-message lines...
	local what=$1 msg=$2
	shift 2
	t_config "$T_TMP/bad.conf" "$@"
	expect_rc 78 "$MIGD_BIN" --check-config -c "$T_TMP/bad.conf"
	assert_contains "$OUT" "$msg" "$what"
	expect_rc 78 "$MIGD_BIN" --foreground -c "$T_TMP/bad.conf"
	assert_contains "$OUT" "configuration refused" "$what (daemon start)"
	[[ ! -e $T_SOCK ]] || fail "$what: a socket was created by a refused start"
	ok "refused: $what"
}
# t_config writes 18 lines; appended lines start at 19.
bad "unknown key" "$T_TMP/bad.conf:19: unknown key 'colour' in section [log]" "colour = blue"
bad "unknown section" "$T_TMP/bad.conf:19: unknown section [sauce]" "[sauce]" "x = 1"
bad "bad type" "$T_TMP/bad.conf:20: [metrics] enabled = 'sometimes': is not a boolean" \
	"[metrics]" "enabled = sometimes"
bad "bad value" \
	"$T_TMP/bad.conf:20: [daemon] maintenance_interval = '50ms': must be between 100 and 60000 ms" \
	"[daemon]" "maintenance_interval = 50ms"
bad "duplicate key" "$T_TMP/bad.conf:19: duplicate key 'level' in [log] (first set on line 18)" \
	"level = info"
bad "bad column map" \
	"$T_TMP/bad.conf:20: [tables] columns = 'public.orders=cust': must be a comma list of schema.table.column=column" \
	"[tables]" "columns = public.orders=cust"

cat >"$T_TMP/missing.conf" <<EOF
[source]
engine = postgresql
EOF
expect_rc 78 "$MIGD_BIN" --check-config -c "$T_TMP/missing.conf"
assert_contains "$OUT" "missing.conf: missing required key 'dsn' in section [source]" "missing key"
assert_contains "$OUT" "missing required key 'engine' in section [target]" "missing key"
ok "refused: missing required keys, all reported"

expect_rc 78 "$MIGD_BIN" --check-config -c "$T_TMP/does-not-exist.conf"
assert_contains "$OUT" "cannot open: No such file or directory" "missing file"
ok "refused: missing file"

expect_rc 64 "$MIGD_BIN" --bogus-flag
ok "bad command line exits 64"

# Secrets: from the environment and from a file, never in logs, config or metrics.
printf 'host=127.0.0.1 port=1 dbname=tgt application_name=SEKRIT_DSN\n' >"$T_TMP/dsn"
chmod 600 "$T_TMP/dsn"
t_config "$T_TMP/secret.conf"
sed -i "s|^dsn = host=127.0.0.1 port=1 dbname=tgt|dsn = file:$T_TMP/dsn|" "$T_TMP/secret.conf"
printf '[source]\npassword = env:T_SECRET_PW\n' >>"$T_TMP/secret.conf"
# [source] appears twice; inih merges sections, and the key is new.
export T_SECRET_PW=SEKRIT_PW
migd_start "$T_TMP/secret.conf"
cfg=$(mctl config)
assert_contains "$cfg" "password = ********" "masked password"
assert_contains "$cfg" "env:T_SECRET_PW" "secret source shown"
assert_contains "$cfg" "file:$T_TMP/dsn" "secret file shown"
all="$cfg $(mctl --json config) $(curl -sf "http://127.0.0.1:$(migd_metrics_port)/metrics")"
mctl reload >/dev/null
kill -HUP "$MIGD_PID"
sleep 0.3
all="$all $(cat "$T_TMP/migd.log")"
assert_not_contains "$all" "SEKRIT" "secret values"
ok "secrets from env: and file: are used and never shown (config, metrics, logs)"
migd_stop

# A missing secret is a config error that names the variable, not a value.
unset T_SECRET_PW
expect_rc 78 "$MIGD_BIN" --check-config -c "$T_TMP/secret.conf"
assert_contains "$OUT" "[source] password: environment variable T_SECRET_PW is not set" "unset env secret"
ok "refused: secret from an unset environment variable"
