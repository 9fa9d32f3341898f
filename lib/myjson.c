/*
 * myjson: MySQL binary JSON to MySQL's JSON text (see myjson.h).
 *
 * The format, from MySQL's sql/json_binary.h (the grammar in its header
 * comment) and sql/json_binary.cc (parse_binary, parse_value,
 * parse_scalar, parse_array_or_object, Value::element, Value::key,
 * read_variable_length, inlined_type); all integers little-endian:
 *
 *   doc    ::= type value            (an empty doc is the JSON null: parse_binary)
 *   type   0x00 small object  0x01 large object  0x02 small array  0x03 large array
 *          0x04 literal  0x05 int16  0x06 uint16  0x07 int32  0x08 uint32
 *          0x09 int64  0x0a uint64  0x0b double  0x0c string  0x0f opaque
 *   object ::= count size key-entry* value-entry* key* value*
 *   array  ::= count size value-entry* value*
 *          count, size, offsets: 2 bytes (small) or 4 (large); size is the
 *          bytes of the object/array from count on, offsets count from there
 *   key-entry   ::= key-offset key-length(2)
 *   value-entry ::= type offset-or-inlined-value
 *          inlined: literal, int16, uint16; in the large format also int32
 *          and uint32 (the value sits in the entry's offset field)
 *   literal ::= 0x00 null | 0x01 true | 0x02 false
 *   double  ::= 8 bytes IEEE 754 (float8store)
 *   string  ::= length data     (utf8mb4)
 *   opaque  ::= field-type(1) length data
 *   length  ::= 7 bits a byte, least significant first, high bit set on
 *               every byte but the last; at most 5 bytes, at most 2^32-1
 *
 * Opaque payloads (sql/json_dom.cc: Json_decimal::get_binary and
 * convert_from_binary, Json_datetime::to_packed):
 *   NEWDECIMAL (246)  precision(1) scale(1) + the DECIMAL's binary form
 *                     (as in the binlog: decimal2bin), exactly that long
 *   DATE (10) TIME (11) DATETIME (12) TIMESTAMP (7)
 *                     8 bytes: the packed longlong (TIME_to_longlong_packed,
 *                     sql-common/my_time.cc): DATETIME/DATE/TIMESTAMP
 *                     ((year*13+month) << 5 | day) << 17 | hour << 12 |
 *                     minute << 6 | second, << 24 | microseconds;
 *                     TIME [-](hour << 12 | minute << 6 | second) << 24 | usec
 *   VAR_STRING (253)  printed as a JSON string (wrapper_to_string)
 *
 * The text is Json_wrapper::to_string's (wrapper_to_string() in
 * sql/json_dom.cc, MySQL 8.0): "[", "{", elements joined by ", ", members
 * as "key": value in stored order; strings double_quote()d (\" \\ \b \f
 * \n \r \t, other bytes below 0x20 as \u00xx in lowercase hex, nothing
 * else escaped); integers in decimal; a double as my_gcvt(d,
 * MY_GCVT_ARG_DOUBLE, 34) prints it (strings/dtoa.cc: shortest digits,
 * fixed notation when dtoa's decpt (the decimal exponent + 1) is in
 * [-14, 15], or is 16 with 17 digits, else d.ddde[-]X with no '+' and no
 * leading zeros in the exponent) plus ".0" when that shows neither '.'
 * nor 'e' (so -0.0 is "-0.0"); DECIMAL by decimal2string (the stored
 * scale's digits, unquoted); DATE "YYYY-MM-DD", DATETIME and TIMESTAMP
 * "YYYY-MM-DD hh:mm:ss.ffffff", TIME "[-]hh:mm:ss.ffffff" (my_TIME_to_str
 * with 6 decimals), quoted.  Other opaque types print as
 * "base64:typeN:..." -- not reproduced here: UNSUPPORTED.
 *
 * Offsets are checked more strictly than Value::element() does: a key or
 * a non-inlined value must start past all of its container's entries (the
 * serializer and in-place updates never put one elsewhere), and inside the
 * container's size.
 *
 * None of this was checked against a MySQL server (there is none here);
 * tests/unit/check_myjson.c builds its fixtures by hand from the above.
 */
#include "myjson.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mytypes.h"
#include "util.h"

enum {
	JT_SMALL_OBJECT = 0x00,
	JT_LARGE_OBJECT = 0x01,
	JT_SMALL_ARRAY = 0x02,
	JT_LARGE_ARRAY = 0x03,
	JT_LITERAL = 0x04,
	JT_INT16 = 0x05,
	JT_UINT16 = 0x06,
	JT_INT32 = 0x07,
	JT_UINT32 = 0x08,
	JT_INT64 = 0x09,
	JT_UINT64 = 0x0a,
	JT_DOUBLE = 0x0b,
	JT_STRING = 0x0c,
	JT_OPAQUE = 0x0f,
};

/* The text may take at most this many bytes per binary byte (plus a little). */
#define TEXT_PER_BYTE 8

/* One rendering. */
struct jw {
	struct change_buf *out;	 /* borrowed */
	size_t start;		 /* out->len on entry */
	size_t limit;		 /* most bytes the text may take */
	const char *err;	 /* first malformation: the document is refused */
	const char *unsupported; /* first value not reproduced */
	bool bad_text;		 /* a string or key is not UTF-8 */
};

static bool fail(struct jw *w, const char *msg)
{
	if (w->err == NULL)
		w->err = msg;
	return false;
}

/*
 * Legitimate documents cannot exceed the limit: the widest expansion is a
 * control character (1 byte, printed \u00xx); anything larger reuses one
 * value's bytes for several values.
 */
static bool put(struct jw *w, const void *p, size_t n)
{
	struct change_buf *b = w->out;
	if (b->len - w->start + n > w->limit)
		return fail(w, "JSON text too large for its binary size (values share offsets)");
	change_buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return true;
}

static bool put_str(struct jw *w, const char *s)
{
	return put(w, s, strlen(s));
}

static bool put_fmt(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool put_fmt(struct jw *w, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return fail(w, "BUG: JSON scalar text too long");
	return put(w, tmp, (size_t)n);
}

static uint64_t rd_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* read_variable_length(): false when it runs past n, takes over 5 bytes or exceeds 32 bits. */
static bool rd_varlen(const uint8_t *p, size_t n, uint32_t *len, size_t *used)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n && i < 5; i++) {
		v |= (uint64_t)(p[i] & 0x7F) << (7 * i);
		if ((p[i] & 0x80) == 0) {
			if (v > UINT32_MAX)
				return false;
			*len = (uint32_t)v;
			*used = i + 1;
			return true;
		}
	}
	return false;
}

/* A JSON string as double_quote() writes it. */
static bool put_string(struct jw *w, const uint8_t *s, size_t n)
{
	if (!mytypes_utf8_valid(s, n))
		w->bad_text = true; /* keep going: a malformation later still wins */
	if (!put(w, "\"", 1))
		return false;
	size_t run = 0; /* bytes s[i - run .. i) need no escape */
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (c > 0x1F && c != '"' && c != '\\') {
			run++;
			continue;
		}
		if (!put(w, s + i - run, run))
			return false;
		run = 0;
		char esc[8];
		switch (c) {
		case '"':
		case '\\':
			esc[0] = '\\', esc[1] = (char)c, esc[2] = '\0';
			break;
		case '\b':
			memcpy(esc, "\\b", 3);
			break;
		case '\f':
			memcpy(esc, "\\f", 3);
			break;
		case '\n':
			memcpy(esc, "\\n", 3);
			break;
		case '\r':
			memcpy(esc, "\\r", 3);
			break;
		case '\t':
			memcpy(esc, "\\t", 3);
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u00%02x", c);
			break;
		}
		if (!put_str(w, esc))
			return false;
	}
	return put(w, s + n - run, run) && put(w, "\"", 1);
}

/*
 * A double as wrapper_to_string() prints it: my_gcvt(d, MY_GCVT_ARG_DOUBLE,
 * MY_GCVT_MAX_FIELD_WIDTH = 34, ...) followed by ".0" when the result has
 * neither '.' nor 'e'.  my_gcvt's choice between 'f' and 'e' formats is
 * followed line by line; its re-rounding to a narrower width never applies
 * to at most 17 digits in 33 or 34 characters.
 */
static bool put_double(struct jw *w, double v)
{
	char txt[64];
	size_t k = 0;
	if (!isfinite(v))
		return fail(w, "JSON double is NaN or infinite (MySQL cannot store one)");
	int width = 34;
	bool neg = signbit(v);
	if (v < 0)
		width--; /* my_gcvt: "if (x < 0.) width--": not for -0.0 */
	if (neg)
		txt[k++] = '-';
	if (v == 0) { /* dtoa: "0", decpt 1, the sign kept */
		memcpy(txt + k, "0.0", 4);
		return put_str(w, txt);
	}
	char d[32];
	int e10;
	mytypes_shortest_digits(fabs(v), d, &e10);
	int len = (int)strlen(d), decpt = e10 + 1;
	int exp_len = 1 + (decpt >= 101 || decpt <= -99) + (decpt >= 11 || decpt <= -9);
	bool have_space = (decpt <= 0		      ? len - decpt + 2
			   : decpt > 0 && decpt < len ? len + 1
						      : decpt) <= width;
	bool force_e = decpt <= 0 && width <= 2 - decpt && width >= 3 + exp_len;
	const int max_f = 15; /* MAX_DECPT_FOR_F_FORMAT = DBL_DIG */
	if ((have_space ||
	     ((decpt <= width && (decpt >= -1 || (decpt == -2 && (len > 1 || !force_e)))) &&
	      !force_e)) &&
	    (!have_space || (decpt >= -max_f + 1 && (decpt <= max_f || len > decpt)))) {
		if (width - ((decpt < len) + (decpt <= 0 ? 1 - decpt : 0)) < len)
			return fail(w, "BUG: my_gcvt would re-round this double");
		if (decpt <= 0) {
			txt[k++] = '0';
			txt[k++] = '.';
			for (int i = decpt; i < 0; i++)
				txt[k++] = '0';
		}
		int i;
		for (i = 1; i <= len; i++) {
			txt[k++] = d[i - 1];
			if (i == decpt && i < len)
				txt[k++] = '.';
		}
		for (; i <= decpt; i++)
			txt[k++] = '0';
		txt[k] = '\0';
		if (strchr(txt, '.') == NULL)
			memcpy(txt + k, ".0", 3);
		return put_str(w, txt);
	}
	int x = decpt - 1;
	txt[k++] = d[0];
	if (len > 1) {
		txt[k++] = '.';
		memcpy(txt + k, d + 1, (size_t)len - 1);
		k += (size_t)len - 1;
	}
	snprintf(txt + k, sizeof(txt) - k, "e%s%d", x < 0 ? "-" : "", x < 0 ? -x : x);
	return put_str(w, txt);
}

/* DECIMAL: precision, scale, then the binary DECIMAL, printed by decimal2string(). */
static bool put_decimal(struct jw *w, const uint8_t *d, size_t n)
{
	if (n < 2)
		return fail(w, "JSON DECIMAL shorter than its precision and scale");
	struct binlog_column c = {.type = BINLOG_T_NEWDECIMAL,
				  .real_type = BINLOG_T_NEWDECIMAL,
				  .precision = d[0],
				  .scale = d[1],
				  .sign_known = true};
	if (binlog_column_check(&c) != NULL)
		return fail(w, "JSON DECIMAL precision/scale out of range");
	struct change_buf *b = w->out;
	size_t at = b->len, used;
	enum binlog_value_status st;
	const char *derr = NULL;
	if (!binlog_value_decode(&c, d + 2, n - 2, &used, b, &st, &derr)) {
		b->len = at;
		return fail(w, derr);
	}
	if (used != n - 2 || st != BINLOG_VAL_OK) {
		b->len = at;
		return fail(w, "JSON DECIMAL length does not match its precision and scale");
	}
	/* the sign bit is the first byte's top bit, inverted; a zero shows no '-' */
	if ((d[2] & 0x80) == 0 && b->data[at] != '-')
		w->unsupported = w->unsupported
				     ? w->unsupported
				     : "negative-zero DECIMAL in JSON (how MySQL prints it "
				       "is not established)";
	size_t got = b->len - at;
	b->len = at;
	char tmp[80];
	if (got >= sizeof(tmp))
		return fail(w, "BUG: DECIMAL text too long");
	memcpy(tmp, b->data + at, got);
	return put(w, tmp, got); /* through put(): the size bound */
}

/* DATE / TIME / DATETIME / TIMESTAMP: the packed longlong, printed with 6 decimals. */
static bool put_temporal(struct jw *w, uint8_t ftype, const uint8_t *d, size_t n)
{
	if (n != 8)
		return fail(w, "JSON date/time value not 8 bytes");
	int64_t packed = (int64_t)rd_le(d, 8);
	if (ftype == BINLOG_T_TIME) { /* TIME_from_longlong_time_packed() */
		if (packed == INT64_MIN)
			return fail(w, "JSON TIME out of range");
		bool neg = packed < 0;
		uint64_t a = (uint64_t)(neg ? -packed : packed);
		uint64_t hms = a >> 24, usec = a & 0xFFFFFF;
		if (usec > 999999)
			return fail(w, "JSON TIME fraction out of range");
		return put_fmt(w, "\"%s%02u:%02u:%02u.%06u\"", neg ? "-" : "",
			       (unsigned)(hms >> 12 & 0x3FF), (unsigned)(hms >> 6 & 63),
			       (unsigned)(hms & 63), (unsigned)usec);
	}
	if (packed < 0) /* MySQL writes none; my_datetime_to_str would drop the sign */
		return fail(w, "JSON DATE/DATETIME/TIMESTAMP negative");
	uint64_t a = (uint64_t)packed; /* TIME_from_longlong_datetime_packed() */
	uint64_t usec = a & 0xFFFFFF, ymdhms = a >> 24;
	uint64_t ymd = ymdhms >> 17, ym = ymd >> 5, hms = ymdhms & 0x1FFFF;
	unsigned year = (unsigned)(ym / 13), month = (unsigned)(ym % 13),
		 day = (unsigned)(ymd & 31);
	if (ym / 13 > 9999) /* 5.7 and 8.0 print such years differently */
		return fail(w, "JSON DATE/DATETIME/TIMESTAMP year past 9999");
	if (usec > 999999)
		return fail(w, "JSON DATETIME/TIMESTAMP fraction out of range");
	if (ftype == BINLOG_T_DATE)
		return put_fmt(w, "\"%04u-%02u-%02u\"", year, month, day);
	return put_fmt(w, "\"%04u-%02u-%02u %02u:%02u:%02u.%06u\"", year, month, day,
		       (unsigned)(hms >> 12), (unsigned)(hms >> 6 & 63), (unsigned)(hms & 63),
		       (unsigned)usec);
}

static bool put_opaque(struct jw *w, uint8_t ftype, const uint8_t *d, size_t n)
{
	switch (ftype) {
	case BINLOG_T_VAR_STRING:
		return put_string(w, d, n);
	case BINLOG_T_NEWDECIMAL:
		return put_decimal(w, d, n);
	case BINLOG_T_DATE:
	case BINLOG_T_TIME:
	case BINLOG_T_DATETIME:
	case BINLOG_T_TIMESTAMP:
		return put_temporal(w, ftype, d, n);
	default:
		if (w->unsupported == NULL)
			w->unsupported = "MySQL JSON opaque value of a type other than DECIMAL, "
					 "DATE, TIME, DATETIME, TIMESTAMP (MySQL prints it as "
					 "\"base64:typeN:...\")";
		return true;
	}
}

/* parse_scalar(): a scalar of type at p[0..n). */
static bool put_scalar(struct jw *w, uint8_t type, const uint8_t *p, size_t n)
{
	static const uint8_t width[] = {
	    [JT_INT16] = 2, [JT_UINT16] = 2, [JT_INT32] = 4, [JT_UINT32] = 4,
	    [JT_INT64] = 8, [JT_UINT64] = 8, [JT_DOUBLE] = 8};
	uint32_t len;
	size_t used;
	switch (type) {
	case JT_LITERAL:
		if (n < 1)
			return fail(w, "JSON literal truncated");
		if (p[0] > 2)
			return fail(w, "JSON literal neither null, true nor false");
		return put_str(w, p[0] == 0 ? "null" : p[0] == 1 ? "true" : "false");
	case JT_INT16:
	case JT_UINT16:
	case JT_INT32:
	case JT_UINT32:
	case JT_INT64:
	case JT_UINT64:
	case JT_DOUBLE: {
		int nb = width[type];
		if (n < (size_t)nb)
			return fail(w, "JSON number truncated");
		uint64_t u = rd_le(p, nb);
		int shift = 64 - 8 * nb;
		switch (type) {
		case JT_INT16:
		case JT_INT32:
		case JT_INT64:
			return put_fmt(w, "%lld", (long long)((int64_t)(u << shift) >> shift));
		case JT_DOUBLE: {
			double v;
			memcpy(&v, &u, 8);
			return put_double(w, v);
		}
		default:
			return put_fmt(w, "%llu", (unsigned long long)u);
		}
	}
	case JT_STRING:
		if (!rd_varlen(p, n, &len, &used) || len > n - used)
			return fail(w, "JSON string length past the end of its value");
		return put_string(w, p + used, len);
	case JT_OPAQUE:
		if (n < 1 || !rd_varlen(p + 1, n - 1, &len, &used) || len > n - 1 - used)
			return fail(w, "JSON opaque value length past the end of its value");
		return put_opaque(w, p[0], p + 1 + used, len);
	default:
		return fail(w, "JSON value of an unknown type");
	}
}

/* inlined_type(): values that sit in their value entry. */
static bool inlined(uint8_t type, bool large)
{
	return type == JT_LITERAL || type == JT_INT16 || type == JT_UINT16 ||
	       (large && (type == JT_INT32 || type == JT_UINT32));
}

static bool put_value(struct jw *w, uint8_t type, const uint8_t *p, size_t n, int depth);

/*
 * An object or array at p[0..n) (from its count on), inside depth
 * enclosing ones.  Every key and non-inlined value must lie past the
 * entries (and for an object past the keys' start) and within size:
 * MySQL's serializer writes nothing else.
 */
static bool put_container(struct jw *w, uint8_t type, const uint8_t *p, size_t n, int depth)
{
	bool large = type == JT_LARGE_OBJECT || type == JT_LARGE_ARRAY;
	bool obj = type == JT_SMALL_OBJECT || type == JT_LARGE_OBJECT;
	int osz = large ? 4 : 2;
	if (depth >= MYJSON_MAX_DEPTH)
		return fail(w, "JSON nested deeper than MySQL allows (100 levels)");
	if (n < 2 * (size_t)osz)
		return fail(w, "JSON array/object header truncated");
	uint64_t count = rd_le(p, osz), bytes = rd_le(p + osz, osz);
	if (bytes > n)
		return fail(w, "JSON array/object size past the end of its value");
	uint64_t kes = obj ? (uint64_t)osz + 2 : 0, ves = 1 + (uint64_t)osz;
	uint64_t header = 2 * (uint64_t)osz + count * (kes + ves);
	if (header > bytes)
		return fail(w, "JSON array/object entries past its size");
	if (!put(w, obj ? "{" : "[", 1))
		return false;
	for (uint64_t i = 0; i < count; i++) {
		if (i > 0 && !put(w, ", ", 2))
			return false;
		if (obj) {
			const uint8_t *ke = p + 2 * osz + i * kes;
			uint64_t koff = rd_le(ke, osz), klen = rd_le(ke + osz, 2);
			if (koff < header || koff + klen > bytes)
				return fail(w, "JSON object key outside its object");
			if (!put_string(w, p + koff, (size_t)klen) || !put(w, ": ", 2))
				return false;
		}
		uint64_t ve = 2 * (uint64_t)osz + count * kes + i * ves;
		uint8_t t = p[ve];
		if (inlined(t, large)) {
			if (!put_scalar(w, t, p + ve + 1, (size_t)ves - 1))
				return false;
			continue;
		}
		uint64_t voff = rd_le(p + ve + 1, osz);
		if (voff < header || voff >= bytes)
			return fail(w, "JSON value offset outside its array/object");
		if (!put_value(w, t, p + voff, (size_t)(bytes - voff), depth + 1))
			return false;
	}
	return put(w, obj ? "}" : "]", 1);
}

/* parse_value(): a value of type at p[0..n), inside depth arrays/objects. */
static bool put_value(struct jw *w, uint8_t type, const uint8_t *p, size_t n, int depth)
{
	switch (type) {
	case JT_SMALL_OBJECT:
	case JT_LARGE_OBJECT:
	case JT_SMALL_ARRAY:
	case JT_LARGE_ARRAY:
		return put_container(w, type, p, n, depth);
	default:
		return put_scalar(w, type, p, n);
	}
}

bool myjson_render(const uint8_t *p, size_t n, struct change_buf *out,
		   enum binlog_value_status *status, const char **err)
{
	struct jw w = {.out = out, .start = out->len};
	w.limit = n > (SIZE_MAX - 64) / TEXT_PER_BYTE ? SIZE_MAX : n * TEXT_PER_BYTE + 64;
	bool ok = n == 0 ? put_str(&w, "null") /* parse_binary(): empty is null */
			 : put_value(&w, p[0], p + 1, n - 1, 0);
	if (!ok || w.err != NULL) {
		out->len = w.start;
		*err = w.err ? w.err : "BUG: JSON rendering failed without a reason";
		return false;
	}
	*status = BINLOG_VAL_OK;
	if (w.unsupported != NULL) {
		out->len = w.start;
		*status = BINLOG_VAL_UNSUPPORTED;
		*err = w.unsupported;
	} else if (w.bad_text) {
		out->len = w.start;
		*status = BINLOG_VAL_BAD_TEXT;
		mytypes_bytea(out, p, n, 0);
	}
	return true;
}
