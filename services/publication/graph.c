/* graph.c -- following and followers bucket documents, kept in line with the follows edges. */
#include <string.h>

#include "core/core.h"
#include "pub.h"

int graph_following(pub_t *p, const char *user, pub_ids_t *out)
{
    return store_ids_load(p, "following", user, "ids", out);
}

int graph_followers(pub_t *p, const char *user, pub_ids_t *out)
{
    return store_ids_load(p, "followers", user, "ids", out);
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

int graph_follow_sync(pub_t *p, const char *from, const char *to)
{
    /* Two events of one edge handled at once (a follow and an unfollow) could write the buckets
     * in the other order than the edge; whoever reads the edge after its own writes and finds it
     * changed writes again, so the buckets end as the last edge says. */
    int on = graph_follows(p, from, to);
    for (int round = 0; on >= 0 && round < 8; round++) {
        const char *op = on ? "$addToSet" : "$pull";
        if (store_ids_change(p, "following", from, "ids", op, &to, 1) != 0 ||
            store_ids_change(p, "followers", to, "ids", op, &from, 1) != 0)
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

int graph_user_gone(pub_t *p, const char *user_id)
{
    /* Others' buckets first, its own last: a redelivery after a crash still finds whom to clean. */
    pub_ids_t followers, following;
    if (graph_followers(p, user_id, &followers) != 0)
        return -1;
    int rc = store_ids_change_each(p, "following", (const char *const *)followers.ids, followers.n, "ids",
                                   "$pull", user_id);
    /* its posts leave its followers' timelines now: their post.deleted, fanned out later, finds
     * no followers any more */
    for (size_t i = 0; i < followers.n && rc == 0; i++)
        rc = feed_remove_author(p, followers.ids[i], user_id);
    pub_ids_free(&followers);
    if (rc != 0 || graph_following(p, user_id, &following) != 0)
        return -1;
    rc = store_ids_change_each(p, "followers", (const char *const *)following.ids, following.n, "ids",
                               "$pull", user_id);
    pub_ids_free(&following);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
    if (rc == 0 && (db_delete_one(p->db, "followers", f) < 0 || db_delete_one(p->db, "following", f) < 0))
        rc = -1;
    bson_destroy(f);
    return rc;
}
