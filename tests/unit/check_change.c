/*
 * Unit tests for change: encode/decode round trips of every event kind and
 * position kind, decode robustness (every truncation, random bit flips and
 * garbage: run under ASan/valgrind), and the relation cache's semantics.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"

/* --- sample events ------------------------------------------------------- */

static struct pos pos_lsn(uint64_t lsn)
{
	return (struct pos){.kind = POS_PG_LSN, .lsn = lsn};
}

static struct pos pos_binlog(const char *file, uint64_t off)
{
	struct pos p = {.kind = POS_BINLOG, .has_binlog = true, .offset = off};
	snprintf(p.file, sizeof(p.file), "%s", file);
	return p;
}

static struct pos pos_gtid(int ndomains, bool with_binlog)
{
	struct pos p = {.kind = POS_MARIADB_GTID, .ngtid = ndomains};
	for (int i = 0; i < ndomains; i++)
		p.gtid[i] = (struct pos_gtid){.domain = (uint32_t)i * 7,
					      .server = UINT32_MAX - (uint32_t)i,
					      .seq = UINT64_MAX / (uint64_t)(i + 1)};
	if (with_binlog) {
		p.has_binlog = true;
		snprintf(p.file, sizeof(p.file), "mariadb-bin.%06d", 123456);
		p.offset = 987654321;
	}
	return p;
}

static const char embedded_nul[] = {'a', '\0', 'b', '\0', '\0', 'c'};
static char long_value[1 << 20];

static struct change_value vals_a[5];
static struct change_value vals_b[3];
static struct change_column cols[4] = {
    {"id", 20, -1, CHC_KEY},
    {"name", 25, -1, 0},
    {"price", 1700, (10 << 16 | 2) + 4, 0},
    {"tenant", 23, -1, CHC_KEY},
};
static const uint32_t trunc_relids[] = {16384, 1, UINT32_MAX};

#define NSAMPLES 14
static struct change_event samples[NSAMPLES];

static void make_samples(void)
{
	memset(long_value, 'x', sizeof(long_value));
	long_value[12345] = '\0';
	vals_a[0] = (struct change_value){.kind = CHV_TEXT, .len = 2, .data = "42"};
	vals_a[1] = (struct change_value){.kind = CHV_NULL};
	vals_a[2] = (struct change_value){.kind = CHV_UNCHANGED};
	vals_a[3] = (struct change_value){
	    .kind = CHV_TEXT, .len = sizeof(embedded_nul), .data = embedded_nul};
	vals_a[4] =
	    (struct change_value){.kind = CHV_TEXT, .len = sizeof(long_value), .data = long_value};
	vals_b[0] = (struct change_value){.kind = CHV_TEXT, .len = 2, .data = "41"};
	vals_b[1] = (struct change_value){.kind = CHV_TEXT, .len = 0, .data = ""};
	vals_b[2] = (struct change_value){.kind = CHV_NULL};

	struct change_tuple ta = {5, vals_a}, tb = {3, vals_b};
	int i = 0;
	samples[i] = (struct change_event){.kind = CHG_BEGIN, .xid = 777};
	samples[i].begin.final_pos = pos_lsn(0x16B374D848);
	samples[i++].begin.commit_time_us = 1700000000123456;

	samples[i] = (struct change_event){.kind = CHG_COMMIT, .xid = 777};
	samples[i].commit.commit_pos = pos_lsn(0x16B374D848);
	samples[i].commit.end_pos = pos_lsn(UINT64_MAX);
	samples[i++].commit.commit_time_us = -5; /* negative times survive zigzag */

	samples[i] = (struct change_event){.kind = CHG_COMMIT};
	samples[i].commit.commit_pos = pos_binlog("mysql-bin.000003", 1234);
	samples[i].commit.end_pos = pos_gtid(POS_GTID_DOMAINS, true);
	samples[i++].commit.commit_time_us = INT64_MIN;

	samples[i] = (struct change_event){.kind = CHG_COMMIT, .xid = UINT32_MAX};
	samples[i].commit.commit_pos = pos_none();
	samples[i].commit.end_pos = pos_gtid(2, false);
	samples[i++].commit.commit_time_us = INT64_MAX;

	samples[i] = (struct change_event){.kind = CHG_RELATION, .xid = 5};
	samples[i++].rel = (struct change_relation){.relid = 16384,
						    .schema = "public",
						    .name = "orders",
						    .replident = 'd',
						    .ncols = 4,
						    .cols = cols};

	samples[i] = (struct change_event){.kind = CHG_RELATION};
	samples[i++].rel = (struct change_relation){
	    .relid = UINT32_MAX, .schema = "s", .name = "no_columns", .replident = 'n'};

	samples[i] = (struct change_event){.kind = CHG_INSERT, .xid = 9};
	samples[i].row.relid = 16384;
	samples[i++].row.new_tuple = ta;

	samples[i] = (struct change_event){.kind = CHG_UPDATE, .xid = 9};
	samples[i].row.relid = 16384;
	samples[i].row.old_kind = 'K';
	samples[i].row.old_tuple = tb;
	samples[i++].row.new_tuple = ta;

	samples[i] = (struct change_event){.kind = CHG_UPDATE};
	samples[i].row.relid = 1;
	samples[i++].row.new_tuple = tb;

	samples[i] = (struct change_event){.kind = CHG_DELETE};
	samples[i].row.relid = 2;
	samples[i].row.old_kind = 'O';
	samples[i++].row.old_tuple = ta;

	samples[i] = (struct change_event){.kind = CHG_DELETE};
	samples[i].row.relid = 3;
	samples[i].row.old_kind = 'K';
	samples[i++].row.old_tuple = tb;

	samples[i] = (struct change_event){.kind = CHG_TRUNCATE, .xid = 1};
	samples[i].truncate.flags = 3;
	samples[i].truncate.nrelids = 3;
	samples[i++].truncate.relids = trunc_relids;

	samples[i] = (struct change_event){.kind = CHG_ORIGIN};
	samples[i].origin.commit_pos = pos_binlog("b.000001", 4);
	samples[i++].origin.name = "pg_16390";

	samples[i] = (struct change_event){.kind = CHG_ORIGIN};
	samples[i].origin.commit_pos = pos_gtid(1, true);
	samples[i++].origin.name = "";
	ck_assert_int_eq(i, NSAMPLES);
}

/* --- comparison ---------------------------------------------------------- */

static void assert_pos_eq(const struct pos *a, const struct pos *b)
{
	ck_assert_int_eq(a->kind, b->kind);
	switch (a->kind) {
	case POS_PG_LSN:
		ck_assert_uint_eq(a->lsn, b->lsn);
		break;
	case POS_BINLOG:
	case POS_MARIADB_GTID:
		ck_assert_int_eq(a->has_binlog, b->has_binlog);
		if (a->has_binlog) {
			ck_assert_str_eq(a->file, b->file);
			ck_assert_uint_eq(a->offset, b->offset);
		}
		ck_assert_int_eq(a->ngtid, b->ngtid);
		for (int i = 0; i < a->ngtid; i++) {
			ck_assert_uint_eq(a->gtid[i].domain, b->gtid[i].domain);
			ck_assert_uint_eq(a->gtid[i].server, b->gtid[i].server);
			ck_assert_uint_eq(a->gtid[i].seq, b->gtid[i].seq);
		}
		break;
	default:
		break;
	}
}

static void assert_tuple_eq(const struct change_tuple *a, const struct change_tuple *b)
{
	ck_assert_uint_eq(a->ncols, b->ncols);
	for (uint16_t i = 0; i < a->ncols; i++) {
		ck_assert_int_eq(a->vals[i].kind, b->vals[i].kind);
		if (a->vals[i].kind != CHV_TEXT)
			continue;
		ck_assert_uint_eq(a->vals[i].len, b->vals[i].len);
		ck_assert(memcmp(a->vals[i].data, b->vals[i].data, a->vals[i].len) == 0);
	}
}

static void assert_event_eq(const struct change_event *a, const struct change_event *b)
{
	ck_assert_int_eq(a->kind, b->kind);
	ck_assert_uint_eq(a->xid, b->xid);
	switch (a->kind) {
	case CHG_BEGIN:
		assert_pos_eq(&a->begin.final_pos, &b->begin.final_pos);
		ck_assert_int_eq(a->begin.commit_time_us, b->begin.commit_time_us);
		break;
	case CHG_COMMIT:
		assert_pos_eq(&a->commit.commit_pos, &b->commit.commit_pos);
		assert_pos_eq(&a->commit.end_pos, &b->commit.end_pos);
		ck_assert_int_eq(a->commit.commit_time_us, b->commit.commit_time_us);
		break;
	case CHG_RELATION:
		ck_assert_uint_eq(a->rel.relid, b->rel.relid);
		ck_assert_str_eq(a->rel.schema, b->rel.schema);
		ck_assert_str_eq(a->rel.name, b->rel.name);
		ck_assert_int_eq(a->rel.replident, b->rel.replident);
		ck_assert_uint_eq(a->rel.ncols, b->rel.ncols);
		for (uint16_t i = 0; i < a->rel.ncols; i++) {
			ck_assert_str_eq(a->rel.cols[i].name, b->rel.cols[i].name);
			ck_assert_uint_eq(a->rel.cols[i].type_oid, b->rel.cols[i].type_oid);
			ck_assert_int_eq(a->rel.cols[i].type_mod, b->rel.cols[i].type_mod);
			ck_assert_uint_eq(a->rel.cols[i].flags, b->rel.cols[i].flags);
		}
		break;
	case CHG_INSERT:
	case CHG_UPDATE:
	case CHG_DELETE:
		ck_assert_uint_eq(a->row.relid, b->row.relid);
		ck_assert_int_eq(a->row.old_kind, b->row.old_kind);
		assert_tuple_eq(&a->row.old_tuple, &b->row.old_tuple);
		if (a->kind != CHG_DELETE)
			assert_tuple_eq(&a->row.new_tuple, &b->row.new_tuple);
		else
			ck_assert_uint_eq(b->row.new_tuple.ncols, 0);
		break;
	case CHG_TRUNCATE:
		ck_assert_uint_eq(a->truncate.flags, b->truncate.flags);
		ck_assert_uint_eq(a->truncate.nrelids, b->truncate.nrelids);
		for (uint16_t i = 0; i < a->truncate.nrelids; i++)
			ck_assert_uint_eq(a->truncate.relids[i], b->truncate.relids[i]);
		break;
	case CHG_ORIGIN:
		assert_pos_eq(&a->origin.commit_pos, &b->origin.commit_pos);
		ck_assert_str_eq(a->origin.name, b->origin.name);
		break;
	default:
		ck_abort_msg("unexpected kind %d", a->kind);
	}
}

/* --- tests --------------------------------------------------------------- */

START_TEST(test_kind_names)
{
	ck_assert_str_eq(change_kind_name(CHG_BEGIN), "begin");
	ck_assert_str_eq(change_kind_name(CHG_TRUNCATE), "truncate");
	for (int k = CHG_BEGIN; k < CHG__MAX; k++)
		ck_assert_str_ne(change_kind_name((enum change_kind)k), "unknown");
	ck_assert_str_eq(change_kind_name((enum change_kind)0), "unknown");
	ck_assert_str_eq(change_kind_name(CHG__MAX), "unknown");
	ck_assert_str_eq(change_kind_name((enum change_kind) - 1), "unknown");
}
END_TEST

START_TEST(test_round_trip_every_kind)
{
	struct change_buf buf = {0};
	struct change_scratch scratch = {0};
	struct change_event out;
	const char *err = NULL;
	bool seen[CHG__MAX] = {false};

	make_samples();
	for (int i = 0; i < NSAMPLES; i++) {
		change_buf_reset(&buf);
		change_encode(&samples[i], &buf);
		ck_assert_uint_eq(buf.data[0], 2); /* format version */
		ck_assert_uint_eq(buf.data[1], samples[i].kind);
		ck_assert_msg(change_decode(buf.data, buf.len, &out, &scratch, &err),
			      "sample %d: %s", i, err);
		assert_event_eq(&samples[i], &out);
		seen[samples[i].kind] = true;
	}
	for (int k = CHG_BEGIN; k < CHG__MAX; k++)
		ck_assert_msg(seen[k], "no sample of %s", change_kind_name((enum change_kind)k));
	change_buf_free(&buf);
	change_scratch_free(&scratch);
}
END_TEST

START_TEST(test_values_borrow_from_input)
{
	struct change_buf buf = {0};
	struct change_scratch scratch = {0};
	struct change_event out;
	const char *err;

	make_samples();
	change_encode(&samples[7], &buf); /* UPDATE with old 'K' and new tuple */
	ck_assert(change_decode(buf.data, buf.len, &out, &scratch, &err));
	const struct change_value *v = &out.row.new_tuple.vals[3];
	ck_assert_uint_eq(v->len, sizeof(embedded_nul));
	ck_assert(memcmp(v->data, embedded_nul, sizeof(embedded_nul)) == 0);
	ck_assert((const uint8_t *)v->data > buf.data &&
		  (const uint8_t *)v->data + v->len <= buf.data + buf.len);
	ck_assert_uint_eq(out.row.new_tuple.vals[4].len, sizeof(long_value));
	ck_assert_ptr_null(out.row.new_tuple.vals[1].data);
	/* the old tuple and the new tuple do not overlap in scratch */
	ck_assert_ptr_ne(out.row.old_tuple.vals, out.row.new_tuple.vals);
	ck_assert_uint_eq(out.row.old_tuple.vals[0].len, 2);
	ck_assert(memcmp(out.row.old_tuple.vals[0].data, "41", 2) == 0);
	change_buf_free(&buf);
	change_scratch_free(&scratch);
}
END_TEST

START_TEST(test_null_strings_encode_empty)
{
	struct change_buf buf = {0};
	struct change_scratch scratch = {0};
	struct change_event ev = {.kind = CHG_RELATION}, out;
	struct change_column c = {.name = NULL, .type_oid = 25, .type_mod = -1};
	const char *err;

	ev.rel = (struct change_relation){.relid = 7, .ncols = 1, .cols = &c};
	change_encode(&ev, &buf);
	ck_assert(change_decode(buf.data, buf.len, &out, &scratch, &err));
	ck_assert_str_eq(out.rel.schema, "");
	ck_assert_str_eq(out.rel.name, "");
	ck_assert_str_eq(out.rel.cols[0].name, "");
	change_buf_free(&buf);
	change_scratch_free(&scratch);
}
END_TEST

START_TEST(test_problem_and_bad_value_round_trip)
{
	struct change_column pcols[1] = {{.name = "id", .type_oid = 23, .type_mod = -1, .flags = CHC_KEY}};
	struct change_event rel = {.kind = CHG_RELATION};
	rel.rel = (struct change_relation){.relid = 7, .schema = "s", .name = "t", .replident = 'd',
					   .ncols = 1, .cols = pcols, .problem = "DDL seen"};
	struct change_value v[1] = {{.kind = CHV_BAD, .len = 9, .data = "zero date"}};
	struct change_event ins = {.kind = CHG_INSERT};
	ins.row.relid = 7;
	ins.row.new_tuple = (struct change_tuple){1, v};
	struct change_buf buf = {0};
	struct change_scratch scratch = {0};
	struct change_event out;
	const char *err = NULL;

	change_encode(&rel, &buf);
	ck_assert(change_decode(buf.data, buf.len, &out, &scratch, &err));
	ck_assert_str_eq(out.rel.problem, "DDL seen");
	struct change_relcache *rc = change_relcache_new();
	bool changed = false;
	change_relcache_put(rc, &out.rel, &changed);
	rel.rel.problem = NULL;
	change_buf_reset(&buf);
	change_encode(&rel, &buf);
	ck_assert(change_decode(buf.data, buf.len, &out, &scratch, &err));
	ck_assert_ptr_null(out.rel.problem);
	const struct change_rel *cr = change_relcache_put(rc, &out.rel, &changed);
	ck_assert_msg(changed, "a problem that goes away is a change of shape");
	ck_assert_ptr_null(cr->desc.problem);
	change_relcache_free(rc);

	change_buf_reset(&buf);
	change_encode(&ins, &buf);
	ck_assert(change_decode(buf.data, buf.len, &out, &scratch, &err));
	ck_assert_int_eq(out.row.new_tuple.vals[0].kind, CHV_BAD);
	ck_assert_int_eq(out.row.new_tuple.vals[0].len, 9);
	ck_assert(memcmp(out.row.new_tuple.vals[0].data, "zero date", 9) == 0);

	/* A version 1 record knows no 'x' value. */
	buf.data[0] = 1;
	ck_assert(!change_decode(buf.data, buf.len, &out, &scratch, &err));
	change_buf_free(&buf);
	change_scratch_free(&scratch);
}
END_TEST

START_TEST(test_decode_rejects_malformed)
{
	struct change_scratch scratch = {0};
	struct change_event out;
	const char *err = NULL;
	struct change_buf buf = {0};

	ck_assert(!change_decode((const uint8_t *)"", 0, &out, &scratch, &err));
	ck_assert_str_eq(err, "empty event");
	ck_assert(!change_decode((const uint8_t *)"\x03\x01\x00", 3, &out, &scratch, &err));
	ck_assert_str_eq(err, "unsupported event format version");
	ck_assert(!change_decode((const uint8_t *)"\x01\x63\x00", 3, &out, &scratch, &err));
	ck_assert_str_eq(err, "unknown event kind");
	ck_assert(!change_decode((const uint8_t *)"\x01\x00\x00", 3, &out, &scratch, &err));
	/* xid varint of 11 bytes, and one that overflows 64 bits */
	ck_assert(
	    !change_decode((const uint8_t *)"\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00",
			   13, &out, &scratch, &err));
	/* xid beyond 32 bits */
	ck_assert(!change_decode((const uint8_t *)"\x01\x01\x80\x80\x80\x80\x10\x00\x00", 9, &out,
				 &scratch, &err));
	ck_assert_str_eq(err, "integer out of range");

	make_samples();
	/* trailing garbage */
	change_encode(&samples[0], &buf);
	buf.data[buf.len++] = 0;
	ck_assert(!change_decode(buf.data, buf.len, &out, &scratch, &err));
	ck_assert_str_eq(err, "trailing bytes after event");

	/* every strict prefix of every sample is refused (the format is prefix-free) */
	for (int i = 0; i < NSAMPLES; i++) {
		change_buf_reset(&buf);
		change_encode(&samples[i], &buf);
		/* all short prefixes and those near the end; a sample of the middle */
		for (size_t n = 0; n < buf.len;
		     n += n < 2048 || n + 2048 >= buf.len ? 1 : buf.len / 128) {
			uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
			memcpy(copy, buf.data, n);
			ck_assert_msg(!change_decode(copy, n, &out, &scratch, &err),
				      "sample %d prefix %zu accepted", i, n);
			ck_assert_ptr_nonnull(err);
			free(copy);
		}
	}
	change_buf_free(&buf);
	change_scratch_free(&scratch);
}
END_TEST

/* xorshift64*: deterministic, seeded per test. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* A decoded event must re-encode and decode again to the same thing. */
static void check_consistent(const struct change_event *ev, const uint8_t *in, size_t inlen)
{
	struct change_buf again = {0};
	struct change_scratch s2 = {0};
	struct change_event ev2;
	const char *err;

	if (ev->kind == CHG_INSERT || ev->kind == CHG_UPDATE || ev->kind == CHG_DELETE) {
		const struct change_tuple *ts[2] = {&ev->row.old_tuple, &ev->row.new_tuple};
		for (int t = 0; t < 2; t++)
			for (uint16_t i = 0; i < ts[t]->ncols; i++) {
				const struct change_value *v = &ts[t]->vals[i];
				if (v->kind == CHV_TEXT)
					ck_assert((const uint8_t *)v->data >= in &&
						  (const uint8_t *)v->data + v->len <= in + inlen);
			}
	}
	change_encode(ev, &again);
	ck_assert_msg(change_decode(again.data, again.len, &ev2, &s2, &err), "%s", err);
	assert_event_eq(ev, &ev2);
	change_buf_free(&again);
	change_scratch_free(&s2);
}

START_TEST(test_decode_fuzz)
{
	struct change_buf buf = {0};
	struct change_scratch scratch = {0};
	struct change_event out;
	const char *err;
	int accepted = 0, refused = 0;

	make_samples();
	/* the 1 MiB value makes flips expensive; fuzz a short variant too */
	vals_a[4].len = 300;
	rng_state = 0x9E3779B97F4A7C15ULL;
	for (int iter = 0; iter < 20000; iter++) {
		const struct change_event *ev = &samples[rnd() % NSAMPLES];
		change_buf_reset(&buf);
		change_encode(ev, &buf);
		size_t n = buf.len;
		int mode = (int)(rnd() % 4);
		if (mode == 0 || mode == 3) /* truncate */
			n = (size_t)(rnd() % (buf.len + 1));
		if (mode >= 1) { /* flip 1..4 bits (mode 3: in a truncated copy) */
			int flips = 1 + (int)(rnd() % 4);
			for (int f = 0; f < flips && n > 0; f++)
				buf.data[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
		}
		if (mode == 2 && iter % 5 == 0) /* garbage of a random length */
			for (size_t i = 0; i < n; i++)
				buf.data[i] = (uint8_t)rnd();
		uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches overreads */
		memcpy(copy, buf.data, n);
		if (change_decode(copy, n, &out, &scratch, &err)) {
			accepted++;
			check_consistent(&out, copy, n);
		} else {
			refused++;
			ck_assert_ptr_nonnull(err);
			ck_assert_int_eq(out.kind, 0);
		}
		free(copy);
	}
	ck_assert_int_gt(refused, 10000);
	ck_assert_int_gt(accepted, 100); /* flips inside values still decode */
	change_buf_free(&buf);
	change_scratch_free(&scratch);
}
END_TEST

START_TEST(test_scratch_reuse)
{
	struct change_buf buf = {0};
	struct change_scratch scratch = {0};
	struct change_event out;
	const char *err;
	static struct change_value many[3000];

	for (int i = 0; i < 3000; i++)
		many[i] = (struct change_value){.kind = CHV_TEXT, .len = 1, .data = "v"};
	struct change_event big = {.kind = CHG_UPDATE, .row = {.relid = 1, .old_kind = 'O'}};
	big.row.old_tuple = (struct change_tuple){3000, many};
	big.row.new_tuple = (struct change_tuple){2999, many};
	make_samples();
	for (int round = 0; round < 3; round++) {
		change_buf_reset(&buf);
		change_encode(&samples[6], &buf);
		ck_assert(change_decode(buf.data, buf.len, &out, &scratch, &err));
		assert_event_eq(&samples[6], &out);
		change_buf_reset(&buf);
		change_encode(&big, &buf);
		ck_assert(change_decode(buf.data, buf.len, &out, &scratch, &err));
		assert_event_eq(&big, &out);
	}
	change_buf_free(&buf);
	change_scratch_free(&scratch);
	change_scratch_free(&scratch); /* idempotent */
	change_buf_free(NULL);
}
END_TEST

/* --- relation cache ------------------------------------------------------ */

static struct change_relation mkrel(uint32_t relid, struct change_column *c, uint16_t n)
{
	return (struct change_relation){.relid = relid,
					.schema = "public",
					.name = "orders",
					.replident = 'd',
					.ncols = n,
					.cols = c};
}

START_TEST(test_relcache_put_get_deep_copy)
{
	struct change_relcache *rc = change_relcache_new();
	struct change_column c[2] = {{"id", 20, -1, CHC_KEY}, {"note", 25, -1, 0}};
	char schema[16] = "public", colname[16] = "note";
	bool changed = true;

	c[1].name = colname;
	struct change_relation r = mkrel(10, c, 2);
	r.schema = schema;
	ck_assert_ptr_null(change_relcache_get(rc, 10));
	const struct change_rel *e = change_relcache_put(rc, &r, &changed);
	ck_assert(!changed); /* a first definition is not a change */
	ck_assert_uint_eq(e->generation, 1);
	ck_assert_ptr_eq(change_relcache_get(rc, 10), e);
	/* the cache owns its copy */
	strcpy(schema, "XXXXXX");
	strcpy(colname, "YYYY");
	c[0].type_oid = 99;
	ck_assert_str_eq(e->desc.schema, "public");
	ck_assert_str_eq(e->desc.cols[1].name, "note");
	ck_assert_uint_eq(e->desc.cols[0].type_oid, 20);
	ck_assert_ptr_ne(e->desc.cols, c);
	change_relcache_free(rc);
	change_relcache_free(NULL);
}
END_TEST

START_TEST(test_relcache_changed_semantics)
{
	struct change_relcache *rc = change_relcache_new();
	struct change_column base[3] = {
	    {"id", 20, -1, CHC_KEY}, {"note", 25, -1, 0}, {"n", 1700, 655366, 0}};
	struct change_column c[4];
	bool changed;

	memcpy(c, base, sizeof(base));
	struct change_relation r = mkrel(10, c, 3);
	const struct change_rel *e1 = change_relcache_put(rc, &r, &changed);

	/* identical: no change, same entry and generation */
	const struct change_rel *e = change_relcache_put(rc, &r, &changed);
	ck_assert(!changed);
	ck_assert_ptr_eq(e, e1);
	ck_assert_uint_eq(e->generation, 1);

	/* renames and replica identity are not a change of shape, but a new generation */
	r.schema = "archive";
	e = change_relcache_put(rc, &r, &changed);
	ck_assert(!changed);
	ck_assert_uint_eq(e->generation, 2);
	ck_assert_str_eq(change_relcache_get(rc, 10)->desc.schema, "archive");
	r.name = "orders_old";
	e = change_relcache_put(rc, &r, &changed);
	ck_assert(!changed);
	ck_assert_uint_eq(e->generation, 3);
	r.replident = 'f';
	e = change_relcache_put(rc, &r, &changed);
	ck_assert(!changed);
	ck_assert_uint_eq(e->generation, 4);

	/* each column attribute is part of the shape */
	for (int what = 0; what < 6; what++) {
		memcpy(c, base, sizeof(base));
		uint16_t n = 3;
		switch (what) {
		case 0:
			c[1].name = "notes";
			break;
		case 1:
			c[1].type_oid = 1043;
			break;
		case 2:
			c[2].type_mod = 655367;
			break;
		case 3:
			c[1].flags = CHC_KEY;
			break;
		case 4:
			n = 2;
			break;
		case 5:
			c[3] = (struct change_column){"extra", 16, -1, 0};
			n = 4;
			break;
		}
		r.ncols = n;
		/* back to the base shape first (a change too), then the variant */
		struct change_relation b = r;
		b.cols = base;
		b.ncols = 3;
		change_relcache_put(rc, &b, &changed);
		uint64_t gen = change_relcache_get(rc, 10)->generation;
		e = change_relcache_put(rc, &r, &changed);
		ck_assert_msg(changed, "variant %d not seen as a change", what);
		ck_assert_uint_eq(e->generation, gen + 1);
		ck_assert_uint_eq(e->desc.ncols, n);
		/* putting the variant again is no change */
		change_relcache_put(rc, &r, &changed);
		ck_assert(!changed);
	}
	change_relcache_free(rc);
}
END_TEST

static void count_cb(const struct change_rel *r, void *arg)
{
	uint64_t *sum = arg;
	sum[0]++;
	sum[1] += r->desc.relid;
}

START_TEST(test_relcache_many)
{
	struct change_relcache *rc = change_relcache_new();
	struct change_column c = {"id", 20, -1, CHC_KEY};
	uint64_t expect = 0;

	for (uint32_t i = 1; i <= 5000; i++) {
		struct change_relation r = mkrel(i * 7919u, &c, 1);
		change_relcache_put(rc, &r, NULL);
		expect += i * 7919u;
	}
	for (uint32_t i = 1; i <= 5000; i++) {
		const struct change_rel *e = change_relcache_get(rc, i * 7919u);
		ck_assert_ptr_nonnull(e);
		ck_assert_uint_eq(e->desc.relid, i * 7919u);
	}
	ck_assert_ptr_null(change_relcache_get(rc, 1));
	uint64_t sum[2] = {0, 0};
	change_relcache_foreach(rc, count_cb, sum);
	ck_assert_uint_eq(sum[0], 5000);
	ck_assert_uint_eq(sum[1], expect);
	change_relcache_free(rc);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("change");
	TCase *tc = tcase_create("core");
	if (getenv("CK_DEFAULT_TIMEOUT") == NULL) /* make check sets it; valgrind runs raise it */
		tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_kind_names);
	tcase_add_test(tc, test_round_trip_every_kind);
	tcase_add_test(tc, test_values_borrow_from_input);
	tcase_add_test(tc, test_null_strings_encode_empty);
	tcase_add_test(tc, test_decode_rejects_malformed);
	tcase_add_test(tc, test_problem_and_bad_value_round_trip);
	tcase_add_test(tc, test_decode_fuzz);
	tcase_add_test(tc, test_scratch_reuse);
	tcase_add_test(tc, test_relcache_put_get_deep_copy);
	tcase_add_test(tc, test_relcache_changed_semantics);
	tcase_add_test(tc, test_relcache_many);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
