/*
 * sinkdrive: drives a sink (sink.h) from a line-based script, the way the
 * applier does, so an integration test can check the target with SQL.
 *
 *   sinkdrive mysql|postgresql DSN NAME < script
 *
 * One command per line; '#' starts a comment line.  A command prefixed
 * with '!' must fail (its error is printed as "failed: ..."); any other
 * command that fails ends the run with exit status 1.  Values: \N NULL,
 * \U unchanged (TOAST), \E the empty string, anything else %XX-decoded.
 *
 *   table RELID SCHEMA.NAME COL...    add a migrated table (COL: name:type[:key]);
 *                                     its target is "SCHEMA"."NAME"
 *   open                              prints applied=POS commit_us=N
 *   reopen                            close, then open until it works (60 s)
 *   close
 *   rel RELID SCHEMA.NAME COL...      a RELATION event
 *   txn POS                           source position of the next changes
 *   begin [isolate]
 *   ins RELID V...                    INSERT
 *   upd RELID V...                    UPDATE, no old tuple
 *   updk RELID OLDKEY... / V...       UPDATE with the old key (old_kind 'K')
 *   del RELID KEY...                  DELETE (old_kind 'K')
 *   trunc RELID...                    TRUNCATE
 *   insgen RELID FROM TO TEMPLATE...  INSERTs for n in FROM..TO, "{}" -> n
 *   updgen RELID FROM TO TEMPLATE...  UPDATEs likewise
 *   delgen RELID FROM TO TEMPLATE...  DELETEs likewise (key values)
 *   commit POS [COMMIT_US]
 *   rollback
 *   violation FREEZE TXN XID TABLE
 *   violations FREEZE                 prints violations=N
 *   schema_errors                     prints schema_errors=LINE|LINE
 *   counts                            prints changes= failed= parked= missing=
 *   pause FILE                        prints "paused", waits until FILE exists
 *   echo TEXT...
 *
 * Types: int2 int4 int8 text varchar bool bytea float4 float8 numeric
 * timestamptz timestamp date time interval bit varbit uuid inet json jsonb.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mysink.h"
#include "pgconn.h"
#include "pgsink.h"
#include "sink.h"
#include "tables.h"
#include "util.h"

static const struct {
	const char *name;
	uint32_t oid;
} types[] = {
    {"int2", 21},      {"int4", 23},	  {"int8", 20},		 {"text", 25},
    {"varchar", 1043}, {"bool", 16},	  {"bytea", 17},	 {"float4", 700},
    {"float8", 701},   {"numeric", 1700}, {"timestamptz", 1184}, {"timestamp", 1114},
    {"date", 1082},    {"time", 1083},	  {"interval", 1186},	 {"bit", 1560},
    {"varbit", 1562},  {"uuid", 2950},	  {"inet", 869},	 {"json", 114},
    {"jsonb", 3802},
};

#define MAXTOK 256

struct rdesc {
	uint32_t relid;
	int ncols;
	bool key[64];
};

static struct mig_tableset ts;
static struct rdesc rdescs[64];
static int nrdescs;
static struct sink *sink;
static struct pos txn_pos;
static int lineno;

static void die(const char *what, const char *a)
{
	fprintf(stderr, "sinkdrive: line %d: %s %s\n", lineno, what, a);
	exit(2);
}

static uint32_t type_oid(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(types); i++)
		if (strcmp(types[i].name, name) == 0)
			return types[i].oid;
	die("unknown type", name);
	return 0;
}

static struct rdesc *rdesc(uint32_t relid)
{
	for (int i = 0; i < nrdescs; i++)
		if (rdescs[i].relid == relid)
			return &rdescs[i];
	die("relation not defined", "");
	return NULL;
}

/* Decodes a value token in place; returns its kind. */
static struct change_value value(char *tok)
{
	if (strcmp(tok, "\\N") == 0)
		return (struct change_value){.kind = CHV_NULL};
	if (strcmp(tok, "\\U") == 0)
		return (struct change_value){.kind = CHV_UNCHANGED};
	if (strcmp(tok, "\\E") == 0)
		return (struct change_value){.kind = CHV_TEXT, .len = 0, .data = ""};
	char *o = tok;
	for (char *p = tok; *p; p++) {
		if (p[0] == '%' && p[1] && p[2]) {
			char hex[3] = {p[1], p[2], 0};
			*o++ = (char)strtol(hex, NULL, 16);
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	return (struct change_value){.kind = CHV_TEXT, .len = (uint32_t)(o - tok), .data = tok};
}

/* name:type[:key] specs -> columns (names point into the tokens). */
static int parse_cols(char **tok, int n, struct change_column *cols)
{
	for (int i = 0; i < n; i++) {
		char *name = tok[i], *type = strchr(name, ':');
		if (type == NULL)
			die("column spec needs name:type:", name);
		*type++ = '\0';
		char *flag = strchr(type, ':');
		if (flag)
			*flag++ = '\0';
		cols[i] =
		    (struct change_column){.name = name,
					   .type_oid = type_oid(type),
					   .type_mod = -1,
					   .flags = flag && strcmp(flag, "key") == 0 ? CHC_KEY : 0};
	}
	return n;
}

static void split_name(char *qn, char **schema, char **name)
{
	char *dot = strchr(qn, '.');
	if (dot == NULL)
		die("expected schema.name, got", qn);
	*dot = '\0';
	*schema = qn;
	*name = dot + 1;
}

static void cmd_table(char **tok, int n)
{
	struct change_column cols[64];
	char *schema, *name;
	split_name(tok[2], &schema, &name);
	int nc = parse_cols(tok + 3, n - 3, cols);
	ts.t = xrealloc(ts.t, (size_t)(ts.n + 1) * sizeof(*ts.t));
	struct mig_table *t = &ts.t[ts.n++];
	memset(t, 0, sizeof(*t));
	t->schema = xstrdup(schema);
	t->name = xstrdup(name);
	t->qname = pgconn_qualified(schema, name);
	t->tgt_qname = pgconn_qualified(schema, name);
	t->src_relid = (uint32_t)atoi(tok[1]);
	t->ncols = nc;
	t->cols = xcalloc((size_t)nc + 1, sizeof(*t->cols));
	t->key_idx = xcalloc((size_t)nc + 1, sizeof(int));
	for (int i = 0; i < nc; i++) {
		t->cols[i].name = xstrdup(cols[i].name);
		t->cols[i].type = xstrdup("?");
		t->cols[i].type_oid = cols[i].type_oid;
		if (cols[i].flags & CHC_KEY) {
			t->key_idx[t->nkey++] = i;
			t->cols[i].key_pos = t->nkey;
		}
	}
	t->key_kind = t->nkey ? 'p' : 0;
	t->replident = 'd';
	t->insert_only = t->nkey == 0;
}

static bool cmd_rel(char **tok, int n, struct err *err)
{
	struct change_column cols[64];
	char *schema, *name;
	split_name(tok[2], &schema, &name);
	int nc = parse_cols(tok + 3, n - 3, cols);
	uint32_t relid = (uint32_t)atoi(tok[1]);
	struct rdesc *d = NULL;
	for (int i = 0; i < nrdescs; i++)
		if (rdescs[i].relid == relid)
			d = &rdescs[i];
	if (d == NULL)
		d = &rdescs[nrdescs++];
	d->relid = relid;
	d->ncols = nc;
	for (int i = 0; i < nc; i++)
		d->key[i] = cols[i].flags & CHC_KEY;
	struct change_relation rel = {.relid = relid,
				      .schema = schema,
				      .name = name,
				      .replident = 'd',
				      .ncols = (uint16_t)nc,
				      .cols = cols};
	return sink->ops->relation(sink, &rel, err);
}

static bool row_change(enum change_kind kind, uint32_t relid, char **old, int nold, char **nw,
		       int nnew, struct err *err)
{
	struct rdesc *d = rdesc(relid);
	struct change_value ov[64], nv[64];
	struct change_event ev = {.kind = kind};
	ev.row.relid = relid;
	if (old != NULL) { /* key values, in column order of the key columns */
		int k = 0;
		for (int i = 0; i < d->ncols; i++)
			ov[i] = d->key[i] && k < nold ? value(old[k++])
						      : (struct change_value){.kind = CHV_NULL};
		ev.row.old_kind = 'K';
		ev.row.old_tuple = (struct change_tuple){.ncols = (uint16_t)d->ncols, .vals = ov};
	}
	if (nw != NULL) {
		if (nnew != d->ncols)
			die("expected a value for every column", "");
		for (int i = 0; i < nnew; i++)
			nv[i] = value(nw[i]);
		ev.row.new_tuple = (struct change_tuple){.ncols = (uint16_t)nnew, .vals = nv};
	}
	return sink->ops->change(sink, &ev, &txn_pos, err);
}

/* "{}" in tmpl -> n, into out. */
static void expand(const char *tmpl, long n, char *out, size_t size)
{
	size_t o = 0;
	for (const char *p = tmpl; *p && o + 24 < size; p++) {
		if (p[0] == '{' && p[1] == '}') {
			o += (size_t)snprintf(out + o, size - o, "%ld", n);
			p++;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

static bool cmd_gen(enum change_kind kind, char **tok, int n, struct err *err)
{
	uint32_t relid = (uint32_t)atoi(tok[1]);
	long from = atol(tok[2]), to = atol(tok[3]);
	char buf[MAXTOK][128];
	char *vals[MAXTOK];
	for (long k = from; k <= to; k++) {
		for (int i = 4; i < n; i++) {
			expand(tok[i], k, buf[i - 4], sizeof(buf[0]));
			vals[i - 4] = buf[i - 4];
		}
		bool ok = kind == CHG_DELETE ? row_change(kind, relid, vals, n - 4, NULL, 0, err)
					     : row_change(kind, relid, NULL, 0, vals, n - 4, err);
		if (!ok)
			return false;
	}
	return true;
}

static bool parse_pos(const char *s, struct pos *p)
{
	const char *e;
	if (!pos_parse(s, p, &e))
		die("bad position", s);
	return true;
}

static bool do_open(struct err *err)
{
	struct pos applied;
	int64_t cus = 0;
	if (!sink->ops->open(sink, &applied, &cus, err))
		return false;
	char p[POS_TEXT_MAX];
	printf("applied=%s commit_us=%lld\n", pos_format(&applied, p, sizeof(p)), (long long)cus);
	return true;
}

static bool run(char **tok, int n, struct err *err)
{
	const char *c = tok[0];
	if (strcmp(c, "table") == 0) {
		cmd_table(tok, n);
		return true;
	}
	if (strcmp(c, "open") == 0)
		return do_open(err);
	if (strcmp(c, "reopen") == 0) {
		sink->ops->close(sink);
		for (int i = 0; i < 300; i++) {
			if (do_open(err))
				return true;
			usleep(200 * 1000);
		}
		return false;
	}
	if (strcmp(c, "close") == 0) {
		sink->ops->close(sink);
		return true;
	}
	if (strcmp(c, "rel") == 0)
		return cmd_rel(tok, n, err);
	if (strcmp(c, "txn") == 0)
		return parse_pos(tok[1], &txn_pos);
	if (strcmp(c, "begin") == 0)
		return sink->ops->begin(sink, n > 1 && strcmp(tok[1], "isolate") == 0, err);
	if (strcmp(c, "ins") == 0 || strcmp(c, "upd") == 0)
		return row_change(c[0] == 'i' ? CHG_INSERT : CHG_UPDATE, (uint32_t)atoi(tok[1]),
				  NULL, 0, tok + 2, n - 2, err);
	if (strcmp(c, "updk") == 0) {
		int slash = 2;
		while (slash < n && strcmp(tok[slash], "/") != 0)
			slash++;
		if (slash == n)
			die("updk needs OLDKEY... / VALUES...", "");
		return row_change(CHG_UPDATE, (uint32_t)atoi(tok[1]), tok + 2, slash - 2,
				  tok + slash + 1, n - slash - 1, err);
	}
	if (strcmp(c, "del") == 0)
		return row_change(CHG_DELETE, (uint32_t)atoi(tok[1]), tok + 2, n - 2, NULL, 0, err);
	if (strcmp(c, "trunc") == 0) {
		uint32_t relids[16];
		for (int i = 1; i < n && i <= 16; i++)
			relids[i - 1] = (uint32_t)atoi(tok[i]);
		struct change_event ev = {.kind = CHG_TRUNCATE};
		ev.truncate.nrelids = (uint16_t)(n - 1);
		ev.truncate.relids = relids;
		return sink->ops->change(sink, &ev, &txn_pos, err);
	}
	if (strcmp(c, "insgen") == 0)
		return cmd_gen(CHG_INSERT, tok, n, err);
	if (strcmp(c, "updgen") == 0)
		return cmd_gen(CHG_UPDATE, tok, n, err);
	if (strcmp(c, "delgen") == 0)
		return cmd_gen(CHG_DELETE, tok, n, err);
	if (strcmp(c, "commit") == 0) {
		struct pos end;
		parse_pos(tok[1], &end);
		return sink->ops->commit(sink, &end, n > 2 ? atoll(tok[2]) : 0, 1, true, err);
	}
	if (strcmp(c, "rollback") == 0) {
		sink->ops->rollback(sink);
		return true;
	}
	if (strcmp(c, "violation") == 0) {
		struct pos f, t;
		parse_pos(tok[1], &f);
		parse_pos(tok[2], &t);
		return sink->ops->violation(sink, &f, &t, (uint32_t)atoi(tok[3]), NULL, tok[4],
					    err);
	}
	if (strcmp(c, "violations") == 0) {
		struct pos f;
		int64_t v;
		parse_pos(tok[1], &f);
		if (!sink->ops->violations(sink, &f, &v, err))
			return false;
		printf("violations=%lld\n", (long long)v);
		return true;
	}
	if (strcmp(c, "schema_errors") == 0) {
		char *se = sink->ops->schema_errors(sink);
		for (char *p = se; *p; p++)
			if (*p == '\n' && p[1])
				*p = '|';
		printf("schema_errors=%.*s\n", (int)strcspn(se, "\n"), se);
		free(se);
		return true;
	}
	if (strcmp(c, "counts") == 0) {
		printf("changes=%lld failed=%lld parked=%lld missing=%lld\n",
		       (long long)sink->counts.changes, (long long)sink->counts.failed,
		       (long long)sink->counts.parked, (long long)sink->counts.missing);
		return true;
	}
	if (strcmp(c, "pause") == 0) {
		printf("paused\n");
		fflush(stdout);
		while (access(tok[1], F_OK) != 0)
			usleep(50 * 1000);
		return true;
	}
	if (strcmp(c, "echo") == 0) {
		for (int i = 1; i < n; i++)
			printf("%s%s", tok[i], i + 1 < n ? " " : "\n");
		return true;
	}
	die("unknown command", c);
	return false;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: sinkdrive mysql|postgresql DSN NAME < script\n");
		return 2;
	}
	log_init(LOG_LVL_INFO);
	txn_pos = pos_from_lsn(1);
	bool my = strcmp(argv[1], "mysql") == 0;
	char line[65536];
	/* Tables first (the sink borrows the set), so read the script whole. */
	char **lines = NULL;
	int nlines = 0;
	while (fgets(line, sizeof(line), stdin)) {
		lines = xrealloc(lines, (size_t)(nlines + 1) * sizeof(char *));
		lines[nlines++] = xstrdup(line);
	}
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			sink = my ? mysink_new(argv[2], argv[3], &ts)
				  : pgsink_new(argv[2], argv[3], &ts);
		for (lineno = 1; lineno <= nlines; lineno++) {
			char *l = xstrdup(lines[lineno - 1]), *tok[MAXTOK], *save = NULL;
			int n = 0;
			for (char *t = strtok_r(l, " \t\r\n", &save); t && n < MAXTOK;
			     t = strtok_r(NULL, " \t\r\n", &save))
				tok[n++] = t;
			if (n == 0 || tok[0][0] == '#' ||
			    (pass == 0) != (strcmp(tok[0], "table") == 0)) {
				free(l);
				continue;
			}
			bool expect_fail = tok[0][0] == '!';
			if (expect_fail)
				tok[0]++;
			struct err err = {{0}};
			bool ok = run(tok, n, &err);
			fflush(stdout);
			if (ok && expect_fail) {
				fprintf(stderr,
					"sinkdrive: line %d: %s succeeded, expected a failure\n",
					lineno, tok[0]);
				return 1;
			}
			if (!ok) {
				printf("failed: %s%s\n", err.msg, sink->broken ? " (broken)" : "");
				fflush(stdout);
				if (!expect_fail) {
					fprintf(stderr, "sinkdrive: line %d: %s: %s\n", lineno,
						tok[0], err.msg);
					return 1;
				}
			}
			free(l);
		}
	}
	sink->ops->free(sink);
	tableset_free(&ts);
	for (int i = 0; i < nlines; i++)
		free(lines[i]);
	free(lines);
	return 0;
}
