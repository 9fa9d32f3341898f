/*
 * Unit tests for vside's pure parts: MD5 against RFC 1321's test suite,
 * the row digest against PostgreSQL's first-60-bits rule (values computed
 * with PostgreSQL: ('x' || substr(md5(t), 1, 15))::bit(60)::bigint), and
 * the canonical-text SQL for PostgreSQL (the rules that make it COPY's:
 * backslash escaped first, output functions where ::text is not one).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

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

START_TEST(test_pg_row_expr)
{
	struct mig_column cols[] = {
	    {.name = "id", .type = "integer", .type_oid = 23, .key_pos = 1},
	    {.name = "b", .type = "boolean", .type_oid = 16},
	    {.name = "t", .type = "text", .type_oid = 25},
	};
	int key[] = {0};
	struct mig_table t = {.ncols = 3, .cols = cols, .nkey = 1, .key_idx = key};
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

int main(void)
{
	Suite *s = suite_create("vside");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_md5_rfc1321);
	tcase_add_test(tc, test_md5_pieces);
	tcase_add_test(tc, test_digest_first_60_bits);
	tcase_add_test(tc, test_pg_row_expr);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
