/*
 * Unit tests for mytext: every PostgreSQL text form the MariaDB sink meets,
 * with the exact literal it must become, and the values a MariaDB column
 * cannot hold exactly, with the reason given.  Column descriptions are
 * what information_schema.COLUMNS says on MariaDB 10.11 (checked there).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mytext.h"

/* --- helpers ------------------------------------------------------------------- */

static struct mytext_col col(const char *data_type, const char *column_type, uint64_t char_max,
			     uint64_t octet_max, unsigned prec, unsigned scale, unsigned fsp)
{
	struct mytext_col c;
	mytext_col_init(&c, data_type, column_type, char_max, octet_max, prec, scale, fsp);
	return c;
}

#define COL_INT	       col("int", "int(11)", 0, 0, 10, 0, 0)
#define COL_UBIGINT    col("bigint", "bigint(20) unsigned", 0, 0, 20, 0, 0)
#define COL_DEC(p, s)  col("decimal", "decimal(" #p "," #s ")", 0, 0, p, s, 0)
#define COL_DOUBLE     col("double", "double", 0, 0, 22, 0, 0)
#define COL_FLOAT      col("float", "float", 0, 0, 12, 0, 0)
#define COL_TS(f)      col("timestamp", "timestamp(" #f ")", 0, 0, 0, 0, f)
#define COL_DT(f)      col("datetime", "datetime(" #f ")", 0, 0, 0, 0, f)
#define COL_TIME(f)    col("time", "time(" #f ")", 0, 0, 0, 0, f)
#define COL_VARCHAR(n) col("varchar", "varchar(" #n ")", n, 4 * n, 0, 0, 0)

static char last_err[1024];

/* The literal for text v (len bytes, or strlen when len < 0); NULL if refused. */
static char *lit_n(struct mytext_col c, uint32_t oid, const char *v, long len)
{
	struct mytext_buf b = {0};
	struct err e = {{0}};
	mytext_buf_adds(&b, "<"); /* something before: refusals must leave it alone */
	size_t n = len < 0 ? strlen(v) : (size_t)len;
	bool ok = mytext_literal(&c, oid, v, n, &b, &e);
	snprintf(last_err, sizeof(last_err), "%s", e.msg);
	if (!ok) {
		ck_assert_str_eq(b.data, "<");
		ck_assert_msg(e.msg[0] != '\0', "refusal without a reason");
		mytext_buf_free(&b);
		return NULL;
	}
	char *out = xstrdup(b.data + 1);
	mytext_buf_free(&b);
	return out;
}

static char *lit(struct mytext_col c, const char *v)
{
	return lit_n(c, 0, v, -1);
}

#define ASSERT_LIT(c, v, want)                                                                     \
	do {                                                                                       \
		char *got_ = lit(c, v);                                                            \
		ck_assert_msg(got_ != NULL, "'%s' refused: %s", v, last_err);                      \
		ck_assert_str_eq(got_, want);                                                      \
		free(got_);                                                                        \
	} while (0)

#define ASSERT_REFUSED(c, v, why)                                                                  \
	do {                                                                                       \
		char *got_ = lit(c, v);                                                            \
		ck_assert_msg(got_ == NULL, "'%s' accepted as %s", v, got_);                       \
		ck_assert_msg(strstr(last_err, why) != NULL, "'%s': reason '%s' lacks '%s'", v,    \
			      last_err, why);                                                      \
	} while (0)

/* --- column descriptions ---------------------------------------------------------- */

START_TEST(test_col_init)
{
	struct mytext_col c = col("int", "int(10) unsigned", 0, 0, 10, 0, 0);
	ck_assert_int_eq(c.kind, MYT_INT);
	ck_assert(c.is_unsigned);
	ck_assert_uint_eq(c.int_bytes, 4);
	c = col("mediumint", "mediumint(9)", 0, 0, 7, 0, 0);
	ck_assert_uint_eq(c.int_bytes, 3);
	ck_assert(!c.is_unsigned);
	c = col("decimal", "decimal(10,2) unsigned", 0, 0, 10, 2, 0);
	ck_assert_int_eq(c.kind, MYT_DECIMAL);
	ck_assert(c.is_unsigned);
	ck_assert_uint_eq(c.precision, 10);
	ck_assert_uint_eq(c.scale, 2);
	c = COL_VARCHAR(5);
	ck_assert_int_eq(c.kind, MYT_CHAR);
	ck_assert_uint_eq(c.max_chars, 5);
	ck_assert_uint_eq(c.max_bytes, 0);
	c = col("text", "text", 65535, 65535, 0, 0, 0); /* TEXT counts bytes */
	ck_assert_uint_eq(c.max_chars, 0);
	ck_assert_uint_eq(c.max_bytes, 65535);
	c = col("varbinary", "varbinary(10)", 10, 10, 0, 0, 0);
	ck_assert_int_eq(c.kind, MYT_BINARY);
	ck_assert_uint_eq(c.max_bytes, 10);
	ck_assert_int_eq(COL_TIME(6).kind, MYT_TIME);
	ck_assert_uint_eq(COL_TIME(6).fsp, 6);
	ck_assert_int_eq(col("bit", "bit(4)", 0, 0, 4, 0, 0).precision, 4);
	ck_assert_int_eq(col("uuid", "uuid", 0, 0, 0, 0, 0).kind, MYT_UUID);
	ck_assert_int_eq(col("inet6", "inet6", 0, 0, 0, 0, 0).kind, MYT_INET6);
	ck_assert_int_eq(col("enum", "enum('x','y')", 1, 4, 0, 0, 0).kind, MYT_CHAR);
	ck_assert_int_eq(col("point", "point", 0, 0, 0, 0, 0).kind, MYT_UNSUPPORTED);
}
END_TEST

/* --- numbers ------------------------------------------------------------------------ */

START_TEST(test_integers)
{
	ASSERT_LIT(COL_INT, "42", "42");
	ASSERT_LIT(COL_INT, "-2147483648", "-2147483648");
	ASSERT_LIT(COL_INT, "2147483647", "2147483647");
	ASSERT_REFUSED(COL_INT, "2147483648", "2147483648 is out of range for int(11)");
	ASSERT_REFUSED(COL_INT, "-2147483649", "out of range");
	ASSERT_LIT(COL_INT, "-0", "0");
	ASSERT_LIT(COL_UBIGINT, "18446744073709551615", "18446744073709551615");
	ASSERT_REFUSED(COL_UBIGINT, "18446744073709551616", "out of range for bigint(20) unsigned");
	ASSERT_REFUSED(COL_UBIGINT, "99999999999999999999999", "out of range");
	ASSERT_REFUSED(COL_UBIGINT, "-1", "out of range");
	ASSERT_LIT(col("bigint", "bigint(20)", 0, 0, 19, 0, 0), "-9223372036854775808",
		   "-9223372036854775808");
	ASSERT_REFUSED(col("bigint", "bigint(20)", 0, 0, 19, 0, 0), "9223372036854775808",
		       "out of range");
	struct mytext_col ti = col("tinyint", "tinyint(4)", 0, 0, 3, 0, 0);
	ASSERT_LIT(ti, "127", "127");
	ASSERT_LIT(ti, "-128", "-128");
	ASSERT_REFUSED(ti, "128", "out of range");
	struct mytext_col um = col("mediumint", "mediumint(8) unsigned", 0, 0, 8, 0, 0);
	ASSERT_LIT(um, "16777215", "16777215");
	ASSERT_REFUSED(um, "16777216", "out of range");
	ASSERT_REFUSED(COL_INT, "1.5", "'1.5' is not an integer");
	ASSERT_REFUSED(COL_INT, "", "'' is not an integer");
	ASSERT_REFUSED(COL_INT, "-", "not an integer");
	ASSERT_REFUSED(COL_INT, " 1", "not an integer");
}
END_TEST

START_TEST(test_booleans)
{
	struct mytext_col b = col("tinyint", "tinyint(1)", 0, 0, 3, 0, 0);
	ASSERT_LIT(b, "t", "1");
	ASSERT_LIT(b, "f", "0");
	ASSERT_LIT(col("bit", "bit(1)", 0, 0, 1, 0, 0), "t", "b'1'");
	ASSERT_LIT(col("bit", "bit(1)", 0, 0, 1, 0, 0), "f", "b'0'");
	ASSERT_REFUSED(b, "true", "not an integer");
}
END_TEST

START_TEST(test_decimals)
{
	ASSERT_LIT(COL_DEC(10, 2), "-123.45", "-123.45");
	ASSERT_LIT(COL_DEC(10, 2), "12345678.90", "12345678.90");
	ASSERT_LIT(COL_DEC(10, 2), "-0.5", "-0.5");
	ASSERT_LIT(COL_DEC(10, 2), "7", "7");
	ASSERT_LIT(COL_DEC(10, 2), "1.500", "1.50"); /* zeros beyond the scale dropped */
	ASSERT_LIT(COL_DEC(10, 2), "-0.00", "0.00"); /* no negative zero */
	ASSERT_LIT(COL_DEC(10, 0), "5.00", "5");
	ASSERT_LIT(COL_DEC(10, 2), "00012.5", "00012.5"); /* leading zeros do not count */
	ASSERT_LIT(COL_DEC(65, 30),
		   "-99999999999999999999999999999999999.999999999999999999999999999999",
		   "-99999999999999999999999999999999999.999999999999999999999999999999");
	ASSERT_REFUSED(COL_DEC(10, 2), "123456789.00",
		       "123456789.00 is out of range for decimal(10,2)");
	ASSERT_REFUSED(COL_DEC(10, 2), "1.005",
		       "1.005 has more than 2 fractional digits (decimal(10,2) would round it)");
	ASSERT_REFUSED(COL_DEC(10, 2), "NaN", "NaN has no decimal(10,2) value");
	ASSERT_REFUSED(COL_DEC(10, 2), "Infinity", "Infinity has no");
	ASSERT_REFUSED(COL_DEC(10, 2), "-Infinity", "-Infinity has no");
	ASSERT_REFUSED(COL_DEC(10, 2), "1e5", "not a decimal number");
	ASSERT_REFUSED(COL_DEC(10, 2), "1.", "not a decimal number");
	ASSERT_REFUSED(COL_DEC(10, 2), ".5", "not a decimal number");
	struct mytext_col u = col("decimal", "decimal(10,2) unsigned", 0, 0, 10, 2, 0);
	ASSERT_REFUSED(u, "-1.00", "out of range");
	ASSERT_LIT(u, "-0.00", "0.00");
}
END_TEST

START_TEST(test_floats)
{
	ASSERT_LIT(COL_DOUBLE, "1.5", "1.5");
	ASSERT_LIT(COL_DOUBLE, "-1e+300", "-1e+300");
	ASSERT_LIT(COL_DOUBLE, "9.999999999999999e+22", "9.999999999999999e+22");
	ASSERT_LIT(COL_DOUBLE, "1e-320", "1e-320"); /* subnormal: a double holds it */
	ASSERT_LIT(COL_DOUBLE, "-0", "-0");
	/* FLOAT: the exact value of the float (MariaDB rounds through double) */
	ASSERT_LIT(COL_FLOAT, "3.4028235e+38", "3.4028234663852886e+38");
	ASSERT_LIT(COL_FLOAT, "1.5", "1.5");
	ASSERT_LIT(COL_FLOAT, "0.1", "0.10000000149011612");
	ASSERT_LIT(COL_FLOAT, "-0", "-0");
	ASSERT_LIT(COL_FLOAT, "1e-45", "1.4012984643248171e-45"); /* smallest subnormal */
	ASSERT_REFUSED(COL_DOUBLE, "NaN", "NaN has no MariaDB double value");
	ASSERT_REFUSED(COL_DOUBLE, "Infinity", "Infinity has no MariaDB double value");
	ASSERT_REFUSED(COL_DOUBLE, "-Infinity", "-Infinity has no");
	ASSERT_REFUSED(COL_FLOAT, "NaN", "NaN has no MariaDB float value");
	ASSERT_REFUSED(COL_DOUBLE, "1e400", "out of range for double");
	ASSERT_REFUSED(COL_FLOAT, "3.5e+38", "out of range for float");
	ASSERT_REFUSED(COL_FLOAT, "1e-50", "too small for float");
	ASSERT_REFUSED(COL_DOUBLE, "abc", "'abc' is not a number");
	ASSERT_REFUSED(COL_DOUBLE, "1e", "not a number");
	ASSERT_REFUSED(COL_DOUBLE, "", "not a number");
}
END_TEST

/* --- bits, bytes, years ---------------------------------------------------------------- */

START_TEST(test_bits)
{
	struct mytext_col b4 = col("bit", "bit(4)", 0, 0, 4, 0, 0);
	ASSERT_LIT(b4, "0101", "b'0101'");
	ASSERT_LIT(b4, "1", "b'1'");
	ASSERT_REFUSED(b4, "10101", "a bit string of 5 bits does not fit bit(4)");
	ASSERT_REFUSED(b4, "012", "'012' is not a bit string");
	ASSERT_REFUSED(b4, "", "does not fit");
	ASSERT_LIT(col("bit", "bit(64)", 0, 0, 64, 0, 0),
		   "1111111111111111111111111111111111111111111111111111111111111111",
		   "b'1111111111111111111111111111111111111111111111111111111111111111'");
}
END_TEST

START_TEST(test_bytea)
{
	struct mytext_col blob = col("blob", "blob", 65535, 65535, 0, 0, 0);
	char *s = lit_n(blob, 17, "\\x0a1b", -1);
	ck_assert_str_eq(s, "X'0a1b'");
	free(s);
	s = lit_n(blob, 17, "\\x", -1); /* empty bytea: an empty binary string, not NULL */
	ck_assert_str_eq(s, "X''");
	free(s);
	s = lit_n(blob, 17, "\\xDEADbeef", -1);
	ck_assert_str_eq(s, "X'DEADbeef'");
	free(s);
	ck_assert_ptr_null(lit_n(blob, 17, "ab\\000", -1));
	ck_assert(strstr(last_err, "not in hex format") != NULL);
	ck_assert_ptr_null(lit_n(blob, 17, "\\x0a1", -1));
	/* text going into a binary column: its bytes */
	s = lit_n(blob, 25, "\\x0a", -1);
	ck_assert_str_eq(s, "X'5c783061'");
	free(s);
	s = lit_n(blob, 25, "ab", -1);
	ck_assert_str_eq(s, "X'6162'");
	free(s);
	/* unknown source type: hex bytea when it looks like one */
	ASSERT_LIT(blob, "\\x0a", "X'0a'");
	ASSERT_LIT(blob, "\\xzz", "X'5c787a7a'");
	struct mytext_col vb = col("varbinary", "varbinary(2)", 2, 2, 0, 0, 0);
	s = lit_n(vb, 17, "\\x0a1b", -1);
	ck_assert_str_eq(s, "X'0a1b'");
	free(s);
	ck_assert_ptr_null(lit_n(vb, 17, "\\x0a1b2c", -1));
	ck_assert_str_eq(last_err, "3 bytes are longer than varbinary(2)");
}
END_TEST

START_TEST(test_years)
{
	struct mytext_col y = col("year", "year(4)", 0, 0, 0, 0, 0);
	ASSERT_LIT(y, "2024", "2024");
	ASSERT_LIT(y, "1901", "1901");
	ASSERT_LIT(y, "2155", "2155");
	ASSERT_LIT(y, "0", "0");
	ASSERT_REFUSED(y, "1900", "out of range for year(4)");
	ASSERT_REFUSED(y, "70", "out of range"); /* MariaDB would read 1970 */
	ASSERT_REFUSED(y, "2156", "out of range");
	ASSERT_REFUSED(y, "-1", "not a year");
}
END_TEST

/* --- dates and times ----------------------------------------------------------------------- */

START_TEST(test_timestamptz)
{
	ASSERT_LIT(COL_TS(6), "2024-01-02 03:04:05.5+00", "'2024-01-02 03:04:05.500000'");
	ASSERT_LIT(COL_TS(6), "2024-01-02 03:04:05+00", "'2024-01-02 03:04:05'");
	ASSERT_LIT(COL_TS(6), "2024-01-02 03:04:05.000001+00", "'2024-01-02 03:04:05.000001'");
	/* other offsets are converted to UTC, across day, month, year and leap day */
	ASSERT_LIT(COL_TS(0), "2024-01-02 03:04:05+05:30", "'2024-01-01 21:34:05'");
	ASSERT_LIT(COL_TS(6), "2024-01-01 01:00:00.25+05:30", "'2023-12-31 19:30:00.250000'");
	ASSERT_LIT(COL_TS(0), "2024-02-28 23:30:00-08", "'2024-02-29 07:30:00'");
	ASSERT_LIT(COL_TS(0), "2024-03-01 00:30:00+01", "'2024-02-29 23:30:00'");
	ASSERT_LIT(COL_TS(0), "1990-06-01 12:00:00+00:09:21", "'1990-06-01 11:50:39'");
	/* TIMESTAMP's range */
	ASSERT_LIT(COL_TS(6), "2038-01-19 03:14:07.999999+00", "'2038-01-19 03:14:07.999999'");
	ASSERT_LIT(COL_TS(0), "1970-01-01 00:00:01+00", "'1970-01-01 00:00:01'");
	ASSERT_REFUSED(COL_TS(0), "2038-01-19 03:14:08+00", "outside timestamp(0)'s range");
	ASSERT_REFUSED(COL_TS(0), "1970-01-01 00:00:00+00", "outside");
	ASSERT_REFUSED(COL_TS(0), "1970-01-01 05:00:00+05:30", "outside");
	/* fractional digits the column does not keep */
	ASSERT_REFUSED(
	    COL_TS(0), "2024-01-02 03:04:05.5+00",
	    "has 1 fractional second digits, timestamp(0) keeps 0 (MariaDB would cut them)");
	ASSERT_LIT(COL_TS(3), "2024-01-02 03:04:05.120+00", "'2024-01-02 03:04:05.120000'");
	ASSERT_REFUSED(COL_TS(3), "2024-01-02 03:04:05.1234+00", "has 4 fractional");
	ASSERT_REFUSED(COL_TS(6), "infinity", "infinity has no MariaDB value");
	ASSERT_REFUSED(COL_TS(6), "2024-01-02 03:04:05+0", "not a timestamp");
	ASSERT_REFUSED(COL_TS(6), "2024-01-02 03:04:05.1234567+00", "not a timestamp");
}
END_TEST

START_TEST(test_datetime_and_date)
{
	ASSERT_LIT(COL_DT(0), "2024-01-02 03:04:05", "'2024-01-02 03:04:05'");
	ASSERT_LIT(COL_DT(6), "9999-12-31 23:59:59.999999", "'9999-12-31 23:59:59.999999'");
	ASSERT_LIT(COL_DT(6), "1000-01-01 00:00:00", "'1000-01-01 00:00:00'");
	ASSERT_LIT(COL_DT(0), "2024-01-02", "'2024-01-02 00:00:00'");
	ASSERT_LIT(COL_DT(0), "2024-01-02 03:04:05+02", "'2024-01-02 01:04:05'");
	ASSERT_REFUSED(COL_DT(0), "0999-12-31 23:59:59",
		       "year 999 is outside datetime(0)'s 1000-9999");
	ASSERT_REFUSED(COL_DT(0), "10000-01-01 00:00:00", "year 10000 is outside");
	ASSERT_REFUSED(COL_DT(0), "1000-01-01 00:30:00+01", "year 999 is outside");
	ASSERT_REFUSED(COL_DT(0), "2024-01-02 03:04:05 BC", "before the Common Era");
	ASSERT_REFUSED(COL_DT(0), "-infinity", "has no MariaDB value");
	ASSERT_REFUSED(COL_DT(0), "2023-02-29 00:00:00", "not a timestamp");
	ASSERT_REFUSED(COL_DT(0), "2024-01-02 24:00:00", "not a timestamp");
	ASSERT_REFUSED(COL_DT(0), "2024-01-02 03:04:05.5", "keeps 0");

	struct mytext_col d = col("date", "date", 0, 0, 0, 0, 0);
	ASSERT_LIT(d, "2024-01-02", "'2024-01-02'");
	ASSERT_LIT(d, "2024-02-29", "'2024-02-29'");
	ASSERT_REFUSED(d, "0500-01-01", "year 500 is outside date's 1000-9999");
	ASSERT_REFUSED(d, "2024-01-02 BC", "before the Common Era");
	ASSERT_REFUSED(d, "infinity", "has no MariaDB value");
	ASSERT_REFUSED(d, "2024-13-01", "not a date");
	ASSERT_REFUSED(d, "2024-01-02 00:00:00", "not a date");
}
END_TEST

START_TEST(test_time)
{
	ASSERT_LIT(COL_TIME(0), "12:34:56", "'12:34:56'");
	ASSERT_LIT(COL_TIME(6), "-00:00:01.5", "'-00:00:01.500000'");
	ASSERT_LIT(COL_TIME(6), "-838:59:59.999999", "'-838:59:59.999999'");
	ASSERT_LIT(COL_TIME(0), "838:59:59", "'838:59:59'");
	ASSERT_LIT(COL_TIME(0), "00:00:00", "'00:00:00'");
	ASSERT_LIT(COL_TIME(0), "1 day 02:00:00", "'26:00:00'");
	ASSERT_LIT(COL_TIME(0), "-1 days +02:00:00", "'-22:00:00'");
	ASSERT_LIT(COL_TIME(0), "-1 days -02:00:00", "'-26:00:00'");
	ASSERT_LIT(COL_TIME(0), "3 days", "'72:00:00'");
	ASSERT_REFUSED(COL_TIME(0), "839:00:00", "outside time(0)'s range");
	ASSERT_REFUSED(COL_TIME(0), "35 days", "outside");
	ASSERT_REFUSED(COL_TIME(0), "-00:00:01.5",
		       "has 1 fractional second digits, time(0) keeps 0");
	ASSERT_REFUSED(COL_TIME(0), "1 mon", "has months or years");
	ASSERT_REFUSED(COL_TIME(0), "1 year 2 days", "has months or years");
	ASSERT_REFUSED(COL_TIME(0), "12:00", "not an interval of hours, minutes and seconds");
	ASSERT_REFUSED(COL_TIME(0), "12:60:00", "not an interval");
	ASSERT_REFUSED(COL_TIME(0), "", "not an interval");
}
END_TEST

/* --- text and addresses --------------------------------------------------------------------- */

START_TEST(test_text)
{
	ASSERT_LIT(COL_VARCHAR(10), "hello", "'hello'");
	ASSERT_LIT(COL_VARCHAR(10), "", "''");
	ASSERT_LIT(COL_VARCHAR(10), "it's", "'it\\'s'");
	char *s = lit_n(COL_VARCHAR(20), 25, "a\nb\\c\"d\re\032f\0g", 13);
	ck_assert_str_eq(s, "'a\\nb\\\\c\\\"d\\re\\Zf\\0g'");
	free(s);
	/* 4-byte UTF-8: one character each */
	ASSERT_LIT(COL_VARCHAR(1), "\xf0\x9d\x84\x9e", "'\xf0\x9d\x84\x9e'");
	ASSERT_LIT(COL_VARCHAR(5), "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80!",
		   "'h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80!'");
	ASSERT_REFUSED(COL_VARCHAR(1), "\xf0\x9d\x84\x9e\xf0\x9d\x84\x9e",
		       "text of 2 characters is longer than varchar(1)");
	ASSERT_REFUSED(COL_VARCHAR(5), "abcdef", "text of 6 characters is longer than varchar(5)");
	/* TEXT family: bytes */
	struct mytext_col tt = col("tinytext", "tinytext", 255, 255, 0, 0, 0);
	char big[300] = "";
	for (int i = 0; i < 64; i++)
		strcat(big, "\xf0\x9d\x84\x9e");
	ASSERT_REFUSED(tt, big, "text of 256 bytes is longer than tinytext (255 bytes)");
	big[252] = '\0';
	char *ok = lit(tt, big);
	ck_assert_ptr_nonnull(ok);
	ck_assert_uint_eq(strlen(ok), 254);
	free(ok);
	/* invalid UTF-8 */
	ASSERT_REFUSED(COL_VARCHAR(10), "\xc3\x28", "is not valid UTF-8");
	ASSERT_REFUSED(COL_VARCHAR(10), "\xc0\xaf", "not valid UTF-8");		/* overlong */
	ASSERT_REFUSED(COL_VARCHAR(10), "\xed\xa0\x80", "not valid UTF-8");	/* surrogate */
	ASSERT_REFUSED(COL_VARCHAR(10), "\xf4\x90\x80\x80", "not valid UTF-8"); /* > U+10FFFF */
	ASSERT_REFUSED(COL_VARCHAR(10), "ab\xe2\x82", "not valid UTF-8");	/* cut short */
	ASSERT_REFUSED(COL_VARCHAR(10), "\xff", "'\\xff' is not valid UTF-8");
	/* json is text to MariaDB (LONGTEXT with a json_valid check) */
	struct mytext_col js = col("longtext", "longtext", 4294967295u, 4294967295u, 0, 0, 0);
	ASSERT_LIT(js, "{\"a\": [1, \"x\"]}", "'{\\\"a\\\": [1, \\\"x\\\"]}'");
	ASSERT_LIT(col("enum", "enum('x','y')", 1, 4, 0, 0, 0), "x", "'x'");
}
END_TEST

START_TEST(test_addresses)
{
	struct mytext_col u = col("uuid", "uuid", 0, 0, 0, 0, 0);
	ASSERT_LIT(u, "550e8400-e29b-41d4-a716-446655440000",
		   "'550e8400-e29b-41d4-a716-446655440000'");
	ASSERT_REFUSED(u, "550e8400'", "is not a uuid value");
	struct mytext_col i6 = col("inet6", "inet6", 0, 0, 0, 0, 0);
	ASSERT_LIT(i6, "::ffff:1.2.3.4", "'::ffff:1.2.3.4'");
	ASSERT_LIT(i6, "2001:db8::1", "'2001:db8::1'");
	ASSERT_LIT(i6, "192.0.2.1",
		   "'::ffff:192.0.2.1'"); /* MariaDB 10.11's INET6 refuses IPv4 text */
	ASSERT_REFUSED(i6, "10.0.0.0/8", "'10.0.0.0/8' is a network, inet6 holds one address");
}
END_TEST

START_TEST(test_unsupported_and_values)
{
	ASSERT_REFUSED(col("point", "point", 0, 0, 0, 0, 0), "POINT(1 2)",
		       "column type point is not supported by the MariaDB sink");

	/* NULL and the empty string stay apart */
	struct mytext_col c = COL_VARCHAR(5);
	struct mytext_buf b = {0};
	struct err e;
	struct change_value null = {.kind = CHV_NULL};
	struct change_value empty = {.kind = CHV_TEXT, .len = 0, .data = ""};
	struct change_value unch = {.kind = CHV_UNCHANGED};
	ck_assert(mytext_value(&c, 25, &null, &b, &e));
	mytext_buf_addc(&b, ',');
	ck_assert(mytext_value(&c, 25, &empty, &b, &e));
	ck_assert_str_eq(b.data, "NULL,''");
	ck_assert(!mytext_value(&c, 25, &unch, &b, &e));
	ck_assert_str_eq(b.data, "NULL,''");
	struct change_value n = {.kind = CHV_TEXT, .len = 0, .data = ""};
	struct mytext_col i = COL_INT;
	ck_assert(!mytext_value(&i, 23, &n, &b, &e)); /* '' is no integer; NULL is */
	ck_assert(mytext_value(&i, 23, &null, &b, &e));
	ck_assert_str_eq(b.data, "NULL,''NULL");
	mytext_buf_free(&b);
}
END_TEST

START_TEST(test_utf8_counts)
{
	size_t n = 99;
	ck_assert(mytext_utf8_valid("", 0, &n));
	ck_assert_uint_eq(n, 0);
	ck_assert(mytext_utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10, &n));
	ck_assert_uint_eq(n, 4);
	ck_assert(mytext_utf8_valid("\xf4\x8f\xbf\xbf", 4, &n)); /* U+10FFFF */
	ck_assert(!mytext_utf8_valid("\xe0\x80\x80", 3, &n));	 /* overlong 3-byte */
}
END_TEST

/* Random bytes into every kind: a literal or a refusal that leaves the buffer alone. */
START_TEST(test_random_input)
{
	struct mytext_col cols[] = {
	    COL_INT,
	    COL_UBIGINT,
	    COL_DEC(10, 2),
	    COL_DOUBLE,
	    COL_FLOAT,
	    col("bit", "bit(8)", 0, 0, 8, 0, 0),
	    col("year", "year(4)", 0, 0, 0, 0, 0),
	    col("date", "date", 0, 0, 0, 0, 0),
	    COL_DT(6),
	    COL_TS(3),
	    COL_TIME(6),
	    COL_VARCHAR(8),
	    col("blob", "blob", 65535, 65535, 0, 0, 0),
	    col("uuid", "uuid", 0, 0, 0, 0, 0),
	    col("inet6", "inet6", 0, 0, 0, 0, 0),
	    col("point", "point", 0, 0, 0, 0, 0),
	};
	const char alphabet[] = "0123456789-+:. eE\\xaftTNIdaysmon'\"\x80\xc3\xf0";
	unsigned seed = 7;
	for (int round = 0; round < 20000; round++) {
		char v[24];
		size_t len = (size_t)(rand_r(&seed) % (int)sizeof(v));
		for (size_t i = 0; i < len; i++)
			v[i] = alphabet[rand_r(&seed) % (int)(sizeof(alphabet) - 1)];
		for (size_t k = 0; k < ARRAY_LEN(cols); k++) {
			struct mytext_buf b = {0};
			struct err e = {{0}};
			mytext_buf_adds(&b, "x");
			if (mytext_literal(&cols[k], round % 2 ? 17 : 0, v, len, &b, &e))
				ck_assert_uint_gt(b.len, 1);
			else
				ck_assert(b.len == 1 && e.msg[0] != '\0');
			mytext_buf_free(&b);
		}
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mytext");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_col_init);
	tcase_add_test(tc, test_integers);
	tcase_add_test(tc, test_booleans);
	tcase_add_test(tc, test_decimals);
	tcase_add_test(tc, test_floats);
	tcase_add_test(tc, test_bits);
	tcase_add_test(tc, test_bytea);
	tcase_add_test(tc, test_years);
	tcase_add_test(tc, test_timestamptz);
	tcase_add_test(tc, test_datetime_and_date);
	tcase_add_test(tc, test_time);
	tcase_add_test(tc, test_text);
	tcase_add_test(tc, test_addresses);
	tcase_add_test(tc, test_unsupported_and_values);
	tcase_add_test(tc, test_utf8_counts);
	tcase_add_test(tc, test_random_input);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
