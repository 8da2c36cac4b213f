/* core.h -- allocation that aborts on out-of-memory, assertions, clocks and ids. */
#ifndef CORE_H
#define CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation wrappers: never return NULL; print and abort on out-of-memory
 * (Redis zmalloc, h2o h2o_mem_alloc). Free with free(). */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with a va_list (ap is consumed). */
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* For our own bugs only: prints file, line and the expression, then aborts. */
#define CORE_ASSERT(expr) ((expr) ? (void)0 : core__assert_fail(#expr, __FILE__, __LINE__))
void core__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#define CORE_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic clock in milliseconds (for timeouts and durations). */
uint64_t core_now_ms(void);
/* Monotonic clock in microseconds. */
uint64_t core_now_us(void);
/* Wall clock in milliseconds since the Unix epoch. */
int64_t core_wall_ms(void);

/* Formats a wall-clock time (ms since epoch) as RFC 3339 UTC with milliseconds,
 * "2026-11-21T18:40:03.123Z", into buf (at least CORE_TIME_BUFSZ bytes). */
#define CORE_TIME_BUFSZ 32
void core_rfc3339(int64_t wall_ms, char *buf);

/* Writes a random UUID v4 in canonical lower-case form (37 bytes with NUL). */
#define CORE_UUID_BUFSZ 37
void core_uuid(char *buf);

/* Sleeps for ms milliseconds, or less once *interrupt becomes non-zero (checked at least every
 * 50 ms; interrupt may be NULL). Signals do not shorten the sleep. */
void core_sleep_ms(unsigned ms, volatile int *interrupt);

#endif
