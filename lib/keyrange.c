/* keyrange: key ranges as SQL predicates (see keyrange.h). */
#include "keyrange.h"

#include <stdlib.h>
#include <string.h>

#include "pgconn.h"
#include "util.h"

/* Splits a PostgreSQL text[] literal "{a,b}" into elements (handles quoting). */
int keyrange_parse_array(const char *s, char ***out)
{
	int n = 0, cap = 4;
	char **v = xcalloc((size_t)cap, sizeof(char *));
	const char *p = s + 1; /* skip { */
	while (*p && *p != '}') {
		char *buf = xmalloc(strlen(p) + 1), *b = buf;
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				*b++ = *p++;
			}
			if (*p == '"')
				p++;
		} else {
			while (*p && *p != ',' && *p != '}')
				*b++ = *p++;
		}
		*b = '\0';
		if (n == cap) {
			cap *= 2;
			v = xrealloc(v, (size_t)cap * sizeof(char *));
		}
		v[n++] = buf;
		if (*p == ',')
			p++;
	}
	*out = v;
	return n;
}

/* "(k1, k2) OP (lit::type, ...)" for one bound. */
char *keyrange_bound(const struct mig_table *t, const char *arr, const char *op)
{
	char **vals;
	int n = keyrange_parse_array(arr, &vals);
	char *keys = table_key_list(t);
	struct strbuf b = {0};
	for (int i = 0; i < n && i < t->nkey; i++) {
		char *lit = pgconn_literal(vals[i]);
		sb_addf(&b, "%s%s::%s", i ? ", " : "", lit, t->cols[t->key_idx[i]].type);
		free(lit);
	}
	char *lits = sb_take(&b);
	char *out = xasprintf("ROW(%s) %s ROW(%s)", keys, op, lits);
	for (int i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
	free(keys);
	free(lits);
	return out;
}

char *keyrange_pred(const struct mig_table *t, const char *lo_arr, const char *hi_arr)
{
	if (lo_arr == NULL && hi_arr == NULL)
		return xstrdup("true");
	char *lo = lo_arr ? keyrange_bound(t, lo_arr, ">") : xstrdup("true");
	char *hi = hi_arr ? keyrange_bound(t, hi_arr, "<=") : xstrdup("true");
	char *out = xasprintf("%s AND %s", lo, hi);
	free(lo);
	free(hi);
	return out;
}
