/* test_rpc_client.c -- RPC over direct reply-to against a real RabbitMQ (TEST_AMQP_URL): mq_serve_rpc,
 * the client's relaying of fields, correlation of many concurrent calls, timeouts and failures. */
#include "mq/mq.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "mq_test.h"

/* ================================================================ the server under test */

/* Handlers by method: unit.echo answers 200 with the request body; unit.describe answers 201
 * with the request's fields as JSON, a content type and extra headers; unit.nostatus leaves
 * status 0; unit.slow sleeps 400 ms, then echoes. */
typedef struct {
    pthread_mutex_t lock;
    int calls;
} test_server_t;

static void test_add(cJSON *o, const char *key, const char *value)
{
    if (value != NULL)
        cJSON_AddStringToObject(o, key, value);
    else
        cJSON_AddNullToObject(o, key);
}

static void test_rpc_handler(mq_t *mq, const mq_message_t *req, mq_reply_t *rep, void *ud)
{
    (void)mq;
    test_server_t *srv = ud;
    pthread_mutex_lock(&srv->lock);
    srv->calls++;
    pthread_mutex_unlock(&srv->lock);
    const char *method = req->type != NULL ? req->type : "";
    if (strcmp(method, "unit.echo") == 0 || strcmp(method, "unit.slow") == 0) {
        if (strcmp(method, "unit.slow") == 0)
            core_sleep_ms(400, NULL);
        rep->status = 200;
        rep->body = malloc(req->body_len + 1);
        memcpy(rep->body, req->body, req->body_len);
        rep->body_len = req->body_len;
    } else if (strcmp(method, "unit.describe") == 0) {
        cJSON *o = cJSON_CreateObject();
        test_add(o, "type", req->type);
        test_add(o, "request_id", req->request_id);
        test_add(o, "user_id", req->user_id);
        test_add(o, "params", req->params);
        test_add(o, "query", req->query);
        test_add(o, "content_type", req->content_type);
        test_add(o, "reply_to", req->reply_to);
        test_add(o, "correlation_id", req->correlation_id);
        test_add(o, "app_id", req->app_id);
        test_add(o, "queue", req->queue);
        test_add(o, "exchange", req->exchange);
        test_add(o, "routing_key", req->routing_key);
        cJSON_AddNumberToObject(o, "timestamp", (double)req->timestamp);
        char *body = xasprintf("%.*s", (int)req->body_len, req->body_len > 0 ? (const char *)req->body : "");
        cJSON_AddStringToObject(o, "body", body);
        free(body);
        rep->status = 201;
        rep->content_type = strdup("application/vnd.unit+json");
        rep->body = cJSON_PrintUnformatted(o);
        rep->body_len = strlen(rep->body);
        rep->headers_json = strdup("{\"retry-after\":\"30\",\"x-unit\":\"yes\"}");
        cJSON_Delete(o);
    } else if (strcmp(method, "unit.nostatus") == 0) {
        rep->body = strdup("forgotten");
        rep->body_len = 9;
    } else {
        rep->status = 404;
    }
}

typedef struct {
    char service[128];
    test_server_t srv;
    mqt_runner_t run;
    mq_rpc_client_t *client;
} test_rpc_t;

/* The service's queue is declared first, so requests sent before the server consumes wait for it. */
static void test_rpc_up(test_rpc_t *t, const char *what)
{
    mqt_name(t->service, sizeof(t->service), what);
    mqt_declare_rpc_queue(t->service);
    pthread_mutex_init(&t->srv.lock, NULL);
    t->srv.calls = 0;
    mq_t *server = mqt_new("unit-rpc-server", 0, 0);
    mq_serve_rpc(server, t->service, test_rpc_handler, &t->srv);
    mqt_runner_start(&t->run, server);
    mq_conf_t conf = {.url = mqt_url, .app_id = "unit-rpc-client"};
    t->client = mq_rpc_client_start(&conf);
    cr_assert_not_null(t->client);
    cr_assert_eq(mq_rpc_client_connected(t->client), 1, "the client connects during start");
}

static void test_rpc_down(test_rpc_t *t)
{
    mq_rpc_client_stop(t->client);
    mqt_runner_stop(&t->run);
    char q[160];
    snprintf(q, sizeof(q), "%s.rpc", t->service);
    amqp_connection_state_t raw = mqt_raw_open();
    mqt_raw_delete_queue(raw, q);
    mqt_raw_close(raw);
}

static mq_rpc_request_t test_request(const char *service, const char *method, const char *body)
{
    return (mq_rpc_request_t){
        .service = service,
        .method = method,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .timeout_ms = 5000,
    };
}

/* Calls back once per call; counts and keeps the result for the test to inspect. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int callbacks;
    mq_rpc_result_t res;
    uint64_t at_ms;
} test_call_t;

static void test_call_init(test_call_t *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
}

static void test_call_cb(void *ud, mq_rpc_result_t *res)
{
    test_call_t *c = ud;
    pthread_mutex_lock(&c->lock);
    if (c->callbacks++ == 0)
        c->res = *res;
    else
        mq_rpc_result_clear(res);
    free(res);
    c->at_ms = core_now_ms();
    c->done = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* Waits up to timeout_ms for the callback; 1 if it came. */
static int test_call_wait(test_call_t *c, unsigned timeout_ms)
{
    uint64_t deadline = core_now_ms() + timeout_ms;
    pthread_mutex_lock(&c->lock);
    while (!c->done && core_now_ms() < deadline) {
        pthread_mutex_unlock(&c->lock);
        core_sleep_ms(5, NULL);
        pthread_mutex_lock(&c->lock);
    }
    int done = c->done;
    pthread_mutex_unlock(&c->lock);
    return done;
}

TestSuite(rpc, .init = mqt_setup, .timeout = 40);

/* ================================================================ the round trip */

Test(rpc, reply_relays_status_body_content_type_and_headers)
{
    test_rpc_t t;
    test_rpc_up(&t, "describe");
    mq_rpc_request_t req = test_request(t.service, "unit.describe", "{\"caption\":\"hello\"}");
    req.request_id = "req-rpc-1";
    req.user_id = "u_42";
    req.params = "{\"post_id\":\"p7\"}";
    req.query = "limit=20&cursor=abc";
    req.content_type = "application/json";
    int64_t now = core_wall_ms() / 1000;
    mq_rpc_result_t res;
    mq_rpc_call_sync(t.client, &req, &res);
    cr_assert_eq(res.error, 0, "error %s", mq_strerror(res.error));
    cr_assert_eq(res.status, 201);
    cr_assert_str_eq(res.content_type, "application/vnd.unit+json");
    cr_assert_str_eq(res.headers_json, "{\"retry-after\":\"30\",\"x-unit\":\"yes\"}");
    cr_assert_eq(res.body_len, strlen(res.body));

    /* What the server saw: DESIGN.md's RPC request. */
    cJSON *j = cJSON_Parse(res.body);
    cr_assert_not_null(j, "not JSON: %s", res.body);
#define FIELD(k)                                                                                             \
    (cJSON_IsString(cJSON_GetObjectItem(j, k)) ? cJSON_GetObjectItem(j, k)->valuestring : MQT_NULL)
    cr_assert_str_eq(FIELD("type"), "unit.describe");
    cr_assert_str_eq(FIELD("request_id"), "req-rpc-1");
    cr_assert_str_eq(FIELD("user_id"), "u_42");
    cr_assert_str_eq(FIELD("params"), "{\"post_id\":\"p7\"}");
    cr_assert_str_eq(FIELD("query"), "limit=20&cursor=abc");
    cr_assert_str_eq(FIELD("content_type"), "application/json");
    /* The broker rewrites the direct reply-to pseudo-queue into amq.rabbitmq.reply-to.<token>. */
    cr_assert_eq(strncmp(FIELD("reply_to"), MQ_REPLY_TO ".", strlen(MQ_REPLY_TO) + 1), 0, "reply_to %s",
                 FIELD("reply_to"));
    cr_assert_str_neq(FIELD("correlation_id"), MQT_NULL);
    cr_assert_str_eq(FIELD("app_id"), "unit-rpc-client");
    cr_assert_str_eq(FIELD("exchange"), MQ_EXCHANGE_RPC);
    cr_assert_str_eq(FIELD("routing_key"), t.service);
    cr_assert_str_eq(FIELD("body"), "{\"caption\":\"hello\"}");
#undef FIELD
    double ts = cJSON_GetObjectItem(j, "timestamp")->valuedouble;
    cr_assert(ts >= (double)now - 5 && ts <= (double)now + 5, "timestamp %.0f", ts);
    cJSON_Delete(j);
    mq_rpc_result_clear(&res);
    cr_assert_null(res.body);
    test_rpc_down(&t);
}

Test(rpc, optional_fields_may_be_absent)
{
    test_rpc_t t;
    test_rpc_up(&t, "sparse");
    mq_rpc_request_t req = test_request(t.service, "unit.describe", NULL);
    mq_rpc_result_t res;
    mq_rpc_call_sync(t.client, &req, &res);
    cr_assert_eq(res.error, 0);
    cJSON *j = cJSON_Parse(res.body);
    cr_assert_not_null(j);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "user_id")));
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "request_id")));
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "params")));
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "query")));
    cr_assert_str_eq(cJSON_GetObjectItem(j, "body")->valuestring, "");
    cJSON_Delete(j);
    mq_rpc_result_clear(&res);

    /* A reply with no content type of its own is JSON in UTF-8; no extra headers means NULL. */
    req = test_request(t.service, "unit.echo", "[1,2]");
    mq_rpc_call_sync(t.client, &req, &res);
    cr_assert_eq(res.error, 0);
    cr_assert_eq(res.status, 200);
    cr_assert_str_eq(res.content_type, "application/json; charset=utf-8");
    cr_assert_null(res.headers_json);
    cr_assert_str_eq(res.body, "[1,2]");
    mq_rpc_result_clear(&res);
    test_rpc_down(&t);
}

Test(rpc, a_handler_that_sets_no_status_answers_500_problem)
{
    test_rpc_t t;
    test_rpc_up(&t, "nostatus");
    mq_rpc_request_t req = test_request(t.service, "unit.nostatus", "{}");
    mq_rpc_result_t res;
    mq_rpc_call_sync(t.client, &req, &res);
    cr_assert_eq(res.error, 0);
    cr_assert_eq(res.status, 500);
    cr_assert_str_eq(res.content_type, "application/problem+json");
    cJSON *j = cJSON_Parse(res.body);
    cr_assert_not_null(j, "not JSON: %s", res.body);
    cr_assert_eq(cJSON_GetObjectItem(j, "status")->valueint, 500);
    cJSON_Delete(j);
    mq_rpc_result_clear(&res);
    test_rpc_down(&t);
}

Test(rpc, binary_bodies_pass_unchanged)
{
    test_rpc_t t;
    test_rpc_up(&t, "binary");
    unsigned char body[4096];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (unsigned char)(i * 7 + 3);
    body[10] = '\0';
    mq_rpc_request_t req = {.service = t.service,
                            .method = "unit.echo",
                            .content_type = "application/octet-stream",
                            .body = body,
                            .body_len = sizeof(body),
                            .timeout_ms = 5000};
    mq_rpc_result_t res;
    mq_rpc_call_sync(t.client, &req, &res);
    cr_assert_eq(res.error, 0);
    cr_assert_eq(res.body_len, sizeof(body));
    cr_assert_eq(memcmp(res.body, body, sizeof(body)), 0);
    cr_assert_eq(res.body[res.body_len], '\0', "bodies are NUL-terminated for convenience");
    mq_rpc_result_clear(&res);
    test_rpc_down(&t);
}

Test(rpc, a_request_without_reply_to_is_dropped_and_acked)
{
    test_rpc_t t;
    test_rpc_up(&t, "noreply");
    amqp_connection_state_t raw = mqt_raw_open();
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_TYPE_FLAG, .type = amqp_cstring_bytes("unit.echo")};
    cr_assert_eq(amqp_basic_publish(raw, 1, amqp_cstring_bytes(MQ_EXCHANGE_RPC),
                                    amqp_cstring_bytes(t.service), 0, 0, &props, amqp_cstring_bytes("{}")),
                 AMQP_STATUS_OK);
    /* A normal call after it proves the server got past it. */
    mq_rpc_request_t req = test_request(t.service, "unit.echo", "after");
    mq_rpc_result_t res;
    mq_rpc_call_sync(t.client, &req, &res);
    cr_assert_eq(res.error, 0);
    cr_assert_str_eq(res.body, "after");
    mq_rpc_result_clear(&res);
    pthread_mutex_lock(&t.srv.lock);
    int calls = t.srv.calls;
    pthread_mutex_unlock(&t.srv.lock);
    cr_assert_eq(calls, 1, "the handler must not run for a request nobody waits for");
    char q[160];
    snprintf(q, sizeof(q), "%s.rpc", t.service);
    cr_assert_eq(mqt_raw_count(raw, q), 0);
    mqt_raw_close(raw);
    test_rpc_down(&t);
}

/* ================================================================ correlation */

#define TEST_THREADS 5
#define TEST_CALLS_PER_THREAD 100

typedef struct {
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    int *done;
    int callbacks;
    int error, status;
    char want[48], got[48];
} test_slot_t;

static void test_slot_cb(void *ud, mq_rpc_result_t *res)
{
    test_slot_t *s = ud;
    pthread_mutex_lock(s->lock);
    s->callbacks++;
    s->error = res->error;
    s->status = res->status;
    snprintf(s->got, sizeof(s->got), "%s", res->body != NULL ? res->body : MQT_NULL);
    (*s->done)++;
    pthread_cond_broadcast(s->cond);
    pthread_mutex_unlock(s->lock);
    mq_rpc_result_clear(res);
    free(res);
}

typedef struct {
    mq_rpc_client_t *client;
    const char *service;
    test_slot_t *slots;
} test_caller_t;

static void *test_caller(void *arg)
{
    test_caller_t *c = arg;
    for (int i = 0; i < TEST_CALLS_PER_THREAD; i++) {
        test_slot_t *s = &c->slots[i];
        mq_rpc_request_t req = test_request(c->service, "unit.echo", s->want);
        req.timeout_ms = 20000;
        mq_rpc_call(c->client, &req, test_slot_cb, s);
    }
    return NULL;
}

Test(rpc, five_hundred_concurrent_calls_each_get_their_own_answer)
{
    test_rpc_t t;
    test_rpc_up(&t, "many");
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    int done = 0;
    static test_slot_t slots[TEST_THREADS * TEST_CALLS_PER_THREAD];
    for (int i = 0; i < TEST_THREADS * TEST_CALLS_PER_THREAD; i++) {
        slots[i] = (test_slot_t){.lock = &lock, .cond = &cond, .done = &done};
        snprintf(slots[i].want, sizeof(slots[i].want), "{\"thread\":%d,\"call\":%d}",
                 i / TEST_CALLS_PER_THREAD, i % TEST_CALLS_PER_THREAD);
    }
    pthread_t th[TEST_THREADS];
    test_caller_t callers[TEST_THREADS];
    for (int i = 0; i < TEST_THREADS; i++) {
        callers[i] = (test_caller_t){
            .client = t.client, .service = t.service, .slots = &slots[i * TEST_CALLS_PER_THREAD]};
        cr_assert_eq(pthread_create(&th[i], NULL, test_caller, &callers[i]), 0);
    }
    unsigned max_in_flight = 0;
    uint64_t deadline = core_now_ms() + 20000;
    pthread_mutex_lock(&lock);
    while (done < TEST_THREADS * TEST_CALLS_PER_THREAD && core_now_ms() < deadline) {
        pthread_mutex_unlock(&lock);
        unsigned n = mq_rpc_client_in_flight(t.client);
        if (n > max_in_flight)
            max_in_flight = n;
        core_sleep_ms(1, NULL);
        pthread_mutex_lock(&lock);
    }
    int finished = done;
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < TEST_THREADS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(finished, TEST_THREADS * TEST_CALLS_PER_THREAD, "only %d of %d calls answered in 20 s",
                 finished, TEST_THREADS * TEST_CALLS_PER_THREAD);
    for (int i = 0; i < TEST_THREADS * TEST_CALLS_PER_THREAD; i++) {
        cr_assert_eq(slots[i].callbacks, 1, "call %d: %d callbacks", i, slots[i].callbacks);
        cr_assert_eq(slots[i].error, 0, "call %d: %s", i, mq_strerror(slots[i].error));
        cr_assert_eq(slots[i].status, 200);
        cr_assert_str_eq(slots[i].got, slots[i].want, "call %d got another call's answer", i);
    }
    cr_assert_gt(max_in_flight, 1, "the calls were not concurrent");
    cr_assert_eq(mq_rpc_client_in_flight(t.client), 0);
    cr_assert_eq(t.srv.calls, TEST_THREADS * TEST_CALLS_PER_THREAD);
    test_rpc_down(&t);
}

typedef struct {
    mq_rpc_client_t *client;
    const char *service;
    int id, wrong;
} test_sync_caller_t;

static void *test_sync_caller(void *arg)
{
    test_sync_caller_t *c = arg;
    for (int i = 0; i < 25; i++) {
        char body[64];
        snprintf(body, sizeof(body), "sync-%d-%d", c->id, i);
        mq_rpc_request_t req = test_request(c->service, "unit.echo", body);
        mq_rpc_result_t res;
        mq_rpc_call_sync(c->client, &req, &res);
        if (res.error != 0 || res.body == NULL || strcmp(res.body, body) != 0)
            c->wrong++;
        mq_rpc_result_clear(&res);
    }
    return NULL;
}

Test(rpc, sync_calls_from_several_threads)
{
    test_rpc_t t;
    test_rpc_up(&t, "sync");
    pthread_t th[4];
    test_sync_caller_t c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (test_sync_caller_t){.client = t.client, .service = t.service, .id = i};
        cr_assert_eq(pthread_create(&th[i], NULL, test_sync_caller, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(c[i].wrong, 0, "thread %d: %d wrong answers", i, c[i].wrong);
    }
    test_rpc_down(&t);
}

/* ================================================================ failures */

Test(rpc, no_reply_in_time_is_etimeout_and_the_stale_request_expires)
{
    /* A bound queue nobody consumes. */
    char service[128], q[160];
    mqt_name(service, sizeof(service), "silent");
    snprintf(q, sizeof(q), "%s.rpc", service);
    mqt_declare_rpc_queue(service);
    mq_conf_t conf = {.url = mqt_url, .app_id = "unit-rpc-client"};
    mq_rpc_client_t *client = mq_rpc_client_start(&conf);
    mq_rpc_request_t req = test_request(service, "unit.echo", "{}");
    req.timeout_ms = 300;
    uint64_t t0 = core_now_ms();
    mq_rpc_result_t res;
    mq_rpc_call_sync(client, &req, &res);
    uint64_t took = core_now_ms() - t0;
    cr_assert_eq(res.error, MQ_ETIMEOUT, "got %s", mq_strerror(res.error));
    cr_assert(took >= 290 && took < 1000, "timed out after %llu ms, want about 300",
              (unsigned long long)took);
    cr_assert_null(res.body);
    cr_assert_eq(mq_rpc_client_in_flight(client), 0);
    mq_rpc_result_clear(&res);

    /* The request carried expiration = timeout: the broker drops it instead of serving it late. */
    core_sleep_ms(200, NULL);
    amqp_connection_state_t raw = mqt_raw_open();
    amqp_message_t m;
    int stale = mqt_raw_get(raw, q, &m);
    if (stale)
        amqp_destroy_message(&m);
    mqt_raw_delete_queue(raw, q);
    mqt_raw_close(raw);
    mq_rpc_client_stop(client);
    cr_assert_not(stale, "the expired request is still in %s", q);
}

Test(rpc, a_late_reply_is_ignored_and_the_next_call_gets_its_own)
{
    test_rpc_t t;
    test_rpc_up(&t, "late");
    mq_rpc_request_t req = test_request(t.service, "unit.slow", "slow");
    req.timeout_ms = 150;
    mq_rpc_result_t res;
    mq_rpc_call_sync(t.client, &req, &res);
    cr_assert_eq(res.error, MQ_ETIMEOUT);
    mq_rpc_result_clear(&res);
    /* The slow answer arrives while this call waits; it must not be taken for this one. */
    req = test_request(t.service, "unit.echo", "fresh");
    mq_rpc_call_sync(t.client, &req, &res);
    cr_assert_eq(res.error, 0);
    cr_assert_str_eq(res.body, "fresh");
    mq_rpc_result_clear(&res);
    test_rpc_down(&t);
}

Test(rpc, a_request_taken_after_its_deadline_is_skipped)
{
    /* One server, busy 400 ms with unit.slow; a 100 ms call sent meanwhile is already prefetched
     * by that server (so expiration cannot drop it) and is taken after its x-deadline: the
     * handler must not run for it. */
    test_rpc_t t;
    test_rpc_up(&t, "deadline");
    test_call_t slow, stale;
    test_call_init(&slow);
    test_call_init(&stale);
    mq_rpc_request_t req = test_request(t.service, "unit.slow", "slow");
    mq_rpc_call(t.client, &req, test_call_cb, &slow);
    core_sleep_ms(50, NULL); /* the server is now inside unit.slow */
    req = test_request(t.service, "unit.echo", "stale");
    req.timeout_ms = 100;
    mq_rpc_call(t.client, &req, test_call_cb, &stale);
    cr_assert(test_call_wait(&slow, 3000));
    cr_assert(test_call_wait(&stale, 3000));
    cr_assert_eq(slow.res.error, 0);
    cr_assert_eq(stale.res.error, MQ_ETIMEOUT);
    core_sleep_ms(100, NULL); /* the server has taken the stale request by now */
    pthread_mutex_lock(&t.srv.lock);
    int calls = t.srv.calls;
    pthread_mutex_unlock(&t.srv.lock);
    cr_assert_eq(calls, 1, "the handler ran %d times: the request past its deadline was handled", calls);
    /* And the server still serves fresh requests. */
    mq_rpc_result_t res;
    req = test_request(t.service, "unit.echo", "fresh");
    mq_rpc_call_sync(t.client, &req, &res);
    cr_assert_eq(res.error, 0);
    cr_assert_str_eq(res.body, "fresh");
    mq_rpc_result_clear(&res);
    mq_rpc_result_clear(&slow.res);
    test_rpc_down(&t);
}

Test(rpc, a_service_with_no_queue_is_enoroute_fast)
{
    char service[128];
    mqt_name(service, sizeof(service), "nobody");
    mq_conf_t conf = {.url = mqt_url, .app_id = "unit-rpc-client"};
    mq_rpc_client_t *client = mq_rpc_client_start(&conf);
    cr_assert_not_null(client);
    mq_rpc_request_t req = test_request(service, "unit.echo", "{}");
    req.timeout_ms = 5000;
    uint64_t t0 = core_now_ms();
    mq_rpc_result_t res;
    mq_rpc_call_sync(client, &req, &res);
    uint64_t took = core_now_ms() - t0;
    cr_assert_eq(res.error, MQ_ENOROUTE, "got %s", mq_strerror(res.error));
    cr_assert_lt(took, 1000, "ENOROUTE took %llu ms", (unsigned long long)took);
    cr_assert_eq(mq_rpc_client_in_flight(client), 0);
    mq_rpc_result_clear(&res);
    /* The connection is still fine afterwards. */
    cr_assert_eq(mq_rpc_client_connected(client), 1);
    mq_rpc_client_stop(client);
}

Test(rpc, a_client_with_no_broker_fails_calls_with_edown_at_once)
{
    mq_conf_t conf = {.url = MQT_DEAD_URL, .app_id = "unit-rpc-client"};
    mq_rpc_client_t *client = mq_rpc_client_start(&conf);
    cr_assert_not_null(client, "the client starts without a broker and keeps trying");
    cr_assert_eq(mq_rpc_client_connected(client), 0);
    for (int i = 0; i < 3; i++) {
        test_call_t call;
        test_call_init(&call);
        mq_rpc_request_t req = test_request("anything", "unit.echo", "{}");
        req.timeout_ms = 5000;
        uint64_t t0 = core_now_ms();
        mq_rpc_call(client, &req, test_call_cb, &call);
        cr_assert(test_call_wait(&call, 2000), "no callback");
        uint64_t took = call.at_ms - t0;
        cr_assert_eq(call.res.error, MQ_EDOWN, "got %s", mq_strerror(call.res.error));
        cr_assert_lt(took, 300, "EDOWN took %llu ms", (unsigned long long)took);
        core_sleep_ms(50, NULL);
        cr_assert_eq(call.callbacks, 1);
        mq_rpc_result_clear(&call.res);
    }
    mq_rpc_client_stop(client);
}

Test(rpc, stop_fails_pending_calls_with_estopped)
{
    char service[128], q[160];
    mqt_name(service, sizeof(service), "stopping");
    snprintf(q, sizeof(q), "%s.rpc", service);
    mqt_declare_rpc_queue(service);
    mq_conf_t conf = {.url = mqt_url, .app_id = "unit-rpc-client"};
    mq_rpc_client_t *client = mq_rpc_client_start(&conf);
    test_call_t call;
    test_call_init(&call);
    mq_rpc_request_t req = test_request(service, "unit.echo", "{}");
    req.timeout_ms = 30000;
    mq_rpc_call(client, &req, test_call_cb, &call);
    uint64_t deadline = core_now_ms() + 2000;
    while (mq_rpc_client_in_flight(client) == 0 && core_now_ms() < deadline)
        core_sleep_ms(2, NULL);
    cr_assert_eq(mq_rpc_client_in_flight(client), 1);
    uint64_t t0 = core_now_ms();
    mq_rpc_client_stop(client);
    cr_assert_lt(core_now_ms() - t0, 1000);
    cr_assert_eq(call.callbacks, 1);
    cr_assert_eq(call.res.error, MQ_ESTOPPED, "got %s", mq_strerror(call.res.error));
    amqp_connection_state_t raw = mqt_raw_open();
    mqt_raw_delete_queue(raw, q);
    mqt_raw_close(raw);
}

Test(rpc, default_timeout_is_used_when_zero)
{
    /* timeout_ms 0 means 5000: the call is still pending after 1 s, then stop ends it. */
    char service[128], q[160];
    mqt_name(service, sizeof(service), "default-timeout");
    snprintf(q, sizeof(q), "%s.rpc", service);
    mqt_declare_rpc_queue(service);
    mq_conf_t conf = {.url = mqt_url, .app_id = "unit-rpc-client"};
    mq_rpc_client_t *client = mq_rpc_client_start(&conf);
    test_call_t call;
    test_call_init(&call);
    mq_rpc_request_t req = test_request(service, "unit.echo", "{}");
    req.timeout_ms = 0;
    mq_rpc_call(client, &req, test_call_cb, &call);
    cr_assert_not(test_call_wait(&call, 1000), "a zero timeout must not expire at once");
    mq_rpc_client_stop(client);
    cr_assert_eq(call.res.error, MQ_ESTOPPED);
    amqp_connection_state_t raw = mqt_raw_open();
    mqt_raw_delete_queue(raw, q);
    mqt_raw_close(raw);
}

Test(rpc, stop_of_null_is_a_no_op)
{
    mq_rpc_client_stop(NULL);
}
