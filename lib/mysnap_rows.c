/*
 * mysnap_rows: a key range's rows from a MySQL/MariaDB source in the
 * binary protocol, each value rendered as the binlog decoder renders it
 * (see mysnap.h).
 *
 * Wire facts this relies on (libmariadb 3.3, MariaDB 10.11, checked with a
 * probe): a prepared statement's rows come one MYSQL_STMT fetch at a time
 * unless mysql_stmt_store_result() is called (we never do); integers bound
 * as LONGLONG keep their sign by the field's UNSIGNED_FLAG; TIME arrives
 * as a MYSQL_TIME with days folded into hours (-838:59:59 is hour 838,
 * neg 1); DATETIME/TIMESTAMP as MYSQL_TIME in the session's time zone; a
 * zero date as all fields 0; BIT(n) as (n+7)/8 big-endian bytes; DECIMAL
 * as its text with exactly scale fraction digits; YEAR as a number, 0 for
 * the zero year; CAST(x AS BINARY) as the stored bytes; CAST(uuid AS
 * BINARY(16)) as the 16 bytes in text order and CAST(inet6 AS BINARY(16))
 * in network order.  A value longer than its bind buffer makes the fetch
 * return MYSQL_DATA_TRUNCATED with the real length; mysql_stmt_fetch_column
 * then reads it whole into a buffer grown for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mymeta.h"
#include "mysnap_int.h"
#include "mytypes.h"
#include "util.h"

/* How a value travels and which renderer it takes. */
enum kind {
	K_INT,
	K_YEAR,
	K_FLOAT,
	K_DOUBLE,
	K_DECIMAL,
	K_DATE,
	K_TIME,
	K_DATETIME,
	K_TIMESTAMP,
	K_BIT,
	K_TEXT,
	K_BYTES,
	K_UUID,
	K_INET6,
	K_INET4,
};

struct slot {
	int col; /* index into t->cols */
	enum kind kind;
	bool is_unsigned;	/* K_INT */
	enum binlog_charset cs; /* K_TEXT */
	unsigned bits;		/* K_BIT */
	int scale;		/* K_DECIMAL */
	union {
		int64_t i;
		float f;
		double d;
		MYSQL_TIME tm;
	} v;
	uint8_t *var; /* owned; variable-length kinds */
	unsigned long cap, len;
	my_bool is_null, error;
};

struct mysnap_rows {
	struct myconn *c;	   /* borrowed */
	const struct mig_table *t; /* borrowed */
	MYSQL_STMT *stmt;	   /* owned */
	int n;			   /* columns read */
	struct slot *slot;	   /* owned, n */
	MYSQL_BIND *bind;	   /* owned, n */
	struct change_buf buf;	   /* rendered values */
	struct change_value *vals; /* owned, n */
	uint8_t *status;	   /* owned, n */
	size_t *off;		   /* owned, n: value offsets into buf while rendering */
};

static bool is_var(enum kind k)
{
	return k == K_DECIMAL || k >= K_BIT;
}

static void stmt_error(struct mysnap_rows *r, const char *what, struct err *err)
{
	unsigned no = mysql_stmt_errno(r->stmt);
	const char *msg = mysql_stmt_error(r->stmt);
	err_set(err, "%s: %s: %s (errno %u)", r->c->label, what,
		msg && *msg ? msg : "unknown error", no);
	/* as myconn_set_error(): client errors and a killed or shut-down server end the link */
	if (no >= 2000 || no == 1053 || no == 1927 || no == 1152)
		r->c->broken = true;
}

/* The slot's kind from the result field and the mapped column; NULL or why they disagree. */
static const char *slot_kind(struct slot *s, const MYSQL_FIELD *f, const struct mig_column *c)
{
	uint32_t oid = c->type_oid;
	switch (f->type) {
	case MYSQL_TYPE_TINY:
	case MYSQL_TYPE_SHORT:
	case MYSQL_TYPE_INT24:
	case MYSQL_TYPE_LONG:
	case MYSQL_TYPE_LONGLONG:
		s->kind = K_INT;
		s->is_unsigned = (f->flags & UNSIGNED_FLAG) != 0;
		return oid == MYMETA_OID_INT2 || oid == MYMETA_OID_INT4 || oid == MYMETA_OID_INT8 ||
			       oid == MYMETA_OID_NUMERIC
			   ? NULL
			   : "an integer";
	case MYSQL_TYPE_YEAR:
		s->kind = K_YEAR;
		return oid == MYMETA_OID_INT2 ? NULL : "a YEAR";
	case MYSQL_TYPE_FLOAT:
		s->kind = K_FLOAT;
		return oid == MYMETA_OID_FLOAT4 ? NULL : "a FLOAT";
	case MYSQL_TYPE_DOUBLE:
		s->kind = K_DOUBLE;
		return oid == MYMETA_OID_FLOAT8 ? NULL : "a DOUBLE";
	case MYSQL_TYPE_NEWDECIMAL:
		s->kind = K_DECIMAL;
		s->scale = (int)f->decimals;
		return oid == MYMETA_OID_NUMERIC ? NULL : "a DECIMAL";
	case MYSQL_TYPE_DATE:
	case MYSQL_TYPE_NEWDATE:
		s->kind = K_DATE;
		return oid == MYMETA_OID_DATE ? NULL : "a DATE";
	case MYSQL_TYPE_TIME:
		s->kind = K_TIME;
		return oid == MYMETA_OID_INTERVAL ? NULL : "a TIME";
	case MYSQL_TYPE_DATETIME:
		s->kind = K_DATETIME;
		return oid == MYMETA_OID_TIMESTAMP ? NULL : "a DATETIME";
	case MYSQL_TYPE_TIMESTAMP:
		s->kind = K_TIMESTAMP;
		return oid == MYMETA_OID_TIMESTAMPTZ ? NULL : "a TIMESTAMP";
	case MYSQL_TYPE_BIT:
		s->kind = K_BIT;
		s->bits = (unsigned)f->length;
		return oid == MYMETA_OID_BIT && s->bits >= 1 && s->bits <= 64 ? NULL : "a BIT";
	case MYSQL_TYPE_STRING:
	case MYSQL_TYPE_VAR_STRING:
	case MYSQL_TYPE_VARCHAR:
	case MYSQL_TYPE_TINY_BLOB:
	case MYSQL_TYPE_BLOB:
	case MYSQL_TYPE_MEDIUM_BLOB:
	case MYSQL_TYPE_LONG_BLOB:
	case MYSQL_TYPE_GEOMETRY:
	case MYSQL_TYPE_JSON: /* MySQL 8 sends its JSON text (untested: no MySQL here) */
		if (c->src_ext == BINLOG_EXT_UUID) {
			s->kind = K_UUID;
			return oid == MYMETA_OID_UUID ? NULL : "a UUID";
		}
		if (c->src_ext == BINLOG_EXT_INET6 || c->src_ext == BINLOG_EXT_INET4) {
			s->kind = c->src_ext == BINLOG_EXT_INET6 ? K_INET6 : K_INET4;
			return oid == MYMETA_OID_INET ? NULL : "an INET6/INET4";
		}
		if (oid == MYMETA_OID_TEXT || oid == MYMETA_OID_VARCHAR || oid == MYMETA_OID_JSON) {
			s->kind = K_TEXT;
			s->cs = binlog_collation_charset(c->src_collation);
			return s->cs == BINLOG_CS_UTF8MB4 || s->cs == BINLOG_CS_UTF8MB3 ||
				       s->cs == BINLOG_CS_LATIN1 || s->cs == BINLOG_CS_ASCII
				   ? NULL
				   : "text in an unsupported character set";
		}
		s->kind = K_BYTES;
		return oid == MYMETA_OID_BYTEA ? NULL : "a string";
	default:
		return "of a type this reader does not know";
	}
}

static void bind_slot(MYSQL_BIND *b, struct slot *s, enum enum_field_types ftype)
{
	memset(b, 0, sizeof(*b));
	b->is_null = &s->is_null;
	b->error = &s->error;
	b->length = &s->len;
	switch (s->kind) {
	case K_INT:
	case K_YEAR:
		b->buffer_type = MYSQL_TYPE_LONGLONG;
		b->buffer = &s->v.i;
		b->is_unsigned = s->kind == K_YEAR || s->is_unsigned;
		return;
	case K_FLOAT:
		b->buffer_type = MYSQL_TYPE_FLOAT;
		b->buffer = &s->v.f;
		return;
	case K_DOUBLE:
		b->buffer_type = MYSQL_TYPE_DOUBLE;
		b->buffer = &s->v.d;
		return;
	case K_DATE:
	case K_TIME:
	case K_DATETIME:
	case K_TIMESTAMP:
		b->buffer_type = ftype;
		b->buffer = &s->v.tm;
		b->buffer_length = sizeof(s->v.tm);
		return;
	default:
		if (s->var == NULL) {
			s->cap = 256;
			s->var = xmalloc(s->cap);
		}
		b->buffer_type = MYSQL_TYPE_BLOB; /* the bytes as sent, no terminator */
		b->buffer = s->var;
		b->buffer_length = s->cap;
		return;
	}
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Renders slot s's value into r->buf; false with err when the wire form is not understood. */
static bool render(struct mysnap_rows *r, const struct slot *s, enum binlog_value_status *st,
		   struct err *err)
{
	struct change_buf *b = &r->buf;
	const MYSQL_TIME *tm = &s->v.tm;
	*st = BINLOG_VAL_OK;
	switch (s->kind) {
	case K_INT:
		if (s->is_unsigned)
			mytypes_uint(b, (uint64_t)s->v.i);
		else
			mytypes_int(b, s->v.i);
		return true;
	case K_YEAR:
		*st = mytypes_year(b, (unsigned)s->v.i);
		return true;
	case K_FLOAT:
		mytypes_float(b, s->v.f, true);
		return true;
	case K_DOUBLE:
		mytypes_float(b, s->v.d, false);
		return true;
	case K_DECIMAL: {
		const char *p = (const char *)s->var, *end = p + s->len;
		bool neg = p < end && *p == '-';
		p += neg;
		const char *dot = memchr(p, '.', (size_t)(end - p));
		const char *ie = dot ? dot : end, *f = dot ? dot + 1 : end;
		if (mytypes_decimal(b, neg, p, (size_t)(ie - p), f, (size_t)(end - f), s->scale))
			return true;
		err_set(err, "DECIMAL text '%.*s' not understood", (int)s->len,
			(const char *)s->var);
		return false;
	}
	case K_DATE:
		*st = mytypes_date(b, tm->year, tm->month, tm->day);
		return true;
	case K_TIME:
		*st = mytypes_time(b, tm->neg, tm->day * 24 + tm->hour, tm->minute, tm->second,
				   (uint32_t)tm->second_part);
		return true;
	case K_DATETIME:
		*st = mytypes_datetime(b, tm->year, tm->month, tm->day, tm->hour, tm->minute,
				       tm->second, (uint32_t)tm->second_part);
		return true;
	case K_TIMESTAMP: {
		int64_t secs = 0;
		if (tm->year || tm->month || tm->day)
			secs = days_from_civil(tm->year, tm->month, tm->day) * 86400 +
			       tm->hour * 3600 + tm->minute * 60 + tm->second;
		if (secs < 0 || secs > UINT32_MAX) {
			err_set(err, "TIMESTAMP %04u-%02u-%02u out of range", tm->year, tm->month,
				tm->day);
			return false;
		}
		*st = mytypes_timestamp(b, (uint32_t)secs, (uint32_t)tm->second_part);
		return true;
	}
	case K_BIT:
		mytypes_bits(b, s->var, s->len, s->bits);
		return true;
	case K_TEXT:
		*st = mytypes_text(b, s->cs, s->var, s->len);
		return true;
	case K_BYTES:
		mytypes_bytea(b, s->var, s->len, 0);
		return true;
	case K_UUID:
	case K_INET6:
	case K_INET4:
		if (s->len != (s->kind == K_INET4 ? 4u : 16u)) {
			err_set(err, "UUID/INET value of %lu bytes", s->len);
			return false;
		}
		if (s->kind == K_UUID)
			mytypes_uuid(b, s->var);
		else if (s->kind == K_INET6)
			mytypes_inet6(b, s->var);
		else
			mytypes_inet4(b, s->var);
		return true;
	}
	return false;
}

bool mysnap_rows_start(struct myconn *c, const struct mig_table *t, const char *sql, int n,
		       const int *cols, struct mysnap_rows **out, struct err *err)
{
	*out = NULL;
	if (c->db == NULL) {
		err_set(err, "%s: not connected", c->label);
		return false;
	}
	struct mysnap_rows *r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->t = t;
	r->n = n;
	r->slot = xcalloc((size_t)n + 1, sizeof(*r->slot));
	r->bind = xcalloc((size_t)n + 1, sizeof(*r->bind));
	r->vals = xcalloc((size_t)n + 1, sizeof(*r->vals));
	r->status = xcalloc((size_t)n + 1, 1);
	r->off = xcalloc((size_t)n + 1, sizeof(size_t));
	r->stmt = mysql_stmt_init(c->db);
	if (r->stmt == NULL) {
		myconn_set_error(c, "cannot create a statement", err);
		mysnap_rows_close(r);
		return false;
	}
	if (mysql_stmt_prepare(r->stmt, sql, strlen(sql)) != 0) {
		stmt_error(r, "reading rows", err);
		mysnap_rows_close(r);
		return false;
	}
	MYSQL_RES *md = mysql_stmt_result_metadata(r->stmt);
	if (md == NULL || mysql_num_fields(md) != (unsigned)n) {
		err_set(err, "BUG: %s.%s: the row query returns no or other columns", t->schema,
			t->name);
		if (md != NULL)
			mysql_free_result(md);
		mysnap_rows_close(r);
		return false;
	}
	MYSQL_FIELD *f = mysql_fetch_fields(md);
	for (int i = 0; i < n; i++) {
		const struct mig_column *col = &t->cols[cols[i]];
		r->slot[i].col = cols[i];
		const char *why = slot_kind(&r->slot[i], &f[i], col);
		if (why != NULL) {
			err_set(err,
				"%s.%s: column %s is now %s on the source, not %s (%s): the schema "
				"changed since the tables were loaded",
				t->schema, t->name, col->name, why,
				col->src_type ? col->src_type : "?", col->type);
			mysql_free_result(md);
			mysnap_rows_close(r);
			return false;
		}
		bind_slot(&r->bind[i], &r->slot[i], f[i].type);
	}
	mysql_free_result(md);
	if (mysql_stmt_execute(r->stmt) != 0) {
		stmt_error(r, "reading rows", err);
		mysnap_rows_close(r);
		return false;
	}
	if (mysql_stmt_bind_result(r->stmt, r->bind) != 0) {
		stmt_error(r, "binding rows", err);
		mysnap_rows_close(r);
		return false;
	}
	*out = r;
	return true;
}

/* Every column of t's rows that pred (MariaDB syntax; taken over) selects. */
static bool rows_where(struct myconn *c, const struct mig_table *t, char *pred,
		       struct mysnap_rows **out, struct err *err)
{
	int *cols = xcalloc((size_t)t->ncols + 1, sizeof(int));
	struct strbuf b = {0};
	for (int i = 0; i < t->ncols; i++) {
		char *e = mysnap_select_expr(&t->cols[i]);
		sb_addf(&b, "%s%s", i ? ", " : "", e);
		free(e);
		cols[i] = i;
	}
	char *list = sb_take(&b);
	char *sql = xasprintf("SELECT %s FROM %s WHERE %s", list, t->qname, pred);
	bool ok = mysnap_rows_start(c, t, sql, t->ncols, cols, out, err);
	free(sql);
	free(list);
	free(pred);
	free(cols);
	return ok;
}

bool mysnap_rows_open(struct myconn *c, const struct mig_table *t, const char *lo, const char *hi,
		      struct mysnap_rows **out, struct err *err)
{
	*out = NULL;
	char *pred = mysnap_range_pred(t, lo, hi);
	if (pred == NULL) {
		err_set(err, "%s.%s: chunk bounds %s .. %s do not match the key's types", t->schema,
			t->name, lo ? lo : "(open)", hi ? hi : "(open)");
		return false;
	}
	return rows_where(c, t, pred, out, err);
}

bool mysnap_rows_open_keys(struct myconn *c, const struct mig_table *t, char *const *keys, size_t n,
			   struct mysnap_rows **out, struct err *err)
{
	*out = NULL;
	char *pred = t->nkey > 0 ? mysnap_keys_pred(t, keys, n) : NULL;
	if (pred == NULL) {
		err_set(err, "%s.%s: %s", t->schema, t->name,
			t->nkey ? "a key to read does not match the key's types"
				: "a table without a key cannot be read by key");
		return false;
	}
	return rows_where(c, t, pred, out, err);
}

enum mysnap_next mysnap_rows_next(struct mysnap_rows *r, struct binlog_image *row, struct err *err)
{
	int rc = mysql_stmt_fetch(r->stmt);
	if (rc == MYSQL_NO_DATA)
		return MYSNAP_END;
	if (rc == 1) {
		stmt_error(r, "reading rows", err);
		return MYSNAP_ERROR;
	}
	if (rc == MYSQL_DATA_TRUNCATED) {
		/* values longer than their buffers: grow and read them again, whole */
		bool rebind = false;
		for (int i = 0; i < r->n; i++) {
			struct slot *s = &r->slot[i];
			if (!s->error || s->is_null)
				continue;
			if (!is_var(s->kind) || s->len <= s->cap) {
				err_set(err, "BUG: %s.%s: column %s does not fit its buffer",
					r->t->schema, r->t->name, r->t->cols[s->col].name);
				return MYSNAP_ERROR;
			}
			s->cap = s->len;
			s->var = xrealloc(s->var, s->cap);
			r->bind[i].buffer = s->var;
			r->bind[i].buffer_length = s->cap;
			if (mysql_stmt_fetch_column(r->stmt, &r->bind[i], (unsigned)i, 0) != 0) {
				stmt_error(r, "reading a long value", err);
				return MYSNAP_ERROR;
			}
			s->error = 0;
			rebind = true;
		}
		if (rebind && mysql_stmt_bind_result(r->stmt, r->bind) != 0) {
			stmt_error(r, "binding rows", err);
			return MYSNAP_ERROR;
		}
	}
	change_buf_reset(&r->buf);
	row->nbad = 0;
	row->first_bad = 0;
	for (int i = 0; i < r->n; i++) {
		struct slot *s = &r->slot[i];
		enum binlog_value_status st = BINLOG_VAL_OK;
		r->off[i] = r->buf.len;
		if (s->is_null) {
			r->vals[i].kind = CHV_NULL;
		} else {
			r->vals[i].kind = CHV_TEXT;
			if (!render(r, s, &st, err)) {
				err_prefix(err, "%s.%s: column %s", r->t->schema, r->t->name,
					   r->t->cols[s->col].name);
				return MYSNAP_ERROR;
			}
		}
		r->status[i] = (uint8_t)st;
		if (st != BINLOG_VAL_OK && row->nbad++ == 0)
			row->first_bad = (uint32_t)i;
	}
	for (int i = 0; i < r->n; i++) {
		size_t end = i + 1 < r->n ? r->off[i + 1] : r->buf.len;
		r->vals[i].data =
		    r->vals[i].kind == CHV_TEXT ? (const char *)r->buf.data + r->off[i] : NULL;
		r->vals[i].len = r->vals[i].kind == CHV_TEXT ? (uint32_t)(end - r->off[i]) : 0;
	}
	row->tuple.ncols = (uint16_t)r->n;
	row->tuple.vals = r->vals;
	row->status = r->status;
	return MYSNAP_ROW;
}

void mysnap_rows_close(struct mysnap_rows *r)
{
	if (r == NULL)
		return;
	/* closing reads what is left of the result; if that fails the link is unusable */
	if (r->stmt != NULL && mysql_stmt_close(r->stmt) != 0)
		r->c->broken = true;
	for (int i = 0; i < r->n; i++)
		free(r->slot[i].var);
	free(r->slot);
	free(r->bind);
	free(r->vals);
	free(r->status);
	free(r->off);
	change_buf_free(&r->buf);
	free(r);
}
