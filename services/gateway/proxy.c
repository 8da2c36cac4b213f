/* proxy.c -- /v1 routes: rate limits, token checks, body caps, then one RPC and its reply 1:1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "gateway.h"
#include "json/json.h"
#include "log/log.h"
#include "problem/problem.h"

/* ================================================================ RPC results to the loop thread */

typedef struct {
    h2o_multithread_message_t super;
    gw_result_fn fn;
    void *ud;
    mq_rpc_result_t *res;
} gw__result_msg_t;

typedef struct {
    gw_result_fn fn;
    void *ud;
} gw__trampoline_t;

/* On the RPC client thread: hand the result to the loop thread. */
static void gw__on_result(void *ud, mq_rpc_result_t *res)
{
    gw__trampoline_t *t = ud;
    gw__result_msg_t *msg = xcalloc(1, sizeof(*msg));
    msg->fn = t->fn;
    msg->ud = t->ud;
    msg->res = res;
    free(t);
    h2o_multithread_send_message(&gw.rpc_receiver, &msg->super);
}

void gw_on_rpc_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        gw__result_msg_t *msg = H2O_STRUCT_FROM_MEMBER(gw__result_msg_t, super.link, messages->next);
        h2o_linklist_unlink(&msg->super.link);
        msg->fn(msg->ud, msg->res);
        free(msg);
    }
}

void gw_rpc(const mq_rpc_request_t *req, gw_result_fn fn, void *ud)
{
    gw__trampoline_t *t = xmalloc(sizeof(*t));
    t->fn = fn;
    t->ud = ud;
    mq_rpc_call(gw.rpc, req, gw__on_result, t);
}

/* ================================================================ pending API calls */

/* Lives from the RPC call to its result; req becomes NULL if the client went away first. */
typedef struct {
    h2o_req_t *req;
    void **slot; /* in req's pool; points back here until the reply or the request ends */
    const gw_route_t *route;
    uint64_t t0_us;
} gw__pending_t;

static void gw__on_req_dispose(void *p)
{
    gw__pending_t **slot = p;
    if (*slot != NULL)
        (*slot)->req = NULL;
}

/* Reply headers a service may set on the HTTP response. */
static const char *const gw__reply_headers[] = {
    "location", "retry-after", "cache-control", "etag", "link", "www-authenticate", NULL};

static void gw__copy_reply_headers(h2o_req_t *req, const char *json)
{
    cJSON *h = json_parse_object(json, strlen(json), 8192, 2, NULL);
    if (h == NULL)
        return;
    for (const char *const *name = gw__reply_headers; *name != NULL; name++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, *name);
        if (cJSON_IsString(v) && strpbrk(v->valuestring, "\r\n") == NULL) {
            const char *val = h2o_strdup(&req->pool, v->valuestring, SIZE_MAX).base;
            h2o_add_header_by_str(&req->pool, &req->res.headers, *name, strlen(*name), 1, NULL, val,
                                  strlen(val));
        }
    }
    cJSON_Delete(h);
}

static void gw__on_api_result(void *ud, mq_rpc_result_t *res)
{
    gw__pending_t *p = ud;
    gw.in_flight--;
    h2o_req_t *req = p->req;
    if (req != NULL) {
        *p->slot = NULL;
        const char *label = p->route->pattern;
        switch (res->error) {
        case 0:
            if (res->headers_json != NULL)
                gw__copy_reply_headers(req, res->headers_json);
            gw_send(req, label, p->t0_us, res->status, res->content_type ? res->content_type : GW_JSON,
                    res->body, res->body_len);
            break;
        case MQ_ETIMEOUT:
            gw_send_problem(req, label, p->t0_us, 504, "upstream-timeout",
                            "the service did not answer in time");
            break;
        case MQ_ENOROUTE: {
            char detail[96];
            snprintf(detail, sizeof(detail), "service %s is not running", p->route->service);
            gw_send_problem(req, label, p->t0_us, 503, "service-unavailable", detail);
            break;
        }
        default:
            gw_send_problem(req, label, p->t0_us, 503, "broker-unavailable",
                            "the message broker is unreachable");
            break;
        }
    }
    mq_rpc_result_clear(res);
    free(res);
    free(p);
}

/* ================================================================ checks */

/* The client address: the peer, or with N trusted proxies the Nth address from the right of
 * X-Forwarded-For (what our load balancer appended). */
static void gw__client_addr(h2o_req_t *req, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    out[0] = '\0';
    if (sl > 0 && ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)outlen);
    else if (sl > 0 && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)outlen);
    if (gw.conf.trusted_proxies <= 0)
        return;
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, -1);
    if (at < 0)
        return;
    h2o_iovec_t v = req->headers.entries[at].value;
    long skip = gw.conf.trusted_proxies - 1;
    size_t end = v.len;
    for (;;) {
        size_t start = end;
        while (start > 0 && v.base[start - 1] != ',')
            start--;
        if (skip-- == 0 || start == 0) {
            while (start < end && v.base[start] == ' ')
                start++;
            size_t n = end - start;
            if (n > 0 && n < outlen) {
                memcpy(out, v.base + start, n);
                out[n] = '\0';
                while (n > 0 && out[n - 1] == ' ')
                    out[--n] = '\0';
            }
            return;
        }
        end = start - 1;
    }
}

static int gw__rate_limited(h2o_req_t *req, const char *label, uint64_t t0_us, ratelimit_t *rl,
                            const char *key, const char *scope)
{
    uint64_t wait_ms = ratelimit_take(rl, key, core_now_ms());
    if (wait_ms == 0)
        return 0;
    char secs[24], detail[96];
    snprintf(secs, sizeof(secs), "%llu", (unsigned long long)((wait_ms + 999) / 1000));
    snprintf(detail, sizeof(detail), "too many requests from this %s; retry in %s s", scope, secs);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                   h2o_strdup(&req->pool, secs, SIZE_MAX).base, strlen(secs));
    const char *labels[] = {scope};
    metrics_counter_add(gw.m_rate_limited, labels, 1);
    gw_send_problem(req, label, t0_us, 429, "rate-limited", detail);
    return 1;
}

/* Returns 0 and fills sub, 1 when there is no token, or -1 after answering 401. */
static int gw__authenticate(h2o_req_t *req, const char *label, uint64_t t0_us, char *sub)
{
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (at < 0)
        return 1;
    h2o_iovec_t v = req->headers.entries[at].value;
    const char *detail = "Authorization must be \"Bearer <access token>\"";
    if (v.len > 7 && strncasecmp(v.base, "Bearer ", 7) == 0) {
        const char *tok = v.base + 7;
        size_t len = v.len - 7;
        while (len > 0 && *tok == ' ')
            tok++, len--;
        token_err_t e = token_verify_cached(gw.tokens, gw.token_cache, tok, len, core_wall_ms() / 1000, sub);
        if (e == TOKEN_OK)
            return 0;
        detail = token_strerror(e);
    }
    static const char challenge[] = "Bearer error=\"invalid_token\"";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, challenge,
                   sizeof(challenge) - 1);
    gw_send_problem(req, label, t0_us, 401, "invalid-token", detail);
    return -1;
}

static char *gw__params_json(const gw_match_t *m)
{
    if (m->nparams == 0)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < m->nparams; i++)
        cJSON_AddStringToObject(o, m->names[i], m->values[i]);
    char *s = json_print(o);
    cJSON_Delete(o);
    return s;
}

/* ================================================================ the handler */

int gw_handle_api(h2o_req_t *req, const char *request_id, uint64_t t0_us)
{
    gw_match_t m = {0};
    h2o_iovec_t allow = {0};
    const char *path = req->path_normalized.base;
    size_t plen = req->path_normalized.len;
    int mr = gw_routes_match(&req->pool, req->method.base, req->method.len, path, plen, &m, &allow);
    if (mr == GW_MATCH_NOT_FOUND) {
        gw_send_problem(req, "unmatched", t0_us, 404, "not-found", "no such route");
        return 0;
    }
    if (mr == GW_MATCH_BAD_METHOD) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow.base, allow.len);
        gw_send_problem(req, "unmatched", t0_us, 405, "method-not-allowed",
                        "this route does not accept that method");
        return 0;
    }
    const gw_route_t *route = m.route;
    const char *label = route->pattern;
    if (mr == GW_MATCH_BAD_PARAM) {
        gw_send_problem(req, label, t0_us, 400, "bad-path", "malformed path parameter");
        return 0;
    }

    char addr[64];
    gw__client_addr(req, addr, sizeof(addr));
    if (gw__rate_limited(req, label, t0_us, gw.rl_ip, addr, "address"))
        return 0;

    char sub[TOKEN_SUB_MAX + 1] = "";
    int authed = 0;
    if (route->auth != GW_AUTH_NONE) {
        int a = gw__authenticate(req, label, t0_us, sub);
        if (a < 0)
            return 0;
        if (a == 1 && route->auth == GW_AUTH_REQUIRED) {
            static const char challenge[] = "Bearer";
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, challenge,
                           sizeof(challenge) - 1);
            gw_send_problem(req, label, t0_us, 401, "missing-token", "this route needs an access token");
            return 0;
        }
        authed = a == 0;
        if (authed && gw__rate_limited(req, label, t0_us, gw.rl_user, sub, "user"))
            return 0;
    }

    size_t max_body = route->max_body ? route->max_body : (size_t)gw.conf.max_body;
    if (req->entity.len > max_body) {
        char detail[96];
        snprintf(detail, sizeof(detail), "request body over %zu bytes", max_body);
        gw_send_problem(req, label, t0_us, 413, "body-too-large", detail);
        return 0;
    }
    if (!mq_rpc_client_connected(gw.rpc)) {
        gw_send_problem(req, label, t0_us, 503, "broker-unavailable", "the message broker is unreachable");
        return 0;
    }

    char *params = gw__params_json(&m);
    char *query = NULL, *ctype = NULL;
    if (req->query_at != SIZE_MAX)
        query = xstrndup(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
    ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct >= 0)
        ctype = xstrndup(req->headers.entries[ct].value.base, req->headers.entries[ct].value.len);
    mq_rpc_request_t rr = {
        .service = route->service,
        .method = route->rpc,
        .request_id = request_id,
        .user_id = authed ? sub : NULL,
        .params = params,
        .query = query,
        .client_addr = addr,
        .content_type = ctype,
        .body = req->entity.base,
        .body_len = req->entity.len,
        .timeout_ms = route->timeout_ms ? route->timeout_ms : (unsigned)gw.conf.rpc_timeout_ms,
    };
    gw__pending_t *p = xcalloc(1, sizeof(*p));
    p->req = req;
    p->route = route;
    p->t0_us = t0_us;
    p->slot = h2o_mem_alloc_shared(&req->pool, sizeof(*p->slot), gw__on_req_dispose);
    *p->slot = p;
    gw.in_flight++;
    gw_rpc(&rr, gw__on_api_result, p);
    free(params);
    free(query);
    free(ctype);
    return 0;
}
