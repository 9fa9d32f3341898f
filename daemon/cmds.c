/*
 * cmds: control command handlers.  Each takes the daemon context and the
 * call and returns one reply object (see ctlproto.h).  The table at the end
 * is the whole command set; `help` is generated from it.
 */
#include "config.h"

#include "cmds.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migd.h"
#include "validate.h"
#include "util.h"

static char *iso_time(int64_t wall_usec)
{
	time_t t = (time_t)(wall_usec / 1000000);
	struct tm tm;
	char buf[32];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return xstrdup(buf);
}

static json_t *cmd_ping(void *ctx, struct ctl_call *call)
{
	json_t *r = ctl_reply_ok();
	json_object_set_new(r, "pong", json_true());
	json_object_set_new(r, "pid", json_integer(getpid()));
	return r;
}

static json_t *endpoint_json(const struct conf_endpoint *e)
{
	return json_pack("{s:s}", "engine", engine_name((enum migd_engine)e->engine));
}

static json_t *cmd_status(void *ctx, struct ctl_call *call)
{
	struct migd *d = ctx;
	json_t *r = ctl_reply_ok();
	char *started = iso_time(d->started_wall_usec);

	json_object_set_new(r, "migration", json_string(d->conf->name));
	enum phase ph = migd_phase(d);
	json_object_set_new(r, "phase", json_string(phase_name(ph)));
	json_object_set_new(r, "owner", json_string(owner_name(phase_owner(ph))));
	if (d->migration != NULL)
		json_object_set_new(r, "migration_state", migration_status(d->migration));
	else
		json_object_set_new(r, "migration_state",
				    json_pack("{s:s?}", "error", d->migration_error));
	json_object_set_new(r, "version", json_string(PACKAGE_VERSION));
	json_object_set_new(r, "commit", json_string(MIGD_GIT_COMMIT));
	json_object_set_new(r, "pid", json_integer(getpid()));
	json_object_set_new(r, "started_at", json_string(started));
	json_object_set_new(r, "uptime_seconds",
			    json_real((double)(now_mono_usec() - d->started_mono_usec) / 1e6));
	json_object_set_new(r, "config_path", json_string(d->conf_path));
	json_object_set_new(r, "control_socket", json_string(d->conf->control_socket));
	if (d->http != NULL)
		json_object_set_new(r, "metrics",
				    json_pack("{s:s, s:i}", "listen", d->conf->metrics_listen,
					      "port", d->metrics_port));
	else
		json_object_set_new(r, "metrics", json_null());
	json_object_set_new(r, "source", endpoint_json(&d->conf->source));
	json_object_set_new(r, "target", endpoint_json(&d->conf->target));
	json_object_set(r, "pending_restart", d->pending_restart);
	if (d->last_reload_wall_usec != 0) {
		char *at = iso_time(d->last_reload_wall_usec);
		json_object_set_new(r, "last_reload",
				    json_pack("{s:s, s:s, s:s?}", "at", at, "result",
					      d->last_reload_error ? "refused" : "ok", "error",
					      d->last_reload_error));
		free(at);
	}
	free(started);
	return r;
}

static json_t *cmd_config(void *ctx, struct ctl_call *call)
{
	struct migd *d = ctx;
	json_t *r = ctl_reply_ok();
	json_object_set_new(r, "path", json_string(d->conf_path));
	json_object_set_new(r, "keys", conf_to_json(d->conf));
	json_object_set_new(r, "checks", conf_checks_json(d->conf));
	json_object_set(r, "pending_restart", d->pending_restart);
	return r;
}

static json_t *cmd_reload(void *ctx, struct ctl_call *call)
{
	struct migd *d = ctx;
	char *actor = xasprintf("migctl(uid=%u,pid=%d)", (unsigned)call->peer.uid,
				(int)call->peer.pid);
	migd_reload(d, actor);
	free(actor);
	if (d->last_reload_error != NULL)
		return ctl_reply_error(CTL_ERR_FAILED, "reload refused: %s", d->last_reload_error);
	json_t *r = ctl_reply_ok();
	json_object_set(r, "pending_restart", d->pending_restart);
	return r;
}

/* The part of the migration state a subcommand shows, or an error reply. */
static json_t *migration_part(struct migd *d, const char *part)
{
	if (d->migration == NULL)
		return ctl_reply_error(CTL_ERR_FAILED, "no migration is running: %s",
				       d->migration_error ? d->migration_error : "unknown reason");
	json_t *st = migration_status(d->migration);
	json_t *r = ctl_reply_ok();
	json_object_set_new(r, "phase", json_string(phase_name(migd_phase(d))));
	json_object_set(r, part, json_object_get(st, part));
	if (strcmp(part, "lag") == 0) {
		json_object_set(r, "stream", json_object_get(st, "stream"));
		json_object_set(r, "apply", json_object_get(st, "apply"));
		json_object_set(r, "capture", json_object_get(st, "capture"));
	}
	json_decref(st);
	return r;
}

static json_t *cmd_lag(void *ctx, struct ctl_call *call)
{
	return migration_part(ctx, "lag");
}

static json_t *cmd_backfill(void *ctx, struct ctl_call *call)
{
	struct migd *d = ctx;
	const char *sub = ctl_arg(&call->req, 0);
	if (sub == NULL || strcmp(sub, "status") == 0)
		return migration_part(d, "backfill");
	bool pause = strcmp(sub, "pause") == 0;
	if (!pause && strcmp(sub, "resume") != 0)
		return ctl_reply_error(CTL_ERR_BAD_REQUEST,
				       "backfill takes pause, resume or status, not '%s'", sub);
	/* Changing the backfill needs an operator, reading it does not. */
	if (!call->peer.may_mutate)
		return ctl_reply_error(CTL_ERR_PERMISSION, "'backfill %s' needs an operator", sub);
	const char *err = NULL;
	if (d->migration == NULL || !migration_backfill_pause(d->migration, pause, &err))
		return ctl_reply_error(CTL_ERR_FAILED, "cannot %s the backfill: %s", sub,
				       err ? err : "no migration is running");
	return migration_part(d, "backfill");
}

/* A run's reply: the run, and ready = finished with no difference. */
static json_t *validation_reply(json_t *run)
{
	json_t *r = ctl_reply_ok();
	const char *st = json_string_value(json_object_get(run, "status"));
	bool ready = st && strcmp(st, "done") == 0 &&
		     json_integer_value(json_object_get(run, "mismatches")) == 0;
	/* A run still going has no verdict yet (migctl exits 0 for "started"). */
	if (st == NULL || strcmp(st, "running") != 0)
		json_object_set_new(r, "ready", json_boolean(ready));
	json_object_set_new(r, "validation", run);
	return r;
}

static void validation_done_notify(void *arg)
{
	struct migd *d = arg;
	event_active(d->ev_vdone, 0, 0); /* from the worker: hop to the loop */
}

void migd_validation_done(struct migd *d)
{
	for (int i = 0; i < d->nvwait; i++) {
		json_t *run = migration_validation(d->migration);
		ctl_call_reply(d->vwait[i], run ? validation_reply(run)
						: ctl_reply_error(CTL_ERR_INTERNAL, "no run"));
	}
	d->nvwait = 0;
}

static json_t *cmd_validate(void *ctx, struct ctl_call *call)
{
	struct migd *d = ctx;
	const char *sub = ctl_arg(&call->req, 0);
	const char *err = NULL;
	if (d->migration == NULL)
		return ctl_reply_error(CTL_ERR_FAILED, "no migration is running");
	if (sub != NULL && (strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0)) {
		if (!migration_validate_pause(d->migration, strcmp(sub, "pause") == 0, &err))
			return ctl_reply_error(CTL_ERR_FAILED, "%s", err);
		return ctl_reply_ok();
	}
	if (sub != NULL)
		return ctl_reply_error(CTL_ERR_BAD_REQUEST, "validate takes pause or resume, not '%s'",
				       sub);
	const char *kind = json_string_value(json_object_get(call->req.body, "kind"));
	const char *table = json_string_value(json_object_get(call->req.body, "table"));
	/* Scoped to a table, the default is that table's counts and checksums. */
	unsigned kinds = kind ? validate_kind_parse(kind) : table ? VK_COUNTS | VK_CHECKSUMS : VK_ALL;
	if (kinds == 0)
		return ctl_reply_error(CTL_ERR_BAD_REQUEST,
				       "--kind takes counts, checksums, invariants, queries, recent or all, "
				       "not '%s'",
				       kind);
	bool wait = json_is_true(json_object_get(call->req.body, "wait"));
	if (wait && d->nvwait >= (int)ARRAY_LEN(d->vwait))
		return ctl_reply_error(CTL_ERR_BUSY, "too many callers waiting for validation");
	const char *since = json_string_value(json_object_get(call->req.body, "since"));
	if (!migration_validate_start(d->migration, kinds, table, d->conf->checks, d->conf->nchecks,
				      since, validation_done_notify, d, &err))
		return ctl_reply_error(CTL_ERR_FAILED, "cannot validate: %s", err);
	if (wait) {
		d->vwait[d->nvwait++] = call;
		return NULL; /* answered by migd_validation_done() */
	}
	return validation_reply(migration_validation(d->migration));
}

static json_t *cmd_validation(void *ctx, struct ctl_call *call)
{
	struct migd *d = ctx;
	json_t *run = d->migration ? migration_validation(d->migration) : NULL;
	if (run == NULL)
		return ctl_reply_error(CTL_ERR_FAILED, "no validation has run yet (migctl validate)");
	return validation_reply(run);
}

/* From the coordinator thread: park the result, wake the loop. */
static void op_finished(void *arg, json_t *result)
{
	struct migd *d = arg;
	pthread_mutex_lock(&d->op_lock);
	json_decref(d->op_result);
	d->op_result = result;
	pthread_mutex_unlock(&d->op_lock);
	event_active(d->ev_opdone, 0, 0);
}

void migd_op_done(struct migd *d)
{
	pthread_mutex_lock(&d->op_lock);
	json_t *res = d->op_result;
	struct ctl_call *call = d->op_call;
	d->op_result = NULL;
	d->op_call = NULL;
	pthread_mutex_unlock(&d->op_lock);
	if (call == NULL) {
		json_decref(res);
		return;
	}
	if (res == NULL) {
		ctl_call_reply(call, ctl_reply_error(CTL_ERR_INTERNAL, "operation ended without a result"));
		return;
	}
	const char *e = json_string_value(json_object_get(res, "error"));
	if (e != NULL) {
		ctl_call_reply(call, ctl_reply_error(CTL_ERR_FAILED, "%s", e));
		json_decref(res);
		return;
	}
	json_t *r = ctl_reply_ok();
	json_object_set_new(r, "phase", json_string(phase_name(migd_phase(d))));
	/* A dry run on a closed gate, a failed rehearsal: "not ready" (migctl exits 5). */
	if (json_is_false(json_object_get(res, "would_flip")) ||
	    json_is_false(json_object_get(res, "passed")))
		json_object_set_new(r, "ready", json_false());
	json_object_set_new(r, "result", res);
	ctl_call_reply(call, r);
}

static json_t *start_op(struct migd *d, struct ctl_call *call, const char *op)
{
	const char *err = NULL;
	if (d->migration == NULL)
		return ctl_reply_error(CTL_ERR_FAILED, "no migration is running");
	if (d->op_call != NULL)
		return ctl_reply_error(CTL_ERR_BUSY, "another operation is in progress");
	d->op_call = call;
	bool dry = json_is_true(json_object_get(call->req.body, "dry_run"));
	if (!migration_request(d->migration, op, d->conf, dry, op_finished, d, &err)) {
		d->op_call = NULL;
		return ctl_reply_error(CTL_ERR_FAILED, "cannot %s: %s", op, err);
	}
	log_event(LOG_LVL_NOTICE, "operator", "cmd=%s uid=%u pid=%d", op, (unsigned)call->peer.uid,
		  (int)call->peer.pid);
	return NULL; /* answered by migd_op_done() */
}

static json_t *cmd_freeze(void *ctx, struct ctl_call *call)
{
	return start_op(ctx, call, "freeze");
}

static json_t *cmd_unfreeze(void *ctx, struct ctl_call *call)
{
	return start_op(ctx, call, "unfreeze");
}

static json_t *cmd_cutover(void *ctx, struct ctl_call *call)
{
	return start_op(ctx, call, "cutover");
}

static json_t *cmd_rollback(void *ctx, struct ctl_call *call)
{
	return start_op(ctx, call, "rollback");
}

static json_t *cmd_complete(void *ctx, struct ctl_call *call)
{
	return start_op(ctx, call, "complete");
}

static json_t *cmd_abort(void *ctx, struct ctl_call *call)
{
	return start_op(ctx, call, "abort");
}

/* Not an operation of the coordinator (it may be backfilling) but answered the same way. */
static json_t *cmd_rehearse(void *ctx, struct ctl_call *call)
{
	struct migd *d = ctx;
	const char *err = NULL;
	if (d->migration == NULL)
		return ctl_reply_error(CTL_ERR_FAILED, "no migration is running");
	if (d->op_call != NULL)
		return ctl_reply_error(CTL_ERR_BUSY, "another operation is in progress");
	d->op_call = call;
	if (!migration_rehearse(d->migration, op_finished, d, &err)) {
		d->op_call = NULL;
		return ctl_reply_error(CTL_ERR_FAILED, "cannot rehearse: %s", err);
	}
	log_event(LOG_LVL_NOTICE, "operator", "cmd=rehearse uid=%u pid=%d",
		  (unsigned)call->peer.uid, (int)call->peer.pid);
	return NULL; /* answered by migd_op_done() */
}

static json_t *cmd_gate(void *ctx, struct ctl_call *call)
{
	struct migd *d = ctx;
	if (d->migration == NULL)
		return ctl_reply_error(CTL_ERR_FAILED, "no migration is running");
	json_t *g = migration_gate(d->migration, d->conf);
	json_t *r = ctl_reply_ok();
	json_object_update(r, g);
	json_decref(g);
	return r;
}

static json_t *cmd_phase(void *ctx, struct ctl_call *call)
{
	struct migd *d = ctx;
	enum phase p = migd_phase(d);
	json_t *r = ctl_reply_ok();
	json_object_set_new(r, "phase", json_string(phase_name(p)));
	json_object_set_new(r, "owner", json_string(owner_name(phase_owner(p))));
	json_t *next = json_array();
	for (int i = 0; i < PHASE__MAX; i++)
		if (phase_transition_legal(p, (enum phase)i))
			json_array_append_new(next, json_string(phase_name((enum phase)i)));
	json_object_set_new(r, "next", next);
	if (d->migration != NULL) {
		json_t *j = migration_journal(d->migration);
		json_object_set(r, "since", json_object_get(json_array_get(j, json_array_size(j) - 1), "at"));
		json_decref(j);
		json_object_set_new(r, "freeze", migration_freeze_report(d->migration));
	}
	return r;
}

static json_t *cmd_journal(void *ctx, struct ctl_call *call)
{
	struct migd *d = ctx;
	if (d->migration == NULL)
		return ctl_reply_error(CTL_ERR_FAILED, "no migration is running");
	json_t *r = ctl_reply_ok();
	json_object_set_new(r, "journal", migration_journal(d->migration));
	return r;
}

static json_t *cmd_help(void *ctx, struct ctl_call *call)
{
	json_t *r = ctl_reply_ok();
	json_object_set_new(r, "commands", ctl_table_to_json(migd_commands));
	return r;
}

/* Sorted by name; `help` lists them in this order. */
const struct ctl_cmd migd_commands[] = {
	{"abort", cmd_abort, true, "abort",
	 "before the flip: drop the slot and publication, give writes back, source stays owner"},
	{"backfill", cmd_backfill, false, "backfill [pause|resume|status]",
	 "backfill progress (chunks, rows, rate, ETA); pause/resume need an operator"},
	{"complete", cmd_complete, true, "complete",
	 "end the watch: drop slots and publications on both sides (the journal stays)"},
	{"config", cmd_config, false, "config", "show the effective configuration (secrets masked)"},
	{"cutover", cmd_cutover, true, "cutover [--dry-run]",
	 "flip ownership to the target if the gate is open; start reverse replication"},
	{"freeze", cmd_freeze, true, "freeze",
	 "freeze application writes (source and target), drain to the final position, list writers"},
	{"gate", cmd_gate, false, "gate",
	 "every cutover criterion with its value, threshold and verdict (exit 5 when closed)"},
	{"help", cmd_help, false, "help", "list the commands"},
	{"journal", cmd_journal, false, "journal", "every phase change: when, who, why, positions"},
	{"lag", cmd_lag, false, "lag", "replication lag in seconds and bytes, with positions"},
	{"phase", cmd_phase, false, "phase", "the phase, the owner and the legal next phases"},
	{"ping", cmd_ping, false, "ping", "check that the daemon answers"},
	{"rehearse", cmd_rehearse, true, "rehearse",
	 "prove the reverse path before the flip: checks, then a probe row target -> source "
	 "(exit 5 when a step fails)"},
	{"rollback", cmd_rollback, true, "rollback",
	 "freeze the target, drain reverse replication, flip ownership back to the source"},
	{"reload", cmd_reload, true, "reload",
	 "re-read the configuration file (same as SIGHUP); reports what needs a restart"},
	{"status", cmd_status, false, "status", "phase, owner, uptime, version and endpoints"},
	{"unfreeze", cmd_unfreeze, true, "unfreeze", "give the frozen write grants back (before the flip)"},
	{"validate", cmd_validate, true,
	 "validate [pause|resume] [--table T] [--kind K] [--since POS] [--wait]",
	 "check both sides (counts, checksums, invariants, queries, recent); --wait answers when "
	 "done, exit 5 on differences"},
	{"validation", cmd_validation, false, "validation",
	 "the current or last validation run: progress, positions, differing keys"},
	{NULL, NULL, false, NULL, NULL},
};
