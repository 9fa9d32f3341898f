/*
 * apply: the applier.  A worker thread that reads committed transactions
 * from the spool, skips those the target already has (their position is at
 * or before the applied position read from the target), and applies the
 * rest through a sink in batches of whole source transactions, bounded by
 * count, bytes and time.  Engine-neutral: every reader x sink pair uses it.
 *
 * A table without a key was copied at a position of its own (bfsource.h):
 * its changes before that position are in the copy already, and replaying
 * them would double rows, so they are skipped (load_starts).
 *
 * Failure handling: a batch the target refuses is rolled back and re-read
 * from the spool in isolation (the sink records each refused change as a
 * failed record and goes on); a lost connection is reopened with backoff,
 * after which the applied position is read from the target again.
 */
#ifndef MIGD_APPLY_H
#define MIGD_APPLY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "sink.h"
#include "spool.h"
#include "tables.h"

struct apply_progress {
	pthread_mutex_t lock;
	bool connected;
	struct pos applied;        /* last committed source position */
	int64_t applied_commit_us; /* its source commit time */
	bool idle;                 /* everything durable in the spool is applied */
	int64_t txns, batches;
	struct sink_counts counts;
	int64_t retry_depth; /* transactions waiting to be re-applied after a failure */
	char schema_errors[512]; /* "schema.table: reason" lines */
	int64_t freeze_violations; /* committed, for the current freeze position */
	char last_violation[256];
	char last_error[512];
};

/* A table whose changes before `at` are skipped. */
struct apply_table_start {
	char *table;   /* owned; "schema.name" of the source table */
	struct pos at; /* in the source's form; pos_scalar() orders it */
};
void apply_table_starts_free(struct apply_table_start *v, int n);

struct apply_opts {
	struct spool *spool;         /* borrowed */
	struct sink *sink;           /* borrowed */
	const volatile bool *stop;   /* borrowed */
	struct apply_progress *prog; /* borrowed */
	int64_t batch_txns, batch_bytes, batch_delay_ms;
	struct metric *latency; /* borrowed histogram child: batch commit latency; may be NULL */
	struct mig_tableset *ts;  /* borrowed: key columns for the touched-keys log */
	const char *keylog_path;  /* the touched-keys log (keylog.h); NULL: none */
	/* the freeze position as a pos_scalar() value, 0 when not frozen; NULL: none */
	const volatile uint64_t *freeze_lsn;
	/*
	 * Borrowed; a position of the source (its kind and binlog name): the
	 * form freeze positions are recorded in (pos_from_scalar).  NULL: the
	 * applied position's form.
	 */
	const struct pos *source_like;
	/*
	 * Reads the tables copied at a position of their own (caller of the
	 * callback frees with apply_table_starts_free); called at every
	 * (re)connect, false (err) retries.  NULL: none.
	 */
	bool (*load_starts)(void *arg, struct apply_table_start **out, int *n, struct err *err);
	void *load_starts_arg;
};

/* Thread body; arg is a struct apply_opts *. */
void *apply_thread(void *arg);

#endif
