/*
 * store: migd's own state in the target database, whatever its engine --
 * the migd schema of a PostgreSQL target (pgstore.h) or the migd database
 * of a MySQL/MariaDB one (mystore.h), with the same tables and meanings.
 *
 * The coordinator keeps one store connection and calls these; each call
 * goes to the engine's module.  The state lives in the target because the
 * sink commits its position there in the same transaction as the changes
 * (exactly-once), and backfill chunks commit with their ledger rows.
 * Blocking (worker threads only).
 */
#ifndef MIGD_STORE_H
#define MIGD_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "myconn.h"
#include "pgconn.h"
#include "phase.h"
#include "pos.h"
#include "util.h"

#define TRANSFORM_VERSION 1 /* bump when backfill/apply rendering changes */

/* The migration's row (migd.migration). */
struct store_migration {
	bool exists;
	enum phase phase;
	char slot[64];
	char publication[64];
	struct pos consistent; /* POS_NONE until captured */
	bool backfill_done;
	struct pos freeze_pos; /* final source position of the current freeze; none if not frozen */
	char pending_op[32]; /* an operation journaled as intent and not finished: "freeze", ... */
	struct pos reverse_pos; /* the target's position at the flip (reverse start); none before */
};

/* A connection to the target's state: PostgreSQL (conninfo) or MySQL/MariaDB (dsn). */
struct store {
	enum migd_engine engine;
	const char *conninfo; /* borrowed, secret: libpq conninfo or a dsn with its password */
	struct pgconn pg;
	struct myconn my;
};

static inline bool store_is_my(const struct store *s)
{
	return s->engine != ENGINE_POSTGRESQL;
}

/* Connects unless connected and healthy. */
bool store_ensure(struct store *s, const char *label, struct err *err)
    __attribute__((warn_unused_result));
void store_close(struct store *s);

/* Creates the schema (database) and every table if missing. */
bool store_init(struct store *s, struct err *err) __attribute__((warn_unused_result));
bool store_load(struct store *s, const char *name, struct store_migration *out, struct err *err)
    __attribute__((warn_unused_result));
/* Inserts the migration row (phase init) if it does not exist. */
bool store_create(struct store *s, const char *name, const char *source_engine, const char *slot,
		  const char *publication, struct err *err) __attribute__((warn_unused_result));
/* Records the captured position and moves init -> captured, journaled, in one transaction. */
bool store_set_captured(struct store *s, const char *name, const struct pos *consistent,
			const char *reason, struct err *err) __attribute__((warn_unused_result));
/* Changes the phase and journals it in one transaction (legality checked by the caller). */
bool store_set_phase(struct store *s, const char *name, enum phase from, enum phase to,
		     const char *actor, const char *reason, const struct pos *source_pos,
		     const struct pos *target_pos, struct err *err)
    __attribute__((warn_unused_result));
/* Journals an operation's intent (op) or its end (op NULL), and optionally the freeze position. */
bool store_set_pending(struct store *s, const char *name, const char *op,
		       const struct pos *freeze_pos, struct err *err)
    __attribute__((warn_unused_result));
/* Records the target's position at the flip (where reverse replication starts). */
bool store_set_reverse(struct store *s, const char *name, const struct pos *rev, struct err *err)
    __attribute__((warn_unused_result));
/* Applied position (POS_NONE if none) and its source commit time (Unix us, 0 unknown). */
bool store_applied(struct store *s, const char *name, struct pos *applied, int64_t *commit_us,
		   struct err *err) __attribute__((warn_unused_result));
bool store_add_rehearsal(struct store *s, const char *name, const char *phase, bool passed,
			 const char *report, struct err *err) __attribute__((warn_unused_result));
/* The last rehearsal's report as JSON text (caller frees), or *report NULL when none ran. */
bool store_last_rehearsal(struct store *s, const char *name, char **report, struct err *err)
    __attribute__((warn_unused_result));
/*
 * The journal, oldest first, as an array of objects {at, from, to, actor,
 * reason, source_pos, owner_before, owner_after[, target_pos]} (new reference).
 */
bool store_journal(struct store *s, const char *name, json_t **out, struct err *err)
    __attribute__((warn_unused_result));

/*
 * For the engine modules: one journal row's texts (at, from, to, actor,
 * reason, source_pos, owner_before, owner_after, target_pos or "none") as
 * store_journal() gives it.
 */
json_t *store_journal_entry(const char *const v[9]);

#endif
