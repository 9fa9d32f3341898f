/*
 * spool_discard: rolls the writer back to the last sync (see spool.h).
 *
 * The durable end is always a transaction boundary here (migd syncs only
 * between transactions), so everything after it belongs to transactions
 * the source was never told are flushed: delete the segments created
 * since, cut the durable segment back to its durable length, and put the
 * writer's counters back to what they were at that sync.  The reader never
 * reads past the durable end, so it is not affected.
 */
#include "spool_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

bool spool_discard(struct spool *sp, char **err)
{
	if (sp->failed != NULL) {
		*err = xasprintf("spool %s is unusable after an error: %s", sp->dir, sp->failed);
		return false;
	}
	spool_spill_drop_all(sp); /* streamed transactions restart from their first chunk */
	change_buf_reset(&sp->wbuf);
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;

	pthread_mutex_lock(&sp->mu);
	uint64_t dseq = sp->durable_seq, doff = sp->durable_off;
	while (sp->nsegs > 0 && (dseq == 0 || sp->segs[sp->nsegs - 1].seq > dseq)) {
		struct spool_seg *s = &sp->segs[sp->nsegs - 1];
		char *path = spool_seg_path(sp, s->seq);
		unlink(path);
		free(path);
		sp->bytes_total -= s->size;
		sp->nsegs--;
	}
	if (sp->nsegs > 0 && sp->segs[sp->nsegs - 1].size > doff) {
		sp->bytes_total -= sp->segs[sp->nsegs - 1].size - doff;
		sp->segs[sp->nsegs - 1].size = doff;
	}
	sp->ncommits = sp->durable_ncommits;
	sp->last_commit_end = sp->durable_pos;
	pthread_mutex_unlock(&sp->mu);

	sp->in_txn = false;
	sp->dir_dirty = true;
	if (dseq == 0) { /* nothing durable: the next append starts a fresh segment */
		sp->cur_size = sp->cur_content = 0;
		return true;
	}
	free(sp->cur_path);
	sp->cur_path = spool_seg_path(sp, dseq);
	sp->fd = open(sp->cur_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (sp->fd < 0 || ftruncate(sp->fd, (off_t)doff) != 0 || fdatasync(sp->fd) != 0 ||
	    fsync(sp->dirfd) != 0) {
		*err = spool_errno_msg("cannot roll back", sp->cur_path);
		sp->failed = xstrdup(*err);
		return false;
	}
	sp->dir_dirty = false;
	sp->fd_dirty = false;
	sp->next_seq = dseq + 1;
	sp->cur_size = doff;
	if (sp->cur_content > doff)
		sp->cur_content = doff;
	return true;
}
