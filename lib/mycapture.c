/* mycapture: MySQL/MariaDB source preconditions and snapshot (see mycapture.h). */
#include "mycapture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint32_t mycapture_server_id(const char *name)
{
	uint32_t h = 2166136261u;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return (1u << 30) | (h & ((1u << 30) - 1));
}

/* One "name: value" pair of server variables, read at once. */
static char *var(struct myconn *c, const char *name, struct err *err)
{
	char *sql = xasprintf("SELECT @@%s", name);
	char *v = myconn_query_value(c, sql, err);
	free(sql);
	return v;
}

static void want(struct strbuf *problems, struct myconn *c, const char *name, const char *value,
		 const char *fix)
{
	struct err e;
	char *v = var(c, name, &e);
	if (v == NULL)
		sb_addf(problems, "\n  %s: cannot read it: %s", name, e.msg);
	else if (strcasecmp(v, value) != 0)
		sb_addf(problems, "\n  %s is %s, must be %s (%s)", name, v, value, fix);
	free(v);
}

static bool has_grant(const char *grants, const char *priv)
{
	return strstr(grants, "ALL PRIVILEGES ON *.*") != NULL || strstr(grants, priv) != NULL;
}

/* Each check adds its problems to *problems as "\n  what is wrong (the fix)" lines. */
static void check_settings(struct strbuf *problems, struct myconn *c)
{
	want(problems, c, "log_bin", "1", "start the server with log_bin");
	want(problems, c, "binlog_format", "ROW", "SET GLOBAL binlog_format = ROW");
	want(problems, c, "binlog_row_image", "FULL", "SET GLOBAL binlog_row_image = FULL");
	want(problems, c, "binlog_row_metadata", "FULL",
	     "SET GLOBAL binlog_row_metadata = FULL: migd reads column names, keys and ENUM/SET "
	     "values from it; there is no fallback");
	want(problems, c, "log_bin_compress", "0", "compressed row events are not supported");
}

static void check_grants(struct strbuf *problems, struct myconn *c)
{
	struct err e;
	/* Privileges: the grants text is the one thing every version shows the same way. */
	MYSQL_RES *r = myconn_query(c, "SHOW GRANTS", &e);
	if (r == NULL) {
		sb_addf(problems, "\n  cannot read the grants: %s", e.msg);
	} else {
		struct strbuf g = {0};
		MYSQL_ROW row;
		while ((row = mysql_fetch_row(r)) != NULL)
			sb_addf(&g, "%s\n", row[0] ? row[0] : "");
		mysql_free_result(r);
		char *grants = sb_take(&g);
		if (!has_grant(grants, "REPLICATION SLAVE"))
			sb_addf(problems,
				"\n  the migd user lacks REPLICATION SLAVE (GRANT REPLICATION "
				"SLAVE ON *.* TO ...)");
		if (!has_grant(grants, "BINLOG MONITOR") &&
		    !has_grant(grants, "REPLICATION CLIENT") && !has_grant(grants, "SUPER"))
			sb_addf(problems, "\n  the migd user lacks BINLOG MONITOR (needed for SHOW "
					  "MASTER STATUS and SHOW BINARY LOGS)");
		free(grants);
	}
}

static void check_server_id(struct strbuf *problems, struct myconn *c, uint32_t server_id)
{
	struct err e;
	char *sid = var(c, "server_id", &e);
	if (sid == NULL)
		sb_addf(problems, "\n  server_id: cannot read it: %s", e.msg);
	else if (strtoul(sid, NULL, 10) == server_id)
		sb_addf(problems,
			"\n  the server's server_id is %s, the id migd uses as a replica: "
			"they must differ",
			sid);
	free(sid);
	MYSQL_RES *r = myconn_query(c, "SHOW SLAVE HOSTS", &e);
	if (r != NULL) {
		MYSQL_ROW row;
		while ((row = mysql_fetch_row(r)) != NULL)
			if (row[0] && strtoul(row[0], NULL, 10) == server_id)
				sb_addf(problems,
					"\n  a replica with server_id %u is connected (%s): "
					"it and migd would cut each other off",
					server_id, row[1] ? row[1] : "?");
		mysql_free_result(r);
	}
}

/* err from one check's problems, joined by "; "; true when there are none. */
static bool problems_err(struct strbuf *problems, struct myconn *c, struct err *err)
{
	char *p = sb_take(problems);
	bool ok = p == NULL || *p == '\0';
	if (!ok) {
		struct strbuf j = {0};
		char *save = NULL;
		for (char *line = strtok_r(p, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			sb_addf(&j, "%s%s", j.len ? "; " : "", line + strspn(line, " "));
		char *t = sb_take(&j);
		err_set(err, "%s: %s", c->label, t);
		free(t);
	}
	free(p);
	return ok;
}

bool mycapture_check_settings(struct myconn *c, struct err *err)
{
	struct strbuf p = {0};
	check_settings(&p, c);
	return problems_err(&p, c, err);
}

bool mycapture_check_grants(struct myconn *c, struct err *err)
{
	struct strbuf p = {0};
	check_grants(&p, c);
	return problems_err(&p, c, err);
}

bool mycapture_check_server_id(struct myconn *c, uint32_t server_id, struct err *err)
{
	struct strbuf p = {0};
	check_server_id(&p, c, server_id);
	return problems_err(&p, c, err);
}

bool mycapture_check(struct myconn *c, uint32_t server_id, json_t **info, struct err *err)
{
	struct strbuf problems = {0};
	struct err e;
	check_settings(&problems, c);
	check_grants(&problems, c);
	check_server_id(&problems, c, server_id);
	char *sid = var(c, "server_id", &e);
	MYSQL_RES *r;

	char *ver = var(c, "version", &e);
	char *expire = var(c, "binlog_expire_logs_seconds", &e);
	if (expire == NULL) { /* before 10.6: days */
		char *days = var(c, "expire_logs_days", &e);
		expire = xasprintf("%.0f", days ? strtod(days, NULL) * 86400 : 0.0);
		free(days);
	}
	int64_t bytes = 0;
	r = myconn_query(c, "SHOW BINARY LOGS", &e);
	if (r != NULL) {
		MYSQL_ROW row;
		while ((row = mysql_fetch_row(r)) != NULL)
			bytes += row[1] ? strtoll(row[1], NULL, 10) : 0;
		mysql_free_result(r);
	}
	if (info != NULL) {
		long long ex = expire ? strtoll(expire, NULL, 10) : 0;
		*info =
		    json_pack("{s:s, s:s, s:I, s:I, s:s}", "version", ver ? ver : "?", "server_id",
			      sid ? sid : "?", "binlog_retention_seconds", (json_int_t)ex,
			      "binlog_bytes", (json_int_t)bytes, "retention_note",
			      ex == 0 ? "binlogs are kept until purged by hand"
				      : "binlogs older than this are purged: the migration must "
					"stay within it, or the stream cannot resume");
	}
	free(ver);
	free(expire);
	free(sid);

	char *p = sb_take(&problems);
	bool ok = p == NULL || *p == '\0';
	if (!ok)
		err_set(err, "source: the binlog cannot feed a migration:%s", p);
	free(p);
	return ok;
}

static char *status_value(struct myconn *c, const char *name, struct err *err)
{
	char *sql = xasprintf("SHOW STATUS LIKE '%s'", name);
	MYSQL_RES *r = myconn_query(c, sql, err);
	free(sql);
	if (r == NULL)
		return NULL;
	MYSQL_ROW row = mysql_fetch_row(r);
	char *v = row && row[1] ? xstrdup(row[1]) : NULL;
	mysql_free_result(r);
	if (v == NULL)
		err_set(err, "%s: status %s is not there", c->label, name);
	return v;
}

bool mycapture_snapshot(struct myconn *c, struct pos *at, struct err *err)
{
	if (!myconn_exec(c, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", err) ||
	    !myconn_exec(c, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", err))
		return false;
	/* The snapshot's own coordinate: SHOW MASTER STATUS would already be ahead. */
	char *file = status_value(c, "binlog_snapshot_file", err);
	if (file == NULL)
		return false;
	char *off = status_value(c, "binlog_snapshot_position", err);
	if (off == NULL) {
		free(file);
		return false;
	}
	char *lit = myconn_literal(c, file, strlen(file));
	char *sql = xasprintf("SELECT BINLOG_GTID_POS(%s, %s)", lit, off);
	free(lit);
	char *gtid = myconn_query_value(c, sql, err);
	free(sql);
	bool ok = gtid != NULL;
	if (ok) {
		char *text = *gtid ? xasprintf("gtid:%s@%s:%s", gtid, file, off)
				   : xasprintf("binlog:%s:%s", file, off);
		const char *perr;
		ok = pos_parse(text, at, &perr);
		if (!ok)
			err_set(err, "%s: snapshot position %s: %s", c->label, text, perr);
		free(text);
	}
	free(gtid);
	free(file);
	free(off);
	return ok;
}

bool mycapture_binlog_end(struct myconn *c, struct pos *end, struct err *err)
{
	MYSQL_RES *r = myconn_query(c, "SHOW MASTER STATUS", err);
	if (r == NULL)
		return false;
	MYSQL_ROW row = mysql_fetch_row(r);
	bool ok = row != NULL && row[0] != NULL && row[1] != NULL;
	if (ok) {
		*end = (struct pos){.kind = POS_BINLOG, .has_binlog = true};
		snprintf(end->file, sizeof(end->file), "%s", row[0]);
		end->offset = strtoull(row[1], NULL, 10);
	} else {
		err_set(err, "%s: SHOW MASTER STATUS returned nothing (is log_bin on?)", c->label);
	}
	mysql_free_result(r);
	return ok;
}

bool mycapture_retained(struct myconn *c, const char *from, int64_t *bytes, bool *present,
			struct err *err)
{
	MYSQL_RES *r = myconn_query(c, "SHOW BINARY LOGS", err);
	if (r == NULL)
		return false;
	*bytes = 0;
	*present = false;
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL) {
		if (row[0] && strcmp(row[0], from) == 0)
			*present = true;
		if (*present && row[1])
			*bytes += strtoll(row[1], NULL, 10);
	}
	mysql_free_result(r);
	return true;
}
