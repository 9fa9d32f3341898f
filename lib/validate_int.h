/*
 * validate internals, shared by validate.c (the run, fencing, counts),
 * validate_sums.c (checksums), validate_narrow.c (narrowing to keys,
 * rechecks) and validate_checks.c ([invariant] and [query] checks, recent
 * writes).  Not for other modules.
 */
#ifndef MIGD_VALIDATE_INT_H
#define MIGD_VALIDATE_INT_H

#include "validate.h"
#include "vside.h"

/* The worker's state for one run. */
struct vctx {
	const struct validate_opts *o; /* borrowed */
	struct validate_run *run;      /* borrowed */
	struct vside src, tgt;
	bool binlog; /* the source is MySQL/MariaDB: positions are binlog ones */
	int64_t throttle_rows;
	int64_t throttle_start;
	struct vahead *ahead; /* owned: validate_sums.c's read-ahead of the next table, or NULL */
};

/* A position as results show it (PostgreSQL: its LSN text, as always; else pos_format()). */
const char *vctx_pos_text(const struct vctx *v, const struct pos *p, char *buf, size_t n);

/* Waits until the target holds every source change up to fence; false on timeout or stop. */
bool vctx_wait_applied(struct vctx *v, const struct pos *fence);
/* err for a fence the applier did not reach in time (left alone when stopping). */
void vctx_not_reached(struct vctx *v, const struct pos *fence, struct err *err);
/* Counts rows against rows_per_second (sleeping when ahead) and honours pause. */
void vctx_throttle(struct vctx *v, int64_t rows);
/* Widens the run's fence range by fence. */
void vctx_note_fence(struct vctx *v, const struct pos *fence);
void vctx_add_result(struct vctx *v, json_t *res); /* takes res */
void vctx_progress(struct vctx *v, int64_t total_delta, int64_t done_delta, int64_t mism);

/*
 * One fenced comparison of sel's rows of t (counts_only: the whole table's
 * row count): the source, then its position (the fence), then the target
 * once the applier passed the fence; again up to rechecks times while they
 * differ.  *same false after that means a persistent difference.
 */
bool vctx_compare(struct vctx *v, const struct mig_table *t, const struct vsel *sel,
		  bool counts_only, int64_t rechecks, bool *same, struct vdigest *s,
		  struct vdigest *d, struct pos *fence, struct err *err);

/*
 * validate_narrow.c: the persistent key differences among sel's rows:
 * counted in *ndiff, the first max_keys described into keys (a JSON array).
 */
bool vctx_narrow(struct vctx *v, const struct mig_table *t, const struct vsel *sel, json_t *keys,
		 int64_t *ndiff, struct err *err);

/* Whether the run compares t's rows (its --table scope). */
bool vctx_in_scope(const struct validate_opts *o, const struct mig_table *t);

/* validate_sums.c: t's chunk checksums, one result; false with err when the run fails. */
bool validate_checksums(struct vctx *v, const struct mig_table *t, struct err *err);
/* Frees v->ahead (NULL-safe). */
void validate_ahead_free(struct vctx *v);

/* validate_checks.c */
bool validate_run_check(struct vctx *v, const struct conf_check *ck, struct err *err);
bool validate_recent(struct vctx *v, struct err *err);

#endif
