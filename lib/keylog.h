/*
 * keylog: the applier's log of touched keys, for "recent writes" validation
 * (every key changed since position P, compared on both sides).
 *
 * A text file in state_dir, one record per line, fields tab-separated:
 *     S <applied position>        the applier (re)started here
 *     k <schema.table> <key>      a key a change of the open batch touched
 *     C <end position>            the batch before committed, ending here
 *     R                           the batch before was rolled back
 * Keys are text[] literals of the key columns, exactly as array_in() reads
 * them.  The k fields are escaped as in COPY's text format: backslash,
 * tab, newline and carriage return as \\, \t, \n and \r, so any key
 * round-trips.  Files written before that have K records instead, with
 * the fields as they are (their writer turned tabs and newlines in keys
 * into spaces); they are still read, such a key just names no row.
 *
 * Appends go through stdio; the file is fdatasync'ed at most once a
 * second, so after a crash the tail can be missing -- the reader then
 * reports the gap (a start marker past the last committed batch it saw)
 * instead of pretending coverage.
 */
#ifndef MIGD_KEYLOG_H
#define MIGD_KEYLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "pos.h"

struct keylog {
	FILE *fp; /* owned */
	int64_t last_sync_usec;
};

bool keylog_open(struct keylog *kl, const char *path, const struct pos *applied, char **err)
	__attribute__((warn_unused_result));
void keylog_close(struct keylog *kl);
void keylog_key(struct keylog *kl, const char *table, const char *key_arr);
void keylog_commit(struct keylog *kl, const struct pos *end);
void keylog_rollback(struct keylog *kl);

/*
 * Reads path and calls fn(table, key, arg) for every key of a batch that
 * committed after since_lsn (duplicates possible).  *gap_from and *gap_to are
 * set (else 0) when keys of committed batches were lost in a crash.
 * Positions are compared as pos_scalar() values (a PostgreSQL LSN, or a
 * binlog coordinate: a MySQL/MariaDB source's commit positions carry one).
 */
bool keylog_read_since(const char *path, uint64_t since_lsn,
		       void (*fn)(const char *table, const char *key, void *arg), void *arg,
		       uint64_t *gap_from, uint64_t *gap_to, char **err) __attribute__((warn_unused_result));

/* "{\"a\",\"b\"}" for values (a PostgreSQL text[] literal); caller frees. */
char *keylog_array_literal(const char *const *vals, const uint32_t *lens, int n);

#endif
