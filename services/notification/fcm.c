/* fcm.c -- Firebase Cloud Messaging HTTP v1 client: service-account access tokens and HTTP/2 sends on one curl multi handle. */
#include "fcm.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <jwt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/core.h"
#include "log/log.h"

/* How this file works, in short.
 *
 * A send lives in exactly one of three lists: `queue` (waiting for an access token or a free slot),
 * `active` (its easy handle is in the multi handle) and `delayed` (waiting for its retry time).
 * fcm_step moves due retries to the queue, starts a token request when one is needed, starts
 * queued sends while a valid token is there and fewer than max_in_flight are active, waits in
 * curl_multi_poll, then reads finished transfers and calls done callbacks.
 *
 * The access token is fetched lazily (only while something is pending) and renewed token_margin_s
 * (at most half its lifetime) before it expires; until it expires the old one keeps being used. A
 * send answered 401 drops the token it was sent with (unless a newer one is already there) and
 * goes back to the queue once without counting an attempt; a second 401 counts like a 5xx.
 *
 * A failing token endpoint is retried with the same backoff as sends. Sends waiting for a token
 * do not spend their own attempts: each counts the token failures that happened while it waited,
 * and gives up (FCM_GAVE_UP, "no access token: ...") once it has seen max_attempts of them --
 * with the defaults about a minute (1+2+4+8+16 s of backoff plus the requests). */

#define FCM__DEFAULT_ENDPOINT "https://fcm.googleapis.com"
#define FCM__DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define FCM__SCOPE "https://www.googleapis.com/auth/firebase.messaging"
#define FCM__GRANT "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
#define FCM__ASSERTION_TTL_S 3600
#define FCM__MAX_RESPONSE 65536 /* bytes of an answer kept; the rest is dropped */
#define FCM__MAX_KEYFILE 1048576
#define FCM__IDLE_MAX 64           /* easy handles kept for reuse */
#define FCM__MAX_RETRY_AFTER_S 3600 /* a Retry-After longer than this is taken as this */

/* An answer's body, kept NUL-terminated. */
typedef struct {
    char *p;
    size_t len, cap;
} fcm__buf_t;

typedef struct fcm__send fcm__send_t;
struct fcm__send {
    fcm__send_t *prev, *next;
    char *body; /* the whole request body, {"message":{...,"token":"..."}}; owned */
    size_t body_len;
    fcm_done_fn done;
    void *ud;
    unsigned attempts;    /* failed attempts so far (429, 5xx, transport, a second 401) */
    unsigned token_waits; /* token failures seen while waiting for a token */
    int auth_retried;     /* answered 401 once already */
    uint64_t due_ms;      /* in `delayed`: when to go back to the queue */
    uint64_t token_gen;   /* generation of the access token it was sent with */
    CURL *easy;           /* while active */
    struct curl_slist *headers;
    fcm__buf_t resp;
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct {
    fcm__send_t *head, *tail;
    size_t n;
} fcm__list_t;

struct fcm {
    /* from the key file and the configuration; owned */
    char *project_id, *client_email, *private_key, *token_uri, *send_url;
    size_t key_len;
    long http_version; /* CURL_HTTP_VERSION_2TLS for https, an h2c flavour for http (see fcm__h2c_version) */
    unsigned max_in_flight, max_attempts, backoff_ms, backoff_max_ms, timeout_ms, token_margin_s;

    CURLM *multi;
    fcm__list_t queue, active, delayed;

    /* the access token */
    char *auth_header; /* "Authorization: Bearer <token>", or NULL: none */
    uint64_t token_gen, token_expires_ms, token_renew_ms;
    /* the token request in flight, if any */
    CURL *tok_easy;
    char *tok_form;
    fcm__buf_t tok_resp;
    char tok_err[CURL_ERROR_SIZE];
    uint64_t tok_started_ms;
    unsigned tok_failures; /* in a row */
    uint64_t tok_next_try_ms;

    CURL *idle[FCM__IDLE_MAX];
    size_t nidle;
    int closing;
    fcm_stats_t stats;
};

/* The one piece of process state: curl_global_init must run once, before any handle. */
static pthread_once_t fcm__global_once = PTHREAD_ONCE_INIT;
static CURLcode fcm__global_rc;

static void fcm__global_init(void)
{
    fcm__global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ================================================================ small helpers */

static void fcm__list_push(fcm__list_t *l, fcm__send_t *s)
{
    s->next = NULL;
    s->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
    l->n++;
}

static void fcm__list_push_front(fcm__list_t *l, fcm__send_t *s)
{
    s->prev = NULL;
    s->next = l->head;
    if (l->head != NULL)
        l->head->prev = s;
    else
        l->tail = s;
    l->head = s;
    l->n++;
}

static void fcm__list_remove(fcm__list_t *l, fcm__send_t *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    s->prev = s->next = NULL;
    l->n--;
}

static size_t fcm__on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    fcm__buf_t *b = ud;
    size_t n = size * nmemb, keep = n;
    if (b->len + keep > FCM__MAX_RESPONSE)
        keep = FCM__MAX_RESPONSE - b->len;
    if (keep > 0) {
        if (b->len + keep + 1 > b->cap) {
            b->cap = b->len + keep + 1 > 1024 ? b->len + keep + 1 : 1024;
            b->p = xrealloc(b->p, b->cap);
        }
        memcpy(b->p + b->len, data, keep);
        b->len += keep;
        b->p[b->len] = '\0';
    }
    return n; /* the rest of an oversized answer is read and dropped */
}

static void fcm__buf_clear(fcm__buf_t *b)
{
    b->len = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
}

/* An easy handle with no options set: an idle one or a new one. */
static CURL *fcm__easy_take(fcm_t *f)
{
    CURL *c = f->nidle > 0 ? f->idle[--f->nidle] : curl_easy_init();
    CORE_ASSERT(c != NULL); /* out of memory */
    return c;
}

/* Out of the multi handle, options cleared, kept for reuse (connections live in the multi handle). */
static void fcm__easy_give(fcm_t *f, CURL *c)
{
    curl_multi_remove_handle(f->multi, c);
    curl_easy_reset(c);
    if (f->nidle < FCM__IDLE_MAX)
        f->idle[f->nidle++] = c;
    else
        curl_easy_cleanup(c);
}

/* backoff_ms doubled (n - 1) times, at most backoff_max_ms. */
static uint64_t fcm__backoff(const fcm_t *f, unsigned n)
{
    uint64_t d = f->backoff_ms;
    for (unsigned i = 1; i < n && d < f->backoff_max_ms; i++)
        d *= 2;
    return d < f->backoff_max_ms ? d : f->backoff_max_ms;
}

static int fcm__token_valid(const fcm_t *f, uint64_t now)
{
    return f->auth_header != NULL && now < f->token_expires_ms;
}

static void fcm__token_drop(fcm_t *f)
{
    free(f->auth_header);
    f->auth_header = NULL;
    f->token_expires_ms = f->token_renew_ms = 0;
}

/* ================================================================ finishing a send */

static void fcm__finish(fcm_t *f, fcm__send_t *s, fcm_result_t result, int status, const char *detail)
{
    switch (result) {
    case FCM_SENT:
        f->stats.sent++;
        break;
    case FCM_UNREGISTERED:
        f->stats.unregistered++;
        break;
    case FCM_INVALID:
        f->stats.invalid++;
        break;
    case FCM_GAVE_UP:
        f->stats.gave_up++;
        break;
    }
    s->done(s->ud, result, status, detail != NULL ? detail : "");
    curl_slist_free_all(s->headers);
    free(s->resp.p);
    free(s->body);
    free(s);
}

/* A failed attempt (429, 5xx, transport, repeated 401): into `delayed`, or FCM_GAVE_UP after
 * max_attempts. retry_after_s < 0: none given. */
static void fcm__retry(fcm_t *f, fcm__send_t *s, int status, long retry_after_s, const char *detail)
{
    s->attempts++;
    if (s->attempts >= f->max_attempts) {
        fcm__finish(f, s, FCM_GAVE_UP, status, detail);
        return;
    }
    uint64_t delay = fcm__backoff(f, s->attempts);
    if (retry_after_s > 0) {
        uint64_t ra = (uint64_t)(retry_after_s < FCM__MAX_RETRY_AFTER_S ? retry_after_s : FCM__MAX_RETRY_AFTER_S) * 1000;
        if (ra > delay)
            delay = ra;
    }
    s->due_ms = core_now_ms() + delay;
    f->stats.retried++;
    fcm__list_push(&f->delayed, s);
}

/* ================================================================ access token */

/* The signed assertion of the JWT bearer grant (RFC 7523) at wall time iat; caller frees. NULL if
 * the key does not sign. */
static char *fcm__assertion(const char *email, const char *token_uri, const char *key, size_t key_len, time_t iat)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    if (jwt_new(&jwt) != 0)
        goto out;
    if (jwt_add_grant(jwt, "iss", email) != 0 || jwt_add_grant(jwt, "scope", FCM__SCOPE) != 0 ||
        jwt_add_grant(jwt, "aud", token_uri) != 0 || jwt_add_grant_int(jwt, "iat", (long)iat) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)iat + FCM__ASSERTION_TTL_S) != 0)
        goto out;
    if (jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)key, (int)key_len) != 0)
        goto out;
    out = jwt_encode_str(jwt); /* malloc'd; libjwt 1.10 has no jwt_free_str */
out:
    jwt_free(jwt);
    return out;
}

static void fcm__token_failed(fcm_t *f, int status, const char *why)
{
    uint64_t now = core_now_ms();
    f->tok_failures++;
    f->stats.token_failures++;
    f->tok_next_try_ms = now + fcm__backoff(f, f->tok_failures);
    log_warn(NULL, "fcm: access token request to %s failed (%u in a row, next try in %llu ms): %s",
             f->token_uri, f->tok_failures, (unsigned long long)(f->tok_next_try_ms - now), why);
    if (fcm__token_valid(f, now))
        return; /* a renewal: sends go on with the current token */
    char detail[320];
    snprintf(detail, sizeof(detail), "no access token: %s", why);
    /* Only the queue waits for a token: `delayed` sends come back to it when due. */
    for (fcm__send_t *s = f->queue.head, *next; s != NULL; s = next) {
        next = s->next;
        if (++s->token_waits >= f->max_attempts) {
            fcm__list_remove(&f->queue, s);
            fcm__finish(f, s, FCM_GAVE_UP, status, detail);
        }
    }
}

static void fcm__token_start(fcm_t *f, uint64_t now)
{
    char *assertion = fcm__assertion(f->client_email, f->token_uri, f->private_key, f->key_len, time(NULL));
    if (assertion == NULL) {
        fcm__token_failed(f, 0, "cannot sign the assertion");
        return;
    }
    free(f->tok_form);
    /* The assertion is base64url and dots: nothing to escape in a form. */
    f->tok_form = xasprintf("grant_type=%s&assertion=%s", FCM__GRANT, assertion);
    free(assertion);
    fcm__buf_clear(&f->tok_resp);
    f->tok_err[0] = '\0';
    f->tok_started_ms = now;
    CURL *c = f->tok_easy = fcm__easy_take(f);
    curl_easy_setopt(c, CURLOPT_URL, f->token_uri);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->tok_form); /* application/x-www-form-urlencoded */
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(f->tok_form));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fcm__on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f->tok_resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, f->tok_err);
    if (f->http_version == CURL_HTTP_VERSION_2_0 && strncmp(f->token_uri, "http://", 7) == 0)
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, f->http_version); /* see fcm__h2c_version */
    curl_multi_add_handle(f->multi, c);
}

static void fcm__token_done(fcm_t *f, CURLcode cc)
{
    long status = 0;
    char why[256];
    cJSON *j = NULL;
    if (cc == CURLE_OK)
        curl_easy_getinfo(f->tok_easy, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(why, sizeof(why), "%s", f->tok_err[0] != '\0' ? f->tok_err : curl_easy_strerror(cc));
    fcm__easy_give(f, f->tok_easy);
    f->tok_easy = NULL;
    free(f->tok_form);
    f->tok_form = NULL;
    if (cc != CURLE_OK)
        goto fail;
    j = cJSON_ParseWithLength(f->tok_resp.p != NULL ? f->tok_resp.p : "", f->tok_resp.len);
    if (status != 200) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "error_description");
        snprintf(why, sizeof(why), "HTTP %ld%s%s%s%s", status, cJSON_IsString(e) ? " " : "",
                 cJSON_IsString(e) ? e->valuestring : "", cJSON_IsString(d) ? ": " : "",
                 cJSON_IsString(d) ? d->valuestring : "");
        goto fail;
    }
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "token_type");
    if (!cJSON_IsString(tok) || tok->valuestring[0] == '\0' || strpbrk(tok->valuestring, "\r\n") != NULL ||
        !cJSON_IsNumber(ttl) || ttl->valuedouble < 1 || ttl->valuedouble > 86400 * 365 ||
        (type != NULL && !(cJSON_IsString(type) && strcasecmp(type->valuestring, "Bearer") == 0))) {
        snprintf(why, sizeof(why), "HTTP 200 without a usable access_token, expires_in and token_type");
        goto fail;
    }
    uint64_t life_ms = (uint64_t)ttl->valuedouble * 1000;
    uint64_t margin_ms = (uint64_t)f->token_margin_s * 1000;
    if (margin_ms > life_ms / 2)
        margin_ms = life_ms / 2;
    free(f->auth_header);
    f->auth_header = xasprintf("Authorization: Bearer %s", tok->valuestring);
    f->token_gen++;
    /* Counted from when the request left: the token cannot outlive that. */
    f->token_expires_ms = f->tok_started_ms + life_ms;
    f->token_renew_ms = f->tok_started_ms + life_ms - margin_ms;
    f->tok_failures = 0;
    f->tok_next_try_ms = 0;
    f->stats.tokens_fetched++;
    cJSON_Delete(j);
    return;
fail:
    cJSON_Delete(j);
    fcm__token_failed(f, (int)status, why);
}

/* ================================================================ sends */

static void fcm__send_start(fcm_t *f, fcm__send_t *s)
{
    CURL *c = s->easy = fcm__easy_take(f);
    s->token_gen = f->token_gen;
    fcm__buf_clear(&s->resp);
    s->errbuf[0] = '\0';
    curl_slist_free_all(s->headers);
    s->headers = curl_slist_append(NULL, "Content-Type: application/json; charset=UTF-8");
    s->headers = curl_slist_append(s->headers, f->auth_header); /* copies */
    CORE_ASSERT(s->headers != NULL);
    curl_easy_setopt(c, CURLOPT_URL, f->send_url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_PRIVATE, s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, f->http_version);
    curl_easy_setopt(c, CURLOPT_PIPEWAIT, 1L); /* wait for a connection to multiplex on, not a new one */
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)s->body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fcm__on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s->resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
    fcm__list_push(&f->active, s);
    curl_multi_add_handle(f->multi, c);
}

/* What an error answer says: FcmError's errorCode (or the status) and the message, into detail;
 * sets *unregistered when the token is reported dead. */
static void fcm__error_detail(const fcm__buf_t *resp, long status, char *detail, size_t len, int *unregistered)
{
    cJSON *j = resp->len > 0 ? cJSON_ParseWithLength(resp->p, resp->len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(e, "details");
    const char *code = NULL, *gstatus = cJSON_IsString(st) ? st->valuestring : NULL;
    const cJSON *d;
    if (!cJSON_IsArray(details))
        details = NULL;
    cJSON_ArrayForEach(d, details)
    {
        const cJSON *ec = cJSON_GetObjectItemCaseSensitive(d, "errorCode");
        if (cJSON_IsString(ec)) {
            code = ec->valuestring;
            break;
        }
    }
    /* The token is dead when FCM says UNREGISTERED, or answers 404 without saying more. A 404 that
     * names another reason (NOT_FOUND of a project that does not exist: a configuration mistake)
     * must not delete every user's device tokens: it is only logged. */
    *unregistered = (code != NULL && strcmp(code, "UNREGISTERED") == 0) ||
                    (status == 404 && code == NULL && gstatus == NULL);
    if (code != NULL || gstatus != NULL)
        snprintf(detail, len, "%s%s%s", code != NULL ? code : gstatus, cJSON_IsString(msg) ? ": " : "",
                 cJSON_IsString(msg) ? msg->valuestring : "");
    else
        snprintf(detail, len, "HTTP %ld", status);
    cJSON_Delete(j);
}

static void fcm__send_done(fcm_t *f, fcm__send_t *s, CURLcode cc)
{
    long status = 0;
    curl_off_t retry_after = -1;
    char detail[320];
    if (cc == CURLE_OK) {
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(s->easy, CURLINFO_RETRY_AFTER, &retry_after); /* seconds or HTTP-date; 0: none */
    } else {
        snprintf(detail, sizeof(detail), "%s", s->errbuf[0] != '\0' ? s->errbuf : curl_easy_strerror(cc));
    }
    fcm__list_remove(&f->active, s);
    fcm__easy_give(f, s->easy);
    s->easy = NULL;

    if (cc != CURLE_OK) {
        fcm__retry(f, s, 0, -1, detail);
    } else if (status >= 200 && status < 300) {
        fcm__finish(f, s, FCM_SENT, (int)status, "");
    } else if (status == 401) {
        /* The token was refused: drop it unless a newer one came meanwhile; fetch another. */
        if (s->token_gen == f->token_gen)
            fcm__token_drop(f);
        if (!s->auth_retried) {
            s->auth_retried = 1;
            f->stats.retried++;
            fcm__list_push_front(&f->queue, s);
        } else {
            fcm__retry(f, s, 401, -1, "UNAUTHENTICATED: the access token was refused again");
        }
    } else if (status == 429 || status >= 500) {
        int unregistered;
        fcm__error_detail(&s->resp, status, detail, sizeof(detail), &unregistered);
        fcm__retry(f, s, (int)status, (long)retry_after, detail);
    } else {
        int unregistered;
        fcm__error_detail(&s->resp, status, detail, sizeof(detail), &unregistered);
        fcm__finish(f, s, unregistered ? FCM_UNREGISTERED : FCM_INVALID, (int)status, detail);
    }
}

/* ================================================================ driving */

/* Due retries back to the queue; a token request when one is needed; queued sends started. */
static void fcm__pump(fcm_t *f)
{
    uint64_t now = core_now_ms();
    for (fcm__send_t *s = f->delayed.head, *next; s != NULL; s = next) {
        next = s->next;
        if (s->due_ms <= now) {
            fcm__list_remove(&f->delayed, s);
            fcm__list_push(&f->queue, s);
        }
    }
    int valid = fcm__token_valid(f, now);
    if (f->tok_easy == NULL && now >= f->tok_next_try_ms && f->queue.n + f->active.n + f->delayed.n > 0 &&
        (!valid || now >= f->token_renew_ms))
        fcm__token_start(f, now);
    while (valid && f->queue.n > 0 && f->active.n < f->max_in_flight) {
        fcm__send_t *s = f->queue.head;
        fcm__list_remove(&f->queue, s);
        fcm__send_start(f, s);
    }
}

/* Finished transfers: token answers and send results (done callbacks run here). */
static void fcm__collect(fcm_t *f)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *c = m->easy_handle;
        CURLcode cc = m->data.result;
        if (c == f->tok_easy) {
            fcm__token_done(f, cc);
        } else {
            fcm__send_t *s = NULL;
            curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&s);
            CORE_ASSERT(s != NULL && s->easy == c);
            fcm__send_done(f, s, cc);
        }
    }
}

/* How long fcm_step may sleep: at most timeout_ms, less when a retry or token (re)try is due. */
static long fcm__wait_ms(const fcm_t *f, int timeout_ms)
{
    uint64_t now = core_now_ms(), until = now + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (const fcm__send_t *s = f->delayed.head; s != NULL; s = s->next)
        if (s->due_ms < until)
            until = s->due_ms;
    if (f->tok_easy == NULL && f->queue.n + f->active.n + f->delayed.n > 0) {
        uint64_t t = fcm__token_valid(f, now) ? f->token_renew_ms : 0;
        if (t < f->tok_next_try_ms)
            t = f->tok_next_try_ms;
        if (t < until)
            until = t;
    }
    return until > now ? (long)(until - now) : 0;
}

int fcm_step(fcm_t *f, const int *extra_fds, unsigned nextra, int timeout_ms)
{
    struct curl_waitfd stackfds[8], *wfds = nextra <= 8 ? stackfds : xcalloc(nextra, sizeof(*wfds));
    int running, numfds, readable = -1;
    fcm__pump(f);
    curl_multi_perform(f->multi, &running);
    fcm__collect(f);
    for (unsigned i = 0; i < nextra; i++)
        wfds[i] = (struct curl_waitfd){.fd = extra_fds[i], .events = CURL_WAIT_POLLIN};
    /* curl_multi_poll, unlike curl_multi_wait, sleeps even when curl has no socket to watch. */
    if (curl_multi_poll(f->multi, nextra > 0 ? wfds : NULL, nextra, (int)fcm__wait_ms(f, timeout_ms), &numfds) !=
        CURLM_OK)
        goto out;
    readable = 0;
    for (unsigned i = 0; i < nextra; i++)
        if (wfds[i].revents & CURL_WAIT_POLLIN)
            readable++;
    curl_multi_perform(f->multi, &running);
    fcm__collect(f);
    fcm__pump(f); /* retries now due and sends that got a slot leave at once */
    curl_multi_perform(f->multi, &running);
out:
    if (wfds != stackfds)
        free(wfds);
    return readable;
}

/* ================================================================ public API */

int fcm_send(fcm_t *f, const char *token, const char *message_json, fcm_done_fn done, void *ud)
{
    int rc = -1;
    cJSON *msg = NULL, *root = NULL;
    char *body = NULL;
    if (f == NULL || f->closing || token == NULL || token[0] == '\0' || message_json == NULL || done == NULL)
        goto out;
    msg = cJSON_ParseWithOpts(message_json, NULL, 1);
    if (!cJSON_IsObject(msg))
        goto out;
    cJSON_DeleteItemFromObjectCaseSensitive(msg, "token");
    cJSON_AddStringToObject(msg, "token", token);
    root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "message", msg);
    msg = NULL; /* root owns it */
    body = cJSON_PrintUnformatted(root);
    CORE_ASSERT(body != NULL); /* out of memory */
    size_t len = strlen(body);
    if (len > FCM_MAX_BODY)
        goto out;
    fcm__send_t *s = xcalloc(1, sizeof(*s));
    s->body = body;
    s->body_len = len;
    body = NULL;
    s->done = done;
    s->ud = ud;
    fcm__list_push(&f->queue, s);
    rc = 0;
out:
    free(body);
    cJSON_Delete(msg);
    cJSON_Delete(root);
    return rc;
}

size_t fcm_pending(const fcm_t *f)
{
    return f->queue.n + f->active.n + f->delayed.n;
}

void fcm_stats(const fcm_t *f, fcm_stats_t *out)
{
    *out = f->stats;
}

static char *fcm__read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    buf = xmalloc(FCM__MAX_KEYFILE + 1);
    *len = fread(buf, 1, FCM__MAX_KEYFILE + 1, fp);
    if (ferror(fp) || *len > FCM__MAX_KEYFILE) {
        snprintf(err, errlen, "%s: unreadable or over %d bytes", path, FCM__MAX_KEYFILE);
        free(buf);
        buf = NULL;
    } else {
        buf[*len] = '\0';
    }
    fclose(fp);
    return buf;
}

/* HTTP/2 over cleartext (the local fake): with prior knowledge where libcurl can reuse such a
 * connection. libcurl before 8.0.0 (Debian bookworm has 7.88.1) cannot: a second request on a reused
 * prior-knowledge connection fails with "Error in the HTTP2 framing layer" or never leaves (curl
 * issue #10634, fixed by curl PR #10643). There requests upgrade (Upgrade: h2c) instead, and the
 * multi handle keeps one connection per host (fcm_open): requests that cannot multiplex yet wait in
 * curl's queue for the upgraded connection rather than each opening its own HTTP/1.1 connection. The
 * token request to an http:// token_uri upgrades too, so it can share that connection. */
static long fcm__h2c_version(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v->version_num >= 0x080000 ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : (long)CURL_HTTP_VERSION_2_0;
}

static const char *fcm__json_str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) && v->valuestring[0] != '\0' ? v->valuestring : NULL;
}

fcm_t *fcm_open(const fcm_conf_t *conf, char *err, size_t errlen)
{
    fcm_t *f = NULL;
    cJSON *j = NULL;
    size_t len = 0;
    char *file = NULL, *assertion = NULL;
    pthread_once(&fcm__global_once, fcm__global_init);
    if (fcm__global_rc != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init: %s", curl_easy_strerror(fcm__global_rc));
        goto out;
    }
    if (conf == NULL || conf->credentials_file == NULL || conf->credentials_file[0] == '\0') {
        snprintf(err, errlen, "no service-account credentials file");
        goto out;
    }
    const char *endpoint = conf->endpoint != NULL && conf->endpoint[0] != '\0' ? conf->endpoint : FCM__DEFAULT_ENDPOINT;
    int h2c = strncmp(endpoint, "http://", 7) == 0;
    if (!h2c && strncmp(endpoint, "https://", 8) != 0) {
        snprintf(err, errlen, "endpoint %s: not an http:// or https:// URL", endpoint);
        goto out;
    }
    if ((file = fcm__read_file(conf->credentials_file, &len, err, errlen)) == NULL)
        goto out;
    j = cJSON_ParseWithLength(file, len);
    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "%s: not a JSON object", conf->credentials_file);
        goto out;
    }
    const char *project = fcm__json_str(j, "project_id"), *email = fcm__json_str(j, "client_email");
    const char *key = fcm__json_str(j, "private_key"), *token_uri = fcm__json_str(j, "token_uri");
    if (token_uri == NULL)
        token_uri = FCM__DEFAULT_TOKEN_URI;
    if (project == NULL || email == NULL || key == NULL) {
        snprintf(err, errlen, "%s: project_id, client_email and private_key must be non-empty strings",
                 conf->credentials_file);
        goto out;
    }
    if (strncmp(token_uri, "http://", 7) != 0 && strncmp(token_uri, "https://", 8) != 0) {
        snprintf(err, errlen, "%s: token_uri %s is not an http(s) URL", conf->credentials_file, token_uri);
        goto out;
    }
    if (strspn(project, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != strlen(project)) {
        snprintf(err, errlen, "%s: project_id %s has characters a project id cannot have", conf->credentials_file,
                 project);
        goto out;
    }
    /* A key that signs now signs later: try it once here rather than at the first send. */
    if ((assertion = fcm__assertion(email, token_uri, key, strlen(key), time(NULL))) == NULL) {
        snprintf(err, errlen, "%s: private_key is not a PEM RSA private key that signs RS256", conf->credentials_file);
        goto out;
    }
    f = xcalloc(1, sizeof(*f));
    f->project_id = xstrdup(project);
    f->client_email = xstrdup(email);
    f->private_key = xstrdup(key);
    f->key_len = strlen(key);
    f->token_uri = xstrdup(token_uri);
    size_t elen = strlen(endpoint);
    while (elen > 0 && endpoint[elen - 1] == '/')
        elen--;
    f->send_url = xasprintf("%.*s/v1/projects/%s/messages:send", (int)elen, endpoint, project);
    f->http_version = h2c ? fcm__h2c_version() : (long)CURL_HTTP_VERSION_2TLS;
    f->max_in_flight = conf->max_in_flight > 0 ? conf->max_in_flight : 256;
    f->max_attempts = conf->max_attempts > 0 ? conf->max_attempts : 6;
    f->backoff_ms = conf->backoff_ms > 0 ? conf->backoff_ms : 1000;
    f->backoff_max_ms = conf->backoff_max_ms > 0 ? conf->backoff_max_ms : 60000;
    if (f->backoff_max_ms < f->backoff_ms)
        f->backoff_max_ms = f->backoff_ms;
    f->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 10000;
    f->token_margin_s = conf->token_margin_s > 0 ? conf->token_margin_s : 300;
    f->multi = curl_multi_init();
    CORE_ASSERT(f->multi != NULL);
    curl_multi_setopt(f->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (f->http_version == CURL_HTTP_VERSION_2_0)
        curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L); /* see fcm__h2c_version */
out:
    if (assertion != NULL)
        free(assertion);
    if (file != NULL) {
        memset(file, 0, len); /* the private key */
        free(file);
    }
    cJSON_Delete(j);
    return f;
}

void fcm_close(fcm_t *f)
{
    if (f == NULL)
        return;
    f->closing = 1; /* fcm_send from the callbacks below is refused */
    if (f->tok_easy != NULL) {
        curl_multi_remove_handle(f->multi, f->tok_easy);
        curl_easy_cleanup(f->tok_easy);
    }
    fcm__list_t *lists[] = {&f->active, &f->delayed, &f->queue};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(lists); i++) {
        fcm__send_t *s;
        while ((s = lists[i]->head) != NULL) {
            fcm__list_remove(lists[i], s);
            if (s->easy != NULL) {
                curl_multi_remove_handle(f->multi, s->easy);
                curl_easy_cleanup(s->easy);
            }
            fcm__finish(f, s, FCM_GAVE_UP, 0, "closed");
        }
    }
    for (size_t i = 0; i < f->nidle; i++)
        curl_easy_cleanup(f->idle[i]);
    curl_multi_cleanup(f->multi);
    free(f->tok_form);
    free(f->tok_resp.p);
    free(f->auth_header);
    free(f->project_id);
    free(f->client_email);
    if (f->private_key != NULL)
        memset(f->private_key, 0, f->key_len);
    free(f->private_key);
    free(f->token_uri);
    free(f->send_url);
    free(f);
}
