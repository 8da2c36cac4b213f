/* fanout.c -- the consumers of publication.fanout: a new or deleted post split into batches of
 * followers' timelines, and the batches themselves; the periodic story purge. */
#include <pthread.h>
#include <string.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "pub.h"

#define FANOUT_QUEUE "publication.fanout"
#define FANOUT_BATCH_TYPE "fanout.batch"
#define FANOUT_PUBLISH_TIMEOUT_MS 5000

/* One consumer thread: its consuming connection, and a publishing one (with confirms) for the
 * batches it splits off (a connection that consumes cannot wait for confirms). */
typedef struct {
    pub_t *p;
    int index;
    mq_t *consumer, *publisher;
    pthread_t thread;
    int started;
} fanout__worker_t;

struct fanout {
    fanout__worker_t *workers;
    long n;
    volatile int stop;
};

/* Writes (add) or removes post_id by author on users' timelines: MQ_ACK, or MQ_RETRY. */
static mq_disposition_t fanout__apply(pub_t *p, int add, const char *post_id, const char *author,
                                      const char *const *users, size_t n)
{
    int rc = add ? feed_add(p, post_id, author, users, n) : feed_remove(p, post_id, author, users, n);
    return rc == 0 ? MQ_ACK : MQ_RETRY;
}

/* Splits users into batches of FEED_FANOUT_BATCH: one is written here; more are published as
 * fanout.batch messages for every copy's consumers. A failed publish retries the whole event;
 * batches published twice are harmless (adding and removing are idempotent). */
static mq_disposition_t fanout__split(fanout__worker_t *w, const mq_message_t *msg, int add, const char *post_id,
                                      const char *author, const pub_ids_t *users)
{
    size_t batch = (size_t)w->p->conf->feed_fanout_batch;
    if (users->n <= batch)
        return fanout__apply(w->p, add, post_id, author, (const char *const *)users->ids, users->n);
    for (size_t from = 0; from < users->n; from += batch) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "op", add ? "add" : "remove");
        cJSON_AddStringToObject(b, "post_id", post_id);
        cJSON_AddStringToObject(b, "author_id", author);
        cJSON *arr = cJSON_AddArrayToObject(b, "users");
        for (size_t i = from; i < users->n && i < from + batch; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(users->ids[i]));
        char *body = json_print(b);
        cJSON_Delete(b);
        mq_publish_t pm = {
            .exchange = "",
            .routing_key = FANOUT_QUEUE,
            .type = FANOUT_BATCH_TYPE,
            .request_id = msg->request_id,
            .persistent = 1,
            .body = body,
            .body_len = strlen(body),
        };
        int rc = mq_publish(w->publisher, &pm, FANOUT_PUBLISH_TIMEOUT_MS);
        free(body);
        if (rc != 0) {
            log_warn(msg->request_id, "fanout of %s: a batch was not published (%s); the event is retried", post_id,
                     mq_strerror(rc));
            return MQ_RETRY;
        }
    }
    return MQ_ACK;
}

/* post.created: into the author's recent and own timeline, then to its followers, unless they are
 * more than FEED_FANOUT_MAX_FOLLOWERS (then it is merged at read time). post.deleted: out of
 * everything that got it. */
static mq_disposition_t fanout__post(fanout__worker_t *w, const mq_message_t *msg, const cJSON *body, int add)
{
    pub_t *p = w->p;
    const char *post_id = rpc_field_str(body, "post_id"), *author = rpc_field_str(body, "author_id");
    if (post_id == NULL || author == NULL || !pub_id_valid(post_id) || strchr(author, ':') != NULL)
        return MQ_DEAD;
    if (add) {
        int found = posts_load(p, post_id, NULL);
        if (found <= 0) /* deleted meanwhile: its post.deleted cleans up */
            return found < 0 ? MQ_RETRY : MQ_ACK;
        if (feed_post_created(p, post_id, author) != 0)
            return MQ_RETRY;
    } else {
        int was_merged = 0;
        if (feed_post_deleted(p, post_id, author, &was_merged) != 0)
            return MQ_RETRY;
        if (was_merged)
            return MQ_ACK;
    }
    pub_ids_t followers;
    if (graph_followers(p, author, &followers) != 0)
        return MQ_RETRY;
    mq_disposition_t d;
    if (add && (long)followers.n > p->conf->feed_fanout_max_followers)
        d = feed_post_merged(p, post_id, author) == 0 ? MQ_ACK : MQ_RETRY;
    else
        d = fanout__split(w, msg, add, post_id, author, &followers);
    users_blockset_free(&followers);
    return d;
}

/* A fanout.batch: {op: "add" | "remove", post_id, author_id, users: [ids]}. */
static mq_disposition_t fanout__batch(fanout__worker_t *w, const cJSON *body)
{
    const char *op = rpc_field_str(body, "op"), *post_id = rpc_field_str(body, "post_id"),
               *author = rpc_field_str(body, "author_id");
    const cJSON *users = cJSON_GetObjectItemCaseSensitive(body, "users");
    if (op == NULL || post_id == NULL || author == NULL || !cJSON_IsArray(users) || !pub_id_valid(post_id) ||
        (strcmp(op, "add") != 0 && strcmp(op, "remove") != 0))
        return MQ_DEAD;
    size_t n = 0, cap = (size_t)cJSON_GetArraySize(users);
    const char **ids = xcalloc(cap + 1, sizeof(*ids));
    const cJSON *u;
    cJSON_ArrayForEach(u, users)
    {
        if (!cJSON_IsString(u) || u->valuestring[0] == '\0') {
            free(ids);
            return MQ_DEAD;
        }
        ids[n++] = u->valuestring;
    }
    mq_disposition_t d = fanout__apply(w->p, op[0] == 'a', post_id, author, ids, n);
    free(ids);
    return d;
}

static mq_disposition_t fanout__on_message(mq_t *mq, const mq_message_t *msg, void *ud)
{
    (void)mq;
    fanout__worker_t *w = ud;
    const char *key = msg->routing_key != NULL ? msg->routing_key : "";
    int batch = msg->type != NULL && strcmp(msg->type, FANOUT_BATCH_TYPE) == 0;
    int created = !batch && strcmp(key, "post.created") == 0, deleted = !batch && strcmp(key, "post.deleted") == 0;
    cJSON *body = json_parse_object(msg->body, msg->body_len, 4 << 20, 8, NULL);
    mq_disposition_t d = MQ_DEAD;
    if (body != NULL && batch)
        d = fanout__batch(w, body);
    else if (body != NULL && (created || deleted))
        d = fanout__post(w, msg, body, created);
    if (d == MQ_DEAD)
        log_warn(msg->request_id, "%s %s is not a message publication.fanout understands: dead-lettered",
                 batch ? FANOUT_BATCH_TYPE : key, msg->message_id != NULL ? msg->message_id : "-");
    cJSON_Delete(body);
    return d;
}

static void fanout__purge(mq_t *mq, void *ud)
{
    (void)mq;
    fanout__worker_t *w = ud;
    if (stories_purge(w->p) != 0)
        log_warn(NULL, "story purge failed; tried again at the next interval");
}

static void *fanout__run(void *arg)
{
    fanout__worker_t *w = arg;
    mq_run(w->consumer, &w->p->fanout->stop);
    return NULL;
}

int fanout_start(pub_t *p)
{
    const pub_conf_t *c = p->conf;
    struct fanout *f = xcalloc(1, sizeof(*f));
    f->n = c->feed_fanout_workers;
    f->workers = xcalloc((size_t)f->n, sizeof(*f->workers));
    p->fanout = f;
    static const char *const keys[] = {"post.created", "post.deleted", NULL};
    for (long i = 0; i < f->n; i++) {
        fanout__worker_t *w = &f->workers[i];
        w->p = p;
        w->index = (int)i;
        /* prefetch 1: a batch is a bulk write of up to FEED_FANOUT_BATCH timelines, and the
         * next one waits in the queue for whichever consumer (of any copy) is free. A database
         * outage retries for about an hour before anything is dead-lettered. */
        mq_conf_t mc = {.url = c->svc.amqp_url, .app_id = "publication", .prefetch = 1, .max_retries = 1000};
        w->consumer = mq_new(&mc);
        mq_conf_t pc = {.url = c->svc.amqp_url, .app_id = "publication", .confirms = 1};
        w->publisher = mq_new(&pc);
        if (w->consumer == NULL || w->publisher == NULL) {
            log_error(NULL, "AMQP_URL: cannot make the fanout connections");
            fanout_stop(p);
            return -1;
        }
        mq_declare_event_queue(w->consumer, FANOUT_QUEUE, keys, 0);
        mq_consume(w->consumer, FANOUT_QUEUE, fanout__on_message, w);
        if (i == 0)
            mq_set_tick(w->consumer, (unsigned)c->story_purge_interval_ms, fanout__purge, w);
        if (pthread_create(&w->thread, NULL, fanout__run, w) != 0) {
            log_error(NULL, "cannot start a fanout thread");
            fanout_stop(p);
            return -1;
        }
        w->started = 1;
    }
    return 0;
}

void fanout_stop(pub_t *p)
{
    struct fanout *f = p->fanout;
    if (f == NULL)
        return;
    f->stop = 1;
    for (long i = 0; i < f->n; i++) {
        fanout__worker_t *w = &f->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        if (w->consumer != NULL)
            mq_free(w->consumer);
        if (w->publisher != NULL)
            mq_free(w->publisher);
    }
    free(f->workers);
    free(f);
    p->fanout = NULL;
}
