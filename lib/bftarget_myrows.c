/*
 * bftarget_myrows: a chunk's rows into a MySQL/MariaDB target table.
 *
 * Each COPY text line is split into its PostgreSQL texts
 * (mytext_copy_split) and each value converted by mytext for the target
 * column's type (mytarget.h), into multi-row statements
 *
 *     INSERT INTO `db`.`t` (`c1`, `c2`, ...) VALUES (..),(..),...
 *
 * of at most 1 MiB (half of max_allowed_packet when that is smaller),
 * sent as they fill up and at the end of the chunk.  Plain INSERT, never
 * an upsert: a chunk writes into a range it has just deleted, or that was
 * empty at plan time and that nothing else writes until the backfill
 * ends (backfill.h), so a duplicate key is a bug or a target that does
 * not fit the source (a case-insensitive unique key over values a
 * PostgreSQL source tells apart): it fails the chunk, never absorbed.
 *
 * A row the target cannot take becomes a failed record through the
 * chunk's bad() (backfill.c records it in the chunk's transaction), with
 * its key and the reason, and is not written -- never altered:
 *   - a value mytext refuses (out of range, more fraction digits than the
 *     column keeps, a date MariaDB has no value for, ...);
 *   - an ENUM/SET text that is not exactly the column's members
 *     (mytext_member_check), ENUM's '' error value included;
 *   - a row whose SQL alone would exceed max_allowed_packet;
 *   - a row the server refuses with a data error (strict mode: a JSON
 *     CHECK, a geometry it cannot read, a character the column's
 *     character set lacks, NULL into NOT NULL).  InnoDB undoes just the
 *     refused statement; it is then sent again one row per statement and
 *     the rows refused again are recorded.  For that the pending
 *     statement's COPY lines are kept beside it (memory: two statements).
 * Any other error (a duplicate key, a missing column, a lost link) fails
 * the chunk.
 *
 * Range delete of a non-empty target: mysnap's predicate (mysnap.h), which
 * compares character and UUID keys by their bytes -- the order a MariaDB
 * source's chunks were cut in; a PostgreSQL source's text keys compare
 * the same way (backfill.c refused the plan unless the source orders them
 * by bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysqld_error.h>

#include "bftarget_my.h"
#include "mymeta.h"
#include "mysnap.h"
#include "mytarget.h"

#define STMT_MAX_BYTES (1024 * 1024)
#define UTF8MB4_BIN    46 /* a collation id: mysnap's sign of a character column */

/* --- target tables --------------------------------------------------------------------- */

static void desc_clear(struct bfmy_desc *d)
{
	for (int i = 0; d->members != NULL && i < d->t->ncols; i++)
		free(d->members[i]);
	free(d->members);
	free(d->types);
	free(d->qname);
	free(d->error);
	free(d->ins_head);
	memset(d, 0, sizeof(*d));
}

void bfmy_forget(struct bfmy *m)
{
	for (int i = 0; i < m->ndescs; i++)
		desc_clear(&m->descs[i]);
	free(m->descs);
	m->descs = NULL;
	m->ndescs = 0;
	m->d = NULL;
}

/* The full COLUMN_TYPE of every ENUM/SET column of d's table into d->members. */
static bool load_members(struct bfmy *m, struct bfmy_desc *d, const struct mytarget_table *x,
			 struct err *err)
{
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
			    "WHERE DATA_TYPE IN ('enum', 'set') AND TABLE_SCHEMA = ");
	bfmy_quote(&b, x->db);
	mytext_buf_adds(&b, " AND TABLE_NAME = ");
	bfmy_quote(&b, x->name);
	MYSQL_RES *r = myconn_query(m->c, b.data, err);
	mytext_buf_free(&b);
	if (r == NULL)
		return false;
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL)
		for (int i = 0; i < d->t->ncols; i++)
			if (strcasecmp(col_tgt_name(&d->t->cols[i]), row[0]) == 0 &&
			    d->members[i] == NULL)
				d->members[i] = xstrdup(row[1]);
	mysql_free_result(r);
	return true;
}

/* Fills d for t from the target's catalog; d->error when the table cannot take t's rows. */
static bool describe(struct bfmy *m, struct bfmy_desc *d, const struct mig_table *t,
		     struct err *err)
{
	struct mig_tableset one = {.n = 1, .t = (struct mig_table *)t};
	struct mytarget_table *x;
	if (!mytarget_load(m->c, &one, &x, err))
		return false;
	d->t = t;
	d->qname = xstrdup(x->qname);
	d->types = xcalloc((size_t)t->ncols + 1, sizeof(*d->types));
	d->members = xcalloc((size_t)t->ncols + 1, sizeof(char *));
	bool ok = true;
	if (!x->found)
		d->error = xasprintf("table %s does not exist on the target", x->qname);
	for (int i = 0; i < t->ncols && d->error == NULL; i++) {
		const struct mytarget_col *tc = mytarget_col(x, col_tgt_name(&t->cols[i]));
		if (tc == NULL) {
			d->error = xasprintf("target table %s has no column %s (the source's %s.%s "
					     "has it)",
					     x->qname, col_tgt_name(&t->cols[i]), t->schema, t->name);
			break;
		}
		d->types[i] = tc->type;
		mytext_col_geometry(&d->types[i]);
		if (d->types[i].kind == MYT_UNSUPPORTED)
			d->error =
			    xasprintf("column %s of target table %s is %s, a type migd cannot "
				      "write",
				      col_tgt_name(&t->cols[i]), x->qname, d->types[i].type);
	}
	bool enums = false;
	for (int i = 0; i < t->ncols && d->error == NULL; i++)
		enums |= strncmp(d->types[i].type, "enum(", 5) == 0 ||
			 strncmp(d->types[i].type, "set(", 4) == 0;
	if (enums)
		ok = load_members(m, d, x, err);
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, "INSERT INTO ");
	mytext_buf_adds(&b, x->qname);
	mytext_buf_adds(&b, " (");
	for (int i = 0; i < t->ncols; i++) {
		char *id = myconn_ident(col_tgt_name(&t->cols[i]));
		mytext_buf_adds(&b, i ? ", " : "");
		mytext_buf_adds(&b, id);
		free(id);
	}
	mytext_buf_adds(&b, ") VALUES ");
	d->ins_head = b.data;
	mytarget_free(x, 1);
	return ok;
}

const struct bfmy_desc *bfmy_describe(struct bfmy *m, const struct mig_table *t, struct err *err)
{
	for (int i = 0; i < m->ndescs; i++)
		if (m->descs[i].t == t)
			return &m->descs[i];
	struct bfmy_desc d = {0};
	if (!describe(m, &d, t, err)) {
		d.t = t;
		desc_clear(&d);
		return NULL;
	}
	m->descs = xrealloc(m->descs, (size_t)(m->ndescs + 1) * sizeof(*m->descs));
	m->descs[m->ndescs] = d;
	return &m->descs[m->ndescs++];
}

/*
 * The range (lo, hi] on the target, compared as mysnap compares a MariaDB
 * source's keys.  mysnap tells a character column by its collation id,
 * which a PostgreSQL source's columns lack: the copy gets one, so its text
 * keys compare by their UTF-8 bytes too.  NULL when a bound does not fit
 * the key's types (timestamptz text not in UTC, interval days, ...).
 */
static char *range_pred(const struct mig_table *t, const char *lo, const char *hi)
{
	struct mig_table k = table_target_view(t);
	for (int i = 0; i < t->ncols; i++)
		if (k.cols[i].src_type == NULL && (k.cols[i].type_oid == MYMETA_OID_TEXT ||
						   k.cols[i].type_oid == MYMETA_OID_VARCHAR))
			k.cols[i].src_collation = UTF8MB4_BIN;
	char *pred = mysnap_range_pred(&k, lo, hi);
	table_view_free(&k);
	return pred;
}

/* --- a chunk -------------------------------------------------------------------------- */

static void batch_reset(struct bfmy_batch *b)
{
	b->rows = 0;
	mytext_buf_reset(&b->sql);
	mytext_buf_reset(&b->lines);
	if (b->sql.cap > 4 * (size_t)STMT_MAX_BYTES) { /* one huge row: give the memory back */
		mytext_buf_free(&b->sql);
		mytext_buf_free(&b->lines);
	}
}

static void batch_free(struct bfmy_batch *b)
{
	mytext_buf_free(&b->sql);
	mytext_buf_free(&b->lines);
	free(b->row_at);
	free(b->line_at);
	*b = (struct bfmy_batch){0};
}

/* Drops the pending INSERT, and the answer to one in flight (an abort). */
void bfmy_rows_reset(struct bfmy *m)
{
	if (m->in_flight && !myconn_is_broken(m->c)) {
		struct err e;
		if (!myconn_wait(m->c, &e))
			log_debug("backfill: %s", e.msg);
	}
	m->in_flight = false;
	batch_reset(&m->pend);
	batch_reset(&m->sent);
}

void bfmy_rows_free(struct bfmy *m)
{
	batch_free(&m->pend);
	batch_free(&m->sent);
	mytext_buf_free(&m->row);
	mytext_buf_free(&m->scratch);
	free(m->vals);
	m->vals = NULL;
	m->nvals = 0;
}

static struct bfmy *M(struct bftarget *t)
{
	return (struct bfmy *)t;
}

bool bfmy_chunk_begin(struct bftarget *bt, const struct bftarget_chunk *c, struct err *err)
{
	struct bfmy *m = M(bt);
	const struct bfmy_desc *d = bfmy_describe(m, c->t, err);
	if (d == NULL)
		return false;
	if (d->error != NULL) {
		err_set(err, "%s", d->error);
		return false;
	}
	bfmy_rows_reset(m);
	m->chunk = *c;
	m->d = d;
	m->stmt_max = m->max_packet / 2 < STMT_MAX_BYTES ? m->max_packet / 2 : STMT_MAX_BYTES;
	if (m->nvals < c->t->ncols) {
		m->vals = xrealloc(m->vals, (size_t)c->t->ncols * sizeof(*m->vals));
		m->nvals = c->t->ncols;
	}
	/* the chunk's start, in UTC (myconn's time_zone), for the ledger's started_at */
	if (!myconn_exec(m->c, "START TRANSACTION; SET @migd_chunk_start = NOW(6)", err))
		return false;
	if (c->target_empty)
		return true;
	char *pred = range_pred(c->t, c->lo, c->hi);
	if (pred == NULL) {
		err_set(err,
			"%s.%s: the chunk's key range (%s, %s] cannot be written as a MariaDB "
			"predicate for its key's types, so the non-empty target table cannot be "
			"cleared range by range",
			c->t->schema, c->t->name, c->lo ? c->lo : "start", c->hi ? c->hi : "end");
		return false;
	}
	char *sql = xasprintf("DELETE FROM %s WHERE %s", d->qname, pred);
	bool ok = myconn_exec(m->c, sql, err);
	free(sql);
	free(pred);
	return ok;
}

/* Errors that refuse a row's values (strict mode), not the statement or the link. */
static bool is_data_error(unsigned no)
{
	switch (no) {
	case ER_BAD_NULL_ERROR:
	case ER_WARN_DATA_OUT_OF_RANGE:
	case WARN_DATA_TRUNCATED:
	case ER_TRUNCATED_WRONG_VALUE:
	case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
	case ER_ILLEGAL_VALUE_FOR_TYPE:
	case ER_DATA_TOO_LONG:
	case ER_CANT_CREATE_GEOMETRY_OBJECT:
	case ER_WRONG_VALUE_FOR_TYPE:
	case ER_DATA_OUT_OF_RANGE:
	case ER_CONSTRAINT_FAILED: /* a CHECK, such as JSON's json_valid() */
	case 3140:		   /* MySQL 8: ER_INVALID_JSON_TEXT (not testable here) */
		return true;
	default:
		return false;
	}
}

/*
 * Hands the row in m->vals to the chunk's bad() with why (a value refused:
 * column i, else the whole row).  False when bad() wants no more.
 */
static bool refuse(struct bfmy *m, int col, const char *why, struct err *err)
{
	const struct mig_table *t = m->chunk.t;
	struct change_tuple tup = {.ncols = (uint16_t)t->ncols, .vals = m->vals};
	char *key = mysnap_tuple_key_json(t, &tup);
	char *msg = col >= 0
			? xasprintf("unmappable value for column %s: %s", t->cols[col].name, why)
			: xstrdup(why);
	bool ok = m->chunk.bad(m->chunk.bad_arg, key, msg);
	if (!ok)
		err_set(err, "%s.%s key %s: %s", t->schema, t->name, key, msg);
	free(key);
	free(msg);
	return ok;
}

/* Splits line into m->vals; false (err) when it has not one field per column. */
static bool split(struct bfmy *m, const char *line, size_t len, struct err *err)
{
	const struct mig_table *t = m->chunk.t;
	int nf = mytext_copy_split(line, len, m->vals, t->ncols, &m->scratch);
	if (nf == t->ncols)
		return true;
	err_set(err, "BUG: %s.%s: a COPY line of %d fields for %d columns", t->schema, t->name, nf,
		t->ncols);
	return false;
}

/* An INSERT refused for a row's values: its rows one by one. */
static bool send_one_by_one(struct bfmy *m, const struct bfmy_batch *b, struct err *err)
{
	const char *head = m->d->ins_head;
	struct mytext_buf one = {0};
	bool ok = true;
	for (int k = 0; k < b->rows && ok; k++) {
		size_t from = b->row_at[k];
		size_t to = k + 1 < b->rows ? b->row_at[k + 1] - 1 : b->sql.len; /* no ',' */
		mytext_buf_reset(&one);
		mytext_buf_adds(&one, head);
		mytext_buf_add(&one, b->sql.data + from, to - from);
		struct err e;
		if (myconn_exec(m->c, one.data, &e))
			continue;
		if (myconn_is_broken(m->c) || !is_data_error(mysql_errno(m->c->db))) {
			*err = e;
			ok = false;
			break;
		}
		size_t l0 = b->line_at[k];
		size_t l1 = k + 1 < b->rows ? b->line_at[k + 1] : b->lines.len;
		char *why = xasprintf("the target refused the row: %s", e.msg);
		ok = split(m, b->lines.data + l0, l1 - l0, err) && refuse(m, -1, why, err);
		free(why);
	}
	mytext_buf_free(&one);
	return ok;
}

/*
 * A statement that fails for a row's values is undone whole (InnoDB's
 * statement atomicity) and the transaction goes on: its rows are sent
 * again one by one, so only the refused ones become failed records.
 */
static bool wait_sent(struct bfmy *m, struct err *err)
{
	if (!m->in_flight)
		return true;
	m->in_flight = false;
	struct err e;
	bool ok = myconn_wait(m->c, &e);
	if (!ok && !myconn_is_broken(m->c) && is_data_error(mysql_errno(m->c->db)))
		ok = send_one_by_one(m, &m->sent, err);
	else if (!ok)
		*err = e;
	batch_reset(&m->sent);
	return ok;
}

/*
 * Sends the pending INSERT without waiting for it: the next rows are read
 * from the source and turned into SQL while the target runs it.  The one
 * before is answered first (one in flight at most), so a refusal is still
 * handled with its own rows.
 */
static bool flush(struct bfmy *m, struct err *err)
{
	if (m->pend.rows == 0)
		return true;
	if (!wait_sent(m, err))
		return false;
	struct bfmy_batch t = m->sent;
	m->sent = m->pend;
	m->pend = t;
	batch_reset(&m->pend);
	if (!myconn_send(m->c, m->sent.sql.data, m->sent.sql.len, err))
		return false;
	m->in_flight = true;
	return true;
}

bool bfmy_chunk_put(struct bftarget *bt, const char *line, size_t len, struct err *err)
{
	struct bfmy *m = M(bt);
	const struct bfmy_desc *d = m->d;
	const struct mig_table *t = m->chunk.t;
	if (!split(m, line, len, err))
		return false;
	mytext_buf_reset(&m->row);
	mytext_buf_addc(&m->row, '(');
	for (int i = 0; i < t->ncols; i++) {
		const struct change_value *v = &m->vals[i];
		struct err e;
		if (i)
			mytext_buf_addc(&m->row, ',');
		if ((v->kind == CHV_TEXT && d->members[i] != NULL &&
		     !mytext_member_check(d->members[i], v->data, v->len, &e)) ||
		    !mytext_value(&d->types[i], t->cols[i].type_oid, v, &m->row, &e))
			return refuse(m, i, e.msg, err);
	}
	mytext_buf_addc(&m->row, ')');
	size_t head = strlen(d->ins_head);
	if (head + m->row.len + 64 > m->max_packet) {
		/* the server would refuse it and drop the link: refuse it here */
		char why[200];
		snprintf(
		    why, sizeof(why),
		    "the row's %zu bytes of SQL do not fit the target's max_allowed_packet (%zu)",
		    head + m->row.len, m->max_packet);
		return refuse(m, -1, why, err);
	}
	if (m->pend.rows > 0 && m->pend.sql.len + 1 + m->row.len > m->stmt_max && !flush(m, err))
		return false;
	struct bfmy_batch *b = &m->pend;
	if (b->rows == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 256;
		b->row_at = xrealloc(b->row_at, (size_t)b->cap * sizeof(size_t));
		b->line_at = xrealloc(b->line_at, (size_t)b->cap * sizeof(size_t));
	}
	if (b->rows == 0)
		mytext_buf_adds(&b->sql, d->ins_head);
	else
		mytext_buf_addc(&b->sql, ',');
	b->row_at[b->rows] = b->sql.len;
	mytext_buf_add(&b->sql, m->row.data, m->row.len);
	b->line_at[b->rows] = b->lines.len;
	mytext_buf_add(&b->lines, line, len);
	b->rows++;
	return true;
}

bool bfmy_chunk_end(struct bftarget *bt, struct err *err)
{
	struct bfmy *m = M(bt);
	return flush(m, err) && wait_sent(m, err);
}
