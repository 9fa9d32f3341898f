/*
 * log: stderr logging with syslog priority prefixes (see log.h).
 * Each line is formatted into one buffer and written with one write(2) so
 * lines from different threads never interleave.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum log_level log_min_level = LOG_LVL_INFO;
static bool log_timestamps = true;

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error", [LOG_LVL_WARN] = "warn",   [LOG_LVL_NOTICE] = "notice",
	[LOG_LVL_INFO] = "info",   [LOG_LVL_DEBUG] = "debug",
};

bool log_level_parse(const char *s, enum log_level *out)
{
	for (int i = LOG_LVL_ERROR; i <= LOG_LVL_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_LVL_WARN;
		return true;
	}
	return false;
}

const char *log_level_name(enum log_level lvl)
{
	if (lvl < LOG_LVL_ERROR || lvl > LOG_LVL_DEBUG)
		return "unknown";
	return level_names[lvl];
}

void log_set_timestamps(bool on)
{
	log_timestamps = on;
}

/* True if stderr is the journal stream systemd.exec(5) describes in JOURNAL_STREAM. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(enum log_level lvl)
{
	log_min_level = lvl;
	/* journald stamps entries itself. */
	log_timestamps = !stderr_is_journal();
}

void log_lines(enum log_level lvl, const char *text)
{
	const char *p = text;
	if (!log_enabled(lvl))
		return;
	while (*p) {
		size_t n = strcspn(p, "\n");
		log_write(lvl, "%.*s", (int)n, p);
		p += n;
		if (*p == '\n')
			p++;
	}
}

static void log_vwrite(enum log_level lvl, const char *event, const char *fmt, va_list ap)
{
	char buf[4096];
	size_t n = 0;
	int saved_errno = errno;

	n += (size_t)snprintf(buf, sizeof(buf), "<%d>", (int)lvl);
	if (log_timestamps) {
		struct timeval tv;
		struct tm tm;
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		n += strftime(buf + n, sizeof(buf) - n, "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%03ldZ %s: ", (long)tv.tv_usec / 1000,
				      log_level_name(lvl));
	}
	if (event != NULL)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "event=%s ", event);
	if (n < sizeof(buf)) {
		int w = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
		if (w > 0)
			n += (size_t)w;
	}
	if (n >= sizeof(buf) - 1) {
		n = sizeof(buf) - 5;
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n++] = '\n';
	/* Best effort: a failed log write has nowhere better to go. */
	if (write(STDERR_FILENO, buf, n) < 0) {
	}
	errno = saved_errno;
}

void log_write(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(lvl, NULL, fmt, ap);
	va_end(ap);
}

void log_write_event(enum log_level lvl, const char *event, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(lvl, event, fmt, ap);
	va_end(ap);
}
