/* pgcapture: preconditions, publication, slot + exported snapshot (see pgcapture.h). */
#include "pgcapture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pos.h"
#include "util.h"

#define DROP_WAIT_MS 10000

static const char *const sql_preconditions =
	"SELECT current_setting('wal_level'),"
	"  (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),"
	"  current_setting('max_replication_slots')::int"
	"    - (SELECT count(*) FROM pg_replication_slots),"
	"  current_setting('max_wal_senders')::int"
	"    - (SELECT count(*) FROM pg_stat_replication),"
	"  EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)";

bool pgcapture_check(struct pgconn *src, const char *slot, struct err *err)
{
	const char *params[] = {slot};
	PGresult *r = pgconn_query(src, sql_preconditions, 1, params, err);
	if (r == NULL)
		return false;
	bool ok = false;
	bool slot_exists = PQgetvalue(r, 0, 4)[0] == 't';
	if (strcmp(PQgetvalue(r, 0, 0), "logical") != 0)
		err_set(err,
			"source: wal_level is '%s'; logical decoding needs wal_level = logical "
			"(set it and restart the source)",
			PQgetvalue(r, 0, 0));
	else if (PQgetvalue(r, 0, 1)[0] != 't')
		err_set(err, "source: the role migd connects as lacks the REPLICATION attribute "
			     "(ALTER ROLE ... REPLICATION)");
	else if (!slot_exists && atoi(PQgetvalue(r, 0, 2)) < 1)
		err_set(err, "source: no free replication slot (raise max_replication_slots)");
	else if (atoi(PQgetvalue(r, 0, 3)) < 1)
		err_set(err, "source: no free WAL sender (raise max_wal_senders)");
	else
		ok = true;
	PQclear(r);
	return ok;
}

bool pgcapture_publication(struct pgconn *src, const char *publication,
			   const struct mig_tableset *ts, struct err *err)
{
	const char *params[] = {publication};
	PGresult *r = pgconn_query(src,
				   "SELECT schemaname, tablename FROM pg_publication_tables "
				   "WHERE pubname = $1",
				   1, params, err);
	if (r == NULL)
		return false;
	bool exists;
	{
		PGresult *e = pgconn_query(src, "SELECT 1 FROM pg_publication WHERE pubname = $1", 1,
					   params, err);
		if (e == NULL) {
			PQclear(r);
			return false;
		}
		exists = PQntuples(e) == 1;
		PQclear(e);
	}
	char *pub = pgconn_ident(publication);
	bool ok = true;
	if (!exists) {
		char *sql = xasprintf("CREATE PUBLICATION %s", pub);
		ok = pgconn_exec(src, sql, err);
		free(sql);
	}
	for (int i = 0; ok && i < ts->n; i++) {
		bool have = false;
		for (int k = 0; k < PQntuples(r) && !have; k++)
			have = strcmp(PQgetvalue(r, k, 0), ts->t[i].schema) == 0 &&
			       strcmp(PQgetvalue(r, k, 1), ts->t[i].name) == 0;
		if (!have) {
			char *sql = xasprintf("ALTER PUBLICATION %s ADD TABLE %s", pub, ts->t[i].qname);
			ok = pgconn_exec(src, sql, err);
			free(sql);
		}
	}
	free(pub);
	PQclear(r);
	return ok;
}

static bool create_slot(const char *repl_conninfo, const char *slot, bool temporary,
			struct pgcapture *cap, struct err *err)
{
	memset(cap, 0, sizeof(*cap));
	if (!pgconn_open(&cap->holder, "source (slot)", repl_conninfo, err))
		return false;
	char *id = pgconn_ident(slot);
	char *cmd = xasprintf("CREATE_REPLICATION_SLOT %s%s LOGICAL pgoutput (SNAPSHOT 'export')",
			      id, temporary ? " TEMPORARY" : "");
	free(id);
	PGresult *r = PQexec(cap->holder.conn, cmd);
	free(cmd);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		err_set(err, "source: cannot create replication slot %s: %s", slot,
			PQresultErrorMessage(r));
		PQclear(r);
		pgconn_close(&cap->holder);
		return false;
	}
	/* Columns: slot_name, consistent_point, snapshot_name, output_plugin. */
	if (!pos_lsn_parse(PQgetvalue(r, 0, 1), &cap->consistent_lsn)) {
		err_set(err, "source: bad consistent point '%s'", PQgetvalue(r, 0, 1));
		PQclear(r);
		pgconn_close(&cap->holder);
		return false;
	}
	snprintf(cap->snapshot, sizeof(cap->snapshot), "%s", PQgetvalue(r, 0, 2));
	PQclear(r);
	return true;
}

bool pgcapture_create_slot(const char *repl_conninfo, const char *slot, struct pgcapture *cap,
			   struct err *err)
{
	return create_slot(repl_conninfo, slot, false, cap, err);
}

bool pgcapture_create_temp_slot(const char *repl_conninfo, const char *slot,
				struct pgcapture *cap, struct err *err)
{
	return create_slot(repl_conninfo, slot, true, cap, err);
}

void pgcapture_release(struct pgcapture *cap)
{
	pgconn_close(&cap->holder);
	cap->snapshot[0] = '\0';
}

bool pgcapture_slot_info(struct pgconn *src, const char *slot, struct pgcapture_slot *out,
			 struct err *err)
{
	const char *params[] = {slot};
	memset(out, 0, sizeof(*out));
	PGresult *r = pgconn_query(src,
				   "SELECT s.active, coalesce(s.confirmed_flush_lsn::text, '0/0'), "
				   "  coalesce(s.restart_lsn::text, '0/0'), pg_current_wal_lsn()::text "
				   "FROM (SELECT 1) x LEFT JOIN pg_replication_slots s "
				   "  ON s.slot_name = $1",
				   1, params, err);
	if (r == NULL)
		return false;
	out->exists = !PQgetisnull(r, 0, 0);
	out->active = PQgetvalue(r, 0, 0)[0] == 't';
	bool ok = pos_lsn_parse(PQgetvalue(r, 0, 1), &out->confirmed_flush) &&
		  pos_lsn_parse(PQgetvalue(r, 0, 2), &out->restart_lsn) &&
		  pos_lsn_parse(PQgetvalue(r, 0, 3), &out->current_lsn);
	if (!ok)
		err_set(err, "source: unparsable LSN in pg_replication_slots");
	PQclear(r);
	return ok;
}

bool pgcapture_drop_slot(struct pgconn *src, const char *slot, struct err *err)
{
	const char *params[] = {slot};
	/*
	 * The walsender of a client that has just disconnected (our own stream,
	 * stopped a moment ago) can hold the slot a little longer, and dropping
	 * an active slot fails: give it DROP_WAIT_MS to let go.
	 */
	for (int waited = 0; waited < DROP_WAIT_MS; waited += 100) {
		char *active = pgconn_query_value(
			src,
			"SELECT coalesce((SELECT active::text FROM pg_replication_slots "
			"WHERE slot_name = $1), 'none')",
			1, params, err);
		if (active == NULL)
			return false;
		bool busy = strcmp(active, "true") == 0;
		free(active);
		if (!busy)
			break;
		sleep_interruptible(100, NULL);
	}
	return pgconn_exec_params(src,
				  "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
				  "WHERE slot_name = $1",
				  1, params, err);
}
