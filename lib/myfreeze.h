/*
 * myfreeze: the write freeze on a MySQL/MariaDB server, with the server's
 * own mechanism: SET GLOBAL read_only = ON (ordinary users can no longer
 * write; users with READ ONLY ADMIN -- migd's own, replication -- still
 * can), then the sessions of the application users are ended so no open
 * transaction commits later.  Verified, never assumed: read_only is read
 * back, and the users that can still write through it (READ ONLY ADMIN,
 * SUPER on old servers, ALL PRIVILEGES ON *.*) are listed as not enforced;
 * their writes still reach the binlog and show as freeze violations.
 * Blocking (worker threads only).
 */
#ifndef MIGD_MYFREEZE_H
#define MIGD_MYFREEZE_H

#include <jansson.h>

#include "myconn.h"

/*
 * Freezes the server.  users: comma list of application user names whose
 * sessions are ended ("" ends none).  *report (new JSON): read_only (as
 * read back), sessions_ended, still_writable [{user, host, why}], inventory.
 */
bool myfreeze_enforce(struct myconn *c, const char *users, json_t **report, struct err *err)
    __attribute__((warn_unused_result));

/* Lifts the freeze: read_only back off. */
bool myfreeze_lift(struct myconn *c, struct err *err) __attribute__((warn_unused_result));

/*
 * The write inventory: sessions other than ours holding a transaction that
 * modified rows, or belonging to a frozen user and still connected: user,
 * client host, db, command, seconds in that state, rows modified.
 */
json_t *myfreeze_inventory(struct myconn *c, const char *users, struct err *err);

#endif
