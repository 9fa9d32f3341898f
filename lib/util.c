/* util: see util.h. */
#include "util.h"

#include "log.h"

#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void oom(size_t n)
{
	log_error("out of memory allocating %zu bytes", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom(n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		oom(nmemb * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (p == NULL)
		oom(strlen(s) + 1);
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&out, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	return out;
}

char *str_trim(char *s)
{
	char *end;
	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static int64_t clock_usec(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t now_mono_usec(void)
{
	return clock_usec(CLOCK_MONOTONIC);
}

int64_t now_wall_usec(void)
{
	return clock_usec(CLOCK_REALTIME);
}

void err_set(struct err *e, const char *fmt, ...)
{
	va_list ap;
	if (e == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

void err_prefix(struct err *e, const char *fmt, ...)
{
	char prefix[256];
	va_list ap;
	if (e == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* Shift the old message right, truncating its end if it no longer fits. */
	size_t pl = strlen(prefix) + 2, ol = strlen(e->msg);
	if (pl + ol >= sizeof(e->msg))
		ol = sizeof(e->msg) - pl - 1;
	memmove(e->msg + pl, e->msg, ol);
	e->msg[pl + ol] = '\0';
	memcpy(e->msg, prefix, pl - 2);
	memcpy(e->msg + pl - 2, ": ", 2);
}

void sleep_interruptible(int ms, const volatile bool *stop)
{
	while (ms > 0 && !(stop && *stop)) {
		int step = ms < 50 ? ms : 50;
		struct timespec ts = {0, (long)step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

void crash_point(const char *armed, const char *point)
{
	if (armed == NULL || strcmp(armed, point) != 0)
		return;
	log_event(LOG_LVL_ERROR, "crash_point", "point=%s (MIGD_CRASH_AT test hook: SIGKILL)",
		  point);
	raise(SIGKILL);
}

void sb_addf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = (b->len + (size_t)n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *sb_take(struct strbuf *b)
{
	char *s = b->s ? b->s : xstrdup("");
	memset(b, 0, sizeof(*b));
	return s;
}

void problem(struct problems *p, const char *fmt, ...)
{
	va_list ap;
	p->n++;
	if (p->len + 2 >= sizeof(p->text))
		return;
	if (p->len > 0)
		p->text[p->len++] = '\n';
	va_start(ap, fmt);
	int w = vsnprintf(p->text + p->len, sizeof(p->text) - p->len, fmt, ap);
	va_end(ap);
	if (w > 0)
		p->len += (size_t)w < sizeof(p->text) - p->len ? (size_t)w : sizeof(p->text) - p->len - 1;
}
