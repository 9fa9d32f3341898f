/*
 * mymeta: MySQL/MariaDB catalog reading for the migration's tables (the
 * twin of pgmeta for a MariaDB source).
 *
 * mymeta_load_source() builds the engine-neutral table set from
 * information_schema: the tables matching the [tables] include / exclude
 * lists ("database.table": MariaDB's database plays the schema role), their
 * columns in ordinal order with the *mapped PostgreSQL type* as
 * mig_column.type / type_oid (docs/type-mapping.md is the contract, and
 * binlog_rows.h renders every value into that type's text), the source
 * type in src_type / src_collation / src_ext / src_fsp, the key and the
 * row estimate.  Generated columns are left out, as pgmeta does: the
 * target computes its own.
 *
 * Refused, every problem reported together, one per line:
 *   - a column whose type cannot be mapped (COMPRESSED, a character set
 *     other than utf8mb4/utf8mb3/latin1/ascii/binary, an unknown type),
 *     naming table, column and type;
 *   - a table without a primary key or a unique key on NOT NULL columns,
 *     unless listed in insert_only;
 *   - system-versioned tables.
 *
 * The key is the primary key, else the unique index on NOT NULL columns
 * with the fewest columns (ties: first by name); key_kind 'p' or 'i'.
 * replident is 'f': the binlog (binlog_row_image=FULL) carries whole rows.
 * A table has no catalog OID here: src_relid is its 1-based position in
 * the set (ordered by database and name), stable while the set is.
 * qname is the source's `db`.`table`; tgt_qname the PostgreSQL
 * "db"."table" (a MariaDB target renames it itself).
 *
 * Blocking (worker threads only).  MariaDB 10.11 tested; MySQL 8's
 * information_schema differs (CHECK_CONSTRAINTS has no TABLE_NAME, JSON
 * is a type, mapped to json like MariaDB's): untested there.
 */
#ifndef MIGD_MYMETA_H
#define MIGD_MYMETA_H

#include <stdbool.h>

#include "myconn.h"
#include "tables.h"

/* PostgreSQL's OIDs of the types the mapping produces (fixed: pg_type.dat). */
enum mymeta_pg_oid {
	MYMETA_OID_BYTEA = 17,
	MYMETA_OID_INT8 = 20,
	MYMETA_OID_INT2 = 21,
	MYMETA_OID_INT4 = 23,
	MYMETA_OID_TEXT = 25,
	MYMETA_OID_JSON = 114,
	MYMETA_OID_FLOAT4 = 700,
	MYMETA_OID_FLOAT8 = 701,
	MYMETA_OID_INET = 869,
	MYMETA_OID_VARCHAR = 1043,
	MYMETA_OID_DATE = 1082,
	MYMETA_OID_TIMESTAMP = 1114,
	MYMETA_OID_TIMESTAMPTZ = 1184,
	MYMETA_OID_INTERVAL = 1186,
	MYMETA_OID_BIT = 1560,
	MYMETA_OID_NUMERIC = 1700,
	MYMETA_OID_UUID = 2950,
};

/* include / exclude / insert_only: the [tables] lists (exclude, insert_only may be NULL). */
bool mymeta_load_source(struct myconn *c, const char *include, const char *exclude,
			const char *insert_only, struct mig_tableset *out, struct err *err)
    __attribute__((warn_unused_result));

/*
 * One table, db.name, read the same way whatever the lists say (also in
 * migd's own database, which mymeta_load_source() leaves out): the
 * rehearsal's probe table.  False with err if it is missing, keyless or
 * unmappable.
 */
bool mymeta_load_table(struct myconn *c, const char *schema, const char *name,
		       struct mig_tableset *out, struct err *err)
    __attribute__((warn_unused_result));

/*
 * One column's information_schema.COLUMNS facts, the input of the type
 * mapping (exposed for unit tests).  Numbers are -1 when NULL.
 */
struct mymeta_coldef {
	const char *name;
	const char *data_type;	 /* DATA_TYPE, lower case: "int", "varchar", "uuid" */
	const char *column_type; /* COLUMN_TYPE: "int(10) unsigned" */
	long long precision, scale, fsp, char_len;
	uint32_t collation; /* COLLATIONS.ID of COLLATION_NAME; 0 for none */
	bool is_json;	    /* LONGTEXT with MariaDB's CHECK (json_valid(`col`)) */
};

/*
 * Maps one column: fills out's type, type_oid, src_type, src_collation,
 * src_ext and src_fsp (out's strings: owned, freed by tableset_free()).
 * Returns NULL, or a static reason why the type cannot be mapped (then
 * out is left unchanged).
 */
const char *mymeta_map_column(const struct mymeta_coldef *in, struct mig_column *out);

#endif
