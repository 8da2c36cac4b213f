/* metrics.c -- counters, gauges and histograms in a locked registry, rendered as Prometheus text. */
#include "metrics/metrics.h"

#include "core/core.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The default histogram bounds, in seconds: 0.5 ms .. 10 s, for request latencies. */
static const double METRICS_LATENCY_BOUNDS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};

typedef enum { METRICS__COUNTER, METRICS__GAUGE, METRICS__HISTOGRAM } metrics__kind_t;

static const char *const metrics__kind_names[] = {
    [METRICS__COUNTER] = "counter",
    [METRICS__GAUGE] = "gauge",
    [METRICS__HISTOGRAM] = "histogram",
};

/* One combination of label values and what has been recorded for it. */
typedef struct metrics__series {
    struct metrics__series *next;
    char **label_values; /* nlabels of them, copied */
    double value;        /* counter and gauge */
    uint64_t *buckets;   /* histogram: observations per bound (not cumulative), nbounds of them */
    uint64_t count;      /* histogram: all observations, the +Inf bucket */
    double sum;          /* histogram */
} metrics__series_t;

/* A metric family: one name, one type, any number of series kept in creation order. */
typedef struct metrics__family {
    struct metrics__family *next;
    metrics_registry_t *registry;
    metrics__kind_t kind;
    char *name;
    char *help;
    char **label_names;
    size_t nlabels;
    double *bounds; /* histogram only */
    size_t nbounds;
    metrics__series_t *series, **series_tail;
} metrics__family_t;

/* The public handles are families; the family comes first so a handle is also a family. */
struct metrics_counter {
    metrics__family_t fam;
};
struct metrics_gauge {
    metrics__family_t fam;
};
struct metrics_histogram {
    metrics__family_t fam;
};

/* One lock guards the family list and every series: updates are a few instructions, and
 * a scrape holds it only while formatting. */
struct metrics_registry {
    pthread_mutex_t lock;
    metrics__family_t *families, **families_tail;
};

/* ---------------------------------------------------------------------------------------
 * Registry and families
 * ------------------------------------------------------------------------------------- */

metrics_registry_t *metrics_registry_new(void)
{
    metrics_registry_t *r = xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->families_tail = &r->families;
    return r;
}

static void metrics__series_free(metrics__series_t *s, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++)
        free(s->label_values[i]);
    free(s->label_values);
    free(s->buckets);
    free(s);
}

static void metrics__family_free(metrics__family_t *f)
{
    metrics__series_t *s = f->series;
    while (s != NULL) {
        metrics__series_t *next = s->next;
        metrics__series_free(s, f->nlabels);
        s = next;
    }
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->label_names[i]);
    free(f->label_names);
    free(f->bounds);
    free(f->help);
    free(f->name);
    free(f);
}

void metrics_registry_free(metrics_registry_t *r)
{
    if (r == NULL)
        return;
    metrics__family_t *f = r->families;
    while (f != NULL) {
        metrics__family_t *next = f->next;
        metrics__family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; labels are the same without ':'. */
static int metrics__valid_name(const char *s, int colon_ok)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s != '\0'; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                 (colon_ok && c == ':');
        if (!ok)
            return 0;
    }
    return 1;
}

static metrics__series_t *metrics__series_new(metrics__family_t *f, const char *const *label_values)
{
    metrics__series_t *s = xcalloc(1, sizeof(*s));
    s->label_values = xcalloc(f->nlabels, sizeof(char *));
    for (size_t i = 0; i < f->nlabels; i++)
        s->label_values[i] = xstrdup(label_values[i]);
    if (f->kind == METRICS__HISTOGRAM)
        s->buckets = xcalloc(f->nbounds, sizeof(uint64_t));
    *f->series_tail = s;
    f->series_tail = &s->next;
    return s;
}

/* Finds or creates the series for label_values; the registry lock is held. */
static metrics__series_t *metrics__series_get(metrics__family_t *f, const char *const *label_values)
{
    CORE_ASSERT(f->nlabels == 0 || label_values != NULL);
    for (size_t i = 0; i < f->nlabels; i++)
        CORE_ASSERT(label_values[i] != NULL);
    for (metrics__series_t *s = f->series; s != NULL; s = s->next) {
        size_t i = 0;
        while (i < f->nlabels && strcmp(s->label_values[i], label_values[i]) == 0)
            i++;
        if (i == f->nlabels)
            return s;
    }
    return metrics__series_new(f, label_values);
}

/* Finds the family called name, or creates it with the rest of the arguments. A name
 * registered twice with different types is our bug, not the caller's input. */
static metrics__family_t *metrics__family(metrics_registry_t *r, size_t size, metrics__kind_t kind,
                                          const char *name, const char *help, const char *const *label_names,
                                          const double *bounds, size_t nbounds)
{
    CORE_ASSERT(metrics__valid_name(name, 1));
    metrics__family_t *f = NULL;

    pthread_mutex_lock(&r->lock);
    for (f = r->families; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            CORE_ASSERT(f->kind == kind);
            goto out;
        }
    }

    f = xcalloc(1, size);
    f->registry = r;
    f->kind = kind;
    f->name = xstrdup(name);
    f->help = xstrdup(help != NULL ? help : "");
    while (label_names != NULL && label_names[f->nlabels] != NULL)
        f->nlabels++;
    f->label_names = xcalloc(f->nlabels, sizeof(char *));
    for (size_t i = 0; i < f->nlabels; i++) {
        CORE_ASSERT(metrics__valid_name(label_names[i], 0));
        CORE_ASSERT(strncmp(label_names[i], "__", 2) != 0);
        CORE_ASSERT(kind != METRICS__HISTOGRAM || strcmp(label_names[i], "le") != 0);
        f->label_names[i] = xstrdup(label_names[i]);
    }
    if (kind == METRICS__HISTOGRAM) {
        f->nbounds = nbounds;
        f->bounds = xcalloc(nbounds, sizeof(double));
        for (size_t i = 0; i < nbounds; i++) {
            CORE_ASSERT(isfinite(bounds[i]));
            CORE_ASSERT(i == 0 || bounds[i] > bounds[i - 1]);
            f->bounds[i] = bounds[i];
        }
    }
    f->series_tail = &f->series;
    /* A family without labels has exactly one series; it is shown (as 0) from the start. */
    if (f->nlabels == 0)
        metrics__series_new(f, NULL);
    *r->families_tail = f;
    r->families_tail = &f->next;
out:
    pthread_mutex_unlock(&r->lock);
    return f;
}

metrics_counter_t *metrics_counter(metrics_registry_t *r, const char *name, const char *help,
                                   const char *const *label_names)
{
    return (metrics_counter_t *)metrics__family(r, sizeof(metrics_counter_t), METRICS__COUNTER, name, help,
                                                label_names, NULL, 0);
}

metrics_gauge_t *metrics_gauge(metrics_registry_t *r, const char *name, const char *help,
                               const char *const *label_names)
{
    return (metrics_gauge_t *)metrics__family(r, sizeof(metrics_gauge_t), METRICS__GAUGE, name, help,
                                              label_names, NULL, 0);
}

metrics_histogram_t *metrics_histogram(metrics_registry_t *r, const char *name, const char *help,
                                       const char *const *label_names, const double *bounds, size_t nbounds)
{
    if (bounds == NULL) {
        bounds = METRICS_LATENCY_BOUNDS;
        nbounds = CORE_ARRAY_SIZE(METRICS_LATENCY_BOUNDS);
    }
    return (metrics_histogram_t *)metrics__family(r, sizeof(metrics_histogram_t), METRICS__HISTOGRAM, name,
                                                  help, label_names, bounds, nbounds);
}

/* ---------------------------------------------------------------------------------------
 * Updates
 * ------------------------------------------------------------------------------------- */

void metrics_counter_add(metrics_counter_t *c, const char *const *label_values, double v)
{
    CORE_ASSERT(!(v < 0)); /* counters only go up */
    pthread_mutex_lock(&c->fam.registry->lock);
    metrics__series_get(&c->fam, label_values)->value += v;
    pthread_mutex_unlock(&c->fam.registry->lock);
}

void metrics_gauge_set(metrics_gauge_t *g, const char *const *label_values, double v)
{
    pthread_mutex_lock(&g->fam.registry->lock);
    metrics__series_get(&g->fam, label_values)->value = v;
    pthread_mutex_unlock(&g->fam.registry->lock);
}

void metrics_gauge_add(metrics_gauge_t *g, const char *const *label_values, double v)
{
    pthread_mutex_lock(&g->fam.registry->lock);
    metrics__series_get(&g->fam, label_values)->value += v;
    pthread_mutex_unlock(&g->fam.registry->lock);
}

void metrics_histogram_observe(metrics_histogram_t *h, const char *const *label_values, double v)
{
    metrics__family_t *f = &h->fam;
    pthread_mutex_lock(&f->registry->lock);
    metrics__series_t *s = metrics__series_get(f, label_values);
    /* Only the first bound that holds v is counted; render makes the buckets cumulative.
     * A value above every bound (or NaN) lands in +Inf alone, which is count. */
    for (size_t i = 0; i < f->nbounds; i++) {
        if (v <= f->bounds[i]) {
            s->buckets[i]++;
            break;
        }
    }
    s->count++;
    s->sum += v;
    pthread_mutex_unlock(&f->registry->lock);
}

/* ---------------------------------------------------------------------------------------
 * Rendering
 * ------------------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
} metrics__out_t;

static void metrics__reserve(metrics__out_t *o, size_t extra)
{
    if (o->len + extra + 1 <= o->cap)
        return;
    size_t cap = o->cap != 0 ? o->cap : 1024;
    while (cap < o->len + extra + 1)
        cap *= 2;
    o->buf = xrealloc(o->buf, cap);
    o->cap = cap;
}

static void metrics__put(metrics__out_t *o, const char *s, size_t n)
{
    metrics__reserve(o, n);
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void metrics__puts(metrics__out_t *o, const char *s)
{
    metrics__put(o, s, strlen(s));
}

/* Writes s with backslash and newline escaped, and double quotes too when in_quotes
 * (label values); HELP text escapes only the first two. */
static void metrics__put_escaped(metrics__out_t *o, const char *s, int in_quotes)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            metrics__puts(o, "\\\\");
        else if (*s == '\n')
            metrics__puts(o, "\\n");
        else if (*s == '"' && in_quotes)
            metrics__puts(o, "\\\"");
        else
            metrics__put(o, s, 1);
    }
}

/* Formats v as Prometheus does: integers without a fraction ("3"), other numbers in the
 * fewest digits that read back as the same double, and +Inf, -Inf, NaN. */
static void metrics__format(double v, char buf[40])
{
    if (isnan(v)) {
        strcpy(buf, "NaN");
    } else if (isinf(v)) {
        strcpy(buf, v > 0 ? "+Inf" : "-Inf");
    } else if (v == trunc(v) && fabs(v) < 1e15) {
        snprintf(buf, 40, "%.0f", v == 0 ? 0.0 : v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, 40, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static void metrics__put_double(metrics__out_t *o, double v)
{
    char buf[40];
    metrics__format(v, buf);
    metrics__puts(o, buf);
}

static void metrics__put_u64(metrics__out_t *o, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    metrics__puts(o, buf);
}

/* Writes {a="x",b="y"} for the series, with le="bound" last when le is not NULL;
 * nothing at all when there are no labels. */
static void metrics__put_labels(metrics__out_t *o, const metrics__family_t *f, const metrics__series_t *s,
                                const char *le)
{
    if (f->nlabels == 0 && le == NULL)
        return;
    metrics__puts(o, "{");
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i > 0)
            metrics__puts(o, ",");
        metrics__puts(o, f->label_names[i]);
        metrics__puts(o, "=\"");
        metrics__put_escaped(o, s->label_values[i], 1);
        metrics__puts(o, "\"");
    }
    if (le != NULL) {
        if (f->nlabels > 0)
            metrics__puts(o, ",");
        metrics__puts(o, "le=\"");
        metrics__puts(o, le);
        metrics__puts(o, "\"");
    }
    metrics__puts(o, "}");
}

static void metrics__render_histogram(metrics__out_t *o, const metrics__family_t *f,
                                      const metrics__series_t *s)
{
    char le[40];
    uint64_t cumulative = 0;
    for (size_t i = 0; i < f->nbounds; i++) {
        cumulative += s->buckets[i];
        metrics__format(f->bounds[i], le);
        metrics__puts(o, f->name);
        metrics__puts(o, "_bucket");
        metrics__put_labels(o, f, s, le);
        metrics__puts(o, " ");
        metrics__put_u64(o, cumulative);
        metrics__puts(o, "\n");
    }
    metrics__puts(o, f->name);
    metrics__puts(o, "_bucket");
    metrics__put_labels(o, f, s, "+Inf");
    metrics__puts(o, " ");
    metrics__put_u64(o, s->count);
    metrics__puts(o, "\n");

    metrics__puts(o, f->name);
    metrics__puts(o, "_sum");
    metrics__put_labels(o, f, s, NULL);
    metrics__puts(o, " ");
    metrics__put_double(o, s->sum);
    metrics__puts(o, "\n");

    metrics__puts(o, f->name);
    metrics__puts(o, "_count");
    metrics__put_labels(o, f, s, NULL);
    metrics__puts(o, " ");
    metrics__put_u64(o, s->count);
    metrics__puts(o, "\n");
}

static void metrics__render_family(metrics__out_t *o, const metrics__family_t *f)
{
    metrics__puts(o, "# HELP ");
    metrics__puts(o, f->name);
    metrics__puts(o, " ");
    metrics__put_escaped(o, f->help, 0);
    metrics__puts(o, "\n# TYPE ");
    metrics__puts(o, f->name);
    metrics__puts(o, " ");
    metrics__puts(o, metrics__kind_names[f->kind]);
    metrics__puts(o, "\n");
    for (const metrics__series_t *s = f->series; s != NULL; s = s->next) {
        if (f->kind == METRICS__HISTOGRAM) {
            metrics__render_histogram(o, f, s);
            continue;
        }
        metrics__puts(o, f->name);
        metrics__put_labels(o, f, s, NULL);
        metrics__puts(o, " ");
        metrics__put_double(o, s->value);
        metrics__puts(o, "\n");
    }
}

char *metrics_render(metrics_registry_t *r, size_t *len)
{
    metrics__out_t o = {0};
    metrics__reserve(&o, 0);
    o.buf[0] = '\0';

    pthread_mutex_lock(&r->lock);
    for (const metrics__family_t *f = r->families; f != NULL; f = f->next)
        metrics__render_family(&o, f);
    pthread_mutex_unlock(&r->lock);

    if (len != NULL)
        *len = o.len;
    return o.buf;
}
