/* outbox.c -- events stored before their write and relayed to the broker with confirms.
 *
 * The documents of the collection "outbox": {_id, key, body (JSON text), state ("pending" or
 * "ready"), owner (the process that began or recovered it), a, b, request_id, created_at}. The
 * relay publishes ready events oldest first and deletes each one the broker confirmed; which
 * pending events go out is the daemon's recover callback's call (outbox.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "outbox/outbox.h"

#define OB__COLL "outbox"
#define OB__BATCH 200
#define OB__CONFIRM_MS 5000
#define OB__OTHERS_GRACE_MS 2000 /* a live copy publishes its own ready events within this */
#define OB__HOUSEKEEPING_MS 60000
#define OB__FIRST_HOUSEKEEPING_MS 5000

struct outbox {
    outbox_conf_t conf;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop, kicked, started;
    mq_t *mq;                                 /* the relay's publisher; NULL without a relay thread */
    char owner[37];                           /* this process */
    metrics_counter_t *committed, *published; /* NULL without conf.metrics */
};

const db_index_t outbox_indexes[] = {{"state_1_created_at_1", "{\"state\": 1, \"created_at\": 1}", 0}};
const size_t outbox_nindexes = CORE_ARRAY_SIZE(outbox_indexes);

/* ================================================================ handlers' side */

int outbox_begin(outbox_t *o, const char *key, const cJSON *payload, const char *ref_a, const char *ref_b,
                 const char *request_id, char id[37])
{
    core_uuid(id);
    char *body = json_print(payload);
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "key", BCON_UTF8(key), "body", BCON_UTF8(body), "state",
                           BCON_UTF8("pending"), "owner", BCON_UTF8(o->owner), "a", BCON_UTF8(ref_a),
                           "created_at", BCON_DATE_TIME(core_wall_ms()));
    if (ref_b != NULL)
        BSON_APPEND_UTF8(doc, "b", ref_b);
    if (request_id != NULL)
        BSON_APPEND_UTF8(doc, "request_id", request_id);
    int rc = db_insert(o->conf.db, OB__COLL, doc);
    bson_destroy(doc);
    free(body);
    return rc == 0 ? 0 : -1;
}

static void ob__kick(outbox_t *o)
{
    pthread_mutex_lock(&o->lock);
    o->kicked = 1;
    pthread_cond_signal(&o->wake);
    pthread_mutex_unlock(&o->lock);
}

/* Marks id ready; with body (a recovered event), also replaces its payload and takes it over. */
static int ob__set_ready(outbox_t *o, const char *id, const char *body)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *u = body != NULL ? BCON_NEW("$set", "{", "state", BCON_UTF8("ready"), "owner",
                                        BCON_UTF8(o->owner), "body", BCON_UTF8(body), "}")
                             : BCON_NEW("$set", "{", "state", BCON_UTF8("ready"), "}");
    int rc = db_update_one(o->conf.db, OB__COLL, f, u, 0);
    bson_destroy(f);
    bson_destroy(u);
    return rc < 0 ? -1 : 0;
}

int outbox_commit(outbox_t *o, const char *id)
{
    if (ob__set_ready(o, id, NULL) != 0) {
        log_warn(NULL, "outbox %s stays pending (database error); recovery will publish it", id);
        return -1;
    }
    if (o->committed != NULL)
        metrics_counter_add(o->committed, NULL, 1);
    ob__kick(o);
    return 0;
}

void outbox_abort(outbox_t *o, const char *id)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    db_delete_one(o->conf.db, OB__COLL, f); /* if this fails, recovery drops it: the write is not there */
    bson_destroy(f);
}

/* ================================================================ recovery */

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

/* Asks the daemon about each abandoned pending event. Returns how many it found, or -1. */
static long ob__recover_pass(outbox_t *o, int64_t now_ms)
{
    ob__batch_t b = {.n = 0};
    bson_t *f = BCON_NEW("state", BCON_UTF8("pending"), "created_at", "{", "$lt",
                         BCON_DATE_TIME(now_ms - o->conf.recover_after_ms), "}");
    bson_t *opts = BCON_NEW("sort", "{", "created_at", BCON_INT32(1), "}", "limit", BCON_INT64(OB__BATCH));
    long n = db_each(o->conf.db, OB__COLL, f, opts, ob__collect, &b);
    for (size_t i = 0; i < b.n; i++) {
        const bson_t *doc = b.docs[i];
        const char *id = db_doc_str(doc, "_id");
        if (id == NULL) /* not ours to judge, and nothing to address it by */
            continue;
        char *body = NULL;
        outbox_verdict_t v = o->conf.recover(o->conf.ud, doc, &body);
        if (v == OUTBOX_READY) {
            log_info(db_doc_str(doc, "request_id"), "outbox %s (%s): recovered, will be published", id,
                     db_doc_str(doc, "key"));
            if (body == NULL)
                body = xstrdup(db_doc_str(doc, "body"));
            ob__set_ready(o, id, body);
        } else if (v == OUTBOX_DROP) {
            log_info(db_doc_str(doc, "request_id"), "outbox %s (%s): its write never happened; dropped", id,
                     db_doc_str(doc, "key"));
            outbox_abort(o, id);
        }
        free(body);
    }
    bson_destroy(f);
    bson_destroy(opts);
    ob__batch_free(&b);
    return n;
}

/* ================================================================ relay */

long outbox_pass(outbox_t *o, mq_t *publisher, int64_t now_ms)
{
    if (ob__recover_pass(o, now_ms) < 0)
        return -1;
    ob__batch_t b = {.n = 0};
    bson_t *f = BCON_NEW("state", BCON_UTF8("ready"));
    bson_t *opts = BCON_NEW("sort", "{", "created_at", BCON_INT32(1), "_id", BCON_INT32(1), "}", "limit",
                            BCON_INT64(OB__BATCH));
    long published = db_each(o->conf.db, OB__COLL, f, opts, ob__collect, &b) < 0 ? -1 : 0;
    for (size_t i = 0; i < b.n && published >= 0; i++) {
        const bson_t *doc = b.docs[i];
        const char *id = db_doc_str(doc, "_id"), *key = db_doc_str(doc, "key"),
                   *body = db_doc_str(doc, "body"), *owner = db_doc_str(doc, "owner");
        /* Another live copy publishes its own events; take them over only when they linger. */
        int mine = owner != NULL && strcmp(owner, o->owner) == 0;
        if (id != NULL && key != NULL && body != NULL &&
            (mine || db_doc_ms(doc, "created_at") < now_ms - OB__OTHERS_GRACE_MS)) {
            int rc = mq_publish_event(publisher, key, id, db_doc_str(doc, "request_id"), body, strlen(body),
                                      OB__CONFIRM_MS);
            if (rc != 0) {
                log_warn(NULL, "outbox: cannot publish %s %s: %s; will retry", key, id, mq_strerror(rc));
                published = -1;
            } else {
                bson_t *df = BCON_NEW("_id", BCON_UTF8(id));
                db_delete_one(o->conf.db, OB__COLL, df); /* if this fails it goes again, same message_id */
                bson_destroy(df);
                if (o->published != NULL)
                    metrics_counter_add(o->published, &key, 1);
                published++;
            }
        }
    }
    bson_destroy(f);
    bson_destroy(opts);
    ob__batch_free(&b);
    return published;
}

static void *ob__main(void *arg)
{
    outbox_t *o = arg;
    unsigned backoff_ms = 0;
    uint64_t next_housekeeping = core_now_ms() + OB__FIRST_HOUSEKEEPING_MS;
    pthread_mutex_lock(&o->lock);
    while (!o->stop) {
        if (!o->kicked || backoff_ms > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = backoff_ms > 0 ? backoff_ms : (uint64_t)o->conf.poll_ms;
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
        long n = outbox_pass(o, o->mq, core_wall_ms());
        backoff_ms = n < 0 ? (backoff_ms == 0 ? 200 : backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2) : 0;
        if (n >= OB__BATCH) { /* more waiting: go again at once */
            pthread_mutex_lock(&o->lock);
            o->kicked = 1;
            pthread_mutex_unlock(&o->lock);
        }
        if (o->conf.housekeeping != NULL && core_now_ms() >= next_housekeeping) {
            o->conf.housekeeping(o->conf.ud);
            next_housekeeping = core_now_ms() + OB__HOUSEKEEPING_MS;
        }
        pthread_mutex_lock(&o->lock);
    }
    pthread_mutex_unlock(&o->lock);
    /* A last pass: events committed while stopping go out now rather than at the next start. */
    outbox_pass(o, o->mq, core_wall_ms());
    return NULL;
}

/* ================================================================ life cycle */

/* "<app_id>_<what>" with what a metric name may not hold in app_id as '_' (resize-image gives
 * resize_image_...). Caller frees. */
static char *ob__metric_name(const char *app_id, const char *what)
{
    char *name = xasprintf("%s_%s", app_id, what);
    for (char *p = name; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            *p = '_';
    return name;
}

outbox_t *outbox_start(const outbox_conf_t *conf, char *err, size_t errlen)
{
    CORE_ASSERT(conf->db != NULL && conf->app_id != NULL && conf->recover != NULL);
    outbox_t *o = xcalloc(1, sizeof(*o));
    o->conf = *conf;
    core_uuid(o->owner);
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->wake, NULL);
    if (conf->metrics != NULL) {
        static const char *const key_label[] = {"key", NULL};
        char *name = ob__metric_name(conf->app_id, "outbox_committed_total");
        o->committed = metrics_counter(conf->metrics, name, "events stored ready for the relay", NULL);
        free(name);
        name = ob__metric_name(conf->app_id, "events_published_total");
        o->published =
            metrics_counter(conf->metrics, name, "events the broker confirmed, by routing key", key_label);
        free(name);
    }
    if (conf->amqp_url == NULL) /* tests: begin/commit/abort and outbox_pass only */
        return o;
    mq_conf_t mc = {.url = conf->amqp_url, .app_id = conf->app_id, .confirms = 1};
    o->mq = mq_new(&mc);
    if (o->mq == NULL) {
        snprintf(err, errlen, "AMQP_URL does not parse");
        outbox_stop(o);
        return NULL;
    }
    CORE_ASSERT(pthread_create(&o->thread, NULL, ob__main, o) == 0);
    o->started = 1;
    return o;
}

void outbox_stop(outbox_t *o)
{
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
}
