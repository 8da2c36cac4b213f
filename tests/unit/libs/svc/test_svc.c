/* test_svc.c -- the daemon skeleton run whole in a child process against a real RabbitMQ (TEST_AMQP_URL):
 * readiness, ping, RPC handlers, the 404 of unknown methods, metrics, SIGTERM, --help, --healthcheck and
 * configuration errors. */
#include "svc/svc.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "log/log.h"
#include "mq/mq.h"
#include "problem/problem.h"
#include "../../testutil.h"

static char svct_url[512];
static char svct_name[64]; /* the service: unit-svc-<random>, queue <name>.rpc */

/* ================================================================ the daemon (child side) */

typedef enum {
    SVCT_READY_NONE, /* def.ready is NULL */
    SVCT_READY_UP,   /* adds "db":"up", returns 1 */
    SVCT_READY_DOWN, /* adds "db":"down", returns 0 */
} svct_ready_t;

static struct {
    svc_conf_t svc;
} conf;

static const cfg_var_t conf_table[] = {
    SVC_CFG_COMMON(conf.svc, "127.0.0.1:1"),
    {0},
};

static svc_t *child_svc;
static atomic_int child_setups;

static int child_ready(void *ud, cJSON *checks)
{
    int up = (svct_ready_t)(intptr_t)ud == SVCT_READY_UP;
    cJSON_AddStringToObject(checks, "db", up ? "up" : "down");
    return up;
}

/* <name>.greet: 200 {"hello":<body>,"worker":n,"setups":n,"workers":n,"request_id":..};
 * <name>.slow: prints "slow: started" on stdout, works 800 ms, then 200 {"slow":"done"};
 * <name>.half: a body but no status (the library answers 500); <name>.ctype: a content type only;
 * anything else: nothing (404). */
static void child_rpc(mq_t *mq, const mq_message_t *req, mq_reply_t *reply, void *ud)
{
    (void)mq;
    const char *method = req->type != NULL ? req->type : "";
    const char *dot = strrchr(method, '.');
    if (dot != NULL && strcmp(dot, ".greet") == 0) {
        cJSON *o = cJSON_CreateObject();
        char *body = xstrndup(req->body, req->body_len);
        cJSON_AddStringToObject(o, "hello", body);
        free(body);
        cJSON_AddNumberToObject(o, "worker", (double)(intptr_t)ud);
        cJSON_AddNumberToObject(o, "setups", atomic_load(&child_setups));
        cJSON_AddNumberToObject(o, "workers", (double)svc_conf(child_svc)->workers);
        cJSON_AddStringToObject(o, "request_id", req->request_id != NULL ? req->request_id : "");
        reply->status = 200;
        reply->body = cJSON_PrintUnformatted(o);
        reply->body_len = strlen(reply->body);
        cJSON_Delete(o);
    } else if (dot != NULL && strcmp(dot, ".half") == 0) {
        reply->body = xstrdup("{\"forgot\":\"the status\"}");
        reply->body_len = strlen(reply->body);
    } else if (dot != NULL && strcmp(dot, ".slow") == 0) {
        static const char started[] = "slow: started\n"; /* the test waits for this line on stdout */
        (void)!write(STDOUT_FILENO, started, sizeof(started) - 1);
        core_sleep_ms(800, NULL);
        reply->status = 200;
        reply->body = xstrdup("{\"slow\":\"done\"}");
        reply->body_len = strlen(reply->body);
    } else if (dot != NULL && strcmp(dot, ".ctype") == 0) {
        reply->content_type = xstrdup("text/plain"); /* then nothing to say: the skeleton's 404 */
    }
}

static void child_setup_worker(svc_t *svc, mq_t *mq, void *ud)
{
    (void)ud;
    child_svc = svc;
    int n = atomic_fetch_add(&child_setups, 1) + 1;
    svc_serve_rpc(svc, mq, child_rpc, (void *)(intptr_t)n);
}

typedef struct {
    const char *argv[4];  /* NULL-terminated; argv[0] defaults to "svcd" */
    int admin_port;       /* ADMIN_LISTEN=127.0.0.1:<port> */
    const char *workers;  /* WORKERS; NULL: "2" */
    const char *amqp_url; /* AMQP_URL; NULL: TEST_AMQP_URL */
    svct_ready_t ready;
    int out_fd, err_fd; /* set by svct_spawn: the child's stdout and stderr */
} svct_spawn_t;

/* The forked child runs this binary again (a fresh process: no test runner state, no threads of the
 * parent, and sanitizers that see their own process) with SVCT_CHILD set; this constructor then runs
 * the daemon instead of the test runner and exits with what svc_main returns. glibc passes argc, argv
 * and envp to constructors. */
__attribute__((constructor)) static void child_entry(int argc, char **argv, char **envp)
{
    (void)envp;
    const char *name = getenv("SVCT_CHILD");
    if (name == NULL)
        return;
    snprintf(svct_name, sizeof(svct_name), "%s", name);
    svct_ready_t ready = (svct_ready_t)atoi(getenv("SVCT_READY") != NULL ? getenv("SVCT_READY") : "0");
    svc_def_t def = {
        .name = svct_name,
        .summary = "svcd -- a unit-test daemon on the svc skeleton",
        .setup_worker = child_setup_worker,
        .ready = ready == SVCT_READY_NONE ? NULL : child_ready,
        .ud = (void *)(intptr_t)ready,
    };
    exit(svc_main(argc, argv, &def, conf_table, &conf.svc));
}

/* In the forked child: environment, redirections, then this binary as the daemon. */
static void child_exec(const svct_spawn_t *sp)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a test that crashed (kept across exec) */
    dup2(sp->out_fd, STDOUT_FILENO);
    dup2(sp->err_fd, STDERR_FILENO);
    char listen[64], ready[8];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", sp->admin_port);
    snprintf(ready, sizeof(ready), "%d", (int)sp->ready);
    setenv("ADMIN_LISTEN", listen, 1);
    setenv("AMQP_URL", sp->amqp_url != NULL ? sp->amqp_url : svct_url, 1);
    setenv("WORKERS", sp->workers != NULL ? sp->workers : "2", 1);
    setenv("LOG_LEVEL", getenv("TEST_SVC_DEBUG") != NULL ? "debug" : "error", 1);
    setenv("SVCT_CHILD", svct_name, 1);
    setenv("SVCT_READY", ready, 1);
    char *argv[4] = {(char *)(sp->argv[0] != NULL ? sp->argv[0] : "svcd")};
    for (int i = 1; i < 3 && sp->argv[i] != NULL; i++)
        argv[i] = (char *)sp->argv[i];
    execv("/proc/self/exe", argv);
    fprintf(stderr, "test_svc: exec /proc/self/exe: %s\n", strerror(errno));
    _exit(127);
}

/* ================================================================ children (test side) */

#define SVCT_MAX_CHILDREN 4

/* A child and the files its stdout and stderr go to (read when it is reaped, shown when it fails). */
typedef struct {
    pid_t pid;
    char out_path[64], err_path[64];
} svct_child_t;

static svct_child_t svct_children[SVCT_MAX_CHILDREN];
static char *svct_out, *svct_err; /* the output of the child reaped last; freed by the next reap and fini */
static mq_rpc_client_t *svct_rpc;

static int svct_tmpfile(char *path, size_t len)
{
    snprintf(path, len, "/tmp/test_svc.XXXXXX");
    int fd = mkostemp(path, O_CLOEXEC);
    cr_assert_geq(fd, 0, "mkostemp: %s", strerror(errno));
    return fd;
}

static svct_child_t *svct_child(pid_t pid)
{
    for (int i = 0; i < SVCT_MAX_CHILDREN; i++)
        if (svct_children[i].pid == pid)
            return &svct_children[i];
    cr_assert_fail("%s", pid == 0 ? "too many children at once" : "not a child of this test");
    return NULL;
}

/* Removes a child's files and frees its slot. */
static void svct_child_clear(svct_child_t *c)
{
    if (c->out_path[0] != '\0')
        unlink(c->out_path);
    if (c->err_path[0] != '\0')
        unlink(c->err_path);
    memset(c, 0, sizeof(*c));
}

/* Forks and runs the daemon as sp says; its output goes to files of its own. */
static pid_t svct_spawn(svct_spawn_t *sp)
{
    svct_child_t *c = svct_child(0); /* a free slot */
    sp->out_fd = svct_tmpfile(c->out_path, sizeof(c->out_path));
    sp->err_fd = svct_tmpfile(c->err_path, sizeof(c->err_path));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0)
        child_exec(sp);
    int fork_errno = errno;
    close(sp->out_fd);
    close(sp->err_fd);
    if (pid < 0)
        svct_child_clear(c);
    cr_assert_gt(pid, 0, "fork: %s", strerror(fork_errno));
    c->pid = pid;
    return pid;
}

/* A file's contents as a malloc'd string ("" if it cannot be read). */
static char *svct_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t cap = 4096, got = 0;
    char *buf = xmalloc(cap);
    while (f != NULL) {
        if (got + 1 >= cap)
            buf = xrealloc(buf, cap *= 2);
        size_t r = fread(buf + got, 1, cap - 1 - got, f);
        if (r == 0)
            break;
        got += r;
    }
    if (f != NULL)
        fclose(f);
    buf[got] = '\0';
    return buf;
}

static const char *svct_describe(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, len, "status 0x%x", status);
    return buf;
}

/* Waits up to timeout_ms for the child to end (it is then reaped); 1 and *status if it did. */
static int svct_wait_exit(pid_t pid, unsigned timeout_ms, int *status)
{
    uint64_t deadline = core_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 1;
        cr_assert_eq(r, 0, "waitpid: %s", strerror(errno));
        if (core_now_ms() >= deadline)
            return 0;
        core_sleep_ms(10, NULL);
    }
}

/* Collects what the child wrote (into svct_out and svct_err) and, once it has ended, forgets it. */
static void svct_collect(svct_child_t *c, int ended)
{
    free(svct_out);
    free(svct_err);
    svct_out = svct_slurp(c->out_path);
    svct_err = svct_slurp(c->err_path);
    if (ended)
        svct_child_clear(c);
}

/* Asserts the child exits with want within timeout_ms, with no sanitizer report on its stderr.
 * Returns its stderr (borrowed until the next reap). */
static const char *svct_reap(pid_t pid, unsigned timeout_ms, int want, const char *what)
{
    svct_child_t *c = svct_child(pid);
    int status = 0, ended = svct_wait_exit(pid, timeout_ms, &status);
    svct_collect(c, ended);
    char buf[64];
    cr_assert(ended, "%s: still running after %u ms; its stderr:\n%s", what, timeout_ms, svct_err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == want,
              "%s: %s, want exit status %d; its stderr:\n%s", what, svct_describe(status, buf, sizeof(buf)),
              want, svct_err);
    cr_assert(strstr(svct_err, "Sanitizer") == NULL && strstr(svct_err, "runtime error:") == NULL,
              "%s: a sanitizer report:\n%s", what, svct_err);
    return svct_err;
}

/* SIGTERM (or SIGINT), then the daemon must exit 0 within 5 s. */
static void svct_stop(pid_t pid, int sig)
{
    cr_assert_eq(kill(pid, sig), 0);
    svct_reap(pid, 5000, 0, sig == SIGTERM ? "after SIGTERM" : "after SIGINT");
}

/* Runs a short-lived child to its end (see svct_reap). Returns its stderr; *out (if not NULL) gets its
 * stdout. Both are borrowed until the next reap. */
static const char *svct_run(svct_spawn_t *sp, int want, const char *what, const char **out)
{
    const char *err = svct_reap(svct_spawn(sp), 5000, want, what);
    if (out != NULL)
        *out = svct_out;
    return err;
}

/* Reads a socket to EOF (the admin listener closes after one answer) into a malloc'd string. */
static char *svct_read_all(int fd)
{
    size_t cap = 4096, got = 0;
    char *buf = xmalloc(cap);
    uint64_t deadline = core_now_ms() + 5000;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint64_t now = core_now_ms();
        if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
            break;
        if (got + 1 >= cap)
            buf = xrealloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    return buf;
}

/* ================================================================ ports and HTTP */

/* GET path on the admin port: the status (-1 if nothing listens) and the body (malloc'd) in *body. */
static int svct_get(int port, const char *path, char **body)
{
    *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    char *all = svct_read_all(fd);
    close(fd);
    int status = -1;
    char *sep = strstr(all, "\r\n\r\n");
    cr_assert(sep != NULL && sscanf(all, "HTTP/1.1 %d", &status) == 1, "GET %s: bad answer: %s", path, all);
    *body = xstrdup(sep + 4);
    free(all);
    return status;
}

/* Polls /readyz until pred(status, json) holds; fails if the child dies or after 10 s. Returns the JSON. */
static cJSON *svct_wait_readyz(pid_t pid, int port, int (*pred)(int status, const cJSON *j), int *status)
{
    uint64_t deadline = core_now_ms() + 10000;
    char last[512] = "(nothing listened)";
    for (;;) {
        int st = 0;
        char buf[64];
        if (waitpid(pid, &st, WNOHANG) == pid) {
            svct_collect(svct_child(pid), 1);
            cr_assert_fail("the daemon ended before it was ready: %s; its stderr:\n%s",
                           svct_describe(st, buf, sizeof(buf)), svct_err);
        }
        char *body;
        int s = svct_get(port, "/readyz", &body);
        if (s > 0) {
            cJSON *j = cJSON_Parse(body);
            snprintf(last, sizeof(last), "%d %s", s, body);
            free(body);
            cr_assert_not_null(j, "/readyz is not JSON: %s", last);
            if (pred(s, j)) {
                *status = s;
                return j;
            }
            cJSON_Delete(j);
        }
        cr_assert_lt(core_now_ms(), deadline, "/readyz never got there in 10 s; last answer: %s", last);
        core_sleep_ms(20, NULL);
    }
}

static const char *svct_check(const cJSON *j, const char *name)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "checks"), name);
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

static int svct_is_200(int status, const cJSON *j)
{
    (void)j;
    return status == 200;
}

static int svct_broker_up(int status, const cJSON *j)
{
    (void)status;
    const char *b = svct_check(j, "broker");
    return b != NULL && strcmp(b, "up") == 0;
}

/* Starts the daemon with default settings on a fresh port and waits until /readyz says 200. */
static pid_t svct_start_ready(int *port, svct_ready_t ready)
{
    *port = tu_free_port();
    svct_spawn_t sp = {.admin_port = *port, .ready = ready};
    pid_t pid = svct_spawn(&sp);
    int status;
    cJSON *j = svct_wait_readyz(pid, *port, svct_is_200, &status);
    cJSON_Delete(j);
    return pid;
}

/* ================================================================ the broker */

static void svct_setup(void)
{
    const char *url = getenv("TEST_AMQP_URL");
    cr_assert(url != NULL && url[0] != '\0',
              "TEST_AMQP_URL is not set: start RabbitMQ (deploy/local/stack.sh infra-up) and export "
              "TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:<port>");
    snprintf(svct_url, sizeof(svct_url), "%s", url);
    char uuid[CORE_UUID_BUFSZ];
    core_uuid(uuid);
    snprintf(svct_name, sizeof(svct_name), "unit-svc-%.8s%.4s", uuid, uuid + 9);
    log_init("test_svc", LOG_ERROR);
}

/* A raw rabbitmq-c connection (NULL if the broker cannot be reached). */
static amqp_connection_state_t svct_raw_open(void)
{
    char *copy = xstrdup(svct_url);
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    amqp_connection_state_t c = NULL;
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK)
        goto out;
    if (ci.vhost[0] == '\0') /* "amqp://host/": the default vhost, as mq_new reads it */
        ci.vhost = (char *)"/";
    c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    struct timeval tv = {.tv_sec = 5};
    if (amqp_socket_open_noblock(s, ci.host, ci.port, &tv) != AMQP_STATUS_OK ||
        amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password).reply_type !=
            AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection(c);
        c = NULL;
        goto out;
    }
    amqp_channel_open(c, 1);
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_connection_close(c, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(c);
        c = NULL;
    }
out:
    free(copy);
    return c;
}

static void svct_raw_close(amqp_connection_state_t c)
{
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* Consumers on <name>.rpc, or -1 if it does not exist. */
static int svct_rpc_consumers(void)
{
    char q[128];
    snprintf(q, sizeof(q), "%s.rpc", svct_name);
    amqp_connection_state_t c = svct_raw_open();
    cr_assert_not_null(c, "cannot reach the broker at %s", svct_url);
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 1, 0, 0, 0, amqp_empty_table);
    int n =
        ok != NULL && amqp_get_rpc_reply(c).reply_type == AMQP_RESPONSE_NORMAL ? (int)ok->consumer_count : -1;
    if (n >= 0)
        svct_raw_close(c);
    else {
        amqp_connection_close(c, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(c);
    }
    return n;
}

/* Suite fini: kills what is left of the daemons, stops the RPC client, deletes <name>.rpc. Runs after a
 * failed assertion too; asserts nothing. */
static void svct_teardown(void)
{
    for (int i = 0; i < SVCT_MAX_CHILDREN; i++) {
        if (svct_children[i].pid > 0) {
            kill(svct_children[i].pid, SIGKILL);
            waitpid(svct_children[i].pid, NULL, 0);
        }
        svct_child_clear(&svct_children[i]);
    }
    free(svct_out);
    free(svct_err);
    svct_out = svct_err = NULL;
    if (svct_rpc != NULL) {
        mq_rpc_client_stop(svct_rpc);
        svct_rpc = NULL;
    }
    if (svct_url[0] == '\0')
        return;
    amqp_connection_state_t c = svct_raw_open();
    if (c == NULL)
        return;
    char q[128];
    snprintf(q, sizeof(q), "%s.rpc", svct_name);
    amqp_queue_delete(c, 1, amqp_cstring_bytes(q), 0, 0);
    svct_raw_close(c);
}

TestSuite(svc, .init = svct_setup, .fini = svct_teardown, .timeout = 30);

/* ================================================================ RPC (test side) */

static mq_rpc_client_t *svct_client(void)
{
    mq_conf_t mc = {.url = svct_url, .app_id = "unit-svc-client"};
    svct_rpc = mq_rpc_client_start(&mc);
    cr_assert_not_null(svct_rpc);
    uint64_t deadline = core_now_ms() + 5000;
    while (!mq_rpc_client_connected(svct_rpc)) {
        cr_assert_lt(core_now_ms(), deadline, "the RPC client did not connect to %s", svct_url);
        core_sleep_ms(10, NULL);
    }
    return svct_rpc;
}

/* Calls <name>.<method> and asserts a reply came (error 0); clear *res after. */
static void svct_call(const char *method, const char *body, mq_rpc_result_t *res)
{
    char full[128];
    snprintf(full, sizeof(full), "%s.%s", svct_name, method);
    mq_rpc_request_t req = {
        .service = svct_name,
        .method = full,
        .request_id = "req-svc-1",
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .timeout_ms = 5000,
    };
    memset(res, 0, sizeof(*res));
    mq_rpc_call_sync(svct_rpc, &req, res);
    cr_assert_eq(res->error, 0, "%s: %s", full, mq_strerror(res->error));
}

static cJSON *svct_json(const mq_rpc_result_t *res)
{
    cJSON *j = cJSON_ParseWithLength(res->body, res->body_len);
    cr_assert_not_null(j, "not JSON: %.*s", (int)res->body_len, res->body != NULL ? res->body : "");
    return j;
}

static void svct_assert_str(const cJSON *j, const char *key, const char *want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    cr_assert(cJSON_IsString(v), "\"%s\" is not a string", key);
    cr_assert_str_eq(v->valuestring, want, "\"%s\": \"%s\", want \"%s\"", key, v->valuestring, want);
}

/* The value of a metric line "<series> <value>" in the /metrics text, or -1 if the series is absent. */
static double svct_metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

static double svct_rpc_total(const char *text, const char *method, const char *status)
{
    char series[256];
    snprintf(series, sizeof(series), "rpc_requests_total{method=\"%s.%s\",status=\"%s\"}", svct_name, method,
             status);
    return svct_metric(text, series);
}

/* ================================================================ tests */

Test(svc, serves_ping_and_methods_then_stops_on_sigterm)
{
    int port;
    pid_t pid = svct_start_ready(&port, SVCT_READY_NONE);

    char *body;
    int status;
    cJSON *j = svct_wait_readyz(pid, port, svct_is_200, &status);
    svct_assert_str(j, "status", "ready");
    cr_assert_str_eq(svct_check(j, "broker"), "up");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "checks")), 1,
                 "only the broker is checked");
    cJSON_Delete(j);
    cr_assert_eq(svct_get(port, "/healthz", &body), 200);
    free(body);
    cr_assert_eq(svct_rpc_consumers(), 2, "WORKERS=2: one consumer of %s.rpc per worker", svct_name);

    svct_client();
    mq_rpc_result_t res;

    /* <name>.ping is answered by the skeleton. */
    svct_call("ping", NULL, &res);
    cr_assert_eq(res.status, 200);
    char want[160];
    snprintf(want, sizeof(want), "{\"service\":\"%s\",\"status\":\"ok\"}", svct_name);
    cr_assert_eq(res.body_len, strlen(want), "ping: %.*s", (int)res.body_len, res.body);
    cr_assert_eq(memcmp(res.body, want, res.body_len), 0, "ping: %.*s", (int)res.body_len, res.body);
    cr_assert(res.content_type != NULL && strncmp(res.content_type, "application/json", 16) == 0, "ping: %s",
              res.content_type != NULL ? res.content_type : "no content type");
    mq_rpc_result_clear(&res);

    /* The handler setup_worker registered, once per worker. */
    svct_call("greet", "world", &res);
    cr_assert_eq(res.status, 200, "greet: %d %.*s", res.status, (int)res.body_len, res.body);
    j = svct_json(&res);
    svct_assert_str(j, "hello", "world");
    svct_assert_str(j, "request_id", "req-svc-1");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(j, "setups")->valuedouble, 2,
                 "setup_worker ran once per worker");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(j, "workers")->valuedouble, 2, "svc_conf: WORKERS");
    double w = cJSON_GetObjectItemCaseSensitive(j, "worker")->valuedouble;
    cr_assert(w == 1 || w == 2, "the handler's ud is its worker's: %g", w);
    cJSON_Delete(j);
    mq_rpc_result_clear(&res);

    /* A method the handler does not know: 404 problem+json from the skeleton. */
    svct_call("nope", "{}", &res);
    cr_assert_eq(res.status, 404);
    cr_assert(res.content_type != NULL &&
                  strncmp(res.content_type, PROBLEM_CONTENT_TYPE, strlen(PROBLEM_CONTENT_TYPE)) == 0,
              "404: content type %s", res.content_type != NULL ? res.content_type : "(none)");
    j = svct_json(&res);
    svct_assert_str(j, "type", PROBLEM_TYPE_BASE "unknown-method");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(j, "status")->valuedouble, 404);
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(j, "detail");
    snprintf(want, sizeof(want), "%s.nope", svct_name);
    cr_assert(cJSON_IsString(detail) && strstr(detail->valuestring, want) != NULL,
              "the detail names the method");
    cJSON_Delete(j);
    mq_rpc_result_clear(&res);

    /* Every request is counted by method and status. */
    cr_assert_eq(svct_get(port, "/metrics", &body), 200);
    cr_assert_eq(svct_rpc_total(body, "ping", "200"), 1, "%s", body);
    cr_assert_eq(svct_rpc_total(body, "greet", "200"), 1, "%s", body);
    /* Unknown methods share one series: a caller cannot mint series by inventing names. */
    cr_assert_eq(svct_metric(body, "rpc_requests_total{method=\"unknown\",status=\"404\"}"), 1, "%s", body);
    char nope[128];
    snprintf(nope, sizeof(nope), "method=\"%s.nope\"", svct_name);
    cr_assert_null(strstr(body, nope), "%s", body);
    char series[256];
    snprintf(series, sizeof(series), "rpc_duration_seconds_count{method=\"%s.ping\",status=\"200\"}",
             svct_name);
    cr_assert_eq(svct_metric(body, series), 1, "%s", body);
    cr_assert_not_null(strstr(body, "# TYPE rpc_requests_total counter"));
    free(body);

    svct_stop(pid, SIGTERM);
    cr_assert_eq(svct_get(port, "/healthz", &body), -1, "the admin listener outlived the daemon");
    /* The broker drops a closed connection's consumers at once; allow it a moment all the same. */
    int consumers = svct_rpc_consumers();
    for (uint64_t deadline = core_now_ms() + 2000; consumers > 0 && core_now_ms() < deadline;) {
        core_sleep_ms(20, NULL);
        consumers = svct_rpc_consumers();
    }
    cr_assert_eq(consumers, 0, "the workers' consumers outlived the daemon");
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    mq_rpc_result_t *res; /* owned once set */
} svct_async_t;

static void svct_async_cb(void *ud, mq_rpc_result_t *res)
{
    svct_async_t *a = ud;
    pthread_mutex_lock(&a->lock);
    a->res = res;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

/* Waits up to timeout_ms for the reply; NULL if none came. */
static mq_rpc_result_t *svct_async_wait(svct_async_t *a, unsigned timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->lock);
    while (a->res == NULL && pthread_cond_timedwait(&a->cond, &a->lock, &ts) == 0)
        ;
    mq_rpc_result_t *res = a->res;
    pthread_mutex_unlock(&a->lock);
    return res;
}

/* svc.h: on SIGTERM the daemon stops consuming and lets the messages in hand finish. */
Test(svc, sigterm_lets_the_request_in_hand_finish)
{
    int port;
    pid_t pid = svct_start_ready(&port, SVCT_READY_NONE);
    svct_client();
    svct_async_t a = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    char method[128];
    snprintf(method, sizeof(method), "%s.slow", svct_name);
    mq_rpc_request_t req = {.service = svct_name, .method = method, .timeout_ms = 5000};
    mq_rpc_call(svct_rpc, &req, svct_async_cb, &a);

    /* Once the handler has the request in hand, SIGTERM. */
    const char *out_path = svct_child(pid)->out_path;
    uint64_t deadline = core_now_ms() + 5000;
    for (;;) {
        char *out = svct_slurp(out_path);
        int started = strstr(out, "slow: started") != NULL;
        free(out);
        if (started)
            break;
        cr_assert_lt(core_now_ms(), deadline, "the slow handler never started");
        core_sleep_ms(10, NULL);
    }
    uint64_t t0 = core_now_ms();
    cr_assert_eq(kill(pid, SIGTERM), 0);

    mq_rpc_result_t *res = svct_async_wait(&a, 5000);
    cr_assert_not_null(res, "no reply to the request in hand");
    int error = res->error, status = res->status;
    mq_rpc_result_clear(res);
    free(res);
    cr_assert_eq(error, 0, "the request in hand got %s", mq_strerror(error));
    cr_assert_eq(status, 200);
    svct_reap(pid, 5000, 0, "after SIGTERM with a request in hand");
    cr_assert_lt(core_now_ms() - t0, 5000);
}

Test(svc, a_failing_ready_check_makes_readyz_503)
{
    int port = tu_free_port();
    svct_spawn_t sp = {.admin_port = port, .ready = SVCT_READY_DOWN};
    pid_t pid = svct_spawn(&sp);
    int status;
    cJSON *j = svct_wait_readyz(pid, port, svct_broker_up, &status);
    cr_assert_eq(status, 503, "ready although def.ready said no");
    svct_assert_str(j, "status", "not ready");
    cr_assert_str_eq(svct_check(j, "broker"), "up");
    cr_assert_str_eq(svct_check(j, "db"), "down", "the daemon's own check is in the JSON");
    cJSON_Delete(j);
    char *body;
    cr_assert_eq(svct_get(port, "/healthz", &body), 200, "alive, if not ready");
    free(body);
    svct_stop(pid, SIGTERM);
}

Test(svc, a_passing_ready_check_adds_its_member)
{
    int port;
    pid_t pid = svct_start_ready(&port, SVCT_READY_UP);
    int status;
    cJSON *j = svct_wait_readyz(pid, port, svct_is_200, &status);
    svct_assert_str(j, "status", "ready");
    cr_assert_str_eq(svct_check(j, "broker"), "up");
    cr_assert_str_eq(svct_check(j, "db"), "up");
    cJSON_Delete(j);
    svct_stop(pid, SIGINT); /* SIGINT stops it as SIGTERM does */
}

Test(svc, help_prints_the_variables_and_exits_0)
{
    svct_spawn_t sp = {.argv = {"x", "--help"}, .admin_port = 1};
    const char *text;
    svct_run(&sp, 0, "--help", &text);
    const char *names[] = {"AMQP_URL", "LOG_LEVEL", "ADMIN_LISTEN", "WORKERS", "unit-test daemon"};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(names); i++)
        cr_assert_not_null(strstr(text, names[i]), "--help does not mention %s:\n%s", names[i], text);
    cr_assert_eq(svct_rpc_consumers(), -1, "--help declared %s.rpc", svct_name);
}

Test(svc, invalid_workers_exit_2)
{
    const char *bad[] = {"abc", "0", "65", "2x", "-1"};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(bad); i++) {
        char what[64];
        snprintf(what, sizeof(what), "WORKERS=\"%s\"", bad[i]);
        svct_spawn_t sp = {.admin_port = tu_free_port(), .workers = bad[i]};
        const char *err = svct_run(&sp, 2, what, NULL);
        cr_assert_not_null(strstr(err, "WORKERS"), "%s: the error does not name the variable: %s", what, err);
    }
    cr_assert_eq(svct_rpc_consumers(), -1, "a daemon with a bad configuration declared %s.rpc", svct_name);
}

Test(svc, healthcheck_probes_the_admin_port)
{
    int port;
    pid_t pid = svct_start_ready(&port, SVCT_READY_NONE);

    svct_spawn_t hc = {.argv = {"x", "--healthcheck"}, .admin_port = port};
    const char *out, *err;
    err = svct_run(&hc, 0, "--healthcheck against a running daemon", &out);
    char want[128];
    snprintf(want, sizeof(want), "%s healthy: GET http://127.0.0.1:%d/healthz answered 200\n", svct_name,
             port);
    cr_assert_str_eq(out, want, "stdout: %s", out);
    cr_assert_str_eq(err, "", "stderr: %s", err);

    hc.admin_port = tu_free_port();
    err = svct_run(&hc, 1, "--healthcheck against a closed port", &out);
    snprintf(want, sizeof(want), "%s unhealthy: GET http://127.0.0.1:%d/healthz: Connection refused\n",
             svct_name, hc.admin_port);
    cr_assert_str_eq(err, want, "stderr: %s", err);
    cr_assert_str_eq(out, "", "stdout: %s", out);

    svct_stop(pid, SIGTERM);
    hc.admin_port = port;
    svct_run(&hc, 1, "--healthcheck after the daemon stopped", NULL);
}

/* Start-up failures exit 1 (svc.h) with a message, and leave nothing behind (no sanitizer report). */
Test(svc, an_admin_port_in_use_fails_to_start)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 1), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    svct_spawn_t sp = {.admin_port = ntohs(sa.sin_port)};
    const char *log; /* the JSON log is on stdout */
    svct_run(&sp, 1, "admin port in use", &log);
    close(fd);
    cr_assert_not_null(strstr(log, "Address already in use"), "no reason logged: %s", log);
}

Test(svc, an_amqp_url_that_does_not_parse_fails_to_start)
{
    svct_spawn_t sp = {.admin_port = tu_free_port(), .amqp_url = "http://127.0.0.1:1"};
    const char *log;
    svct_run(&sp, 1, "AMQP_URL=http://...", &log);
    cr_assert_not_null(strstr(log, "AMQP_URL"), "no reason logged: %s", log);
}

/* A handler that fills a body but leaves the status 0: the library answers 500 (mq.h), and the
 * metrics must count what was answered, not 0. */
Test(svc, metrics_count_the_status_actually_sent)
{
    int port;
    pid_t pid = svct_start_ready(&port, SVCT_READY_NONE);
    svct_client();
    mq_rpc_result_t res;
    svct_call("half", "{}", &res);
    cr_assert_eq(res.status, 500, "a reply without a status");
    mq_rpc_result_clear(&res);
    char *body;
    cr_assert_eq(svct_get(port, "/metrics", &body), 200);
    double sent = svct_rpc_total(body, "half", "500"), zero = svct_rpc_total(body, "half", "0");
    free(body);
    svct_stop(pid, SIGTERM);
    cr_assert_eq(zero, -1, "rpc_requests_total counts status=\"0\" for a reply sent as 500");
    cr_assert_eq(sent, 1, "rpc_requests_total{status=\"500\"} is %g", sent);
}

/* A handler that set a content type (malloc'd, owned by the reply) but nothing else gets the skeleton's
 * 404; its content type must be freed, not overwritten (in sanitizer builds a leak makes the daemon's exit
 * status 1 and prints a LeakSanitizer report). */
Test(svc, the_404_of_a_handler_that_set_a_content_type_frees_it)
{
    int port;
    pid_t pid = svct_start_ready(&port, SVCT_READY_NONE);
    svct_client();
    mq_rpc_result_t res;
    svct_call("ctype", NULL, &res);
    cr_assert_eq(res.status, 404);
    cr_assert(res.content_type != NULL &&
                  strncmp(res.content_type, PROBLEM_CONTENT_TYPE, strlen(PROBLEM_CONTENT_TYPE)) == 0,
              "content type %s", res.content_type != NULL ? res.content_type : "(none)");
    mq_rpc_result_clear(&res);
    svct_stop(pid, SIGTERM);
}
