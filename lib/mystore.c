/* mystore: migd's sink tables in a MySQL/MariaDB target (see mystore.h). */
#include "mystore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * `key`, `change` and `rows` are reserved words in MySQL: always
 * backquoted.  Positions are TEXT: a GTID position with 16 domains is
 * ~800 characters.  Key columns stay within InnoDB's 3072-byte index limit
 * in utf8mb4 (name 255 + table_name 300 characters).
 */
#define MY_TABLE_OPTS ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"
#define MY_NOW        "DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'UTC'"

static const char *const sink_schema_sql =
    "CREATE DATABASE IF NOT EXISTS migd CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
    "CREATE TABLE IF NOT EXISTS migd.progress ("
    "  name VARCHAR(255) NOT NULL PRIMARY KEY,"
    "  applied_pos TEXT NOT NULL,"
    "  applied_commit_time DATETIME(6) NULL COMMENT 'UTC',"
    "  applied_txns BIGINT NOT NULL DEFAULT 0,"
    "  applied_changes BIGINT NOT NULL DEFAULT 0,"
    "  updated_at " MY_NOW MY_TABLE_OPTS
    "CREATE TABLE IF NOT EXISTS migd.parked ("
    "  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    "  name VARCHAR(255) NOT NULL, table_name TEXT NOT NULL,"
    "  source_pos TEXT NOT NULL, `change` JSON NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  parked_at " MY_NOW ","
    "  KEY (name)" MY_TABLE_OPTS
    "CREATE TABLE IF NOT EXISTS migd.failed_records ("
    "  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    "  name VARCHAR(255) NOT NULL, table_name TEXT NOT NULL,"
    "  source_pos TEXT NOT NULL, `key` JSON NULL, `change` JSON NOT NULL,"
    "  error TEXT NOT NULL,"
    "  recorded_at " MY_NOW ","
    "  resolved_at DATETIME(6) NULL COMMENT 'UTC',"
    "  KEY (name)" MY_TABLE_OPTS
    "CREATE TABLE IF NOT EXISTS migd.freeze_violations ("
    "  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    "  name VARCHAR(255) NOT NULL, freeze_pos TEXT NOT NULL,"
    "  source_pos TEXT NOT NULL, xid BIGINT NULL, origin TEXT NULL, table_name TEXT NULL,"
    "  detected_at " MY_NOW ","
    "  KEY (name)" MY_TABLE_OPTS;

/* The rest of pgstore's tables, for a migration whose target is MySQL/MariaDB. */
static const char *const coord_schema_sql =
    "CREATE TABLE IF NOT EXISTS migd.migration ("
    "  name VARCHAR(255) NOT NULL PRIMARY KEY,"
    "  phase VARCHAR(32) NOT NULL DEFAULT 'init',"
    "  owner VARCHAR(32) NOT NULL DEFAULT 'source',"
    "  source_engine VARCHAR(32) NOT NULL,"
    "  slot_name TEXT NULL, publication TEXT NULL,"
    "  consistent_pos TEXT NULL,"
    "  captured_at DATETIME(6) NULL COMMENT 'UTC',"
    "  backfill_done_at DATETIME(6) NULL COMMENT 'UTC',"
    "  created_at " MY_NOW ","
    "  updated_at " MY_NOW ","
    "  freeze_pos TEXT NULL, pending_op VARCHAR(32) NULL, reverse_pos TEXT NULL" MY_TABLE_OPTS
    "CREATE TABLE IF NOT EXISTS migd.journal ("
    "  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    "  name VARCHAR(255) NOT NULL,"
    "  at " MY_NOW ","
    "  from_phase VARCHAR(32) NULL, to_phase VARCHAR(32) NOT NULL,"
    "  actor TEXT NOT NULL, reason TEXT NOT NULL,"
    "  source_pos TEXT NULL, target_pos TEXT NULL,"
    "  owner_before VARCHAR(32) NULL, owner_after VARCHAR(32) NULL,"
    "  KEY (name)" MY_TABLE_OPTS
    /* lo, hi: the chunk bounds as PostgreSQL text[] literals (keyrange.h), as in pgstore. */
    "CREATE TABLE IF NOT EXISTS migd.chunks ("
    "  name VARCHAR(255) NOT NULL, table_name VARCHAR(300) NOT NULL, chunk_no INT NOT NULL,"
    "  lo LONGTEXT NULL, hi LONGTEXT NULL,"
    "  state VARCHAR(16) NOT NULL DEFAULT 'pending',"
    "  `rows` BIGINT NULL, checksum TEXT NULL,"
    "  transform_version INT NOT NULL,"
    "  attempts INT NOT NULL DEFAULT 0,"
    "  started_at DATETIME(6) NULL COMMENT 'UTC', finished_at DATETIME(6) NULL COMMENT 'UTC',"
    "  error TEXT NULL,"
    "  target_empty BOOL NOT NULL DEFAULT FALSE,"
    "  copied_at TEXT NULL," /* a table without a key: where its copy stands (bftarget.h) */
    "  PRIMARY KEY (name, table_name, chunk_no)" MY_TABLE_OPTS
    "CREATE TABLE IF NOT EXISTS migd.validation ("
    "  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    "  name VARCHAR(255) NOT NULL, kinds TEXT NOT NULL, status VARCHAR(32) NOT NULL,"
    "  mismatches BIGINT NOT NULL, position_min TEXT NULL, position_max TEXT NULL,"
    "  results JSON NOT NULL,"
    "  finished_at " MY_NOW ","
    "  KEY (name)" MY_TABLE_OPTS
    "CREATE TABLE IF NOT EXISTS migd.rehearsal ("
    "  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    "  name VARCHAR(255) NOT NULL, phase VARCHAR(32) NOT NULL,"
    "  passed BOOL NOT NULL, report JSON NOT NULL,"
    "  finished_at " MY_NOW ","
    "  KEY (name)" MY_TABLE_OPTS;

static const char *const sink_tables = "'progress', 'parked', 'failed_records', 'freeze_violations'";
static const char *const coord_tables = "'migration', 'journal', 'chunks', 'validation', 'rehearsal'";

/*
 * CREATE ... IF NOT EXISTS is binlogged even when it does nothing: look
 * first, so a reconnect does not put DDL into the target's binlog.
 */
static bool have_tables(struct myconn *c, const char *list, int n, bool *have, struct err *err)
{
	char *sql = xasprintf("SELECT count(*) FROM information_schema.TABLES "
			      "WHERE TABLE_SCHEMA = 'migd' AND TABLE_NAME IN (%s)",
			      list);
	char *v = myconn_query_value(c, sql, err);
	free(sql);
	if (v == NULL)
		return false;
	*have = atoi(v) == n;
	free(v);
	return true;
}

bool mystore_init_sink(struct myconn *c, struct err *err)
{
	bool have;
	return have_tables(c, sink_tables, 4, &have, err) &&
	       (have || myconn_exec(c, sink_schema_sql, err));
}

bool mystore_init(struct myconn *c, struct err *err)
{
	bool have;
	return mystore_init_sink(c, err) && have_tables(c, coord_tables, 5, &have, err) &&
	       (have || myconn_exec(c, coord_schema_sql, err));
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

/* --- the coordinator's state (a MySQL/MariaDB target) ------------------------------ */

/* name as a quoted literal (caller frees). */
static char *lit(struct myconn *c, const char *s)
{
	return s ? myconn_literal(c, s, strlen(s)) : xstrdup("NULL");
}

static char *pos_lit(struct myconn *c, const struct pos *p)
{
	char b[POS_TEXT_MAX];
	struct pos none = pos_none();
	return lit(c, pos_format(p ? p : &none, b, sizeof(b)));
}

static bool rollback(struct myconn *c)
{
	struct err e;
	return myconn_exec(c, "ROLLBACK", &e);
}

bool mystore_create(struct myconn *c, const char *name, const char *source_engine,
		    const char *slot, const char *publication, struct err *err)
{
	char *n = lit(c, name), *e = lit(c, source_engine), *s = lit(c, slot),
	     *p = lit(c, publication);
	char *sql = xasprintf("INSERT IGNORE INTO migd.migration (name, source_engine, slot_name, "
			      "publication) VALUES (%s, %s, %s, %s)",
			      n, e, s, p);
	bool ok = myconn_exec(c, sql, err);
	free(sql);
	free(n);
	free(e);
	free(s);
	free(p);
	return ok;
}

bool mystore_load(struct myconn *c, const char *name, struct store_migration *out, struct err *err)
{
	memset(out, 0, sizeof(*out));
	out->consistent = out->freeze_pos = out->reverse_pos = pos_none();
	char *n = lit(c, name);
	char *sql = xasprintf("SELECT phase, COALESCE(slot_name, ''), COALESCE(publication, ''), "
			      "  COALESCE(consistent_pos, 'none'), backfill_done_at IS NOT NULL, "
			      "  COALESCE(freeze_pos, 'none'), COALESCE(pending_op, ''), "
			      "  COALESCE(reverse_pos, 'none') "
			      "FROM migd.migration WHERE name = %s",
			      n);
	free(n);
	MYSQL_RES *r = myconn_query(c, sql, err);
	free(sql);
	if (r == NULL)
		return false;
	MYSQL_ROW row = mysql_fetch_row(r);
	bool ok = true;
	const char *perr = NULL;
	if (row != NULL) {
		out->exists = true;
		if (!phase_parse(row[0], &out->phase)) {
			err_set(err, "%s: migd.migration has unknown phase '%s'", c->label, row[0]);
			ok = false;
		} else if (!pos_parse(row[3], &out->consistent, &perr)) {
			err_set(err, "%s: migd.migration consistent_pos '%s': %s", c->label, row[3],
				perr);
			ok = false;
		} else {
			snprintf(out->slot, sizeof(out->slot), "%s", row[1]);
			snprintf(out->publication, sizeof(out->publication), "%s", row[2]);
			out->backfill_done = row[4][0] == '1';
			if (!pos_parse(row[5], &out->freeze_pos, &perr))
				out->freeze_pos = pos_none();
			snprintf(out->pending_op, sizeof(out->pending_op), "%s", row[6]);
			if (!pos_parse(row[7], &out->reverse_pos, &perr))
				out->reverse_pos = pos_none();
		}
	}
	mysql_free_result(r);
	return ok;
}

static char *journal_sql(struct myconn *c, const char *name, enum phase from, enum phase to,
			 const char *actor, const char *reason, const struct pos *src,
			 const struct pos *dst)
{
	char *v[] = {lit(c, name),
		     lit(c, phase_name(from)),
		     lit(c, phase_name(to)),
		     lit(c, actor),
		     lit(c, reason),
		     pos_lit(c, src),
		     pos_lit(c, dst),
		     lit(c, owner_name(phase_owner(from))),
		     lit(c, owner_name(phase_owner(to)))};
	char *sql = xasprintf("INSERT INTO migd.journal (name, from_phase, to_phase, actor, reason, "
			      "source_pos, target_pos, owner_before, owner_after) "
			      "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
			      v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		free(v[i]);
	return sql;
}

/* Runs update and the journal row in one transaction. */
static bool update_journaled(struct myconn *c, char *update, char *journal, struct err *err)
{
	bool ok = myconn_exec(c, "START TRANSACTION", err) && myconn_exec(c, update, err) &&
		  myconn_exec(c, journal, err) && myconn_exec(c, "COMMIT", err);
	if (!ok && !rollback(c)) {
	}
	free(update);
	free(journal);
	return ok;
}

bool mystore_set_phase(struct myconn *c, const char *name, enum phase from, enum phase to,
		       const char *actor, const char *reason, const struct pos *source_pos,
		       const struct pos *target_pos, struct err *err)
{
	char *n = lit(c, name), *p = lit(c, phase_name(to)), *o = lit(c, owner_name(phase_owner(to)));
	char *update = xasprintf(
	    "UPDATE migd.migration SET phase = %s, owner = %s, updated_at = CURRENT_TIMESTAMP(6)%s "
	    "WHERE name = %s",
	    p, o, to == PHASE_CATCHING_UP ? ", backfill_done_at = CURRENT_TIMESTAMP(6)" : "", n);
	free(n);
	free(p);
	free(o);
	return update_journaled(
	    c, update, journal_sql(c, name, from, to, actor, reason, source_pos, target_pos), err);
}

bool mystore_set_captured(struct myconn *c, const char *name, const struct pos *consistent,
			  const char *reason, struct err *err)
{
	char *n = lit(c, name), *p = pos_lit(c, consistent);
	char *update = xasprintf("UPDATE migd.migration SET consistent_pos = %s, "
				 "captured_at = CURRENT_TIMESTAMP(6), phase = 'captured', "
				 "updated_at = CURRENT_TIMESTAMP(6) WHERE name = %s",
				 p, n);
	free(n);
	free(p);
	return update_journaled(c, update,
				journal_sql(c, name, PHASE_INIT, PHASE_CAPTURED, "migd", reason,
					    consistent, NULL),
				err);
}

bool mystore_set_pending(struct myconn *c, const char *name, const char *op,
			 const struct pos *freeze_pos, struct err *err)
{
	char *n = lit(c, name), *o = lit(c, op), *f = freeze_pos ? pos_lit(c, freeze_pos) : NULL;
	char *sql = xasprintf("UPDATE migd.migration SET pending_op = %s, "
			      "freeze_pos = COALESCE(%s, freeze_pos), "
			      "updated_at = CURRENT_TIMESTAMP(6) WHERE name = %s",
			      o, f ? f : "NULL", n);
	bool ok = myconn_exec(c, sql, err);
	free(sql);
	free(n);
	free(o);
	free(f);
	return ok;
}

bool mystore_set_reverse(struct myconn *c, const char *name, const struct pos *rev,
			 struct err *err)
{
	char *n = lit(c, name), *p = pos_lit(c, rev);
	char *sql = xasprintf("UPDATE migd.migration SET reverse_pos = %s, "
			      "updated_at = CURRENT_TIMESTAMP(6) WHERE name = %s",
			      p, n);
	bool ok = myconn_exec(c, sql, err);
	free(sql);
	free(n);
	free(p);
	return ok;
}

bool mystore_add_rehearsal(struct myconn *c, const char *name, const char *phase, bool passed,
			   const char *report, struct err *err)
{
	char *n = lit(c, name), *p = lit(c, phase), *r = lit(c, report);
	char *sql = xasprintf("INSERT INTO migd.rehearsal (name, phase, passed, report) "
			      "VALUES (%s, %s, %s, %s)",
			      n, p, passed ? "TRUE" : "FALSE", r);
	bool ok = myconn_exec(c, sql, err);
	free(sql);
	free(n);
	free(p);
	free(r);
	return ok;
}

bool mystore_last_rehearsal(struct myconn *c, const char *name, char **report, struct err *err)
{
	*report = NULL;
	char *n = lit(c, name);
	char *sql = xasprintf(
	    "SELECT report FROM migd.rehearsal WHERE name = %s ORDER BY id DESC LIMIT 1", n);
	free(n);
	MYSQL_RES *r = myconn_query(c, sql, err);
	free(sql);
	if (r == NULL)
		return false;
	MYSQL_ROW row = mysql_fetch_row(r);
	if (row != NULL && row[0] != NULL)
		*report = xstrdup(row[0]);
	mysql_free_result(r);
	return true;
}

bool mystore_journal(struct myconn *c, const char *name, json_t **out, struct err *err)
{
	*out = NULL;
	char *n = lit(c, name);
	char *sql = xasprintf("SELECT DATE_FORMAT(at, '%%Y-%%m-%%dT%%H:%%i:%%sZ'), "
			      "  COALESCE(from_phase, ''), to_phase, actor, reason, "
			      "  COALESCE(source_pos, ''), COALESCE(owner_before, ''), "
			      "  COALESCE(owner_after, ''), COALESCE(target_pos, 'none') "
			      "FROM migd.journal WHERE name = %s ORDER BY id",
			      n);
	free(n);
	MYSQL_RES *r = myconn_query(c, sql, err);
	free(sql);
	if (r == NULL)
		return false;
	json_t *j = json_array();
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)) != NULL)
		json_array_append_new(j, store_journal_entry((const char *const *)row));
	mysql_free_result(r);
	*out = j;
	return true;
}
