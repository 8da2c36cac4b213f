/* ops.c -- operational routes: /healthz, /readyz (broker and service pings), /metrics, /media/. */
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "gateway.h"
#include "objstore/objstore.h"
#include "json/json.h"

/* ================================================================ /healthz */

/* Operational routes answer GET and HEAD; anything else is 405. Returns 1 if it answered. */
static int gw__ops_method_refused(h2o_req_t *req, const char *label, uint64_t t0_us)
{
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
        h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        return 0;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD"));
    gw_send_problem(req, label, t0_us, 405, "method-not-allowed", "this route only answers GET and HEAD");
    return 1;
}

int gw_handle_healthz(h2o_req_t *req, uint64_t t0_us)
{
    static const char body[] = "{\"status\":\"ok\"}";
    if (gw__ops_method_refused(req, "/healthz", t0_us))
        return 0;
    gw_send(req, "/healthz", t0_us, 200, GW_JSON, body, sizeof(body) - 1);
    return 0;
}

/* ================================================================ /readyz */

typedef struct gw__ready gw__ready_t;

typedef struct {
    gw__ready_t *ready;
    const char *service;
    int up;
} gw__ping_t;

struct gw__ready {
    h2o_req_t *req; /* NULL once the client went away */
    void **slot;
    uint64_t t0_us;
    size_t nservices, waiting;
    gw__ping_t pings[];
};

static void gw__ready_dispose(void *p)
{
    gw__ready_t **slot = p;
    if (*slot != NULL)
        (*slot)->req = NULL;
}

static void gw__ready_finish(gw__ready_t *r)
{
    if (r->req != NULL) {
        *r->slot = NULL;
        int broker = mq_rpc_client_connected(gw.rpc), ready = broker;
        cJSON *root = cJSON_CreateObject(), *services = cJSON_CreateObject();
        for (size_t i = 0; i < r->nservices; i++) {
            cJSON_AddStringToObject(services, r->pings[i].service, r->pings[i].up ? "up" : "down");
            ready &= r->pings[i].up;
        }
        cJSON_AddStringToObject(root, "status", ready ? "ready" : "not ready");
        cJSON_AddStringToObject(root, "broker", broker ? "up" : "down");
        cJSON_AddItemToObject(root, "services", services);
        char *body = json_print(root);
        gw_send(r->req, "/readyz", r->t0_us, ready ? 200 : 503, GW_JSON, body, strlen(body));
        free(body);
        cJSON_Delete(root);
    }
    free(r);
}

static void gw__on_ping(void *ud, mq_rpc_result_t *res)
{
    gw__ping_t *p = ud;
    p->up = res->error == 0 && res->status == 200;
    mq_rpc_result_clear(res);
    free(res);
    gw.in_flight--;
    if (--p->ready->waiting == 0)
        gw__ready_finish(p->ready);
}

int gw_handle_readyz(h2o_req_t *req, const char *request_id, uint64_t t0_us)
{
    if (gw__ops_method_refused(req, "/readyz", t0_us))
        return 0;
    const char *const *services = gw_routes_services();
    size_t n = 0;
    while (services[n] != NULL)
        n++;
    gw__ready_t *r = xcalloc(1, sizeof(*r) + n * sizeof(gw__ping_t));
    r->req = req;
    r->t0_us = t0_us;
    r->nservices = n;
    r->slot = h2o_mem_alloc_shared(&req->pool, sizeof(*r->slot), gw__ready_dispose);
    *r->slot = r;
    if (n == 0 || !mq_rpc_client_connected(gw.rpc)) {
        gw__ready_finish(r); /* every service counts as down while the broker is */
        return 0;
    }
    r->waiting = n;
    for (size_t i = 0; i < n; i++) {
        char method[96];
        snprintf(method, sizeof(method), "%s.ping", services[i]);
        r->pings[i] = (gw__ping_t){.ready = r, .service = services[i]};
        mq_rpc_request_t rr = {
            .service = services[i],
            .method = method,
            .request_id = request_id,
            .timeout_ms = (unsigned)gw.conf.ready_timeout_ms,
        };
        gw.in_flight++;
        gw_rpc(&rr, gw__on_ping, &r->pings[i]);
    }
    return 0;
}

/* ================================================================ /metrics */

int gw_handle_metrics(h2o_req_t *req, uint64_t t0_us)
{
    if (gw__ops_method_refused(req, "/metrics", t0_us))
        return 0;
    metrics_gauge_set(gw.m_rpc_in_flight, NULL, (double)mq_rpc_client_in_flight(gw.rpc));
    size_t len;
    char *body = metrics_render(gw.metrics, &len);
    gw_send(req, "/metrics", t0_us, 200, METRICS_CONTENT_TYPE, body, len);
    free(body);
    return 0;
}

/* ================================================================ /media/ */

static const char *gw__mime(const char *key, size_t len)
{
    static const struct {
        const char *ext, *mime;
    } types[] = {{".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"}, {".webp", "image/webp"},
                 {".png", "image/png"},  {".heic", "image/heic"}, {".avif", "image/avif"}};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(types); i++) {
        size_t el = strlen(types[i].ext);
        if (len > el && strncasecmp(key + len - el, types[i].ext, el) == 0)
            return types[i].mime;
    }
    return "application/octet-stream";
}

/* HEAD of a stored object: its headers and length, no body. */
static int gw__media_head(h2o_req_t *req, const char *file, const char *mime)
{
    static h2o_generator_t generator = {NULL, NULL};
    struct stat st;
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode))
        return -1;
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = (size_t)st.st_size;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, mime, strlen(mime));
    /* The validators h2o's file sender puts on a GET, in the same format. */
    char *etag = h2o_mem_alloc_pool(&req->pool, 40),
         *lm = h2o_mem_alloc_pool(&req->pool, H2O_TIMESTR_RFC1123_LEN + 1);
    int n = snprintf(etag, 40, "\"%08x-%zx\"", (unsigned)st.st_mtime, (size_t)st.st_size);
    struct tm gmt;
    gmtime_r(&st.st_mtime, &gmt);
    h2o_time2str_rfc1123(lm, &gmt);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag, (size_t)n);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LAST_MODIFIED, NULL, lm, H2O_TIMESTR_RFC1123_LEN);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCEPT_RANGES, NULL, H2O_STRLIT("bytes"));
    h2o_start_response(req, &generator);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    return 0;
}

int gw_handle_media(h2o_req_t *req, uint64_t t0_us)
{
    static const char prefix[] = "/media/";
    if (gw__ops_method_refused(req, "/media", t0_us))
        return 0;
    /* Check the raw path too: the normalised one has had "../" resolved already. */
    const char *key = req->path_normalized.base + sizeof(prefix) - 1;
    size_t klen = req->path_normalized.len - (sizeof(prefix) - 1);
    size_t rawlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    if (!objstore_key_valid(key, klen) || memmem(req->path.base, rawlen, "..", 2) != NULL ||
        memchr(req->path.base, '%', rawlen) != NULL) {
        gw_send_problem(req, "/media", t0_us, 404, "not-found", "no such media object");
        return 0;
    }
    char *file = xasprintf("%s/%.*s", gw.conf.media_dir, (int)klen, key);
    const char *mime = gw__mime(key, klen);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("public, max-age=31536000, immutable"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL,
                          H2O_STRLIT("nosniff"));
    int rc;
    if (req->method.len == 4) /* HEAD: h2o 2.2's h2o_file_send would send the body anyway */
        rc = gw__media_head(req, file, mime);
    else
        rc = h2o_file_send(req, 200, "OK", file, h2o_iovec_init(mime, strlen(mime)), 0);
    free(file);
    if (rc != 0) {
        /* Drop the caching headers meant for the file. */
        req->res.headers = (h2o_headers_t){NULL};
        gw_request_id_init(req);
        gw_send_problem(req, "/media", t0_us, 404, "not-found", "no such media object");
        return 0;
    }
    gw_record("/media", req->method.base, req->method.len, 200, t0_us);
    return 0;
}
