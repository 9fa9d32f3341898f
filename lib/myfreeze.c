/* myfreeze: read_only write freeze on MySQL/MariaDB (see myfreeze.h). */
#include "myfreeze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/* "a, b" -> "'a','b'" for an IN list; "" when users is empty.  Caller frees. */
static char *user_list(struct myconn *c, const char *users)
{
	struct strbuf b = {0};
	char *copy = xstrdup(users ? users : ""), *save = NULL;
	for (char *u = strtok_r(copy, ", ", &save); u; u = strtok_r(NULL, ", ", &save)) {
		char *lit = myconn_literal(c, u, strlen(u));
		sb_addf(&b, "%s%s", b.len ? "," : "", lit);
		free(lit);
	}
	free(copy);
	char *s = sb_take(&b);
	return s ? s : xstrdup("");
}

json_t *myfreeze_inventory(struct myconn *c, const char *users, struct err *err)
{
	char *in = user_list(c, users);
	char *sql = xasprintf(
	    "SELECT p.USER, p.HOST, COALESCE(p.DB, ''), p.COMMAND, p.TIME, "
	    "  COALESCE(t.trx_rows_modified, 0), COALESCE(t.trx_started, '') "
	    "FROM information_schema.PROCESSLIST p "
	    "LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID "
	    "WHERE p.ID <> CONNECTION_ID() AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump') "
	    "  AND (t.trx_rows_modified > 0%s%s%s) ORDER BY p.ID",
	    *in ? " OR p.USER IN (" : "", in, *in ? ")" : "");
	free(in);
	MYSQL_RES *r = myconn_query(c, sql, err);
	free(sql);
	if (r == NULL)
		return NULL;
	json_t *a = json_array();
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL)
		json_array_append_new(
		    a, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "user",
				 row[0] ? row[0] : "", "client", row[1] ? row[1] : "", "db", row[2],
				 "command", row[3] ? row[3] : "", "seconds",
				 (json_int_t)(row[4] ? strtoll(row[4], NULL, 10) : 0),
				 "rows_modified", (json_int_t)strtoll(row[5], NULL, 10),
				 "transaction_started", row[6]));
	mysql_free_result(r);
	return a;
}

/* Whether user (the name part of a 'user'@'host' grantee) is in the comma list users. */
static bool user_listed(const char *grantee, const char *users)
{
	const char *u = grantee[0] == '\'' ? grantee + 1 : grantee;
	size_t n = strcspn(u, "'");
	char *copy = xstrdup(users ? users : ""), *save = NULL;
	bool hit = false;
	for (char *w = strtok_r(copy, ", ", &save); w && !hit; w = strtok_r(NULL, ", ", &save))
		hit = strlen(w) == n && strncmp(w, u, n) == 0;
	free(copy);
	return hit;
}

/* Whether a role's grants (SHOW GRANTS FOR it) let it write through read_only. */
static bool role_writes(struct myconn *c, const char *role, bool super_writes, bool *writes,
			struct err *err)
{
	char *lit = myconn_literal(c, role, strlen(role));
	char *sql = xasprintf("SHOW GRANTS FOR %s", lit);
	free(lit);
	MYSQL_RES *r = myconn_query(c, sql, err);
	free(sql);
	if (r == NULL)
		return false;
	*writes = false;
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL && !*writes) {
		const char *g = row[0] ? row[0] : "";
		*writes = strstr(g, "READ_ONLY ADMIN") != NULL ||
			  strstr(g, "ALL PRIVILEGES ON *.*") != NULL ||
			  (super_writes && strstr(g, "SUPER") != NULL);
	}
	mysql_free_result(r);
	return true;
}

static bool json_has_user(json_t *a, const char *who)
{
	for (size_t i = 0; i < json_array_size(a); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(a, i), "user")), who) == 0)
			return true;
	return false;
}

/*
 * The same through roles: a user granted a role that holds READ_ONLY
 * ADMIN (directly or through roles granted to it) can SET ROLE and write
 * through read_only; USER_PRIVILEGES does not show it.  From
 * mysql.roles_mapping (a row: User@Host was granted Role; Host '' for a
 * role granted to a role) and each role's SHOW GRANTS.
 */
static bool writable_by_role(struct myconn *c, const char *users, bool super_writes,
			     json_t *frozen, json_t *others, struct err *err)
{
	MYSQL_RES *r = myconn_query(
	    c,
	    "SELECT Host, User, Role FROM mysql.roles_mapping "
	    "WHERE NOT (Host <> '' AND User = SUBSTRING_INDEX(CURRENT_USER(), '@', 1)) "
	    "  AND NOT (Host = 'localhost' AND User IN ('root', 'mariadb.sys'))",
	    err);
	if (r == NULL)
		return false;
	int n = (int)mysql_num_rows(r), np = 0;
	char **host = xcalloc((size_t)n + 1, sizeof(char *));
	char **user = xcalloc((size_t)n + 1, sizeof(char *));
	char **role = xcalloc((size_t)n + 1, sizeof(char *));
	char **priv = xcalloc((size_t)n + 1, sizeof(char *)); /* roles that write, borrowed */
	MYSQL_ROW row;
	for (int i = 0; i < n && (row = mysql_fetch_row(r)) != NULL; i++) {
		host[i] = xstrdup(row[0] ? row[0] : "");
		user[i] = xstrdup(row[1] ? row[1] : "");
		role[i] = xstrdup(row[2] ? row[2] : "");
	}
	mysql_free_result(r);
	bool ok = true;
	/* Roles whose own grants write through read_only. */
	for (int i = 0; i < n && ok; i++) {
		bool seen = false, writes = false;
		for (int k = 0; k < np && !seen; k++)
			seen = strcmp(priv[k], role[i]) == 0;
		for (int j = 0; j < i && !seen; j++)
			seen = strcmp(role[j], role[i]) == 0; /* asked already: it does not write */
		if (!seen && (ok = role_writes(c, role[i], super_writes, &writes, err)) && writes)
			priv[np++] = role[i];
	}
	/* Roles granted such a role, to a fixpoint; then every user granted one of them. */
	for (bool grew = ok; grew;) {
		grew = false;
		for (int i = 0; i < n; i++) {
			bool has = false, done = false;
			for (int k = 0; k < np; k++) {
				has |= strcmp(priv[k], role[i]) == 0;
				done |= strcmp(priv[k], user[i]) == 0;
			}
			if (host[i][0] == '\0' && has && !done) {
				priv[np++] = user[i];
				grew = true;
			}
		}
	}
	for (int i = 0; i < n && ok; i++) {
		bool has = false;
		for (int k = 0; k < np && !has; k++)
			has = strcmp(priv[k], role[i]) == 0;
		if (host[i][0] == '\0' || !has)
			continue;
		char *who = xasprintf("'%s'@'%s'", user[i], host[i]);
		json_t *to = user_listed(who, users) ? frozen : others;
		if (!json_has_user(to, who)) {
			char *why = xasprintf("has READ_ONLY ADMIN through role %s: writes through "
					      "read_only after SET ROLE",
					      role[i]);
			json_array_append_new(to, json_pack("{s:s, s:s}", "user", who, "why", why));
			free(why);
		}
		free(who);
	}
	for (int i = 0; i < n; i++) {
		free(host[i]);
		free(user[i]);
		free(role[i]);
	}
	free(host);
	free(user);
	free(role);
	free(priv);
	return ok;
}

/*
 * Users whose grants let them write through read_only, other than migd's
 * own user (on any host) and the server's built-in accounts: those named in
 * users go to *frozen (the freeze is not enforced for them), the others to
 * *others (not frozen: their writes are freeze violations).
 */
static bool still_writable(struct myconn *c, const char *users, json_t **frozen, json_t **others,
			   struct err *err)
{
	MYSQL_RES *r = myconn_query(
	    c,
	    "SELECT GRANTEE, MIN(PRIVILEGE_TYPE) FROM information_schema.USER_PRIVILEGES "
	    "WHERE PRIVILEGE_TYPE IN ('READ_ONLY ADMIN', 'SUPER') "
	    "  AND GRANTEE NOT LIKE CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@%') "
	    "  AND GRANTEE NOT IN ('''root''@''localhost''', '''mariadb.sys''@''localhost''') "
	    "GROUP BY GRANTEE ORDER BY GRANTEE",
	    err);
	if (r == NULL)
		return false;
	/* SUPER writes through read_only on MySQL and on MariaDB before 10.11 (MDEV-29596). */
	unsigned long v = mysql_get_server_version(c->db);
	bool super_writes = strstr(mysql_get_server_info(c->db), "MariaDB") == NULL || v < 101100;
	*frozen = json_array();
	*others = json_array();
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL) {
		/* MIN() prefers READ_ONLY ADMIN: SUPER here means SUPER without it. */
		bool super_only = row[1] && strcmp(row[1], "SUPER") == 0;
		const char *who = row[0] ? row[0] : "";
		if (super_only && !super_writes)
			continue;
		json_array_append_new(user_listed(who, users) ? *frozen : *others,
				      json_pack("{s:s, s:s}", "user", who, "why",
						super_only ? "has SUPER: writes through read_only "
							     "on this server"
							   : "has READ_ONLY ADMIN: writes through "
							     "read_only"));
	}
	mysql_free_result(r);
	struct err rerr;
	if (!writable_by_role(c, users, super_writes, *frozen, *others, &rerr))
		/* Unverifiable is not frozen: the freeze is reported not enforced. */
		json_array_append_new(
		    *frozen, json_pack("{s:s, s:s+}", "user", "(roles)", "why",
				       "cannot be checked for READ_ONLY ADMIN through roles: ",
				       rerr.msg));
	return true;
}

bool myfreeze_enforce(struct myconn *c, const char *users, json_t **report, struct err *err)
{
	*report = NULL;
	if (!myconn_exec(c, "SET GLOBAL read_only = ON", err))
		return false;
	/* End the application's sessions: an open transaction would otherwise commit later. */
	int ended = 0;
	char *in = user_list(c, users);
	if (*in) {
		char *sql = xasprintf("SELECT ID FROM information_schema.PROCESSLIST "
				      "WHERE ID <> CONNECTION_ID() AND USER IN (%s)",
				      in);
		MYSQL_RES *r = myconn_query(c, sql, err);
		free(sql);
		if (r == NULL) {
			free(in);
			return false;
		}
		MYSQL_ROW row;
		while ((row = mysql_fetch_row(r)) != NULL) {
			char *k = xasprintf("KILL CONNECTION %s", row[0]);
			struct err e;
			/* Gone already (1094 unknown thread) is as good as ended. */
			if (myconn_exec(c, k, &e) || strstr(e.msg, "1094") != NULL)
				ended++;
			else
				log_warn("freeze: %s", e.msg);
			free(k);
		}
		mysql_free_result(r);
	}
	free(in);
	if (!myfreeze_verify(c, err))
		return false;
	json_t *sw = NULL, *others = NULL;
	if (!still_writable(c, users, &sw, &others, err))
		return false;
	json_t *inv = myfreeze_inventory(c, users, err);
	if (inv == NULL) {
		json_decref(sw);
		json_decref(others);
		return false;
	}
	*report = json_pack("{s:s, s:b, s:i, s:o, s:o, s:o}", "side", c->label, "read_only", 1,
			    "sessions_ended", ended, "still_writable", sw,
			    "writers_through_read_only", others, "inventory", inv);
	log_event(LOG_LVL_NOTICE, "freeze",
		  "side=%s read_only=on sessions_ended=%d still_writable=%zu through_read_only=%zu",
		  c->label, ended, json_array_size(sw), json_array_size(others));
	return true;
}

bool myfreeze_self_writable(struct myconn *c, bool *yes, struct err *err)
{
	char *v = myconn_query_value(
	    c,
	    "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES "
	    "WHERE PRIVILEGE_TYPE = 'READ_ONLY ADMIN' "
	    "  AND GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
	    "                       SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')",
	    err);
	if (v == NULL)
		return false;
	*yes = strcmp(v, "0") != 0;
	free(v);
	return true;
}

bool myfreeze_verify(struct myconn *c, struct err *err)
{
	char *ro = myconn_query_value(c, "SELECT @@global.read_only", err);
	if (ro == NULL)
		return false;
	bool on = strcmp(ro, "1") == 0 || strcasecmp(ro, "ON") == 0;
	free(ro);
	if (!on)
		err_set(err, "%s: read_only is off (another client turned it off?): freeze again",
			c->label);
	return on;
}

bool myfreeze_lift(struct myconn *c, struct err *err)
{
	return myconn_exec(c, "SET GLOBAL read_only = OFF", err);
}
