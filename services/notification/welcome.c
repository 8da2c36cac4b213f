/* welcome.c -- the welcome e-mail: a thread of its own consumes notification.mail (user.registered)
 * so a slow mail server never holds up the inbox, and a delivery log sends it once per account. */
#include <pthread.h>
#include <string.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "mail.h"
#include "notif.h"

#define WELCOME_QUEUE "notification.mail"

struct welcome {
    notif_t *n;
    pthread_t thread;
    int started;
    volatile int stop;
    mq_t *consumer;
    mail_conf_t mail;
    metrics_counter_t *mails;
};

/* Logs the outcome for user_id: the delivery log that makes a redelivery send nothing. 0 or -1. */
static int welcome__log(notif_t *n, const char *user_id, const char *to, const char *state)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
    bson_t *u = BCON_NEW("$set", "{", "to", BCON_UTF8(to), "state", BCON_UTF8(state), "at",
                         BCON_DATE_TIME(core_wall_ms()), "}");
    int rc = db_update_one(n->db, "mails", f, u, 1) < 0 ? -1 : 0;
    bson_destroy(f);
    bson_destroy(u);
    return rc;
}

static mq_disposition_t welcome__on_event(mq_t *mq, const mq_message_t *msg, void *ud)
{
    (void)mq;
    struct welcome *w = ud;
    notif_t *n = w->n;
    cJSON *b = json_parse_object(msg->body, msg->body_len, 1 << 20, 16, NULL);
    const char *uid = rpc_field_str(b, "user_id"), *to = rpc_field_str(b, "email"),
               *username = rpc_field_str(b, "username");
    mq_disposition_t d = MQ_ACK;
    if (uid == NULL || to == NULL || username == NULL) {
        log_warn(msg->request_id, "user.registered %s is not one notification understands: dead-lettered",
                 msg->message_id ? msg->message_id : "-");
        d = MQ_DEAD;
        goto out;
    }
    bson_t *f = BCON_NEW("_id", BCON_UTF8(uid));
    int sent = db_exists(n->db, "mails", f);
    bson_destroy(f);
    int gone = sent == 0 ? users_gone(n, uid) : 0;
    if (sent < 0 || gone < 0) {
        d = MQ_RETRY;
        goto out;
    }
    if (sent == 1 || gone == 1)
        goto out; /* sent before (a redelivery), or the account is gone already */
    char err[256] = "";
    mail_result_t r = mail_send_welcome(&w->mail, to, username, rpc_field_str(b, "name"), uid, err, sizeof(err));
    static const char *const names[] = {"sent", "retry", "rejected"};
    const char *lv[] = {names[r]};
    metrics_counter_add(w->mails, lv, 1);
    if (r == MAIL_RETRY) {
        log_warn(msg->request_id, "welcome mail to user %s: %s; tried again later", uid, err);
        d = MQ_RETRY;
    } else {
        if (r == MAIL_REJECTED)
            log_warn(msg->request_id, "welcome mail to user %s refused for good: %s", uid, err);
        else
            log_info(msg->request_id, "welcome mail sent to user %s", uid);
        /* a crash between the server's acceptance and this line sends it again (with the same
         * Message-ID); the log makes every other redelivery send nothing */
        if (welcome__log(n, uid, to, r == MAIL_SENT ? "sent" : "rejected") != 0)
            log_warn(msg->request_id, "welcome mail to user %s: could not be logged", uid);
    }
out:
    cJSON_Delete(b);
    return d;
}

static void *welcome__run(void *arg)
{
    struct welcome *w = arg;
    mq_run(w->consumer, &w->stop);
    return NULL;
}

int welcome_start(notif_t *n)
{
    const notif_conf_t *c = n->conf;
    if (c->smtp_url == NULL || c->smtp_url[0] == '\0') {
        log_info(NULL, "welcome e-mail is off: SMTP_URL is not set");
        return 0;
    }
    struct welcome *w = xcalloc(1, sizeof(*w));
    w->n = n;
    w->mail = (mail_conf_t){
        .url = c->smtp_url,
        .from = c->mail_from,
        .user = c->smtp_user,
        .password = c->smtp_password,
        .starttls = c->smtp_starttls,
        .timeout_ms = (unsigned)c->smtp_timeout_ms,
        .product = c->product_name,
    };
    char err[256];
    if (mail_conf_check(&w->mail, err, sizeof(err)) != 0) {
        log_error(NULL, "welcome e-mail: %s", err);
        free(w);
        return -1;
    }
    /* prefetch 1: one mail at a time per copy; a mail server that is down is tried again for
     * about an hour (1000 attempts, 3.2 s apart at most) before the message is dead-lettered */
    mq_conf_t mc = {.url = c->svc.amqp_url, .app_id = "notification", .prefetch = 1, .max_retries = 1000};
    w->consumer = mq_new(&mc);
    static const char *const keys[] = {"user.registered", NULL};
    mq_declare_event_queue(w->consumer, WELCOME_QUEUE, keys, 0);
    mq_consume(w->consumer, WELCOME_QUEUE, welcome__on_event, w);
    static const char *const labels[] = {"result", NULL};
    w->mails = metrics_counter(n->metrics, "notification_welcome_mails_total", "welcome mails by outcome", labels);
    n->mail = w;
    if (pthread_create(&w->thread, NULL, welcome__run, w) != 0) {
        log_error(NULL, "cannot start the mail thread");
        welcome_stop(n);
        return -1;
    }
    w->started = 1;
    log_info(NULL, "welcome e-mail is on");
    return 0;
}

void welcome_stop(notif_t *n)
{
    struct welcome *w = n->mail;
    if (w == NULL)
        return;
    w->stop = 1;
    if (w->started)
        pthread_join(w->thread, NULL);
    mq_free(w->consumer);
    free(w);
    n->mail = NULL;
}
