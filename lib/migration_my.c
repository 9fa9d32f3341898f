/*
 * migration_my: what the operator's operations need of a MySQL/MariaDB
 * (binlog) source beyond the freeze itself (myfreeze.h): the target's
 * sequences set from the source's AUTO_INCREMENT counters at the flip, and
 * the reverse sink's precondition checked at freeze (migd's user writes
 * through the frozen source's read_only).  Run by the coordinator thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "migration_int.h"
#include "myfreeze.h"
#include "util.h"

/*
 * The AUTO_INCREMENT column of t on the source and the counter's next
 * value (*next 0 and *col NULL when t has none).  Caller frees *col.
 */
static bool auto_increment(struct myconn *c, const struct mig_table *t, char **col, uint64_t *next,
			   struct err *err)
{
	char *db = myconn_literal(c, t->schema, strlen(t->schema));
	char *name = myconn_literal(c, t->name, strlen(t->name));
	char *sql =
	    xasprintf("SELECT c.COLUMN_NAME, t.AUTO_INCREMENT FROM information_schema.TABLES t "
		      "JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA "
		      "  AND c.TABLE_NAME = t.TABLE_NAME AND c.EXTRA LIKE '%%auto_increment%%' "
		      "WHERE t.TABLE_SCHEMA = %s AND t.TABLE_NAME = %s",
		      db, name);
	free(db);
	free(name);
	MYSQL_RES *r = myconn_query(c, sql, err);
	free(sql);
	if (r == NULL)
		return false;
	MYSQL_ROW row = mysql_fetch_row(r);
	*col = row && row[0] ? xstrdup(row[0]) : NULL;
	*next = row && row[1] ? strtoull(row[1], NULL, 10) : 0;
	mysql_free_result(r);
	return true;
}

/* Sets seq so that its next value is next (at least 1). */
static bool set_next(struct pgconn *tgt, const char *seq, uint64_t next, struct err *err)
{
	char v[24];
	snprintf(v, sizeof(v), "%llu", (unsigned long long)(next > 1 ? next - 1 : 1));
	const char *p[] = {seq, v, next > 1 ? "true" : "false"};
	return pgconn_exec_params(tgt, "SELECT setval($1::regclass, $2::bigint, $3::bool)", 3, p,
				  err);
}

/*
 * Sequences are not carried by replication: before the target takes writes
 * every sequence owned by a migrated target table (serial or identity) must
 * stand past the rows already there, or its next insert collides.  The
 * sequence of the source's AUTO_INCREMENT column continues where the
 * source's counter stands; any other continues after the column's largest
 * value on the target.
 */
bool mig_my_sequences(struct migration *m, int *n, struct err *err)
{
	*n = 0;
	for (int i = 0; i < m->ts.n; i++) {
		const struct mig_table *t = &m->ts.t[i];
		const char *p[] = {t->tgt_qname};
		PGresult *r =
		    pgconn_query(&m->store.pg,
				 "SELECT d.objid::regclass::text, a.attname FROM pg_depend d "
				 "JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'S' "
				 "JOIN pg_attribute a ON a.attrelid = d.refobjid "
				 "  AND a.attnum = d.refobjsubid "
				 "WHERE d.refobjid = $1::regclass AND d.deptype IN ('a', 'i')",
				 1, p, err);
		if (r == NULL)
			return false;
		char *auto_col = NULL;
		uint64_t auto_next = 0;
		bool ok =
		    PQntuples(r) == 0 || auto_increment(&m->mysrc, t, &auto_col, &auto_next, err);
		for (int k = 0; ok && k < PQntuples(r); k++) {
			const char *seq = PQgetvalue(r, k, 0), *col = PQgetvalue(r, k, 1);
			uint64_t next = auto_next;
			if (auto_col == NULL || strcasecmp(auto_col, col) != 0 || auto_next == 0) {
				char *id = pgconn_ident(col);
				char *sql = xasprintf("SELECT coalesce(max(%s), 0) + 1 FROM %s", id,
						      t->tgt_qname);
				char *v = pgconn_query_value(&m->store.pg, sql, 0, NULL, err);
				free(sql);
				free(id);
				ok = v != NULL;
				next = v ? strtoull(v, NULL, 10) : 0;
				free(v);
			}
			ok = ok && set_next(&m->store.pg, seq, next, err);
			if (ok) {
				log_event(LOG_LVL_NOTICE, "sequence",
					  "table=%s sequence=%s next=%llu", t->tgt_qname, seq,
					  (unsigned long long)next);
				(*n)++;
			}
		}
		free(auto_col);
		PQclear(r);
		if (!ok)
			return false;
	}
	return true;
}

json_t *mig_my_reverse_ready(struct migration *m)
{
	struct err err;
	bool yes = false;
	if (!mig_my_ensure(&m->mysrc, "source", m, &err) ||
	    !myfreeze_self_writable(&m->mysrc, &yes, &err))
		return json_pack("{s:b, s:s}", "ok", 0, "detail", err.msg);
	return json_pack(
	    "{s:b, s:s}", "ok", yes, "detail",
	    yes ? "migd's user on the source has READ_ONLY ADMIN: the reverse sink "
		  "writes through read_only"
		: "migd's user on the source lacks READ_ONLY ADMIN: reverse replication "
		  "could not write into the frozen source (GRANT READ_ONLY ADMIN ON *.* "
		  "to it)");
}
