/*
 * mytypes: the MySQL/MariaDB value renderers, shared by the binlog decoder
 * (binlog_types.c, where they live) and the snapshot reader (mysnap.c).
 *
 * A value read from the binlog and the same stored value read by a
 * SELECT must become the same PostgreSQL text, byte for byte, or the
 * backfill and the stream disagree about a row.  So both readers turn
 * their wire form into plain C values (an integer, a double, calendar
 * fields, bytes in a character set) and render those with these
 * functions; no reader formats a value itself.  binlog_rows.h lists the
 * renderings and the statuses.
 *
 * Every function appends to b (without resetting it) and returns the
 * value's status where one can be other than BINLOG_VAL_OK; a value with
 * a status other than OK has a diagnostic text, never to be applied.
 * Pure functions: no I/O, no global state.
 */
#ifndef MIGD_MYTYPES_H
#define MIGD_MYTYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "binlog_rows.h"
#include "change.h"

/* Decimal integers [smallint/integer/bigint/numeric(20,0)]. */
void mytypes_int(struct change_buf *b, int64_t v);
void mytypes_uint(struct change_buf *b, uint64_t v);

/* YEAR: 1901..2155 [smallint]; 0 (the zero year) is "0000" + ZERO_DATE. */
enum binlog_value_status mytypes_year(struct change_buf *b, unsigned year);

/* float4out/float8out text (extra_float_digits = 1); is_float: v is a FLOAT's value. */
void mytypes_float(struct change_buf *b, double v, bool is_float);

/*
 * The shortest decimal digits of the finite double v > 0 that read back to
 * v under round-half-even -- what David Gay's dtoa() returns in mode 0 (and
 * in MySQL's my_gcvt(), mode 4 with 34 digits, which gives the same): into
 * digits ('1'-'9' first, no trailing zeros) and *exp10, the decimal
 * exponent of the first digit.  Unlike mytypes_float() a bound of v's
 * rounding interval is taken (1e23 is "1", 23).  For myjson.
 */
void mytypes_shortest_digits(double v, char digits[32], int *exp10);

/*
 * DECIMAL [numeric(p,s)] from its digits: int_digits[0..nint) and
 * frac_digits[0..nfrac) ('0'-'9' only, either may be empty).  Leading
 * zeros of the integer part are dropped ("0" when none is left), the
 * fraction is cut or zero-padded to exactly scale digits, and a zero
 * value never has a sign.  Returns false (appending nothing) when a
 * non-digit is given or frac_digits holds a nonzero digit past scale.
 */
bool mytypes_decimal(struct change_buf *b, bool neg, const char *int_digits, size_t nint,
		     const char *frac_digits, size_t nfrac, int scale)
    __attribute__((warn_unused_result));

/* DATE "YYYY-MM-DD" [date]; ZERO_DATE / BAD_DATE as binlog_rows.h says. */
enum binlog_value_status mytypes_date(struct change_buf *b, unsigned y, unsigned m, unsigned d);

/* TIME "[-]HH:MM:SS[.f]" [interval]; h up to 838 (days folded into hours). */
enum binlog_value_status mytypes_time(struct change_buf *b, bool neg, unsigned h, unsigned mi,
				      unsigned s, uint32_t usec);

/* DATETIME "YYYY-MM-DD HH:MM:SS[.f]" [timestamp]. */
enum binlog_value_status mytypes_datetime(struct change_buf *b, unsigned y, unsigned mo, unsigned d,
					  unsigned h, unsigned mi, unsigned s, uint32_t usec);

/* TIMESTAMP from seconds since the Unix epoch: "...+00" [timestamptz]; 0/0 is the zero value. */
enum binlog_value_status mytypes_timestamp(struct change_buf *b, uint32_t secs, uint32_t usec);

/* Bytes of character set cs as UTF-8 text [text/varchar/json]; BAD_TEXT / NUL_IN_TEXT. */
enum binlog_value_status mytypes_text(struct change_buf *b, enum binlog_charset cs,
				      const uint8_t *s, size_t n);

/* Well-formed UTF-8 as PostgreSQL takes it (no overlongs, surrogates or > U+10FFFF). */
bool mytypes_utf8_valid(const uint8_t *s, size_t n);

/* bytea hex "\x..." of p[0..n), zero-padded to pad_to bytes [bytea]. */
void mytypes_bytea(struct change_buf *b, const uint8_t *p, size_t n, size_t pad_to);

/* BIT(bits): the low `bits` bits of the n-byte big-endian number at p, as '0'/'1' [bit(n)]. */
void mytypes_bits(struct change_buf *b, const uint8_t *p, size_t n, unsigned bits);

/* MariaDB UUID (16 bytes in text order) [uuid], INET6 (16) and INET4 (4) network order [inet]. */
void mytypes_uuid(struct change_buf *b, const uint8_t p[16]);
void mytypes_inet6(struct change_buf *b, const uint8_t p[16]);
void mytypes_inet4(struct change_buf *b, const uint8_t p[4]);

#endif
