/* pgstore: migd's state tables in a PostgreSQL target (see pgstore.h). */
#include "pgstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const schema_sql =
	"CREATE SCHEMA IF NOT EXISTS migd;"
	"CREATE TABLE IF NOT EXISTS migd.migration ("
	"  name text PRIMARY KEY,"
	"  phase text NOT NULL DEFAULT 'init',"
	"  owner text NOT NULL DEFAULT 'source',"
	"  source_engine text NOT NULL,"
	"  slot_name text, publication text,"
	"  consistent_pos text,"
	"  captured_at timestamptz, backfill_done_at timestamptz,"
	"  created_at timestamptz NOT NULL DEFAULT now(),"
	"  updated_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE IF NOT EXISTS migd.journal ("
	"  id bigserial PRIMARY KEY,"
	"  name text NOT NULL,"
	"  at timestamptz NOT NULL DEFAULT clock_timestamp(),"
	"  from_phase text, to_phase text NOT NULL,"
	"  actor text NOT NULL, reason text NOT NULL,"
	"  source_pos text, target_pos text,"
	"  owner_before text, owner_after text);"
	"CREATE TABLE IF NOT EXISTS migd.chunks ("
	"  name text NOT NULL, table_name text NOT NULL, chunk_no int NOT NULL,"
	"  lo text[], hi text[],"
	"  state text NOT NULL DEFAULT 'pending',"
	"  rows bigint, checksum text,"
	"  transform_version int NOT NULL,"
	"  attempts int NOT NULL DEFAULT 0,"
	"  started_at timestamptz, finished_at timestamptz, error text,"
	"  PRIMARY KEY (name, table_name, chunk_no));"
	"CREATE TABLE IF NOT EXISTS migd.progress ("
	"  name text PRIMARY KEY,"
	"  applied_pos text NOT NULL,"
	"  applied_commit_time timestamptz,"
	"  applied_txns bigint NOT NULL DEFAULT 0,"
	"  applied_changes bigint NOT NULL DEFAULT 0,"
	"  updated_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE IF NOT EXISTS migd.parked ("
	"  id bigserial PRIMARY KEY,"
	"  name text NOT NULL, table_name text NOT NULL,"
	"  source_pos text NOT NULL, change jsonb NOT NULL,"
	"  reason text NOT NULL, parked_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE IF NOT EXISTS migd.failed_records ("
	"  id bigserial PRIMARY KEY,"
	"  name text NOT NULL, table_name text NOT NULL,"
	"  source_pos text NOT NULL, key jsonb, change jsonb NOT NULL,"
	"  error text NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(),"
	"  resolved_at timestamptz);"
	"CREATE TABLE IF NOT EXISTS migd.validation ("
	"  id bigserial PRIMARY KEY,"
	"  name text NOT NULL, kinds text NOT NULL, status text NOT NULL,"
	"  mismatches bigint NOT NULL, position_min text, position_max text,"
	"  results jsonb NOT NULL, finished_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE IF NOT EXISTS migd.freeze_grants ("
	"  name text NOT NULL, side text NOT NULL, role text NOT NULL,"
	"  table_name text NOT NULL, privilege text NOT NULL,"
	"  PRIMARY KEY (name, side, role, table_name, privilege));"
	"CREATE TABLE IF NOT EXISTS migd.freeze_violations ("
	"  id bigserial PRIMARY KEY, name text NOT NULL, freeze_pos text NOT NULL,"
	"  source_pos text NOT NULL, xid bigint, origin text, table_name text,"
	"  detected_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE IF NOT EXISTS migd.rehearsal ("
	"  id bigserial PRIMARY KEY, name text NOT NULL, phase text NOT NULL,"
	"  passed bool NOT NULL, report jsonb NOT NULL,"
	"  finished_at timestamptz NOT NULL DEFAULT now());"
	"ALTER TABLE migd.migration ADD COLUMN IF NOT EXISTS freeze_pos text;"
	"ALTER TABLE migd.migration ADD COLUMN IF NOT EXISTS pending_op text;"
	"ALTER TABLE migd.migration ADD COLUMN IF NOT EXISTS reverse_pos text;"
	/* The target held no row of the chunk's table when the plan committed. */
	"ALTER TABLE migd.chunks ADD COLUMN IF NOT EXISTS target_empty bool NOT NULL DEFAULT false;"
	/* A table without a key: the source position its copy holds for (bftarget.h). */
	"ALTER TABLE migd.chunks ADD COLUMN IF NOT EXISTS copied_at text;"
	"CREATE TABLE IF NOT EXISTS migd.deferred_indexes ("
	"  name text NOT NULL, table_name text NOT NULL, index_name text NOT NULL,"
	"  target_table text NOT NULL,"
	"  kind text NOT NULL,"
	"  index_def text NOT NULL,"
	"  constraint_sql text, constraint_def text,"
	"  unique_cols text,"
	"  deferred_at timestamptz NOT NULL DEFAULT now(),"
	"  PRIMARY KEY (name, table_name, index_name));";

const char *const pgstore_progress_sql =
	"INSERT INTO migd.progress AS p (name, applied_pos, applied_commit_time, applied_txns, "
	"  applied_changes) "
	"VALUES ($1, $2, to_timestamp($3::float8 / 1e6), $4, $5) "
	"ON CONFLICT (name) DO UPDATE SET applied_pos = EXCLUDED.applied_pos, "
	"  applied_commit_time = EXCLUDED.applied_commit_time, "
	"  applied_txns = p.applied_txns + EXCLUDED.applied_txns, "
	"  applied_changes = p.applied_changes + EXCLUDED.applied_changes, updated_at = now()";

bool pgstore_init(struct pgconn *tgt, struct err *err)
{
	/* Concurrent CREATE IF NOT EXISTS can race on catalogs; one lock orders them. */
	return pgconn_exec(tgt, "BEGIN; SELECT pg_advisory_xact_lock(7133001);", err) &&
	       pgconn_exec(tgt, schema_sql, err) && pgconn_exec(tgt, "COMMIT", err);
}

bool pgstore_load(struct pgconn *tgt, const char *name, struct store_migration *out,
		  struct err *err)
{
	const char *params[] = {name};
	memset(out, 0, sizeof(*out));
	out->consistent = pos_none();
	PGresult *r = pgconn_query(tgt,
				   "SELECT phase, coalesce(slot_name, ''), coalesce(publication, ''), "
				   "  coalesce(consistent_pos, 'none'), backfill_done_at IS NOT NULL, "
				   "  coalesce(freeze_pos, 'none'), coalesce(pending_op, ''), "
				   "  coalesce(reverse_pos, 'none') "
				   "FROM migd.migration WHERE name = $1",
				   1, params, err);
	if (r == NULL)
		return false;
	if (PQntuples(r) == 1) {
		const char *perr = NULL;
		out->exists = true;
		if (!phase_parse(PQgetvalue(r, 0, 0), &out->phase)) {
			err_set(err, "target: migd.migration has unknown phase '%s'",
				PQgetvalue(r, 0, 0));
			PQclear(r);
			return false;
		}
		snprintf(out->slot, sizeof(out->slot), "%s", PQgetvalue(r, 0, 1));
		snprintf(out->publication, sizeof(out->publication), "%s", PQgetvalue(r, 0, 2));
		if (!pos_parse(PQgetvalue(r, 0, 3), &out->consistent, &perr)) {
			err_set(err, "target: migd.migration consistent_pos '%s': %s",
				PQgetvalue(r, 0, 3), perr);
			PQclear(r);
			return false;
		}
		out->backfill_done = PQgetvalue(r, 0, 4)[0] == 't';
		if (!pos_parse(PQgetvalue(r, 0, 5), &out->freeze_pos, &perr))
			out->freeze_pos = pos_none();
		snprintf(out->pending_op, sizeof(out->pending_op), "%s", PQgetvalue(r, 0, 6));
		if (!pos_parse(PQgetvalue(r, 0, 7), &out->reverse_pos, &perr))
			out->reverse_pos = pos_none();
	}
	PQclear(r);
	return true;
}

bool pgstore_create(struct pgconn *tgt, const char *name, const char *source_engine,
		    const char *slot, const char *publication, struct err *err)
{
	const char *params[] = {name, source_engine, slot, publication};
	return pgconn_exec_params(tgt,
				  "INSERT INTO migd.migration (name, source_engine, slot_name, "
				  "publication) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
				  4, params, err);
}

static const char *const journal_sql =
	"INSERT INTO migd.journal (name, from_phase, to_phase, actor, reason, source_pos, "
	"  target_pos, owner_before, owner_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

static bool journal(struct pgconn *tgt, const char *name, enum phase from, enum phase to,
		    const char *actor, const char *reason, const struct pos *src,
		    const struct pos *dst, struct err *err)
{
	char sp[POS_TEXT_MAX], tp[POS_TEXT_MAX];
	struct pos none = pos_none();
	const char *params[] = {name,
				phase_name(from),
				phase_name(to),
				actor,
				reason,
				pos_format(src ? src : &none, sp, sizeof(sp)),
				pos_format(dst ? dst : &none, tp, sizeof(tp)),
				owner_name(phase_owner(from)),
				owner_name(phase_owner(to))};
	return pgconn_exec_params(tgt, journal_sql, 9, params, err);
}

bool pgstore_set_phase(struct pgconn *tgt, const char *name, enum phase from, enum phase to,
		       const char *actor, const char *reason, const struct pos *source_pos,
		       const struct pos *target_pos, struct err *err)
{
	const char *params[] = {name, phase_name(to), owner_name(phase_owner(to)),
				to == PHASE_CATCHING_UP ? "t" : "f"};
	if (!pgconn_exec(tgt, "BEGIN", err))
		return false;
	if (!pgconn_exec_params(tgt,
				"UPDATE migd.migration SET phase = $2, owner = $3, updated_at = now(),"
				"  backfill_done_at = CASE WHEN $4::bool THEN now() "
				"                     ELSE backfill_done_at END "
				"WHERE name = $1",
				4, params, err))
		goto err;
	if (!journal(tgt, name, from, to, actor, reason, source_pos, target_pos, err))
		goto err;
	return pgconn_exec(tgt, "COMMIT", err);
err:
	if (!pgconn_exec(tgt, "ROLLBACK", &(struct err){{0}})) {
	}
	return false;
}

bool pgstore_set_captured(struct pgconn *tgt, const char *name, const struct pos *consistent,
			  const char *reason, struct err *err)
{
	char p[POS_TEXT_MAX];
	const char *params[] = {name, pos_format(consistent, p, sizeof(p))};
	if (!pgconn_exec(tgt, "BEGIN", err))
		return false;
	if (!pgconn_exec_params(tgt,
				"UPDATE migd.migration SET consistent_pos = $2, captured_at = now(), "
				"  phase = 'captured', updated_at = now() WHERE name = $1",
				2, params, err))
		goto err;
	if (!journal(tgt, name, PHASE_INIT, PHASE_CAPTURED, "migd", reason, consistent, NULL, err))
		goto err;
	return pgconn_exec(tgt, "COMMIT", err);
err:
	if (!pgconn_exec(tgt, "ROLLBACK", &(struct err){{0}})) {
	}
	return false;
}

bool pgstore_set_pending(struct pgconn *tgt, const char *name, const char *op,
			 const struct pos *freeze_pos, struct err *err)
{
	char fp[POS_TEXT_MAX];
	const char *params[] = {name, op, freeze_pos ? pos_format(freeze_pos, fp, sizeof(fp)) : NULL};
	return pgconn_exec_params(tgt,
				  "UPDATE migd.migration SET pending_op = $2, "
				  "  freeze_pos = coalesce($3, freeze_pos), updated_at = now() "
				  "WHERE name = $1",
				  3, params, err);
}

bool pgstore_applied(struct pgconn *tgt, const char *name, struct pos *applied,
		     int64_t *commit_us, struct err *err)
{
	const char *params[] = {name};
	*applied = pos_none();
	if (commit_us)
		*commit_us = 0;
	PGresult *r = pgconn_query(tgt,
				   "SELECT applied_pos, coalesce((extract(epoch FROM applied_commit_time) "
				   "  * 1e6)::bigint, 0) FROM migd.progress WHERE name = $1",
				   1, params, err);
	if (r == NULL)
		return false;
	bool ok = true;
	if (PQntuples(r) == 1) {
		const char *perr;
		if (!pos_parse(PQgetvalue(r, 0, 0), applied, &perr)) {
			err_set(err, "target: migd.progress applied_pos '%s': %s", PQgetvalue(r, 0, 0),
				perr);
			ok = false;
		}
		if (commit_us)
			*commit_us = atoll(PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return ok;
}

bool pgstore_set_reverse(struct pgconn *tgt, const char *name, const struct pos *rev,
			 struct err *err)
{
	char p[POS_TEXT_MAX];
	const char *params[] = {name, pos_format(rev, p, sizeof(p))};
	return pgconn_exec_params(tgt,
				  "UPDATE migd.migration SET reverse_pos = $2, updated_at = now() "
				  "WHERE name = $1",
				  2, params, err);
}

bool pgstore_add_rehearsal(struct pgconn *tgt, const char *name, const char *phase, bool passed,
			   const char *report, struct err *err)
{
	const char *params[] = {name, phase, passed ? "t" : "f", report};
	return pgconn_exec_params(tgt,
				  "INSERT INTO migd.rehearsal (name, phase, passed, report) "
				  "VALUES ($1, $2, $3, $4)",
				  4, params, err);
}

bool pgstore_last_rehearsal(struct pgconn *tgt, const char *name, char **report, struct err *err)
{
	const char *params[] = {name};
	*report = NULL;
	PGresult *r = pgconn_query(tgt,
				   "SELECT report::text FROM migd.rehearsal WHERE name = $1 "
				   "ORDER BY id DESC LIMIT 1",
				   1, params, err);
	if (r == NULL)
		return false;
	if (PQntuples(r) == 1)
		*report = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return true;
}

bool pgstore_journal(struct pgconn *tgt, const char *name, json_t **out, struct err *err)
{
	const char *p[] = {name};
	*out = NULL;
	PGresult *r = pgconn_query(tgt,
				   "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
				   "  coalesce(from_phase, ''), to_phase, actor, reason, "
				   "  coalesce(source_pos, ''), coalesce(owner_before, ''), "
				   "  coalesce(owner_after, ''), coalesce(target_pos, 'none') "
				   "FROM migd.journal WHERE name = $1 ORDER BY id",
				   1, p, err);
	if (r == NULL)
		return false;
	json_t *j = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		const char *v[9];
		for (int k = 0; k < 9; k++)
			v[k] = PQgetvalue(r, i, k);
		json_array_append_new(j, store_journal_entry(v));
	}
	PQclear(r);
	*out = j;
	return true;
}
