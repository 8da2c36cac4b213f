/* log.h -- one JSON object per line on stdout: time, level, service, request_id, msg, fields. */
#ifndef LOG_H
#define LOG_H

#include <cjson/cJSON.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Sets the service name written on every line and the lowest level written.
 * Call once at start, before other threads log. service is copied. */
void log_init(const char *service, log_level_t min_level);

/* Parses "debug", "info", "warn", "error" (case-insensitive); returns -1 if unknown. */
int log_level_parse(const char *s);

/* Redirects output to fd (default 1, stdout); for tests. */
void log_set_fd(int fd);

/* Writes one line: {"time","level","service","request_id"?,"msg", ...fields}.
 * request_id may be NULL (omitted). fields may be NULL; otherwise a cJSON object whose
 * members are appended; borrowed, not freed. Thread-safe: each line is one write(2). */
void log_write(log_level_t level, const char *request_id, const cJSON *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(rid, ...) log_write(LOG_DEBUG, rid, NULL, __VA_ARGS__)
#define log_info(rid, ...) log_write(LOG_INFO, rid, NULL, __VA_ARGS__)
#define log_warn(rid, ...) log_write(LOG_WARN, rid, NULL, __VA_ARGS__)
#define log_error(rid, ...) log_write(LOG_ERROR, rid, NULL, __VA_ARGS__)

#endif
