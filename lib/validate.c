/*
 * validate: counts and chunk checksums in canonical form, fenced to source
 * positions, with mismatches narrowed to keys (see validate.h).
 */
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keylog.h"
#include "keyrange.h"
#include "log.h"
#include "pgconn.h"
#include "pos.h"
#include "util.h"

struct vctx {
	const struct validate_opts *o;
	struct validate_run *run;
	struct pgconn src, tgt;
	int64_t throttle_rows;
	int64_t throttle_start;
};

unsigned validate_kind_parse(const char *s)
{
	if (strcmp(s, "counts") == 0)
		return VK_COUNTS;
	if (strcmp(s, "checksums") == 0)
		return VK_CHECKSUMS;
	if (strcmp(s, "invariants") == 0)
		return VK_INVARIANTS;
	if (strcmp(s, "queries") == 0)
		return VK_QUERIES;
	if (strcmp(s, "recent") == 0)
		return VK_RECENT;
	if (strcmp(s, "all") == 0)
		return VK_ALL;
	return 0;
}

static const char *kinds_text(unsigned kinds, char *buf, size_t n)
{
	static const char *const names[] = {"counts", "checksums", "invariants", "queries",
					    "recent"};
	size_t len = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < ARRAY_LEN(names); i++)
		if (kinds & (1u << i))
			len += (size_t)snprintf(buf + len, n > len ? n - len : 0, "%s%s",
						len ? "," : "", names[i]);
	return buf;
}

/* --- canonical form ---------------------------------------------------------- */

/* Canonical text of one column, as a PostgreSQL expression. */
static char *canon_column(const struct mig_column *c)
{
	char *id = pgconn_ident(c->name);
	char *e;
	if (strncmp(c->type, "timestamp with time zone", 24) == 0)
		e = xasprintf("to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')", id);
	else if (strncmp(c->type, "timestamp", 9) == 0)
		e = xasprintf("to_char(%s, 'YYYY-MM-DD HH24:MI:SS.US')", id);
	else if (strcmp(c->type, "boolean") == 0)
		e = xasprintf("CASE WHEN %s THEN '1' ELSE '0' END", id);
	else if (strcmp(c->type, "bytea") == 0)
		e = xasprintf("encode(%s, 'hex')", id);
	else
		e = xasprintf("%s::text", id);
	free(id);
	return e;
}

/* The whole row: N for NULL, V<len>:<text> otherwise, columns in order. */
static char *canon_row(const struct mig_table *t)
{
	struct strbuf b = {0};
	for (int i = 0; i < t->ncols; i++) {
		char *id = pgconn_ident(t->cols[i].name);
		char *e = canon_column(&t->cols[i]);
		sb_addf(&b, "%s(CASE WHEN %s IS NULL THEN 'N' ELSE 'V' || length(%s) || ':' || %s END)",
			i ? " || " : "", id, e, e);
		free(e);
		free(id);
	}
	return sb_take(&b);
}

/* --- plumbing ------------------------------------------------------------------ */

static bool ensure(struct pgconn *c, const char *label, const char *ci, struct err *err)
{
	if (c->conn != NULL && !pgconn_is_broken(c))
		return true;
	pgconn_close(c);
	return pgconn_open(c, label, ci, err);
}

/* Waits until the target holds everything up to lsn; false on timeout or stop. */
static bool wait_applied(struct vctx *v, uint64_t lsn)
{
	int64_t deadline = now_mono_usec() + v->o->recheck_wait_ms * 1000;
	while (!*v->o->stop) {
		if (v->o->applied_past(v->o->arg, lsn))
			return true;
		if (now_mono_usec() > deadline)
			return false;
		sleep_interruptible(50, v->o->stop);
	}
	return false;
}

static void throttle(struct vctx *v, int64_t rows)
{
	while (*v->o->paused && !*v->o->stop)
		sleep_interruptible(200, v->o->stop);
	pthread_mutex_lock(&v->run->lock);
	v->run->rows_done += rows;
	pthread_mutex_unlock(&v->run->lock);
	if (v->o->rows_per_second <= 0)
		return;
	v->throttle_rows += rows;
	double should = (double)v->throttle_rows / (double)v->o->rows_per_second;
	double spent = (double)(now_mono_usec() - v->throttle_start) / 1e6;
	if (should > spent)
		sleep_interruptible((int)((should - spent) * 1000), v->o->stop);
}

static void note_fence(struct vctx *v, uint64_t fence)
{
	pthread_mutex_lock(&v->run->lock);
	if (v->run->fence_min == 0 || fence < v->run->fence_min)
		v->run->fence_min = fence;
	if (fence > v->run->fence_max)
		v->run->fence_max = fence;
	pthread_mutex_unlock(&v->run->lock);
}

/* One side's count and digest of a range. */
struct digest {
	int64_t rows;
	char sum[48];
};

static bool digest(struct pgconn *c, const char *qname, const char *rowexpr, const char *pred,
		   bool counts_only, struct digest *d, struct err *err)
{
	char *sql = counts_only
			    ? xasprintf("SELECT count(*), '' FROM %s WHERE %s", qname, pred)
			    : xasprintf("SELECT count(*), coalesce(sum(('x' || substr(md5(%s), 1, "
					"15))::bit(60)::bigint), 0)::text FROM %s WHERE %s",
					rowexpr, qname, pred);
	PGresult *r = pgconn_query(c, sql, 0, NULL, err);
	free(sql);
	if (r == NULL)
		return false;
	d->rows = atoll(PQgetvalue(r, 0, 0));
	snprintf(d->sum, sizeof(d->sum), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	return true;
}

/*
 * Source first, fence, target after the applier passed the fence; again on
 * a difference.  *same false after rechecks means a persistent difference.
 */
static bool fenced_compare(struct vctx *v, const struct mig_table *t, const char *rowexpr,
			   const char *pred, bool counts_only, int64_t rechecks, bool *same,
			   struct digest *s, struct digest *d, uint64_t *fence, struct err *err)
{
	for (int64_t attempt = 0; attempt <= rechecks && !*v->o->stop; attempt++) {
		if (!digest(&v->src, t->qname, rowexpr, pred, counts_only, s, err) ||
		    !pgconn_current_lsn(&v->src, fence, err))
			return false;
		if (!wait_applied(v, *fence)) {
			if (*v->o->stop)
				break;
			char l[32];
			err_set(err, "the applier did not reach %s within the recheck wait",
				pos_lsn_format(*fence, l, sizeof(l)));
			return false;
		}
		if (!digest(&v->tgt, t->tgt_qname, rowexpr, pred, counts_only, d, err))
			return false;
		*same = s->rows == d->rows && strcmp(s->sum, d->sum) == 0;
		if (*same)
			return true;
		log_debug("validate: %s.%s differs at %X/%X (attempt %lld); checking again", t->schema,
			  t->name, (unsigned)(*fence >> 32), (unsigned)*fence, (long long)attempt);
	}
	return !*v->o->stop;
}

/* --- narrowing a differing chunk to keys ------------------------------------- */

struct keyhash {
	char **keys; /* owned */
	char **md5s; /* owned */
	bool *seen;
	size_t cap, n;
};

static size_t hash_str(const char *s)
{
	size_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void kh_put(struct keyhash *h, const char *k, const char *md5)
{
	size_t i = hash_str(k) & (h->cap - 1);
	while (h->keys[i] != NULL)
		i = (i + 1) & (h->cap - 1);
	h->keys[i] = xstrdup(k);
	h->md5s[i] = xstrdup(md5);
	h->n++;
}

static ssize_t kh_find(const struct keyhash *h, const char *k)
{
	size_t i = hash_str(k) & (h->cap - 1);
	while (h->keys[i] != NULL) {
		if (strcmp(h->keys[i], k) == 0)
			return (ssize_t)i;
		i = (i + 1) & (h->cap - 1);
	}
	return -1;
}

static void kh_free(struct keyhash *h)
{
	for (size_t i = 0; i < h->cap; i++) {
		free(h->keys[i]);
		free(h->md5s[i]);
	}
	free(h->keys);
	free(h->md5s);
	free(h->seen);
}

/* Column values of one row on one side, canonical, for the report. */
static PGresult *row_detail(struct pgconn *c, const struct mig_table *t, const char *qname,
			    const char *key_arr, struct err *err)
{
	struct strbuf b = {0};
	for (int i = 0; i < t->ncols; i++) {
		char *e = canon_column(&t->cols[i]);
		sb_addf(&b, "%s%s", i ? ", " : "", e);
		free(e);
	}
	char *cols = sb_take(&b);
	char *where = keyrange_bound(t, key_arr, "=");
	char *sql = xasprintf("SELECT %s FROM %s WHERE %s", cols, qname, where);
	PGresult *r = pgconn_query(c, sql, 0, NULL, err);
	free(sql);
	free(where);
	free(cols);
	return r;
}

static json_t *short_value(PGresult *r, int col)
{
	if (PQgetisnull(r, 0, col))
		return json_null();
	const char *v = PQgetvalue(r, 0, col);
	size_t n = strlen(v);
	if (n <= 64)
		return json_string(v);
	char *s = xasprintf("%.60s... (%zu chars)", v, n);
	json_t *j = json_string(s);
	free(s);
	return j;
}

/* The key as an object {column: value}. */
static json_t *key_json(const struct mig_table *t, const char *key_arr)
{
	char **vals;
	int n = keyrange_parse_array(key_arr, &vals);
	json_t *o = json_object();
	for (int i = 0; i < n; i++) {
		if (i < t->nkey)
			json_object_set_new(o, t->cols[t->key_idx[i]].name, json_string(vals[i]));
		free(vals[i]);
	}
	free(vals);
	return o;
}

static json_t *describe_key(struct vctx *v, const struct mig_table *t, const char *key_arr,
			    const char *issue)
{
	json_t *o = json_pack("{s:o, s:s}", "key", key_json(t, key_arr), "issue", issue);
	if (strcmp(issue, "differs") != 0)
		return o;
	struct err err;
	PGresult *a = row_detail(&v->src, t, t->qname, key_arr, &err);
	PGresult *b = a ? row_detail(&v->tgt, t, t->tgt_qname, key_arr, &err) : NULL;
	if (a && b && PQntuples(a) == 1 && PQntuples(b) == 1) {
		json_t *cols = json_array();
		for (int i = 0; i < t->ncols; i++) {
			bool an = PQgetisnull(a, 0, i), bn = PQgetisnull(b, 0, i);
			if (an == bn && (an || strcmp(PQgetvalue(a, 0, i), PQgetvalue(b, 0, i)) == 0))
				continue;
			json_array_append_new(cols, json_pack("{s:s, s:o, s:o}", "column",
							      t->cols[i].name, "source",
							      short_value(a, i), "target",
							      short_value(b, i)));
		}
		json_object_set_new(o, "columns", cols);
	}
	PQclear(a);
	PQclear(b);
	return o;
}

/* Keys found different, with what was wrong. */
struct keyset {
	char **key;         /* owned: text[] literals */
	const char **issue; /* static strings */
	size_t n, cap;
};

static void ks_add(struct keyset *ks, const char *key, const char *issue)
{
	if (ks->n == ks->cap) {
		ks->cap = ks->cap ? ks->cap * 2 : 16;
		ks->key = xrealloc(ks->key, ks->cap * sizeof(char *));
		ks->issue = xrealloc(ks->issue, ks->cap * sizeof(char *));
	}
	ks->key[ks->n] = xstrdup(key);
	ks->issue[ks->n++] = issue;
}

static void ks_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		free(ks->key[i]);
	free(ks->key);
	free(ks->issue);
	memset(ks, 0, sizeof(*ks));
}

/*
 * Rows of pred compared key by key: the source first, then the target once
 * the applier passed the fence read in between.  Differing keys go to out.
 * Memory is bounded by what pred selects (one ledger range, or a batch of keys).
 */
static bool diff_rows(struct vctx *v, const struct mig_table *t, const char *rowexpr,
		      const char *pred, struct keyset *out, struct err *err)
{
	struct strbuf kb = {0};
	for (int i = 0; i < t->nkey; i++) {
		char *id = pgconn_ident(t->cols[t->key_idx[i]].name);
		sb_addf(&kb, "%s%s::text", i ? ", " : "", id);
		free(id);
	}
	char *karr = sb_take(&kb);
	char *sql_s = xasprintf("SELECT ARRAY[%s]::text, md5(%s) FROM %s WHERE %s", karr, rowexpr,
				t->qname, pred);
	char *sql_t = xasprintf("SELECT ARRAY[%s]::text, md5(%s) FROM %s WHERE %s", karr, rowexpr,
				t->tgt_qname, pred);
	free(karr);
	uint64_t fence = 0;
	PGresult *a = pgconn_query(&v->src, sql_s, 0, NULL, err), *b = NULL;
	if (a != NULL && pgconn_current_lsn(&v->src, &fence, err)) {
		if (wait_applied(v, fence))
			b = pgconn_query(&v->tgt, sql_t, 0, NULL, err);
		else if (!*v->o->stop)
			err_set(err, "the applier did not reach the check's position in time");
	}
	free(sql_s);
	free(sql_t);
	if (a == NULL || b == NULL) {
		PQclear(a);
		return false;
	}
	note_fence(v, fence);
	struct keyhash h = {0};
	h.cap = 16;
	while (h.cap < (size_t)PQntuples(a) * 2 + 2)
		h.cap *= 2;
	h.keys = xcalloc(h.cap, sizeof(char *));
	h.md5s = xcalloc(h.cap, sizeof(char *));
	h.seen = xcalloc(h.cap, sizeof(bool));
	for (int i = 0; i < PQntuples(a); i++)
		kh_put(&h, PQgetvalue(a, i, 0), PQgetvalue(a, i, 1));
	for (int i = 0; i < PQntuples(b); i++) {
		ssize_t k = kh_find(&h, PQgetvalue(b, i, 0));
		if (k < 0) {
			ks_add(out, PQgetvalue(b, i, 0), "extra on target");
			continue;
		}
		h.seen[k] = true;
		if (strcmp(h.md5s[k], PQgetvalue(b, i, 1)) != 0)
			ks_add(out, PQgetvalue(b, i, 0), "differs");
	}
	for (size_t i = 0; i < h.cap; i++)
		if (h.keys[i] != NULL && !h.seen[i])
			ks_add(out, h.keys[i], "missing on target");
	kh_free(&h);
	PQclear(a);
	PQclear(b);
	return true;
}

/* "(k = ..) OR (k = ..)" for keys[from .. from+n) of t; caller frees. */
static char *keys_pred(const struct mig_table *t, char *const *keys, size_t from, size_t n)
{
	struct strbuf b = {0};
	for (size_t j = from; j < from + n; j++) {
		char *one = keyrange_bound(t, keys[j], "=");
		sb_addf(&b, "%s(%s)", j > from ? " OR " : "", one);
		free(one);
	}
	return sb_take(&b);
}

#define CONFIRM_BATCH 500

/*
 * Keeps only the persistent differences: each candidate key is compared
 * again, fenced, up to `rechecks` times; a key that matches once the
 * applier has passed its fence was an in-flight change, not a difference.
 */
static bool confirm(struct vctx *v, const struct mig_table *t, const char *rowexpr,
		    struct keyset *cand, struct err *err)
{
	for (int64_t attempt = 0; attempt < v->o->rechecks && cand->n > 0 && !*v->o->stop; attempt++) {
		struct keyset next = {0};
		for (size_t i = 0; i < cand->n; i += CONFIRM_BATCH) {
			size_t n = cand->n - i < CONFIRM_BATCH ? cand->n - i : CONFIRM_BATCH;
			char *pred = keys_pred(t, cand->key, i, n);
			bool ok = diff_rows(v, t, rowexpr, pred, &next, err);
			free(pred);
			if (!ok) {
				ks_free(&next);
				return false;
			}
		}
		ks_free(cand);
		*cand = next;
	}
	return !*v->o->stop;
}

/* The persistent differences in pred: counted in *ndiff, the first max_keys described. */
static bool narrow(struct vctx *v, const struct mig_table *t, const char *rowexpr,
		   const char *pred, json_t *keys, int64_t *ndiff, struct err *err)
{
	struct keyset cand = {0};
	bool ok = diff_rows(v, t, rowexpr, pred, &cand, err) && confirm(v, t, rowexpr, &cand, err);
	for (size_t i = 0; ok && i < cand.n; i++) {
		(*ndiff)++;
		if (json_array_size(keys) < (size_t)v->o->max_keys)
			json_array_append_new(keys, describe_key(v, t, cand.key[i], cand.issue[i]));
	}
	ks_free(&cand);
	return ok;
}

/* --- per table --------------------------------------------------------------- */

static void add_result(struct vctx *v, json_t *res)
{
	pthread_mutex_lock(&v->run->lock);
	json_array_append_new(v->run->results, res);
	pthread_mutex_unlock(&v->run->lock);
}

static void progress(struct vctx *v, int64_t total_delta, int64_t done_delta, int64_t mism)
{
	pthread_mutex_lock(&v->run->lock);
	v->run->work_total += total_delta;
	v->run->work_done += done_delta;
	v->run->mismatches += mism;
	pthread_mutex_unlock(&v->run->lock);
}

static bool check_counts(struct vctx *v, const struct mig_table *t, struct err *err)
{
	struct digest s, d;
	uint64_t fence = 0;
	bool same = false;
	if (!fenced_compare(v, t, NULL, "true", true, v->o->rechecks, &same, &s, &d, &fence, err))
		return false;
	char f[32];
	note_fence(v, fence);
	add_result(v, json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:s}", "schema", t->schema, "table",
				t->name, "kind", "counts", "ok", same, "source_rows",
				(json_int_t)s.rows, "target_rows", (json_int_t)d.rows, "position",
				pos_lsn_format(fence, f, sizeof(f))));
	progress(v, 0, 1, same ? 0 : 1);
	throttle(v, s.rows + d.rows);
	return true;
}

static bool check_checksums(struct vctx *v, const struct mig_table *t, struct err *err)
{
	/* The backfill's ranges; one open range when the ledger has none. */
	char *tname = xasprintf("%s.%s", t->schema, t->name);
	const char *params[] = {v->o->name, tname};
	PGresult *r = pgconn_query(&v->tgt,
				   "SELECT lo::text, hi::text FROM migd.chunks "
				   "WHERE name = $1 AND table_name = $2 ORDER BY chunk_no",
				   2, params, err);
	free(tname);
	if (r == NULL)
		return false;
	int nchunks = PQntuples(r) > 0 ? PQntuples(r) : 1;
	progress(v, nchunks, 0, 0);
	char *rowexpr = canon_row(t);
	json_t *keys = json_array();
	int64_t src_rows = 0, tgt_rows = 0, ndiff = 0, bad_chunks = 0;
	uint64_t fmin = 0, fmax = 0;
	bool ok = true;
	for (int i = 0; i < nchunks && ok && !*v->o->stop; i++) {
		const char *lo = PQntuples(r) && !PQgetisnull(r, i, 0) ? PQgetvalue(r, i, 0) : NULL;
		const char *hi = PQntuples(r) && !PQgetisnull(r, i, 1) ? PQgetvalue(r, i, 1) : NULL;
		char *pred = t->nkey ? keyrange_pred(t, lo, hi) : xstrdup("true");
		struct digest s, d;
		uint64_t fence = 0;
		bool same = false;
		/* One fenced digest; a difference is then settled key by key (narrow). */
		ok = fenced_compare(v, t, rowexpr, pred, false, t->nkey ? 0 : v->o->rechecks, &same,
				    &s, &d, &fence, err);
		if (ok && !same) {
			int64_t before = ndiff;
			if (t->nkey > 0)
				ok = narrow(v, t, rowexpr, pred, keys, &ndiff, err);
			else
				ndiff++; /* keyless: the chunk itself is the difference */
			if (ndiff > before)
				bad_chunks++;
		}
		if (ok) {
			src_rows += s.rows;
			tgt_rows += d.rows;
			fmin = fmin == 0 || fence < fmin ? fence : fmin;
			fmax = fence > fmax ? fence : fmax;
			note_fence(v, fence);
			progress(v, 0, 1, 0);
			throttle(v, s.rows + d.rows);
		}
		free(pred);
	}
	PQclear(r);
	free(rowexpr);
	if (!ok || *v->o->stop) {
		json_decref(keys);
		return ok;
	}
	char a[32], b[32];
	add_result(v, json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:i, s:I, s:I, s:o, s:s, s:s}",
				"schema", t->schema, "table", t->name, "kind", "checksums", "ok",
				ndiff == 0, "source_rows", (json_int_t)src_rows, "target_rows",
				(json_int_t)tgt_rows, "chunks", nchunks, "mismatched_chunks",
				(json_int_t)bad_chunks, "differing_keys", (json_int_t)ndiff, "keys",
				keys, "position_min", pos_lsn_format(fmin, a, sizeof(a)),
				"position_max", pos_lsn_format(fmax, b, sizeof(b))));
	progress(v, 0, 0, ndiff);
	if (ndiff > 0)
		log_event(LOG_LVL_WARN, "validation_mismatch", "table=%s.%s kind=checksums keys=%lld",
			  t->schema, t->name, (long long)ndiff);
	return true;
}

/* --- invariants and queries ---------------------------------------------------- */

#define CHECK_MAX_ROWS 1000000 /* results compared in memory; beyond this, refuse */
#define CHECK_SHOW_ROWS 10

/* A result set as canonical row strings ("N" / "V<len>:text" per column). */
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

static bool run_sql(struct pgconn *c, const char *sql, struct rows *out, struct err *err)
{
	PGresult *r = pgconn_query(c, sql, 0, NULL, err);
	if (r == NULL)
		return false;
	if (PQntuples(r) > CHECK_MAX_ROWS) {
		err_set(err, "%s: the query returned %d rows; at most %d are compared", c->label,
			PQntuples(r), CHECK_MAX_ROWS);
		PQclear(r);
		return false;
	}
	out->n = PQntuples(r);
	out->r = xcalloc((size_t)out->n + 1, sizeof(char *));
	for (int i = 0; i < out->n; i++) {
		struct strbuf b = {0};
		for (int f = 0; f < PQnfields(r); f++) {
			const char *v = PQgetvalue(r, i, f);
			if (PQgetisnull(r, i, f))
				sb_addf(&b, "%sN", f ? "|" : "");
			else
				sb_addf(&b, "%sV%zu:%s", f ? "|" : "", strlen(v), v);
		}
		out->r[i] = sb_take(&b);
	}
	PQclear(r);
	return true;
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

static bool run_check(struct vctx *v, const struct conf_check *ck, struct err *err)
{
	const char *kind = ck->kind == CHECK_INVARIANT ? "invariant" : "query";
	json_t *res = json_pack("{s:s, s:s, s:s}", "kind", kind, "name", ck->name, "expect",
				ck->expect == EXPECT_EQUAL ? "equal" : "empty");
	bool ok = true, same = false;
	char f[32];
	progress(v, 1, 0, 0);
	if (ck->expect == EXPECT_EMPTY) {
		struct rows a = {0}, b = {0};
		ok = (ck->source_sql == NULL || run_sql(&v->src, ck->source_sql, &a, err)) &&
		     (ck->target_sql == NULL || run_sql(&v->tgt, ck->target_sql, &b, err));
		if (ok) {
			same = a.n == 0 && b.n == 0;
			json_object_set_new(res, "source_rows", json_integer(a.n));
			json_object_set_new(res, "target_rows", json_integer(b.n));
			if (a.n)
				json_object_set_new(res, "source_violations", first_rows(&a));
			if (b.n)
				json_object_set_new(res, "target_violations", first_rows(&b));
		}
		rows_free(&a);
		rows_free(&b);
	} else {
		bool ordered = has_order_by(ck->source_sql) || has_order_by(ck->target_sql);
		for (int64_t attempt = 0; ok && attempt <= v->o->rechecks && !same && !*v->o->stop;
		     attempt++) {
			struct rows a = {0}, b = {0};
			uint64_t fence = 0;
			ok = run_sql(&v->src, ck->source_sql, &a, err) && pgconn_current_lsn(&v->src, &fence, err);
			if (ok && !wait_applied(v, fence)) {
				err_set(err, "the applier did not reach the check's position in time");
				ok = false;
			}
			ok = ok && run_sql(&v->tgt, ck->target_sql, &b, err);
			if (ok) {
				note_fence(v, fence);
				json_object_set_new(res, "position",
						    json_string(pos_lsn_format(fence, f, sizeof(f))));
				if (!ordered) {
					qsort(a.r, (size_t)a.n, sizeof(char *), cmp_rows);
					qsort(b.r, (size_t)b.n, sizeof(char *), cmp_rows);
				}
				same = a.n == b.n;
				for (int i = 0; same && i < a.n; i++)
					same = strcmp(a.r[i], b.r[i]) == 0;
				json_object_set_new(res, "ordered", json_boolean(ordered));
				json_object_set_new(res, "source_rows", json_integer(a.n));
				json_object_set_new(res, "target_rows", json_integer(b.n));
				if (!same) {
					int64_t na = 0, nb = 0;
					/* The difference listing works on sorted rows. */
					qsort(a.r, (size_t)a.n, sizeof(char *), cmp_rows);
					qsort(b.r, (size_t)b.n, sizeof(char *), cmp_rows);
					json_object_set_new(res, "only_in_source", only_in(&a, &b, &na));
					json_object_set_new(res, "only_in_target", only_in(&b, &a, &nb));
					if (ordered && na == 0 && nb == 0)
						json_object_set_new(res, "difference",
								    json_string("same rows, different order"));
				}
			}
			rows_free(&a);
			rows_free(&b);
		}
	}
	if (!ok) {
		json_object_set_new(res, "ok", json_false());
		json_object_set_new(res, "error", json_string(err->msg));
		add_result(v, res);
		progress(v, 0, 1, 1);
		return !pgconn_is_broken(&v->src) && !pgconn_is_broken(&v->tgt);
	}
	json_object_set_new(res, "ok", json_boolean(same));
	add_result(v, res);
	progress(v, 0, 1, same ? 0 : 1);
	if (!same)
		log_event(LOG_LVL_WARN, "validation_mismatch", "kind=%s name=%s", kind, ck->name);
	return true;
}

/* --- recent writes -------------------------------------------------------------- */

#define RECENT_BATCH 500 /* keys per comparison query */

struct recent_bucket {
	struct mig_table *t; /* borrowed */
	char **keys;         /* owned: text[] literals */
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
	char *pred = keys_pred(b->t, b->keys, 0, (size_t)b->n);
	char *rowexpr = canon_row(b->t);
	struct digest s, d;
	uint64_t fence = 0;
	bool same = false;
	rc->ok = fenced_compare(rc->v, b->t, rowexpr, pred, false, 0, &same, &s, &d, &fence, rc->err);
	if (rc->ok) {
		note_fence(rc->v, fence);
		if (!same)
			rc->ok = narrow(rc->v, b->t, rowexpr, pred, b->diffs, &b->ndiff, rc->err);
		throttle(rc->v, s.rows + d.rows);
	}
	b->checked += b->n;
	for (int i = 0; i < b->n; i++)
		free(b->keys[i]);
	b->n = 0;
	free(rowexpr);
	free(pred);
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

static bool check_recent(struct vctx *v, struct err *err)
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
	progress(v, 1, 0, 0);
	if (o->keylog_path == NULL ||
	    !keylog_read_since(o->keylog_path, o->since_lsn, recent_key, &rc, &gap_from, &gap_to, &e)) {
		err_set(err, "recent writes: %s", e ? e : "no key log");
		free(e);
		rc.ok = false;
	}
	char f[32], g1[32], g2[32];
	for (int i = 0; rc.ok && i < o->ts->n; i++)
		recent_flush(&rc, &rc.b[i]);
	for (int i = 0; i < o->ts->n; i++) {
		struct recent_bucket *b = &rc.b[i];
		if (rc.ok && b->checked > 0) {
			add_result(v, json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:O, s:s}", "schema",
						b->t->schema, "table", b->t->name, "kind", "recent",
						"ok", b->ndiff == 0, "keys_checked",
						(json_int_t)b->checked, "differing_keys",
						(json_int_t)b->ndiff, "keys", b->diffs, "since",
						pos_lsn_format(o->since_lsn, f, sizeof(f))));
			progress(v, 0, 0, b->ndiff);
		}
		for (int k = 0; k < b->n; k++)
			free(b->keys[k]);
		free(b->keys);
		json_decref(b->diffs);
	}
	free(rc.b);
	if (rc.ok && gap_from != 0) {
		/* Coverage is incomplete: say so and fail, never pass it silently. */
		char *msg = xasprintf("keys of changes between %s and %s were not logged (a crash "
				      "lost the log's tail): run --kind checksums",
				      pos_lsn_format(gap_from, g1, sizeof(g1)),
				      pos_lsn_format(gap_to, g2, sizeof(g2)));
		add_result(v, json_pack("{s:s, s:s, s:s, s:b, s:s}", "schema", "*", "table", "*", "kind",
					"recent", "ok", 0, "error", msg));
		free(msg);
		progress(v, 0, 0, 1);
	}
	progress(v, 0, 1, 0);
	return rc.ok;
}

/* --- the run ----------------------------------------------------------------- */

static bool store(struct vctx *v, struct err *err)
{
	pthread_mutex_lock(&v->run->lock);
	char *res = json_dumps(v->run->results, JSON_COMPACT);
	char kinds[64], mism[24], fmin[32], fmax[32];
	kinds_text(v->run->kinds, kinds, sizeof(kinds));
	snprintf(mism, sizeof(mism), "%lld", (long long)v->run->mismatches);
	pos_lsn_format(v->run->fence_min, fmin, sizeof(fmin));
	pos_lsn_format(v->run->fence_max, fmax, sizeof(fmax));
	const char *params[] = {v->o->name, kinds, v->run->status, mism, fmin, fmax, res};
	pthread_mutex_unlock(&v->run->lock);
	PGresult *r = pgconn_query(
		&v->tgt,
		"INSERT INTO migd.validation (name, kinds, status, mismatches, position_min, "
		"position_max, results) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING id",
		7, params, err);
	free(res);
	if (r == NULL)
		return false;
	pthread_mutex_lock(&v->run->lock);
	v->run->id = atoll(PQgetvalue(r, 0, 0));
	pthread_mutex_unlock(&v->run->lock);
	PQclear(r);
	return true;
}

static void finish(struct vctx *v, const char *status, const char *error)
{
	pthread_mutex_lock(&v->run->lock);
	snprintf(v->run->status, sizeof(v->run->status), "%s", status);
	if (error)
		snprintf(v->run->error, sizeof(v->run->error), "%s", error);
	v->run->finished_wall_us = now_wall_usec();
	pthread_mutex_unlock(&v->run->lock);
}

void *validate_thread(void *arg)
{
	const struct validate_opts *o = arg;
	struct vctx v = {.o = o, .run = o->run, .throttle_start = now_mono_usec()};
	struct err err;
	bool ok = ensure(&v.src, "source", o->src_conninfo, &err) &&
		  ensure(&v.tgt, "target", o->tgt_conninfo, &err);
	bool by_table = o->kinds & (VK_COUNTS | VK_CHECKSUMS);
	int tables = 0, checks = 0;
	for (int i = 0; ok && by_table && i < o->ts->n && !*o->stop; i++) {
		const struct mig_table *t = &o->ts->t[i];
		char full[160];
		snprintf(full, sizeof(full), "%s.%s", t->schema, t->name);
		if (o->table && o->table[0] && strcmp(o->table, full) != 0 && strcmp(o->table, t->name) != 0)
			continue;
		tables++;
		if (o->kinds & VK_COUNTS) {
			progress(&v, 1, 0, 0);
			ok = check_counts(&v, t, &err);
		}
		if (ok && (o->kinds & VK_CHECKSUMS))
			ok = check_checksums(&v, t, &err);
	}
	/* Checks span tables: a run scoped to one table leaves them out. */
	bool scoped = o->table && o->table[0];
	for (int i = 0; ok && !scoped && i < o->nchecks && !*o->stop; i++) {
		const struct conf_check *ck = &o->checks[i];
		if (((o->kinds & VK_INVARIANTS) && ck->kind == CHECK_INVARIANT) ||
		    ((o->kinds & VK_QUERIES) && ck->kind == CHECK_QUERY)) {
			checks++;
			ok = run_check(&v, ck, &err);
		}
	}
	if (ok && (o->kinds & VK_RECENT))
		ok = check_recent(&v, &err);
	if (ok && by_table && tables == 0 && o->table && o->table[0]) {
		err_set(&err, "no migrated table is called '%s'", o->table);
		ok = false;
	} else if (ok && !by_table && !scoped && !(o->kinds & VK_RECENT) && checks == 0) {
		err_set(&err, "no [invariant] or [query] section is configured");
		ok = false;
	}
	if (*o->stop)
		finish(&v, "stopped", NULL);
	else if (!ok)
		finish(&v, "failed", err.msg);
	else
		finish(&v, "done", NULL);
	if (ok && !*o->stop && !store(&v, &err))
		log_warn("validate: could not store the results: %s", err.msg);
	pthread_mutex_lock(&v.run->lock);
	log_event(LOG_LVL_NOTICE, "validation", "status=%s mismatches=%lld", v.run->status,
		  (long long)v.run->mismatches);
	pthread_mutex_unlock(&v.run->lock);
	pgconn_close(&v.src);
	pgconn_close(&v.tgt);
	if (o->done)
		o->done(o->done_arg);
	return NULL;
}

json_t *validate_run_json(struct validate_run *run)
{
	char a[32], b[32];
	pthread_mutex_lock(&run->lock);
	double secs = (double)(now_mono_usec() - run->started_mono_us) / 1e6;
	double rate = secs > 0.2 ? (double)run->rows_done / secs : 0;
	double frac = run->work_total ? (double)run->work_done / (double)run->work_total : 0;
	double eta = strcmp(run->status, "running") != 0 ? 0
		     : frac > 0.01			    ? secs * (1 - frac) / frac
							    : -1;
	json_t *o = json_pack(
		"{s:I, s:s, s:s, s:I, s:I, s:I, s:f, s:f, s:I, s:s, s:s, s:O, s:s?}", "id",
		(json_int_t)run->id, "status", run->status, "table", run->table[0] ? run->table : "*",
		"work_total", (json_int_t)run->work_total, "work_done", (json_int_t)run->work_done,
		"rows_read", (json_int_t)run->rows_done, "rows_per_second", rate, "eta_seconds", eta,
		"mismatches", (json_int_t)run->mismatches, "position_min",
		pos_lsn_format(run->fence_min, a, sizeof(a)), "position_max",
		pos_lsn_format(run->fence_max, b, sizeof(b)), "results", run->results, "error",
		run->error[0] ? run->error : NULL);
	char kt[64];
	json_object_set_new(o, "kinds", json_string(kinds_text(run->kinds, kt, sizeof(kt))));
	json_object_set_new(o, "started_at_us", json_integer(run->started_wall_us));
	json_object_set_new(o, "finished_at_us", json_integer(run->finished_wall_us));
	pthread_mutex_unlock(&run->lock);
	return o;
}
