/* mystore: migd's sink tables in a MySQL/MariaDB target (see mystore.h). */
#include "mystore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * `key` and `change` are reserved words in MySQL: always backquoted.
 * Positions are TEXT: a GTID position with 16 domains is ~800 characters.
 */
static const char *const sink_schema_sql =
    "CREATE DATABASE IF NOT EXISTS migd CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
    "CREATE TABLE IF NOT EXISTS migd.progress ("
    "  name VARCHAR(255) NOT NULL PRIMARY KEY,"
    "  applied_pos TEXT NOT NULL,"
    "  applied_commit_time DATETIME(6) NULL COMMENT 'UTC',"
    "  applied_txns BIGINT NOT NULL DEFAULT 0,"
    "  applied_changes BIGINT NOT NULL DEFAULT 0,"
    "  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'UTC'"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"
    "CREATE TABLE IF NOT EXISTS migd.parked ("
    "  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    "  name VARCHAR(255) NOT NULL, table_name TEXT NOT NULL,"
    "  source_pos TEXT NOT NULL, `change` JSON NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  parked_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'UTC',"
    "  KEY (name)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"
    "CREATE TABLE IF NOT EXISTS migd.failed_records ("
    "  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    "  name VARCHAR(255) NOT NULL, table_name TEXT NOT NULL,"
    "  source_pos TEXT NOT NULL, `key` JSON NULL, `change` JSON NOT NULL,"
    "  error TEXT NOT NULL,"
    "  recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'UTC',"
    "  resolved_at DATETIME(6) NULL COMMENT 'UTC',"
    "  KEY (name)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"
    "CREATE TABLE IF NOT EXISTS migd.freeze_violations ("
    "  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    "  name VARCHAR(255) NOT NULL, freeze_pos TEXT NOT NULL,"
    "  source_pos TEXT NOT NULL, xid BIGINT NULL, origin TEXT NULL, table_name TEXT NULL,"
    "  detected_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'UTC',"
    "  KEY (name)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

bool mystore_init_sink(struct myconn *c, struct err *err)
{
	/*
	 * CREATE ... IF NOT EXISTS is binlogged even when it does nothing: look
	 * first, so a reconnect does not put DDL into the target's binlog.
	 */
	char *n =
	    myconn_query_value(c,
			       "SELECT count(*) FROM information_schema.TABLES "
			       "WHERE TABLE_SCHEMA = 'migd' AND TABLE_NAME IN "
			       "('progress', 'parked', 'failed_records', 'freeze_violations')",
			       err);
	if (n == NULL)
		return false;
	bool have_all = strcmp(n, "4") == 0;
	free(n);
	return have_all || myconn_exec(c, sink_schema_sql, err);
}

bool mystore_applied(struct myconn *c, const char *name, struct pos *applied, int64_t *commit_us,
		     struct err *err)
{
	*applied = pos_none();
	if (commit_us)
		*commit_us = 0;
	char *lit = myconn_literal(c, name, strlen(name));
	char *sql = xasprintf("SELECT applied_pos, COALESCE(TIMESTAMPDIFF(MICROSECOND, "
			      "'1970-01-01 00:00:00', applied_commit_time), 0) "
			      "FROM migd.progress WHERE name = %s",
			      lit);
	MYSQL_RES *r = myconn_query(c, sql, err);
	free(sql);
	free(lit);
	if (r == NULL)
		return false;
	bool ok = true;
	MYSQL_ROW row = mysql_fetch_row(r);
	if (row != NULL) {
		const char *perr;
		if (!pos_parse(row[0] ? row[0] : "", applied, &perr)) {
			err_set(err, "%s: migd.progress applied_pos '%s': %s", c->label,
				row[0] ? row[0] : "", perr);
			ok = false;
		}
		if (commit_us && row[1])
			*commit_us = atoll(row[1]);
	}
	mysql_free_result(r);
	return ok;
}

char *mystore_progress_sql(struct myconn *c, const char *name, const struct pos *end,
			   int64_t commit_us, int64_t ntxns, int64_t nchanges)
{
	char p[POS_TEXT_MAX], t[96];
	pos_format(end, p, sizeof(p));
	char *nl = myconn_literal(c, name, strlen(name));
	char *pl = myconn_literal(c, p, strlen(p));
	if (commit_us > 0)
		snprintf(t, sizeof(t), "TIMESTAMPADD(MICROSECOND, %lld, '1970-01-01 00:00:00')",
			 (long long)commit_us);
	else
		snprintf(t, sizeof(t), "NULL");
	char *sql = xasprintf(
	    "INSERT INTO migd.progress (name, applied_pos, applied_commit_time, applied_txns, "
	    "applied_changes) VALUES (%s, %s, %s, %lld, %lld) ON DUPLICATE KEY UPDATE "
	    "applied_pos = VALUES(applied_pos), "
	    "applied_commit_time = VALUES(applied_commit_time), "
	    "applied_txns = applied_txns + VALUES(applied_txns), "
	    "applied_changes = applied_changes + VALUES(applied_changes), "
	    "updated_at = CURRENT_TIMESTAMP(6)",
	    nl, pl, t, (long long)ntxns, (long long)nchanges);
	free(nl);
	free(pl);
	return sql;
}
