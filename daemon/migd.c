/*
 * migd: main, start-up and the event loop wiring.
 *
 * Start-up order matters for systemd: READY=1 is sent only once the control
 * socket and the metrics listener accept connections.  Signals arrive
 * through the loop (evsignal), and one persistent maintenance timer does the
 * periodic work (STATUS=, watchdog pings).
 *
 * Without --foreground, migd detaches and the parent exits only when the
 * child is serving (0) or has failed (its exit code), so a script that
 * starts migd knows the outcome.  Under systemd use --foreground.
 */
#include "config.h"

#include "migd.h"

#include <errno.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmds.h"
#include "ctlsrv.h"
#include "httpsrv.h"
#include "log.h"
#include "procmetrics.h"
#include "sdnotify.h"
#include "util.h"

#define DEFAULT_CONF SYSCONFDIR "/migd/migd.conf"

static int ready_fd = -1; /* detached start-up: write end of the readiness pipe */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: migd [-c FILE] [--foreground]\n"
		"       migd --check-config [-c FILE]\n"
		"       migd --print-sample-config\n"
		"       migd --version\n"
		"\n"
		"  -c, --config FILE      configuration file (default %s)\n"
		"  -f, --foreground       stay attached to the terminal (use under systemd)\n"
		"      --check-config     validate the configuration and exit (78 if refused)\n"
		"      --print-sample-config  print an annotated config with every key\n",
		DEFAULT_CONF);
}

/* Tells a waiting parent how start-up ended, then closes the pipe. */
static void report_startup(int code)
{
	if (ready_fd < 0)
		return;
	unsigned char c = (unsigned char)code;
	if (write(ready_fd, &c, 1) != 1) {
	}
	close(ready_fd);
	ready_fd = -1;
}

/* Forks; the parent waits for the child's start-up verdict and exits with it. */
static void detach(void)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		log_error("pipe: %s", strerror(errno));
		exit(MIGD_EXIT_FAILURE);
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		exit(MIGD_EXIT_FAILURE);
	}
	if (pid > 0) {
		unsigned char code;
		close(fds[1]);
		ssize_t n = read(fds[0], &code, 1);
		if (n == 1)
			_exit(code);
		/* The child died before saying anything. */
		int st = 0;
		waitpid(pid, &st, 0);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : MIGD_EXIT_FAILURE);
	}
	close(fds[0]);
	ready_fd = fds[1];
	setsid();
	if (chdir("/") != 0) {
	}
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		close(devnull);
	}
}

enum phase migd_phase(struct migd *d)
{
	return d->migration ? migration_phase(d->migration) : d->phase;
}

static void update_status(struct migd *d)
{
	enum phase p = migd_phase(d);
	metrics_set_state(d->m_phase, phase_names, PHASE__MAX, p);
	if (d->migration != NULL) {
		migration_update_metrics(d->migration);
		char *line = migration_status_line(d->migration);
		sdnotify_status("%s owner=%s", line, owner_name(phase_owner(p)));
		free(line);
	} else {
		sdnotify_status("phase=%s owner=%s%s%s", phase_name(p), owner_name(phase_owner(p)),
				d->migration_error ? " error=" : "",
				d->migration_error ? d->migration_error : "");
	}
}

static void maintenance_cb(evutil_socket_t fd, short what, void *arg)
{
	struct migd *d = arg;
	update_status(d);
	if (d->watchdog_usec > 0)
		sdnotify_watchdog();
}

/* One timer: the maintenance period, shortened to half the watchdog interval. */
static void arm_maintenance(struct migd *d)
{
	int64_t usec = d->conf->maintenance_interval_ms * 1000;
	if (d->watchdog_usec > 0 && (int64_t)(d->watchdog_usec / 2) < usec)
		usec = (int64_t)(d->watchdog_usec / 2);
	struct timeval tv = {usec / 1000000, usec % 1000000};
	event_add(d->ev_maint, &tv);
}

static struct ctlsrv_limits ctl_limits(const struct migd_conf *c)
{
	return (struct ctlsrv_limits){
		.group = c->control_group,
		.max_clients = (int)c->control_max_clients,
		.idle_timeout_ms = (int)c->control_idle_timeout_ms,
	};
}

void migd_reload(struct migd *d, const char *actor)
{
	struct migd_conf *next;
	char *errs = NULL;
	json_t *applied, *pending;

	sdnotify_reloading();
	d->last_reload_wall_usec = now_wall_usec();
	free(d->last_reload_error);
	d->last_reload_error = NULL;
	if (!conf_load(d->conf_path, &next, &errs)) {
		log_error("reload refused, keeping the running configuration:");
		log_lines(LOG_LVL_ERROR, errs);
		log_event(LOG_LVL_ERROR, "reload", "result=refused actor=%s", actor);
		d->last_reload_error = errs;
		metrics_inc(d->m_reloads_failed);
		sdnotify_ready();
		return;
	}
	next = conf_merge_reload(d->conf, next, &applied, &pending);

	struct ctlsrv_limits lim = ctl_limits(next);
	char *err = NULL;
	if (!ctlsrv_set_limits(d->ctl, &lim, &err)) {
		log_error("reload refused: %s; keeping the running configuration", err);
		d->last_reload_error = err;
		json_decref(applied);
		json_decref(pending);
		conf_free(next);
		metrics_inc(d->m_reloads_failed);
		sdnotify_ready();
		return;
	}
	conf_free(d->conf);
	d->conf = next;
	log_min_level = (enum log_level)(LOG_LVL_ERROR + d->conf->log_level);
	arm_maintenance(d);

	/* Keys waiting for a restart accumulate until the restart. */
	size_t i;
	json_t *k;
	json_array_foreach(pending, i, k)
	{
		bool dup = false;
		size_t j;
		json_t *old;
		json_array_foreach(d->pending_restart, j, old) dup |= json_equal(old, k);
		if (!dup)
			json_array_append(d->pending_restart, k);
	}
	char *a = json_dumps(applied, JSON_COMPACT), *p = json_dumps(pending, JSON_COMPACT);
	log_event(LOG_LVL_NOTICE, "reload", "result=ok actor=%s applied=%s needs_restart=%s", actor,
		  a, p);
	free(a);
	free(p);
	json_decref(applied);
	json_decref(pending);
	metrics_inc(d->m_reloads_ok);
	sdnotify_ready();
}

void migd_shutdown(struct migd *d, const char *why)
{
	log_event(LOG_LVL_NOTICE, "shutdown", "reason=%s phase=%s", why, phase_name(migd_phase(d)));
	sdnotify_stopping();
	event_base_loopexit(d->base, NULL);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct migd *d = arg;
	if (sig == SIGHUP)
		migd_reload(d, "SIGHUP");
	else
		migd_shutdown(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void validation_done_cb(evutil_socket_t fd, short what, void *arg)
{
	migd_validation_done(arg);
}

static void op_done_cb(evutil_socket_t fd, short what, void *arg)
{
	migd_op_done(arg);
}

static bool health_cb(void *arg, const char **reason)
{
	(void)arg;
	(void)reason;
	return true; /* the loop answered, and nothing yet can make us unhealthy */
}

static bool setup_metrics(struct migd *d)
{
	static const char *const build_labels[] = {"version", "commit", NULL};
	static const char *const phase_labels[] = {"phase", NULL};
	static const char *const reload_labels[] = {"result", NULL};

	d->metrics = metrics_new();
	struct metric_family *build =
		metrics_gauge(d->metrics, "migd_build_info", "migd version and git commit; always 1",
			      build_labels);
	struct metric_family *up =
		metrics_gauge(d->metrics, "migd_up", "1 while the daemon is serving", NULL);
	d->m_phase = metrics_gauge(d->metrics, "migd_phase",
				   "current migration phase (1 for the current one)", phase_labels);
	struct metric_family *reloads = metrics_counter(
		d->metrics, "migd_config_reloads_total", "configuration reloads by result",
		reload_labels);
	if (build == NULL || up == NULL || d->m_phase == NULL || reloads == NULL ||
	    !procmetrics_register(d->metrics))
		return false; /* errors already logged */
	metrics_set(metrics_childv(build, PACKAGE_VERSION, MIGD_GIT_COMMIT, NULL), 1);
	metrics_set(metrics_childv(up, NULL), 1);
	d->m_reloads_ok = metrics_childv(reloads, "ok", NULL);
	d->m_reloads_failed = metrics_childv(reloads, "refused", NULL);
	metrics_set_state(d->m_phase, phase_names, PHASE__MAX, d->phase);
	return true;
}

static int start(struct migd *d)
{
	char *err = NULL;

	if (!setup_metrics(d))
		return MIGD_EXIT_SOFTWARE;

	struct ctlsrv_limits lim = ctl_limits(d->conf);
	d->ctl = ctlsrv_start(d->base, d->conf->control_socket, d->conf->control_socket_group, &lim, migd_commands, d, &err);
	if (d->ctl == NULL) {
		log_error("control socket: %s", err);
		free(err);
		return MIGD_EXIT_CANTCREAT;
	}
	if (d->conf->metrics_enabled) {
		d->http = httpsrv_start(d->base, d->conf->metrics_listen, (int)d->conf->metrics_port,
					d->metrics, health_cb, d, &err);
		if (d->http == NULL) {
			log_error("metrics endpoint: %s", err);
			free(err);
			return MIGD_EXIT_CANTCREAT;
		}
		d->metrics_port = httpsrv_port(d->http);
	}

	d->ev_term = evsignal_new(d->base, SIGTERM, signal_cb, d);
	d->ev_int = evsignal_new(d->base, SIGINT, signal_cb, d);
	d->ev_hup = evsignal_new(d->base, SIGHUP, signal_cb, d);
	d->ev_maint = event_new(d->base, -1, EV_PERSIST, maintenance_cb, d);
	d->ev_vdone = event_new(d->base, -1, 0, validation_done_cb, d);
	d->ev_opdone = event_new(d->base, -1, 0, op_done_cb, d);
	event_add(d->ev_term, NULL);
	event_add(d->ev_int, NULL);
	event_add(d->ev_hup, NULL);
	d->watchdog_usec = sdnotify_watchdog_usec();
	arm_maintenance(d);
	return MIGD_EXIT_OK;
}

static void cleanup(struct migd *d)
{
	/* Workers first: in-flight batches roll back, the spool is closed. */
	migration_stop(d->migration);
	d->migration = NULL;
	free(d->migration_error);
	if (d->ev_term)
		event_free(d->ev_term);
	if (d->ev_int)
		event_free(d->ev_int);
	if (d->ev_hup)
		event_free(d->ev_hup);
	if (d->ev_maint)
		event_free(d->ev_maint);
	/* Waiting callers get an answer (their connections are gone by now). */
	for (int i = 0; i < d->nvwait; i++)
		ctl_call_reply(d->vwait[i], ctl_reply_error(CTL_ERR_FAILED, "migd is stopping"));
	d->nvwait = 0;
	if (d->ev_vdone)
		event_free(d->ev_vdone);
	if (d->op_call != NULL)
		ctl_call_reply(d->op_call, ctl_reply_error(CTL_ERR_FAILED, "migd is stopping"));
	d->op_call = NULL;
	json_decref(d->op_result);
	if (d->ev_opdone)
		event_free(d->ev_opdone);
	ctlsrv_free(d->ctl);
	httpsrv_free(d->http);
	metrics_free(d->metrics);
	conf_free(d->conf);
	json_decref(d->pending_restart);
	free(d->last_reload_error);
	free(d->conf_path);
	if (d->base)
		event_base_free(d->base);
	libevent_global_shutdown();
}

/* Loads the config, printing every problem; returns NULL if refused. */
static struct migd_conf *load_config(const char *path)
{
	struct migd_conf *c;
	char *errs;
	if (conf_load(path, &c, &errs))
		return c;
	log_lines(LOG_LVL_ERROR, errs);
	log_error("configuration refused");
	free(errs);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"foreground", no_argument, NULL, 'f'},
		{"check-config", no_argument, NULL, 'C'},
		{"print-sample-config", no_argument, NULL, 'S'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_CONF;
	bool foreground = false, check_only = false;
	int opt;

	log_init(LOG_LVL_INFO);
	while ((opt = getopt_long(argc, argv, "c:fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'C':
			check_only = true;
			break;
		case 'S':
			conf_print_sample(stdout);
			return MIGD_EXIT_OK;
		case 'V':
			printf("migd %s (%s)\n", PACKAGE_VERSION, MIGD_GIT_COMMIT);
			return MIGD_EXIT_OK;
		case 'h':
			usage(stdout);
			return MIGD_EXIT_OK;
		default:
			usage(stderr);
			return MIGD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "migd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return MIGD_EXIT_USAGE;
	}

	struct migd d = {0};
	d.conf = load_config(path);
	if (d.conf == NULL)
		return MIGD_EXIT_CONFIG;
	if (check_only) {
		printf("%s: configuration ok (%zu keys)\n", path, conf_nkeys);
		conf_free(d.conf);
		return MIGD_EXIT_OK;
	}
	log_min_level = (enum log_level)(LOG_LVL_ERROR + d.conf->log_level);
	/* Absolute, so a reload finds the file after detach() leaves the cwd. */
	char *abs = realpath(path, NULL);
	d.conf_path = abs ? abs : xstrdup(path);
	if (!foreground)
		detach();

	signal(SIGPIPE, SIG_IGN);
	d.started_mono_usec = now_mono_usec();
	d.started_wall_usec = now_wall_usec();
	d.phase = PHASE_INIT;
	d.pending_restart = json_array();
	pthread_mutex_init(&d.op_lock, NULL);
	/* Workers wake the loop with event_active(): libevent must be thread-aware. */
	evthread_use_pthreads();
	d.base = event_base_new();
	if (d.base == NULL) {
		log_error("cannot create the event loop");
		report_startup(MIGD_EXIT_FAILURE);
		cleanup(&d);
		return MIGD_EXIT_FAILURE;
	}

	int rc = start(&d);
	if (rc != MIGD_EXIT_OK) {
		report_startup(rc);
		cleanup(&d);
		return rc;
	}
	log_event(LOG_LVL_NOTICE, "start",
		  "version=%s pid=%d config=%s socket=%s metrics=%s:%d phase=%s", PACKAGE_VERSION,
		  (int)getpid(), path, d.conf->control_socket,
		  d.conf->metrics_enabled ? d.conf->metrics_listen : "off", d.metrics_port,
		  phase_name(d.phase));
	d.migration = migration_start(d.conf, d.metrics, &d.migration_error);
	if (d.migration == NULL)
		log_error("migration not started: %s", d.migration_error);
	update_status(&d);
	sdnotify_ready();
	report_startup(MIGD_EXIT_OK);

	event_base_dispatch(d.base);

	cleanup(&d);
	log_event(LOG_LVL_NOTICE, "stopped", "exit=0");
	return MIGD_EXIT_OK;
}
