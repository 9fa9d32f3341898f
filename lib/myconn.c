/* myconn: blocking libmariadb helpers for worker threads (see myconn.h). */
#include "myconn.h"

#include <errmsg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void myconn_params_free(struct myconn_params *p)
{
	free(p->host);
	free(p->user);
	free(p->password);
	free(p->dbname);
	free(p->socket);
	memset(p, 0, sizeof(*p));
}

/* One value: bare up to a space, or '...' with \ escapes.  Advances *s. */
static char *dsn_value(const char **s, struct err *err)
{
	const char *p = *s;
	struct strbuf b = {0};
	if (*p == '\'') {
		for (p++; *p && *p != '\''; p++) {
			if (*p == '\\' && p[1])
				p++;
			sb_addf(&b, "%c", *p);
		}
		if (*p != '\'') {
			free(sb_take(&b));
			err_set(err, "dsn: unterminated quoted value");
			return NULL;
		}
		p++;
	} else {
		for (; *p && *p != ' ' && *p != '\t'; p++)
			sb_addf(&b, "%c", *p);
	}
	*s = p;
	char *v = sb_take(&b);
	return v ? v : xstrdup("");
}

static bool parse_uint(const char *key, const char *v, unsigned max, unsigned *out, struct err *err)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n > max) {
		err_set(err, "dsn: %s must be a number up to %u", key, max);
		return false;
	}
	*out = (unsigned)n;
	return true;
}

bool myconn_parse_dsn(const char *dsn, const char *password, struct myconn_params *out,
		      struct err *err)
{
	memset(out, 0, sizeof(*out));
	out->connect_timeout = 10;
	const char *p = dsn;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		size_t kl = strcspn(p, "= \t");
		if (p[kl] != '=') {
			err_set(err, "dsn: expected key=value at \"%.*s\"", (int)kl, p);
			goto fail;
		}
		char key[32];
		snprintf(key, sizeof(key), "%.*s", (int)kl, p);
		p += kl + 1;
		char *v = dsn_value(&p, err);
		if (v == NULL)
			goto fail;
		char **slot = NULL;
		bool ok = true;
		if (strcmp(key, "host") == 0)
			slot = &out->host;
		else if (strcmp(key, "user") == 0)
			slot = &out->user;
		else if (strcmp(key, "password") == 0)
			slot = &out->password;
		else if (strcmp(key, "dbname") == 0)
			slot = &out->dbname;
		else if (strcmp(key, "socket") == 0)
			slot = &out->socket;
		else if (strcmp(key, "port") == 0)
			ok = parse_uint(key, v, 65535, &out->port, err);
		else if (strcmp(key, "connect_timeout") == 0)
			ok = parse_uint(key, v, 3600, &out->connect_timeout, err);
		else {
			err_set(err,
				"dsn: unknown key \"%s\" for MySQL/MariaDB (host, port, user, "
				"password, "
				"dbname, socket, connect_timeout)",
				key);
			ok = false;
		}
		if (slot != NULL) {
			free(*slot);
			*slot = v;
		} else {
			free(v);
		}
		if (!ok)
			goto fail;
	}
	if (password != NULL) {
		free(out->password);
		out->password = xstrdup(password);
	}
	return true;
fail:
	myconn_params_free(out);
	return false;
}

char *myconn_dsn_with_password(const char *dsn, const char *password)
{
	struct strbuf b = {0};
	sb_addf(&b, "%s", dsn);
	if (password != NULL) {
		sb_addf(&b, " password='");
		for (const char *p = password; *p; p++)
			sb_addf(&b, (*p == '\'' || *p == '\\') ? "\\%c" : "%c", *p);
		sb_addf(&b, "'");
	}
	return sb_take(&b);
}

void myconn_set_error(struct myconn *c, const char *what, struct err *err)
{
	unsigned no = c->db ? mysql_errno(c->db) : 0;
	const char *msg = c->db ? mysql_error(c->db) : "not connected";
	err_set(err, "%s: %s%s%s (errno %u)", c->label, what, *what ? ": " : "",
		msg && *msg ? msg : "unknown error", no);
	/* Client-side errors (2000-2999) and a killed or shut-down server end the link. */
	if (no >= 2000 || no == 1053 || no == 1927 || no == 1152)
		c->broken = true;
}

bool myconn_open(struct myconn *c, const char *label, const struct myconn_params *p,
		 struct err *err)
{
	snprintf(c->label, sizeof(c->label), "%s", label);
	c->broken = false;
	c->db = mysql_init(NULL);
	if (c->db == NULL) {
		err_set(err, "%s: out of memory", c->label);
		return false;
	}
	unsigned timeout = p->connect_timeout;
	mysql_optionsv(c->db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_optionsv(c->db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	/* UTC and strict mode: timestamps and refusals mean the same on every connection. */
	mysql_optionsv(
	    c->db, MYSQL_INIT_COMMAND,
	    "SET time_zone = '+00:00', "
	    "sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'");
	if (p->socket == NULL && p->host != NULL) {
		unsigned proto = MYSQL_PROTOCOL_TCP;
		mysql_optionsv(c->db, MYSQL_OPT_PROTOCOL, &proto);
	}
	if (mysql_real_connect(c->db, p->host, p->user, p->password, p->dbname, p->port, p->socket,
			       CLIENT_MULTI_STATEMENTS) == NULL) {
		myconn_set_error(c, "cannot connect", err);
		mysql_close(c->db);
		c->db = NULL;
		return false;
	}
	return true;
}

bool myconn_open_dsn(struct myconn *c, const char *label, const char *dsn, struct err *err)
{
	struct myconn_params p;
	snprintf(c->label, sizeof(c->label), "%s", label);
	if (!myconn_parse_dsn(dsn, NULL, &p, err)) {
		err_prefix(err, "%s: ", c->label);
		return false;
	}
	bool ok = myconn_open(c, label, &p, err);
	myconn_params_free(&p);
	return ok;
}

void myconn_close(struct myconn *c)
{
	if (c->db != NULL)
		mysql_close(c->db);
	c->db = NULL;
	c->broken = false;
}

bool myconn_is_broken(const struct myconn *c)
{
	return c->db == NULL || c->broken;
}

/* Frees every result of a (multi-)statement; false if one of them failed. */
static bool drain(struct myconn *c, struct err *err)
{
	int st;
	do {
		MYSQL_RES *r = mysql_store_result(c->db);
		if (r != NULL)
			mysql_free_result(r);
		else if (mysql_field_count(c->db) != 0) {
			myconn_set_error(c, "", err);
			return false;
		}
		st = mysql_next_result(c->db);
		if (st > 0) {
			myconn_set_error(c, "", err);
			return false;
		}
	} while (st == 0);
	return true;
}

bool myconn_send(struct myconn *c, const char *sql, size_t len, struct err *err)
{
	if (c->db == NULL) {
		err_set(err, "%s: not connected", c->label);
		return false;
	}
	if (mysql_send_query(c->db, sql, (unsigned long)len) != 0) {
		myconn_set_error(c, "", err);
		return false;
	}
	return true;
}

bool myconn_wait(struct myconn *c, struct err *err)
{
	if (mysql_read_query_result(c->db) != 0) {
		myconn_set_error(c, "", err);
		return false;
	}
	return drain(c, err);
}

bool myconn_exec(struct myconn *c, const char *sql, struct err *err)
{
	if (c->db == NULL) {
		err_set(err, "%s: not connected", c->label);
		return false;
	}
	if (mysql_real_query(c->db, sql, strlen(sql)) != 0) {
		myconn_set_error(c, "", err);
		return false;
	}
	return drain(c, err);
}

MYSQL_RES *myconn_query(struct myconn *c, const char *sql, struct err *err)
{
	if (c->db == NULL) {
		err_set(err, "%s: not connected", c->label);
		return NULL;
	}
	if (mysql_real_query(c->db, sql, strlen(sql)) != 0) {
		myconn_set_error(c, "", err);
		return NULL;
	}
	MYSQL_RES *r = mysql_store_result(c->db);
	if (r == NULL) {
		if (mysql_field_count(c->db) != 0)
			myconn_set_error(c, "", err);
		else
			err_set(err, "%s: statement returned no result set", c->label);
		return NULL;
	}
	return r;
}

char *myconn_query_value(struct myconn *c, const char *sql, struct err *err)
{
	MYSQL_RES *r = myconn_query(c, sql, err);
	if (r == NULL)
		return NULL;
	MYSQL_ROW row = mysql_fetch_row(r);
	char *v = NULL;
	if (row == NULL)
		err_set(err, "%s: query returned no row", c->label);
	else
		v = xstrdup(row[0] ? row[0] : "");
	mysql_free_result(r);
	return v;
}

char *myconn_ident(const char *name)
{
	struct strbuf b = {0};
	sb_addf(&b, "`");
	for (const char *p = name; *p; p++)
		sb_addf(&b, *p == '`' ? "``" : "%c", *p);
	sb_addf(&b, "`");
	return sb_take(&b);
}

char *myconn_literal(struct myconn *c, const char *s, size_t len)
{
	char *out = xmalloc(2 * len + 3);
	out[0] = '\'';
	unsigned long n = mysql_real_escape_string(c->db, out + 1, s, (unsigned long)len);
	out[n + 1] = '\'';
	out[n + 2] = '\0';
	return out;
}
