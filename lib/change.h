/*
 * change: the engine-neutral change model.
 *
 * Every source reader (pgoutput, binlog, backfill) turns its engine's log
 * into a stream of events, and every sink applies that stream:
 *
 *     RELATION (describes relid's columns; precedes its first use)
 *     BEGIN(xid, final position) ORIGIN? (INSERT|UPDATE|DELETE|TRUNCATE)* COMMIT(end position, time)
 *
 * Values travel in PostgreSQL's text representation (what pgoutput sends
 * and what COPY and text-format parameters take); other engines' readers
 * render into the same canonical text so snapshot and stream never disagree.
 *
 * Events are views: their strings, tuples and arrays are borrowed from the
 * buffer that produced them (a decoded message or spool record) and are
 * valid until the producer's next call.  Whoever needs a relation longer
 * keeps it in a change_relcache, which deep-copies.
 *
 * This module also encodes events to bytes and decodes them back (the spool
 * and spill files store that form): a record is self-describing and
 * versioned by its first byte.
 */
#ifndef MIGD_CHANGE_H
#define MIGD_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pos.h"

enum change_kind {
	CHG_BEGIN = 1,
	CHG_COMMIT,
	CHG_RELATION,
	CHG_INSERT,
	CHG_UPDATE,
	CHG_DELETE,
	CHG_TRUNCATE,
	CHG_ORIGIN,
	CHG__MAX,
};

enum change_value_kind {
	CHV_NULL = 'n',
	CHV_UNCHANGED = 'u', /* unchanged TOAST: the value is not in the stream */
	CHV_TEXT = 't',
	/*
	 * A value the source reader could not render faithfully (a zero date,
	 * bytes invalid in the column's charset): data is a short reason.  A
	 * sink must never apply it; the change becomes a failed record.
	 */
	CHV_BAD = 'x',
};

struct change_value {
	uint8_t kind;     /* enum change_value_kind */
	uint32_t len;     /* CHV_TEXT, CHV_BAD */
	const char *data; /* borrowed; not NUL-terminated; CHV_TEXT, CHV_BAD */
};

struct change_tuple {
	uint16_t ncols;
	struct change_value *vals; /* borrowed */
};

#define CHC_KEY 0x01 /* part of the replica identity / primary key */

struct change_column {
	const char *name; /* borrowed (owned inside a relcache entry) */
	uint32_t type_oid; /* PostgreSQL type OID (other engines map to one) */
	int32_t type_mod;
	uint8_t flags; /* CHC_* */
};

struct change_relation {
	uint32_t relid;     /* the source's id for the relation (PG OID) */
	const char *schema; /* borrowed */
	const char *name;   /* borrowed */
	char replident;     /* 'd' default, 'n' nothing, 'f' full, 'i' index */
	uint16_t ncols;
	struct change_column *cols; /* borrowed */
	/*
	 * NULL, or why the source reader cannot deliver this relation's
	 * changes faithfully (DDL seen, a row image that is not FULL): a sink
	 * stops applying it (schema error) with this reason.  Borrowed.
	 */
	const char *problem;
};

struct change_event {
	enum change_kind kind;
	uint32_t xid; /* source transaction id when known, else 0 */
	union {
		struct {
			/*
			 * Where the transaction commits: PostgreSQL's commit LSN; for a
			 * binlog source the GTID state it completes, with the coordinate
			 * of its GTID event (a group is written at commit).
			 */
			struct pos final_pos;
			int64_t commit_time_us; /* microseconds since the Unix epoch */
		} begin;
		struct {
			struct pos commit_pos; /* the commit record itself */
			struct pos end_pos;    /* position just after it: resume here */
			int64_t commit_time_us;
		} commit;
		struct change_relation rel;
		struct {
			uint32_t relid;
			char old_kind; /* 0: no old tuple, 'K': key columns only, 'O': full old row */
			struct change_tuple old_tuple;
			struct change_tuple new_tuple; /* INSERT, UPDATE */
		} row;
		struct {
			uint8_t flags; /* 1: CASCADE, 2: RESTART IDENTITY */
			uint16_t nrelids;
			const uint32_t *relids; /* borrowed */
		} truncate;
		struct {
			struct pos commit_pos; /* pgoutput sends the origin's commit LSN */
			const char *name;      /* borrowed */
		} origin;
	};
};

const char *change_kind_name(enum change_kind k);

/* --- encoding (spool and spill files) ------------------------------------ */

/* A growable byte buffer. */
struct change_buf {
	uint8_t *data; /* owned */
	size_t len, cap;
};
void change_buf_reset(struct change_buf *b);
/* Room for extra more bytes after len (capacity doubles). */
void change_buf_reserve(struct change_buf *b, size_t extra);
/* Appends n bytes; v in decimal, as "%llu" prints it (snprintf costs a fifth of a snapshot read). */
void change_buf_put(struct change_buf *b, const void *p, size_t n);
void change_buf_put_udec(struct change_buf *b, uint64_t v);
void change_buf_free(struct change_buf *b);

/* Appends the encoded form of ev to out (does not reset it first). */
void change_encode(const struct change_event *ev, struct change_buf *out);

/*
 * Scratch space decode borrows into: tuple value arrays, relation column
 * arrays, relid arrays.  Reused across decodes; free with
 * change_scratch_free().
 */
struct change_scratch {
	struct change_value *vals; /* owned */
	size_t nvals_cap;
	struct change_column *cols; /* owned */
	size_t ncols_cap;
	uint32_t *relids; /* owned */
	size_t nrelids_cap;
};
void change_scratch_free(struct change_scratch *s);

/*
 * Decodes one encoded event from data[0..len).  ev's pointers borrow from
 * data and scratch.  Returns false, with *err a static message, if the bytes
 * are not a well-formed event (never reads past len).
 */
bool change_decode(const uint8_t *data, size_t len, struct change_event *ev,
		   struct change_scratch *scratch, const char **err) __attribute__((warn_unused_result));

/* --- relation cache ------------------------------------------------------ */

/* An owned copy of a relation description. */
struct change_rel {
	struct change_relation desc; /* strings and cols owned by this struct */
	uint64_t generation;         /* bumps each time relid is redefined */
};

struct change_relcache;

/* Caller frees with change_relcache_free(). */
struct change_relcache *change_relcache_new(void);
void change_relcache_free(struct change_relcache *rc);

/*
 * Stores a deep copy of rel (replacing an earlier one with the same relid).
 * Returns the cached entry (borrowed; valid until replaced or freed) and
 * sets *changed when the column set differs from what was cached before
 * (names, types, key flags), i.e. the relation's shape changed.
 */
const struct change_rel *change_relcache_put(struct change_relcache *rc,
					     const struct change_relation *rel, bool *changed);
const struct change_rel *change_relcache_get(const struct change_relcache *rc, uint32_t relid);

/* Calls fn for every cached relation (order unspecified). */
void change_relcache_foreach(const struct change_relcache *rc,
			     void (*fn)(const struct change_rel *r, void *arg), void *arg);

#endif
