/*
 * myfreeze: the write freeze on a MySQL/MariaDB server, with the server's
 * own mechanism: SET GLOBAL read_only = ON (ordinary users can no longer
 * write; users with READ ONLY ADMIN -- migd's own, replication -- still
 * can), then the sessions of the application users are ended (an open
 * transaction's COMMIT is refused once read_only is on; ending the session
 * says so at once).  Verified, never assumed: read_only is read back, and
 * the frozen users that can still write through it (READ ONLY ADMIN, which
 * ALL PRIVILEGES ON *.* includes, or SUPER on servers before 10.11) are
 * listed as not enforced; other users that can are listed too, as writers
 * whose writes still reach the binlog and show as freeze violations.
 * Users are matched by name on any host; privileges held through a role
 * are not seen.  Blocking (worker threads only).
 */
#ifndef MIGD_MYFREEZE_H
#define MIGD_MYFREEZE_H

#include <jansson.h>

#include "myconn.h"

/*
 * Freezes the server.  users: comma list of application user names whose
 * sessions are ended ("" ends none).  *report (new JSON): side (c's label),
 * read_only (as read back), sessions_ended, still_writable [{user, why}]
 * (frozen users that can write through read_only),
 * writers_through_read_only [{user, why}] (the other users that can),
 * inventory.
 */
bool myfreeze_enforce(struct myconn *c, const char *users, json_t **report, struct err *err)
    __attribute__((warn_unused_result));

/*
 * Whether c's own user can write through read_only (READ_ONLY ADMIN held
 * directly): what a reverse sink into a frozen server needs.
 */
bool myfreeze_self_writable(struct myconn *c, bool *yes, struct err *err)
    __attribute__((warn_unused_result));

/* True if read_only is still on (read back); else false with err saying so. */
bool myfreeze_verify(struct myconn *c, struct err *err) __attribute__((warn_unused_result));

/* Lifts the freeze: read_only back off. */
bool myfreeze_lift(struct myconn *c, struct err *err) __attribute__((warn_unused_result));

/*
 * The write inventory: sessions other than ours holding a transaction that
 * modified rows, or belonging to a frozen user and still connected: user,
 * client host, db, command, seconds in that state, rows modified.
 */
json_t *myfreeze_inventory(struct myconn *c, const char *users, struct err *err);

#endif
