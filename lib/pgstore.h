/*
 * pgstore: migd's own state inside a PostgreSQL target, in schema "migd".
 *
 * Keeping it in the sink database is what makes apply exactly-once: the
 * applied source position commits in the same transaction as the changes
 * (pgstore_progress_sql() gives the statement the applier pipelines), and
 * each backfill chunk's ledger row commits with the chunk's rows.
 *
 *   migd.migration  one row per migration: phase, owner, slot, publication,
 *                   captured (consistent) position, timestamps
 *   migd.journal    every phase change: when, who, why, positions, owners
 *   migd.chunks     the backfill ledger: table, key range, state, rows,
 *                   checksum, transformation version, attempts, timings,
 *                   and whether the target table was empty at plan time
 *   migd.deferred_indexes  indexes and key constraints the backfill dropped
 *                   from an empty target table, with their exact
 *                   definitions, until it builds them again (pgmeta.h)
 *   migd.progress   last applied source position and totals
 *   migd.parked     changes held back for a table with a schema error
 *   migd.failed_records  changes the target refused (never dropped)
 *   migd.validation validation runs: kinds, mismatches, positions, results
 *   migd.freeze_grants  write grants a freeze took away, to give them back
 *   migd.rehearsal  every rehearsal of the reverse path: phase, verdict, report
 * Blocking (worker threads only).
 */
#ifndef MIGD_PGSTORE_H
#define MIGD_PGSTORE_H

#include <stdint.h>

#include "pgconn.h"
#include "phase.h"
#include "pos.h"
#include "store.h"

/* Creates the schema and tables if missing. */
bool pgstore_init(struct pgconn *tgt, struct err *err) __attribute__((warn_unused_result));

bool pgstore_load(struct pgconn *tgt, const char *name, struct store_migration *out,
		  struct err *err) __attribute__((warn_unused_result));

/* Inserts the migration row (phase init) if it does not exist. */
bool pgstore_create(struct pgconn *tgt, const char *name, const char *source_engine,
		    const char *slot, const char *publication, struct err *err)
	__attribute__((warn_unused_result));

/* Records the captured position and moves init -> captured, journaled, in one transaction. */
bool pgstore_set_captured(struct pgconn *tgt, const char *name, const struct pos *consistent,
			  const char *reason, struct err *err) __attribute__((warn_unused_result));

/*
 * Changes the phase and journals it in one transaction.  The caller has
 * checked legality; positions may be POS_NONE.
 */
bool pgstore_set_phase(struct pgconn *tgt, const char *name, enum phase from, enum phase to,
		       const char *actor, const char *reason, const struct pos *source_pos,
		       const struct pos *target_pos, struct err *err) __attribute__((warn_unused_result));

/*
 * Journals an operation's intent (op) or its end (op NULL), and optionally
 * the freeze position.  A crash between intent and end is finished at start.
 */
bool pgstore_set_pending(struct pgconn *tgt, const char *name, const char *op,
			 const struct pos *freeze_pos, struct err *err) __attribute__((warn_unused_result));

/* Records the reverse slot's consistent position (the target's position at the flip). */
bool pgstore_set_reverse(struct pgconn *tgt, const char *name, const struct pos *rev,
			 struct err *err) __attribute__((warn_unused_result));

/*
 * Applied position (POS_NONE if nothing applied yet) and, if commit_us is
 * not NULL, the source commit time of that transaction (Unix microseconds, 0 unknown).
 */
bool pgstore_applied(struct pgconn *tgt, const char *name, struct pos *applied,
		     int64_t *commit_us, struct err *err) __attribute__((warn_unused_result));

/* Records a rehearsal of the reverse path (report: its JSON text). */
bool pgstore_add_rehearsal(struct pgconn *tgt, const char *name, const char *phase, bool passed,
			   const char *report, struct err *err) __attribute__((warn_unused_result));

/* The journal, oldest first (store_journal()). */
bool pgstore_journal(struct pgconn *tgt, const char *name, json_t **out, struct err *err)
	__attribute__((warn_unused_result));

/* The last rehearsal's report as JSON text (caller frees), or *report NULL when none ran. */
bool pgstore_last_rehearsal(struct pgconn *tgt, const char *name, char **report, struct err *err)
	__attribute__((warn_unused_result));

/*
 * The statement that records progress, for the applier to pipeline inside
 * its transaction.  Parameters: $1 name, $2 position text, $3 commit time
 * (Unix microseconds), $4 transactions in batch, $5 changes in batch.
 */
extern const char *const pgstore_progress_sql;

#endif
