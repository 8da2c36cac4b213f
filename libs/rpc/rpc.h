/* rpc.h -- what a service's RPC handlers share: replies (JSON, problem+json) and request parts
 * (body, path and query parameters). */
#ifndef RPC_H
#define RPC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cursor/cursor.h"
#include "mq/mq.h"

/* ================================================================ replies */

/* Takes body. */
void rpc_json(mq_reply_t *r, int status, cJSON *body);
/* Takes errors (may be NULL). Replaces whatever r held. */
void rpc_problem(mq_reply_t *r, int status, const char *type, const char *detail, cJSON *errors);
/* 422 with errors {field: why}. */
void rpc_invalid(mq_reply_t *r, const char *field, const char *why);
/* When *errors ({field: why}) has members: answers 422 with them (taking *errors, which becomes
 * NULL) and returns 1; else returns 0. */
int rpc_invalid_fields(mq_reply_t *r, cJSON **errors);
/* 503 database-unavailable with Retry-After: 1. */
void rpc_db_error(mq_reply_t *r);
/* 503 of type with Retry-After: 1 (a store or service this one needs is down for now). */
void rpc_unavailable(mq_reply_t *r, const char *type, const char *detail);
/* 401 with WWW-Authenticate: Bearer error="invalid_token" (a token whose account is gone). */
void rpc_unauthorized(mq_reply_t *r, const char *type, const char *detail);
void rpc_no_content(mq_reply_t *r);
void rpc_rate_limited(mq_reply_t *r, long retry_after_s, const char *detail);
/* 404 not-found with detail. */
void rpc_not_found(mq_reply_t *r, const char *detail);

/* ================================================================ method tables */

/* The head of an entry of a daemon's method table: the method (the AMQP type) and whether it
 * needs a caller (x-user-id). Tables are arrays of the daemon's own struct, {rpc_method_t, handler}. */
typedef struct {
    const char *name;
    int needs_user;
} rpc_method_t;

/* The index of req's method in table (n entries, stride bytes apart, each beginning with an
 * rpc_method_t), or -1: not there (svc answers 404), or it needs a caller and req has none (then
 * answered 401 missing-token). */
long rpc_method_find(const void *table, size_t n, size_t stride, const mq_message_t *req, mq_reply_t *r);

/* ================================================================ requests */

/* The request body as a JSON object, or NULL after answering 400/413/415. Caller frees. */
cJSON *rpc_body(const mq_message_t *req, mq_reply_t *r);
/* A path parameter (x-params) copied into out; 0, or -1 if absent or too long. */
int rpc_param(const mq_message_t *req, const char *name, char *out, size_t outlen);
/* A query parameter, percent-decoded, copied into out; 1 found, 0 absent, -1 too long or bad. */
int rpc_query(const mq_message_t *req, const char *name, char *out, size_t outlen);

/* ================================================================ body members */

/* Number of characters (code points) in a valid UTF-8 string. */
size_t rpc_chars(const char *s);

/* One member a body may have. */
typedef struct {
    const char *name;
    int required;
    int nullable;                /* null is accepted (and means "unset") */
    size_t min_chars, max_chars; /* string length in characters */
    int any_type;                /* not a string: only presence is checked, the caller checks the value */
} rpc_field_t;

/* Checks body against fields: no unknown members, every value a string (or null where
 * nullable), required ones present, lengths in range. Adds {field: why} to errors for each
 * problem and returns how many. */
int rpc_fields_check(const cJSON *body, const rpc_field_t *fields, size_t n, cJSON *errors);
/* The string value of member name, or NULL (absent or null). Borrowed from body. */
const char *rpc_field_str(const cJSON *body, const char *name);

/* ================================================================ lists */

/* ?limit= (default 20, 1..100, else 422 errors {limit}) and ?cursor= of a list named list: a cursor
 * this list gave (MACed with k) puts its position into after (afterlen bytes; "" without a
 * cursor); any other is 400 bad-cursor. 0, or -1 answered. */
int rpc_page_args(const cursor_key_t *k, const mq_message_t *req, mq_reply_t *r, const char *list, long *limit,
                  char *after, size_t afterlen);
/* Adds next_cursor to o: the cursor of list at position key, or null when key is NULL. */
void rpc_page_next(const cursor_key_t *k, cJSON *o, const char *list, const char *key);

/* ================================================================ calling another service */

/* Calls method of service with a JSON body (borrowed) and waits up to timeout_ms: the reply's
 * status with its body parsed into *out (caller frees; NULL if none), or -1 when the call failed
 * (broker down, timeout: logged) or a 200 carried no JSON object. Any thread. */
int rpc_call_json(mq_rpc_client_t *c, const char *service, const char *method, const cJSON *body,
                  const char *request_id, unsigned timeout_ms, cJSON **out);

/* The URL of the thumb variant of owner's upload media_id, asked of resize-image's media.get:
 * 1 (*url malloc'd), 0 not owner's or unknown (or refused: no avatar rather than retrying
 * forever), -1 resize-image not answering. Any thread. */
int rpc_media_thumb(mq_rpc_client_t *c, const char *owner, const char *media_id, const char *request_id,
                    unsigned timeout_ms, char **url);

/* ================================================================ JSON */

/* RFC 3339 (UTC, milliseconds) of ms as a string member of obj. */
void json_add_time(cJSON *obj, const char *name, int64_t ms);
/* An RFC 3339 time as our services write it (UTC "Z", optional fraction) in ms; -1 if it does not
 * parse (or s is NULL). */
int64_t json_time_ms(const char *s);

#endif
