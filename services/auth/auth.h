/* auth.h -- what the files of the auth daemon share: its context, store access, outbox recovery. */
#ifndef AUTH_H
#define AUTH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <cjson/cJSON.h>
#include <sodium.h>

#include "cursor/cursor.h"
#include "db/db.h"
#include "mq/mq.h"
#include "outbox/outbox.h"
#include "rpc/rpc.h"
#include "svc/svc.h"

/* ================================================================ configuration and context */

typedef struct {
    svc_conf_t svc;
    char *mongo_uri;
    char *private_key; /* PEM, from JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE */
    char *jwt_issuer, *jwt_audience;
    long access_ttl_ms, refresh_ttl_ms;
    char *cursor_secret;
    long pw_opslimit, pw_memlimit_kib;
    long login_failures_per_account, login_failures_per_address, login_failure_window_ms;
    long registrations_per_address, registration_window_ms;
    long max_devices;
    long outbox_recover_after_ms, outbox_poll_ms;
} auth_conf_t;

typedef struct {
    const auth_conf_t *conf;
    db_t *db;
    cursor_key_t cursor;
    char dummy_hash[crypto_pwhash_STRBYTES]; /* verified against when a login names nobody */
    /* FerretDB applies updates as read-modify-write without a lock (8 threads x 100 $inc end at
     * about 160), so every counter update of this process goes through this lock; MongoDB's $inc
     * is atomic by itself. */
    pthread_mutex_t counters_lock;
    outbox_t *outbox; /* events go out through it (libs/outbox) */
    metrics_counter_t *logins;
} auth_t;

/* ================================================================ counters (counters.c) */

typedef enum { CTR_FOLLOWERS, CTR_FOLLOWING, CTR_POSTS } auth_counter_t;

/* Adds delta to one counter of user_id (creating its document). Returns 0 or -1. */
int counter_add(auth_t *a, const char *user_id, auth_counter_t which, int delta);
/* Sets all counters of user_id from the edges and posts stored (after a crash or a duplicate
 * delivery). Returns 0 or -1. */
int counter_recount(auth_t *a, const char *user_id);
/* The same, for a caller holding a->counters_lock across its own write and the count (so that
 * no recount of this process lands between them). */
int counter_add_locked(auth_t *a, const char *user_id, auth_counter_t which, int delta);
int counter_recount_locked(auth_t *a, const char *user_id);
/* Reads the counters (zeros when there is no document). Returns 0 or -1. */
int counter_get(auth_t *a, const char *user_id, long out[3]);

/* ================================================================ validation (validate.c) */

#define AUTH_USERNAME_MAX 30
#define AUTH_EMAIL_MAX 254

/* Lower-cases in into out and checks ^[a-z0-9_.]{3,30}$. Returns 0 or -1. */
int auth_username_normalize(const char *in, char out[AUTH_USERNAME_MAX + 1]);
/* Lower-cases in into out and checks local@domain. Returns 0 or -1 with why set. */
int auth_email_normalize(const char *in, char out[AUTH_EMAIL_MAX + 1], const char **why);
/* An opaque id of another service ([A-Za-z0-9_-]{1,64}). */
int auth_media_id_valid(const char *s);
/* An FCM registration token ([A-Za-z0-9_:.-]{1,4096}). */
int auth_device_token_valid(const char *s);


/* ================================================================ passwords and tokens (tokens.c) */

/* argon2id with the configured limits. Returns 0 or -1 (out of memory). */
int password_hash(auth_t *a, const char *password, char out[crypto_pwhash_STRBYTES]);
/* 1 if password matches hash, else 0. */
int password_verify(const char *hash, const char *password);
int password_needs_rehash(auth_t *a, const char *hash);

/* Answers {user, access_token, refresh_token, token_type, expires_in} for the user document,
 * in family (NULL: a new family). Returns 0, or -1 after answering (503). */
int tokens_issue(auth_t *a, const bson_t *user, const char *family, int status, mq_reply_t *r);
/* Revokes every refresh token of family; 0 or -1. */
int tokens_revoke_family(auth_t *a, const char *family);
/* Revokes every refresh token of user_id; 0 or -1. */
int tokens_revoke_user(auth_t *a, const char *user_id);

/* ================================================================ users (accounts.c) */

/* The account JSON of a user document: own (with email) or public. */
cJSON *user_account_json(auth_t *a, const bson_t *user, int with_email);
/* Loads the user by id into out: 1, 0 not found, -1. */
int user_by_id(auth_t *a, const char *id, bson_t *out);
/* Loads the caller (x-user-id) or answers 401 (account gone) / 503. Returns 1 when loaded. */
int user_caller(auth_t *a, const mq_message_t *req, mq_reply_t *r, bson_t *out);
/* Removes everything of a deleted account but the user document (already gone); safe to repeat. */
int user_cleanup(auth_t *a, const char *user_id);
/* The user.updated payload from the current document. */
cJSON *user_updated_event(const bson_t *user);

/* ================================================================ attempts (limits.c) */

/* Seconds until another attempt of key is allowed when max attempts fell in the last window_ms,
 * else 0; -1 on a database error. */
long limit_check(auth_t *a, const char *key, long max, long window_ms);
/* Records one attempt of key. 0 or -1. */
int limit_record(auth_t *a, const char *key);
/* Forgets attempts older than older_than_ms. */
void limit_purge(auth_t *a, long older_than_ms);

/* ================================================================ graph (graph.c) */

/* Removes the follow edge from -> to and its counts; 1 removed, 0 absent, -1. */
int graph_unfollow_edge(auth_t *a, const char *from, const char *to);

/* ================================================================ outbox recovery (recover.c) */

/* auth's outbox_recover_fn (ud is the auth_t): looks at the decisive write of an abandoned
 * event's request (the account, the edge with this event's op id, the device) and finishes what
 * followed it (counts, unfollows, cleanup) before it says OUTBOX_READY, or says OUTBOX_DROP when
 * the write is not there. Runs on the relay thread. */
outbox_verdict_t auth_outbox_recover(void *ud, const bson_t *doc, char **body);

/* ================================================================ handlers */

typedef void (*auth_handler_fn)(auth_t *a, const mq_message_t *req, mq_reply_t *r);

void accounts_register(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void accounts_login(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void tokens_refresh(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void tokens_logout(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void accounts_me_get(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void accounts_me_update(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void accounts_me_delete(auth_t *a, const mq_message_t *req, mq_reply_t *r);
/* For other services (publication): body {"ids": [1..100]} -> {items: [{id, username, name,
 * avatar_media_id}], missing: [ids]}, items in the order asked. */
void accounts_users_get(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void graph_user_get(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void graph_followers(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void graph_following(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void graph_follow(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void graph_unfollow(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void graph_block(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void graph_unblock(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void devices_add(auth_t *a, const mq_message_t *req, mq_reply_t *r);
void devices_remove(auth_t *a, const mq_message_t *req, mq_reply_t *r);

/* RPC entry point (rpc.c): dispatches auth.* methods. */
void auth_rpc(mq_t *mq, const mq_message_t *req, mq_reply_t *reply, void *ud);
/* post.created / post.deleted consumer (posts.c). */
mq_disposition_t posts_on_event(mq_t *mq, const mq_message_t *msg, void *ud);

#endif
