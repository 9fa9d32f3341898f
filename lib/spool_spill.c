/*
 * spool spill files: in-progress streamed transactions (PostgreSQL logical
 * replication protocol v2, "streaming = on").
 *
 * With streaming, the source sends a large transaction's changes in chunks
 * (STREAM START xid ... STREAM STOP) before it commits, interleaved with
 * other transactions, and ends it with STREAM COMMIT or STREAM ABORT (of
 * the whole transaction or of one subtransaction).  Nothing of it may reach
 * the main spool before the commit, and commit order is what the spool
 * keeps, so each in-progress transaction gets dir/spill/<xid>.spill, in the
 * spool's framing, and is copied into the main spool at STREAM COMMIT.
 *
 * A subtransaction abort is remembered in memory (aborted[], 4 bytes per
 * subxid) and also written as a marker frame (payload 'A' u32le subxid)
 * so that the file alone describes the transaction.  The changes of an
 * aborted subtransaction all precede its abort, so the commit's single
 * forward pass must know the set beforehand: that is why it is kept in
 * memory.  Spill files never outlive the process: the source resends an
 * in-progress transaction after a reconnect, and spool_open() deletes them.
 */
#include "spool_int.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct spool_spill *find(struct spool *sp, uint32_t xid, size_t *idx)
{
	for (size_t i = 0; i < sp->nspills; i++) {
		if (sp->spills[i]->xid == xid) {
			if (idx != NULL)
				*idx = i;
			return sp->spills[i];
		}
	}
	return NULL;
}

static struct spool_spill *create(struct spool *sp, uint32_t xid, char **err)
{
	char *path = xasprintf("%s/%" PRIu32 ".spill", sp->spill_dir, xid);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		*err = spool_errno_msg("cannot create", path);
		free(path);
		return NULL;
	}
	struct spool_spill *s = xcalloc(1, sizeof(*s));
	s->xid = xid;
	s->fd = fd;
	s->path = path;
	if (sp->nspills == sp->spillcap) {
		sp->spillcap = sp->spillcap ? sp->spillcap * 2 : 8;
		sp->spills = xrealloc(sp->spills, sp->spillcap * sizeof(*sp->spills));
	}
	sp->spills[sp->nspills++] = s;
	atomic_fetch_add_explicit(&sp->spill_files, 1, memory_order_relaxed);
	return s;
}

/* Closes, deletes and forgets the spill of xid. */
static void drop(struct spool *sp, struct spool_spill *s)
{
	size_t i = 0;
	if (find(sp, s->xid, &i) == s) {
		sp->spills[i] = sp->spills[--sp->nspills];
		atomic_fetch_sub_explicit(&sp->spill_files, 1, memory_order_relaxed);
		atomic_fetch_sub_explicit(&sp->spill_bytes, s->size, memory_order_relaxed);
	}
	close(s->fd);
	unlink(s->path); /* best effort: spool_open() clears spill/ anyway */
	free(s->path);
	change_buf_free(&s->wbuf);
	free(s->aborted);
	free(s);
}

void spool_spill_drop_all(struct spool *sp)
{
	while (sp->nspills > 0)
		drop(sp, sp->spills[sp->nspills - 1]);
}

static bool spill_flush(struct spool_spill *s, char **err)
{
	if (s->wbuf.len == 0)
		return true;
	if (!spool_write_all(s->fd, s->wbuf.data, s->wbuf.len, s->path, err))
		return false;
	change_buf_reset(&s->wbuf);
	return true;
}

static bool spill_frame(struct spool *sp, struct spool_spill *s, const uint8_t *payload, size_t len,
			char **err)
{
	spool_frame_put(&s->wbuf, payload, len);
	s->size += SPOOL_FRAME_HDR + len;
	atomic_fetch_add_explicit(&sp->spill_bytes, SPOOL_FRAME_HDR + len, memory_order_relaxed);
	if (s->wbuf.len >= SPOOL_SPILL_FLUSH && !spill_flush(s, err)) {
		drop(sp, s);
		return false;
	}
	return true;
}

bool spool_spill_append(struct spool *sp, uint32_t xid, const struct change_event *ev, char **err)
{
	if (ev->kind == CHG_BEGIN || ev->kind == CHG_COMMIT || (int)ev->kind <= 0 ||
	    ev->kind >= CHG__MAX) {
		*err =
		    xasprintf("BUG: spool_spill_append of a %s event", change_kind_name(ev->kind));
		return false;
	}
	struct spool_spill *s = find(sp, xid, NULL);
	if (s == NULL && (s = create(sp, xid, err)) == NULL)
		return false;
	change_buf_reset(&sp->enc);
	change_encode(ev, &sp->enc);
	return spill_frame(sp, s, sp->enc.data, sp->enc.len, err);
}

static bool is_aborted(const struct spool_spill *s, uint32_t subxid)
{
	size_t lo = 0, hi = s->naborted;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->aborted[mid] < subxid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->naborted && s->aborted[lo] == subxid;
}

static void add_aborted(struct spool_spill *s, uint32_t subxid)
{
	if (is_aborted(s, subxid))
		return;
	if (s->naborted == s->abortcap) {
		s->abortcap = s->abortcap ? s->abortcap * 2 : 8;
		s->aborted = xrealloc(s->aborted, s->abortcap * sizeof(*s->aborted));
	}
	size_t i = s->naborted;
	while (i > 0 && s->aborted[i - 1] > subxid) {
		s->aborted[i] = s->aborted[i - 1];
		i--;
	}
	s->aborted[i] = subxid;
	s->naborted++;
}

bool spool_spill_abort(struct spool *sp, uint32_t xid, uint32_t subxid, char **err)
{
	struct spool_spill *s = find(sp, xid, NULL);
	if (s == NULL)
		return true;
	if (subxid == xid) {
		drop(sp, s);
		return true;
	}
	add_aborted(s, subxid);
	uint8_t mark[5] = {SPOOL_ABORT_MARK, (uint8_t)subxid, (uint8_t)(subxid >> 8),
			   (uint8_t)(subxid >> 16), (uint8_t)(subxid >> 24)};
	return spill_frame(sp, s, mark, sizeof(mark), err);
}

/* Copies the surviving changes of s into the main spool, one record at a time. */
static bool copy_spill(struct spool *sp, struct spool_spill *s, char **err)
{
	struct spool_frames fr;
	const uint8_t *p;
	uint32_t len;
	const char *why = NULL;
	struct change_event ev;
	bool ok = false;

	if (!spill_flush(s, err))
		return false;
	spool_frames_init(&fr, s->fd, s->path, s->size);
	for (;;) {
		uint64_t at = fr.off;
		enum spool_fr r = spool_frames_next(&fr, &p, &len, &why, err);
		if (r == SPOOL_FR_END)
			break;
		if (r == SPOOL_FR_IOERR)
			goto out;
		if (r == SPOOL_FR_BAD) {
			*err = xasprintf("%s: corrupt record at offset %" PRIu64 ": %s", s->path,
					 at, why);
			goto out;
		}
		if (p[0] == SPOOL_ABORT_MARK)
			continue;
		if (!change_decode(p, len, &ev, &sp->spill_scratch, &why)) {
			*err = xasprintf("%s: undecodable record at offset %" PRIu64 ": %s",
					 s->path, at, why);
			goto out;
		}
		if (ev.kind != CHG_RELATION && is_aborted(s, ev.xid))
			continue;
		if (!spool_append_event(sp, &ev, err))
			goto out;
	}
	ok = true;
out:
	spool_frames_free(&fr);
	return ok;
}

bool spool_spill_commit(struct spool *sp, uint32_t xid, const struct change_event *begin,
			const struct change_event *commit, char **err)
{
	if (begin->kind != CHG_BEGIN || commit->kind != CHG_COMMIT) {
		*err = xasprintf("BUG: spool_spill_commit needs BEGIN and COMMIT, got %s and %s",
				 change_kind_name(begin->kind), change_kind_name(commit->kind));
		return false;
	}
	struct spool_spill *s = find(sp, xid, NULL);
	if (!spool_append(sp, begin, err))
		return false;
	bool ok = s == NULL || copy_spill(sp, s, err);
	if (s != NULL)
		drop(sp, s);
	if (ok)
		ok = spool_append_event(sp, commit, err);
	if (!ok && sp->failed == NULL) /* a half-copied transaction: only reopening clears it */
		sp->failed = xstrdup(*err);
	return ok;
}
