/* users.c -- projections of auth's users and of the follow and block graph, kept from auth's
 * events; authors embedded in posts; calls to other services. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "pub.h"

/* ================================================================ calls to other services */

int pub_rpc(pub_t *p, const char *service, const char *method, const cJSON *body, const char *request_id,
            cJSON **out)
{
    return rpc_call_json(p->rpc, service, method, body, request_id, (unsigned)p->conf->rpc_timeout_ms, out);
}

/* ================================================================ reading the projections */

int users_gone(pub_t *p, const char *user_id)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
    int rc = db_exists(p->db, "deleted_users", f);
    bson_destroy(f);
    return rc;
}

static cJSON *users__author_json(const bson_t *u)
{
    const char *name = db_doc_str(u, "name"), *avatar = db_doc_str(u, "avatar");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", db_doc_str(u, "_id"));
    cJSON_AddStringToObject(o, "username", db_doc_str(u, "username"));
    cJSON_AddStringToObject(o, "name", name != NULL ? name : "");
    if (avatar != NULL)
        cJSON_AddStringToObject(o, "avatar", avatar);
    else
        cJSON_AddNullToObject(o, "avatar");
    return o;
}

int users_author(pub_t *p, const char *user_id, cJSON **out)
{
    bson_t u = BSON_INITIALIZER;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
    int rc = db_find_one(p->db, "users", f, NULL, &u);
    bson_destroy(f);
    *out = rc == 1 ? users__author_json(&u) : NULL;
    bson_destroy(&u);
    return rc;
}

int users_by_name(pub_t *p, const char *username, char id[64])
{
    /* usernames {_id: username, user_id}: FerretDB answers only {_id: x} from an index */
    bson_t u = BSON_INITIALIZER;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(username));
    int rc = db_find_one(p->db, "usernames", f, NULL, &u);
    bson_destroy(f);
    const char *uid = rc == 1 ? db_doc_str(&u, "user_id") : NULL;
    if (rc == 1 && (uid == NULL || strlen(uid) >= 64))
        rc = 0;
    if (rc == 1)
        strcpy(id, uid);
    bson_destroy(&u);
    if (rc == 1) { /* the account may be gone (its user.deleted removes the name a moment later) */
        bson_t *g = BCON_NEW("_id", BCON_UTF8(id));
        rc = db_exists(p->db, "users", g);
        bson_destroy(g);
    }
    return rc;
}

int users_from_path(pub_t *p, const mq_message_t *req, mq_reply_t *r, char id[64])
{
    char raw[256], username[PUB_USERNAME_MAX + 1];
    int rc = 0;
    size_t n = rpc_param(req, "username", raw, sizeof(raw)) == 0 ? strlen(raw) : 0;
    if (n >= 3 && n <= PUB_USERNAME_MAX) {
        for (size_t i = 0; i <= n; i++)
            username[i] = (char)((raw[i] >= 'A' && raw[i] <= 'Z') ? raw[i] + 32 : raw[i]);
        rc = users_by_name(p, username, id);
    }
    if (rc == 1) {
        int h = users_hidden(p, req->user_id, id);
        rc = h < 0 ? -1 : h ? 0 : 1;
    }
    if (rc < 0)
        rpc_db_error(r);
    else if (rc == 0)
        rpc_not_found(r, "no such user");
    return rc;
}

int users_hidden(pub_t *p, const char *x, const char *y)
{
    if (x == NULL || y == NULL || strcmp(x, y) == 0)
        return 0;
    int xy = graph_edge_on(p, "blocks", x, y);
    if (xy != 0)
        return xy;
    return graph_edge_on(p, "blocks", y, x);
}

/* ---------------------------------------------------------------- block sets */

static int users__collect_other(const bson_t *doc, void *ud)
{
    pub_blockset_t *b = ((void **)ud)[0];
    const char *side = ((void **)ud)[1];
    const char *id = db_doc_str(doc, side);
    if (id != NULL)
        pub_ids_add(b, id);
    return 0;
}

int users_blockset(pub_t *p, const char *caller, pub_blockset_t *out)
{
    memset(out, 0, sizeof(*out));
    if (caller == NULL)
        return 0;
    static const char *const sides[2][2] = {{"from", "to"}, {"to", "from"}};
    for (int i = 0; i < 2; i++) {
        bson_t *f = BCON_NEW(sides[i][0], BCON_UTF8(caller), "on", BCON_BOOL(true));
        void *ud[2] = {out, (void *)sides[i][1]};
        long n = db_each(p->db, "blocks", f, NULL, users__collect_other, ud);
        bson_destroy(f);
        if (n < 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- authors of one request */

struct pub_authors {
    pub_t *p;
    size_t n;
    struct {
        char *id;
        cJSON *author; /* NULL: unknown or gone */
    } * e;
};

pub_authors_t *users_authors_new(pub_t *p)
{
    pub_authors_t *a = xcalloc(1, sizeof(*a));
    a->p = p;
    return a;
}

static void users__authors_put(pub_authors_t *a, const char *user_id, cJSON *author)
{
    a->e = xrealloc(a->e, (a->n + 1) * sizeof(*a->e));
    a->e[a->n].id = xstrdup(user_id);
    a->e[a->n++].author = author;
}

static int users__authors_has(const pub_authors_t *a, const char *user_id)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->e[i].id, user_id) == 0)
            return 1;
    return 0;
}

const cJSON *users_authors_get(pub_authors_t *a, const char *user_id, int *err)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->e[i].id, user_id) == 0)
            return a->e[i].author;
    cJSON *author = NULL;
    if (users_author(a->p, user_id, &author) < 0) {
        *err = 1;
        return NULL;
    }
    users__authors_put(a, user_id, author);
    return author;
}

static int users__authors_found(const bson_t *u, void *ud)
{
    pub_authors_t *a = ud;
    const char *id = db_doc_str(u, "_id");
    if (id != NULL && !users__authors_has(a, id))
        users__authors_put(a, id, users__author_json(u));
    return 0;
}

int users_authors_prefetch(pub_authors_t *a, const char *const *ids, size_t n)
{
    const char **want = xcalloc(n + 1, sizeof(*want));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int dup = users__authors_has(a, ids[i]);
        for (size_t j = 0; j < m && !dup; j++)
            dup = strcmp(want[j], ids[i]) == 0;
        if (!dup)
            want[m++] = ids[i];
    }
    long rc = db_find_ids(a->p->db, "users", want, m, users__authors_found, a);
    for (size_t i = 0; i < m && rc >= 0; i++)
        if (!users__authors_has(a, want[i]))
            users__authors_put(a, want[i], NULL); /* unknown or gone */
    free(want);
    return rc < 0 ? -1 : 0;
}

void users_authors_free(pub_authors_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->e[i].id);
        cJSON_Delete(a->e[i].author);
    }
    free(a->e);
    free(a);
}

/* ================================================================ writing the user projection */

/* Writes fields (borrowed) and {vfield: version} to the document id of coll unless it holds a
 * version at least as new: out-of-order and repeated events end in the newest state. By _id
 * alone, as FerretDB answers only those from an index (an upsert with a version in its filter
 * would scan the collection). 0 (written or stale) or -1. */
static int users__put_versioned(pub_t *p, const char *coll, const char *id, const char *vfield,
                                int64_t version, const bson_t *fields)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        bson_t cur = BSON_INITIALIZER;
        bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
        int rc = db_find_one(p->db, coll, f, NULL, &cur);
        int stale = rc == 1 && db_doc_int(&cur, vfield) >= version;
        bson_destroy(&cur);
        if (rc < 0 || stale) {
            bson_destroy(f);
            return rc < 0 ? -1 : 0;
        }
        bson_t *doc = bson_new(), set;
        if (rc == 0) {
            BSON_APPEND_UTF8(doc, "_id", id);
            bson_concat(doc, fields);
            BSON_APPEND_INT64(doc, vfield, version);
            rc = db_insert(p->db, coll, doc); /* 1: a concurrent first event inserted; look again */
        } else {
            bson_append_document_begin(doc, "$set", -1, &set);
            bson_concat(&set, fields);
            BSON_APPEND_INT64(&set, vfield, version);
            bson_append_document_end(doc, &set);
            rc = db_update_one(p->db, coll, f, doc, 0) < 0 ? -1 : 0;
        }
        bson_destroy(doc);
        bson_destroy(f);
        if (rc != 1)
            return rc;
    }
    return -1;
}

/* Applies a profile version v (ms) of user_id, and its name in usernames. A user deleted
 * meanwhile is removed again. 0 or -1. */
static int users__apply(pub_t *p, const char *user_id, const char *username, const char *name,
                        const char *avatar_media_id, const char *avatar, int64_t v)
{
    int d = users_gone(p, user_id);
    if (d != 0)
        return d < 0 ? -1 : 0;
    bson_t *fields = bson_new();
    BSON_APPEND_UTF8(fields, "username", username);
    BSON_APPEND_UTF8(fields, "name", name != NULL ? name : "");
    /* by hand: the avatar fields may be null, which BCON cannot say for a string */
    if (avatar_media_id != NULL)
        BSON_APPEND_UTF8(fields, "avatar_media_id", avatar_media_id);
    else
        BSON_APPEND_NULL(fields, "avatar_media_id");
    if (avatar != NULL)
        BSON_APPEND_UTF8(fields, "avatar", avatar);
    else
        BSON_APPEND_NULL(fields, "avatar");
    int rc = users__put_versioned(p, "users", user_id, "v", v, fields);
    bson_destroy(fields);
    if (rc == 0) { /* usernames never change at auth; a name freed by a deletion may be taken again */
        bson_t *f = BCON_NEW("_id", BCON_UTF8(username));
        bson_t *u = BCON_NEW("$set", "{", "user_id", BCON_UTF8(user_id), "}");
        rc = db_update_one(p->db, "usernames", f, u, 1) == -1 ? -1 : 0;
        bson_destroy(f);
        bson_destroy(u);
    }
    if (rc != 0)
        return -1;
    /* user.deleted may have run between the check and the write */
    d = users_gone(p, user_id);
    if (d == 1) {
        bson_t *g = BCON_NEW("_id", BCON_UTF8(user_id));
        rc = db_delete_one(p->db, "users", g) < 0 ? -1 : 0;
        bson_destroy(g);
        return rc;
    }
    return d < 0 ? -1 : 0;
}

int users_caller(pub_t *p, const mq_message_t *req, mq_reply_t *r, cJSON **author)
{
    const char *uid = req->user_id;
    if (author != NULL)
        *author = NULL;
    int d = users_gone(p, uid);
    if (d < 0) {
        rpc_db_error(r);
        return -1;
    }
    if (d == 1)
        goto gone;
    cJSON *a = NULL;
    int rc = users_author(p, uid, &a);
    if (rc < 0) {
        rpc_db_error(r);
        return -1;
    }
    if (rc == 0) {
        /* An account younger than its user.registered's trip here: ask auth, and keep the answer
         * as version 0, which any event about the user overwrites. */
        cJSON *body = cJSON_CreateObject(), *reply = NULL;
        cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "ids"), cJSON_CreateString(uid));
        int status = pub_rpc(p, "auth", "auth.users_get", body, req->request_id, &reply);
        cJSON_Delete(body);
        const cJSON *u = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "items"), 0);
        const char *name = rpc_field_str(u, "username");
        if (status != 200) {
            cJSON_Delete(reply);
            rpc_unavailable(r, "service-unavailable", "accounts cannot be read now; try again");
            return -1;
        }
        if (name == NULL) {
            cJSON_Delete(reply);
            goto gone;
        }
        int w = users__apply(p, uid, name, rpc_field_str(u, "name"), NULL, NULL, 0);
        cJSON_Delete(reply);
        if (w != 0 || users_author(p, uid, &a) < 0) {
            rpc_db_error(r);
            return -1;
        }
        if (a == NULL)
            goto gone;
    }
    if (author != NULL)
        *author = a;
    else
        cJSON_Delete(a);
    return 1;
gone:
    rpc_unauthorized(r, "account-gone", "this account has been deleted");
    return 0;
}

/* ================================================================ events */

/* Sets the edge from -> to of coll on or off as of at (ms), unless a newer event set it. 0 or -1. */
static int users__edge_set(pub_t *p, const char *coll, const char *from, const char *to, int on, int64_t at)
{
    char *id = xasprintf("%s:%s", from, to);
    bson_t *fields = BCON_NEW("from", BCON_UTF8(from), "to", BCON_UTF8(to), "on", BCON_BOOL(on));
    int rc = users__put_versioned(p, coll, id, "at", at, fields);
    bson_destroy(fields);
    free(id);
    return rc;
}

/* Everything of a deleted account: its projection, edges, posts (each with post.deleted),
 * comments and likes. Each step is safe to repeat, so a redelivery finishes what a crash left. */
static int users__gone(pub_t *p, const char *user_id, const char *request_id)
{
    bson_t *mark = BCON_NEW("_id", BCON_UTF8(user_id), "at", BCON_DATE_TIME(core_wall_ms()));
    int rc = db_insert(p->db, "deleted_users", mark);
    bson_destroy(mark);
    if (rc < 0)
        return -1;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id)), user = BSON_INITIALIZER;
    rc = db_find_one(p->db, "users", f, NULL, &user);
    const char *name = rc == 1 ? db_doc_str(&user, "username") : NULL;
    if (name != NULL) { /* the name, unless a newer account has it already */
        bson_t *n = BCON_NEW("_id", BCON_UTF8(name)), owner = BSON_INITIALIZER;
        int has = db_find_one(p->db, "usernames", n, NULL, &owner);
        const char *oid = has == 1 ? db_doc_str(&owner, "user_id") : NULL;
        if (has < 0 || (oid != NULL && strcmp(oid, user_id) == 0 && db_delete_one(p->db, "usernames", n) < 0))
            rc = -1;
        bson_destroy(&owner);
        bson_destroy(n);
    }
    bson_destroy(&user);
    if (rc >= 0)
        rc = db_delete_one(p->db, "users", f) < 0 ? -1 : 0;
    bson_destroy(f);
    /* the buckets before the edges they mirror; stories and highlights; the feed documents */
    if (rc == 0)
        rc = graph_user_gone(p, user_id) == 0 && stories_user_gone(p, user_id) == 0 &&
                     feed_user_gone(p, user_id) == 0
                 ? 0
                 : -1;
    static const char *const colls[] = {"follows", "blocks"}, *const sides[] = {"from", "to"};
    for (int c = 0; c < 2 && rc == 0; c++)
        for (int s = 0; s < 2 && rc == 0; s++) {
            bson_t *e = BCON_NEW(sides[s], BCON_UTF8(user_id));
            rc = db_delete_many(p->db, colls[c], e) < 0 ? -1 : 0;
            bson_destroy(e);
        }
    /* posts one at a time, oldest first, each deleted with its event */
    for (int guard = 0; rc == 0; guard++) {
        bson_t post = BSON_INITIALIZER;
        bson_t *pf = BCON_NEW("author_id", BCON_UTF8(user_id));
        int found = db_find_one(p->db, "posts", pf, NULL, &post);
        bson_destroy(pf);
        if (found == 1 && posts_delete(p, &post, request_id) < 0)
            found = -1;
        bson_destroy(&post);
        if (found != 1) {
            rc = found < 0 ? -1 : 0;
            break;
        }
        CORE_ASSERT(guard < 10000000);
    }
    if (rc == 0)
        rc = comments_likes_of_user_gone(p, user_id);
    return rc;
}

mq_disposition_t users_on_event(mq_t *mq, const mq_message_t *msg, void *ud)
{
    (void)mq;
    pub_t *p = ud;
    const char *key = msg->routing_key != NULL ? msg->routing_key : "";
    cJSON *body = json_parse_object(msg->body, msg->body_len, 1 << 20, 16, NULL);
    mq_disposition_t d = MQ_ACK;
    int rc = 0, bad = 0;
    if (strcmp(key, "user.registered") == 0 || strcmp(key, "user.updated") == 0) {
        const char *uid = rpc_field_str(body, "user_id"), *username = rpc_field_str(body, "username");
        int updated = key[5] == 'u';
        int64_t v = json_time_ms(rpc_field_str(body, updated ? "updated_at" : "created_at"));
        const char *media = updated ? rpc_field_str(body, "avatar_media_id") : NULL;
        if (uid == NULL || username == NULL || v < 0) {
            bad = 1;
        } else {
            char *url = NULL;
            int a = media != NULL ? rpc_media_thumb(p->rpc, uid, media, msg->request_id, (unsigned)p->conf->rpc_timeout_ms, &url) : 0;
            rc = a < 0 ? -1 : users__apply(p, uid, username, rpc_field_str(body, "name"), media, url, v);
            free(url);
        }
    } else if (strcmp(key, "user.deleted") == 0) {
        const char *uid = rpc_field_str(body, "user_id");
        if (uid == NULL)
            bad = 1;
        else
            rc = users__gone(p, uid, msg->request_id);
    } else if (strncmp(key, "follow.", 7) == 0 || strncmp(key, "block.", 6) == 0) {
        int follow = key[0] == 'f', on = strstr(key, ".created") != NULL;
        const char *from = rpc_field_str(body, follow ? "follower_id" : "blocker_id"),
                   *to = rpc_field_str(body, follow ? "followee_id" : "blocked_id");
        int64_t at = json_time_ms(rpc_field_str(body, on ? "created_at" : "deleted_at"));
        if (from == NULL || to == NULL || at < 0 || (!on && strstr(key, ".deleted") == NULL)) {
            bad = 1;
        } else {
            int gone = users_gone(p, from), gone2 = gone == 0 ? users_gone(p, to) : 0;
            if (gone < 0 || gone2 < 0)
                rc = -1;
            else if (gone == 0 && gone2 == 0) {
                rc = users__edge_set(p, follow ? "follows" : "blocks", from, to, on, at);
                /* block.created implies both follows between them are gone */
                if (rc == 0 && !follow && on)
                    rc = users__edge_set(p, "follows", from, to, 0, at) != 0 ||
                                 users__edge_set(p, "follows", to, from, 0, at) != 0
                             ? -1
                             : 0;
                /* the buckets and timelines follow the edges, even for a stale event */
                if (rc == 0 && follow)
                    rc = graph_follow_sync(p, from, to);
                else if (rc == 0 && on)
                    rc = graph_block_sync(p, from, to);
            }
        }
    } else {
        bad = 1;
    }
    if (bad) {
        log_warn(msg->request_id, "%s %s is not an event publication understands: dead-lettered", key,
                 msg->message_id != NULL ? msg->message_id : "-");
        d = MQ_DEAD;
    } else if (rc != 0) {
        d = MQ_RETRY;
    }
    cJSON_Delete(body);
    return d;
}
