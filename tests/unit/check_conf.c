/* Unit tests for conf: every error path, secrets, reload merge, sample. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#define BASE                                                                                       \
	"[source]\nengine = postgresql\ndsn = host=a dbname=x\n"                                 \
	"[target]\nengine = postgresql\ndsn = host=b dbname=x\n"                                    \
	"[tables]\ninclude = public.*\n"

static struct migd_conf *load_ok(const char *text)
{
	struct migd_conf *c = NULL;
	char *errs = NULL;
	bool ok = conf_load_string("t.conf", text, &c, &errs);
	ck_assert_msg(ok, "unexpected errors: %s", errs ? errs : "");
	ck_assert_ptr_null(errs);
	return c;
}

/* Loads text expecting failure; returns the error text (caller frees). */
static char *load_bad(const char *text)
{
	struct migd_conf *c = NULL;
	char *errs = NULL;
	bool ok = conf_load_string("t.conf", text, &c, &errs);
	ck_assert_msg(!ok, "config unexpectedly accepted:\n%s", text);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(errs);
	return errs;
}

static void expect_error(const char *text, const char *needle)
{
	char *errs = load_bad(text);
	ck_assert_msg(strstr(errs, needle) != NULL, "expected '%s' in:\n%s", needle, errs);
	free(errs);
}

START_TEST(test_minimal_defaults)
{
	struct migd_conf *c = load_ok(BASE);
	ck_assert_int_eq(c->source.engine, ENGINE_POSTGRESQL);
	ck_assert_str_eq(c->source.dsn, "host=a dbname=x");
	ck_assert_ptr_null(c->source.password);
	ck_assert_str_eq(c->control_socket, "/run/migd/migd.sock");
	ck_assert_str_eq(c->metrics_listen, "127.0.0.1");
	ck_assert_int_eq(c->metrics_port, 9751);
	ck_assert(c->metrics_enabled);
	ck_assert_int_eq(c->control_idle_timeout_ms, 30000);
	ck_assert_int_eq(c->maintenance_interval_ms, 1000);
	ck_assert_str_eq(c->name, "migd");
	ck_assert_int_eq(c->log_level, LOG_LVL_INFO - LOG_LVL_ERROR);
	conf_free(c);
}
END_TEST

START_TEST(test_types_and_units)
{
	struct migd_conf *c = load_ok(BASE "[control]\nidle_timeout = 2m\nmax_clients = 7\n"
					   "[daemon]\nmaintenance_interval = 250ms\n"
					   "[metrics]\nenabled = no\nport = 0\nlisten = ::1\n"
					   "[log]\nlevel = debug\n"
					   "[migration]\nname = \"orders_v2\"\n");
	ck_assert_int_eq(c->control_idle_timeout_ms, 120000);
	ck_assert_int_eq(c->control_max_clients, 7);
	ck_assert_int_eq(c->maintenance_interval_ms, 250);
	ck_assert(!c->metrics_enabled);
	ck_assert_int_eq(c->metrics_port, 0);
	ck_assert_str_eq(c->metrics_listen, "::1");
	ck_assert_int_eq(c->log_level, LOG_LVL_DEBUG - LOG_LVL_ERROR);
	ck_assert_str_eq(c->name, "orders_v2");
	conf_free(c);
}
END_TEST

START_TEST(test_errors_carry_file_and_line)
{
	expect_error(BASE "[control]\nbogus = 1\n", "t.conf:10: unknown key 'bogus' in section [control]");
	expect_error(BASE "[nosuch]\na = 1\nb = 2\n", "t.conf:9: unknown section [nosuch]");
	expect_error(BASE "[metrics]\nport = abc\n", "t.conf:10: [metrics] port = 'abc': is not an integer");
	expect_error(BASE "[metrics]\nport = 70000\n", "must be between 0 and 65535");
	expect_error(BASE "[metrics]\nenabled = maybe\n", "is not a boolean");
	expect_error(BASE "[metrics]\nlisten = localhost\n", "must be an IPv4 or IPv6 address");
	expect_error(BASE "[control]\nidle_timeout = 5 parsecs\n", "has an unknown unit");
	expect_error(BASE "[control]\nidle_timeout = 10ms\n", "must be between 1000 and 3600000 ms");
	expect_error(BASE "[control]\nsocket = relative.sock\n", "must be an absolute path");
	expect_error(BASE "[log]\nlevel = loud\n", "must be one of: error, warn, notice, info, debug");
	expect_error(BASE "[migration]\nname = Bad-Name\n", "must start with a lowercase letter");
	expect_error(BASE "[migration]\nname = a-b\n", "may contain only a-z, 0-9 and _");
}
END_TEST

START_TEST(test_duplicate_key)
{
	expect_error(BASE "[metrics]\nport = 1\nport = 2\n",
		     "t.conf:11: duplicate key 'port' in [metrics] (first set on line 10)");
}
END_TEST

START_TEST(test_missing_required)
{
	expect_error("[source]\nengine = postgresql\n",
		     "t.conf: missing required key 'dsn' in section [source]");
	expect_error("", "missing required key 'engine' in section [target]");
}
END_TEST

START_TEST(test_syntax_error)
{
	expect_error(BASE "just words\n", "t.conf:9: syntax error");
	expect_error(BASE "[metrics\n", "t.conf:9: syntax error");
	expect_error(BASE "[metrics]\n= 3\n", "t.conf:10: missing key name");
}
END_TEST

START_TEST(test_long_line_is_refused_not_split)
{
	char text[1024];
	char longval[400];
	memset(longval, 'x', sizeof(longval) - 1);
	longval[sizeof(longval) - 1] = '\0';
	snprintf(text, sizeof(text), BASE "[migration]\nstate_dir = /%s\n", longval);
	char *errs = load_bad(text);
	ck_assert_msg(strstr(errs, "t.conf:10: line is longer than") != NULL, "%s", errs);
	/* The tail must not have been parsed as a line of its own. */
	ck_assert_msg(strstr(errs, ":11:") == NULL, "%s", errs);
	free(errs);
}
END_TEST

START_TEST(test_all_errors_reported)
{
	char *errs = load_bad("[source]\nengine = oracle\n[target]\nengine = mariadb\n"
			      "[metrics]\nport = -1\nfoo = 1\n");
	ck_assert_ptr_nonnull(strstr(errs, "t.conf:2:"));
	ck_assert_ptr_nonnull(strstr(errs, "t.conf:6:"));
	ck_assert_ptr_nonnull(strstr(errs, "t.conf:7:"));
	ck_assert_ptr_nonnull(strstr(errs, "missing required key 'dsn' in section [source]"));
	free(errs);
}
END_TEST

START_TEST(test_same_database_refused)
{
	expect_error("[source]\nengine = postgresql\ndsn = host=a\n"
		     "[target]\nengine = postgresql\ndsn = host=a\n",
		     "t.conf:6: [target] dsn is the same database as [source] dsn");
}
END_TEST

START_TEST(test_secret_from_env_and_file)
{
	char path[] = "/tmp/check_conf_secretXXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "host=s3cr3t-file\n", 17), 17);
	close(fd);
	setenv("CHECK_CONF_PW", "s3cr3t-env", 1);

	char text[512];
	snprintf(text, sizeof(text),
		 "[source]\nengine = postgresql\ndsn = host=a\npassword = env:CHECK_CONF_PW\n"
		 "[target]\nengine = mariadb\ndsn = file:%s\n[tables]\ninclude = s.*\n",
		 path);
	struct migd_conf *c = load_ok(text);
	ck_assert_str_eq(c->source.password, "s3cr3t-env");
	ck_assert_str_eq(c->target.dsn, "host=s3cr3t-file");

	/* Shown masked, with where it came from, never the value. */
	json_t *j = conf_to_json(c);
	char *dump = json_dumps(j, 0);
	ck_assert_ptr_null(strstr(dump, "s3cr3t"));
	ck_assert_ptr_nonnull(strstr(dump, "env:CHECK_CONF_PW"));
	ck_assert_ptr_nonnull(strstr(dump, "********"));
	free(dump);
	json_decref(j);
	conf_free(c);
	unlink(path);
}
END_TEST

START_TEST(test_secret_errors_do_not_leak)
{
	unsetenv("CHECK_CONF_MISSING");
	expect_error("[source]\nengine = postgresql\ndsn = host=a\npassword = env:CHECK_CONF_MISSING\n"
		     "[target]\nengine = postgresql\ndsn = host=b\n",
		     "t.conf:4: [source] password: environment variable CHECK_CONF_MISSING is not set");
	char *errs = load_bad("[source]\nengine = postgresql\ndsn = file:/nonexistent/pw\n"
			      "[target]\nengine = postgresql\ndsn = host=b\n");
	ck_assert_ptr_nonnull(strstr(errs, "cannot read secret file /nonexistent/pw"));
	free(errs);
	/* A bad inline secret is reported without its value. */
	errs = load_bad("[source]\nengine = postgresql\ndsn = hunter2\n"
			"[target]\nengine = postgresql\ndsn = host=b\n");
	ck_assert_ptr_null(strstr(errs, "hunter2"));
	ck_assert_ptr_nonnull(strstr(errs, "t.conf:3: [source] dsn: must be key=value pairs"));
	free(errs);
}
END_TEST

START_TEST(test_reload_merge)
{
	struct migd_conf *cur = load_ok(BASE "[log]\nlevel = info\n[metrics]\nport = 9000\n");
	struct migd_conf *next = load_ok(BASE "[log]\nlevel = debug\n[metrics]\nport = 9001\n");
	json_t *applied, *pending;
	struct migd_conf *m = conf_merge_reload(cur, next, &applied, &pending);
	ck_assert_int_eq(m->log_level, LOG_LVL_DEBUG - LOG_LVL_ERROR);
	ck_assert_int_eq(m->metrics_port, 9000); /* not reloadable: kept */
	ck_assert_int_eq(json_array_size(applied), 1);
	ck_assert_str_eq(json_string_value(json_array_get(applied, 0)), "log.level");
	ck_assert_int_eq(json_array_size(pending), 1);
	ck_assert_str_eq(json_string_value(json_array_get(pending, 0)), "metrics.port");
	json_decref(applied);
	json_decref(pending);
	conf_free(m);
	conf_free(cur);
}
END_TEST

START_TEST(test_sample_is_valid_and_complete)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	conf_print_sample(f);
	fclose(f);
	struct migd_conf *c = load_ok(buf);
	for (size_t i = 0; i < conf_nkeys; i++) {
		char needle[128];
		snprintf(needle, sizeof(needle), "\n%s = ", conf_keys[i].name);
		char commented[128];
		snprintf(commented, sizeof(commented), "\n#%s = ", conf_keys[i].name);
		ck_assert_msg(strstr(buf, needle) || strstr(buf, commented),
			      "sample lacks key %s.%s", conf_keys[i].section, conf_keys[i].name);
	}
	conf_free(c);
	free(buf);
}
END_TEST

START_TEST(test_quotes_keep_semicolons)
{
	struct migd_conf *c = load_ok(BASE "[migration]\nstate_dir = \"/var/lib/a ;b\" ; comment\n");
	ck_assert_str_eq(c->state_dir, "/var/lib/a ;b");
	conf_free(c);
	c = load_ok(BASE "[migration]\nstate_dir = /x ; comment\n");
	ck_assert_str_eq(c->state_dir, "/x");
	conf_free(c);
	expect_error(BASE "[migration]\nstate_dir = \"/x\n", "t.conf:10: a double quote is not closed");
}
END_TEST

START_TEST(test_checks)
{
	struct migd_conf *c = load_ok(BASE "[invariant paid]\nexpect = empty\n"
					   "target = SELECT id FROM invoices\n"
					   "   WHERE status = 'paid'\n"
					   "[query top]\nsource = SELECT 1 ORDER BY 1\n");
	ck_assert_int_eq(c->nchecks, 2);
	ck_assert_str_eq(c->checks[0].name, "paid");
	ck_assert_int_eq(c->checks[0].expect, EXPECT_EMPTY);
	ck_assert_str_eq(c->checks[0].target_sql, "SELECT id FROM invoices WHERE status = 'paid'");
	ck_assert_ptr_null(c->checks[0].source_sql);
	ck_assert_str_eq(c->checks[1].target_sql, "SELECT 1 ORDER BY 1");
	conf_free(c);
	expect_error(BASE "[invariant x]\nsource = SELECT 1\n", "expect = equal needs both");
	expect_error(BASE "[invariant x]\nexpect = maybe\n", "must be equal or empty");
	expect_error(BASE "[invariant x]\nsql = SELECT 1\n", "unknown key 'sql' in section [invariant x]");
	expect_error(BASE "[invariant x]\nexpect = empty\n", "needs source = SQL and/or target = SQL");
	expect_error(BASE "[query q]\nsource = SELECT 1\nsource = SELECT 2\n",
		     "t.conf:11: duplicate key 'source' in [query q]");
}
END_TEST

START_TEST(test_table_lists)
{
	struct migd_conf *c = load_ok(BASE "[tables]\nexclude = public.audit, app.tmp_*\n");
	conf_free(c);
	expect_error(BASE "[tables]\nexclude = audit\n", "schema.table names");
	expect_error(BASE "[tables]\nexclude = a.b.c\n", "schema.table names");
}
END_TEST

START_TEST(test_missing_file)
{
	struct migd_conf *c;
	char *errs;
	ck_assert(!conf_load("/nonexistent/migd.conf", &c, &errs));
	ck_assert_str_eq(errs, "/nonexistent/migd.conf: cannot open: No such file or directory");
	free(errs);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_minimal_defaults);
	tcase_add_test(tc, test_types_and_units);
	tcase_add_test(tc, test_errors_carry_file_and_line);
	tcase_add_test(tc, test_duplicate_key);
	tcase_add_test(tc, test_missing_required);
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_long_line_is_refused_not_split);
	tcase_add_test(tc, test_all_errors_reported);
	tcase_add_test(tc, test_same_database_refused);
	tcase_add_test(tc, test_secret_from_env_and_file);
	tcase_add_test(tc, test_secret_errors_do_not_leak);
	tcase_add_test(tc, test_reload_merge);
	tcase_add_test(tc, test_sample_is_valid_and_complete);
	tcase_add_test(tc, test_quotes_keep_semicolons);
	tcase_add_test(tc, test_checks);
	tcase_add_test(tc, test_table_lists);
	tcase_add_test(tc, test_missing_file);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
