/*
 * bftarget_my: backfill into a MySQL/MariaDB target (see bftarget.h).
 *
 * The ledger is migd.chunks in the target's migd database (mystore.h),
 * written in the chunk's own InnoDB transaction.  This file is the
 * connection, the plan and the ledger; bftarget_myrows.c turns a chunk's
 * COPY lines into INSERTs.
 *
 * Session (a worker's own connection; the plan runs on the coordinator's,
 * which is left as it is):
 *   sql_mode strict (myconn sets it on every connection): MariaDB refuses
 *     a value instead of truncating it;
 *   foreign_key_checks = 0: the source enforced its foreign keys, and the
 *     chunks of parent and child tables commit in any order (the
 *     counterpart of session_replication_role = replica on PostgreSQL; the
 *     sink does the same);
 *   unique_checks = 1: with 0 InnoDB may skip the uniqueness check of a
 *     secondary unique index, and a duplicate -- which a PostgreSQL source
 *     can produce for a case-insensitive unique key -- would go into the
 *     index unnoticed instead of failing the chunk;
 *   explicit_defaults_for_timestamp = 1: a NULL for a TIMESTAMP column
 *     stays NULL (or is refused), never becomes the current time;
 *   READ COMMITTED: the range DELETE locks the rows it deletes, not the
 *     gaps next to them, so neighbouring chunks never wait on each other.
 * sql_log_bin stays on, as in the sink: the target's binlog is complete
 * (its replicas get the rows; reverse replication reads it later).
 * Triggers on the target fire: MariaDB cannot turn them off per session.
 *
 * Durability.  MariaDB has no asynchronous commit per session
 * (innodb_flush_log_at_trx_commit is global only), so a chunk's COMMIT is
 * exactly as durable as the server makes every commit.  With the defaults
 * (innodb_flush_log_at_trx_commit = 1) it survives a server crash; an OS
 * crash can still lose commits unless sync_binlog = 1 (with the binlog
 * on, an InnoDB transaction whose binlog events were lost is rolled back
 * at recovery); with innodb_flush_log_at_trx_commit 0 or 2 a server crash
 * loses the last second.  A lost commit takes its ledger row with it, so
 * the chunk is simply pending again.  sync() says once per run what the
 * server's settings promise, and backfill.c re-reads the ledger after each
 * pass as for PostgreSQL: what a crash before that took is copied again.
 * No client statement makes earlier commits durable on a server
 * configured not to (FLUSH ENGINE LOGS writes InnoDB's log without
 * syncing it unless innodb_flush_log_at_trx_commit = 1).
 *
 * Indexes stay during the copy: defer_indexes changes nothing on this
 * engine (backfill.h gives the measurement).
 */
#include "bftarget_my.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mystore.h"

/* --- SQL helpers ------------------------------------------------------------------ */

void bfmy_quote(struct mytext_buf *b, const char *s)
{
	if (s == NULL)
		mytext_buf_adds(b, "NULL");
	else
		mytext_quote(b, s, strlen(s));
}

/* Runs one statement without a result set; *affected gets the rows it changed. */
static bool exec_count(struct myconn *c, const char *sql, uint64_t *affected, struct err *err)
{
	if (c->db == NULL) {
		err_set(err, "%s: not connected", c->label);
		return false;
	}
	if (mysql_real_query(c->db, sql, strlen(sql)) != 0) {
		myconn_set_error(c, "", err);
		return false;
	}
	*affected = mysql_affected_rows(c->db);
	return true;
}

/* " WHERE name = '..' AND table_name = '..' AND chunk_no = N" */
static void chunk_where(struct mytext_buf *b, const char *name, const struct mig_table *t, int no)
{
	char *tname = bftarget_table_name(t);
	char nobuf[24];
	mytext_buf_adds(b, " WHERE name = ");
	bfmy_quote(b, name);
	mytext_buf_adds(b, " AND table_name = ");
	bfmy_quote(b, tname);
	snprintf(nobuf, sizeof(nobuf), " AND chunk_no = %d", no);
	mytext_buf_adds(b, nobuf);
	free(tname);
}

/* --- connection --------------------------------------------------------------------- */

static struct bfmy *M(struct bftarget *t)
{
	return (struct bfmy *)t;
}

static bool my_is_broken(struct bftarget *t)
{
	struct myconn *c = M(t)->c;
	return c->db == NULL || myconn_is_broken(c);
}

static bool my_connect(struct bftarget *t, struct err *err)
{
	struct bfmy *m = M(t);
	if (!my_is_broken(t))
		return true;
	bfmy_forget(m);
	myconn_close(m->c);
	if (!myconn_open_dsn(m->c, "target", m->dsn, err))
		return false;
	if (m->c == &m->own &&
	    !myconn_exec(m->c,
			 "SET SESSION foreign_key_checks = 0, unique_checks = 1, "
			 "explicit_defaults_for_timestamp = 1; "
			 "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
			 err))
		goto fail;
	char *v = myconn_query_value(m->c, "SELECT @@max_allowed_packet", err);
	if (v == NULL)
		goto fail;
	m->max_packet = (size_t)strtoull(v, NULL, 10);
	free(v);
	return true;
fail:
	myconn_close(m->c);
	return false;
}

static void my_free(struct bftarget *t)
{
	struct bfmy *m = M(t);
	if (m == NULL)
		return;
	bfmy_forget(m);
	bfmy_rows_free(m);
	myconn_close(&m->own);
	free(m);
}

/* --- planning --------------------------------------------------------------------------- */

static bool my_planned(struct bftarget *t, const char *name, const char *table_name, bool *planned,
		       struct err *err)
{
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, "SELECT COUNT(*) FROM migd.chunks WHERE name = ");
	bfmy_quote(&b, name);
	mytext_buf_adds(&b, " AND table_name = ");
	bfmy_quote(&b, table_name);
	char *v = myconn_query_value(M(t)->c, b.data, err);
	mytext_buf_free(&b);
	if (v == NULL)
		return false;
	*planned = atoll(v) > 0;
	free(v);
	return true;
}

/*
 * The plan's transaction (REPEATABLE READ, so that the locking read below
 * takes next-key locks): the target table must take the source's rows,
 * and it is empty if a locking read finds no row -- which then locks the
 * whole (empty) index against inserts until the plan commits.  A lock wait
 * that times out costs speed only: the chunks delete their range first.
 */
static bool my_plan_begin(struct bftarget *t, const char *name, const struct mig_table *tb,
			  bool defer_indexes, bool *empty, int *deferred, struct err *err)
{
	struct bfmy *m = M(t);
	(void)name;
	(void)defer_indexes;
	*empty = false;
	*deferred = 0;
	const struct bfmy_desc *d = bfmy_describe(m, tb, err);
	if (d == NULL)
		return false;
	if (d->error != NULL) {
		err_set(err, "%s", d->error);
		return false;
	}
	if (!myconn_exec(m->c, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION",
			 err))
		return false;
	char *sql = xasprintf("SET STATEMENT innodb_lock_wait_timeout = 30 FOR "
			      "SELECT 1 FROM %s LIMIT 1 FOR UPDATE",
			      d->qname);
	struct err e;
	MYSQL_RES *r = myconn_query(m->c, sql, &e);
	free(sql);
	if (r == NULL) {
		if (myconn_is_broken(m->c)) {
			*err = e;
			return false;
		}
		log_warn("backfill: %s.%s: chunks will delete their range first: %s", tb->schema,
			 tb->name, e.msg);
		return true;
	}
	*empty = mysql_num_rows(r) == 0;
	mysql_free_result(r);
	return true;
}

static bool my_plan_chunk(struct bftarget *t, const char *name, const struct mig_table *tb, int no,
			  const char *lo, const char *hi, bool empty, struct err *err)
{
	char *tname = bftarget_table_name(tb);
	char tail[64];
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, "INSERT INTO migd.chunks (name, table_name, chunk_no, lo, hi, "
			    "transform_version, target_empty) VALUES (");
	bfmy_quote(&b, name);
	mytext_buf_addc(&b, ',');
	bfmy_quote(&b, tname);
	snprintf(tail, sizeof(tail), ",%d,", no);
	mytext_buf_adds(&b, tail);
	bfmy_quote(&b, lo);
	mytext_buf_addc(&b, ',');
	bfmy_quote(&b, hi);
	snprintf(tail, sizeof(tail), ",%d,%d)", TRANSFORM_VERSION, empty ? 1 : 0);
	mytext_buf_adds(&b, tail);
	bool ok = myconn_exec(M(t)->c, b.data, err);
	mytext_buf_free(&b);
	free(tname);
	return ok;
}

static bool my_plan_end(struct bftarget *t, bool commit, struct err *err)
{
	struct myconn *c = M(t)->c;
	if (commit)
		return myconn_exec(c, "COMMIT", err);
	if (c->db != NULL && !myconn_is_broken(c) && !myconn_exec(c, "ROLLBACK", err))
		log_debug("backfill: %s", err->msg);
	return true;
}

/* --- the ledger -------------------------------------------------------------------------- */

static bool my_totals(struct bftarget *t, const char *name, struct bftarget_totals *out,
		      struct err *err)
{
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, "SELECT COUNT(*), COALESCE(SUM(state = 'done'), 0), "
			    "COALESCE(SUM(state = 'failed'), 0), "
			    "COALESCE(SUM(CASE WHEN state = 'done' THEN `rows` END), 0) "
			    "FROM migd.chunks WHERE name = ");
	bfmy_quote(&b, name);
	MYSQL_RES *r = myconn_query(M(t)->c, b.data, err);
	mytext_buf_free(&b);
	if (r == NULL)
		return false;
	MYSQL_ROW row = mysql_fetch_row(r);
	out->chunks = atoll(row[0]);
	out->done = atoll(row[1]);
	out->failed = atoll(row[2]);
	out->rows_done = atoll(row[3]);
	mysql_free_result(r);
	return true;
}

static bool my_pending(struct bftarget *t, const char *name, struct bftarget_todo **out, int *n,
		       struct err *err)
{
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, "SELECT table_name, chunk_no, lo, hi, target_empty FROM migd.chunks "
			    "WHERE state <> 'done' AND name = ");
	bfmy_quote(&b, name);
	mytext_buf_adds(&b, " ORDER BY table_name, chunk_no");
	MYSQL_RES *r = myconn_query(M(t)->c, b.data, err);
	mytext_buf_free(&b);
	if (r == NULL)
		return false;
	*n = (int)mysql_num_rows(r);
	*out = xcalloc((size_t)*n + 1, sizeof(**out));
	MYSQL_ROW row;
	for (int i = 0; i < *n && (row = mysql_fetch_row(r)) != NULL; i++) {
		struct bftarget_todo *x = &(*out)[i];
		x->table_name = xstrdup(row[0]);
		x->no = atoi(row[1]);
		x->lo = row[2] ? xstrdup(row[2]) : NULL;
		x->hi = row[3] ? xstrdup(row[3]) : NULL;
		x->target_empty = atoi(row[4]) != 0;
	}
	mysql_free_result(r);
	return true;
}

static bool my_copied(struct bftarget *t, const char *name, struct bftarget_copied **out, int *n,
		      struct err *err)
{
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, "SELECT table_name, copied_at FROM migd.chunks "
			    "WHERE state = 'done' AND copied_at IS NOT NULL AND name = ");
	bfmy_quote(&b, name);
	MYSQL_RES *r = myconn_query(M(t)->c, b.data, err);
	mytext_buf_free(&b);
	if (r == NULL)
		return false;
	*n = (int)mysql_num_rows(r);
	*out = xcalloc((size_t)*n + 1, sizeof(**out));
	MYSQL_ROW row;
	for (int i = 0; i < *n && (row = mysql_fetch_row(r)) != NULL; i++)
		(*out)[i] = (struct bftarget_copied){.table_name = xstrdup(row[0]),
						     .pos = xstrdup(row[1])};
	mysql_free_result(r);
	return true;
}

/* Nothing to flush (see the top): says what the server's settings promise. */
static bool my_sync(struct bftarget *t, struct err *err)
{
	MYSQL_RES *r = myconn_query(
	    M(t)->c, "SELECT @@innodb_flush_log_at_trx_commit, @@sync_binlog, @@log_bin", err);
	if (r == NULL)
		return false;
	MYSQL_ROW row = mysql_fetch_row(r);
	const char *trx = row != NULL && row[0] ? row[0] : "?";
	bool sync_binlog = row != NULL && row[1] && strcmp(row[1], "0") != 0;
	bool binlog = row != NULL && row[2] && strcmp(row[2], "1") == 0;
	if (strcmp(trx, "1") != 0)
		log_warn("backfill: the target runs with innodb_flush_log_at_trx_commit = %s: a "
			 "server crash after the backfill ends can lose chunks it reported done",
			 trx);
	else if (binlog && !sync_binlog)
		log_notice("backfill: the target runs with sync_binlog = 0: chunks are durable "
			   "against a server crash, not an operating system crash");
	mysql_free_result(r);
	return true;
}

static void my_chunk_failed(struct bftarget *t, const char *name, const struct bftarget_chunk *c,
			    const char *msg, bool final)
{
	struct myconn *conn = M(t)->c;
	if (conn->db == NULL || myconn_is_broken(conn))
		return;
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, "UPDATE migd.chunks SET attempts = attempts + 1, error = ");
	bfmy_quote(&b, msg);
	mytext_buf_adds(&b, final ? ", state = 'failed'" : ", state = 'pending'");
	chunk_where(&b, name, c->t, c->no);
	mytext_buf_adds(&b, " AND state <> 'done'");
	struct err e;
	if (!myconn_exec(conn, b.data, &e))
		log_debug("backfill: %s", e.msg);
	mytext_buf_free(&b);
}

/* --- a chunk: its transaction and its ledger row (the rows: bftarget_myrows.c) ------------ */

static bool my_failed_record(struct bftarget *t, const char *name, const char *table_name,
			     const char *source_pos, const char *key, const char *why,
			     struct err *err)
{
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, "INSERT INTO migd.failed_records (name, table_name, source_pos, "
			    "`key`, `change`, error) VALUES (");
	bfmy_quote(&b, name);
	mytext_buf_addc(&b, ',');
	bfmy_quote(&b, table_name);
	mytext_buf_addc(&b, ',');
	bfmy_quote(&b, source_pos);
	mytext_buf_addc(&b, ',');
	bfmy_quote(&b, key);
	mytext_buf_adds(&b, ", '{\"op\":\"backfill\"}', ");
	bfmy_quote(&b, why);
	mytext_buf_addc(&b, ')');
	bool ok = myconn_exec(M(t)->c, b.data, err);
	mytext_buf_free(&b);
	return ok;
}

static bool my_chunk_done(struct bftarget *t, const char *name, const struct bftarget_chunk *c,
			  int64_t rows, uint64_t sum, bool *already, struct err *err)
{
	char set[160];
	snprintf(set, sizeof(set),
		 "UPDATE migd.chunks SET state = 'done', `rows` = %lld, checksum = '%016llx', ",
		 (long long)rows, (unsigned long long)sum);
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, set);
	mytext_buf_adds(&b, "attempts = attempts + 1, finished_at = SYSDATE(6), error = NULL, "
			    "started_at = COALESCE(started_at, @migd_chunk_start), copied_at = ");
	if (c->copied_at != NULL)
		bfmy_quote(&b, c->copied_at);
	else
		mytext_buf_adds(&b, "NULL");
	chunk_where(&b, name, c->t, c->no);
	mytext_buf_adds(&b, " AND state <> 'done'");
	uint64_t n = 0;
	bool ok = exec_count(M(t)->c, b.data, &n, err);
	mytext_buf_free(&b);
	*already = ok && n == 0;
	return ok;
}

static bool my_chunk_commit(struct bftarget *t, struct err *err)
{
	return myconn_exec(M(t)->c, "COMMIT", err);
}

static void my_chunk_abort(struct bftarget *t)
{
	struct bfmy *m = M(t);
	struct err e;
	bfmy_rows_reset(m);
	if (m->c->db != NULL && !myconn_is_broken(m->c) && !myconn_exec(m->c, "ROLLBACK", &e))
		log_debug("backfill: %s", e.msg);
}

/* --- deferred indexes: none on this engine ------------------------------------------------ */

static bool my_deferred(struct bftarget *t, const char *name, struct pgmeta_index **out, int *n,
			struct err *err)
{
	(void)t;
	(void)name;
	(void)err;
	*out = NULL;
	*n = 0;
	return true;
}

static bool my_restore_index(struct bftarget *t, const char *name, const struct pgmeta_index *ix,
			     struct err *err)
{
	(void)t;
	(void)name;
	err_set(err, "BUG: no index of %s was deferred on a MySQL/MariaDB target", ix->table_name);
	return false;
}

static void my_cancel(struct bftarget *t)
{
	(void)t;
}

static const struct bftarget_ops my_ops = {
    .connect = my_connect,
    .is_broken = my_is_broken,
    .free = my_free,
    .planned = my_planned,
    .plan_begin = my_plan_begin,
    .plan_chunk = my_plan_chunk,
    .plan_end = my_plan_end,
    .totals = my_totals,
    .pending = my_pending,
    .copied = my_copied,
    .sync = my_sync,
    .chunk_failed = my_chunk_failed,
    .chunk_begin = bfmy_chunk_begin,
    .chunk_put = bfmy_chunk_put,
    .chunk_end = bfmy_chunk_end,
    .failed_record = my_failed_record,
    .chunk_done = my_chunk_done,
    .chunk_commit = my_chunk_commit,
    .chunk_abort = my_chunk_abort,
    .deferred = my_deferred,
    .restore_index = my_restore_index,
    .cancel = my_cancel,
};

struct bftarget *bftarget_my_new(const char *conninfo, struct myconn *conn)
{
	struct bfmy *m = xcalloc(1, sizeof(*m));
	m->base.ops = &my_ops;
	m->base.engine = ENGINE_MARIADB;
	m->dsn = conninfo;
	m->c = conn != NULL ? conn : &m->own;
	m->max_packet = 16 * 1024 * 1024; /* MariaDB's default, until connect reads it */
	return &m->base;
}
