/* myddl: table-shape statements in binlog QUERY events (see myddl.h). */
#include "myddl.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct lex {
	const char *p, *end;
};

static void skip_space(struct lex *l)
{
	for (;;) {
		while (l->p < l->end && isspace((unsigned char)*l->p))
			l->p++;
		if (l->end - l->p >= 2 && l->p[0] == '/' && l->p[1] == '*' &&
		    !(l->end - l->p >= 3 && l->p[2] == '!')) {
			const char *c = l->p + 2;
			while (c + 1 < l->end && !(c[0] == '*' && c[1] == '/'))
				c++;
			l->p = c + 1 < l->end ? c + 2 : l->end;
			continue;
		}
		/* Executable comments (slash-star-bang NNNNN) hold real SQL: read inside them. */
		if (l->end - l->p >= 3 && l->p[0] == '/' && l->p[1] == '*' && l->p[2] == '!') {
			l->p += 3;
			while (l->p < l->end && isdigit((unsigned char)*l->p))
				l->p++;
			continue;
		}
		if (l->end - l->p >= 2 && l->p[0] == '*' && l->p[1] == '/') { /* its end */
			l->p += 2;
			continue;
		}
		if ((l->end - l->p >= 2 && l->p[0] == '-' && l->p[1] == '-') ||
		    (l->p < l->end && l->p[0] == '#')) {
			while (l->p < l->end && *l->p != '\n')
				l->p++;
			continue;
		}
		return;
	}
}

/* Consumes keyword kw (case-insensitive, whole word) if it is next. */
static bool keyword(struct lex *l, const char *kw)
{
	skip_space(l);
	size_t n = strlen(kw);
	if ((size_t)(l->end - l->p) < n || strncasecmp(l->p, kw, n) != 0)
		return false;
	if (l->p + n < l->end && (isalnum((unsigned char)l->p[n]) || l->p[n] == '_'))
		return false;
	l->p += n;
	return true;
}

/* One identifier, `quoted` or bare, into out; false if there is none. */
static bool ident(struct lex *l, char *out)
{
	skip_space(l);
	size_t o = 0;
	if (l->p < l->end && *l->p == '`') {
		l->p++;
		while (l->p < l->end) {
			if (*l->p == '`') {
				if (l->p + 1 < l->end && l->p[1] == '`')
					l->p++;
				else
					break;
			}
			if (o + 1 < MYDDL_NAME_MAX)
				out[o++] = *l->p;
			l->p++;
		}
		if (l->p >= l->end)
			return false;
		l->p++;
	} else {
		while (l->p < l->end && (isalnum((unsigned char)*l->p) || *l->p == '_' ||
					 *l->p == '$' || (unsigned char)*l->p >= 0x80)) {
			if (o + 1 < MYDDL_NAME_MAX)
				out[o++] = *l->p;
			l->p++;
		}
	}
	out[o] = '\0';
	return o > 0;
}

/* [db.]table */
static bool table_name(struct lex *l, const char *default_db, struct myddl_ref *r)
{
	char a[MYDDL_NAME_MAX];
	if (!ident(l, a))
		return false;
	skip_space(l);
	if (l->p < l->end && *l->p == '.') {
		l->p++;
		snprintf(r->db, sizeof(r->db), "%s", a);
		return ident(l, r->table);
	}
	snprintf(r->db, sizeof(r->db), "%s", default_db ? default_db : "");
	snprintf(r->table, sizeof(r->table), "%s", a);
	return true;
}

static bool punct(struct lex *l, char c)
{
	skip_space(l);
	if (l->p < l->end && *l->p == c) {
		l->p++;
		return true;
	}
	return false;
}

struct found {
	struct myddl_ref *out;
	int max, n;
	bool unknown;
};

static void add(struct found *f, struct lex *l, const char *default_db)
{
	struct myddl_ref r;
	if (!table_name(l, default_db, &r)) {
		f->unknown = true;
		return;
	}
	if (f->n < f->max)
		f->out[f->n++] = r;
	else
		f->unknown = true; /* more names than room: the caller must assume the worst */
}

/* ALTER TABLE t ... RENAME [TO|AS] u: the new name is touched too. */
static void alter_rename(struct lex *l, struct found *f, const char *default_db)
{
	while (l->p < l->end) {
		skip_space(l);
		if (keyword(l, "RENAME")) {
			if (keyword(l, "COLUMN") || keyword(l, "INDEX") || keyword(l, "KEY"))
				continue;
			if (!keyword(l, "TO"))
				(void)keyword(l, "AS");
			add(f, l, default_db);
			return;
		}
		if (*l->p == '\'' || *l->p == '"' || *l->p == '`') { /* skip quoted text whole */
			char q = *l->p++;
			while (l->p < l->end && *l->p != q)
				l->p += (*l->p == '\\' && l->p + 1 < l->end) ? 2 : 1;
			if (l->p < l->end)
				l->p++;
			continue;
		}
		l->p++;
	}
}

enum myddl_kind myddl_classify(const char *sql, size_t len, const char *default_db,
			       struct myddl_ref *out, int max, int *n, bool *unknown)
{
	struct lex l = {sql, sql + len};
	struct found f = {out, max, 0, false};
	enum myddl_kind k = MYDDL_NONE;

	if (keyword(&l, "TRUNCATE")) {
		(void)keyword(&l, "TABLE");
		add(&f, &l, default_db);
		k = MYDDL_TRUNCATE;
	} else if (keyword(&l, "ALTER")) {
		(void)keyword(&l, "ONLINE");
		(void)keyword(&l, "IGNORE");
		if (keyword(&l, "TABLE")) {
			(void)(keyword(&l, "IF") && keyword(&l, "EXISTS"));
			add(&f, &l, default_db);
			k = MYDDL_ALTER;
			int before = f.n;
			alter_rename(&l, &f, default_db);
			if (f.n > before)
				k = MYDDL_RENAME;
		}
	} else if (keyword(&l, "DROP")) {
		(void)keyword(&l, "TEMPORARY");
		if (keyword(&l, "TABLE") || keyword(&l, "TABLES")) {
			(void)(keyword(&l, "IF") && keyword(&l, "EXISTS"));
			do
				add(&f, &l, default_db);
			while (punct(&l, ','));
			k = MYDDL_DROP;
		} else if (keyword(&l, "INDEX")) {
			char idx[MYDDL_NAME_MAX];
			(void)(keyword(&l, "IF") && keyword(&l, "EXISTS"));
			if (ident(&l, idx) && keyword(&l, "ON")) {
				add(&f, &l, default_db);
				k = MYDDL_ALTER;
			}
		}
	} else if (keyword(&l, "RENAME")) {
		if (keyword(&l, "TABLE") || keyword(&l, "TABLES")) {
			do {
				add(&f, &l, default_db);
				if (!keyword(&l, "TO")) {
					f.unknown = true;
					break;
				}
				add(&f, &l, default_db);
			} while (punct(&l, ','));
			k = MYDDL_RENAME;
		}
	} else if (keyword(&l, "CREATE")) {
		if (keyword(&l, "OR"))
			(void)keyword(&l, "REPLACE");
		(void)keyword(&l, "TEMPORARY");
		if (keyword(&l, "TABLE")) {
			(void)(keyword(&l, "IF") && keyword(&l, "NOT") && keyword(&l, "EXISTS"));
			add(&f, &l, default_db);
			k = MYDDL_CREATE;
		} else {
			(void)(keyword(&l, "UNIQUE") || keyword(&l, "FULLTEXT") ||
			       keyword(&l, "SPATIAL"));
			if (keyword(&l, "INDEX")) {
				char idx[MYDDL_NAME_MAX];
				(void)(keyword(&l, "IF") && keyword(&l, "NOT") &&
				       keyword(&l, "EXISTS"));
				if (ident(&l, idx) && keyword(&l, "ON")) {
					add(&f, &l, default_db);
					k = MYDDL_ALTER;
				}
			}
		}
	}
	*n = k == MYDDL_NONE ? 0 : f.n;
	*unknown = k != MYDDL_NONE && f.unknown;
	return k;
}

const char *myddl_kind_name(enum myddl_kind k)
{
	switch (k) {
	case MYDDL_ALTER:
		return "alter";
	case MYDDL_DROP:
		return "drop";
	case MYDDL_RENAME:
		return "rename";
	case MYDDL_CREATE:
		return "create";
	case MYDDL_TRUNCATE:
		return "truncate";
	default:
		return "none";
	}
}
