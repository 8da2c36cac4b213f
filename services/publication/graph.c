/* graph.c -- following and followers bucket documents, kept in line with the follows edges. */
#include <string.h>

#include "core/core.h"
#include "pub.h"

/* Reads the ids array of bucket document user of coll into out (empty when there is none). */
static int graph__ids(pub_t *p, const char *coll, const char *user, pub_ids_t *out)
{
    memset(out, 0, sizeof(*out));
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user)), doc = BSON_INITIALIZER;
    int rc = db_find_one(p->db, coll, f, NULL, &doc);
    bson_iter_t it, arr;
    if (rc == 1 && bson_iter_init_find(&it, &doc, "ids") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr))
            if (BSON_ITER_HOLDS_UTF8(&arr)) {
                out->ids = xrealloc(out->ids, (out->n + 1) * sizeof(*out->ids));
                out->ids[out->n++] = xstrdup(bson_iter_utf8(&arr, NULL));
            }
    }
    bson_destroy(&doc);
    bson_destroy(f);
    return rc < 0 ? -1 : 0;
}

int graph_following(pub_t *p, const char *user, pub_ids_t *out)
{
    return graph__ids(p, "following", user, out);
}

int graph_followers(pub_t *p, const char *user, pub_ids_t *out)
{
    return graph__ids(p, "followers", user, out);
}

int graph_edge_on(pub_t *p, const char *coll, const char *from, const char *to)
{
    char *id = xasprintf("%s:%s", from, to);
    bson_t edge = BSON_INITIALIZER;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_find_one(p->db, coll, f, NULL, &edge);
    bson_iter_t it;
    if (rc == 1)
        rc = bson_iter_init_find(&it, &edge, "on") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
    bson_destroy(f);
    bson_destroy(&edge);
    free(id);
    return rc;
}

int graph_follows(pub_t *p, const char *from, const char *to)
{
    return graph_edge_on(p, "follows", from, to);
}

/* Adds member to (on) or removes it from the ids of bucket user of coll. 0 or -1. */
static int graph__set(pub_t *p, const char *coll, const char *user, const char *member, int on)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user));
    bson_t *u = BCON_NEW(on ? "$addToSet" : "$pull", "{", "ids", BCON_UTF8(member), "}");
    int rc = db_update_one(p->db, coll, f, u, on) < 0 ? -1 : 0;
    bson_destroy(u);
    bson_destroy(f);
    return rc;
}

int graph_follow_sync(pub_t *p, const char *from, const char *to)
{
    /* Two events of one edge handled at once (a follow and an unfollow) could write the buckets
     * in the other order than the edge; whoever reads the edge after its own writes and finds it
     * changed writes again, so the buckets end as the last edge says. */
    int on = graph_follows(p, from, to);
    for (int round = 0; on >= 0 && round < 8; round++) {
        if (graph__set(p, "following", from, to, on) != 0 || graph__set(p, "followers", to, from, on) != 0)
            return -1;
        int rc = on ? feed_backfill(p, from, to) : feed_remove_author(p, from, to);
        if (rc != 0)
            return -1;
        int again = graph_follows(p, from, to);
        if (again == on)
            return 0;
        on = again;
    }
    return -1; /* still moving, or the database failed: the event is retried */
}

int graph_block_sync(pub_t *p, const char *a, const char *b)
{
    if (graph_follow_sync(p, a, b) != 0 || graph_follow_sync(p, b, a) != 0)
        return -1;
    return feed_remove_author(p, a, b) == 0 && feed_remove_author(p, b, a) == 0 ? 0 : -1;
}

/* Removes user from the ids of each bucket of coll named in owners, in one bulk write. */
static int graph__pull_from(pub_t *p, const char *coll, const pub_ids_t *owners, const char *user)
{
    bson_t **f = xcalloc(owners->n + 1, sizeof(*f)), **u = xcalloc(owners->n + 1, sizeof(*u));
    for (size_t i = 0; i < owners->n; i++) {
        f[i] = BCON_NEW("_id", BCON_UTF8(owners->ids[i]));
        u[i] = BCON_NEW("$pull", "{", "ids", BCON_UTF8(user), "}");
    }
    int rc = db_update_bulk(p->db, coll, f, u, owners->n, 0);
    for (size_t i = 0; i < owners->n; i++) {
        bson_destroy(f[i]);
        bson_destroy(u[i]);
    }
    free(f);
    free(u);
    return rc;
}

int graph_user_gone(pub_t *p, const char *user_id)
{
    /* Others' buckets first, its own last: a redelivery after a crash still finds whom to clean. */
    pub_ids_t followers, following;
    if (graph_followers(p, user_id, &followers) != 0)
        return -1;
    int rc = graph__pull_from(p, "following", &followers, user_id);
    /* its posts leave its followers' timelines now: their post.deleted, fanned out later, finds
     * no followers any more */
    for (size_t i = 0; i < followers.n && rc == 0; i++)
        rc = feed_remove_author(p, followers.ids[i], user_id);
    users_blockset_free(&followers);
    if (rc != 0 || graph_following(p, user_id, &following) != 0)
        return -1;
    rc = graph__pull_from(p, "followers", &following, user_id);
    users_blockset_free(&following);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
    if (rc == 0 && (db_delete_one(p->db, "followers", f) < 0 || db_delete_one(p->db, "following", f) < 0))
        rc = -1;
    bson_destroy(f);
    return rc;
}
