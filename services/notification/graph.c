/* graph.c -- the follow edges (versioned by event time) and each user's followers bucket that
 * follows them: who gets "X posted". */
#include <string.h>

#include "core/core.h"
#include "notif.h"

/* 1 on, 0 off or absent, -1 database; *at the edge's version when there. */
static int graph__edge(notif_t *n, const char *id, int64_t *at)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id)), doc = BSON_INITIALIZER;
    int rc = db_find_one(n->db, "follows", f, NULL, &doc);
    *at = -1;
    bson_iter_t it;
    if (rc == 1) {
        *at = db_doc_int(&doc, "at");
        rc = bson_iter_init_find(&it, &doc, "on") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
    }
    bson_destroy(f);
    bson_destroy(&doc);
    return rc;
}

static int graph__bucket(notif_t *n, const char *to, const char *from, int on)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(to));
    bson_t *u = on ? BCON_NEW("$addToSet", "{", "ids", BCON_UTF8(from), "}")
                   : BCON_NEW("$pull", "{", "ids", BCON_UTF8(from), "}");
    int rc = db_update_one(n->db, "followers", f, u, on) < 0 ? -1 : 0;
    bson_destroy(f);
    bson_destroy(u);
    return rc;
}

int graph_follow_set(notif_t *n, const char *from, const char *to, int on, int64_t at)
{
    char *id = xasprintf("%s:%s", from, to);
    int64_t cur;
    int rc = graph__edge(n, id, &cur);
    if (rc >= 0 && cur < at) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
        bson_t *u = BCON_NEW("$set", "{", "on", BCON_BOOL(on), "at", BCON_INT64(at), "}");
        rc = db_update_one(n->db, "follows", f, u, 1) < 0 ? -1 : 0;
        bson_destroy(f);
        bson_destroy(u);
    }
    /* The bucket follows the edge as it is now, even for a stale event; whoever finds the edge
     * changed after writing the bucket writes again, so the bucket ends as the last edge says. */
    int state = rc >= 0 ? graph__edge(n, id, &cur) : -1;
    for (int round = 0; state >= 0 && round < 8; round++) {
        if (graph__bucket(n, to, from, state) != 0) {
            state = -1;
            break;
        }
        int again = graph__edge(n, id, &cur);
        if (again == state)
            break;
        state = again;
    }
    free(id);
    return state < 0 ? -1 : 0;
}

int graph_followers(notif_t *n, const char *user, char ***ids, size_t *nids)
{
    *ids = NULL;
    *nids = 0;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user)), doc = BSON_INITIALIZER;
    int rc = db_find_one(n->db, "followers", f, NULL, &doc);
    bson_iter_t it, arr;
    if (rc == 1 && bson_iter_init_find(&it, &doc, "ids") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr))
            if (BSON_ITER_HOLDS_UTF8(&arr)) {
                *ids = xrealloc(*ids, (*nids + 1) * sizeof(**ids));
                (*ids)[(*nids)++] = xstrdup(bson_iter_utf8(&arr, NULL));
            }
    bson_destroy(&doc);
    bson_destroy(f);
    return rc < 0 ? -1 : 0;
}

void graph_ids_free(char **ids, size_t nids)
{
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
}

int graph_user_gone(notif_t *n, const char *user)
{
    /* Its own bucket; where it follows others, its edges and entries in their buckets stay until
     * those are read: a follower whose account is gone is skipped by its tombstone. */
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user));
    int rc = db_delete_one(n->db, "followers", f) < 0 ? -1 : 0;
    bson_destroy(f);
    return rc;
}
