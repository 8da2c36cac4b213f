/* mq_internal.h -- what mq.c and rpc_client.c share: connection setup and message decoding. */
#ifndef MQ_INTERNAL_H
#define MQ_INTERNAL_H

#include <amqp.h>

#include "mq/mq.h"

#define MQ__CHANNEL 1

typedef struct {
    char *name;
    char **keys;    /* NULL-terminated; NULL for rpc and work queues */
    char *exchange; /* MQ__DECL_TOPIC: the topic exchange (name is the queue, or NULL: none) */
    int kind;       /* MQ__DECL_RPC, MQ__DECL_EVENTS, MQ__DECL_WORK, MQ__DECL_TOPIC */
    int exclusive;
} mq__decl_t;
enum { MQ__DECL_RPC, MQ__DECL_EVENTS, MQ__DECL_WORK, MQ__DECL_TOPIC };

typedef struct {
    char *queue;
    mq_handler_fn fn;
    mq_rpc_fn rpc_fn;
    void *ud;
} mq__consumer_t;

struct mq {
    char *url;
    struct amqp_connection_info ci; /* points into url_parsed */
    char *url_parsed;
    char *app_id;
    char last_error[192]; /* why the last mq__open failed (mq_last_error) */
    unsigned prefetch, heartbeat_s, max_retries;
    int confirms;
    int settle_later;
    unsigned generation; /* counts connections: tells a held delivery of an old one */

    amqp_connection_state_t conn;
    int up;
    int consuming;             /* basic.consume sent on this connection */
    uint64_t unacked_tag;      /* highest delivery handled but not acked yet (0: none) */
    unsigned unacked_count;    /* how many deliveries that ack will cover */
    uint64_t unacked_since_ms; /* when the oldest of them was handled */
    uint64_t publish_seq;
    unsigned backoff_ms;
    uint64_t next_attempt_ms;

    mq__decl_t *decls;
    size_t ndecls;
    mq__consumer_t *consumers;
    size_t nconsumers;

    unsigned tick_ms;
    void (*tick_fn)(mq_t *mq, void *ud);
    void *tick_ud;
    uint64_t next_tick_ms;
    volatile int *stop;
};

/* Opens the connection, the channel, confirm mode, qos and the declared topology.
 * Returns 0 or MQ_EDOWN (with a log line saying why). */
int mq__open(mq_t *mq);
/* Closes (politely if graceful) and forgets the connection. */
void mq__close(mq_t *mq, int graceful);
/* Schedules the next connection attempt with exponential backoff (100 ms .. 5 s, jittered). */
void mq__backoff(mq_t *mq);

/* Decoded copy of an AMQP message: the mq_message_t fields point into strings it owns. */
typedef struct {
    mq_message_t m;
    char *strs[16];
    size_t nstrs;
} mq__decoded_t;
void mq__decode(mq__decoded_t *d, const amqp_basic_properties_t *props, const amqp_bytes_t *body);
void mq__decoded_free(mq__decoded_t *d);

/* Header table builder (fixed capacity). */
typedef struct {
    amqp_table_entry_t entries[8];
    amqp_table_t table;
} mq__headers_t;
void mq__headers_init(mq__headers_t *h);
void mq__headers_add_str(mq__headers_t *h, const char *key, const char *value);
void mq__headers_add_int(mq__headers_t *h, const char *key, int64_t value);

amqp_bytes_t mq__bytes(const char *s);

#endif
