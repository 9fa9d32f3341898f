#!/usr/bin/env bash
# kill -9 exactly at the intent points (MIGD_CRASH_AT, a test-only hook), on
# real PostgreSQL with an application writing all along through the flip
# hook (which moves it between the databases):
#   freeze-intent      intent journaled, nothing revoked: the restart
#                      finishes the freeze (frozen, enforced, one journal row)
#   cutover-intent     phase cutover journaled, no reverse slot, no hook: the
#                      restart finishes the flip (hook once, with the freeze
#                      position; watching, target the owner)
#   rollback-intent    phase rolling_back journaled, the target still
#                      writable: the restart finishes the rollback, every
#                      target write reaches the source
#   cutover-hook-done  the hook ran, the target not yet owner: the restart
#                      reuses the recorded reverse slot and runs the hook
#                      again (same positions), then complete
# While migd is down the target's migd.migration row shows the journaled
# intent and the owner the phase implies; nothing is half-flipped.  Two
# migrations (i1: a_* tables, i2: b_*) share one server pair.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair postgresql postgresql
for side in SRC TGT; do
	harness_sql $side "CREATE ROLE app LOGIN;
CREATE TABLE a_accounts (id bigint PRIMARY KEY, balance numeric(12,2) NOT NULL, note text);
CREATE TABLE a_events (id bigserial PRIMARY KEY, what text);
CREATE TABLE b_accounts (LIKE a_accounts INCLUDING ALL);
CREATE TABLE b_events (id bigserial PRIMARY KEY, what text);
GRANT SELECT, INSERT, UPDATE, DELETE ON a_accounts, a_events, b_accounts, b_events TO app;
GRANT USAGE ON SEQUENCE a_events_id_seq, b_events_id_seq TO app;"
done
for p in a b; do
	harness_sql SRC "INSERT INTO ${p}_accounts SELECT g, g, 'n' || g FROM generate_series(1, 2000) g;
INSERT INTO ${p}_events (what) SELECT 'e' || g FROM generate_series(1, 100) g"
done
APP_SRC="host=127.0.0.1 port=$SRC_PORT user=app dbname=postgres"
APP_TGT="host=127.0.0.1 port=$TGT_PORT user=app dbname=postgres"

# The hooks log every run and point the application at the new owner.  After
# a rollback it is left stopped: writes on the source after rolled_back are
# replicated nowhere and would spoil the row-for-row comparison.
cat >"$T_TMP/hook.sh" <<HOOK
#!/bin/sh
echo "\$1 \$MIGD_MIGRATION \$MIGD_SOURCE_POS \$MIGD_TARGET_POS" >>"$T_TMP/hooks.log"
case \$1 in flip) echo TGT ;; rollback) echo NONE ;; esac >"$T_TMP/owner"
HOOK
chmod 755 "$T_TMP/hook.sh"
: >"$T_TMP/hooks.log"

mig_config() { # file name include
	t_pg_config "$1" "[freeze]" "roles = app" "drain_timeout = 30s" "[hooks]" \
		"flip = $T_TMP/hook.sh flip" "rollback = $T_TMP/hook.sh rollback" "timeout = 10s"
	sed -i -e "s/^name = t\$/name = $2/" -e "s/^include = public\.\*\$/include = $3/" "$1"
}
mig_config "$T_TMP/i1.conf" i1 'public.a_*'
mig_config "$T_TMP/i2.conf" i2 'public.b_*'

# The application on tables $1_*: writes where $T_TMP/owner points, as role
# app; a refused write (frozen) is retried, a committed one is logged by side.
writer() {
	local i=0 side dsn
	while [[ ! -f $T_TMP/stop_$1 ]]; do
		side=$(cat "$T_TMP/owner" 2>/dev/null || true)
		case $side in
		SRC) dsn=$APP_SRC ;;
		TGT) dsn=$APP_TGT ;;
		*)
			sleep 0.05
			continue
			;;
		esac
		i=$((i + 1))
		if psql -X -q "$dsn" -c "BEGIN;
UPDATE $1_accounts SET balance = balance + 1 WHERE id = $((RANDOM % 2000 + 1));
INSERT INTO $1_accounts VALUES ($((100000 + i)), $i, 'w $side');
DELETE FROM $1_accounts WHERE id = $((RANDOM % 2000 + 1));
INSERT INTO $1_events (what) VALUES ('w $i $side');
COMMIT;" >/dev/null 2>&1; then
			echo "$side" >>"$T_TMP/writes_$1"
		else
			sleep 0.05
		fi
	done
}
writes() { grep -c "^$2\$" "$T_TMP/writes_$1" 2>/dev/null || true; } # prefix side
# Waits until $3 more writes committed on side $2 for tables $1_*.
more_writes() {
	local want=$(($(writes "$1" "$2") + $3))
	wait_for 30 '(( $(writes '"$1 $2"') >= '"$want"' ))' || fail "the application did not write on $2"
}
start_writer() {
	: >"$T_TMP/writes_$1"
	writer "$1" &
	WRITER=$!
	t_on_exit "touch $T_TMP/stop_$1; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"
}
stop_writer() {
	touch "$T_TMP/stop_$1"
	wait "$WRITER" || true
}

# migd died at crash point $1: killed by SIGKILL, the point in its log.
expect_crash() {
	local rc=0
	wait "$MIGD_PID" || rc=$?
	MIGD_PID=
	assert_eq "$rc" 137 "migd's exit status at $1"
	assert_contains "$(grep 'event=crash_point' "$T_TMP/migd.log" | tail -n 1)" "point=$1" "crash point"
}
# The migration's row on the target: phase|owner|pending_op.
row() { harness_sql TGT "SELECT phase || '|' || owner || '|' || coalesce(pending_op, '-') FROM migd.migration WHERE name = '$1'"; }
# Journal rows of migration $1 from phase $2 to phase $3.
njournal() { harness_sql TGT "SELECT count(*) FROM migd.journal WHERE name = '$1' AND from_phase = '$2' AND to_phase = '$3'"; }
nslot() { harness_sql "$1" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$2'"; }
# Whether the application may insert into $2 on $1 (rolled back).
app_can_write() { psql -X -q "$1" -c "BEGIN; INSERT INTO $2 (what) VALUES ('probe'); ROLLBACK;" >/dev/null 2>&1; }
crit() {
	{ mctl --json gate || true; } | python3 -c '
import json, sys
g = json.load(sys.stdin)
print([c for c in g["criteria"] if c["name"] == sys.argv[1]][0][sys.argv[2]])' "$1" "$2"
}
# Asks for a cutover that must die at the armed crash point.  The gate was
# open a moment ago; a source write of its own (autovacuum) may close it for
# an instant (lag_bytes), which refuses the cutover: wait and ask again.
cutover_to_crash() {
	local try
	for try in 1 2 3 4 5; do
		expect_rc_any mctl cutover
		[[ $RC == 1 && $OUT == *"the gate is closed"* ]] || break
		wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not reopen: $(mctl gate || true)"
	done
	assert_eq "$RC" 3 "migctl cutover when migd dies (output: $OUT)"
}
expect_rc_any() {
	RC=0
	OUT=$("$@" 2>&1) || RC=$?
}
migd_restart_armed() { # point config
	migd_stop 0
	MIGD_CRASH_AT=$1 migd_start "$2"
}

# --- i1: freeze-intent, cutover-intent, rollback-intent -------------------------------
echo SRC >"$T_TMP/owner"
MIGD_CRASH_AT=freeze-intent migd_start "$T_TMP/i1.conf"
wait_phase 60 synced
start_writer a
more_writes a SRC 20
expect_rc 3 mctl freeze
expect_crash freeze-intent
assert_eq "$(row i1)" "synced|source|freeze" "row after the crash"
app_can_write "$APP_SRC" a_events || fail "the source was frozen before the crash point"
more_writes a SRC 5 # the application goes on while migd is down
migd_start "$T_TMP/i1.conf"
wait_phase 30 frozen
assert_eq "$(row i1)" "frozen|source|-" "row after the restart"
assert_eq "$(njournal i1 synced frozen)" 1 "synced -> frozen journaled once"
assert_contains "$(cat "$T_TMP/migd.log")" "event=recover phase=synced pending=freeze" "recovery logged"
app_can_write "$APP_SRC" a_events && fail "the application still writes on the source after the recovered freeze"
app_can_write "$APP_TGT" a_events && fail "the application may write on the target before the flip"
st=$(mctl --json phase)
assert_eq "$(jfield .freeze.enforced <<<"$st")" true "freeze enforced"
final=$(jfield .freeze.final_position <<<"$st")
assert_eq "$(harness_sql TGT "SELECT freeze_pos FROM migd.migration WHERE name = 'i1'")" "pg:$final" "freeze position recorded"
ok "freeze-intent: the restart finishes the freeze at $final (enforced on both sides, journaled once)"

migd_restart_armed cutover-intent "$T_TMP/i1.conf"
wait_phase 30 frozen
assert_eq "$(mctl --json phase | jfield .freeze.final_position)" "$final" "same final position after a restart"
expect_rc 0 mctl validate --wait
wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not open: $(mctl gate || true)"
assert_eq "$(crit reverse_path_ready value)" "not rehearsed" "gate without a rehearsal"
cutover_to_crash
expect_crash cutover-intent
assert_eq "$(row i1)" "cutover|source|cutover" "row after the crash"
assert_eq "$(nslot TGT migd_i1_reverse)" 0 "no reverse slot yet"
assert_eq "$(grep -c '^flip' "$T_TMP/hooks.log" || true)" 0 "no flip hook yet"
app_can_write "$APP_TGT" a_events && fail "the target took an application write half-way through the flip"
migd_start "$T_TMP/i1.conf"
wait_phase 30 watching
assert_eq "$(row i1)" "watching|target|-" "row after the restart"
assert_eq "$(mctl --json phase | jfield .owner)" target "owner"
assert_eq "$(grep -c '^flip i1 ' "$T_TMP/hooks.log")" 1 "the flip hook ran once"
assert_contains "$(grep '^flip i1 ' "$T_TMP/hooks.log")" "flip i1 $final 0/" "the hook got the freeze position"
assert_eq "$(njournal i1 frozen cutover)" 1 "frozen -> cutover journaled once"
assert_eq "$(njournal i1 cutover watching)" 1 "cutover -> watching journaled once"
assert_eq "$(harness_sql TGT "SELECT source_pos FROM migd.journal WHERE name = 'i1' AND to_phase = 'watching'")" "pg:$final" "journal: the source stands at the freeze position"
assert_eq "$(nslot TGT migd_i1_reverse)" 1 "reverse slot"
more_writes a TGT 10
expect_rc 1 mctl rehearse
assert_contains "$OUT" "before the flip" "rehearse refused after the flip"
ok "cutover-intent: the restart finishes the flip (reverse slot, hook once with $final, watching); the application writes on the target"

migd_restart_armed rollback-intent "$T_TMP/i1.conf"
wait_phase 30 watching
more_writes a TGT 10
expect_rc 3 mctl rollback
expect_crash rollback-intent
assert_eq "$(row i1)" "rolling_back|target|rollback" "row after the crash"
app_can_write "$APP_TGT" a_events || fail "the target was frozen before the crash point"
more_writes a TGT 5 # the owner takes writes while migd is down
migd_start "$T_TMP/i1.conf"
wait_phase 60 rolled_back
assert_eq "$(row i1)" "rolled_back|source|-" "row after the restart"
assert_eq "$(njournal i1 watching rolling_back)" 1 "watching -> rolling_back journaled once"
assert_eq "$(njournal i1 rolling_back rolled_back)" 1 "rolling_back -> rolled_back journaled once"
assert_eq "$(grep -c '^rollback i1 ' "$T_TMP/hooks.log")" 1 "the rollback hook ran once"
assert_contains "$(grep '^rollback i1 ' "$T_TMP/hooks.log")" "rollback i1 $final 0/" "the rollback hook got the freeze position"
stop_writer a
assert_same_table a_accounts id
assert_same_table a_events id
assert_eq "$(nslot SRC migd_i1)$(nslot TGT migd_i1_reverse)" 00 "slots dropped on both sides"
app_can_write "$APP_TGT" a_events && fail "the target still takes writes after the rollback"
app_can_write "$APP_SRC" a_events || fail "the source does not take writes after the rollback"
ok "rollback-intent: the restart finishes the rollback; every write made on the target (also while migd was down) is on the source"
migd_stop 0

# --- i2: cutover-hook-done, then complete ---------------------------------------------
echo SRC >"$T_TMP/owner"
MIGD_CRASH_AT=cutover-hook-done migd_start "$T_TMP/i2.conf"
wait_phase 60 synced
start_writer b
more_writes b SRC 20
expect_rc 0 mctl freeze
expect_rc 0 mctl validate --wait
wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not open: $(mctl gate || true)"
final=$(mctl --json phase | jfield .freeze.final_position)
cutover_to_crash
expect_crash cutover-hook-done
assert_eq "$(row i2)" "cutover|source|cutover" "row after the crash"
assert_eq "$(grep -c '^flip i2 ' "$T_TMP/hooks.log")" 1 "the hook ran before the crash"
assert_eq "$(nslot TGT migd_i2_reverse)" 1 "reverse slot created before the hook"
rpos=$(harness_sql TGT "SELECT reverse_pos FROM migd.migration WHERE name = 'i2'")
assert_eq "$(grep '^flip i2 ' "$T_TMP/hooks.log")" "flip i2 $final ${rpos#pg:}" "hook positions"
app_can_write "$APP_TGT" b_events && fail "the hook moved the application but the target is not the owner yet: it must refuse"
migd_start "$T_TMP/i2.conf"
wait_phase 30 watching
assert_eq "$(row i2)" "watching|target|-" "row after the restart"
assert_eq "$(grep '^flip i2 ' "$T_TMP/hooks.log")" "$(printf 'flip i2 %s %s\n' "$final" "${rpos#pg:}" "$final" "${rpos#pg:}")" \
	"the hook ran again with the same positions (the recorded reverse slot was reused)"
assert_eq "$(harness_sql TGT "SELECT reverse_pos FROM migd.migration WHERE name = 'i2'")" "$rpos" "reverse position kept"
assert_eq "$(njournal i2 frozen cutover)$(njournal i2 cutover watching)" 11 "the flip journaled once"
more_writes b TGT 20
stop_writer b
wait_for 30 '[[ $(table_digest SRC b_accounts id) == "$(table_digest TGT b_accounts id)" ]]' ||
	fail "reverse replication did not carry the target's writes to the source"
wait_for 30 '[[ $(table_digest SRC b_events id) == "$(table_digest TGT b_events id)" ]]' ||
	fail "reverse replication did not carry the target's events to the source"
expect_rc 0 mctl complete
assert_eq "$(migd_phase)" done "phase after complete"
assert_same_table b_accounts id
assert_same_table b_events id
assert_eq "$(nslot SRC migd_i2)$(nslot TGT migd_i2_reverse)" 00 "slots dropped on both sides"
ok "cutover-hook-done: the restart reuses the reverse slot, runs the hook again with the same positions, flips; complete leaves both sides identical"
migd_stop 0
