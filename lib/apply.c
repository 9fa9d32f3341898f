/*
 * apply: spool -> sink in batches (see apply.h).
 *
 * A batch opens at the first transaction that needs applying and commits
 * when it holds batch_txns transactions or batch_bytes of changes, or once
 * it is batch_delay old: at the next transaction's end, or when the spool
 * has nothing more durable.  The
 * target transaction carries the end position of the batch's last source
 * transaction, so a crash anywhere replays exactly what is missing.
 *
 * The COMMIT is sent without waiting for the answer: the next batch is read
 * and sent while the target still works on the one before.  Its answer is
 * taken (confirm) before the next COMMIT goes out -- a batch never commits
 * unless the one before did -- and whenever the spool runs dry.  Only then
 * is the batch published: applied position, counters, touched keys, spool
 * segments released.  The touched-keys log holds a batch's keys after its
 * commit marker, so keys read while the batch before is unconfirmed wait in
 * memory (at most HELD_KEYS_MAX bytes: beyond that the answer is awaited).
 * Isolated batches (failed-record mode) are confirmed at once.
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keylog.h"
#include "log.h"
#include "util.h"

#define HELD_KEYS_MAX (1 << 20)

/* Where a relation's key columns are in its change tuples (for the key log). */
struct keymap {
	uint32_t relid;
	char *table; /* owned: schema.name */
	int nkey;
	int *idx; /* owned */
	uint64_t start; /* pos_scalar(): changes of transactions before it are skipped; 0: none */
};

struct applier {
	const struct apply_opts *o;
	struct keylog kl;
	struct keymap *maps; /* owned */
	int nmaps;
	struct apply_table_start *starts; /* owned; from load_starts */
	int nstarts;
	uint32_t *relbuf; /* owned; a truncate's relids without the copied tables */
	size_t relcap;
	struct spool_reader *rd;
	struct pos applied;
	/* the open batch */
	bool open;
	bool isolate;
	struct pos isolate_until; /* isolate batches until past this position */
	int64_t ntxns, nbytes, opened_usec;
	struct pos last_end;
	int64_t last_commit_us;
	/* the transaction being read */
	bool in_txn, skip_txn;
	struct pos txn_pos;
	uint32_t txn_xid;
	char txn_origin[64];
	bool txn_violation_seen; /* recorded for this transaction already */
	int64_t batch_violations;
	uint64_t counted_freeze; /* freeze position the committed count belongs to */
	/* the batch whose COMMIT is sent but not confirmed */
	bool committing;
	struct pos c_end;
	int64_t c_commit_us, c_ntxns, c_violations, c_sent_usec;
	int64_t lost_txns; /* of a batch in flight that did not commit: to re-apply */
	/* keys of the open batch while the batch before is unconfirmed: "table\0key\0"... */
	char *held; /* owned */
	size_t held_len, held_cap;
};

static void set_error(struct applier *a, const char *msg)
{
	pthread_mutex_lock(&a->o->prog->lock);
	snprintf(a->o->prog->last_error, sizeof(a->o->prog->last_error), "%s", msg);
	pthread_mutex_unlock(&a->o->prog->lock);
}

static size_t event_bytes(const struct change_event *ev)
{
	size_t n = 32;
	if (ev->kind == CHG_INSERT || ev->kind == CHG_UPDATE || ev->kind == CHG_DELETE) {
		for (int i = 0; i < ev->row.new_tuple.ncols; i++)
			n += ev->row.new_tuple.vals[i].len + 4;
		for (int i = 0; i < ev->row.old_tuple.ncols; i++)
			n += ev->row.old_tuple.vals[i].len + 4;
	}
	return n;
}

static bool reopen_reader(struct applier *a, struct err *err)
{
	char *e = NULL;
	spool_reader_close(a->rd);
	a->rd = NULL;
	if (!spool_reader_open(a->o->spool, &a->rd, &e)) {
		err_set(err, "spool: %s", e);
		free(e);
		return false;
	}
	a->in_txn = a->skip_txn = false;
	return true;
}

void apply_table_starts_free(struct apply_table_start *v, int n)
{
	for (int i = 0; v != NULL && i < n; i++)
		free(v[i].table);
	free(v);
}

static uint64_t table_start(const struct applier *a, const char *table)
{
	for (int i = 0; i < a->nstarts; i++)
		if (strcmp(a->starts[i].table, table) == 0)
			return pos_scalar(&a->starts[i].at);
	return 0;
}

static bool load_starts(struct applier *a, struct err *err)
{
	const struct apply_opts *o = a->o;
	if (o->load_starts == NULL)
		return true;
	struct apply_table_start *v = NULL;
	int n = 0;
	if (!o->load_starts(o->load_starts_arg, &v, &n, err))
		return false;
	apply_table_starts_free(a->starts, a->nstarts);
	a->starts = v;
	a->nstarts = n;
	for (int i = 0; i < a->nmaps; i++)
		a->maps[i].start = table_start(a, a->maps[i].table);
	return true;
}

/*
 * Whether relid's table was copied at a position after the transaction
 * being read: the copy holds this change already.  PostgreSQL: a
 * transaction is in a slot's snapshot when its commit LSN is before the
 * consistent point; binlog: when its GTID event starts before the
 * snapshot's coordinate.
 */
static bool in_copy(const struct applier *a, uint32_t relid)
{
	uint64_t at = pos_scalar(&a->txn_pos);
	for (int i = 0; i < a->nmaps; i++)
		if (a->maps[i].relid == relid)
			return a->maps[i].start != 0 && at != 0 && at < a->maps[i].start;
	return false;
}

/*
 * ev without what the copies hold: false when nothing is left (skip it);
 * a truncate keeps only its other tables (in *keep, relids in buf).
 */
static bool strip_copied(struct applier *a, const struct change_event *ev,
			 struct change_event *keep)
{
	*keep = *ev;
	if (a->nstarts == 0)
		return true;
	if (ev->kind == CHG_INSERT || ev->kind == CHG_UPDATE || ev->kind == CHG_DELETE)
		return !in_copy(a, ev->row.relid);
	if (ev->kind != CHG_TRUNCATE)
		return true;
	if (a->relcap < ev->truncate.nrelids) {
		a->relcap = ev->truncate.nrelids;
		a->relbuf = xrealloc(a->relbuf, a->relcap * sizeof(*a->relbuf));
	}
	uint16_t n = 0;
	for (uint16_t i = 0; i < ev->truncate.nrelids; i++)
		if (!in_copy(a, ev->truncate.relids[i]))
			a->relbuf[n++] = ev->truncate.relids[i];
	keep->truncate.nrelids = n;
	keep->truncate.relids = a->relbuf;
	return n > 0;
}

static void map_relation(struct applier *a, const struct change_relation *rel)
{
	struct keymap *m = NULL;
	for (int i = 0; i < a->nmaps && !m; i++)
		if (a->maps[i].relid == rel->relid)
			m = &a->maps[i];
	if (m == NULL) {
		a->maps = xrealloc(a->maps, (size_t)(a->nmaps + 1) * sizeof(*a->maps));
		m = &a->maps[a->nmaps++];
		memset(m, 0, sizeof(*m));
		m->relid = rel->relid;
	}
	free(m->table);
	free(m->idx);
	m->table = xasprintf("%s.%s", rel->schema, rel->name);
	m->start = table_start(a, m->table);
	struct mig_table *t = a->o->ts ? tableset_find(a->o->ts, rel->schema, rel->name) : NULL;
	m->nkey = t ? t->nkey : 0;
	m->idx = xcalloc((size_t)m->nkey + 1, sizeof(int));
	for (int k = 0; k < m->nkey; k++) {
		m->idx[k] = -1;
		for (int i = 0; i < rel->ncols; i++)
			if (strcmp(rel->cols[i].name, t->cols[t->key_idx[k]].name) == 0)
				m->idx[k] = i;
		if (m->idx[k] < 0)
			m->nkey = 0; /* the key is gone (schema change): nothing to log */
	}
}

static void log_key(struct applier *a, const struct keymap *m, const struct change_tuple *t)
{
	const char *vals[16];
	uint32_t lens[16];
	if (m->nkey == 0 || m->nkey > 16)
		return;
	for (int k = 0; k < m->nkey; k++) {
		const struct change_value *v = &t->vals[m->idx[k]];
		if (m->idx[k] >= t->ncols || v->kind != CHV_TEXT)
			return;
		vals[k] = v->data;
		lens[k] = v->len;
	}
	char *lit = keylog_array_literal(vals, lens, m->nkey);
	if (!a->committing) {
		keylog_key(&a->kl, m->table, lit);
	} else {
		size_t tl = strlen(m->table) + 1, kl = strlen(lit) + 1;
		if (a->held_len + tl + kl > a->held_cap) {
			a->held_cap = (a->held_len + tl + kl) * 2;
			a->held = xrealloc(a->held, a->held_cap);
		}
		memcpy(a->held + a->held_len, m->table, tl);
		memcpy(a->held + a->held_len + tl, lit, kl);
		a->held_len += tl + kl;
	}
	free(lit);
}

static void log_change_keys(struct applier *a, const struct change_event *ev)
{
	if (a->kl.fp == NULL || (ev->kind != CHG_INSERT && ev->kind != CHG_UPDATE &&
				 ev->kind != CHG_DELETE))
		return;
	for (int i = 0; i < a->nmaps; i++) {
		if (a->maps[i].relid != ev->row.relid)
			continue;
		if (ev->kind != CHG_INSERT && ev->row.old_kind)
			log_key(a, &a->maps[i], &ev->row.old_tuple);
		if (ev->kind != CHG_DELETE)
			log_key(a, &a->maps[i], &ev->row.new_tuple);
	}
}

/*
 * Whether the transaction that commits at final is in the target already.
 * A PostgreSQL commit LSN may equal the previous transaction's end LSN, so
 * only "before" counts there; a GTID final position is the state the
 * transaction completes, which equals the applied state once it is applied.
 */
static bool already_applied(const struct pos *final, const struct pos *applied)
{
	if (pos_is_none(applied))
		return false;
	enum pos_cmp c = pos_compare(final, applied);
	return c == POS_LT || (c == POS_EQ && final->kind == POS_MARIADB_GTID);
}

/*
 * The freeze position (a pos_scalar() value) in the source's own form, as
 * the sink records violations under it: the form of source_like when
 * given, else of the applied position.
 */
static struct pos freeze_pos(const struct applier *a, uint64_t f)
{
	return pos_from_scalar(a->o->source_like ? a->o->source_like : &a->applied, f);
}

/*
 * Whether the transaction being read committed after the freeze position f
 * (a pos_scalar() value).  PostgreSQL: its commit LSN is past f (f is the
 * WAL end read at the freeze, which a commit before it cannot pass).
 * Binlog: its GTID event starts at or after f (f is the binlog end read
 * once read_only was on; a group is written whole at commit).  A binlog
 * transaction without a coordinate (spooled by an older migd) cannot tell.
 */
static bool committed_after(const struct applier *a, uint64_t f)
{
	uint64_t at = pos_scalar(&a->txn_pos);
	if (a->txn_pos.kind == POS_PG_LSN)
		return at > f;
	return at != 0 && at >= f;
}

/*
 * A change committed after the freeze position is a freeze violation: it is
 * applied (the source is the truth) and recorded in the same target
 * transaction, once per source transaction, so the count survives crashes.
 */
static bool check_violation(struct applier *a, const struct change_event *ev, struct err *err)
{
	uint64_t f = a->o->freeze_lsn ? *a->o->freeze_lsn : 0;
	if (f == 0 || a->txn_violation_seen || !committed_after(a, f))
		return true;
	a->txn_violation_seen = true;
	const char *table = "?";
	uint32_t relid = ev->kind == CHG_TRUNCATE ? (ev->truncate.nrelids ? ev->truncate.relids[0] : 0)
						  : ev->row.relid;
	for (int i = 0; i < a->nmaps; i++)
		if (a->maps[i].relid == relid)
			table = a->maps[i].table;
	struct pos fp = freeze_pos(a, f);
	char l[POS_TEXT_MAX];
	if (a->txn_pos.kind == POS_PG_LSN)
		pos_lsn_format(a->txn_pos.lsn, l, sizeof(l));
	else
		pos_format(&a->txn_pos, l, sizeof(l));
	log_event(LOG_LVL_ERROR, "freeze_violation", "xid=%u commit=%s table=%s origin=%s",
		  a->txn_xid, l, table, a->txn_origin[0] ? a->txn_origin : "local");
	pthread_mutex_lock(&a->o->prog->lock);
	snprintf(a->o->prog->last_violation, sizeof(a->o->prog->last_violation),
		 "xid %u committed at %s changed %s (origin %s)", a->txn_xid, l, table,
		 a->txn_origin[0] ? a->txn_origin : "local");
	pthread_mutex_unlock(&a->o->prog->lock);
	a->batch_violations++;
	return a->o->sink->ops->violation(a->o->sink, &fp, &a->txn_pos, a->txn_xid,
					  a->txn_origin[0] ? a->txn_origin : NULL, table, err);
}

/* The committed violation count follows the current freeze position. */
static void refresh_violations(struct applier *a)
{
	uint64_t f = a->o->freeze_lsn ? *a->o->freeze_lsn : 0;
	if (f == a->counted_freeze)
		return;
	int64_t n = 0;
	struct err err;
	struct pos fp = freeze_pos(a, f);
	/* (The sink takes no plain query while a batch is open or in flight.) */
	if (f != 0 && !a->open && !a->committing &&
	    !a->o->sink->ops->violations(a->o->sink, &fp, &n, &err)) {
		log_warn("apply: counting freeze violations: %s", err.msg);
		return;
	}
	a->counted_freeze = f;
	pthread_mutex_lock(&a->o->prog->lock);
	a->o->prog->freeze_violations = n;
	pthread_mutex_unlock(&a->o->prog->lock);
}

/* A batch the target committed: publish it and let the spool go. */
static void batch_done(struct applier *a, const struct pos *end, int64_t commit_us, int64_t ntxns,
		       int64_t violations, int64_t latency_usec)
{
	struct sink *s = a->o->sink;
	metrics_observe(a->o->latency, (double)latency_usec / 1e6);
	keylog_commit(&a->kl, end);
	a->applied = *end;
	if (a->isolate && pos_compare(&a->applied, &a->isolate_until) != POS_LT)
		a->isolate = false;
	pthread_mutex_lock(&a->o->prog->lock);
	a->o->prog->applied = a->applied;
	a->o->prog->applied_commit_us = commit_us;
	a->o->prog->txns += ntxns;
	a->o->prog->batches++;
	a->o->prog->counts = s->counts;
	a->o->prog->freeze_violations += violations;
	a->o->prog->retry_depth = a->isolate ? a->o->prog->retry_depth : 0;
	pthread_mutex_unlock(&a->o->prog->lock);
	char *e = NULL;
	if (!spool_release(a->o->spool, &a->applied, NULL, &e)) {
		log_warn("apply: releasing spool segments: %s", e);
		free(e);
	}
}

/*
 * Takes the answer to the batch in flight, if any, and publishes it; the
 * open batch's held keys follow its commit marker.  False if it did not
 * commit (err set; the open batch, if any, must be rolled back too).
 */
static bool confirm_batch(struct applier *a, struct err *err)
{
	if (!a->committing)
		return true;
	a->committing = false;
	int64_t answered = 0;
	if (!a->o->sink->ops->confirm(a->o->sink, &answered, err)) {
		a->lost_txns += a->c_ntxns;
		return false;
	}
	batch_done(a, &a->c_end, a->c_commit_us, a->c_ntxns, a->c_violations,
		   answered - a->c_sent_usec);
	for (size_t off = 0; off < a->held_len;) {
		const char *table = a->held + off, *key = table + strlen(table) + 1;
		keylog_key(&a->kl, table, key);
		off = (size_t)(key - a->held) + strlen(key) + 1;
	}
	a->held_len = 0;
	return true;
}

static bool commit_batch(struct applier *a, struct err *err)
{
	struct sink *s = a->o->sink;
	/* Never past a batch that might still fail: its changes come first. */
	if (!confirm_batch(a, err))
		return false;
	int64_t t0 = now_mono_usec();
	bool wait = a->isolate; /* each isolated transaction is settled before the next */
	if (!s->ops->commit(s, &a->last_end, a->last_commit_us, a->ntxns, wait, err))
		return false;
	a->open = false;
	if (wait) {
		batch_done(a, &a->last_end, a->last_commit_us, a->ntxns, a->batch_violations,
			   now_mono_usec() - t0);
		return true;
	}
	a->committing = true;
	a->c_end = a->last_end;
	a->c_commit_us = a->last_commit_us;
	a->c_ntxns = a->ntxns;
	a->c_violations = a->batch_violations;
	a->c_sent_usec = t0;
	return true;
}

/* One event; false on a sink or spool failure (err set). */
static bool handle(struct applier *a, const struct change_event *ev, struct err *err)
{
	struct sink *s = a->o->sink;
	switch (ev->kind) {
	case CHG_RELATION:
		map_relation(a, &ev->rel);
		return s->ops->relation(s, &ev->rel, err);
	case CHG_BEGIN:
		a->in_txn = true;
		a->txn_pos = ev->begin.final_pos;
		a->txn_xid = ev->xid;
		a->txn_origin[0] = '\0';
		a->txn_violation_seen = false;
		/* Already in the target: its commit is before the applied end. */
		a->skip_txn = already_applied(&ev->begin.final_pos, &a->applied);
		if (a->skip_txn || a->open)
			return true;
		a->ntxns = a->nbytes = 0;
		a->batch_violations = 0;
		a->opened_usec = now_mono_usec();
		if (!s->ops->begin(s, a->isolate, err))
			return false;
		a->open = true;
		return true;
	case CHG_COMMIT:
		a->in_txn = false;
		if (a->skip_txn)
			return true;
		a->ntxns++;
		a->last_end = ev->commit.end_pos;
		a->last_commit_us = ev->commit.commit_time_us;
		/* Age too: a steady trickle never leaves the spool dry for batch_delay. */
		if (a->ntxns >= a->o->batch_txns || a->nbytes >= a->o->batch_bytes ||
		    (a->isolate && a->ntxns >= 1) ||
		    now_mono_usec() - a->opened_usec >= a->o->batch_delay_ms * 1000)
			return commit_batch(a, err);
		return true;
	case CHG_ORIGIN:
		snprintf(a->txn_origin, sizeof(a->txn_origin), "%s", ev->origin.name);
		return true;
	default: {
		if (a->skip_txn)
			return true;
		struct change_event keep;
		if (!strip_copied(a, ev, &keep))
			return true;
		ev = &keep;
		a->nbytes += (int64_t)event_bytes(ev);
		if (a->held_len > HELD_KEYS_MAX && !confirm_batch(a, err))
			return false;
		log_change_keys(a, ev);
		if (!check_violation(a, ev, err))
			return false;
		return s->ops->change(s, ev, &a->txn_pos, err);
	}
	}
}

static void publish_schema_errors(struct applier *a)
{
	struct sink *s = a->o->sink;
	char *se = s->ops->schema_errors(s);
	pthread_mutex_lock(&a->o->prog->lock);
	snprintf(a->o->prog->schema_errors, sizeof(a->o->prog->schema_errors), "%s", se);
	pthread_mutex_unlock(&a->o->prog->lock);
	free(se);
}

/* Opens the sink and a reader; loops with backoff until it works or stop. */
static bool connect_all(struct applier *a)
{
	const struct apply_opts *o = a->o;
	struct err err;
	int backoff = 500;
	while (!*o->stop) {
		int64_t commit_us = 0;
		if (o->sink->ops->open(o->sink, &a->applied, &commit_us, &err) &&
		    load_starts(a, &err) && reopen_reader(a, &err)) {
			char *e = NULL;
			keylog_close(&a->kl);
			if (o->keylog_path && !keylog_open(&a->kl, o->keylog_path, &a->applied, &e)) {
				log_warn("apply: %s (recent-writes validation unavailable)", e);
				free(e);
			}
			pthread_mutex_lock(&o->prog->lock);
			o->prog->connected = true;
			o->prog->applied = a->applied;
			if (commit_us > 0)
				o->prog->applied_commit_us = commit_us;
			pthread_mutex_unlock(&o->prog->lock);
			a->counted_freeze = UINT64_MAX; /* recount from the target */
			return true;
		}
		set_error(a, err.msg);
		log_warn("apply: %s; retrying in %d ms", err.msg, backoff);
		sleep_interruptible(backoff, o->stop);
		backoff = backoff < 8000 ? backoff * 2 : 8000;
	}
	return false;
}

void *apply_thread(void *arg)
{
	struct applier a = {.o = arg};
	const struct apply_opts *o = a.o;
	struct err err;

	if (!connect_all(&a))
		return NULL;
	while (!*o->stop) {
		struct change_event ev;
		char *e = NULL;
		/* A batch in flight is confirmed as soon as there is nothing to read. */
		int wait = a.committing ? 0 : a.open ? 20 : 200;
		int r = spool_reader_next(a.rd, &ev, wait, &e);
		bool ok = true;
		if (r < 0) {
			err_set(&err, "spool: %s", e);
			free(e);
			ok = false;
		} else if (r > 0) {
			ok = handle(&a, &ev, &err);
		} else {
			/* Nothing more durable: commit a batch that has waited long enough. */
			if (a.open && !a.in_txn &&
			    now_mono_usec() - a.opened_usec >= o->batch_delay_ms * 1000)
				ok = commit_batch(&a, &err);
			/* Nothing to overlap with: take the answer now. */
			if (ok && a.committing)
				ok = confirm_batch(&a, &err);
			pthread_mutex_lock(&o->prog->lock);
			o->prog->idle = !a.open && !a.in_txn && !a.committing;
			pthread_mutex_unlock(&o->prog->lock);
			publish_schema_errors(&a);
			refresh_violations(&a);
		}
		if (r > 0) {
			pthread_mutex_lock(&o->prog->lock);
			o->prog->idle = false;
			pthread_mutex_unlock(&o->prog->lock);
		}
		if (ok)
			continue;

		/* Failure: undo the open batch and re-read it from the spool. */
		set_error(&a, err.msg);
		log_warn("apply: %s", err.msg);
		struct err cerr;
		if (a.committing) /* the batch before may have committed before this failure */
			(void)confirm_batch(&a, &cerr);
		int64_t undone_txns = (a.open ? a.ntxns : 0) + a.lost_txns;
		a.lost_txns = 0;
		a.held_len = 0;
		bool broken = o->sink->broken;
		bool was_open = a.open || undone_txns > 0;
		/* (Also for a failed batch in flight: its COMMIT may have been skipped.) */
		if (was_open && !broken)
			o->sink->ops->rollback(o->sink);
		a.open = false;
		if (was_open)
			keylog_rollback(&a.kl);
		if (broken) {
			o->sink->ops->close(o->sink);
			pthread_mutex_lock(&o->prog->lock);
			o->prog->connected = false;
			pthread_mutex_unlock(&o->prog->lock);
			sleep_interruptible(500, o->stop);
			if (!connect_all(&a))
				break;
			continue;
		}
		if (was_open && !a.isolate) {
			/* Replay the same transactions one at a time, isolating refusals. */
			a.isolate = true;
			/* ... up to and including the transaction that failed. */
			a.isolate_until = a.txn_pos;
			pthread_mutex_lock(&o->prog->lock);
			o->prog->retry_depth = undone_txns + 1;
			pthread_mutex_unlock(&o->prog->lock);
			log_info("apply: re-applying %lld transactions one at a time",
				 (long long)undone_txns);
		} else {
			sleep_interruptible(1000, o->stop); /* isolation failed too: do not spin */
		}
		if (!reopen_reader(&a, &err) && !connect_all(&a))
			break;
	}
	if (a.committing && !confirm_batch(&a, &err)) {
		log_warn("apply: %s", err.msg);
		keylog_rollback(&a.kl);
		a.open = true; /* roll back below: its COMMIT may have been skipped */
	}
	if (a.open && !o->sink->broken) {
		o->sink->ops->rollback(o->sink); /* stop: the target keeps what committed */
		keylog_rollback(&a.kl);
	}
	spool_reader_close(a.rd);
	o->sink->ops->close(o->sink);
	keylog_close(&a.kl);
	for (int i = 0; i < a.nmaps; i++) {
		free(a.maps[i].table);
		free(a.maps[i].idx);
	}
	free(a.maps);
	apply_table_starts_free(a.starts, a.nstarts);
	free(a.relbuf);
	free(a.held);
	return NULL;
}
