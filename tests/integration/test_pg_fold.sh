#!/usr/bin/env bash
# PostgreSQL -> PostgreSQL: the applier folds a batch's changes per key (and
# sends them as multi-row statements).  Every case a wrong fold would get
# wrong, in one batch, then row for row against the source:
#   - one key updated many times in one source transaction and across several;
#   - insert -> delete -> insert (in one transaction and across), insert -> delete;
#   - unchanged-TOAST updates (partial images) after an insert, after a full
#     image, after another partial one that changed a different TOAST column,
#     around a delete; a key change that keeps a TOAST value;
#   - key-changing updates: away and back, a swap of two keys, a multi-row move;
#   - a target-only column (with a default) that tells an upsert from a
#     delete followed by an insert;
#   - a RELATION message (after DDL that changes no column) and TRUNCATE
#     between changes of the same table in one batch;
#   - tables that must not fold: a second unique index (a swap of unique
#     values would fail if reordered) and a trigger that fires for replica
#     sessions (it must see every change);
#   - kill -9 while folded batches are being applied;
#   - a refused change in a backlog, while later batches are already sent.
# Folding is proved to happen by the target's own row counters.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair postgresql postgresql

SCHEMA="
CREATE TABLE kv (id int PRIMARY KEY, n bigint NOT NULL, note text);
CREATE TABLE big (id int PRIMARY KEY, small text, doc1 text, doc2 text);
ALTER TABLE big ALTER COLUMN doc1 SET STORAGE EXTERNAL, ALTER COLUMN doc2 SET STORAGE EXTERNAL;
CREATE TABLE pair (a text, b int, v text, PRIMARY KEY (a, b));
CREATE TABLE tr (id int PRIMARY KEY, v text);
CREATE TABLE uniq (id int PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE audited (id int PRIMARY KEY, v int);
CREATE TABLE hot (id int PRIMARY KEY, n bigint);
CREATE TABLE ext (id int PRIMARY KEY, v text);
"
harness_sql SRC "$SCHEMA"
harness_sql TGT "$SCHEMA"
harness_sql TGT "ALTER TABLE ext ADD COLUMN tag text DEFAULT 'default'"
# doc values: 6000+ bytes stored out of line uncompressed, so an UPDATE that
# leaves them alone sends them as unchanged-TOAST markers.
harness_sql SRC "
CREATE FUNCTION doc(seed text) RETURNS text LANGUAGE sql AS
  \$\$ SELECT string_agg(md5(seed || g), '') FROM generate_series(1, 200) g \$\$;
INSERT INTO kv SELECT g, g, 'initial' FROM generate_series(1, 1000) g;
INSERT INTO big SELECT g, 's' || g, doc('a' || g), doc('b' || g) FROM generate_series(1, 20) g;
INSERT INTO pair SELECT 'x', g, 'v' || g FROM generate_series(1, 10) g;
INSERT INTO tr SELECT g, 'initial' FROM generate_series(1, 20) g;
INSERT INTO uniq VALUES (1, 'a@x'), (2, 'b@x');
INSERT INTO audited VALUES (1, 0), (2, 0);
INSERT INTO hot VALUES (1, 0), (2, 0);
INSERT INTO ext SELECT g, 'v' || g FROM generate_series(1, 10) g;
"
# On the target only: a trigger that fires for the applier's replica session.
harness_sql TGT "
CREATE SCHEMA tgtonly;
CREATE TABLE tgtonly.audit (id int, v int);
CREATE FUNCTION tgtonly.audit() RETURNS trigger LANGUAGE plpgsql AS
  \$\$ BEGIN INSERT INTO tgtonly.audit VALUES (NEW.id, NEW.v); RETURN NEW; END \$\$;
CREATE TRIGGER audit AFTER INSERT OR UPDATE ON audited FOR EACH ROW EXECUTE FUNCTION tgtonly.audit();
ALTER TABLE audited ENABLE ALWAYS TRIGGER audit;
"
# Long batches: everything below that is written within 2 s lands in one.
t_pg_config "$T_TMP/migd.conf"
sed -i 's/^batch_delay = .*/batch_delay = 2s/' "$T_TMP/migd.conf"
grep -qx 'batch_delay = 2s' "$T_TMP/migd.conf" || fail "batch_delay not set"

assert_all_same() {
	assert_same_table kv id
	assert_same_table big id
	assert_same_table pair "a, b"
	assert_same_table tr id
	assert_same_table uniq id
	assert_same_table audited id
	assert_same_table hot id
	assert_same_table "(SELECT id, v FROM ext) AS" id
}
# Row operations the target has done on a table (insert + update + delete),
# from its statistics; with migd stopped: a backend flushes them as it exits.
target_rowops() {
	local a b=x
	wait_for 20 '[[ $(harness_sql TGT "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '"'migd%'"'") == 0 ]]'
	until [[ ${a:-} == "$b" ]]; do
		a=$b
		sleep 0.5
		b=$(harness_sql TGT "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relname = '$1'")
	done
	echo "$a"
}
batch_failures() { grep -c 'apply: target:' "$T_TMP/migd.log" || true; }

migd_start "$T_TMP/migd.conf"
wait_phase 60 synced
migd_stop 0
ok "initial copy done (phase synced)"
kv0=$(target_rowops kv)
hot0=$(target_rowops hot)
# A target-only write: an upsert keeps it, a delete and insert resets it.
harness_sql TGT "UPDATE ext SET tag = 'target'"
audit0=$(harness_sql TGT "SELECT count(*) FROM tgtonly.audit")

# ---- round 1: a backlog built while migd is stopped, applied in one or two batches
# Fed on stdin: psql runs every statement outside BEGIN/COMMIT as its own transaction.
harness_sql SRC - >/dev/null <<'SQL'
-- one key, many times in one transaction, then across transactions
DO $$ BEGIN FOR i IN 1..200 LOOP UPDATE kv SET n = n + i, note = 'loop ' || i WHERE id = 1; END LOOP; END $$;
UPDATE kv SET n = n * 2 WHERE id = 2;
UPDATE kv SET n = n * 2, note = 'twice' WHERE id = 2;
UPDATE kv SET n = n * 2 WHERE id = 2;
BEGIN; UPDATE kv SET n = -n WHERE id BETWEEN 10 AND 400; UPDATE kv SET note = 'range' WHERE id BETWEEN 300 AND 700; COMMIT;
DO $$ BEGIN FOR i IN 1..300 LOOP UPDATE hot SET n = n + i WHERE id = 1; END LOOP; END $$;
UPDATE hot SET n = n + 1 WHERE id = 2;
UPDATE hot SET n = n + 1 WHERE id = 2;
UPDATE hot SET n = n + 1 WHERE id = 1;
-- insert -> delete -> insert, in one transaction and across
BEGIN; INSERT INTO kv VALUES (2000, 1, 'first'); DELETE FROM kv WHERE id = 2000; INSERT INTO kv VALUES (2000, 2, 'second'); COMMIT;
INSERT INTO kv VALUES (2001, 1, 'gone');
DELETE FROM kv WHERE id = 2001;
INSERT INTO kv VALUES (2002, 1, 'x');
UPDATE kv SET n = 5 WHERE id = 2002;
DELETE FROM kv WHERE id = 2002;
INSERT INTO kv VALUES (2002, 9, 'back');
DELETE FROM kv WHERE id = 3;
INSERT INTO kv VALUES (3, 33, 'reinserted');
UPDATE kv SET n = 34 WHERE id = 3;
BEGIN; DELETE FROM ext WHERE id = 1; INSERT INTO ext VALUES (1, 'reinserted'); COMMIT;
UPDATE ext SET v = 'updated' WHERE id = 2;
INSERT INTO ext VALUES (100, 'new');
DELETE FROM ext WHERE id = 4;
INSERT INTO ext VALUES (4, 'reinserted');
UPDATE ext SET v = 'reinserted, updated' WHERE id = 4;
UPDATE ext SET v = 'updated' WHERE id = 5;
DELETE FROM ext WHERE id = 5;
INSERT INTO ext VALUES (5, 'reinserted');
UPDATE ext SET v = 'updated' WHERE id = 6;
UPDATE ext SET id = 106 WHERE id = 6;
UPDATE ext SET id = 6 WHERE id = 7;
-- unchanged TOAST (partial images)
BEGIN; INSERT INTO big VALUES (100, 'ins', doc('i1'), doc('i2')); UPDATE big SET small = 'ins+partial' WHERE id = 100; COMMIT;
UPDATE big SET small = 'partial again' WHERE id = 100;
UPDATE big SET doc1 = doc('one') WHERE id = 1;
UPDATE big SET doc2 = doc('two') WHERE id = 1;
UPDATE big SET small = 'full', doc1 = doc('f1'), doc2 = doc('f2') WHERE id = 2;
UPDATE big SET small = 'partial after full' WHERE id = 2;
UPDATE big SET small = 'p3' WHERE id = 3;
DELETE FROM big WHERE id = 3;
INSERT INTO big VALUES (3, 'new 3', doc('n1'), doc('n2'));
UPDATE big SET doc2 = doc('n3') WHERE id = 3;
UPDATE big SET small = 'p4' WHERE id = 4;
UPDATE big SET small = 'p4 again', doc1 = doc('p4') WHERE id = 4;
UPDATE big SET small = 'p4 last' WHERE id = 4;
UPDATE big SET id = 1000 WHERE id = 5;
UPDATE big SET small = 'moved' WHERE id = 1000;
UPDATE big SET small = 'before move' WHERE id = 6;
UPDATE big SET id = 1006, doc2 = doc('moved') WHERE id = 6;
-- key-changing updates
UPDATE pair SET b = b + 1000 WHERE a = 'x' AND b = 1;
UPDATE pair SET v = 'moved' WHERE a = 'x' AND b = 1001;
UPDATE pair SET b = 1 WHERE a = 'x' AND b = 1001;
BEGIN; UPDATE pair SET b = -1 WHERE a = 'x' AND b = 2; UPDATE pair SET b = 2 WHERE a = 'x' AND b = 3;
  UPDATE pair SET b = 3 WHERE a = 'x' AND b = -1; COMMIT;
UPDATE pair SET a = 'y' WHERE a = 'x' AND b >= 5;
DELETE FROM pair WHERE a = 'y' AND b = 6;
INSERT INTO pair VALUES ('y', 6, 'again');
-- a RELATION message in the middle of the batch (no column changes: no schema error)
ALTER TABLE kv ALTER COLUMN note SET DEFAULT 'd';
UPDATE kv SET n = n + 1 WHERE id = 1;
UPDATE kv SET id = 5000 WHERE id = 4;
UPDATE kv SET id = 4, note = 'moved back' WHERE id = 5000;
-- TRUNCATE between changes of the same table
INSERT INTO tr SELECT g, 'before' FROM generate_series(21, 50) g;
UPDATE tr SET v = 'upd' WHERE id <= 30;
TRUNCATE tr;
INSERT INTO tr SELECT g, 'after' FROM generate_series(40, 60) g;
UPDATE tr SET v = 'after 2' WHERE id = 45;
DELETE FROM tr WHERE id = 46;
-- must not fold: a swap of unique values, a replica trigger
BEGIN; UPDATE uniq SET email = 'tmp@x' WHERE id = 1; UPDATE uniq SET email = 'a@x' WHERE id = 2;
  UPDATE uniq SET email = 'b@x' WHERE id = 1; COMMIT;
DO $$ BEGIN FOR i IN 1..10 LOOP UPDATE audited SET v = v + 1 WHERE id = 1; END LOOP; END $$;
INSERT INTO audited VALUES (3, 100);
SQL
# The source sent partial images (else the TOAST cases prove nothing).
[[ $(harness_sql SRC "SELECT pg_column_size(doc1) > 6000 FROM big WHERE id = 1") == t ]] ||
	fail "doc values are not stored out of line"

migd_start "$T_TMP/migd.conf"
wait_caught_up 60
assert_all_same
tags=$(harness_sql TGT "SELECT string_agg(id || ':' || tag, ' ' ORDER BY id) FROM ext")
assert_eq "$tags" "1:default 2:target 3:target 4:default 5:default 6:default 8:target 9:target 10:target 100:default 106:default" \
	"target-only column (deleted and inserted rows reset it, updated rows keep it)"
ok "round 1: every folding case applied in few batches equals the source row for row"
assert_eq "$(batch_failures)" 0 "batches the target refused (a wrong fold or a table that must not fold)"
assert_eq "$(mctl --json status | jfield .migration_state.apply.failed_records)" 0 "failed records"
n=$(harness_sql TGT "SELECT count(*) FROM tgtonly.audit")
assert_eq "$((n - audit0))" 11 "replica-trigger firings on the target (one per source change)"
ok "tables that must not fold were applied change by change (no refused batch, trigger fired 11 times)"
migd_stop 0
hot_ops=$(($(target_rowops hot) - hot0))
((hot_ops <= 4)) || fail "hot: the target did $hot_ops row operations for 303 source changes of 2 keys"
kv_ops=$(($(target_rowops kv) - kv0))
# 200 + 3 updates of two keys, 391 + 401 range updates, ~15 more changes of
# single rows: ~1010 row changes to kv, sent one by one without folding.
((kv_ops < 850)) || fail "kv: the target did $kv_ops row operations for ~1010 source changes (not folded?)"
ok "folding happened: the target did $hot_ops row operations for 303 changes of 2 keys, $kv_ops for ~1010 changes of ~700"

# ---- round 2: live, migd running; a TRUNCATE in the middle of a batch
migd_start "$T_TMP/migd.conf"
harness_sql SRC - >/dev/null <<'SQL'
INSERT INTO tr SELECT g, 'live' FROM generate_series(100, 300) g;
UPDATE tr SET v = 'live upd' WHERE id BETWEEN 150 AND 250;
TRUNCATE tr, kv;
INSERT INTO kv SELECT g, g, 'after truncate' FROM generate_series(1, 500) g;
UPDATE kv SET n = n + 1 WHERE id <= 100;
INSERT INTO tr VALUES (1, 'after truncate');
SQL
wait_caught_up 60
assert_all_same
ok "round 2: TRUNCATE of two tables between their changes in one live batch"

# ---- round 3: kill -9 while folded batches are applied, then restart
migd_stop 0
harness_sql SRC - >/dev/null <<'SQL'
DO $$ BEGIN FOR i IN 1..3000 LOOP
  UPDATE kv SET n = n + 1 WHERE id = i % 50 + 1;
  INSERT INTO tr VALUES (10000 + i, 'k' || i);
  IF i % 7 = 0 THEN DELETE FROM tr WHERE id = 10000 + i - 3; END IF;
  UPDATE big SET small = 'k' || i WHERE id = i % 10 + 7;
  COMMIT;
END LOOP; END $$;
SQL
for k in 1 2 3; do
	migd_start "$T_TMP/migd.conf"
	sleep "$(awk -v r=$RANDOM 'BEGIN{printf "%.2f", 0.3 + (r % 100) / 100}')"
	kill -KILL "$MIGD_PID"
	wait "$MIGD_PID" 2>/dev/null || true
	MIGD_PID=
done
migd_start "$T_TMP/migd.conf"
wait_caught_up 90
assert_all_same
assert_eq "$(mctl --json status | jfield .migration_state.apply.failed_records)" 0 "failed records"
assert_eq "$(batch_failures)" 0 "batches the target refused"
ok "round 3: 3000 transactions of hot keys with kill -9 three times while applying: identical row for row"
migd_stop 0

# ---- round 4: a change the target refuses in the middle of a backlog.  Its
# batch fails while the next one is already sent (commits are confirmed
# late): that one must not commit either, both are replayed change by change.
harness_sql TGT "ALTER TABLE kv ADD CONSTRAINT not_13 CHECK (n <> 13) NOT VALID"
before=$(harness_sql TGT "SELECT n FROM kv WHERE id = 77")
harness_sql SRC - >/dev/null <<'SQL'
DO $$ BEGIN FOR i IN 1..2000 LOOP
  UPDATE kv SET n = n + 1 WHERE id = i % 50 + 100;
  INSERT INTO tr VALUES (20000 + i, 'r' || i);
  IF i = 900 THEN UPDATE kv SET n = 13 WHERE id = 77; END IF;
  COMMIT;
END LOOP; END $$;
SQL
migd_start "$T_TMP/migd.conf"
wait_caught_up 120
assert_eq "$(mctl --json status | jfield .migration_state.apply.failed_records)" 1 "failed records"
assert_eq "$(harness_sql TGT "SELECT n FROM kv WHERE id = 77")" "$before" "the refused row keeps its value"
assert_same_table "(SELECT * FROM kv WHERE id <> 77) AS" id
assert_same_table tr id
ok "round 4: one refused change in a 2000-transaction backlog: one failed record, every other change applied"
migd_stop 0
