/*
 * rehearse_pg: a PostgreSQL side of a rehearsal (see rehearse.h): the
 * checks of a PostgreSQL target (the reverse slot's host) and source (the
 * reverse sink), the probe's slot and publication on the target, and
 * dropping them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgconn.h"
#include "pgstore.h"
#include "rehearse_int.h"
#include "util.h"

static const char *const probe_table_sql =
    "CREATE TABLE IF NOT EXISTS migd.rehearse_probe ("
    "  token text PRIMARY KEY, name text NOT NULL,"
    "  written_at timestamptz NOT NULL DEFAULT clock_timestamp())";

/* --- checks -------------------------------------------------------------------- */

static const char *const target_sql =
    "SELECT current_setting('wal_level'), r.rolreplication, r.rolsuper, current_user, "
    "  current_setting('max_replication_slots')::int "
    "    - (SELECT count(*) FROM pg_replication_slots), "
    "  current_setting('max_wal_senders')::int - (SELECT count(*) FROM pg_stat_replication) "
    "FROM pg_roles r WHERE r.rolname = current_user";

/* CREATE PUBLICATION for every target table, rolled back: it needs each table's ownership. */
static void check_publication(struct rehearsal *r)
{
	const struct mig_tableset *ts = r->o->ts;
	struct strbuf sql = {0};
	struct err err, e2;
	char *pub = pgconn_ident(r->o->publication);
	sb_addf(&sql, "CREATE PUBLICATION %s FOR TABLE ", pub);
	for (int i = 0; i < ts->n; i++)
		sb_addf(&sql, "%s%s", i ? ", " : "", ts->t[i].tgt_qname);
	free(pub);
	char *s = sb_take(&sql);
	bool ok =
	    ts->n > 0 && pgconn_exec(&r->tgt.pg, "BEGIN", &err) && pgconn_exec(&r->tgt.pg, s, &err);
	if (ts->n == 0)
		err_set(&err, "no migrated table");
	free(s);
	if (!pgconn_exec(&r->tgt.pg, "ROLLBACK", &e2) && ok) {
		err = e2;
		ok = false;
	}
	if (ok)
		rh_step(
		    r, "target_publication", true,
		    "may publish the %d migrated table(s) on the target (created and rolled back)",
		    ts->n);
	else
		rh_step(r, "target_publication", false, "cannot publish the target's tables: %s",
			err.msg);
}

void rhpg_check_target(struct rehearsal *r)
{
	struct err err;
	PGresult *res = pgconn_query(&r->tgt.pg, target_sql, 0, NULL, &err);
	if (res == NULL) {
		rh_step(r, "target_wal_level", false, "%s", err.msg);
		rh_skip(r, "target_replication_role", "skipped: the target did not answer");
		rh_skip(r, "target_free_slot", "skipped: the target did not answer");
	} else {
		const char *wal = PQgetvalue(res, 0, 0), *user = PQgetvalue(res, 0, 3);
		bool repl = PQgetvalue(res, 0, 1)[0] == 't',
		     super = PQgetvalue(res, 0, 2)[0] == 't';
		int slots = atoi(PQgetvalue(res, 0, 4)), senders = atoi(PQgetvalue(res, 0, 5));
		if (strcmp(wal, "logical") == 0)
			rh_step(r, "target_wal_level", true, "wal_level = logical");
		else
			rh_step(
			    r, "target_wal_level", false,
			    "wal_level is '%s': the reverse slot needs wal_level = logical (set "
			    "it and "
			    "restart the target)",
			    wal);
		if (repl || super)
			rh_step(r, "target_replication_role", true, "role %s %s", user,
				super ? "is a superuser" : "has REPLICATION");
		else
			rh_step(
			    r, "target_replication_role", false,
			    "role %s lacks the REPLICATION attribute (ALTER ROLE %s REPLICATION)",
			    user, user);
		if (slots >= 1 && senders >= 1)
			rh_step(r, "target_free_slot", true,
				"%d free replication slot(s), %d free WAL sender(s)", slots,
				senders);
		else
			rh_step(
			    r, "target_free_slot", false,
			    "%s (%d free slot(s), %d free WAL sender(s))",
			    slots < 1
				? "no free replication slot: raise max_replication_slots or drop "
				  "an unused slot"
				: "no free WAL sender: raise max_wal_senders",
			    slots, senders);
		PQclear(res);
	}
	check_publication(r);
}

/* Every privilege has its own has_table_privilege(): given a list, it answers "any of them". */
static const char *const table_priv_sql =
    "SELECT array_to_string(ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', "
    "  'DELETE']) p WHERE NOT has_table_privilege($1::regclass, p)), ', ')";

/* session_replication_role (the sink's, so source triggers stay quiet) is superuser-only unless
 * granted. */
static const char *const replica_role_sql =
    "SELECT rolsuper OR has_parameter_privilege('session_replication_role', 'SET') "
    "FROM pg_roles WHERE rolname = current_user";

static const char *const schema_priv_sql =
    "SELECT has_schema_privilege('migd', 'USAGE') AND has_schema_privilege('migd', 'CREATE') "
    "  AND has_table_privilege('migd.progress', 'INSERT') "
    "  AND has_table_privilege('migd.progress', 'UPDATE') "
    "  AND has_table_privilege('migd.failed_records', 'INSERT') "
    "  AND has_table_privilege('migd.parked', 'INSERT') "
    "  AND has_table_privilege('migd.rehearse_probe', 'INSERT') "
    "  AND has_table_privilege('migd.rehearse_probe', 'DELETE')";

void rhpg_check_source(struct rehearsal *r)
{
	const struct mig_tableset *ts = r->o->ts;
	struct strbuf missing = {0};
	struct err err;
	bool ok = true;
	for (int i = 0; ok && i < ts->n; i++) {
		const char *p[] = {ts->t[i].qname};
		char *v = pgconn_query_value(&r->src.pg, table_priv_sql, 1, p, &err);
		ok = v != NULL;
		if (v && v[0])
			sb_addf(&missing, "%s%s lacks %s", missing.len ? "; " : "", ts->t[i].qname,
				v);
		free(v);
	}
	char *v = ok ? pgconn_query_value(&r->src.pg, replica_role_sql, 0, NULL, &err) : NULL;
	ok = v != NULL;
	if (v && v[0] != 't')
		sb_addf(&missing,
			"%scannot set session_replication_role (superuser, or GRANT SET ON "
			"PARAMETER session_replication_role)",
			missing.len ? "; " : "");
	free(v);
	char *m = sb_take(&missing);
	if (!ok)
		rh_step(r, "source_write_privileges", false, "%s", err.msg);
	else if (m[0])
		rh_step(r, "source_write_privileges", false, "the reverse sink could not write: %s",
			m);
	else
		rh_step(r, "source_write_privileges", true,
			"SELECT, INSERT, UPDATE, DELETE on the %d source table(s); may set "
			"session_replication_role",
			ts->n);
	free(m);

	v = NULL;
	ok = pgstore_init(&r->src.pg, &err) && pgconn_exec(&r->src.pg, probe_table_sql, &err) &&
	     (v = pgconn_query_value(&r->src.pg, schema_priv_sql, 0, NULL, &err)) != NULL;
	if (!ok)
		rh_step(r, "source_migd_schema", false,
			"cannot set up the source's migd schema: %s", err.msg);
	else if (v[0] != 't')
		rh_step(r, "source_migd_schema", false,
			"the source's migd schema or its tables are not writable by migd's role");
	else
		rh_step(r, "source_migd_schema", true, "the source's migd schema is writable");
	free(v);
}

/* --- the probe's slot ------------------------------------------------------------- */

/* Like the reverse slot: created over a replication connection, no snapshot needed. */
static bool create_slot(struct rehearsal *r, uint64_t *lsn, struct err *err)
{
	struct pgconn c = {0};
	if (!pgconn_open(&c, "target (replication)", r->o->tgt_repl_ci, err))
		return false;
	char *id = pgconn_ident(r->o->slot);
	char *cmd =
	    xasprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput (SNAPSHOT 'nothing')", id);
	free(id);
	PGresult *res = PQexec(c.conn, cmd);
	free(cmd);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		err_set(err, "target: cannot create replication slot %s: %s", r->o->slot,
			PQresultErrorMessage(res));
	else if (!(ok = pos_lsn_parse(PQgetvalue(res, 0, 1), lsn)))
		err_set(err, "target: bad consistent point '%s'", PQgetvalue(res, 0, 1));
	PQclear(res);
	pgconn_close(&c);
	return ok;
}

static bool create_publication(struct rehearsal *r, struct err *err)
{
	char *pub = pgconn_ident(r->o->publication);
	char *sql = xasprintf("CREATE PUBLICATION %s FOR TABLE migd.rehearse_probe", pub);
	bool ok = pgconn_exec(&r->tgt.pg, sql, err);
	free(sql);
	free(pub);
	return ok;
}

/*
 * Drops the slot once its reader is gone (a walsender notices a closed
 * connection a moment later); one that lingers for 2 s is ended: the slot
 * is ours and the rehearsal is over.
 */
static bool drop_slot(struct pgconn *c, const char *slot, bool *found, struct err *err)
{
	const char *p[] = {slot};
	for (int i = 0; i < 50; i++) {
		char *a = pgconn_query_value(
		    c,
		    "SELECT coalesce((SELECT active::text FROM pg_replication_slots "
		    "WHERE slot_name = $1), 'none')",
		    1, p, err);
		if (a == NULL)
			return false;
		bool gone = strcmp(a, "none") == 0, active = strcmp(a, "true") == 0;
		free(a);
		if (gone)
			return true;
		*found = true;
		if (!active) /* gone meanwhile (a concurrent cleanup) is fine too */
			return pgconn_exec_params(c,
						  "SELECT pg_drop_replication_slot(slot_name) "
						  "FROM pg_replication_slots WHERE slot_name = $1",
						  1, p, err);
		if (i == 20 && !pgconn_exec_params(c,
						   "SELECT pg_terminate_backend(active_pid) "
						   "FROM pg_replication_slots WHERE slot_name = $1",
						   1, p, err))
			return false;
		sleep_interruptible(100, NULL);
	}
	err_set(err, "%s: replication slot %s stays in use", c->label, slot);
	return false;
}

bool rhpg_drop_slot(struct pgconn *c, const char *slot, const char *publication, bool *found,
		    struct err *err)
{
	const char *p[] = {publication};
	if (!drop_slot(c, slot, found, err))
		return false;
	char *have = pgconn_query_value(c, "SELECT count(*) FROM pg_publication WHERE pubname = $1",
					1, p, err);
	if (have == NULL)
		return false;
	bool pub = strcmp(have, "0") != 0;
	free(have);
	if (!pub)
		return true;
	*found = true;
	char *id = pgconn_ident(publication);
	char *sql = xasprintf("DROP PUBLICATION IF EXISTS %s", id);
	bool ok = pgconn_exec(c, sql, err);
	free(sql);
	free(id);
	return ok;
}

bool rhpg_start(struct rehearsal *r, struct pos *from, char *what, size_t n, struct err *err)
{
	uint64_t lsn = 0;
	char l[32];
	if (!pgconn_exec(&r->tgt.pg, probe_table_sql, err) || !create_publication(r, err) ||
	    !create_slot(r, &lsn, err))
		return false;
	*from = pos_from_lsn(lsn);
	snprintf(what, n, "slot %s (pgoutput) at %s and publication %s on the target", r->o->slot,
		 pos_lsn_format(lsn, l, sizeof(l)), r->o->publication);
	crash_point(r->o->crash_at, "rehearse-slot");
	return true;
}
