/*
 * metrics: Prometheus registry and text exposition (see metrics.h).
 *
 * Text format 0.0.4, as the Prometheus docs ("Exposition formats") define it:
 *
 *     # HELP <name> <help, with \ as \\ and newline as \n>
 *     # TYPE <name> counter|gauge|histogram
 *     <name>{<label>="<value, with \ as \\, " as \", newline as \n>",...} <value>
 *
 * A histogram <h> is exposed as <h>_bucket{...,le="<bound>"} lines with
 * cumulative counts ending in le="+Inf" (which equals the count), then
 * <h>_sum and <h>_count.  Values are Go-style floats: +Inf, -Inf, NaN.
 *
 * Children live in a singly linked list per family: lookups are linear, which
 * is fine for tens of tables because hot paths keep the child pointer.
 */
#include "metrics.h"

#include "log.h"
#include "util.h"

#include <event2/buffer.h>

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_latency_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};
const size_t metrics_latency_buckets_len = ARRAY_LEN(metrics_latency_buckets);

static const char *const type_names[METRICS_TYPE_MAX] = {
    [METRICS_COUNTER] = "counter",
    [METRICS_GAUGE] = "gauge",
    [METRICS_HISTOGRAM] = "histogram",
};

struct metric {
	struct metric_family *fam; /* borrowed back-pointer */
	char **label_values;	   /* owned, fam->n_labels strings */
	double value;		   /* counter, gauge */
	uint64_t *bucket_counts;   /* histogram: owned, n_buckets + 1 (+Inf), not cumulative */
	double sum;		   /* histogram */
	uint64_t count;		   /* histogram */
	struct metric *next;	   /* creation order */
};

struct metric_family {
	struct metrics_registry *reg; /* borrowed back-pointer */
	enum metrics_type type;
	char *name;	    /* owned */
	char *help;	    /* owned */
	char **label_names; /* owned, n_labels strings */
	size_t n_labels;
	double *buckets; /* owned, n_buckets finite ascending bounds */
	size_t n_buckets;
	struct metric *children;
	struct metric **children_tail;
	struct metric_family *next; /* registration order */
};

struct collector {
	metrics_collect_fn fn;
	void *arg; /* owned through free_arg */
	void (*free_arg)(void *arg);
	struct collector *next;
};

struct metrics_registry {
	/* Guards families, children and values.  Never held while a collector runs. */
	pthread_mutex_t mu;
	/* Guards the collector list and serialises renders. */
	pthread_mutex_t collect_mu;
	struct metric_family *families;
	struct metric_family **families_tail;
	struct collector *collectors;
	struct collector **collectors_tail;
};

struct metrics_registry *metrics_new(void)
{
	struct metrics_registry *reg = xcalloc(1, sizeof(*reg));

	pthread_mutex_init(&reg->mu, NULL);
	pthread_mutex_init(&reg->collect_mu, NULL);
	reg->families_tail = &reg->families;
	reg->collectors_tail = &reg->collectors;
	return reg;
}

static void strv_free(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void child_free(struct metric *m, size_t n_labels)
{
	strv_free(m->label_values, n_labels);
	free(m->bucket_counts);
	free(m);
}

static void family_free(struct metric_family *f)
{
	struct metric *m, *next;

	for (m = f->children; m != NULL; m = next) {
		next = m->next;
		child_free(m, f->n_labels);
	}
	free(f->name);
	free(f->help);
	strv_free(f->label_names, f->n_labels);
	free(f->buckets);
	free(f);
}

void metrics_free(struct metrics_registry *reg)
{
	struct metric_family *f, *fnext;
	struct collector *c, *cnext;

	if (reg == NULL)
		return;
	for (c = reg->collectors; c != NULL; c = cnext) {
		cnext = c->next;
		if (c->free_arg != NULL)
			c->free_arg(c->arg);
		free(c);
	}
	for (f = reg->families; f != NULL; f = fnext) {
		fnext = f->next;
		family_free(f);
	}
	pthread_mutex_destroy(&reg->mu);
	pthread_mutex_destroy(&reg->collect_mu);
	free(reg);
}

/* --- validation -------------------------------------------------------------- */

static bool name_valid(const char *s, bool colon_ok)
{
	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			     (colon_ok && c == ':');
		if (!alpha && !(p != s && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* True when name is one of the sample names histogram h exposes besides h. */
static bool histogram_owns(const char *h, const char *name)
{
	static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
	size_t lh = strlen(h);

	if (strncmp(h, name, lh) != 0)
		return false;
	for (size_t i = 0; i < ARRAY_LEN(suffixes); i++)
		if (strcmp(name + lh, suffixes[i]) == 0)
			return true;
	return false;
}

static size_t strv_len(const char *const *v)
{
	size_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

static bool labels_valid(const char *name, enum metrics_type type, const char *const *labels)
{
	for (size_t i = 0; labels != NULL && labels[i] != NULL; i++) {
		const char *l = labels[i];

		if (!name_valid(l, false)) {
			log_error("metrics: %s: invalid label name \"%s\"", name, l);
			return false;
		}
		/* "__" names are reserved for Prometheus' own use (relabelling). */
		if (strncmp(l, "__", 2) == 0) {
			log_error("metrics: %s: label name \"%s\" is reserved", name, l);
			return false;
		}
		if (type == METRICS_HISTOGRAM && strcmp(l, "le") == 0) {
			log_error("metrics: %s: label \"le\" is reserved for histogram buckets",
				  name);
			return false;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(labels[j], l) == 0) {
				log_error("metrics: %s: duplicate label name \"%s\"", name, l);
				return false;
			}
		}
	}
	return true;
}

/* Checks buckets; *n is shortened when the caller spelled out the implicit +Inf. */
static bool buckets_valid(const char *name, const double *b, size_t *n)
{
	if (*n > 0 && isinf(b[*n - 1]) && b[*n - 1] > 0)
		(*n)--;
	for (size_t i = 0; i < *n; i++) {
		if (!isfinite(b[i])) {
			log_error("metrics: %s: bucket bound %g is not finite", name, b[i]);
			return false;
		}
		if (i > 0 && !(b[i] > b[i - 1])) {
			log_error("metrics: %s: bucket bounds must be strictly ascending", name);
			return false;
		}
	}
	return true;
}

static bool family_matches(const struct metric_family *f, enum metrics_type type,
			   const char *const *labels, const double *buckets, size_t n_buckets)
{
	if (f->type != type || f->n_labels != strv_len(labels))
		return false;
	for (size_t i = 0; i < f->n_labels; i++)
		if (strcmp(f->label_names[i], labels[i]) != 0)
			return false;
	if (type != METRICS_HISTOGRAM)
		return true;
	if (f->n_buckets != n_buckets)
		return false;
	for (size_t i = 0; i < n_buckets; i++)
		if (f->buckets[i] != buckets[i])
			return false;
	return true;
}

/* --- children ---------------------------------------------------------------- */

/* Finds or creates the child for values (n_labels strings).  reg->mu held. */
static struct metric *child_get_locked(struct metric_family *f, const char *const *values)
{
	struct metric *m;

	for (m = f->children; m != NULL; m = m->next) {
		size_t i;

		for (i = 0; i < f->n_labels; i++)
			if (strcmp(m->label_values[i], values[i]) != 0)
				break;
		if (i == f->n_labels)
			return m;
	}
	m = xcalloc(1, sizeof(*m));
	m->fam = f;
	if (f->n_labels > 0) {
		m->label_values = xcalloc(f->n_labels, sizeof(char *));
		for (size_t i = 0; i < f->n_labels; i++)
			m->label_values[i] = xstrdup(values[i]);
	}
	if (f->type == METRICS_HISTOGRAM)
		m->bucket_counts = xcalloc(f->n_buckets + 1, sizeof(uint64_t));
	*f->children_tail = m;
	f->children_tail = &m->next;
	return m;
}

struct metric *metrics_child(struct metric_family *f, const char *const *label_values)
{
	struct metric *m;
	size_t n = strv_len(label_values);

	if (f == NULL)
		return NULL;
	if (n != f->n_labels) {
		log_error("BUG: metrics: %s takes %zu label values, got %zu", f->name, f->n_labels,
			  n);
		return NULL;
	}
	pthread_mutex_lock(&f->reg->mu);
	m = child_get_locked(f, label_values);
	pthread_mutex_unlock(&f->reg->mu);
	return m;
}

struct metric *metrics_childv(struct metric_family *f, ...)
{
	struct metric *m;
	const char **values;
	va_list ap;
	size_t n = 0;

	if (f == NULL)
		return NULL;
	/* Read at most one value past the expected count so a mismatch is seen
	 * without reading beyond the caller's sentinel. */
	values = xcalloc(f->n_labels + 2, sizeof(char *));
	va_start(ap, f);
	while (n <= f->n_labels && (values[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	values[n] = NULL;
	m = metrics_child(f, values);
	free(values);
	return m;
}

/* --- registration ------------------------------------------------------------ */

static struct metric_family *family_register(struct metrics_registry *reg, enum metrics_type type,
					     const char *name, const char *help,
					     const char *const *labels, const double *buckets,
					     size_t n_buckets)
{
	struct metric_family *f = NULL, *e;

	if (!name_valid(name, true)) {
		log_error("metrics: invalid metric name \"%s\"", name ? name : "(null)");
		return NULL;
	}
	/* promtool lints both directions of the _total convention. */
	if (type == METRICS_COUNTER && !has_suffix(name, "_total")) {
		log_error("metrics: counter %s: name must end in _total", name);
		return NULL;
	}
	if (type != METRICS_COUNTER && has_suffix(name, "_total")) {
		log_error("metrics: %s %s: only counter names end in _total", type_names[type],
			  name);
		return NULL;
	}
	if (help == NULL || *help == '\0') {
		log_error("metrics: %s: help text is required", name);
		return NULL;
	}
	if (!labels_valid(name, type, labels))
		return NULL;
	if (type == METRICS_HISTOGRAM) {
		if (buckets == NULL) {
			buckets = metrics_latency_buckets;
			n_buckets = metrics_latency_buckets_len;
		}
		if (!buckets_valid(name, buckets, &n_buckets))
			return NULL;
	}

	pthread_mutex_lock(&reg->mu);
	for (e = reg->families; e != NULL; e = e->next) {
		if (strcmp(e->name, name) == 0) {
			if (family_matches(e, type, labels, buckets, n_buckets)) {
				f = e;
				goto out;
			}
			log_error("metrics: %s already registered with another type, labels "
				  "or buckets",
				  name);
			goto out;
		}
		if ((e->type == METRICS_HISTOGRAM && histogram_owns(e->name, name)) ||
		    (type == METRICS_HISTOGRAM && histogram_owns(name, e->name))) {
			log_error("metrics: %s clashes with the samples of histogram %s", name,
				  type == METRICS_HISTOGRAM ? name : e->name);
			goto out;
		}
	}

	f = xcalloc(1, sizeof(*f));
	f->reg = reg;
	f->type = type;
	f->name = xstrdup(name);
	f->help = xstrdup(help);
	f->n_labels = strv_len(labels);
	if (f->n_labels > 0) {
		f->label_names = xcalloc(f->n_labels, sizeof(char *));
		for (size_t i = 0; i < f->n_labels; i++)
			f->label_names[i] = xstrdup(labels[i]);
	}
	if (type == METRICS_HISTOGRAM && n_buckets > 0) {
		f->buckets = xcalloc(n_buckets, sizeof(double));
		memcpy(f->buckets, buckets, n_buckets * sizeof(double));
		f->n_buckets = n_buckets;
	}
	f->children_tail = &f->children;
	/* An unlabelled family always has its one sample, so it shows as 0. */
	if (f->n_labels == 0)
		child_get_locked(f, NULL);
	*reg->families_tail = f;
	reg->families_tail = &f->next;
out:
	pthread_mutex_unlock(&reg->mu);
	return f;
}

struct metric_family *metrics_counter(struct metrics_registry *reg, const char *name,
				      const char *help, const char *const *label_names)
{
	return family_register(reg, METRICS_COUNTER, name, help, label_names, NULL, 0);
}

struct metric_family *metrics_gauge(struct metrics_registry *reg, const char *name,
				    const char *help, const char *const *label_names)
{
	return family_register(reg, METRICS_GAUGE, name, help, label_names, NULL, 0);
}

struct metric_family *metrics_histogram(struct metrics_registry *reg, const char *name,
					const char *help, const char *const *label_names,
					const double *buckets, size_t n_buckets)
{
	return family_register(reg, METRICS_HISTOGRAM, name, help, label_names, buckets, n_buckets);
}

void metrics_add_collector(struct metrics_registry *reg, metrics_collect_fn fn, void *arg,
			   void (*free_arg)(void *arg))
{
	struct collector *c = xcalloc(1, sizeof(*c));

	c->fn = fn;
	c->arg = arg;
	c->free_arg = free_arg;
	pthread_mutex_lock(&reg->collect_mu);
	*reg->collectors_tail = c;
	reg->collectors_tail = &c->next;
	pthread_mutex_unlock(&reg->collect_mu);
}

/* --- updates ----------------------------------------------------------------- */

static bool type_is(const struct metric *m, enum metrics_type want, const char *op)
{
	if (m->fam->type == want)
		return true;
	log_error("BUG: metrics: %s on %s %s", op, type_names[m->fam->type], m->fam->name);
	return false;
}

void metrics_add(struct metric *m, double v)
{
	if (m == NULL)
		return;
	if (m->fam->type == METRICS_HISTOGRAM) {
		log_error("BUG: metrics: add on histogram %s", m->fam->name);
		return;
	}
	if (m->fam->type == METRICS_COUNTER && !(v >= 0)) {
		log_error("BUG: metrics: counter %s cannot add %g", m->fam->name, v);
		return;
	}
	pthread_mutex_lock(&m->fam->reg->mu);
	m->value += v;
	pthread_mutex_unlock(&m->fam->reg->mu);
}

void metrics_inc(struct metric *m)
{
	metrics_add(m, 1.0);
}

void metrics_set(struct metric *m, double v)
{
	if (m == NULL || !type_is(m, METRICS_GAUGE, "set"))
		return;
	pthread_mutex_lock(&m->fam->reg->mu);
	m->value = v;
	pthread_mutex_unlock(&m->fam->reg->mu);
}

void metrics_counter_set_abs(struct metric *m, double v)
{
	if (m == NULL || !type_is(m, METRICS_COUNTER, "set_abs"))
		return;
	pthread_mutex_lock(&m->fam->reg->mu);
	if (v >= m->value)
		m->value = v;
	else
		log_error("BUG: metrics: counter %s cannot go from %g to %g", m->fam->name,
			  m->value, v);
	pthread_mutex_unlock(&m->fam->reg->mu);
}

void metrics_observe(struct metric *m, double v)
{
	struct metric_family *f;
	size_t i;

	if (m == NULL || !type_is(m, METRICS_HISTOGRAM, "observe"))
		return;
	f = m->fam;
	if (isnan(v)) {
		log_error("BUG: metrics: NaN observed into %s", f->name);
		return;
	}
	/* First bucket whose bound is >= v ("le"); index n_buckets is +Inf. */
	for (i = 0; i < f->n_buckets && v > f->buckets[i]; i++)
		;
	pthread_mutex_lock(&f->reg->mu);
	m->bucket_counts[i]++;
	m->count++;
	m->sum += v;
	pthread_mutex_unlock(&f->reg->mu);
}

double metrics_get(struct metric *m)
{
	double v;

	if (m == NULL || m->fam->type == METRICS_HISTOGRAM)
		return NAN;
	pthread_mutex_lock(&m->fam->reg->mu);
	v = m->value;
	pthread_mutex_unlock(&m->fam->reg->mu);
	return v;
}

void metrics_set_state(struct metric_family *f, const char *const *states, size_t n, size_t current)
{
	if (f == NULL)
		return;
	if (f->type != METRICS_GAUGE || f->n_labels != 1) {
		log_error("BUG: metrics: %s is not a gauge with one label", f->name);
		return;
	}
	pthread_mutex_lock(&f->reg->mu);
	for (size_t i = 0; i < n; i++)
		child_get_locked(f, &states[i])->value = i == current ? 1.0 : 0.0;
	pthread_mutex_unlock(&f->reg->mu);
}

/* --- rendering --------------------------------------------------------------- */

struct render {
	struct evbuffer *out; /* borrowed */
	bool ok;	      /* false once an append failed */
};

static void put(struct render *r, const char *s, size_t len)
{
	if (r->ok && evbuffer_add(r->out, s, len) != 0)
		r->ok = false;
}

static void puts_(struct render *r, const char *s)
{
	put(r, s, strlen(s));
}

/* Appends s with \ and newline escaped, and " too when quote is set. */
static void put_escaped(struct render *r, const char *s, bool quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quote)
			esc = "\\\"";
		if (esc == NULL)
			continue;
		put(r, run, (size_t)(s - run));
		puts_(r, esc);
		run = s + 1;
	}
	put(r, run, (size_t)(s - run));
}

/*
 * Shortest of %.15g/%.16g/%.17g that reads back as v, so 0.1 prints as "0.1"
 * and integers below 1e15 print without an exponent.  Assumes the "C" numeric
 * locale, which migd never changes.
 */
static void format_double(char *buf, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(buf, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static void put_double(struct render *r, double v)
{
	char buf[40];

	format_double(buf, sizeof(buf), v);
	puts_(r, buf);
}

/* name+suffix{labels[,le="le"]} value\n */
static void put_sample(struct render *r, const struct metric *m, const char *suffix, const char *le,
		       double v)
{
	const struct metric_family *f = m->fam;
	bool any = f->n_labels > 0 || le != NULL;

	puts_(r, f->name);
	puts_(r, suffix);
	if (any)
		puts_(r, "{");
	for (size_t i = 0; i < f->n_labels; i++) {
		if (i > 0)
			puts_(r, ",");
		puts_(r, f->label_names[i]);
		puts_(r, "=\"");
		put_escaped(r, m->label_values[i], true);
		puts_(r, "\"");
	}
	if (le != NULL) {
		if (f->n_labels > 0)
			puts_(r, ",");
		puts_(r, "le=\"");
		puts_(r, le);
		puts_(r, "\"");
	}
	if (any)
		puts_(r, "}");
	puts_(r, " ");
	put_double(r, v);
	puts_(r, "\n");
}

static void render_histogram(struct render *r, const struct metric *m)
{
	const struct metric_family *f = m->fam;
	uint64_t cum = 0;
	char le[40];

	for (size_t i = 0; i <= f->n_buckets; i++) {
		cum += m->bucket_counts[i];
		if (i < f->n_buckets)
			format_double(le, sizeof(le), f->buckets[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		put_sample(r, m, "_bucket", le, (double)cum);
	}
	put_sample(r, m, "_sum", NULL, m->sum);
	put_sample(r, m, "_count", NULL, (double)m->count);
}

static void render_family(struct render *r, const struct metric_family *f)
{
	if (f->children == NULL)
		return;
	puts_(r, "# HELP ");
	puts_(r, f->name);
	puts_(r, " ");
	put_escaped(r, f->help, false);
	puts_(r, "\n# TYPE ");
	puts_(r, f->name);
	puts_(r, " ");
	puts_(r, type_names[f->type]);
	puts_(r, "\n");
	for (const struct metric *m = f->children; m != NULL; m = m->next) {
		if (f->type == METRICS_HISTOGRAM)
			render_histogram(r, m);
		else
			put_sample(r, m, "", NULL, m->value);
	}
}

bool metrics_render(struct metrics_registry *reg, struct evbuffer *out)
{
	struct render r = {.out = out, .ok = true};

	pthread_mutex_lock(&reg->collect_mu);
	for (struct collector *c = reg->collectors; c != NULL; c = c->next)
		c->fn(reg, c->arg);

	pthread_mutex_lock(&reg->mu);
	for (const struct metric_family *f = reg->families; f != NULL; f = f->next)
		render_family(&r, f);
	pthread_mutex_unlock(&reg->mu);
	pthread_mutex_unlock(&reg->collect_mu);
	if (!r.ok)
		log_error("metrics: out of memory rendering metrics");
	return r.ok;
}
