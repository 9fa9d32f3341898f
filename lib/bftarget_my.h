/*
 * bftarget_my: internals of the MySQL/MariaDB backfill target, shared by
 * bftarget_my.c (connection, plan, ledger, transactions) and
 * bftarget_myrows.c (target tables and a chunk's rows).  Not an API:
 * other modules use bftarget.h.
 */
#ifndef MIGD_BFTARGET_MY_H
#define MIGD_BFTARGET_MY_H

#include "bftarget.h"
#include "myconn.h"
#include "mytext.h"

/* A migrated table's target, as this connection described it. */
struct bfmy_desc {
	const struct mig_table *t; /* borrowed: the source table it is for */
	char *qname;		   /* owned: `db`.`name` */
	char *error;		   /* owned: why it cannot take the source's rows; NULL: it can */
	struct mytext_col *types;  /* owned: target type of each source column */
	char **members;		   /* owned: full COLUMN_TYPE of ENUM/SET columns, else NULL */
	char *ins_head;		   /* owned: "INSERT INTO `db`.`t` (`c`, ...) VALUES " */
};

/* One multi-row INSERT and what it holds, to resend its rows one by one. */
struct bfmy_batch {
	struct mytext_buf sql; /* the INSERT */
	int rows, cap;
	size_t *row_at;		 /* owned: where each row starts in sql */
	struct mytext_buf lines; /* the rows' COPY lines */
	size_t *line_at;	 /* owned: where each starts in lines */
};

struct bfmy {
	struct bftarget base;
	const char *dsn; /* borrowed, secret */
	struct myconn own;
	struct myconn *c;	 /* &own, or the store's (borrowed) */
	size_t max_packet;	 /* the server's max_allowed_packet */
	struct bfmy_desc *descs; /* owned: described on this connection (dropped on reconnect) */
	int ndescs;
	/* the chunk in flight */
	struct bftarget_chunk chunk;
	const struct bfmy_desc *d; /* borrowed from descs */
	size_t stmt_max;	   /* bound of one INSERT statement */
	struct bfmy_batch pend;	   /* the INSERT being built */
	struct bfmy_batch sent;	   /* the INSERT the server is running (when in_flight) */
	bool in_flight;
	struct mytext_buf row, scratch;
	struct change_value *vals; /* owned: one line's values */
	int nvals;
};

/* 's' as a literal, or NULL. */
void bfmy_quote(struct mytext_buf *b, const char *s);

/*
 * t's target on this connection (described once; NULL with err on a
 * server error).  A table that cannot take the source's rows is described
 * with ->error set.
 */
const struct bfmy_desc *bfmy_describe(struct bfmy *m, const struct mig_table *t, struct err *err);
/* Drops the descriptions (the connection is new: read them again). */
void bfmy_forget(struct bfmy *m);

/* The chunk's ops (bftarget.h): transaction and range delete, rows, the last statement. */
bool bfmy_chunk_begin(struct bftarget *t, const struct bftarget_chunk *c, struct err *err);
bool bfmy_chunk_put(struct bftarget *t, const char *line, size_t len, struct err *err);
bool bfmy_chunk_end(struct bftarget *t, struct err *err);
/* Drops the pending INSERT and waits out one in flight (reset); frees their memory (free). */
void bfmy_rows_reset(struct bfmy *m);
void bfmy_rows_free(struct bfmy *m);

#endif
