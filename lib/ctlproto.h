/*
 * ctlproto: the control protocol spoken on migd's Unix socket.
 *
 * Newline-delimited JSON, one request, one response:
 *     -> {"cmd":"status"}
 *     <- {"ok":true,"phase":"init",...}
 *     -> {"cmd":"backfill","args":["pause"]}
 *     <- {"ok":false,"error":{"code":"failed","message":"..."}}
 * A request is an object with a string "cmd" ([a-z][a-z0-9_-]*, at most 32
 * chars), optional "args" (array of strings) and any other keys the command
 * reads (e.g. "dry_run": true).  Lines are capped at CTL_MAX_LINE bytes.
 *
 * This module parses requests, builds replies and dispatches through a
 * command table; it does no I/O (ctlsrv.c does).  Owns nothing global.
 */
#ifndef MIGD_CTLPROTO_H
#define MIGD_CTLPROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CTL_MAX_LINE (64 * 1024)
#define CTL_MAX_CMD  32

/* migctl exit codes; also documented in migctl(1). */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAILED = 1,      /* the daemon answered ok:false */
	CTL_EXIT_USAGE = 2,       /* bad migctl invocation */
	CTL_EXIT_UNREACHABLE = 3, /* no daemon on the socket */
	CTL_EXIT_PROTOCOL = 4,    /* the reply was not valid protocol */
	CTL_EXIT_NOT_READY = 5,   /* e.g. gate closed: ok:true but "ready":false */
};

/* Error codes in replies (error.code). */
#define CTL_ERR_BAD_JSON       "bad_json"
#define CTL_ERR_BAD_REQUEST    "bad_request"
#define CTL_ERR_UNKNOWN_CMD    "unknown_command"
#define CTL_ERR_TOO_LARGE      "too_large"
#define CTL_ERR_PERMISSION     "permission_denied"
#define CTL_ERR_BUSY           "busy"
#define CTL_ERR_INTERNAL       "internal"
#define CTL_ERR_FAILED         "failed"

/* Who is on the other end, from SO_PEERCRED. */
struct ctl_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool may_mutate; /* root, the daemon's uid, or the configured group */
};

struct ctl_request {
	const char *cmd;  /* borrowed from body */
	json_t *body;     /* owned: the whole request object */
	json_t *args;     /* borrowed from body: array of strings, never NULL */
};

/*
 * A call in progress.  A handler either returns its reply, or returns NULL
 * after arranging to call ctl_call_reply() later.  The transport keeps the
 * call alive until then even if the client has gone (the reply is dropped).
 */
struct ctl_call {
	struct ctl_request req;
	struct ctl_peer peer;
	/* set by the transport: delivers a reply, takes ownership of it */
	void (*deliver)(struct ctl_call *call, json_t *reply);
	void *transport; /* borrowed; the transport's connection */
};

typedef json_t *(*ctl_handler)(void *ctx, struct ctl_call *call);

struct ctl_cmd {
	const char *name;
	ctl_handler handler;
	bool mutates;      /* needs a permitted peer */
	const char *usage; /* e.g. "backfill pause|resume|status" */
	const char *help;
};

/* Finishes a deferred call; takes ownership of reply. */
void ctl_call_reply(struct ctl_call *call, json_t *reply);

/*
 * Runs call->req through table: unknown commands and mutating commands from
 * a peer that may not mutate get an error reply; otherwise the handler's
 * result (NULL = deferred) is returned.
 */
json_t *ctl_dispatch(const struct ctl_cmd *table, void *ctx, struct ctl_call *call);

/*
 * Parses one request line (without its newline).  On success fills req
 * (free with ctl_request_clear()); on failure returns false and *reply is
 * the error reply to send (caller decrefs).
 */
bool ctl_request_parse(const char *line, size_t len, struct ctl_request *req, json_t **reply)
	__attribute__((warn_unused_result));
void ctl_request_clear(struct ctl_request *req);

/* Positional argument i, or NULL. */
const char *ctl_arg(const struct ctl_request *req, size_t i);

const struct ctl_cmd *ctl_cmd_find(const struct ctl_cmd *table, const char *name);

/* Replies.  ctl_reply_ok() returns {"ok":true} to add fields to. */
json_t *ctl_reply_ok(void);
json_t *ctl_reply_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool ctl_reply_is_ok(const json_t *reply);

/* One compact line with a trailing newline; caller frees. */
char *ctl_dump_line(const json_t *reply);

/* `help` reply body: the table as an array of {name, usage, help, mutates}. */
json_t *ctl_table_to_json(const struct ctl_cmd *table);

#endif
