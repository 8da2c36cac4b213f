/* test_metrics.c -- Prometheus text rendering, label escaping, histograms and concurrent updates. */
#include "metrics/metrics.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Renders r and checks the length out-parameter against the text. Caller frees. */
static char *test_render(metrics_registry_t *r)
{
    size_t len = 12345;
    char *text = metrics_render(r, &len);
    cr_assert_not_null(text);
    cr_assert_eq(len, strlen(text));
    return text;
}

Test(metrics, empty_registry_renders_nothing)
{
    metrics_registry_t *r = metrics_registry_new();
    char *text = test_render(r);
    cr_assert_str_eq(text, "");
    free(text);
    char *again = metrics_render(r, NULL);
    free(again);
    metrics_registry_free(r);
}

Test(metrics, counter_without_labels_starts_at_zero_and_renders_integers)
{
    metrics_registry_t *r = metrics_registry_new();
    metrics_counter_t *c = metrics_counter(r, "uploads_total", "Photos uploaded.", NULL);
    char *text = test_render(r);
    cr_assert_str_eq(text, "# HELP uploads_total Photos uploaded.\n"
                           "# TYPE uploads_total counter\n"
                           "uploads_total 0\n");
    free(text);

    metrics_counter_add(c, NULL, 1);
    metrics_counter_add(c, NULL, 2);
    text = test_render(r);
    cr_assert_str_eq(text, "# HELP uploads_total Photos uploaded.\n"
                           "# TYPE uploads_total counter\n"
                           "uploads_total 3\n");
    free(text);
    metrics_registry_free(r);
}

Test(metrics, counter_with_labels_keeps_series_in_first_use_order)
{
    metrics_registry_t *r = metrics_registry_new();
    const char *names[] = {"method", "code", NULL};
    metrics_counter_t *c = metrics_counter(r, "http_requests_total", "Requests served.", names);
    const char *get200[] = {"GET", "200"}, *post201[] = {"POST", "201"}, *get404[] = {"GET", "404"};
    metrics_counter_add(c, get200, 1);
    metrics_counter_add(c, post201, 1);
    metrics_counter_add(c, get200, 1);
    metrics_counter_add(c, get404, 0.5);
    char *text = test_render(r);
    cr_assert_str_eq(text, "# HELP http_requests_total Requests served.\n"
                           "# TYPE http_requests_total counter\n"
                           "http_requests_total{method=\"GET\",code=\"200\"} 2\n"
                           "http_requests_total{method=\"POST\",code=\"201\"} 1\n"
                           "http_requests_total{method=\"GET\",code=\"404\"} 0.5\n");
    free(text);
    metrics_registry_free(r);
}

Test(metrics, label_values_and_help_are_escaped)
{
    metrics_registry_t *r = metrics_registry_new();
    const char *names[] = {"path", NULL};
    metrics_gauge_t *g = metrics_gauge(r, "odd", "Help with \\ backslash\nand \"quotes\".", names);
    const char *v[] = {"a\"b\\c\nd"};
    metrics_gauge_set(g, v, 1);
    char *text = test_render(r);
    cr_assert_str_eq(text, "# HELP odd Help with \\\\ backslash\\nand \"quotes\".\n"
                           "# TYPE odd gauge\n"
                           "odd{path=\"a\\\"b\\\\c\\nd\"} 1\n");
    free(text);
    metrics_registry_free(r);
}

Test(metrics, gauge_set_add_and_number_formats)
{
    metrics_registry_t *r = metrics_registry_new();
    const char *names[] = {"k", NULL};
    metrics_gauge_t *g = metrics_gauge(r, "g", "G.", names);
    const char *a[] = {"a"}, *b[] = {"b"}, *c[] = {"c"}, *d[] = {"d"}, *e[] = {"e"};
    metrics_gauge_set(g, a, 10);
    metrics_gauge_add(g, a, -12.5);
    metrics_gauge_set(g, b, 0.1);
    metrics_gauge_set(g, c, 1e20);
    metrics_gauge_set(g, d, INFINITY);
    metrics_gauge_set(g, e, 123456789012.0);
    char *text = test_render(r);
    cr_assert_str_eq(text, "# HELP g G.\n"
                           "# TYPE g gauge\n"
                           "g{k=\"a\"} -2.5\n"
                           "g{k=\"b\"} 0.1\n"
                           "g{k=\"c\"} 1e+20\n"
                           "g{k=\"d\"} +Inf\n"
                           "g{k=\"e\"} 123456789012\n");
    free(text);
    metrics_registry_free(r);
}

Test(metrics, histogram_buckets_are_cumulative)
{
    metrics_registry_t *r = metrics_registry_new();
    const char *names[] = {"route", NULL};
    const double bounds[] = {0.1, 1, 5};
    metrics_histogram_t *h = metrics_histogram(r, "latency_seconds", "Latency.", names, bounds, 3);
    const char *route[] = {"/feed"};
    const double seen[] = {0.05, 0.1, 0.5, 0.5, 3, 10};
    for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++)
        metrics_histogram_observe(h, route, seen[i]);
    char *text = test_render(r);
    cr_assert_str_eq(text, "# HELP latency_seconds Latency.\n"
                           "# TYPE latency_seconds histogram\n"
                           "latency_seconds_bucket{route=\"/feed\",le=\"0.1\"} 2\n"
                           "latency_seconds_bucket{route=\"/feed\",le=\"1\"} 4\n"
                           "latency_seconds_bucket{route=\"/feed\",le=\"5\"} 5\n"
                           "latency_seconds_bucket{route=\"/feed\",le=\"+Inf\"} 6\n"
                           "latency_seconds_sum{route=\"/feed\"} 14.15\n"
                           "latency_seconds_count{route=\"/feed\"} 6\n");
    free(text);
    metrics_registry_free(r);
}

Test(metrics, histogram_without_labels_and_default_bounds)
{
    metrics_registry_t *r = metrics_registry_new();
    metrics_histogram_t *h = metrics_histogram(r, "op_seconds", "Op.", NULL, NULL, 0);
    metrics_histogram_observe(h, NULL, 0.003);
    metrics_histogram_observe(h, NULL, 20);
    char *text = test_render(r);
    cr_assert(strstr(text, "op_seconds_bucket{le=\"0.0005\"} 0\n") != NULL, "%s", text);
    cr_assert(strstr(text, "op_seconds_bucket{le=\"0.0025\"} 0\n") != NULL, "%s", text);
    cr_assert(strstr(text, "op_seconds_bucket{le=\"0.005\"} 1\n") != NULL, "%s", text);
    cr_assert(strstr(text, "op_seconds_bucket{le=\"10\"} 1\n") != NULL, "%s", text);
    cr_assert(strstr(text, "op_seconds_bucket{le=\"+Inf\"} 2\n") != NULL, "%s", text);
    cr_assert(strstr(text, "op_seconds_sum 20.003\n") != NULL, "%s", text);
    cr_assert(strstr(text, "op_seconds_count 2\n") != NULL, "%s", text);
    free(text);
    metrics_registry_free(r);
}

Test(metrics, same_name_returns_the_same_family)
{
    metrics_registry_t *r = metrics_registry_new();
    metrics_counter_t *a = metrics_counter(r, "x_total", "X.", NULL);
    metrics_counter_t *b = metrics_counter(r, "x_total", "Other help.", NULL);
    cr_assert_eq(a, b);
    metrics_counter_add(b, NULL, 1);
    char *text = test_render(r);
    cr_assert_str_eq(text, "# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n");
    free(text);
    metrics_registry_free(r);
}

Test(metrics, families_render_in_creation_order)
{
    metrics_registry_t *r = metrics_registry_new();
    metrics_gauge(r, "b_gauge", "B.", NULL);
    metrics_counter(r, "a_total", "A.", NULL);
    char *text = test_render(r);
    cr_assert_str_eq(text, "# HELP b_gauge B.\n# TYPE b_gauge gauge\nb_gauge 0\n"
                           "# HELP a_total A.\n# TYPE a_total counter\na_total 0\n");
    free(text);
    metrics_registry_free(r);
}

Test(metrics, invalid_name_is_a_bug, .signal = SIGABRT)
{
    metrics_registry_t *r = metrics_registry_new();
    metrics_counter(r, "9lives", "Bad.", NULL);
}

Test(metrics, negative_counter_add_is_a_bug, .signal = SIGABRT)
{
    metrics_registry_t *r = metrics_registry_new();
    metrics_counter_t *c = metrics_counter(r, "c_total", "C.", NULL);
    metrics_counter_add(c, NULL, -1);
}

Test(metrics, same_name_other_type_is_a_bug, .signal = SIGABRT)
{
    metrics_registry_t *r = metrics_registry_new();
    metrics_counter(r, "thing", "T.", NULL);
    metrics_gauge(r, "thing", "T.", NULL);
}

#define TEST_THREADS 4
#define TEST_ADDS 10000

typedef struct {
    metrics_counter_t *counter;
    metrics_histogram_t *histogram;
    metrics_registry_t *registry;
} test_shared_t;

static void *test_worker(void *arg)
{
    test_shared_t *s = arg;
    const char *get[] = {"GET"};
    for (int i = 0; i < TEST_ADDS; i++) {
        metrics_counter_add(s->counter, get, 1);
        metrics_histogram_observe(s->histogram, NULL, 0.5);
        if (i % 1000 == 0)
            free(metrics_render(s->registry, NULL)); /* scrapes race with updates */
    }
    return NULL;
}

Test(metrics, concurrent_increments_are_exact)
{
    metrics_registry_t *r = metrics_registry_new();
    const char *names[] = {"method", NULL};
    const double bounds[] = {1};
    test_shared_t s = {
        .counter = metrics_counter(r, "requests_total", "Requests.", names),
        .histogram = metrics_histogram(r, "work_seconds", "Work.", NULL, bounds, 1),
        .registry = r,
    };
    pthread_t threads[TEST_THREADS];
    for (int i = 0; i < TEST_THREADS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, test_worker, &s), 0);
    for (int i = 0; i < TEST_THREADS; i++)
        pthread_join(threads[i], NULL);

    char *text = test_render(r);
    cr_assert(strstr(text, "requests_total{method=\"GET\"} 40000\n") != NULL, "%s", text);
    cr_assert(strstr(text, "work_seconds_bucket{le=\"1\"} 40000\n") != NULL, "%s", text);
    cr_assert(strstr(text, "work_seconds_sum 20000\n") != NULL, "%s", text);
    cr_assert(strstr(text, "work_seconds_count 40000\n") != NULL, "%s", text);
    free(text);
    metrics_registry_free(r);
}
