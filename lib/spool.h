/*
 * spool: the durable local change spool between the source reader and the
 * applier.
 *
 * The slot/binlog reader thread appends whole committed source transactions
 * in commit order and syncs; once spool_durable_pos() covers a COMMIT the
 * source may be told that position is flushed, so source WAL/binlog
 * retention no longer depends on the target's speed (DESIGN.md ideas 3, 9).
 * The applier thread reads the events back and applies them; segments are
 * deleted once the target has committed past every transaction in them.
 * Memory stays O(largest record) whatever the transaction size or backlog.
 *
 * On disk (dir/):
 *     lock                      flock()ed while a process has the spool open
 *     0000000000000001.spool    segments, 16 hex digits, ascending sequence
 *     spill/<xid>.spill         in-progress streamed transactions
 *
 * A segment is a sequence of frames:
 *     frame = u32le length  u32le crc32c(payload)  payload[length]
 * The first frame of every segment is its header (see spool_int.h); every
 * other payload is one change_encode()d event.  The header is followed by a
 * RELATION record for every relation the writer has seen, so a reader that
 * starts at any retained segment knows every relation in use.  Segments roll
 * at record boundaries (a transaction may span segments) once the next
 * record would take the segment past max_segment_bytes.
 *
 * Threads: one writer thread (spool_append, spool_sync, spool_spill_*,
 * spool_close) and one reader thread (spool_reader_*) run concurrently;
 * spool_durable_pos, spool_release and spool_stats may be called from
 * either.  A mutex and a condition variable guard the durable end.
 * No global state.  All calls block on local disk I/O: run them on worker
 * threads, never on the event loop.
 *
 * Errors: fallible calls return false (or -1) and set *err to a malloc'ed
 * message naming the file and the errno text; the caller frees it.  After a
 * failed write or sync the spool refuses further writes: close it and open
 * it again, which recovers to the last durable COMMIT.
 */
#ifndef MIGD_SPOOL_H
#define MIGD_SPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "change.h"
#include "pos.h"

#define SPOOL_DEFAULT_SEGMENT_BYTES (64u << 20)

struct spool;
struct spool_reader;

struct spool_opts {
	uint64_t max_segment_bytes; /* 0: SPOOL_DEFAULT_SEGMENT_BYTES */
};

struct spool_stats {
	uint64_t bytes_on_disk;	  /* segment bytes written (synced or not) */
	uint64_t segments;	  /* retained segment files */
	uint64_t spill_bytes;	  /* bytes in open spill files */
	uint64_t spill_files;	  /* streamed transactions in progress */
	uint64_t records_written; /* appended since open (including re-emitted relations) */
	uint64_t records_read;	  /* delivered by the reader since open */
	uint64_t truncated_bytes; /* dropped by recovery at open (torn tail, unfinished txn) */
	struct pos durable_pos;	  /* end_pos of the last durable COMMIT, or none */
};

/*
 * Opens (creating dir and dir/spill if needed) the spool in dir and
 * recovers it: leftover spill files are deleted; the last segment is
 * scanned and truncated after its last valid COMMIT, which drops a torn
 * tail (bad length or crc) and an unfinished transaction (the source sends
 * it again), deleting trailing segments that hold no COMMIT; the result is
 * fsynced.  spool_durable_pos() then returns the recovered end.  If that is
 * behind what the caller already confirmed to the source, the spool has
 * lost durable data and the caller must not continue.  opts may be NULL.
 * Fails if another process has dir open.  Caller frees with spool_close().
 */
bool spool_open(const char *dir, const struct spool_opts *opts, struct spool **out, char **err)
    __attribute__((warn_unused_result));

/*
 * Closes the spool without syncing (records appended since the last
 * spool_sync may or may not survive; recovery handles both) and deletes
 * spill files.  The reader must be closed first.  NULL-safe.
 */
void spool_close(struct spool *sp);

/*
 * Writer: appends one event (copied; ev is not kept).  Events must form
 * whole transactions, BEGIN ... COMMIT, one at a time in commit order;
 * RELATION may also appear between transactions.  Buffered: nothing is
 * visible to the reader or durable before spool_sync().
 */
bool spool_append(struct spool *sp, const struct change_event *ev, char **err)
    __attribute__((warn_unused_result));

/*
 * Writer: writes out buffered records, fdatasyncs the segment (and fsyncs
 * dir when a segment was created since the last sync), then publishes the
 * new durable end to the reader and spool_durable_pos().
 */
bool spool_sync(struct spool *sp, char **err) __attribute__((warn_unused_result));

/* end_pos of the last durable COMMIT (none if there is none): safe to confirm to the source. */
struct pos spool_durable_pos(struct spool *sp);

/*
 * Writer: drops everything appended since the last spool_sync() (complete
 * transactions and an unfinished one alike) and every spill file, as if
 * the spool had been closed and recovered.  For a source connection lost
 * mid-stream: the source sends all of it again, since none of it was
 * confirmed.  Only valid when the last sync was between transactions.
 */
bool spool_discard(struct spool *sp, char **err) __attribute__((warn_unused_result));

/*
 * Deletes the oldest segments whose every transaction ends (COMMIT end_pos)
 * at or before applied, in order, stopping at the first one that is not
 * done; never the writer's current segment nor the one the reader is on
 * (or has not reached yet).  *ndeleted (may be NULL) gets the count.
 */
bool spool_release(struct spool *sp, const struct pos *applied, unsigned *ndeleted, char **err)
    __attribute__((warn_unused_result));

void spool_stats(struct spool *sp, struct spool_stats *out);

/*
 * Reader: positions a reader at the start of the oldest retained segment.
 * Only one reader may be open at a time.  Caller frees with
 * spool_reader_close() (before spool_close()).
 */
bool spool_reader_open(struct spool *sp, struct spool_reader **out, char **err)
    __attribute__((warn_unused_result));
void spool_reader_close(struct spool_reader *rd);

/*
 * Reader: the next event, never beyond the durable end.  Returns 1 with *ev
 * filled (its pointers borrow from the reader until the next call), 0 if
 * nothing durable arrived within timeout_ms (0 polls, negative waits
 * forever), -1 on corruption or an I/O error with *err set.  Every record
 * is delivered, re-emitted RELATIONs included, except the tail of a
 * transaction whose first part was released before this reader started
 * (release proves it applied): only whole transactions are delivered.
 * Skipping transactions that were already applied is the caller's business
 * (compare positions).
 */
int spool_reader_next(struct spool_reader *rd, struct change_event *ev, int timeout_ms, char **err)
    __attribute__((warn_unused_result));

/*
 * Streamed transactions (PostgreSQL protocol v2): changes of an in-progress
 * top-level transaction xid are appended to dir/spill/<xid>.spill as they
 * arrive; ev->xid carries the subtransaction that made each change.  Memory
 * per open spill: a 64 KiB buffer plus 4 bytes per aborted subtransaction.
 * Writer thread only.  BEGIN and COMMIT cannot be spilled.  On an I/O
 * error the spill of xid is dropped: the caller must have the source send
 * the transaction again (reconnect).
 */
bool spool_spill_append(struct spool *sp, uint32_t xid, const struct change_event *ev, char **err)
    __attribute__((warn_unused_result));

/*
 * subxid == xid: the whole transaction aborted, its spill file is deleted.
 * Otherwise the changes of subxid are discarded at commit (an abort marker
 * is written to the spill file too, so the file describes itself).
 * Aborting an xid that never spilled anything is a no-op.
 */
bool spool_spill_abort(struct spool *sp, uint32_t xid, uint32_t subxid, char **err)
    __attribute__((warn_unused_result));

/*
 * Appends begin, every spilled change of xid in order except those of
 * aborted subtransactions (RELATION records are always kept), then commit,
 * to the main spool, streaming record by record, and deletes the spill
 * file.  The caller then calls spool_sync().
 */
bool spool_spill_commit(struct spool *sp, uint32_t xid, const struct change_event *begin,
			const struct change_event *commit, char **err)
    __attribute__((warn_unused_result));

#endif
