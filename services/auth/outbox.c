/* outbox.c -- events stored before their write and relayed to the broker with confirms.
 *
 * A handler calls outbox_begin (the event, state "pending") before its write, then
 * outbox_commit ("ready") or outbox_abort (deleted). The relay thread publishes ready events in
 * the order they were begun, each with its outbox id as message_id, and deletes each once the
 * broker confirmed it: a crash before the delete publishes it again with the same message_id,
 * which consumers skip. No event is lost between a write and its publication.
 *
 * A pending event older than AUTH_OUTBOX_RECOVER_AFTER belongs to a request that died between
 * its begin and its commit (kill -9, a database error). Recovery looks at the decisive write of
 * that request (the account, the edge with this event's op id, the device) and either completes
 * what followed it and marks the event ready, or drops the event: the write never happened, and
 * the client never got a success. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "core/core.h"
#include "json/json.h"
#include "log/log.h"

#define OB__BATCH 200
#define OB__CONFIRM_MS 5000
#define OB__OTHERS_GRACE_MS 2000 /* a live copy publishes its own ready events within this */
#define OB__HOUSEKEEPING_MS 60000

struct auth_outbox {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop, kicked, started;
    mq_t *mq;
    char owner[37]; /* this process */
};

/* ================================================================ handlers' side */

int outbox_begin(auth_t *a, const char *key, const cJSON *payload, const char *ref_a, const char *ref_b,
                 const char *request_id, char id[37])
{
    core_uuid(id);
    char *body = json_print(payload);
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "key", BCON_UTF8(key), "body", BCON_UTF8(body), "state",
                           BCON_UTF8("pending"), "owner", BCON_UTF8(a->outbox->owner), "a", BCON_UTF8(ref_a),
                           "created_at", BCON_DATE_TIME(core_wall_ms()));
    if (ref_b != NULL)
        BSON_APPEND_UTF8(doc, "b", ref_b);
    if (request_id != NULL)
        BSON_APPEND_UTF8(doc, "request_id", request_id);
    int rc = db_insert(a->db, "outbox", doc);
    bson_destroy(doc);
    free(body);
    return rc == 0 ? 0 : -1;
}

static void ob__kick(auth_outbox_t *o)
{
    pthread_mutex_lock(&o->lock);
    o->kicked = 1;
    pthread_cond_signal(&o->wake);
    pthread_mutex_unlock(&o->lock);
}

static int ob__set_ready(auth_t *a, const char *id, const char *body)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *u = body != NULL ? BCON_NEW("$set", "{", "state", BCON_UTF8("ready"), "owner",
                                        BCON_UTF8(a->outbox->owner), "body", BCON_UTF8(body), "}")
                             : BCON_NEW("$set", "{", "state", BCON_UTF8("ready"), "}");
    int rc = db_update_one(a->db, "outbox", f, u, 0);
    bson_destroy(f);
    bson_destroy(u);
    return rc < 0 ? -1 : 0;
}

int outbox_commit(auth_t *a, const char *id)
{
    if (ob__set_ready(a, id, NULL) != 0) {
        log_warn(NULL, "outbox %s stays pending (database error); recovery will publish it", id);
        return -1;
    }
    metrics_counter_add(a->events_stored, NULL, 1);
    ob__kick(a->outbox);
    return 0;
}

void outbox_abort(auth_t *a, const char *id)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    db_delete_one(a->db, "outbox", f); /* if this fails, recovery drops it: the write is not there */
    bson_destroy(f);
}

/* ================================================================ recovery */

typedef enum { OB__KEEP, OB__READY, OB__DROP } ob__verdict_t;

static int ob__has(auth_t *a, const char *coll, const char *id, const char *k2, const char *v2)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    if (k2 != NULL)
        BSON_APPEND_UTF8(f, k2, v2);
    int rc = db_exists(a->db, coll, f);
    bson_destroy(f);
    return rc;
}

/* What to do with the pending event doc; may set *body to a new payload (malloc'd). */
static ob__verdict_t ob__recover(auth_t *a, const bson_t *doc, char **body)
{
    const char *id = db_doc_str(doc, "_id"), *key = db_doc_str(doc, "key"), *ra = db_doc_str(doc, "a"),
               *rb = db_doc_str(doc, "b");
    if (id == NULL || key == NULL || ra == NULL)
        return OB__DROP;
    char edge[160];
    snprintf(edge, sizeof(edge), "%s:%s", ra, rb != NULL ? rb : "");
    int has;
    if (strcmp(key, "user.registered") == 0) {
        has = ob__has(a, "users", ra, NULL, NULL);
        return has < 0 ? OB__KEEP : has ? OB__READY : OB__DROP;
    }
    if (strcmp(key, "user.updated") == 0) {
        bson_t user = BSON_INITIALIZER;
        has = user_by_id(a, ra, &user);
        if (has == 1) { /* the profile as it is now, whether or not this update reached it */
            cJSON *p = user_updated_event(&user);
            *body = json_print(p);
            cJSON_Delete(p);
        }
        bson_destroy(&user);
        return has < 0 ? OB__KEEP : has ? OB__READY : OB__DROP;
    }
    if (strcmp(key, "user.deleted") == 0) {
        has = ob__has(a, "users", ra, NULL, NULL);
        if (has != 0)
            return has < 0 ? OB__KEEP : OB__DROP;
        return user_cleanup(a, ra) == 0 ? OB__READY : OB__KEEP;
    }
    if (rb == NULL)
        return OB__DROP;
    if (strcmp(key, "follow.created") == 0 || strcmp(key, "follow.deleted") == 0) {
        int created = key[7] == 'c';
        has = ob__has(a, "follows", edge, created ? "op" : NULL, id);
        if (has < 0)
            return OB__KEEP;
        if (has != created)
            return OB__DROP;
        return counter_recount(a, ra) == 0 && counter_recount(a, rb) == 0 ? OB__READY : OB__KEEP;
    }
    if (strcmp(key, "block.created") == 0) {
        has = ob__has(a, "blocks", edge, "op", id);
        if (has != 1)
            return has < 0 ? OB__KEEP : OB__DROP;
        if (graph_unfollow_edge(a, ra, rb) < 0 || graph_unfollow_edge(a, rb, ra) < 0 ||
            counter_recount(a, ra) != 0 || counter_recount(a, rb) != 0)
            return OB__KEEP;
        return OB__READY;
    }
    if (strcmp(key, "block.deleted") == 0) {
        has = ob__has(a, "blocks", edge, NULL, NULL);
        return has < 0 ? OB__KEEP : has ? OB__DROP : OB__READY;
    }
    if (strcmp(key, "device.registered") == 0) {
        has = ob__has(a, "devices", rb, "op", id);
        return has < 0 ? OB__KEEP : has ? OB__READY : OB__DROP;
    }
    if (strcmp(key, "device.removed") == 0) {
        has = ob__has(a, "devices", rb, "user_id", ra);
        return has < 0 ? OB__KEEP : has ? OB__DROP : OB__READY;
    }
    log_warn(NULL, "outbox %s: unknown key %s dropped", id, key);
    return OB__DROP;
}

/* Copies of the documents of one find, handled after its cursor (and pooled client) is given
 * back: handling them makes further queries. */
typedef struct {
    bson_t *docs[OB__BATCH];
    size_t n;
} ob__batch_t;

static int ob__collect(const bson_t *doc, void *ud)
{
    ob__batch_t *b = ud;
    b->docs[b->n++] = bson_copy(doc);
    return b->n == OB__BATCH;
}

static void ob__batch_free(ob__batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        bson_destroy(b->docs[i]);
    b->n = 0;
}

static long ob__recover_pass(auth_t *a, int64_t now_ms)
{
    ob__batch_t b = {.n = 0};
    bson_t *f = BCON_NEW("state", BCON_UTF8("pending"), "created_at", "{", "$lt",
                         BCON_DATE_TIME(now_ms - a->conf->outbox_recover_after_ms), "}");
    bson_t *opts = BCON_NEW("sort", "{", "created_at", BCON_INT32(1), "}", "limit", BCON_INT64(OB__BATCH));
    long n = db_each(a->db, "outbox", f, opts, ob__collect, &b);
    for (size_t i = 0; i < b.n; i++) {
        const bson_t *doc = b.docs[i];
        char *body = NULL;
        ob__verdict_t v = ob__recover(a, doc, &body);
        const char *id = db_doc_str(doc, "_id");
        if (v == OB__READY) {
            log_info(db_doc_str(doc, "request_id"), "outbox %s (%s): recovered, will be published", id,
                     db_doc_str(doc, "key"));
            if (body == NULL)
                body = xstrdup(db_doc_str(doc, "body"));
            ob__set_ready(a, id, body);
        } else if (v == OB__DROP) {
            log_info(db_doc_str(doc, "request_id"), "outbox %s (%s): its write never happened; dropped", id,
                     db_doc_str(doc, "key"));
            outbox_abort(a, id);
        }
        free(body);
    }
    bson_destroy(f);
    bson_destroy(opts);
    ob__batch_free(&b);
    return n;
}

/* ================================================================ relay */

long outbox_pass(auth_t *a, mq_t *publisher, int64_t now_ms)
{
    if (ob__recover_pass(a, now_ms) < 0)
        return -1;
    ob__batch_t b = {.n = 0};
    bson_t *f = BCON_NEW("state", BCON_UTF8("ready"));
    bson_t *opts = BCON_NEW("sort", "{", "created_at", BCON_INT32(1), "_id", BCON_INT32(1), "}", "limit",
                            BCON_INT64(OB__BATCH));
    long published = db_each(a->db, "outbox", f, opts, ob__collect, &b) < 0 ? -1 : 0;
    for (size_t i = 0; i < b.n && published >= 0; i++) {
        const bson_t *doc = b.docs[i];
        const char *id = db_doc_str(doc, "_id"), *key = db_doc_str(doc, "key"),
                   *body = db_doc_str(doc, "body"), *owner = db_doc_str(doc, "owner");
        /* Another live copy publishes its own events; take them over only when they linger. */
        int mine = owner != NULL && strcmp(owner, a->outbox->owner) == 0;
        if (id != NULL && key != NULL && body != NULL &&
            (mine || db_doc_ms(doc, "created_at") < now_ms - OB__OTHERS_GRACE_MS)) {
            int rc = mq_publish_event(publisher, key, id, db_doc_str(doc, "request_id"), body, strlen(body),
                                      OB__CONFIRM_MS);
            if (rc != 0) {
                log_warn(NULL, "outbox: cannot publish %s %s: %s; will retry", key, id, mq_strerror(rc));
                published = -1;
            } else {
                bson_t *df = BCON_NEW("_id", BCON_UTF8(id));
                db_delete_one(a->db, "outbox", df); /* if this fails it goes again, same message_id */
                bson_destroy(df);
                metrics_counter_add(a->events_published, &key, 1);
                published++;
            }
        }
    }
    bson_destroy(f);
    bson_destroy(opts);
    ob__batch_free(&b);
    return published;
}

static void ob__housekeeping(auth_t *a)
{
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

static void *ob__main(void *arg)
{
    auth_t *a = arg;
    auth_outbox_t *o = a->outbox;
    unsigned backoff_ms = 0;
    uint64_t next_housekeeping = core_now_ms() + 5000;
    pthread_mutex_lock(&o->lock);
    while (!o->stop) {
        if (!o->kicked || backoff_ms > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = backoff_ms > 0 ? backoff_ms : (uint64_t)a->conf->outbox_poll_ms;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&o->wake, &o->lock, &ts);
        }
        o->kicked = 0;
        if (o->stop)
            break;
        pthread_mutex_unlock(&o->lock);
        long n = outbox_pass(a, o->mq, core_wall_ms());
        backoff_ms = n < 0 ? (backoff_ms == 0 ? 200 : backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2) : 0;
        if (n >= OB__BATCH) { /* more waiting: go again at once */
            pthread_mutex_lock(&o->lock);
            o->kicked = 1;
            pthread_mutex_unlock(&o->lock);
        }
        if (core_now_ms() >= next_housekeeping) {
            ob__housekeeping(a);
            next_housekeeping = core_now_ms() + OB__HOUSEKEEPING_MS;
        }
        pthread_mutex_lock(&o->lock);
    }
    pthread_mutex_unlock(&o->lock);
    /* A last pass: events committed while stopping go out now rather than at the next start. */
    outbox_pass(a, o->mq, core_wall_ms());
    return NULL;
}

int outbox_start(auth_t *a, const char *amqp_url, char *err, size_t errlen)
{
    auth_outbox_t *o = xcalloc(1, sizeof(*o));
    core_uuid(o->owner);
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->wake, NULL);
    a->outbox = o;
    if (amqp_url == NULL) /* tests: begin/commit/abort and outbox_pass only */
        return 0;
    mq_conf_t mc = {.url = amqp_url, .app_id = "auth", .confirms = 1};
    o->mq = mq_new(&mc);
    if (o->mq == NULL) {
        snprintf(err, errlen, "AMQP_URL does not parse");
        return -1;
    }
    CORE_ASSERT(pthread_create(&o->thread, NULL, ob__main, a) == 0);
    o->started = 1;
    return 0;
}

void outbox_stop(auth_t *a)
{
    auth_outbox_t *o = a->outbox;
    if (o == NULL)
        return;
    if (o->started) {
        pthread_mutex_lock(&o->lock);
        o->stop = 1;
        pthread_cond_signal(&o->wake);
        pthread_mutex_unlock(&o->lock);
        pthread_join(o->thread, NULL);
    }
    mq_free(o->mq);
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->wake);
    free(o);
    a->outbox = NULL;
}
