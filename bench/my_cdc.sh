#!/usr/bin/env bash
# bench/my_cdc.sh: MariaDB binlog CDC catch-up, migd (MariaDB -> PostgreSQL)
# side by side with MariaDB's own replication (a replica's SQL thread) applying
# the same backlog.
#
# Setup (not timed): table test.sbtest ($ROWS rows: id int PK, k int, c char(120),
# pad char(60), sysbench's shape) in the source MariaDB; the same rows in a
# replica MariaDB (mariadb-dump, then CHANGE MASTER ... MASTER_USE_GTID =
# slave_pos) and in a PostgreSQL target that migd fills (backfill until synced,
# then stopped with SIGTERM).
#
# Each run builds one backlog while both consumers are stopped: $TXNS
# transactions of 4 row changes each (3 updates of random rows and 1 insert,
# TPC-B's shape), written by a stored procedure on the source, then a marker
# transaction.  The replica's IO thread copies the backlog into its relay log
# before the clock starts (its SQL thread is stopped), so both consumers start
# with the whole backlog readable.  Then, one at a time, alone on the machine:
#   migd      started; done when the applied GTID (committed in the target with
#             the rows) reaches the marker's
#   replica   START SLAVE SQL_THREAD; done when gtid_slave_pos reaches the marker
#             (single-threaded apply: slave_parallel_threads = 0, the default)
# Durability: the replica keeps MariaDB's defaults (innodb_flush_log_at_trx_commit
# = 1, binary log off on the replica); the PostgreSQL target keeps its
# synchronous_commit = on, and migd confirms nothing it has not committed.
# Afterwards both copies are checked against the source (count, sum(k)).
#
# Environment: TXNS (250000 = 1M row changes), ROWS (100000), RUNS (3). A quick
# try: TXNS=20000 RUNS=1.
set -euo pipefail
BENCH_SELF=$0
BENCH_ARGS=("$@")
cd "$(dirname "$0")/.."
ROOT=$PWD
source "$ROOT/bench/lib.sh"
bench_header TXNS ROWS RUNS
TXNS=${TXNS:-250000}
ROWS=${ROWS:-100000}
RUNS=${RUNS:-3}
echo "# TXNS=$TXNS ($((TXNS * 4 + 1)) row changes with the marker) ROWS=$ROWS RUNS=$RUNS"
bench_prepare

source "$ROOT/tests/harness/harness.sh"
harness_start_mariadb SRC 'innodb_flush_log_at_trx_commit = 2' 'sync_binlog = 0'
harness_start_mariadb REP 'skip_slave_start = 1' 'relay_log_space_limit = 0'
harness_start_pg TGT 'autovacuum = off'
W=$HARNESS_ROOT/bench
mkdir -p "$W"
my() { harness_sql_db "$1" test "$2"; }

echo "# mariadb $(my SRC 'SELECT VERSION()')"
echo "# loading $ROWS rows into the source"
my SRC "CREATE TABLE sbtest (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, k int NOT NULL DEFAULT 0,
	c char(120) NOT NULL DEFAULT '', pad char(60) NOT NULL DEFAULT '', KEY k (k));
INSERT INTO sbtest (k, c, pad) SELECT FLOOR(RAND() * $ROWS), MD5(seq), SHA1(seq) FROM seq_1_to_$ROWS"
harness_sql_db SRC test - <<SQL
DELIMITER //
CREATE PROCEDURE backlog(n int)
BEGIN
	DECLARE i, a, b, c int DEFAULT 0;
	WHILE i < n DO
		-- RAND() inside WHERE is evaluated per row (a full scan): pick the keys first.
		SET a = FLOOR(1 + RAND() * $ROWS), b = FLOOR(1 + RAND() * $ROWS), c = FLOOR(1 + RAND() * $ROWS);
		START TRANSACTION;
		UPDATE sbtest SET k = k + 1 WHERE id = a;
		UPDATE sbtest SET c = MD5(i) WHERE id = b;
		UPDATE sbtest SET pad = SHA1(i) WHERE id = c;
		INSERT INTO sbtest (k, c, pad) VALUES (i, 'new', 'row');
		COMMIT;
		SET i = i + 1;
	END WHILE;
END//
DELIMITER ;
SQL
sql TGT postgres "CREATE SCHEMA test; CREATE TABLE test.sbtest (id integer PRIMARY KEY,
	k integer NOT NULL, c varchar(120) NOT NULL, pad varchar(60) NOT NULL);
	CREATE INDEX k ON test.sbtest (k)"

echo "# replica: a copy of the source, then replication set up (SQL thread stopped)"
mariadb-dump --no-defaults -uroot -S "$SRC_SOCKET" --single-transaction --gtid --master-data=1 \
	--databases test >"$W/dump.sql"
harness_sql_db REP mysql "SET GLOBAL gtid_slave_pos = ''" >/dev/null
mariadb --no-defaults -uroot -S "$REP_SOCKET" <"$W/dump.sql"
harness_sql_db REP mysql "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = $SRC_PORT,
	MASTER_USER = 'migd', MASTER_PASSWORD = 'migd', MASTER_USE_GTID = slave_pos;
	START SLAVE IO_THREAD"

cat >"$W/migd.conf" <<CONF
[migration]
name = bench
state_dir = $W/state
[source]
engine = mariadb
dsn = $SRC_DSN
[target]
engine = postgresql
dsn = $TGT_DSN
[tables]
include = test.sbtest
[backfill]
parallel = 2
chunk_rows = 50000
[control]
socket = $W/migd.sock
[metrics]
enabled = false
[log]
level = notice
CONF
MIGD_PID=
migd_up() {
	"$MIGD" --foreground -c "$W/migd.conf" >>"$W/migd.log" 2>&1 &
	MIGD_PID=$!
}
migd_down() {
	if [[ -n $MIGD_PID ]]; then
		kill -TERM "$MIGD_PID" 2>/dev/null || true
		wait "$MIGD_PID" 2>/dev/null || true
		MIGD_PID=
	fi
}
harness_on_exit 'migd_down'
jget() { sed -n 's/.*"'"$1"'": *"\{0,1\}\([^",}]*\).*/\1/p' | head -1; }
status() { "$MIGCTL" -s "$W/migd.sock" --json status 2>/dev/null; }

echo "# migd: initial copy until phase synced"
migd_up
poll_until 0.2 600 '[[ $(status | jget phase) == synced ]]' || {
	echo "bench: migd did not reach synced" >&2
	tail -n 20 "$W/migd.log" >&2
	exit 1
}
migd_down

io_pos() { mariadb --no-defaults -uroot -S "$REP_SOCKET" -e 'SHOW SLAVE STATUS\G' | sed -n 's/^ *Gtid_IO_Pos: *//p'; }
seq_of() { [[ $1 =~ -([0-9]+)(@|$) ]] && echo "${BASH_REMATCH[1]}" || echo 0; }
results=()
for run in $(seq 1 "$RUNS"); do
	my REP "SELECT 1" >/dev/null
	echo "# run $run: building the backlog ($TXNS transactions) with both consumers stopped"
	t0=$(now)
	my SRC "CALL backlog($TXNS); INSERT INTO sbtest (k, c, pad) VALUES (-1, 'marker', '$run')"
	echo "#   built in $(elapsed "$t0" "$(now)") s"
	mark=$(seq_of "$(my SRC 'SELECT @@gtid_binlog_pos')")
	# The IO thread has it all in the relay log before the SQL thread's clock starts.
	poll_until 0.2 600 '[[ $(seq_of "$(io_pos)") -ge $mark ]]'

	t0=$(now)
	migd_up
	poll_until 0.1 900 '(( $(seq_of "$(status | jget applied_pos)") >= mark ))'
	t_migd=$(elapsed "$t0" "$(now)")
	cpu_migd=$(proc_cpu "$MIGD_PID")
	migd_down

	t0=$(now)
	harness_sql_db REP mysql "START SLAVE SQL_THREAD"
	poll_until 0.1 900 '(( $(seq_of "$(harness_sql_db REP mysql "SELECT @@gtid_slave_pos")") >= mark ))'
	t_rep=$(elapsed "$t0" "$(now)")
	harness_sql_db REP mysql "STOP SLAVE SQL_THREAD"

	a=$(my SRC "SELECT CONCAT(COUNT(*), ' ', SUM(k)) FROM sbtest")
	b=$(my REP "SELECT CONCAT(COUNT(*), ' ', SUM(k)) FROM sbtest")
	c=$(sql TGT postgres "SELECT count(*) || ' ' || sum(k) FROM test.sbtest")
	[[ $a == "$b" && $a == "$c" ]] || {
		echo "bench: copies differ: source [$a] replica [$b] migd target [$c]" >&2
		exit 1
	}
	rate_m=$(awk -v n=$((TXNS * 4)) -v t="$t_migd" 'BEGIN { printf "%.0f", n / t }')
	rate_r=$(awk -v n=$((TXNS * 4)) -v t="$t_rep" 'BEGIN { printf "%.0f", n / t }')
	printf 'run %d: migd %6.2f s (%s changes/s, migd cpu %s s)   replica SQL thread %6.2f s (%s changes/s)   rate ratio %s\n' \
		"$run" "$t_migd" "$rate_m" "$cpu_migd" "$t_rep" "$rate_r" "$(ratio "$t_rep" "$t_migd")"
	results+=("$t_migd $t_rep")
done
m=$(printf '%s\n' "${results[@]}" | awk '{print $1}' | median)
r=$(printf '%s\n' "${results[@]}" | awk '{print $2}' | median)
echo
echo "| consumer | median s | changes/s |"
echo "|---|---|---|"
printf '| migd (MariaDB -> PostgreSQL) | %s | %.0f |\n' "$m" "$(awk -v n=$((TXNS * 4)) -v t="$m" 'BEGIN { print n / t }')"
printf '| replica SQL thread (MariaDB -> MariaDB) | %s | %.0f |\n' "$r" "$(awk -v n=$((TXNS * 4)) -v t="$r" 'BEGIN { print n / t }')"
echo "rate migd / replica: $(ratio "$r" "$m") (target >= 1.0)"
