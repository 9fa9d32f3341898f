/*
 * httpsrv: the metrics HTTP endpoint, served by libevent's evhttp on the
 * daemon's event loop (never blocks it: sockets are non-blocking and every
 * request is answered from memory).
 *
 *   GET|HEAD /metrics  200, Prometheus text format 0.0.4 from the registry
 *   GET|HEAD /healthz  200 "ok\n", or 503 with the health callback's reason
 *   other methods      405 with "Allow: GET, HEAD"
 *   other paths        404
 *
 * Owns the evhttp instance and its listening socket; borrows the event base,
 * the registry and the health callback's argument, which must outlive it.
 */
#ifndef MIGD_HTTPSRV_H
#define MIGD_HTTPSRV_H

#include <stdbool.h>

struct event_base;
struct metrics_registry;
struct httpsrv;

/*
 * Decides /healthz: return true when healthy; otherwise set *reason to a
 * one-line explanation (borrowed; must stay valid until the callback returns
 * to httpsrv, e.g. a string literal or a field of arg).
 */
typedef bool (*httpsrv_health_fn)(void *arg, const char **reason);

/* Limits that keep a slow or hostile client from holding resources. */
#define HTTPSRV_TIMEOUT_SECS	 10   /* read/write timeout per connection */
#define HTTPSRV_MAX_HEADERS_SIZE 8192 /* request line + headers, bytes */
#define HTTPSRV_MAX_BODY_SIZE	 1024 /* no route takes a body */

/*
 * Listens on addr:port (addr a numeric IPv4 or IPv6 address, NULL for
 * 127.0.0.1; port 0 picks a free port, see httpsrv_port()) and serves on base.
 * health may be NULL (always healthy).  Returns the server, caller frees with
 * httpsrv_free(); or NULL with *err set to a message for the operator such as
 * "cannot bind 127.0.0.1:9751: Address already in use" (caller frees *err
 * with free()).
 */
struct httpsrv *httpsrv_start(struct event_base *base, const char *addr, int port,
			      struct metrics_registry *reg, httpsrv_health_fn health,
			      void *health_arg, char **err) __attribute__((warn_unused_result));

/* The port actually bound (useful after asking for port 0). */
int httpsrv_port(const struct httpsrv *srv);

/* Stops listening, drops open connections and frees srv.  NULL-safe. */
void httpsrv_free(struct httpsrv *srv);

#endif
