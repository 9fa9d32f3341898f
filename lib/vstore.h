/*
 * vstore: what validation reads from and keeps in the target's migd
 * schema (PostgreSQL) or database (MySQL/MariaDB), through the target
 * side's connection: the backfill ledger's key ranges (migd.chunks), the
 * ranges checksums are cut into, and each finished run's results
 * (migd.validation).  Blocking (worker threads only).
 */
#ifndef MIGD_VSTORE_H
#define MIGD_VSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "tables.h"
#include "util.h"
#include "vside.h"

/* A table's ledger ranges (lo, hi], in chunk order; NULL bounds are open. */
struct vranges {
	int n;
	char **lo, **hi; /* owned, n each; entries owned or NULL */
};

/* migration name's ranges of t (none: n 0).  Free with vranges_free(). */
bool vstore_ranges(struct vside *tgt, const char *name, const struct mig_table *t,
		   struct vranges *out, struct err *err) __attribute__((warn_unused_result));
void vranges_free(struct vranges *r);

/* One run's row of migd.validation (every text borrowed; results a JSON text). */
struct vstore_run {
	const char *name, *kinds, *status, *mismatches, *position_min, *position_max, *results;
};

/* Inserts the run; *id its migd.validation id. */
bool vstore_save(struct vside *tgt, const struct vstore_run *r, int64_t *id, struct err *err)
    __attribute__((warn_unused_result));

#endif
