#!/usr/bin/env bash
# MariaDB -> PostgreSQL freeze, cutover and rollback on real servers, with
# an application writing all along as MariaDB user `app` (no READ ONLY
# ADMIN) and PostgreSQL role `app`, where the flip hook points it:
#   freeze     the source goes read_only (the app's write is refused, its
#              sessions ended), the target is protected, drained to the
#              source's binlog end; a second user with READ_ONLY ADMIN
#              writes through read_only: a freeze violation closes the
#              gate; unfreeze and freeze again at a new position reopen it
#   cutover    kill -9 at the cutover-intent point: the restart finishes the
#              flip (reverse slot, the hook once with the binlog freeze
#              position, watching); the target's sequence continues after
#              the source's AUTO_INCREMENT; the source stays read_only
#   reverse    the application's writes on the target reach MariaDB
#              through the MariaDB sink
#   rollback   the target frozen and drained, read_only lifted on the
#              source; both sides identical row for row, no target-only
#              write lost
#   complete   a second migration of the same tables, killed at the
#              freeze-intent point and restarted (the freeze finished),
#              flips and completes: the reverse slot dropped, the source
#              left read_only
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair mariadb postgresql

harness_sql SRC "CREATE TABLE accounts (id bigint PRIMARY KEY, balance decimal(12,2) NOT NULL,
	note varchar(100));
CREATE TABLE events (id bigint AUTO_INCREMENT PRIMARY KEY, what varchar(100) NOT NULL);
INSERT INTO accounts SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_2000;
INSERT INTO events (what) SELECT CONCAT('e', seq) FROM seq_1_to_100;
CREATE USER app@'%' IDENTIFIED BY 'app';
GRANT SELECT, INSERT, UPDATE, DELETE ON test.* TO app@'%';
CREATE USER adm@'%' IDENTIFIED BY 'adm';
GRANT SELECT, INSERT, UPDATE, DELETE ON test.* TO adm@'%';
GRANT READ_ONLY ADMIN ON *.* TO adm@'%';"
harness_sql TGT "CREATE ROLE app LOGIN;
CREATE SCHEMA test;
CREATE TABLE test.accounts (id bigint PRIMARY KEY, balance numeric(12,2) NOT NULL,
	note varchar(100));
CREATE TABLE test.events (id bigserial PRIMARY KEY, what varchar(100) NOT NULL);
GRANT USAGE ON SCHEMA test TO app;
GRANT SELECT, INSERT, UPDATE, DELETE ON test.accounts, test.events TO app;
GRANT USAGE ON SEQUENCE test.events_id_seq TO app;"
my_as() { # user sql: as that MariaDB user over TCP
	mariadb --no-defaults -N -B -h 127.0.0.1 -P "$SRC_PORT" -u "$1" -p"$1" test -e "$2"
}
APP_TGT="host=127.0.0.1 port=$TGT_PORT user=app dbname=postgres"

# The hooks log every run and point the application at the new owner.  After
# the rollback it is left stopped: writes on the source after rolled_back are
# replicated nowhere and would spoil the row-for-row comparison.
cat >"$T_TMP/hook.sh" <<HOOK
#!/bin/sh
echo "\$1 \$MIGD_SOURCE_POS \$MIGD_TARGET_POS" >>"$T_TMP/hooks.log"
case \$1 in flip) echo TGT ;; rollback) echo NONE ;; esac >"$T_TMP/owner"
HOOK
chmod 755 "$T_TMP/hook.sh"
: >"$T_TMP/hooks.log"
echo SRC >"$T_TMP/owner"

# MariaDB validation is being built separately: the gate requires none here.
t_pg_config "$T_TMP/migd.conf" "[freeze]" "roles = app" "drain_timeout = 30s" \
	"[gate]" "require_validation =" "[hooks]" "flip = $T_TMP/hook.sh flip" \
	"rollback = $T_TMP/hook.sh rollback" "timeout = 10s"
sed -i '0,/^engine = postgresql$/s//engine = mariadb/; s/^include = public\.\*$/include = test.*/' "$T_TMP/migd.conf"

app_write() { # side sql: one application transaction on that side
	case $1 in
	SRC) my_as app "$2" >/dev/null 2>&1 ;;
	TGT) psql -X -q "$APP_TGT" -c "$2" >/dev/null 2>&1 ;;
	*) false ;;
	esac
}
# The application: one transaction at a time where $T_TMP/owner points; a
# refused one (frozen, session ended) is retried, a committed one logged by side.
# $1: where its numbering starts (its inserted keys are 100000 + that and up).
writer() {
	local i=${1:-0} side sql
	while [[ ! -f $T_TMP/stop_writer ]]; do
		side=$(cat "$T_TMP/owner")
		i=$((i + 1))
		sql="BEGIN;
UPDATE test.accounts SET balance = balance + 1 WHERE id = $((RANDOM % 2000 + 1));
INSERT INTO test.accounts VALUES ($((100000 + i)), $i, 'w $i $side');
DELETE FROM test.accounts WHERE id = $((RANDOM % 2000 + 1));
INSERT INTO test.events (what) VALUES ('w $i $side');
COMMIT;"
		if app_write "$side" "$sql"; then
			echo "$side" >>"$T_TMP/writes"
		else
			sleep 0.05
		fi
	done
}
writes() { grep -c "^$1\$" "$T_TMP/writes" 2>/dev/null || true; }
more_writes() { # side n: waits until n more writes committed there
	local want=$(($(writes "$1") + $2))
	wait_for 30 '(( $(writes '"$1"') >= '"$want"' ))' || fail "the application did not write on $1"
}
: >"$T_TMP/writes"
writer &
WRITER=$!
t_on_exit "touch $T_TMP/stop_writer; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"

ACC_MY="CONCAT_WS('|', id, balance, COALESCE(note, 'N'))"
ACC_PG="concat_ws('|', id, balance, coalesce(note, 'N'))"
EV_MY="CONCAT_WS('|', id, what)"
EV_PG="concat_ws('|', id, what)"
read_only() { harness_sql SRC "SELECT @@global.read_only"; }
row() { harness_sql TGT "SELECT phase || '|' || owner || '|' || coalesce(pending_op, '-') FROM migd.migration WHERE name = 't'"; }
crit() { # criterion field
	{ mctl --json gate || true; } | python3 -c '
import json, sys
g = json.load(sys.stdin)
print([c for c in g["criteria"] if c["name"] == sys.argv[1]][0][sys.argv[2]])' "$1" "$2"
}

MIGD_CRASH_AT=cutover-intent migd_start "$T_TMP/migd.conf"
wait_phase 90 synced
more_writes SRC 20

# An application session with an open write transaction when the freeze comes.
my_as app "BEGIN; UPDATE accounts SET balance = balance WHERE id = 1; SELECT SLEEP(30); COMMIT;" \
	>"$T_TMP/app_session.log" 2>&1 &
APPSESS=$!
t_on_exit "kill $APPSESS 2>/dev/null"
wait_for 10 '[[ $(harness_sql SRC "SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = '"'app'"' AND INFO LIKE '"'%SLEEP%'"'") == 1 ]]' ||
	fail "the application session did not start"
expect_rc 0 mctl freeze
assert_contains "$OUT" "phase      frozen" "phase after freeze"
assert_contains "$OUT" "target drained" "drained"
assert_contains "$OUT" "freeze enforced" "enforced"
assert_contains "$OUT" "source: read_only on" "source read_only"
if ! [[ $OUT =~ read_only\ on,\ ([0-9]+)\ sessions\ ended ]] || ((BASH_REMATCH[1] < 1)); then
	fail "the application's open session was not ended: $OUT"
fi
wait "$APPSESS" 2>/dev/null || true
assert_contains "$(cat "$T_TMP/app_session.log")" "Lost connection" "open writer session ended"
assert_contains "$OUT" "user 'adm'@'%' (not frozen) has READ_ONLY ADMIN" "writer through read_only listed"
assert_contains "$OUT" "target: " "target frozen too"
assert_eq "$(read_only)" 1 "read_only on the source"
my_as app "INSERT INTO accounts VALUES (99999, 1, 'x')" 2>"$T_TMP/deny" &&
	fail "the frozen user wrote on the source"
assert_contains "$(cat "$T_TMP/deny")" "read-only" "source write refused"
psql -X -q "$APP_TGT" -c "INSERT INTO test.accounts VALUES (99999, 1, 'x')" 2>"$T_TMP/deny" &&
	fail "the application wrote on the target before the flip"
assert_contains "$(cat "$T_TMP/deny")" "permission denied" "target write refused"
final=$(mctl --json phase | jfield .freeze.final_position)
assert_contains "$final" "binlog:mariadb-bin." "final position in the binlog's form"
assert_eq "$(harness_sql TGT "SELECT freeze_pos FROM migd.migration WHERE name = 't'")" "$final" "freeze position recorded"
wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not open: $(mctl gate || true)"
assert_contains "$(mctl gate)" "final source position $final" "gate: final position reached"
ok "freeze: read_only on the source (the app refused), the target protected, drained to $final, gate open"

# A user with READ_ONLY ADMIN writes through read_only: a freeze violation.
my_as adm "UPDATE accounts SET note = 'adm after the freeze' WHERE id = 7"
wait_for 20 '[[ $(crit freeze_violations value) == 1 ]]' ||
	fail "the freeze violation was not counted: $(mctl gate || true)"
expect_rc 5 mctl gate
assert_contains "$OUT" "NO   freeze_violations" "violation closes the gate"
assert_contains "$OUT" "changed test.accounts" "violation detail"
assert_contains "$(cat "$T_TMP/migd.log")" "event=freeze_violation" "violation logged"
assert_eq "$(harness_sql TGT "SELECT count(*) || ' ' || freeze_pos FROM migd.freeze_violations GROUP BY freeze_pos")" "1 $final" "violation recorded"
assert_eq "$(harness_sql TGT "SELECT note FROM test.accounts WHERE id = 7")" "adm after the freeze" "the violating write applied"
ok "a write through read_only after the freeze is a freeze violation (logged, recorded, applied) and closes the gate"

expect_rc 0 mctl unfreeze
assert_eq "$(read_only)" 0 "read_only lifted by unfreeze"
assert_eq "$(migd_phase)" synced "phase after unfreeze"
more_writes SRC 5
# A frozen user that can write through read_only: the freeze is not enforced.
harness_sql SRC "GRANT READ_ONLY ADMIN ON *.* TO app@'%'"
expect_rc 0 mctl freeze
assert_contains "$OUT" "freeze NOT fully enforced" "not enforced"
assert_contains "$OUT" "NOT ENFORCED: user 'app'@'%' can still write: has READ_ONLY ADMIN" "the frozen user listed"
expect_rc 5 mctl gate
assert_contains "$OUT" "NO   freeze_enforced" "the gate says so"
harness_sql SRC "REVOKE READ_ONLY ADMIN ON *.* FROM app@'%'"
harness_sql SRC "SET GLOBAL read_only = OFF"
expect_rc 1 mctl cutover
assert_contains "$OUT" "read_only is off" "cutover refused when read_only was turned off"
expect_rc 0 mctl unfreeze
# The same privilege through a role granted to a role (SET ROLE enables it).
harness_sql SRC "CREATE ROLE ro_admin; GRANT READ_ONLY ADMIN ON *.* TO ro_admin;
CREATE ROLE wrap_r; GRANT ro_admin TO wrap_r; GRANT wrap_r TO app@'%'"
expect_rc 0 mctl freeze
assert_contains "$OUT" "freeze NOT fully enforced" "not enforced through a role"
assert_contains "$OUT" "NOT ENFORCED: user 'app'@'%' can still write: has READ_ONLY ADMIN through role wrap_r" \
	"the frozen user listed with the role"
harness_sql SRC "REVOKE wrap_r FROM app@'%'"
expect_rc 0 mctl unfreeze
ok "unfreeze lifts read_only; a frozen user with READ_ONLY ADMIN (granted, or through nested roles) makes the freeze not enforced, and the gate says so; no cutover once read_only is off"

more_writes SRC 5
expect_rc 0 mctl freeze
assert_contains "$OUT" "freeze enforced" "enforced again"
final=$(mctl --json phase | jfield .freeze.final_position)
wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not reopen: $(mctl gate || true)"
assert_eq "$(crit freeze_violations value)" 0 "no violation after the new freeze position"
ok "a new freeze at $final reopens the gate"

# kill -9 right after the cutover intent is journaled.  (Should the gate
# close for an instant, the cutover is refused: wait and ask again.)
for try in 1 2 3 4 5; do
	rc=0
	OUT=$(mctl cutover 2>&1) || rc=$?
	[[ $rc == 1 && $OUT == *"the gate is closed"* ]] || break
	wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not reopen: $(mctl gate || true)"
done
assert_eq "$rc" 3 "migctl cutover when migd dies (output: $OUT)"
rc=0
wait "$MIGD_PID" || rc=$?
MIGD_PID=
assert_eq "$rc" 137 "migd killed at the crash point"
assert_contains "$(grep 'event=crash_point' "$T_TMP/migd.log")" "point=cutover-intent" "crash point"
assert_eq "$(row)" "cutover|source|cutover" "row after the crash"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_replication_slots")" 0 "no reverse slot yet"
assert_eq "$(grep -c '^flip' "$T_TMP/hooks.log" || true)" 0 "no flip hook yet"
assert_eq "$(read_only)" 1 "the source stays read_only"
migd_start "$T_TMP/migd.conf"
wait_phase 60 watching
assert_eq "$(row)" "watching|target|-" "row after the restart"
assert_eq "$(grep -c '^flip' "$T_TMP/hooks.log")" 1 "the flip hook ran once"
assert_contains "$(cat "$T_TMP/hooks.log")" "flip $final 0/" "the hook got the binlog freeze position"
assert_eq "$(harness_sql TGT "SELECT source_pos FROM migd.journal WHERE name = 't' AND to_phase = 'watching'")" "$final" "journal: the source stands at the freeze position"
assert_eq "$(read_only)" 1 "the source stays read_only after the flip"
ok "kill -9 at cutover-intent: the restart finishes the flip (hook once with $final); the source stays read_only"

more_writes TGT 20
# The sequence was set from events' AUTO_INCREMENT at the flip: the target's
# inserts continue after every source row.
next=$(grep -o 'event=sequence table="test"."events" sequence=test.events_id_seq next=[0-9]*' "$T_TMP/migd.log")
next=${next##*=}
[[ -n $next ]] || fail "no sequence set at the flip"
src_max=$(harness_sql TGT "SELECT max(id) FROM test.events WHERE what NOT LIKE 'w % TGT'")
tgt_min=$(harness_sql TGT "SELECT min(id) FROM test.events WHERE what LIKE 'w % TGT'")
((src_max < next && next <= tgt_min)) || fail "sequence: source rows up to $src_max, set to $next, target rows from $tgt_min"

my_as app "INSERT INTO accounts VALUES (99998, 1, 'x')" 2>/dev/null && fail "the old owner took an application write"
st=$(mctl --json status)
assert_eq "$(jfield .migration_state.reverse.running <<<"$st")" true "reverse running"
assert_contains "$(jfield .migration_state.reverse.applied_pos <<<"$st")" "pg:" "reverse position in the target's form"
last=$(harness_sql TGT "SELECT max(id) FROM test.events WHERE what LIKE 'w % TGT'")
wait_for 30 '[[ $(harness_sql SRC "SELECT count(*) FROM events WHERE id = '"$last"'") == 1 ]]' ||
	fail "reverse replication did not bring the target's writes to MariaDB: $(mctl status)"
ok "the application writes on the target (ids from $next on); reverse replication carries its writes into MariaDB"

expect_rc 0 mctl rollback
assert_contains "$OUT" "phase      rolled_back" "phase after rollback"
touch "$T_TMP/stop_writer"
wait "$WRITER" || true
assert_eq "$(read_only)" 0 "read_only lifted by the rollback"
assert_eq "$(grep -c '^rollback' "$T_TMP/hooks.log")" 1 "the rollback hook ran"
assert_same_rows accounts "$ACC_MY" "$ACC_PG"
assert_same_rows events "$EV_MY" "$EV_PG"
ntgt=$(writes TGT)
assert_eq "$(harness_sql SRC "SELECT count(*) FROM events WHERE what LIKE 'w % TGT'")" "$ntgt" "every target write on the source"
psql -X -q "$APP_TGT" -c "INSERT INTO test.accounts VALUES (99997, 1, 'x')" 2>/dev/null &&
	fail "the target still takes writes after the rollback"
my_as app "INSERT INTO accounts VALUES (99997, 1, 'source again')" || fail "the source refuses the app after the rollback"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_replication_slots")" 0 "reverse slot dropped"
assert_contains "$(mctl journal)" "rolling_back -> rolled_back" "journal"
ok "rollback: read_only lifted, MariaDB and PostgreSQL identical row for row, all $ntgt target-only writes on the source"
migd_stop 0

# A second migration of the same tables: a plain cutover, then complete.
# (The rollback left the target frozen: the operator gives the grants back.)
harness_sql TGT "TRUNCATE test.accounts, test.events;
GRANT SELECT, INSERT, UPDATE, DELETE ON test.accounts, test.events TO app"
sed 's/^name = t$/name = t2/' "$T_TMP/migd.conf" >"$T_TMP/t2.conf"
echo SRC >"$T_TMP/owner"
rm -f "$T_TMP/stop_writer"
: >"$T_TMP/writes"
writer 50000 &
WRITER=$!
t_on_exit "touch $T_TMP/stop_writer; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"
MIGD_CRASH_AT=freeze-intent migd_start "$T_TMP/t2.conf"
wait_phase 90 synced
more_writes SRC 10
expect_rc 3 mctl freeze
rc=0
wait "$MIGD_PID" || rc=$?
MIGD_PID=
assert_eq "$rc" 137 "migd killed at the crash point"
assert_contains "$(grep 'event=crash_point' "$T_TMP/migd.log" | tail -n 1)" "point=freeze-intent" "crash point"
assert_eq "$(harness_sql TGT "SELECT phase || '|' || coalesce(pending_op, '-') FROM migd.migration WHERE name = 't2'")" "synced|freeze" "row after the crash"
assert_eq "$(read_only)" 0 "not frozen before the crash point"
migd_start "$T_TMP/t2.conf"
wait_phase 30 frozen
assert_eq "$(read_only)" 1 "the restart finished the freeze"
wait_for 30 '[[ $(mctl --json phase | jfield .freeze.enforced) == true ]]' ||
	fail "the recovered freeze is not enforced: $(mctl --json phase)"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM migd.journal WHERE name = 't2' AND to_phase = 'frozen'")" 1 "frozen journaled once"
wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not open: $(mctl gate || true)"
ok "kill -9 at freeze-intent: the restart finishes the freeze (read_only, enforced, journaled once)"

expect_rc 0 mctl cutover
assert_contains "$OUT" "phase      watching" "phase after cutover"
assert_eq "$(read_only)" 1 "the source stays read_only after the flip"
more_writes TGT 10
touch "$T_TMP/stop_writer"
wait "$WRITER" || true
wait_for 30 '[[ $(rows_my accounts "$ACC_MY") == "$(rows_pg accounts "$ACC_PG")" && $(rows_my events "$EV_MY") == "$(rows_pg events "$EV_PG")" ]]' ||
	fail "reverse replication did not catch up: $(mctl status)"
expect_rc 0 mctl complete
assert_eq "$(migd_phase)" "done" "phase after complete"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_replication_slots")" 0 "reverse slot dropped"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_publication")" 0 "reverse publication dropped"
assert_eq "$(read_only)" 1 "the retired source stays read_only"
assert_same_rows accounts "$ACC_MY" "$ACC_PG"
assert_same_rows events "$EV_MY" "$EV_PG"
ok "a plain cutover, reverse replication caught up, complete: reverse slot and publication dropped, the source retired read_only"
migd_stop 0
