/* test_feed.c -- the feed's documents against a real FerretDB (TEST_MONGO_URI), below the RPC
 * layer: fanout writes that are idempotent and survive concurrent writers, trimming to the cap,
 * backfill and removal by author, buckets that follow the edges, and a page's candidates with the
 * merged posts of large accounts and a cursor. */
#include <criterion/criterion.h>
#include <pthread.h>

#include "../../testutil.h"
#include "../../../../services/publication/comments.c"
#include "../../../../services/publication/counts.c"
#include "../../../../services/publication/feed.c"
#include "../../../../services/publication/graph.c"
#include "../../../../services/publication/highlights.c"
#include "../../../../services/publication/likes.c"
#include "../../../../services/publication/lists.c"
#include "../../../../services/publication/posts.c"
#include "../../../../services/publication/recover.c"
#include "../../../../services/publication/stories.c"
#include "../../../../services/publication/store.c"
#include "../../../../services/publication/text.c"
#include "../../../../services/publication/users.c"

static db_t *db;
static char dbname[64];
static pub_conf_t conf = {
    .feed_max_items = 16, .feed_backfill = 3, .feed_trim_every = 1, .feed_fanout_batch = 4};
static pub_t app = {.conf = &conf};

static void setup(void)
{
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "%d_%ld", (int)getpid(), (long)core_wall_ms());
    db = tu_db_open("pub_feed", suffix, dbname, sizeof(dbname));
    app.db = db;
}

static void teardown(void)
{
    tu_db_drop(db, dbname);
}

TestSuite(feed, .init = setup, .fini = teardown, .timeout = 120);

/* ================================================================ helpers */

/* The n-th post id (24 hex digits, ordered by n). */
static void post_id(char out[25], int n)
{
    snprintf(out, 25, "6b0200000000000000%06x", n);
}

/* The entries of user's timeline (head and body), newest first; each entry once. */
static pub_ids_t timeline(const char *user)
{
    pub_ids_t head, s;
    cr_assert_eq(store_ids_load(&app, "timeline_heads", user, "e", &head), 0);
    cr_assert_eq(store_ids_load(&app, "timelines", user, "e", &s), 0);
    for (size_t i = 0; i < head.n; i++) {
        cr_assert(!pub_ids_has(&s, head.ids[i]), "%s in the head and the body", head.ids[i]);
        pub_ids_add(&s, head.ids[i]);
    }
    pub_ids_free(&head);
    feed__sort(&s);
    return s;
}

static void set_edge(const char *from, const char *to, int on)
{
    char *id = xasprintf("%s:%s", from, to);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *u = BCON_NEW("$set", "{", "from", BCON_UTF8(from), "to", BCON_UTF8(to), "on", BCON_BOOL(on), "}");
    cr_assert_geq(db_update_one(db, "follows", f, u, 1), 0);
    bson_destroy(u);
    bson_destroy(f);
    free(id);
}

/* ================================================================ writes */

Test(feed, fanout_is_idempotent_per_timeline_and_post)
{
    const char *users[] = {"u1", "u2", "u3"};
    char p[25];
    post_id(p, 1);
    for (int round = 0; round < 3; round++) /* a redelivered batch, twice */
        cr_assert_eq(feed_add(&app, p, "author", users, 3), 0);
    for (int i = 0; i < 3; i++) {
        pub_ids_t s = timeline(users[i]);
        cr_assert_eq(s.n, 1);
        cr_assert_str_eq(s.ids[0], "6b0200000000000000000001:author");
        pub_ids_free(&s);
    }
    cr_assert_eq(feed_remove(&app, p, "author", users, 3), 0);
    pub_ids_t s = timeline("u2");
    cr_expect_eq(s.n, 0);
    pub_ids_free(&s);
}

/* Four writers (copies fanning out different posts) add to the same timelines at once. */
static void *adder(void *arg)
{
    static const char *const users[] = {"t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"};
    int w = (int)(intptr_t)arg;
    for (int i = 0; i < 12; i++) {
        char p[25];
        post_id(p, 100 + w * 12 + i);
        cr_assert_eq(feed_add(&app, p, "a", (const char *const *)users, 8), 0);
    }
    return NULL;
}

Test(feed, concurrent_fanouts_lose_no_entry)
{
    conf.feed_max_items = 100; /* heads of 12 moved often, bodies never trimmed */
    pthread_t th[4];
    for (int t = 0; t < 4; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, adder, (void *)(intptr_t)t), 0);
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    conf.feed_max_items = 16;
    pub_ids_t s = timeline("t5");
    cr_expect_eq(s.n, 48, "%zu of 48 entries", s.n);
    pub_ids_free(&s);
}

Test(feed, timelines_are_trimmed_to_the_newest)
{
    const char *u = "reader";
    for (int i = 1; i <= 40; i++) {
        char p[25];
        post_id(p, i);
        cr_assert_eq(feed_add(&app, p, "a", &u, 1), 0);
    }
    pub_ids_t s = timeline(u);
    /* the body cut back to 16 once it holds an eighth more, the head moved past 4 (16 / 8, at
     * least 4) */
    cr_assert_leq(s.n, 16 + 16 / 8 + 4, "%zu entries kept", s.n);
    cr_assert_geq(s.n, 16);
    pub_ids_t body;
    cr_assert_eq(store_ids_load(&app, "timelines", u, "e", &body), 0);
    cr_expect_leq(body.n, 16 + 16 / 8, "%zu entries in the body", body.n);
    pub_ids_free(&body);
    char newest[25];
    post_id(newest, 40);
    cr_expect_eq(strncmp(s.ids[0], newest, 24), 0);
    pub_ids_free(&s);
}

Test(feed, backfill_and_removal_by_author)
{
    /* author b has posts 1..5, 4 of them merged (not fanned out): backfill takes the newest 3
     * others */
    for (int i = 1; i <= 5; i++) {
        char p[25];
        post_id(p, i);
        cr_assert_eq(feed_post_created(&app, p, "b"), 0);
    }
    char merged[25];
    post_id(merged, 4);
    cr_assert_eq(feed_post_merged(&app, merged, "b"), 0);
    const char *me = "me";
    char mine[25];
    post_id(mine, 9);
    cr_assert_eq(feed_add(&app, mine, "c", &me, 1), 0);
    cr_assert_eq(feed_backfill(&app, "me", "b"), 0);
    pub_ids_t s = timeline("me");
    cr_assert_eq(s.n, 4);
    cr_expect_str_eq(s.ids[0], "6b0200000000000000000009:c");
    cr_expect_str_eq(s.ids[1], "6b0200000000000000000005:b");
    cr_expect_str_eq(s.ids[2], "6b0200000000000000000003:b");
    cr_expect_str_eq(s.ids[3], "6b0200000000000000000002:b");
    pub_ids_free(&s);
    cr_assert_eq(feed_remove_author(&app, "me", "b"), 0);
    s = timeline("me");
    cr_assert_eq(s.n, 1);
    cr_expect_str_eq(s.ids[0], "6b0200000000000000000009:c");
    pub_ids_free(&s);
}

Test(feed, buckets_follow_the_edges)
{
    char p[25];
    post_id(p, 7);
    cr_assert_eq(feed_post_created(&app, p, "star"), 0);
    set_edge("fan", "star", 1);
    cr_assert_eq(graph_follow_sync(&app, "fan", "star"), 0);
    pub_ids_t ids;
    cr_assert_eq(graph_followers(&app, "star", &ids), 0);
    cr_assert_eq(ids.n, 1);
    cr_expect_str_eq(ids.ids[0], "fan");
    pub_ids_free(&ids);
    pub_ids_t s = timeline("fan");
    cr_expect_eq(s.n, 1, "the follow backfilled the post");
    pub_ids_free(&s);
    set_edge("fan", "star", 0);
    cr_assert_eq(graph_follow_sync(&app, "fan", "star"), 0);
    cr_assert_eq(graph_following(&app, "fan", &ids), 0);
    cr_expect_eq(ids.n, 0);
    pub_ids_free(&ids);
    s = timeline("fan");
    cr_expect_eq(s.n, 0, "the unfollow took the post away");
    pub_ids_free(&s);
}

/* ================================================================ reading */

Test(feed, candidates_merge_large_accounts_in_order_after_the_cursor)
{
    /* me follows small (fanned out to me) and big (merged); other is not followed any more */
    set_edge("me", "small", 1);
    set_edge("me", "big", 1);
    cr_assert_eq(graph_follow_sync(&app, "me", "small"), 0);
    cr_assert_eq(graph_follow_sync(&app, "me", "big"), 0);
    const char *me = "me";
    int smalls[] = {1, 4, 6}, bigs[] = {2, 5, 7}, others[] = {3};
    for (size_t i = 0; i < 3; i++) {
        char p[25];
        post_id(p, smalls[i]);
        cr_assert_eq(feed_add(&app, p, "small", &me, 1), 0);
        post_id(p, bigs[i]);
        cr_assert_eq(feed_post_created(&app, p, "big"), 0);
        cr_assert_eq(feed_post_merged(&app, p, "big"), 0);
    }
    char p[25];
    post_id(p, others[0]);
    cr_assert_eq(feed_add(&app, p, "other", &me, 1), 0);
    feed__page_t pg = {.p = &app, .caller = "me"};
    pg.authors_ok = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    char after[25];
    post_id(after, 6);
    cr_assert_eq(feed__candidates(&pg, after), 0);
    static const char *const want[] = {"6b0200000000000000000005:big", "6b0200000000000000000004:small",
                                       "6b0200000000000000000002:big", "6b0200000000000000000001:small"};
    cr_assert_eq(pg.cand.n, 4, "%zu candidates", pg.cand.n);
    for (size_t i = 0; i < 4; i++)
        cr_expect_str_eq(pg.cand.ids[i], want[i]);
    pub_ids_free(&pg.cand);
    g_hash_table_destroy(pg.authors_ok);
}
