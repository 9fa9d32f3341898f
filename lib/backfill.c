/*
 * backfill: chunk planning, parallel chunk copy and the rebuild of deferred
 * indexes (see backfill.h).
 *
 * Each worker owns one source (bfsource.h) and one target (bftarget.h)
 * and loops: take the next piece of work -- an index whose table has all
 * its chunks done, else the next pending chunk -- and do it.  Chunks go
 * biggest table first, so the big table's index builds overlap the small
 * tables' copies.  The source hands a chunk's rows over one COPY text line
 * at a time and the target takes each as it comes (COPY FROM STDIN, or
 * multi-row INSERTs of bounded size), so memory does not depend on chunk or
 * table size.  One line per row gives the row count and checksum for free.
 * This file is engine-neutral: the order of the steps and the ledger's
 * rules are here, their SQL is the target's.
 */
#include "backfill.h"

#include "bfsource.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bftarget.h"
#include "log.h"
#include "util.h"

/* One table's share of a run. */
struct table_run {
	char *table_name; /* owned; "schema.name", the ledger's key */
	int pending;      /* chunks of it loaded for this run (for the order) */
	int chunks_left;  /* of those, not done yet (running included) */
	int nidx;         /* deferred indexes to build back */
	int idx_started, idx_done;
	bool blocked; /* a chunk failed for good: its indexes wait for the next run */
};

struct chunk {
	struct mig_table *t;  /* borrowed */
	struct table_run *tr; /* borrowed */
	int no;
	char *lo, *hi;     /* owned; text[] literals from the ledger, NULL = open */
	bool target_empty; /* the target table was empty at plan: no range delete */
	int attempts;
};

struct index_job {
	const struct pgmeta_index *ix; /* borrowed from run.ixs */
	struct table_run *tr;          /* borrowed */
	bool taken;
	int attempts;
};

struct run {
	const struct backfill_opts *o;
	struct backfill_progress *prog;
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;  /* a chunk finished: an index may be ready */
	struct chunk *chunks; /* owned */
	int nchunks, next, chunks_running;
	struct table_run *tables; /* owned */
	int ntables;
	struct pgmeta_index *ixs; /* owned */
	struct index_job *jobs;   /* owned; one per ixs entry */
	int nixs;
	int failed_chunks, failed_indexes;
	char first_failure[512];
	/*
	 * Each worker's target, published while it builds an index, so that a
	 * stop cancels the build (it can take hours).
	 */
	struct bftarget **building; /* owned array; entries borrowed from their worker */
	int workers_left;
	int64_t thr_start_usec, thr_rows; /* the throttle: rows copied since its start */
};

struct worker_arg {
	struct run *run;
	int slot;
};

/* --- planning ---------------------------------------------------------------- */

/*
 * A non-empty MySQL/MariaDB target table deletes each chunk's range first,
 * comparing character keys by their bytes (mysnap.h).  A PostgreSQL
 * source's ranges follow its key's collation: they agree only where that
 * orders by bytes too ("C", "POSIX", "ucs_basic").  False with err naming
 * the column otherwise.
 */
static bool key_order_agrees(struct bfsource *src, const struct mig_table *t, struct err *err)
{
	if (src->mariadb || t->nkey == 0)
		return true;
	struct strbuf b = {0};
	for (int k = 0; k < t->nkey; k++) {
		char *lit = pgconn_literal(t->cols[t->key_idx[k]].name);
		sb_addf(&b, "%s%s", k ? ", " : "", lit);
		free(lit);
	}
	char *names = sb_take(&b);
	char *sql = xasprintf(
	    "SELECT a.attname, CASE WHEN co.collname = 'default' "
	    "  THEN (SELECT datcollate FROM pg_database WHERE datname = current_database()) "
	    "  ELSE co.collname END "
	    "FROM pg_attribute a JOIN pg_collation co ON co.oid = a.attcollation "
	    "WHERE a.attrelid = %u AND a.attname IN (%s)",
	    t->src_relid, names);
	free(names);
	PGresult *r = pgconn_query(&src->pg, sql, 0, NULL, err);
	free(sql);
	if (r == NULL)
		return false;
	bool ok = true;
	for (int i = 0; i < PQntuples(r) && ok; i++) {
		const char *coll = PQgetvalue(r, i, 1);
		ok = strcmp(coll, "C") == 0 || strcmp(coll, "POSIX") == 0 ||
		     strcmp(coll, "ucs_basic") == 0;
		if (!ok)
			err_set(err,
				"the target table %s is not empty and key column %s sorts by "
				"collation %s on the source: the chunks' range deletes would not "
				"match MySQL/MariaDB's byte order (empty the target table, or give "
				"the column COLLATE \"C\" on the source)",
				t->tgt_qname, PQgetvalue(r, i, 0), coll);
	}
	PQclear(r);
	return ok;
}

static bool plan_table(struct bfsource *src, struct bftarget *tgt, const struct backfill_opts *o,
		       const struct mig_table *t, struct err *err)
{
	char *tname = bftarget_table_name(t);
	bool planned;
	bool ok = tgt->ops->planned(tgt, o->name, tname, &planned, err);
	free(tname);
	if (!ok)
		return false;
	if (planned)
		return true;

	/* The whole plan of a table (and its deferred indexes) commits at once: a crash re-plans
	 * it. */
	bool empty;
	int deferred;
	if (!tgt->ops->plan_begin(tgt, o->name, t, o->defer_indexes, &empty, &deferred, err)) {
		if (!tgt->ops->plan_end(tgt, false, &(struct err){{0}})) {
		}
		return false;
	}
	if (!empty && tgt->engine != ENGINE_POSTGRESQL)
		ok = key_order_agrees(src, t, err);
	if (!ok) {
	} else if (t->nkey == 0) {
		ok = tgt->ops->plan_chunk(tgt, o->name, t, 0, NULL, NULL, empty, err);
	} else {
		char *prev = NULL;
		int no = 0;
		for (;;) {
			bool end = false;
			char *b = bfsource_next_boundary(src, t, prev, o->chunk_rows, &end, err);
			if (b == NULL) {
				ok = false;
				break;
			}
			if (end) {
				free(b);
				ok = tgt->ops->plan_chunk(tgt, o->name, t, no, prev, NULL, empty,
							  err);
				break;
			}
			if (!tgt->ops->plan_chunk(tgt, o->name, t, no++, prev, b, empty, err)) {
				free(b);
				ok = false;
				break;
			}
			free(prev);
			prev = b;
		}
		free(prev);
	}
	if (!tgt->ops->plan_end(tgt, ok, ok ? err : &(struct err){{0}}) || !ok)
		return false;
	if (deferred > 0)
		log_event(LOG_LVL_NOTICE, "backfill_defer_indexes", "table=%s.%s indexes=%d",
			  t->schema, t->name, deferred);
	return true;
}

static bool load_totals(struct bftarget *tgt, const char *name, struct backfill_progress *prog,
			struct err *err)
{
	struct bftarget_totals n;
	if (!tgt->ops->totals(tgt, name, &n, err))
		return false;
	pthread_mutex_lock(&prog->lock);
	prog->chunks_total = n.chunks;
	prog->chunks_done = n.done;
	prog->chunks_failed = n.failed;
	prog->rows_done = n.rows_done;
	pthread_mutex_unlock(&prog->lock);
	return true;
}

bool backfill_load_totals(struct store *tgt, const char *name, struct backfill_progress *prog,
			  struct err *err)
{
	struct bftarget *t = bftarget_of_store(tgt);
	bool ok = t->ops->connect(t, err) && load_totals(t, name, prog, err);
	t->ops->free(t);
	return ok;
}

bool backfill_plan(struct bfsource *src, struct store *tgt, const struct backfill_opts *o,
		   struct backfill_progress *prog, struct err *err)
{
	struct bftarget *t = bftarget_of_store(tgt);
	int64_t est = 0;
	bool ok = t->ops->connect(t, err);
	for (int i = 0; ok && i < o->ts->n; i++) {
		if (!plan_table(src, t, o, &o->ts->t[i], err)) {
			err_prefix(err, "planning %s.%s", o->ts->t[i].schema, o->ts->t[i].name);
			ok = false;
		}
		if (o->ts->t[i].est_rows > 0)
			est += (int64_t)o->ts->t[i].est_rows;
	}
	if (ok) {
		pthread_mutex_lock(&prog->lock);
		prog->rows_total_est = est;
		pthread_mutex_unlock(&prog->lock);
		ok = load_totals(t, o->name, prog, err);
	}
	t->ops->free(t);
	return ok;
}

/* --- copying ----------------------------------------------------------------- */

/*
 * Hash of one COPY row, 8 bytes a step (a byte-wise FNV-1a was the
 * biggest item in migd's own profile).  The chunk checksum is the sum over
 * rows; it is a record in the ledger, not compared with anything.
 */
static uint64_t row_hash(const char *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n, w;
	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ le64toh(w)) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
	}
	w = 0;
	memcpy(&w, p, n);
	h = (h ^ le64toh(w)) * 0x94d049bb133111ebULL;
	return h ^ (h >> 29);
}

static void add_rows(struct run *run, int64_t n)
{
	pthread_mutex_lock(&run->prog->lock);
	run->prog->rows_done += n;
	pthread_mutex_unlock(&run->prog->lock);
}

/* What a chunk copy's callbacks need: the target, the hash, the rows that cannot be copied. */
struct copy_ctx {
	struct bftarget *tgt;
	uint64_t sum;
	int64_t lines;
	int64_t refused; /* of the lines, rows the target could not take */
	struct run *run;
	char **bad_keys, **bad_why; /* owned; rows recorded as failed records */
	int nbad;
	struct err err;
};

#define MAX_BAD_ROWS 1000 /* per chunk; more means the data needs fixing, not records */

/*
 * Keeps the copy at rows_per_second, every worker's rows together: a
 * worker that is ahead sleeps (its chunk's transactions stay open, which
 * costs nothing but time).  Credit for time spent paused or waiting on a
 * server is capped at one second, so a resume does not burst.
 */
#define THROTTLE_EVERY 1024
static void throttle(struct run *run, int64_t rows)
{
	int64_t rate = run->o->rows_per_second;
	if (rate <= 0)
		return;
	int64_t now = now_mono_usec();
	pthread_mutex_lock(&run->lock);
	run->thr_rows += rows;
	int64_t due = run->thr_start_usec + run->thr_rows * 1000000 / rate;
	if (now - due > 1000000) {
		run->thr_start_usec += now - due - 1000000;
		due = now - 1000000;
	}
	pthread_mutex_unlock(&run->lock);
	if (due > now)
		sleep_interruptible((int)((due - now + 999) / 1000), run->o->stop);
}

static bool put_line(void *arg, const char *buf, size_t len)
{
	struct copy_ctx *x = arg;
	x->sum += row_hash(buf, len);
	if (!x->tgt->ops->chunk_put(x->tgt, buf, len, &x->err))
		return false;
	if (++x->lines % 8192 == 0)
		add_rows(x->run, 8192);
	if (x->lines % THROTTLE_EVERY == 0)
		throttle(x->run, THROTTLE_EVERY);
	return true;
}

/* A row the source cannot render (bfsource's bad()). */
static bool keep_bad(void *arg, const char *key, const char *why)
{
	struct copy_ctx *x = arg;
	if (x->nbad == MAX_BAD_ROWS)
		return false;
	x->bad_keys = xrealloc(x->bad_keys, (size_t)(x->nbad + 1) * sizeof(char *));
	x->bad_why = xrealloc(x->bad_why, (size_t)(x->nbad + 1) * sizeof(char *));
	x->bad_keys[x->nbad] = xstrdup(key);
	x->bad_why[x->nbad++] = xstrdup(why);
	return true;
}

/* A row the target cannot take (bftarget_chunk's bad()): a line delivered, not copied. */
static bool target_bad(void *arg, const char *key, const char *why)
{
	struct copy_ctx *x = arg;
	x->refused++;
	return keep_bad(arg, key, why);
}

/* Rows that cannot be copied: failed records, in the chunk's transaction. */
static bool record_bad(struct copy_ctx *x, const struct backfill_opts *o, const struct chunk *c,
		       struct err *err)
{
	char *tname = bftarget_table_name(c->t);
	bool ok = true;
	for (int i = 0; i < x->nbad && ok; i++) {
		ok = x->tgt->ops->failed_record(x->tgt, o->name, tname,
						o->source_pos ? o->source_pos : "none",
						x->bad_keys[i], x->bad_why[i], err);
		log_event(LOG_LVL_ERROR, "failed_record", "table=%s key=%s phase=backfill error=\"%s\"",
			  tname, x->bad_keys[i], x->bad_why[i]);
	}
	free(tname);
	return ok;
}

static void free_bad(struct copy_ctx *x)
{
	for (int i = 0; i < x->nbad; i++) {
		free(x->bad_keys[i]);
		free(x->bad_why[i]);
	}
	free(x->bad_keys);
	free(x->bad_why);
}

static struct bftarget_chunk target_chunk(const struct chunk *c)
{
	return (struct bftarget_chunk){
	    .t = c->t, .no = c->no, .lo = c->lo, .hi = c->hi, .target_empty = c->target_empty};
}

/* One attempt at a chunk: true when it is done (by this attempt or an earlier one). */
static bool copy_chunk(struct run *run, struct bfsource *src, struct bftarget *tgt, struct chunk *c,
		       struct err *err)
{
	const struct backfill_opts *o = run->o;
	bool ok = false, already = false;
	struct copy_ctx x = {.tgt = tgt, .run = run};
	struct bftarget_chunk tc = target_chunk(c);
	tc.bad = target_bad;
	tc.bad_arg = &x;
	int64_t rows = 0;

	/*
	 * Source: a read-only snapshot transaction (the exported one when we have
	 * it).  A table without a key cannot converge through replay: its copy
	 * records the exact position it holds for, and the applier starts the
	 * table there (bfsource.h).
	 */
	struct pos at;
	char at_text[POS_TEXT_MAX];
	bool keyless = c->t->nkey == 0;
	if (!bfsource_begin(src, o->snapshot, &o->snapshot_pos, keyless ? &at : NULL, err))
		goto out;
	if (keyless)
		tc.copied_at = pos_format(&at, at_text, sizeof(at_text));
	/* Target: one transaction fills the range and records it (see backfill.h). */
	if (!tgt->ops->chunk_begin(tgt, &tc, err))
		goto out;
	if (!bfsource_copy(src, c->t, c->lo, c->hi, put_line, keep_bad, &x, &rows, err)) {
		if (x.err.msg[0])
			*err = x.err; /* the target's reason is the real one */
		if (x.nbad == MAX_BAD_ROWS)
			err_prefix(err, "more than %d rows cannot be copied; ", MAX_BAD_ROWS);
		goto out;
	}
	if (!tgt->ops->chunk_end(tgt, err)) {
		if (x.nbad == MAX_BAD_ROWS)
			err_prefix(err, "more than %d rows cannot be copied; ", MAX_BAD_ROWS);
		goto out;
	}
	if (!record_bad(&x, o, c, err))
		goto out;

	if (!tgt->ops->chunk_done(tgt, o->name, &tc, rows - x.refused, x.sum, &already, err))
		goto out;
	if (already) {
		log_notice(
		    "backfill: %s.%s chunk %d was committed by an earlier attempt (its COMMIT "
		    "reply was lost); this copy is rolled back",
		    c->t->schema, c->t->name, c->no);
		ok = true;
		goto out;
	}
	ok = tgt->ops->chunk_commit(tgt, err);
	bfsource_end(src);
	if (ok)
		add_rows(run, rows % 8192);
out:
	if (!ok || already) {
		bfsource_end(src);
		tgt->ops->chunk_abort(tgt);
		add_rows(run, -(x.lines - x.lines % 8192));
	}
	throttle(run, x.lines % THROTTLE_EVERY); /* the rows put_line() did not count yet */
	free_bad(&x);
	return ok;
}

/* Connects the target unless connected, retrying with backoff until *stop. */
static bool ensure_target(struct bftarget *t, const volatile bool *stop, struct err *err)
{
	int backoff = 500;
	if (!t->ops->is_broken(t))
		return true;
	while (!t->ops->connect(t, err)) {
		log_warn("backfill: %s; retrying in %d ms", err->msg, backoff);
		sleep_interruptible(backoff, stop);
		if (*stop)
			return false;
		backoff = backoff < 8000 ? backoff * 2 : 8000;
	}
	return true;
}

/* Tells the caller what the workers are doing; run->lock held. */
static void publish_activity(struct run *run)
{
	const struct backfill_opts *o = run->o;
	if (o->activity == NULL)
		return;
	struct strbuf b = {0};
	int shown = 0;
	for (int i = 0; i < run->ntables; i++) {
		const struct table_run *tr = &run->tables[i];
		if (tr->idx_started > tr->idx_done)
			sb_addf(&b, "%s%s (%d/%d)", shown++ ? ", " : "rebuilding indexes on ",
				tr->table_name, tr->idx_started, tr->nidx);
	}
	int left = run->nchunks - run->next + run->chunks_running;
	if (shown > 0 && left > 0)
		sb_addf(&b, "; copying chunks (%d left)", left);
	else if (shown == 0 && left == 0)
		sb_addf(&b, "checking the backfill ledger");
	else if (shown == 0)
		sb_addf(&b, "copying %d chunks with %d workers%s", left, o->parallel,
			o->snapshot != NULL && o->snapshot[0] ? " in the exported snapshot" : "");
	char *text = sb_take(&b);
	o->activity(o->activity_arg, text);
	free(text);
}

static void note_failure(struct run *run, bool index, const char *what, const char *msg)
{
	pthread_mutex_lock(&run->lock);
	if (run->failed_chunks + run->failed_indexes == 0)
		snprintf(run->first_failure, sizeof(run->first_failure), "%s: %s", what, msg);
	if (index)
		run->failed_indexes++;
	else
		run->failed_chunks++;
	pthread_mutex_unlock(&run->lock);
}

/* "2 chunks and 1 index", "1 chunk", "3 indexes" (caller frees). */
static char *count_text(int chunks, int indexes)
{
	char c[32] = "", i[32] = "";
	if (chunks > 0 || indexes == 0)
		snprintf(c, sizeof(c), "%d chunk%s", chunks, chunks == 1 ? "" : "s");
	if (indexes > 0)
		snprintf(i, sizeof(i), "%d index%s", indexes, indexes == 1 ? "" : "es");
	return xasprintf("%s%s%s", c, c[0] && i[0] ? " and " : "", i);
}

static void show_error(struct run *run, const char *what, const char *msg)
{
	log_warn("backfill: %s: %s", what, msg);
	pthread_mutex_lock(&run->prog->lock);
	snprintf(run->prog->last_error, sizeof(run->prog->last_error), "%s: %s", what, msg);
	pthread_mutex_unlock(&run->prog->lock);
}

static void do_chunk(struct run *run, struct bfsource *src, struct bftarget *tgt, struct chunk *c)
{
	const struct backfill_opts *o = run->o;
	struct err err;
	char what[200];
	snprintf(what, sizeof(what), "%s.%s chunk %d", c->t->schema, c->t->name, c->no);
	pthread_mutex_lock(&run->prog->lock);
	run->prog->chunks_running++;
	pthread_mutex_unlock(&run->prog->lock);
	bool done = false, final = false;
	while (!done && !*o->stop) {
		if (!bfsource_ensure(src, o->stop, &err) || !ensure_target(tgt, o->stop, &err))
			break;
		done = copy_chunk(run, src, tgt, c, &err);
		if (done)
			break;
		c->attempts++;
		bool lost = bfsource_is_broken(src) || tgt->ops->is_broken(tgt);
		show_error(run, what, err.msg);
		struct bftarget_chunk tc = target_chunk(c);
		/* A lost connection is not the chunk's fault: retry it without limit. */
		if (!lost && c->attempts >= o->max_attempts) {
			tgt->ops->chunk_failed(tgt, o->name, &tc, err.msg, true);
			note_failure(run, false, what, err.msg);
			final = true;
			break;
		}
		if (!lost)
			tgt->ops->chunk_failed(tgt, o->name, &tc, err.msg, false);
		sleep_interruptible(500 * c->attempts, o->stop);
	}
	pthread_mutex_lock(&run->prog->lock);
	run->prog->chunks_running--;
	if (done)
		run->prog->chunks_done++;
	else if (!*o->stop)
		run->prog->chunks_failed++;
	pthread_mutex_unlock(&run->prog->lock);
	pthread_mutex_lock(&run->lock);
	run->chunks_running--;
	if (done || final)
		c->tr->chunks_left--;
	if (final)
		c->tr->blocked = true;
	pthread_cond_broadcast(&run->cond);
	pthread_mutex_unlock(&run->lock);
}

/* Publishes (tgt != NULL) or withdraws the target of a worker's index build. */
static void set_building(struct run *run, int slot, struct bftarget *tgt)
{
	pthread_mutex_lock(&run->lock);
	run->building[slot] = tgt;
	pthread_mutex_unlock(&run->lock);
}

static void do_index(struct run *run, int slot, struct bftarget *tgt, struct index_job *j)
{
	const struct backfill_opts *o = run->o;
	struct err err;
	char what[300];
	snprintf(what, sizeof(what), "rebuilding %s on %s", j->ix->index_name, j->tr->table_name);
	bool done = false;
	while (!*o->stop) {
		if (!ensure_target(tgt, o->stop, &err))
			break;
		int64_t t0 = now_mono_usec();
		set_building(run, slot, tgt);
		done = !*o->stop && tgt->ops->restore_index(tgt, o->name, j->ix, &err);
		set_building(run, slot, NULL);
		if (done) {
			log_event(LOG_LVL_INFO, "backfill_index", "table=%s index=%s seconds=%.2f",
				  j->tr->table_name, j->ix->index_name,
				  (double)(now_mono_usec() - t0) / 1e6);
			break;
		}
		if (*o->stop)
			break; /* cancelled: the next start builds it */
		j->attempts++;
		show_error(run, what, err.msg);
		if (!tgt->ops->is_broken(tgt) && j->attempts >= o->max_attempts) {
			note_failure(run, true, what, err.msg);
			break;
		}
		sleep_interruptible(500 * j->attempts, o->stop);
	}
	pthread_mutex_lock(&run->lock);
	if (done) {
		j->tr->idx_done++;
		pthread_mutex_lock(&run->prog->lock);
		run->prog->indexes_done++;
		pthread_mutex_unlock(&run->prog->lock);
	} else {
		j->tr->idx_started--; /* not running any more; the next run builds it */
	}
	publish_activity(run);
	pthread_mutex_unlock(&run->lock);
}

/*
 * The next piece of work: an index whose table has all its chunks done
 * (first: the earlier a big table's index starts, the more it overlaps
 * other copies), else the next chunk.  Waits while indexes wait for chunks
 * other workers are copying.  False when nothing is left for this worker.
 */
static bool take_work(struct run *run, struct chunk **c, struct index_job **j)
{
	const struct backfill_opts *o = run->o;
	*c = NULL;
	*j = NULL;
	pthread_mutex_lock(&run->lock);
	while (!*o->stop) {
		if (*o->paused) {
			pthread_mutex_unlock(&run->lock);
			sleep_interruptible(200, o->stop);
			pthread_mutex_lock(&run->lock);
			continue;
		}
		bool waiting = false;
		for (int i = 0; i < run->nixs && *j == NULL; i++) {
			struct index_job *x = &run->jobs[i];
			if (x->taken || x->tr->blocked)
				continue;
			if (x->tr->chunks_left > 0) {
				waiting = true;
				continue;
			}
			x->taken = true;
			x->tr->idx_started++;
			*j = x;
			publish_activity(run);
		}
		if (*j == NULL && run->next < run->nchunks) {
			*c = &run->chunks[run->next++];
			run->chunks_running++;
		}
		if (*j != NULL || *c != NULL || !waiting)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&run->cond, &run->lock, &ts);
	}
	pthread_mutex_unlock(&run->lock);
	return *j != NULL || *c != NULL;
}

static void *worker(void *arg)
{
	struct worker_arg *wa = arg;
	struct run *run = wa->run;
	struct bfsource src = {.mariadb = run->o->src_mariadb,
			       .conninfo = run->o->src_conninfo,
			       .repl_conninfo = run->o->repl_conninfo};
	struct bftarget *tgt = bftarget_new(run->o->tgt_engine, run->o->tgt_conninfo);
	struct chunk *c;
	struct index_job *j;
	while (take_work(run, &c, &j)) {
		if (c != NULL)
			do_chunk(run, &src, tgt, c);
		else
			do_index(run, wa->slot, tgt, j);
	}
	bfsource_close(&src);
	pthread_mutex_lock(&run->lock); /* not freed under a cancel */
	run->building[wa->slot] = NULL;
	pthread_mutex_unlock(&run->lock);
	tgt->ops->free(tgt);
	pthread_mutex_lock(&run->lock);
	run->workers_left--;
	pthread_mutex_unlock(&run->lock);
	return NULL;
}

/*
 * Waits for the workers; once stopping, cancels the index builds in flight
 * (again every 100 ms: a build may start just after a round).
 */
static void wait_workers(struct run *run, int nw)
{
	for (;;) {
		pthread_mutex_lock(&run->lock);
		int left = run->workers_left;
		if (*run->o->stop)
			for (int i = 0; i < nw; i++)
				if (run->building[i] != NULL)
					run->building[i]->ops->cancel(run->building[i]);
		pthread_mutex_unlock(&run->lock);
		if (left == 0)
			break;
		sleep_interruptible(100, NULL);
	}
}

/* --- a run ------------------------------------------------------------------- */

static struct table_run *table_run_of(struct run *run, const char *table_name)
{
	for (int i = 0; i < run->ntables; i++)
		if (strcmp(run->tables[i].table_name, table_name) == 0)
			return &run->tables[i];
	struct table_run *tr = &run->tables[run->ntables++];
	tr->table_name = xstrdup(table_name);
	return tr;
}

/* Biggest table first (most chunks to copy), then in ledger order. */
static int chunk_order(const void *a, const void *b)
{
	const struct chunk *x = a, *y = b;
	if (x->tr != y->tr) {
		if (x->tr->pending != y->tr->pending)
			return x->tr->pending > y->tr->pending ? -1 : 1;
		return strcmp(x->tr->table_name, y->tr->table_name);
	}
	return (x->no > y->no) - (x->no < y->no);
}

/* The table of "schema.name" in the config, or NULL. */
static struct mig_table *config_table(const struct backfill_opts *o, const char *table_name)
{
	char *full = xstrdup(table_name), *dot = strchr(full, '.');
	struct mig_table *t = NULL;
	if (dot != NULL) {
		*dot = '\0';
		t = tableset_find(o->ts, full, dot + 1);
	}
	free(full);
	return t;
}

/* Loads the chunks not done and the deferred indexes of tables in or out of the config. */
static bool load_work(struct run *run, struct err *err)
{
	const struct backfill_opts *o = run->o;
	struct bftarget *tgt = bftarget_new(o->tgt_engine, o->tgt_conninfo);
	struct bftarget_todo *todo = NULL;
	int nrows = 0;
	bool ok = tgt->ops->connect(tgt, err) &&
		  tgt->ops->pending(tgt, o->name, &todo, &nrows, err) &&
		  tgt->ops->deferred(tgt, o->name, &run->ixs, &run->nixs, err);
	tgt->ops->free(tgt);
	if (!ok) {
		bftarget_todo_free(todo, nrows);
		return false;
	}
	run->chunks = xcalloc((size_t)nrows + 1, sizeof(struct chunk));
	run->tables = xcalloc((size_t)(nrows + run->nixs) + 1, sizeof(struct table_run));
	for (int i = 0; i < nrows; i++) {
		struct mig_table *t = config_table(o, todo[i].table_name);
		if (t == NULL)
			continue; /* a table no longer in the config */
		struct chunk *c = &run->chunks[run->nchunks++];
		c->t = t;
		c->tr = table_run_of(run, todo[i].table_name);
		c->tr->pending++;
		c->tr->chunks_left++;
		c->no = todo[i].no;
		c->lo = todo[i].lo;
		c->hi = todo[i].hi;
		todo[i].lo = todo[i].hi = NULL;
		c->target_empty = todo[i].target_empty;
		/* Failed chunks get a fresh set of attempts on a new run. */
		c->attempts = 0;
	}
	bftarget_todo_free(todo, nrows);
	qsort(run->chunks, (size_t)run->nchunks, sizeof(struct chunk), chunk_order);
	run->jobs = xcalloc((size_t)run->nixs + 1, sizeof(struct index_job));
	for (int i = 0; i < run->nixs; i++) {
		run->jobs[i].ix = &run->ixs[i];
		run->jobs[i].tr = table_run_of(run, run->ixs[i].table_name);
		run->jobs[i].tr->nidx++;
	}
	return true;
}

static void free_run(struct run *run)
{
	for (int i = 0; i < run->nchunks; i++) {
		free(run->chunks[i].lo);
		free(run->chunks[i].hi);
	}
	free(run->chunks);
	for (int i = 0; i < run->ntables; i++)
		free(run->tables[i].table_name);
	free(run->tables);
	free(run->jobs);
	pgmeta_indexes_free(run->ixs, run->nixs);
}

/* One pass over the pending work with the workers; false on stop or failures. */
static bool run_pass(const struct backfill_opts *o, struct backfill_progress *prog, struct err *err)
{
	struct run run = {.o = o, .prog = prog, .thr_start_usec = now_mono_usec()};
	if (!load_work(&run, err)) {
		free_run(&run);
		return false;
	}
	pthread_mutex_init(&run.lock, NULL);
	pthread_cond_init(&run.cond, NULL);
	pthread_mutex_lock(&prog->lock);
	prog->indexes_total = run.nixs;
	prog->indexes_done = 0;
	pthread_mutex_unlock(&prog->lock);
	pthread_mutex_lock(&run.lock);
	publish_activity(&run);
	pthread_mutex_unlock(&run.lock);

	int work = run.nchunks + run.nixs;
	int nw = o->parallel < work ? o->parallel : work;
	pthread_t *th = xcalloc((size_t)(nw ? nw : 1), sizeof(pthread_t));
	struct worker_arg *wa = xcalloc((size_t)(nw ? nw : 1), sizeof(*wa));
	run.building = xcalloc((size_t)(nw ? nw : 1), sizeof(struct bftarget *));
	run.workers_left = nw;
	for (int i = 0; i < nw; i++) {
		wa[i] = (struct worker_arg){.run = &run, .slot = i};
		pthread_create(&th[i], NULL, worker, &wa[i]);
	}
	wait_workers(&run, nw);
	for (int i = 0; i < nw; i++)
		pthread_join(th[i], NULL);
	free(th);
	free(wa);
	free(run.building);
	int failed = run.failed_chunks + run.failed_indexes;
	if (failed > 0) {
		char *what = count_text(run.failed_chunks, run.failed_indexes);
		err_set(err, "%s failed; first: %s", what, run.first_failure);
		free(what);
	}
	free_run(&run);
	pthread_cond_destroy(&run.cond);
	pthread_mutex_destroy(&run.lock);
	if (*o->stop) {
		err_set(err, "stopped");
		return false;
	}
	return failed == 0;
}

/*
 * After a pass: makes every chunk commit durable (the target's sync()),
 * then counts what the ledger still has to do.  Both counts are 0 when
 * the backfill is durably complete.
 */
static bool verify_ledger(const struct backfill_opts *o, struct backfill_progress *prog,
			  int *chunks, int *indexes, struct err *err)
{
	*chunks = *indexes = 0;
	struct bftarget *tgt = bftarget_new(o->tgt_engine, o->tgt_conninfo);
	struct bftarget_todo *todo = NULL;
	struct pgmeta_index *ixs = NULL;
	int n = 0, nixs = 0;
	bool ok = tgt->ops->connect(tgt, err) && tgt->ops->sync(tgt, err) &&
		  tgt->ops->pending(tgt, o->name, &todo, &n, err) &&
		  tgt->ops->deferred(tgt, o->name, &ixs, &nixs, err) &&
		  load_totals(tgt, o->name, prog, err);
	tgt->ops->free(tgt);
	/* Chunks of a table no longer in the config are not ours to copy. */
	for (int i = 0; ok && i < n; i++)
		if (config_table(o, todo[i].table_name) != NULL)
			(*chunks)++;
	*indexes = nixs;
	bftarget_todo_free(todo, n);
	pgmeta_indexes_free(ixs, nixs);
	return ok;
}

bool backfill_run(const struct backfill_opts *o, struct backfill_progress *prog, struct err *err)
{
	pthread_mutex_lock(&prog->lock);
	prog->started_usec = now_mono_usec();
	prog->rows_at_start = prog->rows_done;
	prog->finished_usec = 0;
	prog->chunks_failed = 0;
	pthread_mutex_unlock(&prog->lock);
	bool ok = false;
	for (int pass = 1; pass <= 3; pass++) {
		int chunks, indexes;
		if (!run_pass(o, prog, err) || !verify_ledger(o, prog, &chunks, &indexes, err))
			break;
		if (chunks + indexes == 0) {
			ok = true;
			break;
		}
		/* Only a target crash that took asynchronous commits with it gets here. */
		char *what = count_text(chunks, indexes);
		log_warn("backfill: the ledger still lists %s to do after pass %d (commits lost in "
			 "a "
			 "target crash?); doing them again",
			 what, pass);
		err_set(err, "the ledger still lists %s to do", what);
		free(what);
	}
	pthread_mutex_lock(&prog->lock);
	prog->finished_usec = now_mono_usec();
	pthread_mutex_unlock(&prog->lock);
	return ok;
}
