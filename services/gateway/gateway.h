/* gateway.h -- what the gateway's files share: configuration, routes, the request context. */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"
#include "mq/mq.h"
#include "ratelimit/ratelimit.h"
#include "token/token.h"

/* ================================================================ configuration */

typedef struct {
    char *listen, *tls_listen, *tls_cert_file, *tls_key_file;
    char *amqp_url, *log_level;
    long startup_timeout_ms; /* how long the broker may take to answer at start */
    char *jwt_public_key_file, *jwt_issuer, *jwt_audience, *jwt_algorithms;
    long jwt_leeway_s, token_cache;
    long rate_ip_per_s, rate_ip_burst, rate_user_per_s, rate_user_burst;
    long trusted_proxies;
    long rpc_timeout_ms, ready_timeout_ms, shutdown_ms;
    long max_body;
    char *media_dir;
    int debug_routes;
} gw_conf_t;

/* ================================================================ routes (routes.c) */

typedef enum {
    GW_AUTH_NONE,     /* no token looked at */
    GW_AUTH_OPTIONAL, /* a token, if sent, must be valid; the call may be anonymous */
    GW_AUTH_REQUIRED, /* 401 without a valid token */
} gw_auth_t;

typedef struct {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/users/{username}/follow" */
    const char *service; /* routing key on the rpc exchange */
    const char *rpc;     /* method name (AMQP type) */
    gw_auth_t auth;
    size_t max_body;     /* bytes; 0 means the gateway default */
    unsigned timeout_ms; /* 0 means the gateway default */
    int debug;           /* only with GATEWAY_DEBUG_ROUTES (tests and benchmarks) */
} gw_route_t;

#define GW_MAX_PARAMS 4

typedef struct {
    const gw_route_t *route;
    size_t nparams;
    const char *names[GW_MAX_PARAMS]; /* borrowed from the table */
    char *values[GW_MAX_PARAMS];      /* percent-decoded, allocated in the request pool */
} gw_match_t;

enum { GW_MATCH_OK = 0, GW_MATCH_NOT_FOUND = -1, GW_MATCH_BAD_METHOD = -2, GW_MATCH_BAD_PARAM = -3 };

/* Builds the table of enabled routes (debug ones only if asked). Call once at start. */
void gw_routes_init(int debug_routes);
/* Matches method and normalised path. On GW_MATCH_BAD_METHOD, allow (if not NULL) gets the
 * comma-separated methods the path accepts, in the pool. */
int gw_routes_match(h2o_mem_pool_t *pool, const char *method, size_t mlen, const char *path, size_t plen,
                    gw_match_t *m, h2o_iovec_t *allow);
/* The largest body any enabled route accepts (for h2o's own cap). */
size_t gw_routes_max_body(size_t default_max);
/* Distinct services of the enabled routes (NULL-terminated, static). */
const char *const *gw_routes_services(void);

/* ================================================================ the gateway (main.c) */

typedef struct {
    gw_conf_t conf;
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t rpc_receiver;
    mq_rpc_client_t *rpc;
    token_verifier_t *tokens;
    token_cache_t *token_cache;
    ratelimit_t *rl_ip, *rl_user;
    size_t max_body;
    unsigned in_flight; /* requests waiting for an RPC reply (loop thread only) */

    metrics_registry_t *metrics;
    metrics_counter_t *m_requests;
    metrics_histogram_t *m_latency;
    metrics_gauge_t *m_rpc_in_flight;
    metrics_counter_t *m_rate_limited;
} gw_t;

extern gw_t gw; /* the daemon's one instance: configuration and long-lived state */

/* ================================================================ responses (respond.c) */

#define GW_JSON "application/json; charset=utf-8"

/* Every response goes through these: they record metrics. route_label is the route pattern or
 * a fixed name ("/healthz", "unmatched"). */
void gw_send(h2o_req_t *req, const char *route_label, uint64_t t0_us, int status, const char *content_type,
             const char *body, size_t len);
void gw_send_problem(h2o_req_t *req, const char *route_label, uint64_t t0_us, int status, const char *type,
                     const char *detail);
void gw_record(const char *route_label, const char *method, size_t mlen, int status, uint64_t t0_us);
/* Picks the request id (the incoming x-request-id if well-formed, else a new UUID), adds it to
 * the response headers and returns it (in the request pool). Call once per request. */
const char *gw_request_id_init(h2o_req_t *req);
const char *gw_reason(int status);

/* ================================================================ handlers */

/* /v1/...: the API routes, relayed as RPC (proxy.c). */
int gw_handle_api(h2o_req_t *req, const char *request_id, uint64_t t0_us);
/* Receives RPC results on the loop thread (proxy.c). */
void gw_on_rpc_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
/* /healthz, /readyz, /metrics, /media/... (ops.c). */
int gw_handle_healthz(h2o_req_t *req, uint64_t t0_us);
int gw_handle_readyz(h2o_req_t *req, const char *request_id, uint64_t t0_us);
int gw_handle_metrics(h2o_req_t *req, uint64_t t0_us);
int gw_handle_media(h2o_req_t *req, uint64_t t0_us);

/* Posts an RPC result to the loop thread; called on the RPC client thread. */
typedef void (*gw_result_fn)(void *ud, mq_rpc_result_t *res);
void gw_rpc(const mq_rpc_request_t *req, gw_result_fn fn, void *ud);

#endif
