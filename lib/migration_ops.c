/*
 * migration_ops: the operator's operations, run one at a time by the
 * coordinator thread: freeze, unfreeze, cutover (the flip), rollback,
 * complete and abort.  Each journals its intent (migd.migration.pending_op
 * and the phase) before its first irreversible step, so a restart in the
 * middle finishes it deterministically.  The rehearsal of the reverse path
 * runs on a thread of its own (it changes nothing and may run while the
 * coordinator is still backfilling).
 *
 * Test-only crash points (MIGD_CRASH_AT, see crash_point() in util.h):
 * freeze-intent, cutover-intent, cutover-hook-done, rollback-intent, each
 * right after the step its name says and before the next one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "migration_int.h"
#include "hook.h"
#include "mycapture.h"
#include "myfreeze.h"
#include "pgcapture.h"
#include "pgfreeze.h"
#include "pgmeta.h"
#include "rehearse.h"
#include "util.h"

#define REHEARSE_TIMEOUT_MS 30000

static bool drop_publication(struct pgconn *c, const char *pub, struct err *err);

/* --- the source, whichever engine ---------------------------------------------- */

/* The coordinator's link to the source: PostgreSQL, or MySQL/MariaDB (binlog). */
static bool ensure_source(struct migration *m, struct err *err)
{
	if (mig_binlog_source(m))
		return mig_my_ensure(&m->mysrc, "source", m, err);
	return mig_ensure(&m->src, "source", m->src_ci, err);
}

/*
 * Where a PostgreSQL freeze records the grants it took (migd.freeze_grants):
 * the target's migd schema, or, for a MySQL/MariaDB target, the PostgreSQL
 * source's own (setup() created it there).
 */
static struct pgconn *grants_store(struct migration *m)
{
	return mig_my_target(m) ? &m->src : &m->store.pg;
}

/*
 * Freezes the source with its engine's mechanism: PostgreSQL takes the
 * roles' write grants on the migrated tables away; MySQL/MariaDB goes
 * read_only and the roles (user names there) lose their sessions.
 */
static bool freeze_source(struct migration *m, json_t **rep, struct err *err)
{
	if (mig_binlog_source(m))
		return myfreeze_enforce(&m->mysrc, m->freeze_roles, rep, err);
	return pgfreeze_enforce(&m->src, "source", false, grants_store(m), m->name, m->freeze_roles,
				&m->ts, rep, err);
}

/*
 * The source's end as a pos_scalar() value (its WAL insert position, or its
 * binlog end), read once the freeze is on: every change committed before
 * the freeze is before it, every change after it is a freeze violation.
 */
static bool source_end(struct migration *m, uint64_t *end, struct err *err)
{
	if (!mig_binlog_source(m))
		return pgconn_current_lsn(&m->src, end, err);
	struct pos p;
	if (!mycapture_binlog_end(&m->mysrc, &p, err))
		return false;
	*end = pos_scalar(&p);
	return true;
}

/* Lifts the source's freeze; *restored: grants given back (0 for read_only). */
static bool lift_source(struct migration *m, int *restored, struct err *err)
{
	*restored = 0;
	if (mig_binlog_source(m))
		return myfreeze_lift(&m->mysrc, err);
	return pgfreeze_lift(&m->src, "source", grants_store(m), m->name, restored, err);
}

/* --- the target, whichever engine ------------------------------------------------ */

/* Protects the target (the candidate, or the owner on the way back) like the source. */
static bool freeze_target(struct migration *m, json_t **rep, struct err *err)
{
	if (mig_my_target(m))
		return myfreeze_enforce(&m->store.my, m->freeze_roles, rep, err);
	return pgfreeze_enforce(&m->store.pg, "target", true, &m->store.pg, m->name,
				m->freeze_roles, &m->ts, rep, err);
}

static bool lift_target(struct migration *m, int *restored, struct err *err)
{
	*restored = 0;
	if (mig_my_target(m))
		return myfreeze_lift(&m->store.my, err);
	return pgfreeze_lift(&m->store.pg, "target", &m->store.pg, m->name, restored, err);
}

/* The target's log end as pos_scalar() (WAL insert position or binlog end). */
static bool target_end(struct migration *m, uint64_t *end, struct err *err)
{
	if (!mig_my_target(m))
		return pgconn_current_lsn(&m->store.pg, end, err);
	struct pos p;
	if (!mycapture_binlog_end(&m->store.my, &p, err))
		return false;
	*end = pos_scalar(&p);
	return true;
}

/* Drops the reverse slot and publication of a PostgreSQL target (a binlog holds nothing). */
static bool drop_reverse_slot(struct migration *m, struct err *err)
{
	return mig_my_target(m) || (pgcapture_drop_slot(&m->store.pg, m->rev_slot, err) &&
				    drop_publication(&m->store.pg, m->rev_pub, err));
}

/* --- freeze / unfreeze -------------------------------------------------------- */

/*
 * Is the reverse path possible?  The target must host the reverse slot
 * (wal_level, replication role, a free slot); a MySQL/MariaDB source must
 * let migd's user write through its read_only (the reverse sink does).
 */
static json_t *reverse_preconditions(struct migration *m)
{
	struct err err;
	bool ok;
	const char *yes;
	if (mig_my_target(m)) {
		json_t *info = NULL;
		ok = mycapture_check(&m->store.my, mycapture_server_id(m->rev_slot), &info, &err);
		json_decref(info);
		yes = "the target's binlog can carry reverse replication (log_bin, ROW, FULL row "
		      "image and metadata, replication grants)";
	} else {
		char *rs = xasprintf("migd_%s_reverse", m->name);
		ok = pgcapture_check(&m->store.pg, rs, &err);
		free(rs);
		yes = "the target can host the reverse slot (wal_level=logical, replication role, "
		      "free slot)";
	}
	json_t *r = json_pack("{s:b, s:s}", "ok", ok, "detail", ok ? yes : err.msg);
	if (!mig_binlog_source(m))
		return r;
	json_t *my = mig_my_reverse_ready(m);
	char *d = xasprintf("%s; %s", json_string_value(json_object_get(r, "detail")),
			    json_string_value(json_object_get(my, "detail")));
	json_object_set_new(r, "ok", json_boolean(ok && json_is_true(json_object_get(my, "ok"))));
	json_object_set_new(r, "detail", json_string(d));
	free(d);
	json_decref(my);
	return r;
}

static json_t *do_freeze(struct migration *m, struct err *err)
{
	json_t *src_rep = NULL, *tgt_rep = NULL;
	uint64_t final = 0;
	enum phase ph = migration_phase(m);
	if (ph != PHASE_SYNCED && ph != PHASE_FROZEN) {
		err_set(err, "freeze needs phase synced (now %s)", phase_name(ph));
		return NULL;
	}
	if (!ensure_source(m, err) || !store_ensure(&m->store, "target", err) ||
	    !store_set_pending(&m->store, m->name, "freeze", NULL, err))
		return NULL;
	crash_point(m->crash_at, "freeze-intent");
	mig_activity(m, "freezing writes");
	int64_t t0 = now_mono_usec();
	final = m->freeze_lsn; /* enforcing again after a restart keeps the freeze position */
	/* The candidate is protected too: no application write may land on it before the flip. */
	if (!freeze_source(m, &src_rep, err) || !freeze_target(m, &tgt_rep, err) ||
	    (final == 0 && !source_end(m, &final, err))) {
		json_decref(src_rep);
		json_decref(tgt_rep);
		return NULL;
	}
	struct pos fp = mig_src_pos(m, final);
	char l[POS_TEXT_MAX], reason[POS_TEXT_MAX + 64];
	if (!store_set_pending(&m->store, m->name, "freeze", &fp, err)) {
		json_decref(src_rep);
		json_decref(tgt_rep);
		return NULL;
	}
	m->freeze_lsn = final;
	snprintf(reason, sizeof(reason), "writes frozen; final source position %s",
		 mig_src_text(m, final, l, sizeof(l)));
	if (ph == PHASE_SYNCED && !mig_set_phase_at(m, PHASE_FROZEN, reason, final)) {
		json_decref(src_rep);
		json_decref(tgt_rep);
		err_set(err, "stopped");
		return NULL;
	}
	if (!store_set_pending(&m->store, m->name, NULL, NULL, err)) {
		json_decref(src_rep);
		json_decref(tgt_rep);
		return NULL;
	}
	/* Drain: the target must reach the final source position. */
	mig_activity(m, "frozen; draining to %s", l);
	int64_t deadline = now_mono_usec() + m->drain_timeout_ms * 1000;
	bool drained = false;
	while (!m->stop && !(drained = migration_applied_past(m, final)) && now_mono_usec() < deadline)
		sleep_interruptible(20, &m->stop);
	double secs = (double)(now_mono_usec() - t0) / 1e6;
	/* No roles configured means nothing was frozen: never report that as enforced. */
	bool no_roles = strspn(m->freeze_roles, " ,") == strlen(m->freeze_roles);
	bool enforced = !no_roles &&
			json_array_size(json_object_get(src_rep, "still_writable")) == 0 &&
			json_array_size(json_object_get(tgt_rep, "still_writable")) == 0;
	if (no_roles)
		log_warn("freeze: [freeze] roles is empty: no application role was frozen");
	json_t *rep = json_pack("{s:s, s:b, s:b, s:f, s:o, s:o}", "final_position", l, "drained",
				drained, "enforced", enforced, "seconds", secs, "source", src_rep,
				"target", tgt_rep);
	json_t *rev = reverse_preconditions(m);
	pthread_mutex_lock(&m->lock);
	json_decref(m->freeze_report);
	m->freeze_report = json_incref(rep);
	json_decref(m->reverse_ready);
	m->reverse_ready = rev;
	pthread_mutex_unlock(&m->lock);
	mig_activity(m, drained ? "frozen at %s; target has every change" : "frozen at %s; still draining",
		 l);
	return rep;
}

static json_t *do_unfreeze(struct migration *m, struct err *err)
{
	int rs = 0, rt = 0;
	if (migration_phase(m) != PHASE_FROZEN) {
		err_set(err, "unfreeze needs phase frozen (now %s)", phase_name(migration_phase(m)));
		return NULL;
	}
	if (!ensure_source(m, err) || !store_ensure(&m->store, "target", err) ||
	    !store_set_pending(&m->store, m->name, "unfreeze", NULL, err) ||
	    !lift_source(m, &rs, err) || !lift_target(m, &rt, err))
		return NULL;
	m->freeze_lsn = 0;
	if (!mig_set_phase(m, PHASE_SYNCED, "writes unfrozen by the operator (before the flip)"))
		return NULL;
	struct pos none = pos_none();
	if (!store_set_pending(&m->store, m->name, NULL, &none, err))
		return NULL;
	pthread_mutex_lock(&m->lock);
	json_decref(m->freeze_report);
	m->freeze_report = NULL;
	pthread_mutex_unlock(&m->lock);
	mig_activity(m, "in sync; streaming changes");
	if (mig_binlog_source(m))
		return json_pack("{s:b, s:i}", "source_read_only", 0, "grants_restored_target", rt);
	return json_pack("{s:i, s:i}", "grants_restored_source", rs, "grants_restored_target", rt);
}

/* --- the flip and the ways back --------------------------------------------------- */

/* A position as a hook gets it: a PostgreSQL LSN bare (0/326F7B8), a binlog position in pos form. */
static const char *hook_pos_text(const struct pos *p, char *buf, size_t n)
{
	return p->kind == POS_PG_LSN ? pos_lsn_format(p->lsn, buf, n) : pos_format(p, buf, n);
}

static bool run_hook(struct migration *m, const char *which, const char *cmd, const char *phase,
		     const char *owner, struct err *err)
{
	if (cmd == NULL || cmd[0] == '\0') {
		log_notice("%s hook: none configured", which);
		return true;
	}
	char sp[POS_TEXT_MAX], tp[POS_TEXT_MAX], e_mig[96], e_phase[48], e_owner[32],
		e_src[POS_TEXT_MAX + 20], e_tgt[POS_TEXT_MAX + 20];
	snprintf(e_mig, sizeof(e_mig), "MIGD_MIGRATION=%s", m->name);
	snprintf(e_phase, sizeof(e_phase), "MIGD_PHASE=%s", phase);
	snprintf(e_owner, sizeof(e_owner), "MIGD_OWNER=%s", owner);
	struct pos src = mig_src_pos(m, m->freeze_lsn), tgt = mig_tgt_pos(m, m->rev_consistent);
	snprintf(e_src, sizeof(e_src), "MIGD_SOURCE_POS=%s", hook_pos_text(&src, sp, sizeof(sp)));
	snprintf(e_tgt, sizeof(e_tgt), "MIGD_TARGET_POS=%s", hook_pos_text(&tgt, tp, sizeof(tp)));
	const char *env[] = {e_mig, e_phase, e_owner, e_src, e_tgt, NULL};
	log_event(LOG_LVL_NOTICE, "hook", "which=%s phase=%s owner=%s", which, phase, owner);
	if (hook_run(cmd, env, (int)m->hook_timeout_ms, err))
		return true;
	err_prefix(err, "%s hook", which);
	return false;
}

static bool drop_publication(struct pgconn *c, const char *pub, struct err *err)
{
	char *id = pgconn_ident(pub);
	char *sql = xasprintf("DROP PUBLICATION IF EXISTS %s", id);
	bool ok = pgconn_exec(c, sql, err);
	free(sql);
	free(id);
	return ok;
}

/* The column on the other side: a source column's target name, or back. */
static const char *other_col(const struct mig_table *t, const char *col, bool to_target)
{
	if (to_target)
		return table_tgt_col(t, col);
	for (int c = 0; c < t->ncols; c++)
		if (strcmp(col_tgt_name(&t->cols[c]), col) == 0)
			return t->cols[c].name;
	return col;
}

/*
 * Sequences are not carried by logical replication: before the new owner
 * takes writes, every sequence owned by a migrated table gets the frozen
 * side's position, or its next insert collides.  They are matched by the
 * column that owns them, not by name: a renamed table's sequence usually
 * has a name of its own on the target.  A sequence with no counterpart
 * there is logged, not guessed at.
 */
static bool sync_sequences(struct pgconn *from, struct pgconn *to, const struct mig_tableset *ts,
			   bool to_target, int *n, struct err *err)
{
	*n = 0;
	for (int i = 0; i < ts->n; i++) {
		const struct mig_table *t = &ts->t[i];
		const char *qf = to_target ? t->qname : t->tgt_qname;
		const char *qt = to_target ? t->tgt_qname : t->qname;
		PGresult *rf = pgmeta_owned_sequences(from, qf, err);
		if (rf == NULL)
			return false;
		PGresult *rt = PQntuples(rf) > 0 ? pgmeta_owned_sequences(to, qt, err) : NULL;
		bool ok = PQntuples(rf) == 0 || rt != NULL;
		for (int k = 0; ok && k < PQntuples(rf); k++) {
			const char *seq = PQgetvalue(rf, k, 0);
			const char *col = other_col(t, PQgetvalue(rf, k, 1), to_target);
			const char *tseq = NULL;
			for (int j = 0; j < PQntuples(rt) && tseq == NULL; j++)
				if (strcmp(PQgetvalue(rt, j, 1), col) == 0)
					tseq = PQgetvalue(rt, j, 0);
			if (tseq == NULL) {
				log_warn("sequences: %s owns %s (column %s), which has no sequence on %s "
					 "%s: not copied",
					 qf, seq, PQgetvalue(rf, k, 1), to_target ? "the target's" : "the source's",
					 qt);
				continue;
			}
			char *sql = xasprintf("SELECT last_value, is_called FROM %s", seq);
			PGresult *v = pgconn_query(from, sql, 0, NULL, err);
			free(sql);
			ok = v != NULL;
			if (ok) {
				const char *q[] = {tseq, PQgetvalue(v, 0, 0), PQgetvalue(v, 0, 1)};
				ok = pgconn_exec_params(
				    to, "SELECT setval($1::regclass, $2::bigint, $3::bool)", 3, q, err);
				PQclear(v);
			}
			if (ok)
				(*n)++;
		}
		PQclear(rf);
		if (rt != NULL)
			PQclear(rt);
		if (!ok)
			return false;
	}
	return true;
}

/* The reverse slot on the target, created before any target-only write can happen. */
static bool capture_reverse(struct migration *m, struct err *err)
{
	struct pgcapture_slot info;
	struct pgcapture cap;
	if (!mig_build_reverse_tables(m, err))
		return false;
	if (mig_my_target(m)) {
		/* The target is frozen and the forward applier stopped: its binlog end is still. */
		if (m->rev_pos.kind != POS_NONE)
			return true; /* resumed: recorded before the restart */
		struct myconn c = {0};
		struct pos p;
		bool ok = myconn_open_dsn(&c, "target (reverse position)", m->tgt_ci, err) &&
			  mycapture_snapshot(&c, &p, err);
		myconn_close(&c);
		if (!ok || !store_set_reverse(&m->store, m->name, &p, err))
			return false;
		m->rev_pos = p;
		m->rev_consistent = pos_scalar(&p);
		return true;
	}
	if (!pgcapture_publication(&m->store.pg, m->rev_pub, &m->rts, err) ||
	    !pgcapture_slot_info(&m->store.pg, m->rev_slot, &info, err))
		return false;
	if (info.exists && m->rev_consistent)
		return true; /* resumed: created and recorded before the restart */
	if (info.exists && !pgcapture_drop_slot(&m->store.pg, m->rev_slot, err))
		return false; /* created but never recorded: nothing can depend on it */
	if (!pgcapture_create_slot(m->tgt_repl_ci, m->rev_slot, &cap, err))
		return false;
	pgcapture_release(&cap); /* no snapshot needed: the target is frozen and complete */
	struct pos rp = pos_from_lsn(cap.consistent_lsn);
	if (!store_set_reverse(&m->store, m->name, &rp, err))
		return false;
	m->rev_pos = rp;
	m->rev_consistent = cap.consistent_lsn;
	return true;
}

static void failing_criteria(json_t *gate, char *buf, size_t n)
{
	size_t i, len = 0;
	json_t *c;
	buf[0] = '\0';
	json_array_foreach(json_object_get(gate, "criteria"), i, c)
		if (!json_is_true(json_object_get(c, "ok")))
			len += (size_t)snprintf(buf + len, n > len ? n - len : 0, "%s%s",
						len ? ", " : "", json_string_value(json_object_get(c, "name")));
}

static json_t *do_cutover(struct migration *m, struct err *err)
{
	char l1[POS_TEXT_MAX], l2[POS_TEXT_MAX], why[2 * POS_TEXT_MAX + 300];
	enum phase ph = migration_phase(m);
	bool resume = ph == PHASE_CUTOVER;
	if (ph != PHASE_FROZEN && !resume) {
		err_set(err, "cutover needs phase frozen (now %s)", phase_name(ph));
		return NULL;
	}
	if (!ensure_source(m, err) || !store_ensure(&m->store, "target", err))
		return NULL;
	if (!resume) {
		/* read_only is a binlog source's freeze: off now, later writes there are lost. */
		if (mig_binlog_source(m) && !myfreeze_verify(&m->mysrc, err))
			return NULL;
		/* The gate again, right before the flip: nothing may have moved. */
		json_t *gate = mig_gate_eval(m, &m->limits);
		bool ready = json_is_true(json_object_get(gate, "ready"));
		if (!ready || m->dry_run) {
			char bad[256];
			failing_criteria(gate, bad, sizeof(bad));
			if (!ready && !m->dry_run) {
				json_decref(gate);
				err_set(err, "the gate is closed: %s (migctl gate shows why)", bad);
				return NULL;
			}
			return json_pack("{s:b, s:b, s:o, s:[s,s,s,s,s,s]}", "dry_run", 1, "would_flip",
					 ready, "gate", gate, "steps",
					 "check the gate again (atomically with the flip)",
					 "stop forward replication (the source stays frozen)",
					 "create the reverse slot on the target before any target-only write",
					 "run the flip hook ([hooks] flip) with MIGD_* positions",
					 "mark the target as owner and give its write grants back",
					 "start reverse replication target -> source");
		}
		json_decref(gate);
		if (!store_set_pending(&m->store, m->name, "cutover", NULL, err) ||
		    !mig_set_phase_at(m, PHASE_CUTOVER, "cutover starts: the gate is open", m->freeze_lsn))
			return NULL;
		crash_point(m->crash_at, "cutover-intent");
	}
	mig_activity(m, "cutover: capturing the target's position");
	mig_stop_forward(m); /* the source is frozen and drained: nothing more to carry */
	int nseq = 0;
	if (mig_my_target(m)) {
		/*
		 * Counters first: ALTER TABLE ... AUTO_INCREMENT is DDL in the target's
		 * binlog and must lie before the reverse position (a resumed cutover
		 * that already took it set them before).
		 */
		if ((m->rev_pos.kind == POS_NONE && !mig_my_target_counters(m, &nseq, err)) ||
		    !capture_reverse(m, err))
			goto back;
	} else if (!capture_reverse(m, err) ||
		   (mig_binlog_source(m)
			? !mig_my_sequences(m, &nseq, err)
			: !sync_sequences(&m->src, &m->store.pg, &m->ts, true, &nseq, err))) {
		goto back;
	}
	mig_activity(m, "cutover: running the flip hook");
	if (!run_hook(m, "flip", m->hook_flip, "cutover", "target", err))
		goto back;
	crash_point(m->crash_at, "cutover-hook-done");
	snprintf(why, sizeof(why), "flipped: the target owns the data from %s (reverse slot at %s)",
		 mig_src_text(m, m->freeze_lsn, l1, sizeof(l1)),
		 mig_tgt_text(m, m->rev_consistent, l2, sizeof(l2)));
	if (!mig_set_phase_at(m, PHASE_WATCHING, why, m->freeze_lsn))
		return NULL;
	int restored = 0;
	struct err e2;
	if (!lift_target(m, &restored, &e2))
		mig_report(m, &e2); /* the flip happened; say loudly that writes are still blocked */
	if (!store_set_pending(&m->store, m->name, NULL, NULL, err) || !mig_start_reverse(m, err))
		mig_report(m, err);
	mig_activity(m, "target is the owner; reverse replication to the source");
	json_t *rep = json_pack("{s:s, s:s, s:s, s:i, s:i}", "owner", "target", "source_position", l1,
				"target_position", l2, "target_grants_restored", restored,
				"sequences_copied", nseq);
	pthread_mutex_lock(&m->lock);
	json_decref(m->flip_report);
	m->flip_report = json_incref(rep);
	pthread_mutex_unlock(&m->lock);
	return rep;
back:
	/* Nothing half-flipped: no reverse slot, source the owner, still frozen. */
	log_event(LOG_LVL_ERROR, "cutover", "result=failed reason=\"%s\"", err->msg);
	{
		struct err e3;
		if (!drop_reverse_slot(m, &e3))
			log_warn("cutover: cleaning the reverse slot: %s", e3.msg);
		struct pos none = pos_none();
		if (!store_set_reverse(&m->store, m->name, &none, &e3))
			log_warn("cutover: %s", e3.msg);
		m->rev_consistent = 0;
		m->rev_pos = none;
	}
	snprintf(why, sizeof(why), "cutover failed, still frozen with the source as owner: %s",
		 err->msg);
	mig_start_forward(m);
	if (mig_set_phase_at(m, PHASE_FROZEN, why, m->freeze_lsn)) {
		struct err e4;
		if (!store_set_pending(&m->store, m->name, NULL, NULL, &e4))
			mig_report(m, &e4);
	}
	mig_activity(m, "frozen; cutover failed: %s", err->msg);
	return NULL;
}

static json_t *do_rollback(struct migration *m, struct err *err)
{
	json_t *trep = NULL;
	uint64_t final = 0;
	char l[POS_TEXT_MAX], why[POS_TEXT_MAX + 100];
	enum phase ph = migration_phase(m);
	if (ph != PHASE_WATCHING && ph != PHASE_ROLLING_BACK) {
		err_set(err, "rollback needs phase watching (now %s)", phase_name(ph));
		return NULL;
	}
	if (!ensure_source(m, err) || !store_ensure(&m->store, "target", err))
		return NULL;
	if (ph == PHASE_WATCHING) {
		if (!store_set_pending(&m->store, m->name, "rollback", NULL, err) ||
		    !mig_set_phase(m, PHASE_ROLLING_BACK, "rollback starts: freezing the target"))
			return NULL;
		crash_point(m->crash_at, "rollback-intent");
	}
	if (!mig_start_reverse(m, err))
		goto back;
	mig_activity(m, "rollback: freezing the target");
	if (!freeze_target(m, &trep, err) || !target_end(m, &final, err))
		goto back;
	mig_activity(m, "rollback: draining reverse replication to %s",
		     mig_tgt_text(m, final, l, sizeof(l)));
	int64_t deadline = now_mono_usec() + m->drain_timeout_ms * 1000;
	bool drained = false;
	while (!m->stop && !(drained = mig_pipeline_applied_past(&m->rsp, m->rspool, &m->rap, final)) &&
	       now_mono_usec() < deadline)
		sleep_interruptible(20, &m->stop);
	/* The reverse gate: everything from the target is on the source, nothing refused. */
	pthread_mutex_lock(&m->rap.lock);
	int64_t failed = m->rap.counts.failed, retry = m->rap.retry_depth;
	bool schema = m->rap.schema_errors[0] != '\0';
	pthread_mutex_unlock(&m->rap.lock);
	bool still_writable = json_array_size(json_object_get(trep, "still_writable")) > 0;
	if (!drained || failed || retry || schema || still_writable) {
		err_set(err, "the reverse gate is closed: %s%s%s%s%s",
			drained ? "" : "reverse lag not drained; ", failed ? "reverse failed records; " : "",
			retry ? "reverse retry queue; " : "", schema ? "reverse schema errors; " : "",
			still_writable ? "the target freeze is not enforced" : "");
		goto back;
	}
	/*
	 * A MySQL/MariaDB table's AUTO_INCREMENT counter moves past every
	 * explicit value inserted (the reverse sink's), so nothing to copy there.
	 */
	int nseq = 0;
	if (!mig_binlog_source(m) &&
	    (mig_my_target(m) ? !mig_my_source_sequences(m, &nseq, err)
			      : !sync_sequences(&m->store.pg, &m->src, &m->ts, false, &nseq, err)))
		goto back;
	if (!run_hook(m, "rollback", m->hook_rollback, "rolling_back", "source", err))
		goto back;
	mig_stop_reverse(m);
	int restored = 0;
	bool lifted = lift_source(m, &restored, err);
	if (!lifted)
		mig_report(m, err); /* the source owns the data again: say loudly it is frozen */
	/* Over for good: slots left behind would hold WAL (a binlog source has none). */
	{
		struct err e5;
		if (!drop_reverse_slot(m, &e5) ||
		    (!mig_binlog_source(m) && (!pgcapture_drop_slot(&m->src, m->slot, &e5) ||
					       !drop_publication(&m->src, m->pub, &e5))))
			log_warn("rollback: dropping slots and publications: %s (drop them by hand)",
				 e5.msg);
	}
	snprintf(why, sizeof(why), "rolled back: the source owns the data again (target drained to %s)",
		 l);
	if (!mig_set_phase(m, PHASE_ROLLED_BACK, why) ||
	    !store_set_pending(&m->store, m->name, NULL, NULL, err))
		return NULL;
	mig_activity(m, "rolled back; the source is the owner");
	if (mig_binlog_source(m))
		return json_pack("{s:s, s:s, s:b, s:o}", "owner", "source",
				 "target_final_position", l, "source_read_only", !lifted, "target",
				 trep);
	return json_pack("{s:s, s:s, s:i, s:i, s:o}", "owner", "source", "target_final_position", l,
			 "source_grants_restored", restored, "sequences_copied", nseq, "target", trep);
back:
	log_event(LOG_LVL_ERROR, "rollback", "result=failed reason=\"%s\"", err->msg);
	{
		int r = 0;
		struct err e2;
		if (!lift_target(m, &r, &e2))
			mig_report(m, &e2);
	}
	json_decref(trep);
	snprintf(why, sizeof(why), "rollback given up, the target stays the owner: %s", err->msg);
	if (mig_set_phase(m, PHASE_WATCHING, why)) {
		struct err e3;
		if (!store_set_pending(&m->store, m->name, NULL, NULL, &e3))
			mig_report(m, &e3);
	}
	mig_activity(m, "target is the owner; rollback failed: %s", err->msg);
	return NULL;
}

static json_t *do_complete(struct migration *m, struct err *err)
{
	if (migration_phase(m) != PHASE_WATCHING) {
		err_set(err, "complete needs phase watching (now %s)", phase_name(migration_phase(m)));
		return NULL;
	}
	if (!ensure_source(m, err) || !store_ensure(&m->store, "target", err))
		return NULL;
	mig_stop_reverse(m);
	if (!drop_reverse_slot(m, err))
		return NULL;
	if (mig_binlog_source(m)) { /* no slot on a binlog source; it stays read_only, retired */
		if (!mig_set_phase(m, PHASE_DONE,
				   "migration complete: reverse slot and publication dropped; the "
				   "source stays read_only"))
			return NULL;
		mig_activity(m, "done; the journal stays in the target's migd schema");
		return json_pack("{s:s, s:[s], s:b}", "phase", "done", "dropped", m->rev_slot,
				 "source_read_only", 1);
	}
	if (!pgcapture_drop_slot(&m->src, m->slot, err) || !drop_publication(&m->src, m->pub, err))
		return NULL;
	if (!mig_set_phase(m, PHASE_DONE, "migration complete: slots and publications dropped"))
		return NULL;
	mig_activity(m, "done; the journal stays in the target's migd schema");
	return json_pack("{s:s, s:[s,s]}", "phase", "done", "dropped", m->slot, m->rev_slot);
}

static json_t *do_abort(struct migration *m, struct err *err)
{
	enum phase ph = migration_phase(m);
	if (!phase_transition_legal(ph, PHASE_ABORTED)) {
		err_set(err, "abort is only possible before the flip (now %s; use rollback)",
			phase_name(ph));
		return NULL;
	}
	int rs = 0, rt = 0;
	if (mig_binlog_source(m)) { /* a binlog source holds nothing for us: no slot to drop */
		/* read_only is ours to lift only when our freeze set it. */
		bool frozen = ph == PHASE_FROZEN || m->freeze_lsn != 0;
		if (!store_ensure(&m->store, "target", err) ||
		    (frozen && !ensure_source(m, err)))
			return NULL;
		mig_stop_forward(m);
		if ((frozen && !myfreeze_lift(&m->mysrc, err)) || !lift_target(m, &rt, err))
			return NULL;
		m->freeze_lsn = 0;
		if (!mig_set_phase(m, PHASE_ABORTED, "aborted by the operator; the source stays the owner"))
			return NULL;
		mig_activity(m, "aborted; the source is the owner%s",
			     frozen ? " (read_only lifted)" : " and untouched");
		return json_pack("{s:s, s:b, s:i}", "phase", "aborted", "source_read_only_lifted",
				 frozen, "grants_restored_target", rt);
	}
	if (!mig_ensure(&m->src, "source", m->src_ci, err) ||
	    !store_ensure(&m->store, "target", err))
		return NULL;
	mig_stop_forward(m);
	if (!pgcapture_drop_slot(&m->src, m->slot, err) || !drop_publication(&m->src, m->pub, err) ||
	    !lift_source(m, &rs, err) || !lift_target(m, &rt, err))
		return NULL;
	m->freeze_lsn = 0;
	if (!mig_set_phase(m, PHASE_ABORTED, "aborted by the operator; the source stays the owner"))
		return NULL;
	mig_activity(m, "aborted; the source is untouched and the owner");
	return json_pack("{s:s, s:i, s:i}", "phase", "aborted", "grants_restored_source", rs,
			 "grants_restored_target", rt);
}

/* --- rehearsal of the reverse path ------------------------------------------------- */

static char *rehearse_spool_dir(struct migration *m)
{
	return xasprintf("%s/spool-%s-rehearse", m->state_dir, m->name);
}

static void *rehearse_thread(void *arg)
{
	struct migration *m = arg;
	enum phase ph = migration_phase(m);
	char *dir = rehearse_spool_dir(m);
	/* A MySQL/MariaDB source's sink connects with the dsn and its password, as the reverse's. */
	char *src_dsn = mig_binlog_source(m) ? myconn_dsn_with_password(m->src_dsn, m->src_password)
					     : NULL;
	struct rehearse_opts o = {
		.name = m->name,
		.src_my = mig_binlog_source(m),
		.tgt_my = mig_my_target(m),
		.src_ci = src_dsn ? src_dsn : m->src_ci,
		.tgt_ci = m->tgt_ci,
		.tgt_repl_ci = m->tgt_repl_ci,
		.slot = m->rehearse_slot,
		.publication = m->rehearse_slot,
		/* The reverse stream's own replica id: the one the rehearsal proves free. */
		.server_id = mycapture_server_id(m->rev_slot),
		.spool_dir = dir,
		.ts = &m->ts,
		.batch_txns = m->batch_txns,
		.batch_bytes = m->batch_bytes,
		.batch_delay_ms = m->batch_delay_ms,
		.timeout_ms = REHEARSE_TIMEOUT_MS,
		.stop = &m->stop,
		.crash_at = m->crash_at,
	};
	json_t *rep = rehearse_run(&o);
	free(dir);
	free(src_dsn);
	json_object_set_new(rep, "phase", json_string(phase_name(ph)));
	/* Kept on the target too, so the gate still has it after a restart. */
	struct store c = {.engine = m->tgt_engine, .conninfo = m->tgt_ci};
	struct err err;
	char *text = json_dumps(rep, JSON_COMPACT);
	if (!store_ensure(&c, "target", &err) ||
	    !store_add_rehearsal(&c, m->name, phase_name(ph),
				 json_is_true(json_object_get(rep, "passed")), text, &err))
		log_warn("rehearse: recording the result on the target: %s", err.msg);
	store_close(&c);
	free(text);
	pthread_mutex_lock(&m->lock);
	json_decref(m->rehearsal);
	m->rehearsal = json_deep_copy(rep); /* the caller's copy goes to another thread */
	void (*done)(void *, json_t *) = m->rehearse_done;
	void *darg = m->rehearse_arg;
	m->rehearse_done = NULL;
	m->rehearse_running = false;
	pthread_mutex_unlock(&m->lock);
	if (done)
		done(darg, rep);
	else
		json_decref(rep);
	return NULL;
}

bool migration_rehearse(struct migration *m, void (*done)(void *, json_t *), void *arg,
			const char **err)
{
	enum phase ph = migration_phase(m);
	*err = NULL;
	if (ph == PHASE_INIT)
		*err = "nothing is captured yet: a rehearsal needs phase captured or later";
	else if (ph == PHASE_ABORTED)
		*err = "the migration is aborted";
	else if (ph > PHASE_FROZEN)
		*err = "a rehearsal proves the reverse path before the flip, and the flip has "
		       "happened (migctl status shows reverse replication)";
	if (*err != NULL)
		return false;
	pthread_mutex_lock(&m->lock);
	if (m->rehearse_running)
		*err = "a rehearsal is already running";
	else if (m->op == OP_CUTOVER)
		*err = "a cutover is in progress";
	if (*err == NULL) {
		m->rehearse_running = true;
		m->rehearse_done = done;
		m->rehearse_arg = arg;
	}
	pthread_mutex_unlock(&m->lock);
	if (*err != NULL)
		return false;
	if (m->rehearse_started)
		pthread_join(m->rehearse_th, NULL); /* the last one, finished */
	m->rehearse_started = true;
	pthread_create(&m->rehearse_th, NULL, rehearse_thread, m);
	return true;
}

void mig_rehearse_leftovers(struct migration *m)
{
	struct err err;
	bool found = false;
	char *dir = rehearse_spool_dir(m);
	if (!store_ensure(&m->store, "target", &err) ||
	    !rehearse_drop_leftovers(&m->store, m->name, m->rehearse_slot, m->rehearse_slot, dir,
				     &found, &err))
		log_warn("rehearse: removing what a rehearsal cut off by a crash left: %s (%s%s)",
			 err.msg,
			 mig_my_target(m) ? "the next rehearsal tries again"
					  : "drop slot and publication on the target by hand: ",
			 mig_my_target(m) ? "" : m->rehearse_slot);
	else if (found)
		log_event(LOG_LVL_NOTICE, "rehearse",
			  "status=leftovers_removed slot=%s (a rehearsal was cut off by a crash)",
			  mig_my_target(m) ? "(binlog)" : m->rehearse_slot);
	free(dir);
}

/* Runs a requested operation and hands its result to whoever asked. */
void mig_run_op(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	enum mig_op op = m->op;
	m->op_running = op != OP_NONE;
	pthread_mutex_unlock(&m->lock);
	if (op == OP_NONE)
		return;
	struct err err = {{0}};
	json_t *res = op == OP_FREEZE	   ? do_freeze(m, &err)
		      : op == OP_UNFREEZE ? do_unfreeze(m, &err)
		      : op == OP_CUTOVER  ? do_cutover(m, &err)
		      : op == OP_ROLLBACK ? do_rollback(m, &err)
		      : op == OP_COMPLETE ? do_complete(m, &err)
					  : do_abort(m, &err);
	if (res == NULL) {
		mig_report(m, &err);
		res = json_pack("{s:s}", "error", err.msg);
	} else {
		mig_clear_error(m);
	}
	pthread_mutex_lock(&m->lock);
	void (*done)(void *, json_t *) = m->op_done;
	void *arg = m->op_arg;
	m->op = OP_NONE;
	m->op_running = false;
	m->op_done = NULL;
	pthread_mutex_unlock(&m->lock);
	if (done)
		done(arg, res);
	else
		json_decref(res);
}

