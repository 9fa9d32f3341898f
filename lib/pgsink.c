/*
 * pgsink: the PostgreSQL target sink (see sink.h, pgsink.h).
 *
 * One connection in libpq pipeline mode.  Per relation two prepared
 * statements (an upsert and a delete by key, columns in the order the
 * source sends them); updates that carry unchanged-TOAST markers become an
 * UPDATE of only the columns present.  Outside isolate mode the changes of
 * most tables are first folded per key and sent as multi-row statements
 * (pgsink_fold.c).  Statements are pipelined and the
 * pipeline is synced every PIPE_SYNC_EVERY commands (to read errors and
 * keep both socket buffers from filling) and at commit, where the progress
 * row and COMMIT ride in the same pipeline: one round trip per few hundred
 * changes instead of one per row.  The answer to a COMMIT may be read
 * later (confirm), while the next batch is already being sent.
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
#include "pgsink_int.h"
#include "pgstore.h"

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
	free(r->pend);
	free(r->slots);
	r->colnames = NULL;
	r->key_ev = NULL;
	r->pend = NULL;
	r->slots = NULL;
	r->ncols = r->npend = r->nslots = 0;
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
	bool ok = true, commit_group = s->commit_groups > 0;
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
	if (commit_group) {
		if (!ok && !s->commit_failed) {
			s->commit_failed = true;
			s->commit_err = *err;
		}
		if (--s->commit_groups == 0)
			s->commit_answered_usec = now_mono_usec();
	}
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

/* Reads every result of the groups sent so far; the first error into err. */
static bool drain(struct pgsink *s, struct err *err)
{
	bool ok = true;
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

/* Syncs and reads every result sent so far; the first error into err. */
static bool pipe_sync(struct pgsink *s, struct err *err)
{
	return send_sync(s, err) && drain(s, err);
}

bool pgsink_sent(struct pgsink *s, int rc, struct err *err)
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

bool pgsink_send_sql(struct pgsink *s, const char *sql, int n, const char *const *vals,
		     struct err *err)
{
	return pgsink_sent(s, PQsendQueryParams(s->c.conn, sql, n, NULL, vals, NULL, NULL, 0), err);
}

/* --- statements -------------------------------------------------------------- */


/* Joins n columns (idx maps to event columns; NULL = 0..n-1) in one style. */
char * pgsink_join_cols(const struct rel *r, int n, const int *idx, enum join_style style,
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
	s->multi_params -= r->multi_params; /* a new stmt_no: the old ones are not used again */
	r->multi_ready[MULTI_UPSERT] = r->multi_ready[MULTI_DELETE] = 0;
	r->multi_params = 0;
	r->fold = s->replica && nkey > 0 && s->table_fold != NULL && s->table_fold[t - s->ts->t];
	r->max_rows = 1;
	while (r->max_rows * 2 <= FOLD_MAX_ROWS && r->max_rows * 2 * r->ncols <= MULTI_MAX_PARAMS)
		r->max_rows *= 2;
	free(r->pend); /* sized for max_rows when first used */
	free(r->slots);
	r->pend = NULL;
	r->slots = NULL;
	r->npend = r->nslots = 0;

	char *cols = pgsink_join_cols(r, r->ncols, NULL, J_NAME, ", ");
	char *params = pgsink_join_cols(r, r->ncols, NULL, J_PARAM, ", ");
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
		char *keys = pgsink_join_cols(r, nkey, r->key_ev, J_NAME, ", ");
		char *sets = pgsink_join_cols(r, nn, nonkey, J_EXCLUDED, ", ");
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
	bool ok = pgsink_sent(s, PQsendPrepare(s->c.conn, name, sql, 0, NULL), err);
	free(sql);
	if (ok && nkey > 0) {
		char *where = pgsink_join_cols(r, nkey, r->key_ev, J_ASSIGN, " AND ");
		sql = xasprintf("DELETE FROM %s WHERE %s", t->tgt_qname, where);
		snprintf(name, sizeof(name), "migd_del_%d", r->stmt_no);
		ok = pgsink_sent(s, PQsendPrepare(s->c.conn, name, sql, 0, NULL), err);
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
	return pgsink_sent(s, PQsendQueryPrepared(s->c.conn, name, n, vals, NULL, NULL, 0), err);
}

/* UPDATE of the columns present (unchanged-TOAST columns keep their value). */
bool pgsink_send_partial_update(struct pgsink *s, struct rel *r, const struct change_tuple *nt,
				const struct change_tuple *keytup, struct err *err)
{
	int *present = xcalloc((size_t)r->ncols, sizeof(int));
	int np = 0;
	for (int i = 0; i < r->ncols; i++)
		if (nt->vals[i].kind != CHV_UNCHANGED)
			present[np++] = i;
	char *sets = pgsink_join_cols(r, np, present, J_ASSIGN, ", ");
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
	bool ok = pgsink_sent(s, PQsendQueryParams(s->c.conn, sql, n, NULL, vals, NULL, NULL, 0), err);
	free(vv);
	free(sql);
	free(sets);
	free(where);
	free(present);
	return ok;
}

bool pgsink_key_equal(const struct rel *r, const struct change_tuple *a,
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

bool pgsink_has_unchanged(const struct change_tuple *t)
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
		bool key_changed = ev->row.old_kind != 0 && !pgsink_key_equal(r, ot, nt);
		if (pgsink_has_unchanged(nt))
			return pgsink_send_partial_update(s, r, nt, key_changed ? ot : nt, err);
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
				    : v->kind == CHV_BAD ? json_pack("{s:s%}", "unmappable", v->data,
								     (size_t)v->len)
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
	bool ok = pgsink_send_sql(s, table_sql, 6, vals, err);
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

/*
 * Which tables may fold (see "folding changes per key"): a plain table on
 * the target whose only unique index is the key, with no exclusion
 * constraint, no rule and no trigger that fires for a replica session.
 * When the catalog cannot be read nothing folds, which is slower but exact.
 */
static void read_table_fold(struct pgsink *s)
{
	free(s->table_fold);
	s->table_fold = xcalloc((size_t)s->ts->n + 1, sizeof(bool));
	json_t *names = json_array();
	for (int i = 0; i < s->ts->n; i++)
		json_array_append_new(names, json_string(s->ts->t[i].tgt_qname));
	char *js = json_dumps(names, JSON_COMPACT);
	json_decref(names);
	const char *vals[] = {js};
	struct err err;
	PGresult *res =
	    pgconn_query(&s->c,
			 "SELECT c.oid IS NOT NULL AND c.relkind = 'r'"
			 " AND (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid"
			 "      AND (i.indisunique OR i.indisexclusion)) <= 1"
			 " AND NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid"
			 "      AND NOT t.tgisinternal AND t.tgenabled IN ('A', 'R'))"
			 " AND NOT EXISTS (SELECT FROM pg_rewrite w WHERE w.ev_class = c.oid)"
			 " FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS q(name, n)"
			 " LEFT JOIN pg_class c ON c.oid = to_regclass(q.name) ORDER BY q.n",
			 1, vals, &err);
	free(js);
	if (res == NULL) {
		log_warn("apply: reading which tables may fold: %s (every change is sent as it is)",
			 err.msg);
		return;
	}
	for (int i = 0; i < s->ts->n && i < PQntuples(res); i++)
		s->table_fold[i] = strcmp(PQgetvalue(res, i, 0), "t") == 0;
	PQclear(res);
}

/* Every statement is to be prepared again (the target has none of them). */
static void forget_statements(struct pgsink *s)
{
	for (int i = 0; i < s->nrels; i++) {
		struct rel *r = &s->rels[i];
		r->prepared = false;
		r->multi_ready[MULTI_UPSERT] = r->multi_ready[MULTI_DELETE] = 0;
		r->multi_params = 0;
	}
	s->multi_params = 0;
}

static bool op_open(struct sink *b, struct pos *applied, int64_t *commit_us, struct err *err)
{
	struct pgsink *s = S(b);
	pgconn_close(&s->c);
	forget_statements(s);
	s->pending = s->inflight = s->commit_groups = 0;
	s->commit_wait = false;
	pgsink_fold_discard(s);
	if (!pgconn_open(&s->c, "target", s->conninfo, err))
		return false;
	s->replica = pgconn_exec(&s->c, "SET session_replication_role = replica", err);
	if (!s->replica)
		log_warn("apply: %s (triggers and FKs stay active on the target; changes are not "
			 "folded)",
			 err->msg);
	/* Multi-row statements are planned once, not per execution. */
	if (!pgconn_exec(&s->c, "SET plan_cache_mode = force_generic_plan", err))
		log_warn("apply: %s", err->msg);
	read_table_fold(s);
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
	return pgsink_send_sql(s, "BEGIN", 0, NULL, err);
}

static bool op_relation(struct sink *b, const struct change_relation *rel, struct err *err)
{
	struct pgsink *s = S(b);
	/* Pending changes were decoded with the old definition: send them with it. */
	if (!pgsink_flush_all(s, err))
		return false;
	struct rel *r = find_rel(s, rel->relid);
	if (r == NULL) {
		s->rels = xrealloc(s->rels, (size_t)(s->nrels + 1) * sizeof(*s->rels));
		r = &s->rels[s->nrels++];
		memset(r, 0, sizeof(*r));
		r->relid = rel->relid;
	}
	/*
	 * The spool sends every relation again at each segment start: when the
	 * columns are the same, so are the statements (no new ones to prepare).
	 */
	struct mig_table *t = tableset_find(s->ts, rel->schema, rel->name);
	bool same = t != NULL && t == r->t && rel->ncols == r->ncols;
	for (int i = 0; i < rel->ncols && same; i++)
		same = strcmp(r->colnames[i], table_tgt_col(t, rel->cols[i].name)) == 0;
	rel_clear(r);
	if (!same)
		r->prepared = false;
	r->t = t;
	r->ncols = rel->ncols;
	/* The statements' names: the target's ([tables] columns). */
	r->colnames = xcalloc((size_t)rel->ncols + 1, sizeof(char *));
	for (int i = 0; i < rel->ncols; i++)
		r->colnames[i] =
		    xstrdup(t ? table_tgt_col(t, rel->cols[i].name) : rel->cols[i].name);
	if (r->t == NULL)
		return true; /* not ours: its changes are ignored */
	r->key_ev = xcalloc((size_t)r->t->nkey + 1, sizeof(int));

	/* The schema contract: same columns, same types, as at capture. */
	char why[200] = "";
	if (rel->problem != NULL) /* the source reader could not deliver it faithfully */
		snprintf(why, sizeof(why), "%s", rel->problem);
	else if (rel->ncols != r->t->ncols)
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

/* The first value of ev the source reader could not render (CHV_BAD), or NULL. */
static const struct change_value *bad_value(const struct change_event *ev)
{
	const struct change_tuple *ts[2] = {&ev->row.old_tuple, &ev->row.new_tuple};
	for (int k = 0; k < 2; k++)
		for (uint16_t i = 0; i < ts[k]->ncols; i++)
			if (ts[k]->vals[i].kind == CHV_BAD)
				return &ts[k]->vals[i];
	return NULL;
}

static bool op_change(struct sink *b, const struct change_event *ev, const struct pos *src_pos,
		      struct err *err)
{
	struct pgsink *s = S(b);
	if (ev->kind == CHG_TRUNCATE) {
		if (!pgsink_flush_all(s, err)) /* the changes before it first */
			return false;
		for (int i = 0; i < ev->truncate.nrelids; i++) {
			struct rel *r = find_rel(s, ev->truncate.relids[i]);
			if (r == NULL || r->t == NULL)
				continue;
			char *sql = xasprintf("TRUNCATE %s%s", r->t->tgt_qname,
					      (ev->truncate.flags & 1) ? " CASCADE" : "");
			bool ok = pgsink_send_sql(s, sql, 0, NULL, err);
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
	const struct change_value *bad = bad_value(ev);
	if (bad != NULL) {
		/* Never applied: in a normal batch that fails it, isolated it is a failed record. */
		char why[300];
		snprintf(why, sizeof(why), "unmappable value from the source: %.*s", (int)bad->len,
			 bad->data);
		if (!s->isolate) {
			err_set(err, "%s.%s: %s", r->t->schema, rel_name(r), why);
			return false;
		}
		log_event(LOG_LVL_ERROR, "failed_record", "table=%s.%s pos=%s error=\"%s\"",
			  r->t->schema, rel_name(r),
			  pos_format(src_pos, (char[POS_TEXT_MAX]){0}, POS_TEXT_MAX), why);
		s->batch.failed++;
		return record_row(s, failed_sql, r, ev, src_pos, why, err) && pipe_sync(s, err);
	}
	if (!r->prepared && !prepare_rel(s, r, err))
		return false;
	if (!s->isolate) {
		s->batch.changes++;
		int f = r->fold ? pgsink_fold_change(s, r, ev, err) : 0;
		if (f != 0)
			return f > 0 && (s->arena.bytes < FOLD_MAX_BYTES || pgsink_flush_all(s, err));
		/* The key's earlier changes go first. */
		return pgsink_flush_rel(s, r, err) && send_change(s, r, ev, err);
	}
	/* Isolated: a refusal becomes a failed record, the batch goes on. */
	struct err cerr = {{0}};
	bool ok = pgsink_send_sql(s, "SAVEPOINT migd_change", 0, NULL, err) &&
		  send_change(s, r, ev, &cerr) && pipe_sync(s, &cerr);
	if (b->broken)
		return false;
	if (ok) {
		s->batch.changes++;
		return pgsink_send_sql(s, "RELEASE SAVEPOINT migd_change", 0, NULL, err);
	}
	if (!pipe_sync(s, err)) /* clears a half-sent pipeline */
		if (b->broken)
			return false;
	log_event(LOG_LVL_ERROR, "failed_record", "table=%s.%s pos=%s error=\"%s\"", r->t->schema,
		  rel_name(r), pos_format(src_pos, (char[POS_TEXT_MAX]){0}, POS_TEXT_MAX), cerr.msg);
	s->batch.failed++;
	return pgsink_send_sql(s, "ROLLBACK TO SAVEPOINT migd_change", 0, NULL, err) &&
	       record_row(s, failed_sql, r, ev, src_pos, cerr.msg, err) && pipe_sync(s, err);
}

static bool op_commit(struct sink *b, const struct pos *end, int64_t commit_time_us, int64_t ntxns,
		      bool wait, struct err *err)
{
	struct pgsink *s = S(b);
	if (s->commit_wait) {
		err_set(err, "BUG: a commit sent before the one before it was confirmed");
		return false;
	}
	char p[POS_TEXT_MAX], t[24], n[24], c[24];
	snprintf(t, sizeof(t), "%lld", (long long)commit_time_us);
	snprintf(n, sizeof(n), "%lld", (long long)ntxns);
	snprintf(c, sizeof(c), "%lld", (long long)s->batch.changes);
	const char *vals[] = {s->name, pos_format(end, p, sizeof(p)), t, n, c};
	if (!pgsink_flush_all(s, err) || !pgsink_send_sql(s, pgstore_progress_sql, 5, vals, err) ||
	    !pgsink_send_sql(s, "COMMIT", 0, NULL, err) || !send_sync(s, err))
		return false;
	if (!wait) {
		/* Every group in flight belongs to this batch (the one before was confirmed). */
		s->commit_wait = true;
		s->commit_groups = s->inflight;
		s->commit_failed = false;
		s->committing = s->batch;
		return true;
	}
	if (!drain(s, err))
		return false; /* op_rollback() ends the aborted transaction */
	b->counts.changes += s->batch.changes;
	b->counts.failed += s->batch.failed;
	b->counts.parked += s->batch.parked;
	return true;
}

static bool op_confirm(struct sink *b, int64_t *answered_usec, struct err *err)
{
	struct pgsink *s = S(b);
	if (!s->commit_wait) {
		err_set(err, "BUG: no commit to confirm");
		return false;
	}
	while (s->commit_groups > 0 && !b->broken) {
		struct err e;
		(void)read_group(s, &e); /* its errors land in commit_err */
	}
	s->commit_wait = false;
	if (s->commit_groups > 0) {
		s->commit_groups = 0;
		err_set(err, "target: connection lost before the commit was answered");
		return false;
	}
	if (s->commit_failed) {
		*err = s->commit_err; /* op_rollback() ends the aborted transaction */
		return false;
	}
	*answered_usec = s->commit_answered_usec;
	b->counts.changes += s->committing.changes;
	b->counts.failed += s->committing.failed;
	b->counts.parked += s->committing.parked;
	return true;
}

static void op_rollback(struct sink *b)
{
	struct pgsink *s = S(b);
	struct err e;
	pgsink_fold_discard(s);
	if (s->c.conn == NULL || b->broken)
		return;
	if (!pipe_sync(s, &e) && b->broken)
		return;
	/*
	 * A statement prepared after an error in the same transaction never was
	 * (the target skips or refuses everything up to the end of the
	 * transaction), so the statements start over; this also keeps the old
	 * ones from piling up on the target across failures.  A batch whose
	 * COMMIT was skipped that way is still open: ROLLBACK ends it too.
	 */
	forget_statements(s);
	if (!pgsink_send_sql(s, "ROLLBACK", 0, NULL, &e) || !pgsink_send_sql(s, "DEALLOCATE ALL", 0, NULL, &e) ||
	    !pipe_sync(s, &e))
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
	return pgsink_send_sql(s,
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
	pgsink_arena_free(&s->arena);
	free(s->pv);
	free(s->table_fold);
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
    .confirm = op_confirm,
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
