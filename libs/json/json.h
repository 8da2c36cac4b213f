/* json.h -- parsing untrusted JSON with size, depth and UTF-8 checks, on top of cJSON. */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>
#include <cjson/cJSON.h>

typedef enum {
    JSON_OK = 0,
    JSON_ETOOBIG = -1,    /* more than max_bytes */
    JSON_ETOODEEP = -2,   /* arrays/objects nested deeper than max_depth */
    JSON_EUTF8 = -3,      /* not valid UTF-8 (overlongs, surrogates, > U+10FFFF rejected) */
    JSON_ESYNTAX = -4,    /* not JSON, or trailing bytes after the value */
    JSON_ENOTOBJECT = -5, /* json_parse_object only: valid JSON but not an object */
} json_err_t;

/* Parses exactly len bytes (no NUL needed). Returns the value (caller frees with cJSON_Delete)
 * or NULL with *err set; err may be NULL. A value inside strings containing NUL (\u0000)
 * is a syntax error (our databases refuse NUL in strings). */
cJSON *json_parse(const char *buf, size_t len, size_t max_bytes, int max_depth, json_err_t *err);

/* Same, but the top-level value must be an object. */
cJSON *json_parse_object(const char *buf, size_t len, size_t max_bytes, int max_depth, json_err_t *err);

/* A short English description of err ("nested too deeply"). */
const char *json_strerror(json_err_t err);

/* Returns 1 if buf[0..len) is valid UTF-8, else 0. */
int json_utf8_valid(const char *buf, size_t len);

/* Serialises compactly; caller frees with free(). Never NULL (aborts on OOM). */
char *json_print(const cJSON *v);

#endif
