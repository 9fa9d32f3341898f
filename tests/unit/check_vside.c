/*
 * Unit tests for vside's pure parts: MD5 against RFC 1321's test suite,
 * the row digest against PostgreSQL's first-60-bits rule (values computed
 * with PostgreSQL: ('x' || substr(md5(t), 1, 15))::bit(60)::bigint), and
 * the canonical-text SQL for PostgreSQL (the rules that make it COPY's:
 * backslash escaped first, output functions where ::text is not one), the
 * digest text (SQL and C),
 * and how a source column compares with a MariaDB target's column
 * (vside_my_column(): the same text, the target's shape, or refused).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "binlog_rows.h"
#include "md5.h"
#include "vside.h"

static const char *hex_of(const char *s, size_t n)
{
	static char out[33];
	uint8_t d[16];
	md5_buf(s, n, d);
	md5_hex(d, out);
	return out;
}

START_TEST(test_md5_rfc1321)
{
	static const char *const v[][2] = {
	    {"", "d41d8cd98f00b204e9800998ecf8427e"},
	    {"a", "0cc175b9c0f1b6a831c399e269772661"},
	    {"abc", "900150983cd24fb0d6963f7d28e17f72"},
	    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
	    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
	    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	     "d174ab98d277d9f5a5611c2c9f419d9f"},
	    {"1234567890123456789012345678901234567890123456789012345678901234567890123456789"
	     "0",
	     "57edf4a22be3c955ac49da2e2107b67a"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		ck_assert_str_eq(hex_of(v[i][0], strlen(v[i][0])), v[i][1]);
}
END_TEST

START_TEST(test_md5_pieces)
{
	/* any split, and lengths around the 56/64-byte padding edges */
	char buf[300];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + i % 26);
	for (size_t n = 50; n < 140; n++) {
		char one[33];
		strcpy(one, hex_of(buf, n));
		struct md5_ctx c;
		md5_init(&c);
		for (size_t off = 0; off < n; off += 7)
			md5_update(&c, buf + off, n - off < 7 ? n - off : 7);
		uint8_t d[16];
		char inc[33];
		md5_final(&c, d);
		md5_hex(d, inc);
		ck_assert_str_eq(inc, one);
	}
}
END_TEST

START_TEST(test_digest_first_60_bits)
{
	struct vdigest d = {0};
	char buf[64];
	vdigest_add(&d, "abc", 3);
	ck_assert_str_eq(vdigest_format(&d, buf, sizeof(buf)), "1/648541476951500027");
	vdigest_add(&d, "", 0);
	ck_assert_str_eq(vdigest_format(&d, buf, sizeof(buf)), "2/1603824450476519451");
	/* a sum past 64 bits stays exact (PostgreSQL sums in numeric) */
	struct vdigest big = {.rows = 1 << 20};
	big.sum = (unsigned __int128)((1ULL << 60) - 1) << 20;
	ck_assert_str_eq(vdigest_format(&big, buf, sizeof(buf)),
			 "1048576/1208925819614629173657600");
	ck_assert_str_eq(vdigest_format(&(struct vdigest){0}, buf, sizeof(buf)), "0/0");
}
END_TEST

/* id integer (the key), b boolean, t text: one plain column of each way, and text. */
static struct mig_column three[] = {
    {.name = "id", .type = "integer", .type_oid = 23, .key_pos = 1},
    {.name = "b", .type = "boolean", .type_oid = 16},
    {.name = "t", .type = "text", .type_oid = 25},
};
static int three_key[] = {0};

static struct mig_table three_cols(void)
{
	return (struct mig_table){.ncols = 3, .cols = three, .nkey = 1, .key_idx = three_key};
}

START_TEST(test_pg_row_expr)
{
	struct mig_table t = three_cols();
	char *e = vside_pg_row_expr(&t);
	ck_assert_str_eq(
	    e, "(CASE WHEN \"id\" IS NULL THEN chr(92) || 'N' ELSE \"id\"::text END) || chr(9) || "
	       "(CASE WHEN \"b\" IS NULL THEN chr(92) || 'N' ELSE format('%s', \"b\") END) || "
	       "chr(9) || (CASE WHEN \"t\" IS NULL THEN chr(92) || 'N' ELSE "
	       "replace(replace(replace(replace(replace(replace(replace(\"t\"::text, chr(92), "
	       "chr(92) || chr(92)), chr(8), chr(92) || 'b'), chr(12), chr(92) || 'f'), chr(10), "
	       "chr(92) || 'n'), chr(13), chr(92) || 'r'), chr(9), chr(92) || 't'), chr(11), "
	       "chr(92) || 'v') END)");
	free(e);
	e = vside_pg_key_expr(&t);
	ck_assert_str_eq(e, "ARRAY[\"id\"::text]::text");
	free(e);
}
END_TEST

/*
 * The digest text: plain columns as they are, others behind their length,
 * in SQL and in C alike; rows whose COPY lines differ keep different texts.
 */
START_TEST(test_digest_text)
{
	struct mig_table t = three_cols();
	char *e = vside_pg_digest_expr(&t, true);
	ck_assert_str_eq(
	    e, "(CASE WHEN \"id\" IS NULL THEN chr(92) || 'N' ELSE \"id\"::text END) || chr(9) || "
	       "(CASE WHEN \"b\" IS NULL THEN chr(92) || 'N' ELSE format('%s', \"b\") END) || "
	       "chr(9) || (CASE WHEN \"t\" IS NULL THEN chr(92) || 'N' ELSE "
	       "octet_length(\"t\"::text) || ':' || (\"t\"::text) END)");
	free(e);
	/* another database encoding: the length of the UTF-8 text md5 hashes */
	e = vside_pg_digest_expr(&t, false);
	ck_assert_ptr_nonnull(strstr(e, "octet_length(convert_to(\"t\"::text, 'UTF8')) || ':' || "
					"(\"t\"::text)"));
	free(e);
	ck_assert(vside_text_is_plain(23) && vside_text_is_plain(16) && !vside_text_is_plain(25));

	bool plain[] = {true, false, false};
	struct {
		const char *v[3]; /* NULL: SQL NULL */
		const char *want;
	} rows[] = {
	    {{"1", "a\tb", "c"}, "1\t3:a\tb\t1:c"},
	    {{"1", "a", "b\tc"}, "1\t1:a\t3:b\tc"}, /* COPY: 1 a\tb c vs 1 a b\tc */
	    {{"1", NULL, ""}, "1\t\\N\t0:"},
	    {{"1", "\\N", "\\"}, "1\t2:\\N\t1:\\"}, /* the text \N is not NULL */
	    {{"12", "", "3:x"}, "12\t0:\t3:3:x"},
	};
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		struct change_value v[3];
		for (int i = 0; i < 3; i++)
			v[i] = rows[r].v[i]
				   ? (struct change_value){.kind = CHV_TEXT,
							   .data = rows[r].v[i],
							   .len = (uint32_t)strlen(rows[r].v[i])}
				   : (struct change_value){.kind = CHV_NULL};
		struct change_tuple tu = {3, v};
		struct change_buf b = {0};
		ck_assert(vside_digest_text(&b, &tu, plain));
		ck_assert_msg(b.len == strlen(rows[r].want) &&
				  memcmp(b.data, rows[r].want, b.len) == 0,
			      "row %zu: %.*s", r, (int)b.len, (const char *)b.data);
		change_buf_free(&b);
	}
	struct change_value absent[] = {{.kind = CHV_TEXT, .data = "1", .len = 1},
					{.kind = CHV_UNCHANGED}};
	struct change_buf b = {0};
	ck_assert(!vside_digest_text(&b, &(struct change_tuple){2, absent}, plain));
	ck_assert_int_eq((int)b.len, 0);
	change_buf_free(&b);
}
END_TEST

/* A column as pgmeta (PostgreSQL source) or mymeta (MariaDB) describes it. */
static struct mig_column mcol(const char *type, uint32_t oid, const char *src_type, uint8_t ext)
{
	return (struct mig_column){.name = "c",
				   .type = (char *)type,
				   .type_oid = oid,
				   .src_type = (char *)src_type,
				   .src_ext = ext};
}

/* How source column s compares with MariaDB column t: "same", "refused" or the expression. */
static char *shape(struct mig_column s, struct mig_column t, bool pg_source)
{
	char *expr = NULL;
	bool plain;
	if (!vside_my_column(&s, &t, pg_source, &expr, &plain))
		return strdup("refused");
	return expr ? expr : strdup("same");
}

#define ASSERT_SHAPE(s, t, pg, want)                                                               \
	do {                                                                                       \
		char *got_ = shape(s, t, pg);                                                      \
		ck_assert_str_eq(got_, want);                                                      \
		free(got_);                                                                        \
	} while (0)

START_TEST(test_my_target_shapes)
{
	/* the "PostgreSQL -> MariaDB" mapping: the same text ... */
	ASSERT_SHAPE(mcol("integer", 23, NULL, 0), mcol("bigint", 20, "bigint(20)", 0), true,
		     "same");
	ASSERT_SHAPE(mcol("numeric(12,2)", 1700, NULL, 0),
		     mcol("numeric(12,2)", 1700, "decimal(12,2)", 0), true, "same");
	ASSERT_SHAPE(mcol("real", 700, NULL, 0), mcol("real", 700, "float", 0), true, "same");
	ASSERT_SHAPE(mcol("interval", 1186, NULL, 0), mcol("interval", 1186, "time(6)", 0), true,
		     "same");
	ASSERT_SHAPE(mcol("timestamp with time zone", 1184, NULL, 0),
		     mcol("timestamp(6) with time zone", 1184, "timestamp(6)", 0), true, "same");
	ASSERT_SHAPE(mcol("jsonb", 3802, NULL, 0), mcol("json", 114, "longtext", 0), true, "same");
	ASSERT_SHAPE(mcol("inet", 869, NULL, 0), mcol("inet", 869, "inet4", BINLOG_EXT_INET4), true,
		     "same");
	/* ... or the PostgreSQL side in the MariaDB column's shape */
	ASSERT_SHAPE(mcol("boolean", 16, NULL, 0), mcol("smallint", 21, "tinyint(1)", 0), true,
		     "CASE WHEN \"c\" THEN '1' ELSE '0' END");
	ASSERT_SHAPE(mcol("character(6)", 1042, NULL, 0),
		     mcol("character varying(6)", 1043, "char(6)", 0), true, "\"c\"::text");
	ASSERT_SHAPE(mcol("character(6)", 1042, NULL, 0),
		     mcol("character varying(6)", 1043, "varchar(6)", 0), true, "same");
	ASSERT_SHAPE(mcol("inet", 869, NULL, 0), mcol("inet", 869, "inet6", BINLOG_EXT_INET6), true,
		     "CASE WHEN family(\"c\") = 4 THEN '::ffff:' || format('%s', \"c\") ELSE "
		     "format('%s', \"c\") END");
	ASSERT_SHAPE(mcol("timestamp with time zone", 1184, NULL, 0),
		     mcol("timestamp(6) without time zone", 1114, "datetime(6)", 0), true,
		     "(\"c\" AT TIME ZONE 'UTC')::text");
	ASSERT_SHAPE(
	    mcol("numeric(12,2)", 1700, NULL, 0), mcol("numeric(12,3)", 1700, "decimal(12,3)", 0),
	    true,
	    "CASE WHEN \"c\"::numeric = round(\"c\"::numeric, 3) THEN round(\"c\"::numeric, "
	    "3)::text ELSE \"c\"::text END");
	/* no exact common text: refused */
	ASSERT_SHAPE(mcol("real", 700, NULL, 0), mcol("double precision", 701, "double", 0), true,
		     "refused");
	ASSERT_SHAPE(mcol("bit(8)", 1560, NULL, 0), mcol("bit(10)", 1560, "bit(10)", 0), true,
		     "refused");
	ASSERT_SHAPE(mcol("text[]", 1009, NULL, 0), mcol("text", 25, "longtext", 0), true,
		     "refused");
	ASSERT_SHAPE(mcol("boolean", 16, NULL, 0), mcol("text", 25, "longtext", 0), true,
		     "refused");
	/* a MariaDB source gets no shapes: only the same text */
	ASSERT_SHAPE(mcol("numeric(12,2)", 1700, "decimal(12,2)", 0),
		     mcol("numeric(12,3)", 1700, "decimal(12,3)", 0), false, "refused");
	ASSERT_SHAPE(mcol("inet", 869, "inet4", BINLOG_EXT_INET4),
		     mcol("inet", 869, "inet6", BINLOG_EXT_INET6), false, "refused");
	ASSERT_SHAPE(mcol("inet", 869, "inet6", BINLOG_EXT_INET6),
		     mcol("inet", 869, "inet6", BINLOG_EXT_INET6), false, "same");
	ASSERT_SHAPE(mcol("smallint", 21, "year(4)", 0), mcol("smallint", 21, "smallint(6)", 0),
		     false, "same");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vside");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_md5_rfc1321);
	tcase_add_test(tc, test_md5_pieces);
	tcase_add_test(tc, test_digest_first_60_bits);
	tcase_add_test(tc, test_pg_row_expr);
	tcase_add_test(tc, test_digest_text);
	tcase_add_test(tc, test_my_target_shapes);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
