#!/usr/bin/env bash
# Fault loop, MariaDB -> PostgreSQL: kill -9 migd at random moments in
# backfill and CDC, crash-restart the source (MariaDB) and the target
# (PostgreSQL) now and then, all under live writes; then prove source and
# target identical row for row.
#   FAULT_KILLS (default 4 here; `make check-fault` runs 24)
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
KILLS=${FAULT_KILLS:-4}
harness_pair mariadb postgresql

harness_sql SRC "CREATE TABLE accounts (id bigint PRIMARY KEY, owner varchar(40) NOT NULL,
	balance decimal(12,2) NOT NULL);
CREATE TABLE orders (region varchar(8) NOT NULL, id int NOT NULL, qty int, PRIMARY KEY (region, id));
CREATE TABLE docs (id binary(16) PRIMARY KEY, title varchar(40), body mediumtext);
INSERT INTO accounts SELECT seq, CONCAT('owner ', seq), seq % 1000 FROM seq_1_to_200000;
INSERT INTO orders SELECT r.r, s.seq, s.seq % 7 FROM (SELECT 'eu' r UNION ALL SELECT 'us') r, seq_1_to_5000 s;
INSERT INTO docs SELECT UNHEX(MD5(seq)), CONCAT('t', seq), REPEAT(MD5(seq), 100) FROM seq_1_to_300;"
harness_sql TGT "CREATE SCHEMA test;
CREATE TABLE test.accounts (id bigint PRIMARY KEY, owner varchar(40) NOT NULL, balance numeric(12,2) NOT NULL);
CREATE TABLE test.orders (region varchar(8) COLLATE \"C\" NOT NULL, id integer NOT NULL, qty integer,
	PRIMARY KEY (region, id));
CREATE TABLE test.docs (id bytea PRIMARY KEY, title varchar(40), body text);"
# The copy is throttled so that it spans about the first half of the kills
# (each life lasts ~0.8 s there): without it the backfill is done within
# the first life and every later kill lands in CDC.
t_pg_config "$T_TMP/migd.conf" "[backfill]" "rows_per_second = $((210000 * 10 / (4 * KILLS)))"
sed -i '0,/^engine = postgresql$/s//engine = mariadb/; s/^include = public\.\*$/include = test.*/' "$T_TMP/migd.conf"

writer() {
	local i=0
	while [[ ! -f $T_TMP/stop_writer ]]; do
		i=$((i + 1))
		harness_sql SRC "SET @a = FLOOR(1 + RAND() * 200000), @b = FLOOR(1 + RAND() * 200000);
BEGIN;
UPDATE accounts SET balance = balance + 1 WHERE id = @a;
INSERT IGNORE INTO accounts VALUES (1000000 + $i, 'w $i', $i);
DELETE FROM accounts WHERE id = @b;
UPDATE orders SET id = id + 100000 WHERE region = 'us' AND id = $i % 5000 + 1;
UPDATE docs SET title = 'x$i' WHERE id = UNHEX(MD5($i % 300 + 1));
COMMIT;" >/dev/null 2>&1 || sleep 0.2 # the source may be restarting
	done
}
writer &
WRITER=$!
t_on_exit "touch $T_TMP/stop_writer; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"

phases=()
for ((k = 1; k <= KILLS; k++)); do
	migd_start "$T_TMP/migd.conf"
	# The first half of the kills land early (capture, backfill), the rest later (CDC).
	if ((k <= (KILLS + 1) / 2)); then
		sleep "$(awk -v r=$RANDOM 'BEGIN{printf "%.2f", 0.2 + (r % 120) / 100}')"
	else
		sleep "$(awk -v r=$RANDOM 'BEGIN{printf "%.2f", 0.5 + (r % 300) / 100}')"
	fi
	phases+=("$(migd_phase 2>/dev/null || echo '?')")
	kill -KILL "$MIGD_PID"
	wait "$MIGD_PID" 2>/dev/null || true
	MIGD_PID=
	case $((k % 4)) in
	1) harness_restart SRC --crash >/dev/null ;;
	3) harness_restart TGT --crash >/dev/null ;;
	esac
	echo "# kill $k/$KILLS in phase ${phases[-1]}"
done
nbf=$(grep -cE '^(init|captured|backfilling)$' < <(printf '%s\n' "${phases[@]}") || true)
((nbf > 0)) || fail "no kill landed before the backfill finished (phases: ${phases[*]})"
ok "$KILLS kills of migd (phases: ${phases[*]}), $((KILLS / 2)) server crashes, writer running"

migd_start "$T_TMP/migd.conf"
wait_phase 180 synced
touch "$T_TMP/stop_writer"
wait "$WRITER" || true
wait_my_caught_up 90
assert_same_rows accounts "CONCAT_WS('|', id, owner, balance)" "concat_ws('|', id, owner, balance)"
assert_same_rows orders "CONCAT_WS('|', region, id, COALESCE(qty, 'N'))" "concat_ws('|', region, id, coalesce(qty::text, 'N'))" \
	"region, id"
assert_same_rows docs "CONCAT_WS('|', HEX(id), title, MD5(body))" "concat_ws('|', upper(encode(id, 'hex')), title, md5(body))"
assert_eq "$(mctl --json status | jfield .migration_state.apply.failed_records)" 0 "failed records"
ok "after every kill and crash: source and target identical row for row"
migd_stop 0
