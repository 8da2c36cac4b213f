/* rpc.c -- the reply and request helpers every service's RPC handlers use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "problem/problem.h"
#include "rpc/rpc.h"

#define RPC__MAX_BODY (64 * 1024)
#define RPC__MAX_DEPTH 8
#define RPC__MAX_PARAMS 16384

/* ================================================================ replies */

void rpc_json(mq_reply_t *r, int status, cJSON *body)
{
    r->status = status;
    r->body = json_print(body);
    r->body_len = strlen(r->body);
    cJSON_Delete(body);
}

void rpc_problem(mq_reply_t *r, int status, const char *type, const char *detail, cJSON *errors)
{
    free(r->body);
    free(r->content_type);
    free(r->headers_json);
    r->headers_json = NULL;
    r->status = status;
    r->content_type = xstrdup(PROBLEM_CONTENT_TYPE);
    r->body = problem_json(status, type, detail, errors);
    r->body_len = strlen(r->body);
}

void rpc_invalid(mq_reply_t *r, const char *field, const char *why)
{
    cJSON *errors = cJSON_CreateObject();
    cJSON_AddStringToObject(errors, field, why);
    char *detail = xasprintf("%s: %s", field, why);
    rpc_problem(r, 422, "invalid-field", detail, errors);
    free(detail);
}

int rpc_invalid_fields(mq_reply_t *r, cJSON **errors)
{
    if (cJSON_GetArraySize(*errors) == 0)
        return 0;
    rpc_problem(r, 422, "invalid-field", "some fields are not valid", *errors);
    *errors = NULL;
    return 1;
}

void rpc_unavailable(mq_reply_t *r, const char *type, const char *detail)
{
    rpc_problem(r, 503, type, detail, NULL);
    r->headers_json = xstrdup("{\"retry-after\":\"1\"}");
}

void rpc_db_error(mq_reply_t *r)
{
    rpc_unavailable(r, "database-unavailable", "the database is unavailable; try again");
}

void rpc_unauthorized(mq_reply_t *r, const char *type, const char *detail)
{
    rpc_problem(r, 401, type, detail, NULL);
    r->headers_json = xstrdup("{\"www-authenticate\":\"Bearer error=\\\"invalid_token\\\"\"}");
}

void rpc_no_content(mq_reply_t *r)
{
    r->status = 204;
}

void rpc_rate_limited(mq_reply_t *r, long retry_after_s, const char *detail)
{
    rpc_problem(r, 429, "rate-limited", detail, NULL);
    r->headers_json = xasprintf("{\"retry-after\":\"%ld\"}", retry_after_s < 1 ? 1 : retry_after_s);
}

void rpc_not_found(mq_reply_t *r, const char *detail)
{
    rpc_problem(r, 404, "not-found", detail, NULL);
}

/* ================================================================ method tables */

long rpc_method_find(const void *table, size_t n, size_t stride, const mq_message_t *req, mq_reply_t *r)
{
    const char *method = req->type != NULL ? req->type : "";
    for (size_t i = 0; i < n; i++) {
        const rpc_method_t *m = (const rpc_method_t *)((const char *)table + i * stride);
        if (strcmp(m->name, method) != 0)
            continue;
        if (m->needs_user && (req->user_id == NULL || req->user_id[0] == '\0')) {
            rpc_unauthorized(r, "missing-token", "this route needs an access token");
            return -1;
        }
        return (long)i;
    }
    return -1;
}

/* ================================================================ requests */

cJSON *rpc_body(const mq_message_t *req, mq_reply_t *r)
{
    if (req->content_type != NULL && req->body_len > 0) {
        const char *ct = req->content_type;
        size_t n = strlen("application/json");
        if (strncasecmp(ct, "application/json", n) != 0 || (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' ')) {
            rpc_problem(r, 415, "unsupported-media-type", "send application/json", NULL);
            return NULL;
        }
    }
    if (req->body_len == 0) {
        rpc_problem(r, 400, "malformed-body", "a JSON object is required", NULL);
        return NULL;
    }
    json_err_t err;
    cJSON *body = json_parse_object(req->body, req->body_len, RPC__MAX_BODY, RPC__MAX_DEPTH, &err);
    if (body == NULL) {
        char *detail = xasprintf("the body is not a JSON object: %s", json_strerror(err));
        rpc_problem(r, err == JSON_ETOOBIG ? 413 : 400,
                    err == JSON_ETOOBIG ? "body-too-large" : "malformed-body", detail, NULL);
        free(detail);
    }
    return body;
}

int rpc_param(const mq_message_t *req, const char *name, char *out, size_t outlen)
{
    if (req->params == NULL)
        return -1;
    cJSON *p = json_parse_object(req->params, strlen(req->params), RPC__MAX_PARAMS, 2, NULL);
    const cJSON *v = p != NULL ? cJSON_GetObjectItemCaseSensitive(p, name) : NULL;
    int rc = -1;
    if (cJSON_IsString(v) && strlen(v->valuestring) < outlen) {
        strcpy(out, v->valuestring);
        rc = 0;
    }
    cJSON_Delete(p);
    return rc;
}

static int rpc__hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int rpc_query(const mq_message_t *req, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    for (const char *p = req->query; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            size_t o = 0;
            for (size_t i = nlen + 1; i < len; i++) {
                char c = p[i];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    int h = i + 2 < len ? rpc__hex(p[i + 1]) : -1, l = h >= 0 ? rpc__hex(p[i + 2]) : -1;
                    if (l < 0)
                        return -1;
                    c = (char)(h * 16 + l);
                    i += 2;
                }
                if (c == '\0' || o + 1 >= outlen)
                    return -1;
                out[o++] = c;
            }
            out[o] = '\0';
            return 1;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

/* ================================================================ JSON */

void json_add_time(cJSON *obj, const char *name, int64_t ms)
{
    char buf[32];
    core_rfc3339(ms, buf);
    cJSON_AddStringToObject(obj, name, buf);
}

int64_t json_time_ms(const char *s)
{
    if (s == NULL)
        return -1;
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return -1;
    int64_t ms = 0;
    if (*rest == '.') {
        int digits = 0;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*rest - '0');
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (strcmp(rest, "Z") != 0)
        return -1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* ================================================================ body members */

size_t rpc_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if ((*p & 0xc0) != 0x80) /* not a continuation byte */
            n++;
    return n;
}

int rpc_fields_check(const cJSON *body, const rpc_field_t *fields, size_t n, cJSON *errors)
{
    int bad = 0;
    for (const cJSON *m = body->child; m != NULL; m = m->next) {
        for (const cJSON *p = body->child; p != m; p = p->next)
            if (strcmp(p->string, m->string) == 0) {
                if (!cJSON_HasObjectItem(errors, m->string))
                    cJSON_AddStringToObject(errors, m->string, "given twice");
                bad++;
                break;
            }
        size_t i = 0;
        while (i < n && strcmp(fields[i].name, m->string) != 0)
            i++;
        if (i == n) {
            if (!cJSON_HasObjectItem(errors, m->string))
                cJSON_AddStringToObject(errors, m->string, "unknown field");
            bad++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const rpc_field_t *f = &fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, f->name);
        const char *why = NULL;
        char buf[64];
        if (v == NULL) {
            if (f->required)
                why = "is required";
        } else if (f->any_type) {
            /* the caller checks it */
        } else if (cJSON_IsNull(v)) {
            if (!f->nullable)
                why = f->required ? "is required" : "must be a string";
        } else if (!cJSON_IsString(v)) {
            why = "must be a string";
        } else {
            size_t chars = rpc_chars(v->valuestring);
            if (chars < f->min_chars || chars > f->max_chars) {
                if (f->min_chars == f->max_chars)
                    snprintf(buf, sizeof(buf), "must be %zu characters", f->min_chars);
                else if (f->min_chars == 0)
                    snprintf(buf, sizeof(buf), "at most %zu characters", f->max_chars);
                else
                    snprintf(buf, sizeof(buf), "must be %zu to %zu characters", f->min_chars, f->max_chars);
                why = buf;
            }
        }
        if (why != NULL) {
            cJSON_AddStringToObject(errors, f->name, why);
            bad++;
        }
    }
    return bad;
}

const char *rpc_field_str(const cJSON *body, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ================================================================ calling another service */

int rpc_call_json(mq_rpc_client_t *c, const char *service, const char *method, const cJSON *body,
                  const char *request_id, unsigned timeout_ms, cJSON **out)
{
    char *text = json_print(body);
    mq_rpc_request_t rq = {
        .service = service,
        .method = method,
        .request_id = request_id,
        .body = text,
        .body_len = strlen(text),
        .timeout_ms = timeout_ms,
    };
    mq_rpc_result_t res = {0};
    mq_rpc_call_sync(c, &rq, &res);
    free(text);
    int status = -1;
    *out = NULL;
    if (res.error != 0) {
        log_warn(request_id, "%s: %s", method, mq_strerror(res.error));
    } else {
        status = res.status;
        if (res.body != NULL)
            *out = json_parse(res.body, res.body_len, 16 << 20, 32, NULL);
        if (status == 200 && !cJSON_IsObject(*out)) {
            log_warn(request_id, "%s answered 200 without a JSON object", method);
            status = -1;
        }
    }
    mq_rpc_result_clear(&res);
    return status;
}

int rpc_media_thumb(mq_rpc_client_t *c, const char *owner, const char *media_id, const char *request_id,
                    unsigned timeout_ms, char **url)
{
    *url = NULL;
    cJSON *body = cJSON_CreateObject(), *reply = NULL;
    cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "ids"), cJSON_CreateString(media_id));
    int status = rpc_call_json(c, "resize-image", "media.get", body, request_id, timeout_ms, &reply);
    cJSON_Delete(body);
    int rc = -1;
    if (status == 200) {
        const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "items"), 0);
        const char *o = rpc_field_str(m, "owner_id");
        const cJSON *thumb =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "variants"), "thumb");
        const char *u = rpc_field_str(thumb, "url");
        rc = 0;
        if (o != NULL && strcmp(o, owner) == 0 && u != NULL) {
            *url = xstrdup(u);
            rc = 1;
        }
    } else if (status >= 400 && status < 500) {
        rc = 0;
    }
    cJSON_Delete(reply);
    return rc;
}

/* ================================================================ lists */

#define RPC__DEFAULT_LIMIT 20
#define RPC__MAX_LIMIT 100

int rpc_page_args(const cursor_key_t *k, const mq_message_t *req, mq_reply_t *r, const char *list, long *limit,
                  char *after, size_t afterlen)
{
    char buf[1100];
    *limit = RPC__DEFAULT_LIMIT;
    after[0] = '\0';
    int q = rpc_query(req, "limit", buf, sizeof(buf));
    if (q != 0) {
        char *end;
        *limit = q == 1 ? strtol(buf, &end, 10) : 0;
        if (q < 0 || buf[0] == '\0' || *end != '\0' || *limit < 1 || *limit > RPC__MAX_LIMIT) {
            rpc_invalid(r, "limit", "must be an integer from 1 to 100");
            return -1;
        }
    }
    q = rpc_query(req, "cursor", buf, sizeof(buf));
    if (q == 0)
        return 0;
    cJSON *cur = q == 1 ? cursor_decode(k, buf) : NULL;
    const char *l = rpc_field_str(cur, "l"), *key = rpc_field_str(cur, "k");
    /* a cursor of another list (or of another service sharing the secret) is refused too */
    int ok = l != NULL && key != NULL && strcmp(l, list) == 0 && key[0] != '\0' && strlen(key) < afterlen;
    if (ok)
        strcpy(after, key);
    else
        rpc_problem(r, 400, "bad-cursor", "the cursor is not one this list gave", NULL);
    cJSON_Delete(cur);
    return ok ? 0 : -1;
}

void rpc_page_next(const cursor_key_t *k, cJSON *o, const char *list, const char *key)
{
    if (key == NULL) {
        cJSON_AddNullToObject(o, "next_cursor");
        return;
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "l", list);
    cJSON_AddStringToObject(c, "k", key);
    char *enc = cursor_encode(k, c);
    cJSON_AddStringToObject(o, "next_cursor", enc);
    free(enc);
    cJSON_Delete(c);
}
