/* migration_ops: the operator's operations, run by the coordinator (freeze, unfreeze). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "migration_int.h"
#include "pgfreeze.h"
#include "util.h"

/* --- freeze / unfreeze -------------------------------------------------------- */

bool mig_source_lsn_now(struct migration *m, uint64_t *lsn, struct err *err)
{
	char *v = pgconn_query_value(&m->src, "SELECT pg_current_wal_lsn()::text", 0, NULL, err);
	if (v == NULL)
		return false;
	bool ok = pos_lsn_parse(v, lsn);
	free(v);
	return ok;
}

/* Can the target host the reverse slot?  (wal_level, replication role, a free slot.) */
static json_t *reverse_preconditions(struct migration *m)
{
	struct err err;
	char *rs = xasprintf("migd_%s_reverse", m->name);
	bool ok = pgcapture_check(&m->tgt, rs, &err);
	free(rs);
	return json_pack("{s:b, s:s}", "ok", ok, "detail",
			 ok ? "the target can host the reverse slot (wal_level=logical, replication "
			      "role, free slot); rehearsal comes with the cutover work"
			    : err.msg);
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
	if (!mig_ensure(&m->src, "source", m->src_ci, err) || !mig_ensure(&m->tgt, "target", m->tgt_ci, err) ||
	    !pgstore_set_pending(&m->tgt, m->name, "freeze", NULL, err))
		return NULL;
	mig_activity(m, "freezing writes");
	int64_t t0 = now_mono_usec();
	final = m->freeze_lsn; /* enforcing again after a restart keeps the freeze position */
	/* The candidate is protected too: no application write may land on it before the flip. */
	if (!pgfreeze_enforce(&m->src, "source", false, &m->tgt, m->name, m->freeze_roles, &m->ts,
			      &src_rep, err) ||
	    !pgfreeze_enforce(&m->tgt, "target", true, &m->tgt, m->name, m->freeze_roles, &m->ts,
			      &tgt_rep, err) ||
	    (final == 0 && !mig_source_lsn_now(m, &final, err))) {
		json_decref(src_rep);
		json_decref(tgt_rep);
		return NULL;
	}
	struct pos fp = pos_from_lsn(final);
	char l[32], reason[160];
	if (!pgstore_set_pending(&m->tgt, m->name, "freeze", &fp, err)) {
		json_decref(src_rep);
		json_decref(tgt_rep);
		return NULL;
	}
	m->freeze_lsn = final;
	snprintf(reason, sizeof(reason), "writes frozen; final source position %s",
		 pos_lsn_format(final, l, sizeof(l)));
	if (ph == PHASE_SYNCED && !mig_set_phase_at(m, PHASE_FROZEN, reason, final)) {
		json_decref(src_rep);
		json_decref(tgt_rep);
		err_set(err, "stopped");
		return NULL;
	}
	if (!pgstore_set_pending(&m->tgt, m->name, NULL, NULL, err)) {
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
	bool enforced = json_array_size(json_object_get(src_rep, "still_writable")) == 0 &&
			json_array_size(json_object_get(tgt_rep, "still_writable")) == 0;
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
	if (!mig_ensure(&m->src, "source", m->src_ci, err) || !mig_ensure(&m->tgt, "target", m->tgt_ci, err) ||
	    !pgstore_set_pending(&m->tgt, m->name, "unfreeze", NULL, err) ||
	    !pgfreeze_lift(&m->src, "source", &m->tgt, m->name, &rs, err) ||
	    !pgfreeze_lift(&m->tgt, "target", &m->tgt, m->name, &rt, err))
		return NULL;
	m->freeze_lsn = 0;
	if (!mig_set_phase(m, PHASE_SYNCED, "writes unfrozen by the operator (before the flip)"))
		return NULL;
	struct pos none = pos_none();
	if (!pgstore_set_pending(&m->tgt, m->name, NULL, &none, err))
		return NULL;
	pthread_mutex_lock(&m->lock);
	json_decref(m->freeze_report);
	m->freeze_report = NULL;
	pthread_mutex_unlock(&m->lock);
	mig_activity(m, "in sync; streaming changes");
	return json_pack("{s:i, s:i}", "grants_restored_source", rs, "grants_restored_target", rt);
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
	json_t *res = op == OP_FREEZE ? do_freeze(m, &err) : do_unfreeze(m, &err);
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

