/* rehearse: a real run of the reverse path before the flip (see rehearse.h). */
#include "rehearse.h"

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
#include "pgmeta.h"
#include "pgsink.h"
#include "pgstore.h"
#include "pgstream.h"
#include "spool.h"

static const char *const probe_table_sql =
    "CREATE TABLE IF NOT EXISTS migd.rehearse_probe ("
    "  token text PRIMARY KEY, name text NOT NULL,"
    "  written_at timestamptz NOT NULL DEFAULT clock_timestamp())";

struct rehearsal {
	const struct rehearse_opts *o;
	struct pgconn src, tgt;
	json_t *steps;	     /* owned until returned */
	bool failed;	     /* a step did not pass: the probe is skipped */
	int64_t t0;	     /* when the current step started */
	char token[128];     /* the probe row's key */
	char sink_name[160]; /* the sink's name in the source's migd schema */
};

/* The reverse pipeline in miniature: slot reader -> scratch spool -> applier -> source. */
struct pipeline {
	volatile bool stop;
	struct mig_tableset ts; /* the probe table only: nothing else is applied */
	struct spool *spool;
	struct sink *sink;
	struct stream_progress sp;
	struct apply_progress ap;
	struct pgstream_opts so;
	struct apply_opts ao;
	pthread_t stream_th, apply_th;
	bool running;
};

static void step(struct rehearsal *r, const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void step(struct rehearsal *r, const char *name, bool ok, const char *fmt, ...)
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

static void skip(struct rehearsal *r, const char *name, const char *why)
{
	r->failed = true;
	json_array_append_new(r->steps, json_pack("{s:s, s:s, s:f, s:s}", "name", name, "verdict",
						  "skipped", "seconds", 0.0, "detail", why));
}

static bool ensure(struct pgconn *c, const char *label, const char *ci, struct err *err)
{
	if (c->conn != NULL && !pgconn_is_broken(c))
		return true;
	pgconn_close(c);
	return pgconn_open(c, label, ci, err);
}

/* --- checks -------------------------------------------------------------------- */

static const char *const target_sql =
    "SELECT current_setting('wal_level'), r.rolreplication, r.rolsuper, current_user, "
    "  current_setting('max_replication_slots')::int "
    "    - (SELECT count(*) FROM pg_replication_slots), "
    "  current_setting('max_wal_senders')::int - (SELECT count(*) FROM pg_stat_replication) "
    "FROM pg_roles r WHERE r.rolname = current_user";

/* CREATE PUBLICATION for every target table, rolled back: it needs each table's ownership. */
static void check_publication(struct rehearsal *r)
{
	const struct mig_tableset *ts = r->o->ts;
	struct strbuf sql = {0};
	struct err err, e2;
	char *pub = pgconn_ident(r->o->publication);
	sb_addf(&sql, "CREATE PUBLICATION %s FOR TABLE ", pub);
	for (int i = 0; i < ts->n; i++)
		sb_addf(&sql, "%s%s", i ? ", " : "", ts->t[i].tgt_qname);
	free(pub);
	char *s = sb_take(&sql);
	bool ok = ts->n > 0 && pgconn_exec(&r->tgt, "BEGIN", &err) && pgconn_exec(&r->tgt, s, &err);
	if (ts->n == 0)
		err_set(&err, "no migrated table");
	free(s);
	if (!pgconn_exec(&r->tgt, "ROLLBACK", &e2) && ok) {
		err = e2;
		ok = false;
	}
	if (ok)
		step(r, "target_publication", true,
		     "may publish the %d migrated table(s) on the target (created and rolled back)",
		     ts->n);
	else
		step(r, "target_publication", false, "cannot publish the target's tables: %s",
		     err.msg);
}

static void check_target(struct rehearsal *r)
{
	struct err err;
	PGresult *res = pgconn_query(&r->tgt, target_sql, 0, NULL, &err);
	if (res == NULL) {
		step(r, "target_wal_level", false, "%s", err.msg);
		skip(r, "target_replication_role", "skipped: the target did not answer");
		skip(r, "target_free_slot", "skipped: the target did not answer");
	} else {
		const char *wal = PQgetvalue(res, 0, 0), *user = PQgetvalue(res, 0, 3);
		bool repl = PQgetvalue(res, 0, 1)[0] == 't',
		     super = PQgetvalue(res, 0, 2)[0] == 't';
		int slots = atoi(PQgetvalue(res, 0, 4)), senders = atoi(PQgetvalue(res, 0, 5));
		if (strcmp(wal, "logical") == 0)
			step(r, "target_wal_level", true, "wal_level = logical");
		else
			step(r, "target_wal_level", false,
			     "wal_level is '%s': the reverse slot needs wal_level = logical (set "
			     "it and "
			     "restart the target)",
			     wal);
		if (repl || super)
			step(r, "target_replication_role", true, "role %s %s", user,
			     super ? "is a superuser" : "has REPLICATION");
		else
			step(r, "target_replication_role", false,
			     "role %s lacks the REPLICATION attribute (ALTER ROLE %s REPLICATION)",
			     user, user);
		if (slots >= 1 && senders >= 1)
			step(r, "target_free_slot", true,
			     "%d free replication slot(s), %d free WAL sender(s)", slots, senders);
		else
			step(r, "target_free_slot", false,
			     "%s (%d free slot(s), %d free WAL sender(s))",
			     slots < 1
				 ? "no free replication slot: raise max_replication_slots or drop "
				   "an unused slot"
				 : "no free WAL sender: raise max_wal_senders",
			     slots, senders);
		PQclear(res);
	}
	check_publication(r);
}

/* Every privilege has its own has_table_privilege(): given a list, it answers "any of them". */
static const char *const table_priv_sql =
    "SELECT array_to_string(ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', "
    "  'DELETE']) p WHERE NOT has_table_privilege($1::regclass, p)), ', ')";

/* session_replication_role (the sink's, so source triggers stay quiet) is superuser-only unless
 * granted. */
static const char *const replica_role_sql =
    "SELECT rolsuper OR has_parameter_privilege('session_replication_role', 'SET') "
    "FROM pg_roles WHERE rolname = current_user";

static const char *const schema_priv_sql =
    "SELECT has_schema_privilege('migd', 'USAGE') AND has_schema_privilege('migd', 'CREATE') "
    "  AND has_table_privilege('migd.progress', 'INSERT') "
    "  AND has_table_privilege('migd.progress', 'UPDATE') "
    "  AND has_table_privilege('migd.failed_records', 'INSERT') "
    "  AND has_table_privilege('migd.parked', 'INSERT') "
    "  AND has_table_privilege('migd.rehearse_probe', 'INSERT') "
    "  AND has_table_privilege('migd.rehearse_probe', 'DELETE')";

static void check_source(struct rehearsal *r)
{
	const struct mig_tableset *ts = r->o->ts;
	struct strbuf missing = {0};
	struct err err;
	bool ok = true;
	for (int i = 0; ok && i < ts->n; i++) {
		const char *p[] = {ts->t[i].qname};
		char *v = pgconn_query_value(&r->src, table_priv_sql, 1, p, &err);
		ok = v != NULL;
		if (v && v[0])
			sb_addf(&missing, "%s%s lacks %s", missing.len ? "; " : "", ts->t[i].qname,
				v);
		free(v);
	}
	char *v = ok ? pgconn_query_value(&r->src, replica_role_sql, 0, NULL, &err) : NULL;
	ok = v != NULL;
	if (v && v[0] != 't')
		sb_addf(&missing,
			"%scannot set session_replication_role (superuser, or GRANT SET ON "
			"PARAMETER session_replication_role)",
			missing.len ? "; " : "");
	free(v);
	char *m = sb_take(&missing);
	if (!ok)
		step(r, "source_write_privileges", false, "%s", err.msg);
	else if (m[0])
		step(r, "source_write_privileges", false, "the reverse sink could not write: %s",
		     m);
	else
		step(r, "source_write_privileges", true,
		     "SELECT, INSERT, UPDATE, DELETE on the %d source table(s); may set "
		     "session_replication_role",
		     ts->n);
	free(m);

	v = NULL;
	ok = pgstore_init(&r->src, &err) && pgconn_exec(&r->src, probe_table_sql, &err) &&
	     (v = pgconn_query_value(&r->src, schema_priv_sql, 0, NULL, &err)) != NULL;
	if (!ok)
		step(r, "source_migd_schema", false, "cannot set up the source's migd schema: %s",
		     err.msg);
	else if (v[0] != 't')
		step(r, "source_migd_schema", false,
		     "the source's migd schema or its tables are not writable by migd's role");
	else
		step(r, "source_migd_schema", true, "the source's migd schema is writable");
	free(v);
}

/* --- the probe --------------------------------------------------------------------- */

/* Like the reverse slot: created over a replication connection, no snapshot needed. */
static bool create_slot(struct rehearsal *r, uint64_t *lsn, struct err *err)
{
	struct pgconn c = {0};
	if (!pgconn_open(&c, "target (replication)", r->o->tgt_repl_ci, err))
		return false;
	char *id = pgconn_ident(r->o->slot);
	char *cmd =
	    xasprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput (SNAPSHOT 'nothing')", id);
	free(id);
	PGresult *res = PQexec(c.conn, cmd);
	free(cmd);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		err_set(err, "target: cannot create replication slot %s: %s", r->o->slot,
			PQresultErrorMessage(res));
	else if (!(ok = pos_lsn_parse(PQgetvalue(res, 0, 1), lsn)))
		err_set(err, "target: bad consistent point '%s'", PQgetvalue(res, 0, 1));
	PQclear(res);
	pgconn_close(&c);
	return ok;
}

static bool create_publication(struct rehearsal *r, struct err *err)
{
	char *pub = pgconn_ident(r->o->publication);
	char *sql = xasprintf("CREATE PUBLICATION %s FOR TABLE migd.rehearse_probe", pub);
	bool ok = pgconn_exec(&r->tgt, sql, err);
	free(sql);
	free(pub);
	return ok;
}

static bool pipeline_start(struct rehearsal *r, struct pipeline *p, uint64_t from, struct err *err)
{
	char *e = NULL;
	if (!pgmeta_load_table(&r->tgt, "migd", "rehearse_probe", &p->ts, err))
		return false;
	if (!spool_open(r->o->spool_dir, NULL, &p->spool, &e)) {
		err_set(err, "spool %s: %s", r->o->spool_dir, e);
		free(e);
		tableset_free(&p->ts);
		return false;
	}
	pthread_mutex_init(&p->sp.lock, NULL);
	pthread_mutex_init(&p->ap.lock, NULL);
	p->ap.applied = pos_none();
	p->sink = pgsink_new(r->o->src_ci, r->sink_name, &p->ts);
	p->so = (struct pgstream_opts){
	    .repl_conninfo = r->o->tgt_repl_ci,
	    .slot = r->o->slot,
	    .publication = r->o->publication,
	    .start_lsn = from,
	    .spool = p->spool,
	    .stop = &p->stop,
	    .prog = &p->sp,
	    .feedback_ms = 100,
	};
	p->ao = (struct apply_opts){
	    .spool = p->spool,
	    .sink = p->sink,
	    .stop = &p->stop,
	    .prog = &p->ap,
	    .batch_txns = r->o->batch_txns,
	    .batch_bytes = r->o->batch_bytes,
	    .batch_delay_ms = r->o->batch_delay_ms,
	    .ts = &p->ts,
	};
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
static void pipeline_error(struct pipeline *p, char *buf, size_t n)
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
		snprintf(buf, n, "reading the rehearsal slot: %s", p->sp.last_error);
	pthread_mutex_unlock(&p->sp.lock);
}

/*
 * Waits until the source's probe row is there with written_at = want (the
 * epoch as exact numeric text: the two servers' sessions may format times
 * differently), or with want NULL until it is gone.  False with err on an
 * error, a pipeline failure, stop or the timeout.
 */
static bool wait_source(struct rehearsal *r, struct pipeline *p, const char *want, struct err *err)
{
	const char *params[] = {r->token, want};
	int64_t deadline = now_mono_usec() + r->o->timeout_ms * 1000;
	char perr[600];
	for (;;) {
		PGresult *res = pgconn_query(&r->src,
					     "SELECT extract(epoch FROM written_at) = $2::numeric, "
					     "  extract(epoch FROM written_at)::text "
					     "FROM migd.rehearse_probe WHERE token = $1",
					     2, params, err);
		if (res == NULL)
			return false;
		bool there = PQntuples(res) == 1;
		bool same = there && want && PQgetvalue(res, 0, 0)[0] == 't';
		if (there && want && !same)
			err_set(err,
				"the probe row arrived changed: written_at %s, on the target %s",
				PQgetvalue(res, 0, 1), want);
		PQclear(res);
		if (there && want && !same)
			return false;
		if (want ? same : !there)
			return true;
		pipeline_error(p, perr, sizeof(perr));
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

static void run_probe(struct rehearsal *r)
{
	struct err err;
	uint64_t from = 0;
	char l[32];
	if (!pgconn_exec(&r->tgt, probe_table_sql, &err) || !create_publication(r, &err) ||
	    !create_slot(r, &from, &err)) {
		step(r, "rehearsal_slot", false, "%s", err.msg);
		skip(r, "probe_write", "skipped: no rehearsal slot");
		skip(r, "probe_replicated", "skipped: no rehearsal slot");
		return;
	}
	step(r, "rehearsal_slot", true, "slot %s (pgoutput) at %s and publication %s on the target",
	     r->o->slot, pos_lsn_format(from, l, sizeof(l)), r->o->publication);
	crash_point(r->o->crash_at, "rehearse-slot");

	struct pipeline p = {0};
	if (!pipeline_start(r, &p, from, &err)) {
		step(r, "probe_write", false, "%s", err.msg);
		skip(r, "probe_replicated", "skipped: the rehearsal pipeline did not start");
		return;
	}
	const char *params[] = {r->token, r->o->name};
	PGresult *res =
	    pgconn_query(&r->tgt,
			 "INSERT INTO migd.rehearse_probe (token, name) VALUES ($1, $2) "
			 "RETURNING extract(epoch FROM written_at)::text, "
			 "  pg_current_wal_lsn()::text",
			 2, params, &err);
	if (res == NULL) {
		step(r, "probe_write", false, "%s", err.msg);
		skip(r, "probe_replicated", "skipped: no probe row");
		pipeline_stop(&p);
		return;
	}
	char *written = xstrdup(PQgetvalue(res, 0, 0));
	step(r, "probe_write", true, "row %s written into the target's migd.rehearse_probe at %s",
	     r->token, PQgetvalue(res, 0, 1));
	PQclear(res);

	int64_t t0 = now_mono_usec();
	bool ok = wait_source(r, &p, written, &err);
	double row_s = (double)(now_mono_usec() - t0) / 1e6;
	t0 = now_mono_usec();
	ok = ok &&
	     pgconn_exec_params(&r->tgt, "DELETE FROM migd.rehearse_probe WHERE token = $1", 1,
				params, &err) &&
	     wait_source(r, &p, NULL, &err);
	double del_s = (double)(now_mono_usec() - t0) / 1e6;
	pipeline_stop(&p);
	if (ok)
		step(r, "probe_replicated", true,
		     "the row reached the source's migd.rehearse_probe in %.3f s and its delete in "
		     "%.3f s (slot, pgoutput decoder, spool, applier, PostgreSQL sink)",
		     row_s, del_s);
	else
		step(r, "probe_replicated", false, "%s", err.msg);
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

/*
 * Drops the slot once its reader is gone (a walsender notices a closed
 * connection a moment later); one that lingers for 2 s is ended: the slot
 * is ours and the rehearsal is over.
 */
static bool drop_slot(struct pgconn *c, const char *slot, bool *found, struct err *err)
{
	const char *p[] = {slot};
	for (int i = 0; i < 50; i++) {
		char *a = pgconn_query_value(
		    c,
		    "SELECT coalesce((SELECT active::text FROM pg_replication_slots "
		    "WHERE slot_name = $1), 'none')",
		    1, p, err);
		if (a == NULL)
			return false;
		bool gone = strcmp(a, "none") == 0, active = strcmp(a, "true") == 0;
		free(a);
		if (gone)
			return true;
		*found = true;
		if (!active) /* gone meanwhile (a concurrent cleanup) is fine too */
			return pgconn_exec_params(c,
						  "SELECT pg_drop_replication_slot(slot_name) "
						  "FROM pg_replication_slots WHERE slot_name = $1",
						  1, p, err);
		if (i == 20 && !pgconn_exec_params(c,
						   "SELECT pg_terminate_backend(active_pid) "
						   "FROM pg_replication_slots WHERE slot_name = $1",
						   1, p, err))
			return false;
		sleep_interruptible(100, NULL);
	}
	err_set(err, "%s: replication slot %s stays in use", c->label, slot);
	return false;
}

/* Deletes rows named name from each migd table that exists: table(s) NULL-terminated. */
static bool delete_named(struct pgconn *c, const char *name, const char *const *tables,
			 struct err *err)
{
	for (; *tables; tables++) {
		const char *t[] = {*tables}, *p[] = {name};
		char *sql = xasprintf("DELETE FROM %s WHERE name = $1", *tables);
		/* A missing table fails the statement that names it: ask first. */
		char *there =
		    pgconn_query_value(c, "SELECT to_regclass($1) IS NOT NULL", 1, t, err);
		bool ok =
		    there != NULL && (there[0] != 't' || pgconn_exec_params(c, sql, 1, p, err));
		free(there);
		free(sql);
		if (!ok)
			return false;
	}
	return true;
}

bool rehearse_drop_leftovers(struct pgconn *tgt, const char *name, const char *slot,
			     const char *publication, const char *spool_dir, bool *found,
			     struct err *err)
{
	static const char *const probe[] = {"migd.rehearse_probe", NULL};
	const char *p[] = {publication};
	*found = false;
	if (!drop_slot(tgt, slot, found, err))
		return false;
	char *have = pgconn_query_value(
	    tgt, "SELECT count(*) FROM pg_publication WHERE pubname = $1", 1, p, err);
	if (have == NULL)
		return false;
	bool pub = strcmp(have, "0") != 0;
	free(have);
	if (pub) {
		*found = true;
		char *id = pgconn_ident(publication);
		char *sql = xasprintf("DROP PUBLICATION IF EXISTS %s", id);
		bool ok = pgconn_exec(tgt, sql, err);
		free(sql);
		free(id);
		if (!ok)
			return false;
	}
	return delete_named(tgt, name, probe, err) && remove_dir(spool_dir, found, err);
}

static void cleanup(struct rehearsal *r, bool leftovers_at_start)
{
	static const char *const probe[] = {"migd.rehearse_probe", NULL};
	static const char *const sink_rows[] = {"migd.progress", "migd.failed_records",
						"migd.parked", NULL};
	const struct rehearse_opts *o = r->o;
	struct err err;
	bool found = false;
	bool ok = ensure(&r->tgt, "target", o->tgt_ci, &err) &&
		  rehearse_drop_leftovers(&r->tgt, o->name, o->slot, o->publication, o->spool_dir,
					  &found, &err) &&
		  ensure(&r->src, "source", o->src_ci, &err) &&
		  delete_named(&r->src, o->name, probe, &err) &&
		  delete_named(&r->src, r->sink_name, sink_rows, &err);
	if (ok)
		step(r, "cleanup", true,
		     "rehearsal slot and publication dropped, probe rows and the sink's state "
		     "removed "
		     "on both sides, scratch spool removed%s",
		     leftovers_at_start
			 ? " (and an earlier rehearsal's leftovers, found at the start)"
			 : "");
	else
		step(r, "cleanup", false, "%s (remove it by hand)", err.msg);
}

/* --- the run ------------------------------------------------------------------------- */

json_t *rehearse_run(const struct rehearse_opts *o)
{
	struct rehearsal r = {.o = o, .steps = json_array(), .t0 = now_mono_usec()};
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
	log_event(LOG_LVL_NOTICE, "rehearse", "status=started slot=%s", o->slot);

	bool leftovers = false;
	if (!pgconn_open(&r.tgt, "target", o->tgt_ci, &err)) {
		step(&r, "target_connection", false, "%s", err.msg);
	} else {
		/* First, so the free-slot count is honest after a rehearsal cut off by a crash. */
		if (!rehearse_drop_leftovers(&r.tgt, o->name, o->slot, o->publication, o->spool_dir,
					     &leftovers, &err))
			step(&r, "target_leftovers", false,
			     "an earlier rehearsal's slot or publication cannot be removed: %s",
			     err.msg);
		check_target(&r);
	}
	if (!pgconn_open(&r.src, "source", o->src_ci, &err))
		step(&r, "source_connection", false, "%s", err.msg);
	else
		check_source(&r);
	if (!r.failed) {
		run_probe(&r);
	} else {
		skip(&r, "rehearsal_slot", "skipped: a check above failed");
		skip(&r, "probe_write", "skipped: a check above failed");
		skip(&r, "probe_replicated", "skipped: a check above failed");
	}
	cleanup(&r, leftovers);
	pgconn_close(&r.src);
	pgconn_close(&r.tgt);
	double secs = (double)(now_mono_usec() - start) / 1e6;
	log_event(r.failed ? LOG_LVL_WARN : LOG_LVL_NOTICE, "rehearse", "status=%s seconds=%.3f",
		  r.failed ? "failed" : "passed", secs);
	return json_pack("{s:b, s:s, s:f, s:s, s:s, s:o}", "passed", !r.failed, "at", at, "seconds",
			 secs, "slot", o->slot, "publication", o->publication, "steps", r.steps);
}
