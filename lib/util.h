/*
 * util: allocation that cannot fail silently, and small string helpers.
 * Out of memory is not recoverable in migd: the x* allocators log and abort,
 * and the fault tests prove a restart converges.
 */
#ifndef MIGD_UTIL_H
#define MIGD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n) __attribute__((malloc, returns_nonnull));
void *xcalloc(size_t nmemb, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
/* printf into a new string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2), returns_nonnull));

/*
 * A growable string for building SQL and messages: start zeroed, append
 * with sb_addf(), take the result from .s (owned; free() it).  .s is always
 * a valid string once anything was appended.
 */
struct strbuf {
	char *s;
	size_t len, cap;
};
void sb_addf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The string built so far (an empty string when nothing was added); caller frees. */
char *sb_take(struct strbuf *b);

/* Trims ASCII whitespace at both ends in place; returns s. */
char *str_trim(char *s);

/* Monotonic and wall clocks in microseconds. */
int64_t now_mono_usec(void);
int64_t now_wall_usec(void);

/*
 * An error message for the operator, filled where the failure happens and
 * carried up unchanged ("target: relation public.t does not exist").
 */
struct err {
	char msg[1024];
};
void err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the existing message: "what: <old message>". */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Problems collected one per line into a message that fits a struct err
 * (the catalog checks report every problem at once); n counts them all,
 * also those that no longer fit.
 */
struct problems {
	char text[sizeof(((struct err *)0)->msg) - 64];
	size_t len;
	int n;
};
void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sleeps up to ms milliseconds, waking early when *stop becomes true. */
void sleep_interruptible(int ms, const volatile bool *stop);

/*
 * Test-only hook (never set in production): armed is the value of the
 * environment variable MIGD_CRASH_AT, read once at start.  When it equals
 * point, logs the point and dies by SIGKILL right there, so a test can prove
 * what a restart does after a crash at that exact step.  armed NULL: no-op.
 */
void crash_point(const char *armed, const char *point);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
