/*
 * backfill: chunk planning and parallel chunk copy (see backfill.h).
 *
 * Each worker owns one source and one target connection and loops: take
 * the next pending chunk, copy it, commit it with its ledger row.  The
 * source side is COPY (SELECT ... WHERE range) TO STDOUT and the target
 * side COPY ... FROM STDIN, row by row with no intermediate buffer, so
 * memory does not depend on chunk or table size.  COPY out sends one row
 * per message, which gives the row count and checksum for free.
 */
#include "backfill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "keyrange.h"
#include "pgstore.h"
#include "util.h"

struct chunk {
	struct mig_table *t; /* borrowed */
	int no;
	char *lo, *hi; /* owned; text[] literals from the ledger, NULL = open */
	int attempts;
};

struct run {
	const struct backfill_opts *o;
	struct backfill_progress *prog;
	pthread_mutex_t lock; /* guards next, failures */
	struct chunk *chunks;
	int nchunks, next;
	int failed;
	char first_failure[512];
};

/* --- planning ---------------------------------------------------------------- */

/* Key of the row chunk_rows past `after` (NULL: from the start), as a text[] literal. */
static char *next_boundary(struct pgconn *src, const struct mig_table *t, const char *after,
			   int64_t chunk_rows, bool *end, struct err *err)
{
	char *keys = table_key_list(t);
	struct strbuf b = {0};
	for (int i = 0; i < t->nkey; i++) {
		char *id = pgconn_ident(t->cols[t->key_idx[i]].name);
		sb_addf(&b, "%s%s::text", i ? ", " : "", id);
		free(id);
	}
	char *texts = sb_take(&b);
	char *where = keyrange_pred(t, after, NULL);
	char *sql = xasprintf("SELECT ARRAY[%s]::text[] FROM %s WHERE %s ORDER BY %s "
			      "OFFSET %lld LIMIT 1",
			      texts, t->qname, where, keys, (long long)(chunk_rows - 1));
	PGresult *r = pgconn_query(src, sql, 0, NULL, err);
	free(sql);
	free(where);
	free(keys);
	free(texts);
	if (r == NULL)
		return NULL;
	*end = PQntuples(r) == 0;
	char *out = *end ? xstrdup("") : xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return out;
}

static bool insert_chunk(struct pgconn *tgt, const char *name, const struct mig_table *t, int no,
			 const char *lo, const char *hi, struct err *err)
{
	char *tname = xasprintf("%s.%s", t->schema, t->name);
	char nobuf[16], tv[8];
	snprintf(nobuf, sizeof(nobuf), "%d", no);
	snprintf(tv, sizeof(tv), "%d", TRANSFORM_VERSION);
	const char *params[] = {name, tname, nobuf, lo, hi, tv};
	bool ok = pgconn_exec_params(tgt,
				     "INSERT INTO migd.chunks (name, table_name, chunk_no, lo, hi, "
				     "transform_version) VALUES ($1, $2, $3, $4, $5, $6)",
				     6, params, err);
	free(tname);
	return ok;
}

static bool plan_table(struct pgconn *src, struct pgconn *tgt, const struct backfill_opts *o,
		       const struct mig_table *t, struct err *err)
{
	char *tname = xasprintf("%s.%s", t->schema, t->name);
	const char *params[] = {o->name, tname};
	PGresult *r = pgconn_query(tgt,
				   "SELECT count(*) FROM migd.chunks WHERE name = $1 AND table_name = $2",
				   2, params, err);
	free(tname);
	if (r == NULL)
		return false;
	bool planned = atoi(PQgetvalue(r, 0, 0)) > 0;
	PQclear(r);
	if (planned)
		return true;

	/* The whole plan of a table commits at once: a crash re-plans it. */
	if (!pgconn_exec(tgt, "BEGIN", err))
		return false;
	bool ok = true;
	if (t->nkey == 0) {
		ok = insert_chunk(tgt, o->name, t, 0, NULL, NULL, err);
	} else {
		char *prev = NULL;
		int no = 0;
		for (;;) {
			bool end = false;
			char *b = next_boundary(src, t, prev, o->chunk_rows, &end, err);
			if (b == NULL) {
				ok = false;
				break;
			}
			if (end) {
				free(b);
				ok = insert_chunk(tgt, o->name, t, no, prev, NULL, err);
				break;
			}
			if (!insert_chunk(tgt, o->name, t, no++, prev, b, err)) {
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
	return pgconn_exec(tgt, "COMMIT", err);
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

bool backfill_plan(struct pgconn *src, struct pgconn *tgt, const struct backfill_opts *o,
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

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Drains a pending result queue so the connection is usable again. */
static void drain(struct pgconn *c)
{
	PGresult *r;
	while ((r = PQgetResult(c->conn)) != NULL)
		PQclear(r);
}

static bool copy_chunk(struct run *run, struct pgconn *src, struct pgconn *tgt, struct chunk *c,
		       struct err *err)
{
	const struct backfill_opts *o = run->o;
	char *pred = keyrange_pred(c->t, c->lo, c->hi);
	char *cols = table_column_list(c->t);
	bool ok = false, src_in_copy = false, tgt_in_copy = false;
	int64_t rows = 0;
	uint64_t sum = 0;
	char *sql;

	/* Source: a read-only repeatable-read transaction, in the snapshot when we have one. */
	if (!pgconn_exec(src, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err))
		goto out;
	if (o->snapshot != NULL && o->snapshot[0] != '\0') {
		sql = xasprintf("SET TRANSACTION SNAPSHOT '%s'", o->snapshot);
		bool s = pgconn_exec(src, sql, err);
		free(sql);
		if (!s)
			goto out;
	}
	/* Target: one transaction replaces the range and records it. */
	if (!pgconn_exec(tgt, "BEGIN", err))
		goto out;
	sql = xasprintf("DELETE FROM %s WHERE %s", c->t->tgt_qname, pred);
	ok = pgconn_exec(tgt, sql, err);
	free(sql);
	if (!ok)
		goto out;
	ok = false;

	sql = xasprintf("COPY (SELECT %s FROM %s WHERE %s) TO STDOUT", cols, c->t->qname, pred);
	PGresult *r = PQexec(src->conn, sql);
	free(sql);
	if (PQresultStatus(r) != PGRES_COPY_OUT) {
		err_set(err, "source: %s", PQresultErrorMessage(r));
		PQclear(r);
		goto out;
	}
	PQclear(r);
	src_in_copy = true;
	sql = xasprintf("COPY %s (%s) FROM STDIN", c->t->tgt_qname, cols);
	r = PQexec(tgt->conn, sql);
	free(sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		err_set(err, "target: %s", PQresultErrorMessage(r));
		PQclear(r);
		goto out;
	}
	PQclear(r);
	tgt_in_copy = true;

	char *buf;
	int n;
	while ((n = PQgetCopyData(src->conn, &buf, 0)) > 0) {
		sum += fnv1a(buf, (size_t)n);
		int w = PQputCopyData(tgt->conn, buf, n);
		PQfreemem(buf);
		if (w != 1) {
			err_set(err, "target: %s", pgconn_error(tgt));
			goto out;
		}
		if (++rows % 8192 == 0) {
			pthread_mutex_lock(&run->prog->lock);
			run->prog->rows_done += 8192;
			pthread_mutex_unlock(&run->prog->lock);
		}
	}
	src_in_copy = false;
	if (n == -2) {
		err_set(err, "source: %s", pgconn_error(src));
		goto out;
	}
	r = PQgetResult(src->conn);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		err_set(err, "source: %s", PQresultErrorMessage(r));
		PQclear(r);
		goto out;
	}
	PQclear(r);
	drain(src);
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

	char *tname = xasprintf("%s.%s", c->t->schema, c->t->name);
	char rowsbuf[24], sumbuf[24], nobuf[16];
	snprintf(rowsbuf, sizeof(rowsbuf), "%lld", (long long)rows);
	snprintf(sumbuf, sizeof(sumbuf), "%016llx", (unsigned long long)sum);
	snprintf(nobuf, sizeof(nobuf), "%d", c->no);
	const char *params[] = {o->name, tname, nobuf, rowsbuf, sumbuf};
	r = pgconn_query(tgt,
			 "UPDATE migd.chunks SET state = 'done', rows = $4, checksum = $5, "
			 "  attempts = attempts + 1, finished_at = clock_timestamp(), error = NULL, "
			 "  started_at = coalesce(started_at, now()) "
			 "WHERE name = $1 AND table_name = $2 AND chunk_no = $3",
			 5, params, err);
	free(tname);
	if (r == NULL)
		goto out;
	PQclear(r);
	ok = pgconn_exec(tgt, "COMMIT", err);
	if (!pgconn_exec(src, "COMMIT", &(struct err){{0}})) {
	}
	if (ok) {
		pthread_mutex_lock(&run->prog->lock);
		run->prog->rows_done += rows % 8192;
		pthread_mutex_unlock(&run->prog->lock);
	}
out:
	if (!ok) {
		int64_t counted = rows - rows % 8192;
		if (tgt_in_copy && tgt->conn != NULL) {
			if (PQputCopyEnd(tgt->conn, "chunk aborted") != 1) {
			}
			drain(tgt);
		}
		if (src_in_copy && src->conn != NULL)
			pgconn_close(src); /* cannot cancel a COPY OUT cheaply: reconnect */
		if (src->conn != NULL && !pgconn_exec(src, "ROLLBACK", &(struct err){{0}})) {
		}
		if (tgt->conn != NULL && !pgconn_exec(tgt, "ROLLBACK", &(struct err){{0}})) {
		}
		pthread_mutex_lock(&run->prog->lock);
		run->prog->rows_done -= counted;
		pthread_mutex_unlock(&run->prog->lock);
	}
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
	PGresult *r = pgconn_query(tgt,
				   "UPDATE migd.chunks SET attempts = attempts + 1, error = $4, "
				   "  state = $5 WHERE name = $1 AND table_name = $2 AND chunk_no = $3",
				   5, params, &e);
	if (r != NULL)
		PQclear(r);
	free(tname);
}

static bool ensure_conn(struct pgconn *c, const char *label, const char *conninfo,
			const volatile bool *stop, struct err *err)
{
	int backoff = 500;
	while (c->conn == NULL || pgconn_is_broken(c)) {
		pgconn_close(c);
		if (pgconn_open(c, label, conninfo, err))
			break;
		log_warn("backfill: %s; retrying in %d ms", err->msg, backoff);
		sleep_interruptible(backoff, stop);
		if (*stop)
			return false;
		backoff = backoff < 8000 ? backoff * 2 : 8000;
	}
	return true;
}

static void *worker(void *arg)
{
	struct run *run = arg;
	const struct backfill_opts *o = run->o;
	struct pgconn src = {0}, tgt = {0};
	struct err err;

	for (;;) {
		while (*o->paused && !*o->stop)
			sleep_interruptible(200, o->stop);
		if (*o->stop)
			break;
		pthread_mutex_lock(&run->lock);
		struct chunk *c = run->next < run->nchunks ? &run->chunks[run->next++] : NULL;
		pthread_mutex_unlock(&run->lock);
		if (c == NULL)
			break;
		pthread_mutex_lock(&run->prog->lock);
		run->prog->chunks_running++;
		pthread_mutex_unlock(&run->prog->lock);
		bool done = false;
		while (!done && !*o->stop) {
			if (!ensure_conn(&src, "source", o->src_conninfo, o->stop, &err) ||
			    !ensure_conn(&tgt, "target", o->tgt_conninfo, o->stop, &err))
				break;
			/* Triggers and FK checks fire on the source already, like PG's apply worker. */
			if (!pgconn_exec(&tgt, "SET session_replication_role = replica", &err))
				log_warn("backfill: %s (triggers and FKs stay active on the target)",
					 err.msg);
			done = copy_chunk(run, &src, &tgt, c, &err);
			if (done)
				break;
			c->attempts++;
			bool lost = pgconn_is_broken(&src) || pgconn_is_broken(&tgt);
			log_warn("backfill: %s.%s chunk %d: %s", c->t->schema, c->t->name, c->no,
				 err.msg);
			pthread_mutex_lock(&run->prog->lock);
			snprintf(run->prog->last_error, sizeof(run->prog->last_error),
				 "%s.%s chunk %d: %s", c->t->schema, c->t->name, c->no, err.msg);
			pthread_mutex_unlock(&run->prog->lock);
			/* A lost connection is not the chunk's fault: retry it without limit. */
			if (!lost && c->attempts >= o->max_attempts) {
				record_failure(&tgt, o, c, err.msg, true);
				pthread_mutex_lock(&run->lock);
				if (run->failed++ == 0)
					snprintf(run->first_failure, sizeof(run->first_failure),
						 "%s.%s chunk %d: %s", c->t->schema, c->t->name,
						 c->no, err.msg);
				pthread_mutex_unlock(&run->lock);
				break;
			}
			if (!lost)
				record_failure(&tgt, o, c, err.msg, false);
			sleep_interruptible(500 * c->attempts, o->stop);
		}
		pthread_mutex_lock(&run->prog->lock);
		run->prog->chunks_running--;
		if (done)
			run->prog->chunks_done++;
		else if (!*o->stop)
			run->prog->chunks_failed++;
		pthread_mutex_unlock(&run->prog->lock);
	}
	pgconn_close(&src);
	pgconn_close(&tgt);
	return NULL;
}

static bool load_pending(struct run *run, struct err *err)
{
	const struct backfill_opts *o = run->o;
	struct pgconn tgt = {0};
	if (!pgconn_open(&tgt, "target", o->tgt_conninfo, err))
		return false;
	const char *params[] = {o->name};
	PGresult *r = pgconn_query(&tgt,
				   "SELECT table_name, chunk_no, lo::text, hi::text, attempts "
				   "FROM migd.chunks WHERE name = $1 AND state <> 'done' "
				   "ORDER BY table_name, chunk_no",
				   1, params, err);
	pgconn_close(&tgt);
	if (r == NULL)
		return false;
	run->nchunks = 0;
	run->chunks = xcalloc((size_t)PQntuples(r) + 1, sizeof(struct chunk));
	for (int i = 0; i < PQntuples(r); i++) {
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
		c->no = atoi(PQgetvalue(r, i, 1));
		c->lo = PQgetisnull(r, i, 2) ? NULL : xstrdup(PQgetvalue(r, i, 2));
		c->hi = PQgetisnull(r, i, 3) ? NULL : xstrdup(PQgetvalue(r, i, 3));
		/* Failed chunks get a fresh set of attempts on a new run. */
		c->attempts = 0;
	}
	PQclear(r);
	return true;
}

bool backfill_run(const struct backfill_opts *o, struct backfill_progress *prog, struct err *err)
{
	struct run run = {.o = o, .prog = prog};
	if (!load_pending(&run, err))
		return false;
	pthread_mutex_init(&run.lock, NULL);
	pthread_mutex_lock(&prog->lock);
	prog->started_usec = now_mono_usec();
	prog->rows_at_start = prog->rows_done;
	prog->finished_usec = 0;
	prog->chunks_failed = 0;
	pthread_mutex_unlock(&prog->lock);

	int nw = o->parallel < run.nchunks ? o->parallel : run.nchunks;
	pthread_t *th = xcalloc((size_t)(nw ? nw : 1), sizeof(pthread_t));
	for (int i = 0; i < nw; i++)
		pthread_create(&th[i], NULL, worker, &run);
	for (int i = 0; i < nw; i++)
		pthread_join(th[i], NULL);
	free(th);
	for (int i = 0; i < run.nchunks; i++) {
		free(run.chunks[i].lo);
		free(run.chunks[i].hi);
	}
	free(run.chunks);
	pthread_mutex_destroy(&run.lock);
	pthread_mutex_lock(&prog->lock);
	prog->finished_usec = now_mono_usec();
	pthread_mutex_unlock(&prog->lock);

	if (*o->stop) {
		err_set(err, "stopped");
		return false;
	}
	if (run.failed > 0) {
		err_set(err, "%d chunk%s failed; first: %s", run.failed, run.failed > 1 ? "s" : "",
			run.first_failure);
		return false;
	}
	return true;
}
