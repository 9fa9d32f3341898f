/*
 * pgsink_fold: a PostgreSQL sink batch's row changes folded per key and
 * sent as multi-row statements (part of pgsink; see pgsink.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgsink_int.h"

/* --- folding changes per key ------------------------------------------------- */

/*
 * Outside isolate mode the row changes of a foldable table are not sent one
 * by one.  Each key's changes since the last flush fold into one pending
 * entry, and a flush sends a table's entries as multi-row statements: first
 * the deletes (INSERT ... VALUES (..), (..) ON CONFLICT DO UPDATE cannot
 * touch a row twice, so a key that was deleted and inserted again is
 * deleted in this statement and upserted in the next), then the upserts,
 * then the partial updates one by one.  The rules, state before -> after,
 * mirror what sending every change would leave in the target row:
 *
 *   change \ before    none        PARTIAL(p)      UPSERT(u)       DELETE
 *   INSERT, UPDATE     UPSERT(n)   UPSERT(n)       UPSERT(n)       UPSERT(n), delete first
 *   partial UPDATE     PARTIAL(n)  PARTIAL(p<-n)   UPSERT(u<-n)    DELETE (0 rows)
 *   DELETE             DELETE      DELETE          DELETE          DELETE
 *
 * (p<-n: n's columns that are not unchanged-TOAST replace p's; an upsert
 * keeps "delete first".)  An UPDATE that changes the key is a DELETE of the
 * old key and an INSERT of the new one; a partial one (it keeps TOAST values
 * of the old key's row) cannot fold: the table is flushed and it is sent
 * as it is, like every change of a table that does not fold.  A key whose
 * text is not all plain values does not fold either.
 *
 * Changes of different keys (and tables) reach the target in a different
 * order than the source's.  Only unique indexes other than the key,
 * exclusion constraints, triggers and rules that fire under
 * session_replication_role = replica can tell (foreign keys do not fire),
 * so a table folds only when the target has none of them (read at open)
 * and the role took effect.  TRUNCATE, RELATION and COMMIT flush every
 * table first.  Memory stays bounded: a table flushes at max_rows keys, all
 * tables at FOLD_MAX_BYTES of values, and a change too large to copy is
 * sent as it is.  Folding does not change what the applier sees: the
 * touched-keys log and freeze violations are recorded per change before
 * the sink, and isolate mode (failed records) never folds.
 */

static void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	struct arena_blk *b = a->head;
	if (b == NULL || b->cap - b->used < n) {
		b = a->free;
		if (b != NULL && b->cap >= n) {
			a->free = b->next;
		} else {
			size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
			b = xmalloc(sizeof(*b) + cap);
			b->cap = cap;
		}
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	a->bytes += n;
	return p;
}

/* Every block becomes free for reuse; blocks beyond the first go back to malloc. */
static void arena_reset(struct arena *a)
{
	while (a->head != NULL) {
		struct arena_blk *b = a->head;
		a->head = b->next;
		if (a->free == NULL && b->cap == ARENA_BLOCK) {
			b->next = NULL;
			a->free = b;
		} else {
			free(b);
		}
	}
	a->bytes = 0;
}

void pgsink_arena_free(struct arena *a)
{
	arena_reset(a);
	free(a->free);
	a->free = NULL;
}

/* A copy of v in the arena (text NUL-terminated). */
static struct change_value arena_value(struct arena *a, const struct change_value *v)
{
	struct change_value c = {.kind = v->kind};
	if (v->kind == CHV_TEXT) {
		char *d = arena_alloc(a, (size_t)v->len + 1);
		memcpy(d, v->data, v->len);
		d[v->len] = '\0';
		c.len = v->len;
		c.data = d;
	}
	return c;
}

/* True if every key value of t is a plain value (NULL and unchanged-TOAST keys do not fold). */
static bool key_foldable(const struct rel *r, const struct change_tuple *t)
{
	if (t->ncols != r->ncols)
		return false;
	for (int k = 0; k < r->t->nkey; k++)
		if (t->vals[r->key_ev[k]].kind != CHV_TEXT)
			return false;
	return true;
}

static uint32_t key_hash(const struct rel *r, const struct change_value *vals)
{
	uint32_t h = 2166136261u; /* FNV-1a over the key texts, each followed by a 0 */
	for (int k = 0; k < r->t->nkey; k++) {
		const struct change_value *v = &vals[r->key_ev[k]];
		for (uint32_t i = 0; i < v->len; i++)
			h = (h ^ (uint8_t)v->data[i]) * 16777619u;
		h = (h ^ 0xff) * 16777619u;
	}
	return h;
}

static void pend_clear(struct rel *r)
{
	r->npend = 0;
	if (r->slots != NULL)
		memset(r->slots, 0xff, (size_t)r->nslots * sizeof(*r->slots));
}

/* Writes what libpq buffered to the socket (pipeline mode keeps up to 64 kB). */
static bool push(struct pgsink *s, struct err *err)
{
	if (PQflush(s->c.conn) != 0) {
		err_set(err, "target: %s", pgconn_error(&s->c));
		s->base.broken = true;
		return false;
	}
	return true;
}

/*
 * The entry of t's key in r (created empty, state 0, when absent; a table
 * at max_rows flushes first).  NULL on a send failure (err set).
 */
static struct pend *pend_get(struct pgsink *s, struct rel *r, const struct change_tuple *t,
			     struct err *err)
{
	if (r->slots == NULL) {
		r->nslots = r->max_rows * 2;
		r->slots = xmalloc((size_t)r->nslots * sizeof(*r->slots));
		r->pend = xcalloc((size_t)r->max_rows, sizeof(*r->pend));
		pend_clear(r);
	}
	uint32_t h = key_hash(r, t->vals);
	uint32_t mask = (uint32_t)r->nslots - 1, i = h & mask;
	for (; r->slots[i] >= 0; i = (i + 1) & mask) {
		struct pend *p = &r->pend[r->slots[i]];
		if (p->hash == h && pgsink_key_equal(r, &(struct change_tuple){r->ncols, p->vals}, t))
			return p;
	}
	if (r->npend == r->max_rows) {
		/*
		 * Sent now, not when libpq's buffer fills or at commit: the target
		 * works on these rows while the batch goes on.
		 */
		if (!pgsink_flush_rel(s, r, err) || !push(s, err))
			return NULL;
		for (i = h & mask; r->slots[i] >= 0; i = (i + 1) & mask)
			;
	}
	r->slots[i] = r->npend;
	struct pend *p = &r->pend[r->npend++];
	p->hash = h;
	p->state = 0;
	p->delete_first = false;
	p->vals = arena_alloc(&s->arena, (size_t)r->ncols * sizeof(*p->vals));
	return p;
}

/* Folds a full image (INSERT, or an UPDATE without unchanged-TOAST values) into its key. */
static bool fold_upsert(struct pgsink *s, struct rel *r, const struct change_tuple *nt,
			struct err *err)
{
	struct pend *p = pend_get(s, r, nt, err);
	if (p == NULL)
		return false;
	if (p->state == PEND_DELETE)
		p->delete_first = true;
	else if (p->state != PEND_UPSERT)
		p->delete_first = false;
	p->state = PEND_UPSERT;
	for (int i = 0; i < r->ncols; i++)
		p->vals[i] = arena_value(&s->arena, &nt->vals[i]);
	return true;
}

/* Folds an UPDATE whose unchanged-TOAST columns keep the row's values. */
static bool fold_partial(struct pgsink *s, struct rel *r, const struct change_tuple *nt,
			 struct err *err)
{
	struct pend *p = pend_get(s, r, nt, err);
	if (p == NULL)
		return false;
	if (p->state == PEND_DELETE)
		return true; /* the row is gone: the UPDATE finds nothing */
	if (p->state == 0) {
		p->state = PEND_PARTIAL;
		for (int i = 0; i < r->ncols; i++)
			p->vals[i] = (struct change_value){.kind = CHV_UNCHANGED};
	}
	for (int i = 0; i < r->ncols; i++)
		if (nt->vals[i].kind != CHV_UNCHANGED)
			p->vals[i] = arena_value(&s->arena, &nt->vals[i]);
	return true;
}

/* Folds a DELETE of kt's key (only the key columns are kept). */
static bool fold_delete(struct pgsink *s, struct rel *r, const struct change_tuple *kt,
			struct err *err)
{
	struct pend *p = pend_get(s, r, kt, err);
	if (p == NULL)
		return false;
	p->state = PEND_DELETE;
	p->delete_first = false;
	for (int i = 0; i < r->ncols; i++)
		p->vals[i] = (struct change_value){.kind = CHV_NULL};
	for (int k = 0; k < r->t->nkey; k++)
		p->vals[r->key_ev[k]] = arena_value(&s->arena, &kt->vals[r->key_ev[k]]);
	return true;
}

static size_t tuple_bytes(const struct change_tuple *t)
{
	size_t n = 0;
	for (int i = 0; i < t->ncols; i++)
		n += t->vals[i].len;
	return n;
}

/*
 * Folds one row change of a foldable table: 1 folded, 0 it does not fold
 * (send it as it is, after flushing the table), -1 a send failed (err set).
 */
int pgsink_fold_change(struct pgsink *s, struct rel *r, const struct change_event *ev,
		       struct err *err)
{
	const struct change_tuple *nt = &ev->row.new_tuple, *ot = &ev->row.old_tuple;
	bool ok;
	if (tuple_bytes(nt) + tuple_bytes(ot) > FOLD_MAX_CHANGE)
		return 0;
	switch (ev->kind) {
	case CHG_INSERT:
		if (!key_foldable(r, nt) || pgsink_has_unchanged(nt))
			return 0;
		ok = fold_upsert(s, r, nt, err);
		break;
	case CHG_UPDATE: {
		if (!key_foldable(r, nt))
			return 0;
		bool partial = pgsink_has_unchanged(nt);
		if (ev->row.old_kind != 0 && !pgsink_key_equal(r, ot, nt)) {
			if (partial || !key_foldable(r, ot))
				return 0;
			ok = fold_delete(s, r, ot, err) && fold_upsert(s, r, nt, err);
		} else {
			ok = partial ? fold_partial(s, r, nt, err) : fold_upsert(s, r, nt, err);
		}
		break;
	}
	case CHG_DELETE:
		if (!key_foldable(r, ot))
			return 0;
		ok = fold_delete(s, r, ot, err);
		break;
	default:
		return 0;
	}
	return ok ? 1 : -1;
}

/* SQL of the multi-row statement of kind for n rows. */
static char *multi_sql(const struct rel *r, enum multi_kind kind, int n)
{
	const struct mig_table *t = r->t;
	struct strbuf b = {0};
	int w = kind == MULTI_UPSERT ? r->ncols : t->nkey, no = 1;
	char *keys = pgsink_join_cols(r, t->nkey, r->key_ev, J_NAME, ", ");
	if (kind == MULTI_UPSERT) {
		char *cols = pgsink_join_cols(r, r->ncols, NULL, J_NAME, ", ");
		sb_addf(&b, "INSERT INTO %s (%s) VALUES ", t->tgt_qname, cols);
		free(cols);
	} else {
		sb_addf(&b,
			t->nkey > 1 ? "DELETE FROM %s WHERE (%s) IN ("
				    : "DELETE FROM %s WHERE %s IN (",
			t->tgt_qname, keys);
	}
	for (int i = 0; i < n; i++) {
		bool paren = kind == MULTI_UPSERT || t->nkey > 1;
		sb_addf(&b, "%s%s", i ? ", " : "", paren ? "(" : "");
		for (int c = 0; c < w; c++)
			sb_addf(&b, "%s$%d", c ? ", " : "", no++);
		sb_addf(&b, "%s", paren ? ")" : "");
	}
	if (kind == MULTI_UPSERT) {
		int *nonkey = xcalloc((size_t)r->ncols, sizeof(int));
		int nn = 0;
		for (int i = 0; i < r->ncols; i++) {
			bool is_key = false;
			for (int k = 0; k < t->nkey; k++)
				is_key |= r->key_ev[k] == i;
			if (!is_key)
				nonkey[nn++] = i;
		}
		char *sets = pgsink_join_cols(r, nn, nonkey, J_EXCLUDED, ", ");
		sb_addf(&b, " ON CONFLICT (%s) DO %s%s", keys, nn ? "UPDATE SET " : "NOTHING",
			sets);
		free(sets);
		free(nonkey);
	} else {
		sb_addf(&b, ")");
	}
	free(keys);
	return sb_take(&b);
}

/* Deallocates the multi-row statements of the table flushed longest ago (but r); false if none. */
static bool evict_multi(struct pgsink *s, const struct rel *r, struct err *err, bool *evicted)
{
	struct rel *v = NULL;
	for (int i = 0; i < s->nrels; i++) {
		struct rel *x = &s->rels[i];
		if (x != r && x->multi_params > 0 && (v == NULL || x->flushed < v->flushed))
			v = x;
	}
	*evicted = v != NULL;
	for (int kind = 0; v != NULL && kind < 2; kind++)
		for (int c = 0; c < 32; c++) {
			if (!(v->multi_ready[kind] & (1u << c)))
				continue;
			char sql[64];
			snprintf(sql, sizeof(sql), "DEALLOCATE migd_%s%d_%d",
				 kind == MULTI_UPSERT ? "u" : "d", v->stmt_no, 1 << c);
			if (!pgsink_send_sql(s, sql, 0, NULL, err))
				return false;
		}
	if (v != NULL) {
		s->multi_params -= v->multi_params;
		v->multi_params = 0;
		v->multi_ready[MULTI_UPSERT] = v->multi_ready[MULTI_DELETE] = 0;
	}
	return true;
}

/* Sends one multi-row statement of kind for ents[0 .. 1 << c). */
static bool send_multi(struct pgsink *s, struct rel *r, enum multi_kind kind, int c,
		       struct pend *const *ents, struct err *err)
{
	int n = 1 << c;
	char name[40];
	snprintf(name, sizeof(name), "migd_%s%d_%d", kind == MULTI_UPSERT ? "u" : "d", r->stmt_no,
		 n);
	int w = kind == MULTI_UPSERT ? r->ncols : r->t->nkey, np = n * w;
	if (!(r->multi_ready[kind] & (1u << c))) {
		bool evicted = true;
		while (s->multi_params + np > MULTI_BUDGET_PARAMS && evicted)
			if (!evict_multi(s, r, err, &evicted))
				return false;
		char *sql = multi_sql(r, kind, n);
		bool ok = pgsink_sent(s, PQsendPrepare(s->c.conn, name, sql, 0, NULL), err);
		free(sql);
		if (!ok)
			return false;
		r->multi_ready[kind] |= 1u << c;
		r->multi_params += np;
		s->multi_params += np;
	}
	if ((size_t)np > s->pv_cap) {
		s->pv_cap = (size_t)np;
		s->pv = xrealloc(s->pv, s->pv_cap * sizeof(*s->pv));
	}
	for (int i = 0; i < n; i++)
		for (int j = 0; j < w; j++) {
			const struct change_value *v =
			    &ents[i]->vals[kind == MULTI_UPSERT ? j : r->key_ev[j]];
			s->pv[i * w + j] = v->kind == CHV_TEXT ? v->data : NULL;
		}
	return pgsink_sent(s, PQsendQueryPrepared(s->c.conn, name, np, s->pv, NULL, NULL, 0), err);
}

/* Sends ents[0..n) as multi-row statements of kind, largest power-of-2 sizes first. */
static bool send_runs(struct pgsink *s, struct rel *r, enum multi_kind kind, struct pend **ents,
		      int n, struct err *err)
{
	while (n > 0) {
		int c = 0;
		while ((2 << c) <= n && (2 << c) <= r->max_rows)
			c++;
		if (!send_multi(s, r, kind, c, ents, err))
			return false;
		ents += 1 << c;
		n -= 1 << c;
	}
	return true;
}

/* Sends r's pending entries: deletes, then upserts, then partial updates. */
bool pgsink_flush_rel(struct pgsink *s, struct rel *r, struct err *err)
{
	if (r->npend == 0)
		return true;
	r->flushed = ++s->clock;
	struct pend **ents = xmalloc((size_t)r->npend * sizeof(*ents));
	int n = 0;
	for (int i = 0; i < r->npend; i++)
		if (r->pend[i].state == PEND_DELETE || r->pend[i].delete_first)
			ents[n++] = &r->pend[i];
	bool ok = send_runs(s, r, MULTI_DELETE, ents, n, err);
	n = 0;
	for (int i = 0; i < r->npend; i++)
		if (r->pend[i].state == PEND_UPSERT)
			ents[n++] = &r->pend[i];
	ok = ok && send_runs(s, r, MULTI_UPSERT, ents, n, err);
	for (int i = 0; i < r->npend && ok; i++)
		if (r->pend[i].state == PEND_PARTIAL) {
			struct change_tuple t = {.ncols = (uint16_t)r->ncols,
						 .vals = r->pend[i].vals};
			ok = pgsink_send_partial_update(s, r, &t, &t, err);
		}
	free(ents);
	pend_clear(r);
	return ok;
}

/* Sends every table's pending entries; the arena is free again. */
bool pgsink_flush_all(struct pgsink *s, struct err *err)
{
	bool ok = true;
	for (int i = 0; i < s->nrels && ok; i++)
		ok = pgsink_flush_rel(s, &s->rels[i], err);
	if (ok)
		arena_reset(&s->arena);
	return ok;
}

/* Forgets every pending entry (the batch is rolled back). */
void pgsink_fold_discard(struct pgsink *s)
{
	for (int i = 0; i < s->nrels; i++)
		pend_clear(&s->rels[i]);
	arena_reset(&s->arena);
}

