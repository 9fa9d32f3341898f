/*
 * metrics: a small Prometheus registry (counters, gauges, histograms) and its
 * text exposition format 0.0.4.
 *
 * Owns every family registered in it, every child (one per label-value
 * tuple) and the collector list.  A family fixes its name, help and label
 * names at registration; children are created on first use and never move
 * or disappear until metrics_free(), so hot paths look a child up once and
 * keep the pointer:
 *
 *     struct metric_family *f = metrics_counter(reg, "migd_applied_changes_total",
 *                                               "Row changes applied.", METRICS_LABELS("table"));
 *     struct metric *m = metrics_childv(f, "public.orders", NULL);
 *     metrics_inc(m);
 *
 * Thread safety: every function may be called from any thread; one mutex per
 * registry guards families, children and values (no lock-free tricks: the
 * event loop and a few workers do not contend enough to need them).
 *
 * Misuse (a counter going down, the wrong number of label values, observing
 * into a gauge) is a programmer error: it is logged once per call with a
 * "BUG:" prefix and ignored, never fatal.  Update functions accept NULL so a
 * failed lookup cannot crash a hot path.
 *
 * Rendering order: families in registration order, children in creation
 * order, so scrapes diff cleanly.
 */
#ifndef MIGD_METRICS_H
#define MIGD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

enum metrics_type {
	METRICS_COUNTER,   /* monotonic; name must end in "_total" */
	METRICS_GAUGE,	   /* goes up and down */
	METRICS_HISTOGRAM, /* cumulative buckets + sum + count */
	METRICS_TYPE_MAX,
};

struct metrics_registry;
struct metric_family;
struct metric;

/* Label-name / label-value lists are NULL-terminated arrays of strings. */
#define METRICS_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define METRICS_NO_LABELS   NULL

/*
 * Default latency buckets in seconds, 0.5 ms .. 30 s (+Inf is implicit).
 * Passing buckets == NULL to metrics_histogram() selects them.
 */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_buckets_len;

/* A new empty registry; caller frees with metrics_free(). */
struct metrics_registry *metrics_new(void) __attribute__((returns_nonnull));
/* Frees the registry, its families and children, and collector args. NULL-safe. */
void metrics_free(struct metrics_registry *reg);

/*
 * Register a family and return it (owned by reg, valid until metrics_free()).
 * label_names is NULL-terminated (or NULL for none).  Names must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*, counters must end in "_total" and the others must
 * not; label names must match [a-zA-Z_][a-zA-Z0-9_]*, must not start with "__"
 * and must be unique; "le" is refused for histograms; help must be non-empty.
 * Registering an existing name returns the existing family when type, label
 * names (and buckets) match.  Returns NULL after logging the reason otherwise,
 * including when the name would clash with a histogram's _bucket/_sum/_count.
 * A family without labels gets its only child at once so it renders as 0.
 */
struct metric_family *metrics_counter(struct metrics_registry *reg, const char *name,
				      const char *help, const char *const *label_names)
    __attribute__((warn_unused_result));
struct metric_family *metrics_gauge(struct metrics_registry *reg, const char *name,
				    const char *help, const char *const *label_names)
    __attribute__((warn_unused_result));
/* buckets: strictly ascending finite upper bounds (a trailing +Inf is dropped). */
struct metric_family *metrics_histogram(struct metrics_registry *reg, const char *name,
					const char *help, const char *const *label_names,
					const double *buckets, size_t n_buckets)
    __attribute__((warn_unused_result));

/*
 * The child for one label-value tuple (NULL-terminated, one value per label
 * name; NULL or an empty list for an unlabelled family), created on first
 * use.  Borrowed: valid until metrics_free().  Returns NULL (BUG logged) on a
 * count mismatch or f == NULL.
 */
struct metric *metrics_child(struct metric_family *f, const char *const *label_values);
/* Same with the values as arguments: metrics_childv(f, "a", "b", NULL). */
struct metric *metrics_childv(struct metric_family *f, ...) __attribute__((sentinel));

/* Updates.  All accept m == NULL (no-op). */
void metrics_inc(struct metric *m);		  /* counter or gauge: += 1 */
void metrics_add(struct metric *m, double v);	  /* counter: v >= 0 only; gauge: any */
void metrics_set(struct metric *m, double v);	  /* gauge only */
void metrics_observe(struct metric *m, double v); /* histogram only; NaN refused */

/*
 * Set a counter to an absolute value read from a monotonic source (e.g. CPU
 * time from /proc).  For collectors only; a value below the current one is
 * refused like a decrease.
 */
void metrics_counter_set_abs(struct metric *m, double v);

/* Current value of a counter or gauge; NaN for a histogram or NULL. */
double metrics_get(struct metric *m);

/*
 * An "enum" gauge: f is a gauge with exactly one label; the child for
 * states[current] is set to 1 and those for every other state to 0, under one
 * lock so a scrape never sees two states at 1 (e.g. migd_phase{phase="init"} 1).
 * current >= n sets them all to 0.
 */
void metrics_set_state(struct metric_family *f, const char *const *states, size_t n,
		       size_t current);

/*
 * Collectors run at the start of every render, in registration order and
 * outside the value lock, so they may look up children and set values.
 * They must not register collectors or render.  free_arg (may be NULL)
 * releases arg at metrics_free(): the registry takes ownership of arg.
 */
typedef void (*metrics_collect_fn)(struct metrics_registry *reg, void *arg);
void metrics_add_collector(struct metrics_registry *reg, metrics_collect_fn fn, void *arg,
			   void (*free_arg)(void *arg));

/*
 * Run the collectors, then append the whole registry to out in the text
 * exposition format 0.0.4.  Families without children are skipped.  False
 * only when out could not grow (out of memory); out then holds a prefix.
 */
bool metrics_render(struct metrics_registry *reg, struct evbuffer *out)
    __attribute__((warn_unused_result));

#endif
