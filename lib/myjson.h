/*
 * myjson: MySQL 8's binary JSON (a JSON column's bytes in the binlog,
 * type 245) to the JSON text MySQL itself prints for the value, the text
 * a snapshot read of the same column returns (Json_wrapper::to_string):
 * `{"a": 1, "b": [true, null]}`, members in their stored order (MySQL's:
 * shorter keys first, then bytewise), ", " and ": " separators, strings
 * escaped as MySQL escapes them, doubles in my_gcvt()'s shortest form
 * with ".0" added when it shows neither '.' nor an exponent, DECIMAL as
 * its digits, DATE/TIME/DATETIME/TIMESTAMP as quoted strings with six
 * fraction digits.  That text is the value of the mapped PostgreSQL
 * `json` column (docs/type-mapping.md), byte for byte.
 *
 * Not tested against a MySQL server (none runs here: Debian 12 ships
 * MariaDB, whose JSON is a LONGTEXT): unit-tested against byte fixtures
 * built from the format as MySQL's sources document it (see myjson.c).
 *
 * A pure function on a byte buffer: no I/O, no global state.  Memory and
 * work are bounded by the input: nesting deeper than MySQL's limit (100)
 * is refused, every offset and length is checked against the enclosing
 * value, and the text may not grow past a fixed multiple of the binary
 * size (only offsets shared between values could make it, which MySQL's
 * serializer never writes).
 */
#ifndef MIGD_MYJSON_H
#define MIGD_MYJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "binlog_rows.h"
#include "change.h"

/* Nesting levels MySQL allows (JSON_DOCUMENT_MAX_DEPTH); deeper is malformed. */
#define MYJSON_MAX_DEPTH 100

/*
 * Renders the binary JSON document p[0..n) (the value after the column's
 * length prefix) and appends it to out.  Returns true with *status:
 *   BINLOG_VAL_OK           the JSON text was appended;
 *   BINLOG_VAL_BAD_TEXT     a string or key is not valid UTF-8: the bytea
 *                           hex of p[0..n) was appended instead;
 *   BINLOG_VAL_UNSUPPORTED  a value MySQL prints in a way this module does
 *                           not reproduce (an opaque value of another
 *                           MySQL type, a negative-zero DECIMAL): nothing
 *                           appended, *err the static reason.
 * Returns false with *err a static message when the bytes are not a
 * binary JSON document (truncated, an offset or length past its value,
 * an unknown type, too deep, ...); out is then as it was.
 */
bool myjson_render(const uint8_t *p, size_t n, struct change_buf *out,
		   enum binlog_value_status *status, const char **err)
    __attribute__((warn_unused_result));

#endif
