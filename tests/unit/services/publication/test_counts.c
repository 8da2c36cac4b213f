/* test_counts.c -- like and comment counts stay exact when many threads (standing in for copies
 * of the daemon) like, unlike and comment one post at once, against a real FerretDB
 * (TEST_MONGO_URI), whose updates are read-modify-write without a lock. */
#include <criterion/criterion.h>
#include <pthread.h>

#include "../../testutil.h"
#include "../../../../services/publication/counts.c"

#define THREADS 8
#define EACH 12

static db_t *db;
static char dbname[64];
static pub_t app;
static const char *post = "6b0200000000000000000001";

static void setup(void)
{
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "%d_%ld", (int)getpid(), (long)time(NULL));
    db = tu_db_open("pub_counts", suffix, dbname, sizeof(dbname));
    app.db = db;
}

static void teardown(void)
{
    tu_db_drop(db, dbname);
}

/* One thread: EACH likes of its own users, a comment for each, then unlikes every other one;
 * every change followed by counts_sync, as the handlers do. */
static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < EACH; i++) {
        char id[64], user[32], cid[32];
        snprintf(user, sizeof(user), "u%d_%d", t, i);
        snprintf(id, sizeof(id), "%s:%s", post, user);
        bson_t *like = BCON_NEW("_id", BCON_UTF8(id), "target", BCON_UTF8(post), "user_id", BCON_UTF8(user));
        cr_assert_eq(db_insert(db, "likes", like), 0);
        bson_destroy(like);
        cr_assert_eq(counts_sync(&app, post, 1), 0);
        snprintf(cid, sizeof(cid), "c%d_%d", t, i);
        bson_t *c = BCON_NEW("_id", BCON_UTF8(cid), "post_id", BCON_UTF8(post));
        cr_assert_eq(db_insert(db, "comments", c), 0);
        bson_destroy(c);
        cr_assert_eq(counts_sync(&app, post, 1), 0);
        if (i % 2 == 1) {
            bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
            cr_assert_eq(db_delete_one(db, "likes", f), 1);
            bson_destroy(f);
            cr_assert_eq(counts_sync(&app, post, 1), 0);
        }
    }
    return NULL;
}

Test(counts, exact_under_concurrent_changes, .init = setup, .fini = teardown, .timeout = 120)
{
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    long likes = -1, comments = -1;
    cr_assert_eq(counts_get(&app, post, &likes, &comments), 0);
    cr_assert_eq(likes, THREADS * EACH / 2, "likes %ld", likes);
    cr_assert_eq(comments, THREADS * EACH, "comments %ld", comments);
}

Test(counts, a_comment_counts_likes_only_and_absent_is_zero, .init = setup, .fini = teardown)
{
    long likes = -1, comments = -1;
    cr_assert_eq(counts_get(&app, "6b0200000000000000000002", &likes, &comments), 0);
    cr_assert(likes == 0 && comments == 0);
    bson_t *like = BCON_NEW("_id", BCON_UTF8("c1:u1"), "target", BCON_UTF8("c1"), "user_id", BCON_UTF8("u1"));
    cr_assert_eq(db_insert(db, "likes", like), 0);
    bson_destroy(like);
    bson_t *c = BCON_NEW("_id", BCON_UTF8("c9"), "post_id", BCON_UTF8("c1"));
    cr_assert_eq(db_insert(db, "comments", c), 0); /* a comment's id is never a post_id; not counted */
    bson_destroy(c);
    cr_assert_eq(counts_sync(&app, "c1", 0), 0);
    cr_assert_eq(counts_get(&app, "c1", &likes, &comments), 0);
    cr_assert(likes == 1 && comments == 0, "%ld %ld", likes, comments);
}
