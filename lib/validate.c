/*
 * validate: the run, fenced comparisons and counts (see validate.h).  The
 * sides' reads in canonical form are vside's; chunk checksums are in
 * validate_sums.c, narrowing a differing chunk to its keys in
 * validate_narrow.c; the [invariant]/[query] checks and recent writes are
 * in validate_checks.c.
 */
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pos.h"
#include "util.h"
#include "validate_int.h"
#include "vstore.h"

unsigned validate_kind_parse(const char *s)
{
	if (strcmp(s, "counts") == 0)
		return VK_COUNTS;
	if (strcmp(s, "checksums") == 0)
		return VK_CHECKSUMS;
	if (strcmp(s, "invariants") == 0)
		return VK_INVARIANTS;
	if (strcmp(s, "queries") == 0)
		return VK_QUERIES;
	if (strcmp(s, "recent") == 0)
		return VK_RECENT;
	if (strcmp(s, "all") == 0)
		return VK_ALL;
	return 0;
}

static const char *kinds_text(unsigned kinds, char *buf, size_t n)
{
	static const char *const names[] = {"counts", "checksums", "invariants", "queries",
					    "recent"};
	size_t len = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < ARRAY_LEN(names); i++)
		if (kinds & (1u << i))
			len += (size_t)snprintf(buf + len, n > len ? n - len : 0, "%s%s",
						len ? "," : "", names[i]);
	return buf;
}

/* No position yet: PostgreSQL's runs always showed 0/0 there. */
static const char *pos_text(bool binlog, const struct pos *p, char *buf, size_t n)
{
	if (p->kind == POS_PG_LSN || (p->kind == POS_NONE && !binlog))
		return pos_lsn_format(p->kind == POS_PG_LSN ? p->lsn : 0, buf, n);
	return pos_format(p, buf, n);
}

const char *vctx_pos_text(const struct vctx *v, const struct pos *p, char *buf, size_t n)
{
	return pos_text(v->binlog, p, buf, n);
}

/* --- plumbing ------------------------------------------------------------------ */

bool vctx_wait_applied(struct vctx *v, const struct pos *fence)
{
	uint64_t at = pos_scalar(fence);
	int64_t deadline = now_mono_usec() + v->o->recheck_wait_ms * 1000;
	while (!*v->o->stop) {
		if (v->o->applied_past(v->o->arg, at))
			return true;
		if (now_mono_usec() > deadline)
			return false;
		sleep_interruptible(50, v->o->stop);
	}
	return false;
}

void vctx_not_reached(struct vctx *v, const struct pos *fence, struct err *err)
{
	char f[POS_TEXT_MAX];
	if (!*v->o->stop)
		err_set(err, "the applier did not reach %s within the recheck wait",
			vctx_pos_text(v, fence, f, sizeof(f)));
}

void vctx_throttle(struct vctx *v, int64_t rows)
{
	while (*v->o->paused && !*v->o->stop)
		sleep_interruptible(200, v->o->stop);
	pthread_mutex_lock(&v->run->lock);
	v->run->rows_done += rows;
	pthread_mutex_unlock(&v->run->lock);
	if (v->o->rows_per_second <= 0)
		return;
	v->throttle_rows += rows;
	double should = (double)v->throttle_rows / (double)v->o->rows_per_second;
	double spent = (double)(now_mono_usec() - v->throttle_start) / 1e6;
	if (should > spent)
		sleep_interruptible((int)((should - spent) * 1000), v->o->stop);
}

void vctx_note_fence(struct vctx *v, const struct pos *fence)
{
	uint64_t f = pos_scalar(fence);
	pthread_mutex_lock(&v->run->lock);
	if (v->run->fence_min == 0 || f < v->run->fence_min) {
		v->run->fence_min = f;
		v->run->fence_min_pos = *fence;
	}
	if (f > v->run->fence_max) {
		v->run->fence_max = f;
		v->run->fence_max_pos = *fence;
	}
	pthread_mutex_unlock(&v->run->lock);
}

void vctx_add_result(struct vctx *v, json_t *res)
{
	pthread_mutex_lock(&v->run->lock);
	json_array_append_new(v->run->results, res);
	pthread_mutex_unlock(&v->run->lock);
}

void vctx_progress(struct vctx *v, int64_t total_delta, int64_t done_delta, int64_t mism)
{
	pthread_mutex_lock(&v->run->lock);
	v->run->work_total += total_delta;
	v->run->work_done += done_delta;
	v->run->mismatches += mism;
	pthread_mutex_unlock(&v->run->lock);
}

static bool side_read(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		      bool counts_only, struct vdigest *d, struct err *err)
{
	*d = (struct vdigest){0};
	return counts_only ? vside_count(s, t, &d->rows, err) : vside_digest(s, t, sel, d, err);
}

bool vctx_compare(struct vctx *v, const struct mig_table *t, const struct vsel *sel,
		  bool counts_only, int64_t rechecks, bool *same, struct vdigest *s,
		  struct vdigest *d, struct pos *fence, struct err *err)
{
	for (int64_t attempt = 0; attempt <= rechecks && !*v->o->stop; attempt++) {
		if (!side_read(&v->src, t, sel, counts_only, s, err) ||
		    !vside_position(&v->src, fence, err))
			return false;
		if (!vctx_wait_applied(v, fence)) {
			if (*v->o->stop)
				break;
			vctx_not_reached(v, fence, err);
			return false;
		}
		if (!side_read(&v->tgt, t, sel, counts_only, d, err))
			return false;
		*same = s->rows == d->rows && s->sum == d->sum;
		if (*same)
			return true;
		char f[POS_TEXT_MAX];
		log_debug("validate: %s.%s differs at %s (attempt %lld); checking again", t->schema,
			  t->name, vctx_pos_text(v, fence, f, sizeof(f)), (long long)attempt);
	}
	return !*v->o->stop;
}

/* --- per table --------------------------------------------------------------- */

bool vctx_in_scope(const struct validate_opts *o, const struct mig_table *t)
{
	char full[160];
	snprintf(full, sizeof(full), "%s.%s", t->schema, t->name);
	return !o->table || !o->table[0] || strcmp(o->table, full) == 0 ||
	       strcmp(o->table, t->name) == 0;
}

static bool check_counts(struct vctx *v, const struct mig_table *t, struct err *err)
{
	struct vdigest s, d;
	struct vsel all = {0};
	struct pos fence;
	bool same = false;
	if (!vctx_compare(v, t, &all, true, v->o->rechecks, &same, &s, &d, &fence, err))
		return false;
	if (*v->o->stop)
		return true;
	char f[POS_TEXT_MAX];
	vctx_note_fence(v, &fence);
	vctx_add_result(v, json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:s}", "schema", t->schema,
				     "table", t->name, "kind", "counts", "ok", same, "source_rows",
				     (json_int_t)s.rows, "target_rows", (json_int_t)d.rows,
				     "position", vctx_pos_text(v, &fence, f, sizeof(f))));
	vctx_progress(v, 0, 1, same ? 0 : 1);
	vctx_throttle(v, s.rows + d.rows);
	return true;
}

/* --- the run ----------------------------------------------------------------- */

static bool store(struct vctx *v, struct err *err)
{
	pthread_mutex_lock(&v->run->lock);
	char *res = json_dumps(v->run->results, JSON_COMPACT);
	char kinds[64], mism[24], fmin[POS_TEXT_MAX], fmax[POS_TEXT_MAX];
	kinds_text(v->run->kinds, kinds, sizeof(kinds));
	snprintf(mism, sizeof(mism), "%lld", (long long)v->run->mismatches);
	vctx_pos_text(v, &v->run->fence_min_pos, fmin, sizeof(fmin));
	vctx_pos_text(v, &v->run->fence_max_pos, fmax, sizeof(fmax));
	char status[sizeof(v->run->status)];
	snprintf(status, sizeof(status), "%s", v->run->status);
	pthread_mutex_unlock(&v->run->lock);
	struct vstore_run row = {v->o->name, kinds, status, mism, fmin, fmax, res};
	int64_t id;
	bool ok = vstore_save(&v->tgt, &row, &id, err);
	free(res);
	if (!ok)
		return false;
	pthread_mutex_lock(&v->run->lock);
	v->run->id = id;
	pthread_mutex_unlock(&v->run->lock);
	return true;
}

static void finish(struct vctx *v, const char *status, const char *error)
{
	pthread_mutex_lock(&v->run->lock);
	snprintf(v->run->status, sizeof(v->run->status), "%s", status);
	if (error)
		snprintf(v->run->error, sizeof(v->run->error), "%s", error);
	v->run->finished_wall_us = now_wall_usec();
	pthread_mutex_unlock(&v->run->lock);
}

static bool connect_sides(struct vctx *v, struct err *err)
{
	const struct validate_opts *o = v->o;
	v->binlog = o->src_engine != ENGINE_POSTGRESQL;
	/* The PostgreSQL pair shows values as it always did; every other pair canonical text. */
	bool pg_pair = o->src_engine == ENGINE_POSTGRESQL && o->tgt_engine == ENGINE_POSTGRESQL;
	v->src = (struct vside){.engine = o->src_engine,
				.conninfo = o->src_conninfo,
				.password = o->src_password,
				.legacy_detail = pg_pair};
	v->tgt = (struct vside){.engine = o->tgt_engine,
				.target = true,
				.conninfo = o->tgt_conninfo,
				.legacy_detail = pg_pair};
	pthread_mutex_lock(&v->run->lock);
	v->run->binlog = v->binlog;
	pthread_mutex_unlock(&v->run->lock);
	bool src_ok = false, tgt_ok = false;
	if (!vside_ensure(&v->src, err) || !vside_ensure(&v->tgt, err) ||
	    !vside_probe_pghash(&v->src, &src_ok, err) ||
	    !vside_probe_pghash(&v->tgt, &tgt_ok, err))
		return false;
	/* A MySQL/MariaDB target: its tables as mysnap reads them, the source in their shape. */
	if (o->tgt_engine != ENGINE_POSTGRESQL && !vside_my_prepare(&v->src, &v->tgt, o->ts, err))
		return false;
	/*
	 * Both sides digest alike: PostgreSQL's own hash where every side gives
	 * ours (a MariaDB side's rows are hashed here as vside_pghash()), of the
	 * record text when both are PostgreSQL.
	 */
	enum vdigest_kind k = !src_ok || !tgt_ok ? VDIGEST_MD5
			      : pg_pair		 ? VDIGEST_PGROW
						 : VDIGEST_PGHASH;
	v->src.digest = v->tgt.digest = k;
	return true;
}

void *validate_thread(void *arg)
{
	const struct validate_opts *o = arg;
	struct vctx v = {.o = o, .run = o->run, .throttle_start = now_mono_usec()};
	struct err err;
	bool ok = connect_sides(&v, &err);
	bool by_table = o->kinds & (VK_COUNTS | VK_CHECKSUMS);
	int tables = 0, checks = 0;
	for (int i = 0; ok && by_table && i < o->ts->n && !*o->stop; i++) {
		const struct mig_table *t = &o->ts->t[i];
		if (!vctx_in_scope(o, t))
			continue;
		tables++;
		if (o->kinds & VK_COUNTS) {
			vctx_progress(&v, 1, 0, 0);
			ok = check_counts(&v, t, &err);
		}
		if (ok && (o->kinds & VK_CHECKSUMS))
			ok = validate_checksums(&v, t, &err);
	}
	/* Checks span tables: a run scoped to one table leaves them out. */
	bool scoped = o->table && o->table[0];
	for (int i = 0; ok && !scoped && i < o->nchecks && !*o->stop; i++) {
		const struct conf_check *ck = &o->checks[i];
		if (((o->kinds & VK_INVARIANTS) && ck->kind == CHECK_INVARIANT) ||
		    ((o->kinds & VK_QUERIES) && ck->kind == CHECK_QUERY)) {
			checks++;
			ok = validate_run_check(&v, ck, &err);
		}
	}
	if (ok && (o->kinds & VK_RECENT))
		ok = validate_recent(&v, &err);
	if (ok && by_table && tables == 0 && o->table && o->table[0]) {
		err_set(&err, "no migrated table is called '%s'", o->table);
		ok = false;
	} else if (ok && !by_table && !scoped && !(o->kinds & VK_RECENT) && checks == 0) {
		err_set(&err, "no [invariant] or [query] section is configured");
		ok = false;
	}
	if (*o->stop)
		finish(&v, "stopped", NULL);
	else if (!ok)
		finish(&v, "failed", err.msg);
	else
		finish(&v, "done", NULL);
	if (ok && !*o->stop && !store(&v, &err))
		log_warn("validate: could not store the results: %s", err.msg);
	pthread_mutex_lock(&v.run->lock);
	log_event(LOG_LVL_NOTICE, "validation", "status=%s mismatches=%lld", v.run->status,
		  (long long)v.run->mismatches);
	pthread_mutex_unlock(&v.run->lock);
	validate_ahead_free(&v);
	vside_close(&v.src);
	vside_close(&v.tgt);
	if (o->done)
		o->done(o->done_arg);
	return NULL;
}

json_t *validate_run_json(struct validate_run *run)
{
	char a[POS_TEXT_MAX], b[POS_TEXT_MAX];
	pthread_mutex_lock(&run->lock);
	double secs = (double)(now_mono_usec() - run->started_mono_us) / 1e6;
	double rate = secs > 0.2 ? (double)run->rows_done / secs : 0;
	double frac = run->work_total ? (double)run->work_done / (double)run->work_total : 0;
	double eta = strcmp(run->status, "running") != 0 ? 0
		     : frac > 0.01			    ? secs * (1 - frac) / frac
							    : -1;
	json_t *o = json_pack(
		"{s:I, s:s, s:s, s:I, s:I, s:I, s:f, s:f, s:I, s:s, s:s, s:O, s:s?}", "id",
		(json_int_t)run->id, "status", run->status, "table", run->table[0] ? run->table : "*",
		"work_total", (json_int_t)run->work_total, "work_done", (json_int_t)run->work_done,
		"rows_read", (json_int_t)run->rows_done, "rows_per_second", rate, "eta_seconds", eta,
		"mismatches", (json_int_t)run->mismatches, "position_min",
		pos_text(run->binlog, &run->fence_min_pos, a, sizeof(a)), "position_max",
		pos_text(run->binlog, &run->fence_max_pos, b, sizeof(b)), "results", run->results,
		"error", run->error[0] ? run->error : NULL);
	char kt[64];
	json_object_set_new(o, "kinds", json_string(kinds_text(run->kinds, kt, sizeof(kt))));
	json_object_set_new(o, "started_at_us", json_integer(run->started_wall_us));
	json_object_set_new(o, "finished_at_us", json_integer(run->finished_wall_us));
	pthread_mutex_unlock(&run->lock);
	return o;
}
