/*
 * vside: a validation side's reads in canonical form, on PostgreSQL
 * (server-side SQL) and on a MySQL/MariaDB source (mysnap, hashed here).
 * See vside.h for the canonical form and why both engines agree.
 */
#include "vside.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyrange.h"
#include "md5.h"
#include "mycapture.h"
#include "mysnap.h"
#include "util.h"

/*
 * The canonical text's settings, and no parallel workers: validation reads
 * beside production, one process per side (the two sides already work at
 * once); on a small machine the workers cost a quarter more CPU per row.
 */
const char vside_pg_settings[] =
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 1; SET bytea_output = 'hex'; SET client_encoding = 'UTF8'; "
    "SET max_parallel_workers_per_gather = 0";

/* --- digests ------------------------------------------------------------------------- */

void vdigest_add(struct vdigest *d, const void *text, size_t len)
{
	uint8_t h[16];
	md5_buf(text, len, h);
	/* PostgreSQL: ('x' || substr(md5, 1, 15))::bit(60)::bigint, the first 60 bits */
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | h[i];
	d->rows++;
	d->sum += v >> 4;
}

/*
 * Bob Jenkins' hash as PostgreSQL's hash_bytes_extended() computes it
 * (src/common/hashfn.c; the algorithm is in the public domain): 12 bytes
 * at a time as three little-endian words, mixed; the last 0-11 bytes
 * added the same way except that c takes them from its second byte up
 * (its lowest byte held the length in the original); final mixing; b and
 * c are the result.
 */
#define ROT32(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

static void jenkins_mix(uint32_t *a, uint32_t *b, uint32_t *c)
{
	*a -= *c, *a ^= ROT32(*c, 4), *c += *b;
	*b -= *a, *b ^= ROT32(*a, 6), *a += *c;
	*c -= *b, *c ^= ROT32(*b, 8), *b += *a;
	*a -= *c, *a ^= ROT32(*c, 16), *c += *b;
	*b -= *a, *b ^= ROT32(*a, 19), *a += *c;
	*c -= *b, *c ^= ROT32(*b, 4), *b += *a;
}

static void jenkins_final(uint32_t *a, uint32_t *b, uint32_t *c)
{
	*c ^= *b, *c -= ROT32(*b, 14);
	*a ^= *c, *a -= ROT32(*c, 11);
	*b ^= *a, *b -= ROT32(*a, 25);
	*c ^= *b, *c -= ROT32(*b, 16);
	*a ^= *c, *a -= ROT32(*c, 4);
	*b ^= *a, *b -= ROT32(*a, 14);
	*c ^= *b, *c -= ROT32(*b, 24);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t vside_pghash(const void *text, size_t len)
{
	const uint8_t *k = text;
	uint32_t a, b, c;
	a = b = c = 0x9e3779b9u + (uint32_t)len + 3923095u;
	size_t n = len;
	for (; n >= 12; n -= 12, k += 12) {
		a += le32(k);
		b += le32(k + 4);
		c += le32(k + 8);
		jenkins_mix(&a, &b, &c);
	}
	uint8_t tail[12] = {0};
	memcpy(tail, k, n);
	a += le32(tail);
	b += le32(tail + 4);
	c += le32(tail + 8) << 8; /* tail[11] is always 0 */
	jenkins_final(&a, &b, &c);
	return (uint64_t)b << 32 | c;
}

void vdigest_add_kind(struct vdigest *d, enum vdigest_kind kind, const void *text, size_t len)
{
	if (kind == VDIGEST_MD5) {
		vdigest_add(d, text, len);
		return;
	}
	/* VDIGEST_PGROW is never asked of a client-hashed side: it hashes digest texts. */
	/* sign-extended, then summed modulo 2^128 */
	d->rows++;
	d->sum += (unsigned __int128)(__int128)(int64_t)vside_pghash(text, len);
}

char *vdigest_format(const struct vdigest *d, char *buf, size_t n)
{
	char digits[48];
	int i = (int)sizeof(digits) - 1;
	unsigned __int128 s = d->sum;
	digits[i] = '\0';
	do {
		digits[--i] = (char)('0' + (int)(s % 10));
		s /= 10;
	} while (s > 0 && i > 0);
	snprintf(buf, n, "%lld/%s", (long long)d->rows, digits + i);
	return buf;
}

/* A decimal integer, negative ones modulo 2^128 (a pghash sum). */
static bool parse_u128(const char *s, unsigned __int128 *out)
{
	bool neg = *s == '-';
	*out = 0;
	s += neg;
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		*out = *out * 10 + (unsigned)(*s - '0');
	}
	if (neg)
		*out = -*out;
	return true;
}

/* --- PostgreSQL: canonical text in SQL ----------------------------------------------- */

/* Types whose ::text cast is their output function (I/O conversion or binary coercion). */
static bool text_cast_is_output(uint32_t oid)
{
	switch (oid) {
	case 17:   /* bytea */
	case 19:   /* name */
	case 20:   /* int8 */
	case 21:   /* int2 */
	case 23:   /* int4 */
	case 25:   /* text */
	case 26:   /* oid */
	case 114:  /* json */
	case 142:  /* xml */
	case 700:  /* float4 */
	case 701:  /* float8 */
	case 1043: /* varchar */
	case 1082: /* date */
	case 1083: /* time */
	case 1114: /* timestamp */
	case 1184: /* timestamptz */
	case 1186: /* interval */
	case 1266: /* timetz */
	case 1560: /* bit */
	case 1562: /* varbit */
	case 1700: /* numeric */
	case 2950: /* uuid */
	case 3802: /* jsonb */
		return true;
	default:
		return false; /* boolean ('true'), inet (always a mask), char(n) (trimmed), ... */
	}
}

bool vside_text_is_plain(uint32_t oid)
{
	switch (oid) {
	case 16:
	case 20:
	case 21:
	case 23:
	case 26:
	case 650:
	case 700:
	case 701:
	case 829:
	case 869:
	case 1082:
	case 1083:
	case 1114:
	case 1184:
	case 1186:
	case 1266:
	case 1560:
	case 1562:
	case 1700:
	case 2950:
		return true;
	default:
		return false;
	}
}

/* Column c's output text (NULL stays NULL). */
static char *pg_text(const struct mig_column *c)
{
	char *id = pgconn_ident(c->name);
	char *e = text_cast_is_output(c->type_oid) ? xasprintf("%s::text", id)
						   : xasprintf("format('%%s', %s)", id);
	free(id);
	return e;
}

/* Column i's text on this side: in the target's shape where sh says so, else canonical. */
static char *pg_col_text(const struct mig_table *t, const struct vside_table *sh, int i)
{
	if (sh != NULL && sh->expr != NULL && sh->expr[i] != NULL)
		return xstrdup(sh->expr[i]);
	return pg_text(&t->cols[i]);
}

/*
 * Whether column i's text on this side is plain (needs no COPY escaping):
 * sh's word where it has one (vside_my_prepare() gives a pair with a
 * MySQL/MariaDB target the source's on both sides), else by t's type.
 */
static bool col_plain(const struct mig_table *t, const struct vside_table *sh, int i)
{
	if (sh != NULL && sh->plain != NULL)
		return sh->plain[i];
	return vside_text_is_plain(t->cols[i].type_oid);
}

/*
 * A row's text in SQL, in one of two forms: its COPY line (escapes written
 * with replace() chains), or its digest text (vside.h: a non-plain value
 * behind its length in bytes and a colon).  Digest lengths are of the
 * UTF-8 text: in a UTF8 database the value's own (hashtextextended is
 * used only there), else of convert_to(.., 'UTF8') as md5 hashes it.
 */
enum row_form { ROW_COPY, ROW_DIGEST_UTF8DB, ROW_DIGEST_CONVERT };

/* A non-plain value v (consumed) in form f. */
static char *wrap_value(char *v, enum row_form f)
{
	/* backslash first: the escapes written after it must stay as they are */
	static const struct {
		int ch;
		const char *esc;
	} esc[] = {{92, "chr(92)"}, {8, "'b'"}, {12, "'f'"}, {10, "'n'"},
		   {13, "'r'"},	    {9, "'t'"}, {11, "'v'"}};
	char *w;
	switch (f) {
	case ROW_COPY:
		for (size_t k = 0; k < ARRAY_LEN(esc); k++) {
			w = xasprintf("replace(%s, chr(%d), chr(92) || %s)", v, esc[k].ch,
				      esc[k].esc);
			free(v);
			v = w;
		}
		return v;
	case ROW_DIGEST_UTF8DB:
		w = xasprintf("octet_length(%s) || ':' || (%s)", v, v);
		break;
	default:
		w = xasprintf("octet_length(convert_to(%s, 'UTF8')) || ':' || (%s)", v, v);
		break;
	}
	free(v);
	return w;
}

static char *row_expr(const struct mig_table *t, const struct vside_table *sh, enum row_form f)
{
	struct strbuf b = {0};
	for (int i = 0; i < t->ncols; i++) {
		char *id = pgconn_ident(t->cols[i].name);
		char *v = pg_col_text(t, sh, i);
		if (!col_plain(t, sh, i))
			v = wrap_value(v, f);
		sb_addf(&b, "%s(CASE WHEN %s IS NULL THEN chr(92) || 'N' ELSE %s END)",
			i ? " || chr(9) || " : "", id, v);
		free(v);
		free(id);
	}
	return sb_take(&b);
}

static enum row_form digest_row_form(bool utf8_db)
{
	return utf8_db ? ROW_DIGEST_UTF8DB : ROW_DIGEST_CONVERT;
}

char *vside_pg_row_expr(const struct mig_table *t)
{
	return row_expr(t, NULL, ROW_COPY);
}

char *vside_pg_digest_expr(const struct mig_table *t, bool utf8_db)
{
	return row_expr(t, NULL, digest_row_form(utf8_db));
}

bool vside_digest_text(struct change_buf *out, const struct change_tuple *row, const bool *plain)
{
	for (int i = 0; i < row->ncols; i++)
		if (row->vals[i].kind != CHV_TEXT && row->vals[i].kind != CHV_NULL)
			return false;
	for (int i = 0; i < row->ncols; i++) {
		const struct change_value *v = &row->vals[i];
		if (i > 0)
			change_buf_put(out, "\t", 1);
		if (v->kind == CHV_NULL) {
			change_buf_put(out, "\\N", 2);
			continue;
		}
		if (!plain[i]) {
			change_buf_put_udec(out, v->len);
			change_buf_put(out, ":", 1);
		}
		change_buf_put(out, v->data, v->len);
	}
	return true;
}

char *vside_pg_key_expr(const struct mig_table *t)
{
	struct strbuf b = {0};
	sb_addf(&b, "ARRAY[");
	for (int i = 0; i < t->nkey; i++) {
		char *e = pg_text(&t->cols[t->key_idx[i]]);
		sb_addf(&b, "%s%s", i ? ", " : "", e);
		free(e);
	}
	sb_addf(&b, "]::text");
	return sb_take(&b);
}

/* The PostgreSQL pair's historical display form of a column (vside_row, legacy_detail). */
static char *legacy_column(const struct mig_column *c)
{
	char *id = pgconn_ident(c->name);
	char *e;
	if (strncmp(c->type, "timestamp with time zone", 24) == 0)
		e = xasprintf("to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')", id);
	else if (strncmp(c->type, "timestamp", 9) == 0)
		e = xasprintf("to_char(%s, 'YYYY-MM-DD HH24:MI:SS.US')", id);
	else if (strcmp(c->type, "boolean") == 0)
		e = xasprintf("CASE WHEN %s THEN '1' ELSE '0' END", id);
	else if (strcmp(c->type, "bytea") == 0)
		e = xasprintf("encode(%s, 'hex')", id);
	else
		e = xasprintf("%s::text", id);
	free(id);
	return e;
}

/* sel as a WHERE clause body for PostgreSQL. */
static char *pg_pred(const struct mig_table *t, const struct vsel *sel)
{
	if (!sel->by_keys)
		return t->nkey ? keyrange_pred(t, sel->lo, sel->hi) : xstrdup("true");
	if (sel->nkeys == 0)
		return xstrdup("false");
	struct strbuf b = {0};
	for (size_t j = 0; j < sel->nkeys; j++) {
		char *one = keyrange_bound(t, sel->keys[j], "=");
		sb_addf(&b, "%s(%s)", j ? " OR " : "", one);
		free(one);
	}
	return sb_take(&b);
}

/* How s reads t: its vside_table, or NULL when the table set's description says it all. */
static const struct vside_table *shape(const struct vside *s, const struct mig_table *t)
{
	for (int i = 0; i < s->ntables; i++)
		if (s->tables[i].of == t)
			return &s->tables[i];
	return NULL;
}

/* The table mysnap reads for t on a MySQL/MariaDB side (a target's own description). */
static const struct mig_table *my_table(const struct vside *s, const struct mig_table *t)
{
	const struct vside_table *sh = shape(s, t);
	return sh != NULL && sh->read != NULL ? sh->read : t;
}

const char *vside_refused(const struct vside *s, const struct mig_table *t)
{
	const struct vside_table *sh = shape(s, t);
	return sh != NULL ? sh->refused : NULL;
}

/* False with err when t's rows cannot be compared exactly (the caller should have asked). */
static bool comparable(const struct vside *s, const struct mig_table *t, struct err *err)
{
	const char *why = vside_refused(s, t);
	if (why != NULL)
		err_set(err, "%s.%s: %s", t->schema, t->name, why);
	return why == NULL;
}

static const char *qname(const struct vside *s, const struct mig_table *t)
{
	if (s->engine != ENGINE_POSTGRESQL)
		return s->target ? my_table(s, t)->qname : t->qname;
	return s->target ? t->tgt_qname : t->qname;
}

/* --- connections and positions --------------------------------------------------------- */

static const char *label(const struct vside *s)
{
	return s->target ? "target" : "source";
}

static bool is_pg(const struct vside *s)
{
	return s->engine == ENGINE_POSTGRESQL;
}

bool vside_ensure(struct vside *s, struct err *err)
{
	if (is_pg(s)) {
		if (s->pg.conn != NULL && !pgconn_is_broken(&s->pg))
			return true;
		pgconn_close(&s->pg);
		if (!pgconn_open(&s->pg, label(s), s->conninfo, err))
			return false;
		if (!pgconn_exec(&s->pg, vside_pg_settings, err)) {
			pgconn_close(&s->pg);
			return false;
		}
		return true;
	}
	if (s->my.db != NULL && !myconn_is_broken(&s->my))
		return true;
	myconn_close(&s->my);
	struct myconn_params p;
	if (!myconn_parse_dsn(s->conninfo, s->password, &p, err))
		return false;
	bool ok = myconn_open(&s->my, label(s), &p, err);
	myconn_params_free(&p);
	return ok;
}

void vside_close(struct vside *s)
{
	pgconn_close(&s->pg);
	myconn_close(&s->my);
	for (int i = 0; i < s->ntables; i++) {
		struct vside_table *sh = &s->tables[i];
		if (sh->read != NULL) {
			struct mig_tableset one = {1, sh->read};
			tableset_free(&one);
		}
		for (int c = 0; sh->expr != NULL && c < sh->of->ncols; c++)
			free(sh->expr[c]);
		free(sh->expr);
		free(sh->plain);
		free(sh->refused);
	}
	free(s->tables);
	s->tables = NULL;
	s->ntables = 0;
}

bool vside_is_broken(const struct vside *s)
{
	return is_pg(s) ? pgconn_is_broken(&s->pg) : myconn_is_broken(&s->my);
}

bool vside_position(struct vside *s, struct pos *at, struct err *err)
{
	if (is_pg(s)) {
		uint64_t lsn;
		if (!pgconn_current_lsn(&s->pg, &lsn, err))
			return false;
		*at = pos_from_lsn(lsn);
		return true;
	}
	bool gtid = s->engine == ENGINE_MARIADB; /* MySQL's GTID sets are not supported (pos.h) */
	struct pos end;
	char *text = NULL;
	for (int attempt = 0; text == NULL; attempt++) {
		char *g1 = NULL, *g2 = NULL;
		if (gtid &&
		    (g1 = myconn_query_value(&s->my, "SELECT @@gtid_binlog_pos", err)) == NULL)
			return false;
		if (!mycapture_binlog_end(&s->my, &end, err) ||
		    (gtid &&
		     (g2 = myconn_query_value(&s->my, "SELECT @@gtid_binlog_pos", err)) == NULL)) {
			free(g1);
			return false;
		}
		/* No commit between the two GTID reads: the coordinate is that GTID position's. */
		if (gtid && *g1 && strcmp(g1, g2) == 0)
			text = xasprintf("gtid:%s@%s:%llu", g1, end.file,
					 (unsigned long long)end.offset);
		else if (!gtid || *g1 == '\0' || attempt == 4) /* the coordinate alone */
			text =
			    xasprintf("binlog:%s:%llu", end.file, (unsigned long long)end.offset);
		free(g1);
		free(g2);
	}
	const char *perr = NULL;
	bool ok = pos_parse(text, at, &perr) && pos_scalar(at) != 0;
	if (!ok)
		err_set(err, "source: position %s: %s", text, perr ? perr : "no binlog coordinate");
	free(text);
	return ok;
}

/* --- PostgreSQL reads --------------------------------------------------------------------- */

static bool pg_count(struct vside *s, const struct mig_table *t, int64_t *rows, struct err *err)
{
	char *sql = xasprintf("SELECT count(*) FROM %s", qname(s, t));
	char *v = pgconn_query_value(&s->pg, sql, 0, NULL, err);
	free(sql);
	if (v == NULL)
		return false;
	*rows = atoll(v);
	free(v);
	return true;
}

/* ROW(columns)::text: record_out() calls each column's output function. */
static char *pg_record_expr(const struct mig_table *t)
{
	struct strbuf b = {0};
	for (int i = 0; i < t->ncols; i++) {
		char *id = pgconn_ident(t->cols[i].name);
		sb_addf(&b, "%s%s", i ? ", " : "ROW(", id);
		free(id);
	}
	sb_addf(&b, ")::text");
	return sb_take(&b);
}

/*
 * t with the column names of the side s reads: a target's ([tables]
 * columns) in *view (free with table_view_free(), also when unused).
 * Shapes stay looked up by t itself.
 */
static const struct mig_table *pg_names(const struct vside *s, const struct mig_table *t,
					struct mig_table *view)
{
	view->cols = NULL;
	if (!s->target)
		return t;
	*view = table_target_view(t);
	return view;
}

static char *pg_digest_sql(struct vside *s, const struct mig_table *t, const struct vsel *sel)
{
	struct mig_table tv;
	const struct mig_table *n = pg_names(s, t, &tv);
	char *row = s->digest == VDIGEST_PGROW
			? pg_record_expr(n)
			: row_expr(n, shape(s, t), digest_row_form(s->digest == VDIGEST_PGHASH));
	char *pred = pg_pred(n, sel);
	table_view_free(&tv);
	char *sql;
	if (s->digest != VDIGEST_MD5)
		sql = xasprintf("SELECT count(*), coalesce(sum(hashtextextended((%s) "
				"COLLATE \"C\", 0)), 0)::text FROM %s WHERE %s",
				row, qname(s, t), pred);
	else
		sql = xasprintf("SELECT count(*), coalesce(sum(('x' || substr(md5(convert_to(%s, "
				"'UTF8')), 1, 15))::bit(60)::bigint), 0)::text FROM %s WHERE %s",
				row, qname(s, t), pred);
	free(row);
	free(pred);
	return sql;
}

static bool pg_digest_result(struct vside *s, PGresult *r, struct vdigest *d, struct err *err)
{
	d->rows = atoll(PQgetvalue(r, 0, 0));
	bool ok = parse_u128(PQgetvalue(r, 0, 1), &d->sum);
	if (!ok)
		err_set(err, "%s: unexpected digest '%s'", label(s), PQgetvalue(r, 0, 1));
	return ok;
}

static bool pg_digest(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		      struct vdigest *d, struct err *err)
{
	char *sql = pg_digest_sql(s, t, sel);
	PGresult *r = pgconn_query(&s->pg, sql, 0, NULL, err);
	free(sql);
	if (r == NULL)
		return false;
	bool ok = pg_digest_result(s, r, d, err);
	PQclear(r);
	return ok;
}

static void pq_err(struct vside *s, const char *msg, struct err *err)
{
	err_set(err, "%s: %.*s", label(s), (int)strcspn(msg, "\n"), msg);
}

static bool pg_hashes(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		      void (*fn)(void *, const char *, const char *), void *arg, struct err *err)
{
	struct mig_table tv;
	const struct mig_table *n = pg_names(s, t, &tv);
	char *row = row_expr(n, shape(s, t), ROW_COPY), *key = vside_pg_key_expr(n),
	     *pred = pg_pred(n, sel);
	table_view_free(&tv);
	char *sql = xasprintf("SELECT %s, md5(convert_to(%s, 'UTF8')) FROM %s WHERE %s", key, row,
			      qname(s, t), pred);
	free(row);
	free(key);
	free(pred);
	PGresult *r = pgconn_query(&s->pg, sql, 0, NULL, err);
	free(sql);
	if (r == NULL)
		return false;
	for (int i = 0; i < PQntuples(r); i++)
		fn(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
	PQclear(r);
	return true;
}

static bool pg_row(struct vside *s, const struct mig_table *t, const char *key, struct vrow *out,
		   bool *found, struct err *err)
{
	struct strbuf b = {0};
	struct mig_table tv;
	const struct mig_table *n = pg_names(s, t, &tv);
	for (int i = 0; i < t->ncols; i++) {
		char *e =
		    s->legacy_detail ? legacy_column(&n->cols[i]) : pg_col_text(n, shape(s, t), i);
		sb_addf(&b, "%s%s", i ? ", " : "", e);
		free(e);
	}
	char *cols = sb_take(&b);
	char *where = keyrange_bound(n, key, "=");
	table_view_free(&tv);
	char *sql = xasprintf("SELECT %s FROM %s WHERE %s", cols, qname(s, t), where);
	free(where);
	free(cols);
	PGresult *r = pgconn_query(&s->pg, sql, 0, NULL, err);
	free(sql);
	if (r == NULL)
		return false;
	*found = PQntuples(r) > 0;
	if (*found) {
		out->n = t->ncols;
		out->val = xcalloc((size_t)t->ncols + 1, sizeof(char *));
		out->status = xcalloc((size_t)t->ncols + 1, sizeof(char *));
		for (int i = 0; i < t->ncols; i++)
			out->val[i] = PQgetisnull(r, 0, i) ? NULL : xstrdup(PQgetvalue(r, 0, i));
	}
	PQclear(r);
	return true;
}

/* Appends one value as "N" or "V<bytes>:<text>", "|" between values. */
static void query_value(struct strbuf *b, int f, const char *v, size_t len)
{
	if (v == NULL)
		sb_addf(b, "%sN", f ? "|" : "");
	else
		sb_addf(b, "%sV%zu:%.*s", f ? "|" : "", len, (int)len, v);
}

static bool pg_query(struct vside *s, const char *sql, int max_rows, char ***rows, int *n,
		     struct err *err)
{
	PGresult *r = pgconn_query(&s->pg, sql, 0, NULL, err);
	if (r == NULL)
		return false;
	if (PQntuples(r) > max_rows) {
		err_set(err, "%s: the query returned %d rows; at most %d are compared", label(s),
			PQntuples(r), max_rows);
		PQclear(r);
		return false;
	}
	*n = PQntuples(r);
	*rows = xcalloc((size_t)*n + 1, sizeof(char *));
	for (int i = 0; i < *n; i++) {
		struct strbuf b = {0};
		for (int f = 0; f < PQnfields(r); f++)
			query_value(&b, f, PQgetisnull(r, i, f) ? NULL : PQgetvalue(r, i, f),
				    (size_t)PQgetlength(r, i, f));
		(*rows)[i] = sb_take(&b);
	}
	PQclear(r);
	return true;
}

/* --- MySQL/MariaDB reads --------------------------------------------------------------------- */

static bool my_open(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		    struct mysnap_rows **r, struct err *err)
{
	if (sel->by_keys)
		return mysnap_rows_open_keys(&s->my, t, sel->keys, sel->nkeys, r, err);
	return mysnap_rows_open(&s->my, t, sel->lo, sel->hi, r, err);
}

/*
 * Each row of sel as its COPY line (newline dropped), or with digest_form
 * its digest text, and its tuple, to each(); false with err when reading
 * fails.
 */
static bool my_each(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		    bool digest_form,
		    void (*each)(void *arg, const struct mig_table *t,
				 const struct change_tuple *row, const char *line, size_t len),
		    void *arg, struct err *err)
{
	if (sel->by_keys && sel->nkeys == 0)
		return true;
	bool *plain = xcalloc((size_t)t->ncols + 1, sizeof(bool));
	for (int i = 0; i < t->ncols; i++)
		plain[i] = col_plain(t, shape(s, t), i);
	t = my_table(s, t);
	struct mysnap_rows *r;
	if (!my_open(s, t, sel, &r, err)) {
		free(plain);
		return false;
	}
	struct change_buf b = {0};
	bool ok = false;
	for (;;) {
		struct binlog_image im;
		enum mysnap_next nx = mysnap_rows_next(r, &im, err);
		if (nx == MYSNAP_END) {
			ok = true;
			break;
		}
		if (nx != MYSNAP_ROW)
			break;
		b.len = 0;
		if (digest_form ? !vside_digest_text(&b, &im.tuple, plain)
				: !mysnap_copy_line(&b, &im.tuple)) {
			err_set(err, "BUG: %s.%s: a snapshot row with an absent value", t->schema,
				t->name);
			break;
		}
		each(arg, t, &im.tuple, (const char *)b.data, b.len - !digest_form);
	}
	change_buf_free(&b);
	mysnap_rows_close(r);
	free(plain);
	return ok;
}

struct digest_each {
	struct vdigest *d;
	enum vdigest_kind kind;
};

static void digest_each(void *arg, const struct mig_table *t, const struct change_tuple *row,
			const char *line, size_t len)
{
	struct digest_each *de = arg;
	vdigest_add_kind(de->d, de->kind, line, len);
}

struct hash_each {
	void (*fn)(void *, const char *, const char *);
	void *arg;
};

static void hash_each(void *arg, const struct mig_table *t, const struct change_tuple *row,
		      const char *line, size_t len)
{
	struct hash_each *h = arg;
	uint8_t d[16];
	char hex[33];
	md5_buf(line, len, d);
	md5_hex(d, hex);
	char *key = mysnap_tuple_key(t, row);
	h->fn(h->arg, key, hex);
	free(key);
}

static bool my_row(struct vside *s, const struct mig_table *t, const char *key, struct vrow *out,
		   bool *found, struct err *err)
{
	char *keys[] = {(char *)key};
	struct mysnap_rows *r;
	t = my_table(s, t);
	if (!mysnap_rows_open_keys(&s->my, t, keys, 1, &r, err))
		return false;
	struct binlog_image im;
	enum mysnap_next nx = mysnap_rows_next(r, &im, err);
	*found = nx == MYSNAP_ROW;
	if (*found) {
		out->n = t->ncols;
		out->val = xcalloc((size_t)t->ncols + 1, sizeof(char *));
		out->status = xcalloc((size_t)t->ncols + 1, sizeof(char *));
		for (int i = 0; i < t->ncols && i < im.tuple.ncols; i++) {
			const struct change_value *v = &im.tuple.vals[i];
			if (v->kind == CHV_TEXT)
				out->val[i] = xasprintf("%.*s", (int)v->len, v->data);
			if (im.status[i] != BINLOG_VAL_OK)
				out->status[i] = binlog_value_status_name(im.status[i]);
		}
	}
	mysnap_rows_close(r);
	return nx != MYSNAP_ERROR;
}

static bool my_query(struct vside *s, const char *sql, int max_rows, char ***rows, int *n,
		     struct err *err)
{
	if (mysql_real_query(s->my.db, sql, strlen(sql)) != 0) {
		myconn_set_error(&s->my, "query", err);
		return false;
	}
	MYSQL_RES *r = mysql_use_result(s->my.db);
	if (r == NULL) {
		if (mysql_field_count(s->my.db) == 0)
			err_set(err, "%s: the query returned no result set", label(s));
		else
			myconn_set_error(&s->my, "query", err);
		return false;
	}
	unsigned nf = mysql_num_fields(r);
	int cap = 16;
	*n = 0;
	*rows = xcalloc((size_t)cap + 1, sizeof(char *));
	MYSQL_ROW row;
	bool ok = true;
	while (ok && (row = mysql_fetch_row(r)) != NULL) {
		if (*n == max_rows) {
			err_set(err,
				"%s: the query returned more than %d rows; at most %d are "
				"compared",
				label(s), max_rows, max_rows);
			ok = false;
			break;
		}
		unsigned long *len = mysql_fetch_lengths(r);
		struct strbuf b = {0};
		for (unsigned f = 0; f < nf; f++)
			query_value(&b, (int)f, row[f], len[f]);
		if (*n == cap) {
			cap *= 2;
			*rows = xrealloc(*rows, ((size_t)cap + 1) * sizeof(char *));
		}
		(*rows)[(*n)++] = sb_take(&b);
	}
	if (ok && mysql_errno(s->my.db) != 0) {
		myconn_set_error(&s->my, "reading the query's rows", err);
		ok = false;
	}
	mysql_free_result(r); /* drains the rest */
	if (!ok) {
		for (int i = 0; i < *n; i++)
			free((*rows)[i]);
		free(*rows);
		*rows = NULL;
		*n = 0;
	}
	return ok;
}

/* --- the API ----------------------------------------------------------------------------- */

bool vside_count(struct vside *s, const struct mig_table *t, int64_t *rows, struct err *err)
{
	if (is_pg(s))
		return pg_count(s, t, rows, err);
	char *sql = xasprintf("SELECT COUNT(*) FROM %s", qname(s, t));
	char *v = myconn_query_value(&s->my, sql, err);
	free(sql);
	if (v == NULL)
		return false;
	*rows = atoll(v);
	free(v);
	return true;
}

bool vside_digest(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		  struct vdigest *d, struct err *err)
{
	*d = (struct vdigest){0};
	if (!comparable(s, t, err))
		return false;
	if (is_pg(s))
		return pg_digest(s, t, sel, d, err);
	struct digest_each de = {d, s->digest};
	return my_each(s, t, sel, true, digest_each, &de, err);
}

bool vside_digest_send(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		       struct err *err)
{
	if (!is_pg(s))
		return true; /* _recv() reads (and refuses what cannot be compared) */
	if (!comparable(s, t, err))
		return false;
	char *sql = pg_digest_sql(s, t, sel);
	bool ok = PQsendQuery(s->pg.conn, sql) == 1;
	free(sql);
	if (!ok)
		pq_err(s, PQerrorMessage(s->pg.conn), err);
	return ok;
}

bool vside_digest_recv(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		       struct vdigest *d, struct err *err)
{
	*d = (struct vdigest){0};
	if (!is_pg(s))
		return vside_digest(s, t, sel, d, err);
	bool ok = false, got = false;
	PGresult *r;
	while ((r = PQgetResult(s->pg.conn)) != NULL) { /* one result, then NULL */
		if (!got && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			ok = pg_digest_result(s, r, d, err);
		else if (!got)
			pq_err(s,
			       PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
							  : PQerrorMessage(s->pg.conn),
			       err);
		got = true;
		PQclear(r);
	}
	if (!got)
		pq_err(s, PQerrorMessage(s->pg.conn), err);
	return ok;
}

bool vside_digest_ready(struct vside *s)
{
	if (!is_pg(s))
		return true;
	/* a failed read is _recv()'s to report */
	return PQconsumeInput(s->pg.conn) == 0 || PQisBusy(s->pg.conn) == 0;
}

bool vside_probe_pghash(struct vside *s, bool *ok, struct err *err)
{
	*ok = true;
	if (!is_pg(s))
		return true;
	char *enc =
	    pgconn_query_value(&s->pg, "SELECT current_setting('server_encoding')", 0, NULL, err);
	if (enc == NULL)
		return false;
	*ok = strcmp(enc, "UTF8") == 0;
	free(enc);
	/*
	 * Prefixes of every length up to 24 bytes (each tail length after 0, 1
	 * and 2 whole 12-byte blocks) and the whole text (UTF-8), in one query:
	 * a text[] of them (no quote or backslash inside), hashed in order.
	 */
	static const char text[] = "migd probes hashtextextended: \xc3\xa9\xe2\x98\x83";
	enum { NPROBE = 26 };
	size_t len[NPROBE];
	struct strbuf b = {0};
	for (int i = 0; i < NPROBE; i++) {
		len[i] = i < NPROBE - 1 ? (size_t)i : sizeof(text) - 1;
		sb_addf(&b, "%s\"%.*s\"", i ? "," : "{", (int)len[i], text);
	}
	sb_addf(&b, "}");
	char *arr = sb_take(&b);
	const char *params[] = {arr};
	PGresult *r = pgconn_query(&s->pg,
				   "SELECT hashtextextended(p COLLATE \"C\", 0) "
				   "FROM unnest($1::text[]) WITH ORDINALITY AS u(p, i) ORDER BY i",
				   1, params, err);
	free(arr);
	if (r == NULL)
		return false;
	*ok = *ok && PQntuples(r) == NPROBE;
	for (int i = 0; *ok && i < NPROBE; i++)
		*ok = strtoll(PQgetvalue(r, i, 0), NULL, 10) == (int64_t)vside_pghash(text, len[i]);
	PQclear(r);
	return true;
}

bool vside_hashes(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		  void (*fn)(void *arg, const char *key, const char *md5), void *arg,
		  struct err *err)
{
	if (!comparable(s, t, err))
		return false;
	if (is_pg(s))
		return pg_hashes(s, t, sel, fn, arg, err);
	struct hash_each h = {fn, arg};
	return my_each(s, t, sel, false, hash_each, &h, err);
}

bool vside_row(struct vside *s, const struct mig_table *t, const char *key, struct vrow *out,
	       bool *found, struct err *err)
{
	*out = (struct vrow){0};
	*found = false;
	return is_pg(s) ? pg_row(s, t, key, out, found, err) : my_row(s, t, key, out, found, err);
}

void vrow_free(struct vrow *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->val[i]);
	free(r->val);
	free((void *)r->status);
	*r = (struct vrow){0};
}

bool vside_query(struct vside *s, const char *sql, int max_rows, char ***rows, int *n,
		 struct err *err)
{
	*rows = NULL;
	*n = 0;
	return is_pg(s) ? pg_query(s, sql, max_rows, rows, n, err)
			: my_query(s, sql, max_rows, rows, n, err);
}
