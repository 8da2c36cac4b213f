/* posts.c -- posts: create (media checked with resize-image), read, edit, delete, and the lists
 * of a user's and of a hashtag's posts. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "pub.h"

/* ================================================================ store */

int posts_load(pub_t *p, const char *id, bson_t *out)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_find_one(p->db, "posts", f, NULL, out);
    bson_destroy(f);
    return rc;
}

/* A member of doc holding an array or document, as JSON (caller frees); an empty array when
 * absent. */
static cJSON *posts__member_json(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    cJSON *v = NULL;
    if (bson_iter_init_find(&it, doc, key) && (BSON_ITER_HOLDS_ARRAY(&it) || BSON_ITER_HOLDS_DOCUMENT(&it))) {
        const uint8_t *data;
        uint32_t len;
        bson_t sub;
        int array = BSON_ITER_HOLDS_ARRAY(&it);
        if (array)
            bson_iter_array(&it, &len, &data);
        else
            bson_iter_document(&it, &len, &data);
        if (bson_init_static(&sub, data, len)) {
            size_t n;
            char *text = array ? bson_array_as_json(&sub, &n)
                               : bson_as_relaxed_extended_json(&sub, &n);
            if (text != NULL)
                v = json_parse(text, n, 64 << 20, 64, NULL);
            bson_free(text);
        }
    }
    return v != NULL ? v : cJSON_CreateArray();
}

/* Appends v (an array or object) to doc under key. */
static void posts__append_json(bson_t *doc, const char *key, const cJSON *v)
{
    /* wrapped in an object: libbson parses documents, not bare arrays */
    cJSON *wrap = cJSON_CreateObject();
    cJSON_AddItemReferenceToObject(wrap, "v", (cJSON *)v);
    char *text = json_print(wrap);
    cJSON_Delete(wrap);
    bson_error_t e;
    bson_t *b = bson_new_from_json((const uint8_t *)text, -1, &e);
    CORE_ASSERT(b != NULL); /* our own JSON */
    bson_iter_t it;
    if (bson_iter_init_find(&it, b, "v"))
        bson_append_iter(doc, key, -1, &it);
    bson_destroy(b);
    free(text);
}

/* ================================================================ the Post shape */

/* The stored mentions of post without the accounts deleted since (deleted users vanish). */
static cJSON *posts__live_mentions(pub_authors_t *authors, const bson_t *post, int *err)
{
    cJSON *all = posts__member_json(post, "mentions"), *out = cJSON_CreateArray();
    const cJSON *m;
    cJSON_ArrayForEach(m, all)
    {
        const char *id = rpc_field_str(m, "id");
        if (id != NULL && users_authors_get(authors, id, err) != NULL)
            cJSON_AddItemToArray(out, cJSON_Duplicate(m, 1));
    }
    cJSON_Delete(all);
    return out;
}

cJSON *posts_json(pub_t *p, pub_authors_t *authors, const bson_t *post, const char *caller, int *err)
{
    *err = 0;
    const char *id = db_doc_str(post, "_id"), *author_id = db_doc_str(post, "author_id");
    const cJSON *author = author_id != NULL ? users_authors_get(authors, author_id, err) : NULL;
    if (author == NULL)
        return NULL;
    long likes, comments;
    int liked = caller != NULL ? likes_has(p, id, caller) : 0;
    if (liked < 0 || counts_get(p, id, &likes, &comments) != 0) {
        *err = 1;
        return NULL;
    }
    const char *caption = db_doc_str(post, "caption");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddItemToObject(o, "author", cJSON_Duplicate(author, 1));
    cJSON_AddStringToObject(o, "caption", caption != NULL ? caption : "");
    cJSON_AddItemToObject(o, "media", posts__member_json(post, "media"));
    cJSON_AddItemToObject(o, "tags", posts__member_json(post, "tags"));
    cJSON_AddItemToObject(o, "mentions", posts__live_mentions(authors, post, err));
    if (*err) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddNumberToObject(o, "like_count", (double)likes);
    cJSON_AddNumberToObject(o, "comment_count", (double)comments);
    cJSON_AddBoolToObject(o, "liked_by_me", liked == 1);
    json_add_time(o, "created_at", db_doc_ms(post, "created_at"));
    int64_t edited = db_doc_ms(post, "edited_at");
    if (edited > 0)
        json_add_time(o, "edited_at", edited);
    else
        cJSON_AddNullToObject(o, "edited_at");
    return o;
}

/* Answers 200 (or status) with the post as the caller sees it. */
static void posts__answer(pub_t *p, const mq_message_t *req, mq_reply_t *r, const bson_t *post, int status)
{
    pub_authors_t *authors = users_authors_new(p);
    int err;
    cJSON *o = posts_json(p, authors, post, req->user_id, &err);
    users_authors_free(authors);
    if (o == NULL) {
        if (err)
            rpc_db_error(r);
        else
            rpc_not_found(r, "no such post");
        return;
    }
    if (status == 201)
        r->headers_json = xasprintf("{\"location\":\"/v1/posts/%s\"}", db_doc_str(post, "_id"));
    rpc_json(r, status, o);
}

int posts_visible(pub_t *p, const mq_message_t *req, mq_reply_t *r, bson_t *out)
{
    char id[64];
    int rc = 0;
    if (rpc_param(req, "id", id, sizeof(id)) == 0 && pub_id_valid(id))
        rc = posts_load(p, id, out);
    if (rc == 1) {
        int h = users_hidden(p, req->user_id, db_doc_str(out, "author_id"));
        rc = h < 0 ? -1 : h ? 0 : 1;
    }
    if (rc < 0)
        rpc_db_error(r);
    else if (rc == 0)
        rpc_not_found(r, "no such post");
    return rc;
}

/* ================================================================ caption */

/* Tags and mentions of caption into *tags and *mentions ([{id, username}] of users that exist).
 * 0 or -1 (database error). */
static int posts__parse(pub_t *p, const char *caption, cJSON **tags, cJSON **mentions)
{
    *tags = text_hashtags(caption);
    *mentions = cJSON_CreateArray();
    cJSON *names = text_mentions(caption);
    const cJSON *it;
    int rc = 0;
    cJSON_ArrayForEach(it, names)
    {
        char uid[64];
        int found = users_by_name(p, it->valuestring, uid);
        if (found < 0) {
            rc = -1;
            break;
        }
        if (found == 1) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "id", uid);
            cJSON_AddStringToObject(m, "username", it->valuestring);
            cJSON_AddItemToArray(*mentions, m);
        }
    }
    cJSON_Delete(names);
    return rc;
}

/* ================================================================ create */

cJSON *posts_media(pub_t *p, const mq_message_t *req, mq_reply_t *r, const cJSON *media_ids, const char *field)
{
    cJSON *body = cJSON_CreateObject(), *reply = NULL, *out = NULL;
    cJSON_AddItemToObject(body, "ids", cJSON_Duplicate(media_ids, 1));
    int status = pub_rpc(p, "resize-image", "media.get", body, req->request_id, &reply);
    cJSON_Delete(body);
    if (status != 200) {
        rpc_unavailable(r, "service-unavailable", "media cannot be checked now; try again");
        goto out;
    }
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(reply, "items");
    out = cJSON_CreateArray();
    const cJSON *want;
    cJSON_ArrayForEach(want, media_ids)
    {
        const cJSON *m = NULL, *it;
        cJSON_ArrayForEach(it, items)
        {
            const char *id = rpc_field_str(it, "id");
            if (id != NULL && strcmp(id, want->valuestring) == 0)
                m = it;
        }
        if (m == NULL) {
            char *why = xasprintf("no such media: %s", want->valuestring);
            rpc_invalid(r, field, why);
            free(why);
            goto fail;
        }
        const char *owner = rpc_field_str(m, "owner_id");
        if (owner == NULL || strcmp(owner, req->user_id) != 0) {
            char *why = xasprintf("media %s is not yours", want->valuestring);
            rpc_problem(r, 403, "forbidden", why, NULL);
            free(why);
            goto fail;
        }
        cJSON *copy = cJSON_CreateObject();
        static const char *const keep[] = {"id", "width", "height", "blurhash", "variants"};
        for (size_t k = 0; k < CORE_ARRAY_SIZE(keep); k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keep[k]);
            if (v != NULL)
                cJSON_AddItemToObject(copy, keep[k], cJSON_Duplicate(v, 1));
        }
        cJSON_AddItemToArray(out, copy);
    }
    goto out;
fail:
    cJSON_Delete(out);
    out = NULL;
out:
    cJSON_Delete(reply);
    return out;
}

/* media_ids of a body: an array of 1..10 distinct strings; adds why to errors otherwise. */
static void posts__check_media_ids(const cJSON *ids, cJSON *errors)
{
    const char *why = NULL;
    int n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : -1;
    if (n < 0)
        why = "must be an array of media ids";
    else if (n < 1 || n > PUB_MEDIA_MAX)
        why = "must hold 1 to 10 media ids";
    for (int i = 0; i < n && why == NULL; i++) {
        const cJSON *a = cJSON_GetArrayItem(ids, i);
        if (!cJSON_IsString(a) || a->valuestring[0] == '\0' || strlen(a->valuestring) > 64) {
            why = "every media id must be a non-empty string";
            break;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(cJSON_GetArrayItem(ids, j)->valuestring, a->valuestring) == 0)
                why = "a media id is given twice";
    }
    if (why != NULL && !cJSON_HasObjectItem(errors, "media_ids"))
        cJSON_AddStringToObject(errors, "media_ids", why);
}

void posts_create(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    static const rpc_field_t fields[] = {
        {"caption", 0, 0, 0, PUB_CAPTION_MAX, 0},
        {"media_ids", 1, 0, 0, 0, 1},
    };
    cJSON *author = NULL, *errors = NULL, *media = NULL, *tags = NULL, *mentions = NULL;
    bson_t *doc = NULL;
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        return;
    errors = cJSON_CreateObject();
    rpc_fields_check(body, fields, CORE_ARRAY_SIZE(fields), errors);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(body, "media_ids");
    if (ids != NULL)
        posts__check_media_ids(ids, errors);
    if (rpc_invalid_fields(r, &errors))
        goto out;
    if (users_caller(p, req, r, &author) != 1)
        goto out;
    media = posts_media(p, req, r, ids, "media_ids");
    if (media == NULL)
        goto out;
    const char *caption = rpc_field_str(body, "caption");
    caption = caption != NULL ? caption : "";
    if (posts__parse(p, caption, &tags, &mentions) != 0) {
        rpc_db_error(r);
        goto out;
    }
    char id[25];
    db_new_id(id);
    int64_t now = core_wall_ms();
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "post_id", id);
    cJSON_AddStringToObject(ev, "author_id", req->user_id);
    cJSON_AddStringToObject(ev, "author_username", rpc_field_str(author, "username"));
    cJSON_AddStringToObject(ev, "caption", caption);
    cJSON_AddItemReferenceToObject(ev, "tags", tags);
    cJSON_AddItemReferenceToObject(ev, "mentions", mentions);
    cJSON_AddItemReferenceToObject(ev, "media", media);
    json_add_time(ev, "created_at", now);
    char ob[37];
    int rc = outbox_begin(p->outbox, "post.created", ev, id, NULL, req->request_id, ob);
    cJSON_Delete(ev);
    if (rc != 0) {
        rpc_db_error(r);
        goto out;
    }
    doc = BCON_NEW("_id", BCON_UTF8(id), "author_id", BCON_UTF8(req->user_id), "caption", BCON_UTF8(caption));
    posts__append_json(doc, "media", media);
    posts__append_json(doc, "tags", tags);
    posts__append_json(doc, "mentions", mentions);
    BSON_APPEND_DATE_TIME(doc, "created_at", now);
    BSON_APPEND_NULL(doc, "edited_at");
    if (db_insert(p->db, "posts", doc) != 0) {
        outbox_abort(p->outbox, ob);
        rpc_db_error(r);
        goto out;
    }
    outbox_commit(p->outbox, ob); /* a failure leaves it pending: recovery publishes it */
    /* The account's user.deleted may have swept its posts while this one was being made (with a
     * token that outlives the account by minutes): then this one goes too. */
    if (users_gone(p, req->user_id) == 1) {
        posts_delete(p, doc, req->request_id);
        rpc_unauthorized(r, "account-gone", "this account has been deleted");
        goto out;
    }
    /* its own timeline has it at once; publication.fanout writes it again (harmless) if not */
    if (feed_post_created(p, id, req->user_id) != 0)
        log_warn(req->request_id, "post %s: own timeline not written now; the fanout will", id);
    posts__answer(p, req, r, doc, 201);
out:
    bson_destroy(doc);
    cJSON_Delete(tags);
    cJSON_Delete(mentions);
    cJSON_Delete(media);
    cJSON_Delete(author);
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

/* ================================================================ read, edit, delete */

void posts_get(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    bson_t post = BSON_INITIALIZER;
    if (posts_visible(p, req, r, &post) == 1)
        posts__answer(p, req, r, &post, 200);
    bson_destroy(&post);
}

/* The caller's own post of the path, for edits: 1, or answers 401/404/403/503. */
static int posts__own(pub_t *p, const mq_message_t *req, mq_reply_t *r, bson_t *post, const char *what)
{
    if (users_caller(p, req, r, NULL) != 1 || posts_visible(p, req, r, post) != 1)
        return 0;
    if (strcmp(db_doc_str(post, "author_id"), req->user_id) != 0) {
        rpc_problem(r, 403, "forbidden", what, NULL);
        return 0;
    }
    return 1;
}

void posts_update(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    static const rpc_field_t fields[] = {{"caption", 1, 0, 0, PUB_CAPTION_MAX, 0}};
    bson_t post = BSON_INITIALIZER;
    cJSON *tags = NULL, *mentions = NULL, *errors = cJSON_CreateObject();
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        goto out;
    rpc_fields_check(body, fields, CORE_ARRAY_SIZE(fields), errors);
    if (rpc_invalid_fields(r, &errors) || !posts__own(p, req, r, &post, "only its author edits a post"))
        goto out;
    const char *id = db_doc_str(&post, "_id"), *caption = rpc_field_str(body, "caption");
    if (posts__parse(p, caption, &tags, &mentions) != 0) {
        rpc_db_error(r);
        goto out;
    }
    int64_t now = core_wall_ms();
    char op[37], ob[37];
    core_uuid(op);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "post_id", id);
    cJSON_AddStringToObject(ev, "author_id", req->user_id);
    cJSON_AddStringToObject(ev, "caption", caption);
    cJSON_AddItemReferenceToObject(ev, "tags", tags);
    cJSON_AddItemReferenceToObject(ev, "mentions", mentions);
    json_add_time(ev, "edited_at", now);
    int rc = outbox_begin(p->outbox, "post.updated", ev, id, op, req->request_id, ob);
    cJSON_Delete(ev);
    if (rc != 0) {
        rpc_db_error(r);
        goto out;
    }
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id)), *u = bson_new(), set;
    bson_append_document_begin(u, "$set", -1, &set);
    BSON_APPEND_UTF8(&set, "caption", caption);
    posts__append_json(&set, "tags", tags);
    posts__append_json(&set, "mentions", mentions);
    BSON_APPEND_DATE_TIME(&set, "edited_at", now);
    BSON_APPEND_UTF8(&set, "op", op);
    bson_append_document_end(u, &set);
    rc = db_update_one(p->db, "posts", f, u, 0);
    bson_destroy(f);
    bson_destroy(u);
    if (rc < 0) {
        rpc_db_error(r); /* pending: recovery looks for op in the post */
        goto out;
    }
    if (rc == 0) { /* deleted meanwhile */
        outbox_abort(p->outbox, ob);
        rpc_not_found(r, "no such post");
        goto out;
    }
    outbox_commit(p->outbox, ob);
    bson_t fresh = BSON_INITIALIZER;
    rc = posts_load(p, id, &fresh);
    if (rc == 1)
        posts__answer(p, req, r, &fresh, 200);
    else if (rc == 0)
        rpc_not_found(r, "no such post");
    else
        rpc_db_error(r);
    bson_destroy(&fresh);
out:
    bson_destroy(&post);
    cJSON_Delete(tags);
    cJSON_Delete(mentions);
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

int posts_cascade(pub_t *p, const char *post_id)
{
    /* Comments one at a time (with their likes and counts), then the post's likes and counts. */
    for (;;) {
        bson_t c = BSON_INITIALIZER;
        bson_t *f = BCON_NEW("post_id", BCON_UTF8(post_id));
        int found = db_find_one(p->db, "comments", f, NULL, &c);
        bson_destroy(f);
        int rc = found;
        if (found == 1) {
            const char *cid = db_doc_str(&c, "_id");
            bson_t *g = BCON_NEW("_id", BCON_UTF8(cid));
            rc = likes_delete_of(p, cid) == 0 && db_delete_one(p->db, "counts", g) >= 0 &&
                         db_delete_one(p->db, "comments", g) >= 0
                     ? 1
                     : -1;
            bson_destroy(g);
        }
        bson_destroy(&c);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
    }
    bson_t *g = BCON_NEW("_id", BCON_UTF8(post_id));
    int rc = likes_delete_of(p, post_id) == 0 && db_delete_one(p->db, "counts", g) >= 0 ? 0 : -1;
    bson_destroy(g);
    return rc;
}

int posts_delete(pub_t *p, const bson_t *post, const char *request_id)
{
    const char *id = db_doc_str(post, "_id"), *author = db_doc_str(post, "author_id");
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "post_id", id);
    cJSON_AddStringToObject(ev, "author_id", author);
    json_add_time(ev, "deleted_at", core_wall_ms());
    char ob[37];
    int rc = outbox_begin(p->outbox, "post.deleted", ev, id, author, request_id, ob);
    cJSON_Delete(ev);
    if (rc != 0)
        return -1;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    rc = db_delete_one(p->db, "posts", f);
    bson_destroy(f);
    if (rc == 0) {
        outbox_abort(p->outbox, ob); /* someone else deleted it (and published that) */
        return 0;
    }
    /* On a failure from here on the event stays pending, and recovery finishes the cascade of a
     * post that is gone before it publishes. */
    if (rc < 0 || posts_cascade(p, id) != 0)
        return -1;
    outbox_commit(p->outbox, ob);
    return 1;
}

void posts_remove(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    bson_t post = BSON_INITIALIZER;
    if (posts__own(p, req, r, &post, "only its author deletes a post")) {
        int rc = posts_delete(p, &post, req->request_id);
        if (rc < 0)
            rpc_db_error(r);
        else
            rpc_no_content(r);
    }
    bson_destroy(&post);
}

/* ================================================================ lists */

static cJSON *posts__render(const bson_t *doc, void *ud, int *err)
{
    lists_ctx_t *l = ud;
    return posts_json(l->p, l->authors, doc, l->caller, err);
}

/* Answers the list of posts matching filter, newest first. */
static void posts__list(pub_t *p, const mq_message_t *req, mq_reply_t *r, const char *list, const bson_t *filter,
                        long limit, const char *after)
{
    lists_walk_t w = {
        .coll = "posts",
        .filter = filter,
        .key = "_id",
        .descending = 1,
        .after = after,
        .limit = limit,
        .owner = "author_id",
        .render = posts__render,
    };
    lists_answer(p, req, r, list, &w);
}

void posts_of_user(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    char uid[64], after[64];
    long limit;
    if (lists_page_args(p, req, r, "user_posts", &limit, after, sizeof(after)) != 0)
        return;
    if (users_from_path(p, req, r, uid) != 1)
        return;
    bson_t *f = BCON_NEW("author_id", BCON_UTF8(uid));
    posts__list(p, req, r, "user_posts", f, limit, after);
    bson_destroy(f);
}

void posts_of_tag(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    char raw[1024], tag[1024], after[64];
    long limit;
    if (lists_page_args(p, req, r, "tag_posts", &limit, after, sizeof(after)) != 0)
        return;
    if (rpc_param(req, "tag", raw, sizeof(raw)) != 0 || text_tag_normalize(raw, tag, sizeof(tag)) != 0) {
        /* not a tag anyone could have written: no post has it */
        cJSON *out = cJSON_CreateObject();
        cJSON_AddArrayToObject(out, "items");
        cJSON_AddNullToObject(out, "next_cursor");
        rpc_json(r, 200, out);
        return;
    }
    bson_t *f = BCON_NEW("tags", BCON_UTF8(tag));
    posts__list(p, req, r, "tag_posts", f, limit, after);
    bson_destroy(f);
}
