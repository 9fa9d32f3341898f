/*
 * mycapture: capture on a MySQL/MariaDB source -- the preconditions the
 * binlog reader depends on, checked with clear errors, and a consistent
 * snapshot with the exact binlog position it stands at, taken without a
 * global lock (START TRANSACTION WITH CONSISTENT SNAPSHOT, then
 * binlog_snapshot_file/position and the matching GTID position).
 */
#ifndef MIGD_MYCAPTURE_H
#define MIGD_MYCAPTURE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "myconn.h"
#include "pos.h"

/*
 * Checks log_bin, binlog_format=ROW, binlog_row_image=FULL,
 * binlog_row_metadata=FULL, the replication privileges, that server_id
 * (ours as a replica) clashes with no server.  Every failed check is reported at once,
 * one per line.  *info (may be NULL; caller json_decref()s) gets what an
 * operator weighs against the migration's length: binlog retention,
 * binlog bytes on disk, the server's version and id.
 */
bool mycapture_check(struct myconn *c, uint32_t server_id, json_t **info, struct err *err)
    __attribute__((warn_unused_result));

/*
 * mycapture_check()'s parts on their own, for a rehearsal's steps: the
 * binlog settings (log_bin, ROW, FULL row image and metadata, no
 * compression), the replication privileges, a server_id that clashes with
 * neither the server's nor a connected replica's.  False with err naming
 * every problem ("label: problem; problem").
 */
bool mycapture_check_settings(struct myconn *c, struct err *err)
    __attribute__((warn_unused_result));
bool mycapture_check_grants(struct myconn *c, struct err *err) __attribute__((warn_unused_result));
bool mycapture_check_server_id(struct myconn *c, uint32_t server_id, struct err *err)
    __attribute__((warn_unused_result));

/*
 * Starts a consistent-snapshot transaction on c and returns the position
 * it stands at: the GTID position with its binlog coordinate
 * ("gtid:0-1-281@mariadb-bin.000003:1234"), or just the coordinate when the
 * server has written no GTID yet.  The transaction stays open: reads on c
 * see exactly the data up to *at.
 */
bool mycapture_snapshot(struct myconn *c, struct pos *at, struct err *err)
    __attribute__((warn_unused_result));

/* The server's current binlog end (SHOW MASTER STATUS), as a coordinate. */
bool mycapture_binlog_end(struct myconn *c, struct pos *end, struct err *err)
    __attribute__((warn_unused_result));

/*
 * Binlog bytes the server still holds from file `from` on (SHOW BINARY
 * LOGS), and whether that file is still there at all.
 */
bool mycapture_retained(struct myconn *c, const char *from, int64_t *bytes, bool *present,
			struct err *err) __attribute__((warn_unused_result));

/* A replica server id for a migration name: stable, in [2^30, 2^31). */
uint32_t mycapture_server_id(const char *name);

#endif
