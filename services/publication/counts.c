/* counts.c -- like and comment counts, recounted from what is stored after every change. */
#include "log/log.h"
#include "pub.h"

#define COUNTS__ROUNDS 8

/* The likes (and comments) stored for target now. 0 or -1. */
static int counts__tally(pub_t *p, const char *target, int is_post, long *likes, long *comments)
{
    bson_t *f = BCON_NEW("target", BCON_UTF8(target));
    *likes = db_count(p->db, "likes", f);
    bson_destroy(f);
    *comments = 0;
    if (*likes >= 0 && is_post) {
        bson_t *c = BCON_NEW("post_id", BCON_UTF8(target));
        *comments = db_count(p->db, "comments", c);
        bson_destroy(c);
    }
    return *likes < 0 || *comments < 0 ? -1 : 0;
}

int counts_sync(pub_t *p, const char *target, int is_post)
{
    long likes, comments;
    if (counts__tally(p, target, is_post, &likes, &comments) != 0)
        return -1;
    /* Write, then count again: a writer that raced us wrote after its own change, and whoever
     * writes last sees every change made before its second count (README, Store). */
    for (int round = 0; round < COUNTS__ROUNDS; round++) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(target));
        bson_t *u = BCON_NEW("$set", "{", "likes", BCON_INT64(likes), "comments", BCON_INT64(comments), "}");
        int rc = db_update_one(p->db, "counts", f, u, 1);
        bson_destroy(f);
        bson_destroy(u);
        if (rc == -2) /* two first upserts of one target: the other inserted; write over it */
            continue;
        long l2, c2;
        if (rc < 0 || counts__tally(p, target, is_post, &l2, &c2) != 0)
            return -1;
        if (l2 == likes && c2 == comments)
            return 0;
        likes = l2;
        comments = c2;
    }
    log_warn(NULL, "counts of %s still moving after %d rounds; the next change settles them", target,
             COUNTS__ROUNDS);
    return 0;
}

int counts_get(pub_t *p, const char *target, long *likes, long *comments)
{
    bson_t doc = BSON_INITIALIZER;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(target));
    int rc = db_find_one(p->db, "counts", f, NULL, &doc);
    bson_destroy(f);
    *likes = rc == 1 ? (long)db_doc_int(&doc, "likes") : 0;
    *comments = rc == 1 ? (long)db_doc_int(&doc, "comments") : 0;
    bson_destroy(&doc);
    return rc < 0 ? -1 : 0;
}
