/*
 * validate_checks: the config's [invariant] and [query] checks, and recent
 * writes (every key the applier touched since a position, from its key
 * log), on any source engine (see validate.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keylog.h"
#include "log.h"
#include "util.h"
#include "validate_int.h"

/* --- invariants and queries ---------------------------------------------------- */

#define CHECK_MAX_ROWS	1000000 /* results compared in memory; beyond this, refuse */
#define CHECK_SHOW_ROWS 10

/* A result set as canonical row strings ("N" / "V<len>:text" per column, vside_query()). */
struct rows {
	char **r; /* owned */
	int n;
};

static void rows_free(struct rows *rs)
{
	for (int i = 0; i < rs->n; i++)
		free(rs->r[i]);
	free(rs->r);
	rs->r = NULL;
	rs->n = 0;
}

static bool run_sql(struct vside *s, const char *sql, struct rows *out, struct err *err)
{
	return vside_query(s, sql, CHECK_MAX_ROWS, &out->r, &out->n, err);
}

static int cmp_rows(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_order_by(const char *sql)
{
	for (const char *p = sql; *p; p++)
		if (strncasecmp(p, "order by", 8) == 0)
			return true;
	return false;
}

/* Rows of a that b lacks (multiset difference of sorted arrays), up to CHECK_SHOW_ROWS. */
static json_t *only_in(const struct rows *a, const struct rows *b, int64_t *count)
{
	json_t *out = json_array();
	int i = 0, j = 0;
	while (i < a->n) {
		int c = j < b->n ? strcmp(a->r[i], b->r[j]) : -1;
		if (c == 0) {
			i++;
			j++;
		} else if (c < 0) {
			(*count)++;
			if (json_array_size(out) < CHECK_SHOW_ROWS)
				json_array_append_new(out, json_string(a->r[i]));
			i++;
		} else {
			j++;
		}
	}
	return out;
}

static json_t *first_rows(const struct rows *rs)
{
	json_t *out = json_array();
	for (int i = 0; i < rs->n && i < CHECK_SHOW_ROWS; i++)
		json_array_append_new(out, json_string(rs->r[i]));
	return out;
}

/* expect = empty: each configured side must return no row (not fenced: each side alone). */
static bool check_empty(struct vctx *v, const struct conf_check *ck, json_t *res, bool *same,
			struct err *err)
{
	struct rows a = {0}, b = {0};
	bool ok = (ck->source_sql == NULL || run_sql(&v->src, ck->source_sql, &a, err)) &&
		  (ck->target_sql == NULL || run_sql(&v->tgt, ck->target_sql, &b, err));
	if (ok) {
		*same = a.n == 0 && b.n == 0;
		json_object_set_new(res, "source_rows", json_integer(a.n));
		json_object_set_new(res, "target_rows", json_integer(b.n));
		if (a.n)
			json_object_set_new(res, "source_violations", first_rows(&a));
		if (b.n)
			json_object_set_new(res, "target_violations", first_rows(&b));
	}
	rows_free(&a);
	rows_free(&b);
	return ok;
}

/* expect = equal: the same rows on both sides (as multisets without ORDER BY), fenced. */
static bool check_equal(struct vctx *v, const struct conf_check *ck, json_t *res, bool *same,
			struct err *err)
{
	bool ordered = has_order_by(ck->source_sql) || has_order_by(ck->target_sql);
	bool ok = true;
	char f[POS_TEXT_MAX];
	for (int64_t attempt = 0; ok && attempt <= v->o->rechecks && !*same && !*v->o->stop;
	     attempt++) {
		struct rows a = {0}, b = {0};
		struct pos fence;
		ok = run_sql(&v->src, ck->source_sql, &a, err) &&
		     vside_position(&v->src, &fence, err);
		if (ok && !vctx_wait_applied(v, &fence)) {
			err_set(err, "the applier did not reach the check's position in time");
			ok = false;
		}
		ok = ok && run_sql(&v->tgt, ck->target_sql, &b, err);
		if (ok) {
			vctx_note_fence(v, &fence);
			json_object_set_new(res, "position",
					    json_string(vctx_pos_text(v, &fence, f, sizeof(f))));
			if (!ordered) {
				qsort(a.r, (size_t)a.n, sizeof(char *), cmp_rows);
				qsort(b.r, (size_t)b.n, sizeof(char *), cmp_rows);
			}
			*same = a.n == b.n;
			for (int i = 0; *same && i < a.n; i++)
				*same = strcmp(a.r[i], b.r[i]) == 0;
			json_object_set_new(res, "ordered", json_boolean(ordered));
			json_object_set_new(res, "source_rows", json_integer(a.n));
			json_object_set_new(res, "target_rows", json_integer(b.n));
			if (!*same) {
				int64_t na = 0, nb = 0;
				/* The difference listing works on sorted rows. */
				qsort(a.r, (size_t)a.n, sizeof(char *), cmp_rows);
				qsort(b.r, (size_t)b.n, sizeof(char *), cmp_rows);
				json_object_set_new(res, "only_in_source", only_in(&a, &b, &na));
				json_object_set_new(res, "only_in_target", only_in(&b, &a, &nb));
				if (ordered && na == 0 && nb == 0)
					json_object_set_new(
					    res, "difference",
					    json_string("same rows, different order"));
			}
		}
		rows_free(&a);
		rows_free(&b);
	}
	return ok;
}

bool validate_run_check(struct vctx *v, const struct conf_check *ck, struct err *err)
{
	const char *kind = ck->kind == CHECK_INVARIANT ? "invariant" : "query";
	json_t *res = json_pack("{s:s, s:s, s:s}", "kind", kind, "name", ck->name, "expect",
				ck->expect == EXPECT_EQUAL ? "equal" : "empty");
	bool same = false;
	vctx_progress(v, 1, 0, 0);
	bool ok = ck->expect == EXPECT_EMPTY ? check_empty(v, ck, res, &same, err)
					     : check_equal(v, ck, res, &same, err);
	if (!ok) {
		json_object_set_new(res, "ok", json_false());
		json_object_set_new(res, "error", json_string(err->msg));
		vctx_add_result(v, res);
		vctx_progress(v, 0, 1, 1);
		return !vside_is_broken(&v->src) && !vside_is_broken(&v->tgt);
	}
	json_object_set_new(res, "ok", json_boolean(same));
	vctx_add_result(v, res);
	vctx_progress(v, 0, 1, same ? 0 : 1);
	if (!same)
		log_event(LOG_LVL_WARN, "validation_mismatch", "kind=%s name=%s", kind, ck->name);
	return true;
}

/* --- recent writes -------------------------------------------------------------- */

#define RECENT_BATCH 500 /* keys per comparison */

struct recent_bucket {
	const struct mig_table *t; /* borrowed */
	char **keys;		   /* owned: text[] literals */
	int n;
	int64_t checked, ndiff;
	json_t *diffs; /* owned */
};

struct recent {
	struct vctx *v;
	struct recent_bucket *b; /* owned, one per migrated table */
	bool ok;
	struct err *err;
};

static void recent_flush(struct recent *rc, struct recent_bucket *b)
{
	if (b->n == 0 || !rc->ok)
		return;
	if (vside_refused(&rc->v->tgt, b->t) != NULL) { /* reported once, in the results */
		b->checked += b->n;
		for (int i = 0; i < b->n; i++)
			free(b->keys[i]);
		b->n = 0;
		return;
	}
	struct vsel sel = {.by_keys = true, .keys = b->keys, .nkeys = (size_t)b->n};
	struct vdigest s, d;
	struct pos fence;
	bool same = false;
	rc->ok = vctx_compare(rc->v, b->t, &sel, false, 0, &same, &s, &d, &fence, rc->err);
	if (rc->ok && !*rc->v->o->stop) {
		vctx_note_fence(rc->v, &fence);
		if (!same)
			rc->ok = vctx_narrow(rc->v, b->t, &sel, b->diffs, &b->ndiff, rc->err);
		vctx_throttle(rc->v, s.rows + d.rows);
	}
	b->checked += b->n;
	for (int i = 0; i < b->n; i++)
		free(b->keys[i]);
	b->n = 0;
}

static void recent_key(const char *table, const char *key, void *arg)
{
	struct recent *rc = arg;
	for (int i = 0; i < rc->v->o->ts->n; i++) {
		struct recent_bucket *b = &rc->b[i];
		char full[160];
		snprintf(full, sizeof(full), "%s.%s", b->t->schema, b->t->name);
		if (strcmp(full, table) != 0 || b->t->nkey == 0)
			continue;
		if (b->keys == NULL)
			b->keys = xcalloc(RECENT_BATCH, sizeof(char *));
		b->keys[b->n++] = xstrdup(key);
		if (b->n == RECENT_BATCH)
			recent_flush(rc, b);
		return;
	}
}

bool validate_recent(struct vctx *v, struct err *err)
{
	const struct validate_opts *o = v->o;
	struct recent rc = {.v = v, .ok = true, .err = err};
	rc.b = xcalloc((size_t)o->ts->n + 1, sizeof(*rc.b));
	for (int i = 0; i < o->ts->n; i++) {
		rc.b[i].t = &o->ts->t[i];
		rc.b[i].diffs = json_array();
	}
	uint64_t gap_from = 0, gap_to = 0;
	char *e = NULL;
	vctx_progress(v, 1, 0, 0);
	if (o->keylog_path == NULL || !keylog_read_since(o->keylog_path, pos_scalar(&o->since),
							 recent_key, &rc, &gap_from, &gap_to, &e)) {
		err_set(err, "recent writes: %s", e ? e : "no key log");
		free(e);
		rc.ok = false;
	}
	char f[POS_TEXT_MAX];
	for (int i = 0; rc.ok && i < o->ts->n; i++)
		recent_flush(&rc, &rc.b[i]);
	for (int i = 0; i < o->ts->n; i++) {
		struct recent_bucket *b = &rc.b[i];
		const char *why = vside_refused(&v->tgt, b->t);
		if (rc.ok && b->checked > 0) {
			json_t *res = json_pack(
			    "{s:s, s:s, s:s, s:b, s:I, s:I, s:O, s:s}", "schema", b->t->schema,
			    "table", b->t->name, "kind", "recent", "ok",
			    b->ndiff == 0 && why == NULL, "keys_checked", (json_int_t)b->checked,
			    "differing_keys", (json_int_t)b->ndiff, "keys", b->diffs, "since",
			    vctx_pos_text(v, &o->since, f, sizeof(f)));
			if (why != NULL) /* never a pass for rows that cannot be compared */
				json_object_set_new(res, "error", json_string(why));
			vctx_add_result(v, res);
			vctx_progress(v, 0, 0, why != NULL ? 1 : b->ndiff);
		}
		for (int k = 0; k < b->n; k++)
			free(b->keys[k]);
		free(b->keys);
		json_decref(b->diffs);
	}
	free(rc.b);
	if (rc.ok && gap_from != 0) {
		/* Coverage is incomplete: say so and fail, never pass it silently. */
		struct pos like = o->since;
		struct pos p1 = pos_from_scalar(&like, gap_from),
			   p2 = pos_from_scalar(&like, gap_to);
		char g1[POS_TEXT_MAX], g2[POS_TEXT_MAX];
		char *msg = xasprintf("keys of changes between %s and %s were not logged (a crash "
				      "lost the log's tail): run --kind checksums",
				      vctx_pos_text(v, &p1, g1, sizeof(g1)),
				      vctx_pos_text(v, &p2, g2, sizeof(g2)));
		vctx_add_result(v, json_pack("{s:s, s:s, s:s, s:b, s:s}", "schema", "*", "table",
					     "*", "kind", "recent", "ok", 0, "error", msg));
		free(msg);
		vctx_progress(v, 0, 0, 1);
	}
	vctx_progress(v, 0, 1, 0);
	return rc.ok;
}
