/*
 * pgstream: streams the slot into the spool (see pgstream.h).
 *
 * The CopyBoth loop reads with PQgetCopyData(async) and poll() on the
 * socket, so it wakes for the feedback timer and the stop flag.  Spool
 * syncs are grouped: after a COMMIT the spool is synced once libpq's buffer
 * runs dry (or 4 MiB / 100 ms pass), then the new durable position is sent
 * as the flush LSN.
 */
#include "pgstream.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgconn.h"
#include "pgoutput.h"
#include "util.h"

#define SYNC_BYTES (4u << 20)
#define SYNC_USEC  100000

struct stream {
	const struct pgstream_opts *o;
	struct pgconn c;
	struct pgoutput_state st;
	struct change_scratch scratch;
	bool skipping;      /* inside a transaction the spool already holds */
	bool dirty;         /* appended since the last sync */
	bool in_txn;        /* between BEGIN and COMMIT (of a sent-at-commit transaction) */
	uint64_t dirty_bytes;
	int64_t dirty_since;
	int64_t last_feedback;
	uint64_t durable_lsn; /* spool_durable_pos() as an LSN */
	uint64_t wal_end;
	uint64_t received;
};

static uint64_t pos_lsn(const struct pos *p)
{
	return p->kind == POS_PG_LSN ? p->lsn : 0;
}

static void set_error(struct stream *s, const char *msg)
{
	pthread_mutex_lock(&s->o->prog->lock);
	snprintf(s->o->prog->last_error, sizeof(s->o->prog->last_error), "%s", msg);
	pthread_mutex_unlock(&s->o->prog->lock);
}

static bool send_feedback(struct stream *s, bool reply, struct err *err)
{
	uint64_t flush = s->durable_lsn;
	/*
	 * Nothing half-spooled: WAL up to the server's end decodes to nothing
	 * for us.  Not while a streamed transaction is open (in a chunk, or
	 * waiting in a spill file for its stream commit): its commit may lie
	 * before the server's end, and confirming past it would make the slot
	 * skip it after a crash.
	 */
	struct spool_stats st;
	spool_stats(s->o->spool, &st);
	if (!s->in_txn && !s->dirty && !s->st.in_stream && st.spill_files == 0 && s->wal_end > flush)
		flush = s->wal_end;
	uint8_t buf[PGOUTPUT_STATUS_LEN];
	pgoutput_build_status(buf, s->received > flush ? s->received : flush, flush, flush,
			      now_wall_usec(), reply);
	if (PQputCopyData(s->c.conn, (const char *)buf, sizeof(buf)) != 1 || PQflush(s->c.conn) != 0) {
		err_set(err, "source: sending feedback: %s", pgconn_error(&s->c));
		return false;
	}
	s->last_feedback = now_mono_usec();
	pthread_mutex_lock(&s->o->prog->lock);
	s->o->prog->flushed_lsn = flush;
	pthread_mutex_unlock(&s->o->prog->lock);
	return true;
}

static bool sync_spool(struct stream *s, struct err *err)
{
	char *e = NULL;
	if (!spool_sync(s->o->spool, &e)) {
		err_set(err, "spool: %s", e);
		free(e);
		return false;
	}
	struct pos d = spool_durable_pos(s->o->spool);
	s->durable_lsn = pos_lsn(&d);
	s->dirty = false;
	s->dirty_bytes = 0;
	return send_feedback(s, false, err);
}

static bool append(struct stream *s, const struct change_event *ev, size_t bytes, struct err *err)
{
	char *e = NULL;
	if (!spool_append(s->o->spool, ev, &e)) {
		err_set(err, "spool: %s", e);
		free(e);
		return false;
	}
	if (!s->dirty)
		s->dirty_since = now_mono_usec();
	s->dirty = true;
	s->dirty_bytes += bytes;
	return true;
}

static bool spill(struct stream *s, const struct change_event *ev, struct err *err)
{
	char *e = NULL;
	if (!spool_spill_append(s->o->spool, s->st.stream_xid, ev, &e)) {
		err_set(err, "spool: %s", e);
		free(e);
		return false;
	}
	return true;
}

static bool handle_change(struct stream *s, const struct change_event *ev, size_t bytes,
			  bool in_stream, struct err *err)
{
	if (in_stream) /* a chunk of a streamed transaction: RELATION included */
		return spill(s, ev, err);
	switch (ev->kind) {
	case CHG_BEGIN:
		s->in_txn = true;
		/* Resent after a reconnect: the spool has it already. */
		s->skipping = pos_lsn(&ev->begin.final_pos) < s->durable_lsn;
		return s->skipping ? true : append(s, ev, bytes, err);
	case CHG_COMMIT: {
		bool skipped = s->skipping;
		s->in_txn = false;
		s->skipping = false;
		if (skipped)
			return true;
		pthread_mutex_lock(&s->o->prog->lock);
		s->o->prog->txns++;
		pthread_mutex_unlock(&s->o->prog->lock);
		return append(s, ev, bytes, err);
	}
	case CHG_RELATION:
		return append(s, ev, bytes, err); /* always: the applier needs every shape */
	default:
		return s->skipping ? true : append(s, ev, bytes, err);
	}
}

static bool handle_stream_end(struct stream *s, const struct pgoutput_msg *m, struct err *err)
{
	char *e = NULL;
	bool ok;
	if (m->kind == PGO_STREAM_ABORT) {
		ok = spool_spill_abort(s->o->spool, m->stream_abort.xid, m->stream_abort.subxid, &e);
	} else if (pos_lsn(&m->stream_commit.commit_pos) < s->durable_lsn) {
		/* Already spooled before a reconnect: just drop the spill. */
		ok = spool_spill_abort(s->o->spool, m->stream_commit.xid, m->stream_commit.xid, &e);
	} else {
		struct change_event b = {.kind = CHG_BEGIN, .xid = m->stream_commit.xid};
		b.begin.final_pos = m->stream_commit.commit_pos;
		b.begin.commit_time_us = m->stream_commit.commit_time_us;
		struct change_event c = {.kind = CHG_COMMIT, .xid = m->stream_commit.xid};
		c.commit.commit_pos = m->stream_commit.commit_pos;
		c.commit.end_pos = m->stream_commit.end_pos;
		c.commit.commit_time_us = m->stream_commit.commit_time_us;
		ok = spool_spill_commit(s->o->spool, m->stream_commit.xid, &b, &c, &e);
		if (ok) {
			if (!s->dirty)
				s->dirty_since = now_mono_usec();
			s->dirty = true;
			pthread_mutex_lock(&s->o->prog->lock);
			s->o->prog->txns++;
			pthread_mutex_unlock(&s->o->prog->lock);
		}
	}
	if (!ok) {
		err_set(err, "spool: %s", e);
		free(e);
	}
	return ok;
}

static bool handle_frame(struct stream *s, const uint8_t *buf, size_t len, struct err *err)
{
	struct pgoutput_frame f;
	const char *perr = NULL;
	if (!pgoutput_parse_frame(buf, len, &f, &perr)) {
		err_set(err, "source: bad replication frame: %s", perr);
		return false;
	}
	if (f.wal_end > s->wal_end)
		s->wal_end = f.wal_end;
	if (f.type == 'k')
		return f.reply_requested ? send_feedback(s, false, err) : true;
	if (f.wal_start > s->received)
		s->received = f.wal_start;

	struct pgoutput_msg m;
	bool in_stream = s->st.in_stream;
	if (!pgoutput_next(&s->st, f.data, f.len, &m, &s->scratch, &perr)) {
		err_set(err, "source: pgoutput protocol: %s", perr);
		return false;
	}
	switch (m.kind) {
	case PGO_CHANGE:
		return handle_change(s, &m.ev, f.len, in_stream, err);
	case PGO_STREAM_COMMIT:
	case PGO_STREAM_ABORT:
		return handle_stream_end(s, &m, err);
	default:
		return true; /* S, E, Y, M: nothing to keep */
	}
}

static bool start_replication(struct stream *s, struct err *err)
{
	char lsn[32];
	char *slot = pgconn_ident(s->o->slot);
	char *pub = pgconn_ident(s->o->publication);
	char *publit = pgconn_literal(pub);
	uint64_t from = s->durable_lsn > s->o->start_lsn ? s->durable_lsn : s->o->start_lsn;
	char *cmd = xasprintf("START_REPLICATION SLOT %s LOGICAL %s (proto_version '2', "
			      "streaming 'on', publication_names %s)",
			      slot, pos_lsn_format(from, lsn, sizeof(lsn)), publit);
	PGresult *r = PQexec(s->c.conn, cmd);
	bool ok = PQresultStatus(r) == PGRES_COPY_BOTH;
	if (!ok)
		err_set(err, "source: START_REPLICATION: %s", PQresultErrorMessage(r));
	PQclear(r);
	free(cmd);
	free(slot);
	free(pub);
	free(publit);
	return ok;
}

/* One connection's worth of streaming; returns false on error (reconnect). */
static bool stream_once(struct stream *s, struct err *err)
{
	const struct pgstream_opts *o = s->o;
	if (!pgconn_open(&s->c, "source (stream)", o->repl_conninfo, err) || !start_replication(s, err))
		return false;
	pthread_mutex_lock(&o->prog->lock);
	o->prog->connected = true;
	pthread_mutex_unlock(&o->prog->lock);
	pgoutput_state_init(&s->st);
	s->in_txn = s->skipping = false;
	log_event(LOG_LVL_INFO, "stream_start", "slot=%s", o->slot);

	while (!*o->stop) {
		char *buf = NULL;
		int n = PQgetCopyData(s->c.conn, &buf, 1);
		if (n > 0) {
			bool ok = handle_frame(s, (const uint8_t *)buf, (size_t)n, err);
			PQfreemem(buf);
			if (!ok)
				return false;
			pthread_mutex_lock(&o->prog->lock);
			o->prog->received_lsn = s->received;
			o->prog->server_wal_end = s->wal_end;
			o->prog->last_msg_usec = now_mono_usec();
			pthread_mutex_unlock(&o->prog->lock);
			/* Group commit: keep reading while data is buffered, within bounds. */
			if (s->dirty && !s->in_txn &&
			    (s->dirty_bytes >= SYNC_BYTES || now_mono_usec() - s->dirty_since >= SYNC_USEC))
				if (!sync_spool(s, err))
					return false;
			continue;
		}
		if (n == -2) {
			err_set(err, "source (stream): %s", pgconn_error(&s->c));
			return false;
		}
		if (n == -1) {
			PGresult *r = PQgetResult(s->c.conn);
			err_set(err, "source: replication ended: %s",
				r ? PQresultErrorMessage(r) : "no reason given");
			PQclear(r);
			return false;
		}
		/* Nothing buffered: make what we have durable, then wait. */
		if (s->dirty && !s->in_txn && !sync_spool(s, err))
			return false;
		int64_t now = now_mono_usec();
		int feedback_us = (o->feedback_ms > 0 ? o->feedback_ms : 1000) * 1000;
		if (now - s->last_feedback >= feedback_us && !send_feedback(s, false, err))
			return false;
		struct pollfd p = {.fd = PQsocket(s->c.conn), .events = POLLIN};
		int wait_ms = (int)((feedback_us - (now - s->last_feedback)) / 1000);
		if (wait_ms > 200)
			wait_ms = 200; /* notice the stop flag promptly */
		if (wait_ms < 1)
			wait_ms = 1;
		if (poll(&p, 1, wait_ms) > 0 && PQconsumeInput(s->c.conn) != 1) {
			err_set(err, "source (stream): %s", pgconn_error(&s->c));
			return false;
		}
	}
	/* Clean stop: make the last complete transactions durable and confirm them. */
	if (s->dirty && !s->in_txn && !sync_spool(s, err))
		return false;
	if (!send_feedback(s, false, err))
		return false;
	return true;
}

void *pgstream_thread(void *arg)
{
	const struct pgstream_opts *o = arg;
	struct stream s = {.o = o};
	struct err err;
	int backoff = 500;
	struct pos d = spool_durable_pos(o->spool);
	s.durable_lsn = pos_lsn(&d);

	while (!*o->stop) {
		bool ok = stream_once(&s, &err);
		pgconn_close(&s.c);
		pthread_mutex_lock(&o->prog->lock);
		o->prog->connected = false;
		pthread_mutex_unlock(&o->prog->lock);
		if (ok || *o->stop)
			break;
		set_error(&s, err.msg);
		log_warn("stream: %s (reconnecting in %d ms)", err.msg, backoff);
		/* A transaction cut off mid-way will be sent again: drop what we have of it. */
		char *e = NULL;
		if ((s.dirty || s.in_txn) && !spool_discard(o->spool, &e)) {
			log_error("stream: %s", e);
			free(e);
		}
		s.dirty = s.in_txn = s.skipping = false;
		s.dirty_bytes = 0;
		pthread_mutex_lock(&o->prog->lock);
		o->prog->reconnects++;
		pthread_mutex_unlock(&o->prog->lock);
		sleep_interruptible(backoff, o->stop);
		backoff = backoff < 8000 ? backoff * 2 : 8000;
	}
	change_scratch_free(&s.scratch);
	return NULL;
}
