/*
 * mytext: PostgreSQL text values -> MySQL/MariaDB SQL literals, per target
 * column type.  Pure functions: no I/O, no libmariadb, no global state.
 *
 * Values travel through migd in PostgreSQL's text representation
 * (change.h; binlog_rows.h says how MariaDB values are rendered into it on
 * the way in).  A MariaDB sink turns each one back into a literal its
 * target column takes *exactly*: a value the column cannot hold as it is
 * (NaN into DOUBLE, a year outside 1000-9999 for DATETIME, a number out of
 * the column's range, more fractional digits than the column keeps, text
 * longer than the column, invalid UTF-8) is unmappable and refused with a
 * reason, never rounded, clipped or zeroed.  MariaDB's strict mode already
 * refuses most of these, but not all: it silently rounds DECIMAL fractions
 * and cuts fractional seconds (checked on 10.11), so this module checks
 * every rule itself and the server stays the second line.
 *
 * Conversions (PostgreSQL text -> literal; target kinds from mytext_col_init):
 *   INT       "-12", "18446744073709551615" as is, range-checked for the
 *             column's width and signedness; bool "t"/"f" -> 1/0
 *   DECIMAL   "-0.50" as is (digits beyond the scale must be zeros and are
 *             dropped); NaN and Infinity refused
 *   FLOAT DOUBLE  "1.5", "1e+300" as is; NaN/Infinity refused; FLOAT range
 *   BIT(n)    "0101" -> b'0101' (at most n bits); "t"/"f" -> b'1'/b'0'
 *   YEAR      "2024" -> 2024 (1901-2155, or 0)
 *   DATE      "2024-01-02" -> '2024-01-02' (years 1000-9999)
 *   DATETIME TIMESTAMP  "2024-01-02 03:04:05.5" or with an offset
 *             ("+00", "+05:30", "-08:00:30"): converted to UTC (the
 *             session time_zone is +00:00, myconn.h) ->
 *             '2024-01-02 03:04:05.500000'; DATETIME years 1000-9999,
 *             TIMESTAMP 1970-01-01 00:00:01 .. 2038-01-19 03:14:07 UTC
 *   TIME      interval text "[-]H:MM:SS[.f]", also "N day(s) [+-]HH:MM:SS"
 *             (a day is 24 hours) -> '-00:00:01.500000'; at most 838:59:59.999999;
 *             months and years refused
 *   CHAR      character and text columns, ENUM, SET, JSON (MariaDB's JSON is
 *             LONGTEXT): valid UTF-8 only, escaped '...'; VARCHAR/CHAR
 *             lengths in characters, TEXT family in bytes
 *   BINARY    BINARY, VARBINARY, BLOB family: bytea hex "\x0a1b" -> X'0a1b'
 *             (source type bytea, or unknown and starting with \x), other
 *             text as its bytes; length in bytes
 *   UUID INET6 INET4  quoted text (MariaDB's types parse PostgreSQL's
 *             output); inet with a /prefix refused
 *   GEOMETRY  bytea hex of MariaDB's stored form -> X'...', only for
 *             columns a writer marked with mytext_col_geometry()
 *   UNSUPPORTED  anything else (geometry unless marked): every value refused
 * Fractional seconds beyond the column's precision must be zeros (MariaDB
 * would cut them silently).
 *
 * Text literals use backslash escapes (\0 \n \r \\ \' \" \Z, what
 * mysql_real_escape_string() writes for utf8mb4): correct for sessions
 * without NO_BACKSLASH_ESCAPES, which myconn never sets.
 */
#ifndef MIGD_MYTEXT_H
#define MIGD_MYTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "util.h"

/* A growable byte buffer for SQL text; always NUL-terminated once used. */
struct mytext_buf {
	char *data; /* owned */
	size_t len, cap;
};
void mytext_buf_add(struct mytext_buf *b, const void *p, size_t n);
void mytext_buf_adds(struct mytext_buf *b, const char *s);
void mytext_buf_addc(struct mytext_buf *b, char c);
void mytext_buf_reset(struct mytext_buf *b); /* keeps the memory */
void mytext_buf_free(struct mytext_buf *b);

enum mytext_kind {
	MYT_UNSUPPORTED = 0,
	MYT_INT,
	MYT_DECIMAL,
	MYT_FLOAT,
	MYT_DOUBLE,
	MYT_BIT,
	MYT_YEAR,
	MYT_DATE,
	MYT_DATETIME,
	MYT_TIMESTAMP,
	MYT_TIME,
	MYT_CHAR,
	MYT_BINARY,
	MYT_UUID,
	MYT_INET6,
	MYT_INET4,
	MYT_GEOMETRY, /* only through mytext_col_geometry() */
};

/* What a target column takes, from information_schema.COLUMNS. */
struct mytext_col {
	enum mytext_kind kind;
	bool is_unsigned;   /* INT, DECIMAL */
	uint8_t int_bytes;  /* INT: 1 2 3 4 8 */
	uint8_t precision;  /* DECIMAL: digits; BIT: bits */
	uint8_t scale;	    /* DECIMAL */
	uint8_t fsp;	    /* DATETIME TIMESTAMP TIME: fractional digits 0-6 */
	uint64_t max_chars; /* CHAR: characters (CHAR, VARCHAR); 0 none */
	uint64_t max_bytes; /* CHAR (TEXT family), BINARY: bytes; 0 none */
	char type[64];	    /* COLUMN_TYPE, for messages ("varchar(5)") */
};

/*
 * Fills c from one information_schema.COLUMNS row: DATA_TYPE, COLUMN_TYPE,
 * CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION,
 * NUMERIC_SCALE, DATETIME_PRECISION (absent numbers as 0).  An unknown
 * type gives MYT_UNSUPPORTED (every value refused), never a failure.
 */
void mytext_col_init(struct mytext_col *c, const char *data_type, const char *column_type,
		     uint64_t char_max, uint64_t octet_max, unsigned num_precision,
		     unsigned num_scale, unsigned datetime_precision);

/*
 * Geometry columns (GEOMETRY, POINT, LINESTRING, POLYGON, MULTI*,
 * GEOMETRYCOLLECTION), which mytext_col_init() leaves MYT_UNSUPPORTED,
 * become MYT_GEOMETRY: a bytea hex value (MariaDB's stored form, 4-byte
 * SRID + WKB, as a MariaDB source renders it) is written as its bytes,
 * X'...', which MariaDB takes as they are and checks (a value that is not
 * a geometry, or not the column's kind, is refused by the server).  For a
 * writer that turns such a refusal into a failed record (the backfill and
 * the sink, both isolating the refused row).
 * True if c is such a column.
 */
bool mytext_col_geometry(struct mytext_col *c);

/*
 * ENUM and SET columns: true if v[0..len) is exactly a member of the
 * column (ENUM) or members in definition order without repeats, joined by
 * ',' (SET; '' is the empty set) -- the text a MariaDB source renders.
 * column_type is information_schema's COLUMN_TYPE in full
 * ("enum('a','it''s')"); mytext_col.type may be cut.  Anything else is
 * refused with err: MariaDB would silently map a member spelled in
 * another case or with trailing spaces to the member and reorder a set,
 * and in strict mode refuses ENUM's '' error value (index 0), which
 * therefore has no literal.
 */
bool mytext_member_check(const char *column_type, const char *v, size_t len, struct err *err)
    __attribute__((warn_unused_result));

/*
 * Appends the literal for value v[0..len) (PostgreSQL text, not
 * NUL-terminated) going into column c.  src_oid is the PostgreSQL type the
 * value was rendered for (17 bytea matters for BINARY columns; 0 unknown).
 * Returns true; or false with err saying why the column cannot hold the
 * value (out is then left as it was).
 */
bool mytext_literal(const struct mytext_col *c, uint32_t src_oid, const char *v, size_t len,
		    struct mytext_buf *out, struct err *err) __attribute__((warn_unused_result));

/*
 * The same for a change value: CHV_NULL appends NULL (an empty string is
 * '' -- the two never mix); CHV_TEXT as mytext_literal().  CHV_UNCHANGED
 * has no literal: refused (the caller leaves such columns out).
 */
bool mytext_value(const struct mytext_col *c, uint32_t src_oid, const struct change_value *v,
		  struct mytext_buf *out, struct err *err) __attribute__((warn_unused_result));

/*
 * Splits one PostgreSQL COPY text line (fields separated by tabs, "\N" for
 * NULL, the trailing newline optional) into vals[0..n): CHV_NULL, or
 * CHV_TEXT with the field's bytes after COPY FROM's unescaping (\b \f \n
 * \r \t \v \\, \ and 1-3 octal digits, \x and 1-2 hex digits, any other
 * character after a backslash as itself).  Values point into line, or
 * into scratch for fields that had escapes: both must outlive vals.
 * Returns the number of fields in the line (vals beyond n untouched).
 */
int mytext_copy_split(const char *line, size_t len, struct change_value *vals, int n,
		      struct mytext_buf *scratch);

/* Appends 'escaped text' (any bytes; see the top comment for the escapes). */
void mytext_quote(struct mytext_buf *out, const char *s, size_t len);

/* True if s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool mytext_utf8_valid(const char *s, size_t len, size_t *nchars);

#endif
