/*
 * procmetrics: process_* metrics from /proc/self (see procmetrics.h).
 *
 * /proc/self/stat (proc(5)) is "pid (comm) state ppid ..." where comm may
 * hold spaces and parentheses, so fields are counted from the last ')'.
 * Field numbers below are proc(5)'s, 1-based:
 *   14 utime, 15 stime   CPU time in clock ticks (sysconf(_SC_CLK_TCK))
 *   22 starttime         ticks after boot; boot time is "btime" in /proc/stat
 *   23 vsize             bytes
 *   24 rss               pages (sysconf(_SC_PAGESIZE))
 * These are the same sources client_golang's process collector uses.
 */
#include "procmetrics.h"

#include "log.h"
#include "metrics.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define STAT_FIRST_FIELD 3 /* the field right after "(comm)" */
#define STAT_UTIME	 14
#define STAT_STIME	 15
#define STAT_STARTTIME	 22
#define STAT_VSIZE	 23
#define STAT_RSS	 24

struct procmetrics {
	struct metric *cpu; /* borrowed from the registry, like the rest */
	struct metric *rss;
	struct metric *vsize;
	struct metric *start_time;
	struct metric *open_fds;
	struct metric *max_fds;
	bool warned; /* /proc trouble is logged once, not on every scrape */
};

/*
 * Reads /proc/self/stat fields STAT_FIRST_FIELD..STAT_RSS into
 * f[0..] (index = field number - STAT_FIRST_FIELD).
 */
static bool read_self_stat(unsigned long long *f, size_t n)
{
	char buf[4096];
	ssize_t len;
	char *p;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return false;
	buf[len] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL)
		return false;
	p++;
	for (size_t i = 0; i < n; i++) {
		char *end;

		while (*p == ' ')
			p++;
		/* Field 3 is the state letter; it is skipped by the caller. */
		f[i] = strtoull(p, &end, 10);
		if (end == p && i > 0)
			return false;
		p = strchr(p, ' ');
		if (p == NULL && i + 1 < n)
			return false;
	}
	return true;
}

/* Boot time in seconds since the epoch from the "btime" line of /proc/stat. */
static bool read_boot_time(unsigned long long *btime)
{
	FILE *fp = fopen("/proc/stat", "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (fp == NULL)
		return false;
	while (!found && getline(&line, &cap, fp) > 0)
		found = sscanf(line, "btime %llu", btime) == 1;
	free(line);
	fclose(fp);
	return found;
}

/* Open descriptors, not counting the one used to list them. */
static bool count_open_fds(double *out)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	double n = 0;

	if (d == NULL)
		return false;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (atoi(de->d_name) == dirfd(d))
			continue;
		n++;
	}
	closedir(d);
	*out = n;
	return true;
}

static void procmetrics_warn(struct procmetrics *pm, const char *what)
{
	if (!pm->warned)
		log_warn("procmetrics: cannot read %s: %s (process_* metrics may be stale)", what,
			 errno != 0 ? strerror(errno) : "unexpected format");
	pm->warned = true;
}

static void procmetrics_collect(struct metrics_registry *reg, void *arg)
{
	struct procmetrics *pm = arg;
	unsigned long long f[STAT_RSS - STAT_FIRST_FIELD + 1];
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	double fds;

	(void)reg;
	errno = 0;
	if (read_self_stat(f, ARRAY_LEN(f)) && tck > 0) {
		double ticks =
		    (double)(f[STAT_UTIME - STAT_FIRST_FIELD] + f[STAT_STIME - STAT_FIRST_FIELD]);
		metrics_counter_set_abs(pm->cpu, ticks / (double)tck);
		metrics_set(pm->vsize, (double)f[STAT_VSIZE - STAT_FIRST_FIELD]);
		metrics_set(pm->rss, (double)f[STAT_RSS - STAT_FIRST_FIELD] * (double)page);
	} else {
		procmetrics_warn(pm, "/proc/self/stat");
	}
	if (count_open_fds(&fds))
		metrics_set(pm->open_fds, fds);
	else
		procmetrics_warn(pm, "/proc/self/fd");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		metrics_set(pm->max_fds,
			    rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
}

/* The start time never changes, so it is read once here rather than per scrape. */
static void procmetrics_set_start_time(struct procmetrics *pm)
{
	unsigned long long f[STAT_RSS - STAT_FIRST_FIELD + 1], btime;
	long tck = sysconf(_SC_CLK_TCK);

	errno = 0;
	if (!read_self_stat(f, ARRAY_LEN(f)) || !read_boot_time(&btime) || tck <= 0) {
		procmetrics_warn(pm, "/proc/self/stat or /proc/stat");
		return;
	}
	metrics_set(pm->start_time,
		    (double)btime + (double)f[STAT_STARTTIME - STAT_FIRST_FIELD] / (double)tck);
}

bool procmetrics_register(struct metrics_registry *reg)
{
	struct procmetrics *pm = xcalloc(1, sizeof(*pm));
	struct metric_family *cpu, *rss, *vsize, *start, *open_fds, *max_fds;

	cpu =
	    metrics_counter(reg, "process_cpu_seconds_total",
			    "Total user and system CPU time spent in seconds.", METRICS_NO_LABELS);
	rss = metrics_gauge(reg, "process_resident_memory_bytes", "Resident memory size in bytes.",
			    METRICS_NO_LABELS);
	vsize = metrics_gauge(reg, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
			      METRICS_NO_LABELS);
	start = metrics_gauge(reg, "process_start_time_seconds",
			      "Start time of the process since unix epoch in seconds.",
			      METRICS_NO_LABELS);
	open_fds = metrics_gauge(reg, "process_open_fds", "Number of open file descriptors.",
				 METRICS_NO_LABELS);
	max_fds = metrics_gauge(reg, "process_max_fds", "Maximum number of open file descriptors.",
				METRICS_NO_LABELS);
	if (cpu == NULL || rss == NULL || vsize == NULL || start == NULL || open_fds == NULL ||
	    max_fds == NULL)
		goto err; /* errors already logged */

	pm->cpu = metrics_child(cpu, NULL);
	pm->rss = metrics_child(rss, NULL);
	pm->vsize = metrics_child(vsize, NULL);
	pm->start_time = metrics_child(start, NULL);
	pm->open_fds = metrics_child(open_fds, NULL);
	pm->max_fds = metrics_child(max_fds, NULL);
	procmetrics_set_start_time(pm);
	metrics_add_collector(reg, procmetrics_collect, pm, free);
	return true;
err:
	free(pm);
	return false;
}
