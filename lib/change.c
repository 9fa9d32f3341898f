/*
 * change: the engine-neutral change model (see change.h) -- the binary
 * encoding used by the spool and spill files, and the relation cache.
 *
 * Encoded event, format version 2 (version 1 records, which have no
 * RELATION problem and no 'x' values, still decode).  "uv" is an unsigned LEB128 varint
 * (7 bits per byte, least significant group first, high bit = more; at most
 * 10 bytes), "sv" a signed value zigzag-mapped to a uv ((v << 1) ^ (v >> 63)),
 * "u8" one byte.  Fields narrower than 64 bits are range-checked on decode.
 *
 *   event    = u8 version (1)  u8 kind (enum change_kind)  uv xid  body
 *   BEGIN    = pos final_pos  sv commit_time_us
 *   COMMIT   = pos commit_pos  pos end_pos  sv commit_time_us
 *   RELATION = uv relid  str schema  str name  u8 replident  uv ncols
 *              ncols * (str name  uv type_oid  sv type_mod  u8 flags)
 *              str problem (version 2; "" for none)
 *   INSERT   = uv relid  u8 old_kind  [tuple old, if old_kind != 0]  tuple new
 *   UPDATE   = as INSERT
 *   DELETE   = uv relid  u8 old_kind  [tuple old, if old_kind != 0]
 *   TRUNCATE = u8 flags  uv nrelids  nrelids * uv relid
 *   ORIGIN   = pos commit_pos  str name
 *
 *   tuple    = uv ncols  ncols * value
 *   value    = 'n' (NULL) | 'u' (unchanged TOAST) | 't' uv len  len bytes
 *              | 'x' uv len  len bytes (version 2: unmappable, the reason)
 *              (text values are opaque bytes and may contain NULs)
 *   str      = uv len  len bytes  0x00  (no NUL inside; the trailing NUL
 *              lets decode hand out C strings that borrow from the input;
 *              a NULL string encodes as "")
 *   pos      = u8 kind (enum pos_kind), then by kind:
 *                NONE          (nothing)
 *                PG_LSN        uv lsn
 *                BINLOG        str file  uv offset
 *                MARIADB_GTID  u8 has_binlog  [str file  uv offset, if has_binlog]
 *                              uv ngtid  ngtid * (uv domain  uv server  uv seq)
 *
 * The record must be consumed exactly: trailing bytes are an error.  Decode
 * checks every length against the bytes that remain before using it, so a
 * corrupt count can neither read past the input nor make it allocate more
 * than the input could describe.
 */
#include "change.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

#define CHANGE_FORMAT_VERSION 2

static const char *const kind_names[CHG__MAX] = {
    [CHG_BEGIN] = "begin",	 [CHG_COMMIT] = "commit", [CHG_RELATION] = "relation",
    [CHG_INSERT] = "insert",	 [CHG_UPDATE] = "update", [CHG_DELETE] = "delete",
    [CHG_TRUNCATE] = "truncate", [CHG_ORIGIN] = "origin",
};

const char *change_kind_name(enum change_kind k)
{
	if ((int)k <= 0 || k >= CHG__MAX || kind_names[k] == NULL)
		return "unknown";
	return kind_names[k];
}

/* --- encoding ------------------------------------------------------------ */

void change_buf_reset(struct change_buf *b)
{
	b->len = 0;
}

void change_buf_free(struct change_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void change_buf_reserve(struct change_buf *b, size_t extra)
{
	if (b->cap - b->len >= extra)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

static void put_u8(struct change_buf *b, uint8_t v)
{
	change_buf_reserve(b, 1);
	b->data[b->len++] = v;
}

static void put_uv(struct change_buf *b, uint64_t v)
{
	change_buf_reserve(b, 10);
	while (v >= 0x80) {
		b->data[b->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b->data[b->len++] = (uint8_t)v;
}

static void put_sv(struct change_buf *b, int64_t v)
{
	put_uv(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void change_buf_put(struct change_buf *b, const void *p, size_t n)
{
	change_buf_reserve(b, n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

void change_buf_put_udec(struct change_buf *b, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	change_buf_put(b, tmp + sizeof(tmp) - n, n);
}

static void put_strn(struct change_buf *b, const char *s, size_t n)
{
	put_uv(b, n);
	change_buf_put(b, s, n);
	put_u8(b, 0);
}

static void put_str(struct change_buf *b, const char *s)
{
	if (s == NULL)
		s = "";
	put_strn(b, s, strlen(s));
}

static void put_pos(struct change_buf *b, const struct pos *p)
{
	put_u8(b, (uint8_t)p->kind);
	switch (p->kind) {
	case POS_PG_LSN:
		put_uv(b, p->lsn);
		break;
	case POS_BINLOG:
		put_strn(b, p->file, strnlen(p->file, POS_FILE_MAX - 1));
		put_uv(b, p->offset);
		break;
	case POS_MARIADB_GTID: {
		int n = p->ngtid < 0		      ? 0
			: p->ngtid > POS_GTID_DOMAINS ? POS_GTID_DOMAINS
						      : p->ngtid;
		put_u8(b, p->has_binlog ? 1 : 0);
		if (p->has_binlog) {
			put_strn(b, p->file, strnlen(p->file, POS_FILE_MAX - 1));
			put_uv(b, p->offset);
		}
		put_uv(b, (uint64_t)n);
		for (int i = 0; i < n; i++) {
			put_uv(b, p->gtid[i].domain);
			put_uv(b, p->gtid[i].server);
			put_uv(b, p->gtid[i].seq);
		}
		break;
	}
	default: /* POS_NONE (and anything else encodes as none) */
		b->data[b->len - 1] = POS_NONE;
		break;
	}
}

static void put_tuple(struct change_buf *b, const struct change_tuple *t)
{
	put_uv(b, t->ncols);
	for (uint16_t i = 0; i < t->ncols; i++) {
		const struct change_value *v = &t->vals[i];
		if (v->kind == CHV_TEXT || v->kind == CHV_BAD) {
			put_u8(b, v->kind);
			put_uv(b, v->len);
			change_buf_put(b, v->data, v->len);
		} else {
			put_u8(b, v->kind == CHV_UNCHANGED ? CHV_UNCHANGED : CHV_NULL);
		}
	}
}

void change_encode(const struct change_event *ev, struct change_buf *out)
{
	put_u8(out, CHANGE_FORMAT_VERSION);
	put_u8(out, (uint8_t)ev->kind);
	put_uv(out, ev->xid);
	switch (ev->kind) {
	case CHG_BEGIN:
		put_pos(out, &ev->begin.final_pos);
		put_sv(out, ev->begin.commit_time_us);
		break;
	case CHG_COMMIT:
		put_pos(out, &ev->commit.commit_pos);
		put_pos(out, &ev->commit.end_pos);
		put_sv(out, ev->commit.commit_time_us);
		break;
	case CHG_RELATION:
		put_uv(out, ev->rel.relid);
		put_str(out, ev->rel.schema);
		put_str(out, ev->rel.name);
		put_u8(out, (uint8_t)ev->rel.replident);
		put_uv(out, ev->rel.ncols);
		for (uint16_t i = 0; i < ev->rel.ncols; i++) {
			const struct change_column *c = &ev->rel.cols[i];
			put_str(out, c->name);
			put_uv(out, c->type_oid);
			put_sv(out, c->type_mod);
			put_u8(out, c->flags);
		}
		put_str(out, ev->rel.problem);
		break;
	case CHG_INSERT:
	case CHG_UPDATE:
	case CHG_DELETE:
		put_uv(out, ev->row.relid);
		put_u8(out, (uint8_t)ev->row.old_kind);
		if (ev->row.old_kind != 0)
			put_tuple(out, &ev->row.old_tuple);
		if (ev->kind != CHG_DELETE)
			put_tuple(out, &ev->row.new_tuple);
		break;
	case CHG_TRUNCATE:
		put_u8(out, ev->truncate.flags);
		put_uv(out, ev->truncate.nrelids);
		for (uint16_t i = 0; i < ev->truncate.nrelids; i++)
			put_uv(out, ev->truncate.relids[i]);
		break;
	case CHG_ORIGIN:
		put_pos(out, &ev->origin.commit_pos);
		put_str(out, ev->origin.name);
		break;
	default: /* BUG: unknown kind; decode will refuse the record */
		break;
	}
}

/* --- decoding ------------------------------------------------------------ */

/* A cursor over the input; the first error sticks and later reads return 0. */
struct rd {
	const uint8_t *p, *end;
	uint8_t version; /* of the record being decoded */
	const char *err; /* static; NULL while all is well */
};

static void fail(struct rd *r, const char *msg)
{
	if (r->err == NULL)
		r->err = msg;
	r->p = r->end;
}

static size_t left(const struct rd *r)
{
	return (size_t)(r->end - r->p);
}

static uint8_t get_u8(struct rd *r)
{
	if (left(r) < 1) {
		fail(r, "truncated event");
		return 0;
	}
	return *r->p++;
}

static uint64_t get_uv(struct rd *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (left(r) < 1) {
			fail(r, "truncated varint");
			return 0;
		}
		uint8_t byte = *r->p++;
		if (shift == 63 && byte > 1) {
			fail(r, "varint overflows 64 bits");
			return 0;
		}
		v |= (uint64_t)(byte & 0x7f) << shift;
		if ((byte & 0x80) == 0)
			return v;
	}
	fail(r, "varint too long");
	return 0;
}

static uint64_t get_uv_max(struct rd *r, uint64_t max)
{
	uint64_t v = get_uv(r);
	if (v > max) {
		fail(r, "integer out of range");
		return 0;
	}
	return v;
}

static int64_t get_sv(struct rd *r)
{
	uint64_t u = get_uv(r);
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* A str field; returns a NUL-terminated string borrowed from the input. */
static const char *get_str(struct rd *r, size_t *lenp)
{
	uint64_t n = get_uv(r);
	if (r->err != NULL)
		return "";
	if (n >= left(r)) { /* n bytes plus the NUL */
		fail(r, "truncated string");
		return "";
	}
	const char *s = (const char *)r->p;
	if (r->p[n] != 0 || memchr(s, 0, n) != NULL) {
		fail(r, "malformed string");
		return "";
	}
	r->p += n + 1;
	if (lenp != NULL)
		*lenp = n;
	return s;
}

static void get_file(struct rd *r, struct pos *p)
{
	size_t n = 0;
	const char *s = get_str(r, &n);
	if (n >= POS_FILE_MAX) {
		fail(r, "binlog file name too long");
		return;
	}
	memcpy(p->file, s, n);
	p->file[n] = '\0';
	p->offset = get_uv(r);
}

static void get_pos(struct rd *r, struct pos *p)
{
	memset(p, 0, sizeof(*p));
	uint8_t kind = get_u8(r);
	switch (kind) {
	case POS_NONE:
		break;
	case POS_PG_LSN:
		p->lsn = get_uv(r);
		break;
	case POS_BINLOG:
		p->has_binlog = true;
		get_file(r, p);
		break;
	case POS_MARIADB_GTID: {
		uint8_t has = get_u8(r);
		if (has > 1) {
			fail(r, "malformed position");
			return;
		}
		p->has_binlog = has == 1;
		if (p->has_binlog)
			get_file(r, p);
		p->ngtid = (int)get_uv_max(r, POS_GTID_DOMAINS);
		for (int i = 0; i < p->ngtid; i++) {
			p->gtid[i].domain = (uint32_t)get_uv_max(r, UINT32_MAX);
			p->gtid[i].server = (uint32_t)get_uv_max(r, UINT32_MAX);
			p->gtid[i].seq = get_uv(r);
		}
		break;
	}
	default:
		fail(r, "unknown position kind");
		return;
	}
	p->kind = (enum pos_kind)kind;
}

/* Grows a scratch array to hold at least n elements of size sz. */
static void *grow(void *arr, size_t *cap, size_t n, size_t sz)
{
	if (n <= *cap)
		return arr;
	size_t c = *cap ? *cap : 16;
	while (c < n)
		c *= 2;
	*cap = c;
	return xrealloc(arr, c * sz);
}

/*
 * Reads a tuple's values into s->vals[first..]; returns the column count.
 * The caller sets the vals pointer once every tuple of the event is read,
 * because growing the array may move it.
 */
static uint16_t get_tuple(struct rd *r, struct change_scratch *s, size_t first)
{
	/* every value takes at least one byte: bounds the allocation */
	uint64_t n = get_uv_max(r, UINT16_MAX);
	if (n > left(r)) {
		fail(r, "column count exceeds record");
		return 0;
	}
	s->vals = grow(s->vals, &s->nvals_cap, first + n, sizeof(*s->vals));
	for (size_t i = 0; i < n; i++) {
		struct change_value *v = &s->vals[first + i];
		memset(v, 0, sizeof(*v));
		v->kind = get_u8(r);
		if (v->kind == CHV_TEXT || (v->kind == CHV_BAD && r->version >= 2)) {
			uint64_t len = get_uv_max(r, UINT32_MAX);
			if (len > left(r)) {
				fail(r, "truncated value");
				return 0;
			}
			v->len = (uint32_t)len;
			v->data = (const char *)r->p;
			r->p += len;
		} else if (v->kind != CHV_NULL && v->kind != CHV_UNCHANGED) {
			fail(r, "unknown value kind");
			return 0;
		}
	}
	return (uint16_t)n;
}

static void get_row(struct rd *r, struct change_event *ev, struct change_scratch *s)
{
	ev->row.relid = (uint32_t)get_uv_max(r, UINT32_MAX);
	ev->row.old_kind = (char)get_u8(r);
	if (ev->row.old_kind != 0 && ev->row.old_kind != 'K' && ev->row.old_kind != 'O') {
		fail(r, "unknown old tuple kind");
		return;
	}
	uint16_t nold = 0, nnew = 0;
	if (ev->row.old_kind != 0)
		nold = get_tuple(r, s, 0);
	if (ev->kind != CHG_DELETE)
		nnew = get_tuple(r, s, nold);
	if (r->err != NULL)
		return;
	ev->row.old_tuple = (struct change_tuple){nold, nold ? s->vals : NULL};
	ev->row.new_tuple = (struct change_tuple){nnew, nnew ? s->vals + nold : NULL};
}

static void get_relation(struct rd *r, struct change_relation *rel, struct change_scratch *s)
{
	rel->relid = (uint32_t)get_uv_max(r, UINT32_MAX);
	rel->schema = get_str(r, NULL);
	rel->name = get_str(r, NULL);
	rel->replident = (char)get_u8(r);
	uint64_t n = get_uv_max(r, UINT16_MAX);
	if (n > left(r)) {
		fail(r, "column count exceeds record");
		return;
	}
	s->cols = grow(s->cols, &s->ncols_cap, n, sizeof(*s->cols));
	for (size_t i = 0; i < n && r->err == NULL; i++) {
		struct change_column *c = &s->cols[i];
		c->name = get_str(r, NULL);
		c->type_oid = (uint32_t)get_uv_max(r, UINT32_MAX);
		int64_t mod = get_sv(r);
		if (mod < INT32_MIN || mod > INT32_MAX)
			fail(r, "type modifier out of range");
		c->type_mod = (int32_t)mod;
		c->flags = get_u8(r);
	}
	rel->ncols = (uint16_t)n;
	rel->cols = n ? s->cols : NULL;
	rel->problem = NULL;
	if (r->version >= 2) {
		const char *p = get_str(r, NULL);
		rel->problem = *p ? p : NULL;
	}
}

static void get_truncate(struct rd *r, struct change_event *ev, struct change_scratch *s)
{
	ev->truncate.flags = get_u8(r);
	uint64_t n = get_uv_max(r, UINT16_MAX);
	if (n > left(r)) {
		fail(r, "relid count exceeds record");
		return;
	}
	s->relids = grow(s->relids, &s->nrelids_cap, n, sizeof(*s->relids));
	for (size_t i = 0; i < n; i++)
		s->relids[i] = (uint32_t)get_uv_max(r, UINT32_MAX);
	ev->truncate.nrelids = (uint16_t)n;
	ev->truncate.relids = n ? s->relids : NULL;
}

bool change_decode(const uint8_t *data, size_t len, struct change_event *ev,
		   struct change_scratch *scratch, const char **err)
{
	struct rd r = {.p = data, .end = data + len, .err = NULL};

	memset(ev, 0, sizeof(*ev));
	if (len == 0 || data == NULL) {
		*err = "empty event";
		return false;
	}
	r.version = get_u8(&r);
	if (r.version < 1 || r.version > CHANGE_FORMAT_VERSION) {
		*err = "unsupported event format version";
		return false;
	}
	uint8_t kind = get_u8(&r);
	ev->kind = (enum change_kind)kind;
	ev->xid = (uint32_t)get_uv_max(&r, UINT32_MAX);
	switch (kind) {
	case CHG_BEGIN:
		get_pos(&r, &ev->begin.final_pos);
		ev->begin.commit_time_us = get_sv(&r);
		break;
	case CHG_COMMIT:
		get_pos(&r, &ev->commit.commit_pos);
		get_pos(&r, &ev->commit.end_pos);
		ev->commit.commit_time_us = get_sv(&r);
		break;
	case CHG_RELATION:
		get_relation(&r, &ev->rel, scratch);
		break;
	case CHG_INSERT:
	case CHG_UPDATE:
	case CHG_DELETE:
		get_row(&r, ev, scratch);
		break;
	case CHG_TRUNCATE:
		get_truncate(&r, ev, scratch);
		break;
	case CHG_ORIGIN:
		get_pos(&r, &ev->origin.commit_pos);
		ev->origin.name = get_str(&r, NULL);
		break;
	default:
		fail(&r, "unknown event kind");
		break;
	}
	if (r.err == NULL && r.p != r.end)
		fail(&r, "trailing bytes after event");
	if (r.err != NULL) {
		memset(ev, 0, sizeof(*ev));
		*err = r.err;
		return false;
	}
	return true;
}

void change_scratch_free(struct change_scratch *s)
{
	if (s == NULL)
		return;
	free(s->vals);
	free(s->cols);
	free(s->relids);
	memset(s, 0, sizeof(*s));
}

/* --- relation cache ------------------------------------------------------ */

/*
 * Open addressing with linear probing over a power-of-two table kept at most
 * half full; entries are never removed, only replaced.  Each entry is one
 * allocation: the struct change_rel, then its column array, then all strings.
 */
struct change_relcache {
	struct change_rel **slots; /* owned, and so is every entry */
	size_t cap;		   /* power of two */
	size_t count;
};

struct change_relcache *change_relcache_new(void)
{
	struct change_relcache *rc = xcalloc(1, sizeof(*rc));
	rc->cap = 16;
	rc->slots = xcalloc(rc->cap, sizeof(*rc->slots));
	return rc;
}

void change_relcache_free(struct change_relcache *rc)
{
	if (rc == NULL)
		return;
	for (size_t i = 0; i < rc->cap; i++)
		free(rc->slots[i]);
	free(rc->slots);
	free(rc);
}

static size_t slot_of(const struct change_relcache *rc, uint32_t relid)
{
	size_t i = (size_t)(relid * 2654435761u) & (rc->cap - 1);
	while (rc->slots[i] != NULL && rc->slots[i]->desc.relid != relid)
		i = (i + 1) & (rc->cap - 1);
	return i;
}

static void rehash(struct change_relcache *rc)
{
	struct change_rel **old = rc->slots;
	size_t oldcap = rc->cap;
	rc->cap *= 2;
	rc->slots = xcalloc(rc->cap, sizeof(*rc->slots));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i] != NULL)
			rc->slots[slot_of(rc, old[i]->desc.relid)] = old[i];
	free(old);
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

/* The deep copy, in one allocation. */
static struct change_rel *rel_copy(const struct change_relation *rel)
{
	size_t slen = strlen(nz(rel->schema)) + 1 + strlen(nz(rel->name)) + 1;
	for (uint16_t i = 0; i < rel->ncols; i++)
		slen += strlen(nz(rel->cols[i].name)) + 1;
	slen += strlen(nz(rel->problem)) + 1;
	size_t colsz = (size_t)rel->ncols * sizeof(struct change_column);
	struct change_rel *r = xmalloc(sizeof(*r) + colsz + slen);
	struct change_column *cols = (struct change_column *)(r + 1);
	char *str = (char *)cols + colsz;

	r->desc = *rel;
	r->generation = 0;
	r->desc.cols = rel->ncols ? cols : NULL;
#define COPY_STR(dst, src)                                                                         \
	do {                                                                                       \
		size_t n_ = strlen(nz(src)) + 1;                                                   \
		memcpy(str, nz(src), n_);                                                          \
		(dst) = str;                                                                       \
		str += n_;                                                                         \
	} while (0)
	COPY_STR(r->desc.schema, rel->schema);
	COPY_STR(r->desc.name, rel->name);
	if (rel->problem != NULL)
		COPY_STR(r->desc.problem, rel->problem);
	for (uint16_t i = 0; i < rel->ncols; i++) {
		cols[i] = rel->cols[i];
		COPY_STR(cols[i].name, rel->cols[i].name);
	}
#undef COPY_STR
	return r;
}

/*
 * The column set, which decides *changed: the number of columns and, column
 * by column in order, the name (byte-wise), type OID, type modifier and the
 * flags (CHC_KEY).  A rename of the relation or its schema, or a different
 * replica identity setting, alone is not a change of shape.
 */
static bool same_columns(const struct change_relation *a, const struct change_relation *b)
{
	if (a->ncols != b->ncols || strcmp(nz(a->problem), nz(b->problem)) != 0)
		return false;
	for (uint16_t i = 0; i < a->ncols; i++) {
		const struct change_column *x = &a->cols[i], *y = &b->cols[i];
		if (strcmp(nz(x->name), nz(y->name)) != 0 || x->type_oid != y->type_oid ||
		    x->type_mod != y->type_mod || x->flags != y->flags)
			return false;
	}
	return true;
}

static bool same_relation(const struct change_relation *a, const struct change_relation *b)
{
	return strcmp(nz(a->schema), nz(b->schema)) == 0 && strcmp(nz(a->name), nz(b->name)) == 0 &&
	       a->replident == b->replident && same_columns(a, b);
}

/*
 * *changed is true only when relid was cached and its column set (above)
 * differs; a first definition is not a change.  generation is 1 for the
 * first definition and bumps whenever anything differs (names, replica
 * identity or columns), so statement caches keyed on it see renames too.
 * Re-putting an identical relation (pgoutput resends RELATION after every
 * reconnect) keeps the entry itself: the returned pointer stays the same.
 */
const struct change_rel *change_relcache_put(struct change_relcache *rc,
					     const struct change_relation *rel, bool *changed)
{
	size_t i = slot_of(rc, rel->relid);
	struct change_rel *old = rc->slots[i];

	if (changed != NULL)
		*changed = false;
	if (old != NULL && same_relation(&old->desc, rel))
		return old;

	struct change_rel *r = rel_copy(rel);
	r->generation = old ? old->generation + 1 : 1;
	if (changed != NULL)
		*changed = old != NULL && !same_columns(&old->desc, rel);
	rc->slots[i] = r;
	free(old);
	if (old == NULL && ++rc->count * 2 > rc->cap)
		rehash(rc);
	return r;
}

const struct change_rel *change_relcache_get(const struct change_relcache *rc, uint32_t relid)
{
	return rc->slots[slot_of(rc, relid)];
}

void change_relcache_foreach(const struct change_relcache *rc,
			     void (*fn)(const struct change_rel *r, void *arg), void *arg)
{
	for (size_t i = 0; i < rc->cap; i++)
		if (rc->slots[i] != NULL)
			fn(rc->slots[i], arg);
}
