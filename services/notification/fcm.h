/* fcm.h -- Firebase Cloud Messaging HTTP v1 client: OAuth2 access token from a service-account key
 * (RS256 JWT assertion), sends multiplexed over HTTP/2 with the curl multi interface. One fcm_t
 * belongs to one thread. */
#ifndef FCM_H
#define FCM_H

#include <stddef.h>
#include <stdint.h>

typedef struct fcm fcm_t;

typedef enum {
    FCM_SENT = 0,     /* accepted (2xx) */
    FCM_UNREGISTERED, /* 404, or error status UNREGISTERED / NOT_FOUND: the token is dead; remove it */
    FCM_INVALID,      /* 400 INVALID_ARGUMENT and other permanent 4xx (403 SENDER_ID_MISMATCH, ...): log and drop */
    FCM_GAVE_UP,      /* 429 / 5xx / transport errors still failing after max_attempts, or fcm_close with it pending */
} fcm_result_t;

/* Called exactly once per accepted fcm_send, from fcm_step (or fcm_close). http_status is the last
 * answer's status (0: none, e.g. a transport error or no access token). detail is a short text
 * ("UNREGISTERED: Requested entity was not found.", "Timeout was reached", ...) or "" on success;
 * borrowed until the callback returns. The callback may call fcm_send, never fcm_close or fcm_step. */
typedef void (*fcm_done_fn)(void *ud, fcm_result_t result, int http_status, const char *detail);

typedef struct {
    const char *credentials_file; /* service-account JSON: project_id, client_email, private_key (PEM), token_uri */
    const char *endpoint;         /* base URL; NULL: https://fcm.googleapis.com */
    unsigned max_in_flight;       /* concurrent requests; 0: 256. More sends wait in a queue inside */
    unsigned max_attempts;        /* per send, for 429 / 5xx / transport errors; 0: 6 */
    unsigned backoff_ms;          /* first retry pause, doubled each time; 0: 1000 */
    unsigned backoff_max_ms;      /* 0: 60000. A longer Retry-After (seconds or HTTP-date) wins */
    unsigned timeout_ms;          /* per request; 0: 10000 */
    unsigned token_margin_s;      /* renew the access token this long before it expires; 0: 300 (but at most half its lifetime) */
} fcm_conf_t;

/* Reads and checks the key file (JSON with the four members, a private key that signs RS256).
 * conf and its strings are copied. Returns NULL with a message in err on failure. */
fcm_t *fcm_open(const fcm_conf_t *conf, char *err, size_t errlen);

/* Calls done(FCM_GAVE_UP, 0, "closed") for every send still pending, then frees everything.
 * f may be NULL. Not from inside a done callback. */
void fcm_close(fcm_t *f);

/* Queues a send of message_json (a JSON object: the FCM message's members except "token", e.g.
 * {"notification":{...},"data":{...},"android":{...},"apns":{...}}) to token. Never blocks, never
 * calls done itself; done is called exactly once, later, from fcm_step. Returns 0, or -1 (not a JSON
 * object, or the resulting request body over 4096 bytes: FCM's payload limit) without calling done.
 * A "token" member of message_json is replaced by token. token and message_json are copied. */
int fcm_send(fcm_t *f, const char *token, const char *message_json, fcm_done_fn done, void *ud);

/* Drives everything: waits up to timeout_ms for network activity, a due retry or a token renewal, or
 * for one of extra_fds to become readable (NULL/0 allowed; use curl_multi_wait's extra fds), then
 * makes progress and calls done callbacks. Returns how many extra fds are readable, or -1. */
int fcm_step(fcm_t *f, const int *extra_fds, unsigned nextra, int timeout_ms);

/* Queued + in flight + waiting for a retry. */
size_t fcm_pending(const fcm_t *f);

typedef struct {
    uint64_t sent, unregistered, invalid, gave_up; /* done callbacks by result */
    uint64_t retried;                              /* sends put back for another attempt (401 included) */
    uint64_t tokens_fetched, token_failures;       /* access-token requests that worked / failed */
} fcm_stats_t;
void fcm_stats(const fcm_t *f, fcm_stats_t *out);

/* The longest request body fcm_send accepts (FCM's limit on a message). */
#define FCM_MAX_BODY 4096

#endif
