/* replay.c -- `queues replay <queue>.dlq`: dead letters moved back to their original exchange and
 * routing key over AMQP, one at a time and without loss.
 *
 * For each message: basic.get with manual ack from the dlq; publish (mandatory, persistent, every
 * property and header kept but x-retry) on a channel in confirm mode; only once the broker has
 * confirmed it, and returned nothing (a mandatory message nothing is bound for comes back), ack the
 * dlq's copy. Anything else puts it back (basic.reject with requeue, or the channel's closing) and
 * stops the run: a crash at any point leaves the message in the dlq, or in both places (consumers
 * are idempotent), never in neither. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "core/core.h"
#include "queues.h"

#define REPLAY_CHANNEL 1

typedef struct {
    amqp_connection_state_t conn;
    struct timeval tv;
    uint64_t publish_seq;
    int closed; /* the channel or the connection is gone: the broker requeues what we hold */
} replay_amqp_t;

/* What a dead letter's headers say (origin_facts_t) with the strings it owns. */
typedef struct {
    origin_facts_t f;
    char *queue, *death_exchange, *death_key, *routing_key, *message_id;
} replay_letter_t;

/* ================================================================ AMQP helpers */

static const char *replay__reply_error(amqp_rpc_reply_t r, char *buf, size_t len)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return "ok";
    case AMQP_RESPONSE_NONE:
        return "no answer";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD || r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            /* both start with reply_code and reply_text */
            amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, len, "%d %.*s", m->reply_code, (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
        } else {
            snprintf(buf, len, "broker error, method 0x%08x", r.reply.id);
        }
        return buf;
    }
    return "unknown answer";
}

/* The reply code of a channel or connection close, or 0. */
static int replay__close_code(amqp_rpc_reply_t r)
{
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION)
        return 0;
    if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD || r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
        return ((amqp_channel_close_t *)r.reply.decoded)->reply_code;
    return 0;
}

/* Connects, logs in, opens the channel in confirm mode. 0, or an exit status with err filled. */
static int replay__connect(replay_amqp_t *a, const queues_t *q, char *err, size_t errlen)
{
    char *url = xstrdup(q->amqp_url), buf[256];
    struct amqp_connection_info ci;
    int rc = QUEUES_EXIT_FAILED;
    amqp_default_connection_info(&ci);
    if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK || ci.ssl) {
        snprintf(err, errlen, "AMQP_URL: not an amqp://user:password@host:port/vhost URL");
        rc = QUEUES_EXIT_REFUSED;
        goto out;
    }
    const char *vhost = ci.vhost != NULL && ci.vhost[0] != '\0' ? ci.vhost : "/"; /* as libs/mq reads it */
    if (strcmp(vhost, q->vhost) != 0) {
        snprintf(err, errlen, "AMQP_URL: its vhost %s is not QUEUES_VHOST %s", vhost, q->vhost);
        rc = QUEUES_EXIT_REFUSED;
        goto out;
    }
    a->conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(a->conn);
    CORE_ASSERT(sock != NULL);
    int st = amqp_socket_open_noblock(sock, ci.host, ci.port, &a->tv);
    if (st != AMQP_STATUS_OK) {
        snprintf(err, errlen, "AMQP_URL: cannot connect to %s:%d: %s", ci.host, ci.port,
                 amqp_error_string2(st));
        goto out;
    }
    amqp_set_rpc_timeout(a->conn, &a->tv);
    amqp_rpc_reply_t r =
        amqp_login(a->conn, vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(err, errlen, "AMQP_URL: login to %s:%d as %s, vhost %s, failed: %s", ci.host, ci.port,
                 ci.user, vhost, replay__reply_error(r, buf, sizeof(buf)));
        goto out;
    }
    amqp_channel_open(a->conn, REPLAY_CHANNEL);
    r = amqp_get_rpc_reply(a->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_confirm_select(a->conn, REPLAY_CHANNEL);
        r = amqp_get_rpc_reply(a->conn);
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(err, errlen, "AMQP_URL: opening a channel in confirm mode failed: %s",
                 replay__reply_error(r, buf, sizeof(buf)));
        goto out;
    }
    rc = QUEUES_EXIT_OK;
out:
    free(url);
    return rc;
}

static void replay__close(replay_amqp_t *a, int polite)
{
    if (a->conn == NULL)
        return;
    if (polite) {
        amqp_channel_close(a->conn, REPLAY_CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(a->conn);
    a->conn = NULL;
}

/* ================================================================ a dead letter's headers */

static char *replay__str(const amqp_field_value_t *v)
{
    if (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES)
        return NULL;
    return xstrndup(v->value.bytes.bytes, v->value.bytes.len);
}

static const amqp_field_value_t *replay__get(const amqp_table_t *t, const char *key)
{
    size_t kl = strlen(key);
    for (int i = 0; i < t->num_entries; i++)
        if (t->entries[i].key.len == kl && memcmp(t->entries[i].key.bytes, key, kl) == 0)
            return &t->entries[i].value;
    return NULL;
}

static void replay__letter(replay_letter_t *l, const amqp_basic_properties_t *p, const char *queue)
{
    memset(l, 0, sizeof(*l));
    l->f.queue = queue;
    if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        l->message_id = xstrndup(p->message_id.bytes, p->message_id.len);
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return;
    const amqp_field_value_t *v = replay__get(&p->headers, "x-routing-key");
    if (v != NULL)
        l->f.routing_key = l->routing_key = replay__str(v);
    v = replay__get(&p->headers, "x-death");
    if (v == NULL || v->kind != AMQP_FIELD_KIND_ARRAY)
        return;
    /* the entry of the queue that dead-lettered it into this dlq, else the first one */
    const amqp_table_t *chosen = NULL;
    for (int i = 0; i < v->value.array.num_entries; i++) {
        const amqp_field_value_t *e = &v->value.array.entries[i];
        if (e->kind != AMQP_FIELD_KIND_TABLE)
            continue;
        const amqp_field_value_t *qv = replay__get(&e->value.table, "queue");
        char *qn = qv != NULL ? replay__str(qv) : NULL;
        int mine = qn != NULL && strcmp(qn, queue) == 0;
        free(qn);
        if (chosen == NULL || mine)
            chosen = &e->value.table;
        if (mine)
            break;
    }
    if (chosen == NULL)
        return;
    l->f.has_death = 1;
    v = replay__get(chosen, "exchange");
    if (v != NULL)
        l->f.death_exchange = l->death_exchange = replay__str(v);
    v = replay__get(chosen, "routing-keys");
    if (v != NULL && v->kind == AMQP_FIELD_KIND_ARRAY && v->value.array.num_entries > 0)
        l->f.death_key = l->death_key = replay__str(&v->value.array.entries[0]);
}

static void replay__letter_free(replay_letter_t *l)
{
    free(l->death_exchange);
    free(l->death_key);
    free(l->routing_key);
    free(l->message_id);
}

/* ================================================================ one message */

/* Publishes body with props to exchange/key (mandatory) and waits for its confirm. 0 when
 * confirmed and routed; else an exit status with err filled. */
static int replay__publish(replay_amqp_t *a, const char *exchange, const char *key,
                           const amqp_basic_properties_t *props, amqp_bytes_t body, long timeout_ms,
                           char *err, size_t errlen)
{
    int st = amqp_basic_publish(a->conn, REPLAY_CHANNEL, amqp_cstring_bytes(exchange),
                                amqp_cstring_bytes(key), 1, 0, props, body);
    if (st != AMQP_STATUS_OK) {
        snprintf(err, errlen, "AMQP_URL: publishing failed: %s", amqp_error_string2(st));
        a->closed = 1;
        return QUEUES_EXIT_FAILED;
    }
    uint64_t seq = ++a->publish_seq, deadline = core_now_ms() + (uint64_t)timeout_ms;
    int returned = 0;
    for (;;) {
        uint64_t now = core_now_ms();
        if (now >= deadline) {
            snprintf(err, errlen, "AMQP_URL: no publisher confirm within %ld ms", timeout_ms);
            return QUEUES_EXIT_FAILED;
        }
        struct timeval tv = {.tv_sec = (time_t)((deadline - now) / 1000),
                             .tv_usec = (suseconds_t)((deadline - now) % 1000) * 1000};
        amqp_frame_t f;
        st = amqp_simple_wait_frame_noblock(a->conn, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT)
            continue;
        if (st != AMQP_STATUS_OK) {
            snprintf(err, errlen, "AMQP_URL: waiting for the confirm: %s", amqp_error_string2(st));
            a->closed = 1;
            return QUEUES_EXIT_FAILED;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_RETURN_METHOD: {
            /* nothing bound for it: the return comes before the ack */
            amqp_message_t m;
            amqp_rpc_reply_t r = amqp_read_message(a->conn, f.channel, &m, 0);
            if (r.reply_type != AMQP_RESPONSE_NORMAL) {
                snprintf(err, errlen, "AMQP_URL: reading a returned message failed");
                a->closed = 1;
                return QUEUES_EXIT_FAILED;
            }
            amqp_destroy_message(&m);
            returned = 1;
            break;
        }
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *ack = f.payload.method.decoded;
            if (ack->delivery_tag != seq && !(ack->multiple && ack->delivery_tag >= seq))
                break;
            if (!returned)
                return QUEUES_EXIT_OK;
            snprintf(err, errlen, "nothing is bound to exchange \"%s\" for routing key %s now", exchange,
                     key);
            return QUEUES_EXIT_REFUSED;
        }
        case AMQP_BASIC_NACK_METHOD:
            snprintf(err, errlen, "the broker refused the message (publisher confirm nack)");
            return QUEUES_EXIT_FAILED;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_channel_close_t *c = f.payload.method.decoded;
            snprintf(err, errlen, "publishing to exchange \"%s\": the broker closed the channel: %d %.*s",
                     exchange, c->reply_code, (int)c->reply_text.len, (const char *)c->reply_text.bytes);
            a->closed = 1;
            return c->reply_code == AMQP_NOT_FOUND ? QUEUES_EXIT_REFUSED : QUEUES_EXIT_FAILED;
        }
        }
    }
}

/* The properties of the replayed copy: the dead letter's, persistent, its headers but x-retry (libs/mq's
 * retry count: were it kept, the message would be dead-lettered after its first failure), and with to_queue
 * x-routing-key set to the original key (what libs/mq's consumers read as the routing key). entries
 * must hold the dead letter's headers + 1. */
static amqp_basic_properties_t replay__props(const amqp_basic_properties_t *in, amqp_table_entry_t *entries,
                                             const char *to_queue_key)
{
    amqp_basic_properties_t p = *in;
    int n = 0;
    for (int i = 0; (in->_flags & AMQP_BASIC_HEADERS_FLAG) && i < in->headers.num_entries; i++) {
        amqp_bytes_t k = in->headers.entries[i].key;
        if (k.len == 7 && memcmp(k.bytes, "x-retry", 7) == 0)
            continue;
        if (to_queue_key != NULL && k.len == 13 && memcmp(k.bytes, "x-routing-key", 13) == 0)
            continue;
        entries[n++] = in->headers.entries[i];
    }
    if (to_queue_key != NULL) {
        entries[n].key = amqp_cstring_bytes("x-routing-key");
        entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[n].value.value.bytes = amqp_cstring_bytes(to_queue_key);
        n++;
    }
    p.headers.entries = entries;
    p.headers.num_entries = n;
    p._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    return p;
}

/* ================================================================ the command */

int replay_run(queues_t *q, const char *dlq, long count, int to_queue, char *err, size_t errlen)
{
    replay_amqp_t a = {.tv = {.tv_sec = q->timeout_ms / 1000, .tv_usec = (q->timeout_ms % 1000) * 1000}};
    char *queue = NULL, buf[256];
    origin_t origin;
    cJSON *doc = NULL, *done = NULL;
    long replayed = 0, limit = count;
    double left = 0;
    int polite = 1;
    int rc = queues_check_dlq("replay", dlq, err, errlen);
    if (rc != QUEUES_EXIT_OK)
        return rc;
    queue = xstrndup(dlq, strlen(dlq) - strlen(QUEUES_DLQ_SUFFIX));
    origin_init(&origin, q->mgmt, queue);
    if (q->json) {
        doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "queue", dlq);
        done = cJSON_AddArrayToObject(doc, "replayed");
    }
    if ((rc = replay__connect(&a, q, err, errlen)) != QUEUES_EXIT_OK) {
        polite = 0;
        goto out;
    }

    /* with --all (count < 0): the messages there at the start; one that dies again at once comes
     * back behind them and waits for the next run */
    while (limit < 0 || replayed < limit) {
        amqp_rpc_reply_t r = amqp_basic_get(a.conn, REPLAY_CHANNEL, amqp_cstring_bytes(dlq), 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            if (replay__close_code(r) == AMQP_NOT_FOUND) {
                snprintf(err, errlen, "no queue %s in vhost %s", dlq, q->vhost);
                rc = QUEUES_EXIT_REFUSED;
            } else {
                snprintf(err, errlen, "AMQP_URL: basic.get from %s failed: %s", dlq,
                         replay__reply_error(r, buf, sizeof(buf)));
                rc = QUEUES_EXIT_FAILED;
            }
            polite = 0;
            goto out;
        }
        if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) {
            left = 0;
            break;
        }
        amqp_basic_get_ok_t *ok = r.reply.decoded;
        uint64_t tag = ok->delivery_tag;
        left = ok->message_count;
        if (limit < 0)
            limit = (long)ok->message_count + 1;

        amqp_message_t msg;
        r = amqp_read_message(a.conn, REPLAY_CHANNEL, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            snprintf(err, errlen, "AMQP_URL: reading a message of %s failed: %s", dlq,
                     replay__reply_error(r, buf, sizeof(buf)));
            rc = QUEUES_EXIT_FAILED;
            polite = 0;
            goto out;
        }
        replay_letter_t l;
        char *exchange = NULL, *key = NULL, why[512];
        replay__letter(&l, &msg.properties, queue);
        int orc = origin_resolve(&origin, &l.f, &exchange, &key, why, sizeof(why));
        if (orc == ORIGIN_OK) {
            int n =
                (msg.properties._flags & AMQP_BASIC_HEADERS_FLAG) ? msg.properties.headers.num_entries : 0;
            amqp_table_entry_t *entries = xcalloc((size_t)n + 1, sizeof(*entries));
            amqp_basic_properties_t props = replay__props(&msg.properties, entries, to_queue ? key : NULL);
            rc = replay__publish(&a, to_queue ? "" : exchange, to_queue ? queue : key, &props, msg.body,
                                 q->timeout_ms, why, sizeof(why));
            free(entries);
        } else {
            rc = orc == ORIGIN_EAPI ? QUEUES_EXIT_FAILED : QUEUES_EXIT_REFUSED;
        }
        if (rc == QUEUES_EXIT_OK && amqp_basic_ack(a.conn, REPLAY_CHANNEL, tag, 0) != AMQP_STATUS_OK) {
            /* the broker puts it back when the connection goes, and it was published: in both places */
            snprintf(why, sizeof(why),
                     "AMQP_URL: its ack failed after the publish: it may be replayed twice");
            a.closed = 1;
            rc = QUEUES_EXIT_FAILED;
        }
        if (rc == QUEUES_EXIT_OK) {
            replayed++;
            if (q->json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddItemToObject(o, "message_id",
                                      l.message_id ? cJSON_CreateString(l.message_id) : cJSON_CreateNull());
                cJSON_AddStringToObject(o, "exchange", to_queue ? "" : exchange);
                cJSON_AddStringToObject(o, "routing_key", to_queue ? queue : key);
                cJSON_AddItemToArray(done, o);
            } else {
                printf("replayed ");
                queues_print_escaped(stdout, l.message_id ? l.message_id : "-",
                                     strlen(l.message_id ? l.message_id : "-"));
                printf(" to exchange \"%s\", routing key ", to_queue ? "" : exchange);
                queues_print_escaped(stdout, to_queue ? queue : key, strlen(to_queue ? queue : key));
                fputc('\n', stdout);
            }
        } else {
            /* back where it was, first in the dlq (a closed channel has put it back already) */
            if (!a.closed)
                amqp_basic_reject(a.conn, REPLAY_CHANNEL, tag, 1);
            polite = !a.closed;
            snprintf(err, errlen, "message %s of %s left in place: %s", l.message_id ? l.message_id : "-",
                     dlq, why);
        }
        free(exchange);
        free(key);
        replay__letter_free(&l);
        amqp_destroy_message(&msg);
        amqp_maybe_release_buffers(a.conn);
        if (rc != QUEUES_EXIT_OK)
            goto out;
    }
    rc = QUEUES_EXIT_OK;
out:
    if (rc == QUEUES_EXIT_OK) {
        if (q->json) {
            cJSON_AddNumberToObject(doc, "left", left);
            char *s = cJSON_PrintUnformatted(doc);
            CORE_ASSERT(s != NULL);
            printf("%s\n", s);
            free(s);
        } else {
            printf("replayed %ld message%s from %s; %.0f left\n", replayed, replayed == 1 ? "" : "s", dlq,
                   left);
        }
    }
    replay__close(&a, polite);
    cJSON_Delete(doc);
    origin_clear(&origin);
    free(queue);
    return rc;
}
