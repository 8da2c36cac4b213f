/* core.c -- allocation that aborts on out-of-memory, assertions, clocks and ids. */
#include "core/core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

static void core__oom(size_t size)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", size);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        core__oom(size);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        core__oom(nmemb * size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        core__oom(size);
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    if (n > 0) /* s may be NULL when n is 0 (an empty AMQP body) */
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    CORE_ASSERT(n >= 0);
    char *p = xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = xvasprintf(fmt, ap);
    va_end(ap);
    return p;
}

void core__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "fatal: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

uint64_t core_now_ms(void)
{
    return core_now_us() / 1000;
}

uint64_t core_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t core_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void core_rfc3339(int64_t wall_ms, char *buf)
{
    /* Floor division, so times before 1970 split into a second and 0..999 ms too. */
    int64_t ms = wall_ms % 1000;
    if (ms < 0)
        ms += 1000;
    time_t secs = (time_t)((wall_ms - ms) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, CORE_TIME_BUFSZ, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, CORE_TIME_BUFSZ - n, ".%03dZ", (int)ms);
}

void core_uuid(char *buf)
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, buf);
}

void core_sleep_ms(unsigned ms, volatile int *interrupt)
{
    /* In slices, so a flag set by another thread ends the sleep within 50 ms even where
     * signals are blocked (daemon worker threads). */
    uint64_t deadline = core_now_us() + (uint64_t)ms * 1000u;
    for (;;) {
        if (interrupt != NULL && *interrupt)
            return;
        uint64_t now = core_now_us();
        if (now >= deadline)
            return;
        uint64_t left = deadline - now, slice = interrupt != NULL && left > 50000 ? 50000 : left;
        struct timespec req = {.tv_sec = (time_t)(slice / 1000000),
                               .tv_nsec = (long)(slice % 1000000) * 1000L};
        nanosleep(&req, NULL);
    }
}
