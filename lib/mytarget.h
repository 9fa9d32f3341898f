/*
 * mytarget: what a MySQL/MariaDB target's tables look like, read from
 * information_schema -- each column's type as mytext takes it (mytext.h)
 * and the unique indexes -- for the migrated tables of a table set.
 *
 * A table's target is its tgt_qname ("schema"."name" as pgmeta writes it,
 * `db`.`name`, or db.name); the "schema" is the MySQL database.  The
 * description is a snapshot: read it again after a reconnect.  Blocking
 * (worker threads only).
 */
#ifndef MIGD_MYTARGET_H
#define MIGD_MYTARGET_H

#include <stdbool.h>

#include "myconn.h"
#include "mytext.h"
#include "tables.h"
#include "util.h"

struct mytarget_col {
	char *name;	       /* owned */
	char *collation;       /* owned; character columns' COLLATION_NAME, else NULL */
	uint32_t collation_id; /* its id, 0 if none */
	struct mytext_col type;
};

struct mytarget_table {
	char *db, *name; /* owned: target database and table */
	char *qname;	 /* owned: `db`.`name`, for SQL */
	bool found;	 /* the table exists on the target */
	int ncols;
	struct mytarget_col *cols; /* owned, in ordinal order */
	int nuniq;
	char ***uniq; /* owned: per PRIMARY/UNIQUE index, its column names, NULL-terminated */
};

/*
 * Describes the target of every table of ts, in ts's order: *out gets an
 * array of ts->n entries (a missing table has found false).  Caller frees
 * with mytarget_free(*out, ts->n); on failure *out is NULL and err set.
 */
bool mytarget_load(struct myconn *c, const struct mig_tableset *ts, struct mytarget_table **out,
		   struct err *err) __attribute__((warn_unused_result));
void mytarget_free(struct mytarget_table *tt, int n);

/*
 * The schema contract for a MySQL/MariaDB target: every table of ts
 * exists with every source column, a PRIMARY KEY or UNIQUE index within
 * the key columns, and key columns whose collation keeps apart what the
 * source keeps apart.  All problems in one error.
 */
bool mytarget_check(struct myconn *c, const struct mig_tableset *ts, struct err *err)
    __attribute__((warn_unused_result));

/* The column named name (case-insensitive, as MySQL compares them), or NULL. */
const struct mytarget_col *mytarget_col(const struct mytarget_table *t, const char *name);

/*
 * True if t has a PRIMARY KEY or UNIQUE index made only of columns in
 * cols[0..n): rows with equal values in cols then conflict, which is what
 * an upsert on them needs.
 */
bool mytarget_unique_within(const struct mytarget_table *t, char *const *cols, int n);

/* The target database and table of t (caller frees both). */
void mytarget_names(const struct mig_table *t, char **db, char **name);

#endif
