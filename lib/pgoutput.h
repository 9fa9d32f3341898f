/*
 * pgoutput: the PostgreSQL logical replication wire formats, as pure
 * functions on byte buffers.
 *
 * Two layers, both free of I/O and of global state:
 *
 *   1. Replication framing: the CopyData payloads a walsender sends during
 *      START_REPLICATION ('w' XLogData carrying one plugin message, 'k'
 *      primary keepalive) and the standby status update ('r') migd sends
 *      back.  Times on the wire count microseconds since 2000-01-01; this
 *      API speaks Unix epoch microseconds and converts at the edge.
 *
 *   2. The pgoutput decoder (protocol versions 1 and 2, text mode): one
 *      plugin message in, one struct pgoutput_msg out.  Data changes and
 *      transaction framing become struct change_event (change.h); stream
 *      control ('S', 'E', 'c', 'A'), type ('Y') and logical decoding
 *      message ('M') get kinds of their own.
 *
 * Decoded messages are views: strings, values and the content of 'M'
 * borrow from the message buffer, arrays (tuple values, columns, truncate
 * relids) from a struct change_scratch.  Both must outlive the use of the
 * result; the next decode into the same scratch invalidates the arrays.
 * The module owns nothing.  Malformed input is reported, never read past.
 */
#ifndef MIGD_PGOUTPUT_H
#define MIGD_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "pos.h"

/* --- time ------------------------------------------------------------------ */

/* 2000-01-01 00:00:00 UTC in Unix epoch microseconds. */
#define PGOUTPUT_PG_EPOCH_UNIX_US INT64_C(946684800000000)

/* Epoch conversions; saturate at INT64_MIN/INT64_MAX instead of overflowing. */
int64_t pgoutput_pg_to_unix_us(int64_t pg_us);
int64_t pgoutput_unix_to_pg_us(int64_t unix_us);

/* --- replication framing ----------------------------------------------------- */

/* Room for an error naming an unexpected byte ("unknown message type 'Z'"). */
#define PGOUTPUT_ERRBUF 64

/*
 * One CopyData payload received from the walsender.  wal_start is not a
 * per-message position: PostgreSQL 15 sends 0 for R and Y, sometimes for B;
 * on C and c it equals the end LSN (where to resume).
 */
struct pgoutput_frame {
	char type;		      /* 'w' XLogData or 'k' keepalive */
	uint64_t wal_start;	      /* 'w': LSN where data starts; 0 for 'k' */
	uint64_t wal_end;	      /* current end of WAL on the server */
	int64_t send_time_us;	      /* server clock when sent, Unix epoch microseconds */
	bool reply_requested;	      /* 'k': server asks for a status update now */
	const uint8_t *data;	      /* 'w': the pgoutput message; borrowed; NULL for 'k' */
	size_t len;		      /* 'w': bytes at data */
	char errbuf[PGOUTPUT_ERRBUF]; /* backs *err for some errors */
};

/*
 * Parses one CopyData payload buf[0..len).  Returns false with *err set (a
 * static string or out->errbuf) if it is neither a well-formed 'w' nor 'k'.
 * out->data borrows from buf.
 */
bool pgoutput_parse_frame(const uint8_t *buf, size_t len, struct pgoutput_frame *out,
			  const char **err) __attribute__((warn_unused_result));

#define PGOUTPUT_STATUS_LEN 34

/*
 * Writes a standby status update 'r' (34 bytes) to out: the LSNs written,
 * flushed and applied (the flush LSN is what moves the slot's
 * confirmed_flush_lsn), the client clock in Unix epoch microseconds and
 * whether the server should reply at once.  Send it as one CopyData.
 */
void pgoutput_build_status(uint8_t out[PGOUTPUT_STATUS_LEN], uint64_t write_lsn, uint64_t flush_lsn,
			   uint64_t apply_lsn, int64_t now_unix_us, bool reply_requested);

/* --- decoder ----------------------------------------------------------------- */

enum pgoutput_kind {
	PGO_CHANGE = 1,	   /* B C O R I U D T: ev is set */
	PGO_TYPE,	   /* Y: a non-built-in column type's name (migd may ignore it) */
	PGO_MESSAGE,	   /* M: pg_logical_emit_message() */
	PGO_STREAM_START,  /* S: a chunk of an in-progress transaction follows */
	PGO_STREAM_STOP,   /* E: the chunk ends */
	PGO_STREAM_COMMIT, /* c: a streamed transaction committed */
	PGO_STREAM_ABORT,  /* A: a streamed (sub)transaction aborted */
	PGO__MAX,
};

struct pgoutput_msg {
	enum pgoutput_kind kind;
	char tag; /* the message's first byte as received ('B', 'I', 'S', ...) */
	union {
		/*
		 * PGO_CHANGE.  Positions are POS_PG_LSN, times Unix epoch
		 * microseconds (a transaction from a replication origin
		 * carries the origin's commit time).  ev.xid: BEGIN's xid;
		 * for R/I/U/D/T inside a stream the xid sent with it, which
		 * is the subtransaction's for changes made in one (what a
		 * stream abort's subxid refers to); otherwise 0, and
		 * pgoutput_next() fills in BEGIN's xid (or, for ORIGIN in a
		 * chunk, the stream's).  ORIGIN inside a stream has
		 * commit_pos LSN 0 (pgoutput sends InvalidXLogRecPtr there).
		 */
		struct change_event ev;
		struct {
			uint32_t xid; /* inside a stream, else 0 */
			uint32_t oid;
			const char *schema; /* borrowed */
			const char *name;   /* borrowed */
		} type;
		struct {
			uint32_t xid; /* inside a stream (the top-level xid), else 0 */
			bool transactional;
			uint64_t lsn;
			const char *prefix;	/* borrowed, NUL-terminated */
			const uint8_t *content; /* borrowed */
			uint32_t len;
		} message;
		struct {
			uint32_t xid;
			bool first_segment; /* first chunk of this xid */
		} stream_start;
		struct {
			uint32_t xid;
			uint8_t flags; /* unused by PostgreSQL 15: 0 */
			struct pos commit_pos;
			struct pos end_pos; /* resume here */
			int64_t commit_time_us;
		} stream_commit;
		struct {
			uint32_t xid;	 /* the streamed top-level transaction */
			uint32_t subxid; /* == xid when the whole transaction aborted */
		} stream_abort;
	};
	char errbuf[PGOUTPUT_ERRBUF]; /* backs *err for some errors */
};

/*
 * Decodes one pgoutput message msg[0..len) (the payload of a 'w' frame).
 * in_stream says whether the message arrived between 'S' and 'E': there
 * R, Y, I, U, D, T and M carry an extra leading xid.  The decoder keeps no
 * state; pgoutput_next() tracks in_stream for you.
 *
 * Returns true with *out filled; strings and values borrow from msg,
 * arrays from scratch (grown as needed; free with change_scratch_free()).
 * Returns false with *err set (a static string or out->errbuf) when the
 * message is truncated, has trailing bytes, an unknown type or column kind,
 * binary tuple data ('b': migd streams in text mode, and the binary send
 * format is not the text a sink expects), or out-of-range fields.  Never
 * reads msg past len.
 */
bool pgoutput_decode(const uint8_t *msg, size_t len, bool in_stream, struct pgoutput_msg *out,
		     struct change_scratch *scratch, const char **err)
    __attribute__((warn_unused_result));

/*
 * Where a replication connection stands in the message sequence:
 *
 *     B (O? changes)* C         a transaction sent at commit
 *     S (O? changes)* E         one chunk of a streamed transaction
 *     c | A                     outcome of a streamed transaction (between chunks)
 *     M (non-transactional)     anywhere outside a chunk or transaction
 *
 * Zero-initialise, or use pgoutput_state_init().  A plain value.
 */
struct pgoutput_state {
	bool in_txn;	     /* between B and C */
	uint32_t txn_xid;    /* B's xid */
	uint64_t final_lsn;  /* B's final LSN, checked against C's commit LSN */
	bool in_stream;	     /* between S and E */
	uint32_t stream_xid; /* S's xid */
};

void pgoutput_state_init(struct pgoutput_state *st);

/*
 * pgoutput_decode() with in_stream taken from st, then checks the message
 * is legal where it arrived (no C without B, no change outside B..C or
 * S..E, no nested S, C's commit LSN equal to B's final LSN, ...) and
 * advances st.  Changes inside B..C get ev.xid = B's xid.  On failure st
 * is unchanged and *err says why (a protocol violation means migd and the
 * server disagree about the stream: stop, do not skip).
 */
bool pgoutput_next(struct pgoutput_state *st, const uint8_t *msg, size_t len,
		   struct pgoutput_msg *out, struct change_scratch *scratch, const char **err)
    __attribute__((warn_unused_result));

const char *pgoutput_kind_name(enum pgoutput_kind k);

#endif
