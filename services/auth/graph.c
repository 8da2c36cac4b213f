/* graph.c -- profiles, follow and block edges, followers and following lists. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "core/core.h"
#include "log/log.h"

#define GR__DEFAULT_LIMIT 20
#define GR__MAX_LIMIT 100

/* ================================================================ edges */

static void gr__edge_id(const char *from, const char *to, char out[64])
{
    snprintf(out, 64, "%s:%s", from, to);
}

/* 1 if the edge from -> to is in coll ("follows" or "blocks"), 0 if not, -1. */
static int gr__edge(auth_t *a, const char *coll, const char *from, const char *to)
{
    char id[64];
    gr__edge_id(from, to, id);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_exists(a->db, coll, f);
    bson_destroy(f);
    return rc;
}

/* Both directions between x and y: *xy and *yx get 1 where an edge of coll exists. Two lookups
 * by _id: FerretDB answers those from its index, but scans the collection for {_id: {$in}}.
 * Returns 0 or -1. */
static int gr__pair(auth_t *a, const char *coll, const char *x, const char *y, int *xy, int *yx)
{
    *xy = gr__edge(a, coll, x, y);
    *yx = *xy < 0 ? -1 : gr__edge(a, coll, y, x);
    return *xy < 0 || *yx < 0 ? -1 : 0;
}

/* 1 if either of x and y blocks the other. */
static int gr__hidden(auth_t *a, const char *x, const char *y)
{
    int xy, yx;
    if (gr__pair(a, "blocks", x, y, &xy, &yx) != 0)
        return -1;
    return xy || yx;
}

int graph_unfollow_edge(auth_t *a, const char *from, const char *to)
{
    char id[64];
    gr__edge_id(from, to, id);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_delete_one(a->db, "follows", f);
    bson_destroy(f);
    /* Only the request whose delete removed the edge counts it, so concurrent unfollows count once. */
    if (rc == 1 &&
        (counter_add(a, to, CTR_FOLLOWERS, -1) != 0 || counter_add(a, from, CTR_FOLLOWING, -1) != 0))
        return -2;
    return rc;
}

/* ================================================================ requests */

/* Loads the user named by the path parameter {username}; answers 404/503 otherwise. */
static int gr__target(auth_t *a, const mq_message_t *req, mq_reply_t *r, bson_t *out)
{
    char raw[256], username[AUTH_USERNAME_MAX + 1];
    int rc = 0;
    if (rpc_param(req, "username", raw, sizeof(raw)) == 0 && auth_username_normalize(raw, username) == 0) {
        bson_t *f = BCON_NEW("username", BCON_UTF8(username));
        rc = db_find_one(a->db, "users", f, NULL, out);
        bson_destroy(f);
    }
    if (rc < 0)
        rpc_db_error(r);
    else if (rc == 0)
        rpc_not_found(r, "no such user");
    return rc;
}

static void gr__not_found(mq_reply_t *r)
{
    rpc_not_found(r, "no such user");
}

/* Whether uid follows tid (1 or 0), or -1 after answering: 404 when either blocks the other,
 * 503 when the database fails. */
static int gr__following(auth_t *a, mq_reply_t *r, const char *uid, const char *tid)
{
    int h = gr__hidden(a, uid, tid), e = h == 0 ? gr__edge(a, "follows", uid, tid) : 0;
    if (h < 0 || e < 0) {
        rpc_db_error(r);
        return -1;
    }
    if (h == 1) {
        gr__not_found(r);
        return -1;
    }
    return e;
}

/* {following, followed_by, blocking} of caller towards target, into o. -1 on a database error. */
static int gr__flags(auth_t *a, const char *caller, const char *target, cJSON *o)
{
    int f, fb, b, bb;
    if (gr__pair(a, "follows", caller, target, &f, &fb) != 0 ||
        gr__pair(a, "blocks", caller, target, &b, &bb) != 0)
        return -1;
    cJSON_AddBoolToObject(o, "following", f);
    cJSON_AddBoolToObject(o, "followed_by", fb);
    cJSON_AddBoolToObject(o, "blocking", b);
    return 0;
}

/* Answers 200 with the relationship of the caller towards target. */
static void gr__relationship(auth_t *a, const mq_message_t *req, mq_reply_t *r, const bson_t *target)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", db_doc_str(target, "_id"));
    cJSON_AddStringToObject(o, "username", db_doc_str(target, "username"));
    if (gr__flags(a, req->user_id, db_doc_str(target, "_id"), o) != 0) {
        cJSON_Delete(o);
        rpc_db_error(r);
        return;
    }
    rpc_json(r, 200, o);
}

/* ================================================================ profiles and lists */

void graph_user_get(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    bson_t target = BSON_INITIALIZER;
    if (gr__target(a, req, r, &target) != 1)
        goto out;
    const char *tid = db_doc_str(&target, "_id");
    int other = req->user_id != NULL && strcmp(req->user_id, tid) != 0;
    int f = 0, fb = 0, b = 0, bb = 0;
    if (other && (gr__pair(a, "blocks", req->user_id, tid, &b, &bb) != 0 ||
                  (!b && !bb && gr__pair(a, "follows", req->user_id, tid, &f, &fb) != 0))) {
        rpc_db_error(r);
        goto out;
    }
    if (b || bb) {
        gr__not_found(r);
        goto out;
    }
    cJSON *o = user_account_json(a, &target, 0);
    if (other) {
        cJSON *rel = cJSON_AddObjectToObject(o, "relationship");
        cJSON_AddBoolToObject(rel, "following", f);
        cJSON_AddBoolToObject(rel, "followed_by", fb);
        cJSON_AddBoolToObject(rel, "blocking", 0);
    } else {
        cJSON_AddNullToObject(o, "relationship");
    }
    rpc_json(r, 200, o);
out:
    bson_destroy(&target);
}

typedef struct {
    const char *other; /* "from" for followers, "to" for following */
    cJSON *edges;      /* [{o: the other end, t: created_at ms, id: edge id}], in order */
} gr__page_t;

static int gr__page_edge(const bson_t *doc, void *ud)
{
    gr__page_t *p = ud;
    const char *id = db_doc_str(doc, "_id"), *o = db_doc_str(doc, p->other);
    if (id == NULL || o == NULL)
        return 0;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "o", o);
    cJSON_AddNumberToObject(e, "t", (double)db_doc_ms(doc, "created_at"));
    cJSON_AddStringToObject(e, "id", id);
    cJSON_AddItemToArray(p->edges, e);
    return 0;
}

static int gr__page_user(const bson_t *doc, void *ud)
{
    cJSON *byid = ud;
    const char *avatar = db_doc_str(doc, "avatar_media_id"), *name = db_doc_str(doc, "name");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", db_doc_str(doc, "_id"));
    cJSON_AddStringToObject(o, "username", db_doc_str(doc, "username"));
    cJSON_AddStringToObject(o, "name", name != NULL ? name : "");
    if (avatar != NULL)
        cJSON_AddStringToObject(o, "avatar_media_id", avatar);
    else
        cJSON_AddNullToObject(o, "avatar_media_id");
    cJSON_AddItemToObject(byid, db_doc_str(doc, "_id"), o);
    return 0;
}

/* Followers (side "to": edges pointing at the user) or following (side "from"). */
static void gr__list(auth_t *a, const mq_message_t *req, mq_reply_t *r, const char *side)
{
    bson_t target = BSON_INITIALIZER, filter = BSON_INITIALIZER;
    bson_t *opts = NULL, *uf = NULL;
    cJSON *cur = NULL, *byid = NULL;
    gr__page_t page = {.other = side[0] == 't' ? "from" : "to", .edges = cJSON_CreateArray()};
    char buf[1100];
    long limit = GR__DEFAULT_LIMIT;
    int q = rpc_query(req, "limit", buf, sizeof(buf));
    if (q != 0) {
        char *end;
        limit = q == 1 ? strtol(buf, &end, 10) : 0;
        if (q < 0 || buf[0] == '\0' || *end != '\0' || limit < 1 || limit > GR__MAX_LIMIT) {
            rpc_invalid(r, "limit", "must be an integer from 1 to 100");
            goto out;
        }
    }
    q = rpc_query(req, "cursor", buf, sizeof(buf));
    if (q != 0) {
        cur = q == 1 ? cursor_decode(&a->cursor, buf) : NULL;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(cur, "t"),
                    *id = cJSON_GetObjectItemCaseSensitive(cur, "id");
        if (!cJSON_IsNumber(t) || !cJSON_IsString(id)) {
            rpc_problem(r, 400, "bad-cursor", "the cursor is not one this list gave", NULL);
            goto out;
        }
    }
    if (gr__target(a, req, r, &target) != 1)
        goto out;
    const char *tid = db_doc_str(&target, "_id");
    if (req->user_id != NULL && strcmp(req->user_id, tid) != 0) {
        int h = gr__hidden(a, req->user_id, tid);
        if (h != 0) {
            h < 0 ? rpc_db_error(r) : gr__not_found(r);
            goto out;
        }
    }
    BSON_APPEND_UTF8(&filter, side, tid);
    if (cur != NULL) {
        int64_t t = (int64_t)cJSON_GetObjectItemCaseSensitive(cur, "t")->valuedouble;
        const char *id = cJSON_GetObjectItemCaseSensitive(cur, "id")->valuestring;
        bson_t or, a0, a1, lt0, lt1;
        BSON_APPEND_ARRAY_BEGIN(&filter, "$or", & or);
        BSON_APPEND_DOCUMENT_BEGIN(& or, "0", &a0);
        BSON_APPEND_DOCUMENT_BEGIN(&a0, "created_at", &lt0);
        BSON_APPEND_DATE_TIME(&lt0, "$lt", t);
        bson_append_document_end(&a0, &lt0);
        bson_append_document_end(& or, &a0);
        BSON_APPEND_DOCUMENT_BEGIN(& or, "1", &a1);
        BSON_APPEND_DATE_TIME(&a1, "created_at", t);
        BSON_APPEND_DOCUMENT_BEGIN(&a1, "_id", &lt1);
        BSON_APPEND_UTF8(&lt1, "$lt", id);
        bson_append_document_end(&a1, &lt1);
        bson_append_document_end(& or, &a1);
        bson_append_array_end(&filter, & or);
    }
    opts = BCON_NEW("sort", "{", "created_at", BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "limit",
                    BCON_INT64(limit + 1));
    if (db_each(a->db, "follows", &filter, opts, gr__page_edge, &page) < 0) {
        rpc_db_error(r);
        goto out;
    }
    int n = cJSON_GetArraySize(page.edges);
    int more = n > limit;
    if (more) { /* the extra edge only says there is a next page; the cursor is the last shown */
        cJSON_DeleteItemFromArray(page.edges, n - 1);
        n--;
    }
    byid = cJSON_CreateObject();
    if (n > 0) {
        bson_t in;
        uf = bson_new();
        BSON_APPEND_DOCUMENT_BEGIN(uf, "_id", &in);
        bson_t arr;
        BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
        for (int i = 0; i < n; i++) {
            char k[16];
            snprintf(k, sizeof(k), "%d", i);
            BSON_APPEND_UTF8(
                &arr, k, cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(page.edges, i), "o")));
        }
        bson_append_array_end(&in, &arr);
        bson_append_document_end(uf, &in);
        if (db_each(a->db, "users", uf, NULL, gr__page_user, byid) < 0) {
            rpc_db_error(r);
            goto out;
        }
    }
    cJSON *out = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(out, "items");
    for (int i = 0; i < n; i++) {
        const char *uid = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(page.edges, i), "o"));
        cJSON *u = cJSON_DetachItemFromObjectCaseSensitive(byid, uid);
        if (u != NULL) /* an account deleted a moment ago */
            cJSON_AddItemToArray(items, u);
    }
    if (more) {
        const cJSON *last = cJSON_GetArrayItem(page.edges, n - 1);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "t", cJSON_GetObjectItem(last, "t")->valuedouble);
        cJSON_AddStringToObject(c, "id", cJSON_GetStringValue(cJSON_GetObjectItem(last, "id")));
        char *enc = cursor_encode(&a->cursor, c);
        cJSON_AddStringToObject(out, "next_cursor", enc);
        free(enc);
        cJSON_Delete(c);
    } else {
        cJSON_AddNullToObject(out, "next_cursor");
    }
    rpc_json(r, 200, out);
out:
    if (opts != NULL)
        bson_destroy(opts);
    if (uf != NULL)
        bson_destroy(uf);
    bson_destroy(&target);
    bson_destroy(&filter);
    cJSON_Delete(cur);
    cJSON_Delete(byid);
    cJSON_Delete(page.edges);
}

void graph_followers(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    gr__list(a, req, r, "to");
}

void graph_following(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    gr__list(a, req, r, "from");
}

/* ================================================================ follow and block */

/* The payload of an edge event: {<from_key>: from, <to_key>: to, <time_key>: now}. */
static cJSON *gr__edge_event(const char *from_key, const char *from, const char *to_key, const char *to,
                             const char *time_key, int64_t now)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, from_key, from);
    cJSON_AddStringToObject(p, to_key, to);
    json_add_time(p, time_key, now);
    return p;
}

/* Stores the edge from -> to in coll, stamped with the outbox event that announces it (recovery
 * looks for that stamp). st_insert's codes: 0, 1 (exists already), -1. */
static int gr__insert_edge(auth_t *a, const char *coll, const char *from, const char *to, int64_t now,
                           const char *evid)
{
    char edge[64];
    gr__edge_id(from, to, edge);
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(edge), "from", BCON_UTF8(from), "to", BCON_UTF8(to), "created_at",
                           BCON_DATE_TIME(now), "op", BCON_UTF8(evid));
    int rc = db_insert(a->db, coll, doc);
    bson_destroy(doc);
    return rc;
}

/* Common start of the four edge methods: the target, not oneself. Returns 1 when it may go on. */
static int gr__begin(auth_t *a, const mq_message_t *req, mq_reply_t *r, bson_t *target, const char *verb)
{
    if (gr__target(a, req, r, target) != 1)
        return 0;
    if (strcmp(db_doc_str(target, "_id"), req->user_id) == 0) {
        char *why = xasprintf("you cannot %s yourself", verb);
        rpc_invalid(r, "username", why);
        free(why);
        return 0;
    }
    return 1;
}

void graph_follow(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    bson_t target = BSON_INITIALIZER, me = BSON_INITIALIZER;
    cJSON *payload = NULL;
    char evid[37], edge[64];
    if (!gr__begin(a, req, r, &target, "follow") || user_caller(a, req, r, &me) != 1)
        goto out;
    const char *tid = db_doc_str(&target, "_id"), *uid = req->user_id;
    int e = gr__following(a, r, uid, tid);
    if (e < 0)
        goto out;
    if (e == 1) { /* following already: nothing changes */
        gr__relationship(a, req, r, &target);
        goto out;
    }
    int64_t now = core_wall_ms();
    payload = gr__edge_event("follower_id", uid, "followee_id", tid, "created_at", now);
    cJSON_AddStringToObject(payload, "follower_username", db_doc_str(&me, "username"));
    cJSON_AddStringToObject(payload, "followee_username", db_doc_str(&target, "username"));
    if (outbox_begin(a->outbox, "follow.created", payload, uid, tid, req->request_id, evid) != 0) {
        rpc_db_error(r);
        goto out;
    }
    gr__edge_id(uid, tid, edge);
    int rc = gr__insert_edge(a, "follows", uid, tid, now, evid);
    if (rc != 0) { /* 1: a concurrent follow won; it publishes */
        outbox_abort(a->outbox, evid);
        rc < 0 ? rpc_db_error(r) : gr__relationship(a, req, r, &target);
        goto out;
    }
    /* A block stored between the check above and the insert would have missed this edge: look
     * again now that it is stored (the block removes edges it sees, this removes the rest). */
    if (gr__hidden(a, uid, tid) != 0) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(edge), "op", BCON_UTF8(evid));
        db_delete_one(a->db, "follows", f);
        bson_destroy(f);
        outbox_abort(a->outbox, evid);
        gr__not_found(r);
        goto out;
    }
    if (counter_add(a, tid, CTR_FOLLOWERS, 1) == 0 && counter_add(a, uid, CTR_FOLLOWING, 1) == 0)
        outbox_commit(a->outbox, evid); /* else it stays pending: recovery recounts and publishes */
    gr__relationship(a, req, r, &target);
out:
    bson_destroy(&target);
    bson_destroy(&me);
    cJSON_Delete(payload);
}

/* Removes the edge uid -> tid of coll with its event (key, payload, taken). 1 removed, 0 it was
 * not there (or a concurrent request removed it and publishes), -1 after answering 503. */
static int gr__remove_edge(auth_t *a, const mq_message_t *req, mq_reply_t *r, const char *coll,
                           const char *tid, const char *key, cJSON *payload)
{
    const char *uid = req->user_id;
    char evid[37], edge[64];
    int rc = outbox_begin(a->outbox, key, payload, uid, tid, req->request_id, evid);
    cJSON_Delete(payload);
    if (rc != 0) {
        rpc_db_error(r);
        return -1;
    }
    if (strcmp(coll, "follows") == 0) {
        rc = graph_unfollow_edge(a, uid, tid); /* -2: removed, counts not yet: recovery recounts */
    } else {
        gr__edge_id(uid, tid, edge);
        bson_t *f = BCON_NEW("_id", BCON_UTF8(edge));
        rc = db_delete_one(a->db, coll, f);
        bson_destroy(f);
    }
    if (rc == 1)
        outbox_commit(a->outbox, evid);
    else if (rc == 0 || rc == -1)
        outbox_abort(a->outbox, evid);
    if (rc == -1)
        rpc_db_error(r);
    return rc == -2 ? 1 : rc;
}

void graph_unfollow(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    bson_t target = BSON_INITIALIZER;
    if (!gr__begin(a, req, r, &target, "unfollow"))
        goto out;
    const char *tid = db_doc_str(&target, "_id"), *uid = req->user_id;
    int e = gr__following(a, r, uid, tid);
    if (e < 0)
        goto out;
    if (e == 1 && gr__remove_edge(a, req, r, "follows", tid, "follow.deleted",
                                  gr__edge_event("follower_id", uid, "followee_id", tid, "deleted_at",
                                                 core_wall_ms())) < 0)
        goto out;
    gr__relationship(a, req, r, &target);
out:
    bson_destroy(&target);
}

void graph_block(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    bson_t target = BSON_INITIALIZER, me = BSON_INITIALIZER;
    cJSON *payload = NULL;
    char evid[37], edge[64];
    if (!gr__begin(a, req, r, &target, "block") || user_caller(a, req, r, &me) != 1)
        goto out;
    const char *tid = db_doc_str(&target, "_id"), *uid = req->user_id;
    int e = gr__edge(a, "blocks", uid, tid);
    if (e != 0) {
        e < 0 ? rpc_db_error(r) : gr__relationship(a, req, r, &target);
        goto out;
    }
    int64_t now = core_wall_ms();
    payload = gr__edge_event("blocker_id", uid, "blocked_id", tid, "created_at", now);
    if (outbox_begin(a->outbox, "block.created", payload, uid, tid, req->request_id, evid) != 0) {
        rpc_db_error(r);
        goto out;
    }
    gr__edge_id(uid, tid, edge);
    int rc = gr__insert_edge(a, "blocks", uid, tid, now, evid);
    if (rc != 0) {
        outbox_abort(a->outbox, evid);
        rc < 0 ? rpc_db_error(r) : gr__relationship(a, req, r, &target);
        goto out;
    }
    /* Both follows go; block.created says so to consumers (no follow.deleted for them). */
    int d1 = graph_unfollow_edge(a, uid, tid), d2 = graph_unfollow_edge(a, tid, uid);
    if (d1 >= 0 && d2 >= 0)
        outbox_commit(a->outbox, evid); /* else recovery finishes the unfollows and publishes */
    else
        log_warn(req->request_id, "block %s: follows not all removed yet; recovery finishes it", edge);
    gr__relationship(a, req, r, &target);
out:
    bson_destroy(&target);
    bson_destroy(&me);
    cJSON_Delete(payload);
}

void graph_unblock(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    bson_t target = BSON_INITIALIZER;
    if (!gr__begin(a, req, r, &target, "unblock"))
        goto out;
    const char *tid = db_doc_str(&target, "_id"), *uid = req->user_id;
    int e = gr__edge(a, "blocks", uid, tid);
    if (e < 0) {
        rpc_db_error(r);
        goto out;
    }
    if (e == 1 && gr__remove_edge(
                      a, req, r, "blocks", tid, "block.deleted",
                      gr__edge_event("blocker_id", uid, "blocked_id", tid, "deleted_at", core_wall_ms())) < 0)
        goto out;
    gr__relationship(a, req, r, &target);
out:
    bson_destroy(&target);
}
