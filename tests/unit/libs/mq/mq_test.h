/* mq_test.h -- what the mq tests share: the broker URL, unique names, a raw rabbitmq-c connection to
 * inspect queues, a recording handler, a thread running mq_run, and the management HTTP API.
 *
 * Header-only because each test_*.c file is a binary of its own. */
#ifndef MQ_TEST_H
#define MQ_TEST_H

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "log/log.h"
#include "mq/mq.h"

#define MQT_FN static __attribute__((unused))

/* Nothing listens on port 1: connections are refused at once. */
#define MQT_DEAD_URL "amqp://guest:guest@127.0.0.1:1/"
/* What the helpers below return for an absent property or header. */
#define MQT_NULL "<absent>"

static char mqt_url[512];
static char mqt_suffix[16];

/* ================================================================ setup and names */

/* Suite init: the broker URL from TEST_AMQP_URL (required) and a random suffix for names. */
MQT_FN void mqt_setup(void)
{
    const char *url = getenv("TEST_AMQP_URL");
    cr_assert(url != NULL && url[0] != '\0',
              "TEST_AMQP_URL is not set: start RabbitMQ (deploy/local/stack.sh infra-up) and export "
              "TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:<port>");
    snprintf(mqt_url, sizeof(mqt_url), "%s", url);
    char uuid[CORE_UUID_BUFSZ];
    core_uuid(uuid);
    snprintf(mqt_suffix, sizeof(mqt_suffix), "%.8s%.4s", uuid, uuid + 9);
    log_init("test_mq", getenv("TEST_MQ_DEBUG")
                            ? LOG_DEBUG
                            : LOG_ERROR); /* the library warns about the failures these tests cause */
}

/* "unit.<what>.<random>": a name no other test or run uses. */
MQT_FN void mqt_name(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "unit.%s.%s", what, mqt_suffix);
}

MQT_FN mq_t *mqt_new(const char *app_id, int confirms, unsigned max_retries)
{
    mq_conf_t conf = {.url = mqt_url, .app_id = app_id, .confirms = confirms, .max_retries = max_retries};
    mq_t *mq = mq_new(&conf);
    cr_assert_not_null(mq, "mq_new(%s)", mqt_url);
    return mq;
}

/* Declares a work queue and its .dlq now, through a short-lived connection. */
MQT_FN void mqt_declare_work_queue(const char *queue)
{
    mq_t *mq = mqt_new("unit-setup", 0, 0);
    mq_declare_work_queue(mq, queue);
    cr_assert_eq(mq_connect(mq), 0, "cannot reach the broker at %s", mqt_url);
    mq_free(mq);
}

/* Declares <service>.rpc bound to the rpc exchange now (no consumer). */
MQT_FN void mqt_declare_rpc_queue(const char *service)
{
    mq_t *mq = mqt_new("unit-setup", 0, 0);
    mq_declare_rpc_queue(mq, service);
    cr_assert_eq(mq_connect(mq), 0, "cannot reach the broker at %s", mqt_url);
    mq_free(mq);
}

MQT_FN int mqt_is_uuid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* ================================================================ raw rabbitmq-c, to inspect queues */

MQT_FN void mqt_raw_check(amqp_connection_state_t c, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    cr_assert_eq(r.reply_type, AMQP_RESPONSE_NORMAL, "raw %s failed (reply type %d, method 0x%08x)", what,
                 r.reply_type, r.reply.id);
}

MQT_FN amqp_connection_state_t mqt_raw_open(void)
{
    char *copy = strdup(mqt_url);
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    cr_assert_eq(amqp_parse_url(copy, &ci), AMQP_STATUS_OK, "bad TEST_AMQP_URL %s", mqt_url);
    if (ci.vhost[0] == '\0') /* "amqp://host/": the default vhost, as mq_new reads it */
        ci.vhost = (char *)"/";
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    cr_assert_eq(amqp_socket_open(s, ci.host, ci.port), AMQP_STATUS_OK, "cannot reach %s", mqt_url);
    amqp_rpc_reply_t r = amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
    cr_assert_eq(r.reply_type, AMQP_RESPONSE_NORMAL, "raw login to %s refused", mqt_url);
    amqp_channel_open(c, 1);
    mqt_raw_check(c, "channel.open");
    free(copy);
    return c;
}

MQT_FN void mqt_raw_close(amqp_connection_state_t c)
{
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* basic.get with auto-ack: 1 and *msg filled (amqp_destroy_message it), or 0 when empty. */
MQT_FN int mqt_raw_get(amqp_connection_state_t c, const char *queue, amqp_message_t *msg)
{
    amqp_maybe_release_buffers(c);
    amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes(queue), 1);
    cr_assert_eq(r.reply_type, AMQP_RESPONSE_NORMAL, "basic.get %s failed", queue);
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return 0;
    cr_assert_eq(r.reply.id, AMQP_BASIC_GET_OK_METHOD);
    r = amqp_read_message(c, 1, msg, 0);
    cr_assert_eq(r.reply_type, AMQP_RESPONSE_NORMAL, "reading a message from %s", queue);
    return 1;
}

/* Ready messages in an existing queue (passive declare). */
MQT_FN unsigned mqt_raw_count(amqp_connection_state_t c, const char *queue)
{
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    mqt_raw_check(c, queue);
    return ok->message_count;
}

/* Waits until queue holds at least n ready messages; 1 if it did within timeout_ms. */
MQT_FN int mqt_raw_wait_count(amqp_connection_state_t c, const char *queue, unsigned n, unsigned timeout_ms)
{
    uint64_t deadline = core_now_ms() + timeout_ms;
    for (;;) {
        if (mqt_raw_count(c, queue) >= n)
            return 1;
        if (core_now_ms() >= deadline)
            return 0;
        core_sleep_ms(20, NULL);
    }
}

MQT_FN void mqt_raw_purge(amqp_connection_state_t c, const char *queue)
{
    amqp_queue_purge(c, 1, amqp_cstring_bytes(queue));
    mqt_raw_check(c, "queue.purge");
}

/* Deletes a queue (a missing one is fine). */
MQT_FN void mqt_raw_delete_queue(amqp_connection_state_t c, const char *queue)
{
    amqp_queue_delete(c, 1, amqp_cstring_bytes(queue), 0, 0);
    mqt_raw_check(c, "queue.delete");
}

/* Deletes a queue and its dead-letter queue <queue>.dlq. */
MQT_FN void mqt_raw_delete_with_dlq(amqp_connection_state_t c, const char *queue)
{
    char dlq[300];
    snprintf(dlq, sizeof(dlq), "%s.dlq", queue);
    mqt_raw_delete_queue(c, queue);
    mqt_raw_delete_queue(c, dlq);
}

/* Whether a queue exists (a passive declare on a connection of its own: failing closes it). */
MQT_FN int mqt_queue_exists(const char *queue)
{
    amqp_connection_state_t c = mqt_raw_open();
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    int exists = r.reply_type == AMQP_RESPONSE_NORMAL;
    if (exists)
        amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return exists;
}

MQT_FN int mqt_wait_queue(const char *queue, unsigned timeout_ms)
{
    uint64_t deadline = core_now_ms() + timeout_ms;
    while (!mqt_queue_exists(queue)) {
        if (core_now_ms() >= deadline)
            return 0;
        core_sleep_ms(20, NULL);
    }
    return 1;
}

/* A property as a string in buf, or MQT_NULL when its flag is not set. */
MQT_FN const char *mqt_prop(char *buf, size_t len, const amqp_basic_properties_t *p, amqp_flags_t flag,
                            amqp_bytes_t value)
{
    if (!(p->_flags & flag))
        return MQT_NULL;
    snprintf(buf, len, "%.*s", (int)value.len, (const char *)value.bytes);
    return buf;
}

/* A header as a string in buf ("<kind N>" for non-strings), or MQT_NULL when absent. */
MQT_FN const char *mqt_header(char *buf, size_t len, const amqp_basic_properties_t *p, const char *key)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return MQT_NULL;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->key.len != strlen(key) || memcmp(e->key.bytes, key, e->key.len) != 0)
            continue;
        if (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES)
            snprintf(buf, len, "%.*s", (int)e->value.value.bytes.len,
                     (const char *)e->value.value.bytes.bytes);
        else
            snprintf(buf, len, "<kind %c>", e->value.kind);
        return buf;
    }
    return MQT_NULL;
}

/* ================================================================ a recording handler */

#define MQT_STR 256

/* Copies of one delivery's fields (MQT_NULL for NULL). */
typedef struct {
    char queue[MQT_STR], exchange[MQT_STR], routing_key[MQT_STR], type[MQT_STR], message_id[MQT_STR];
    char correlation_id[MQT_STR], reply_to[MQT_STR], content_type[MQT_STR], app_id[MQT_STR];
    char request_id[MQT_STR], user_id[MQT_STR], params[MQT_STR], query[MQT_STR], body[1024];
    int64_t timestamp;
    int status;
    unsigned retries;
    int redelivered;
} mqt_seen_t;

MQT_FN void mqt_copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src != NULL ? src : MQT_NULL);
}

MQT_FN void mqt_seen_fill(mqt_seen_t *s, const mq_message_t *m)
{
    mqt_copy(s->queue, MQT_STR, m->queue);
    mqt_copy(s->exchange, MQT_STR, m->exchange);
    mqt_copy(s->routing_key, MQT_STR, m->routing_key);
    mqt_copy(s->type, MQT_STR, m->type);
    mqt_copy(s->message_id, MQT_STR, m->message_id);
    mqt_copy(s->correlation_id, MQT_STR, m->correlation_id);
    mqt_copy(s->reply_to, MQT_STR, m->reply_to);
    mqt_copy(s->content_type, MQT_STR, m->content_type);
    mqt_copy(s->app_id, MQT_STR, m->app_id);
    mqt_copy(s->request_id, MQT_STR, m->request_id);
    mqt_copy(s->user_id, MQT_STR, m->user_id);
    mqt_copy(s->params, MQT_STR, m->params);
    mqt_copy(s->query, MQT_STR, m->query);
    snprintf(s->body, sizeof(s->body), "%.*s", (int)m->body_len, (const char *)m->body);
    s->timestamp = m->timestamp;
    s->status = m->status;
    s->retries = m->retries;
    s->redelivered = m->redelivered;
}

#define MQT_MAX_SEEN 16

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    mq_disposition_t answer; /* what the handler returns */
    unsigned delay_ms;       /* how long it works on each message */
    int started, calls;      /* deliveries begun, deliveries finished */
    mqt_seen_t seen[MQT_MAX_SEEN];
} mqt_inbox_t;

MQT_FN void mqt_inbox_init(mqt_inbox_t *in, mq_disposition_t answer)
{
    memset(in, 0, sizeof(*in));
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->cond, NULL);
    in->answer = answer;
}

MQT_FN mq_disposition_t mqt_inbox_handler(mq_t *mq, const mq_message_t *m, void *ud)
{
    (void)mq;
    mqt_inbox_t *in = ud;
    pthread_mutex_lock(&in->lock);
    in->started++;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    if (in->delay_ms > 0)
        core_sleep_ms(in->delay_ms, NULL);
    pthread_mutex_lock(&in->lock);
    if (in->calls < MQT_MAX_SEEN)
        mqt_seen_fill(&in->seen[in->calls], m);
    in->calls++;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    return in->answer;
}

/* Waits until *counter >= n or timeout_ms passed; returns *counter. */
MQT_FN int mqt_inbox_wait_for(mqt_inbox_t *in, const int *counter, int n, unsigned timeout_ms)
{
    uint64_t deadline = core_now_ms() + timeout_ms;
    pthread_mutex_lock(&in->lock);
    while (*counter < n) {
        uint64_t now = core_now_ms();
        if (now >= deadline)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t left = deadline - now;
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&in->cond, &in->lock, &ts);
    }
    int got = *counter;
    pthread_mutex_unlock(&in->lock);
    return got;
}

MQT_FN int mqt_inbox_wait(mqt_inbox_t *in, int n, unsigned timeout_ms)
{
    return mqt_inbox_wait_for(in, &in->calls, n, timeout_ms);
}

MQT_FN int mqt_inbox_wait_started(mqt_inbox_t *in, unsigned timeout_ms)
{
    return mqt_inbox_wait_for(in, &in->started, 1, timeout_ms);
}

/* ================================================================ mq_run on a thread */

typedef struct {
    mq_t *mq;
    volatile int stop;
    pthread_t thread;
    int rc;
} mqt_runner_t;

static void *mqt_runner_main(void *arg)
{
    mqt_runner_t *r = arg;
    r->rc = mq_run(r->mq, &r->stop);
    return NULL;
}

MQT_FN void mqt_runner_start(mqt_runner_t *r, mq_t *mq)
{
    r->mq = mq;
    r->stop = 0;
    r->rc = -100;
    cr_assert_eq(pthread_create(&r->thread, NULL, mqt_runner_main, r), 0);
}

/* Stops mq_run, joins its thread and frees the mq_t. */
MQT_FN void mqt_runner_stop(mqt_runner_t *r)
{
    r->stop = 1;
    pthread_join(r->thread, NULL);
    cr_assert_eq(r->rc, 0, "mq_run returned %d", r->rc);
    mq_free(r->mq);
    r->mq = NULL;
}

typedef struct {
    int count;
    int changed;      /* the tick ran on more than one thread */
    pthread_t thread; /* the thread it ran on */
} mqt_ticks_t;

/* ================================================================ management HTTP API */

static size_t mqt_curl_write(char *data, size_t size, size_t n, void *ud)
{
    char **buf = ud;
    size_t old = *buf != NULL ? strlen(*buf) : 0;
    *buf = realloc(*buf, old + size * n + 1);
    memcpy(*buf + old, data, size * n);
    (*buf)[old + size * n] = '\0';
    return size * n;
}

/* GET TEST_RABBITMQ_API + path (printf-style) as guest; asserts 200 and returns the JSON. */
__attribute__((format(printf, 1, 2))) MQT_FN cJSON *mqt_api_get(const char *fmt, ...)
{
    const char *api = getenv("TEST_RABBITMQ_API");
    cr_assert(
        api != NULL && api[0] != '\0',
        "TEST_RABBITMQ_API is not set: export TEST_RABBITMQ_API=http://127.0.0.1:<management port>/api");
    char path[512], url[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    snprintf(url, sizeof(url), "%s%s", api, path);
    CURL *curl = curl_easy_init();
    char *body = NULL;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_USERPWD, "guest:guest");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, mqt_curl_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    cr_assert_eq(rc, CURLE_OK, "GET %s: %s", url, curl_easy_strerror(rc));
    cr_assert_eq(status, 200, "GET %s: HTTP %ld %s", url, status, body != NULL ? body : "");
    cJSON *j = cJSON_Parse(body);
    cr_assert_not_null(j, "GET %s: not JSON", url);
    free(body);
    return j;
}

/* Whether a bindings list (management API) has source -> destination with routing_key. */
MQT_FN int mqt_has_binding(const cJSON *bindings, const char *source, const char *routing_key)
{
    const cJSON *b;
    cJSON_ArrayForEach(b, bindings)
    {
        const cJSON *s = cJSON_GetObjectItem(b, "source"), *k = cJSON_GetObjectItem(b, "routing_key");
        if (cJSON_IsString(s) && cJSON_IsString(k) && strcmp(s->valuestring, source) == 0 &&
            strcmp(k->valuestring, routing_key) == 0)
            return 1;
    }
    return 0;
}

#endif
