/*
 * bfdrive: migd's backfill (backfill_plan + backfill_run) between a source
 * and a target of any engines, without the daemon's pipeline -- for
 * tests/integration/test_my_my_backfill.sh and bench/my_my_backfill.sh,
 * so the backfill into MySQL/MariaDB is tested before the coordinator
 * drives it.
 *
 *   bfdrive [options] SRC_ENGINE SRC_CONNINFO TGT_ENGINE TGT_CONNINFO INCLUDE
 *
 * Engines: postgresql, mariadb, mysql.  Conninfo: libpq's, or myconn's
 * dsn with its password (myconn.h).  INCLUDE: the [tables] include list
 * ("test.*").  Options:
 *   --name NAME          migration name, the ledger's key (default bf)
 *   --parallel N         workers (default 2)
 *   --chunk-rows N       rows per chunk (default 1000)
 *   --defer-indexes      [backfill] defer_indexes
 *   --exclude LIST       [tables] exclude
 *   --insert-only LIST   [tables] insert_only
 *   --source-pos POS     the position failed records carry (default "none")
 *   --max-attempts N     per chunk (default 3)
 *
 * Creates the target's migd state if missing (store_init), plans the
 * tables not planned yet, copies every pending chunk.  Prints
 * "chunks=N done=N failed=N rows=N" from the ledger; exit 0 when the
 * backfill is durably complete, 1 with the error on stderr, 2 on usage.
 * No exported snapshot: each chunk reads current data (a restart's case).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "log.h"
#include "mymeta.h"
#include "pgmeta.h"
#include "store.h"
#include "util.h"

static bool parse_engine(const char *s, enum migd_engine *e)
{
	for (int i = 0; i < ENGINE__MAX; i++)
		if (strcmp(s, engine_name((enum migd_engine)i)) == 0) {
			*e = (enum migd_engine)i;
			return true;
		}
	return false;
}

static void usage(void)
{
	fprintf(stderr, "usage: bfdrive [--name N] [--parallel N] [--chunk-rows N] "
			"[--defer-indexes] [--exclude L] [--insert-only L] [--source-pos P] "
			"[--max-attempts N] SRC_ENGINE SRC_CONNINFO TGT_ENGINE TGT_CONNINFO "
			"INCLUDE\n");
	exit(2);
}

static bool load_tables(enum migd_engine e, const char *conninfo, const char *include,
			const char *exclude, const char *insert_only, struct mig_tableset *ts,
			struct err *err)
{
	bool ok;
	if (e == ENGINE_POSTGRESQL) {
		struct pgconn c = {0};
		ok = pgconn_open(&c, "source", conninfo, err) &&
		     pgmeta_load_source(&c, include, exclude, insert_only, ts, err);
		pgconn_close(&c);
	} else {
		struct myconn c = {0};
		ok = myconn_open_dsn(&c, "source", conninfo, err) &&
		     mymeta_load_source(&c, include, exclude, insert_only, ts, err);
		myconn_close(&c);
	}
	return ok;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"parallel", required_argument, NULL, 'p'},
	    {"chunk-rows", required_argument, NULL, 'c'},
	    {"defer-indexes", no_argument, NULL, 'd'},
	    {"exclude", required_argument, NULL, 'x'},
	    {"insert-only", required_argument, NULL, 'i'},
	    {"source-pos", required_argument, NULL, 's'},
	    {"max-attempts", required_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0},
	};
	const char *name = "bf", *exclude = NULL, *insert_only = NULL, *source_pos = "none";
	int parallel = 2, max_attempts = 3, ch;
	long long chunk_rows = 1000;
	bool defer = false;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			name = optarg;
			break;
		case 'p':
			parallel = atoi(optarg);
			break;
		case 'c':
			chunk_rows = atoll(optarg);
			break;
		case 'd':
			defer = true;
			break;
		case 'x':
			exclude = optarg;
			break;
		case 'i':
			insert_only = optarg;
			break;
		case 's':
			source_pos = optarg;
			break;
		case 'a':
			max_attempts = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	enum migd_engine se, te;
	if (argc - optind != 5 || !parse_engine(argv[optind], &se) ||
	    !parse_engine(argv[optind + 2], &te) || parallel < 1 || chunk_rows < 1)
		usage();
	const char *src_ci = argv[optind + 1], *tgt_ci = argv[optind + 3];
	log_init(LOG_LVL_NOTICE);

	struct err err = {{0}};
	struct mig_tableset ts = {0};
	struct store st = {.engine = te, .conninfo = tgt_ci};
	struct backfill_progress prog = {0};
	pthread_mutex_init(&prog.lock, NULL);
	volatile bool stop = false, paused = false;
	struct backfill_opts o = {
	    .name = name,
	    .src_conninfo = src_ci,
	    .src_mariadb = se != ENGINE_POSTGRESQL,
	    .source_pos = source_pos,
	    .tgt_engine = te,
	    .tgt_conninfo = tgt_ci,
	    .parallel = parallel,
	    .chunk_rows = chunk_rows,
	    .ts = &ts,
	    .stop = &stop,
	    .paused = &paused,
	    .max_attempts = max_attempts,
	    .defer_indexes = defer,
	};
	struct bfsource plan = {.mariadb = o.src_mariadb, .conninfo = src_ci};
	bool ok = load_tables(se, src_ci, argv[optind + 4], exclude, insert_only, &ts, &err) &&
		  store_ensure(&st, "target", &err) && store_init(&st, &err) &&
		  bfsource_ensure(&plan, &stop, &err) && backfill_plan(&plan, &st, &o, &prog, &err);
	bfsource_close(&plan);
	ok = ok && backfill_run(&o, &prog, &err);
	struct err e2;
	if (backfill_load_totals(&st, name, &prog, &e2))
		printf("chunks=%lld done=%lld failed=%lld rows=%lld\n",
		       (long long)prog.chunks_total, (long long)prog.chunks_done,
		       (long long)prog.chunks_failed, (long long)prog.rows_done);
	if (!ok)
		fprintf(stderr, "bfdrive: %s\n", err.msg);
	store_close(&st);
	tableset_free(&ts);
	pthread_mutex_destroy(&prog.lock);
	return ok ? 0 : 1;
}
