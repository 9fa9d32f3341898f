/*
 * mystore: migd's own state inside a MySQL/MariaDB target, in database
 * "migd" (the twin of pgstore for the tables a sink needs).
 *
 *   migd.progress          last applied source position, its commit time
 *                          and totals, one row per pipeline name
 *   migd.failed_records    changes the target refused (never dropped)
 *   migd.parked            changes held back for a table with a schema error
 *   migd.freeze_violations changes committed after the freeze position
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
#include "util.h"

/*
 * Creates the database and the sink's tables if missing.  DDL commits
 * implicitly in MySQL: call it outside a transaction.
 */
bool mystore_init_sink(struct myconn *c, struct err *err) __attribute__((warn_unused_result));

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
