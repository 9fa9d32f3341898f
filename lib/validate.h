/*
 * validate: layered validation that can say no, fenced to source positions.
 *
 * Kinds (bit flags, a run does any subset):
 *   counts     row count per table, both sides
 *   checksums  per key-range chunk (the backfill ledger's ranges), a digest
 *              of every row in canonical form on each side; a chunk that
 *              differs is narrowed to the differing keys and columns
 *   invariants, queries  the config's [invariant]/[query] SQL on each side
 *   recent     every key the applier touched since a position (its key log)
 *
 * Pairs: a PostgreSQL or MySQL/MariaDB source, a PostgreSQL or
 * MySQL/MariaDB target (MariaDB 10.11 tested; MySQL 8 untested).  Rows
 * are compared in one canonical form on every engine -- a row's line in
 * PostgreSQL's COPY text format for its (mapped) PostgreSQL types, a
 * PostgreSQL source's columns printed in a MariaDB target's shape where
 * its column is not the PostgreSQL type's own (vside.h) -- and
 * digested as the row count and the sum of a hash of each row:
 * PostgreSQL's own hashtextextended() where every PostgreSQL side hashes
 * as vside does (probed at the start of a run; of the record text when
 * both sides are PostgreSQL), else md5's first 60 bits.  PostgreSQL
 * hashes in the server, a MariaDB side's rows are read through mysnap
 * and hashed here (vside.h says why they agree); a column pair without
 * an exact common text fails that table's checksums, saying why.  Chunks are pipelined:
 * the source digests chunk i+1 while the target digests chunk i.
 * A differing chunk is narrowed by comparing each key's row hash on both
 * sides: missing on target, extra on target, or differs (with the columns
 * that differ, both sides' values shown).
 *
 * Fencing: the source side of a check is read first (one statement, one
 * snapshot); the source's log position read right after it is the check's
 * fence: PostgreSQL's WAL position, a MariaDB source's GTID position with
 * its binlog coordinate.  The target side is read only once the applier
 * has passed the fence (applied_past(), given pos_scalar() of it), so
 * every change the source read saw is on the target.  A difference is
 * checked again up to `rechecks` times (new fence each time): in-flight
 * writes make transient differences, a persistent one is reported.  The
 * applier commits in batches, so past a fence the target can be ahead of
 * the source read before it, on every recheck for a key written all the
 * time; a differing key is therefore settled when its target row equals
 * any version the source showed from the fenced read until just after the
 * target's read (the source rows of the suspect keys are read again while
 * the applier is awaited, and once more after the target).  Each
 * result records the fence it holds for (a PostgreSQL LSN as "0/1A2B3C",
 * a MariaDB position as "gtid:0-1-281@mariadb-bin.000003:1234"); with
 * writes frozen, a check is exact at its fence.
 *
 * Threads: validate_thread() is a worker (blocking libpq/libmariadb);
 * progress and results are read under run->lock.  Results are also stored
 * in the target's migd.validation table, and the backfill ledger's ranges
 * read from its migd.chunks, whatever the target's engine (vstore.h).
 */
#ifndef MIGD_VALIDATE_H
#define MIGD_VALIDATE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "pos.h"
#include "tables.h"

enum validate_kind {
	VK_COUNTS = 1 << 0,
	VK_CHECKSUMS = 1 << 1,
	VK_INVARIANTS = 1 << 2, /* [invariant NAME] checks */
	VK_QUERIES = 1 << 3,    /* [query NAME] read comparisons */
	VK_RECENT = 1 << 4,     /* every key the applier touched since a position */
	VK_ALL = VK_COUNTS | VK_CHECKSUMS | VK_INVARIANTS | VK_QUERIES,
};

/* Parses "counts", "checksums", "invariants", "queries", "recent" or "all"; 0 if unknown. */
unsigned validate_kind_parse(const char *s);

/* One run's progress and results, shared with the loop. */
struct validate_run {
	pthread_mutex_t lock;
	int64_t id;    /* migd.validation id once stored, else 0 */
	unsigned kinds;
	char table[160]; /* "" = every table */
	char status[16]; /* running, done, failed, stopped */
	int64_t started_wall_us, finished_wall_us, started_mono_us;
	int64_t work_total, work_done; /* tables x kinds + chunks */
	int64_t rows_done;
	int64_t mismatches; /* persistent differences found */
	uint64_t fence_min, fence_max; /* pos_scalar() of the positions the results hold for */
	struct pos fence_min_pos, fence_max_pos; /* those positions (pos_none() before any) */
	bool binlog; /* the source is MySQL/MariaDB (how positions print) */
	json_t *results; /* owned: array of per-table, per-kind results */
	char error[512];
};

struct validate_opts {
	const char *name;         /* migration name */
	enum migd_engine src_engine;
	const char *src_conninfo; /* borrowed; secret: libpq conninfo, or the MySQL/MariaDB dsn */
	const char *src_password; /* borrowed; secret: a MySQL/MariaDB dsn's password, or NULL */
	enum migd_engine tgt_engine; /* ENGINE_POSTGRESQL unless set */
	const char *tgt_conninfo;    /* borrowed; secret: libpq conninfo, or a MySQL/MariaDB dsn
					with its password */
	struct mig_tableset *ts;  /* borrowed */
	unsigned kinds;
	const char *table; /* "schema.name" or NULL for all */
	const struct conf_check *checks; /* borrowed: [invariant]/[query] sections */
	int nchecks;
	const char *keylog_path; /* touched-keys log of the applier (recent) */
	struct pos since;        /* recent: keys touched after this position */
	int64_t rows_per_second, rechecks, recheck_wait_ms, max_keys;
	const volatile bool *stop;   /* borrowed */
	const volatile bool *paused; /* borrowed */
	/* True once the target holds every source change up to pos, a pos_scalar() value. */
	bool (*applied_past)(void *arg, uint64_t pos);
	void *arg;
	/* Called from the worker when the run ends (e.g. to wake the loop). */
	void (*done)(void *arg);
	void *done_arg;
	struct validate_run *run; /* borrowed: filled by the worker */
};

/* Thread body; arg is a struct validate_opts * (owned by the caller until done). */
void *validate_thread(void *arg);

/* The run as JSON (status, progress with rate and ETA, fences, results). */
json_t *validate_run_json(struct validate_run *run);

#endif
