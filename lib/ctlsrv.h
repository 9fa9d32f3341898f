/*
 * ctlsrv: the control socket transport.  A Unix stream socket on the event
 * loop (never blocks it) that reads newline-delimited requests, checks the
 * peer's credentials (SO_PEERCRED, SO_PEERGROUPS), hands each request to
 * ctl_dispatch() and writes one reply line.  One request per connection is
 * in flight at a time; later lines wait in the buffer.
 *
 * Limits that keep a bad client from hurting the daemon: line length
 * (CTL_MAX_LINE, then too_large and close), max clients (busy and close),
 * idle timeout (close).  Owns the listening socket and every connection;
 * unlinks the socket path on free.
 */
#ifndef MIGD_CTLSRV_H
#define MIGD_CTLSRV_H

#include <event2/event.h>
#include <stdbool.h>

#include "ctlproto.h"

struct ctlsrv;

struct ctlsrv_limits {
	const char *group; /* may mutate; NULL: no group besides root and our uid */
	int max_clients;
	int idle_timeout_ms;
};

/*
 * Creates the socket at path (mode 0660; group owner socket_group when not
 * NULL, else ours) and starts accepting.  Who can connect is decided by the
 * file mode; who may mutate by the peer's credentials and limits->group.  A stale socket file is replaced; a live one
 * (another daemon answering) is an error.  On failure returns NULL and
 * *err is a malloc'ed message (caller frees).  Caller frees with
 * ctlsrv_free().
 */
struct ctlsrv *ctlsrv_start(struct event_base *base, const char *path,
			    const char *socket_group, const struct ctlsrv_limits *limits, const struct ctl_cmd *table, void *ctx,
			    char **err);

/* Applies reloaded limits; returns false and sets *err if the group is unknown. */
bool ctlsrv_set_limits(struct ctlsrv *srv, const struct ctlsrv_limits *limits, char **err)
	__attribute__((warn_unused_result));

int ctlsrv_client_count(const struct ctlsrv *srv);

/* Stops accepting, drops every connection, unlinks the socket.  NULL-safe. */
void ctlsrv_free(struct ctlsrv *srv);

#endif
