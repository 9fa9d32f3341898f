/*
 * validate: layered validation that can say no, fenced to source positions.
 *
 * Kinds (bit flags, a run does any subset):
 *   counts     row count per table, both sides
 *   checksums  per key-range chunk (the backfill ledger's ranges), a digest
 *              of every row in canonical form on each side; a chunk that
 *              differs is narrowed to the differing keys and columns
 *
 * Canonical row form (so the same data digests the same on any engine):
 * per column "N" for NULL, else "V<length>:<text>", where text is the
 * column's canonical rendering -- timestamps in UTC with microseconds,
 * booleans 1/0, bytea as hex, numerics with their declared scale, text as
 * UTF-8.  A chunk's digest is the row count and the sum of the first 60
 * bits of each row's md5 (order-independent, exact in both engines).
 *
 * Fencing: the source side of a check is read first; the source WAL
 * position read right after it is the check's fence.  The target side is
 * read only once the applier has passed the fence, so every change the
 * source read saw is on the target.  A difference is checked again up to
 * `rechecks` times (new fence each time): in-flight writes make transient
 * differences, a persistent one is reported.  Each result records the
 * fence it holds for; with writes frozen, a check is exact at its fence.
 *
 * Threads: validate_thread() is a worker (blocking libpq); progress and
 * results are read under run->lock.  Results are also stored in the
 * target's migd.validation table.
 */
#ifndef MIGD_VALIDATE_H
#define MIGD_VALIDATE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
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
	uint64_t fence_min, fence_max; /* source positions the results hold for */
	json_t *results; /* owned: array of per-table, per-kind results */
	char error[512];
};

struct validate_opts {
	const char *name;         /* migration name */
	const char *src_conninfo; /* borrowed; secret */
	const char *tgt_conninfo; /* borrowed; secret */
	struct mig_tableset *ts;  /* borrowed */
	unsigned kinds;
	const char *table; /* "schema.name" or NULL for all */
	const struct conf_check *checks; /* borrowed: [invariant]/[query] sections */
	int nchecks;
	const char *keylog_path; /* touched-keys log of the applier (recent) */
	uint64_t since_lsn;      /* recent: keys touched after this position */
	int64_t rows_per_second, rechecks, recheck_wait_ms, max_keys;
	const volatile bool *stop;   /* borrowed */
	const volatile bool *paused; /* borrowed */
	/* True once the target holds every source change up to lsn. */
	bool (*applied_past)(void *arg, uint64_t lsn);
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
