/* migration_check: validation runs and the cutover gate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "migration_int.h"
#include "util.h"

/* --- validation ------------------------------------------------------------- */

void mig_free_checks(struct migration *m)
{
	for (int i = 0; i < m->nchecks; i++) {
		free(m->checks[i].name);
		free(m->checks[i].source_sql);
		free(m->checks[i].target_sql);
	}
	free(m->checks);
	m->checks = NULL;
	m->nchecks = 0;
}

bool mig_pipeline_applied_past(struct stream_progress *sp, struct spool *spool,
			       struct apply_progress *ap, uint64_t lsn)
{
	/*
	 * Read in this order: what the stream confirmed (everything committed
	 * before it is in the spool), then the spool's durable end, then what
	 * is applied.  Applied at or past the durable end means the spool holds
	 * nothing unapplied, so everything before the confirmed position is in
	 * the sink.
	 */
	pthread_mutex_lock(&sp->lock);
	uint64_t confirmed = sp->flushed_lsn;
	pthread_mutex_unlock(&sp->lock);
	struct pos durable = spool ? spool_durable_pos(spool) : pos_none();
	pthread_mutex_lock(&ap->lock);
	struct pos applied = ap->applied;
	pthread_mutex_unlock(&ap->lock);
	/* pos_scalar() values: an LSN, or a binlog coordinate (GTID positions carry theirs). */
	uint64_t a = pos_scalar(&applied);
	if (a >= lsn)
		return true;
	uint64_t d = pos_scalar(&durable);
	return confirmed >= lsn && a >= d;
}

bool migration_applied_past(struct migration *m, uint64_t lsn)
{
	return mig_pipeline_applied_past(&m->sp, m->spool, &m->ap, lsn);
}

/* When a run ends: keep each kind's verdict for the gate, then tell the caller. */
static void validation_ended(void *arg)
{
	struct migration *m = arg;
	pthread_mutex_lock(&m->vrun.lock);
	bool done = strcmp(m->vrun.status, "done") == 0;
	for (unsigned k = 0; k < ARRAY_LEN(m->vlast); k++) {
		if (!(m->vrun.kinds & (1u << k)) || !done)
			continue;
		static const char *const kname[] = {"counts", "checksums", "invariant", "query",
						    "recent"};
		int64_t bad = 0;
		bool seen = false;
		uint64_t fmin = 0;
		size_t i;
		json_t *r;
		json_array_foreach(m->vrun.results, i, r)
		{
			if (strcmp(json_string_value(json_object_get(r, "kind")), kname[k]) != 0)
				continue;
			seen = true;
			bad += !json_is_true(json_object_get(r, "ok"));
			const char *ps = json_string_value(json_object_get(r, "position"));
			if (ps == NULL)
				ps = json_string_value(json_object_get(r, "position_min"));
			struct pos p;
			const char *perr;
			uint64_t l = ps && pos_parse(ps, &p, &perr) ? pos_scalar(&p) : 0;
			if (l != 0 && (fmin == 0 || l < fmin))
				fmin = l;
		}
		if (!seen && k >= 2)
			continue; /* no [invariant]/[query] configured: nothing to record */
		if (fmin == 0)
			fmin = m->vrun.fence_min;
		m->vlast[k] = (struct vsummary){.have = true, .passed = bad == 0, .mismatches = bad,
						.fence_min = fmin};
	}
	pthread_mutex_unlock(&m->vrun.lock);
	if (m->vdone)
		m->vdone(m->vdone_arg);
}

static bool applied_past_cb(void *arg, uint64_t lsn)
{
	return migration_applied_past(arg, lsn);
}

bool migration_validate_start(struct migration *m, unsigned kinds, const char *table,
			      const struct conf_check *checks, int nchecks, const char *since,
			      void (*done)(void *), void *arg, const char **err)
{
	struct pos since_pos = m->consistent;
	if (since != NULL) {
		const char *perr;
		bool parsed = pos_parse(since, &since_pos, &perr);
		if (!mig_binlog_source(m) && (!parsed || since_pos.kind != POS_PG_LSN)) {
			*err = "--since wants a PostgreSQL position like 0/1A2B3C or pg:0/1A2B3C";
			return false;
		}
		if (mig_binlog_source(m) && (!parsed || pos_scalar(&since_pos) == 0)) {
			*err = "--since wants a binlog position like "
			       "gtid:0-1-281@mariadb-bin.000003:1234 or binlog:mariadb-bin.000003:1234";
			return false;
		}
	}
	if (!m->apply_started) {
		*err = migration_phase(m) >= PHASE_CUTOVER
			       ? "validation compares the source with the target before the flip; "
				 "after it, reverse replication is checked through status and the gate"
			       : "validation needs the applier running (phase catching_up or later)";
		return false;
	}
	pthread_mutex_lock(&m->vrun.lock);
	bool running = m->validate_started && strcmp(m->vrun.status, "running") == 0;
	pthread_mutex_unlock(&m->vrun.lock);
	if (running) {
		*err = "a validation run is already in progress";
		return false;
	}
	if (m->validate_started)
		pthread_join(m->validate_th, NULL);
	snprintf(m->vtable, sizeof(m->vtable), "%s", table ? table : "");
	/* A private copy: a reload may change the checks during the run. */
	mig_free_checks(m);
	m->checks = xcalloc((size_t)nchecks + 1, sizeof(*m->checks));
	for (int i = 0; i < nchecks; i++) {
		m->checks[i] = checks[i];
		m->checks[i].name = xstrdup(checks[i].name);
		m->checks[i].source_sql = checks[i].source_sql ? xstrdup(checks[i].source_sql) : NULL;
		m->checks[i].target_sql = checks[i].target_sql ? xstrdup(checks[i].target_sql) : NULL;
	}
	m->nchecks = nchecks;
	pthread_mutex_lock(&m->vrun.lock);
	json_decref(m->vrun.results);
	m->vrun.results = json_array();
	m->vrun.id = 0;
	m->vrun.kinds = kinds;
	snprintf(m->vrun.table, sizeof(m->vrun.table), "%s", m->vtable);
	snprintf(m->vrun.status, sizeof(m->vrun.status), "running");
	m->vrun.started_wall_us = now_wall_usec();
	m->vrun.started_mono_us = now_mono_usec();
	m->vrun.finished_wall_us = 0;
	m->vrun.work_total = m->vrun.work_done = m->vrun.rows_done = m->vrun.mismatches = 0;
	m->vrun.fence_min = m->vrun.fence_max = 0;
	m->vrun.fence_min_pos = m->vrun.fence_max_pos = pos_none();
	m->vrun.binlog = mig_binlog_source(m);
	m->vrun.error[0] = '\0';
	pthread_mutex_unlock(&m->vrun.lock);
	m->vopts = (struct validate_opts){
		.name = m->name,
		.src_engine = m->src_engine,
		.src_conninfo = mig_binlog_source(m) ? m->src_dsn : m->src_ci,
		.src_password = mig_binlog_source(m) ? m->src_password : NULL,
		.tgt_engine = m->tgt_engine,
		.tgt_conninfo = m->tgt_ci,
		.ts = &m->ts,
		.kinds = kinds,
		.table = m->vtable,
		.rows_per_second = m->rows_per_sec,
		.rechecks = m->rechecks,
		.recheck_wait_ms = m->recheck_wait_ms,
		.max_keys = m->max_keys,
		.stop = &m->stop,
		.paused = &m->validate_paused,
		.applied_past = applied_past_cb,
		.arg = m,
		.done = validation_ended,
		.done_arg = m,
		.run = &m->vrun,
		.checks = m->checks,
		.nchecks = m->nchecks,
		.keylog_path = m->keylog_path,
		.since = since_pos,
	};
	m->vdone = done;
	m->vdone_arg = arg;
	m->validate_started = true;
	pthread_create(&m->validate_th, NULL, validate_thread, &m->vopts);
	log_event(LOG_LVL_NOTICE, "validation", "status=started table=%s",
		  m->vtable[0] ? m->vtable : "*");
	return true;
}

json_t *migration_validation(struct migration *m)
{
	return m->validate_started ? validate_run_json(&m->vrun) : NULL;
}

bool migration_validate_pause(struct migration *m, bool pause, const char **err)
{
	if (!m->validate_started) {
		*err = "no validation run has been started";
		return false;
	}
	m->validate_paused = pause;
	log_event(LOG_LVL_NOTICE, "validation", "action=%s", pause ? "pause" : "resume");
	return true;
}

/* Called from migration_update_metrics(): the last finished run's figures. */
void mig_validation_metrics(struct migration *m)
{
	if (!m->validate_started)
		return;
	pthread_mutex_lock(&m->vrun.lock);
	if (strcmp(m->vrun.status, "running") != 0) {
		size_t i;
		json_t *r;
		json_array_foreach(m->vrun.results, i, r)
		{
			char t[200];
			const char *nm = json_string_value(json_object_get(r, "name"));
			if (nm != NULL) /* an [invariant]/[query] check, not a table */
				snprintf(t, sizeof(t), "check:%s", nm);
			else
				snprintf(t, sizeof(t), "%s.%s",
					 json_string_value(json_object_get(r, "schema")),
					 json_string_value(json_object_get(r, "table")));
			json_t *k = json_object_get(r, "differing_keys");
			double n = json_is_integer(k) ? (double)json_integer_value(k)
			           : json_is_true(json_object_get(r, "ok")) ? 0 : 1;
			metrics_set(metrics_childv(m->f_vmism, t,
						   json_string_value(json_object_get(r, "kind")), NULL),
				    n);
		}
		metrics_set(m->m_vtime, (double)m->vrun.finished_wall_us / 1e6);
		metrics_set(m->m_vpos, (double)m->vrun.fence_min);
	}
	pthread_mutex_unlock(&m->vrun.lock);
}

/* --- operations, journal, gate --------------------------------------------------- */

bool migration_request(struct migration *m, const char *op, const struct migd_conf *c,
		       bool dry_run, void (*done)(void *, json_t *), void *arg, const char **err)
{
	static const struct {
		const char *name;
		enum mig_op op;
	} ops[] = {{"freeze", OP_FREEZE},     {"unfreeze", OP_UNFREEZE}, {"cutover", OP_CUTOVER},
		   {"rollback", OP_ROLLBACK}, {"complete", OP_COMPLETE}, {"abort", OP_ABORT}};
	enum mig_op o = OP_NONE;
	for (size_t i = 0; i < ARRAY_LEN(ops); i++)
		if (strcmp(ops[i].name, op) == 0)
			o = ops[i].op;
	enum phase ph = migration_phase(m);
	*err = NULL;
	switch (o) {
	case OP_FREEZE:
		if (ph != PHASE_SYNCED && !(ph == PHASE_FROZEN && m->freeze_lsn))
			*err = ph < PHASE_SYNCED ? "freeze needs phase synced: the target is not caught up yet"
						 : "freeze is only possible before the flip";
		break;
	case OP_UNFREEZE:
		if (ph != PHASE_FROZEN)
			*err = "unfreeze needs phase frozen";
		break;
	case OP_CUTOVER:
		if (ph != PHASE_FROZEN)
			*err = "cutover needs phase frozen (migctl freeze, validate, gate first)";
		break;
	case OP_ROLLBACK:
		if (ph != PHASE_WATCHING)
			*err = ph < PHASE_CUTOVER ? "nothing to roll back before the flip (use abort)"
						  : "rollback needs phase watching";
		break;
	case OP_COMPLETE:
		if (ph != PHASE_WATCHING)
			*err = "complete needs phase watching (after the flip)";
		break;
	case OP_ABORT:
		if (!phase_transition_legal(ph, PHASE_ABORTED))
			*err = "abort is only possible before the flip (after it: rollback)";
		break;
	case OP_NONE:
		*err = "unknown operation";
		break;
	}
	if (*err != NULL)
		return false;
	pthread_mutex_lock(&m->lock);
	bool busy = m->op != OP_NONE;
	/* The flip waits for a running rehearsal: the gate reads its verdict. */
	bool rehearsing = !busy && o == OP_CUTOVER && m->rehearse_running;
	busy |= rehearsing;
	if (!busy) {
		m->op = o;
		m->op_done = done;
		m->op_arg = arg;
		m->dry_run = dry_run;
		/* Copies: a reload may swap the config while the operation runs. */
		mig_gate_limits(c, &m->limits);
		free(m->hook_flip);
		free(m->hook_rollback);
		m->hook_flip = c->hook_flip ? xstrdup(c->hook_flip) : NULL;
		m->hook_rollback = c->hook_rollback ? xstrdup(c->hook_rollback) : NULL;
		m->hook_timeout_ms = c->hook_timeout_ms;
		free(m->freeze_roles);
		m->freeze_roles = xstrdup(c->freeze_roles ? c->freeze_roles : "");
	}
	pthread_mutex_unlock(&m->lock);
	if (busy) {
		*err = rehearsing ? "a rehearsal of the reverse path is running: cut over after it"
				  : "another operation is in progress";
		return false;
	}
	return true;
}

json_t *migration_journal(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	json_t *j = json_deep_copy(m->journal);
	pthread_mutex_unlock(&m->lock);
	return j;
}

static void criterion(json_t *arr, bool *ready, const char *name, bool ok, json_t *value,
		      const char *threshold, const char *detail)
{
	*ready &= ok;
	json_array_append_new(arr, json_pack("{s:s, s:b, s:o, s:s, s:s?}", "name", name, "ok", ok,
					     "value", value, "threshold", threshold, "detail", detail));
}

void mig_gate_limits(const struct migd_conf *c, struct gate_limits *l)
{
	l->max_lag_ms = c->gate_max_lag_ms;
	l->max_lag_bytes = c->gate_max_lag_bytes;
	l->max_failed = c->gate_max_failed_records;
	l->max_retry = c->gate_max_retry_queue;
	l->max_slot = c->gate_max_slot_retained;
	snprintf(l->require, sizeof(l->require), "%s",
		 c->gate_require_validation ? c->gate_require_validation : "");
}

json_t *migration_gate(struct migration *m, const struct migd_conf *c)
{
	struct gate_limits l;
	mig_gate_limits(c, &l);
	return mig_gate_eval(m, &l);
}

/*
 * reverse_path_ready: the latest rehearsal (migctl rehearse) decides when
 * there is one; without one, the preconditions checked at freeze, and the
 * value says "not rehearsed".  rev: the freeze's check (or NULL), reh: the
 * rehearsal's report (or NULL).
 */
static void reverse_path(json_t *cr, bool *ready, json_t *rev, json_t *reh)
{
	char buf[700];
	bool pre_ok = rev && json_is_true(json_object_get(rev, "ok"));
	const char *pre = rev ? json_string_value(json_object_get(rev, "detail")) : NULL;
	if (reh == NULL) {
		snprintf(buf, sizeof(buf), "%s; not rehearsed (migctl rehearse proves the path)",
			 pre ? pre : "checked at freeze");
		criterion(cr, ready, "reverse_path_ready", pre_ok, json_string("not rehearsed"),
			  "the target can replicate back", buf);
		return;
	}
	bool passed = json_is_true(json_object_get(reh, "passed"));
	const char *at = json_string_value(json_object_get(reh, "at"));
	const char *phase = json_string_value(json_object_get(reh, "phase"));
	size_t i;
	json_t *s, *bad = NULL;
	json_array_foreach(json_object_get(reh, "steps"), i, s)
	{
		const char *v = json_string_value(json_object_get(s, "verdict"));
		if (bad == NULL && strcmp(v, "passed") != 0)
			bad = s;
	}
	if (!passed)
		snprintf(buf, sizeof(buf), "the rehearsal at %s failed at %s: %s", at ? at : "?",
			 bad ? json_string_value(json_object_get(bad, "name")) : "?",
			 bad ? json_string_value(json_object_get(bad, "detail")) : "?");
	else if (rev && !pre_ok)
		snprintf(buf, sizeof(buf), "rehearsed at %s, but the check at freeze failed: %s",
			 at ? at : "?", pre ? pre : "?");
	else
		snprintf(buf, sizeof(buf), "rehearsed at %s (phase %s): every step passed",
			 at ? at : "?", phase ? phase : "?");
	criterion(cr, ready, "reverse_path_ready", passed && (rev == NULL || pre_ok),
		  json_string(passed ? "rehearsal passed" : "rehearsal failed"),
		  "the target can replicate back", buf);
}

json_t *mig_gate_eval(struct migration *m, const struct gate_limits *c)
{
	struct numbers n;
	mig_numbers(m, &n);
	json_t *cr = json_array();
	bool ready = true;
	char buf[POS_TEXT_MAX + 200], thr[64], l1[POS_TEXT_MAX], l2[POS_TEXT_MAX];
	uint64_t freeze = m->freeze_lsn;

	criterion(cr, &ready, "phase", n.phase == PHASE_FROZEN, json_string(phase_name(n.phase)),
		  "frozen", n.phase == PHASE_FROZEN ? NULL : "writes must be frozen (migctl freeze)");

	pthread_mutex_lock(&m->lock);
	json_t *fr = m->freeze_report ? json_incref(m->freeze_report) : NULL;
	json_t *rev = m->reverse_ready ? json_incref(m->reverse_ready) : NULL;
	json_t *reh = m->rehearsal ? json_incref(m->rehearsal) : NULL;
	int64_t retained = m->slot_retained;
	pthread_mutex_unlock(&m->lock);
	bool enforced = fr && json_is_true(json_object_get(fr, "enforced"));
	int nw = fr ? (int)(json_array_size(json_object_get(json_object_get(fr, "source"),
							  "still_writable")) +
			  json_array_size(json_object_get(json_object_get(fr, "target"),
							  "still_writable")))
		    : -1;
	criterion(cr, &ready, "freeze_enforced", enforced, json_integer(nw), "0 roles still writable",
		  fr == NULL	? "no freeze in this run of migd (freeze again to verify it)"
		  : enforced ? NULL
			     : "not enforced: [freeze] roles is empty, or a frozen role can still write "
			       "(see migctl freeze)");

	pthread_mutex_lock(&m->ap.lock);
	int64_t viol = m->ap.freeze_violations;
	snprintf(buf, sizeof(buf), "%s", m->ap.last_violation);
	pthread_mutex_unlock(&m->ap.lock);
	criterion(cr, &ready, "freeze_violations", viol == 0, json_integer(viol), "0",
		  viol ? buf : NULL);

	bool reached = freeze && migration_applied_past(m, freeze);
	snprintf(buf, sizeof(buf), "final source position %s",
		 mig_src_text(m, freeze, l1, sizeof(l1)));
	criterion(cr, &ready, "final_position_reached", reached,
		  json_string(mig_src_text(m, freeze, l2, sizeof(l2))), "applied on the target",
		  reached ? buf : freeze ? "the target has not applied up to it yet" : "not frozen");

	snprintf(thr, sizeof(thr), "<= %.3fs", (double)c->max_lag_ms / 1000);
	criterion(cr, &ready, "lag_seconds",
		  n.lag_seconds >= 0 && n.lag_seconds * 1000 <= (double)c->max_lag_ms,
		  n.lag_seconds >= 0 ? json_real(n.lag_seconds) : json_null(), thr,
		  n.lag_seconds < 0 ? "unknown: nothing applied yet, or the applier is not running"
				    : NULL);
	snprintf(thr, sizeof(thr), "<= %lld", (long long)c->max_lag_bytes);
	criterion(cr, &ready, "lag_bytes", n.lag_bytes <= c->max_lag_bytes,
		  json_integer(n.lag_bytes), thr, NULL);

	pthread_mutex_lock(&m->ap.lock);
	int64_t failed = m->ap.counts.failed, retry = m->ap.retry_depth;
	int nschema = 0;
	for (const char *p = m->ap.schema_errors; *p; p++)
		nschema += *p == '\n';
	pthread_mutex_unlock(&m->ap.lock);
	snprintf(thr, sizeof(thr), "<= %lld", (long long)c->max_failed);
	criterion(cr, &ready, "failed_records", failed <= c->max_failed,
		  json_integer(failed), thr, failed ? "see migd.failed_records on the target" : NULL);
	snprintf(thr, sizeof(thr), "<= %lld", (long long)c->max_retry);
	criterion(cr, &ready, "retry_queue_depth", retry <= c->max_retry,
		  json_integer(retry), thr, NULL);
	criterion(cr, &ready, "schema_errors", nschema == 0, json_integer(nschema), "0",
		  nschema ? "a migrated table changed shape on the source (see status)" : NULL);

	/* Validation: each required kind passed at or after the freeze position. */
	static const char *const vk[] = {"counts", "checksums", "invariants", "queries", "recent"};
	char *req = xstrdup(c->require);
	char *save = NULL;
	for (char *k = strtok_r(req, ", ", &save); k; k = strtok_r(NULL, ", ", &save)) {
		int idx = -1;
		for (int i = 0; i < 5; i++)
			if (strcmp(k, vk[i]) == 0)
				idx = i;
		char name[48];
		snprintf(name, sizeof(name), "validation_%s", k);
		if (idx < 0) {
			criterion(cr, &ready, name, false, json_null(), "a known kind",
				  "[gate] require_validation names an unknown kind");
			continue;
		}
		pthread_mutex_lock(&m->vrun.lock);
		struct vsummary v = m->vlast[idx];
		pthread_mutex_unlock(&m->vrun.lock);
		bool at_freeze = freeze && v.fence_min >= freeze;
		bool ok = v.have && v.passed && at_freeze;
		if (!v.have)
			snprintf(buf, sizeof(buf), "not run (migctl validate --kind %s --wait)", k);
		else if (!v.passed)
			snprintf(buf, sizeof(buf), "%lld difference(s) at %s", (long long)v.mismatches,
				 mig_src_text(m, v.fence_min, l1, sizeof(l1)));
		else if (!at_freeze)
			snprintf(buf, sizeof(buf), "passed at %s, before the freeze position %s: run it again",
				 mig_src_text(m, v.fence_min, l1, sizeof(l1)),
				 mig_src_text(m, freeze, l2, sizeof(l2)));
		else
			snprintf(buf, sizeof(buf), "passed at %s (freeze at %s)",
				 mig_src_text(m, v.fence_min, l1, sizeof(l1)),
				 mig_src_text(m, freeze, l2, sizeof(l2)));
		criterion(cr, &ready, name, ok,
			  v.have ? json_string(mig_src_text(m, v.fence_min, l1, sizeof(l1))) : json_null(),
			  "passed at or after the freeze position", buf);
	}
	free(req);

	reverse_path(cr, &ready, rev, reh);
	snprintf(thr, sizeof(thr), "<= %lld", (long long)c->max_slot);
	criterion(cr, &ready, "slot_retention", retained >= 0 && retained <= c->max_slot,
		  json_integer(retained), thr, retained < 0 ? "unknown" : NULL);
	json_decref(fr);
	json_decref(rev);
	json_decref(reh);
	return json_pack("{s:b, s:s, s:o}", "ready", ready, "phase", phase_name(n.phase), "criteria",
			 cr);
}

json_t *migration_freeze_report(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	json_t *r = m->freeze_report ? json_deep_copy(m->freeze_report) : json_null();
	pthread_mutex_unlock(&m->lock);
	return r;
}

