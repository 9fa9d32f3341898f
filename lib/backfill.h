/*
 * backfill: chunked, resumable copy of the tables' history.
 *
 * Planning splits each table's key space into ranges of about chunk_rows
 * rows ((lo, hi], bounds as text arrays; the first and last are open) and
 * records them in the target's ledger (migd.chunks) once; any key type
 * works, composite keys included, since boundaries come from the key's own
 * index order.  Running copies every chunk not yet done with `parallel`
 * worker threads.  A chunk is one target transaction: write the source rows
 * (bfsource.h: COPY text lines; bftarget.h: COPY FROM STDIN into
 * PostgreSQL, multi-row INSERTs into MySQL/MariaDB) and mark the ledger row
 * done (only if it is not done yet) with its row count and checksum -- so
 * rows of a range commit exactly once, a chunk can be re-run safely and a
 * restart never copies a done chunk again.  Workers read the source in the
 * exported snapshot when one is given; without it (after a restart, or a
 * MariaDB source) they read current data and replay from the captured
 * position makes the result converge.  A row that cannot be copied as it
 * is (a value the source cannot render or the target column cannot hold)
 * becomes a failed record in the chunk's transaction, never an altered row.
 *
 * Target tables that already hold rows keep their indexes, and each chunk
 * deletes its range before the copy.  A table that is empty when its plan
 * commits (checked under a lock, recorded per chunk as target_empty) needs
 * no delete: the only writer of a range until the backfill ends is that
 * range's own chunk transaction, which commits together with its ledger
 * row.  The range delete needs both engines to order keys alike: a
 * MySQL/MariaDB target compares character keys by their bytes, so a
 * PostgreSQL source's text key columns must sort by bytes ("C") when the
 * target table is not empty; otherwise planning that table fails.
 *
 * defer_indexes (PostgreSQL targets): an empty table's indexes are dropped
 * in the plan's transaction, recorded in migd.deferred_indexes (pgmeta.h),
 * and built again once the table's last chunk is done, by the same
 * workers, before backfill_run() returns true: the applier, whose upserts
 * need the key, starts only after that.  MySQL/MariaDB targets keep their
 * indexes (the setting changes nothing there): InnoDB's primary key is the
 * table itself, and dropping the secondary ones did not pay.  Measured
 * with this code (MariaDB 10.11 -> 10.11, 2 workers, chunk_rows 50000, a
 * sysbench table with one secondary index, 256 MB buffer pool, 2 cores):
 * 1M rows 3.7 s with the index vs 2.65 s + 0.53 s ADD INDEX = 3.2 s
 * without it (-14%); 4M rows (929 MB, past the buffer pool) 18.2 s vs
 * 13.1 s + 5.1 s = 18.1 s (-0.5%).  Against that: DDL commits implicitly in
 * MariaDB, so the drop could not commit with the plan and would need a
 * crash-repair path of its own.
 *
 * Durability.  PostgreSQL chunk transactions commit with synchronous_commit
 * off: a target crash loses a chunk's rows and its ledger row together.  A
 * worker that saw the commit would not copy it again, so backfill_run()
 * ends with a synchronous commit (which makes every earlier commit durable)
 * and then checks the ledger; chunks lost in between are copied again.
 * MySQL/MariaDB has no per-session asynchronous commit: each chunk commit
 * is as durable as the server's settings make every commit (bftarget_my.c),
 * and the same ledger check follows each pass.
 *
 * Threads: backfill_run() blocks its caller (a worker thread) until every
 * chunk and index is done, the stop flag is raised, or work failed for good.
 */
#ifndef MIGD_BACKFILL_H
#define MIGD_BACKFILL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bfsource.h"
#include "conf.h"
#include "store.h"
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
	int64_t indexes_total;  /* deferred indexes this pass builds back */
	int64_t indexes_done;   /* of those, built */
	bool paused;
	char last_error[512];
};

struct backfill_opts {
	const char *name;         /* migration name (ledger key) */
	const char *src_conninfo; /* borrowed; secret: never logged (a MariaDB dsn when src_mariadb) */
	bool src_mariadb;         /* the source is MariaDB: mysnap reads, own snapshots */
	const char *source_pos;   /* the captured position, for failed records of unmappable rows */
	enum migd_engine tgt_engine; /* the target's engine (bftarget.h) */
	const char *tgt_conninfo;    /* borrowed, secret: libpq conninfo, or a dsn with password */
	const char *snapshot;     /* exported snapshot, or NULL/"" */
	struct pos snapshot_pos;  /* where the exported snapshot stands (the captured position) */
	/* borrowed, secret; PostgreSQL replication conninfo: a keyless table's copy without
	   the exported snapshot takes a temporary slot's (bfsource.h) */
	const char *repl_conninfo;
	int parallel;
	int64_t chunk_rows;
	int64_t rows_per_second; /* the copy's rate at most, all workers together; 0: unlimited */
	struct mig_tableset *ts;     /* borrowed */
	const volatile bool *stop;   /* borrowed: raise to stop */
	const volatile bool *paused; /* borrowed: no new chunks while true */
	int max_attempts;            /* per chunk or index before it is left failed */
	bool defer_indexes;          /* drop an empty target table's indexes while copying */
	/* Called (from any backfill thread) with what the backfill is doing now. */
	void (*activity)(void *arg, const char *text);
	void *activity_arg;
};

/*
 * Creates ledger rows for every table that has none yet (and, with
 * defer_indexes, defers an empty target table's indexes in the same
 * transaction).
 */
bool backfill_plan(struct bfsource *src, struct store *tgt, const struct backfill_opts *o,
		   struct backfill_progress *prog, struct err *err) __attribute__((warn_unused_result));

/*
 * Copies every pending chunk and builds back every deferred index.
 * Returns true when the ledger durably shows all chunks done and no index
 * deferred; false on stop (err "stopped") or when chunks or index builds
 * failed after max_attempts (err names the first).
 */
bool backfill_run(const struct backfill_opts *o, struct backfill_progress *prog, struct err *err)
	__attribute__((warn_unused_result));

/* Re-reads the ledger totals into prog (for status after a restart). */
bool backfill_load_totals(struct store *tgt, const char *name, struct backfill_progress *prog,
			  struct err *err) __attribute__((warn_unused_result));

#endif
