/* ratelimit.c -- token buckets keyed by string (client address, user id), with idle eviction. */
#include "ratelimit/ratelimit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

typedef struct rl__bucket {
    char *key;
    double tokens;
    uint64_t last_ms;
    struct rl__bucket *next;
} rl__bucket_t;

struct ratelimit {
    double rate, burst;
    size_t max_keys, nkeys, nbuckets;
    rl__bucket_t **buckets;
};

static uint64_t rl__hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

ratelimit_t *ratelimit_new(double rate_per_s, double burst, size_t max_keys)
{
    ratelimit_t *rl = xcalloc(1, sizeof(*rl));
    rl->rate = rate_per_s;
    rl->burst = burst < 1 ? 1 : burst;
    rl->max_keys = max_keys ? max_keys : 100000;
    rl->nbuckets = 1024;
    while (rl->nbuckets < rl->max_keys / 2)
        rl->nbuckets *= 2;
    rl->buckets = xcalloc(rl->nbuckets, sizeof(*rl->buckets));
    return rl;
}

void ratelimit_free(ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i < rl->nbuckets; i++) {
        for (rl__bucket_t *b = rl->buckets[i], *n; b != NULL; b = n) {
            n = b->next;
            free(b->key);
            free(b);
        }
    }
    free(rl->buckets);
    free(rl);
}

size_t ratelimit_size(const ratelimit_t *rl)
{
    return rl->nkeys;
}

static void rl__refill(ratelimit_t *rl, rl__bucket_t *b, uint64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rl->rate / 1000.0;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
        b->last_ms = now_ms;
    }
}

/* Drops buckets that have refilled completely: forgetting them changes no decision. */
static void rl__evict_idle(ratelimit_t *rl, uint64_t now_ms)
{
    for (size_t i = 0; i < rl->nbuckets; i++) {
        rl__bucket_t **pp = &rl->buckets[i];
        while (*pp != NULL) {
            rl__bucket_t *b = *pp;
            rl__refill(rl, b, now_ms);
            if (b->tokens >= rl->burst) {
                *pp = b->next;
                free(b->key);
                free(b);
                rl->nkeys--;
            } else {
                pp = &b->next;
            }
        }
    }
}

uint64_t ratelimit_take(ratelimit_t *rl, const char *key, uint64_t now_ms)
{
    size_t i = rl__hash(key) & (rl->nbuckets - 1);
    rl__bucket_t *b = rl->buckets[i];
    while (b != NULL && strcmp(b->key, key) != 0)
        b = b->next;
    if (b == NULL) {
        if (rl->nkeys >= rl->max_keys) {
            rl__evict_idle(rl, now_ms);
            if (rl->nkeys >= rl->max_keys)
                return (uint64_t)ceil(1000.0 / (rl->rate > 0 ? rl->rate : 1)); /* under attack: shed */
        }
        b = xcalloc(1, sizeof(*b));
        b->key = xstrdup(key);
        b->tokens = rl->burst;
        b->last_ms = now_ms;
        b->next = rl->buckets[i];
        rl->buckets[i] = b;
        rl->nkeys++;
    }
    rl__refill(rl, b, now_ms);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    if (rl->rate <= 0)
        return 3600 * 1000;
    uint64_t wait = (uint64_t)ceil((1.0 - b->tokens) * 1000.0 / rl->rate);
    return wait ? wait : 1;
}
