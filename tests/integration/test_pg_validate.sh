#!/usr/bin/env bash
# Validation that can say no: divergence injected on the target behind
# migd's back is found with the right key and column (changed value, missing
# row, extra row, a decimal off in the last digit, a timestamp shifted by an
# hour, a trailing space, a case difference); results carry the source
# positions they hold for; concurrent writes during online validation raise
# no false alarm.
source "${MIGD_SRCDIR:-$(dirname "$0")/../..}/tests/lib.sh"
source "$MIGD_SRCDIR/tests/harness/harness.sh"
harness_pair postgresql postgresql
SCHEMA="
CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL,
                       updated timestamptz NOT NULL, active boolean, photo bytea);
CREATE TABLE live (id int PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE tagged (k text PRIMARY KEY, note text);
"
harness_sql SRC "$SCHEMA"
harness_sql TGT "$SCHEMA"
harness_sql SRC "
INSERT INTO accounts SELECT g, 'owner ' || g, g * 1.25, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 minute',
  g % 2 = 0, decode(md5(g::text), 'hex') FROM generate_series(1, 20000) g;
INSERT INTO live SELECT g, 0 FROM generate_series(1, 5000) g;"
t_pg_config "$T_TMP/migd.conf" \
	"[invariant balance_total]" "source = SELECT sum(balance) FROM accounts" \
	"target = SELECT sum(balance)" "    FROM accounts" \
	"[invariant no_negative_balance]" "expect = empty" \
	"target = SELECT id, balance FROM accounts WHERE balance < 0" \
	"[query small_balances]" "source = SELECT owner, balance FROM accounts WHERE balance < 2 ORDER BY balance, id"
migd_start "$T_TMP/migd.conf"
wait_phase 60 synced

lsn0=$(harness_sql SRC "SELECT pg_current_wal_lsn()")
expect_rc 0 mctl validate --wait
assert_contains "$OUT" "validation done (counts,checksums,invariants,queries, table *): PASSED" "clean run"
v=$(mctl --json validation || true)
assert_eq "$(jfield .ready <<<"$v")" true "ready"
pmin=$(jfield .validation.position_min <<<"$v")
[[ $(harness_sql SRC "SELECT '$pmin'::pg_lsn >= '$lsn0'::pg_lsn") == t ]] ||
	fail "results hold for $pmin, before the run started ($lsn0)"
assert_contains "$v" '"digest":"hashtextextended(record)"' "chunks digested with PostgreSQL's own hash (both servers agree with vside_pghash)"
ok "a clean migration validates (counts and checksums) at source positions >= $lsn0"

expect_rc 0 mctl validate --wait --kind invariants
assert_contains "$OUT" "PASSED" "invariants pass"
expect_rc 0 mctl validate --wait --kind queries
assert_contains "$OUT" "PASSED" "queries pass"
ok "declared invariants (equal and empty) and a read comparison pass on a clean migration"
since=$(harness_sql SRC "SELECT pg_current_wal_lsn()")

# Divergence behind migd's back (on the target only).
harness_sql TGT "
UPDATE accounts SET owner = 'tampered' WHERE id = 10;
DELETE FROM accounts WHERE id = 20;
INSERT INTO accounts VALUES (999999, 'ghost', 1, now(), true, NULL);
UPDATE accounts SET balance = balance + 0.01 WHERE id = 30;
UPDATE accounts SET updated = updated + interval '1 hour' WHERE id = 40;
UPDATE accounts SET owner = owner || ' ' WHERE id = 50;
UPDATE accounts SET owner = upper(owner) WHERE id = 60;"
expect_rc 5 mctl validate --wait --kind checksums --table public.accounts
out=$OUT
assert_contains "$out" "DIFF public.accounts checksums" "mismatch reported"
assert_contains "$out" "7 differing keys" "count of differing keys"
for want in 'key {"id":"10"}: differs' 'owner: source "owner 10", target "tampered"' \
	'key {"id":"20"}: missing on target' 'key {"id":"999999"}: extra on target' \
	'balance: source "37.50", target "37.51"' \
	'updated: source "2026-01-01 00:40:00.000000", target "2026-01-01 01:40:00.000000"' \
	'owner: source "owner 50", target "owner 50 "' 'owner: source "owner 60", target "OWNER 60"'; do
	assert_contains "$out" "$want" "reported difference"
done
ok "changed value, missing row, extra row, last decimal digit, +1 hour, trailing space and case: each found with its key and column"

port=$(migd_metrics_port)
wait_for 5 '[[ $(curl -sf "http://127.0.0.1:$port/metrics") == *"migd_validation_mismatches{table=\"public.accounts\",kind=\"checksums\"} 7"* ]]' ||
	fail "mismatch metric"
stored=$(harness_sql TGT "SELECT mismatches, status FROM migd.validation ORDER BY id DESC LIMIT 1")
assert_eq "$stored" $'7\tdone' "stored run"
ok "metrics (migd_validation_mismatches) and migd.validation carry the result"

harness_sql TGT "UPDATE accounts SET balance = -5 WHERE id = 70"
expect_rc 5 mctl validate --wait --kind invariants
assert_contains "$OUT" "DIFF" "invariant broken"
v=$(mctl --json validation || true)
assert_contains "$v" '"name":"balance_total"' "balance_total reported"
assert_contains "$v" '"target_violations":["V2:70|V5:-5.00"]' "violating row shown"
expect_rc 5 mctl validate --wait --kind queries
assert_contains "$(mctl --json validation || true)" '"only_in_target":["V5:ghost|V4:1.00",' "query difference"
ok "an invariant broken on one side and a read comparison are reported with their rows"

# Recent writes: only keys the stream touched since a position, compared.
# A text key holding a tab and a newline goes through the key log as it is.
harness_sql SRC "UPDATE accounts SET owner = 'moved' WHERE id = 90; UPDATE accounts SET owner = 'x' WHERE id = 91;
INSERT INTO tagged VALUES (E'tab\there\nnext line\\\\', 'new'), ('plain', 'new')"
wait_caught_up 30
expect_rc 0 mctl validate --wait --kind recent --since "$since"
assert_contains "$OUT" "ok   public.tagged recent since $since: 2 keys checked" "recent: both tagged keys read back from the key log"
harness_sql TGT "UPDATE accounts SET owner = 'tampered after apply' WHERE id = 90;
UPDATE tagged SET note = 'tampered' WHERE k = E'tab\there\nnext line\\\\'"
expect_rc 5 mctl validate --wait --kind recent --since "$since"
out=$OUT
assert_contains "$out" 'key {"id":"90"}: differs' "recent finds 90"
assert_contains "$out" "DIFF public.accounts recent" "recent result"
assert_contains "$out" 'key {"k":"tab\there\nnext line\\"}: differs' "recent finds the key with a tab and a newline"
assert_not_contains "$out" '"id":"10"' "recent is scoped to keys touched since the position"
ok "recent writes since $since: the touched keys 90 and one holding a tab, a newline and a backslash are checked and found; untouched tampering is out of scope"

# Online validation under concurrent writes: no false alarm.
writer() {
	while [[ ! -f $T_TMP/stop_writer ]]; do
		harness_sql SRC "UPDATE live SET n = n + 1 WHERE id = (random() * 4999)::int + 1;
UPDATE live SET n = n + 1 WHERE id = (random() * 4999)::int + 1;" >/dev/null
	done
}
writer &
WRITER=$!
t_on_exit "touch $T_TMP/stop_writer; kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null"
for i in 1 2 3; do
	expect_rc 0 mctl validate --wait --table public.live
done
touch "$T_TMP/stop_writer"
wait "$WRITER" || true
ok "three online validations during concurrent writes: no false alarm"

# A hot key under a continuous stream of updates (a couple of hundred a
# second, each its own transaction) with the applier batching as it does by
# default: the stream never pauses for batch_delay's 20 ms, so batches are
# cut at batch_txns, and the target, once past a fence, is always ahead of
# the source read before it -- every recheck that compares an earlier source
# read with a later target read differs.  The recheck settles the key against
# the versions the source shows while the applier is awaited and after the
# target is read; a real difference in the same chunk is still reported.
migd_stop 0
sed -i '/^batch_delay = /d' "$T_TMP/migd.conf"
! grep -q '^batch_delay' "$T_TMP/migd.conf" || fail "batch_delay still set"
migd_start "$T_TMP/migd.conf"
wait_phase 60 synced
harness_sql TGT "UPDATE live SET n = -1 WHERE id = 500"
PGAPPNAME=hot_writer psql -X -q -d "$SRC_DSN" -c "DO \$\$
DECLARE stop_at timestamptz := clock_timestamp() + interval '300 s';
BEGIN
	WHILE clock_timestamp() < stop_at LOOP
		UPDATE live SET n = n + 1 WHERE id = 1;
		COMMIT;
		PERFORM pg_sleep(0.004);
	END LOOP;
END \$\$" >/dev/null 2>&1 &
HOT=$!
t_on_exit "kill $HOT 2>/dev/null; wait $HOT 2>/dev/null"
wait_for 20 '(( $(harness_sql TGT "SELECT n FROM live WHERE id = 1") > 100 ))' || fail "the hot key does not move"
for i in 1 2 3; do
	expect_rc 5 mctl validate --wait --kind checksums --table public.live
	assert_contains "$OUT" "1 differing keys" "only the tampered key differs (run $i)"
	assert_contains "$OUT" 'key {"id":"500"}: differs' "the tampered key (run $i)"
	assert_not_contains "$OUT" 'key {"id":"1"}' "no false alarm on the hot key (run $i)"
done
hot=$(harness_sql SRC "SELECT n FROM live WHERE id = 1")
harness_sql SRC "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hot_writer'" >/dev/null
wait "$HOT" || true
ok "a hot key updated continuously (n = $hot) during three online validations at the default batch_delay: no false alarm; a tampered key in its chunk is reported"
harness_sql TGT "UPDATE live SET n = 0 WHERE id = 500"

expect_rc 0 mctl validate --wait --kind counts --table public.live
assert_contains "$OUT" "ok   public.live counts" "counts"
ok "row counts per table"
migd_stop 0
