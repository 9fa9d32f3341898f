/*
 * vside: one side of a validation comparison -- a PostgreSQL database, a
 * MySQL/MariaDB source or a MySQL/MariaDB target -- and the reads
 * validation makes of it, every row in one canonical form, so that the two
 * sides compare whatever their engines.  validate.c decides what to
 * compare and when; this module only reads.
 *
 * Canonical form.  A row's canonical text is its line in PostgreSQL's COPY
 * text format for the table's PostgreSQL types (a MariaDB source's mapped
 * types, docs/type-mapping.md), without the newline: each column's output
 * text in table order, tab-separated, \N for NULL, backslash and \b \f \n
 * \r \t \v escaped as COPY escapes them, in UTF-8.
 *   - PostgreSQL builds it server-side: col::text where that cast is the
 *     type's output function, format('%s', col) where it is not (boolean,
 *     inet, char(n), ...), escaped with replace().  Sessions are set to
 *     TimeZone UTC, DateStyle ISO, IntervalStyle postgres,
 *     extra_float_digits 1, bytea_output hex and client_encoding UTF8, the
 *     settings the MariaDB renderers print for.  That this is byte for byte
 *     what COPY ... TO STDOUT prints is tested
 *     (tests/integration/test_my_validate.sh hashes COPY output client-side
 *     and compares).
 *   - MariaDB rows come from mysnap (binary protocol, the binlog decoder's
 *     renderers) as mysnap_copy_line() lines, byte-identical to what
 *     PostgreSQL prints for the mapped types (test_my_types).  A value
 *     PostgreSQL cannot take (a zero date) keeps its diagnostic text: such
 *     a row cannot be on the target as it is, so it differs.
 * Digest text.  A checksum digest does not hash the canonical text itself
 * but its digest text, which says the same without COPY's escapes: each
 * column in table order, tab-separated, \N for NULL, a plain column's text
 * as it is (a type whose text never holds a backslash or a control
 * character: integers, numerics, floats, dates and times, uuid, inet, bit;
 * vside_text_is_plain()), any other column's text unescaped behind its
 * length in bytes and a colon ("5:a\tb c" for the COPY field a\tb c).  It
 * is as exact as the COPY line: read left to right it gives back every
 * value (a length never starts with a backslash, a plain text holds no
 * tab), so two rows share a digest text only when they share a COPY line.
 * PostgreSQL builds it without the seven replace() calls per text column
 * that COPY's escapes take in SQL (about 2.5x cheaper in the server on
 * sysbench rows), a MariaDB side without an escaping pass.  Both sides of
 * a pair take their plain columns from the source's types (and a
 * PostgreSQL source's shapes, vside_table.plain), so they write one digest
 * text for one row.  (Per-row hashes for narrowing, vside_hashes(), stay
 * md5s of the COPY line.)
 * A row's hash is md5 of its digest text; a set of rows digests as its
 * count and the sum of each row's first 60 md5 bits: order-independent and
 * exact (PostgreSQL sums in numeric, the client in 128 bits).  So
 * PostgreSQL hashes in the server and only a MariaDB source's rows cross
 * the wire.
 * Digests can instead sum PostgreSQL's own 64-bit text hash of the same
 * text (hashtextextended(text COLLATE "C", 0): Bob Jenkins' hash, 3-4x
 * cheaper in the server than md5 and its hex), which vside computes the
 * same way for a MariaDB side (vside_pghash()).  It depends on the
 * server's byte order and needs UTF-8 text, so it is used only when every
 * PostgreSQL side was probed and hashes as vside_pghash() does
 * (vside_probe_pghash()); otherwise md5.  When both sides are PostgreSQL,
 * the text hashed can be the row's record text instead, ROW(columns)::text:
 * each column's output function's text, quoted where needed, so as exact
 * as the COPY line and half its cost to build (no replace() chains).
 * A row's key is the text[] literal of its key columns' output texts as
 * array_out() quotes it (PostgreSQL: ARRAY[..]::text; MariaDB:
 * mysnap_tuple_key()), the same string on both sides for the same key.
 *
 * A MySQL/MariaDB target (vside_my.c) is read through mysnap too, as its
 * own columns' mapped types: its catalog is read once (mymeta) and each
 * migrated table becomes a table of the source's columns, in the source's
 * order, with the target's names, types and collations (vside_table.read).
 * MariaDB -> MariaDB: the columns have the source's types, so both sides
 * print alike.  PostgreSQL -> MariaDB: the MariaDB column is not always
 * the PostgreSQL type's own (docs/type-mapping.md, "PostgreSQL ->
 * MariaDB"), so the PostgreSQL side prints those columns in the shape the
 * target's column holds them (vside_table.expr): boolean as 1/0 for
 * TINYINT(1), char(n) without its padding for CHAR(n), an IPv4 inet as
 * ::ffff:a.b.c.d for INET6, timestamptz as its UTC wall-clock time for
 * DATETIME, a numeric at the DECIMAL's scale where that is the same
 * number.  A pair of types without an exact common text is refused by
 * name (vside_refused()): never a false result.
 *
 * Snapshots.  Every read is one statement, so it sees one consistent
 * snapshot (PostgreSQL's statement snapshot, InnoDB's consistent read);
 * a source position read after it (vside_position()) is a valid fence: each
 * change the read saw is in the log before it.
 *
 * Blocking (worker threads only).
 */
#ifndef MIGD_VSIDE_H
#define MIGD_VSIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "conf.h"
#include "myconn.h"
#include "pgconn.h"
#include "pos.h"
#include "tables.h"

/* How a set of rows is digested (both sides of a comparison the same way). */
enum vdigest_kind {
	VDIGEST_MD5,	/* the first 60 bits of each row's md5 */
	VDIGEST_PGHASH, /* each row's hashtextextended(text, 0), signed 64 bits */
	VDIGEST_PGROW,	/* PostgreSQL on both sides: the same of ROW(columns)::text */
};

/*
 * How one side reads one migrated table when the table set's description
 * alone does not say (vside_my_prepare()).
 */
struct vside_table {
	const struct mig_table *of; /* borrowed: the migrated table (the source's description) */
	struct mig_table *read;	    /* owned: a MySQL/MariaDB target's table as mysnap reads it:
				       of's columns in of's order, the target's names and types,
				       qname `db`.`name`; NULL: of itself */
	char **expr;   /* owned, of->ncols (a PostgreSQL source): a column's text in the
			  target's shape, NULL entries: canonical; NULL: all canonical */
	bool *plain;   /* owned, of->ncols: column i's text needs no COPY escaping (with a
			  MySQL/MariaDB target: the source's word, on both sides); NULL: by
			  type (vside_text_is_plain()) */
	char *refused; /* owned: why rows of it cannot be compared exactly; NULL: they can */
};

struct vside {
	enum migd_engine engine;
	enum vdigest_kind digest; /* what vside_digest() sums (VDIGEST_MD5 unless set) */
	bool target;	      /* reads t->tgt_qname, else t->qname */
	bool legacy_detail;   /* vside_row(): the PostgreSQL pair's historical form */
	const char *conninfo; /* borrowed, secret: libpq conninfo or a MySQL/MariaDB dsn */
	const char *password; /* borrowed, secret: overrides the dsn's; may be NULL */
	struct pgconn pg;     /* engine PostgreSQL */
	struct myconn my;     /* engine MySQL/MariaDB */
	struct vside_table *tables; /* owned (vside_close() frees): per-table reads, ntables */
	int ntables;
};

/* Which rows a read covers. */
struct vsel {
	const char *lo, *hi; /* the key range (lo, hi] as text[] literals; NULL: open */
	bool by_keys;	     /* instead: exactly the rows of these keys */
	char *const *keys;   /* text[] literals, nkeys of them */
	size_t nkeys;
};

/*
 * A set of rows: how many, and the sum of their hashes (md5: the first 60
 * bits; pghash: the signed 64-bit values, summed modulo 2^128, which is
 * exact: no sum of 2^63 such values reaches 2^127).
 */
struct vdigest {
	int64_t rows;
	unsigned __int128 sum;
};

/* Connects unless connected and healthy (the session set up for canonical text). */
bool vside_ensure(struct vside *s, struct err *err) __attribute__((warn_unused_result));
/* Disconnects and frees the per-table reads. */
void vside_close(struct vside *s);

/*
 * vside_my.c: prepares src and tgt (connected; tgt a MySQL/MariaDB target)
 * to compare every table of ts: reads the target's catalog on tgt's
 * connection and sets tgt->tables (each table's target read) and, for a
 * PostgreSQL src, src->tables (its columns in the target's shape).  A
 * table whose rows cannot be compared exactly gets a reason
 * (vside_refused()); a target table or column that is missing is one too.
 * False with err when the catalog cannot be read.
 */
bool vside_my_prepare(struct vside *src, struct vside *tgt, const struct mig_tableset *ts,
		      struct err *err) __attribute__((warn_unused_result));

/*
 * Whether source column s (of a PostgreSQL source when pg_source, else of a
 * MySQL/MariaDB one) and target column t (as mymeta describes a MariaDB
 * column) print one value alike: true with *expr NULL when their canonical
 * texts already agree, or a new PostgreSQL expression printing s in t's
 * shape (caller frees; *plain: its text needs no COPY escaping).  False
 * when no exact common text exists.  vside_my_prepare() refuses a key
 * column that needs an expression.  Exposed for unit tests.
 */
bool vside_my_column(const struct mig_column *s, const struct mig_column *t, bool pg_source,
		     char **expr, bool *plain) __attribute__((warn_unused_result));

/* Why rows of t cannot be compared exactly on s (borrowed), or NULL. */
const char *vside_refused(const struct vside *s, const struct mig_table *t);
bool vside_is_broken(const struct vside *s);

/*
 * The source's log position now, as a fence: PostgreSQL's WAL insert
 * position; MariaDB's GTID position with the binlog coordinate it
 * stands at ("gtid:0-1-281@mariadb-bin.000003:1234": @@gtid_binlog_pos and
 * SHOW MASTER STATUS, read until the GTID position did not move
 * meanwhile), or the coordinate alone when the server has no GTID yet,
 * is MySQL, or kept committing.  pos_scalar() of it is never 0.
 */
bool vside_position(struct vside *s, struct pos *at, struct err *err)
    __attribute__((warn_unused_result));

/* Rows of t (the whole table). */
bool vside_count(struct vside *s, const struct mig_table *t, int64_t *rows, struct err *err)
    __attribute__((warn_unused_result));

/* The digest of sel's rows of t, of kind s->digest. */
bool vside_digest(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		  struct vdigest *d, struct err *err) __attribute__((warn_unused_result));

/*
 * The same in two steps on PostgreSQL, so that the caller can read the
 * other side meanwhile: _send() starts the query, _recv() waits for its
 * digest.  Nothing else may use s in between.  MariaDB: _send() does
 * nothing and _recv() reads (vside_digest()).
 */
bool vside_digest_send(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		       struct err *err) __attribute__((warn_unused_result));
bool vside_digest_recv(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		       struct vdigest *d, struct err *err) __attribute__((warn_unused_result));
/*
 * Between the two: whether _recv() would return without waiting for the
 * server (PostgreSQL: its answer is in, or the link failed; MySQL/MariaDB:
 * always, _recv() does the read).
 */
bool vside_digest_ready(struct vside *s);

/*
 * Whether s can digest with VDIGEST_PGHASH: a MariaDB side always (vside
 * hashes its rows); a PostgreSQL side when its server_encoding is UTF8
 * and its hashtextextended() gives vside_pghash()'s values for probe
 * strings of every tail length.  False with err only when the query fails.
 */
bool vside_probe_pghash(struct vside *s, bool *ok, struct err *err)
    __attribute__((warn_unused_result));

/*
 * Calls fn(key, md5) for each of sel's rows: its key (text[] literal) and
 * the md5 of its canonical text (32 hex digits).  Memory is bounded by one
 * row on MariaDB; PostgreSQL's result holds sel's rows (a chunk or a
 * batch of keys).
 */
bool vside_hashes(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		  void (*fn)(void *arg, const char *key, const char *md5), void *arg,
		  struct err *err) __attribute__((warn_unused_result));

/* One row's values, for a report. */
struct vrow {
	int n;
	char **val;	     /* owned, n: the output text (unescaped), NULL for NULL */
	const char **status; /* owned array of static strings, n: a MariaDB value's
				binlog_value_status_name() when not ok, else NULL */
};
void vrow_free(struct vrow *r);

/*
 * The row of t with key `key` (a text[] literal): *found false when there
 * is none.  Values in canonical text; with legacy_detail (PostgreSQL pair)
 * as that pair always showed them: timestamps in UTC with microseconds,
 * booleans 1/0, bytea as bare hex.
 */
bool vside_row(struct vside *s, const struct mig_table *t, const char *key, struct vrow *out,
	       bool *found, struct err *err) __attribute__((warn_unused_result));

/*
 * Runs a configured query; each result row as one string, per column "N"
 * for NULL or "V<bytes>:<text>" joined with "|" (the text protocol's
 * values: the server's own text).  More than max_rows rows is an error.
 * *rows: owned array of owned strings, *n of them (caller frees each and it).
 */
bool vside_query(struct vside *s, const char *sql, int max_rows, char ***rows, int *n,
		 struct err *err) __attribute__((warn_unused_result));

/*
 * Whether a PostgreSQL type's output text never holds a backslash or a
 * control character (COPY leaves it as it is): a plain column of a digest
 * text.
 */
bool vside_text_is_plain(uint32_t type_oid);

/*
 * Appends a row's digest text (see Digest text above) to out: row's values
 * in table order, plain[i] whether column i is plain.  Returns false
 * (appending nothing) when a value is neither CHV_TEXT nor CHV_NULL.
 */
bool vside_digest_text(struct change_buf *out, const struct change_tuple *row, const bool *plain)
    __attribute__((warn_unused_result));

/* Adds one row's digest text to d: md5's first 60 bits. */
void vdigest_add(struct vdigest *d, const void *text, size_t len);
/* The same for either kind. */
void vdigest_add_kind(struct vdigest *d, enum vdigest_kind kind, const void *text, size_t len);
/*
 * PostgreSQL's hash_bytes_extended(text, len, 0) -- what hashtextextended(t,
 * 0) returns for a text under a deterministic collation -- on a
 * little-endian server.
 */
uint64_t vside_pghash(const void *text, size_t len);
/* "rows/sum" in decimal; returns buf (48 bytes always suffice). */
char *vdigest_format(const struct vdigest *d, char *buf, size_t n);

/*
 * The PostgreSQL expressions of the canonical form, for a table read as
 * alias-free column names: the row's text (before md5) and its key's
 * text[] literal.  Caller frees.
 */
char *vside_pg_row_expr(const struct mig_table *t);
char *vside_pg_key_expr(const struct mig_table *t);
/*
 * The same for the row's digest text (plain columns by type), its lengths
 * those of the UTF-8 text: the column's own with utf8_db (a UTF8
 * database), else of its convert_to(.., 'UTF8').  Caller frees.
 */
char *vside_pg_digest_expr(const struct mig_table *t, bool utf8_db);

/* The session settings canonical text is printed under (PostgreSQL), one SQL string;
   also no parallel workers. */
extern const char vside_pg_settings[];

#endif
