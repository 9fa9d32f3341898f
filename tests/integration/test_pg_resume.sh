#!/usr/bin/env bash
# Backfill pause/resume and a restart that loses the exported snapshot:
# done chunks are never copied again, the rest are copied from current data
# and replay from the captured position makes the result converge.  A table
# without a key cannot converge through replay (a replayed insert doubles its
# row): its copy after the restart stands at a temporary slot's consistent
# point, and the applier skips its changes before that.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair postgresql postgresql
SCHEMA="CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL);
CREATE TABLE zlog (at timestamptz NOT NULL DEFAULT now(), what text NOT NULL);"
harness_sql SRC "$SCHEMA"
harness_sql TGT "$SCHEMA"
harness_sql SRC "INSERT INTO accounts SELECT g, 'o' || g, g % 977 FROM generate_series(1, 150000) g;
INSERT INTO zlog (what) SELECT 'pre ' || g FROM generate_series(1, 500) g"
# zlog sorts after accounts: its one chunk is still to do when the kill comes.
# The copy is throttled (about 7 s) so that the pause and the kill land in it on a loaded machine.
t_pg_config "$T_TMP/migd.conf" "[tables]" "insert_only = public.zlog" "[backfill]" "parallel = 1" "rows_per_second = 20000"
sed -i '0,/^parallel = 2$/{/^parallel = 2$/d}' "$T_TMP/migd.conf"

writer() {
	local i=0
	while [[ ! -f $T_TMP/stop_writer ]]; do
		i=$((i + 1))
		# Touch rows everywhere in the key space, so chunks copied after the
		# snapshot is gone see changes that replay must also apply.
		harness_sql SRC "BEGIN;
UPDATE accounts SET balance = balance + 1 WHERE id = (random() * 150000)::int + 1;
DELETE FROM accounts WHERE id = (random() * 150000)::int + 1;
INSERT INTO accounts VALUES (200000 + $i, 'n', $i);
INSERT INTO zlog (what) VALUES ('live $i');
UPDATE accounts SET id = id + 1000000 WHERE id = (random() * 150000)::int + 1;
COMMIT;" >/dev/null 2>&1 || true
	done
}
writer &
WRITER=$!
t_on_exit "touch $T_TMP/stop_writer; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"

migd_start "$T_TMP/migd.conf"
wait_for 60 '[[ $(mctl --json backfill 2>/dev/null | jfield .backfill.chunks_done) -ge 10 ]]' ||
	fail "backfill did not get going: $(mctl backfill)"
expect_rc 0 mctl backfill pause
assert_contains "$OUT" "[PAUSED]" "pause shown"
wait_for 20 '[[ $(mctl --json backfill | jfield .backfill.chunks_running) == 0 ]]' ||
	fail "running chunks did not finish after pause"
d1=$(mctl --json backfill | jfield .backfill.chunks_done)
sleep 1.5
d2=$(mctl --json backfill | jfield .backfill.chunks_done)
assert_eq "$d2" "$d1" "chunks done while paused"
assert_eq "$(migd_phase)" backfilling "phase while paused"
as_nobody() { runuser -u nobody -- "$MIGCTL_BIN" -s "$T_SOCK" "$@"; }
chmod 666 "$T_SOCK"
expect_rc 1 as_nobody backfill resume
assert_contains "$OUT" "needs an operator" "resume by a reader"
ok "migctl backfill pause: running chunks finish, no new ones start ($d1 done); readers cannot resume"

before=$(harness_sql TGT "SELECT string_agg(chunk_no || ':' || finished_at, ',' ORDER BY chunk_no) FROM migd.chunks WHERE state = 'done' AND table_name = 'public.accounts'")
assert_eq "$(harness_sql TGT "SELECT state FROM migd.chunks WHERE table_name = 'public.zlog'")" pending \
	"the keyless table's chunk before the kill"
live_before=$(harness_sql SRC "SELECT count(*) FROM zlog WHERE what LIKE 'live %'")
kill -KILL "$MIGD_PID"
wait "$MIGD_PID" 2>/dev/null || true
MIGD_PID=
ok "kill -9 while paused: the exported snapshot is gone with the process"

migd_start "$T_TMP/migd.conf"
wait_phase 120 'catching_up|synced'
after=$(harness_sql TGT "SELECT string_agg(chunk_no || ':' || finished_at, ',' ORDER BY chunk_no) FROM migd.chunks WHERE state = 'done' AND table_name = 'public.accounts' AND chunk_no <= $(( $(tr ',' '\n' <<<"$before" | wc -l) - 1 ))")
assert_eq "$after" "$before" "chunks done before the kill (finished_at unchanged)"
[[ $live_before -gt 0 ]] || fail "no keyless row was written between the capture and the kill"
zpos=$(harness_sql TGT "SELECT copied_at FROM migd.chunks WHERE table_name = 'public.zlog'")
assert_contains "$zpos" "pg:" "the keyless table's copy position in the ledger"
[[ $(harness_sql SRC "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'migd_bf_%'") == 0 ]] ||
	fail "the temporary slot outlived the copy"
ok "after the restart the $d1 done chunks were not copied again; the rest were"
wait_phase 60 synced
sleep 1
touch "$T_TMP/stop_writer"
wait "$WRITER" || true
wait_caught_up 60
assert_same_table accounts id
assert_same_table zlog what
assert_eq "$(harness_sql TGT "SELECT count(*) - count(DISTINCT what) FROM zlog")" 0 "doubled zlog rows"
ok "without the snapshot, replay from the captured position converged: identical row for row (the keyless table copied at $zpos, $live_before of its rows written before the kill, none doubled)"
migd_stop 0
