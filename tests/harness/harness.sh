# shellcheck shell=bash
# tests/harness/harness.sh -- throwaway PostgreSQL 15 and MariaDB 10.11 servers
# for migd integration tests.  Source it from a bash test (set -euo pipefail is
# fine); every server lives under $HARNESS_ROOT on a free 127.0.0.1 port and is
# torn down by an EXIT/INT/TERM trap, also when the test fails.
#
#   . "$MIGD_SRCDIR/tests/harness/harness.sh"
#   harness_pair postgresql mariadb          # exports SRC_* and TGT_*
#   harness_sql SRC "CREATE TABLE t (id int PRIMARY KEY)"
#   migd ... "$SRC_DSN" "$TGT_DSN"
#
# API (details in tests/harness/README.md):
#   harness_init                        temp root, trap, watchdog (implicit)
#   harness_on_exit CMD...              extra cleanup, run LIFO before servers stop
#   harness_free_port                   print a free 127.0.0.1 TCP port
#   harness_start_pg NAME [conf...]     PostgreSQL 15; conf = postgresql.conf lines
#   harness_start_mariadb NAME [cnf...] MariaDB; cnf = [mysqld] lines
#   harness_pair SRC_ENGINE TGT_ENGINE  start SRC and TGT (postgresql|mariadb)
#   harness_stop NAME                   clean shutdown
#   harness_kill NAME                   SIGKILL the server (crash), keep data
#   harness_restart NAME [--crash]      stop (or kill) and start again, same port
#   harness_is_running NAME
#   harness_sql NAME SQL|-              superuser query, tab-separated, no header
#   harness_sql_db NAME DB SQL|-
#   harness_cleanup                     what the traps run; safe to call twice
#
# Each started server exports NAME_ENGINE NAME_HOST NAME_PORT NAME_DATADIR
# NAME_LOG NAME_DSN (libpq key=value, also for MariaDB) and, for MariaDB,
# NAME_SOCKET.  Environment: HARNESS_KEEP=1 keeps $HARNESS_ROOT after the
# servers are stopped; HARNESS_TIMEOUT (60) bounds every wait;
# HARNESS_WATCHDOG=0 disables the watchdog that tears the servers down should
# the test shell die by SIGKILL.  As root the servers run as HARNESS_DB_USER
# (nobody) through runuser.  harness_init installs EXIT, INT and TERM traps
# that run harness_cleanup and then the traps that were there before.
#
# State lives in files, $HARNESS_ROOT/NAME/{engine,port,pid,wrapper,env,...},
# so cleanup also finds servers created by the parallel half of harness_pair.

HARNESS_PG_BIN=${HARNESS_PG_BIN:-/usr/lib/postgresql/15/bin}
HARNESS_MARIADBD=${HARNESS_MARIADBD:-/usr/sbin/mariadbd}
HARNESS_TIMEOUT=${HARNESS_TIMEOUT:-60}

# ---------------------------------------------------------------- helpers

_harness_log() { printf 'harness: %s\n' "$*" >&2; }

_harness_alive() {      # PID: the process exists and is not a zombie
    local stat
    [[ ${1:-} =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != [ZX] ]]
}

_harness_wait_gone() {  # TIMEOUT PID...: wait until every PID has exited
    local deadline=$((SECONDS + $1)) pid
    shift
    for pid in "$@"; do
        while _harness_alive "$pid"; do
            if (( SECONDS >= deadline )); then return 1; fi
            sleep 0.05
        done
    done
}

_harness_kill_tree() {  # PID: SIGKILL a server and its children, wait for them
    local pid=$1 kids
    _harness_alive "$pid" || return 0
    kill -STOP "$pid" 2>/dev/null || true   # freeze it: no new children
    kids=$(ps -o pid= --ppid "$pid" 2>/dev/null) || true
    # shellcheck disable=SC2086
    kill -KILL "$pid" $kids 2>/dev/null || true
    # shellcheck disable=SC2086
    _harness_wait_gone "$HARNESS_TIMEOUT" "$pid" $kids
}

# runuser stops itself when its child is stopped and reaps the child only
# when continued: wake it and wait for it, so that no zombie is left behind.
_harness_reap() {       # NAME: after the server died, let its runuser exit
    local d w
    d=$(_harness_dir "$1")
    w=$(cat "$d/wrapper" 2>/dev/null) || return 0
    rm -f "$d/pid" "$d/wrapper"
    if _harness_alive "$w"; then
        kill -CONT "$w" 2>/dev/null || true
        _harness_wait_gone 10 "$w" || true
    fi
}

_harness_own() {        # PATH...: hand files to the server user when root
    if (( EUID == 0 )); then chown -R "$HARNESS_DB_USER:" "$@"; fi
}

_harness_dir() { printf '%s/%s' "$HARNESS_ROOT" "$1"; }

_harness_known() {      # NAME: a server of that name was created
    if [[ -n ${1:-} && -f ${HARNESS_ROOT:-/nonexistent}/$1/engine ]]; then
        return 0
    fi
    _harness_log "no server named '${1:-}'"
    return 1
}

_harness_engine() { cat "$HARNESS_ROOT/$1/engine"; }

_harness_pid() {        # NAME: print the server pid if it is running
    local pid
    pid=$(cat "$HARNESS_ROOT/$1/pid" 2>/dev/null) || return 1
    _harness_alive "$pid" || return 1
    printf '%s\n' "$pid"
}

_harness_export() {     # NAME KEY VALUE: export NAME_KEY, remember it in env
    export "$1_$2=$3"
    printf 'export %s_%s=%q\n' "$1" "$2" "$3" >>"$HARNESS_ROOT/$1/env"
}

# ------------------------------------------------------- init and cleanup

harness_init() {
    if [[ ${_HARNESS_OWNER:-} == "$$" ]]; then return 0; fi
    if [[ $BASHPID != "$$" ]]; then
        _harness_log "harness_init must run in the test's main shell"
        return 1
    fi
    if (( EUID == 0 )); then
        HARNESS_DB_USER=${HARNESS_DB_USER:-nobody}
        _HARNESS_AS=(runuser -u "$HARNESS_DB_USER" --)
    else
        HARNESS_DB_USER=$(id -un)
        _HARNESS_AS=()
    fi
    HARNESS_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/migd-harness.XXXXXX") || return 1
    chmod 755 "$HARNESS_ROOT"
    if ! ( cd / && "${_HARNESS_AS[@]}" test -x "$HARNESS_ROOT" ); then
        _harness_log "$HARNESS_DB_USER cannot reach $HARNESS_ROOT: point TMPDIR elsewhere"
        rm -rf "$HARNESS_ROOT"
        return 1
    fi
    export HARNESS_ROOT HARNESS_DB_USER
    _HARNESS_OWNER=$$
    _HARNESS_EXIT_CMDS=()
    _HARNESS_BG_PIDS=()
    _harness_install_traps
    _harness_start_watchdog
}

harness_on_exit() {     # CMD...: eval'd at cleanup, last registered first
    harness_init || return 1
    _HARNESS_EXIT_CMDS+=("$*")
}

# Traps: ours run harness_cleanup first and then whatever EXIT/INT/TERM trap
# was installed before harness_init (tests/lib.sh has one); harness_cleanup
# puts those previous traps back.
_harness_trap_of() {    # SIG: print the command currently trapped for SIG
    local t
    t=$(trap -p "$1")
    if [[ -z $t ]]; then return 0; fi
    eval "set ${t#trap}"
    if [[ $1 != _harness_trap* ]]; then printf '%s' "$1"; fi
}

_harness_install_traps() {
    declare -gA _HARNESS_PREV_TRAP
    local sig
    for sig in EXIT INT TERM; do
        _HARNESS_PREV_TRAP[$sig]=$(_harness_trap_of "$sig")
    done
    _HARNESS_SAVED_TRAPS=$(trap -p EXIT INT TERM PIPE)
    trap '_harness_trap_exit' EXIT
    trap '_harness_trap_signal INT' INT
    trap '_harness_trap_signal TERM' TERM
}

_harness_restore_traps() {
    trap - EXIT INT TERM PIPE
    eval "${_HARNESS_SAVED_TRAPS:-}"
}

_harness_status() { return "$1"; }

_harness_trap_exit() {
    local rc=$? prev=${_HARNESS_PREV_TRAP[EXIT]:-}
    set +e                          # we are exiting: errexit must not cut it short
    harness_cleanup
    _harness_status "$rc"
    eval "$prev"
    exit "$rc"
}

_harness_trap_signal() { # SIG: clean up, then die of SIG as the caller expects
    local prev=${_HARNESS_PREV_TRAP[$1]:-} prev_exit=${_HARNESS_PREV_TRAP[EXIT]:-}
    set +e
    trap - EXIT
    harness_cleanup                 # restores the previous traps
    if [[ -n $prev ]]; then eval "$prev"; return; fi
    _harness_status $((128 + $(kill -l "$1")))
    eval "$prev_exit"
    trap - EXIT "$1"
    kill -s "$1" "$$"
}

# Polls (without child processes) until the test shell is gone, then tears
# down what it left behind.  Normal cleanup kills it first.
_harness_start_watchdog() {
    _HARNESS_WATCHDOG=
    if [[ ${HARNESS_WATCHDOG:-1} != 1 ]]; then return 0; fi
    mkfifo "$HARNESS_ROOT/.watchdog" || return 1
    (
        trap '' HUP INT TERM PIPE       # outlive a signal to the process group
        exec {fd}<>"$HARNESS_ROOT/.watchdog"
        while _harness_alive "$$" && [[ -d $HARNESS_ROOT ]]; do
            read -r -t 1 -u "$fd" || true
        done
        _harness_teardown
    ) </dev/null >/dev/null 2>&1 &
    _HARNESS_WATCHDOG=$!
    disown "$_HARNESS_WATCHDOG"
}

harness_cleanup() {
    local - i
    set +eu
    if [[ ${_HARNESS_OWNER:-} != "$$" || $BASHPID != "$$" ]]; then return 0; fi
    unset _HARNESS_OWNER
    trap '' INT TERM PIPE               # finish even if stdout/stderr are gone
    for (( i = ${#_HARNESS_EXIT_CMDS[@]} - 1; i >= 0; i-- )); do
        eval "${_HARNESS_EXIT_CMDS[i]}" ||
            _harness_log "on_exit command failed: ${_HARNESS_EXIT_CMDS[i]}"
    done
    _HARNESS_EXIT_CMDS=()
    if (( ${#_HARNESS_BG_PIDS[@]} )); then wait "${_HARNESS_BG_PIDS[@]}" 2>/dev/null; fi
    if [[ -n $_HARNESS_WATCHDOG ]]; then
        kill -KILL "$_HARNESS_WATCHDOG" 2>/dev/null
        _harness_wait_gone 5 "$_HARNESS_WATCHDOG"
    fi
    _harness_teardown
    _harness_restore_traps
}

_harness_teardown() {   # stop every server under $HARNESS_ROOT, remove it
    local d
    [[ -d ${HARNESS_ROOT:-} ]] || return 0
    for d in "$HARNESS_ROOT"/*/; do
        if [[ -f $d/engine ]]; then _harness_halt "$(basename "$d")"; fi
    done
    if [[ ${HARNESS_KEEP:-0} == 1 ]]; then
        _harness_log "HARNESS_KEEP=1: servers stopped, files kept in $HARNESS_ROOT"
        for d in "$HARNESS_ROOT"/*/; do
            if [[ -f $d/engine ]]; then _harness_log "  ${d}server.log"; fi
        done
    else
        rm -rf "$HARNESS_ROOT"
    fi
}

_harness_halt() {       # NAME: fastest stop (PostgreSQL immediate, MariaDB kill)
    local pid
    if ! pid=$(_harness_pid "$1"); then _harness_reap "$1"; return 0; fi
    if [[ $(_harness_engine "$1") == postgresql ]]; then
        kill -QUIT "$pid" 2>/dev/null     # what pg_ctl stop -m immediate sends
        _harness_wait_gone 20 "$pid" || _harness_kill_tree "$pid"
    else
        _harness_kill_tree "$pid"
    fi
    _harness_reap "$1"
}

# ------------------------------------------------------------------ ports

# Ports come from 20000-60000 minus the kernel's ephemeral range (where
# clients' source ports live) as long as that leaves enough of them; a port
# in use by any TCP socket, or handed out before under $HARNESS_ROOT, is skipped.
harness_free_port() {
    local lo=20000 hi=60000 elo ehi port try seen=${HARNESS_ROOT:-/nonexistent}/.ports
    read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || elo=
    if [[ -n $elo ]] && (( elo > lo && elo - lo >= 2000 )); then
        hi=$(( elo - 1 < hi ? elo - 1 : hi ))
    elif [[ -n $elo ]] && (( ehi < hi && hi - ehi >= 2000 )); then
        lo=$(( ehi + 1 > lo ? ehi + 1 : lo ))
    fi
    for (( try = 0; try < 500; try++ )); do
        port=$(( lo + ${SRANDOM:-$((RANDOM * 32768 + RANDOM))} % (hi - lo + 1) ))
        if grep -qxF "$port" "$seen" 2>/dev/null; then continue; fi
        if [[ -n $(ss -Htan "sport = :$port" 2>/dev/null) ]]; then continue; fi
        if [[ -d ${HARNESS_ROOT:-} ]]; then echo "$port" >>"$seen"; fi
        echo "$port"
        return 0
    done
    _harness_log "no free port found"
    return 1
}

# --------------------------------------------------------- server creation

_harness_create() {     # ENGINE NAME [config lines...]: dirs, initdb/install
    local engine=$1 name=$2 d line
    shift 2
    if [[ ! $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        _harness_log "bad server name '$name' (want an identifier like SRC)"
        return 1
    fi
    d=$(_harness_dir "$name")
    if ! mkdir "$d" "$d/tmp" 2>/dev/null; then
        _harness_log "$name: already started (or cannot create $d)"
        return 1
    fi
    echo "$engine" >"$d/engine"
    local dirs=("$HARNESS_ROOT"/*/)
    echo "${#dirs[@]}" >"$d/seq"
    : >"$d/extra.conf"
    for line in "$@"; do printf '%s\n' "$line" >>"$d/extra.conf"; done
    _harness_own "$d"
    case $engine in
    postgresql) _harness_pg_create "$name" ;;
    mariadb) _harness_maria_create "$name" ;;
    *) _harness_log "unknown engine '$engine'"; return 1 ;;
    esac
}

_harness_run_as() {     # NAME LOGFILE CMD...: run CMD as the server user in NAME's dir
    local d log=$2
    d=$(_harness_dir "$1")
    shift 2
    if ( cd "$d" && exec "${_HARNESS_AS[@]}" "$@" ) </dev/null >"$log" 2>&1; then
        return 0
    fi
    _harness_log "$(basename "$1") failed, tail of $log:"
    tail -n 20 "$log" >&2
    return 1
}

_harness_pg_create() {
    local d
    d=$(_harness_dir "$1")
    _harness_run_as "$1" "$d/initdb.log" "$HARNESS_PG_BIN/initdb" -D "$d/data" \
        -A trust -U postgres --encoding=UTF8 --locale=C --no-sync || return 1
    cat >"$d/data/pg_hba.conf" <<-EOF
	local all         all              trust
	host  all         all 127.0.0.1/32 trust
	local replication all              trust
	host  replication all 127.0.0.1/32 trust
	EOF
    echo "include 'harness.conf'" >>"$d/data/postgresql.conf"
}

_harness_maria_create() {
    local d
    d=$(_harness_dir "$1")
    echo 0 >"$d/port"
    _harness_maria_config "$1" || return 1
    _harness_run_as "$1" "$d/install.log" mariadb-install-db \
        --defaults-file="$d/my.cnf" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve
}

_harness_write_config() { # NAME: (re)write the config for the recorded port
    case $(_harness_engine "$1") in
    postgresql) _harness_pg_config "$1" ;;
    mariadb) _harness_maria_config "$1" ;;
    esac
}

_harness_pg_config() {
    local d
    d=$(_harness_dir "$1")
    {
        echo "# written by tests/harness/harness.sh"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $(cat "$d/port")"
        echo "unix_socket_directories = '$d'"
        echo "wal_level = logical"
        echo "max_replication_slots = 10"
        echo "max_wal_senders = 10"
        echo "shared_buffers = 128MB"
        echo "fsync = on"
        echo "logging_collector = off"
        cat "$d/extra.conf"
    } >"$d/data/harness.conf"
    _harness_own "$d/data/harness.conf"
}

_harness_maria_config() {
    local d port
    d=$(_harness_dir "$1")
    port=$(cat "$d/port")
    {
        echo "# written by tests/harness/harness.sh"
        echo "[mysqld]"
        echo "datadir = $d/data"
        echo "tmpdir = $d/tmp"
        echo "socket = $d/mysqld.sock"
        echo "pid-file = $d/mariadbd.pid"
        echo "log-error = $d/server.log"
        echo "bind-address = 127.0.0.1"
        echo "port = $port"
        echo "skip-name-resolve"
        echo "server_id = $(( port * 100 + $(cat "$d/seq") % 100 ))"
        echo "log_bin = $d/data/mariadb-bin"
        echo "binlog_format = ROW"
        echo "binlog_row_image = FULL"
        echo "binlog_row_metadata = FULL"
        echo "character-set-server = utf8mb4"
        echo "collation-server = utf8mb4_general_ci"
        echo "innodb_buffer_pool_size = 256M"
        echo "innodb_log_file_size = 64M"
        cat "$d/extra.conf"
    } >"$d/my.cnf"
    _harness_own "$d/my.cnf"
}

# ------------------------------------------------------ start and readiness

_harness_spawn() {      # NAME CMD...: start the server as a child, record its pid
    local d w pid
    d=$(_harness_dir "$1")
    shift
    ( cd "$d" && exec "${_HARNESS_AS[@]}" "$@" ) </dev/null >>"$d/server.log" 2>&1 &
    w=$!
    disown "$w"
    pid=$w
    if (( ${#_HARNESS_AS[@]} )); then       # runuser forks: want its child
        pid=
        while [[ -z $pid ]] && _harness_alive "$w"; do
            pid=$(ps -o pid= --ppid "$w" 2>/dev/null) || sleep 0.01
        done
        pid=${pid//[[:space:]]/}
    fi
    echo "$w" >"$d/wrapper"
    echo "$pid" >"$d/pid"
}

_harness_ping() {
    local d port
    d=$(_harness_dir "$1")
    port=$(cat "$d/port")
    if [[ $(_harness_engine "$1") == postgresql ]]; then
        "$HARNESS_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2
    else
        mariadb-admin --no-defaults -uroot -S "$d/mysqld.sock" --connect-timeout=2 \
            ping >/dev/null 2>&1
    fi
}

# NAME: start on the recorded port, wait until it answers.  Returns 2 (quietly)
# if the port was taken, 1 on other failures (after showing the server log).
_harness_launch() {
    local name=$1 d pid logpos deadline=$((SECONDS + HARNESS_TIMEOUT))
    d=$(_harness_dir "$name")
    logpos=$(( $(stat -c %s "$d/server.log" 2>/dev/null || echo 0) + 1 ))
    if [[ $(_harness_engine "$name") == postgresql ]]; then
        _harness_spawn "$name" "$HARNESS_PG_BIN/postgres" -D "$d/data"
    else
        _harness_spawn "$name" "$HARNESS_MARIADBD" --defaults-file="$d/my.cnf"
    fi
    pid=$(cat "$d/pid")
    until _harness_ping "$name"; do
        if ! _harness_alive "$pid" || (( SECONDS >= deadline )); then
            if tail -c "+$logpos" "$d/server.log" | grep -q 'Address already in use'; then
                return 2
            fi
            _harness_log "$name did not come up on port $(cat "$d/port"), from $d/server.log:"
            tail -c "+$logpos" "$d/server.log" | tail -n 25 >&2
            return 1
        fi
        sleep 0.1
    done
}

_harness_first_launch() { # NAME: pick a port and start; retry if it got taken
    local name=$1 d try
    d=$(_harness_dir "$name")
    for try in 1 2 3 4 5; do
        harness_free_port >"$d/port" || return 1
        _harness_write_config "$name" || return 1
        _harness_launch "$name" && return 0
        if [[ $? != 2 ]]; then _harness_halt "$name"; return 1; fi
        _harness_halt "$name"
        _harness_log "$name: port $(cat "$d/port") was taken, trying another (#$try)"
    done
    return 1
}

_harness_maria_setup() { # NAME: the migd account and database test, not binlogged
    local u
    harness_sql_db "$1" mysql "SET sql_log_bin = 0;
        $(for u in "'migd'@'%'" "'migd'@'127.0.0.1'" "'migd'@'localhost'"; do
            echo "CREATE USER $u IDENTIFIED BY 'migd';"
            echo "GRANT ALL PRIVILEGES ON *.* TO $u WITH GRANT OPTION;"
        done)
        CREATE DATABASE IF NOT EXISTS test;"
}

_harness_exports() {    # NAME: export NAME_* into this shell
    local name=$1 d port
    d=$(_harness_dir "$name")
    port=$(cat "$d/port")
    : >"$d/env"
    _harness_export "$name" ENGINE "$(_harness_engine "$name")"
    _harness_export "$name" HOST 127.0.0.1
    _harness_export "$name" PORT "$port"
    _harness_export "$name" DATADIR "$d/data"
    _harness_export "$name" LOG "$d/server.log"
    if [[ $(_harness_engine "$name") == postgresql ]]; then
        _harness_export "$name" DSN "host=127.0.0.1 port=$port user=postgres dbname=postgres"
    else
        _harness_export "$name" SOCKET "$d/mysqld.sock"
        _harness_export "$name" DSN "host=127.0.0.1 port=$port user=migd password=migd dbname=test"
    fi
}

_harness_finish_start() { # NAME: launch a created server, set it up, export
    local name=$1
    _harness_first_launch "$name" || return 1
    if [[ $(_harness_engine "$name") == mariadb ]]; then
        _harness_maria_setup "$name" || return 1
    fi
    _harness_exports "$name"
    _harness_log "$name: $(_harness_engine "$name") ready on 127.0.0.1:$(cat "$(_harness_dir "$name")/port")"
}

# ------------------------------------------------------------ public API

harness_start_pg() {    # NAME [postgresql.conf lines...]
    harness_init || return 1
    _harness_create postgresql "$@" || return 1
    _harness_finish_start "$1"
}

harness_start_mariadb() { # NAME [my.cnf [mysqld] lines...]
    harness_init || return 1
    _harness_create mariadb "$@" || return 1
    _harness_finish_start "$1"
}

# Creates both data directories in parallel (the slow part), then starts the
# servers from this shell so that they stay its children.
harness_pair() {        # SRC_ENGINE TGT_ENGINE
    local engine rc=0 pid
    for engine in "${1:-}" "${2:-}"; do
        case $engine in postgresql | mariadb) ;; *)
            _harness_log "harness_pair: engine must be postgresql or mariadb, got '$engine'"
            return 1 ;;
        esac
    done
    harness_init || return 1
    _harness_create "$1" SRC & _HARNESS_BG_PIDS+=("$!")
    _harness_create "$2" TGT & _HARNESS_BG_PIDS+=("$!")
    for pid in "${_HARNESS_BG_PIDS[@]}"; do wait "$pid" || rc=1; done
    _HARNESS_BG_PIDS=()
    if (( rc )); then return 1; fi
    _harness_finish_start SRC && _harness_finish_start TGT
}

harness_is_running() {  # NAME
    _harness_pid "${1:-}" >/dev/null
}

harness_stop() {        # NAME: clean shutdown (PostgreSQL fast, MariaDB TERM)
    local pid sig=TERM
    _harness_known "${1:-}" || return 1
    pid=$(_harness_pid "$1") || return 0
    if [[ $(_harness_engine "$1") == postgresql ]]; then sig=INT; fi
    kill -s "$sig" "$pid" 2>/dev/null || true
    if ! _harness_wait_gone "$HARNESS_TIMEOUT" "$pid"; then
        _harness_log "$1: no clean shutdown within ${HARNESS_TIMEOUT}s, killing it"
        _harness_kill_tree "$pid"
    fi
    _harness_reap "$1"
}

harness_kill() {        # NAME: SIGKILL the server (and its children); data stays
    local pid
    _harness_known "${1:-}" || return 1
    pid=$(_harness_pid "$1") || return 0
    _harness_kill_tree "$pid" || return 1
    _harness_reap "$1"
}

harness_restart() {     # NAME [--crash]
    _harness_known "${1:-}" || return 1
    case ${2:-} in
    --crash) harness_kill "$1" || return 1 ;;
    '') harness_stop "$1" || return 1 ;;
    *) _harness_log "harness_restart: unknown option '$2'"; return 1 ;;
    esac
    _harness_launch "$1" && return 0
    if [[ $? == 2 ]]; then _harness_log "$1: port $(cat "$(_harness_dir "$1")/port") is taken"; fi
    return 1
}

harness_sql() {         # NAME SQL|- : in the DSN's database (postgres / test)
    local db=postgres
    _harness_known "${1:-}" || return 1
    if [[ $(_harness_engine "$1") == mariadb ]]; then db='test'; fi
    harness_sql_db "$1" "$db" "${2:--}"
}

harness_sql_db() {      # NAME DB SQL|- : "-" reads the SQL from stdin
    local d sql=${3:--}
    _harness_known "${1:-}" || return 1
    d=$(_harness_dir "$1")
    if [[ $(_harness_engine "$1") == postgresql ]]; then
        local src=(-c "$sql")
        if [[ $sql == - ]]; then src=(-f -); fi
        "$HARNESS_PG_BIN/psql" -XAtq -F $'\t' -v ON_ERROR_STOP=1 -h 127.0.0.1 \
            -p "$(cat "$d/port")" -U postgres -d "$2" "${src[@]}"
    else
        local src=(-e "$sql")
        if [[ $sql == - ]]; then src=(); fi
        mariadb --no-defaults -N -B --default-character-set=utf8mb4 -uroot \
            -S "$d/mysqld.sock" -D "$2" "${src[@]}"
    fi
}
