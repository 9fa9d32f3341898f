/*
 * spool: open and close, the writer, release and stats (see spool.h; the
 * on-disk format is in spool.h and spool_int.h, recovery at open in
 * spool_recover.c, the reader in spool_read.c, streamed transactions in
 * spool_spill.c).
 *
 * Release bookkeeping: each retained segment carries release_pos, the
 * end_pos of the COMMIT that closes the last transaction with a record in
 * it.  The writer fills it in when it leaves a segment between
 * transactions (the last COMMIT so far) or, for a segment it left in the
 * middle of a transaction, when that transaction's COMMIT is appended.
 * spool_open() rebuilds it from the segment headers (rebuild_release()).
 */
#include "spool_int.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

char *spool_seg_path(const struct spool *sp, uint64_t seq)
{
	return xasprintf("%s/%016" PRIX64 ".spool", sp->dir, seq);
}

static bool set_err(char **err, char *msg)
{
	*err = msg;
	return false;
}

struct spool_seg *spool_add_seg(struct spool *sp, uint64_t seq)
{
	if (sp->nsegs == sp->segcap) {
		sp->segcap = sp->segcap ? sp->segcap * 2 : 16;
		sp->segs = xrealloc(sp->segs, sp->segcap * sizeof(*sp->segs));
	}
	struct spool_seg *s = &sp->segs[sp->nsegs++];
	*s = (struct spool_seg){.seq = seq, .release_pos = pos_none()};
	return s;
}

/* --- open / close -------------------------------------------------------- */

static bool make_dir(const char *path, char **err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return set_err(err, spool_errno_msg("cannot create directory", path));
	return true;
}

bool spool_open(const char *dir, const struct spool_opts *opts, struct spool **out, char **err)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));
	pthread_condattr_t ca;

	*out = NULL;
	*err = NULL;
	sp->dir = xstrdup(dir);
	sp->spill_dir = xasprintf("%s/spill", dir);
	sp->max_seg =
	    opts && opts->max_segment_bytes ? opts->max_segment_bytes : SPOOL_DEFAULT_SEGMENT_BYTES;
	sp->dirfd = sp->lockfd = sp->fd = -1;
	sp->durable_pos = sp->last_commit_end = pos_none();
	sp->reader_seq = UINT64_MAX;
	sp->rels = change_relcache_new();
	pthread_mutex_init(&sp->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sp->durable_cond, &ca);
	pthread_condattr_destroy(&ca);

	if (!make_dir(sp->dir, err) || !make_dir(sp->spill_dir, err))
		goto err;
	sp->dirfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd < 0) {
		*err = spool_errno_msg("cannot open", sp->dir);
		goto err;
	}
	char *lock = xasprintf("%s/lock", sp->dir);
	sp->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sp->lockfd < 0 || flock(sp->lockfd, LOCK_EX | LOCK_NB) < 0) {
		*err = errno == EWOULDBLOCK
			   ? xasprintf("%s: spool is in use by another process", dir)
			   : spool_errno_msg("cannot lock", lock);
		free(lock);
		goto err;
	}
	free(lock);
	if (!spool_recover(sp, err))
		goto err;

	char pbuf[POS_TEXT_MAX];
	log_event(LOG_LVL_INFO, "spool_open",
		  "dir=%s segments=%zu bytes=%" PRIu64 " durable=%s truncated_bytes=%" PRIu64,
		  sp->dir, sp->nsegs, sp->bytes_total,
		  pos_format(&sp->durable_pos, pbuf, sizeof(pbuf)), sp->truncated_bytes);
	*out = sp;
	return true;
err:
	spool_close(sp);
	return false;
}

void spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->reader_open)
		log_error("BUG: spool_close() with a reader open");
	spool_spill_drop_all(sp);
	free(sp->spills);
	change_scratch_free(&sp->spill_scratch);
	if (sp->fd >= 0)
		close(sp->fd);
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	if (sp->lockfd >= 0)
		close(sp->lockfd); /* releases the flock */
	change_buf_free(&sp->wbuf);
	change_buf_free(&sp->enc);
	change_relcache_free(sp->rels);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->durable_cond);
	free(sp->segs);
	free(sp->cur_path);
	free(sp->failed);
	free(sp->spill_dir);
	free(sp->dir);
	free(sp);
}

/* --- writer -------------------------------------------------------------- */

/* Refuses further writes after an I/O error; returns false. */
static bool writer_failed(struct spool *sp, char **err)
{
	if (sp->failed == NULL)
		sp->failed = xstrdup(*err);
	return false;
}

static bool flush(struct spool *sp, char **err)
{
	if (sp->wbuf.len == 0)
		return true;
	if (!spool_write_all(sp->fd, sp->wbuf.data, sp->wbuf.len, sp->cur_path, err))
		return writer_failed(sp, err);
	pthread_mutex_lock(&sp->mu);
	sp->segs[sp->nsegs - 1].size += sp->wbuf.len;
	sp->bytes_total += sp->wbuf.len;
	pthread_mutex_unlock(&sp->mu);
	sp->fd_dirty = true;
	change_buf_reset(&sp->wbuf);
	return true;
}

static void put_frame(struct spool *sp, const struct change_buf *payload)
{
	spool_frame_put(&sp->wbuf, payload->data, payload->len);
	sp->cur_size += SPOOL_FRAME_HDR + payload->len;
	atomic_fetch_add_explicit(&sp->records_written, 1, memory_order_relaxed);
}

static void reemit_relation(const struct change_rel *r, void *arg)
{
	struct spool *sp = arg;
	struct change_event ev = {.kind = CHG_RELATION, .rel = r->desc};
	change_buf_reset(&sp->enc);
	change_encode(&ev, &sp->enc);
	put_frame(sp, &sp->enc);
}

static void count_relation(const struct change_rel *r, void *arg)
{
	(void)r;
	(*(uint32_t *)arg)++;
}

/* Seals the current segment (if any) and starts the next one. */
static bool roll(struct spool *sp, char **err)
{
	if (sp->fd >= 0) {
		if (!flush(sp, err))
			return false;
		if (fdatasync(sp->fd) < 0) {
			*err = spool_errno_msg("cannot fdatasync", sp->cur_path);
			return writer_failed(sp, err);
		}
		close(sp->fd);
		sp->fd = -1;
		sp->fd_dirty = false;
		pthread_mutex_lock(&sp->mu);
		struct spool_seg *s = &sp->segs[sp->nsegs - 1];
		s->release_known = !sp->in_txn;
		s->release_pos = sp->last_commit_end;
		pthread_mutex_unlock(&sp->mu);
	}
	uint64_t seq = sp->next_seq++;
	free(sp->cur_path);
	sp->cur_path = spool_seg_path(sp, seq);
	sp->fd = open(sp->cur_path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (sp->fd < 0) {
		*err = spool_errno_msg("cannot create", sp->cur_path);
		return writer_failed(sp, err);
	}
	pthread_mutex_lock(&sp->mu);
	spool_add_seg(sp, seq);
	pthread_mutex_unlock(&sp->mu);
	sp->dir_dirty = true;
	sp->cur_size = 0;

	struct spool_hdr h = {.seq = seq,
			      .ncommits = sp->ncommits,
			      .in_txn = sp->in_txn,
			      .last_commit_end = sp->last_commit_end};
	change_relcache_foreach(sp->rels, count_relation, &h.nrels);
	change_buf_reset(&sp->enc);
	spool_hdr_encode(&h, &sp->enc);
	spool_frame_put(&sp->wbuf, sp->enc.data, sp->enc.len);
	sp->cur_size += SPOOL_FRAME_HDR + sp->enc.len;
	change_relcache_foreach(sp->rels, reemit_relation, sp);
	sp->cur_content = sp->cur_size;
	return true;
}

/* The writer's segment (the newest); release may move segs[] meanwhile. */
static uint64_t writer_seq(struct spool *sp)
{
	pthread_mutex_lock(&sp->mu);
	uint64_t seq = sp->segs[sp->nsegs - 1].seq;
	pthread_mutex_unlock(&sp->mu);
	return seq;
}

static bool order_ok(struct spool *sp, const struct change_event *ev, char **err)
{
	bool ok;
	switch (ev->kind) {
	case CHG_BEGIN:
		ok = !sp->in_txn;
		break;
	case CHG_RELATION:
		ok = true;
		break;
	case CHG_COMMIT:
	case CHG_INSERT:
	case CHG_UPDATE:
	case CHG_DELETE:
	case CHG_TRUNCATE:
	case CHG_ORIGIN:
		ok = sp->in_txn;
		break;
	default:
		*err = xasprintf("BUG: spool_append of unknown event kind %d", (int)ev->kind);
		return false;
	}
	if (!ok)
		*err = xasprintf("BUG: spool_append: %s %s a transaction",
				 change_kind_name(ev->kind), sp->in_txn ? "inside" : "outside");
	return ok;
}

bool spool_append_event(struct spool *sp, const struct change_event *ev, char **err)
{
	if (!order_ok(sp, ev, err))
		return false;
	change_buf_reset(&sp->enc);
	change_encode(ev, &sp->enc);
	uint64_t frame = SPOOL_FRAME_HDR + sp->enc.len;
	if (sp->enc.len > UINT32_MAX)
		return set_err(err, xasprintf("spool %s: %s record of %zu bytes is too large",
					      sp->dir, change_kind_name(ev->kind), sp->enc.len));
	if (sp->fd < 0 || (sp->cur_size > sp->cur_content && sp->cur_size + frame > sp->max_seg)) {
		/* roll() reuses enc for the header and relations */
		struct change_buf keep = sp->enc;
		sp->enc = (struct change_buf){0};
		bool ok = roll(sp, err);
		change_buf_free(&sp->enc);
		sp->enc = keep;
		if (!ok)
			return false;
	}
	put_frame(sp, &sp->enc);
	if (sp->wbuf.len >= SPOOL_WBUF_FLUSH && !flush(sp, err))
		return false;

	switch (ev->kind) {
	case CHG_BEGIN:
		sp->in_txn = true;
		sp->txn_first_seq = writer_seq(sp);
		break;
	case CHG_COMMIT:
		sp->in_txn = false;
		sp->ncommits++;
		sp->last_commit_end = ev->commit.end_pos;
		if (sp->txn_first_seq < writer_seq(sp)) {
			/* the segments this transaction kept open can now be released */
			pthread_mutex_lock(&sp->mu);
			for (size_t i = 0; i + 1 < sp->nsegs; i++) {
				struct spool_seg *s = &sp->segs[i];
				if (s->seq >= sp->txn_first_seq) {
					s->release_known = true;
					s->release_pos = ev->commit.end_pos;
				}
			}
			pthread_mutex_unlock(&sp->mu);
		}
		break;
	case CHG_RELATION:
		change_relcache_put(sp->rels, &ev->rel, NULL);
		break;
	default:
		break;
	}
	return true;
}

bool spool_append(struct spool *sp, const struct change_event *ev, char **err)
{
	if (sp->failed != NULL)
		return set_err(
		    err, xasprintf("spool %s is unusable after an error: %s", sp->dir, sp->failed));
	return spool_append_event(sp, ev, err);
}

bool spool_sync(struct spool *sp, char **err)
{
	if (sp->failed != NULL)
		return set_err(
		    err, xasprintf("spool %s is unusable after an error: %s", sp->dir, sp->failed));
	if (sp->fd < 0)
		return true;
	if (!flush(sp, err))
		return false;
	if (sp->fd_dirty && fdatasync(sp->fd) < 0) {
		*err = spool_errno_msg("cannot fdatasync", sp->cur_path);
		return writer_failed(sp, err);
	}
	sp->fd_dirty = false;
	if (sp->dir_dirty && fsync(sp->dirfd) < 0) {
		*err = spool_errno_msg("cannot fsync", sp->dir);
		return writer_failed(sp, err);
	}
	sp->dir_dirty = false;
	pthread_mutex_lock(&sp->mu);
	sp->durable_seq = sp->segs[sp->nsegs - 1].seq;
	sp->durable_off = sp->cur_size;
	sp->durable_pos = sp->last_commit_end;
	sp->durable_ncommits = sp->ncommits;
	pthread_cond_broadcast(&sp->durable_cond);
	pthread_mutex_unlock(&sp->mu);
	return true;
}

struct pos spool_durable_pos(struct spool *sp)
{
	pthread_mutex_lock(&sp->mu);
	struct pos p = sp->durable_pos;
	pthread_mutex_unlock(&sp->mu);
	return p;
}

/* --- release and stats --------------------------------------------------- */

static bool applied_through(const struct spool_seg *s, const struct pos *applied)
{
	if (!s->release_known)
		return false;
	enum pos_cmp c = pos_compare(&s->release_pos, applied);
	return c == POS_LT || c == POS_EQ;
}

bool spool_release(struct spool *sp, const struct pos *applied, unsigned *ndeleted, char **err)
{
	size_t k = 0;
	uint64_t *gone;
	bool ok = true;

	pthread_mutex_lock(&sp->mu);
	/* the last segment is the writer's */
	while (k + 1 < sp->nsegs && sp->segs[k].seq < sp->reader_seq &&
	       applied_through(&sp->segs[k], applied))
		k++;
	gone = xmalloc((k ? k : 1) * sizeof(*gone));
	for (size_t i = 0; i < k; i++) {
		gone[i] = sp->segs[i].seq;
		sp->bytes_total -= sp->segs[i].size;
	}
	memmove(sp->segs, sp->segs + k, (sp->nsegs - k) * sizeof(*sp->segs));
	sp->nsegs -= k;
	pthread_mutex_unlock(&sp->mu);

	for (size_t i = 0; i < k; i++) {
		char *path = spool_seg_path(sp, gone[i]);
		if (unlink(path) < 0 && errno != ENOENT && ok) {
			*err = spool_errno_msg("cannot delete", path);
			ok = false;
		}
		log_event(LOG_LVL_DEBUG, "spool_release", "file=%s", path);
		free(path);
	}
	free(gone);
	if (ndeleted != NULL)
		*ndeleted = (unsigned)k;
	return ok;
}

void spool_stats(struct spool *sp, struct spool_stats *out)
{
	pthread_mutex_lock(&sp->mu);
	out->bytes_on_disk = sp->bytes_total;
	out->segments = sp->nsegs;
	out->durable_pos = sp->durable_pos;
	out->truncated_bytes = sp->truncated_bytes;
	pthread_mutex_unlock(&sp->mu);
	out->spill_bytes = atomic_load_explicit(&sp->spill_bytes, memory_order_relaxed);
	out->spill_files = atomic_load_explicit(&sp->spill_files, memory_order_relaxed);
	out->records_written = atomic_load_explicit(&sp->records_written, memory_order_relaxed);
	out->records_read = atomic_load_explicit(&sp->records_read, memory_order_relaxed);
}
