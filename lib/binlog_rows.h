/*
 * binlog_rows: MySQL/MariaDB row-based binlog events as pure functions on
 * byte buffers: TABLE_MAP_EVENT (with the optional metadata that
 * binlog_row_metadata=FULL adds) and WRITE/UPDATE/DELETE_ROWS (v1 and v2),
 * every value rendered into PostgreSQL's canonical text (change.h): what
 * PostgreSQL prints for the mapped type, so that the stream and a snapshot
 * of the same rows agree.
 *
 * libmariadb stays the transport: it delivers events, this module decodes
 * them (mariadb_rpl_extract_rows is wrong for many types, see
 * ../shared/background/protocol-facts.md).  No I/O, no libmariadb, no
 * global state.  Malformed input is reported (false + a static message),
 * never read past.  Event bodies given here start after the 19-byte common
 * event header and stop before the CRC32 checksum (when binlog_checksum is
 * on, the last 4 bytes of an event): post-header + body.
 *
 * Values travel as struct change_value (CHV_TEXT, CHV_NULL, and
 * CHV_UNCHANGED for a column absent from a non-FULL row image).  Each value
 * also has a status: problems that are data (a zero date, bytes that are
 * not valid in the column's character set, ...) are reported per value so
 * migd can record a failed record with table, key and position; the text
 * of such a value is a diagnostic rendering (documented per status), never
 * to be applied as is.
 *
 * Renderings (the PostgreSQL type each one is meant for in brackets):
 *   TINY SHORT INT24 LONG LONGLONG  decimal, signed or unsigned
 *                                   [smallint/integer/bigint/numeric(20)]
 *   YEAR          "1901".."2155" [smallint]; 0 -> "0000" + ZERO_DATE
 *   FLOAT DOUBLE  PostgreSQL 15's float4out/float8out with extra_float_digits
 *                 = 1 (its default): the shortest digits that read back to
 *                 the same value, never the exact midpoint to a neighbour
 *                 (PostgreSQL's Ryu is built with STRICTLY_SHORTEST 0, so
 *                 1e23 prints 9.999999999999999e+22); fixed notation when
 *                 the decimal exponent is in [-4, 6) for FLOAT or [-4, 15)
 *                 for DOUBLE, else d.ddde+XX (two exponent digits at least);
 *                 "NaN", "Infinity", "-Infinity".  -0 is "0": MariaDB keeps
 *                 -0 in a FLOAT (the binlog has it) but prints it "0" in
 *                 SELECT and CAST, so a snapshot says "0" [real/double precision]
 *   NEWDECIMAL    exact, exactly scale fraction digits ("-0.500000"), no
 *                 leading zeros, no negative zero [numeric(p,s)]
 *   DATE          "YYYY-MM-DD" [date]
 *   TIME TIME2    "[-]HH:MM:SS[.f]" hours up to 838 [interval]
 *   DATETIME(2)   "YYYY-MM-DD HH:MM:SS[.f]" [timestamp]
 *   TIMESTAMP(2)  "YYYY-MM-DD HH:MM:SS[.f]+00", UTC [timestamptz, TimeZone UTC]
 *                 [.f]: the fraction with trailing zeros removed, none when
 *                 zero -- what PostgreSQL prints (a DATETIME(6) holding
 *                 .500000 is "...:56.5"), not the column's fsp digits.
 *   CHAR VARCHAR TEXT family (utf8mb3/utf8mb4/ascii/latin1 collations)
 *                 UTF-8 text [text/varchar]; latin1 is MySQL's latin1 (which
 *                 is cp1252 with 0x81 0x8D 0x8F 0x90 0x9D as C1 controls)
 *                 converted to UTF-8.  CHAR arrives with its trailing spaces
 *                 already stripped by the server (Field_string::pack), which
 *                 is also what SELECT returns.
 *   BINARY VARBINARY BLOB family, GEOMETRY (collation 63 "binary")
 *                 bytea hex "\x0a1b..." [bytea]; BINARY(n) re-padded with
 *                 0x00 to n bytes (the binlog strips trailing 0x00 of it)
 *   ENUM          the member ("" for index 0, MySQL's error value) [text]
 *   SET           members in definition order joined by ',' [text]
 *   BIT(n)        n characters '0'/'1' [bit(n)]
 *   JSON          MariaDB: a LONGTEXT, rendered as text like any other;
 *                 MySQL binary JSON (type 245): the JSON text MySQL prints
 *                 for it, `{"a": [1, 2.5, "x"]}` (myjson.h) [json]; a
 *                 string not in UTF-8: BAD_TEXT (bytea hex of the binary
 *                 value); an opaque value myjson does not reproduce (types
 *                 other than DECIMAL, DATE, TIME, DATETIME, TIMESTAMP):
 *                 UNSUPPORTED; a malformed document fails the row.  Not
 *                 tested against a MySQL server, only against the format
 *                 as MySQL's sources document it.  PARTIAL_UPDATE_ROWS
 *                 (binlog_row_value_options=PARTIAL_JSON) stays refused.
 *   UUID INET6 INET4  (MariaDB) look exactly like BINARY(16)/BINARY(4) in
 *                 the binlog (same type, metadata and charset), so the
 *                 caller marks them from the schema (binlog_column.ext):
 *                 "550e8400-e29b-41d4-a716-446655440000" [uuid], "::1",
 *                 "::ffff:1.2.3.4", "192.0.2.1" [inet, PostgreSQL's output].
 *                 UUIDs travel in text order even when the record swaps
 *                 them (v1-v5): plugin/type_uuid's pack() undoes the swap.
 *                 Unmarked, they render as the bytea of their bytes.
 *
 * Old temporal formats (types 7, 11, 12: tables created before MySQL 5.6 /
 * MariaDB 10.1.2, or with mysql56_temporal_format=OFF) are decoded as the
 * 0-decimals formats they are.  MariaDB 5.3's fractional variants of them
 * carry the same type and no metadata, so they cannot be recognised here:
 * the caller must refuse a table whose schema says TIME/DATETIME/TIMESTAMP
 * with decimals > 0 while the TABLE_MAP says type 7, 11 or 12.
 */
#ifndef MIGD_BINLOG_ROWS_H
#define MIGD_BINLOG_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"

/* --- event and column type codes (MySQL's enum Log_event_type, enum_field_types) --- */

#define BINLOG_TABLE_MAP_EVENT	     19
#define BINLOG_WRITE_ROWS_V1	     23
#define BINLOG_UPDATE_ROWS_V1	     24
#define BINLOG_DELETE_ROWS_V1	     25
#define BINLOG_WRITE_ROWS_V2	     30 /* MySQL 5.6+ */
#define BINLOG_UPDATE_ROWS_V2	     31
#define BINLOG_DELETE_ROWS_V2	     32
#define BINLOG_PARTIAL_UPDATE_ROWS   39	 /* MySQL 8 partial JSON: refused */
#define BINLOG_ROWS_COMPRESSED_FIRST 166 /* MariaDB log_bin_compress: 166..171, refused */
#define BINLOG_ROWS_COMPRESSED_LAST  171

/* True for the event types binlog_rows_open() decodes (23-25, 30-32). */
bool binlog_is_rows_event(uint8_t event_type);

enum binlog_col_type {
	BINLOG_T_DECIMAL = 0, /* pre-5.0 DECIMAL: unsupported */
	BINLOG_T_TINY = 1,
	BINLOG_T_SHORT = 2,
	BINLOG_T_LONG = 3,
	BINLOG_T_FLOAT = 4,
	BINLOG_T_DOUBLE = 5,
	BINLOG_T_NULL = 6,
	BINLOG_T_TIMESTAMP = 7,
	BINLOG_T_LONGLONG = 8,
	BINLOG_T_INT24 = 9,
	BINLOG_T_DATE = 10,
	BINLOG_T_TIME = 11,
	BINLOG_T_DATETIME = 12,
	BINLOG_T_YEAR = 13,
	BINLOG_T_NEWDATE = 14,
	BINLOG_T_VARCHAR = 15,
	BINLOG_T_BIT = 16,
	BINLOG_T_TIMESTAMP2 = 17,
	BINLOG_T_DATETIME2 = 18,
	BINLOG_T_TIME2 = 19,
	BINLOG_T_BLOB_COMPRESSED = 140,	   /* MariaDB COMPRESSED columns: unsupported */
	BINLOG_T_VARCHAR_COMPRESSED = 141, /* (10.11: 141 + 2 meta bytes, 140 + 1) */
	BINLOG_T_JSON = 245,		   /* MySQL binary JSON: myjson.h */
	BINLOG_T_NEWDECIMAL = 246,
	BINLOG_T_ENUM = 247,
	BINLOG_T_SET = 248,
	BINLOG_T_TINY_BLOB = 249,
	BINLOG_T_MEDIUM_BLOB = 250,
	BINLOG_T_LONG_BLOB = 251,
	BINLOG_T_BLOB = 252,
	BINLOG_T_VAR_STRING = 253,
	BINLOG_T_STRING = 254,
	BINLOG_T_GEOMETRY = 255,
};

/* Which server wrote the binlog: they count SIGNEDNESS bits differently. */
enum binlog_flavor {
	BINLOG_MARIADB = 0, /* YEAR takes a SIGNEDNESS bit (observed, 10.11) */
	BINLOG_MYSQL,	    /* it does not (is_numeric_type(); MySQL 8 untested) */
};

/* Character sets this module renders; others make values UNSUPPORTED. */
enum binlog_charset {
	BINLOG_CS_NONE = 0, /* not a character column, or collation unknown */
	BINLOG_CS_BINARY,   /* collation 63: bytes, rendered as bytea */
	BINLOG_CS_UTF8MB4,
	BINLOG_CS_UTF8MB3,
	BINLOG_CS_LATIN1,
	BINLOG_CS_ASCII,
	BINLOG_CS_OTHER, /* a collation of some other character set */
};

/* Character set of a collation id (MariaDB 10.11's ids, MySQL 8's 255-323). */
enum binlog_charset binlog_collation_charset(uint32_t collation);

/* MariaDB types that travel as BINARY(n): the caller sets them from the schema. */
enum binlog_ext_type {
	BINLOG_EXT_NONE = 0,
	BINLOG_EXT_UUID,  /* BINARY(16), bytes in text order */
	BINLOG_EXT_INET6, /* BINARY(16), network order */
	BINLOG_EXT_INET4, /* BINARY(4), network order */
};

/* --- TABLE_MAP ---------------------------------------------------------------- */

/*
 * One column.  Where each field comes from:
 *   type, real_type, length fields  the column type array and the metadata
 *                                   block (see binlog_rows.c for the bytes)
 *   nullable                        the null bitmap after the metadata block
 *   is_unsigned, sign_known         optional SIGNEDNESS (MINIMAL and FULL)
 *   collation                       optional DEFAULT_CHARSET/COLUMN_CHARSET
 *                                   (MINIMAL and FULL); for ENUM/SET the
 *                                   ENUM_AND_SET_* ones (FULL only)
 *   geometry_type                   optional GEOMETRY_TYPE
 *   name                            optional COLUMN_NAME (FULL only)
 *   members                         optional ENUM_STR_VALUE/SET_STR_VALUE (FULL)
 *   key_seq                         optional SIMPLE_PRIMARY_KEY /
 *                                   PRIMARY_KEY_WITH_PREFIX (FULL only)
 * Fields marked "caller may set" can be filled from information_schema
 * when the metadata lacks them (binlog_row_metadata=NO_LOG/MINIMAL).
 */
struct binlog_column {
	uint8_t type;		  /* enum binlog_col_type, as in the type array */
	uint8_t real_type;	  /* STRING/VAR_STRING/ENUM/SET: the type in the metadata
				     (CHAR and BINARY are STRING); others: = type */
	uint16_t meta;		  /* raw metadata, in the byte order it was read */
	uint8_t precision, scale; /* NEWDECIMAL */
	uint8_t fsp;		  /* TIME2 DATETIME2 TIMESTAMP2: fractional digits 0-6 */
	uint8_t len_bytes; /* VARCHAR STRING BLOB GEOMETRY JSON: bytes of the length prefix */
	uint8_t pack_len;  /* FLOAT 4, DOUBLE 8, ENUM 1-2, SET 1-8 */
	uint32_t max_len;  /* VARCHAR STRING: declared maximum in bytes */
	uint16_t bits;	   /* BIT(n): n */
	bool nullable;
	bool sign_known;	  /* SIGNEDNESS covered this column (caller may set) */
	bool is_unsigned;	  /* integer and decimal columns (caller may set) */
	uint32_t collation;	  /* character and ENUM/SET columns; 0 unknown (caller may
				     set); binlog_collation_charset() says how it renders */
	uint32_t geometry_type;	  /* GEOMETRY: 0 geometry, 1 point, ... */
	enum binlog_ext_type ext; /* caller sets for UUID/INET6/INET4 columns */
	char *name;		  /* owned; NULL without COLUMN_NAME */
	uint32_t nmembers;	  /* ENUM/SET members, from the metadata */
	char **members;		  /* owned array of owned strings, raw bytes in the
				     column's charset, NUL-terminated */
	uint32_t *member_lens;	  /* owned */
	bool has_members;	  /* a member list was in the metadata */
	uint16_t key_seq;	  /* 1-based position in the primary key; 0: not a key column */
	uint32_t key_prefix;	  /* characters of a prefix key part; 0: whole column */
	const char *unsupported;  /* static reason when this column's values cannot be
				     rendered (set at parse), else NULL */
};

struct binlog_tablemap {
	uint64_t table_id; /* 6 bytes on the wire */
	uint16_t flags;
	char *schema; /* owned */
	char *table;  /* owned */
	uint32_t ncols;
	struct binlog_column *cols; /* owned, ncols */
	uint16_t nkeys;		    /* primary key columns */
	uint32_t *key_cols;	    /* owned, nkeys column indexes in key order */
	bool has_signedness, has_charsets, has_names, has_key_info;
	bool full_metadata; /* column names were present: binlog_row_metadata=FULL,
			       so "no key metadata" means "no primary key" */
	/*
	 * Static reason when rows of this table cannot be decoded at all (a
	 * column type unknown to this module, or one whose byte length cannot
	 * be known); NULL when they can.  Such a table map still parses: migd
	 * only has to refuse it when it migrates the table.
	 */
	const char *unsupported;
};

/*
 * Parses a TABLE_MAP_EVENT body (post-header + body, no checksum):
 *
 *   table id (6, LE) | flags (2) | schema length (1) schema NUL |
 *   table length (1) table NUL | column count (packed) | column types
 *   (1 each) | metadata length (packed) | metadata | null bitmap
 *   ((n+7)/8) | optional metadata TLVs (type 1 byte, length packed, value)
 *
 * flavor selects how SIGNEDNESS bits map to columns.  *out is overwritten
 * (free an earlier map in it first).  Returns true with *out filled
 * (caller frees with binlog_tablemap_free(), also on failure);
 * false with *err a static message when the bytes are malformed.  Unknown
 * TLV types are skipped; an unknown column type sets out->unsupported.
 */
bool binlog_tablemap_parse(const uint8_t *body, size_t len, enum binlog_flavor flavor,
			   struct binlog_tablemap *out, const char **err)
    __attribute__((warn_unused_result));

/* Frees what tm owns and zeroes it; NULL-safe, safe twice. */
void binlog_tablemap_free(struct binlog_tablemap *tm);

/* "STRING", "NEWDECIMAL", ... for messages; "?" for unknown codes. */
const char *binlog_type_name(uint8_t type);

/*
 * Why c's type and metadata cannot describe a value (static text: an
 * unknown type, a DECIMAL precision above 65, ...), or NULL.  Such a
 * column makes its table map unsupported.
 */
const char *binlog_column_check(const struct binlog_column *c);

/* --- values --------------------------------------------------------------------- */

enum binlog_value_status {
	BINLOG_VAL_OK = 0,
	BINLOG_VAL_ZERO_DATE,	/* 0000-00-00 (DATE, DATETIME), zero TIMESTAMP, YEAR 0:
				   text is MySQL's ("0000-00-00 00:00:00", "0000") */
	BINLOG_VAL_BAD_DATE,	/* month or day 0, day past the month's end, year 0,
				   minute/second > 59: text shows the fields as stored */
	BINLOG_VAL_BAD_TEXT,	/* not valid in the column's character set (invalid
				   UTF-8, ascii > 0x7F): text is bytea hex of the bytes */
	BINLOG_VAL_NUL_IN_TEXT, /* text containing 0x00, which PostgreSQL text cannot
				   hold: text is bytea hex of the bytes */
	BINLOG_VAL_BAD_ENUM,	/* ENUM index or SET bits beyond the member list:
				   text is the stored number */
	BINLOG_VAL_UNSUPPORTED, /* cannot be rendered (COMPRESSED column, other
				   character set, no ENUM/SET members or signedness in
				   the metadata: see binlog_value_unsupported(); a MySQL
				   JSON opaque value of another type): CHV_NULL */
	BINLOG_VAL__MAX,
};

const char *binlog_value_status_name(enum binlog_value_status s);

/*
 * Why values of c are UNSUPPORTED (static text), or NULL when they are
 * rendered.  Depends on the caller-settable fields, so ask after setting
 * them.
 */
const char *binlog_value_unsupported(const struct binlog_column *c);

/*
 * Decodes one non-NULL value of column c from p[0..left) and appends its
 * text to out (without resetting it).  Returns true with *used the bytes
 * the value took and *status set; for BINLOG_VAL_UNSUPPORTED nothing is
 * appended (the bytes are still skipped) and *err is the static reason
 * (a MySQL JSON value can be unsupported while its column is not).
 * Returns false with *err a static message when the bytes cannot be a
 * value of c (truncated, a length past left, an impossible DECIMAL digit
 * group, a malformed MySQL binary JSON document, ...).
 */
bool binlog_value_decode(const struct binlog_column *c, const uint8_t *p, size_t left, size_t *used,
			 struct change_buf *out, enum binlog_value_status *status, const char **err)
    __attribute__((warn_unused_result));

/* --- ROWS events ------------------------------------------------------------------ */

enum binlog_rows_kind {
	BINLOG_ROWS_WRITE = 1,
	BINLOG_ROWS_UPDATE,
	BINLOG_ROWS_DELETE,
};

#define BINLOG_ROWS_F_STMT_END 0x0001 /* last event of its statement */

/* One row image, a view valid until the next binlog_rows_next(). */
struct binlog_image {
	struct change_tuple tuple; /* ncols = the table's; absent columns CHV_UNCHANGED;
				      ncols 0 when the event kind has no such image */
	const uint8_t *status;	   /* enum binlog_value_status per column; borrowed */
	uint32_t nbad;		   /* values whose status is not BINLOG_VAL_OK */
	uint32_t first_bad;	   /* column of the first of them */
};

struct binlog_row {
	struct binlog_image before; /* UPDATE and DELETE */
	struct binlog_image after;  /* WRITE and UPDATE */
};

/*
 * An iterator over the rows of one ROWS event.  Zero-initialise once,
 * reuse for any number of events (its arrays only grow), free with
 * binlog_rows_free().  Memory stays bounded by the widest table and the
 * largest row, whatever the event's size.
 */
struct binlog_rows {
	/* header, set by binlog_rows_open() */
	enum binlog_rows_kind kind;
	uint8_t event_type;
	uint8_t version; /* 1 or 2 */
	uint64_t table_id;
	uint16_t flags; /* BINLOG_ROWS_F_* */
	uint32_t ncols; /* columns in the event */
	/*
	 * Every column is present in every image (binlog_row_image=FULL).
	 * false: MINIMAL (before image: the key; after image: the changed
	 * columns; an INSERT: the columns it named) or NOBLOB (untouched
	 * BLOB/TEXT left out); migd refuses the table.
	 */
	bool full_image;
	uint32_t nrows; /* rows returned so far */

	/* private */
	const uint8_t *body;	      /* borrowed */
	size_t len, off;	      /* rows start at off */
	const uint8_t *bitmap[2];     /* columns present: before/only image, after image */
	bool failed;		      /* an ERROR was returned: spent */
	struct change_value *vals[2]; /* owned, cap each */
	uint8_t *status[2];	      /* owned */
	size_t *textoff[2];	      /* owned: value offsets into buf while rendering */
	uint32_t cap;
};

/*
 * Parses the header of a ROWS event body (event_type 23-25 or 30-32):
 *
 *   table id (6) | flags (2) | v2: extra data length (2, counting itself)
 *   + extra data | column count (packed) | columns-present bitmap
 *   ((n+7)/8) | UPDATE: after-image bitmap | rows
 *
 * and positions it before the first row.  body must outlive the
 * iteration.  Returns false with *err set on malformed input (also an
 * image with no columns at all), or a refused event type (compressed or
 * partial-update events).
 */
bool binlog_rows_open(struct binlog_rows *it, uint8_t event_type, const uint8_t *body, size_t len,
		      const char **err) __attribute__((warn_unused_result));

enum binlog_next {
	BINLOG_NEXT_ROW = 1, /* *row filled */
	BINLOG_NEXT_END,     /* no more rows */
	BINLOG_NEXT_ERROR,   /* *err set; the iterator is spent */
};

/*
 * Decodes the next row with tm (the TABLE_MAP for it->table_id, same column
 * count).  A row is one image, or for UPDATE a before and an after image:
 *
 *   per image: null bitmap over the *present* columns ((k+7)/8) | values
 *              of the present, non-NULL columns in column order
 *
 * Resets buf and renders the values into it; row's tuples point into buf
 * and into the iterator, valid until the next call.  Fails (ERROR) on
 * malformed bytes, a table mismatch, or tm->unsupported.
 */
enum binlog_next binlog_rows_next(struct binlog_rows *it, const struct binlog_tablemap *tm,
				  struct change_buf *buf, struct binlog_row *row, const char **err)
    __attribute__((warn_unused_result));

void binlog_rows_free(struct binlog_rows *it);

#endif
