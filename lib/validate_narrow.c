/*
 * validate_narrow: a differing chunk (or batch of keys) narrowed to the
 * keys that differ, and those rechecked until only persistent differences
 * are left, each described with its columns (see validate.h for how a
 * recheck settles a key the applier carried past a source read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyrange.h"
#include "log.h"
#include "util.h"
#include "validate_int.h"

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
	char **key;	    /* owned: text[] literals */
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
	bool ok =
	    vside_hashes(&v->src, t, sel, kh_put, &h, err) && vside_position(&v->src, &fence, err);
	if (ok && !vctx_wait_applied(v, &fence)) {
		vctx_not_reached(v, &fence, err);
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
			vctx_not_reached(v, fence, err);
			return false;
		}
		int64_t t0 = now_mono_usec();
		if (!vers_read(v, t, vs, err))
			return false;
		vctx_throttle(v, (int64_t)vs->nkeys); /* rows_per_second covers these reads too */
		int took = (int)((now_mono_usec() - t0) / 1000);
		sleep_interruptible(4 * took > SAMPLE_MIN_MS ? 4 * took : SAMPLE_MIN_MS,
				    v->o->stop);
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
static bool recheck(struct vctx *v, const struct mig_table *t, struct keyset *cand, struct err *err)
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
static bool confirm(struct vctx *v, const struct mig_table *t, struct keyset *cand, struct err *err)
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
			json_t *c = json_pack("{s:s, s:o, s:o}", "column", t->cols[i].name,
					      "source", short_value(x), "target", short_value(y));
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
