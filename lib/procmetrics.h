/*
 * procmetrics: the standard Prometheus process_* metrics for this process,
 * read from /proc/self at scrape time (Linux only).
 *
 * Owns nothing after registration: the collector state it allocates is handed
 * to the registry, which frees it in metrics_free().
 */
#ifndef MIGD_PROCMETRICS_H
#define MIGD_PROCMETRICS_H

#include <stdbool.h>

struct metrics_registry;

/*
 * Registers process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_start_time_seconds, process_open_fds
 * and process_max_fds, plus a collector that refreshes them on every render.
 * Returns false (logged) when a name is already taken by something else.
 * Unreadable /proc files are logged once as a warning and leave the old values.
 */
bool procmetrics_register(struct metrics_registry *reg) __attribute__((warn_unused_result));

#endif
