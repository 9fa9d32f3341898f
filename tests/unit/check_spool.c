/*
 * Unit tests for spool: ordered read-back across segment rollovers,
 * relations re-emitted at every segment start, the reader waiting for
 * sync, recovery from torn tails and unfinished transactions, release,
 * bounded memory for a 1-million-row transaction, streamed transactions
 * (spill) with aborted subtransactions.  Everything runs in a temporary
 * directory under ${TMPDIR:-/tmp} that each test removes.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "change.h"
#include "log.h"
#include "spool.h"
#include "util.h"

/* --- helpers ------------------------------------------------------------- */

static char *make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *t = xasprintf("%s/check_spool.XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(t));
	return t;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static char *spool_dir(const char *tmp)
{
	return xasprintf("%s/spool", tmp);
}

static struct spool *open_ok(const char *dir, uint64_t max_seg)
{
	struct spool_opts o = {.max_segment_bytes = max_seg};
	struct spool *sp = NULL;
	char *err = NULL;
	ck_assert_msg(spool_open(dir, &o, &sp, &err), "spool_open: %s", err);
	ck_assert_ptr_null(err);
	return sp;
}

/*
 * For hot loops: every passing ck_assert records its location through a
 * write(2) to the Check runner, which would dominate a million-row test.
 */
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ck_abort_msg(__VA_ARGS__);                                                 \
	} while (0)

#define APPEND(sp, ev)                                                                             \
	do {                                                                                       \
		char *err_ = NULL;                                                                 \
		CHECK(spool_append((sp), (ev), &err_), "append: %s", err_);                        \
	} while (0)
#define SYNC(sp)                                                                                   \
	do {                                                                                       \
		char *err_ = NULL;                                                                 \
		ck_assert_msg(spool_sync((sp), &err_), "sync: %s", err_);                          \
	} while (0)

static struct change_event ev_begin(uint64_t lsn)
{
	struct change_event ev = {.kind = CHG_BEGIN, .xid = (uint32_t)lsn};
	ev.begin.final_pos = pos_from_lsn(lsn);
	return ev;
}

static struct change_event ev_commit(uint64_t lsn)
{
	struct change_event ev = {.kind = CHG_COMMIT, .xid = (uint32_t)lsn};
	ev.commit.commit_pos = pos_from_lsn(lsn);
	ev.commit.end_pos = pos_from_lsn(lsn + 1);
	return ev;
}

static struct change_column test_cols[2] = {{"id", 20, -1, CHC_KEY}, {"payload", 25, -1, 0}};

static struct change_event ev_relation(uint32_t relid)
{
	struct change_event ev = {.kind = CHG_RELATION};
	ev.rel = (struct change_relation){.relid = relid,
					  .schema = "public",
					  .name = relid == 1 ? "one" : "other",
					  .replident = 'd',
					  .ncols = 2,
					  .cols = test_cols};
	return ev;
}

/* An INSERT of (id, "payload-<id>") with storage of its own. */
struct row {
	struct change_event ev;
	struct change_value vals[2];
	char id[24], payload[48];
};

static void mk_insert(struct row *r, uint32_t relid, uint64_t id, uint32_t xid)
{
	int n = snprintf(r->id, sizeof(r->id), "%" PRIu64, id);
	int m = snprintf(r->payload, sizeof(r->payload), "payload-%" PRIu64, id);
	r->vals[0] = (struct change_value){.kind = CHV_TEXT, .len = (uint32_t)n, .data = r->id};
	r->vals[1] =
	    (struct change_value){.kind = CHV_TEXT, .len = (uint32_t)m, .data = r->payload};
	r->ev = (struct change_event){.kind = CHG_INSERT, .xid = xid};
	r->ev.row.relid = relid;
	r->ev.row.new_tuple = (struct change_tuple){2, r->vals};
}

/* The id of an INSERT made by mk_insert(), checking its payload too. */
static uint64_t row_id(const struct change_event *ev)
{
	char buf[64];
	CHECK(ev->kind == CHG_INSERT && ev->row.new_tuple.ncols == 2, "not a test row: %s",
	      change_kind_name(ev->kind));
	const struct change_value *v = &ev->row.new_tuple.vals[0];
	CHECK(v->kind == CHV_TEXT && v->len < sizeof(buf), "bad id value");
	memcpy(buf, v->data, v->len);
	buf[v->len] = '\0';
	uint64_t id = strtoull(buf, NULL, 10);
	char expect[48];
	int m = snprintf(expect, sizeof(expect), "payload-%" PRIu64, id);
	CHECK(ev->row.new_tuple.vals[1].len == (uint32_t)m &&
		  memcmp(ev->row.new_tuple.vals[1].data, expect, (size_t)m) == 0,
	      "row %" PRIu64 ": bad payload", id);
	return id;
}

/* Transaction t (1-based) has commit LSN t*100 and rows t*1000 + [0, rows). */
static void write_txn(struct spool *sp, uint64_t t, int rows)
{
	struct change_event b = ev_begin(t * 100), c = ev_commit(t * 100);
	struct row r;
	APPEND(sp, &b);
	for (int i = 0; i < rows; i++) {
		mk_insert(&r, 1 + (uint32_t)(i % 2), t * 1000 + (uint64_t)i, (uint32_t)t);
		APPEND(sp, &r.ev);
	}
	APPEND(sp, &c);
}

static int next_ok(struct spool_reader *rd, struct change_event *ev, int timeout_ms)
{
	char *err = NULL;
	int r = spool_reader_next(rd, ev, timeout_ms, &err);
	CHECK(r >= 0, "reader: %s", err);
	return r;
}

/* What a reader saw: transactions in order, relations, rows. */
struct seen {
	uint64_t txns;	      /* COMMITs */
	uint64_t last_commit; /* commit LSN of the last COMMIT */
	uint64_t rows;
	uint64_t relations;
	uint64_t bad; /* rows not matching their transaction */
	bool in_txn;
	uint64_t cur;	 /* current transaction number */
	int expect_rows; /* rows per transaction, -1: do not check */
	int rows_in_txn;
};

/* Reads until nothing arrives for timeout_ms, checking transaction structure. */
static void read_all(struct spool_reader *rd, struct seen *s, int timeout_ms)
{
	struct change_event ev;
	while (next_ok(rd, &ev, timeout_ms) == 1) {
		switch (ev.kind) {
		case CHG_RELATION:
			s->relations++;
			break;
		case CHG_BEGIN:
			ck_assert(!s->in_txn);
			s->in_txn = true;
			s->cur = ev.begin.final_pos.lsn / 100;
			s->rows_in_txn = 0;
			break;
		case CHG_INSERT:
			ck_assert(s->in_txn);
			if (row_id(&ev) / 1000 != s->cur)
				s->bad++;
			s->rows++;
			s->rows_in_txn++;
			break;
		case CHG_COMMIT:
			ck_assert(s->in_txn);
			ck_assert_uint_eq(ev.commit.commit_pos.lsn, s->cur * 100);
			ck_assert_uint_gt(ev.commit.commit_pos.lsn, s->last_commit);
			if (s->expect_rows >= 0)
				ck_assert_int_eq(s->rows_in_txn, s->expect_rows);
			s->last_commit = ev.commit.commit_pos.lsn;
			s->in_txn = false;
			s->txns++;
			break;
		default:
			ck_abort_msg("unexpected %s", change_kind_name(ev.kind));
		}
	}
}

static size_t count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);
		if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static uint64_t durable_lsn(struct spool *sp)
{
	struct pos p = spool_durable_pos(sp);
	return p.kind == POS_NONE ? 0 : p.lsn;
}

/* --- basic operation ----------------------------------------------------- */

START_TEST(test_append_read_rollover)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 4096);
	struct spool_reader *rd;
	struct change_event r1 = ev_relation(1), r2 = ev_relation(2);
	char *err;
	struct spool_stats st;

	struct pos d0 = spool_durable_pos(sp);
	ck_assert(pos_is_none(&d0));
	APPEND(sp, &r1);
	APPEND(sp, &r2);
	for (uint64_t t = 1; t <= 200; t++) {
		write_txn(sp, t, 5);
		SYNC(sp);
		ck_assert_uint_eq(durable_lsn(sp), t * 100 + 1);
	}
	spool_stats(sp, &st);
	ck_assert_uint_gt(st.segments, 8);
	ck_assert_uint_eq(st.segments, count_files(dir, ".spool"));
	ck_assert_uint_gt(st.bytes_on_disk, 200 * 5 * 20);

	ck_assert_msg(spool_reader_open(sp, &rd, &err), "%s", err);
	struct spool_reader *rd2;
	ck_assert(!spool_reader_open(sp, &rd2, &err));
	ck_assert_ptr_nonnull(strstr(err, "a reader is already open"));
	free(err);
	struct seen s = {.expect_rows = 5};
	read_all(rd, &s, 0);
	ck_assert_uint_eq(s.txns, 200);
	ck_assert_uint_eq(s.rows, 1000);
	ck_assert_uint_eq(s.bad, 0);
	/* two relations, plus both again at the start of every later segment */
	ck_assert_uint_eq(s.relations, 2 + 2 * (st.segments - 1));
	spool_stats(sp, &st);
	ck_assert_uint_eq(st.records_read, st.records_written);
	spool_reader_close(rd);
	spool_close(sp);

	/* reopen: everything is still there and nothing was truncated */
	sp = open_ok(dir, 4096);
	spool_stats(sp, &st);
	ck_assert_uint_eq(st.truncated_bytes, 0);
	ck_assert_uint_eq(durable_lsn(sp), 200 * 100 + 1);
	ck_assert(spool_reader_open(sp, &rd, &err));
	struct seen s2 = {.expect_rows = 5};
	read_all(rd, &s2, 0);
	ck_assert_uint_eq(s2.txns, 200);
	/* the writer continues after a reopen */
	write_txn(sp, 201, 3);
	SYNC(sp);
	s2.expect_rows = 3;
	read_all(rd, &s2, 100);
	ck_assert_uint_eq(s2.txns, 201);
	spool_reader_close(rd);
	spool_close(sp);
	free(dir);
	rm_rf(tmp);
}
END_TEST

/* Parses a segment file directly: the header frame, then the first events. */
static void check_segment_starts_with_relations(const char *path, int nrels)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	uint8_t hdr[8];
	struct change_scratch scratch = {0};
	for (int i = 0; i <= nrels; i++) {
		ck_assert_uint_eq(fread(hdr, 1, 8, f), 8);
		uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
			       (uint32_t)hdr[3] << 24;
		uint8_t *p = xmalloc(len);
		ck_assert_uint_eq(fread(p, 1, len, f), len);
		if (i == 0) {
			ck_assert(memcmp(p, "MIGDSPL\x01", 8) == 0);
		} else {
			struct change_event ev;
			const char *why;
			ck_assert_msg(change_decode(p, len, &ev, &scratch, &why), "%s", why);
			ck_assert_msg(ev.kind == CHG_RELATION, "%s: frame %d is %s", path, i,
				      change_kind_name(ev.kind));
		}
		free(p);
	}
	change_scratch_free(&scratch);
	fclose(f);
}

START_TEST(test_relations_reemitted_at_segment_start)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 2048);
	struct change_event r1 = ev_relation(1), r2 = ev_relation(2);
	struct spool_reader *rd;
	char *err;
	unsigned ndel;

	APPEND(sp, &r1);
	write_txn(sp, 1, 1); /* rows alternate relids 1, 2: only 1 so far */
	APPEND(sp, &r2);
	for (uint64_t t = 2; t <= 60; t++)
		write_txn(sp, t, 4);
	SYNC(sp);
	struct spool_stats st;
	spool_stats(sp, &st);
	ck_assert_uint_gt(st.segments, 5);
	for (uint64_t seq = 2; seq <= st.segments; seq++) {
		char *path = xasprintf("%s/%016" PRIX64 ".spool", dir, seq);
		check_segment_starts_with_relations(path, 2);
		free(path);
	}
	/* a reader starting at a later segment learns both relations first */
	struct pos applied = pos_from_lsn(30 * 100 + 1);
	ck_assert(spool_release(sp, &applied, &ndel, &err));
	ck_assert_uint_gt(ndel, 0);
	ck_assert(spool_reader_open(sp, &rd, &err));
	struct change_event ev;
	bool rel_seen[3] = {false};
	while (next_ok(rd, &ev, 0) == 1 && ev.kind == CHG_RELATION)
		rel_seen[ev.rel.relid] = true;
	ck_assert(rel_seen[1] && rel_seen[2]);
	ck_assert_str_eq(change_kind_name(ev.kind), "begin");
	spool_reader_close(rd);
	spool_close(sp);
	free(dir);
	rm_rf(tmp);
}
END_TEST

struct syncer {
	struct spool *sp;
	int delay_ms;
};

static void *sync_later(void *arg)
{
	struct syncer *s = arg;
	char *err = NULL;
	struct timespec ts = {s->delay_ms / 1000, (long)(s->delay_ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
	if (!spool_sync(s->sp, &err))
		return err;
	return NULL;
}

START_TEST(test_reader_waits_for_sync)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 0);
	struct spool_reader *rd;
	struct change_event ev;
	char *err;

	/* a reader opened on an empty spool */
	ck_assert(spool_reader_open(sp, &rd, &err));
	ck_assert_int_eq(next_ok(rd, &ev, 0), 0);
	write_txn(sp, 1, 3);
	/* appended but not synced: invisible */
	int64_t t0 = now_mono_usec();
	ck_assert_int_eq(next_ok(rd, &ev, 100), 0);
	ck_assert_int_ge(now_mono_usec() - t0, 90000);
	ck_assert_uint_eq(durable_lsn(sp), 0);

	pthread_t th;
	struct syncer sy = {sp, 200};
	pthread_create(&th, NULL, sync_later, &sy);
	t0 = now_mono_usec();
	ck_assert_int_eq(next_ok(rd, &ev, 10000), 1);
	int64_t waited = now_mono_usec() - t0;
	void *terr;
	pthread_join(th, &terr);
	ck_assert_ptr_null(terr);
	ck_assert_int_eq(ev.kind, CHG_BEGIN);
	ck_assert_int_ge(waited, 150000);
	ck_assert_int_lt(waited, 5000000);
	struct seen s = {.in_txn = true, .cur = 1, .expect_rows = 3};
	read_all(rd, &s, 0);
	ck_assert_uint_eq(s.txns, 1);

	/* a partial transaction that is synced is readable; its COMMIT only after the next sync */
	struct change_event b = ev_begin(200), c = ev_commit(200);
	struct row r;
	APPEND(sp, &b);
	mk_insert(&r, 1, 2000, 2);
	APPEND(sp, &r.ev);
	SYNC(sp);
	ck_assert_uint_eq(durable_lsn(sp), 101);
	ck_assert_int_eq(next_ok(rd, &ev, 0), 1);
	ck_assert_int_eq(ev.kind, CHG_BEGIN);
	ck_assert_int_eq(next_ok(rd, &ev, 0), 1);
	ck_assert_int_eq(ev.kind, CHG_INSERT);
	ck_assert_int_eq(next_ok(rd, &ev, 0), 0);
	APPEND(sp, &c);
	ck_assert_int_eq(next_ok(rd, &ev, 0), 0);
	SYNC(sp);
	ck_assert_int_eq(next_ok(rd, &ev, 0), 1);
	ck_assert_int_eq(ev.kind, CHG_COMMIT);
	ck_assert_uint_eq(durable_lsn(sp), 201);
	spool_reader_close(rd);
	spool_close(sp);
	free(dir);
	rm_rf(tmp);
}
END_TEST

/* A writer thread streaming transactions while the reader applies and releases. */
struct stream_args {
	struct spool *sp;
	uint64_t ntxn;
};

static void *stream_writer(void *arg)
{
	struct stream_args *a = arg;
	for (uint64_t t = 1; t <= a->ntxn; t++) {
		write_txn(a->sp, t, (int)(t % 7));
		if (t % 3 == 0 || t == a->ntxn)
			SYNC(a->sp);
	}
	return NULL;
}

START_TEST(test_concurrent_writer_reader_release)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 8192);
	struct spool_reader *rd;
	struct change_event ev;
	char *err;
	struct change_event r1 = ev_relation(1), r2 = ev_relation(2);
	uint64_t txns = 0, last = 0, rows = 0;

	APPEND(sp, &r1);
	APPEND(sp, &r2);
	ck_assert(spool_reader_open(sp, &rd, &err));
	struct stream_args a = {sp, 3000};
	pthread_t th;
	pthread_create(&th, NULL, stream_writer, &a);
	while (txns < a.ntxn) {
		int r = next_ok(rd, &ev, 5000);
		ck_assert_int_eq(r, 1);
		if (ev.kind == CHG_INSERT) {
			ck_assert_uint_eq(row_id(&ev) / 1000, txns + 1);
			rows++;
		}
		if (ev.kind == CHG_COMMIT) {
			ck_assert_uint_eq(ev.commit.commit_pos.lsn, ++txns * 100);
			last = ev.commit.end_pos.lsn;
			if (txns % 50 == 0) {
				struct pos applied = pos_from_lsn(last);
				ck_assert(spool_release(sp, &applied, NULL, &err));
			}
		}
	}
	pthread_join(th, NULL);
	struct pos applied = pos_from_lsn(last);
	ck_assert(spool_release(sp, &applied, NULL, &err));
	struct spool_stats st;
	spool_stats(sp, &st);
	ck_assert_uint_le(st.segments, 2);
	ck_assert_uint_eq(st.segments, count_files(dir, ".spool"));
	uint64_t expect_rows = 0;
	for (uint64_t t = 1; t <= a.ntxn; t++)
		expect_rows += t % 7;
	ck_assert_uint_eq(rows, expect_rows);
	spool_reader_close(rd);
	spool_close(sp);
	free(dir);
	rm_rf(tmp);
}
END_TEST

/* --- recovery ------------------------------------------------------------ */

/* A saved copy of a spool directory's segment files. */
struct snapshot {
	size_t n;
	char *name[64];
	uint8_t *data[64];
	size_t len[64];
};

static void snap_take(const char *dir, struct snapshot *s)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	memset(s, 0, sizeof(*s));
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".spool") == NULL)
			continue;
		ck_assert(s->n < 64);
		char *path = xasprintf("%s/%s", dir, de->d_name);
		FILE *f = fopen(path, "rb");
		struct stat st;
		ck_assert_int_eq(fstat(fileno(f), &st), 0);
		s->name[s->n] = xstrdup(de->d_name);
		s->len[s->n] = (size_t)st.st_size;
		s->data[s->n] = xmalloc(s->len[s->n]);
		ck_assert_uint_eq(fread(s->data[s->n], 1, s->len[s->n], f), s->len[s->n]);
		fclose(f);
		free(path);
		s->n++;
	}
	closedir(d);
}

/* Restores the snapshot; returns the index of the newest segment. */
static size_t snap_restore(const char *dir, const struct snapshot *s)
{
	size_t newest = 0;
	for (size_t i = 0; i < s->n; i++) {
		char *path = xasprintf("%s/%s", dir, s->name[i]);
		FILE *f = fopen(path, "wb");
		ck_assert_uint_eq(fwrite(s->data[i], 1, s->len[i], f), s->len[i]);
		fclose(f);
		free(path);
		if (strcmp(s->name[i], s->name[newest]) > 0)
			newest = i;
	}
	return newest;
}

static void snap_free(struct snapshot *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->name[i]);
		free(s->data[i]);
	}
}

/* Commit LSNs of the COMMIT frames in a segment image, with their end offsets. */
static size_t commits_in(const uint8_t *p, size_t len, uint64_t *lsn, size_t *end, size_t max)
{
	size_t off = 0, n = 0;
	struct change_scratch scratch = {0};
	bool first = true;
	while (off + 8 <= len) {
		uint32_t l = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
			     (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
		struct change_event ev;
		const char *why;
		if (!first && change_decode(p + off + 8, l, &ev, &scratch, &why) &&
		    ev.kind == CHG_COMMIT) {
			ck_assert(n < max);
			lsn[n] = ev.commit.commit_pos.lsn;
			end[n++] = off + 8 + l;
		}
		first = false;
		off += 8 + l;
	}
	change_scratch_free(&scratch);
	return n;
}

START_TEST(test_torn_tail_recovery)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 3000);
	struct change_event r1 = ev_relation(1), r2 = ev_relation(2);
	struct snapshot snap;
	uint64_t lsn[256];
	size_t end[256];
	char *err;

	APPEND(sp, &r1);
	APPEND(sp, &r2);
	for (uint64_t t = 1; t <= 40; t++) {
		write_txn(sp, t, (int)(t % 5) * 3); /* some transactions span segments */
		SYNC(sp);
	}
	spool_close(sp);
	snap_take(dir, &snap);
	ck_assert_uint_ge(snap.n, 4);

	srand(12345);
	for (int iter = 0; iter < 300; iter++) {
		size_t newest = snap_restore(dir, &snap);
		const uint8_t *img = snap.data[newest];
		size_t len = snap.len[newest];
		char *path = xasprintf("%s/%s", dir, snap.name[newest]);
		size_t damage = (size_t)rand() % len;
		if (iter % 2 == 0) {
			ck_assert_int_eq(truncate(path, (off_t)damage), 0);
		} else {
			int fd = open(path, O_WRONLY);
			uint8_t b = img[damage] ^ (uint8_t)(1 + rand() % 255);
			ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)damage), 1);
			close(fd);
		}
		free(path);

		/* expected: the last COMMIT that ends before the damage, in any segment */
		size_t nc = commits_in(img, len, lsn, end, 256);
		uint64_t expect = 0;
		for (size_t i = 0; i < nc; i++)
			if (end[i] <= damage)
				expect = lsn[i];
		if (expect == 0) /* none survived in the newest segment: the newest before it */
			for (size_t s = 0; s < snap.n; s++) {
				if (s == newest || strcmp(snap.name[s], snap.name[newest]) > 0)
					continue;
				size_t k = commits_in(snap.data[s], snap.len[s], lsn, end, 256);
				if (k > 0 && lsn[k - 1] > expect)
					expect = lsn[k - 1];
			}

		sp = open_ok(dir, 3000);
		ck_assert_uint_eq(durable_lsn(sp), expect ? expect + 1 : 0);
		struct spool_reader *rd;
		ck_assert(spool_reader_open(sp, &rd, &err));
		struct seen s = {.expect_rows = -1};
		read_all(rd, &s, 0);
		ck_assert(!s.in_txn); /* nothing after the last COMMIT */
		ck_assert_uint_eq(s.last_commit, expect);
		ck_assert_uint_eq(s.txns, expect / 100);
		ck_assert_uint_eq(s.bad, 0);
		/* and the writer goes on from there */
		write_txn(sp, expect / 100 + 1, 2);
		SYNC(sp);
		read_all(rd, &s, 0);
		ck_assert_uint_eq(s.txns, expect / 100 + 1);
		spool_reader_close(rd);
		spool_close(sp);
		/* clean the directory for the next round */
		DIR *d = opendir(dir);
		struct dirent *de;
		while ((de = readdir(d)) != NULL)
			if (strstr(de->d_name, ".spool")) {
				char *p = xasprintf("%s/%s", dir, de->d_name);
				unlink(p);
				free(p);
			}
		closedir(d);
	}
	snap_free(&snap);
	free(dir);
	rm_rf(tmp);
}
END_TEST

START_TEST(test_unfinished_transaction_dropped)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 4096);
	struct change_event r1 = ev_relation(1), r2 = ev_relation(2);
	struct spool_stats st;
	struct row r;
	char *err;

	APPEND(sp, &r1);
	APPEND(sp, &r2);
	for (uint64_t t = 1; t <= 3; t++)
		write_txn(sp, t, 2);
	SYNC(sp);
	spool_stats(sp, &st);
	uint64_t segs_before = st.segments;

	/* a transaction that is written (and synced) but never commits, across segments */
	struct change_event b = ev_begin(400);
	APPEND(sp, &b);
	for (int i = 0; i < 500; i++) {
		mk_insert(&r, 1, 4000 + (uint64_t)i, 4);
		APPEND(sp, &r.ev);
	}
	SYNC(sp);
	spool_stats(sp, &st);
	ck_assert_uint_gt(st.segments, segs_before + 3);
	spool_close(sp);

	sp = open_ok(dir, 4096);
	spool_stats(sp, &st);
	ck_assert_uint_eq(st.segments, segs_before);
	ck_assert_uint_eq(count_files(dir, ".spool"), segs_before);
	ck_assert_uint_gt(st.truncated_bytes, 500 * 20);
	ck_assert_uint_eq(durable_lsn(sp), 301);
	struct spool_reader *rd;
	ck_assert(spool_reader_open(sp, &rd, &err));
	struct seen s = {.expect_rows = 2};
	read_all(rd, &s, 0);
	ck_assert_uint_eq(s.txns, 3);
	ck_assert(!s.in_txn);
	/* the source sends transaction 4 again */
	write_txn(sp, 4, 2);
	SYNC(sp);
	read_all(rd, &s, 0);
	ck_assert_uint_eq(s.txns, 4);
	spool_reader_close(rd);
	spool_close(sp);

	/* an unfinished transaction inside the one segment there is */
	sp = open_ok(dir, 1 << 20);
	APPEND(sp, &b);
	SYNC(sp);
	spool_close(sp);
	sp = open_ok(dir, 1 << 20);
	ck_assert_uint_eq(durable_lsn(sp), 401);
	spool_stats(sp, &st);
	ck_assert_uint_gt(st.truncated_bytes, 0);
	spool_close(sp);
	free(dir);
	rm_rf(tmp);
}
END_TEST

START_TEST(test_leftover_spill_and_lock)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 0), *sp2 = NULL;
	char *err = NULL;

	ck_assert(!spool_open(dir, NULL, &sp2, &err));
	ck_assert_ptr_null(sp2);
	ck_assert_ptr_nonnull(strstr(err, "in use by another process"));
	free(err);
	spool_close(sp);

	char *spill = xasprintf("%s/spill/77.spill", dir);
	FILE *f = fopen(spill, "w");
	fputs("junk", f);
	fclose(f);
	sp = open_ok(dir, 0);
	ck_assert_int_ne(access(spill, F_OK), 0);
	spool_close(sp);
	free(spill);

	/* errors name the file and the errno text */
	char *bad = xasprintf("%s/file", tmp);
	f = fopen(bad, "w");
	fclose(f);
	char *under = xasprintf("%s/spool", bad);
	ck_assert(!spool_open(under, NULL, &sp2, &err));
	ck_assert_msg(strstr(err, under) && strstr(err, "Not a directory"), "%s", err);
	free(err);
	free(under);
	free(bad);
	free(dir);
	rm_rf(tmp);
}
END_TEST

START_TEST(test_order_is_enforced)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 0);
	struct change_event c = ev_commit(100), b = ev_begin(100);
	struct row r;
	char *err = NULL;

	ck_assert(!spool_append(sp, &c, &err));
	ck_assert_ptr_nonnull(strstr(err, "BUG: spool_append: commit outside a transaction"));
	free(err);
	mk_insert(&r, 1, 1, 1);
	ck_assert(!spool_append(sp, &r.ev, &err));
	free(err);
	APPEND(sp, &b);
	ck_assert(!spool_append(sp, &b, &err));
	ck_assert_ptr_nonnull(strstr(err, "begin inside"));
	free(err);
	/* a refused event does not poison the spool */
	APPEND(sp, &c);
	SYNC(sp);
	ck_assert_uint_eq(durable_lsn(sp), 101);
	spool_close(sp);
	free(dir);
	rm_rf(tmp);
}
END_TEST

/* Damage in a segment recovery does not read is reported by the reader, not skipped. */
START_TEST(test_corruption_in_old_segment_is_reported)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 2048);
	struct spool_reader *rd;
	struct change_event ev;
	char *err = NULL;

	for (uint64_t t = 1; t <= 30; t++)
		write_txn(sp, t, 3);
	SYNC(sp);
	spool_close(sp);

	/* flip a byte in the last record of the first segment */
	char *path = xasprintf("%s/%016" PRIX64 ".spool", dir, (uint64_t)1);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	int fd = open(path, O_RDWR);
	uint8_t b;
	ck_assert_int_eq(pread(fd, &b, 1, st.st_size - 2), 1);
	b ^= 0x40;
	ck_assert_int_eq(pwrite(fd, &b, 1, st.st_size - 2), 1);
	close(fd);

	sp = open_ok(dir, 2048);
	ck_assert(spool_reader_open(sp, &rd, &err));
	int r;
	while ((r = spool_reader_next(rd, &ev, 0, &err)) == 1)
		;
	ck_assert_int_eq(r, -1);
	ck_assert_msg(strstr(err, path) && strstr(err, "crc mismatch"), "%s", err);
	free(err);
	spool_reader_close(rd);
	spool_close(sp);

	/* a damaged header of a segment that is not the last refuses the open */
	fd = open(path, O_RDWR);
	ck_assert_int_eq(pwrite(fd, "XX", 2, 9), 2);
	close(fd);
	struct spool *sp2 = NULL;
	ck_assert(!spool_open(dir, NULL, &sp2, &err));
	ck_assert_msg(strstr(err, path) && strstr(err, "bad segment header"), "%s", err);
	free(err);
	free(path);
	free(dir);
	rm_rf(tmp);
}
END_TEST

/* A write error (here EFBIG from RLIMIT_FSIZE) names the file and stops the writer. */
START_TEST(test_write_error_stops_writer)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 1 << 20);
	struct rlimit old, lim;
	char *err = NULL;
	struct row r;

	write_txn(sp, 1, 10);
	SYNC(sp);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 64 << 10;
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);

	struct change_event b = ev_begin(200);
	APPEND(sp, &b);
	bool ok = true;
	for (uint64_t i = 0; i < 20000 && ok; i++) {
		mk_insert(&r, 1, 2000 + i, 2);
		ok = spool_append(sp, &r.ev, &err);
	}
	if (ok)
		ok = spool_sync(sp, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, prev);
	ck_assert(!ok);
	ck_assert_msg(strstr(err, "0000000000000001.spool") && strstr(err, "File too large"), "%s",
		      err);
	free(err);
	ck_assert(!spool_sync(sp, &err)); /* refused from now on */
	ck_assert_ptr_nonnull(strstr(err, "unusable after an error"));
	free(err);
	ck_assert_uint_eq(durable_lsn(sp), 101);
	spool_close(sp);

	sp = open_ok(dir, 1 << 20);
	ck_assert_uint_eq(durable_lsn(sp), 101);
	struct spool_reader *rd;
	ck_assert(spool_reader_open(sp, &rd, &err));
	struct seen s = {.expect_rows = 10};
	read_all(rd, &s, 0);
	ck_assert_uint_eq(s.txns, 1);
	spool_reader_close(rd);
	spool_close(sp);
	free(dir);
	rm_rf(tmp);
}
END_TEST

/* --- release ------------------------------------------------------------- */

static int scenario_rows(uint64_t t);

/* Writes the release scenario: transactions of varied size, some spanning segments. */
static void write_release_scenario(struct spool *sp)
{
	struct change_event r1 = ev_relation(1), r2 = ev_relation(2);
	APPEND(sp, &r1);
	APPEND(sp, &r2);
	for (uint64_t t = 1; t <= 60; t++) {
		write_txn(sp, t, scenario_rows(t));
		SYNC(sp);
	}
}

static int scenario_rows(uint64_t t)
{
	return t % 10 == 0 ? 120 : (int)(t % 4);
}

/* Sequence numbers of the remaining segments as a bit set (they are < 64 here). */
static uint64_t remaining_segments(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t set = 0;
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".spool") == NULL)
			continue;
		uint64_t seq = strtoull(de->d_name, NULL, 16);
		ck_assert_uint_lt(seq, 64);
		set |= 1ull << seq;
	}
	closedir(d);
	return set;
}

/*
 * The test's own reading of the release rule, from the files: rel[seq] is
 * the end LSN of the COMMIT of the last transaction with a record in seq.
 * Returns the number of segments (numbered 1..n).
 */
static uint64_t expected_release(const char *dir, uint64_t *rel)
{
	struct change_scratch scratch = {0};
	uint64_t open_from = 0, last_end = 0, seq;
	bool in_txn = false;

	for (seq = 1; seq < 64; seq++) {
		char *path = xasprintf("%s/%016" PRIX64 ".spool", dir, seq);
		FILE *f = fopen(path, "rb");
		free(path);
		if (f == NULL)
			break;
		uint8_t hdr[8];
		bool first = true;
		rel[seq] = 0;
		while (fread(hdr, 1, 8, f) == 8) {
			uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 |
				       (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
			uint8_t *p = xmalloc(len);
			ck_assert_uint_eq(fread(p, 1, len, f), len);
			struct change_event ev;
			const char *why;
			if (!first) {
				ck_assert(change_decode(p, len, &ev, &scratch, &why));
				if (ev.kind == CHG_BEGIN) {
					in_txn = true;
					open_from = seq;
				} else if (ev.kind == CHG_COMMIT) {
					last_end = ev.commit.end_pos.lsn;
					for (uint64_t s = open_from; s <= seq; s++)
						rel[s] = last_end;
					in_txn = false;
				}
			}
			first = false;
			free(p);
		}
		fclose(f);
		if (!in_txn && rel[seq] == 0)
			rel[seq] = last_end;
	}
	change_scratch_free(&scratch);
	return seq - 1;
}

START_TEST(test_release_deletes_only_applied_segments)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	char *dir2 = xasprintf("%s/spool2", tmp);
	struct spool *sp = open_ok(dir, 2500);
	struct spool_reader *rd;
	struct spool_stats st;
	uint64_t rel[64];
	unsigned ndel;
	char *err;

	write_release_scenario(sp);
	spool_stats(sp, &st);
	ck_assert_uint_gt(st.segments, 10);
	ck_assert_uint_lt(st.segments, 64);
	uint64_t nseg = expected_release(dir, rel);
	ck_assert_uint_eq(nseg, st.segments);

	/* nothing applied: nothing goes */
	struct pos none = pos_none();
	ck_assert(spool_release(sp, &none, &ndel, &err));
	ck_assert_uint_eq(ndel, 0);

	/* the reader pins its segment: positioned at the oldest, nothing can go */
	ck_assert(spool_reader_open(sp, &rd, &err));
	struct pos all = pos_from_lsn(UINT64_MAX);
	ck_assert(spool_release(sp, &all, &ndel, &err));
	ck_assert_uint_eq(ndel, 0);
	spool_reader_close(rd);

	for (uint64_t k = 0; k <= 61; k++) {
		struct pos applied = pos_from_lsn(k * 100 + 1);
		ck_assert(spool_release(sp, &applied, &ndel, &err));
		uint64_t left = remaining_segments(dir);

		/* exactly the prefix of segments whose transactions are all applied went */
		uint64_t first = 1;
		while (first < nseg && rel[first] <= k * 100 + 1)
			first++;
		uint64_t expect = 0;
		for (uint64_t q = first; q <= nseg; q++)
			expect |= 1ull << q;
		ck_assert_msg(left == expect, "k=%" PRIu64 ": kept %" PRIx64 ", expected %" PRIx64,
			      k, left, expect);

		/* every transaction after k is still complete */
		ck_assert(spool_reader_open(sp, &rd, &err));
		struct change_event ev;
		uint64_t cur = 0, complete = 0;
		int rows = 0;
		bool in_txn = false;
		while (next_ok(rd, &ev, 0) == 1) {
			if (ev.kind == CHG_BEGIN) {
				in_txn = true;
				cur = ev.begin.final_pos.lsn / 100;
				rows = 0;
			} else if (ev.kind == CHG_INSERT) {
				if (!in_txn) /* the tail of a transaction cut in half */
					ck_assert_uint_le(row_id(&ev) / 1000, k);
				rows++;
			} else if (ev.kind == CHG_COMMIT && in_txn) {
				ck_assert_int_eq(rows, scenario_rows(cur));
				if (cur > k)
					complete++;
				in_txn = false;
			}
		}
		spool_reader_close(rd);
		ck_assert_uint_eq(complete, k >= 60 ? 0 : 60 - k);

		/* the same content, reopened (bookkeeping rebuilt from headers), releases the same
		 */
		rm_rf(xstrdup(dir2));
		struct spool *sp2 = open_ok(dir2, 2500);
		write_release_scenario(sp2);
		spool_close(sp2);
		sp2 = open_ok(dir2, 2500);
		ck_assert(spool_release(sp2, &applied, &ndel, &err));
		ck_assert_msg(remaining_segments(dir2) == left,
			      "k=%" PRIu64 ": reopened spool keeps %" PRIx64 ", live one %" PRIx64,
			      k, remaining_segments(dir2), left);
		spool_close(sp2);
	}
	spool_stats(sp, &st);
	ck_assert_uint_eq(st.segments, 1); /* only the writer's */
	ck_assert_uint_eq(st.segments, count_files(dir, ".spool"));
	spool_close(sp);
	free(dir);
	free(dir2);
	rm_rf(tmp);
}
END_TEST

/* A transaction spanning segments keeps them all until its COMMIT is applied. */
START_TEST(test_release_spanning_transaction)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 2048);
	struct spool_stats st;
	unsigned ndel;
	char *err;

	struct change_event r1 = ev_relation(1);
	APPEND(sp, &r1);
	write_txn(sp, 1, 1);
	write_txn(sp, 2, 300); /* many segments */
	write_txn(sp, 3, 1);
	SYNC(sp);
	spool_stats(sp, &st);
	uint64_t total = st.segments;
	ck_assert_uint_gt(total, 5);
	/* txn 1 applied: only txn 1's segment could go, but it holds the start of txn 2 */
	struct pos a1 = pos_from_lsn(101);
	ck_assert(spool_release(sp, &a1, &ndel, &err));
	ck_assert_uint_eq(ndel, 0);
	/* just before txn 2's commit: still nothing */
	struct pos a2m = pos_from_lsn(200);
	ck_assert(spool_release(sp, &a2m, &ndel, &err));
	ck_assert_uint_eq(ndel, 0);
	/* txn 2 applied: all its segments but the one shared with txn 3 (the writer's) */
	struct pos a2 = pos_from_lsn(201);
	ck_assert(spool_release(sp, &a2, &ndel, &err));
	ck_assert_uint_eq(ndel, total - 1);
	/*
	 * The remaining segment starts inside transaction 2: a new reader gets
	 * the relations, then skips to the next whole transaction.
	 */
	struct spool_reader *rd;
	struct change_event ev;
	ck_assert(spool_reader_open(sp, &rd, &err));
	ck_assert_int_eq(next_ok(rd, &ev, 0), 1);
	ck_assert_int_eq(ev.kind, CHG_RELATION);
	ck_assert_int_eq(next_ok(rd, &ev, 0), 1);
	ck_assert_int_eq(ev.kind, CHG_BEGIN);
	ck_assert_uint_eq(ev.begin.final_pos.lsn, 300);
	ck_assert_int_eq(next_ok(rd, &ev, 0), 1);
	ck_assert_uint_eq(row_id(&ev), 3000);
	ck_assert_int_eq(next_ok(rd, &ev, 0), 1);
	ck_assert_int_eq(ev.kind, CHG_COMMIT);
	ck_assert_int_eq(next_ok(rd, &ev, 0), 0);
	spool_reader_close(rd);
	spool_close(sp);
	free(dir);
	rm_rf(tmp);
}
END_TEST

/* --- bounded memory ------------------------------------------------------ */

static long maxrss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

START_TEST(test_million_row_transaction_bounded_memory)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	const char *env = getenv("MIGD_TEST_SPOOL_ROWS");
	uint64_t nrows = env ? strtoull(env, NULL, 10) : 1000000;
	struct spool *sp = open_ok(dir, 16u << 20);
	struct change_event r1 = ev_relation(1), r2 = ev_relation(2);
	struct change_event b = ev_begin(100), c = ev_commit(100);
	struct spool_reader *rd;
	struct row r;
	char *err;

	long before = maxrss_kib();
	APPEND(sp, &r1);
	APPEND(sp, &r2);
	APPEND(sp, &b);
	for (uint64_t i = 0; i < nrows; i++) {
		mk_insert(&r, 1 + (uint32_t)(i & 1), 1000 + i, 1);
		APPEND(sp, &r.ev);
	}
	APPEND(sp, &c);
	SYNC(sp);
	long after_write = maxrss_kib();

	ck_assert(spool_reader_open(sp, &rd, &err));
	struct change_event ev;
	uint64_t next = 1000, commits = 0;
	while (next_ok(rd, &ev, 0) == 1) {
		if (ev.kind == CHG_INSERT) {
			uint64_t id = row_id(&ev);
			CHECK(id == next, "row %" PRIu64 " where %" PRIu64 " was due", id, next);
			next++;
		}
		commits += ev.kind == CHG_COMMIT;
	}
	ck_assert_uint_eq(next - 1000, nrows);
	ck_assert_uint_eq(commits, 1);
	long after_read = maxrss_kib();

	struct spool_stats st;
	spool_stats(sp, &st);
	fprintf(stderr,
		"spool: %" PRIu64 "-row transaction: %" PRIu64 " bytes in %" PRIu64
		" segments; maxrss %ld KiB before, %ld after writing, %ld after reading\n",
		nrows, st.bytes_on_disk, st.segments, before, after_write, after_read);
	ck_assert_int_lt(after_read - before, 20 * 1024);
	spool_reader_close(rd);
	struct pos applied = pos_from_lsn(101);
	unsigned ndel;
	ck_assert(spool_release(sp, &applied, &ndel, &err));
	ck_assert_uint_eq(ndel, st.segments - 1);
	spool_close(sp);
	free(dir);
	rm_rf(tmp);
}
END_TEST

/* --- streamed transactions ----------------------------------------------- */

static void spill(struct spool *sp, uint32_t xid, uint32_t subxid, uint64_t id)
{
	struct row r;
	char *err = NULL;
	mk_insert(&r, 1, id, subxid);
	CHECK(spool_spill_append(sp, xid, &r.ev, &err), "%s", err);
}

START_TEST(test_spill_commit_skips_aborted_subxact)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 4096);
	struct spool_stats st;
	char *err = NULL;

	/* xid 100 at LSN 500 (rows 5000..), interleaved with xid 200 */
	for (uint64_t i = 0; i < 10; i++)
		spill(sp, 100, 100, 5000 + i);
	for (uint64_t i = 10; i < 20; i++)
		spill(sp, 100, 101, 5000 + i); /* will abort */
	struct change_event rel = ev_relation(2);
	rel.xid = 101; /* relations survive even in an aborted subtransaction */
	ck_assert(spool_spill_append(sp, 100, &rel, &err));
	for (uint64_t i = 0; i < 5; i++)
		spill(sp, 200, 200, 7000 + i);
	for (uint64_t i = 20; i < 30; i++)
		spill(sp, 100, 102, 5000 + i);
	ck_assert(spool_spill_abort(sp, 100, 101, &err));
	ck_assert(spool_spill_abort(sp, 100, 101, &err)); /* twice is harmless */
	for (uint64_t i = 30; i < 40; i++)
		spill(sp, 100, 100, 5000 + i);
	spool_stats(sp, &st);
	ck_assert_uint_eq(st.spill_files, 2);
	ck_assert_uint_gt(st.spill_bytes, 0);
	char *spilldir = xasprintf("%s/spill", dir);
	ck_assert_uint_eq(count_files(spilldir, ".spill"), 2);

	/* a BEGIN cannot be spilled */
	struct change_event bad = ev_begin(1);
	ck_assert(!spool_spill_append(sp, 100, &bad, &err));
	free(err);

	/* a normal transaction commits in between */
	write_txn(sp, 3, 2);
	struct change_event b = ev_begin(500), c = ev_commit(500);
	ck_assert_msg(spool_spill_commit(sp, 100, &b, &c, &err), "%s", err);
	struct change_event b2 = ev_begin(700), c2 = ev_commit(700);
	ck_assert_msg(spool_spill_commit(sp, 200, &b2, &c2, &err), "%s", err);
	SYNC(sp);
	spool_stats(sp, &st);
	ck_assert_uint_eq(st.spill_files, 0);
	ck_assert_uint_eq(st.spill_bytes, 0);
	ck_assert_uint_eq(count_files(spilldir, ".spill"), 0);
	free(spilldir);

	struct spool_reader *rd;
	ck_assert(spool_reader_open(sp, &rd, &err));
	struct change_event ev;
	uint64_t ids[64], n = 0, rels = 0;
	int commits = 0;
	while (next_ok(rd, &ev, 0) == 1) {
		if (ev.kind == CHG_INSERT) {
			ck_assert(n < 64);
			ids[n++] = row_id(&ev);
		}
		if (ev.kind == CHG_RELATION && ev.xid == 101)
			rels++;
		commits += ev.kind == CHG_COMMIT;
	}
	ck_assert_int_eq(commits, 3);
	ck_assert_uint_eq(rels, 1);
	/* txn 3: 3000, 3001; xid 100: 5000-5009, 5020-5039; xid 200: 7000-7004 */
	ck_assert_uint_eq(n, 2 + 30 + 5);
	ck_assert_uint_eq(ids[0], 3000);
	ck_assert_uint_eq(ids[1], 3001);
	for (uint64_t i = 0; i < 10; i++)
		ck_assert_uint_eq(ids[2 + i], 5000 + i);
	for (uint64_t i = 0; i < 20; i++)
		ck_assert_uint_eq(ids[12 + i], 5020 + i);
	for (uint64_t i = 0; i < 5; i++)
		ck_assert_uint_eq(ids[32 + i], 7000 + i);
	ck_assert_uint_eq(durable_lsn(sp), 701);
	spool_reader_close(rd);
	spool_close(sp);
	free(dir);
	rm_rf(tmp);
}
END_TEST

START_TEST(test_spill_whole_abort)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	struct spool *sp = open_ok(dir, 0);
	struct spool_stats st;
	char *err = NULL;
	char *spilldir = xasprintf("%s/spill", dir);

	ck_assert(spool_spill_abort(sp, 42, 42, &err)); /* never spilled: no-op */
	for (uint64_t i = 0; i < 100; i++)
		spill(sp, 300, i < 50 ? 300 : 301, 9000 + i);
	ck_assert_uint_eq(count_files(spilldir, ".spill"), 1);
	ck_assert(spool_spill_abort(sp, 300, 300, &err));
	ck_assert_uint_eq(count_files(spilldir, ".spill"), 0);
	spool_stats(sp, &st);
	ck_assert_uint_eq(st.spill_files, 0);
	ck_assert_uint_eq(st.spill_bytes, 0);

	/* a commit of a transaction with nothing spilled is just BEGIN, COMMIT */
	struct change_event b = ev_begin(300), c = ev_commit(300);
	ck_assert(spool_spill_commit(sp, 300, &b, &c, &err));
	SYNC(sp);
	struct spool_reader *rd;
	ck_assert(spool_reader_open(sp, &rd, &err));
	struct seen s = {.expect_rows = 0};
	read_all(rd, &s, 0);
	ck_assert_uint_eq(s.txns, 1);
	ck_assert_uint_eq(s.rows, 0);

	/* spills left at close are deleted */
	spill(sp, 400, 400, 1);
	spool_reader_close(rd);
	spool_close(sp);
	ck_assert_uint_eq(count_files(spilldir, ".spill"), 0);
	free(spilldir);
	free(dir);
	rm_rf(tmp);
}
END_TEST

START_TEST(test_spill_large_bounded_memory)
{
	char *tmp = make_tmpdir(), *dir = spool_dir(tmp);
	const char *env = getenv("MIGD_TEST_SPOOL_ROWS");
	uint64_t nrows = (env ? strtoull(env, NULL, 10) : 1000000) / 4;
	struct spool *sp = open_ok(dir, 16u << 20);
	char *err = NULL;

	long before = maxrss_kib();
	for (uint64_t i = 0; i < nrows; i++) {
		spill(sp, 900, i % 1000 == 999 ? (uint32_t)(1000 + i) : 900, 90000 + i);
		if (i % 1000 == 999)
			CHECK(spool_spill_abort(sp, 900, (uint32_t)(1000 + i), &err), "%s", err);
	}
	struct change_event b = ev_begin(900), c = ev_commit(900);
	ck_assert_msg(spool_spill_commit(sp, 900, &b, &c, &err), "%s", err);
	SYNC(sp);
	struct spool_reader *rd;
	ck_assert(spool_reader_open(sp, &rd, &err));
	struct change_event ev;
	uint64_t n = 0;
	while (next_ok(rd, &ev, 0) == 1)
		if (ev.kind == CHG_INSERT) {
			uint64_t id = row_id(&ev);
			CHECK((id - 90000) % 1000 != 999, "row %" PRIu64 " of an aborted subxact",
			      id);
			n++;
		}
	ck_assert_uint_eq(n, nrows - nrows / 1000);
	long after = maxrss_kib();
	fprintf(stderr,
		"spool: %" PRIu64 "-row streamed transaction: maxrss %ld KiB before, %ld after\n",
		nrows, before, after);
	ck_assert_int_lt(after - before, 20 * 1024);
	spool_reader_close(rd);
	spool_close(sp);
	free(dir);
	rm_rf(tmp);
}
END_TEST

int main(void)
{
	log_min_level = LOG_LVL_ERROR; /* recovery tests log a warning per truncation */
	Suite *s = suite_create("spool");
	TCase *tc = tcase_create("core");
	if (getenv("CK_DEFAULT_TIMEOUT") == NULL) /* make check sets it; valgrind runs raise it */
		tcase_set_timeout(tc, 120);
	/* first: with CK_FORK=no, ru_maxrss is a process-wide high-water mark */
	tcase_add_test(tc, test_million_row_transaction_bounded_memory);
	tcase_add_test(tc, test_spill_large_bounded_memory);
	tcase_add_test(tc, test_append_read_rollover);
	tcase_add_test(tc, test_relations_reemitted_at_segment_start);
	tcase_add_test(tc, test_reader_waits_for_sync);
	tcase_add_test(tc, test_concurrent_writer_reader_release);
	tcase_add_test(tc, test_torn_tail_recovery);
	tcase_add_test(tc, test_unfinished_transaction_dropped);
	tcase_add_test(tc, test_leftover_spill_and_lock);
	tcase_add_test(tc, test_order_is_enforced);
	tcase_add_test(tc, test_corruption_in_old_segment_is_reported);
	tcase_add_test(tc, test_write_error_stops_writer);
	tcase_add_test(tc, test_release_deletes_only_applied_segments);
	tcase_add_test(tc, test_release_spanning_transaction);
	tcase_add_test(tc, test_spill_commit_skips_aborted_subxact);
	tcase_add_test(tc, test_spill_whole_abort);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
