/*
 * rehearse_my: a MySQL/MariaDB side of a rehearsal (see rehearse.h): the
 * checks of a MySQL/MariaDB target (the reverse stream reads its binlog)
 * and source (the reverse sink writes into it through read_only), the
 * probe table, and the binlog position the probe's stream starts at.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mycapture.h"
#include "myconn.h"
#include "myfreeze.h"
#include "mymeta.h"
#include "mystore.h"
#include "mytarget.h"
#include "rehearse_int.h"
#include "util.h"

/* Like migd's own tables (mystore.c): InnoDB, utf8mb4_bin, times in UTC. */
static const char *const probe_table_sql =
    "CREATE TABLE IF NOT EXISTS migd.rehearse_probe ("
    "  token VARCHAR(255) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL,"
    "  written_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'UTC'"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

bool rhmy_probe_table(struct myconn *c, struct err *err)
{
	/* CREATE ... IF NOT EXISTS is binlogged even when it does nothing: look first. */
	char *n =
	    myconn_query_value(c,
			       "SELECT count(*) FROM information_schema.TABLES "
			       "WHERE TABLE_SCHEMA = 'migd' AND TABLE_NAME = 'rehearse_probe'",
			       err);
	if (n == NULL)
		return false;
	bool have = strcmp(n, "0") != 0;
	free(n);
	return have || (myconn_exec(c,
				    "CREATE DATABASE IF NOT EXISTS migd CHARACTER SET utf8mb4 "
				    "COLLATE utf8mb4_bin",
				    err) &&
			myconn_exec(c, probe_table_sql, err));
}

/* --- the target: the reverse stream's source ------------------------------------------ */

/*
 * The target's migrated tables read as the reverse stream reads them
 * (mig_build_reverse_tables() at the flip): mappable types, the forward key.
 */
static void check_tables(struct rehearsal *r)
{
	const struct mig_tableset *ts = r->o->ts;
	struct strbuf inc = {0}, ins = {0}, bad = {0};
	for (int i = 0; i < ts->n; i++) {
		char *db, *name;
		mytarget_names(&ts->t[i], &db, &name);
		sb_addf(&inc, "%s%s.%s", i ? "," : "", db, name);
		if (ts->t[i].insert_only)
			sb_addf(&ins, "%s%s.%s", ins.len ? "," : "", db, name);
		free(db);
		free(name);
	}
	char *include = sb_take(&inc), *insert_only = sb_take(&ins);
	struct mig_tableset got = {0};
	struct err err;
	bool ok =
	    ts->n > 0 && mymeta_load_source(&r->tgt.my, include, NULL, insert_only, &got, &err);
	if (ts->n == 0)
		err_set(&err, "no migrated table");
	for (int i = 0; ok && i < ts->n; i++) {
		char *db, *name;
		mytarget_names(&ts->t[i], &db, &name);
		const struct mig_table *t = tableset_find(&got, db, name);
		if (t == NULL)
			sb_addf(&bad, "%s%s.%s is missing", bad.len ? "; " : "", db, name);
		else if (t->nkey != ts->t[i].nkey)
			sb_addf(&bad, "%s%s.%s has a different key than %s", bad.len ? "; " : "",
				db, name, ts->t[i].qname);
		free(db);
		free(name);
	}
	char *b = sb_take(&bad);
	if (!ok)
		rh_step(r, "target_tables", false,
			"the binlog reader cannot read the target's tables: %s", err.msg);
	else if (b && b[0])
		rh_step(r, "target_tables", false, "reverse replication needs them: %s", b);
	else
		rh_step(r, "target_tables", true,
			"the binlog reader can read the target's %d migrated table(s) (types "
			"mapped, the same key)",
			ts->n);
	free(b);
	free(include);
	free(insert_only);
	tableset_free(&got);
}

void rhmy_check_target(struct rehearsal *r)
{
	struct myconn *c = &r->tgt.my;
	struct err err;
	if (mycapture_check_settings(c, &err))
		rh_step(r, "target_binlog", true,
			"log_bin on, binlog_format ROW, binlog_row_image FULL, binlog_row_metadata "
			"FULL");
	else
		rh_step(r, "target_binlog", false,
			"the target's binlog cannot carry reverse replication: %s", err.msg);
	if (mycapture_check_grants(c, &err))
		rh_step(r, "target_binlog_grants", true,
			"migd's user has REPLICATION SLAVE and BINLOG MONITOR (or equivalent)");
	else
		rh_step(r, "target_binlog_grants", false, "%s", err.msg);
	if (mycapture_check_server_id(c, r->o->server_id, &err))
		rh_step(r, "target_server_id", true,
			"the reverse stream's server_id %u clashes with neither the target's nor a "
			"connected replica's",
			r->o->server_id);
	else
		rh_step(r, "target_server_id", false, "%s", err.msg);
	check_tables(r);
}

bool rhmy_start(struct rehearsal *r, struct pos *from, char *what, size_t n, struct err *err)
{
	char p[POS_TEXT_MAX];
	/* Before the position: DDL on a streamed table after it would stop the table. */
	if (!rhmy_probe_table(&r->tgt.my, err))
		return false;
	/* As the flip does (capture_reverse): a snapshot's GTID and coordinate agree exactly. */
	struct myconn c = {0};
	bool ok = myconn_open_dsn(&c, "target (position)", r->o->tgt_ci, err) &&
		  mycapture_snapshot(&c, from, err);
	myconn_close(&c);
	if (!ok)
		return false;
	snprintf(what, n,
		 "the target's binlog position %s (a consistent snapshot's, as the flip takes "
		 "it); the probe table migd.rehearse_probe on the target",
		 pos_format(from, p, sizeof(p)));
	crash_point(r->o->crash_at, "rehearse-position");
	return true;
}

/* --- the source: the reverse sink ----------------------------------------------------- */

/*
 * EXPLAINs the sink's statements on table qname (cols: the columns it
 * writes, quoted, comma-separated -- every one, or a strict sql_mode
 * refuses the missing NOT NULL ones; col: one of them): the server checks
 * every privilege a statement needs (also through roles) and read_only,
 * and writes nothing.  A refusal goes into *missing; false only when the
 * link failed.
 */
static bool explain_writes(struct myconn *c, const char *qname, const char *cols, const char *col,
			   struct strbuf *missing, struct err *err)
{
	char *id = myconn_ident(col);
	char *sql[] = {
	    xasprintf("EXPLAIN INSERT INTO %s (%s) SELECT %s FROM %s WHERE 0", qname, cols, cols,
		      qname),
	    xasprintf("EXPLAIN UPDATE %s SET %s = %s WHERE 0", qname, id, id),
	    xasprintf("EXPLAIN DELETE FROM %s WHERE 0", qname),
	};
	free(id);
	bool ok = true;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if (ok && !myconn_exec(c, sql[i], err)) {
			if (myconn_is_broken(c))
				ok = false;
			else
				sb_addf(missing, "%s%s", missing->len ? "; " : "",
					mysql_error(c->db));
		}
		free(sql[i]);
	}
	return ok;
}

static void check_tables_writable(struct rehearsal *r)
{
	const struct mig_tableset *ts = r->o->ts;
	struct strbuf missing = {0};
	struct err err;
	bool ok = true;
	for (int i = 0; ok && i < ts->n; i++) {
		const struct mig_table *t = &ts->t[i];
		const char *col = t->nkey > 0 ? t->cols[t->key_idx[0]].name : t->cols[0].name;
		struct strbuf cols = {0};
		for (int k = 0; k < t->ncols; k++) {
			char *id = myconn_ident(t->cols[k].name);
			sb_addf(&cols, "%s%s", k ? ", " : "", id);
			free(id);
		}
		char *cl = sb_take(&cols);
		ok = explain_writes(&r->src.my, t->qname, cl, col, &missing, &err);
		free(cl);
	}
	char *m = sb_take(&missing);
	if (!ok)
		rh_step(r, "source_write_privileges", false, "%s", err.msg);
	else if (m && m[0])
		rh_step(r, "source_write_privileges", false, "the reverse sink could not write: %s",
			m);
	else
		rh_step(r, "source_write_privileges", true,
			"INSERT, UPDATE and DELETE on the %d source table(s) (EXPLAINed)", ts->n);
	free(m);
}

static void check_read_only_admin(struct rehearsal *r)
{
	struct err err;
	bool yes = false;
	char *ro = NULL;
	if (!myfreeze_self_writable(&r->src.my, &yes, &err) ||
	    (ro = myconn_query_value(&r->src.my, "SELECT @@global.read_only", &err)) == NULL)
		rh_step(r, "source_read_only_admin", false, "%s", err.msg);
	else if (!yes)
		rh_step(
		    r, "source_read_only_admin", false,
		    "migd's user on the source lacks READ_ONLY ADMIN: the source stays read_only "
		    "after the flip and reverse replication could not write into it (GRANT "
		    "READ_ONLY ADMIN ON *.* to it)");
	else
		rh_step(
		    r, "source_read_only_admin", true,
		    "migd's user has READ_ONLY ADMIN: the reverse sink writes through read_only "
		    "(now %s)",
		    strcmp(ro, "0") == 0 ? "off" : "on");
	free(ro);
}

static void check_migd_database(struct rehearsal *r)
{
	/* With the columns the sink (and the cleanup) writes; the rest have defaults. */
	static const char *const tables[][2] = {
	    {"migd.progress", "name, applied_pos"},
	    {"migd.failed_records", "name, table_name, source_pos, `change`, error"},
	    {"migd.parked", "name, table_name, source_pos, `change`, reason"},
	    {"migd.rehearse_probe", "token, name"},
	};
	struct strbuf missing = {0};
	struct err err;
	bool ok = mystore_init_sink(&r->src.my, &err) && rhmy_probe_table(&r->src.my, &err);
	for (size_t i = 0; ok && i < sizeof(tables) / sizeof(tables[0]); i++)
		ok = explain_writes(&r->src.my, tables[i][0], tables[i][1], "name", &missing, &err);
	char *m = sb_take(&missing);
	if (!ok)
		rh_step(r, "source_migd_database", false,
			"cannot set up the source's migd database: %s", err.msg);
	else if (m && m[0])
		rh_step(r, "source_migd_database", false,
			"the sink could not keep its state in the source's migd database: %s", m);
	else
		rh_step(r, "source_migd_database", true,
			"the source's migd database is there and writable");
	free(m);
}

void rhmy_check_source(struct rehearsal *r)
{
	check_tables_writable(r);
	check_read_only_admin(r);
	check_migd_database(r);
}
