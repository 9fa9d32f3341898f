/*
 * binlog_rows: TABLE_MAP and ROWS events; see binlog_rows.h.  Values are
 * rendered by binlog_types.c.
 *
 * Layouts, from MySQL's libbinlogevents (rows_event.h, the comment above
 * Table_map_event) and MariaDB's sql/log_event_server.cc
 * (Table_map_log_event::write_data_*, init_*_field, Rows_log_event),
 * checked against MariaDB 10.11 (tests/tools/mycapture_fixtures.c).
 * Integers are little-endian; "packed" is the length-encoded integer of the
 * client protocol (< 251: one byte; 252: 2 bytes follow; 253: 3; 254: 8).
 *
 * Column metadata, per type (in the order of the columns, only for types
 * that have some):
 *   FLOAT DOUBLE              1 byte: size (4, 8)
 *   BLOB family, GEOMETRY, JSON, BLOB_COMPRESSED  1 byte: length prefix size 1-4
 *   TIME2 DATETIME2 TIMESTAMP2  1 byte: fsp
 *   VARCHAR VARCHAR_COMPRESSED  2 bytes LE: maximum length in bytes
 *   NEWDECIMAL                2 bytes: precision, scale
 *   BIT                       2 bytes: bits % 8, bits / 8
 *   STRING VAR_STRING ENUM SET  2 bytes: b0, b1.  When (b0 & 0x30) != 0x30
 *                             the maximum length is b1 | ((b0 & 0x30) ^ 0x30) << 4
 *                             (lengths over 255) and the real type b0 | 0x30;
 *                             else real type b0 and length b1.  Real type
 *                             ENUM/SET: b1 is the value's size in bytes.
 *
 * Optional metadata (binlog_row_metadata=MINIMAL writes 1, 2|3 and 7;
 * FULL adds the others), each "type (1 byte) | length (packed) | value":
 *   1 SIGNEDNESS     one bit per numeric column, most significant first,
 *                    1 = unsigned.  Numeric: TINY SHORT INT24 LONG LONGLONG
 *                    FLOAT DOUBLE NEWDECIMAL, and for MariaDB also YEAR
 *                    (its Field_year is a Field_num; seen in the fixtures)
 *   2 DEFAULT_CHARSET   packed default collation, then (packed index among
 *                    the character columns, packed collation) for the
 *                    columns that differ
 *   3 COLUMN_CHARSET    packed collation per character column.  Character
 *                    columns: STRING VAR_STRING VARCHAR BLOB* GEOMETRY and
 *                    the COMPRESSED ones, not ENUM/SET (MariaDB:
 *                    is_character_field(): has a charset, no typelib)
 *   4 COLUMN_NAME    packed length + name, per column
 *   5 SET_STR_VALUE  per SET column: packed count, then packed length + member
 *   6 ENUM_STR_VALUE per ENUM column: the same
 *   7 GEOMETRY_TYPE  packed geometry type per GEOMETRY column
 *   8 SIMPLE_PRIMARY_KEY       packed column index per key part, key order
 *   9 PRIMARY_KEY_WITH_PREFIX  (packed index, packed prefix length in
 *                    characters, 0 = whole column) per key part
 *   10 ENUM_AND_SET_DEFAULT_CHARSET, 11 ENUM_AND_SET_COLUMN_CHARSET
 *                    as 2 and 3, over the ENUM and SET columns
 * Other types (MySQL 8's 12 COLUMN_VISIBILITY, ...) are skipped.
 */
#include "binlog_rows.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

/* --- bounded reader ------------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t left;
	const char *err; /* first failure; later reads are no-ops */
};

static bool rd_fail(struct rd *r, const char *msg)
{
	if (r->err == NULL)
		r->err = msg;
	r->left = 0;
	return false;
}

static bool rd_bytes(struct rd *r, size_t n, const uint8_t **out, const char *what)
{
	if (r->err != NULL || r->left < n)
		return rd_fail(r, what);
	*out = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

static uint64_t rd_le(struct rd *r, int n, const char *what)
{
	const uint8_t *b;
	if (!rd_bytes(r, (size_t)n, &b, what))
		return 0;
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* A packed (length-encoded) integer; 251 (NULL) and 255 are malformed here. */
static uint64_t rd_packed(struct rd *r, const char *what)
{
	uint64_t first = rd_le(r, 1, what);
	if (r->err != NULL)
		return 0;
	switch (first) {
	case 251:
	case 255:
		rd_fail(r, what);
		return 0;
	case 252:
		return rd_le(r, 2, what);
	case 253:
		return rd_le(r, 3, what);
	case 254:
		return rd_le(r, 8, what);
	default:
		return first;
	}
}

static bool bit_msb(const uint8_t *bm, uint32_t i) /* optional metadata bitmaps */
{
	return bm[i / 8] >> (7 - i % 8) & 1;
}

static bool bit_lsb(const uint8_t *bm, uint32_t i) /* null and column bitmaps */
{
	return bm[i / 8] >> (i % 8) & 1;
}

static char *dup_name(const uint8_t *s, size_t n)
{
	char *d = xmalloc(n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* --- TABLE_MAP ------------------------------------------------------------------ */

const char *binlog_type_name(uint8_t type)
{
	switch (type) {
	case BINLOG_T_DECIMAL:
		return "DECIMAL";
	case BINLOG_T_TINY:
		return "TINY";
	case BINLOG_T_SHORT:
		return "SHORT";
	case BINLOG_T_LONG:
		return "LONG";
	case BINLOG_T_FLOAT:
		return "FLOAT";
	case BINLOG_T_DOUBLE:
		return "DOUBLE";
	case BINLOG_T_NULL:
		return "NULL";
	case BINLOG_T_TIMESTAMP:
		return "TIMESTAMP";
	case BINLOG_T_LONGLONG:
		return "LONGLONG";
	case BINLOG_T_INT24:
		return "INT24";
	case BINLOG_T_DATE:
		return "DATE";
	case BINLOG_T_TIME:
		return "TIME";
	case BINLOG_T_DATETIME:
		return "DATETIME";
	case BINLOG_T_YEAR:
		return "YEAR";
	case BINLOG_T_NEWDATE:
		return "NEWDATE";
	case BINLOG_T_VARCHAR:
		return "VARCHAR";
	case BINLOG_T_BIT:
		return "BIT";
	case BINLOG_T_TIMESTAMP2:
		return "TIMESTAMP2";
	case BINLOG_T_DATETIME2:
		return "DATETIME2";
	case BINLOG_T_TIME2:
		return "TIME2";
	case BINLOG_T_VARCHAR_COMPRESSED:
		return "VARCHAR_COMPRESSED";
	case BINLOG_T_BLOB_COMPRESSED:
		return "BLOB_COMPRESSED";
	case BINLOG_T_JSON:
		return "JSON";
	case BINLOG_T_NEWDECIMAL:
		return "NEWDECIMAL";
	case BINLOG_T_ENUM:
		return "ENUM";
	case BINLOG_T_SET:
		return "SET";
	case BINLOG_T_TINY_BLOB:
		return "TINY_BLOB";
	case BINLOG_T_MEDIUM_BLOB:
		return "MEDIUM_BLOB";
	case BINLOG_T_LONG_BLOB:
		return "LONG_BLOB";
	case BINLOG_T_BLOB:
		return "BLOB";
	case BINLOG_T_VAR_STRING:
		return "VAR_STRING";
	case BINLOG_T_STRING:
		return "STRING";
	case BINLOG_T_GEOMETRY:
		return "GEOMETRY";
	default:
		return "?";
	}
}

/* Reads c's metadata bytes; false when the type is unknown (size unknown). */
static bool read_meta(struct rd *r, struct binlog_column *c)
{
	const char *what = "column metadata truncated";
	uint64_t b0, b1;
	c->real_type = c->type;
	switch (c->type) {
	case BINLOG_T_TINY:
	case BINLOG_T_SHORT:
	case BINLOG_T_INT24:
	case BINLOG_T_LONG:
	case BINLOG_T_LONGLONG:
	case BINLOG_T_YEAR:
	case BINLOG_T_DATE:
	case BINLOG_T_NEWDATE:
	case BINLOG_T_TIME:
	case BINLOG_T_DATETIME:
	case BINLOG_T_TIMESTAMP:
		return true;
	case BINLOG_T_FLOAT:
	case BINLOG_T_DOUBLE:
		c->meta = (uint16_t)rd_le(r, 1, what);
		c->pack_len = (uint8_t)c->meta;
		return true;
	case BINLOG_T_BLOB:
	case BINLOG_T_TINY_BLOB:
	case BINLOG_T_MEDIUM_BLOB:
	case BINLOG_T_LONG_BLOB:
	case BINLOG_T_BLOB_COMPRESSED:
	case BINLOG_T_GEOMETRY:
	case BINLOG_T_JSON:
		c->meta = (uint16_t)rd_le(r, 1, what);
		c->len_bytes = (uint8_t)c->meta;
		return true;
	case BINLOG_T_TIME2:
	case BINLOG_T_DATETIME2:
	case BINLOG_T_TIMESTAMP2:
		c->meta = (uint16_t)rd_le(r, 1, what);
		c->fsp = (uint8_t)c->meta;
		return true;
	case BINLOG_T_VARCHAR:
	case BINLOG_T_VARCHAR_COMPRESSED:
		c->meta = (uint16_t)rd_le(r, 2, what);
		c->max_len = c->meta;
		c->len_bytes = c->max_len > 255 ? 2 : 1;
		return true;
	case BINLOG_T_NEWDECIMAL:
		b0 = rd_le(r, 1, what), b1 = rd_le(r, 1, what);
		c->meta = (uint16_t)(b0 << 8 | b1);
		c->precision = (uint8_t)b0, c->scale = (uint8_t)b1;
		return true;
	case BINLOG_T_BIT:
		b0 = rd_le(r, 1, what), b1 = rd_le(r, 1, what);
		c->meta = (uint16_t)(b0 << 8 | b1);
		c->bits = (uint16_t)(b1 * 8 + b0);
		return true;
	case BINLOG_T_STRING:
	case BINLOG_T_VAR_STRING:
	case BINLOG_T_ENUM:
	case BINLOG_T_SET:
		b0 = rd_le(r, 1, what), b1 = rd_le(r, 1, what);
		c->meta = (uint16_t)(b0 << 8 | b1);
		if ((b0 & 0x30) != 0x30) {
			c->max_len = (uint32_t)(b1 | ((b0 & 0x30) ^ 0x30) << 4);
			c->real_type = (uint8_t)(b0 | 0x30);
		} else {
			c->max_len = (uint32_t)b1;
			c->real_type = (uint8_t)b0;
		}
		if (c->real_type == BINLOG_T_ENUM || c->real_type == BINLOG_T_SET)
			c->pack_len = (uint8_t)c->max_len;
		else
			c->len_bytes = c->max_len > 255 ? 2 : 1;
		return true;
	default:
		return false;
	}
}

static bool is_numeric(const struct binlog_column *c, enum binlog_flavor flavor)
{
	switch (c->type) {
	case BINLOG_T_TINY:
	case BINLOG_T_SHORT:
	case BINLOG_T_INT24:
	case BINLOG_T_LONG:
	case BINLOG_T_LONGLONG:
	case BINLOG_T_FLOAT:
	case BINLOG_T_DOUBLE:
	case BINLOG_T_NEWDECIMAL:
		return true;
	case BINLOG_T_YEAR:
		return flavor == BINLOG_MARIADB;
	default:
		return false;
	}
}

static bool is_enum_or_set(const struct binlog_column *c)
{
	return c->real_type == BINLOG_T_ENUM || c->real_type == BINLOG_T_SET;
}

static bool is_character(const struct binlog_column *c)
{
	switch (c->type) {
	case BINLOG_T_STRING:
	case BINLOG_T_VAR_STRING:
		return !is_enum_or_set(c);
	case BINLOG_T_VARCHAR:
	case BINLOG_T_VARCHAR_COMPRESSED:
	case BINLOG_T_BLOB:
	case BINLOG_T_TINY_BLOB:
	case BINLOG_T_MEDIUM_BLOB:
	case BINLOG_T_LONG_BLOB:
	case BINLOG_T_BLOB_COMPRESSED:
	case BINLOG_T_GEOMETRY:
		return true;
	default:
		return false;
	}
}

typedef bool (*col_pred)(const struct binlog_column *c);

static bool is_enum(const struct binlog_column *c)
{
	return c->real_type == BINLOG_T_ENUM;
}

static bool is_set(const struct binlog_column *c)
{
	return c->real_type == BINLOG_T_SET;
}

static bool is_geometry(const struct binlog_column *c)
{
	return c->type == BINLOG_T_GEOMETRY;
}

/* The index-th column satisfying pred, or NULL. */
static struct binlog_column *nth_col(struct binlog_tablemap *tm, col_pred pred, uint64_t index)
{
	for (uint32_t i = 0; i < tm->ncols; i++)
		if (pred(&tm->cols[i]) && index-- == 0)
			return &tm->cols[i];
	return NULL;
}

/* DEFAULT_CHARSET and COLUMN_CHARSET (and their ENUM/SET twins) over the columns of pred. */
static bool tlv_charsets(struct rd *r, struct binlog_tablemap *tm, col_pred pred, bool with_default)
{
	const char *what = "charset metadata malformed";
	if (with_default) {
		uint64_t def = rd_packed(r, what);
		if (def > UINT32_MAX)
			return rd_fail(r, what);
		for (uint32_t i = 0; i < tm->ncols; i++)
			if (pred(&tm->cols[i]))
				tm->cols[i].collation = (uint32_t)def;
		while (r->left > 0 && r->err == NULL) {
			uint64_t idx = rd_packed(r, what), coll = rd_packed(r, what);
			struct binlog_column *c = nth_col(tm, pred, idx);
			if (r->err != NULL || c == NULL || coll > UINT32_MAX)
				return rd_fail(r, what);
			c->collation = (uint32_t)coll;
		}
	} else {
		for (uint32_t i = 0; i < tm->ncols; i++) {
			if (!pred(&tm->cols[i]))
				continue;
			uint64_t coll = rd_packed(r, what);
			if (coll > UINT32_MAX)
				return rd_fail(r, what);
			tm->cols[i].collation = (uint32_t)coll;
		}
		if (r->left != 0)
			return rd_fail(r, what);
	}
	return r->err == NULL;
}

static bool tlv_members(struct rd *r, struct binlog_tablemap *tm, col_pred pred)
{
	const char *what = "ENUM/SET member metadata malformed";
	for (uint32_t i = 0; i < tm->ncols; i++) {
		struct binlog_column *c = &tm->cols[i];
		if (!pred(c))
			continue;
		uint64_t n = rd_packed(r, what);
		if (r->err != NULL || n > r->left) /* every member takes a byte at least */
			return rd_fail(r, what);
		c->members = xcalloc(n ? n : 1, sizeof(*c->members));
		c->member_lens = xcalloc(n ? n : 1, sizeof(*c->member_lens));
		c->has_members = true;
		for (uint64_t k = 0; k < n; k++) {
			uint64_t len = rd_packed(r, what);
			const uint8_t *s;
			if (r->err != NULL || len > UINT32_MAX ||
			    !rd_bytes(r, (size_t)len, &s, what))
				return rd_fail(r, what);
			c->members[k] = dup_name(s, (size_t)len);
			c->member_lens[k] = (uint32_t)len;
			c->nmembers++;
		}
	}
	return r->left == 0 ? true : rd_fail(r, what);
}

static bool tlv_primary_key(struct rd *r, struct binlog_tablemap *tm, bool with_prefix)
{
	const char *what = "primary key metadata malformed";
	if (tm->key_cols != NULL)
		return rd_fail(r, "primary key metadata given twice");
	tm->key_cols = xcalloc(r->left ? r->left : 1, sizeof(*tm->key_cols));
	while (r->left > 0 && r->err == NULL) {
		uint64_t idx = rd_packed(r, what);
		uint64_t prefix = with_prefix ? rd_packed(r, what) : 0;
		if (r->err != NULL || idx >= tm->ncols || prefix > UINT32_MAX ||
		    tm->cols[idx].key_seq != 0 || tm->nkeys == UINT16_MAX)
			return rd_fail(r, what);
		tm->key_cols[tm->nkeys++] = (uint32_t)idx;
		tm->cols[idx].key_seq = tm->nkeys;
		tm->cols[idx].key_prefix = (uint32_t)prefix;
	}
	return r->err == NULL;
}

static bool tlv_parse(struct rd *r, struct binlog_tablemap *tm, unsigned type,
		      enum binlog_flavor flavor)
{
	switch (type) {
	case 1: { /* SIGNEDNESS */
		uint32_t k = 0;
		for (uint32_t i = 0; i < tm->ncols; i++) {
			struct binlog_column *c = &tm->cols[i];
			if (!is_numeric(c, flavor))
				continue;
			if (k / 8 >= r->left)
				return rd_fail(r, "SIGNEDNESS metadata too short");
			c->is_unsigned = bit_msb(r->p, k++);
			c->sign_known = true;
		}
		tm->has_signedness = true;
		return true; /* trailing padding bits/bytes are ignored */
	}
	case 2:
	case 3:
		tm->has_charsets = true;
		return tlv_charsets(r, tm, is_character, type == 2);
	case 4: { /* COLUMN_NAME */
		for (uint32_t i = 0; i < tm->ncols; i++) {
			uint64_t len = rd_packed(r, "COLUMN_NAME metadata malformed");
			const uint8_t *s;
			if (r->err != NULL || len > 1024 ||
			    !rd_bytes(r, (size_t)len, &s, "COLUMN_NAME metadata malformed") ||
			    memchr(s, 0, (size_t)len) != NULL)
				return rd_fail(r, "COLUMN_NAME metadata malformed");
			tm->cols[i].name = dup_name(s, (size_t)len);
		}
		tm->has_names = tm->full_metadata = true;
		return r->left == 0 ? true : rd_fail(r, "COLUMN_NAME metadata malformed");
	}
	case 5:
		return tlv_members(r, tm, is_set);
	case 6:
		return tlv_members(r, tm, is_enum);
	case 7: { /* GEOMETRY_TYPE */
		for (uint32_t i = 0; i < tm->ncols; i++) {
			if (!is_geometry(&tm->cols[i]))
				continue;
			uint64_t g = rd_packed(r, "GEOMETRY_TYPE metadata malformed");
			tm->cols[i].geometry_type = (uint32_t)(g > UINT32_MAX ? UINT32_MAX : g);
		}
		return r->err == NULL && r->left == 0
			   ? true
			   : rd_fail(r, "GEOMETRY_TYPE metadata malformed");
	}
	case 8:
	case 9:
		tm->has_key_info = true;
		return tlv_primary_key(r, tm, type == 9);
	case 10:
	case 11:
		return tlv_charsets(r, tm, is_enum_or_set, type == 10);
	default:
		return true; /* unknown: skipped */
	}
}

void binlog_tablemap_free(struct binlog_tablemap *tm)
{
	if (tm == NULL)
		return;
	for (uint32_t i = 0; tm->cols != NULL && i < tm->ncols; i++) {
		struct binlog_column *c = &tm->cols[i];
		free(c->name);
		for (uint32_t k = 0; k < c->nmembers; k++)
			free(c->members[k]);
		free(c->members);
		free(c->member_lens);
	}
	free(tm->cols);
	free(tm->key_cols);
	free(tm->schema);
	free(tm->table);
	memset(tm, 0, sizeof(*tm));
}

/* A schema or table name: length byte, the name, a NUL. */
static char *rd_name(struct rd *r)
{
	uint64_t n = rd_le(r, 1, "name truncated");
	const uint8_t *s, *nul;
	if (!rd_bytes(r, (size_t)n, &s, "name truncated") ||
	    !rd_bytes(r, 1, &nul, "name truncated"))
		return NULL;
	if (*nul != 0 || memchr(s, 0, (size_t)n) != NULL) {
		rd_fail(r, "name not NUL-terminated");
		return NULL;
	}
	return dup_name(s, (size_t)n);
}

bool binlog_tablemap_parse(const uint8_t *body, size_t len, enum binlog_flavor flavor,
			   struct binlog_tablemap *out, const char **err)
{
	struct rd r = {body, len, NULL};
	const uint8_t *types, *meta, *nulls;
	memset(out, 0, sizeof(*out));

	out->table_id = rd_le(&r, 6, "TABLE_MAP truncated");
	out->flags = (uint16_t)rd_le(&r, 2, "TABLE_MAP truncated");
	out->schema = rd_name(&r);
	out->table = rd_name(&r);
	uint64_t ncols = rd_packed(&r, "column count malformed");
	if (r.err == NULL && (ncols == 0 || ncols > UINT16_MAX || ncols > r.left))
		rd_fail(&r, "column count out of range");
	if (!rd_bytes(&r, (size_t)ncols, &types, "column types truncated"))
		goto fail;
	out->ncols = (uint32_t)ncols;
	out->cols = xcalloc(ncols, sizeof(*out->cols));

	uint64_t meta_len = rd_packed(&r, "metadata length malformed");
	if (r.err != NULL || meta_len > r.left ||
	    !rd_bytes(&r, (size_t)meta_len, &meta, "metadata truncated"))
		goto fail;
	struct rd m = {meta, (size_t)meta_len, NULL};
	for (uint32_t i = 0; i < out->ncols; i++) {
		struct binlog_column *c = &out->cols[i];
		c->type = types[i];
		if (out->unsupported != NULL)
			continue; /* metadata of later columns cannot be located */
		if (!read_meta(&m, c)) {
			out->unsupported = "a column type unknown to migd";
			c->unsupported = "column type unknown to migd";
		}
	}
	if (m.err != NULL || (out->unsupported == NULL && m.left != 0)) {
		rd_fail(&r, "column metadata does not match the column types");
		goto fail;
	}
	for (uint32_t i = 0; out->unsupported == NULL && i < out->ncols; i++) {
		const char *bad = binlog_column_check(&out->cols[i]);
		if (bad != NULL)
			out->unsupported = out->cols[i].unsupported = bad;
	}

	if (!rd_bytes(&r, (out->ncols + 7) / 8, &nulls, "null bitmap truncated"))
		goto fail;
	for (uint32_t i = 0; i < out->ncols; i++)
		out->cols[i].nullable = bit_lsb(nulls, i);

	uint32_t seen = 0; /* TLV types 1..31 seen, to refuse repeats */
	while (r.left > 0) {
		unsigned type = (unsigned)rd_le(&r, 1, "optional metadata truncated");
		uint64_t tlen = rd_packed(&r, "optional metadata truncated");
		const uint8_t *v;
		if (r.err != NULL || tlen > r.left ||
		    !rd_bytes(&r, (size_t)tlen, &v, "optional metadata truncated"))
			goto fail;
		if (type < 32) {
			if (seen >> type & 1) {
				rd_fail(&r, "optional metadata field repeated");
				goto fail;
			}
			seen |= 1u << type;
		}
		if (out->unsupported != NULL && type != 4 && type != 8 && type != 9)
			continue; /* column classes unknown past an unknown type */
		struct rd t = {v, (size_t)tlen, NULL};
		if (!tlv_parse(&t, out, type, flavor)) {
			rd_fail(&r, t.err);
			goto fail;
		}
	}
	return true;

fail:
	*err = r.err ? r.err : "TABLE_MAP malformed";
	return false;
}

/* --- ROWS ---------------------------------------------------------------------------- */

bool binlog_is_rows_event(uint8_t t)
{
	return (t >= BINLOG_WRITE_ROWS_V1 && t <= BINLOG_DELETE_ROWS_V1) ||
	       (t >= BINLOG_WRITE_ROWS_V2 && t <= BINLOG_DELETE_ROWS_V2);
}

static void grow(struct binlog_rows *it, uint32_t n)
{
	if (n <= it->cap)
		return;
	for (int k = 0; k < 2; k++) {
		it->vals[k] = xrealloc(it->vals[k], n * sizeof(*it->vals[k]));
		it->status[k] = xrealloc(it->status[k], n * sizeof(*it->status[k]));
		it->textoff[k] = xrealloc(it->textoff[k], n * sizeof(*it->textoff[k]));
	}
	it->cap = n;
}

void binlog_rows_free(struct binlog_rows *it)
{
	if (it == NULL)
		return;
	for (int k = 0; k < 2; k++) {
		free(it->vals[k]);
		free(it->status[k]);
		free(it->textoff[k]);
	}
	memset(it, 0, sizeof(*it));
}

bool binlog_rows_open(struct binlog_rows *it, uint8_t event_type, const uint8_t *body, size_t len,
		      const char **err)
{
	struct rd r = {body, len, NULL};
	it->body = NULL; /* spent until this open succeeds */
	it->failed = true;
	if (event_type == BINLOG_PARTIAL_UPDATE_ROWS) {
		*err = "MySQL partial JSON update events not supported (binlog_row_value_options)";
		return false;
	}
	if (event_type >= BINLOG_ROWS_COMPRESSED_FIRST &&
	    event_type <= BINLOG_ROWS_COMPRESSED_LAST) {
		*err = "MariaDB compressed row events not supported (log_bin_compress)";
		return false;
	}
	if (!binlog_is_rows_event(event_type)) {
		*err = "not a rows event";
		return false;
	}
	it->event_type = event_type;
	it->version = event_type >= BINLOG_WRITE_ROWS_V2 ? 2 : 1;
	switch ((event_type - BINLOG_WRITE_ROWS_V1) % 7) {
	case 0:
		it->kind = BINLOG_ROWS_WRITE;
		break;
	case 1:
		it->kind = BINLOG_ROWS_UPDATE;
		break;
	default:
		it->kind = BINLOG_ROWS_DELETE;
		break;
	}
	it->table_id = rd_le(&r, 6, "ROWS event truncated");
	it->flags = (uint16_t)rd_le(&r, 2, "ROWS event truncated");
	if (it->version == 2) {
		uint64_t extra = rd_le(&r, 2, "ROWS event truncated");
		const uint8_t *skip;
		if (r.err == NULL && extra < 2)
			rd_fail(&r, "ROWS v2 extra data length malformed");
		rd_bytes(&r, (size_t)extra - 2, &skip, "ROWS v2 extra data truncated");
	}
	uint64_t width = rd_packed(&r, "ROWS column count malformed");
	if (r.err == NULL && (width == 0 || width > UINT16_MAX))
		rd_fail(&r, "ROWS column count out of range");
	size_t bmlen = (size_t)(width + 7) / 8;
	rd_bytes(&r, bmlen, &it->bitmap[0], "ROWS column bitmap truncated");
	it->bitmap[1] = it->bitmap[0];
	if (it->kind == BINLOG_ROWS_UPDATE)
		rd_bytes(&r, bmlen, &it->bitmap[1], "ROWS column bitmap truncated");
	if (r.err != NULL) {
		*err = r.err;
		return false;
	}
	it->ncols = (uint32_t)width;
	bool any[2] = {false, false};
	for (uint32_t i = 0; i < it->ncols; i++)
		for (int k = 0; k < 2; k++)
			any[k] |= bit_lsb(it->bitmap[k], i);
	if (!any[0] || !any[1]) { /* a row would take no bytes */
		*err = "ROWS event image with no columns";
		return false;
	}
	it->full_image = true;
	for (uint32_t i = 0; i < it->ncols; i++)
		if (!bit_lsb(it->bitmap[0], i) || !bit_lsb(it->bitmap[1], i))
			it->full_image = false;
	it->body = body;
	it->len = len;
	it->off = len - r.left;
	it->nrows = 0;
	it->failed = false;
	grow(it, it->ncols);
	return true;
}

/* One image with bitmap bm into vals/status/textoff[k]; text appended to buf. */
static bool decode_image(struct binlog_rows *it, const struct binlog_tablemap *tm, int k,
			 const uint8_t *bm, struct change_buf *buf, struct binlog_image *img,
			 const char **err)
{
	uint32_t npresent = 0;
	for (uint32_t i = 0; i < it->ncols; i++)
		npresent += bit_lsb(bm, i);
	size_t nb = (npresent + 7) / 8;
	if (it->len - it->off < nb) {
		*err = "row null bitmap truncated";
		return false;
	}
	const uint8_t *nulls = it->body + it->off;
	it->off += nb;
	img->nbad = 0;
	img->first_bad = 0;
	for (uint32_t i = 0, j = 0; i < it->ncols; i++) {
		struct change_value *v = &it->vals[k][i];
		it->status[k][i] = BINLOG_VAL_OK;
		v->len = 0;
		v->data = NULL;
		if (!bit_lsb(bm, i)) {
			v->kind = CHV_UNCHANGED;
			continue;
		}
		if (bit_lsb(nulls, j++)) {
			v->kind = CHV_NULL;
			continue;
		}
		enum binlog_value_status st;
		size_t used, start = buf->len;
		if (!binlog_value_decode(&tm->cols[i], it->body + it->off, it->len - it->off, &used,
					 buf, &st, err))
			return false;
		it->off += used;
		it->status[k][i] = (uint8_t)st;
		if (st != BINLOG_VAL_OK && img->nbad++ == 0)
			img->first_bad = i;
		if (st == BINLOG_VAL_UNSUPPORTED) {
			v->kind = CHV_NULL;
			continue;
		}
		if (buf->len - start > UINT32_MAX) {
			*err = "value too long";
			return false;
		}
		v->kind = CHV_TEXT;
		v->len = (uint32_t)(buf->len - start);
		it->textoff[k][i] = start;
	}
	img->tuple.ncols = (uint16_t)it->ncols;
	img->tuple.vals = it->vals[k];
	img->status = it->status[k];
	return true;
}

enum binlog_next binlog_rows_next(struct binlog_rows *it, const struct binlog_tablemap *tm,
				  struct change_buf *buf, struct binlog_row *row, const char **err)
{
	memset(row, 0, sizeof(*row));
	if (it->failed || it->body == NULL) {
		*err = "rows iterator not open";
		return BINLOG_NEXT_ERROR;
	}
	if (tm->table_id != it->table_id || tm->ncols != it->ncols) {
		*err = "TABLE_MAP does not match the rows event (table id or column count)";
		goto fail;
	}
	if (tm->unsupported != NULL) {
		*err = tm->unsupported;
		goto fail;
	}
	if (it->off == it->len)
		return BINLOG_NEXT_END;

	change_buf_reset(buf);
	if (buf->cap == 0) { /* so that empty values point somewhere */
		buf->data = xmalloc(64);
		buf->cap = 64;
	}
	struct binlog_image *first = it->kind == BINLOG_ROWS_WRITE ? &row->after : &row->before;
	if (!decode_image(it, tm, 0, it->bitmap[0], buf, first, err))
		goto fail;
	if (it->kind == BINLOG_ROWS_UPDATE &&
	    !decode_image(it, tm, 1, it->bitmap[1], buf, &row->after, err))
		goto fail;
	/* buf may have moved while growing: point the values into it now */
	for (int k = 0; k < (it->kind == BINLOG_ROWS_UPDATE ? 2 : 1); k++)
		for (uint32_t i = 0; i < it->ncols; i++)
			if (it->vals[k][i].kind == CHV_TEXT)
				it->vals[k][i].data = (const char *)buf->data + it->textoff[k][i];
	it->nrows++;
	return BINLOG_NEXT_ROW;

fail:
	it->failed = true;
	return BINLOG_NEXT_ERROR;
}
