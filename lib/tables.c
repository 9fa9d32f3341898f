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
