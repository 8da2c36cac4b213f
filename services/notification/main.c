/* main.c -- the notification daemon: configuration, database, the inbox routes, the events
 * consumer, and the push and mail threads. */
#include <pthread.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "core/core.h"
#include "log/log.h"
#include "notif.h"

static notif_conf_t conf;

static const cfg_var_t conf_table[] = {
    SVC_CFG_COMMON(conf.svc, "127.0.0.1:9104"),
    {"NOTIFICATION_MONGO_URI", CFG_STRING, "mongodb://127.0.0.1:27017/notification",
     "MongoDB URI of notification's own database", &conf.mongo_uri},
    {"CURSOR_SECRET", CFG_SECRET, "development cursor secret; set one in production",
     "key of pagination cursors (the same on every copy); or a file in CURSOR_SECRET_FILE", &conf.cursor_secret},
    {"NOTIFICATION_RPC_TIMEOUT", CFG_MS, "5s", "how long a call to resize-image (avatars) may take",
     &conf.rpc_timeout_ms, 100, 60000},
    {"NOTIFY_MAX_ITEMS", CFG_INT, "500", "notifications an inbox keeps (the oldest go)", &conf.max_items, 10,
     100000},
    {"NOTIFY_TRIM_EVERY", CFG_INT, "16", "about one inbox write in this many trims the inbox", &conf.trim_every, 1,
     100000},
    {"NOTIFY_RETENTION", CFG_MS, "2160h", "notifications older than this are no longer shown (90 days)",
     &conf.retention_ms, 60000, 10L * 365 * 24 * 3600 * 1000},
    {"NOTIFY_POST_BATCH", CFG_INT, "500", "followers told of a new post per bulk write", &conf.post_batch, 1,
     1000},
    {"NOTIFY_PURGE_INTERVAL", CFG_MS, "10m", "how often old tombstones and push logs are removed",
     &conf.purge_interval_ms, 100, 24L * 3600 * 1000},
    {"FCM_CREDENTIALS", CFG_STRING, "",
     "service-account key file (JSON) of Firebase Cloud Messaging; empty: push is off", &conf.fcm_credentials},
    {"FCM_ENDPOINT", CFG_STRING, "https://fcm.googleapis.com", "FCM HTTP v1 base URL", &conf.fcm_endpoint},
    {"PUSH_MAX_IN_FLIGHT", CFG_INT, "256", "sends to FCM in flight at once (HTTP/2 streams)", &conf.push_in_flight,
     1, 10000},
    {"PUSH_ATTEMPTS", CFG_INT, "6", "tries of one send on 429, 5xx or a network error, with backoff",
     &conf.push_attempts, 1, 100},
    {"PUSH_BACKOFF", CFG_MS, "1s", "first pause before trying a send again (doubled each time; Retry-After wins)",
     &conf.push_backoff_ms, 1, 3600000},
    {"PUSH_TIMEOUT", CFG_MS, "10s", "how long one request to FCM may take", &conf.push_timeout_ms, 100, 600000},
    {"PUSH_JOB_ATTEMPTS", CFG_INT, "10",
     "times sends that still fail go back to notification.push before they are dead-lettered",
     &conf.push_job_attempts, 1, 1000},
    {"SMTP_URL", CFG_STRING, "", "mail server (smtp://host:587 or smtps://host:465); empty: no welcome e-mail",
     &conf.smtp_url},
    {"MAIL_FROM", CFG_STRING, "Photo <no-reply@photo.invalid>", "From of the welcome e-mail", &conf.mail_from},
    {"SMTP_USER", CFG_STRING, "", "SMTP user (empty: no authentication)", &conf.smtp_user},
    {"SMTP_PASSWORD", CFG_SECRET, "", "SMTP password; or a file in SMTP_PASSWORD_FILE", &conf.smtp_password},
    {"SMTP_STARTTLS", CFG_BOOL, "false", "require STARTTLS on smtp:// (it is used when offered either way)",
     &conf.smtp_starttls},
    {"SMTP_TIMEOUT", CFG_MS, "30s", "how long one mail may take", &conf.smtp_timeout_ms, 100, 600000},
    {"PRODUCT_NAME", CFG_STRING, "Photo", "the product's name in pushes and mails", &conf.product_name},
    {0},
};

static notif_t app = {.conf = &conf};

/* The purge thread: old tombstones and push logs, every NOTIFY_PURGE_INTERVAL. */
static struct {
    pthread_t thread;
    int started;
    volatile int stop;
} purge;

/* ================================================================ store */

static void *notif_purge_run(void *arg)
{
    (void)arg;
    while (!purge.stop) {
        core_sleep_ms((unsigned)conf.purge_interval_ms, &purge.stop);
        if (purge.stop)
            break;
        if (inbox_purge(&app) != 0 || push_purge_logs(&app) != 0)
            log_warn(NULL, "purge of old tombstones or push logs failed; tried again at the next interval");
    }
    return NULL;
}

static int notif_indexes(char *err, size_t errlen)
{
    /* Everything is read by _id; stops is also purged by age. */
    static const db_index_t idx_stops[] = {{"at_1", "{\"at\": 1}", 0}};
    const db_index_set_t all[] = {{"stops", idx_stops, CORE_ARRAY_SIZE(idx_stops)}};
    return db_ensure_all_indexes(app.db, all, CORE_ARRAY_SIZE(all), 30, err, errlen);
}

static int notif_start(svc_t *svc, void *ud)
{
    (void)ud;
    char err[512];
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error(NULL, "libsodium or libcurl cannot start");
        return -1;
    }
    app.metrics = svc_metrics(svc);
    cursor_key_init(&app.cursor, conf.cursor_secret);
    db_log_init();
    app.db = db_open(conf.mongo_uri, "notification", "notification", err, sizeof(err));
    if (app.db == NULL) {
        log_error(NULL, "NOTIFICATION_MONGO_URI: %s", err);
        return -1;
    }
    if (notif_indexes(err, sizeof(err)) != 0) {
        log_error(NULL, "NOTIFICATION_MONGO_URI: cannot create indexes (is the database up?): %s", err);
        return -1;
    }
    mq_conf_t mc = {.url = conf.svc.amqp_url, .app_id = "notification"};
    app.rpc = mq_rpc_client_start(&mc);
    if (app.rpc == NULL) {
        log_error(NULL, "AMQP_URL: cannot start the RPC client");
        return -1;
    }
    if (push_start(&app) != 0 || welcome_start(&app) != 0)
        return -1;
    if (pthread_create(&purge.thread, NULL, notif_purge_run, NULL) != 0) {
        log_error(NULL, "cannot start the purge thread");
        return -1;
    }
    purge.started = 1;
    return 0;
}

static void notif_stop(svc_t *svc, void *ud)
{
    (void)svc;
    (void)ud;
    purge.stop = 1;
    if (purge.started)
        pthread_join(purge.thread, NULL);
    welcome_stop(&app);
    push_stop(&app);
    for (size_t i = 0; i < app.nworkers; i++) {
        mq_free(app.workers[i]->pub);
        free(app.workers[i]);
    }
    free(app.workers);
    mq_rpc_client_stop(app.rpc);
    app.rpc = NULL;
    db_close(app.db);
    curl_global_cleanup();
    cfg_free(conf_table);
}

static int notif_ready(void *ud, cJSON *checks)
{
    (void)ud;
    return db_ready(app.db, checks);
}

/* ================================================================ RPC */

typedef void (*notif_handler_fn)(notif_t *n, const mq_message_t *req, mq_reply_t *r);

static const struct {
    rpc_method_t m;
    notif_handler_fn fn;
} notif_methods[] = {
    {{"notification.list", 1}, inbox_list},
    {{"notification.unread_count", 1}, inbox_unread_count},
    {{"notification.read_all", 1}, inbox_read_all},
    {{"notification.mark", 1}, inbox_mark},
};

static void notif_rpc_dispatch(mq_t *mq, const mq_message_t *req, mq_reply_t *reply, void *ud)
{
    (void)mq;
    long i = rpc_method_find(notif_methods, CORE_ARRAY_SIZE(notif_methods), sizeof(notif_methods[0]), req, reply);
    if (i >= 0)
        notif_methods[i].fn(ud, req, reply);
}

/* ================================================================ events */

static void setup_worker(svc_t *svc, mq_t *mq, void *ud)
{
    (void)ud;
    svc_serve_rpc(svc, mq, notif_rpc_dispatch, &app);
    static const char *const keys[] = {"user.registered", "user.updated",    "user.deleted",   "follow.created",
                                       "follow.deleted",  "block.created",   "block.deleted",  "like.created",
                                       "like.deleted",    "comment.created", "comment.deleted", "post.created",
                                       "post.deleted",    "device.registered", "device.removed", NULL};
    mq_declare_event_queue(mq, "notification.events", keys, 0);
    events_worker_t *w = xcalloc(1, sizeof(*w));
    mq_conf_t pc = {.url = conf.svc.amqp_url, .app_id = "notification", .confirms = 1};
    w->n = &app;
    w->pub = mq_new(&pc);
    mq_declare_work_queue(w->pub, "notification.push");
    app.workers = xrealloc(app.workers, (app.nworkers + 1) * sizeof(*app.workers));
    app.workers[app.nworkers++] = w;
    mq_consume(mq, "notification.events", events_on_message, w);
}

int main(int argc, char **argv)
{
    static const svc_def_t def = {
        .name = "notification",
        .summary = "notification: in-app inbox, FCM push, welcome e-mail",
        .setup_worker = setup_worker,
        .ready = notif_ready,
        .start = notif_start,
        .stop = notif_stop,
        /* an event that fails because the database is away is tried again for about an hour
         * (pauses of at most 3.2 s plus 2 s waiting for a server) before it is dead-lettered */
        .max_retries = 1000,
    };
    return svc_main(argc, argv, &def, conf_table, &conf.svc);
}
