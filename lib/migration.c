/*
 * migration: the coordinator and the run's shared state (see migration.h).
 */
#include "migration.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apply.h"
#include "backfill.h"
#include "log.h"
#include "pgcapture.h"
#include "pgfreeze.h"
#include "pgconn.h"
#include "pgmeta.h"
#include "pgsink.h"
#include "pgstore.h"
#include "pgstream.h"
#include "spool.h"
#include "util.h"
#include "validate.h"

#define RETRY_MS         5000
#define CAUGHT_UP_BYTES  (1u << 20)
#define SLOT_POLL_USEC   1000000 /* also how fresh the source's WAL end is for lag */

enum mig_op { OP_NONE, OP_FREEZE, OP_UNFREEZE };

struct migration {
	/* settings, copied at start */
	char *name, *state_dir, *slot, *pub;
	char *include, *exclude, *insert_only; /* owned; [tables] lists */
	char *keylog_path;                     /* owned; state_dir/touched-<name>.log */
	char *src_ci, *tgt_ci, *repl_ci; /* owned; secret: never logged */
	int parallel;
	int64_t chunk_rows, batch_txns, batch_bytes, batch_delay_ms, spool_segment;

	pthread_t coord;
	volatile bool stop;
	volatile bool bf_paused;

	pthread_mutex_t lock; /* guards everything below that the loop reads */
	enum phase phase;
	char activity[160];
	char last_error[1024];
	int ntables;
	struct pos consistent;
	int64_t slot_retained; /* bytes of WAL the slot holds back; -1 unknown */
	uint64_t source_lsn;   /* pg_current_wal_lsn() at the last poll */
	int64_t slot_polled_usec;

	struct mig_tableset ts; /* coordinator-owned; read-only once threads start */
	struct pgconn src, tgt; /* coordinator's own connections */
	struct pgcapture cap;
	struct spool *spool;
	struct sink *sink;
	struct backfill_progress bf;
	struct stream_progress sp;
	struct apply_progress ap;
	struct pgstream_opts sopts;
	struct apply_opts aopts;
	pthread_t stream_th, apply_th, monitor_th;
	bool stream_started, apply_started, monitor_started;

	/* operations the coordinator runs for the operator, one at a time */
	enum mig_op op;           /* requested, not finished */
	bool op_running;
	void (*op_done)(void *arg, json_t *result);
	void *op_arg;
	char *freeze_roles;       /* owned */
	int64_t drain_timeout_ms;
	volatile uint64_t freeze_lsn; /* final source position of the freeze; 0 when not frozen */
	json_t *freeze_report;    /* owned; last freeze's enforcement, drain, inventory */
	json_t *journal;          /* owned; migd.journal rows, oldest first */
	json_t *reverse_ready;    /* owned; can the target host the reverse slot (checked at freeze) */
	/* latest validation result per kind (bit index), for the gate */
	struct vsummary {
		bool have;
		bool passed;
		int64_t mismatches;
		uint64_t fence_min;
	} vlast[5];
	void (*vdone)(void *);
	void *vdone_arg;

	/* validation: one run at a time */
	pthread_t validate_th;
	bool validate_started;
	volatile bool validate_paused;
	struct validate_run vrun;
	struct validate_opts vopts;
	char vtable[160];
	struct conf_check *checks; /* owned copy for the run */
	int nchecks;
	int64_t rows_per_sec, rechecks, recheck_wait_ms, max_keys;
	struct metric_family *f_vmism;
	struct metric *m_vtime, *m_vpos;

	/* metrics (borrowed from the registry) */
	struct metric *m_lag_s, *m_lag_b, *m_latency, *m_changes, *m_txns, *m_failed, *m_parked,
		*m_retry, *m_schema, *m_bf_rows, *m_bf_eta, *m_bf_rate, *m_slot, *m_spool,
		*m_pos_received, *m_pos_flushed, *m_pos_applied;
	struct metric_family *f_chunks;
};

/* --- shared-state helpers -------------------------------------------------- */

static void activity(struct migration *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void activity(struct migration *m, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&m->lock);
	va_start(ap, fmt);
	vsnprintf(m->activity, sizeof(m->activity), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&m->lock);
}

static void report(struct migration *m, const struct err *err)
{
	pthread_mutex_lock(&m->lock);
	snprintf(m->last_error, sizeof(m->last_error), "%s", err->msg);
	pthread_mutex_unlock(&m->lock);
	log_error("migration:");
	log_lines(LOG_LVL_ERROR, err->msg);
}

static void clear_error(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	m->last_error[0] = '\0';
	pthread_mutex_unlock(&m->lock);
}

enum phase migration_phase(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	enum phase p = m->phase;
	pthread_mutex_unlock(&m->lock);
	return p;
}

static bool ensure(struct pgconn *c, const char *label, const char *ci, struct err *err)
{
	if (c->conn != NULL && !pgconn_is_broken(c))
		return true;
	pgconn_close(c);
	return pgconn_open(c, label, ci, err);
}

/*
 * The one place the phase changes: legal transitions only, journaled in
 * the target before the new phase counts.  Retries until journaled or stop.
 */
static void journal_append(struct migration *m, enum phase from, enum phase to,
			   const char *reason, uint64_t src_lsn)
{
	char at[32], l[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&m->lock);
	json_array_append_new(m->journal,
			      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "at", at, "from",
					phase_name(from), "to", phase_name(to), "actor", "migd",
					"reason", reason, "source_pos",
					pos_lsn_format(src_lsn, l, sizeof(l)), "owner_before",
					owner_name(phase_owner(from)), "owner_after",
					owner_name(phase_owner(to))));
	pthread_mutex_unlock(&m->lock);
}

/*
 * The one place the phase changes: legal transitions only, journaled in
 * the target (with the source position it happened at) before the new
 * phase counts.  Retries until journaled or stop.
 */
static bool set_phase_at(struct migration *m, enum phase to, const char *reason, uint64_t src_lsn)
{
	enum phase from = migration_phase(m);
	if (!phase_transition_legal(from, to)) {
		log_error("BUG: illegal phase transition %s -> %s", phase_name(from), phase_name(to));
		return false;
	}
	struct err err;
	struct pos src = pos_from_lsn(src_lsn);
	while (!m->stop) {
		if (ensure(&m->tgt, "target", m->tgt_ci, &err) &&
		    pgstore_set_phase(&m->tgt, m->name, from, to, "migd", reason, &src, NULL, &err))
			break;
		report(m, &err);
		pgconn_close(&m->tgt);
		sleep_interruptible(RETRY_MS, &m->stop);
	}
	if (m->stop)
		return false;
	pthread_mutex_lock(&m->lock);
	m->phase = to;
	pthread_mutex_unlock(&m->lock);
	journal_append(m, from, to, reason, src_lsn);
	char l[32];
	log_event(LOG_LVL_NOTICE, "phase", "from=%s to=%s owner=%s source_pos=%s reason=\"%s\"",
		  phase_name(from), phase_name(to), owner_name(phase_owner(to)),
		  pos_lsn_format(src_lsn, l, sizeof(l)), reason);
	return true;
}

static bool set_phase(struct migration *m, enum phase to, const char *reason)
{
	pthread_mutex_lock(&m->sp.lock);
	uint64_t at = m->sp.received_lsn;
	pthread_mutex_unlock(&m->sp.lock);
	if (at < m->consistent.lsn)
		at = m->consistent.lsn; /* nothing streamed yet: we stand at the capture */
	return set_phase_at(m, to, reason, at);
}

static bool load_journal(struct migration *m, struct err *err)
{
	const char *p[] = {m->name};
	PGresult *r = pgconn_query(&m->tgt,
				   "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
				   "  coalesce(from_phase, ''), to_phase, actor, reason, "
				   "  coalesce(source_pos, ''), coalesce(owner_before, ''), "
				   "  coalesce(owner_after, '') "
				   "FROM migd.journal WHERE name = $1 ORDER BY id",
				   1, p, err);
	if (r == NULL)
		return false;
	json_t *j = json_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(
			j, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "at",
				     PQgetvalue(r, i, 0), "from", PQgetvalue(r, i, 1), "to",
				     PQgetvalue(r, i, 2), "actor", PQgetvalue(r, i, 3), "reason",
				     PQgetvalue(r, i, 4), "source_pos", PQgetvalue(r, i, 5),
				     "owner_before", PQgetvalue(r, i, 6), "owner_after",
				     PQgetvalue(r, i, 7)));
	PQclear(r);
	pthread_mutex_lock(&m->lock);
	json_decref(m->journal);
	m->journal = j;
	pthread_mutex_unlock(&m->lock);
	return true;
}

/* --- coordinator steps ------------------------------------------------------- */

/* Connect, load the tables, check the contract, load or create the migration row. */
static bool setup(struct migration *m, struct pgstore_migration *row, struct err *err)
{
	activity(m, "connecting and checking the schema contract");
	if (!ensure(&m->tgt, "target", m->tgt_ci, err) || !pgstore_init(&m->tgt, err) ||
	    !ensure(&m->src, "source", m->src_ci, err))
		return false;
	tableset_free(&m->ts);
	if (!pgmeta_load_source(&m->src, m->include, m->exclude, m->insert_only, &m->ts, err) ||
	    !pgmeta_check_target(&m->tgt, &m->ts, err))
		return false;
	if (!pgstore_create(&m->tgt, m->name, "postgresql", m->slot, m->pub, err) ||
	    !pgstore_load(&m->tgt, m->name, row, err))
		return false;
	if (!load_journal(m, err))
		return false;
	pthread_mutex_lock(&m->lock);
	m->ntables = m->ts.n;
	m->phase = row->phase;
	m->consistent = row->consistent;
	m->freeze_lsn = row->phase == PHASE_FROZEN && row->freeze_pos.kind == POS_PG_LSN
				? row->freeze_pos.lsn
				: 0;
	pthread_mutex_unlock(&m->lock);
	return true;
}

/* init -> captured: publication, slot with exported snapshot, position journaled. */
static bool capture(struct migration *m, struct err *err)
{
	struct pgcapture_slot info;
	activity(m, "capturing the source position");
	if (!pgcapture_check(&m->src, m->slot, err) ||
	    !pgcapture_publication(&m->src, m->pub, &m->ts, err) ||
	    !pgcapture_slot_info(&m->src, m->slot, &info, err))
		return false;
	/* A slot without a recorded position is from a crash before the record: redo it. */
	if (info.exists && !pgcapture_drop_slot(&m->src, m->slot, err))
		return false;
	if (!pgcapture_create_slot(m->repl_ci, m->slot, &m->cap, err))
		return false;
	struct pos p = pos_from_lsn(m->cap.consistent_lsn);
	if (!pgstore_set_captured(&m->tgt, m->name, &p, err)) {
		pgcapture_release(&m->cap);
		return false;
	}
	pthread_mutex_lock(&m->lock);
	m->phase = PHASE_CAPTURED;
	m->consistent = p;
	pthread_mutex_unlock(&m->lock);
	journal_append(m, PHASE_INIT, PHASE_CAPTURED,
		       "logical slot created; consistent position recorded", p.lsn);
	char buf[POS_TEXT_MAX];
	log_event(LOG_LVL_NOTICE, "phase", "from=init to=captured slot=%s consistent=%s", m->slot,
		  pos_format(&p, buf, sizeof(buf)));
	return true;
}

/*
 * Opens the spool and proves nothing confirmed to the source is missing
 * from it or from the target (a lost state_dir would otherwise lose rows).
 */
static bool open_spool(struct migration *m, struct err *err)
{
	char *dir = xasprintf("%s/spool-%s", m->state_dir, m->name);
	char *e = NULL;
	struct spool_opts so = {.max_segment_bytes = (uint64_t)m->spool_segment};
	mkdir(m->state_dir, 0750);
	bool ok = spool_open(dir, &so, &m->spool, &e);
	if (!ok) {
		err_set(err, "spool %s: %s", dir, e);
		free(e);
		free(dir);
		return false;
	}
	free(dir);
	struct pgcapture_slot info;
	struct pos applied;
	if (!pgcapture_slot_info(&m->src, m->slot, &info, err) ||
	    !pgstore_applied(&m->tgt, m->name, &applied, NULL, err))
		return false;
	if (!info.exists) {
		err_set(err, "source: replication slot %s is gone; the changes since %s cannot be "
			     "recovered (abort and start the migration again)",
			m->slot, "the captured position");
		return false;
	}
	struct pos d = spool_durable_pos(m->spool);
	uint64_t have = m->consistent.lsn;
	if (d.kind == POS_PG_LSN && d.lsn > have)
		have = d.lsn;
	if (applied.kind == POS_PG_LSN && applied.lsn > have)
		have = applied.lsn;
	if (info.confirmed_flush > have) {
		char a[32], b[32];
		err_set(err,
			"the slot confirmed %s but the spool and the target only hold up to %s: the "
			"spool in %s was lost; rows would be missing, refusing to continue",
			pos_lsn_format(info.confirmed_flush, a, sizeof(a)),
			pos_lsn_format(have, b, sizeof(b)), m->state_dir);
		return false;
	}
	return true;
}

static void start_stream(struct migration *m)
{
	m->sopts = (struct pgstream_opts){
		.repl_conninfo = m->repl_ci,
		.slot = m->slot,
		.publication = m->pub,
		.start_lsn = m->consistent.lsn,
		.spool = m->spool,
		.stop = &m->stop,
		.prog = &m->sp,
		.feedback_ms = 1000,
	};
	pthread_create(&m->stream_th, NULL, pgstream_thread, &m->sopts);
	m->stream_started = true;
}

static void start_apply(struct migration *m)
{
	m->sink = pgsink_new(m->tgt_ci, m->name, &m->ts);
	m->aopts = (struct apply_opts){
		.spool = m->spool,
		.sink = m->sink,
		.stop = &m->stop,
		.prog = &m->ap,
		.batch_txns = m->batch_txns,
		.batch_bytes = m->batch_bytes,
		.batch_delay_ms = m->batch_delay_ms,
		.latency = m->m_latency,
		.ts = &m->ts,
		.keylog_path = m->keylog_path,
		.freeze_lsn = &m->freeze_lsn,
	};
	pthread_create(&m->apply_th, NULL, apply_thread, &m->aopts);
	m->apply_started = true;
}

static bool run_backfill(struct migration *m, struct err *err)
{
	struct backfill_opts o = {
		.name = m->name,
		.src_conninfo = m->src_ci,
		.tgt_conninfo = m->tgt_ci,
		.snapshot = m->cap.snapshot,
		.parallel = m->parallel,
		.chunk_rows = m->chunk_rows,
		.ts = &m->ts,
		.stop = &m->stop,
		.paused = &m->bf_paused,
		.max_attempts = 3,
	};
	activity(m, "planning backfill chunks");
	if (!backfill_plan(&m->src, &m->tgt, &o, &m->bf, err))
		return false;
	activity(m, "copying %lld chunks with %d workers%s", (long long)m->bf.chunks_total,
		 m->parallel, m->cap.snapshot[0] ? " in the exported snapshot" : "");
	return backfill_run(&o, &m->bf, err);
}

/*
 * Bytes the target is behind the source's WAL (0 when everything is
 * applied).  The source end is the newer of what the stream last heard and
 * what the coordinator polled: a walsender busy decoding a backlog sends no
 * keepalives, and lag measured against its stale end would be a lie.
 */
static int64_t lag_bytes_locked(struct migration *m, bool *idle)
{
	uint64_t end = m->sp.server_wal_end > m->source_lsn ? m->sp.server_wal_end : m->source_lsn;
	uint64_t applied = m->ap.applied.kind == POS_PG_LSN ? m->ap.applied.lsn : 0;
	if (applied < m->consistent.lsn)
		applied = m->consistent.lsn; /* the backfill covers everything before it */
	*idle = m->ap.idle && m->apply_started;
	if (*idle && m->sp.flushed_lsn > applied)
		applied = m->sp.flushed_lsn; /* nothing pending: the rest decodes to nothing */
	return end > applied ? (int64_t)(end - applied) : 0;
}

/* Polls the slot and the source's WAL end every second, in every phase. */
static void *monitor(void *arg)
{
	struct migration *m = arg;
	struct pgconn c = {0};
	struct pgcapture_slot info;
	struct err err;
	while (!m->stop) {
		if (ensure(&c, "source (monitor)", m->src_ci, &err) &&
		    pgcapture_slot_info(&c, m->slot, &info, &err)) {
			pthread_mutex_lock(&m->lock);
			m->slot_retained = info.exists && info.current_lsn >= info.restart_lsn
						   ? (int64_t)(info.current_lsn - info.restart_lsn)
						   : -1;
			m->source_lsn = info.current_lsn;
			pthread_mutex_unlock(&m->lock);
		} else {
			pgconn_close(&c);
		}
		sleep_interruptible(SLOT_POLL_USEC / 1000, &m->stop);
	}
	pgconn_close(&c);
	return NULL;
}

/* --- freeze / unfreeze -------------------------------------------------------- */

static bool source_lsn_now(struct migration *m, uint64_t *lsn, struct err *err)
{
	char *v = pgconn_query_value(&m->src, "SELECT pg_current_wal_lsn()::text", 0, NULL, err);
	if (v == NULL)
		return false;
	bool ok = pos_lsn_parse(v, lsn);
	free(v);
	return ok;
}

/* Can the target host the reverse slot?  (wal_level, replication role, a free slot.) */
static json_t *reverse_preconditions(struct migration *m)
{
	struct err err;
	char *rs = xasprintf("migd_%s_reverse", m->name);
	bool ok = pgcapture_check(&m->tgt, rs, &err);
	free(rs);
	return json_pack("{s:b, s:s}", "ok", ok, "detail",
			 ok ? "the target can host the reverse slot (wal_level=logical, replication "
			      "role, free slot); rehearsal comes with the cutover work"
			    : err.msg);
}

static json_t *do_freeze(struct migration *m, struct err *err)
{
	json_t *src_rep = NULL, *tgt_rep = NULL;
	uint64_t final = 0;
	enum phase ph = migration_phase(m);
	if (ph != PHASE_SYNCED && ph != PHASE_FROZEN) {
		err_set(err, "freeze needs phase synced (now %s)", phase_name(ph));
		return NULL;
	}
	if (!ensure(&m->src, "source", m->src_ci, err) || !ensure(&m->tgt, "target", m->tgt_ci, err) ||
	    !pgstore_set_pending(&m->tgt, m->name, "freeze", NULL, err))
		return NULL;
	activity(m, "freezing writes");
	int64_t t0 = now_mono_usec();
	final = m->freeze_lsn; /* enforcing again after a restart keeps the freeze position */
	/* The candidate is protected too: no application write may land on it before the flip. */
	if (!pgfreeze_enforce(&m->src, "source", false, &m->tgt, m->name, m->freeze_roles, &m->ts,
			      &src_rep, err) ||
	    !pgfreeze_enforce(&m->tgt, "target", true, &m->tgt, m->name, m->freeze_roles, &m->ts,
			      &tgt_rep, err) ||
	    (final == 0 && !source_lsn_now(m, &final, err))) {
		json_decref(src_rep);
		json_decref(tgt_rep);
		return NULL;
	}
	struct pos fp = pos_from_lsn(final);
	char l[32], reason[160];
	if (!pgstore_set_pending(&m->tgt, m->name, "freeze", &fp, err)) {
		json_decref(src_rep);
		json_decref(tgt_rep);
		return NULL;
	}
	m->freeze_lsn = final;
	snprintf(reason, sizeof(reason), "writes frozen; final source position %s",
		 pos_lsn_format(final, l, sizeof(l)));
	if (ph == PHASE_SYNCED && !set_phase_at(m, PHASE_FROZEN, reason, final)) {
		json_decref(src_rep);
		json_decref(tgt_rep);
		err_set(err, "stopped");
		return NULL;
	}
	if (!pgstore_set_pending(&m->tgt, m->name, NULL, NULL, err)) {
		json_decref(src_rep);
		json_decref(tgt_rep);
		return NULL;
	}
	/* Drain: the target must reach the final source position. */
	activity(m, "frozen; draining to %s", l);
	int64_t deadline = now_mono_usec() + m->drain_timeout_ms * 1000;
	bool drained = false;
	while (!m->stop && !(drained = migration_applied_past(m, final)) && now_mono_usec() < deadline)
		sleep_interruptible(20, &m->stop);
	double secs = (double)(now_mono_usec() - t0) / 1e6;
	bool enforced = json_array_size(json_object_get(src_rep, "still_writable")) == 0 &&
			json_array_size(json_object_get(tgt_rep, "still_writable")) == 0;
	json_t *rep = json_pack("{s:s, s:b, s:b, s:f, s:o, s:o}", "final_position", l, "drained",
				drained, "enforced", enforced, "seconds", secs, "source", src_rep,
				"target", tgt_rep);
	json_t *rev = reverse_preconditions(m);
	pthread_mutex_lock(&m->lock);
	json_decref(m->freeze_report);
	m->freeze_report = json_incref(rep);
	json_decref(m->reverse_ready);
	m->reverse_ready = rev;
	pthread_mutex_unlock(&m->lock);
	activity(m, drained ? "frozen at %s; target has every change" : "frozen at %s; still draining",
		 l);
	return rep;
}

static json_t *do_unfreeze(struct migration *m, struct err *err)
{
	int rs = 0, rt = 0;
	if (migration_phase(m) != PHASE_FROZEN) {
		err_set(err, "unfreeze needs phase frozen (now %s)", phase_name(migration_phase(m)));
		return NULL;
	}
	if (!ensure(&m->src, "source", m->src_ci, err) || !ensure(&m->tgt, "target", m->tgt_ci, err) ||
	    !pgstore_set_pending(&m->tgt, m->name, "unfreeze", NULL, err) ||
	    !pgfreeze_lift(&m->src, "source", &m->tgt, m->name, &rs, err) ||
	    !pgfreeze_lift(&m->tgt, "target", &m->tgt, m->name, &rt, err))
		return NULL;
	m->freeze_lsn = 0;
	if (!set_phase(m, PHASE_SYNCED, "writes unfrozen by the operator (before the flip)"))
		return NULL;
	struct pos none = pos_none();
	if (!pgstore_set_pending(&m->tgt, m->name, NULL, &none, err))
		return NULL;
	pthread_mutex_lock(&m->lock);
	json_decref(m->freeze_report);
	m->freeze_report = NULL;
	pthread_mutex_unlock(&m->lock);
	activity(m, "in sync; streaming changes");
	return json_pack("{s:i, s:i}", "grants_restored_source", rs, "grants_restored_target", rt);
}

/* Runs a requested operation and hands its result to whoever asked. */
static void run_op(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	enum mig_op op = m->op;
	m->op_running = op != OP_NONE;
	pthread_mutex_unlock(&m->lock);
	if (op == OP_NONE)
		return;
	struct err err = {{0}};
	json_t *res = op == OP_FREEZE ? do_freeze(m, &err) : do_unfreeze(m, &err);
	if (res == NULL) {
		report(m, &err);
		res = json_pack("{s:s}", "error", err.msg);
	} else {
		clear_error(m);
	}
	pthread_mutex_lock(&m->lock);
	void (*done)(void *, json_t *) = m->op_done;
	void *arg = m->op_arg;
	m->op = OP_NONE;
	m->op_running = false;
	m->op_done = NULL;
	pthread_mutex_unlock(&m->lock);
	if (done)
		done(arg, res);
	else
		json_decref(res);
}

static void *coordinator(void *arg)
{
	struct migration *m = arg;
	struct pgstore_migration row;
	struct err err;

	/* Each step retries until it works or we are stopped; errors show in status. */
#define RETRY(step)                                                                                \
	while (!m->stop && !(step)) {                                                              \
		report(m, &err);                                                                   \
		pgconn_close(&m->src);                                                             \
		pgconn_close(&m->tgt);                                                             \
		sleep_interruptible(RETRY_MS, &m->stop);                                           \
	}                                                                                          \
	if (m->stop)                                                                               \
		goto out;                                                                          \
	clear_error(m)

	RETRY(setup(m, &row, &err));
	if (row.phase == PHASE_INIT) {
		RETRY(capture(m, &err));
	}
	if (m->phase != PHASE_CAPTURED && m->phase != PHASE_BACKFILLING &&
	    m->phase != PHASE_CATCHING_UP && m->phase != PHASE_SYNCED && m->phase != PHASE_FROZEN) {
		/* Later phases belong to the state machine that is not built yet. */
		activity(m, "phase %s: nothing to do for this version", phase_name(m->phase));
		goto out;
	}
	RETRY(open_spool(m, &err));
	pthread_create(&m->monitor_th, NULL, monitor, m);
	m->monitor_started = true;
	start_stream(m);

	if (m->phase == PHASE_CAPTURED && !set_phase(m, PHASE_BACKFILLING, "backfill starts"))
		goto out;
	if (m->phase == PHASE_BACKFILLING) {
		while (!m->stop && !run_backfill(m, &err)) {
			if (m->stop)
				break;
			report(m, &err);
			sleep_interruptible(RETRY_MS, &m->stop);
		}
		if (m->stop)
			goto out;
		clear_error(m);
		pgcapture_release(&m->cap); /* the snapshot has done its job */
		if (!set_phase(m, PHASE_CATCHING_UP, "every backfill chunk is done"))
			goto out;
	}
	pgcapture_release(&m->cap);
	start_apply(m);
	activity(m, m->phase == PHASE_FROZEN ? "frozen; applying the last changes"
					     : "applying changes");
	/* Frozen before a restart: enforce again and verify (same freeze position). */
	if (m->phase == PHASE_FROZEN && row.pending_op[0] == '\0') {
		pthread_mutex_lock(&m->lock);
		m->op = OP_FREEZE;
		pthread_mutex_unlock(&m->lock);
	}
	/* An operation journaled as intent but not finished: finish it now. */
	if (strcmp(row.pending_op, "freeze") == 0 || strcmp(row.pending_op, "unfreeze") == 0) {
		log_event(LOG_LVL_NOTICE, "recover", "op=%s (interrupted by a restart)", row.pending_op);
		pthread_mutex_lock(&m->lock);
		m->op = strcmp(row.pending_op, "freeze") == 0 ? OP_FREEZE : OP_UNFREEZE;
		pthread_mutex_unlock(&m->lock);
	}
	while (!m->stop) {
		run_op(m);
		bool idle;
		pthread_mutex_lock(&m->lock);
		int64_t lag = lag_bytes_locked(m, &idle);
		enum phase ph = m->phase;
		pthread_mutex_unlock(&m->lock);
		if (ph == PHASE_CATCHING_UP && idle && lag < CAUGHT_UP_BYTES) {
			if (!set_phase(m, PHASE_SYNCED, "applier caught up with the source"))
				break;
			activity(m, "in sync; streaming changes");
		}
		sleep_interruptible(200, &m->stop);
	}
out:
#undef RETRY
	pgcapture_release(&m->cap);
	return NULL;
}

/* --- public ------------------------------------------------------------------ */

static struct metric *gauge(struct metrics_registry *reg, const char *name, const char *help)
{
	return metrics_childv(metrics_gauge(reg, name, help, NULL), NULL);
}

static struct metric *counter(struct metrics_registry *reg, const char *name, const char *help)
{
	return metrics_childv(metrics_counter(reg, name, help, NULL), NULL);
}

static void register_metrics(struct migration *m, struct metrics_registry *reg)
{
	static const char *const state_label[] = {"state", NULL};
	static const char *const kind_label[] = {"kind", NULL};
	m->m_lag_s = gauge(reg, "migd_replication_lag_seconds",
			   "age of the oldest source change not yet applied (0 when caught up)");
	m->m_lag_b = gauge(reg, "migd_replication_lag_bytes",
			   "source WAL bytes not yet applied to the target");
	m->m_latency = metrics_childv(
		metrics_histogram(reg, "migd_apply_latency_seconds",
				  "time to commit one apply batch on the target", NULL, NULL, 0),
		NULL);
	m->m_changes = counter(reg, "migd_applied_changes_total", "row changes applied to the target");
	m->m_txns = counter(reg, "migd_applied_transactions_total",
			    "source transactions applied to the target");
	m->m_failed = counter(reg, "migd_failed_records_total",
			      "changes the target refused, kept in migd.failed_records");
	m->m_parked = counter(reg, "migd_parked_changes_total",
			      "changes held in migd.parked for tables with a schema error");
	m->m_retry = gauge(reg, "migd_retry_queue_depth",
			   "source transactions waiting to be re-applied after a failed batch");
	m->m_schema = counter(reg, "migd_schema_errors_total",
			      "tables whose apply stopped because their shape changed on the source");
	m->m_bf_rows = counter(reg, "migd_backfill_rows_total", "rows copied by the backfill");
	m->m_bf_rate = gauge(reg, "migd_backfill_rows_per_second", "backfill copy rate");
	m->m_bf_eta = gauge(reg, "migd_backfill_eta_seconds",
			    "estimated seconds until the backfill is done (-1 unknown)");
	m->f_chunks = metrics_gauge(reg, "migd_backfill_chunks", "backfill chunks by state",
				    state_label);
	m->m_slot = gauge(reg, "migd_slot_retained_bytes",
			  "WAL the replication slot keeps on the source (-1 unknown)");
	m->m_spool = gauge(reg, "migd_spool_bytes", "changes held durably in the local spool");
	struct metric_family *pos = metrics_gauge(
		reg, "migd_source_position",
		"source positions as a number (PostgreSQL LSN in bytes)", kind_label);
	m->m_pos_received = metrics_childv(pos, "received", NULL);
	m->m_pos_flushed = metrics_childv(pos, "confirmed", NULL);
	m->m_pos_applied = metrics_childv(pos, "applied", NULL);
	static const char *const vlabels[] = {"table", "kind", NULL};
	m->f_vmism = metrics_gauge(reg, "migd_validation_mismatches",
				   "differences found by the last validation run, per table and kind",
				   vlabels);
	m->m_vtime = gauge(reg, "migd_validation_last_run_timestamp_seconds",
			   "when the last validation run finished (Unix time; 0 never)");
	m->m_vpos = gauge(reg, "migd_validation_position",
			  "source position the last validation run holds for (LSN; 0 never)");
}

struct migration *migration_start(const struct migd_conf *c, struct metrics_registry *reg,
				  char **err)
{
	if (c->source.engine != ENGINE_POSTGRESQL || c->target.engine != ENGINE_POSTGRESQL) {
		*err = xasprintf("the %s -> %s pair is not built yet (PostgreSQL -> PostgreSQL is)",
				 engine_name((enum migd_engine)c->source.engine),
				 engine_name((enum migd_engine)c->target.engine));
		return NULL;
	}
	struct migration *m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->bf.lock, NULL);
	pthread_mutex_init(&m->sp.lock, NULL);
	pthread_mutex_init(&m->ap.lock, NULL);
	m->name = xstrdup(c->name);
	m->state_dir = xstrdup(c->state_dir);
	m->slot = xasprintf("migd_%s", c->name);
	m->keylog_path = xasprintf("%s/touched-%s.log", c->state_dir, c->name);
	m->pub = xasprintf("migd_%s", c->name);
	m->include = xstrdup(c->tables_include);
	m->exclude = c->tables_exclude ? xstrdup(c->tables_exclude) : NULL;
	m->insert_only = c->tables_insert_only ? xstrdup(c->tables_insert_only) : NULL;
	char *app = xasprintf("migd %s", c->name);
	m->src_ci = pgconn_conninfo(c->source.dsn, c->source.password, app, false);
	m->repl_ci = pgconn_conninfo(c->source.dsn, c->source.password, app, true);
	m->tgt_ci = pgconn_conninfo(c->target.dsn, c->target.password, app, false);
	free(app);
	m->parallel = (int)c->backfill_parallel;
	m->chunk_rows = c->backfill_chunk_rows;
	m->batch_txns = c->apply_batch_txns;
	m->batch_bytes = c->apply_batch_bytes;
	m->batch_delay_ms = c->apply_batch_delay_ms;
	m->spool_segment = c->spool_segment_bytes;
	m->rows_per_sec = c->validation_rows_per_second;
	m->rechecks = c->validation_rechecks;
	m->recheck_wait_ms = c->validation_recheck_wait_ms;
	m->max_keys = c->validation_max_keys;
	m->freeze_roles = xstrdup(c->freeze_roles ? c->freeze_roles : "");
	m->drain_timeout_ms = c->freeze_drain_timeout_ms;
	m->journal = json_array();
	pthread_mutex_init(&m->vrun.lock, NULL);
	m->phase = PHASE_INIT;
	m->consistent = pos_none();
	m->ap.applied = pos_none();
	m->slot_retained = -1;
	register_metrics(m, reg);
	snprintf(m->activity, sizeof(m->activity), "starting");
	pthread_create(&m->coord, NULL, coordinator, m);
	return m;
}

static void free_checks(struct migration *m);

void migration_stop(struct migration *m)
{
	if (m == NULL)
		return;
	m->stop = true;
	pthread_join(m->coord, NULL);
	if (m->validate_started)
		pthread_join(m->validate_th, NULL);
	json_decref(m->vrun.results);
	if (m->stream_started)
		pthread_join(m->stream_th, NULL);
	if (m->apply_started)
		pthread_join(m->apply_th, NULL);
	if (m->monitor_started)
		pthread_join(m->monitor_th, NULL);
	if (m->sink)
		m->sink->ops->free(m->sink);
	spool_close(m->spool);
	pgconn_close(&m->src);
	pgconn_close(&m->tgt);
	tableset_free(&m->ts);
	free(m->name);
	free(m->state_dir);
	free(m->slot);
	free(m->pub);
	free(m->include);
	free(m->exclude);
	free(m->insert_only);
	free(m->keylog_path);
	free(m->freeze_roles);
	json_decref(m->freeze_report);
	json_decref(m->reverse_ready);
	json_decref(m->journal);
	free(m->src_ci);
	free(m->repl_ci);
	free(m->tgt_ci);
	free(m);
}

bool migration_backfill_pause(struct migration *m, bool pause, const char **err)
{
	enum phase p = migration_phase(m);
	if (p != PHASE_BACKFILLING && p != PHASE_CAPTURED && p != PHASE_INIT) {
		*err = "the backfill is over";
		return false;
	}
	m->bf_paused = pause;
	pthread_mutex_lock(&m->bf.lock);
	m->bf.paused = pause;
	pthread_mutex_unlock(&m->bf.lock);
	log_event(LOG_LVL_NOTICE, "backfill", "action=%s", pause ? "pause" : "resume");
	return true;
}

/* Snapshot of the numbers status and metrics derive from. */
struct numbers {
	enum phase phase;
	int64_t lag_bytes;
	double lag_seconds;
	bool idle;
	int64_t bf_total, bf_done, bf_running, bf_failed, bf_rows, bf_est;
	double bf_rate, bf_eta;
	struct spool_stats spool;
	bool have_spool;
};

static void numbers(struct migration *m, struct numbers *n)
{
	memset(n, 0, sizeof(*n));
	pthread_mutex_lock(&m->lock);
	pthread_mutex_lock(&m->sp.lock);
	pthread_mutex_lock(&m->ap.lock);
	n->phase = m->phase;
	n->lag_bytes = lag_bytes_locked(m, &n->idle);
	/* -1: unknown (nothing applied yet), never a made-up 0. */
	if (!m->apply_started)
		n->lag_seconds = -1;
	else if (n->idle && n->lag_bytes < CAUGHT_UP_BYTES)
		n->lag_seconds = 0;
	else if (m->ap.applied_commit_us > 0)
		n->lag_seconds = (double)(now_wall_usec() - m->ap.applied_commit_us) / 1e6;
	else
		n->lag_seconds = -1;
	pthread_mutex_unlock(&m->ap.lock);
	pthread_mutex_unlock(&m->sp.lock);
	n->have_spool = m->spool != NULL;
	pthread_mutex_unlock(&m->lock);
	if (n->have_spool)
		spool_stats(m->spool, &n->spool);

	pthread_mutex_lock(&m->bf.lock);
	n->bf_total = m->bf.chunks_total;
	n->bf_done = m->bf.chunks_done;
	n->bf_running = m->bf.chunks_running;
	n->bf_failed = m->bf.chunks_failed;
	n->bf_rows = m->bf.rows_done;
	n->bf_est = m->bf.rows_total_est > n->bf_rows ? m->bf.rows_total_est : n->bf_rows;
	int64_t until = m->bf.finished_usec ? m->bf.finished_usec : now_mono_usec();
	double secs = m->bf.started_usec ? (double)(until - m->bf.started_usec) / 1e6 : 0;
	n->bf_rate = secs > 0.5 ? (double)(m->bf.rows_done - m->bf.rows_at_start) / secs : 0;
	pthread_mutex_unlock(&m->bf.lock);
	if (n->bf_total > 0 && n->bf_done == n->bf_total)
		n->bf_eta = 0;
	else
		n->bf_eta = n->bf_rate > 0 ? (double)(n->bf_est - n->bf_rows) / n->bf_rate : -1;
}

json_t *migration_status(struct migration *m)
{
	struct numbers n;
	char p1[POS_TEXT_MAX], p2[POS_TEXT_MAX], p3[POS_TEXT_MAX], p4[POS_TEXT_MAX];
	numbers(m, &n);
	json_t *o = json_object();
	pthread_mutex_lock(&m->lock);
	json_object_set_new(o, "activity", json_string(m->activity));
	json_object_set_new(o, "last_error", m->last_error[0] ? json_string(m->last_error) : json_null());
	json_object_set_new(o, "tables", json_integer(m->ntables));
	json_object_set_new(o, "capture",
			    json_pack("{s:s, s:s, s:s, s:I}", "slot", m->slot, "publication", m->pub,
				      "consistent_pos", pos_format(&m->consistent, p1, sizeof(p1)),
				      "slot_retained_bytes", (json_int_t)m->slot_retained));
	pthread_mutex_unlock(&m->lock);

	pthread_mutex_lock(&m->bf.lock);
	json_t *bf = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:b, s:s?}", "chunks_total",
			       (json_int_t)n.bf_total, "chunks_done", (json_int_t)n.bf_done,
			       "chunks_running", (json_int_t)n.bf_running, "chunks_failed",
			       (json_int_t)n.bf_failed, "rows_done", (json_int_t)n.bf_rows,
			       "rows_estimated", (json_int_t)n.bf_est, "rows_per_second", n.bf_rate,
			       "eta_seconds", n.bf_eta, "paused", m->bf.paused, "last_error",
			       m->bf.last_error[0] ? m->bf.last_error : NULL);
	pthread_mutex_unlock(&m->bf.lock);
	json_object_set_new(o, "backfill", bf);

	pthread_mutex_lock(&m->sp.lock);
	json_t *st = json_pack(
		"{s:b, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s?}", "connected", m->sp.connected,
		"received_pos", pos_lsn_format(m->sp.received_lsn, p1, sizeof(p1)), "server_wal_end",
		pos_lsn_format(m->sp.server_wal_end, p2, sizeof(p2)), "confirmed_pos",
		pos_lsn_format(m->sp.flushed_lsn, p3, sizeof(p3)), "transactions",
		(json_int_t)m->sp.txns, "reconnects", (json_int_t)m->sp.reconnects, "spool_bytes",
		(json_int_t)n.spool.bytes_on_disk, "spool_segments", (json_int_t)n.spool.segments,
		"last_error", m->sp.last_error[0] ? m->sp.last_error : NULL);
	pthread_mutex_unlock(&m->sp.lock);
	json_object_set_new(o, "stream", st);

	pthread_mutex_lock(&m->ap.lock);
	json_t *se = json_array();
	char *copy = xstrdup(m->ap.schema_errors), *save = NULL;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		json_array_append_new(se, json_string(l));
	free(copy);
	json_t *ap = json_pack(
		"{s:b, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:s?}", "running",
		m->apply_started, "connected", m->ap.connected, "applied_pos",
		pos_format(&m->ap.applied, p4, sizeof(p4)), "transactions", (json_int_t)m->ap.txns,
		"changes", (json_int_t)m->ap.counts.changes, "failed_records",
		(json_int_t)m->ap.counts.failed, "parked_changes", (json_int_t)m->ap.counts.parked,
		"retry_queue_depth", (json_int_t)m->ap.retry_depth, "batches",
		(json_int_t)m->ap.batches, "schema_errors", se, "last_error",
		m->ap.last_error[0] ? m->ap.last_error : NULL);
	pthread_mutex_unlock(&m->ap.lock);
	json_object_set_new(o, "apply", ap);
	json_object_set_new(o, "lag",
			    json_pack("{s:f, s:I}", "seconds", n.lag_seconds, "bytes",
				      (json_int_t)n.lag_bytes));
	return o;
}

char *migration_status_line(struct migration *m)
{
	struct numbers n;
	numbers(m, &n);
	if (n.phase == PHASE_BACKFILLING)
		return xasprintf("phase=%s backfill=%lld/%lld chunks", phase_name(n.phase),
				 (long long)n.bf_done, (long long)n.bf_total);
	if (n.lag_seconds < 0)
		return xasprintf("phase=%s lag=unknown", phase_name(n.phase));
	return xasprintf("phase=%s lag=%.1fs", phase_name(n.phase), n.lag_seconds);
}

static void validation_metrics(struct migration *m);

void migration_update_metrics(struct migration *m)
{
	struct numbers n;
	numbers(m, &n);
	validation_metrics(m);
	metrics_set(m->m_lag_s, n.lag_seconds < 0 ? NAN : n.lag_seconds);
	metrics_set(m->m_lag_b, (double)n.lag_bytes);
	metrics_counter_set_abs(m->m_bf_rows, (double)n.bf_rows);
	metrics_set(m->m_bf_rate, n.bf_rate);
	metrics_set(m->m_bf_eta, n.bf_eta);
	metrics_set(metrics_childv(m->f_chunks, "pending", NULL),
		    (double)(n.bf_total - n.bf_done - n.bf_running - n.bf_failed));
	metrics_set(metrics_childv(m->f_chunks, "running", NULL), (double)n.bf_running);
	metrics_set(metrics_childv(m->f_chunks, "done", NULL), (double)n.bf_done);
	metrics_set(metrics_childv(m->f_chunks, "failed", NULL), (double)n.bf_failed);
	metrics_set(m->m_spool, (double)n.spool.bytes_on_disk);

	pthread_mutex_lock(&m->lock);
	metrics_set(m->m_slot, (double)m->slot_retained);
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_lock(&m->sp.lock);
	metrics_set(m->m_pos_received, (double)m->sp.received_lsn);
	metrics_set(m->m_pos_flushed, (double)m->sp.flushed_lsn);
	pthread_mutex_unlock(&m->sp.lock);
	pthread_mutex_lock(&m->ap.lock);
	metrics_set(m->m_pos_applied,
		    m->ap.applied.kind == POS_PG_LSN ? (double)m->ap.applied.lsn : 0);
	metrics_counter_set_abs(m->m_changes, (double)m->ap.counts.changes);
	metrics_counter_set_abs(m->m_txns, (double)m->ap.txns);
	metrics_counter_set_abs(m->m_failed, (double)m->ap.counts.failed);
	metrics_counter_set_abs(m->m_parked, (double)m->ap.counts.parked);
	metrics_set(m->m_retry, (double)m->ap.retry_depth);
	int nschema = 0;
	for (const char *p = m->ap.schema_errors; *p; p++)
		nschema += *p == '\n';
	metrics_counter_set_abs(m->m_schema, (double)nschema);
	pthread_mutex_unlock(&m->ap.lock);
}

/* --- validation ------------------------------------------------------------- */

static void free_checks(struct migration *m)
{
	for (int i = 0; i < m->nchecks; i++) {
		free(m->checks[i].name);
		free(m->checks[i].source_sql);
		free(m->checks[i].target_sql);
	}
	free(m->checks);
	m->checks = NULL;
	m->nchecks = 0;
}

bool migration_applied_past(struct migration *m, uint64_t lsn)
{
	/*
	 * Read in this order: what the stream confirmed (everything committed
	 * before it is in the spool), then the spool's durable end, then what
	 * is applied.  Applied at or past the durable end means the spool holds
	 * nothing unapplied, so everything before the confirmed position is on
	 * the target.
	 */
	pthread_mutex_lock(&m->sp.lock);
	uint64_t confirmed = m->sp.flushed_lsn;
	pthread_mutex_unlock(&m->sp.lock);
	struct pos durable = m->spool ? spool_durable_pos(m->spool) : pos_none();
	pthread_mutex_lock(&m->ap.lock);
	struct pos applied = m->ap.applied;
	pthread_mutex_unlock(&m->ap.lock);
	uint64_t a = applied.kind == POS_PG_LSN ? applied.lsn : 0;
	if (a >= lsn)
		return true;
	uint64_t d = durable.kind == POS_PG_LSN ? durable.lsn : 0;
	return confirmed >= lsn && a >= d;
}

/* When a run ends: keep each kind's verdict for the gate, then tell the caller. */
static void validation_ended(void *arg)
{
	struct migration *m = arg;
	pthread_mutex_lock(&m->vrun.lock);
	bool done = strcmp(m->vrun.status, "done") == 0;
	for (unsigned k = 0; k < ARRAY_LEN(m->vlast); k++) {
		if (!(m->vrun.kinds & (1u << k)) || !done)
			continue;
		static const char *const kname[] = {"counts", "checksums", "invariant", "query",
						    "recent"};
		int64_t bad = 0;
		bool seen = false;
		uint64_t fmin = 0;
		size_t i;
		json_t *r;
		json_array_foreach(m->vrun.results, i, r)
		{
			if (strcmp(json_string_value(json_object_get(r, "kind")), kname[k]) != 0)
				continue;
			seen = true;
			bad += !json_is_true(json_object_get(r, "ok"));
			const char *ps = json_string_value(json_object_get(r, "position"));
			if (ps == NULL)
				ps = json_string_value(json_object_get(r, "position_min"));
			uint64_t l;
			if (ps && pos_lsn_parse(ps, &l) && (fmin == 0 || l < fmin))
				fmin = l;
		}
		if (!seen && k >= 2)
			continue; /* no [invariant]/[query] configured: nothing to record */
		if (fmin == 0)
			fmin = m->vrun.fence_min;
		m->vlast[k] = (struct vsummary){.have = true, .passed = bad == 0, .mismatches = bad,
						.fence_min = fmin};
	}
	pthread_mutex_unlock(&m->vrun.lock);
	if (m->vdone)
		m->vdone(m->vdone_arg);
}

static bool applied_past_cb(void *arg, uint64_t lsn)
{
	return migration_applied_past(arg, lsn);
}

bool migration_validate_start(struct migration *m, unsigned kinds, const char *table,
			      const struct conf_check *checks, int nchecks, const char *since,
			      void (*done)(void *), void *arg, const char **err)
{
	uint64_t since_lsn = m->consistent.lsn;
	if (since != NULL) {
		struct pos p;
		const char *perr;
		if (!pos_parse(since, &p, &perr) || p.kind != POS_PG_LSN) {
			*err = "--since wants a PostgreSQL position like 0/1A2B3C or pg:0/1A2B3C";
			return false;
		}
		since_lsn = p.lsn;
	}
	if (!m->apply_started) {
		*err = "validation needs the applier running (phase catching_up or later)";
		return false;
	}
	pthread_mutex_lock(&m->vrun.lock);
	bool running = m->validate_started && strcmp(m->vrun.status, "running") == 0;
	pthread_mutex_unlock(&m->vrun.lock);
	if (running) {
		*err = "a validation run is already in progress";
		return false;
	}
	if (m->validate_started)
		pthread_join(m->validate_th, NULL);
	snprintf(m->vtable, sizeof(m->vtable), "%s", table ? table : "");
	/* A private copy: a reload may change the checks during the run. */
	free_checks(m);
	m->checks = xcalloc((size_t)nchecks + 1, sizeof(*m->checks));
	for (int i = 0; i < nchecks; i++) {
		m->checks[i] = checks[i];
		m->checks[i].name = xstrdup(checks[i].name);
		m->checks[i].source_sql = checks[i].source_sql ? xstrdup(checks[i].source_sql) : NULL;
		m->checks[i].target_sql = checks[i].target_sql ? xstrdup(checks[i].target_sql) : NULL;
	}
	m->nchecks = nchecks;
	pthread_mutex_lock(&m->vrun.lock);
	json_decref(m->vrun.results);
	m->vrun.results = json_array();
	m->vrun.id = 0;
	m->vrun.kinds = kinds;
	snprintf(m->vrun.table, sizeof(m->vrun.table), "%s", m->vtable);
	snprintf(m->vrun.status, sizeof(m->vrun.status), "running");
	m->vrun.started_wall_us = now_wall_usec();
	m->vrun.started_mono_us = now_mono_usec();
	m->vrun.finished_wall_us = 0;
	m->vrun.work_total = m->vrun.work_done = m->vrun.rows_done = m->vrun.mismatches = 0;
	m->vrun.fence_min = m->vrun.fence_max = 0;
	m->vrun.error[0] = '\0';
	pthread_mutex_unlock(&m->vrun.lock);
	m->vopts = (struct validate_opts){
		.name = m->name,
		.src_conninfo = m->src_ci,
		.tgt_conninfo = m->tgt_ci,
		.ts = &m->ts,
		.kinds = kinds,
		.table = m->vtable,
		.rows_per_second = m->rows_per_sec,
		.rechecks = m->rechecks,
		.recheck_wait_ms = m->recheck_wait_ms,
		.max_keys = m->max_keys,
		.stop = &m->stop,
		.paused = &m->validate_paused,
		.applied_past = applied_past_cb,
		.arg = m,
		.done = validation_ended,
		.done_arg = m,
		.run = &m->vrun,
		.checks = m->checks,
		.nchecks = m->nchecks,
		.keylog_path = m->keylog_path,
		.since_lsn = since_lsn,
	};
	m->vdone = done;
	m->vdone_arg = arg;
	m->validate_started = true;
	pthread_create(&m->validate_th, NULL, validate_thread, &m->vopts);
	log_event(LOG_LVL_NOTICE, "validation", "status=started table=%s",
		  m->vtable[0] ? m->vtable : "*");
	return true;
}

json_t *migration_validation(struct migration *m)
{
	return m->validate_started ? validate_run_json(&m->vrun) : NULL;
}

bool migration_validate_pause(struct migration *m, bool pause, const char **err)
{
	if (!m->validate_started) {
		*err = "no validation run has been started";
		return false;
	}
	m->validate_paused = pause;
	log_event(LOG_LVL_NOTICE, "validation", "action=%s", pause ? "pause" : "resume");
	return true;
}

/* Called from migration_update_metrics(): the last finished run's figures. */
static void validation_metrics(struct migration *m)
{
	if (!m->validate_started)
		return;
	pthread_mutex_lock(&m->vrun.lock);
	if (strcmp(m->vrun.status, "running") != 0) {
		size_t i;
		json_t *r;
		json_array_foreach(m->vrun.results, i, r)
		{
			char t[200];
			snprintf(t, sizeof(t), "%s.%s", json_string_value(json_object_get(r, "schema")),
				 json_string_value(json_object_get(r, "table")));
			json_t *k = json_object_get(r, "differing_keys");
			double n = json_is_integer(k) ? (double)json_integer_value(k)
			           : json_is_true(json_object_get(r, "ok")) ? 0 : 1;
			metrics_set(metrics_childv(m->f_vmism, t,
						   json_string_value(json_object_get(r, "kind")), NULL),
				    n);
		}
		metrics_set(m->m_vtime, (double)m->vrun.finished_wall_us / 1e6);
		metrics_set(m->m_vpos, (double)m->vrun.fence_min);
	}
	pthread_mutex_unlock(&m->vrun.lock);
}

/* --- operations, journal, gate --------------------------------------------------- */

bool migration_request(struct migration *m, const char *op, void (*done)(void *, json_t *),
		       void *arg, const char **err)
{
	enum mig_op o = strcmp(op, "freeze") == 0 ? OP_FREEZE : OP_UNFREEZE;
	enum phase ph = migration_phase(m);
	if (o == OP_FREEZE && ph != PHASE_SYNCED && !(ph == PHASE_FROZEN && m->freeze_lsn)) {
		*err = ph == PHASE_FROZEN ? "writes are already frozen"
		       : ph < PHASE_SYNCED ? "freeze needs phase synced: the target is not caught up yet"
					   : "freeze is only possible before the flip";
		return false;
	}
	if (o == OP_UNFREEZE && ph != PHASE_FROZEN) {
		*err = "unfreeze needs phase frozen";
		return false;
	}
	pthread_mutex_lock(&m->lock);
	bool busy = m->op != OP_NONE;
	if (!busy) {
		m->op = o;
		m->op_done = done;
		m->op_arg = arg;
	}
	pthread_mutex_unlock(&m->lock);
	if (busy) {
		*err = "another operation is in progress";
		return false;
	}
	return true;
}

json_t *migration_journal(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	json_t *j = json_deep_copy(m->journal);
	pthread_mutex_unlock(&m->lock);
	return j;
}

static void criterion(json_t *arr, bool *ready, const char *name, bool ok, json_t *value,
		      const char *threshold, const char *detail)
{
	*ready &= ok;
	json_array_append_new(arr, json_pack("{s:s, s:b, s:o, s:s, s:s?}", "name", name, "ok", ok,
					     "value", value, "threshold", threshold, "detail", detail));
}

json_t *migration_gate(struct migration *m, const struct migd_conf *c)
{
	struct numbers n;
	numbers(m, &n);
	json_t *cr = json_array();
	bool ready = true;
	char buf[256], thr[64], l1[32], l2[32];
	uint64_t freeze = m->freeze_lsn;

	criterion(cr, &ready, "phase", n.phase == PHASE_FROZEN, json_string(phase_name(n.phase)),
		  "frozen", n.phase == PHASE_FROZEN ? NULL : "writes must be frozen (migctl freeze)");

	pthread_mutex_lock(&m->lock);
	json_t *fr = m->freeze_report ? json_incref(m->freeze_report) : NULL;
	json_t *rev = m->reverse_ready ? json_incref(m->reverse_ready) : NULL;
	int64_t retained = m->slot_retained;
	pthread_mutex_unlock(&m->lock);
	bool enforced = fr && json_is_true(json_object_get(fr, "enforced"));
	int nw = fr ? (int)(json_array_size(json_object_get(json_object_get(fr, "source"),
							  "still_writable")) +
			  json_array_size(json_object_get(json_object_get(fr, "target"),
							  "still_writable")))
		    : -1;
	criterion(cr, &ready, "freeze_enforced", enforced, json_integer(nw), "0 roles still writable",
		  fr == NULL	? "no freeze in this run of migd (freeze again to verify it)"
		  : enforced ? NULL
			     : "a frozen role can still write: see migctl freeze output");

	pthread_mutex_lock(&m->ap.lock);
	int64_t viol = m->ap.freeze_violations;
	snprintf(buf, sizeof(buf), "%s", m->ap.last_violation);
	pthread_mutex_unlock(&m->ap.lock);
	criterion(cr, &ready, "freeze_violations", viol == 0, json_integer(viol), "0",
		  viol ? buf : NULL);

	bool reached = freeze && migration_applied_past(m, freeze);
	snprintf(buf, sizeof(buf), "final source position %s", pos_lsn_format(freeze, l1, sizeof(l1)));
	criterion(cr, &ready, "final_position_reached", reached,
		  json_string(pos_lsn_format(freeze, l2, sizeof(l2))), "applied on the target",
		  reached ? buf : freeze ? "the target has not applied up to it yet" : "not frozen");

	snprintf(thr, sizeof(thr), "<= %.3fs", (double)c->gate_max_lag_ms / 1000);
	criterion(cr, &ready, "lag_seconds",
		  n.lag_seconds >= 0 && n.lag_seconds * 1000 <= (double)c->gate_max_lag_ms,
		  n.lag_seconds >= 0 ? json_real(n.lag_seconds) : json_null(), thr,
		  n.lag_seconds < 0 ? "unknown: nothing applied yet, or the applier is not running"
				    : NULL);
	snprintf(thr, sizeof(thr), "<= %lld", (long long)c->gate_max_lag_bytes);
	criterion(cr, &ready, "lag_bytes", n.lag_bytes <= c->gate_max_lag_bytes,
		  json_integer(n.lag_bytes), thr, NULL);

	pthread_mutex_lock(&m->ap.lock);
	int64_t failed = m->ap.counts.failed, retry = m->ap.retry_depth;
	int nschema = 0;
	for (const char *p = m->ap.schema_errors; *p; p++)
		nschema += *p == '\n';
	pthread_mutex_unlock(&m->ap.lock);
	snprintf(thr, sizeof(thr), "<= %lld", (long long)c->gate_max_failed_records);
	criterion(cr, &ready, "failed_records", failed <= c->gate_max_failed_records,
		  json_integer(failed), thr, failed ? "see migd.failed_records on the target" : NULL);
	snprintf(thr, sizeof(thr), "<= %lld", (long long)c->gate_max_retry_queue);
	criterion(cr, &ready, "retry_queue_depth", retry <= c->gate_max_retry_queue,
		  json_integer(retry), thr, NULL);
	criterion(cr, &ready, "schema_errors", nschema == 0, json_integer(nschema), "0",
		  nschema ? "a migrated table changed shape on the source (see status)" : NULL);

	/* Validation: each required kind passed at or after the freeze position. */
	static const char *const vk[] = {"counts", "checksums", "invariants", "queries", "recent"};
	char *req = xstrdup(c->gate_require_validation ? c->gate_require_validation : "");
	char *save = NULL;
	for (char *k = strtok_r(req, ", ", &save); k; k = strtok_r(NULL, ", ", &save)) {
		int idx = -1;
		for (int i = 0; i < 5; i++)
			if (strcmp(k, vk[i]) == 0)
				idx = i;
		char name[48];
		snprintf(name, sizeof(name), "validation_%s", k);
		if (idx < 0) {
			criterion(cr, &ready, name, false, json_null(), "a known kind",
				  "[gate] require_validation names an unknown kind");
			continue;
		}
		pthread_mutex_lock(&m->vrun.lock);
		struct vsummary v = m->vlast[idx];
		pthread_mutex_unlock(&m->vrun.lock);
		bool at_freeze = freeze && v.fence_min >= freeze;
		bool ok = v.have && v.passed && at_freeze;
		if (!v.have)
			snprintf(buf, sizeof(buf), "not run (migctl validate --kind %s --wait)", k);
		else if (!v.passed)
			snprintf(buf, sizeof(buf), "%lld difference(s) at %s", (long long)v.mismatches,
				 pos_lsn_format(v.fence_min, l1, sizeof(l1)));
		else if (!at_freeze)
			snprintf(buf, sizeof(buf), "passed at %s, before the freeze position %s: run it again",
				 pos_lsn_format(v.fence_min, l1, sizeof(l1)),
				 pos_lsn_format(freeze, l2, sizeof(l2)));
		else
			snprintf(buf, sizeof(buf), "passed at %s (freeze at %s)",
				 pos_lsn_format(v.fence_min, l1, sizeof(l1)),
				 pos_lsn_format(freeze, l2, sizeof(l2)));
		criterion(cr, &ready, name, ok,
			  v.have ? json_string(pos_lsn_format(v.fence_min, l1, sizeof(l1))) : json_null(),
			  "passed at or after the freeze position", buf);
	}
	free(req);

	bool rok = rev && json_is_true(json_object_get(rev, "ok"));
	criterion(cr, &ready, "reverse_path_ready", rok, json_boolean(rok), "the target can replicate back",
		  rev ? json_string_value(json_object_get(rev, "detail")) : "checked at freeze");
	snprintf(thr, sizeof(thr), "<= %lld", (long long)c->gate_max_slot_retained);
	criterion(cr, &ready, "slot_retention", retained >= 0 && retained <= c->gate_max_slot_retained,
		  json_integer(retained), thr, retained < 0 ? "unknown" : NULL);
	json_decref(fr);
	json_decref(rev);
	return json_pack("{s:b, s:s, s:o}", "ready", ready, "phase", phase_name(n.phase), "criteria",
			 cr);
}

json_t *migration_freeze_report(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	json_t *r = m->freeze_report ? json_deep_copy(m->freeze_report) : json_null();
	pthread_mutex_unlock(&m->lock);
	return r;
}
