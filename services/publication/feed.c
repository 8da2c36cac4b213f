/* feed.c -- home timelines: entries written by fanout, follows and deletions; pages read with the
 * posts of large accounts merged in. */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "core/core.h"
#include "log/log.h"
#include "pub.h"

/* A timeline entry is "<post id>:<author id>": post ids are time-ordered, so entries sort by
 * their first 24 characters, and the author says whose posts leave on unfollow and block. */
#define FEED_ENTRY_ID_LEN PUB_ID_LEN

typedef struct {
    char **v;
    size_t n;
} feed__strs_t;

static void feed__strs_free(feed__strs_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static void feed__strs_add(feed__strs_t *s, const char *v)
{
    s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
    s->v[s->n++] = xstrdup(v);
}

/* Newest first: by post id, descending (entries and bare post ids alike). */
static int feed__newest_first(const void *a, const void *b)
{
    return -strncmp(*(char *const *)a, *(char *const *)b, FEED_ENTRY_ID_LEN);
}

/* Sorts s newest first (qsort must not see the NULL of an empty one). */
static void feed__sort(feed__strs_t *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(*s->v), feed__newest_first);
}

/* The strings of array member key of document id of coll, into out (empty when none). */
static int feed__load(pub_t *p, const char *coll, const char *id, const char *key, feed__strs_t *out)
{
    memset(out, 0, sizeof(*out));
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id)), doc = BSON_INITIALIZER;
    int rc = db_find_one(p->db, coll, f, NULL, &doc);
    bson_iter_t it, arr;
    if (rc == 1 && bson_iter_init_find(&it, &doc, key) && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr))
            if (BSON_ITER_HOLDS_UTF8(&arr))
                feed__strs_add(out, bson_iter_utf8(&arr, NULL));
    bson_destroy(&doc);
    bson_destroy(f);
    return rc < 0 ? -1 : 0;
}

/* Removes the values vals (n of them) from array member key of document id of coll. 0 or -1. */
static int feed__pull_all(pub_t *p, const char *coll, const char *id, const char *key, char *const *vals, size_t n)
{
    if (n == 0)
        return 0;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id)), *u = bson_new(), op, arr;
    bson_append_document_begin(u, "$pullAll", -1, &op);
    bson_append_array_begin(&op, key, -1, &arr);
    for (size_t i = 0; i < n; i++) {
        char k[16];
        const char *kp;
        bson_uint32_to_string((uint32_t)i, &kp, k, sizeof(k));
        bson_append_utf8(&arr, kp, -1, vals[i], -1);
    }
    bson_append_array_end(&op, &arr);
    bson_append_document_end(u, &op);
    int rc = db_update_one(p->db, coll, f, u, 0) < 0 ? -1 : 0;
    bson_destroy(u);
    bson_destroy(f);
    return rc;
}

/* Cuts array member key of document id back to the newest keep values, when it holds more than
 * keep plus an eighth (so a trim is worth its write). 0 or -1. */
static int feed__trim(pub_t *p, const char *coll, const char *id, const char *key, size_t keep)
{
    feed__strs_t s;
    if (feed__load(p, coll, id, key, &s) != 0)
        return -1;
    int rc = 0;
    if (s.n > keep + keep / 8) {
        feed__sort(&s);
        rc = feed__pull_all(p, coll, id, key, s.v + keep, s.n - keep);
    }
    feed__strs_free(&s);
    return rc;
}

/* About one in FEED_TRIM_EVERY (timeline, post) pairs, spread by a hash of both. */
static int feed__trim_due(pub_t *p, const char *post_id, const char *user)
{
    uint32_t h = 2166136261u;
    for (const char *s = post_id; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    for (const char *s = user; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h % (uint32_t)p->conf->feed_trim_every == 0;
}

/* ================================================================ writes */

/* One $addToSet (add) or $pull of entry on each of the n timelines, in one bulk write. */
static int feed__each(pub_t *p, const char *entry, const char *const *users, size_t n, int add)
{
    bson_t **f = xcalloc(n + 1, sizeof(*f)), **u = xcalloc(n + 1, sizeof(*u));
    for (size_t i = 0; i < n; i++) {
        f[i] = BCON_NEW("_id", BCON_UTF8(users[i]));
        u[i] = BCON_NEW(add ? "$addToSet" : "$pull", "{", "e", BCON_UTF8(entry), "}");
    }
    int rc = db_update_bulk(p->db, "timelines", f, u, n, add);
    for (size_t i = 0; i < n; i++) {
        bson_destroy(f[i]);
        bson_destroy(u[i]);
    }
    free(f);
    free(u);
    return rc;
}

int feed_add(pub_t *p, const char *post_id, const char *author, const char *const *users, size_t n)
{
    char *entry = xasprintf("%s:%s", post_id, author);
    int rc = feed__each(p, entry, users, n, 1);
    free(entry);
    for (size_t i = 0; i < n && rc == 0; i++)
        if (feed__trim_due(p, post_id, users[i]))
            rc = feed__trim(p, "timelines", users[i], "e", (size_t)p->conf->feed_max_items);
    return rc;
}

int feed_remove(pub_t *p, const char *post_id, const char *author, const char *const *users, size_t n)
{
    char *entry = xasprintf("%s:%s", post_id, author);
    int rc = feed__each(p, entry, users, n, 0);
    free(entry);
    return rc;
}

/* 1 if entry is by author ("<post id>:<author>"). */
static int feed__by(const char *entry, const char *author)
{
    const char *colon = strchr(entry, ':');
    return colon != NULL && strcmp(colon + 1, author) == 0;
}

int feed_remove_author(pub_t *p, const char *user, const char *author)
{
    feed__strs_t s, gone = {0};
    if (feed__load(p, "timelines", user, "e", &s) != 0)
        return -1;
    for (size_t i = 0; i < s.n; i++)
        if (feed__by(s.v[i], author))
            feed__strs_add(&gone, s.v[i]);
    int rc = feed__pull_all(p, "timelines", user, "e", gone.v, gone.n);
    feed__strs_free(&gone);
    feed__strs_free(&s);
    return rc;
}

int feed_backfill(pub_t *p, const char *user, const char *author)
{
    feed__strs_t posts, merged;
    if (feed__load(p, "recent", author, "p", &posts) != 0)
        return -1;
    if (feed__load(p, "recent", author, "u", &merged) != 0) {
        feed__strs_free(&posts);
        return -1;
    }
    /* the newest FEED_BACKFILL fanned-out ones; merged posts come at read time */
    feed__sort(&posts);
    bson_t *u = bson_new(), op, each, arr;
    bson_append_document_begin(u, "$addToSet", -1, &op);
    bson_append_document_begin(&op, "e", -1, &each);
    bson_append_array_begin(&each, "$each", -1, &arr);
    uint32_t k = 0;
    for (size_t i = 0; i < posts.n && k < (uint32_t)p->conf->feed_backfill; i++) {
        int skip = 0;
        for (size_t j = 0; j < merged.n && !skip; j++)
            skip = strcmp(merged.v[j], posts.v[i]) == 0;
        if (skip)
            continue;
        char key[16], *entry = xasprintf("%s:%s", posts.v[i], author);
        const char *kp;
        bson_uint32_to_string(k++, &kp, key, sizeof(key));
        bson_append_utf8(&arr, kp, -1, entry, -1);
        free(entry);
    }
    bson_append_array_end(&each, &arr);
    bson_append_document_end(&op, &each);
    bson_append_document_end(u, &op);
    int rc = 0;
    if (k > 0) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(user));
        rc = db_update_one(p->db, "timelines", f, u, 1) < 0 ? -1 : 0;
        bson_destroy(f);
        if (rc == 0)
            rc = feed__trim(p, "timelines", user, "e", (size_t)p->conf->feed_max_items);
    }
    bson_destroy(u);
    feed__strs_free(&posts);
    feed__strs_free(&merged);
    return rc;
}

int feed_post_created(pub_t *p, const char *post_id, const char *author)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(author));
    bson_t *u = BCON_NEW("$addToSet", "{", "p", BCON_UTF8(post_id), "}");
    int rc = db_update_one(p->db, "recent", f, u, 1) < 0 ? -1 : 0;
    bson_destroy(u);
    bson_destroy(f);
    if (rc == 0)
        rc = feed_add(p, post_id, author, &author, 1);
    if (rc == 0) { /* recent keeps FEED_MAX_ITEMS; merged ids older than those leave with them */
        feed__strs_t s;
        if (feed__load(p, "recent", author, "p", &s) != 0)
            return -1;
        size_t keep = (size_t)p->conf->feed_max_items;
        if (s.n > keep + keep / 8) {
            feed__sort(&s);
            rc = feed__pull_all(p, "recent", author, "u", s.v + keep, s.n - keep) == 0 &&
                         feed__pull_all(p, "recent", author, "p", s.v + keep, s.n - keep) == 0
                     ? 0
                     : -1;
        }
        feed__strs_free(&s);
    }
    return rc;
}

int feed_post_merged(pub_t *p, const char *post_id, const char *author)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(author));
    bson_t *u = BCON_NEW("$addToSet", "{", "u", BCON_UTF8(post_id), "}");
    int rc = db_update_one(p->db, "recent", f, u, 1) < 0 ? -1 : 0;
    bson_destroy(u);
    bson_destroy(f);
    if (rc == 0) {
        f = BCON_NEW("_id", BCON_UTF8("merged"));
        u = BCON_NEW("$addToSet", "{", "ids", BCON_UTF8(author), "}");
        rc = db_update_one(p->db, "feed_meta", f, u, 1) < 0 ? -1 : 0;
        bson_destroy(u);
        bson_destroy(f);
    }
    return rc;
}

int feed_post_deleted(pub_t *p, const char *post_id, const char *author, int *was_merged)
{
    feed__strs_t merged;
    if (feed__load(p, "recent", author, "u", &merged) != 0)
        return -1;
    *was_merged = 0;
    for (size_t i = 0; i < merged.n; i++)
        *was_merged |= strcmp(merged.v[i], post_id) == 0;
    feed__strs_free(&merged);
    char *ids[1] = {(char *)post_id};
    int rc = feed__pull_all(p, "recent", author, "u", ids, 1) == 0 && feed__pull_all(p, "recent", author, "p", ids, 1) == 0
                 ? 0
                 : -1;
    return rc == 0 ? feed_remove(p, post_id, author, &author, 1) : -1;
}

int feed_user_gone(pub_t *p, const char *user_id)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
    int rc = db_delete_one(p->db, "timelines", f) < 0 || db_delete_one(p->db, "recent", f) < 0 ? -1 : 0;
    bson_destroy(f);
    if (rc == 0) {
        char *ids[1] = {(char *)user_id};
        rc = feed__pull_all(p, "feed_meta", "merged", "ids", ids, 1);
    }
    return rc;
}

/* ================================================================ reading a page */

typedef struct {
    pub_t *p;
    const char *caller;
    GHashTable *authors_ok; /* whose posts belong in the caller's feed: itself and whom it follows */
    feed__strs_t cand;      /* entries "<post id>:<author>", newest first, distinct posts */
} feed__page_t;

/* Adds the entries of list (newest first, already cut to the cap) that are older than after and
 * by an author the caller follows, skipping posts already there. */
static void feed__take(feed__page_t *pg, GHashTable *seen, char *const *list, size_t n, const char *after,
                       const char *author)
{
    for (size_t i = 0; i < n; i++) {
        const char *e = list[i];
        if (strlen(e) < FEED_ENTRY_ID_LEN || (after[0] != '\0' && strncmp(e, after, FEED_ENTRY_ID_LEN) >= 0))
            continue;
        char *a = author != NULL ? xstrdup(author) : NULL;
        if (a == NULL) {
            const char *colon = strchr(e, ':');
            if (colon == NULL)
                continue;
            a = xstrdup(colon + 1);
        }
        char *post = g_strndup(e, FEED_ENTRY_ID_LEN);
        if (g_hash_table_contains(pg->authors_ok, a) && !g_hash_table_contains(seen, post)) {
            g_hash_table_add(seen, post);
            char *entry = xasprintf("%s:%s", post, a);
            feed__strs_add(&pg->cand, entry);
            free(entry);
        } else {
            g_free(post);
        }
        free(a);
    }
}

/* The candidates of a page: the caller's timeline (trimmed when over the cap) and the merged posts
 * of the large accounts it follows, newest first. 0 or -1. */
static int feed__candidates(feed__page_t *pg, const char *after)
{
    pub_t *p = pg->p;
    size_t cap = (size_t)p->conf->feed_max_items;
    feed__strs_t tl, following, merged;
    int rc = -1;
    memset(&following, 0, sizeof(following));
    memset(&merged, 0, sizeof(merged));
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (feed__load(p, "timelines", pg->caller, "e", &tl) != 0)
        goto out;
    feed__sort(&tl);
    if (tl.n > cap + cap / 8 && feed__pull_all(p, "timelines", pg->caller, "e", tl.v + cap, tl.n - cap) != 0)
        log_warn(NULL, "timeline %s: trim failed (tried again on the next read)", pg->caller);
    if (feed__load(p, "following", pg->caller, "ids", &following) != 0 ||
        feed__load(p, "feed_meta", "merged", "ids", &merged) != 0)
        goto out;
    g_hash_table_add(pg->authors_ok, g_strdup(pg->caller));
    for (size_t i = 0; i < following.n; i++)
        g_hash_table_add(pg->authors_ok, g_strdup(following.v[i]));
    feed__take(pg, seen, tl.v, tl.n < cap ? tl.n : cap, after, NULL);
    for (size_t i = 0; i < merged.n; i++) {
        if (!g_hash_table_contains(pg->authors_ok, merged.v[i]))
            continue;
        feed__strs_t u;
        if (feed__load(p, "recent", merged.v[i], "u", &u) != 0)
            goto out;
        feed__sort(&u);
        feed__take(pg, seen, u.v, u.n < cap ? u.n : cap, after, merged.v[i]);
        feed__strs_free(&u);
    }
    feed__sort(&pg->cand);
    rc = 0;
out:
    g_hash_table_destroy(seen);
    feed__strs_free(&tl);
    feed__strs_free(&following);
    feed__strs_free(&merged);
    return rc;
}

void feed_get(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    char after[64];
    long limit;
    if (lists_page_args(p, req, r, "feed", &limit, after, sizeof(after)) != 0)
        return;
    if (after[0] != '\0' && !pub_id_valid(after)) {
        rpc_problem(r, 400, "bad-cursor", "the cursor is not one this list gave", NULL);
        return;
    }
    feed__page_t pg = {.p = p, .caller = req->user_id};
    pg.authors_ok = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    pub_authors_t *authors = users_authors_new(p);
    cJSON *items = cJSON_CreateArray();
    char *last = NULL;
    int err = 0, more = 0;
    if (feed__candidates(&pg, after) != 0) {
        err = 1;
        goto out;
    }
    /* the posts of the page, looked up by id; one more visible one says there is a next page */
    for (size_t i = 0; i < pg.cand.n && !err; i++) {
        char id[FEED_ENTRY_ID_LEN + 1];
        memcpy(id, pg.cand.v[i], FEED_ENTRY_ID_LEN);
        id[FEED_ENTRY_ID_LEN] = '\0';
        bson_t post = BSON_INITIALIZER;
        int found = posts_load(p, id, &post);
        if (found < 0)
            err = 1;
        else if (found == 1 && (long)cJSON_GetArraySize(items) >= limit) {
            more = 1;
        } else if (found == 1) {
            cJSON *item = posts_json(p, authors, &post, req->user_id, &err);
            if (item != NULL) {
                cJSON_AddItemToArray(items, item);
                free(last);
                last = xstrdup(id);
            }
        }
        bson_destroy(&post);
        if (more)
            break;
    }
out:
    if (err) {
        rpc_db_error(r);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "items", items);
        items = NULL;
        lists_add_next(p, o, "feed", more ? last : NULL);
        rpc_json(r, 200, o);
    }
    cJSON_Delete(items);
    free(last);
    feed__strs_free(&pg.cand);
    g_hash_table_destroy(pg.authors_ok);
    users_authors_free(authors);
}
