/* pgmeta: source catalog -> table set, and the target schema contract. */
#include "pgmeta.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"


static const char *const sql_tables =
	"SELECT c.oid, n.nspname, c.relname, c.relreplident, c.reltuples, c.relkind, "
	"       c.relispartition "
	"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	"WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'migd' "
	"  AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
	"  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' "
	"ORDER BY n.nspname, c.relname";

static const char *const sql_columns =
	"SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid, a.attnotnull "
	"FROM pg_attribute a "
	"WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
	"ORDER BY a.attnum";

/* Key columns of the primary key, else of the replica identity index. */
static const char *const sql_key =
	"SELECT CASE WHEN i.indisprimary THEN 'p' ELSE 'i' END, a.attname "
	"FROM (SELECT * FROM pg_index WHERE indrelid = $1 AND (indisprimary OR indisreplident) "
	"      ORDER BY indisprimary DESC LIMIT 1) i "
	"CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) "
	"JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
	"ORDER BY k.ord";

static bool load_columns(struct pgconn *src, struct mig_table *t, struct err *err)
{
	char oid[16];
	const char *params[] = {oid};
	snprintf(oid, sizeof(oid), "%u", t->src_relid);
	PGresult *r = pgconn_query(src, sql_columns, 1, params, err);
	if (r == NULL)
		return false;
	t->ncols = PQntuples(r);
	t->cols = xcalloc((size_t)t->ncols, sizeof(*t->cols));
	for (int i = 0; i < t->ncols; i++) {
		t->cols[i].name = xstrdup(PQgetvalue(r, i, 0));
		t->cols[i].type = xstrdup(PQgetvalue(r, i, 1));
		t->cols[i].type_oid = (uint32_t)strtoul(PQgetvalue(r, i, 2), NULL, 10);
		t->cols[i].not_null = PQgetvalue(r, i, 3)[0] == 't';
	}
	PQclear(r);

	r = pgconn_query(src, sql_key, 1, params, err);
	if (r == NULL)
		return false;
	t->nkey = PQntuples(r);
	t->key_idx = xcalloc((size_t)(t->nkey ? t->nkey : 1), sizeof(int));
	for (int k = 0; k < t->nkey; k++) {
		t->key_kind = PQgetvalue(r, k, 0)[0];
		const char *kname = PQgetvalue(r, k, 1);
		for (int c = 0; c < t->ncols; c++) {
			if (strcmp(t->cols[c].name, kname) == 0) {
				t->key_idx[k] = c;
				t->cols[c].key_pos = k + 1;
			}
		}
	}
	PQclear(r);
	return true;
}

/* A table's names, catalog facts (oid, replica identity, row estimate as text), columns, key. */
static bool fill_table(struct pgconn *c, struct mig_table *t, const char *schema, const char *name,
		       const char *oid, const char *replident, const char *reltuples,
		       struct err *err)
{
	t->schema = xstrdup(schema);
	t->name = xstrdup(name);
	t->qname = pgconn_qualified(schema, name);
	t->tgt_qname = pgconn_qualified(schema, name);
	t->src_relid = (uint32_t)strtoul(oid, NULL, 10);
	t->replident = replident[0];
	t->est_rows = strtod(reltuples, NULL);
	return load_columns(c, t, err);
}

bool pgmeta_load_table(struct pgconn *c, const char *schema, const char *name,
		       struct mig_tableset *out, struct err *err)
{
	char *q = pgconn_qualified(schema, name);
	const char *params[] = {q};
	memset(out, 0, sizeof(*out));
	PGresult *r = pgconn_query(c,
				   "SELECT oid, relreplident, reltuples FROM pg_class "
				   "WHERE oid = to_regclass($1)",
				   1, params, err);
	free(q);
	if (r == NULL)
		return false;
	if (PQntuples(r) != 1) {
		err_set(err, "%s: table %s.%s does not exist", c->label, schema, name);
		PQclear(r);
		return false;
	}
	out->t = xcalloc(2, sizeof(*out->t));
	out->n = 1;
	bool ok = fill_table(c, &out->t[0], schema, name, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
			     PQgetvalue(r, 0, 2), err);
	PQclear(r);
	if (ok && out->t[0].nkey == 0) {
		err_set(err, "%s: table %s.%s has no primary key", c->label, schema, name);
		ok = false;
	}
	if (!ok)
		tableset_free(out);
	return ok;
}

bool pgmeta_load_source(struct pgconn *src, const char *include, const char *exclude,
			const char *insert_only, struct mig_tableset *out, struct err *err)
{
	struct problems p = {0};
	PGresult *r = pgconn_query(src, sql_tables, 0, NULL, err);
	if (r == NULL)
		return false;
	memset(out, 0, sizeof(*out));
	out->t = xcalloc((size_t)PQntuples(r) + 1, sizeof(*out->t));
	for (int i = 0; i < PQntuples(r); i++) {
		const char *schema = PQgetvalue(r, i, 1), *name = PQgetvalue(r, i, 2);
		if (!table_list_match(include, schema, name) ||
		    table_list_match(exclude, schema, name))
			continue;
		if (PQgetvalue(r, i, 5)[0] == 'p' || PQgetvalue(r, i, 6)[0] == 't') {
			problem(&p, "%s.%s: partitioned tables are not supported yet (exclude it)",
				schema, name);
			continue;
		}
		struct mig_table *t = &out->t[out->n++];
		if (!fill_table(src, t, schema, name, PQgetvalue(r, i, 0), PQgetvalue(r, i, 3),
				PQgetvalue(r, i, 4), err)) {
			PQclear(r);
			tableset_free(out);
			return false;
		}
		t->insert_only = table_list_match(insert_only, schema, name);
		if (t->nkey == 0 && !t->insert_only)
			problem(&p,
				"%s.%s has no primary key or replica identity index: add one, or "
				"list it in [tables] insert_only",
				schema, name);
		if (t->replident == 'n' && !t->insert_only)
			problem(&p, "%s.%s has REPLICA IDENTITY NOTHING: its updates and deletes "
				    "cannot be replicated",
				schema, name);
	}
	PQclear(r);
	if (out->n == 0 && p.n == 0)
		problem(&p, "no table on the source matches [tables] include = %s",
			include);
	if (p.n > 0) {
		err_set(err, "source: %d table problem%s:\n%s", p.n, p.n > 1 ? "s" : "", p.text);
		tableset_free(out);
		return false;
	}
	return true;
}

static const char *const sql_tgt_columns =
	"SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
	"       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' "
	"FROM pg_attribute a "
	"WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped "
	"ORDER BY a.attnum";

/* Sorted column-name sets of every unique index, as text "a,b". */
static const char *const sql_tgt_unique =
	"SELECT string_agg(a.attname, ',' ORDER BY a.attname) "
	"FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) k(attnum) "
	"JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
	"WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL "
	"GROUP BY i.indexrelid";

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "a,b" of the key's column names, sorted, matching sql_tgt_unique. */
static char *sorted_key_names(const struct mig_table *t)
{
	const char **names = xcalloc((size_t)t->nkey, sizeof(char *));
	size_t len = 1;
	for (int k = 0; k < t->nkey; k++) {
		names[k] = t->cols[t->key_idx[k]].name;
		len += strlen(names[k]) + 1;
	}
	qsort(names, (size_t)t->nkey, sizeof(char *), cmp_str);
	char *out = xmalloc(len);
	out[0] = '\0';
	for (int k = 0; k < t->nkey; k++) {
		if (k)
			strcat(out, ",");
		strcat(out, names[k]);
	}
	free(names);
	return out;
}

/* The key's unique index was deferred by this migration's backfill (it builds it again). */
static const char *const sql_tgt_deferred_key =
	"SELECT count(*) FROM migd.deferred_indexes "
	"WHERE name = $1 AND target_table = $2 AND unique_cols = $3";

static void check_table(struct pgconn *tgt, const char *name, struct mig_table *t,
			struct problems *p, struct err *err)
{
	const char *params[] = {t->tgt_qname};
	PGresult *r = pgconn_query(tgt, "SELECT to_regclass($1) IS NOT NULL", 1, params, err);
	if (r == NULL) {
		problem(p, "%s.%s: %s", t->schema, t->name, err->msg);
		return;
	}
	bool exists = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!exists) {
		problem(p, "%s.%s does not exist on the target (create it first)", t->schema,
			t->name);
		return;
	}
	r = pgconn_query(tgt, sql_tgt_columns, 1, params, err);
	if (r == NULL) {
		problem(p, "%s.%s: %s", t->schema, t->name, err->msg);
		return;
	}
	for (int c = 0; c < t->ncols; c++) {
		int found = -1;
		for (int i = 0; i < PQntuples(r) && found < 0; i++)
			if (strcmp(PQgetvalue(r, i, 0), t->cols[c].name) == 0)
				found = i;
		if (found < 0)
			problem(p, "%s.%s: column %s is missing on the target", t->schema, t->name,
				t->cols[c].name);
		else if (strcmp(PQgetvalue(r, found, 1), t->cols[c].type) != 0)
			problem(p, "%s.%s: column %s is %s on the source but %s on the target",
				t->schema, t->name, t->cols[c].name, t->cols[c].type,
				PQgetvalue(r, found, 1));
	}
	for (int i = 0; i < PQntuples(r); i++) {
		bool in_source = false;
		for (int c = 0; c < t->ncols && !in_source; c++)
			in_source = strcmp(PQgetvalue(r, i, 0), t->cols[c].name) == 0;
		if (!in_source && PQgetvalue(r, i, 2)[0] == 't' && PQgetvalue(r, i, 3)[0] != 't')
			problem(p, "%s.%s: target column %s is NOT NULL without a default and has no "
				   "source column",
				t->schema, t->name, PQgetvalue(r, i, 0));
	}
	PQclear(r);
	if (t->nkey == 0)
		return;
	r = pgconn_query(tgt, sql_tgt_unique, 1, params, err);
	if (r == NULL) {
		problem(p, "%s.%s: %s", t->schema, t->name, err->msg);
		return;
	}
	char *want = sorted_key_names(t);
	bool has = false;
	for (int i = 0; i < PQntuples(r) && !has; i++)
		has = strcmp(PQgetvalue(r, i, 0), want) == 0;
	if (!has) {
		const char *dp[] = {name, t->tgt_qname, want};
		PGresult *d = pgconn_query(tgt, sql_tgt_deferred_key, 3, dp, err);
		has = d != NULL && atoi(PQgetvalue(d, 0, 0)) > 0;
		if (d != NULL)
			PQclear(d);
	}
	if (!has)
		problem(p, "%s.%s: the target has no unique index on the key (%s)", t->schema,
			t->name, want);
	free(want);
	PQclear(r);
}

PGresult *pgmeta_owned_sequences(struct pgconn *pg, const char *qname, struct err *err)
{
	const char *p[] = {qname};
	return pgconn_query(pg,
			    "SELECT d.objid::regclass::text, a.attname FROM pg_depend d "
			    "JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'S' "
			    "JOIN pg_attribute a ON a.attrelid = d.refobjid "
			    "  AND a.attnum = d.refobjsubid "
			    "WHERE d.refobjid = $1::regclass AND d.deptype IN ('a', 'i')",
			    1, p, err);
}

bool pgmeta_check_target(struct pgconn *tgt, const char *name, struct mig_tableset *ts,
			 struct err *err)
{
	struct problems p = {0};
	/* Column names as the target has them ([tables] columns). */
	struct mig_tableset tv = tableset_target_view(ts);
	for (int i = 0; i < ts->n; i++)
		check_table(tgt, name, &tv.t[i], &p, err);
	tableset_view_free(&tv);
	if (p.n > 0) {
		err_set(err, "target: schema contract broken (%d problem%s):\n%s", p.n,
			p.n > 1 ? "s" : "", p.text);
		return false;
	}
	return true;
}

/* --- index deferral (backfill) ------------------------------------------------ */

/*
 * The indexes of target table $1 that a drop and a rebuild give back
 * exactly, with what it takes to do both.  Every exclusion here is
 * something pg_get_indexdef() / pg_get_constraintdef() would not carry
 * or a drop would break: normal dependencies (a foreign key referencing
 * the index, a view grouping by the primary key), comments, CLUSTER and
 * REPLICA IDENTITY marks, tablespaces, statistics targets, partition
 * attachment, exclusion constraints (kept: their checks cost the copy
 * little next to what getting them wrong costs), invalid indexes, and
 * partitioned tables and partitions (a rebuild names partition indexes anew).
 * unique_cols matches pgmeta_check_target's view of a usable key index.
 */
static const char *const sql_deferrable =
	"SELECT ic.relname, coalesce(con.contype::text, 'i'), pg_get_indexdef(i.indexrelid), "
	"  CASE WHEN con.oid IS NOT NULL THEN "
	"    format('ALTER TABLE %s ADD CONSTRAINT %I %s USING INDEX %I%s%s', $1::text, "
	"           con.conname, "
	"           CASE con.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, "
	"           ic.relname, "
	"           CASE WHEN con.condeferrable THEN ' DEFERRABLE' ELSE '' END, "
	"           CASE WHEN con.condeferred THEN ' INITIALLY DEFERRED' ELSE '' END) END, "
	"  CASE WHEN con.oid IS NOT NULL THEN pg_get_constraintdef(con.oid) END, "
	"  CASE WHEN i.indisunique AND i.indpred IS NULL THEN "
	"    (SELECT string_agg(a.attname, ',' ORDER BY a.attname) "
	"     FROM unnest(i.indkey) k(attnum) "
	"     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) END, "
	"  CASE WHEN con.oid IS NOT NULL "
	"    THEN format('ALTER TABLE %s DROP CONSTRAINT %I', $1::text, con.conname) "
	"    ELSE format('DROP INDEX %I.%I', n.nspname, ic.relname) END "
	"FROM pg_index i "
	"JOIN pg_class ic ON ic.oid = i.indexrelid "
	"JOIN pg_namespace n ON n.oid = ic.relnamespace "
	"LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid "
	"  AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x') "
	"JOIN pg_class t ON t.oid = i.indrelid AND t.relkind = 'r' AND NOT t.relispartition "
	"WHERE i.indrelid = $1::regclass "
	"  AND i.indisvalid AND i.indisready AND i.indislive "
	"  AND NOT i.indisclustered AND NOT i.indisreplident AND NOT i.indisexclusion "
	"  AND coalesce(con.contype, 'i') IN ('p', 'u', 'i') "
	"  AND ic.reltablespace = 0 "
	"  AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) "
	"  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indexrelid "
	"                  AND a.attstattarget >= 0) "
	"  AND NOT EXISTS (SELECT 1 FROM pg_description d "
	"      WHERE (d.classoid = 'pg_class'::regclass AND d.objoid = i.indexrelid) "
	"         OR (d.classoid = 'pg_constraint'::regclass AND d.objoid = con.oid)) "
	"  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.deptype = 'n' "
	"      AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indexrelid) "
	"        OR (d.refclassid = 'pg_constraint'::regclass AND d.refobjid = con.oid))) "
	"ORDER BY ic.relname";

static const char *const sql_defer_record =
	"INSERT INTO migd.deferred_indexes (name, table_name, target_table, index_name, kind, "
	"  index_def, constraint_sql, constraint_def, unique_cols) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

bool pgmeta_defer_indexes(struct pgconn *tgt, const char *name, const struct mig_table *t, int *n,
			  struct err *err)
{
	*n = 0;
	const char *params[] = {t->tgt_qname};
	PGresult *r = pgconn_query(tgt, sql_deferrable, 1, params, err);
	if (r == NULL)
		return false;
	char *tname = xasprintf("%s.%s", t->schema, t->name);
	bool ok = true;
	for (int i = 0; i < PQntuples(r) && ok; i++) {
		const char *v[9] = {name, tname, t->tgt_qname};
		for (int f = 0; f < 6; f++)
			v[3 + f] = PQgetisnull(r, i, f) ? NULL : PQgetvalue(r, i, f);
		/* Never CASCADE: anything depending on it makes the drop fail instead. */
		ok = pgconn_exec_params(tgt, sql_defer_record, 9, v, err) &&
		     pgconn_exec(tgt, PQgetvalue(r, i, 6), err);
		if (ok)
			(*n)++;
	}
	free(tname);
	PQclear(r);
	return ok;
}

void pgmeta_indexes_free(struct pgmeta_index *v, int n)
{
	if (v == NULL)
		return;
	for (int i = 0; i < n; i++) {
		free(v[i].table_name);
		free(v[i].target_table);
		free(v[i].index_name);
		free(v[i].index_def);
		free(v[i].constraint_sql);
	}
	free(v);
}

bool pgmeta_deferred_load(struct pgconn *tgt, const char *name, struct pgmeta_index **out, int *n,
			  struct err *err)
{
	const char *params[] = {name};
	PGresult *r = pgconn_query(tgt,
				   "SELECT table_name, target_table, index_name, kind, index_def, "
				   "  constraint_sql FROM migd.deferred_indexes WHERE name = $1 "
				   "ORDER BY table_name, kind, index_name",
				   1, params, err);
	if (r == NULL)
		return false;
	*n = PQntuples(r);
	*out = xcalloc((size_t)*n + 1, sizeof(**out));
	for (int i = 0; i < *n; i++) {
		struct pgmeta_index *ix = &(*out)[i];
		ix->table_name = xstrdup(PQgetvalue(r, i, 0));
		ix->target_table = xstrdup(PQgetvalue(r, i, 1));
		ix->index_name = xstrdup(PQgetvalue(r, i, 2));
		ix->kind = PQgetvalue(r, i, 3)[0];
		ix->index_def = xstrdup(PQgetvalue(r, i, 4));
		ix->constraint_sql = PQgetisnull(r, i, 5) ? NULL : xstrdup(PQgetvalue(r, i, 5));
	}
	PQclear(r);
	return true;
}

/* What stands on the target under ix's name: the index's definition and its constraint. */
static const char *const sql_index_now =
	"SELECT pg_get_indexdef(i.indexrelid), "
	"  EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid "
	"          AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u')) "
	"FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
	"WHERE i.indrelid = $1::regclass AND ic.relname = $2";

static const char *const sql_forget =
	"DELETE FROM migd.deferred_indexes WHERE name = $1 AND table_name = $2 AND index_name = $3";

bool pgmeta_restore_index(struct pgconn *tgt, const char *name, const struct pgmeta_index *ix,
			  struct err *err)
{
	const char *params[] = {ix->target_table, ix->index_name};
	const char *fp[] = {name, ix->table_name, ix->index_name};
	PGresult *r = pgconn_query(tgt, sql_index_now, 2, params, err);
	if (r == NULL)
		return false;
	bool has_index = PQntuples(r) > 0;
	bool has_constraint = has_index && PQgetvalue(r, 0, 1)[0] == 't';
	if (has_index && strcmp(PQgetvalue(r, 0, 0), ix->index_def) != 0) {
		err_set(err,
			"target: index %s on %s was dropped for the backfill as \"%s\" but an "
			"index of that name now reads \"%s\"; drop or rename it and migd builds "
			"the recorded one",
			ix->index_name, ix->target_table, ix->index_def, PQgetvalue(r, 0, 0));
		PQclear(r);
		return false;
	}
	PQclear(r);
	if (!has_index && !pgconn_exec(tgt, ix->index_def, err))
		return false;
	if (ix->kind == 'i' || has_constraint)
		return pgconn_exec_params(tgt, sql_forget, 3, fp, err);
	/* The constraint and the end of its record commit together. */
	if (!pgconn_exec(tgt, "BEGIN", err))
		return false;
	if (pgconn_exec(tgt, ix->constraint_sql, err) &&
	    pgconn_exec_params(tgt, sql_forget, 3, fp, err))
		return pgconn_exec(tgt, "COMMIT", err);
	if (!pgconn_exec(tgt, "ROLLBACK", &(struct err){{0}})) {
	}
	return false;
}
