#!/usr/bin/env bash
# Freeze and gate on real PostgreSQL: the gate says no (and why) first;
# `migctl freeze` takes the application role's writes away on both sides,
# ends its sessions, drains to the final position and lists the writers;
# validation at the freeze position opens the gate; a write that ignores the
# freeze (a superuser) is a freeze violation that closes it again, and the
# count survives kill -9; unfreeze gives the grants back.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair postgresql postgresql
for side in SRC TGT; do
	harness_sql $side "CREATE ROLE app LOGIN;
CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric(12,2) NOT NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON accounts TO app;"
done
harness_sql SRC "INSERT INTO accounts SELECT g, g FROM generate_series(1, 5000) g"
t_pg_config "$T_TMP/migd.conf" "[freeze]" "roles = app" "drain_timeout = 30s"
migd_start "$T_TMP/migd.conf"
wait_phase 60 synced
APP_SRC="host=127.0.0.1 port=$SRC_PORT user=app dbname=postgres"
APP_TGT="host=127.0.0.1 port=$TGT_PORT user=app dbname=postgres"

expect_rc 5 mctl gate
for c in "NO   phase" "NO   freeze_enforced" "NO   final_position_reached" \
	"NO   validation_counts" "not run (migctl validate --kind counts --wait)" "ok   failed_records"; do
	assert_contains "$OUT" "$c" "gate before the freeze"
done
ok "the gate says no before the freeze, with each criterion's value and reason"

# A long-lived application session with an open transaction when the freeze comes.
psql -X -q "$APP_SRC" -c "BEGIN; UPDATE accounts SET balance = balance WHERE id = 1; SELECT pg_sleep(30); COMMIT;" \
	>"$T_TMP/app_session.log" 2>&1 &
APPSESS=$!
t_on_exit "kill $APPSESS 2>/dev/null"
sleep 0.5
expect_rc 0 mctl freeze
out=$OUT
assert_contains "$out" "phase      frozen" "phase after freeze"
assert_contains "$out" "target drained" "drained"
assert_contains "$out" "freeze enforced" "enforced"
assert_contains "$out" "source: 3 grants revoked, 1 sessions ended" "source side"
assert_contains "$out" "target: 3 grants revoked" "target side protected before the flip"
wait "$APPSESS" 2>/dev/null || true
assert_contains "$(cat "$T_TMP/app_session.log")" "terminat" "open writer session ended"
if psql -X -q "$APP_SRC" -c "INSERT INTO accounts VALUES (99999, 1)" 2>"$T_TMP/deny"; then
	fail "the frozen role could still write on the source"
fi
assert_contains "$(cat "$T_TMP/deny")" "permission denied" "source write refused"
psql -X -q "$APP_TGT" -c "INSERT INTO accounts VALUES (99999, 1)" 2>"$T_TMP/deny" &&
	fail "the frozen role could write on the target before the flip"
assert_contains "$(cat "$T_TMP/deny")" "permission denied" "target write refused"
final=$(mctl --json phase | jfield .freeze.final_position)
assert_contains "$(mctl journal)" "synced       -> frozen" "journal"
ok "freeze: grants revoked on source and target, the open writer ended, drained to $final"

expect_rc 5 mctl gate
assert_contains "$OUT" "NO   validation_checksums" "validation still missing"
expect_rc 0 mctl validate --wait
expect_rc 0 mctl gate
assert_contains "$OUT" "gate OPEN" "gate open"
assert_contains "$OUT" "(freeze at $final)" "validation at the freeze position"
ok "validation at the freeze position opens the gate (exit 0)"

# A writer that ignores the freeze: a superuser.
harness_sql SRC "UPDATE accounts SET balance = 0 WHERE id = 7"
wait_for 20 '[[ $(mctl --json gate | jfield .criteria.2.value) == 1 ]]' ||
	fail "the freeze violation was not counted: $(mctl gate || true)"
expect_rc 5 mctl gate
assert_contains "$OUT" "NO   freeze_violations" "violation closes the gate"
assert_contains "$OUT" "changed public.accounts" "violation detail"
assert_contains "$(cat "$T_TMP/migd.log")" "event=freeze_violation" "violation logged"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM migd.freeze_violations")" 1 "violation recorded"
ok "a write after the freeze is a freeze violation (logged, recorded on the target) and closes the gate"

kill -KILL "$MIGD_PID"
wait "$MIGD_PID" 2>/dev/null || true
MIGD_PID=
migd_start "$T_TMP/migd.conf"
wait_for 20 '[[ $(mctl --json gate | jfield .criteria.2.value) == 1 ]]' ||
	fail "violation count lost after kill -9: $(mctl gate || true)"
assert_eq "$(migd_phase)" frozen "phase after kill -9"
wait_for 20 '(mctl gate || true) | grep -q "ok   freeze_enforced"' || fail "freeze not re-verified after restart"
ok "after kill -9: still frozen, the freeze re-verified, the violation still counted"

expect_rc 0 mctl unfreeze
assert_contains "$OUT" "grants_restored_source: 3" "grants back"
assert_eq "$(migd_phase)" synced "phase after unfreeze"
psql -X -q "$APP_SRC" -c "INSERT INTO accounts VALUES (99998, 1)" || fail "app cannot write after unfreeze"
wait_caught_up 30
assert_same_table accounts id
ok "unfreeze: the role writes again, phase synced, tables identical"
expect_rc 1 mctl unfreeze
assert_contains "$OUT" "unfreeze needs phase frozen" "illegal command refused with the reason"
ok "an illegal command for the phase is refused with the reason"

expect_rc 0 mctl abort
assert_eq "$(migd_phase)" aborted "phase after abort"
assert_eq "$(harness_sql SRC "SELECT count(*) FROM pg_replication_slots")" 0 "slot dropped by abort"
assert_eq "$(harness_sql SRC "SELECT count(*) FROM pg_publication")" 0 "publication dropped by abort"
psql -X -q "$APP_SRC" -c "INSERT INTO accounts VALUES (99997, 1)" || fail "abort took the app's writes"
expect_rc 1 mctl abort
assert_contains "$OUT" "abort is only possible before the flip" "abort twice"
ok "abort: slot and publication dropped, the source untouched and writable, phase aborted (terminal)"
migd_stop 0
