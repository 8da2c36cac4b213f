/* mq.c -- AMQP connections that recover by themselves: topology, confirmed publishing, consumers. */
#include "mq/mq_internal.h"

#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/core.h"
#include "log/log.h"

/* ================================================================ small helpers */

const char *mq_strerror(int err)
{
    switch (err) {
    case MQ_OK:
        return "ok";
    case MQ_EDOWN:
        return "broker unreachable";
    case MQ_ENACK:
        return "broker refused the message";
    case MQ_ETIMEOUT:
        return "timed out";
    case MQ_ENOROUTE:
        return "no queue bound to the routing key";
    case MQ_EPROTOCOL:
        return "protocol error";
    case MQ_ESTOPPED:
        return "shutting down";
    case MQ_ECONFIG:
        return "bad configuration";
    }
    return "unknown error";
}

amqp_bytes_t mq__bytes(const char *s)
{
    return s != NULL ? amqp_cstring_bytes(s) : amqp_empty_bytes;
}

static char **mq__strv_dup(const char *const *v)
{
    size_t n = 0;
    while (v != NULL && v[n] != NULL)
        n++;
    char **out = xcalloc(n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

static const char *mq__reply_error(amqp_rpc_reply_t r)
{
    static __thread char buf[160];
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return "ok";
    case AMQP_RESPONSE_NONE:
        return "missing RPC reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, sizeof(buf), "connection closed by broker: %d %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, sizeof(buf), "channel closed by broker: %d %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(buf, sizeof(buf), "broker error, method 0x%08x", r.reply.id);
        }
        return buf;
    }
    return "unknown reply";
}

/* ================================================================ headers */

void mq__headers_init(mq__headers_t *h)
{
    memset(h, 0, sizeof(*h));
    h->table.entries = h->entries;
}

void mq__headers_add_str(mq__headers_t *h, const char *key, const char *value)
{
    if (value == NULL)
        return;
    CORE_ASSERT((size_t)h->table.num_entries < CORE_ARRAY_SIZE(h->entries));
    amqp_table_entry_t *e = &h->entries[h->table.num_entries++];
    e->key = amqp_cstring_bytes(key);
    e->value.kind = AMQP_FIELD_KIND_UTF8;
    e->value.value.bytes = amqp_cstring_bytes(value);
}

void mq__headers_add_int(mq__headers_t *h, const char *key, int64_t value)
{
    CORE_ASSERT((size_t)h->table.num_entries < CORE_ARRAY_SIZE(h->entries));
    amqp_table_entry_t *e = &h->entries[h->table.num_entries++];
    e->key = amqp_cstring_bytes(key);
    e->value.kind = AMQP_FIELD_KIND_I64;
    e->value.value.i64 = value;
}

/* ================================================================ decoding */

static const char *mq__keep(mq__decoded_t *d, const void *bytes, size_t len)
{
    CORE_ASSERT(d->nstrs < CORE_ARRAY_SIZE(d->strs));
    char *s = xstrndup(bytes, len);
    d->strs[d->nstrs++] = s;
    return s;
}

static const char *mq__prop(mq__decoded_t *d, const amqp_basic_properties_t *p, amqp_flags_t flag,
                            const amqp_bytes_t *b)
{
    return (p->_flags & flag) ? mq__keep(d, b->bytes, b->len) : NULL;
}

static int64_t mq__field_int(const amqp_field_value_t *v, int *ok)
{
    *ok = 1;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
        return v->value.i8;
    case AMQP_FIELD_KIND_U8:
        return v->value.u8;
    case AMQP_FIELD_KIND_I16:
        return v->value.i16;
    case AMQP_FIELD_KIND_U16:
        return v->value.u16;
    case AMQP_FIELD_KIND_I32:
        return v->value.i32;
    case AMQP_FIELD_KIND_U32:
        return v->value.u32;
    case AMQP_FIELD_KIND_I64:
        return v->value.i64;
    case AMQP_FIELD_KIND_U64:
        return (int64_t)v->value.u64;
    }
    *ok = 0;
    return 0;
}

void mq__decode(mq__decoded_t *d, const amqp_basic_properties_t *p, const amqp_bytes_t *body)
{
    memset(d, 0, sizeof(*d));
    mq_message_t *m = &d->m;
    m->type = mq__prop(d, p, AMQP_BASIC_TYPE_FLAG, &p->type);
    m->message_id = mq__prop(d, p, AMQP_BASIC_MESSAGE_ID_FLAG, &p->message_id);
    m->correlation_id = mq__prop(d, p, AMQP_BASIC_CORRELATION_ID_FLAG, &p->correlation_id);
    m->reply_to = mq__prop(d, p, AMQP_BASIC_REPLY_TO_FLAG, &p->reply_to);
    m->content_type = mq__prop(d, p, AMQP_BASIC_CONTENT_TYPE_FLAG, &p->content_type);
    m->app_id = mq__prop(d, p, AMQP_BASIC_APP_ID_FLAG, &p->app_id);
    if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
        m->timestamp = (int64_t)p->timestamp;
    if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < p->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &p->headers.entries[i];
            const char *k = e->key.bytes;
            size_t kl = e->key.len;
            int ok;
            if (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES) {
                const amqp_bytes_t *b = &e->value.value.bytes;
#define MQ__HDR(name, field)                                                                                 \
    if (kl == sizeof(name) - 1 && memcmp(k, name, kl) == 0 && m->field == NULL)                              \
        m->field = mq__keep(d, b->bytes, b->len);
                MQ__HDR("x-request-id", request_id)
                MQ__HDR("x-user-id", user_id)
                MQ__HDR("x-params", params)
                MQ__HDR("x-query", query)
                MQ__HDR("x-client-addr", client_addr)
                MQ__HDR("x-routing-key", routing_key)
#undef MQ__HDR
            } else {
                int64_t v = mq__field_int(&e->value, &ok);
                if (!ok)
                    continue;
                if (kl == 8 && memcmp(k, "x-status", 8) == 0)
                    m->status = (int)v;
                else if (kl == 10 && memcmp(k, "x-deadline", 10) == 0 && v > 0)
                    m->deadline_ms = v;
                else if (kl == 7 && memcmp(k, "x-retry", 7) == 0 && v >= 0)
                    m->retries = (unsigned)v;
            }
        }
    }
    m->body = body->bytes;
    m->body_len = body->len;
}

void mq__decoded_free(mq__decoded_t *d)
{
    for (size_t i = 0; i < d->nstrs; i++)
        free(d->strs[i]);
    d->nstrs = 0;
}

/* ================================================================ connection */

mq_t *mq_new(const mq_conf_t *conf)
{
    if (conf->url == NULL)
        return NULL;
    mq_t *mq = xcalloc(1, sizeof(*mq));
    mq->url = xstrdup(conf->url);
    mq->url_parsed = xstrdup(conf->url);
    amqp_default_connection_info(&mq->ci);
    if (amqp_parse_url(mq->url_parsed, &mq->ci) != AMQP_STATUS_OK || mq->ci.ssl) {
        free(mq->url);
        free(mq->url_parsed);
        free(mq);
        return NULL;
    }
    /* "amqp://host:5672/" parses as the vhost "", which RabbitMQ never has (login is refused with
     * 530); everyone writing it means the default vhost. */
    if (mq->ci.vhost == NULL || mq->ci.vhost[0] == '\0')
        mq->ci.vhost = (char *)"/";
    mq->app_id = xstrdup(conf->app_id != NULL ? conf->app_id : "unknown");
    mq->prefetch = conf->prefetch ? conf->prefetch : 100;
    mq->heartbeat_s = conf->heartbeat_s ? conf->heartbeat_s : 15;
    mq->max_retries = conf->max_retries ? conf->max_retries : 5;
    mq->confirms = conf->confirms;
    mq->settle_later = conf->settle_later;
    return mq;
}

void mq_free(mq_t *mq)
{
    if (mq == NULL)
        return;
    mq__close(mq, 1);
    for (size_t i = 0; i < mq->ndecls; i++) {
        free(mq->decls[i].name);
        free(mq->decls[i].exchange);
        for (char **k = mq->decls[i].keys; k != NULL && *k != NULL; k++)
            free(*k);
        free(mq->decls[i].keys);
    }
    free(mq->decls);
    for (size_t i = 0; i < mq->nconsumers; i++)
        free(mq->consumers[i].queue);
    free(mq->consumers);
    free(mq->app_id);
    free(mq->url);
    free(mq->url_parsed);
    free(mq);
}

int mq_connected(const mq_t *mq)
{
    return mq->up;
}

void mq__close(mq_t *mq, int graceful)
{
    if (mq->conn == NULL)
        return;
    if (graceful && mq->up) {
        amqp_channel_close(mq->conn, MQ__CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(mq->conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(mq->conn);
    mq->conn = NULL;
    mq->up = 0;
    mq->consuming = 0;
    mq->unacked_tag = 0; /* delivery tags belong to the channel that just closed */
    mq->unacked_count = 0;
}

void mq__backoff(mq_t *mq)
{
    mq->backoff_ms = mq->backoff_ms == 0 ? 100 : mq->backoff_ms * 2;
    if (mq->backoff_ms > 5000)
        mq->backoff_ms = 5000;
    unsigned jitter = (unsigned)(random() % (mq->backoff_ms / 4 + 1));
    mq->next_attempt_ms = core_now_ms() + mq->backoff_ms - mq->backoff_ms / 8 + jitter;
}

static int mq__check(mq_t *mq, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(mq->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    log_warn(NULL, "amqp: %s failed: %s", what, mq__reply_error(r));
    return MQ_EDOWN;
}

static int mq__declare_queue(mq_t *mq, const char *name, int exclusive, int with_dlq)
{
    amqp_table_entry_t args[2];
    amqp_table_t table = {0, args};
    char *dlq = NULL;
    int rc = 0;
    if (with_dlq) {
        dlq = xasprintf("%s.dlq", name);
        amqp_queue_declare(mq->conn, MQ__CHANNEL, amqp_cstring_bytes(dlq), 0, 1, 0, 0, amqp_empty_table);
        if ((rc = mq__check(mq, "declare dead-letter queue")) != 0)
            goto out;
        args[0].key = amqp_cstring_bytes("x-dead-letter-exchange");
        args[0].value.kind = AMQP_FIELD_KIND_UTF8;
        args[0].value.value.bytes = amqp_cstring_bytes("");
        args[1].key = amqp_cstring_bytes("x-dead-letter-routing-key");
        args[1].value.kind = AMQP_FIELD_KIND_UTF8;
        args[1].value.value.bytes = amqp_cstring_bytes(dlq);
        table.num_entries = 2;
    }
    amqp_queue_declare(mq->conn, MQ__CHANNEL, amqp_cstring_bytes(name), 0, !exclusive, exclusive, exclusive,
                       table);
    rc = mq__check(mq, "declare queue");
out:
    free(dlq);
    return rc;
}

static int mq__declare(mq_t *mq)
{
    amqp_exchange_declare(mq->conn, MQ__CHANNEL, amqp_cstring_bytes(MQ_EXCHANGE_RPC),
                          amqp_cstring_bytes("direct"), 0, 1, 0, 0, amqp_empty_table);
    if (mq__check(mq, "declare exchange rpc"))
        return MQ_EDOWN;
    amqp_exchange_declare(mq->conn, MQ__CHANNEL, amqp_cstring_bytes(MQ_EXCHANGE_EVENTS),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    if (mq__check(mq, "declare exchange events"))
        return MQ_EDOWN;
    for (size_t i = 0; i < mq->ndecls; i++) {
        mq__decl_t *d = &mq->decls[i];
        if (d->kind == MQ__DECL_RPC) {
            char *q = xasprintf("%s.rpc", d->name);
            int rc = mq__declare_queue(mq, q, 0, 0);
            if (rc == 0) {
                amqp_queue_bind(mq->conn, MQ__CHANNEL, amqp_cstring_bytes(q),
                                amqp_cstring_bytes(MQ_EXCHANGE_RPC), amqp_cstring_bytes(d->name),
                                amqp_empty_table);
                rc = mq__check(mq, "bind rpc queue");
            }
            free(q);
            if (rc)
                return rc;
        } else {
            const char *exchange = MQ_EXCHANGE_EVENTS;
            if (d->kind == MQ__DECL_TOPIC) {
                exchange = d->exchange;
                amqp_exchange_declare(mq->conn, MQ__CHANNEL, amqp_cstring_bytes(exchange),
                                      amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
                if (mq__check(mq, "declare topic exchange"))
                    return MQ_EDOWN;
                if (d->name == NULL)
                    continue;
            }
            /* a per-copy queue (exclusive) of its own topic exchange needs no dead letters */
            if (mq__declare_queue(mq, d->name, d->exclusive, d->kind != MQ__DECL_TOPIC || !d->exclusive))
                return MQ_EDOWN;
            for (char **k = d->keys; k != NULL && *k != NULL; k++) {
                amqp_queue_bind(mq->conn, MQ__CHANNEL, amqp_cstring_bytes(d->name),
                                amqp_cstring_bytes(exchange), amqp_cstring_bytes(*k), amqp_empty_table);
                if (mq__check(mq, "bind event queue"))
                    return MQ_EDOWN;
            }
        }
    }
    return 0;
}

int mq__open(mq_t *mq)
{
    mq__close(mq, 0);
    mq->conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(mq->conn);
    struct timeval connect_tv = {.tv_sec = 2}, rpc_tv = {.tv_sec = 5};
    CORE_ASSERT(sock != NULL);
    int st = amqp_socket_open_noblock(sock, mq->ci.host, mq->ci.port, &connect_tv);
    if (st != AMQP_STATUS_OK) {
        /* rabbitmq-c's words for a refused or unreachable address are "a socket error occurred" */
        snprintf(mq->last_error, sizeof(mq->last_error), "connect to %s:%d: %s", mq->ci.host, mq->ci.port,
                 st == AMQP_STATUS_SOCKET_ERROR ? "refused or unreachable" : amqp_error_string2(st));
        log_debug(NULL, "amqp: %s", mq->last_error);
        goto fail;
    }
    amqp_set_rpc_timeout(mq->conn, &rpc_tv);
    /* consumer_cancel_notify: without it the broker never tells us a queue we consume was
     * deleted (rabbitmq-c 0.11 does not advertise it), and the consumer would sit idle. */
    amqp_table_entry_t caps[1], props[2];
    caps[0].key = amqp_cstring_bytes("consumer_cancel_notify");
    caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[0].value.value.boolean = 1;
    props[0].key = amqp_cstring_bytes("connection_name");
    props[0].value.kind = AMQP_FIELD_KIND_UTF8;
    props[0].value.value.bytes = amqp_cstring_bytes(mq->app_id);
    props[1].key = amqp_cstring_bytes("capabilities");
    props[1].value.kind = AMQP_FIELD_KIND_TABLE;
    props[1].value.value.table = (amqp_table_t){1, caps};
    amqp_table_t client_props = {2, props};
    amqp_rpc_reply_t r =
        amqp_login_with_properties(mq->conn, mq->ci.vhost, 0, 131072, (int)mq->heartbeat_s, &client_props,
                                   AMQP_SASL_METHOD_PLAIN, mq->ci.user, mq->ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(mq->last_error, sizeof(mq->last_error), "login to %s:%d as %s: %s", mq->ci.host, mq->ci.port,
                 mq->ci.user, mq__reply_error(r));
        log_warn(NULL, "amqp: %s", mq->last_error);
        goto fail;
    }
    amqp_channel_open(mq->conn, MQ__CHANNEL);
    if (mq__check(mq, "channel open"))
        goto fail;
    if (mq->confirms) {
        amqp_confirm_select(mq->conn, MQ__CHANNEL);
        if (mq__check(mq, "confirm select"))
            goto fail;
    }
    if (mq->nconsumers > 0) {
        amqp_basic_qos(mq->conn, MQ__CHANNEL, 0, (uint16_t)(mq->prefetch > 65535 ? 65535 : mq->prefetch), 0);
        if (mq__check(mq, "basic.qos"))
            goto fail;
    }
    if (mq__declare(mq))
        goto fail;
    mq->up = 1;
    mq->generation++;
    mq->publish_seq = 0;
    mq->backoff_ms = 0;
    log_info(NULL, "amqp: connected to %s:%d", mq->ci.host, mq->ci.port);
    return 0;
fail:
    mq__close(mq, 0);
    return MQ_EDOWN;
}

const char *mq_last_error(const mq_t *mq)
{
    return mq->last_error[0] != '\0' ? mq->last_error : "no error recorded";
}

int mq_wait_for_broker(const mq_conf_t *conf, long timeout_ms, const sigset_t *stop, char *err, size_t errlen)
{
    mq_t *probe = mq_new(conf);
    if (probe == NULL) {
        snprintf(err, errlen, "does not parse (amqp://user:password@host:port/vhost expected)");
        return -1;
    }
    uint64_t deadline = core_now_ms() + (uint64_t)timeout_ms;
    int rc;
    while ((rc = mq_connect(probe)) != 0 && core_now_ms() < deadline) {
        struct timespec pause = {.tv_sec = 1};
        if (stop == NULL) {
            nanosleep(&pause, NULL);
        } else if (sigtimedwait(stop, NULL, &pause) > 0) {
            snprintf(err, errlen, "a signal came while waiting for the broker");
            break;
        }
    }
    if (rc != 0 && core_now_ms() >= deadline)
        snprintf(err, errlen, "no broker accepted a connection in %ld s: %s", timeout_ms / 1000,
                 mq_last_error(probe));
    mq_free(probe);
    return rc == 0 ? 0 : -1;
}

int mq_connect(mq_t *mq)
{
    return mq->up ? 0 : mq__open(mq);
}

/* ================================================================ topology */

static void mq__add_decl(mq_t *mq, int kind, const char *name, const char *const *keys, int exclusive)
{
    mq->decls = xrealloc(mq->decls, (mq->ndecls + 1) * sizeof(*mq->decls));
    mq->decls[mq->ndecls++] = (mq__decl_t){
        .name = name != NULL ? xstrdup(name) : NULL,
        .keys = keys != NULL ? mq__strv_dup(keys) : NULL,
        .kind = kind,
        .exclusive = exclusive,
    };
}

void mq_declare_rpc_queue(mq_t *mq, const char *service)
{
    mq__add_decl(mq, MQ__DECL_RPC, service, NULL, 0);
}

void mq_declare_event_queue(mq_t *mq, const char *queue, const char *const *keys, int exclusive)
{
    mq__add_decl(mq, MQ__DECL_EVENTS, queue, keys, exclusive);
}

void mq_declare_work_queue(mq_t *mq, const char *queue)
{
    mq__add_decl(mq, MQ__DECL_WORK, queue, NULL, 0);
}

void mq_declare_topic_queue(mq_t *mq, const char *exchange, const char *queue, const char *const *keys,
                            int exclusive)
{
    mq__add_decl(mq, MQ__DECL_TOPIC, queue, keys, exclusive);
    mq->decls[mq->ndecls - 1].exchange = xstrdup(exchange);
}

/* ================================================================ publishing */

static void mq__down(mq_t *mq, const char *why)
{
    if (mq->up)
        log_warn(NULL, "amqp: connection lost: %s", why);
    mq__close(mq, 0);
}

/* Waits for the confirm of publish number seq. */
static int mq__wait_confirm(mq_t *mq, uint64_t seq, unsigned timeout_ms)
{
    uint64_t deadline = core_now_ms() + timeout_ms;
    int result = MQ_OK;
    for (;;) {
        uint64_t now = core_now_ms();
        if (now >= deadline)
            return MQ_ETIMEOUT;
        struct timeval tv = {.tv_sec = (deadline - now) / 1000, .tv_usec = ((deadline - now) % 1000) * 1000};
        amqp_frame_t f;
        int st = amqp_simple_wait_frame_noblock(mq->conn, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT)
            return MQ_ETIMEOUT;
        if (st != AMQP_STATUS_OK) {
            mq__down(mq, amqp_error_string2(st));
            return MQ_EDOWN;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            if (a->delivery_tag == seq || (a->multiple && a->delivery_tag >= seq))
                return result;
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *n = f.payload.method.decoded;
            if (n->delivery_tag == seq || (n->multiple && n->delivery_tag >= seq))
                return MQ_ENACK;
            break;
        }
        case AMQP_BASIC_RETURN_METHOD: {
            /* A returned mandatory message is followed by its ack: remember, keep waiting. */
            amqp_message_t msg;
            amqp_rpc_reply_t r = amqp_read_message(mq->conn, f.channel, &msg, 0);
            if (r.reply_type != AMQP_RESPONSE_NORMAL) {
                mq__down(mq, "reading a returned message");
                return MQ_EDOWN;
            }
            amqp_destroy_message(&msg);
            result = MQ_ENOROUTE;
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            mq__down(mq, "closed by the broker");
            return MQ_EDOWN;
        }
    }
}

/* A publisher talks to rabbitmq-c only when it publishes, so an idle one sends no heartbeats
 * and reads nothing: the broker may have closed it long ago. Read whatever is pending (this
 * also sends a due heartbeat) and find out before writing. */
static void mq__check_idle(mq_t *mq)
{
    while (mq->up) {
        amqp_frame_t f;
        struct timeval zero = {0, 0};
        int st = amqp_simple_wait_frame_noblock(mq->conn, &f, &zero);
        if (st == AMQP_STATUS_TIMEOUT)
            return;
        if (st != AMQP_STATUS_OK) {
            mq__down(mq, amqp_error_string2(st));
            return;
        }
        if (f.frame_type == AMQP_FRAME_METHOD && (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                                                  f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD))
            mq__down(mq, "closed by the broker");
        /* Stray acks of publishes that timed out earlier are dropped here. */
    }
}

static int mq__publish_once(mq_t *mq, const mq_publish_t *p, unsigned timeout_ms, const char *message_id);

int mq_publish(mq_t *mq, const mq_publish_t *p, unsigned timeout_ms)
{
    char idbuf[CORE_UUID_BUFSZ];
    const char *message_id = p->message_id;
    if (message_id == NULL) {
        core_uuid(idbuf);
        message_id = idbuf;
    }
    mq__check_idle(mq);
    int rc = mq__publish_once(mq, p, timeout_ms, message_id);
    if (rc == MQ_EDOWN && !mq->up) /* the write failed on a dead connection: one fresh attempt */
        rc = mq__publish_once(mq, p, timeout_ms, message_id);
    return rc;
}

static int mq__publish_once(mq_t *mq, const mq_publish_t *p, unsigned timeout_ms, const char *message_id)
{
    if (mq_connect(mq) != 0)
        return MQ_EDOWN;
    mq__headers_t h;
    mq__headers_init(&h);
    mq__headers_add_str(&h, "x-request-id", p->request_id);
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                  AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG,
        .content_type = amqp_cstring_bytes(p->content_type != NULL ? p->content_type : "application/json"),
        .delivery_mode = p->persistent ? AMQP_DELIVERY_PERSISTENT : AMQP_DELIVERY_NONPERSISTENT,
        .message_id = amqp_cstring_bytes(message_id),
        .timestamp = (uint64_t)(core_wall_ms() / 1000),
        .app_id = amqp_cstring_bytes(mq->app_id),
        .headers = h.table,
    };
    if (p->type != NULL) {
        props._flags |= AMQP_BASIC_TYPE_FLAG;
        props.type = amqp_cstring_bytes(p->type);
    }
    amqp_bytes_t body = {p->body_len, (void *)p->body};
    int st = amqp_basic_publish(mq->conn, MQ__CHANNEL, mq__bytes(p->exchange ? p->exchange : ""),
                                mq__bytes(p->routing_key), 0, 0, &props, body);
    if (st != AMQP_STATUS_OK) {
        mq__down(mq, amqp_error_string2(st));
        return MQ_EDOWN;
    }
    if (!mq->confirms)
        return MQ_OK;
    return mq__wait_confirm(mq, ++mq->publish_seq, timeout_ms);
}

int mq_publish_event(mq_t *mq, const char *routing_key, const char *message_id, const char *request_id,
                     const char *json, size_t len, unsigned timeout_ms)
{
    mq_publish_t p = {
        .exchange = MQ_EXCHANGE_EVENTS,
        .routing_key = routing_key,
        .type = routing_key,
        .message_id = message_id,
        .request_id = request_id,
        .persistent = 1,
        .body = json,
        .body_len = len,
    };
    return mq_publish(mq, &p, timeout_ms);
}

/* ================================================================ consuming */

void mq_consume(mq_t *mq, const char *queue, mq_handler_fn fn, void *ud)
{
    mq->consumers = xrealloc(mq->consumers, (mq->nconsumers + 1) * sizeof(*mq->consumers));
    mq->consumers[mq->nconsumers++] = (mq__consumer_t){.queue = xstrdup(queue), .fn = fn, .ud = ud};
}

void mq_serve_rpc(mq_t *mq, const char *service, mq_rpc_fn fn, void *ud)
{
    mq_declare_rpc_queue(mq, service);
    char *q = xasprintf("%s.rpc", service);
    mq_consume(mq, q, NULL, ud);
    mq->consumers[mq->nconsumers - 1].rpc_fn = fn;
    free(q);
}

void mq_set_tick(mq_t *mq, unsigned tick_ms, void (*fn)(mq_t *mq, void *ud), void *ud)
{
    mq->tick_ms = tick_ms;
    mq->tick_fn = fn;
    mq->tick_ud = ud;
}

static int mq__start_consumers(mq_t *mq)
{
    mq->consuming = 1;
    for (size_t i = 0; i < mq->nconsumers; i++) {
        amqp_basic_consume(mq->conn, MQ__CHANNEL, amqp_cstring_bytes(mq->consumers[i].queue),
                           amqp_cstring_bytes(mq->consumers[i].queue), 0, 0, 0, amqp_empty_table);
        if (mq__check(mq, "basic.consume")) {
            mq__close(mq, 0);
            return MQ_EDOWN;
        }
    }
    return 0;
}

static mq__consumer_t *mq__consumer_by_tag(mq_t *mq, amqp_bytes_t tag)
{
    for (size_t i = 0; i < mq->nconsumers; i++)
        if (strlen(mq->consumers[i].queue) == tag.len &&
            memcmp(mq->consumers[i].queue, tag.bytes, tag.len) == 0)
            return &mq->consumers[i];
    return NULL;
}

static int mq__send_reply(mq_t *mq, const mq_message_t *req, mq_reply_t *rep)
{
    if (rep->status == 0) {
        rep->status = 500;
        free(rep->body);
        rep->body = xstrdup("{\"type\":\"about:blank\",\"title\":\"Internal Server Error\",\"status\":500}");
        rep->body_len = strlen(rep->body);
        free(rep->content_type);
        rep->content_type = xstrdup("application/problem+json");
    }
    mq__headers_t h;
    mq__headers_init(&h);
    mq__headers_add_int(&h, "x-status", rep->status);
    mq__headers_add_str(&h, "x-request-id", req->request_id);
    mq__headers_add_str(&h, "x-headers", rep->headers_json);
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_APP_ID_FLAG,
        .content_type = amqp_cstring_bytes(rep->content_type != NULL ? rep->content_type
                                                                     : "application/json; charset=utf-8"),
        .headers = h.table,
        .app_id = amqp_cstring_bytes(mq->app_id),
    };
    if (req->correlation_id != NULL) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = amqp_cstring_bytes(req->correlation_id);
    }
    amqp_bytes_t body = {rep->body_len, rep->body};
    int st = amqp_basic_publish(mq->conn, MQ__CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(req->reply_to), 0,
                                0, &props, body);
    return st == AMQP_STATUS_OK ? 0 : MQ_EDOWN;
}

/* Republishes a failed message to its own queue with x-retry incremented. Through the default
 * exchange its routing key becomes the queue's name, so the first key is kept in x-routing-key
 * (which mq__decode gives back as routing_key): consumers of events tell them apart by it. */
static int mq__retry(mq_t *mq, const amqp_envelope_t *env, const mq_message_t *m)
{
    amqp_basic_properties_t props = env->message.properties;
    amqp_table_entry_t entries[32];
    int n = 0, keyed = 0;
    if (props._flags & AMQP_BASIC_HEADERS_FLAG)
        for (int i = 0; i < props.headers.num_entries && n < 30; i++) {
            amqp_bytes_t k = props.headers.entries[i].key;
            if (k.len == 7 && memcmp(k.bytes, "x-retry", 7) == 0)
                continue;
            keyed |= k.len == 13 && memcmp(k.bytes, "x-routing-key", 13) == 0;
            entries[n++] = props.headers.entries[i];
        }
    entries[n].key = amqp_cstring_bytes("x-retry");
    entries[n].value.kind = AMQP_FIELD_KIND_I64;
    entries[n].value.value.i64 = (int64_t)m->retries + 1;
    n++;
    if (!keyed) {
        entries[n].key = amqp_cstring_bytes("x-routing-key");
        entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[n].value.value.bytes = env->routing_key;
        n++;
    }
    props.headers.entries = entries;
    props.headers.num_entries = n;
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    int st = amqp_basic_publish(mq->conn, MQ__CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(m->queue), 0, 0,
                                &props, env->message.body);
    return st == AMQP_STATUS_OK ? 0 : MQ_EDOWN;
}

/* Acks are batched: a handled delivery is acked with multiple=true once nothing more is buffered
 * to read, after MQ__ACK_BATCH deliveries or MQ__ACK_DELAY_MS, whichever comes first (and before
 * anything else is said about deliveries). Deliveries on a connection are handled in order by
 * one thread, so "everything up to this tag" is exactly what was handled. A crash redelivers at
 * most that batch, which idempotent consumers absorb; the broker does a fraction of the work. */
#define MQ__ACK_BATCH 32
#define MQ__ACK_DELAY_MS 20

static int mq__flush_acks(mq_t *mq)
{
    if (mq->unacked_tag == 0 || !mq->up)
        return 0;
    int st = amqp_basic_ack(mq->conn, MQ__CHANNEL, mq->unacked_tag, 1);
    mq->unacked_tag = 0;
    mq->unacked_count = 0;
    return st;
}

static int mq__ack_later(mq_t *mq, uint64_t tag)
{
    if (mq->settle_later) /* held deliveries below this tag must not be covered */
        return amqp_basic_ack(mq->conn, MQ__CHANNEL, tag, 0);
    if (mq->unacked_count++ == 0)
        mq->unacked_since_ms = core_now_ms();
    mq->unacked_tag = tag;
    if (mq->unacked_count >= MQ__ACK_BATCH || core_now_ms() - mq->unacked_since_ms >= MQ__ACK_DELAY_MS)
        return mq__flush_acks(mq);
    return 0;
}

static void mq__dispatch(mq_t *mq, amqp_envelope_t *env)
{
    mq__consumer_t *c = mq__consumer_by_tag(mq, env->consumer_tag);
    mq__decoded_t d;
    mq__decode(&d, &env->message.properties, &env->message.body);
    d.m.queue = c != NULL ? c->queue : "";
    d.m.exchange = mq__keep(&d, env->exchange.bytes, env->exchange.len);
    if (d.m.routing_key == NULL) /* a retried message keeps the key it was first published with */
        d.m.routing_key = mq__keep(&d, env->routing_key.bytes, env->routing_key.len);
    d.m.redelivered = env->redelivered;
    d.m.delivery = (mq_delivery_t){.tag = env->delivery_tag, .generation = mq->generation};
    int st = 0;

    if (c == NULL) {
        st = mq__flush_acks(mq);
        if (st == 0)
            st = amqp_basic_reject(mq->conn, env->channel, env->delivery_tag, 1);
    } else if (c->rpc_fn != NULL) {
        if (d.m.deadline_ms > 0 && core_wall_ms() > d.m.deadline_ms) {
            log_debug(d.m.request_id, "amqp: %s taken %lld ms after its deadline: skipped",
                      d.m.type ? d.m.type : "-", (long long)(core_wall_ms() - d.m.deadline_ms));
        } else if (d.m.reply_to != NULL) {
            mq_reply_t rep = {0};
            c->rpc_fn(mq, &d.m, &rep, c->ud);
            st = mq__send_reply(mq, &d.m, &rep);
            free(rep.body);
            free(rep.content_type);
            free(rep.headers_json);
        }
        if (st == 0)
            st = mq__ack_later(mq, env->delivery_tag);
    } else {
        mq_disposition_t disp = c->fn(mq, &d.m, c->ud);
        if (disp == MQ_RETRY && d.m.retries + 1 > mq->max_retries) {
            log_warn(d.m.request_id, "amqp: message %s on %s failed %u times: dead-lettered",
                     d.m.message_id ? d.m.message_id : "-", c->queue, d.m.retries + 1);
            disp = MQ_DEAD;
        }
        switch (disp) {
        case MQ_ACK:
            st = mq__ack_later(mq, env->delivery_tag);
            break;
        case MQ_RETRY: {
            unsigned pause = 50u << (d.m.retries < 6 ? d.m.retries : 6);
            core_sleep_ms(pause, mq->stop);
            st = mq__retry(mq, env, &d.m);
            if (st == 0)
                st = mq__ack_later(mq, env->delivery_tag);
            break;
        }
        case MQ_DEAD:
            st = mq__flush_acks(mq);
            if (st == 0)
                st = amqp_basic_reject(mq->conn, env->channel, env->delivery_tag, 0);
            break;
        case MQ_HOLD:
            if (!mq->settle_later) {
                log_error(d.m.request_id, "amqp: MQ_HOLD on %s, which does not settle later: requeued",
                          c->queue);
                st = mq__flush_acks(mq);
                if (st == 0)
                    st = amqp_basic_reject(mq->conn, env->channel, env->delivery_tag, 1);
            }
            break;
        }
    }
    if (st != 0)
        mq__down(mq, amqp_error_string2(st));
    mq__decoded_free(&d);
}

static void mq__tick(mq_t *mq)
{
    if (mq->tick_fn == NULL)
        return;
    uint64_t now = core_now_ms();
    if (now < mq->next_tick_ms)
        return;
    mq->next_tick_ms = now + mq->tick_ms;
    mq->tick_fn(mq, mq->tick_ud);
}

/* Reads one thing from the broker: a delivery (dispatched: returns 1), another frame, or nothing in
 * wait_ms (0). */
static int mq__poll_once(mq_t *mq, unsigned wait_ms)
{
    amqp_envelope_t env;
    struct timeval tv = {.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
    amqp_maybe_release_buffers(mq->conn);
    amqp_rpc_reply_t r = amqp_consume_message(mq->conn, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        mq__dispatch(mq, &env);
        amqp_destroy_envelope(&env);
        if (mq->up && !amqp_frames_enqueued(mq->conn) && !amqp_data_in_buffer(mq->conn) &&
            mq__flush_acks(mq) != 0)
            mq__down(mq, "ack failed");
        return 1;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
        if (mq__flush_acks(mq) != 0)
            mq__down(mq, "ack failed");
        return 0;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        amqp_frame_t f;
        if (amqp_simple_wait_frame(mq->conn, &f) != AMQP_STATUS_OK) {
            mq__down(mq, "reading a frame");
            return 0;
        }
        if (f.frame_type == AMQP_FRAME_METHOD) {
            switch (f.payload.method.id) {
            case AMQP_CHANNEL_CLOSE_METHOD:
            case AMQP_CONNECTION_CLOSE_METHOD:
                mq__down(mq, "closed by the broker");
                break;
            case AMQP_BASIC_CANCEL_METHOD:
                /* Our queue was deleted under us: reconnect, which redeclares it. */
                mq__down(mq, "consumer cancelled by the broker");
                break;
            }
        }
        return 0;
    }
    mq__down(mq, mq__reply_error(r));
    return 0;
}

int mq_settle(mq_t *mq, const mq_delivery_t *d, mq_disposition_t disp)
{
    if (!mq->up || d->generation != mq->generation)
        return MQ_EDOWN;
    int st;
    switch (disp) {
    case MQ_ACK:
        st = amqp_basic_ack(mq->conn, MQ__CHANNEL, d->tag, 0);
        break;
    case MQ_DEAD:
        st = amqp_basic_reject(mq->conn, MQ__CHANNEL, d->tag, 0);
        break;
    default:
        st = amqp_basic_nack(mq->conn, MQ__CHANNEL, d->tag, 0, 1);
        break;
    }
    if (st != 0) {
        mq__down(mq, amqp_error_string2(st));
        return MQ_EDOWN;
    }
    return 0;
}

int mq_fd(const mq_t *mq)
{
    return mq->up ? amqp_get_sockfd(mq->conn) : -1;
}

/* One turn of the loop: connect when down and due, else read (waiting up to wait_ms) and tick.
 * Returns 1 if a delivery was dispatched. */
static int mq__turn(mq_t *mq, volatile int *stop, unsigned wait_ms, unsigned down_sleep_ms)
{
    if (mq->up && !mq->consuming && mq__start_consumers(mq) != 0) /* connected before mq_run */
        mq__backoff(mq);
    if (!mq->up) {
        uint64_t now = core_now_ms();
        if (now >= mq->next_attempt_ms) {
            if (mq__open(mq) == 0 && mq__start_consumers(mq) == 0)
                return 0;
            mq__backoff(mq);
        }
        mq__tick(mq);
        core_sleep_ms(down_sleep_ms, stop);
        return 0;
    }
    int got = mq__poll_once(mq, wait_ms);
    mq__tick(mq);
    return got;
}

int mq_step(mq_t *mq, volatile int *stop, unsigned wait_ms, unsigned max_messages)
{
    mq->stop = stop;
    if (max_messages == 0)
        return 0;
    int n = mq__turn(mq, stop, wait_ms, 0);
    /* and whatever else is buffered already, without waiting */
    while ((unsigned)n < max_messages && mq->up &&
           (amqp_frames_enqueued(mq->conn) || amqp_data_in_buffer(mq->conn)))
        n += mq__poll_once(mq, 0);
    return n;
}

int mq_run(mq_t *mq, volatile int *stop)
{
    mq->stop = stop;
    while (!*stop)
        mq__turn(mq, stop, 100, 50);
    if (mq->up) {
        mq__flush_acks(mq);
        for (size_t i = 0; i < mq->nconsumers; i++)
            amqp_basic_cancel(mq->conn, MQ__CHANNEL, amqp_cstring_bytes(mq->consumers[i].queue));
    }
    mq__close(mq, 1);
    return 0;
}
