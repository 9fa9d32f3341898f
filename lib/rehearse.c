/*
 * rehearse: a real run of the reverse path before the flip (see rehearse.h).
 * The run, the probe pipeline and the cleanup, whatever the engines; each
 * engine's checks and the probe's start on the target are in rehearse_pg.c
 * and rehearse_my.c.
 */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "log.h"
#include "mymeta.h"
#include "mysink.h"
#include "mystream.h"
#include "pgmeta.h"
#include "pgsink.h"
#include "pgstream.h"
#include "rehearse_int.h"
#include "spool.h"

/* The reverse pipeline in miniature: target reader -> scratch spool -> applier -> source. */
struct pipeline {
	volatile bool stop;
	struct mig_tableset ts; /* the probe table only: nothing else is applied */
	struct spool *spool;
	struct sink *sink;
	struct stream_progress sp;
	struct apply_progress ap;
	struct pgstream_opts so; /* a PostgreSQL target's slot */
	struct mystream_opts mo; /* or a MySQL/MariaDB target's binlog */
	struct apply_opts ao;
	pthread_t stream_th, apply_th;
	bool running;
};

void rh_step(struct rehearsal *r, const char *name, bool ok, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	int64_t now = now_mono_usec();
	r->failed |= !ok;
	json_array_append_new(r->steps, json_pack("{s:s, s:s, s:f, s:s}", "name", name, "verdict",
						  ok ? "passed" : "failed", "seconds",
						  (double)(now - r->t0) / 1e6, "detail", detail));
	log_event(ok ? LOG_LVL_INFO : LOG_LVL_WARN, "rehearse", "step=%s verdict=%s detail=\"%s\"",
		  name, ok ? "passed" : "failed", detail);
	r->t0 = now;
}

void rh_skip(struct rehearsal *r, const char *name, const char *why)
{
	r->failed = true;
	json_array_append_new(r->steps, json_pack("{s:s, s:s, s:f, s:s}", "name", name, "verdict",
						  "skipped", "seconds", 0.0, "detail", why));
}

/* --- the probe row, on either engine ----------------------------------------------- */

/*
 * The probe's time is compared as microseconds since the epoch: the two
 * servers' sessions may format times differently (MySQL/MariaDB sessions
 * run in UTC, myconn.h).
 */
#define PG_MICROS "(extract(epoch FROM written_at) * 1000000)::bigint::text"
#define MY_MICROS "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', written_at)"

/* sql with each %s a quoted literal of the connection's (token, name...). */
static char *my_sql2(struct myconn *c, const char *fmt, const char *a, const char *b)
{
	char *la = myconn_literal(c, a, strlen(a)),
	     *lb = b ? myconn_literal(c, b, strlen(b)) : NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* the fixed statements below */
	char *sql = xasprintf(fmt, la, lb);
#pragma GCC diagnostic pop
	free(la);
	free(lb);
	return sql;
}

/* Writes the probe row on the target: *micros its written_at, *at the log position after. */
static bool probe_insert(struct rehearsal *r, char **micros, char **at, struct err *err)
{
	*micros = *at = NULL;
	if (!store_is_my(&r->tgt)) {
		const char *p[] = {r->token, r->o->name};
		PGresult *res = pgconn_query(&r->tgt.pg,
					     "INSERT INTO migd.rehearse_probe (token, name) "
					     "VALUES ($1, $2) RETURNING " PG_MICROS ", "
					     "pg_current_wal_lsn()::text",
					     2, p, err);
		if (res == NULL)
			return false;
		*micros = xstrdup(PQgetvalue(res, 0, 0));
		*at = xstrdup(PQgetvalue(res, 0, 1));
		PQclear(res);
		return true;
	}
	struct myconn *c = &r->tgt.my;
	char *ins = my_sql2(c, "INSERT INTO migd.rehearse_probe (token, name) VALUES (%s, %s)",
			    r->token, r->o->name);
	char *sel = my_sql2(c, "SELECT " MY_MICROS " FROM migd.rehearse_probe WHERE token = %s",
			    r->token, NULL);
	bool ok =
	    myconn_exec(c, ins, err) && (*micros = myconn_query_value(c, sel, err)) != NULL &&
	    (*at = myconn_query_value(c, "SELECT CONCAT('gtid ', @@gtid_binlog_pos)", err)) != NULL;
	free(ins);
	free(sel);
	return ok;
}

static bool probe_delete(struct rehearsal *r, struct err *err)
{
	if (!store_is_my(&r->tgt)) {
		const char *p[] = {r->token};
		return pgconn_exec_params(
		    &r->tgt.pg, "DELETE FROM migd.rehearse_probe WHERE token = $1", 1, p, err);
	}
	char *sql =
	    my_sql2(&r->tgt.my, "DELETE FROM migd.rehearse_probe WHERE token = %s", r->token, NULL);
	bool ok = myconn_exec(&r->tgt.my, sql, err);
	free(sql);
	return ok;
}

/* The source's probe row's written_at in *micros (NULL: no such row; caller frees). */
static bool source_micros(struct rehearsal *r, char **micros, struct err *err)
{
	*micros = NULL;
	if (!store_is_my(&r->src)) {
		const char *p[] = {r->token};
		PGresult *res = pgconn_query(
		    &r->src.pg, "SELECT " PG_MICROS " FROM migd.rehearse_probe WHERE token = $1", 1,
		    p, err);
		if (res == NULL)
			return false;
		if (PQntuples(res) == 1)
			*micros = xstrdup(PQgetvalue(res, 0, 0));
		PQclear(res);
		return true;
	}
	char *sql =
	    my_sql2(&r->src.my, "SELECT " MY_MICROS " FROM migd.rehearse_probe WHERE token = %s",
		    r->token, NULL);
	MYSQL_RES *res = myconn_query(&r->src.my, sql, err);
	free(sql);
	if (res == NULL)
		return false;
	MYSQL_ROW row = mysql_fetch_row(res);
	if (row != NULL && row[0] != NULL)
		*micros = xstrdup(row[0]);
	mysql_free_result(res);
	return true;
}

/*
 * Deletes the rows named name from each of migd's tables (bare names,
 * NULL-terminated) that exists and has any: a user who may not delete
 * (the failure a check reported) still cleans up when there is nothing.
 */
static bool delete_named(struct store *s, const char *name, const char *const *tables, bool *found,
			 struct err *err)
{
	for (; *tables; tables++) {
		bool ok;
		char *n = NULL;
		if (!store_is_my(s)) {
			char *q = xasprintf("migd.%s", *tables);
			const char *t[] = {q}, *p[] = {name};
			/* A missing table fails the statement that names it: ask first. */
			char *there = pgconn_query_value(
			    &s->pg, "SELECT to_regclass($1) IS NOT NULL", 1, t, err);
			char *cnt = xasprintf("SELECT count(*) FROM %s WHERE name = $1", q);
			char *del = xasprintf("DELETE FROM %s WHERE name = $1", q);
			ok = there != NULL &&
			     (there[0] != 't' ||
			      (n = pgconn_query_value(&s->pg, cnt, 1, p, err)) != NULL);
			if (ok && n && strcmp(n, "0") != 0) {
				*found = true;
				ok = pgconn_exec_params(&s->pg, del, 1, p, err);
			}
			free(there);
			free(cnt);
			free(del);
			free(q);
		} else {
			char *there = my_sql2(&s->my,
					      "SELECT count(*) FROM information_schema.TABLES "
					      "WHERE TABLE_SCHEMA = 'migd' AND TABLE_NAME = %s",
					      *tables, NULL);
			char *v = myconn_query_value(&s->my, there, err);
			char *id = myconn_ident(*tables);
			char *fmt = xasprintf("SELECT count(*) FROM migd.%s WHERE name = %%s", id);
			char *fdel = xasprintf("DELETE FROM migd.%s WHERE name = %%s", id);
			char *cnt = my_sql2(&s->my, fmt, name, NULL);
			char *del = my_sql2(&s->my, fdel, name, NULL);
			ok = v != NULL && (strcmp(v, "0") == 0 ||
					   (n = myconn_query_value(&s->my, cnt, err)) != NULL);
			if (ok && n && strcmp(n, "0") != 0) {
				*found = true;
				ok = myconn_exec(&s->my, del, err);
			}
			free(there);
			free(v);
			free(id);
			free(fmt);
			free(fdel);
			free(cnt);
			free(del);
		}
		free(n);
		if (!ok)
			return false;
	}
	return true;
}

static const char *const probe_rows[] = {"rehearse_probe", NULL};
static const char *const sink_rows[] = {"progress", "failed_records", "parked", NULL};

/* The source's rows of this migration's rehearsals (the probe's, the sink's). */
static bool drop_source_rows(struct rehearsal *r, bool *found, struct err *err)
{
	return delete_named(&r->src, r->o->name, probe_rows, found, err) &&
	       delete_named(&r->src, r->sink_name, sink_rows, found, err);
}

/* --- the pipeline -------------------------------------------------------------------- */

static bool pipeline_start(struct rehearsal *r, struct pipeline *p, const struct pos *from,
			   struct err *err)
{
	const struct rehearse_opts *o = r->o;
	char *e = NULL;
	bool ok = store_is_my(&r->tgt)
		      ? mymeta_load_table(&r->tgt.my, "migd", "rehearse_probe", &p->ts, err)
		      : pgmeta_load_table(&r->tgt.pg, "migd", "rehearse_probe", &p->ts, err);
	if (!ok)
		return false;
	if (!spool_open(o->spool_dir, NULL, &p->spool, &e)) {
		err_set(err, "spool %s: %s", o->spool_dir, e);
		free(e);
		tableset_free(&p->ts);
		return false;
	}
	pthread_mutex_init(&p->sp.lock, NULL);
	pthread_mutex_init(&p->ap.lock, NULL);
	p->ap.applied = pos_none();
	/* The sinks the reverse replication uses (mig_start_reverse()), under the rehearsal's name.
	 */
	p->sink = store_is_my(&r->src) ? mysink_new(o->src_ci, r->sink_name, &p->ts)
				       : pgsink_new(o->src_ci, r->sink_name, &p->ts);
	p->so = (struct pgstream_opts){
	    .repl_conninfo = o->tgt_repl_ci,
	    .slot = o->slot,
	    .publication = o->publication,
	    .start_lsn = pos_scalar(from),
	    .spool = p->spool,
	    .stop = &p->stop,
	    .prog = &p->sp,
	    .feedback_ms = 100,
	};
	p->mo = (struct mystream_opts){
	    .side = "target",
	    .dsn = o->tgt_ci,
	    .server_id = o->server_id,
	    .start = *from,
	    .ts = &p->ts,
	    .spool = p->spool,
	    .stop = &p->stop,
	    .prog = &p->sp,
	};
	p->ao = (struct apply_opts){
	    .spool = p->spool,
	    .sink = p->sink,
	    .stop = &p->stop,
	    .prog = &p->ap,
	    .batch_txns = o->batch_txns,
	    .batch_bytes = o->batch_bytes,
	    .batch_delay_ms = o->batch_delay_ms,
	    .ts = &p->ts,
	};
	if (store_is_my(&r->tgt))
		pthread_create(&p->stream_th, NULL, mystream_thread, &p->mo);
	else
		pthread_create(&p->stream_th, NULL, pgstream_thread, &p->so);
	pthread_create(&p->apply_th, NULL, apply_thread, &p->ao);
	p->running = true;
	return true;
}

static void pipeline_stop(struct pipeline *p)
{
	if (!p->running)
		return;
	p->stop = true;
	pthread_join(p->stream_th, NULL);
	pthread_join(p->apply_th, NULL);
	p->sink->ops->free(p->sink);
	spool_close(p->spool);
	tableset_free(&p->ts);
	pthread_mutex_destroy(&p->sp.lock);
	pthread_mutex_destroy(&p->ap.lock);
	p->running = false;
}

/* The first thing that went wrong in the pipeline, or "" (the real reverse path would hit it too).
 */
static void pipeline_error(struct rehearsal *r, struct pipeline *p, char *buf, size_t n)
{
	buf[0] = '\0';
	pthread_mutex_lock(&p->ap.lock);
	if (p->ap.counts.failed > 0 || p->ap.last_error[0])
		snprintf(buf, n, "applying to the source: %s",
			 p->ap.last_error[0] ? p->ap.last_error : "a change was refused");
	else if (p->ap.schema_errors[0])
		snprintf(buf, n, "applying to the source: %s", p->ap.schema_errors);
	pthread_mutex_unlock(&p->ap.lock);
	if (buf[0])
		return;
	pthread_mutex_lock(&p->sp.lock);
	if (p->sp.last_error[0])
		snprintf(buf, n, "reading the %s: %s",
			 store_is_my(&r->tgt) ? "target's binlog" : "rehearsal slot",
			 p->sp.last_error);
	pthread_mutex_unlock(&p->sp.lock);
}

/*
 * Waits until the source's probe row is there with written_at = want
 * (microseconds since the epoch, as text), or with want NULL until it is
 * gone.  False with err on an error, a pipeline failure, stop or the
 * timeout.
 */
static bool wait_source(struct rehearsal *r, struct pipeline *p, const char *want, struct err *err)
{
	int64_t deadline = now_mono_usec() + r->o->timeout_ms * 1000;
	char perr[600];
	for (;;) {
		char *got;
		if (!source_micros(r, &got, err))
			return false;
		bool there = got != NULL, same = there && want && strcmp(got, want) == 0;
		if (there && want && !same)
			err_set(
			    err,
			    "the probe row arrived changed: written_at %s us on the source, %s on "
			    "the target",
			    got, want);
		free(got);
		if (there && want && !same)
			return false;
		if (want ? same : !there)
			return true;
		pipeline_error(r, p, perr, sizeof(perr));
		if (perr[0]) {
			err_set(err, "%s", perr);
			return false;
		}
		if (*r->o->stop) {
			err_set(err, "migd is stopping");
			return false;
		}
		if (now_mono_usec() >= deadline) {
			err_set(err, "the probe's %s did not reach the source within %.0f s",
				want ? "row" : "delete", (double)r->o->timeout_ms / 1000);
			return false;
		}
		sleep_interruptible(20, r->o->stop);
	}
}

static const char *start_step(const struct rehearsal *r)
{
	return store_is_my(&r->tgt) ? "rehearsal_position" : "rehearsal_slot";
}

static void run_probe(struct rehearsal *r)
{
	struct err err;
	struct pos from = pos_none();
	char what[POS_TEXT_MAX + 200];
	bool my = store_is_my(&r->tgt);
	if (!(my ? rhmy_start(r, &from, what, sizeof(what), &err)
		 : rhpg_start(r, &from, what, sizeof(what), &err))) {
		rh_step(r, start_step(r), false, "%s", err.msg);
		rh_skip(r, "probe_write", "skipped: the probe's stream could not start");
		rh_skip(r, "probe_replicated", "skipped: the probe's stream could not start");
		return;
	}
	rh_step(r, start_step(r), true, "%s", what);

	struct pipeline p = {0};
	if (!pipeline_start(r, &p, &from, &err)) {
		rh_step(r, "probe_write", false, "%s", err.msg);
		rh_skip(r, "probe_replicated", "skipped: the rehearsal pipeline did not start");
		return;
	}
	char *written, *at;
	if (!probe_insert(r, &written, &at, &err)) {
		rh_step(r, "probe_write", false, "%s", err.msg);
		rh_skip(r, "probe_replicated", "skipped: no probe row");
		pipeline_stop(&p);
		free(written);
		free(at);
		return;
	}
	rh_step(r, "probe_write", true,
		"row %s written into the target's migd.rehearse_probe at %s", r->token, at);
	free(at);
	crash_point(r->o->crash_at, "rehearse-probe");

	int64_t t0 = now_mono_usec();
	bool ok = wait_source(r, &p, written, &err);
	double row_s = (double)(now_mono_usec() - t0) / 1e6;
	t0 = now_mono_usec();
	ok = ok && probe_delete(r, &err) && wait_source(r, &p, NULL, &err);
	double del_s = (double)(now_mono_usec() - t0) / 1e6;
	pipeline_stop(&p);
	if (ok)
		rh_step(
		    r, "probe_replicated", true,
		    "the row reached the source's migd.rehearse_probe in %.3f s and its delete in "
		    "%.3f s (%s, spool, applier, %s sink)",
		    row_s, del_s, my ? "binlog reader" : "slot, pgoutput decoder",
		    store_is_my(&r->src) ? "MySQL/MariaDB" : "PostgreSQL");
	else
		rh_step(r, "probe_replicated", false, "%s", err.msg);
	free(written);
}

/* --- cleanup ------------------------------------------------------------------------ */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static bool remove_dir(const char *dir, bool *found, struct err *err)
{
	if (access(dir, F_OK) != 0)
		return true;
	*found = true;
	if (nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS) != 0) {
		err_set(err, "removing %s: %s", dir, strerror(errno));
		return false;
	}
	return true;
}

bool rehearse_drop_leftovers(struct store *tgt, const char *name, const char *slot,
			     const char *publication, const char *spool_dir, bool *found,
			     struct err *err)
{
	*found = false;
	return (store_is_my(tgt) || rhpg_drop_slot(&tgt->pg, slot, publication, found, err)) &&
	       delete_named(tgt, name, probe_rows, found, err) && remove_dir(spool_dir, found, err);
}

static void cleanup(struct rehearsal *r, bool leftovers_at_start)
{
	const struct rehearse_opts *o = r->o;
	struct err err;
	bool found = false;
	bool ok = store_ensure(&r->tgt, "target", &err) &&
		  rehearse_drop_leftovers(&r->tgt, o->name, o->slot, o->publication, o->spool_dir,
					  &found, &err) &&
		  store_ensure(&r->src, "source", &err) && drop_source_rows(r, &found, &err);
	if (ok)
		rh_step(r, "cleanup", true,
			"%sprobe rows and the sink's state removed on both sides, scratch spool "
			"removed%s",
			store_is_my(&r->tgt) ? "" : "rehearsal slot and publication dropped, ",
			leftovers_at_start
			    ? " (and an earlier rehearsal's leftovers, found at the start)"
			    : "");
	else
		rh_step(r, "cleanup", false, "%s (remove it by hand)", err.msg);
}

/* --- the run ------------------------------------------------------------------------- */

json_t *rehearse_run(const struct rehearse_opts *o)
{
	struct rehearsal r = {
	    .o = o,
	    .steps = json_array(),
	    .t0 = now_mono_usec(),
	    .src = {.engine = o->src_my ? ENGINE_MARIADB : ENGINE_POSTGRESQL,
		    .conninfo = o->src_ci},
	    .tgt = {.engine = o->tgt_my ? ENGINE_MARIADB : ENGINE_POSTGRESQL,
		    .conninfo = o->tgt_ci},
	};
	int64_t start = r.t0;
	struct err err;
	char at[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(r.token, sizeof(r.token), "%s/%lld/%d", o->name, (long long)now_wall_usec(),
		 (int)getpid());
	snprintf(r.sink_name, sizeof(r.sink_name), "%s:rehearse", o->name);
	log_event(LOG_LVL_NOTICE, "rehearse", "status=started slot=%s",
		  o->tgt_my ? "(binlog)" : o->slot);

	bool leftovers = false;
	if (!store_ensure(&r.tgt, "target", &err)) {
		rh_step(&r, "target_connection", false, "%s", err.msg);
	} else {
		/* First, so the free-slot count is honest after a rehearsal cut off by a crash. */
		if (!rehearse_drop_leftovers(&r.tgt, o->name, o->slot, o->publication, o->spool_dir,
					     &leftovers, &err))
			rh_step(&r, "target_leftovers", false,
				"an earlier rehearsal's leftovers cannot be removed: %s", err.msg);
		if (o->tgt_my)
			rhmy_check_target(&r);
		else
			rhpg_check_target(&r);
	}
	if (!store_ensure(&r.src, "source", &err)) {
		rh_step(&r, "source_connection", false, "%s", err.msg);
	} else {
		/* An old progress row of the sink's would make the applier skip the probe. */
		if (!drop_source_rows(&r, &leftovers, &err))
			rh_step(&r, "source_leftovers", false,
				"an earlier rehearsal's rows cannot be removed: %s", err.msg);
		if (o->src_my)
			rhmy_check_source(&r);
		else
			rhpg_check_source(&r);
	}
	if (!r.failed) {
		run_probe(&r);
	} else {
		rh_skip(&r, start_step(&r), "skipped: a check above failed");
		rh_skip(&r, "probe_write", "skipped: a check above failed");
		rh_skip(&r, "probe_replicated", "skipped: a check above failed");
	}
	cleanup(&r, leftovers);
	store_close(&r.src);
	store_close(&r.tgt);
	double secs = (double)(now_mono_usec() - start) / 1e6;
	log_event(r.failed ? LOG_LVL_WARN : LOG_LVL_NOTICE, "rehearse", "status=%s seconds=%.3f",
		  r.failed ? "failed" : "passed", secs);
	return json_pack("{s:b, s:s, s:f, s:s?, s:s?, s:o}", "passed", !r.failed, "at", at,
			 "seconds", secs, "slot", o->tgt_my ? NULL : o->slot, "publication",
			 o->tgt_my ? NULL : o->publication, "steps", r.steps);
}
