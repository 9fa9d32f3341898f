#!/bin/bash
# Checks tests/harness/harness.sh against real PostgreSQL 15 and MariaDB 10.11
# servers: configuration, connections, crash restarts and teardown (on
# SIGTERM, on failure, on SIGKILL via the watchdog, and with HARNESS_KEEP=1).
# Run from the project root: bash tests/integration/test_harness.sh
set -euo pipefail

SRCDIR=${MIGD_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
HARNESS=$SRCDIR/tests/harness/harness.sh
# shellcheck source=../harness/harness.sh
. "$HARNESS"
for bin in "$HARNESS_PG_BIN/initdb" "$HARNESS_MARIADBD" /usr/bin/mariadb-install-db; do
    [[ -x $bin ]] || { echo "SKIP: $bin not installed"; exit 77; }
done

n=0
ok() { n=$((n + 1)); printf 'ok %d - %s\n' "$n" "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
expect() {  # DESC EXPECTED ACTUAL
    [[ $3 == "$2" ]] || fail "$1: expected '$2', got '$3'"
    ok "$1"
}
listening() { [[ -n $(ss -Htln "sport = :$1") ]]; }
dsn_get() {  # DSN KEY: value of KEY in a libpq key=value string
    local kv
    for kv in $1; do
        if [[ ${kv%%=*} == "$2" ]]; then printf '%s\n' "${kv#*=}"; return 0; fi
    done
    return 1
}
psql_() { "$HARNESS_PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 "$@"; }
start=$SECONDS

# ------------------------------------------------------------ pair
harness_pair postgresql mariadb
expect "SRC is postgresql" postgresql "$SRC_ENGINE"
expect "TGT is mariadb" mariadb "$TGT_ENGINE"
expect "SRC_DSN format" "host=127.0.0.1 port=$SRC_PORT user=postgres dbname=postgres" "$SRC_DSN"
expect "TGT_DSN format" "host=127.0.0.1 port=$TGT_PORT user=migd password=migd dbname=test" "$TGT_DSN"
if [[ $SRC_PORT == "$TGT_PORT" ]] || ! listening "$SRC_PORT" || ! listening "$TGT_PORT"; then
    fail "servers not listening on distinct ports"
fi
ok "both listen on distinct ports ($SRC_PORT, $TGT_PORT)"
[[ -d $SRC_DATADIR && -f $SRC_LOG && -d $TGT_DATADIR && -S $TGT_SOCKET ]] ||
    fail "exported paths do not exist"
ok "exported DATADIR, LOG and SOCKET exist"

# ------------------------------------------------------------ PostgreSQL
expect "PG wal_level" logical "$(harness_sql SRC 'SHOW wal_level')"
expect "PG max_replication_slots" 10 "$(harness_sql SRC 'SHOW max_replication_slots')"
expect "PG encoding and locale" $'UTF8\tC' \
    "$(harness_sql SRC "SELECT pg_encoding_to_char(encoding), datcollate FROM pg_database WHERE datname = 'postgres'")"
expect "PG connection via the DSN" postgres "$(psql_ "$SRC_DSN" -c 'SELECT current_user')"
sysid=$(psql_ "$SRC_DSN replication=database" -c IDENTIFY_SYSTEM)
[[ $sysid =~ ^[0-9]+\|1\|[0-9A-F]+/[0-9A-F]+\|postgres$ ]] || fail "IDENTIFY_SYSTEM: '$sysid'"
ok "PG logical replication connection (IDENTIFY_SYSTEM: $sysid)"
psql_ "$SRC_DSN replication=true" -c IDENTIFY_SYSTEM >/dev/null
ok "PG physical replication connection"
[[ $(stat -c %U "$SRC_DATADIR") == "$HARNESS_DB_USER" ]] || fail "PG datadir owner"
ok "PG runs as $HARNESS_DB_USER"

# ------------------------------------------------------------ MariaDB
expect "MariaDB binlog settings" $'ON\tROW\tFULL\tFULL' "$(harness_sql TGT \
    "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'LOG_BIN'),
            @@binlog_format, @@binlog_row_image, @@binlog_row_metadata")"
expect "MariaDB charset" $'utf8mb4\tutf8mb4_general_ci' \
    "$(harness_sql TGT 'SELECT @@character_set_server, @@collation_server')"
expect "MariaDB database test is utf8mb4" utf8mb4 \
    "$(harness_sql TGT "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'test'")"
maria_dsn() {  # DSN SQL: connect over TCP with exactly the DSN's credentials
    mariadb --no-defaults -N -B -h "$(dsn_get "$1" host)" -P "$(dsn_get "$1" port)" \
        -u "$(dsn_get "$1" user)" -p"$(dsn_get "$1" password)" -D "$(dsn_get "$1" dbname)" -e "$2"
}
expect "migd user over TCP with the DSN" $'migd@127.0.0.1\tTCP/IP' \
    "$(maria_dsn "$TGT_DSN" "SELECT CURRENT_USER(), IF(@@hostname IS NULL, '', 'TCP/IP')")"
grants=$(maria_dsn "$TGT_DSN" "SHOW GRANTS")
# shellcheck disable=SC2016
[[ $grants == *'GRANT ALL PRIVILEGES ON *.* TO `migd`@`127.0.0.1`'*'WITH GRANT OPTION'* ]] ||
    fail "migd lacks ALL PRIVILEGES WITH GRANT OPTION: $grants"
ok "migd has ALL PRIVILEGES WITH GRANT OPTION"
expect "harness setup kept out of the binlog" 0 \
    "$(harness_sql TGT "SHOW BINLOG EVENTS" | grep -c -i 'migd' || true)"

expect "harness_sql reads SQL from stdin (PostgreSQL)" $'1\tα' "$(echo "SELECT 1, 'α'" | harness_sql SRC -)"
expect "harness_sql reads SQL from stdin (MariaDB)" $'1\tα' "$(echo "SELECT 1, 'α'" | harness_sql TGT -)"
ports=$(for _ in $(seq 20); do harness_free_port; done)
[[ $(sort -u <<<"$ports" | wc -l) == 20 ]] || fail "harness_free_port repeated a port: $ports"
for p in $ports; do listening "$p" && fail "harness_free_port gave busy port $p"; done
ok "harness_free_port: 20 distinct free ports"

# ---------------------------------------- two more servers, extra config
harness_start_mariadb M2 'max_connections = 77'
ids=$(harness_sql TGT 'SELECT @@server_id')/$(harness_sql M2 'SELECT @@server_id')
[[ ${ids%/*} != "${ids#*/}" ]] || fail "server_ids not distinct: $ids"
ok "two MariaDB servers have distinct server_ids ($ids)"
expect "MariaDB extra my.cnf line" 77 "$(harness_sql M2 'SELECT @@max_connections')"
harness_start_pg P2 'max_connections = 42'
expect "PG extra postgresql.conf line" 42 "$(harness_sql P2 'SHOW max_connections')"
harness_stop M2
harness_is_running M2 && fail "M2 still running after harness_stop"
listening "$M2_PORT" && fail "M2 port still open after harness_stop"
ok "harness_stop stops MariaDB and frees its port"
harness_restart M2
expect "clean restart of MariaDB" 77 "$(harness_sql M2 'SELECT @@max_connections')"
harness_restart P2
expect "clean restart of PostgreSQL" 42 "$(harness_sql P2 'SHOW max_connections')"

# ------------------------------------------------------------ crashes
harness_sql SRC "CREATE TABLE crash (id int PRIMARY KEY, v text); INSERT INTO crash VALUES (1, 'before crash ✓')"
pid=$(cat "$HARNESS_ROOT/SRC/pid")
harness_restart SRC --crash
harness_is_running SRC || fail "SRC not running after crash restart"
[[ $(cat "$HARNESS_ROOT/SRC/pid") != "$pid" ]] || fail "SRC pid unchanged after crash"
grep -q 'not properly shut down; automatic recovery in progress' "$SRC_LOG" ||
    fail "PG log shows no crash recovery"
expect "PG row committed before the crash survives" $'1\tbefore crash ✓' "$(harness_sql SRC 'SELECT * FROM crash')"

harness_sql TGT "CREATE TABLE crash (id int PRIMARY KEY, v text) ENGINE=InnoDB; INSERT INTO crash VALUES (1, 'before crash ✓')"
harness_kill TGT
harness_is_running TGT && fail "TGT still running after harness_kill"
listening "$TGT_PORT" && fail "TGT port still open after harness_kill"
ok "harness_kill kills MariaDB"
harness_restart TGT --crash
grep -q 'Recovering after a crash' "$TGT_LOG" || fail "MariaDB log shows no crash recovery"
expect "MariaDB row committed before the crash survives" $'1\tbefore crash ✓' \
    "$(maria_dsn "$TGT_DSN" 'SELECT * FROM crash')"
expect "same port after restart" "host=127.0.0.1 port=$TGT_PORT user=migd password=migd dbname=test" "$TGT_DSN"

# ------------------------------------------------------------ teardown
# Runs SCRIPT in a child bash that sources the harness; sets out and rc.
child() {
    rc=0
    out=$(HARNESS="$HARNESS" HARNESS_KEEP=0 bash -c "set -euo pipefail; . \"\$HARNESS\"; $1") || rc=$?
}
assert_gone() {  # DESC: the child's HARNESS_ROOT and ports are gone
    local root port
    root=$(sed -n 's/^root=//p' <<<"$out")
    [[ -n $root ]] || fail "$1: child printed no root: $out"
    [[ ! -e $root ]] || fail "$1: $root still exists"
    for port in $(sed -n 's/^port=//p' <<<"$out"); do
        listening "$port" && fail "$1: port $port still listening"
    done
    pgrep -f "$root/" >/dev/null && fail "$1: processes of $root still running"
    ok "$1: servers gone, $root removed"
}
# shellcheck disable=SC2016
report='echo "root=$HARNESS_ROOT"; for f in "$HARNESS_ROOT"/*/port; do echo "port=$(cat "$f")"; done'

prev_trap="trap 'echo prev-exit-trap rc=\$?' EXIT;"
child "$prev_trap harness_pair mariadb postgresql; $report; kill -TERM \$\$; echo not-reached"
expect "child killed by SIGTERM exits 143" 143 "$rc"
[[ $out != *not-reached* ]] || fail "child continued after SIGTERM"
expect "the EXIT trap set before the harness ran on SIGTERM" "prev-exit-trap rc=143" "$(grep prev-exit <<<"$out")"
assert_gone "teardown on SIGTERM"

child "$prev_trap harness_start_pg X; harness_on_exit 'echo on-exit-1'; harness_on_exit 'echo on-exit-2';
       $report; false; echo not-reached"
expect "failing child keeps its exit status" 1 "$rc"
expect "the EXIT trap set before the harness ran on failure" "prev-exit-trap rc=1" "$(grep prev-exit <<<"$out")"
expect "harness_on_exit runs in reverse order" $'on-exit-2\non-exit-1' "$(grep '^on-exit' <<<"$out")"
assert_gone "teardown on failure"

# The child reports into a file, then blocks in a builtin read on a fifo (no
# child process of its own), and gets SIGKILLed: only the watchdog is left.
info=$(mktemp -u "${TMPDIR:-/tmp}/test_harness.XXXXXX")
mkfifo "$info.fifo"
harness_on_exit "rm -f '$info' '$info.fifo'"
HARNESS="$HARNESS" HARNESS_KEEP=0 bash -c "set -euo pipefail; . \"\$HARNESS\"; harness_start_pg X;
    { $report; } >'$info.tmp'; mv '$info.tmp' '$info'; exec 3<>'$info.fifo'; read -r -u 3" &
killme=$!
harness_on_exit "kill -KILL $killme 2>/dev/null || true"
for _ in $(seq 300); do [[ -f $info ]] && break; sleep 0.1; done
out=$(cat "$info")
kill -KILL "$killme"
wait "$killme" 2>/dev/null || true
root=$(sed -n 's/^root=//p' <<<"$out")
for _ in $(seq 100); do [[ -e $root ]] || break; sleep 0.1; done
assert_gone "teardown by the watchdog after SIGKILL"

child "HARNESS_KEEP=1; harness_start_mariadb X; $report" 2>/dev/null
root=$(sed -n 's/^root=//p' <<<"$out")
[[ $rc == 0 && -f $root/X/my.cnf ]] || fail "HARNESS_KEEP=1 did not keep $root"
listening "$(sed -n 's/^port=//p' <<<"$out")" && fail "HARNESS_KEEP=1 left the server running"
rm -rf "$root"
ok "HARNESS_KEEP=1 keeps the files but stops the server"

# ------------------------------------------------------------ own cleanup
root=$HARNESS_ROOT
ports="$SRC_PORT $TGT_PORT $M2_PORT $P2_PORT"
harness_cleanup
harness_cleanup
[[ ! -e $root ]] || fail "harness_cleanup left $root"
for p in $ports; do listening "$p" && fail "port $p still listening after cleanup"; done
ok "harness_cleanup (twice) stops all four servers and removes $root"
echo "all $n checks passed in $((SECONDS - start))s"
