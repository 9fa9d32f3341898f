/*
 * backfill: chunk planning, parallel chunk copy and the rebuild of deferred
 * indexes (see backfill.h).
 *
 * Each worker owns one source and one target connection and loops: take
 * the next piece of work -- an index whose table has all its chunks done,
 * else the next pending chunk -- and do it.  Chunks go biggest table first,
 * so the big table's index builds overlap the small tables' copies.  The
 * source side of a chunk is COPY (SELECT ... WHERE range) TO STDOUT and the
 * target side COPY ... FROM STDIN, row by row with no intermediate buffer,
 * so memory does not depend on chunk or table size.  COPY out sends one row
 * per message, which gives the row count and checksum for free.
 */
#include "backfill.h"

#include "bfsource.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyrange.h"
#include "log.h"
#include "pgmeta.h"
#include "pgstore.h"
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
	/* Index builds in flight, one slot per worker, cancelled on stop (a build can take hours).
	 */
	PGcancel **cancels; /* owned array; entries owned by their worker */
	int workers_left;
};

struct worker_arg {
	struct run *run;
	int slot;
};

/* --- planning ---------------------------------------------------------------- */

static bool insert_chunk(struct pgconn *tgt, const char *name, const struct mig_table *t, int no,
			 const char *lo, const char *hi, bool target_empty, struct err *err)
{
	char *tname = xasprintf("%s.%s", t->schema, t->name);
	char nobuf[16], tv[8];
	snprintf(nobuf, sizeof(nobuf), "%d", no);
	snprintf(tv, sizeof(tv), "%d", TRANSFORM_VERSION);
	const char *params[] = {name, tname, nobuf, lo, hi, tv, target_empty ? "t" : "f"};
	bool ok = pgconn_exec_params(
		tgt,
		"INSERT INTO migd.chunks (name, table_name, chunk_no, lo, hi, "
		"transform_version, target_empty) VALUES ($1, $2, $3, $4, $5, $6, $7)",
		7, params, err);
	free(tname);
	return ok;
}

/*
 * Inside the plan's transaction: is the target table empty (under a lock
 * that keeps writers out until the plan commits), and if so defer its
 * indexes.  Failing here (no privilege to lock or drop, a lock wait timing
 * out) costs speed only: the table keeps its indexes and its chunks delete
 * their range first, as without defer_indexes.  False only when the
 * transaction itself is lost.
 */
static bool prepare_target(struct pgconn *tgt, const struct backfill_opts *o,
			   const struct mig_table *t, bool *empty, int *deferred, struct err *err)
{
	*empty = false;
	*deferred = 0;
	if (!o->defer_indexes)
		return true;
	if (!pgconn_exec(tgt, "SAVEPOINT migd_defer", err))
		return false;
	struct err e = {{0}};
	char *sql = xasprintf("SET LOCAL lock_timeout = '30s'; "
			      "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE",
			      t->tgt_qname);
	bool ok = pgconn_exec(tgt, sql, &e);
	free(sql);
	if (ok) {
		sql = xasprintf("SELECT NOT EXISTS (SELECT 1 FROM %s)", t->tgt_qname);
		char *v = pgconn_query_value(tgt, sql, 0, NULL, &e);
		free(sql);
		ok = v != NULL;
		*empty = ok && v[0] == 't';
		free(v);
	}
	if (ok && *empty)
		ok = pgmeta_defer_indexes(tgt, o->name, t, deferred, &e);
	if (ok)
		return pgconn_exec(tgt, "RELEASE SAVEPOINT migd_defer", err);
	if (pgconn_is_broken(tgt)) {
		*err = e;
		return false;
	}
	log_warn("backfill: %s.%s keeps its indexes during the copy: %s", t->schema, t->name,
		 e.msg);
	*empty = false;
	*deferred = 0;
	return pgconn_exec(tgt, "ROLLBACK TO SAVEPOINT migd_defer; RELEASE SAVEPOINT migd_defer",
			   err);
}

static bool plan_table(struct bfsource *src, struct pgconn *tgt, const struct backfill_opts *o,
		       const struct mig_table *t, struct err *err)
{
	char *tname = xasprintf("%s.%s", t->schema, t->name);
	const char *params[] = {o->name, tname};
	PGresult *r = pgconn_query(
		tgt, "SELECT count(*) FROM migd.chunks WHERE name = $1 AND table_name = $2", 2,
		params, err);
	free(tname);
	if (r == NULL)
		return false;
	bool planned = atoi(PQgetvalue(r, 0, 0)) > 0;
	PQclear(r);
	if (planned)
		return true;

	/* The whole plan of a table (and its deferred indexes) commits at once: a crash re-plans
	 * it. */
	if (!pgconn_exec(tgt, "BEGIN", err))
		return false;
	bool empty;
	int deferred;
	bool ok = prepare_target(tgt, o, t, &empty, &deferred, err);
	if (!ok) {
	} else if (t->nkey == 0) {
		ok = insert_chunk(tgt, o->name, t, 0, NULL, NULL, empty, err);
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
				ok = insert_chunk(tgt, o->name, t, no, prev, NULL, empty, err);
				break;
			}
			if (!insert_chunk(tgt, o->name, t, no++, prev, b, empty, err)) {
				free(b);
				ok = false;
				break;
			}
			free(prev);
			prev = b;
		}
		free(prev);
	}
	if (!ok) {
		if (!pgconn_exec(tgt, "ROLLBACK", &(struct err){{0}})) {
		}
		return false;
	}
	if (!pgconn_exec(tgt, "COMMIT", err))
		return false;
	if (deferred > 0)
		log_event(LOG_LVL_NOTICE, "backfill_defer_indexes", "table=%s.%s indexes=%d",
			  t->schema, t->name, deferred);
	return true;
}

bool backfill_load_totals(struct pgconn *tgt, const char *name, struct backfill_progress *prog,
			  struct err *err)
{
	const char *params[] = {name};
	PGresult *r = pgconn_query(tgt,
				   "SELECT count(*), count(*) FILTER (WHERE state = 'done'), "
				   "  count(*) FILTER (WHERE state = 'failed'), "
				   "  coalesce(sum(rows) FILTER (WHERE state = 'done'), 0) "
				   "FROM migd.chunks WHERE name = $1",
				   1, params, err);
	if (r == NULL)
		return false;
	pthread_mutex_lock(&prog->lock);
	prog->chunks_total = atoll(PQgetvalue(r, 0, 0));
	prog->chunks_done = atoll(PQgetvalue(r, 0, 1));
	prog->chunks_failed = atoll(PQgetvalue(r, 0, 2));
	prog->rows_done = atoll(PQgetvalue(r, 0, 3));
	pthread_mutex_unlock(&prog->lock);
	PQclear(r);
	return true;
}

bool backfill_plan(struct bfsource *src, struct pgconn *tgt, const struct backfill_opts *o,
		   struct backfill_progress *prog, struct err *err)
{
	int64_t est = 0;
	for (int i = 0; i < o->ts->n; i++) {
		if (!plan_table(src, tgt, o, &o->ts->t[i], err)) {
			err_prefix(err, "planning %s.%s", o->ts->t[i].schema, o->ts->t[i].name);
			return false;
		}
		if (o->ts->t[i].est_rows > 0)
			est += (int64_t)o->ts->t[i].est_rows;
	}
	pthread_mutex_lock(&prog->lock);
	prog->rows_total_est = est;
	pthread_mutex_unlock(&prog->lock);
	return backfill_load_totals(tgt, o->name, prog, err);
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

/* Drains a pending result queue so the connection is usable again. */
static void drain(struct pgconn *c)
{
	PGresult *r;
	while ((r = PQgetResult(c->conn)) != NULL)
		PQclear(r);
}

static void add_rows(struct run *run, int64_t n)
{
	pthread_mutex_lock(&run->prog->lock);
	run->prog->rows_done += n;
	pthread_mutex_unlock(&run->prog->lock);
}

/*
 * Marks the chunk done in the open target transaction, unless it already
 * is: a COMMIT whose reply was lost may have committed an earlier attempt.
 * *already tells the caller to roll this copy back instead.
 */
static bool mark_done(struct pgconn *tgt, const char *name, const struct chunk *c, int64_t rows,
		      uint64_t sum, bool *already, struct err *err)
{
	char *tname = xasprintf("%s.%s", c->t->schema, c->t->name);
	char rowsbuf[24], sumbuf[24], nobuf[16];
	snprintf(rowsbuf, sizeof(rowsbuf), "%lld", (long long)rows);
	snprintf(sumbuf, sizeof(sumbuf), "%016llx", (unsigned long long)sum);
	snprintf(nobuf, sizeof(nobuf), "%d", c->no);
	const char *params[] = {name, tname, nobuf, rowsbuf, sumbuf};
	PGresult *r =
		pgconn_query(tgt,
			     "UPDATE migd.chunks SET state = 'done', rows = $4, checksum = $5, "
			     "  attempts = attempts + 1, finished_at = clock_timestamp(), "
			     "  error = NULL, started_at = coalesce(started_at, now()) "
			     "WHERE name = $1 AND table_name = $2 AND chunk_no = $3 "
			     "  AND state <> 'done'",
			     5, params, err);
	free(tname);
	if (r == NULL)
		return false;
	*already = strcmp(PQcmdTuples(r), "0") == 0;
	PQclear(r);
	return true;
}

/* What a chunk copy's callbacks need: the target, the hash, the rows the target cannot take. */
struct copy_ctx {
	struct pgconn *tgt;
	uint64_t sum;
	int64_t lines;
	struct run *run;
	char **bad_keys, **bad_why; /* owned; rows recorded as failed records */
	int nbad;
	struct err err;
};

#define MAX_BAD_ROWS 1000 /* per chunk; more means the data needs fixing, not records */

static bool put_line(void *arg, const char *buf, size_t len)
{
	struct copy_ctx *x = arg;
	x->sum += row_hash(buf, len);
	if (PQputCopyData(x->tgt->conn, buf, (int)len) != 1) {
		err_set(&x->err, "target: %s", pgconn_error(x->tgt));
		return false;
	}
	if (++x->lines % 8192 == 0)
		add_rows(x->run, 8192);
	return true;
}

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

/* Rows the source could not render: failed records, in the chunk's transaction. */
static bool record_bad(struct copy_ctx *x, const struct backfill_opts *o, const struct chunk *c,
		       struct err *err)
{
	char *tname = xasprintf("%s.%s", c->t->schema, c->t->name);
	bool ok = true;
	for (int i = 0; i < x->nbad && ok; i++) {
		const char *p[] = {o->name, tname, o->source_pos ? o->source_pos : "none",
				   x->bad_keys[i], x->bad_why[i]};
		ok = pgconn_exec_params(
			x->tgt,
			"INSERT INTO migd.failed_records (name, table_name, source_pos, key, change, "
			"  error) VALUES ($1, $2, $3, to_jsonb($4::text[]), "
			"  jsonb_build_object('op', 'backfill'), $5)",
			5, p, err);
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

/* One attempt at a chunk: true when it is done (by this attempt or an earlier one). */
static bool copy_chunk(struct run *run, struct bfsource *src, struct pgconn *tgt, struct chunk *c,
		       struct err *err)
{
	const struct backfill_opts *o = run->o;
	char *pred = keyrange_pred(c->t, c->lo, c->hi);
	char *cols = table_column_list(c->t);
	bool ok = false, tgt_in_copy = false, already = false;
	struct copy_ctx x = {.tgt = tgt, .run = run};
	int64_t rows = 0;
	char *sql;

	/* Source: a read-only snapshot transaction (the exported one when we have it). */
	if (!bfsource_begin(src, o->snapshot, err))
		goto out;
	/*
	 * Target: one transaction fills the range and records it; committed
	 * asynchronously (see backfill.h for why that is safe).
	 */
	if (!pgconn_exec(tgt, "BEGIN; SET LOCAL synchronous_commit = off", err))
		goto out;
	if (!c->target_empty) {
		sql = xasprintf("DELETE FROM %s WHERE %s", c->t->tgt_qname, pred);
		bool d = pgconn_exec(tgt, sql, err);
		free(sql);
		if (!d)
			goto out;
	}
	sql = xasprintf("COPY %s (%s) FROM STDIN", c->t->tgt_qname, cols);
	PGresult *r = PQexec(tgt->conn, sql);
	free(sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		err_set(err, "target: %s", PQresultErrorMessage(r));
		PQclear(r);
		goto out;
	}
	PQclear(r);
	tgt_in_copy = true;
	if (!bfsource_copy(src, c->t, c->lo, c->hi, put_line, keep_bad, &x, &rows, err)) {
		if (x.err.msg[0])
			*err = x.err; /* the target's reason is the real one */
		else if (x.nbad == MAX_BAD_ROWS)
			err_prefix(err, "more than %d rows cannot be copied; ", MAX_BAD_ROWS);
		goto out;
	}
	tgt_in_copy = false;
	if (PQputCopyEnd(tgt->conn, NULL) != 1) {
		err_set(err, "target: %s", pgconn_error(tgt));
		goto out;
	}
	r = PQgetResult(tgt->conn);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		err_set(err, "target: %s", PQresultErrorMessage(r));
		PQclear(r);
		drain(tgt);
		goto out;
	}
	PQclear(r);
	drain(tgt);
	if (!record_bad(&x, o, c, err))
		goto out;

	if (!mark_done(tgt, o->name, c, rows, x.sum, &already, err))
		goto out;
	if (already) {
		log_notice(
			"backfill: %s.%s chunk %d was committed by an earlier attempt (its COMMIT "
			"reply was lost); this copy is rolled back",
			c->t->schema, c->t->name, c->no);
		ok = true;
		goto out;
	}
	ok = pgconn_exec(tgt, "COMMIT", err);
	bfsource_end(src);
	if (ok)
		add_rows(run, rows % 8192);
out:
	if (!ok || already) {
		if (tgt_in_copy && tgt->conn != NULL) {
			if (PQputCopyEnd(tgt->conn, "chunk aborted") != 1) {
			}
			drain(tgt);
		}
		bfsource_end(src);
		if (tgt->conn != NULL && !pgconn_exec(tgt, "ROLLBACK", &(struct err){{0}})) {
		}
		add_rows(run, -(x.lines - x.lines % 8192));
	}
	free_bad(&x);
	free(pred);
	free(cols);
	return ok;
}

static void record_failure(struct pgconn *tgt, const struct backfill_opts *o, const struct chunk *c,
			   const char *msg, bool final)
{
	if (tgt->conn == NULL || pgconn_is_broken(tgt))
		return;
	char *tname = xasprintf("%s.%s", c->t->schema, c->t->name);
	char nobuf[16];
	snprintf(nobuf, sizeof(nobuf), "%d", c->no);
	const char *params[] = {o->name, tname, nobuf, msg, final ? "failed" : "pending"};
	struct err e;
	PGresult *r =
		pgconn_query(tgt,
			     "UPDATE migd.chunks SET attempts = attempts + 1, error = $4, "
			     "  state = $5 WHERE name = $1 AND table_name = $2 AND chunk_no = $3 "
			     "  AND state <> 'done'",
			     5, params, &e);
	if (r != NULL)
		PQclear(r);
	free(tname);
}

/*
 * (Re)connects a worker's target connection and sets its session up:
 * triggers and FK checks off (they fired on the source already, like PG's
 * apply worker); a backend whose client died (migd killed in the middle of
 * an index build) notices within seconds instead of finishing the build
 * and holding its locks against the restarted migd.
 */
static bool ensure_conn(struct pgconn *c, const char *conninfo, const volatile bool *stop,
			struct err *err)
{
	int backoff = 500;
	if (c->conn != NULL && !pgconn_is_broken(c))
		return true;
	for (;;) {
		pgconn_close(c);
		if (pgconn_open(c, "target", conninfo, err))
			break;
		log_warn("backfill: %s; retrying in %d ms", err->msg, backoff);
		sleep_interruptible(backoff, stop);
		if (*stop)
			return false;
		backoff = backoff < 8000 ? backoff * 2 : 8000;
	}
	struct err e;
	if (!pgconn_exec(c, "SET session_replication_role = replica", &e))
		log_warn("backfill: %s (triggers and FKs stay active on the target)", e.msg);
	if (!pgconn_exec(c, "SET client_connection_check_interval = '2s'", &e))
		log_debug("backfill: %s", e.msg); /* before PostgreSQL 14 */
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

static void do_chunk(struct run *run, struct bfsource *src, struct pgconn *tgt, struct chunk *c)
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
		if (!bfsource_ensure(src, o->stop, &err) ||
		    !ensure_conn(tgt, o->tgt_conninfo, o->stop, &err))
			break;
		done = copy_chunk(run, src, tgt, c, &err);
		if (done)
			break;
		c->attempts++;
		bool lost = bfsource_is_broken(src) || pgconn_is_broken(tgt);
		show_error(run, what, err.msg);
		/* A lost connection is not the chunk's fault: retry it without limit. */
		if (!lost && c->attempts >= o->max_attempts) {
			record_failure(tgt, o, c, err.msg, true);
			note_failure(run, false, what, err.msg);
			final = true;
			break;
		}
		if (!lost)
			record_failure(tgt, o, c, err.msg, false);
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

/* Publishes (cancel != NULL) or withdraws the cancel handle of a worker's index build. */
static void set_cancel(struct run *run, int slot, PGcancel *cancel)
{
	pthread_mutex_lock(&run->lock);
	PGcancel *old = run->cancels[slot];
	run->cancels[slot] = cancel;
	pthread_mutex_unlock(&run->lock);
	if (old != NULL)
		PQfreeCancel(old);
}

static void do_index(struct run *run, int slot, struct pgconn *tgt, struct index_job *j)
{
	const struct backfill_opts *o = run->o;
	struct err err;
	char what[300];
	snprintf(what, sizeof(what), "rebuilding %s on %s", j->ix->index_name, j->tr->table_name);
	bool done = false;
	while (!*o->stop) {
		if (!ensure_conn(tgt, o->tgt_conninfo, o->stop, &err))
			break;
		int64_t t0 = now_mono_usec();
		set_cancel(run, slot, PQgetCancel(tgt->conn));
		done = pgmeta_restore_index(tgt, o->name, j->ix, &err);
		set_cancel(run, slot, NULL);
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
		if (!pgconn_is_broken(tgt) && j->attempts >= o->max_attempts) {
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
	struct bfsource src = {.mariadb = run->o->src_mariadb, .conninfo = run->o->src_conninfo};
	struct pgconn tgt = {0};
	struct chunk *c;
	struct index_job *j;
	while (take_work(run, &c, &j)) {
		if (c != NULL)
			do_chunk(run, &src, &tgt, c);
		else
			do_index(run, wa->slot, &tgt, j);
	}
	bfsource_close(&src);
	pgconn_close(&tgt);
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
		if (*run->o->stop) {
			char buf[256];
			for (int i = 0; i < nw; i++)
				if (run->cancels[i] != NULL &&
				    !PQcancel(run->cancels[i], buf, sizeof(buf)))
					log_warn("backfill: cancelling an index build: %s", buf);
		}
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

/* Loads the chunks not done and the deferred indexes of tables in or out of the config. */
static bool load_work(struct run *run, struct err *err)
{
	const struct backfill_opts *o = run->o;
	struct pgconn tgt = {0};
	if (!pgconn_open(&tgt, "target", o->tgt_conninfo, err))
		return false;
	const char *params[] = {o->name};
	PGresult *r = pgconn_query(&tgt,
				   "SELECT table_name, chunk_no, lo::text, hi::text, target_empty "
				   "FROM migd.chunks WHERE name = $1 AND state <> 'done' "
				   "ORDER BY table_name, chunk_no",
				   1, params, err);
	bool ok = r != NULL && pgmeta_deferred_load(&tgt, o->name, &run->ixs, &run->nixs, err);
	pgconn_close(&tgt);
	if (!ok) {
		if (r != NULL)
			PQclear(r);
		return false;
	}
	int nrows = PQntuples(r);
	run->chunks = xcalloc((size_t)nrows + 1, sizeof(struct chunk));
	run->tables = xcalloc((size_t)(nrows + run->nixs) + 1, sizeof(struct table_run));
	for (int i = 0; i < nrows; i++) {
		char *full = xstrdup(PQgetvalue(r, i, 0));
		char *dot = strchr(full, '.');
		struct mig_table *t = NULL;
		if (dot != NULL) {
			*dot = '\0';
			t = tableset_find(o->ts, full, dot + 1);
		}
		free(full);
		if (t == NULL)
			continue; /* a table no longer in the config */
		struct chunk *c = &run->chunks[run->nchunks++];
		c->t = t;
		c->tr = table_run_of(run, PQgetvalue(r, i, 0));
		c->tr->pending++;
		c->tr->chunks_left++;
		c->no = atoi(PQgetvalue(r, i, 1));
		c->lo = PQgetisnull(r, i, 2) ? NULL : xstrdup(PQgetvalue(r, i, 2));
		c->hi = PQgetisnull(r, i, 3) ? NULL : xstrdup(PQgetvalue(r, i, 3));
		c->target_empty = PQgetvalue(r, i, 4)[0] == 't';
		/* Failed chunks get a fresh set of attempts on a new run. */
		c->attempts = 0;
	}
	PQclear(r);
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
	struct run run = {.o = o, .prog = prog};
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
	run.cancels = xcalloc((size_t)(nw ? nw : 1), sizeof(PGcancel *));
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
	free(run.cancels);
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
 * After a pass: makes every chunk commit durable (a synchronous commit
 * flushes the WAL up to it, so every asynchronous commit before it too),
 * then counts what the ledger still has to do.  *left is 0 when the
 * backfill is durably complete.
 */
static bool verify_ledger(const struct backfill_opts *o, struct backfill_progress *prog,
			  int *chunks, int *indexes, struct err *err)
{
	struct pgconn tgt = {0};
	*chunks = *indexes = 0;
	if (!pgconn_open(&tgt, "target", o->tgt_conninfo, err))
		return false;
	const char *params[] = {o->name};
	PGresult *r = NULL;
	bool ok =
		pgconn_exec(
			&tgt,
			"BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT",
			err) &&
		(r = pgconn_query(&tgt,
				  "SELECT table_name, 'chunk' FROM migd.chunks "
				  "WHERE name = $1 AND state <> 'done' "
				  "UNION ALL SELECT table_name, 'index' FROM migd.deferred_indexes "
				  "WHERE name = $1",
				  1, params, err)) != NULL &&
		backfill_load_totals(&tgt, o->name, prog, err);
	pgconn_close(&tgt);
	if (r == NULL)
		return false;
	for (int i = 0; ok && i < PQntuples(r); i++) {
		char *full = xstrdup(PQgetvalue(r, i, 0)), *dot = strchr(full, '.');
		if (dot != NULL)
			*dot = '\0';
		/* Chunks of a table no longer in the config are not ours to copy. */
		if (PQgetvalue(r, i, 1)[0] == 'i')
			(*indexes)++;
		else if (dot != NULL && tableset_find(o->ts, full, dot + 1) != NULL)
			(*chunks)++;
		free(full);
	}
	PQclear(r);
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
