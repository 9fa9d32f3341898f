#!/usr/bin/env bash
# Cutover and rollback on real PostgreSQL, with an application role:
# a failing flip hook leaves the source the owner, still frozen, nothing
# half-flipped; a working hook flips (reverse slot created first, hook gets
# the positions); the application writes on the target; reverse replication
# carries every target-only write to the source (also across kill -9); the
# rollback freezes the target, drains, flips back, and loses nothing.
# accounts.note is named memo on the target ([tables] columns): backfill,
# apply, validation and reverse replication all map it.  events is
# log_events there, with a sequence of that name: the flip and the rollback
# match sequences by their column, not by name.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair postgresql postgresql
for side in SRC TGT; do
	harness_sql $side "CREATE ROLE app LOGIN;
CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric(12,2) NOT NULL, note text);
CREATE TABLE events (id bigserial PRIMARY KEY, what text);
GRANT SELECT, INSERT, UPDATE, DELETE ON accounts, events TO app;
GRANT USAGE ON SEQUENCE events_id_seq TO app;"
done
harness_sql TGT "ALTER TABLE accounts RENAME COLUMN note TO memo;
ALTER TABLE events RENAME TO log_events; ALTER SEQUENCE events_id_seq RENAME TO log_events_id_seq"
harness_sql SRC "INSERT INTO accounts SELECT g, g, 'n' || g FROM generate_series(1, 5000) g;
INSERT INTO events (what) SELECT 'e' || g FROM generate_series(1, 100) g"
APP_SRC="host=127.0.0.1 port=$SRC_PORT user=app dbname=postgres"
APP_TGT="host=127.0.0.1 port=$TGT_PORT user=app dbname=postgres"
cat >"$T_TMP/hook.sh" <<HOOK
#!/bin/sh
env | grep '^MIGD_' | sort > "$T_TMP/\$1.env"
[ -f "$T_TMP/hook_fails" ] && { echo "pgbouncer said no"; exit 3; }
exit 0
HOOK
chmod 755 "$T_TMP/hook.sh"
t_pg_config "$T_TMP/migd.conf" "[tables]" "columns = public.accounts.note=memo" "rename = public.events=log_events" "[freeze]" "roles = app" \
	"[hooks]" "flip = $T_TMP/hook.sh flip" "rollback = $T_TMP/hook.sh rollback" "timeout = 10s"
migd_start "$T_TMP/migd.conf"
wait_phase 60 synced

expect_rc 1 mctl cutover
assert_contains "$OUT" "cutover needs phase frozen" "cutover before freeze"
expect_rc 0 mctl freeze
expect_rc 0 mctl validate --wait
expect_rc 0 mctl rehearse # the reverse path with the renamed table and column
expect_rc 0 mctl cutover --dry-run
assert_contains "$(mctl --json cutover --dry-run)" '"would_flip":true' "dry run"
assert_eq "$(migd_phase)" frozen "dry run changes nothing"
ok "cutover is refused before the freeze; --dry-run shows the gate and the steps, changes nothing"

touch "$T_TMP/hook_fails"
expect_rc 1 mctl cutover
assert_contains "$OUT" "flip hook: exited 3; output: pgbouncer said no" "hook failure reported"
assert_eq "$(migd_phase)" frozen "phase after a failed hook"
assert_eq "$(mctl --json phase | jfield .owner)" source "owner after a failed hook"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_replication_slots")" 0 "no reverse slot left"
psql -X -q "$APP_TGT" -c "INSERT INTO accounts VALUES (90001, 1, 'x')" 2>/dev/null &&
	fail "the target took an application write after a failed flip"
ok "a failing flip hook: still frozen, the source owns the data, no reverse slot, target protected"

rm "$T_TMP/hook_fails"
# Forward replication resumed after the failed flip; the gate opens again once it confirmed.
wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not reopen: $(mctl gate || true)"
expect_rc 0 mctl cutover
assert_contains "$OUT" "phase      watching" "phase after cutover"
assert_eq "$(mctl --json phase | jfield .owner)" target "owner after cutover"
env_flip=$(cat "$T_TMP/flip.env")
assert_contains "$env_flip" "MIGD_OWNER=target" "hook env owner"
assert_contains "$env_flip" "MIGD_SOURCE_POS=$(mctl --json phase | jfield .freeze.final_position)" "hook env source pos"
assert_contains "$env_flip" "MIGD_TARGET_POS=" "hook env target pos"
ok "cutover: the hook ran with the phase, owner and both positions; the target is the owner"

# The application now writes on the target; the source stays frozen.
psql -X -q "$APP_TGT" -c "INSERT INTO log_events (what) VALUES ('needs the sequence moved');
INSERT INTO accounts VALUES (90001, 1, 'target only');
UPDATE accounts SET balance = balance + 100 WHERE id <= 50; DELETE FROM accounts WHERE id BETWEEN 100 AND 120;" ||
	fail "the application cannot write on the new owner"
psql -X -q "$APP_SRC" -c "INSERT INTO accounts VALUES (90002, 1, 'x')" 2>/dev/null &&
	fail "the old owner took an application write"
wait_for 30 '[[ $(table_digest SRC accounts id) == "$(table_digest TGT accounts id)" ]]' ||
	fail "reverse replication did not bring the target's writes to the source"
[[ $(table_digest SRC events id) == "$(table_digest TGT log_events id)" ]] ||
	fail "events differs from the target's log_events"
assert_contains "$(mctl status)" "reverse    running" "reverse in status"
ok "sequences copied at the flip; target-only writes are carried to the source by reverse replication; the source refuses the app"

kill -KILL "$MIGD_PID"
wait "$MIGD_PID" 2>/dev/null || true
MIGD_PID=
psql -X -q "$APP_TGT" -c "UPDATE accounts SET memo = 'while migd was down' WHERE id = 7"
migd_start "$T_TMP/migd.conf"
assert_eq "$(migd_phase)" watching "phase after kill -9"
wait_for 30 '[[ $(table_digest SRC accounts id) == "$(table_digest TGT accounts id)" ]]' ||
	fail "reverse replication did not resume after kill -9"
ok "kill -9 while watching: migd resumes in watching and reverse replication catches up"

psql -X -q "$APP_TGT" -c "INSERT INTO accounts VALUES (90003, 3, 'last target write')"
expect_rc 0 mctl rollback
assert_contains "$OUT" "phase      rolled_back" "phase after rollback"
assert_contains "$(cat "$T_TMP/rollback.env")" "MIGD_OWNER=source" "rollback hook env"
assert_same_table accounts id
assert_eq "$(harness_sql SRC "SELECT note FROM accounts WHERE id = 90003")" "last target write" "last write"
psql -X -q "$APP_SRC" -c "INSERT INTO events (what) VALUES ('source sequence moved back');
INSERT INTO accounts VALUES (90004, 4, 'source again')" ||
	fail "the source does not take writes after the rollback"
psql -X -q "$APP_TGT" -c "INSERT INTO accounts VALUES (90005, 5, 'x')" 2>/dev/null &&
	fail "the target still takes writes after the rollback"
assert_contains "$(mctl journal)" "rolling_back -> rolled_back" "journal"
ok "rollback: target frozen and drained, ownership back to the source, no target-only write lost"
expect_rc 1 mctl cutover
assert_contains "$OUT" "cutover needs phase frozen" "terminal phase refuses cutover"
migd_stop 0
