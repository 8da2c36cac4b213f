/* mq.h -- RabbitMQ messaging over rabbitmq-c: topology, confirmed publishing, consumers, RPC.
 *
 * An mq_t is one AMQP connection with one channel, used by one thread. A daemon has one
 * or more consumer connections (mq_run: deliveries, RPC replies) and a publisher
 * connection with confirms (mq_publish). The RPC client (mq_rpc_client_t) owns a thread
 * and a connection of its own and may be called from any thread.
 *
 * Every connection reconnects by itself with exponential backoff and redeclares the
 * topology it was given, so a broker restart never needs a restart of ours. */
#ifndef MQ_H
#define MQ_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>

/* Exchanges of DESIGN.md. */
#define MQ_EXCHANGE_RPC "rpc"       /* direct: routing key = service name */
#define MQ_EXCHANGE_EVENTS "events" /* topic: routing key = <entity>.<verb> */
#define MQ_REPLY_TO "amq.rabbitmq.reply-to"

/* Error codes (negative); mq_strerror() names them. */
enum {
    MQ_OK = 0,
    MQ_EDOWN = -1,     /* not connected to the broker (now) */
    MQ_ENACK = -2,     /* the broker refused the message (publisher confirm nack) */
    MQ_ETIMEOUT = -3,  /* no confirm or no reply in time */
    MQ_ENOROUTE = -4,  /* mandatory message returned: nothing bound to that routing key */
    MQ_EPROTOCOL = -5, /* unexpected frame or channel error; the connection is reset */
    MQ_ESTOPPED = -6,  /* the client is shutting down */
    MQ_ECONFIG = -7,   /* bad URL or arguments */
};
const char *mq_strerror(int err);

typedef struct {
    const char *url;      /* amqp://user:pass@host:port/vhost; copied. An empty vhost
                             ("amqp://host:5672/") means the default vhost "/". */
    const char *app_id;   /* this service's name: app_id of what we publish; copied */
    unsigned prefetch;    /* basic.qos for consumers; 0 means 100 */
    unsigned heartbeat_s; /* 0 means 15 */
    int confirms;         /* 1: publisher confirms on this connection (publishers only) */
    unsigned max_retries; /* MQ_RETRY redeliveries before dead-lettering; 0 means 5 */
    int settle_later;     /* 1: handlers may answer MQ_HOLD and settle with mq_settle later; every
                             ack on this connection is then sent on its own (never "multiple") */
} mq_conf_t;

/* Names one delivery on one connection: what mq_settle needs. A delivery of an earlier
 * connection (before a reconnect) is no longer ours: the broker has requeued it. */
typedef struct {
    uint64_t tag;
    unsigned generation;
} mq_delivery_t;

/* A received message. Every pointer is borrowed until the handler returns; strings are
 * NUL-terminated copies of the AMQP fields, NULL when the property is absent. */
typedef struct {
    const char *queue; /* the queue it was consumed from */
    const char *exchange, *routing_key;
    const char *type, *message_id, *correlation_id, *reply_to, *content_type, *app_id;
    const char *request_id;  /* header x-request-id */
    const char *user_id;     /* header x-user-id (set by the gateway only) */
    const char *params;      /* header x-params: JSON object of path parameters */
    const char *query;       /* header x-query: the raw query string */
    const char *client_addr; /* header x-client-addr: the client's address as the gateway saw it */
    int64_t timestamp;       /* seconds since the epoch, 0 if absent */
    int64_t deadline_ms;     /* header x-deadline: wall-clock ms when the caller stops waiting, 0 if absent */
    int status;              /* header x-status on replies, 0 if absent */
    unsigned retries;        /* header x-retry: times this message was retried */
    int redelivered;
    mq_delivery_t delivery;
    const void *body;
    size_t body_len;
} mq_message_t;

/* ---------------------------------------------------------------- connections */

typedef struct mq mq_t;

/* Creates a connection object; connects lazily. Returns NULL if conf->url does not parse. */
mq_t *mq_new(const mq_conf_t *conf);
/* Closes and frees. */
void mq_free(mq_t *mq);

/* Connects now if not connected (one attempt). Returns 0 or a negative code. */
int mq_connect(mq_t *mq);
/* 1 if the connection is up. */
int mq_connected(const mq_t *mq);
/* Why the last connection attempt failed ("connect to host:port: ...", "login to ... as user: ...";
 * never the password), borrowed until the next attempt. */
const char *mq_last_error(const mq_t *mq);
/* A daemon's start: tries conf's broker once a second until it accepts a connection, at most
 * timeout_ms, or until one of stop (blocked signals; NULL for none) arrives. 0 once connected (the
 * probe connection is closed again); -1 with err filled: the URL does not parse, a signal, or
 * "no broker accepted a connection in N s: <mq_last_error>" (never the password). */
int mq_wait_for_broker(const mq_conf_t *conf, long timeout_ms, const sigset_t *stop, char *err,
                       size_t errlen);

/* Topology, remembered and declared on every (re)connect. The exchanges rpc and events are
 * always declared. Names and keys are copied. */
/* <service>.rpc: durable, bound to rpc with key <service>. */
void mq_declare_rpc_queue(mq_t *mq, const char *service);
/* A queue bound to events with the given NULL-terminated keys, and its dead-letter queue
 * <queue>.dlq. exclusive=1 makes it exclusive and auto-deleted (per-copy queues). */
void mq_declare_event_queue(mq_t *mq, const char *queue, const char *const *keys, int exclusive);
/* A durable work queue (published to through the default exchange) with its <queue>.dlq. */
void mq_declare_work_queue(mq_t *mq, const char *queue);
/* A durable topic exchange of the daemon's own, and (queue not NULL) a queue bound to it with the
 * given NULL-terminated keys: exclusive=1 makes it exclusive and auto-deleted, without dead
 * letters (a per-copy queue); else durable with <queue>.dlq. A publisher to the exchange declares
 * it with queue NULL. */
void mq_declare_topic_queue(mq_t *mq, const char *exchange, const char *queue, const char *const *keys,
                            int exclusive);

/* ---------------------------------------------------------------- publishing */

typedef struct {
    const char *exchange; /* "" for the default exchange */
    const char *routing_key;
    const char *type;         /* AMQP type: event or method name */
    const char *message_id;   /* NULL: a new UUID */
    const char *request_id;   /* header x-request-id; may be NULL */
    const char *content_type; /* NULL: application/json */
    int persistent;           /* delivery_mode 2 */
    const void *body;
    size_t body_len;
} mq_publish_t;

/* Publishes; with confirms, waits up to timeout_ms for the broker's ack. Reconnects first
 * if needed (one attempt). Returns 0, MQ_EDOWN, MQ_ENACK, MQ_ETIMEOUT. Only for
 * connections that consume nothing (confirm waits read no deliveries). */
int mq_publish(mq_t *mq, const mq_publish_t *p, unsigned timeout_ms);

/* Publishes an event to the events exchange: persistent, JSON, app_id, timestamp. */
int mq_publish_event(mq_t *mq, const char *routing_key, const char *message_id, const char *request_id,
                     const char *json, size_t len, unsigned timeout_ms);

/* ---------------------------------------------------------------- consuming */

typedef enum {
    MQ_ACK,   /* done (effect stored): ack */
    MQ_RETRY, /* failed for now: redeliver later; after max_retries it is dead-lettered */
    MQ_DEAD,  /* can never succeed (malformed): dead-letter now */
    MQ_HOLD,  /* (settle_later connections only) stays unacked until mq_settle names it */
} mq_disposition_t;

/* Called on the mq_run thread for each delivery; the message is borrowed. */
typedef mq_disposition_t (*mq_handler_fn)(mq_t *mq, const mq_message_t *msg, void *ud);

/* Registers a consumer of queue (declared separately) with manual acks. */
void mq_consume(mq_t *mq, const char *queue, mq_handler_fn fn, void *ud);

/* RPC server: the reply a handler fills. body is malloc'd by the handler (or NULL) and freed
 * by the library; content_type NULL means application/json; charset=utf-8. headers_json, if set, is a
 * malloc'd JSON object of extra HTTP response headers (e.g. {"retry-after":"30"}). */
typedef struct {
    int status;
    char *content_type;
    char *body;
    size_t body_len;
    char *headers_json;
} mq_reply_t;
typedef void (*mq_rpc_fn)(mq_t *mq, const mq_message_t *req, mq_reply_t *reply, void *ud);

/* Consumes <service>.rpc (declares it too); each request gets exactly one reply to its
 * reply_to with its correlation_id, then is acked. Requests without reply_to, and requests
 * taken after their x-deadline (the caller has given up; expiration only drops what is still
 * in the queue, not what a consumer prefetched), are acked and dropped without calling fn.
 * A handler that leaves status 0 answers 500. */
void mq_serve_rpc(mq_t *mq, const char *service, mq_rpc_fn fn, void *ud);

/* Called every tick_ms on the mq_run thread while running (e.g. outbox relays, purges). */
void mq_set_tick(mq_t *mq, unsigned tick_ms, void (*fn)(mq_t *mq, void *ud), void *ud);

/* Settles a delivery held with MQ_HOLD, on the thread that runs the connection: MQ_ACK acks it,
 * MQ_DEAD dead-letters it, MQ_RETRY requeues it at once (basic.nack). Returns 0, or MQ_EDOWN when
 * the connection it came on is gone (the broker has requeued it already: nothing to do). */
int mq_settle(mq_t *mq, const mq_delivery_t *d, mq_disposition_t disp);

/* One turn of mq_run for a thread with an event loop of its own: (re)connects when due, then
 * dispatches at most max_messages deliveries the broker has sent, waiting at most wait_ms for the
 * first. Returns how many it dispatched. */
int mq_step(mq_t *mq, volatile int *stop, unsigned wait_ms, unsigned max_messages);
/* The connection's socket (to wait on in another event loop), or -1 while down. Data may already
 * be buffered: call mq_step with wait_ms 0 before waiting on the socket. */
int mq_fd(const mq_t *mq);

/* Runs until *stop becomes non-zero: connects (retrying with backoff), declares, consumes and
 * dispatches. On stop, cancels the consumers, finishes the message in hand, closes, returns 0. */
int mq_run(mq_t *mq, volatile int *stop);

/* ---------------------------------------------------------------- RPC client */

typedef struct mq_rpc_client mq_rpc_client_t;

typedef struct {
    const char *service;      /* routing key on the rpc exchange */
    const char *method;       /* AMQP type, e.g. "auth.login" */
    const char *request_id;   /* may be NULL */
    const char *user_id;      /* x-user-id for authenticated calls; may be NULL */
    const char *params;       /* JSON object of path parameters; may be NULL */
    const char *query;        /* raw query string; may be NULL */
    const char *client_addr;  /* x-client-addr: the caller's network address; may be NULL */
    const char *content_type; /* of body; may be NULL */
    const void *body;
    size_t body_len;
    unsigned timeout_ms; /* also the message's expiration */
} mq_rpc_request_t;

typedef struct {
    int error;          /* 0, or MQ_EDOWN, MQ_ETIMEOUT, MQ_ENOROUTE, MQ_ESTOPPED */
    int status;         /* the reply's x-status when error == 0 */
    char *content_type; /* malloc'd or NULL */
    char *body;         /* malloc'd or NULL */
    size_t body_len;
    char *headers_json; /* malloc'd or NULL: extra HTTP response headers */
} mq_rpc_result_t;

/* Frees what a result holds (not the struct). */
void mq_rpc_result_clear(mq_rpc_result_t *r);

/* Result callback: runs on the client's thread; it owns res (free with mq_rpc_result_clear
 * and free()). It must not block. */
typedef void (*mq_rpc_cb)(void *ud, mq_rpc_result_t *res);

/* Starts the client thread and its connection (reconnecting by itself). */
mq_rpc_client_t *mq_rpc_client_start(const mq_conf_t *conf);
/* Fails pending calls with MQ_ESTOPPED, stops the thread, frees. */
void mq_rpc_client_stop(mq_rpc_client_t *c);
/* 1 if its connection is up (any thread). */
int mq_rpc_client_connected(mq_rpc_client_t *c);
/* Number of calls waiting for a reply (any thread). */
unsigned mq_rpc_client_in_flight(mq_rpc_client_t *c);

/* Sends a request (any thread; everything in req is copied). cb is called exactly once, on the
 * client thread, with the reply or an error: MQ_EDOWN at once when the broker is unreachable,
 * MQ_ENOROUTE when no service queue is bound, MQ_ETIMEOUT after req->timeout_ms. */
void mq_rpc_call(mq_rpc_client_t *c, const mq_rpc_request_t *req, mq_rpc_cb cb, void *ud);

/* Blocking variant for daemons calling another service: fills *res (clear it after). */
void mq_rpc_call_sync(mq_rpc_client_t *c, const mq_rpc_request_t *req, mq_rpc_result_t *res);

#endif
