/* test_core.c -- allocation wrappers, xasprintf, RFC 3339 times, UUIDs, clocks, interruptible sleeps and
 * CORE_ASSERT. */
#include "core/core.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TestSuite(core, .timeout = 20);

/* ================================================================ allocation */

Test(core, xstrndup_of_nothing_never_reads_the_source)
{
    /* An empty AMQP body arrives as (NULL, 0): the source must not be touched. */
    char *s = xstrndup(NULL, 0);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(core, xstrndup_copies_n_bytes_and_terminates)
{
    const char src[] = "hello, world";
    char *s = xstrndup(src, 5);
    cr_assert_str_eq(s, "hello");
    free(s);

    /* Bytes after n are not read: a buffer that is not NUL-terminated is fine. */
    char raw[4] = {'a', 'b', 'c', 'd'};
    s = xstrndup(raw, sizeof(raw));
    cr_assert_str_eq(s, "abcd");
    free(s);

    /* An embedded NUL is copied as is; n counts bytes, not characters. */
    s = xstrndup("a\0b", 3);
    cr_assert_eq(memcmp(s, "a\0b\0", 4), 0);
    free(s);

    s = xstrdup("");
    cr_assert_str_eq(s, "");
    free(s);
    s = xstrdup(src);
    cr_assert_str_eq(s, src);
    cr_assert_neq((const char *)s, src);
    free(s);
}

Test(core, allocators_never_return_null_even_for_zero_bytes)
{
    void *p = xmalloc(0);
    cr_assert_not_null(p);
    free(p);
    p = xcalloc(0, 0);
    cr_assert_not_null(p);
    free(p);
    p = xrealloc(NULL, 0);
    cr_assert_not_null(p);
    free(p);

    unsigned char *z = xcalloc(64, 4);
    for (size_t i = 0; i < 256; i++)
        cr_assert_eq(z[i], 0, "xcalloc byte %zu is not zero", i);
    memset(z, 0x5a, 256);
    z = xrealloc(z, 4096);
    for (size_t i = 0; i < 256; i++)
        cr_assert_eq(z[i], 0x5a, "xrealloc lost byte %zu", i);
    z[4095] = 1;
    free(z);
}

Test(core, xasprintf_formats_into_a_new_string)
{
    char *s = xasprintf("%s=%d (%05.1f) %c%%", "answer", 42, 3.14159, 'x');
    cr_assert_str_eq(s, "answer=42 (003.1) x%");
    free(s);

    s = xasprintf("%s", "");
    cr_assert_str_eq(s, "");
    free(s);

    s = xasprintf("{\"service\":\"%s\",\"status\":\"%s\"}", "echo", "ok");
    cr_assert_str_eq(s, "{\"service\":\"echo\",\"status\":\"ok\"}");
    free(s);

    /* Longer than any fixed buffer a careless implementation would use. */
    char *big = xmalloc(100001);
    memset(big, 'q', 100000);
    big[100000] = '\0';
    s = xasprintf("<%s|%zu>", big, (size_t)100000);
    cr_assert_eq(strlen(s), 100000 + 9);
    cr_assert_eq(s[0], '<');
    cr_assert_eq(s[1], 'q');
    cr_assert_eq(s[100000], 'q');
    cr_assert_str_eq(s + 100001, "|100000>");
    free(s);
    free(big);
}

/* ================================================================ RFC 3339 */

static void check_rfc3339(int64_t wall_ms, const char *want)
{
    char buf[CORE_TIME_BUFSZ];
    memset(buf, '#', sizeof(buf));
    core_rfc3339(wall_ms, buf);
    cr_assert_str_eq(buf, want, "core_rfc3339(%lld) gave \"%s\", want \"%s\"", (long long)wall_ms, buf, want);
    /* Nothing is written past the terminating NUL. */
    for (size_t i = strlen(want) + 1; i < sizeof(buf); i++)
        cr_assert_eq(buf[i], '#', "core_rfc3339(%lld) wrote byte %zu", (long long)wall_ms, i);
}

Test(core, rfc3339_epoch)
{
    check_rfc3339(0, "1970-01-01T00:00:00.000Z");
    check_rfc3339(1, "1970-01-01T00:00:00.001Z");
    check_rfc3339(999, "1970-01-01T00:00:00.999Z");
    check_rfc3339(1000, "1970-01-01T00:00:01.000Z");
}

Test(core, rfc3339_known_timestamps_with_milliseconds)
{
    check_rfc3339(1234567890123LL, "2009-02-13T23:31:30.123Z");
    check_rfc3339(1795286403123LL, "2026-11-21T18:40:03.123Z"); /* the header's example */
    check_rfc3339(946684799999LL, "1999-12-31T23:59:59.999Z");
    check_rfc3339(946684800000LL, "2000-01-01T00:00:00.000Z");
    check_rfc3339(1795286403050LL, "2026-11-21T18:40:03.050Z"); /* zero-padded milliseconds */
    check_rfc3339(253402300799999LL, "9999-12-31T23:59:59.999Z");
}

Test(core, rfc3339_leap_years)
{
    check_rfc3339(951782400000LL, "2000-02-29T00:00:00.000Z");  /* divisible by 400: leap */
    check_rfc3339(1709251199007LL, "2024-02-29T23:59:59.007Z"); /* the last ms of a leap day */
    check_rfc3339(1709251200000LL, "2024-03-01T00:00:00.000Z");
    check_rfc3339(4107542400000LL, "2100-03-01T00:00:00.000Z"); /* 2100 is not a leap year */
    check_rfc3339(4107542400000LL - 86400000LL, "2100-02-28T00:00:00.000Z");
}

Test(core, rfc3339_before_the_epoch)
{
    /* The argument is signed: one millisecond before the epoch is 23:59:59.999 on the eve,
     * not "1970-01-01T00:00:00.-01Z". */
    check_rfc3339(-1, "1969-12-31T23:59:59.999Z");
    check_rfc3339(-1000, "1969-12-31T23:59:59.000Z");
    check_rfc3339(-1500, "1969-12-31T23:59:58.500Z");
}

Test(core, rfc3339_of_now_parses_back)
{
    int64_t now = core_wall_ms();
    char buf[CORE_TIME_BUFSZ];
    core_rfc3339(now, buf);
    cr_assert_eq(strlen(buf), 24, "%s", buf);
    struct tm tm = {0};
    char *end = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
    cr_assert_not_null(end, "%s does not parse", buf);
    cr_assert_eq(timegm(&tm), (time_t)(now / 1000));
    char ms[8];
    snprintf(ms, sizeof(ms), ".%03dZ", (int)(now % 1000));
    cr_assert_str_eq(end, ms);
}

/* ================================================================ UUIDs */

static void check_uuid_v4(const char *u)
{
    cr_assert_eq(strlen(u), 36, "%s is not 36 characters", u);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            cr_assert_eq(u[i], '-', "%s: no dash at %d", u, i);
        else
            cr_assert((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f'),
                      "%s: '%c' at %d is not a lower-case hex digit", u, u[i], i);
    }
    cr_assert_eq(u[14], '4', "%s is not version 4", u);
    cr_assert(strchr("89ab", u[19]) != NULL, "%s: variant nibble %c is not RFC 4122", u, u[19]);
}

static int cmp_uuid(const void *a, const void *b)
{
    return strcmp(a, b);
}

Test(core, uuid_is_a_lower_case_v4)
{
    char buf[CORE_UUID_BUFSZ + 4];
    memset(buf, '#', sizeof(buf));
    core_uuid(buf);
    check_uuid_v4(buf);
    cr_assert_eq(buf[36], '\0');
    for (size_t i = CORE_UUID_BUFSZ; i < sizeof(buf); i++)
        cr_assert_eq(buf[i], '#', "core_uuid wrote past CORE_UUID_BUFSZ");
}

#define NUUIDS 5000

Test(core, uuids_are_distinct)
{
    char(*u)[CORE_UUID_BUFSZ] = xcalloc(NUUIDS, CORE_UUID_BUFSZ);
    int seen_variant[4] = {0};
    for (int i = 0; i < NUUIDS; i++) {
        core_uuid(u[i]);
        check_uuid_v4(u[i]);
        seen_variant[strchr("89ab", u[i][19]) - "89ab"]++;
    }
    qsort(u, NUUIDS, CORE_UUID_BUFSZ, cmp_uuid);
    for (int i = 1; i < NUUIDS; i++)
        cr_assert_str_neq(u[i - 1], u[i], "duplicate UUID %s", u[i]);
    /* 122 random bits: each of the four variant values shows up among thousands. */
    for (int v = 0; v < 4; v++)
        cr_assert_gt(seen_variant[v], 0, "variant nibble %c never seen", "89ab"[v]);
    free(u);
}

/* ================================================================ clocks */

Test(core, monotonic_clocks_never_go_back)
{
    uint64_t last_us = core_now_us(), last_ms = core_now_ms();
    for (int i = 0; i < 200000; i++) {
        uint64_t us = core_now_us(), ms = core_now_ms();
        cr_assert_geq(us, last_us, "core_now_us went back at %d", i);
        cr_assert_geq(ms, last_ms, "core_now_ms went back at %d", i);
        last_us = us;
        last_ms = ms;
    }
    /* The two clocks agree (ms is us / 1000, read a moment later). */
    uint64_t us = core_now_us(), ms = core_now_ms();
    cr_assert_geq(ms, us / 1000);
    cr_assert_leq(ms - us / 1000, 10);
}

Test(core, clocks_advance_with_real_time)
{
    uint64_t us0 = core_now_us(), ms0 = core_now_ms();
    int64_t wall0 = core_wall_ms();
    struct timespec ts = {.tv_nsec = 30 * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    uint64_t us1 = core_now_us(), ms1 = core_now_ms();
    int64_t wall1 = core_wall_ms();
    cr_assert_geq(us1 - us0, 30000u);
    cr_assert_geq(ms1 - ms0, 29u); /* truncated to whole milliseconds at both ends */
    cr_assert_lt(us1 - us0, 5000000u);
    cr_assert_geq(wall1 - wall0, 25); /* the wall clock may be stepped, but not by much here */
}

Test(core, wall_clock_is_milliseconds_since_the_epoch)
{
    int64_t before = (int64_t)time(NULL);
    int64_t ms = core_wall_ms();
    int64_t after = (int64_t)time(NULL);
    cr_assert_geq(ms / 1000, before);
    cr_assert_leq(ms / 1000, after);
    cr_assert_gt(ms, 1600000000000LL, "core_wall_ms is not in milliseconds: %lld", (long long)ms);
}

/* ================================================================ core_sleep_ms */

static void on_sigusr1(int sig)
{
    (void)sig;
}

/* SIGUSR1 with a handler and without SA_RESTART: it makes nanosleep fail with EINTR. */
static void install_sigusr1(void)
{
    struct sigaction sa = {.sa_handler = on_sigusr1};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
}

typedef struct {
    unsigned ms;
    volatile int *interrupt;
    volatile int done;
    uint64_t elapsed_ms;
} sleeper_t;

static void *sleeper_main(void *arg)
{
    sleeper_t *s = arg;
    uint64_t t0 = core_now_ms();
    core_sleep_ms(s->ms, s->interrupt);
    s->elapsed_ms = core_now_ms() - t0;
    __atomic_store_n(&s->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Signals the sleeper every 10 ms until it returns or limit_ms passed; returns the signals sent. */
static int poke_until_done(pthread_t t, sleeper_t *s, unsigned limit_ms)
{
    int sent = 0;
    uint64_t deadline = core_now_ms() + limit_ms;
    while (!__atomic_load_n(&s->done, __ATOMIC_SEQ_CST) && core_now_ms() < deadline) {
        pthread_kill(t, SIGUSR1);
        sent++;
        struct timespec ts = {.tv_nsec = 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return sent;
}

Test(core, sleep_waits_at_least_the_time_asked)
{
    uint64_t t0 = core_now_us();
    core_sleep_ms(40, NULL);
    uint64_t dt = core_now_us() - t0;
    cr_assert_geq(dt, 40000u);
    cr_assert_lt(dt, 2000000u);

    t0 = core_now_us();
    core_sleep_ms(0, NULL);
    cr_assert_lt(core_now_us() - t0, 100000u);

    volatile int flag = 0;
    t0 = core_now_us();
    core_sleep_ms(1100, &flag); /* whole seconds and a remainder */
    dt = core_now_us() - t0;
    cr_assert_geq(dt, 1100000u);
    cr_assert_lt(dt, 3000000u);
}

Test(core, sleep_restarts_on_signals_while_the_flag_is_clear)
{
    install_sigusr1();
    volatile int flag = 0;
    sleeper_t s = {.ms = 300, .interrupt = &flag};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, sleeper_main, &s), 0);
    int sent = poke_until_done(t, &s, 5000);
    pthread_join(t, NULL);
    cr_assert_gt(sent, 5);
    cr_assert_geq(s.elapsed_ms, 300u, "interrupted by signals alone after %llu ms",
                  (unsigned long long)s.elapsed_ms);
    cr_assert_lt(s.elapsed_ms, 3000u);

    /* Same with no flag at all. */
    sleeper_t n = {.ms = 200, .interrupt = NULL};
    cr_assert_eq(pthread_create(&t, NULL, sleeper_main, &n), 0);
    poke_until_done(t, &n, 5000);
    pthread_join(t, NULL);
    cr_assert_geq(n.elapsed_ms, 200u);
}

Test(core, sleep_returns_early_once_the_flag_is_set_from_another_thread)
{
    install_sigusr1();
    volatile int flag = 0;
    sleeper_t s = {.ms = 10000, .interrupt = &flag};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, sleeper_main, &s), 0);
    struct timespec ts = {.tv_nsec = 50 * 1000000L};
    nanosleep(&ts, NULL);
    cr_assert_not(__atomic_load_n(&s.done, __ATOMIC_SEQ_CST));
    /* The stop flag is set, then a signal wakes the sleeper (as SIGTERM does in a daemon). */
    flag = 1;
    poke_until_done(t, &s, 5000);
    pthread_join(t, NULL);
    cr_assert_lt(s.elapsed_ms, 2000u, "the flag was ignored: slept %llu ms",
                 (unsigned long long)s.elapsed_ms);
    cr_assert_geq(s.elapsed_ms, 40u);
}

/* ================================================================ CORE_ASSERT */

Test(core, assert_that_holds_does_nothing_and_evaluates_once)
{
    int n = 0;
    CORE_ASSERT(++n == 1);
    cr_assert_eq(n, 1);
    static const int three[] = {1, 2, 3};
    CORE_ASSERT(CORE_ARRAY_SIZE(three) == 3);
}

/* Its message goes to stderr, which the next test checks: keep the run's output clean. */
Test(core, assert_that_fails_aborts, .signal = SIGABRT, .init = cr_redirect_stderr)
{
    volatile int zero = 0;
    CORE_ASSERT(zero == 1);
    cr_assert_fail("CORE_ASSERT returned");
}

Test(core, assert_prints_the_expression_file_and_line)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int line = __LINE__ + 6;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        CORE_ASSERT(1 + 1 == 3);
        _exit(0);
    }
    close(fds[1]);
    char buf[1024];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(buf) - 1 && (r = read(fds[0], buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    close(fds[0]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status 0x%x: not killed by SIGABRT",
              status);
    char want[256];
    snprintf(want, sizeof(want), "1 + 1 == 3 (%s:%d)", __FILE__, line);
    cr_assert_not_null(strstr(buf, want), "stderr \"%s\" lacks \"%s\"", buf, want);
    cr_assert_not_null(strstr(buf, "assertion failed"), "%s", buf);
}
