/*
 * spool recovery at open (see spool_open() in spool.h): deletes leftover
 * spill files, cuts the newest segments back to their last COMMIT (a torn
 * tail or an unfinished transaction goes; the source sends it again),
 * rebuilds the writer's relation cache from the last segment, and each
 * retained segment's release position from the segment headers.
 */
#include "spool_int.h"

#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool set_err(char **err, char *msg)
{
	*err = msg;
	return false;
}

/* What one pass over a segment found. */
struct scan {
	bool hdr_ok;
	struct spool_hdr hdr;
	uint64_t rels_end;   /* offset after the header and its re-emitted relations, 0 if torn */
	uint64_t valid_end;  /* offset after the last intact frame */
	uint64_t commit_end; /* offset after the last COMMIT, 0 if none */
	uint64_t ncommits;   /* COMMIT records in the segment */
	struct pos first_commit, last_commit;
	const char *bad_why; /* why the scan stopped before the end, NULL if it did not */
};

/*
 * Reads segment path up to limit (stopping early if stop_at_commit and a
 * COMMIT was found), putting RELATIONs into rels if not NULL.  A torn or
 * corrupt frame ends the scan; an intact frame that does not decode is an
 * error (a bug or a different format, never something to truncate away).
 */
static bool scan_segment(const char *path, uint64_t limit, bool stop_at_commit,
			 struct change_relcache *rels, struct scan *out, char **err)
{
	struct spool_frames fr;
	struct change_scratch scratch = {0};
	struct change_event ev;
	const uint8_t *p;
	uint32_t len;
	const char *why = NULL;
	bool ok = false;
	uint64_t nframes = 0;

	*out = (struct scan){.first_commit = pos_none(), .last_commit = pos_none()};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return set_err(err, spool_errno_msg("cannot open", path));
	if (limit == UINT64_MAX) {
		struct stat st;
		if (fstat(fd, &st) < 0) {
			*err = spool_errno_msg("cannot stat", path);
			close(fd);
			return false;
		}
		limit = (uint64_t)st.st_size;
	}
	spool_frames_init(&fr, fd, path, limit);
	for (;;) {
		enum spool_fr r = spool_frames_next(&fr, &p, &len, &why, err);
		if (r == SPOOL_FR_IOERR)
			goto out;
		if (r != SPOOL_FR_OK) {
			out->bad_why = r == SPOOL_FR_BAD ? why : NULL;
			break;
		}
		if (nframes == 0) {
			if (!spool_hdr_decode(p, len, &out->hdr, &why)) {
				out->bad_why = why;
				break;
			}
			out->hdr_ok = true;
		} else {
			if (!change_decode(p, len, &ev, &scratch, &why)) {
				*err = xasprintf("%s: undecodable record at offset %" PRIu64 ": %s",
						 path, fr.off - len - SPOOL_FRAME_HDR, why);
				goto out;
			}
			if (ev.kind == CHG_RELATION && rels != NULL)
				change_relcache_put(rels, &ev.rel, NULL);
			if (ev.kind == CHG_COMMIT) {
				if (out->ncommits++ == 0)
					out->first_commit = ev.commit.end_pos;
				out->last_commit = ev.commit.end_pos;
				out->commit_end = fr.off;
				if (stop_at_commit)
					break;
			}
		}
		nframes++;
		if (out->hdr_ok && nframes == 1 + (uint64_t)out->hdr.nrels)
			out->rels_end = fr.off;
		out->valid_end = fr.off;
	}
	ok = true;
out:
	spool_frames_free(&fr);
	change_scratch_free(&scratch);
	close(fd);
	return ok;
}

static bool fsync_path(const char *path, char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return set_err(err, spool_errno_msg("cannot open", path));
	if (fsync(fd) < 0) {
		*err = spool_errno_msg("cannot fsync", path);
		close(fd);
		return false;
	}
	close(fd);
	return true;
}

static int cmp_u64p(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sequence numbers of the segment files in dir, ascending; caller frees. */
static bool list_segments(struct spool *sp, uint64_t **seqs, size_t *n, char **err)
{
	DIR *d = opendir(sp->dir);
	size_t cap = 0;
	struct dirent *de;

	*seqs = NULL;
	*n = 0;
	if (d == NULL)
		return set_err(err, spool_errno_msg("cannot list", sp->dir));
	while ((de = readdir(d)) != NULL) {
		char *end;
		if (strlen(de->d_name) != 22 || strcmp(de->d_name + 16, ".spool") != 0)
			continue;
		uint64_t seq = strtoull(de->d_name, &end, 16);
		if (end != de->d_name + 16 || seq == 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*seqs = xrealloc(*seqs, cap * sizeof(**seqs));
		}
		(*seqs)[(*n)++] = seq;
	}
	closedir(d);
	if (*n > 1)
		qsort(*seqs, *n, sizeof(**seqs), cmp_u64p);
	return true;
}

/* Deletes leftover spill files: the source resends in-progress transactions. */
static bool clear_spill_dir(struct spool *sp, char **err)
{
	DIR *d = opendir(sp->spill_dir);
	struct dirent *de;
	if (d == NULL)
		return set_err(err, spool_errno_msg("cannot list", sp->spill_dir));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
			char *path = xasprintf("%s/%s", sp->spill_dir, de->d_name);
			*err = spool_errno_msg("cannot delete", path);
			free(path);
			closedir(d);
			return false;
		}
	}
	closedir(d);
	return true;
}

/*
 * Works back from the newest segment: keeps everything up to its last
 * COMMIT; a segment without a COMMIT keeps its header and relations if it
 * starts between transactions, and is deleted otherwise (or if its header
 * or relations are torn) -- the transaction it continues is unfinished, so
 * the segment before is cut back too.  Leaves the surviving segments'
 * headers in hdrs[] and sets up the writer on the last one.
 */
static bool recover_tail(struct spool *sp, uint64_t *seqs, size_t *n, struct spool_hdr *hdrs,
			 struct scan *last, char **err)
{
	bool changed = false;

	while (*n > 0) {
		uint64_t seq = seqs[*n - 1];
		char *path = spool_seg_path(sp, seq);
		struct stat st;
		uint64_t keep = 0;

		if (stat(path, &st) < 0 ||
		    !scan_segment(path, UINT64_MAX, false, NULL, last, err)) {
			if (*err == NULL)
				*err = spool_errno_msg("cannot stat", path);
			free(path);
			return false;
		}
		if (last->ncommits > 0)
			keep = last->commit_end;
		else if (last->hdr_ok && !last->hdr.in_txn && last->rels_end > 0)
			keep = last->rels_end;
		if (keep > 0 && last->hdr.seq != seq) {
			*err = xasprintf("%s: header names segment %" PRIu64, path, last->hdr.seq);
			free(path);
			return false;
		}
		if (keep == 0) {
			log_event(LOG_LVL_WARN, "spool_recover",
				  "action=delete file=%s bytes=%lld reason=%s", path,
				  (long long)st.st_size,
				  last->hdr_ok ? "no complete transaction" : "torn header");
			if (unlink(path) < 0) {
				*err = spool_errno_msg("cannot delete", path);
				free(path);
				return false;
			}
			sp->truncated_bytes += (uint64_t)st.st_size;
			changed = true;
			free(path);
			(*n)--;
			continue;
		}
		if (keep < (uint64_t)st.st_size) {
			log_event(LOG_LVL_WARN, "spool_recover",
				  "action=truncate file=%s from=%lld to=%" PRIu64 " reason=%s",
				  path, (long long)st.st_size, keep,
				  last->valid_end < (uint64_t)st.st_size && last->bad_why
				      ? last->bad_why
				      : "unfinished transaction");
			if (truncate(path, (off_t)keep) < 0 || !fsync_path(path, err)) {
				if (*err == NULL)
					*err = spool_errno_msg("cannot truncate", path);
				free(path);
				return false;
			}
			sp->truncated_bytes += (uint64_t)st.st_size - keep;
			changed = true;
		}
		/* the relations as of the kept end, for re-emitting */
		struct scan again;
		bool ok = scan_segment(path, keep, false, sp->rels, &again, err);
		free(path);
		if (!ok)
			return false;
		last->rels_end = again.rels_end;
		hdrs[*n - 1] = last->hdr;
		sp->cur_size = keep;
		break;
	}
	if (changed && fsync(sp->dirfd) < 0)
		return set_err(err, spool_errno_msg("cannot fsync", sp->dir));
	return true;
}

/*
 * Release positions of the segments before the last.  Segment i ends
 * between transactions when segment i+1's header says !in_txn: then its
 * release position is that header's last COMMIT.  Otherwise the
 * transaction open across the boundary ends at the first COMMIT after it,
 * which is the first COMMIT in the first following segment that has one
 * (the header COMMIT counts tell which); only that segment is read, up to
 * that COMMIT.
 */
static bool rebuild_release(struct spool *sp, const struct spool_hdr *hdrs, const struct scan *last,
			    char **err)
{
	size_t n = sp->nsegs;
	size_t memo_j = SIZE_MAX;
	struct pos memo = pos_none();

	for (size_t i = 0; i + 1 < n; i++) {
		struct spool_seg *s = &sp->segs[i];
		if (!hdrs[i + 1].in_txn) {
			s->release_known = true;
			s->release_pos = hdrs[i + 1].last_commit_end;
			continue;
		}
		size_t j = i + 1;
		for (; j < n; j++) {
			uint64_t after =
			    j + 1 < n ? hdrs[j + 1].ncommits : hdrs[j].ncommits + last->ncommits;
			if (after > hdrs[j].ncommits)
				break;
		}
		if (j == n) /* cannot happen after recover_tail(); keep the segment */
			continue;
		if (j != memo_j) {
			struct scan sc;
			if (j + 1 == n) {
				sc.first_commit = last->first_commit;
			} else {
				char *path = spool_seg_path(sp, sp->segs[j].seq);
				bool ok = scan_segment(path, UINT64_MAX, true, NULL, &sc, err);
				free(path);
				if (!ok)
					return false;
				if (sc.ncommits == 0)
					return set_err(
					    err,
					    xasprintf("%s/%016" PRIX64 ".spool: corrupt "
						      "segment: %s",
						      sp->dir, sp->segs[j].seq,
						      sc.bad_why ? sc.bad_why : "missing COMMIT"));
			}
			memo_j = j;
			memo = sc.first_commit;
		}
		s->release_known = true;
		s->release_pos = memo;
	}
	return true;
}

/* Reads the header of every segment but the last (recover_tail() read that one). */
static bool read_headers(struct spool *sp, const uint64_t *seqs, size_t n, struct spool_hdr *hdrs,
			 char **err)
{
	for (size_t i = 0; i + 1 < n; i++) {
		char *path = spool_seg_path(sp, seqs[i]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct spool_frames fr;
		const uint8_t *p;
		uint32_t len;
		const char *why = "truncated";
		bool ok = false;

		if (fd < 0) {
			*err = spool_errno_msg("cannot open", path);
			free(path);
			return false;
		}
		struct stat st;
		spool_frames_init(&fr, fd, path, fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0);
		enum spool_fr r = spool_frames_next(&fr, &p, &len, &why, err);
		if (r == SPOOL_FR_OK && spool_hdr_decode(p, len, &hdrs[i], &why)) {
			if (hdrs[i].seq == seqs[i])
				ok = true;
			else
				why = "header names another segment";
		}
		if (!ok && r != SPOOL_FR_IOERR)
			*err = xasprintf("%s: bad segment header: %s", path, why);
		spool_frames_free(&fr);
		close(fd);
		free(path);
		if (!ok)
			return false;
	}
	return true;
}

bool spool_recover(struct spool *sp, char **err)
{
	uint64_t *seqs = NULL;
	size_t n = 0;
	struct spool_hdr *hdrs = NULL;
	struct scan last = {0};
	bool ok = false;

	if (!clear_spill_dir(sp, err) || !list_segments(sp, &seqs, &n, err))
		goto out;
	sp->next_seq = n > 0 ? seqs[n - 1] + 1 : 1;
	hdrs = xcalloc(n ? n : 1, sizeof(*hdrs));
	if (!recover_tail(sp, seqs, &n, hdrs, &last, err) || !read_headers(sp, seqs, n, hdrs, err))
		goto out;

	for (size_t i = 0; i < n; i++) {
		struct stat st;
		char *path = spool_seg_path(sp, seqs[i]);
		int rc = stat(path, &st);
		if (rc < 0)
			*err = spool_errno_msg("cannot stat", path);
		free(path);
		if (rc < 0)
			goto out;
		spool_add_seg(sp, seqs[i])->size = (uint64_t)st.st_size;
		sp->bytes_total += (uint64_t)st.st_size;
	}
	if (!rebuild_release(sp, hdrs, &last, err))
		goto out;
	if (n > 0) {
		const struct spool_hdr *h = &hdrs[n - 1];
		sp->cur_path = spool_seg_path(sp, seqs[n - 1]);
		sp->fd = open(sp->cur_path, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (sp->fd < 0) {
			*err = spool_errno_msg("cannot open", sp->cur_path);
			goto out;
		}
		sp->cur_content = last.rels_end;
		sp->ncommits = h->ncommits + last.ncommits;
		sp->last_commit_end = last.ncommits > 0 ? last.last_commit : h->last_commit_end;
		sp->durable_seq = seqs[n - 1];
		sp->durable_off = sp->cur_size;
		sp->durable_pos = sp->last_commit_end;
		sp->durable_ncommits = sp->ncommits;
	}
	ok = true;
out:
	free(seqs);
	free(hdrs);
	return ok;
}
