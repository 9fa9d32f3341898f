/* mytext: PostgreSQL text -> MariaDB literals (see mytext.h). */
#include "mytext.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- buffer ------------------------------------------------------------------ */

void mytext_buf_add(struct mytext_buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void mytext_buf_adds(struct mytext_buf *b, const char *s)
{
	mytext_buf_add(b, s, strlen(s));
}

void mytext_buf_addc(struct mytext_buf *b, char c)
{
	mytext_buf_add(b, &c, 1);
}

void mytext_buf_reset(struct mytext_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void mytext_buf_free(struct mytext_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static void buf_printf(struct mytext_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void buf_printf(struct mytext_buf *b, const char *fmt, ...)
{
	char tmp[96];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	mytext_buf_add(b, tmp, n < 0 ? 0 : (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* --- column types ------------------------------------------------------------ */

static bool is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

void mytext_col_init(struct mytext_col *c, const char *data_type, const char *column_type,
		     uint64_t char_max, uint64_t octet_max, unsigned num_precision,
		     unsigned num_scale, unsigned datetime_precision)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->type, sizeof(c->type), "%s", column_type ? column_type : data_type);
	c->is_unsigned = column_type != NULL && strstr(column_type, "unsigned") != NULL;
	c->fsp = (uint8_t)(datetime_precision > 6 ? 6 : datetime_precision);
	const char *t = data_type;
	static const struct {
		const char *name;
		uint8_t bytes;
	} ints[] = {{"tinyint", 1}, {"smallint", 2}, {"mediumint", 3},
		    {"int", 4},	    {"integer", 4},  {"bigint", 8}};
	for (size_t i = 0; i < ARRAY_LEN(ints); i++)
		if (is(t, ints[i].name)) {
			c->kind = MYT_INT;
			c->int_bytes = ints[i].bytes;
			return;
		}
	if (is(t, "decimal") || is(t, "numeric")) {
		c->kind = MYT_DECIMAL;
		c->precision = (uint8_t)(num_precision > 65 ? 65 : num_precision);
		c->scale = (uint8_t)(num_scale > 38 ? 38 : num_scale);
	} else if (is(t, "float")) {
		c->kind = MYT_FLOAT;
	} else if (is(t, "double") || is(t, "real") || is(t, "double precision")) {
		c->kind = MYT_DOUBLE;
	} else if (is(t, "bit")) {
		c->kind = MYT_BIT;
		c->precision = (uint8_t)(num_precision > 64 ? 64 : num_precision);
	} else if (is(t, "year")) {
		c->kind = MYT_YEAR;
	} else if (is(t, "date")) {
		c->kind = MYT_DATE;
	} else if (is(t, "datetime")) {
		c->kind = MYT_DATETIME;
	} else if (is(t, "timestamp")) {
		c->kind = MYT_TIMESTAMP;
	} else if (is(t, "time")) {
		c->kind = MYT_TIME;
	} else if (is(t, "char") || is(t, "varchar")) {
		c->kind = MYT_CHAR;
		c->max_chars = char_max;
	} else if (is(t, "tinytext") || is(t, "text") || is(t, "mediumtext") || is(t, "longtext")) {
		c->kind = MYT_CHAR;
		c->max_bytes = octet_max; /* the TEXT family counts bytes */
	} else if (is(t, "enum") || is(t, "set") || is(t, "json")) {
		c->kind = MYT_CHAR; /* members and JSON validity: the server checks */
	} else if (is(t, "binary") || is(t, "varbinary") || is(t, "tinyblob") || is(t, "blob") ||
		   is(t, "mediumblob") || is(t, "longblob")) {
		c->kind = MYT_BINARY;
		c->max_bytes = octet_max;
	} else if (is(t, "uuid")) {
		c->kind = MYT_UUID;
	} else if (is(t, "inet6")) {
		c->kind = MYT_INET6;
	} else if (is(t, "inet4")) {
		c->kind = MYT_INET4;
	} else {
		c->kind = MYT_UNSUPPORTED;
	}
}

/* --- helpers ------------------------------------------------------------------ */

/* The value for a message: at most 40 bytes, non-printable bytes as \xNN. */
static const char *shown(const char *v, size_t len, char buf[200])
{
	size_t o = 0;
	for (size_t i = 0; i < len && i < 40; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, 5, "\\x%02x", ch);
	}
	if (len > 40) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

#define SHOW(v, len) shown(v, len, (char[200]){0})

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool eq(const char *v, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(v, lit, len) == 0;
}

/* Reads at most max digits at v[*i]; false if there are none (or more than max). */
static bool digits(const char *v, size_t len, size_t *i, int max, int64_t *out, int *n)
{
	int64_t x = 0;
	int k = 0;
	while (*i < len && is_digit(v[*i])) {
		if (++k > max)
			return false;
		x = x * 10 + (v[*i] - '0');
		(*i)++;
	}
	*out = x;
	if (n)
		*n = k;
	return k > 0;
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* --- numbers ------------------------------------------------------------------- */

static bool conv_int(const struct mytext_col *c, const char *v, size_t len, struct mytext_buf *out,
		     struct err *err)
{
	if (eq(v, len, "t") || eq(v, len, "f")) { /* boolean */
		mytext_buf_adds(out, v[0] == 't' ? "1" : "0");
		return true;
	}
	size_t i = 0;
	bool neg = i < len && v[i] == '-';
	i += neg;
	if (i == len) {
		err_set(err, "'%s' is not an integer", SHOW(v, len));
		return false;
	}
	uint64_t mag = 0;
	bool over = false;
	for (; i < len; i++) {
		if (!is_digit(v[i])) {
			err_set(err, "'%s' is not an integer", SHOW(v, len));
			return false;
		}
		unsigned d = (unsigned)(v[i] - '0');
		if (mag > (UINT64_MAX - d) / 10)
			over = true;
		else
			mag = mag * 10 + d;
	}
	unsigned bits = c->int_bytes * 8u;
	uint64_t max_pos = c->is_unsigned ? (bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1)
					  : (UINT64_C(1) << (bits - 1)) - 1;
	uint64_t max_neg = c->is_unsigned ? 0 : UINT64_C(1) << (bits - 1);
	if (over || (neg ? mag > max_neg : mag > max_pos)) {
		err_set(err, "%s is out of range for %s", SHOW(v, len), c->type);
		return false;
	}
	if (neg && mag == 0)
		mytext_buf_adds(out, "0");
	else
		mytext_buf_add(out, v, len);
	return true;
}

static bool is_nan_inf(const char *v, size_t len)
{
	return eq(v, len, "NaN") || eq(v, len, "Infinity") || eq(v, len, "-Infinity");
}

static bool conv_decimal(const struct mytext_col *c, const char *v, size_t len,
			 struct mytext_buf *out, struct err *err)
{
	if (is_nan_inf(v, len)) {
		err_set(err, "%s has no %s value", SHOW(v, len), c->type);
		return false;
	}
	if (eq(v, len, "t") || eq(v, len, "f")) {
		mytext_buf_adds(out, v[0] == 't' ? "1" : "0");
		return true;
	}
	size_t i = 0;
	bool neg = i < len && v[i] == '-';
	i += neg;
	size_t int_start = i;
	while (i < len && is_digit(v[i]))
		i++;
	size_t int_end = i, frac_start = i, frac_end = i;
	if (i < len && v[i] == '.') {
		frac_start = ++i;
		while (i < len && is_digit(v[i]))
			i++;
		frac_end = i;
		if (frac_end == frac_start)
			i = len + 1; /* "1." */
	}
	if (i != len || int_end == int_start) {
		err_set(err, "'%s' is not a decimal number", SHOW(v, len));
		return false;
	}
	size_t lead = int_start;
	while (lead < int_end && v[lead] == '0')
		lead++;
	size_t int_digits = int_end - lead;
	bool nonzero = int_digits > 0;
	for (size_t k = frac_start; k < frac_end; k++)
		nonzero |= v[k] != '0';
	if (int_digits > (size_t)(c->precision - c->scale) || (neg && nonzero && c->is_unsigned)) {
		err_set(err, "%s is out of range for %s", SHOW(v, len), c->type);
		return false;
	}
	for (size_t k = frac_start + c->scale; k < frac_end; k++)
		if (v[k] != '0') {
			err_set(err, "%s has more than %u fractional digits (%s would round it)",
				SHOW(v, len), c->scale, c->type);
			return false;
		}
	size_t keep = frac_end - frac_start > c->scale ? frac_start + c->scale : frac_end;
	if (keep == frac_start && frac_start != frac_end)
		keep = frac_start - 1;	       /* drop the point as well */
	size_t from = neg && !nonzero ? 1 : 0; /* no negative zero */
	mytext_buf_add(out, v + from, keep - from);
	return true;
}

static bool conv_float(const struct mytext_col *c, const char *v, size_t len,
		       struct mytext_buf *out, struct err *err)
{
	if (is_nan_inf(v, len)) {
		err_set(err, "%s has no MariaDB %s value", SHOW(v, len), c->type);
		return false;
	}
	/* [-]digits[.digits][e[+-]digits]: what float4out/float8out/numeric_out print */
	size_t i = 0;
	i += i < len && v[i] == '-';
	size_t d0 = i;
	while (i < len && is_digit(v[i]))
		i++;
	bool ok = i > d0;
	if (ok && i < len && v[i] == '.') {
		size_t f0 = ++i;
		while (i < len && is_digit(v[i]))
			i++;
		ok = i > f0;
	}
	if (ok && i < len && (v[i] == 'e' || v[i] == 'E')) {
		i++;
		i += i < len && (v[i] == '+' || v[i] == '-');
		size_t e0 = i;
		while (i < len && is_digit(v[i]))
			i++;
		ok = i > e0;
	}
	if (!ok || i != len) {
		err_set(err, "'%s' is not a number", SHOW(v, len));
		return false;
	}
	if (len > 400) {
		err_set(err, "a number of %zu digits does not fit %s", len, c->type);
		return false;
	}
	char tmp[401];
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	if (c->kind == MYT_DOUBLE) {
		if (isinf(strtod(tmp, NULL))) {
			err_set(err, "%s is out of range for %s", SHOW(v, len), c->type);
			return false;
		}
		mytext_buf_add(out, v, len);
		return true;
	}
	/*
	 * FLOAT: MariaDB parses the literal as a double, rounds that to float
	 * (two roundings where PostgreSQL's float4in does one) and refuses
	 * anything above FLT_MAX as a double -- even "3.4028235e+38", which is
	 * how PostgreSQL prints FLT_MAX.  So round once here and write the
	 * float's exact value, which survives both.
	 */
	float f = strtof(tmp, NULL);
	if (isinf(f)) {
		err_set(err, "%s is out of range for %s", SHOW(v, len), c->type);
		return false;
	}
	if (f == 0 && strtod(tmp, NULL) != 0) {
		err_set(err, "%s is too small for %s (it would become 0)", SHOW(v, len), c->type);
		return false;
	}
	buf_printf(out, "%.17g", (double)f);
	return true;
}

static bool conv_bit(const struct mytext_col *c, const char *v, size_t len, struct mytext_buf *out,
		     struct err *err)
{
	if (eq(v, len, "t") || eq(v, len, "f")) {
		mytext_buf_adds(out, v[0] == 't' ? "b'1'" : "b'0'");
		return true;
	}
	for (size_t i = 0; i < len; i++)
		if (v[i] != '0' && v[i] != '1') {
			err_set(err, "'%s' is not a bit string", SHOW(v, len));
			return false;
		}
	if (len == 0 || len > c->precision) {
		err_set(err, "a bit string of %zu bits does not fit %s", len, c->type);
		return false;
	}
	mytext_buf_adds(out, "b'");
	mytext_buf_add(out, v, len);
	mytext_buf_addc(out, '\'');
	return true;
}

static bool conv_year(const struct mytext_col *c, const char *v, size_t len, struct mytext_buf *out,
		      struct err *err)
{
	size_t i = 0;
	int64_t y;
	if (!digits(v, len, &i, 4, &y, NULL) || i != len) {
		err_set(err, "'%s' is not a year", SHOW(v, len));
		return false;
	}
	if (y != 0 && (y < 1901 || y > 2155)) { /* 1-99 would be read as 19xx/20xx */
		err_set(err, "%s is out of range for %s (0 or 1901-2155)", SHOW(v, len), c->type);
		return false;
	}
	buf_printf(out, "%d", (int)y);
	return true;
}

/* --- dates and times ------------------------------------------------------------ */

struct ts {
	int64_t y;
	int mo, d, h, mi, s;
	int64_t usec;
	int frac_digits; /* significant (nonzero-ended) digits of the fraction */
};

static bool bad_date(const char *v, size_t len, const char *what, struct err *err)
{
	if (eq(v, len, "infinity") || eq(v, len, "-infinity"))
		err_set(err, "%s has no MariaDB value", SHOW(v, len));
	else if (len >= 3 && memcmp(v + len - 3, " BC", 3) == 0)
		err_set(err, "'%s': dates before the Common Era have no MariaDB value",
			SHOW(v, len));
	else
		err_set(err, "'%s' is not a %s", SHOW(v, len), what);
	return false;
}

/* YYYY-MM-DD at v[*i] (year 4 to 6 digits), checked for a real calendar day. */
static bool parse_date(const char *v, size_t len, size_t *i, struct ts *t)
{
	int64_t mo, d;
	int n;
	if (!digits(v, len, i, 6, &t->y, &n) || n < 4 || *i >= len || v[(*i)++] != '-' ||
	    !digits(v, len, i, 2, &mo, &n) || n != 2 || *i >= len || v[(*i)++] != '-' ||
	    !digits(v, len, i, 2, &d, &n) || n != 2)
		return false;
	t->mo = (int)mo;
	t->d = (int)d;
	return mo >= 1 && mo <= 12 && d >= 1 && d <= days_in_month(t->y, t->mo);
}

/* .ffffff at v[*i] (optional): microseconds, and how many digits matter. */
static bool parse_frac(const char *v, size_t len, size_t *i, struct ts *t)
{
	t->usec = 0;
	t->frac_digits = 0;
	if (*i >= len || v[*i] != '.')
		return true;
	(*i)++;
	int n = 0;
	while (*i < len && is_digit(v[*i])) {
		if (n >= 6) /* PostgreSQL keeps microseconds: more digits are not its text */
			return false;
		t->usec = t->usec * 10 + (v[*i] - '0');
		if (v[*i] != '0')
			t->frac_digits = n + 1;
		n++;
		(*i)++;
	}
	for (int k = n; k < 6; k++)
		t->usec *= 10;
	return n > 0;
}

static bool frac_fits(const struct mytext_col *c, const struct ts *t, const char *v, size_t len,
		      struct err *err)
{
	if (t->frac_digits <= c->fsp)
		return true;
	err_set(err, "'%s' has %d fractional second digits, %s keeps %u (MariaDB would cut them)",
		SHOW(v, len), t->frac_digits, c->type, c->fsp);
	return false;
}

static void put_frac(struct mytext_buf *out, int64_t usec)
{
	if (usec)
		buf_printf(out, ".%06d", (int)usec);
}

static bool conv_date(const struct mytext_col *c, const char *v, size_t len, struct mytext_buf *out,
		      struct err *err)
{
	struct ts t;
	size_t i = 0;
	if (!parse_date(v, len, &i, &t) || i != len)
		return bad_date(v, len, "date", err);
	if (t.y < 1000 || t.y > 9999) {
		err_set(err, "%s: year %lld is outside %s's 1000-9999", SHOW(v, len),
			(long long)t.y, c->type);
		return false;
	}
	buf_printf(out, "'%04d-%02d-%02d'", (int)t.y, t.mo, t.d);
	return true;
}

/*
 * "YYYY-MM-DD[ HH:MM:SS[.f]][offset]", offset "+HH", "+HH:MM" or
 * "+HH:MM:SS" (timestamptz prints seconds for zones with odd offsets).
 */
static bool conv_datetime(const struct mytext_col *c, const char *v, size_t len,
			  struct mytext_buf *out, struct err *err)
{
	struct ts t = {0};
	size_t i = 0;
	int64_t h = 0, mi = 0, s = 0;
	int n;
	if (!parse_date(v, len, &i, &t))
		return bad_date(v, len, "timestamp", err);
	if (i < len && (v[i] == ' ' || v[i] == 'T')) {
		i++;
		if (!digits(v, len, &i, 2, &h, &n) || n != 2 || i >= len || v[i++] != ':' ||
		    !digits(v, len, &i, 2, &mi, &n) || n != 2 || i >= len || v[i++] != ':' ||
		    !digits(v, len, &i, 2, &s, &n) || n != 2 || !parse_frac(v, len, &i, &t) ||
		    h > 23 || mi > 59 || s > 59)
			return bad_date(v, len, "timestamp", err);
	}
	int64_t off = 0; /* seconds east of UTC */
	if (i < len && (v[i] == '+' || v[i] == '-')) {
		int sign = v[i++] == '-' ? -1 : 1;
		int64_t oh, om = 0, os = 0;
		if (!digits(v, len, &i, 2, &oh, &n) || n != 2)
			return bad_date(v, len, "timestamp", err);
		if (i < len && v[i] == ':' &&
		    (++i, !digits(v, len, &i, 2, &om, &n) || n != 2 || om > 59))
			return bad_date(v, len, "timestamp", err);
		if (i < len && v[i] == ':' &&
		    (++i, !digits(v, len, &i, 2, &os, &n) || n != 2 || os > 59))
			return bad_date(v, len, "timestamp", err);
		off = sign * (oh * 3600 + om * 60 + os);
	}
	if (i != len)
		return bad_date(v, len, "timestamp", err);
	if (!frac_fits(c, &t, v, len, err))
		return false;
	int64_t secs = days_from_civil(t.y, t.mo, t.d) * 86400 + h * 3600 + mi * 60 + s - off;
	if (c->kind == MYT_TIMESTAMP && (secs < 1 || secs > INT32_MAX)) {
		err_set(err,
			"%s is outside %s's range (1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC)",
			SHOW(v, len), c->type);
		return false;
	}
	int64_t day = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	int64_t sod = secs - day * 86400;
	civil_from_days(day, &t.y, &t.mo, &t.d);
	if (t.y < 1000 || t.y > 9999) {
		err_set(err, "%s: year %lld is outside %s's 1000-9999", SHOW(v, len),
			(long long)t.y, c->type);
		return false;
	}
	buf_printf(out, "'%04d-%02d-%02d %02d:%02d:%02d", (int)t.y, t.mo, t.d, (int)(sod / 3600),
		   (int)(sod / 60 % 60), (int)(sod % 60));
	put_frac(out, t.usec);
	mytext_buf_addc(out, '\'');
	return true;
}

/* An optional sign at v[*i]: -1 or 1. */
static int parse_sign(const char *v, size_t len, size_t *i)
{
	if (*i < len && (v[*i] == '-' || v[*i] == '+'))
		return v[(*i)++] == '-' ? -1 : 1;
	return 1;
}

/*
 * interval text (IntervalStyle postgres) -> TIME: "[-]H:MM:SS[.f]",
 * "N day(s)", "N day(s) [+-]H:MM:SS[.f]".  Months and years have no
 * fixed length: refused.
 */
static bool conv_time(const struct mytext_col *c, const char *v, size_t len, struct mytext_buf *out,
		      struct err *err)
{
	struct ts t = {0};
	size_t i = 0;
	int64_t days = 0, h = 0, mi = 0, s = 0;
	int n;
	bool any = false;
	if (memmem(v, len, "mon", 3) || memmem(v, len, "year", 4)) {
		err_set(err, "interval '%s' has months or years: no TIME value", SHOW(v, len));
		return false;
	}
	/* days part */
	size_t save = i;
	int dsign = parse_sign(v, len, &i);
	if (digits(v, len, &i, 6, &days, NULL) && i < len && v[i] == ' ') {
		i++;
		if (len - i >= 3 && memcmp(v + i, "day", 3) == 0) {
			i += 3;
			i += i < len && v[i] == 's';
			days *= dsign;
			any = true;
			if (i < len && v[i] == ' ')
				i++;
			else if (i != len)
				goto bad;
		} else {
			goto bad;
		}
	} else {
		i = save;
		days = 0;
	}
	/* time part */
	int tsign = 1;
	if (i < len) {
		tsign = parse_sign(v, len, &i);
		if (!digits(v, len, &i, 9, &h, &n) || i >= len || v[i++] != ':' ||
		    !digits(v, len, &i, 2, &mi, &n) || n != 2 || i >= len || v[i++] != ':' ||
		    !digits(v, len, &i, 2, &s, &n) || n != 2 || !parse_frac(v, len, &i, &t) ||
		    mi > 59 || s > 59)
			goto bad;
		any = true;
	}
	if (!any || i != len)
		goto bad;
	if (!frac_fits(c, &t, v, len, err))
		return false;
	/* in microseconds; at most 6 digits of days keep this far from overflow */
	int64_t us = days * 86400 * INT64_C(1000000) +
		     tsign * ((h * 3600 + mi * 60 + s) * INT64_C(1000000) + t.usec);
	const int64_t max = (838 * 3600 + 59 * 60 + 59) * INT64_C(1000000) + 999999;
	if (us > max || us < -max) {
		err_set(err, "interval '%s' is outside %s's range (+-838:59:59.999999)",
			SHOW(v, len), c->type);
		return false;
	}
	int64_t a = us < 0 ? -us : us;
	int64_t sec = a / 1000000;
	buf_printf(out, "'%s%02d:%02d:%02d", us < 0 ? "-" : "", (int)(sec / 3600),
		   (int)(sec / 60 % 60), (int)(sec % 60));
	put_frac(out, a % 1000000);
	mytext_buf_addc(out, '\'');
	return true;
bad:
	err_set(err, "'%s' is not an interval of hours, minutes and seconds", SHOW(v, len));
	return false;
}

/* --- text and bytes ----------------------------------------------------------------- */

bool mytext_utf8_valid(const char *s, size_t len, size_t *nchars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;
	for (size_t i = 0; i < len; n++) {
		unsigned char b = p[i];
		int extra;
		uint32_t cp, min;
		if (b < 0x80) {
			i++;
			continue;
		} else if ((b & 0xe0) == 0xc0) {
			extra = 1, cp = b & 0x1f, min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			extra = 2, cp = b & 0x0f, min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			extra = 3, cp = b & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i <= (size_t)extra)
			return false;
		for (int k = 1; k <= extra; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += (size_t)extra + 1;
	}
	if (nchars)
		*nchars = n;
	return true;
}

void mytext_quote(struct mytext_buf *out, const char *s, size_t len)
{
	mytext_buf_addc(out, '\'');
	size_t run = 0; /* bytes copied as they are, flushed in one piece */
	for (size_t i = 0; i < len; i++) {
		const char *esc = NULL;
		switch (s[i]) {
		case '\0':
			esc = "\\0";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\'':
			esc = "\\'";
			break;
		case '"':
			esc = "\\\"";
			break;
		case '\032':
			esc = "\\Z";
			break;
		default:
			run++;
			continue;
		}
		mytext_buf_add(out, s + i - run, run);
		run = 0;
		mytext_buf_add(out, esc, 2);
	}
	mytext_buf_add(out, s + len - run, run);
	mytext_buf_addc(out, '\'');
}

static bool conv_char(const struct mytext_col *c, const char *v, size_t len, struct mytext_buf *out,
		      struct err *err)
{
	size_t nchars;
	if (!mytext_utf8_valid(v, len, &nchars)) {
		err_set(err, "'%s' is not valid UTF-8", SHOW(v, len));
		return false;
	}
	if (c->max_chars && nchars > c->max_chars) {
		err_set(err, "text of %zu characters is longer than %s", nchars, c->type);
		return false;
	}
	if (c->max_bytes && len > c->max_bytes) {
		err_set(err, "text of %zu bytes is longer than %s (%llu bytes)", len, c->type,
			(unsigned long long)c->max_bytes);
		return false;
	}
	mytext_quote(out, v, len);
	return true;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static bool is_bytea_hex(const char *v, size_t len)
{
	if (len < 2 || v[0] != '\\' || v[1] != 'x' || len % 2 != 0)
		return false;
	for (size_t i = 2; i < len; i++)
		if (hexval(v[i]) < 0)
			return false;
	return true;
}

#define OID_BYTEA 17

static bool conv_binary(const struct mytext_col *c, uint32_t src_oid, const char *v, size_t len,
			struct mytext_buf *out, struct err *err)
{
	bool hex = src_oid == OID_BYTEA || (src_oid == 0 && is_bytea_hex(v, len));
	if (hex && !is_bytea_hex(v, len)) {
		err_set(err, "bytea '%s' is not in hex format (bytea_output = hex)", SHOW(v, len));
		return false;
	}
	size_t nbytes = hex ? (len - 2) / 2 : len;
	if (c->max_bytes && nbytes > c->max_bytes) {
		err_set(err, "%zu bytes are longer than %s", nbytes, c->type);
		return false;
	}
	mytext_buf_adds(out, "X'");
	if (hex) {
		mytext_buf_add(out, v + 2, len - 2);
	} else {
		static const char xd[] = "0123456789abcdef";
		for (size_t i = 0; i < len; i++) {
			char two[2] = {xd[(unsigned char)v[i] >> 4], xd[(unsigned char)v[i] & 15]};
			mytext_buf_add(out, two, 2);
		}
	}
	mytext_buf_addc(out, '\'');
	return true;
}

static bool conv_addr(const struct mytext_col *c, const char *v, size_t len, struct mytext_buf *out,
		      struct err *err)
{
	const char *allowed =
	    c->kind == MYT_UUID ? "0123456789abcdefABCDEF-{}" : "0123456789abcdefABCDEF:.";
	for (size_t i = 0; i < len; i++)
		if (v[i] == '\0' || !strchr(allowed, v[i])) {
			if (v[i] == '/')
				err_set(err, "'%s' is a network, %s holds one address",
					SHOW(v, len), c->type);
			else
				err_set(err, "'%s' is not a %s value", SHOW(v, len), c->type);
			return false;
		}
	/*
	 * MariaDB 10.11's INET6 refuses IPv4 text ("Incorrect inet6 value"); it
	 * holds an IPv4 address as IPv4-mapped, which is what PostgreSQL prints
	 * for one that came from an INET6 (docs/type-mapping.md).
	 */
	if (c->kind == MYT_INET6 && len > 0 && memchr(v, ':', len) == NULL) {
		struct mytext_buf a = {0};
		mytext_buf_adds(&a, "::ffff:");
		mytext_buf_add(&a, v, len);
		mytext_quote(out, a.data, a.len);
		mytext_buf_free(&a);
		return true;
	}
	mytext_quote(out, v, len);
	return true;
}

/* --- geometry, ENUM and SET ---------------------------------------------------------------- */

bool mytext_col_geometry(struct mytext_col *c)
{
	static const char *const kinds[] = {
	    "geometry",	  "point",	     "linestring",   "polygon",
	    "multipoint", "multilinestring", "multipolygon", "geometrycollection"};
	if (c->kind != MYT_UNSUPPORTED)
		return c->kind == MYT_GEOMETRY;
	for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
		if (is(c->type, kinds[i])) {
			c->kind = MYT_GEOMETRY;
			return true;
		}
	return false;
}

static bool conv_geometry(const struct mytext_col *c, const char *v, size_t len,
			  struct mytext_buf *out, struct err *err)
{
	if (!is_bytea_hex(v, len) || len < 2 + 2 * 9) { /* SRID and the shortest WKB header */
		err_set(err, "'%s' is not MariaDB's stored form of a %s (bytea hex)", SHOW(v, len),
			c->type);
		return false;
	}
	mytext_buf_adds(out, "X'");
	mytext_buf_add(out, v + 2, len - 2);
	mytext_buf_addc(out, '\'');
	return true;
}

/*
 * The next member of a COLUMN_TYPE list at *p ("'a','it''s')"), unquoted
 * into m; false at the end.
 */
static bool next_member(const char **p, struct mytext_buf *m)
{
	mytext_buf_reset(m);
	while (**p == ',' || **p == ' ')
		(*p)++;
	if (**p != '\'')
		return false;
	for ((*p)++; **p; (*p)++) {
		if (**p == '\'' && (*p)[1] == '\'')
			(*p)++;
		else if (**p == '\'')
			break;
		mytext_buf_addc(m, **p);
	}
	if (**p == '\'')
		(*p)++;
	return true;
}

bool mytext_member_check(const char *column_type, const char *v, size_t len, struct err *err)
{
	bool is_set = strncmp(column_type, "set(", 4) == 0;
	const char *p = strchr(column_type, '(');
	if (p == NULL || (!is_set && strncmp(column_type, "enum(", 5) != 0)) {
		err_set(err, "BUG: %s is neither ENUM nor SET", column_type);
		return false;
	}
	p++;
	struct mytext_buf m = {0};
	size_t at = 0; /* SET: how much of v the members so far account for */
	bool ok = false, first = true;
	if (is_set && len == 0)
		ok = true;
	while (!ok && next_member(&p, &m)) {
		if (!is_set) {
			ok = m.len == len && memcmp(m.data, v, len) == 0;
			continue;
		}
		/* definition order: each member of v must come next, after a ',' */
		size_t need = m.len + (first ? 0 : 1);
		if (at + need > len || (!first && v[at] != ',') ||
		    memcmp(v + at + (first ? 0 : 1), m.data, m.len) != 0 ||
		    (at + need < len && v[at + need] != ','))
			continue;
		at += need;
		first = false;
		ok = at == len;
	}
	mytext_buf_free(&m);
	if (!ok) {
		if (!is_set && len == 0)
			err_set(err, "'' (ENUM's error value) has no literal in strict mode");
		else
			err_set(err, "'%s' is not %s of %.80s%s", SHOW(v, len),
				is_set ? "a set of members, in definition order," : "a member",
				column_type, strlen(column_type) > 80 ? "..." : "");
	}
	return ok;
}

/* --- COPY text ----------------------------------------------------------------------------- */

static int octval(char ch)
{
	return ch >= '0' && ch <= '7' ? ch - '0' : -1;
}

/* The byte a backslash and ch stand for in COPY text (\b \f \n \r \t \v), or -1. */
static int copy_escape(char ch)
{
	static const char from[] = "bfnrtv", to[] = "\b\f\n\r\t\v";
	const char *p = ch ? strchr(from, ch) : NULL;
	return p ? to[p - from] : -1;
}

/* Unescapes the COPY field s[0..n) into o (at most n bytes); returns the end written. */
static char *copy_unescape(const char *s, size_t n, char *o)
{
	for (size_t k = 0; k < n; k++) {
		if (s[k] != '\\' || k + 1 == n) {
			*o++ = s[k];
			continue;
		}
		char ch = s[++k];
		int x = copy_escape(ch);
		if (x >= 0) {
			*o++ = (char)x;
		} else if (ch == 'x' && k + 1 < n && hexval(s[k + 1]) >= 0) {
			x = hexval(s[++k]);
			if (k + 1 < n && hexval(s[k + 1]) >= 0)
				x = x * 16 + hexval(s[++k]);
			*o++ = (char)x;
		} else if (octval(ch) >= 0) {
			x = octval(ch);
			for (int d = 0; d < 2 && k + 1 < n && octval(s[k + 1]) >= 0; d++)
				x = x * 8 + octval(s[++k]);
			*o++ = (char)x;
		} else {
			*o++ = ch;
		}
	}
	return o;
}

int mytext_copy_split(const char *line, size_t len, struct change_value *vals, int n,
		      struct mytext_buf *scratch)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	/* Unescaping never grows a field: room for all of it, so scratch never moves below. */
	mytext_buf_reset(scratch);
	if (scratch->cap < len + 1) {
		scratch->data = xrealloc(scratch->data, len + 1);
		scratch->cap = len + 1;
	}
	int nf = 0;
	for (size_t i = 0;; i++) { /* i: the start of a field, then the tab after it */
		const char *f = line + i;
		bool esc = false;
		for (; i < len && line[i] != '\t'; i++)
			esc |= line[i] == '\\';
		uint32_t flen = (uint32_t)(line + i - f);
		if (nf < n && flen == 2 && f[0] == '\\' && f[1] == 'N') {
			vals[nf] = (struct change_value){.kind = CHV_NULL};
		} else if (nf < n && !esc) {
			vals[nf] = (struct change_value){.kind = CHV_TEXT, .len = flen, .data = f};
		} else if (nf < n) {
			char *o = scratch->data + scratch->len;
			char *end = copy_unescape(f, flen, o);
			vals[nf] = (struct change_value){
			    .kind = CHV_TEXT, .len = (uint32_t)(end - o), .data = o};
			scratch->len += (size_t)(end - o);
		}
		nf++;
		if (i >= len)
			return nf;
	}
}

/* --- dispatch -------------------------------------------------------------------------- */

bool mytext_literal(const struct mytext_col *c, uint32_t src_oid, const char *v, size_t len,
		    struct mytext_buf *out, struct err *err)
{
	size_t mark = out->len;
	bool ok = false;
	switch (c->kind) {
	case MYT_INT:
		ok = conv_int(c, v, len, out, err);
		break;
	case MYT_DECIMAL:
		ok = conv_decimal(c, v, len, out, err);
		break;
	case MYT_FLOAT:
	case MYT_DOUBLE:
		ok = conv_float(c, v, len, out, err);
		break;
	case MYT_BIT:
		ok = conv_bit(c, v, len, out, err);
		break;
	case MYT_YEAR:
		ok = conv_year(c, v, len, out, err);
		break;
	case MYT_DATE:
		ok = conv_date(c, v, len, out, err);
		break;
	case MYT_DATETIME:
	case MYT_TIMESTAMP:
		ok = conv_datetime(c, v, len, out, err);
		break;
	case MYT_TIME:
		ok = conv_time(c, v, len, out, err);
		break;
	case MYT_CHAR:
		ok = conv_char(c, v, len, out, err);
		break;
	case MYT_BINARY:
		ok = conv_binary(c, src_oid, v, len, out, err);
		break;
	case MYT_UUID:
	case MYT_INET6:
	case MYT_INET4:
		ok = conv_addr(c, v, len, out, err);
		break;
	case MYT_GEOMETRY:
		ok = conv_geometry(c, v, len, out, err);
		break;
	case MYT_UNSUPPORTED:
		err_set(err, "column type %s is not supported by the MariaDB sink", c->type);
		break;
	}
	if (!ok) {
		out->len = mark;
		if (out->data)
			out->data[mark] = '\0';
	}
	return ok;
}

bool mytext_value(const struct mytext_col *c, uint32_t src_oid, const struct change_value *v,
		  struct mytext_buf *out, struct err *err)
{
	switch (v->kind) {
	case CHV_NULL:
		mytext_buf_adds(out, "NULL");
		return true;
	case CHV_TEXT:
		return mytext_literal(c, src_oid, v->data, v->len, out, err);
	case CHV_BAD: /* the source reader could not render it: its reason */
		err_set(err, "%.*s", (int)(v->len < 400 ? v->len : 400), v->data);
		return false;
	default:
		err_set(err, "BUG: an unchanged (TOAST) value has no literal");
		return false;
	}
}
