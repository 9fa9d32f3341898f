/*
 * Unit tests for myjson: MySQL binary JSON to MySQL's JSON text.
 *
 * There is no MySQL server here (Debian 12 ships MariaDB only), so every
 * fixture is built by hand from the format as MySQL's sql/json_binary.h
 * documents it (summarised at the top of lib/myjson.c), each explained in
 * a comment; the expected texts follow MySQL 8.0's wrapper_to_string()
 * (sql/json_dom.cc) and my_gcvt() (strings/dtoa.cc) as read, not as
 * observed.  All multi-byte numbers are little-endian.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binlog_rows.h"
#include "myjson.h"
#include "util.h"

/* --- helpers ------------------------------------------------------------------------ */

/* Renders p[0..n); fails the test unless it succeeds with status st and text want. */
static void expect_st(const uint8_t *p, size_t n, enum binlog_value_status st, const char *want)
{
	struct change_buf b = {0};
	enum binlog_value_status got = BINLOG_VAL__MAX;
	const char *err = NULL;
	ck_assert_msg(myjson_render(p, n, &b, &got, &err), "refused: %s (want %s)", err, want);
	ck_assert_msg(got == st, "status %s, want %s", binlog_value_status_name(got),
		      binlog_value_status_name(st));
	ck_assert_msg(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0,
		      "got '%.*s', want '%s'", (int)b.len, (const char *)b.data, want);
	change_buf_free(&b);
}

static void expect(const uint8_t *p, size_t n, const char *want)
{
	expect_st(p, n, BINLOG_VAL_OK, want);
}

#define EXPECT(want, ...)                                                                          \
	do {                                                                                       \
		static const uint8_t fx_[] = {__VA_ARGS__};                                        \
		expect(fx_, sizeof(fx_), want);                                                    \
	} while (0)

/* Renders p[0..n); fails unless it is refused with a message containing what. */
static void expect_err(const uint8_t *p, size_t n, const char *what)
{
	struct change_buf b = {0};
	static const uint8_t pre[] = "prefix";
	b.data = xmalloc(16);
	b.cap = 16;
	memcpy(b.data, pre, 6);
	b.len = 6;
	enum binlog_value_status st = BINLOG_VAL_OK;
	const char *err = NULL;
	bool ok = myjson_render(p, n, &b, &st, &err);
	ck_assert_msg(!ok, "accepted as '%.*s' (want an error with '%s')", (int)b.len,
		      (const char *)b.data, what);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, what) != NULL, "error '%s', want '%s'", err, what);
	ck_assert_uint_eq(b.len, 6); /* out as it was */
	ck_assert(memcmp(b.data, pre, 6) == 0);
	change_buf_free(&b);
}

#define EXPECT_ERR(what, ...)                                                                      \
	do {                                                                                       \
		static const uint8_t fx_[] = {__VA_ARGS__};                                        \
		expect_err(fx_, sizeof(fx_), what);                                                \
	} while (0)

/* A top-level double: type 0x0b, then the IEEE 754 bits as 8 bytes LE (float8store). */
static void expect_double(double v, const char *want)
{
	uint8_t fx[9] = {0x0B};
	uint64_t u;
	memcpy(&u, &v, 8);
	for (int i = 0; i < 8; i++)
		fx[1 + i] = (uint8_t)(u >> (8 * i));
	expect(fx, sizeof(fx), want);
}

/* --- scalars ------------------------------------------------------------------------ */

START_TEST(test_literals)
{
	EXPECT("null", 0x04, 0x00); /* type 0x04 literal, 0x00 null */
	EXPECT("true", 0x04, 0x01);
	EXPECT("false", 0x04, 0x02);
	expect((const uint8_t *)"", 0, "null"); /* an empty value: parse_binary() reads null */
	EXPECT_ERR("literal", 0x04, 0x03);	/* no literal 3 */
	EXPECT_ERR("literal truncated", 0x04);
}
END_TEST

START_TEST(test_integers)
{
	/* type byte, then the two's complement value LE in 2, 4 or 8 bytes */
	EXPECT("-32768", 0x05, 0x00, 0x80); /* int16 */
	EXPECT("32767", 0x05, 0xFF, 0x7F);
	EXPECT("-1", 0x05, 0xFF, 0xFF);
	EXPECT("0", 0x06, 0x00, 0x00); /* uint16 */
	EXPECT("65535", 0x06, 0xFF, 0xFF);
	EXPECT("-2147483648", 0x07, 0x00, 0x00, 0x00, 0x80); /* int32 */
	EXPECT("2147483647", 0x07, 0xFF, 0xFF, 0xFF, 0x7F);
	EXPECT("4294967295", 0x08, 0xFF, 0xFF, 0xFF, 0xFF); /* uint32 */
	EXPECT("0", 0x08, 0x00, 0x00, 0x00, 0x00);
	EXPECT("-9223372036854775808", 0x09, 0, 0, 0, 0, 0, 0, 0, 0x80); /* int64 */
	EXPECT("9223372036854775807", 0x09, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F);
	EXPECT("18446744073709551615", 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	       0xFF); /* uint64 */
	EXPECT("0", 0x0A, 0, 0, 0, 0, 0, 0, 0, 0);
	EXPECT_ERR("number truncated", 0x05, 0x01);
	EXPECT_ERR("number truncated", 0x09, 1, 2, 3, 4, 5, 6, 7);
	EXPECT_ERR("number truncated", 0x0B, 0, 0, 0, 0, 0, 0, 0xF0);
}
END_TEST

/*
 * my_gcvt(d, MY_GCVT_ARG_DOUBLE, 34): the shortest digits that read back;
 * 'f' format for decpt (the exponent + 1) in [-14, 15] (or 16 with 17
 * digits), else d.ddde[-]X; then ".0" when neither '.' nor 'e' shows.
 */
START_TEST(test_doubles)
{
	expect_double(1.0, "1.0");
	expect_double(0.0, "0.0");
	expect_double(-0.0, "-0.0"); /* dtoa keeps the sign of zero */
	expect_double(-1.5, "-1.5");
	expect_double(100.0, "100.0");
	expect_double(0.1, "0.1");
	expect_double(0.30000000000000004, "0.30000000000000004");
	expect_double(3.141592653589793, "3.141592653589793");
	expect_double(1e14, "100000000000000.0");		 /* decpt 15: still 'f' */
	expect_double(123456789012345.6, "123456789012345.6");	 /* decpt 15, 16 digits */
	expect_double(1234567890123456.7, "1234567890123456.8"); /* decpt 16, 17 digits: 'f' */
	expect_double(1e15, "1e15");				 /* decpt 16, 1 digit: 'e' */
	expect_double(1.5e15, "1.5e15");
	expect_double(-1e16, "-1e16");
	expect_double(1e21, "1e21");
	expect_double(1e23,
		      "1e23"); /* a bound of its interval: dtoa takes it (PostgreSQL would not) */
	expect_double(1e100, "1e100");
	expect_double(1.7976931348623157e308, "1.7976931348623157e308");
	expect_double(1e-5, "0.00001");
	expect_double(1.5e-7, "0.00000015");
	expect_double(1e-15, "0.000000000000001"); /* decpt -14: 'f' */
	expect_double(1.2345678901234567e-15, "0.0000000000000012345678901234568");
	expect_double(1e-16, "1e-16");		   /* decpt -15: 'e' */
	expect_double(-2.5e-10, "-0.00000000025"); /* decpt -9: 'f' */
	expect_double(2.2250738585072014e-308, "2.2250738585072014e-308");
	expect_double(5e-324, "5e-324"); /* the smallest subnormal */
	expect_double(-1e-300, "-1e-300");

	/* NaN and infinities: MySQL refuses to store them */
	EXPECT_ERR("NaN or infinite", 0x0B, 0, 0, 0, 0, 0, 0, 0xF8, 0x7F);
	EXPECT_ERR("NaN or infinite", 0x0B, 0, 0, 0, 0, 0, 0, 0xF0, 0xFF);
}
END_TEST

START_TEST(test_strings)
{
	/* type 0x0c, length (7 bits a byte, low first, high bit = more), utf8mb4 bytes */
	EXPECT("\"abc\"", 0x0C, 0x03, 'a', 'b', 'c');
	EXPECT("\"\"", 0x0C, 0x00);
	/* escaped as double_quote() does: \" \\ \b \f \n \r \t, other < 0x20 as \u00xx;
	 * DEL and '/' are not escaped */
	EXPECT("\"\\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u0001\\u001f\x7f/\"", 0x0C, 12, '"', '\\', '\b',
	       '\f', '\n', '\r', '\t', 0x00, 0x01, 0x1F, 0x7F, '/');
	/* 4-byte UTF-8 (U+1F600) and 2-byte (U+00E9) pass as they are */
	EXPECT("\"\xF0\x9F\x98\x80\xC3\xA9\"", 0x0C, 6, 0xF0, 0x9F, 0x98, 0x80, 0xC3, 0xA9);
	/* a length MySQL would write shorter is still read (read_variable_length) */
	EXPECT("\"a\"", 0x0C, 0x81, 0x00, 'a');

	/* 200 bytes: length 200 = 0x48 | 0x80, then 200 >> 7 = 1 */
	uint8_t fx[2 + 16384 + 3];
	char want[16384 + 3];
	fx[0] = 0x0C, fx[1] = 0xC8, fx[2] = 0x01;
	memset(fx + 3, 'x', 200);
	want[0] = '"';
	memset(want + 1, 'x', 200);
	want[201] = '"', want[202] = '\0';
	expect(fx, 3 + 200, want);
	expect_err(fx, 3 + 199, "string length past the end");

	/* 16384 bytes: three length bytes 0x80 0x80 0x01 (0 + 0 << 7 + 1 << 14) */
	fx[1] = 0x80, fx[2] = 0x80, fx[3] = 0x01;
	memset(fx + 4, 'y', 16384);
	want[0] = '"';
	memset(want + 1, 'y', 16384);
	want[16385] = '"', want[16386] = '\0';
	expect(fx, 4 + 16384, want);

	/* a length whose continuation never ends, or needs a sixth byte */
	EXPECT_ERR("string length", 0x0C, 0x80);
	EXPECT_ERR("string length", 0x0C, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01);
	EXPECT_ERR("string length", 0x0C, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F); /* over 32 bits */
	EXPECT_ERR("string length", 0x0C, 0x05, 'a');
	EXPECT_ERR("string length", 0x0C);

	/* bytes that are not UTF-8: BAD_TEXT, the bytea hex of the whole value */
	static const uint8_t bad[] = {0x0C, 0x01, 0xFF};
	expect_st(bad, sizeof(bad), BINLOG_VAL_BAD_TEXT, "\\x0c01ff");
}
END_TEST

/* --- arrays and objects ------------------------------------------------------------- */

START_TEST(test_empty_containers)
{
	/* count 0, size 4 (the two fields themselves): small = 2-byte fields */
	EXPECT("[]", 0x02, 0x00, 0x00, 0x04, 0x00);
	EXPECT("{}", 0x00, 0x00, 0x00, 0x04, 0x00);
	/* large: 4-byte count and size, size 8 */
	EXPECT("[]", 0x03, 0, 0, 0, 0, 0x08, 0, 0, 0);
	EXPECT("{}", 0x01, 0, 0, 0, 0, 0x08, 0, 0, 0);
}
END_TEST

START_TEST(test_small_array)
{
	/*
	 * [1, "ab", true]: count 3, size 16; value entries (type, 2-byte
	 * inlined value or offset from the count): int16 1 inlined, string at
	 * offset 13 (after 4 + 3*3 header bytes), true inlined; then the
	 * string: length 2, "ab".
	 */
	EXPECT("[1, \"ab\", true]", 0x02, 0x03, 0x00, 0x10, 0x00, /* count, size */
	       0x05, 0x01, 0x00,				  /* int16 1 */
	       0x0C, 0x0D, 0x00,				  /* string @13 */
	       0x04, 0x01, 0x00,				  /* true */
	       0x02, 'a', 'b');
	/*
	 * [70000, 2.5]: int32 and double are not inlined in the small format:
	 * int32 at 10 (4 + 2*3), double 2.5 (0x4004000000000000) at 14; size 22.
	 */
	EXPECT("[70000, 2.5]", 0x02, 0x02, 0x00, 0x16, 0x00, 0x07, 0x0A, 0x00, 0x0B, 0x0E, 0x00,
	       0x70, 0x11, 0x01, 0x00, /* 70000 = 0x11170 */
	       0, 0, 0, 0, 0, 0, 0x04, 0x40);
	/* [true] whose size leaves 3 unused bytes (a partial update's hole): accepted */
	EXPECT("[true]", 0x02, 0x01, 0x00, 0x0A, 0x00, 0x04, 0x01, 0x00, 0xEE, 0xEE, 0xEE);
}
END_TEST

START_TEST(test_small_object)
{
	/*
	 * {"a": 1, "c": "x", "bb": [null]}, keys in MySQL's order (shorter
	 * first, then bytewise), which is also the printed order.  count 3,
	 * size 38; key entries (2-byte offset, 2-byte length): "a" @25,
	 * "c" @26, "bb" @27; value entries: int16 1 inlined, string @29,
	 * small array @31; header 4 + 3*4 + 3*3 = 25; keys "acbb"; string
	 * length 1 "x"; array [null]: count 1, size 7, literal null inlined.
	 */
	EXPECT("{\"a\": 1, \"c\": \"x\", \"bb\": [null]}", 0x00, 0x03, 0x00, 0x26, 0x00, 0x19, 0x00,
	       0x01, 0x00,		      /* "a" */
	       0x1A, 0x00, 0x01, 0x00,	      /* "c" */
	       0x1B, 0x00, 0x02, 0x00,	      /* "bb" */
	       0x05, 0x01, 0x00,	      /* 1 */
	       0x0C, 0x1D, 0x00,	      /* string @29 */
	       0x02, 0x1F, 0x00,	      /* array @31 */
	       'a', 'c', 'b', 'b', 0x01, 'x', /* keys, "x" */
	       0x01, 0x00, 0x07, 0x00, 0x04, 0x00, 0x00);
	/* a key is escaped like a string: {"q\"": 1}, key @11 (4 + 4 + 3), size 13 */
	EXPECT("{\"q\\\"\": 1}", 0x00, 0x01, 0x00, 0x0D, 0x00, 0x0B, 0x00, 0x02, 0x00, 0x05, 0x01,
	       0x00, 'q', '"');
	/* a key that is not UTF-8: BAD_TEXT with the value's hex */
	static const uint8_t badkey[] = {0x00, 0x01, 0x00, 0x0C, 0x00, 0x0B, 0x00,
					 0x01, 0x00, 0x04, 0x00, 0x00, 0xC3};
	expect_st(badkey, sizeof(badkey), BINLOG_VAL_BAD_TEXT, "\\x0001000c000b000100040000c3");
}
END_TEST

START_TEST(test_large)
{
	/*
	 * {"k": 70000, "s": "é"} in the large format: 4-byte count and size,
	 * key entries 4-byte offset + 2-byte length, value entries type +
	 * 4 bytes, int32 inlined; header 8 + 2*6 + 2*5 = 30; keys @30, @31;
	 * string @32: length 2, C3 A9; size 35.
	 */
	EXPECT("{\"k\": 70000, \"s\": \"\xC3\xA9\"}", 0x01, 0x02, 0, 0, 0, 0x23, 0, 0, 0, 0x1E, 0,
	       0, 0, 0x01, 0x00,	     /* "k" */
	       0x1F, 0, 0, 0, 0x01, 0x00,    /* "s" */
	       0x07, 0x70, 0x11, 0x01, 0x00, /* int32 70000 inlined */
	       0x0C, 0x20, 0, 0, 0,	     /* string @32 */
	       'k', 's', 0x02, 0xC3, 0xA9);
	/*
	 * [-1, false, 4294967295, -9223372036854775808]: int16, literal and
	 * uint32 inlined in 4-byte fields, int64 @28 (8 + 4*5); size 36.
	 */
	EXPECT("[-1, false, 4294967295, -9223372036854775808]", 0x03, 0x04, 0, 0, 0, 0x24, 0, 0, 0,
	       0x05, 0xFF, 0xFF, 0x00, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00, 0x08, 0xFF, 0xFF, 0xFF,
	       0xFF, 0x09, 0x1C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80);
	/* int32 in a small array is not inlined: type 0x07 there means an offset */
	EXPECT("[65536]", 0x02, 0x01, 0x00, 0x0B, 0x00, 0x07, 0x07, 0x00, 0x00, 0x00, 0x01, 0x00);
}
END_TEST

START_TEST(test_nested)
{
	/*
	 * [{"a": []}, {}]: outer small array, count 2, entries @10 and @26;
	 * the object @10: count 1, size 16, key "a" @11 (4 + 4 + 3), empty
	 * array @12 (count 0, size 4); the empty object @26 (size 4); outer
	 * size 30.
	 */
	EXPECT("[{\"a\": []}, {}]", 0x02, 0x02, 0x00, 0x1E, 0x00, 0x00, 0x0A, 0x00, 0x00, 0x1A,
	       0x00, 0x01, 0x00, 0x10, 0x00, 0x0B, 0x00, 0x01, 0x00, 0x02, 0x0C, 0x00, 'a', 0x00,
	       0x00, 0x04, 0x00, /* [] */
	       0x00, 0x00, 0x04, 0x00);
	/* a large array inside a small object: {"x": [true]}, array @12, size 8 + 5 = 13 */
	EXPECT("{\"x\": [true]}", 0x00, 0x01, 0x00, 0x19, 0x00, 0x0B, 0x00, 0x01, 0x00, 0x03, 0x0C,
	       0x00, 'x', 0x01, 0, 0, 0, 0x0D, 0, 0, 0, 0x04, 0x01, 0, 0, 0);
}
END_TEST

/* n nested arrays [[...[]...]]: each level count 1, one entry pointing at @7, size 7 + inner. */
static size_t nest(uint8_t *fx, int levels)
{
	size_t inner = 4; /* the innermost: count 0, size 4 */
	size_t total = 1 + 7 * (size_t)(levels - 1) + inner;
	fx[0] = 0x02;
	uint8_t *p = fx + 1;
	for (int l = 0; l < levels - 1; l++) {
		size_t size = 7 * (size_t)(levels - 1 - l) + inner;
		uint8_t lvl[7] = {0x01, 0x00, (uint8_t)size, (uint8_t)(size >> 8),
				  0x02, 0x07, 0x00};
		memcpy(p, lvl, 7);
		p += 7;
	}
	static const uint8_t empty[4] = {0x00, 0x00, 0x04, 0x00};
	memcpy(p, empty, 4);
	return total;
}

START_TEST(test_depth)
{
	uint8_t fx[1 + 7 * 200 + 4];
	char want[2 * 200 + 1];
	size_t n = nest(fx, MYJSON_MAX_DEPTH);
	memset(want, '[', MYJSON_MAX_DEPTH);
	memset(want + MYJSON_MAX_DEPTH, ']', MYJSON_MAX_DEPTH);
	want[2 * MYJSON_MAX_DEPTH] = '\0';
	expect(fx, n, want); /* 100 levels: what MySQL allows */
	n = nest(fx, MYJSON_MAX_DEPTH + 1);
	expect_err(fx, n, "nested deeper");
	n = nest(fx, 200);
	expect_err(fx, n, "nested deeper");
}
END_TEST

/* --- opaque values ------------------------------------------------------------------ */

START_TEST(test_opaque_decimal)
{
	/*
	 * type 0x0f, field type 246 (NEWDECIMAL), length, then precision,
	 * scale and the binary DECIMAL (digit groups BE, sign bit flipped,
	 * negatives inverted): DECIMAL(3,2) 3.14 is 0x83 (3) 0x0E (14).
	 */
	EXPECT("3.14", 0x0F, 0xF6, 0x04, 0x03, 0x02, 0x83, 0x0E);
	EXPECT("-3.14", 0x0F, 0xF6, 0x04, 0x03, 0x02, 0x7C, 0xF1); /* every byte inverted */
	/* DECIMAL(5,0) 12345: 5 digits in 3 bytes 0x003039, top bit set */
	EXPECT("12345", 0x0F, 0xF6, 0x05, 0x05, 0x00, 0x80, 0x30, 0x39);
	/* DECIMAL(4,3) 0.500: integer digit 0 (1 byte), 3 fraction digits in 2 bytes 0x01F4 */
	EXPECT("0.500", 0x0F, 0xF6, 0x05, 0x04, 0x03, 0x80, 0x01, 0xF4);
	/* DECIMAL(20,2) -12345678901234567.89: 18 integer digits = 9 + 9 (4 bytes each),
	 * 2 fraction digits in 1 byte; positive 0x80000000|12345678, 901234567, 89, inverted */
	EXPECT("-12345678901234567.89", 0x0F, 0xF6, 0x0B, 0x14, 0x02, 0x7F, 0x43, 0x9E, 0xB1, 0xCA,
	       0x48, 0x40, 0x78, 0xA6);
	/* in an array: [1.50] with the opaque value @7, size 7 + 6 = 13 */
	EXPECT("[1.50]", 0x02, 0x01, 0x00, 0x0D, 0x00, 0x0F, 0x07, 0x00, 0xF6, 0x04, 0x03, 0x02,
	       0x81, 0x32);

	/* negative zero (-0.00): how MySQL prints it is not established */
	static const uint8_t negzero[] = {0x0F, 0xF6, 0x04, 0x03, 0x02, 0x7F, 0xFF};
	struct change_buf b = {0};
	enum binlog_value_status st;
	const char *why = NULL;
	ck_assert(myjson_render(negzero, sizeof(negzero), &b, &st, &why));
	ck_assert_int_eq(st, BINLOG_VAL_UNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(why, "negative-zero DECIMAL"));
	ck_assert_uint_eq(b.len, 0);
	change_buf_free(&b);

	EXPECT_ERR("DECIMAL length", 0x0F, 0xF6, 0x05, 0x03, 0x02, 0x83, 0x0E, 0x00);
	EXPECT_ERR("truncated", 0x0F, 0xF6, 0x03, 0x03, 0x02, 0x83);		 /* 1 of 2 bytes */
	EXPECT_ERR("precision/scale", 0x0F, 0xF6, 0x04, 0x46, 0x02, 0x83, 0x0E); /* precision 70 */
	EXPECT_ERR("precision/scale", 0x0F, 0xF6, 0x04, 0x02, 0x03, 0x83, 0x0E); /* scale > prec */
	EXPECT_ERR("DECIMAL shorter", 0x0F, 0xF6, 0x01, 0x03);
	EXPECT_ERR("digit group", 0x0F, 0xF6, 0x04, 0x03, 0x02, 0x83, 0x64); /* 100 in 2 digits */
}
END_TEST

START_TEST(test_opaque_temporal)
{
	/*
	 * 8 bytes: the packed longlong.  DATETIME 2015-01-15 23:24:25.5:
	 * ((2015*13+1) << 5 | 15) << 17 | 23 << 12 | 24 << 6 | 25, << 24,
	 * + 500000 = 0x19951F761907A120.  Printed with six decimals.
	 */
	EXPECT("\"2015-01-15 23:24:25.500000\"", 0x0F, 0x0C, 0x08, 0x20, 0xA1, 0x07, 0x19, 0x76,
	       0x1F, 0x95, 0x19);
	/* TIMESTAMP (7) 2038-01-19 03:14:07.999999: same packing, printed as a DATETIME */
	EXPECT("\"2038-01-19 03:14:07.999999\"", 0x0F, 0x07, 0x08, 0x3F, 0x42, 0x0F, 0x87, 0x33,
	       0xE6, 0xDF, 0x19);
	/* DATE (10) 2015-01-15: the DATETIME packing with a zero time */
	EXPECT("\"2015-01-15\"", 0x0F, 0x0A, 0x08, 0, 0, 0, 0, 0, 0x1E, 0x95, 0x19);
	/* the zero DATETIME: all zero */
	EXPECT("\"0000-00-00 00:00:00.000000\"", 0x0F, 0x0C, 0x08, 0, 0, 0, 0, 0, 0, 0, 0);
	/* TIME (11) -838:59:59: -((838 << 12 | 59 << 6 | 59) << 24) */
	EXPECT("\"-838:59:59.000000\"", 0x0F, 0x0B, 0x08, 0x00, 0x00, 0x00, 0x05, 0x91, 0xCB, 0xFF,
	       0xFF);
	/* TIME 12:34:56.000001 and -00:00:00.5 */
	EXPECT("\"12:34:56.000001\"", 0x0F, 0x0B, 0x08, 0x01, 0x00, 0x00, 0xB8, 0xC8, 0x00, 0x00,
	       0x00);
	EXPECT("\"-00:00:00.500000\"", 0x0F, 0x0B, 0x08, 0xE0, 0x5E, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF,
	       0xFF);

	EXPECT_ERR("not 8 bytes", 0x0F, 0x0C, 0x07, 0, 0, 0, 0, 0, 0, 0);
	EXPECT_ERR("negative", 0x0F, 0x0A, 0x08, 0, 0, 0, 0, 0, 0xE2, 0x6A, 0xE6);
	EXPECT_ERR("year past 9999", 0x0F, 0x0A, 0x08, 0, 0, 0, 0, 0, 0x42, 0xF4, 0x7E);
	EXPECT_ERR("fraction", 0x0F, 0x0C, 0x08, 0x40, 0x42, 0x0F, 0, 0, 0, 0, 0); /* 1000000 us */
}
END_TEST

START_TEST(test_opaque_other)
{
	/* VAR_STRING (253) opaque: printed as a JSON string */
	EXPECT("\"hi\"", 0x0F, 0xFD, 0x02, 'h', 'i');
	/* [true, <BLOB (252) opaque \xAB @10>]: MySQL prints "base64:type252:..."; not reproduced
	 */
	static const uint8_t blob[] = {0x02, 0x02, 0x00, 0x0D, 0x00, 0x04, 0x01,
				       0x00, 0x0F, 0x0A, 0x00, 0xFC, 0x01, 0xAB};
	struct change_buf b = {0};
	enum binlog_value_status st;
	const char *why = NULL;
	ck_assert(myjson_render(blob, sizeof(blob), &b, &st, &why));
	ck_assert_int_eq(st, BINLOG_VAL_UNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(why, "base64"));
	ck_assert_uint_eq(b.len, 0);
	change_buf_free(&b);
	EXPECT_ERR("opaque value length", 0x0F, 0xFC, 0x05, 0x01);
	EXPECT_ERR("opaque value length", 0x0F);
}
END_TEST

/* --- malformed and hostile ----------------------------------------------------------- */

/* The object of test_small_object. */
static const uint8_t obj3[] = {0x00, 0x03, 0x00, 0x26, 0x00, 0x19, 0x00, 0x01, 0x00, 0x1A,
			       0x00, 0x01, 0x00, 0x1B, 0x00, 0x02, 0x00, 0x05, 0x01, 0x00,
			       0x0C, 0x1D, 0x00, 0x02, 0x1F, 0x00, 'a',	 'c',  'b',  'b',
			       0x01, 'x',  0x01, 0x00, 0x07, 0x00, 0x04, 0x00, 0x00};

START_TEST(test_truncated)
{
	/* every proper prefix (but the empty one, which is null) of a nested document fails */
	for (size_t n = 1; n < sizeof(obj3); n++) {
		struct change_buf b = {0};
		enum binlog_value_status st;
		const char *err = NULL;
		ck_assert_msg(!myjson_render(obj3, n, &b, &st, &err), "prefix %zu accepted", n);
		ck_assert_ptr_nonnull(err);
		ck_assert_uint_eq(b.len, 0);
		change_buf_free(&b);
	}
	expect(obj3, sizeof(obj3), "{\"a\": 1, \"c\": \"x\", \"bb\": [null]}");
}
END_TEST

START_TEST(test_bad_offsets)
{
	/* size 0x30 past the 7 bytes there are */
	EXPECT_ERR("size past the end", 0x02, 0x01, 0x00, 0x30, 0x00, 0x04, 0x01, 0x00);
	/* count 5 needs 4 + 15 header bytes, size says 8 */
	EXPECT_ERR("entries past its size", 0x02, 0x05, 0x00, 0x08, 0x00, 0x04, 0x01, 0x00, 0x00);
	/* a huge count in the large format: no overflow, refused */
	EXPECT_ERR("entries past its size", 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0x0D, 0, 0, 0, 0x04, 0x01,
		   0, 0, 0);
	/* a string entry @0x40, past size 10 */
	EXPECT_ERR("value offset", 0x02, 0x01, 0x00, 0x0A, 0x00, 0x0C, 0x40, 0x00, 0x01, 'a', 0x00);
	/* a string entry @2, inside the header */
	EXPECT_ERR("value offset", 0x02, 0x01, 0x00, 0x0A, 0x00, 0x0C, 0x02, 0x00, 0x01, 'a', 0x00);
	/* a value ending past size: string @7 of length 5 in a size-9 array */
	EXPECT_ERR("string length", 0x02, 0x01, 0x00, 0x09, 0x00, 0x0C, 0x07, 0x00, 0x05, 'a', 'b',
		   'c', 'd', 'e');
	/* key @0x30 past the object; key @4 inside the header; key length past the end */
	EXPECT_ERR("key outside", 0x00, 0x01, 0x00, 0x0C, 0x00, 0x30, 0x00, 0x01, 0x00, 0x04, 0x00,
		   0x00, 'k');
	EXPECT_ERR("key outside", 0x00, 0x01, 0x00, 0x0C, 0x00, 0x04, 0x00, 0x01, 0x00, 0x04, 0x00,
		   0x00, 'k');
	EXPECT_ERR("key outside", 0x00, 0x01, 0x00, 0x0C, 0x00, 0x0B, 0x00, 0x09, 0x00, 0x04, 0x00,
		   0x00, 'k');
	/* unknown types: at the top, and in a value entry */
	EXPECT_ERR("unknown type", 0x0D, 0x00);
	EXPECT_ERR("unknown type", 0x02, 0x01, 0x00, 0x08, 0x00, 0x0E, 0x07, 0x00, 0x00);
	EXPECT_ERR("header truncated", 0x03, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00);
}
END_TEST

/*
 * Values that share one offset: each level an array of two entries both
 * pointing at the same child @10 (4 + 2*3).  30 levels would print 2^30
 * leaves from ~300 bytes; the size bound stops it at once.
 */
START_TEST(test_shared_offsets)
{
	enum { LEVELS = 30 };
	uint8_t fx[1 + 10 * LEVELS + 4];
	fx[0] = 0x02;
	uint8_t *p = fx + 1;
	for (int l = 0; l < LEVELS; l++) {
		size_t size = 10 * (size_t)(LEVELS - l) + 4;
		uint8_t lvl[10] = {0x02, 0x00, (uint8_t)size, (uint8_t)(size >> 8),
				   0x02, 0x0A, 0x00,	      0x02,
				   0x0A, 0x00};
		memcpy(p, lvl, 10);
		p += 10;
	}
	static const uint8_t empty[4] = {0x00, 0x00, 0x04, 0x00};
	memcpy(p, empty, 4);
	expect_err(fx, sizeof(fx), "too large");

	/* the last two levels alone, shared offsets and all, are small enough to print */
	uint8_t two[1 + 10 * 2 + 4] = {0x02};
	memcpy(two + 1, fx + 1 + 10 * (LEVELS - 2), sizeof(two) - 1);
	expect(two, sizeof(two), "[[[], []], [[], []]]");
}
END_TEST

/* Random byte changes of every fixture: never a crash, out untouched on refusal. */
START_TEST(test_fuzz)
{
	uint8_t fx[sizeof(obj3)];
	uint32_t seed = 12345;
	unsigned refused = 0, rendered = 0;
	for (int round = 0; round < 20000; round++) {
		memcpy(fx, obj3, sizeof(fx));
		int flips = 1 + round % 4;
		for (int k = 0; k < flips; k++) {
			seed = seed * 1103515245u + 12345u;
			fx[(seed >> 8) % sizeof(fx)] = (uint8_t)(seed >> 20);
		}
		struct change_buf b = {0};
		enum binlog_value_status st;
		const char *err = NULL;
		if (myjson_render(fx, sizeof(fx), &b, &st, &err)) {
			rendered++;
			ck_assert(st == BINLOG_VAL_OK || st == BINLOG_VAL_BAD_TEXT ||
				  st == BINLOG_VAL_UNSUPPORTED);
			ck_assert(b.len <= 8 * sizeof(fx) + 64);
		} else {
			refused++;
			ck_assert_uint_eq(b.len, 0);
			ck_assert_ptr_nonnull(err);
		}
		change_buf_free(&b);
	}
	ck_assert_uint_gt(refused, 0);
	ck_assert_uint_gt(rendered, 0);
}
END_TEST

/* --- through binlog_value_decode: a JSON column (type 245, 4 length bytes) ------------ */

START_TEST(test_binlog_column)
{
	struct binlog_column c = {
	    .type = BINLOG_T_JSON, .real_type = BINLOG_T_JSON, .len_bytes = 4};
	ck_assert_ptr_null(binlog_column_check(&c));
	ck_assert_ptr_null(binlog_value_unsupported(&c));
	/* length 7 LE, then [true, 5]: count 2, size 10, both inlined; then a byte of the next
	 * value */
	static const uint8_t v[] = {0x07, 0,	0,    0,    0x02, 0x02, 0x00,
				    0x0A, 0x00, 0x04, 0x01, 0x00, 0x99};
	/* (size 10 > the 6 bytes after the type: refused as a whole value) */
	struct change_buf b = {0};
	size_t used = 0;
	enum binlog_value_status st;
	const char *err = NULL;
	ck_assert(!binlog_value_decode(&c, v, sizeof(v), &used, &b, &st, &err));
	ck_assert_ptr_nonnull(strstr(err, "size past the end"));
	ck_assert_uint_eq(b.len, 0);

	static const uint8_t ok[] = {0x0B, 0,	 0,    0,    0x02, 0x02, 0x00, 0x0A,
				     0x00, 0x04, 0x01, 0x00, 0x05, 0x05, 0x00, 0x99};
	ck_assert(binlog_value_decode(&c, ok, sizeof(ok), &used, &b, &st, &err));
	ck_assert_uint_eq(used, 15);
	ck_assert_int_eq(st, BINLOG_VAL_OK);
	ck_assert_uint_eq(b.len, 9);
	ck_assert(memcmp(b.data, "[true, 5]", 9) == 0);

	/* an unsupported opaque value: status and reason, nothing appended, bytes skipped */
	static const uint8_t blob[] = {0x04, 0, 0, 0, 0x0F, 0xFC, 0x01, 0xAB};
	b.len = 0;
	err = NULL;
	ck_assert(binlog_value_decode(&c, blob, sizeof(blob), &used, &b, &st, &err));
	ck_assert_int_eq(st, BINLOG_VAL_UNSUPPORTED);
	ck_assert_uint_eq(used, 8);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_ptr_nonnull(strstr(err, "opaque"));
	change_buf_free(&b);
}
END_TEST

static Suite *myjson_suite(void)
{
	Suite *s = suite_create("myjson");
	TCase *tc = tcase_create("scalars");
	tcase_add_test(tc, test_literals);
	tcase_add_test(tc, test_integers);
	tcase_add_test(tc, test_doubles);
	tcase_add_test(tc, test_strings);
	suite_add_tcase(s, tc);
	tc = tcase_create("containers");
	tcase_add_test(tc, test_empty_containers);
	tcase_add_test(tc, test_small_array);
	tcase_add_test(tc, test_small_object);
	tcase_add_test(tc, test_large);
	tcase_add_test(tc, test_nested);
	tcase_add_test(tc, test_depth);
	suite_add_tcase(s, tc);
	tc = tcase_create("opaque");
	tcase_add_test(tc, test_opaque_decimal);
	tcase_add_test(tc, test_opaque_temporal);
	tcase_add_test(tc, test_opaque_other);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_bad_offsets);
	tcase_add_test(tc, test_shared_offsets);
	tcase_add_test(tc, test_fuzz);
	tcase_add_test(tc, test_binlog_column);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(myjson_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
