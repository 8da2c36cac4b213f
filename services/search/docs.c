/* docs.c -- search's documents in MongoDB, kept from events idempotently, and the sync message
 * that tells every copy's index which document changed.
 *
 * Every write reads the document by _id, decides, and writes it by _id (FerretDB answers nothing
 * else from an index). Versions (the event's time) make late or repeated events harmless;
 * counters remember the message ids they applied in the document they count (seen), so the
 * increment and its mark are one atomic update. Writes of one document are serialised in this
 * process (docs__lock); two copies racing on one document can still interleave, which only an
 * older event arriving at the same millisecond as a newer one could turn into a stale value. */
#include <string.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "search.h"

#define DOCS__STRIPES 64
#define DOCS__SEEN_MAX 32 /* message ids a counter remembers (the newest) */

static pthread_mutex_t docs__stripes[DOCS__STRIPES] = {
    [0 ... DOCS__STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER,
};

static pthread_mutex_t *docs__lock(const char *coll, const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *p = coll; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    pthread_mutex_t *m = &docs__stripes[h % DOCS__STRIPES];
    pthread_mutex_lock(m);
    return m;
}

/* Tells every copy's index that coll's document id changed. 0 or -1 (the event is retried). */
static int docs__sync(search_worker_t *w, const char *kind, const char *id)
{
    mq_publish_t p = {
        .exchange = SEARCH_SYNC_EXCHANGE,
        .routing_key = kind,
        .type = "search.sync",
        .content_type = "text/plain",
        .body = id,
        .body_len = strlen(id),
    };
    int rc = mq_publish(w->pub, &p, 5000);
    if (rc != 0)
        log_warn(NULL, "search.sync %s %s: %s", kind, id, mq_strerror(rc));
    return rc == 0 ? 0 : -1;
}

/* Reads coll's document id into doc (always initialised): 1, 0 (none) or -1. */
static int docs__get(search_t *s, const char *coll, const char *id, bson_t *doc)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    bson_init(doc); /* db_find_one fills it only when it finds one */
    int rc = db_find_one(s->db, coll, f, NULL, doc);
    bson_destroy(f);
    return rc;
}

static int docs__update(search_t *s, const char *coll, const char *id, const bson_t *update)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_update_one(s->db, coll, f, update, 1);
    if (rc == -2) /* two first upserts of one document: the other inserted; write over it */
        rc = db_update_one(s->db, coll, f, update, 1);
    bson_destroy(f);
    return rc < 0 ? -1 : 0;
}

/* ================================================================ counters */

/* Adds delta to coll's counter field of id once per message_id. A document that is gone is left
 * alone. 0 or -1. */
static int docs__count(search_t *s, const char *coll, const char *id, const char *field, int64_t delta,
                       const char *message_id)
{
    bson_t doc;
    pthread_mutex_t *m = docs__lock(coll, id);
    int rc = docs__get(s, coll, id, &doc);
    if (rc < 0)
        goto out;
    rc = 0;
    if (db_doc_int(&doc, "gone") != 0)
        goto out;
    bson_iter_t it, seen;
    if (bson_iter_init_find(&it, &doc, "seen") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &seen) &&
        bson_iter_find(&seen, message_id))
        goto out; /* applied before */
    /* the newest DOCS__SEEN_MAX - 1 marks stay, with this one: drop the oldest beyond them */
    const char *keys[2 * DOCS__SEEN_MAX];
    int64_t when[2 * DOCS__SEEN_MAX];
    size_t n = 0;
    if (bson_iter_init_find(&it, &doc, "seen") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &seen)) {
        while (n < CORE_ARRAY_SIZE(keys) && bson_iter_next(&seen)) {
            keys[n] = bson_iter_key(&seen);
            when[n++] = BSON_ITER_HOLDS_INT64(&seen) ? bson_iter_int64(&seen) : 0;
        }
    }
    size_t drop = n >= DOCS__SEEN_MAX ? n - DOCS__SEEN_MAX + 1 : 0;
    bson_t u = BSON_INITIALIZER, inc, set, unset;
    char key[160];
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$inc", &inc);
    BSON_APPEND_INT64(&inc, field, delta);
    bson_append_document_end(&u, &inc);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    snprintf(key, sizeof(key), "seen.%s", message_id);
    BSON_APPEND_INT64(&set, key, core_wall_ms());
    bson_append_document_end(&u, &set);
    if (drop > 0) {
        BSON_APPEND_DOCUMENT_BEGIN(&u, "$unset", &unset);
        for (size_t k = 0; k < drop; k++) { /* selection of the k-th oldest */
            size_t o = k;
            for (size_t i = k + 1; i < n; i++)
                if (when[i] < when[o])
                    o = i;
            const char *tk = keys[o];
            int64_t tw = when[o];
            keys[o] = keys[k];
            when[o] = when[k];
            keys[k] = tk;
            when[k] = tw;
            snprintf(key, sizeof(key), "seen.%s", keys[k]);
            BSON_APPEND_INT32(&unset, key, 1);
        }
        bson_append_document_end(&u, &unset);
    }
    rc = docs__update(s, coll, id, &u);
    bson_destroy(&u);
out:
    pthread_mutex_unlock(m);
    bson_destroy(&doc);
    return rc;
}

/* ================================================================ users */

static int docs__user(search_worker_t *w, const char *key, const cJSON *b)
{
    search_t *s = w->s;
    const char *uid = rpc_field_str(b, "user_id"), *username = rpc_field_str(b, "username");
    int deleted = strcmp(key, "user.deleted") == 0;
    int64_t v = json_time_ms(rpc_field_str(b, deleted                                ? "deleted_at"
                                               : strcmp(key, "user.registered") == 0 ? "created_at"
                                                                                     : "updated_at"));
    const char *name = rpc_field_str(b, "name");
    if (uid == NULL || username == NULL || v < 0 || (!deleted && name == NULL) || strlen(uid) > 64)
        return 1;
    bson_t doc;
    pthread_mutex_t *m = docs__lock("users", uid);
    int rc = docs__get(s, "users", uid, &doc);
    if (rc >= 0 && db_doc_int(&doc, "gone") == 0) {
        bson_t *u;
        if (deleted) /* the tombstone keeps late events of the account out */
            u = BCON_NEW("$set", "{", "gone", BCON_INT64(v), "}", "$unset", "{", "u", BCON_INT32(1), "n",
                         BCON_INT32(1), "f", BCON_INT32(1), "seen", BCON_INT32(1), "v", BCON_INT32(1), "}");
        else if (db_doc_int(&doc, "v") <= v)
            u = BCON_NEW("$set", "{", "u", BCON_UTF8(username), "n", BCON_UTF8(name), "v", BCON_INT64(v), "}");
        else
            u = NULL; /* a newer change is stored */
        rc = u != NULL ? docs__update(s, "users", uid, u) : 0;
        if (u != NULL)
            bson_destroy(u);
    } else if (rc >= 0) {
        rc = 0;
    }
    pthread_mutex_unlock(m);
    bson_destroy(&doc);
    if (rc == 0 && deleted) {
        /* every post of the account goes (an index on a makes this cheap on MongoDB) */
        bson_t *f = BCON_NEW("a", BCON_UTF8(uid));
        rc = db_delete_many(s->db, "posts", f) < 0 ? -1 : 0;
        bson_destroy(f);
    }
    return rc < 0 || docs__sync(w, "user", uid) != 0 ? -1 : 0;
}

static int docs__follow(search_worker_t *w, const char *key, const cJSON *b, const char *message_id)
{
    const char *follower = rpc_field_str(b, "follower_id"), *followee = rpc_field_str(b, "followee_id");
    if (follower == NULL || followee == NULL || strlen(followee) > 64)
        return 1;
    int64_t delta = strcmp(key, "follow.created") == 0 ? 1 : -1;
    if (docs__count(w->s, "users", followee, "f", delta, message_id) != 0)
        return -1;
    return docs__sync(w, "user", followee) != 0 ? -1 : 0;
}

static int docs__block(search_worker_t *w, const char *key, const cJSON *b)
{
    const char *blocker = rpc_field_str(b, "blocker_id"), *blocked = rpc_field_str(b, "blocked_id");
    int on = strcmp(key, "block.created") == 0;
    int64_t v = json_time_ms(rpc_field_str(b, on ? "created_at" : "deleted_at"));
    if (blocker == NULL || blocked == NULL || v < 0 || strlen(blocker) > 64 || strlen(blocked) > 64)
        return 1;
    char id[160];
    snprintf(id, sizeof(id), "%s:%s", blocker, blocked);
    bson_t doc;
    pthread_mutex_t *m = docs__lock("blocks", id);
    int rc = docs__get(w->s, "blocks", id, &doc);
    if (rc >= 0) {
        rc = 0;
        if (db_doc_int(&doc, "v") <= v) {
            bson_t *u = BCON_NEW("$set", "{", "a", BCON_UTF8(blocker), "b", BCON_UTF8(blocked), "on", BCON_BOOL(on),
                                 "v", BCON_INT64(v), "}");
            rc = docs__update(w->s, "blocks", id, u);
            bson_destroy(u);
        }
    }
    pthread_mutex_unlock(m);
    bson_destroy(&doc);
    return rc < 0 || docs__sync(w, "block", id) != 0 ? -1 : 0;
}

/* ================================================================ posts */

/* The tags of an event as a BSON array (at most 30, strings only); NULL if malformed. */
static bson_t *docs__tags(const cJSON *b)
{
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(b, "tags"), *t;
    if (!cJSON_IsArray(tags) || cJSON_GetArraySize(tags) > 30)
        return NULL;
    bson_t *arr = bson_new();
    char k[16];
    int i = 0;
    cJSON_ArrayForEach(t, tags)
    {
        if (!cJSON_IsString(t) || strlen(t->valuestring) > 400) {
            bson_destroy(arr);
            return NULL;
        }
        snprintf(k, sizeof(k), "%d", i++);
        BSON_APPEND_UTF8(arr, k, t->valuestring);
    }
    return arr;
}

/* The thumbnail URL of a post.created's first photo, or NULL (borrowed from body). */
static const char *docs__thumb(const cJSON *body)
{
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(body, "media"), 0);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "variants");
    return rpc_field_str(cJSON_GetObjectItemCaseSensitive(v, "thumb"), "url");
}

static int docs__post(search_worker_t *w, const char *key, const cJSON *b)
{
    search_t *s = w->s;
    const char *post = rpc_field_str(b, "post_id"), *author = rpc_field_str(b, "author_id");
    int created = strcmp(key, "post.created") == 0, deleted = strcmp(key, "post.deleted") == 0;
    int64_t v = json_time_ms(rpc_field_str(b, created ? "created_at" : deleted ? "deleted_at" : "edited_at"));
    const char *caption = rpc_field_str(b, "caption"), *username = rpc_field_str(b, "author_username");
    if (post == NULL || author == NULL || v < 0 || strlen(post) > 64 || strlen(author) > 64)
        return 1;
    bson_t *tags = NULL;
    if (!deleted && (caption == NULL || (tags = docs__tags(b)) == NULL || (created && username == NULL)))
        return 1;
    bson_t user = BSON_INITIALIZER, doc = BSON_INITIALIZER;
    int rc = 0;
    pthread_mutex_t *m = NULL;
    if (!deleted) {
        /* an account deleted before its post.created arrived: the post went with it */
        rc = docs__get(s, "users", author, &user);
        if (rc < 0 || db_doc_int(&user, "gone") != 0)
            goto out;
    }
    m = docs__lock("posts", post);
    rc = docs__get(s, "posts", post, &doc);
    if (rc < 0 || db_doc_int(&doc, "gone") != 0)
        goto out;
    bson_t u = BSON_INITIALIZER, set, unset;
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
    if (deleted) {
        BSON_APPEND_INT64(&set, "gone", v);
        bson_append_document_end(&u, &set);
        BSON_APPEND_DOCUMENT_BEGIN(&u, "$unset", &unset);
        static const char *const fields[] = {"a", "u", "c", "t", "th", "at", "e", "v", "l", "k", "seen"};
        for (size_t i = 0; i < CORE_ARRAY_SIZE(fields); i++)
            BSON_APPEND_INT32(&unset, fields[i], 1);
        bson_append_document_end(&u, &unset);
    } else {
        int newer = db_doc_int(&doc, "v") <= v; /* else a later edit is stored: keep its caption */
        BSON_APPEND_UTF8(&set, "a", author);
        if (created) {
            const char *thumb = docs__thumb(b);
            BSON_APPEND_UTF8(&set, "u", username);
            BSON_APPEND_DATE_TIME(&set, "at", v);
            if (thumb != NULL)
                BSON_APPEND_UTF8(&set, "th", thumb);
        } else if (newer) {
            BSON_APPEND_DATE_TIME(&set, "e", v);
        }
        if (newer) {
            BSON_APPEND_UTF8(&set, "c", caption);
            BSON_APPEND_ARRAY(&set, "t", tags);
            BSON_APPEND_INT64(&set, "v", v);
        }
        bson_append_document_end(&u, &set);
    }
    rc = docs__update(s, "posts", post, &u);
    bson_destroy(&u);
out:
    if (m != NULL)
        pthread_mutex_unlock(m);
    if (tags != NULL)
        bson_destroy(tags);
    bson_destroy(&user);
    bson_destroy(&doc);
    return rc < 0 || docs__sync(w, "post", post) != 0 ? -1 : 0;
}

static int docs__like(search_worker_t *w, const char *key, const cJSON *b, const char *message_id)
{
    const char *type = rpc_field_str(b, "target_type"), *post = rpc_field_str(b, "post_id");
    if (type == NULL || post == NULL || strlen(post) > 64)
        return 1;
    if (strcmp(type, "post") != 0)
        return 0; /* a comment's likes weigh nothing here */
    int64_t delta = strcmp(key, "like.created") == 0 ? 1 : -1;
    if (docs__count(w->s, "posts", post, "l", delta, message_id) != 0)
        return -1;
    return docs__sync(w, "post", post) != 0 ? -1 : 0;
}

static int docs__comment(search_worker_t *w, const char *key, const cJSON *b, const char *message_id)
{
    const char *post = rpc_field_str(b, "post_id");
    if (post == NULL || strlen(post) > 64)
        return 1;
    int64_t delta = 1;
    if (strcmp(key, "comment.deleted") == 0) {
        const cJSON *replies = cJSON_GetObjectItemCaseSensitive(b, "reply_ids");
        if (!cJSON_IsArray(replies))
            return 1;
        delta = -1 - cJSON_GetArraySize(replies); /* its replies went with it, as publication counts */
    }
    if (docs__count(w->s, "posts", post, "k", delta, message_id) != 0)
        return -1;
    return docs__sync(w, "post", post) != 0 ? -1 : 0;
}

/* ================================================================ dispatch */

mq_disposition_t docs_on_event(mq_t *mq, const mq_message_t *msg, void *ud)
{
    (void)mq;
    search_worker_t *w = ud;
    const char *key = msg->routing_key != NULL ? msg->routing_key : "";
    const char *mid = msg->message_id;
    cJSON *b = json_parse_object(msg->body, msg->body_len, 1 << 20, 16, NULL);
    int rc = 1;
    if (b == NULL || mid == NULL || mid[0] == '\0' || strlen(mid) > 100 || strchr(mid, '.') != NULL ||
        mid[0] == '$')
        rc = 1; /* a message id must be a field name of seen */
    else if (strcmp(key, "user.registered") == 0 || strcmp(key, "user.updated") == 0 ||
             strcmp(key, "user.deleted") == 0)
        rc = docs__user(w, key, b);
    else if (strcmp(key, "post.created") == 0 || strcmp(key, "post.updated") == 0 ||
             strcmp(key, "post.deleted") == 0)
        rc = docs__post(w, key, b);
    else if (strcmp(key, "like.created") == 0 || strcmp(key, "like.deleted") == 0)
        rc = docs__like(w, key, b, mid);
    else if (strcmp(key, "comment.created") == 0 || strcmp(key, "comment.deleted") == 0)
        rc = docs__comment(w, key, b, mid);
    else if (strcmp(key, "follow.created") == 0 || strcmp(key, "follow.deleted") == 0)
        rc = docs__follow(w, key, b, mid);
    else if (strcmp(key, "block.created") == 0 || strcmp(key, "block.deleted") == 0)
        rc = docs__block(w, key, b);
    cJSON_Delete(b);
    if (rc == 1) {
        log_warn(msg->request_id, "%s %s is not an event search understands: dead-lettered", key[0] ? key : "-",
                 mid != NULL ? mid : "-");
        return MQ_DEAD;
    }
    return rc == 0 ? MQ_ACK : MQ_RETRY;
}

int docs_purge(search_t *s)
{
    int64_t before = core_wall_ms() - s->conf->purge_after_ms;
    static const char *const colls[] = {"posts", "users"};
    int rc = 0;
    for (size_t i = 0; i < CORE_ARRAY_SIZE(colls); i++) {
        bson_t *f = BCON_NEW("gone", "{", "$gt", BCON_INT64(0), "$lt", BCON_INT64(before), "}");
        if (db_delete_many(s->db, colls[i], f) < 0)
            rc = -1;
        bson_destroy(f);
    }
    bson_t *f = BCON_NEW("on", BCON_BOOL(0), "v", "{", "$lt", BCON_INT64(before), "}");
    if (db_delete_many(s->db, "blocks", f) < 0)
        rc = -1;
    bson_destroy(f);
    return rc;
}
