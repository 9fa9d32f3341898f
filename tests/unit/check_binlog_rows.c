/*
 * Unit tests for binlog_rows: TABLE_MAP and ROWS events a real MariaDB
 * 10.11 wrote (binlog_fixtures.h, from tests/tools/mycapture_fixtures.c,
 * whose workload and expected values these assertions follow), hand-built
 * values for what a server cannot be made to write (invalid UTF-8, MySQL
 * binary JSON, every fractional-seconds width, v2 events, ...), and a fuzz
 * pass (every truncation and random bit flips of every fixture) meant to
 * run under ASan.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binlog_rows.h"
#include "util.h"

#include "binlog_fixtures.h"

#define NEVENTS ARRAY_LEN(myfx_events)

/* --- fixture helpers ------------------------------------------------------------- */

/* The i-th TABLE_MAP of table name (0: the first). */
static void parse_map_of(const char *name, int nth, enum binlog_flavor fl,
			 struct binlog_tablemap *tm)
{
	const char *err = NULL;
	for (size_t i = 0; i < NEVENTS; i++) {
		const struct myfx_event *e = &myfx_events[i];
		if (e->type != BINLOG_TABLE_MAP_EVENT)
			continue;
		ck_assert_msg(binlog_tablemap_parse(e->body, e->len, fl, tm, &err), "event %zu: %s",
			      i, err);
		if (strcmp(tm->table, name) == 0 && nth-- == 0)
			return;
		binlog_tablemap_free(tm);
	}
	ck_abort_msg("no TABLE_MAP for %s", name);
}

static const struct binlog_column *col_named(const struct binlog_tablemap *tm, const char *name)
{
	for (uint32_t i = 0; i < tm->ncols; i++)
		if (tm->cols[i].name != NULL && strcmp(tm->cols[i].name, name) == 0)
			return &tm->cols[i];
	ck_abort_msg("%s has no column %s", tm->table, name);
	return NULL;
}

/* The caller's part for MariaDB's UUID/INET6/INET4: mark them from the schema. */
static void mark_ext(struct binlog_tablemap *tm)
{
	if (strcmp(tm->table, "ext") != 0)
		return;
	tm->cols[1].ext = BINLOG_EXT_UUID;
	tm->cols[2].ext = BINLOG_EXT_INET6;
	tm->cols[3].ext = BINLOG_EXT_INET4;
}

static const struct myfx_row *expected_row(const char *table, int id, int version)
{
	for (size_t i = 0; i < ARRAY_LEN(myfx_rows); i++)
		if (strcmp(myfx_rows[i].table, table) == 0 && myfx_rows[i].id == id &&
		    myfx_rows[i].version == version)
			return &myfx_rows[i];
	ck_abort_msg("no expected row %s id %d version %d", table, id, version);
	return NULL;
}

static int image_id(const struct binlog_image *im)
{
	const struct change_value *v = &im->tuple.vals[0];
	ck_assert_int_eq(v->kind, CHV_TEXT);
	char tmp[16];
	ck_assert_uint_lt(v->len, sizeof(tmp));
	memcpy(tmp, v->data, v->len);
	tmp[v->len] = '\0';
	return atoi(tmp);
}

static int nvalues_checked;

static void expect_image(const struct binlog_image *im, const struct myfx_row *x)
{
	ck_assert_int_eq(im->tuple.ncols, x->ncols);
	uint32_t nbad = 0;
	for (int c = 0; c < x->ncols; c++) {
		const struct change_value *v = &im->tuple.vals[c];
		ck_assert_msg(im->status[c] == x->status[c],
			      "%s id %d v%d col %d: status %s, want %s", x->table, x->id,
			      x->version, c, binlog_value_status_name(im->status[c]),
			      binlog_value_status_name(x->status[c]));
		nbad += x->status[c] != BINLOG_VAL_OK;
		if (x->vals[c] == NULL) {
			ck_assert_msg(v->kind == CHV_NULL, "%s id %d v%d col %d: not NULL",
				      x->table, x->id, x->version, c);
		} else {
			ck_assert_msg(v->kind == CHV_TEXT, "%s id %d v%d col %d: kind %c", x->table,
				      x->id, x->version, c, v->kind);
			ck_assert_msg(v->len == strlen(x->vals[c]) &&
					  memcmp(v->data, x->vals[c], v->len) == 0,
				      "%s id %d v%d col %d: '%.*s', want '%s'", x->table, x->id,
				      x->version, c, (int)(v->len > 200 ? 200 : v->len), v->data,
				      x->vals[c]);
		}
		nvalues_checked++;
	}
	ck_assert_uint_eq(im->nbad, nbad);
}

/*
 * Walks every fixture event as migd would: TABLE_MAPs replace the map of
 * their table id, ROWS events decode with it.  Each FULL image is matched
 * to its expected row version: an insert makes version 0, an update's
 * after image the next version of its id.  Non-FULL events are counted
 * (test_fixture_minimal_image looks at them).
 */
START_TEST(test_fixture_rows)
{
	struct binlog_tablemap maps[8] = {0};
	struct binlog_rows it = {0};
	struct change_buf buf = {0};
	struct binlog_row row;
	const char *err = NULL;
	bool seen[ARRAY_LEN(myfx_rows)] = {0};
	struct {
		char table[16];
		int id, version;
	} cur[128];
	int ncur = 0, nrows = 0, nevents = 0, npartial = 0;
	nvalues_checked = 0;

	for (size_t i = 0; i < NEVENTS; i++) {
		const struct myfx_event *e = &myfx_events[i];
		if (e->type == BINLOG_TABLE_MAP_EVENT) {
			struct binlog_tablemap *tm = &maps[0];
			binlog_tablemap_free(tm);
			ck_assert_msg(
			    binlog_tablemap_parse(e->body, e->len, BINLOG_MARIADB, tm, &err),
			    "event %zu: %s", i, err);
			ck_assert_ptr_null(tm->unsupported);
			mark_ext(tm);
			continue;
		}
		const struct binlog_tablemap *tm = &maps[0];
		ck_assert(binlog_is_rows_event(e->type));
		ck_assert_msg(binlog_rows_open(&it, e->type, e->body, e->len, &err),
			      "event %zu: %s", i, err);
		ck_assert_uint_eq(it.table_id, tm->table_id);
		ck_assert_int_eq(it.version, 1);
		nevents++;
		if (!it.full_image) {
			ck_assert_str_eq(tm->table, "minimal");
			npartial++;
			continue;
		}
		enum binlog_next n;
		while ((n = binlog_rows_next(&it, tm, &buf, &row, &err)) == BINLOG_NEXT_ROW) {
			nrows++;
			const struct binlog_image *ims[2] = {&row.before, &row.after};
			int before_version = -1;
			for (int k = 0; k < 2; k++) {
				const struct binlog_image *im = ims[k];
				if (im->tuple.ncols == 0)
					continue;
				int id = image_id(im), slot = -1;
				for (int s = 0; s < ncur; s++)
					if (strcmp(cur[s].table, tm->table) == 0 && cur[s].id == id)
						slot = s;
				if (slot < 0) {
					ck_assert_int_lt(ncur, (int)ARRAY_LEN(cur));
					slot = ncur++;
					snprintf(cur[slot].table, sizeof(cur[slot].table), "%s",
						 tm->table);
					cur[slot].id = id;
					cur[slot].version = 0;
				}
				int version;
				if (k == 0) /* before: the row as it stands */
					version = before_version = cur[slot].version;
				else if (it.kind ==
					 BINLOG_ROWS_UPDATE) /* after: the next version */
					version = before_version + 1;
				else
					version = 0;
				cur[slot].version = version;
				const struct myfx_row *x = expected_row(tm->table, id, version);
				expect_image(im, x);
				seen[x - myfx_rows] = true;
			}
			ck_assert_int_eq(row.before.tuple.ncols != 0, it.kind != BINLOG_ROWS_WRITE);
			ck_assert_int_eq(row.after.tuple.ncols != 0, it.kind != BINLOG_ROWS_DELETE);
		}
		ck_assert_msg(n == BINLOG_NEXT_END, "event %zu: %s", i, err);
		ck_assert_uint_gt(it.nrows, 0);
	}
	/* every expected version was in the stream, but those only in partial images */
	for (size_t x = 0; x < ARRAY_LEN(myfx_rows); x++) {
		const struct myfx_row *r = &myfx_rows[x];
		bool partial_only =
		    strcmp(r->table, "minimal") == 0 && (r->version > 0 || r->id == 3);
		ck_assert_msg(seen[x] != partial_only, "%s id %d v%d seen=%d", r->table, r->id,
			      r->version, seen[x]);
	}
	ck_assert_int_eq(nevents, 42);
	ck_assert_int_eq(npartial, 4);
	ck_assert_int_eq(nrows, 94);
	ck_assert_int_eq(nvalues_checked, 650);
	binlog_tablemap_free(&maps[0]);
	binlog_rows_free(&it);
	change_buf_free(&buf);
}
END_TEST

/* Columns, names, keys, charsets, signedness and members of every table. */
START_TEST(test_fixture_tablemaps)
{
	const char *err = NULL;
	int nmaps = 0;
	/* every map of a table is the same table: same id and shape */
	for (size_t i = 0; i < NEVENTS; i++) {
		const struct myfx_event *e = &myfx_events[i];
		if (e->type != BINLOG_TABLE_MAP_EVENT)
			continue;
		struct binlog_tablemap tm;
		ck_assert(binlog_tablemap_parse(e->body, e->len, BINLOG_MARIADB, &tm, &err));
		nmaps++;
		ck_assert_str_eq(tm.schema, "fx");
		ck_assert_uint_eq(tm.flags, 1); /* TM_BIT_LEN_EXACT_F */
		ck_assert(tm.full_metadata && tm.has_names && tm.has_charsets | tm.has_signedness);
		const struct myfx_table *t = NULL;
		for (size_t k = 0; k < ARRAY_LEN(myfx_tables); k++)
			if (strcmp(myfx_tables[k].name, tm.table) == 0)
				t = &myfx_tables[k];
		ck_assert_ptr_nonnull(t);
		ck_assert_uint_eq(tm.ncols, (uint32_t)t->ncols);
		for (int c = 0; c < t->ncols; c++) {
			ck_assert_str_eq(tm.cols[c].name, t->cols[c]);
			ck_assert_ptr_null(binlog_column_check(&tm.cols[c]));
		}
		ck_assert(tm.cols[0].type == BINLOG_T_LONG && !tm.cols[0].nullable);
		ck_assert(tm.has_key_info == (strcmp(tm.table, "nopk") != 0));
		binlog_tablemap_free(&tm);
		binlog_tablemap_free(&tm); /* safe twice */
	}
	ck_assert_int_eq(nmaps, 40);

	struct binlog_tablemap tm;
	/* integers: signedness from SIGNEDNESS; MariaDB counts YEAR in it */
	parse_map_of("ints", 0, BINLOG_MARIADB, &tm);
	static const uint8_t int_types[] = {3, 1, 1, 2, 2, 9, 9, 3, 3, 8, 8, 13};
	for (uint32_t c = 0; c < tm.ncols; c++) {
		ck_assert_uint_eq(tm.cols[c].type, int_types[c]);
		ck_assert(tm.cols[c].sign_known);
		ck_assert_int_eq(tm.cols[c].is_unsigned, c == 11 || (c > 0 && c % 2 == 0));
		ck_assert_int_eq(tm.cols[c].nullable, c > 0);
		ck_assert_uint_eq(tm.cols[c].collation, 0);
	}
	ck_assert(tm.has_signedness && !tm.has_charsets);
	ck_assert_uint_eq(tm.nkeys, 1);
	ck_assert_uint_eq(tm.key_cols[0], 0);
	ck_assert_uint_eq(tm.cols[0].key_seq, 1);
	uint64_t ints_id = tm.table_id;
	binlog_tablemap_free(&tm);
	parse_map_of("ints", 2, BINLOG_MARIADB, &tm); /* the DELETE's map: same id */
	ck_assert_uint_eq(tm.table_id, ints_id);
	binlog_tablemap_free(&tm);

	parse_map_of("decs", 0, BINLOG_MARIADB, &tm);
	static const uint8_t prec[] = {1, 5, 10, 18, 20, 38, 65, 12},
			     scale[] = {0, 2, 6, 4, 6, 10, 30, 3};
	for (int c = 1; c <= 8; c++) {
		ck_assert_uint_eq(tm.cols[c].type, BINLOG_T_NEWDECIMAL);
		ck_assert_uint_eq(tm.cols[c].precision, prec[c - 1]);
		ck_assert_uint_eq(tm.cols[c].scale, scale[c - 1]);
		ck_assert_int_eq(tm.cols[c].is_unsigned, c == 8);
	}
	binlog_tablemap_free(&tm);

	parse_map_of("floats", 0, BINLOG_MARIADB, &tm);
	ck_assert(tm.cols[1].type == BINLOG_T_FLOAT && tm.cols[1].pack_len == 4);
	ck_assert(tm.cols[2].type == BINLOG_T_DOUBLE && tm.cols[2].pack_len == 8);
	binlog_tablemap_free(&tm);

	parse_map_of("temporal", 0, BINLOG_MARIADB, &tm);
	static const uint8_t tt[] = {10, 19, 19, 19, 19, 18, 18, 18, 17, 17, 13};
	static const uint8_t tfsp[] = {0, 0, 1, 3, 6, 0, 3, 6, 0, 6, 0};
	for (int c = 1; c <= 11; c++) {
		ck_assert_uint_eq(tm.cols[c].type, tt[c - 1]);
		ck_assert_uint_eq(tm.cols[c].fsp, tfsp[c - 1]);
	}
	ck_assert(tm.cols[11].sign_known && tm.cols[11].is_unsigned); /* YEAR */
	binlog_tablemap_free(&tm);
	/* MySQL does not give YEAR a SIGNEDNESS bit */
	parse_map_of("temporal", 0, BINLOG_MYSQL, &tm);
	ck_assert(!tm.cols[11].sign_known && tm.cols[0].sign_known);
	binlog_tablemap_free(&tm);

	parse_map_of("oldtemporal", 0, BINLOG_MARIADB, &tm);
	ck_assert_uint_eq(tm.cols[1].type, BINLOG_T_TIME);
	ck_assert_uint_eq(tm.cols[2].type, BINLOG_T_DATETIME);
	ck_assert_uint_eq(tm.cols[3].type, BINLOG_T_TIMESTAMP);
	binlog_tablemap_free(&tm);

	/* strings: utf8mb4_general_ci (45) by DEFAULT_CHARSET, lengths in bytes */
	parse_map_of("strs", 0, BINLOG_MARIADB, &tm);
	static const uint8_t st[] = {254, 15, 15, 252, 252, 252, 252, 254};
	static const uint32_t smax[] = {40, 80, 1200, 0, 0, 0, 0, 1020};
	static const uint8_t slen[] = {1, 1, 2, 1, 2, 3, 4, 2};
	for (int c = 1; c <= 8; c++) {
		ck_assert_uint_eq(tm.cols[c].type, st[c - 1]);
		ck_assert_uint_eq(tm.cols[c].max_len, smax[c - 1]);
		ck_assert_uint_eq(tm.cols[c].len_bytes, slen[c - 1]);
		ck_assert_uint_eq(tm.cols[c].collation, 45);
		ck_assert_int_eq(binlog_collation_charset(tm.cols[c].collation), BINLOG_CS_UTF8MB4);
	}
	ck_assert_uint_eq(tm.cols[8].real_type, BINLOG_T_STRING);
	ck_assert_uint_eq(tm.cols[8].meta,
			  0xcefc); /* CHAR(255) utf8mb4: length 1020 in the type byte */
	binlog_tablemap_free(&tm);

	parse_map_of("latin", 0, BINLOG_MARIADB, &tm);
	ck_assert_uint_eq(tm.cols[1].collation, 8);
	ck_assert_uint_eq(tm.cols[3].collation, 8);
	ck_assert_uint_eq(tm.cols[4].collation, 47); /* latin1_bin, an index/collation pair */
	binlog_tablemap_free(&tm);

	/* one collation each: the COLUMN_CHARSET form */
	parse_map_of("mixcs", 0, BINLOG_MARIADB, &tm);
	static const uint32_t mc[] = {33, 11, 46, 8, 2304, 63, 83, 35};
	static const enum binlog_charset mcs[] = {
	    BINLOG_CS_UTF8MB3, BINLOG_CS_ASCII,	 BINLOG_CS_UTF8MB4, BINLOG_CS_LATIN1,
	    BINLOG_CS_UTF8MB4, BINLOG_CS_BINARY, BINLOG_CS_UTF8MB3, BINLOG_CS_OTHER};
	for (int c = 1; c <= 8; c++) {
		ck_assert_uint_eq(tm.cols[c].collation, mc[c - 1]);
		ck_assert_int_eq(binlog_collation_charset(mc[c - 1]), mcs[c - 1]);
	}
	ck_assert_ptr_nonnull(strstr(binlog_value_unsupported(&tm.cols[8]), "not supported"));
	binlog_tablemap_free(&tm);

	parse_map_of("bins", 0, BINLOG_MARIADB, &tm);
	for (int c = 1; c <= 7; c++)
		ck_assert_uint_eq(tm.cols[c].collation, 63);
	ck_assert(tm.cols[1].real_type == BINLOG_T_STRING && tm.cols[1].max_len == 4);
	ck_assert(tm.cols[2].type == BINLOG_T_VARCHAR && tm.cols[2].max_len == 10);
	ck_assert(tm.cols[7].real_type == BINLOG_T_STRING && tm.cols[7].max_len == 16);
	binlog_tablemap_free(&tm);

	/* ENUM/SET: real type and size in the metadata, members from FULL */
	parse_map_of("enums", 0, BINLOG_MARIADB, &tm);
	static const uint8_t ert[] = {247, 247, 248, 248, 247, 248}, epl[] = {1, 2, 1, 8, 1, 2};
	static const uint32_t enm[] = {3, 300, 3, 64, 2, 9};
	for (int c = 1; c <= 6; c++) {
		ck_assert_uint_eq(tm.cols[c].type, BINLOG_T_STRING);
		ck_assert_uint_eq(tm.cols[c].real_type, ert[c - 1]);
		ck_assert_uint_eq(tm.cols[c].pack_len, epl[c - 1]);
		ck_assert(tm.cols[c].has_members);
		ck_assert_uint_eq(tm.cols[c].nmembers, enm[c - 1]);
		ck_assert_uint_eq(tm.cols[c].collation, c == 5 ? 8 : 45);
	}
	ck_assert_str_eq(tm.cols[1].members[0], "a");
	ck_assert_str_eq(tm.cols[1].members[2], "c");
	ck_assert_str_eq(tm.cols[2].members[255], "v256");
	ck_assert_str_eq(tm.cols[2].members[299], "v300");
	ck_assert_str_eq(tm.cols[3].members[1], "y");
	ck_assert_str_eq(tm.cols[4].members[63], "m64");
	ck_assert_str_eq(tm.cols[5].members[0], "\xe9"); /* latin1 bytes, converted when rendered */
	ck_assert_uint_eq(tm.cols[5].member_lens[1], 1);
	ck_assert_str_eq(tm.cols[6].members[8], "i");
	binlog_tablemap_free(&tm);

	parse_map_of("bits", 0, BINLOG_MARIADB, &tm);
	static const uint16_t bits[] = {1, 8, 10, 64};
	for (int c = 1; c <= 4; c++)
		ck_assert_uint_eq(tm.cols[c].bits, bits[c - 1]);
	binlog_tablemap_free(&tm);

	/* MariaDB's JSON is a LONGTEXT utf8mb4_bin: nothing says JSON */
	parse_map_of("js", 0, BINLOG_MARIADB, &tm);
	ck_assert(tm.cols[1].type == BINLOG_T_BLOB && tm.cols[1].len_bytes == 4);
	ck_assert_uint_eq(tm.cols[1].collation, 46);
	binlog_tablemap_free(&tm);

	parse_map_of("geo", 0, BINLOG_MARIADB, &tm);
	ck_assert(tm.cols[1].type == BINLOG_T_GEOMETRY && tm.cols[1].geometry_type == 0);
	ck_assert(tm.cols[2].type == BINLOG_T_GEOMETRY && tm.cols[2].geometry_type == 1);
	ck_assert_uint_eq(tm.cols[1].collation, 63); /* a "character" column with charset binary */
	binlog_tablemap_free(&tm);

	/* UUID, INET6, INET4 are indistinguishable from BINARY(16)/(4) */
	parse_map_of("ext", 0, BINLOG_MARIADB, &tm);
	static const uint32_t xl[] = {16, 16, 4};
	for (int c = 1; c <= 3; c++) {
		ck_assert(tm.cols[c].type == BINLOG_T_STRING &&
			  tm.cols[c].real_type == BINLOG_T_STRING);
		ck_assert_uint_eq(tm.cols[c].max_len, xl[c - 1]);
		ck_assert_uint_eq(tm.cols[c].collation, 63);
		ck_assert_int_eq(tm.cols[c].ext, BINLOG_EXT_NONE);
	}
	tm.cols[3].ext = BINLOG_EXT_UUID; /* on a BINARY(4): refused */
	ck_assert_ptr_nonnull(binlog_value_unsupported(&tm.cols[3]));
	binlog_tablemap_free(&tm);

	/* keys in key order, with prefixes */
	parse_map_of("comp", 0, BINLOG_MARIADB, &tm);
	ck_assert_uint_eq(tm.nkeys, 2);
	ck_assert_uint_eq(tm.key_cols[0], 1);
	ck_assert_uint_eq(tm.key_cols[1], 0);
	ck_assert_uint_eq(col_named(&tm, "k2")->key_seq, 1);
	ck_assert_uint_eq(col_named(&tm, "id")->key_seq, 2);
	ck_assert_uint_eq(col_named(&tm, "val")->key_seq, 0);
	ck_assert(!col_named(&tm, "k2")->nullable);
	binlog_tablemap_free(&tm);
	parse_map_of("pfx", 0, BINLOG_MARIADB, &tm);
	ck_assert_uint_eq(tm.nkeys, 2);
	ck_assert_uint_eq(tm.key_cols[0], 1);
	ck_assert_uint_eq(tm.cols[1].key_prefix, 10);
	ck_assert_uint_eq(tm.cols[0].key_prefix, 0);
	binlog_tablemap_free(&tm);
	parse_map_of("nopk", 0, BINLOG_MARIADB, &tm);
	ck_assert(tm.full_metadata && !tm.has_key_info && tm.nkeys == 0);
	binlog_tablemap_free(&tm);
}
END_TEST

/* A row of the minimal table from event i. */
static void minimal_row(size_t i, struct binlog_rows *it, struct binlog_tablemap *tm,
			struct change_buf *buf, struct binlog_row *row)
{
	const char *err = NULL;
	const struct myfx_event *e = &myfx_events[i];
	ck_assert_uint_eq(myfx_events[i - 1].type, BINLOG_TABLE_MAP_EVENT);
	ck_assert(binlog_tablemap_parse(myfx_events[i - 1].body, myfx_events[i - 1].len,
					BINLOG_MARIADB, tm, &err));
	ck_assert_str_eq(tm->table, "minimal");
	ck_assert(binlog_rows_open(it, e->type, e->body, e->len, &err));
	ck_assert(!it->full_image);
	ck_assert_int_eq(binlog_rows_next(it, tm, buf, row, &err), BINLOG_NEXT_ROW);
}

static void expect_vals(const struct binlog_image *im, const char *const *want)
{
	ck_assert_uint_eq(im->tuple.ncols, 4);
	for (int c = 0; c < 4; c++) {
		const struct change_value *v = &im->tuple.vals[c];
		if (want[c] == NULL) {
			ck_assert_int_eq(v->kind, CHV_UNCHANGED); /* absent from the image */
		} else {
			ck_assert_int_eq(v->kind, CHV_TEXT);
			ck_assert_int_eq((int)v->len, (int)strlen(want[c]));
			ck_assert(memcmp(v->data, want[c], v->len) == 0);
		}
		ck_assert_uint_eq(im->status[c], BINLOG_VAL_OK);
	}
}

/* binlog_row_image=MINIMAL and NOBLOB: flagged, absent columns CHV_UNCHANGED */
START_TEST(test_fixture_minimal_image)
{
	struct binlog_tablemap tm = {0};
	struct binlog_rows it = {0};
	struct change_buf buf = {0};
	struct binlog_row row;
	const char *err = NULL;
	size_t first = 0;
	for (size_t i = 0; i < NEVENTS && first == 0; i++)
		if (myfx_events[i].type == BINLOG_TABLE_MAP_EVENT &&
		    memmem(myfx_events[i].body, myfx_events[i].len, "minimal", 8) != NULL)
			first = i;
	ck_assert_uint_eq(first, 72);

	/* MINIMAL UPDATE: before = primary key, after = the changed column */
	minimal_row(75, &it, &tm, &buf, &row);
	ck_assert_int_eq(it.kind, BINLOG_ROWS_UPDATE);
	expect_vals(&row.before, (const char *const[]){"1", NULL, NULL, NULL});
	expect_vals(&row.after, (const char *const[]){NULL, "11", NULL, NULL});
	ck_assert_int_eq(binlog_rows_next(&it, &tm, &buf, &row, &err), BINLOG_NEXT_END);
	binlog_tablemap_free(&tm);
	/* MINIMAL DELETE: the key only */
	minimal_row(77, &it, &tm, &buf, &row);
	ck_assert_int_eq(it.kind, BINLOG_ROWS_DELETE);
	expect_vals(&row.before, (const char *const[]){"2", NULL, NULL, NULL});
	ck_assert_uint_eq(row.after.tuple.ncols, 0);
	binlog_tablemap_free(&tm);
	/* MINIMAL INSERT: the columns the statement named */
	minimal_row(79, &it, &tm, &buf, &row);
	ck_assert_int_eq(it.kind, BINLOG_ROWS_WRITE);
	expect_vals(&row.after, (const char *const[]){"3", "30", NULL, NULL});
	binlog_tablemap_free(&tm);
	/* NOBLOB UPDATE: everything but the TEXT column nobody touched */
	minimal_row(81, &it, &tm, &buf, &row);
	expect_vals(&row.before, (const char *const[]){"1", "11", "x", NULL});
	expect_vals(&row.after, (const char *const[]){"1", "11", "w", NULL});
	binlog_tablemap_free(&tm);

	binlog_rows_free(&it);
	binlog_rows_free(&it); /* safe twice */
	change_buf_free(&buf);
}
END_TEST

/* A statement too big for one event: flags say where it ends. */
START_TEST(test_fixture_flags)
{
	struct binlog_rows it = {0};
	const char *err = NULL;
	int nend = 0;
	for (size_t i = 0; i < NEVENTS; i++) {
		const struct myfx_event *e = &myfx_events[i];
		ck_assert_uint_eq(e->server_id, 7);
		if (e->type == BINLOG_TABLE_MAP_EVENT)
			continue;
		ck_assert(binlog_rows_open(&it, e->type, e->body, e->len, &err));
		bool split = i == 39 || i == 40; /* the bins INSERT's first two of three */
		ck_assert_int_eq((it.flags & BINLOG_ROWS_F_STMT_END) == 0, split);
		nend += (it.flags & BINLOG_ROWS_F_STMT_END) != 0;
	}
	ck_assert_int_eq(nend, 40);
	binlog_rows_free(&it);
}
END_TEST

/* Without the schema hint, UUID/INET6/INET4 are the bytes they look like. */
START_TEST(test_fixture_ext_unmarked)
{
	struct binlog_tablemap tm;
	struct binlog_rows it = {0};
	struct change_buf buf = {0};
	struct binlog_row row;
	const char *err = NULL;
	size_t i = 53;
	ck_assert(binlog_tablemap_parse(myfx_events[i - 1].body, myfx_events[i - 1].len,
					BINLOG_MARIADB, &tm, &err));
	ck_assert_str_eq(tm.table, "ext");
	ck_assert(binlog_rows_open(&it, myfx_events[i].type, myfx_events[i].body,
				   myfx_events[i].len, &err));
	ck_assert_int_eq(binlog_rows_next(&it, &tm, &buf, &row, &err), BINLOG_NEXT_ROW);
	static const char *const want[] = {"1", "\\x550e8400e29b41d4a716446655440000",
					   "\\x00000000000000000000000000000001", "\\xc0000201"};
	for (int c = 0; c < 4; c++) {
		const struct change_value *v = &row.after.tuple.vals[c];
		ck_assert_int_eq((int)v->len, (int)strlen(want[c]));
		ck_assert(memcmp(v->data, want[c], v->len) == 0);
	}
	/* the v1 UUID: the binlog carries text order, not the swapped record */
	ck_assert_int_eq(binlog_rows_next(&it, &tm, &buf, &row, &err), BINLOG_NEXT_ROW);
	ck_assert(memcmp(row.after.tuple.vals[1].data, "\\x6ccd780cbaba102695645b8c656024db", 34) ==
		  0);
	/* '::' is 16 zero bytes, all stripped in the binlog, re-padded */
	ck_assert(memcmp(row.after.tuple.vals[2].data, "\\x00000000000000000000000000000000", 34) ==
		  0);
	binlog_tablemap_free(&tm);
	binlog_rows_free(&it);
	change_buf_free(&buf);
}
END_TEST

/* The same events as v2 (MySQL 5.6+): extra data after the flags. */
START_TEST(test_fixture_as_v2)
{
	struct binlog_tablemap tm = {0};
	struct binlog_rows it1 = {0}, it2 = {0};
	struct change_buf b1 = {0}, b2 = {0};
	struct binlog_row r1, r2;
	const char *err = NULL;
	int nrows = 0;
	for (size_t i = 0; i < NEVENTS; i++) {
		const struct myfx_event *e = &myfx_events[i];
		if (e->type == BINLOG_TABLE_MAP_EVENT) {
			binlog_tablemap_free(&tm);
			ck_assert(
			    binlog_tablemap_parse(e->body, e->len, BINLOG_MARIADB, &tm, &err));
			mark_ext(&tm);
			continue;
		}
		/* extra data: length 2 + 5 (counting itself), an NDB-style TLV */
		size_t extra = i % 2 ? 7 : 2;
		uint8_t *v2 = xmalloc(e->len + extra);
		memcpy(v2, e->body, 8);
		v2[8] = (uint8_t)extra;
		v2[9] = 0;
		memset(v2 + 10, 0xEE, extra - 2);
		memcpy(v2 + 8 + extra, e->body + 8, e->len - 8);
		ck_assert(binlog_rows_open(&it1, e->type, e->body, e->len, &err));
		ck_assert(binlog_rows_open(&it2, (uint8_t)(e->type + 7), v2, e->len + extra, &err));
		ck_assert_int_eq(it2.version, 2);
		ck_assert_int_eq(it1.kind, it2.kind);
		ck_assert_int_eq(it1.full_image, it2.full_image);
		for (;;) {
			enum binlog_next n1 = binlog_rows_next(&it1, &tm, &b1, &r1, &err);
			enum binlog_next n2 = binlog_rows_next(&it2, &tm, &b2, &r2, &err);
			ck_assert_int_eq(n1, n2);
			if (n1 != BINLOG_NEXT_ROW)
				break;
			nrows++;
			ck_assert_uint_eq(b1.len, b2.len);
			ck_assert(memcmp(b1.data, b2.data, b1.len) == 0);
		}
		free(v2);
	}
	ck_assert_int_eq(nrows, 98);
	binlog_tablemap_free(&tm);
	binlog_rows_free(&it1);
	binlog_rows_free(&it2);
	change_buf_free(&b1);
	change_buf_free(&b2);
}
END_TEST

/* --- hand-built values ------------------------------------------------------------ */

static struct binlog_column mkcol(uint8_t type)
{
	struct binlog_column c;
	memset(&c, 0, sizeof(c));
	c.type = c.real_type = type;
	c.sign_known = true;
	c.nullable = true;
	return c;
}

/* Decodes p[0..n) as c; all n bytes must be used.  Returns the text (static). */
static const char *render(const struct binlog_column *c, const uint8_t *p, size_t n,
			  enum binlog_value_status *st)
{
	static struct change_buf b;
	static char out[4096];
	enum binlog_value_status dummy;
	size_t used = 0;
	const char *err = NULL;
	b.len = 0;
	ck_assert_msg(binlog_value_decode(c, p, n, &used, &b, st ? st : &dummy, &err), "%s", err);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_lt(b.len, sizeof(out));
	memcpy(out, b.data ? (const char *)b.data : "", b.len);
	out[b.len] = '\0';
	if (st == NULL)
		ck_assert_int_eq(dummy, BINLOG_VAL_OK);
	return out;
}

static bool decode_fails(const struct binlog_column *c, const uint8_t *p, size_t n)
{
	struct change_buf b = {0};
	enum binlog_value_status st;
	size_t used;
	const char *err = NULL;
	bool ok = binlog_value_decode(c, p, n, &used, &b, &st, &err);
	change_buf_free(&b);
	if (!ok)
		ck_assert(err != NULL && err[0] != '\0');
	return !ok;
}

/* MySQL's decimal2bin(), independently: digits in groups of 9, sign flips. */
static size_t dec_encode(const char *s, int prec, int scale, uint8_t *out)
{
	static const int d2b[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
	bool neg = *s == '-';
	s += neg;
	while (s[0] == '0' && s[1] != '\0' && s[1] != '.')
		s++;
	if (s[0] == '0' && prec == scale)
		s++; /* no integer digits at all */
	const char *dot = strchr(s, '.');
	size_t il = dot ? (size_t)(dot - s) : strlen(s), fl = dot ? strlen(dot + 1) : 0;
	int intg = prec - scale;
	char digits[80];
	int n = 0;
	for (int i = 0; i < intg - (int)il; i++)
		digits[n++] = '0';
	memcpy(digits + n, s, il);
	n += (int)il;
	memcpy(digits + n, dot ? dot + 1 : "", fl);
	n += (int)fl;
	for (int i = (int)fl; i < scale; i++)
		digits[n++] = '0';
	ck_assert_int_eq(n, prec);
	int sizes[16], ng = 0;
	if (intg % 9)
		sizes[ng++] = intg % 9;
	for (int i = 0; i < intg / 9; i++)
		sizes[ng++] = 9;
	for (int i = 0; i < scale / 9; i++)
		sizes[ng++] = 9;
	if (scale % 9)
		sizes[ng++] = scale % 9;
	size_t at = 0;
	int pos = 0;
	for (int g = 0; g < ng; g++) {
		uint32_t v = 0;
		for (int k = 0; k < sizes[g]; k++)
			v = v * 10 + (uint32_t)(digits[pos++] - '0');
		int nb = sizes[g] == 9 ? 4 : d2b[sizes[g]];
		for (int k = nb - 1; k >= 0; k--)
			out[at++] = (uint8_t)((v >> (8 * k)) ^ (neg ? 0xFF : 0));
	}
	out[0] ^= 0x80;
	return at;
}

START_TEST(test_decimal)
{
	static const struct {
		int p, s;
		const char *in, *out;
	} cases[] = {
	    {1, 0, "0", "0"},
	    {1, 0, "-9", "-9"},
	    {9, 0, "123456789", "123456789"}, /* one full group, no partial */
	    {9, 0, "-123456789", "-123456789"},
	    {10, 0, "-1000000000", "-1000000000"},
	    {18, 9, "-0.000000001", "-0.000000001"},
	    {18, 9, "000000001.100000000", "1.100000000"}, /* leading zeros dropped */
	    {30, 30, "0.123456789012345678901234567890", "0.123456789012345678901234567890"},
	    {30, 30, "-0.000000000000000000000000000001", "-0.000000000000000000000000000001"},
	    {65, 0, "99999999999999999999999999999999999999999999999999999999999999999",
	     "99999999999999999999999999999999999999999999999999999999999999999"},
	    {65, 30, "-0.5", "-0.500000000000000000000000000000"},
	    {65, 30, "0", "0.000000000000000000000000000000"},
	    {2, 1, "-0.0", "0.0"}, /* no negative zero */
	    {11, 2, "-123456789.12", "-123456789.12"},
	    {12, 3, "1.001", "1.001"},
	    {20, 10, "-1234567890.0123456789", "-1234567890.0123456789"},
	    {19, 19, "0.9999999999999999999", "0.9999999999999999999"},
	    {4, 4, "-0.0001", "-0.0001"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct binlog_column c = mkcol(BINLOG_T_NEWDECIMAL);
		c.precision = (uint8_t)cases[i].p;
		c.scale = (uint8_t)cases[i].s;
		uint8_t buf[40];
		size_t n = dec_encode(cases[i].in, cases[i].p, cases[i].s, buf);
		ck_assert_str_eq(render(&c, buf, n, NULL), cases[i].out);
		ck_assert(decode_fails(&c, buf, n - 1)); /* truncated */
	}
	/* a digit group past 999999999 is not a DECIMAL */
	struct binlog_column c = mkcol(BINLOG_T_NEWDECIMAL);
	c.precision = 9;
	uint8_t bad[4] = {0x80 | 0x3B, 0x9A, 0xCA, 0x00}; /* 1000000000 */
	ck_assert(decode_fails(&c, bad, 4));
	uint8_t bad2[1] = {0x80 | 100}; /* 2 digits holding 100 */
	c.precision = 2;
	ck_assert(decode_fails(&c, bad2, 1));
	c.precision = 66; /* metadata out of range */
	ck_assert(decode_fails(&c, bad, 4));
	ck_assert_ptr_nonnull(binlog_column_check(&c));
	c.precision = 5;
	c.scale = 6;
	ck_assert_ptr_nonnull(binlog_column_check(&c));
}
END_TEST

static const char *render_double(double d)
{
	struct binlog_column c = mkcol(BINLOG_T_DOUBLE);
	c.pack_len = 8;
	uint64_t u;
	uint8_t le[8];
	memcpy(&u, &d, 8);
	for (int k = 0; k < 8; k++)
		le[k] = (uint8_t)(u >> (8 * k));
	return render(&c, le, 8, NULL);
}

static const char *render_float(float f)
{
	struct binlog_column c = mkcol(BINLOG_T_FLOAT);
	c.pack_len = 4;
	uint32_t u;
	uint8_t le[4];
	memcpy(&u, &f, 4);
	for (int k = 0; k < 4; k++)
		le[k] = (uint8_t)(u >> (8 * k));
	return render(&c, le, 4, NULL);
}

/* Expected texts printed by PostgreSQL 15 (float8out/float4out, extra_float_digits 1). */
START_TEST(test_float)
{
	static const struct {
		double v;
		const char *pg;
	} d[] = {
	    {1e22, "1e+22"},
	    {123456789012345.6, "123456789012345.6"},
	    {1234567890123456.7, "1.2345678901234568e+15"},
	    {0.001, "0.001"},
	    {0.0001234, "0.0001234"},
	    {0.00001234, "1.234e-05"},
	    {8.98846567431158e307, "8.98846567431158e+307"},
	    {9007199254740993.0, "9.007199254740992e+15"},
	    {4.9406564584124654e-324, "5e-324"},
	    {1.7976931348623157e308, "1.7976931348623157e+308"},
	    {0.30000000000000004, "0.30000000000000004"},
	    {1e23, "9.999999999999999e+22"}, /* the midpoint '1e+23' is never printed */
	    {2.2250738585072011e-308, "2.225073858507201e-308"},
	    {-2.5, "-2.5"},
	    {100, "100"},
	    {-0.0, "0"}, /* as MariaDB prints it, so snapshot and stream agree */
	};
	for (size_t i = 0; i < ARRAY_LEN(d); i++)
		ck_assert_str_eq(render_double(d[i].v), d[i].pg);
	ck_assert_str_eq(render_double(NAN), "NaN");
	ck_assert_str_eq(render_double(INFINITY), "Infinity");
	ck_assert_str_eq(render_double(-INFINITY), "-Infinity");

	static const struct {
		float v;
		const char *pg;
	} f[] = {
	    {1e6f, "1e+06"},
	    {999999.0f, "999999"},
	    {0.3f, "0.3"},
	    {1e-45f, "1e-45"},
	    {-0.0001f, "-0.0001"},
	    {12345.678f, "12345.678"},
	    {2.5e-5f, "2.5e-05"},
	    {1e-7f, "1e-07"},
	    {16777217.0f, "1.6777216e+07"},
	    {3.4028235e38f, "3.4028235e+38"},
	    {7.038531e-26f, "7.038531e-26"},
	    {2e-44f, "2e-44"},
	    {-0.0f, "0"},
	};
	for (size_t i = 0; i < ARRAY_LEN(f); i++)
		ck_assert_str_eq(render_float(f[i].v), f[i].pg);

	struct binlog_column c = mkcol(BINLOG_T_FLOAT);
	c.pack_len = 3;
	uint8_t z[8] = {0};
	ck_assert(decode_fails(&c, z, 8));
	ck_assert(
	    decode_fails(&(struct binlog_column){.type = BINLOG_T_DOUBLE, .pack_len = 8}, z, 7));
}
END_TEST

static void be_store(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* MySQL's my_time_packed_to_binary(), independently. */
static size_t time2_encode(bool neg, unsigned h, unsigned m, unsigned s, unsigned us, int fsp,
			   uint8_t *out)
{
	int64_t nr = (int64_t)((uint64_t)(h << 12 | m << 6 | s) << 24) + us;
	if (neg)
		nr = -nr;
	int64_t intpart = nr >> 24 /* arithmetic */, frac = nr % (1 << 24);
	switch ((fsp + 1) / 2) {
	case 0:
		be_store(out, (uint64_t)(0x800000 + intpart), 3);
		return 3;
	case 1:
		be_store(out, (uint64_t)(0x800000 + intpart), 3);
		out[3] = (uint8_t)(int8_t)(frac / 10000);
		return 4;
	case 2:
		be_store(out, (uint64_t)(0x800000 + intpart), 3);
		be_store(out + 3, (uint64_t)(uint16_t)(int16_t)(frac / 100), 2);
		return 5;
	default:
		be_store(out, (uint64_t)(nr + INT64_C(0x800000000000)), 6);
		return 6;
	}
}

START_TEST(test_temporal)
{
	static const struct {
		bool neg;
		unsigned h, m, s, us;
		int fsp;
		const char *out;
	} t[] = {
	    {false, 0, 0, 0, 0, 0, "00:00:00"},
	    {true, 838, 59, 59, 0, 0, "-838:59:59"},
	    {true, 0, 0, 0, 10000, 2, "-00:00:00.01"},
	    {true, 0, 0, 0, 990000, 2, "-00:00:00.99"},
	    {true, 0, 0, 1, 10000, 2, "-00:00:01.01"},
	    {true, 12, 0, 0, 100, 4, "-12:00:00.0001"},
	    {true, 0, 0, 1, 999900, 4, "-00:00:01.9999"},
	    {false, 1, 2, 3, 400000, 4, "01:02:03.4"},
	    {true, 838, 59, 59, 999990, 5, "-838:59:59.99999"},
	    {true, 0, 0, 0, 10, 5, "-00:00:00.00001"},
	    {false, 838, 59, 59, 999999, 6, "838:59:59.999999"},
	};
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		struct binlog_column c = mkcol(BINLOG_T_TIME2);
		c.fsp = (uint8_t)t[i].fsp;
		uint8_t b[8];
		size_t n = time2_encode(t[i].neg, t[i].h, t[i].m, t[i].s, t[i].us, t[i].fsp, b);
		ck_assert_str_eq(render(&c, b, n, NULL), t[i].out);
	}

	/* DATETIME2 with every fraction width: 5 bytes + fraction */
	static const struct {
		unsigned y, mo, d, h, mi, s, us;
		int fsp;
		const char *out;
		enum binlog_value_status st;
	} dt[] = {
	    {2001, 2, 3, 4, 5, 6, 70000, 2, "2001-02-03 04:05:06.07", BINLOG_VAL_OK},
	    {2001, 2, 3, 4, 5, 6, 1200, 4, "2001-02-03 04:05:06.0012", BINLOG_VAL_OK},
	    {2001, 2, 3, 4, 5, 6, 123450, 5, "2001-02-03 04:05:06.12345", BINLOG_VAL_OK},
	    {0, 0, 0, 0, 0, 0, 0, 0, "0000-00-00 00:00:00", BINLOG_VAL_ZERO_DATE},
	    {2021, 2, 29, 0, 0, 0, 0, 0, "2021-02-29 00:00:00", BINLOG_VAL_BAD_DATE},
	    {2020, 12, 0, 0, 0, 0, 0, 0, "2020-12-00 00:00:00", BINLOG_VAL_BAD_DATE},
	    {2000, 1, 1, 24, 0, 0, 0, 0, "2000-01-01 24:00:00", BINLOG_VAL_BAD_DATE},
	    {1900, 2, 29, 0, 0, 0, 0, 0, "1900-02-29 00:00:00", BINLOG_VAL_BAD_DATE},
	    {2000, 2, 29, 0, 0, 0, 0, 0, "2000-02-29 00:00:00", BINLOG_VAL_OK},
	};
	for (size_t i = 0; i < ARRAY_LEN(dt); i++) {
		struct binlog_column c = mkcol(BINLOG_T_DATETIME2);
		c.fsp = (uint8_t)dt[i].fsp;
		uint64_t ymd = ((uint64_t)dt[i].y * 13 + dt[i].mo) << 5 | dt[i].d;
		uint64_t hms = (uint64_t)dt[i].h << 12 | dt[i].mi << 6 | dt[i].s;
		uint8_t b[8];
		be_store(b, (ymd << 17 | hms) + UINT64_C(0x8000000000), 5);
		int fb = (dt[i].fsp + 1) / 2;
		be_store(b + 5,
			 fb == 1   ? dt[i].us / 10000
			 : fb == 2 ? dt[i].us / 100
				   : dt[i].us,
			 fb);
		enum binlog_value_status st;
		ck_assert_str_eq(render(&c, b, 5 + (size_t)fb, &st), dt[i].out);
		ck_assert_int_eq(st, dt[i].st);
	}

	/* TIMESTAMP2: seconds BE + fraction */
	struct binlog_column c = mkcol(BINLOG_T_TIMESTAMP2);
	c.fsp = 2;
	uint8_t b[8];
	be_store(b, 951782400, 4); /* 2000-02-29 00:00:00 UTC */
	b[4] = 5;
	ck_assert_str_eq(render(&c, b, 5, NULL), "2000-02-29 00:00:00.05+00");
	c.fsp = 4;
	be_store(b, UINT32_MAX, 4);
	be_store(b + 4, 9999, 2);
	ck_assert_str_eq(render(&c, b, 6, NULL), "2106-02-07 06:28:15.9999+00");
	c.fsp = 6;
	be_store(b + 4, 1000000, 3); /* not a fraction */
	ck_assert(decode_fails(&c, b, 7));
	c.fsp = 7;
	ck_assert(decode_fails(&c, b, 8));

	/* DATE: 3 bytes LE, day | month << 5 | year << 9 */
	c = mkcol(BINLOG_T_DATE);
	uint32_t v = 31 | 12 << 5 | 1999 << 9;
	uint8_t d3[3] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16)};
	ck_assert_str_eq(render(&c, d3, 3, NULL), "1999-12-31");
	enum binlog_value_status st;
	v = 1 | 13 << 5 | 2000 << 9; /* month 13 */
	uint8_t d3b[3] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16)};
	ck_assert_str_eq(render(&c, d3b, 3, &st), "2000-13-01");
	ck_assert_int_eq(st, BINLOG_VAL_BAD_DATE);

	/* old TIME: 3 bytes LE signed HHMMSS; minute 60 is not a time */
	c = mkcol(BINLOG_T_TIME);
	int32_t tv = -(1 * 10000 + 60 * 100 + 0);
	uint8_t t3[3] = {(uint8_t)tv, (uint8_t)(tv >> 8), (uint8_t)(tv >> 16)};
	ck_assert_str_eq(render(&c, t3, 3, &st), "-01:60:00");
	ck_assert_int_eq(st, BINLOG_VAL_BAD_DATE);
}
END_TEST

static const char *render_text(uint32_t collation, uint8_t type, const char *bytes, size_t n,
			       enum binlog_value_status *st)
{
	struct binlog_column c = mkcol(type);
	c.collation = collation;
	c.len_bytes = 2;
	c.max_len = 300;
	uint8_t buf[600];
	buf[0] = (uint8_t)n;
	buf[1] = (uint8_t)(n >> 8);
	memcpy(buf + 2, bytes, n);
	return render(&c, buf, n + 2, st);
}

START_TEST(test_text)
{
	enum binlog_value_status st;
	/* invalid UTF-8 is reported, never altered: the bytes come as bytea hex */
	static const char *const bad[] = {
	    "\xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	    "\xe2\x82", "\xff",	    "ok\x80"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		render_text(45, BINLOG_T_BLOB, bad[i], strlen(bad[i]), &st);
		ck_assert_int_eq(st, BINLOG_VAL_BAD_TEXT);
	}
	ck_assert_str_eq(render_text(33, BINLOG_T_VARCHAR, "\xc3\x28", 2, &st), "\\xc328");
	ck_assert_int_eq(st, BINLOG_VAL_BAD_TEXT);
	ck_assert_str_eq(render_text(45, BINLOG_T_VARCHAR, "\xf0\x9f\x98\x80", 4, &st), "😀");
	ck_assert_int_eq(st, BINLOG_VAL_OK);
	ck_assert_str_eq(render_text(11, BINLOG_T_VARCHAR, "plain", 5, &st), "plain");
	render_text(11, BINLOG_T_VARCHAR, "caf\xe9", 4, &st); /* ascii */
	ck_assert_int_eq(st, BINLOG_VAL_BAD_TEXT);
	ck_assert_str_eq(render_text(45, BINLOG_T_VARCHAR, "a\0", 2, &st), "\\x6100");
	ck_assert_int_eq(st, BINLOG_VAL_NUL_IN_TEXT);

	/* MySQL's latin1 0x80-0xFF, as CONVERT(... USING utf8mb4) gives it */
	char all[128];
	for (int i = 0; i < 128; i++)
		all[i] = (char)(0x80 + i);
	const char *u = render_text(8, BINLOG_T_BLOB, all, 128, &st);
	ck_assert_int_eq(st, BINLOG_VAL_OK);
	ck_assert_str_eq(u, "€\xc2\x81‚ƒ„…†‡ˆ‰Š‹Œ\xc2\x8d"
			    "Ž\xc2\x8f\xc2\x90‘’“”•–—˜™š›œ\xc2\x9d"
			    "žŸ"
			    "\xc2\xa0¡¢£¤¥¦§¨©ª«¬\xc2\xad"
			    "®¯°±²³´µ¶·¸¹º»¼½¾¿ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕ"
			    "Ö×ØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõö÷øùúûüýþÿ");

	/* other character sets, or none known: not rendered */
	render_text(35 /* ucs2 */, BINLOG_T_VARCHAR, "\0a", 2, &st);
	ck_assert_int_eq(st, BINLOG_VAL_UNSUPPORTED);
	render_text(0, BINLOG_T_VARCHAR, "a", 1, &st);
	ck_assert_int_eq(st, BINLOG_VAL_UNSUPPORTED);

	static const struct {
		uint32_t id;
		enum binlog_charset cs;
	} ids[] = {{8, BINLOG_CS_LATIN1},     {1071, BINLOG_CS_LATIN1}, {33, BINLOG_CS_UTF8MB3},
		   {2247, BINLOG_CS_UTF8MB3}, {255, BINLOG_CS_UTF8MB4}, {2503, BINLOG_CS_UTF8MB4},
		   {63, BINLOG_CS_BINARY},    {65, BINLOG_CS_ASCII},	{28, BINLOG_CS_OTHER},
		   {2216, BINLOG_CS_OTHER},   {0, BINLOG_CS_NONE}};
	for (size_t i = 0; i < ARRAY_LEN(ids); i++)
		ck_assert_int_eq(binlog_collation_charset(ids[i].id), ids[i].cs);

	/* BINARY(n): the binlog strips trailing 0x00, decoding puts them back */
	struct binlog_column c = mkcol(BINLOG_T_STRING);
	c.collation = 63;
	c.max_len = 6;
	uint8_t b[4] = {3, 'a', 0, 'b'};
	ck_assert_str_eq(render(&c, b, 4, NULL), "\\x610062000000");
	b[0] = 7; /* longer than the column */
	ck_assert(decode_fails(&c, b, 4));
	c.ext = BINLOG_EXT_INET4;
	c.max_len = 4;
	uint8_t i4[3] = {2, 10, 1};
	ck_assert_str_eq(render(&c, i4, 3, NULL), "10.1.0.0");
}
END_TEST

START_TEST(test_enum_set_bit)
{
	struct binlog_tablemap tm;
	const char *err = NULL;
	parse_map_of("enums", 0, BINLOG_MARIADB, &tm);
	enum binlog_value_status st;
	uint8_t v[8] = {4};
	ck_assert_str_eq(render(&tm.cols[1], v, 1, &st), "4"); /* ENUM('a','b','c') index 4 */
	ck_assert_int_eq(st, BINLOG_VAL_BAD_ENUM);
	v[0] = 0x08; /* SET('x','y','z') bit 3 */
	ck_assert_str_eq(render(&tm.cols[3], v, 1, &st), "8");
	ck_assert_int_eq(st, BINLOG_VAL_BAD_ENUM);
	v[0] = 0x05;
	ck_assert_str_eq(render(&tm.cols[3], v, 1, NULL), "x,z");
	memset(v, 0, 8);
	v[7] = 0x80; /* SET of 64: the last member */
	ck_assert_str_eq(render(&tm.cols[4], v, 8, NULL), "m64");
	/* without the member lists (binlog_row_metadata=MINIMAL): not rendered */
	tm.cols[1].has_members = false;
	ck_assert_ptr_nonnull(binlog_value_unsupported(&tm.cols[1]));
	render(&tm.cols[1], v, 1, &st);
	ck_assert_int_eq(st, BINLOG_VAL_UNSUPPORTED);
	binlog_tablemap_free(&tm);

	struct binlog_column c = mkcol(BINLOG_T_BIT);
	c.bits = 3;
	uint8_t b[3] = {0x05};
	ck_assert_str_eq(render(&c, b, 1, NULL), "101");
	c.bits = 17;
	b[0] = 0x01, b[1] = 0x80, b[2] = 0x01;
	ck_assert_str_eq(render(&c, b, 3, NULL), "11000000000000001");
	c.bits = 0;
	ck_assert(decode_fails(&c, b, 3));
	(void)err;
}
END_TEST

/*
 * A TABLE_MAP built by hand: id 7, "s"."t", the given column types and
 * metadata, all nullable, then the optional metadata bytes.
 */
static size_t build_map(uint8_t *out, const uint8_t *types, size_t ntypes, const uint8_t *meta,
			size_t nmeta, const uint8_t *opt, size_t nopt)
{
	size_t n = 0;
	static const uint8_t head[] = {7, 0, 0, 0, 0, 0, 1, 0, 1, 's', 0, 1, 't', 0};
	memcpy(out, head, sizeof(head));
	n = sizeof(head);
	out[n++] = (uint8_t)ntypes;
	memcpy(out + n, types, ntypes);
	n += ntypes;
	out[n++] = (uint8_t)nmeta;
	memcpy(out + n, meta, nmeta);
	n += nmeta;
	for (size_t i = 0; i < (ntypes + 7) / 8; i++)
		out[n++] = 0xFF;
	if (nopt > 0)
		memcpy(out + n, opt, nopt);
	return n + nopt;
}

/*
 * TABLE_MAPs MariaDB 10.11 wrote for (id INT PRIMARY KEY, c VARCHAR(10)
 * COMPRESSED) and (id INT PRIMARY KEY, c BLOB COMPRESSED): type 141 with a
 * 2-byte maximum length, type 140 with a 1-byte length size.  They parse,
 * and their values are unsupported.
 */
START_TEST(test_compressed_maps)
{
	static const uint8_t varchar_map[] = {
	    0xfc, 0x36, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00,
	    0x03, 0x74, 0x6d, 0x79, 0x00, 0x02, 0x03, 0x8d, 0x02, 0x29, 0x00, 0x02, 0x01, 0x01,
	    0x00, 0x02, 0x01, 0x2d, 0x04, 0x05, 0x02, 0x69, 0x64, 0x01, 0x63, 0x08, 0x01, 0x00};
	static const uint8_t blob_map[] = {
	    0xfd, 0x36, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00,
	    0x03, 0x74, 0x6d, 0x79, 0x00, 0x02, 0x03, 0x8c, 0x01, 0x02, 0x02, 0x01, 0x01, 0x00,
	    0x02, 0x01, 0x3f, 0x04, 0x05, 0x02, 0x69, 0x64, 0x01, 0x63, 0x08, 0x01, 0x00};
	struct binlog_tablemap tm;
	const char *err = NULL;
	ck_assert_msg(
	    binlog_tablemap_parse(varchar_map, sizeof(varchar_map), BINLOG_MARIADB, &tm, &err),
	    "%s", err);
	ck_assert_uint_eq(tm.cols[1].type, BINLOG_T_VARCHAR_COMPRESSED);
	ck_assert_uint_eq(tm.cols[1].max_len, 41);
	ck_assert_str_eq(tm.cols[1].name, "c");
	ck_assert_ptr_nonnull(binlog_value_unsupported(&tm.cols[1]));
	binlog_tablemap_free(&tm);
	ck_assert_msg(binlog_tablemap_parse(blob_map, sizeof(blob_map), BINLOG_MARIADB, &tm, &err),
		      "%s", err);
	ck_assert_uint_eq(tm.cols[1].type, BINLOG_T_BLOB_COMPRESSED);
	ck_assert_uint_eq(tm.cols[1].len_bytes, 2);
	ck_assert_ptr_nonnull(binlog_value_unsupported(&tm.cols[1]));
	binlog_tablemap_free(&tm);
}
END_TEST

/* Columns whose values are skipped, not rendered, next to a MySQL binary JSON one that is. */
START_TEST(test_unsupported_columns)
{
	uint8_t map[256];
	static const uint8_t types[] = {BINLOG_T_LONG, BINLOG_T_JSON, BINLOG_T_VARCHAR_COMPRESSED,
					BINLOG_T_TINY};
	static const uint8_t meta[] = {4, 10, 0};
	static const uint8_t opt[] = {1, 1, 0x40}; /* SIGNEDNESS: LONG signed, TINY unsigned */
	size_t n = build_map(map, types, 4, meta, 3, opt, 3);
	struct binlog_tablemap tm;
	const char *err = NULL;
	ck_assert_msg(binlog_tablemap_parse(map, n, BINLOG_MYSQL, &tm, &err), "%s", err);
	ck_assert_ptr_null(tm.unsupported);
	ck_assert(!tm.has_names && !tm.full_metadata && tm.cols[0].name == NULL);
	ck_assert_ptr_null(binlog_value_unsupported(&tm.cols[1])); /* myjson renders it */
	ck_assert_ptr_nonnull(binlog_value_unsupported(&tm.cols[2]));
	ck_assert(tm.cols[3].is_unsigned && !tm.cols[0].is_unsigned);

	/* a WRITE_ROWS: id 7, STMT_END, 4 columns all present, one row */
	uint8_t ev[64] = {7,	0,   0,	  0, 0,	   0, 1,   0, 4, 0x0F, 0x00, /* no NULLs */
			  0x2A, 0,   0,	  0,				     /* 42 */
			  3,	0,   0,	  0, 0x0C, 1, 'x', /* JSON: 4-byte length, string "x" */
			  2,	'z', 'z',		   /* VARCHAR(10) compressed */
			  0xFF};			   /* 255 */
	size_t evlen = 26;
	struct binlog_rows it = {0};
	struct change_buf buf = {0};
	struct binlog_row row;
	ck_assert(binlog_rows_open(&it, BINLOG_WRITE_ROWS_V1, ev, evlen, &err));
	ck_assert_int_eq(binlog_rows_next(&it, &tm, &buf, &row, &err), BINLOG_NEXT_ROW);
	ck_assert_uint_eq(row.after.nbad, 1);
	ck_assert_uint_eq(row.after.first_bad, 2);
	ck_assert_int_eq(row.after.status[1], BINLOG_VAL_OK);
	ck_assert_int_eq(row.after.tuple.vals[1].kind, CHV_TEXT);
	ck_assert_uint_eq(row.after.tuple.vals[1].len, 3);
	ck_assert(memcmp(row.after.tuple.vals[1].data, "\"x\"", 3) == 0);
	ck_assert_int_eq(row.after.status[2], BINLOG_VAL_UNSUPPORTED);
	ck_assert_int_eq(row.after.tuple.vals[2].kind, CHV_NULL);
	ck_assert(memcmp(row.after.tuple.vals[0].data, "42", 2) == 0);
	ck_assert(memcmp(row.after.tuple.vals[3].data, "255", 3) == 0);
	ck_assert_int_eq(binlog_rows_next(&it, &tm, &buf, &row, &err), BINLOG_NEXT_END);

	/* no SIGNEDNESS (binlog_row_metadata=NO_LOG): integers refused until the caller knows */
	binlog_tablemap_free(&tm);
	n = build_map(map, types, 4, meta, 3, NULL, 0);
	ck_assert(binlog_tablemap_parse(map, n, BINLOG_MYSQL, &tm, &err));
	ck_assert(!tm.has_signedness && !tm.cols[0].sign_known);
	ck_assert(binlog_rows_open(&it, BINLOG_WRITE_ROWS_V1, ev, evlen, &err));
	ck_assert_int_eq(binlog_rows_next(&it, &tm, &buf, &row, &err), BINLOG_NEXT_ROW);
	ck_assert_int_eq(row.after.status[0], BINLOG_VAL_UNSUPPORTED);
	ck_assert_uint_eq(row.after.nbad, 3); /* LONG, compressed VARCHAR, TINY; not the JSON */
	tm.cols[0].sign_known = tm.cols[3].sign_known = true; /* from information_schema */
	tm.cols[3].is_unsigned = false;
	ck_assert(binlog_rows_open(&it, BINLOG_WRITE_ROWS_V1, ev, evlen, &err));
	ck_assert_int_eq(binlog_rows_next(&it, &tm, &buf, &row, &err), BINLOG_NEXT_ROW);
	ck_assert(memcmp(row.after.tuple.vals[3].data, "-1", 2) == 0);

	/* an unknown column type: the map parses, its rows cannot be decoded */
	binlog_tablemap_free(&tm);
	static const uint8_t types2[] = {BINLOG_T_LONG, 242, BINLOG_T_TINY};
	n = build_map(map, types2, 3, (const uint8_t[]){0}, 1, NULL, 0);
	ck_assert(binlog_tablemap_parse(map, n, BINLOG_MARIADB, &tm, &err));
	ck_assert_ptr_nonnull(tm.unsupported);
	ck_assert_ptr_nonnull(tm.cols[1].unsupported);
	static const uint8_t ev2[] = {7, 0, 0, 0, 0, 0, 1, 0, 3, 0x07, 0x00, 1, 0, 0, 0, 0, 1};
	ck_assert(binlog_rows_open(&it, BINLOG_WRITE_ROWS_V1, ev2, sizeof(ev2), &err));
	ck_assert_int_eq(binlog_rows_next(&it, &tm, &buf, &row, &err), BINLOG_NEXT_ERROR);
	ck_assert_str_eq(err, tm.unsupported);
	ck_assert_int_eq(binlog_rows_next(&it, &tm, &buf, &row, &err), BINLOG_NEXT_ERROR);

	binlog_tablemap_free(&tm);
	binlog_rows_free(&it);
	change_buf_free(&buf);
}
END_TEST

START_TEST(test_errors)
{
	struct binlog_rows it = {0};
	struct binlog_tablemap tm;
	struct change_buf buf = {0};
	struct binlog_row row;
	const char *err = NULL;
	const struct myfx_event *e = &myfx_events[1]; /* the ints INSERT */

	/* refused event types */
	ck_assert(!binlog_rows_open(&it, BINLOG_PARTIAL_UPDATE_ROWS, e->body, e->len, &err));
	ck_assert_ptr_nonnull(strstr(err, "partial"));
	for (uint8_t t = BINLOG_ROWS_COMPRESSED_FIRST; t <= BINLOG_ROWS_COMPRESSED_LAST; t++) {
		ck_assert(!binlog_rows_open(&it, t, e->body, e->len, &err));
		ck_assert_ptr_nonnull(strstr(err, "compressed"));
	}
	ck_assert(!binlog_rows_open(&it, BINLOG_TABLE_MAP_EVENT, e->body, e->len, &err));
	ck_assert(!binlog_is_rows_event(26) && !binlog_is_rows_event(29) &&
		  !binlog_is_rows_event(33));
	ck_assert_int_eq(binlog_rows_next(&it, NULL, &buf, &row, &err), BINLOG_NEXT_ERROR);

	/* a map of another table, or with another column count */
	parse_map_of("decs", 0, BINLOG_MARIADB, &tm);
	ck_assert(binlog_rows_open(&it, e->type, e->body, e->len, &err));
	ck_assert_int_eq(binlog_rows_next(&it, &tm, &buf, &row, &err), BINLOG_NEXT_ERROR);
	ck_assert_ptr_nonnull(strstr(err, "does not match"));
	binlog_tablemap_free(&tm);
	parse_map_of("ints", 0, BINLOG_MARIADB, &tm);
	tm.ncols--;
	ck_assert(binlog_rows_open(&it, e->type, e->body, e->len, &err));
	ck_assert_int_eq(binlog_rows_next(&it, &tm, &buf, &row, &err), BINLOG_NEXT_ERROR);
	tm.ncols++;

	/* trailing garbage after the last row */
	uint8_t *longer = xmalloc(e->len + 1);
	memcpy(longer, e->body, e->len);
	longer[e->len] = 0;
	ck_assert(binlog_rows_open(&it, e->type, longer, e->len + 1, &err));
	enum binlog_next n;
	int rows = 0;
	while ((n = binlog_rows_next(&it, &tm, &buf, &row, &err)) == BINLOG_NEXT_ROW)
		rows++;
	ck_assert_int_eq(n, BINLOG_NEXT_ERROR);
	ck_assert_int_eq(rows, 5);
	free(longer);
	binlog_tablemap_free(&tm);

	/* malformed maps */
	const struct myfx_event *m = &myfx_events[0];
	uint8_t *bad = xmalloc(m->len + 8);
	memcpy(bad, m->body, m->len);
	bad[m->len] = 1; /* a second SIGNEDNESS */
	bad[m->len + 1] = 1;
	bad[m->len + 2] = 0;
	ck_assert(!binlog_tablemap_parse(bad, m->len + 3, BINLOG_MARIADB, &tm, &err));
	ck_assert_ptr_nonnull(strstr(err, "repeated"));
	binlog_tablemap_free(&tm);
	memcpy(bad, m->body, m->len);
	bad[8] = 5; /* schema length past its NUL */
	ck_assert(!binlog_tablemap_parse(bad, m->len, BINLOG_MARIADB, &tm, &err));
	binlog_tablemap_free(&tm);
	memcpy(bad, m->body, m->len);
	bad[m->len] = 99; /* an unknown TLV: skipped */
	bad[m->len + 1] = 2;
	bad[m->len + 2] = 0xAB;
	bad[m->len + 3] = 0xCD;
	ck_assert(binlog_tablemap_parse(bad, m->len + 4, BINLOG_MARIADB, &tm, &err));
	ck_assert_str_eq(tm.table, "ints");
	binlog_tablemap_free(&tm);
	free(bad);

	ck_assert_str_eq(binlog_type_name(BINLOG_T_TIME2), "TIME2");
	ck_assert_str_eq(binlog_type_name(200), "?");
	ck_assert_str_eq(binlog_value_status_name(BINLOG_VAL_ZERO_DATE), "zero_date");
	ck_assert_str_eq(binlog_value_status_name(BINLOG_VAL__MAX), "?");
	binlog_rows_free(&it);
	change_buf_free(&buf);
}
END_TEST

/* The text buffer holds one row: memory stays bounded by the largest row. */
START_TEST(test_bounded_memory)
{
	struct binlog_tablemap tm;
	struct binlog_rows it = {0};
	struct change_buf buf = {0};
	struct binlog_row row;
	const char *err = NULL;
	parse_map_of("bins", 0, BINLOG_MARIADB, &tm);
	size_t maxlen = 0;
	for (size_t i = 39; i <= 41; i++) {
		const struct myfx_event *e = &myfx_events[i];
		ck_assert(binlog_rows_open(&it, e->type, e->body, e->len, &err));
		while (binlog_rows_next(&it, &tm, &buf, &row, &err) == BINLOG_NEXT_ROW)
			if (buf.len > maxlen)
				maxlen = buf.len;
	}
	ck_assert_uint_gt(maxlen, 18000); /* the 9000-byte blob as hex */
	ck_assert_uint_le(buf.cap, 2 * maxlen + 256);
	binlog_tablemap_free(&tm);
	binlog_rows_free(&it);
	change_buf_free(&buf);
}
END_TEST

/* --- fuzz ---------------------------------------------------------------------------- */

/* The map each ROWS event goes with (the TABLE_MAP before it). */
static size_t map_index(size_t i)
{
	while (myfx_events[i].type != BINLOG_TABLE_MAP_EVENT)
		i--;
	return i;
}

static unsigned drain(const uint8_t *body, size_t len, uint8_t type,
		      const struct binlog_tablemap *tm)
{
	static struct binlog_rows it;
	static struct change_buf buf;
	struct binlog_row row;
	const char *err = NULL;
	unsigned sum = 0;
	if (body == NULL) { /* release the statics */
		binlog_rows_free(&it);
		change_buf_free(&buf);
		return 0;
	}
	if (!binlog_rows_open(&it, type, body, len, &err)) {
		ck_assert(err != NULL && err[0] != '\0');
		return 0;
	}
	enum binlog_next n;
	while ((n = binlog_rows_next(&it, tm, &buf, &row, &err)) == BINLOG_NEXT_ROW) {
		for (int k = 0; k < 2; k++) {
			const struct binlog_image *im = k ? &row.after : &row.before;
			for (uint16_t c = 0; c < im->tuple.ncols; c++) /* touch every byte */
				for (uint32_t j = 0; j < im->tuple.vals[c].len; j++)
					sum += (uint8_t)im->tuple.vals[c].data[j];
		}
	}
	if (n == BINLOG_NEXT_ERROR)
		ck_assert(err != NULL && err[0] != '\0');
	return sum;
}

START_TEST(test_fuzz_truncations)
{
	const char *err = NULL;
	unsigned sum = 0;
	size_t runs = 0;
	for (size_t i = 0; i < NEVENTS; i++) {
		const struct myfx_event *e = &myfx_events[i];
		if (e->type == BINLOG_TABLE_MAP_EVENT) {
			for (size_t n = 0; n < e->len; n++) {
				uint8_t *copy =
				    xmalloc(n ? n : 1); /* exact size: ASan sees over-reads */
				memcpy(copy, e->body, n);
				struct binlog_tablemap tm;
				if (!binlog_tablemap_parse(copy, n, BINLOG_MARIADB, &tm, &err))
					ck_assert(err != NULL && err[0] != '\0');
				binlog_tablemap_free(&tm);
				free(copy);
				runs++;
			}
			continue;
		}
		const struct myfx_event *me = &myfx_events[map_index(i)];
		struct binlog_tablemap tm;
		ck_assert(binlog_tablemap_parse(me->body, me->len, BINLOG_MARIADB, &tm, &err));
		mark_ext(&tm);
		size_t step = e->len > 4000 ? 7 : 1; /* the 9000-byte blob event: every 7th */
		for (size_t n = 0; n < e->len; n += step) {
			uint8_t *copy = xmalloc(n ? n : 1);
			memcpy(copy, e->body, n);
			sum += drain(copy, n, e->type, &tm);
			free(copy);
			runs++;
		}
		binlog_tablemap_free(&tm);
	}
	drain(NULL, 0, 0, NULL);
	ck_assert_uint_gt(runs, 10000);
	(void)sum;
}
END_TEST

/* xorshift64: deterministic, so a failure reproduces. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void flip(uint8_t *p, size_t n, uint64_t *seed)
{
	int flips = 1 + (int)(rnd(seed) % 4);
	for (int k = 0; k < flips; k++)
		p[rnd(seed) % n] ^= (uint8_t)(1u << (rnd(seed) % 8));
}

START_TEST(test_fuzz_bitflips)
{
	const char *err = NULL;
	uint64_t seed = UINT64_C(0x9E3779B97F4A7C15);
	unsigned sum = 0;
	int maps_ok = 0, maps_bad = 0;
	for (size_t i = 0; i < NEVENTS; i++) {
		const struct myfx_event *e = &myfx_events[i];
		const struct myfx_event *me = &myfx_events[map_index(i)];
		int rounds = e->len > 4000 ? 50 : 1000;
		for (int round = 0; round < rounds; round++) {
			/* a damaged map decoding intact rows, or the other way round */
			bool damage_map = e->type == BINLOG_TABLE_MAP_EVENT || round % 3 == 0;
			uint8_t *m = xmalloc(me->len);
			memcpy(m, me->body, me->len);
			if (damage_map)
				flip(m, me->len, &seed);
			struct binlog_tablemap tm;
			if (!binlog_tablemap_parse(m, me->len,
						   rnd(&seed) % 2 ? BINLOG_MARIADB : BINLOG_MYSQL,
						   &tm, &err)) {
				ck_assert(err != NULL && err[0] != '\0');
				maps_bad++;
				binlog_tablemap_free(&tm);
				free(m);
				continue;
			}
			maps_ok++;
			if (rnd(&seed) % 2)
				mark_ext(&tm);
			if (e->type != BINLOG_TABLE_MAP_EVENT) {
				uint8_t *r = xmalloc(e->len);
				memcpy(r, e->body, e->len);
				if (!damage_map || rnd(&seed) % 2)
					flip(r, e->len, &seed);
				uint8_t type = e->type;
				if (rnd(&seed) % 8 == 0)
					type = (uint8_t)(BINLOG_WRITE_ROWS_V1 + rnd(&seed) % 3);
				sum += drain(r, e->len, type, &tm);
				free(r);
			}
			binlog_tablemap_free(&tm);
			free(m);
		}
	}
	/* random garbage as maps and rows */
	for (int round = 0; round < 20000; round++) {
		size_t n = 1 + (size_t)(rnd(&seed) % 96);
		uint8_t *g = xmalloc(n);
		for (size_t j = 0; j < n; j++)
			g[j] = (uint8_t)rnd(&seed);
		if (n > 10 && rnd(&seed) % 2) { /* plausible header: short names, few columns */
			g[8] = 1, g[9] = 'a', g[10] = 0;
			if (n > 14)
				g[11] = 1, g[12] = 'b', g[13] = 0, g[14] = (uint8_t)(g[14] % 6);
		}
		struct binlog_tablemap tm;
		if (binlog_tablemap_parse(g, n, BINLOG_MARIADB, &tm, &err))
			sum += drain(g, n, (uint8_t)(BINLOG_WRITE_ROWS_V1 + rnd(&seed) % 3), &tm);
		binlog_tablemap_free(&tm);
		free(g);
	}
	drain(NULL, 0, 0, NULL);
	ck_assert_int_gt(maps_ok, 1000);
	ck_assert_int_gt(maps_bad, 100);
	(void)sum;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("binlog_rows");
	TCase *tc = tcase_create("fixtures");
	tcase_add_test(tc, test_fixture_rows);
	tcase_add_test(tc, test_fixture_tablemaps);
	tcase_add_test(tc, test_fixture_minimal_image);
	tcase_add_test(tc, test_fixture_flags);
	tcase_add_test(tc, test_fixture_ext_unmarked);
	tcase_add_test(tc, test_fixture_as_v2);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_test(tc, test_decimal);
	tcase_add_test(tc, test_float);
	tcase_add_test(tc, test_temporal);
	tcase_add_test(tc, test_text);
	tcase_add_test(tc, test_enum_set_bit);
	tcase_add_test(tc, test_compressed_maps);
	tcase_add_test(tc, test_unsupported_columns);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_bounded_memory);
	suite_add_tcase(s, tc);

	tc = tcase_create("fuzz");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_fuzz_truncations);
	tcase_add_test(tc, test_fuzz_bitflips);
	suite_add_tcase(s, tc);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
