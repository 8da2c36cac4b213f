/* docs.c -- search's documents in MongoDB, kept from events idempotently, and the sync message
 * that tells every copy's index which document changed.
 *
 * Every write reads the document by _id, decides, and writes it by _id (FerretDB answers nothing
 * else from an index). Versions (the event's time) make late or repeated events harmless; counts
 * are sizes of sets of members (see counters). Writes of one document are serialised in this
 * process (docs__lock); two copies racing on one document can still interleave, which only an
 * older event arriving at the same millisecond as a newer one could turn into a stale value. */
#include <string.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "search.h"

#define DOCS__STRIPES 64

static pthread_mutex_t docs__stripes[DOCS__STRIPES] = {
    [0 ... DOCS__STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER,
};

static pthread_mutex_t *docs__lock(const char *coll, const char *id)
{
    pthread_mutex_t *m = &docs__stripes[search_hash(search_hash(SEARCH_HASH_INIT, coll), id) % DOCS__STRIPES];
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

/* ================================================================ counters
 *
 * A count (a post's likes and comments, an account's followers) is the number of members of a set
 * kept in the collection edges: who liked the post, which comments it has, who follows the
 * account. Each member holds the time of its last change, positive while it is in and negative
 * once it left, so a repeated or late event changes nothing. A set is spread over
 * DOCS__BUCKETS documents ("<kind>:<target>:<bucket>", {m: {member: ±ms}, n: members in}) so
 * that no document grows with a popular post; each change updates one of them (member and n in
 * one atomic update), then the sum of their n is written into the counted document. */

#define DOCS__BUCKETS 16

typedef struct {
    int64_t sum;
} docs__sum_t;

static int docs__sum_one(const bson_t *doc, void *ud)
{
    ((docs__sum_t *)ud)->sum += db_doc_int(doc, "n");
    return 0;
}

typedef struct {
    char **ids;
    size_t n;
} docs__members_t;

static int docs__members_one(const bson_t *doc, void *ud)
{
    docs__members_t *out = ud;
    bson_iter_t it, m;
    if (bson_iter_init_find(&it, doc, "m") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &m)) {
        while (bson_iter_next(&m)) {
            if (!BSON_ITER_HOLDS_INT64(&m) || bson_iter_int64(&m) <= 0)
                continue;
            out->ids = xrealloc(out->ids, (out->n + 1) * sizeof(*out->ids));
            out->ids[out->n++] = xstrdup(bson_iter_key(&m));
        }
    }
    return 0;
}

static void docs__members_free(docs__members_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->ids[i]);
    free(m->ids);
}

/* The members in kind's set of target now. 0 or -1. */
static int docs__members(search_t *s, const char *kind, const char *target, docs__members_t *out)
{
    char *ids[DOCS__BUCKETS];
    for (unsigned b = 0; b < DOCS__BUCKETS; b++)
        ids[b] = xasprintf("%s:%s:%u", kind, target, b);
    int rc = db_find_ids(s->db, "edges", (const char *const *)ids, DOCS__BUCKETS, docs__members_one, out) < 0 ? -1 : 0;
    for (unsigned b = 0; b < DOCS__BUCKETS; b++)
        free(ids[b]);
    return rc;
}

/* Puts each of members (n of them; ids without '.' or a leading '$') in kind's set of target
 * (on) or takes it out, as of time v; then (coll not NULL) writes the size of the set into field
 * of coll's document target, unless that one is gone. 0, 1 (a member that cannot be a field name)
 * or -1. */
static int docs__edges(search_t *s, const char *kind, const char *target, const char *const *members, size_t n,
                       int on, int64_t v, const char *coll, const char *field)
{
    for (size_t i = 0; i < n; i++)
        if (members[i][0] == '\0' || members[i][0] == '$' || strchr(members[i], '.') != NULL ||
            strlen(members[i]) > 64)
            return 1;
    char key[160], *ids[DOCS__BUCKETS];
    int rc = 0;
    pthread_mutex_t *m = docs__lock(kind, target); /* one writer of a target's sets and count here */
    for (size_t i = 0; i < n && rc == 0; i++) {
        snprintf(key, sizeof(key), "%s:%s:%u", kind, target,
                 search_hash(SEARCH_HASH_INIT, members[i]) % DOCS__BUCKETS);
        bson_t doc;
        bson_iter_t it;
        if ((rc = docs__get(s, "edges", key, &doc)) >= 0) {
            rc = 0;
            char path[96];
            snprintf(path, sizeof(path), "m.%s", members[i]);
            int64_t cur = bson_iter_init(&it, &doc) && bson_iter_find_descendant(&it, path, &it) &&
                                  BSON_ITER_HOLDS_INT64(&it)
                              ? bson_iter_int64(&it)
                              : 0;
            int64_t was = cur < 0 ? -cur : cur;
            /* newer wins; at the same millisecond the removal does (it came second) */
            if (v > was || (v == was && !on && cur > 0)) {
                int flip = (cur > 0) != on;
                bson_t *u = BCON_NEW("$set", "{", path, BCON_INT64(on ? v : -v), "}", "$inc", "{", "n",
                                     BCON_INT64(flip ? (on ? 1 : -1) : 0), "}");
                rc = docs__update(s, "edges", key, u);
                bson_destroy(u);
            }
        }
        bson_destroy(&doc);
    }
    if (rc == 0 && coll != NULL) { /* the count, from every bucket (again after a repeated event: it may not be
                                      written yet) */
        for (unsigned b = 0; b < DOCS__BUCKETS; b++)
            ids[b] = xasprintf("%s:%s:%u", kind, target, b);
        docs__sum_t sum = {0};
        rc = db_find_ids(s->db, "edges", (const char *const *)ids, DOCS__BUCKETS, docs__sum_one, &sum) < 0 ? -1 : 0;
        for (unsigned b = 0; b < DOCS__BUCKETS; b++)
            free(ids[b]);
        bson_t doc = BSON_INITIALIZER;
        if (rc == 0 && (rc = docs__get(s, coll, target, &doc)) >= 0) {
            rc = 0;
            if (db_doc_int(&doc, "gone") == 0) {
                bson_t *u = BCON_NEW("$set", "{", field, BCON_INT64(sum.sum), "}");
                rc = docs__update(s, coll, target, u);
                bson_destroy(u);
            }
        }
        bson_destroy(&doc);
    }
    pthread_mutex_unlock(m);
    return rc;
}

/* ================================================================ users */

/* follower follows followee (on) or no longer, as of v; the followee's count and index follow. */
static int docs__follow_set(search_worker_t *w, const char *follower, const char *followee, int on, int64_t v)
{
    /* and whom the follower follows, for when that account is deleted or blocks */
    int rc = docs__edges(w->s, "following", follower, &followee, 1, on, v, NULL, NULL);
    if (rc == 0)
        rc = docs__edges(w->s, "followers", followee, &follower, 1, on, v, "users", "f");
    return rc != 0 ? rc : docs__sync(w, "user", followee);
}

/* A deleted account's likes, comments and follows leave the counts they were in (no like.deleted,
 * comment.deleted or follow.deleted is published for them). 0 or -1. */
static int docs__forget(search_worker_t *w, const char *uid, int64_t v)
{
    static const char *const kinds[] = {"liked", "commented", "following"};
    int rc = 0;
    for (size_t k = 0; k < CORE_ARRAY_SIZE(kinds) && rc == 0; k++) {
        docs__members_t m = {0};
        rc = docs__members(w->s, kinds[k], uid, &m);
        for (size_t i = 0; i < m.n && rc == 0; i++) {
            const char *target = m.ids[i];
            if (k == 2) {
                rc = docs__follow_set(w, uid, target, 0, v);
                continue;
            }
            char *post = xstrdup(target), *comment = strchr(post, ':');
            if (k == 1 && comment != NULL)
                *comment++ = '\0';
            const char *member = k == 0 ? uid : comment;
            if (member != NULL)
                rc = docs__edges(w->s, k == 0 ? "likes" : "comments", post, &member, 1, 0, v, "posts",
                                 k == 0 ? "l" : "k");
            if (rc == 0 && member != NULL)
                rc = docs__sync(w, "post", post) != 0 ? -1 : 0;
            free(post);
        }
        docs__members_free(&m);
    }
    return rc < 0 ? -1 : 0;
}

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
                         BCON_INT32(1), "f", BCON_INT32(1), "v", BCON_INT32(1), "}");
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
        if (rc == 0)
            rc = docs__forget(w, uid, v);
    }
    return rc < 0 || docs__sync(w, "user", uid) != 0 ? -1 : 0;
}

static int docs__follow(search_worker_t *w, const char *key, const cJSON *b)
{
    const char *follower = rpc_field_str(b, "follower_id"), *followee = rpc_field_str(b, "followee_id");
    int on = strcmp(key, "follow.created") == 0;
    int64_t v = json_time_ms(rpc_field_str(b, on ? "created_at" : "deleted_at"));
    if (follower == NULL || followee == NULL || v < 0 || strlen(followee) > 64)
        return 1;
    return docs__follow_set(w, follower, followee, on, v);
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
    /* a block ends the follows both ways (no follow.deleted is published for them) */
    if (rc == 0 && on && (docs__follow_set(w, blocker, blocked, 0, v) != 0 || docs__follow_set(w, blocked, blocker, 0, v) != 0))
        rc = -1;
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
    if (!deleted && (caption == NULL || (created && username == NULL) || (tags = docs__tags(b)) == NULL))
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
        static const char *const fields[] = {"a", "u", "c", "t", "th", "at", "e", "v", "l", "k"};
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

static int docs__like(search_worker_t *w, const char *key, const cJSON *b)
{
    const char *type = rpc_field_str(b, "target_type"), *post = rpc_field_str(b, "post_id");
    const char *user = rpc_field_str(b, "user_id");
    int on = strcmp(key, "like.created") == 0;
    int64_t v = json_time_ms(rpc_field_str(b, on ? "created_at" : "deleted_at"));
    if (type == NULL || post == NULL || user == NULL || v < 0 || strlen(post) > 64)
        return 1;
    if (strcmp(type, "post") != 0)
        return 0; /* a comment's likes weigh nothing here */
    /* and what the user liked, for when the account is deleted */
    int rc = docs__edges(w->s, "liked", user, &post, 1, on, v, NULL, NULL);
    if (rc == 0)
        rc = docs__edges(w->s, "likes", post, &user, 1, on, v, "posts", "l");
    return rc != 0 ? rc : docs__sync(w, "post", post);
}

static int docs__comment(search_worker_t *w, const char *key, const cJSON *b)
{
    const char *post = rpc_field_str(b, "post_id"), *comment = rpc_field_str(b, "comment_id");
    int on = strcmp(key, "comment.created") == 0;
    int64_t v = json_time_ms(rpc_field_str(b, on ? "created_at" : "deleted_at"));
    if (post == NULL || comment == NULL || v < 0 || strlen(post) > 64)
        return 1;
    /* a deleted comment takes its replies with it, as publication counts them */
    const cJSON *replies = on ? NULL : cJSON_GetObjectItemCaseSensitive(b, "reply_ids"), *r;
    if (!on && !cJSON_IsArray(replies))
        return 1;
    const char **members = xmalloc((1 + (size_t)cJSON_GetArraySize(replies)) * sizeof(*members));
    size_t n = 0;
    members[n++] = comment;
    cJSON_ArrayForEach(r, replies)
    {
        if (!cJSON_IsString(r)) {
            free(members);
            return 1;
        }
        members[n++] = r->valuestring;
    }
    int rc = 0;
    const char *author = rpc_field_str(b, "author_id");
    if (author != NULL && strlen(author) <= 64) { /* and what the author wrote, for when the account is deleted */
        char *mine = xasprintf("%s:%s", post, comment);
        rc = docs__edges(w->s, "commented", author, (const char *const *)&mine, 1, on, v, NULL, NULL);
        free(mine);
    }
    if (rc == 0)
        rc = docs__edges(w->s, "comments", post, members, n, on, v, "posts", "k");
    free(members);
    return rc != 0 ? rc : docs__sync(w, "post", post);
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
    if (b == NULL)
        rc = 1;
    else if (strcmp(key, "user.registered") == 0 || strcmp(key, "user.updated") == 0 ||
             strcmp(key, "user.deleted") == 0)
        rc = docs__user(w, key, b);
    else if (strcmp(key, "post.created") == 0 || strcmp(key, "post.updated") == 0 ||
             strcmp(key, "post.deleted") == 0)
        rc = docs__post(w, key, b);
    else if (strcmp(key, "like.created") == 0 || strcmp(key, "like.deleted") == 0)
        rc = docs__like(w, key, b);
    else if (strcmp(key, "comment.created") == 0 || strcmp(key, "comment.deleted") == 0)
        rc = docs__comment(w, key, b);
    else if (strcmp(key, "follow.created") == 0 || strcmp(key, "follow.deleted") == 0)
        rc = docs__follow(w, key, b);
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
