/* stories.c -- stories: 24-hour media of a user for its followers, seen marks, the stories feed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "pub.h"

/* Stories of the purge's one read; it reads again while a read comes back full. */
#define STORIES__PURGE_BATCH 500
/* A seen mark is dropped from its viewer's bucket this long after its story expired at the
 * latest (ObjectId seconds are truncated; a story is made a moment after its id). */
#define STORIES__SEEN_SLACK_MS (60 * 1000)

/* ================================================================ store */

int stories_load(pub_t *p, const char *id, bson_t *out)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_find_one(p->db, "stories", f, NULL, out);
    bson_destroy(f);
    return rc;
}

/* 1 if doc has the boolean member key set to true. */
static int stories__flag(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
}

int stories_active(const bson_t *story, int64_t now_ms)
{
    return db_doc_ms(story, "expires_at") > now_ms && !stories__flag(story, "deleting");
}

static int stories__has(const pub_ids_t *set, const char *id)
{
    return set != NULL && pub_ids_has(set, id);
}

/* ---------------------------------------------------------------- a user's active stories */

/* Documents of one user's active stories, oldest first. */
typedef struct {
    bson_t **docs;
    size_t n;
} stories__set_t;

static void stories__set_free(stories__set_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        bson_destroy(s->docs[i]);
    free(s->docs);
    memset(s, 0, sizeof(*s));
}

static int stories__by_id(const void *a, const void *b)
{
    return strcmp(db_doc_str(*(bson_t *const *)a, "_id"), db_doc_str(*(bson_t *const *)b, "_id"));
}

/* The active stories of owner at now, oldest first (ids are time-ordered), read from its bucket
 * by _id one at a time. Ids whose story is gone are pulled from the bucket: a story is inserted
 * before its id is added and leaves the bucket before it is deleted, so such an id is a leftover
 * of a failed write, never a story being made. 0 or -1. */
static int stories__active_of(pub_t *p, const char *owner, int64_t now, stories__set_t *out)
{
    memset(out, 0, sizeof(*out));
    pub_ids_t ids;
    if (store_ids_load(p, "user_stories", owner, "ids", &ids) != 0)
        return -1;
    const char **gone = xcalloc(ids.n + 1, sizeof(*gone));
    size_t ngone = 0;
    int rc = 0;
    for (size_t i = 0; i < ids.n && rc == 0; i++) {
        /* on the stack: db_find_one copies into its out, which a bson_new() would leak */
        bson_t doc = BSON_INITIALIZER;
        int found = stories_load(p, ids.ids[i], &doc);
        if (found < 0)
            rc = -1;
        else if (found == 0)
            gone[ngone++] = ids.ids[i];
        const char *o = found == 1 ? db_doc_str(&doc, "owner_id") : NULL;
        if (found == 1 && o != NULL && strcmp(o, owner) == 0 && db_doc_str(&doc, "_id") != NULL &&
            stories_active(&doc, now)) {
            out->docs = xrealloc(out->docs, (out->n + 1) * sizeof(*out->docs));
            out->docs[out->n++] = bson_copy(&doc);
        }
        bson_destroy(&doc);
    }
    if (rc == 0 && ngone > 0 &&
        store_ids_change(p, "user_stories", owner, "ids", "$pullAll", gone, ngone) != 0)
        log_warn(NULL, "user_stories %s: leftover ids stay for now", owner); /* the next read tries again */
    free(gone);
    pub_ids_free(&ids);
    if (rc != 0) {
        stories__set_free(out);
        return -1;
    }
    if (out->n > 1) /* qsort of a NULL array, even of none, is undefined */
        qsort(out->docs, out->n, sizeof(*out->docs), stories__by_id);
    return 0;
}

/* ---------------------------------------------------------------- deletion */

/* Deletes a story with its place in its owner's bucket and highlights. It is first marked
 * `deleting`: from then on it is not active, a highlight made meanwhile drops it again (see
 * highlights_create), and a delete cut short is finished by the purge. 1 deleted, 0 it was not
 * there, -1. */
static int stories__delete(pub_t *p, const char *id, const char *owner)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *u = BCON_NEW("$set", "{", "deleting", BCON_BOOL(true), "}");
    int rc = db_update_one(p->db, "stories", f, u, 0);
    bson_destroy(u);
    if (rc > 0) {
        const char *one[1] = {id};
        if (highlights_drop_story(p, owner, id) != 0 ||
            store_ids_change(p, "user_stories", owner, "ids", "$pull", one, 1) != 0 ||
            db_delete_one(p->db, "stories", f) < 0)
            rc = -1;
    }
    bson_destroy(f);
    return rc < 0 ? -1 : rc > 0 ? 1 : 0;
}

/* An expired story leaves its owner's bucket, then the collection; highlights keep their copies
 * (README: they outlive the 24 hours). In that order, so a purge cut short leaves a document that
 * the next purge finds again. 0 or -1. */
static int stories__expire(pub_t *p, const char *id, const char *owner)
{
    const char *one[1] = {id};
    if (store_ids_change(p, "user_stories", owner, "ids", "$pull", one, 1) != 0)
        return -1;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_delete_one(p->db, "stories", f) < 0 ? -1 : 0;
    bson_destroy(f);
    return rc;
}

typedef struct {
    char **ids, **owners;
    int *deleting;
    size_t n;
} stories__purge_t;

static int stories__purge_keep(const bson_t *doc, void *ud)
{
    stories__purge_t *b = ud;
    const char *id = db_doc_str(doc, "_id"), *owner = db_doc_str(doc, "owner_id");
    if (id == NULL || owner == NULL)
        return 0;
    b->ids = xrealloc(b->ids, (b->n + 1) * sizeof(*b->ids));
    b->owners = xrealloc(b->owners, (b->n + 1) * sizeof(*b->owners));
    b->deleting = xrealloc(b->deleting, (b->n + 1) * sizeof(*b->deleting));
    b->ids[b->n] = xstrdup(id);
    b->owners[b->n] = xstrdup(owner);
    b->deleting[b->n++] = stories__flag(doc, "deleting");
    return 0;
}

static void stories__purge_free(stories__purge_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->ids[i]);
        free(b->owners[i]);
    }
    free(b->ids);
    free(b->owners);
    free(b->deleting);
    memset(b, 0, sizeof(*b));
}

int stories_purge(pub_t *p)
{
    /* The one query that is not by _id: periodic, and the collection holds a day of stories. */
    int64_t now = core_wall_ms();
    bson_t *f = BCON_NEW("$or", "[", "{", "expires_at", "{", "$lte", BCON_DATE_TIME(now), "}", "}", "{",
                         "deleting", BCON_BOOL(true), "}", "]");
    bson_t *opts = BCON_NEW("limit", BCON_INT64(STORIES__PURGE_BATCH));
    int rc = 0;
    long purged = 0;
    for (int round = 0; round < 1000 && rc == 0; round++) {
        stories__purge_t b = {0};
        long n = db_each(p->db, "stories", f, opts, stories__purge_keep, &b);
        if (n < 0)
            rc = -1;
        for (size_t i = 0; i < b.n && rc == 0; i++) {
            /* a delete cut short (marked, not finished) still owes the highlights */
            if (b.deleting[i])
                rc = stories__delete(p, b.ids[i], b.owners[i]) < 0 ? -1 : 0;
            else
                rc = stories__expire(p, b.ids[i], b.owners[i]);
            purged++;
        }
        stories__purge_free(&b);
        if (n < STORIES__PURGE_BATCH)
            break;
    }
    bson_destroy(f);
    bson_destroy(opts);
    if (purged > 0)
        log_info(NULL, "stories purge: %ld expired or abandoned stories deleted%s", purged,
                 rc != 0 ? " before a database error" : "");
    return rc;
}

int stories_user_gone(pub_t *p, const char *user_id)
{
    pub_ids_t ids;
    if (store_ids_load(p, "user_stories", user_id, "ids", &ids) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < ids.n && rc == 0; i++) {
        /* its highlights go whole below: no copy to take out of them one by one */
        bson_t *f = BCON_NEW("_id", BCON_UTF8(ids.ids[i]));
        rc = db_delete_one(p->db, "stories", f) < 0 ? -1 : 0;
        bson_destroy(f);
    }
    pub_ids_free(&ids);
    static const char *const buckets[] = {"user_stories", "story_seen"};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(buckets) && rc == 0; i++) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
        rc = db_delete_one(p->db, buckets[i], f) < 0 ? -1 : 0;
        bson_destroy(f);
    }
    /* Its seen marks of others' stories go with story_seen; others' marks of its stories are
     * dropped from their buckets as those stories age (stories__prune_seen). */
    return rc == 0 ? highlights_user_gone(p, user_id) : -1;
}

/* ================================================================ the Story shape */

/* The Story JSON of a stored story for caller (NULL: anonymous) with its seen marks (may be
 * NULL); NULL with *err = 1 on a database error, NULL with *err = 0 when its author is gone. */
static cJSON *stories__json(pub_authors_t *authors, const bson_t *story, const char *caller,
                            const pub_ids_t *seen, int *err)
{
    *err = 0;
    const char *id = db_doc_str(story, "_id"), *owner = db_doc_str(story, "owner_id");
    const cJSON *author = id != NULL && owner != NULL ? users_authors_get(authors, owner, err) : NULL;
    if (author == NULL)
        return NULL;
    cJSON *o = cJSON_CreateObject(), *media = store_member_json(story, "media");
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddItemToObject(o, "author", cJSON_Duplicate(author, 1));
    cJSON_AddItemToObject(o, "media", media != NULL ? media : cJSON_CreateObject());
    json_add_time(o, "created_at", db_doc_ms(story, "created_at"));
    json_add_time(o, "expires_at", db_doc_ms(story, "expires_at"));
    /* one's own stories are never "seen": the mark is a viewer's */
    int seen_it = caller != NULL && strcmp(caller, owner) != 0 && stories__has(seen, id);
    cJSON_AddBoolToObject(o, "seen", seen_it);
    return o;
}

/* ================================================================ visibility */

/* 1 if viewer (NULL: anonymous) may see owner's stories, leaving blocks aside (the callers check
 * those): the owner itself and its followers. 0, or -1. */
static int stories__may_see(pub_t *p, const char *viewer, const char *owner)
{
    if (viewer == NULL)
        return 0;
    if (strcmp(viewer, owner) == 0)
        return 1;
    return graph_follows(p, viewer, owner);
}

/* ================================================================ create, delete, seen */

void stories_create(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    static const rpc_field_t fields[] = {{"media_id", 1, 0, 1, 64, 0}};
    cJSON *errors = NULL, *ids = NULL, *media = NULL;
    pub_authors_t *authors = NULL;
    bson_t *doc = NULL;
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        return;
    errors = cJSON_CreateObject();
    rpc_fields_check(body, fields, CORE_ARRAY_SIZE(fields), errors);
    if (rpc_invalid_fields(r, &errors) || users_caller(p, req, r, NULL) != 1)
        goto out;
    const char *uid = req->user_id;
    ids = cJSON_CreateArray();
    cJSON_AddItemToArray(ids, cJSON_CreateString(rpc_field_str(body, "media_id")));
    media = posts_media(p, req, r, ids, "media_id"); /* 422 errors.media_id, 403, 503 */
    if (media == NULL)
        goto out;
    char id[25];
    db_new_id(id);
    int64_t now = core_wall_ms();
    doc = BCON_NEW("_id", BCON_UTF8(id), "owner_id", BCON_UTF8(uid));
    store_append_json(doc, "media", cJSON_GetArrayItem(media, 0));
    BSON_APPEND_DATE_TIME(doc, "created_at", now);
    BSON_APPEND_DATE_TIME(doc, "expires_at", now + p->conf->story_ttl_ms);
    if (db_insert(p->db, "stories", doc) != 0) {
        rpc_db_error(r);
        goto out;
    }
    /* The document first, then its id in the bucket: an id in a bucket always has its story. */
    const char *one[1] = {id};
    if (store_ids_change(p, "user_stories", uid, "ids", "$addToSet", one, 1) != 0) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
        db_delete_one(p->db, "stories", f); /* else left to the purge: not in the bucket, never shown */
        bson_destroy(f);
        rpc_db_error(r);
        goto out;
    }
    /* The account's user.deleted may have swept its stories while this one was being made: then
     * this one goes too (stories_user_gone reads the bucket after the deletion mark). */
    if (users_gone(p, uid) == 1) {
        stories__delete(p, id, uid);
        rpc_unauthorized(r, "account-gone", "this account has been deleted");
        goto out;
    }
    authors = users_authors_new(p);
    int err;
    cJSON *o = stories__json(authors, doc, uid, NULL, &err);
    if (o == NULL) {
        if (err)
            rpc_db_error(r);
        else
            rpc_unauthorized(r, "account-gone", "this account has been deleted");
        goto out;
    }
    rpc_json(r, 201, o);
out:
    users_authors_free(authors);
    bson_destroy(doc);
    cJSON_Delete(media);
    cJSON_Delete(ids);
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

void stories_remove(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    bson_t story = BSON_INITIALIZER;
    if (users_caller(p, req, r, NULL) != 1 ||
        store_visible(p, req, r, "stories", "owner_id", "story", &story) != 1)
        goto out;
    const char *owner = db_doc_str(&story, "owner_id");
    if (strcmp(owner, req->user_id) != 0) {
        rpc_problem(r, 403, "forbidden", "only its author deletes a story", NULL);
        goto out;
    }
    /* An expired story not purged yet is still the owner's to delete (and leaves its highlights). */
    int rc = stories__delete(p, db_doc_str(&story, "_id"), owner);
    if (rc < 0)
        rpc_db_error(r);
    else if (rc == 0)
        rpc_not_found(r, "no such story"); /* a concurrent delete or purge won */
    else
        rpc_no_content(r);
out:
    bson_destroy(&story);
}

void stories_mark_seen(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    bson_t story = BSON_INITIALIZER;
    if (users_caller(p, req, r, NULL) != 1 ||
        store_visible(p, req, r, "stories", "owner_id", "story", &story) != 1)
        goto out;
    const char *id = db_doc_str(&story, "_id"), *owner = db_doc_str(&story, "owner_id");
    int v = stories_active(&story, core_wall_ms()) ? stories__may_see(p, req->user_id, owner) : 0;
    if (v < 0) {
        rpc_db_error(r);
        goto out;
    }
    if (v == 0) {
        rpc_not_found(r, "no such story");
        goto out;
    }
    /* One's own story: 204 with nothing stored, as its Story never says seen. $addToSet makes a
     * repeated mark change nothing. */
    if (strcmp(owner, req->user_id) != 0) {
        const char *one[1] = {id};
        if (store_ids_change(p, "story_seen", req->user_id, "ids", "$addToSet", one, 1) != 0) {
            rpc_db_error(r);
            goto out;
        }
        if (users_gone(p, req->user_id) == 1) { /* deleted meanwhile: its marks go (again) */
            bson_t *f = BCON_NEW("_id", BCON_UTF8(req->user_id));
            db_delete_one(p->db, "story_seen", f);
            bson_destroy(f);
            rpc_unauthorized(r, "account-gone", "this account has been deleted");
            goto out;
        }
    }
    rpc_no_content(r);
out:
    bson_destroy(&story);
}

/* ================================================================ lists */

void stories_of_user(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    char uid[64], after[64];
    long limit;
    stories__set_t set = {0};
    pub_ids_t seen = {0};
    pub_authors_t *authors = NULL;
    cJSON *out = NULL;
    /* All active stories in one page (README); limit and cursor are still checked like any list's,
     * so a bad one is refused as elsewhere, but a page is never cut. */
    if (lists_page_args(p, req, r, "user_stories", &limit, after, sizeof(after)) != 0 ||
        users_from_path(p, req, r, uid) != 1)
        return;
    const char *caller = req->user_id;
    int v = stories__may_see(p, caller, uid);
    if (v < 0)
        goto fail;
    out = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(out, "items");
    cJSON_AddNullToObject(out, "next_cursor");
    if (v == 0) { /* anonymous, or not a follower: nothing to see, which is not an error */
        rpc_json(r, 200, out);
        return;
    }
    if (stories__active_of(p, uid, core_wall_ms(), &set) != 0 ||
        (strcmp(caller, uid) != 0 && store_ids_load(p, "story_seen", caller, "ids", &seen) != 0))
        goto fail;
    authors = users_authors_new(p);
    for (size_t i = 0; i < set.n; i++) {
        int err;
        cJSON *o = stories__json(authors, set.docs[i], caller, &seen, &err);
        if (err)
            goto fail;
        if (o != NULL)
            cJSON_AddItemToArray(items, o);
    }
    rpc_json(r, 200, out);
    out = NULL;
    goto done;
fail:
    rpc_db_error(r);
done:
    cJSON_Delete(out);
    users_authors_free(authors);
    pub_ids_free(&seen);
    stories__set_free(&set);
}

/* ---------------------------------------------------------------- the stories feed */

/* One account of the feed: its active stories and where it sorts. */
typedef struct {
    char key[160]; /* ascending = feed order; also the cursor of a page ending here */
    const cJSON *author;
    int unseen;
    stories__set_t set;
} stories__entry_t;

static int stories__by_key(const void *a, const void *b)
{
    return strcmp(((const stories__entry_t *)a)->key, ((const stories__entry_t *)b)->key);
}

/* The sort key of an account: '0' with an unseen story, else '1'; then the id of its newest
 * story with every hex digit inverted (so newer sorts first); then its user id (one key per
 * account). Pages are the accounts whose key is above the cursor's: an account that moves
 * meanwhile (a new story, all seen) may show again or be missed, as in any list sorted by a key
 * that changes; nothing else shifts. */
static void stories__entry_key(stories__entry_t *e, const char *newest, const char *user)
{
    char inv[PUB_ID_LEN + 1];
    for (size_t i = 0; i < PUB_ID_LEN; i++) {
        char c = newest[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
        inv[i] = "fedcba9876543210"[v];
    }
    inv[PUB_ID_LEN] = '\0';
    snprintf(e->key, sizeof(e->key), "%c%s:%s", e->unseen ? '0' : '1', inv, user);
}

/* Drops from the caller's seen bucket the marks of stories that expired (their id's time plus
 * STORY_TTL and a slack is past) and are not among the active stories just read: the bucket
 * stays about a day long. Best effort: a failure leaves them for the next read. */
static void stories__prune_seen(pub_t *p, const char *caller, const pub_ids_t *seen,
                                const stories__entry_t *e, size_t n, int64_t now)
{
    const char **old = xcalloc(seen->n + 1, sizeof(*old));
    size_t nold = 0;
    for (size_t i = 0; i < seen->n; i++) {
        const char *id = seen->ids[i];
        if (!pub_id_valid(id))
            continue;
        char secs[9];
        memcpy(secs, id, 8);
        secs[8] = '\0';
        int64_t made = (int64_t)strtoul(secs, NULL, 16) * 1000;
        if (made + p->conf->story_ttl_ms + STORIES__SEEN_SLACK_MS >= now)
            continue;
        int active = 0;
        for (size_t k = 0; k < n && !active; k++)
            for (size_t j = 0; j < e[k].set.n && !active; j++)
                active = strcmp(db_doc_str(e[k].set.docs[j], "_id"), id) == 0;
        if (!active)
            old[nold++] = id;
    }
    if (nold > 0 && store_ids_change(p, "story_seen", caller, "ids", "$pullAll", old, nold) != 0)
        log_warn(NULL, "story_seen %s: expired marks stay for now", caller);
    free(old);
}

void stories_feed(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    char after[160];
    long limit;
    if (lists_page_args(p, req, r, "stories_feed", &limit, after, sizeof(after)) != 0)
        return;
    const char *caller = req->user_id;
    int64_t now = core_wall_ms();
    pub_ids_t following = {0}, seen = {0};
    pub_authors_t *authors = users_authors_new(p);
    stories__entry_t *e = NULL;
    size_t n = 0;
    cJSON *out = NULL;
    if (graph_following(p, caller, &following) != 0 ||
        store_ids_load(p, "story_seen", caller, "ids", &seen) != 0)
        goto fail;
    /* Every followed account with active stories, then sorted: the order depends on seen marks
     * and the newest story, which no stored index holds. Reads are by _id only (README, Store). */
    e = xcalloc(following.n + 1, sizeof(*e));
    for (size_t i = 0; i < following.n; i++) {
        const char *uid = following.ids[i];
        if (strcmp(uid, caller) == 0 || strlen(uid) > 100)
            continue;
        stories__entry_t *x = &e[n];
        if (stories__active_of(p, uid, now, &x->set) != 0)
            goto fail;
        if (x->set.n == 0)
            continue;
        int err = 0, h = users_hidden(p, caller, uid);
        x->author = h == 0 ? users_authors_get(authors, uid, &err) : NULL;
        if (h < 0 || err)
            goto fail;
        if (x->author == NULL) { /* a block between them, or the account is gone */
            stories__set_free(&x->set);
            continue;
        }
        for (size_t j = 0; j < x->set.n && !x->unseen; j++)
            x->unseen = !stories__has(&seen, db_doc_str(x->set.docs[j], "_id"));
        stories__entry_key(x, db_doc_str(x->set.docs[x->set.n - 1], "_id"), uid);
        n++;
    }
    if (n > 1)
        qsort(e, n, sizeof(*e), stories__by_key);
    out = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(out, "items");
    const char *next = NULL;
    long have = 0;
    for (size_t i = 0; i < n; i++) {
        if (after[0] != '\0' && strcmp(e[i].key, after) <= 0)
            continue;
        if (have == limit) {
            next = e[i - 1].key; /* more follow: the page ends at the last one shown */
            break;
        }
        cJSON *item = cJSON_CreateObject(), *stories = cJSON_CreateArray();
        cJSON_AddItemToObject(item, "user", cJSON_Duplicate(e[i].author, 1));
        cJSON_AddBoolToObject(item, "has_unseen", e[i].unseen);
        for (size_t j = 0; j < e[i].set.n; j++) {
            int err;
            cJSON *s = stories__json(authors, e[i].set.docs[j], caller, &seen, &err);
            if (s != NULL)
                cJSON_AddItemToArray(stories, s);
        }
        cJSON_AddItemToObject(item, "stories", stories);
        cJSON_AddItemToArray(items, item);
        have++;
    }
    lists_add_next(p, out, "stories_feed", next);
    stories__prune_seen(p, caller, &seen, e, n, now);
    rpc_json(r, 200, out);
    out = NULL;
    goto done;
fail:
    rpc_db_error(r);
done:
    cJSON_Delete(out);
    for (size_t i = 0; i <= n && e != NULL; i++)
        stories__set_free(&e[i].set);
    free(e);
    users_authors_free(authors);
    pub_ids_free(&following);
    pub_ids_free(&seen);
}
