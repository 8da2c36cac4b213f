/* test_log.c -- log lines read back from a pipe or file and parsed as JSON. */
#include "log/log.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads everything written to the pipe after its write end is closed; caller frees. */
static char *test_read_all(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (;;) {
        if (len + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        cr_assert_geq(n, 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* Points the log at a fresh pipe; returns the read end. */
static int test_pipe_log(int *write_end)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    log_set_fd(fds[1]);
    *write_end = fds[1];
    return fds[0];
}

/* Closes the write end and returns all lines written; caller frees. */
static char *test_collect(int rfd, int wfd)
{
    log_set_fd(2);
    close(wfd);
    char *out = test_read_all(rfd);
    close(rfd);
    return out;
}

static size_t test_count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

Test(log, line_has_keys_in_order_and_fields)
{
    int wfd, rfd = test_pipe_log(&wfd);
    log_init("photos", LOG_DEBUG);

    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "user", "u-42");
    cJSON_AddNumberToObject(fields, "count", 3);
    cJSON *nested = cJSON_AddObjectToObject(fields, "http");
    cJSON_AddNumberToObject(nested, "status", 201);
    log_write(LOG_WARN, "req-1", fields, "uploaded %d photos for %s", 3, "alice");

    char *out = test_collect(rfd, wfd);
    cr_assert_eq(test_count_lines(out), 1);
    cr_assert_eq(out[strlen(out) - 1], '\n');

    cJSON *line = cJSON_Parse(out);
    cr_assert_not_null(line, "not JSON: %s", out);
    const char *want[] = {"time", "level", "service", "request_id", "msg", "user", "count", "http"};
    size_t i = 0;
    const cJSON *member;
    cJSON_ArrayForEach(member, line)
    {
        cr_assert_lt(i, sizeof(want) / sizeof(want[0]), "extra key %s", member->string);
        cr_assert_str_eq(member->string, want[i]);
        i++;
    }
    cr_assert_eq(i, sizeof(want) / sizeof(want[0]));

    const char *time = cJSON_GetObjectItem(line, "time")->valuestring;
    cr_assert_eq(strlen(time), 24, "time %s", time);
    cr_assert_eq(time[10], 'T');
    cr_assert_eq(time[23], 'Z');
    cr_assert_str_eq(cJSON_GetObjectItem(line, "level")->valuestring, "warn");
    cr_assert_str_eq(cJSON_GetObjectItem(line, "service")->valuestring, "photos");
    cr_assert_str_eq(cJSON_GetObjectItem(line, "request_id")->valuestring, "req-1");
    cr_assert_str_eq(cJSON_GetObjectItem(line, "msg")->valuestring, "uploaded 3 photos for alice");
    cr_assert_str_eq(cJSON_GetObjectItem(line, "user")->valuestring, "u-42");
    cr_assert_eq(cJSON_GetObjectItem(line, "count")->valueint, 3);
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(line, "http"), "status")->valueint, 201);

    /* fields is borrowed: still intact and owned by the caller. */
    cr_assert_str_eq(cJSON_GetObjectItem(fields, "user")->valuestring, "u-42");
    cJSON_Delete(fields);
    cJSON_Delete(line);
    free(out);
}

Test(log, request_id_null_is_omitted)
{
    int wfd, rfd = test_pipe_log(&wfd);
    log_init("gateway", LOG_INFO);
    log_info(NULL, "started");
    char *out = test_collect(rfd, wfd);

    cJSON *line = cJSON_Parse(out);
    cr_assert_not_null(line);
    cr_assert_null(cJSON_GetObjectItem(line, "request_id"));
    cr_assert_str_eq(cJSON_GetObjectItem(line, "level")->valuestring, "info");
    cr_assert_str_eq(cJSON_GetObjectItem(line, "msg")->valuestring, "started");
    cr_assert_eq(cJSON_GetArraySize(line), 4);
    cJSON_Delete(line);
    free(out);
}

Test(log, lines_below_min_level_are_skipped)
{
    int wfd, rfd = test_pipe_log(&wfd);
    log_init("feed", LOG_WARN);
    log_debug("r", "debug");
    log_info("r", "info");
    log_warn("r", "warn");
    log_error("r", "error");
    char *out = test_collect(rfd, wfd);

    cr_assert_eq(test_count_lines(out), 2, "got: %s", out);
    char *second = strchr(out, '\n') + 1;
    *strchr(second, '\n') = '\0';
    cJSON *a = cJSON_Parse(out), *b = cJSON_Parse(second);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_str_eq(cJSON_GetObjectItem(a, "level")->valuestring, "warn");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "level")->valuestring, "error");
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(out);
}

Test(log, defaults_are_unknown_service_and_info_level)
{
    int wfd, rfd = test_pipe_log(&wfd);
    log_debug(NULL, "hidden");
    log_info(NULL, "shown");
    char *out = test_collect(rfd, wfd);

    cr_assert_eq(test_count_lines(out), 1, "got: %s", out);
    cJSON *line = cJSON_Parse(out);
    cr_assert_not_null(line);
    cr_assert_str_eq(cJSON_GetObjectItem(line, "service")->valuestring, "unknown");
    cr_assert_str_eq(cJSON_GetObjectItem(line, "msg")->valuestring, "shown");
    cJSON_Delete(line);
    free(out);
}

Test(log, message_with_quotes_and_newlines_stays_on_one_line)
{
    int wfd, rfd = test_pipe_log(&wfd);
    log_init("svc", LOG_INFO);
    log_error("r\"id", "bad \"input\"\nsecond line\t\\ %s", "é");
    char *out = test_collect(rfd, wfd);

    cr_assert_eq(test_count_lines(out), 1, "got: %s", out);
    cJSON *line = cJSON_Parse(out);
    cr_assert_not_null(line);
    cr_assert_str_eq(cJSON_GetObjectItem(line, "msg")->valuestring, "bad \"input\"\nsecond line\t\\ é");
    cr_assert_str_eq(cJSON_GetObjectItem(line, "request_id")->valuestring, "r\"id");
    cJSON_Delete(line);
    free(out);
}

Test(log, field_named_like_a_fixed_key_does_not_clobber_it)
{
    int wfd, rfd = test_pipe_log(&wfd);
    log_init("svc", LOG_INFO);
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "msg", "from fields");
    cJSON_AddStringToObject(fields, "level", "debug");
    log_write(LOG_ERROR, NULL, fields, "real message");
    char *out = test_collect(rfd, wfd);

    cJSON *line = cJSON_Parse(out);
    cr_assert_not_null(line);
    cr_assert_str_eq(cJSON_GetObjectItem(line, "msg")->valuestring, "real message");
    cr_assert_str_eq(cJSON_GetObjectItem(line, "level")->valuestring, "error");
    cr_assert_str_eq(cJSON_GetObjectItem(line, "field.msg")->valuestring, "from fields");
    cr_assert_str_eq(cJSON_GetObjectItem(line, "field.level")->valuestring, "debug");
    /* No key appears twice. */
    const cJSON *a, *b;
    cJSON_ArrayForEach(a, line)
    {
        for (b = a->next; b != NULL; b = b->next)
            cr_assert_str_neq(a->string, b->string);
    }
    cJSON_Delete(fields);
    cJSON_Delete(line);
    free(out);
}

Test(log, level_parse)
{
    cr_assert_eq(log_level_parse("debug"), LOG_DEBUG);
    cr_assert_eq(log_level_parse("INFO"), LOG_INFO);
    cr_assert_eq(log_level_parse("Warn"), LOG_WARN);
    cr_assert_eq(log_level_parse("error"), LOG_ERROR);
    cr_assert_eq(log_level_parse("fatal"), -1);
    cr_assert_eq(log_level_parse(""), -1);
    cr_assert_eq(log_level_parse(NULL), -1);
}

#define TEST_THREADS 4
#define TEST_LINES 2000

static void *test_log_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddNumberToObject(fields, "thread", id);
    /* A long message makes torn or interleaved writes likely if lines were not one write. */
    char pad[300];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < TEST_LINES; i++)
        log_write(LOG_INFO, "rid", fields, "line %d %s", i, pad);
    cJSON_Delete(fields);
    return NULL;
}

Test(log, concurrent_lines_are_never_interleaved)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    log_init("svc", LOG_INFO);
    log_set_fd(fileno(f));

    pthread_t threads[TEST_THREADS];
    for (int i = 0; i < TEST_THREADS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, test_log_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < TEST_THREADS; i++)
        pthread_join(threads[i], NULL);
    log_set_fd(2);

    rewind(f);
    char *line = NULL;
    size_t cap = 0;
    int lines = 0, per_thread[TEST_THREADS] = {0};
    while (getline(&line, &cap, f) > 0) {
        cJSON *v = cJSON_Parse(line);
        cr_assert_not_null(v, "torn line: %s", line);
        int id = cJSON_GetObjectItem(v, "thread")->valueint;
        cr_assert(id >= 0 && id < TEST_THREADS);
        per_thread[id]++;
        lines++;
        cJSON_Delete(v);
    }
    cr_assert_eq(lines, TEST_THREADS * TEST_LINES);
    for (int i = 0; i < TEST_THREADS; i++)
        cr_assert_eq(per_thread[i], TEST_LINES);
    free(line);
    fclose(f);
}
