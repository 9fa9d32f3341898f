/*
 * phase: the migration's phases, who owns the data in each, and which
 * transitions are legal.  Pure data and lookups; the one function that
 * changes the current phase (journaling it) lives with the migration state.
 *
 *   init -> captured -> backfilling -> catching_up -> synced -> frozen
 *        -> cutover -> watching -> done
 *   ways back: aborted (before the flip), rolling_back -> rolled_back
 */
#ifndef MIGD_PHASE_H
#define MIGD_PHASE_H

#include <stdbool.h>

enum phase {
	PHASE_INIT,
	PHASE_CAPTURED,
	PHASE_BACKFILLING,
	PHASE_CATCHING_UP,
	PHASE_SYNCED,
	PHASE_FROZEN,
	PHASE_CUTOVER,
	PHASE_WATCHING,
	PHASE_DONE,
	PHASE_ABORTED,
	PHASE_ROLLING_BACK,
	PHASE_ROLLED_BACK,
	PHASE__MAX,
};

/* Which database is the authority for application writes. */
enum owner {
	OWNER_SOURCE,
	OWNER_TARGET,
	OWNER__MAX,
};

extern const char *const phase_names[PHASE__MAX];

const char *phase_name(enum phase p);
/* Parses a phase name; false if unknown. */
bool phase_parse(const char *s, enum phase *out) __attribute__((warn_unused_result));
const char *owner_name(enum owner o);

/* The owner implied by a phase (cutover flips it during the phase itself). */
enum owner phase_owner(enum phase p);

/* True if from -> to is an edge of the phase graph. */
bool phase_transition_legal(enum phase from, enum phase to);

/* True for phases migd never leaves by itself (done, aborted, rolled_back). */
bool phase_is_terminal(enum phase p);

#endif
