/*
 * vside_my: a MySQL/MariaDB target as a validation side reads it, and the
 * columns of a PostgreSQL source in that target's shape (see vside.h).
 *
 * The target's tables are described as a MariaDB source's are (mymeta:
 * each column's mapped PostgreSQL type, collation, UUID/INET marks), so
 * mysnap reads them and prints each value as that mapped type's text.
 * Each migrated table then gets a table of the source's columns in the
 * source's order, looked up by name on the target (MySQL compares column
 * names without case): the key columns are the source's, so chunk bounds
 * and keys are the same text[] literals on both sides.
 *
 * A source column and its target column compare exactly when their texts
 * are one function of the value on both sides:
 *   - same text class: integers of any width; numerics of one scale;
 *     real; double precision; date; interval (MariaDB TIME; also a
 *     PostgreSQL time, whose text is TIME's within a day); timestamp;
 *     timestamptz; text, varchar, json, jsonb, ENUM, SET (UTF-8 text);
 *     bytea; bit(n) of one n; uuid; inet into INET6 from MariaDB or into
 *     INET4.
 *   - a PostgreSQL source printed in the target's shape (pg_shape()):
 *     boolean into an integer column (TINYINT(1)) as 1/0; char(n) into
 *     CHAR(n) without the padding (MariaDB strips it when reading, and it
 *     is not data in either engine); inet into INET6 with an IPv4 address
 *     as ::ffff:a.b.c.d (how INET6 holds it); timestamptz into DATETIME as
 *     its UTC wall-clock time (the "DATETIME holding UTC" choice); an
 *     integer or numeric into a DECIMAL or integer of another scale at the
 *     target's scale, only when that is the same number (else its own
 *     text, which cannot equal the target's: mytext refuses to round).
 * Anything else -- and any key column that needs a shape, since its text
 * would not be the ledger's bounds' -- is refused for the table, naming
 * the column and both types.  Blocking (worker threads only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "binlog_rows.h"
#include "mymeta.h"
#include "mytarget.h"
#include "util.h"
#include "vside.h"

/* PostgreSQL types a PostgreSQL source may bring that the mapping never produces. */
enum {
	OID_BOOL = 16,
	OID_BPCHAR = 1042,
	OID_TIME = 1083,
	OID_JSONB = 3802,
};

enum tclass {
	TC_OTHER,
	TC_INT,
	TC_NUMERIC,
	TC_FLOAT4,
	TC_FLOAT8,
	TC_DATE,
	TC_INTERVAL,
	TC_TIME,
	TC_TIMESTAMP,
	TC_TIMESTAMPTZ,
	TC_TEXT,
	TC_BPCHAR,
	TC_BYTEA,
	TC_BIT,
	TC_UUID,
	TC_INET,
	TC_BOOL,
};

static enum tclass tclass(uint32_t oid)
{
	switch (oid) {
	case MYMETA_OID_INT2:
	case MYMETA_OID_INT4:
	case MYMETA_OID_INT8:
		return TC_INT;
	case MYMETA_OID_NUMERIC:
		return TC_NUMERIC;
	case MYMETA_OID_FLOAT4:
		return TC_FLOAT4;
	case MYMETA_OID_FLOAT8:
		return TC_FLOAT8;
	case MYMETA_OID_DATE:
		return TC_DATE;
	case MYMETA_OID_INTERVAL:
		return TC_INTERVAL;
	case OID_TIME:
		return TC_TIME;
	case MYMETA_OID_TIMESTAMP:
		return TC_TIMESTAMP;
	case MYMETA_OID_TIMESTAMPTZ:
		return TC_TIMESTAMPTZ;
	case MYMETA_OID_TEXT:
	case MYMETA_OID_VARCHAR:
	case MYMETA_OID_JSON:
	case OID_JSONB:
		return TC_TEXT;
	case OID_BPCHAR:
		return TC_BPCHAR;
	case MYMETA_OID_BYTEA:
		return TC_BYTEA;
	case MYMETA_OID_BIT:
		return TC_BIT;
	case MYMETA_OID_UUID:
		return TC_UUID;
	case MYMETA_OID_INET:
		return TC_INET;
	case OID_BOOL:
		return TC_BOOL;
	default:
		return TC_OTHER;
	}
}

/* A numeric's scale from its type ("numeric(12,2)": 2; an integer: 0); -1 unconstrained. */
static int scale_of(const struct mig_column *c)
{
	if (tclass(c->type_oid) == TC_INT)
		return 0;
	int p, s;
	return sscanf(c->type, "numeric(%d,%d)", &p, &s) == 2 ? s : -1;
}

/*
 * How a PostgreSQL source column prints in its MariaDB target column's
 * shape: *expr a new SQL expression (NULL: the canonical text is already
 * that shape), *plain when its text never needs COPY escaping.  False when
 * there is no exact common text.
 */
static bool pg_shape(const struct mig_column *s, const struct mig_column *t, char **expr,
		     bool *plain)
{
	enum tclass a = tclass(s->type_oid), b = tclass(t->type_oid);
	char *id = pgconn_ident(s->name);
	*expr = NULL;
	*plain = true;
	if (a == TC_BOOL && b == TC_INT) {
		*expr = xasprintf("CASE WHEN %s THEN '1' ELSE '0' END", id);
	} else if (a == TC_BPCHAR && b == TC_TEXT) {
		/* MariaDB's CHAR drops trailing spaces when read: so does bpchar's ::text */
		if (t->src_type != NULL && strncasecmp(t->src_type, "char", 4) == 0) {
			*expr = xasprintf("%s::text", id);
			*plain = false;
		}
		/* into VARCHAR/TEXT the padded text itself is stored: canonical */
	} else if (a == TC_INET && b == TC_INET && t->src_ext == BINLOG_EXT_INET6) {
		*expr = xasprintf("CASE WHEN family(%s) = 4 THEN '::ffff:' || format('%%s', %s) "
				  "ELSE format('%%s', %s) END",
				  id, id, id);
	} else if (a == TC_TIMESTAMPTZ && b == TC_TIMESTAMP) {
		*expr = xasprintf("(%s AT TIME ZONE 'UTC')::text", id);
	} else if ((a == TC_INT || a == TC_NUMERIC) && (b == TC_INT || b == TC_NUMERIC) &&
		   scale_of(s) != scale_of(t)) {
		int st = scale_of(t);
		if (st < 0) { /* the target keeps each value's own scale, as the source does */
			free(id);
			return true;
		}
		*expr = xasprintf("CASE WHEN %s::numeric = round(%s::numeric, %d) "
				  "THEN round(%s::numeric, %d)::text ELSE %s::text END",
				  id, id, st, id, st, id);
	} else {
		free(id);
		return false; /* the caller checks the classes themselves */
	}
	free(id);
	return true;
}

/* Whether source column s and target column t print alike without any shape. */
static bool same_text(const struct mig_column *s, const struct mig_column *t)
{
	enum tclass a = tclass(s->type_oid), b = tclass(t->type_oid);
	if (a == TC_TIME && b == TC_INTERVAL)
		return true;
	if (a != b || a == TC_OTHER || a == TC_BOOL || a == TC_BPCHAR)
		return false;
	if (a == TC_NUMERIC)
		return scale_of(s) == scale_of(t) && scale_of(s) >= 0;
	if (a == TC_BIT)
		return strcmp(s->type, t->type) == 0;
	if (a == TC_INET) /* INET4 prints as an IPv4 inet; INET6 holds IPv4 as ::ffff:... */
		return t->src_ext == BINLOG_EXT_INET4 || s->src_ext == BINLOG_EXT_INET6;
	return true;
}

bool vside_my_column(const struct mig_column *s, const struct mig_column *t, bool pg_source,
		     char **expr, bool *plain)
{
	*expr = NULL;
	*plain = true;
	if (same_text(s, t))
		return true;
	if (pg_source && pg_shape(s, t, expr, plain))
		return true;
	free(*expr);
	*expr = NULL;
	return false;
}

static void col_copy(struct mig_column *out, const struct mig_column *in)
{
	*out = *in;
	out->name = xstrdup(in->name);
	out->type = xstrdup(in->type);
	out->src_type = in->src_type ? xstrdup(in->src_type) : NULL;
}

static const struct mig_column *find_col(const struct mig_table *t, const char *name)
{
	for (int i = 0; i < t->ncols; i++)
		if (strcasecmp(t->cols[i].name, name) == 0)
			return &t->cols[i];
	return NULL;
}

/* The target's type as a reason shows it: MariaDB's own spelling. */
static const char *tgt_type(const struct mig_column *c)
{
	return c->src_type ? c->src_type : c->type;
}

/*
 * Builds sh (for table of, whose target is tt) on both sides: the target's
 * read table, the source's shapes (PostgreSQL), or why it is refused.
 */
static void prepare_table(struct vside_table *ssh, struct vside_table *tsh,
			  const struct mig_table *of, const struct mig_table *tt, const char *db,
			  const char *name, bool pg_source)
{
	struct strbuf why = {0};
	struct mig_table *rd = xcalloc(1, sizeof(*rd));
	rd->schema = xstrdup(of->schema);
	rd->name = xstrdup(of->name);
	char *qd = myconn_ident(db), *qn = myconn_ident(name);
	rd->qname = xasprintf("%s.%s", qd, qn);
	free(qd);
	free(qn);
	rd->tgt_qname = xstrdup(of->tgt_qname ? of->tgt_qname : rd->qname);
	rd->ncols = of->ncols;
	rd->cols = xcalloc((size_t)of->ncols + 1, sizeof(*rd->cols));
	rd->nkey = of->nkey;
	rd->key_idx = xcalloc((size_t)of->nkey + 1, sizeof(int));
	memcpy(rd->key_idx, of->key_idx, (size_t)of->nkey * sizeof(int));
	rd->key_kind = of->key_kind;
	rd->replident = of->replident;
	rd->insert_only = of->insert_only;
	rd->est_rows = of->est_rows;
	if (tt == NULL)
		sb_addf(&why, "the target has no table %s.%s", db, name);
	/* both sides' plain columns are the source's: one digest text for one row */
	tsh->plain = xcalloc((size_t)of->ncols + 1, sizeof(bool));
	if (pg_source) {
		ssh->expr = xcalloc((size_t)of->ncols + 1, sizeof(char *));
		ssh->plain = xcalloc((size_t)of->ncols + 1, sizeof(bool));
	}
	for (int i = 0; i < of->ncols; i++) {
		const struct mig_column *s = &of->cols[i];
		tsh->plain[i] = vside_text_is_plain(s->type_oid);
		if (pg_source)
			ssh->plain[i] = tsh->plain[i];
		const struct mig_column *t = tt ? find_col(tt, col_tgt_name(s)) : NULL;
		if (t == NULL) {
			if (tt != NULL)
				sb_addf(&why, "%scolumn %s is not on the target",
					why.len ? "; " : "", col_tgt_name(s));
			/* a stand-in, never read: the table is refused */
			col_copy(&rd->cols[i], s);
			continue;
		}
		col_copy(&rd->cols[i], t);
		rd->cols[i].key_pos = s->key_pos;
		char *expr = NULL;
		bool plain = true;
		/* a key column's text must be the ledger's bounds' and the other side's key */
		if (vside_my_column(s, t, pg_source, &expr, &plain) &&
		    (expr == NULL || s->key_pos == 0)) {
			if (expr != NULL) {
				ssh->expr[i] = expr;
				ssh->plain[i] = tsh->plain[i] = plain;
			}
			continue;
		}
		free(expr);
		sb_addf(&why,
			"%s%scolumn %s: %s %s against the target's %s: no exact comparison of "
			"their texts",
			why.len ? "; " : "", s->key_pos ? "key " : "", s->name,
			pg_source ? "PostgreSQL" : "MariaDB", pg_source ? s->type : tgt_type(s),
			tgt_type(t));
	}
	tsh->read = rd;
	if (why.len > 0) {
		char *w = sb_take(&why);
		tsh->refused = xasprintf("rows cannot be compared: %s", w);
		ssh->refused = xstrdup(tsh->refused);
		free(w);
	}
}

bool vside_my_prepare(struct vside *src, struct vside *tgt, const struct mig_tableset *ts,
		      struct err *err)
{
	/* The target tables by name, described as a MariaDB source's (mymeta). */
	struct strbuf inc = {0};
	for (int i = 0; i < ts->n; i++) {
		char *db, *name;
		mytarget_names(&ts->t[i], &db, &name);
		sb_addf(&inc, "%s%s.%s", i ? "," : "", db, name);
		free(db);
		free(name);
	}
	char *include = sb_take(&inc);
	struct mig_tableset got = {0};
	/* every one is keyed on the target (the schema contract); insert_only covers the rest */
	bool ok = mymeta_load_source(&tgt->my, include ? include : "", NULL, include ? include : "",
				     &got, err);
	free(include);
	if (!ok) {
		err_prefix(err, "reading the target's tables for validation");
		return false;
	}
	bool pg_source = src->engine == ENGINE_POSTGRESQL;
	src->tables = xcalloc((size_t)ts->n + 1, sizeof(*src->tables));
	tgt->tables = xcalloc((size_t)ts->n + 1, sizeof(*tgt->tables));
	src->ntables = tgt->ntables = ts->n;
	for (int i = 0; i < ts->n; i++) {
		const struct mig_table *of = &ts->t[i];
		struct vside_table *ssh = &src->tables[i], *tsh = &tgt->tables[i];
		ssh->of = tsh->of = of;
		char *db, *name;
		mytarget_names(of, &db, &name);
		prepare_table(ssh, tsh, of, tableset_find(&got, db, name), db, name, pg_source);
		free(db);
		free(name);
	}
	tableset_free(&got);
	return true;
}
