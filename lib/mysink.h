/*
 * mysink: the sink (sink.h) for a MySQL/MariaDB target.  Blocking
 * libmariadb through myconn; used by the applier thread only.
 *
 * Same contract as pgsink: relations matched by schema.name against the
 * table set, the schema contract checked per relation (a table in schema
 * error has its changes parked in migd.parked, in order), insert = upsert,
 * delete of a missing row = no-op, the applied position written into
 * migd.progress in the batch's own transaction, isolate mode with a
 * savepoint per change turning refusals into migd.failed_records rows.
 * Values are converted per target column by mytext (refusing what the
 * column cannot hold exactly); consecutive upserts or deletes of one table
 * travel as one multi-row statement.
 */
#ifndef MIGD_MYSINK_H
#define MIGD_MYSINK_H

#include "sink.h"
#include "tables.h"

/*
 * dsn: myconn's key=value form (may hold a password, never logged).  name:
 * the pipeline's name in migd.progress.  ts is borrowed; target tables are
 * the tables' tgt_qname (the "schema" being the MySQL database).  Free
 * with ops->free.
 */
struct sink *mysink_new(const char *dsn, const char *name, struct mig_tableset *ts);

#endif
