/* test_store.c -- publication's store against a real FerretDB (TEST_MONGO_URI), driven below the
 * RPC layer: what outbox recovery does with each kind of write that died half-way (the kill -9 test
 * of the e2e suite reaches these states only by chance), and the projections kept from auth's
 * events (out of order, repeated, and an account's deletion with everything it had). */
#include <criterion/criterion.h>

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
static pub_conf_t conf = {.rpc_timeout_ms = 1000};
static pub_t app = {.conf = &conf};

#define POST "6b0200000000000000000001"
#define POST2 "6b0200000000000000000002"
#define C1 "6b02000000000000000000c1"
#define C2 "6b02000000000000000000c2"
#define ALICE "6b02000000000000000000a1"
#define BOB "6b02000000000000000000b1"

static void setup(void)
{
    char suffix[32], err[256];
    snprintf(suffix, sizeof(suffix), "%d_%ld", (int)getpid(), (long)core_wall_ms());
    db = tu_db_open("pub_store", suffix, dbname, sizeof(dbname));
    app.db = db;
    cr_assert_eq(db_ensure_indexes(db, "outbox", outbox_indexes, outbox_nindexes, err, sizeof(err)), 0, "%s",
                 err);
    outbox_conf_t oc = {.db = db, .app_id = "unit-publication", .recover_after_ms = 1000, .poll_ms = 50,
                        .recover = pub_outbox_recover, .ud = &app};
    app.outbox = outbox_start(&oc, err, sizeof(err)); /* no AMQP URL: no relay; events stay stored */
    cr_assert_not_null(app.outbox, "%s", err);
}

static void teardown(void)
{
    outbox_stop(app.outbox);
    tu_db_drop(db, dbname);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);

/* ================================================================ helpers */

static void put(const char *coll, bson_t *doc)
{
    cr_assert_eq(db_insert(db, coll, doc), 0, "insert into %s", coll);
    bson_destroy(doc);
}

static long count(const char *coll, bson_t *filter)
{
    long n = db_count(db, coll, filter);
    bson_destroy(filter);
    cr_assert_geq(n, 0);
    return n;
}

static void post_doc(const char *id, const char *author)
{
    put("posts", BCON_NEW("_id", BCON_UTF8(id), "author_id", BCON_UTF8(author), "caption", BCON_UTF8("c"),
                          "op", BCON_UTF8("op-1"), "created_at", BCON_DATE_TIME(core_wall_ms())));
}

static void comment_doc(const char *id, const char *post, const char *author, const char *reply_to)
{
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "post_id", BCON_UTF8(post), "author_id", BCON_UTF8(author),
                           "text", BCON_UTF8("t"), "order", BCON_UTF8(id));
    if (reply_to != NULL)
        BSON_APPEND_UTF8(doc, "reply_to", reply_to);
    else
        BSON_APPEND_NULL(doc, "reply_to");
    put("comments", doc);
}

static void like_doc(const char *target, const char *kind, const char *user, const char *op)
{
    char *id = xasprintf("%s:%s", target, user);
    put("likes", BCON_NEW("_id", BCON_UTF8(id), "target", BCON_UTF8(target), "kind", BCON_UTF8(kind), "post_id",
                          BCON_UTF8(POST), "user_id", BCON_UTF8(user), "seq", BCON_UTF8(id), "op", BCON_UTF8(op)));
    free(id);
}

/* The verdict of recovery on an abandoned event (key, a, b, body). */
static outbox_verdict_t recover(const char *key, const char *a, const char *b, const char *body)
{
    bson_t *doc = BCON_NEW("_id", BCON_UTF8("ev"), "key", BCON_UTF8(key), "a", BCON_UTF8(a), "body",
                           BCON_UTF8(body != NULL ? body : "{}"));
    if (b != NULL)
        BSON_APPEND_UTF8(doc, "b", b);
    char *replaced = NULL;
    outbox_verdict_t v = pub_outbox_recover(&app, doc, &replaced);
    cr_assert_null(replaced);
    bson_destroy(doc);
    return v;
}

static void counts_are(const char *target, long likes, long comments)
{
    long l, c;
    cr_assert_eq(counts_get(&app, target, &l, &c), 0);
    cr_assert(l == likes && c == comments, "%s: %ld likes, %ld comments; want %ld, %ld", target, l, c, likes,
              comments);
}

/* ================================================================ recovery */

Test(store, post_created_and_updated_publish_only_if_their_write_is_there)
{
    cr_assert_eq(recover("post.created", POST, NULL, NULL), OUTBOX_DROP);
    post_doc(POST, ALICE);
    cr_assert_eq(recover("post.created", POST, NULL, NULL), OUTBOX_READY);
    cr_assert_eq(recover("post.updated", POST, "op-2", NULL), OUTBOX_DROP, "the edit never landed");
    cr_assert_eq(recover("post.updated", POST, "op-1", NULL), OUTBOX_READY);
}

Test(store, post_deleted_finishes_the_cascade_before_it_publishes)
{
    post_doc(POST, ALICE);
    cr_assert_eq(recover("post.deleted", POST, ALICE, NULL), OUTBOX_DROP, "the post is still there");
    comment_doc(C1, POST, BOB, NULL);
    comment_doc(C2, POST, ALICE, C1);
    like_doc(POST, "post", BOB, "o1");
    like_doc(C1, "comment", ALICE, "o2");
    counts_sync(&app, POST, 1);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(POST));
    cr_assert_eq(db_delete_one(db, "posts", f), 1); /* the decisive write, then the crash */
    bson_destroy(f);
    cr_assert_eq(recover("post.deleted", POST, ALICE, NULL), OUTBOX_READY);
    cr_assert_eq(count("comments", bson_new()), 0);
    cr_assert_eq(count("likes", bson_new()), 0);
    cr_assert_eq(count("counts", bson_new()), 0);
}

Test(store, comment_created_recounts_and_comment_deleted_takes_its_replies)
{
    post_doc(POST, ALICE);
    cr_assert_eq(recover("comment.created", C1, POST, NULL), OUTBOX_DROP);
    comment_doc(C1, POST, BOB, NULL);
    cr_assert_eq(recover("comment.created", C1, POST, NULL), OUTBOX_READY);
    counts_are(POST, 0, 1);
    comment_doc(C2, POST, ALICE, C1);
    like_doc(C2, "comment", BOB, "o1");
    counts_sync(&app, POST, 1);
    counts_are(POST, 0, 2);
    cr_assert_eq(recover("comment.deleted", C1, POST, NULL), OUTBOX_DROP, "the comment is still there");
    bson_t *f = BCON_NEW("_id", BCON_UTF8(C1));
    cr_assert_eq(db_delete_one(db, "comments", f), 1);
    bson_destroy(f);
    cr_assert_eq(recover("comment.deleted", C1, POST, NULL), OUTBOX_READY);
    cr_assert_eq(count("comments", bson_new()), 0, "the reply went with it");
    cr_assert_eq(count("likes", bson_new()), 0, "and its like");
    counts_are(POST, 0, 0);
}

Test(store, likes_publish_only_for_their_own_operation)
{
    post_doc(POST, ALICE);
    const char *body = "{\"target_type\":\"post\",\"target_id\":\"" POST "\"}";
    char *id = xasprintf("%s:%s", POST, BOB);
    cr_assert_eq(recover("like.created", id, "op-a", body), OUTBOX_DROP);
    like_doc(POST, "post", BOB, "op-a");
    cr_assert_eq(recover("like.created", id, "op-a", body), OUTBOX_READY);
    counts_are(POST, 1, 0);
    cr_assert_eq(recover("like.created", id, "op-b", body), OUTBOX_DROP, "another like's event");
    cr_assert_eq(recover("like.deleted", id, "op-a", body), OUTBOX_DROP, "the like is still there");
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    cr_assert_eq(db_delete_one(db, "likes", f), 1);
    bson_destroy(f);
    cr_assert_eq(recover("like.deleted", id, "op-a", body), OUTBOX_READY);
    counts_are(POST, 0, 0);
    free(id);
}

/* ================================================================ projections */

static mq_disposition_t deliver(const char *key, const char *body)
{
    mq_message_t m = {.routing_key = key, .message_id = "m", .body = body, .body_len = strlen(body)};
    return users_on_event(NULL, &m, &app);
}

static int edge_on(const char *coll, const char *from, const char *to)
{
    char *id = xasprintf("%s:%s", from, to);
    int rc = (int)count(coll, BCON_NEW("_id", BCON_UTF8(id), "on", BCON_BOOL(true)));
    free(id);
    return rc;
}

Test(store, profiles_keep_the_newest_version)
{
    cr_assert_eq(deliver("user.registered", "{\"user_id\":\"" ALICE "\",\"username\":\"alice\",\"email\":\"a@x.io\","
                                            "\"name\":\"Alice\",\"created_at\":\"2026-11-21T10:00:00Z\"}"),
                 MQ_ACK);
    cr_assert_eq(deliver("user.updated", "{\"user_id\":\"" ALICE "\",\"username\":\"alice\",\"email\":\"a@x.io\","
                                         "\"name\":\"Alice B\",\"bio\":\"\",\"avatar_media_id\":null,"
                                         "\"updated_at\":\"2026-11-21T10:05:00.250Z\"}"),
                 MQ_ACK);
    /* the registration again (a redelivery) and an older update change nothing */
    cr_assert_eq(deliver("user.registered", "{\"user_id\":\"" ALICE "\",\"username\":\"alice\",\"email\":\"a@x.io\","
                                            "\"name\":\"Alice\",\"created_at\":\"2026-11-21T10:00:00Z\"}"),
                 MQ_ACK);
    cr_assert_eq(deliver("user.updated", "{\"user_id\":\"" ALICE "\",\"username\":\"alice\",\"email\":\"a@x.io\","
                                         "\"name\":\"Old\",\"bio\":\"\",\"avatar_media_id\":null,"
                                         "\"updated_at\":\"2026-11-21T10:05:00.100Z\"}"),
                 MQ_ACK);
    cJSON *a = NULL;
    cr_assert_eq(users_author(&app, ALICE, &a), 1);
    cr_assert_str_eq(rpc_field_str(a, "name"), "Alice B");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(a, "avatar")));
    cJSON_Delete(a);
    char id[64];
    cr_assert_eq(users_by_name(&app, "alice", id), 1);
    cr_assert_str_eq(id, ALICE);
    cr_assert_eq(deliver("user.updated", "{not json"), MQ_DEAD);
    cr_assert_eq(deliver("user.registered", "{\"user_id\":\"x\"}"), MQ_DEAD);
    cr_assert_eq(deliver("post.created", "{}"), MQ_DEAD);
}

Test(store, edges_end_in_the_state_of_the_newest_event_whatever_the_order)
{
    /* the unfollow arrives before the follow it undoes */
    cr_assert_eq(deliver("follow.deleted", "{\"follower_id\":\"" BOB "\",\"followee_id\":\"" ALICE "\","
                                           "\"deleted_at\":\"2026-11-21T10:00:02Z\"}"),
                 MQ_ACK);
    cr_assert_eq(deliver("follow.created", "{\"follower_id\":\"" BOB "\",\"follower_username\":\"bob\","
                                           "\"followee_id\":\"" ALICE "\",\"followee_username\":\"alice\","
                                           "\"created_at\":\"2026-11-21T10:00:01Z\"}"),
                 MQ_ACK);
    cr_assert_eq(edge_on("follows", BOB, ALICE), 0);
    cr_assert_eq(deliver("follow.created", "{\"follower_id\":\"" BOB "\",\"follower_username\":\"bob\","
                                           "\"followee_id\":\"" ALICE "\",\"followee_username\":\"alice\","
                                           "\"created_at\":\"2026-11-21T10:00:03Z\"}"),
                 MQ_ACK);
    cr_assert_eq(edge_on("follows", BOB, ALICE), 1);
    /* a block ends the follows both ways and hides each from the other */
    cr_assert_eq(deliver("block.created", "{\"blocker_id\":\"" ALICE "\",\"blocked_id\":\"" BOB "\","
                                          "\"created_at\":\"2026-11-21T10:00:04Z\"}"),
                 MQ_ACK);
    cr_assert_eq(edge_on("follows", BOB, ALICE), 0);
    cr_assert_eq(users_hidden(&app, BOB, ALICE), 1);
    cr_assert_eq(users_hidden(&app, ALICE, BOB), 1);
    cr_assert_eq(users_hidden(&app, NULL, BOB), 0);
    pub_blockset_t b;
    cr_assert_eq(users_blockset(&app, BOB, &b), 0);
    cr_assert(b.n == 1 && pub_ids_has(&b, ALICE));
    pub_ids_free(&b);
    cr_assert_eq(deliver("block.deleted", "{\"blocker_id\":\"" ALICE "\",\"blocked_id\":\"" BOB "\","
                                          "\"deleted_at\":\"2026-11-21T10:00:05Z\"}"),
                 MQ_ACK);
    cr_assert_eq(users_hidden(&app, BOB, ALICE), 0);
}

Test(store, a_deleted_account_takes_its_posts_comments_and_likes)
{
    cr_assert_eq(deliver("user.registered", "{\"user_id\":\"" BOB "\",\"username\":\"bob\",\"email\":\"b@x.io\","
                                            "\"name\":\"\",\"created_at\":\"2026-11-21T10:00:00Z\"}"),
                 MQ_ACK);
    post_doc(POST, ALICE);
    post_doc(POST2, BOB);
    comment_doc(C1, POST, BOB, NULL);
    comment_doc(C2, POST, ALICE, C1); /* Alice's reply in Bob's thread goes with it */
    like_doc(POST, "post", BOB, "o1");
    like_doc(POST, "post", ALICE, "o2");
    counts_sync(&app, POST, 1);
    counts_are(POST, 2, 2);
    const char *gone = "{\"user_id\":\"" BOB "\",\"username\":\"bob\",\"deleted_at\":\"2026-11-21T11:00:00Z\"}";
    cr_assert_eq(deliver("user.deleted", gone), MQ_ACK);
    cr_assert_eq(deliver("user.deleted", gone), MQ_ACK, "a redelivery finds nothing more to do");
    counts_are(POST, 1, 0);
    cr_assert_eq(count("posts", BCON_NEW("author_id", BCON_UTF8(BOB))), 0);
    cr_assert_eq(count("posts", BCON_NEW("_id", BCON_UTF8(POST))), 1, "Alice's post stays");
    cr_assert_eq(count("outbox", BCON_NEW("key", BCON_UTF8("post.deleted"), "a", BCON_UTF8(POST2))), 1,
                 "one post.deleted for Bob's post");
    cJSON *a = NULL;
    char id[64];
    cr_assert_eq(users_author(&app, BOB, &a), 0);
    cr_assert_eq(users_gone(&app, BOB), 1);
    cr_assert_eq(users_by_name(&app, "bob", id), 0, "the name is free again");
    cr_assert_eq(deliver("user.registered", "{\"user_id\":\"" ALICE "\",\"username\":\"bob\",\"email\":\"b@x.io\","
                                            "\"name\":\"\",\"created_at\":\"2026-11-21T12:00:00Z\"}"),
                 MQ_ACK);
    cr_assert_eq(users_by_name(&app, "bob", id), 1, "and taken by a new account");
    cr_assert_str_eq(id, ALICE);
    /* a late event about the account does not bring it back */
    cr_assert_eq(deliver("user.updated", "{\"user_id\":\"" BOB "\",\"username\":\"bob\",\"email\":\"b@x.io\","
                                         "\"name\":\"Back\",\"bio\":\"\",\"avatar_media_id\":null,"
                                         "\"updated_at\":\"2026-11-21T10:30:00Z\"}"),
                 MQ_ACK);
    cr_assert_eq(users_author(&app, BOB, &a), 0);
}
