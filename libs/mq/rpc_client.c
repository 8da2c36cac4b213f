/* rpc_client.c -- RPC over direct reply-to: one thread, one connection, many calls in flight. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/core.h"
#include "log/log.h"
#include "mq/mq_internal.h"

#define RPC__BUCKETS 4096 /* power of two */

typedef struct rpc__call {
    uint64_t id;
    uint64_t deadline_ms;
    mq_rpc_request_t req; /* strings and body owned (copied) */
    mq_rpc_cb cb;
    void *ud;
    struct rpc__call *next, *prev; /* submit queue, then the pending list sorted by deadline */
    struct rpc__call *hnext;       /* hash bucket chain */
} rpc__call_t;

struct mq_rpc_client {
    mq_t *mq;
    pthread_t thread;
    int efd;
    volatile int stop;
    atomic_int connected;
    atomic_uint in_flight;

    pthread_mutex_t lock; /* guards the submit queue */
    rpc__call_t *submit_head, *submit_tail;

    /* Owned by the client thread. */
    rpc__call_t *pending_head, *pending_tail;
    rpc__call_t *buckets[RPC__BUCKETS];
    uint64_t next_id;
};

/* ================================================================ calls */

static char *rpc__dup(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

static void rpc__call_free(rpc__call_t *call)
{
    free((char *)call->req.service);
    free((char *)call->req.method);
    free((char *)call->req.request_id);
    free((char *)call->req.user_id);
    free((char *)call->req.params);
    free((char *)call->req.query);
    free((char *)call->req.client_addr);
    free((char *)call->req.content_type);
    free((void *)call->req.body);
    free(call);
}

/* Calls back with an error or a result and frees the call. */
static void rpc__finish(mq_rpc_client_t *c, rpc__call_t *call, int error, mq_rpc_result_t *res)
{
    mq_rpc_result_t *out = res;
    if (out == NULL) {
        out = xcalloc(1, sizeof(*out));
        out->error = error;
    }
    call->cb(call->ud, out);
    rpc__call_free(call);
    (void)c;
}

void mq_rpc_result_clear(mq_rpc_result_t *r)
{
    free(r->content_type);
    free(r->body);
    free(r->headers_json);
    r->content_type = r->body = r->headers_json = NULL;
    r->body_len = 0;
}

/* ================================================================ pending set (client thread) */

static void rpc__pending_add(mq_rpc_client_t *c, rpc__call_t *call)
{
    size_t b = call->id & (RPC__BUCKETS - 1);
    call->hnext = c->buckets[b];
    c->buckets[b] = call;
    /* Insert sorted by deadline, scanning from the tail: usually O(1). */
    rpc__call_t *after = c->pending_tail;
    while (after != NULL && after->deadline_ms > call->deadline_ms)
        after = after->prev;
    call->prev = after;
    call->next = after != NULL ? after->next : c->pending_head;
    if (call->next != NULL)
        call->next->prev = call;
    else
        c->pending_tail = call;
    if (after != NULL)
        after->next = call;
    else
        c->pending_head = call;
    atomic_fetch_add(&c->in_flight, 1);
}

static void rpc__pending_remove(mq_rpc_client_t *c, rpc__call_t *call)
{
    rpc__call_t **pp = &c->buckets[call->id & (RPC__BUCKETS - 1)];
    while (*pp != call)
        pp = &(*pp)->hnext;
    *pp = call->hnext;
    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        c->pending_head = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    else
        c->pending_tail = call->prev;
    atomic_fetch_sub(&c->in_flight, 1);
}

static rpc__call_t *rpc__pending_find(mq_rpc_client_t *c, const char *correlation_id)
{
    if (correlation_id == NULL)
        return NULL;
    char *end;
    errno = 0;
    uint64_t id = strtoull(correlation_id, &end, 16);
    if (errno != 0 || *end != '\0' || end == correlation_id)
        return NULL;
    for (rpc__call_t *call = c->buckets[id & (RPC__BUCKETS - 1)]; call != NULL; call = call->hnext)
        if (call->id == id)
            return call;
    return NULL;
}

static void rpc__fail_all_pending(mq_rpc_client_t *c, int error)
{
    while (c->pending_head != NULL) {
        rpc__call_t *call = c->pending_head;
        rpc__pending_remove(c, call);
        rpc__finish(c, call, error, NULL);
    }
}

static void rpc__expire(mq_rpc_client_t *c)
{
    uint64_t now = core_now_ms();
    while (c->pending_head != NULL && c->pending_head->deadline_ms <= now) {
        rpc__call_t *call = c->pending_head;
        rpc__pending_remove(c, call);
        rpc__finish(c, call, MQ_ETIMEOUT, NULL);
    }
}

/* ================================================================ wire (client thread) */

static int rpc__publish(mq_rpc_client_t *c, rpc__call_t *call)
{
    mq_t *mq = c->mq;
    char corr[24], expiration[24];
    snprintf(corr, sizeof(corr), "%" PRIx64, call->id);
    snprintf(expiration, sizeof(expiration), "%u", call->req.timeout_ms);
    mq__headers_t h;
    mq__headers_init(&h);
    mq__headers_add_str(&h, "x-request-id", call->req.request_id);
    mq__headers_add_str(&h, "x-user-id", call->req.user_id);
    mq__headers_add_str(&h, "x-params", call->req.params);
    mq__headers_add_str(&h, "x-query", call->req.query);
    mq__headers_add_str(&h, "x-client-addr", call->req.client_addr);
    mq__headers_add_int(&h, "x-deadline", core_wall_ms() + call->req.timeout_ms);
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_EXPIRATION_FLAG |
                  AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG |
                  AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG,
        .reply_to = amqp_cstring_bytes(MQ_REPLY_TO),
        .correlation_id = amqp_cstring_bytes(corr),
        .expiration = amqp_cstring_bytes(expiration),
        .type = amqp_cstring_bytes(call->req.method),
        .app_id = amqp_cstring_bytes(mq->app_id),
        .headers = h.table,
        .delivery_mode = AMQP_DELIVERY_NONPERSISTENT,
        .timestamp = (uint64_t)(core_wall_ms() / 1000),
    };
    if (call->req.content_type != NULL) {
        props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        props.content_type = amqp_cstring_bytes(call->req.content_type);
    }
    amqp_bytes_t body = {call->req.body_len, (void *)call->req.body};
    int st = amqp_basic_publish(mq->conn, MQ__CHANNEL, amqp_cstring_bytes(MQ_EXCHANGE_RPC),
                                amqp_cstring_bytes(call->req.service), 1, 0, &props, body);
    return st == AMQP_STATUS_OK ? 0 : MQ_EDOWN;
}

static void rpc__down(mq_rpc_client_t *c, const char *why)
{
    if (c->mq->up)
        log_warn(NULL, "amqp rpc client: connection lost: %s", why);
    mq__close(c->mq, 0);
    atomic_store(&c->connected, 0);
    rpc__fail_all_pending(c, MQ_EDOWN);
}

static int rpc__open(mq_rpc_client_t *c)
{
    if (mq__open(c->mq) != 0)
        return MQ_EDOWN;
    /* Direct reply-to: consume the pseudo-queue with no-ack before publishing any request. */
    amqp_basic_consume(c->mq->conn, MQ__CHANNEL, amqp_cstring_bytes(MQ_REPLY_TO), amqp_empty_bytes, 0, 1, 0,
                       amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->mq->conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        log_warn(NULL, "amqp rpc client: cannot consume %s", MQ_REPLY_TO);
        mq__close(c->mq, 0);
        return MQ_EDOWN;
    }
    atomic_store(&c->connected, 1);
    return 0;
}

/* Handles a delivered reply or a returned request (its content follows the method frame). */
static int rpc__read_content(mq_rpc_client_t *c, amqp_channel_t channel, int returned)
{
    amqp_message_t msg;
    amqp_rpc_reply_t r = amqp_read_message(c->mq->conn, channel, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return MQ_EDOWN;
    mq__decoded_t d;
    mq__decode(&d, &msg.properties, &msg.body);
    rpc__call_t *call = rpc__pending_find(c, d.m.correlation_id);
    if (call != NULL) {
        rpc__pending_remove(c, call);
        if (returned) {
            rpc__finish(c, call, MQ_ENOROUTE, NULL);
        } else {
            mq_rpc_result_t *res = xcalloc(1, sizeof(*res));
            res->status = d.m.status > 0 ? d.m.status : 502;
            res->content_type = d.m.content_type != NULL ? xstrdup(d.m.content_type) : NULL;
            res->body = xmalloc(msg.body.len + 1);
            if (msg.body.len > 0) /* a 204 has no body, and bytes may then be NULL */
                memcpy(res->body, msg.body.bytes, msg.body.len);
            res->body[msg.body.len] = '\0';
            res->body_len = msg.body.len;
            for (int i = 0;
                 (msg.properties._flags & AMQP_BASIC_HEADERS_FLAG) && i < msg.properties.headers.num_entries;
                 i++) {
                amqp_table_entry_t *e = &msg.properties.headers.entries[i];
                if (e->key.len == 9 && memcmp(e->key.bytes, "x-headers", 9) == 0 &&
                    e->value.kind == AMQP_FIELD_KIND_UTF8)
                    res->headers_json = xstrndup(e->value.value.bytes.bytes, e->value.value.bytes.len);
            }
            rpc__finish(c, call, 0, res);
        }
    }
    mq__decoded_free(&d);
    amqp_destroy_message(&msg);
    return 0;
}

/* Reads every frame already available without blocking. */
static int rpc__read_frames(mq_rpc_client_t *c)
{
    for (;;) {
        amqp_frame_t f;
        struct timeval zero = {0, 0};
        amqp_maybe_release_buffers(c->mq->conn);
        int st = amqp_simple_wait_frame_noblock(c->mq->conn, &f, &zero);
        if (st == AMQP_STATUS_TIMEOUT)
            return 0;
        if (st != AMQP_STATUS_OK) {
            rpc__down(c, amqp_error_string2(st));
            return MQ_EDOWN;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_DELIVER_METHOD:
        case AMQP_BASIC_RETURN_METHOD:
            if (rpc__read_content(c, f.channel, f.payload.method.id == AMQP_BASIC_RETURN_METHOD) != 0) {
                rpc__down(c, "reading a message");
                return MQ_EDOWN;
            }
            break;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
        case AMQP_BASIC_CANCEL_METHOD:
            rpc__down(c, "closed by the broker");
            return MQ_EDOWN;
        }
    }
}

/* ================================================================ thread */

static rpc__call_t *rpc__take_submitted(mq_rpc_client_t *c)
{
    uint64_t v;
    while (read(c->efd, &v, sizeof(v)) > 0)
        ;
    pthread_mutex_lock(&c->lock);
    rpc__call_t *list = c->submit_head;
    c->submit_head = c->submit_tail = NULL;
    pthread_mutex_unlock(&c->lock);
    return list;
}

static void rpc__send_submitted(mq_rpc_client_t *c)
{
    rpc__call_t *list = rpc__take_submitted(c);
    while (list != NULL) {
        rpc__call_t *call = list;
        list = list->next;
        if (!c->mq->up) {
            rpc__finish(c, call, MQ_EDOWN, NULL);
            continue;
        }
        call->id = ++c->next_id;
        call->deadline_ms = core_now_ms() + call->req.timeout_ms;
        if (rpc__publish(c, call) != 0) {
            rpc__finish(c, call, MQ_EDOWN, NULL);
            rpc__down(c, "publish failed");
            continue;
        }
        rpc__pending_add(c, call);
    }
}

static void *rpc__thread(void *arg)
{
    mq_rpc_client_t *c = arg;
    while (!c->stop) {
        if (!c->mq->up) {
            uint64_t now = core_now_ms();
            if (now >= c->mq->next_attempt_ms && rpc__open(c) != 0)
                mq__backoff(c->mq);
        }
        rpc__send_submitted(c); /* fails them at once while down */
        int timeout = 200;
        if (c->mq->up) {
            if (rpc__read_frames(c) != 0)
                continue;
            rpc__expire(c);
            if (c->pending_head != NULL) {
                uint64_t now = core_now_ms();
                uint64_t left = c->pending_head->deadline_ms > now ? c->pending_head->deadline_ms - now : 0;
                if (left < (uint64_t)timeout)
                    timeout = (int)left;
            }
            if (amqp_frames_enqueued(c->mq->conn) || amqp_data_in_buffer(c->mq->conn))
                timeout = 0;
        } else {
            uint64_t now = core_now_ms();
            uint64_t left = c->mq->next_attempt_ms > now ? c->mq->next_attempt_ms - now : 0;
            if (left < (uint64_t)timeout)
                timeout = (int)left;
        }
        struct pollfd fds[2] = {{.fd = c->efd, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
        if (c->mq->up)
            fds[1].fd = amqp_get_sockfd(c->mq->conn);
        poll(fds, 2, timeout);
    }
    rpc__fail_all_pending(c, MQ_ESTOPPED);
    rpc__call_t *list = rpc__take_submitted(c);
    while (list != NULL) {
        rpc__call_t *call = list;
        list = list->next;
        rpc__finish(c, call, MQ_ESTOPPED, NULL);
    }
    mq__close(c->mq, 1);
    return NULL;
}

/* ================================================================ public */

mq_rpc_client_t *mq_rpc_client_start(const mq_conf_t *conf)
{
    mq_conf_t cc = *conf;
    cc.confirms = 0;
    mq_t *mq = mq_new(&cc);
    if (mq == NULL)
        return NULL;
    mq_rpc_client_t *c = xcalloc(1, sizeof(*c));
    c->mq = mq;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CORE_ASSERT(c->efd >= 0);
    pthread_mutex_init(&c->lock, NULL);
    /* First connection attempt right away, so callers starting up see a live client. */
    if (rpc__open(c) != 0)
        mq__backoff(mq);
    CORE_ASSERT(pthread_create(&c->thread, NULL, rpc__thread, c) == 0);
    return c;
}

void mq_rpc_client_stop(mq_rpc_client_t *c)
{
    if (c == NULL)
        return;
    c->stop = 1;
    uint64_t one = 1;
    (void)!write(c->efd, &one, sizeof(one));
    pthread_join(c->thread, NULL);
    mq_free(c->mq);
    close(c->efd);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int mq_rpc_client_connected(mq_rpc_client_t *c)
{
    return atomic_load(&c->connected);
}

unsigned mq_rpc_client_in_flight(mq_rpc_client_t *c)
{
    return atomic_load(&c->in_flight);
}

void mq_rpc_call(mq_rpc_client_t *c, const mq_rpc_request_t *req, mq_rpc_cb cb, void *ud)
{
    rpc__call_t *call = xcalloc(1, sizeof(*call));
    call->req = (mq_rpc_request_t){
        .service = rpc__dup(req->service),
        .method = rpc__dup(req->method),
        .request_id = rpc__dup(req->request_id),
        .user_id = rpc__dup(req->user_id),
        .params = rpc__dup(req->params),
        .query = rpc__dup(req->query),
        .client_addr = rpc__dup(req->client_addr),
        .content_type = rpc__dup(req->content_type),
        .timeout_ms = req->timeout_ms ? req->timeout_ms : 5000,
        .body_len = req->body_len,
    };
    if (req->body_len > 0) {
        void *b = xmalloc(req->body_len);
        memcpy(b, req->body, req->body_len);
        call->req.body = b;
    }
    call->cb = cb;
    call->ud = ud;
    pthread_mutex_lock(&c->lock);
    if (c->submit_tail != NULL)
        c->submit_tail->next = call;
    else
        c->submit_head = call;
    c->submit_tail = call;
    pthread_mutex_unlock(&c->lock);
    uint64_t one = 1;
    (void)!write(c->efd, &one, sizeof(one));
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    mq_rpc_result_t *res;
} rpc__sync_t;

static void rpc__sync_cb(void *ud, mq_rpc_result_t *res)
{
    rpc__sync_t *s = ud;
    pthread_mutex_lock(&s->lock);
    s->res = res;
    s->done = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void mq_rpc_call_sync(mq_rpc_client_t *c, const mq_rpc_request_t *req, mq_rpc_result_t *res)
{
    rpc__sync_t s = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    mq_rpc_call(c, req, rpc__sync_cb, &s);
    pthread_mutex_lock(&s.lock);
    while (!s.done)
        pthread_cond_wait(&s.cond, &s.lock);
    pthread_mutex_unlock(&s.lock);
    *res = *s.res;
    free(s.res);
    pthread_cond_destroy(&s.cond);
    pthread_mutex_destroy(&s.lock);
}
