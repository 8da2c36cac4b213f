/* svc.h -- the shape every daemon shares: config, logs, worker connections, ping, admin, SIGTERM. */
#ifndef SVC_H
#define SVC_H

#include "admin/admin.h"
#include "cfg/cfg.h"
#include "metrics/metrics.h"
#include "mq/mq.h"

/* Settings every daemon reads; put SVC_CFG_COMMON(conf) first in the daemon's table. */
typedef struct {
    char *amqp_url;
    char *log_level;
    char *admin_listen;
    long workers;
    long startup_timeout_ms; /* how long the broker may take to answer at start */
} svc_conf_t;

#define SVC_CFG_COMMON(c, admin_default)                                                                     \
    {"AMQP_URL", CFG_STRING, "amqp://guest:guest@127.0.0.1:5672", "RabbitMQ URL", &(c).amqp_url, 0, 0},      \
        {"LOG_LEVEL", CFG_STRING, "info", "debug, info, warn or error", &(c).log_level, 0, 0},               \
        {"ADMIN_LISTEN",                                                                                     \
         CFG_STRING,                                                                                         \
         admin_default,                                                                                      \
         "admin HTTP listener (/healthz /readyz /metrics)",                                                  \
         &(c).admin_listen,                                                                                  \
         0,                                                                                                  \
         0},                                                                                                 \
        {"WORKERS", CFG_INT, "4", "consumer threads, each with its own broker connection", &(c).workers, 1,  \
         64},                                                                                                \
    {                                                                                                        \
        "STARTUP_TIMEOUT", CFG_MS, "30s",                                                                    \
            "how long the broker may take to answer at start; then the daemon exits 1 naming AMQP_URL",      \
            &(c).startup_timeout_ms, 1000, 3600000                                                           \
    }

typedef struct svc svc_t;

typedef struct {
    const char *name;    /* service name: queue <name>.rpc, methods <name>.*, app_id */
    const char *summary; /* one line for --help */
    /* Called once per worker with its consumer connection: register RPC handlers (with
     * svc_serve_rpc) and consumers (mq_consume). May be NULL. */
    void (*setup_worker)(svc_t *svc, mq_t *mq, void *ud);
    /* Extra readiness checks (e.g. the database); adds members to checks, returns 1 if ready.
     * May be NULL. */
    admin_ready_fn ready;
    /* Called once after the configuration is loaded, before the workers are set up and started
     * (open the database, start background threads: signals are already blocked, so threads
     * started here never take SIGTERM). Returns 0, or -1 to give up (svc_main returns 1). May be
     * NULL. */
    int (*start)(svc_t *svc, void *ud);
    /* Called after the workers have stopped, if start succeeded: stop what start started. May be
     * NULL. */
    void (*stop)(svc_t *svc, void *ud);
    /* Unacked deliveries per worker connection; 0 means mq's default (100). A daemon whose
     * messages are large or slow (images) takes 1, leaving the rest to other copies. */
    unsigned prefetch;
    /* MQ_RETRY redeliveries on the worker connections before dead-lettering; 0 means mq's default
     * (5, about 12 s of a database that does not answer). A daemon whose events must wait out an
     * outage takes more. */
    unsigned max_retries;
    void *ud;
} svc_def_t;

/* Serves <name>.rpc on mq: answers <name>.ping itself (200 {"service":..,"status":"ok"}) and
 * passes every other method to fn; counts requests in the svc metrics. */
void svc_serve_rpc(svc_t *svc, mq_t *mq, mq_rpc_fn fn, void *ud);

/* The daemon's metrics registry (for its own counters). */
metrics_registry_t *svc_metrics(svc_t *svc);
const svc_conf_t *svc_conf(svc_t *svc);

/* For main(): --help prints the table; --healthcheck probes the admin listener and exits;
 * otherwise loads the table (exit 2 on a bad value), initialises logs, starts the admin listener
 * and conf->workers consumer threads, and runs until SIGTERM or SIGINT, then stops consuming,
 * lets in-flight messages finish and returns 0 (1 if it could not start). */
int svc_main(int argc, char **argv, const svc_def_t *def, const cfg_var_t *table, const svc_conf_t *conf);

#endif
