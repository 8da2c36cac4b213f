/* main.c -- the search daemon: configuration, database, the routes, the documents' consumer and
 * the index thread. */
#include <string.h>

#include "core/core.h"
#include "log/log.h"
#include "search.h"

static search_conf_t conf;

static const cfg_var_t conf_table[] = {
    SVC_CFG_COMMON(conf.svc, "127.0.0.1:9105"),
    {"SEARCH_MONGO_URI", CFG_STRING, "mongodb://127.0.0.1:27017/search", "MongoDB URI of search's own database",
     &conf.mongo_uri},
    {"SEARCH_INDEX_DIR", CFG_STRING, "/tmp",
     "directory of this copy's index file (rebuilt from MongoDB at every start; a local disk)", &conf.index_dir},
    {"SEARCH_CANDIDATES", CFG_INT, "300",
     "posts or users ranked at most per query: the newest matches when more match", &conf.candidates, 10,
     1000000},
    {"SEARCH_PURGE_AFTER", CFG_MS, "168h", "age after which deleted posts' and accounts' tombstones are removed",
     &conf.purge_after_ms, 60000, 10L * 365 * 24 * 3600 * 1000},
    {0},
};

static search_t app = {.conf = &conf};

static struct {
    pthread_t thread;
    int started;
    volatile int stop;
    search_worker_t **workers;
    size_t nworkers;
} run;

/* ================================================================ store */

/* Tombstones, hourly. */
static void *search_purge_run(void *arg)
{
    (void)arg;
    while (!run.stop) {
        core_sleep_ms(3600 * 1000, &run.stop);
        if (!run.stop && docs_purge(&app) != 0)
            log_warn(NULL, "purge of old tombstones failed; tried again in an hour");
    }
    return NULL;
}

static int search_indexes(char *err, size_t errlen)
{
    /* Everything is read by _id; a deleted account's posts are found by author. */
    static const db_index_t idx_posts[] = {{"a_1", "{\"a\": 1}", 0}};
    const db_index_set_t all[] = {{"posts", idx_posts, CORE_ARRAY_SIZE(idx_posts)}};
    return db_ensure_all_indexes(app.db, all, CORE_ARRAY_SIZE(all), 30, err, errlen);
}

static int search_start(svc_t *svc, void *ud)
{
    (void)ud;
    char err[512];
    app.metrics = svc_metrics(svc);
    db_log_init();
    app.db = db_open(conf.mongo_uri, "search", "search", err, sizeof(err));
    if (app.db == NULL) {
        log_error(NULL, "SEARCH_MONGO_URI: %s", err);
        return -1;
    }
    if (search_indexes(err, sizeof(err)) != 0) {
        log_error(NULL, "SEARCH_MONGO_URI: cannot create indexes (is the database up?): %s", err);
        return -1;
    }
    if (sqlite3_libversion_number() < 3035000 || sqlite3_compileoption_used("ENABLE_FTS5") == 0) {
        log_error(NULL, "SQLite %s has no FTS5 (or is older than 3.35)", sqlite3_libversion());
        return -1;
    }
    app.rank = rank_new();
    if (index_start(&app) != 0)
        return -1;
    if (pthread_create(&run.thread, NULL, search_purge_run, NULL) != 0) {
        log_error(NULL, "cannot start the purge thread");
        return -1;
    }
    run.started = 1;
    return 0;
}

static void search_stop(svc_t *svc, void *ud)
{
    (void)svc;
    (void)ud;
    run.stop = 1;
    if (run.started)
        pthread_join(run.thread, NULL);
    index_stop(&app);
    for (size_t i = 0; i < run.nworkers; i++) {
        mq_free(run.workers[i]->pub);
        index_reader_close(run.workers[i]);
        free(run.workers[i]);
    }
    free(run.workers);
    db_close(app.db);
    rank_free(app.rank);
    app.rank = NULL;
    cfg_free(conf_table);
}

static int search_ready(void *ud, cJSON *checks)
{
    (void)ud;
    int db = db_ready(app.db, checks), built = app.index != NULL && index_ready(&app);
    cJSON_AddStringToObject(checks, "index", built ? "up" : "building");
    return db && built;
}

/* ================================================================ RPC */

typedef void (*search_handler_fn)(search_worker_t *w, const mq_message_t *req, mq_reply_t *r);

static const struct {
    rpc_method_t m;
    search_handler_fn fn;
} search_methods[] = {
    {{"search.search", 0}, query_search},
    {{"search.autocomplete", 0}, query_autocomplete},
};

static void search_rpc_dispatch(mq_t *mq, const mq_message_t *req, mq_reply_t *reply, void *ud)
{
    (void)mq;
    long i = rpc_method_find(search_methods, CORE_ARRAY_SIZE(search_methods), sizeof(search_methods[0]), req, reply);
    if (i >= 0)
        search_methods[i].fn(ud, req, reply);
}

/* ================================================================ events */

static void setup_worker(svc_t *svc, mq_t *mq, void *ud)
{
    (void)ud;
    search_worker_t *w = xcalloc(1, sizeof(*w));
    w->s = &app;
    mq_conf_t pc = {.url = conf.svc.amqp_url, .app_id = "search", .confirms = 1};
    w->pub = mq_new(&pc);
    mq_declare_topic_queue(w->pub, SEARCH_SYNC_EXCHANGE, NULL, NULL, 0);
    run.workers = xrealloc(run.workers, (run.nworkers + 1) * sizeof(*run.workers));
    run.workers[run.nworkers++] = w;
    svc_serve_rpc(svc, mq, search_rpc_dispatch, w);
    static const char *const keys[] = {"user.registered", "user.updated",    "user.deleted",    "post.created",
                                       "post.updated",    "post.deleted",    "like.created",    "like.deleted",
                                       "comment.created", "comment.deleted", "follow.created",  "follow.deleted",
                                       "block.created",   "block.deleted",   NULL};
    mq_declare_event_queue(mq, "search.events", keys, 0);
    mq_consume(mq, "search.events", docs_on_event, w);
}

int main(int argc, char **argv)
{
    static const svc_def_t def = {
        .name = "search",
        .summary = "search: ranked search of posts, users and hashtags, autocomplete",
        .setup_worker = setup_worker,
        .ready = search_ready,
        .start = search_start,
        .stop = search_stop,
        /* an event that fails because the database is away is tried again for about an hour */
        .max_retries = 1000,
        /* requests are short: few unacked per worker, so one slow query holds up no queue of others */
        .prefetch = 2,
    };
    return svc_main(argc, argv, &def, conf_table, &conf.svc);
}
