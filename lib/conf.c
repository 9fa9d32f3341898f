/*
 * conf: loading, validating, reloading and showing the configuration.
 *
 * inih does the INI syntax; we feed it through our own line reader so every
 * handler call knows its line number and an over-long line is an error
 * rather than being split in two (inih's INI_MAX_LINE is 200 here).
 * All problems in a file are collected, not just the first.
 */
#include "conf.h"

#include <errno.h>
#include <stdarg.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define CONF_MAX_ERRORS 20
#define QUOTED_SEMICOLON '\x01' /* stands for ';' inside quotes while inih parses */

struct parse_state {
	const char *name; /* file name for messages */
	struct migd_conf *conf;
	bool seen[CONF_MAX_KEYS];
	/* input: either a FILE or a string cursor */
	FILE *fp;
	const char *str;
	int lineno;
	int section_line; /* line of the last [section] header */
	bool continuation; /* the line just read continues the previous value */
	bool after_key;    /* a key was read in this section (inih continues after it) */
	char *linebuf; /* owned, getline buffer */
	size_t linecap;
	/* errors */
	char *errs; /* owned, newline-separated */
	size_t errlen;
	int nerrs;
	char last_bad_section[64];
};

static void add_error(struct parse_state *ps, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_error(struct parse_state *ps, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (++ps->nerrs > CONF_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char *entry = line > 0 ? xasprintf("%s:%d: %s\n", ps->name, line, msg)
			       : xasprintf("%s: %s\n", ps->name, msg);
	size_t n = strlen(entry);
	ps->errs = xrealloc(ps->errs, ps->errlen + n + 1);
	memcpy(ps->errs + ps->errlen, entry, n + 1);
	ps->errlen += n;
	free(entry);
}

/* inih reader: one line per call, counted; over-long lines become errors. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse_state *ps = stream;
	ssize_t len;

	if (ps->fp != NULL) {
		len = getline(&ps->linebuf, &ps->linecap, ps->fp);
		if (len < 0)
			return NULL;
	} else {
		if (*ps->str == '\0')
			return NULL;
		const char *nl = strchr(ps->str, '\n');
		len = nl ? nl - ps->str + 1 : (ssize_t)strlen(ps->str);
		if ((size_t)len + 1 > ps->linecap) {
			ps->linecap = (size_t)len + 1;
			ps->linebuf = xrealloc(ps->linebuf, ps->linecap);
		}
		memcpy(ps->linebuf, ps->str, (size_t)len);
		ps->linebuf[len] = '\0';
		ps->str += len;
	}
	ps->lineno++;
	if (len >= num - 1 && ps->linebuf[len - 1] == '\n')
		len--; /* the newline does not count */
	if (len >= num - 1) {
		add_error(ps, ps->lineno, "line is longer than %d characters (use file:PATH for long values)",
			  num - 2);
		snprintf(str, (size_t)num, "; skipped\n");
		return str;
	}
	memcpy(str, ps->linebuf, (size_t)len);
	str[len] = '\0';
	/*
	 * inih cuts " ;" comments even inside double quotes; hide ';' inside
	 * quotes from it (unquote() puts them back) and refuse a quote left open.
	 */
	bool quoted = false;
	for (char *q = str; *q; q++) {
		if (*q == QUOTED_SEMICOLON) {
			add_error(ps, ps->lineno, "control character 0x01 is not allowed");
			snprintf(str, (size_t)num, "; skipped\n");
			return str;
		}
		if (*q == '"')
			quoted = !quoted;
		else if (*q == ';' && quoted)
			*q = QUOTED_SEMICOLON;
		else if (*q == ';' && !quoted && q > str && (q[-1] == ' ' || q[-1] == '\t'))
			break; /* an inline comment: inih drops the rest */
	}
	if (quoted) {
		add_error(ps, ps->lineno, "a double quote is not closed");
		snprintf(str, (size_t)num, "; skipped\n");
		return str;
	}
	const char *p = str;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '[')
		ps->section_line = ps->lineno;
	/* inih's own rule: an indented, non-comment line after a key continues its value. */
	bool blank = *p == '\0' || *p == '\n' || *p == '\r';
	bool comment = *p == ';' || *p == '#';
	ps->continuation = p != str && !blank && !comment && ps->after_key;
	if (*p == '[' && !ps->continuation)
		ps->after_key = false;
	else if (!blank && !comment && !ps->continuation)
		ps->after_key = true;
	return str;
}

static int key_index(const char *section, const char *name)
{
	for (size_t i = 0; i < conf_nkeys; i++)
		if (strcmp(conf_keys[i].section, section) == 0 &&
		    strcmp(conf_keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

static bool section_known(const char *section)
{
	for (size_t i = 0; i < conf_nkeys; i++)
		if (strcmp(conf_keys[i].section, section) == 0)
			return true;
	return false;
}

static void *field(struct migd_conf *c, const struct conf_key *k)
{
	return (char *)c + k->offset;
}

static const void *cfield(const struct migd_conf *c, const struct conf_key *k)
{
	return (const char *)c + k->offset;
}

/* Parses "<number><unit>" with units from table; returns NULL or an error. */
struct unit {
	const char *suffix;
	int64_t mult;
};

static const char *parse_scaled(const char *s, const struct unit *units, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || errno == ERANGE || v < 0)
		return "is not a non-negative number";
	while (*end == ' ')
		end++;
	for (const struct unit *u = units; u->suffix != NULL; u++) {
		if (strcmp(end, u->suffix) == 0) {
			if (u->mult != 0 && v > INT64_MAX / u->mult)
				return "is too large";
			*out = (int64_t)v * u->mult;
			return NULL;
		}
	}
	return "has an unknown unit";
}

static const struct unit duration_units[] = {
	{"ms", 1}, {"s", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000}, {NULL, 0}};
static const struct unit size_units[] = {{"", 1},
					 {"B", 1},
					 {"kB", 1024},
					 {"KB", 1024},
					 {"MB", 1024 * 1024},
					 {"GB", 1024LL * 1024 * 1024},
					 {NULL, 0}};

/* Reads a secret given as env:NAME, file:PATH or inline; NULL + *err on failure. */
static char *resolve_secret(const char *raw, char **origin, char *err, size_t errsz)
{
	if (strncmp(raw, "env:", 4) == 0) {
		const char *v = getenv(raw + 4);
		if (v == NULL) {
			snprintf(err, errsz, "environment variable %s is not set", raw + 4);
			return NULL;
		}
		*origin = xstrdup(raw);
		return xstrdup(v);
	}
	if (strncmp(raw, "file:", 5) == 0) {
		FILE *fp = fopen(raw + 5, "r");
		if (fp == NULL) {
			snprintf(err, errsz, "cannot read secret file %s: %s", raw + 5, strerror(errno));
			return NULL;
		}
		char *line = NULL;
		size_t cap = 0;
		ssize_t n = getline(&line, &cap, fp);
		fclose(fp);
		if (n <= 0) {
			free(line);
			snprintf(err, errsz, "secret file %s is empty", raw + 5);
			return NULL;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		*origin = xstrdup(raw);
		return line;
	}
	*origin = xstrdup("inline");
	return xstrdup(raw);
}

/* Strips one pair of surrounding double quotes, so values may keep spaces or ';'. */
static char *unquote(char *v)
{
	for (char *q = v; *q; q++)
		if (*q == QUOTED_SEMICOLON)
			*q = ';';
	size_t n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v[n - 1] = '\0';
		return v + 1;
	}
	return v;
}

/*
 * Sets key idx from text.  Returns NULL on success or a message; errbuf is
 * scratch space for messages that need formatting.
 */
static const char *set_value(struct migd_conf *c, int idx, const char *text, char *errbuf,
			     size_t errsz)
{
	const struct conf_key *k = &conf_keys[idx];
	void *f = field(c, k);
	char *owned = NULL;
	const char *err = NULL;

	if (k->flags & CONF_F_SECRET) {
		char *origin = NULL;
		owned = resolve_secret(text, &origin, errbuf, errsz);
		if (owned == NULL)
			return errbuf;
		free(c->origin[idx].secret_source);
		c->origin[idx].secret_source = origin;
		text = owned;
	}

	switch (k->type) {
	case CONF_STRING: {
		char *s = owned ? owned : xstrdup(text);
		owned = NULL;
		if (k->validate != NULL && (err = k->validate(&s)) != NULL) {
			free(s);
			break;
		}
		free(*(char **)f);
		*(char **)f = s;
		break;
	}
	case CONF_INT: {
		char *end;
		errno = 0;
		long long v = strtoll(text, &end, 10);
		if (end == text || *end != '\0' || errno == ERANGE) {
			err = "is not an integer";
			break;
		}
		if (v < k->min || v > k->max) {
			snprintf(errbuf, errsz, "must be between %lld and %lld", (long long)k->min,
				 (long long)k->max);
			err = errbuf;
			break;
		}
		*(int64_t *)f = v;
		break;
	}
	case CONF_DURATION:
	case CONF_SIZE: {
		int64_t v;
		bool dur = k->type == CONF_DURATION;
		if ((err = parse_scaled(text, dur ? duration_units : size_units, &v)) != NULL) {
			snprintf(errbuf, errsz, "%s (expected e.g. %s)", err,
				 dur ? "250ms, 5s, 2m, 1h" : "512, 64kB, 16MB, 2GB");
			err = errbuf;
			break;
		}
		if (v < k->min || v > k->max) {
			snprintf(errbuf, errsz, "must be between %lld and %lld %s", (long long)k->min,
				 (long long)k->max, dur ? "ms" : "bytes");
			err = errbuf;
			break;
		}
		*(int64_t *)f = v;
		break;
	}
	case CONF_BOOL:
		if (strcmp(text, "true") == 0 || strcmp(text, "yes") == 0 || strcmp(text, "on") == 0 ||
		    strcmp(text, "1") == 0)
			*(bool *)f = true;
		else if (strcmp(text, "false") == 0 || strcmp(text, "no") == 0 ||
			 strcmp(text, "off") == 0 || strcmp(text, "0") == 0)
			*(bool *)f = false;
		else
			err = "is not a boolean (true/false, yes/no, on/off, 1/0)";
		break;
	case CONF_ENUM: {
		int i;
		for (i = 0; k->choices[i] != NULL; i++)
			if (strcmp(text, k->choices[i]) == 0)
				break;
		if (k->choices[i] == NULL) {
			size_t n = (size_t)snprintf(errbuf, errsz, "must be one of:");
			for (int j = 0; k->choices[j] != NULL && n < errsz; j++)
				n += (size_t)snprintf(errbuf + n, errsz - n, "%s %s", j ? "," : "",
						      k->choices[j]);
			err = errbuf;
			break;
		}
		*(int *)f = i;
		break;
	}
	}
	free(owned);
	return err;
}

/* "invariant NAME" / "query NAME" sections: one struct conf_check each. */
static bool check_section(const char *section, enum conf_check_kind *kind, const char **name)
{
	if (strncmp(section, "invariant ", 10) == 0) {
		*kind = CHECK_INVARIANT;
		*name = section + 10;
	} else if (strncmp(section, "query ", 6) == 0) {
		*kind = CHECK_QUERY;
		*name = section + 6;
	} else {
		return false;
	}
	while (**name == ' ')
		(*name)++;
	return true;
}

static void on_check_entry(struct parse_state *ps, enum conf_check_kind kind, const char *cname,
			   const char *section, const char *key, const char *value)
{
	struct migd_conf *c = ps->conf;
	struct conf_check *ck = NULL;
	for (int i = 0; i < c->nchecks; i++)
		if (c->checks[i].kind == kind && strcmp(c->checks[i].name, cname) == 0)
			ck = &c->checks[i];
	if (cname[0] == '\0') {
		add_error(ps, ps->section_line, "[%s] needs a name, e.g. [%s paid_invoices]", section,
			  kind == CHECK_INVARIANT ? "invariant" : "query");
		return;
	}
	if (ck == NULL) {
		c->checks = xrealloc(c->checks, (size_t)(c->nchecks + 1) * sizeof(*c->checks));
		ck = &c->checks[c->nchecks++];
		memset(ck, 0, sizeof(*ck));
		ck->kind = kind;
		ck->name = xstrdup(cname);
		ck->line = ps->section_line;
	}
	char **slot = strcmp(key, "source") == 0 ? &ck->source_sql
		      : strcmp(key, "target") == 0 ? &ck->target_sql
						   : NULL;
	if (slot != NULL) {
		if (*slot != NULL && !ps->continuation) {
			add_error(ps, ps->lineno, "duplicate key '%s' in [%s]", key, section);
			return;
		}
		char *joined = *slot ? xasprintf("%s %s", *slot, value) : xstrdup(value);
		free(*slot);
		*slot = joined;
		return;
	}
	if (strcmp(key, "expect") == 0) {
		if (strcmp(value, "equal") == 0)
			ck->expect = EXPECT_EQUAL;
		else if (strcmp(value, "empty") == 0)
			ck->expect = EXPECT_EMPTY;
		else
			add_error(ps, ps->lineno, "[%s] expect = '%s': must be equal or empty", section,
				  value);
		return;
	}
	add_error(ps, ps->lineno, "unknown key '%s' in section [%s] (source, target, expect)", key,
		  section);
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;
	char errbuf[256];
	int line = ps->lineno;
	enum conf_check_kind ckind;
	const char *cname;

	if (check_section(section, &ckind, &cname)) {
		char *v = xstrdup(value);
		on_check_entry(ps, ckind, cname, section, name, unquote(v));
		free(v);
		return 1;
	}

	if (!section_known(section)) {
		/* Report an unknown section once, not for each of its keys. */
		if (strcmp(ps->last_bad_section, section) != 0) {
			snprintf(ps->last_bad_section, sizeof(ps->last_bad_section), "%s", section);
			add_error(ps, ps->section_line, "unknown section [%s]", section);
		}
		return 1;
	}
	if (name[0] == '\0') {
		add_error(ps, line, "missing key name before '='");
		return 1;
	}
	int idx = key_index(section, name);
	if (idx < 0) {
		add_error(ps, line, "unknown key '%s' in section [%s]", name, section);
		return 1;
	}
	if (ps->continuation) {
		add_error(ps, line, "an indented line continues '%s'; only [invariant] and [query] "
				    "SQL may span lines",
			  name);
		return 1;
	}
	if (ps->seen[idx]) {
		add_error(ps, line, "duplicate key '%s' in [%s] (first set on line %d)", name, section,
			  ps->conf->origin[idx].line);
		return 1;
	}
	char *v = xstrdup(value);
	const char *err = set_value(ps->conf, idx, unquote(v), errbuf, sizeof(errbuf));
	free(v);
	if (err != NULL) {
		/* Never echo a secret's value back. */
		if (conf_keys[idx].flags & CONF_F_SECRET)
			add_error(ps, line, "[%s] %s: %s", section, name, err);
		else
			add_error(ps, line, "[%s] %s = '%s': %s", section, name, value, err);
		return 1;
	}
	ps->seen[idx] = true;
	ps->conf->origin[idx].line = line;
	return 1;
}

static void apply_defaults(struct parse_state *ps)
{
	char errbuf[256];
	for (size_t i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (ps->seen[i])
			continue;
		if (k->flags & CONF_F_REQUIRED) {
			add_error(ps, 0, "missing required key '%s' in section [%s]", k->name,
				  k->section);
			continue;
		}
		if (k->def == NULL)
			continue;
		const char *err = set_value(ps->conf, (int)i, k->def, errbuf, sizeof(errbuf));
		if (err != NULL)
			add_error(ps, 0, "BUG: default of [%s] %s is invalid: %s", k->section, k->name,
				  err);
	}
}

static void check_cross(struct parse_state *ps)
{
	struct migd_conf *c = ps->conf;
	for (int i = 0; i < c->nchecks; i++) {
		struct conf_check *ck = &c->checks[i];
		const char *what = ck->kind == CHECK_INVARIANT ? "invariant" : "query";
		if (ck->source_sql == NULL && ck->target_sql == NULL)
			add_error(ps, ck->line, "[%s %s] needs source = SQL and/or target = SQL", what,
				  ck->name);
		else if (ck->expect == EXPECT_EQUAL && ck->kind == CHECK_INVARIANT &&
			 (ck->source_sql == NULL || ck->target_sql == NULL))
			add_error(ps, ck->line, "[%s %s] expect = equal needs both source and target",
				  what, ck->name);
		else if (ck->kind == CHECK_QUERY && ck->target_sql == NULL && ck->source_sql)
			ck->target_sql = xstrdup(ck->source_sql); /* same query on both sides */
		else if (ck->kind == CHECK_QUERY && ck->source_sql == NULL && ck->target_sql)
			ck->source_sql = xstrdup(ck->target_sql);
	}
	if (c->source.dsn && c->target.dsn && c->source.engine == c->target.engine &&
	    strcmp(c->source.dsn, c->target.dsn) == 0)
		add_error(ps, c->origin[key_index("target", "dsn")].line,
			  "[target] dsn is the same database as [source] dsn");
}

static bool load(struct parse_state *ps, struct migd_conf **out, char **errs)
{
	ps->conf = xcalloc(1, sizeof(*ps->conf));
	ps->conf->path = xstrdup(ps->name);
	if (conf_nkeys > CONF_MAX_KEYS) {
		log_error("BUG: %zu config keys exceed CONF_MAX_KEYS", conf_nkeys);
		abort();
	}
	int rc = ini_parse_stream(read_line, ps, on_entry, ps);
	if (rc > 0 && ps->nerrs == 0)
		add_error(ps, rc, "syntax error (expected [section] or key = value)");
	else if (rc > 0) {
		/* inih reports only its first syntax error; ours are already in. */
		bool already = false;
		char tag[64];
		snprintf(tag, sizeof(tag), ":%d:", rc);
		already = ps->errs && strstr(ps->errs, tag) != NULL;
		if (!already)
			add_error(ps, rc, "syntax error (expected [section] or key = value)");
	}
	apply_defaults(ps);
	check_cross(ps);
	free(ps->linebuf);
	if (ps->nerrs > 0) {
		if (ps->nerrs > CONF_MAX_ERRORS) {
			char *more = xasprintf("%s%s: ... and %d more problems\n", ps->errs, ps->name,
					       ps->nerrs - CONF_MAX_ERRORS);
			free(ps->errs);
			ps->errs = more;
		}
		/* Drop the final newline: callers print one message. */
		ps->errs[strlen(ps->errs) - 1] = '\0';
		*errs = ps->errs;
		conf_free(ps->conf);
		*out = NULL;
		return false;
	}
	*errs = NULL;
	*out = ps->conf;
	return true;
}

bool conf_load(const char *path, struct migd_conf **out, char **errs)
{
	struct parse_state ps = {.name = path};
	ps.fp = fopen(path, "r");
	if (ps.fp == NULL) {
		*out = NULL;
		*errs = xasprintf("%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	bool ok = load(&ps, out, errs);
	fclose(ps.fp);
	return ok;
}

bool conf_load_string(const char *name, const char *text, struct migd_conf **out, char **errs)
{
	struct parse_state ps = {.name = name, .str = text};
	return load(&ps, out, errs);
}

void conf_free(struct migd_conf *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < conf_nkeys; i++) {
		if (conf_keys[i].type == CONF_STRING)
			free(*(char **)field(c, &conf_keys[i]));
		free(c->origin[i].secret_source);
	}
	for (int i = 0; i < c->nchecks; i++) {
		free(c->checks[i].name);
		free(c->checks[i].source_sql);
		free(c->checks[i].target_sql);
	}
	free(c->checks);
	free(c->path);
	free(c);
}

/* Canonical text of a key's value (what the sample and `migctl config` show). */
static char *value_text(const struct migd_conf *c, const struct conf_key *k)
{
	const void *f = cfield(c, k);
	switch (k->type) {
	case CONF_STRING:
		return *(char *const *)f ? xstrdup(*(char *const *)f) : NULL;
	case CONF_INT:
		return xasprintf("%lld", (long long)*(const int64_t *)f);
	case CONF_BOOL:
		return xstrdup(*(const bool *)f ? "true" : "false");
	case CONF_ENUM:
		return xstrdup(k->choices[*(const int *)f]);
	case CONF_DURATION: {
		int64_t ms = *(const int64_t *)f;
		if (ms % 3600000 == 0 && ms)
			return xasprintf("%lldh", (long long)(ms / 3600000));
		if (ms % 60000 == 0 && ms)
			return xasprintf("%lldm", (long long)(ms / 60000));
		if (ms % 1000 == 0)
			return xasprintf("%llds", (long long)(ms / 1000));
		return xasprintf("%lldms", (long long)ms);
	}
	case CONF_SIZE: {
		int64_t b = *(const int64_t *)f;
		if (b % (1024 * 1024 * 1024) == 0 && b)
			return xasprintf("%lldGB", (long long)(b >> 30));
		if (b % (1024 * 1024) == 0 && b)
			return xasprintf("%lldMB", (long long)(b >> 20));
		if (b % 1024 == 0 && b)
			return xasprintf("%lldkB", (long long)(b >> 10));
		return xasprintf("%lld", (long long)b);
	}
	}
	return NULL;
}

static bool value_equal(const struct migd_conf *a, const struct migd_conf *b,
			const struct conf_key *k)
{
	const void *fa = cfield(a, k), *fb = cfield(b, k);
	switch (k->type) {
	case CONF_STRING: {
		const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
		return (sa == NULL && sb == NULL) || (sa && sb && strcmp(sa, sb) == 0);
	}
	case CONF_INT:
	case CONF_DURATION:
	case CONF_SIZE:
		return *(const int64_t *)fa == *(const int64_t *)fb;
	case CONF_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case CONF_ENUM:
		return *(const int *)fa == *(const int *)fb;
	}
	return false;
}

/* Copies key k's value (and origin) from src into dst, replacing dst's. */
static void copy_value(struct migd_conf *dst, const struct migd_conf *src, size_t i)
{
	const struct conf_key *k = &conf_keys[i];
	if (k->type == CONF_STRING) {
		char **d = field(dst, k);
		const char *s = *(char *const *)cfield(src, k);
		free(*d);
		*d = s ? xstrdup(s) : NULL;
	} else {
		size_t sz = k->type == CONF_BOOL ? sizeof(bool)
			    : k->type == CONF_ENUM ? sizeof(int)
						   : sizeof(int64_t);
		memcpy(field(dst, k), cfield(src, k), sz);
	}
	free(dst->origin[i].secret_source);
	dst->origin[i].line = src->origin[i].line;
	dst->origin[i].secret_source =
		src->origin[i].secret_source ? xstrdup(src->origin[i].secret_source) : NULL;
}

struct migd_conf *conf_merge_reload(const struct migd_conf *cur, struct migd_conf *next,
				    json_t **applied, json_t **pending)
{
	*applied = json_array();
	*pending = json_array();
	for (size_t i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (value_equal(cur, next, k))
			continue;
		char *qual = xasprintf("%s.%s", k->section, k->name);
		if (k->flags & CONF_F_RELOAD) {
			json_array_append_new(*applied, json_string(qual));
		} else {
			json_array_append_new(*pending, json_string(qual));
			copy_value(next, cur, i);
		}
		free(qual);
	}
	return next;
}

json_t *conf_to_json(const struct migd_conf *c)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];
		char *text = value_text(c, k);
		json_t *v;
		if (text == NULL)
			v = json_null();
		else if (k->flags & CONF_F_SECRET)
			v = json_string("********");
		else
			v = json_string(text);
		free(text);
		json_t *o = json_pack("{s:s, s:s, s:o, s:b, s:b}", "section", k->section, "key",
				      k->name, "value", v, "reloadable", !!(k->flags & CONF_F_RELOAD),
				      "secret", !!(k->flags & CONF_F_SECRET));
		if (c->origin[i].line > 0)
			json_object_set_new(o, "line", json_integer(c->origin[i].line));
		else
			json_object_set_new(o, "from", json_string("default"));
		if (c->origin[i].secret_source != NULL)
			json_object_set_new(o, "secret_source",
					    json_string(c->origin[i].secret_source));
		json_array_append_new(arr, o);
	}
	return arr;
}

json_t *conf_checks_json(const struct migd_conf *c)
{
	json_t *arr = json_array();
	for (int i = 0; i < c->nchecks; i++) {
		const struct conf_check *ck = &c->checks[i];
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:i}", "kind",
				       ck->kind == CHECK_INVARIANT ? "invariant" : "query", "name",
				       ck->name, "expect", ck->expect == EXPECT_EQUAL ? "equal" : "empty",
				       "source", ck->source_sql, "target", ck->target_sql, "line",
				       ck->line));
	}
	return arr;
}

static void print_wrapped_comment(FILE *out, const char *text)
{
	fprintf(out, "# %s\n", text);
}

void conf_print_sample(FILE *out)
{
	const char *section = NULL;
	fprintf(out, "# migd.conf: configuration of the migd migration daemon.\n"
		     "#\n"
		     "# Generated by `migd --print-sample-config` from the daemon's own key\n"
		     "# table; every key migd knows is listed with its default. Keys marked\n"
		     "# 'reloadable' take effect on SIGHUP (systemctl reload migd); the others\n"
		     "# need a restart. Secret keys accept env:NAME or file:PATH and are never\n"
		     "# logged or shown by `migctl config`. Values may be put in double quotes\n"
		     "# to keep leading spaces or ';'. Lines are at most 198 characters.\n");
	for (size_t i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (section == NULL || strcmp(section, k->section) != 0) {
			section = k->section;
			fprintf(out, "\n[%s]\n", section);
		}
		fprintf(out, "\n");
		print_wrapped_comment(out, k->help);
		const char *type = k->type == CONF_STRING     ? "string"
				   : k->type == CONF_INT      ? "integer"
				   : k->type == CONF_BOOL     ? "boolean"
				   : k->type == CONF_DURATION ? "duration"
				   : k->type == CONF_SIZE     ? "size"
							      : "one of";
		fprintf(out, "# %s", type);
		if (k->type == CONF_ENUM)
			for (int j = 0; k->choices[j] != NULL; j++)
				fprintf(out, "%s %s", j ? "," : "", k->choices[j]);
		if (k->type == CONF_INT)
			fprintf(out, " %lld..%lld", (long long)k->min, (long long)k->max);
		fprintf(out, "%s%s%s\n", (k->flags & CONF_F_REQUIRED) ? "; required" : "",
			(k->flags & CONF_F_SECRET) ? "; secret" : "",
			(k->flags & CONF_F_RELOAD) ? "; reloadable" : "");
		if (k->flags & CONF_F_REQUIRED)
			fprintf(out, "%s = %s\n", k->name, k->example ? k->example : "");
		else if (k->def != NULL)
			fprintf(out, "%s = %s\n", k->name, k->def);
		else
			fprintf(out, "#%s = %s\n", k->name, k->example ? k->example : "");
	}
	fprintf(out,
		"\n# Business invariants: [invariant NAME] sections, any number. Either both\n"
		"# sides' results must be equal (expect = equal, the default), or each side's\n"
		"# query must return no rows (expect = empty). SQL may continue on indented\n"
		"# lines. Checked by `migctl validate --kind invariants` and by the gate.\n"
		"#\n"
		"#[invariant paid_invoices_have_ledger]\n"
		"#expect = empty\n"
		"#target = SELECT i.id FROM invoices i WHERE i.status = 'paid'\n"
		"#    AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.invoice_id = i.id)\n"
		"#\n"
		"#[invariant balance_total]\n"
		"#source = SELECT sum(balance) FROM accounts\n"
		"#target = SELECT sum(balance) FROM accounts\n"
		"\n# Read comparison: [query NAME] sections, production-shaped reads run on both\n"
		"# sides (target defaults to source), results compared in canonical form,\n"
		"# order-insensitive unless the query has ORDER BY.\n"
		"#\n"
		"#[query top_customers]\n"
		"#source = SELECT customer_id, sum(total) FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 20\n");
}
