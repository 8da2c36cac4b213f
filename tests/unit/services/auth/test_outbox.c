/* test_outbox.c -- auth against a real FerretDB (TEST_MONGO_URI): outbox recovery after a crash
 * (libs/outbox driving auth's recover callback), refresh-token rotation and reuse, password hashes.
 * Includes the daemon's files (not main.c). */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "../../testutil.h"
#include "../../../../services/auth/accounts.c"
#include "../../../../services/auth/counters.c"
#include "../../../../services/auth/devices.c"
#include "../../../../services/auth/graph.c"
#include "../../../../services/auth/limits.c"
#include "../../../../services/auth/posts.c"
#include "../../../../services/auth/recover.c"
#include "../../../../services/auth/rpc.c"
#include "../../../../services/auth/tokens.c"
#include "../../../../services/auth/validate.c"

static auth_conf_t conf = {
    .access_ttl_ms = 900000,
    .refresh_ttl_ms = 3600000,
    .pw_opslimit = 2,
    .pw_memlimit_kib = 19456,
    .outbox_recover_after_ms = 1000,
    .outbox_poll_ms = 100,
    .max_devices = 10,
    .login_failures_per_account = 5,
    .login_failures_per_address = 12,
    .login_failure_window_ms = 60000,
    .registrations_per_address = 10,
    .registration_window_ms = 60000,
    .jwt_issuer = "photo-auth",
    .jwt_audience = "photo-api",
};
static auth_t app = {.conf = &conf};
static metrics_registry_t *reg;
static mq_t *dead_broker; /* publishing always fails: ready events stay in the outbox */

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    char dbname[48], err[256], id[37];
    core_uuid(id);
    id[8] = '\0';
    app.db = tu_db_open("auth_test", id, dbname, sizeof(dbname));
    pthread_mutex_init(&app.counters_lock, NULL);
    cursor_key_init(&app.cursor, "test");
    reg = metrics_registry_new();
    static const char *const key_label[] = {"key", NULL};
    app.logins = metrics_counter(reg, "l", "l", key_label);
    outbox_conf_t oc = {.db = app.db,
                        .app_id = "auth",
                        .recover_after_ms = conf.outbox_recover_after_ms,
                        .poll_ms = conf.outbox_poll_ms,
                        .recover = auth_outbox_recover,
                        .ud = &app,
                        .metrics = reg};
    app.outbox = outbox_start(&oc, err, sizeof(err)); /* no AMQP URL: no relay thread */
    cr_assert_not_null(app.outbox, "%s", err);
    mq_conf_t mc = {.url = "amqp://guest:guest@127.0.0.1:1", .app_id = "auth", .confirms = 1};
    dead_broker = mq_new(&mc);
}

static void teardown(void)
{
    mq_free(dead_broker);
    outbox_stop(app.outbox);
    app.outbox = NULL;
    db_close(app.db);
    metrics_registry_free(reg);
    pthread_mutex_destroy(&app.counters_lock);
}

TestSuite(outbox, .init = setup, .fini = teardown, .timeout = 60);

/* A pending event as a request that died after outbox_begin would leave it, aged. */
static void pending(const char *key, const char *a, const char *b, int64_t age_ms, char id[37])
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "x", "y");
    cr_assert_eq(outbox_begin(app.outbox, key, p, a, b, NULL, id), 0);
    cJSON_Delete(p);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *u = BCON_NEW("$set", "{", "created_at", BCON_DATE_TIME(core_wall_ms() - age_ms), "}");
    cr_assert_eq(db_update_one(app.db, "outbox", f, u, 0), 1);
    bson_destroy(f);
    bson_destroy(u);
}

/* "pending", "ready", or NULL when the event is gone. */
static const char *state(const char *id)
{
    static char buf[16];
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    bson_t doc = BSON_INITIALIZER;
    int rc = db_find_one(app.db, "outbox", f, NULL, &doc);
    bson_destroy(f);
    cr_assert_geq(rc, 0);
    const char *s = rc == 1 ? db_doc_str(&doc, "state") : NULL;
    if (s != NULL)
        snprintf(buf, sizeof(buf), "%s", s);
    bson_destroy(&doc);
    return s != NULL ? buf : NULL;
}

static void insert(const char *coll, bson_t *doc)
{
    cr_assert_eq(db_insert(app.db, coll, doc), 0);
    bson_destroy(doc);
}

Test(outbox, recovery_completes_writes_that_happened_and_drops_the_others)
{
    char reg_done[37], reg_lost[37], fol_done[37], fol_lost[37], young[37], del_done[37], dev_kept[37];
    /* An account that was stored, and one that never was. */
    insert("users", BCON_NEW("_id", "u1", "username", "u1name", "email", "u1@x.io"));
    pending("user.registered", "u1", NULL, 5000, reg_done);
    pending("user.registered", "u2", NULL, 5000, reg_lost);
    /* A follow whose edge was stored (with this event's op) but whose counts were not. */
    pending("follow.created", "u1", "u3", 5000, fol_done);
    insert("follows", BCON_NEW("_id", "u1:u3", "from", "u1", "to", "u3", "created_at",
                               BCON_DATE_TIME(core_wall_ms()), "op", BCON_UTF8(fol_done)));
    /* A follow edge of another request: not this event's write. */
    pending("follow.created", "u4", "u3", 5000, fol_lost);
    insert("follows", BCON_NEW("_id", "u4:u3", "from", "u4", "to", "u3", "created_at",
                               BCON_DATE_TIME(core_wall_ms()), "op", "someone-else"));
    /* An account deleted (document gone) whose follows were not cleaned up yet. */
    pending("user.deleted", "u5", NULL, 5000, del_done);
    insert("follows", BCON_NEW("_id", "u5:u3", "from", "u5", "to", "u3", "created_at",
                               BCON_DATE_TIME(core_wall_ms()), "op", "x"));
    /* A device removal whose delete never ran. */
    insert("devices", BCON_NEW("_id", "tok1", "user_id", "u1", "platform", "ios"));
    pending("device.removed", "u1", "tok1", 5000, dev_kept);
    /* Young: its request may still be running. */
    pending("user.registered", "u9", NULL, 0, young);

    cr_assert_eq(outbox_pass(app.outbox, dead_broker, core_wall_ms()), -1); /* nothing can be published */

    cr_assert_str_eq(state(reg_done), "ready");
    cr_assert_null(state(reg_lost));
    cr_assert_str_eq(state(fol_done), "ready");
    cr_assert_null(state(fol_lost));
    cr_assert_str_eq(state(del_done), "ready");
    cr_assert_null(state(dev_kept));
    cr_assert_str_eq(state(young), "pending");
    long c[3];
    cr_assert_eq(counter_get(&app, "u3", c), 0);
    cr_assert_eq(c[CTR_FOLLOWERS], 2, "recounted from the edges u1:u3 and u4:u3 (u5's went with u5)");
    cr_assert_eq(counter_get(&app, "u1", c), 0);
    cr_assert_eq(c[CTR_FOLLOWING], 1);
    bson_t *f = BCON_NEW("from", "u5");
    cr_assert_eq(db_count(app.db, "follows", f), 0);
    bson_destroy(f);
}

Test(outbox, a_committed_event_waits_for_the_broker)
{
    char id[37];
    cJSON *p = cJSON_CreateObject();
    cr_assert_eq(outbox_begin(app.outbox, "block.deleted", p, "a", "b", "rid", id), 0);
    cJSON_Delete(p);
    cr_assert_str_eq(state(id), "pending");
    cr_assert_eq(outbox_commit(app.outbox, id), 0);
    cr_assert_eq(outbox_pass(app.outbox, dead_broker, core_wall_ms()), -1);
    cr_assert_str_eq(state(id), "ready");
    char *text = metrics_render(reg, NULL); /* the names auth's dashboards know */
    cr_assert(strstr(text, "\nauth_outbox_committed_total 1\n") != NULL, "%s", text);
    cr_assert(strstr(text, "# TYPE auth_events_published_total counter\n") != NULL, "%s", text);
    free(text);
    outbox_abort(app.outbox, id);
    cr_assert_null(state(id));
}

/* ================================================================ tokens */

static mq_reply_t call(auth_handler_fn fn, const char *body, const char *user_id)
{
    mq_message_t m = {.type = "t",
                      .body = body,
                      .body_len = body != NULL ? strlen(body) : 0,
                      .user_id = user_id,
                      .client_addr = "192.0.2.1"};
    mq_reply_t r = {0};
    fn(&app, &m, &r);
    return r;
}

static void reply_clear(mq_reply_t *r)
{
    free(r->body);
    free(r->content_type);
    free(r->headers_json);
}

static char *refresh_of(const mq_reply_t *r)
{
    cJSON *j = cJSON_Parse(r->body);
    char *t = xstrdup(cJSON_GetStringValue(cJSON_GetObjectItem(j, "refresh_token")));
    cJSON_Delete(j);
    return t;
}

static char *private_key(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *pem = xstrndup(data, (size_t)n);
    BIO_free(b);
    EVP_PKEY_free(k);
    return pem;
}

Test(outbox, refresh_rotates_and_a_reused_token_revokes_the_family)
{
    conf.private_key = private_key();
    cr_assert_eq(password_hash(&app, "dummy password", app.dummy_hash), 0);
    mq_reply_t r =
        call(accounts_register,
             "{\"username\":\"Rot8\",\"email\":\"rot8@example.com\",\"password\":\"long enough\"}", NULL);
    cr_assert_eq(r.status, 201, "%s", r.body);
    char *t1 = refresh_of(&r);
    reply_clear(&r);

    char body[256];
    snprintf(body, sizeof(body), "{\"refresh_token\":\"%s\"}", t1);
    r = call(tokens_refresh, body, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    char *t2 = refresh_of(&r);
    cr_assert_str_neq(t1, t2);
    reply_clear(&r);

    r = call(tokens_refresh, body, NULL); /* t1 again: reuse */
    cr_assert_eq(r.status, 401);
    cr_assert(strstr(r.body, "refresh-token-reused") != NULL, "%s", r.body);
    reply_clear(&r);
    snprintf(body, sizeof(body), "{\"refresh_token\":\"%s\"}", t2);
    r = call(tokens_refresh, body, NULL); /* t2 was never used, but its family is revoked */
    cr_assert_eq(r.status, 401, "%s", r.body);
    reply_clear(&r);

    r = call(accounts_login, "{\"login\":\"rot8@EXAMPLE.com\",\"password\":\"long enough\"}", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body); /* a new login is a new family */
    reply_clear(&r);
    r = call(accounts_login, "{\"login\":\"rot8\",\"password\":\"wrong one\"}", NULL);
    cr_assert_eq(r.status, 401);
    reply_clear(&r);
    free(t1);
    free(t2);
    free(conf.private_key);
    conf.private_key = NULL;
}

Test(outbox, password_hashes_are_argon2id_at_the_configured_cost)
{
    char h[crypto_pwhash_STRBYTES];
    cr_assert_eq(password_hash(&app, "correct horse", h), 0);
    cr_assert(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0, "%s", h);
    cr_assert(password_verify(h, "correct horse"));
    cr_assert(!password_verify(h, "correct horsE"));
    cr_assert(!password_needs_rehash(&app, h));
    conf.pw_opslimit = 3;
    cr_assert(password_needs_rehash(&app, h));
    conf.pw_opslimit = 2;
}
