/*
 * mysnap: backfill reads from a MySQL/MariaDB source, in backfill.c's
 * chunk model: a table's key space is cut into ranges (lo, hi] whose
 * bounds are PostgreSQL text[] literals of the key columns' canonical
 * texts (keyrange.h), so the ledger and keyrange stay engine-neutral; a
 * range's rows become PostgreSQL COPY text lines.
 *
 * Agreement with the binlog.  Rows are fetched in the binary protocol (a
 * prepared statement, one row at a time: never a whole result in memory)
 * and each C value is rendered by the functions the binlog decoder uses
 * (mytypes.h), so a value reads the same from a snapshot and from the
 * stream, byte for byte.  Character columns are selected as
 * CAST(col AS BINARY) -- the stored bytes, no conversion by the server --
 * and rendered in the column's own character set as the binlog's are;
 * UUID/INET6/INET4 as their stored 16/16/4 bytes.  A value with a status
 * other than BINLOG_VAL_OK (a zero date, text not valid in its character
 * set, a NUL in text: binlog_rows.h) is reported with that same status.
 *
 * Key order.  The range DELETE on the PostgreSQL target must cover exactly
 * the rows the source read for (lo, hi], so both sides must order keys
 * alike.  Integers, decimals, floats, temporal types, BIT, binary strings
 * and INET6/INET4 order alike already.  Two do not, and are compared
 * through their bytes here:
 *   - character keys (CHAR, VARCHAR, TEXT, ENUM, SET): MariaDB collations
 *     ignore case and trailing spaces, ENUM sorts by member number; they
 *     are compared as CAST(CONVERT(k USING utf8mb4) AS BINARY), the UTF-8
 *     bytes, which is PostgreSQL's COLLATE "C" order: the target's key
 *     columns must use COLLATE "C" (docs/type-mapping.md);
 *   - UUID: MariaDB sorts v1-v5 UUIDs by their time fields; compared as
 *     CAST(u AS BINARY(16)), PostgreSQL's uuid order.
 * The cost: such a comparison cannot use the key's index, so each
 * boundary query and each chunk read of a table with a character or UUID
 * key scans the table (and the boundary query sorts what is past `after`):
 * planning and copying are O(rows^2 / chunk_rows) row reads for those
 * tables.  Integer and temporal keys use the index (row comparisons are
 * written out as OR/AND so MariaDB's range optimizer sees them).
 *
 * Snapshot: the caller opens it (START TRANSACTION WITH CONSISTENT
 * SNAPSHOT) on the connection first; these functions read within whatever
 * transaction the connection has.  The session must be UTC (myconn sets
 * time_zone = '+00:00'): TIMESTAMP values arrive in the session's zone.
 * Blocking (worker threads only).
 */
#ifndef MIGD_MYSNAP_H
#define MIGD_MYSNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "binlog_rows.h"
#include "change.h"
#include "myconn.h"
#include "tables.h"

/*
 * The key of the row chunk_rows past `after` (a text[] literal, or NULL
 * for the start of the table), as a text[] literal of the key columns'
 * PostgreSQL texts.  Returns a new string (caller frees): the boundary,
 * or "" with *end set when fewer than chunk_rows rows are left.  NULL with
 * err on failure, also when that row's key holds a value PostgreSQL cannot
 * take (zero date, ...): it cannot be a boundary.
 */
char *mysnap_next_boundary(struct myconn *c, const struct mig_table *t, const char *after,
			   int64_t chunk_rows, bool *end, struct err *err)
    __attribute__((warn_unused_result));

/*
 * The WHERE clause body selecting the key range (lo, hi] in MariaDB syntax
 * (either bound NULL: open; both: "TRUE").  Returns a new string (caller
 * frees), or NULL when a bound is not a text[] literal of the key's types
 * (a ledger row this module did not write).
 */
char *mysnap_range_pred(const struct mig_table *t, const char *lo, const char *hi);

/*
 * The WHERE clause body selecting exactly the rows whose key is one of
 * keys[0..n) (text[] literals), in MariaDB syntax: (k1 = l1 AND ..) OR ..,
 * keys compared as the range predicate compares them ("FALSE" for n = 0).
 * Returns a new string (caller frees), or NULL when a key is not a text[]
 * literal of the key's types.  Integer and temporal keys use the index;
 * character and UUID keys scan (see above).
 */
char *mysnap_keys_pred(const struct mig_table *t, char *const *keys, size_t n);

/*
 * Streams the rows of (lo, hi] as COPY text lines (mysnap_copy_line()),
 * one call of line() per row with the line and its length, newline
 * included; buf is valid during the call only.  *rows counts the lines
 * delivered.  Returns true at the end of the range.  False with err:
 *   - a value PostgreSQL cannot take: "db.t key {..}: column c: zero_date
 *     value '0000-00-00'" (table, the row's key as a text[] literal,
 *     column, status as binlog_value_status_name() says, diagnostic text):
 *     the range cannot be copied until the row is fixed; use mysnap_rows
 *     for a per-value view;
 *   - line() returned false: "... stopped by the consumer" (its own reason
 *     is the caller's);
 *   - a server or connection error (myconn_is_broken() says which).
 * Rows already delivered stay delivered: the caller's transaction decides.
 */
bool mysnap_copy_range(struct myconn *c, const struct mig_table *t, const char *lo, const char *hi,
		       bool (*line)(void *arg, const char *buf, size_t len), void *arg,
		       int64_t *rows, struct err *err) __attribute__((warn_unused_result));

/*
 * The COPY text line of a tuple, appended to out: values separated by
 * tabs, \N for NULL, a newline at the end; backslash and the control
 * characters PostgreSQL's COPY TO escapes (\b \f \n \r \t \v) escaped as
 * it does, so the line is byte-identical to a PostgreSQL source's.
 * Returns false (appending nothing) when a value is CHV_UNCHANGED.
 */
bool mysnap_copy_line(struct change_buf *out, const struct change_tuple *tuple)
    __attribute__((warn_unused_result));

/* --- a range's rows, value by value -------------------------------------------------- */

struct mysnap_rows; /* opaque: a prepared statement streaming one range */

/*
 * Starts reading (lo, hi] of t: every column, in t's column order.
 * Returns true with *out set (close it with mysnap_rows_close()), or false
 * with err (a bound that does not parse, a server error).  Until it is
 * closed, the connection runs nothing else.
 */
bool mysnap_rows_open(struct myconn *c, const struct mig_table *t, const char *lo, const char *hi,
		      struct mysnap_rows **out, struct err *err)
    __attribute__((warn_unused_result));

/*
 * Starts reading the rows whose key is one of keys[0..n) (mysnap_keys_pred()),
 * in no particular order, like mysnap_rows_open().  False with err also for
 * a keyless table or a key that does not parse.
 */
bool mysnap_rows_open_keys(struct myconn *c, const struct mig_table *t, char *const *keys,
			   size_t n, struct mysnap_rows **out, struct err *err)
    __attribute__((warn_unused_result));

enum mysnap_next {
	MYSNAP_ROW = 1, /* *row filled */
	MYSNAP_END,	/* no more rows */
	MYSNAP_ERROR,	/* err set; only close is left */
};

/*
 * The next row, as the binlog decoder gives one: values in t's column
 * order (CHV_TEXT or CHV_NULL), a status per value, nbad / first_bad.
 * The image points into r and is valid until the next call.  Also an
 * ERROR when the source's column types no longer match t (DDL since the
 * table set was loaded).
 */
enum mysnap_next mysnap_rows_next(struct mysnap_rows *r, struct binlog_image *row, struct err *err)
    __attribute__((warn_unused_result));

/*
 * The key of a row (values in t's column order, as mysnap_rows_next() and
 * a binlog image mapped to t give them) as a text[] literal, quoted as
 * PostgreSQL's array_out() quotes; "{}" for a keyless table.  Caller frees.
 */
char *mysnap_tuple_key(const struct mig_table *t, const struct change_tuple *row);

/*
 * The same key as a failed record's `key`: a JSON object of the key
 * columns under t's (source) names, {"id":"26"}, as the sinks write it;
 * NULL is null, text that is not UTF-8 {"invalid_utf8":"\\x.."}.  Caller
 * frees.
 */
char *mysnap_tuple_key_json(const struct mig_table *t, const struct change_tuple *row);

/* Ends the statement (reading and dropping rows not fetched) and frees r; NULL-safe. */
void mysnap_rows_close(struct mysnap_rows *r);

#endif
