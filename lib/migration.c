/*
 * migration: the coordinator and the run's shared state (see migration.h).
 */
#include "migration_int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "backfill.h"
#include "bftarget.h"
#include "log.h"
#include "pgcapture.h"
#include "pgfreeze.h"
#include "pgconn.h"
#include "pgmeta.h"
#include "pgsink.h"
#include "pgstore.h"
#include "pgstream.h"
#include "mycapture.h"
#include "mymeta.h"
#include "mysink.h"
#include "mystore.h"
#include "mystream.h"
#include "mytarget.h"
#include "spool.h"
#include "util.h"
#include "validate.h"



/* --- shared-state helpers -------------------------------------------------- */

void mig_activity(struct migration *m, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&m->lock);
	va_start(ap, fmt);
	vsnprintf(m->activity, sizeof(m->activity), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&m->lock);
}

void mig_report(struct migration *m, const struct err *err)
{
	pthread_mutex_lock(&m->lock);
	snprintf(m->last_error, sizeof(m->last_error), "%s", err->msg);
	pthread_mutex_unlock(&m->lock);
	log_error("migration:");
	log_lines(LOG_LVL_ERROR, err->msg);
}

void mig_clear_error(struct migration *m)
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

struct pos mig_src_pos(const struct migration *m, uint64_t v)
{
	return pos_from_scalar(&m->consistent, v);
}

const char *mig_src_text(const struct migration *m, uint64_t v, char *buf, size_t n)
{
	if (!mig_binlog_source(m))
		return pos_lsn_format(v, buf, n);
	struct pos p = mig_src_pos(m, v);
	return pos_format(&p, buf, n);
}

struct pos mig_tgt_pos(const struct migration *m, uint64_t v)
{
	return mig_my_target(m) ? pos_from_scalar(&m->rev_pos, v) : pos_from_lsn(v);
}

const char *mig_tgt_text(const struct migration *m, uint64_t v, char *buf, size_t n)
{
	struct pos p = mig_tgt_pos(m, v);
	return pos_format(&p, buf, n);
}

bool mig_my_ensure(struct myconn *c, const char *label, const struct migration *m,
		   struct err *err)
{
	if (!myconn_is_broken(c))
		return true;
	myconn_close(c);
	struct myconn_params p;
	if (!myconn_parse_dsn(m->src_dsn, m->src_password, &p, err))
		return false;
	bool ok = myconn_open(c, label, &p, err);
	myconn_params_free(&p);
	return ok;
}

bool mig_ensure(struct pgconn *c, const char *label, const char *ci, struct err *err)
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
			   const char *reason, uint64_t src_lsn, const struct pos *tgt)
{
	char at[32], l[POS_TEXT_MAX];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&m->lock);
	json_array_append_new(m->journal,
			      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "at", at, "from",
					phase_name(from), "to", phase_name(to), "actor", "migd",
					"reason", reason, "source_pos",
					mig_src_text(m, src_lsn, l, sizeof(l)), "owner_before",
					owner_name(phase_owner(from)), "owner_after",
					owner_name(phase_owner(to))));
	if (tgt != NULL && tgt->kind != POS_NONE) {
		char t[POS_TEXT_MAX];
		json_object_set_new(json_array_get(m->journal, json_array_size(m->journal) - 1),
				    "target_pos", json_string(pos_format(tgt, t, sizeof(t))));
	}
	pthread_mutex_unlock(&m->lock);
}

/*
 * The one place the phase changes: legal transitions only, journaled in
 * the target (with the source position it happened at) before the new
 * phase counts.  Retries until journaled or stop.
 */
bool mig_set_phase_at(struct migration *m, enum phase to, const char *reason, uint64_t src_lsn)
{
	enum phase from = migration_phase(m);
	if (!phase_transition_legal(from, to)) {
		log_error("BUG: illegal phase transition %s -> %s", phase_name(from), phase_name(to));
		return false;
	}
	struct err err;
	struct pos src = mig_src_pos(m, src_lsn);
	/* After the flip the target's position matters too: where it stood. */
	pthread_mutex_lock(&m->lock);
	uint64_t tl = m->target_lsn > m->rev_consistent ? m->target_lsn : m->rev_consistent;
	pthread_mutex_unlock(&m->lock);
	struct pos tgt = tl && (to >= PHASE_CUTOVER || from >= PHASE_CUTOVER) ? mig_tgt_pos(m, tl)
									       : pos_none();
	while (!m->stop) {
		if (store_ensure(&m->store, "target", &err) &&
		    store_set_phase(&m->store, m->name, from, to, "migd", reason, &src, &tgt, &err))
			break;
		mig_report(m, &err);
		store_close(&m->store);
		sleep_interruptible(RETRY_MS, &m->stop);
	}
	if (m->stop)
		return false;
	pthread_mutex_lock(&m->lock);
	m->phase = to;
	pthread_mutex_unlock(&m->lock);
	journal_append(m, from, to, reason, src_lsn, &tgt);
	char l[POS_TEXT_MAX];
	log_event(LOG_LVL_NOTICE, "phase", "from=%s to=%s owner=%s source_pos=%s reason=\"%s\"",
		  phase_name(from), phase_name(to), owner_name(phase_owner(to)),
		  mig_src_text(m, src_lsn, l, sizeof(l)), reason);
	return true;
}

bool mig_set_phase(struct migration *m, enum phase to, const char *reason)
{
	pthread_mutex_lock(&m->sp.lock);
	uint64_t at = m->sp.received_lsn;
	pthread_mutex_unlock(&m->sp.lock);
	if (at < pos_scalar(&m->consistent))
		at = pos_scalar(&m->consistent); /* nothing streamed yet: we stand at the capture */
	if (migration_phase(m) >= PHASE_CUTOVER && m->freeze_lsn)
		at = m->freeze_lsn; /* after the flip the source stands still at the freeze */
	return mig_set_phase_at(m, to, reason, at);
}

static bool load_journal(struct migration *m, struct err *err)
{
	json_t *j;
	if (!store_journal(&m->store, m->name, &j, err))
		return false;
	pthread_mutex_lock(&m->lock);
	json_decref(m->journal);
	m->journal = j;
	pthread_mutex_unlock(&m->lock);
	return true;
}

/* --- coordinator steps ------------------------------------------------------- */

/* Connect, load the tables, check the contract, load or create the migration row. */
static bool setup(struct migration *m, struct store_migration *row, struct err *err)
{
	mig_activity(m, "connecting and checking the schema contract");
	if (!store_ensure(&m->store, "target", err) || !store_init(&m->store, err))
		return false;
	tableset_free(&m->ts);
	if (mig_binlog_source(m)) {
		if (!mig_my_ensure(&m->mysrc, "source", m, err) ||
		    !mymeta_load_source(&m->mysrc, m->include, m->exclude, m->insert_only, &m->ts, err))
			return false;
	} else if (!mig_ensure(&m->src, "source", m->src_ci, err) ||
		   !pgmeta_load_source(&m->src, m->include, m->exclude, m->insert_only, &m->ts, err)) {
		return false;
	}
	if (!tableset_map_targets(&m->ts, m->target_schema, m->renames, err) ||
	    !tableset_map_columns(&m->ts, m->columns, err))
		return false;
	/* A PostgreSQL source's freeze keeps the grants it took in its own migd schema then. */
	if (mig_my_target(m) && !mig_binlog_source(m) && !pgstore_init(&m->src, err))
		return false;
	if (store_is_my(&m->store) ? !mytarget_check(&m->store.my, &m->ts, err)
				   : !pgmeta_check_target(&m->store.pg, m->name, &m->ts, err))
		return false;
	if (!store_create(&m->store, m->name, engine_name(m->src_engine), m->slot, m->pub, err) ||
	    !store_load(&m->store, m->name, row, err))
		return false;
	char *rt = NULL;
	if (!load_journal(m, err) || !store_last_rehearsal(&m->store, m->name, &rt, err))
		return false;
	json_t *reh = rt ? json_loads(rt, 0, NULL) : NULL;
	free(rt);
	/*
	 * The freeze position stays the source's final position through the
	 * flip and the watch: a cutover or rollback finished after a restart
	 * hands it to its hook and journals the source standing there.
	 */
	bool frozen_or_flipped = row->phase == PHASE_FROZEN || row->phase == PHASE_CUTOVER ||
				 row->phase == PHASE_WATCHING || row->phase == PHASE_ROLLING_BACK;
	pthread_mutex_lock(&m->lock);
	m->ntables = m->ts.n;
	m->phase = row->phase;
	m->consistent = row->consistent;
	m->freeze_lsn = 0;
	if (frozen_or_flipped)
		m->freeze_lsn = pos_scalar(&row->freeze_pos); /* LSN or binlog coordinate */
	json_decref(m->rehearsal);
	m->rehearsal = reh;
	pthread_mutex_unlock(&m->lock);
	return true;
}

/* Records the consistent position and enters captured (journaled). */
static bool captured(struct migration *m, const struct pos *p, const char *reason, struct err *err)
{
	if (!store_set_captured(&m->store, m->name, p, reason, err))
		return false;
	pthread_mutex_lock(&m->lock);
	m->phase = PHASE_CAPTURED;
	m->consistent = *p;
	pthread_mutex_unlock(&m->lock);
	journal_append(m, PHASE_INIT, PHASE_CAPTURED, reason, pos_scalar(p), NULL);
	char buf[POS_TEXT_MAX];
	log_event(LOG_LVL_NOTICE, "phase", "from=init to=captured consistent=%s",
		  pos_format(p, buf, sizeof(buf)));
	return true;
}

/* The snapshot the backfill reads in, once it has done its job (or failed). */
static void release_snapshot(struct migration *m)
{
	pgcapture_release(&m->cap);
	myconn_close(&m->mysnap);
}

/*
 * init -> captured for a binlog source: preconditions, then a consistent
 * snapshot held open on its own connection, at its exact binlog position.
 */
static bool capture_binlog(struct migration *m, struct err *err)
{
	json_t *info = NULL;
	struct pos p;
	mig_activity(m, "capturing the source binlog position");
	if (!mycapture_check(&m->mysrc, m->server_id, &info, err))
		return false;
	pthread_mutex_lock(&m->lock);
	json_decref(m->source_info);
	m->source_info = info;
	pthread_mutex_unlock(&m->lock);
	myconn_close(&m->mysnap);
	if (!mig_my_ensure(&m->mysnap, "source (snapshot)", m, err) ||
	    !mycapture_snapshot(&m->mysnap, &p, err))
		return false;
	if (!captured(m, &p, "consistent snapshot taken; its binlog position recorded", err)) {
		release_snapshot(m);
		return false;
	}
	return true;
}

/* init -> captured: publication, slot with exported snapshot, position journaled. */
static bool capture(struct migration *m, struct err *err)
{
	struct pgcapture_slot info;
	if (mig_binlog_source(m))
		return capture_binlog(m, err);
	mig_activity(m, "capturing the source position");
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
	if (!captured(m, &p, "logical slot created; consistent position recorded", err)) {
		release_snapshot(m);
		return false;
	}
	return true;
}

/* Where a binlog stream resumes: the newest of the capture and what the target holds. */
static struct pos binlog_resume_pos(struct migration *m, struct err *err, bool *ok)
{
	struct pos applied, from = m->consistent;
	*ok = store_applied(&m->store, m->name, &applied, NULL, err);
	if (*ok && applied.has_binlog && pos_compare(&applied, &from) == POS_GT)
		from = applied;
	return from;
}

/*
 * The binlog holds nothing back for us (there is no slot): the file the
 * stream resumes in must still be on the server, or changes are gone.
 */
static bool binlog_still_there(struct migration *m, struct err *err)
{
	bool ok, present = false;
	int64_t bytes;
	struct pos from = binlog_resume_pos(m, err, &ok);
	struct pos d = spool_durable_pos(m->spool);
	if (d.has_binlog && pos_compare(&d, &from) == POS_GT)
		from = d;
	if (!ok || !mig_my_ensure(&m->mysrc, "source", m, err) ||
	    !mycapture_retained(&m->mysrc, from.file, &bytes, &present, err))
		return false;
	if (!present && migration_phase(m) <= PHASE_FROZEN) {
		char b[POS_TEXT_MAX];
		err_set(err, "source: binlog %s is gone (purged: binlog_expire_logs_seconds or PURGE "
			     "BINARY LOGS); the changes since %s cannot be recovered (abort and start "
			     "the migration again)",
			from.file, pos_format(&from, b, sizeof(b)));
		return false;
	}
	return true;
}

/*
 * Opens the spool and proves nothing confirmed to the source is missing
 * from it or from the target (a lost state_dir would otherwise lose rows).
 */
static bool open_spool(struct migration *m, struct err *err)
{
	char *dir = xasprintf("%s/spool-%s", m->state_dir, m->name);
	char *lock = xasprintf("%s/lock", dir);
	char *e = NULL;
	struct spool_opts so = {.max_segment_bytes = (uint64_t)m->spool_segment};
	/* A spool that existed before is intact or recovers itself; a missing one may be lost. */
	bool existed = access(lock, F_OK) == 0;
	free(lock);
	mkdir(m->state_dir, 0750);
	bool ok = spool_open(dir, &so, &m->spool, &e);
	if (!ok) {
		err_set(err, "spool %s: %s", dir, e);
		free(e);
		free(dir);
		return false;
	}
	if (mig_binlog_source(m)) {
		if (!binlog_still_there(m, err))
			goto fail;
		free(dir);
		return true;
	}
	struct pgcapture_slot info;
	struct pos applied;
	if (!pgcapture_slot_info(&m->src, m->slot, &info, err) ||
	    !store_applied(&m->store, m->name, &applied, NULL, err))
		goto fail;
	if (!info.exists && migration_phase(m) <= PHASE_FROZEN) {
		err_set(err, "source: replication slot %s is gone; the changes since the captured "
			     "position cannot be recovered (abort and start the migration again)",
			m->slot);
		goto fail;
	}
	uint64_t have = m->consistent.lsn;
	if (applied.kind == POS_PG_LSN && applied.lsn > have)
		have = applied.lsn;
	/*
	 * The spool directory was there at the last run and is gone now: what
	 * the slot confirmed past the target's position lived only in it.
	 */
	if (!existed && migration_phase(m) > PHASE_CAPTURED && info.exists &&
	    info.confirmed_flush > have) {
		char a[32], b[32];
		err_set(err,
			"the spool %s is missing (was state_dir lost?): the slot confirmed %s but the "
			"target only holds up to %s, so changes may be missing; refusing to continue",
			dir, pos_lsn_format(info.confirmed_flush, a, sizeof(a)),
			pos_lsn_format(have, b, sizeof(b)));
		goto fail;
	}
	free(dir);
	return true;
fail:
	spool_close(m->spool); /* a retry opens it again */
	m->spool = NULL;
	free(dir);
	return false;
}

static void start_stream(struct migration *m)
{
	if (mig_binlog_source(m)) {
		struct err err;
		bool ok;
		struct pos from = binlog_resume_pos(m, &err, &ok);
		if (!ok)
			from = m->consistent; /* the spool's end, when newer, still wins */
		m->myopts = (struct mystream_opts){
			.dsn = m->src_dsn,
			.password = m->src_password,
			.server_id = m->server_id,
			.start = from,
			.ts = &m->ts,
			.spool = m->spool,
			.stop = &m->fwd_stop,
			.prog = &m->sp,
		};
		pthread_create(&m->stream_th, NULL, mystream_thread, &m->myopts);
		m->stream_started = true;
		return;
	}
	m->sopts = (struct pgstream_opts){
		.repl_conninfo = m->repl_ci,
		.slot = m->slot,
		.publication = m->pub,
		.start_lsn = m->consistent.lsn,
		.spool = m->spool,
		.stop = &m->fwd_stop,
		.prog = &m->sp,
		/* Fences (freeze drain, validation) wait on the confirmed position: keep it fresh. */
		.feedback_ms = 100,
	};
	pthread_create(&m->stream_th, NULL, pgstream_thread, &m->sopts);
	m->stream_started = true;
}

/* The applier's load_starts: keyless tables' copy positions from the ledger (apply thread). */
static bool load_copied_starts(void *arg, struct apply_table_start **out, int *n, struct err *err)
{
	struct migration *m = arg;
	struct bftarget *t = bftarget_new(m->tgt_engine, m->tgt_ci);
	struct bftarget_copied *v = NULL;
	int nv = 0;
	bool ok = t->ops->connect(t, err) && t->ops->copied(t, m->name, &v, &nv, err);
	t->ops->free(t);
	if (!ok)
		return false;
	*out = xcalloc((size_t)nv + 1, sizeof(**out));
	*n = 0;
	for (int i = 0; i < nv && ok; i++) {
		const char *perr;
		struct apply_table_start *s = &(*out)[(*n)++];
		s->table = xstrdup(v[i].table_name);
		ok = pos_parse(v[i].pos, &s->at, &perr);
		if (!ok)
			err_set(err, "migd.chunks: %s copied at '%s': %s", v[i].table_name,
				v[i].pos, perr);
	}
	bftarget_copied_free(v, nv);
	if (!ok) {
		apply_table_starts_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return ok;
}

static void start_apply(struct migration *m)
{
	m->sink = store_is_my(&m->store) ? mysink_new(m->tgt_ci, m->name, &m->ts)
					 : pgsink_new(m->tgt_ci, m->name, &m->ts);
	m->aopts = (struct apply_opts){
		.spool = m->spool,
		.sink = m->sink,
		.stop = &m->fwd_stop,
		.prog = &m->ap,
		.batch_txns = m->batch_txns,
		.batch_bytes = m->batch_bytes,
		.batch_delay_ms = m->batch_delay_ms,
		.latency = m->m_latency,
		.ts = &m->ts,
		.keylog_path = m->keylog_path,
		.freeze_lsn = &m->freeze_lsn,
		.source_like = &m->consistent,
		.load_starts = load_copied_starts,
		.load_starts_arg = m,
	};
	pthread_create(&m->apply_th, NULL, apply_thread, &m->aopts);
	m->apply_started = true;
}

void mig_start_forward(struct migration *m)
{
	m->fwd_stop = false;
	if (!m->stream_started)
		start_stream(m);
	if (!m->apply_started)
		start_apply(m);
}

/* Stops the slot reader and the applier (a batch in flight rolls back). */
void mig_stop_forward(struct migration *m)
{
	m->fwd_stop = true;
	if (m->stream_started)
		pthread_join(m->stream_th, NULL);
	if (m->apply_started)
		pthread_join(m->apply_th, NULL);
	m->stream_started = m->apply_started = false;
	if (m->sink)
		m->sink->ops->free(m->sink);
	m->sink = NULL;
}

/* --- reverse replication: target -> source, after the flip --------------------- */

/*
 * A MySQL/MariaDB target's binlog is decoded with its own tables' catalog
 * (types, collations, UUID/INET columns), read like a source's; each
 * table's sink is the forward table's source.
 */
static bool reverse_tables_from_my_target(struct migration *m, struct err *err)
{
	struct strbuf inc = {0}, ins = {0};
	for (int i = 0; i < m->ts.n; i++) {
		char *db, *name;
		mytarget_names(&m->ts.t[i], &db, &name);
		sb_addf(&inc, "%s%s.%s", i ? "," : "", db, name);
		if (m->ts.t[i].insert_only)
			sb_addf(&ins, "%s%s.%s", ins.len ? "," : "", db, name);
		free(db);
		free(name);
	}
	char *include = sb_take(&inc), *insert_only = sb_take(&ins);
	struct mig_tableset got = {0};
	bool ok = store_ensure(&m->store, "target", err) &&
		  mymeta_load_source(&m->store.my, include ? include : "", NULL, insert_only, &got,
				     err);
	free(include);
	free(insert_only);
	for (int i = 0; ok && i < m->ts.n; i++) {
		const struct mig_table *f = &m->ts.t[i];
		char *db, *name;
		mytarget_names(f, &db, &name);
		struct mig_table *r = tableset_find(&got, db, name);
		if (r == NULL)
			err_set(err, "target: table %s.%s is gone (reverse replication needs it)", db,
				name);
		else if (r->nkey != f->nkey)
			err_set(err, "target: table %s.%s has a different key than %s (reverse "
				     "replication needs the same)",
				db, name, f->qname);
		ok = r != NULL && r->nkey == f->nkey;
		if (ok) {
			free(r->tgt_qname);
			r->tgt_qname = xstrdup(f->qname);
			/* Mapped columns go back to their source names. */
			for (int c = 0; c < r->ncols; c++)
				for (int j = 0; j < f->ncols; j++)
					if (f->cols[j].tgt_name != NULL &&
					    strcasecmp(f->cols[j].tgt_name, r->cols[c].name) == 0)
						r->cols[c].tgt_name = xstrdup(f->cols[j].name);
		}
		free(db);
		free(name);
	}
	if (!ok) {
		tableset_free(&got);
		return false;
	}
	tableset_free(&m->rts);
	m->rts = got;
	return true;
}

bool mig_build_reverse_tables(struct migration *m, struct err *err)
{
	if (mig_my_target(m))
		return reverse_tables_from_my_target(m, err);
	tableset_free(&m->rts);
	m->rts.n = m->ts.n;
	m->rts.t = xcalloc((size_t)m->ts.n + 1, sizeof(*m->rts.t));
	for (int i = 0; i < m->ts.n; i++) {
		const struct mig_table *f = &m->ts.t[i];
		struct mig_table *r = &m->rts.t[i];
		*r = *f;
		/* The target's names are the reverse source's; the sink writes to the source's. */
		mytarget_names(f, &r->schema, &r->name);
		r->qname = xstrdup(f->tgt_qname);
		r->tgt_qname = xstrdup(f->qname);
		r->cols = xcalloc((size_t)f->ncols + 1, sizeof(*r->cols));
		for (int c = 0; c < f->ncols; c++) {
			r->cols[c] = f->cols[c];
			/* The target's column names are the reverse source's too. */
			r->cols[c].name = xstrdup(col_tgt_name(&f->cols[c]));
			r->cols[c].tgt_name = f->cols[c].tgt_name ? xstrdup(f->cols[c].name) : NULL;
			r->cols[c].type = xstrdup(f->cols[c].type);
			r->cols[c].src_type =
			    f->cols[c].src_type ? xstrdup(f->cols[c].src_type) : NULL;
		}
		r->key_idx = xcalloc((size_t)f->nkey + 1, sizeof(int));
		memcpy(r->key_idx, f->key_idx, (size_t)f->nkey * sizeof(int));
	}
	return true;
}

/*
 * The reverse sink's state store on the source: the migd schema of a
 * PostgreSQL source, the migd database of a MySQL/MariaDB one (created
 * through read_only: migd's user there has READ_ONLY ADMIN).
 */
static bool init_reverse_store(struct migration *m, struct err *err)
{
	bool ok;
	if (mig_binlog_source(m)) {
		struct myconn c = {0};
		ok = mig_my_ensure(&c, "source (reverse)", m, err) && mystore_init_sink(&c, err);
		myconn_close(&c);
		return ok;
	}
	struct pgconn src = {0};
	ok = pgconn_open(&src, "source", m->src_ci, err) && pgstore_init(&src, err);
	pgconn_close(&src);
	return ok;
}

/*
 * Starts the reverse pipeline from the reverse slot on the target; the
 * sink is the source (pgsink, or mysink for a MySQL/MariaDB source), its
 * migd schema or database holds the reverse position.  The target's
 * relation ids differ from the source's, so the reverse sink matches
 * relations by name, as every sink does.
 */
bool mig_start_reverse(struct migration *m, struct err *err)
{
	if (m->rev_started)
		return true;
	if (!init_reverse_store(m, err))
		return false;
	if (m->rspool == NULL) {
		char *dir = xasprintf("%s/spool-%s-reverse", m->state_dir, m->name);
		char *e = NULL;
		struct spool_opts so = {.max_segment_bytes = (uint64_t)m->spool_segment};
		bool ok = spool_open(dir, &so, &m->rspool, &e);
		if (!ok) {
			err_set(err, "spool %s: %s", dir, e);
			free(e);
		}
		free(dir);
		if (!ok)
			return false;
	}
	if (!mig_build_reverse_tables(m, err))
		return false;
	m->rev_stop = false;
	m->rsopts = (struct pgstream_opts){
		.repl_conninfo = m->tgt_repl_ci,
		.slot = m->rev_slot,
		.publication = m->rev_pub,
		.start_lsn = m->rev_consistent,
		.spool = m->rspool,
		.stop = &m->rev_stop,
		.prog = &m->rsp,
		/* Fences (freeze drain, validation) wait on the confirmed position: keep it fresh. */
		.feedback_ms = 100,
	};
	/* A MySQL/MariaDB target: its binlog from the position taken at the flip. */
	m->rmyopts = (struct mystream_opts){
		.side = "target",
		.dsn = m->tgt_ci,
		.server_id = mycapture_server_id(m->rev_slot),
		.start = m->rev_pos,
		.ts = &m->rts,
		.spool = m->rspool,
		.stop = &m->rev_stop,
		.prog = &m->rsp,
	};
	char *rname = xasprintf("%s:reverse", m->name);
	if (mig_binlog_source(m)) {
		char *dsn = myconn_dsn_with_password(m->src_dsn, m->src_password);
		m->rsink = mysink_new(dsn, rname, &m->rts);
		free(dsn);
	} else {
		m->rsink = pgsink_new(m->src_ci, rname, &m->rts);
	}
	free(rname);
	m->raopts = (struct apply_opts){
		.spool = m->rspool,
		.sink = m->rsink,
		.stop = &m->rev_stop,
		.prog = &m->rap,
		.batch_txns = m->batch_txns,
		.batch_bytes = m->batch_bytes,
		.batch_delay_ms = m->batch_delay_ms,
		.ts = &m->rts,
	};
	if (mig_my_target(m))
		pthread_create(&m->rstream_th, NULL, mystream_thread, &m->rmyopts);
	else
		pthread_create(&m->rstream_th, NULL, pgstream_thread, &m->rsopts);
	pthread_create(&m->rapply_th, NULL, apply_thread, &m->raopts);
	m->rev_started = true;
	char rp[POS_TEXT_MAX];
	log_event(LOG_LVL_NOTICE, "reverse_start", "slot=%s from=%s",
		  mig_my_target(m) ? "(binlog)" : m->rev_slot, pos_format(&m->rev_pos, rp, sizeof(rp)));
	return true;
}

void mig_stop_reverse(struct migration *m)
{
	if (!m->rev_started)
		return;
	m->rev_stop = true;
	pthread_join(m->rstream_th, NULL);
	pthread_join(m->rapply_th, NULL);
	m->rsink->ops->free(m->rsink);
	m->rsink = NULL;
	m->rev_started = false;
}

static void backfill_activity(void *arg, const char *text)
{
	mig_activity(arg, "%s", text);
}

static bool run_backfill(struct migration *m, struct err *err)
{
	char *dsn = mig_binlog_source(m) ? myconn_dsn_with_password(m->src_dsn, m->src_password)
					 : NULL;
	char cpos[POS_TEXT_MAX];
	struct backfill_opts o = {
		.name = m->name,
		.src_conninfo = dsn ? dsn : m->src_ci,
		.src_mariadb = dsn != NULL,
		.source_pos = pos_format(&m->consistent, cpos, sizeof(cpos)),
		.tgt_engine = m->tgt_engine,
		.tgt_conninfo = m->tgt_ci,
		.snapshot = m->cap.snapshot,
		.snapshot_pos = m->consistent,
		.repl_conninfo = dsn ? NULL : m->repl_ci,
		.parallel = m->parallel,
		.chunk_rows = m->chunk_rows,
		.rows_per_second = m->bf_rows_per_sec,
		.ts = &m->ts,
		.stop = &m->stop,
		.paused = &m->bf_paused,
		.max_attempts = 3,
		.defer_indexes = m->defer_indexes,
		.activity = backfill_activity,
		.activity_arg = m,
	};
	mig_activity(m, "planning backfill chunks");
	struct bfsource plan = {.mariadb = o.src_mariadb, .conninfo = o.src_conninfo};
	bool ok = bfsource_ensure(&plan, &m->stop, err) &&
		  backfill_plan(&plan, &m->store, &o, &m->bf, err);
	bfsource_close(&plan);
	/* Every chunk and every deferred index: apply (upserts on the key) may start after. */
	ok = ok && backfill_run(&o, &m->bf, err);
	free(dsn);
	return ok;
}

/*
 * Bytes a pipeline's sink is behind its source: the source's end (the newer
 * of what the stream last heard and what was polled: a walsender busy
 * decoding a backlog sends no keepalives) minus what is applied, which is
 * at least where the pipeline started and, when the applier is idle, what
 * the stream confirmed (the rest decodes to nothing for us).  Positions are
 * pos_scalar() values.  Across binlog files the scalars do not subtract:
 * files_behind is the bytes from the applied position to the end as the
 * monitor last summed them from SHOW BINARY LOGS (at most a poll old), or
 * -1; without it the lag counts the newer file's bytes (never 0).
 */
static int64_t pipeline_lag_bytes(uint64_t heard_end, uint64_t polled_end, uint64_t start,
				  const struct pos *applied, bool idle, uint64_t confirmed,
				  int64_t files_behind)
{
	uint64_t end = heard_end > polled_end ? heard_end : polled_end;
	uint64_t a = pos_scalar(applied);
	if (a < start)
		a = start;
	if (idle && confirmed > a)
		a = confirmed;
	if (end <= a)
		return 0;
	if (applied->kind != POS_PG_LSN && end >> 32 != a >> 32) {
		int64_t newer = (int64_t)(end & 0xffffffffu) + 1;
		return files_behind > newer ? files_behind : newer;
	}
	return (int64_t)(end - a);
}

int64_t mig_lag_bytes_locked(struct migration *m, bool *idle)
{
	*idle = m->ap.idle && m->apply_started;
	return pipeline_lag_bytes(m->sp.server_wal_end, m->source_lsn, pos_scalar(&m->consistent),
				  &m->ap.applied, *idle, m->sp.flushed_lsn, m->binlog_behind);
}

/*
 * A binlog source's end, and the binlog bytes it still holds from the file
 * the stream would resume in (nothing is retained for us: no slot).
 */
static void poll_binlog(struct migration *m, struct myconn *mc)
{
	struct err err;
	struct pos end;
	int64_t bytes = -1;
	bool present = false;
	pthread_mutex_lock(&m->ap.lock);
	struct pos from = m->ap.applied.has_binlog ? m->ap.applied : m->consistent;
	pthread_mutex_unlock(&m->ap.lock);
	if (!mig_my_ensure(mc, "source (monitor)", m, &err) ||
	    !mycapture_binlog_end(mc, &end, &err) ||
	    !mycapture_retained(mc, from.file, &bytes, &present, &err)) {
		myconn_close(mc);
		return;
	}
	pthread_mutex_lock(&m->lock);
	m->source_lsn = pos_scalar(&end);
	m->slot_retained = present ? bytes : -1;
	m->binlog_behind = present && bytes >= (int64_t)from.offset ? bytes - (int64_t)from.offset : -1;
	pthread_mutex_unlock(&m->lock);
}

/* A MySQL/MariaDB target's binlog end as pos_scalar(), for the reverse lag. */
static bool target_binlog_end(struct migration *m, struct myconn *c, uint64_t *end,
			      struct err *err)
{
	struct pos p;
	if ((c->db == NULL || myconn_is_broken(c)) &&
	    (myconn_close(c), !myconn_open_dsn(c, "target (monitor)", m->tgt_ci, err)))
		return false;
	if (!mycapture_binlog_end(c, &p, err)) {
		myconn_close(c);
		return false;
	}
	*end = pos_scalar(&p);
	return true;
}

/* Polls the slot (binlog) and the source's WAL end every second, in every phase. */
static void *monitor(void *arg)
{
	struct migration *m = arg;
	struct pgconn c = {0}, t = {0};
	struct pgcapture_slot info;
	struct err err;
	struct myconn mc = {0}, mt = {0};
	while (!m->stop) {
		if (mig_binlog_source(m)) {
			poll_binlog(m, &mc);
		} else if (mig_ensure(&c, "source (monitor)", m->src_ci, &err) &&
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
		uint64_t l;
		if (m->rev_started) {
			if (mig_my_target(m) ? target_binlog_end(m, &mt, &l, &err)
					     : mig_ensure(&t, "target (monitor)", m->tgt_ci, &err) &&
						   pgconn_current_lsn(&t, &l, &err)) {
				pthread_mutex_lock(&m->lock);
				m->target_lsn = l;
				pthread_mutex_unlock(&m->lock);
			} else {
				pgconn_close(&t);
			}
		}
		sleep_interruptible(SLOT_POLL_USEC / 1000, &m->stop);
	}
	pgconn_close(&c);
	pgconn_close(&t);
	myconn_close(&mc);
	myconn_close(&mt);
	return NULL;
}

static void *coordinator(void *arg)
{
	struct migration *m = arg;
	struct store_migration row;
	struct err err;

	/* Each step retries until it works or we are stopped; errors show in status. */
#define RETRY(step)                                                                                \
	while (!m->stop && !(step)) {                                                              \
		mig_report(m, &err);                                                                   \
		pgconn_close(&m->src);                                                             \
		store_close(&m->store);                                                             \
		sleep_interruptible(RETRY_MS, &m->stop);                                           \
	}                                                                                          \
	if (m->stop)                                                                               \
		goto out;                                                                          \
	mig_clear_error(m)

	RETRY(setup(m, &row, &err));
	mig_rehearse_leftovers(m);
	if (row.phase == PHASE_INIT) {
		RETRY(capture(m, &err));
	}
	if (phase_is_terminal(m->phase)) {
		mig_activity(m, "the migration is %s; nothing more to do", phase_name(m->phase));
		goto loop;
	}
	RETRY(open_spool(m, &err));
	pthread_create(&m->monitor_th, NULL, monitor, m);
	m->monitor_started = true;
	bool forward = m->phase <= PHASE_FROZEN;
	if (!forward) {
		/* Flipped (or flipping): the target owns the data; the way back is reverse. */
		m->rev_pos = row.reverse_pos;
		m->rev_consistent = pos_scalar(&row.reverse_pos);
		if (m->phase != PHASE_CUTOVER) {
			RETRY(mig_start_reverse(m, &err));
		}
		mig_activity(m, "target is the owner; reverse replication to the source");
	} else {
		start_stream(m);
		if (m->phase == PHASE_CAPTURED &&
		    !mig_set_phase(m, PHASE_BACKFILLING, "backfill starts"))
			goto out;
		if (m->phase == PHASE_BACKFILLING) {
			while (!m->stop && !run_backfill(m, &err)) {
				if (m->stop)
					break;
				mig_report(m, &err);
				sleep_interruptible(RETRY_MS, &m->stop);
			}
			if (m->stop)
				goto out;
			mig_clear_error(m);
			release_snapshot(m); /* the snapshot has done its job */
			if (!mig_set_phase(m, PHASE_CATCHING_UP, "every backfill chunk is done"))
				goto out;
		}
		release_snapshot(m);
		start_apply(m);
		mig_activity(m, m->phase == PHASE_FROZEN ? "frozen; applying the last changes"
							 : "applying changes");
	}
	/* Frozen before a restart: enforce again and verify (same freeze position). */
	enum mig_op resume = OP_NONE;
	/* Frozen (also when a cutover intent was journaled but the phase never moved). */
	if (m->phase == PHASE_FROZEN &&
	    (row.pending_op[0] == '\0' || strcmp(row.pending_op, "cutover") == 0))
		resume = OP_FREEZE;
	/* An operation journaled as intent but not finished: finish it now. */
	if (strcmp(row.pending_op, "freeze") == 0)
		resume = OP_FREEZE;
	else if (strcmp(row.pending_op, "unfreeze") == 0)
		resume = OP_UNFREEZE;
	else if (m->phase == PHASE_CUTOVER)
		resume = OP_CUTOVER;
	else if (m->phase == PHASE_ROLLING_BACK || strcmp(row.pending_op, "rollback") == 0)
		resume = OP_ROLLBACK; /* also an intent journaled before the phase moved */
	if (resume != OP_NONE) {
		log_event(LOG_LVL_NOTICE, "recover", "phase=%s pending=%s (finishing after a restart)",
			  phase_name(m->phase), row.pending_op[0] ? row.pending_op : "-");
		pthread_mutex_lock(&m->lock);
		m->op = resume;
		pthread_mutex_unlock(&m->lock);
	}
loop:
	while (!m->stop) {
		mig_run_op(m);
		bool idle;
		pthread_mutex_lock(&m->lock);
		int64_t lag = mig_lag_bytes_locked(m, &idle);
		enum phase ph = m->phase;
		pthread_mutex_unlock(&m->lock);
		if (ph == PHASE_CATCHING_UP && idle && lag < CAUGHT_UP_BYTES) {
			if (!mig_set_phase(m, PHASE_SYNCED, "applier caught up with the source"))
				break;
			mig_activity(m, "in sync; streaming changes");
		}
		sleep_interruptible(200, &m->stop);
	}
out:
#undef RETRY
	release_snapshot(m);
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
		"source positions as a number (PostgreSQL LSN in bytes; binlog file number * 2^32 "
		"+ offset)",
		kind_label);
	m->m_pos_received = metrics_childv(pos, "received", NULL);
	m->m_pos_flushed = metrics_childv(pos, "confirmed", NULL);
	m->m_pos_applied = metrics_childv(pos, "applied", NULL);
	m->m_rlag = gauge(reg, "migd_reverse_lag_bytes",
			  "target WAL not yet applied to the source by reverse replication");
	m->m_rchanges = counter(reg, "migd_reverse_applied_changes_total",
				"row changes reverse replication applied to the source");
	m->m_rfailed = counter(reg, "migd_reverse_failed_records_total",
			       "changes the source refused during reverse replication");
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
	/* Every pair of PostgreSQL and MariaDB; MySQL speaks MariaDB's protocol, untested here. */
	for (int side = 0; side < 2; side++) {
		const struct conf_endpoint *d = side ? &c->target : &c->source;
		struct myconn_params p;
		struct err e;
		if (d->engine == ENGINE_POSTGRESQL)
			continue;
		if (!myconn_parse_dsn(d->dsn, d->password, &p, &e)) {
			*err = xasprintf("[%s] dsn: %s", side ? "target" : "source", e.msg);
			return NULL;
		}
		myconn_params_free(&p);
	}
	struct migration *m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->bf.lock, NULL);
	pthread_mutex_init(&m->sp.lock, NULL);
	pthread_mutex_init(&m->ap.lock, NULL);
	pthread_mutex_init(&m->rsp.lock, NULL);
	pthread_mutex_init(&m->rap.lock, NULL);
	m->rap.applied = pos_none();
	m->name = xstrdup(c->name);
	m->state_dir = xstrdup(c->state_dir);
	m->slot = xasprintf("migd_%s", c->name);
	m->keylog_path = xasprintf("%s/touched-%s.log", c->state_dir, c->name);
	m->pub = xasprintf("migd_%s", c->name);
	m->include = xstrdup(c->tables_include);
	m->exclude = c->tables_exclude ? xstrdup(c->tables_exclude) : NULL;
	m->insert_only = c->tables_insert_only ? xstrdup(c->tables_insert_only) : NULL;
	m->target_schema = c->tables_target_schema ? xstrdup(c->tables_target_schema) : NULL;
	m->renames = c->tables_rename ? xstrdup(c->tables_rename) : NULL;
	m->columns = c->tables_columns ? xstrdup(c->tables_columns) : NULL;
	char *app = xasprintf("migd %s", c->name);
	m->src_ci = pgconn_conninfo(c->source.dsn, c->source.password, app, false);
	m->repl_ci = pgconn_conninfo(c->source.dsn, c->source.password, app, true);
	m->tgt_engine = (enum migd_engine)c->target.engine;
	if (m->tgt_engine == ENGINE_POSTGRESQL) {
		m->tgt_ci = pgconn_conninfo(c->target.dsn, c->target.password, app, false);
		m->tgt_repl_ci = pgconn_conninfo(c->target.dsn, c->target.password, app, true);
	} else {
		m->tgt_ci = myconn_dsn_with_password(c->target.dsn, c->target.password);
	}
	free(app);
	m->store.engine = m->tgt_engine;
	m->store.conninfo = m->tgt_ci;
	m->src_engine = (enum migd_engine)c->source.engine;
	m->src_dsn = xstrdup(c->source.dsn);
	m->src_password = c->source.password ? xstrdup(c->source.password) : NULL;
	m->server_id = mycapture_server_id(c->name);
	m->parallel = (int)c->backfill_parallel;
	m->chunk_rows = c->backfill_chunk_rows;
	m->bf_rows_per_sec = c->backfill_rows_per_second;
	m->defer_indexes = c->backfill_defer_indexes;
	m->batch_txns = c->apply_batch_txns;
	m->batch_bytes = c->apply_batch_bytes;
	m->batch_delay_ms = c->apply_batch_delay_ms;
	m->spool_segment = c->spool_segment_bytes;
	m->rows_per_sec = c->validation_rows_per_second;
	m->rechecks = c->validation_rechecks;
	m->recheck_wait_ms = c->validation_recheck_wait_ms;
	m->max_keys = c->validation_max_keys;
	m->freeze_roles = xstrdup(c->freeze_roles ? c->freeze_roles : "");
	m->rev_slot = xasprintf("migd_%s_reverse", c->name);
	m->rev_pub = xasprintf("migd_%s_reverse", c->name);
	m->rehearse_slot = xasprintf("migd_%s_rehearse", c->name);
	const char *crash_at = getenv("MIGD_CRASH_AT"); /* test-only hook, read once */
	m->crash_at = crash_at && crash_at[0] ? xstrdup(crash_at) : NULL;
	m->hook_flip = c->hook_flip ? xstrdup(c->hook_flip) : NULL;
	m->hook_rollback = c->hook_rollback ? xstrdup(c->hook_rollback) : NULL;
	m->hook_timeout_ms = c->hook_timeout_ms;
	mig_gate_limits(c, &m->limits);
	m->drain_timeout_ms = c->freeze_drain_timeout_ms;
	m->journal = json_array();
	pthread_mutex_init(&m->vrun.lock, NULL);
	m->phase = PHASE_INIT;
	m->consistent = pos_none();
	m->ap.applied = pos_none();
	m->slot_retained = -1;
	m->binlog_behind = -1;
	register_metrics(m, reg);
	snprintf(m->activity, sizeof(m->activity), "starting");
	pthread_create(&m->coord, NULL, coordinator, m);
	return m;
}

void migration_stop(struct migration *m)
{
	if (m == NULL)
		return;
	m->stop = true;
	m->fwd_stop = true;
	m->rev_stop = true;
	pthread_join(m->coord, NULL);
	if (m->rehearse_started)
		pthread_join(m->rehearse_th, NULL);
	if (m->validate_started)
		pthread_join(m->validate_th, NULL);
	json_decref(m->vrun.results);
	mig_free_checks(m);
	mig_stop_forward(m);
	if (m->monitor_started)
		pthread_join(m->monitor_th, NULL);
	mig_stop_reverse(m);
	spool_close(m->rspool);
	tableset_free(&m->rts);
	free(m->rev_slot);
	free(m->rev_pub);
	free(m->tgt_repl_ci);
	free(m->hook_flip);
	free(m->hook_rollback);
	json_decref(m->flip_report);
	spool_close(m->spool);
	pgconn_close(&m->src);
	store_close(&m->store);
	myconn_close(&m->mysrc);
	myconn_close(&m->mysnap);
	free(m->src_dsn);
	free(m->src_password);
	json_decref(m->source_info);
	tableset_free(&m->ts);
	free(m->name);
	free(m->state_dir);
	free(m->slot);
	free(m->pub);
	free(m->include);
	free(m->exclude);
	free(m->insert_only);
	free(m->target_schema);
	free(m->renames);
	free(m->columns);
	free(m->keylog_path);
	free(m->freeze_roles);
	json_decref(m->freeze_report);
	json_decref(m->reverse_ready);
	json_decref(m->rehearsal);
	free(m->rehearse_slot);
	free(m->crash_at);
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


void mig_numbers(struct migration *m, struct numbers *n)
{
	memset(n, 0, sizeof(*n));
	pthread_mutex_lock(&m->lock);
	pthread_mutex_lock(&m->sp.lock);
	pthread_mutex_lock(&m->ap.lock);
	n->phase = m->phase;
	n->lag_bytes = mig_lag_bytes_locked(m, &n->idle);
	/* -1: unknown (nothing applied yet), never a made-up 0. */
	if (!m->apply_started)
		n->lag_seconds = -1;
	else if (n->idle && n->lag_bytes < CAUGHT_UP_BYTES)
		n->lag_seconds = 0;
	else if (m->ap.applied_commit_us > 0)
		n->lag_seconds = (double)(now_wall_usec() - m->ap.applied_commit_us) / 1e6;
	else
		n->lag_seconds = -1;
	/* After the flip forward replication is over: its lag no longer applies. */
	if (m->phase >= PHASE_CUTOVER && !m->apply_started) {
		n->lag_bytes = 0;
		n->lag_seconds = -1;
	}
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
	bool rebuilding = m->bf.indexes_done < m->bf.indexes_total && m->bf.finished_usec == 0;
	pthread_mutex_unlock(&m->bf.lock);
	if (n->bf_total > 0 && n->bf_done == n->bf_total)
		n->bf_eta = rebuilding ? -1 : 0; /* index builds left: no honest estimate */
	else
		n->bf_eta = n->bf_rate > 0 ? (double)(n->bf_est - n->bf_rows) / n->bf_rate : -1;
}

/* Bytes the source is behind the target once reversed (0 when all is applied). */
static int64_t reverse_lag_bytes(struct migration *m, bool *idle)
{
	pthread_mutex_lock(&m->lock);
	uint64_t polled = m->target_lsn;
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_lock(&m->rsp.lock);
	uint64_t heard = m->rsp.server_wal_end, confirmed = m->rsp.flushed_lsn;
	pthread_mutex_unlock(&m->rsp.lock);
	pthread_mutex_lock(&m->rap.lock);
	struct pos applied = m->rap.applied;
	*idle = m->rap.idle && m->rev_started;
	pthread_mutex_unlock(&m->rap.lock);
	return pipeline_lag_bytes(heard, polled, m->rev_consistent, &applied, *idle, confirmed, -1);
}

static json_t *reverse_status(struct migration *m)
{
	char p1[POS_TEXT_MAX], p2[32], p3[32];
	bool idle;
	int64_t lag = reverse_lag_bytes(m, &idle);
	pthread_mutex_lock(&m->rsp.lock);
	json_t *st = json_pack("{s:b, s:s, s:s, s:I, s:s?}", "connected", m->rsp.connected,
			       "received_pos", pos_lsn_format(m->rsp.received_lsn, p2, sizeof(p2)),
			       "confirmed_pos", pos_lsn_format(m->rsp.flushed_lsn, p3, sizeof(p3)),
			       "transactions", (json_int_t)m->rsp.txns, "last_error",
			       m->rsp.last_error[0] ? m->rsp.last_error : NULL);
	pthread_mutex_unlock(&m->rsp.lock);
	pthread_mutex_lock(&m->rap.lock);
	json_t *o = json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:s?}", "running",
			      m->rev_started, "slot", m->rev_slot, "applied_pos",
			      pos_format(&m->rap.applied, p1, sizeof(p1)), "changes",
			      (json_int_t)m->rap.counts.changes, "failed_records",
			      (json_int_t)m->rap.counts.failed, "retry_queue_depth",
			      (json_int_t)m->rap.retry_depth, "lag_bytes", (json_int_t)lag,
			      "transactions", (json_int_t)m->rap.txns, "stream", st, "last_error",
			      m->rap.last_error[0] ? m->rap.last_error : NULL);
	pthread_mutex_unlock(&m->rap.lock);
	return o;
}

json_t *migration_status(struct migration *m)
{
	struct numbers n;
	char p1[POS_TEXT_MAX], p2[POS_TEXT_MAX], p3[POS_TEXT_MAX], p4[POS_TEXT_MAX];
	mig_numbers(m, &n);
	json_t *o = json_object();
	pthread_mutex_lock(&m->lock);
	json_object_set_new(o, "activity", json_string(m->activity));
	json_object_set_new(o, "last_error", m->last_error[0] ? json_string(m->last_error) : json_null());
	json_object_set_new(o, "tables", json_integer(m->ntables));
	if (mig_binlog_source(m))
		json_object_set_new(
			o, "capture",
			json_pack("{s:s, s:I, s:s, s:I, s:O?}", "source", "binlog", "server_id",
				  (json_int_t)m->server_id, "consistent_pos",
				  pos_format(&m->consistent, p1, sizeof(p1)), "binlog_retained_bytes",
				  (json_int_t)m->slot_retained, "source_info", m->source_info));
	else
		json_object_set_new(o, "capture",
				    json_pack("{s:s, s:s, s:s, s:I}", "slot", m->slot, "publication",
					      m->pub, "consistent_pos",
					      pos_format(&m->consistent, p1, sizeof(p1)),
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
	json_object_set_new(bf, "indexes_to_rebuild", json_integer(m->bf.indexes_total));
	json_object_set_new(bf, "indexes_rebuilt", json_integer(m->bf.indexes_done));
	pthread_mutex_unlock(&m->bf.lock);
	json_object_set_new(o, "backfill", bf);

	pthread_mutex_lock(&m->sp.lock);
	json_t *st = json_pack(
		"{s:b, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s?}", "connected", m->sp.connected,
		"received_pos", mig_src_text(m, m->sp.received_lsn, p1, sizeof(p1)), "server_wal_end",
		mig_src_text(m, m->sp.server_wal_end, p2, sizeof(p2)), "confirmed_pos",
		mig_src_text(m, m->sp.flushed_lsn, p3, sizeof(p3)), "transactions",
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
	if (m->rev_started || n.phase >= PHASE_CUTOVER)
		json_object_set_new(o, "reverse", reverse_status(m));
	pthread_mutex_lock(&m->lock);
	if (m->flip_report)
		json_object_set(o, "flip", m->flip_report);
	if (m->rehearsal)
		json_object_set_new(o, "rehearsal", json_deep_copy(m->rehearsal));
	pthread_mutex_unlock(&m->lock);
	return o;
}

char *migration_status_line(struct migration *m)
{
	struct numbers n;
	mig_numbers(m, &n);
	if (n.phase == PHASE_BACKFILLING) {
		pthread_mutex_lock(&m->bf.lock);
		int64_t it = m->bf.indexes_total, id = m->bf.indexes_done;
		pthread_mutex_unlock(&m->bf.lock);
		if (it > 0 && n.bf_done == n.bf_total)
			return xasprintf("phase=%s backfill=%lld/%lld chunks indexes=%lld/%lld",
					 phase_name(n.phase), (long long)n.bf_done,
					 (long long)n.bf_total, (long long)id, (long long)it);
		return xasprintf("phase=%s backfill=%lld/%lld chunks", phase_name(n.phase),
				 (long long)n.bf_done, (long long)n.bf_total);
	}
	if (n.lag_seconds < 0)
		return xasprintf("phase=%s lag=unknown", phase_name(n.phase));
	return xasprintf("phase=%s lag=%.1fs", phase_name(n.phase), n.lag_seconds);
}

void migration_update_metrics(struct migration *m)
{
	struct numbers n;
	mig_numbers(m, &n);
	bool ridle;
	metrics_set(m->m_rlag, (double)reverse_lag_bytes(m, &ridle));
	pthread_mutex_lock(&m->rap.lock);
	metrics_counter_set_abs(m->m_rchanges, (double)m->rap.counts.changes);
	metrics_counter_set_abs(m->m_rfailed, (double)m->rap.counts.failed);
	pthread_mutex_unlock(&m->rap.lock);
	mig_validation_metrics(m);
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
	metrics_set(m->m_pos_applied, (double)pos_scalar(&m->ap.applied));
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
