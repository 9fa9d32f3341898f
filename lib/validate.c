/*
 * validate: the run, fenced comparisons, counts and chunk checksums, and
 * the narrowing of a differing chunk to its keys (see validate.h).  The
 * sides' reads in canonical form are vside's; the [invariant]/[query]
 * checks and recent writes are in validate_checks.c.
 */
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyrange.h"
#include "log.h"
#include "pos.h"
#include "util.h"
#include "validate_int.h"

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

/* No position yet: PostgreSQL's runs always showed 0/0 there. */
static const char *pos_text(bool binlog, const struct pos *p, char *buf, size_t n)
{
	if (p->kind == POS_PG_LSN || (p->kind == POS_NONE && !binlog))
		return pos_lsn_format(p->kind == POS_PG_LSN ? p->lsn : 0, buf, n);
	return pos_format(p, buf, n);
}

const char *vctx_pos_text(const struct vctx *v, const struct pos *p, char *buf, size_t n)
{
	return pos_text(v->binlog, p, buf, n);
}

/* --- plumbing ------------------------------------------------------------------ */

bool vctx_wait_applied(struct vctx *v, const struct pos *fence)
{
	uint64_t at = pos_scalar(fence);
	int64_t deadline = now_mono_usec() + v->o->recheck_wait_ms * 1000;
	while (!*v->o->stop) {
		if (v->o->applied_past(v->o->arg, at))
			return true;
		if (now_mono_usec() > deadline)
			return false;
		sleep_interruptible(50, v->o->stop);
	}
	return false;
}

/* err for a fence the applier did not reach in time (not when stopping). */
static void not_reached(struct vctx *v, const struct pos *fence, struct err *err)
{
	char f[POS_TEXT_MAX];
	if (!*v->o->stop)
		err_set(err, "the applier did not reach %s within the recheck wait",
			vctx_pos_text(v, fence, f, sizeof(f)));
}

void vctx_throttle(struct vctx *v, int64_t rows)
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

void vctx_note_fence(struct vctx *v, const struct pos *fence)
{
	uint64_t f = pos_scalar(fence);
	pthread_mutex_lock(&v->run->lock);
	if (v->run->fence_min == 0 || f < v->run->fence_min) {
		v->run->fence_min = f;
		v->run->fence_min_pos = *fence;
	}
	if (f > v->run->fence_max) {
		v->run->fence_max = f;
		v->run->fence_max_pos = *fence;
	}
	pthread_mutex_unlock(&v->run->lock);
}

void vctx_add_result(struct vctx *v, json_t *res)
{
	pthread_mutex_lock(&v->run->lock);
	json_array_append_new(v->run->results, res);
	pthread_mutex_unlock(&v->run->lock);
}

void vctx_progress(struct vctx *v, int64_t total_delta, int64_t done_delta, int64_t mism)
{
	pthread_mutex_lock(&v->run->lock);
	v->run->work_total += total_delta;
	v->run->work_done += done_delta;
	v->run->mismatches += mism;
	pthread_mutex_unlock(&v->run->lock);
}

static bool side_read(struct vside *s, const struct mig_table *t, const struct vsel *sel,
		      bool counts_only, struct vdigest *d, struct err *err)
{
	*d = (struct vdigest){0};
	return counts_only ? vside_count(s, t, &d->rows, err) : vside_digest(s, t, sel, d, err);
}

bool vctx_compare(struct vctx *v, const struct mig_table *t, const struct vsel *sel,
		  bool counts_only, int64_t rechecks, bool *same, struct vdigest *s,
		  struct vdigest *d, struct pos *fence, struct err *err)
{
	for (int64_t attempt = 0; attempt <= rechecks && !*v->o->stop; attempt++) {
		if (!side_read(&v->src, t, sel, counts_only, s, err) ||
		    !vside_position(&v->src, fence, err))
			return false;
		if (!vctx_wait_applied(v, fence)) {
			if (*v->o->stop)
				break;
			not_reached(v, fence, err);
			return false;
		}
		if (!side_read(&v->tgt, t, sel, counts_only, d, err))
			return false;
		*same = s->rows == d->rows && s->sum == d->sum;
		if (*same)
			return true;
		char f[POS_TEXT_MAX];
		log_debug("validate: %s.%s differs at %s (attempt %lld); checking again", t->schema,
			  t->name, vctx_pos_text(v, fence, f, sizeof(f)), (long long)attempt);
	}
	return !*v->o->stop;
}

/* --- narrowing a differing chunk to keys ------------------------------------- */

/* key -> md5 of one side's rows (open addressing, grows at half full). */
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

static size_t kh_slot(const struct keyhash *h, const char *k)
{
	size_t i = hash_str(k) & (h->cap - 1);
	while (h->keys[i] != NULL && strcmp(h->keys[i], k) != 0)
		i = (i + 1) & (h->cap - 1);
	return i;
}

static void kh_grow(struct keyhash *h)
{
	struct keyhash old = *h;
	h->cap = old.cap ? old.cap * 2 : 64;
	h->keys = xcalloc(h->cap, sizeof(char *));
	h->md5s = xcalloc(h->cap, sizeof(char *));
	h->seen = xcalloc(h->cap, sizeof(bool));
	for (size_t i = 0; i < old.cap; i++) {
		if (old.keys[i] == NULL)
			continue;
		size_t j = kh_slot(h, old.keys[i]);
		h->keys[j] = old.keys[i];
		h->md5s[j] = old.md5s[i];
	}
	free(old.keys);
	free(old.md5s);
	free(old.seen);
}

static void kh_put(void *arg, const char *k, const char *md5)
{
	struct keyhash *h = arg;
	if ((h->n + 1) * 2 > h->cap)
		kh_grow(h);
	size_t i = kh_slot(h, k);
	if (h->keys[i] != NULL) { /* the same key twice: a keyless table's "{}" */
		free(h->md5s[i]);
	} else {
		h->keys[i] = xstrdup(k);
		h->n++;
	}
	h->md5s[i] = xstrdup(md5);
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

/* The md5 of key's row in h, or "" when h has none. */
static const char *kh_get(const struct keyhash *h, const char *k)
{
	if (h->cap == 0)
		return "";
	size_t i = kh_slot(h, k);
	return h->keys[i] != NULL ? h->md5s[i] : "";
}

/* Keys found different, with what was wrong and the target's row then. */
struct keyset {
	char **key;         /* owned: text[] literals */
	const char **issue; /* static strings */
	char (*tmd5)[33];   /* owned: the target row's md5, "" for none */
	size_t n, cap;
};

static void ks_add(struct keyset *ks, const char *key, const char *issue, const char *tmd5)
{
	if (ks->n == ks->cap) {
		ks->cap = ks->cap ? ks->cap * 2 : 16;
		ks->key = xrealloc(ks->key, ks->cap * sizeof(char *));
		ks->issue = xrealloc(ks->issue, ks->cap * sizeof(char *));
		ks->tmd5 = xrealloc(ks->tmd5, ks->cap * sizeof(*ks->tmd5));
	}
	snprintf(ks->tmd5[ks->n], sizeof(ks->tmd5[0]), "%s", tmd5);
	ks->key[ks->n] = xstrdup(key);
	ks->issue[ks->n++] = issue;
}

static void ks_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		free(ks->key[i]);
	free(ks->key);
	free(ks->issue);
	free(ks->tmd5);
	memset(ks, 0, sizeof(*ks));
}

/* What is wrong with a key whose rows differ: src and tgt are md5s, "" for no row. */
static const char *issue_of(const char *src, const char *tgt)
{
	return !*tgt ? "missing on target" : !*src ? "extra on target" : "differs";
}

struct tgt_cmp {
	struct keyhash *h;
	struct keyset *out;
};

static void tgt_row(void *arg, const char *k, const char *md5)
{
	struct tgt_cmp *c = arg;
	size_t i = c->h->cap ? kh_slot(c->h, k) : 0;
	if (c->h->cap == 0 || c->h->keys[i] == NULL) {
		ks_add(c->out, k, "extra on target", md5);
		return;
	}
	c->h->seen[i] = true;
	if (strcmp(c->h->md5s[i], md5) != 0)
		ks_add(c->out, k, "differs", md5);
}

/*
 * The versions of a few keys' source rows, read one after another: for
 * each key the md5 of its row ("" for none) at each read, the newest
 * VERSIONS_MAX distinct ones.
 */
#define VERSIONS_MAX 64

struct versions {
	char *const *keys; /* borrowed, nkeys */
	size_t nkeys;
	char (*md5)[VERSIONS_MAX][33]; /* owned, per key: a ring */
	int *n;			       /* owned, per key: versions seen (the ring holds the last) */
};

static void vers_init(struct versions *vs, char *const *keys, size_t n)
{
	vs->keys = keys;
	vs->nkeys = n;
	vs->md5 = xcalloc(n + 1, sizeof(*vs->md5));
	vs->n = xcalloc(n + 1, sizeof(int));
}

static void vers_free(struct versions *vs)
{
	free(vs->md5);
	free(vs->n);
}

static const char *vers_last(const struct versions *vs, size_t i)
{
	return vs->n[i] ? vs->md5[i][(vs->n[i] - 1) % VERSIONS_MAX] : "";
}

static void vers_add(struct versions *vs, size_t i, const char *md5)
{
	if (vs->n[i] > 0 && strcmp(vers_last(vs, i), md5) == 0)
		return;
	snprintf(vs->md5[i][vs->n[i] % VERSIONS_MAX], 33, "%s", md5);
	vs->n[i]++;
}

static bool vers_has(const struct versions *vs, size_t i, const char *md5)
{
	int held = vs->n[i] < VERSIONS_MAX ? vs->n[i] : VERSIONS_MAX;
	for (int j = 0; j < held; j++)
		if (strcmp(vs->md5[i][j], md5) == 0)
			return true;
	return false;
}

/* One read of the keys' source rows, added to their versions. */
static bool vers_read(struct vctx *v, const struct mig_table *t, struct versions *vs,
		      struct err *err)
{
	struct keyhash h = {0};
	struct vsel sel = {.by_keys = true, .keys = vs->keys, .nkeys = vs->nkeys};
	bool ok = vside_hashes(&v->src, t, &sel, kh_put, &h, err);
	for (size_t i = 0; ok && i < vs->nkeys; i++)
		vers_add(vs, i, kh_get(&h, vs->keys[i]));
	kh_free(&h);
	return ok;
}

/*
 * sel's rows compared key by key: the source first, then the target once
 * the applier passed the fence read in between.  Differing keys go to out.
 * Memory is bounded by what sel selects (one ledger range, or a batch of keys).
 */
static bool diff_rows(struct vctx *v, const struct mig_table *t, const struct vsel *sel,
		      struct keyset *out, struct err *err)
{
	struct keyhash h = {0};
	struct pos fence;
	bool ok = vside_hashes(&v->src, t, sel, kh_put, &h, err) &&
		  vside_position(&v->src, &fence, err);
	if (ok && !vctx_wait_applied(v, &fence)) {
		not_reached(v, &fence, err);
		ok = false;
	}
	struct tgt_cmp c = {&h, out};
	ok = ok && vside_hashes(&v->tgt, t, sel, tgt_row, &c, err);
	if (ok) {
		vctx_note_fence(v, &fence);
		for (size_t i = 0; i < h.cap; i++)
			if (h.keys[i] != NULL && !h.seen[i])
				ks_add(out, h.keys[i], "missing on target", "");
	}
	kh_free(&h);
	return ok;
}

/*
 * Keys of cand whose target row, as read, equals a version in vs (key i
 * of vs is cand's key i) are settled and dropped; the others stay, their
 * issue taken from the newest source version.
 */
static void settle(struct keyset *cand, const struct versions *vs)
{
	size_t kept = 0;
	for (size_t i = 0; i < cand->n; i++) {
		if (vers_has(vs, i, cand->tmd5[i])) {
			free(cand->key[i]);
			continue;
		}
		cand->issue[i] = issue_of(vers_last(vs, i), cand->tmd5[i]);
		cand->key[kept] = cand->key[i];
		cand->issue[kept] = cand->issue[i];
		memcpy(cand->tmd5[kept], cand->tmd5[i], sizeof(cand->tmd5[0]));
		kept++;
	}
	cand->n = kept;
}

#define CONFIRM_BATCH 500
#define SAMPLE_MIN_MS 2 /* source reads while the applier is awaited: at most this often */

/*
 * Waits as vctx_wait_applied(), reading the keys' source rows meanwhile:
 * a pause of SAMPLE_MIN_MS between reads, or four times what the last
 * read took, so that slow reads (a MariaDB text key scans the table) keep
 * the source busy a fifth of the time at most.  False on timeout (with
 * err), stop, or a failed read.
 */
static bool wait_reading(struct vctx *v, const struct mig_table *t, const struct pos *fence,
			 struct versions *vs, struct err *err)
{
	uint64_t at = pos_scalar(fence);
	int64_t deadline = now_mono_usec() + v->o->recheck_wait_ms * 1000;
	while (!*v->o->stop) {
		if (v->o->applied_past(v->o->arg, at))
			return true;
		if (now_mono_usec() > deadline) {
			not_reached(v, fence, err);
			return false;
		}
		int64_t t0 = now_mono_usec();
		if (!vers_read(v, t, vs, err))
			return false;
		vctx_throttle(v, (int64_t)vs->nkeys); /* rows_per_second covers these reads too */
		int took = (int)((now_mono_usec() - t0) / 1000);
		sleep_interruptible(4 * took > SAMPLE_MIN_MS ? 4 * took : SAMPLE_MIN_MS, v->o->stop);
	}
	return false;
}

/*
 * One fenced recheck of suspect keys (cand, at most CONFIRM_BATCH): the
 * source's rows, its fence, the target's rows once the applier passed the
 * fence, the source's rows once more.  While waiting for the applier the
 * source is read again and again.  A key stays suspect only when its
 * target row equals none of the versions the source showed from the first
 * read to the last: a hot key the applier has carried past the first read
 * matches the version the source had when the applier's batch was cut,
 * or the source's row after the target was read.  So a target row passes
 * only if the source held it between the fence's read and the check, as
 * for the first read alone.
 */
static bool recheck(struct vctx *v, const struct mig_table *t, struct keyset *cand,
		    struct err *err)
{
	struct versions vs;
	vers_init(&vs, cand->key, cand->n);
	struct pos fence;
	struct keyhash tgt = {0};
	struct vsel sel = {.by_keys = true, .keys = cand->key, .nkeys = cand->n};
	bool ok = vers_read(v, t, &vs, err) && vside_position(&v->src, &fence, err) &&
		  wait_reading(v, t, &fence, &vs, err) &&
		  vside_hashes(&v->tgt, t, &sel, kh_put, &tgt, err) && vers_read(v, t, &vs, err);
	if (ok) {
		vctx_note_fence(v, &fence);
		for (size_t i = 0; i < cand->n; i++)
			snprintf(cand->tmd5[i], sizeof(cand->tmd5[0]), "%s",
				 kh_get(&tgt, cand->key[i]));
		settle(cand, &vs);
	}
	kh_free(&tgt);
	vers_free(&vs);
	return ok;
}

/*
 * Keeps only the persistent differences.  First the source rows of the
 * differing keys are read again: a key whose source row now equals the
 * target row read before was in flight.  Then each remaining key is
 * rechecked (recheck()), fenced, up to `rechecks` times.
 */
static bool confirm(struct vctx *v, const struct mig_table *t, struct keyset *cand,
		    struct err *err)
{
	struct keyset next = {0};
	for (size_t i = 0; i < cand->n && !*v->o->stop; i += CONFIRM_BATCH) {
		struct keyset part = {0};
		size_t n = cand->n - i < CONFIRM_BATCH ? cand->n - i : CONFIRM_BATCH;
		for (size_t k = i; k < i + n; k++)
			ks_add(&part, cand->key[k], cand->issue[k], cand->tmd5[k]);
		struct versions vs;
		vers_init(&vs, part.key, part.n);
		bool ok = vers_read(v, t, &vs, err);
		if (ok)
			settle(&part, &vs);
		for (int64_t attempt = 0;
		     ok && attempt < v->o->rechecks && part.n > 0 && !*v->o->stop; attempt++)
			ok = recheck(v, t, &part, err);
		vers_free(&vs);
		for (size_t k = 0; ok && k < part.n; k++)
			ks_add(&next, part.key[k], part.issue[k], part.tmd5[k]);
		ks_free(&part);
		if (!ok) {
			ks_free(&next);
			return false;
		}
	}
	ks_free(cand);
	*cand = next;
	return !*v->o->stop;
}

static json_t *short_value(const char *v)
{
	if (v == NULL)
		return json_null();
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

/* A differing key for the report; for "differs", the columns that differ. */
static json_t *describe_key(struct vctx *v, const struct mig_table *t, const char *key_arr,
			    const char *issue)
{
	json_t *o = json_pack("{s:o, s:s}", "key", key_json(t, key_arr), "issue", issue);
	if (strcmp(issue, "differs") != 0)
		return o;
	struct err err;
	struct vrow a, b;
	bool fa = false, fb = false;
	bool ok = vside_row(&v->src, t, key_arr, &a, &fa, &err) &&
		  vside_row(&v->tgt, t, key_arr, &b, &fb, &err);
	if (ok && fa && fb) {
		json_t *cols = json_array();
		for (int i = 0; i < t->ncols; i++) {
			const char *x = a.val[i], *y = b.val[i];
			if ((x == NULL) == (y == NULL) && (x == NULL || strcmp(x, y) == 0) &&
			    a.status[i] == NULL)
				continue;
			json_t *c = json_pack("{s:s, s:o, s:o}", "column", t->cols[i].name, "source",
					      short_value(x), "target", short_value(y));
			if (a.status[i] != NULL) /* a value PostgreSQL cannot take as it is */
				json_object_set_new(c, "source_status", json_string(a.status[i]));
			json_array_append_new(cols, c);
		}
		json_object_set_new(o, "columns", cols);
	} else if (!ok) {
		log_warn("validate: %s.%s key %s: no column details: %s", t->schema, t->name,
			 key_arr, err.msg);
	}
	vrow_free(&a);
	vrow_free(&b);
	return o;
}

bool vctx_narrow(struct vctx *v, const struct mig_table *t, const struct vsel *sel, json_t *keys,
		 int64_t *ndiff, struct err *err)
{
	struct keyset cand = {0};
	bool ok = diff_rows(v, t, sel, &cand, err) && confirm(v, t, &cand, err);
	for (size_t i = 0; ok && i < cand.n; i++) {
		(*ndiff)++;
		if (json_array_size(keys) < (size_t)v->o->max_keys)
			json_array_append_new(keys, describe_key(v, t, cand.key[i], cand.issue[i]));
	}
	ks_free(&cand);
	return ok;
}

/* --- per table --------------------------------------------------------------- */

static const char *digest_name(enum vdigest_kind k)
{
	static const char *const names[] = {[VDIGEST_MD5] = "md5",
					    [VDIGEST_PGHASH] = "hashtextextended",
					    [VDIGEST_PGROW] = "hashtextextended(record)"};
	return names[k];
}

static bool check_counts(struct vctx *v, const struct mig_table *t, struct err *err)
{
	struct vdigest s, d;
	struct vsel all = {0};
	struct pos fence;
	bool same = false;
	if (!vctx_compare(v, t, &all, true, v->o->rechecks, &same, &s, &d, &fence, err))
		return false;
	if (*v->o->stop)
		return true;
	char f[POS_TEXT_MAX];
	vctx_note_fence(v, &fence);
	vctx_add_result(v, json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:s}", "schema", t->schema,
				     "table", t->name, "kind", "counts", "ok", same, "source_rows",
				     (json_int_t)s.rows, "target_rows", (json_int_t)d.rows,
				     "position", vctx_pos_text(v, &fence, f, sizeof(f))));
	vctx_progress(v, 0, 1, same ? 0 : 1);
	vctx_throttle(v, s.rows + d.rows);
	return true;
}

/*
 * The chunks of a keyed table, pipelined: while the target digests chunk
 * i, the source digests chunk i+1 and reads its fence, so both servers
 * (or the MariaDB read and the target) work at once.  Each comparison is
 * still fenced: the target's read of chunk i starts only once the applier
 * has passed the fence read after the source's read of chunk i.
 */
struct chunk_read {
	struct vsel sel;
	struct vdigest s, d;
	struct pos fence;
};

static bool source_chunk(struct vctx *v, const struct mig_table *t, struct chunk_read *c,
			 struct err *err)
{
	return vside_digest(&v->src, t, &c->sel, &c->s, err) &&
	       vside_position(&v->src, &c->fence, err);
}

static void chunk_sel(PGresult *r, int i, const struct mig_table *t, struct vsel *sel)
{
	*sel = (struct vsel){0};
	if (t->nkey > 0 && PQntuples(r) > 0) {
		sel->lo = PQgetisnull(r, i, 0) ? NULL : PQgetvalue(r, i, 0);
		sel->hi = PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1);
	}
}

static bool check_checksums(struct vctx *v, const struct mig_table *t, struct err *err)
{
	/* The backfill's ranges; one open range when the ledger has none. */
	char *tname = xasprintf("%s.%s", t->schema, t->name);
	const char *params[] = {v->o->name, tname};
	PGresult *r = pgconn_query(&v->tgt.pg,
				   "SELECT lo::text, hi::text FROM migd.chunks "
				   "WHERE name = $1 AND table_name = $2 ORDER BY chunk_no",
				   2, params, err);
	free(tname);
	if (r == NULL)
		return false;
	int nchunks = PQntuples(r) > 0 ? PQntuples(r) : 1;
	vctx_progress(v, nchunks, 0, 0);
	json_t *keys = json_array();
	int64_t src_rows = 0, tgt_rows = 0, ndiff = 0, bad_chunks = 0;
	struct pos fmin = pos_none(), fmax = pos_none();
	bool ok = true;
	struct chunk_read cur = {0}, next = {0};
	if (t->nkey > 0) {
		chunk_sel(r, 0, t, &cur.sel);
		ok = source_chunk(v, t, &cur, err);
	}
	for (int i = 0; i < nchunks && ok && !*v->o->stop; i++) {
		struct vdigest s, d;
		struct pos fence;
		bool same = false;
		if (t->nkey > 0) {
			/* One fenced digest; a difference is then settled key by key (narrow). */
			if (!vctx_wait_applied(v, &cur.fence)) {
				if (*v->o->stop)
					break;
				not_reached(v, &cur.fence, err);
				ok = false;
				break;
			}
			ok = vside_digest_send(&v->tgt, t, &cur.sel, err);
			if (ok && i + 1 < nchunks) {
				chunk_sel(r, i + 1, t, &next.sel);
				ok = source_chunk(v, t, &next, err);
			}
			/* Read even after a source error: the target must not stay busy. */
			struct err ignored;
			ok = vside_digest_recv(&v->tgt, t, &cur.sel, &cur.d, ok ? err : &ignored) &&
			     ok;
			if (!ok)
				break;
			s = cur.s, d = cur.d, fence = cur.fence;
			same = s.rows == d.rows && s.sum == d.sum;
		} else {
			ok = vctx_compare(v, t, &cur.sel, false, v->o->rechecks, &same, &s, &d,
					  &fence, err);
			if (!ok || *v->o->stop)
				break;
		}
		struct vsel sel = cur.sel;
		if (!same) {
			int64_t before = ndiff;
			if (t->nkey > 0)
				ok = vctx_narrow(v, t, &sel, keys, &ndiff, err);
			else
				ndiff++; /* keyless: the chunk itself is the difference */
			if (ndiff > before)
				bad_chunks++;
		}
		if (ok) {
			src_rows += s.rows;
			tgt_rows += d.rows;
			uint64_t f = pos_scalar(&fence);
			if (fmin.kind == POS_NONE || f < pos_scalar(&fmin))
				fmin = fence;
			if (f > pos_scalar(&fmax))
				fmax = fence;
			vctx_note_fence(v, &fence);
			vctx_progress(v, 0, 1, 0);
			vctx_throttle(v, s.rows + d.rows);
		}
		cur = next;
	}
	PQclear(r);
	if (!ok || *v->o->stop) {
		json_decref(keys);
		return ok;
	}
	char a[POS_TEXT_MAX], b[POS_TEXT_MAX];
	vctx_add_result(
	    v, json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:i, s:I, s:I, s:o, s:s, s:s, s:s}",
			 "schema", t->schema, "table", t->name, "kind", "checksums", "ok",
			 ndiff == 0, "source_rows", (json_int_t)src_rows, "target_rows",
			 (json_int_t)tgt_rows, "chunks", nchunks, "mismatched_chunks",
			 (json_int_t)bad_chunks, "differing_keys", (json_int_t)ndiff, "keys", keys,
			 "position_min", vctx_pos_text(v, &fmin, a, sizeof(a)), "position_max",
			 vctx_pos_text(v, &fmax, b, sizeof(b)), "digest", digest_name(v->src.digest)));
	vctx_progress(v, 0, 0, ndiff);
	if (ndiff > 0)
		log_event(LOG_LVL_WARN, "validation_mismatch", "table=%s.%s kind=checksums keys=%lld",
			  t->schema, t->name, (long long)ndiff);
	return true;
}

/* --- the run ----------------------------------------------------------------- */

static bool store(struct vctx *v, struct err *err)
{
	pthread_mutex_lock(&v->run->lock);
	char *res = json_dumps(v->run->results, JSON_COMPACT);
	char kinds[64], mism[24], fmin[POS_TEXT_MAX], fmax[POS_TEXT_MAX];
	kinds_text(v->run->kinds, kinds, sizeof(kinds));
	snprintf(mism, sizeof(mism), "%lld", (long long)v->run->mismatches);
	vctx_pos_text(v, &v->run->fence_min_pos, fmin, sizeof(fmin));
	vctx_pos_text(v, &v->run->fence_max_pos, fmax, sizeof(fmax));
	const char *params[] = {v->o->name, kinds, v->run->status, mism, fmin, fmax, res};
	pthread_mutex_unlock(&v->run->lock);
	PGresult *r = pgconn_query(
		&v->tgt.pg,
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

static bool connect_sides(struct vctx *v, struct err *err)
{
	const struct validate_opts *o = v->o;
	v->binlog = o->src_engine != ENGINE_POSTGRESQL;
	v->src = (struct vside){.engine = o->src_engine,
				.conninfo = o->src_conninfo,
				.password = o->src_password,
				.legacy_detail = !v->binlog};
	v->tgt = (struct vside){.engine = ENGINE_POSTGRESQL,
				.target = true,
				.conninfo = o->tgt_conninfo,
				.legacy_detail = !v->binlog};
	pthread_mutex_lock(&v->run->lock);
	v->run->binlog = v->binlog;
	pthread_mutex_unlock(&v->run->lock);
	bool src_ok = false, tgt_ok = false;
	if (!vside_ensure(&v->src, err) || !vside_ensure(&v->tgt, err) ||
	    !vside_probe_pghash(&v->src, &src_ok, err) ||
	    !vside_probe_pghash(&v->tgt, &tgt_ok, err))
		return false;
	/*
	 * Both sides digest alike: PostgreSQL's own hash where every side gives
	 * ours, of the record text when both are PostgreSQL.
	 */
	enum vdigest_kind k = !src_ok || !tgt_ok ? VDIGEST_MD5
			      : v->binlog	 ? VDIGEST_PGHASH
						 : VDIGEST_PGROW;
	v->src.digest = v->tgt.digest = k;
	return true;
}

void *validate_thread(void *arg)
{
	const struct validate_opts *o = arg;
	struct vctx v = {.o = o, .run = o->run, .throttle_start = now_mono_usec()};
	struct err err;
	bool ok = connect_sides(&v, &err);
	bool by_table = o->kinds & (VK_COUNTS | VK_CHECKSUMS);
	int tables = 0, checks = 0;
	for (int i = 0; ok && by_table && i < o->ts->n && !*o->stop; i++) {
		const struct mig_table *t = &o->ts->t[i];
		char full[160];
		snprintf(full, sizeof(full), "%s.%s", t->schema, t->name);
		if (o->table && o->table[0] && strcmp(o->table, full) != 0 &&
		    strcmp(o->table, t->name) != 0)
			continue;
		tables++;
		if (o->kinds & VK_COUNTS) {
			vctx_progress(&v, 1, 0, 0);
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
			ok = validate_run_check(&v, ck, &err);
		}
	}
	if (ok && (o->kinds & VK_RECENT))
		ok = validate_recent(&v, &err);
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
	vside_close(&v.src);
	vside_close(&v.tgt);
	if (o->done)
		o->done(o->done_arg);
	return NULL;
}

json_t *validate_run_json(struct validate_run *run)
{
	char a[POS_TEXT_MAX], b[POS_TEXT_MAX];
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
		pos_text(run->binlog, &run->fence_min_pos, a, sizeof(a)), "position_max",
		pos_text(run->binlog, &run->fence_max_pos, b, sizeof(b)), "results", run->results,
		"error", run->error[0] ? run->error : NULL);
	char kt[64];
	json_object_set_new(o, "kinds", json_string(kinds_text(run->kinds, kt, sizeof(kt))));
	json_object_set_new(o, "started_at_us", json_integer(run->started_wall_us));
	json_object_set_new(o, "finished_at_us", json_integer(run->finished_wall_us));
	pthread_mutex_unlock(&run->lock);
	return o;
}
