/*
 * vbench: migd's validation driven directly, for bench/validate.sh: the
 * same validate_thread() that `migctl validate` starts in migd, without a
 * migration around it (no slot, no applier, no control socket), so what is
 * timed is validation alone.  Any source engine migd has (PostgreSQL or
 * MariaDB), a PostgreSQL target.  CONF is a migd config: its [source],
 * [target], [tables] and [validation] sections are used.
 *
 *   vbench plan CONF CHUNK_ROWS
 *       The backfill ledger as migd's backfill plans it
 *       (bfsource_next_boundary(): a boundary every CHUNK_ROWS keys), one
 *       migd.chunks row per chunk on the target, marked done; checksum
 *       validation compares per ledger range.  Replaces an earlier plan of
 *       the same migration.  Prints "<schema.table>\t<chunks>" per table.
 *   vbench run CONF KINDS [--table T]
 *       Runs validate_thread() as migd would, with an applier that has
 *       always applied everything (the data is at rest: no fence waits).
 *       Prints the run's JSON (validate_run_json()) and, on stderr,
 *       "seconds <wall seconds of the run>".  Exit 0: passed; 5:
 *       differences; 2: the run failed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfsource.h"
#include "conf.h"
#include "log.h"
#include "mymeta.h"
#include "pgconn.h"
#include "pgmeta.h"
#include "pgstore.h"
#include "util.h"
#include "validate.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "vbench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static bool binlog_source(const struct migd_conf *c)
{
	return c->source.engine != ENGINE_POSTGRESQL;
}

/* The source's conninfo as validation and backfill take it (caller frees). */
static char *source_ci(const struct migd_conf *c)
{
	return binlog_source(c)
		   ? xstrdup(c->source.dsn)
		   : pgconn_conninfo(c->source.dsn, c->source.password, "vbench", false);
}

/* The migrated tables as migd loads them, checked against the target. */
static void load_tables(const struct migd_conf *c, struct pgconn *tgt, struct mig_tableset *ts)
{
	struct err err;
	bool ok;
	if (binlog_source(c)) {
		struct myconn my = {0};
		ok = myconn_open_dsn(&my, "source", c->source.dsn, &err) &&
		     mymeta_load_source(&my, c->tables_include, c->tables_exclude,
					c->tables_insert_only, ts, &err);
		myconn_close(&my);
	} else {
		struct pgconn pg = {0};
		char *ci = source_ci(c);
		ok = pgconn_open(&pg, "source", ci, &err) &&
		     pgmeta_load_source(&pg, c->tables_include, c->tables_exclude,
					c->tables_insert_only, ts, &err);
		pgconn_close(&pg);
		free(ci);
	}
	if (!ok || !pgstore_init(tgt, &err) || !pgmeta_check_target(tgt, c->name, ts, &err))
		die("%s", err.msg);
}

static struct migd_conf *load_conf(const char *path)
{
	struct migd_conf *c;
	char *errs = NULL;
	if (!conf_load(path, &c, &errs))
		die("%s", errs ? errs : "bad config");
	return c;
}

static void open_target(const struct migd_conf *c, struct pgconn *tgt, char **ci)
{
	struct err err;
	*ci = pgconn_conninfo(c->target.dsn, c->target.password, "vbench", false);
	if (!pgconn_open(tgt, "target", *ci, &err))
		die("%s", err.msg);
}

static int cmd_plan(const char *conf, long long chunk_rows)
{
	struct migd_conf *c = load_conf(conf);
	struct pgconn tgt = {0};
	struct mig_tableset ts = {0};
	struct err err;
	char *tci, *sci = source_ci(c);
	open_target(c, &tgt, &tci);
	load_tables(c, &tgt, &ts);
	struct bfsource src = {.mariadb = binlog_source(c), .conninfo = sci};
	volatile bool stop = false;
	const char *name[] = {c->name};
	if (!bfsource_ensure(&src, &stop, &err) ||
	    !pgconn_exec_params(&tgt, "DELETE FROM migd.chunks WHERE name = $1", 1, name, &err))
		die("%s", err.msg);
	for (int i = 0; i < ts.n; i++) {
		const struct mig_table *t = &ts.t[i];
		char *tname = xasprintf("%s.%s", t->schema, t->name);
		char *prev = NULL;
		int no = 0;
		for (bool end = false; !end; no++) {
			char *b = bfsource_next_boundary(&src, t, prev, chunk_rows, &end, &err);
			if (b == NULL)
				die("%s", err.msg);
			char num[16];
			snprintf(num, sizeof(num), "%d", no);
			const char *params[] = {c->name, tname, num, prev, end ? NULL : b};
			if (!pgconn_exec_params(
				&tgt,
				"INSERT INTO migd.chunks (name, table_name, chunk_no, "
				"lo, hi, state, transform_version) VALUES ($1, $2, "
				"$3, $4, $5, 'done', 1)",
				5, params, &err))
				die("%s", err.msg);
			free(prev);
			prev = b;
		}
		free(prev);
		printf("%s\t%d\n", tname, no);
		free(tname);
	}
	bfsource_close(&src);
	pgconn_close(&tgt);
	tableset_free(&ts);
	free(sci);
	free(tci);
	conf_free(c);
	return 0;
}

static bool all_applied(void *arg, uint64_t fence)
{
	(void)arg;
	(void)fence;
	return true;
}

static int cmd_run(int argc, char **argv)
{
	struct migd_conf *c = load_conf(argv[2]);
	unsigned kinds = 0;
	char *ks = xstrdup(argv[3]), *save = NULL;
	for (char *k = strtok_r(ks, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		unsigned one = validate_kind_parse(k);
		if (one == 0)
			die("unknown kind %s", k);
		kinds |= one;
	}
	free(ks);
	const char *table = NULL;
	for (int i = 4; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--table") == 0)
			table = argv[i + 1];
		else
			die("unknown option %s", argv[i]);
	}
	struct pgconn tgt = {0};
	struct mig_tableset ts = {0};
	char *tci, *sci = source_ci(c);
	open_target(c, &tgt, &tci);
	load_tables(c, &tgt, &ts);
	pgconn_close(&tgt);
	volatile bool stop = false, paused = false;
	struct validate_run run = {.results = json_array(),
				   .started_mono_us = now_mono_usec(),
				   .started_wall_us = now_wall_usec()};
	pthread_mutex_init(&run.lock, NULL);
	snprintf(run.status, sizeof(run.status), "running");
	run.kinds = kinds;
	struct validate_opts o = {
	    .name = c->name,
	    .src_engine = (enum migd_engine)c->source.engine,
	    .src_conninfo = sci,
	    .src_password = binlog_source(c) ? c->source.password : NULL,
	    .tgt_conninfo = tci,
	    .ts = &ts,
	    .kinds = kinds,
	    .table = table,
	    .checks = c->checks,
	    .nchecks = c->nchecks,
	    .rows_per_second = c->validation_rows_per_second,
	    .rechecks = c->validation_rechecks,
	    .recheck_wait_ms = c->validation_recheck_wait_ms,
	    .max_keys = c->validation_max_keys,
	    .stop = &stop,
	    .paused = &paused,
	    .applied_past = all_applied,
	    .run = &run,
	};
	int64_t t0 = now_mono_usec();
	validate_thread(&o);
	fprintf(stderr, "seconds %.3f\n", (double)(now_mono_usec() - t0) / 1e6);
	json_t *j = validate_run_json(&run);
	char *s = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
	printf("%s\n", s);
	free(s);
	json_decref(j);
	int rc = strcmp(run.status, "done") != 0 ? 2 : run.mismatches > 0 ? 5 : 0;
	json_decref(run.results);
	pthread_mutex_destroy(&run.lock);
	tableset_free(&ts);
	free(sci);
	free(tci);
	conf_free(c);
	return rc;
}

int main(int argc, char **argv)
{
	log_init(LOG_LVL_WARN);
	if (argc == 4 && strcmp(argv[1], "plan") == 0)
		return cmd_plan(argv[2], atoll(argv[3]));
	if (argc >= 4 && strcmp(argv[1], "run") == 0)
		return cmd_run(argc, argv);
	die("usage: vbench plan CONF CHUNK_ROWS | vbench run CONF KINDS [--table T]");
}
