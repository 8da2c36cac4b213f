/* test_admin.c -- the admin listener over real sockets: /healthz, /readyz, /metrics, 404, healthcheck. */
#include "admin/admin.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "metrics/metrics.h"
#include "../../testutil.h"

static char err[256];

/* ================================================================ a small HTTP/1.1 client */

typedef struct {
    int status;
    char content_type[128];
    long content_length;
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
} test_http_t;

static int test_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect to %d", port);
    return fd;
}

/* Sends raw and reads the whole answer (the server closes after one response). */
static void test_http_raw(int port, const char *raw, test_http_t *res)
{
    memset(res, 0, sizeof(*res));
    res->content_length = -1;
    int fd = test_connect(port);
    cr_assert_eq(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    uint64_t deadline = core_now_ms() + 3000;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint64_t now = core_now_ms();
        cr_assert_lt(now, deadline, "no complete answer within 3 s");
        cr_assert_gt(poll(&p, 1, (int)(deadline - now)), 0, "no complete answer within 3 s");
        if (got == cap - 1)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        cr_assert_geq(r, 0);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    char *head_end = strstr(buf, "\r\n\r\n");
    cr_assert_not_null(head_end, "no header end in: %s", buf);
    *head_end = '\0';
    cr_assert_eq(sscanf(buf, "HTTP/1.1 %d", &res->status), 1, "bad status line: %s", buf);
    for (char *line = strstr(buf, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Type: ", 14) == 0)
            sscanf(line + 16, "%127[^\r]", res->content_type);
        else if (strncasecmp(line + 2, "Content-Length: ", 16) == 0)
            res->content_length = strtol(line + 18, NULL, 10);
    }
    res->body_len = got - (size_t)(head_end + 4 - buf);
    res->body = malloc(res->body_len + 1);
    memcpy(res->body, head_end + 4, res->body_len);
    res->body[res->body_len] = '\0';
    free(buf);
    cr_assert_eq(res->content_length, (long)res->body_len, "Content-Length does not match the body");
}

static void test_get(int port, const char *path, test_http_t *res)
{
    char req[512];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n", path);
    test_http_raw(port, req, res);
}

/* ================================================================ readiness callback */

typedef struct {
    int ready;
    int calls;
} test_ready_t;

static int test_ready(void *ud, cJSON *checks)
{
    test_ready_t *t = ud;
    t->calls++;
    cJSON_AddStringToObject(checks, "broker", t->ready ? "up" : "down");
    cJSON_AddStringToObject(checks, "database", "up");
    return t->ready;
}

static admin_t *test_start(metrics_registry_t *reg, admin_ready_fn ready, void *ud)
{
    admin_t *a = admin_start("127.0.0.1:0", reg, ready, ud, err, sizeof(err));
    cr_assert_not_null(a, "admin_start: %s", err);
    cr_assert_gt(admin_port(a), 0);
    return a;
}

TestSuite(admin, .timeout = 20);

/* ================================================================ endpoints */

Test(admin, healthz_answers_200_ok)
{
    admin_t *a = test_start(NULL, NULL, NULL);
    test_http_t r;
    test_get(admin_port(a), "/healthz", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.content_type, "application/json");
    cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    free(r.body);
    admin_stop(a);
}

Test(admin, readyz_reflects_the_callback_with_its_checks)
{
    test_ready_t t = {.ready = 1};
    admin_t *a = test_start(NULL, test_ready, &t);
    test_http_t r;

    test_get(admin_port(a), "/readyz", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.content_type, "application/json");
    cJSON *j = cJSON_Parse(r.body);
    cr_assert_not_null(j, "not JSON: %s", r.body);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "ready");
    cJSON *checks = cJSON_GetObjectItem(j, "checks");
    cr_assert(cJSON_IsObject(checks));
    cr_assert_str_eq(cJSON_GetObjectItem(checks, "broker")->valuestring, "up");
    cr_assert_str_eq(cJSON_GetObjectItem(checks, "database")->valuestring, "up");
    cJSON_Delete(j);
    free(r.body);

    t.ready = 0; /* the admin thread reads it on the next request */
    test_get(admin_port(a), "/readyz", &r);
    cr_assert_eq(r.status, 503);
    j = cJSON_Parse(r.body);
    cr_assert_not_null(j, "not JSON: %s", r.body);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "not ready");
    checks = cJSON_GetObjectItem(j, "checks");
    cr_assert_str_eq(cJSON_GetObjectItem(checks, "broker")->valuestring, "down");
    cJSON_Delete(j);
    free(r.body);

    /* healthz is about the process, not its dependencies. */
    test_get(admin_port(a), "/healthz", &r);
    cr_assert_eq(r.status, 200);
    free(r.body);
    admin_stop(a);
    cr_assert_eq(t.calls, 2);
}

Test(admin, readyz_without_a_callback_is_ready)
{
    admin_t *a = test_start(NULL, NULL, NULL);
    test_http_t r;
    test_get(admin_port(a), "/readyz", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"status\":\"ready\",\"checks\":{}}");
    free(r.body);
    admin_stop(a);
}

Test(admin, metrics_renders_the_registry)
{
    metrics_registry_t *reg = metrics_registry_new();
    metrics_counter_t *c = metrics_counter(reg, "test_requests_total", "Requests.", NULL);
    metrics_counter_add(c, NULL, 3);
    admin_t *a = test_start(reg, NULL, NULL);
    test_http_t r;
    test_get(admin_port(a), "/metrics", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.content_type, METRICS_CONTENT_TYPE);
    char *want = metrics_render(reg, NULL);
    cr_assert_str_eq(r.body, want);
    cr_assert_not_null(strstr(r.body, "# TYPE test_requests_total counter\ntest_requests_total 3\n"), "%s",
                       r.body);
    free(want);
    free(r.body);

    metrics_counter_add(c, NULL, 1);
    test_get(admin_port(a), "/metrics", &r);
    cr_assert_not_null(strstr(r.body, "test_requests_total 4\n"), "%s", r.body);
    free(r.body);
    admin_stop(a);
    metrics_registry_free(reg);
}

Test(admin, metrics_without_a_registry_is_empty)
{
    admin_t *a = test_start(NULL, NULL, NULL);
    test_http_t r;
    test_get(admin_port(a), "/metrics", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, 0);
    free(r.body);
    admin_stop(a);
}

Test(admin, other_paths_are_404_problems)
{
    admin_t *a = test_start(NULL, NULL, NULL);
    const char *paths[] = {"/", "/health", "/healthz/", "/healthzz", "/readyz/x", "/metrics2", "/v1/posts"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        test_http_t r;
        test_get(admin_port(a), paths[i], &r);
        cr_assert_eq(r.status, 404, "%s answered %d", paths[i], r.status);
        cr_assert_str_eq(r.content_type, "application/problem+json");
        cJSON *j = cJSON_Parse(r.body);
        cr_assert_not_null(j);
        cr_assert_eq(cJSON_GetObjectItem(j, "status")->valueint, 404);
        cJSON_Delete(j);
        free(r.body);
    }
    admin_stop(a);
}

Test(admin, serves_many_requests_in_a_row)
{
    admin_t *a = test_start(NULL, NULL, NULL);
    for (int i = 0; i < 300; i++) {
        test_http_t r;
        test_get(admin_port(a), i % 2 ? "/healthz" : "/readyz", &r);
        cr_assert_eq(r.status, 200);
        free(r.body);
    }
    admin_stop(a);
}

Test(admin, a_silent_client_delays_others_by_at_most_about_a_second)
{
    admin_t *a = test_start(NULL, NULL, NULL);
    int silent = test_connect(admin_port(a));
    uint64_t t0 = core_now_ms();
    test_http_t r;
    test_get(admin_port(a), "/healthz", &r);
    uint64_t took = core_now_ms() - t0;
    cr_assert_eq(r.status, 200);
    cr_assert_lt(took, 2000, "healthz took %llu ms behind a silent client", (unsigned long long)took);
    free(r.body);
    close(silent);
    admin_stop(a);
}

/* Daemons ignore SIGPIPE (svc does): then a client that resets mid-request harms nothing. */
Test(admin, a_client_that_resets_does_not_stop_the_listener)
{
    signal(SIGPIPE, SIG_IGN);
    admin_t *a = test_start(NULL, NULL, NULL);
    for (int i = 0; i < 20; i++) {
        int fd = test_connect(admin_port(a));
        const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd); /* RST */
    }
    test_http_t r;
    test_get(admin_port(a), "/healthz", &r);
    cr_assert_eq(r.status, 200);
    free(r.body);
    admin_stop(a);
}

Test(admin, start_refuses_bad_addresses_and_busy_ports)
{
    const char *bad[] = {"9101", "localhost:0", "127.0.0.1:x", "127.0.0.1:70000", "::1:0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        cr_assert_null(admin_start(bad[i], NULL, NULL, NULL, err, sizeof(err)), "%s was accepted", bad[i]);
        cr_assert_neq(err[0], '\0');
    }
    admin_t *a = test_start(NULL, NULL, NULL);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", admin_port(a));
    err[0] = '\0';
    cr_assert_null(admin_start(addr, NULL, NULL, NULL, err, sizeof(err)), "a busy port was accepted");
    cr_assert_neq(err[0], '\0');
    admin_stop(a);
}

Test(admin, stop_is_prompt_and_frees_the_port)
{
    admin_t *a = test_start(NULL, NULL, NULL);
    int port = admin_port(a);
    uint64_t t0 = core_now_ms();
    admin_stop(a);
    cr_assert_lt(core_now_ms() - t0, 500);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    a = admin_start(addr, NULL, NULL, NULL, err, sizeof(err));
    cr_assert_not_null(a, "port %d not reusable after stop: %s", port, err);
    admin_stop(a);
    admin_stop(NULL);
}

/* ================================================================ healthcheck */

static char msg[320]; /* what admin_healthcheck says, for --healthcheck's one line */

Test(admin, healthcheck_is_0_against_a_live_listener_and_1_otherwise)
{
    test_ready_t t = {.ready = 0};
    admin_t *a = test_start(NULL, test_ready, &t);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", admin_port(a));
    cr_assert_eq(admin_healthcheck(addr, "/healthz", msg, sizeof(msg)), 0);
    char want[128];
    snprintf(want, sizeof(want), "GET http://%s/healthz answered 200", addr);
    cr_assert_str_eq(msg, want);
    cr_assert_eq(admin_healthcheck(addr, "/readyz", msg, sizeof(msg)), 1, "503 must not pass");
    cr_assert_not_null(strstr(msg, "answered 503"), "%s", msg);
    t.ready = 1;
    cr_assert_eq(admin_healthcheck(addr, "/readyz", msg, sizeof(msg)), 0);
    cr_assert_eq(admin_healthcheck(addr, "/nope", msg, sizeof(msg)), 1);
    /* A wildcard listen address is probed on 127.0.0.1. */
    snprintf(addr, sizeof(addr), ":%d", admin_port(a));
    cr_assert_eq(admin_healthcheck(addr, "/healthz", msg, sizeof(msg)), 0);
    snprintf(addr, sizeof(addr), "*:%d", admin_port(a));
    cr_assert_eq(admin_healthcheck(addr, "/healthz", msg, sizeof(msg)), 0);
    snprintf(addr, sizeof(addr), "0.0.0.0:%d", admin_port(a));
    cr_assert_eq(admin_healthcheck(addr, "/healthz", msg, sizeof(msg)), 0);
    admin_stop(a);
}

Test(admin, healthcheck_against_a_closed_port_fails_fast)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", tu_free_port());
    uint64_t t0 = core_now_ms();
    cr_assert_eq(admin_healthcheck(addr, "/healthz", msg, sizeof(msg)), 1);
    cr_assert_lt(core_now_ms() - t0, 1000);
    cr_assert_not_null(strstr(msg, "Connection refused"), "%s", msg);
    cr_assert_eq(admin_healthcheck("nonsense", "/healthz", msg, sizeof(msg)), 1);
    cr_assert_str_eq(msg, "bad listen address nonsense (want host:port)");
    cr_assert_eq(admin_healthcheck("localhost:1", "/healthz", msg, sizeof(msg)), 1);
    cr_assert_str_eq(msg, "bad IPv4 address localhost");
}

Test(admin, healthcheck_against_a_listener_that_never_answers_gives_up_in_about_2_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 4), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    uint64_t t0 = core_now_ms();
    cr_assert_eq(admin_healthcheck(addr, "/healthz", msg, sizeof(msg)), 1);
    uint64_t took = core_now_ms() - t0;
    cr_assert(took >= 1500 && took < 3500, "took %llu ms", (unsigned long long)took);
    cr_assert_not_null(strstr(msg, "no answer within 2 s"), "%s", msg);
    close(fd);
}

/* ================================================================ parse_listen */

Test(admin, parse_listen_cases)
{
    struct {
        const char *in;
        int rc;
        const char *host;
        int port;
    } cases[] = {
        {"127.0.0.1:9101", 0, "127.0.0.1", 9101},
        {"0.0.0.0:9101", 0, "0.0.0.0", 9101},
        {":9101", 0, "0.0.0.0", 9101},
        {"*:9101", 0, "0.0.0.0", 9101},
        {"10.1.2.3:0", 0, "10.1.2.3", 0},
        {"127.0.0.1:65535", 0, "127.0.0.1", 65535},
        {"9101", -1, NULL, 0},
        {"127.0.0.1:", -1, NULL, 0},
        {"127.0.0.1:abc", -1, NULL, 0},
        {"127.0.0.1:91x", -1, NULL, 0},
        {"127.0.0.1:65536", -1, NULL, 0},
        {"127.0.0.1:-1", -1, NULL, 0},
        {"", -1, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[64] = "untouched";
        int port = -42;
        int rc = admin_parse_listen(cases[i].in, host, sizeof(host), &port);
        cr_assert_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].in, rc);
        if (rc == 0) {
            cr_assert_str_eq(host, cases[i].host, "\"%s\"", cases[i].in);
            cr_assert_eq(port, cases[i].port, "\"%s\"", cases[i].in);
        }
    }
}

Test(admin, parse_listen_refuses_a_host_longer_than_the_buffer)
{
    char host[8];
    int port;
    cr_assert_eq(admin_parse_listen("127.0.0.1:80", host, sizeof(host), &port), -1);
    cr_assert_eq(admin_parse_listen("1.2.3.4:80", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "1.2.3.4");
}
