/* mymeta: MySQL/MariaDB catalog -> table set with mapped types (see mymeta.h). */
#include "mymeta.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binlog_rows.h"
#include "pgconn.h"
#include "util.h"


/* --- the type mapping (docs/type-mapping.md) --------------------------------------- */

static bool is_one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static const char *text_charset_problem(uint32_t collation)
{
	switch (binlog_collation_charset(collation)) {
	case BINLOG_CS_UTF8MB4:
	case BINLOG_CS_UTF8MB3:
	case BINLOG_CS_LATIN1:
	case BINLOG_CS_ASCII:
		return NULL;
	case BINLOG_CS_NONE:
		return "character set unknown";
	default:
		return "character set not supported (only utf8mb4, utf8mb3, latin1, ascii, binary)";
	}
}

const char *mymeta_map_column(const struct mymeta_coldef *in, struct mig_column *out)
{
	static const char *const text_types[] = {"tinytext", "text", "mediumtext", "longtext",
						 NULL};
	static const char *const bin_types[] = {"binary",     "varbinary", "tinyblob", "blob",
						"mediumblob", "longblob",  NULL};
	static const char *const geo_types[] = {
	    "geometry",	       "point",	       "linestring",	     "polygon", "multipoint",
	    "multilinestring", "multipolygon", "geometrycollection", NULL};
	const char *dt = in->data_type;
	bool is_unsigned = strstr(in->column_type, "unsigned") != NULL;
	char *type = NULL;
	uint32_t oid = 0;
	uint8_t ext = BINLOG_EXT_NONE, fsp = 0;
	uint32_t coll = 0;

	if (strstr(in->column_type, "COMPRESSED") != NULL)
		return "MariaDB COMPRESSED columns are not supported (the binlog compresses them)";

	if (strcmp(dt, "tinyint") == 0) {
		type = xstrdup("smallint"), oid = MYMETA_OID_INT2;
	} else if (strcmp(dt, "smallint") == 0) {
		type = xstrdup(is_unsigned ? "integer" : "smallint");
		oid = is_unsigned ? MYMETA_OID_INT4 : MYMETA_OID_INT2;
	} else if (strcmp(dt, "mediumint") == 0) {
		type = xstrdup("integer"), oid = MYMETA_OID_INT4;
	} else if (strcmp(dt, "int") == 0) {
		type = xstrdup(is_unsigned ? "bigint" : "integer");
		oid = is_unsigned ? MYMETA_OID_INT8 : MYMETA_OID_INT4;
	} else if (strcmp(dt, "bigint") == 0) {
		type = xstrdup(is_unsigned ? "numeric(20,0)" : "bigint");
		oid = is_unsigned ? MYMETA_OID_NUMERIC : MYMETA_OID_INT8;
	} else if (strcmp(dt, "decimal") == 0) {
		if (in->precision < 1 || in->precision > 65 || in->scale < 0 || in->scale > 30 ||
		    in->scale > in->precision)
			return "DECIMAL precision/scale out of range";
		type = xasprintf("numeric(%lld,%lld)", in->precision, in->scale),
		oid = MYMETA_OID_NUMERIC;
	} else if (strcmp(dt, "float") == 0) {
		type = xstrdup("real"), oid = MYMETA_OID_FLOAT4;
	} else if (strcmp(dt, "double") == 0) {
		type = xstrdup("double precision"), oid = MYMETA_OID_FLOAT8;
	} else if (strcmp(dt, "year") == 0) {
		type = xstrdup("smallint"), oid = MYMETA_OID_INT2;
	} else if (strcmp(dt, "date") == 0) {
		type = xstrdup("date"), oid = MYMETA_OID_DATE;
	} else if (strcmp(dt, "time") == 0 || strcmp(dt, "datetime") == 0 ||
		   strcmp(dt, "timestamp") == 0) {
		if (in->fsp < 0 || in->fsp > 6)
			return "fractional seconds precision out of range";
		fsp = (uint8_t)in->fsp;
		if (strcmp(dt, "time") == 0)
			type = xstrdup("interval"), oid = MYMETA_OID_INTERVAL;
		else if (strcmp(dt, "datetime") == 0)
			type = xasprintf("timestamp(%u) without time zone", fsp),
			oid = MYMETA_OID_TIMESTAMP;
		else
			type = xasprintf("timestamp(%u) with time zone", fsp),
			oid = MYMETA_OID_TIMESTAMPTZ;
	} else if (strcmp(dt, "char") == 0 || strcmp(dt, "varchar") == 0) {
		const char *why = text_charset_problem(in->collation);
		if (why != NULL)
			return why;
		coll = in->collation;
		if (in->char_len >= 1 && in->char_len <= 10485760)
			type = xasprintf("character varying(%lld)", in->char_len),
			oid = MYMETA_OID_VARCHAR;
		else
			type = xstrdup("text"), oid = MYMETA_OID_TEXT;
	} else if (is_one_of(dt, text_types)) {
		const char *why = text_charset_problem(in->collation);
		if (why != NULL)
			return why;
		coll = in->collation;
		if (in->is_json && strcmp(dt, "longtext") == 0)
			type = xstrdup("json"), oid = MYMETA_OID_JSON;
		else
			type = xstrdup("text"), oid = MYMETA_OID_TEXT;
	} else if (strcmp(dt, "enum") == 0 || strcmp(dt, "set") == 0) {
		const char *why = text_charset_problem(in->collation);
		if (why != NULL)
			return why;
		coll = in->collation;
		type = xstrdup("text"), oid = MYMETA_OID_TEXT;
	} else if (is_one_of(dt, bin_types) || is_one_of(dt, geo_types)) {
		type = xstrdup("bytea"), oid = MYMETA_OID_BYTEA;
	} else if (strcmp(dt, "bit") == 0) {
		if (in->precision < 1 || in->precision > 64)
			return "BIT width out of range";
		type = xasprintf("bit(%lld)", in->precision), oid = MYMETA_OID_BIT;
	} else if (strcmp(dt, "uuid") == 0) {
		type = xstrdup("uuid"), oid = MYMETA_OID_UUID, ext = BINLOG_EXT_UUID;
	} else if (strcmp(dt, "inet6") == 0) {
		type = xstrdup("inet"), oid = MYMETA_OID_INET, ext = BINLOG_EXT_INET6;
	} else if (strcmp(dt, "inet4") == 0) {
		type = xstrdup("inet"), oid = MYMETA_OID_INET, ext = BINLOG_EXT_INET4;
	} else if (strcmp(dt, "json") == 0) {
		/*
		 * Only MySQL says "json" here (MariaDB's JSON is a LONGTEXT, above).
		 * Its values are binary JSON in the binlog, rendered by myjson.c as
		 * the text MySQL prints, which is also what a SELECT returns; that
		 * text is always utf8mb4 (information_schema gives the column no
		 * collation), so the snapshot reads it as utf8mb4_bin (46).  Not
		 * tested against a MySQL server.
		 */
		coll = 46;
		type = xstrdup("json"), oid = MYMETA_OID_JSON;
	} else {
		return "type not supported";
	}
	free(out->type);
	free(out->src_type);
	out->type = type;
	out->type_oid = oid;
	out->src_type = xstrdup(in->column_type);
	out->src_collation = coll;
	out->src_ext = ext;
	out->src_fsp = fsp;
	return NULL;
}

/* --- catalog queries ------------------------------------------------------------------ */

static const char *const sql_tables =
    "SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(TABLE_ROWS, 0), TABLE_TYPE "
    "FROM information_schema.TABLES "
    "WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') "
    "  AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', "
    "                           'migd') "
    "ORDER BY TABLE_SCHEMA, TABLE_NAME";

/* %1$s: the schema literal, %2$s: the table literal. */
static const char *const sql_columns =
    "SELECT c.COLUMN_NAME, LOWER(c.DATA_TYPE), c.COLUMN_TYPE, c.NUMERIC_PRECISION, "
    "  c.NUMERIC_SCALE, c.DATETIME_PRECISION, c.CHARACTER_MAXIMUM_LENGTH, co.ID, "
    "  c.IS_NULLABLE, c.IS_GENERATED, "
    "  EXISTS (SELECT 1 FROM information_schema.CHECK_CONSTRAINTS k "
    "          WHERE k.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME "
    "            AND k.CHECK_CLAUSE = CONCAT('json_valid(`', "
    "                                        REPLACE(c.COLUMN_NAME, '`', '``'), '`)')) "
    "FROM information_schema.COLUMNS c "
    "LEFT JOIN information_schema.COLLATIONS co ON co.COLLATION_NAME = c.COLLATION_NAME "
    "WHERE c.TABLE_SCHEMA = %1$s AND c.TABLE_NAME = %2$s "
    "ORDER BY c.ORDINAL_POSITION";

/* Unique indexes, the primary key first, columns in key order. */
static const char *const sql_keys =
    "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
    "WHERE TABLE_SCHEMA = %1$s AND TABLE_NAME = %2$s AND NON_UNIQUE = 0 "
    "ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX";

static char *table_sql(struct myconn *c, const char *fmt, const char *schema, const char *name)
{
	char *ls = myconn_literal(c, schema, strlen(schema));
	char *ln = myconn_literal(c, name, strlen(name));
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* the two queries above */
	char *sql = xasprintf(fmt, ls, ln);
#pragma GCC diagnostic pop
	free(ls);
	free(ln);
	return sql;
}

static long long num_or(const char *s, long long dflt)
{
	return s ? strtoll(s, NULL, 10) : dflt;
}

/* Columns; false with err on a query failure, problems for unmappable types. */
static bool load_columns(struct myconn *c, struct mig_table *t, struct problems *p,
			 bool *unmappable, struct err *err)
{
	char *sql = table_sql(c, sql_columns, t->schema, t->name);
	MYSQL_RES *r = myconn_query(c, sql, err);
	free(sql);
	if (r == NULL)
		return false;
	t->cols = xcalloc((size_t)mysql_num_rows(r) + 1, sizeof(*t->cols));
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL) {
		if (row[9] != NULL && strcmp(row[9], "NEVER") != 0)
			continue; /* generated: the target computes its own */
		struct mymeta_coldef d = {
		    .name = row[0],
		    .data_type = row[1] ? row[1] : "",
		    .column_type = row[2] ? row[2] : "",
		    .precision = num_or(row[3], -1),
		    .scale = num_or(row[4], -1),
		    .fsp = num_or(row[5], 0),
		    .char_len = num_or(row[6], -1),
		    .collation = (uint32_t)num_or(row[7], 0),
		    .is_json = row[10] != NULL && strcmp(row[10], "1") == 0,
		};
		struct mig_column *col = &t->cols[t->ncols];
		const char *why = mymeta_map_column(&d, col);
		if (why != NULL) {
			problem(p, "%s.%s: column %s is %s: %s", t->schema, t->name, d.name,
				d.column_type, why);
			*unmappable = true;
			continue;
		}
		col->name = xstrdup(d.name);
		col->not_null = row[8] != NULL && strcmp(row[8], "NO") == 0;
		t->ncols++;
	}
	mysql_free_result(r);
	return true;
}

static int col_index(const struct mig_table *t, const char *name)
{
	for (int i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * The key: PRIMARY, else the usable unique index (every column migrated
 * and NOT NULL) with the fewest columns.
 */
static bool load_key(struct myconn *c, struct mig_table *t, struct err *err)
{
	char *sql = table_sql(c, sql_keys, t->schema, t->name);
	MYSQL_RES *r = myconn_query(c, sql, err);
	free(sql);
	if (r == NULL)
		return false;
	int n = (int)mysql_num_rows(r);
	int *cand = xcalloc((size_t)n + 1, sizeof(int)),
	    *best = xcalloc((size_t)n + 1, sizeof(int));
	int ncand = 0, nbest = 0;
	bool usable = true, best_is_pk = false, cand_is_pk = false;
	char *cur = NULL;
	MYSQL_ROW row;
	for (int i = 0; i <= n; i++) {
		row = i < n ? mysql_fetch_row(r) : NULL;
		if (row == NULL || cur == NULL || strcmp(row[0], cur) != 0) {
			/* the index in cand is complete */
			if (cur != NULL && usable && ncand > 0 &&
			    (nbest == 0 || (!best_is_pk && (cand_is_pk || ncand < nbest)))) {
				memcpy(best, cand, (size_t)ncand * sizeof(int));
				nbest = ncand;
				best_is_pk = cand_is_pk;
			}
			if (row == NULL)
				break;
			free(cur);
			cur = xstrdup(row[0]);
			cand_is_pk = strcmp(cur, "PRIMARY") == 0;
			ncand = 0;
			usable = true;
		}
		int ci = col_index(t, row[1]);
		if (ci < 0 || (!cand_is_pk && !t->cols[ci].not_null))
			usable = false;
		else
			cand[ncand++] = ci;
	}
	mysql_free_result(r);
	free(cur);
	free(cand);
	t->nkey = nbest;
	t->key_idx = best;
	t->key_kind = nbest == 0 ? 0 : best_is_pk ? 'p' : 'i';
	for (int k = 0; k < nbest; k++)
		t->cols[best[k]].key_pos = k + 1;
	return true;
}

/*
 * Fills t for schema.name (est: TABLE_ROWS text).  False with err on a
 * query failure; an unmappable column is a problem in p (*unmappable set).
 */
static bool fill_table(struct myconn *c, struct mig_table *t, const char *schema, const char *name,
		       const char *est, bool insert_only, struct problems *p, bool *unmappable,
		       struct err *err)
{
	t->schema = xstrdup(schema);
	t->name = xstrdup(name);
	char *qs = myconn_ident(schema), *qn = myconn_ident(name);
	t->qname = xasprintf("%s.%s", qs, qn);
	free(qs);
	free(qn);
	t->tgt_qname = pgconn_qualified(schema, name);
	t->replident = 'f';
	t->est_rows = strtod(est, NULL);
	t->insert_only = insert_only;
	return load_columns(c, t, p, unmappable, err) && load_key(c, t, err);
}

bool mymeta_load_source(struct myconn *c, const char *include, const char *exclude,
			const char *insert_only, struct mig_tableset *out, struct err *err)
{
	struct problems p = {0};
	MYSQL_RES *r = myconn_query(c, sql_tables, err);
	if (r == NULL)
		return false;
	memset(out, 0, sizeof(*out));
	out->t = xcalloc((size_t)mysql_num_rows(r) + 1, sizeof(*out->t));
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL) {
		const char *schema = row[0], *name = row[1];
		if (!table_list_match(include, schema, name) ||
		    table_list_match(exclude, schema, name))
			continue;
		if (strcmp(row[3], "BASE TABLE") != 0) {
			problem(&p, "%s.%s: system-versioned tables are not supported (exclude it)",
				schema, name);
			continue;
		}
		struct mig_table *t = &out->t[out->n++];
		t->src_relid = (uint32_t)out->n;
		bool unmappable = false;
		if (!fill_table(c, t, schema, name, row[2],
				table_list_match(insert_only, schema, name), &p, &unmappable,
				err)) {
			mysql_free_result(r);
			tableset_free(out);
			return false;
		}
		if (unmappable)
			continue; /* already reported; its key may name a refused column */
		for (int k = 0; k < t->nkey; k++)
			if (t->cols[t->key_idx[k]].type_oid == MYMETA_OID_JSON)
				problem(&p,
					"%s.%s: key column %s is JSON, which PostgreSQL cannot "
					"compare",
					schema, name, t->cols[t->key_idx[k]].name);
		if (t->nkey == 0 && !t->insert_only)
			problem(&p,
				"%s.%s has no primary key or unique key on NOT NULL columns: add "
				"one, or list it in [tables] insert_only",
				schema, name);
	}
	mysql_free_result(r);
	if (out->n == 0 && p.n == 0)
		problem(&p, "no table on the source matches [tables] include = %s", include);
	if (p.n > 0) {
		/* the connection says which server: the source, or a target read as one */
		err_set(err, "%s: %d table problem%s:\n%s", c->label, p.n, p.n > 1 ? "s" : "",
			p.text);
		tableset_free(out);
		return false;
	}
	return true;
}

bool mymeta_load_table(struct myconn *c, const char *schema, const char *name,
		       struct mig_tableset *out, struct err *err)
{
	struct problems p = {0};
	bool unmappable = false;
	memset(out, 0, sizeof(*out));
	out->t = xcalloc(2, sizeof(*out->t));
	out->n = 1;
	out->t[0].src_relid = 1;
	bool ok = fill_table(c, &out->t[0], schema, name, "0", false, &p, &unmappable, err);
	if (ok && out->t[0].ncols == 0 && !unmappable) {
		err_set(err, "%s: table %s.%s does not exist", c->label, schema, name);
		ok = false;
	} else if (ok && p.n > 0) {
		err_set(err, "%s: %s", c->label, p.text);
		ok = false;
	} else if (ok && out->t[0].nkey == 0) {
		err_set(err, "%s: table %s.%s has no primary key", c->label, schema, name);
		ok = false;
	}
	if (!ok)
		tableset_free(out);
	return ok;
}
