/* pgfreeze: REVOKE-based write freeze with recorded grants (see pgfreeze.h). */
#include "pgfreeze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define WRITE_PRIVS "INSERT, UPDATE, DELETE, TRUNCATE"

/* "{a,b}" from "a, b" (roles are identifiers; quoting keeps odd names intact). */
static char *roles_array(const char *roles)
{
	size_t cap = strlen(roles) * 2 + 8, len = 0;
	char *out = xmalloc(cap), *copy = xstrdup(roles), *save = NULL;
	out[len++] = '{';
	for (char *r = strtok_r(copy, ", ", &save); r; r = strtok_r(NULL, ", ", &save)) {
		if (len > 1)
			out[len++] = ',';
		out[len++] = '"';
		for (char *p = r; *p; p++) {
			if (*p == '"' || *p == '\\')
				out[len++] = '\\';
			out[len++] = *p;
		}
		out[len++] = '"';
	}
	out[len++] = '}';
	out[len] = '\0';
	free(copy);
	return out;
}

/* Records then revokes one role's write grants on one table. */
static bool freeze_table(struct pgconn *db, const char *side, struct pgconn *store,
			 const char *name, const char *role, const char *qname, int *revoked,
			 struct err *err)
{
	const char *p[] = {qname, role};
	PGresult *r = pgconn_query(
		db,
		"SELECT a.privilege_type FROM pg_class c, aclexplode(c.relacl) a, pg_roles g "
		"WHERE c.oid = $1::regclass AND g.rolname = $2 AND a.grantee = g.oid "
		"  AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')",
		2, p, err);
	if (r == NULL)
		return false;
	bool ok = true;
	for (int i = 0; ok && i < PQntuples(r); i++) {
		const char *q[] = {name, side, role, qname, PQgetvalue(r, i, 0)};
		ok = pgconn_exec_params(store,
				 "INSERT INTO migd.freeze_grants (name, side, role, table_name, privilege) "
				 "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
				 5, q, err);
	}
	int n = PQntuples(r);
	PQclear(r);
	if (!ok)
		return false;
	/* Recorded durably above before anything is taken away. */
	char *rid = pgconn_ident(role);
	char *sql = xasprintf("REVOKE " WRITE_PRIVS " ON %s FROM %s", qname, rid);
	ok = pgconn_exec(db, sql, err);
	free(sql);
	free(rid);
	*revoked += n;
	return ok;
}

static const char *why_writable(struct pgconn *db, const char *role, const char *qname)
{
	const char *p[] = {qname, role};
	struct err e;
	PGresult *r = pgconn_query(db,
				   "SELECT pg_get_userbyid(c.relowner) = $2, "
				   "  (SELECT rolsuper FROM pg_roles WHERE rolname = $2) "
				   "FROM pg_class c WHERE c.oid = $1::regclass",
				   2, p, &e);
	const char *why = "inherits the privilege from a role it is a member of (or PUBLIC)";
	if (r != NULL && PQntuples(r) == 1) {
		if (PQgetvalue(r, 0, 0)[0] == 't')
			why = "owns the table (an owner can grant itself back)";
		else if (PQgetvalue(r, 0, 1)[0] == 't')
			why = "is a superuser";
	}
	PQclear(r);
	return why;
}

bool pgfreeze_enforce(struct pgconn *db, const char *side, bool on_target, struct pgconn *store,
		      const char *name, const char *roles, const struct mig_tableset *ts,
		      json_t **report, struct err *err)
{
	json_t *writable = json_array(), *absent = json_array();
	int revoked = 0;
	char *copy = xstrdup(roles ? roles : ""), *save = NULL;
	bool ok = true;
	for (char *role = strtok_r(copy, ", ", &save); ok && role; role = strtok_r(NULL, ", ", &save)) {
		const char *p[] = {role};
		PGresult *r = pgconn_query(db, "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, p, err);
		if (r == NULL) {
			ok = false;
			break;
		}
		bool exists = PQntuples(r) == 1;
		PQclear(r);
		if (!exists) {
			json_array_append_new(absent, json_string(role)); /* cannot write here */
			continue;
		}
		for (int i = 0; ok && i < ts->n; i++) {
			const struct mig_table *t = &ts->t[i];
			const char *qname = on_target ? t->tgt_qname : t->qname;
			char *tname = xasprintf("%s.%s", t->schema, t->name); /* as reports name it */
			/* Recorded under this side's own name: a target table may be renamed. */
			ok = freeze_table(db, side, store, name, role, qname, &revoked, err);
			if (ok) {
				const char *q[] = {role, qname};
				r = pgconn_query(db,
						 "SELECT has_table_privilege($1, $2, "
						 "'INSERT, UPDATE, DELETE, TRUNCATE')",
						 2, q, err);
				ok = r != NULL;
				if (ok && PQgetvalue(r, 0, 0)[0] == 't')
					json_array_append_new(
						writable,
						json_pack("{s:s, s:s, s:s}", "role", role, "table", tname,
							  "why", why_writable(db, role, qname)));
				PQclear(r);
			}
			free(tname);
		}
	}
	free(copy);
	int terminated = 0;
	if (ok && roles && roles[0]) {
		/* End the frozen roles' sessions: no open transaction may write on. */
		char *arr = roles_array(roles);
		const char *p[] = {arr};
		PGresult *r = pgconn_query(db,
					   "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
					   "WHERE usename = ANY($1::text[]) AND pid <> pg_backend_pid()",
					   1, p, err);
		free(arr);
		ok = r != NULL;
		if (ok)
			terminated = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	json_t *inv = ok ? pgfreeze_inventory(db, roles, err) : NULL;
	if (!ok || inv == NULL) {
		json_decref(writable);
		json_decref(absent);
		return false;
	}
	*report = json_pack("{s:s, s:i, s:i, s:o, s:o, s:o}", "side", side, "revoked", revoked,
			    "terminated_sessions", terminated, "still_writable", writable,
			    "roles_absent", absent, "inventory", inv);
	log_event(LOG_LVL_NOTICE, "freeze", "side=%s revoked=%d terminated=%d still_writable=%zu",
		  side, revoked, terminated, json_array_size(writable));
	return true;
}

bool pgfreeze_lift(struct pgconn *db, const char *side, struct pgconn *store, const char *name,
		   int *restored, struct err *err)
{
	const char *p[] = {name, side};
	*restored = 0;
	PGresult *r = pgconn_query(store,
				   "SELECT role, table_name, privilege FROM migd.freeze_grants "
				   "WHERE name = $1 AND side = $2",
				   2, p, err);
	if (r == NULL)
		return false;
	bool ok = true;
	for (int i = 0; ok && i < PQntuples(r); i++) {
		/* The side's quoted "schema"."name"; an older migd wrote the source's schema.name. */
		char *tn = PQgetvalue(r, i, 1), *dot = strchr(tn, '.');
		if (tn[0] != '"' && dot == NULL)
			continue;
		char *q;
		if (tn[0] == '"') {
			q = xstrdup(tn);
		} else {
			*dot = '\0';
			q = pgconn_qualified(tn, dot + 1);
		}
		char *rid = pgconn_ident(PQgetvalue(r, i, 0));
		char *sql = xasprintf("GRANT %s ON %s TO %s", PQgetvalue(r, i, 2), q, rid);
		ok = pgconn_exec(db, sql, err);
		free(sql);
		free(rid);
		free(q);
		(*restored)++;
	}
	PQclear(r);
	/* Forgotten only once all are back: a crash in between grants again (harmless). */
	return ok && pgconn_exec_params(store, "DELETE FROM migd.freeze_grants WHERE name = $1 AND side = $2",
				 2, p, err);
}

json_t *pgfreeze_inventory(struct pgconn *db, const char *roles, struct err *err)
{
	char *arr = roles_array(roles ? roles : "");
	const char *p[] = {arr};
	PGresult *r = pgconn_query(
		db,
		"SELECT usename, application_name, coalesce(client_addr::text, 'local'), state, "
		"  coalesce(to_char(xact_start, 'YYYY-MM-DD HH24:MI:SS'), ''), backend_xid IS NOT NULL "
		"FROM pg_stat_activity "
		"WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' "
		"  AND application_name NOT LIKE 'migd %' "
		"  AND (backend_xid IS NOT NULL OR usename = ANY($1::text[]))",
		1, p, err);
	free(arr);
	if (r == NULL)
		return NULL;
	json_t *out = json_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(
			out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "role", PQgetvalue(r, i, 0),
				       "application_name", PQgetvalue(r, i, 1), "client",
				       PQgetvalue(r, i, 2), "state", PQgetvalue(r, i, 3), "xact_start",
				       PQgetvalue(r, i, 4), "holds_write_xid",
				       PQgetvalue(r, i, 5)[0] == 't'));
	PQclear(r);
	return out;
}
