/*
 * ctlproto: request parsing and reply building for the control socket.
 * See ctlproto.h for the wire format.  Parsing is strict so a malformed
 * request gets a precise error instead of a guess.
 */
#include "ctlproto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static bool valid_cmd_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CTL_MAX_CMD || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool ctl_request_parse(const char *line, size_t len, struct ctl_request *req, json_t **reply)
{
	json_error_t jerr;
	json_t *body;

	memset(req, 0, sizeof(*req));
	if (len > CTL_MAX_LINE) {
		*reply = ctl_reply_error(CTL_ERR_TOO_LARGE, "request is %zu bytes; the limit is %d",
					 len, CTL_MAX_LINE);
		return false;
	}
	if (memchr(line, '\0', len) != NULL) {
		*reply = ctl_reply_error(CTL_ERR_BAD_JSON, "request contains a NUL byte");
		return false;
	}
	body = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL) {
		*reply = ctl_reply_error(CTL_ERR_BAD_JSON, "invalid JSON at column %d: %s",
					 jerr.column, jerr.text);
		return false;
	}
	if (!json_is_object(body)) {
		*reply = ctl_reply_error(CTL_ERR_BAD_REQUEST, "request must be a JSON object");
		goto err;
	}
	json_t *cmd = json_object_get(body, "cmd");
	if (!json_is_string(cmd)) {
		*reply = ctl_reply_error(CTL_ERR_BAD_REQUEST,
					 "request needs a string \"cmd\" (try {\"cmd\":\"help\"})");
		goto err;
	}
	if (!valid_cmd_name(json_string_value(cmd))) {
		*reply = ctl_reply_error(CTL_ERR_BAD_REQUEST,
					 "\"cmd\" must be a lowercase command name of at most %d characters",
					 CTL_MAX_CMD);
		goto err;
	}
	json_t *args = json_object_get(body, "args");
	if (args == NULL) {
		args = json_array();
		json_object_set_new(body, "args", args);
	} else if (!json_is_array(args)) {
		*reply = ctl_reply_error(CTL_ERR_BAD_REQUEST, "\"args\" must be an array of strings");
		goto err;
	}
	size_t i;
	json_t *a;
	json_array_foreach(args, i, a)
	{
		if (!json_is_string(a)) {
			*reply = ctl_reply_error(CTL_ERR_BAD_REQUEST,
						 "\"args\"[%zu] is not a string", i);
			goto err;
		}
	}
	req->body = body;
	req->cmd = json_string_value(cmd);
	req->args = args;
	*reply = NULL;
	return true;
err:
	json_decref(body);
	return false;
}

void ctl_request_clear(struct ctl_request *req)
{
	json_decref(req->body);
	memset(req, 0, sizeof(*req));
}

const char *ctl_arg(const struct ctl_request *req, size_t i)
{
	return json_string_value(json_array_get(req->args, i));
}

const struct ctl_cmd *ctl_cmd_find(const struct ctl_cmd *table, const char *name)
{
	for (const struct ctl_cmd *c = table; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

void ctl_call_reply(struct ctl_call *call, json_t *reply)
{
	call->deliver(call, reply);
}

json_t *ctl_dispatch(const struct ctl_cmd *table, void *ctx, struct ctl_call *call)
{
	const struct ctl_cmd *cmd = ctl_cmd_find(table, call->req.cmd);
	if (cmd == NULL)
		return ctl_reply_error(CTL_ERR_UNKNOWN_CMD,
				       "unknown command '%s' (migctl help lists them)", call->req.cmd);
	if (cmd->mutates && !call->peer.may_mutate)
		return ctl_reply_error(CTL_ERR_PERMISSION,
				       "'%s' changes the migration; uid %u may only read (allowed: "
				       "root, migd's own user, or the [control] group)",
				       cmd->name, (unsigned)call->peer.uid);
	return cmd->handler(ctx, call);
}

json_t *ctl_reply_ok(void)
{
	return json_pack("{s:b}", "ok", 1);
}

json_t *ctl_reply_error(const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code", code, "message", msg);
}

bool ctl_reply_is_ok(const json_t *reply)
{
	return json_is_true(json_object_get(reply, "ok"));
}

char *ctl_dump_line(const json_t *reply)
{
	char *s = json_dumps(reply, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s == NULL)
		return xstrdup("{\"ok\":false,\"error\":{\"code\":\"internal\","
			       "\"message\":\"reply could not be encoded\"}}\n");
	size_t n = strlen(s);
	char *line = xmalloc(n + 2);
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	free(s);
	return line;
}

json_t *ctl_table_to_json(const struct ctl_cmd *table)
{
	json_t *arr = json_array();
	for (const struct ctl_cmd *c = table; c->name != NULL; c++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b}", "name", c->name,
						     "usage", c->usage ? c->usage : c->name, "help",
						     c->help, "mutates", c->mutates));
	return arr;
}
