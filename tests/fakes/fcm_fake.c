/* fcm_fake.c -- a local Firebase Cloud Messaging server for tests and benchmarks: OAuth2 token endpoint, HTTP v1 sends, fault rules.
 *
 * One thread, h2o evloop, h2c (prior knowledge) and HTTP/1.1 on one listener. Options (argv wins over
 * the environment variable named after it):
 *   --listen HOST:PORT     FCM_FAKE_LISTEN        default 127.0.0.1:7083
 *   --public-key FILE      FCM_FAKE_PUBLIC_KEY    PEM public key that verifies assertions (required)
 *   --client-email EMAIL   FCM_FAKE_CLIENT_EMAIL  required iss of assertions (required)
 *   --project ID           FCM_FAKE_PROJECT       the project sends must name (required)
 *   --token-uri URL        FCM_FAKE_TOKEN_URI     required aud of assertions (required)
 *   --token-ttl SECONDS    FCM_FAKE_TOKEN_TTL     expires_in of issued tokens, default 3600
 *   --max-records N        FCM_FAKE_MAX_RECORDS   accepted sends remembered (oldest dropped), default 100000
 *
 * Routes:
 *   POST /token   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT: the assertion
 *                 must be RS256, signed by the key, iss = client email, scope = firebase.messaging,
 *                 aud = token uri, iat within 120 s of now, 0 < exp - iat <= 3600, exp in the future;
 *                 else 400 {"error":"invalid_grant","error_description":...}.
 *   POST /v1/projects/P/messages:send   401 UNAUTHENTICATED (bearer missing, unknown or expired),
 *                 404 (other project), 400 INVALID_ARGUMENT (not {"message":{"token":string,...}} or
 *                 over 4096 bytes), then the first matching rule, else 200 {"name":...} and a record.
 *   POST /fake/rules   {"token":"t" or "*","status":N,"error":"UNREGISTERED"?,"times":n?,"retry_after":s?}
 *                 (rules for the exact token are tried before "*" rules; without times: forever)
 *   POST /fake/config  {"token_ttl":s}
 *   POST /fake/reset   clears records, rules and stats, token_ttl back to --token-ttl; issued tokens
 *                 are kept unless {"tokens":true}
 *   GET  /fake/sends?token=T&since=I  {"count","total","sends":[{"index","token","message","at_ms","http"}]}
 *                 (newest last; index counts every accepted send since the last reset)
 *   GET  /fake/stats   {"tokens_issued","token_rejected","sends_accepted","sends_rejected",
 *                 "unauthenticated","h2_requests","http1_requests","connections"}
 */
#include <errno.h>
#include <h2o.h>
#include <jwt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "core/core.h"
#include "json/json.h"
#include "log/log.h"

#define FAKE_SCOPE "https://www.googleapis.com/auth/firebase.messaging"
#define FAKE_GRANT "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define FAKE_MAX_SEND_BODY 4096
#define FAKE_TOKEN_BUCKETS 4096

typedef struct fake_token fake_token_t;
struct fake_token {
    fake_token_t *next;
    int64_t expires_ms; /* wall clock */
    char token[];
};

typedef struct {
    char *token; /* or "*" */
    int status;
    char *error; /* FcmError errorCode; NULL: the status's usual one */
    long times;  /* < 0: forever */
    long retry_after;
} fake_rule_t;

typedef struct {
    uint64_t index;
    char *token;
    char *message; /* the message object, compact JSON */
    int64_t at_ms;
    int http2;
} fake_record_t;

typedef struct {
    /* options */
    const char *listen, *public_key_file, *client_email, *project, *token_uri;
    long token_ttl_default, max_records;
    char *public_key;
    size_t public_key_len;
    /* state */
    long token_ttl;
    fake_token_t *tokens[FAKE_TOKEN_BUCKETS];
    size_t ntokens;
    fake_rule_t *rules;
    size_t nrules, caprules;
    fake_record_t *records; /* ring of max_records */
    uint64_t total;         /* records ever added since reset; the next index */
    uint64_t msg_seq;
    struct {
        uint64_t tokens_issued, token_rejected, sends_accepted, sends_rejected, unauthenticated, h2_requests,
            http1_requests, connections;
    } stats;
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
} fake_t;

typedef struct {
    h2o_handler_t super;
    fake_t *fake;
} fake_handler_t;

static volatile sig_atomic_t fake__stop;
/* The fake's state, reachable from here until exit: h2o 2.2 has no way to free its loop, so
 * LeakSanitizer would report what the loop still holds if the last pointer to it went away. */
static fake_t *volatile fake__state; /* volatile: a store the compiler must keep */

/* ================================================================ responses */

static void fake__send(h2o_req_t *req, int status, const char *body)
{
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : "Error";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json; charset=UTF-8"));
    h2o_send_inline(req, body, strlen(body));
}

static void fake__send_json(h2o_req_t *req, int status, cJSON *v)
{
    char *s = json_print(v);
    fake__send(req, status, s);
    free(s);
    cJSON_Delete(v);
}

static const char *fake__google_status(int status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 500:
        return "INTERNAL";
    case 503:
        return "UNAVAILABLE";
    }
    return "UNKNOWN";
}

static const char *fake__default_error_code(int status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 403:
        return "SENDER_ID_MISMATCH";
    case 404:
        return "UNREGISTERED";
    case 429:
        return "QUOTA_EXCEEDED";
    case 500:
        return "INTERNAL";
    case 503:
        return "UNAVAILABLE";
    }
    return NULL;
}

/* Google's error shape; fcm_code (the FcmError detail) may be NULL. */
static void fake__send_google_error(h2o_req_t *req, int status, const char *fcm_code, const char *message)
{
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddNumberToObject(e, "code", status);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "status", fake__google_status(status));
    if (fcm_code != NULL) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "@type", "type.googleapis.com/google.firebase.fcm.v1.FcmError");
        cJSON_AddStringToObject(d, "errorCode", fcm_code);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "details"), d);
    }
    fake__send_json(req, status, root);
}

static void fake__invalid_grant(fake_t *fk, h2o_req_t *req, const char *why)
{
    fk->stats.token_rejected++;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "error", "invalid_grant");
    cJSON_AddStringToObject(root, "error_description", why);
    fake__send_json(req, 400, root);
}

/* ================================================================ tokens */

static size_t fake__hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return (size_t)(h % FAKE_TOKEN_BUCKETS);
}

static fake_token_t *fake__token_find(fake_t *fk, const char *s, size_t len)
{
    for (fake_token_t *t = fk->tokens[fake__hash(s, len)]; t != NULL; t = t->next)
        if (strlen(t->token) == len && memcmp(t->token, s, len) == 0)
            return t;
    return NULL;
}

static void fake__tokens_clear(fake_t *fk, int only_expired)
{
    int64_t now = core_wall_ms();
    for (size_t b = 0; b < FAKE_TOKEN_BUCKETS; b++) {
        fake_token_t **pp = &fk->tokens[b];
        while (*pp != NULL) {
            fake_token_t *t = *pp;
            if (!only_expired || t->expires_ms <= now) {
                *pp = t->next;
                free(t);
                fk->ntokens--;
            } else {
                pp = &t->next;
            }
        }
    }
}

static const char *fake__token_issue(fake_t *fk)
{
    unsigned char rnd[16];
    char hex[33];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return NULL;
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    if (fk->ntokens > 0 && fk->ntokens % 1024 == 0)
        fake__tokens_clear(fk, 1); /* keeps the table from growing with dead tokens */
    size_t len = 5 + 32;
    fake_token_t *t = xmalloc(sizeof(*t) + len + 1);
    snprintf(t->token, len + 1, "fake-%s", hex);
    t->expires_ms = core_wall_ms() + fk->token_ttl * 1000;
    size_t b = fake__hash(t->token, len);
    t->next = fk->tokens[b];
    fk->tokens[b] = t;
    fk->ntokens++;
    return t->token;
}

/* ================================================================ small parsers */

static int fake__hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The value of key in an application/x-www-form-urlencoded string (or a query), decoded; caller
 * frees; NULL if absent. */
static char *fake__form_value(const char *s, size_t len, const char *key)
{
    size_t klen = strlen(key);
    const char *end = s + len;
    for (const char *p = s; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp != NULL ? amp : end;
        if ((size_t)(pe - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1;
            char *out = xmalloc((size_t)(pe - v) + 1), *o = out;
            for (; v < pe; v++) {
                if (*v == '+') {
                    *o++ = ' ';
                } else if (*v == '%' && pe - v >= 3 && fake__hexval(v[1]) >= 0 && fake__hexval(v[2]) >= 0) {
                    *o++ = (char)(fake__hexval(v[1]) * 16 + fake__hexval(v[2]));
                    v += 2;
                } else {
                    *o++ = *v;
                }
            }
            *o = '\0';
            return out;
        }
        p = pe + 1;
    }
    return NULL;
}

static char *fake__query_value(h2o_req_t *req, const char *key)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    return fake__form_value(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1, key);
}

/* ================================================================ POST /token */

/* NULL when the assertion is good, else why not. */
static const char *fake__check_assertion(fake_t *fk, const char *assertion)
{
    static char why[160];
    jwt_t *jwt = NULL;
    const char *res = NULL;
    if (jwt_decode(&jwt, assertion, (const unsigned char *)fk->public_key, (int)fk->public_key_len) != 0 ||
        jwt == NULL) {
        res = "assertion malformed or its signature does not verify";
        goto out;
    }
    if (jwt_get_alg(jwt) != JWT_ALG_RS256) {
        res = "assertion alg must be RS256";
        goto out;
    }
    const char *iss = jwt_get_grant(jwt, "iss"), *scope = jwt_get_grant(jwt, "scope");
    const char *aud = jwt_get_grant(jwt, "aud");
    if (iss == NULL || strcmp(iss, fk->client_email) != 0) {
        res = "iss is not the service account's client email";
        goto out;
    }
    if (scope == NULL || strcmp(scope, FAKE_SCOPE) != 0) {
        res = "scope must be exactly " FAKE_SCOPE;
        goto out;
    }
    if (aud == NULL || strcmp(aud, fk->token_uri) != 0) {
        res = "aud is not the token uri";
        goto out;
    }
    errno = 0;
    long iat = jwt_get_grant_int(jwt, "iat");
    int iat_missing = errno != 0;
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    int exp_missing = errno != 0;
    long now = (long)time(NULL);
    if (iat_missing || exp_missing) {
        res = "iat and exp are required";
    } else if (iat < now - 120 || iat > now + 120) {
        snprintf(why, sizeof(why), "iat %ld is more than 120 s from now (%ld)", iat, now);
        res = why;
    } else if (exp - iat > 3600 || exp <= iat) {
        res = "exp - iat must be within (0, 3600]";
    } else if (exp <= now) {
        res = "assertion expired";
    }
out:
    jwt_free(jwt);
    return res;
}

static void fake__token(fake_t *fk, h2o_req_t *req)
{
    char *grant = fake__form_value(req->entity.base, req->entity.len, "grant_type");
    char *assertion = fake__form_value(req->entity.base, req->entity.len, "assertion");
    const char *why = NULL;
    if (grant == NULL || strcmp(grant, FAKE_GRANT) != 0)
        why = "grant_type must be " FAKE_GRANT;
    else if (assertion == NULL || assertion[0] == '\0')
        why = "assertion missing";
    else
        why = fake__check_assertion(fk, assertion);
    if (why != NULL) {
        fake__invalid_grant(fk, req, why);
    } else {
        const char *tok = fake__token_issue(fk);
        if (tok == NULL) {
            fake__send_google_error(req, 500, NULL, "no randomness");
        } else {
            fk->stats.tokens_issued++;
            cJSON *root = cJSON_CreateObject();
            cJSON_AddStringToObject(root, "access_token", tok);
            cJSON_AddNumberToObject(root, "expires_in", (double)fk->token_ttl);
            cJSON_AddStringToObject(root, "token_type", "Bearer");
            fake__send_json(req, 200, root);
        }
    }
    free(grant);
    free(assertion);
}

/* ================================================================ POST .../messages:send */

static fake_rule_t *fake__rule_match(fake_t *fk, const char *token, size_t *at)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < fk->nrules; i++) {
            const char *rt = fk->rules[i].token;
            if (pass == 0 ? strcmp(rt, token) == 0 : strcmp(rt, "*") == 0) {
                *at = i;
                return &fk->rules[i];
            }
        }
    return NULL;
}

static void fake__rule_free(fake_rule_t *r)
{
    free(r->token);
    free(r->error);
}

static void fake__record(fake_t *fk, const char *token, const cJSON *message, int http2)
{
    fake_record_t *r = &fk->records[fk->total % (uint64_t)fk->max_records];
    free(r->token);
    free(r->message);
    r->index = fk->total++;
    r->token = xstrdup(token);
    r->message = json_print(message);
    r->at_ms = core_wall_ms();
    r->http2 = http2;
}

static void fake__messages_send(fake_t *fk, h2o_req_t *req, const char *project, size_t project_len)
{
    cJSON *root = NULL;
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    const fake_token_t *t = NULL;
    if (at >= 0) {
        h2o_iovec_t v = req->headers.entries[at].value;
        if (v.len > 7 && strncasecmp(v.base, "Bearer ", 7) == 0)
            t = fake__token_find(fk, v.base + 7, v.len - 7);
    }
    if (t == NULL || t->expires_ms <= core_wall_ms()) {
        fk->stats.unauthenticated++;
        fake__send_google_error(req, 401, NULL,
                                t == NULL ? "Request is missing required authentication credential or the "
                                            "access token is unknown."
                                          : "Request had invalid authentication credentials: the access "
                                            "token expired.");
        return;
    }
    if (strlen(fk->project) != project_len || memcmp(fk->project, project, project_len) != 0) {
        fk->stats.sends_rejected++;
        fake__send_google_error(req, 404, NULL, "Requested entity was not found (no such project).");
        return;
    }
    if (req->entity.len > FAKE_MAX_SEND_BODY) {
        fk->stats.sends_rejected++;
        fake__send_google_error(req, 400, "INVALID_ARGUMENT", "Request body over 4096 bytes.");
        return;
    }
    root = json_parse_object(req->entity.base != NULL ? req->entity.base : "", req->entity.len,
                             FAKE_MAX_SEND_BODY, 64, NULL);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(msg, "token");
    if (!cJSON_IsObject(msg) || !cJSON_IsString(tok) || tok->valuestring[0] == '\0') {
        fk->stats.sends_rejected++;
        fake__send_google_error(req, 400, "INVALID_ARGUMENT",
                                "Invalid JSON payload: want {\"message\":{\"token\":string,...}}.");
        goto out;
    }
    size_t ri;
    fake_rule_t *rule = fake__rule_match(fk, tok->valuestring, &ri);
    if (rule != NULL) {
        fk->stats.sends_rejected++;
        int status = rule->status;
        const char *code = rule->error != NULL ? rule->error : fake__default_error_code(status);
        if (rule->retry_after > 0) {
            char *ra = h2o_mem_alloc_pool(&req->pool, 24);
            int n = snprintf(ra, 24, "%ld", rule->retry_after);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, ra, (size_t)n);
        }
        char message[128];
        snprintf(message, sizeof(message), "fake rule: %d %s", status, code != NULL ? code : "");
        if (rule->times > 0 && --rule->times == 0) {
            /* Gone after this answer; code points into the rule, so answer first. */
            fake__send_google_error(req, status, code, message);
            fake__rule_free(rule);
            memmove(&fk->rules[ri], &fk->rules[ri + 1], (fk->nrules - ri - 1) * sizeof(*fk->rules));
            fk->nrules--;
        } else {
            fake__send_google_error(req, status, code, message);
        }
        goto out;
    }
    fk->stats.sends_accepted++;
    fake__record(fk, tok->valuestring, msg, req->version >= 0x200);
    char name[160];
    snprintf(name, sizeof(name), "{\"name\":\"projects/%s/messages/%llu\"}", fk->project,
             (unsigned long long)++fk->msg_seq);
    fake__send(req, 200, name);
out:
    cJSON_Delete(root);
}

/* ================================================================ control */

static void fake__rules_add(fake_t *fk, h2o_req_t *req)
{
    cJSON *j = json_parse_object(req->entity.base != NULL ? req->entity.base : "", req->entity.len, 65536, 8, NULL);
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(j, "token");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(j, "status");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *times = cJSON_GetObjectItemCaseSensitive(j, "times");
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(j, "retry_after");
    if (!cJSON_IsString(token) || !cJSON_IsNumber(status) || status->valueint < 400 || status->valueint > 599 ||
        (error != NULL && !cJSON_IsString(error)) || (times != NULL && (!cJSON_IsNumber(times) || times->valueint < 1)) ||
        (ra != NULL && (!cJSON_IsNumber(ra) || ra->valueint < 0))) {
        fake__send(req, 400, "{\"error\":\"want {token, status 400..599, error?, times >= 1?, retry_after?}\"}");
        goto out;
    }
    if (fk->nrules == fk->caprules) {
        fk->caprules = fk->caprules ? 2 * fk->caprules : 16;
        fk->rules = xrealloc(fk->rules, fk->caprules * sizeof(*fk->rules));
    }
    fk->rules[fk->nrules++] = (fake_rule_t){
        .token = xstrdup(token->valuestring),
        .status = status->valueint,
        .error = error != NULL ? xstrdup(error->valuestring) : NULL,
        .times = times != NULL ? times->valueint : -1,
        .retry_after = ra != NULL ? ra->valueint : 0,
    };
    fake__send(req, 200, "{\"ok\":true}");
out:
    cJSON_Delete(j);
}

static void fake__reset(fake_t *fk, h2o_req_t *req)
{
    cJSON *j = req->entity.len > 0 ? json_parse_object(req->entity.base, req->entity.len, 65536, 8, NULL) : NULL;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "tokens")))
        fake__tokens_clear(fk, 0);
    cJSON_Delete(j);
    for (size_t i = 0; i < fk->nrules; i++)
        fake__rule_free(&fk->rules[i]);
    fk->nrules = 0;
    for (long i = 0; i < fk->max_records; i++) {
        free(fk->records[i].token);
        free(fk->records[i].message);
    }
    memset(fk->records, 0, (size_t)fk->max_records * sizeof(*fk->records));
    fk->total = 0;
    memset(&fk->stats, 0, sizeof(fk->stats));
    fk->token_ttl = fk->token_ttl_default;
    fake__send(req, 200, "{\"ok\":true}");
}

static void fake__config(fake_t *fk, h2o_req_t *req)
{
    cJSON *j = json_parse_object(req->entity.base != NULL ? req->entity.base : "", req->entity.len, 65536, 8, NULL);
    const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(j, "token_ttl");
    if (!cJSON_IsNumber(ttl) || ttl->valuedouble < 1 || ttl->valuedouble > 86400) {
        fake__send(req, 400, "{\"error\":\"want {\\\"token_ttl\\\": 1..86400}\"}");
    } else {
        fk->token_ttl = (long)ttl->valuedouble;
        fake__send(req, 200, "{\"ok\":true}");
    }
    cJSON_Delete(j);
}

static void fake__sends(fake_t *fk, h2o_req_t *req)
{
    char *token = fake__query_value(req, "token"), *since_s = fake__query_value(req, "since");
    uint64_t since = since_s != NULL ? strtoull(since_s, NULL, 10) : 0;
    uint64_t kept = fk->total < (uint64_t)fk->max_records ? fk->total : (uint64_t)fk->max_records;
    uint64_t first = fk->total - kept;
    if (since > first)
        first = since;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "total", (double)fk->total);
    cJSON *arr = cJSON_CreateArray();
    size_t n = 0;
    for (uint64_t i = first; i < fk->total; i++) {
        const fake_record_t *r = &fk->records[i % (uint64_t)fk->max_records];
        if (token != NULL && strcmp(token, r->token) != 0)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", (double)r->index);
        cJSON_AddStringToObject(o, "token", r->token);
        cJSON_AddItemToObject(o, "message", cJSON_CreateRaw(r->message));
        cJSON_AddNumberToObject(o, "at_ms", (double)r->at_ms);
        cJSON_AddStringToObject(o, "http", r->http2 ? "2" : "1.1");
        cJSON_AddItemToArray(arr, o);
        n++;
    }
    cJSON_AddNumberToObject(root, "count", (double)n);
    cJSON_AddItemToObject(root, "sends", arr);
    fake__send_json(req, 200, root);
    free(token);
    free(since_s);
}

static void fake__stats(fake_t *fk, h2o_req_t *req)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"tokens_issued\":%llu,\"token_rejected\":%llu,\"sends_accepted\":%llu,\"sends_rejected\":%llu,"
             "\"unauthenticated\":%llu,\"h2_requests\":%llu,\"http1_requests\":%llu,\"connections\":%llu,"
             "\"records\":%llu}",
             (unsigned long long)fk->stats.tokens_issued, (unsigned long long)fk->stats.token_rejected,
             (unsigned long long)fk->stats.sends_accepted, (unsigned long long)fk->stats.sends_rejected,
             (unsigned long long)fk->stats.unauthenticated, (unsigned long long)fk->stats.h2_requests,
             (unsigned long long)fk->stats.http1_requests, (unsigned long long)fk->stats.connections,
             (unsigned long long)(fk->total < (uint64_t)fk->max_records ? fk->total : (uint64_t)fk->max_records));
    fake__send(req, 200, body);
}

/* ================================================================ dispatch */

static int fake__on_req(h2o_handler_t *self, h2o_req_t *req)
{
    fake_t *fk = ((fake_handler_t *)self)->fake;
    h2o_iovec_t p = req->path_normalized;
    int post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    if (req->version >= 0x200)
        fk->stats.h2_requests++;
    else
        fk->stats.http1_requests++;
    static const char prefix[] = "/v1/projects/", suffix[] = "/messages:send";
    size_t pl = sizeof(prefix) - 1, sl = sizeof(suffix) - 1;
    if (post && p.len > pl + sl && memcmp(p.base, prefix, pl) == 0 && memcmp(p.base + p.len - sl, suffix, sl) == 0)
        fake__messages_send(fk, req, p.base + pl, p.len - pl - sl);
    else if (post && h2o_memis(p.base, p.len, H2O_STRLIT("/token")))
        fake__token(fk, req);
    else if (post && h2o_memis(p.base, p.len, H2O_STRLIT("/fake/rules")))
        fake__rules_add(fk, req);
    else if (post && h2o_memis(p.base, p.len, H2O_STRLIT("/fake/config")))
        fake__config(fk, req);
    else if (post && h2o_memis(p.base, p.len, H2O_STRLIT("/fake/reset")))
        fake__reset(fk, req);
    else if (get && h2o_memis(p.base, p.len, H2O_STRLIT("/fake/sends")))
        fake__sends(fk, req);
    else if (get && h2o_memis(p.base, p.len, H2O_STRLIT("/fake/stats")))
        fake__stats(fk, req);
    else
        fake__send_google_error(req, 404, NULL, "no such route");
    return 0;
}

static void fake__on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock == NULL)
        return;
    fake_t *fk = listener->data;
    fk->stats.connections++;
    int one = 1;
    setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h2o_accept(&fk->accept, sock);
}

/* ================================================================ setup */

static void fake__usage(FILE *out)
{
    fprintf(out, "usage: fcm-fake --public-key FILE --client-email EMAIL --project ID --token-uri URL\n"
                 "                [--listen 127.0.0.1:7083] [--token-ttl 3600] [--max-records 100000]\n"
                 "A local Firebase Cloud Messaging server (HTTP v1 sends, OAuth2 token endpoint, fault rules)\n"
                 "for tests and benchmarks; h2c (prior knowledge or Upgrade) and HTTP/1.1. Each option may also come\n"
                 "from the environment: FCM_FAKE_LISTEN, FCM_FAKE_PUBLIC_KEY, FCM_FAKE_CLIENT_EMAIL,\n"
                 "FCM_FAKE_PROJECT, FCM_FAKE_TOKEN_URI, FCM_FAKE_TOKEN_TTL, FCM_FAKE_MAX_RECORDS.\n"
                 "Control: POST /fake/rules, /fake/config, /fake/reset; GET /fake/sends, /fake/stats\n"
                 "(see the header of tests/fakes/fcm_fake.c).\n");
}

static int fake__parse_args(fake_t *fk, int argc, char **argv)
{
    static const struct {
        const char *opt, *env;
        size_t off;
    } strs[] = {
        {"--listen", "FCM_FAKE_LISTEN", offsetof(fake_t, listen)},
        {"--public-key", "FCM_FAKE_PUBLIC_KEY", offsetof(fake_t, public_key_file)},
        {"--client-email", "FCM_FAKE_CLIENT_EMAIL", offsetof(fake_t, client_email)},
        {"--project", "FCM_FAKE_PROJECT", offsetof(fake_t, project)},
        {"--token-uri", "FCM_FAKE_TOKEN_URI", offsetof(fake_t, token_uri)},
    };
    const char *ttl = getenv("FCM_FAKE_TOKEN_TTL"), *maxr = getenv("FCM_FAKE_MAX_RECORDS");
    fk->listen = "127.0.0.1:7083";
    for (size_t k = 0; k < CORE_ARRAY_SIZE(strs); k++) {
        const char *e = getenv(strs[k].env);
        if (e != NULL && e[0] != '\0')
            *(const char **)((char *)fk + strs[k].off) = e;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fake__usage(stdout);
            exit(0);
        }
        const char *eq = strchr(a, '=');
        size_t alen = eq != NULL ? (size_t)(eq - a) : strlen(a);
        if (eq != NULL)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        if (v == NULL) {
            fprintf(stderr, "fcm-fake: %s needs a value\n", a);
            return -1;
        }
        int known = 0;
        for (size_t k = 0; k < CORE_ARRAY_SIZE(strs); k++)
            if (strlen(strs[k].opt) == alen && strncmp(a, strs[k].opt, alen) == 0) {
                *(const char **)((char *)fk + strs[k].off) = v;
                known = 1;
            }
        if (alen == 11 && strncmp(a, "--token-ttl", alen) == 0)
            ttl = v, known = 1;
        if (alen == 13 && strncmp(a, "--max-records", alen) == 0)
            maxr = v, known = 1;
        if (!known) {
            fprintf(stderr, "fcm-fake: unknown option %.*s (--help)\n", (int)alen, a);
            return -1;
        }
    }
    char *end;
    fk->token_ttl_default = ttl != NULL ? strtol(ttl, &end, 10) : 3600;
    if (ttl != NULL && (*end != '\0' || fk->token_ttl_default < 1 || fk->token_ttl_default > 86400)) {
        fprintf(stderr, "fcm-fake: --token-ttl: want 1..86400 seconds, not %s\n", ttl);
        return -1;
    }
    fk->max_records = maxr != NULL ? strtol(maxr, &end, 10) : 100000;
    if (maxr != NULL && (*end != '\0' || fk->max_records < 1 || fk->max_records > 100000000)) {
        fprintf(stderr, "fcm-fake: --max-records: want 1..100000000, not %s\n", maxr);
        return -1;
    }
    if (fk->public_key_file == NULL || fk->client_email == NULL || fk->project == NULL || fk->token_uri == NULL) {
        fprintf(stderr, "fcm-fake: --public-key, --client-email, --project and --token-uri are required\n");
        fake__usage(stderr);
        return -1;
    }
    return 0;
}

static int fake__load_key(fake_t *fk)
{
    FILE *f = fopen(fk->public_key_file, "rb");
    if (f == NULL) {
        fprintf(stderr, "fcm-fake: %s: %s\n", fk->public_key_file, strerror(errno));
        return -1;
    }
    fk->public_key = xmalloc(65536);
    fk->public_key_len = fread(fk->public_key, 1, 65535, f);
    fk->public_key[fk->public_key_len] = '\0';
    fclose(f);
    if (strstr(fk->public_key, "PUBLIC KEY") == NULL) {
        fprintf(stderr, "fcm-fake: %s: not a PEM public key\n", fk->public_key_file);
        return -1;
    }
    return 0;
}

static void fake__on_signal(int sig)
{
    (void)sig;
    fake__stop = 1;
}

int main(int argc, char **argv)
{
    fake_t *fk = fake__state = xcalloc(1, sizeof(*fk)); /* the handler and the listener point at it */
    int rc = 2, fd = -1, one = 1, port;
    char host[128];
    h2o_socket_t *listener = NULL;
    if (fake__parse_args(fk, argc, argv) != 0 || fake__load_key(fk) != 0)
        goto out;
    fk->token_ttl = fk->token_ttl_default;
    fk->records = xcalloc((size_t)fk->max_records, sizeof(*fk->records));
    log_init("fcm-fake", LOG_INFO);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (admin_parse_listen(fk->listen, host, sizeof(host), &port) != 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "fcm-fake: bad --listen %s (want IPv4 host:port)\n", fk->listen);
        goto out;
    }
    sa.sin_port = htons((uint16_t)port);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, SOMAXCONN) != 0) {
        fprintf(stderr, "fcm-fake: cannot listen on %s: %s\n", fk->listen, strerror(errno));
        goto out;
    }
    rc = 1;

    h2o_config_init(&fk->globalconf);
    fk->globalconf.max_request_entity_size = 1024 * 1024;
    fk->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("fcm-fake"));
    h2o_hostconf_t *hc = h2o_config_register_host(&fk->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(hc, "/", 0);
    fake_handler_t *handler = (fake_handler_t *)h2o_create_handler(path, sizeof(*handler));
    handler->super.on_req = fake__on_req;
    handler->fake = fk;

    h2o_context_init(&fk->ctx, h2o_evloop_create(), &fk->globalconf);
    fk->accept.ctx = &fk->ctx;
    fk->accept.hosts = fk->globalconf.hosts;
    listener = h2o_evloop_socket_create(fk->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    fd = -1; /* the socket owns it */
    listener->data = fk;
    h2o_socket_read_start(listener, fake__on_accept);

    struct sigaction sact = {.sa_handler = fake__on_signal};
    sigaction(SIGTERM, &sact, NULL);
    sigaction(SIGINT, &sact, NULL);
    log_info(NULL, "listening on %s (h2c, HTTP/1.1): project %s, client %s, token uri %s, token ttl %ld s",
             fk->listen, fk->project, fk->client_email, fk->token_uri, fk->token_ttl);
    while (!fake__stop)
        h2o_evloop_run(fk->ctx.loop, 100);
    /* Stop accepting, let clients see their connections close (GOAWAY), then leave. */
    h2o_socket_read_stop(listener);
    h2o_socket_close(listener);
    h2o_context_request_shutdown(&fk->ctx);
    for (uint64_t until = core_now_ms() + 300; core_now_ms() < until;)
        h2o_evloop_run(fk->ctx.loop, 10);
    log_info(NULL, "stopped: %llu sends accepted, %llu tokens issued", (unsigned long long)fk->stats.sends_accepted,
             (unsigned long long)fk->stats.tokens_issued);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    fake__tokens_clear(fk, 0);
    for (size_t i = 0; i < fk->nrules; i++)
        fake__rule_free(&fk->rules[i]);
    free(fk->rules);
    for (long i = 0; fk->records != NULL && i < fk->max_records; i++) {
        free(fk->records[i].token);
        free(fk->records[i].message);
    }
    free(fk->records);
    free(fk->public_key);
    return rc;
}
