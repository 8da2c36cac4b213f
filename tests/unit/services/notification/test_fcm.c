/* test_fcm.c -- the FCM client against the FCM fake of the test stack (TEST_FCM_URL, TEST_FCM_CREDENTIALS):
 * tokens, sends, retries, error classes, HTTP/2 multiplexing, and the fake's own assertion checks. */

/* The file under test, with its static helpers. */
#include "../../../../services/notification/fcm.c"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <libgen.h>
#include <unistd.h>

#include "../../testutil.h"

/* ================================================================ helpers */

static const char *env_or_fail(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v != NULL && v[0] != '\0', "%s is not set (run under deploy/local/test-env.sh with the test stack's infra up)",
              name);
    return v;
}

/* A blocking request to the fake's control or token routes; returns the parsed answer (caller
 * frees), *status set. */
static cJSON *fake_call(const char *method, const char *path, const char *body, const char *content_type,
                        long *status)
{
    fcm__buf_t resp = {0};
    char *url = xasprintf("%s%s", env_or_fail("TEST_FCM_URL"), path);
    struct curl_slist *h = NULL;
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fcm__on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    if (body != NULL) {
        char *ct = xasprintf("Content-Type: %s", content_type != NULL ? content_type : "application/json");
        h = curl_slist_append(NULL, ct);
        free(ct);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    CURLcode cc = curl_easy_perform(c);
    cr_assert_eq(cc, CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    cJSON *j = cJSON_Parse(resp.p != NULL ? resp.p : "");
    cr_assert_not_null(j, "%s %s: not JSON: %s", method, path, resp.p != NULL ? resp.p : "");
    free(resp.p);
    free(url);
    return j;
}

static void fake_post(const char *path, const char *body)
{
    long status = 0;
    cJSON *j = fake_call("POST", path, body, NULL, &status);
    cr_assert_eq(status, 200, "POST %s %s: %ld", path, body, status);
    cJSON_Delete(j);
}

static double fake_stat(const char *name)
{
    long status = 0;
    cJSON *j = fake_call("GET", "/fake/stats", NULL, NULL, &status);
    cr_assert_eq(status, 200);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    cr_assert(cJSON_IsNumber(v), "no stat %s", name);
    double d = v->valuedouble;
    cJSON_Delete(j);
    return d;
}

/* The fake's records of token; caller frees. */
static cJSON *fake_sends(const char *token)
{
    long status = 0;
    char *path = xasprintf("/fake/sends?token=%s", token);
    cJSON *j = fake_call("GET", path, NULL, NULL, &status);
    free(path);
    cr_assert_eq(status, 200);
    return j;
}

static int fake_send_count(const char *token)
{
    cJSON *j = fake_sends(token);
    int n = cJSON_GetObjectItemCaseSensitive(j, "count")->valueint;
    cJSON_Delete(j);
    return n;
}

/* A device token of the test's own. */
static void test_token(char *out, size_t len, const char *what)
{
    char uuid[CORE_UUID_BUFSZ];
    core_uuid(uuid);
    snprintf(out, len, "%s-%s", what, uuid);
}

typedef struct {
    int calls;
    fcm_result_t result;
    int status;
    char detail[320];
    uint64_t at_ms;
} outcome_t;

static void on_done(void *ud, fcm_result_t result, int status, const char *detail)
{
    outcome_t *o = ud;
    o->calls++;
    o->result = result;
    o->status = status;
    snprintf(o->detail, sizeof(o->detail), "%s", detail);
    o->at_ms = core_now_ms();
}

static fcm_t *open_client(fcm_conf_t conf)
{
    char err[256] = "";
    conf.credentials_file = env_or_fail("TEST_FCM_CREDENTIALS");
    conf.endpoint = env_or_fail("TEST_FCM_URL");
    fcm_t *f = fcm_open(&conf, err, sizeof(err));
    cr_assert_not_null(f, "fcm_open: %s", err);
    return f;
}

/* Steps until nothing is pending (fails after max_ms). */
static void drive(fcm_t *f, unsigned max_ms)
{
    uint64_t end = core_now_ms() + max_ms;
    while (fcm_pending(f) > 0 && core_now_ms() < end)
        cr_assert_geq(fcm_step(f, NULL, 0, 100), 0);
    cr_assert_eq(fcm_pending(f), 0, "still %zu pending after %u ms", fcm_pending(f), max_ms);
}

/* One send of message to token, driven to its end. */
static outcome_t send_one(fcm_t *f, const char *token, const char *message, unsigned max_ms)
{
    outcome_t o = {0};
    cr_assert_eq(fcm_send(f, token, message, on_done, &o), 0);
    cr_assert_eq(o.calls, 0, "fcm_send called done itself");
    drive(f, max_ms);
    cr_assert_eq(o.calls, 1, "done called %d times", o.calls);
    return o;
}

static void setup(void)
{
    env_or_fail("TEST_FCM_URL");
    env_or_fail("TEST_FCM_CREDENTIALS");
    fake_post("/fake/reset", "{\"tokens\":true}");
}

TestSuite(fcm, .init = setup, .timeout = 60);

/* ================================================================ sends and tokens */

Test(fcm, send_reaches_the_fake_with_body_and_bearer)
{
    char tok[96];
    test_token(tok, sizeof(tok), "basic");
    fcm_t *f = open_client((fcm_conf_t){0});
    outcome_t o = send_one(f, tok,
                           "{\"notification\":{\"title\":\"Hi\",\"body\":\"alice liked your photo\"},"
                           "\"data\":{\"post_id\":\"p1\"},\"token\":\"not-this-one\"}",
                           10000);
    cr_assert_eq(o.result, FCM_SENT, "result %d %d %s", o.result, o.status, o.detail);
    cr_assert_eq(o.status, 200);

    cJSON *j = fake_sends(tok);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(j, "count")->valueint, 1);
    const cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "sends"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(rec, "message");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(msg, "token")->valuestring, tok);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(msg, "notification"), "title")
                         ->valuestring,
                     "Hi");
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(msg, "data"), "post_id")->valuestring, "p1");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(rec, "http")->valuestring, "2", "not sent over HTTP/2");
    cJSON_Delete(j);
    /* The fake accepts a send only with a bearer it issued: one token, no 401. */
    cr_assert_eq(fake_stat("tokens_issued"), 1);
    cr_assert_eq(fake_stat("unauthenticated"), 0);
    fcm_stats_t st;
    fcm_stats(f, &st);
    cr_assert_eq(st.sent, 1);
    cr_assert_eq(st.tokens_fetched, 1);
    fcm_close(f);
}

Test(fcm, token_fetched_once_and_reused)
{
    char tok[96];
    test_token(tok, sizeof(tok), "reuse");
    fcm_t *f = open_client((fcm_conf_t){0});
    for (int i = 0; i < 40; i++) {
        outcome_t o = send_one(f, tok, "{\"data\":{\"n\":\"1\"}}", 10000);
        cr_assert_eq(o.result, FCM_SENT, "send %d: %d %s", i, o.status, o.detail);
    }
    cr_assert_eq(fake_send_count(tok), 40);
    cr_assert_eq(fake_stat("tokens_issued"), 1);
    fcm_stats_t st;
    fcm_stats(f, &st);
    cr_assert_eq(st.tokens_fetched, 1);
    cr_assert_eq(st.sent, 40);
    fcm_close(f);
}

Test(fcm, short_lived_token_is_renewed)
{
    char tok[96];
    test_token(tok, sizeof(tok), "renew");
    fake_post("/fake/config", "{\"token_ttl\":3}");
    fcm_t *f = open_client((fcm_conf_t){0});
    cr_assert_eq(send_one(f, tok, "{}", 10000).result, FCM_SENT);
    cr_assert_eq(fake_stat("tokens_issued"), 1);
    /* Past the renewal point (half of 3 s) but before expiry: renewed, the old one still serves. */
    core_sleep_ms(1700, NULL);
    cr_assert_eq(send_one(f, tok, "{}", 10000).result, FCM_SENT);
    /* Past the expiry of everything issued so far would be 3 s after the second token. */
    core_sleep_ms(3300, NULL);
    outcome_t o = send_one(f, tok, "{}", 10000);
    cr_assert_eq(o.result, FCM_SENT, "%d %s", o.status, o.detail);
    cr_assert_eq(fake_send_count(tok), 3);
    cr_assert_geq(fake_stat("tokens_issued"), 3);
    cr_assert_eq(fake_stat("unauthenticated"), 0, "a send went out with an expired token");
    fcm_stats_t st;
    fcm_stats(f, &st);
    cr_assert_eq(st.tokens_fetched, fake_stat("tokens_issued"));
    fcm_close(f);
}

Test(fcm, unauthenticated_send_refetches_the_token_and_succeeds)
{
    char tok[96];
    test_token(tok, sizeof(tok), "401");
    fcm_t *f = open_client((fcm_conf_t){.max_attempts = 1}); /* a 401 must not spend an attempt */
    cr_assert_eq(send_one(f, tok, "{}", 10000).result, FCM_SENT);
    fake_post("/fake/reset", "{\"tokens\":true}"); /* the fake forgets the token the client holds */
    outcome_t o = send_one(f, tok, "{\"data\":{\"again\":\"yes\"}}", 10000);
    cr_assert_eq(o.result, FCM_SENT, "%d %d %s", o.result, o.status, o.detail);
    cr_assert_eq(fake_stat("unauthenticated"), 1);
    cr_assert_eq(fake_stat("tokens_issued"), 1);
    cr_assert_eq(fake_send_count(tok), 1);
    fcm_stats_t st;
    fcm_stats(f, &st);
    cr_assert_eq(st.tokens_fetched, 2);
    cr_assert_eq(st.retried, 1);
    fcm_close(f);
}

/* ================================================================ error classes and retries */

Test(fcm, unregistered_token)
{
    char tok[96], rule[256];
    test_token(tok, sizeof(tok), "dead");
    snprintf(rule, sizeof(rule), "{\"token\":\"%s\",\"status\":404,\"error\":\"UNREGISTERED\"}", tok);
    fake_post("/fake/rules", rule);
    fcm_t *f = open_client((fcm_conf_t){.backoff_ms = 10});
    outcome_t o = send_one(f, tok, "{}", 10000);
    cr_assert_eq(o.result, FCM_UNREGISTERED, "%d %d %s", o.result, o.status, o.detail);
    cr_assert_eq(o.status, 404);
    cr_assert(strstr(o.detail, "UNREGISTERED") != NULL, "%s", o.detail);
    cr_assert_eq(fake_stat("sends_rejected"), 1, "retried a dead token");
    fcm_stats_t st;
    fcm_stats(f, &st);
    cr_assert_eq(st.unregistered, 1);
    fcm_close(f);
}

Test(fcm, invalid_argument_and_sender_mismatch_are_invalid)
{
    char t1[96], t2[96], rule[256];
    test_token(t1, sizeof(t1), "bad");
    test_token(t2, sizeof(t2), "mismatch");
    snprintf(rule, sizeof(rule), "{\"token\":\"%s\",\"status\":400,\"error\":\"INVALID_ARGUMENT\"}", t1);
    fake_post("/fake/rules", rule);
    snprintf(rule, sizeof(rule), "{\"token\":\"%s\",\"status\":403,\"error\":\"SENDER_ID_MISMATCH\"}", t2);
    fake_post("/fake/rules", rule);
    fcm_t *f = open_client((fcm_conf_t){.backoff_ms = 10});
    outcome_t o1 = {0}, o2 = {0};
    cr_assert_eq(fcm_send(f, t1, "{}", on_done, &o1), 0);
    cr_assert_eq(fcm_send(f, t2, "{}", on_done, &o2), 0);
    drive(f, 10000);
    cr_assert_eq(o1.calls, 1);
    cr_assert_eq(o1.result, FCM_INVALID, "%d %d %s", o1.result, o1.status, o1.detail);
    cr_assert_eq(o1.status, 400);
    cr_assert(strstr(o1.detail, "INVALID_ARGUMENT") != NULL, "%s", o1.detail);
    cr_assert_eq(o2.calls, 1);
    cr_assert_eq(o2.result, FCM_INVALID, "%d %d %s", o2.result, o2.status, o2.detail);
    cr_assert_eq(o2.status, 403);
    cr_assert_eq(fake_stat("sends_rejected"), 2, "retried a permanent error");
    fcm_close(f);
}

Test(fcm, too_many_requests_honours_retry_after)
{
    char tok[96], rule[256];
    test_token(tok, sizeof(tok), "429");
    snprintf(rule, sizeof(rule), "{\"token\":\"%s\",\"status\":429,\"times\":1,\"retry_after\":1}", tok);
    fake_post("/fake/rules", rule);
    fcm_t *f = open_client((fcm_conf_t){.backoff_ms = 20, .max_attempts = 3});
    uint64_t t0 = core_now_ms();
    outcome_t o = send_one(f, tok, "{}", 10000);
    cr_assert_eq(o.result, FCM_SENT, "%d %d %s", o.result, o.status, o.detail);
    cr_assert_geq(o.at_ms - t0, 1000, "retried after %llu ms, before Retry-After: 1", (unsigned long long)(o.at_ms - t0));
    cr_assert_eq(fake_send_count(tok), 1);
    cr_assert_eq(fake_stat("sends_rejected"), 1);
    fcm_stats_t st;
    fcm_stats(f, &st);
    cr_assert_eq(st.retried, 1);
    fcm_close(f);
}

Test(fcm, unavailable_twice_then_sent)
{
    char tok[96], rule[256];
    test_token(tok, sizeof(tok), "503x2");
    snprintf(rule, sizeof(rule), "{\"token\":\"%s\",\"status\":503,\"times\":2}", tok);
    fake_post("/fake/rules", rule);
    fcm_t *f = open_client((fcm_conf_t){.backoff_ms = 50, .max_attempts = 3});
    uint64_t t0 = core_now_ms();
    outcome_t o = send_one(f, tok, "{}", 10000);
    cr_assert_eq(o.result, FCM_SENT, "%d %d %s", o.result, o.status, o.detail);
    cr_assert_geq(o.at_ms - t0, 150, "backoff 50 then 100 ms: done after %llu ms", (unsigned long long)(o.at_ms - t0));
    cr_assert_eq(fake_stat("sends_rejected"), 2);
    cr_assert_eq(fake_send_count(tok), 1);
    fcm_stats_t st;
    fcm_stats(f, &st);
    cr_assert_eq(st.retried, 2);
    cr_assert_eq(st.sent, 1);
    fcm_close(f);
}

Test(fcm, unavailable_forever_gives_up_after_max_attempts)
{
    char tok[96], rule[256];
    test_token(tok, sizeof(tok), "503");
    snprintf(rule, sizeof(rule), "{\"token\":\"%s\",\"status\":503}", tok);
    fake_post("/fake/rules", rule);
    fcm_t *f = open_client((fcm_conf_t){.backoff_ms = 20, .max_attempts = 4});
    outcome_t o = send_one(f, tok, "{}", 10000);
    cr_assert_eq(o.result, FCM_GAVE_UP, "%d %d %s", o.result, o.status, o.detail);
    cr_assert_eq(o.status, 503);
    cr_assert(strstr(o.detail, "UNAVAILABLE") != NULL, "%s", o.detail);
    cr_assert_eq(fake_stat("sends_rejected"), 4, "want exactly max_attempts tries");
    cr_assert_eq(fake_send_count(tok), 0);
    fcm_stats_t st;
    fcm_stats(f, &st);
    cr_assert_eq(st.gave_up, 1);
    cr_assert_eq(st.retried, 3);
    fcm_close(f);
}

Test(fcm, transport_errors_are_retried_then_given_up)
{
    /* An endpoint nothing listens on, with the real token endpoint. */
    char err[256], url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", tu_free_port());
    fcm_conf_t conf = {.credentials_file = env_or_fail("TEST_FCM_CREDENTIALS"), .endpoint = url, .backoff_ms = 10,
                       .max_attempts = 3};
    fcm_t *f = fcm_open(&conf, err, sizeof(err));
    cr_assert_not_null(f, "%s", err);
    outcome_t o = send_one(f, "t-nowhere", "{}", 10000);
    cr_assert_eq(o.result, FCM_GAVE_UP);
    cr_assert_eq(o.status, 0);
    cr_assert(o.detail[0] != '\0');
    fcm_stats_t st;
    fcm_stats(f, &st);
    cr_assert_eq(st.retried, 2);
    fcm_close(f);
}

/* ================================================================ HTTP/2 multiplexing */

typedef struct {
    int done, sent;
} tally_t;

static void on_tally(void *ud, fcm_result_t result, int status, const char *detail)
{
    (void)status;
    (void)detail;
    tally_t *t = ud;
    t->done++;
    t->sent += result == FCM_SENT;
}

Test(fcm, five_hundred_concurrent_sends_share_few_connections)
{
    char prefix[96];
    test_token(prefix, sizeof(prefix), "many");
    fcm_t *f = open_client((fcm_conf_t){.max_in_flight = 500});
    tally_t t = {0};
    for (int i = 0; i < 500; i++) {
        char tok[128];
        snprintf(tok, sizeof(tok), "%s-%d", prefix, i);
        cr_assert_eq(fcm_send(f, tok, "{\"data\":{\"i\":\"x\"}}", on_tally, &t), 0);
    }
    cr_assert_eq(fcm_pending(f), 500);
    drive(f, 30000);
    cr_assert_eq(t.done, 500);
    cr_assert_eq(t.sent, 500);
    cr_assert_eq(fake_stat("sends_accepted"), 500);
    cr_assert_geq(fake_stat("h2_requests"), 500, "sends did not go over HTTP/2");
    /* h2o allows 100 streams a connection: 5 for the sends, one for the token, one for our stats
     * calls; anything near one connection per send would be far above. */
    double conns = fake_stat("connections");
    cr_assert_leq(conns, 16, "%g connections for 500 sends", conns);
    fcm_close(f);
}

/* ================================================================ refusals */

Test(fcm, send_refuses_non_objects_and_bodies_over_4096_bytes)
{
    const char *tok = "t-size";
    fcm_t *f = open_client((fcm_conf_t){0});
    outcome_t o = {0};
    cr_assert_eq(fcm_send(f, tok, "[1,2]", on_done, &o), -1);
    cr_assert_eq(fcm_send(f, tok, "{\"data\":", on_done, &o), -1);
    cr_assert_eq(fcm_send(f, tok, "{} trailing", on_done, &o), -1);
    cr_assert_eq(fcm_send(f, "", "{}", on_done, &o), -1);
    /* {"message":{"data":{"k":"<pad>"},"token":"t-size"}} is exactly 4096 bytes, then one more. */
    size_t fixed = strlen("{\"message\":{\"data\":{\"k\":\"\"},\"token\":\"\"}}") + strlen(tok);
    size_t pad = FCM_MAX_BODY - fixed;
    char *msg = xmalloc(pad + 64);
    for (int extra = 1; extra >= 0; extra--) {
        int n = snprintf(msg, pad + 64, "{\"data\":{\"k\":\"");
        memset(msg + n, 'a', pad + (size_t)extra);
        strcpy(msg + n + pad + (size_t)extra, "\"}}");
        if (extra)
            cr_assert_eq(fcm_send(f, tok, msg, on_done, &o), -1, "a 4097-byte body was accepted");
        else
            cr_assert_eq(fcm_send(f, tok, msg, on_done, &o), 0, "a 4096-byte body was refused");
    }
    free(msg);
    cr_assert_eq(o.calls, 0, "done called for a refused send");
    drive(f, 10000);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.result, FCM_SENT, "%d %s", o.status, o.detail);
    fcm_close(f);
}

static char *write_temp(const char *content)
{
    char *path = xstrdup("/tmp/fcm-test-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

Test(fcm, open_refuses_bad_key_files)
{
    char err[256];
    const char *bad[] = {
        "not json",
        "{\"project_id\":\"p\",\"client_email\":\"a@b\",\"token_uri\":\"http://x/token\"}",
        "{\"project_id\":\"p\",\"client_email\":\"a@b\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END "
        "PRIVATE KEY-----\\n\",\"token_uri\":\"http://x/token\"}",
        "{\"project_id\":\"p/../q\",\"client_email\":\"a@b\",\"private_key\":\"x\",\"token_uri\":\"http://x/token\"}",
    };
    for (size_t i = 0; i < CORE_ARRAY_SIZE(bad); i++) {
        char *path = write_temp(bad[i]);
        err[0] = '\0';
        fcm_conf_t conf = {.credentials_file = path};
        fcm_t *f = fcm_open(&conf, err, sizeof(err));
        cr_assert_null(f, "accepted key file %zu", i);
        cr_assert(err[0] != '\0');
        unlink(path);
        free(path);
    }
    fcm_conf_t missing = {.credentials_file = "/nonexistent/fcm.json"};
    cr_assert_null(fcm_open(&missing, err, sizeof(err)));
    cr_assert(strstr(err, "/nonexistent/fcm.json") != NULL, "%s", err);
}

/* A 404 that is not about the token (here: a project FCM does not know, a configuration mistake)
 * must not make the daemon delete device tokens. */
Test(fcm, not_found_of_another_kind_is_invalid_not_unregistered)
{
    char err[256];
    size_t len;
    char *file = fcm__read_file(env_or_fail("TEST_FCM_CREDENTIALS"), &len, err, sizeof(err));
    cr_assert_not_null(file, "%s", err);
    cJSON *j = cJSON_Parse(file);
    free(file);
    cJSON_ReplaceItemInObjectCaseSensitive(j, "project_id", cJSON_CreateString("no-such-project"));
    char *creds = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    char *path = write_temp(creds);
    free(creds);
    fcm_conf_t conf = {.credentials_file = path, .endpoint = env_or_fail("TEST_FCM_URL"), .backoff_ms = 10};
    fcm_t *f = fcm_open(&conf, err, sizeof(err));
    cr_assert_not_null(f, "%s", err);
    outcome_t o = send_one(f, "t-other-project", "{}", 10000);
    cr_assert_eq(o.status, 404);
    cr_assert_eq(o.result, FCM_INVALID, "%d %s", o.result, o.detail);
    fcm_close(f);
    unlink(path);
    free(path);
}

Test(fcm, failing_token_endpoint_gives_up_waiting_sends)
{
    /* The real key, but a token_uri nothing listens on. */
    char *creds = NULL, err[256], uri[64];
    size_t len;
    char *file = fcm__read_file(env_or_fail("TEST_FCM_CREDENTIALS"), &len, err, sizeof(err));
    cr_assert_not_null(file, "%s", err);
    cJSON *j = cJSON_Parse(file);
    free(file);
    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/token", tu_free_port());
    cJSON_ReplaceItemInObjectCaseSensitive(j, "token_uri", cJSON_CreateString(uri));
    creds = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    char *path = write_temp(creds);
    free(creds);
    fcm_conf_t conf = {.credentials_file = path, .endpoint = env_or_fail("TEST_FCM_URL"), .backoff_ms = 10,
                       .max_attempts = 3};
    fcm_t *f = fcm_open(&conf, err, sizeof(err));
    cr_assert_not_null(f, "%s", err);
    outcome_t o = send_one(f, "t-no-token", "{}", 10000);
    cr_assert_eq(o.result, FCM_GAVE_UP);
    cr_assert(strstr(o.detail, "no access token") != NULL, "%s", o.detail);
    fcm_stats_t st;
    fcm_stats(f, &st);
    cr_assert_eq(st.token_failures, 3);
    cr_assert_eq(st.tokens_fetched, 0);
    fcm_close(f);
    unlink(path);
    free(path);
}

/* ================================================================ close, extra fds */

Test(fcm, close_gives_up_pending_sends)
{
    fcm_t *f = open_client((fcm_conf_t){0});
    outcome_t o[3] = {0};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fcm_send(f, "t-close", "{}", on_done, &o[i]), 0);
    fcm_step(f, NULL, 0, 0); /* the token request is under way, the sends wait for it */
    cr_assert_eq(fcm_pending(f), 3);
    fcm_close(f);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(o[i].calls, 1);
        cr_assert_eq(o[i].result, FCM_GAVE_UP);
    }
}

Test(fcm, step_reports_readable_extra_fds)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fcm_t *f = open_client((fcm_conf_t){0});
    uint64_t t0 = core_now_ms();
    cr_assert_eq(fcm_step(f, &p[0], 1, 200), 0);
    cr_assert_geq(core_now_ms() - t0, 150, "fcm_step did not wait with nothing to do");
    cr_assert_eq(write(p[1], "x", 1), 1);
    t0 = core_now_ms();
    cr_assert_eq(fcm_step(f, &p[0], 1, 5000), 1);
    cr_assert_lt(core_now_ms() - t0, 1000, "fcm_step slept through a readable fd");
    fcm_close(f);
    close(p[0]);
    close(p[1]);
}

/* ================================================================ the fake's assertion checks */

/* An assertion signed with the service account's key (or with alg/key given), claims as given. */
static char *craft_assertion(jwt_alg_t alg, const char *key, const char *iss, const char *scope, const char *aud,
                             long iat, long exp)
{
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_new(&jwt), 0);
    jwt_add_grant(jwt, "iss", iss);
    jwt_add_grant(jwt, "scope", scope);
    jwt_add_grant(jwt, "aud", aud);
    jwt_add_grant_int(jwt, "iat", iat);
    jwt_add_grant_int(jwt, "exp", exp);
    cr_assert_eq(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)), 0);
    char *s = jwt_encode_str(jwt);
    cr_assert_not_null(s);
    jwt_free(jwt);
    return s;
}

static long token_status(const char *assertion, char *why, size_t whylen)
{
    long status = 0;
    char *form = xasprintf("grant_type=%s&assertion=%s", FCM__GRANT, assertion);
    cJSON *j = fake_call("POST", "/token", form, "application/x-www-form-urlencoded", &status);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "error_description");
    snprintf(why, whylen, "%s", cJSON_IsString(d) ? d->valuestring : "");
    if (status != 200)
        cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "error")->valuestring, "invalid_grant");
    cJSON_Delete(j);
    free(form);
    return status;
}

Test(fcm, fake_refuses_assertions_with_wrong_claims)
{
    char err[256], why[256];
    size_t len;
    const char *creds_path = env_or_fail("TEST_FCM_CREDENTIALS");
    char *file = fcm__read_file(creds_path, &len, err, sizeof(err));
    cr_assert_not_null(file, "%s", err);
    cJSON *creds = cJSON_Parse(file);
    free(file);
    const char *key = fcm__json_str(creds, "private_key"), *email = fcm__json_str(creds, "client_email");
    const char *aud = fcm__json_str(creds, "token_uri");
    char *dir = xstrdup(creds_path);
    char *pub_path = xasprintf("%s/fcm-public.pem", dirname(dir));
    char *pub = fcm__read_file(pub_path, &len, err, sizeof(err));
    cr_assert_not_null(pub, "%s", err);
    long now = (long)time(NULL);

    struct {
        const char *what;
        jwt_alg_t alg;
        const char *key, *iss, *scope, *aud;
        long iat, exp;
        long want;
    } cases[] = {
        {"good", JWT_ALG_RS256, key, email, FCM__SCOPE, aud, now, now + 3600, 200},
        {"other iss", JWT_ALG_RS256, key, "mallory@evil.example", FCM__SCOPE, aud, now, now + 3600, 400},
        {"other scope", JWT_ALG_RS256, key, email, "https://www.googleapis.com/auth/cloud-platform", aud, now,
         now + 3600, 400},
        {"other aud", JWT_ALG_RS256, key, email, FCM__SCOPE, "https://oauth2.googleapis.com/token", now, now + 3600,
         400},
        {"iat in the future", JWT_ALG_RS256, key, email, FCM__SCOPE, aud, now + 600, now + 1200, 400},
        {"expired", JWT_ALG_RS256, key, email, FCM__SCOPE, aud, now - 100, now - 10, 400},
        {"lifetime over an hour", JWT_ALG_RS256, key, email, FCM__SCOPE, aud, now, now + 7200, 400},
        /* HS256 keyed with the public key PEM verifies in libjwt: the alg check must refuse it. */
        {"HS256 with the public key", JWT_ALG_HS256, pub, email, FCM__SCOPE, aud, now, now + 3600, 400},
    };
    double rejected = 0;
    for (size_t i = 0; i < CORE_ARRAY_SIZE(cases); i++) {
        char *a = craft_assertion(cases[i].alg, cases[i].key, cases[i].iss, cases[i].scope, cases[i].aud,
                                  cases[i].iat, cases[i].exp);
        long st = token_status(a, why, sizeof(why));
        cr_assert_eq(st, cases[i].want, "%s: HTTP %ld (%s)", cases[i].what, st, why);
        rejected += st != 200;
        free(a);
    }
    /* A tampered signature. */
    char *a = craft_assertion(JWT_ALG_RS256, key, email, FCM__SCOPE, aud, now, now + 3600);
    size_t alen = strlen(a);
    a[alen - 5] = a[alen - 5] == 'A' ? 'B' : 'A';
    cr_assert_eq(token_status(a, why, sizeof(why)), 400, "tampered signature accepted");
    rejected++;
    free(a);
    cr_assert_eq(fake_stat("token_rejected"), rejected);
    cr_assert_eq(fake_stat("tokens_issued"), 1);
    free(pub);
    free(pub_path);
    free(dir);
    cJSON_Delete(creds);
}

Test(fcm, fake_refuses_sends_without_a_valid_bearer)
{
    long status = 0;
    cJSON *j = fake_call("POST", "/v1/projects/photo-test/messages:send", "{\"message\":{\"token\":\"x\"}}", NULL,
                         &status);
    cr_assert_eq(status, 401);
    cr_assert_str_eq(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "status")->valuestring,
        "UNAUTHENTICATED");
    cJSON_Delete(j);
    cr_assert_eq(fake_stat("unauthenticated"), 1);
}
