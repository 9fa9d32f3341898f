/* pgmeta: source catalog -> table set, and the target schema contract. */
#include "pgmeta.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Collects problems, one per line, into a bounded message. */
struct problems {
	char text[sizeof(((struct err *)0)->msg) - 64];
	size_t len;
	int n;
};

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct problems *p, const char *fmt, ...)
{
	va_list ap;
	p->n++;
	if (p->len + 2 >= sizeof(p->text))
		return;
	if (p->len > 0)
		p->text[p->len++] = '\n';
	va_start(ap, fmt);
	int w = vsnprintf(p->text + p->len, sizeof(p->text) - p->len, fmt, ap);
	va_end(ap);
	if (w > 0)
		p->len += (size_t)w < sizeof(p->text) - p->len ? (size_t)w : sizeof(p->text) - p->len - 1;
}

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

static void check_table(struct pgconn *tgt, struct mig_table *t, struct problems *p,
			struct err *err)
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
	if (!has)
		problem(p, "%s.%s: the target has no unique index on the key (%s)", t->schema,
			t->name, want);
	free(want);
	PQclear(r);
}

bool pgmeta_check_target(struct pgconn *tgt, struct mig_tableset *ts, struct err *err)
{
	struct problems p = {0};
	for (int i = 0; i < ts->n; i++)
		check_table(tgt, &ts->t[i], &p, err);
	if (p.n > 0) {
		err_set(err, "target: schema contract broken (%d problem%s):\n%s", p.n,
			p.n > 1 ? "s" : "", p.text);
		return false;
	}
	return true;
}
