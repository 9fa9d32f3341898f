/*
 * validate_sums: chunk checksums, per backfill ledger range of each keyed
 * table (one range for a table without a ledger or a key): the row count
 * and digest of each range on both sides, fenced and pipelined (below); a
 * range that differs is narrowed to its keys (validate_narrow.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pos.h"
#include "util.h"
#include "validate_int.h"
#include "vstore.h"

static const char *digest_name(enum vdigest_kind k)
{
	static const char *const names[] = {[VDIGEST_MD5] = "md5",
					    [VDIGEST_PGHASH] = "hashtextextended",
					    [VDIGEST_PGROW] = "hashtextextended(record)"};
	return names[k];
}

/*
 * The chunks of a keyed table, pipelined: while the target digests chunk
 * i, the source reads on -- chunk i+1, and further while the target is
 * still busy, up to READ_AHEAD chunks read and not yet compared, running
 * on into the next keyed table's first chunk once the table's own are all
 * read (struct vahead).  So both servers (or the MariaDB read and the
 * target) work at once, also where the source has little to read (the
 * open range that ends each ledger is usually empty) and at each table's
 * start and end.  Each side still runs one statement at a time.  Each
 * comparison is still fenced: the source's position is read right after
 * each chunk's read, and the target's read of chunk i starts only once
 * the applier has passed chunk i's fence.
 */
#define READ_AHEAD 2

struct chunk_read {
	struct vsel sel;
	struct vdigest s, d;
	struct pos fence;
};

/* A table's chunks read from the source and not yet compared, oldest first. */
struct chunk_queue {
	struct chunk_read c[READ_AHEAD + 1]; /* the one being compared and those read ahead */
	int head, len;
	int nread; /* the table's chunks read so far */
};

/* The next table's ledger ranges (loaded while the target was idle) and maybe its first chunk. */
struct vahead {
	const struct mig_table *t; /* borrowed */
	struct vranges r;
	bool read;	     /* c holds the first chunk's source digest and fence */
	struct chunk_read c; /* c.sel points into r */
};

static void ahead_free(struct vahead *a)
{
	if (a == NULL)
		return;
	vranges_free(&a->r);
	free(a);
}

void validate_ahead_free(struct vctx *v)
{
	ahead_free(v->ahead);
	v->ahead = NULL;
}

/* The table whose checksums follow t's, when its first chunk can be read ahead; or NULL. */
static const struct mig_table *next_keyed(const struct vctx *v, const struct mig_table *t)
{
	const struct mig_tableset *ts = v->o->ts;
	for (long i = t - ts->t + 1; i >= 1 && i < ts->n; i++) {
		const struct mig_table *n = &ts->t[i];
		if (!vctx_in_scope(v->o, n))
			continue;
		return n->nkey > 0 && vside_refused(&v->tgt, n) == NULL ? n : NULL;
	}
	return NULL;
}

static bool source_chunk(struct vctx *v, const struct mig_table *t, struct chunk_read *c,
			 struct err *err)
{
	return vside_digest(&v->src, t, &c->sel, &c->s, err) &&
	       vside_position(&v->src, &c->fence, err);
}

static void chunk_sel(const struct vranges *r, int i, const struct mig_table *t, struct vsel *sel)
{
	*sel = (struct vsel){0};
	if (t->nkey > 0 && r->n > 0) {
		sel->lo = r->lo[i];
		sel->hi = r->hi[i];
	}
}

/*
 * A table whose rows cannot be compared exactly between the two engines
 * (vside_refused()): a failed result that says why, never a false pass.
 */
static bool refuse(struct vctx *v, const struct mig_table *t, const char *kind, const char *why)
{
	vctx_add_result(v, json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:s}", "schema", t->schema,
				     "table", t->name, "kind", kind, "ok", 0, "source_rows",
				     (json_int_t)0, "target_rows", (json_int_t)0, "error", why));
	vctx_progress(v, 0, 0, 1);
	log_event(LOG_LVL_WARN, "validation_refused", "table=%s.%s kind=%s reason=\"%s\"",
		  t->schema, t->name, kind, why);
	return true;
}

/*
 * Reads the next chunk from the source: t's next one into q, or once t's
 * are all read nx's first (nx may be NULL).  *none: there is none to read.
 */
static bool read_next(struct vctx *v, const struct mig_table *t, const struct vranges *r,
		      int nchunks, struct chunk_queue *q, struct vahead *nx, bool *none,
		      struct err *err)
{
	*none = false;
	if (q->nread < nchunks) {
		struct chunk_read *c = &q->c[(q->head + q->len) % (int)ARRAY_LEN(q->c)];
		*c = (struct chunk_read){0};
		chunk_sel(r, q->nread, t, &c->sel);
		q->len++;
		q->nread++;
		return source_chunk(v, t, c, err);
	}
	if (nx != NULL && !nx->read) {
		chunk_sel(&nx->r, 0, nx->t, &nx->c.sel);
		nx->read = true;
		return source_chunk(v, nx->t, &nx->c, err);
	}
	*none = true;
	return true;
}

/*
 * While the target digests the oldest chunk of q: the next chunk from the
 * source, then more while the target is still busy, READ_AHEAD at most.
 */
static bool read_ahead(struct vctx *v, const struct mig_table *t, const struct vranges *r,
		       int nchunks, struct chunk_queue *q, struct vahead *nx, struct err *err)
{
	bool ok = true;
	for (int k = 0; ok; k++) {
		int ahead = q->len - 1 + (nx != NULL && nx->read);
		if (ahead >= READ_AHEAD || (k > 0 && vside_digest_ready(&v->tgt)))
			break;
		bool none;
		ok = read_next(v, t, r, nchunks, q, nx, &none, err);
		if (none)
			break;
	}
	return ok;
}

bool validate_checksums(struct vctx *v, const struct mig_table *t, struct err *err)
{
	const char *why = vside_refused(&v->tgt, t);
	if (why != NULL)
		return refuse(v, t, "checksums", why);
	/* The backfill's ranges (one open range when the ledger has none), maybe read ahead. */
	struct vranges r;
	struct chunk_queue q = {0};
	if (v->ahead != NULL && v->ahead->t == t) {
		r = v->ahead->r;
		if (v->ahead->read) {
			q.c[0] = v->ahead->c;
			q.len = q.nread = 1;
		}
		free(v->ahead);
		v->ahead = NULL;
	} else {
		ahead_free(v->ahead);
		v->ahead = NULL;
		if (!vstore_ranges(&v->tgt, v->o->name, t, &r, err))
			return false;
	}
	int nchunks = r.n > 0 ? r.n : 1;
	vctx_progress(v, nchunks, 0, 0);
	json_t *keys = json_array();
	int64_t src_rows = 0, tgt_rows = 0, ndiff = 0, bad_chunks = 0;
	struct pos fmin = pos_none(), fmax = pos_none();
	bool ok = true;
	struct vahead *nx = NULL; /* the next table's, for read_ahead() */
	const struct mig_table *nt = t->nkey > 0 ? next_keyed(v, t) : NULL;
	if (nt != NULL) { /* its ranges now: the target is idle */
		nx = xcalloc(1, sizeof(*nx));
		nx->t = nt;
		ok = vstore_ranges(&v->tgt, v->o->name, nt, &nx->r, err);
	}
	if (ok && t->nkey > 0 && q.len == 0) {
		bool none;
		ok = read_next(v, t, &r, nchunks, &q, NULL, &none, err);
	}
	struct chunk_read cur = {0};
	for (int i = 0; i < nchunks && ok && !*v->o->stop; i++) {
		struct vdigest s, d;
		struct pos fence;
		bool same = false;
		if (t->nkey > 0) {
			cur = q.c[q.head];
			/* One fenced digest; a difference is then settled key by key (narrow). */
			if (!vctx_wait_applied(v, &cur.fence)) {
				if (*v->o->stop)
					break;
				vctx_not_reached(v, &cur.fence, err);
				ok = false;
				break;
			}
			ok = vside_digest_send(&v->tgt, t, &cur.sel, err) &&
			     read_ahead(v, t, &r, nchunks, &q, nx, err);
			/* Read even after a source error: the target must not stay busy. */
			struct err ignored;
			ok = vside_digest_recv(&v->tgt, t, &cur.sel, &cur.d, ok ? err : &ignored) &&
			     ok;
			if (!ok)
				break;
			q.head = (q.head + 1) % (int)ARRAY_LEN(q.c);
			q.len--;
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
	}
	vranges_free(&r);
	if (!ok || *v->o->stop) {
		ahead_free(nx);
		json_decref(keys);
		return ok;
	}
	v->ahead = nx;
	char a[POS_TEXT_MAX], b[POS_TEXT_MAX];
	vctx_add_result(
	    v,
	    json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:i, s:I, s:I, s:o, s:s, s:s, s:s}", "schema",
		      t->schema, "table", t->name, "kind", "checksums", "ok", ndiff == 0,
		      "source_rows", (json_int_t)src_rows, "target_rows", (json_int_t)tgt_rows,
		      "chunks", nchunks, "mismatched_chunks", (json_int_t)bad_chunks,
		      "differing_keys", (json_int_t)ndiff, "keys", keys, "position_min",
		      vctx_pos_text(v, &fmin, a, sizeof(a)), "position_max",
		      vctx_pos_text(v, &fmax, b, sizeof(b)), "digest", digest_name(v->src.digest)));
	vctx_progress(v, 0, 0, ndiff);
	if (ndiff > 0)
		log_event(LOG_LVL_WARN, "validation_mismatch",
			  "table=%s.%s kind=checksums keys=%lld", t->schema, t->name,
			  (long long)ndiff);
	return true;
}
