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

/* Newest first: by post id, descending (entries and bare post ids alike). */
static int feed__newest_first(const void *a, const void *b)
{
    return -strncmp(*(char *const *)a, *(char *const *)b, FEED_ENTRY_ID_LEN);
}

/* Sorts s newest first (qsort must not see the NULL of an empty one). */
static void feed__sort(pub_ids_t *s)
{
    if (s->n > 1)
        qsort(s->ids, s->n, sizeof(*s->ids), feed__newest_first);
}

/* Cuts array member key of document id back to the newest keep values, when it holds more than
 * keep plus an eighth (so a trim is worth its write). 0 or -1. */
static int feed__trim(pub_t *p, const char *coll, const char *id, const char *key, size_t keep)
{
    pub_ids_t s;
    if (store_ids_load(p, coll, id, key, &s) != 0)
        return -1;
    int rc = 0;
    if (s.n > keep + keep / 8) {
        feed__sort(&s);
        rc = store_ids_change(p, coll, id, key, "$pullAll", (const char *const *)s.ids + keep, s.n - keep);
    }
    pub_ids_free(&s);
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

/* ================================================================ writes
 *
 * A timeline is two documents: its head (timeline_heads), where every entry is added, kept small
 * so that an add rewrites little; and its body (timelines), where a head that has grown past
 * feed__head_max entries is moved (added first, then taken out of the head: an entry is never
 * missing, at most in both for a moment; readers take the union). */

/* The most entries a head holds before it is moved into the body. */
static size_t feed__head_max(pub_t *p)
{
    size_t m = (size_t)p->conf->feed_max_items / 8;
    return m < 4 ? 4 : m > 64 ? 64 : m;
}

/* Moves user's head into its body when it has grown past feed__head_max, and trims the body to
 * FEED_MAX_ITEMS. 0 or -1. */
static int feed__compact(pub_t *p, const char *user)
{
    pub_ids_t head;
    if (store_ids_load(p, "timeline_heads", user, "e", &head) != 0)
        return -1;
    int rc = 0;
    if (head.n > feed__head_max(p)) {
        const char *const *e = (const char *const *)head.ids;
        rc = store_ids_change(p, "timelines", user, "e", "$addToSet", e, head.n) == 0 &&
                     store_ids_change(p, "timeline_heads", user, "e", "$pullAll", e, head.n) == 0 &&
                     feed__trim(p, "timelines", user, "e", (size_t)p->conf->feed_max_items) == 0
                 ? 0
                 : -1;
    }
    pub_ids_free(&head);
    return rc;
}

int feed_add(pub_t *p, const char *post_id, const char *author, const char *const *users, size_t n)
{
    char *entry = xasprintf("%s:%s", post_id, author);
    int rc = store_ids_change_each(p, "timeline_heads", users, n, "e", "$addToSet", entry);
    free(entry);
    for (size_t i = 0; i < n && rc == 0; i++)
        if (feed__trim_due(p, post_id, users[i]))
            rc = feed__compact(p, users[i]);
    return rc;
}

int feed_remove(pub_t *p, const char *post_id, const char *author, const char *const *users, size_t n)
{
    char *entry = xasprintf("%s:%s", post_id, author);
    int rc = store_ids_change_each(p, "timeline_heads", users, n, "e", "$pull", entry) == 0 &&
                     store_ids_change_each(p, "timelines", users, n, "e", "$pull", entry) == 0
                 ? 0
                 : -1;
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
    static const char *const parts[] = {"timeline_heads", "timelines"};
    int rc = 0;
    for (size_t k = 0; k < 2 && rc == 0; k++) {
        pub_ids_t s, gone = {0};
        if (store_ids_load(p, parts[k], user, "e", &s) != 0)
            return -1;
        for (size_t i = 0; i < s.n; i++)
            if (feed__by(s.ids[i], author))
                pub_ids_add(&gone, s.ids[i]);
        rc = store_ids_change(p, parts[k], user, "e", "$pullAll", (const char *const *)gone.ids, gone.n);
        pub_ids_free(&gone);
        pub_ids_free(&s);
    }
    return rc;
}

int feed_backfill(pub_t *p, const char *user, const char *author)
{
    pub_ids_t posts, merged;
    if (store_ids_load(p, "recent", author, "p", &posts) != 0)
        return -1;
    if (store_ids_load(p, "merged_posts", author, "ids", &merged) != 0) {
        pub_ids_free(&posts);
        return -1;
    }
    /* the newest FEED_BACKFILL fanned-out ones; merged posts come at read time */
    feed__sort(&posts);
    pub_ids_t entries = {0};
    for (size_t i = 0; i < posts.n && (long)entries.n < p->conf->feed_backfill; i++)
        if (!pub_ids_has(&merged, posts.ids[i])) {
            char *entry = xasprintf("%s:%s", posts.ids[i], author);
            pub_ids_add(&entries, entry);
            free(entry);
        }
    int rc = store_ids_change(p, "timeline_heads", user, "e", "$addToSet", (const char *const *)entries.ids,
                              entries.n);
    if (rc == 0 && entries.n > 0)
        rc = feed__compact(p, user);
    pub_ids_free(&entries);
    pub_ids_free(&posts);
    pub_ids_free(&merged);
    return rc;
}

int feed_post_created(pub_t *p, const char *post_id, const char *author)
{
    int rc = store_ids_change(p, "recent", author, "p", "$addToSet", &post_id, 1);
    if (rc == 0)
        rc = feed_add(p, post_id, author, &author, 1);
    /* recent keeps FEED_MAX_ITEMS (merged ids older than those leave with them), cut back by about
     * one post in FEED_TRIM_EVERY: not a read of the whole list at every post */
    if (rc == 0 && feed__trim_due(p, post_id, author)) {
        pub_ids_t s;
        if (store_ids_load(p, "recent", author, "p", &s) != 0)
            return -1;
        size_t keep = (size_t)p->conf->feed_max_items;
        if (s.n > keep + keep / 8) {
            feed__sort(&s);
            rc = store_ids_change(p, "merged_posts", author, "ids", "$pullAll",
                                  (const char *const *)s.ids + keep, s.n - keep) == 0 &&
                         store_ids_change(p, "recent", author, "p", "$pullAll",
                                          (const char *const *)s.ids + keep, s.n - keep) == 0
                     ? 0
                     : -1;
        }
        pub_ids_free(&s);
    }
    return rc;
}

int feed_post_merged(pub_t *p, const char *post_id, const char *author)
{
    if (store_ids_change(p, "merged_posts", author, "ids", "$addToSet", &post_id, 1) != 0)
        return -1;
    return store_ids_change(p, "feed_meta", "merged", "ids", "$addToSet", &author, 1);
}

int feed_post_deleted(pub_t *p, const char *post_id, const char *author, int *was_merged)
{
    pub_ids_t merged;
    if (store_ids_load(p, "merged_posts", author, "ids", &merged) != 0)
        return -1;
    *was_merged = pub_ids_has(&merged, post_id);
    pub_ids_free(&merged);
    if (store_ids_change(p, "merged_posts", author, "ids", "$pull", &post_id, 1) != 0 ||
        store_ids_change(p, "recent", author, "p", "$pull", &post_id, 1) != 0)
        return -1;
    return feed_remove(p, post_id, author, &author, 1);
}

int feed_user_gone(pub_t *p, const char *user_id)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
    int rc = db_delete_one(p->db, "timeline_heads", f) < 0 || db_delete_one(p->db, "timelines", f) < 0 ||
                     db_delete_one(p->db, "recent", f) < 0 || db_delete_one(p->db, "merged_posts", f) < 0
                 ? -1
                 : 0;
    bson_destroy(f);
    return rc == 0 ? store_ids_change(p, "feed_meta", "merged", "ids", "$pull", &user_id, 1) : -1;
}

/* ================================================================ reading a page */

typedef struct {
    pub_t *p;
    const char *caller;
    GHashTable *authors_ok; /* whose posts belong in the caller's feed: itself and whom it follows */
    pub_ids_t cand;         /* entries "<post id>:<author>", newest first, distinct posts */
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
            pub_ids_add(&pg->cand, entry);
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
    pub_ids_t tl = {0}, following, merged;
    int rc = -1;
    memset(&following, 0, sizeof(following));
    memset(&merged, 0, sizeof(merged));
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    pub_ids_t head;
    if (store_ids_load(p, "timeline_heads", pg->caller, "e", &head) != 0)
        goto out;
    if (store_ids_load(p, "timelines", pg->caller, "e", &tl) != 0) {
        pub_ids_free(&head);
        goto out;
    }
    /* a grown head is moved, a grown body trimmed, by its reader too */
    if ((head.n > feed__head_max(p) || tl.n > cap + cap / 8) && feed__compact(p, pg->caller) != 0)
        log_warn(NULL, "timeline %s: not compacted now (tried again later)", pg->caller);
    for (size_t i = 0; i < head.n; i++)
        pub_ids_add(&tl, head.ids[i]);
    pub_ids_free(&head);
    feed__sort(&tl);
    if (store_ids_load(p, "following", pg->caller, "ids", &following) != 0 ||
        store_ids_load(p, "feed_meta", "merged", "ids", &merged) != 0)
        goto out;
    g_hash_table_add(pg->authors_ok, g_strdup(pg->caller));
    for (size_t i = 0; i < following.n; i++)
        g_hash_table_add(pg->authors_ok, g_strdup(following.ids[i]));
    feed__take(pg, seen, tl.ids, tl.n < cap ? tl.n : cap, after, NULL);
    for (size_t i = 0; i < merged.n; i++) {
        if (!g_hash_table_contains(pg->authors_ok, merged.ids[i]))
            continue;
        pub_ids_t u;
        if (store_ids_load(p, "merged_posts", merged.ids[i], "ids", &u) != 0)
            goto out;
        feed__sort(&u);
        feed__take(pg, seen, u.ids, u.n < cap ? u.n : cap, after, merged.ids[i]);
        pub_ids_free(&u);
    }
    feed__sort(&pg->cand);
    rc = 0;
out:
    g_hash_table_destroy(seen);
    pub_ids_free(&tl);
    pub_ids_free(&following);
    pub_ids_free(&merged);
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
    /* the posts of the page, looked up by ids in chunks of limit + 1 candidates (more when some
     * are gone); one more visible post than the page holds says there is a next page */
    for (size_t from = 0; from < pg.cand.n && !err && !more; from += (size_t)limit + 1) {
        size_t n = pg.cand.n - from < (size_t)limit + 1 ? pg.cand.n - from : (size_t)limit + 1;
        char **ids = xcalloc(n, sizeof(*ids));
        for (size_t i = 0; i < n; i++)
            ids[i] = g_strndup(pg.cand.ids[from + i], FEED_ENTRY_ID_LEN);
        pub_postset_t *set = posts_fetch(p, authors, ids, n, req->user_id);
        err = set == NULL;
        for (size_t i = 0; i < n && !err && !more; i++) {
            cJSON *item = posts_fetched_json(set, ids[i], &err);
            if (item != NULL && (long)cJSON_GetArraySize(items) >= limit) {
                more = 1;
                cJSON_Delete(item);
            } else if (item != NULL) {
                cJSON_AddItemToArray(items, item);
                free(last);
                last = xstrdup(ids[i]);
            }
        }
        posts_fetch_free(set);
        for (size_t i = 0; i < n; i++)
            g_free(ids[i]);
        free(ids);
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
    pub_ids_free(&pg.cand);
    g_hash_table_destroy(pg.authors_ok);
    users_authors_free(authors);
}
