/*
 * rehearse: proves the reverse path (target -> source) before the flip, for
 * real and without touching the migration.
 *
 * Each step gets a verdict (passed, failed, skipped) and its time:
 *   target_wal_level         wal_level = logical on the target
 *   target_replication_role  migd's role there has REPLICATION (or is a superuser)
 *   target_free_slot         a free replication slot and WAL sender
 *   target_publication       migd may publish the target's migrated tables
 *                            (created in a transaction that is rolled back)
 *   source_write_privileges  what the reverse sink needs on the source: SELECT,
 *                            INSERT, UPDATE and DELETE on every migrated table and
 *                            the right to set session_replication_role
 *   source_migd_schema       the source's migd schema exists (or is created) and
 *                            the sink may write its state there
 * then, only when every check passed, one probe through the reverse pipeline:
 *   rehearsal_slot           the target's migd.rehearse_probe table, a publication
 *                            for it and a logical slot (pgoutput, created over a
 *                            replication connection like the reverse slot)
 *   probe_write              a row written into the target's migd.rehearse_probe
 *   probe_replicated         the slot reader (pgstream: pgoutput decoder, scratch
 *                            spool) and the applier with the PostgreSQL sink carry
 *                            the row, then its delete, into the source's
 *                            migd.rehearse_probe; any refusal or error fails it
 *   cleanup                  probe rows, slot, publication, the sink's rows in the
 *                            source's migd schema and the scratch spool removed,
 *                            whatever happened before
 * No user table is written: the probe lives in the migd schemas.
 *
 * Blocking libpq and threads of its own: run it on a worker thread, never on
 * the event loop.
 */
#ifndef MIGD_REHEARSE_H
#define MIGD_REHEARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "pgconn.h"
#include "tables.h"

struct rehearse_opts {
	const char *name;			   /* the migration's name */
	const char *src_ci, *tgt_ci, *tgt_repl_ci; /* borrowed; secret */
	const char *slot, *publication;		   /* borrowed; rehearsal names on the target */
	const char *spool_dir;			   /* borrowed; scratch spool, removed after */
	const struct mig_tableset
	    *ts; /* borrowed; migrated tables (qname source, tgt_qname target) */
	int64_t batch_txns, batch_bytes, batch_delay_ms; /* the applier's settings */
	int64_t timeout_ms;	   /* how long the probe (and its delete) may take */
	const volatile bool *stop; /* borrowed; ends the wait early (the cleanup still runs) */
	const char *crash_at;	   /* borrowed; MIGD_CRASH_AT (see crash_point() in util.h) */
};

/*
 * Runs every step.  Returns a new object (never NULL): {passed, at,
 * seconds, slot, publication, steps: [{name, verdict, seconds, detail}]};
 * passed is true only when every step passed.
 */
json_t *rehearse_run(const struct rehearse_opts *o);

/*
 * Removes what a rehearsal cut off by a crash leaves behind on the target
 * (its slot, which holds back the target's WAL, its publication and the
 * migration's probe rows) and the scratch spool.  *found says whether there
 * was anything.  False with err when something could not be removed.
 */
bool rehearse_drop_leftovers(struct pgconn *tgt, const char *name, const char *slot,
			     const char *publication, const char *spool_dir, bool *found,
			     struct err *err) __attribute__((warn_unused_result));

#endif
