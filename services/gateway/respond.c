/* respond.c -- every gateway response: x-request-id, problem+json errors, request metrics. */
#include <string.h>

#include "core/core.h"
#include "gateway.h"
#include "log/log.h"
#include "problem/problem.h"

const char *gw_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    }
    return problem_title(status);
}

static int gw__rid_ok(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

const char *gw_request_id_init(h2o_req_t *req)
{
    char *id;
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (at >= 0 && gw__rid_ok(req->headers.entries[at].value.base, req->headers.entries[at].value.len)) {
        id = h2o_mem_alloc_pool(&req->pool, req->headers.entries[at].value.len + 1);
        memcpy(id, req->headers.entries[at].value.base, req->headers.entries[at].value.len);
        id[req->headers.entries[at].value.len] = '\0';
    } else {
        id = h2o_mem_alloc_pool(&req->pool, CORE_UUID_BUFSZ);
        core_uuid(id);
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, id, strlen(id));
    return id;
}

void gw_record(const char *route_label, const char *method, size_t mlen, int status, uint64_t t0_us)
{
    char m[16], st[8];
    snprintf(m, sizeof(m), "%.*s", (int)(mlen < sizeof(m) - 1 ? mlen : sizeof(m) - 1), method);
    snprintf(st, sizeof(st), "%d", status);
    const char *labels[] = {route_label, m, st};
    metrics_counter_add(gw.m_requests, labels, 1);
    const char *hl[] = {route_label};
    metrics_histogram_observe(gw.m_latency, hl, (double)(core_now_us() - t0_us) / 1e6);
}

/* 5xx responses are logged (with their request id) so operators can find them; the rest is
 * counted in /metrics only, to keep the log readable at thousands of requests a second. */
static void gw__log_failure(h2o_req_t *req, const char *route_label, int status, uint64_t t0_us)
{
    char rid[72] = "";
    ssize_t at = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    if (at >= 0)
        snprintf(rid, sizeof(rid), "%.*s", (int)req->res.headers.entries[at].value.len,
                 req->res.headers.entries[at].value.base);
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "route", route_label);
    cJSON_AddNumberToObject(fields, "status", status);
    cJSON_AddNumberToObject(fields, "duration_ms", (double)(core_now_us() - t0_us) / 1000.0);
    log_write(LOG_WARN, rid[0] ? rid : NULL, fields, "%.*s %.*s answered %d", (int)req->method.len,
              req->method.base, (int)req->path.len, req->path.base, status);
    cJSON_Delete(fields);
}

void gw_send(h2o_req_t *req, const char *route_label, uint64_t t0_us, int status, const char *content_type,
             const char *body, size_t len)
{
    if (status >= 500)
        gw__log_failure(req, route_label, status, t0_us);
    req->res.status = status;
    req->res.reason = gw_reason(status);
    if (content_type != NULL && status != 204)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    gw_record(route_label, req->method.base, req->method.len, status, t0_us);
    if (status == 204 || status == 304)
        len = 0;
    h2o_send_inline(req, body, len);
}

void gw_send_problem(h2o_req_t *req, const char *route_label, uint64_t t0_us, int status, const char *type,
                     const char *detail)
{
    char *body = problem_json(status, type, detail, NULL);
    gw_send(req, route_label, t0_us, status, PROBLEM_CONTENT_TYPE, body, strlen(body));
    free(body);
}
