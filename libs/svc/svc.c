/* svc.c -- the shape every daemon shares: config, logs, worker connections, ping, admin, SIGTERM. */
#include "svc/svc.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "problem/problem.h"

typedef struct {
    mq_rpc_fn fn;
    void *ud;
} svc__rpc_t;

typedef struct {
    svc_t *svc;
    mq_t *mq;
    pthread_t thread;
    atomic_int up;
    svc__rpc_t rpc;
} svc__worker_t;

struct svc {
    const svc_def_t *def;
    const svc_conf_t *conf;
    metrics_registry_t *metrics;
    metrics_counter_t *rpc_total;
    metrics_histogram_t *rpc_seconds;
    svc__worker_t *workers;
    long nworkers;
    volatile int stop;
};

metrics_registry_t *svc_metrics(svc_t *svc)
{
    return svc->metrics;
}

const svc_conf_t *svc_conf(svc_t *svc)
{
    return svc->conf;
}

/* ================================================================ RPC */

static void svc__rpc(mq_t *mq, const mq_message_t *req, mq_reply_t *reply, void *ud)
{
    svc__worker_t *w = ud;
    svc_t *svc = w->svc;
    uint64_t t0 = core_now_us();
    const char *method = req->type != NULL ? req->type : "";
    size_t nlen = strlen(svc->def->name);
    if (strncmp(method, svc->def->name, nlen) == 0 && strcmp(method + nlen, ".ping") == 0) {
        reply->status = 200;
        reply->body = xasprintf("{\"service\":\"%s\",\"status\":\"ok\"}", svc->def->name);
        reply->body_len = strlen(reply->body);
    } else if (w->rpc.fn != NULL) {
        w->rpc.fn(mq, req, reply, w->rpc.ud);
    }
    const char *label = method;
    if (reply->status == 0 && reply->body == NULL) {
        reply->status = 404;
        free(reply->content_type);
        reply->content_type = xstrdup(PROBLEM_CONTENT_TYPE);
        char *detail = xasprintf("unknown method %s", method);
        reply->body = problem_json(404, "unknown-method", detail, NULL);
        reply->body_len = strlen(reply->body);
        free(detail);
        label = "unknown"; /* callers must not be able to mint metric series */
    }
    char status[8];
    /* A handler that leaves status 0 is answered 500 by mq (mq_serve_rpc): count that. */
    snprintf(status, sizeof(status), "%d", reply->status != 0 ? reply->status : 500);
    const char *labels[] = {label, status};
    metrics_counter_add(svc->rpc_total, labels, 1);
    metrics_histogram_observe(svc->rpc_seconds, labels, (double)(core_now_us() - t0) / 1e6);
}

void svc_serve_rpc(svc_t *svc, mq_t *mq, mq_rpc_fn fn, void *ud)
{
    for (long i = 0; i < svc->nworkers; i++) {
        svc__worker_t *w = &svc->workers[i];
        if (w->mq == mq) {
            w->rpc.fn = fn;
            w->rpc.ud = ud;
            mq_serve_rpc(mq, svc->def->name, svc__rpc, w);
            return;
        }
    }
    CORE_ASSERT(!"svc_serve_rpc: not a worker connection");
}

/* ================================================================ workers */

static void svc__tick(mq_t *mq, void *ud)
{
    svc__worker_t *w = ud;
    atomic_store(&w->up, mq_connected(mq));
}

static void *svc__worker_main(void *arg)
{
    svc__worker_t *w = arg;
    mq_run(w->mq, &w->svc->stop);
    atomic_store(&w->up, 0);
    return NULL;
}

static int svc__ready(void *ud, cJSON *checks)
{
    svc_t *svc = ud;
    int broker = 1;
    for (long i = 0; i < svc->nworkers; i++)
        broker &= atomic_load(&svc->workers[i].up);
    cJSON_AddStringToObject(checks, "broker", broker ? "up" : "down");
    int extra = svc->def->ready != NULL ? svc->def->ready(svc->def->ud, checks) : 1;
    return broker && extra;
}

/* ================================================================ main */

int svc_main(int argc, char **argv, const svc_def_t *def, const cfg_var_t *table, const svc_conf_t *conf)
{
    cfg_main(argc, argv, def->summary, table);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--healthcheck") == 0) {
            char msg[320];
            int rc = admin_healthcheck(conf->admin_listen, "/healthz", msg, sizeof(msg));
            fprintf(rc == 0 ? stdout : stderr, "%s %s: %s\n", def->name, rc == 0 ? "healthy" : "unhealthy",
                    msg);
            exit(rc);
        }
    }

    int level = log_level_parse(conf->log_level);
    log_init(def->name, level < 0 ? LOG_INFO : (log_level_t)level);
    if (level < 0) {
        log_error(NULL, "LOG_LEVEL must be debug, info, warn or error");
        return 1;
    }

    /* Signals are taken by sigwait below; every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    svc_t svc = {.def = def, .conf = conf, .nworkers = conf->workers};
    svc.metrics = metrics_registry_new();
    static const char *const rpc_labels[] = {"method", "status", NULL};
    svc.rpc_total = metrics_counter(svc.metrics, "rpc_requests_total", "RPC requests served", rpc_labels);
    svc.rpc_seconds =
        metrics_histogram(svc.metrics, "rpc_duration_seconds", "RPC handling time", rpc_labels, NULL, 0);
    svc.workers = xcalloc((size_t)svc.nworkers, sizeof(*svc.workers));

    char err[256];
    int rc = 1;
    long started = 0;
    int started_hook = 0;
    admin_t *admin = admin_start(conf->admin_listen, svc.metrics, svc__ready, &svc, err, sizeof(err));
    if (admin == NULL) {
        log_error(NULL, "%s", err);
        goto out;
    }
    /* a daemon pointed at no broker says so in one line and exits, rather than look alive while
     * it retries */
    mq_conf_t probe = {.url = conf->amqp_url, .app_id = def->name};
    if (mq_wait_for_broker(&probe, conf->startup_timeout_ms, &sigs, err, sizeof(err)) != 0) {
        log_error(NULL, "AMQP_URL (STARTUP_TIMEOUT %ld s): %s", conf->startup_timeout_ms / 1000, err);
        goto out;
    }
    if (def->start != NULL && def->start(&svc, def->ud) != 0)
        goto out;
    started_hook = 1;
    for (long i = 0; i < svc.nworkers; i++) {
        svc__worker_t *w = &svc.workers[i];
        mq_conf_t mc = {.url = conf->amqp_url,
                        .app_id = def->name,
                        .prefetch = def->prefetch,
                        .max_retries = def->max_retries};
        w->svc = &svc;
        w->mq = mq_new(&mc);
        if (w->mq == NULL) {
            log_error(NULL, "AMQP_URL does not parse: %s", conf->amqp_url);
            goto out;
        }
        if (def->setup_worker != NULL)
            def->setup_worker(&svc, w->mq, def->ud);
        if (w->rpc.fn == NULL)
            svc_serve_rpc(&svc, w->mq, NULL, NULL); /* ping only */
        mq_set_tick(w->mq, 200, svc__tick, w);
    }
    for (; started < svc.nworkers; started++)
        CORE_ASSERT(
            pthread_create(&svc.workers[started].thread, NULL, svc__worker_main, &svc.workers[started]) == 0);
    log_info(NULL, "started: %ld workers, admin on %s", svc.nworkers, conf->admin_listen);

    int sig = 0;
    sigwait(&sigs, &sig);
    log_info(NULL, "signal %d: stopping", sig);
    rc = 0;
out:
    svc.stop = 1;
    for (long i = 0; i < started; i++)
        pthread_join(svc.workers[i].thread, NULL);
    for (long i = 0; i < svc.nworkers; i++)
        mq_free(svc.workers[i].mq);
    if (started_hook && def->stop != NULL)
        def->stop(&svc, def->ud);
    admin_stop(admin);
    metrics_registry_free(svc.metrics);
    free(svc.workers);
    if (rc == 0)
        log_info(NULL, "stopped");
    return rc;
}
