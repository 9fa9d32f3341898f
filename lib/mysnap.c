/*
 * mysnap: chunk boundaries and range copies from a MySQL/MariaDB source
 * (see mysnap.h).  The pieces: mysnap_key.c says how keys compare and
 * renders predicates, mysnap_rows.c reads and renders rows; here they
 * become the backfill's two operations.
 */
#include "mysnap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mysnap_int.h"
#include "util.h"

/* --- boundaries and COPY ---------------------------------------------------------------- */

char *mysnap_next_boundary(struct myconn *c, const struct mig_table *t, const char *after,
			   int64_t chunk_rows, bool *end, struct err *err)
{
	*end = false;
	if (t->nkey == 0 || chunk_rows < 1) {
		err_set(err, "BUG: %s.%s: a boundary needs a key and chunk_rows >= 1", t->schema,
			t->name);
		return NULL;
	}
	char *pred = mysnap_range_pred(t, after, NULL);
	if (pred == NULL) {
		err_set(err, "%s.%s: chunk bound %s does not match the key's types", t->schema,
			t->name, after);
		return NULL;
	}
	struct strbuf sel = {0}, ord = {0};
	for (int k = 0; k < t->nkey; k++) {
		char *s = mysnap_select_expr(&t->cols[t->key_idx[k]]);
		char *o = mysnap_key_expr(&t->cols[t->key_idx[k]]);
		sb_addf(&sel, "%s%s", k ? ", " : "", s);
		sb_addf(&ord, "%s%s", k ? ", " : "", o);
		free(s);
		free(o);
	}
	char *sl = sb_take(&sel), *ol = sb_take(&ord);
	char *sql = xasprintf("SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT 1 OFFSET %lld", sl,
			      t->qname, pred, ol, (long long)(chunk_rows - 1));
	free(sl);
	free(ol);
	free(pred);
	struct mysnap_rows *r;
	bool ok = mysnap_rows_start(c, t, sql, t->nkey, t->key_idx, &r, err);
	free(sql);
	if (!ok)
		return NULL;
	struct binlog_image im;
	char *out = NULL;
	switch (mysnap_rows_next(r, &im, err)) {
	case MYSNAP_END:
		*end = true;
		out = xstrdup("");
		break;
	case MYSNAP_ROW:
		out = mysnap_key_array(im.tuple.vals, NULL, t->nkey);
		if (im.nbad > 0) {
			uint32_t i = im.first_bad;
			err_set(err,
				"%s.%s key %s: column %s: %s value '%.*s' cannot be a chunk "
				"boundary",
				t->schema, t->name, out, t->cols[t->key_idx[i]].name,
				binlog_value_status_name(im.status[i]), (int)im.tuple.vals[i].len,
				im.tuple.vals[i].data);
			free(out);
			out = NULL;
		}
		break;
	default:
		break;
	}
	mysnap_rows_close(r);
	return out;
}

/*
 * The letter PostgreSQL's CopyAttributeOutText() writes after a backslash
 * for a control character; 0: the byte as is (the delimiter is a tab).
 */
static const char copy_esc[0x20] = {
    ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't', ['\v'] = 'v',
};

bool mysnap_copy_line(struct change_buf *out, const struct change_tuple *tuple)
{
	for (int i = 0; i < tuple->ncols; i++)
		if (tuple->vals[i].kind != CHV_TEXT && tuple->vals[i].kind != CHV_NULL)
			return false;
	struct change_buf *b = out;
	for (int i = 0; i < tuple->ncols; i++) {
		const struct change_value *v = &tuple->vals[i];
		size_t need = v->kind == CHV_TEXT ? 2 * (size_t)v->len + 2 : 3;
		change_buf_reserve(b, need);
		uint8_t *p = b->data + b->len;
		if (i > 0)
			*p++ = '\t';
		if (v->kind == CHV_NULL) {
			*p++ = '\\';
			*p++ = 'N';
		} else {
			for (uint32_t k = 0; k < v->len; k++) {
				uint8_t ch = (uint8_t)v->data[k];
				char e = ch < 0x20 ? copy_esc[ch] : ch == '\\' ? '\\' : 0;
				if (e != 0)
					*p++ = '\\';
				*p++ = e != 0 ? (uint8_t)e : ch;
			}
		}
		b->len = (size_t)(p - b->data);
	}
	if (b->len + 1 > b->cap) {
		b->data = xrealloc(b->data, b->len + 1);
		b->cap = b->len + 1;
	}
	b->data[b->len++] = '\n';
	return true;
}

bool mysnap_copy_range(struct myconn *c, const struct mig_table *t, const char *lo, const char *hi,
		       bool (*line)(void *arg, const char *buf, size_t len), void *arg,
		       int64_t *rows, struct err *err)
{
	struct mysnap_rows *r;
	*rows = 0;
	if (!mysnap_rows_open(c, t, lo, hi, &r, err))
		return false;
	struct change_buf b = {0};
	bool ok = false;
	for (;;) {
		struct binlog_image im;
		enum mysnap_next nx = mysnap_rows_next(r, &im, err);
		if (nx == MYSNAP_END) {
			ok = true;
			break;
		}
		if (nx != MYSNAP_ROW)
			break;
		if (im.nbad > 0) {
			uint32_t i = im.first_bad;
			char *key = mysnap_tuple_key(t, &im.tuple);
			err_set(err, "%s.%s key %s: column %s: %s value '%.*s'%s", t->schema,
				t->name, key, t->cols[i].name,
				binlog_value_status_name(im.status[i]),
				(int)(im.tuple.vals[i].len > 200 ? 200 : im.tuple.vals[i].len),
				im.tuple.vals[i].data,
				im.nbad > 1 ? " (and other values of the row)" : "");
			free(key);
			break;
		}
		b.len = 0;
		if (!mysnap_copy_line(&b, &im.tuple)) {
			err_set(err, "BUG: %s.%s: a snapshot row with an absent value", t->schema,
				t->name);
			break;
		}
		if (!line(arg, (const char *)b.data, b.len)) {
			err_set(err, "%s.%s: copy stopped by the consumer", t->schema, t->name);
			break;
		}
		(*rows)++;
	}
	change_buf_free(&b);
	mysnap_rows_close(r);
	return ok;
}
