/* notif.h -- what the files of the notification daemon share: its context, the inbox, the
 * projections it keeps from events (users, posts, follows, blocks, devices), push and mail. */
#ifndef NOTIF_H
#define NOTIF_H

#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <cjson/cJSON.h>

#include "cursor/cursor.h"
#include "db/db.h"
#include "mq/mq.h"
#include "rpc/rpc.h"
#include "svc/svc.h"

/* ================================================================ configuration and context */

typedef struct {
    svc_conf_t svc;
    char *mongo_uri;
    char *cursor_secret;
    long rpc_timeout_ms;
    long max_items, trim_every, retention_ms, post_batch, purge_interval_ms;
    /* push (push.c): off without credentials */
    char *fcm_credentials, *fcm_endpoint;
    long push_in_flight, push_attempts, push_backoff_ms, push_job_attempts, push_timeout_ms;
    /* welcome e-mail (welcome.c): off without SMTP_URL */
    char *smtp_url, *mail_from, *smtp_user, *smtp_password, *product_name;
    int smtp_starttls;
    long smtp_timeout_ms;
} notif_conf_t;

typedef struct {
    const notif_conf_t *conf;
    db_t *db;
    cursor_key_t cursor;
    mq_rpc_client_t *rpc;   /* media.get of avatars */
    struct push *push;      /* push.c: the thread that talks to FCM; NULL when push is off */
    struct welcome *mail;   /* welcome.c: the thread that sends welcome mails; NULL when off */
    metrics_registry_t *metrics;
    struct events_worker **workers; /* one per consumer thread (events.c), freed at stop */
    size_t nworkers;
} notif_t;

#define NOTIF_ID_LEN 24 /* hex digits of a notification id */

/* ================================================================ the inbox (inbox.c)
 *
 * One document per recipient in "inboxes", read and written by _id alone:
 *   {_id: user, n: {<nid>: {t, a, x, xn, p, c, s, rt}}, u: {<nid>: 1}}
 * n holds the notifications (t type, a time in ms, x actor id, xn actor username, p post, c
 * comment, s comment text, rt the comment replied to), u the unread ones. What a notification
 * is about may vanish without the recipient being known (a post's followers, a thread's
 * commenters): such things leave a tombstone in "stops", and reads leave out what one names. */

typedef struct {
    const char *type;       /* "like", "comment", "follow", "post" */
    const char *recipient;  /* user id */
    const char *source;     /* what caused it, unique per recipient and type: the id's seed */
    const char *actor, *actor_username;
    const char *post_id, *comment_id, *reply_to; /* NULL when not about one */
    const char *text;       /* comment text (cut to 200 characters), or NULL */
    int64_t at;             /* ms: when the cause happened */
} notif_entry_t;

/* The id of the notification of entry (deterministic: a redelivered event finds the same). */
void inbox_id(const char *recipient, const char *type, const char *source, char out[NOTIF_ID_LEN + 1]);
/* Stores e in its recipient's inbox, unless a tombstone forbids it (the actor, recipient, post or
 * comment gone, a block between them, or the notification retracted after e->at). Safe to repeat.
 * 1 stored, 0 not wanted, -1 database. */
int inbox_put(notif_t *n, const notif_entry_t *e);
/* The same for many recipients of one cause (a post's followers): one bulk write. recipients[i]
 * gets ids[i] (filled). Returns the number stored (those whose account is not gone), or -1. */
long inbox_put_many(notif_t *n, const notif_entry_t *e, const char *const *recipients, size_t nr,
                    char (*ids)[NOTIF_ID_LEN + 1]);
/* Takes back the notification (recipient, type, source) and keeps it from coming back from an
 * older event: a tombstone at at (ms). 0 or -1. */
int inbox_retract(notif_t *n, const char *recipient, const char *type, const char *source, int64_t at);
/* Removes from user's inbox every notification whose field key ("p" post, "c" comment, "x"
 * actor) is value. 0 or -1. */
int inbox_drop_matching(notif_t *n, const char *user, const char *key, const char *value);
/* Deletes user's inbox. 0 or -1. */
int inbox_drop_all(notif_t *n, const char *user);
/* Tombstones ("p:<post>", "c:<comment>", "u:<user>", "b:<a>:<b>", "r:<nid>"), at ms. 0 or -1. */
int stops_put(notif_t *n, const char *key, int64_t at);
int stops_delete(notif_t *n, const char *key);
/* 1 and *at if key is there, 0 not, -1. */
int stops_get(notif_t *n, const char *key, int64_t *at);
/* The block tombstone key of a pair, in either order. */
void stops_block_key(const char *a, const char *b, char *out, size_t outlen);
/* Deletes tombstones and inbox entries older than the retention. 0 or -1. */
int inbox_purge(notif_t *n);

/* RPC handlers (GET /v1/notifications, GET unread_count, POST read_all, PATCH {id}). */
void inbox_list(notif_t *n, const mq_message_t *req, mq_reply_t *r);
void inbox_unread_count(notif_t *n, const mq_message_t *req, mq_reply_t *r);
void inbox_read_all(notif_t *n, const mq_message_t *req, mq_reply_t *r);
void inbox_mark(notif_t *n, const mq_message_t *req, mq_reply_t *r);

/* ================================================================ events (events.c) */

/* What each consumer thread of notification.events has: the context and a publisher connection
 * (confirms) of its own for push jobs. */
typedef struct events_worker {
    notif_t *n;
    mq_t *pub;
} events_worker_t;
/* The consumer of notification.events; ud is the thread's events_worker_t. */
mq_disposition_t events_on_message(mq_t *mq, const mq_message_t *msg, void *ud);

/* ================================================================ projections (graph.c, users.c) */

/* The follow edge from -> to, on or off as of at (ms), unless a newer event set it; the followers
 * bucket of to follows the edge. 0 or -1. */
int graph_follow_set(notif_t *n, const char *from, const char *to, int on, int64_t at);
/* The followers of user (copies; free with graph_ids_free). 0 or -1. */
int graph_followers(notif_t *n, const char *user, char ***ids, size_t *nids);
void graph_ids_free(char **ids, size_t nids);
/* Removes user from what the graph holds of it (its followers bucket, its edges). 0 or -1. */
int graph_user_gone(notif_t *n, const char *user);

/* Writes the profile version v (ms) of user_id unless a newer one is there. 0 or -1. */
int users_apply(notif_t *n, const char *user_id, const char *username, const char *name,
                const char *avatar_media_id, int64_t v, const char *request_id);
int users_gone(notif_t *n, const char *user_id);
/* Fills actor objects {id, username, name, avatar} for the ids (one query); fallback usernames
 * for those not projected yet. Returns a new object {id: actor}, or NULL on a database error. */
cJSON *users_actors(notif_t *n, const char *const *ids, const char *const *usernames, size_t count);
/* The post projection (author, thumbnail) from post.created, and its removal. 0 or -1. */
int users_post_put(notif_t *n, const char *post_id, const char *author_id, const char *thumb_url);
int users_post_gone(notif_t *n, const char *post_id);
/* {post_id: thumbnail url or null} for the ids (one query), or NULL on a database error. */
cJSON *users_post_thumbs(notif_t *n, const char *const *ids, size_t count);

/* ================================================================ device tokens (devices.c) */

int devices_registered(notif_t *n, const char *user, const char *token, const char *platform, int64_t at);
int devices_removed(notif_t *n, const char *user, const char *token, int64_t at);
int devices_drop_all(notif_t *n, const char *user);
/* The tokens of users (one query): calls fn(user, token, ud) for each. 0 or -1. */
int devices_each(notif_t *n, const char *const *users, size_t count,
                 void (*fn)(const char *user, const char *token, void *ud), void *ud);

/* ================================================================ push (push.c) */

/* Starts the push thread (own connections, consumer of notification.push) when FCM_CREDENTIALS
 * is set; says once that push is off otherwise. 0 or -1 (bad credentials file). */
int push_start(notif_t *n);
void push_stop(notif_t *n);
/* Queues the push of a notification to recipients (ids[i] for recipients[i]) on notification.push,
 * through pub (a publisher connection with confirms of the calling thread). 0, or -1 (broker:
 * the caller retries its event). Nothing when push is off. */
int push_enqueue(notif_t *n, mq_t *pub, const notif_entry_t *e, const char *const *recipients,
                 char (*ids)[NOTIF_ID_LEN + 1], size_t count, const char *request_id);

/* Drops the push logs of days older than yesterday. 0 or -1. */
int push_purge_logs(notif_t *n);

/* ================================================================ welcome e-mail (welcome.c) */

/* Starts the mail thread (consumer of notification.mail) when SMTP_URL is set. 0 or -1. */
int welcome_start(notif_t *n);
void welcome_stop(notif_t *n);

#endif
