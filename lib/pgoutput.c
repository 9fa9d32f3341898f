/*
 * pgoutput: see pgoutput.h.
 *
 * Wire formats, from the PostgreSQL 15 documentation: "Streaming
 * Replication Protocol" (section 55.4, for the framing) and "Logical
 * Replication Message Formats" (section 55.9,
 * https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html).
 * Integers are big-endian; String is NUL-terminated; LSNs are Int64;
 * times are Int64 microseconds since 2000-01-01 00:00 UTC.
 *
 * CopyData from the walsender:
 *   'w' XLogData        Int64 start LSN, Int64 end of WAL, Int64 send time,
 *                       Byte(n) one pgoutput message
 *   'k' keepalive       Int64 end of WAL, Int64 send time, Byte1 reply requested
 * CopyData to the walsender:
 *   'r' status update   Int64 written, Int64 flushed, Int64 applied LSN,
 *                       Int64 client time, Byte1 reply requested   (34 bytes)
 *
 * pgoutput messages.  [xid] = Int32 xid of the (sub)transaction, present
 * only inside a stream chunk (between 'S' and 'E'; protocol version 2).
 *   'B' begin           Int64 final LSN, Int64 commit time, Int32 xid
 *   'C' commit          Int8 flags (0), Int64 commit LSN, Int64 end LSN,
 *                       Int64 commit time
 *   'O' origin          Int64 commit LSN on the origin, String name
 *   'R' relation        [xid] Int32 oid, String namespace ("" for pg_catalog),
 *                       String name, Int8 replica identity ('d','n','f','i'),
 *                       Int16 ncols, then per column: Int8 flags (1 = key),
 *                       String name, Int32 type oid, Int32 typmod
 *   'Y' type            [xid] Int32 oid, String namespace, String name
 *   'I' insert          [xid] Int32 relid, 'N' TupleData
 *   'U' update          [xid] Int32 relid, optional ('K' | 'O') TupleData,
 *                       'N' TupleData
 *   'D' delete          [xid] Int32 relid, ('K' | 'O') TupleData
 *   'T' truncate        [xid] Int32 nrelids, Int8 options (1 CASCADE,
 *                       2 RESTART IDENTITY), Int32 relid * nrelids
 *   'M' message         [xid] Int8 flags (1 = transactional), Int64 LSN,
 *                       String prefix, Int32 length, Byte(length) content
 *   'S' stream start    Int32 xid, Int8 first segment (1/0)
 *   'E' stream stop     (nothing)
 *   'c' stream commit   Int32 xid, Int8 flags (0), Int64 commit LSN,
 *                       Int64 end LSN, Int64 commit time
 *   'A' stream abort    Int32 xid, Int32 subxid (== xid for the top level)
 * TupleData: Int16 ncols, then per column one of
 *   'n' NULL;  'u' unchanged TOASTed value (not sent);
 *   't' Int32 length, Byte(length) text;  'b' Int32 length, Byte(length)
 *   binary (only with the binary option, which migd does not use).
 * 'O' carries no [xid] even inside a stream (and then a commit LSN of 0).
 * Not decoded: protocol version 3's two-phase messages (b P K r p).
 */
#include "pgoutput.h"

#include "util.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* --- time ------------------------------------------------------------------ */

int64_t pgoutput_pg_to_unix_us(int64_t pg_us)
{
	if (pg_us > INT64_MAX - PGOUTPUT_PG_EPOCH_UNIX_US)
		return INT64_MAX;
	return pg_us + PGOUTPUT_PG_EPOCH_UNIX_US;
}

int64_t pgoutput_unix_to_pg_us(int64_t unix_us)
{
	if (unix_us < INT64_MIN + PGOUTPUT_PG_EPOCH_UNIX_US)
		return INT64_MIN;
	return unix_us - PGOUTPUT_PG_EPOCH_UNIX_US;
}

/* --- bounded reader ---------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t left;
};

static bool rd_u8(struct rd *r, uint8_t *v)
{
	if (r->left < 1)
		return false;
	*v = r->p[0];
	r->p++;
	r->left--;
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	if (r->left < 4)
		return false;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	r->left -= 4;
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (r->left < 2)
		return false;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	r->left -= 2;
	return true;
}

static bool rd_u64(struct rd *r, uint64_t *v)
{
	if (r->left < 8)
		return false;
	*v = 0;
	for (int i = 0; i < 8; i++)
		*v = *v << 8 | r->p[i];
	r->p += 8;
	r->left -= 8;
	return true;
}

/* A time field: PG epoch on the wire, Unix epoch in the result. */
static bool rd_time(struct rd *r, int64_t *unix_us)
{
	uint64_t v;
	if (!rd_u64(r, &v))
		return false;
	*unix_us = pgoutput_pg_to_unix_us((int64_t)v);
	return true;
}

/* A NUL-terminated string; *s borrows from the buffer. */
static bool rd_str(struct rd *r, const char **s)
{
	const uint8_t *nul = memchr(r->p, 0, r->left);
	if (nul == NULL)
		return false;
	*s = (const char *)r->p;
	r->left -= (size_t)(nul - r->p) + 1;
	r->p = nul + 1;
	return true;
}

static bool rd_bytes(struct rd *r, size_t n, const uint8_t **p)
{
	if (r->left < n)
		return false;
	*p = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static bool fail(const char **err, const char *msg)
{
	*err = msg;
	return false;
}

/* An error naming a byte, formatted into the caller's errbuf. */
static bool fail_byte(const char **err, char *errbuf, const char *what, uint8_t b)
{
	if (b >= 0x20 && b < 0x7f)
		snprintf(errbuf, PGOUTPUT_ERRBUF, "%s '%c'", what, b);
	else
		snprintf(errbuf, PGOUTPUT_ERRBUF, "%s 0x%02x", what, b);
	*err = errbuf;
	return false;
}

/* --- framing ----------------------------------------------------------------- */

bool pgoutput_parse_frame(const uint8_t *buf, size_t len, struct pgoutput_frame *out,
			  const char **err)
{
	struct rd r = {buf, len};
	uint8_t type, reply;

	memset(out, 0, offsetof(struct pgoutput_frame, errbuf));
	if (!rd_u8(&r, &type))
		return fail(err, "empty replication message");
	out->type = (char)type;
	switch (type) {
	case 'w':
		if (!rd_u64(&r, &out->wal_start) || !rd_u64(&r, &out->wal_end) ||
		    !rd_time(&r, &out->send_time_us))
			return fail(err, "truncated XLogData header");
		out->data = r.p;
		out->len = r.left;
		return true;
	case 'k':
		if (!rd_u64(&r, &out->wal_end) || !rd_time(&r, &out->send_time_us) ||
		    !rd_u8(&r, &reply))
			return fail(err, "truncated keepalive");
		if (r.left != 0)
			return fail(err, "trailing bytes after keepalive");
		out->reply_requested = reply != 0;
		return true;
	default:
		return fail_byte(err, out->errbuf, "unknown replication message type", type);
	}
}

void pgoutput_build_status(uint8_t out[PGOUTPUT_STATUS_LEN], uint64_t write_lsn, uint64_t flush_lsn,
			   uint64_t apply_lsn, int64_t now_unix_us, bool reply_requested)
{
	out[0] = 'r';
	put_u64(out + 1, write_lsn);
	put_u64(out + 9, flush_lsn);
	put_u64(out + 17, apply_lsn);
	put_u64(out + 25, (uint64_t)pgoutput_unix_to_pg_us(now_unix_us));
	out[33] = reply_requested ? 1 : 0;
}

/* --- decoder ----------------------------------------------------------------- */

/* Makes room for need elements of size elem in *arr (capacity *cap). */
static void grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	*arr = xrealloc(*arr, n * elem);
	*cap = n;
}

/*
 * Reads TupleData into scratch->vals[base..base+ncols).  The caller takes
 * pointers into scratch->vals only after its last read_tuple(): a later one
 * may move the array.
 */
static bool read_tuple(struct rd *r, struct change_scratch *s, size_t base, uint16_t *ncols,
		       char *errbuf, const char **err)
{
	uint16_t n;
	if (!rd_u16(r, &n))
		return fail(err, "truncated tuple");
	if (n > INT16_MAX)
		return fail(err, "negative tuple column count");
	if (n > r->left) /* every column takes at least its kind byte */
		return fail(err, "truncated tuple");
	grow((void **)&s->vals, &s->nvals_cap, base + n, sizeof(*s->vals));
	for (uint16_t i = 0; i < n; i++) {
		struct change_value *v = &s->vals[base + i];
		uint8_t kind;
		uint32_t vlen;
		const uint8_t *data;
		if (!rd_u8(r, &kind))
			return fail(err, "truncated tuple");
		*v = (struct change_value){.kind = kind};
		switch (kind) {
		case 'n':
		case 'u':
			break;
		case 't':
			if (!rd_u32(r, &vlen))
				return fail(err, "truncated tuple value length");
			if (vlen > INT32_MAX)
				return fail(err, "negative tuple value length");
			if (!rd_bytes(r, vlen, &data))
				return fail(err, "truncated tuple value");
			v->len = vlen;
			v->data = (const char *)data;
			break;
		case 'b':
			return fail(err, "binary tuple data ('b') is not supported: "
					 "migd streams in text mode");
		default:
			return fail_byte(err, errbuf, "unknown tuple column kind", kind);
		}
	}
	*ncols = n;
	return true;
}

static bool decode_relation(struct rd *r, struct pgoutput_msg *out, struct change_scratch *s,
			    const char **err)
{
	struct change_relation *rel = &out->ev.rel;
	uint8_t ident;
	uint16_t n;

	out->ev.kind = CHG_RELATION;
	if (!rd_u32(r, &rel->relid) || !rd_str(r, &rel->schema) || !rd_str(r, &rel->name) ||
	    !rd_u8(r, &ident) || !rd_u16(r, &n))
		return fail(err, "truncated relation message");
	if (ident != 'd' && ident != 'n' && ident != 'f' && ident != 'i')
		return fail_byte(err, out->errbuf, "unknown replica identity", ident);
	rel->replident = (char)ident;
	if (n > INT16_MAX)
		return fail(err, "negative relation column count");
	if ((size_t)n * 10 > r->left) /* flags, name's NUL, type oid, typmod */
		return fail(err, "truncated relation columns");
	grow((void **)&s->cols, &s->ncols_cap, n, sizeof(*s->cols));
	for (uint16_t i = 0; i < n; i++) {
		struct change_column *c = &s->cols[i];
		uint8_t flags;
		uint32_t typmod;
		if (!rd_u8(r, &flags) || !rd_str(r, &c->name) || !rd_u32(r, &c->type_oid) ||
		    !rd_u32(r, &typmod))
			return fail(err, "truncated relation columns");
		c->type_mod = (int32_t)typmod;
		c->flags = (flags & 1) ? CHC_KEY : 0;
	}
	rel->ncols = n;
	rel->cols = s->cols;
	return true;
}

/* I, U, D after the xid: relid, then the tuples their tags announce. */
static bool decode_row(struct rd *r, uint8_t tag, struct pgoutput_msg *out,
		       struct change_scratch *s, const char **err)
{
	struct change_event *ev = &out->ev;
	uint8_t t;
	uint16_t nold = 0, nnew = 0;

	ev->kind = tag == 'I' ? CHG_INSERT : tag == 'U' ? CHG_UPDATE : CHG_DELETE;
	ev->row.old_kind = 0;
	if (!rd_u32(r, &ev->row.relid) || !rd_u8(r, &t))
		return fail(err, "truncated row message");
	if (tag != 'I' && (t == 'K' || t == 'O')) {
		ev->row.old_kind = (char)t;
		if (!read_tuple(r, s, 0, &nold, out->errbuf, err))
			return false;
		if (tag == 'U' && !rd_u8(r, &t))
			return fail(err, "truncated update: no new tuple");
	}
	if (tag == 'D') {
		if (ev->row.old_kind == 0)
			return fail_byte(err, out->errbuf, "delete: expected 'K' or 'O', got", t);
	} else {
		if (t != 'N')
			return fail_byte(err, out->errbuf,
					 tag == 'I' ? "insert: expected 'N', got"
						    : "update: expected 'K', 'O' or 'N', got",
					 t);
		if (!read_tuple(r, s, nold, &nnew, out->errbuf, err))
			return false;
	}
	/* Only now: read_tuple() may have moved scratch->vals. */
	ev->row.old_tuple = (struct change_tuple){nold, nold ? s->vals : NULL};
	ev->row.new_tuple = (struct change_tuple){nnew, nnew ? s->vals + nold : NULL};
	return true;
}

static bool decode_truncate(struct rd *r, struct pgoutput_msg *out, struct change_scratch *s,
			    const char **err)
{
	uint32_t n;

	out->ev.kind = CHG_TRUNCATE;
	if (!rd_u32(r, &n) || !rd_u8(r, &out->ev.truncate.flags))
		return fail(err, "truncated truncate message");
	if (n > UINT16_MAX)
		return fail(err, "truncate of more than 65535 relations");
	if ((size_t)n * 4 != r->left)
		return fail(err, "truncate relation count does not match its length");
	grow((void **)&s->relids, &s->nrelids_cap, n, sizeof(*s->relids));
	for (uint32_t i = 0; i < n; i++)
		(void)rd_u32(r, &s->relids[i]);
	out->ev.truncate.nrelids = (uint16_t)n;
	out->ev.truncate.relids = n ? s->relids : NULL;
	return true;
}

/* Inside a stream chunk these carry the (sub)transaction's xid first. */
static bool carries_stream_xid(uint8_t tag)
{
	return tag == 'R' || tag == 'Y' || tag == 'I' || tag == 'U' || tag == 'D' || tag == 'T' ||
	       tag == 'M';
}

bool pgoutput_decode(const uint8_t *msg, size_t len, bool in_stream, struct pgoutput_msg *out,
		     struct change_scratch *scratch, const char **err)
{
	struct rd r = {msg, len};
	struct change_event *ev = &out->ev;
	uint8_t tag, b;
	uint32_t xid = 0;
	uint64_t lsn, lsn2;
	const uint8_t *content;
	bool ok;

	memset(out, 0, offsetof(struct pgoutput_msg, errbuf));
	if (!rd_u8(&r, &tag))
		return fail(err, "empty pgoutput message");
	out->tag = (char)tag;
	out->kind = PGO_CHANGE;
	if (in_stream && carries_stream_xid(tag) && !rd_u32(&r, &xid))
		return fail(err, "truncated streamed message: no xid");

	switch (tag) {
	case 'B':
		ev->kind = CHG_BEGIN;
		if (!rd_u64(&r, &lsn) || !rd_time(&r, &ev->begin.commit_time_us) ||
		    !rd_u32(&r, &ev->xid))
			return fail(err, "truncated begin message");
		ev->begin.final_pos = pos_from_lsn(lsn);
		break;
	case 'C':
		ev->kind = CHG_COMMIT;
		if (!rd_u8(&r, &b) || !rd_u64(&r, &lsn) || !rd_u64(&r, &lsn2) ||
		    !rd_time(&r, &ev->commit.commit_time_us))
			return fail(err, "truncated commit message");
		ev->commit.commit_pos = pos_from_lsn(lsn);
		ev->commit.end_pos = pos_from_lsn(lsn2);
		break;
	case 'O':
		ev->kind = CHG_ORIGIN;
		if (!rd_u64(&r, &lsn) || !rd_str(&r, &ev->origin.name))
			return fail(err, "truncated origin message");
		ev->origin.commit_pos = pos_from_lsn(lsn);
		break;
	case 'R':
		ev->xid = xid;
		if (!decode_relation(&r, out, scratch, err))
			return false;
		break;
	case 'I':
	case 'U':
	case 'D':
		ev->xid = xid;
		if (!decode_row(&r, tag, out, scratch, err))
			return false;
		break;
	case 'T':
		ev->xid = xid;
		if (!decode_truncate(&r, out, scratch, err))
			return false;
		break;
	case 'Y':
		out->kind = PGO_TYPE;
		out->type.xid = xid;
		if (!rd_u32(&r, &out->type.oid) || !rd_str(&r, &out->type.schema) ||
		    !rd_str(&r, &out->type.name))
			return fail(err, "truncated type message");
		break;
	case 'M':
		out->kind = PGO_MESSAGE;
		out->message.xid = xid;
		if (!rd_u8(&r, &b) || !rd_u64(&r, &out->message.lsn) ||
		    !rd_str(&r, &out->message.prefix) || !rd_u32(&r, &out->message.len))
			return fail(err, "truncated logical decoding message");
		if (!rd_bytes(&r, out->message.len, &content))
			return fail(err, "truncated logical decoding message content");
		out->message.transactional = (b & 1) != 0;
		out->message.content = content;
		break;
	case 'S':
		out->kind = PGO_STREAM_START;
		if (!rd_u32(&r, &out->stream_start.xid) || !rd_u8(&r, &b))
			return fail(err, "truncated stream start message");
		if (b > 1)
			return fail(err, "stream start: first-segment flag is not 0 or 1");
		out->stream_start.first_segment = b == 1;
		break;
	case 'E':
		out->kind = PGO_STREAM_STOP;
		break;
	case 'c':
		out->kind = PGO_STREAM_COMMIT;
		ok = rd_u32(&r, &out->stream_commit.xid) && rd_u8(&r, &out->stream_commit.flags) &&
		     rd_u64(&r, &lsn) && rd_u64(&r, &lsn2) &&
		     rd_time(&r, &out->stream_commit.commit_time_us);
		if (!ok)
			return fail(err, "truncated stream commit message");
		out->stream_commit.commit_pos = pos_from_lsn(lsn);
		out->stream_commit.end_pos = pos_from_lsn(lsn2);
		break;
	case 'A':
		out->kind = PGO_STREAM_ABORT;
		if (!rd_u32(&r, &out->stream_abort.xid) || !rd_u32(&r, &out->stream_abort.subxid))
			return fail(err, "truncated stream abort message");
		break;
	default:
		return fail_byte(err, out->errbuf, "unknown message type", tag);
	}
	if (r.left != 0) {
		snprintf(out->errbuf, PGOUTPUT_ERRBUF, "%zu trailing bytes after '%c' message",
			 r.left, tag);
		*err = out->errbuf;
		return false;
	}
	return true;
}

/* --- sequence ---------------------------------------------------------------- */

void pgoutput_state_init(struct pgoutput_state *st)
{
	*st = (struct pgoutput_state){0};
}

bool pgoutput_next(struct pgoutput_state *st, const uint8_t *msg, size_t len,
		   struct pgoutput_msg *out, struct change_scratch *scratch, const char **err)
{
	bool inside = st->in_txn || st->in_stream;

	if (!pgoutput_decode(msg, len, st->in_stream, out, scratch, err))
		return false;
	switch (out->kind) {
	case PGO_CHANGE:
		switch (out->ev.kind) {
		case CHG_BEGIN:
			if (inside)
				return fail(err, "protocol violation: begin inside a transaction");
			st->in_txn = true;
			st->txn_xid = out->ev.xid;
			st->final_lsn = out->ev.begin.final_pos.lsn;
			return true;
		case CHG_COMMIT:
			if (!st->in_txn)
				return fail(err, "protocol violation: commit without begin");
			if (out->ev.commit.commit_pos.lsn != st->final_lsn)
				return fail(err, "protocol violation: commit LSN is not "
						 "begin's final LSN");
			out->ev.xid = st->txn_xid;
			st->in_txn = false;
			return true;
		default:
			if (!inside)
				return fail(err,
					    "protocol violation: change outside a transaction");
			if (st->in_txn)
				out->ev.xid = st->txn_xid;
			else if (out->ev.xid == 0) /* 'O' in a chunk carries no xid */
				out->ev.xid = st->stream_xid;
			return true;
		}
	case PGO_TYPE:
		if (!inside)
			return fail(err, "protocol violation: type outside a transaction");
		return true;
	case PGO_MESSAGE:
		if (out->message.transactional && !inside)
			return fail(err, "protocol violation: transactional message "
					 "outside a transaction");
		return true;
	case PGO_STREAM_START:
		if (inside)
			return fail(err, "protocol violation: stream start inside a "
					 "transaction or stream");
		st->in_stream = true;
		st->stream_xid = out->stream_start.xid;
		return true;
	case PGO_STREAM_STOP:
		if (!st->in_stream || st->in_txn)
			return fail(err, "protocol violation: stream stop without stream start");
		st->in_stream = false;
		return true;
	case PGO_STREAM_COMMIT:
	case PGO_STREAM_ABORT:
		if (inside)
			return fail(err, "protocol violation: stream commit or abort inside a "
					 "transaction or stream");
		return true;
	case PGO__MAX:
		break;
	}
	return fail(err, "BUG: unhandled pgoutput message kind");
}

const char *pgoutput_kind_name(enum pgoutput_kind k)
{
	static const char *const names[PGO__MAX] = {
	    [PGO_CHANGE] = "change",
	    [PGO_TYPE] = "type",
	    [PGO_MESSAGE] = "message",
	    [PGO_STREAM_START] = "stream_start",
	    [PGO_STREAM_STOP] = "stream_stop",
	    [PGO_STREAM_COMMIT] = "stream_commit",
	    [PGO_STREAM_ABORT] = "stream_abort",
	};
	if ((int)k < 0 || k >= PGO__MAX || names[k] == NULL)
		return "unknown";
	return names[k];
}
