/* vstore: validation's ledger reads and stored results in the target (see vstore.h). */
#include "vstore.h"

#include <stdlib.h>
#include <string.h>

static void ranges_add(struct vranges *r, const char *lo, const char *hi)
{
	r->lo = xrealloc(r->lo, (size_t)(r->n + 1) * sizeof(char *));
	r->hi = xrealloc(r->hi, (size_t)(r->n + 1) * sizeof(char *));
	r->lo[r->n] = lo ? xstrdup(lo) : NULL;
	r->hi[r->n] = hi ? xstrdup(hi) : NULL;
	r->n++;
}

void vranges_free(struct vranges *r)
{
	for (int i = 0; i < r->n; i++) {
		free(r->lo[i]);
		free(r->hi[i]);
	}
	free(r->lo);
	free(r->hi);
	*r = (struct vranges){0};
}

static bool pg_ranges(struct vside *tgt, const char *name, const char *tname, struct vranges *out,
		      struct err *err)
{
	const char *params[] = {name, tname};
	PGresult *r = pgconn_query(&tgt->pg,
				   "SELECT lo::text, hi::text FROM migd.chunks "
				   "WHERE name = $1 AND table_name = $2 ORDER BY chunk_no",
				   2, params, err);
	if (r == NULL)
		return false;
	for (int i = 0; i < PQntuples(r); i++)
		ranges_add(out, PQgetisnull(r, i, 0) ? NULL : PQgetvalue(r, i, 0),
			   PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1));
	PQclear(r);
	return true;
}

static bool my_ranges(struct vside *tgt, const char *name, const char *tname, struct vranges *out,
		      struct err *err)
{
	char *n = myconn_literal(&tgt->my, name, strlen(name));
	char *t = myconn_literal(&tgt->my, tname, strlen(tname));
	char *sql = xasprintf("SELECT lo, hi FROM migd.chunks WHERE name = %s AND table_name = %s "
			      "ORDER BY chunk_no",
			      n, t);
	free(n);
	free(t);
	MYSQL_RES *r = myconn_query(&tgt->my, sql, err);
	free(sql);
	if (r == NULL)
		return false;
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL)
		ranges_add(out, row[0], row[1]);
	mysql_free_result(r);
	return true;
}

bool vstore_ranges(struct vside *tgt, const char *name, const struct mig_table *t,
		   struct vranges *out, struct err *err)
{
	*out = (struct vranges){0};
	char *tname = xasprintf("%s.%s", t->schema, t->name);
	bool ok = tgt->engine == ENGINE_POSTGRESQL ? pg_ranges(tgt, name, tname, out, err)
						   : my_ranges(tgt, name, tname, out, err);
	free(tname);
	if (!ok)
		vranges_free(out);
	return ok;
}

static bool pg_save(struct vside *tgt, const struct vstore_run *v, int64_t *id, struct err *err)
{
	const char *params[] = {v->name,	 v->kinds,	  v->status, v->mismatches,
				v->position_min, v->position_max, v->results};
	PGresult *r = pgconn_query(
	    &tgt->pg,
	    "INSERT INTO migd.validation (name, kinds, status, mismatches, position_min, "
	    "position_max, results) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING id",
	    7, params, err);
	if (r == NULL)
		return false;
	*id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return true;
}

/*
 * MariaDB: migd.validation as mystore created it (results JSON).  The
 * session is autocommit, so LAST_INSERT_ID() on the same connection is
 * this row's.  A frozen target is read_only: migd's user writes there as
 * the sink does (it must bypass read_only to apply up to the freeze).
 */
static bool my_save(struct vside *tgt, const struct vstore_run *v, int64_t *id, struct err *err)
{
	const char *in[] = {v->name,	     v->kinds,	      v->status, v->mismatches,
			    v->position_min, v->position_max, v->results};
	char *lit[7];
	for (int i = 0; i < 7; i++)
		lit[i] = myconn_literal(&tgt->my, in[i], strlen(in[i]));
	char *sql = xasprintf("INSERT INTO migd.validation (name, kinds, status, mismatches, "
			      "position_min, position_max, results) VALUES (%s, %s, %s, %s, %s, "
			      "%s, %s)",
			      lit[0], lit[1], lit[2], lit[3], lit[4], lit[5], lit[6]);
	for (int i = 0; i < 7; i++)
		free(lit[i]);
	bool ok = myconn_exec(&tgt->my, sql, err);
	free(sql);
	char *v_id = ok ? myconn_query_value(&tgt->my, "SELECT LAST_INSERT_ID()", err) : NULL;
	if (v_id != NULL)
		*id = atoll(v_id);
	free(v_id);
	return v_id != NULL;
}

bool vstore_save(struct vside *tgt, const struct vstore_run *r, int64_t *id, struct err *err)
{
	*id = 0;
	return tgt->engine == ENGINE_POSTGRESQL ? pg_save(tgt, r, id, err)
						: my_save(tgt, r, id, err);
}
