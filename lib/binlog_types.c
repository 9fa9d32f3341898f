/*
 * binlog_types: one binlog row value to PostgreSQL text; see binlog_rows.h
 * for the renderings and the statuses.
 *
 * Value formats, from MySQL's and MariaDB's Field::pack()/unpack() and
 * the binlog readers (sql/field.cc, sql/compat56.cc, strings/decimal.c,
 * mysqlbinlog's log_event_print_value()), checked against MariaDB 10.11
 * (tests/tools/mycapture_fixtures.c).  LE/BE: little/big-endian.
 *
 *   TINY SHORT INT24 LONG LONGLONG  1 2 3 4 8 bytes LE, two's complement
 *   YEAR        1 byte: 0, or year - 1900
 *   FLOAT DOUBLE  4 / 8 bytes LE IEEE 754
 *   NEWDECIMAL  (precision p, scale s) groups of 9 digits in 4 bytes BE,
 *               a leading partial group of (p-s)%9 and a trailing one of
 *               s%9 digits in {0,1,1,2,2,3,3,4,4,4}[digits] bytes; the
 *               first byte's top bit flipped; negatives: every byte inverted
 *   DATE NEWDATE 3 bytes LE: day (5 bits) | month (4) << 5 | year << 9
 *   TIME        3 bytes LE signed: [-](H*10000 + M*100 + S)
 *   DATETIME    8 bytes LE: YYYYMMDDhhmmss as a decimal number
 *   TIMESTAMP   4 bytes LE: seconds since the Unix epoch (0 = zero value)
 *   TIME2       3 bytes BE - 0x800000: sign, hour (10 bits), minute (6),
 *               second (6); then the fraction, fsp 1-2: 1 byte (1/100 s),
 *               3-4: 2 bytes BE (1/10000 s), 5-6: 3 bytes BE (1/1e6 s);
 *               negative values store intpart-1 and frac = base - fraction
 *               (fsp 5-6: the 6 bytes are one number - 0x800000000000)
 *   DATETIME2   5 bytes BE - 0x8000000000: year*13+month (17 bits) << 22 |
 *               day << 17 | hour << 12 | minute << 6 | second; fraction as TIME2
 *   TIMESTAMP2  4 bytes BE seconds; fraction as TIME2
 *   BIT(n)      (n+7)/8 bytes BE
 *   ENUM SET    pack_len bytes LE: index (1-based) / member bitmask
 *   STRING      1 byte length (2 bytes LE when max_len > 255) + bytes;
 *               trailing pad stripped (spaces, or 0x00 for binary)
 *   VARCHAR     1 byte length (2 LE when max_len > 255) + bytes
 *   BLOB GEOMETRY JSON  len_bytes LE length + bytes (GEOMETRY: SRID (4 LE)
 *               + WKB; JSON: MySQL's binary JSON, rendered by myjson.c)
 */
#include "binlog_rows.h"
#include "myjson.h"
#include "mytypes.h"

#include "util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- output helpers ------------------------------------------------------------ */

static void out_str(struct change_buf *b, const char *s)
{
	change_buf_put(b, s, strlen(s));
}

static void out_char(struct change_buf *b, char c)
{
	change_buf_reserve(b, 1);
	b->data[b->len++] = (uint8_t)c;
}

static void out_fmt(struct change_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_fmt(struct change_buf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	change_buf_put(b, tmp, n < 0 ? 0 : (size_t)n);
}

/* bytea hex output: \x then two lowercase digits per byte */
static void out_bytea(struct change_buf *b, const uint8_t *p, size_t n, size_t pad_to)
{
	static const char hex[] = "0123456789abcdef";
	size_t total = n > pad_to ? n : pad_to;
	change_buf_reserve(b, 2 + 2 * total);
	b->data[b->len++] = '\\';
	b->data[b->len++] = 'x';
	for (size_t i = 0; i < total; i++) {
		uint8_t v = i < n ? p[i] : 0;
		b->data[b->len++] = (uint8_t)hex[v >> 4];
		b->data[b->len++] = (uint8_t)hex[v & 15];
	}
}

/* --- byte readers -------------------------------------------------------------- */

static uint64_t le_uint(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t be_uint(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* --- character sets -------------------------------------------------------------- */

struct coll_range {
	uint16_t lo, hi;
	uint8_t cs; /* enum binlog_charset */
};

/*
 * From MariaDB 10.11's information_schema.COLLATION_CHARACTER_SET_APPLICABILITY
 * (every id of these five character sets), plus MySQL 8's ids that MariaDB
 * does not use: 76 utf8mb3_tolower_ci and 255-323 utf8mb4_*_0900_*.
 */
static const struct coll_range coll_ranges[] = {
    {5, 5, BINLOG_CS_LATIN1},	     {8, 8, BINLOG_CS_LATIN1},
    {11, 11, BINLOG_CS_ASCII},	     {15, 15, BINLOG_CS_LATIN1},
    {31, 31, BINLOG_CS_LATIN1},	     {33, 33, BINLOG_CS_UTF8MB3},
    {45, 46, BINLOG_CS_UTF8MB4},     {47, 49, BINLOG_CS_LATIN1},
    {63, 63, BINLOG_CS_BINARY},	     {65, 65, BINLOG_CS_ASCII},
    {76, 76, BINLOG_CS_UTF8MB3},     {83, 83, BINLOG_CS_UTF8MB3},
    {94, 94, BINLOG_CS_LATIN1},	     {192, 215, BINLOG_CS_UTF8MB3},
    {223, 223, BINLOG_CS_UTF8MB3},   {224, 247, BINLOG_CS_UTF8MB4},
    {255, 323, BINLOG_CS_UTF8MB4},   {576, 578, BINLOG_CS_UTF8MB3},
    {608, 610, BINLOG_CS_UTF8MB4},   {1032, 1032, BINLOG_CS_LATIN1},
    {1035, 1035, BINLOG_CS_ASCII},   {1057, 1057, BINLOG_CS_UTF8MB3},
    {1069, 1070, BINLOG_CS_UTF8MB4}, {1071, 1071, BINLOG_CS_LATIN1},
    {1089, 1089, BINLOG_CS_ASCII},   {1107, 1107, BINLOG_CS_UTF8MB3},
    {1216, 1216, BINLOG_CS_UTF8MB3}, {1238, 1238, BINLOG_CS_UTF8MB3},
    {1248, 1248, BINLOG_CS_UTF8MB4}, {1270, 1270, BINLOG_CS_UTF8MB4},
    {2048, 2215, BINLOG_CS_UTF8MB3}, {2232, 2247, BINLOG_CS_UTF8MB3},
    {2304, 2471, BINLOG_CS_UTF8MB4}, {2488, 2503, BINLOG_CS_UTF8MB4},
};

enum binlog_charset binlog_collation_charset(uint32_t collation)
{
	if (collation == 0)
		return BINLOG_CS_NONE;
	for (size_t i = 0; i < ARRAY_LEN(coll_ranges); i++)
		if (collation >= coll_ranges[i].lo && collation <= coll_ranges[i].hi)
			return (enum binlog_charset)coll_ranges[i].cs;
	return BINLOG_CS_OTHER;
}

/*
 * MySQL's latin1 is Windows-1252 with the five bytes cp1252 leaves
 * undefined mapped to the C1 controls (strings/ctype-latin1.c); checked
 * with CONVERT(_latin1 X'80..9F' USING utf8mb4) on MariaDB 10.11.
 */
static const uint16_t latin1_80_9f[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

static void out_utf8_cp(struct change_buf *b, uint32_t cp)
{
	if (cp < 0x80) {
		out_char(b, (char)cp);
	} else if (cp < 0x800) {
		out_char(b, (char)(0xC0 | cp >> 6));
		out_char(b, (char)(0x80 | (cp & 0x3F)));
	} else {
		out_char(b, (char)(0xE0 | cp >> 12));
		out_char(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
		out_char(b, (char)(0x80 | (cp & 0x3F)));
	}
}

/* Well-formed UTF-8 as PostgreSQL accepts it: no overlongs, surrogates or > U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint64_t w; /* ASCII runs eight bytes at a time */
		if (n - i >= 8 && (memcpy(&w, s + i, 8), (w & 0x8080808080808080u) == 0)) {
			i += 8;
			continue;
		}
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		int k;
		uint32_t cp, min;
		if (c >= 0xC2 && c <= 0xDF) {
			k = 1, cp = c & 0x1F, min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			k = 2, cp = c & 0x0F, min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i <= (size_t)k)
			return false;
		for (int j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += (size_t)k + 1;
	}
	return true;
}

/*
 * Appends bytes s[0..n) of character set cs as UTF-8 text.  Bytes that
 * are not text in cs, or hold a NUL, are appended as bytea hex instead
 * and the status says so.  Returns the status.
 */
static enum binlog_value_status out_text(struct change_buf *b, enum binlog_charset cs,
					 const uint8_t *s, size_t n)
{
	bool ok = true;
	switch (cs) {
	case BINLOG_CS_UTF8MB4:
	case BINLOG_CS_UTF8MB3:
		ok = utf8_valid(s, n);
		break;
	case BINLOG_CS_ASCII:
		for (size_t i = 0; i < n && ok; i++)
			ok = s[i] < 0x80;
		break;
	case BINLOG_CS_LATIN1:
		break;
	default:
		ok = false;
		break;
	}
	if (!ok) {
		out_bytea(b, s, n, 0);
		return BINLOG_VAL_BAD_TEXT;
	}
	if (memchr(s, 0, n) != NULL) {
		out_bytea(b, s, n, 0);
		return BINLOG_VAL_NUL_IN_TEXT;
	}
	if (cs != BINLOG_CS_LATIN1) {
		change_buf_put(b, s, n);
		return BINLOG_VAL_OK;
	}
	change_buf_reserve(b, n * 3);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (c >= 0x80 && c <= 0x9F)
			out_utf8_cp(b, latin1_80_9f[c - 0x80]);
		else
			out_utf8_cp(b, c);
	}
	return BINLOG_VAL_OK;
}

/* --- numbers --------------------------------------------------------------------- */

/*
 * True when the decimal d * 10^e equals k * 2^f exactly (k odd): their
 * odd parts and powers of two must match.  Only small powers of 5 can
 * make the odd parts equal (k < 2^55, d < 2^57), so 128-bit products do.
 */
static bool dec_equals_bin(uint64_t d, int e, uint64_t k, int f)
{
	int t = 0;
	while (d % 2 == 0) /* d > 0 */
		d /= 2, t++;
	unsigned __int128 lhs = d, rhs = k;
	int n = e < 0 ? -e : e;
	if (n > 24)
		return false;
	for (int i = 0; i < n; i++) {
		if (e > 0)
			lhs *= 5;
		else
			rhs *= 5;
	}
	return lhs == rhs && t + e == f;
}

/*
 * Whether the decimal digits[] * 10^(exp10 - ndigits + 1) is exactly one
 * of the two bounds of v's rounding interval (the midpoints to its
 * neighbours).  PostgreSQL's Ryu is built with STRICTLY_SHORTEST 0
 * (acceptBounds = false, src/common/ryu_common.h): it never prints such a
 * midpoint even when the reader's round-half-even would map it back to v
 * (so '1e23'::float8 prints as 9.999999999999999e+22).
 */
static bool at_bound(double v, bool is_float, const char *digits, int exp10)
{
	uint64_t d = 0;
	int n = 0;
	for (const char *q = digits; *q; q++, n++)
		d = d * 10 + (uint64_t)(*q - '0');
	int e = exp10 - n + 1;
	uint64_t m;
	int ebin, mbits = is_float ? 24 : 53;
	if (is_float) {
		float fv = (float)v;
		uint32_t u;
		memcpy(&u, &fv, 4);
		uint32_t ex = u >> 23 & 0xFF, mant = u & 0x7FFFFF;
		m = ex ? (mant | 0x800000u) : mant;
		ebin = (ex ? (int)ex : 1) - 127 - 23;
	} else {
		uint64_t u;
		memcpy(&u, &v, 8);
		uint32_t ex = (uint32_t)(u >> 52 & 0x7FF);
		uint64_t mant = u & ((UINT64_C(1) << 52) - 1);
		m = ex ? (mant | UINT64_C(1) << 52) : mant;
		ebin = (ex ? (int)ex : 1) - 1023 - 52;
	}
	/* v = m * 2^ebin; bounds (2m +- 1) * 2^(ebin-1), or (4m - 1) * 2^(ebin-2)
	 * below a power of two whose lower neighbour is closer */
	if (dec_equals_bin(d, e, 2 * m + 1, ebin - 1))
		return true;
	if (m == UINT64_C(1) << (mbits - 1) && ebin > (is_float ? -149 : -1074))
		return dec_equals_bin(d, e, 4 * m - 1, ebin - 2);
	return dec_equals_bin(d, e, 2 * m - 1, ebin - 1);
}

/*
 * The decimal digits and exponent of the shortest text that reads back
 * to v (as a float when is_float) without being one of the bounds of its
 * rounding interval -- what PostgreSQL's Ryu prints.  For a length: the
 * correctly rounded candidate, and when that fails, its neighbour one unit
 * in the last place towards v (the interval of a power of two is
 * lopsided).  Reading back uses the C library's correctly rounded
 * strtod/strtof.  digits gets no trailing zeros.
 */
static bool reads_back(const char *s, double v, bool is_float)
{
	if (is_float)
		return strtof(s, NULL) == (float)v;
	return strtod(s, NULL) == v;
}

static void split_sci(const char *s, char digits[32], int *exp10)
{
	int n = 0;
	for (const char *q = s; *q && *q != 'e'; q++)
		if (*q >= '0' && *q <= '9' && n < 31)
			digits[n++] = *q;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	*exp10 = atoi(strchr(s, 'e') + 1);
}

/*
 * Whether s reads back to v; with pg_bounds also that it is not one of
 * the bounds of v's rounding interval (PostgreSQL's rule).  Without it,
 * a bound counts when round-half-even reads it back to v -- David Gay's
 * dtoa mode 0 (MySQL's my_gcvt): '1e23' for 1e23.
 */
static bool acceptable(const char *s, double v, bool is_float, bool pg_bounds)
{
	char d[32];
	int e;
	if (!reads_back(s, v, is_float))
		return false;
	if (!pg_bounds)
		return true;
	split_sci(s, d, &e);
	return !at_bound(v, is_float, d, e);
}

/*
 * An acceptable decimal of p significant digits for v into out ("d.ddde+X"):
 * the correctly rounded one, or its neighbour one unit in the last place
 * towards v.  False when neither is.
 */
static bool candidate(double v, bool is_float, bool pg_bounds, int p, char out[48])
{
	snprintf(out, 48, "%.*e", p - 1, v); /* v > 0 */
	if (acceptable(out, v, is_float, pg_bounds))
		return true;
	/* only a power of two's interval is lopsided enough for the neighbour */
	int e2;
	if (frexp(v, &e2) != 0.5)
		return false;
	double r = strtod(out, NULL);
	char d[32];
	int n = 0;
	for (const char *q = out; *q && *q != 'e'; q++)
		if (*q >= '0' && *q <= '9')
			d[n++] = *q;
	int e = atoi(strchr(out, 'e') + 1);
	int i = n - 1;
	if (r < v) {
		while (i >= 0 && d[i] == '9')
			d[i--] = '0';
		if (i < 0) {
			d[0] = '1';
			e++;
		} else {
			d[i]++;
		}
	} else {
		while (i >= 0 && d[i] == '0')
			d[i--] = '9';
		if (i >= 0)
			d[i]--;
	}
	if (d[0] == '0') /* fewer digits: that length was tried already */
		return false;
	snprintf(out, 48, "%c.%.*se%d", d[0], n - 1, d + 1, e);
	return acceptable(out, v, is_float, pg_bounds);
}

/*
 * Whether some p-digit decimal is acceptable is monotonic in p (a longer
 * correctly rounded candidate is closer to v), so the shortest length is
 * found by bisection; 9 (FLOAT) or 17 (DOUBLE) digits always do.
 */
static void shortest_digits(double v, bool is_float, bool pg_bounds, char digits[32], int *exp10)
{
	char best[48], tmp[48];
	int lo = 1, hi = is_float ? 9 : 17;
	snprintf(best, sizeof(best), "%.*e", hi - 1, v);
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (candidate(v, is_float, pg_bounds, mid, tmp)) {
			hi = mid;
			memcpy(best, tmp, sizeof(best));
		} else {
			lo = mid + 1;
		}
	}
	split_sci(best, digits, exp10);
}

/* float4out/float8out text (extra_float_digits = 1) of v. */
static void out_float(struct change_buf *b, double v, bool is_float)
{
	if (isnan(v)) {
		out_str(b, "NaN");
		return;
	}
	if (isinf(v)) {
		out_str(b, v < 0 ? "-Infinity" : "Infinity");
		return;
	}
	if (v == 0) { /* -0 too: MariaDB prints it "0" everywhere (SELECT, CAST) */
		out_char(b, '0');
		return;
	}
	if (signbit(v))
		out_char(b, '-');
	v = fabs(v);
	char d[32];
	int e;
	shortest_digits(v, is_float, true, d, &e);
	int n = (int)strlen(d);
	if (e >= -4 && e < (is_float ? 6 : 15)) {
		if (e < 0) {
			out_str(b, "0.");
			for (int i = 0; i < -e - 1; i++)
				out_char(b, '0');
			change_buf_put(b, d, (size_t)n);
		} else {
			for (int i = 0; i <= e; i++)
				out_char(b, i < n ? d[i] : '0');
			if (n > e + 1) {
				out_char(b, '.');
				change_buf_put(b, d + e + 1, (size_t)(n - e - 1));
			}
		}
		return;
	}
	out_char(b, d[0]);
	if (n > 1) {
		out_char(b, '.');
		change_buf_put(b, d + 1, (size_t)(n - 1));
	}
	out_fmt(b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
}

static const int dig2bytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
static const uint32_t pow10_u32[10] = {1,      10,	100,	  1000,	     10000,
				       100000, 1000000, 10000000, 100000000, 1000000000};

/* Bytes a DECIMAL(precision, scale) takes (decimal_bin_size()). */
static size_t decimal_size(int precision, int scale)
{
	int intg = precision - scale;
	return (size_t)((intg / 9) * 4 + dig2bytes[intg % 9] + (scale / 9) * 4 +
			dig2bytes[scale % 9]);
}

static bool out_decimal(struct change_buf *b, const struct binlog_column *c, const uint8_t *p,
			size_t left, size_t *used, const char **err)
{
	int intg = c->precision - c->scale, scale = c->scale;
	size_t size = decimal_size(c->precision, scale);
	if (left < size) {
		*err = "DECIMAL value truncated";
		return false;
	}
	uint8_t buf[40]; /* 65 digits take 30 bytes */
	memcpy(buf, p, size);
	bool neg = (buf[0] & 0x80) == 0;
	buf[0] ^= 0x80;
	if (neg)
		for (size_t i = 0; i < size; i++)
			buf[i] ^= 0xFF;

	/* integer part, then fraction, as groups of digits */
	char digits[80];
	size_t nd = 0, at = 0;
	struct {
		int ndig;
		bool frac;
	} groups[16];
	int ng = 0;
	if (intg % 9)
		groups[ng].ndig = intg % 9, groups[ng++].frac = false;
	for (int i = 0; i < intg / 9; i++)
		groups[ng].ndig = 9, groups[ng++].frac = false;
	for (int i = 0; i < scale / 9; i++)
		groups[ng].ndig = 9, groups[ng++].frac = true;
	if (scale % 9)
		groups[ng].ndig = scale % 9, groups[ng++].frac = true;

	size_t int_digits = 0;
	for (int g = 0; g < ng; g++) {
		int nb = groups[g].ndig == 9 ? 4 : dig2bytes[groups[g].ndig];
		uint32_t v = (uint32_t)be_uint(buf + at, nb);
		at += (size_t)nb;
		if (v >= pow10_u32[groups[g].ndig]) {
			*err = "DECIMAL digit group out of range";
			return false;
		}
		nd += (size_t)snprintf(digits + nd, sizeof(digits) - nd, "%0*u", groups[g].ndig, v);
		if (!groups[g].frac)
			int_digits = nd;
	}
	if (!mytypes_decimal(b, neg, digits, int_digits, digits + int_digits, nd - int_digits,
			     scale)) {
		*err = "BUG: DECIMAL digits not rendered";
		return false;
	}
	*used = size;
	return true;
}

/* --- dates and times ------------------------------------------------------------------ */

static bool leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned d[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap(y) ? 29 : d[m];
}

/*
 * Status of a calendar date: all zero is MySQL's zero date; a zero month
 * or day, a day past the month's end (ALLOW_INVALID_DATES), month 13+ or
 * year 0 (PostgreSQL has no year 0) are not dates.
 */
static enum binlog_value_status date_status(unsigned y, unsigned m, unsigned d)
{
	if (y == 0 && m == 0 && d == 0)
		return BINLOG_VAL_ZERO_DATE;
	if (y == 0 || y > 9999 || m == 0 || m > 12 || d == 0 || d > days_in_month(y, m))
		return BINLOG_VAL_BAD_DATE;
	return BINLOG_VAL_OK;
}

/* ".f": microseconds without trailing zeros; nothing for 0 */
static void out_frac(struct change_buf *b, uint32_t usec)
{
	if (usec == 0)
		return;
	char f[16];
	snprintf(f, sizeof(f), "%06u", usec);
	int n = 6;
	while (f[n - 1] == '0')
		n--;
	out_char(b, '.');
	change_buf_put(b, f, (size_t)n);
}

/* The fraction of a TIME2/DATETIME2/TIMESTAMP2, stored after the integer part. */
static int frac_bytes(int fsp)
{
	return (fsp + 1) / 2;
}

static enum binlog_value_status out_datetime(struct change_buf *b, unsigned y, unsigned mo,
					     unsigned d, unsigned h, unsigned mi, unsigned s,
					     uint32_t usec)
{
	enum binlog_value_status st = date_status(y, mo, d);
	if (st == BINLOG_VAL_ZERO_DATE && (h || mi || s || usec))
		st = BINLOG_VAL_BAD_DATE;
	if (st == BINLOG_VAL_OK && (h > 23 || mi > 59 || s > 59 || usec > 999999))
		st = BINLOG_VAL_BAD_DATE;
	out_fmt(b, "%04u-%02u-%02u %02u:%02u:%02u", y, mo, d, h, mi, s);
	out_frac(b, usec);
	return st;
}

static enum binlog_value_status out_time(struct change_buf *b, bool neg, unsigned h, unsigned mi,
					 unsigned s, uint32_t usec)
{
	if (neg && (h || mi || s || usec))
		out_char(b, '-');
	out_fmt(b, "%02u:%02u:%02u", h, mi, s);
	out_frac(b, usec);
	return mi > 59 || s > 59 || usec > 999999 ? BINLOG_VAL_BAD_DATE : BINLOG_VAL_OK;
}

/* Civil date of a day count since 1970-01-01 (Howard Hinnant's days_from_civil inverse). */
static void civil_from_days(int64_t z, unsigned *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (unsigned)(yy + (*m <= 2));
}

static enum binlog_value_status out_timestamp(struct change_buf *b, uint32_t secs, uint32_t usec)
{
	if (secs == 0 && usec == 0) {
		out_str(b, "0000-00-00 00:00:00");
		return BINLOG_VAL_ZERO_DATE;
	}
	unsigned y, m, d;
	civil_from_days(secs / 86400, &y, &m, &d);
	uint32_t t = secs % 86400;
	out_fmt(b, "%04u-%02u-%02u %02u:%02u:%02u", y, m, d, t / 3600, t / 60 % 60, t % 60);
	out_frac(b, usec);
	out_str(b, "+00");
	return usec > 999999 ? BINLOG_VAL_BAD_DATE : BINLOG_VAL_OK;
}

/*
 * TIME2's fraction to a signed microsecond offset, per
 * my_time_packed_from_binary(): the stored fraction of a negative value
 * counts down from the next whole second.
 */
static int64_t time2_packed(const uint8_t *p, int fsp)
{
	int64_t intpart = (int64_t)be_uint(p, 3) - 0x800000;
	int64_t frac;
	switch (frac_bytes(fsp)) {
	case 0:
		return intpart * (INT64_C(1) << 24);
	case 1:
		frac = p[3];
		if (intpart < 0 && frac) {
			intpart++;
			frac -= 0x100;
		}
		return intpart * (INT64_C(1) << 24) + frac * 10000;
	case 2:
		frac = (int64_t)be_uint(p + 3, 2);
		if (intpart < 0 && frac) {
			intpart++;
			frac -= 0x10000;
		}
		return intpart * (INT64_C(1) << 24) + frac * 100;
	default:
		return (int64_t)be_uint(p, 6) - INT64_C(0x800000000000);
	}
}

/* DATETIME2/TIMESTAMP2 fraction in microseconds (sign-extended as MySQL reads it). */
static int64_t frac_usec(const uint8_t *p, int fsp)
{
	switch (frac_bytes(fsp)) {
	case 0:
		return 0;
	case 1:
		return (int64_t)(int8_t)p[0] * 10000;
	case 2:
		return (int64_t)(int16_t)be_uint(p, 2) * 100;
	default: {
		int64_t v = (int64_t)be_uint(p, 3);
		return (v & 0x800000 ? v - 0x1000000 : v);
	}
	}
}

/* --- the dispatcher -------------------------------------------------------------------- */

const char *binlog_value_status_name(enum binlog_value_status s)
{
	static const char *const names[BINLOG_VAL__MAX] = {
	    [BINLOG_VAL_OK] = "ok",
	    [BINLOG_VAL_ZERO_DATE] = "zero_date",
	    [BINLOG_VAL_BAD_DATE] = "bad_date",
	    [BINLOG_VAL_BAD_TEXT] = "bad_text",
	    [BINLOG_VAL_NUL_IN_TEXT] = "nul_in_text",
	    [BINLOG_VAL_BAD_ENUM] = "bad_enum",
	    [BINLOG_VAL_UNSUPPORTED] = "unsupported",
	};
	return (unsigned)s < BINLOG_VAL__MAX ? names[s] : "?";
}

static bool is_int_type(uint8_t t)
{
	return t == BINLOG_T_TINY || t == BINLOG_T_SHORT || t == BINLOG_T_INT24 ||
	       t == BINLOG_T_LONG || t == BINLOG_T_LONGLONG;
}

/* Columns whose bytes are text in a collation (not ENUM/SET, which map members). */
static bool is_string_type(const struct binlog_column *c)
{
	switch (c->type) {
	case BINLOG_T_VARCHAR:
	case BINLOG_T_BLOB:
	case BINLOG_T_TINY_BLOB:
	case BINLOG_T_MEDIUM_BLOB:
	case BINLOG_T_LONG_BLOB:
		return true;
	case BINLOG_T_STRING:
	case BINLOG_T_VAR_STRING:
		return c->real_type != BINLOG_T_ENUM && c->real_type != BINLOG_T_SET;
	default:
		return false;
	}
}

const char *binlog_value_unsupported(const struct binlog_column *c)
{
	if (c->unsupported != NULL)
		return c->unsupported;
	if (c->type == BINLOG_T_VARCHAR_COMPRESSED || c->type == BINLOG_T_BLOB_COMPRESSED)
		return "MariaDB COMPRESSED columns not supported";
	if (is_int_type(c->type) && !c->sign_known)
		return "integer signedness unknown (no SIGNEDNESS metadata)";
	if (c->real_type == BINLOG_T_ENUM || c->real_type == BINLOG_T_SET) {
		if (!c->has_members)
			return "ENUM/SET members unknown (binlog_row_metadata is not FULL)";
		enum binlog_charset cs = binlog_collation_charset(c->collation);
		if (cs == BINLOG_CS_NONE)
			return "ENUM/SET character set unknown";
		if (cs == BINLOG_CS_OTHER)
			return "ENUM/SET character set not supported";
		return NULL;
	}
	if (is_string_type(c)) {
		enum binlog_charset cs = binlog_collation_charset(c->collation);
		if (cs == BINLOG_CS_NONE)
			return "character set unknown (no charset metadata)";
		if (cs == BINLOG_CS_OTHER)
			return "character set not supported (only utf8mb4, utf8mb3, latin1, ascii, "
			       "binary)";
		if (c->ext != BINLOG_EXT_NONE) {
			uint32_t want = c->ext == BINLOG_EXT_INET4 ? 4 : 16;
			if (cs != BINLOG_CS_BINARY || c->real_type != BINLOG_T_STRING ||
			    c->max_len != want)
				return "UUID/INET6/INET4 marked on a column that is not "
				       "BINARY(16)/(4)";
		}
	}
	return NULL;
}

/* Length-prefixed bytes: nlen bytes LE length, then the bytes. */
static bool get_lenbytes(const uint8_t *p, size_t left, int nlen, const uint8_t **s, size_t *n,
			 size_t *used, const char **err)
{
	if (nlen < 1 || nlen > 4 || left < (size_t)nlen) {
		*err = "length prefix truncated";
		return false;
	}
	uint64_t l = le_uint(p, nlen);
	if (l > left - (size_t)nlen) {
		*err = "value longer than the event";
		return false;
	}
	*s = p + nlen;
	*n = (size_t)l;
	*used = (size_t)nlen + (size_t)l;
	return true;
}

static void out_uuid(struct change_buf *b, const uint8_t *p)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out_char(b, '-');
		out_char(b, hex[p[i] >> 4]);
		out_char(b, hex[p[i] & 15]);
	}
}

/*
 * PostgreSQL's inet output for a /128 address (inet_net_ntop_ipv6() in
 * src/port/inet_net_ntop.c): the longest run of two or more zero words
 * becomes "::" (the first of equal runs), words in lowercase hex without
 * leading zeros, and ::a.b.c.d / ::ffff:a.b.c.d for IPv4-compatible and
 * -mapped addresses.
 */
static void out_inet6(struct change_buf *b, const uint8_t *p)
{
	unsigned w[8];
	for (int i = 0; i < 8; i++)
		w[i] = (unsigned)p[2 * i] << 8 | p[2 * i + 1];
	int best = -1, bestlen = 0, cur = -1, curlen = 0;
	for (int i = 0; i < 8; i++) {
		if (w[i] == 0) {
			if (cur == -1)
				cur = i, curlen = 1;
			else
				curlen++;
		} else if (cur != -1) {
			if (best == -1 || curlen > bestlen)
				best = cur, bestlen = curlen;
			cur = -1;
		}
	}
	if (cur != -1 && (best == -1 || curlen > bestlen))
		best = cur, bestlen = curlen;
	if (best != -1 && bestlen < 2)
		best = -1;
	for (int i = 0; i < 8; i++) {
		if (best != -1 && i >= best && i < best + bestlen) {
			if (i == best)
				out_char(b, ':');
			continue;
		}
		if (i != 0)
			out_char(b, ':');
		if (i == 6 && best == 0 &&
		    (bestlen == 6 || (bestlen == 7 && w[7] != 1) ||
		     (bestlen == 5 && w[5] == 0xffff))) {
			out_fmt(b, "%u.%u.%u.%u", p[12], p[13], p[14], p[15]);
			return;
		}
		out_fmt(b, "%x", w[i]);
	}
	if (best != -1 && best + bestlen == 8)
		out_char(b, ':');
}

static enum binlog_value_status out_members(struct change_buf *b, const struct binlog_column *c,
					    uint64_t v)
{
	enum binlog_charset cs = binlog_collation_charset(c->collation);
	enum binlog_value_status st = BINLOG_VAL_OK;
	size_t start = b->len;
	if (c->real_type == BINLOG_T_ENUM) {
		if (v == 0)
			return BINLOG_VAL_OK;
		if (v > c->nmembers) {
			out_fmt(b, "%llu", (unsigned long long)v);
			return BINLOG_VAL_BAD_ENUM;
		}
		st = out_text(b, cs, (const uint8_t *)c->members[v - 1], c->member_lens[v - 1]);
	} else {
		if (c->nmembers < 64 && (v >> c->nmembers) != 0) {
			out_fmt(b, "%llu", (unsigned long long)v);
			return BINLOG_VAL_BAD_ENUM;
		}
		bool first = true;
		for (uint32_t i = 0; i < c->nmembers && i < 64; i++) {
			if (!(v >> i & 1))
				continue;
			if (!first)
				out_char(b, ',');
			first = false;
			enum binlog_value_status s =
			    out_text(b, cs, (const uint8_t *)c->members[i], c->member_lens[i]);
			if (s != BINLOG_VAL_OK)
				st = s;
		}
	}
	if (st != BINLOG_VAL_OK) { /* a member that is not text: show the number */
		b->len = start;
		out_fmt(b, "%llu", (unsigned long long)v);
	}
	return st;
}

/* Bytes a value of a fixed-size type takes; 0 for variable-size types. */
static size_t fixed_size(const struct binlog_column *c)
{
	switch (c->type) {
	case BINLOG_T_TINY:
	case BINLOG_T_YEAR:
		return 1;
	case BINLOG_T_SHORT:
		return 2;
	case BINLOG_T_INT24:
	case BINLOG_T_DATE:
	case BINLOG_T_NEWDATE:
	case BINLOG_T_TIME:
		return 3;
	case BINLOG_T_LONG:
	case BINLOG_T_TIMESTAMP:
		return 4;
	case BINLOG_T_LONGLONG:
	case BINLOG_T_DATETIME:
		return 8;
	case BINLOG_T_FLOAT:
	case BINLOG_T_DOUBLE:
		return c->pack_len;
	case BINLOG_T_TIME2:
		return 3 + (size_t)frac_bytes(c->fsp);
	case BINLOG_T_DATETIME2:
		return 5 + (size_t)frac_bytes(c->fsp);
	case BINLOG_T_TIMESTAMP2:
		return 4 + (size_t)frac_bytes(c->fsp);
	case BINLOG_T_NEWDECIMAL:
		return decimal_size(c->precision, c->scale);
	case BINLOG_T_BIT:
		return (c->bits + 7u) / 8u;
	case BINLOG_T_STRING:
	case BINLOG_T_VAR_STRING:
	case BINLOG_T_ENUM:
	case BINLOG_T_SET:
		if (c->real_type == BINLOG_T_ENUM || c->real_type == BINLOG_T_SET)
			return c->pack_len;
		return 0;
	default:
		return 0;
	}
}

static enum binlog_value_status out_int(struct change_buf *b, const struct binlog_column *c,
					const uint8_t *p, size_t n)
{
	uint64_t u = le_uint(p, (int)n);
	if (c->is_unsigned) {
		mytypes_uint(b, u);
	} else {
		int shift = 64 - 8 * (int)n;
		mytypes_int(b, (int64_t)(u << shift) >> shift); /* sign-extend */
	}
	return BINLOG_VAL_OK;
}

/* Renders a fixed-size value of n bytes at p. */
static bool out_fixed(struct change_buf *b, const struct binlog_column *c, const uint8_t *p,
		      size_t n, enum binlog_value_status *st, const char **err)
{
	*st = BINLOG_VAL_OK;
	switch (c->type) {
	case BINLOG_T_TINY:
	case BINLOG_T_SHORT:
	case BINLOG_T_INT24:
	case BINLOG_T_LONG:
	case BINLOG_T_LONGLONG:
		*st = out_int(b, c, p, n);
		return true;
	case BINLOG_T_YEAR:
		*st = mytypes_year(b, p[0] ? 1900u + p[0] : 0);
		return true;
	case BINLOG_T_FLOAT: {
		uint32_t u = (uint32_t)le_uint(p, 4);
		float f;
		memcpy(&f, &u, 4);
		out_float(b, f, true);
		return true;
	}
	case BINLOG_T_DOUBLE: {
		uint64_t u = le_uint(p, 8);
		double d;
		memcpy(&d, &u, 8);
		out_float(b, d, false);
		return true;
	}
	case BINLOG_T_DATE:
	case BINLOG_T_NEWDATE: {
		uint32_t v = (uint32_t)le_uint(p, 3);
		*st = mytypes_date(b, v >> 9, v >> 5 & 15, v & 31);
		return true;
	}
	case BINLOG_T_TIME: {
		int32_t v = (int32_t)(le_uint(p, 3) << 8) >> 8;
		bool neg = v < 0;
		uint32_t a = (uint32_t)(neg ? -v : v);
		*st = out_time(b, neg, a / 10000, a / 100 % 100, a % 100, 0);
		return true;
	}
	case BINLOG_T_DATETIME: {
		uint64_t v = le_uint(p, 8);
		uint64_t ymd = v / 1000000, hms = v % 1000000;
		*st = out_datetime(b, (unsigned)(ymd / 10000 % 100000), (unsigned)(ymd / 100 % 100),
				   (unsigned)(ymd % 100), (unsigned)(hms / 10000),
				   (unsigned)(hms / 100 % 100), (unsigned)(hms % 100), 0);
		return true;
	}
	case BINLOG_T_TIMESTAMP:
		*st = out_timestamp(b, (uint32_t)le_uint(p, 4), 0);
		return true;
	case BINLOG_T_TIMESTAMP2: {
		int64_t us = frac_usec(p + 4, c->fsp);
		if (us < 0 || us > 999999) {
			*err = "TIMESTAMP2 fraction out of range";
			return false;
		}
		*st = out_timestamp(b, (uint32_t)be_uint(p, 4), (uint32_t)us);
		return true;
	}
	case BINLOG_T_DATETIME2: {
		int64_t intpart = (int64_t)be_uint(p, 5) - INT64_C(0x8000000000);
		int64_t us = frac_usec(p + 5, c->fsp);
		if (intpart < 0 || us < 0 || us > 999999) {
			*err = "DATETIME2 value out of range";
			return false;
		}
		uint64_t ymd = (uint64_t)intpart >> 17, hms = (uint64_t)intpart & 0x1FFFF;
		uint64_t ym = ymd >> 5;
		*st = out_datetime(b, (unsigned)(ym / 13), (unsigned)(ym % 13),
				   (unsigned)(ymd & 31), (unsigned)(hms >> 12),
				   (unsigned)(hms >> 6 & 63), (unsigned)(hms & 63), (uint32_t)us);
		return true;
	}
	case BINLOG_T_TIME2: {
		int64_t packed = time2_packed(p, c->fsp);
		bool neg = packed < 0;
		uint64_t a = (uint64_t)(neg ? -packed : packed);
		uint64_t hms = a >> 24, us = a & 0xFFFFFF;
		if (us > 999999) {
			*err = "TIME2 fraction out of range";
			return false;
		}
		*st = out_time(b, neg, (unsigned)(hms >> 12 & 0x3FF), (unsigned)(hms >> 6 & 63),
			       (unsigned)(hms & 63), (uint32_t)us);
		return true;
	}
	case BINLOG_T_NEWDECIMAL: {
		size_t used;
		return out_decimal(b, c, p, n, &used, err);
	}
	case BINLOG_T_BIT:
		mytypes_bits(b, p, n, c->bits);
		return true;
	default: /* ENUM / SET */
		*st = out_members(b, c, le_uint(p, (int)n));
		return true;
	}
}

const char *binlog_column_check(const struct binlog_column *c)
{
	switch (c->type) {
	case BINLOG_T_TINY:
	case BINLOG_T_SHORT:
	case BINLOG_T_INT24:
	case BINLOG_T_LONG:
	case BINLOG_T_LONGLONG:
	case BINLOG_T_YEAR:
	case BINLOG_T_DATE:
	case BINLOG_T_NEWDATE:
	case BINLOG_T_TIME:
	case BINLOG_T_DATETIME:
	case BINLOG_T_TIMESTAMP:
		return NULL;
	case BINLOG_T_FLOAT:
		return c->pack_len == 4 ? NULL : "FLOAT with a size other than 4";
	case BINLOG_T_DOUBLE:
		return c->pack_len == 8 ? NULL : "DOUBLE with a size other than 8";
	case BINLOG_T_TIME2:
	case BINLOG_T_DATETIME2:
	case BINLOG_T_TIMESTAMP2:
		return c->fsp <= 6 ? NULL : "fractional seconds precision above 6";
	case BINLOG_T_NEWDECIMAL:
		return c->precision >= 1 && c->precision <= 65 && c->scale <= 30 &&
			       c->scale <= c->precision
			   ? NULL
			   : "DECIMAL precision/scale out of range";
	case BINLOG_T_BIT:
		return c->bits >= 1 && c->bits <= 64 ? NULL : "BIT width out of range";
	case BINLOG_T_VARCHAR:
	case BINLOG_T_VARCHAR_COMPRESSED:
		return NULL;
	case BINLOG_T_STRING:
	case BINLOG_T_VAR_STRING:
	case BINLOG_T_ENUM:
	case BINLOG_T_SET:
		if (c->real_type == BINLOG_T_ENUM)
			return c->pack_len == 1 || c->pack_len == 2 ? NULL : "ENUM size not 1 or 2";
		if (c->real_type == BINLOG_T_SET)
			return (c->pack_len >= 1 && c->pack_len <= 4) || c->pack_len == 8
				   ? NULL
				   : "SET size not 1, 2, 3, 4 or 8";
		if (c->real_type == BINLOG_T_STRING || c->real_type == BINLOG_T_VAR_STRING)
			return NULL;
		return "CHAR column with an unknown real type";
	case BINLOG_T_BLOB:
	case BINLOG_T_TINY_BLOB:
	case BINLOG_T_MEDIUM_BLOB:
	case BINLOG_T_LONG_BLOB:
	case BINLOG_T_BLOB_COMPRESSED:
	case BINLOG_T_GEOMETRY:
	case BINLOG_T_JSON:
		return c->len_bytes >= 1 && c->len_bytes <= 4 ? NULL
							      : "length prefix not 1-4 bytes";
	default:
		return "column type not supported";
	}
}

bool binlog_value_decode(const struct binlog_column *c, const uint8_t *p, size_t left, size_t *used,
			 struct change_buf *out, enum binlog_value_status *status, const char **err)
{
	const char *bad = binlog_column_check(c);
	if (bad != NULL) {
		*err = bad;
		return false;
	}
	const char *unsup = binlog_value_unsupported(c);
	*status = unsup ? BINLOG_VAL_UNSUPPORTED : BINLOG_VAL_OK;
	if (unsup)
		*err = unsup;

	size_t n = fixed_size(c);
	if (n > 0) {
		if (left < n) {
			*err = "value truncated";
			return false;
		}
		*used = n;
		if (unsup)
			return true;
		return out_fixed(out, c, p, n, status, err);
	}

	/* length-prefixed values */
	int nlen;
	switch (c->type) {
	case BINLOG_T_VARCHAR:
	case BINLOG_T_VARCHAR_COMPRESSED:
	case BINLOG_T_STRING:
	case BINLOG_T_VAR_STRING:
		nlen = c->max_len > 255 ? 2 : 1;
		break;
	case BINLOG_T_BLOB:
	case BINLOG_T_TINY_BLOB:
	case BINLOG_T_MEDIUM_BLOB:
	case BINLOG_T_LONG_BLOB:
	case BINLOG_T_BLOB_COMPRESSED:
	case BINLOG_T_GEOMETRY:
	case BINLOG_T_JSON:
		nlen = c->len_bytes;
		break;
	default:
		*err = "column type has no known value size";
		return false;
	}
	const uint8_t *s;
	size_t sn;
	if (!get_lenbytes(p, left, nlen, &s, &sn, used, err))
		return false;
	if (unsup)
		return true;
	if (c->type == BINLOG_T_JSON) /* MySQL's binary JSON (MariaDB's JSON is a LONGBLOB) */
		return myjson_render(s, sn, out, status, err);
	if (c->type == BINLOG_T_GEOMETRY) {
		out_bytea(out, s, sn, 0);
		return true;
	}
	bool fixed_binary = c->real_type == BINLOG_T_STRING;
	if ((c->type == BINLOG_T_STRING || c->type == BINLOG_T_VAR_STRING) && sn > c->max_len) {
		*err = "CHAR value longer than the column";
		return false;
	}
	enum binlog_charset cs = binlog_collation_charset(c->collation);
	if (cs != BINLOG_CS_BINARY) {
		*status = out_text(out, cs, s, sn);
		return true;
	}
	if (fixed_binary && c->ext != BINLOG_EXT_NONE) {
		uint8_t v[16] = {0}; /* re-pad what the binlog stripped */
		memcpy(v, s, sn);
		if (c->ext == BINLOG_EXT_UUID)
			out_uuid(out, v);
		else if (c->ext == BINLOG_EXT_INET6)
			out_inet6(out, v);
		else
			mytypes_inet4(out, v);
		return true;
	}
	out_bytea(out, s, sn, fixed_binary ? c->max_len : 0);
	return true;
}

/* --- mytypes.h: the renderers, for the snapshot reader too --------------------------- */

void mytypes_int(struct change_buf *b, int64_t v)
{
	if (v < 0)
		out_char(b, '-');
	change_buf_put_udec(b, v < 0 ? 0 - (uint64_t)v : (uint64_t)v); /* INT64_MIN too */
}

void mytypes_uint(struct change_buf *b, uint64_t v)
{
	change_buf_put_udec(b, v);
}

enum binlog_value_status mytypes_year(struct change_buf *b, unsigned year)
{
	if (year == 0) {
		out_str(b, "0000");
		return BINLOG_VAL_ZERO_DATE;
	}
	out_fmt(b, "%u", year);
	return BINLOG_VAL_OK;
}

void mytypes_float(struct change_buf *b, double v, bool is_float)
{
	out_float(b, v, is_float);
}

void mytypes_shortest_digits(double v, char digits[32], int *exp10)
{
	shortest_digits(v, false, false, digits, exp10);
}

bool mytypes_utf8_valid(const uint8_t *s, size_t n)
{
	return utf8_valid(s, n);
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool mytypes_decimal(struct change_buf *b, bool neg, const char *int_digits, size_t nint,
		     const char *frac_digits, size_t nfrac, int scale)
{
	if (scale < 0 || !all_digits(int_digits, nint) || !all_digits(frac_digits, nfrac))
		return false;
	for (size_t i = (size_t)scale; i < nfrac; i++)
		if (frac_digits[i] != '0')
			return false;
	bool nonzero = false;
	for (size_t i = 0; i < nint && !nonzero; i++)
		nonzero = int_digits[i] != '0';
	for (size_t i = 0; i < nfrac && i < (size_t)scale && !nonzero; i++)
		nonzero = frac_digits[i] != '0';
	if (neg && nonzero)
		out_char(b, '-');
	size_t i = 0;
	while (i < nint && int_digits[i] == '0')
		i++;
	if (i == nint)
		out_char(b, '0');
	else
		change_buf_put(b, int_digits + i, nint - i);
	if (scale > 0) {
		out_char(b, '.');
		size_t keep = nfrac < (size_t)scale ? nfrac : (size_t)scale;
		change_buf_put(b, frac_digits, keep);
		for (size_t k = keep; k < (size_t)scale; k++)
			out_char(b, '0');
	}
	return true;
}

enum binlog_value_status mytypes_date(struct change_buf *b, unsigned y, unsigned m, unsigned d)
{
	enum binlog_value_status st = date_status(y, m, d);
	out_fmt(b, "%04u-%02u-%02u", y, m, d);
	return st;
}

enum binlog_value_status mytypes_time(struct change_buf *b, bool neg, unsigned h, unsigned mi,
				      unsigned s, uint32_t usec)
{
	return out_time(b, neg, h, mi, s, usec);
}

enum binlog_value_status mytypes_datetime(struct change_buf *b, unsigned y, unsigned mo, unsigned d,
					  unsigned h, unsigned mi, unsigned s, uint32_t usec)
{
	return out_datetime(b, y, mo, d, h, mi, s, usec);
}

enum binlog_value_status mytypes_timestamp(struct change_buf *b, uint32_t secs, uint32_t usec)
{
	return out_timestamp(b, secs, usec);
}

enum binlog_value_status mytypes_text(struct change_buf *b, enum binlog_charset cs,
				      const uint8_t *s, size_t n)
{
	return out_text(b, cs, s, n);
}

void mytypes_bytea(struct change_buf *b, const uint8_t *p, size_t n, size_t pad_to)
{
	out_bytea(b, p, n, pad_to);
}

void mytypes_bits(struct change_buf *b, const uint8_t *p, size_t n, unsigned bits)
{
	change_buf_reserve(b, bits);
	for (int i = (int)bits - 1; i >= 0; i--) {
		size_t back = (size_t)i / 8;
		uint8_t byte = back < n ? p[n - 1 - back] : 0;
		out_char(b, (byte >> (i % 8) & 1) ? '1' : '0');
	}
}

void mytypes_uuid(struct change_buf *b, const uint8_t p[16])
{
	out_uuid(b, p);
}

void mytypes_inet6(struct change_buf *b, const uint8_t p[16])
{
	out_inet6(b, p);
}

void mytypes_inet4(struct change_buf *b, const uint8_t p[4])
{
	out_fmt(b, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
}
