/*
 * mysnap internals, shared by mysnap.c (boundaries, COPY), mysnap_key.c
 * (key expressions, literals, predicates, key texts) and mysnap_rows.c
 * (the row reader).  Not for other modules.
 */
#ifndef MIGD_MYSNAP_INT_H
#define MIGD_MYSNAP_INT_H

#include "mysnap.h"

/* The expression a key column is ordered and compared by (see mysnap.h); caller frees. */
char *mysnap_key_expr(const struct mig_column *c);

/* The select-list expression of column c: its stored form (see mysnap.h); caller frees. */
char *mysnap_select_expr(const struct mig_column *c);

/*
 * A text[] literal of vals[idx[0..n)] (idx NULL: vals[0..n)), quoted as
 * array_out() quotes; "NULL" for a negative index or a NULL value.
 * Caller frees.
 */
char *mysnap_key_array(const struct change_value *vals, const int *idx, int n);

/*
 * Prepares and runs sql, whose select list is the mysnap_select_expr() of
 * t's columns cols[0..n) in that order, and sets up the binds: rows then
 * come from mysnap_rows_next() with values in cols order.  False with err
 * on a server error or when a column's result type no longer matches its
 * mapping.
 */
bool mysnap_rows_start(struct myconn *c, const struct mig_table *t, const char *sql, int n,
		       const int *cols, struct mysnap_rows **out, struct err *err)
    __attribute__((warn_unused_result));

#endif
