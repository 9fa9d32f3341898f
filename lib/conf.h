/*
 * conf: the migd configuration, parsed from an INI file by inih.
 *
 * Every key is one row of a declarative table (conf_keys.c): section, name,
 * type, default, flags (reloadable, secret, required), bounds, validator and
 * a help line.  The same table drives parsing, `migctl config`, the sample in
 * conf/migd.conf (`migd --print-sample-config`) and the man page's key list.
 *
 * A loaded config is an immutable snapshot (struct migd_conf); reload builds
 * a new one and conf_merge_reload() decides key by key what may change.
 * Owns: the snapshot's strings (all malloc'ed), freed with conf_free().
 */
#ifndef MIGD_CONF_H
#define MIGD_CONF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

enum migd_engine {
	ENGINE_POSTGRESQL,
	ENGINE_MARIADB,
	ENGINE_MYSQL,
	ENGINE__MAX,
};
const char *engine_name(enum migd_engine e);

/* One database the migration reads from or writes to. */
struct conf_endpoint {
	int engine;       /* enum migd_engine */
	char *dsn;        /* owned; key=value conninfo, no password in it */
	char *password;   /* owned, secret; NULL when unset */
};

#define CONF_MAX_KEYS 64

/*
 * A declared check, from a section "[invariant NAME]" or "[query NAME]":
 *   source = SQL run on the source      target = SQL run on the target
 *   expect = equal (both results the same) | empty (each returns no rows)
 * Long SQL continues on indented lines.  An invariant says a business rule
 * holds; a query is a production-shaped read whose results must match.
 */
enum conf_check_kind { CHECK_INVARIANT, CHECK_QUERY };
enum conf_check_expect { EXPECT_EQUAL, EXPECT_EMPTY };
struct conf_check {
	enum conf_check_kind kind;
	char *name;       /* owned */
	char *source_sql; /* owned; NULL: not run on the source */
	char *target_sql; /* owned; NULL: not run on the target */
	enum conf_check_expect expect;
	int line;         /* of the section header */
};

/* Where a key's value came from, for `migctl config` and error messages. */
struct conf_origin {
	int line;            /* 0 = default */
	char *secret_source; /* owned; "env:NAME", "file:PATH" or "inline" for secrets */
};

struct migd_conf {
	char *path; /* owned; the file this came from */
	struct conf_origin origin[CONF_MAX_KEYS]; /* indexed like conf_keys[] */

	/* [migration] */
	char *name;      /* owned; names slots, publications, the migd schema rows */
	char *state_dir; /* owned; local spool and journal copy */

	struct conf_endpoint source; /* [source] */
	struct conf_endpoint target; /* [target] */

	/* [tables] */
	char *tables_include;     /* owned; comma list of schema.table or schema.* */
	char *tables_exclude;     /* owned; same form, applied after include */
	char *tables_insert_only; /* owned; keyless tables allowed as insert-only */
	char *tables_target_schema; /* owned; target schema (database) for every table; NULL: source's */
	char *tables_rename;        /* owned; schema.table=[schema.]table, ... */
	char *tables_columns;       /* owned; schema.table.column=column, ... */

	/* [backfill] */
	int64_t backfill_parallel;
	int64_t backfill_chunk_rows;
	bool backfill_defer_indexes;

	/* [apply] */
	int64_t apply_batch_txns;
	int64_t apply_batch_bytes;
	int64_t apply_batch_delay_ms;
	int64_t spool_segment_bytes;

	/* [validation] */
	int64_t validation_rows_per_second; /* 0: unthrottled */
	int64_t backfill_rows_per_second;   /* 0: unthrottled */
	int64_t validation_rechecks;
	int64_t validation_recheck_wait_ms;
	int64_t validation_max_keys;

	/* [freeze] */
	char *freeze_roles; /* owned; application roles made read-only by freeze */
	int64_t freeze_drain_timeout_ms;

	/* [gate] thresholds */
	int64_t gate_max_lag_ms;
	int64_t gate_max_lag_bytes;
	int64_t gate_max_failed_records;
	int64_t gate_max_retry_queue;
	int64_t gate_max_slot_retained;
	char *gate_require_validation; /* owned; kinds that must have passed at the freeze */

	/* [hooks] */
	char *hook_flip;     /* owned; shell command run at the flip (target becomes owner) */
	char *hook_rollback; /* owned; shell command run at a rollback (source owner again) */
	int64_t hook_timeout_ms;

	/* [control] */
	char *control_socket;        /* owned */
	char *control_socket_group;  /* owned; group owning the socket (may connect) */
	char *control_group;         /* owned; may mutate; NULL = only root and our uid */
	int64_t control_max_clients;
	int64_t control_idle_timeout_ms;

	/* [metrics] */
	bool metrics_enabled;
	char *metrics_listen; /* owned; IP literal */
	int64_t metrics_port;

	/* [log] */
	int log_level; /* enum log_level */

	/* [daemon] */
	int64_t maintenance_interval_ms;

	/* [invariant NAME] and [query NAME] sections, in file order */
	struct conf_check *checks; /* owned */
	int nchecks;
};

enum conf_type {
	CONF_STRING,
	CONF_INT,
	CONF_BOOL,
	CONF_DURATION, /* stored as milliseconds; "250ms", "5s", "2m", "1h" */
	CONF_SIZE,     /* stored as bytes; "512", "64kB", "16MB", "2GB" */
	CONF_ENUM,     /* stored as int index into choices */
};

enum conf_flag {
	CONF_F_RELOAD = 1 << 0,   /* SIGHUP applies a change without restart */
	CONF_F_SECRET = 1 << 1,   /* never printed; value may be env:NAME or file:PATH */
	CONF_F_REQUIRED = 1 << 2, /* no default: the file must set it */
};

struct migd_conf;
/* Checks a parsed value; returns NULL when fine, else a static message. */
typedef const char *(*conf_validator)(const void *value);

struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	const char *def;     /* textual default, parsed like file input; NULL = unset */
	const char *example; /* shown in the sample for keys without a default */
	unsigned flags;
	size_t offset; /* into struct migd_conf */
	int64_t min, max;
	const char *const *choices; /* CONF_ENUM: NULL-terminated */
	conf_validator validate;
	const char *help; /* one line, shown in the sample and `migctl config` */
};

extern const struct conf_key conf_keys[];
extern const size_t conf_nkeys;

/*
 * Loads and validates path.  On success *out is a new snapshot (caller frees
 * with conf_free()).  On failure returns false and *errs is a malloc'ed
 * message with one "file:line: reason" per problem (caller frees).
 */
bool conf_load(const char *path, struct migd_conf **out, char **errs)
	__attribute__((warn_unused_result));

/* Same, from a string; name is used in messages.  For tests. */
bool conf_load_string(const char *name, const char *text, struct migd_conf **out, char **errs)
	__attribute__((warn_unused_result));

void conf_free(struct migd_conf *c);

/*
 * Reload: returns a snapshot holding next's reloadable values and cur's
 * values for everything else.  Every changed key is reported: in *applied if
 * it took effect, in *pending (needs a restart) if not; both are JSON arrays
 * of "section.key" (caller decrefs).  Takes ownership of next.
 */
struct migd_conf *conf_merge_reload(const struct migd_conf *cur, struct migd_conf *next,
				    json_t **applied, json_t **pending);

/* The effective config as JSON, secrets masked: one object per key. */
json_t *conf_to_json(const struct migd_conf *c);

/* The [invariant]/[query] checks as JSON (SQL shown; it holds no secret). */
json_t *conf_checks_json(const struct migd_conf *c);

/* The annotated sample config generated from the table. */
void conf_print_sample(FILE *out);

#endif
