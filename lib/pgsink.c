/*
 * pgsink: the PostgreSQL target sink (see sink.h, pgsink.h).
 *
 * One connection in libpq pipeline mode.  Per relation two prepared
 * statements (an upsert and a delete by key, columns in the order the
 * source sends them); updates that carry unchanged-TOAST markers become an
 * UPDATE of only the columns present.  Statements are pipelined and the
 * pipeline is synced every PIPE_SYNC_EVERY commands (to read errors and
 * keep both socket buffers from filling) and at commit, where the progress
 * row and COMMIT ride in the same pipeline: one round trip per few hundred
 * changes instead of one per row.
 *
 * The connection runs with session_replication_role = replica, like
 * PostgreSQL's own apply worker: triggers and foreign keys already fired
 * on the source.
 */
#include "pgsink.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgstore.h"

#define PIPE_SYNC_EVERY 256
#define PIPE_INFLIGHT	4 /* sync groups sent but not read yet */

struct rel {
	uint32_t relid;
	struct mig_table *t; /* borrowed; NULL: not a migrated table (ignored) */
	bool schema_error;
	char reason[256];
	int ncols;
	char **colnames; /* owned: names in event order */
	int *key_ev;     /* owned: event column index of each key column, key order */
	bool prepared;
	int stmt_no;
};

struct pgsink {
	struct sink base;
	char *conninfo; /* owned; secret */
	char *name;     /* owned; migration name */
	struct mig_tableset *ts; /* borrowed */
	struct pgconn c;
	struct rel *rels; /* owned */
	int nrels;
	int next_stmt;
	int pending;  /* commands sent since the last sync */
	int inflight; /* syncs sent whose results are not read yet */
	bool isolate;
	struct sink_counts batch;
	/* scratch for NUL-terminated parameter copies */
	char *pbuf;
	size_t pcap;
};

static const char *rel_name(const struct rel *r)
{
	return r->t ? r->t->name : "?";
}

static void rel_clear(struct rel *r)
{
	for (int i = 0; i < r->ncols; i++)
		free(r->colnames[i]);
	free(r->colnames);
	free(r->key_ev);
	r->colnames = NULL;
	r->key_ev = NULL;
	r->ncols = 0;
}

static struct rel *find_rel(struct pgsink *s, uint32_t relid)
{
	for (int i = 0; i < s->nrels; i++)
		if (s->rels[i].relid == relid)
			return &s->rels[i];
	return NULL;
}

/* --- pipeline plumbing ------------------------------------------------------- */

/*
 * Results are read one sync group at a time: the commands up to a Sync and
 * its PGRES_PIPELINE_SYNC.  Up to PIPE_INFLIGHT groups stay unread so the
 * target never waits for the applier between groups; libpq reads incoming
 * results into its buffer whenever a send would block, so a long pipeline
 * cannot deadlock on full socket buffers.  After an error the server skips
 * the rest of that group and the open transaction is aborted: the first
 * error is the one reported.
 */
static bool read_group(struct pgsink *s, struct err *err)
{
	bool ok = true;
	for (;;) {
		PGresult *r = PQgetResult(s->c.conn);
		if (r == NULL) {
			if (PQstatus(s->c.conn) != CONNECTION_OK) {
				err_set(err, "target: connection lost: %s", pgconn_error(&s->c));
				s->base.broken = true;
				return false;
			}
			continue; /* end of one command's results */
		}
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		if (st == PGRES_FATAL_ERROR && ok) {
			const char *m = PQresultErrorMessage(r);
			err_set(err, "target: %.*s", (int)strcspn(m, "\n"), m);
			ok = false;
		}
		PQclear(r);
	}
	s->inflight--;
	if (PQstatus(s->c.conn) != CONNECTION_OK) {
		s->base.broken = true;
		if (ok)
			err_set(err, "target: connection lost");
		return false;
	}
	return ok;
}

/* Ends the current group with a Sync (sent at once); reads no results. */
static bool send_sync(struct pgsink *s, struct err *err)
{
	if (PQpipelineSync(s->c.conn) != 1) {
		err_set(err, "target: %s", pgconn_error(&s->c));
		s->base.broken = true;
		return false;
	}
	s->pending = 0;
	s->inflight++;
	return true;
}

/* Syncs and reads every result sent so far; the first error into err. */
static bool pipe_sync(struct pgsink *s, struct err *err)
{
	bool ok = send_sync(s, err);
	if (!ok)
		return false;
	while (s->inflight > 0) {
		struct err e;
		if (!read_group(s, ok ? err : &e)) {
			ok = false;
			if (s->base.broken)
				return false;
		}
	}
	return ok;
}

static bool sent(struct pgsink *s, int rc, struct err *err)
{
	if (rc != 1) {
		err_set(err, "target: %s", pgconn_error(&s->c));
		s->base.broken = true;
		return false;
	}
	if (++s->pending < PIPE_SYNC_EVERY || s->isolate)
		return true;
	if (!send_sync(s, err))
		return false;
	while (s->inflight > PIPE_INFLIGHT)
		if (!read_group(s, err))
			return false;
	return true;
}

static bool send_sql(struct pgsink *s, const char *sql, int n, const char *const *vals,
		     struct err *err)
{
	return sent(s, PQsendQueryParams(s->c.conn, sql, n, NULL, vals, NULL, NULL, 0), err);
}

/* --- statements -------------------------------------------------------------- */

enum join_style {
	J_NAME,     /* "c" */
	J_PARAM,    /* $n */
	J_EXCLUDED, /* "c" = EXCLUDED."c" */
	J_ASSIGN,   /* "c" = $n */
};

/* Joins n columns (idx maps to event columns; NULL = 0..n-1) in one style. */
static char *join_cols(const struct rel *r, int n, const int *idx, enum join_style style,
		       const char *sep)
{
	struct strbuf b = {0};
	for (int i = 0; i < n; i++) {
		char *id = pgconn_ident(r->colnames[idx ? idx[i] : i]);
		if (i)
			sb_addf(&b, "%s", sep);
		switch (style) {
		case J_NAME:
			sb_addf(&b, "%s", id);
			break;
		case J_PARAM:
			sb_addf(&b, "$%d", i + 1);
			break;
		case J_EXCLUDED:
			sb_addf(&b, "%s = EXCLUDED.%s", id, id);
			break;
		case J_ASSIGN:
			sb_addf(&b, "%s = $%d", id, i + 1);
			break;
		}
		free(id);
	}
	return sb_take(&b);
}

static bool prepare_rel(struct pgsink *s, struct rel *r, struct err *err)
{
	struct mig_table *t = r->t;
	int nkey = t->nkey;
	r->stmt_no = ++s->next_stmt;

	char *cols = join_cols(r, r->ncols, NULL, J_NAME, ", ");
	char *params = join_cols(r, r->ncols, NULL, J_PARAM, ", ");
	char *sql;
	if (nkey == 0) {
		sql = xasprintf("INSERT INTO %s (%s) VALUES (%s)", t->tgt_qname, cols, params);
	} else {
		int *nonkey = xcalloc((size_t)r->ncols, sizeof(int));
		int nn = 0;
		for (int i = 0; i < r->ncols; i++) {
			bool is_key = false;
			for (int k = 0; k < nkey; k++)
				is_key |= r->key_ev[k] == i;
			if (!is_key)
				nonkey[nn++] = i;
		}
		char *keys = join_cols(r, nkey, r->key_ev, J_NAME, ", ");
		char *sets = join_cols(r, nn, nonkey, J_EXCLUDED, ", ");
		sql = nn ? xasprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %s",
				     t->tgt_qname, cols, params, keys, sets)
			 : xasprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO NOTHING",
				     t->tgt_qname, cols, params, keys);
		free(keys);
		free(sets);
		free(nonkey);
	}
	char name[32];
	snprintf(name, sizeof(name), "migd_ins_%d", r->stmt_no);
	bool ok = sent(s, PQsendPrepare(s->c.conn, name, sql, 0, NULL), err);
	free(sql);
	if (ok && nkey > 0) {
		char *where = join_cols(r, nkey, r->key_ev, J_ASSIGN, " AND ");
		sql = xasprintf("DELETE FROM %s WHERE %s", t->tgt_qname, where);
		snprintf(name, sizeof(name), "migd_del_%d", r->stmt_no);
		ok = sent(s, PQsendPrepare(s->c.conn, name, sql, 0, NULL), err);
		free(sql);
		free(where);
	}
	free(cols);
	free(params);
	r->prepared = ok;
	return ok;
}

/* NUL-terminated copies of values (text-format parameters need them). */
static const char **param_values(struct pgsink *s, const struct change_tuple *tup, const int *idx,
				 int n)
{
	size_t need = 0;
	for (int i = 0; i < n; i++) {
		const struct change_value *v = &tup->vals[idx ? idx[i] : i];
		need += v->kind == CHV_TEXT ? v->len + 1 : 0;
	}
	need += (size_t)n * sizeof(char *) + 16;
	if (need > s->pcap) {
		s->pcap = need * 2;
		s->pbuf = xrealloc(s->pbuf, s->pcap);
	}
	const char **vals = (const char **)(void *)s->pbuf;
	char *p = s->pbuf + (size_t)n * sizeof(char *);
	for (int i = 0; i < n; i++) {
		const struct change_value *v = &tup->vals[idx ? idx[i] : i];
		if (v->kind != CHV_TEXT) {
			vals[i] = NULL;
			continue;
		}
		memcpy(p, v->data, v->len);
		p[v->len] = '\0';
		vals[i] = p;
		p += v->len + 1;
	}
	return vals;
}

static bool send_prepared(struct pgsink *s, const char *kind, struct rel *r,
			  const struct change_tuple *tup, const int *idx, int n, struct err *err)
{
	char name[32];
	snprintf(name, sizeof(name), "migd_%s_%d", kind, r->stmt_no);
	const char **vals = param_values(s, tup, idx, n);
	return sent(s, PQsendQueryPrepared(s->c.conn, name, n, vals, NULL, NULL, 0), err);
}

/* UPDATE of the columns present (unchanged-TOAST columns keep their value). */
static bool send_partial_update(struct pgsink *s, struct rel *r, const struct change_tuple *nt,
				const struct change_tuple *keytup, struct err *err)
{
	int *present = xcalloc((size_t)r->ncols, sizeof(int));
	int np = 0;
	for (int i = 0; i < r->ncols; i++)
		if (nt->vals[i].kind != CHV_UNCHANGED)
			present[np++] = i;
	char *sets = join_cols(r, np, present, J_ASSIGN, ", ");
	struct strbuf wb = {0};
	for (int k = 0; k < r->t->nkey; k++) {
		char *id = pgconn_ident(r->colnames[r->key_ev[k]]);
		sb_addf(&wb, "%s%s = $%d", k ? " AND " : "", id, np + k + 1);
		free(id);
	}
	char *where = sb_take(&wb);
	char *sql = xasprintf("UPDATE %s SET %s WHERE %s", r->t->tgt_qname, sets, where);
	/* Parameters: present new values, then the key (old key if it changed). */
	int n = np + r->t->nkey;
	struct change_value *vv = xcalloc((size_t)n, sizeof(*vv));
	for (int i = 0; i < np; i++)
		vv[i] = nt->vals[present[i]];
	for (int k = 0; k < r->t->nkey; k++)
		vv[np + k] = keytup->vals[r->key_ev[k]];
	struct change_tuple tmp = {.ncols = (uint16_t)n, .vals = vv};
	const char **vals = param_values(s, &tmp, NULL, n);
	bool ok = sent(s, PQsendQueryParams(s->c.conn, sql, n, NULL, vals, NULL, NULL, 0), err);
	free(vv);
	free(sql);
	free(sets);
	free(where);
	free(present);
	return ok;
}

static bool key_equal(const struct rel *r, const struct change_tuple *a,
		      const struct change_tuple *b)
{
	for (int k = 0; k < r->t->nkey; k++) {
		const struct change_value *x = &a->vals[r->key_ev[k]], *y = &b->vals[r->key_ev[k]];
		if (x->kind != y->kind || x->len != y->len ||
		    (x->kind == CHV_TEXT && memcmp(x->data, y->data, x->len) != 0))
			return false;
	}
	return true;
}

static bool has_unchanged(const struct change_tuple *t)
{
	for (int i = 0; i < t->ncols; i++)
		if (t->vals[i].kind == CHV_UNCHANGED)
			return true;
	return false;
}

/* Sends the statements for one change; refusals are the target's to report. */
static bool send_change(struct pgsink *s, struct rel *r, const struct change_event *ev,
			struct err *err)
{
	const struct change_tuple *nt = &ev->row.new_tuple, *ot = &ev->row.old_tuple;
	switch (ev->kind) {
	case CHG_INSERT:
		return send_prepared(s, "ins", r, nt, NULL, r->ncols, err);
	case CHG_UPDATE: {
		if (r->t->nkey == 0) {
			err_set(err, "%s.%s is insert-only but received an UPDATE", r->t->schema,
				r->t->name);
			return false;
		}
		bool key_changed = ev->row.old_kind != 0 && !key_equal(r, ot, nt);
		if (has_unchanged(nt))
			return send_partial_update(s, r, nt, key_changed ? ot : nt, err);
		if (key_changed && !send_prepared(s, "del", r, ot, r->key_ev, r->t->nkey, err))
			return false;
		return send_prepared(s, "ins", r, nt, NULL, r->ncols, err);
	}
	case CHG_DELETE:
		if (r->t->nkey == 0) {
			err_set(err, "%s.%s is insert-only but received a DELETE", r->t->schema,
				r->t->name);
			return false;
		}
		return send_prepared(s, "del", r, ot, r->key_ev, r->t->nkey, err);
	default:
		return true;
	}
}

/* --- failed records and parked changes -------------------------------------- */

static json_t *tuple_json(const struct rel *r, const struct change_tuple *t, bool keys_only)
{
	json_t *o = json_object();
	for (int i = 0; i < t->ncols && i < r->ncols; i++) {
		bool is_key = false;
		for (int k = 0; r->t && k < r->t->nkey; k++)
			is_key |= r->key_ev[k] == i;
		if (keys_only && !is_key)
			continue;
		const struct change_value *v = &t->vals[i];
		json_object_set_new(o, r->colnames[i],
				    v->kind == CHV_NULL	       ? json_null()
				    : v->kind == CHV_UNCHANGED ? json_pack("{s:b}", "unchanged", 1)
							       : json_stringn(v->data, v->len));
	}
	return o;
}

static json_t *change_json(const struct rel *r, const struct change_event *ev)
{
	json_t *o = json_pack("{s:s}", "op", change_kind_name(ev->kind));
	if (ev->row.old_kind)
		json_object_set_new(o, "old", tuple_json(r, &ev->row.old_tuple, false));
	if (ev->kind != CHG_DELETE)
		json_object_set_new(o, "new", tuple_json(r, &ev->row.new_tuple, false));
	return o;
}

static bool record_row(struct pgsink *s, const char *table_sql, struct rel *r,
		       const struct change_event *ev, const struct pos *src_pos, const char *why,
		       struct err *err)
{
	char p[POS_TEXT_MAX];
	json_t *cj = change_json(r, ev);
	const struct change_tuple *kt = ev->kind == CHG_DELETE ? &ev->row.old_tuple
								: &ev->row.new_tuple;
	json_t *kj = tuple_json(r, kt, true);
	char *cs = json_dumps(cj, JSON_COMPACT), *ks = json_dumps(kj, JSON_COMPACT);
	char *tname = xasprintf("%s.%s", r->t->schema, r->t->name);
	const char *vals[] = {s->name, tname, pos_format(src_pos, p, sizeof(p)), ks, cs, why};
	bool ok = send_sql(s, table_sql, 6, vals, err);
	free(tname);
	free(cs);
	free(ks);
	json_decref(cj);
	json_decref(kj);
	return ok;
}

static const char *const failed_sql =
	"INSERT INTO migd.failed_records (name, table_name, source_pos, key, change, error) "
	"VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)";
static const char *const parked_sql =
	"INSERT INTO migd.parked (name, table_name, source_pos, change, reason) "
	"VALUES ($1, $2, $3, $5::jsonb, $6 || ' key=' || $4)";

/* --- sink ops ---------------------------------------------------------------- */

static struct pgsink *S(struct sink *b)
{
	return (struct pgsink *)b;
}

static bool op_open(struct sink *b, struct pos *applied, int64_t *commit_us, struct err *err)
{
	struct pgsink *s = S(b);
	pgconn_close(&s->c);
	for (int i = 0; i < s->nrels; i++)
		s->rels[i].prepared = false;
	s->pending = s->inflight = 0;
	if (!pgconn_open(&s->c, "target", s->conninfo, err))
		return false;
	if (!pgconn_exec(&s->c, "SET session_replication_role = replica", err))
		log_warn("apply: %s (triggers and FKs stay active on the target)", err->msg);
	if (!pgstore_applied(&s->c, s->name, applied, commit_us, err))
		return false;
	if (PQenterPipelineMode(s->c.conn) != 1) {
		err_set(err, "target: cannot enter pipeline mode");
		return false;
	}
	b->broken = false;
	return true;
}

static void op_close(struct sink *b)
{
	pgconn_close(&S(b)->c);
}

static bool op_begin(struct sink *b, bool isolate, struct err *err)
{
	struct pgsink *s = S(b);
	s->isolate = isolate;
	memset(&s->batch, 0, sizeof(s->batch));
	return send_sql(s, "BEGIN", 0, NULL, err);
}

static bool op_relation(struct sink *b, const struct change_relation *rel, struct err *err)
{
	struct pgsink *s = S(b);
	struct rel *r = find_rel(s, rel->relid);
	if (r == NULL) {
		s->rels = xrealloc(s->rels, (size_t)(s->nrels + 1) * sizeof(*s->rels));
		r = &s->rels[s->nrels++];
		memset(r, 0, sizeof(*r));
		r->relid = rel->relid;
	}
	rel_clear(r);
	r->prepared = false;
	r->t = tableset_find(s->ts, rel->schema, rel->name);
	r->ncols = rel->ncols;
	r->colnames = xcalloc((size_t)rel->ncols + 1, sizeof(char *));
	for (int i = 0; i < rel->ncols; i++)
		r->colnames[i] = xstrdup(rel->cols[i].name);
	if (r->t == NULL)
		return true; /* not ours: its changes are ignored */
	r->key_ev = xcalloc((size_t)r->t->nkey + 1, sizeof(int));

	/* The schema contract: same columns, same types, as at capture. */
	char why[200] = "";
	if (rel->ncols != r->t->ncols)
		snprintf(why, sizeof(why), "the source now has %d columns, %d at capture",
			 rel->ncols, r->t->ncols);
	for (int i = 0; i < rel->ncols && !why[0]; i++) {
		const struct mig_column *c = NULL;
		for (int j = 0; j < r->t->ncols && !c; j++)
			if (strcmp(r->t->cols[j].name, rel->cols[i].name) == 0)
				c = &r->t->cols[j];
		if (c == NULL)
			snprintf(why, sizeof(why), "column %s is new", rel->cols[i].name);
		else if (c->type_oid != rel->cols[i].type_oid)
			snprintf(why, sizeof(why), "column %s changed type (oid %u -> %u)",
				 rel->cols[i].name, c->type_oid, rel->cols[i].type_oid);
	}
	for (int k = 0; k < r->t->nkey && !why[0]; k++) {
		const char *kn = r->t->cols[r->t->key_idx[k]].name;
		int found = -1;
		for (int i = 0; i < rel->ncols; i++)
			if (strcmp(rel->cols[i].name, kn) == 0)
				found = i;
		if (found < 0)
			snprintf(why, sizeof(why), "key column %s is gone", kn);
		r->key_ev[k] = found;
	}
	if (why[0] && !r->schema_error) {
		r->schema_error = true;
		snprintf(r->reason, sizeof(r->reason), "schema changed on the source: %s", why);
		log_event(LOG_LVL_ERROR, "schema_error", "table=%s.%s reason=\"%s\"", rel->schema,
			  rel->name, r->reason);
	}
	return true;
}

static bool op_change(struct sink *b, const struct change_event *ev, const struct pos *src_pos,
		      struct err *err)
{
	struct pgsink *s = S(b);
	if (ev->kind == CHG_TRUNCATE) {
		for (int i = 0; i < ev->truncate.nrelids; i++) {
			struct rel *r = find_rel(s, ev->truncate.relids[i]);
			if (r == NULL || r->t == NULL)
				continue;
			char *sql = xasprintf("TRUNCATE %s%s", r->t->tgt_qname,
					      (ev->truncate.flags & 1) ? " CASCADE" : "");
			bool ok = send_sql(s, sql, 0, NULL, err);
			free(sql);
			if (!ok)
				return false;
		}
		return true;
	}
	struct rel *r = find_rel(s, ev->row.relid);
	if (r == NULL) {
		err_set(err, "BUG: change for relation %u before its RELATION message",
			ev->row.relid);
		return false;
	}
	if (r->t == NULL)
		return true;
	if (r->schema_error) {
		s->batch.parked++;
		return record_row(s, parked_sql, r, ev, src_pos, r->reason, err);
	}
	if (!r->prepared && !prepare_rel(s, r, err))
		return false;
	if (!s->isolate) {
		s->batch.changes++;
		return send_change(s, r, ev, err);
	}
	/* Isolated: a refusal becomes a failed record, the batch goes on. */
	struct err cerr = {{0}};
	bool ok = send_sql(s, "SAVEPOINT migd_change", 0, NULL, err) &&
		  send_change(s, r, ev, &cerr) && pipe_sync(s, &cerr);
	if (b->broken)
		return false;
	if (ok) {
		s->batch.changes++;
		return send_sql(s, "RELEASE SAVEPOINT migd_change", 0, NULL, err);
	}
	if (!pipe_sync(s, err)) /* clears a half-sent pipeline */
		if (b->broken)
			return false;
	log_event(LOG_LVL_ERROR, "failed_record", "table=%s.%s pos=%s error=\"%s\"", r->t->schema,
		  rel_name(r), pos_format(src_pos, (char[POS_TEXT_MAX]){0}, POS_TEXT_MAX), cerr.msg);
	s->batch.failed++;
	return send_sql(s, "ROLLBACK TO SAVEPOINT migd_change", 0, NULL, err) &&
	       record_row(s, failed_sql, r, ev, src_pos, cerr.msg, err) && pipe_sync(s, err);
}

static bool op_commit(struct sink *b, const struct pos *end, int64_t commit_time_us,
		      int64_t ntxns, struct err *err)
{
	struct pgsink *s = S(b);
	char p[POS_TEXT_MAX], t[24], n[24], c[24];
	snprintf(t, sizeof(t), "%lld", (long long)commit_time_us);
	snprintf(n, sizeof(n), "%lld", (long long)ntxns);
	snprintf(c, sizeof(c), "%lld", (long long)s->batch.changes);
	const char *vals[] = {s->name, pos_format(end, p, sizeof(p)), t, n, c};
	if (!send_sql(s, pgstore_progress_sql, 5, vals, err) || !send_sql(s, "COMMIT", 0, NULL, err) ||
	    !pipe_sync(s, err))
		return false;
	b->counts.changes += s->batch.changes;
	b->counts.failed += s->batch.failed;
	b->counts.parked += s->batch.parked;
	return true;
}

static void op_rollback(struct sink *b)
{
	struct pgsink *s = S(b);
	struct err e;
	if (s->c.conn == NULL || b->broken)
		return;
	if (!pipe_sync(s, &e) && b->broken)
		return;
	if (!send_sql(s, "ROLLBACK", 0, NULL, &e) || !pipe_sync(s, &e))
		log_warn("apply: rollback: %s", e.msg);
}

static bool op_violation(struct sink *b, const struct pos *freeze, const struct pos *txn,
			 uint32_t xid, const char *origin, const char *table, struct err *err)
{
	struct pgsink *s = S(b);
	char f[POS_TEXT_MAX], t[POS_TEXT_MAX], x[16];
	snprintf(x, sizeof(x), "%u", xid);
	const char *vals[] = {s->name, pos_format(freeze, f, sizeof(f)), pos_format(txn, t, sizeof(t)),
			      x, origin, table};
	return send_sql(s,
			"INSERT INTO migd.freeze_violations (name, freeze_pos, source_pos, xid, origin, "
			"table_name) VALUES ($1, $2, $3, $4, $5, $6)",
			6, vals, err);
}

static bool op_violations(struct sink *b, const struct pos *freeze, int64_t *n, struct err *err)
{
	struct pgsink *s = S(b);
	char f[POS_TEXT_MAX];
	const char *vals[] = {s->name, pos_format(freeze, f, sizeof(f))};
	/* Outside pipeline mode for a plain query: only called right after open. */
	if (PQexitPipelineMode(s->c.conn) != 1) {
		err_set(err, "target: cannot leave pipeline mode");
		return false;
	}
	char *v = pgconn_query_value(&s->c,
				     "SELECT count(*) FROM migd.freeze_violations "
				     "WHERE name = $1 AND freeze_pos = $2",
				     2, vals, err);
	bool ok = v != NULL && PQenterPipelineMode(s->c.conn) == 1;
	*n = v ? atoll(v) : 0;
	free(v);
	return ok;
}

static char *op_schema_errors(struct sink *b)
{
	struct pgsink *s = S(b);
	struct strbuf out = {0};
	for (int i = 0; i < s->nrels; i++) {
		struct rel *r = &s->rels[i];
		if (r->schema_error)
			sb_addf(&out, "%s.%s: %s\n", r->t->schema, r->t->name, r->reason);
	}
	return sb_take(&out);
}

static void op_free(struct sink *b)
{
	struct pgsink *s = S(b);
	if (s == NULL)
		return;
	pgconn_close(&s->c);
	for (int i = 0; i < s->nrels; i++)
		rel_clear(&s->rels[i]);
	free(s->rels);
	free(s->conninfo);
	free(s->name);
	free(s->pbuf);
	free(s);
}

static const struct sink_ops pgsink_ops = {
	.open = op_open,
	.close = op_close,
	.begin = op_begin,
	.relation = op_relation,
	.change = op_change,
	.commit = op_commit,
	.rollback = op_rollback,
	.violation = op_violation,
	.violations = op_violations,
	.schema_errors = op_schema_errors,
	.free = op_free,
};

struct sink *pgsink_new(const char *conninfo, const char *name, struct mig_tableset *ts)
{
	struct pgsink *s = xcalloc(1, sizeof(*s));
	s->base.ops = &pgsink_ops;
	s->conninfo = xstrdup(conninfo);
	s->name = xstrdup(name);
	s->ts = ts;
	return &s->base;
}
