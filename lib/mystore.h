/*
 * mystore: migd's own state inside a MySQL/MariaDB target, in database
 * "migd": the twin of pgstore (see pgstore.h for what each table holds).
 *
 *   for a sink (also reverse replication into a MySQL/MariaDB source):
 *   migd.progress          last applied source position, its commit time
 *                          and totals, one row per pipeline name
 *   migd.failed_records    changes the target refused (never dropped)
 *   migd.parked            changes held back for a table with a schema error
 *   migd.freeze_violations changes committed after the freeze position
 *   for the coordinator, when the migration's target is MySQL/MariaDB:
 *   migd.migration, migd.journal, migd.chunks (the backfill ledger),
 *   migd.validation, migd.rehearsal
 *
 * Columns mirror pgstore's; jsonb becomes JSON (LONGTEXT checked by
 * json_valid), timestamptz DATETIME(6) in UTC (every myconn session runs
 * with time_zone '+00:00'), bigserial BIGINT AUTO_INCREMENT.  InnoDB and
 * utf8mb4_bin, so the progress row commits in the same transaction as the
 * changes it covers (exactly-once apply).  Blocking (worker threads only).
 */
#ifndef MIGD_MYSTORE_H
#define MIGD_MYSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "myconn.h"
#include "pos.h"
#include "store.h"
#include "util.h"

/*
 * Creates the database and the sink's tables if missing.  DDL commits
 * implicitly in MySQL: call it outside a transaction.
 */
bool mystore_init_sink(struct myconn *c, struct err *err) __attribute__((warn_unused_result));

/* Creates the sink's and the coordinator's tables if missing (outside a transaction). */
bool mystore_init(struct myconn *c, struct err *err) __attribute__((warn_unused_result));

/* The coordinator's calls; each is store_<same name> for a MySQL/MariaDB target (store.h). */
bool mystore_create(struct myconn *c, const char *name, const char *source_engine,
		    const char *slot, const char *publication, struct err *err)
    __attribute__((warn_unused_result));
bool mystore_load(struct myconn *c, const char *name, struct store_migration *out, struct err *err)
    __attribute__((warn_unused_result));
bool mystore_set_phase(struct myconn *c, const char *name, enum phase from, enum phase to,
		       const char *actor, const char *reason, const struct pos *source_pos,
		       const struct pos *target_pos, struct err *err)
    __attribute__((warn_unused_result));
bool mystore_set_captured(struct myconn *c, const char *name, const struct pos *consistent,
			  const char *reason, struct err *err) __attribute__((warn_unused_result));
bool mystore_set_pending(struct myconn *c, const char *name, const char *op,
			 const struct pos *freeze_pos, struct err *err)
    __attribute__((warn_unused_result));
bool mystore_set_reverse(struct myconn *c, const char *name, const struct pos *rev,
			 struct err *err) __attribute__((warn_unused_result));
bool mystore_add_rehearsal(struct myconn *c, const char *name, const char *phase, bool passed,
			   const char *report, struct err *err) __attribute__((warn_unused_result));
bool mystore_last_rehearsal(struct myconn *c, const char *name, char **report, struct err *err)
    __attribute__((warn_unused_result));
bool mystore_journal(struct myconn *c, const char *name, json_t **out, struct err *err)
    __attribute__((warn_unused_result));

/*
 * Applied position of pipeline name (POS_NONE if nothing applied yet) and,
 * if commit_us is not NULL, the source commit time of that transaction
 * (Unix microseconds, 0 unknown).
 */
bool mystore_applied(struct myconn *c, const char *name, struct pos *applied, int64_t *commit_us,
		     struct err *err) __attribute__((warn_unused_result));

/*
 * The statement that records progress, for the sink to run inside its
 * batch transaction: name's position becomes end, its commit time
 * commit_us (Unix microseconds, 0 unknown), and the totals grow by ntxns
 * and nchanges.  Caller frees.
 */
char *mystore_progress_sql(struct myconn *c, const char *name, const struct pos *end,
			   int64_t commit_us, int64_t ntxns, int64_t nchanges);

#endif
