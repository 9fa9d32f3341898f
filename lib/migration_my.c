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
#include "pgmeta.h"
#include "mytarget.h"
#include "util.h"

/*
 * The AUTO_INCREMENT column of table db.name and the counter's next value
 * (*next 0 and *col NULL when it has none).  Caller frees *col.
 */
static bool auto_increment(struct myconn *c, const char *db, const char *name, char **col,
			   uint64_t *next, struct err *err)
{
	char *ld = myconn_literal(c, db, strlen(db));
	char *ln = myconn_literal(c, name, strlen(name));
	char *sql =
	    xasprintf("SELECT c.COLUMN_NAME, t.AUTO_INCREMENT FROM information_schema.TABLES t "
		      "JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA "
		      "  AND c.TABLE_NAME = t.TABLE_NAME AND c.EXTRA LIKE '%%auto_increment%%' "
		      "WHERE t.TABLE_SCHEMA = %s AND t.TABLE_NAME = %s",
		      ld, ln);
	free(ld);
	free(ln);
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
static bool set_next(struct pgconn *pg, const char *seq, uint64_t next, struct err *err)
{
	char v[24];
	snprintf(v, sizeof(v), "%llu", (unsigned long long)(next > 1 ? next - 1 : 1));
	const char *p[] = {seq, v, next > 1 ? "true" : "false"};
	return pgconn_exec_params(pg, "SELECT setval($1::regclass, $2::bigint, $3::bool)", 3, p,
				  err);
}

/*
 * Sequences are not carried by replication: before a PostgreSQL side takes
 * writes, every sequence owned by one of its migrated tables (serial or
 * identity) must stand past the rows already there, or its next insert
 * collides.  The sequence of the MySQL/MariaDB side's AUTO_INCREMENT column
 * continues where that counter stands; any other continues after the
 * column's largest value.  pg_is_target: the PostgreSQL side is the
 * migration's target (tgt_qname), the MySQL/MariaDB side its source
 * (schema.name); else the other way round.
 */
static bool pg_sequences_from_my(struct pgconn *pg, struct myconn *my,
				 const struct mig_tableset *ts, bool pg_is_target, int *n,
				 struct err *err)
{
	*n = 0;
	for (int i = 0; i < ts->n; i++) {
		const struct mig_table *t = &ts->t[i];
		const char *pq = pg_is_target ? t->tgt_qname : t->qname;
		char *db, *name;
		if (pg_is_target) {
			db = xstrdup(t->schema);
			name = xstrdup(t->name);
		} else {
			mytarget_names(t, &db, &name);
		}
		PGresult *r = pgmeta_owned_sequences(pg, pq, err);
		char *auto_col = NULL;
		uint64_t auto_next = 0;
		bool ok = r != NULL &&
			  (PQntuples(r) == 0 || auto_increment(my, db, name, &auto_col, &auto_next, err));
		free(db);
		free(name);
		for (int k = 0; ok && k < PQntuples(r); k++) {
			const char *seq = PQgetvalue(r, k, 0), *col = PQgetvalue(r, k, 1);
			uint64_t next = auto_next;
			/* The same column under the target's name ([tables] columns). */
			const char *ac = auto_col && pg_is_target ? table_tgt_col(t, auto_col) : auto_col;
			const char *pc = pg_is_target ? col : table_tgt_col(t, col);
			if (ac == NULL || strcasecmp(ac, pc) != 0 || auto_next == 0) {
				char *id = pgconn_ident(col);
				char *sql = xasprintf("SELECT coalesce(max(%s), 0) + 1 FROM %s", id, pq);
				char *v = pgconn_query_value(pg, sql, 0, NULL, err);
				free(sql);
				free(id);
				ok = v != NULL;
				next = v ? strtoull(v, NULL, 10) : 0;
				free(v);
			}
			ok = ok && set_next(pg, seq, next, err);
			if (ok) {
				log_event(LOG_LVL_NOTICE, "sequence", "table=%s sequence=%s next=%llu",
					  pq, seq, (unsigned long long)next);
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

bool mig_my_sequences(struct migration *m, int *n, struct err *err)
{
	return pg_sequences_from_my(&m->store.pg, &m->mysrc, &m->ts, true, n, err);
}

bool mig_my_source_sequences(struct migration *m, int *n, struct err *err)
{
	return pg_sequences_from_my(&m->src, &m->store.my, &m->ts, false, n, err);
}

/*
 * The next value the source hands out for t's AUTO_INCREMENT-like column:
 * a MySQL/MariaDB source's counter, or a PostgreSQL source's owned
 * sequence (last_value + 1 once called).  0 when there is none.
 */
static bool source_next(struct migration *m, const struct mig_table *t, char **col,
			uint64_t *next, struct err *err)
{
	*col = NULL;
	*next = 0;
	if (mig_binlog_source(m))
		return auto_increment(&m->mysrc, t->schema, t->name, col, next, err);
	PGresult *r = pgmeta_owned_sequences(&m->src, t->qname, err);
	if (r == NULL)
		return false;
	bool ok = true;
	if (PQntuples(r) > 0) {
		char *sql = xasprintf("SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END "
				      "FROM %s",
				      PQgetvalue(r, 0, 0));
		char *v = pgconn_query_value(&m->src, sql, 0, NULL, err);
		free(sql);
		ok = v != NULL;
		if (ok) {
			*col = xstrdup(PQgetvalue(r, 0, 1));
			*next = strtoull(v, NULL, 10);
		}
		free(v);
	}
	PQclear(r);
	return ok;
}

bool mig_my_target_counters(struct migration *m, int *n, struct err *err)
{
	*n = 0;
	for (int i = 0; i < m->ts.n; i++) {
		const struct mig_table *t = &m->ts.t[i];
		char *db, *name, *scol = NULL, *tcol = NULL;
		uint64_t snext = 0, tnext = 0;
		mytarget_names(t, &db, &name);
		bool ok = source_next(m, t, &scol, &snext, err) &&
			  auto_increment(&m->store.my, db, name, &tcol, &tnext, err);
		/* InnoDB keeps the counter past every explicit value; only the source's gaps matter. */
		if (ok && scol && tcol && strcasecmp(table_tgt_col(t, scol), tcol) == 0 &&
		    snext > tnext) {
			char *id_db = myconn_ident(db), *id_name = myconn_ident(name);
			char *sql = xasprintf("ALTER TABLE %s.%s AUTO_INCREMENT = %llu", id_db, id_name,
					      (unsigned long long)snext);
			ok = myconn_exec(&m->store.my, sql, err);
			free(sql);
			free(id_db);
			free(id_name);
			if (ok) {
				log_event(LOG_LVL_NOTICE, "sequence", "table=%s.%s auto_increment=%llu",
					  db, name, (unsigned long long)snext);
				(*n)++;
			}
		}
		free(db);
		free(name);
		free(scol);
		free(tcol);
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
