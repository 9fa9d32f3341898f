/*
 * myconn: blocking libmariadb connections, for worker threads only (the
 * MySQL/MariaDB twin of pgconn).
 *
 * The config's dsn is the same key=value form as for PostgreSQL, so one
 * syntax serves both engines:
 *     host=127.0.0.1 port=3306 user=migd password=x dbname=app socket=/run/mysqld.sock
 * Values may be single-quoted ('a b', with \' and \\ escapes).  Keys:
 * host, port, user, password, dbname, socket, connect_timeout; any other
 * key is refused by name.  Every failure fills a struct err with the
 * connection's label and the server's message; the dsn (which may hold a
 * password) is never logged.  Sessions use utf8mb4, UTC and a strict
 * sql_mode, so text and timestamps mean the same on every connection.
 */
#ifndef MIGD_MYCONN_H
#define MIGD_MYCONN_H

#include <mysql.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct myconn_params {
	char *host, *user, *password, *dbname, *socket; /* owned; NULL when absent */
	unsigned port;
	unsigned connect_timeout; /* seconds; default 10 */
};

/*
 * Parses a dsn (password, when not NULL, overrides one in the dsn).
 * Returns false with err naming the offending key or quote.
 */
bool myconn_parse_dsn(const char *dsn, const char *password, struct myconn_params *out,
		      struct err *err) __attribute__((warn_unused_result));
void myconn_params_free(struct myconn_params *p);

/* dsn with password (when not NULL) appended, quoted: one string for a worker.  Caller frees. */
char *myconn_dsn_with_password(const char *dsn, const char *password);

struct myconn {
	MYSQL *db; /* owned; NULL when closed */
	char label[32];
	bool broken; /* the link failed: close and open again */
};

/* Connects; on failure fills err ("source: cannot connect: ..."). */
bool myconn_open(struct myconn *c, const char *label, const struct myconn_params *p,
		 struct err *err) __attribute__((warn_unused_result));
/* Connects with the dsn text (parsed each time; for callers that keep only the string). */
bool myconn_open_dsn(struct myconn *c, const char *label, const char *dsn, struct err *err)
    __attribute__((warn_unused_result));
void myconn_close(struct myconn *c);
bool myconn_is_broken(const struct myconn *c);

/* Runs a statement whose result is not needed (results are drained). */
/*
 * A statement in two halves, so the caller works while the server runs it:
 * _send() sends it, _wait() reads its result (and any that follow).  One
 * statement at most in flight; nothing else may use c in between.
 */
bool myconn_send(struct myconn *c, const char *sql, size_t len, struct err *err)
    __attribute__((warn_unused_result));
bool myconn_wait(struct myconn *c, struct err *err) __attribute__((warn_unused_result));
bool myconn_exec(struct myconn *c, const char *sql, struct err *err)
    __attribute__((warn_unused_result));

/* Runs a query; returns the whole result (caller mysql_free_result()s) or NULL + err. */
MYSQL_RES *myconn_query(struct myconn *c, const char *sql, struct err *err)
    __attribute__((warn_unused_result));

/* First column of the first row as a new string ("" for NULL), or NULL + err (also no row). */
char *myconn_query_value(struct myconn *c, const char *sql, struct err *err)
    __attribute__((warn_unused_result));

/* Fills err from the connection's last error ("label: what: message (errno N)"). */
void myconn_set_error(struct myconn *c, const char *what, struct err *err);

/* `name` with backquotes doubled; caller frees. */
char *myconn_ident(const char *name);
/* 'value' escaped for the connection's character set; caller frees. */
char *myconn_literal(struct myconn *c, const char *s, size_t len);

#endif
