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
 * All problems are reported together, one per line.  A key index the
 * backfill has deferred (below) counts as present: the backfill builds it
 * again before the migration leaves phase backfilling.
 *
 * Index deferral, for the backfill: a target table that is empty when its
 * chunks are planned takes its rows faster without its indexes, which are
 * then built once over the whole table.  pgmeta_defer_indexes() records
 * the exact definition of every index and primary key / unique constraint
 * that can be rebuilt identically in migd.deferred_indexes and drops it,
 * inside the caller's transaction, so the record and the drop commit (or
 * vanish) together.  Left alone, because a drop would lose or break
 * something a rebuild would not give back: indexes anything depends on
 * (foreign keys referencing the key, views relying on it), exclusion
 * constraints, clustered, replica identity, invalid, commented or
 * partition-attached indexes, indexes in another tablespace or with a
 * statistics target, and every index of a partitioned table or partition.
 * pgmeta_restore_index() builds one back and removes its record; it is
 * idempotent, so a crash at any point is repaired by running it again.
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

/*
 * The sequences owned by table qname (serial or identity columns): rows of
 * (sequence as regclass text, column name); NULL with err on failure.
 * Caller PQclear()s.
 */
PGresult *pgmeta_owned_sequences(struct pgconn *pg, const char *qname, struct err *err);

/* name: the migration, whose deferred key indexes count as present. */
bool pgmeta_check_target(struct pgconn *tgt, const char *name, struct mig_tableset *ts,
			 struct err *err) __attribute__((warn_unused_result));

/* One deferred index, as recorded in migd.deferred_indexes. */
struct pgmeta_index {
	char *table_name;     /* owned; "schema.name", the ledger's table key */
	char *target_table;   /* owned; quoted target table name */
	char *index_name;     /* owned; unquoted; in the target table's schema */
	char kind;            /* 'p' primary key, 'u' unique constraint, 'i' plain index */
	char *index_def;      /* owned; pg_get_indexdef(): CREATE [UNIQUE] INDEX ... */
	char *constraint_sql; /* owned; ALTER TABLE .. ADD CONSTRAINT .. USING INDEX, or NULL */
};

/*
 * Records and drops the deferrable indexes of t's target table (see
 * above); *n gets how many.  Must run inside a transaction (the caller's
 * savepoint keeps a failure from spoiling it) that holds the table's lock.
 */
bool pgmeta_defer_indexes(struct pgconn *tgt, const char *name, const struct mig_table *t, int *n,
			  struct err *err) __attribute__((warn_unused_result));

/* Every index migration name has deferred; *out (caller frees with pgmeta_indexes_free). */
bool pgmeta_deferred_load(struct pgconn *tgt, const char *name, struct pgmeta_index **out, int *n,
			  struct err *err) __attribute__((warn_unused_result));
void pgmeta_indexes_free(struct pgmeta_index *v, int n);

/*
 * Builds ix back and deletes its record; outside a transaction.  An index
 * of that name that is already there with the same definition is taken as
 * built (a crash after the build); with another definition it is an error,
 * never silently accepted.  A constraint is built as its unique index first
 * (a SHARE lock, so other indexes of the table can build at the same time)
 * and then attached with ADD CONSTRAINT ... USING INDEX, as pg_restore and
 * pgcopydb do.
 */
bool pgmeta_restore_index(struct pgconn *tgt, const char *name, const struct pgmeta_index *ix,
			  struct err *err) __attribute__((warn_unused_result));

#endif
