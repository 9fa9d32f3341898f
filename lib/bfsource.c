/* bfsource: the source side of a backfill chunk, per engine (see bfsource.h). */
#include "bfsource.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binlog_rows.h"
#include "change.h"
#include "keyrange.h"
#include "log.h"
#include "mycapture.h"
#include "mysnap.h"

bool bfsource_is_broken(struct bfsource *s)
{
	return s->mariadb ? myconn_is_broken(&s->my)
			  : (s->pg.conn == NULL || pgconn_is_broken(&s->pg));
}

void bfsource_close(struct bfsource *s)
{
	pgcapture_release(&s->tmp);
	pgconn_close(&s->pg);
	myconn_close(&s->my);
	s->in_copy = false;
}

bool bfsource_ensure(struct bfsource *s, const volatile bool *stop, struct err *err)
{
	int backoff = 500;
	if (!bfsource_is_broken(s))
		return true;
	for (;;) {
		bfsource_close(s);
		bool ok = s->mariadb ? myconn_open_dsn(&s->my, "source", s->conninfo, err)
				     : pgconn_open(&s->pg, "source", s->conninfo, err);
		if (ok)
			break;
		log_warn("backfill: %s; retrying in %d ms", err->msg, backoff);
		sleep_interruptible(backoff, stop);
		if (*stop)
			return false;
		backoff = backoff < 8000 ? backoff * 2 : 8000;
	}
	struct err e;
	/* No JIT: compiling costs more than it saves on a plain range scan. */
	if (!s->mariadb && !pgconn_exec(&s->pg, "SET jit = off", &e))
		log_debug("backfill: %s", e.msg);
	return true;
}

/* PostgreSQL: the key chunk_rows rows on, from the key's own index order. */
static char *pg_next_boundary(struct pgconn *src, const struct mig_table *t, const char *after,
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
	/*
	 * The array is built outside the OFFSET: in the scan's own target list
	 * it would be built for every skipped row (twice the time).
	 */
	char *sql =
	    xasprintf("SELECT ARRAY[%s]::text[] FROM (SELECT %s FROM %s WHERE %s ORDER BY %s "
		      "OFFSET %lld LIMIT 1) b",
		      texts, keys, t->qname, where, keys, (long long)(chunk_rows - 1));
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

char *bfsource_next_boundary(struct bfsource *s, const struct mig_table *t, const char *after,
			     int64_t chunk_rows, bool *end, struct err *err)
{
	if (s->mariadb)
		return mysnap_next_boundary(&s->my, t, after, chunk_rows, end, err);
	return pg_next_boundary(&s->pg, t, after, chunk_rows, end, err);
}

/* A temporary slot's exported snapshot: its consistent point is where it stands. */
static bool pg_temp_snapshot(struct bfsource *s, uint64_t *lsn, struct err *err)
{
	static unsigned seq;
	if (s->repl_conninfo == NULL) {
		err_set(err, "BUG: a table without a key needs a snapshot at a known position, "
			     "and no replication connection was given");
		return false;
	}
	char slot[64];
	snprintf(slot, sizeof(slot), "migd_bf_%ld_%u", (long)getpid(),
		 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
	if (!pgcapture_create_temp_slot(s->repl_conninfo, slot, &s->tmp, err)) {
		err_prefix(err, "a table without a key is copied at an exact position");
		return false;
	}
	*lsn = s->tmp.consistent_lsn;
	return true;
}

bool bfsource_begin(struct bfsource *s, const char *snapshot, const struct pos *snapshot_pos,
		    struct pos *at, struct err *err)
{
	if (s->mariadb) {
		if (at != NULL)
			return mycapture_snapshot(&s->my, at, err);
		return myconn_exec(&s->my,
				   "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
				   err) &&
		       myconn_exec(&s->my, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
				   err);
	}
	bool exported = snapshot != NULL && snapshot[0] != '\0';
	uint64_t lsn = 0;
	if (at != NULL && !exported && !pg_temp_snapshot(s, &lsn, err))
		return false;
	if (!pgconn_exec(&s->pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err))
		return false;
	if (at != NULL)
		*at = exported ? *snapshot_pos : pos_from_lsn(lsn);
	if (!exported && at == NULL)
		return true;
	char *sql =
	    xasprintf("SET TRANSACTION SNAPSHOT '%s'", exported ? snapshot : s->tmp.snapshot);
	bool ok = pgconn_exec(&s->pg, sql, err);
	free(sql);
	return ok;
}

void bfsource_end(struct bfsource *s)
{
	struct err e;
	pgcapture_release(&s->tmp); /* the temporary slot goes with its connection */
	if (s->mariadb) {
		if (!myconn_is_broken(&s->my) && !myconn_exec(&s->my, "ROLLBACK", &e))
			log_debug("backfill: %s", e.msg);
		return;
	}
	if (s->in_copy) {
		pgconn_close(&s->pg); /* a COPY OUT cannot be cancelled cheaply: reconnect */
		s->in_copy = false;
		return;
	}
	if (s->pg.conn != NULL && !pgconn_exec(&s->pg, "ROLLBACK", &e))
		log_debug("backfill: %s", e.msg);
}

static bool pg_copy(struct bfsource *s, const struct mig_table *t, const char *lo, const char *hi,
		    bool (*line)(void *, const char *, size_t), void *arg, int64_t *rows,
		    struct err *err)
{
	char *pred = keyrange_pred(t, lo, hi);
	char *cols = table_column_list(t);
	char *sql = xasprintf("COPY (SELECT %s FROM %s WHERE %s) TO STDOUT", cols, t->qname, pred);
	free(pred);
	free(cols);
	PGresult *r = PQexec(s->pg.conn, sql);
	free(sql);
	if (PQresultStatus(r) != PGRES_COPY_OUT) {
		err_set(err, "source: %s", PQresultErrorMessage(r));
		PQclear(r);
		return false;
	}
	PQclear(r);
	s->in_copy = true;
	char *buf;
	int n;
	while ((n = PQgetCopyData(s->pg.conn, &buf, 0)) > 0) {
		bool ok = line(arg, buf, (size_t)n);
		PQfreemem(buf);
		if (!ok) {
			err_set(err, "source: copy stopped by the target");
			return false;
		}
		(*rows)++;
	}
	if (n == -2) {
		err_set(err, "source: %s", pgconn_error(&s->pg));
		return false;
	}
	s->in_copy = false;
	r = PQgetResult(s->pg.conn);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		err_set(err, "source: %s", PQresultErrorMessage(r));
	PQclear(r);
	while ((r = PQgetResult(s->pg.conn)) != NULL)
		PQclear(r);
	return ok;
}

/* Why a row's values cannot be copied ("column c: zero_date '0000-00-00'"); caller frees. */
static char *bad_reason(const struct mig_table *t, const struct binlog_image *img)
{
	uint32_t i = img->first_bad;
	const struct change_value *v = &img->tuple.vals[i];
	return xasprintf("unmappable value from the source: column %s: %s%s%.*s%s", t->cols[i].name,
			 binlog_value_status_name((enum binlog_value_status)img->status[i]),
			 v->kind == CHV_TEXT ? " '" : "",
			 v->kind == CHV_TEXT ? (int)(v->len > 64 ? 64 : v->len) : 0,
			 v->kind == CHV_TEXT ? v->data : "", v->kind == CHV_TEXT ? "'" : "");
}

static bool my_copy(struct bfsource *s, const struct mig_table *t, const char *lo, const char *hi,
		    bool (*line)(void *, const char *, size_t),
		    bool (*bad)(void *, const char *, const char *), void *arg, int64_t *rows,
		    struct err *err)
{
	struct mysnap_rows *it;
	if (!mysnap_rows_open(&s->my, t, lo, hi, &it, err))
		return false;
	struct change_buf lb = {0};
	bool ok = true;
	for (;;) {
		struct binlog_image img;
		enum mysnap_next nx = mysnap_rows_next(it, &img, err);
		if (nx == MYSNAP_END)
			break;
		if (nx == MYSNAP_ERROR) {
			ok = false;
			break;
		}
		if (img.nbad > 0) {
			char *key = mysnap_tuple_key_json(t, &img.tuple);
			char *why = bad_reason(t, &img);
			ok = bad(arg, key, why);
			if (!ok)
				err_set(err, "source: %s.%s key %s: %s", t->schema, t->name, key,
					why);
			free(key);
			free(why);
			if (!ok)
				break;
			continue;
		}
		change_buf_reset(&lb);
		if (!mysnap_copy_line(&lb, &img.tuple)) {
			err_set(err, "source: %s.%s: a row with a value missing", t->schema,
				t->name);
			ok = false;
			break;
		}
		if (!line(arg, (const char *)lb.data, lb.len)) {
			err_set(err, "source: copy stopped by the target");
			ok = false;
			break;
		}
		(*rows)++;
	}
	mysnap_rows_close(it);
	change_buf_free(&lb);
	return ok;
}

bool bfsource_copy(struct bfsource *s, const struct mig_table *t, const char *lo, const char *hi,
		   bool (*line)(void *arg, const char *buf, size_t len),
		   bool (*bad)(void *arg, const char *key, const char *why), void *arg,
		   int64_t *rows, struct err *err)
{
	*rows = 0;
	if (s->mariadb)
		return my_copy(s, t, lo, hi, line, bad, arg, rows, err);
	return pg_copy(s, t, lo, hi, line, arg, rows, err);
}
