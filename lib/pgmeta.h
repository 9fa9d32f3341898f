/*
 * pgmeta: PostgreSQL catalog reading for the migration's tables.
 *
 * pgmeta_load_source() builds the table set from the config's include /
 * exclude lists: columns (generated columns are left out: pgoutput does not
 * send them and the target computes its own), the key (primary key, else
 * the replica identity index) and replica identity.  A table without a
 * usable key is refused by name unless listed in [tables] insert_only.
 *
 * pgmeta_check_target() is the schema contract: every migrated table exists
 * on the target with the same columns and types, a unique index on the key
 * (for idempotent upserts), and no extra NOT NULL column without a default.
 * All problems are reported together, one per line.
 * Blocking (worker threads only).
 */
#ifndef MIGD_PGMETA_H
#define MIGD_PGMETA_H

#include "pgconn.h"
#include "tables.h"

/* include / exclude / insert_only: the [tables] lists (exclude, insert_only may be NULL). */
bool pgmeta_load_source(struct pgconn *src, const char *include, const char *exclude,
			const char *insert_only, struct mig_tableset *out, struct err *err)
	__attribute__((warn_unused_result));

/*
 * One table by schema and name, in any schema (migd's own included, which
 * pgmeta_load_source() leaves out): out holds exactly that table.  False
 * with err when it does not exist or has no primary key.
 */
bool pgmeta_load_table(struct pgconn *c, const char *schema, const char *name,
		       struct mig_tableset *out, struct err *err)
	__attribute__((warn_unused_result));

bool pgmeta_check_target(struct pgconn *tgt, struct mig_tableset *ts, struct err *err)
	__attribute__((warn_unused_result));

#endif
