/* pgconn: blocking libpq helpers for worker threads (see pgconn.h). */
#include "pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pos.h"

/* Appends " key='value'" with libpq conninfo quoting. */
static void append_kv(char **s, const char *key, const char *value)
{
	size_t n = strlen(*s), vl = strlen(value);
	char *out = xmalloc(n + strlen(key) + 2 * vl + 8);
	char *p = out + n;
	memcpy(out, *s, n);
	p += sprintf(p, " %s='", key);
	for (const char *v = value; *v; v++) {
		if (*v == '\\' || *v == '\'')
			*p++ = '\\';
		*p++ = *v;
	}
	*p++ = '\'';
	*p = '\0';
	free(*s);
	*s = out;
}

char *pgconn_conninfo(const char *dsn, const char *password, const char *app_name, bool repl)
{
	char *s = xstrdup(dsn);
	if (password != NULL)
		append_kv(&s, "password", password);
	if (app_name != NULL)
		append_kv(&s, "application_name", app_name);
	if (repl)
		append_kv(&s, "replication", "database");
	/* Fail fast on a dead server; workers retry with backoff. */
	append_kv(&s, "connect_timeout", "10");
	return s;
}

/* libpq messages span lines ("...\n\tThis probably means..."); ours are one line. */
static void set_pq_error(struct err *err, const char *label, const char *what, const char *msg)
{
	char buf[900];
	snprintf(buf, sizeof(buf), "%s", msg ? msg : "unknown error");
	size_t n = strlen(buf);
	for (size_t i = 0; i + 1 < n; i++)
		if (buf[i] == '\n')
			buf[i] = ' ';
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\t')
			buf[i] = ' ';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	err_set(err, "%s: %s%s%s", label, what, *what ? ": " : "", buf);
}

/* Server NOTICEs ("relation already exists, skipping") are for debugging only. */
static void quiet_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("server notice: %.*s", (int)strcspn(message, "\n"), message);
}

bool pgconn_open(struct pgconn *c, const char *label, const char *conninfo, struct err *err)
{
	snprintf(c->label, sizeof(c->label), "%s", label);
	c->conn = PQconnectdb(conninfo);
	if (PQstatus(c->conn) != CONNECTION_OK) {
		set_pq_error(err, c->label, "cannot connect", PQerrorMessage(c->conn));
		PQfinish(c->conn);
		c->conn = NULL;
		return false;
	}
	PQsetNoticeProcessor(c->conn, quiet_notice, NULL);
	return true;
}

void pgconn_close(struct pgconn *c)
{
	if (c->conn != NULL)
		PQfinish(c->conn);
	c->conn = NULL;
}

bool pgconn_exec(struct pgconn *c, const char *sql, struct err *err)
{
	PGresult *r = PQexec(c->conn, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		set_pq_error(err, c->label, "", PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
									     : PQerrorMessage(c->conn));
	PQclear(r);
	return ok;
}

PGresult *pgconn_query(struct pgconn *c, const char *sql, int nparams, const char *const *params,
		       struct err *err)
{
	PGresult *r = PQexecParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		set_pq_error(err, c->label, "", PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
									     : PQerrorMessage(c->conn));
		PQclear(r);
		return NULL;
	}
	return r;
}

bool pgconn_exec_params(struct pgconn *c, const char *sql, int nparams, const char *const *params,
			struct err *err)
{
	PGresult *r = pgconn_query(c, sql, nparams, params, err);
	if (r == NULL)
		return false;
	PQclear(r);
	return true;
}

bool pgconn_current_lsn(struct pgconn *c, uint64_t *lsn, struct err *err)
{
	char *v = pgconn_query_value(c, "SELECT pg_current_wal_lsn()::text", 0, NULL, err);
	if (v == NULL)
		return false;
	bool ok = pos_lsn_parse(v, lsn);
	if (!ok)
		err_set(err, "%s: unparsable WAL position '%s'", c->label, v);
	free(v);
	return ok;
}

char *pgconn_query_value(struct pgconn *c, const char *sql, int nparams,
			 const char *const *params, struct err *err)
{
	PGresult *r = pgconn_query(c, sql, nparams, params, err);
	if (r == NULL)
		return NULL;
	if (PQntuples(r) < 1 || PQnfields(r) < 1) {
		err_set(err, "%s: query returned no rows: %.200s", c->label, sql);
		PQclear(r);
		return NULL;
	}
	char *v = xstrdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

char *pgconn_ident(const char *name)
{
	size_t n = strlen(name);
	char *out = xmalloc(2 * n + 3), *p = out;
	*p++ = '"';
	for (const char *s = name; *s; s++) {
		if (*s == '"')
			*p++ = '"';
		*p++ = *s;
	}
	*p++ = '"';
	*p = '\0';
	return out;
}

char *pgconn_literal(const char *value)
{
	/* standard_conforming_strings is on in every supported server; E'' covers
	 * backslashes either way. */
	size_t n = strlen(value);
	char *out = xmalloc(2 * n + 4), *p = out;
	bool bs = strchr(value, '\\') != NULL;
	if (bs)
		*p++ = 'E';
	*p++ = '\'';
	for (const char *s = value; *s; s++) {
		if (*s == '\'' || (bs && *s == '\\'))
			*p++ = *s;
		*p++ = *s;
	}
	*p++ = '\'';
	*p = '\0';
	return out;
}

char *pgconn_qualified(const char *schema, const char *name)
{
	char *a = pgconn_ident(schema), *b = pgconn_ident(name);
	char *out = xasprintf("%s.%s", a, b);
	free(a);
	free(b);
	return out;
}

const char *pgconn_error(const struct pgconn *c)
{
	static __thread char buf[512];
	snprintf(buf, sizeof(buf), "%s", c->conn ? PQerrorMessage(c->conn) : "not connected");
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\t')
			buf[i] = ' ';
	return buf;
}

bool pgconn_is_broken(const struct pgconn *c)
{
	return c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK;
}
