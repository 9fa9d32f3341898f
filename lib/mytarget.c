/* mytarget: a MySQL/MariaDB target's tables from information_schema (see mytarget.h). */
#include "mytarget.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One identifier of a qualified name: "x" / `x` (doubled quotes) or bare, up to '.'. */
static char *qname_part(const char **p)
{
	struct mytext_buf b = {0};
	char q = **p;
	if (q == '"' || q == '`') {
		for ((*p)++; **p; (*p)++) {
			if (**p == q && (*p)[1] == q)
				(*p)++;
			else if (**p == q)
				break;
			mytext_buf_addc(&b, **p);
		}
		if (**p == q)
			(*p)++;
	} else {
		for (; **p && **p != '.'; (*p)++)
			mytext_buf_addc(&b, **p);
	}
	mytext_buf_addc(&b, '\0');
	return b.data;
}

/* From tgt_qname ("a"."b", `a`.`b` or a.b); the source names if it does not parse. */
void mytarget_names(const struct mig_table *t, char **db, char **name)
{
	const char *p = t->tgt_qname ? t->tgt_qname : "";
	char *a = qname_part(&p);
	if (*p == '.') {
		p++;
		char *b2 = qname_part(&p);
		if (*p == '\0' && a[0] && b2[0]) {
			*db = a;
			*name = b2;
			return;
		}
		free(b2);
	} else if (*p == '\0' && a[0]) {
		*db = xstrdup(t->schema);
		*name = a;
		return;
	}
	free(a);
	*db = xstrdup(t->schema);
	*name = xstrdup(t->name);
}

void mytarget_free(struct mytarget_table *tt, int n)
{
	for (int i = 0; tt && i < n; i++) {
		struct mytarget_table *x = &tt[i];
		for (int c = 0; c < x->ncols; c++)
			free(x->cols[c].name);
		free(x->cols);
		for (int u = 0; u < x->nuniq; u++) {
			for (char **p = x->uniq[u]; *p; p++)
				free(*p);
			free(x->uniq[u]);
		}
		free(x->uniq);
		free(x->db);
		free(x->name);
		free(x->qname);
	}
	free(tt);
}

static struct mytarget_table *find(struct mytarget_table *tt, int n, const char *db,
				   const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(tt[i].db, db) == 0 && strcmp(tt[i].name, name) == 0)
			return &tt[i];
	return NULL;
}

static uint64_t num(const char *v)
{
	return v ? strtoull(v, NULL, 10) : 0;
}

bool mytarget_load(struct myconn *c, const struct mig_tableset *ts, struct mytarget_table **out,
		   struct err *err)
{
	int nt = ts->n;
	struct mytarget_table *tt = xcalloc((size_t)nt + 1, sizeof(*tt));
	struct mytext_buf in = {0};
	*out = NULL;
	for (int i = 0; i < nt; i++) {
		struct mytarget_table *x = &tt[i];
		mytarget_names(&ts->t[i], &x->db, &x->name);
		char *d = myconn_ident(x->db), *n = myconn_ident(x->name);
		x->qname = xasprintf("%s.%s", d, n);
		free(d);
		free(n);
		mytext_buf_adds(&in, i ? ",(" : "(");
		mytext_quote(&in, x->db, strlen(x->db));
		mytext_buf_addc(&in, ',');
		mytext_quote(&in, x->name, strlen(x->name));
		mytext_buf_addc(&in, ')');
	}
	if (nt == 0)
		goto done;
	char *sql =
	    xasprintf("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, "
		      "CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION, "
		      "NUMERIC_SCALE, DATETIME_PRECISION FROM information_schema.COLUMNS "
		      "WHERE (TABLE_SCHEMA, TABLE_NAME) IN (%s) ORDER BY ORDINAL_POSITION",
		      in.data);
	MYSQL_RES *r = myconn_query(c, sql, err);
	free(sql);
	if (r == NULL)
		goto fail;
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL) {
		struct mytarget_table *x = find(tt, nt, row[0], row[1]);
		if (x == NULL)
			continue;
		x->found = true;
		x->cols = xrealloc(x->cols, (size_t)(x->ncols + 1) * sizeof(*x->cols));
		struct mytarget_col *col = &x->cols[x->ncols++];
		col->name = xstrdup(row[2]);
		mytext_col_init(&col->type, row[3], row[4], num(row[5]), num(row[6]),
				(unsigned)num(row[7]), (unsigned)num(row[8]),
				(unsigned)num(row[9]));
	}
	mysql_free_result(r);

	/* Unique indexes, one row per column: (db, table, index) groups in order. */
	sql = xasprintf("SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME "
			"FROM information_schema.STATISTICS WHERE NON_UNIQUE = 0 AND "
			"(TABLE_SCHEMA, TABLE_NAME) IN (%s) "
			"ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
			in.data);
	r = myconn_query(c, sql, err);
	free(sql);
	if (r == NULL)
		goto fail;
	char *prev = NULL;
	struct mytarget_table *px = NULL;
	int ncol = 0;
	while ((row = mysql_fetch_row(r)) != NULL) {
		struct mytarget_table *x = find(tt, nt, row[0], row[1]);
		if (x == NULL)
			continue;
		if (x != px || prev == NULL || strcmp(prev, row[2]) != 0) {
			x->uniq = xrealloc(x->uniq, (size_t)(x->nuniq + 1) * sizeof(*x->uniq));
			x->uniq[x->nuniq++] = xcalloc(1, sizeof(char *));
			ncol = 0;
			free(prev);
			prev = xstrdup(row[2]);
			px = x;
		}
		char ***u = &x->uniq[x->nuniq - 1];
		*u = xrealloc(*u, (size_t)(ncol + 2) * sizeof(char *));
		(*u)[ncol++] = xstrdup(row[3]);
		(*u)[ncol] = NULL;
	}
	free(prev);
	mysql_free_result(r);
done:
	mytext_buf_free(&in);
	*out = tt;
	return true;
fail:
	mytext_buf_free(&in);
	mytarget_free(tt, nt);
	return false;
}

const struct mytarget_col *mytarget_col(const struct mytarget_table *t, const char *name)
{
	for (int j = 0; j < t->ncols; j++)
		if (strcasecmp(t->cols[j].name, name) == 0)
			return &t->cols[j];
	return NULL;
}

bool mytarget_unique_within(const struct mytarget_table *t, char *const *cols, int n)
{
	for (int u = 0; u < t->nuniq; u++) {
		bool all = true;
		for (char **p = t->uniq[u]; *p && all; p++) {
			bool in = false;
			for (int k = 0; k < n && !in; k++)
				in = strcasecmp(cols[k], *p) == 0;
			all = in;
		}
		if (all)
			return true;
	}
	return false;
}
