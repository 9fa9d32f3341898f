/*
 * pgconn: blocking libpq connections, for worker threads only.
 *
 * Replication work (capture, backfill copiers, the slot reader, the
 * applier) runs in its own threads with plain blocking libpq; the event
 * loop thread never calls into this module.  Every failure fills a
 * struct err with the connection's label and the server's message, and the
 * conninfo (which may hold a password) is never logged.
 */
#ifndef MIGD_PGCONN_H
#define MIGD_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct pgconn {
	PGconn *conn; /* owned; NULL when closed */
	char label[32];
};

/*
 * Builds a conninfo from the config's dsn and optional password, adding
 * application_name and, if repl is true, replication=database.  Caller
 * frees.  The result may contain the password: never log it.
 */
char *pgconn_conninfo(const char *dsn, const char *password, const char *app_name, bool repl);

/* Connects; on failure fills err ("source: connection to ... failed: ..."). */
bool pgconn_open(struct pgconn *c, const char *label, const char *conninfo, struct err *err)
	__attribute__((warn_unused_result));
void pgconn_close(struct pgconn *c);

/* Runs a command whose result is not needed (or a multi-statement string). */
bool pgconn_exec(struct pgconn *c, const char *sql, struct err *err)
	__attribute__((warn_unused_result));

/*
 * Runs a query with text parameters; returns the result (caller PQclear()s)
 * or NULL with err filled.  nparams may be 0.
 */
PGresult *pgconn_query(struct pgconn *c, const char *sql, int nparams, const char *const *params,
		       struct err *err) __attribute__((warn_unused_result));

/* A statement with text parameters whose result is not needed. */
bool pgconn_exec_params(struct pgconn *c, const char *sql, int nparams, const char *const *params,
			struct err *err) __attribute__((warn_unused_result));

/* The server's current WAL position (pg_current_wal_lsn()). */
bool pgconn_current_lsn(struct pgconn *c, uint64_t *lsn, struct err *err)
	__attribute__((warn_unused_result));

/* First column of the first row as a new string (caller frees), or NULL + err. */
char *pgconn_query_value(struct pgconn *c, const char *sql, int nparams,
			 const char *const *params, struct err *err) __attribute__((warn_unused_result));

/* Quoted identifier / literal for SQL text; caller frees with free(). */
char *pgconn_ident(const char *name);
char *pgconn_literal(const char *value);
/* "schema"."name" */
char *pgconn_qualified(const char *schema, const char *name);

/* The connection's last libpq error on one line (thread-local buffer, valid until the next call). */
const char *pgconn_error(const struct pgconn *c);

/* True if the last failure on c looks like a lost connection (retry later). */
bool pgconn_is_broken(const struct pgconn *c);

#endif
