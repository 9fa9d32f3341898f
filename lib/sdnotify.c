/* sdnotify: see sdnotify.h. */
#include "config.h"

#include "sdnotify.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

static void notify(const char *msg)
{
	/* Keep NOTIFY_SOCKET set: we notify for the whole life of the process. */
	sd_notify(0, msg);
}

uint64_t sdnotify_watchdog_usec(void)
{
	uint64_t usec = 0;
	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
#else
static void notify(const char *msg)
{
	(void)msg;
}

uint64_t sdnotify_watchdog_usec(void)
{
	return 0;
}
#endif

void sdnotify_ready(void)
{
	notify("READY=1");
}

void sdnotify_reloading(void)
{
	/* systemd >= 253 wants MONOTONIC_USEC with RELOADING=1; older ignore it. */
	struct timespec ts;
	char buf[96];
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	notify(buf);
}

void sdnotify_stopping(void)
{
	notify("STOPPING=1");
}

void sdnotify_watchdog(void)
{
	notify("WATCHDOG=1");
}

void sdnotify_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), "STATUS=");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	notify(buf);
}
