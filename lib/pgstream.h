/*
 * pgstream: the slot reader.  A worker thread that streams the logical
 * slot (pgoutput, protocol v2 with streaming of large transactions),
 * decodes every message into the change model and appends whole committed
 * transactions to the spool in commit order.  Streamed in-progress
 * transactions go to per-xid spill files until their stream commit/abort.
 *
 * Feedback: the flush LSN sent to the source is never past what the spool
 * has made durable (or, while nothing is pending, the server's WAL end:
 * WAL that decodes to nothing for us).  Keepalives are answered.  The
 * thread reconnects with backoff after any error and resumes from the
 * slot, skipping transactions the spool already holds.
 */
#ifndef MIGD_PGSTREAM_H
#define MIGD_PGSTREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "spool.h"

struct stream_progress {
	pthread_mutex_t lock;
	bool connected;
	uint64_t received_lsn;  /* last WAL position received */
	uint64_t server_wal_end; /* the server's WAL end, from frames and keepalives */
	uint64_t flushed_lsn;   /* last flush LSN confirmed to the source */
	int64_t last_msg_usec;  /* monotonic time of the last message */
	int64_t txns;           /* transactions spooled by this process */
	int64_t reconnects;
	char last_error[512];
};

struct pgstream_opts {
	const char *repl_conninfo; /* borrowed; secret */
	const char *slot;
	const char *publication;
	uint64_t start_lsn;          /* where to start if the slot has no better idea */
	struct spool *spool;         /* borrowed */
	const volatile bool *stop;   /* borrowed */
	struct stream_progress *prog; /* borrowed */
	int feedback_ms;             /* status update interval (default 1000) */
};

/* Thread body: runs until *opts->stop; arg is a struct pgstream_opts *. */
void *pgstream_thread(void *arg);

#endif
