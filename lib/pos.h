/*
 * pos: source log positions as first-class values.
 *
 * One type for every engine: a PostgreSQL LSN, a MySQL/MariaDB binlog
 * coordinate (file:offset), a MariaDB GTID position (one domain-server-seq
 * per replication domain), optionally together with the binlog coordinate
 * it was read at.  Positions parse, format, compare and serialize here and
 * nowhere else.  A struct pos is a plain value: copy it with '='; it owns no
 * memory.
 *
 * Text forms (also the serialization stored in the migd schema):
 *     pg:16/B374D848                        PostgreSQL LSN
 *     binlog:mariadb-bin.000003:1234        binlog file and offset
 *     gtid:0-1-281,1-2-17                   MariaDB GTID position, domains ascending
 *     gtid:0-1-281@mariadb-bin.000003:1234  GTID position with its binlog coordinate
 *     none                                  no position yet
 * pos_parse() also accepts a bare LSN ("16/B374D848") as pg:.
 * MySQL 8 GTID sets (uuid:1-100) are not supported yet (untestable here).
 */
#ifndef MIGD_POS_H
#define MIGD_POS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pos_kind {
	POS_NONE,
	POS_PG_LSN,
	POS_BINLOG,       /* file + offset */
	POS_MARIADB_GTID, /* gtid[] (+ file/offset when has_binlog) */
	POS__MAX,
};

#define POS_FILE_MAX    64 /* binlog file names are short: "mysql-bin.000123" */
#define POS_GTID_DOMAINS 16

struct pos_gtid {
	uint32_t domain;
	uint32_t server;
	uint64_t seq;
};

struct pos {
	enum pos_kind kind;
	uint64_t lsn; /* POS_PG_LSN */
	bool has_binlog; /* POS_BINLOG always; POS_MARIADB_GTID optionally */
	char file[POS_FILE_MAX];
	uint64_t offset;
	int ngtid; /* domains, sorted ascending by domain */
	struct pos_gtid gtid[POS_GTID_DOMAINS];
};

/* Longest text pos_format() can produce, including the NUL. */
#define POS_TEXT_MAX (16 + POS_FILE_MAX + 24 + POS_GTID_DOMAINS * 45)

enum pos_cmp {
	POS_LT = -1,
	POS_EQ = 0,
	POS_GT = 1,
	POS_INCOMPARABLE = 2, /* different kinds, files incomparable, or GTID domains disagree */
};

static inline struct pos pos_none(void)
{
	return (struct pos){.kind = POS_NONE};
}
struct pos pos_from_lsn(uint64_t lsn);

/*
 * Parses the text form.  On failure returns false and *err points to a
 * static message ("bad LSN", ...).
 */
bool pos_parse(const char *s, struct pos *out, const char **err) __attribute__((warn_unused_result));

/* Writes the text form into buf (size >= POS_TEXT_MAX is always enough); returns buf. */
char *pos_format(const struct pos *p, char *buf, size_t size);

/* PostgreSQL's own LSN text "X/Y" (for SQL and replication commands). */
char *pos_lsn_format(uint64_t lsn, char *buf, size_t size);
bool pos_lsn_parse(const char *s, uint64_t *lsn) __attribute__((warn_unused_result));

/*
 * Orders two positions of the same kind.  Binlog coordinates compare by
 * file sequence number then offset; GTID positions compare domain by domain
 * (LT only if no domain is ahead, etc.; a domain present on one side only
 * counts as seq 0 on the other).
 */
enum pos_cmp pos_compare(const struct pos *a, const struct pos *b);

bool pos_is_none(const struct pos *p);

/*
 * Distance in bytes from a to b when it is meaningful (PG LSNs; binlog
 * offsets within one file), else -1.  Used for lag in bytes.
 */
int64_t pos_distance_bytes(const struct pos *a, const struct pos *b);

/*
 * One number that orders the positions of a single source, for progress,
 * fences and lag arithmetic: the LSN for PostgreSQL; for a binlog
 * coordinate (also the one a GTID position carries) the file's sequence
 * number << 32 | offset (binlog files stay under 4 GiB: max_binlog_size is
 * at most 1 GiB).  0 for none or a GTID position without a coordinate.
 */
uint64_t pos_scalar(const struct pos *p);

/*
 * The position a pos_scalar() value stands for, in the form of `like` (a
 * position of the same source): an LSN, or a binlog coordinate in like's
 * binlog (its base name and number width).  none for 0.
 */
struct pos pos_from_scalar(const struct pos *like, uint64_t v);

/* For a MariaDB GTID position: applies one transaction's GTID (advances its domain). */
bool pos_gtid_advance(struct pos *p, uint32_t domain, uint32_t server, uint64_t seq)
	__attribute__((warn_unused_result));

#endif
