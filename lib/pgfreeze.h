/*
 * pgfreeze: the write freeze on a PostgreSQL database, with PostgreSQL's own
 * mechanism: the application roles lose INSERT, UPDATE, DELETE and TRUNCATE
 * on the migrated tables (a session cannot undo a REVOKE) and their open
 * sessions are ended.  Every revoked grant is recorded in the state store
 * first, so unfreeze gives back exactly what was taken, and a crash in the
 * middle is finished deterministically by running it again (idempotent).
 *
 * The freeze is verified, never assumed: a role that can still write after
 * the REVOKE (it owns the table, is a superuser, or inherits the privilege
 * from another role) is listed as not enforced, and the gate says so.
 * Blocking (worker threads only).
 */
#ifndef MIGD_PGFREEZE_H
#define MIGD_PGFREEZE_H

#include <jansson.h>

#include "pgconn.h"
#include "tables.h"

/*
 * Freezes roles (comma list) on db for ts's tables (target names when
 * on_target).  store holds migd.freeze_grants; side is "source" or
 * "target".  *report (new JSON): revoked grants, terminated sessions,
 * still_writable [{role, table, why}], roles_absent, inventory.
 */
bool pgfreeze_enforce(struct pgconn *db, const char *side, bool on_target, struct pgconn *store,
		      const char *name, const char *roles, const struct mig_tableset *ts,
		      json_t **report, struct err *err) __attribute__((warn_unused_result));

/* Gives back every grant recorded for side and forgets them. */
bool pgfreeze_lift(struct pgconn *db, const char *side, struct pgconn *store, const char *name,
		   int *restored, struct err *err) __attribute__((warn_unused_result));

/*
 * The write inventory: sessions other than migd's that hold a write
 * transaction (an assigned xid), or belong to a frozen role and are still
 * connected: role, application_name, client, state, since when.
 */
json_t *pgfreeze_inventory(struct pgconn *db, const char *roles, struct err *err);

#endif
