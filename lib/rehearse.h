/*
 * rehearse: proves the reverse path (target -> source) before the flip, for
 * real and without touching the migration, for every pair of engines.
 *
 * Each step gets a verdict (passed, failed, skipped) and its time.  The
 * checks, by the target's engine (the reverse path's source):
 *   PostgreSQL target
 *   target_wal_level         wal_level = logical on the target
 *   target_replication_role  migd's role there has REPLICATION (or is a superuser)
 *   target_free_slot         a free replication slot and WAL sender
 *   target_publication       migd may publish the target's migrated tables
 *                            (created in a transaction that is rolled back)
 *   MySQL/MariaDB target
 *   target_binlog            log_bin, binlog_format ROW, binlog_row_image and
 *                            binlog_row_metadata FULL, no compression
 *   target_binlog_grants  REPLICATION SLAVE and BINLOG MONITOR (or
 *                            REPLICATION CLIENT) for migd's user
 *   target_server_id         the reverse stream's replica id clashes with
 *                            neither the server's nor a connected replica's
 *   target_tables            the binlog reader can read the target's migrated
 *                            tables (catalog read like a source's: types
 *                            mappable, the forward key)
 * and by the source's engine (the reverse path's sink):
 *   PostgreSQL source
 *   source_write_privileges  SELECT, INSERT, UPDATE and DELETE on every migrated
 *                            table and the right to set session_replication_role
 *   source_migd_schema       the source's migd schema exists (or is created) and
 *                            the sink may write its state there
 *   MySQL/MariaDB source
 *   source_write_privileges  the sink's INSERT, UPDATE and DELETE on every
 *                            migrated table, EXPLAINed (the server checks every
 *                            privilege, roles included, and nothing is written)
 *   source_read_only_admin   migd's user has READ_ONLY ADMIN: the source stays
 *                            read_only after the flip and the sink writes through
 *   source_migd_database     the source's migd database exists (or is created)
 *                            and the sink may write its state there
 * then, only when every check passed, one probe through the reverse pipeline:
 *   rehearsal_slot           PostgreSQL target: the target's migd.rehearse_probe
 *                            table, a publication for it and a logical slot
 *                            (pgoutput, created over a replication connection
 *                            like the reverse slot)
 *   rehearsal_position       MySQL/MariaDB target: the target's
 *                            migd.rehearse_probe table, then the binlog position
 *                            (GTID and coordinate) of a consistent snapshot, as
 *                            the flip takes the reverse position
 *   probe_write              a row written into the target's migd.rehearse_probe
 *   probe_replicated         the reader the reverse replication uses (pgstream:
 *                            slot and pgoutput decoder; or mystream: the binlog
 *                            as a replica with the reverse stream's server_id), a
 *                            scratch spool and the applier with the source's sink
 *                            (pgsink or mysink) carry the row, then its delete,
 *                            into the source's migd.rehearse_probe; any refusal
 *                            or error fails it
 *   cleanup                  probe rows, slot and publication (PostgreSQL), the
 *                            sink's rows in the source's migd schema/database
 *                            and the scratch spool removed, whatever happened
 * No user table is written: the probe lives in migd's schemas/databases.
 *
 * Test-only crash points (MIGD_CRASH_AT): rehearse-slot (PostgreSQL target:
 * slot created), rehearse-position (MySQL/MariaDB target: position taken),
 * rehearse-probe (the probe row written on the target).
 *
 * Blocking libpq and libmariadb and threads of its own: run it on a worker
 * thread, never on the event loop.
 */
#ifndef MIGD_REHEARSE_H
#define MIGD_REHEARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"
#include "tables.h"

struct rehearse_opts {
	const char *name;	     /* the migration's name */
	bool src_my, tgt_my;	     /* the source / the target is MySQL/MariaDB */
	const char *src_ci, *tgt_ci; /* borrowed; secret: libpq conninfo or a dsn with password */
	const char *tgt_repl_ci; /* borrowed; secret; PostgreSQL target's replication conninfo */
	const char *slot, *publication; /* borrowed; rehearsal names on a PostgreSQL target */
	uint32_t server_id;    /* MySQL/MariaDB target: the reverse stream's replica server_id */
	const char *spool_dir; /* borrowed; scratch spool, removed after */
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
 * tgt (either engine; connected): a PostgreSQL target's slot, which holds
 * back its WAL, and publication; the migration's probe rows; and the
 * scratch spool.  *found says whether there was anything.  False with err
 * when something could not be removed.
 */
bool rehearse_drop_leftovers(struct store *tgt, const char *name, const char *slot,
			     const char *publication, const char *spool_dir, bool *found,
			     struct err *err) __attribute__((warn_unused_result));

#endif
