/* metrics.h -- counters, gauges and histograms rendered in Prometheus text format. */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>

typedef struct metrics_registry metrics_registry_t;
typedef struct metrics_counter metrics_counter_t;
typedef struct metrics_gauge metrics_gauge_t;
typedef struct metrics_histogram metrics_histogram_t;

/* A registry owns every metric created in it. Thread-safe: any thread may update or render. */
metrics_registry_t *metrics_registry_new(void);
void metrics_registry_free(metrics_registry_t *r);

/* Metric families. name must match [a-zA-Z_:][a-zA-Z0-9_:]*; label_names is a
 * NULL-terminated array of label names (may be NULL for none); both are copied.
 * Creating a family twice with the same name returns the first one. */
metrics_counter_t *metrics_counter(metrics_registry_t *r, const char *name, const char *help,
                                   const char *const *label_names);
metrics_gauge_t *metrics_gauge(metrics_registry_t *r, const char *name, const char *help,
                               const char *const *label_names);
/* bounds: ascending upper bounds (seconds for latencies), nbounds of them; copied.
 * bounds NULL uses METRICS_LATENCY_BOUNDS (0.0005 s .. 10 s). */
metrics_histogram_t *metrics_histogram(metrics_registry_t *r, const char *name, const char *help,
                                       const char *const *label_names, const double *bounds, size_t nbounds);

/* Updates. label_values: as many as the family has names, in order (NULL when none);
 * the series is created on first use. Values are escaped when rendered. */
void metrics_counter_add(metrics_counter_t *c, const char *const *label_values, double v);
void metrics_gauge_set(metrics_gauge_t *g, const char *const *label_values, double v);
void metrics_gauge_add(metrics_gauge_t *g, const char *const *label_values, double v);
void metrics_histogram_observe(metrics_histogram_t *h, const char *const *label_values, double v);

/* Renders every family (# HELP, # TYPE, series; histograms as _bucket{le=..}, _sum, _count)
 * into a new string; caller frees. *len gets its length if len is not NULL. */
char *metrics_render(metrics_registry_t *r, size_t *len);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
