/*
 * myvalidate: validation of a MariaDB source against a PostgreSQL target
 * run the way migd runs it, without migd's pipeline, for
 * tests/integration/test_my_validate.sh (the backfill from a MariaDB
 * source may not be wired into the daemon yet; validation must not wait
 * for it).  CONF is a migd config: its [source] (MariaDB), [target],
 * [tables], [validation] and [invariant]/[query] sections are used.
 *
 *   myvalidate plan CONF CHUNK_ROWS
 *       The backfill ledger as migd plans it from a MariaDB source: each
 *       table cut with mysnap_next_boundary(), one migd.chunks row per
 *       chunk on the target (pgstore_init() creates the migd schema).
 *       Prints "<db.table>\t<chunks>" per table.
 *   myvalidate run CONF KINDS [--table T] [--since POS] [--keylog PATH]
 *                             [--applied-file FILE]
 *       Runs validate_thread() with the options migd would give it.  The
 *       applier is simulated by FILE: a position text; a fence counts as
 *       applied once pos_scalar() of FILE's position is at or past it (no
 *       FILE: always).  Prints the run's JSON (validate_run_json()) on
 *       stdout and, with FILE, on stderr "wait <fence scalar> <yes|no>"
 *       the first time each fence gets each answer.  Exit 0: passed; 5: differences;
 *       2: the run failed.
 *   myvalidate keylog PATH START_POS END_POS TABLE KEY...
 *       Appends one committed batch to the applier's key log with
 *       keylog.h's writer: start marker, the keys, the commit.
 *   myvalidate pgdigest CONNINFO SCHEMA.TABLE
 *       A PostgreSQL table's canonical digest two ways: "server R/S"
 *       (vside: md5 in SQL) and "copy R/S" (COPY (SELECT ...) TO STDOUT
 *       read here, each line taken back to its values and their digest
 *       text hashed client-side).  Exit 1 when they
 *       differ, with "row <line>" for each COPY line whose md5 the server
 *       did not produce.
 *   myvalidate mydigest DSN DB.TABLE
 *       A MariaDB table's canonical digest (vside: mysnap lines hashed
 *       client-side): "mariadb R/S".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "keylog.h"
#include "log.h"
#include "md5.h"
#include "mymeta.h"
#include "mysnap.h"
#include "pgconn.h"
#include "pgmeta.h"
#include "pgstore.h"
#include "util.h"
#include "validate.h"
#include "vside.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "myvalidate: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static struct migd_conf *load_conf(const char *path)
{
	struct migd_conf *c;
	char *errs = NULL;
	if (!conf_load(path, &c, &errs))
		die("%s", errs ? errs : "bad config");
	if (c->source.engine != ENGINE_MARIADB)
		die("%s: the source must be MariaDB", path);
	return c;
}

static void open_source(const struct migd_conf *c, struct myconn *my)
{
	struct err err;
	struct myconn_params p;
	if (!myconn_parse_dsn(c->source.dsn, c->source.password, &p, &err) ||
	    !myconn_open(my, "source", &p, &err))
		die("%s", err.msg);
	myconn_params_free(&p);
}

static void load_tables(const struct migd_conf *c, struct mig_tableset *ts)
{
	struct myconn my = {0};
	struct err err;
	open_source(c, &my);
	if (!mymeta_load_source(&my, c->tables_include, c->tables_exclude, c->tables_insert_only,
				ts, &err))
		die("%s", err.msg);
	myconn_close(&my);
}

static char *target_ci(const struct migd_conf *c)
{
	return pgconn_conninfo(c->target.dsn, c->target.password, "myvalidate", false);
}

/* --- plan ------------------------------------------------------------------------------ */

static int cmd_plan(const char *conf, long long chunk_rows)
{
	struct migd_conf *c = load_conf(conf);
	struct mig_tableset ts = {0};
	load_tables(c, &ts);
	struct myconn my = {0};
	struct pgconn pg = {0};
	struct err err;
	char *ci = target_ci(c);
	open_source(c, &my);
	if (!pgconn_open(&pg, "target", ci, &err) || !pgstore_init(&pg, &err))
		die("%s", err.msg);
	for (int i = 0; i < ts.n; i++) {
		const struct mig_table *t = &ts.t[i];
		char *tname = xasprintf("%s.%s", t->schema, t->name);
		char *prev = NULL;
		int no = 0;
		for (bool end = false; !end; no++) {
			char *b = mysnap_next_boundary(&my, t, prev, chunk_rows, &end, &err);
			if (b == NULL)
				die("%s", err.msg);
			char num[16];
			snprintf(num, sizeof(num), "%d", no);
			const char *params[] = {c->name, tname, num, prev, end ? NULL : b};
			if (!pgconn_exec_params(
				&pg,
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
	free(ci);
	pgconn_close(&pg);
	myconn_close(&my);
	tableset_free(&ts);
	conf_free(c);
	return 0;
}

/* --- run ------------------------------------------------------------------------------- */

struct applier {
	const char *file; /* NULL: everything is applied */
	uint64_t said_yes, said_no;
};

static bool applied_past(void *arg, uint64_t fence)
{
	struct applier *a = arg;
	bool yes = true;
	if (a->file != NULL) {
		FILE *f = fopen(a->file, "r");
		char buf[POS_TEXT_MAX] = "";
		if (f != NULL) {
			if (fgets(buf, sizeof(buf), f) == NULL)
				buf[0] = '\0';
			fclose(f);
		}
		buf[strcspn(buf, "\n")] = '\0';
		struct pos p;
		const char *perr;
		yes = *buf && pos_parse(buf, &p, &perr) && pos_scalar(&p) >= fence;
	}
	uint64_t *last = yes ? &a->said_yes : &a->said_no;
	if (a->file != NULL && *last != fence) {
		fprintf(stderr, "wait %llu %s\n", (unsigned long long)fence, yes ? "yes" : "no");
		*last = fence;
	}
	return yes;
}

static int cmd_run(int argc, char **argv)
{
	if (argc < 4)
		die("usage: myvalidate run CONF KINDS [options]");
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
	struct applier ap = {0};
	const char *table = NULL, *since = NULL;
	char *keylog = xasprintf("%s/touched-%s.log", c->state_dir, c->name);
	for (int i = 4; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--table") == 0)
			table = argv[i + 1];
		else if (strcmp(argv[i], "--since") == 0)
			since = argv[i + 1];
		else if (strcmp(argv[i], "--keylog") == 0) {
			free(keylog);
			keylog = xstrdup(argv[i + 1]);
		} else if (strcmp(argv[i], "--applied-file") == 0)
			ap.file = argv[i + 1];
		else
			die("unknown option %s", argv[i]);
	}
	struct pos since_pos = pos_none();
	const char *perr;
	if (since != NULL && !pos_parse(since, &since_pos, &perr))
		die("--since %s: %s", since, perr);
	struct mig_tableset ts = {0};
	load_tables(c, &ts);
	char *ci = target_ci(c);
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
	    .src_conninfo = c->source.dsn,
	    .src_password = c->source.password,
	    .tgt_conninfo = ci,
	    .ts = &ts,
	    .kinds = kinds,
	    .table = table,
	    .checks = c->checks,
	    .nchecks = c->nchecks,
	    .keylog_path = keylog,
	    .since = since_pos,
	    .rows_per_second = c->validation_rows_per_second,
	    .rechecks = c->validation_rechecks,
	    .recheck_wait_ms = c->validation_recheck_wait_ms,
	    .max_keys = c->validation_max_keys,
	    .stop = &stop,
	    .paused = &paused,
	    .applied_past = applied_past,
	    .arg = &ap,
	    .run = &run,
	};
	validate_thread(&o);
	json_t *j = validate_run_json(&run);
	char *s = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
	printf("%s\n", s);
	free(s);
	json_decref(j);
	int rc = strcmp(run.status, "done") != 0 ? 2 : run.mismatches > 0 ? 5 : 0;
	json_decref(run.results);
	pthread_mutex_destroy(&run.lock);
	tableset_free(&ts);
	free(ci);
	free(keylog);
	conf_free(c);
	return rc;
}

/* --- keylog ------------------------------------------------------------------------------ */

static int cmd_keylog(int argc, char **argv)
{
	if (argc < 7)
		die("usage: myvalidate keylog PATH START_POS END_POS TABLE KEY...");
	struct pos start, end;
	const char *perr;
	if (!pos_parse(argv[3], &start, &perr) || !pos_parse(argv[4], &end, &perr))
		die("bad position: %s", perr);
	struct keylog kl = {0};
	char *e = NULL;
	if (!keylog_open(&kl, argv[2], &start, &e))
		die("%s", e);
	for (int i = 6; i < argc; i++)
		keylog_key(&kl, argv[5], argv[i]);
	keylog_commit(&kl, &end);
	keylog_close(&kl);
	return 0;
}

/* --- digests ------------------------------------------------------------------------------ */

struct md5set {
	char **h; /* owned */
	size_t n, cap;
};

static void md5set_add(void *arg, const char *key, const char *md5)
{
	struct md5set *s = arg;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->h = xrealloc(s->h, s->cap * sizeof(char *));
	}
	s->h[s->n++] = xstrdup(md5);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A COPY TO line's digest text (vside.h): its fields split at tabs, \N as
 * NULL, COPY's escapes undone (COPY TO writes \\ and \b \f \n \r \t \v
 * only), then vside_digest_text() with t's plain columns.
 */
static void copy_digest_text(const struct mig_table *t, const char *line, size_t len,
			     struct change_buf *out)
{
	struct change_value *v = xcalloc((size_t)t->ncols + 1, sizeof(*v));
	bool *plain = xcalloc((size_t)t->ncols + 1, sizeof(bool));
	char *un = xmalloc(len + 1); /* the unescaped fields, one after another */
	size_t at = 0, o = 0;
	for (int i = 0; i < t->ncols; i++) {
		plain[i] = vside_text_is_plain(t->cols[i].type_oid);
		size_t end = at;
		while (end < len && line[end] != '\t')
			end++;
		if (end - at == 2 && line[at] == '\\' && line[at + 1] == 'N') {
			v[i].kind = CHV_NULL;
		} else {
			size_t start = o;
			for (size_t k = at; k < end; k++) {
				char c = line[k];
				if (c == '\\' && k + 1 < end) {
					static const char from[] = "bfnrtv", to[] = "\b\f\n\r\t\v";
					const char *e = strchr(from, line[++k]);
					c = e ? to[e - from] : line[k];
				}
				un[o++] = c;
			}
			v[i] = (struct change_value){
			    .kind = CHV_TEXT, .data = un + start, .len = (uint32_t)(o - start)};
		}
		at = end + 1;
	}
	struct change_tuple tu = {(uint16_t)t->ncols, v};
	out->len = 0;
	if (!vside_digest_text(out, &tu, plain))
		die("BUG: a COPY field that is not text");
	free(un);
	free(plain);
	free(v);
}

static int cmd_pgdigest(const char *ci, const char *qualified)
{
	struct vside s = {.engine = ENGINE_POSTGRESQL, .conninfo = ci};
	struct err err;
	const char *dot = strchr(qualified, '.');
	if (dot == NULL)
		die("want SCHEMA.TABLE");
	char *schema = xasprintf("%.*s", (int)(dot - qualified), qualified);
	struct mig_tableset ts = {0};
	if (!vside_ensure(&s, &err) || !pgmeta_load_table(&s.pg, schema, dot + 1, &ts, &err))
		die("%s", err.msg);
	const struct mig_table *t = &ts.t[0];
	struct vsel all = {0};
	struct vdigest server, copy = {0};
	struct md5set rows = {0};
	if (!vside_digest(&s, t, &all, &server, &err) ||
	    !vside_hashes(&s, t, &all, md5set_add, &rows, &err))
		die("%s", err.msg);
	qsort(rows.h, rows.n, sizeof(char *), cmp_str);

	char *cols = table_column_list(t);
	char *sql = xasprintf("COPY (SELECT %s FROM %s) TO STDOUT", cols, t->qname);
	PGresult *r = PQexec(s.pg.conn, sql);
	if (PQresultStatus(r) != PGRES_COPY_OUT)
		die("%s: %s", sql, PQerrorMessage(s.pg.conn));
	PQclear(r);
	char *line;
	int n, bad = 0;
	struct change_buf text = {0};
	while ((n = PQgetCopyData(s.pg.conn, &line, 0)) > 0) {
		size_t len = (size_t)n - (n > 0 && line[n - 1] == '\n');
		copy_digest_text(t, line, len, &text);
		vdigest_add(&copy, text.data, text.len);
		uint8_t d[16];
		char hex[33], *key = hex;
		md5_buf(line, len, d);
		md5_hex(d, hex);
		if (bsearch(&key, rows.h, rows.n, sizeof(char *), cmp_str) == NULL) {
			printf("row %.*s\n", (int)len, line);
			bad++;
		}
		PQfreemem(line);
	}
	change_buf_free(&text);
	if (n == -2)
		die("COPY: %s", PQerrorMessage(s.pg.conn));
	while ((r = PQgetResult(s.pg.conn)) != NULL)
		PQclear(r);
	char a[64], b[64];
	printf("server %s\ncopy %s\n", vdigest_format(&server, a, sizeof(a)),
	       vdigest_format(&copy, b, sizeof(b)));
	for (size_t i = 0; i < rows.n; i++)
		free(rows.h[i]);
	free(rows.h);
	free(sql);
	free(cols);
	free(schema);
	tableset_free(&ts);
	vside_close(&s);
	return bad == 0 && strcmp(a, b) == 0 ? 0 : 1;
}

static int cmd_mydigest(const char *dsn, const char *qualified)
{
	struct vside s = {.engine = ENGINE_MARIADB, .conninfo = dsn};
	struct err err;
	struct mig_tableset ts = {0};
	if (!vside_ensure(&s, &err) || !mymeta_load_source(&s.my, qualified, NULL, NULL, &ts, &err))
		die("%s", err.msg);
	if (ts.n != 1)
		die("%s: %d tables match", qualified, ts.n);
	struct vsel all = {0};
	struct vdigest d;
	if (!vside_digest(&s, &ts.t[0], &all, &d, &err))
		die("%s", err.msg);
	char a[64];
	printf("mariadb %s\n", vdigest_format(&d, a, sizeof(a)));
	tableset_free(&ts);
	vside_close(&s);
	return 0;
}

int main(int argc, char **argv)
{
	log_init(LOG_LVL_WARN);
	if (argc >= 4 && strcmp(argv[1], "plan") == 0)
		return cmd_plan(argv[2], atoll(argv[3]));
	if (argc >= 4 && strcmp(argv[1], "run") == 0)
		return cmd_run(argc, argv);
	if (argc >= 7 && strcmp(argv[1], "keylog") == 0)
		return cmd_keylog(argc, argv);
	if (argc == 4 && strcmp(argv[1], "pgdigest") == 0)
		return cmd_pgdigest(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "mydigest") == 0)
		return cmd_mydigest(argv[2], argv[3]);
	die("usage: myvalidate plan|run|keylog|pgdigest|mydigest ...");
}
