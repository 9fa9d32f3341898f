#!/usr/bin/env bash
# Fault loop, PostgreSQL -> PostgreSQL: kill -9 migd at random moments in
# backfill and CDC, crash-restart the source and the target now and then,
# all under live writes; then prove source and target identical row for row.
#   FAULT_KILLS (default 4 here; `make check-fault` runs 24)
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
KILLS=${FAULT_KILLS:-4}
harness_pair postgresql postgresql

SCHEMA="
CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL);
CREATE TABLE orders (region text, id int, qty int, PRIMARY KEY (region, id));
CREATE TABLE docs (id uuid PRIMARY KEY, title text, body text);
"
harness_sql SRC "$SCHEMA"
harness_sql TGT "$SCHEMA"
harness_sql SRC "
INSERT INTO accounts SELECT g, 'owner ' || g, g % 1000 FROM generate_series(1, 300000) g;
INSERT INTO orders SELECT r, g, g % 7 FROM unnest(ARRAY['eu','us']) r, generate_series(1, 5000) g;
INSERT INTO docs SELECT md5(g::text)::uuid, 't' || g, repeat(md5(g::text), 100) FROM generate_series(1, 300) g;
"
# The copy is throttled so that it spans about the first half of the kills
# (each life lasts ~0.8 s there): without it the backfill is done within
# the first life and every later kill lands in CDC.
t_pg_config "$T_TMP/migd.conf" "[backfill]" "rows_per_second = $((310000 * 10 / (4 * KILLS)))"

writer() {
	local i=0
	while [[ ! -f $T_TMP/stop_writer ]]; do
		i=$((i + 1))
		harness_sql SRC "
BEGIN;
UPDATE accounts SET balance = balance + 1 WHERE id = (random() * 300000)::int + 1;
INSERT INTO accounts VALUES (1000000 + $i, 'w $i', $i) ON CONFLICT DO NOTHING;
DELETE FROM accounts WHERE id = (random() * 300000)::int + 1;
UPDATE orders SET id = id + 100000 WHERE region = 'us' AND id = $i % 5000 + 1;
UPDATE docs SET title = 'x$i' WHERE id = md5(($i % 300 + 1)::text)::uuid;
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
wait_caught_up 90
assert_same_table accounts id
assert_same_table orders "region, id"
assert_same_table docs id
# Keys and indexes dropped for the copy ([backfill] defer_indexes) are all back.
idx() { harness_sql "$1" "SELECT string_agg(indexdef, E'\n' ORDER BY indexdef) FROM pg_indexes WHERE schemaname = 'public'"; }
assert_eq "$(idx TGT)" "$(idx SRC)" "indexes on the target"
st=$(mctl --json status)
assert_eq "$(jfield .migration_state.apply.failed_records <<<"$st")" 0 "failed records"
ok "after every kill and crash: source and target identical row for row"
migd_stop 0
