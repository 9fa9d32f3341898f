/* hook: run an operator's command with a timeout (see hook.h). */
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

#define TAIL 400

bool hook_run(const char *cmd, const char *const *env, int timeout_ms, struct err *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		err_set(err, "hook: pipe: %s", strerror(errno));
		return false;
	}
	pid_t pid = fork();
	if (pid < 0) {
		err_set(err, "hook: fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		setpgid(0, 0);
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		unsetenv("NOTIFY_SOCKET"); /* only migd speaks to systemd */
		for (const char *const *e = env; e && *e; e++)
			putenv((char *)*e);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char tail[TAIL + 1];
	size_t tlen = 0;
	int64_t deadline = now_mono_usec() + (int64_t)timeout_ms * 1000;
	bool timed_out = false;
	for (;;) {
		int left = (int)((deadline - now_mono_usec()) / 1000);
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		if (poll(&p, 1, left) <= 0)
			continue;
		char buf[512];
		ssize_t n = read(fds[0], buf, sizeof(buf));
		if (n <= 0)
			break; /* EOF: the command closed its output (normally: it exited) */
		for (ssize_t i = 0; i < n; i++) {
			if (tlen == TAIL) {
				memmove(tail, tail + 1, TAIL - 1);
				tlen--;
			}
			tail[tlen++] = buf[i] == '\n' ? ' ' : buf[i];
		}
	}
	close(fds[0]);
	if (timed_out)
		kill(-pid, SIGKILL);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	tail[tlen] = '\0';
	if (!timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return true;
	if (timed_out)
		err_set(err, "timed out after %d ms and was killed; output: %s", timeout_ms, tail);
	else if (WIFEXITED(st))
		err_set(err, "exited %d; output: %s", WEXITSTATUS(st), tail);
	else
		err_set(err, "killed by signal %d; output: %s", WTERMSIG(st), tail);
	return false;
}
