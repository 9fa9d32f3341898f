/*
 * migration: one migration's run, engine pair PostgreSQL -> PostgreSQL.
 *
 * A coordinator thread walks the phases: it checks the schema contract,
 * captures (publication, slot with exported snapshot, consistent position
 * journaled on the target), opens the spool and starts the slot reader,
 * plans and runs the backfill (in the snapshot while it is held), then
 * starts the applier and waits for it to catch up.  Each transition goes
 * through migration_set_phase(), which checks legality and journals it in
 * the target's migd schema before it counts.  After a restart the phase is
 * read back from the target and the run resumes there.
 *
 * Threads: the coordinator, the slot reader, backfill workers and the
 * applier are worker threads with blocking libpq; the event loop only
 * reads progress (migration_status(), migration_update_metrics()) and
 * flips flags (stop, pause) under the lock.  Owns its threads, its
 * connection strings (secret) and the spool.
 */
#ifndef MIGD_MIGRATION_H
#define MIGD_MIGRATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "metrics.h"
#include "phase.h"

struct migration;

/*
 * Starts the coordinator for conf (copied: a reload does not change a
 * running migration).  Returns NULL with *err (malloc'ed) when the config
 * asks for an engine pair not built yet.  Free with migration_stop().
 */
struct migration *migration_start(const struct migd_conf *conf, struct metrics_registry *reg,
				  char **err);

/* Stops every thread (in-flight batches roll back, chunks are redone) and frees. */
void migration_stop(struct migration *m);

enum phase migration_phase(struct migration *m);

/* Status for `migctl status` / `lag` / `backfill status`: a new JSON object. */
json_t *migration_status(struct migration *m);

/* Short STATUS= text: "phase=catching_up lag=0.4s". Caller frees. */
char *migration_status_line(struct migration *m);

/* Refreshes the gauges in the registry (called by the maintenance timer). */
void migration_update_metrics(struct migration *m);

/*
 * Starts a validation run (one at a time) over table (NULL: all) for kinds
 * (validate.h).  done(arg) is called from the worker when it ends.  False
 * with *err when one is already running or the applier is not running yet.
 */
bool migration_validate_start(struct migration *m, unsigned kinds, const char *table,
			      const struct conf_check *checks, int nchecks, const char *since,
			      void (*done)(void *), void *arg, const char **err);
/* The current or last run as JSON, or NULL if there was none. */
json_t *migration_validation(struct migration *m);
bool migration_validate_pause(struct migration *m, bool pause, const char **err);

/* True once the target holds every source change up to lsn. */
bool migration_applied_past(struct migration *m, uint64_t lsn);

/*
 * Asks the coordinator to run op: freeze, unfreeze, cutover (dry_run: show
 * the gate and the steps, change nothing), rollback, complete or abort.
 * The gate thresholds, hooks and roles are copied from conf.  done(arg,
 * result) is called from the coordinator thread with a new JSON object
 * (an "error" member on failure).  False with *err if the phase does not
 * allow it or another operation is in progress.
 */
bool migration_request(struct migration *m, const char *op, const struct migd_conf *conf,
		       bool dry_run, void (*done)(void *, json_t *), void *arg, const char **err);

/*
 * Starts a rehearsal of the reverse path (rehearse.h) on a thread of its
 * own, in phases captured to frozen; it changes nothing in the migration.
 * done(arg, report) is called from that thread with a new JSON object
 * ({passed, steps, ...}); the report is kept for the gate and in the
 * target's migd.rehearsal.  False with *err when the phase does not allow
 * it, a cutover is in progress or a rehearsal is already running.
 */
bool migration_rehearse(struct migration *m, void (*done)(void *, json_t *), void *arg,
			const char **err);

/* The gate: {ready, phase, criteria: [{name, ok, value, threshold, detail}]}. */
json_t *migration_gate(struct migration *m, const struct migd_conf *conf);

/* The phase journal (a copy), oldest first; and the last freeze's report (or null). */
json_t *migration_journal(struct migration *m);
json_t *migration_freeze_report(struct migration *m);

/* Backfill pause/resume: running chunks finish, no new ones start. */
bool migration_backfill_pause(struct migration *m, bool pause, const char **err);

#endif
