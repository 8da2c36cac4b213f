/* push.c -- mobile push: event consumers queue jobs on notification.push; one thread takes them,
 * holds each unacked while its sends to FCM are in flight (fcm.c, HTTP/2 multiplexed), and acks
 * it when every send has an outcome. Sends that FCM keeps refusing for now go back to the queue
 * as a smaller job; a job that has failed too often is dead-lettered, never dropped. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "fcm.h"
#include "notif.h"

#define PUSH_QUEUE "notification.push"
#define PUSH__ITEMS_PER_JOB 100

typedef struct push__job push__job_t;

struct push {
    notif_t *n;
    pthread_t thread;
    int started;
    volatile int stop;
    fcm_t *fcm;
    mq_t *consumer;  /* settle_later: jobs stay unacked until their sends are done */
    mq_t *publisher; /* confirms: jobs of sends to try again */
    metrics_counter_t *sends, *jobs;
    push__job_t *waiting, **waiting_tail; /* taken, held, sends not started yet */
};

struct push__job {
    struct push *p;
    mq_delivery_t delivery;
    cJSON *job;    /* the message as received */
    cJSON *failed; /* items of sends to try again: [{user_id, notification_id, tokens: [...]}] */
    size_t outstanding;
    unsigned attempt;
    int requeue; /* the job could not be fanned out (database down): it comes again whole */
    push__job_t *next; /* in the waiting line */
};

typedef struct {
    push__job_t *job;
    char *user, *token, *nid;
} push__send_t;

/* ================================================================ queueing (consumer threads) */

/* The push log: one collection a day (of the notification's time), so a redelivered event finds
 * what it queued already, and old days are dropped whole. */
static void push__log_name(int64_t at, char out[32])
{
    time_t s = (time_t)(at / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, 32, "push_log_%Y%m%d", &tm);
}

static int push__seen(const bson_t *doc, void *ud)
{
    const char *id = db_doc_str(doc, "_id");
    if (id != NULL)
        cJSON_AddTrueToObject(ud, id);
    return 0;
}

static void push__texts(const notif_t *n, const notif_entry_t *e, char **title, char **body)
{
    const char *who = e->actor_username != NULL && e->actor_username[0] ? e->actor_username : "Someone";
    *title = xstrdup(n->conf->product_name);
    if (strcmp(e->type, "like") == 0)
        *body = xasprintf("%s liked your %s.", who, e->comment_id != NULL ? "comment" : "post");
    else if (strcmp(e->type, "comment") == 0)
        *body = xasprintf("%s %s: %s", who, e->reply_to != NULL ? "replied" : "commented", e->text ? e->text : "");
    else if (strcmp(e->type, "follow") == 0)
        *body = xasprintf("%s started following you.", who);
    else
        *body = xasprintf("%s shared a new post.", who);
}

int push_enqueue(notif_t *n, mq_t *pub, const notif_entry_t *e, const char *const *recipients,
                 char (*ids)[NOTIF_ID_LEN + 1], size_t count, const char *request_id)
{
    if (n->push == NULL || count == 0)
        return 0;
    char coll[32];
    push__log_name(e->at, coll);
    const char **todo = xcalloc(count, sizeof(*todo));
    size_t nt = 0;
    for (size_t i = 0; i < count; i++)
        if (ids[i][0] != '\0')
            todo[nt++] = ids[i];
    cJSON *seen = cJSON_CreateObject();
    int rc = nt == 0 ? 0 : db_find_ids(n->db, coll, todo, nt, push__seen, seen) < 0 ? -1 : 0;
    char *title, *text;
    push__texts(n, e, &title, &text);
    bson_t **filters = xcalloc(count, sizeof(*filters)), **updates = xcalloc(count, sizeof(*updates));
    size_t nmarks = 0;
    for (size_t i = 0; rc == 0 && i < count;) {
        cJSON *job = cJSON_CreateObject();
        cJSON_AddStringToObject(job, "type", e->type);
        cJSON_AddStringToObject(job, "title", title);
        cJSON_AddStringToObject(job, "body", text);
        cJSON *data = cJSON_AddObjectToObject(job, "data");
        cJSON_AddStringToObject(data, "type", e->type);
        cJSON_AddStringToObject(data, "actor_id", e->actor);
        if (e->post_id != NULL)
            cJSON_AddStringToObject(data, "post_id", e->post_id);
        if (e->comment_id != NULL)
            cJSON_AddStringToObject(data, "comment_id", e->comment_id);
        cJSON *items = cJSON_AddArrayToObject(job, "items");
        int k = 0;
        for (; i < count && k < PUSH__ITEMS_PER_JOB; i++) {
            if (ids[i][0] == '\0' || cJSON_GetObjectItemCaseSensitive(seen, ids[i]) != NULL)
                continue;
            cJSON *it = cJSON_CreateObject();
            cJSON_AddStringToObject(it, "user_id", recipients[i]);
            cJSON_AddStringToObject(it, "notification_id", ids[i]);
            cJSON_AddItemToArray(items, it);
            filters[nmarks] = BCON_NEW("_id", BCON_UTF8(ids[i]));
            updates[nmarks] = BCON_NEW("$set", "{", "at", BCON_INT64(e->at), "}");
            nmarks++;
            k++;
        }
        cJSON_AddNumberToObject(job, "attempt", 0);
        if (k > 0) {
            char *json = json_print(job);
            mq_publish_t m = {.exchange = "",
                              .routing_key = PUSH_QUEUE,
                              .type = "push.job",
                              .request_id = request_id,
                              .persistent = 1,
                              .body = json,
                              .body_len = strlen(json)};
            int st = mq_publish(pub, &m, 5000);
            if (st != 0) {
                log_warn(request_id, "notification.push: %s; the event is tried again", mq_strerror(st));
                rc = -1;
            }
            free(json);
        }
        cJSON_Delete(job);
    }
    /* marked after queueing: a crash in between pushes twice (with the same collapse id), never
     * not at all */
    if (rc == 0 && nmarks > 0 && db_update_bulk(n->db, coll, filters, updates, nmarks, 1) != 0)
        rc = -1;
    for (size_t i = 0; i < nmarks; i++) {
        bson_destroy(filters[i]);
        bson_destroy(updates[i]);
    }
    free(filters);
    free(updates);
    free(title);
    free(text);
    free(todo);
    cJSON_Delete(seen);
    return rc;
}

int push_purge_logs(notif_t *n)
{
    /* a redelivery comes within hours: yesterday's log is the oldest kept */
    char keep[32];
    push__log_name(core_wall_ms() - 24LL * 3600 * 1000, keep);
    mongoc_client_t *c = db_acquire(n->db);
    mongoc_database_t *d = mongoc_client_get_database(c, db_name(n->db));
    bson_error_t err;
    int rc = 0;
    char **names = mongoc_database_get_collection_names_with_opts(d, NULL, &err);
    if (names == NULL) {
        rc = -1;
    } else {
        for (char **p = names; *p != NULL; p++) {
            if (strncmp(*p, "push_log_", 9) != 0 || strcmp(*p, keep) >= 0)
                continue;
            mongoc_collection_t *coll = mongoc_database_get_collection(d, *p);
            if (!mongoc_collection_drop(coll, &err))
                rc = -1;
            mongoc_collection_destroy(coll);
        }
        bson_strfreev(names);
    }
    mongoc_database_destroy(d);
    db_release(n->db, c);
    return rc;
}

/* ================================================================ the push thread */

/* The FCM message (without token) of one notification of a job. */
static char *push__message(const cJSON *job, const char *nid)
{
    cJSON *m = cJSON_CreateObject(), *no = cJSON_AddObjectToObject(m, "notification");
    cJSON_AddStringToObject(no, "title", rpc_field_str(job, "title") ? rpc_field_str(job, "title") : "");
    cJSON_AddStringToObject(no, "body", rpc_field_str(job, "body") ? rpc_field_str(job, "body") : "");
    cJSON *data = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(job, "data"), 1);
    if (!cJSON_IsObject(data)) {
        cJSON_Delete(data);
        data = cJSON_CreateObject();
    }
    cJSON_AddStringToObject(data, "notification_id", nid);
    cJSON_AddItemToObject(m, "data", data);
    /* the same notification pushed twice replaces itself on the device */
    cJSON *android = cJSON_AddObjectToObject(m, "android");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(android, "notification"), "tag", nid);
    cJSON *apns = cJSON_AddObjectToObject(m, "apns");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(apns, "headers"), "apns-collapse-id", nid);
    char *s = json_print(m);
    cJSON_Delete(m);
    return s;
}

static void push__job_free(push__job_t *j)
{
    cJSON_Delete(j->job);
    cJSON_Delete(j->failed);
    free(j);
}

/* Every send of j has its outcome: ack it, after queueing what is to be tried again. */
static void push__job_done(push__job_t *j)
{
    struct push *p = j->p;
    mq_disposition_t d = j->requeue ? MQ_RETRY : MQ_ACK;
    if (!j->requeue && cJSON_GetArraySize(j->failed) > 0 && !p->stop) {
        cJSON *again = cJSON_Duplicate(j->job, 1);
        cJSON_ReplaceItemInObjectCaseSensitive(again, "items", cJSON_Duplicate(j->failed, 1));
        cJSON_ReplaceItemInObjectCaseSensitive(again, "attempt", cJSON_CreateNumber(j->attempt + 1));
        char *json = json_print(again);
        mq_publish_t m = {.exchange = "",
                          .routing_key = PUSH_QUEUE,
                          .type = "push.job",
                          .persistent = 1,
                          .body = json,
                          .body_len = strlen(json)};
        if (mq_publish(p->publisher, &m, 5000) != 0)
            d = MQ_RETRY; /* the whole job again rather than losing part of it */
        else
            log_info(NULL, "push: %d sends failed for now; queued again (attempt %u)",
                     cJSON_GetArraySize(j->failed), j->attempt + 1);
        free(json);
        cJSON_Delete(again);
    }
    if (p->stop && cJSON_GetArraySize(j->failed) > 0)
        d = MQ_RETRY;
    if (mq_settle(p->consumer, &j->delivery, d) != 0)
        log_info(NULL, "push: the broker connection went before a job was settled; it comes again");
    const char *lv[] = {d == MQ_ACK ? "done" : "requeued"};
    metrics_counter_add(p->jobs, lv, 1);
    push__job_free(j);
}

static void push__send_done(void *ud, fcm_result_t result, int http_status, const char *detail)
{
    push__send_t *s = ud;
    push__job_t *j = s->job;
    struct push *p = j->p;
    static const char *const names[] = {"sent", "unregistered", "invalid", "gave_up"};
    const char *lv[] = {names[result]};
    metrics_counter_add(p->sends, lv, 1);
    switch (result) {
    case FCM_SENT:
        break;
    case FCM_UNREGISTERED:
        log_info(NULL, "push: a token of %s is no longer registered (HTTP %d): removed", s->user, http_status);
        if (devices_removed(p->n, s->user, s->token, core_wall_ms()) != 0)
            log_warn(NULL, "push: could not remove a dead token of %s; removed at its next failure", s->user);
        break;
    case FCM_INVALID:
        log_warn(NULL, "push: FCM refused a message to %s (HTTP %d: %s): dropped", s->user, http_status,
                 detail != NULL ? detail : "-");
        break;
    case FCM_GAVE_UP: {
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "user_id", s->user);
        cJSON_AddStringToObject(it, "notification_id", s->nid);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(it, "tokens"), cJSON_CreateString(s->token));
        cJSON_AddItemToArray(j->failed, it);
        break;
    }
    }
    free(s->user);
    free(s->token);
    free(s->nid);
    free(s);
    if (--j->outstanding == 0)
        push__job_done(j);
}

typedef struct {
    push__job_t *job;
    cJSON *by_user; /* {user_id: [notification ids]} of the items without tokens */
} push__fan_t;

static void push__start_send(push__job_t *j, const char *user, const char *token, const char *nid)
{
    char *msg = push__message(j->job, nid);
    push__send_t *s = xcalloc(1, sizeof(*s));
    *s = (push__send_t){.job = j, .user = xstrdup(user), .token = xstrdup(token), .nid = xstrdup(nid)};
    j->outstanding++;
    if (fcm_send(j->p->fcm, token, msg, push__send_done, s) != 0) {
        log_warn(NULL, "push: a message to %s is not one FCM takes (too large?): dropped", user);
        j->outstanding--;
        free(s->user);
        free(s->token);
        free(s->nid);
        free(s);
    }
    free(msg);
}

/* For each registered token of a job's recipients. */
static void push__each_token(const char *user, const char *token, void *ud)
{
    push__fan_t *f = ud;
    const cJSON *nid;
    cJSON_ArrayForEach(nid, cJSON_GetObjectItemCaseSensitive(f->by_user, user))
        push__start_send(f->job, user, token, nid->valuestring);
}

/* Takes a job from the queue: held (unacked) in the waiting line until there is room for its sends. */
static mq_disposition_t push__on_job(mq_t *mq, const mq_message_t *msg, void *ud)
{
    (void)mq;
    struct push *p = ud;
    cJSON *job = json_parse_object(msg->body, msg->body_len, 1 << 20, 16, NULL);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(job, "items"),
                *attempt = cJSON_GetObjectItemCaseSensitive(job, "attempt");
    if (!cJSON_IsArray(items) || !cJSON_IsNumber(attempt) || attempt->valuedouble < 0) {
        log_warn(msg->request_id, "push: %s is not a push job: dead-lettered", msg->message_id ? msg->message_id : "-");
        cJSON_Delete(job);
        return MQ_DEAD;
    }
    if (attempt->valuedouble >= (double)p->n->conf->push_job_attempts) {
        log_warn(msg->request_id, "push: a job failed %d times: dead-lettered (%d sends)",
                 (int)attempt->valuedouble, cJSON_GetArraySize(items));
        cJSON_Delete(job);
        return MQ_DEAD;
    }
    push__job_t *j = xcalloc(1, sizeof(*j));
    *j = (push__job_t){.p = p,
                       .delivery = msg->delivery,
                       .job = job,
                       .failed = cJSON_CreateArray(),
                       .attempt = (unsigned)attempt->valuedouble};
    *p->waiting_tail = j;
    p->waiting_tail = &j->next;
    return MQ_HOLD;
}

/* Reads the tokens of a job's recipients and starts its sends; a job with nothing to send is
 * settled at once. */
static void push__job_start(push__job_t *j)
{
    struct push *p = j->p;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j->job, "items");
    j->outstanding = 1; /* held by this function until every send is started */
    const char **users = xcalloc((size_t)cJSON_GetArraySize(items) + 1, sizeof(*users));
    size_t nu = 0;
    push__fan_t f = {.job = j, .by_user = cJSON_CreateObject()};
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        const char *u = rpc_field_str(it, "user_id"), *nid = rpc_field_str(it, "notification_id");
        const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(it, "tokens");
        if (u == NULL || nid == NULL)
            continue;
        if (cJSON_IsArray(tokens)) { /* a send tried before: exactly those tokens */
            const cJSON *t;
            cJSON_ArrayForEach(t, tokens) if (cJSON_IsString(t)) push__start_send(j, u, t->valuestring, nid);
        } else {
            cJSON *nids = cJSON_GetObjectItemCaseSensitive(f.by_user, u);
            if (nids == NULL) {
                nids = cJSON_AddArrayToObject(f.by_user, u);
                users[nu++] = u;
            }
            cJSON_AddItemToArray(nids, cJSON_CreateString(nid));
        }
    }
    int rc = nu > 0 ? devices_each(p->n, users, nu, push__each_token, &f) : 0;
    cJSON_Delete(f.by_user);
    free(users);
    if (rc != 0) {
        /* the database is down: sends already started finish, and the whole job comes again */
        log_warn(NULL, "push: device tokens cannot be read now; the job comes again");
        j->requeue = 1;
    }
    if (--j->outstanding == 0)
        push__job_done(j);
}

static void *push__run(void *arg)
{
    struct push *p = arg;
    size_t most = (size_t)p->n->conf->push_in_flight;
    while (!p->stop) {
        /* Take what the broker has sent (at most the prefetch is held), then start waiting jobs
         * while there is room for their sends, each job's sends at once: a burst never reads every
         * job's tokens ahead of the sends, and no send waits in memory long enough to time out. */
        mq_step(p->consumer, &p->stop, 0, 64);
        while (p->waiting != NULL && fcm_pending(p->fcm) < most && !p->stop) {
            push__job_t *j = p->waiting;
            p->waiting = j->next;
            if (p->waiting == NULL)
                p->waiting_tail = &p->waiting;
            j->next = NULL;
            push__job_start(j);
            fcm_step(p->fcm, NULL, 0, 0);
        }
        int fd = mq_fd(p->consumer);
        int busy = p->waiting != NULL && fcm_pending(p->fcm) < most;
        if (fcm_step(p->fcm, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0, busy ? 0 : fd >= 0 ? 200 : 50) < 0)
            core_sleep_ms(50, &p->stop);
    }
    /* SIGTERM: take nothing new, give the sends in flight a moment, then what is left (still
     * unacked, and the jobs still waiting) goes back to the queue when the connection closes */
    uint64_t until = core_now_ms() + 5000;
    while (fcm_pending(p->fcm) > 0 && core_now_ms() < until)
        fcm_step(p->fcm, NULL, 0, 100);
    return NULL;
}

int push_start(notif_t *n)
{
    const notif_conf_t *c = n->conf;
    if (c->fcm_credentials == NULL || c->fcm_credentials[0] == '\0') {
        log_info(NULL, "push is off: FCM_CREDENTIALS is not set (notifications stay in the inbox)");
        return 0;
    }
    char err[512];
    struct push *p = xcalloc(1, sizeof(*p));
    p->n = n;
    p->waiting_tail = &p->waiting;
    fcm_conf_t fc = {
        .credentials_file = c->fcm_credentials,
        .endpoint = c->fcm_endpoint,
        .max_in_flight = (unsigned)c->push_in_flight,
        .max_attempts = (unsigned)c->push_attempts,
        .backoff_ms = (unsigned)c->push_backoff_ms,
        .timeout_ms = (unsigned)c->push_timeout_ms,
    };
    p->fcm = fcm_open(&fc, err, sizeof(err));
    if (p->fcm == NULL) {
        log_error(NULL, "FCM_CREDENTIALS: %s", err);
        free(p);
        return -1;
    }
    /* prefetch: enough jobs to keep max_in_flight sends busy */
    mq_conf_t cc = {.url = c->svc.amqp_url,
                    .app_id = "notification",
                    .prefetch = (unsigned)(c->push_in_flight > 10 ? c->push_in_flight : 10),
                    .settle_later = 1};
    mq_conf_t pc = {.url = c->svc.amqp_url, .app_id = "notification", .confirms = 1};
    p->consumer = mq_new(&cc);
    p->publisher = mq_new(&pc);
    static const char *const send_labels[] = {"result", NULL};
    p->sends = metrics_counter(n->metrics, "notification_push_sends_total",
                               "sends to FCM by outcome (sent, unregistered, invalid, gave_up)", send_labels);
    p->jobs = metrics_counter(n->metrics, "notification_push_jobs_total", "push jobs settled", send_labels);
    mq_declare_work_queue(p->consumer, PUSH_QUEUE);
    mq_declare_work_queue(p->publisher, PUSH_QUEUE);
    mq_consume(p->consumer, PUSH_QUEUE, push__on_job, p);
    n->push = p;
    if (pthread_create(&p->thread, NULL, push__run, p) != 0) {
        log_error(NULL, "cannot start the push thread");
        push_stop(n);
        return -1;
    }
    p->started = 1;
    log_info(NULL, "push is on: FCM at %s", c->fcm_endpoint);
    return 0;
}

void push_stop(notif_t *n)
{
    struct push *p = n->push;
    if (p == NULL)
        return;
    p->stop = 1;
    if (p->started)
        pthread_join(p->thread, NULL);
    fcm_close(p->fcm); /* what is still pending is given up on: its jobs were not acked */
    while (p->waiting != NULL) { /* never started: requeued by the broker when the connection closes */
        push__job_t *j = p->waiting;
        p->waiting = j->next;
        push__job_free(j);
    }
    mq_free(p->consumer);
    mq_free(p->publisher);
    free(p);
    n->push = NULL;
}
