/*
 * spool internals shared by spool.c (open, writer, release, stats),
 * spool_recover.c (recovery at open), spool_read.c (framing, segment
 * header, reader) and spool_spill.c (streamed transactions).  Not part of the API: include spool.h.
 *
 * Segment header: the first frame of every segment, payload
 *     "MIGDSPL" u8 version (1)
 *     u64le seq             the segment's sequence number (= its file name)
 *     u64le ncommits        COMMIT records written to the spool before this segment
 *     u8    in_txn          1: the segment starts inside a transaction whose
 *                           BEGIN is in an earlier segment
 *     u32le nrels           RELATION records re-emitted right after the header
 *     event                 a change_encode()d COMMIT: the last COMMIT written
 *                           before this segment (positions none if there was none)
 * The header lets spool_open() rebuild each segment's release position
 * without reading whole segments (see rebuild_release() in spool.c).
 */
#ifndef MIGD_SPOOL_INT_H
#define MIGD_SPOOL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "change.h"
#include "pos.h"
#include "spool.h"

#define SPOOL_FRAME_HDR	  8	       /* u32le length, u32le crc32c */
#define SPOOL_WBUF_FLUSH  (256u << 10) /* main writer: write out beyond this */
#define SPOOL_RBUF_INIT	  (256u << 10) /* frame reader buffer to start with */
#define SPOOL_SPILL_FLUSH (64u << 10)  /* per spill file */
#define SPOOL_HDR_MAGIC	  "MIGDSPL"
#define SPOOL_HDR_VERSION 1
#define SPOOL_ABORT_MARK  'A' /* spill payload: 'A' u32le subxid (change payloads start with 1) */

/* A retained segment, as the writer, reader and release see it. */
struct spool_seg {
	uint64_t seq;
	uint64_t size; /* bytes written to the file; final once the writer moved on */
	/*
	 * end_pos of the COMMIT of the last transaction with a record in this
	 * segment; unknown while that transaction is still open.  The segment
	 * may go once the target has applied up to here.
	 */
	bool release_known;
	struct pos release_pos;
};

struct spool_hdr {
	uint64_t seq;
	uint64_t ncommits;
	bool in_txn;
	uint32_t nrels;
	struct pos last_commit_end;
};

/* A streamed transaction being spilled (spool_spill.c). */
struct spool_spill {
	uint32_t xid;
	int fd;
	char *path;		/* owned */
	struct change_buf wbuf; /* owned: frames not yet written out */
	uint64_t size;		/* file bytes, buffered ones included */
	uint32_t *aborted;	/* owned: aborted subxids, ascending */
	size_t naborted, abortcap;
};

struct spool {
	char *dir;	 /* owned */
	char *spill_dir; /* owned */
	int dirfd, lockfd;
	uint64_t max_seg;

	/* --- writer thread only --- */
	int fd;		      /* current segment, -1 before the first one */
	char *cur_path;	      /* owned */
	uint64_t cur_size;    /* current segment bytes, buffered ones included */
	uint64_t cur_content; /* where its own records start (after header and relations) */
	uint64_t next_seq;
	bool fd_dirty, dir_dirty;
	bool in_txn;
	uint64_t txn_first_seq; /* segment holding the open transaction's BEGIN */
	uint64_t ncommits;
	struct pos last_commit_end;
	struct change_buf wbuf;	      /* owned: frames not yet written */
	struct change_buf enc;	      /* owned: encode scratch */
	struct change_relcache *rels; /* owned: every relation seen, re-emitted per segment */
	char *failed;		      /* owned: why writes are refused, NULL while healthy */
	struct spool_spill **spills;  /* owned */
	size_t nspills, spillcap;
	struct change_scratch spill_scratch; /* owned */

	/* --- shared, under mu --- */
	pthread_mutex_t mu;
	pthread_cond_t durable_cond; /* broadcast when the durable end moves */
	struct spool_seg *segs;	     /* owned, ascending seq; the last is the writer's */
	size_t nsegs, segcap;
	uint64_t durable_seq, durable_off; /* readable end: segment and offset (0: none) */
	struct pos durable_pos;
	uint64_t durable_ncommits; /* ncommits at the last sync (spool_discard) */
	bool reader_open;
	uint64_t reader_seq; /* reader's segment; 0 before it has one; UINT64_MAX without reader */
	uint64_t bytes_total;
	uint64_t truncated_bytes;

	atomic_uint_fast64_t records_written, records_read, spill_bytes, spill_files;
};

/* Frame reader over a file, buffered, never reading at or past limit. */
struct spool_frames {
	int fd;		  /* borrowed */
	const char *path; /* borrowed, for messages */
	uint64_t off;	  /* file offset of the next frame */
	uint64_t limit;	  /* readable bytes; the caller may raise it */
	uint8_t *buf;	  /* owned */
	size_t cap, blen; /* buffer size, valid bytes */
	uint64_t boff;	  /* file offset of buf[0] */
};

enum spool_fr {
	SPOOL_FR_IOERR = -2,
	SPOOL_FR_BAD = -1, /* torn or corrupt frame at off (off is left there) */
	SPOOL_FR_END = 0,  /* off == limit */
	SPOOL_FR_OK = 1,
};

uint32_t spool_crc32c(uint32_t crc, const void *data, size_t len);

/* Appends a frame (header and payload) to b. */
void spool_frame_put(struct change_buf *b, const uint8_t *payload, size_t len);

void spool_frames_init(struct spool_frames *fr, int fd, const char *path, uint64_t limit);
void spool_frames_free(struct spool_frames *fr);
/*
 * The next frame: SPOOL_FR_OK with *payload (borrowed until the next call)
 * and *len; SPOOL_FR_BAD with *why static; SPOOL_FR_IOERR with *err set.
 */
enum spool_fr spool_frames_next(struct spool_frames *fr, const uint8_t **payload, uint32_t *len,
				const char **why, char **err);

void spool_hdr_encode(const struct spool_hdr *h, struct change_buf *out);
bool spool_hdr_decode(const uint8_t *p, size_t len, struct spool_hdr *h, const char **why);

/* write(2) until done; false with *err naming path. */
bool spool_write_all(int fd, const void *data, size_t len, const char *path, char **err);
/* "what path: strerror(errno)", malloc'ed. */
char *spool_errno_msg(const char *what, const char *path);

/* spool.c: "dir/<seq as 16 hex digits>.spool", malloc'ed. */
char *spool_seg_path(const struct spool *sp, uint64_t seq);
/* spool.c, under mu (or before the spool is shared): appends to segs[]. */
struct spool_seg *spool_add_seg(struct spool *sp, uint64_t seq);
/* spool_recover.c: the recovery part of spool_open(). */
bool spool_recover(struct spool *sp, char **err);
/* spool.c: appends a change event to the main spool (spool_append without the failed check). */
bool spool_append_event(struct spool *sp, const struct change_event *ev, char **err);
/* spool_spill.c: deletes every spill (close and unlink), for spool_close. */
void spool_spill_drop_all(struct spool *sp);

#endif
