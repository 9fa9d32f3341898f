/*
 * Unit tests for metrics (registry + exposition), procmetrics and httpsrv.
 * The HTTP tests talk to a real evhttp server on 127.0.0.1 through a plain
 * socket from a client thread while the test thread runs the event loop.
 */
#include "httpsrv.h"
#include "log.h"
#include "metrics.h"
#include "procmetrics.h"
#include "util.h"

#include <check.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Expected misuse logs "BUG:"/errors; keep them out of the test log. */
static void quiet(void)
{
	log_min_level = (enum log_level)(LOG_LVL_ERROR - 1);
}

static void loud(void)
{
	log_min_level = LOG_LVL_ERROR;
}

/* Renders reg into a NUL-terminated string; caller frees. */
static char *render(struct metrics_registry *reg)
{
	struct evbuffer *buf = evbuffer_new();
	size_t len;
	char *s;

	ck_assert_ptr_nonnull(buf);
	ck_assert(metrics_render(reg, buf));
	len = evbuffer_get_length(buf);
	s = xmalloc(len + 1);
	evbuffer_remove(buf, s, len);
	s[len] = '\0';
	evbuffer_free(buf);
	return s;
}

/* The value of the sample line starting with prefix ("name{...} "), NaN if absent. */
static double sample_value(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, prefix, n) == 0)
			return strtod(p + n, NULL);
	return NAN;
}

START_TEST(test_validation)
{
	struct metrics_registry *reg = metrics_new();
	const double bad_order[] = {1, 0.5};
	const double bad_nan[] = {0.1, NAN};

	quiet();
	ck_assert_ptr_null(metrics_gauge(reg, "", "h", NULL));
	ck_assert_ptr_null(metrics_gauge(reg, "1abc", "h", NULL));
	ck_assert_ptr_null(metrics_gauge(reg, "a-b", "h", NULL));
	ck_assert_ptr_null(metrics_gauge(reg, "a b", "h", NULL));
	ck_assert_ptr_null(metrics_counter(reg, "migd_rows", "h", NULL));
	ck_assert_ptr_null(metrics_gauge(reg, "migd_rows_total", "h", NULL));
	ck_assert_ptr_null(metrics_gauge(reg, "migd_x", "", NULL));
	ck_assert_ptr_null(metrics_gauge(reg, "migd_x", NULL, NULL));
	ck_assert_ptr_null(metrics_gauge(reg, "migd_x", "h", METRICS_LABELS("__x")));
	ck_assert_ptr_null(metrics_gauge(reg, "migd_x", "h", METRICS_LABELS("1a")));
	ck_assert_ptr_null(metrics_gauge(reg, "migd_x", "h", METRICS_LABELS("a:b")));
	ck_assert_ptr_null(metrics_gauge(reg, "migd_x", "h", METRICS_LABELS("a", "a")));
	ck_assert_ptr_null(metrics_histogram(reg, "migd_h", "h", METRICS_LABELS("le"), NULL, 0));
	ck_assert_ptr_null(metrics_histogram(reg, "migd_h", "h", NULL, bad_order, 2));
	ck_assert_ptr_null(metrics_histogram(reg, "migd_h", "h", NULL, bad_nan, 2));
	loud();
	ck_assert_ptr_nonnull(metrics_gauge(reg, "migd:ns_x", "h", METRICS_LABELS("le", "_a1")));
	ck_assert_ptr_nonnull(metrics_counter(reg, "_x_total", "h", NULL));
	metrics_free(reg);
}
END_TEST

START_TEST(test_duplicate)
{
	struct metrics_registry *reg = metrics_new();
	const double b1[] = {1, 2}, b2[] = {1, 3}, b1_inf[] = {1, 2, INFINITY};
	struct metric_family *c, *h;

	c = metrics_counter(reg, "migd_x_total", "h", METRICS_LABELS("table"));
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_eq(
	    metrics_counter(reg, "migd_x_total", "other help", METRICS_LABELS("table")), c);
	h = metrics_histogram(reg, "migd_h_seconds", "h", NULL, b1, 2);
	ck_assert_ptr_nonnull(h);
	/* An explicit trailing +Inf is the same bucket set. */
	ck_assert_ptr_eq(metrics_histogram(reg, "migd_h_seconds", "h", NULL, b1_inf, 3), h);

	quiet();
	ck_assert_ptr_null(metrics_counter(reg, "migd_x_total", "h", METRICS_LABELS("tbl")));
	ck_assert_ptr_null(metrics_counter(reg, "migd_x_total", "h", NULL));
	ck_assert_ptr_null(metrics_histogram(reg, "migd_h_seconds", "h", NULL, b2, 2));
	ck_assert_ptr_null(metrics_gauge(reg, "migd_h_seconds", "h", NULL));
	/* Names a histogram's samples use are taken, in both orders. */
	ck_assert_ptr_null(metrics_gauge(reg, "migd_h_seconds_count", "h", NULL));
	ck_assert_ptr_nonnull(metrics_gauge(reg, "migd_g_sum", "h", NULL));
	ck_assert_ptr_null(metrics_histogram(reg, "migd_g", "h", NULL, NULL, 0));
	loud();
	metrics_free(reg);
}
END_TEST

START_TEST(test_counter_monotonic)
{
	struct metrics_registry *reg = metrics_new();
	struct metric_family *f = metrics_counter(reg, "migd_c_total", "h", NULL);
	struct metric *m = metrics_child(f, NULL);

	metrics_add(m, 2.5);
	metrics_inc(m);
	quiet();
	metrics_add(m, -1);
	metrics_add(m, NAN);
	metrics_set(m, 0);
	metrics_observe(m, 1);
	ck_assert_double_eq(metrics_get(m), 3.5);
	metrics_counter_set_abs(m, 1);
	ck_assert_double_eq(metrics_get(m), 3.5);
	/* Wrong label count yields NULL, and NULL is a harmless no-op. */
	ck_assert_ptr_null(metrics_childv(f, "extra", NULL));
	loud();
	metrics_counter_set_abs(m, 10);
	ck_assert_double_eq(metrics_get(m), 10);
	metrics_inc(NULL);
	metrics_set(NULL, 1);
	metrics_observe(NULL, 1);
	ck_assert(isnan(metrics_get(NULL)));
	metrics_free(reg);
	metrics_free(NULL);
}
END_TEST

START_TEST(test_escaping)
{
	struct metrics_registry *reg = metrics_new();
	struct metric_family *f =
	    metrics_gauge(reg, "migd_g", "A \\ help\nwith \"quotes\".", METRICS_LABELS("v"));
	char *out;

	metrics_set(metrics_childv(f, "a\\b\"c\nd", NULL), 1);
	out = render(reg);
	ck_assert_str_eq(out, "# HELP migd_g A \\\\ help\\nwith \"quotes\".\n"
			      "# TYPE migd_g gauge\n"
			      "migd_g{v=\"a\\\\b\\\"c\\nd\"} 1\n");
	free(out);
	metrics_free(reg);
}
END_TEST

START_TEST(test_histogram)
{
	struct metrics_registry *reg = metrics_new();
	const double b[] = {0.5, 1, 10};
	struct metric_family *f =
	    metrics_histogram(reg, "migd_lat_seconds", "Latency.", METRICS_LABELS("t"), b, 3);
	struct metric *m = metrics_childv(f, "x", NULL);
	char *out;

	metrics_observe(m, 0.25);
	metrics_observe(m, 0.5); /* bounds are inclusive ("le") */
	metrics_observe(m, 0.75);
	metrics_observe(m, 5);
	metrics_observe(m, 50);
	quiet();
	metrics_observe(m, NAN);
	metrics_set(m, 1);
	loud();
	ck_assert(isnan(metrics_get(m)));
	out = render(reg);
	ck_assert_str_eq(out, "# HELP migd_lat_seconds Latency.\n"
			      "# TYPE migd_lat_seconds histogram\n"
			      "migd_lat_seconds_bucket{t=\"x\",le=\"0.5\"} 2\n"
			      "migd_lat_seconds_bucket{t=\"x\",le=\"1\"} 3\n"
			      "migd_lat_seconds_bucket{t=\"x\",le=\"10\"} 4\n"
			      "migd_lat_seconds_bucket{t=\"x\",le=\"+Inf\"} 5\n"
			      "migd_lat_seconds_sum{t=\"x\"} 56.5\n"
			      "migd_lat_seconds_count{t=\"x\"} 5\n");
	free(out);
	metrics_free(reg);
}
END_TEST

START_TEST(test_default_buckets)
{
	struct metrics_registry *reg = metrics_new();
	struct metric_family *f = metrics_histogram(reg, "migd_d_seconds", "h", NULL, NULL, 0);
	char *out;

	ck_assert_uint_eq(metrics_latency_buckets_len, 15);
	metrics_observe(metrics_child(f, NULL), 0.0004);
	out = render(reg);
	ck_assert_ptr_nonnull(strstr(out, "migd_d_seconds_bucket{le=\"0.0005\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(out, "migd_d_seconds_bucket{le=\"30\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(out, "migd_d_seconds_sum 0.0004\n"));
	free(out);
	metrics_free(reg);
}
END_TEST

START_TEST(test_render_exact)
{
	struct metrics_registry *reg = metrics_new();
	struct metric_family *c =
	    metrics_counter(reg, "migd_applied_changes_total", "Applied.", METRICS_LABELS("table"));
	struct metric_family *g = metrics_gauge(reg, "migd_lag_seconds", "Lag.", NULL);
	struct metric_family *empty =
	    metrics_gauge(reg, "migd_empty", "Unused.", METRICS_LABELS("x"));
	const double b[] = {0.1};
	struct metric_family *h =
	    metrics_histogram(reg, "migd_apply_seconds", "Apply.", NULL, b, 1);
	struct metric_family *n =
	    metrics_gauge(reg, "migd_numbers", "Formats.", METRICS_LABELS("k"));
	char *out;

	ck_assert_ptr_nonnull(empty);
	metrics_add(metrics_childv(c, "b", NULL), 3);
	metrics_add(metrics_childv(c, "a", NULL), 1e6);
	metrics_set(metrics_child(g, NULL), 0.1);
	metrics_observe(metrics_child(h, NULL), 0.1);
	metrics_set(metrics_childv(n, "big", NULL), 123456789012.0);
	metrics_set(metrics_childv(n, "neg", NULL), -2.5);
	metrics_set(metrics_childv(n, "pinf", NULL), INFINITY);
	metrics_set(metrics_childv(n, "ninf", NULL), -INFINITY);
	metrics_set(metrics_childv(n, "nan", NULL), NAN);
	metrics_set(metrics_childv(n, "third", NULL), 1.0 / 3);
	out = render(reg);
	ck_assert_str_eq(out, "# HELP migd_applied_changes_total Applied.\n"
			      "# TYPE migd_applied_changes_total counter\n"
			      "migd_applied_changes_total{table=\"b\"} 3\n"
			      "migd_applied_changes_total{table=\"a\"} 1000000\n"
			      "# HELP migd_lag_seconds Lag.\n"
			      "# TYPE migd_lag_seconds gauge\n"
			      "migd_lag_seconds 0.1\n"
			      "# HELP migd_apply_seconds Apply.\n"
			      "# TYPE migd_apply_seconds histogram\n"
			      "migd_apply_seconds_bucket{le=\"0.1\"} 1\n"
			      "migd_apply_seconds_bucket{le=\"+Inf\"} 1\n"
			      "migd_apply_seconds_sum 0.1\n"
			      "migd_apply_seconds_count 1\n"
			      "# HELP migd_numbers Formats.\n"
			      "# TYPE migd_numbers gauge\n"
			      "migd_numbers{k=\"big\"} 123456789012\n"
			      "migd_numbers{k=\"neg\"} -2.5\n"
			      "migd_numbers{k=\"pinf\"} +Inf\n"
			      "migd_numbers{k=\"ninf\"} -Inf\n"
			      "migd_numbers{k=\"nan\"} NaN\n"
			      "migd_numbers{k=\"third\"} 0.3333333333333333\n");
	free(out);
	metrics_free(reg);
}
END_TEST

struct collect_state {
	int calls;
	struct metric *lag;
};

static void collect_lag(struct metrics_registry *reg, void *arg)
{
	struct collect_state *st = arg;

	(void)reg;
	st->calls++;
	metrics_set(st->lag, st->calls * 10);
}

START_TEST(test_collector)
{
	struct metrics_registry *reg = metrics_new();
	struct metric_family *g = metrics_gauge(reg, "migd_lag_bytes", "Lag.", NULL);
	struct collect_state *st = xcalloc(1, sizeof(*st));
	char *out;

	st->lag = metrics_child(g, NULL);
	metrics_add_collector(reg, collect_lag, st, free); /* reg frees st */
	out = render(reg);
	ck_assert_int_eq(st->calls, 1);
	ck_assert_ptr_nonnull(strstr(out, "\nmigd_lag_bytes 10\n"));
	free(out);
	out = render(reg);
	ck_assert_int_eq(st->calls, 2);
	ck_assert_ptr_nonnull(strstr(out, "\nmigd_lag_bytes 20\n"));
	free(out);
	metrics_free(reg);
}
END_TEST

START_TEST(test_state_gauge)
{
	static const char *const phases[] = {"init", "captured", "done"};
	struct metrics_registry *reg = metrics_new();
	struct metric_family *f =
	    metrics_gauge(reg, "migd_phase", "Phase.", METRICS_LABELS("phase"));
	struct metric_family *two = metrics_gauge(reg, "migd_two", "h", METRICS_LABELS("a", "b"));
	char *out;

	metrics_set_state(f, phases, ARRAY_LEN(phases), 1);
	out = render(reg);
	ck_assert_str_eq(out, "# HELP migd_phase Phase.\n"
			      "# TYPE migd_phase gauge\n"
			      "migd_phase{phase=\"init\"} 0\n"
			      "migd_phase{phase=\"captured\"} 1\n"
			      "migd_phase{phase=\"done\"} 0\n");
	free(out);
	metrics_set_state(f, phases, ARRAY_LEN(phases), 2);
	out = render(reg);
	ck_assert_double_eq(sample_value(out, "migd_phase{phase=\"captured\"} "), 0);
	ck_assert_double_eq(sample_value(out, "migd_phase{phase=\"done\"} "), 1);
	free(out);
	quiet();
	metrics_set_state(two, phases, ARRAY_LEN(phases), 0); /* refused: two labels */
	loud();
	out = render(reg);
	ck_assert_ptr_null(strstr(out, "migd_two{"));
	free(out);
	metrics_free(reg);
}
END_TEST

#define THREADS	   4
#define PER_THREAD 50000

static void *hammer(void *arg)
{
	struct metrics_registry *reg = arg;
	/* Each thread registers and looks up on its own, racing the others. */
	struct metric_family *c = metrics_counter(reg, "migd_ops_total", "h", METRICS_LABELS("t"));
	struct metric_family *h = metrics_histogram(reg, "migd_op_seconds", "h", NULL, NULL, 0);
	struct metric *m = metrics_childv(c, "shared", NULL);

	for (int i = 0; i < PER_THREAD; i++) {
		metrics_inc(m);
		metrics_observe(metrics_child(h, NULL), 0.001);
		if (i % 1000 == 0)
			metrics_inc(metrics_childv(c, "looked-up", NULL));
	}
	return NULL;
}

START_TEST(test_concurrency)
{
	struct metrics_registry *reg = metrics_new();
	pthread_t th[THREADS];
	char *out;

	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, reg), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	out = render(reg);
	ck_assert_double_eq(sample_value(out, "migd_ops_total{t=\"shared\"} "),
			    THREADS * PER_THREAD);
	ck_assert_double_eq(sample_value(out, "migd_ops_total{t=\"looked-up\"} "),
			    THREADS * (PER_THREAD / 1000));
	ck_assert_double_eq(sample_value(out, "migd_op_seconds_count "), THREADS * PER_THREAD);
	ck_assert_double_eq(sample_value(out, "migd_op_seconds_bucket{le=\"0.001\"} "),
			    THREADS * PER_THREAD);
	ck_assert_double_eq(sample_value(out, "migd_op_seconds_bucket{le=\"0.0005\"} "), 0);
	free(out);
	metrics_free(reg);
}
END_TEST

START_TEST(test_procmetrics)
{
	struct metrics_registry *reg = metrics_new();
	struct timeval now;
	char *out;

	ck_assert(procmetrics_register(reg));
	out = render(reg);
	gettimeofday(&now, NULL);
	ck_assert(sample_value(out, "process_cpu_seconds_total ") >= 0);
	ck_assert(sample_value(out, "process_resident_memory_bytes ") > 0);
	ck_assert(sample_value(out, "process_virtual_memory_bytes ") > 0);
	ck_assert(sample_value(out, "process_open_fds ") >= 3);
	ck_assert(sample_value(out, "process_max_fds ") >= 3);
	double start = sample_value(out, "process_start_time_seconds ");
	ck_assert(start > now.tv_sec - 3600 && start <= now.tv_sec + 1);
	free(out);
	metrics_free(reg);

	/* A name already taken in another shape makes registration fail cleanly. */
	reg = metrics_new();
	ck_assert_ptr_nonnull(metrics_gauge(reg, "process_open_fds", "h", METRICS_LABELS("x")));
	quiet();
	ck_assert(!procmetrics_register(reg));
	loud();
	metrics_free(reg);
}
END_TEST

/* --- httpsrv ----------------------------------------------------------------- */

struct http_case {
	const char *request; /* raw bytes sent */
	bool unhealthy;	     /* set the health flag before sending */
	char *response;	     /* malloc'ed raw response */
};

struct http_test {
	int port;
	atomic_bool unhealthy;
	atomic_bool done;
	struct http_case *cases;
	size_t n_cases;
};

static bool health_cb(void *arg, const char **reason)
{
	struct http_test *t = arg;

	if (!atomic_load(&t->unhealthy))
		return true;
	*reason = "replication lag 42s exceeds 30s";
	return false;
}

/* One request on a fresh connection; returns everything read until EOF. */
static char *http_roundtrip(int port, const char *request)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 5};
	size_t len = 0, cap = 4096;
	char *buf = xmalloc(cap);
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	buf[0] = '\0';
	if (fd < 0)
		return buf;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
		close(fd);
		return buf;
	}
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 1024)
			buf = xrealloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

static void *http_client(void *arg)
{
	struct http_test *t = arg;

	for (size_t i = 0; i < t->n_cases; i++) {
		atomic_store(&t->unhealthy, t->cases[i].unhealthy);
		t->cases[i].response = http_roundtrip(t->port, t->cases[i].request);
	}
	atomic_store(&t->done, true);
	return NULL;
}

static struct event_base *loop_base;

/* Runs on the loop: stops it once the client thread is finished. */
static void poll_done(evutil_socket_t fd, short what, void *arg)
{
	struct http_test *t = arg;

	(void)fd;
	(void)what;
	if (atomic_load(&t->done))
		event_base_loopbreak(loop_base);
}

static int status_of(const char *resp)
{
	int code = -1;

	if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1)
		return -1;
	return code;
}

/* The value of header name (case-sensitive, as evhttp writes it); caller frees. */
static char *header_of(const char *resp, const char *name)
{
	char *key = xasprintf("\r\n%s: ", name);
	const char *end = strstr(resp, "\r\n\r\n");
	const char *p = strstr(resp, key);
	char *v = NULL;

	if (p != NULL && end != NULL && p < end) {
		p += strlen(key);
		v = strndup(p, strcspn(p, "\r"));
	}
	free(key);
	return v;
}

static const char *body_of(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");

	return p != NULL ? p + 4 : "";
}

START_TEST(test_httpsrv)
{
	struct http_case cases[] = {
	    {.request = "GET /metrics HTTP/1.0\r\n\r\n"},
	    {.request = "HEAD /metrics HTTP/1.0\r\n\r\n"},
	    {.request = "GET /metrics?debug=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
	    {.request = "GET /healthz HTTP/1.0\r\n\r\n"},
	    {.request = "GET /healthz HTTP/1.0\r\n\r\n", .unhealthy = true},
	    {.request = "GET /nope HTTP/1.0\r\n\r\n"},
	    {.request = "POST /metrics HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi"},
	    {.request = "DELETE /healthz HTTP/1.0\r\n\r\n"},
	    {.request = "GET /metrics HTTP/1.0\r\nContent-Length: 5000\r\n\r\n"},
	};
	struct http_test t = {.cases = cases, .n_cases = ARRAY_LEN(cases)};
	struct metrics_registry *reg = metrics_new();
	struct metric_family *c = metrics_counter(reg, "migd_requests_total", "Requests.", NULL);
	struct event_base *base = event_base_new();
	struct timeval tick = {.tv_usec = 5000};
	struct event *tick_ev;
	struct httpsrv *srv, *dup;
	pthread_t th;
	char *err = NULL, *v;

	metrics_add(metrics_child(c, NULL), 7);
	srv = httpsrv_start(base, "127.0.0.1", 0, reg, health_cb, &t, &err);
	ck_assert_msg(srv != NULL, "httpsrv_start: %s", err);
	t.port = httpsrv_port(srv);
	ck_assert_int_gt(t.port, 0);

	/* The port is taken now: the error names address and reason. */
	quiet();
	dup = httpsrv_start(base, "127.0.0.1", t.port, reg, NULL, NULL, &err);
	loud();
	ck_assert_ptr_null(dup);
	v = xasprintf("cannot bind 127.0.0.1:%d: Address already in use", t.port);
	ck_assert_str_eq(err, v);
	free(v);
	free(err);
	ck_assert_ptr_null(httpsrv_start(base, "localhost", 0, reg, NULL, NULL, &err));
	ck_assert_str_eq(err, "cannot bind localhost:0: not a numeric IP address");
	free(err);

	loop_base = base;
	tick_ev = event_new(base, -1, EV_PERSIST, poll_done, &t);
	event_add(tick_ev, &tick);
	ck_assert_int_eq(pthread_create(&th, NULL, http_client, &t), 0);
	event_base_dispatch(base);
	pthread_join(th, NULL);

	/* GET /metrics */
	ck_assert_int_eq(status_of(cases[0].response), 200);
	v = header_of(cases[0].response, "Content-Type");
	ck_assert_str_eq(v, "text/plain; version=0.0.4; charset=utf-8");
	free(v);
	ck_assert_str_eq(body_of(cases[0].response), "# HELP migd_requests_total Requests.\n"
						     "# TYPE migd_requests_total counter\n"
						     "migd_requests_total 7\n");
	/* HEAD: same headers, no body */
	ck_assert_int_eq(status_of(cases[1].response), 200);
	v = header_of(cases[1].response, "Content-Length");
	ck_assert_int_eq(atoi(v), (int)strlen(body_of(cases[0].response)));
	free(v);
	ck_assert_str_eq(body_of(cases[1].response), "");
	/* query strings are ignored; HTTP/1.1 works */
	ck_assert_int_eq(status_of(cases[2].response), 200);
	ck_assert_ptr_nonnull(strstr(body_of(cases[2].response), "migd_requests_total 7\n"));
	/* /healthz both ways */
	ck_assert_int_eq(status_of(cases[3].response), 200);
	ck_assert_str_eq(body_of(cases[3].response), "ok\n");
	ck_assert_int_eq(status_of(cases[4].response), 503);
	ck_assert_str_eq(body_of(cases[4].response), "replication lag 42s exceeds 30s\n");
	v = header_of(cases[4].response, "Content-Type");
	ck_assert_str_eq(v, "text/plain; charset=utf-8");
	free(v);
	/* 404, 405 */
	ck_assert_int_eq(status_of(cases[5].response), 404);
	ck_assert_int_eq(status_of(cases[6].response), 405);
	v = header_of(cases[6].response, "Allow");
	ck_assert_str_eq(v, "GET, HEAD");
	free(v);
	ck_assert_int_eq(status_of(cases[7].response), 405);
	/* a body over the limit is refused by evhttp before routing */
	ck_assert_int_eq(status_of(cases[8].response), 413);

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		free(cases[i].response);
	event_free(tick_ev);
	httpsrv_free(srv);
	httpsrv_free(NULL);
	event_base_free(base);
	metrics_free(reg);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("registry");

	tcase_add_test(tc, test_validation);
	tcase_add_test(tc, test_duplicate);
	tcase_add_test(tc, test_counter_monotonic);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_histogram);
	tcase_add_test(tc, test_default_buckets);
	tcase_add_test(tc, test_render_exact);
	tcase_add_test(tc, test_collector);
	tcase_add_test(tc, test_state_gauge);
	tcase_add_test(tc, test_concurrency);
	suite_add_tcase(s, tc);

	tc = tcase_create("process");
	tcase_add_test(tc, test_procmetrics);
	suite_add_tcase(s, tc);

	tc = tcase_create("http");
	tcase_add_test(tc, test_httpsrv);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	log_init(LOG_LVL_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
