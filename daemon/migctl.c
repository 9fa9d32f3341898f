/*
 * migctl: the operator's command line for migd.
 *
 *   migctl [--socket PATH] [--json] [--timeout SECS] COMMAND [ARG...] [--opt[=VALUE]...]
 *
 * Positional arguments become "args"; options after the command become
 * request keys ("--dry-run" -> "dry_run": true, "--table t" -> "table": "t").
 * Exit codes are those of enum ctl_exit (ctlproto.h).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlproto.h"
#include "migctl_fmt.h"
#include "util.h"

#define DEFAULT_SOCKET  "/run/migd/migd.sock"
#define MAX_REPLY_BYTES (64 * 1024 * 1024)

static void usage(FILE *out)
{
	fprintf(out,
		"usage: migctl [--socket PATH] [--json] [--timeout SECS] COMMAND [ARG...] [--opt[=VALUE]...]\n"
		"\n"
		"  -s, --socket PATH   control socket (default $MIGD_SOCKET or %s)\n"
		"  -j, --json          print the daemon's raw JSON reply\n"
		"  -t, --timeout SECS  give up waiting for a reply (default 300, 0 = wait forever)\n"
		"\n"
		"`migctl help` lists the commands the running daemon knows.\n"
		"exit codes: 0 ok, 1 command failed, 2 usage, 3 daemon unreachable,\n"
		"            4 bad reply, 5 not ready (e.g. the gate is closed)\n",
		DEFAULT_SOCKET);
}

/* Builds the request object from the command and what follows it. */
static json_t *build_request(int argc, char **argv)
{
	json_t *req = json_pack("{s:s}", "cmd", argv[0]);
	json_t *args = json_array();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			json_array_append_new(args, json_string(a));
			continue;
		}
		char *name = xstrdup(a + 2);
		char *eq = strchr(name, '=');
		json_t *val;
		if (eq != NULL) {
			*eq = '\0';
			val = json_string(eq + 1);
		} else if (i + 1 < argc && argv[i + 1][0] != '-') {
			val = json_string(argv[++i]);
		} else {
			val = json_true();
		}
		for (char *p = name; *p; p++)
			if (*p == '-')
				*p = '_';
		if (strcmp(name, "cmd") == 0 || strcmp(name, "args") == 0) {
			fprintf(stderr, "migctl: --%s is not an option of any command\n", name);
			free(name);
			json_decref(val);
			json_decref(req);
			json_decref(args);
			return NULL;
		}
		json_object_set_new(req, name, val);
		free(name);
	}
	json_object_set_new(req, "args", args);
	return req;
}

static int connect_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "migctl: socket path too long: %s\n", path);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "migctl: socket: %s\n", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		if (e == ENOENT || e == ECONNREFUSED)
			fprintf(stderr, "migctl: migd is not running (no daemon on %s: %s)\n", path,
				strerror(e));
		else if (e == EACCES)
			fprintf(stderr,
				"migctl: permission denied on %s (join the control group or use "
				"sudo)\n",
				path);
		else
			fprintf(stderr, "migctl: cannot connect to %s: %s\n", path, strerror(e));
		close(fd);
		return -1;
	}
	return fd;
}

static bool send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Reads one reply line; returns NULL with a message on error or timeout. */
static char *read_reply(int fd, int timeout_s, const char **err)
{
	size_t cap = 4096, len = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int rc = poll(&pfd, 1, timeout_s > 0 ? timeout_s * 1000 : -1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0) {
			*err = "timed out waiting for the reply (use --timeout)";
			goto err;
		}
		if (len + 1 >= cap) {
			if (cap >= MAX_REPLY_BYTES) {
				*err = "reply too large";
				goto err;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*err = "daemon closed the connection without a reply";
			goto err;
		}
		len += (size_t)n;
		char *nl = memchr(buf, '\n', len);
		if (nl != NULL) {
			*nl = '\0';
			return buf;
		}
	}
err:
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
		{"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	const char *path = getenv("MIGD_SOCKET");
	bool raw = false;
	int timeout_s = 300, opt;

	if (path == NULL || path[0] == '\0')
		path = DEFAULT_SOCKET;
	/* '+': stop at the command so its options are left for the request. */
	while ((opt = getopt_long(argc, argv, "+s:jt:h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'j':
			raw = true;
			break;
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 0 || v > 86400) {
				fprintf(stderr, "migctl: --timeout wants seconds (0..86400)\n");
				return CTL_EXIT_USAGE;
			}
			timeout_s = (int)v;
			break;
		}
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		case 'V':
			printf("migctl %s (%s)\n", PACKAGE_VERSION, MIGD_GIT_COMMIT);
			return CTL_EXIT_OK;
		default:
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}

	json_t *req = build_request(argc - optind, argv + optind);
	if (req == NULL)
		return CTL_EXIT_USAGE;
	const char *cmd = argv[optind];
	char *line = ctl_dump_line(req);
	json_decref(req);
	if (strlen(line) > CTL_MAX_LINE) {
		fprintf(stderr, "migctl: request too large\n");
		free(line);
		return CTL_EXIT_USAGE;
	}

	int fd = connect_socket(path);
	if (fd < 0) {
		free(line);
		return CTL_EXIT_UNREACHABLE;
	}
	const char *err = NULL;
	char *text = NULL;
	if (!send_all(fd, line, strlen(line)))
		err = "daemon closed the connection";
	else
		text = read_reply(fd, timeout_s, &err);
	close(fd);
	free(line);
	if (text == NULL) {
		fprintf(stderr, "migctl: %s\n", err);
		return CTL_EXIT_UNREACHABLE;
	}

	json_error_t jerr;
	json_t *reply = json_loads(text, 0, &jerr);
	if (!json_is_object(reply) || !json_is_boolean(json_object_get(reply, "ok"))) {
		fprintf(stderr, "migctl: the daemon's reply is not valid protocol: %.200s\n", text);
		free(text);
		json_decref(reply);
		return CTL_EXIT_PROTOCOL;
	}
	bool ok = ctl_reply_is_ok(reply);
	if (raw)
		printf("%s\n", text);
	else
		migctl_print(ok ? stdout : stderr, cmd, reply);
	int rc = !ok ? CTL_EXIT_FAILED
		 : json_is_false(json_object_get(reply, "ready")) ? CTL_EXIT_NOT_READY
								     : CTL_EXIT_OK;
	free(text);
	json_decref(reply);
	return rc;
}
