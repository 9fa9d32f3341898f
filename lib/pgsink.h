/*
 * pgsink: the sink (sink.h) for a PostgreSQL target.  Blocking libpq in
 * pipeline mode; used by the applier thread only.
 */
#ifndef MIGD_PGSINK_H
#define MIGD_PGSINK_H

#include "sink.h"
#include "tables.h"

/* conninfo may hold a password (never logged); ts is borrowed. Free with ops->free. */
struct sink *pgsink_new(const char *conninfo, const char *name, struct mig_tableset *ts);

#endif
