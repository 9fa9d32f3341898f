/* tables: the migrated table set (see tables.h). */
#include "tables.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "pgconn.h"
#include "util.h"

void tableset_free(struct mig_tableset *ts)
{
	for (int i = 0; i < ts->n; i++) {
		struct mig_table *t = &ts->t[i];
		for (int c = 0; c < t->ncols; c++) {
			free(t->cols[c].name);
			free(t->cols[c].tgt_name);
			free(t->cols[c].type);
			free(t->cols[c].src_type);
		}
		free(t->cols);
		free(t->key_idx);
		free(t->schema);
		free(t->name);
		free(t->qname);
		free(t->tgt_qname);
	}
	free(ts->t);
	ts->t = NULL;
	ts->n = 0;
}

struct mig_table *tableset_find_relid(struct mig_tableset *ts, uint32_t relid)
{
	for (int i = 0; i < ts->n; i++)
		if (ts->t[i].src_relid == relid)
			return &ts->t[i];
	return NULL;
}

struct mig_table *tableset_find(struct mig_tableset *ts, const char *schema, const char *name)
{
	for (int i = 0; i < ts->n; i++)
		if (strcmp(ts->t[i].schema, schema) == 0 && strcmp(ts->t[i].name, name) == 0)
			return &ts->t[i];
	return NULL;
}

bool table_list_match(const char *list, const char *schema, const char *name)
{
	if (list == NULL)
		return false;
	char *full = xasprintf("%s.%s", schema, name);
	char *copy = xstrdup(list), *save = NULL;
	bool hit = false;
	for (char *tok = strtok_r(copy, ", ", &save); tok && !hit; tok = strtok_r(NULL, ", ", &save))
		hit = fnmatch(tok, full, 0) == 0;
	free(copy);
	free(full);
	return hit;
}

static char *join_idents(const struct mig_table *t, bool keys_only)
{
	struct strbuf b = {0};
	int n = keys_only ? t->nkey : t->ncols;
	for (int i = 0; i < n; i++) {
		char *id = pgconn_ident(t->cols[keys_only ? t->key_idx[i] : i].name);
		sb_addf(&b, "%s%s", i ? ", " : "", id);
		free(id);
	}
	return sb_take(&b);
}

char *table_key_list(const struct mig_table *t)
{
	return join_idents(t, true);
}

char *table_column_list(const struct mig_table *t)
{
	return join_idents(t, false);
}

struct mig_table table_target_view(const struct mig_table *t)
{
	struct mig_table v = *t;
	v.qname = t->tgt_qname;
	v.cols = xcalloc((size_t)t->ncols + 1, sizeof(*v.cols));
	for (int i = 0; i < t->ncols; i++) {
		v.cols[i] = t->cols[i];
		v.cols[i].name = (char *)col_tgt_name(&t->cols[i]);
		v.cols[i].tgt_name = NULL;
	}
	return v;
}

void table_view_free(struct mig_table *v)
{
	free(v->cols);
	v->cols = NULL;
}

struct mig_tableset tableset_target_view(const struct mig_tableset *ts)
{
	struct mig_tableset v = {.n = ts->n, .t = xcalloc((size_t)ts->n + 1, sizeof(*v.t))};
	for (int i = 0; i < ts->n; i++)
		v.t[i] = table_target_view(&ts->t[i]);
	return v;
}

void tableset_view_free(struct mig_tableset *v)
{
	for (int i = 0; i < v->n; i++)
		table_view_free(&v->t[i]);
	free(v->t);
	v->t = NULL;
	v->n = 0;
}

const char *table_tgt_col(const struct mig_table *t, const char *name)
{
	for (int i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return col_tgt_name(&t->cols[i]);
	return name;
}

/* The next "a.b=c.d" item of a rename list, trimmed; false at the end. */
static bool next_rename(const char **s, char **from, char **to)
{
	while (**s == ' ' || **s == ',')
		(*s)++;
	if (**s == '\0')
		return false;
	size_t n = strcspn(*s, ",");
	const char *eq = memchr(*s, '=', n);
	size_t fl = eq ? (size_t)(eq - *s) : n;
	while (fl > 0 && (*s)[fl - 1] == ' ')
		fl--;
	*from = xasprintf("%.*s", (int)(fl), *s);
	const char *t = eq ? eq + 1 : *s + n;
	size_t tl = (size_t)(*s + n - t);
	while (tl > 0 && t[tl - 1] == ' ')
		tl--;
	*to = xasprintf("%.*s", (int)(tl), t);
	*s += n;
	return true;
}

bool tableset_map_targets(struct mig_tableset *ts, const char *target_schema, const char *renames,
			  struct err *err)
{
	for (int i = 0; i < ts->n; i++) {
		struct mig_table *t = &ts->t[i];
		free(t->tgt_qname);
		t->tgt_qname = pgconn_qualified(target_schema ? target_schema : t->schema, t->name);
	}
	const char *s = renames ? renames : "";
	char *from, *to;
	while (next_rename(&s, &from, &to)) {
		const char *dot = strchr(from, '.');
		char *schema = xasprintf("%.*s", (int)(dot - from), from);
		struct mig_table *t = tableset_find(ts, schema, dot + 1);
		free(schema);
		if (t == NULL) {
			err_set(err, "[tables] rename: %s is not a migrated table", from);
			free(from);
			free(to);
			return false;
		}
		const char *tdot = strchr(to, '.');
		char *ts_ = tdot ? xasprintf("%.*s", (int)(tdot - to), to)
				 : xstrdup(target_schema ? target_schema : t->schema);
		free(t->tgt_qname);
		t->tgt_qname = pgconn_qualified(ts_, tdot ? tdot + 1 : to);
		free(ts_);
		free(from);
		free(to);
	}
	return true;
}

bool tableset_map_columns(struct mig_tableset *ts, const char *columns, struct err *err)
{
	const char *s = columns ? columns : "";
	char *from, *to;
	bool ok = true;
	while (ok && next_rename(&s, &from, &to)) {
		/* schema.table.column: the column is after the last dot. */
		const char *cdot = strrchr(from, '.'), *dot = strchr(from, '.');
		char *schema = xasprintf("%.*s", (int)(dot - from), from);
		char *table = xasprintf("%.*s", (int)(cdot - dot - 1), dot + 1);
		struct mig_table *t = tableset_find(ts, schema, table);
		struct mig_column *c = NULL;
		for (int i = 0; t != NULL && i < t->ncols && c == NULL; i++)
			if (strcmp(t->cols[i].name, cdot + 1) == 0)
				c = &t->cols[i];
		if (t == NULL) {
			err_set(err, "[tables] columns: %s.%s is not a migrated table", schema, table);
			ok = false;
		} else if (c == NULL) {
			err_set(err, "[tables] columns: %s.%s has no column %s", schema, table,
				cdot + 1);
			ok = false;
		}
		for (int i = 0; ok && i < t->ncols; i++)
			if (&t->cols[i] != c && strcmp(col_tgt_name(&t->cols[i]), to) == 0) {
				err_set(err, "[tables] columns: %s.%s: %s and %s would both be %s on "
					     "the target",
					schema, table, t->cols[i].name, c->name, to);
				ok = false;
			}
		if (ok) {
			free(c->tgt_name);
			c->tgt_name = strcmp(to, c->name) == 0 ? NULL : xstrdup(to);
		}
		free(schema);
		free(table);
		free(from);
		free(to);
	}
	return ok;
}
