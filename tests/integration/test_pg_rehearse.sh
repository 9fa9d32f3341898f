#!/usr/bin/env bash
# Rehearsal of the reverse path on real PostgreSQL: `migctl rehearse` checks
# the target and the source, then carries a probe row target -> source
# through a real slot, the pgoutput decoder, a spool, the applier and the
# PostgreSQL sink, and reports every step with its verdict and time; it runs
# while the coordinator is busy backfilling.  It leaves nothing behind: after
# passing, after failing on a full target, after the source refused the
# probe mid-way, and after a kill -9 in the middle (the next start removes
# the slot).  The gate's reverse_path_ready follows the latest rehearsal;
# after the flip a rehearsal is refused.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair postgresql postgresql
for side in SRC TGT; do
	harness_sql $side "CREATE ROLE app LOGIN;
CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric(12,2) NOT NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON accounts TO app;"
done
harness_sql SRC "INSERT INTO accounts SELECT g, g FROM generate_series(1, 50000) g"
t_pg_config "$T_TMP/migd.conf" "[freeze]" "roles = app"
migd_start "$T_TMP/migd.conf"
# Paused (a chunk or two may have gone already), the coordinator stays in the backfill.
expect_rc 0 mctl backfill pause
wait_phase 30 backfilling
wait_for 30 '[[ $(mctl --json backfill | jfield .backfill.chunks_running) == 0 ]]' ||
	fail "running chunks did not finish after pause"
done0=$(mctl --json backfill | jfield .backfill.chunks_done)

STEPS="target_wal_level target_replication_role target_free_slot target_publication
source_write_privileges source_migd_schema rehearsal_slot probe_write probe_replicated cleanup"

# A field of one gate criterion: crit NAME FIELD (the gate may be closed: exit 5).
crit() {
	{ mctl --json gate || true; } | python3 -c '
import json, sys
g = json.load(sys.stdin)
c = [c for c in g["criteria"] if c["name"] == sys.argv[1]][0][sys.argv[2]]
print(json.dumps(c) if isinstance(c, bool) else c)' "$1" "$2"
}

# "name verdict" per step of the last rehearsal, from status.
verdicts() {
	mctl --json status | python3 -c '
import json, sys
r = json.load(sys.stdin)["migration_state"]["rehearsal"]
for s in r["steps"]:
    assert isinstance(s["seconds"], float), s
    print(s["name"], s["verdict"])'
}

# Nothing of a rehearsal is left: slot, publication, probe rows, the sink's rows, the spool.
assert_nothing_left() {
	assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'migd_t_rehearse'")" 0 "$1: rehearsal slot"
	assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_publication WHERE pubname = 'migd_t_rehearse'")" 0 "$1: rehearsal publication"
	assert_eq "$(harness_sql TGT "SELECT count(*) FROM migd.rehearse_probe")" 0 "$1: probe rows on the target"
	assert_eq "$(harness_sql SRC "SELECT count(*) FROM migd.rehearse_probe")" 0 "$1: probe rows on the source"
	assert_eq "$(harness_sql SRC "SELECT count(*) FROM migd.progress WHERE name = 't:rehearse'")" 0 "$1: the sink's progress row"
	assert_eq "$(harness_sql SRC "SELECT count(*) FROM migd.failed_records WHERE name = 't:rehearse'")" 0 "$1: the sink's failed records"
	[[ ! -e $T_TMP/state/spool-t-rehearse ]] || fail "$1: the scratch spool is left in state_dir"
}

assert_contains "$(mctl help)" "* rehearse" "help lists rehearse as an operator command"
assert_eq "$(crit reverse_path_ready value)" "not rehearsed" "gate value before any rehearsal"
assert_contains "$(crit reverse_path_ready detail)" "not rehearsed" "gate detail before any rehearsal"
before=$(table_digest SRC accounts id)
expect_rc 0 mctl rehearse
assert_contains "$OUT" "rehearsal  PASSED: the reverse path target -> source works" "verdict"
assert_contains "$OUT" "(phase backfilling)" "rehearsed during the backfill"
assert_contains "$OUT" "the row reached the source's migd.rehearse_probe" "probe step detail"
assert_eq "$(verdicts)" "$(for s in $STEPS; do echo "$s passed"; done)" "every step, in order, passed"
assert_eq "$(mctl --json backfill | jfield .backfill.chunks_done)" "$done0" "no chunk copied meanwhile"
assert_eq "$(migd_phase)" backfilling "phase after the rehearsal"
assert_nothing_left "after a rehearsal that passed"
expect_rc 0 mctl backfill resume
wait_phase 60 synced
wait_caught_up
assert_eq "$(table_digest SRC accounts id)" "$before" "no user table written"
assert_same_table accounts id
assert_eq "$(harness_sql TGT "SELECT count(*), bool_and(passed) FROM migd.rehearsal WHERE name = 't'")" "1	t" "recorded on the target"
assert_eq "$(crit reverse_path_ready value)" "rehearsal passed" "gate value"
assert_eq "$(crit reverse_path_ready ok)" true "gate verdict"
ok "rehearse (backfilling, coordinator busy): every step passed with its time, nothing left behind, no user table touched, the gate says so"

# A target without a free replication slot: the check fails, the probe is skipped.
free=$(harness_sql TGT "SELECT current_setting('max_replication_slots')::int - count(*) FROM pg_replication_slots")
harness_sql TGT "SELECT pg_create_physical_replication_slot('fill_' || g) FROM generate_series(1, $free) g" >/dev/null
expect_rc 5 mctl rehearse
assert_contains "$OUT" "rehearsal  FAILED" "verdict on a full target"
assert_contains "$OUT" "no free replication slot" "reason"
v=$(verdicts)
assert_contains "$v" "target_free_slot failed" "free slot step"
assert_contains "$v" "target_wal_level passed" "other checks still run"
assert_contains "$v" "probe_replicated skipped" "probe skipped"
assert_contains "$v" "cleanup passed" "cleanup"
assert_eq "$(crit reverse_path_ready ok)" false "a failed rehearsal closes the gate"
assert_eq "$(crit reverse_path_ready value)" "rehearsal failed" "gate value"
assert_contains "$(crit reverse_path_ready detail)" "failed at target_free_slot: no free replication slot" "gate reason"
harness_sql TGT "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'fill\_%'" >/dev/null
assert_nothing_left "after a failed check"
ok "rehearse on a target without a free slot: exit 5, the step says why, the probe is skipped, the gate closes with the reason"

# The source refuses the probe: the failure shows after the slot existed, and it is cleaned up.
harness_sql SRC "ALTER TABLE migd.rehearse_probe ADD CONSTRAINT probe_refused CHECK (token = 'never') NOT VALID"
expect_rc 5 mctl rehearse
assert_contains "$OUT" 'violates check constraint "probe_refused"' "the source's refusal"
v=$(verdicts)
for s in "rehearsal_slot passed" "probe_write passed" "probe_replicated failed" "cleanup passed"; do
	assert_contains "$v" "$s" "steps when the source refuses"
done
assert_nothing_left "after a failure mid-way"
harness_sql SRC "ALTER TABLE migd.rehearse_probe DROP CONSTRAINT probe_refused"
ok "the source refuses the probe: the rehearsal fails at probe_replicated, slot, publication and rows are removed"

# kill -9 with the rehearsal slot created: the next start removes it.
migd_stop 0
MIGD_CRASH_AT=rehearse-slot migd_start "$T_TMP/migd.conf"
wait_phase 60 synced
expect_rc 3 mctl rehearse
rc=0
wait "$MIGD_PID" || rc=$?
MIGD_PID=
assert_eq "$rc" 137 "migd died by SIGKILL at the crash point"
assert_contains "$(cat "$T_TMP/migd.log")" "event=crash_point point=rehearse-slot" "crash point logged"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'migd_t_rehearse'")" 1 "the crash left the slot"
migd_start "$T_TMP/migd.conf"
wait_for 15 '[[ $(harness_sql TGT "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '"'migd_t_rehearse'"'") == 0 ]]' ||
	fail "the rehearsal slot left by the crash was not dropped at start"
assert_contains "$(cat "$T_TMP/migd.log")" "status=leftovers_removed" "leftovers logged"
wait_phase 60 synced
assert_nothing_left "after a crash in the middle and a restart"
ok "kill -9 in the middle of a rehearsal: the next start drops its slot and publication (no WAL held on the target)"

expect_rc 0 mctl freeze
expect_rc 0 mctl rehearse
assert_contains "$OUT" "(phase frozen)" "rehearsal while frozen"
expect_rc 0 mctl validate --wait
wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not open: $(mctl gate || true)"
assert_contains "$(crit reverse_path_ready detail)" "(phase frozen): every step passed" "gate detail"
assert_nothing_left "after a rehearsal while frozen"
ok "rehearse while frozen passes; with it the gate opens"

expect_rc 0 mctl cutover
expect_rc 1 mctl rehearse
assert_contains "$OUT" "before the flip" "rehearse refused after the flip"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'migd_t_reverse'")" 1 "the real reverse slot"
ok "after the flip a rehearsal is refused with the reason"
migd_stop 0
