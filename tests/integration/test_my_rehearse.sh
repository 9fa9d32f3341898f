#!/usr/bin/env bash
# Rehearsal of the reverse path for the pairs with MariaDB, on real servers,
# while the application writes: `migctl rehearse` checks both sides with the
# engine's own preconditions, then carries a probe row target -> source
# through the reader and sink the reverse replication uses, and reports each
# step; the migration is unaffected (rows identical after) and nothing is
# left behind (probe rows, the sink's state, slot, spool).
#   MariaDB -> PostgreSQL  the PostgreSQL target's slot (pgoutput) into the
#                          MariaDB source through mysink: passes; fails at
#                          source_write_privileges once migd's DELETE is
#                          revoked there, at probe_replicated when the source
#                          refuses the row; kill -9 with the probe written, the
#                          restart drops the slot; passes again while frozen
#                          (the sink writes through read_only)
#   PostgreSQL -> MariaDB  the MariaDB target's binlog (mystream) into the
#                          PostgreSQL source through pgsink: passes; fails at
#                          target_binlog with binlog_row_image=MINIMAL;
#                          kill -9 with the probe written, the restart removes
#                          the target's probe row, the next rehearsal the rest
#   MariaDB -> MariaDB     binlog into mysink: passes; fails at
#                          source_read_only_admin without READ_ONLY ADMIN
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair mariadb postgresql

MY_DSN=$SRC_DSN PG_DSN=$TGT_DSN

harness_sql SRC "CREATE TABLE accounts (id bigint PRIMARY KEY, v int NOT NULL, note varchar(100));
INSERT INTO accounts SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_2000;
CREATE DATABASE shop;
CREATE TABLE shop.items (id bigint PRIMARY KEY, v int NOT NULL, note text);"
harness_sql TGT "CREATE ROLE app LOGIN;
CREATE SCHEMA test;
CREATE TABLE test.accounts (id bigint PRIMARY KEY, v int NOT NULL, note varchar(100));
GRANT USAGE ON SCHEMA test TO app;
GRANT SELECT, INSERT, UPDATE, DELETE ON test.accounts TO app;
CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO items SELECT g, g, 'i' || g FROM generate_series(1, 2000) g;"

# A migration named $1 from $2 to $3 (engines), tables $4, extra lines after.
config() {
	local name=$1 src=$2 tgt=$3 inc=$4
	shift 4
	local sd=$MY_DSN td=$PG_DSN
	[[ $src == postgresql ]] && sd=$PG_DSN
	[[ $tgt == mariadb ]] && td=$MY_DSN
	SRC_DSN=$sd TGT_DSN=$td t_pg_config "$T_TMP/$name.conf" "[gate]" "require_validation =" "$@"
	sed -i "s/^name = t$/name = $name/; s|^state_dir = .*|state_dir = $T_TMP/state-$name|;
		s/^include = public\.\*$/include = $inc/" "$T_TMP/$name.conf"
	sed -i "0,/^engine = postgresql$/s//engine = $src/" "$T_TMP/$name.conf"
	sed -i "/^\[target\]$/,/^engine/ s/^engine = postgresql$/engine = $tgt/" "$T_TMP/$name.conf"
}

crit() { # criterion field (the gate may be closed: exit 5)
	{ mctl --json gate || true; } | python3 -c '
import json, sys
g = json.load(sys.stdin)
c = [c for c in g["criteria"] if c["name"] == sys.argv[1]][0][sys.argv[2]]
print(json.dumps(c) if isinstance(c, bool) else c)' "$1" "$2"
}
verdicts() { # "name verdict" per step of the last rehearsal, from status
	mctl --json status | python3 -c '
import json, sys
r = json.load(sys.stdin)["migration_state"]["rehearsal"]
for s in r["steps"]:
    assert isinstance(s["seconds"], float), s
    print(s["name"], s["verdict"])'
}
all_passed() { for s in $1; do echo "$s passed"; done; }

# Rows of a table in one canonical text per engine (SRC is the MariaDB server, TGT PostgreSQL), counted and hashed.
my_digest() { harness_sql SRC "SET SESSION group_concat_max_len = 1073741824; SELECT CONCAT(COUNT(*), ' ', MD5(COALESCE(GROUP_CONCAT(CONCAT_WS('|', id, v, COALESCE(note, 'N')) ORDER BY id SEPARATOR '\n'), ''))) FROM $1"; }
pg_digest() { harness_sql TGT "SELECT count(*) || ' ' || md5(coalesce(string_agg(concat_ws('|', id, v, coalesce(note, 'N')), E'\n' ORDER BY id), '')) FROM $1"; }
wait_same() { # my-table pg-table what: the target caught up, identical row for row
	wait_for 60 '[[ $(my_digest '"$1"') == $(pg_digest '"$2"') ]]' ||
		fail "$3: $1 [$(my_digest "$1")] and $2 [$(pg_digest "$2")] differ"
}

# The application: one transaction at a time on $1 (MY or PG) until stop_writer.
writer() {
	local side=$1 i=0
	while [[ ! -f $T_TMP/stop_writer ]]; do
		i=$((i + 1))
		if [[ $side == MY ]]; then
			harness_sql SRC "BEGIN; UPDATE accounts SET v = v + 1 WHERE id = $((RANDOM % 2000 + 1));
INSERT INTO accounts VALUES ($((100000 + i)), $i, 'w$i'); DELETE FROM accounts WHERE id = $((RANDOM % 2000 + 1)); COMMIT;"
		else
			harness_sql TGT "BEGIN; UPDATE items SET v = v + 1 WHERE id = $((RANDOM % 2000 + 1));
INSERT INTO items VALUES ($((100000 + i)), $i, 'w$i'); DELETE FROM items WHERE id = $((RANDOM % 2000 + 1)); COMMIT;"
		fi >/dev/null 2>&1 && echo "$i" >"$T_TMP/writes.new" && mv -f "$T_TMP/writes.new" "$T_TMP/writes" # never read half-written
		sleep 0.02
	done
}
start_writer() {
	rm -f "$T_TMP/stop_writer"
	echo 0 >"$T_TMP/writes"
	writer "$1" &
	WRITER=$!
	t_on_exit "touch $T_TMP/stop_writer; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"
	wait_for 20 '(( $(cat $T_TMP/writes) >= 5 ))' || fail "the application did not write"
}
stop_writer() {
	touch "$T_TMP/stop_writer"
	wait "$WRITER" || true
}
writes() { cat "$T_TMP/writes"; }

# Nothing of migration $1's rehearsals is left on either side, nor in the state dir.
nothing_left() { # name what
	local n=$1
	assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'migd\_${n}\_rehearse'")" 0 "$2: rehearsal slot"
	assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_publication WHERE pubname = 'migd_${n}_rehearse'")" 0 "$2: rehearsal publication"
	assert_eq "$(harness_sql TGT "SELECT count(*) FROM migd.rehearse_probe")" 0 "$2: probe rows on PostgreSQL"
	assert_eq "$(harness_sql SRC "SELECT count(*) FROM migd.rehearse_probe")" 0 "$2: probe rows on MariaDB"
	local t
	for t in progress failed_records parked; do
		assert_eq "$(harness_sql TGT "SELECT count(*) FROM migd.$t WHERE name = '$n:rehearse'")" 0 "$2: the sink's migd.$t rows on PostgreSQL"
		assert_eq "$(harness_sql SRC "SELECT count(*) FROM migd.$t WHERE name = '$n:rehearse'")" 0 "$2: the sink's migd.$t rows on MariaDB"
	done
	[[ ! -e $T_TMP/state-$n/spool-$n-rehearse ]] || fail "$2: the scratch spool is left in state_dir"
}

# kill -9 at crash point $2 during a rehearsal of config $1; migd is started again.
crash_in_rehearsal() {
	migd_stop 0
	MIGD_CRASH_AT=$2 migd_start "$1"
	wait_phase 60 synced
	expect_rc 3 mctl rehearse
	local rc=0
	wait "$MIGD_PID" || rc=$?
	MIGD_PID=
	assert_eq "$rc" 137 "migd died by SIGKILL at $2"
	assert_contains "$(cat "$T_TMP/migd.log")" "event=crash_point point=$2" "crash point logged"
}
MIGD_GRANTEES="'migd'@'%', 'migd'@'127.0.0.1', 'migd'@'localhost'"

# --- MariaDB -> PostgreSQL ---------------------------------------------------------
A_STEPS="target_wal_level target_replication_role target_free_slot target_publication
source_write_privileges source_read_only_admin source_migd_database rehearsal_slot probe_write
probe_replicated cleanup"
config a mariadb postgresql 'test.*' "[freeze]" "roles = app" "drain_timeout = 30s"
harness_sql SRC "CREATE USER app@'%' IDENTIFIED BY 'app'; GRANT SELECT, INSERT, UPDATE, DELETE ON test.* TO app@'%'"
migd_start "$T_TMP/a.conf"
wait_phase 90 synced
start_writer MY
w0=$(writes)
expect_rc 0 mctl rehearse
assert_contains "$OUT" "rehearsal  PASSED: the reverse path target -> source works" "verdict"
echo "$OUT"
assert_contains "$OUT" "MySQL/MariaDB sink" "the probe went through the MariaDB sink"
assert_eq "$(verdicts)" "$(all_passed "$A_STEPS")" "every step, in order, passed"
(($(writes) > w0)) || fail "no application write during the rehearsal"
assert_eq "$(migd_phase)" synced "phase after the rehearsal"
assert_eq "$(crit reverse_path_ready value)" "rehearsal passed" "gate value"
assert_eq "$(harness_sql TGT "SELECT count(*), bool_and(passed) FROM migd.rehearsal WHERE name = 'a'")" "1	t" "recorded on the target"
nothing_left a "after a rehearsal that passed"
ok "MariaDB -> PostgreSQL: rehearse passes under live writes (slot, pgoutput, spool, applier, MariaDB sink), every step with its verdict, nothing left"

# The reverse sink may not delete on the source: the check names it, the probe is skipped.
harness_sql SRC "REVOKE DELETE ON *.* FROM $MIGD_GRANTEES"
expect_rc 5 mctl rehearse
harness_sql SRC "GRANT DELETE ON *.* TO $MIGD_GRANTEES"
assert_contains "$OUT" "rehearsal  FAILED" "verdict without DELETE"
assert_contains "$OUT" "DELETE command denied to user 'migd'" "the server's refusal"
v=$(verdicts)
for s in "target_wal_level passed" "source_write_privileges failed" "source_read_only_admin passed" \
	"rehearsal_slot skipped" "probe_replicated skipped" "cleanup passed"; do
	assert_contains "$v" "$s" "steps without DELETE on the source"
done
assert_eq "$(crit reverse_path_ready ok)" false "a failed rehearsal closes the gate"
assert_contains "$(crit reverse_path_ready detail)" "failed at source_write_privileges: the reverse sink could not write: DELETE command denied" "gate reason"
nothing_left a "after a failed check"
ok "MariaDB -> PostgreSQL: without DELETE on the source, the rehearsal fails at source_write_privileges with the server's reason; the gate closes"

# The MariaDB source refuses the probe row: the failure shows after the slot existed; the
# sink's failed record and everything else are cleaned up.
harness_sql SRC "ALTER TABLE migd.rehearse_probe ADD CONSTRAINT probe_refused CHECK (token = 'never')"
expect_rc 5 mctl rehearse
harness_sql SRC "ALTER TABLE migd.rehearse_probe DROP CONSTRAINT probe_refused"
assert_contains "$OUT" "applying to the source" "the sink's refusal"
assert_contains "$OUT" "probe_refused" "the constraint named"
v=$(verdicts)
for s in "rehearsal_slot passed" "probe_write passed" "probe_replicated failed" "cleanup passed"; do
	assert_contains "$v" "$s" "steps when the source refuses"
done
nothing_left a "after a failure mid-way"
ok "MariaDB -> PostgreSQL: the source refuses the probe: fails at probe_replicated with the reason; slot, rows and the sink's failed record removed"

crash_in_rehearsal "$T_TMP/a.conf" rehearse-probe
assert_eq "$(harness_sql TGT "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'migd_a_rehearse'")" 1 "the crash left the slot"
migd_start "$T_TMP/a.conf"
wait_for 15 '[[ $(harness_sql TGT "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '"'migd_a_rehearse'"'") == 0 ]]' ||
	fail "the rehearsal slot left by the crash was not dropped at start"
assert_contains "$(cat "$T_TMP/migd.log")" "status=leftovers_removed" "leftovers logged"
wait_phase 60 synced
assert_eq "$(harness_sql TGT "SELECT count(*) FROM migd.rehearse_probe")" 0 "the target's probe row removed at start"
expect_rc 0 mctl rehearse
nothing_left a "after a crash in the middle, a restart and a rehearsal"
ok "MariaDB -> PostgreSQL: kill -9 with the probe written: the restart drops slot, publication and probe row, the next rehearsal the source's rows"

stop_writer
wait_same accounts test.accounts "before the freeze"
expect_rc 0 mctl freeze
assert_eq "$(harness_sql SRC "SELECT @@global.read_only")" 1 "the source is read_only"
expect_rc 0 mctl rehearse
assert_contains "$OUT" "(phase frozen)" "rehearsed while frozen"
assert_contains "$OUT" "writes through read_only (now on)" "READ_ONLY ADMIN detail"
nothing_left a "after a rehearsal while frozen"
wait_for 30 'mctl gate >/dev/null 2>&1' || fail "the gate did not open: $(mctl gate || true)"
assert_contains "$(crit reverse_path_ready detail)" "(phase frozen): every step passed" "gate detail"
wait_same accounts test.accounts "after the rehearsals"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM migd.failed_records")" 0 "no failed record forward"
assert_eq "$(migd_phase)" frozen "phase"
expect_rc 0 mctl unfreeze
migd_stop 0
ok "MariaDB -> PostgreSQL: while frozen the probe goes through the source's read_only; the gate opens; rows identical"

# --- PostgreSQL -> MariaDB ---------------------------------------------------------
B_STEPS="target_binlog target_binlog_grants target_server_id target_tables
source_write_privileges source_migd_schema rehearsal_position probe_write probe_replicated cleanup"
config b postgresql mariadb 'public.*'
sed -i 's/^include = public\.\*$/include = public.*\ntarget_schema = shop/' "$T_TMP/b.conf"
migd_start "$T_TMP/b.conf"
wait_phase 90 synced
start_writer PG
w0=$(writes)
expect_rc 0 mctl rehearse
assert_contains "$OUT" "rehearsal  PASSED: the reverse path target -> source works" "verdict"
echo "$OUT"
assert_contains "$OUT" "binlog reader, spool, applier, PostgreSQL sink" "through the binlog reader"
assert_eq "$(verdicts)" "$(all_passed "$B_STEPS")" "every step, in order, passed"
(($(writes) > w0)) || fail "no application write during the rehearsal"
assert_eq "$(harness_sql SRC "SELECT COUNT(*), MIN(passed) FROM migd.rehearsal WHERE name = 'b'")" "1	1" "recorded on the target"
assert_eq "$(crit reverse_path_ready value)" "rehearsal passed" "gate value"
nothing_left b "after a rehearsal that passed"
ok "PostgreSQL -> MariaDB: rehearse passes under live writes (the target's binlog, spool, applier, PostgreSQL sink), nothing left"

harness_sql SRC "SET GLOBAL binlog_row_image = MINIMAL"
expect_rc 5 mctl rehearse
harness_sql SRC "SET GLOBAL binlog_row_image = FULL"
assert_contains "$OUT" "binlog_row_image is MINIMAL, must be FULL" "reason"
v=$(verdicts)
for s in "target_binlog failed" "target_binlog_grants passed" "source_write_privileges passed" \
	"rehearsal_position skipped" "probe_replicated skipped" "cleanup passed"; do
	assert_contains "$v" "$s" "steps with binlog_row_image=MINIMAL"
done
assert_contains "$(crit reverse_path_ready detail)" "failed at target_binlog" "gate reason"
nothing_left b "after a failed check"
ok "PostgreSQL -> MariaDB: binlog_row_image=MINIMAL on the target fails target_binlog, the probe is skipped"

crash_in_rehearsal "$T_TMP/b.conf" rehearse-probe
assert_eq "$(harness_sql SRC "SELECT count(*) FROM migd.rehearse_probe")" 1 "the crash left the target's probe row"
migd_start "$T_TMP/b.conf"
wait_phase 60 synced
assert_eq "$(harness_sql SRC "SELECT count(*) FROM migd.rehearse_probe")" 0 "the target's probe row removed at start"
[[ ! -e $T_TMP/state-b/spool-b-rehearse ]] || fail "the scratch spool left by the crash"
expect_rc 0 mctl rehearse
nothing_left b "after a crash in the middle, a restart and a rehearsal"
ok "PostgreSQL -> MariaDB: kill -9 with the probe written: the restart removes the target's probe row and the spool, the next rehearsal the rest"

stop_writer
wait_for 60 '[[ $(my_digest shop.items) == $(pg_digest items) ]]' ||
	fail "items differ: [$(pg_digest items)] [$(my_digest shop.items)]"
assert_eq "$(harness_sql SRC "SELECT COUNT(*) FROM migd.failed_records")" 0 "no failed record forward"
assert_eq "$(migd_phase)" synced "phase"
migd_stop 0
ok "PostgreSQL -> MariaDB: after the rehearsals under live writes, items identical row for row"

# --- MariaDB -> MariaDB ------------------------------------------------------------
harness_start_mariadb M2
harness_sql M2 "CREATE TABLE accounts (id bigint PRIMARY KEY, v int NOT NULL, note varchar(100))"
C_STEPS="target_binlog target_binlog_grants target_server_id target_tables source_write_privileges
source_read_only_admin source_migd_database rehearsal_position probe_write probe_replicated cleanup"
config c mariadb mariadb 'test.*'
sed -i "/^\[target\]$/,/^dsn/ s|^dsn = .*|dsn = $M2_DSN|" "$T_TMP/c.conf"
grep -q "^dsn = $M2_DSN" "$T_TMP/c.conf" || fail "config: target dsn not set"
m2_digest() { harness_sql M2 "SET SESSION group_concat_max_len = 1073741824; SELECT CONCAT(COUNT(*), ' ', MD5(COALESCE(GROUP_CONCAT(CONCAT_WS('|', id, v, COALESCE(note, 'N')) ORDER BY id SEPARATOR '\n'), ''))) FROM $1"; }
c_nothing_left() {
	assert_eq "$(harness_sql M2 "SELECT count(*) FROM migd.rehearse_probe")" 0 "$1: probe rows on the target"
	assert_eq "$(harness_sql SRC "SELECT count(*) FROM migd.rehearse_probe")" 0 "$1: probe rows on the source"
	local t
	for t in progress failed_records parked; do
		assert_eq "$(harness_sql SRC "SELECT count(*) FROM migd.$t WHERE name = 'c:rehearse'")" 0 "$1: the sink's migd.$t rows"
	done
	[[ ! -e $T_TMP/state-c/spool-c-rehearse ]] || fail "$1: the scratch spool is left in state_dir"
}
migd_start "$T_TMP/c.conf"
wait_phase 90 synced
start_writer MY
w0=$(writes)
expect_rc 0 mctl rehearse
echo "$OUT"
assert_contains "$OUT" "binlog reader, spool, applier, MySQL/MariaDB sink" "binlog into mysink"
assert_eq "$(verdicts)" "$(all_passed "$C_STEPS")" "every step, in order, passed"
(($(writes) > w0)) || fail "no application write during the rehearsal"
c_nothing_left "after a rehearsal that passed"
ok "MariaDB -> MariaDB: rehearse passes under live writes (the target's binlog, spool, applier, MariaDB sink), nothing left"

# Without READ_ONLY ADMIN the sink could not write into the source once it stays read_only.
harness_sql SRC "REVOKE READ_ONLY ADMIN ON *.* FROM $MIGD_GRANTEES"
expect_rc 5 mctl rehearse
harness_sql SRC "GRANT READ_ONLY ADMIN ON *.* TO $MIGD_GRANTEES"
assert_contains "$OUT" "lacks READ_ONLY ADMIN" "reason"
v=$(verdicts)
for s in "source_write_privileges passed" "source_read_only_admin failed" "probe_replicated skipped" \
	"cleanup passed"; do
	assert_contains "$v" "$s" "steps without READ_ONLY ADMIN"
done
c_nothing_left "after a failed check"
stop_writer
wait_for 60 '[[ $(my_digest accounts) == $(m2_digest accounts) ]]' ||
	fail "accounts differ: [$(my_digest accounts)] [$(m2_digest accounts)]"
assert_eq "$(migd_phase)" synced "phase"
migd_stop 0
ok "MariaDB -> MariaDB: without READ_ONLY ADMIN on the source the rehearsal fails at source_read_only_admin; rows identical after"
