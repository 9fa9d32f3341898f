/*
 * bftarget: the target side of backfill, per engine -- a PostgreSQL
 * target (bftarget_pg.c: COPY FROM STDIN, ledger in schema migd) or a
 * MySQL/MariaDB one (bftarget_my.c: multi-row INSERTs, ledger in database
 * migd).  backfill.c keeps the scheduling, the retries and the ledger's
 * rules (backfill.h); a bftarget is the SQL of each step on its engine.
 *
 * A chunk is one target transaction, in this order:
 *
 *     chunk_begin       open it; delete the range unless the table was
 *                       empty at plan time (target_empty)
 *     chunk_put ...     one COPY text line per source row
 *     chunk_end         every row sent; a row the target cannot take (a
 *                       value its column cannot hold) went to bad()
 *     failed_record ... the rows neither side could copy
 *     chunk_done        the ledger row becomes done -- only if it is not
 *                       done yet (*already: an earlier attempt committed)
 *     chunk_commit      or chunk_abort (any step failed, or *already)
 *
 * Planning a table is one transaction too: plan_begin (is the target
 * table empty, under a lock; defer its indexes where the engine does),
 * plan_chunk per range, plan_end.
 *
 * Ledger rows are keyed by (migration name, "schema.name" of the source
 * table, chunk number); lo and hi are text[] literals (keyrange.h).
 *
 * Ownership: bftarget_new() and bftarget_of_store() return a new object,
 * freed with ops->free.  A target is used by one thread at a time, except
 * ops->cancel (any thread).  Blocking (worker threads only).
 */
#ifndef MIGD_BFTARGET_H
#define MIGD_BFTARGET_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "pgmeta.h"
#include "store.h"
#include "tables.h"
#include "util.h"

struct bftarget;

/* A chunk as the target sees it. */
struct bftarget_chunk {
	const struct mig_table *t; /* borrowed */
	int no;
	const char *lo, *hi; /* borrowed; text[] literals, NULL = open */
	bool target_empty;   /* the table was empty at plan: no range delete */
	/*
	 * Borrowed; for a table without a key, the source position the copy's
	 * snapshot holds for (pos text form), kept in the ledger row at
	 * chunk_done: the applier skips the table's changes before it.  NULL
	 * otherwise.
	 */
	const char *copied_at;
	/*
	 * A row the target cannot take: its key (text[] literal) and why.
	 * False stops the copy (too many).  Called from chunk_put/chunk_end.
	 */
	bool (*bad)(void *arg, const char *key, const char *why);
	void *bad_arg;
};

/* A ledger row not done yet. */
struct bftarget_todo {
	char *table_name; /* owned; "schema.name" */
	int no;
	char *lo, *hi; /* owned; NULL = open */
	bool target_empty;
};
void bftarget_todo_free(struct bftarget_todo *v, int n);

/* A table copied at a position of its own (bftarget_chunk.copied_at). */
struct bftarget_copied {
	char *table_name; /* owned; "schema.name" of the source table */
	char *pos;	  /* owned; pos text form */
};
void bftarget_copied_free(struct bftarget_copied *v, int n);

/* The ledger's counts for one migration. */
struct bftarget_totals {
	int64_t chunks, done, failed;
	int64_t rows_done; /* rows of done chunks */
};

struct bftarget_ops {
	/*
	 * Connects unless connected and healthy, and sets a worker's session
	 * up; false with err when the server cannot be reached (the caller
	 * retries).
	 */
	bool (*connect)(struct bftarget *t, struct err *err);
	bool (*is_broken)(struct bftarget *t);
	void (*free)(struct bftarget *t); /* closes an owned connection; NULL-safe */

	/* --- planning --------------------------------------------------------- */
	bool (*planned)(struct bftarget *t, const char *name, const char *table_name, bool *planned,
			struct err *err);
	/*
	 * Opens the table's plan transaction: *empty when the target table
	 * holds no row (under a lock that keeps writers out until plan_end);
	 * with defer_indexes, *deferred indexes were dropped and recorded.
	 * False also for a target table that cannot take the source's rows
	 * (missing, a column missing): err names it.
	 */
	bool (*plan_begin)(struct bftarget *t, const char *name, const struct mig_table *tb,
			   bool defer_indexes, bool *empty, int *deferred, struct err *err);
	bool (*plan_chunk)(struct bftarget *t, const char *name, const struct mig_table *tb, int no,
			   const char *lo, const char *hi, bool empty, struct err *err);
	bool (*plan_end)(struct bftarget *t, bool commit, struct err *err);

	/* --- the ledger ------------------------------------------------------- */
	bool (*totals)(struct bftarget *t, const char *name, struct bftarget_totals *out,
		       struct err *err);
	/* Chunks not done, by table and number (caller frees with bftarget_todo_free). */
	bool (*pending)(struct bftarget *t, const char *name, struct bftarget_todo **out, int *n,
			struct err *err);
	/* Done chunks with a copied_at position (caller frees with bftarget_copied_free). */
	bool (*copied)(struct bftarget *t, const char *name, struct bftarget_copied **out, int *n,
		       struct err *err);
	/* Makes every commit this target's server acknowledged before durable. */
	bool (*sync)(struct bftarget *t, struct err *err);
	/* After a failed attempt, outside a transaction: attempts + 1, the error; final: failed. */
	void (*chunk_failed)(struct bftarget *t, const char *name, const struct bftarget_chunk *c,
			     const char *msg, bool final);

	/* --- a chunk (see the top) -------------------------------------------- */
	bool (*chunk_begin)(struct bftarget *t, const struct bftarget_chunk *c, struct err *err);
	bool (*chunk_put)(struct bftarget *t, const char *line, size_t len, struct err *err);
	bool (*chunk_end)(struct bftarget *t, struct err *err);
	/* key: JSON (mysnap_tuple_key_json()); source_pos: the captured position ("none" if unknown). */
	bool (*failed_record)(struct bftarget *t, const char *name, const char *table_name,
			      const char *source_pos, const char *key, const char *why,
			      struct err *err);
	bool (*chunk_done)(struct bftarget *t, const char *name, const struct bftarget_chunk *c,
			   int64_t rows, uint64_t sum, bool *already, struct err *err);
	bool (*chunk_commit)(struct bftarget *t, struct err *err);
	void (*chunk_abort)(struct bftarget *t);

	/* --- deferred indexes (none where the engine does not defer) ------------ */
	bool (*deferred)(struct bftarget *t, const char *name, struct pgmeta_index **out, int *n,
			 struct err *err);
	/* Builds ix back and deletes its record (idempotent); outside a transaction. */
	bool (*restore_index)(struct bftarget *t, const char *name, const struct pgmeta_index *ix,
			      struct err *err);
	/* From any thread: cancels a restore_index in flight (no-op otherwise). */
	void (*cancel)(struct bftarget *t);
};

struct bftarget {
	const struct bftarget_ops *ops;
	enum migd_engine engine;
};

/*
 * A target of engine e (ENGINE_POSTGRESQL: conninfo is libpq's; MariaDB
 * and MySQL: a dsn with its password, myconn.h), with a connection of its
 * own, opened by ops->connect.  conninfo is borrowed and secret.
 */
struct bftarget *bftarget_new(enum migd_engine e, const char *conninfo);

/* A target on the store's connection (borrowed: free leaves it open; no session changes). */
struct bftarget *bftarget_of_store(struct store *s);

/* The engines' constructors (conn NULL: a connection of its own). */
struct bftarget *bftarget_pg_new(const char *conninfo, struct pgconn *conn);
struct bftarget *bftarget_my_new(const char *conninfo, struct myconn *conn);

/* "schema.name", the ledger's table key (caller frees). */
char *bftarget_table_name(const struct mig_table *t);

#endif
