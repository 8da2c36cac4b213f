/* queues.h -- what the files of the queues CLI share: the management API client, the catalogue of
 * the suite's queues, where a dead letter came from, and the three commands. */
#ifndef QUEUES_H
#define QUEUES_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

/* Exit statuses: 1 when something failed on the way (unreachable, an error answer), 2 when the
 * command is refused (usage, configuration, not a dead-letter queue, no such queue, a dead letter
 * whose way back cannot be determined or is no longer routed). */
enum { QUEUES_EXIT_OK = 0, QUEUES_EXIT_FAILED = 1, QUEUES_EXIT_REFUSED = 2 };

#define QUEUES_DLQ_SUFFIX ".dlq"

/* What every command gets. Strings are borrowed from the configuration for the whole run. */
typedef struct mgmt mgmt_t;
typedef struct {
    mgmt_t *mgmt;
    const char *vhost;
    const char *amqp_url; /* holds a password: never printed */
    long timeout_ms;      /* per HTTP request; per broker operation and publisher confirm */
    int json;             /* --json: machine output on stdout */
} queues_t;

/* ================================================================ management API (mgmt.c) */

enum {
    MGMT_OK = 0,
    MGMT_EREACH = -1,    /* no answer: connection refused, timeout, TLS, DNS */
    MGMT_EAUTH = -2,     /* 401: the user or password is wrong */
    MGMT_ENOTFOUND = -3, /* 404: no such vhost, queue or exchange */
    MGMT_EHTTP = -4,     /* another status that is not 2xx */
    MGMT_EANSWER = -5,   /* 2xx, but not the JSON expected (or too large) */
};

/* A client of the RabbitMQ management HTTP API at base_url (".../api"), with basic
 * authentication; every string is copied. Returns NULL with err filled if base_url is not an
 * http(s) URL. */
mgmt_t *mgmt_new(const char *base_url, const char *user, const char *password, const char *vhost,
                 long timeout_ms, char *err, size_t errlen);
void mgmt_free(mgmt_t *m);

/* The path "/<collection>/<vhost>[/<name>][/<tail>]" with vhost and name percent-encoded (name and
 * tail may be NULL); caller frees. E.g. ("queues", "auth.rpc", "bindings"). */
char *mgmt_path(mgmt_t *m, const char *collection, const char *name, const char *tail);

/* GET (body NULL) or POST (body: a JSON object, borrowed) of base_url + path ("/queues/%2F").
 * Returns MGMT_OK with *out the parsed answer (caller frees with cJSON_Delete; NULL for an empty
 * answer), or a negative MGMT_E* with err filled: one line that names what failed and where. */
int mgmt_request(mgmt_t *m, const char *path, const cJSON *body, cJSON **out, char *err, size_t errlen);

/* mgmt_request whose answer must be a JSON list: MGMT_EANSWER (err filled, *out NULL) otherwise. */
int mgmt_list(mgmt_t *m, const char *path, const cJSON *body, cJSON **out, char *err, size_t errlen);

/* GET /queues/{vhost}/{queue} (404: MGMT_ENOTFOUND with "no queue X in vhost V"). */
int mgmt_queue(mgmt_t *m, const char *queue, cJSON **out, char *err, size_t errlen);

/* A number member of an API object (missing or not a number: 0). Path of member names, NULL-ended. */
double mgmt_number(const cJSON *obj, ...) __attribute__((sentinel));
/* A string member, or NULL. */
const char *mgmt_string(const cJSON *obj, const char *name);

/* ================================================================ the suite's queues (catalog.c) */

/* What a queue of the suite is for, in a few words, or NULL for a queue we do not know. */
const char *catalog_purpose(const char *queue);

/* 1 if name is a dead-letter queue's ("<queue>.dlq"), else 0. */
int catalog_is_dlq(const char *name);

/* ================================================================ where a dead letter came from (origin.c)
 */

/* What a dead letter of <queue>.dlq says about its first life; every string borrowed. */
typedef struct {
    const char *queue;          /* the queue that dead-lettered it: the dlq's name without .dlq */
    int has_death;              /* an x-death entry was found */
    const char *death_exchange; /* exchange of the x-death entry of queue (or the first entry) */
    const char *death_key;      /* the first of that entry's routing-keys, or NULL */
    const char *routing_key;    /* header x-routing-key (set by libs/mq on retries), or NULL */
} origin_facts_t;

/* Resolves origins for dead letters of one queue; looks the queue's bindings up once, when a
 * retried message needs them. */
typedef struct {
    mgmt_t *mgmt;
    const char *queue; /* borrowed */
    int loaded;
    char **exchanges, **keys; /* bindings of queue, from exchanges other than the default */
    int *topic;               /* 1: the exchange is a topic exchange, 2: fanout, 0: direct (or else) */
    size_t n;
} origin_t;

enum {
    ORIGIN_OK = 0,
    ORIGIN_EUNKNOWN = -1, /* cannot be determined: err says why */
    ORIGIN_EAPI = -2,     /* the management API failed: err says how */
};

void origin_init(origin_t *o, mgmt_t *mgmt, const char *queue);
void origin_clear(origin_t *o);

/* Where a dead letter goes back to: *exchange ("" is the default exchange) and *routing_key,
 * malloc'd (caller frees both) on ORIGIN_OK. */
int origin_resolve(origin_t *o, const origin_facts_t *f, char **exchange, char **routing_key, char *err,
                   size_t errlen);

/* 1 if the topic binding pattern (words split by '.', '*' one word, '#' zero or more) matches key. */
int origin_topic_match(const char *pattern, const char *key);

/* ================================================================ commands (list.c, peek.c, replay.c) */

/* Each returns an exit status; on failure err holds the one line to print. */
int list_run(queues_t *q, char *err, size_t errlen);
int peek_run(queues_t *q, const char *dlq, long count, char *err, size_t errlen);
/* count < 0: every message the dlq holds when it starts. to_queue: back to the queue that
 * dead-lettered them only (default exchange), not to their original exchange. */
int replay_run(queues_t *q, const char *dlq, long count, int to_queue, char *err, size_t errlen);

/* Checks that name is "<queue>.dlq" with a non-empty queue; else fills err (a refusal). */
int queues_check_dlq(const char *command, const char *name, char *err, size_t errlen);

/* Writes len bytes of s to out with control characters, DEL and '\\' escaped (C style), so a
 * hostile message cannot drive the terminal. */
void queues_print_escaped(FILE *out, const char *s, size_t len);

#endif
