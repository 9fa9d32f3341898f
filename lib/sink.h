/*
 * sink: what the applier needs from a target database, engine-neutral.
 *
 * The applier (apply.c) reads committed source transactions from the spool
 * and drives a sink through batches:
 *
 *     begin -> (relation | change)* -> commit(end position)     one target txn
 *            \-> rollback                                        on failure
 *
 * A commit may be sent without waiting for the target's answer, so that the
 * target works on it while the applier reads the next batch: confirm()
 * takes the answer later.  The next batch may begin and take changes
 * before that, but must not commit: the batch before might still fail, and
 * a later end position must never commit without the changes before it.
 *
 * A batch covers one or more whole source transactions.  commit() must
 * write the end position into the target's migd schema in the same target
 * transaction as the changes (exactly-once after a crash).  Changes are
 * idempotent: insert = upsert, delete of a missing row = no-op.
 *
 * With isolate set on begin(), the sink applies each change on its own
 * (savepoint per change): a change the target refuses is recorded as a
 * failed record (table, key, position, error) in the same transaction and
 * the batch goes on.  Changes of a table with a schema error are parked
 * (kept in the target's migd schema, in order) instead of applied.
 */
#ifndef MIGD_SINK_H
#define MIGD_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "change.h"
#include "pos.h"
#include "util.h"

/* Counters a sink keeps; the applier publishes them. */
struct sink_counts {
	int64_t changes;   /* applied */
	int64_t failed;    /* recorded as failed records */
	int64_t parked;    /* held back for tables with schema errors */
	int64_t missing;   /* updates whose row was absent (partial image) */
};

struct sink;

struct sink_ops {
	/* (Re)connects if needed and reads the last applied position and its commit time. */
	bool (*open)(struct sink *s, struct pos *applied, int64_t *commit_us, struct err *err);
	void (*close)(struct sink *s);
	bool (*begin)(struct sink *s, bool isolate, struct err *err);
	bool (*relation)(struct sink *s, const struct change_relation *rel, struct err *err);
	/* src_pos: the source transaction's position, for failed records. */
	bool (*change)(struct sink *s, const struct change_event *ev, const struct pos *src_pos,
		       struct err *err);
	/*
	 * Sends the batch's end position and its COMMIT.  With wait, returns once
	 * the target answered (true: committed).  Without, true means sent: the
	 * answer comes from confirm().
	 */
	bool (*commit)(struct sink *s, const struct pos *end, int64_t commit_time_us, int64_t ntxns,
		       bool wait, struct err *err);
	/*
	 * The answer to the commit sent without wait: true once it committed (counts
	 * updated; *answered_usec: when the answer was read, monotonic clock), false
	 * if it did not (err set) or the answer was lost with the connection
	 * (broken set: the applied position must be read again).  Also valid after a
	 * failure of the batch opened since: whether the batch before committed.
	 */
	bool (*confirm)(struct sink *s, int64_t *answered_usec, struct err *err);
	void (*rollback)(struct sink *s);
	/*
	 * Records, in the open batch, that source transaction txn (xid, origin
	 * or NULL) changed table after the freeze position.
	 */
	bool (*violation)(struct sink *s, const struct pos *freeze, const struct pos *txn,
			  uint32_t xid, const char *origin, const char *table, struct err *err);
	/* Violations recorded for this freeze position (committed). */
	bool (*violations)(struct sink *s, const struct pos *freeze, int64_t *n, struct err *err);
	/* Tables currently in schema error, as "schema.name" lines (caller frees). */
	char *(*schema_errors)(struct sink *s);
	void (*free)(struct sink *s);
};

struct sink {
	const struct sink_ops *ops;
	struct sink_counts counts; /* updated by the sink, committed (confirmed) batches only */
	bool broken;               /* the connection was lost: reopen before the next batch */
};

#endif
