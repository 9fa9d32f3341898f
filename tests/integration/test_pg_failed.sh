#!/usr/bin/env bash
# A change the target refuses (a CHECK constraint only the target has) is
# recorded as a failed record -- table, key, source position, the change and
# the error -- in the same target transaction; the other changes of the
# batch and later batches are applied; nothing is dropped silently.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair postgresql postgresql
harness_sql SRC "CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric(12,2) NOT NULL)"
harness_sql TGT "CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric(12,2) NOT NULL CHECK (balance < 1000))"
harness_sql SRC "INSERT INTO accounts SELECT g, g FROM generate_series(1, 100) g"
t_pg_config "$T_TMP/migd.conf"
migd_start "$T_TMP/migd.conf"
wait_phase 60 synced

# One source transaction with good and bad changes, then more good ones.
harness_sql SRC "BEGIN;
UPDATE accounts SET balance = 500 WHERE id = 1;
UPDATE accounts SET balance = 5000 WHERE id = 2;
INSERT INTO accounts VALUES (101, 7);
COMMIT;
INSERT INTO accounts VALUES (102, 8);"
wait_for 30 '[[ $(mctl --json status | jfield .migration_state.apply.failed_records) == 1 ]]' ||
	fail "no failed record: $(mctl status)"
wait_caught_up 30
assert_eq "$(harness_sql TGT "SELECT balance FROM accounts WHERE id = 1")" 500.00 "good change in the same txn"
assert_eq "$(harness_sql TGT "SELECT balance FROM accounts WHERE id = 2")" 2.00 "refused change not applied"
assert_eq "$(harness_sql TGT "SELECT count(*) FROM accounts WHERE id IN (101, 102)")" 2 "later changes"
rec=$(harness_sql TGT "SELECT table_name, key::text, source_pos LIKE 'pg:%', change->>'op', error FROM migd.failed_records")
assert_contains "$rec" $'public.accounts\t{"id": "2"}\tt\tupdate' "failed record row"
assert_contains "$rec" 'violates check constraint' "failed record error"
port=$(migd_metrics_port)
wait_for 10 '[[ $(curl -sf "http://127.0.0.1:$port/metrics") == *"migd_failed_records_total 1"* ]]' ||
	fail "migd_failed_records_total is not 1"
assert_contains "$(mctl status)" "1 failed records" "status"
assert_contains "$(cat "$T_TMP/migd.log")" "event=failed_record table=public.accounts" "log"
ok "a refused change is a failed record (table, key, position, change, error); the rest is applied"
migd_stop 0
