/*
 * pos: parsing, formatting and ordering of source log positions (see pos.h).
 *
 * Grammar accepted by pos_parse(); numbers have no sign, no spaces, no 0x:
 *
 *     position := "none" | "pg:" lsn | lsn | "binlog:" coord
 *               | "gtid:" [gtid ("," gtid)*] ["@" coord]
 *     lsn      := hex{1,8} "/" hex{1,8}      PostgreSQL's pg_lsn input rule
 *     coord    := file ":" decimal-u64       file: 1..POS_FILE_MAX-1 bytes,
 *                                            no ':', '/', blank or control
 *     gtid     := u32 "-" u32 "-" u64        domain-server-seq, as MariaDB
 *                                            prints @@gtid_current_pos
 *
 * An empty GTID list ("gtid:") is valid: @@gtid_current_pos is '' on a
 * server that has not logged a GTID yet, and pos_gtid_advance() grows it.
 *
 * Pure value code: no allocation, no logging; errors are static strings.
 */
#include "pos.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x)	STR_(x)

/* PostgreSQL prints an LSN as two 32-bit halves in upper-case hex. */
#define LSN_FMT	      "%" PRIX32 "/%" PRIX32
#define LSN_ARGS(lsn) (uint32_t)((lsn) >> 32), (uint32_t)(lsn)

static bool fail(const char **err, const char *msg)
{
	*err = msg;
	return false;
}

struct pos pos_from_lsn(uint64_t lsn)
{
	return (struct pos){.kind = POS_PG_LSN, .lsn = lsn};
}

bool pos_is_none(const struct pos *p)
{
	return p->kind == POS_NONE;
}

/* ---- numbers ------------------------------------------------------------ */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Reads 1 to 8 hex digits at s; returns how many were read, or 0 when there
 * are none or more than 8.  Like pg_lsn_in(), the limit is on digits, so
 * "00000000/1" is fine and "000000001/1" is not.
 */
static size_t scan_hex32(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	size_t n = 0;
	int d;

	while ((d = hex_value(s[n])) >= 0) {
		if (n == 8)
			return 0;
		v = v << 4 | (uint32_t)d;
		n++;
	}
	*out = v;
	return n;
}

/*
 * Reads a decimal number no greater than max at *sp and advances *sp past
 * it.  False when there is no digit or the value exceeds max.
 */
static bool scan_dec(const char **sp, uint64_t max, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	*sp = s;
	return true;
}

/* ---- LSN ---------------------------------------------------------------- */

char *pos_lsn_format(uint64_t lsn, char *buf, size_t size)
{
	snprintf(buf, size, LSN_FMT, LSN_ARGS(lsn));
	return buf;
}

bool pos_lsn_parse(const char *s, uint64_t *lsn)
{
	uint32_t hi, lo;
	size_t n = scan_hex32(s, &hi);

	if (n == 0 || s[n] != '/')
		return false;
	s += n + 1;
	n = scan_hex32(s, &lo);
	if (n == 0 || s[n] != '\0')
		return false;
	*lsn = (uint64_t)hi << 32 | lo;
	return true;
}

/* ---- parsing ------------------------------------------------------------ */

static bool parse_lsn(const char *s, struct pos *p, const char **err)
{
	if (!pos_lsn_parse(s, &p->lsn))
		return fail(err, "bad LSN: expected X/Y with 1 to 8 hex digits each");
	p->kind = POS_PG_LSN;
	return true;
}

/*
 * "file:offset".  The file name is split at the last ':' so that a name
 * containing one is reported as such rather than as a bad offset.
 */
static bool parse_coord(const char *s, struct pos *p, const char **err)
{
	const char *colon = strrchr(s, ':');
	if (!colon)
		return fail(err, "bad binlog coordinate: expected FILE:OFFSET");

	size_t len = (size_t)(colon - s);
	if (len == 0)
		return fail(err, "binlog file name is empty");
	if (len >= POS_FILE_MAX)
		return fail(err, "binlog file name is too long");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ':' || c == '/')
			return fail(err, "binlog file name contains ':' or '/'");
		/* Positions appear in key=value log lines: no blanks in them. */
		if (c <= ' ' || c == 0x7f)
			return fail(err, "binlog file name contains a blank or control character");
	}

	const char *q = colon + 1;
	uint64_t offset;
	if (!scan_dec(&q, UINT64_MAX, &offset) || *q != '\0')
		return fail(err, "binlog offset is not a decimal 64-bit number");

	memcpy(p->file, s, len);
	p->file[len] = '\0';
	p->offset = offset;
	p->has_binlog = true;
	return true;
}

/* Index of domain in p->gtid, or where it goes to keep the table sorted. */
static int gtid_slot(const struct pos *p, uint32_t domain)
{
	int i = 0;

	while (i < p->ngtid && p->gtid[i].domain < domain)
		i++;
	return i;
}

static bool gtid_has(const struct pos *p, int slot, uint32_t domain)
{
	return slot < p->ngtid && p->gtid[slot].domain == domain;
}

/* Caller checks there is room. */
static void gtid_insert(struct pos *p, int slot, struct pos_gtid g)
{
	memmove(&p->gtid[slot + 1], &p->gtid[slot], (size_t)(p->ngtid - slot) * sizeof(p->gtid[0]));
	p->gtid[slot] = g;
	p->ngtid++;
}

/* One "domain-server-seq" at *sp; advances *sp past it. */
static bool scan_gtid(const char **sp, struct pos_gtid *g)
{
	uint64_t domain, server;

	if (!scan_dec(sp, UINT32_MAX, &domain) || **sp != '-')
		return false;
	(*sp)++;
	if (!scan_dec(sp, UINT32_MAX, &server) || **sp != '-')
		return false;
	(*sp)++;
	if (!scan_dec(sp, UINT64_MAX, &g->seq))
		return false;
	g->domain = (uint32_t)domain;
	g->server = (uint32_t)server;
	return true;
}

static bool add_parsed_gtid(struct pos *p, struct pos_gtid g, const char **err)
{
	int slot = gtid_slot(p, g.domain);

	if (gtid_has(p, slot, g.domain))
		return fail(err, "GTID domain appears twice");
	if (p->ngtid == POS_GTID_DOMAINS)
		return fail(err, "too many GTID domains (at most " STR(POS_GTID_DOMAINS) ")");
	gtid_insert(p, slot, g);
	return true;
}

/* After "gtid:": an optional comma-separated list, then an optional "@coord". */
static bool parse_gtid_pos(const char *s, struct pos *p, const char **err)
{
	static const char bad[] = "bad GTID: expected domain-server-seq, e.g. 0-1-281";

	p->kind = POS_MARIADB_GTID;
	if (*s != '\0' && *s != '@') {
		for (;;) {
			struct pos_gtid g;
			if (!scan_gtid(&s, &g))
				return fail(err, bad);
			if (!add_parsed_gtid(p, g, err))
				return false;
			if (*s != ',')
				break;
			s++;
		}
	}
	if (*s == '@')
		return parse_coord(s + 1, p, err);
	if (*s != '\0')
		return fail(err, bad);
	return true;
}

static bool skip_prefix(const char **s, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(*s, prefix, n) != 0)
		return false;
	*s += n;
	return true;
}

bool pos_parse(const char *s, struct pos *out, const char **err)
{
	const char *unused;
	struct pos p = pos_none();
	bool ok;

	if (!err)
		err = &unused;
	if (*s == '\0')
		return fail(err, "empty position");

	if (strcmp(s, "none") == 0)
		ok = true;
	else if (skip_prefix(&s, "pg:"))
		ok = parse_lsn(s, &p, err);
	else if (skip_prefix(&s, "binlog:")) {
		p.kind = POS_BINLOG;
		ok = parse_coord(s, &p, err);
	} else if (skip_prefix(&s, "gtid:"))
		ok = parse_gtid_pos(s, &p, err);
	else if (strchr(s, '/'))
		ok = parse_lsn(s, &p, err); /* a bare LSN, as PostgreSQL prints it */
	else
		ok = fail(err, "unknown position: expected pg:X/Y, binlog:FILE:OFFSET, "
			       "gtid:D-S-N[,...][@FILE:OFFSET] or none");
	if (ok)
		*out = p;
	return ok;
}

/* ---- formatting --------------------------------------------------------- */

/* snprintf at buf + *len; once output is truncated, later calls do nothing. */
__attribute__((format(printf, 4, 5))) static void put(char *buf, size_t size, size_t *len,
						      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *len, size - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len += (size_t)n;
}

char *pos_format(const struct pos *p, char *buf, size_t size)
{
	size_t len = 0;

	if (size > 0)
		buf[0] = '\0';
	switch (p->kind) {
	case POS_NONE:
		put(buf, size, &len, "none");
		break;
	case POS_PG_LSN:
		put(buf, size, &len, "pg:" LSN_FMT, LSN_ARGS(p->lsn));
		break;
	case POS_BINLOG:
		put(buf, size, &len, "binlog:%.*s:%" PRIu64, POS_FILE_MAX - 1, p->file, p->offset);
		break;
	case POS_MARIADB_GTID:
		put(buf, size, &len, "gtid:");
		for (int i = 0; i < p->ngtid; i++)
			put(buf, size, &len, "%s%" PRIu32 "-%" PRIu32 "-%" PRIu64, i ? "," : "",
			    p->gtid[i].domain, p->gtid[i].server, p->gtid[i].seq);
		if (p->has_binlog)
			put(buf, size, &len, "@%.*s:%" PRIu64, POS_FILE_MAX - 1, p->file,
			    p->offset);
		break;
	default:
		put(buf, size, &len, "invalid");
		break;
	}
	return buf;
}

/* ---- ordering ----------------------------------------------------------- */

static enum pos_cmp cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? POS_LT : a > b ? POS_GT : POS_EQ;
}

/*
 * Splits "base.NNNNNN" at its last '.': returns the digits and sets
 * *base_len, or returns NULL when there is no all-digit extension.
 */
static const char *binlog_number(const char *file, size_t *base_len)
{
	const char *dot = strrchr(file, '.');

	if (!dot || dot[1] == '\0' || dot[1 + strspn(dot + 1, "0123456789")] != '\0')
		return NULL;
	*base_len = (size_t)(dot - file);
	return dot + 1;
}

/* Compares digit strings by value; no conversion, so any length works. */
static enum pos_cmp cmp_digits(const char *a, const char *b)
{
	a += strspn(a, "0");
	b += strspn(b, "0");
	size_t la = strlen(a), lb = strlen(b);
	if (la != lb)
		return la < lb ? POS_LT : POS_GT;
	int c = strcmp(a, b);
	return c < 0 ? POS_LT : c > 0 ? POS_GT : POS_EQ;
}

/*
 * MySQL and MariaDB number binlog files base.000001, base.000002, ... with
 * at least six digits and let the number grow past 999999, so the number is
 * compared by value, never as text.  Files of different logs (base names)
 * have no order.
 */
static enum pos_cmp binlog_compare(const struct pos *a, const struct pos *b)
{
	size_t la = 0, lb = 0;

	if (strcmp(a->file, b->file) == 0)
		return cmp_u64(a->offset, b->offset);
	const char *na = binlog_number(a->file, &la);
	const char *nb = binlog_number(b->file, &lb);
	if (!na || !nb || la != lb || memcmp(a->file, b->file, la) != 0)
		return POS_INCOMPARABLE;
	enum pos_cmp c = cmp_digits(na, nb);
	/* One number spelled two ways (.0010, .000010) names two different files. */
	return c == POS_EQ ? POS_INCOMPARABLE : c;
}

/* The seq a position has reached in domain; 0 when it has none there. */
static uint64_t gtid_seq(const struct pos *p, uint32_t domain)
{
	for (int i = 0; i < p->ngtid; i++)
		if (p->gtid[i].domain == domain)
			return p->gtid[i].seq;
	return 0;
}

static void note(uint64_t mine, uint64_t theirs, bool *ahead, bool *behind)
{
	if (mine > theirs)
		*ahead = true;
	if (mine < theirs)
		*behind = true;
}

/*
 * Domains are independent streams, so GTID positions are only partially
 * ordered: a is behind b if no domain of a is ahead and some domain is
 * behind.  Within a domain only seq counts (MariaDB orders a domain by
 * seq_no; the server id names the origin).  The binlog coordinate a GTID
 * position may carry is server-local and takes no part.
 */
static enum pos_cmp gtid_compare(const struct pos *a, const struct pos *b)
{
	bool ahead = false, behind = false;

	for (int i = 0; i < a->ngtid; i++)
		note(a->gtid[i].seq, gtid_seq(b, a->gtid[i].domain), &ahead, &behind);
	for (int i = 0; i < b->ngtid; i++)
		note(gtid_seq(a, b->gtid[i].domain), b->gtid[i].seq, &ahead, &behind);
	if (ahead && behind)
		return POS_INCOMPARABLE;
	return ahead ? POS_GT : behind ? POS_LT : POS_EQ;
}

static bool kind_valid(const struct pos *p)
{
	return (unsigned)p->kind < POS__MAX;
}

enum pos_cmp pos_compare(const struct pos *a, const struct pos *b)
{
	if (!kind_valid(a) || !kind_valid(b))
		return POS_INCOMPARABLE;
	/* A stream with no position yet is behind any stream that has one. */
	if (a->kind == POS_NONE || b->kind == POS_NONE)
		return cmp_u64(a->kind != POS_NONE, b->kind != POS_NONE);
	if (a->kind != b->kind)
		return POS_INCOMPARABLE;
	switch (a->kind) {
	case POS_PG_LSN:
		return cmp_u64(a->lsn, b->lsn);
	case POS_BINLOG:
		return binlog_compare(a, b);
	case POS_MARIADB_GTID:
		return gtid_compare(a, b);
	default:
		return POS_INCOMPARABLE;
	}
}

/*
 * The subtraction wraps in unsigned arithmetic and the result is read as
 * signed, which gives b - a for any two values less than 2^63 apart.
 */
int64_t pos_distance_bytes(const struct pos *a, const struct pos *b)
{
	if (a->kind == POS_PG_LSN && b->kind == POS_PG_LSN)
		return (int64_t)(b->lsn - a->lsn);
	if (a->kind == POS_BINLOG && b->kind == POS_BINLOG && strcmp(a->file, b->file) == 0)
		return (int64_t)(b->offset - a->offset);
	return -1;
}

uint64_t pos_scalar(const struct pos *p)
{
	size_t base_len;
	if (p->kind == POS_PG_LSN)
		return p->lsn;
	if ((p->kind != POS_BINLOG && p->kind != POS_MARIADB_GTID) || !p->has_binlog)
		return 0;
	const char *n = binlog_number(p->file, &base_len);
	uint64_t seq = n ? strtoull(n, NULL, 10) : 0;
	return seq << 32 | (p->offset & 0xffffffffu);
}

struct pos pos_from_scalar(const struct pos *like, uint64_t v)
{
	size_t base_len = 0;
	if (v == 0)
		return pos_none();
	if (like->kind == POS_PG_LSN || !like->has_binlog)
		return pos_from_lsn(v);
	const char *n = binlog_number(like->file, &base_len);
	int width = n ? (int)strlen(n) : 6;
	struct pos p = {.kind = POS_BINLOG, .has_binlog = true, .offset = v & 0xffffffffu};
	snprintf(p.file, sizeof(p.file), "%.*s.%0*llu", (int)(n ? base_len : strlen(like->file)),
		 like->file, width < 6 ? 6 : width, (unsigned long long)(v >> 32));
	return p;
}

/* ---- GTID apply --------------------------------------------------------- */

/*
 * An equal seq is accepted (re-applying the last transaction after a
 * restart must not fail); only a step back is refused.  The binlog
 * coordinate is left alone: the caller sets it to where the transaction
 * ended.
 */
bool pos_gtid_advance(struct pos *p, uint32_t domain, uint32_t server, uint64_t seq)
{
	if (p->kind != POS_MARIADB_GTID)
		return false;
	int slot = gtid_slot(p, domain);
	if (gtid_has(p, slot, domain)) {
		if (seq < p->gtid[slot].seq)
			return false;
		p->gtid[slot].server = server;
		p->gtid[slot].seq = seq;
		return true;
	}
	if (p->ngtid == POS_GTID_DOMAINS)
		return false;
	gtid_insert(p, slot, (struct pos_gtid){.domain = domain, .server = server, .seq = seq});
	return true;
}
