/* mystream: the binlog reader thread (see mystream.h). */
#include "mystream.h"

#include <mysql.h> /* before mariadb_rpl.h, which needs its types */
#include <mariadb_rpl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binlog_rows.h"
#include "change.h"
#include "log.h"
#include "myconn.h"
#include "myddl.h"
#include "util.h"

#define SYNC_BYTES (4u << 20)
#define SYNC_USEC  50000
#define HDR_LEN	   19 /* the common event header */

#define EV_QUERY	2
#define EV_ROTATE	4
#define EV_XID		16
#define EV_HEARTBEAT	27
#define EV_GTID		162
#define GTID_STANDALONE 0x01 /* a group of one statement (DDL) with no XID */
#define EV_ARTIFICIAL	0x20 /* LOG_EVENT_ARTIFICIAL_F: not at a real position */

/* OIDs the captured tables use (the mapping in docs/type-mapping.md). */
enum {
	OID_BOOL = 16,
	OID_BYTEA = 17,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_TEXT = 25,
	OID_JSON = 114,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701,
	OID_INET = 869,
	OID_BPCHAR = 1042,
	OID_VARCHAR = 1043,
	OID_DATE = 1082,
	OID_TIME = 1083,
	OID_TIMESTAMP = 1114,
	OID_TIMESTAMPTZ = 1184,
	OID_INTERVAL = 1186,
	OID_BIT = 1560,
	OID_VARBIT = 1562,
	OID_NUMERIC = 1700,
	OID_UUID = 2950,
	OID_JSONB = 3802,
};

uint32_t mystream_relid(const char *schema, const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a over "schema.name" */
	for (const char *p = schema; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ '.') * 16777619u;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h ? h : 1;
}

/* One table id the server mapped in this connection. */
struct tmap {
	uint64_t table_id;
	struct binlog_tablemap tm;
	struct mig_table *t; /* NULL: not migrated, its rows are skipped */
	int tidx;	     /* index of t in the tableset */
};

struct stream {
	const struct mystream_opts *o;
	struct myconn c;
	MARIADB_RPL *rpl;
	bool checksum; /* events end with a CRC32 */

	struct tmap *maps;
	int nmaps, capmaps;
	char **ddl_problem; /* per table (tableset index): sticky reason after DDL, owned */
	struct change_relcache *emitted;

	struct pos state; /* GTID state + coordinate after the last whole group */
	char file[POS_FILE_MAX];
	uint64_t received, server_end;

	/* the group in progress */
	bool in_group, group_standalone, group_begun;
	struct pos_gtid gtid;
	int64_t group_time_us;
	uint64_t group_start; /* offset of its GTID event in file; 0 unknown */

	bool dirty;
	int64_t dirty_since;
	size_t dirty_bytes;

	struct binlog_rows it;
	struct change_buf vbuf;
	struct strbuf bad;
	int64_t skipped_rows; /* rows of undecodable tables (their relation says why) */
};

/* --- spool ------------------------------------------------------------------- */

static void publish(struct stream *s)
{
	struct stream_progress *p = s->o->prog;
	pthread_mutex_lock(&p->lock);
	p->received_lsn = s->received;
	if (s->server_end > p->server_wal_end || s->server_end == 0)
		p->server_wal_end = s->server_end > s->received ? s->server_end : s->received;
	if (!s->dirty && !s->in_group && pos_scalar(&s->state) > p->flushed_lsn)
		p->flushed_lsn = pos_scalar(&s->state); /* all we read is spooled or ours to skip */
	p->last_msg_usec = now_mono_usec();
	pthread_mutex_unlock(&p->lock);
}

static bool sync_spool(struct stream *s, struct err *err)
{
	char *e = NULL;
	if (!spool_sync(s->o->spool, &e)) {
		err_set(err, "spool: %s", e);
		free(e);
		return false;
	}
	s->dirty = false;
	s->dirty_bytes = 0;
	struct pos d = spool_durable_pos(s->o->spool);
	pthread_mutex_lock(&s->o->prog->lock);
	s->o->prog->flushed_lsn = pos_scalar(&d);
	pthread_mutex_unlock(&s->o->prog->lock);
	return true;
}

static bool append(struct stream *s, const struct change_event *ev, struct err *err)
{
	char *e = NULL;
	if (!spool_append(s->o->spool, ev, &e)) {
		err_set(err, "spool: %s", e);
		free(e);
		return false;
	}
	if (!s->dirty)
		s->dirty_since = now_mono_usec();
	s->dirty = true;
	s->dirty_bytes += 64;
	return true;
}

/* The group's BEGIN goes to the spool only once it has a change of ours. */
static bool begin_group(struct stream *s, struct err *err)
{
	if (s->group_begun)
		return true;
	struct change_event b = {.kind = CHG_BEGIN, .xid = (uint32_t)s->gtid.seq};
	/*
	 * The GTID state this group completes (equal to the applied state
	 * means applied: GTID comparison ignores the coordinate), with the
	 * coordinate of the group's GTID event.  The server writes a group to
	 * the binlog when it commits, so a group whose GTID event starts at or
	 * after a freeze position committed after the freeze (apply.c).
	 */
	b.begin.final_pos = s->state;
	b.begin.final_pos.has_binlog = false;
	if (b.begin.final_pos.kind != POS_MARIADB_GTID) {
		b.begin.final_pos = pos_none();
		b.begin.final_pos.kind = POS_MARIADB_GTID;
	}
	if (s->group_start != 0) {
		b.begin.final_pos.has_binlog = true;
		snprintf(b.begin.final_pos.file, sizeof(b.begin.final_pos.file), "%s", s->file);
		b.begin.final_pos.offset = s->group_start;
	}
	if (!pos_gtid_advance(&b.begin.final_pos, s->gtid.domain, s->gtid.server, s->gtid.seq)) {
		err_set(err, "source: bad GTID %u-%u-%llu", s->gtid.domain, s->gtid.server,
			(unsigned long long)s->gtid.seq);
		return false;
	}
	b.begin.commit_time_us = s->group_time_us;
	s->group_begun = true;
	return append(s, &b, err);
}

static bool end_group(struct stream *s, uint64_t next_pos, struct err *err)
{
	struct pos p = s->state;
	if (p.kind != POS_MARIADB_GTID) {
		p = pos_none();
		p.kind = POS_MARIADB_GTID;
	}
	if (!pos_gtid_advance(&p, s->gtid.domain, s->gtid.server, s->gtid.seq)) {
		char b[POS_TEXT_MAX];
		err_set(err, "source: GTID %u-%u-%llu goes back from %s", s->gtid.domain,
			s->gtid.server, (unsigned long long)s->gtid.seq,
			pos_format(&s->state, b, sizeof(b)));
		return false;
	}
	p.has_binlog = true;
	snprintf(p.file, sizeof(p.file), "%s", s->file);
	p.offset = next_pos;
	if (s->group_begun) {
		struct change_event c = {.kind = CHG_COMMIT, .xid = (uint32_t)s->gtid.seq};
		c.commit.commit_pos = p;
		c.commit.end_pos = p;
		c.commit.commit_time_us = s->group_time_us;
		if (!append(s, &c, err))
			return false;
		pthread_mutex_lock(&s->o->prog->lock);
		s->o->prog->txns++;
		pthread_mutex_unlock(&s->o->prog->lock);
	}
	s->state = p;
	s->in_group = s->group_begun = false;
	if (s->dirty &&
	    (s->dirty_bytes >= SYNC_BYTES || now_mono_usec() - s->dirty_since >= SYNC_USEC))
		return sync_spool(s, err);
	return true;
}

/* --- relations ---------------------------------------------------------------- */

/* Whether a binlog column can hold what the captured column (oid) was mapped from. */
static bool binlog_fits(const struct binlog_column *c, uint32_t oid)
{
	bool binary = c->collation == 63;
	switch (c->type) {
	case BINLOG_T_TINY:
	case BINLOG_T_SHORT:
	case BINLOG_T_INT24:
	case BINLOG_T_LONG:
	case BINLOG_T_LONGLONG:
	case BINLOG_T_YEAR:
		return oid == OID_INT2 || oid == OID_INT4 || oid == OID_INT8 ||
		       oid == OID_NUMERIC || oid == OID_BOOL;
	case BINLOG_T_NEWDECIMAL:
		return oid == OID_NUMERIC;
	case BINLOG_T_FLOAT:
		return oid == OID_FLOAT4;
	case BINLOG_T_DOUBLE:
		return oid == OID_FLOAT8;
	case BINLOG_T_DATE:
	case BINLOG_T_NEWDATE:
		return oid == OID_DATE;
	case BINLOG_T_TIME:
	case BINLOG_T_TIME2:
		return oid == OID_INTERVAL || oid == OID_TIME;
	case BINLOG_T_DATETIME:
	case BINLOG_T_DATETIME2:
		return oid == OID_TIMESTAMP;
	case BINLOG_T_TIMESTAMP:
	case BINLOG_T_TIMESTAMP2:
		return oid == OID_TIMESTAMPTZ;
	case BINLOG_T_BIT:
		return oid == OID_BIT || oid == OID_VARBIT;
	case BINLOG_T_GEOMETRY:
		return oid == OID_BYTEA;
	case BINLOG_T_JSON: /* MySQL's binary JSON */
		return oid == OID_JSON;
	case BINLOG_T_VARCHAR:
	case BINLOG_T_VAR_STRING:
	case BINLOG_T_STRING:
	case BINLOG_T_ENUM:
	case BINLOG_T_SET:
	case BINLOG_T_TINY_BLOB:
	case BINLOG_T_MEDIUM_BLOB:
	case BINLOG_T_LONG_BLOB:
	case BINLOG_T_BLOB:
		if (c->real_type == BINLOG_T_ENUM || c->real_type == BINLOG_T_SET)
			return oid == OID_TEXT || oid == OID_VARCHAR;
		if (binary)
			return oid == OID_BYTEA || oid == OID_UUID || oid == OID_INET;
		return oid == OID_TEXT || oid == OID_VARCHAR || oid == OID_BPCHAR ||
		       oid == OID_JSON || oid == OID_JSONB;
	default:
		return false;
	}
}

/* Marks UUID/INET columns from the captured schema: the binlog shows them as BINARY(n). */
static void mark_ext(struct tmap *m)
{
	for (uint32_t i = 0; i < m->tm.ncols && i < (uint32_t)m->t->ncols; i++) {
		struct binlog_column *c = &m->tm.cols[i];
		uint32_t oid = m->t->cols[i].type_oid;
		if (c->collation != 63)
			continue;
		if (oid == OID_UUID)
			c->ext = BINLOG_EXT_UUID;
		else if (oid == OID_INET)
			c->ext = c->max_len == 4 ? BINLOG_EXT_INET4 : BINLOG_EXT_INET6;
	}
}

/* Why this table map cannot be applied as the captured table, or NULL. */
static const char *shape_problem(const struct tmap *m, char *buf, size_t n)
{
	const struct mig_table *t = m->t;
	if (m->tm.unsupported) {
		snprintf(buf, n, "the binlog has rows this version of migd cannot decode: %s",
			 m->tm.unsupported);
		return buf;
	}
	if ((int)m->tm.ncols != t->ncols) {
		snprintf(buf, n, "the source now has %u columns, %d at capture", m->tm.ncols,
			 t->ncols);
		return buf;
	}
	for (int i = 0; i < t->ncols; i++) {
		const struct binlog_column *c = &m->tm.cols[i];
		if (c->name != NULL && strcmp(c->name, t->cols[i].name) != 0) {
			snprintf(buf, n, "column %d is now %s, %s at capture", i + 1, c->name,
				 t->cols[i].name);
			return buf;
		}
		if (!binlog_fits(c, t->cols[i].type_oid)) {
			snprintf(buf, n,
				 "column %s is now %s in the binlog, which cannot hold its "
				 "captured type %s",
				 t->cols[i].name, binlog_type_name(c->real_type), t->cols[i].type);
			return buf;
		}
		const char *why = binlog_value_unsupported(c);
		if (why != NULL) {
			snprintf(buf, n, "column %s: %s", t->cols[i].name, why);
			return buf;
		}
	}
	return NULL;
}

/* The PostgreSQL type a binlog column maps to by default (docs/type-mapping.md). */
static uint32_t default_oid(const struct binlog_column *c)
{
	switch (c->type) {
	case BINLOG_T_TINY:
	case BINLOG_T_YEAR:
		return OID_INT2;
	case BINLOG_T_SHORT:
		return c->is_unsigned ? OID_INT4 : OID_INT2;
	case BINLOG_T_INT24:
		return OID_INT4;
	case BINLOG_T_LONG:
		return c->is_unsigned ? OID_INT8 : OID_INT4;
	case BINLOG_T_LONGLONG:
		return c->is_unsigned ? OID_NUMERIC : OID_INT8;
	case BINLOG_T_NEWDECIMAL:
		return OID_NUMERIC;
	case BINLOG_T_FLOAT:
		return OID_FLOAT4;
	case BINLOG_T_DOUBLE:
		return OID_FLOAT8;
	case BINLOG_T_DATE:
	case BINLOG_T_NEWDATE:
		return OID_DATE;
	case BINLOG_T_TIME:
	case BINLOG_T_TIME2:
		return OID_INTERVAL;
	case BINLOG_T_DATETIME:
	case BINLOG_T_DATETIME2:
		return OID_TIMESTAMP;
	case BINLOG_T_TIMESTAMP:
	case BINLOG_T_TIMESTAMP2:
		return OID_TIMESTAMPTZ;
	case BINLOG_T_BIT:
		return OID_BIT;
	case BINLOG_T_GEOMETRY:
		return OID_BYTEA;
	case BINLOG_T_JSON:
		return OID_JSON;
	default:
		if (c->real_type == BINLOG_T_ENUM || c->real_type == BINLOG_T_SET)
			return OID_TEXT;
		if (c->collation == 63)
			return OID_BYTEA;
		return c->type == BINLOG_T_VARCHAR || c->real_type == BINLOG_T_STRING ? OID_VARCHAR
										      : OID_TEXT;
	}
}

/*
 * Emits t's relation when it differs from what the spool last got: the
 * captured shape, or -- when the binlog's table map no longer matches it
 * (m given) -- the binlog's own columns, so the rows still decode and the
 * sink can hold them back (parked) instead of losing them.  A DDL problem
 * seen for the table stays in force.
 */
static bool emit_relation(struct stream *s, struct mig_table *t, int tidx, const struct tmap *m,
			  const char *problem, struct err *err)
{
	int n = m ? (int)m->tm.ncols : t->ncols;
	struct change_column *cols = xcalloc((size_t)n + 1, sizeof(*cols));
	char(*names)[24] = m ? xcalloc((size_t)n + 1, sizeof(*names)) : NULL;
	for (int i = 0; i < n; i++) {
		if (m == NULL) {
			cols[i] = (struct change_column){.name = t->cols[i].name,
							 .type_oid = t->cols[i].type_oid,
							 .type_mod = -1,
							 .flags = t->cols[i].key_pos ? CHC_KEY : 0};
			continue;
		}
		const struct binlog_column *c = &m->tm.cols[i];
		snprintf(names[i], sizeof(names[i]), "column%d", i + 1);
		cols[i] = (struct change_column){.name = c->name ? c->name : names[i],
						 .type_oid = default_oid(c),
						 .type_mod = -1};
		for (int k = 0; k < t->ncols; k++)
			if (t->cols[k].key_pos && strcmp(t->cols[k].name, cols[i].name) == 0)
				cols[i].flags = CHC_KEY;
	}
	if (s->ddl_problem[tidx] != NULL)
		problem = s->ddl_problem[tidx];
	struct change_event ev = {.kind = CHG_RELATION};
	ev.rel = (struct change_relation){.relid = mystream_relid(t->schema, t->name),
					  .schema = t->schema,
					  .name = t->name,
					  .replident = 'f',
					  .ncols = (uint16_t)n,
					  .cols = cols,
					  .problem = problem};
	const struct change_rel *prev = change_relcache_get(s->emitted, ev.rel.relid);
	uint64_t g = prev ? prev->generation : 0;
	bool changed;
	const struct change_rel *now = change_relcache_put(s->emitted, &ev.rel, &changed);
	bool ok = true;
	if (now->generation != g) {
		ok = append(s, &ev, err);
		if (ok && problem != NULL)
			log_event(LOG_LVL_ERROR, "schema_error", "table=%s.%s reason=\"%s\"",
				  t->schema, t->name, problem);
	}
	free(cols);
	free(names);
	return ok;
}

static struct tmap *find_map(struct stream *s, uint64_t id)
{
	for (int i = 0; i < s->nmaps; i++)
		if (s->maps[i].table_id == id)
			return &s->maps[i];
	return NULL;
}

static void clear_maps(struct stream *s)
{
	for (int i = 0; i < s->nmaps; i++)
		binlog_tablemap_free(&s->maps[i].tm);
	s->nmaps = 0;
}

static bool on_table_map(struct stream *s, const uint8_t *body, size_t len, struct err *err)
{
	struct binlog_tablemap tm = {0};
	const char *perr = NULL;
	if (!binlog_tablemap_parse(body, len, BINLOG_MARIADB, &tm, &perr)) {
		binlog_tablemap_free(&tm);
		err_set(err, "source: bad TABLE_MAP event: %s", perr);
		return false;
	}
	struct tmap *m = find_map(s, tm.table_id);
	if (m == NULL) {
		if (s->nmaps == s->capmaps) {
			s->capmaps = s->capmaps ? 2 * s->capmaps : 16;
			s->maps = xrealloc(s->maps, (size_t)s->capmaps * sizeof(*s->maps));
		}
		m = &s->maps[s->nmaps++];
		memset(m, 0, sizeof(*m));
	}
	binlog_tablemap_free(&m->tm);
	m->tm = tm;
	m->table_id = tm.table_id;
	m->t = tableset_find(s->o->ts, tm.schema, tm.table);
	m->tidx = m->t ? (int)(m->t - s->o->ts->t) : -1;
	return true;
}

/* --- rows ----------------------------------------------------------------------- */

/* Values the decoder could not render faithfully become CHV_BAD with a reason. */
static void mark_bad(struct stream *s, const struct mig_table *t, struct binlog_image *img,
		     bool keys_only)
{
	if (img->nbad == 0 || img->tuple.ncols == 0)
		return;
	for (uint16_t i = 0; i < img->tuple.ncols; i++) {
		uint8_t st = img->status[i];
		if (st == BINLOG_VAL_OK || (keys_only && !t->cols[i].key_pos))
			continue;
		struct change_value *v = &img->tuple.vals[i];
		size_t at = s->bad.len;
		sb_addf(&s->bad, "column %s: %s%s%.*s", t->cols[i].name,
			binlog_value_status_name((enum binlog_value_status)st),
			v->kind == CHV_TEXT ? " " : "",
			v->kind == CHV_TEXT ? (int)(v->len > 64 ? 64 : v->len) : 0,
			v->kind == CHV_TEXT ? v->data : "");
		v->kind = CHV_BAD;
		v->len = (uint32_t)(s->bad.len - at);
		v->data = (const char *)(uintptr_t)at; /* an offset until the text stops moving */
	}
}

static void fix_bad(struct stream *s, struct change_tuple *t)
{
	for (uint16_t i = 0; i < t->ncols; i++)
		if (t->vals[i].kind == CHV_BAD)
			t->vals[i].data = s->bad.s + (uintptr_t)t->vals[i].data;
}

static bool on_rows(struct stream *s, uint8_t type, const uint8_t *body, size_t len,
		    struct err *err)
{
	const char *perr = NULL;
	if (!binlog_rows_open(&s->it, type, body, len, &perr)) {
		err_set(err, "source: bad rows event: %s", perr);
		return false;
	}
	struct tmap *m = find_map(s, s->it.table_id);
	if (m == NULL) {
		err_set(err, "source: rows event for table id %llu without its TABLE_MAP",
			(unsigned long long)s->it.table_id);
		return false;
	}
	if (m->t == NULL)
		return true;
	struct mig_table *t = m->t;
	char pbuf[300];
	const char *problem = shape_problem(m, pbuf, sizeof(pbuf));
	if (problem == NULL && !s->it.full_image)
		problem = "a row image that is not FULL (binlog_row_image must be FULL in every "
			  "session that writes this table): its changes are held back";
	if (problem == NULL)
		mark_ext(m);
	/* A table map that no longer matches the captured shape describes its own rows. */
	bool own_shape = problem != NULL && m->tm.unsupported == NULL;
	if (!begin_group(s, err) ||
	    !emit_relation(s, t, m->tidx, own_shape ? m : NULL, problem, err))
		return false;
	if (m->tm.unsupported != NULL) {
		/* Rows nothing can decode: the relation says why, loudly. */
		s->skipped_rows++;
		log_event(LOG_LVL_ERROR, "rows_skipped", "table=%s.%s reason=\"%s\"", t->schema,
			  t->name, m->tm.unsupported);
		return true;
	}
	uint32_t relid = mystream_relid(t->schema, t->name);
	for (;;) {
		struct binlog_row row;
		s->bad.len = 0;
		if (s->bad.s)
			s->bad.s[0] = '\0';
		enum binlog_next nx = binlog_rows_next(&s->it, &m->tm, &s->vbuf, &row, &perr);
		if (nx == BINLOG_NEXT_END)
			return true;
		if (nx == BINLOG_NEXT_ERROR) {
			err_set(err, "source: %s.%s: %s", t->schema, t->name, perr);
			return false;
		}
		struct change_event ev = {.xid = (uint32_t)s->gtid.seq};
		ev.row.relid = relid;
		switch (s->it.kind) {
		case BINLOG_ROWS_WRITE:
			ev.kind = CHG_INSERT;
			mark_bad(s, t, &row.after, false);
			ev.row.new_tuple = row.after.tuple;
			break;
		case BINLOG_ROWS_UPDATE:
			ev.kind = CHG_UPDATE;
			mark_bad(s, t, &row.before, true);
			mark_bad(s, t, &row.after, false);
			ev.row.old_kind = 'O';
			ev.row.old_tuple = row.before.tuple;
			ev.row.new_tuple = row.after.tuple;
			break;
		default:
			ev.kind = CHG_DELETE;
			mark_bad(s, t, &row.before, true);
			ev.row.old_kind = 'O';
			ev.row.old_tuple = row.before.tuple;
			break;
		}
		fix_bad(s, &ev.row.old_tuple);
		fix_bad(s, &ev.row.new_tuple);
		if (!append(s, &ev, err))
			return false;
		s->dirty_bytes += len / (s->it.nrows ? s->it.nrows : 1);
	}
}

/* --- statements ------------------------------------------------------------------- */

static bool on_query(struct stream *s, const MARIADB_RPL_EVENT *ev, uint64_t next_pos,
		     struct err *err)
{
	const char *sql = ev->event.query.statement.str;
	size_t len = ev->event.query.statement.length;
	if (len == 6 && strncasecmp(sql, "COMMIT", 6) == 0) /* non-transactional tables */
		return end_group(s, next_pos, err);
	if (len == 5 && strncasecmp(sql, "BEGIN", 5) == 0)
		return true;
	if (len >= 8 && strncasecmp(sql, "ROLLBACK", 8) == 0) {
		/* A group the server rolled back (mixed engines): nothing of it happened. */
		err_set(err, "source: a rolled-back event group in the binlog; re-reading it");
		return false;
	}
	char db[MYDDL_NAME_MAX];
	snprintf(db, sizeof(db), "%.*s", (int)ev->event.query.database.length,
		 ev->event.query.database.str ? ev->event.query.database.str : "");
	struct myddl_ref refs[16];
	int n = 0;
	bool unknown = false;
	enum myddl_kind k = myddl_classify(sql, len, db, refs, 16, &n, &unknown);
	if (k != MYDDL_NONE) {
		for (int i = 0; i < s->o->ts->n; i++) {
			struct mig_table *t = &s->o->ts->t[i];
			bool hit = unknown && strcmp(t->schema, db) == 0;
			for (int r = 0; r < n && !hit; r++)
				hit = strcmp(refs[r].db, t->schema) == 0 &&
				      strcmp(refs[r].table, t->name) == 0;
			if (!hit)
				continue;
			if (!begin_group(s, err))
				return false;
			if (k == MYDDL_TRUNCATE && !unknown) {
				uint32_t relid = mystream_relid(t->schema, t->name);
				struct change_event te = {.kind = CHG_TRUNCATE,
							  .xid = (uint32_t)s->gtid.seq};
				te.truncate.nrelids = 1;
				te.truncate.relids = &relid;
				if (!emit_relation(s, t, i, NULL, NULL, err) ||
				    !append(s, &te, err))
					return false;
				continue;
			}
			free(s->ddl_problem[i]);
			s->ddl_problem[i] =
			    xasprintf("DDL on the source (%s): %.*s", myddl_kind_name(k),
				      (int)(len > 160 ? 160 : len), sql);
			log_event(LOG_LVL_ERROR, "ddl", "table=%s.%s kind=%s", t->schema, t->name,
				  myddl_kind_name(k));
			if (!emit_relation(s, t, i, NULL, NULL, err))
				return false;
		}
	}
	if (s->group_standalone)
		return end_group(s, next_pos, err);
	return true;
}

/* --- connection ------------------------------------------------------------------- */

static bool connect_source(struct stream *s, struct err *err)
{
	const struct mystream_opts *o = s->o;
	struct myconn_params p;
	if (!myconn_parse_dsn(o->dsn, o->password, &p, err))
		return false;
	char label[32];
	snprintf(label, sizeof(label), "%s (binlog)", o->side ? o->side : "source");
	bool ok = myconn_open(&s->c, label, &p, err);
	myconn_params_free(&p);
	if (!ok)
		return false;
	char *cs = myconn_query_value(&s->c, "SELECT @@global.binlog_checksum", err);
	if (cs == NULL)
		return false;
	s->checksum = strcasecmp(cs, "NONE") != 0;
	free(cs);
	int hb = o->heartbeat_ms > 0 ? o->heartbeat_ms : 100;
	char *sql = xasprintf("SET @master_binlog_checksum = @@global.binlog_checksum, "
			      "@mariadb_slave_capability = 4, @master_heartbeat_period = %lld",
			      (long long)hb * 1000000);
	ok = myconn_exec(&s->c, sql, err);
	free(sql);
	if (!ok)
		return false;

	struct pos from = s->state;
	char buf[POS_TEXT_MAX];
	s->rpl = mariadb_rpl_init(s->c.db);
	mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_SERVER_ID, (unsigned int)o->server_id);
	mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_FLAGS, (unsigned int)0);
	if (from.has_binlog) {
		/* One server: its coordinate is exact, and cheaper than a GTID search. */
		mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_FILENAME, from.file, strlen(from.file));
		mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_START, (unsigned long)from.offset);
		snprintf(s->file, sizeof(s->file), "%s", from.file);
	} else {
		char st[POS_TEXT_MAX];
		pos_format(&from, buf, sizeof(buf));
		const char *g = strncmp(buf, "gtid:", 5) == 0 ? buf + 5 : "";
		snprintf(st, sizeof(st), "%.*s", (int)strcspn(g, "@"), g);
		char *lit = myconn_literal(&s->c, st, strlen(st));
		sql = xasprintf("SET @slave_connect_state = %s", lit);
		free(lit);
		ok = myconn_exec(&s->c, sql, err);
		free(sql);
		if (!ok)
			return false;
		mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_FILENAME, "", (size_t)0);
		mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_START, (unsigned long)4);
	}
	if (mariadb_rpl_open(s->rpl) != 0) {
		err_set(err, "source: cannot start binlog streaming at %s: %s",
			pos_format(&from, buf, sizeof(buf)), mariadb_rpl_error(s->rpl));
		return false;
	}
	return true;
}

static void disconnect(struct stream *s)
{
	if (s->rpl != NULL)
		mariadb_rpl_close(s->rpl);
	s->rpl = NULL;
	myconn_close(&s->c);
	clear_maps(s);
	/* After a discard the spool may have lost relations it had: send them again. */
	change_relcache_free(s->emitted);
	s->emitted = change_relcache_new();
}

static bool on_event(struct stream *s, MARIADB_RPL_EVENT *ev, struct err *err)
{
	const uint8_t *raw = ev->raw_data + ev->raw_data_ofs;
	size_t total = ev->event_length;
	if (ev->raw_data_size < ev->raw_data_ofs + total || total < HDR_LEN) {
		err_set(err, "source: short binlog event (type %d)", ev->event_type);
		return false;
	}
	const uint8_t *body = raw + HDR_LEN;
	size_t blen = total - HDR_LEN - (s->checksum && total >= HDR_LEN + 4 ? 4 : 0);
	uint64_t next = ev->next_event_pos;
	bool artificial = (ev->flags & EV_ARTIFICIAL) != 0;
	if (next != 0 && !artificial) {
		struct pos at = {.kind = POS_BINLOG, .has_binlog = true, .offset = next};
		snprintf(at.file, sizeof(at.file), "%s", s->file);
		s->received = pos_scalar(&at);
	}

	switch ((int)ev->event_type) {
	case EV_ROTATE: /* position (8) | file name; libmariadb's own parse can cut the name */
		if (blen < 8 || blen - 8 >= sizeof(s->file)) {
			err_set(err, "source: bad ROTATE event (%zu bytes)", blen);
			return false;
		}
		snprintf(s->file, sizeof(s->file), "%.*s", (int)(blen - 8), (const char *)body + 8);
		return true;
	case EV_HEARTBEAT: {
		struct pos at = {.kind = POS_BINLOG, .has_binlog = true, .offset = next};
		snprintf(at.file, sizeof(at.file), "%s", s->file);
		s->server_end = pos_scalar(&at);
		if (s->dirty && !s->in_group && !sync_spool(s, err))
			return false;
		/* A heartbeat means we have read all there is: nothing past here is ours. */
		if (!s->dirty && !s->in_group) {
			pthread_mutex_lock(&s->o->prog->lock);
			s->o->prog->flushed_lsn = s->server_end;
			pthread_mutex_unlock(&s->o->prog->lock);
		}
		return true;
	}
	case EV_GTID:
		if (s->in_group) {
			err_set(err, "source: GTID event inside an unfinished event group");
			return false;
		}
		s->in_group = true;
		s->group_begun = false;
		s->group_standalone = (ev->event.gtid.flags & GTID_STANDALONE) != 0;
		s->gtid = (struct pos_gtid){.domain = ev->event.gtid.domain_id,
					    .server = ev->server_id,
					    .seq = ev->event.gtid.sequence_nr};
		s->group_time_us = (int64_t)ev->timestamp * 1000000;
		/* event_length counts header, body and checksum: where the event starts. */
		s->group_start = next != 0 && !artificial && next >= total ? next - total : 0;
		return true;
	case EV_XID:
		if (!s->in_group)
			return true;
		s->group_time_us = (int64_t)ev->timestamp * 1000000;
		return end_group(s, next, err);
	case EV_QUERY:
		if (!s->in_group)
			return true;
		return on_query(s, ev, next, err);
	case BINLOG_TABLE_MAP_EVENT:
		return on_table_map(s, body, blen, err);
	default:
		if (binlog_is_rows_event((uint8_t)ev->event_type)) {
			if (!s->in_group) {
				err_set(err, "source: rows event outside an event group");
				return false;
			}
			return on_rows(s, (uint8_t)ev->event_type, body, blen, err);
		}
		if (ev->event_type == BINLOG_PARTIAL_UPDATE_ROWS ||
		    (ev->event_type >= BINLOG_ROWS_COMPRESSED_FIRST &&
		     ev->event_type <= BINLOG_ROWS_COMPRESSED_LAST)) {
			err_set(err,
				"source: binlog event type %d (compressed or partial rows) is not "
				"supported: set log_bin_compress=OFF",
				ev->event_type);
			return false;
		}
		return true; /* FORMAT_DESCRIPTION, GTID_LIST, checkpoints, annotations */
	}
}

static bool stream_once(struct stream *s, struct err *err)
{
	if (!connect_source(s, err))
		return false;
	pthread_mutex_lock(&s->o->prog->lock);
	s->o->prog->connected = true;
	pthread_mutex_unlock(&s->o->prog->lock);
	char buf[POS_TEXT_MAX];
	log_event(LOG_LVL_INFO, "stream_start", "source=binlog from=%s",
		  pos_format(&s->state, buf, sizeof(buf)));
	MARIADB_RPL_EVENT *ev = NULL;
	while (!*s->o->stop) {
		ev = mariadb_rpl_fetch(s->rpl, ev);
		if (ev == NULL) {
			unsigned no = mariadb_rpl_errno(s->rpl);
			if (no == 0)
				no = mysql_errno(s->c.db);
			const char *msg = mariadb_rpl_error(s->rpl);
			if (msg == NULL || !*msg)
				msg = mysql_error(s->c.db);
			if (no == 1236)
				err_set(err,
					"%s: the binlog no longer has position %s (purged?): "
					"changes since then cannot be recovered; abort and start "
					"again: %s",
					s->c.label, pos_format(&s->state, buf, sizeof(buf)), msg);
			else
				err_set(err, "%s: %s (errno %u)", s->c.label,
					msg && *msg ? msg : "connection lost", no);
			return false;
		}
		if (!on_event(s, ev, err)) {
			mariadb_free_rpl_event(ev);
			return false;
		}
		publish(s);
		if (s->dirty && !s->in_group && now_mono_usec() - s->dirty_since >= SYNC_USEC &&
		    !sync_spool(s, err)) {
			mariadb_free_rpl_event(ev);
			return false;
		}
	}
	if (ev != NULL)
		mariadb_free_rpl_event(ev);
	return !s->dirty || s->in_group || sync_spool(s, err);
}

void *mystream_thread(void *arg)
{
	const struct mystream_opts *o = arg;
	struct stream s = {.o = o};
	struct err err;
	int backoff = 500;
	s.ddl_problem = xcalloc((size_t)o->ts->n + 1, sizeof(char *));
	s.emitted = change_relcache_new();
	struct pos d = spool_durable_pos(o->spool);
	s.state = pos_compare(&d, &o->start) == POS_GT ? d : o->start;
	while (!*o->stop) {
		bool ok = stream_once(&s, &err);
		disconnect(&s);
		pthread_mutex_lock(&o->prog->lock);
		o->prog->connected = false;
		pthread_mutex_unlock(&o->prog->lock);
		if (ok || *o->stop)
			break;
		pthread_mutex_lock(&o->prog->lock);
		snprintf(o->prog->last_error, sizeof(o->prog->last_error), "%s", err.msg);
		o->prog->reconnects++;
		pthread_mutex_unlock(&o->prog->lock);
		log_warn("stream: %s (reconnecting in %d ms)", err.msg, backoff);
		/* A group cut off mid-way is sent again from the last whole one. */
		char *e = NULL;
		if ((s.dirty || s.in_group) && !spool_discard(o->spool, &e)) {
			log_error("stream: %s", e);
			free(e);
		}
		if (s.dirty) { /* what was discarded is read again from the spool's end */
			d = spool_durable_pos(o->spool);
			s.state = pos_compare(&d, &o->start) == POS_GT ? d : o->start;
		}
		s.dirty = s.in_group = s.group_begun = false;
		s.dirty_bytes = 0;
		sleep_interruptible(backoff, o->stop);
		backoff = backoff < 8000 ? backoff * 2 : 8000;
	}
	for (int i = 0; i < o->ts->n; i++)
		free(s.ddl_problem[i]);
	free(s.ddl_problem);
	clear_maps(&s);
	free(s.maps);
	change_relcache_free(s.emitted);
	binlog_rows_free(&s.it);
	change_buf_free(&s.vbuf);
	free(sb_take(&s.bad));
	return NULL;
}
