/* origin.c -- where a dead letter goes back to: its x-death entry, libs/mq's x-routing-key, and the
 * bindings of the queue that dead-lettered it.
 *
 * How a message reaches <queue>.dlq (libs/mq/mq.c): every queue with dead letters is declared with
 * x-dead-letter-exchange "" and x-dead-letter-routing-key "<queue>.dlq", so in the dlq its routing
 * key is the dlq's name and says nothing. RabbitMQ adds an x-death entry for <queue> that keeps
 * the exchange and routing keys of the delivery that died:
 *   - a message rejected on its first delivery (MQ_DEAD: malformed) names its original exchange
 *     and key there, e.g. events / device.registered;
 *   - a message that failed MQ_RETRY times was republished by mq__retry to its own queue through
 *     the default exchange, so x-death says "" / <queue>; mq__retry kept the first routing key in
 *     the header x-routing-key. The exchange is then the one that binds <queue> with a key that
 *     matches it (events for <service>.events, for publication.fanout's post.* too);
 *   - a work-queue message (publication.fanout's fanout.batch, notification.push) was published
 *     through the default exchange to <queue> itself: x-death says "" / <queue>, and x-routing-key,
 *     if any, is <queue> too. It goes back the same way.
 * RPC queues have no dead letters (a request whose caller gave up is not worth a replay). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "queues.h"

void origin_init(origin_t *o, mgmt_t *mgmt, const char *queue)
{
    memset(o, 0, sizeof(*o));
    o->mgmt = mgmt;
    o->queue = queue;
}

void origin_clear(origin_t *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->exchanges[i]);
        free(o->keys[i]);
    }
    free(o->exchanges);
    free(o->keys);
    free(o->topic);
    memset(o, 0, sizeof(*o));
}

int origin_topic_match(const char *pattern, const char *key)
{
    /* word by word; '#' tries every number of words it could stand for */
    for (;;) {
        const char *pend = strchr(pattern, '.'), *kend = strchr(key, '.');
        size_t pl = pend ? (size_t)(pend - pattern) : strlen(pattern);
        if (pl == 1 && pattern[0] == '#') {
            if (pend == NULL)
                return 1; /* a trailing '#' takes the rest */
            for (const char *k = key;; k = kend + 1) {
                if (origin_topic_match(pend + 1, k))
                    return 1;
                kend = strchr(k, '.');
                if (kend == NULL)
                    return 0;
            }
        }
        size_t kl = kend ? (size_t)(kend - key) : strlen(key);
        if (!(pl == 1 && pattern[0] == '*') && (pl != kl || memcmp(pattern, key, pl) != 0))
            return 0;
        if (pend == NULL || kend == NULL) {
            /* both at their last word, or a pattern ending in ".#" (zero words) */
            if (pend == NULL && kend == NULL)
                return 1;
            return pend != NULL && kend == NULL && strcmp(pend + 1, "#") == 0;
        }
        pattern = pend + 1;
        key = kend + 1;
    }
}

/* The type of exchange name in the answer of GET /exchanges/{vhost}: 1 topic, 2 fanout, 0 else. */
static int origin__type(const cJSON *exchanges, const char *name)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, exchanges)
    {
        const char *n = mgmt_string(x, "name"), *t = mgmt_string(x, "type");
        if (n == NULL || t == NULL || strcmp(n, name) != 0)
            continue;
        return strcmp(t, "topic") == 0 ? 1 : strcmp(t, "fanout") == 0 ? 2 : 0;
    }
    return 0;
}

/* The queue's bindings from exchanges other than the default one, and those exchanges' types. */
static int origin__load(origin_t *o, char *err, size_t errlen)
{
    char *bpath = mgmt_path(o->mgmt, "queues", o->queue, "bindings");
    char *xpath = mgmt_path(o->mgmt, "exchanges", NULL, NULL);
    cJSON *bindings = NULL, *exchanges = NULL;
    int rc = ORIGIN_OK, mrc;

    mrc = mgmt_request(o->mgmt, bpath, NULL, &bindings, err, errlen);
    if (mrc == MGMT_ENOTFOUND) {
        snprintf(err, errlen, "queue %s no longer exists, so no binding of it tells the exchange", o->queue);
        rc = ORIGIN_EUNKNOWN;
        goto out;
    }
    if (mrc == MGMT_OK)
        mrc = mgmt_request(o->mgmt, xpath, NULL, &exchanges, err, errlen);
    if (mrc != MGMT_OK) {
        rc = ORIGIN_EAPI;
        goto out;
    }
    if (!cJSON_IsArray(bindings) || !cJSON_IsArray(exchanges)) {
        snprintf(err, errlen, "management API: the bindings of %s or the exchanges are not lists", o->queue);
        rc = ORIGIN_EAPI;
        goto out;
    }
    size_t cap = (size_t)cJSON_GetArraySize(bindings);
    o->exchanges = xcalloc(cap + 1, sizeof(*o->exchanges));
    o->keys = xcalloc(cap + 1, sizeof(*o->keys));
    o->topic = xcalloc(cap + 1, sizeof(*o->topic));
    const cJSON *b;
    cJSON_ArrayForEach(b, bindings)
    {
        const char *source = mgmt_string(b, "source"), *key = mgmt_string(b, "routing_key");
        if (source == NULL || key == NULL || source[0] == '\0' || o->n == cap)
            continue;
        o->exchanges[o->n] = xstrdup(source);
        o->keys[o->n] = xstrdup(key);
        o->topic[o->n] = origin__type(exchanges, source);
        o->n++;
    }
    o->loaded = 1;
out:
    cJSON_Delete(bindings);
    cJSON_Delete(exchanges);
    free(xpath);
    free(bpath);
    return rc;
}

/* The one exchange that binds the queue with a key matching routing_key. */
static int origin__exchange_for(origin_t *o, const char *routing_key, char **exchange, char *err,
                                size_t errlen)
{
    int rc;
    if (!o->loaded && (rc = origin__load(o, err, errlen)) != ORIGIN_OK)
        return rc;
    const char *found = NULL;
    for (size_t i = 0; i < o->n; i++) {
        int match = o->topic[i] == 1   ? origin_topic_match(o->keys[i], routing_key)
                    : o->topic[i] == 2 ? 1
                                       : strcmp(o->keys[i], routing_key) == 0;
        if (!match)
            continue;
        if (found != NULL && strcmp(found, o->exchanges[i]) != 0) {
            snprintf(err, errlen, "both exchanges %s and %s bind %s for routing key %s", found,
                     o->exchanges[i], o->queue, routing_key);
            return ORIGIN_EUNKNOWN;
        }
        found = o->exchanges[i];
    }
    if (found == NULL) {
        snprintf(err, errlen, "no exchange binds %s for routing key %s any more", o->queue, routing_key);
        return ORIGIN_EUNKNOWN;
    }
    *exchange = xstrdup(found);
    return ORIGIN_OK;
}

int origin_resolve(origin_t *o, const origin_facts_t *f, char **exchange, char **routing_key, char *err,
                   size_t errlen)
{
    *exchange = *routing_key = NULL;
    if (!f->has_death) {
        snprintf(err, errlen, "no x-death header: not dead-lettered by RabbitMQ, so its origin is unknown");
        return ORIGIN_EUNKNOWN;
    }
    if (f->death_exchange == NULL) {
        snprintf(err, errlen, "its x-death entry names no exchange");
        return ORIGIN_EUNKNOWN;
    }
    if (f->death_exchange[0] != '\0') { /* dead on its first delivery: x-death says it all */
        if (f->death_key == NULL) {
            snprintf(err, errlen, "its x-death entry names exchange %s but no routing key",
                     f->death_exchange);
            return ORIGIN_EUNKNOWN;
        }
        *exchange = xstrdup(f->death_exchange);
        *routing_key = xstrdup(f->death_key);
        return ORIGIN_OK;
    }
    if (f->routing_key != NULL && strcmp(f->routing_key, f->queue) != 0) { /* retried by libs/mq */
        int rc = origin__exchange_for(o, f->routing_key, exchange, err, errlen);
        if (rc == ORIGIN_OK)
            *routing_key = xstrdup(f->routing_key);
        return rc;
    }
    /* a work-queue message: published through the default exchange to the queue itself */
    *exchange = xstrdup("");
    *routing_key = xstrdup(f->death_key != NULL ? f->death_key : f->queue);
    return ORIGIN_OK;
}
