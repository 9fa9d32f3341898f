/*
 * tables: the set of tables a migration moves, engine-neutral.
 *
 * Built once at start from the source's catalog (pgmeta for PostgreSQL,
 * mymeta for MySQL/MariaDB: there the types are the mapped PostgreSQL ones),
 * checked against the target (the schema contract), then shared read-only
 * by backfill, apply and status.  Owns every string and array in it; free
 * with tableset_free().
 */
#ifndef MIGD_TABLES_H
#define MIGD_TABLES_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct mig_column {
	char *name;     /* owned; the source's name */
	char *tgt_name; /* owned; the target's name when [tables] columns maps it, else NULL */
	char *type;     /* owned; the engine's display form, e.g. "numeric(12,2)" */
	uint32_t type_oid;
	bool not_null;
	int key_pos; /* 0: not in the key; else 1-based position within the key */
	/* MySQL/MariaDB sources only (mymeta); NULL / 0 for PostgreSQL: */
	char *src_type; /* owned; information_schema COLUMN_TYPE, "decimal(10,6) unsigned" */
	uint32_t src_collation; /* character, ENUM and SET columns: collation id, else 0 */
	uint8_t src_ext; /* enum binlog_ext_type: UUID/INET6/INET4 (BINARY(n) in the binlog) */
	uint8_t src_fsp; /* TIME/DATETIME/TIMESTAMP: fractional second digits */
};

struct mig_table {
	char *schema, *name; /* owned; source names */
	char *qname;         /* owned; quoted "schema"."name" (source) */
	char *tgt_qname;     /* owned; quoted target name */
	uint32_t src_relid;  /* source relation id (PG OID) */
	int ncols;
	struct mig_column *cols; /* owned */
	int nkey;
	int *key_idx;      /* owned; indexes into cols, in key order */
	char key_kind;     /* 'p' primary key, 'i' replica identity index, 0 none */
	char replident;    /* source REPLICA IDENTITY: d, n, f, i */
	bool insert_only;  /* keyless, accepted as insert-only by config */
	double est_rows;   /* planner estimate, for progress before counting */
};

struct mig_tableset {
	int n;
	struct mig_table *t; /* owned */
};

void tableset_free(struct mig_tableset *ts);

/* The table whose source relation id is relid, or by name; NULL if not migrated. */
struct mig_table *tableset_find_relid(struct mig_tableset *ts, uint32_t relid);
struct mig_table *tableset_find(struct mig_tableset *ts, const char *schema, const char *name);

/*
 * Sets every table's target name (tgt_qname, "schema"."name"): the source's
 * schema or target_schema when set, then renames ("s.t=[s2.]t2, ...",
 * checked by the config) applied; a rename of a table that is not migrated
 * is an error.
 */
bool tableset_map_targets(struct mig_tableset *ts, const char *target_schema, const char *renames,
			  struct err *err) __attribute__((warn_unused_result));

/*
 * Sets the target names of mapped columns from "s.t.col=newcol, ..."
 * (checked by the config); a table that is not migrated, a column it does
 * not have, or two columns mapped to one name is an error.
 */
bool tableset_map_columns(struct mig_tableset *ts, const char *columns, struct err *err)
    __attribute__((warn_unused_result));

/* A column's name on the target. */
static inline const char *col_tgt_name(const struct mig_column *c)
{
	return c->tgt_name != NULL ? c->tgt_name : c->name;
}

/* The target name of t's source column `name` (name itself when t has no such column). */
const char *table_tgt_col(const struct mig_table *t, const char *name);

/* True if "schema.name" matches a comma list of fnmatch(3) patterns. */
bool table_list_match(const char *list, const char *schema, const char *name);

/* Comma-separated quoted key column list: "id", "k2" (caller frees). */
char *table_key_list(const struct mig_table *t);
/* Comma-separated quoted list of all columns (caller frees). */
char *table_column_list(const struct mig_table *t);

/*
 * t as the target sees it, for code that builds SQL from a mig_table: a
 * shallow copy whose columns carry their target names and whose qname is
 * tgt_qname.  Its strings are t's (borrowed); free with table_view_free(),
 * which frees only the column array.
 */
struct mig_table table_target_view(const struct mig_table *t);
void table_view_free(struct mig_table *v);
/* The same for every table of ts; free with tableset_view_free(). */
struct mig_tableset tableset_target_view(const struct mig_tableset *ts);
void tableset_view_free(struct mig_tableset *v);

#endif
