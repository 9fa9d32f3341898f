/*
 * hook: runs an operator-configured command (the flip and rollback hooks)
 * with `sh -c`, its own process group, extra environment variables, and a
 * timeout after which the whole group is killed.  The tail of its output is
 * kept for the reason shown when it fails.  Blocking (worker threads only).
 */
#ifndef MIGD_HOOK_H
#define MIGD_HOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/*
 * env: NULL-terminated "NAME=value" strings added to the environment.
 * Returns true if the command exited 0; otherwise false with err saying
 * how it ended (exit code, signal, timeout) and the end of its output.
 */
bool hook_run(const char *cmd, const char *const *env, int timeout_ms, struct err *err)
	__attribute__((warn_unused_result));

#endif
