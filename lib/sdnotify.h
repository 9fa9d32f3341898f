/*
 * sdnotify: the daemon's side of systemd's notify protocol (Type=notify).
 * Built on libsystemd's sd_notify when available; without it every call is
 * a no-op, so call sites carry no #ifdefs.  Outside systemd (no
 * NOTIFY_SOCKET) the calls do nothing either.
 */
#ifndef MIGD_SDNOTIFY_H
#define MIGD_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

void sdnotify_ready(void);
void sdnotify_reloading(void);
void sdnotify_stopping(void);
void sdnotify_watchdog(void);
/* STATUS= line, e.g. "phase=catching_up lag=0.4s". */
void sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Watchdog interval systemd asked for (WATCHDOG_USEC), or 0 if none. */
uint64_t sdnotify_watchdog_usec(void);

#endif
