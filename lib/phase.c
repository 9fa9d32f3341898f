/* phase: names, owners and the legal transition graph (see phase.h). */
#include "phase.h"

#include <string.h>

const char *const phase_names[PHASE__MAX] = {
	[PHASE_INIT] = "init",
	[PHASE_CAPTURED] = "captured",
	[PHASE_BACKFILLING] = "backfilling",
	[PHASE_CATCHING_UP] = "catching_up",
	[PHASE_SYNCED] = "synced",
	[PHASE_FROZEN] = "frozen",
	[PHASE_CUTOVER] = "cutover",
	[PHASE_WATCHING] = "watching",
	[PHASE_DONE] = "done",
	[PHASE_ABORTED] = "aborted",
	[PHASE_ROLLING_BACK] = "rolling_back",
	[PHASE_ROLLED_BACK] = "rolled_back",
};

static const char *const owner_names[OWNER__MAX] = {
	[OWNER_SOURCE] = "source",
	[OWNER_TARGET] = "target",
};

/*
 * The graph.  Abort is possible from every phase before the flip; once the
 * target has taken writes the way back is rolling_back, never aborted.
 * frozen -> synced is unfreeze.  rolling_back -> watching is a rollback
 * that was given up (its gate said no) with the target still the owner.
 */
static const bool legal[PHASE__MAX][PHASE__MAX] = {
	[PHASE_INIT] = {[PHASE_CAPTURED] = true, [PHASE_ABORTED] = true},
	[PHASE_CAPTURED] = {[PHASE_BACKFILLING] = true, [PHASE_ABORTED] = true},
	[PHASE_BACKFILLING] = {[PHASE_CATCHING_UP] = true, [PHASE_ABORTED] = true},
	[PHASE_CATCHING_UP] = {[PHASE_SYNCED] = true, [PHASE_ABORTED] = true},
	[PHASE_SYNCED] = {[PHASE_FROZEN] = true, [PHASE_CATCHING_UP] = true,
			  [PHASE_ABORTED] = true},
	[PHASE_FROZEN] = {[PHASE_CUTOVER] = true, [PHASE_SYNCED] = true, [PHASE_ABORTED] = true},
	[PHASE_CUTOVER] = {[PHASE_WATCHING] = true, [PHASE_FROZEN] = true},
	[PHASE_WATCHING] = {[PHASE_DONE] = true, [PHASE_ROLLING_BACK] = true},
	[PHASE_ROLLING_BACK] = {[PHASE_ROLLED_BACK] = true, [PHASE_WATCHING] = true},
};

const char *phase_name(enum phase p)
{
	return (p >= 0 && p < PHASE__MAX) ? phase_names[p] : "unknown";
}

bool phase_parse(const char *s, enum phase *out)
{
	for (int i = 0; i < PHASE__MAX; i++) {
		if (strcmp(s, phase_names[i]) == 0) {
			*out = (enum phase)i;
			return true;
		}
	}
	return false;
}

const char *owner_name(enum owner o)
{
	return (o >= 0 && o < OWNER__MAX) ? owner_names[o] : "unknown";
}

enum owner phase_owner(enum phase p)
{
	switch (p) {
	case PHASE_WATCHING:
	case PHASE_DONE:
	case PHASE_ROLLING_BACK:
		return OWNER_TARGET;
	default:
		return OWNER_SOURCE;
	}
}

bool phase_transition_legal(enum phase from, enum phase to)
{
	if (from < 0 || from >= PHASE__MAX || to < 0 || to >= PHASE__MAX)
		return false;
	return legal[from][to];
}

bool phase_is_terminal(enum phase p)
{
	return p == PHASE_DONE || p == PHASE_ABORTED || p == PHASE_ROLLED_BACK;
}
