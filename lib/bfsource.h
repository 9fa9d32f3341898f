/*
 * bfsource: the source side of backfill, one per worker -- a PostgreSQL
 * connection reading in the exported snapshot (COPY ... TO STDOUT), or a
 * MariaDB connection reading in a consistent snapshot of its own (mysnap,
 * binary protocol, the binlog decoder's renderers).  Either way a chunk's
 * rows arrive as PostgreSQL COPY text lines of the table's columns, so the
 * target side is one code path, and the chunk plan is the same text[]
 * boundaries.
 *
 * MariaDB has no exported snapshot to share: worker snapshots start after
 * the captured one and replay from the captured position makes them
 * converge (the same argument as a PostgreSQL restart without its
 * snapshot).  A MariaDB row holding a value PostgreSQL cannot take (zero
 * date, invalid text) is not copied: it goes to bad() with its key and the
 * reason, for a failed record.
 *
 * A table without a key cannot converge through replay (an insert
 * replayed is a row doubled), so its copy must say exactly which source
 * position its snapshot holds for: bfsource_begin(..., at) reports it,
 * the ledger keeps it with the chunk, and the applier skips that table's
 * changes before it (apply.h).  The exported snapshot stands at the
 * captured position; without it (a restart) a PostgreSQL worker takes a
 * temporary slot's exported snapshot, whose consistent point is exact; a
 * MariaDB snapshot's own coordinate is binlog_snapshot_file/position.
 */
#ifndef MIGD_BFSOURCE_H
#define MIGD_BFSOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "myconn.h"
#include "pgcapture.h"
#include "pgconn.h"
#include "pos.h"
#include "tables.h"

struct bfsource {
	bool mariadb;
	const char *conninfo; /* borrowed; PostgreSQL conninfo or MariaDB dsn (secret) */
	const char *repl_conninfo; /* borrowed, secret; PostgreSQL replication conninfo, for a
				      temporary slot's snapshot (NULL: none can be taken) */
	struct pgconn pg;
	struct myconn my;
	struct pgcapture tmp; /* a temporary slot holding the snapshot being read */
	bool in_copy; /* a PostgreSQL COPY OUT is unfinished: only a reconnect ends it */
};

/* Connects if needed (retrying with backoff until *stop); sets the session up. */
bool bfsource_ensure(struct bfsource *s, const volatile bool *stop, struct err *err)
    __attribute__((warn_unused_result));
bool bfsource_is_broken(struct bfsource *s);
void bfsource_close(struct bfsource *s);

/* The key chunk_rows rows past after (a text[] literal; NULL: the start); "" + *end at the end. */
char *bfsource_next_boundary(struct bfsource *s, const struct mig_table *t, const char *after,
			     int64_t chunk_rows, bool *end, struct err *err)
    __attribute__((warn_unused_result));

/*
 * Starts a read-only snapshot transaction: PostgreSQL in `snapshot` when
 * not empty (it stands at snapshot_pos).  With at, also the source
 * position the snapshot holds for exactly (see the top); without the
 * exported snapshot that takes a temporary slot, held until
 * bfsource_end().
 */
bool bfsource_begin(struct bfsource *s, const char *snapshot, const struct pos *snapshot_pos,
		    struct pos *at, struct err *err) __attribute__((warn_unused_result));

/*
 * Streams the rows of (lo, hi]: line() gets each COPY line (newline
 * included; valid during the call), bad() each row that cannot be copied
 * (its key as a text[] literal and why); either returning false stops the
 * copy with an error.  *rows counts the lines.
 */
bool bfsource_copy(struct bfsource *s, const struct mig_table *t, const char *lo, const char *hi,
		   bool (*line)(void *arg, const char *buf, size_t len),
		   bool (*bad)(void *arg, const char *key, const char *why), void *arg,
		   int64_t *rows, struct err *err) __attribute__((warn_unused_result));

/* Ends the read transaction (an unfinished COPY OUT closes the connection) and any
   temporary slot. */
void bfsource_end(struct bfsource *s);

#endif
