/* main.c -- the auth daemon: configuration, database and indexes, outbox relay, RPC and event wiring. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "core/core.h"
#include "log/log.h"
#include "token/token.h"

static auth_conf_t conf;

static const cfg_var_t conf_table[] = {
    SVC_CFG_COMMON(conf.svc, "127.0.0.1:9101"),
    {"AUTH_MONGO_URI", CFG_STRING, "mongodb://127.0.0.1:27017/auth", "MongoDB URI of auth's own database",
     &conf.mongo_uri},
    {"JWT_PRIVATE_KEY", CFG_SECRET, NULL,
     "RSA private key (PEM) signing access tokens; or a file in JWT_PRIVATE_KEY_FILE", &conf.private_key},
    {"JWT_ISSUER", CFG_STRING, "photo-auth", "iss of access tokens", &conf.jwt_issuer},
    {"JWT_AUDIENCE", CFG_STRING, "photo-api", "aud of access tokens", &conf.jwt_audience},
    {"AUTH_ACCESS_TTL", CFG_MS, "15m", "access-token lifetime", &conf.access_ttl_ms, 60000, 86400000},
    {"AUTH_REFRESH_TTL", CFG_MS, "720h", "refresh-token lifetime", &conf.refresh_ttl_ms, 60000, 31622400000},
    {"CURSOR_SECRET", CFG_SECRET, "development cursor secret; set one in production",
     "key of pagination cursors (the same on every copy); or a file in CURSOR_SECRET_FILE",
     &conf.cursor_secret},
    {"AUTH_PASSWORD_OPSLIMIT", CFG_INT, "2", "argon2id passes", &conf.pw_opslimit, 1, 32},
    {"AUTH_PASSWORD_MEMLIMIT_KIB", CFG_INT, "19456", "argon2id memory in KiB (OWASP: at least 19 MiB)",
     &conf.pw_memlimit_kib, 8, 4194304},
    {"AUTH_LOGIN_FAILURES_PER_ACCOUNT", CFG_INT, "10", "failed logins allowed per account in the window",
     &conf.login_failures_per_account, 1, 1000000},
    {"AUTH_LOGIN_FAILURES_PER_ADDRESS", CFG_INT, "100",
     "failed logins allowed per client address in the window", &conf.login_failures_per_address, 1, 1000000},
    {"AUTH_LOGIN_FAILURE_WINDOW", CFG_MS, "15m", "window of the failed-login limits",
     &conf.login_failure_window_ms, 1000, 86400000},
    {"AUTH_REGISTRATIONS_PER_ADDRESS", CFG_INT, "20",
     "registrations allowed per client address in the window", &conf.registrations_per_address, 1, 1000000},
    {"AUTH_REGISTRATION_WINDOW", CFG_MS, "1h", "window of the registration limit",
     &conf.registration_window_ms, 1000, 604800000},
    {"AUTH_MAX_DEVICES", CFG_INT, "10", "device tokens per account (the oldest go)", &conf.max_devices, 1,
     1000},
    {"AUTH_OUTBOX_RECOVER_AFTER", CFG_MS, "30s",
     "age of a pending outbox event after which it counts as abandoned (longer than any request)",
     &conf.outbox_recover_after_ms, 1000, 3600000},
    {"AUTH_OUTBOX_POLL", CFG_MS, "1s", "how often the relay looks for events when not woken",
     &conf.outbox_poll_ms, 10, 60000},
    {0},
};

static auth_t app = {.conf = &conf};

static const db_index_t idx_users[] = {
    {"username_1", "{\"username\": 1}", 1},
    {"email_1", "{\"email\": 1}", 1},
};
static const db_index_t idx_follows[] = {
    {"to_1_created_at_-1", "{\"to\": 1, \"created_at\": -1, \"_id\": -1}", 0},
    {"from_1_created_at_-1", "{\"from\": 1, \"created_at\": -1, \"_id\": -1}", 0},
};
static const db_index_t idx_blocks[] = {{"to_1", "{\"to\": 1}", 0}, {"from_1", "{\"from\": 1}", 0}};
static const db_index_t idx_devices[] = {
    {"user_id_1_created_at_1", "{\"user_id\": 1, \"created_at\": 1}", 0}};
static const db_index_t idx_refresh[] = {{"family_1", "{\"family\": 1}", 0},
                                         {"user_id_1", "{\"user_id\": 1}", 0},
                                         {"expires_at_1", "{\"expires_at\": 1}", 0}};
static const db_index_t idx_expires[] = {{"expires_at_1", "{\"expires_at\": 1}", 0}};
static const db_index_t idx_attempts[] = {{"key_1_at_-1", "{\"key\": 1, \"at\": -1}", 0},
                                          {"at_1", "{\"at\": 1}", 0}};
static const db_index_t idx_posts[] = {{"user_id_1", "{\"user_id\": 1}", 0}};

/* Indexes are made at start; a database that is not up yet gets 30 s. */
static int auth_indexes(char *err, size_t errlen)
{
    /* Not static: outbox_nindexes is a constant of another file, not a constant expression. */
    const db_index_set_t all[] = {
        {"users", idx_users, CORE_ARRAY_SIZE(idx_users)},
        {"follows", idx_follows, CORE_ARRAY_SIZE(idx_follows)},
        {"blocks", idx_blocks, CORE_ARRAY_SIZE(idx_blocks)},
        {"devices", idx_devices, CORE_ARRAY_SIZE(idx_devices)},
        {"refresh_tokens", idx_refresh, CORE_ARRAY_SIZE(idx_refresh)},
        {"refresh_spent", idx_expires, CORE_ARRAY_SIZE(idx_expires)},
        {"revoked_families", idx_expires, CORE_ARRAY_SIZE(idx_expires)},
        {"attempts", idx_attempts, CORE_ARRAY_SIZE(idx_attempts)},
        {"outbox", outbox_indexes, outbox_nindexes},
        {"user_posts", idx_posts, CORE_ARRAY_SIZE(idx_posts)},
    };
    return db_ensure_all_indexes(app.db, all, CORE_ARRAY_SIZE(all), 30, err, errlen);
}

/* The outbox relay's chores, about once a minute (outbox_housekeeping_fn): forgets old login and
 * registration attempts and expired refresh-token documents (no TTL indexes on every target). */
static void auth_housekeeping(void *ud)
{
    auth_t *a = ud;
    int64_t now = core_wall_ms();
    long window = a->conf->login_failure_window_ms > a->conf->registration_window_ms
                      ? a->conf->login_failure_window_ms
                      : a->conf->registration_window_ms;
    limit_purge(a, window);
    static const char *const expiring[] = {"refresh_tokens", "refresh_spent", "revoked_families"};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(expiring); i++) {
        bson_t *f = BCON_NEW("expires_at", "{", "$lt", BCON_DATE_TIME(now), "}");
        db_delete_many(a->db, expiring[i], f);
        bson_destroy(f);
    }
}

static int auth_start(svc_t *svc, void *ud)
{
    (void)ud;
    char err[512];
    if (sodium_init() < 0) {
        log_error(NULL, "libsodium cannot start");
        return -1;
    }
    if (conf.private_key == NULL || conf.private_key[0] == '\0') {
        log_error(NULL, "JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE is required (an RSA private key in PEM)");
        return -1;
    }
    /* Sign once now: a bad key stops the daemon at start, not at the first login. */
    char *probe = token_sign_rs256(conf.private_key, strlen(conf.private_key), "probe", conf.jwt_issuer,
                                   conf.jwt_audience, core_wall_ms() / 1000, 60, err, sizeof(err));
    if (probe == NULL) {
        log_error(NULL, "JWT_PRIVATE_KEY (or JWT_PRIVATE_KEY_FILE) is not a usable RSA private key in PEM: %s", err);
        return -1;
    }
    free(probe);
    pthread_mutex_init(&app.counters_lock, NULL);
    cursor_key_init(&app.cursor, conf.cursor_secret);
    if (password_hash(&app, "not a password anyone has", app.dummy_hash) != 0) {
        log_error(NULL, "cannot hash with AUTH_PASSWORD_MEMLIMIT_KIB=%ld", conf.pw_memlimit_kib);
        return -1;
    }
    db_log_init();
    app.db = db_open(conf.mongo_uri, "auth", "auth", err, sizeof(err));
    if (app.db == NULL) {
        log_error(NULL, "AUTH_MONGO_URI: %s", err);
        return -1;
    }
    if (auth_indexes(err, sizeof(err)) != 0) {
        log_error(NULL, "AUTH_MONGO_URI: cannot create indexes (is the database up?): %s", err);
        return -1;
    }
    metrics_registry_t *m = svc_metrics(svc);
    static const char *const outcome_label[] = {"outcome", NULL};
    app.logins = metrics_counter(m, "auth_logins_total", "password checks, by outcome", outcome_label);
    outbox_conf_t oc = {
        .db = app.db,
        .amqp_url = conf.svc.amqp_url,
        .app_id = "auth",
        .recover_after_ms = conf.outbox_recover_after_ms,
        .poll_ms = conf.outbox_poll_ms,
        .recover = auth_outbox_recover,
        .housekeeping = auth_housekeeping,
        .ud = &app,
        .metrics = m, /* auth_outbox_committed_total, auth_events_published_total */
    };
    app.outbox = outbox_start(&oc, err, sizeof(err));
    if (app.outbox == NULL) {
        log_error(NULL, "outbox: %s", err);
        return -1;
    }
    return 0;
}

static void auth_stop(svc_t *svc, void *ud)
{
    (void)svc;
    (void)ud;
    outbox_stop(app.outbox);
    app.outbox = NULL;
    db_close(app.db);
    pthread_mutex_destroy(&app.counters_lock);
    cfg_free(conf_table);
}

static int auth_ready(void *ud, cJSON *checks)
{
    (void)ud;
    return db_ready(app.db, checks);
}

static void setup_worker(svc_t *svc, mq_t *mq, void *ud)
{
    (void)ud;
    svc_serve_rpc(svc, mq, auth_rpc, &app);
    static const char *const keys[] = {"post.created", "post.deleted", NULL};
    mq_declare_event_queue(mq, "auth.events", keys, 0);
    mq_consume(mq, "auth.events", posts_on_event, &app);
}

int main(int argc, char **argv)
{
    static const svc_def_t def = {
        .name = "auth",
        .summary = "auth: accounts, tokens, the follow and block graph, devices",
        .setup_worker = setup_worker,
        .ready = auth_ready,
        .start = auth_start,
        .stop = auth_stop,
    };
    return svc_main(argc, argv, &def, conf_table, &conf.svc);
}
