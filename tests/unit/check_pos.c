/* Unit tests for pos: text forms, rejections, ordering, distance, GTID apply. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pos.h"
#include "util.h"

static struct pos parse_ok(const char *text)
{
	struct pos p;
	const char *err = NULL;
	ck_assert_msg(pos_parse(text, &p, &err), "'%s' rejected: %s", text, err ? err : "");
	return p;
}

/* Parses text expecting failure with a message containing needle. */
static void expect_reject(const char *text, const char *needle)
{
	struct pos p = pos_from_lsn(42);
	const char *err = NULL;
	ck_assert_msg(!pos_parse(text, &p, &err), "'%s' unexpectedly accepted", text);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, needle) != NULL, "'%s': expected '%s' in '%s'", text, needle,
		      err);
	/* A failed parse leaves the output alone. */
	ck_assert_int_eq(p.kind, POS_PG_LSN);
	ck_assert_uint_eq(p.lsn, 42);
}

static const char *fmt(const struct pos *p)
{
	static char buf[POS_TEXT_MAX];
	return pos_format(p, buf, sizeof(buf));
}

static enum pos_cmp cmp_text(const char *a, const char *b)
{
	struct pos pa = parse_ok(a), pb = parse_ok(b);
	return pos_compare(&pa, &pb);
}

static int64_t dist_text(const char *a, const char *b)
{
	struct pos pa = parse_ok(a), pb = parse_ok(b);
	return pos_distance_bytes(&pa, &pb);
}

START_TEST(test_lsn_format)
{
	char buf[32];
	ck_assert_str_eq(pos_lsn_format(0, buf, sizeof(buf)), "0/0");
	ck_assert_str_eq(pos_lsn_format(0x16B3748, buf, sizeof(buf)), "0/16B3748");
	ck_assert_str_eq(pos_lsn_format(0x16B374D848, buf, sizeof(buf)), "16/B374D848");
	ck_assert_str_eq(pos_lsn_format(UINT64_MAX, buf, sizeof(buf)), "FFFFFFFF/FFFFFFFF");
	ck_assert_str_eq(pos_lsn_format((uint64_t)1 << 32, buf, sizeof(buf)), "1/0");
}
END_TEST

START_TEST(test_lsn_parse)
{
	uint64_t lsn = 0;
	ck_assert(pos_lsn_parse("16/B374D848", &lsn));
	ck_assert_uint_eq(lsn, 0x16B374D848);
	ck_assert(pos_lsn_parse("16/b374d848", &lsn));
	ck_assert_uint_eq(lsn, 0x16B374D848);
	ck_assert(pos_lsn_parse("FFFFFFFF/FFFFFFFF", &lsn));
	ck_assert_uint_eq(lsn, UINT64_MAX);
	/* PostgreSQL limits digits, not value: eight zeros are fine. */
	ck_assert(pos_lsn_parse("00000000/00000001", &lsn));
	ck_assert_uint_eq(lsn, 1);

	static const char *const bad[] = {
	    "",	     "/",    "0/",   "/0",  "0",   "0/1 ",	  " 0/1",	 "0/1/2",
	    "0x1/0", "-1/0", "+1/0", "g/0", "0/G", "100000000/0", "0/100000000", "000000000/0",
	    "0/1\n", "0//1", "0 /1",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		lsn = 7;
		ck_assert_msg(!pos_lsn_parse(bad[i], &lsn), "'%s' accepted", bad[i]);
		ck_assert_uint_eq(lsn, 7);
	}
}
END_TEST

START_TEST(test_round_trip_canonical)
{
	static const char *const forms[] = {
	    "none",
	    "pg:0/0",
	    "pg:0/16B3748",
	    "pg:16/B374D848",
	    "pg:FFFFFFFF/FFFFFFFF",
	    "binlog:mariadb-bin.000003:1234",
	    "binlog:mysql-bin.1000000:0",
	    "binlog:host-relay_bin.000001:18446744073709551615",
	    "binlog:noext:4",
	    "gtid:0-1-281",
	    "gtid:0-1-281,1-2-17",
	    "gtid:0-1-281@mariadb-bin.000003:1234",
	    "gtid:0-1-281,5-9-1@mariadb-bin.000003:1234",
	    "gtid:4294967295-4294967295-18446744073709551615",
	    "gtid:",
	    "gtid:@mariadb-bin.000001:4",
	};
	for (size_t i = 0; i < ARRAY_LEN(forms); i++) {
		struct pos p = parse_ok(forms[i]);
		ck_assert_str_eq(fmt(&p), forms[i]);
		/* And the value survives a second trip. */
		struct pos q = parse_ok(fmt(&p));
		ck_assert_int_eq(pos_compare(&p, &q), POS_EQ);
	}
}
END_TEST

START_TEST(test_parse_fields)
{
	struct pos p = parse_ok("pg:16/b374d848");
	ck_assert_int_eq(p.kind, POS_PG_LSN);
	ck_assert_uint_eq(p.lsn, 0x16B374D848);
	ck_assert(!p.has_binlog);
	ck_assert_str_eq(fmt(&p), "pg:16/B374D848"); /* canonical is upper case */

	p = parse_ok("16/B374D848"); /* bare LSN means pg: */
	ck_assert_int_eq(p.kind, POS_PG_LSN);
	ck_assert_str_eq(fmt(&p), "pg:16/B374D848");

	p = parse_ok("binlog:mariadb-bin.000003:1234");
	ck_assert_int_eq(p.kind, POS_BINLOG);
	ck_assert(p.has_binlog);
	ck_assert_str_eq(p.file, "mariadb-bin.000003");
	ck_assert_uint_eq(p.offset, 1234);
	ck_assert_int_eq(p.ngtid, 0);

	p = parse_ok("gtid:0-1-281@mariadb-bin.000003:1234");
	ck_assert_int_eq(p.kind, POS_MARIADB_GTID);
	ck_assert_int_eq(p.ngtid, 1);
	ck_assert_uint_eq(p.gtid[0].domain, 0);
	ck_assert_uint_eq(p.gtid[0].server, 1);
	ck_assert_uint_eq(p.gtid[0].seq, 281);
	ck_assert(p.has_binlog);
	ck_assert_str_eq(p.file, "mariadb-bin.000003");
	ck_assert_uint_eq(p.offset, 1234);

	p = parse_ok("gtid:0-1-281");
	ck_assert(!p.has_binlog);

	p = parse_ok("none");
	ck_assert(pos_is_none(&p));
	ck_assert(!pos_is_none(&(struct pos){.kind = POS_PG_LSN}));
	struct pos n = pos_none();
	ck_assert_str_eq(fmt(&n), "none");

	/* Leading zeros in decimal numbers are accepted and normalised. */
	p = parse_ok("gtid:00-01-0281");
	ck_assert_str_eq(fmt(&p), "gtid:0-1-281");
}
END_TEST

START_TEST(test_parse_sorts_gtid_domains)
{
	struct pos p = parse_ok("gtid:2-1-5,0-3-7,10-1-1,1-2-9");
	ck_assert_int_eq(p.ngtid, 4);
	ck_assert_uint_eq(p.gtid[0].domain, 0);
	ck_assert_uint_eq(p.gtid[1].domain, 1);
	ck_assert_uint_eq(p.gtid[2].domain, 2);
	ck_assert_uint_eq(p.gtid[3].domain, 10); /* numeric, not text order */
	ck_assert_str_eq(fmt(&p), "gtid:0-3-7,1-2-9,2-1-5,10-1-1");
}
END_TEST

START_TEST(test_rejections)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
	    {"", "empty position"},
	    {"garbage", "unknown position"},
	    {"NONE", "unknown position"},
	    {"none ", "unknown position"},
	    {" none", "unknown position"},
	    {"lsn:0/1", "bad LSN"}, /* has a slash: read as a bare LSN */
	    {"lsn:01", "unknown position"},
	    {"pg:", "bad LSN"},
	    {"pg:0/1x", "bad LSN"},
	    {"pg:100000000/0", "bad LSN"},
	    {"pg:0/100000000", "bad LSN"},
	    {"pg:0/1 ", "bad LSN"},
	    {"pg:pg:0/1", "bad LSN"},
	    {"16/XYZ", "bad LSN"},
	    {"binlog:", "expected FILE:OFFSET"},
	    {"binlog:mariadb-bin.000001", "expected FILE:OFFSET"},
	    {"binlog::4", "binlog file name is empty"},
	    {"binlog:a:b:4", "contains ':' or '/'"},
	    {"binlog:/var/lib/mysql/bin.000001:4", "contains ':' or '/'"},
	    {"binlog:bin .000001:4", "blank or control"},
	    {"binlog:bin\t.000001:4", "blank or control"},
	    {"binlog:bin.000001:", "binlog offset is not a decimal 64-bit number"},
	    {"binlog:bin.000001:-1", "binlog offset is not a decimal"},
	    {"binlog:bin.000001:+1", "binlog offset is not a decimal"},
	    {"binlog:bin.000001:0x10", "binlog offset is not a decimal"},
	    {"binlog:bin.000001:12 ", "binlog offset is not a decimal"},
	    {"binlog:bin.000001:18446744073709551616", "binlog offset is not a decimal"},
	    {"binlog:bin.000001:99999999999999999999", "binlog offset is not a decimal"},
	    {"gtid:0-1", "bad GTID"},
	    {"gtid:0-1-", "bad GTID"},
	    {"gtid:0-1-2-3", "bad GTID"},
	    {"gtid:0--2", "bad GTID"},
	    {"gtid:a-1-2", "bad GTID"},
	    {"gtid:-1-1-2", "bad GTID"},
	    {"gtid:0-1-2,", "bad GTID"},
	    {"gtid:,0-1-2", "bad GTID"},
	    {"gtid:0-1-2,,1-1-1", "bad GTID"},
	    {"gtid:0-1-2 ", "bad GTID"},
	    {"gtid: 0-1-2", "bad GTID"},
	    {"gtid:4294967296-1-1", "bad GTID"},
	    {"gtid:0-4294967296-1", "bad GTID"},
	    {"gtid:0-1-18446744073709551616", "bad GTID"},
	    {"gtid:3a0d-1-2", "bad GTID"},
	    {"gtid:3E0d3f6e-1b2c-11ee-9f4a-0242ac120002:1-100", "bad GTID"}, /* MySQL 8 form */
	    {"gtid:0-1-2,0-2-3", "GTID domain appears twice"},
	    {"gtid:1-1-1,0-1-1,1-1-1", "GTID domain appears twice"},
	    {"gtid:0-1-2@", "expected FILE:OFFSET"},
	    {"gtid:0-1-2@bin.000001", "expected FILE:OFFSET"},
	    {"gtid:0-1-2@bin.000001:x", "binlog offset is not a decimal"},
	    {"gtid:0-1-2@b/in.000001:4", "contains ':' or '/'"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		expect_reject(cases[i].text, cases[i].msg);
}
END_TEST

START_TEST(test_err_may_be_null)
{
	struct pos p;
	ck_assert(!pos_parse("junk", &p, NULL));
	ck_assert(pos_parse("pg:0/1", &p, NULL));
	ck_assert_uint_eq(p.lsn, 1);
}
END_TEST

START_TEST(test_file_name_length)
{
	char name[POS_FILE_MAX + 1];
	char text[POS_FILE_MAX + 32];

	memset(name, 'b', POS_FILE_MAX - 1);
	name[POS_FILE_MAX - 1] = '\0'; /* longest allowed */
	snprintf(text, sizeof(text), "binlog:%s:4", name);
	struct pos p = parse_ok(text);
	ck_assert_uint_eq(strlen(p.file), POS_FILE_MAX - 1);
	ck_assert_str_eq(fmt(&p), text);

	memset(name, 'b', POS_FILE_MAX);
	name[POS_FILE_MAX] = '\0'; /* one too long */
	snprintf(text, sizeof(text), "binlog:%s:4", name);
	expect_reject(text, "binlog file name is too long");
	snprintf(text, sizeof(text), "gtid:0-1-1@%s:4", name);
	expect_reject(text, "binlog file name is too long");
}
END_TEST

/* The biggest position there is fits POS_TEXT_MAX and round-trips. */
START_TEST(test_gtid_domain_limit)
{
	char text[2 * POS_TEXT_MAX];
	size_t len = (size_t)snprintf(text, sizeof(text), "gtid:");
	for (int d = 0; d < POS_GTID_DOMAINS; d++)
		len += (size_t)snprintf(
		    text + len, sizeof(text) - len, "%s%u-4294967295-%" PRIu64, d ? "," : "",
		    4294967295u - (unsigned)(POS_GTID_DOMAINS - 1 - d), UINT64_MAX);
	char name[POS_FILE_MAX];
	memset(name, 'x', POS_FILE_MAX - 1);
	name[POS_FILE_MAX - 1] = '\0';
	size_t base = len;
	len += (size_t)snprintf(text + len, sizeof(text) - len, "@%s:%" PRIu64, name, UINT64_MAX);

	struct pos p = parse_ok(text);
	ck_assert_int_eq(p.ngtid, POS_GTID_DOMAINS);
	ck_assert_uint_lt(strlen(text), POS_TEXT_MAX);
	ck_assert_str_eq(fmt(&p), text);

	/* One domain more is refused. */
	snprintf(text + base, sizeof(text) - base, ",0-1-1");
	expect_reject(text, "too many GTID domains (at most 16)");
}
END_TEST

START_TEST(test_format_truncates_safely)
{
	struct pos p = parse_ok("binlog:mariadb-bin.000003:1234");
	char small[10];
	memset(small, 'Z', sizeof(small));
	ck_assert_ptr_eq(pos_format(&p, small, sizeof(small)), small);
	ck_assert_str_eq(small, "binlog:ma");

	p = parse_ok("gtid:0-1-281,1-2-17@f.1:4");
	char tiny[8];
	ck_assert_str_eq(pos_format(&p, tiny, sizeof(tiny)), "gtid:0-");

	struct pos bad = {.kind = POS__MAX};
	ck_assert_str_eq(fmt(&bad), "invalid");
}
END_TEST

START_TEST(test_compare_lsn)
{
	ck_assert_int_eq(cmp_text("pg:0/1", "pg:0/2"), POS_LT);
	ck_assert_int_eq(cmp_text("pg:1/0", "pg:0/FFFFFFFF"), POS_GT);
	ck_assert_int_eq(cmp_text("pg:16/B374D848", "16/b374d848"), POS_EQ);
	ck_assert_int_eq(cmp_text("pg:0/0", "pg:FFFFFFFF/FFFFFFFF"), POS_LT);
	struct pos a = pos_from_lsn(100), b = pos_from_lsn(100);
	ck_assert_int_eq(pos_compare(&a, &b), POS_EQ);
}
END_TEST

START_TEST(test_compare_binlog)
{
	/* Same file: by offset. */
	ck_assert_int_eq(cmp_text("binlog:mariadb-bin.000003:4", "binlog:mariadb-bin.000003:5"),
			 POS_LT);
	ck_assert_int_eq(cmp_text("binlog:mariadb-bin.000003:9", "binlog:mariadb-bin.000003:9"),
			 POS_EQ);
	/* File number before offset, by value. */
	ck_assert_int_eq(
	    cmp_text("binlog:mariadb-bin.000010:4", "binlog:mariadb-bin.000009:999999"), POS_GT);
	ck_assert_int_eq(cmp_text("binlog:mariadb-bin.000002:4", "binlog:mariadb-bin.000010:4"),
			 POS_LT);
	/* Widths differ once the number passes 999999. */
	ck_assert_int_eq(cmp_text("binlog:mysql-bin.999999:100", "binlog:mysql-bin.1000000:4"),
			 POS_LT);
	ck_assert_int_eq(cmp_text("binlog:mysql-bin.1000001:4", "binlog:mysql-bin.999999:4"),
			 POS_GT);
	ck_assert_int_eq(cmp_text("binlog:b.9:4", "binlog:b.000010:4"), POS_LT);
	/* Numbers longer than 64 bits still order. */
	ck_assert_int_eq(
	    cmp_text("binlog:b.99999999999999999999999:4", "binlog:b.100000000000000000000000:4"),
	    POS_LT);
	/* Different logs have no order. */
	ck_assert_int_eq(cmp_text("binlog:mysql-bin.000001:4", "binlog:mariadb-bin.000002:4"),
			 POS_INCOMPARABLE);
	ck_assert_int_eq(cmp_text("binlog:bin.000001:4", "binlog:bin2.000002:4"), POS_INCOMPARABLE);
	ck_assert_int_eq(cmp_text("binlog:a.b.000001:4", "binlog:a.000002:4"), POS_INCOMPARABLE);
	/* One number spelled two ways is two files. */
	ck_assert_int_eq(cmp_text("binlog:bin.0010:4", "binlog:bin.000010:4"), POS_INCOMPARABLE);
	/* Without a numeric extension only the very same file compares. */
	ck_assert_int_eq(cmp_text("binlog:noext:4", "binlog:noext:8"), POS_LT);
	ck_assert_int_eq(cmp_text("binlog:bin.index:4", "binlog:bin.000001:4"), POS_INCOMPARABLE);
	ck_assert_int_eq(cmp_text("binlog:bin.:4", "binlog:bin.1:4"), POS_INCOMPARABLE);
	ck_assert_int_eq(cmp_text("binlog:bin.1a:4", "binlog:bin.2a:4"), POS_INCOMPARABLE);
}
END_TEST

START_TEST(test_compare_gtid)
{
	ck_assert_int_eq(cmp_text("gtid:0-1-5", "gtid:0-1-5"), POS_EQ);
	ck_assert_int_eq(cmp_text("gtid:0-1-5", "gtid:0-1-6"), POS_LT);
	ck_assert_int_eq(cmp_text("gtid:0-1-7", "gtid:0-1-6"), POS_GT);
	/* Equal in one domain, behind in another. */
	ck_assert_int_eq(cmp_text("gtid:0-1-5,1-1-3", "gtid:0-1-5,1-1-4"), POS_LT);
	ck_assert_int_eq(cmp_text("gtid:0-1-5,1-1-9", "gtid:0-1-6,1-1-4"), POS_INCOMPARABLE);
	ck_assert_int_eq(cmp_text("gtid:0-1-6,1-1-4", "gtid:0-1-5,1-1-9"), POS_INCOMPARABLE);
	/* A missing domain counts as seq 0. */
	ck_assert_int_eq(cmp_text("gtid:0-1-5", "gtid:0-1-5,1-1-1"), POS_LT);
	ck_assert_int_eq(cmp_text("gtid:0-1-5,1-1-1", "gtid:0-1-5"), POS_GT);
	ck_assert_int_eq(cmp_text("gtid:0-1-5", "gtid:0-1-5,1-1-0"), POS_EQ);
	ck_assert_int_eq(cmp_text("gtid:0-1-5", "gtid:1-1-5"), POS_INCOMPARABLE);
	ck_assert_int_eq(cmp_text("gtid:", "gtid:0-1-1"), POS_LT);
	ck_assert_int_eq(cmp_text("gtid:", "gtid:"), POS_EQ);
	/* Only seq orders a domain; server id and binlog coordinate take no part. */
	ck_assert_int_eq(cmp_text("gtid:0-1-5", "gtid:0-2-5"), POS_EQ);
	ck_assert_int_eq(cmp_text("gtid:0-9-5", "gtid:0-1-6"), POS_LT);
	ck_assert_int_eq(cmp_text("gtid:0-1-5@bin.000009:4", "gtid:0-1-5@bin.000001:4"), POS_EQ);
	ck_assert_int_eq(cmp_text("gtid:0-1-5@bin.000009:4", "gtid:0-1-6"), POS_LT);
	/* Order of the text does not matter. */
	ck_assert_int_eq(cmp_text("gtid:1-1-3,0-1-5", "gtid:0-1-5,1-1-3"), POS_EQ);
}
END_TEST

START_TEST(test_compare_kinds_and_none)
{
	ck_assert_int_eq(cmp_text("none", "none"), POS_EQ);
	ck_assert_int_eq(cmp_text("none", "pg:0/0"), POS_LT);
	ck_assert_int_eq(cmp_text("pg:0/0", "none"), POS_GT);
	ck_assert_int_eq(cmp_text("none", "binlog:bin.000001:0"), POS_LT);
	ck_assert_int_eq(cmp_text("gtid:", "none"), POS_GT);
	ck_assert_int_eq(cmp_text("pg:0/4", "binlog:bin.000001:4"), POS_INCOMPARABLE);
	ck_assert_int_eq(cmp_text("binlog:bin.000001:4", "gtid:0-1-1@bin.000001:4"),
			 POS_INCOMPARABLE);
	ck_assert_int_eq(cmp_text("gtid:0-1-1", "pg:0/1"), POS_INCOMPARABLE);
	struct pos bad = {.kind = POS__MAX}, none = pos_none();
	ck_assert_int_eq(pos_compare(&bad, &none), POS_INCOMPARABLE);
	ck_assert_int_eq(pos_compare(&none, &bad), POS_INCOMPARABLE);
}
END_TEST

/* Over every pair: compare(b, a) mirrors compare(a, b); every p equals itself. */
START_TEST(test_compare_is_antisymmetric)
{
	static const char *const all[] = {
	    "none",
	    "pg:0/0",
	    "pg:0/1",
	    "pg:1/0",
	    "binlog:b.000009:4",
	    "binlog:b.000010:4",
	    "binlog:b.000010:9",
	    "binlog:b.1000000:4",
	    "binlog:c.000001:4",
	    "binlog:b.0010:4",
	    "gtid:",
	    "gtid:0-1-5",
	    "gtid:0-1-6",
	    "gtid:0-1-5,1-1-1",
	    "gtid:1-1-1",
	    "gtid:0-1-6,1-1-1@b.000001:4",
	};
	for (size_t i = 0; i < ARRAY_LEN(all); i++) {
		struct pos a = parse_ok(all[i]);
		ck_assert_int_eq(pos_compare(&a, &a), POS_EQ);
		for (size_t j = 0; j < ARRAY_LEN(all); j++) {
			struct pos b = parse_ok(all[j]);
			enum pos_cmp ab = pos_compare(&a, &b), ba = pos_compare(&b, &a);
			if (ab == POS_INCOMPARABLE)
				ck_assert_msg(ba == POS_INCOMPARABLE, "%s vs %s", all[i], all[j]);
			else
				ck_assert_msg(ba == -ab, "%s vs %s: %d / %d", all[i], all[j], ab,
					      ba);
		}
	}
}
END_TEST

START_TEST(test_scalar_orders_like_compare)
{
	const char *const texts[] = {"binlog:mariadb-bin.000009:4", "binlog:mariadb-bin.000009:999",
				     "binlog:mariadb-bin.000010:4", "gtid:0-1-5@mariadb-bin.000010:77",
				     "binlog:mariadb-bin.1000000:4"};
	struct pos p[5];
	const char *e;
	for (int i = 0; i < 5; i++)
		ck_assert_msg(pos_parse(texts[i], &p[i], &e), "%s: %s", texts[i], e);
	for (int i = 0; i + 1 < 5; i++)
		ck_assert_uint_lt(pos_scalar(&p[i]), pos_scalar(&p[i + 1]));
	ck_assert_uint_eq(pos_scalar(&p[3]), (10ull << 32) | 77);
	struct pos l = pos_from_lsn(0x16B374D848ull), g;
	ck_assert_uint_eq(pos_scalar(&l), 0x16B374D848ull);
	ck_assert(pos_parse("gtid:0-1-5", &g, &e));
	ck_assert_uint_eq(pos_scalar(&g), 0); /* no coordinate: no order by bytes */

	/* And back, in the binlog of a position of the same source. */
	char buf[POS_TEXT_MAX];
	struct pos b = pos_from_scalar(&p[3], (11ull << 32) | 4);
	ck_assert_str_eq(pos_format(&b, buf, sizeof(buf)), "binlog:mariadb-bin.000011:4");
	b = pos_from_scalar(&p[0], pos_scalar(&p[4]));
	ck_assert_str_eq(pos_format(&b, buf, sizeof(buf)), "binlog:mariadb-bin.1000000:4");
	b = pos_from_scalar(&l, 0x16B374D848ull);
	ck_assert_str_eq(pos_format(&b, buf, sizeof(buf)), "pg:16/B374D848");
	b = pos_from_scalar(&l, 0);
	ck_assert(pos_is_none(&b));
}
END_TEST

START_TEST(test_distance)
{
	ck_assert_int_eq(dist_text("pg:0/100", "pg:0/180"), 0x80);
	ck_assert_int_eq(dist_text("pg:0/180", "pg:0/100"), -0x80);
	ck_assert_int_eq(dist_text("pg:0/FFFFFFFF", "pg:1/0"), 1);
	ck_assert_int_eq(dist_text("pg:0/0", "pg:7FFFFFFF/FFFFFFFF"), INT64_MAX);
	ck_assert_int_eq(dist_text("pg:16/B374D848", "pg:16/B374D848"), 0);
	ck_assert_int_eq(dist_text("binlog:bin.000003:100", "binlog:bin.000003:1100"), 1000);
	ck_assert_int_eq(dist_text("binlog:bin.000003:1100", "binlog:bin.000003:100"), -1000);
	/* Not meaningful: -1. */
	ck_assert_int_eq(dist_text("binlog:bin.000003:100", "binlog:bin.000004:100"), -1);
	ck_assert_int_eq(dist_text("pg:0/1", "binlog:bin.000003:100"), -1);
	ck_assert_int_eq(dist_text("none", "pg:0/1"), -1);
	ck_assert_int_eq(dist_text("gtid:0-1-1@bin.000001:4", "gtid:0-1-2@bin.000001:40"), -1);
}
END_TEST

START_TEST(test_gtid_advance)
{
	struct pos p = parse_ok("gtid:");
	ck_assert(pos_gtid_advance(&p, 5, 1, 10));
	ck_assert(pos_gtid_advance(&p, 0, 1, 3));
	ck_assert(pos_gtid_advance(&p, 2, 7, 1));
	ck_assert_str_eq(fmt(&p), "gtid:0-1-3,2-7-1,5-1-10"); /* inserted in order */

	ck_assert(pos_gtid_advance(&p, 5, 2, 11)); /* new server, later seq */
	ck_assert(pos_gtid_advance(&p, 5, 2, 11)); /* same seq again: fine */
	ck_assert_str_eq(fmt(&p), "gtid:0-1-3,2-7-1,5-2-11");

	ck_assert(!pos_gtid_advance(&p, 5, 1, 10)); /* backwards */
	ck_assert_str_eq(fmt(&p), "gtid:0-1-3,2-7-1,5-2-11");

	/* Advancing keeps the coordinate; the caller owns it. */
	p = parse_ok("gtid:0-1-3@bin.000001:4");
	ck_assert(pos_gtid_advance(&p, 0, 1, 4));
	ck_assert_str_eq(fmt(&p), "gtid:0-1-4@bin.000001:4");

	/* Not a GTID position. */
	struct pos lsn = pos_from_lsn(1), none = pos_none();
	ck_assert(!pos_gtid_advance(&lsn, 0, 1, 1));
	ck_assert(!pos_gtid_advance(&none, 0, 1, 1));
	ck_assert_int_eq(none.kind, POS_NONE);
}
END_TEST

START_TEST(test_gtid_advance_full_table)
{
	struct pos p = parse_ok("gtid:");
	for (uint32_t d = POS_GTID_DOMAINS; d > 0; d--)
		ck_assert(pos_gtid_advance(&p, d * 10, 1, d));
	ck_assert_int_eq(p.ngtid, POS_GTID_DOMAINS);
	for (int i = 1; i < p.ngtid; i++)
		ck_assert_uint_lt(p.gtid[i - 1].domain, p.gtid[i].domain);
	struct pos before = p;
	ck_assert(!pos_gtid_advance(&p, 5, 1, 1)); /* no room for a 17th domain */
	ck_assert_int_eq(pos_compare(&p, &before), POS_EQ);
	ck_assert_int_eq(p.ngtid, POS_GTID_DOMAINS);
	ck_assert(pos_gtid_advance(&p, 10, 1, 99)); /* existing domains still advance */
	ck_assert_uint_eq(p.gtid[0].seq, 99);
	/* And what advance built, parse reads back. */
	struct pos q = parse_ok(fmt(&p));
	ck_assert_int_eq(pos_compare(&p, &q), POS_EQ);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pos");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_lsn_format);
	tcase_add_test(tc, test_lsn_parse);
	tcase_add_test(tc, test_round_trip_canonical);
	tcase_add_test(tc, test_parse_fields);
	tcase_add_test(tc, test_parse_sorts_gtid_domains);
	tcase_add_test(tc, test_rejections);
	tcase_add_test(tc, test_err_may_be_null);
	tcase_add_test(tc, test_file_name_length);
	tcase_add_test(tc, test_gtid_domain_limit);
	tcase_add_test(tc, test_format_truncates_safely);
	tcase_add_test(tc, test_compare_lsn);
	tcase_add_test(tc, test_compare_binlog);
	tcase_add_test(tc, test_compare_gtid);
	tcase_add_test(tc, test_compare_kinds_and_none);
	tcase_add_test(tc, test_compare_is_antisymmetric);
	tcase_add_test(tc, test_distance);
	tcase_add_test(tc, test_scalar_orders_like_compare);
	tcase_add_test(tc, test_gtid_advance);
	tcase_add_test(tc, test_gtid_advance_full_table);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
