/*
 * conf_keys: the table of every configuration key.  Adding a key here is all
 * it takes for parsing, `migctl config`, the sample and the docs to know it.
 * Sections and keys appear in the sample in this order.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>

#define OFF(field) offsetof(struct migd_conf, field)

static const char *const engine_choices[] = {"postgresql", "mariadb", "mysql", NULL};
static const char *const level_choices[] = {"error", "warn", "notice", "info", "debug", NULL};

const char *engine_name(enum migd_engine e)
{
	return (e >= 0 && e < ENGINE__MAX) ? engine_choices[e] : "unknown";
}

static const char *valid_name(const void *v)
{
	const char *s = *(char *const *)v;
	size_t n = strlen(s);
	if (n == 0 || n > 40)
		return "must be 1 to 40 characters";
	if (!islower((unsigned char)s[0]))
		return "must start with a lowercase letter";
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_')
			return "may contain only a-z, 0-9 and _ (it names slots and publications)";
	return NULL;
}

static const char *valid_abs_path(const void *v)
{
	const char *s = *(char *const *)v;
	return s[0] == '/' ? NULL : "must be an absolute path";
}

static const char *valid_socket_path(const void *v)
{
	const char *s = *(char *const *)v;
	if (s[0] != '/')
		return "must be an absolute path";
	if (strlen(s) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return "is too long for a Unix socket path (max 107 bytes)";
	return NULL;
}

static const char *valid_ip(const void *v)
{
	const char *s = *(char *const *)v;
	unsigned char buf[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
		return NULL;
	return "must be an IPv4 or IPv6 address literal (e.g. 127.0.0.1)";
}

static const char *valid_conninfo(const void *v)
{
	const char *s = *(char *const *)v;
	if (strchr(s, '=') == NULL)
		return "must be key=value pairs, e.g. \"host=db1 port=5432 user=migd dbname=app\"";
	return NULL;
}

/* "a.b, c.*": schema-qualified names; fnmatch(3) wildcards allowed. */
static const char *valid_table_list(const void *v)
{
	const char *s = *(char *const *)v;
	const char *p = s;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		const char *start = p;
		int dots = 0;
		while (*p && *p != ',' && *p != ' ') {
			if (*p == '.')
				dots++;
			p++;
		}
		if (dots != 1 || start[0] == '.' || p[-1] == '.')
			return "must be a comma list of schema.table names (shell wildcards allowed: "
			       "public.*)";
	}
	return NULL;
}

static const char *valid_ident(const void *v)
{
	const char *s = *(char *const *)v;
	if (s[0] == '\0' || strpbrk(s, " ,.=\"`") != NULL)
		return "must be one name (no spaces, commas, dots, quotes or '=')";
	return NULL;
}

/*
 * A comma list of from=to items, each checked by ok(item, its '=', its
 * end); the source name (left) may hold no wildcard.  NULL when every
 * item is fine, else bad.
 */
static const char *valid_map_list(const void *v, const char *bad,
				  bool (*ok)(const char *s, const char *eq, const char *end))
{
	const char *s = *(char *const *)v;
	while (*s) {
		while (*s == ' ' || *s == ',')
			s++;
		if (*s == '\0')
			break;
		size_t n = strcspn(s, ",");
		const char *eq = memchr(s, '=', n);
		if (eq == NULL || eq == s || eq + 1 == s + n || eq[1] == ' ' ||
		    strcspn(s, "*?[") < (size_t)(eq - s) || !ok(s, eq, s + n))
			return bad;
		s += n;
	}
	return NULL;
}

static int count_dots(const char *s, const char *end)
{
	int n = 0;
	for (; s < end; s++)
		n += *s == '.';
	return n;
}

/* schema.table=[schema.]table: a dot on the left, never at either end of it. */
static bool rename_item_ok(const char *s, const char *eq, const char *end)
{
	(void)end;
	return count_dots(s, eq) > 0 && s[0] != '.' && eq[-1] != '.';
}

static const char *valid_rename_list(const void *v)
{
	return valid_map_list(v, "must be a comma list of schema.table=[schema.]table",
			      rename_item_ok);
}

/* schema.table.column=column: three non-empty parts on the left, none on the right. */
static bool column_item_ok(const char *s, const char *eq, const char *end)
{
	const char *d1 = memchr(s, '.', (size_t)(eq - s));
	return count_dots(s, eq) == 2 && d1 != s && d1[1] != '.' && eq[-1] != '.' &&
	       count_dots(eq + 1, end) == 0;
}

static const char *valid_column_map(const void *v)
{
	return valid_map_list(v, "must be a comma list of schema.table.column=column",
			      column_item_ok);
}

/* The three keys of [source] and [target]. */
#define ENDPOINT_KEYS(sec, field, who, host)                                               \
	{sec, "engine", CONF_ENUM, NULL, "postgresql", CONF_F_REQUIRED,                \
	 OFF(field.engine), 0, 0, engine_choices, NULL,                               \
	 "database engine of the " who ": postgresql, mariadb or mysql"},              \
	{sec, "dsn", CONF_STRING, NULL, "host=" host " port=5432 user=migd dbname=app", \
	 CONF_F_REQUIRED | CONF_F_SECRET, OFF(field.dsn), 0, 0, NULL, valid_conninfo,  \
	 "connection string of the " who " (key=value pairs; env:NAME or file:PATH allowed)"}, \
	{sec, "password", CONF_STRING, NULL, "env:MIGD_PASSWORD", CONF_F_SECRET,        \
	 OFF(field.password), 0, 0, NULL, NULL,                                        \
	 "password for the " who "; best given as env:NAME or file:PATH"}

/* clang-format off */
const struct conf_key conf_keys[] = {
	{"migration", "name", CONF_STRING, "migd", NULL, 0, OFF(name), 0, 0, NULL, valid_name,
	 "short name of this migration; names the slot, publication and migd schema rows"},
	{"migration", "state_dir", CONF_STRING, "/var/lib/migd", NULL, 0, OFF(state_dir), 0, 0,
	 NULL, valid_abs_path, "local directory for the change spool and journal copy"},

	ENDPOINT_KEYS("source", source, "source (the current owner)", "db-old.internal"),
	ENDPOINT_KEYS("target", target, "target (the candidate owner)", "db-new.internal"),

	{"tables", "include", CONF_STRING, NULL, "public.*", CONF_F_REQUIRED, OFF(tables_include),
	 0, 0, NULL, valid_table_list,
	 "tables to migrate: comma list of schema.table or schema.* (source names)"},
	{"tables", "exclude", CONF_STRING, NULL, "public.audit_log", 0, OFF(tables_exclude), 0, 0,
	 NULL, valid_table_list, "tables left out even if include matches them"},
	{"tables", "insert_only", CONF_STRING, NULL, "public.events", 0, OFF(tables_insert_only),
	 0, 0, NULL, valid_table_list,
	 "tables without a key accepted as insert-only (their updates and deletes are refused)"},
	{"tables", "target_schema", CONF_STRING, NULL, "app", 0, OFF(tables_target_schema), 0, 0,
	 NULL, valid_ident, "schema (MySQL/MariaDB: database) the tables land in on the target; "
	 "default: each table's source schema"},
	{"tables", "rename", CONF_STRING, NULL, "public.orders=sales.orders, public.users=members",
	 0, OFF(tables_rename), 0, 0, NULL, valid_rename_list,
	 "target names that differ from the source's: comma list of schema.table=[schema.]table "
	 "(a bare table goes to target_schema or the source schema)"},
	{"tables", "columns", CONF_STRING, NULL, "public.orders.cust=customer_id", 0,
	 OFF(tables_columns), 0, 0, NULL, valid_column_map,
	 "target column names that differ from the source's: comma list of "
	 "schema.table.column=column (source names on the left)"},

	{"backfill", "parallel", CONF_INT, "2", NULL, 0, OFF(backfill_parallel), 1, 64, NULL,
	 NULL, "chunks copied at the same time (each uses one source and one target connection)"},
	{"backfill", "chunk_rows", CONF_INT, "100000", NULL, 0, OFF(backfill_chunk_rows), 1000,
	 100000000, NULL, NULL, "rows per backfill chunk (one target transaction each)"},
	{"backfill", "rows_per_second", CONF_INT, "0", NULL, 0, OFF(backfill_rows_per_second), 0,
	 100000000, NULL, NULL,
	 "throttle for the copy, all workers together, to spare the source (0 = as fast as the "
	 "servers go)"},
	{"backfill", "defer_indexes", CONF_BOOL, "true", NULL, 0, OFF(backfill_defer_indexes), 0, 0,
	 NULL, NULL,
	 "build the indexes of a target table that is empty at plan time after its copy, not during it"},

	{"apply", "batch_txns", CONF_INT, "500", NULL, 0, OFF(apply_batch_txns), 1,
	 100000, NULL, NULL, "source transactions applied per target transaction, at most"},
	{"apply", "batch_bytes", CONF_SIZE, "16MB", NULL, 0, OFF(apply_batch_bytes),
	 65536, 1073741824, NULL, NULL, "change bytes per target transaction, at most"},
	{"apply", "batch_delay", CONF_DURATION, "50ms", NULL, 0,
	 OFF(apply_batch_delay_ms), 0, 60000, NULL, NULL,
	 "how long a batch may wait for more source transactions before it commits"},
	{"apply", "spool_segment_size", CONF_SIZE, "64MB", NULL, 0, OFF(spool_segment_bytes),
	 1048576, 4294967296, NULL, NULL,
	 "size of one spool file in state_dir/spool (changes held durably until applied)"},

	{"validation", "rows_per_second", CONF_INT, "0", NULL, 0,
	 OFF(validation_rows_per_second), 0, 100000000, NULL, NULL,
	 "throttle for validation reads on each side (0 = as fast as the servers go)"},
	{"validation", "rechecks", CONF_INT, "3", NULL, 0, OFF(validation_rechecks), 0,
	 100, NULL, NULL,
	 "times a mismatch is checked again, after apply passes its position, before it counts"},
	{"validation", "recheck_wait", CONF_DURATION, "60s", NULL, 0,
	 OFF(validation_recheck_wait_ms), 1000, 3600000, NULL, NULL,
	 "how long a recheck waits for the applier to pass the mismatch's source position"},
	{"validation", "max_keys", CONF_INT, "20", NULL, 0, OFF(validation_max_keys), 1,
	 10000, NULL, NULL, "differing keys reported per table (the count is always exact)"},

	{"freeze", "roles", CONF_STRING, NULL, "app_rw, app_batch", CONF_F_RELOAD,
	 OFF(freeze_roles), 0, 0, NULL, NULL,
	 "application roles whose writes `migctl freeze` revokes on the migrated tables"},
	{"freeze", "drain_timeout", CONF_DURATION, "60s", NULL, 0,
	 OFF(freeze_drain_timeout_ms), 1000, 3600000, NULL, NULL,
	 "how long freeze waits for the target to reach the final source position"},

	{"gate", "max_lag", CONF_DURATION, "0s", NULL, CONF_F_RELOAD, OFF(gate_max_lag_ms), 0,
	 3600000, NULL, NULL, "replication lag allowed at the gate"},
	{"gate", "max_lag_bytes", CONF_SIZE, "0", NULL, CONF_F_RELOAD, OFF(gate_max_lag_bytes), 0,
	 INT64_MAX, NULL, NULL, "source WAL not yet applied allowed at the gate"},
	{"gate", "max_failed_records", CONF_INT, "0", NULL, CONF_F_RELOAD,
	 OFF(gate_max_failed_records), 0, 1000000000, NULL, NULL,
	 "failed records (migd.failed_records) allowed at the gate"},
	{"gate", "max_retry_queue", CONF_INT, "0", NULL, CONF_F_RELOAD, OFF(gate_max_retry_queue),
	 0, 1000000000, NULL, NULL, "transactions waiting for a retry allowed at the gate"},
	{"gate", "max_slot_retained", CONF_SIZE, "50GB", NULL, CONF_F_RELOAD,
	 OFF(gate_max_slot_retained), 0, INT64_MAX, NULL, NULL,
	 "WAL the replication slot may hold back on the source"},
	{"gate", "require_validation", CONF_STRING, "counts,checksums", NULL, CONF_F_RELOAD,
	 OFF(gate_require_validation), 0, 0, NULL, NULL,
	 "validation kinds that must have passed at or after the freeze position"},

	{"hooks", "flip", CONF_STRING, NULL, "/usr/local/bin/repoint-pgbouncer target", CONF_F_RELOAD,
	 OFF(hook_flip), 0, 0, NULL, NULL,
	 "command (sh -c) that sends traffic to the target at cutover; exit 0 = done. Env: "
	 "MIGD_MIGRATION MIGD_PHASE MIGD_OWNER MIGD_SOURCE_POS MIGD_TARGET_POS"},
	{"hooks", "rollback", CONF_STRING, NULL, "/usr/local/bin/repoint-pgbouncer source",
	 CONF_F_RELOAD, OFF(hook_rollback), 0, 0, NULL, NULL,
	 "command that sends traffic back to the source at a rollback (same environment)"},
	{"hooks", "timeout", CONF_DURATION, "60s", NULL, CONF_F_RELOAD, OFF(hook_timeout_ms), 1000,
	 3600000, NULL, NULL, "a hook still running after this is killed and counts as failed"},

	{"control", "socket", CONF_STRING, "/run/migd/migd.sock", NULL, 0, OFF(control_socket), 0,
	 0, NULL, valid_socket_path, "Unix socket migctl talks to (created with mode 0660)"},
	{"control", "socket_group", CONF_STRING, NULL, "migd", 0, OFF(control_socket_group), 0, 0,
	 NULL, NULL, "group owning the socket: its members may connect and run read-only commands"},
	{"control", "group", CONF_STRING, NULL, "migd-operators", CONF_F_RELOAD,
	 OFF(control_group), 0, 0, NULL, NULL,
	 "group allowed to send mutating commands, besides root and migd's own user"},
	{"control", "max_clients", CONF_INT, "32", NULL, CONF_F_RELOAD, OFF(control_max_clients),
	 1, 1024, NULL, NULL, "concurrent control connections; more are refused with 'busy'"},
	{"control", "idle_timeout", CONF_DURATION, "30s", NULL, CONF_F_RELOAD,
	 OFF(control_idle_timeout_ms), 1000, 3600000, NULL, NULL,
	 "a control client silent for this long is disconnected"},

	{"metrics", "enabled", CONF_BOOL, "true", NULL, 0, OFF(metrics_enabled), 0, 0, NULL, NULL,
	 "serve /metrics and /healthz over HTTP"},
	{"metrics", "listen", CONF_STRING, "127.0.0.1", NULL, 0, OFF(metrics_listen), 0, 0, NULL,
	 valid_ip, "address the metrics endpoint binds to"},
	{"metrics", "port", CONF_INT, "9751", NULL, 0, OFF(metrics_port), 0, 65535, NULL, NULL,
	 "TCP port of the metrics endpoint (0 picks a free port and logs it)"},

	{"log", "level", CONF_ENUM, "info", NULL, CONF_F_RELOAD, OFF(log_level), 0, 0,
	 level_choices, NULL, "least important level logged: error, warn, notice, info, debug"},

	{"daemon", "maintenance_interval", CONF_DURATION, "1s", NULL, CONF_F_RELOAD,
	 OFF(maintenance_interval_ms), 100, 60000, NULL, NULL,
	 "period of the housekeeping timer (status, watchdog, metrics refresh)"},
};

/* clang-format on */

const size_t conf_nkeys = sizeof(conf_keys) / sizeof(conf_keys[0]);
