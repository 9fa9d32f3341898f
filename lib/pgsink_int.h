/*
 * pgsink_int: what pgsink.c (statements, pipeline, sink ops) and
 * pgsink_fold.c (folding a batch's changes per key into multi-row
 * statements) share: the sink's state and the helpers each side calls.
 * Not for other modules: they use pgsink.h.
 */
#ifndef MIGD_PGSINK_INT_H
#define MIGD_PGSINK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "pgconn.h"
#include "sink.h"
#include "tables.h"
#include "util.h"

#define PIPE_SYNC_EVERY 256
#define PIPE_INFLIGHT	4 /* sync groups sent but not read yet */

#define FOLD_MAX_ROWS	256	  /* keys per table before it flushes: rows per statement at most */
#define FOLD_MAX_BYTES	(8 << 20) /* values held before every table flushes */
#define FOLD_MAX_CHANGE (FOLD_MAX_BYTES / 8) /* bigger changes are sent as they are */
#define ARENA_BLOCK	(256 << 10)

#define MULTI_MAX_PARAMS 4096 /* parameters of one multi-row statement at most */
/*
 * Parameters of the multi-row statements kept prepared on the target, all
 * tables together: the target keeps ~400 bytes of plans per parameter, so
 * past this the least recently flushed table's are deallocated.
 */
#define MULTI_BUDGET_PARAMS 32768

/*
 * Bump allocator for the values of pending entries: blocks never move
 * (values point into them); a full flush empties it, keeping one block.
 */
struct arena_blk {
	struct arena_blk *next;
	size_t used, cap;
	char data[];
};
struct arena {
	struct arena_blk *head; /* owned: the block allocated from */
	struct arena_blk *free; /* owned: blocks to reuse */
	size_t bytes;		/* handed out since the last reset */
};

enum pend_state {
	PEND_UPSERT = 1, /* the key's row is vals (a full image) */
	PEND_DELETE,	 /* the key's row is gone */
	PEND_PARTIAL,	 /* UPDATE of the columns in vals that are not CHV_UNCHANGED */
};

enum multi_kind {
	MULTI_UPSERT, /* INSERT ... VALUES (row), ... ON CONFLICT (key) DO UPDATE */
	MULTI_DELETE, /* DELETE ... WHERE key IN (key, ...) */
};

/* A key's changes since the last flush, folded into one. */
struct pend {
	uint32_t hash;
	uint8_t state;		   /* enum pend_state */
	bool delete_first;	   /* PEND_UPSERT: delete the key, then upsert */
	struct change_value *vals; /* in the arena; ncols; text NUL-terminated */
};

struct rel {
	uint32_t relid;
	struct mig_table *t; /* borrowed; NULL: not a migrated table (ignored) */
	bool schema_error;
	char reason[256];
	int ncols;
	char **colnames; /* owned: names in event order */
	int *key_ev;     /* owned: event column index of each key column, key order */
	bool prepared;
	int stmt_no;
	/* folding (see "folding changes per key" below) */
	bool fold;		 /* this table's changes fold outside isolate mode */
	int max_rows;		 /* rows per multi-row statement, a power of 2 */
	uint32_t multi_ready[2]; /* per multi_kind, bit c: its 1 << c row statement is prepared */
	int multi_params;	 /* parameters of those statements */
	uint64_t flushed;	 /* when it last flushed (pgsink.clock) */
	struct pend *pend;	 /* owned: one entry per key changed since the last flush */
	int npend;
	int32_t *slots; /* owned: hash of pend indexes (-1: empty), nslots a power of 2 */
	int nslots;
};

struct pgsink {
	struct sink base;
	char *conninfo; /* owned; secret */
	char *name;     /* owned; migration name */
	struct mig_tableset *ts; /* borrowed */
	struct pgconn c;
	struct rel *rels; /* owned */
	int nrels;
	int next_stmt;
	int pending;  /* commands sent since the last sync */
	int inflight; /* syncs sent whose results are not read yet */
	bool isolate;
	/*
	 * The COMMIT sent without waiting (sink.h).  Its batch's sync groups
	 * are the oldest in flight: commit_groups of them are still unread.
	 */
	bool commit_wait;      /* its answer is not taken by confirm() yet */
	int commit_groups;     /* its sync groups not read yet */
	bool commit_failed;    /* one of them held an error: it did not commit */
	struct err commit_err; /* that error */
	int64_t commit_answered_usec;
	struct sink_counts committing; /* its batch's counts, added once confirmed */
	bool replica;	    /* session_replication_role = replica took effect */
	bool *table_fold;   /* owned: per tableset entry, the target allows folding */
	struct arena arena; /* values of pending entries */
	const char **pv;    /* owned: parameter pointers of a multi-row statement */
	int64_t multi_params; /* of every table's prepared multi-row statements */
	uint64_t clock;	      /* counts flushes */
	size_t pv_cap;
	struct sink_counts batch;
	/* scratch for NUL-terminated parameter copies */
	char *pbuf;
	size_t pcap;
};

enum join_style {
	J_NAME,     /* "c" */
	J_PARAM,    /* $n */
	J_EXCLUDED, /* "c" = EXCLUDED."c" */
	J_ASSIGN,   /* "c" = $n */
};

/* --- pgsink.c ---------------------------------------------------------------- */

/* A command was sent (rc: libpq's); syncs the pipeline every PIPE_SYNC_EVERY. */
bool pgsink_sent(struct pgsink *s, int rc, struct err *err);
bool pgsink_send_sql(struct pgsink *s, const char *sql, int n, const char *const *vals,
		     struct err *err);
/* Joins n columns (idx maps to event columns; NULL = 0..n-1) in one style (caller frees). */
char *pgsink_join_cols(const struct rel *r, int n, const int *idx, enum join_style style,
		       const char *sep);
/* An UPDATE of the columns of nt that are not unchanged-TOAST, at keytup's key. */
bool pgsink_send_partial_update(struct pgsink *s, struct rel *r, const struct change_tuple *nt,
				const struct change_tuple *keytup, struct err *err);
bool pgsink_key_equal(const struct rel *r, const struct change_tuple *a,
		      const struct change_tuple *b);
bool pgsink_has_unchanged(const struct change_tuple *t);

/* --- pgsink_fold.c ----------------------------------------------------------- */

/* Folds a row change of r: 1 folded, 0 send it as it is, -1 error (pgsink_fold.c). */
int pgsink_fold_change(struct pgsink *s, struct rel *r, const struct change_event *ev,
		       struct err *err);
/* Sends r's pending entries as multi-row statements. */
bool pgsink_flush_rel(struct pgsink *s, struct rel *r, struct err *err);
/* The same for every table. */
bool pgsink_flush_all(struct pgsink *s, struct err *err);
/* Forgets every pending entry (the batch was rolled back). */
void pgsink_fold_discard(struct pgsink *s);
void pgsink_arena_free(struct arena *a);

#endif
