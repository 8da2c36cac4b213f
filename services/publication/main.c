/* main.c -- the publication daemon: configuration, database, outbox, RPC client, fanout, method
 * table and event wiring. */
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "log/log.h"
#include "pub.h"

static pub_conf_t conf;

static const cfg_var_t conf_table[] = {
    SVC_CFG_COMMON(conf.svc, "127.0.0.1:9103"),
    {"PUBLICATION_MONGO_URI", CFG_STRING, "mongodb://127.0.0.1:27017/publication",
     "MongoDB URI of publication's own database", &conf.mongo_uri},
    {"CURSOR_SECRET", CFG_SECRET, "development cursor secret; set one in production",
     "key of pagination cursors (the same on every copy); or a file in CURSOR_SECRET_FILE", &conf.cursor_secret},
    {"PUBLICATION_RPC_TIMEOUT", CFG_MS, "5s", "how long a call to resize-image or auth may take",
     &conf.rpc_timeout_ms, 100, 60000},
    {"PUBLICATION_OUTBOX_RECOVER_AFTER", CFG_MS, "30s",
     "age of a pending outbox event after which it counts as abandoned (longer than any request)",
     &conf.outbox_recover_after_ms, 1000, 3600000},
    {"PUBLICATION_OUTBOX_POLL", CFG_MS, "1s", "how often the relay looks for events when not woken",
     &conf.outbox_poll_ms, 10, 60000},
    {"FEED_FANOUT_MAX_FOLLOWERS", CFG_INT, "10000",
     "authors with more followers are merged into feeds at read time, not fanned out",
     &conf.feed_fanout_max_followers, 0, 100000000},
    {"FEED_MAX_ITEMS", CFG_INT, "800", "entries a home timeline keeps", &conf.feed_max_items, 10, 100000},
    {"FEED_FANOUT_BATCH", CFG_INT, "1000", "followers per fanout batch (one bulk write)", &conf.feed_fanout_batch, 1,
     100000},
    {"FEED_BACKFILL", CFG_INT, "50", "newest posts of a followed account added on follow", &conf.feed_backfill, 0,
     100000},
    {"FEED_TRIM_EVERY", CFG_INT, "16", "about one fanout write in this many trims the timeline",
     &conf.feed_trim_every, 1, 100000},
    {"FEED_FANOUT_WORKERS", CFG_INT, "2", "consumer threads of publication.fanout (own connection, prefetch 1)",
     &conf.feed_fanout_workers, 1, 64},
    {"STORY_TTL", CFG_MS, "24h", "how long a story is active", &conf.story_ttl_ms, 1000, 30L * 24 * 3600 * 1000},
    {"STORY_PURGE_INTERVAL", CFG_MS, "10m", "how often expired stories are deleted", &conf.story_purge_interval_ms,
     100, 24L * 3600 * 1000},
    {0},
};

static pub_t app = {.conf = &conf};

/* ================================================================ store */

static const db_index_t idx_edges[] = {
    {"from_1", "{\"from\": 1}", 0},
    {"to_1", "{\"to\": 1}", 0},
};
static const db_index_t idx_posts[] = {
    {"author_id_1__id_-1", "{\"author_id\": 1, \"_id\": -1}", 0},
    {"tags_1__id_-1", "{\"tags\": 1, \"_id\": -1}", 0},
};
static const db_index_t idx_comments[] = {
    {"post_id_1_order_1", "{\"post_id\": 1, \"order\": 1}", 0},
    {"reply_to_1", "{\"reply_to\": 1}", 0},
    {"author_id_1", "{\"author_id\": 1}", 0},
};
static const db_index_t idx_likes[] = {
    {"target_1_seq_-1", "{\"target\": 1, \"seq\": -1}", 0},
    {"user_id_1", "{\"user_id\": 1}", 0},
};

/* Indexes are made at start; a database that is not up yet gets 30 s. */
static int pub_indexes(char *err, size_t errlen)
{
    const db_index_set_t all[] = {
        {"follows", idx_edges, CORE_ARRAY_SIZE(idx_edges)},
        {"blocks", idx_edges, CORE_ARRAY_SIZE(idx_edges)},
        {"posts", idx_posts, CORE_ARRAY_SIZE(idx_posts)},
        {"comments", idx_comments, CORE_ARRAY_SIZE(idx_comments)},
        {"likes", idx_likes, CORE_ARRAY_SIZE(idx_likes)},
        {"outbox", outbox_indexes, outbox_nindexes},
    };
    return db_ensure_all_indexes(app.db, all, CORE_ARRAY_SIZE(all), 30, err, errlen);
}

static int pub_start(svc_t *svc, void *ud)
{
    (void)ud;
    char err[512];
    if (sodium_init() < 0) {
        log_error(NULL, "libsodium cannot start");
        return -1;
    }
    cursor_key_init(&app.cursor, conf.cursor_secret);
    db_log_init();
    app.db = db_open(conf.mongo_uri, "publication", "publication", err, sizeof(err));
    if (app.db == NULL) {
        log_error(NULL, "PUBLICATION_MONGO_URI: %s", err);
        return -1;
    }
    if (pub_indexes(err, sizeof(err)) != 0) {
        log_error(NULL, "PUBLICATION_MONGO_URI: cannot create indexes (is the database up?): %s", err);
        return -1;
    }
    mq_conf_t mc = {.url = conf.svc.amqp_url, .app_id = "publication"};
    app.rpc = mq_rpc_client_start(&mc);
    if (app.rpc == NULL) {
        log_error(NULL, "AMQP_URL: cannot start the RPC client");
        return -1;
    }
    outbox_conf_t oc = {
        .db = app.db,
        .amqp_url = conf.svc.amqp_url,
        .app_id = "publication",
        .recover_after_ms = conf.outbox_recover_after_ms,
        .poll_ms = conf.outbox_poll_ms,
        .recover = pub_outbox_recover,
        .ud = &app,
        .metrics = svc_metrics(svc), /* publication_outbox_committed_total, publication_events_published_total */
    };
    app.outbox = outbox_start(&oc, err, sizeof(err));
    if (app.outbox == NULL) {
        log_error(NULL, "outbox: %s", err);
        return -1;
    }
    return fanout_start(&app);
}

static void pub_stop(svc_t *svc, void *ud)
{
    (void)svc;
    (void)ud;
    fanout_stop(&app);
    outbox_stop(app.outbox);
    app.outbox = NULL;
    mq_rpc_client_stop(app.rpc);
    app.rpc = NULL;
    db_close(app.db);
    cfg_free(conf_table);
}

static int pub_ready(void *ud, cJSON *checks)
{
    (void)ud;
    return db_ready(app.db, checks);
}

/* ================================================================ RPC */

static const struct {
    rpc_method_t m;
    pub_handler_fn fn;
} pub_methods[] = {
    {{"publication.post_create", 1}, posts_create},
    {{"publication.post_get", 0}, posts_get},
    {{"publication.post_update", 1}, posts_update},
    {{"publication.post_delete", 1}, posts_remove},
    {{"publication.user_posts", 0}, posts_of_user},
    {{"publication.tag_posts", 0}, posts_of_tag},
    {{"publication.comments_list", 0}, comments_list},
    {{"publication.comment_create", 1}, comments_create},
    {{"publication.comment_get", 0}, comments_get},
    {{"publication.comment_update", 1}, comments_update},
    {{"publication.comment_delete", 1}, comments_remove},
    {{"publication.post_like", 1}, likes_post_like},
    {{"publication.post_unlike", 1}, likes_post_unlike},
    {{"publication.comment_like", 1}, likes_comment_like},
    {{"publication.comment_unlike", 1}, likes_comment_unlike},
    {{"publication.post_likes", 0}, likes_post_likers},
    {{"publication.feed", 1}, feed_get},
    {{"publication.story_create", 1}, stories_create},
    {{"publication.stories_feed", 1}, stories_feed},
    {{"publication.story_delete", 1}, stories_remove},
    {{"publication.story_seen", 1}, stories_mark_seen},
    {{"publication.user_stories", 0}, stories_of_user},
    {{"publication.highlight_create", 1}, highlights_create},
    {{"publication.user_highlights", 0}, highlights_of_user},
    {{"publication.highlight_delete", 1}, highlights_remove},
};

static void pub_rpc_dispatch(mq_t *mq, const mq_message_t *req, mq_reply_t *reply, void *ud)
{
    (void)mq;
    long i = rpc_method_find(pub_methods, CORE_ARRAY_SIZE(pub_methods), sizeof(pub_methods[0]), req, reply);
    if (i >= 0)
        pub_methods[i].fn(ud, req, reply);
}

static void setup_worker(svc_t *svc, mq_t *mq, void *ud)
{
    (void)ud;
    svc_serve_rpc(svc, mq, pub_rpc_dispatch, &app);
    static const char *const keys[] = {"user.registered", "user.updated", "user.deleted", "follow.created",
                                       "follow.deleted",  "block.created", "block.deleted", NULL};
    mq_declare_event_queue(mq, "publication.events", keys, 0);
    mq_consume(mq, "publication.events", users_on_event, &app);
}

int main(int argc, char **argv)
{
    static const svc_def_t def = {
        .name = "publication",
        .summary = "publication: posts, comments, likes, post lists, home feed, stories, highlights",
        .setup_worker = setup_worker,
        .ready = pub_ready,
        .start = pub_start,
        .stop = pub_stop,
    };
    return svc_main(argc, argv, &def, conf_table, &conf.svc);
}
