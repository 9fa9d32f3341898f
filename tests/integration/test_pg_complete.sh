#!/usr/bin/env bash
# The happy end: freeze, validate, cutover, then `migctl complete` ends the
# watch -- reverse replication stops, the slots and publications on both
# sides are dropped (no WAL held anywhere), the journal stays, phase done.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair postgresql postgresql
for side in SRC TGT; do
	harness_sql $side "CREATE ROLE app LOGIN;
CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO app; GRANT USAGE ON SEQUENCE items_id_seq TO app;"
done
harness_sql SRC "INSERT INTO items (name) SELECT 'i' || g FROM generate_series(1, 1000) g"
t_pg_config "$T_TMP/migd.conf" "[freeze]" "roles = app"
migd_start "$T_TMP/migd.conf"
wait_phase 60 synced
expect_rc 1 mctl complete
assert_contains "$OUT" "complete needs phase watching" "complete before the flip"
expect_rc 0 mctl freeze
expect_rc 0 mctl validate --wait
expect_rc 0 mctl cutover
psql -X -q "host=127.0.0.1 port=$TGT_PORT user=app dbname=postgres" \
	-c "INSERT INTO items (name) VALUES ('on the new owner')" || fail "app cannot write on the target"
wait_for 30 '[[ $(table_digest SRC items id) == "$(table_digest TGT items id)" ]]' ||
	fail "reverse replication did not carry the write"
expect_rc 0 mctl complete
assert_contains "$OUT" "phase      done" "phase after complete"
assert_eq "$(harness_sql SRC "SELECT count(*) FROM pg_replication_slots")" 0 "source slots"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_replication_slots")" 0 "target slots"
assert_eq "$(harness_sql SRC "SELECT count(*) FROM pg_publication")" 0 "source publications"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_publication")" 0 "target publications"
assert_contains "$(mctl journal)" "watching     -> done" "journal kept"
expect_rc 1 mctl rollback
assert_contains "$OUT" "rollback needs phase watching" "no rollback after done"
migd_stop 0
migd_start "$T_TMP/migd.conf"
assert_eq "$(migd_phase)" done "phase after a restart"
ok "complete: slots and publications dropped on both sides, journal kept, done survives a restart"
migd_stop 0
