/*
 * backfill: chunked, resumable copy of the tables' history.
 *
 * Planning splits each table's key space into ranges of about chunk_rows
 * rows ((lo, hi], bounds as text arrays; the first and last are open) and
 * records them in the target's ledger (migd.chunks) once; any key type
 * works, composite keys included, since boundaries come from the key's own
 * index order.  Running copies every chunk not yet done with `parallel`
 * worker threads.  A chunk is one target transaction: delete the range,
 * COPY the source rows in, mark the ledger row done with its row count and
 * checksum -- so a chunk can be re-run safely and a restart never copies a
 * done chunk again.  Workers read the source in the exported snapshot when
 * one is given; without it (after a restart) they read current data and
 * replay from the captured position makes the result converge.
 *
 * Threads: backfill_run() blocks its caller (a worker thread) until every
 * chunk is done, the stop flag is raised, or chunks failed for good.
 */
#ifndef MIGD_BACKFILL_H
#define MIGD_BACKFILL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pgconn.h"
#include "tables.h"

/* Shared progress; read under .lock. */
struct backfill_progress {
	pthread_mutex_t lock;
	int64_t chunks_total, chunks_done, chunks_running, chunks_failed;
	int64_t rows_total_est; /* planner estimate; refined as chunks finish */
	int64_t rows_done;      /* rows committed in done chunks plus rows in flight */
	int64_t started_usec;   /* when this run started (monotonic) */
	int64_t rows_at_start;  /* rows_done when this run started, for the rate */
	int64_t finished_usec;  /* when this run ended (monotonic), 0 while running */
	bool paused;
	char last_error[512];
};

struct backfill_opts {
	const char *name;         /* migration name (ledger key) */
	const char *src_conninfo; /* borrowed; secret: never logged */
	const char *tgt_conninfo; /* borrowed */
	const char *snapshot;     /* exported snapshot, or NULL/"" */
	int parallel;
	int64_t chunk_rows;
	struct mig_tableset *ts;     /* borrowed */
	const volatile bool *stop;   /* borrowed: raise to stop */
	const volatile bool *paused; /* borrowed: no new chunks while true */
	int max_attempts;            /* per chunk before it is left failed */
};

/* Creates ledger rows for every table that has none yet. */
bool backfill_plan(struct pgconn *src, struct pgconn *tgt, const struct backfill_opts *o,
		   struct backfill_progress *prog, struct err *err) __attribute__((warn_unused_result));

/*
 * Copies every pending chunk.  Returns true when all chunks are done;
 * false on stop (err "stopped") or when chunks failed after max_attempts
 * (err names them).
 */
bool backfill_run(const struct backfill_opts *o, struct backfill_progress *prog, struct err *err)
	__attribute__((warn_unused_result));

/* Re-reads the ledger totals into prog (for status after a restart). */
bool backfill_load_totals(struct pgconn *tgt, const char *name, struct backfill_progress *prog,
			  struct err *err) __attribute__((warn_unused_result));

#endif
