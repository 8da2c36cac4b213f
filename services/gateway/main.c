/* main.c -- the gateway daemon: configuration, h2o listeners (h2c and TLS h2), dispatch, SIGTERM drain. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/admin.h"
#include "cfg/cfg.h"
#include "core/core.h"
#include "gateway.h"
#include "log/log.h"

gw_t gw;

static const cfg_var_t gw__conf_table[] = {
    {"GATEWAY_LISTEN", CFG_STRING, "127.0.0.1:8080", "HTTP/1.1 and h2c (prior knowledge) listener",
     &gw.conf.listen},
    {"GATEWAY_TLS_LISTEN", CFG_STRING, "127.0.0.1:8443",
     "TLS listener (h2 by ALPN, and HTTP/1.1); empty: none", &gw.conf.tls_listen},
    {"GATEWAY_TLS_CERT_FILE", CFG_STRING, NULL, "PEM certificate chain for the TLS listener",
     &gw.conf.tls_cert_file},
    {"GATEWAY_TLS_KEY_FILE", CFG_STRING, NULL, "PEM private key for the TLS listener", &gw.conf.tls_key_file},
    {"AMQP_URL", CFG_STRING, "amqp://guest:guest@127.0.0.1:5672", "RabbitMQ URL", &gw.conf.amqp_url},
    {"STARTUP_TIMEOUT", CFG_MS, "30s",
     "how long the broker may take to answer at start; then the gateway exits 1 naming AMQP_URL",
     &gw.conf.startup_timeout_ms, 1000, 3600000},
    {"LOG_LEVEL", CFG_STRING, "info", "debug, info, warn or error", &gw.conf.log_level},
    {"JWT_PUBLIC_KEY_FILE", CFG_STRING, NULL,
     "PEM public key that verifies access tokens (auth holds the private one)", &gw.conf.jwt_public_key_file},
    {"JWT_ISSUER", CFG_STRING, "photo-auth", "required iss of access tokens", &gw.conf.jwt_issuer},
    {"JWT_AUDIENCE", CFG_STRING, "photo-api", "required aud of access tokens", &gw.conf.jwt_audience},
    {"JWT_ALGORITHMS", CFG_STRING, "RS256", "accepted token algorithms (asymmetric only)",
     &gw.conf.jwt_algorithms},
    {"JWT_LEEWAY_SECONDS", CFG_INT, "5", "clock skew tolerated on exp, nbf and iat", &gw.conf.jwt_leeway_s, 0,
     300},
    {"GATEWAY_TOKEN_CACHE", CFG_INT, "65536", "verified access tokens remembered (by hash, until their exp)",
     &gw.conf.token_cache, 1, 16777216},
    {"GATEWAY_RATE_IP_PER_SEC", CFG_INT, "50", "requests per second per client address (sustained)",
     &gw.conf.rate_ip_per_s, 1, 10000000},
    {"GATEWAY_RATE_IP_BURST", CFG_INT, "200", "burst per client address", &gw.conf.rate_ip_burst, 1,
     100000000},
    {"GATEWAY_RATE_USER_PER_SEC", CFG_INT, "20", "requests per second per user (sustained)",
     &gw.conf.rate_user_per_s, 1, 10000000},
    {"GATEWAY_RATE_USER_BURST", CFG_INT, "100", "burst per user", &gw.conf.rate_user_burst, 1, 100000000},
    {"GATEWAY_TRUSTED_PROXIES", CFG_INT, "0",
     "load balancers in front that append to X-Forwarded-For (0: use the peer address)",
     &gw.conf.trusted_proxies, 0, 8},
    {"GATEWAY_RPC_TIMEOUT", CFG_MS, "5s", "default RPC timeout of a route (then 504)",
     &gw.conf.rpc_timeout_ms, 10, 120000},
    {"GATEWAY_READY_TIMEOUT", CFG_MS, "1s", "how long /readyz waits for each service's ping",
     &gw.conf.ready_timeout_ms, 10, 60000},
    {"GATEWAY_SHUTDOWN_TIMEOUT", CFG_MS, "25s",
     "the longest SIGTERM takes to exit: in-flight requests get all of it but a fifth (at most 1s)",
     &gw.conf.shutdown_ms, 0, 600000},
    {"GATEWAY_MAX_BODY", CFG_INT, "1048576", "default request body cap in bytes (routes may set their own)",
     &gw.conf.max_body, 0, 1073741824},
    {"MEDIA_DIR", CFG_STRING, "var/media", "local object store served under /media/", &gw.conf.media_dir},
    {"GATEWAY_DEBUG_ROUTES", CFG_BOOL, "false", "serve /v1/debug/* (tests and benchmarks, via tests/echod)",
     &gw.conf.debug_routes},
    {0},
};

/* ================================================================ dispatch */

static int gw__on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    uint64_t t0 = core_now_us();
    const char *rid = gw_request_id_init(req);
    h2o_iovec_t p = req->path_normalized;
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/healthz")))
        return gw_handle_healthz(req, t0);
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/readyz")))
        return gw_handle_readyz(req, rid, t0);
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/metrics")))
        return gw_handle_metrics(req, t0);
    if (p.len > 7 && memcmp(p.base, "/media/", 7) == 0)
        return gw_handle_media(req, t0);
    if (p.len >= 4 && memcmp(p.base, "/v1/", 4) == 0)
        return gw_handle_api(req, rid, t0);
    gw_send_problem(req, "unmatched", t0, 404, "not-found", "no such route");
    return 0;
}

/* ================================================================ listeners */

typedef struct {
    h2o_accept_ctx_t accept;
    h2o_socket_t *sock;
} gw__listener_t;

static gw__listener_t gw__listeners[2];
static size_t gw__nlisteners;

static void gw__on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock == NULL)
        return;
    int one = 1;
    setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h2o_accept(listener->data, sock);
}

static int gw__listen(const char *addr, SSL_CTX *ssl, char *err, size_t errlen)
{
    char host[128];
    int port, fd = -1, one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (admin_parse_listen(addr, host, sizeof(host), &port) != 0 ||
        inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "bad listen address %s (want IPv4 host:port)", addr);
        return -1;
    }
    sa.sin_port = htons((uint16_t)port);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    gw__listener_t *l = &gw__listeners[gw__nlisteners++];
    l->accept.ctx = &gw.ctx;
    l->accept.hosts = gw.globalconf.hosts;
    l->accept.ssl_ctx = ssl;
    l->sock = h2o_evloop_socket_create(gw.ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    l->sock->data = &l->accept;
    h2o_socket_read_start(l->sock, gw__on_accept);
    return 0;
}

static SSL_CTX *gw__tls_context(char *err, size_t errlen)
{
    SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ssl, gw.conf.tls_cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ssl, gw.conf.tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ssl) != 1) {
        snprintf(err, errlen, "TLS: cannot load %s / %s: %s", gw.conf.tls_cert_file, gw.conf.tls_key_file,
                 ERR_reason_error_string(ERR_get_error()));
        SSL_CTX_free(ssl);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ssl, h2o_http2_alpn_protocols);
    return ssl;
}

/* ================================================================ setup */

static char *gw__read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = xmalloc(65536);
    *len = fread(buf, 1, 65535, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void gw__metrics_init(void)
{
    static const char *const req_labels[] = {"route", "method", "status", NULL};
    static const char *const route_label[] = {"route", NULL};
    static const char *const scope_label[] = {"scope", NULL};
    gw.metrics = metrics_registry_new();
    gw.m_requests = metrics_counter(gw.metrics, "gateway_http_requests_total",
                                    "HTTP requests by route and status", req_labels);
    gw.m_latency = metrics_histogram(gw.metrics, "gateway_http_request_duration_seconds",
                                     "time from request to response, by route", route_label, NULL, 0);
    gw.m_rpc_in_flight = metrics_gauge(gw.metrics, "gateway_rpc_in_flight", "RPCs waiting for a reply", NULL);
    gw.m_rate_limited = metrics_counter(gw.metrics, "gateway_rate_limited_total",
                                        "requests refused with 429, by scope (address or user)", scope_label);
}

static volatile sig_atomic_t gw__stop;

static void gw__on_signal(int sig)
{
    (void)sig;
    gw__stop = 1;
}

int main(int argc, char **argv)
{
    char err[256];
    int rc = 1;
    SSL_CTX *ssl = NULL;
    cfg_main(argc, argv, "gateway: the HTTP/2 edge of the photo backend", gw__conf_table);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--healthcheck") == 0) {
            /* No admin listener: the gateway answers /healthz on its own HTTP listener. */
            char msg[320];
            rc = admin_healthcheck(gw.conf.listen, "/healthz", msg, sizeof(msg));
            fprintf(rc == 0 ? stdout : stderr, "gateway %s: %s\n", rc == 0 ? "healthy" : "unhealthy", msg);
            return rc;
        }
    }
    int level = log_level_parse(gw.conf.log_level);
    log_init("gateway", level < 0 ? LOG_INFO : (log_level_t)level);
    if (level < 0) {
        log_error(NULL, "LOG_LEVEL must be debug, info, warn or error");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    size_t keylen = 0;
    char *key =
        gw.conf.jwt_public_key_file != NULL ? gw__read_file(gw.conf.jwt_public_key_file, &keylen) : NULL;
    if (key == NULL) {
        log_error(NULL, "JWT_PUBLIC_KEY_FILE must name a readable PEM public key");
        return 1;
    }
    gw.tokens = token_verifier_new(key, keylen, gw.conf.jwt_algorithms, gw.conf.jwt_issuer,
                                   gw.conf.jwt_audience, (int)gw.conf.jwt_leeway_s, err, sizeof(err));
    free(key);
    if (gw.tokens == NULL) {
        log_error(NULL, "JWT_PUBLIC_KEY_FILE, JWT_ALGORITHMS: %s", err);
        return 1;
    }
    gw.token_cache = token_cache_new((size_t)gw.conf.token_cache);
    gw.rl_ip = ratelimit_new((double)gw.conf.rate_ip_per_s, (double)gw.conf.rate_ip_burst, 200000);
    gw.rl_user = ratelimit_new((double)gw.conf.rate_user_per_s, (double)gw.conf.rate_user_burst, 200000);
    gw__metrics_init();
    gw_routes_init(gw.conf.debug_routes);
    mq_conf_t mc = {.url = gw.conf.amqp_url, .app_id = "gateway"};
    gw.rpc = mq_rpc_client_start(&mc);
    if (gw.rpc == NULL) {
        log_error(NULL, "AMQP_URL does not parse (amqp://user:password@host:port/vhost expected)");
        return 1;
    }
    /* A gateway pointed at no broker says so and exits, rather than answering 503 to everything. */
    if (mq_wait_for_broker(&mc, gw.conf.startup_timeout_ms, NULL, err, sizeof(err)) != 0) {
        log_error(NULL, "AMQP_URL (STARTUP_TIMEOUT %ld s): %s", gw.conf.startup_timeout_ms / 1000, err);
        mq_rpc_client_stop(gw.rpc);
        return 1;
    }

    h2o_config_init(&gw.globalconf);
    /* h2o 2.2 reads a whole body before any handler sees the request, so only its own cap stops
     * a body early: HTTP/1.1 gets h2o's 413 from the Content-Length alone, HTTP/2 a reset stream
     * (REFUSED_STREAM) once the cap is passed. Twice the largest route cap leaves room for the
     * routes to answer a body that is merely too large with their own 413 problem+json. */
    gw.globalconf.max_request_entity_size = 2 * gw_routes_max_body((size_t)gw.conf.max_body);
    gw.globalconf.server_name = h2o_iovec_init(H2O_STRLIT("photo-gateway"));
    h2o_hostconf_t *host =
        h2o_config_register_host(&gw.globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = gw__on_req;

    h2o_context_init(&gw.ctx, h2o_evloop_create(), &gw.globalconf);
    gw.queue = h2o_multithread_create_queue(gw.ctx.loop);
    h2o_multithread_register_receiver(gw.queue, &gw.rpc_receiver, gw_on_rpc_messages);

    if (gw__listen(gw.conf.listen, NULL, err, sizeof(err)) != 0) {
        log_error(NULL, "%s", err);
        goto out;
    }
    if (gw.conf.tls_listen != NULL && gw.conf.tls_listen[0] != '\0') {
        if (gw.conf.tls_cert_file == NULL || gw.conf.tls_key_file == NULL) {
            log_warn(NULL,
                     "TLS listener %s disabled: GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE are not set",
                     gw.conf.tls_listen);
        } else if ((ssl = gw__tls_context(err, sizeof(err))) == NULL ||
                   gw__listen(gw.conf.tls_listen, ssl, err, sizeof(err)) != 0) {
            log_error(NULL, "%s", err);
            goto out;
        }
    }

    struct sigaction sa = {.sa_handler = gw__on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    log_info(NULL, "listening on %s (h2c, HTTP/1.1)%s%s", gw.conf.listen, ssl != NULL ? " and TLS " : "",
             ssl != NULL ? gw.conf.tls_listen : "");

    while (!gw__stop)
        h2o_evloop_run(gw.ctx.loop, 100);

    /* Drain: stop accepting, let in-flight requests get their replies, then leave. All of it fits in
     * GATEWAY_SHUTDOWN_TIMEOUT (DESIGN.md: exit within 25 s of SIGTERM), so the wait for replies ends
     * a fifth of it (at most a second) early: time to write the last answers and to tear down. */
    log_info(NULL, "SIGTERM: draining %u in-flight requests", gw.in_flight);
    for (size_t i = 0; i < gw__nlisteners; i++) {
        h2o_socket_read_stop(gw__listeners[i].sock);
        h2o_socket_close(gw__listeners[i].sock);
    }
    h2o_context_request_shutdown(&gw.ctx);
    uint64_t budget = (uint64_t)gw.conf.shutdown_ms;
    uint64_t spare = budget / 5 < 1000 ? budget / 5 : 1000;
    uint64_t deadline = core_now_ms() + budget - spare;
    for (uint64_t now = core_now_ms(); gw.in_flight > 0 && now < deadline; now = core_now_ms())
        h2o_evloop_run(gw.ctx.loop, (int32_t)(deadline - now < 50 ? deadline - now : 50));
    /* Give the last responses a moment to be written out. */
    for (uint64_t flush = core_now_ms() + (spare / 2 < 200 ? spare / 2 : 200); core_now_ms() < flush;)
        h2o_evloop_run(gw.ctx.loop, 10);
    log_info(NULL, "stopped (%u requests left unanswered)", gw.in_flight);
    rc = 0;
out:
    mq_rpc_client_stop(gw.rpc);
    /* Results posted after the stop (ESTOPPED) are delivered here and freed. */
    h2o_evloop_run(gw.ctx.loop, 0);
    ratelimit_free(gw.rl_ip);
    ratelimit_free(gw.rl_user);
    token_verifier_free(gw.tokens);
    token_cache_free(gw.token_cache);
    metrics_registry_free(gw.metrics);
    if (ssl != NULL)
        SSL_CTX_free(ssl);
    return rc;
}
