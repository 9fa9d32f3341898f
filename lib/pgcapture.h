/*
 * pgcapture: "capture before copy" on a PostgreSQL source.
 *
 * pgcapture_check() verifies the preconditions with clear errors:
 * wal_level=logical, the role may replicate, a replication slot and a WAL
 * sender are free.  pgcapture_publication() creates (or completes) the
 * publication for the migrated tables.  pgcapture_create_slot() creates the
 * logical slot (pgoutput) with an exported snapshot on a replication
 * connection that must then stay idle: any further command on it ends the
 * snapshot (protocol-facts.md), so the struct just holds it open until the
 * backfill has imported the snapshot everywhere it needs it.
 * Blocking (worker threads only).
 */
#ifndef MIGD_PGCAPTURE_H
#define MIGD_PGCAPTURE_H

#include <stdint.h>

#include "pgconn.h"
#include "tables.h"

struct pgcapture {
	struct pgconn holder;  /* the idle replication connection keeping the snapshot */
	char snapshot[64];     /* exported snapshot name; "" when none */
	uint64_t consistent_lsn;
};

bool pgcapture_check(struct pgconn *src, const char *slot, struct err *err)
	__attribute__((warn_unused_result));

bool pgcapture_publication(struct pgconn *src, const char *publication,
			   const struct mig_tableset *ts, struct err *err)
	__attribute__((warn_unused_result));

/* Creates the slot; fills cap (its holder stays open: release with pgcapture_release()). */
bool pgcapture_create_slot(const char *repl_conninfo, const char *slot, struct pgcapture *cap,
			   struct err *err) __attribute__((warn_unused_result));

/*
 * The same for a TEMPORARY slot, for its exported snapshot and consistent
 * point alone: the server drops it when the holder closes (or dies).
 */
bool pgcapture_create_temp_slot(const char *repl_conninfo, const char *slot,
				struct pgcapture *cap, struct err *err)
    __attribute__((warn_unused_result));

/* Ends the snapshot by closing the holder connection.  Safe to call twice. */
void pgcapture_release(struct pgcapture *cap);

struct pgcapture_slot {
	bool exists;
	bool active;
	uint64_t confirmed_flush; /* 0 if unknown */
	uint64_t restart_lsn;
	uint64_t current_lsn;     /* pg_current_wal_lsn() at the time of the query */
};

bool pgcapture_slot_info(struct pgconn *src, const char *slot, struct pgcapture_slot *out,
			 struct err *err) __attribute__((warn_unused_result));

/*
 * Drops slot if it exists.  A slot still held by a walsender (its client
 * just gone) is waited for, up to 10 s; one in use after that is an error.
 */
bool pgcapture_drop_slot(struct pgconn *src, const char *slot, struct err *err)
	__attribute__((warn_unused_result));

#endif
