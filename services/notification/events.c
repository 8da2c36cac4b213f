/* events.c -- the consumer of notification.events: what each event means for inboxes, the
 * projections and push. Every branch is safe to repeat: a redelivered event notifies once. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "notif.h"

#define EVENTS__TEXT_MAX 200 /* characters of a comment kept in a notification */

/* The first max characters of a UTF-8 string (a copy). */
static char *events__cut(const char *s, size_t max)
{
    size_t i = 0, chars = 0;
    while (s[i] != '\0' && chars < max) {
        i++;
        while ((s[i] & 0xC0) == 0x80)
            i++;
        chars++;
    }
    return xstrndup(s, i);
}

/* Stores e for each of recipients (up to NOTIFY_POST_BATCH; never the actor: inbox_put_many leaves it
 * out) in one bulk write, and queues the pushes of those stored. 0 or -1 (retry the event). */
static int events__notify(events_worker_t *w, const notif_entry_t *e, const char *const *recipients, size_t n,
                          const char *request_id)
{
    char(*ids)[NOTIF_ID_LEN + 1] = xcalloc(n ? n : 1, sizeof(*ids));
    long stored = inbox_put_many(w->n, e, recipients, n, ids);
    int rc = stored < 0 ? -1 : stored == 0 ? 0 : push_enqueue(w->n, w->pub, e, recipients, ids, n, request_id);
    free(ids);
    return rc;
}

/* "X posted" to every follower of the author, in batches (one bulk write each). 0 or -1. */
static int events__post_to_followers(events_worker_t *w, notif_entry_t *e, const char *request_id)
{
    char **followers;
    size_t nf;
    if (graph_followers(w->n, e->actor, &followers, &nf) != 0)
        return -1;
    size_t batch = (size_t)w->n->conf->post_batch;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nf; i += batch)
        rc = events__notify(w, e, (const char *const *)followers + i, nf - i < batch ? nf - i : batch, request_id);
    graph_ids_free(followers, nf);
    return rc;
}

/* The thumbnail URL of a post.created's first photo, or NULL (borrowed from body). */
static const char *events__thumb(const cJSON *body)
{
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(body, "media"), 0);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "variants");
    return rpc_field_str(cJSON_GetObjectItemCaseSensitive(v, "thumb"), "url");
}

/* Each handler: 0 applied, -1 retry, 1 malformed (dead-letter). */

static int events__user(events_worker_t *w, const char *key, const cJSON *b, const char *rid)
{
    notif_t *n = w->n;
    const char *uid = rpc_field_str(b, "user_id"), *username = rpc_field_str(b, "username");
    if (strcmp(key, "user.deleted") == 0) {
        int64_t at = json_time_ms(rpc_field_str(b, "deleted_at"));
        if (uid == NULL || at < 0)
            return 1;
        char k[96];
        snprintf(k, sizeof(k), "u:%s", uid);
        /* the tombstone first: it hides the user's notifications in every inbox at once */
        if (stops_put(n, k, at) != 0 || inbox_drop_all(n, uid) != 0 || devices_drop_all(n, uid) != 0 ||
            graph_user_gone(n, uid) != 0)
            return -1;
        bson_t *f = BCON_NEW("_id", BCON_UTF8(uid));
        int rc = db_delete_one(n->db, "users", f) < 0 ? -1 : 0;
        bson_destroy(f);
        return rc;
    }
    int updated = strcmp(key, "user.updated") == 0;
    int64_t v = json_time_ms(rpc_field_str(b, updated ? "updated_at" : "created_at"));
    if (uid == NULL || username == NULL || v < 0)
        return 1;
    return users_apply(n, uid, username, rpc_field_str(b, "name"),
                       updated ? rpc_field_str(b, "avatar_media_id") : NULL, v, rid);
}

static int events__follow(events_worker_t *w, const char *key, const cJSON *b, const char *rid)
{
    const char *from = rpc_field_str(b, "follower_id"), *to = rpc_field_str(b, "followee_id");
    int on = strcmp(key, "follow.created") == 0;
    int64_t at = json_time_ms(rpc_field_str(b, on ? "created_at" : "deleted_at"));
    if (from == NULL || to == NULL || at < 0)
        return 1;
    if (graph_follow_set(w->n, from, to, on, at) != 0)
        return -1;
    if (!on)
        return inbox_retract(w->n, to, "follow", from, at);
    notif_entry_t e = {.type = "follow",
                       .recipient = to,
                       .source = from,
                       .actor = from,
                       .actor_username = rpc_field_str(b, "follower_username"),
                       .at = at};
    return events__notify(w, &e, &e.recipient, 1, rid);
}

static int events__block(events_worker_t *w, const char *key, const cJSON *b)
{
    const char *x = rpc_field_str(b, "blocker_id"), *y = rpc_field_str(b, "blocked_id");
    int on = strcmp(key, "block.created") == 0;
    int64_t at = json_time_ms(rpc_field_str(b, on ? "created_at" : "deleted_at"));
    if (x == NULL || y == NULL || at < 0)
        return 1;
    char k[160];
    stops_block_key(x, y, k, sizeof(k));
    if (!on) {
        int64_t since;
        int rc = stops_get(w->n, k, &since);
        if (rc < 0)
            return -1;
        return rc == 1 && since <= at ? stops_delete(w->n, k) : 0;
    }
    /* the tombstone first (nothing new passes it), then what is there already, both ways */
    if (stops_put(w->n, k, at) != 0 || graph_follow_set(w->n, x, y, 0, at) != 0 ||
        graph_follow_set(w->n, y, x, 0, at) != 0 || inbox_drop_matching(w->n, x, "x", y) != 0 ||
        inbox_drop_matching(w->n, y, "x", x) != 0)
        return -1;
    return 0;
}

static int events__like(events_worker_t *w, const char *key, const cJSON *b, const char *rid)
{
    const char *type = rpc_field_str(b, "target_type"), *target = rpc_field_str(b, "target_id"),
               *post = rpc_field_str(b, "post_id"), *recipient = rpc_field_str(b, "recipient_id"),
               *user = rpc_field_str(b, "user_id");
    int on = strcmp(key, "like.created") == 0;
    int64_t at = json_time_ms(rpc_field_str(b, on ? "created_at" : "deleted_at"));
    if (type == NULL || target == NULL || post == NULL || recipient == NULL || user == NULL || at < 0 ||
        (strcmp(type, "post") != 0 && strcmp(type, "comment") != 0))
        return 1;
    char *source = xasprintf("%s|%s", target, user);
    int rc;
    if (!on) {
        rc = inbox_retract(w->n, recipient, "like", source, at);
    } else {
        notif_entry_t e = {.type = "like",
                           .recipient = recipient,
                           .source = source,
                           .actor = user,
                           .actor_username = rpc_field_str(b, "username"),
                           .post_id = post,
                           .comment_id = strcmp(type, "comment") == 0 ? target : NULL,
                           .at = at};
        rc = events__notify(w, &e, &e.recipient, 1, rid);
    }
    free(source);
    return rc;
}

static int events__comment(events_worker_t *w, const char *key, const cJSON *b, const char *rid)
{
    const char *comment = rpc_field_str(b, "comment_id"), *post = rpc_field_str(b, "post_id"),
               *post_author = rpc_field_str(b, "post_author_id");
    if (comment == NULL || post == NULL || post_author == NULL)
        return 1;
    if (strcmp(key, "comment.deleted") == 0) {
        int64_t at = json_time_ms(rpc_field_str(b, "deleted_at"));
        const cJSON *replies = cJSON_GetObjectItemCaseSensitive(b, "reply_ids");
        if (at < 0 || !cJSON_IsArray(replies))
            return 1;
        /* whoever was told about the comment or its replies (or likes of them), in any inbox */
        char k[96];
        snprintf(k, sizeof(k), "c:%s", comment);
        if (stops_put(w->n, k, at) != 0)
            return -1;
        const cJSON *r;
        cJSON_ArrayForEach(r, replies)
        {
            if (!cJSON_IsString(r))
                continue;
            snprintf(k, sizeof(k), "c:%.80s", r->valuestring);
            if (stops_put(w->n, k, at) != 0)
                return -1;
        }
        return 0;
    }
    const char *author = rpc_field_str(b, "author_id"), *text = rpc_field_str(b, "text"),
               *reply_to = rpc_field_str(b, "reply_to"), *parent_author = rpc_field_str(b, "reply_to_author_id");
    int64_t at = json_time_ms(rpc_field_str(b, "created_at"));
    if (author == NULL || text == NULL || at < 0)
        return 1;
    char *cut = events__cut(text, EVENTS__TEXT_MAX);
    notif_entry_t e = {.type = "comment",
                       .recipient = post_author,
                       .source = comment,
                       .actor = author,
                       .actor_username = rpc_field_str(b, "author_username"),
                       .post_id = post,
                       .comment_id = comment,
                       .reply_to = reply_to,
                       .text = cut,
                       .at = at};
    /* a reply also tells the author of the comment it answers (once, if that is the post's author) */
    const char *to[] = {post_author, parent_author};
    size_t nto = parent_author != NULL && strcmp(parent_author, post_author) != 0 ? 2 : 1;
    int rc = events__notify(w, &e, to, nto, rid);
    free(cut);
    return rc;
}

static int events__post(events_worker_t *w, const char *key, const cJSON *b, const char *rid)
{
    const char *post = rpc_field_str(b, "post_id"), *author = rpc_field_str(b, "author_id");
    int on = strcmp(key, "post.created") == 0;
    int64_t at = json_time_ms(rpc_field_str(b, on ? "created_at" : "deleted_at"));
    if (post == NULL || author == NULL || at < 0)
        return 1;
    if (!on) {
        char k[96];
        snprintf(k, sizeof(k), "p:%s", post);
        return stops_put(w->n, k, at) != 0 || users_post_gone(w->n, post) != 0 ? -1 : 0;
    }
    if (users_post_put(w->n, post, author, events__thumb(b)) != 0)
        return -1;
    notif_entry_t e = {.type = "post",
                       .source = post,
                       .actor = author,
                       .actor_username = rpc_field_str(b, "author_username"),
                       .post_id = post,
                       .at = at};
    return events__post_to_followers(w, &e, rid);
}

static int events__device(events_worker_t *w, const char *key, const cJSON *b)
{
    const char *user = rpc_field_str(b, "user_id"), *token = rpc_field_str(b, "token");
    int on = strcmp(key, "device.registered") == 0;
    int64_t at = json_time_ms(rpc_field_str(b, on ? "created_at" : "removed_at"));
    const char *platform = rpc_field_str(b, "platform");
    if (user == NULL || token == NULL || at < 0 || (on && platform == NULL) || strlen(token) > 4096)
        return 1;
    return on ? devices_registered(w->n, user, token, platform, at) : devices_removed(w->n, user, token, at);
}

mq_disposition_t events_on_message(mq_t *mq, const mq_message_t *msg, void *ud)
{
    (void)mq;
    events_worker_t *w = ud;
    const char *key = msg->routing_key != NULL ? msg->routing_key : "";
    const char *rid = msg->request_id;
    cJSON *b = json_parse_object(msg->body, msg->body_len, 1 << 20, 16, NULL);
    int rc = 1;
    if (b == NULL)
        rc = 1;
    else if (strncmp(key, "user.", 5) == 0 &&
             (strcmp(key + 5, "registered") == 0 || strcmp(key + 5, "updated") == 0 || strcmp(key + 5, "deleted") == 0))
        rc = events__user(w, key, b, rid);
    else if (strcmp(key, "follow.created") == 0 || strcmp(key, "follow.deleted") == 0)
        rc = events__follow(w, key, b, rid);
    else if (strcmp(key, "block.created") == 0 || strcmp(key, "block.deleted") == 0)
        rc = events__block(w, key, b);
    else if (strcmp(key, "like.created") == 0 || strcmp(key, "like.deleted") == 0)
        rc = events__like(w, key, b, rid);
    else if (strcmp(key, "comment.created") == 0 || strcmp(key, "comment.deleted") == 0)
        rc = events__comment(w, key, b, rid);
    else if (strcmp(key, "post.created") == 0 || strcmp(key, "post.deleted") == 0)
        rc = events__post(w, key, b, rid);
    else if (strcmp(key, "device.registered") == 0 || strcmp(key, "device.removed") == 0)
        rc = events__device(w, key, b);
    cJSON_Delete(b);
    if (rc == 1) {
        log_warn(rid, "%s %s is not an event notification understands: dead-lettered", key[0] ? key : "-",
                 msg->message_id != NULL ? msg->message_id : "-");
        return MQ_DEAD;
    }
    return rc == 0 ? MQ_ACK : MQ_RETRY;
}
