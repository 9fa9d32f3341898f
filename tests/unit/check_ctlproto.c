/* Unit tests for ctlproto: request parsing, dispatch and replies. */
#include <check.h>
#include <string.h>

#include "ctlproto.h"

static const char *error_code(json_t *reply)
{
	return json_string_value(json_object_get(json_object_get(reply, "error"), "code"));
}

static void expect_parse_error(const char *line, const char *code, const char *msg_part)
{
	struct ctl_request req;
	json_t *reply = NULL;
	ck_assert_msg(!ctl_request_parse(line, strlen(line), &req, &reply), "accepted: %s", line);
	ck_assert_ptr_nonnull(reply);
	ck_assert(!ctl_reply_is_ok(reply));
	ck_assert_str_eq(error_code(reply), code);
	const char *msg = json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
	ck_assert_msg(strstr(msg, msg_part) != NULL, "'%s' not in '%s'", msg_part, msg);
	json_decref(reply);
}

START_TEST(test_parse_ok)
{
	const char *line = "{\"cmd\":\"backfill\",\"args\":[\"pause\"],\"dry_run\":true}";
	struct ctl_request req;
	json_t *reply = NULL;
	ck_assert(ctl_request_parse(line, strlen(line), &req, &reply));
	ck_assert_ptr_null(reply);
	ck_assert_str_eq(req.cmd, "backfill");
	ck_assert_str_eq(ctl_arg(&req, 0), "pause");
	ck_assert_ptr_null(ctl_arg(&req, 1));
	ck_assert(json_is_true(json_object_get(req.body, "dry_run")));
	ctl_request_clear(&req);

	ck_assert(ctl_request_parse("{\"cmd\":\"status\"}", 16, &req, &reply));
	ck_assert_int_eq(json_array_size(req.args), 0);
	ctl_request_clear(&req);
}
END_TEST

START_TEST(test_parse_malformed)
{
	expect_parse_error("{\"cmd\":", CTL_ERR_BAD_JSON, "invalid JSON");
	expect_parse_error("hello", CTL_ERR_BAD_JSON, "invalid JSON");
	expect_parse_error("", CTL_ERR_BAD_JSON, "invalid JSON");
	expect_parse_error("[1,2]", CTL_ERR_BAD_REQUEST, "must be a JSON object");
	expect_parse_error("\"status\"", CTL_ERR_BAD_JSON, "invalid JSON");
	expect_parse_error("{}", CTL_ERR_BAD_REQUEST, "needs a string \"cmd\"");
	expect_parse_error("{\"cmd\":5}", CTL_ERR_BAD_REQUEST, "needs a string \"cmd\"");
	expect_parse_error("{\"cmd\":\"Status\"}", CTL_ERR_BAD_REQUEST, "lowercase command name");
	expect_parse_error("{\"cmd\":\"\"}", CTL_ERR_BAD_REQUEST, "lowercase command name");
	expect_parse_error("{\"cmd\":\"a b\"}", CTL_ERR_BAD_REQUEST, "lowercase command name");
	expect_parse_error("{\"cmd\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", CTL_ERR_BAD_REQUEST,
			   "at most 32");
	expect_parse_error("{\"cmd\":\"x\",\"args\":\"pause\"}", CTL_ERR_BAD_REQUEST,
			   "\"args\" must be an array");
	expect_parse_error("{\"cmd\":\"x\",\"args\":[\"a\",1]}", CTL_ERR_BAD_REQUEST,
			   "\"args\"[1] is not a string");
	expect_parse_error("{\"cmd\":\"x\",\"cmd\":\"y\"}", CTL_ERR_BAD_JSON, "duplicate");
	expect_parse_error("{\"cmd\":\"status\"} trailing", CTL_ERR_BAD_JSON, "invalid JSON");
}
END_TEST

START_TEST(test_parse_nul_and_oversized)
{
	struct ctl_request req;
	json_t *reply;
	const char nul[] = "{\"cmd\":\"st\0atus\"}";
	ck_assert(!ctl_request_parse(nul, sizeof(nul) - 1, &req, &reply));
	ck_assert_str_eq(error_code(reply), CTL_ERR_BAD_JSON);
	json_decref(reply);

	size_t n = CTL_MAX_LINE + 1;
	char *big = malloc(n);
	memset(big, ' ', n);
	ck_assert(!ctl_request_parse(big, n, &req, &reply));
	ck_assert_str_eq(error_code(reply), CTL_ERR_TOO_LARGE);
	json_decref(reply);
	free(big);
}
END_TEST

static int handler_calls;

static json_t *h_read(void *ctx, struct ctl_call *call)
{
	handler_calls++;
	json_t *r = ctl_reply_ok();
	json_object_set_new(r, "ctx", json_string(ctx));
	return r;
}

static json_t *h_deferred(void *ctx, struct ctl_call *call)
{
	handler_calls++;
	return NULL;
}

static const struct ctl_cmd table[] = {
	{"read", h_read, false, "read", "reads"},
	{"write", h_read, true, "write X", "writes"},
	{"later", h_deferred, false, "later", "answers later"},
	{NULL, NULL, false, NULL, NULL},
};

static json_t *delivered;
static void deliver(struct ctl_call *call, json_t *reply)
{
	delivered = reply;
}

static json_t *dispatch(const char *line, bool may_mutate)
{
	struct ctl_call call = {.peer = {.uid = 1234, .may_mutate = may_mutate}, .deliver = deliver};
	json_t *reply;
	ck_assert(ctl_request_parse(line, strlen(line), &call.req, &reply));
	reply = ctl_dispatch(table, "the-ctx", &call);
	if (reply == NULL) {
		ctl_call_reply(&call, ctl_reply_ok());
		reply = delivered;
	}
	ctl_request_clear(&call.req);
	return reply;
}

START_TEST(test_dispatch)
{
	handler_calls = 0;
	json_t *r = dispatch("{\"cmd\":\"read\"}", false);
	ck_assert(ctl_reply_is_ok(r));
	ck_assert_str_eq(json_string_value(json_object_get(r, "ctx")), "the-ctx");
	json_decref(r);

	r = dispatch("{\"cmd\":\"nope\"}", true);
	ck_assert_str_eq(error_code(r), CTL_ERR_UNKNOWN_CMD);
	json_decref(r);

	r = dispatch("{\"cmd\":\"write\"}", false);
	ck_assert_str_eq(error_code(r), CTL_ERR_PERMISSION);
	ck_assert_ptr_nonnull(strstr(
		json_string_value(json_object_get(json_object_get(r, "error"), "message")),
		"uid 1234"));
	json_decref(r);
	ck_assert_int_eq(handler_calls, 1); /* refused calls never reach the handler */

	r = dispatch("{\"cmd\":\"write\"}", true);
	ck_assert(ctl_reply_is_ok(r));
	json_decref(r);

	r = dispatch("{\"cmd\":\"later\"}", false);
	ck_assert(ctl_reply_is_ok(r));
	json_decref(r);
	ck_assert_int_eq(handler_calls, 3);
}
END_TEST

START_TEST(test_replies)
{
	json_t *r = ctl_reply_error(CTL_ERR_FAILED, "it broke: %d", 42);
	char *line = ctl_dump_line(r);
	ck_assert_str_eq(line,
			 "{\"ok\":false,\"error\":{\"code\":\"failed\",\"message\":\"it broke: 42\"}}\n");
	free(line);
	json_decref(r);

	r = ctl_reply_ok();
	json_object_set_new(r, "text", json_string("a\nb"));
	line = ctl_dump_line(r);
	/* One line on the wire, whatever the content. */
	ck_assert_ptr_eq(strchr(line, '\n'), line + strlen(line) - 1);
	free(line);
	json_decref(r);

	json_t *t = ctl_table_to_json(table);
	ck_assert_int_eq(json_array_size(t), 3);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(t, 1), "usage")),
			 "write X");
	ck_assert(json_is_true(json_object_get(json_array_get(t, 1), "mutates")));
	json_decref(t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ctlproto");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_parse_ok);
	tcase_add_test(tc, test_parse_malformed);
	tcase_add_test(tc, test_parse_nul_and_oversized);
	tcase_add_test(tc, test_dispatch);
	tcase_add_test(tc, test_replies);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
