/*
 * myddl: which tables a MySQL/MariaDB statement from a binlog QUERY event
 * changes the shape of (or empties), so the binlog reader can stop apply
 * for a migrated table before a change it cannot represent reaches the
 * target.  A recognizer, not a parser: it reads the statement's leading
 * keywords and table names and says "not DDL" for anything else (DML in
 * statement form never reaches it: migd requires binlog_format=ROW).
 * Pure functions; no allocation.
 */
#ifndef MIGD_MYDDL_H
#define MIGD_MYDDL_H

#include <stdbool.h>
#include <stddef.h>

enum myddl_kind {
	MYDDL_NONE = 0, /* not a statement about table shapes */
	MYDDL_ALTER,	/* ALTER TABLE, CREATE/DROP INDEX: shape may change */
	MYDDL_DROP,	/* DROP TABLE */
	MYDDL_RENAME,	/* RENAME TABLE, ALTER TABLE ... RENAME: names both sides */
	MYDDL_CREATE,	/* CREATE [OR REPLACE] TABLE: a table of that name (re)appears */
	MYDDL_TRUNCATE, /* TRUNCATE [TABLE]: every row goes, the shape stays */
};

#define MYDDL_NAME_MAX 65 /* 64 characters of identifier plus NUL */

struct myddl_ref {
	char db[MYDDL_NAME_MAX]; /* the statement's or the default database */
	char table[MYDDL_NAME_MAX];
};

/*
 * Classifies sql[0..len) run with default database default_db (may be "")
 * and stores up to max table references in out.  Returns the kind and sets
 * *n to the references found (MYDDL_NONE: 0).  A name it cannot read makes
 * the statement count as touching an unknown table: *unknown is set, so the
 * caller can stop conservatively.
 */
enum myddl_kind myddl_classify(const char *sql, size_t len, const char *default_db,
			       struct myddl_ref *out, int max, int *n, bool *unknown);

const char *myddl_kind_name(enum myddl_kind k);

#endif
