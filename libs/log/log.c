/* log.c -- one JSON object per line, written whole with a single write(2) under a lock. */
#include "log/log.h"

#include "core/core.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The process has one log stream, so its settings are the one global this library keeps.
 * service and min_level are set by log_init before other threads start; fd and the
 * writes themselves are guarded by lock. */
static struct {
    char *service;
    log_level_t min_level;
    int fd;
    pthread_mutex_t lock;
} log_conf = {
    .service = NULL,
    .min_level = LOG_INFO,
    .fd = 1,
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

static const char *const log_level_names[] = {
    [LOG_DEBUG] = "debug",
    [LOG_INFO] = "info",
    [LOG_WARN] = "warn",
    [LOG_ERROR] = "error",
};

/* The keys every line starts with; a field of the same name is renamed (see log__add_fields). */
static const char *const log_reserved_keys[] = {"time", "level", "service", "request_id", "msg"};

void log_init(const char *service, log_level_t min_level)
{
    free(log_conf.service);
    log_conf.service = xstrdup(service != NULL ? service : "unknown");
    log_conf.min_level = min_level;
}

int log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < CORE_ARRAY_SIZE(log_level_names); i++)
        if (strcasecmp(s, log_level_names[i]) == 0)
            return (int)i;
    return -1;
}

void log_set_fd(int fd)
{
    pthread_mutex_lock(&log_conf.lock);
    log_conf.fd = fd;
    pthread_mutex_unlock(&log_conf.lock);
}

static int log__is_reserved(const char *key)
{
    for (size_t i = 0; i < CORE_ARRAY_SIZE(log_reserved_keys); i++)
        if (strcmp(key, log_reserved_keys[i]) == 0)
            return 1;
    return 0;
}

/* Copies the members of fields into line. A member named like one of the fixed keys would
 * produce a duplicate key that most readers resolve by keeping the last one, hiding the
 * real msg or level; it is written as "field.<name>" instead. Members without a name
 * (fields not an object) are skipped. */
static void log__add_fields(cJSON *line, const cJSON *fields)
{
    const cJSON *member;
    cJSON_ArrayForEach(member, fields)
    {
        if (member->string == NULL)
            continue;
        cJSON *copy = cJSON_Duplicate(member, 1);
        if (copy == NULL)
            continue;
        if (log__is_reserved(member->string)) {
            char *key = xasprintf("field.%s", member->string);
            cJSON_AddItemToObject(line, key, copy);
            free(key);
        } else {
            cJSON_AddItemToObject(line, member->string, copy);
        }
    }
}

/* Writes all of buf, retrying on EINTR and short writes; a pipe or file gets it in one call. */
static void log__write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a failing log stream */
        }
        buf += n;
        len -= (size_t)n;
    }
}

void log_write(log_level_t level, const char *request_id, const cJSON *fields, const char *fmt, ...)
{
    if (level < log_conf.min_level)
        return;
    if ((unsigned)level >= CORE_ARRAY_SIZE(log_level_names))
        level = LOG_ERROR;

    char stamp[CORE_TIME_BUFSZ];
    char *msg = NULL, *json = NULL, *out = NULL;
    cJSON *line = cJSON_CreateObject();
    CORE_ASSERT(line != NULL);

    va_list ap;
    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);

    core_rfc3339(core_wall_ms(), stamp);
    cJSON_AddStringToObject(line, "time", stamp);
    cJSON_AddStringToObject(line, "level", log_level_names[level]);
    cJSON_AddStringToObject(line, "service", log_conf.service != NULL ? log_conf.service : "unknown");
    if (request_id != NULL)
        cJSON_AddStringToObject(line, "request_id", request_id);
    cJSON_AddStringToObject(line, "msg", msg);
    if (fields != NULL)
        log__add_fields(line, fields);

    json = cJSON_PrintUnformatted(line);
    CORE_ASSERT(json != NULL);
    size_t len = strlen(json);
    out = xmalloc(len + 1);
    memcpy(out, json, len);
    out[len] = '\n';

    pthread_mutex_lock(&log_conf.lock);
    log__write_all(log_conf.fd, out, len + 1);
    pthread_mutex_unlock(&log_conf.lock);

    free(out);
    free(json);
    free(msg);
    cJSON_Delete(line);
}
