/*
 * bftarget_pg: backfill into a PostgreSQL target (see bftarget.h).
 *
 * A chunk streams its rows into COPY ... FROM STDIN, line by line with no
 * intermediate buffer, inside a transaction committed with
 * synchronous_commit off (backfill.h says why that is safe: sync() is a
 * synchronous commit, which flushes the WAL up to it and so every
 * asynchronous commit before it).  Worker sessions run with
 * session_replication_role = replica: triggers and FK checks fired on the
 * source already, as in PostgreSQL's own apply worker.  Indexes of a table
 * that is empty at plan time are deferred (pgmeta.h).
 */
#include "bftarget.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyrange.h"
#include "log.h"

struct pgtarget {
	struct bftarget base;
	const char *conninfo; /* borrowed, secret */
	struct pgconn own;
	struct pgconn *c; /* &own, or the store's (borrowed) */
	bool in_copy;	  /* a COPY FROM STDIN is open */
	pthread_mutex_t cancel_lock;
	PGcancel *cancel; /* owned; set while an index build runs */
};

static struct pgtarget *P(struct bftarget *t)
{
	return (struct pgtarget *)t;
}

/* Drains a pending result queue so the connection is usable again. */
static void drain(struct pgconn *c)
{
	PGresult *r;
	while ((r = PQgetResult(c->conn)) != NULL)
		PQclear(r);
}

/* --- connection --------------------------------------------------------------- */

static bool pg_is_broken(struct bftarget *t)
{
	struct pgconn *c = P(t)->c;
	return c->conn == NULL || pgconn_is_broken(c);
}

/*
 * (Re)connects; a worker's own session gets triggers and FK checks off
 * (they fired on the source already) and notices within seconds that its
 * client died (migd killed in the middle of an index build) instead of
 * finishing the build and holding its locks against the restarted migd.
 */
static bool pg_connect(struct bftarget *t, struct err *err)
{
	struct pgtarget *p = P(t);
	if (!pg_is_broken(t))
		return true;
	pgconn_close(p->c);
	p->in_copy = false;
	if (!pgconn_open(p->c, "target", p->conninfo, err))
		return false;
	if (p->c != &p->own)
		return true;
	struct err e;
	if (!pgconn_exec(p->c, "SET session_replication_role = replica", &e))
		log_warn("backfill: %s (triggers and FKs stay active on the target)", e.msg);
	if (!pgconn_exec(p->c, "SET client_connection_check_interval = '2s'", &e))
		log_debug("backfill: %s", e.msg); /* before PostgreSQL 14 */
	return true;
}

static void pg_free(struct bftarget *t)
{
	struct pgtarget *p = P(t);
	if (p == NULL)
		return;
	pgconn_close(&p->own);
	if (p->cancel != NULL)
		PQfreeCancel(p->cancel);
	pthread_mutex_destroy(&p->cancel_lock);
	free(p);
}

/* --- planning ------------------------------------------------------------------- */

static bool pg_planned(struct bftarget *t, const char *name, const char *table_name, bool *planned,
		       struct err *err)
{
	const char *params[] = {name, table_name};
	PGresult *r = pgconn_query(
	    P(t)->c, "SELECT count(*) FROM migd.chunks WHERE name = $1 AND table_name = $2", 2,
	    params, err);
	if (r == NULL)
		return false;
	*planned = atoi(PQgetvalue(r, 0, 0)) > 0;
	PQclear(r);
	return true;
}

/*
 * Inside the plan's transaction: is the target table empty (under a lock
 * that keeps writers out until the plan commits), and if so defer its
 * indexes.  Failing here (no privilege to lock or drop, a lock wait timing
 * out) costs speed only: the table keeps its indexes and its chunks delete
 * their range first, as without defer_indexes.  False only when the
 * transaction itself is lost.
 */
static bool pg_plan_begin(struct bftarget *t, const char *name, const struct mig_table *tb,
			  bool defer_indexes, bool *empty, int *deferred, struct err *err)
{
	struct pgconn *tgt = P(t)->c;
	*empty = false;
	*deferred = 0;
	if (!pgconn_exec(tgt, "BEGIN", err))
		return false;
	if (!defer_indexes)
		return true;
	if (!pgconn_exec(tgt, "SAVEPOINT migd_defer", err))
		return false;
	struct err e = {{0}};
	char *sql = xasprintf("SET LOCAL lock_timeout = '30s'; "
			      "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE",
			      tb->tgt_qname);
	bool ok = pgconn_exec(tgt, sql, &e);
	free(sql);
	if (ok) {
		sql = xasprintf("SELECT NOT EXISTS (SELECT 1 FROM %s)", tb->tgt_qname);
		char *v = pgconn_query_value(tgt, sql, 0, NULL, &e);
		free(sql);
		ok = v != NULL;
		*empty = ok && v[0] == 't';
		free(v);
	}
	if (ok && *empty)
		ok = pgmeta_defer_indexes(tgt, name, tb, deferred, &e);
	if (ok)
		return pgconn_exec(tgt, "RELEASE SAVEPOINT migd_defer", err);
	if (pgconn_is_broken(tgt)) {
		*err = e;
		return false;
	}
	log_warn("backfill: %s.%s keeps its indexes during the copy: %s", tb->schema, tb->name,
		 e.msg);
	*empty = false;
	*deferred = 0;
	return pgconn_exec(tgt, "ROLLBACK TO SAVEPOINT migd_defer; RELEASE SAVEPOINT migd_defer",
			   err);
}

static bool pg_plan_chunk(struct bftarget *t, const char *name, const struct mig_table *tb, int no,
			  const char *lo, const char *hi, bool empty, struct err *err)
{
	char *tname = bftarget_table_name(tb);
	char nobuf[16], tv[8];
	snprintf(nobuf, sizeof(nobuf), "%d", no);
	snprintf(tv, sizeof(tv), "%d", TRANSFORM_VERSION);
	const char *params[] = {name, tname, nobuf, lo, hi, tv, empty ? "t" : "f"};
	bool ok = pgconn_exec_params(
	    P(t)->c,
	    "INSERT INTO migd.chunks (name, table_name, chunk_no, lo, hi, "
	    "transform_version, target_empty) VALUES ($1, $2, $3, $4, $5, $6, $7)",
	    7, params, err);
	free(tname);
	return ok;
}

static bool pg_plan_end(struct bftarget *t, bool commit, struct err *err)
{
	if (commit)
		return pgconn_exec(P(t)->c, "COMMIT", err);
	if (!pgconn_exec(P(t)->c, "ROLLBACK", &(struct err){{0}})) {
	}
	return true;
}

/* --- the ledger ------------------------------------------------------------------ */

static bool pg_totals(struct bftarget *t, const char *name, struct bftarget_totals *out,
		      struct err *err)
{
	const char *params[] = {name};
	PGresult *r = pgconn_query(P(t)->c,
				   "SELECT count(*), count(*) FILTER (WHERE state = 'done'), "
				   "  count(*) FILTER (WHERE state = 'failed'), "
				   "  coalesce(sum(rows) FILTER (WHERE state = 'done'), 0) "
				   "FROM migd.chunks WHERE name = $1",
				   1, params, err);
	if (r == NULL)
		return false;
	out->chunks = atoll(PQgetvalue(r, 0, 0));
	out->done = atoll(PQgetvalue(r, 0, 1));
	out->failed = atoll(PQgetvalue(r, 0, 2));
	out->rows_done = atoll(PQgetvalue(r, 0, 3));
	PQclear(r);
	return true;
}

static bool pg_pending(struct bftarget *t, const char *name, struct bftarget_todo **out, int *n,
		       struct err *err)
{
	const char *params[] = {name};
	PGresult *r = pgconn_query(P(t)->c,
				   "SELECT table_name, chunk_no, lo::text, hi::text, target_empty "
				   "FROM migd.chunks WHERE name = $1 AND state <> 'done' "
				   "ORDER BY table_name, chunk_no",
				   1, params, err);
	if (r == NULL)
		return false;
	*n = PQntuples(r);
	*out = xcalloc((size_t)*n + 1, sizeof(**out));
	for (int i = 0; i < *n; i++) {
		struct bftarget_todo *x = &(*out)[i];
		x->table_name = xstrdup(PQgetvalue(r, i, 0));
		x->no = atoi(PQgetvalue(r, i, 1));
		x->lo = PQgetisnull(r, i, 2) ? NULL : xstrdup(PQgetvalue(r, i, 2));
		x->hi = PQgetisnull(r, i, 3) ? NULL : xstrdup(PQgetvalue(r, i, 3));
		x->target_empty = PQgetvalue(r, i, 4)[0] == 't';
	}
	PQclear(r);
	return true;
}

static bool pg_copied(struct bftarget *t, const char *name, struct bftarget_copied **out, int *n,
		      struct err *err)
{
	const char *params[] = {name};
	PGresult *r = pgconn_query(P(t)->c,
				   "SELECT table_name, copied_at FROM migd.chunks "
				   "WHERE name = $1 AND state = 'done' AND copied_at IS NOT NULL",
				   1, params, err);
	if (r == NULL)
		return false;
	*n = PQntuples(r);
	*out = xcalloc((size_t)*n + 1, sizeof(**out));
	for (int i = 0; i < *n; i++)
		(*out)[i] = (struct bftarget_copied){.table_name = xstrdup(PQgetvalue(r, i, 0)),
						     .pos = xstrdup(PQgetvalue(r, i, 1))};
	PQclear(r);
	return true;
}

/* A synchronous commit flushes the WAL up to it: every asynchronous commit before it too. */
static bool pg_sync(struct bftarget *t, struct err *err)
{
	return pgconn_exec(
	    P(t)->c, "BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT",
	    err);
}

static void pg_chunk_failed(struct bftarget *t, const char *name, const struct bftarget_chunk *c,
			    const char *msg, bool final)
{
	struct pgconn *tgt = P(t)->c;
	if (tgt->conn == NULL || pgconn_is_broken(tgt))
		return;
	char *tname = bftarget_table_name(c->t);
	char nobuf[16];
	snprintf(nobuf, sizeof(nobuf), "%d", c->no);
	const char *params[] = {name, tname, nobuf, msg, final ? "failed" : "pending"};
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

/* --- a chunk ----------------------------------------------------------------------- */

/* The transaction fills the range and records it; committed asynchronously (see the top). */
static bool pg_chunk_begin(struct bftarget *t, const struct bftarget_chunk *c, struct err *err)
{
	struct pgtarget *p = P(t);
	if (!pgconn_exec(p->c, "BEGIN; SET LOCAL synchronous_commit = off", err))
		return false;
	struct mig_table tv = table_target_view(c->t);
	if (!c->target_empty) {
		char *pred = keyrange_pred(&tv, c->lo, c->hi);
		char *sql = xasprintf("DELETE FROM %s WHERE %s", tv.qname, pred);
		bool d = pgconn_exec(p->c, sql, err);
		free(sql);
		free(pred);
		if (!d) {
			table_view_free(&tv);
			return false;
		}
	}
	char *cols = table_column_list(&tv);
	char *sql = xasprintf("COPY %s (%s) FROM STDIN", tv.qname, cols);
	free(cols);
	table_view_free(&tv);
	PGresult *r = PQexec(p->c->conn, sql);
	free(sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		err_set(err, "target: %s", PQresultErrorMessage(r));
		PQclear(r);
		return false;
	}
	PQclear(r);
	p->in_copy = true;
	return true;
}

static bool pg_chunk_put(struct bftarget *t, const char *line, size_t len, struct err *err)
{
	struct pgtarget *p = P(t);
	if (PQputCopyData(p->c->conn, line, (int)len) != 1) {
		err_set(err, "target: %s", pgconn_error(p->c));
		return false;
	}
	return true;
}

static bool pg_chunk_end(struct bftarget *t, struct err *err)
{
	struct pgtarget *p = P(t);
	p->in_copy = false;
	if (PQputCopyEnd(p->c->conn, NULL) != 1) {
		err_set(err, "target: %s", pgconn_error(p->c));
		return false;
	}
	PGresult *r = PQgetResult(p->c->conn);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		err_set(err, "target: %s", PQresultErrorMessage(r));
	PQclear(r);
	drain(p->c);
	return ok;
}

static bool pg_failed_record(struct bftarget *t, const char *name, const char *table_name,
			     const char *source_pos, const char *key, const char *why,
			     struct err *err)
{
	const char *p[] = {name, table_name, source_pos, key, why};
	return pgconn_exec_params(
	    P(t)->c,
	    "INSERT INTO migd.failed_records (name, table_name, source_pos, key, change, "
	    "  error) VALUES ($1, $2, $3, $4::jsonb, "
	    "  jsonb_build_object('op', 'backfill'), $5)",
	    5, p, err);
}

static bool pg_chunk_done(struct bftarget *t, const char *name, const struct bftarget_chunk *c,
			  int64_t rows, uint64_t sum, bool *already, struct err *err)
{
	char *tname = bftarget_table_name(c->t);
	char rowsbuf[24], sumbuf[24], nobuf[16];
	snprintf(rowsbuf, sizeof(rowsbuf), "%lld", (long long)rows);
	snprintf(sumbuf, sizeof(sumbuf), "%016llx", (unsigned long long)sum);
	snprintf(nobuf, sizeof(nobuf), "%d", c->no);
	const char *params[] = {name, tname, nobuf, rowsbuf, sumbuf, c->copied_at};
	PGresult *r =
	    pgconn_query(P(t)->c,
			 "UPDATE migd.chunks SET state = 'done', rows = $4, checksum = $5, "
			 "  attempts = attempts + 1, finished_at = clock_timestamp(), "
			 "  error = NULL, started_at = coalesce(started_at, now()), "
			 "  copied_at = $6 "
			 "WHERE name = $1 AND table_name = $2 AND chunk_no = $3 "
			 "  AND state <> 'done'",
			 6, params, err);
	free(tname);
	if (r == NULL)
		return false;
	*already = strcmp(PQcmdTuples(r), "0") == 0;
	PQclear(r);
	return true;
}

static bool pg_chunk_commit(struct bftarget *t, struct err *err)
{
	return pgconn_exec(P(t)->c, "COMMIT", err);
}

static void pg_chunk_abort(struct bftarget *t)
{
	struct pgtarget *p = P(t);
	if (p->c->conn == NULL)
		return;
	if (p->in_copy) {
		if (PQputCopyEnd(p->c->conn, "chunk aborted") != 1) {
		}
		drain(p->c);
		p->in_copy = false;
	}
	if (!pgconn_exec(p->c, "ROLLBACK", &(struct err){{0}})) {
	}
}

/* --- deferred indexes ------------------------------------------------------------------ */

static bool pg_deferred(struct bftarget *t, const char *name, struct pgmeta_index **out, int *n,
			struct err *err)
{
	return pgmeta_deferred_load(P(t)->c, name, out, n, err);
}

/* Publishes (cancel != NULL) or withdraws the cancel handle of the build in flight. */
static void set_cancel(struct pgtarget *p, PGcancel *cancel)
{
	pthread_mutex_lock(&p->cancel_lock);
	PGcancel *old = p->cancel;
	p->cancel = cancel;
	pthread_mutex_unlock(&p->cancel_lock);
	if (old != NULL)
		PQfreeCancel(old);
}

static bool pg_restore_index(struct bftarget *t, const char *name, const struct pgmeta_index *ix,
			     struct err *err)
{
	struct pgtarget *p = P(t);
	set_cancel(p, PQgetCancel(p->c->conn));
	bool ok = pgmeta_restore_index(p->c, name, ix, err);
	set_cancel(p, NULL);
	return ok;
}

static void pg_cancel(struct bftarget *t)
{
	struct pgtarget *p = P(t);
	char buf[256];
	pthread_mutex_lock(&p->cancel_lock);
	if (p->cancel != NULL && !PQcancel(p->cancel, buf, sizeof(buf)))
		log_warn("backfill: cancelling an index build: %s", buf);
	pthread_mutex_unlock(&p->cancel_lock);
}

static const struct bftarget_ops pg_ops = {
    .connect = pg_connect,
    .is_broken = pg_is_broken,
    .free = pg_free,
    .planned = pg_planned,
    .plan_begin = pg_plan_begin,
    .plan_chunk = pg_plan_chunk,
    .plan_end = pg_plan_end,
    .totals = pg_totals,
    .pending = pg_pending,
    .copied = pg_copied,
    .sync = pg_sync,
    .chunk_failed = pg_chunk_failed,
    .chunk_begin = pg_chunk_begin,
    .chunk_put = pg_chunk_put,
    .chunk_end = pg_chunk_end,
    .failed_record = pg_failed_record,
    .chunk_done = pg_chunk_done,
    .chunk_commit = pg_chunk_commit,
    .chunk_abort = pg_chunk_abort,
    .deferred = pg_deferred,
    .restore_index = pg_restore_index,
    .cancel = pg_cancel,
};

struct bftarget *bftarget_pg_new(const char *conninfo, struct pgconn *conn)
{
	struct pgtarget *p = xcalloc(1, sizeof(*p));
	p->base.ops = &pg_ops;
	p->base.engine = ENGINE_POSTGRESQL;
	p->conninfo = conninfo;
	p->c = conn != NULL ? conn : &p->own;
	pthread_mutex_init(&p->cancel_lock, NULL);
	return &p->base;
}
