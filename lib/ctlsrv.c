/*
 * ctlsrv: control socket transport (see ctlsrv.h).
 *
 * A connection is a bufferevent.  Reading is paused while a call is in
 * flight, so replies come back in request order.  A deferred call that
 * outlives its connection keeps a "conn == NULL" transport and its reply is
 * dropped when it arrives.
 */
#include "ctlsrv.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct ctl_conn;

struct ctlsrv {
	struct event_base *base;  /* borrowed */
	struct evconnlistener *listener;
	char *path;               /* owned */
	const struct ctl_cmd *table; /* borrowed */
	void *ctx;                /* borrowed */
	bool have_group;
	gid_t group;
	int max_clients;
	int idle_timeout_ms;
	int nclients;
	struct ctl_conn *conns; /* owned list */
};

struct ctl_conn {
	struct ctlsrv *srv;
	struct bufferevent *bev;
	struct ctl_peer peer;
	struct ctl_call *inflight; /* borrowed: a deferred call we wait on */
	bool close_after_write;
	struct ctl_conn *next;
};

static void conn_read_cb(struct bufferevent *bev, void *arg);

static void set_timeouts(struct ctl_conn *c)
{
	struct timeval tv = {c->srv->idle_timeout_ms / 1000, (c->srv->idle_timeout_ms % 1000) * 1000};
	/* Waiting on our own deferred work is not the client's idleness. */
	bufferevent_set_timeouts(c->bev, c->inflight ? NULL : &tv, &tv);
}

static void conn_free(struct ctl_conn *c)
{
	struct ctlsrv *srv = c->srv;
	for (struct ctl_conn **pp = &srv->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (c->inflight != NULL)
		c->inflight->transport = NULL; /* the reply will be dropped */
	bufferevent_free(c->bev);
	srv->nclients--;
	free(c);
}

static void call_free(struct ctl_call *call)
{
	ctl_request_clear(&call->req);
	free(call);
}

/* Queues reply on c; consumes it. */
static void conn_send(struct ctl_conn *c, json_t *reply)
{
	char *line = ctl_dump_line(reply);
	bufferevent_write(c->bev, line, strlen(line));
	free(line);
	json_decref(reply);
}

static void deliver(struct ctl_call *call, json_t *reply)
{
	struct ctl_conn *c = call->transport;
	if (c == NULL) {
		log_debug("control: dropping reply to '%s', client has gone", call->req.cmd);
		json_decref(reply);
		call_free(call);
		return;
	}
	c->inflight = NULL;
	conn_send(c, reply);
	call_free(call);
	set_timeouts(c);
	if (c->close_after_write)
		return; /* the client half-closed; write_cb frees after the flush */
	bufferevent_enable(c->bev, EV_READ);
	/* Lines that arrived meanwhile are already buffered. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		conn_read_cb(c->bev, c);
}

static void handle_line(struct ctl_conn *c, const char *line, size_t len)
{
	json_t *reply;
	struct ctl_call *call = xcalloc(1, sizeof(*call));

	call->peer = c->peer;
	call->deliver = deliver;
	call->transport = c;
	if (!ctl_request_parse(line, len, &call->req, &reply)) {
		conn_send(c, reply);
		call_free(call);
		return;
	}
	log_debug("control: cmd=%s uid=%u pid=%d", call->req.cmd, (unsigned)c->peer.uid,
		  (int)c->peer.pid);
	reply = ctl_dispatch(c->srv->table, c->srv->ctx, call);
	if (reply == NULL) {
		c->inflight = call; /* deferred: the handler will reply */
		bufferevent_disable(c->bev, EV_READ);
		set_timeouts(c);
		return;
	}
	conn_send(c, reply);
	call_free(call);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (c->inflight == NULL && !c->close_after_write) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > CTL_MAX_LINE) {
				conn_send(c, ctl_reply_error(CTL_ERR_TOO_LARGE,
							     "request line exceeds %d bytes",
							     CTL_MAX_LINE));
				c->close_after_write = true;
				bufferevent_disable(bev, EV_READ);
			}
			return;
		}
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len > 0)
			handle_line(c, line, len);
		free(line);
	}
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;
	if (c->close_after_write && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *c = arg;
	/* A client may half-close after its request: answer before closing. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    (c->inflight != NULL || evbuffer_get_length(bufferevent_get_output(bev)) > 0)) {
		c->close_after_write = true;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		log_info("control: closing idle client pid=%d", (int)c->peer.pid);
	else if (what & BEV_EVENT_ERROR)
		log_debug("control: client error: %s", strerror(EVUTIL_SOCKET_ERROR()));
	conn_free(c); /* EOF, error or timeout */
}

static bool peer_in_group(int fd, gid_t primary, gid_t group)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (primary == group)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == group)
			return true;
	return false;
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct ctlsrv *srv = arg;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		log_warn("control: cannot read peer credentials: %s", strerror(errno));
		close(fd);
		return;
	}
	if (srv->nclients >= srv->max_clients) {
		/* Best effort: the socket is fresh, so a short write fits. */
		json_t *busy = ctl_reply_error(CTL_ERR_BUSY, "too many control clients; try again");
		char *line = ctl_dump_line(busy);
		json_decref(busy);
		ssize_t w = send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)w;
		free(line);
		log_warn("control: refusing client pid=%d: %d clients connected", (int)cred.pid,
			 srv->nclients);
		close(fd);
		return;
	}
	struct ctl_conn *c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->peer.pid = cred.pid;
	c->peer.uid = cred.uid;
	c->peer.gid = cred.gid;
	c->peer.may_mutate = cred.uid == 0 || cred.uid == geteuid() ||
			     (srv->have_group && peer_in_group(fd, cred.gid, srv->group));
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	/* Read at most a little over one max line before we look at it. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, CTL_MAX_LINE + 2);
	set_timeouts(c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = srv->conns;
	srv->conns = c;
	srv->nclients++;
}

static bool resolve_group(const char *name, bool *have, gid_t *gid, char **err)
{
	*have = false;
	if (name == NULL || name[0] == '\0')
		return true;
	struct group *g = getgrnam(name);
	if (g == NULL) {
		*err = xasprintf("group '%s' does not exist", name);
		return false;
	}
	*have = true;
	*gid = g->gr_gid;
	return true;
}

bool ctlsrv_set_limits(struct ctlsrv *srv, const struct ctlsrv_limits *limits, char **err)
{
	bool have;
	gid_t gid = 0;
	if (!resolve_group(limits->group, &have, &gid, err))
		return false;
	srv->have_group = have;
	srv->group = gid;
	srv->max_clients = limits->max_clients;
	srv->idle_timeout_ms = limits->idle_timeout_ms;
	return true;
}

/* True if something answers on path (another migd is running). */
static bool socket_is_live(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;
	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return live;
}

struct ctlsrv *ctlsrv_start(struct event_base *base, const char *path,
			    const char *socket_group, const struct ctlsrv_limits *limits, const struct ctl_cmd *table, void *ctx,
			    char **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	struct ctlsrv *srv = xcalloc(1, sizeof(*srv));
	int fd = -1;

	srv->base = base;
	srv->table = table;
	srv->ctx = ctx;
	srv->path = xstrdup(path);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		*err = xasprintf("control socket path %s is too long", path);
		goto err;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*err = xasprintf("%s exists and is not a socket; refusing to replace it", path);
			goto err;
		}
		if (socket_is_live(path)) {
			*err = xasprintf("another daemon is already listening on %s", path);
			goto err;
		}
		unlink(path); /* stale, from a crash */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*err = xasprintf("socket: %s", strerror(errno));
		goto err;
	}
	/* Created 0660 from the start: no window where others may connect. */
	mode_t old = umask(0117);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0) {
		*err = xasprintf("cannot bind control socket %s: %s", path, strerror(errno));
		goto err;
	}
	if (chmod(path, 0660) != 0) {
		*err = xasprintf("chmod %s: %s", path, strerror(errno));
		goto err_unlink;
	}
	bool have_sg;
	gid_t sg = 0;
	if (!resolve_group(socket_group, &have_sg, &sg, err))
		goto err_unlink;
	if (have_sg && chown(path, (uid_t)-1, sg) != 0) {
		*err = xasprintf("cannot give %s to group %s: %s", path, socket_group,
				 strerror(errno));
		goto err_unlink;
	}
	if (!ctlsrv_set_limits(srv, limits, err))
		goto err_unlink;
	srv->listener = evconnlistener_new(base, accept_cb, srv,
					   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
	if (srv->listener == NULL) {
		*err = xasprintf("cannot listen on %s: %s", path, strerror(errno));
		goto err_unlink;
	}
	return srv;
err_unlink:
	unlink(path);
err:
	if (fd >= 0)
		close(fd);
	free(srv->path);
	free(srv);
	return NULL;
}

int ctlsrv_client_count(const struct ctlsrv *srv)
{
	return srv->nclients;
}

void ctlsrv_free(struct ctlsrv *srv)
{
	if (srv == NULL)
		return;
	while (srv->conns != NULL)
		conn_free(srv->conns);
	evconnlistener_free(srv->listener);
	unlink(srv->path);
	free(srv->path);
	free(srv);
}
