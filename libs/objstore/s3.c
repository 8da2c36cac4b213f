/* s3.c -- the object store in an S3 bucket: path-style requests signed by libcurl (AWS SigV4).
 *
 * What libcurl 7.88 does and does not do for us (lib/http_aws_sigv4.c of 7.88.1):
 * - It signs every header of CURLOPT_HTTPHEADER, with lower-cased names, plus host and
 *   x-amz-date. So only headers that go out with a value may be listed: an "Expect:" (to
 *   suppress Expect: 100-continue) or an empty "content-type:" would be signed but not sent,
 *   and the server would answer SignatureDoesNotMatch.
 * - It sends no x-amz-content-sha256 (S3 requires one; curl 8.x adds UNSIGNED-PAYLOAD), and
 *   without it, it signs the hash of CURLOPT_POSTFIELDS, which an upload does not use. When
 *   the header is there, it signs its value as the payload hash: we send the real SHA-256.
 * - It does not canonicalise the query string: we send none. Keys need no escaping either
 *   (objstore.c allows [A-Za-z0-9._-] segments only).
 */
#include <curl/curl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "objstore/objstore_internal.h"

#define S3__DEFAULT_TIMEOUT_MS 30000L
#define S3__POOL_MAX 8        /* idle easy handles kept, each with its open connections */
#define S3__SIGV4_PART_MAX 64 /* curl's limit on each part of "aws:amz:<region>:s3" */
#define S3__EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
    struct objstore base;
    char *bucket_url; /* "<endpoint>/<bucket>" */
    char *sigv4;      /* "aws:amz:<region>:s3" */
    char *access_key, *secret_key;
    char *token_header; /* "x-amz-security-token: <token>", or NULL */
    long timeout_ms;

    pthread_mutex_t lock; /* guards idle and nidle */
    CURL *idle[S3__POOL_MAX];
    int nidle;
} s3_t;

/* A response body, kept NUL-terminated for the error XML. */
typedef struct {
    char *p;
    size_t len, cap;
} s3__body_t;

/* What is left to send of a PUT's payload. */
typedef struct {
    const char *p;
    size_t left;
} s3__upload_t;

/* The one piece of process state: curl_global_init must run once, before any handle. */
static pthread_once_t s3__global_once = PTHREAD_ONCE_INIT;
static CURLcode s3__global_rc;

static void s3__global_init(void)
{
    s3__global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ================================================================ handles */

/* An easy handle with no options set: an idle one (its connections may be reused) or a new one. */
static CURL *s3__handle_take(s3_t *s)
{
    CURL *c = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->nidle > 0)
        c = s->idle[--s->nidle];
    pthread_mutex_unlock(&s->lock);
    if (c == NULL)
        c = curl_easy_init();
    CORE_ASSERT(c != NULL); /* out of memory */
    return c;
}

/* Back to the pool, options cleared (they point into the caller's stack). */
static void s3__handle_give(s3_t *s, CURL *c)
{
    curl_easy_reset(c);
    pthread_mutex_lock(&s->lock);
    if (s->nidle < S3__POOL_MAX) {
        s->idle[s->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (c != NULL)
        curl_easy_cleanup(c);
}

/* ================================================================ one request */

static size_t s3__on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    s3__body_t *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static size_t s3__on_upload(char *buf, size_t size, size_t nitems, void *ud)
{
    s3__upload_t *u = ud;
    size_t n = size * nitems < u->left ? size * nitems : u->left;
    memcpy(buf, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

static struct curl_slist *s3__header(struct curl_slist *list, const char *header)
{
    struct curl_slist *l = curl_slist_append(list, header); /* copies header */
    CORE_ASSERT(l != NULL);                                 /* out of memory */
    return l;
}

static void s3__sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(len > 0 ? data : (const void *)"", len, md);
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* One signed request. Returns OBJSTORE_OK once an answer came (*status: its HTTP status, body
 * in *resp), or OBJSTORE_EIO with err when none did (connect, timeout, TLS). A PUT sends
 * payload with content_type; GET and DELETE send nothing. */
static int s3__request(s3_t *s, const char *method, const char *key, const void *payload, size_t len,
                       const char *content_type, long *status, s3__body_t *resp, char *err, size_t errlen)
{
    int put = strcmp(method, "PUT") == 0;
    char sha[65] = S3__EMPTY_SHA256;
    if (put)
        s3__sha256_hex(payload, len, sha);

    struct curl_slist *headers = NULL;
    char *h = xasprintf("x-amz-content-sha256: %s", sha);
    headers = s3__header(headers, h);
    free(h);
    if (put) {
        h = xasprintf("content-type: %s", content_type);
        headers = s3__header(headers, h);
        free(h);
    }
    if (s->token_header != NULL)
        headers = s3__header(headers, s->token_header);

    char *url = xasprintf("%s/%s", s->bucket_url, key);
    char curl_err[CURL_ERROR_SIZE] = "";
    s3__upload_t upload = {.p = payload, .left = len};
    CURL *c = s3__handle_take(s);

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
    /* The same as CURLOPT_USERPWD "access:secret", without splitting at a ':'. */
    curl_easy_setopt(c, CURLOPT_USERNAME, s->access_key);
    curl_easy_setopt(c, CURLOPT_PASSWORD, s->secret_key);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s3__on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    if (put) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, s3__on_upload);
        curl_easy_setopt(c, CURLOPT_READDATA, &upload);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "DELETE") == 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
    }

    int rc = OBJSTORE_OK;
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK)
        rc = objstore__fail(OBJSTORE_EIO, err, errlen, "s3 %s %s: %s", method, key,
                            curl_err[0] != '\0' ? curl_err : curl_easy_strerror(cc));
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);

    s3__handle_give(s, c);
    curl_slist_free_all(headers);
    free(url);
    return rc;
}

/* The <Code> of an S3 error document ("NoSuchKey"), or "" when there is none; letters, digits
 * and dots only, as the text comes from the server. */
static void s3__error_code(const s3__body_t *resp, char *code, size_t size)
{
    code[0] = '\0';
    const char *p = resp->p != NULL ? strstr(resp->p, "<Code>") : NULL;
    if (p == NULL)
        return;
    p += strlen("<Code>");
    size_t n = 0;
    while (n + 1 < size &&
           ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.'))
        code[n++] = *p++;
    code[n] = '\0';
}

/* A 404 that means "no such key" (NoSuchKey, or no error document at all), not "no such bucket". */
static int s3__no_such_key(long status, const char *code)
{
    return status == 404 && (code[0] == '\0' || strcmp(code, "NoSuchKey") == 0);
}

static int s3__status_fail(int rc, const char *method, const char *key, long status, const char *code,
                           char *err, size_t errlen)
{
    return objstore__fail(rc, err, errlen, "s3 %s %s: %ld%s%s", method, key, status,
                          code[0] != '\0' ? " " : "", code);
}

/* ================================================================ put, get, delete */

static int s3__put(objstore_t *base, const char *key, const void *data, size_t len, const char *content_type,
                   char *err, size_t errlen)
{
    s3_t *s = (s3_t *)base;
    if (content_type == NULL || content_type[0] == '\0')
        content_type = "application/octet-stream"; /* an empty header would be signed, not sent */
    for (const char *p = content_type; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return objstore__fail(OBJSTORE_EIO, err, errlen, "s3 PUT %s: content type has control characters",
                                  key);

    s3__body_t resp = {0};
    long status = 0;
    int rc = s3__request(s, "PUT", key, data, len, content_type, &status, &resp, err, errlen);
    if (rc == OBJSTORE_OK && (status < 200 || status > 299)) {
        char code[64];
        s3__error_code(&resp, code, sizeof(code));
        rc = s3__status_fail(OBJSTORE_EIO, "PUT", key, status, code, err, errlen);
    }
    free(resp.p);
    return rc;
}

static int s3__get(objstore_t *base, const char *key, void **data, size_t *len, char *err, size_t errlen)
{
    s3_t *s = (s3_t *)base;
    s3__body_t resp = {0};
    long status = 0;
    int rc = s3__request(s, "GET", key, NULL, 0, NULL, &status, &resp, err, errlen);
    if (rc != OBJSTORE_OK)
        goto out;
    if (status != 200) {
        char code[64];
        s3__error_code(&resp, code, sizeof(code));
        rc = s3__status_fail(s3__no_such_key(status, code) ? OBJSTORE_ENOTFOUND : OBJSTORE_EIO, "GET", key,
                             status, code, err, errlen);
        goto out;
    }
    *len = resp.len;
    *data = resp.p != NULL ? resp.p : xmalloc(1); /* an empty object is still an allocation */
    resp.p = NULL;

out:
    free(resp.p);
    return rc;
}

static int s3__delete(objstore_t *base, const char *key, char *err, size_t errlen)
{
    s3_t *s = (s3_t *)base;
    s3__body_t resp = {0};
    long status = 0;
    int rc = s3__request(s, "DELETE", key, NULL, 0, NULL, &status, &resp, err, errlen);
    if (rc == OBJSTORE_OK && (status < 200 || status > 299)) {
        char code[64];
        s3__error_code(&resp, code, sizeof(code));
        if (!s3__no_such_key(status, code)) /* S3 answers 204 for a missing key; others may 404 */
            rc = s3__status_fail(OBJSTORE_EIO, "DELETE", key, status, code, err, errlen);
    }
    free(resp.p);
    return rc;
}

/* ================================================================ open, close */

static void s3__close(objstore_t *base)
{
    s3_t *s = (s3_t *)base;
    for (int i = 0; i < s->nidle; i++)
        curl_easy_cleanup(s->idle[i]);
    pthread_mutex_destroy(&s->lock);
    free(s->bucket_url);
    free(s->sigv4);
    free(s->access_key);
    free(s->secret_key);
    free(s->token_header);
    free(s);
}

static const objstore__backend_t s3__backend = {
    .put = s3__put,
    .get = s3__get,
    .del = s3__delete,
    .close = s3__close,
};

/* Every byte of s is in [A-Za-z0-9] or in extra. */
static int s3__only(const char *s, const char *extra)
{
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr(extra, *s) != NULL))
            return 0;
    return 1;
}

/* No byte below 0x21 or 0x7f: nothing that could end a header line or split a value. */
static int s3__printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int s3__set(const char *v)
{
    return v != NULL && v[0] != '\0';
}

/* Checks conf; NULL when good, else what is wrong, naming the setting. */
static const char *s3__conf_problem(const objstore_conf_t *conf)
{
    if (!s3__set(conf->endpoint))
        return "s3: endpoint is required";
    if (strncmp(conf->endpoint, "http://", 7) != 0 && strncmp(conf->endpoint, "https://", 8) != 0)
        return "s3: endpoint must start with http:// or https://";
    if (!s3__printable(conf->endpoint) || strpbrk(conf->endpoint, "?#") != NULL)
        return "s3: endpoint must be a URL without spaces, query or fragment";
    if (!s3__set(conf->bucket))
        return "s3: bucket is required";
    if (strlen(conf->bucket) > 255 || !s3__only(conf->bucket, ".-_"))
        return "s3: bucket must be letters, digits, '.', '-' or '_' (at most 255)";
    if (!s3__set(conf->region))
        return "s3: region is required (\"us-east-1\", \"eu-west-1\", ...)";
    if (strlen(conf->region) > S3__SIGV4_PART_MAX || !s3__only(conf->region, "-_"))
        return "s3: region must be letters, digits, '-' or '_' (at most 64)";
    if (!s3__set(conf->access_key))
        return "s3: access_key is required";
    if (!s3__printable(conf->access_key))
        return "s3: access_key has spaces or control characters";
    if (!s3__set(conf->secret_key))
        return "s3: secret_key is required";
    if (!s3__printable(conf->secret_key))
        return "s3: secret_key has spaces or control characters";
    if (conf->session_token != NULL && !s3__printable(conf->session_token))
        return "s3: session_token has spaces or control characters";
    if (conf->timeout_ms < 0)
        return "s3: timeout_ms must not be negative (0 means 30 s)";
    return NULL;
}

objstore_t *objstore__s3_open(const objstore_conf_t *conf, char *err, size_t errlen)
{
    const char *problem = s3__conf_problem(conf);
    if (problem != NULL) {
        objstore__fail(0, err, errlen, "%s", problem);
        return NULL;
    }
    pthread_once(&s3__global_once, s3__global_init);
    if (s3__global_rc != CURLE_OK) {
        objstore__fail(0, err, errlen, "s3: curl_global_init: %s", curl_easy_strerror(s3__global_rc));
        return NULL;
    }

    s3_t *s = xcalloc(1, sizeof(*s));
    s->base.backend = &s3__backend;
    size_t n = strlen(conf->endpoint);
    while (n > 0 && conf->endpoint[n - 1] == '/')
        n--;
    s->bucket_url = xasprintf("%.*s/%s", (int)n, conf->endpoint, conf->bucket);
    s->sigv4 = xasprintf("aws:amz:%s:s3", conf->region);
    s->access_key = xstrdup(conf->access_key);
    s->secret_key = xstrdup(conf->secret_key);
    if (s3__set(conf->session_token))
        s->token_header = xasprintf("x-amz-security-token: %s", conf->session_token);
    s->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : S3__DEFAULT_TIMEOUT_MS;
    pthread_mutex_init(&s->lock, NULL);
    return &s->base;
}
