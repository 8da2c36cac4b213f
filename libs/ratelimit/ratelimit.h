/* ratelimit.h -- token buckets keyed by string (client address, user id), with idle eviction. */
#ifndef RATELIMIT_H
#define RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit_t;

/* rate_per_s tokens are added per second up to burst. max_keys bounds memory: when full,
 * buckets idle long enough to be full again are evicted first. Not thread-safe: one owner
 * thread (the gateway's event loop). */
ratelimit_t *ratelimit_new(double rate_per_s, double burst, size_t max_keys);
void ratelimit_free(ratelimit_t *rl);

/* Takes one token for key at now_ms (monotonic). Returns 0 if allowed; otherwise the number of
 * milliseconds until a token is available (>= 1): the caller answers 429 with Retry-After. */
uint64_t ratelimit_take(ratelimit_t *rl, const char *key, uint64_t now_ms);

/* Number of keys tracked (for tests and metrics). */
size_t ratelimit_size(const ratelimit_t *rl);

#endif
