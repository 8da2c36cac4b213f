/* comments.c -- comments with one level of replies: list in thread order, create, read, edit,
 * delete (with the replies of a top-level comment). */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "log/log.h"
#include "pub.h"

static const rpc_field_t comments__text_field = {"text", 1, 0, 1, PUB_COMMENT_MAX, 0};

/* ================================================================ store */

static int comments__load(pub_t *p, const char *id, bson_t *out)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_find_one(p->db, "comments", f, NULL, out);
    bson_destroy(f);
    return rc;
}

/* The Comment JSON for caller; NULL with *err as posts_json. */
static cJSON *comments__json(pub_t *p, pub_authors_t *authors, const bson_t *c, const char *caller, int *err)
{
    *err = 0;
    const char *id = db_doc_str(c, "_id"), *author_id = db_doc_str(c, "author_id");
    const cJSON *author = author_id != NULL ? users_authors_get(authors, author_id, err) : NULL;
    if (author == NULL)
        return NULL;
    long likes, unused;
    int liked = caller != NULL ? likes_has(p, id, caller) : 0;
    if (liked < 0 || counts_get(p, id, &likes, &unused) != 0) {
        *err = 1;
        return NULL;
    }
    const char *reply_to = db_doc_str(c, "reply_to");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "post_id", db_doc_str(c, "post_id"));
    cJSON_AddItemToObject(o, "author", cJSON_Duplicate(author, 1));
    cJSON_AddStringToObject(o, "text", db_doc_str(c, "text"));
    if (reply_to != NULL)
        cJSON_AddStringToObject(o, "reply_to", reply_to);
    else
        cJSON_AddNullToObject(o, "reply_to");
    cJSON_AddNumberToObject(o, "like_count", (double)likes);
    cJSON_AddBoolToObject(o, "liked_by_me", liked == 1);
    json_add_time(o, "created_at", db_doc_ms(c, "created_at"));
    int64_t edited = db_doc_ms(c, "edited_at");
    if (edited > 0)
        json_add_time(o, "edited_at", edited);
    else
        cJSON_AddNullToObject(o, "edited_at");
    return o;
}

static void comments__answer(pub_t *p, const mq_message_t *req, mq_reply_t *r, const bson_t *c, int status)
{
    pub_authors_t *authors = users_authors_new(p);
    int err;
    cJSON *o = comments__json(p, authors, c, req->user_id, &err);
    users_authors_free(authors);
    if (o == NULL) {
        if (err)
            rpc_db_error(r);
        else
            rpc_not_found(r, "no such comment");
        return;
    }
    if (status == 201)
        r->headers_json = xasprintf("{\"location\":\"/v1/comments/%s\"}", db_doc_str(c, "_id"));
    rpc_json(r, status, o);
}

int comments_visible(pub_t *p, const mq_message_t *req, mq_reply_t *r, bson_t *c, bson_t *post)
{
    char id[64];
    int rc = 0;
    if (rpc_param(req, "id", id, sizeof(id)) == 0 && pub_id_valid(id))
        rc = comments__load(p, id, c);
    if (rc == 1)
        rc = posts_load(p, db_doc_str(c, "post_id"), post);
    if (rc == 1) {
        int h = users_hidden(p, req->user_id, db_doc_str(post, "author_id"));
        if (h == 0)
            h = users_hidden(p, req->user_id, db_doc_str(c, "author_id"));
        rc = h < 0 ? -1 : h ? 0 : 1;
    }
    if (rc < 0)
        rpc_db_error(r);
    else if (rc == 0)
        rpc_not_found(r, "no such comment");
    return rc;
}

/* ================================================================ list */

static cJSON *comments__render(const bson_t *doc, void *ud, int *err)
{
    lists_ctx_t *l = ud;
    return comments__json(l->p, l->authors, doc, l->caller, err);
}

void comments_list(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    char after[128];
    long limit;
    bson_t post = BSON_INITIALIZER;
    if (lists_page_args(p, req, r, "comments", &limit, after, sizeof(after)) == 0 &&
        posts_visible(p, req, r, &post) == 1) {
        bson_t *f = BCON_NEW("post_id", BCON_UTF8(db_doc_str(&post, "_id")));
        /* thread order: "order" is the top-level id, then "." and the reply's id */
        lists_walk_t w = {
            .coll = "comments",
            .filter = f,
            .key = "order",
            .after = after,
            .limit = limit,
            .owner = "author_id",
            .render = comments__render,
        };
        lists_answer(p, req, r, "comments", &w);
        bson_destroy(f);
    }
    bson_destroy(&post);
}

/* ================================================================ create */

/* The text of body checked into errors: 1..1,000 characters, not only white space. */
static void comments__check_text(const cJSON *body, const rpc_field_t *fields, size_t n, cJSON *errors)
{
    rpc_fields_check(body, fields, n, errors);
    const char *text = rpc_field_str(body, "text");
    if (text != NULL && !cJSON_HasObjectItem(errors, "text") && !text_has_content(text))
        cJSON_AddStringToObject(errors, "text", "must not be blank");
}

/* 0 if post_id and the thread root (may be NULL) are still there, 1 if the post is gone, 2 if the
 * root is, -1 on a database error. */
static int comments__parent_gone(pub_t *p, const char *post_id, const char *root)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(post_id));
    int rc = db_exists(p->db, "posts", f);
    bson_destroy(f);
    if (rc != 1 || root == NULL)
        return rc < 0 ? -1 : rc == 0 ? 1 : 0;
    f = BCON_NEW("_id", BCON_UTF8(root));
    rc = db_exists(p->db, "comments", f);
    bson_destroy(f);
    return rc < 0 ? -1 : rc == 0 ? 2 : 0;
}

void comments_create(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    const rpc_field_t fields[] = {comments__text_field, {"reply_to", 0, 1, 1, 64, 0}};
    bson_t post = BSON_INITIALIZER, parent = BSON_INITIALIZER;
    bson_t *doc = NULL;
    cJSON *author = NULL, *errors = cJSON_CreateObject();
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        goto out;
    comments__check_text(body, fields, CORE_ARRAY_SIZE(fields), errors);
    if (rpc_invalid_fields(r, &errors) || users_caller(p, req, r, &author) != 1 ||
        posts_visible(p, req, r, &post) != 1)
        goto out;
    const char *post_id = db_doc_str(&post, "_id"), *post_author = db_doc_str(&post, "author_id");
    const char *reply_to = rpc_field_str(body, "reply_to"), *root = NULL, *parent_author = NULL;
    if (reply_to != NULL) {
        int rc = pub_id_valid(reply_to) ? comments__load(p, reply_to, &parent) : 0;
        if (rc < 0) {
            rpc_db_error(r);
            goto out;
        }
        /* a comment hidden from the caller by a block is as good as unknown */
        int hidden = rc == 1 ? users_hidden(p, req->user_id, db_doc_str(&parent, "author_id")) : 0;
        if (hidden < 0) {
            rpc_db_error(r);
            goto out;
        }
        if (rc == 0 || hidden || strcmp(db_doc_str(&parent, "post_id"), post_id) != 0) {
            rpc_invalid(r, "reply_to", "must be the id of a comment of this post");
            goto out;
        }
        /* one level of replies: a reply to a reply joins its top-level comment's thread */
        root = db_doc_str(&parent, "reply_to");
        if (root == NULL)
            root = reply_to;
        parent_author = db_doc_str(&parent, "author_id");
    }
    char id[25];
    db_new_id(id);
    char *order = root != NULL ? xasprintf("%s.%s", root, id) : xstrdup(id);
    const char *text = rpc_field_str(body, "text");
    int64_t now = core_wall_ms();
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "comment_id", id);
    cJSON_AddStringToObject(ev, "post_id", post_id);
    cJSON_AddStringToObject(ev, "post_author_id", post_author);
    cJSON_AddStringToObject(ev, "author_id", req->user_id);
    cJSON_AddStringToObject(ev, "author_username", rpc_field_str(author, "username"));
    cJSON_AddStringToObject(ev, "text", text);
    if (root != NULL) {
        cJSON_AddStringToObject(ev, "reply_to", root);
        cJSON_AddStringToObject(ev, "reply_to_author_id", parent_author);
    } else {
        cJSON_AddNullToObject(ev, "reply_to");
        cJSON_AddNullToObject(ev, "reply_to_author_id");
    }
    json_add_time(ev, "created_at", now);
    char ob[37];
    int rc = outbox_begin(p->outbox, "comment.created", ev, id, post_id, req->request_id, ob);
    cJSON_Delete(ev);
    if (rc != 0) {
        free(order);
        rpc_db_error(r);
        goto out;
    }
    doc = BCON_NEW("_id", BCON_UTF8(id), "post_id", BCON_UTF8(post_id), "author_id", BCON_UTF8(req->user_id),
                   "text", BCON_UTF8(text), "order", BCON_UTF8(order), "created_at", BCON_DATE_TIME(now));
    free(order);
    if (root != NULL)
        BSON_APPEND_UTF8(doc, "reply_to", root);
    else
        BSON_APPEND_NULL(doc, "reply_to");
    BSON_APPEND_NULL(doc, "edited_at");
    if (db_insert(p->db, "comments", doc) != 0) {
        outbox_abort(p->outbox, ob);
        rpc_db_error(r);
        goto out;
    }
    /* The post (or the thread) may have been deleted since it was read, its cascade done before
     * this comment was there to take: then the comment goes too. A deletion that begins after
     * this check finds the comment in its cascade. */
    int gone = comments__parent_gone(p, post_id, root);
    if (gone != 0) {
        bson_t *g = BCON_NEW("_id", BCON_UTF8(id));
        int undone = db_delete_one(p->db, "comments", g);
        bson_destroy(g);
        if (gone < 0 || undone < 0) {
            rpc_db_error(r); /* the event stays pending: recovery looks for the comment */
            goto out;
        }
        outbox_abort(p->outbox, ob);
        if (gone == 2) { /* the post stays: its count may have seen the reply */
            counts_sync(p, post_id, 1);
            rpc_invalid(r, "reply_to", "must be the id of a comment of this post");
        } else {
            rpc_not_found(r, "no such post");
        }
        goto out;
    }
    /* a failed count leaves the event pending: recovery counts again before it publishes */
    if (counts_sync(p, post_id, 1) == 0)
        outbox_commit(p->outbox, ob);
    comments__answer(p, req, r, doc, 201);
out:
    bson_destroy(doc);
    bson_destroy(&post);
    bson_destroy(&parent);
    cJSON_Delete(author);
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

/* ================================================================ read, edit, delete */

void comments_get(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    bson_t c = BSON_INITIALIZER, post = BSON_INITIALIZER;
    if (comments_visible(p, req, r, &c, &post) == 1)
        comments__answer(p, req, r, &c, 200);
    bson_destroy(&c);
    bson_destroy(&post);
}

void comments_update(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    const rpc_field_t fields[] = {comments__text_field};
    bson_t c = BSON_INITIALIZER, post = BSON_INITIALIZER, fresh = BSON_INITIALIZER;
    cJSON *errors = cJSON_CreateObject();
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        goto out;
    comments__check_text(body, fields, CORE_ARRAY_SIZE(fields), errors);
    if (rpc_invalid_fields(r, &errors) || users_caller(p, req, r, NULL) != 1 ||
        comments_visible(p, req, r, &c, &post) != 1)
        goto out;
    if (strcmp(db_doc_str(&c, "author_id"), req->user_id) != 0) {
        rpc_problem(r, 403, "forbidden", "only its author edits a comment", NULL);
        goto out;
    }
    const char *id = db_doc_str(&c, "_id");
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *u = BCON_NEW("$set", "{", "text", BCON_UTF8(rpc_field_str(body, "text")), "edited_at",
                         BCON_DATE_TIME(core_wall_ms()), "}");
    int rc = db_update_one(p->db, "comments", f, u, 0);
    bson_destroy(f);
    bson_destroy(u);
    if (rc == 1)
        rc = comments__load(p, id, &fresh);
    if (rc < 0)
        rpc_db_error(r);
    else if (rc == 0)
        rpc_not_found(r, "no such comment");
    else
        comments__answer(p, req, r, &fresh, 200);
out:
    bson_destroy(&c);
    bson_destroy(&post);
    bson_destroy(&fresh);
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

static int comments__collect_id(const bson_t *doc, void *ud)
{
    const char *id = db_doc_str(doc, "_id");
    if (id != NULL)
        cJSON_AddItemToArray(ud, cJSON_CreateString(id));
    return 0;
}

/* The ids of the replies of comment_id into ids. 0 or -1. */
static int comments__replies(pub_t *p, const char *comment_id, cJSON *ids)
{
    bson_t *f = BCON_NEW("reply_to", BCON_UTF8(comment_id));
    long n = db_each(p->db, "comments", f, NULL, comments__collect_id, ids);
    bson_destroy(f);
    return n < 0 ? -1 : 0;
}

int comments_cascade(pub_t *p, const char *comment_id, const char *post_id, cJSON *reply_ids)
{
    cJSON *ids = cJSON_CreateArray();
    int rc = comments__replies(p, comment_id, ids);
    const cJSON *it;
    cJSON_ArrayForEach(it, ids)
    {
        if (rc != 0)
            break;
        bson_t *g = BCON_NEW("_id", BCON_UTF8(it->valuestring));
        rc = likes_delete_of(p, it->valuestring) == 0 && db_delete_one(p->db, "counts", g) >= 0 &&
                     db_delete_one(p->db, "comments", g) >= 0
                 ? 0
                 : -1;
        bson_destroy(g);
        if (rc == 0 && reply_ids != NULL)
            cJSON_AddItemToArray(reply_ids, cJSON_CreateString(it->valuestring));
    }
    cJSON_Delete(ids);
    bson_t *g = BCON_NEW("_id", BCON_UTF8(comment_id));
    if (rc == 0)
        rc = likes_delete_of(p, comment_id) == 0 && db_delete_one(p->db, "counts", g) >= 0 ? 0 : -1;
    bson_destroy(g);
    return rc == 0 ? counts_sync(p, post_id, 1) : -1;
}

/* Deletes comment c with the replies and likes that go with it, and publishes comment.deleted.
 * 1 deleted, 0 it was not there, -1. */
static int comments__delete(pub_t *p, const bson_t *c, const char *post_author, const char *request_id)
{
    const char *id = db_doc_str(c, "_id"), *post_id = db_doc_str(c, "post_id");
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "comment_id", id);
    cJSON_AddStringToObject(ev, "post_id", post_id);
    cJSON_AddStringToObject(ev, "post_author_id", post_author);
    cJSON_AddStringToObject(ev, "author_id", db_doc_str(c, "author_id"));
    cJSON *replies = cJSON_AddArrayToObject(ev, "reply_ids");
    json_add_time(ev, "deleted_at", core_wall_ms());
    if (comments__replies(p, id, replies) != 0) {
        cJSON_Delete(ev);
        return -1;
    }
    char ob[37];
    int rc = outbox_begin(p->outbox, "comment.deleted", ev, id, post_id, request_id, ob);
    cJSON_Delete(ev);
    if (rc != 0)
        return -1;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    rc = db_delete_one(p->db, "comments", f);
    bson_destroy(f);
    if (rc == 0) {
        outbox_abort(p->outbox, ob);
        return 0;
    }
    /* the comment is gone: on a failure below, recovery finishes the cascade, then publishes */
    if (rc < 0 || comments_cascade(p, id, post_id, NULL) != 0)
        return -1;
    outbox_commit(p->outbox, ob);
    return 1;
}

void comments_remove(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    bson_t c = BSON_INITIALIZER, post = BSON_INITIALIZER;
    if (users_caller(p, req, r, NULL) != 1 || comments_visible(p, req, r, &c, &post) != 1)
        goto out;
    const char *post_author = db_doc_str(&post, "author_id");
    if (strcmp(db_doc_str(&c, "author_id"), req->user_id) != 0 && strcmp(post_author, req->user_id) != 0) {
        rpc_problem(r, 403, "forbidden", "only its author or the post's author deletes a comment", NULL);
        goto out;
    }
    if (comments__delete(p, &c, post_author, req->request_id) < 0)
        rpc_db_error(r);
    else
        rpc_no_content(r);
out:
    bson_destroy(&c);
    bson_destroy(&post);
}

/* ================================================================ a deleted account */

static int comments__collect(const bson_t *doc, void *ud)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", db_doc_str(doc, "_id"));
    cJSON_AddStringToObject(o, "target", db_doc_str(doc, "target") != NULL ? db_doc_str(doc, "target") : "");
    cJSON_AddStringToObject(o, "post_id", db_doc_str(doc, "post_id") != NULL ? db_doc_str(doc, "post_id") : "");
    cJSON_AddBoolToObject(o, "is_post", db_doc_str(doc, "kind") != NULL && strcmp(db_doc_str(doc, "kind"), "post") == 0);
    cJSON_AddItemToArray(ud, o);
    return 0;
}

int comments_likes_of_user_gone(pub_t *p, const char *user_id)
{
    /* likes: delete them, then recount what they counted in */
    cJSON *likes = cJSON_CreateArray(), *comments = cJSON_CreateArray();
    bson_t *f = BCON_NEW("user_id", BCON_UTF8(user_id));
    int rc = db_each(p->db, "likes", f, NULL, comments__collect, likes) < 0 ? -1 : 0;
    if (rc == 0)
        rc = db_delete_many(p->db, "likes", f) < 0 ? -1 : 0;
    bson_destroy(f);
    const cJSON *it;
    cJSON_ArrayForEach(it, likes)
    {
        if (rc == 0)
            rc = counts_sync(p, rpc_field_str(it, "target"), cJSON_IsTrue(cJSON_GetObjectItem(it, "is_post")));
    }
    /* comments: each with what goes with it */
    f = BCON_NEW("author_id", BCON_UTF8(user_id));
    if (rc == 0)
        rc = db_each(p->db, "comments", f, NULL, comments__collect, comments) < 0 ? -1 : 0;
    bson_destroy(f);
    cJSON_ArrayForEach(it, comments)
    {
        if (rc != 0)
            break;
        const char *id = rpc_field_str(it, "id");
        bson_t *g = BCON_NEW("_id", BCON_UTF8(id));
        rc = db_delete_one(p->db, "comments", g) < 0 ? -1 : comments_cascade(p, id, rpc_field_str(it, "post_id"), NULL);
        bson_destroy(g);
    }
    cJSON_Delete(likes);
    cJSON_Delete(comments);
    return rc;
}
