/* test_ratelimit.c -- token buckets: burst, refusal with an honest wait, refill, keys, eviction, rate 0. */
#include "ratelimit/ratelimit.h"

#include <criterion/criterion.h>
#include <stdio.h>

/* An arbitrary monotonic origin far from 0, so arithmetic below it would show. */
#define T0 1000000ull

/* Takes n tokens for key at now; asserts each one is granted. */
static void test_take_n(ratelimit_t *rl, const char *key, int n, uint64_t now)
{
    for (int i = 0; i < n; i++)
        cr_assert_eq(ratelimit_take(rl, key, now), 0, "take %d of %d for %s at %llu refused", i + 1, n, key,
                     (unsigned long long)now);
}

Test(ratelimit, burst_then_refusal_with_the_wait_until_the_next_token)
{
    ratelimit_t *rl = ratelimit_new(10, 5, 100); /* one token every 100 ms */
    test_take_n(rl, "1.2.3.4", 5, T0);
    cr_assert_eq(ratelimit_take(rl, "1.2.3.4", T0), 100);
    cr_assert_eq(ratelimit_take(rl, "1.2.3.4", T0), 100, "a refusal must not consume anything");
    cr_assert_eq(ratelimit_take(rl, "1.2.3.4", T0 + 40), 60);
    cr_assert_eq(ratelimit_take(rl, "1.2.3.4", T0 + 100), 0);
    cr_assert_eq(ratelimit_take(rl, "1.2.3.4", T0 + 100), 100);
    ratelimit_free(rl);
}

Test(ratelimit, refill_is_proportional_to_elapsed_time_and_capped_at_burst)
{
    ratelimit_t *rl = ratelimit_new(2, 4, 100); /* one token every 500 ms */
    test_take_n(rl, "u", 4, T0);
    cr_assert_neq(ratelimit_take(rl, "u", T0), 0);
    /* 1.5 s later: 3 tokens back. */
    test_take_n(rl, "u", 3, T0 + 1500);
    cr_assert_eq(ratelimit_take(rl, "u", T0 + 1500), 500);
    /* An hour later the bucket holds burst tokens, not 7200. */
    uint64_t later = T0 + 3600 * 1000;
    test_take_n(rl, "u", 4, later);
    cr_assert_eq(ratelimit_take(rl, "u", later), 500);
    ratelimit_free(rl);
}

Test(ratelimit, a_clock_that_goes_backwards_refills_nothing)
{
    ratelimit_t *rl = ratelimit_new(10, 1, 100);
    cr_assert_eq(ratelimit_take(rl, "k", T0), 0);
    cr_assert_eq(ratelimit_take(rl, "k", T0 - 500), 100);
    cr_assert_eq(ratelimit_take(rl, "k", T0 + 100), 0);
    ratelimit_free(rl);
}

/* Retry-After must be honest: after waiting what a refusal said, the next take succeeds. */
Test(ratelimit, waiting_the_returned_time_is_always_enough)
{
    const double rates[] = {0.5, 1, 3, 7, 10, 33, 100, 1000, 2500};
    for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
        ratelimit_t *rl = ratelimit_new(rates[r], 3, 100);
        uint64_t now = T0;
        int granted = 0;
        for (int i = 0; i < 200; i++) {
            uint64_t wait = ratelimit_take(rl, "k", now);
            if (wait == 0) {
                granted++;
                continue;
            }
            cr_assert_geq(wait, 1);
            now += wait;
            cr_assert_eq(ratelimit_take(rl, "k", now), 0, "rate %g: refused again after waiting %llu ms",
                         rates[r], (unsigned long long)wait);
            granted++;
        }
        cr_assert_eq(granted, 200);
        /* Over the whole run no more than burst + rate * elapsed tokens were granted. */
        double allowed = 3 + rates[r] * (double)(now - T0) / 1000.0;
        cr_assert_leq(granted, allowed + 1e-6, "rate %g: %d granted in %llu ms", rates[r], granted,
                      (unsigned long long)(now - T0));
        ratelimit_free(rl);
    }
}

Test(ratelimit, keys_have_independent_buckets)
{
    ratelimit_t *rl = ratelimit_new(1, 2, 100);
    test_take_n(rl, "alice", 2, T0);
    cr_assert_neq(ratelimit_take(rl, "alice", T0), 0);
    test_take_n(rl, "bob", 2, T0);
    cr_assert_neq(ratelimit_take(rl, "bob", T0), 0);
    /* Keys that differ only in a suffix or in case are different keys. */
    test_take_n(rl, "alice2", 2, T0);
    test_take_n(rl, "Alice", 2, T0);
    cr_assert_eq(ratelimit_size(rl), 4);
    ratelimit_free(rl);
}

Test(ratelimit, burst_below_one_still_allows_one_request)
{
    ratelimit_t *rl = ratelimit_new(1, 0, 10);
    cr_assert_eq(ratelimit_take(rl, "k", T0), 0);
    cr_assert_eq(ratelimit_take(rl, "k", T0), 1000);
    ratelimit_free(rl);
}

Test(ratelimit, size_counts_tracked_keys)
{
    ratelimit_t *rl = ratelimit_new(1, 1, 0); /* 0: the default bound */
    cr_assert_eq(ratelimit_size(rl), 0);
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
        cr_assert_eq(ratelimit_take(rl, key, T0), 0);
    }
    cr_assert_eq(ratelimit_size(rl), 3000);
    cr_assert_neq(ratelimit_take(rl, "10.0.0.0", T0), 0);
    cr_assert_eq(ratelimit_size(rl), 3000);
    ratelimit_free(rl);
}

Test(ratelimit, when_full_new_keys_are_shed_until_idle_buckets_can_be_evicted)
{
    ratelimit_t *rl = ratelimit_new(10, 2, 4); /* a bucket is full again 200 ms after its last take */
    test_take_n(rl, "a", 1, T0);
    test_take_n(rl, "b", 1, T0);
    test_take_n(rl, "c", 1, T0);
    test_take_n(rl, "d", 1, T0);
    cr_assert_eq(ratelimit_size(rl), 4);

    /* Nobody is idle: the newcomer is refused, with a wait, and the table does not grow. */
    uint64_t wait = ratelimit_take(rl, "e", T0 + 50);
    cr_assert_geq(wait, 1);
    cr_assert_eq(ratelimit_size(rl), 4);
    /* Known keys still get their own decisions: "a" stays busy (1.5 -> 0.5 tokens, twice). */
    cr_assert_eq(ratelimit_take(rl, "a", T0 + 50), 0);
    cr_assert_eq(ratelimit_take(rl, "a", T0 + 150), 0);

    /* At +200 ms b, c and d are full again and may be forgotten; "a" holds 1 token, not 2. */
    cr_assert_eq(ratelimit_take(rl, "e", T0 + 200), 0);
    cr_assert_leq(ratelimit_size(rl), 4);
    cr_assert_geq(ratelimit_size(rl), 2);
    /* "a" was not evicted: it has exactly one token left, not a fresh burst of two. */
    cr_assert_eq(ratelimit_take(rl, "a", T0 + 200), 0);
    cr_assert_neq(ratelimit_take(rl, "a", T0 + 200), 0, "a's bucket was forgotten while not full");
    ratelimit_free(rl);
}

Test(ratelimit, many_distinct_keys_never_exceed_max_keys)
{
    ratelimit_t *rl = ratelimit_new(100, 1, 64); /* full again 10 ms after a take */
    char key[32];
    uint64_t now = T0;
    size_t shed = 0;
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "client-%d", i);
        if (i % 40 == 0)
            now += 5;
        if (ratelimit_take(rl, key, now) != 0)
            shed++;
        cr_assert_leq(ratelimit_size(rl), 64, "size %zu after %d keys", ratelimit_size(rl), i + 1);
    }
    /* 40 new keys every 5 ms against 64 slots that free up after 10 ms: some are shed, most are not. */
    cr_assert_gt(shed, 0);
    cr_assert_lt(shed, 20000 / 2);
    ratelimit_free(rl);
}

Test(ratelimit, rate_zero_allows_the_burst_once_and_never_refills)
{
    ratelimit_t *rl = ratelimit_new(0, 3, 10);
    test_take_n(rl, "k", 3, T0);
    uint64_t wait = ratelimit_take(rl, "k", T0);
    cr_assert_geq(wait, 1000, "with no refill the wait must be long, got %llu", (unsigned long long)wait);
    /* A day later still nothing. */
    cr_assert_neq(ratelimit_take(rl, "k", T0 + 86400ull * 1000), 0);
    /* Other keys get their own burst. */
    test_take_n(rl, "other", 3, T0 + 86400ull * 1000);
    ratelimit_free(rl);
}

Test(ratelimit, free_null_is_a_no_op)
{
    ratelimit_free(NULL);
}
