/*
 * mysnap_key: how key columns are compared on MariaDB, the MariaDB literal
 * of a key's PostgreSQL text, the (lo, hi] predicate, the select-list form
 * of every column, and key values as text[] literals (see mysnap.h for the
 * order argument).  Pure string work: no connection.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keyrange.h"
#include "mymeta.h"
#include "mysnap_int.h"
#include "util.h"

/* --- keys: comparison expressions and literals ---------------------------------------- */

enum keycls {
	KC_BAD = 0,
	KC_NUMBER, /* integers, DECIMAL, YEAR: bare digits */
	KC_FLOAT,
	KC_DOUBLE,
	KC_DATE,
	KC_TIME,
	KC_DATETIME,
	KC_TIMESTAMP,
	KC_TEXT, /* compared as UTF-8 bytes */
	KC_BYTES,
	KC_BIT,
	KC_UUID, /* compared as its 16 bytes */
	KC_INET,
};

static enum keycls key_class(const struct mig_column *c)
{
	switch (c->type_oid) {
	case MYMETA_OID_INT2:
	case MYMETA_OID_INT4:
	case MYMETA_OID_INT8:
	case MYMETA_OID_NUMERIC:
		return KC_NUMBER;
	case MYMETA_OID_FLOAT4:
		return KC_FLOAT;
	case MYMETA_OID_FLOAT8:
		return KC_DOUBLE;
	case MYMETA_OID_DATE:
		return KC_DATE;
	case MYMETA_OID_INTERVAL:
		return KC_TIME;
	case MYMETA_OID_TIMESTAMP:
		return KC_DATETIME;
	case MYMETA_OID_TIMESTAMPTZ:
		return KC_TIMESTAMP;
	case MYMETA_OID_TEXT:
	case MYMETA_OID_VARCHAR:
		return c->src_collation != 0 ? KC_TEXT : KC_BAD;
	case MYMETA_OID_BYTEA:
		return KC_BYTES;
	case MYMETA_OID_BIT:
		return KC_BIT;
	case MYMETA_OID_UUID:
		return KC_UUID;
	case MYMETA_OID_INET:
		return KC_INET;
	default:
		return KC_BAD; /* json: no order in PostgreSQL (mymeta refuses such keys) */
	}
}

char *mysnap_key_expr(const struct mig_column *c)
{
	char *id = myconn_ident(c->name), *e;
	switch (key_class(c)) {
	case KC_TEXT:
		e = xasprintf("CAST(CONVERT(%s USING utf8mb4) AS BINARY)", id);
		break;
	case KC_UUID:
		e = xasprintf("CAST(%s AS BINARY(16))", id);
		break;
	default:
		return id;
	}
	free(id);
	return e;
}

static bool only_chars(const char *s, const char *set)
{
	return *s != '\0' && s[strspn(s, set)] == '\0';
}

static void add_hex(struct strbuf *b, const uint8_t *p, size_t n)
{
	sb_addf(b, "X'");
	for (size_t i = 0; i < n; i++)
		sb_addf(b, "%02x", p[i]);
	sb_addf(b, "'");
}

/*
 * The MariaDB literal of key value v (a PostgreSQL text of c's mapped
 * type), comparable with mysnap_key_expr(c); NULL when v is not such a text.
 * Only digits, signs and the like go between quotes, after a check, so
 * nothing needs escaping.
 */
static char *key_literal(const struct mig_column *c, const char *v)
{
	struct strbuf b = {0};
	switch (key_class(c)) {
	case KC_NUMBER: {
		const char *p = v + (*v == '-');
		size_t ni = strspn(p, "0123456789");
		if (ni == 0 ||
		    (p[ni] != '\0' && !(p[ni] == '.' && only_chars(p + ni + 1, "0123456789"))))
			return NULL;
		return xstrdup(v);
	}
	case KC_FLOAT:
	case KC_DOUBLE:
		if (!only_chars(v, "0123456789.-+e"))
			return NULL;
		return xasprintf("CAST('%s' AS %s)", v,
				 key_class(c) == KC_FLOAT ? "FLOAT" : "DOUBLE");
	case KC_DATE:
		return only_chars(v, "0123456789-") ? xasprintf("CAST('%s' AS DATE)", v) : NULL;
	case KC_TIME:
		return only_chars(v, "0123456789-:.") ? xasprintf("CAST('%s' AS TIME(6))", v)
						      : NULL;
	case KC_DATETIME:
		return only_chars(v, "0123456789-:. ") ? xasprintf("CAST('%s' AS DATETIME(6))", v)
						       : NULL;
	case KC_TIMESTAMP: {
		/* "...+00": the session is UTC, so the same instant without the offset */
		size_t n = strlen(v);
		if (n < 4 || strcmp(v + n - 3, "+00") != 0)
			return NULL;
		char *d = xasprintf("%.*s", (int)(n - 3), v);
		char *out = only_chars(d, "0123456789-:. ")
				? xasprintf("CAST('%s' AS DATETIME(6))", d)
				: NULL;
		free(d);
		return out;
	}
	case KC_TEXT:
		add_hex(&b, (const uint8_t *)v, strlen(v));
		return sb_take(&b);
	case KC_BYTES: {
		if (v[0] != '\\' || v[1] != 'x' || strlen(v + 2) % 2 != 0 ||
		    (v[2] != '\0' && !only_chars(v + 2, "0123456789abcdefABCDEF")))
			return NULL;
		return xasprintf("X'%s'", v + 2);
	}
	case KC_BIT:
		return only_chars(v, "01") ? xasprintf("b'%s'", v) : NULL;
	case KC_UUID: {
		uint8_t u[16];
		int n = 0;
		for (const char *p = v; *p && n < 32; p++) {
			if (*p == '-')
				continue;
			unsigned x;
			if (sscanf(p, "%1x", &x) != 1)
				return NULL;
			u[n / 2] = (uint8_t)(n % 2 ? u[n / 2] | x : x << 4);
			n++;
		}
		if (n != 32 || strlen(v) != 36)
			return NULL;
		add_hex(&b, u, 16);
		return sb_take(&b);
	}
	case KC_INET: {
		uint8_t a[16];
		int fam = c->src_ext == BINLOG_EXT_INET4 ? AF_INET : AF_INET6;
		if (inet_pton(fam, v, a) != 1)
			return NULL;
		return xasprintf("'%s'", v); /* checked: digits, hex, ':' and '.' only */
	}
	default:
		return NULL;
	}
}

/*
 * One bound of the range, for keys (e1..en) and literals (l1..ln): the
 * row comparison (e1, .., en) > (l1, .., ln) (lower) or <= (upper),
 * written out as (e1 > l1) OR (e1 = l1 AND e2 > l2) OR ... so that
 * MariaDB's range optimizer uses the index.  NULL when arr does not parse.
 */
static char *range_bound(const struct mig_table *t, const char *arr, bool lower)
{
	char **vals;
	int n = keyrange_parse_array(arr, &vals);
	char **exprs = xcalloc((size_t)t->nkey + 1, sizeof(char *));
	char **lits = xcalloc((size_t)t->nkey + 1, sizeof(char *));
	bool ok = n == t->nkey && n > 0;
	for (int k = 0; k < t->nkey && ok; k++) {
		const struct mig_column *c = &t->cols[t->key_idx[k]];
		exprs[k] = mysnap_key_expr(c);
		lits[k] = key_literal(c, vals[k]);
		ok = lits[k] != NULL;
	}
	char *out = NULL;
	if (ok) {
		struct strbuf b = {0};
		sb_addf(&b, "(");
		for (int i = 0; i < n; i++) {
			sb_addf(&b, "%s(", i ? " OR " : "");
			for (int j = 0; j < i; j++)
				sb_addf(&b, "%s = %s AND ", exprs[j], lits[j]);
			const char *op = lower ? ">" : i == n - 1 ? "<=" : "<";
			sb_addf(&b, "%s %s %s)", exprs[i], op, lits[i]);
		}
		sb_addf(&b, ")");
		out = sb_take(&b);
	}
	for (int k = 0; k < t->nkey; k++) {
		free(exprs[k]);
		free(lits[k]);
	}
	for (int i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
	free(exprs);
	free(lits);
	return out;
}

char *mysnap_range_pred(const struct mig_table *t, const char *lo, const char *hi)
{
	char *l = lo ? range_bound(t, lo, true) : xstrdup("TRUE");
	char *h = hi ? range_bound(t, hi, false) : xstrdup("TRUE");
	char *out = NULL;
	if (l != NULL && h != NULL)
		out = lo || hi ? xasprintf("%s AND %s", l, h) : xstrdup("TRUE");
	free(l);
	free(h);
	return out;
}

/* (e1 = l1 AND e2 = l2 ..) for one key; NULL when arr does not parse. */
static char *key_equal(const struct mig_table *t, const char *arr)
{
	char **vals;
	int n = keyrange_parse_array(arr, &vals);
	bool ok = n == t->nkey && n > 0;
	struct strbuf b = {0};
	sb_addf(&b, "(");
	for (int k = 0; k < t->nkey && ok; k++) {
		const struct mig_column *c = &t->cols[t->key_idx[k]];
		char *e = mysnap_key_expr(c), *l = key_literal(c, vals[k]);
		ok = l != NULL;
		if (ok)
			sb_addf(&b, "%s%s = %s", k ? " AND " : "", e, l);
		free(e);
		free(l);
	}
	sb_addf(&b, ")");
	for (int i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
	char *out = sb_take(&b);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

char *mysnap_keys_pred(const struct mig_table *t, char *const *keys, size_t n)
{
	if (n == 0)
		return xstrdup("FALSE");
	struct strbuf b = {0};
	for (size_t i = 0; i < n; i++) {
		char *one = key_equal(t, keys[i]);
		if (one == NULL) {
			free(sb_take(&b));
			return NULL;
		}
		sb_addf(&b, "%s%s", i ? " OR " : "", one);
		free(one);
	}
	return sb_take(&b);
}

/* Appends one element to a text[] literal, quoted as PostgreSQL's array_out quotes. */
static void array_elem(struct strbuf *b, const char *s, size_t n)
{
	bool quote = n == 0 || (n == 4 && strncasecmp(s, "NULL", 4) == 0);
	for (size_t i = 0; i < n && !quote; i++)
		quote = strchr("{}\",\\ \t\n\r\v\f", s[i]) != NULL && s[i] != '\0';
	if (!quote) {
		sb_addf(b, "%.*s", (int)n, s);
		return;
	}
	sb_addf(b, "\"");
	for (size_t i = 0; i < n; i++)
		sb_addf(b, s[i] == '"' || s[i] == '\\' ? "\\%c" : "%c", s[i]);
	sb_addf(b, "\"");
}

char *mysnap_select_expr(const struct mig_column *c)
{
	char *id = myconn_ident(c->name), *e;
	if (c->src_ext == BINLOG_EXT_UUID || c->src_ext == BINLOG_EXT_INET6)
		e = xasprintf("CAST(%s AS BINARY(16))", id);
	else if (c->src_ext == BINLOG_EXT_INET4)
		e = xasprintf("CAST(%s AS BINARY(4))", id);
	else if (c->src_collation != 0)
		e = xasprintf("CAST(%s AS BINARY)", id);
	else
		return id;
	free(id);
	return e;
}

char *mysnap_key_array(const struct change_value *vals, const int *idx, int n)
{
	struct strbuf b = {0};
	sb_addf(&b, "{");
	for (int k = 0; k < n; k++) {
		if (k)
			sb_addf(&b, ",");
		int i = idx ? idx[k] : k;
		if (i < 0 || vals[i].kind != CHV_TEXT)
			sb_addf(&b, "NULL");
		else
			array_elem(&b, vals[i].data, vals[i].len);
	}
	sb_addf(&b, "}");
	return sb_take(&b);
}

char *mysnap_tuple_key(const struct mig_table *t, const struct change_tuple *row)
{
	for (int k = 0; k < t->nkey; k++)
		if (t->key_idx[k] >= row->ncols)
			return xstrdup("{}");
	return mysnap_key_array(row->vals, t->key_idx, t->nkey);
}

char *mysnap_tuple_key_json(const struct mig_table *t, const struct change_tuple *row)
{
	json_t *o = json_object();
	for (int k = 0; k < t->nkey; k++) {
		int i = t->key_idx[k];
		if (i >= row->ncols)
			continue;
		const struct change_value *v = &row->vals[i];
		json_t *j = v->kind == CHV_TEXT ? json_stringn(v->data, v->len) : json_null();
		if (j == NULL) { /* not UTF-8 */
			struct strbuf b = {0};
			sb_addf(&b, "\\x");
			for (uint32_t n = 0; n < v->len; n++)
				sb_addf(&b, "%02x", (unsigned char)v->data[n]);
			char *hex = sb_take(&b);
			j = json_pack("{s:s}", "invalid_utf8", hex);
			free(hex);
		}
		json_object_set_new(o, t->cols[i].name, j);
	}
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}
