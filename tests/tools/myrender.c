/*
 * myrender: the snapshot reader (mysnap) and the binlog decoder
 * (binlog_rows) side by side on one MariaDB table, for
 * tests/integration/test_my_types.sh.
 *
 *   myrender ddl DSN DB.TABLE
 *       The PostgreSQL DDL of the mapped table (mymeta's types; text key
 *       columns COLLATE "C", as docs/type-mapping.md asks of a target).
 *   myrender snap DSN DB.TABLE
 *       The table's COPY lines from mysnap_copy_range(), as they are.
 *   myrender compare DSN DB.TABLE BINLOG_FILE START END
 *       (a) reads the whole table with mysnap_copy_range() and prints
 *           "snap\t<COPY line>" per row (the exact bytes the backfill would
 *           COPY), or "snap-error\t<message>" when it refuses the range;
 *       (b) reads the table again value by value (mysnap_rows) and the
 *           WRITE_ROWS events of the table between START and END of
 *           BINLOG_FILE (libmariadb's mariadb_rpl_* transport, decoded
 *           with binlog_tablemap_parse() / binlog_rows_next(), UUID/INET
 *           columns marked from the schema), and prints "binlog\t<COPY
 *           line>" per binlog row and "bad\t<side>\t<key>\t<column>\t
 *           <status>\t<text>" per value whose status is not ok;
 *       then compares the two value by value, row by row (matched by
 *       key): kind, text and status.  Every difference is a line
 *       "mismatch\t<key>\t<column>\tsnap=<status>:<text>\tbinlog=..." or
 *       "missing\t<key>\t<side>"; the last line is "compared rows=R
 *       values=V mismatches=M".  Exit 0 when they agree, 1 when not, 2 on
 *       errors.  Only WRITE rows are read: the workload must only insert.
 *   myrender chunks DSN DB.TABLE CHUNK_ROWS
 *       Plans the table like the backfill (mysnap_next_boundary() from
 *       the start) and copies every chunk (mysnap_copy_range()); prints
 *       "chunk\t<rows>\t<PostgreSQL predicate>" per chunk (the predicate
 *       is keyrange_pred(), what the target's range DELETE uses; it is
 *       last because key literals may hold tabs), then "total\t<rows>".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mysql.h>
#include <mariadb_rpl.h>

#include "binlog_rows.h"
#include "keyrange.h"
#include "myconn.h"
#include "mymeta.h"
#include "mysnap.h"
#include "pgconn.h"
#include "util.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "myrender: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* One side's copy of a row: its values, texts and statuses (owned). */
struct xrow {
	char *key;
	int n;
	char *kind; /* CHV_* per value */
	char **text;
	uint32_t *len;
	uint8_t *status;
	bool matched;
};

struct rowset {
	struct xrow *r;
	int n, cap;
};

static void keep_row(struct rowset *s, const struct mig_table *t, const struct change_tuple *tu,
		     const uint8_t *status)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->r = xrealloc(s->r, (size_t)s->cap * sizeof(*s->r));
	}
	struct xrow *x = &s->r[s->n++];
	memset(x, 0, sizeof(*x));
	x->key = mysnap_tuple_key(t, tu);
	x->n = tu->ncols;
	x->kind = xcalloc((size_t)x->n + 1, 1);
	x->text = xcalloc((size_t)x->n + 1, sizeof(char *));
	x->len = xcalloc((size_t)x->n + 1, sizeof(uint32_t));
	x->status = xcalloc((size_t)x->n + 1, 1);
	for (int i = 0; i < x->n; i++) {
		x->kind[i] = (char)tu->vals[i].kind;
		x->status[i] = status[i];
		if (tu->vals[i].kind == CHV_TEXT) {
			x->text[i] = xmalloc(tu->vals[i].len + 1);
			memcpy(x->text[i], tu->vals[i].data, tu->vals[i].len);
			x->text[i][tu->vals[i].len] = '\0';
			x->len[i] = tu->vals[i].len;
		}
	}
}

static void print_line(const char *tag, const struct change_tuple *tu)
{
	struct change_buf b = {0};
	if (!mysnap_copy_line(&b, tu))
		die("a row with an absent value");
	printf("%s\t%.*s", tag, (int)b.len, (const char *)b.data);
	change_buf_free(&b);
}

static void print_bad(const char *side, const struct mig_table *t, const struct change_tuple *tu,
		      const uint8_t *status)
{
	char *key = NULL;
	for (int i = 0; i < tu->ncols; i++) {
		if (status[i] == BINLOG_VAL_OK)
			continue;
		if (key == NULL)
			key = mysnap_tuple_key(t, tu);
		const struct change_value *v = &tu->vals[i];
		printf("bad\t%s\t%s\t%s\t%s\t%.*s\n", side, key, t->cols[i].name,
		       binlog_value_status_name(status[i]), v->kind == CHV_TEXT ? (int)v->len : 2,
		       v->kind == CHV_TEXT ? v->data : "\\N");
	}
	free(key);
}

/* arg: the prefix of each line */
static bool print_copy_line(void *arg, const char *buf, size_t len)
{
	printf("%s%.*s", (const char *)arg, (int)len, buf);
	return true;
}

static const struct mig_table *load_table(struct myconn *c, const char *name,
					  struct mig_tableset *ts)
{
	struct err err;
	if (!mymeta_load_source(c, name, NULL, NULL, ts, &err))
		die("%s", err.msg);
	if (ts->n != 1)
		die("%s: %d tables match", name, ts->n);
	return &ts->t[0];
}

/* --- the binlog side ------------------------------------------------------------ */

/* A TABLE_MAP of t? (libmariadb's names: other tables' maps are not ours to judge) */
static bool is_ours(const MARIADB_RPL_EVENT *ev, const struct mig_table *t)
{
	const MARIADB_STRING *db = &ev->event.table_map.database;
	const MARIADB_STRING *tn = &ev->event.table_map.table;
	return db->length == strlen(t->schema) && tn->length == strlen(t->name) &&
	       memcmp(db->str, t->schema, db->length) == 0 &&
	       memcmp(tn->str, t->name, tn->length) == 0;
}

/* map[i]: the binlog column of t's column i, by name; marks UUID/INET columns. */
static void map_columns(struct binlog_tablemap *tm, const struct mig_table *t, int *map)
{
	for (int i = 0; i < t->ncols; i++) {
		map[i] = -1;
		for (uint32_t j = 0; j < tm->ncols; j++)
			if (tm->cols[j].name && strcmp(tm->cols[j].name, t->cols[i].name) == 0)
				map[i] = (int)j;
		if (map[i] < 0)
			die("binlog has no column %s", t->cols[i].name);
		tm->cols[map[i]].ext = (enum binlog_ext_type)t->cols[i].src_ext;
	}
}

static void read_binlog(struct myconn *c, const struct mig_table *t, const char *file,
			unsigned long start, unsigned long end, struct rowset *out)
{
	struct err err;
	if (!myconn_exec(c,
			 "SET @master_binlog_checksum = @@global.binlog_checksum, "
			 "@mariadb_slave_capability = 4",
			 &err))
		die("%s", err.msg);
	MARIADB_RPL *rpl = mariadb_rpl_init(c->db);
	if (rpl == NULL)
		die("mariadb_rpl_init failed");
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, file, strlen(file));
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, start);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID, 900000 + (unsigned)getpid() % 90000);
	mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS, MARIADB_RPL_BINLOG_DUMP_NON_BLOCK);
	if (mariadb_rpl_open(rpl) != 0)
		die("mariadb_rpl_open: %s", mysql_error(c->db));

	struct binlog_tablemap tm = {0};
	bool have_map = false, checksum = false;
	int *map = xcalloc((size_t)t->ncols + 1, sizeof(int)); /* mig column -> binlog column */
	struct change_value *vals = xcalloc((size_t)t->ncols + 1, sizeof(*vals));
	uint8_t *status = xcalloc((size_t)t->ncols + 1, 1);
	struct binlog_rows it = {0};
	struct change_buf buf = {0};
	MARIADB_RPL_EVENT *ev = NULL;
	const char *e = NULL;
	while ((ev = mariadb_rpl_fetch(rpl, ev)) != NULL) {
		/* raw_data: the OK byte, the 19-byte header, the body, the CRC32 */
		if (ev->event_type == FORMAT_DESCRIPTION_EVENT && ev->raw_data_size >= 24)
			checksum = ev->raw_data[ev->raw_data_size - 5] == 1;
		if (ev->raw_data_size != (size_t)ev->event_length + 1 || ev->event_length < 19)
			die("unexpected event framing");
		const uint8_t *body = ev->raw_data + 1 + 19;
		size_t len = ev->event_length - 19 - (checksum ? 4 : 0);
		if (ev->event_type == BINLOG_TABLE_MAP_EVENT && is_ours(ev, t)) {
			binlog_tablemap_free(&tm);
			if (!binlog_tablemap_parse(body, len, BINLOG_MARIADB, &tm, &e))
				die("TABLE_MAP: %s", e);
			map_columns(&tm, t, map);
			have_map = true;
		} else if (binlog_is_rows_event((uint8_t)ev->event_type) && have_map) {
			if (!binlog_rows_open(&it, (uint8_t)ev->event_type, body, len, &e))
				die("ROWS: %s", e);
			if (it.table_id == tm.table_id) {
				if (it.kind != BINLOG_ROWS_WRITE)
					die("only inserts expected in the binlog range");
				if (!it.full_image)
					die("row image not FULL");
				struct binlog_row row;
				enum binlog_next nx;
				while ((nx = binlog_rows_next(&it, &tm, &buf, &row, &e)) ==
				       BINLOG_NEXT_ROW) {
					struct change_tuple tu = {(uint16_t)t->ncols, vals};
					for (int i = 0; i < t->ncols; i++) {
						vals[i] = row.after.tuple.vals[map[i]];
						status[i] = row.after.status[map[i]];
					}
					print_line("binlog", &tu);
					print_bad("binlog", t, &tu, status);
					keep_row(out, t, &tu, status);
				}
				if (nx == BINLOG_NEXT_ERROR)
					die("ROWS: %s", e);
			}
		}
		if (ev->next_event_pos >= end && ev->next_event_pos != 0 &&
		    !(ev->flags & 0x20)) /* not the artificial ROTATE */
			break;
	}
	if (ev != NULL)
		mariadb_free_rpl_event(ev);
	mariadb_rpl_close(rpl);
	binlog_rows_free(&it);
	binlog_tablemap_free(&tm);
	change_buf_free(&buf);
	free(map);
	free(vals);
	free(status);
}

/* --- compare ----------------------------------------------------------------------- */

static void show(const struct xrow *x, int i, char *out, size_t n)
{
	if (x->kind[i] == CHV_NULL)
		snprintf(out, n, "%s:\\N", binlog_value_status_name(x->status[i]));
	else
		snprintf(out, n, "%s:%.*s", binlog_value_status_name(x->status[i]),
			 (int)(x->len[i] > 300 ? 300 : x->len[i]), x->text[i]);
}

static int compare(const struct mig_table *t, struct rowset *a, struct rowset *b)
{
	int mismatches = 0, values = 0, rows = 0;
	for (int i = 0; i < a->n; i++) {
		struct xrow *x = &a->r[i], *y = NULL;
		for (int j = 0; j < b->n && y == NULL; j++)
			if (!b->r[j].matched && strcmp(b->r[j].key, x->key) == 0)
				y = &b->r[j];
		if (y == NULL) {
			printf("missing\t%s\tbinlog\n", x->key);
			mismatches++;
			continue;
		}
		x->matched = y->matched = true;
		rows++;
		for (int c = 0; c < x->n; c++) {
			values++;
			if (x->kind[c] == y->kind[c] && x->status[c] == y->status[c] &&
			    x->len[c] == y->len[c] &&
			    (x->kind[c] != CHV_TEXT ||
			     memcmp(x->text[c], y->text[c], x->len[c]) == 0))
				continue;
			char sx[400], sy[400];
			show(x, c, sx, sizeof(sx));
			show(y, c, sy, sizeof(sy));
			printf("mismatch\t%s\t%s\tsnap=%s\tbinlog=%s\n", x->key, t->cols[c].name,
			       sx, sy);
			mismatches++;
		}
	}
	for (int j = 0; j < b->n; j++)
		if (!b->r[j].matched) {
			printf("missing\t%s\tsnap\n", b->r[j].key);
			mismatches++;
		}
	printf("compared rows=%d values=%d mismatches=%d\n", rows, values, mismatches);
	return mismatches == 0 ? 0 : 1;
}

static void free_rows(struct rowset *s)
{
	for (int i = 0; i < s->n; i++) {
		for (int c = 0; c < s->r[i].n; c++)
			free(s->r[i].text[c]);
		free(s->r[i].text);
		free(s->r[i].kind);
		free(s->r[i].len);
		free(s->r[i].status);
		free(s->r[i].key);
	}
	free(s->r);
}

static int cmd_compare(struct myconn *c, const struct mig_table *t, char **argv)
{
	struct err err;
	int64_t rows;
	if (!mysnap_copy_range(c, t, NULL, NULL, print_copy_line, (void *)"snap\t", &rows, &err))
		printf("snap-error\t%s\n", err.msg);

	struct rowset snap = {0}, bin = {0};
	struct mysnap_rows *r;
	if (!mysnap_rows_open(c, t, NULL, NULL, &r, &err))
		die("%s", err.msg);
	struct binlog_image im;
	enum mysnap_next nx;
	while ((nx = mysnap_rows_next(r, &im, &err)) == MYSNAP_ROW) {
		print_bad("snap", t, &im.tuple, im.status);
		keep_row(&snap, t, &im.tuple, im.status);
	}
	if (nx == MYSNAP_ERROR)
		die("%s", err.msg);
	mysnap_rows_close(r);

	struct myconn rc = {0};
	if (!myconn_open_dsn(&rc, "binlog", argv[0], &err))
		die("%s", err.msg);
	read_binlog(&rc, t, argv[1], strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10), &bin);
	myconn_close(&rc);
	int st = compare(t, &snap, &bin);
	free_rows(&snap);
	free_rows(&bin);
	return st;
}

/* --- ddl and chunks ---------------------------------------------------------------- */

static int cmd_ddl(const struct mig_table *t)
{
	char *schema = pgconn_ident(t->schema);
	printf("SET client_min_messages = warning;\nCREATE SCHEMA IF NOT EXISTS %s;\n"
	       "CREATE TABLE %s (",
	       schema, t->tgt_qname);
	for (int i = 0; i < t->ncols; i++) {
		const struct mig_column *col = &t->cols[i];
		char *id = pgconn_ident(col->name);
		bool text = col->type_oid == MYMETA_OID_TEXT || col->type_oid == MYMETA_OID_VARCHAR;
		printf("%s\n  %s %s%s%s", i ? "," : "", id, col->type,
		       text && col->key_pos ? " COLLATE \"C\"" : "",
		       col->not_null ? " NOT NULL" : "");
		free(id);
	}
	if (t->nkey > 0) {
		char *keys = table_key_list(t);
		printf(",\n  PRIMARY KEY (%s)", keys);
		free(keys);
	}
	printf("\n);\n");
	free(schema);
	return 0;
}

static bool count_line(void *arg, const char *buf, size_t len)
{
	(void)buf;
	(void)len;
	(void)arg;
	return true;
}

static int cmd_chunks(struct myconn *c, const struct mig_table *t, long long chunk_rows)
{
	struct err err;
	char *prev = NULL;
	int64_t total = 0;
	for (;;) {
		bool end;
		char *b = mysnap_next_boundary(c, t, prev, chunk_rows, &end, &err);
		if (b == NULL)
			die("%s", err.msg);
		char *hi = end ? NULL : b;
		int64_t rows;
		if (!mysnap_copy_range(c, t, prev, hi, count_line, NULL, &rows, &err))
			die("%s", err.msg);
		char *pred = keyrange_pred(t, prev, hi);
		printf("chunk\t%lld\t%s\n", (long long)rows, pred);
		free(pred);
		total += rows;
		free(prev);
		prev = hi;
		if (end) {
			free(b);
			break;
		}
	}
	free(prev);
	printf("total\t%lld\n", (long long)total);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		die("usage: myrender ddl|snap|compare|chunks DSN DB.TABLE [...]");
	struct myconn c = {0};
	struct err err;
	if (!myconn_open_dsn(&c, "source", argv[2], &err))
		die("%s", err.msg);
	struct mig_tableset ts = {0};
	const struct mig_table *t = load_table(&c, argv[3], &ts);
	int st;
	if (strcmp(argv[1], "ddl") == 0 && argc == 4) {
		st = cmd_ddl(t);
	} else if (strcmp(argv[1], "snap") == 0 && argc == 4) {
		int64_t rows;
		if (!mysnap_copy_range(&c, t, NULL, NULL, print_copy_line, (void *)"", &rows, &err))
			die("%s", err.msg);
		st = 0;
	} else if (strcmp(argv[1], "compare") == 0 && argc == 7) {
		char *args[] = {argv[2], argv[4], argv[5], argv[6]};
		st = cmd_compare(&c, t, args);
	} else if (strcmp(argv[1], "chunks") == 0 && argc == 5) {
		st = cmd_chunks(&c, t, atoll(argv[4]));
	} else {
		die("usage: myrender ddl|snap|compare|chunks DSN DB.TABLE [...]");
	}
	tableset_free(&ts);
	myconn_close(&c);
	fflush(stdout);
	return st;
}
