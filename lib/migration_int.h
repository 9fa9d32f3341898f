/*
 * migration_int: the migration's shared state and the helpers its parts
 * use (migration.c: the coordinator and the replication pipeline;
 * migration_ops.c: operator operations such as freeze; migration_check.c:
 * validation and the gate).  Not an API: include migration.h.
 */
#ifndef MIGD_MIGRATION_INT_H
#define MIGD_MIGRATION_INT_H

#include <pthread.h>

#include "apply.h"
#include "backfill.h"
#include "migration.h"
#include "myconn.h"
#include "mystream.h"
#include "pgcapture.h"
#include "pgconn.h"
#include "pgstore.h"
#include "store.h"
#include "pgstream.h"
#include "sink.h"
#include "spool.h"
#include "validate.h"

#define RETRY_MS         5000
#define CAUGHT_UP_BYTES  (1u << 20)
#define SLOT_POLL_USEC   1000000 /* also how fresh the source's WAL end is for lag */

/* Gate thresholds, copied from the config so a reload cannot pull them away mid-use. */
struct gate_limits {
	int64_t max_lag_ms, max_lag_bytes, max_failed, max_retry, max_slot;
	char require[128];
};

enum mig_op { OP_NONE, OP_FREEZE, OP_UNFREEZE, OP_CUTOVER, OP_ROLLBACK, OP_COMPLETE, OP_ABORT };

struct migration {
	/* settings, copied at start */
	char *name, *state_dir, *slot, *pub;
	char *include, *exclude, *insert_only; /* owned; [tables] lists */
	char *target_schema, *renames, *columns; /* owned; [tables] target names; NULL: unset */
	char *keylog_path;                     /* owned; state_dir/touched-<name>.log */
	char *src_ci, *repl_ci; /* owned; secret: never logged */
	char *tgt_ci;           /* owned, secret: libpq conninfo, or a MySQL/MariaDB dsn with password */
	enum migd_engine src_engine, tgt_engine;
	char *src_dsn, *src_password; /* owned; secret: a MySQL/MariaDB source's dsn as configured */
	uint32_t server_id;           /* ours as a binlog replica */
	int parallel;
	bool defer_indexes;
	int64_t chunk_rows, batch_txns, batch_bytes, batch_delay_ms, spool_segment;
	int64_t bf_rows_per_sec; /* [backfill] rows_per_second */

	pthread_t coord;
	volatile bool stop;     /* everything stops (migd is stopping) */
	volatile bool fwd_stop; /* the forward pipeline stops (cutover, abort) */
	volatile bool rev_stop; /* the reverse pipeline stops (rollback, complete) */
	volatile bool bf_paused;

	pthread_mutex_t lock; /* guards everything below that the loop reads */
	enum phase phase;
	char activity[160];
	char last_error[1024];
	int ntables;
	struct pos consistent;
	int64_t slot_retained; /* bytes of WAL the slot holds back; -1 unknown */
	/* a binlog source: bytes from the applied position to the end at the last poll; -1 unknown */
	int64_t binlog_behind;
	uint64_t source_lsn;   /* pg_current_wal_lsn() at the last poll */
	int64_t slot_polled_usec;

	struct mig_tableset ts; /* coordinator-owned; read-only once threads start */
	struct pgconn src;   /* coordinator's own source connection (PostgreSQL) */
	struct store store; /* the target: its migd state, and the coordinator's link to it */
	struct pgcapture cap;
	struct myconn mysrc, mysnap;  /* MySQL/MariaDB source: coordinator's link; the snapshot */
	struct mystream_opts myopts;
	json_t *source_info;          /* owned; what the capture check found (retention, ...) */
	struct spool *spool;
	struct sink *sink;
	struct backfill_progress bf;
	struct stream_progress sp;
	struct apply_progress ap;
	struct pgstream_opts sopts;
	struct apply_opts aopts;
	pthread_t stream_th, apply_th, monitor_th;
	bool stream_started, apply_started, monitor_started;

	/* reverse replication target -> source (after the flip) */
	char *rev_slot, *rev_pub;  /* owned */
	char *tgt_repl_ci;         /* owned; secret */
	struct mig_tableset rts;   /* reverse table set: target names as the source side */
	struct spool *rspool;
	struct sink *rsink;
	struct stream_progress rsp;
	struct apply_progress rap;
	struct pgstream_opts rsopts;
	struct apply_opts raopts;
	pthread_t rstream_th, rapply_th;
	bool rev_started;
	uint64_t rev_consistent; /* the target's position at the flip, pos_scalar() */
	struct pos rev_pos;      /* the same in full (a binlog target's GTID and file) */
	struct mystream_opts rmyopts; /* reverse from a MySQL/MariaDB target's binlog */
	uint64_t target_lsn;     /* pg_current_wal_lsn() on the target, polled once reversed */
	char *hook_flip, *hook_rollback; /* owned; copied at request time */
	int64_t hook_timeout_ms;
	bool dry_run;
	struct gate_limits limits; /* copied at request time */
	json_t *flip_report;       /* owned */

	/* operations the coordinator runs for the operator, one at a time */
	enum mig_op op;           /* requested, not finished */
	bool op_running;
	void (*op_done)(void *arg, json_t *result);
	void *op_arg;
	char *freeze_roles;       /* owned */
	int64_t drain_timeout_ms;
	volatile uint64_t freeze_lsn; /* final source position of the freeze; 0 when not frozen */
	json_t *freeze_report;    /* owned; last freeze's enforcement, drain, inventory */
	json_t *journal;          /* owned; migd.journal rows, oldest first */
	json_t *reverse_ready;    /* owned; can the target host the reverse slot (checked at freeze) */

	/* rehearsal of the reverse path: its own thread (the coordinator may be backfilling) */
	char *rehearse_slot; /* owned; rehearsal slot and publication name on the target */
	pthread_t rehearse_th;
	bool rehearse_started; /* a thread to join (event loop thread only) */
	bool rehearse_running; /* under lock: no cutover meanwhile */
	void (*rehearse_done)(void *arg, json_t *report);
	void *rehearse_arg;
	json_t *rehearsal; /* owned; the latest report, this run's or loaded from the target */
	/*
	 * Test-only: MIGD_CRASH_AT, read once at start; migd kills itself at
	 * that named point (crash_point() in util.h).  Owned; NULL when unset.
	 */
	char *crash_at;
	/* latest validation result per kind (bit index), for the gate */
	struct vsummary {
		bool have;
		bool passed;
		int64_t mismatches;
		uint64_t fence_min;
	} vlast[5];
	void (*vdone)(void *);
	void *vdone_arg;

	/* validation: one run at a time */
	pthread_t validate_th;
	bool validate_started;
	volatile bool validate_paused;
	struct validate_run vrun;
	struct validate_opts vopts;
	char vtable[160];
	struct conf_check *checks; /* owned copy for the run */
	int nchecks;
	int64_t rows_per_sec, rechecks, recheck_wait_ms, max_keys;
	struct metric_family *f_vmism;
	struct metric *m_vtime, *m_vpos;

	/* metrics (borrowed from the registry) */
	struct metric *m_lag_s, *m_lag_b, *m_latency, *m_changes, *m_txns, *m_failed, *m_parked,
		*m_retry, *m_schema, *m_bf_rows, *m_bf_eta, *m_bf_rate, *m_slot, *m_spool,
		*m_pos_received, *m_pos_flushed, *m_pos_applied;
	struct metric_family *f_chunks;
	struct metric *m_rlag, *m_rchanges, *m_rfailed;
};

/* Snapshot of the numbers status and metrics derive from. */
struct numbers {
	enum phase phase;
	int64_t lag_bytes;
	double lag_seconds;
	bool idle;
	int64_t bf_total, bf_done, bf_running, bf_failed, bf_rows, bf_est;
	double bf_rate, bf_eta;
	struct spool_stats spool;
	bool have_spool;
};

/* The source is MySQL/MariaDB (binlog), not PostgreSQL (slot). */
static inline bool mig_binlog_source(const struct migration *m)
{
	return m->src_engine != ENGINE_POSTGRESQL;
}
/* The target is MySQL/MariaDB: its state, sink, freeze and reverse stream are MariaDB's. */
static inline bool mig_my_target(const struct migration *m)
{
	return m->tgt_engine != ENGINE_POSTGRESQL;
}
/* A target position scalar (LSN, or binlog file seq << 32 | offset) as a position / text. */
struct pos mig_tgt_pos(const struct migration *m, uint64_t v);
const char *mig_tgt_text(const struct migration *m, uint64_t v, char *buf, size_t n);
/* A source position scalar (pos_scalar) as text, in the source's own form. */
const char *mig_src_text(const struct migration *m, uint64_t v, char *buf, size_t n);
struct pos mig_src_pos(const struct migration *m, uint64_t v);

void mig_activity(struct migration *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mig_report(struct migration *m, const struct err *err);
void mig_clear_error(struct migration *m);
bool mig_ensure(struct pgconn *c, const char *label, const char *ci, struct err *err);
/* The same for a MySQL/MariaDB source connection (m's dsn and password). */
bool mig_my_ensure(struct myconn *c, const char *label, const struct migration *m,
		   struct err *err);
/* The one place the phase changes (legal transitions, journaled first). */
bool mig_set_phase_at(struct migration *m, enum phase to, const char *reason, uint64_t src_lsn);
bool mig_set_phase(struct migration *m, enum phase to, const char *reason);
void mig_numbers(struct migration *m, struct numbers *n);
int64_t mig_lag_bytes_locked(struct migration *m, bool *idle);
void mig_run_op(struct migration *m);
json_t *mig_gate_eval(struct migration *m, const struct gate_limits *l);
void mig_gate_limits(const struct migd_conf *c, struct gate_limits *l);
/* True once a pipeline's sink holds every change of its source up to lsn. */
bool mig_pipeline_applied_past(struct stream_progress *sp, struct spool *spool,
			       struct apply_progress *ap, uint64_t lsn);
void mig_start_forward(struct migration *m);
void mig_stop_forward(struct migration *m);
bool mig_start_reverse(struct migration *m, struct err *err);
void mig_stop_reverse(struct migration *m);
/*
 * rts from ts: the target's tables as the reverse source (a MySQL/MariaDB
 * target's catalog read like a source's), the source's names as its sink.
 */
bool mig_build_reverse_tables(struct migration *m, struct err *err);
void mig_free_checks(struct migration *m);
/*
 * MySQL/MariaDB source (migration_my.c): the target's sequences continue
 * after the source's AUTO_INCREMENT counters (*n: how many were set); can
 * the reverse sink write through the source's read_only ({ok, detail}).
 */
bool mig_my_sequences(struct migration *m, int *n, struct err *err);
/*
 * A MySQL/MariaDB target's AUTO_INCREMENT counters moved past the source's
 * (its counters, or a PostgreSQL source's sequences), at the flip before
 * the reverse position is taken (*n: how many were set).
 */
bool mig_my_target_counters(struct migration *m, int *n, struct err *err);
/* At a rollback to a PostgreSQL source: its sequences from a MySQL/MariaDB target's counters. */
bool mig_my_source_sequences(struct migration *m, int *n, struct err *err);
json_t *mig_my_reverse_ready(struct migration *m);
/* Removes what a rehearsal cut off by a crash left on the target (best effort, logged). */
void mig_rehearse_leftovers(struct migration *m);
void mig_validation_metrics(struct migration *m);

#endif
