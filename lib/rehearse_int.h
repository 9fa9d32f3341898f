/*
 * rehearse_int: what the rehearsal's parts share (rehearse.c: the run, the
 * probe pipeline and the cleanup, engine-neutral; rehearse_pg.c and
 * rehearse_my.c: each engine's checks and the probe's start on the
 * target).  Not an API: include rehearse.h.
 */
#ifndef MIGD_REHEARSE_INT_H
#define MIGD_REHEARSE_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "pos.h"
#include "rehearse.h"
#include "store.h"

struct rehearsal {
	const struct rehearse_opts *o;
	struct store src, tgt; /* engine and conninfo from o; connections owned */
	json_t *steps;	       /* owned until returned */
	bool failed;	       /* a step did not pass: the probe is skipped */
	int64_t t0;	       /* when the current step started */
	char token[128];       /* the probe row's key */
	char sink_name[160];   /* the sink's name in the source's migd schema/database */
};

/* Records a step with its verdict and the time since the last one (detail: printf). */
void rh_step(struct rehearsal *r, const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records a step that did not run (and marks the rehearsal failed). */
void rh_skip(struct rehearsal *r, const char *name, const char *why);

/* PostgreSQL (rehearse_pg.c): the checks on either side, each adding its steps. */
void rhpg_check_target(struct rehearsal *r);
void rhpg_check_source(struct rehearsal *r);
/*
 * The probe's start on a PostgreSQL target: the probe table, the
 * publication and the slot; *from: the slot's consistent point; what: the
 * step's detail.  False with err.
 */
bool rhpg_start(struct rehearsal *r, struct pos *from, char *what, size_t n, struct err *err)
    __attribute__((warn_unused_result));
/* Drops the rehearsal slot (ending a lingering reader) and publication if there. */
bool rhpg_drop_slot(struct pgconn *c, const char *slot, const char *publication, bool *found,
		    struct err *err) __attribute__((warn_unused_result));

/* MySQL/MariaDB (rehearse_my.c): the same for a MySQL/MariaDB side. */
void rhmy_check_target(struct rehearsal *r);
void rhmy_check_source(struct rehearsal *r);
/* The probe table, then the target's binlog position (GTID and coordinate) in *from. */
bool rhmy_start(struct rehearsal *r, struct pos *from, char *what, size_t n, struct err *err)
    __attribute__((warn_unused_result));
/* migd.rehearse_probe on a MySQL/MariaDB server, created if missing (looked for first). */
bool rhmy_probe_table(struct myconn *c, struct err *err) __attribute__((warn_unused_result));

#endif
