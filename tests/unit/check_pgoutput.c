/*
 * Unit tests for pgoutput: the decoder against bytes a real PostgreSQL 15
 * sent (pgoutput_fixtures.h, from tests/tools/pgcapture_fixtures.c, whose
 * workload these assertions follow), hand-built edge cases, the sequence
 * checks, the replication framing, and a fuzz pass (truncations and bit
 * flips of every fixture) meant to run under ASan.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgoutput.h"
#include "util.h"

#include "pgoutput_fixtures.h"

#define SLACK_US       INT64_C(1000000)
#define ORIGIN_TIME_US INT64_C(1577836800000000) /* 2020-01-01 00:00 UTC, set by the workload */
#define ORIGIN_LSN     UINT64_C(0xABCDEF)

/* --- walking the fixtures ---------------------------------------------------- */

struct seen_rel {
	uint32_t relid;
	char schema[32], name[32];
	char replident;
	int ncols;
	char colnames[8][16];
	uint32_t types[8];
	uint8_t flags[8];
	int times; /* how many R messages described it */
};

/*
 * Walks the fixture frames through pgoutput_next() as migd would.
 * walk_next() returns the next message that is not a keepalive, 'R' or
 * 'Y' (those are recorded in rels/type_* instead), or NULL at the end.
 */
struct walker {
	size_t i; /* next frame */
	struct pgoutput_state st;
	struct change_scratch sc;
	struct pgoutput_frame f; /* frame of the message last returned */
	struct pgoutput_msg m;
	struct seen_rel rels[8];
	int nrels;
	uint32_t type_oid;
	char type_name[32];
	int ntypes, nkeepalives;
	uint64_t final_lsn; /* of the last BEGIN */
	uint32_t xid;	    /* of the last BEGIN */
	uint64_t last_commit_lsn;
};

static void walker_init(struct walker *w)
{
	memset(w, 0, sizeof(*w));
	pgoutput_state_init(&w->st);
}

static void walker_done(struct walker *w)
{
	change_scratch_free(&w->sc);
}

static void record_rel(struct walker *w, const struct change_relation *r)
{
	struct seen_rel *s = NULL;
	for (int i = 0; i < w->nrels; i++)
		if (w->rels[i].relid == r->relid)
			s = &w->rels[i];
	if (s == NULL) {
		ck_assert_int_lt(w->nrels, 8);
		s = &w->rels[w->nrels++];
	}
	ck_assert_int_le(r->ncols, 8);
	s->relid = r->relid;
	snprintf(s->schema, sizeof(s->schema), "%s", r->schema);
	snprintf(s->name, sizeof(s->name), "%s", r->name);
	s->replident = r->replident;
	s->ncols = r->ncols;
	for (int i = 0; i < r->ncols; i++) {
		snprintf(s->colnames[i], sizeof(s->colnames[i]), "%s", r->cols[i].name);
		s->types[i] = r->cols[i].type_oid;
		s->flags[i] = r->cols[i].flags;
		ck_assert_int_eq(r->cols[i].type_mod, -1);
	}
	s->times++;
}

static const struct seen_rel *rel_by_name(const struct walker *w, const char *name)
{
	for (int i = 0; i < w->nrels; i++)
		if (strcmp(w->rels[i].name, name) == 0)
			return &w->rels[i];
	ck_abort_msg("no relation message for %s", name);
	return NULL;
}

static const char *rel_name(const struct walker *w, uint32_t relid)
{
	for (int i = 0; i < w->nrels; i++)
		if (w->rels[i].relid == relid)
			return w->rels[i].name;
	ck_abort_msg("change for relid %u before its relation message", relid);
	return NULL;
}

static const struct pgoutput_msg *walk_next(struct walker *w)
{
	const char *err = NULL;
	while (w->i < ARRAY_LEN(pgfx_frames)) {
		const struct pgfx_frame *fx = &pgfx_frames[w->i++];
		ck_assert_msg(pgoutput_parse_frame(fx->data, fx->len, &w->f, &err), "frame %zu: %s",
			      w->i - 1, err);
		if (w->f.type == 'k') {
			w->nkeepalives++;
			continue;
		}
		ck_assert_msg(pgoutput_next(&w->st, w->f.data, w->f.len, &w->m, &w->sc, &err),
			      "frame %zu: %s", w->i - 1, err);
		if (w->m.kind == PGO_TYPE) {
			w->type_oid = w->m.type.oid;
			snprintf(w->type_name, sizeof(w->type_name), "%s.%s", w->m.type.schema,
				 w->m.type.name);
			w->ntypes++;
			continue;
		}
		if (w->m.kind == PGO_CHANGE && w->m.ev.kind == CHG_RELATION) {
			record_rel(w, &w->m.ev.rel);
			continue;
		}
		return &w->m;
	}
	return NULL;
}

static void expect_time(int64_t t)
{
	ck_assert_msg(t >= PGFX_WORKLOAD_START_US - SLACK_US &&
			  t <= PGFX_WORKLOAD_END_US + SLACK_US,
		      "commit time %lld outside the workload", (long long)t);
}

static void expect_begin(struct walker *w)
{
	const struct pgoutput_msg *m = walk_next(w);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->kind, PGO_CHANGE);
	ck_assert_int_eq(m->ev.kind, CHG_BEGIN);
	ck_assert_int_eq(m->ev.begin.final_pos.kind, POS_PG_LSN);
	ck_assert_uint_gt(m->ev.xid, w->xid); /* the workload's xids only grow */
	ck_assert_uint_gt(m->ev.begin.final_pos.lsn, w->last_commit_lsn);
	w->xid = m->ev.xid;
	w->final_lsn = m->ev.begin.final_pos.lsn;
	if (w->xid != 0 && m->ev.begin.commit_time_us != ORIGIN_TIME_US)
		expect_time(m->ev.begin.commit_time_us);
}

static void expect_commit(struct walker *w)
{
	const struct pgoutput_msg *m = walk_next(w);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->ev.kind, CHG_COMMIT);
	ck_assert_uint_eq(m->ev.xid, w->xid);
	ck_assert_uint_eq(m->ev.commit.commit_pos.lsn, w->final_lsn);
	ck_assert_uint_gt(m->ev.commit.end_pos.lsn, m->ev.commit.commit_pos.lsn);
	/* the walsender stamps a commit's XLogData with the end LSN: resume point */
	ck_assert_uint_eq(w->f.wal_start, m->ev.commit.end_pos.lsn);
	w->last_commit_lsn = m->ev.commit.commit_pos.lsn;
}

/* The next message must be a row change of kind k on relation rel with old_kind. */
static const struct pgoutput_msg *expect_row(struct walker *w, enum change_kind k, const char *rel,
					     char old_kind)
{
	const struct pgoutput_msg *m = walk_next(w);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->kind, PGO_CHANGE);
	ck_assert_msg(m->ev.kind == k, "expected %s, got %s", change_kind_name(k),
		      change_kind_name(m->ev.kind));
	ck_assert_str_eq(rel_name(w, m->ev.row.relid), rel);
	ck_assert_int_eq(m->ev.row.old_kind, old_kind);
	if (old_kind == 0)
		ck_assert_int_eq(m->ev.row.old_tuple.ncols, 0);
	if (k == CHG_DELETE)
		ck_assert_int_eq(m->ev.row.new_tuple.ncols, 0);
	if (w->st.in_txn)
		ck_assert_uint_eq(m->ev.xid, w->xid);
	return m;
}

/* Checks t against "n", "u" or "t:<text>" per column; the list ends with NULL. */
static void expect_vals(const struct change_tuple *t, ...)
{
	va_list ap;
	const char *want;
	int i = 0;
	va_start(ap, t);
	while ((want = va_arg(ap, const char *)) != NULL) {
		ck_assert_int_lt(i, t->ncols);
		const struct change_value *v = &t->vals[i];
		ck_assert_msg(v->kind == (uint8_t)want[0], "column %d: kind '%c', want '%c'", i,
			      v->kind, want[0]);
		if (want[0] == 't') {
			size_t n = strlen(want + 2);
			ck_assert_msg(v->len == n && memcmp(v->data, want + 2, n) == 0,
				      "column %d: '%.*s', want '%s'", i, (int)v->len, v->data,
				      want + 2);
		}
		i++;
	}
	va_end(ap);
	ck_assert_int_eq(i, t->ncols);
}

static const struct pgoutput_msg *expect_kind(struct walker *w, enum pgoutput_kind k)
{
	const struct pgoutput_msg *m = walk_next(w);
	ck_assert_ptr_nonnull(m);
	ck_assert_msg(m->kind == k, "expected %s, got %s ('%c')", pgoutput_kind_name(k),
		      pgoutput_kind_name(m->kind), m->tag);
	return m;
}

/* --- the captured workload ----------------------------------------------------- */

START_TEST(test_fixture_frames)
{
	const char *err;
	struct pgoutput_frame f;
	uint64_t last_end = 0;
	int nk = 0, nw = 0;

	ck_assert_int_eq(PGFX_SERVER_VERSION_NUM / 10000, 15);
	for (size_t i = 0; i < ARRAY_LEN(pgfx_frames); i++) {
		ck_assert_msg(
		    pgoutput_parse_frame(pgfx_frames[i].data, pgfx_frames[i].len, &f, &err),
		    "frame %zu: %s", i, err);
		if (f.type == 'k') {
			nk++;
			ck_assert_ptr_null(f.data);
			ck_assert_uint_gt(f.wal_end, 0);
			ck_assert_int_ge(f.send_time_us, PGFX_WORKLOAD_START_US);
		} else {
			nw++;
			ck_assert_int_eq(f.type, 'w');
			ck_assert_uint_gt(f.len, 0);
			ck_assert_ptr_eq(f.data, pgfx_frames[i].data + 25);
			/* R, Y and a lazily sent B carry start = end = 0 */
			if (f.wal_start == 0)
				ck_assert_uint_eq(f.wal_end, 0);
			else
				ck_assert_uint_ge(f.wal_end, f.wal_start);
		}
		if (f.wal_end != 0) {
			ck_assert_uint_ge(f.wal_end, last_end);
			last_end = f.wal_end;
		}
	}
	ck_assert_int_ge(nk, 1);
	ck_assert_int_ge(nw, 60);
	ck_assert_int_gt(PGFX_SKIPPED_FRAMES, 500);
}
END_TEST

START_TEST(test_fixture_relations)
{
	struct walker w;
	walker_init(&w);
	while (walk_next(&w) != NULL)
		;
	ck_assert_int_eq(w.nrels, 5);
	ck_assert_int_ge(w.ntypes, 1);
	ck_assert_str_eq(w.type_name, "public.fx_mood");

	const struct seen_rel *r = rel_by_name(&w, "fx_items");
	ck_assert_str_eq(r->schema, "public");
	ck_assert_int_eq(r->replident, 'd');
	ck_assert_int_eq(r->ncols, 5);
	const char *names[] = {"id", "name", "qty", "note", "mood"};
	const uint32_t types[] = {23, 25, 23, 25, w.type_oid};
	for (int i = 0; i < 5; i++) {
		ck_assert_str_eq(r->colnames[i], names[i]);
		ck_assert_uint_eq(r->types[i], types[i]);
		ck_assert_int_eq(r->flags[i], i == 0 ? CHC_KEY : 0);
	}
	ck_assert_int_ge(r->times, 2); /* sent again after the truncate invalidated it */

	r = rel_by_name(&w, "fx_full");
	ck_assert_int_eq(r->replident, 'f');
	ck_assert_int_eq(r->ncols, 2);
	ck_assert_int_eq(r->flags[0], CHC_KEY); /* FULL: every column is identity */
	ck_assert_int_eq(r->flags[1], CHC_KEY);

	r = rel_by_name(&w, "fx_idx");
	ck_assert_int_eq(r->replident, 'i');
	ck_assert_int_eq(r->ncols, 3);
	ck_assert_int_eq(r->flags[0], CHC_KEY);
	ck_assert_int_eq(r->flags[1], CHC_KEY);
	ck_assert_int_eq(r->flags[2], 0);

	r = rel_by_name(&w, "fx_docs");
	ck_assert_int_eq(r->replident, 'd');
	ck_assert_str_eq(r->colnames[1], "body");
	r = rel_by_name(&w, "fx_big");
	ck_assert_int_eq(r->ncols, 2);
	walker_done(&w);
}
END_TEST

/* T1..T11 of the workload, in order; then the stream (its own test). */
static void walk_plain_transactions(struct walker *w)
{
	const struct pgoutput_msg *m;
	char body[2501];

	/* T1: inserts with NULL, empty string and multibyte UTF-8 */
	expect_begin(w);
	m = expect_row(w, CHG_INSERT, "fx_items", 0);
	expect_vals(&m->ev.row.new_tuple, "t:1", "t:apple", "t:3", "n", "t:happy", NULL);
	m = expect_row(w, CHG_INSERT, "fx_items", 0);
	/* "Grüße ☃ 日本" */
	expect_vals(&m->ev.row.new_tuple, "t:2",
		    "t:Gr\xc3\xbc\xc3\x9f"
		    "e \xe2\x98\x83 \xe6\x97\xa5\xe6\x9c\xac",
		    "t:5", "t:", "t:sad", NULL);
	expect_commit(w);

	/* T2: update without key change: new tuple only */
	expect_begin(w);
	m = expect_row(w, CHG_UPDATE, "fx_items", 0);
	expect_vals(&m->ev.row.new_tuple, "t:1", "t:apple", "t:4", "n", "t:happy", NULL);
	expect_commit(w);

	/* T3: key change: 'K' carries the old key, other columns null */
	expect_begin(w);
	m = expect_row(w, CHG_UPDATE, "fx_items", 'K');
	expect_vals(&m->ev.row.old_tuple, "t:2", "n", "n", "n", "n", NULL);
	ck_assert_int_eq(m->ev.row.new_tuple.vals[0].len, 2);
	ck_assert_int_eq(memcmp(m->ev.row.new_tuple.vals[0].data, "10", 2), 0);
	ck_assert_int_eq(m->ev.row.new_tuple.ncols, 5);
	expect_commit(w);

	/* T4: the TOASTed value in full */
	expect_begin(w);
	m = expect_row(w, CHG_INSERT, "fx_docs", 0);
	for (int i = 0; i < 250; i++)
		memcpy(body + 10 * i, "0123456789", 10);
	body[2500] = 0;
	ck_assert_int_eq(m->ev.row.new_tuple.vals[1].len, 2500);
	ck_assert_int_eq(memcmp(m->ev.row.new_tuple.vals[1].data, body, 2500), 0);
	expect_commit(w);

	/* T5: update not touching it: 'u', and no old tuple to recover it from */
	expect_begin(w);
	m = expect_row(w, CHG_UPDATE, "fx_docs", 0);
	expect_vals(&m->ev.row.new_tuple, "t:1", "u", "t:2", NULL);
	expect_commit(w);

	/* T6: REPLICA IDENTITY FULL: 'O' old rows */
	expect_begin(w);
	m = expect_row(w, CHG_INSERT, "fx_full", 0);
	expect_vals(&m->ev.row.new_tuple, "t:1", "t:a", NULL);
	m = expect_row(w, CHG_UPDATE, "fx_full", 'O');
	expect_vals(&m->ev.row.old_tuple, "t:1", "t:a", NULL);
	expect_vals(&m->ev.row.new_tuple, "t:1", "t:b", NULL);
	m = expect_row(w, CHG_DELETE, "fx_full", 'O');
	expect_vals(&m->ev.row.old_tuple, "t:1", "t:b", NULL);
	expect_commit(w);

	/* T7: identity by index, key change */
	expect_begin(w);
	m = expect_row(w, CHG_INSERT, "fx_idx", 0);
	expect_vals(&m->ev.row.new_tuple, "t:1", "t:x", "t:c1", NULL);
	m = expect_row(w, CHG_UPDATE, "fx_idx", 'K');
	expect_vals(&m->ev.row.old_tuple, "t:1", "t:x", "n", NULL);
	expect_vals(&m->ev.row.new_tuple, "t:1", "t:y", "t:c1", NULL);
	expect_commit(w);

	/* T8: delete by key */
	expect_begin(w);
	m = expect_row(w, CHG_DELETE, "fx_items", 'K');
	expect_vals(&m->ev.row.old_tuple, "t:1", "n", "n", "n", "n", NULL);
	expect_commit(w);

	/* T9: truncate of two relations with RESTART IDENTITY */
	expect_begin(w);
	m = walk_next(w);
	ck_assert_int_eq(m->ev.kind, CHG_TRUNCATE);
	ck_assert_int_eq(m->ev.truncate.flags, 2);
	ck_assert_int_eq(m->ev.truncate.nrelids, 2);
	ck_assert_uint_eq(m->ev.xid, w->xid);
	ck_assert_str_eq(rel_name(w, m->ev.truncate.relids[0]), "fx_items");
	ck_assert_str_eq(rel_name(w, m->ev.truncate.relids[1]), "fx_full");
	expect_commit(w);

	/* T10: transactional message inside, non-transactional after */
	expect_begin(w);
	m = expect_row(w, CHG_INSERT, "fx_items", 0);
	expect_vals(&m->ev.row.new_tuple, "t:3", "t:pear", "t:1", "t:n", "t:happy", NULL);
	m = expect_kind(w, PGO_MESSAGE);
	ck_assert(m->message.transactional);
	ck_assert_str_eq(m->message.prefix, "fx_tx");
	ck_assert_uint_eq(m->message.len, 13);
	ck_assert_int_eq(memcmp(m->message.content, "transactional", 13), 0);
	ck_assert_uint_eq(m->message.xid, 0);
	ck_assert_uint_gt(m->message.lsn, w->last_commit_lsn);
	ck_assert_uint_le(m->message.lsn, w->final_lsn); /* the record's end LSN */
	expect_commit(w);
	m = expect_kind(w, PGO_MESSAGE);
	ck_assert(!m->message.transactional);
	ck_assert_str_eq(m->message.prefix, "fx_nontx");
	ck_assert_uint_eq(m->message.len, 17);
	ck_assert(!w->st.in_txn && !w->st.in_stream);

	/* T11: from a replication origin: 'O', and the origin's commit time */
	expect_begin(w);
	ck_assert_int_eq(w->m.ev.begin.commit_time_us, ORIGIN_TIME_US);
	m = walk_next(w);
	ck_assert_int_eq(m->ev.kind, CHG_ORIGIN);
	ck_assert_str_eq(m->ev.origin.name, "fx_origin");
	ck_assert_int_eq(m->ev.origin.commit_pos.kind, POS_PG_LSN);
	ck_assert_uint_eq(m->ev.origin.commit_pos.lsn, ORIGIN_LSN);
	ck_assert_uint_eq(m->ev.xid, w->xid);
	m = expect_row(w, CHG_INSERT, "fx_items", 0);
	expect_vals(&m->ev.row.new_tuple, "t:4", "t:from origin", "t:2", "n", "n", NULL);
	expect_commit(w);
	ck_assert_int_eq(w->m.ev.commit.commit_time_us, ORIGIN_TIME_US);
}

START_TEST(test_fixture_transactions)
{
	struct walker w;
	walker_init(&w);
	walk_plain_transactions(&w);
	walker_done(&w);
}
END_TEST

/* Row id of a fx_big insert (test helper: parses the first column). */
static long big_id(const struct pgoutput_msg *m)
{
	char buf[16];
	const struct change_value *v = &m->ev.row.new_tuple.vals[0];
	ck_assert_int_eq(v->kind, CHV_TEXT);
	ck_assert_uint_lt(v->len, sizeof(buf));
	memcpy(buf, v->data, v->len);
	buf[v->len] = 0;
	return strtol(buf, NULL, 10);
}

START_TEST(test_fixture_stream)
{
	struct walker w;
	const struct pgoutput_msg *m;
	uint32_t top = 0, sub = 0, after_sub = 0;
	int nstarts = 0, nstops = 0, ntop = 0, nsub = 0, nafter = 0, nmsg = 0;
	bool aborted = false;

	walker_init(&w);
	walk_plain_transactions(&w);
	while ((m = walk_next(&w)) != NULL && m->kind != PGO_STREAM_COMMIT) {
		switch (m->kind) {
		case PGO_STREAM_START:
			ck_assert_int_eq(nstarts, nstops);
			if (nstarts++ == 0) {
				ck_assert(m->stream_start.first_segment);
				top = m->stream_start.xid;
				ck_assert_uint_gt(top, w.xid);
			} else {
				ck_assert(!m->stream_start.first_segment);
				ck_assert_uint_eq(m->stream_start.xid, top);
			}
			break;
		case PGO_STREAM_STOP:
			ck_assert_int_eq(++nstops, nstarts);
			break;
		case PGO_MESSAGE:
			ck_assert(w.st.in_stream);
			ck_assert(m->message.transactional);
			ck_assert_uint_eq(m->message.xid, top);
			ck_assert_str_eq(m->message.prefix, "fx_stream");
			ck_assert_uint_eq(m->message.len, 9);
			nmsg++;
			break;
		case PGO_STREAM_ABORT:
			ck_assert(!w.st.in_stream);
			ck_assert_uint_eq(m->stream_abort.xid, top);
			ck_assert_uint_eq(m->stream_abort.subxid, sub);
			ck_assert(!aborted);
			aborted = true;
			break;
		case PGO_CHANGE: {
			ck_assert_int_eq(m->ev.kind, CHG_INSERT);
			ck_assert(w.st.in_stream);
			ck_assert_str_eq(rel_name(&w, m->ev.row.relid), "fx_big");
			long id = big_id(m);
			const struct change_value *pad = &m->ev.row.new_tuple.vals[1];
			if (id <= 600) { /* top level, before the savepoint */
				ck_assert_uint_eq(m->ev.xid, top);
				ck_assert(pad->kind == CHV_TEXT && pad->len == 100 &&
					  pad->data[0] == 'x');
				ck_assert_int_eq(nmsg, 0);
				ntop++;
			} else if (id <= 1600) { /* the subtransaction rolled back */
				if (sub == 0)
					sub = m->ev.xid;
				ck_assert_uint_ne(sub, top);
				ck_assert_uint_eq(m->ev.xid, sub);
				ck_assert(pad->kind == CHV_TEXT && pad->data[0] == 'y');
				ck_assert(!aborted);
				nsub++;
			} else { /* after ROLLBACK TO: the savepoint's next subtransaction */
				ck_assert(aborted);
				after_sub = m->ev.xid;
				ck_assert_uint_ne(after_sub, top);
				ck_assert_uint_ne(after_sub, sub);
				ck_assert_int_eq(id, 2001 + nafter);
				if (id == 2002)
					ck_assert_int_eq(pad->kind, CHV_NULL);
				nafter++;
			}
			break;
		}
		default:
			ck_abort_msg("unexpected %s in the stream", pgoutput_kind_name(m->kind));
		}
	}
	ck_assert_ptr_nonnull(m);
	ck_assert_int_ge(nstarts, 3);
	ck_assert_int_eq(nstarts, nstops);
	ck_assert_int_ge(ntop, 2);
	ck_assert_int_ge(nsub, 2);
	ck_assert_int_eq(nafter, 2);
	ck_assert_int_eq(nmsg, 1);
	ck_assert(aborted);
	ck_assert_uint_eq(m->stream_commit.xid, top);
	ck_assert_int_eq(m->stream_commit.flags, 0);
	ck_assert_uint_gt(m->stream_commit.commit_pos.lsn, w.last_commit_lsn);
	ck_assert_uint_gt(m->stream_commit.end_pos.lsn, m->stream_commit.commit_pos.lsn);
	ck_assert_uint_eq(w.f.wal_start, m->stream_commit.end_pos.lsn);
	expect_time(m->stream_commit.commit_time_us);

	/* the end marker, then nothing */
	m = expect_kind(&w, PGO_MESSAGE);
	ck_assert_str_eq(m->message.prefix, "fx_end");
	ck_assert(!m->message.transactional);
	ck_assert_ptr_null(walk_next(&w));
	ck_assert(!w.st.in_txn && !w.st.in_stream);
	ck_assert_int_ge(w.nkeepalives, 1);
	walker_done(&w);
}
END_TEST

/* Inside a chunk the same bytes mean something else: the xid comes first. */
START_TEST(test_fixture_stream_xid_matters)
{
	const char *err;
	struct pgoutput_frame f;
	struct pgoutput_msg m;
	struct change_scratch sc = {0};
	int checked = 0;
	bool in_stream = false;

	for (size_t i = 0; i < ARRAY_LEN(pgfx_frames); i++) {
		ck_assert(pgoutput_parse_frame(pgfx_frames[i].data, pgfx_frames[i].len, &f, &err));
		if (f.type != 'w')
			continue;
		if (f.data[0] == 'S')
			in_stream = true;
		else if (f.data[0] == 'E')
			in_stream = false;
		else if (in_stream && f.data[0] == 'I') {
			/* misread as not streamed: xid taken as relid, then garbage */
			ck_assert(!pgoutput_decode(f.data, f.len, false, &m, &sc, &err));
			checked++;
		}
	}
	ck_assert_int_gt(checked, 4);
	change_scratch_free(&sc);
}
END_TEST

/* --- hand-built messages -------------------------------------------------------- */

/* Decodes bytes expecting success. */
static void decode_ok(const uint8_t *b, size_t n, bool in_stream, struct pgoutput_msg *m,
		      struct change_scratch *sc)
{
	const char *err = NULL;
	ck_assert_msg(pgoutput_decode(b, n, in_stream, m, sc, &err), "decode failed: %s", err);
}

/* Decodes bytes expecting failure with needle in the error. */
static void decode_bad(const uint8_t *b, size_t n, bool in_stream, const char *needle)
{
	struct pgoutput_msg m;
	struct change_scratch sc = {0};
	const char *err = NULL;
	ck_assert_msg(!pgoutput_decode(b, n, in_stream, &m, &sc, &err), "accepted, want '%s'",
		      needle);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, needle) != NULL, "error '%s', want '%s'", err, needle);
	change_scratch_free(&sc);
}

#define B(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

START_TEST(test_edge_zero_columns)
{
	struct pgoutput_msg m;
	struct change_scratch sc = {0};

	decode_ok(B('I', 0, 0, 0x40, 0x01, 'N', 0, 0), false, &m, &sc);
	ck_assert_int_eq(m.ev.kind, CHG_INSERT);
	ck_assert_uint_eq(m.ev.row.relid, 0x4001);
	ck_assert_int_eq(m.ev.row.new_tuple.ncols, 0);
	ck_assert_int_eq(m.ev.row.old_kind, 0);

	decode_ok(B('R', 0, 0, 0, 7, 0, 't', 0, 'n', 0, 0), false, &m, &sc);
	ck_assert_int_eq(m.ev.kind, CHG_RELATION);
	ck_assert_str_eq(m.ev.rel.schema, ""); /* pg_catalog is sent as "": kept as given */
	ck_assert_str_eq(m.ev.rel.name, "t");
	ck_assert_int_eq(m.ev.rel.replident, 'n');
	ck_assert_int_eq(m.ev.rel.ncols, 0);

	decode_ok(B('T', 0, 0, 0, 0, 1), false, &m, &sc);
	ck_assert_int_eq(m.ev.kind, CHG_TRUNCATE);
	ck_assert_int_eq(m.ev.truncate.nrelids, 0);
	ck_assert_int_eq(m.ev.truncate.flags, 1);

	decode_ok(B('M', 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0), false, &m, &sc);
	ck_assert_int_eq(m.kind, PGO_MESSAGE);
	ck_assert_str_eq(m.message.prefix, "");
	ck_assert_uint_eq(m.message.len, 0);
	ck_assert_uint_eq(m.message.lsn, 5);
	change_scratch_free(&sc);
}
END_TEST

START_TEST(test_edge_values)
{
	struct pgoutput_msg m;
	struct change_scratch sc = {0};

	/* empty string, embedded NUL, null, unchanged */
	decode_ok(
	    B('I', 0, 0, 0, 9, 'N', 0, 4, 't', 0, 0, 0, 0, 't', 0, 0, 0, 3, 'a', 0, 'b', 'n', 'u'),
	    false, &m, &sc);
	const struct change_tuple *t = &m.ev.row.new_tuple;
	ck_assert_int_eq(t->ncols, 4);
	ck_assert_int_eq(t->vals[0].kind, CHV_TEXT);
	ck_assert_uint_eq(t->vals[0].len, 0);
	ck_assert_uint_eq(t->vals[1].len, 3);
	ck_assert_int_eq(memcmp(t->vals[1].data, "a\0b", 3), 0);
	ck_assert_int_eq(t->vals[2].kind, CHV_NULL);
	ck_assert_int_eq(t->vals[3].kind, CHV_UNCHANGED);

	/* update with old key and new tuple: both arrays valid after growth */
	decode_ok(B('U', 0, 0, 0, 9, 'K', 0, 1, 't', 0, 0, 0, 1, '1', 'N', 0, 2, 't', 0, 0, 0, 1,
		    '2', 'n'),
		  false, &m, &sc);
	ck_assert_int_eq(m.ev.row.old_kind, 'K');
	ck_assert_int_eq(m.ev.row.old_tuple.ncols, 1);
	ck_assert_int_eq(m.ev.row.old_tuple.vals[0].data[0], '1');
	ck_assert_int_eq(m.ev.row.new_tuple.ncols, 2);
	ck_assert_int_eq(m.ev.row.new_tuple.vals[0].data[0], '2');
	ck_assert_int_eq(m.ev.row.new_tuple.vals[1].kind, CHV_NULL);

	/* inside a stream: xid first */
	decode_ok(B('D', 0, 0, 1, 0, 0, 0, 0, 9, 'O', 0, 1, 'n'), true, &m, &sc);
	ck_assert_uint_eq(m.ev.xid, 256);
	ck_assert_uint_eq(m.ev.row.relid, 9);
	ck_assert_int_eq(m.ev.row.old_kind, 'O');
	decode_ok(B('Y', 0, 0, 0, 42, 0, 0, 0, 77, 's', 0, 'e', 0), true, &m, &sc);
	ck_assert_int_eq(m.kind, PGO_TYPE);
	ck_assert_uint_eq(m.type.xid, 42);
	ck_assert_uint_eq(m.type.oid, 77);
	ck_assert_str_eq(m.type.schema, "s");
	ck_assert_str_eq(m.type.name, "e");
	change_scratch_free(&sc);
}
END_TEST

START_TEST(test_edge_stream_control)
{
	struct pgoutput_msg m;
	struct change_scratch sc = {0};

	decode_ok(B('S', 0, 0, 2, 0, 1), false, &m, &sc);
	ck_assert_int_eq(m.kind, PGO_STREAM_START);
	ck_assert_uint_eq(m.stream_start.xid, 512);
	ck_assert(m.stream_start.first_segment);
	decode_ok(B('E'), true, &m, &sc);
	ck_assert_int_eq(m.kind, PGO_STREAM_STOP);
	decode_ok(B('A', 0, 0, 2, 0, 0, 0, 2, 1), false, &m, &sc);
	ck_assert_uint_eq(m.stream_abort.xid, 512);
	ck_assert_uint_eq(m.stream_abort.subxid, 513);
	/* commit time 0 = 2000-01-01 */
	decode_ok(B('c', 0, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 0x20, 0, 0,
		    0, 0, 0, 0, 0, 0),
		  false, &m, &sc);
	ck_assert_int_eq(m.kind, PGO_STREAM_COMMIT);
	ck_assert_uint_eq(m.stream_commit.commit_pos.lsn, UINT64_C(0x100000010));
	ck_assert_uint_eq(m.stream_commit.end_pos.lsn, UINT64_C(0x100000020));
	ck_assert_int_eq(m.stream_commit.commit_time_us, PGOUTPUT_PG_EPOCH_UNIX_US);
	change_scratch_free(&sc);
}
END_TEST

START_TEST(test_edge_errors)
{
	decode_bad(NULL, 0, false, "empty pgoutput message");
	decode_bad(B('Z'), false, "unknown message type 'Z'");
	decode_bad(B(0x01), false, "unknown message type 0x01");
	decode_bad(B('b', 0), false, "unknown message type 'b'"); /* two-phase: proto 3 */
	decode_bad(B('E', 0), false, "1 trailing bytes after 'E' message");
	decode_bad(B('I', 0, 0, 0, 1, 'N', 0, 1, 'b', 0, 0, 0, 1, 7), false, "binary tuple data");
	decode_bad(B('I', 0, 0, 0, 1, 'N', 0, 1, 'x'), false, "unknown tuple column kind 'x'");
	decode_bad(B('I', 0, 0, 0, 1, 'N', 0, 2, 'n'), false, "truncated tuple");
	decode_bad(B('I', 0, 0, 0, 1, 'N', 0xff, 0xff, 'n'), false, "negative tuple column count");
	decode_bad(B('I', 0, 0, 0, 1, 'N', 0x7f, 0xff, 'n'), false, "truncated tuple");
	decode_bad(B('I', 0, 0, 0, 1, 'N', 0, 1, 't', 0xff, 0xff, 0xff, 0xff), false,
		   "negative tuple value length");
	decode_bad(B('I', 0, 0, 0, 1, 'N', 0, 1, 't', 0, 0, 0, 5, 'a'), false,
		   "truncated tuple value");
	decode_bad(B('I', 0, 0, 0, 1, 'K', 0, 0), false, "insert: expected 'N'");
	decode_bad(B('U', 0, 0, 0, 1, 'K', 0, 0), false, "no new tuple");
	decode_bad(B('U', 0, 0, 0, 1, 'K', 0, 0, 'K', 0, 0), false, "update: expected");
	decode_bad(B('D', 0, 0, 0, 1, 'N', 0, 0), false, "delete: expected 'K' or 'O', got 'N'");
	decode_bad(B('R', 0, 0, 0, 7, 0, 't', 0, 'q', 0, 0), false, "unknown replica identity 'q'");
	decode_bad(B('R', 0, 0, 0, 7, 0, 't', 0, 'd', 0, 1, 1, 'a', 0, 0, 0), false,
		   "truncated relation columns");
	decode_bad(B('R', 0, 0, 0, 7, 0, 't'), false, "truncated relation message");
	decode_bad(B('T', 0, 0, 0, 2, 0, 0, 0, 0, 1), false, "does not match its length");
	decode_bad(B('T', 0, 1, 0, 0, 0), false, "more than 65535 relations");
	decode_bad(B('M', 1, 0, 0, 0, 0, 0, 0, 0, 0, 'p', 0, 0, 0, 0, 9, 'x'), false,
		   "truncated logical decoding message content");
	decode_bad(B('S', 0, 0, 0, 1, 2), false, "first-segment flag");
	decode_bad(B('O', 0, 0, 0, 0, 0, 0, 0, 1, 'n', 'o'), false, "truncated origin message");
	decode_bad(B('I', 0, 0), true, "truncated streamed message: no xid");
	decode_bad(B('B', 0, 0, 0, 0, 0, 0, 0, 1), false, "truncated begin message");
	decode_bad(B('C', 0, 0, 0, 0, 0, 0, 0, 0, 1), false, "truncated commit message");
	decode_bad(B('A', 0, 0, 0, 1), false, "truncated stream abort message");
	decode_bad(B('c', 0, 0, 0, 1), false, "truncated stream commit message");
}
END_TEST

/* A huge claimed column count on a short message fails before allocating for it. */
START_TEST(test_edge_no_huge_allocation)
{
	struct pgoutput_msg m;
	struct change_scratch sc = {0};
	const char *err;
	ck_assert(!pgoutput_decode(B('I', 0, 0, 0, 1, 'N', 0x7f, 0xff), false, &m, &sc, &err));
	ck_assert_uint_eq(sc.nvals_cap, 0);
	ck_assert(!pgoutput_decode(B('R', 0, 0, 0, 1, 0, 'x', 0, 'd', 0x7f, 0xff, 0), false, &m,
				   &sc, &err));
	ck_assert_uint_eq(sc.ncols_cap, 0);
	ck_assert(!pgoutput_decode(B('T', 0, 0, 0xff, 0xff, 0), false, &m, &sc, &err));
	ck_assert_uint_eq(sc.nrelids_cap, 0);
	change_scratch_free(&sc);
}
END_TEST

/* --- sequence checks ------------------------------------------------------------ */

#define BEGIN_MSG(lsn) B('B', 0, 0, 0, 0, 0, 0, 0, lsn, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7)
#define COMMIT_MSG(lsn)                                                                            \
	B('C', 0, 0, 0, 0, 0, 0, 0, 0, lsn, 0, 0, 0, 0, 0, 0, 0, 0x60, 0, 0, 0, 0, 0, 0, 0, 0)
#define INSERT_MSG  B('I', 0, 0, 0, 1, 'N', 0, 0)
#define SINSERT_MSG B('I', 0, 0, 0, 9, 0, 0, 0, 1, 'N', 0, 0)

static void next_ok(struct pgoutput_state *st, const uint8_t *b, size_t n, struct pgoutput_msg *m,
		    struct change_scratch *sc)
{
	const char *err = NULL;
	ck_assert_msg(pgoutput_next(st, b, n, m, sc, &err), "refused: %s", err);
}

static void next_bad(struct pgoutput_state *st, const uint8_t *b, size_t n, const char *needle)
{
	struct pgoutput_msg m;
	struct change_scratch sc = {0};
	struct pgoutput_state before = *st;
	const char *err = NULL;
	ck_assert(!pgoutput_next(st, b, n, &m, &sc, &err));
	ck_assert_msg(strstr(err, needle) != NULL, "error '%s', want '%s'", err, needle);
	ck_assert_int_eq(memcmp(&before, st, sizeof(before)), 0); /* unchanged */
	change_scratch_free(&sc);
}

START_TEST(test_sequence)
{
	struct pgoutput_state st;
	struct pgoutput_msg m;
	struct change_scratch sc = {0};

	pgoutput_state_init(&st);
	next_bad(&st, COMMIT_MSG(0x50), "commit without begin");
	next_bad(&st, INSERT_MSG, "change outside a transaction");
	next_bad(&st, B('E'), "stream stop without stream start");
	next_bad(&st, B('M', 1, 0, 0, 0, 0, 0, 0, 0, 0, 'p', 0, 0, 0, 0, 0),
		 "transactional message outside");
	next_ok(&st, B('M', 0, 0, 0, 0, 0, 0, 0, 0, 0, 'p', 0, 0, 0, 0, 0), &m, &sc);

	next_ok(&st, BEGIN_MSG(0x50), &m, &sc);
	next_bad(&st, BEGIN_MSG(0x50), "begin inside a transaction");
	next_bad(&st, B('S', 0, 0, 0, 9, 1), "stream start inside");
	next_bad(&st, B('A', 0, 0, 0, 9, 0, 0, 0, 9), "stream commit or abort inside");
	next_ok(&st, INSERT_MSG, &m, &sc);
	ck_assert_uint_eq(m.ev.xid, 7); /* filled in from BEGIN */
	next_bad(&st, COMMIT_MSG(0x51), "commit LSN is not begin's final LSN");
	next_ok(&st, COMMIT_MSG(0x50), &m, &sc);
	ck_assert_uint_eq(m.ev.xid, 7);
	ck_assert(!st.in_txn);

	next_ok(&st, B('S', 0, 0, 0, 9, 1), &m, &sc);
	next_bad(&st, B('S', 0, 0, 0, 9, 0), "stream start inside");
	next_bad(&st, BEGIN_MSG(0x60), "begin inside");
	next_ok(&st, B('O', 0, 0, 0, 0, 0, 0, 0, 0, 'o', 0), &m, &sc);
	ck_assert_uint_eq(m.ev.xid, 9); /* origin in a chunk: the stream's xid */
	next_ok(&st, SINSERT_MSG, &m, &sc);
	ck_assert_uint_eq(m.ev.xid, 9);
	ck_assert_uint_eq(m.ev.row.relid, 1);
	next_ok(&st, B('E'), &m, &sc);
	next_bad(&st, INSERT_MSG, "change outside a transaction");
	next_bad(&st, SINSERT_MSG, "insert: expected 'N'"); /* xid first: no longer expected */
	next_ok(&st, B('A', 0, 0, 0, 9, 0, 0, 0, 10), &m, &sc);
	next_ok(&st,
		B('c', 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x70, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0,
		  0, 0, 0, 0, 0),
		&m, &sc);
	ck_assert(!st.in_stream && !st.in_txn);
	change_scratch_free(&sc);
}
END_TEST

/* --- framing and time ------------------------------------------------------------ */

START_TEST(test_frame_xlogdata)
{
	struct pgoutput_frame f;
	const char *err;
	const uint8_t w[] = {'w', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1,
			     0,	  0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 9, 'E'};
	ck_assert(pgoutput_parse_frame(w, sizeof(w), &f, &err));
	ck_assert_int_eq(f.type, 'w');
	ck_assert_uint_eq(f.wal_start, UINT64_C(0x100000002));
	ck_assert_uint_eq(f.wal_end, UINT64_C(0x100000003));
	ck_assert_int_eq(f.send_time_us, PGOUTPUT_PG_EPOCH_UNIX_US + 9);
	ck_assert_ptr_eq(f.data, w + 25);
	ck_assert_uint_eq(f.len, 1);
	ck_assert(!f.reply_requested);
	/* an empty payload is a framing matter of the decoder, not of 'w' */
	ck_assert(pgoutput_parse_frame(w, 25, &f, &err));
	ck_assert_uint_eq(f.len, 0);
	for (size_t n = 0; n < 25; n++)
		ck_assert(!pgoutput_parse_frame(w, n, &f, &err));
	ck_assert_str_eq(err, "truncated XLogData header");
}
END_TEST

START_TEST(test_frame_keepalive)
{
	struct pgoutput_frame f;
	const char *err;
	const uint8_t k[] = {'k',  0,	 0,    0,    0,	   0x12, 0x34, 0x56, 0x78, 0xff,
			     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1,    0};
	ck_assert(pgoutput_parse_frame(k, 18, &f, &err));
	ck_assert_int_eq(f.type, 'k');
	ck_assert_uint_eq(f.wal_end, UINT64_C(0x12345678));
	ck_assert_int_eq(f.send_time_us, PGOUTPUT_PG_EPOCH_UNIX_US - 1);
	ck_assert(f.reply_requested);
	ck_assert_ptr_null(f.data);
	ck_assert(!pgoutput_parse_frame(k, 19, &f, &err));
	ck_assert_str_eq(err, "trailing bytes after keepalive");
	for (size_t n = 1; n < 18; n++)
		ck_assert(!pgoutput_parse_frame(k, n, &f, &err));
	ck_assert_str_eq(err, "truncated keepalive");
	ck_assert(!pgoutput_parse_frame(k, 0, &f, &err));
	ck_assert_str_eq(err, "empty replication message");
	ck_assert(!pgoutput_parse_frame((const uint8_t *)"d", 1, &f, &err));
	ck_assert_str_eq(err, "unknown replication message type 'd'");
}
END_TEST

START_TEST(test_status_update)
{
	uint8_t out[PGOUTPUT_STATUS_LEN + 1];
	const uint8_t want[PGOUTPUT_STATUS_LEN] = {
	    'r', 0, 0, 0,    0x16, 0xb3, 0x74, 0xd8, 0x48, /* write 16/B374D848 */
	    0,	 0, 0, 0x16, 0xb3, 0x74, 0xd8, 0x40,	   /* flush */
	    0,	 0, 0, 0,    0,	   0,	 0,    0,	   /* apply: unknown */
	    0,	 0, 0, 0,    0x3b, 0x9a, 0xca, 0x00,	   /* 1000 s after 2000-01-01 */
	    1};
	memset(out, 0xee, sizeof(out));
	pgoutput_build_status(out, UINT64_C(0x16B374D848), UINT64_C(0x16B374D840), 0,
			      PGOUTPUT_PG_EPOCH_UNIX_US + INT64_C(1000000000), true);
	ck_assert_int_eq(memcmp(out, want, sizeof(want)), 0);
	ck_assert_int_eq(out[PGOUTPUT_STATUS_LEN], 0xee); /* nothing past 34 bytes */
	pgoutput_build_status(out, 1, 2, 3, PGOUTPUT_PG_EPOCH_UNIX_US, false);
	ck_assert_int_eq(out[33], 0);
	ck_assert_int_eq(out[32], 0);
	ck_assert_int_eq(out[24], 3);
}
END_TEST

START_TEST(test_epoch)
{
	ck_assert_int_eq(PGOUTPUT_PG_EPOCH_UNIX_US, INT64_C(946684800) * 1000000);
	ck_assert_int_eq(pgoutput_pg_to_unix_us(0), PGOUTPUT_PG_EPOCH_UNIX_US);
	ck_assert_int_eq(pgoutput_unix_to_pg_us(0), -PGOUTPUT_PG_EPOCH_UNIX_US);
	/* 2020-01-01 00:00 UTC */
	ck_assert_int_eq(pgoutput_pg_to_unix_us(INT64_C(631152000000000)), ORIGIN_TIME_US);
	ck_assert_int_eq(pgoutput_unix_to_pg_us(ORIGIN_TIME_US), INT64_C(631152000000000));
	for (int64_t t = -INT64_C(3000000000000000); t < INT64_C(3000000000000000);
	     t += INT64_C(123456789012345))
		ck_assert_int_eq(pgoutput_unix_to_pg_us(pgoutput_pg_to_unix_us(t)), t);
	/* PostgreSQL's +-infinity timestamps saturate instead of overflowing */
	ck_assert_int_eq(pgoutput_pg_to_unix_us(INT64_MAX), INT64_MAX);
	ck_assert_int_eq(pgoutput_unix_to_pg_us(INT64_MIN), INT64_MIN);
	ck_assert_int_eq(pgoutput_pg_to_unix_us(INT64_MIN), INT64_MIN + PGOUTPUT_PG_EPOCH_UNIX_US);
}
END_TEST

START_TEST(test_kind_names)
{
	ck_assert_str_eq(pgoutput_kind_name(PGO_STREAM_ABORT), "stream_abort");
	ck_assert_str_eq(pgoutput_kind_name(PGO__MAX), "unknown");
	for (int k = PGO_CHANGE; k < PGO__MAX; k++)
		ck_assert_str_ne(pgoutput_kind_name((enum pgoutput_kind)k), "unknown");
}
END_TEST

/* --- robustness ----------------------------------------------------------------- */

/* Touches every byte a successful decode points at, so ASan sees any overrun. */
static unsigned touch(const struct pgoutput_msg *m)
{
	unsigned sum = 0;
	const struct change_event *ev = &m->ev;
	switch (m->kind) {
	case PGO_CHANGE:
		switch (ev->kind) {
		case CHG_RELATION:
			sum += (unsigned)strlen(ev->rel.schema) + (unsigned)strlen(ev->rel.name);
			for (int i = 0; i < ev->rel.ncols; i++)
				sum += (unsigned)strlen(ev->rel.cols[i].name);
			break;
		case CHG_INSERT:
		case CHG_UPDATE:
		case CHG_DELETE:
			for (int t = 0; t < 2; t++) {
				const struct change_tuple *tp =
				    t ? &ev->row.new_tuple : &ev->row.old_tuple;
				for (int i = 0; i < tp->ncols; i++)
					for (uint32_t j = 0; j < tp->vals[i].len; j++)
						sum += (uint8_t)tp->vals[i].data[j];
			}
			break;
		case CHG_TRUNCATE:
			for (int i = 0; i < ev->truncate.nrelids; i++)
				sum += ev->truncate.relids[i];
			break;
		case CHG_ORIGIN:
			sum += (unsigned)strlen(ev->origin.name);
			break;
		default:
			break;
		}
		break;
	case PGO_TYPE:
		sum += (unsigned)strlen(m->type.schema) + (unsigned)strlen(m->type.name);
		break;
	case PGO_MESSAGE:
		sum += (unsigned)strlen(m->message.prefix);
		for (uint32_t j = 0; j < m->message.len; j++)
			sum += m->message.content[j];
		break;
	default:
		break;
	}
	return sum;
}

/* Decodes a private exact-size copy of b (so any overread hits ASan's redzone). */
static bool decode_copy(const uint8_t *b, size_t n, bool in_stream, struct change_scratch *sc,
			unsigned *sum)
{
	struct pgoutput_msg m;
	const char *err = NULL;
	uint8_t *copy = xmalloc(n);
	if (n)
		memcpy(copy, b, n);
	bool ok = pgoutput_decode(copy, n, in_stream, &m, sc, &err);
	if (ok)
		*sum += touch(&m);
	else
		ck_assert(err != NULL && err[0] != 0);
	free(copy);
	return ok;
}

START_TEST(test_fuzz_truncations)
{
	struct change_scratch sc = {0};
	struct pgoutput_frame f;
	const char *err;
	unsigned sum = 0;
	bool in_stream = false;
	size_t decodes = 0;

	for (size_t i = 0; i < ARRAY_LEN(pgfx_frames); i++) {
		const struct pgfx_frame *fx = &pgfx_frames[i];
		for (size_t n = 0; n < fx->len; n++) {
			uint8_t *copy = xmalloc(n ? n : 1);
			memcpy(copy, fx->data, n);
			if (pgoutput_parse_frame(copy, n, &f, &err))
				ck_assert_int_eq(fx->data[0],
						 'w'); /* only 'w' has a variable tail */
			free(copy);
		}
		ck_assert(pgoutput_parse_frame(fx->data, fx->len, &f, &err));
		if (f.type != 'w')
			continue;
		/* every strict prefix of a message is refused, in the right mode */
		for (size_t n = 0; n < f.len; n++) {
			ck_assert_msg(!decode_copy(f.data, n, in_stream, &sc, &sum),
				      "frame %zu: prefix %zu of %zu accepted", i, n, f.len);
			(void)decode_copy(f.data, n, !in_stream, &sc, &sum);
			decodes += 2;
		}
		ck_assert(decode_copy(f.data, f.len, in_stream, &sc, &sum));
		if (f.data[0] == 'S')
			in_stream = true;
		else if (f.data[0] == 'E')
			in_stream = false;
	}
	ck_assert_uint_gt(decodes, 10000);
	change_scratch_free(&sc);
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

START_TEST(test_fuzz_bitflips)
{
	struct change_scratch sc = {0};
	struct pgoutput_frame f;
	struct pgoutput_state st;
	struct pgoutput_msg m;
	const char *err;
	uint64_t seed = UINT64_C(0x9E3779B97F4A7C15);
	unsigned sum = 0;
	int accepted = 0, refused = 0;

	for (size_t i = 0; i < ARRAY_LEN(pgfx_frames); i++) {
		const struct pgfx_frame *fx = &pgfx_frames[i];
		for (int round = 0; round < 300; round++) {
			uint8_t *copy = xmalloc(fx->len);
			memcpy(copy, fx->data, fx->len);
			int flips = 1 + (int)(rnd(&seed) % 4);
			for (int k = 0; k < flips; k++) {
				size_t at = (size_t)(rnd(&seed) % fx->len);
				copy[at] ^= (uint8_t)(1u << (rnd(&seed) % 8));
			}
			if (pgoutput_parse_frame(copy, fx->len, &f, &err) && f.type == 'w') {
				for (int mode = 0; mode < 2; mode++) {
					uint8_t *inner = xmalloc(f.len ? f.len : 1);
					memcpy(inner, f.data, f.len);
					if (pgoutput_decode(inner, f.len, mode, &m, &sc, &err)) {
						sum += touch(&m);
						accepted++;
					} else {
						ck_assert(err != NULL && err[0] != 0);
						refused++;
					}
					/* the sequence checker must cope too */
					pgoutput_state_init(&st);
					st.in_stream = mode;
					if (pgoutput_next(&st, inner, f.len, &m, &sc, &err))
						sum += touch(&m);
					free(inner);
				}
			}
			free(copy);
		}
	}
	/* random garbage with every tag byte */
	for (int round = 0; round < 20000; round++) {
		size_t n = 1 + (size_t)(rnd(&seed) % 64);
		uint8_t *g = xmalloc(n);
		for (size_t j = 0; j < n; j++)
			g[j] = (uint8_t)rnd(&seed);
		if (rnd(&seed) % 2)
			g[0] = (uint8_t) "BCORYIUDTMSEcA"[rnd(&seed) % 14];
		if (n > 6 && rnd(&seed) % 2) { /* plausible small counts */
			g[5] = 0;
			g[6] = (uint8_t)(g[6] & 3);
		}
		if (pgoutput_decode(g, n, rnd(&seed) % 2, &m, &sc, &err))
			sum += touch(&m);
		free(g);
	}
	ck_assert_int_gt(accepted, 0);
	ck_assert_int_gt(refused, 0);
	change_scratch_free(&sc);
	(void)sum;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pgoutput");
	TCase *tc = tcase_create("fixtures");
	tcase_add_test(tc, test_fixture_frames);
	tcase_add_test(tc, test_fixture_relations);
	tcase_add_test(tc, test_fixture_transactions);
	tcase_add_test(tc, test_fixture_stream);
	tcase_add_test(tc, test_fixture_stream_xid_matters);
	suite_add_tcase(s, tc);

	tc = tcase_create("edge");
	tcase_add_test(tc, test_edge_zero_columns);
	tcase_add_test(tc, test_edge_values);
	tcase_add_test(tc, test_edge_stream_control);
	tcase_add_test(tc, test_edge_errors);
	tcase_add_test(tc, test_edge_no_huge_allocation);
	tcase_add_test(tc, test_sequence);
	suite_add_tcase(s, tc);

	tc = tcase_create("framing");
	tcase_add_test(tc, test_frame_xlogdata);
	tcase_add_test(tc, test_frame_keepalive);
	tcase_add_test(tc, test_status_update);
	tcase_add_test(tc, test_epoch);
	tcase_add_test(tc, test_kind_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("fuzz");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_fuzz_truncations);
	tcase_add_test(tc, test_fuzz_bitflips);
	suite_add_tcase(s, tc);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
