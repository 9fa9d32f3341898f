/*
 * log: the one logging API of migd.
 *
 * Lines go to stderr with a syslog priority prefix ("<3>", "<6>", ...) that
 * journald turns into the entry's priority; outside journald a UTC timestamp
 * is added.  Machine-readable events are single lines of key=value pairs:
 *
 *     log_event(LOG_LVL_INFO, "phase", "from=%s to=%s", a, b);
 *     -> <6>event=phase from=synced to=frozen
 *
 * The level test happens in the macro, before any argument is evaluated.
 * Owns only the global log settings (level, timestamp choice).
 */
#ifndef MIGD_LOG_H
#define MIGD_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LVL_ERROR = 3, /* syslog LOG_ERR */
	LOG_LVL_WARN = 4,  /* LOG_WARNING */
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

extern enum log_level log_min_level;

/* Parses "error|warn|notice|info|debug"; false on anything else. */
bool log_level_parse(const char *s, enum log_level *out) __attribute__((warn_unused_result));
const char *log_level_name(enum log_level lvl);

/* Timestamps on or off; log_init() turns them off under journald. */
void log_set_timestamps(bool on);
void log_init(enum log_level lvl);

void log_write(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_write_event(enum log_level lvl, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_enabled(lvl) ((lvl) <= log_min_level)
#define LOG_AT(lvl, ...)                                                                           \
	do {                                                                                       \
		if (log_enabled(lvl))                                                              \
			log_write(lvl, __VA_ARGS__);                                               \
	} while (0)
#define log_error(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) LOG_AT(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)

/* Logs each line of text as its own entry, so journald gives each the level. */
void log_lines(enum log_level lvl, const char *text);

/* A key=value event; fmt carries the pairs after "event=NAME". */
#define log_event(lvl, name, ...)                                                                  \
	do {                                                                                       \
		if (log_enabled(lvl))                                                              \
			log_write_event(lvl, name, __VA_ARGS__);                                   \
	} while (0)

#endif
