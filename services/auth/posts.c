/* posts.c -- posts_count from publication's post.created and post.deleted events.
 *
 * The projection user_posts holds one document per post ({_id: post id, user_id}); the count
 * moves only when an insert or a delete really changed it, so a redelivered event changes
 * nothing. A duplicate recounts instead, which also repairs a count a crash left behind
 * (between the insert and the increment). */
#include <string.h>

#include "auth.h"
#include "json/json.h"
#include "log/log.h"

mq_disposition_t posts_on_event(mq_t *mq, const mq_message_t *msg, void *ud)
{
    (void)mq;
    auth_t *a = ud;
    const char *key = msg->routing_key != NULL ? msg->routing_key : "";
    int created = strcmp(key, "post.created") == 0;
    if (!created && strcmp(key, "post.deleted") != 0)
        return MQ_DEAD;
    cJSON *body = json_parse_object(msg->body, msg->body_len, 1 << 20, 16, NULL);
    const char *post = rpc_field_str(body, "post_id"), *author = rpc_field_str(body, "author_id");
    mq_disposition_t d = MQ_ACK;
    if (post == NULL || author == NULL || post[0] == '\0' || author[0] == '\0') {
        log_warn(msg->request_id, "%s %s without post_id and author_id: dead-lettered", key,
                 msg->message_id != NULL ? msg->message_id : "-");
        d = MQ_DEAD;
        goto out;
    }
    int rc;
    /* The write and its count under one lock: a recount (after a duplicate) must not land
     * between another event's insert and its increment. */
    pthread_mutex_lock(&a->counters_lock);
    if (created) {
        bson_t *doc = BCON_NEW("_id", BCON_UTF8(post), "user_id", BCON_UTF8(author));
        rc = db_insert(a->db, "user_posts", doc);
        bson_destroy(doc);
        rc = rc == 0   ? counter_add_locked(a, author, CTR_POSTS, 1)
             : rc == 1 ? counter_recount_locked(a, author)
                       : -1;
    } else {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(post));
        rc = db_delete_one(a->db, "user_posts", f);
        bson_destroy(f);
        rc = rc == 1   ? counter_add_locked(a, author, CTR_POSTS, -1)
             : rc == 0 ? counter_recount_locked(a, author)
                       : -1;
    }
    pthread_mutex_unlock(&a->counters_lock);
    if (rc != 0)
        d = MQ_RETRY;
out:
    cJSON_Delete(body);
    return d;
}
