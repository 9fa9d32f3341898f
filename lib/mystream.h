/*
 * mystream: the binlog reader.  A worker thread that connects to a
 * MySQL/MariaDB source as a replica (libmariadb's replication API is the
 * transport), decodes row events itself (binlog_rows) into the change model
 * and appends whole committed transactions of the migrated tables to the
 * spool in commit order -- the binlog twin of pgstream.
 *
 * libmariadb's fetch blocks, so the thread owns the connection outright;
 * the server's heartbeats (every heartbeat_ms while idle) wake it to sync
 * the spool and to notice the stop flag.  Positions are MariaDB GTID
 * positions with the binlog coordinate they were read at; the thread
 * resumes from the newer of the spool's durable end and opts->start, by
 * GTID, after any error (with backoff).
 *
 * What cannot be delivered faithfully stops that table, never the stream:
 * DDL on a migrated table (QUERY events), a row image that is not FULL, a
 * TABLE_MAP whose shape no longer matches the captured one -- each becomes
 * a RELATION with a problem (change.h), which the sink turns into a schema
 * error.  A value the decoder cannot render (zero date, invalid text) is a
 * CHV_BAD value: a failed record at the sink, never silently altered.
 */
#ifndef MIGD_MYSTREAM_H
#define MIGD_MYSTREAM_H

#include <stdint.h>

#include "pgstream.h" /* struct stream_progress */
#include "pos.h"
#include "spool.h"
#include "tables.h"

struct mystream_opts {
	const char *dsn;	 /* borrowed; secret */
	const char *password;	 /* borrowed; secret; NULL when in the dsn */
	uint32_t server_id;	 /* ours as a replica: must differ from every server's */
	struct pos start;	 /* GTID position to start at if the spool holds nothing newer */
	struct mig_tableset *ts; /* borrowed: the migrated tables (source names) */
	struct spool *spool;	 /* borrowed */
	const volatile bool *stop;
	/*
	 * received_lsn, server_wal_end and flushed_lsn hold pos_scalar()
	 * values: the binlog coordinate read, the server's end (heartbeats),
	 * and what is durable in the spool or decoded to nothing for us.
	 */
	struct stream_progress *prog;
	int heartbeat_ms; /* server heartbeat period while idle (default 100) */
	/* which server this reads, for messages: "source" (default), or "target" for reverse
	   replication and its rehearsal */
	const char *side;
};

/* Thread body: runs until *opts->stop; arg is a struct mystream_opts *. */
void *mystream_thread(void *arg);

/* The relation id migd gives a source table: stable across runs (a hash of its name). */
uint32_t mystream_relid(const char *schema, const char *name);

#endif
