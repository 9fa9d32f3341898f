/*
 * mysink: the MySQL/MariaDB target sink (see sink.h, mysink.h).
 *
 * One blocking connection.  A batch is one InnoDB transaction
 * (START TRANSACTION ... progress row; COMMIT).  Row changes are turned
 * into SQL text with literals converted per target column (mytext.h; the
 * target's column types and unique indexes come from mytarget.h, read at
 * every open) and gathered into one pending statement per run of
 * same-kind changes of one table:
 *
 *   upserts  INSERT INTO t (c...) VALUES (..),(..) ON DUPLICATE KEY UPDATE c = VALUES(c), ...
 *   deletes  DELETE FROM t WHERE k IN (..)  /  WHERE (k1, k2) IN ((..),(..))
 *
 * The pending statement is sent when the next change is of another table
 * or kind, when it holds STMT_MAX_ROWS rows or would pass stmt_max bytes
 * (1 MiB, less if max_allowed_packet is small), when a key repeats in it
 * (each statement then touches distinct keys and is equivalent to its
 * rows applied one by one, in order), before any other statement, and at
 * commit.  Memory is one statement plus one row.  A row whose statement
 * alone would not fit max_allowed_packet is unmappable (the server would
 * drop the link on every retry); its failed record keeps the key and the
 * size, not the values.
 *
 * Updates: the new image is upserted (a key change deletes the old key
 * first); an image with unchanged-TOAST columns becomes an UPDATE of the
 * columns present (a row that is not there is counted as missing).
 * TRUNCATE becomes DELETE FROM: TRUNCATE TABLE commits implicitly in
 * MySQL, which would break the batch's atomicity with its progress row.
 *
 * Session: foreign_key_checks = 0 (the source already enforced them;
 * PostgreSQL's deferred constraints and a replay after a crash pass
 * through states MySQL's immediate checks would refuse; the counterpart of
 * session_replication_role = replica), unique_checks = 1 (upserts rely on
 * them).  sql_log_bin stays ON: the applied writes are ordinary
 * transactions in the target's binlog, so the target's own replicas and
 * other binlog consumers get the migrated data, and the target's binlog is
 * a complete history when it becomes the source (reverse replication
 * starts from its position at the flip; forward apply has stopped by then,
 * so nothing loops).  Turning it off would also need SUPER.  migd's own
 * rows (progress, failed records, parked changes, violations) are written
 * in the same transaction and binlogged too, which keeps the progress row
 * atomic with the data on a replica as well (a binlog reader must skip
 * the migd database: it is in no migration's table set).  Triggers on the
 * target still fire (MySQL cannot turn them off per session).
 */
#include "mysink.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "myconn.h"
#include "mystore.h"
#include "mytarget.h"
#include "mytext.h"

#define STMT_MAX_BYTES (1024 * 1024)
#define STMT_MAX_ROWS  1000
#define KEYSET_SIZE    2048 /* power of two, > 2 * STMT_MAX_ROWS */

struct rel {
	uint32_t relid;
	struct mig_table *t; /* borrowed; NULL: not a migrated table (ignored) */
	int tidx;	     /* index of t in the table set (and in tt) */
	bool schema_error;
	char reason[256];
	int ncols;
	char **colnames;	  /* owned: names in event order */
	char **idents;		  /* owned: backquoted names */
	uint32_t *oids;		  /* owned: source type of each event column */
	struct mytext_col *types; /* owned: target type of each event column */
	int *key_ev;		  /* owned: event column index of each key column, key order */
	char *ins_head;		  /* owned: "INSERT INTO t (c, ...) VALUES " */
	char *ins_tail;		  /* owned: " ON DUPLICATE KEY UPDATE ..." or "" */
	char *del_head;		  /* owned: "DELETE FROM t WHERE k IN (" */
};

enum pend_kind {
	PEND_NONE,
	PEND_UPSERT,
	PEND_DELETE,
};

struct mysink {
	struct sink base;
	char *dsn;		   /* owned; secret */
	char *name;		   /* owned; pipeline name in migd.progress */
	struct mig_tableset *ts;   /* borrowed */
	struct mytarget_table *tt; /* owned: target side of ts->t[i], same index */
	int64_t committed_usec;	   /* when the last COMMIT was answered (monotonic) */
	struct myconn c;
	struct rel **rels; /* owned (each, and the array): pointers stay valid */
	int nrels;
	bool isolate;
	struct sink_counts batch;
	size_t stmt_max;   /* statement size bound for this connection */
	size_t max_packet; /* the target's max_allowed_packet */
	/* the pending statement */
	enum pend_kind pend;
	struct rel *pend_rel; /* borrowed */
	int pend_rows;
	struct mytext_buf sql;
	uint64_t keyset[KEYSET_SIZE]; /* hashes of its keys; 0 empty */
	/* scratch */
	struct mytext_buf row, key;
};

static struct mysink *S(struct sink *b)
{
	return (struct mysink *)b;
}

/* --- connection ------------------------------------------------------------------ */

/* Runs one statement (or several, ';'-separated); marks the sink broken with the link. */
static bool exec(struct mysink *s, const char *sql, struct err *err)
{
	bool ok = myconn_exec(&s->c, sql, err);
	if (!ok && myconn_is_broken(&s->c))
		s->base.broken = true;
	return ok;
}

static void quote(struct mytext_buf *b, const char *s)
{
	mytext_quote(b, s, strlen(s));
}

/* --- target tables ------------------------------------------------------------------ */

/* --- relations -------------------------------------------------------------------- */

static void rel_clear(struct rel *r)
{
	for (int i = 0; i < r->ncols; i++) {
		free(r->colnames[i]);
		free(r->idents[i]);
	}
	free(r->colnames);
	free(r->idents);
	free(r->oids);
	free(r->types);
	free(r->key_ev);
	free(r->ins_head);
	free(r->ins_tail);
	free(r->del_head);
	r->colnames = r->idents = NULL;
	r->oids = NULL;
	r->types = NULL;
	r->key_ev = NULL;
	r->ins_head = r->ins_tail = r->del_head = NULL;
	r->ncols = 0;
}

static struct rel *find_rel(struct mysink *s, uint32_t relid)
{
	for (int i = 0; i < s->nrels; i++)
		if (s->rels[i]->relid == relid)
			return s->rels[i];
	return NULL;
}

static void schema_error(struct rel *r, const char *why)
{
	if (r->schema_error)
		return;
	r->schema_error = true;
	snprintf(r->reason, sizeof(r->reason), "%s", why);
	log_event(LOG_LVL_ERROR, "schema_error", "table=%s.%s reason=\"%s\"", r->t->schema,
		  r->t->name, r->reason);
}

static bool is_key_col(const struct rel *r, int i)
{
	for (int k = 0; r->t && k < r->t->nkey; k++)
		if (r->key_ev[k] == i)
			return true;
	return false;
}

/*
 * Binds r's event columns to the target table: types for conversion and
 * the statement heads.  A missing table or column, or no unique index to
 * upsert on, is a schema error (the table's changes are parked).
 */
static void bind_target(struct mysink *s, struct rel *r)
{
	const struct mytarget_table *x = &s->tt[r->tidx];
	char why[240] = "";
	free(r->ins_head);
	free(r->ins_tail);
	free(r->del_head);
	r->ins_head = r->ins_tail = r->del_head = NULL;
	if (!x->found)
		snprintf(why, sizeof(why), "table %s does not exist on the target", x->qname);
	for (int i = 0; i < r->ncols && !why[0]; i++) {
		const struct mytarget_col *tc = mytarget_col(x, r->colnames[i]);
		if (tc == NULL)
			snprintf(why, sizeof(why), "column %s does not exist in target table %s",
				 r->colnames[i], x->qname);
		else {
			r->types[i] = tc->type;
			/* bytea into geometry: the server checks the bytes; a refusal is a failed
			 * record */
			mytext_col_geometry(&r->types[i]);
		}
	}
	if (!why[0] && r->t->nkey > 0) {
		char **keys = xcalloc((size_t)r->t->nkey, sizeof(char *));
		for (int k = 0; k < r->t->nkey; k++)
			keys[k] = r->colnames[r->key_ev[k]];
		bool ok = mytarget_unique_within(x, keys, r->t->nkey);
		free(keys);
		if (!ok)
			snprintf(why, sizeof(why),
				 "target table %s has no PRIMARY KEY or UNIQUE index on the key "
				 "columns: upserts would duplicate rows",
				 x->qname);
	}
	if (why[0]) {
		schema_error(r, why);
		return;
	}
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, "INSERT INTO ");
	mytext_buf_adds(&b, x->qname);
	mytext_buf_adds(&b, " (");
	for (int i = 0; i < r->ncols; i++) {
		if (i)
			mytext_buf_adds(&b, ", ");
		mytext_buf_adds(&b, r->idents[i]);
	}
	mytext_buf_adds(&b, ") VALUES ");
	r->ins_head = b.data;
	memset(&b, 0, sizeof(b));
	mytext_buf_adds(&b, "");
	if (r->t->nkey > 0) {
		/* VALUES(c): MariaDB's spelling (MySQL 8.0.20+ warns that it is deprecated) */
		mytext_buf_adds(&b, " ON DUPLICATE KEY UPDATE ");
		int n = 0;
		for (int i = 0; i < r->ncols; i++) {
			if (is_key_col(r, i) && r->ncols > r->t->nkey)
				continue; /* all-key tables: one no-op assignment */
			if (n++)
				mytext_buf_adds(&b, ", ");
			mytext_buf_adds(&b, r->idents[i]);
			mytext_buf_adds(&b, " = VALUES(");
			mytext_buf_adds(&b, r->idents[i]);
			mytext_buf_adds(&b, ")");
			if (r->ncols == r->t->nkey)
				break;
		}
	}
	r->ins_tail = b.data;
	memset(&b, 0, sizeof(b));
	mytext_buf_adds(&b, "DELETE FROM ");
	mytext_buf_adds(&b, x->qname);
	mytext_buf_adds(&b, " WHERE ");
	if (r->t->nkey > 1)
		mytext_buf_addc(&b, '(');
	for (int k = 0; k < r->t->nkey; k++) {
		if (k)
			mytext_buf_adds(&b, ", ");
		mytext_buf_adds(&b, r->idents[r->key_ev[k]]);
	}
	mytext_buf_adds(&b, r->t->nkey > 1 ? ") IN (" : " IN (");
	r->del_head = b.data;
}

/* --- the pending statement -------------------------------------------------------------- */

static void pend_reset(struct mysink *s)
{
	if (s->pend_rows > 0)
		memset(s->keyset, 0, sizeof(s->keyset));
	s->pend = PEND_NONE;
	s->pend_rel = NULL;
	s->pend_rows = 0;
	mytext_buf_reset(&s->sql);
	if (s->sql.cap > 4 * (size_t)STMT_MAX_BYTES) /* one huge row: give the memory back */
		mytext_buf_free(&s->sql);
}

/* Sends the pending statement, if any. */
static bool flush(struct mysink *s, struct err *err)
{
	if (s->pend == PEND_NONE)
		return true;
	mytext_buf_adds(&s->sql, s->pend == PEND_UPSERT ? s->pend_rel->ins_tail : ")");
	bool ok = exec(s, s->sql.data, err);
	pend_reset(s);
	return ok;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h ? h : 1;
}

/* Adds h to the pending statement's key set; false if it was there (a repeat). */
static bool keyset_add(struct mysink *s, uint64_t h)
{
	for (size_t i = h & (KEYSET_SIZE - 1);; i = (i + 1) & (KEYSET_SIZE - 1)) {
		if (s->keyset[i] == h)
			return false;
		if (s->keyset[i] == 0) {
			s->keyset[i] = h;
			return true;
		}
	}
}

/*
 * Adds the row in s->row (key literal in s->key, empty for keyless tables)
 * to the pending statement of kind k for r, sending the pending one first
 * when it cannot take it.
 */
static bool pend_add(struct mysink *s, struct rel *r, enum pend_kind k, struct err *err)
{
	uint64_t h = s->key.len ? hash_bytes(s->key.data, s->key.len) : 0;
	size_t tail = k == PEND_UPSERT ? strlen(r->ins_tail) : 1;
	size_t head = strlen(k == PEND_UPSERT ? r->ins_head : r->del_head);
	if (head + s->row.len + tail + 64 > s->max_packet) {
		/* the server would refuse it and drop the link: refuse it here */
		err_set(err,
			"unmappable row for %s.%s: %zu bytes of SQL do not fit the target's "
			"max_allowed_packet (%zu)",
			r->t->schema, r->t->name, head + s->row.len + tail, s->max_packet);
		return false;
	}
	if (s->pend != PEND_NONE &&
	    (s->pend != k || s->pend_rel != r || s->pend_rows >= STMT_MAX_ROWS ||
	     s->sql.len + 1 + s->row.len + tail > s->stmt_max || (h && !keyset_add(s, h)))) {
		if (!flush(s, err))
			return false;
	}
	if (s->pend == PEND_NONE) {
		s->pend = k;
		s->pend_rel = r;
		mytext_buf_adds(&s->sql, k == PEND_UPSERT ? r->ins_head : r->del_head);
		if (h)
			keyset_add(s, h);
	} else {
		mytext_buf_addc(&s->sql, ',');
	}
	mytext_buf_add(&s->sql, s->row.data, s->row.len);
	s->pend_rows++;
	return true;
}

/* --- changes ------------------------------------------------------------------------ */

/* Appends the literal of event column i of tup to b; false (cerr) if unmappable. */
static bool value_lit(const struct rel *r, const struct change_tuple *tup, int i,
		      struct mytext_buf *b, struct err *cerr)
{
	if (i >= tup->ncols) {
		err_set(cerr, "BUG: tuple has %u columns, relation %d", tup->ncols, r->ncols);
		return false;
	}
	if (mytext_value(&r->types[i], r->oids[i], &tup->vals[i], b, cerr))
		return true;
	err_prefix(cerr, "unmappable value for %s.%s.%s", r->t->schema, r->t->name, r->colnames[i]);
	return false;
}

/* s->key = the key's literals "v" or "(v1, v2)". */
static bool key_lits(struct mysink *s, const struct rel *r, const struct change_tuple *tup,
		     struct err *cerr)
{
	mytext_buf_reset(&s->key);
	int n = r->t->nkey;
	if (n > 1)
		mytext_buf_addc(&s->key, '(');
	for (int k = 0; k < n; k++) {
		if (k)
			mytext_buf_addc(&s->key, ',');
		if (!value_lit(r, tup, r->key_ev[k], &s->key, cerr))
			return false;
	}
	if (n > 1)
		mytext_buf_addc(&s->key, ')');
	return true;
}

static bool queue_upsert(struct mysink *s, struct rel *r, const struct change_tuple *nt,
			 struct err *err)
{
	mytext_buf_reset(&s->row);
	mytext_buf_addc(&s->row, '(');
	for (int i = 0; i < r->ncols; i++) {
		if (i)
			mytext_buf_addc(&s->row, ',');
		if (!value_lit(r, nt, i, &s->row, err))
			return false;
	}
	mytext_buf_addc(&s->row, ')');
	mytext_buf_reset(&s->key);
	if (r->t->nkey > 0 && !key_lits(s, r, nt, err))
		return false;
	return pend_add(s, r, PEND_UPSERT, err);
}

static bool queue_delete(struct mysink *s, struct rel *r, const struct change_tuple *ot,
			 struct err *err)
{
	if (!key_lits(s, r, ot, err))
		return false;
	mytext_buf_reset(&s->row);
	mytext_buf_add(&s->row, s->key.data, s->key.len);
	return pend_add(s, r, PEND_DELETE, err);
}

/* UPDATE of the columns present (unchanged-TOAST columns keep their value). */
static bool partial_update(struct mysink *s, struct rel *r, const struct change_tuple *nt,
			   const struct change_tuple *keytup, struct err *err)
{
	struct mytext_buf b = {0};
	bool ok = true;
	mytext_buf_adds(&b, "UPDATE ");
	mytext_buf_adds(&b, s->tt[r->tidx].qname);
	mytext_buf_adds(&b, " SET ");
	int n = 0;
	for (int i = 0; i < r->ncols && ok; i++) {
		if (nt->vals[i].kind == CHV_UNCHANGED)
			continue;
		if (n++)
			mytext_buf_adds(&b, ", ");
		mytext_buf_adds(&b, r->idents[i]);
		mytext_buf_adds(&b, " = ");
		ok = value_lit(r, nt, i, &b, err);
	}
	mytext_buf_adds(&b, " WHERE ");
	for (int k = 0; k < r->t->nkey && ok; k++) {
		if (k)
			mytext_buf_adds(&b, " AND ");
		mytext_buf_adds(&b, r->idents[r->key_ev[k]]);
		mytext_buf_adds(&b, " = ");
		ok = value_lit(r, keytup, r->key_ev[k], &b, err);
	}
	if (ok && n == 0) { /* nothing present: nothing to change */
		mytext_buf_free(&b);
		return true;
	}
	ok = ok && flush(s, err) && exec(s, b.data, err);
	mytext_buf_free(&b);
	if (!ok)
		return false;
	/* "Rows matched: N  Changed: N  Warnings: N" */
	const char *info = mysql_info(s->c.db);
	unsigned long matched = 1;
	if (info != NULL && sscanf(info, "Rows matched: %lu", &matched) == 1 && matched == 0) {
		s->batch.missing++;
		log_event(LOG_LVL_WARN, "update_missing",
			  "table=%s.%s reason=\"partial update of a row the target does not have\"",
			  r->t->schema, r->t->name);
	}
	return true;
}

static bool key_equal(const struct rel *r, const struct change_tuple *a,
		      const struct change_tuple *b)
{
	for (int k = 0; k < r->t->nkey; k++) {
		const struct change_value *x = &a->vals[r->key_ev[k]], *y = &b->vals[r->key_ev[k]];
		if (x->kind != y->kind || x->len != y->len ||
		    (x->kind == CHV_TEXT && memcmp(x->data, y->data, x->len) != 0))
			return false;
	}
	return true;
}

static bool has_unchanged(const struct change_tuple *t)
{
	for (int i = 0; i < t->ncols; i++)
		if (t->vals[i].kind == CHV_UNCHANGED)
			return true;
	return false;
}

/*
 * Queues (or, for partial updates, sends) the statements of one change.
 * False with err: an unmappable value (nothing was queued for this change)
 * or a refusal of a statement sent now, which may be an earlier change's.
 */
static bool stage_change(struct mysink *s, struct rel *r, const struct change_event *ev,
			 struct err *err)
{
	const struct change_tuple *nt = &ev->row.new_tuple, *ot = &ev->row.old_tuple;
	if (ev->row.old_kind == 0)
		ot = nt;
	if (ev->kind != CHG_INSERT && r->t->nkey == 0) {
		err_set(err, "%s.%s is insert-only but received %s", r->t->schema, r->t->name,
			ev->kind == CHG_UPDATE ? "an UPDATE" : "a DELETE");
		return false;
	}
	if (nt->ncols < r->ncols && ev->kind != CHG_DELETE) {
		err_set(err, "BUG: %s.%s: a row image of %u columns, the relation has %d",
			r->t->schema, r->t->name, nt->ncols, r->ncols);
		return false;
	}
	switch (ev->kind) {
	case CHG_INSERT:
		return queue_upsert(s, r, nt, err);
	case CHG_UPDATE: {
		bool key_changed = ev->row.old_kind != 0 && !key_equal(r, ot, nt);
		if (has_unchanged(nt))
			return partial_update(s, r, nt, key_changed ? ot : nt, err);
		/* A failure after the delete is queued fails the whole change: the caller
		   discards the batch (normal mode) or the pending statement (isolated). */
		if (key_changed && !queue_delete(s, r, ot, err))
			return false;
		return queue_upsert(s, r, nt, err);
	}
	case CHG_DELETE:
		return queue_delete(s, r, ot, err);
	default:
		return true;
	}
}

/* --- failed records and parked changes ------------------------------------------------ */

static json_t *value_json(const struct change_value *v)
{
	if (v->kind == CHV_NULL)
		return json_null();
	if (v->kind == CHV_UNCHANGED)
		return json_pack("{s:b}", "unchanged", 1);
	if (mytext_utf8_valid(v->data, v->len, NULL))
		return json_stringn(v->data, v->len);
	/* JSON holds only UTF-8: keep the bytes as bytea hex */
	struct mytext_buf b = {0};
	static const char xd[] = "0123456789abcdef";
	mytext_buf_adds(&b, "\\x");
	for (uint32_t i = 0; i < v->len; i++) {
		char two[2] = {xd[(unsigned char)v->data[i] >> 4],
			       xd[(unsigned char)v->data[i] & 15]};
		mytext_buf_add(&b, two, 2);
	}
	json_t *o = json_pack("{s:s}", "invalid_utf8", b.data);
	mytext_buf_free(&b);
	return o;
}

static json_t *tuple_json(const struct rel *r, const struct change_tuple *t, bool keys_only)
{
	json_t *o = json_object();
	for (int i = 0; i < t->ncols && i < r->ncols; i++) {
		if (keys_only && !is_key_col(r, i))
			continue;
		json_object_set_new(o, r->colnames[i], value_json(&t->vals[i]));
	}
	return o;
}

static json_t *change_json(const struct rel *r, const struct change_event *ev)
{
	json_t *o = json_pack("{s:s}", "op", change_kind_name(ev->kind));
	if (ev->kind == CHG_TRUNCATE)
		return o;
	if (ev->row.old_kind)
		json_object_set_new(o, "old", tuple_json(r, &ev->row.old_tuple, false));
	if (ev->kind != CHG_DELETE)
		json_object_set_new(o, "new", tuple_json(r, &ev->row.new_tuple, false));
	return o;
}

/* Inserts ev into migd.failed_records (failed) or migd.parked (!failed). */
static bool record_row(struct mysink *s, bool failed, struct rel *r, const struct change_event *ev,
		       const struct pos *src_pos, const char *why, struct err *err)
{
	char p[POS_TEXT_MAX];
	json_t *cj = change_json(r, ev), *kj = json_object();
	if (ev->kind != CHG_TRUNCATE) {
		json_decref(kj);
		kj = tuple_json(r, ev->kind == CHG_DELETE ? &ev->row.old_tuple : &ev->row.new_tuple,
				true);
	}
	char *cs = json_dumps(cj, JSON_COMPACT), *ks = json_dumps(kj, JSON_COMPACT);
	if (strlen(cs) > s->max_packet / 2) {
		/* a record the server cannot take would stop apply: keep the key and the size */
		char *big = cs;
		json_t *o = json_pack("{s:s,s:I,s:s}", "op", change_kind_name(ev->kind), "bytes",
				      (json_int_t)strlen(big), "omitted",
				      "larger than half the target's max_allowed_packet");
		cs = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		free(big);
	}
	char *tname = xasprintf("%s.%s", r->t->schema, r->t->name);
	struct mytext_buf b = {0};
	mytext_buf_adds(&b, failed ? "INSERT INTO migd.failed_records (name, table_name, "
				     "source_pos, `key`, `change`, error) VALUES ("
				   : "INSERT INTO migd.parked (name, table_name, source_pos, "
				     "`change`, reason) VALUES (");
	quote(&b, s->name);
	mytext_buf_addc(&b, ',');
	quote(&b, tname);
	mytext_buf_addc(&b, ',');
	quote(&b, pos_format(src_pos, p, sizeof(p)));
	mytext_buf_addc(&b, ',');
	if (failed) {
		quote(&b, ks);
		mytext_buf_addc(&b, ',');
		quote(&b, cs);
		mytext_buf_addc(&b, ',');
		quote(&b, why);
	} else {
		quote(&b, cs);
		mytext_buf_addc(&b, ',');
		char *reason = xasprintf("%s key=%s", why, ks);
		quote(&b, reason);
		free(reason);
	}
	mytext_buf_addc(&b, ')');
	bool ok = exec(s, b.data, err);
	mytext_buf_free(&b);
	free(tname);
	free(cs);
	free(ks);
	json_decref(cj);
	json_decref(kj);
	return ok;
}

static bool park(struct mysink *s, struct rel *r, const struct change_event *ev,
		 const struct pos *src_pos, struct err *err)
{
	s->batch.parked++;
	return record_row(s, false, r, ev, src_pos, r->reason, err);
}

/* --- sink ops ------------------------------------------------------------------------------ */

static bool op_open(struct sink *b, struct pos *applied, int64_t *commit_us, struct err *err)
{
	struct mysink *s = S(b);
	myconn_close(&s->c);
	pend_reset(s);
	if (!myconn_open_dsn(&s->c, "target", s->dsn, err))
		return false;
	if (!myconn_exec(&s->c, "SET SESSION foreign_key_checks = 0, unique_checks = 1", err) ||
	    !mystore_init_sink(&s->c, err) ||
	    !mystore_applied(&s->c, s->name, applied, commit_us, err))
		goto fail;
	mytarget_free(s->tt, s->ts->n);
	if (!mytarget_load(&s->c, s->ts, &s->tt, err))
		goto fail;
	char *map = myconn_query_value(&s->c, "SELECT @@max_allowed_packet", err);
	if (map == NULL)
		goto fail;
	uint64_t m = strtoull(map, NULL, 10);
	free(map);
	/* room for one more row's text and the statement tail under the packet limit */
	s->stmt_max = m / 2 < STMT_MAX_BYTES ? (size_t)(m / 2) : STMT_MAX_BYTES;
	s->max_packet = (size_t)m;
	for (int i = 0; i < s->nrels; i++)
		if (s->rels[i]->t != NULL && !s->rels[i]->schema_error)
			bind_target(s, s->rels[i]);
	b->broken = false;
	return true;
fail:
	myconn_close(&s->c);
	return false;
}

static void op_close(struct sink *b)
{
	struct mysink *s = S(b);
	pend_reset(s);
	myconn_close(&s->c);
}

static bool op_begin(struct sink *b, bool isolate, struct err *err)
{
	struct mysink *s = S(b);
	s->isolate = isolate;
	memset(&s->batch, 0, sizeof(s->batch));
	pend_reset(s);
	return exec(s, "START TRANSACTION", err);
}

static bool op_relation(struct sink *b, const struct change_relation *rel, struct err *err)
{
	struct mysink *s = S(b);
	struct rel *r = find_rel(s, rel->relid);
	if (r == NULL) {
		s->rels = xrealloc(s->rels, (size_t)(s->nrels + 1) * sizeof(*s->rels));
		r = s->rels[s->nrels++] = xcalloc(1, sizeof(*r));
		r->relid = rel->relid;
	}
	if (s->pend_rel == r && !flush(s, err)) /* statements of the old shape go first */
		return false;
	rel_clear(r);
	r->t = tableset_find(s->ts, rel->schema, rel->name);
	r->ncols = rel->ncols;
	r->colnames = xcalloc((size_t)rel->ncols + 1, sizeof(char *));
	r->idents = xcalloc((size_t)rel->ncols + 1, sizeof(char *));
	r->oids = xcalloc((size_t)rel->ncols + 1, sizeof(uint32_t));
	r->types = xcalloc((size_t)rel->ncols + 1, sizeof(*r->types));
	for (int i = 0; i < rel->ncols; i++) {
		/* The target's names ([tables] columns). */
		const char *name =
		    r->t ? table_tgt_col(r->t, rel->cols[i].name) : rel->cols[i].name;
		r->colnames[i] = xstrdup(name);
		r->idents[i] = myconn_ident(name);
		r->oids[i] = rel->cols[i].type_oid;
	}
	if (r->t == NULL)
		return true; /* not ours: its changes are ignored */
	r->tidx = (int)(r->t - s->ts->t);
	r->key_ev = xcalloc((size_t)r->t->nkey + 1, sizeof(int));

	/* The schema contract: same columns, same types, as at capture. */
	char why[200] = "";
	if (rel->ncols != r->t->ncols)
		snprintf(why, sizeof(why), "the source now has %d columns, %d at capture",
			 rel->ncols, r->t->ncols);
	for (int i = 0; i < rel->ncols && !why[0]; i++) {
		const struct mig_column *c = NULL;
		for (int j = 0; j < r->t->ncols && !c; j++)
			if (strcmp(r->t->cols[j].name, rel->cols[i].name) == 0)
				c = &r->t->cols[j];
		if (c == NULL)
			snprintf(why, sizeof(why), "column %s is new", rel->cols[i].name);
		else if (c->type_oid != rel->cols[i].type_oid)
			snprintf(why, sizeof(why), "column %s changed type (oid %u -> %u)",
				 rel->cols[i].name, c->type_oid, rel->cols[i].type_oid);
	}
	for (int k = 0; k < r->t->nkey && !why[0]; k++) {
		const char *kn = r->t->cols[r->t->key_idx[k]].name;
		int found = -1;
		for (int i = 0; i < rel->ncols; i++)
			if (strcmp(rel->cols[i].name, kn) == 0)
				found = i;
		if (found < 0)
			snprintf(why, sizeof(why), "key column %s is gone", kn);
		r->key_ev[k] = found;
	}
	if (why[0]) {
		char full[256];
		snprintf(full, sizeof(full), "schema changed on the source: %s", why);
		schema_error(r, full);
	}
	if (!r->schema_error && s->tt != NULL)
		bind_target(s, r);
	return true;
}

static bool op_change(struct sink *b, const struct change_event *ev, const struct pos *src_pos,
		      struct err *err)
{
	struct mysink *s = S(b);
	if (ev->kind == CHG_TRUNCATE) {
		/* DELETE, not TRUNCATE TABLE: that would commit the batch implicitly. */
		for (int i = 0; i < ev->truncate.nrelids; i++) {
			struct rel *r = find_rel(s, ev->truncate.relids[i]);
			if (r == NULL || r->t == NULL)
				continue;
			if (r->schema_error) {
				if (!park(s, r, ev, src_pos, err))
					return false;
				continue;
			}
			char *sql = xasprintf("DELETE FROM %s", s->tt[r->tidx].qname);
			bool ok = flush(s, err) && exec(s, sql, err);
			free(sql);
			if (!ok)
				return false;
		}
		return true;
	}
	struct rel *r = find_rel(s, ev->row.relid);
	if (r == NULL) {
		err_set(err, "BUG: change for relation %u before its RELATION message",
			ev->row.relid);
		return false;
	}
	if (r->t == NULL)
		return true;
	if (r->schema_error)
		return park(s, r, ev, src_pos, err);
	if (!s->isolate) {
		if (!stage_change(s, r, ev, err))
			return false;
		s->batch.changes++;
		return true;
	}
	/* Isolated: a refusal becomes a failed record, the batch goes on. */
	struct err cerr = {{0}};
	if (!exec(s, "SAVEPOINT migd_change", err))
		return false;
	bool ok = stage_change(s, r, ev, &cerr) && flush(s, &cerr);
	pend_reset(s);
	if (b->broken) {
		*err = cerr;
		return false;
	}
	if (ok) {
		s->batch.changes++;
		return exec(s, "RELEASE SAVEPOINT migd_change", err);
	}
	char p[POS_TEXT_MAX];
	log_event(LOG_LVL_ERROR, "failed_record", "table=%s.%s pos=%s error=\"%s\"", r->t->schema,
		  r->t->name, pos_format(src_pos, p, sizeof(p)), cerr.msg);
	s->batch.failed++;
	return exec(s, "ROLLBACK TO SAVEPOINT migd_change", err) &&
	       record_row(s, true, r, ev, src_pos, cerr.msg, err);
}

/*
 * Always waits for the answer (libmariadb has no pipelining to hide it
 * behind); confirm() then reports that answer.
 */
static bool op_commit(struct sink *b, const struct pos *end, int64_t commit_time_us, int64_t ntxns,
		      bool wait, struct err *err)
{
	struct mysink *s = S(b);
	(void)wait;
	if (!flush(s, err))
		return false;
	char *progress =
	    mystore_progress_sql(&s->c, s->name, end, commit_time_us, ntxns, s->batch.changes);
	char *sql = xasprintf("%s; COMMIT", progress);
	bool ok = exec(s, sql, err);
	free(sql);
	free(progress);
	if (!ok)
		return false;
	b->counts.changes += s->batch.changes;
	b->counts.failed += s->batch.failed;
	b->counts.parked += s->batch.parked;
	b->counts.missing += s->batch.missing;
	s->committed_usec = now_mono_usec();
	return true;
}

static bool op_confirm(struct sink *b, int64_t *answered_usec, struct err *err)
{
	(void)err;
	*answered_usec = S(b)->committed_usec;
	return true;
}

static void op_rollback(struct sink *b)
{
	struct mysink *s = S(b);
	struct err e;
	pend_reset(s);
	if (s->c.db == NULL || b->broken)
		return;
	if (!exec(s, "ROLLBACK", &e))
		log_warn("apply: rollback: %s", e.msg);
}

static bool op_violation(struct sink *b, const struct pos *freeze, const struct pos *txn,
			 uint32_t xid, const char *origin, const char *table, struct err *err)
{
	struct mysink *s = S(b);
	char f[POS_TEXT_MAX], t[POS_TEXT_MAX];
	struct mytext_buf q = {0};
	mytext_buf_adds(&q, "INSERT INTO migd.freeze_violations (name, freeze_pos, source_pos, "
			    "xid, origin, table_name) VALUES (");
	quote(&q, s->name);
	mytext_buf_addc(&q, ',');
	quote(&q, pos_format(freeze, f, sizeof(f)));
	mytext_buf_addc(&q, ',');
	quote(&q, pos_format(txn, t, sizeof(t)));
	char x[24];
	snprintf(x, sizeof(x), ",%u,", xid);
	mytext_buf_adds(&q, x);
	if (origin)
		quote(&q, origin);
	else
		mytext_buf_adds(&q, "NULL");
	mytext_buf_addc(&q, ',');
	if (table)
		quote(&q, table);
	else
		mytext_buf_adds(&q, "NULL");
	mytext_buf_addc(&q, ')');
	bool ok = exec(s, q.data, err);
	mytext_buf_free(&q);
	return ok;
}

static bool op_violations(struct sink *b, const struct pos *freeze, int64_t *n, struct err *err)
{
	struct mysink *s = S(b);
	char f[POS_TEXT_MAX];
	struct mytext_buf q = {0};
	mytext_buf_adds(&q, "SELECT count(*) FROM migd.freeze_violations WHERE name = ");
	quote(&q, s->name);
	mytext_buf_adds(&q, " AND freeze_pos = ");
	quote(&q, pos_format(freeze, f, sizeof(f)));
	char *v = myconn_query_value(&s->c, q.data, err);
	mytext_buf_free(&q);
	if (v == NULL && myconn_is_broken(&s->c))
		b->broken = true;
	*n = v ? atoll(v) : 0;
	free(v);
	return v != NULL;
}

static char *op_schema_errors(struct sink *b)
{
	struct mysink *s = S(b);
	struct strbuf out = {0};
	for (int i = 0; i < s->nrels; i++) {
		struct rel *r = s->rels[i];
		if (r->schema_error)
			sb_addf(&out, "%s.%s: %s\n", r->t->schema, r->t->name, r->reason);
	}
	return sb_take(&out);
}

static void op_free(struct sink *b)
{
	struct mysink *s = S(b);
	if (s == NULL)
		return;
	myconn_close(&s->c);
	for (int i = 0; i < s->nrels; i++) {
		rel_clear(s->rels[i]);
		free(s->rels[i]);
	}
	free(s->rels);
	mytarget_free(s->tt, s->ts->n);
	mytext_buf_free(&s->sql);
	mytext_buf_free(&s->row);
	mytext_buf_free(&s->key);
	free(s->dsn);
	free(s->name);
	free(s);
}

static const struct sink_ops mysink_ops = {
    .open = op_open,
    .close = op_close,
    .begin = op_begin,
    .relation = op_relation,
    .change = op_change,
    .commit = op_commit,
    .confirm = op_confirm,
    .rollback = op_rollback,
    .violation = op_violation,
    .violations = op_violations,
    .schema_errors = op_schema_errors,
    .free = op_free,
};

struct sink *mysink_new(const char *dsn, const char *name, struct mig_tableset *ts)
{
	struct mysink *s = xcalloc(1, sizeof(*s));
	s->base.ops = &mysink_ops;
	s->dsn = xstrdup(dsn);
	s->name = xstrdup(name);
	s->ts = ts;
	s->stmt_max = STMT_MAX_BYTES;
	s->max_packet = 16 * 1024 * 1024; /* MariaDB's default, until open reads it */
	return &s->base;
}
