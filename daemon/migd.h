/*
 * migd: the daemon's context and its process-level behaviour (start-up,
 * signals, reload, shutdown).  Everything a control command or the
 * maintenance timer needs hangs off struct migd, passed first.
 */
#ifndef MIGD_MIGD_H
#define MIGD_MIGD_H

#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "conf.h"
#include "metrics.h"
#include "migration.h"
#include "phase.h"

/* Process exit codes (sysexits.h values), for RestartPreventExitStatus=. */
enum migd_exit {
	MIGD_EXIT_OK = 0,
	MIGD_EXIT_FAILURE = 1,    /* runtime failure; systemd may restart */
	MIGD_EXIT_USAGE = 64,     /* bad command line */
	MIGD_EXIT_SOFTWARE = 70,  /* BUG: broken invariant */
	MIGD_EXIT_CANTCREAT = 73, /* cannot create the socket or listener */
	MIGD_EXIT_CONFIG = 78,    /* configuration refused */
};

struct migd {
	struct event_base *base;   /* owned */
	struct migd_conf *conf;    /* owned; the current snapshot, swapped on reload */
	char *conf_path;           /* owned */
	int64_t started_mono_usec;
	int64_t started_wall_usec;

	enum phase phase;            /* shown when no migration runs; else the migration's */
	struct migration *migration; /* owned; NULL if the pair is not supported */
	char *migration_error;       /* owned; why there is no migration */

	struct metrics_registry *metrics; /* owned */
	struct metric_family *m_phase;    /* borrowed from metrics */
	struct metric *m_reloads_ok, *m_reloads_failed;

	struct ctlsrv *ctl;   /* owned */
	struct httpsrv *http; /* owned; NULL when metrics are disabled */
	int metrics_port;     /* the bound port */

	struct event *ev_term, *ev_int, *ev_hup, *ev_maint; /* owned */
	uint64_t watchdog_usec;

	struct event *ev_vdone;          /* owned; fired (from a worker) when a validation ends */
	struct ctl_call *vwait[16];      /* borrowed: `validate --wait` calls to answer then */
	int nvwait;

	struct event *ev_opdone;     /* owned; fired (from the coordinator) when an op ends */
	pthread_mutex_t op_lock;     /* guards op_call, op_result */
	struct ctl_call *op_call;    /* borrowed: the call waiting for freeze/unfreeze */
	json_t *op_result;           /* owned; handed over by the coordinator */

	json_t *pending_restart; /* owned; keys changed on reload that need a restart */
	int64_t last_reload_wall_usec;
	char *last_reload_error; /* owned; NULL when the last reload worked */
};

/* The current phase (the migration's when one runs). */
enum phase migd_phase(struct migd *d);

/* Re-reads the config file; what it did is logged and kept for `status`. */
void migd_reload(struct migd *d, const char *actor);

/* Answers the call waiting for an operation (freeze, unfreeze). */
void migd_op_done(struct migd *d);

/* Answers every waiting `validate --wait` call with the run's result. */
void migd_validation_done(struct migd *d);

/* Starts a clean shutdown from inside the loop. */
void migd_shutdown(struct migd *d, const char *why);

#endif
