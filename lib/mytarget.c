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
		for (int c = 0; c < x->ncols; c++) {
			free(x->cols[c].name);
			free(x->cols[c].collation);
		}
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
	    xasprintf("SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, "
		      "c.COLUMN_TYPE, c.CHARACTER_MAXIMUM_LENGTH, c.CHARACTER_OCTET_LENGTH, "
		      "c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.DATETIME_PRECISION, "
		      "c.COLLATION_NAME, co.ID FROM information_schema.COLUMNS c "
		      "LEFT JOIN information_schema.COLLATIONS co ON co.COLLATION_NAME = "
		      "c.COLLATION_NAME WHERE (c.TABLE_SCHEMA, c.TABLE_NAME) IN (%s) "
		      "ORDER BY c.ORDINAL_POSITION",
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
		col->collation = row[10] ? xstrdup(row[10]) : NULL;
		col->collation_id = (uint32_t)num(row[11]);
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

/*
 * Can a unique index on this target column hold apart every key the
 * source holds apart?  Byte-wise NO PAD collations and binary types can;
 * another collation only if it is the source column's own (a MariaDB
 * source's key was unique under it already).
 */
static bool key_collation_ok(const struct mytarget_col *tc, uint32_t src_collation)
{
	if (tc->collation == NULL)
		return true; /* not a character column: values compare as themselves */
	if (strstr(tc->collation, "nopad_bin") != NULL || strcmp(tc->collation, "binary") == 0)
		return true;
	return src_collation != 0 && src_collation == tc->collation_id;
}

static bool check_view(struct myconn *c, const struct mig_tableset *ts, struct err *err);

bool mytarget_check(struct myconn *c, const struct mig_tableset *ts, struct err *err)
{
	/* Column names as the target has them ([tables] columns). */
	struct mig_tableset tv = tableset_target_view(ts);
	bool ok = check_view(c, &tv, err);
	tableset_view_free(&tv);
	return ok;
}

static bool check_view(struct myconn *c, const struct mig_tableset *ts, struct err *err)
{
	struct mytarget_table *tt;
	if (!mytarget_load(c, ts, &tt, err))
		return false;
	struct problems p = {0};
	for (int i = 0; i < ts->n; i++) {
		const struct mig_table *t = &ts->t[i];
		const struct mytarget_table *x = &tt[i];
		if (!x->found) {
			problem(&p, "table %s does not exist on the target (create it first)", x->qname);
			continue;
		}
		for (int k = 0; k < t->ncols; k++)
			if (mytarget_col(x, t->cols[k].name) == NULL)
				problem(&p, "column %s of %s.%s is missing from %s", t->cols[k].name,
					t->schema, t->name, x->qname);
		if (t->nkey == 0)
			continue;
		char **keys = xcalloc((size_t)t->nkey, sizeof(char *));
		for (int k = 0; k < t->nkey; k++) {
			const struct mig_column *sc = &t->cols[t->key_idx[k]];
			const struct mytarget_col *tc = mytarget_col(x, sc->name);
			keys[k] = sc->name;
			if (tc != NULL && !key_collation_ok(tc, sc->src_collation))
				problem(&p,
					"key column %s of %s has collation %s: keys the source holds "
					"apart (case, accents, trailing spaces) would collide there; use "
					"utf8mb4_nopad_bin, a binary type or the source's collation",
					sc->name, x->qname, tc->collation);
		}
		if (!mytarget_unique_within(x, keys, t->nkey))
			problem(&p,
				"target table %s has no PRIMARY KEY or UNIQUE index on the key columns "
				"(upserts would duplicate rows)",
				x->qname);
		free(keys);
	}
	mytarget_free(tt, ts->n);
	if (p.n > 0) {
		err_set(err, "target: schema contract broken (%d problem%s):\n%s", p.n,
			p.n > 1 ? "s" : "", p.text);
		return false;
	}
	return true;
}
