/* counters.c -- followers, following and posts counts of each account, kept apart from profiles. */
#include "auth.h"

static const char *const ctr__fields[] = {"followers", "following", "posts"};

int counter_add_locked(auth_t *a, const char *user_id, auth_counter_t which, int delta)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
    bson_t *u = BCON_NEW("$inc", "{", ctr__fields[which], BCON_INT64(delta), "}");
    int rc = db_update_one(a->db, "counters", f, u, 1);
    bson_destroy(f);
    bson_destroy(u);
    return rc < 0 ? -1 : 0;
}

int counter_add(auth_t *a, const char *user_id, auth_counter_t which, int delta)
{
    pthread_mutex_lock(&a->counters_lock);
    int rc = counter_add_locked(a, user_id, which, delta);
    pthread_mutex_unlock(&a->counters_lock);
    return rc;
}

int counter_recount(auth_t *a, const char *user_id)
{
    pthread_mutex_lock(&a->counters_lock);
    int rc = counter_recount_locked(a, user_id);
    pthread_mutex_unlock(&a->counters_lock);
    return rc;
}

int counter_recount_locked(auth_t *a, const char *user_id)
{
    bson_t *followers = BCON_NEW("to", BCON_UTF8(user_id));
    bson_t *following = BCON_NEW("from", BCON_UTF8(user_id));
    bson_t *posts = BCON_NEW("user_id", BCON_UTF8(user_id));
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
    int rc = -1;
    long n[3] = {db_count(a->db, "follows", followers), db_count(a->db, "follows", following),
                 db_count(a->db, "user_posts", posts)};
    if (n[0] >= 0 && n[1] >= 0 && n[2] >= 0) {
        bson_t *u = BCON_NEW("$set", "{", "followers", BCON_INT64(n[0]), "following", BCON_INT64(n[1]),
                             "posts", BCON_INT64(n[2]), "}");
        rc = db_update_one(a->db, "counters", f, u, 1) < 0 ? -1 : 0;
        bson_destroy(u);
    }
    bson_destroy(followers);
    bson_destroy(following);
    bson_destroy(posts);
    bson_destroy(f);
    return rc;
}

int counter_get(auth_t *a, const char *user_id, long out[3])
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
    bson_t doc = BSON_INITIALIZER;
    int rc = db_find_one(a->db, "counters", f, NULL, &doc);
    for (int i = 0; i < 3; i++) {
        int64_t v = rc == 1 ? db_doc_int(&doc, ctr__fields[i]) : 0;
        out[i] = v > 0 ? (long)v : 0; /* an unfollow may briefly overtake its follow's increment */
    }
    bson_destroy(f);
    bson_destroy(&doc);
    return rc < 0 ? -1 : 0;
}
