/* migctl_fmt: readable views of control replies (see migctl_fmt.h). */
#include "migctl_fmt.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void print_scalar(FILE *out, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		fputs(json_string_value(v), out);
		break;
	case JSON_INTEGER:
		fprintf(out, "%lld", (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		fprintf(out, "%.3f", json_real_value(v));
		break;
	case JSON_TRUE:
		fputs("yes", out);
		break;
	case JSON_FALSE:
		fputs("no", out);
		break;
	case JSON_NULL:
		fputs("-", out);
		break;
	default:
		break;
	}
}

/* Generic view: nested objects indented, arrays of scalars joined by ", ". */
static void print_tree(FILE *out, const json_t *v, int indent)
{
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)v, key, val)
	{
		if (indent == 0 && strcmp(key, "ok") == 0)
			continue;
		fprintf(out, "%*s%s:", indent, "", key);
		if (json_is_object(val)) {
			fputc('\n', out);
			print_tree(out, val, indent + 2);
		} else if (json_is_array(val)) {
			size_t i;
			json_t *e;
			bool scalars = true;
			json_array_foreach(val, i, e) scalars &= !json_is_object(e) && !json_is_array(e);
			if (scalars) {
				fputc(' ', out);
				if (json_array_size(val) == 0)
					fputs("(none)", out);
				json_array_foreach(val, i, e)
				{
					if (i)
						fputs(", ", out);
					print_scalar(out, e);
				}
				fputc('\n', out);
			} else {
				fputc('\n', out);
				json_array_foreach(val, i, e)
				{
					fprintf(out, "%*s-\n", indent + 2, "");
					print_tree(out, e, indent + 4);
				}
			}
		} else {
			fputc(' ', out);
			print_scalar(out, val);
			fputc('\n', out);
		}
	}
}

static void print_migration(FILE *out, const json_t *m);

static void print_status(FILE *out, const json_t *r)
{
	json_t *m = json_object_get(r, "metrics");
	fprintf(out, "migration  %s\n", json_string_value(json_object_get(r, "migration")));
	fprintf(out, "phase      %s\n", json_string_value(json_object_get(r, "phase")));
	fprintf(out, "owner      %s\n", json_string_value(json_object_get(r, "owner")));
	fprintf(out, "source     %s\n",
		json_string_value(json_object_get(json_object_get(r, "source"), "engine")));
	fprintf(out, "target     %s\n",
		json_string_value(json_object_get(json_object_get(r, "target"), "engine")));
	fprintf(out, "uptime     %.0fs (since %s)\n",
		json_number_value(json_object_get(r, "uptime_seconds")),
		json_string_value(json_object_get(r, "started_at")));
	fprintf(out, "version    %s (%s), pid %lld\n",
		json_string_value(json_object_get(r, "version")),
		json_string_value(json_object_get(r, "commit")),
		(long long)json_integer_value(json_object_get(r, "pid")));
	fprintf(out, "config     %s\n", json_string_value(json_object_get(r, "config_path")));
	fprintf(out, "control    %s\n", json_string_value(json_object_get(r, "control_socket")));
	if (json_is_object(m))
		fprintf(out, "metrics    http://%s:%lld/metrics\n",
			json_string_value(json_object_get(m, "listen")),
			(long long)json_integer_value(json_object_get(m, "port")));
	else
		fprintf(out, "metrics    disabled\n");
	json_t *pending = json_object_get(r, "pending_restart");
	if (json_array_size(pending) > 0) {
		size_t i;
		json_t *k;
		fprintf(out, "restart needed for:");
		json_array_foreach(pending, i, k) fprintf(out, " %s", json_string_value(k));
		fputc('\n', out);
	}
	print_migration(out, json_object_get(r, "migration_state"));
	json_t *lr = json_object_get(r, "last_reload");
	if (json_is_object(lr))
		fprintf(out, "last reload %s: %s\n", json_string_value(json_object_get(lr, "at")),
			json_string_value(json_object_get(lr, "result")));
}

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static long long jint(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* "1.2M" style counts for humans. */
static const char *human(double v, char *buf, size_t n)
{
	if (v >= 1e9)
		snprintf(buf, n, "%.1fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, n, "%.1fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(buf, n, "%.0fk", v / 1e3);
	else
		snprintf(buf, n, "%.0f", v);
	return buf;
}

static void print_backfill(FILE *out, const json_t *b)
{
	char a[16], c[16], d[16];
	double eta = json_number_value(json_object_get(b, "eta_seconds"));
	long long total = jint(b, "chunks_total"), done = jint(b, "chunks_done");
	fprintf(out, "backfill   %lld/%lld chunks (%lld running, %lld failed), %s/%s rows, %s rows/s",
		done, total, jint(b, "chunks_running"), jint(b, "chunks_failed"),
		human((double)jint(b, "rows_done"), a, sizeof(a)),
		human((double)jint(b, "rows_estimated"), c, sizeof(c)),
		human(json_number_value(json_object_get(b, "rows_per_second")), d, sizeof(d)));
	if (total > 0 && done == total)
		fprintf(out, ", done");
	else if (eta >= 0)
		fprintf(out, ", ETA %.0fs", eta);
	else
		fprintf(out, ", ETA unknown");
	fprintf(out, "%s\n", json_is_true(json_object_get(b, "paused")) ? " [PAUSED]" : "");
	if (json_is_string(json_object_get(b, "last_error")))
		fprintf(out, "           last chunk error: %s\n", jstr(b, "last_error"));
}

static void print_lag(FILE *out, const json_t *r)
{
	const json_t *lag = json_object_get(r, "lag"), *st = json_object_get(r, "stream"),
		     *ap = json_object_get(r, "apply"), *cap = json_object_get(r, "capture");
	double lag_s = json_number_value(json_object_get(lag, "seconds"));
	if (json_is_object(lag) && json_is_object(json_object_get(r, "reverse")))
		fprintf(out, "lag        forward replication ended at the flip (see reverse)\n");
	else if (json_is_object(lag) && lag_s < 0)
		fprintf(out, "lag        unknown until the applier runs, %lld bytes\n", jint(lag, "bytes"));
	else if (json_is_object(lag))
		fprintf(out, "lag        %.1fs, %lld bytes\n", lag_s, jint(lag, "bytes"));
	if (json_is_object(st))
		fprintf(out,
			"stream     %s, received %s, confirmed %s, server at %s, %lld txns, "
			"spool %lld bytes\n",
			json_is_true(json_object_get(st, "connected")) ? "connected" : "DISCONNECTED",
			jstr(st, "received_pos"), jstr(st, "confirmed_pos"), jstr(st, "server_wal_end"),
			jint(st, "transactions"), jint(st, "spool_bytes"));
	if (json_is_object(ap) && json_is_true(json_object_get(ap, "running")))
		fprintf(out,
			"apply      applied %s, %lld txns, %lld changes, %lld failed records, %lld "
			"parked, retry queue %lld\n",
			jstr(ap, "applied_pos"), jint(ap, "transactions"), jint(ap, "changes"),
			jint(ap, "failed_records"), jint(ap, "parked_changes"),
			jint(ap, "retry_queue_depth"));
	else if (json_is_object(ap) && json_is_object(json_object_get(r, "reverse")))
		fprintf(out, "apply      forward replication stopped (after the flip)\n");
	else if (json_is_object(ap))
		fprintf(out, "apply      waiting for the backfill\n");
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(ap, "schema_errors"), i, e)
		fprintf(out, "SCHEMA ERROR %s\n", json_string_value(e));
	if (json_is_string(json_object_get(st, "last_error")))
		fprintf(out, "           stream error: %s\n", jstr(st, "last_error"));
	if (json_is_string(json_object_get(ap, "last_error")))
		fprintf(out, "           apply error: %s\n", jstr(ap, "last_error"));
	if (json_is_object(cap) && json_is_string(json_object_get(cap, "source")))
		fprintf(out,
			"binlog     captured at %s; the source holds %lld binlog bytes from where the "
			"stream resumes (no slot: nothing is kept for migd)\n",
			jstr(cap, "consistent_pos"), jint(cap, "binlog_retained_bytes"));
	else if (json_is_object(cap))
		fprintf(out, "slot       %s, captured at %s, retains %lld bytes of WAL\n",
			jstr(cap, "slot"), jstr(cap, "consistent_pos"), jint(cap, "slot_retained_bytes"));
}

static void print_lag_view(FILE *out, const json_t *r)
{
	fprintf(out, "phase      %s\n", jstr(r, "phase"));
	print_lag(out, r);
}

static void print_backfill_view(FILE *out, const json_t *r)
{
	fprintf(out, "phase      %s\n", jstr(r, "phase"));
	print_backfill(out, json_object_get(r, "backfill"));
}

static void print_migration(FILE *out, const json_t *m)
{
	if (!json_is_object(m))
		return;
	if (json_is_string(json_object_get(m, "error")) && !json_object_get(m, "activity")) {
		fprintf(out, "NOT RUNNING %s\n", jstr(m, "error"));
		return;
	}
	fprintf(out, "activity   %s\n", jstr(m, "activity"));
	if (json_is_string(json_object_get(m, "last_error")))
		fprintf(out, "ERROR      %s\n", jstr(m, "last_error"));
	fprintf(out, "tables     %lld\n", jint(m, "tables"));
	print_backfill(out, json_object_get(m, "backfill"));
	print_lag(out, m);
	const json_t *reh = json_object_get(m, "rehearsal");
	if (json_is_object(reh))
		fprintf(out, "rehearsal  %s at %s (phase %s)\n",
			json_is_true(json_object_get(reh, "passed")) ? "passed" : "FAILED",
			jstr(reh, "at"), jstr(reh, "phase"));
	const json_t *r = json_object_get(m, "reverse");
	if (json_is_object(r)) {
		const json_t *rs = json_object_get(r, "stream");
		fprintf(out,
			"reverse    %s, target -> source: applied %s, %lld changes, lag %lld bytes, "
			"%lld failed records, retry queue %lld\n",
			json_is_true(json_object_get(r, "running")) ? "running" : "STOPPED",
			jstr(r, "applied_pos"), jint(r, "changes"), jint(r, "lag_bytes"),
			jint(r, "failed_records"), jint(r, "retry_queue_depth"));
		if (json_is_string(json_object_get(rs, "last_error")))
			fprintf(out, "           reverse stream error: %s\n", jstr(rs, "last_error"));
		if (json_is_string(json_object_get(r, "last_error")))
			fprintf(out, "           reverse apply error: %s\n", jstr(r, "last_error"));
	}
}

static void print_validation(FILE *out, const json_t *r)
{
	const json_t *v = json_object_get(r, "validation");
	fprintf(out, "validation %s (%s, table %s)%s\n", jstr(v, "status"), jstr(v, "kinds"),
		jstr(v, "table"), json_is_true(json_object_get(r, "ready")) ? ": PASSED" : "");
	fprintf(out, "progress   %lld/%lld steps, %.0f rows/s", jint(v, "work_done"), jint(v, "work_total"),
		json_number_value(json_object_get(v, "rows_per_second")));
	double eta = json_number_value(json_object_get(v, "eta_seconds"));
	if (strcmp(jstr(v, "status"), "running") == 0)
		fprintf(out, eta >= 0 ? ", ETA %.0fs\n" : ", ETA unknown\n", eta);
	else
		fputc('\n', out);
	fprintf(out, "holds for  source positions %s .. %s\n", jstr(v, "position_min"),
		jstr(v, "position_max"));
	if (json_is_string(json_object_get(v, "error")))
		fprintf(out, "ERROR      %s\n", jstr(v, "error"));
	size_t i, j, k;
	json_t *res, *key, *col;
	json_array_foreach(json_object_get(v, "results"), i, res)
	{
		bool ok = json_is_true(json_object_get(res, "ok"));
		if (json_is_string(json_object_get(res, "name")))
			fprintf(out, "%-4s %s %s (expect %s): source %lld rows, target %lld rows",
				ok ? "ok" : "DIFF", jstr(res, "kind"), jstr(res, "name"),
				jstr(res, "expect"), jint(res, "source_rows"), jint(res, "target_rows"));
		else if (strcmp(jstr(res, "kind"), "recent") == 0)
			fprintf(out, "%-4s %s.%s recent since %s: %lld keys checked", ok ? "ok" : "DIFF",
				jstr(res, "schema"), jstr(res, "table"), jstr(res, "since"),
				jint(res, "keys_checked"));
		else
			fprintf(out, "%-4s %s.%s %s: source %lld rows, target %lld rows",
				ok ? "ok" : "DIFF", jstr(res, "schema"), jstr(res, "table"),
				jstr(res, "kind"), jint(res, "source_rows"), jint(res, "target_rows"));
		if (json_is_string(json_object_get(res, "error")))
			fprintf(out, " -- %s", jstr(res, "error"));
		if (json_object_get(res, "differing_keys"))
			fprintf(out, ", %lld differing keys in %lld of %lld chunks",
				jint(res, "differing_keys"), jint(res, "mismatched_chunks"),
				jint(res, "chunks"));
		fputc('\n', out);
		json_array_foreach(json_object_get(res, "keys"), j, key)
		{
			char *ks = json_dumps(json_object_get(key, "key"), JSON_COMPACT);
			fprintf(out, "       key %s: %s\n", ks, jstr(key, "issue"));
			free(ks);
			json_array_foreach(json_object_get(key, "columns"), k, col)
			{
				char *a = json_dumps(json_object_get(col, "source"), JSON_ENCODE_ANY);
				char *b = json_dumps(json_object_get(col, "target"), JSON_ENCODE_ANY);
				fprintf(out, "         %s: source %s, target %s\n", jstr(col, "column"), a, b);
				free(a);
				free(b);
			}
		}
	}
}

static void print_gate(FILE *out, const json_t *r)
{
	bool ready = json_is_true(json_object_get(r, "ready"));
	fprintf(out, "gate %s (phase %s)\n", ready ? "OPEN: every criterion passes" : "CLOSED",
		jstr(r, "phase"));
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(r, "criteria"), i, c)
	{
		char *v = json_dumps(json_object_get(c, "value"), JSON_ENCODE_ANY);
		fprintf(out, "  %-4s %-28s %-14s (%s)", json_is_true(json_object_get(c, "ok")) ? "ok" : "NO",
			jstr(c, "name"), v, jstr(c, "threshold"));
		if (json_is_string(json_object_get(c, "detail")))
			fprintf(out, " %s", jstr(c, "detail"));
		fputc('\n', out);
		free(v);
	}
}

static void print_side(FILE *out, const json_t *s)
{
	size_t i;
	json_t *e;
	if (!json_is_object(s))
		return;
	if (json_object_get(s, "read_only") != NULL) { /* MySQL/MariaDB: myfreeze's report */
		fprintf(out, "  %s: read_only %s, %lld sessions ended\n", jstr(s, "side"),
			json_is_true(json_object_get(s, "read_only")) ? "on" : "OFF",
			jint(s, "sessions_ended"));
		json_array_foreach(json_object_get(s, "still_writable"), i, e)
			fprintf(out, "    NOT ENFORCED: user %s can still write: %s\n",
				jstr(e, "user"), jstr(e, "why"));
		json_array_foreach(json_object_get(s, "writers_through_read_only"), i, e)
			fprintf(out,
				"    user %s (not frozen) %s; its writes are freeze violations\n",
				jstr(e, "user"), jstr(e, "why"));
		json_array_foreach(json_object_get(s, "inventory"), i, e)
			fprintf(out,
				"    writer: user %s, client %s, db %s, %s for %llds, "
				"%lld rows modified\n",
				jstr(e, "user"), jstr(e, "client"), jstr(e, "db"),
				jstr(e, "command"), jint(e, "seconds"), jint(e, "rows_modified"));
		return;
	}
	fprintf(out, "  %s: %lld grants revoked, %lld sessions ended\n", jstr(s, "side"),
		jint(s, "revoked"), jint(s, "terminated_sessions"));
	json_array_foreach(json_object_get(s, "still_writable"), i, e)
		fprintf(out, "    NOT ENFORCED: role %s can still write %s: %s\n", jstr(e, "role"),
			jstr(e, "table"), jstr(e, "why"));
	json_array_foreach(json_object_get(s, "roles_absent"), i, e)
		fprintf(out, "    role %s does not exist here\n", json_string_value(e));
	json_array_foreach(json_object_get(s, "inventory"), i, e)
		fprintf(out, "    writer: role %s, application %s, client %s, %s%s\n", jstr(e, "role"),
			jstr(e, "application_name"), jstr(e, "client"), jstr(e, "state"),
			json_is_true(json_object_get(e, "holds_write_xid")) ? ", holds a write transaction"
									    : "");
}

static void print_op(FILE *out, const json_t *r)
{
	const json_t *res = json_object_get(r, "result");
	fprintf(out, "phase      %s\n", jstr(r, "phase"));
	if (json_object_get(res, "final_position")) {
		fprintf(out, "final source position %s, %s in %.2fs, freeze %s\n",
			jstr(res, "final_position"),
			json_is_true(json_object_get(res, "drained")) ? "target drained" : "NOT drained yet",
			json_number_value(json_object_get(res, "seconds")),
			json_is_true(json_object_get(res, "enforced")) ? "enforced" : "NOT fully enforced");
		print_side(out, json_object_get(res, "source"));
		print_side(out, json_object_get(res, "target"));
	} else {
		print_tree(out, res, 0);
	}
}

static void print_rehearsal(FILE *out, const json_t *rep)
{
	size_t i;
	json_t *s;
	bool passed = json_is_true(json_object_get(rep, "passed"));
	fprintf(out, "rehearsal  %s at %s (phase %s), %.2fs\n",
		passed ? "PASSED: the reverse path target -> source works" : "FAILED",
		jstr(rep, "at"), jstr(rep, "phase"),
		json_number_value(json_object_get(rep, "seconds")));
	json_array_foreach(json_object_get(rep, "steps"), i, s)
	{
		const char *v = jstr(s, "verdict");
		if (strcmp(v, "passed") == 0)
			v = "ok";
		else if (strcmp(v, "failed") == 0)
			v = "FAILED";
		fprintf(out, "  %-7s %-24s %7.3fs  %s\n", v, jstr(s, "name"),
			json_number_value(json_object_get(s, "seconds")), jstr(s, "detail"));
	}
}

static void print_rehearse(FILE *out, const json_t *r)
{
	fprintf(out, "phase      %s\n", jstr(r, "phase"));
	print_rehearsal(out, json_object_get(r, "result"));
}

static void print_phase(FILE *out, const json_t *r)
{
	size_t i;
	json_t *n;
	fprintf(out, "phase %s since %s, owner %s\nnext:", jstr(r, "phase"), jstr(r, "since"),
		jstr(r, "owner"));
	json_array_foreach(json_object_get(r, "next"), i, n) fprintf(out, " %s", json_string_value(n));
	fputc('\n', out);
}

static void print_journal(FILE *out, const json_t *r)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(r, "journal"), i, e)
	{
		fprintf(out, "%s  %-12s -> %-12s owner %s -> %s  at %s", jstr(e, "at"), jstr(e, "from"),
			jstr(e, "to"), jstr(e, "owner_before"), jstr(e, "owner_after"),
			jstr(e, "source_pos"));
		if (json_is_string(json_object_get(e, "target_pos")))
			fprintf(out, " (target %s)", jstr(e, "target_pos"));
		fprintf(out, "  by %s: %s\n", jstr(e, "actor"), jstr(e, "reason"));
	}
}

static void print_help(FILE *out, const json_t *r)
{
	size_t i;
	json_t *c;
	fprintf(out, "commands (* = changes the migration; needs an operator):\n");
	json_array_foreach(json_object_get(r, "commands"), i, c)
	{
		fprintf(out, "  %c %-28s %s\n",
			json_is_true(json_object_get(c, "mutates")) ? '*' : ' ',
			json_string_value(json_object_get(c, "usage")),
			json_string_value(json_object_get(c, "help")));
	}
}

static void print_config(FILE *out, const json_t *r)
{
	size_t i;
	json_t *k;
	const char *section = NULL;
	fprintf(out, "# effective configuration from %s\n",
		json_string_value(json_object_get(r, "path")));
	json_array_foreach(json_object_get(r, "keys"), i, k)
	{
		const char *sec = json_string_value(json_object_get(k, "section"));
		if (section == NULL || strcmp(section, sec) != 0) {
			fprintf(out, "%s[%s]\n", section ? "\n" : "", sec);
			section = sec;
		}
		json_t *v = json_object_get(k, "value");
		json_t *line = json_object_get(k, "line");
		json_t *src = json_object_get(k, "secret_source");
		fprintf(out, "%s = ", json_string_value(json_object_get(k, "key")));
		if (json_is_null(v))
			fputs("(unset)", out);
		else
			print_scalar(out, v);
		if (json_is_integer(line))
			fprintf(out, "    ; line %lld", (long long)json_integer_value(line));
		else
			fputs("    ; default", out);
		if (json_is_string(src))
			fprintf(out, ", %s", json_string_value(src));
		fputc('\n', out);
	}
}

struct view {
	const char *cmd;
	void (*print)(FILE *out, const json_t *reply);
};

static const struct view views[] = {
	{"status", print_status},
	{"help", print_help},
	{"config", print_config},
	{"lag", print_lag_view},
	{"validate", print_validation},
	{"gate", print_gate},
	{"freeze", print_op},
	{"unfreeze", print_op},
	{"cutover", print_op},
	{"rollback", print_op},
	{"complete", print_op},
	{"abort", print_op},
	{"rehearse", print_rehearse},
	{"phase", print_phase},
	{"journal", print_journal},
	{"validation", print_validation},
	{"backfill", print_backfill_view},
	{NULL, NULL},
};

void migctl_print(FILE *out, const char *cmd, const json_t *reply)
{
	if (!json_is_true(json_object_get(reply, "ok"))) {
		json_t *e = json_object_get(reply, "error");
		/* "code failed" reads as the operation's code, not as "the backfill failed" */
		fprintf(out, "error: %s (code %s)\n",
			json_string_value(json_object_get(e, "message")),
			json_string_value(json_object_get(e, "code")));
		return;
	}
	for (const struct view *v = views; v->cmd != NULL; v++) {
		if (strcmp(v->cmd, cmd) == 0) {
			v->print(out, reply);
			return;
		}
	}
	if (json_object_size(reply) <= 1)
		fputs("ok\n", out);
	else
		print_tree(out, reply, 0);
}
