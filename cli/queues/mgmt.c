/* mgmt.c -- the RabbitMQ management HTTP API over libcurl: one request at a time, JSON answers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/core.h"
#include "queues.h"

/* A queue listing of a large broker is a few MiB; anything beyond this is not an answer of ours. */
#define MGMT_ANSWER_MAX (256u * 1024 * 1024)

struct mgmt {
    CURL *curl;
    char *base; /* without a trailing '/' */
    char *user, *password;
    char *vhost;
    long timeout_ms;
};

typedef struct {
    char *buf;
    size_t len, cap;
    int too_large;
} mgmt__answer_t;

static void mgmt__err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void mgmt__err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

mgmt_t *mgmt_new(const char *base_url, const char *user, const char *password, const char *vhost,
                 long timeout_ms, char *err, size_t errlen)
{
    if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0) {
        mgmt__err(err, errlen, "QUEUES_API_URL: not an http:// or https:// URL: %s", base_url);
        return NULL;
    }
    CURL *curl = curl_easy_init();
    CORE_ASSERT(curl != NULL);
    mgmt_t *m = xcalloc(1, sizeof(*m));
    m->curl = curl;
    m->base = xstrdup(base_url);
    for (size_t n = strlen(m->base); n > 0 && m->base[n - 1] == '/'; n--)
        m->base[n - 1] = '\0';
    m->user = xstrdup(user);
    m->password = xstrdup(password);
    m->vhost = xstrdup(vhost);
    m->timeout_ms = timeout_ms;
    return m;
}

void mgmt_free(mgmt_t *m)
{
    if (m == NULL)
        return;
    curl_easy_cleanup(m->curl);
    free(m->base);
    free(m->user);
    free(m->password);
    free(m->vhost);
    free(m);
}

char *mgmt_path(mgmt_t *m, const char *collection, const char *name, const char *tail)
{
    char *v = curl_easy_escape(m->curl, m->vhost, (int)strlen(m->vhost));
    char *n = name != NULL ? curl_easy_escape(m->curl, name, (int)strlen(name)) : NULL;
    CORE_ASSERT(v != NULL && (name == NULL || n != NULL));
    char *path = xasprintf("/%s/%s%s%s%s%s", collection, v, n ? "/" : "", n ? n : "", tail ? "/" : "",
                           tail ? tail : "");
    curl_free(n);
    curl_free(v);
    return path;
}

static size_t mgmt__write(char *data, size_t size, size_t nmemb, void *ud)
{
    mgmt__answer_t *a = ud;
    size_t n = size * nmemb;
    if (n > MGMT_ANSWER_MAX - a->len) {
        a->too_large = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (a->len + n + 1 > a->cap) {
        a->cap = (a->len + n + 1) * 2;
        a->buf = xrealloc(a->buf, a->cap);
    }
    memcpy(a->buf + a->len, data, n);
    a->len += n;
    a->buf[a->len] = '\0';
    return n;
}

/* The reason RabbitMQ gives in an error answer ({"error": ..., "reason": ...}), or "". */
static const char *mgmt__reason(const cJSON *answer)
{
    const char *r = mgmt_string(answer, "reason");
    if (r == NULL)
        r = mgmt_string(answer, "error");
    return r != NULL ? r : "";
}

int mgmt_request(mgmt_t *m, const char *path, const cJSON *body, cJSON **out, char *err, size_t errlen)
{
    char *url = xasprintf("%s%s", m->base, path);
    char *payload = NULL;
    char curl_err[CURL_ERROR_SIZE] = "";
    mgmt__answer_t a = {0};
    struct curl_slist *headers = NULL;
    cJSON *answer = NULL;
    long status = 0;
    int rc = MGMT_OK;
    *out = NULL;

    curl_easy_reset(m->curl);
    curl_easy_setopt(m->curl, CURLOPT_URL, url);
    curl_easy_setopt(m->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(m->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(m->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(m->curl, CURLOPT_USERNAME, m->user);
    curl_easy_setopt(m->curl, CURLOPT_PASSWORD, m->password);
    curl_easy_setopt(m->curl, CURLOPT_TIMEOUT_MS, m->timeout_ms);
    curl_easy_setopt(m->curl, CURLOPT_CONNECTTIMEOUT_MS, m->timeout_ms);
    curl_easy_setopt(m->curl, CURLOPT_USERAGENT, "photo-queues");
    curl_easy_setopt(m->curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(m->curl, CURLOPT_WRITEFUNCTION, mgmt__write);
    curl_easy_setopt(m->curl, CURLOPT_WRITEDATA, &a);
    headers = curl_slist_append(headers, "accept: application/json");
    if (body != NULL) {
        payload = cJSON_PrintUnformatted(body);
        CORE_ASSERT(payload != NULL);
        headers = curl_slist_append(headers, "content-type: application/json");
        curl_easy_setopt(m->curl, CURLOPT_POSTFIELDS, payload);
    }
    curl_easy_setopt(m->curl, CURLOPT_HTTPHEADER, headers);

    CURLcode cc = curl_easy_perform(m->curl);
    if (cc != CURLE_OK) {
        if (a.too_large)
            mgmt__err(err, errlen, "QUEUES_API_URL: %s answered more than %u MiB", url,
                      MGMT_ANSWER_MAX >> 20);
        else
            mgmt__err(err, errlen, "QUEUES_API_URL: cannot reach %s: %s", url,
                      curl_err[0] ? curl_err : curl_easy_strerror(cc));
        rc = a.too_large ? MGMT_EANSWER : MGMT_EREACH;
        goto out;
    }
    curl_easy_getinfo(m->curl, CURLINFO_RESPONSE_CODE, &status);
    /* cJSON's nesting limit (1000) bounds the recursion; an answer that is not JSON is NULL. */
    if (a.len > 0)
        answer = cJSON_ParseWithLength(a.buf, a.len);
    if (status == 401) {
        mgmt__err(err, errlen, "QUEUES_API_USER: %s refused user %s and its password (401)", m->base,
                  m->user);
        rc = MGMT_EAUTH;
    } else if (status == 404) {
        mgmt__err(err, errlen, "%s: not found (404) %s", url, mgmt__reason(answer));
        rc = MGMT_ENOTFOUND;
    } else if (status < 200 || status > 299) {
        mgmt__err(err, errlen, "management API: %s %s: HTTP %ld %s", body != NULL ? "POST" : "GET", url,
                  status, mgmt__reason(answer));
        rc = MGMT_EHTTP;
    } else if (a.len > 0 && answer == NULL) {
        mgmt__err(err, errlen, "management API: %s answered %zu bytes that are not JSON", url, a.len);
        rc = MGMT_EANSWER;
    } else {
        *out = answer;
        answer = NULL;
    }
out:
    cJSON_Delete(answer);
    curl_slist_free_all(headers);
    free(payload);
    free(a.buf);
    free(url);
    return rc;
}

int mgmt_list(mgmt_t *m, const char *path, const cJSON *body, cJSON **out, char *err, size_t errlen)
{
    int rc = mgmt_request(m, path, body, out, err, errlen);
    if (rc == MGMT_OK && !cJSON_IsArray(*out)) {
        mgmt__err(err, errlen, "management API: the answer to %s %s is not a list", body ? "POST" : "GET",
                  path);
        cJSON_Delete(*out);
        *out = NULL;
        rc = MGMT_EANSWER;
    }
    return rc;
}

int mgmt_queue(mgmt_t *m, const char *queue, cJSON **out, char *err, size_t errlen)
{
    char *path = mgmt_path(m, "queues", queue, NULL);
    int rc = mgmt_request(m, path, NULL, out, err, errlen);
    if (rc == MGMT_ENOTFOUND)
        mgmt__err(err, errlen, "no queue %s in vhost %s", queue, m->vhost);
    else if (rc == MGMT_OK && !cJSON_IsObject(*out)) {
        mgmt__err(err, errlen, "management API: the answer about queue %s is not an object", queue);
        cJSON_Delete(*out);
        *out = NULL;
        rc = MGMT_EANSWER;
    }
    free(path);
    return rc;
}

double mgmt_number(const cJSON *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    const cJSON *v = obj;
    for (const char *name = va_arg(ap, const char *); name != NULL; name = va_arg(ap, const char *))
        v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, name) : NULL;
    va_end(ap);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

const char *mgmt_string(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
