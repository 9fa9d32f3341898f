/*
 * pgcapture_fixtures: records what a real PostgreSQL walsender sends for a
 * scripted workload and writes it as tests/unit/pgoutput_fixtures.h, the
 * input of tests/unit/check_pgoutput.c.  Not built by default: run it by
 * hand to regenerate the fixtures (for a new server version or workload).
 *
 *   pgcapture_fixtures CONNINFO OUTPUT.h
 *
 * Connects twice with CONNINFO (a superuser; one connection adds
 * replication=database), creates the tables, publication fx_pub and slot
 * fx_slot, runs the workload below on the normal connection, then streams
 * the slot with START_REPLICATION (proto_version '2', streaming 'on',
 * messages 'true') until the end marker message and one keepalive arrived.
 * Every CopyData payload is written out verbatim, except that inside
 * stream chunks only the first KEEP_PER_XID inserts of each xid are kept
 * (the big transaction only needs to be big; its rows are alike).
 * Uses libpq only, not migd's decoder: the fixtures must not depend on the
 * code they test.
 *
 * Exact regeneration (as root; PostgreSQL 15 from Debian, a throwaway
 * server owned by nobody on a free port, removed afterwards):
 *
 *   cc -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -I/usr/include/postgresql \
 *      -o /tmp/pgcapture_fixtures tests/tools/pgcapture_fixtures.c -lpq
 *   rm -rf /tmp/pgfx && mkdir /tmp/pgfx && chown nobody /tmp/pgfx
 *   runuser -u nobody -- /usr/lib/postgresql/15/bin/initdb -D /tmp/pgfx/data \
 *      -U postgres -A trust >/dev/null
 *   runuser -u nobody -- /usr/lib/postgresql/15/bin/pg_ctl -D /tmp/pgfx/data \
 *      -l /tmp/pgfx/log -w -o "-c listen_addresses=127.0.0.1 -p 51093 \
 *      -c unix_socket_directories=/tmp/pgfx -c wal_level=logical \
 *      -c logical_decoding_work_mem=64kB" start
 *   /tmp/pgcapture_fixtures "host=127.0.0.1 port=51093 user=postgres \
 *      dbname=postgres" tests/unit/pgoutput_fixtures.h
 *   runuser -u nobody -- /usr/lib/postgresql/15/bin/pg_ctl -D /tmp/pgfx/data \
 *      -m fast -w stop
 *   rm -rf /tmp/pgfx
 *
 * check_pgoutput.c asserts on this workload; change both together.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <libpq-fe.h>

#define KEEP_PER_XID 2
#define MAX_FRAMES   10000

/* Cleans up after an earlier run on the same server. */
static const char *const setup_sql[] = {
    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
    " WHERE slot_name = 'fx_slot'",
    "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin"
    " WHERE roname = 'fx_origin'",
    "DROP PUBLICATION IF EXISTS fx_pub",
    "DROP TABLE IF EXISTS fx_items, fx_docs, fx_full, fx_idx, fx_big",
    "DROP TYPE IF EXISTS fx_mood",
    "CREATE TYPE fx_mood AS ENUM ('sad', 'happy')",
    "CREATE TABLE fx_items (id int PRIMARY KEY, name text, qty int, note text,"
    " mood fx_mood)",
    "CREATE TABLE fx_docs (id int PRIMARY KEY, body text, version int)",
    "ALTER TABLE fx_docs ALTER body SET STORAGE EXTERNAL", /* out of line, uncompressed */
    "CREATE TABLE fx_full (id int, val text)",
    "ALTER TABLE fx_full REPLICA IDENTITY FULL",
    "CREATE TABLE fx_idx (a int NOT NULL, b text NOT NULL, c text)",
    "CREATE UNIQUE INDEX fx_idx_ab ON fx_idx (a, b)",
    "ALTER TABLE fx_idx REPLICA IDENTITY USING INDEX fx_idx_ab",
    "CREATE TABLE fx_big (id int PRIMARY KEY, pad text)",
    "CREATE PUBLICATION fx_pub FOR ALL TABLES",
    "SELECT pg_replication_origin_create('fx_origin')",
};

/* The workload; each line runs as one statement in autocommit mode. */
static const char *const workload_sql[] = {
    /* T1: two inserts: NULL, empty string, multibyte UTF-8; Y for the enum */
    "INSERT INTO fx_items VALUES (1, 'apple', 3, NULL, 'happy'),"
    " (2, 'Grüße ☃ 日本', 5, '', 'sad')",
    /* T2: update, key unchanged: 'N' only */
    "UPDATE fx_items SET qty = 4 WHERE id = 1",
    /* T3: update changing the key: 'K' (old key) then 'N' */
    "UPDATE fx_items SET id = 10 WHERE id = 2",
    /* T4, T5: a TOASTed value, then an update not touching it: 'u' */
    "INSERT INTO fx_docs VALUES (1, repeat('0123456789', 250), 1)",
    "UPDATE fx_docs SET version = 2 WHERE id = 1",
    /* T6: REPLICA IDENTITY FULL: 'O' old tuples on update and delete */
    "BEGIN",
    "INSERT INTO fx_full VALUES (1, 'a')",
    "UPDATE fx_full SET val = 'b' WHERE id = 1",
    "DELETE FROM fx_full WHERE id = 1",
    "COMMIT",
    /* T7: REPLICA IDENTITY USING INDEX ('i'), key change: 'K' with c NULL */
    "BEGIN",
    "INSERT INTO fx_idx VALUES (1, 'x', 'c1')",
    "UPDATE fx_idx SET b = 'y' WHERE a = 1",
    "COMMIT",
    /* T8: delete by key: 'K' */
    "DELETE FROM fx_items WHERE id = 1",
    /* T9: truncate of two relations, option RESTART IDENTITY (2) */
    "TRUNCATE fx_items, fx_full RESTART IDENTITY",
    /* T10: a transactional message inside a transaction, then a non-transactional one */
    "BEGIN",
    "INSERT INTO fx_items VALUES (3, 'pear', 1, 'n', 'happy')",
    "SELECT pg_logical_emit_message(true, 'fx_tx', 'transactional')",
    "COMMIT",
    "SELECT pg_logical_emit_message(false, 'fx_nontx', 'non-transactional')",
    /* T11: replicated from origin fx_origin: 'O', commit time = origin's */
    "SELECT pg_replication_origin_session_setup('fx_origin')",
    "BEGIN",
    "SELECT pg_replication_origin_xact_setup('0/ABCDEF', '2020-01-01 00:00:00+00')",
    "INSERT INTO fx_items VALUES (4, 'from origin', 2, NULL, NULL)",
    "COMMIT",
    "SELECT pg_replication_origin_session_reset()",
    /* T12: larger than logical_decoding_work_mem (64kB): streamed in chunks,
     * with a streamed subtransaction rolled back ('A' with its subxid) */
    "BEGIN",
    "INSERT INTO fx_big SELECT g, repeat('x', 100) FROM generate_series(1, 600) g",
    "SELECT pg_logical_emit_message(true, 'fx_stream', 'in stream')",
    "SAVEPOINT s1",
    "INSERT INTO fx_big SELECT g, repeat('y', 100) FROM generate_series(1001, 1600) g",
    "ROLLBACK TO SAVEPOINT s1",
    "INSERT INTO fx_big VALUES (2001, 'after rollback'), (2002, NULL)",
    "COMMIT",
    /* end marker: capture stops here */
    "SELECT pg_logical_emit_message(false, 'fx_end', 'end')",
};

struct frame {
	uint8_t *data;
	int len;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "pgcapture_fixtures: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int64_t now_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		die("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Decides whether to keep a frame: inside a stream chunk, only the first
 * KEEP_PER_XID inserts of each xid.  Minimal parsing on purpose: the 'w'
 * header is 25 bytes, then the tag, then the xid inside a chunk.
 */
static int keep_frame(const uint8_t *p, int len, int *in_stream, uint32_t *xids, int *counts,
		      int *nxids)
{
	if (len < 26 || p[0] != 'w')
		return 1;
	uint8_t tag = p[25];
	if (tag == 'S') {
		*in_stream = 1;
		*nxids = 0;
	} else if (tag == 'E') {
		*in_stream = 0;
	} else if (tag == 'I' && *in_stream && len >= 30) {
		uint32_t xid = get_u32(p + 26);
		int i;
		for (i = 0; i < *nxids && xids[i] != xid; i++)
			;
		if (i == *nxids) {
			if (i == 16)
				return 0;
			xids[i] = xid;
			counts[i] = 0;
			(*nxids)++;
		}
		return ++counts[i] <= KEEP_PER_XID;
	}
	return 1;
}

/* A short description of a frame for the comment above its bytes. */
static void describe(FILE *f, const uint8_t *p, int len)
{
	if (len >= 1 && p[0] == 'k') {
		fprintf(f, "k keepalive");
	} else if (len >= 26 && p[0] == 'w') {
		uint8_t tag = p[25];
		fprintf(f, "w '%c'", tag);
		if (tag == 'M' || tag == 'R' || tag == 'O') {
			/* print the first string field, for orientation */
			for (int i = 26; i < len; i++) {
				if (p[i] >= 'a' && p[i] <= 'z' && p[i - 1] == 0) {
					fprintf(f, " %.*s",
						(int)strnlen((const char *)p + i, len - i), p + i);
					break;
				}
			}
		}
	} else {
		fprintf(f, "?");
	}
}

static void write_header(const char *path, struct frame *fr, int n, int skipped, int server_version,
			 int64_t t0, int64_t t1)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		die("cannot write %s", path);
	fprintf(f,
		"/*\n * Generated by tests/tools/pgcapture_fixtures.c from PostgreSQL %d; do not "
		"edit.\n * Every CopyData payload a walsender sent (pgoutput proto_version 2, "
		"streaming on,\n * messages true) for the workload in that tool, in order; %d "
		"repetitive inserts\n * inside stream chunks left out.\n */\n",
		server_version, skipped);
	fprintf(f, "#ifndef MIGD_PGOUTPUT_FIXTURES_H\n#define MIGD_PGOUTPUT_FIXTURES_H\n\n");
	fprintf(f, "#include <stddef.h>\n#include <stdint.h>\n\n");
	fprintf(f, "#define PGFX_SERVER_VERSION_NUM %d\n", server_version);
	fprintf(f, "#define PGFX_SKIPPED_FRAMES %d\n", skipped);
	fprintf(f, "/* client clock, Unix epoch microseconds, around the workload */\n");
	fprintf(f, "#define PGFX_WORKLOAD_START_US INT64_C(%lld)\n", (long long)t0);
	fprintf(f, "#define PGFX_WORKLOAD_END_US INT64_C(%lld)\n\n", (long long)t1);
	fprintf(f, "struct pgfx_frame {\n\tconst uint8_t *data;\n\tsize_t len;\n};\n\n");
	for (int i = 0; i < n; i++) {
		fprintf(f, "/* %d: ", i);
		describe(f, fr[i].data, fr[i].len);
		fprintf(f, " */\nstatic const uint8_t pgfx_frame_%d[%d] = {", i, fr[i].len);
		for (int j = 0; j < fr[i].len; j++)
			fprintf(f, "%s0x%02x,", j % 12 == 0 ? "\n\t" : " ", fr[i].data[j]);
		fprintf(f, "\n};\n");
	}
	fprintf(f, "\nstatic const struct pgfx_frame pgfx_frames[%d] = {\n", n);
	for (int i = 0; i < n; i++)
		fprintf(f, "\t{pgfx_frame_%d, sizeof(pgfx_frame_%d)},\n", i, i);
	fprintf(f, "};\n\n#endif\n");
	if (fclose(f) != 0)
		die("cannot write %s", path);
}

int main(int argc, char **argv)
{
	static struct frame frames[MAX_FRAMES];
	uint32_t xids[16];
	int counts[16], nxids = 0, in_stream = 0, n = 0, skipped = 0;
	int seen_end = 0, seen_keepalive = 0;

	if (argc != 3)
		die("usage: pgcapture_fixtures CONNINFO OUTPUT.h");
	PGconn *sql = PQconnectdb(argv[1]);
	if (PQstatus(sql) != CONNECTION_OK)
		die("connect: %s", PQerrorMessage(sql));
	char *rconninfo = malloc(strlen(argv[1]) + 32);
	sprintf(rconninfo, "%s replication=database", argv[1]);
	PGconn *repl = PQconnectdb(rconninfo);
	free(rconninfo);
	if (PQstatus(repl) != CONNECTION_OK)
		die("replication connect: %s", PQerrorMessage(repl));
	int server_version = PQserverVersion(sql);

	for (size_t i = 0; i < sizeof(setup_sql) / sizeof(setup_sql[0]); i++)
		exec_ok(sql, setup_sql[i]);
	exec_ok(repl, "CREATE_REPLICATION_SLOT fx_slot LOGICAL pgoutput (SNAPSHOT 'nothing')");

	int64_t t0 = now_us();
	for (size_t i = 0; i < sizeof(workload_sql) / sizeof(workload_sql[0]); i++)
		exec_ok(sql, workload_sql[i]);
	int64_t t1 = now_us();

	PGresult *r = PQexec(repl, "START_REPLICATION SLOT fx_slot LOGICAL 0/0 (proto_version '2',"
				   " streaming 'on', publication_names 'fx_pub', messages 'true')");
	if (PQresultStatus(r) != PGRES_COPY_BOTH)
		die("START_REPLICATION: %s", PQerrorMessage(repl));
	PQclear(r);

	/* The end marker is the last message; a keepalive follows once caught up. */
	while (!(seen_end && seen_keepalive)) {
		char *buf;
		int len = PQgetCopyData(repl, &buf, 0);
		if (len < 0)
			die("stream ended early: %s", PQerrorMessage(repl));
		const uint8_t *p = (const uint8_t *)buf;
		if (p[0] == 'k')
			seen_keepalive = 1;
		if (len >= 26 && p[0] == 'w' && p[25] == 'M' && memmem(p, len, "fx_end", 7) != NULL)
			seen_end = 1;
		if (keep_frame(p, len, &in_stream, xids, counts, &nxids)) {
			if (n == MAX_FRAMES)
				die("too many frames");
			frames[n].data = malloc(len);
			memcpy(frames[n].data, p, len);
			frames[n].len = len;
			n++;
		} else {
			skipped++;
		}
		PQfreemem(buf);
	}
	PQfinish(repl); /* the slot stays: the next run's setup drops it */
	PQfinish(sql);

	write_header(argv[2], frames, n, skipped, server_version, t0, t1);
	for (int i = 0; i < n; i++)
		free(frames[i].data);
	fprintf(stderr, "pgcapture_fixtures: wrote %d frames (%d skipped) to %s\n", n, skipped,
		argv[2]);
	return 0;
}
