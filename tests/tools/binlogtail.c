/*
 * binlogtail: runs migd's binlog reader (mystream) against a MariaDB for a
 * while and prints what it spooled, one event per line, for tests.
 *
 *   binlogtail DSN SPOOLDIR SECONDS TABLE COLSPEC [START]
 *
 * TABLE is db.name; COLSPEC is "col:oid[:key],..." (the captured shape,
 * as mymeta would give it).  START is a position text; without it the
 * reader starts at a consistent snapshot taken first (mycapture).
 * Output: "begin <final>", "insert|update|delete <relid> <vals...>",
 * "relation <schema>.<name> ncols [problem]", "truncate", "commit <end>".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mycapture.h"
#include "myconn.h"
#include "mystream.h"
#include "spool.h"
#include "tables.h"
#include "util.h"

static void print_tuple(const struct change_tuple *t)
{
	for (uint16_t i = 0; i < t->ncols; i++) {
		const struct change_value *v = &t->vals[i];
		if (v->kind == CHV_NULL)
			printf(" NULL");
		else if (v->kind == CHV_UNCHANGED)
			printf(" UNCHANGED");
		else if (v->kind == CHV_BAD)
			printf(" BAD(%.*s)", (int)v->len, v->data);
		else
			printf(" '%.*s'", (int)v->len, v->data);
	}
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr,
			"usage: binlogtail DSN SPOOLDIR SECONDS DB.TABLE COLSPEC [START]\n");
		return 2;
	}
	struct mig_tableset ts = {.n = 1, .t = xcalloc(2, sizeof(struct mig_table))};
	struct mig_table *t = &ts.t[0];
	char *dot = strchr(argv[4], '.');
	t->schema = xasprintf("%.*s", (int)(dot - argv[4]), argv[4]);
	t->name = xstrdup(dot + 1);
	t->qname = xasprintf("`%s`.`%s`", t->schema, t->name);
	t->tgt_qname = xstrdup(t->qname);
	t->cols = xcalloc(64, sizeof(*t->cols));
	t->key_idx = xcalloc(64, sizeof(int));
	char *spec = xstrdup(argv[5]), *save = NULL;
	for (char *c = strtok_r(spec, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
		struct mig_column *col = &t->cols[t->ncols];
		char *p1 = strchr(c, ':');
		*p1 = '\0';
		col->name = xstrdup(c);
		col->type_oid = (uint32_t)strtoul(p1 + 1, NULL, 10);
		col->type = xasprintf("oid %u", col->type_oid);
		if (strstr(p1 + 1, ":key")) {
			col->key_pos = t->nkey + 1;
			t->key_idx[t->nkey++] = t->ncols;
		}
		t->ncols++;
	}
	free(spec);

	struct err err;
	struct pos start;
	struct myconn snap = {0};
	if (argc > 6) {
		const char *e;
		if (!pos_parse(argv[6], &start, &e)) {
			fprintf(stderr, "bad START: %s\n", e);
			return 2;
		}
	} else if (!myconn_open_dsn(&snap, "source", argv[1], &err) ||
		   !mycapture_check(&snap, 1234567, NULL, &err) ||
		   !mycapture_snapshot(&snap, &start, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	char buf[POS_TEXT_MAX];
	fprintf(stderr, "binlogtail: start %s\n", pos_format(&start, buf, sizeof(buf)));

	struct spool *sp;
	char *e = NULL;
	if (!spool_open(argv[2], NULL, &sp, &e)) {
		fprintf(stderr, "%s\n", e);
		return 1;
	}
	volatile bool stop = false;
	struct stream_progress prog = {0};
	pthread_mutex_init(&prog.lock, NULL);
	struct mystream_opts o = {.dsn = argv[1],
				  .server_id = 1234567,
				  .start = start,
				  .ts = &ts,
				  .spool = sp,
				  .stop = &stop,
				  .prog = &prog};
	pthread_t th;
	pthread_create(&th, NULL, mystream_thread, &o);
	sleep((unsigned)atoi(argv[3]));
	stop = true;
	pthread_join(th, NULL);
	myconn_close(&snap);
	if (prog.last_error[0])
		fprintf(stderr, "binlogtail: last stream error: %s\n", prog.last_error);

	struct spool_reader *rd;
	if (!spool_reader_open(sp, &rd, &e)) {
		fprintf(stderr, "%s\n", e);
		return 1;
	}
	struct change_event ev;
	int n;
	while ((n = spool_reader_next(rd, &ev, 0, &e)) == 1) {
		switch (ev.kind) {
		case CHG_BEGIN:
			printf("begin %s\n", pos_format(&ev.begin.final_pos, buf, sizeof(buf)));
			break;
		case CHG_COMMIT:
			printf("commit %s\n", pos_format(&ev.commit.end_pos, buf, sizeof(buf)));
			break;
		case CHG_RELATION:
			printf("relation %s.%s %u%s%s\n", ev.rel.schema, ev.rel.name, ev.rel.ncols,
			       ev.rel.problem ? " problem: " : "",
			       ev.rel.problem ? ev.rel.problem : "");
			break;
		case CHG_TRUNCATE:
			printf("truncate\n");
			break;
		default:
			printf("%s", change_kind_name(ev.kind));
			if (ev.row.old_kind) {
				printf(" old");
				print_tuple(&ev.row.old_tuple);
				printf(" new");
			}
			print_tuple(&ev.row.new_tuple);
			printf("\n");
		}
	}
	if (n < 0) {
		fprintf(stderr, "%s\n", e);
		return 1;
	}
	spool_reader_close(rd);
	spool_close(sp);
	tableset_free(&ts);
	return 0;
}
