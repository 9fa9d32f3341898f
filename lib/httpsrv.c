/*
 * httpsrv: /metrics and /healthz over evhttp (see httpsrv.h).
 *
 * The listening socket is created here rather than by evhttp_bind_socket()
 * so a failure reports the real errno ("Address already in use") to the
 * operator.  evhttp answers requests it cannot parse, or whose headers or
 * body exceed the limits, by itself (400/413) and closes idle connections
 * after HTTPSRV_TIMEOUT_SECS.  libevent 2.1 has no connection cap; the
 * timeout and RLIMIT_NOFILE bound what a flood of idle clients can take.
 */
#include "httpsrv.h"

#include "log.h"
#include "metrics.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTPSRV_BACKLOG	     64
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_CONTENT_TYPE    "text/plain; charset=utf-8"

struct httpsrv {
	struct evhttp *http;	      /* owned; owns the listening socket */
	struct metrics_registry *reg; /* borrowed */
	httpsrv_health_fn health;     /* may be NULL */
	void *health_arg;	      /* borrowed */
	int port;		      /* bound port */
};

/* A route fills body and returns the status; reason is the HTTP reason phrase. */
typedef int (*route_fn)(struct httpsrv *srv, struct evbuffer *body, const char **content_type,
			const char **reason);

static int route_metrics(struct httpsrv *srv, struct evbuffer *body, const char **content_type,
			 const char **reason)
{
	if (!metrics_render(srv->reg, body)) {
		/* errors already logged */
		evbuffer_drain(body, evbuffer_get_length(body));
		evbuffer_add_printf(body, "cannot render metrics\n");
		*reason = "Internal Server Error";
		return HTTP_INTERNAL;
	}
	*content_type = METRICS_CONTENT_TYPE;
	*reason = "OK";
	return HTTP_OK;
}

static int route_healthz(struct httpsrv *srv, struct evbuffer *body, const char **content_type,
			 const char **reason)
{
	const char *why = NULL;

	(void)content_type;
	if (srv->health == NULL || srv->health(srv->health_arg, &why)) {
		evbuffer_add_printf(body, "ok\n");
		*reason = "OK";
		return HTTP_OK;
	}
	evbuffer_add_printf(body, "%s\n", why != NULL ? why : "unhealthy");
	*reason = "Service Unavailable";
	return 503;
}

static const struct {
	const char *path;
	route_fn fn;
} routes[] = {
    {"/metrics", route_metrics},
    {"/healthz", route_healthz},
};

static void reply(struct evhttp_request *req, int code, const char *reason,
		  const char *content_type, struct evbuffer *body)
{
	struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);

	evhttp_add_header(hdrs, "Content-Type", content_type);
	/* A scrape or probe answer is only true now. */
	evhttp_add_header(hdrs, "Cache-Control", "no-store");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		/* evhttp would send the body even for HEAD; announce its size only. */
		char len[32];

		snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
		evhttp_add_header(hdrs, "Content-Length", len);
		evbuffer_drain(body, evbuffer_get_length(body));
	}
	evhttp_send_reply(req, code, reason, body);
}

static void httpsrv_handle(struct evhttp_request *req, void *arg)
{
	struct httpsrv *srv = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *body = evbuffer_new();
	const char *content_type = TEXT_CONTENT_TYPE, *reason;
	int code;
	size_t i;

	if (body == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	for (i = 0; i < ARRAY_LEN(routes); i++)
		if (path != NULL && strcmp(path, routes[i].path) == 0)
			break;
	if (i == ARRAY_LEN(routes)) {
		evbuffer_add_printf(body, "not found; try /metrics or /healthz\n");
		reason = "Not Found";
		code = HTTP_NOTFOUND;
	} else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		evbuffer_add_printf(body, "method not allowed\n");
		reason = "Method Not Allowed";
		code = HTTP_BADMETHOD;
	} else {
		code = routes[i].fn(srv, body, &content_type, &reason);
	}
	log_debug("httpsrv: %s -> %d", evhttp_request_get_uri(req), code);
	reply(req, code, reason, content_type, body);
	evbuffer_free(body);
}

/* "addr:port", with IPv6 addresses in brackets; caller frees. */
static char *host_port(const char *addr, int port)
{
	if (strchr(addr, ':') != NULL)
		return xasprintf("[%s]:%d", addr, port);
	return xasprintf("%s:%d", addr, port);
}

static char *bind_error(const char *addr, int port, const char *why)
{
	char *hp = host_port(addr, port);
	char *msg = xasprintf("cannot bind %s: %s", hp, why);

	free(hp);
	return msg;
}

/* Listening socket for addr:port, non-blocking and close-on-exec; -1 with *err set. */
static int listen_on(const char *addr, int port, char **err)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM,
	    /* Numeric only: a DNS lookup could block the event loop on reload. */
	    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	struct addrinfo *ai = NULL;
	char portstr[16];
	int fd = -1, one = 1, rc;

	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(addr, portstr, &hints, &ai);
	if (rc != 0) {
		*err = bind_error(addr, port,
				  rc == EAI_NONAME ? "not a numeric IP address" : gai_strerror(rc));
		goto err;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		goto err_errno;
	/* A restarted daemon must not wait out TIME_WAIT of its old scrapes. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
		goto err_errno;
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, HTTPSRV_BACKLOG) != 0)
		goto err_errno;
	freeaddrinfo(ai);
	return fd;

err_errno:
	*err = bind_error(addr, port, strerror(errno));
err:
	if (fd >= 0)
		close(fd);
	if (ai != NULL)
		freeaddrinfo(ai);
	return -1;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

struct httpsrv *httpsrv_start(struct event_base *base, const char *addr, int port,
			      struct metrics_registry *reg, httpsrv_health_fn health,
			      void *health_arg, char **err)
{
	struct httpsrv *srv = xcalloc(1, sizeof(*srv));
	int fd = -1;

	*err = NULL;
	if (addr == NULL)
		addr = "127.0.0.1";
	if (port < 0 || port > 65535) {
		*err = bind_error(addr, port, "port out of range");
		goto err;
	}
	srv->reg = reg;
	srv->health = health;
	srv->health_arg = health_arg;
	srv->http = evhttp_new(base);
	if (srv->http == NULL) {
		*err = xstrdup("cannot create HTTP server: out of memory");
		goto err;
	}
	evhttp_set_timeout(srv->http, HTTPSRV_TIMEOUT_SECS);
	evhttp_set_max_headers_size(srv->http, HTTPSRV_MAX_HEADERS_SIZE);
	evhttp_set_max_body_size(srv->http, HTTPSRV_MAX_BODY_SIZE);
	evhttp_set_default_content_type(srv->http, TEXT_CONTENT_TYPE);
	/* Accept every method evhttp parses, so the handler can answer 405
	 * (evhttp itself would answer 501 for the ones not listed). */
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						  EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						  EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH |
						  EVHTTP_REQ_TRACE);
	evhttp_set_gencb(srv->http, httpsrv_handle, srv);

	fd = listen_on(addr, port, err);
	if (fd < 0)
		goto err;
	srv->port = bound_port(fd);
	if (evhttp_accept_socket_with_handle(srv->http, fd) == NULL) {
		*err = bind_error(addr, port, "cannot accept on the socket");
		goto err;
	}
	fd = -1; /* owned by evhttp now */
	log_info("httpsrv: serving /metrics and /healthz on %s port %d", addr, srv->port);
	return srv;

err:
	if (fd >= 0)
		close(fd);
	httpsrv_free(srv);
	return NULL;
}

int httpsrv_port(const struct httpsrv *srv)
{
	return srv->port;
}

void httpsrv_free(struct httpsrv *srv)
{
	if (srv == NULL)
		return;
	if (srv->http != NULL)
		evhttp_free(srv->http);
	free(srv);
}
