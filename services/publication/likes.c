/* likes.c -- likes of posts and comments (idempotent, exact counts) and the likers of a post. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "log/log.h"
#include "pub.h"

int likes_has(pub_t *p, const char *target, const char *user_id)
{
    char *id = xasprintf("%s:%s", target, user_id);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_exists(p->db, "likes", f);
    bson_destroy(f);
    free(id);
    return rc;
}

int likes_delete_of(pub_t *p, const char *target)
{
    bson_t *f = BCON_NEW("target", BCON_UTF8(target));
    long n = db_delete_many(p->db, "likes", f);
    bson_destroy(f);
    return n < 0 ? -1 : 0;
}

/* What a like is about: a post, or a comment of a post. */
typedef struct {
    int is_post;
    const char *target, *post_id, *recipient; /* borrowed from the loaded documents */
    bson_t post, comment;
} likes__target_t;

/* Loads the target of the path for the caller (404 when absent or hidden). 1, or answered. */
static int likes__target(pub_t *p, const mq_message_t *req, mq_reply_t *r, int is_post, likes__target_t *t)
{
    t->is_post = is_post;
    bson_init(&t->post);
    bson_init(&t->comment);
    if (is_post) {
        if (posts_visible(p, req, r, &t->post) != 1)
            return 0;
        t->target = t->post_id = db_doc_str(&t->post, "_id");
        t->recipient = db_doc_str(&t->post, "author_id");
    } else {
        if (comments_visible(p, req, r, &t->comment, &t->post) != 1)
            return 0;
        t->target = db_doc_str(&t->comment, "_id");
        t->post_id = db_doc_str(&t->post, "_id");
        t->recipient = db_doc_str(&t->comment, "author_id");
    }
    return 1;
}

/* 1 if the target (or a comment's post) was deleted since it was loaded; a database error counts
 * as not gone (the like stays, like any like a deletion's cascade will take). */
static int likes__target_gone(pub_t *p, const likes__target_t *t)
{
    const char *ids[2] = {t->post_id, t->is_post ? NULL : t->target};
    const char *colls[2] = {"posts", "comments"};
    for (int i = 0; i < 2; i++) {
        if (ids[i] == NULL)
            continue;
        bson_t *f = BCON_NEW("_id", BCON_UTF8(ids[i]));
        int rc = db_exists(p->db, colls[i], f);
        bson_destroy(f);
        if (rc == 0)
            return 1;
    }
    return 0;
}

static void likes__target_free(likes__target_t *t)
{
    bson_destroy(&t->post);
    bson_destroy(&t->comment);
}

/* Answers {liked, like_count}. */
static void likes__answer(pub_t *p, mq_reply_t *r, const char *target, int liked)
{
    long likes, unused;
    if (counts_get(p, target, &likes, &unused) != 0) {
        rpc_db_error(r);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "liked", liked);
    cJSON_AddNumberToObject(o, "like_count", (double)likes);
    rpc_json(r, 200, o);
}

static cJSON *likes__event(const likes__target_t *t, const char *user_id)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "target_type", t->is_post ? "post" : "comment");
    cJSON_AddStringToObject(ev, "target_id", t->target);
    cJSON_AddStringToObject(ev, "post_id", t->post_id);
    cJSON_AddStringToObject(ev, "recipient_id", t->recipient);
    cJSON_AddStringToObject(ev, "user_id", user_id);
    return ev;
}

static void likes__like(pub_t *p, const mq_message_t *req, mq_reply_t *r, int is_post)
{
    likes__target_t t;
    cJSON *me = NULL;
    if (users_caller(p, req, r, &me) != 1)
        return;
    if (likes__target(p, req, r, is_post, &t) != 1)
        goto out;
    int has = likes_has(p, t.target, req->user_id);
    if (has != 0) {
        if (has < 0)
            rpc_db_error(r);
        else
            likes__answer(p, r, t.target, 1);
        goto out;
    }
    char *id = xasprintf("%s:%s", t.target, req->user_id), op[37], ob[37], seq[25];
    core_uuid(op);
    db_new_id(seq);
    int64_t now = core_wall_ms();
    cJSON *ev = likes__event(&t, req->user_id);
    cJSON_AddStringToObject(ev, "username", rpc_field_str(me, "username"));
    json_add_time(ev, "created_at", now);
    int rc = outbox_begin(p->outbox, "like.created", ev, id, op, req->request_id, ob);
    cJSON_Delete(ev);
    if (rc == 0) {
        bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "target", BCON_UTF8(t.target), "kind",
                               BCON_UTF8(is_post ? "post" : "comment"), "post_id", BCON_UTF8(t.post_id),
                               "user_id", BCON_UTF8(req->user_id), "seq", BCON_UTF8(seq), "op", BCON_UTF8(op),
                               "created_at", BCON_DATE_TIME(now));
        rc = db_insert(p->db, "likes", doc);
        bson_destroy(doc);
        if (rc != 0) {
            outbox_abort(p->outbox, ob); /* 1: a concurrent like of the same caller won */
        } else if (likes__target_gone(p, &t)) {
            /* deleted since it was read, its cascade done before this like was there to take */
            bson_t *g = BCON_NEW("_id", BCON_UTF8(id));
            if (db_delete_one(p->db, "likes", g) >= 0)
                outbox_abort(p->outbox, ob);
            bson_destroy(g);
            free(id);
            rpc_not_found(r, is_post ? "no such post" : "no such comment");
            goto out;
        } else if (counts_sync(p, t.target, is_post) == 0) {
            outbox_commit(p->outbox, ob); /* else pending: recovery counts, then publishes */
        }
    }
    free(id);
    if (rc < 0)
        rpc_db_error(r);
    else
        likes__answer(p, r, t.target, 1);
out:
    likes__target_free(&t);
    cJSON_Delete(me);
}

static void likes__unlike(pub_t *p, const mq_message_t *req, mq_reply_t *r, int is_post)
{
    likes__target_t t;
    if (users_caller(p, req, r, NULL) != 1)
        return;
    if (likes__target(p, req, r, is_post, &t) != 1) {
        likes__target_free(&t);
        return;
    }
    char *id = xasprintf("%s:%s", t.target, req->user_id);
    bson_t like = BSON_INITIALIZER;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_find_one(p->db, "likes", f, NULL, &like);
    bson_destroy(f);
    if (rc == 1) {
        /* the like's op names this like (not an earlier or later one) for recovery */
        const char *op = db_doc_str(&like, "op");
        char ob[37];
        cJSON *ev = likes__event(&t, req->user_id);
        json_add_time(ev, "deleted_at", core_wall_ms());
        rc = outbox_begin(p->outbox, "like.deleted", ev, id, op != NULL ? op : "", req->request_id, ob);
        cJSON_Delete(ev);
        if (rc == 0) {
            bson_t *g = BCON_NEW("_id", BCON_UTF8(id)); /* the like just read (by _id only: see README) */
            rc = db_delete_one(p->db, "likes", g);
            bson_destroy(g);
            if (rc == 0)
                outbox_abort(p->outbox, ob); /* a concurrent unlike of the same caller won */
            else if (rc == 1 && counts_sync(p, t.target, is_post) == 0)
                outbox_commit(p->outbox, ob);
        }
    }
    if (rc < 0)
        rpc_db_error(r);
    else
        likes__answer(p, r, t.target, 0);
    bson_destroy(&like);
    free(id);
    likes__target_free(&t);
}

void likes_post_like(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    likes__like(p, req, r, 1);
}

void likes_post_unlike(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    likes__unlike(p, req, r, 1);
}

void likes_comment_like(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    likes__like(p, req, r, 0);
}

void likes_comment_unlike(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    likes__unlike(p, req, r, 0);
}

/* ================================================================ likers */

static cJSON *likes__render(const bson_t *doc, void *ud, int *err)
{
    lists_ctx_t *l = ud;
    const cJSON *a = users_authors_get(l->authors, db_doc_str(doc, "user_id"), err);
    return a != NULL ? cJSON_Duplicate(a, 1) : NULL;
}

void likes_post_likers(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    char after[64];
    long limit;
    bson_t post = BSON_INITIALIZER;
    if (lists_page_args(p, req, r, "likers", &limit, after, sizeof(after)) == 0 &&
        posts_visible(p, req, r, &post) == 1) {
        bson_t *f = BCON_NEW("target", BCON_UTF8(db_doc_str(&post, "_id")));
        lists_walk_t w = {
            .coll = "likes",
            .filter = f,
            .key = "seq", /* an ObjectId made at the like: newest first */
            .descending = 1,
            .after = after,
            .limit = limit,
            .owner = "user_id",
            .render = likes__render,
        };
        lists_answer(p, req, r, "likers", &w);
        bson_destroy(f);
    }
    bson_destroy(&post);
}
