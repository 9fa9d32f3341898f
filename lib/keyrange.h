/*
 * keyrange: a range of a table's key, (lo, hi], as stored in the backfill
 * ledger (PostgreSQL text[] literals of the key columns' text forms; NULL
 * for an open end) and rendered as a WHERE clause body with row-value
 * comparisons, so composite keys of any type order as their index does.
 * Backfill copies by these ranges and validation checks by the same ones.
 */
#ifndef MIGD_KEYRANGE_H
#define MIGD_KEYRANGE_H

#include "tables.h"

/* Splits a text[] literal "{a,\"b c\"}" into new strings; returns the count (caller frees each and *out). */
int keyrange_parse_array(const char *s, char ***out);

/* "ROW(k1, k2) OP ROW('..'::t1, ..)" for one bound (op: ">", "<=", "="); caller frees. */
char *keyrange_bound(const struct mig_table *t, const char *arr, const char *op);

/* "ROW(k1, k2) > ROW('..'::t1, ..) AND ROW(..) <= ROW(..)", or "true"; caller frees. */
char *keyrange_pred(const struct mig_table *t, const char *lo_arr, const char *hi_arr);

#endif
