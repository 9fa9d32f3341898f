/*
 * Unit tests for the pure parts of the MariaDB source readers: mymeta's
 * type mapping (mymeta_map_column), mysnap's key range predicates (the
 * MariaDB literals of PostgreSQL key texts, and what they refuse), COPY
 * lines and key literals, and the shared DECIMAL, integer and text
 * renderers (mytypes.h).
 * Everything that needs a server is in tests/integration/test_my_types.sh.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "binlog_rows.h"
#include "keyrange.h"
#include "mymeta.h"
#include "mysnap.h"
#include "mytypes.h"
#include "util.h"

/* --- mymeta_map_column ------------------------------------------------------------ */

/* Maps one column; returns the reason or NULL, *out filled (caller frees strings). */
static const char *map(const char *dt, const char *ct, long long prec, long long scale,
		       long long fsp, long long len, uint32_t coll, struct mig_column *out)
{
	struct mymeta_coldef d = {"c", dt, ct, prec, scale, fsp, len, coll, false};
	memset(out, 0, sizeof(*out));
	return mymeta_map_column(&d, out);
}

static void expect_map(const char *dt, const char *ct, long long prec, long long scale,
		       long long fsp, long long len, uint32_t coll, const char *type, uint32_t oid)
{
	struct mig_column c;
	const char *why = map(dt, ct, prec, scale, fsp, len, coll, &c);
	ck_assert_msg(why == NULL, "%s: %s", ct, why);
	ck_assert_str_eq(c.type, type);
	ck_assert_uint_eq(c.type_oid, oid);
	ck_assert_str_eq(c.src_type, ct);
	free(c.type);
	free(c.src_type);
}

START_TEST(test_map_numbers)
{
	expect_map("tinyint", "tinyint(4)", 3, 0, -1, -1, 0, "smallint", 21);
	expect_map("tinyint", "tinyint(3) unsigned", 3, 0, -1, -1, 0, "smallint", 21);
	expect_map("smallint", "smallint(6)", 5, 0, -1, -1, 0, "smallint", 21);
	expect_map("smallint", "smallint(5) unsigned", 5, 0, -1, -1, 0, "integer", 23);
	expect_map("mediumint", "mediumint(8) unsigned", 7, 0, -1, -1, 0, "integer", 23);
	expect_map("int", "int(11)", 10, 0, -1, -1, 0, "integer", 23);
	expect_map("int", "int(5) unsigned zerofill", 10, 0, -1, -1, 0, "bigint", 20);
	expect_map("bigint", "bigint(20)", 19, 0, -1, -1, 0, "bigint", 20);
	expect_map("bigint", "bigint(20) unsigned", 20, 0, -1, -1, 0, "numeric(20,0)", 1700);
	expect_map("decimal", "decimal(65,30)", 65, 30, -1, -1, 0, "numeric(65,30)", 1700);
	expect_map("decimal", "decimal(10,0) unsigned", 10, 0, -1, -1, 0, "numeric(10,0)", 1700);
	expect_map("float", "float", 12, -1, -1, -1, 0, "real", 700);
	expect_map("double", "double", 22, -1, -1, -1, 0, "double precision", 701);
	expect_map("year", "year(4)", -1, -1, -1, -1, 0, "smallint", 21);
	expect_map("bit", "bit(64)", 64, -1, -1, -1, 0, "bit(64)", 1560);
}
END_TEST

START_TEST(test_map_temporal)
{
	struct mig_column c;
	expect_map("date", "date", -1, -1, -1, -1, 0, "date", 1082);
	ck_assert_ptr_null(map("time", "time(3)", -1, -1, 3, -1, 0, &c));
	ck_assert_str_eq(c.type, "interval");
	ck_assert_uint_eq(c.src_fsp, 3);
	free(c.type);
	free(c.src_type);
	expect_map("datetime", "datetime", -1, -1, 0, -1, 0, "timestamp(0) without time zone",
		   1114);
	expect_map("datetime", "datetime(6)", -1, -1, 6, -1, 0, "timestamp(6) without time zone",
		   1114);
	expect_map("timestamp", "timestamp(3)", -1, -1, 3, -1, 0, "timestamp(3) with time zone",
		   1184);
}
END_TEST

START_TEST(test_map_strings)
{
	struct mig_column c;
	expect_map("char", "char(10)", -1, -1, -1, 10, 45, "character varying(10)", 1043);
	expect_map("varchar", "varchar(20)", -1, -1, -1, 20, 8, "character varying(20)", 1043);
	expect_map("varchar", "varchar(0)", -1, -1, -1, 0, 45, "text", 25);
	expect_map("longtext", "longtext", -1, -1, -1, 4294967295LL, 46, "text", 25);
	expect_map("enum", "enum('a','b')", -1, -1, -1, 1, 45, "text", 25);
	expect_map("set", "set('x')", -1, -1, -1, 1, 11, "text", 25);
	expect_map("binary", "binary(4)", -1, -1, -1, 4, 63, "bytea", 17);
	expect_map("longblob", "longblob", -1, -1, -1, -1, 63, "bytea", 17);
	expect_map("point", "point", -1, -1, -1, -1, 0, "bytea", 17);

	struct mymeta_coldef j = {"j", "longtext", "longtext", -1, -1, -1, 4294967295LL, 46, true};
	memset(&c, 0, sizeof(c));
	ck_assert_ptr_null(mymeta_map_column(&j, &c));
	ck_assert_str_eq(c.type, "json");
	ck_assert_uint_eq(c.type_oid, 114);
	ck_assert_uint_eq(c.src_collation, 46);
	free(c.type);
	free(c.src_type);

	/* MySQL 8's JSON type (information_schema gives it no collation): json, read as utf8mb4 */
	ck_assert_ptr_null(map("json", "json", -1, -1, -1, -1, 0, &c));
	ck_assert_str_eq(c.type, "json");
	ck_assert_uint_eq(c.type_oid, 114);
	ck_assert_uint_eq(c.src_collation, 46);
	ck_assert_str_eq(c.src_type, "json");
	free(c.type);
	free(c.src_type);
}
END_TEST

START_TEST(test_map_ext)
{
	struct mig_column c;
	ck_assert_ptr_null(map("uuid", "uuid", -1, -1, -1, -1, 0, &c));
	ck_assert_str_eq(c.type, "uuid");
	ck_assert_uint_eq(c.src_ext, BINLOG_EXT_UUID);
	free(c.type);
	free(c.src_type);
	ck_assert_ptr_null(map("inet6", "inet6", -1, -1, -1, -1, 0, &c));
	ck_assert_str_eq(c.type, "inet");
	ck_assert_uint_eq(c.src_ext, BINLOG_EXT_INET6);
	free(c.type);
	free(c.src_type);
	ck_assert_ptr_null(map("inet4", "inet4", -1, -1, -1, -1, 0, &c));
	ck_assert_uint_eq(c.src_ext, BINLOG_EXT_INET4);
	ck_assert_uint_eq(c.type_oid, 869);
	free(c.type);
	free(c.src_type);
}
END_TEST

START_TEST(test_map_refused)
{
	struct mig_column c;
	const char *why =
	    map("varchar", "varchar(10) /*M!100301 COMPRESSED*/", -1, -1, -1, 10, 45, &c);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "COMPRESSED"));
	why = map("varchar", "varchar(5)", -1, -1, -1, 5, 35 /* ucs2_general_ci */, &c);
	ck_assert_ptr_nonnull(strstr(why, "character set not supported"));
	why = map("text", "text", -1, -1, -1, 65535, 0, &c);
	ck_assert_ptr_nonnull(strstr(why, "character set unknown"));
	why = map("vector", "vector(3)", -1, -1, -1, -1, 0, &c);
	ck_assert_str_eq(why, "type not supported");
	why = map("decimal", "decimal(66,0)", 66, 0, -1, -1, 0, &c);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_null(c.type); /* left unchanged */
}
END_TEST

/* --- mysnap_range_pred -------------------------------------------------------------- */

/* A table keyed (id integer, k varchar utf8mb4, u uuid); extra columns per test. */
static struct mig_column cols3[] = {
    {.name = "id", .type = "integer", .type_oid = 23, .key_pos = 1},
    {.name = "k",
     .type = "character varying(5)",
     .type_oid = 1043,
     .key_pos = 2,
     .src_collation = 45},
    {.name = "u", .type = "uuid", .type_oid = 2950, .key_pos = 3, .src_ext = BINLOG_EXT_UUID},
};
static int key3[] = {0, 1, 2};
static struct mig_table t3 = {.schema = "db",
			      .name = "t",
			      .qname = "`db`.`t`",
			      .ncols = 3,
			      .cols = cols3,
			      .nkey = 3,
			      .key_idx = key3};

START_TEST(test_pred_composite)
{
	char *p = mysnap_range_pred(&t3, "{5,\"a b\",550e8400-e29b-41d4-a716-446655440000}", NULL);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(
	    p,
	    "((`id` > 5) OR (`id` = 5 AND CAST(CONVERT(`k` USING utf8mb4) AS BINARY) > X'612062') "
	    "OR (`id` = 5 AND CAST(CONVERT(`k` USING utf8mb4) AS BINARY) = X'612062' AND "
	    "CAST(`u` AS BINARY(16)) > X'550e8400e29b41d4a716446655440000')) AND TRUE");
	free(p);
	p = mysnap_range_pred(&t3, NULL, "{-1,\"\",00000000-0000-0000-0000-000000000000}");
	ck_assert_str_eq(p, "TRUE AND ((`id` < -1) OR (`id` = -1 AND CAST(CONVERT(`k` USING "
			    "utf8mb4) AS BINARY) < X'') OR (`id` = -1 AND CAST(CONVERT(`k` USING "
			    "utf8mb4) AS BINARY) = X'' AND CAST(`u` AS BINARY(16)) <= "
			    "X'00000000000000000000000000000000'))");
	free(p);
	p = mysnap_range_pred(&t3, NULL, NULL);
	ck_assert_str_eq(p, "TRUE");
	free(p);
}
END_TEST

START_TEST(test_keys_pred)
{
	char *keys[] = {"{5,\"a b\",550e8400-e29b-41d4-a716-446655440000}",
			"{\"6\",\"\",00000000-0000-0000-0000-000000000000}"};
	char *p = mysnap_keys_pred(&t3, keys, 2);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "(`id` = 5 AND CAST(CONVERT(`k` USING utf8mb4) AS BINARY) = X'612062' "
			    "AND CAST(`u` AS BINARY(16)) = X'550e8400e29b41d4a716446655440000') OR "
			    "(`id` = 6 AND CAST(CONVERT(`k` USING utf8mb4) AS BINARY) = X'' AND "
			    "CAST(`u` AS BINARY(16)) = X'00000000000000000000000000000000')");
	free(p);
	p = mysnap_keys_pred(&t3, keys, 0);
	ck_assert_str_eq(p, "FALSE");
	free(p);
	/* one key not of the key's types refuses the whole set */
	char *bad[] = {keys[0], "{5,a}"};
	ck_assert_ptr_null(mysnap_keys_pred(&t3, bad, 2));
	char *inj[] = {"{1;DROP,a,550e8400-e29b-41d4-a716-446655440000}"};
	ck_assert_ptr_null(mysnap_keys_pred(&t3, inj, 1));
}
END_TEST

START_TEST(test_pred_refuses)
{
	/* a bound that is not the key's types, or not all of it, is refused */
	ck_assert_ptr_null(mysnap_range_pred(&t3, "{5,a}", NULL));
	ck_assert_ptr_null(
	    mysnap_range_pred(&t3, "{1;DROP,a,550e8400-e29b-41d4-a716-446655440000}", NULL));
	ck_assert_ptr_null(mysnap_range_pred(&t3, NULL, "{5,a,not-a-uuid}"));
	/* text is hex, so nothing in it can escape */
	char *p = mysnap_range_pred(
	    &t3, "{1,\"x' OR 1=1 --\",550e8400-e29b-41d4-a716-446655440000}", NULL);
	ck_assert_ptr_nonnull(strstr(p, "X'7827204f5220313d31202d2d'"));
	free(p);
}
END_TEST

/* One-column key of type (type, oid) with bound v: the lower bound's literal part. */
static char *one_key_pred(const char *type, uint32_t oid, uint8_t ext, const char *v)
{
	struct mig_column c = {
	    .name = "k", .type = (char *)type, .type_oid = oid, .key_pos = 1, .src_ext = ext};
	int key = 0;
	struct mig_table t = {.schema = "d",
			      .name = "t",
			      .qname = "`d`.`t`",
			      .ncols = 1,
			      .cols = &c,
			      .nkey = 1,
			      .key_idx = &key};
	char *arr = xasprintf("{\"%s\"}", v);
	char *p = mysnap_range_pred(&t, arr, NULL);
	free(arr);
	return p;
}

static void expect_key(const char *type, uint32_t oid, uint8_t ext, const char *v, const char *want)
{
	char *p = one_key_pred(type, oid, ext, v);
	if (want == NULL) {
		ck_assert_msg(p == NULL, "%s '%s' accepted: %s", type, v, p);
		return;
	}
	ck_assert_msg(p != NULL, "%s '%s' refused", type, v);
	ck_assert_str_eq(p, want);
	free(p);
}

START_TEST(test_pred_literals)
{
	expect_key("numeric(10,6)", 1700, 0, "-0.000001", "((`k` > -0.000001)) AND TRUE");
	expect_key("numeric(10,6)", 1700, 0, "1e5", NULL);
	expect_key("numeric(10,6)", 1700, 0, "1.", NULL);
	expect_key("real", 700, 0, "3.4e+38", "((`k` > CAST('3.4e+38' AS FLOAT))) AND TRUE");
	expect_key("double precision", 701, 0, "0.1", "((`k` > CAST('0.1' AS DOUBLE))) AND TRUE");
	expect_key("date", 1082, 0, "2024-02-29", "((`k` > CAST('2024-02-29' AS DATE))) AND TRUE");
	expect_key("interval", 1186, 0, "-838:59:59.5",
		   "((`k` > CAST('-838:59:59.5' AS TIME(6)))) AND TRUE");
	expect_key("timestamp(6) without time zone", 1114, 0, "2024-02-29 12:34:56.5",
		   "((`k` > CAST('2024-02-29 12:34:56.5' AS DATETIME(6)))) AND TRUE");
	expect_key("timestamp(3) with time zone", 1184, 0, "2038-01-19 03:14:07.999+00",
		   "((`k` > CAST('2038-01-19 03:14:07.999' AS DATETIME(6)))) AND TRUE");
	expect_key("timestamp(3) with time zone", 1184, 0, "2038-01-19 03:14:07+01", NULL);
	expect_key("bytea", 17, 0, "\\\\x00ff", "((`k` > X'00ff')) AND TRUE");
	expect_key("bytea", 17, 0, "\\\\x", "((`k` > X'')) AND TRUE");
	expect_key("bytea", 17, 0, "\\\\x0", NULL);
	expect_key("bit(4)", 1560, 0, "0101", "((`k` > b'0101')) AND TRUE");
	expect_key("bit(4)", 1560, 0, "0102", NULL);
	expect_key("inet", 869, BINLOG_EXT_INET6, "::ffff:1.2.3.4",
		   "((`k` > '::ffff:1.2.3.4')) AND TRUE");
	expect_key("inet", 869, BINLOG_EXT_INET4, "10.0.0.1", "((`k` > '10.0.0.1')) AND TRUE");
	expect_key("inet", 869, BINLOG_EXT_INET4, "::1", NULL);
	expect_key("json", 114, 0, "{}", NULL);
}
END_TEST

/* --- COPY lines and key literals ---------------------------------------------------- */

START_TEST(test_copy_line)
{
	static const char s1[] = "a\\b\tc\nd\re\bf\fg\vh\x01i";
	struct change_value v[3] = {
	    {CHV_TEXT, sizeof(s1) - 1, s1}, {CHV_NULL, 0, NULL}, {CHV_TEXT, 2, "\\N"}};
	struct change_tuple tu = {3, v};
	struct change_buf b = {0};
	ck_assert(mysnap_copy_line(&b, &tu));
	const char want[] = "a\\\\b\\tc\\nd\\re\\bf\\fg\\vh\x01i\t\\N\t\\\\N\n";
	ck_assert_uint_eq(b.len, sizeof(want) - 1);
	ck_assert(memcmp(b.data, want, b.len) == 0);
	v[1].kind = CHV_UNCHANGED;
	b.len = 0;
	ck_assert(!mysnap_copy_line(&b, &tu));
	ck_assert_uint_eq(b.len, 0);
	change_buf_free(&b);
}
END_TEST

START_TEST(test_tuple_key)
{
	struct change_value v[3] = {
	    {CHV_TEXT, 1, "5"}, {CHV_TEXT, 8, "a \"b\"\\{,"}, {CHV_TEXT, 4, "null"}};
	struct change_tuple tu = {3, v};
	char *k = mysnap_tuple_key(&t3, &tu);
	ck_assert_str_eq(k, "{5,\"a \\\"b\\\"\\\\{,\",\"null\"}");
	free(k);
	v[1].len = 0;
	v[2].data = "x";
	v[2].len = 1;
	k = mysnap_tuple_key(&t3, &tu);
	ck_assert_str_eq(k, "{5,\"\",x}");
	/* and it reads back as the same values */
	char **out;
	ck_assert_int_eq(keyrange_parse_array("{5,\"a \\\"b\\\"\\\\{,\",\"null\"}", &out), 3);
	ck_assert_str_eq(out[1], "a \"b\"\\{,");
	ck_assert_str_eq(out[2], "null");
	for (int i = 0; i < 3; i++)
		free(out[i]);
	free(out);
	free(k);
}
END_TEST

/* --- mytypes_decimal ------------------------------------------------------------------ */

static void expect_dec(bool neg, const char *i, const char *f, int scale, const char *want)
{
	struct change_buf b = {0};
	bool ok = mytypes_decimal(&b, neg, i, strlen(i), f, strlen(f), scale);
	if (want == NULL) {
		ck_assert(!ok);
		ck_assert_uint_eq(b.len, 0);
	} else {
		ck_assert(ok);
		ck_assert_uint_eq(b.len, strlen(want));
		ck_assert(memcmp(b.data, want, b.len) == 0);
	}
	change_buf_free(&b);
}

START_TEST(test_decimal_text)
{
	expect_dec(true, "0", "000001", 6, "-0.000001");
	expect_dec(true, "000", "000000", 6, "0.000000"); /* no negative zero */
	expect_dec(false, "", "5", 6, "0.500000");	  /* padded to the scale */
	expect_dec(false, "0012", "", 0, "12");
	expect_dec(true, "99999", "", 0, "-99999");
	expect_dec(false, "1", "2500", 2, "1.25"); /* zeros past the scale are cut */
	expect_dec(false, "1", "2501", 2, NULL);   /* digits past the scale are not */
	expect_dec(false, "1x", "", 0, NULL);
}
END_TEST

/* --- integers and text (mytypes_int/uint, mytypes_text) ------------------------------- */

static void expect_int(int64_t v, const char *want)
{
	struct change_buf b = {0};
	mytypes_int(&b, v);
	ck_assert_int_eq((int)b.len, (int)strlen(want));
	ck_assert(memcmp(b.data, want, b.len) == 0);
	change_buf_free(&b);
}

START_TEST(test_int_text)
{
	expect_int(0, "0");
	expect_int(7, "7");
	expect_int(-1, "-1");
	expect_int(1000000, "1000000");
	expect_int(INT64_MAX, "9223372036854775807");
	expect_int(INT64_MIN, "-9223372036854775808");
	struct change_buf b = {0};
	mytypes_uint(&b, UINT64_MAX);
	mytypes_uint(&b, 0);
	ck_assert_int_eq((int)b.len, 21);
	ck_assert(memcmp(b.data, "184467440737095516150", 21) == 0);
	change_buf_free(&b);
}
END_TEST

/* UTF-8 checked eight ASCII bytes at a time: a bad byte anywhere in a run is still found. */
START_TEST(test_utf8_runs)
{
	char s[40];
	memset(s, 'a', sizeof(s));
	ck_assert(mytypes_utf8_valid((const uint8_t *)s, sizeof(s)));
	for (size_t at = 0; at < sizeof(s); at++) {
		memset(s, 'a', sizeof(s));
		s[at] = (char)0xff;
		ck_assert_msg(!mytypes_utf8_valid((const uint8_t *)s, sizeof(s)), "0xff at %zu",
			      at);
		if (at + 1 < sizeof(s)) {
			s[at] = (char)0xc3, s[at + 1] = (char)0xa9; /* é */
			ck_assert_msg(mytypes_utf8_valid((const uint8_t *)s, sizeof(s)), "é at %zu",
				      at);
			s[at + 1] = 'a'; /* a lead byte without its continuation */
			ck_assert_msg(!mytypes_utf8_valid((const uint8_t *)s, sizeof(s)),
				      "c3 at %zu", at);
		}
	}
	/* a NUL in text: its own status, in any position */
	memset(s, 'a', sizeof(s));
	s[13] = '\0';
	struct change_buf b = {0};
	ck_assert_int_eq(mytypes_text(&b, BINLOG_CS_UTF8MB4, (const uint8_t *)s, sizeof(s)),
			 BINLOG_VAL_NUL_IN_TEXT);
	change_buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("mysnap");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_map_numbers);
	tcase_add_test(tc, test_map_temporal);
	tcase_add_test(tc, test_map_strings);
	tcase_add_test(tc, test_map_ext);
	tcase_add_test(tc, test_map_refused);
	tcase_add_test(tc, test_pred_composite);
	tcase_add_test(tc, test_pred_refuses);
	tcase_add_test(tc, test_keys_pred);
	tcase_add_test(tc, test_pred_literals);
	tcase_add_test(tc, test_copy_line);
	tcase_add_test(tc, test_tuple_key);
	tcase_add_test(tc, test_decimal_text);
	tcase_add_test(tc, test_int_text);
	tcase_add_test(tc, test_utf8_runs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
