/* peek.c -- `queues peek <queue>.dlq`: dead letters shown through the management API and left in
 * place (ackmode ack_requeue_true puts each back where it was). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "json/json.h"
#include "queues.h"

/* Bytes of a body shown: as text, and in --json. */
#define PEEK_BODY_TEXT 1024
#define PEEK_BODY_JSON 65536

/* The facts origin_resolve needs, from a message of the API's /get answer (strings borrowed). */
static void peek__facts(const cJSON *headers, const char *queue, origin_facts_t *f)
{
    memset(f, 0, sizeof(*f));
    f->queue = queue;
    f->routing_key = mgmt_string(headers, "x-routing-key");
    const cJSON *deaths =
        cJSON_IsObject(headers) ? cJSON_GetObjectItemCaseSensitive(headers, "x-death") : NULL;
    const cJSON *d, *chosen = NULL, *list = cJSON_IsArray(deaths) ? deaths : NULL;
    /* the entry of the queue that dead-lettered it into this dlq, else the first one */
    cJSON_ArrayForEach(d, list)
    {
        const char *q = mgmt_string(d, "queue");
        if (cJSON_IsObject(d) && q != NULL && strcmp(q, queue) == 0) {
            chosen = d;
            break;
        }
        if (cJSON_IsObject(d) && chosen == NULL)
            chosen = d;
    }
    if (chosen == NULL)
        return;
    f->has_death = 1;
    f->death_exchange = mgmt_string(chosen, "exchange");
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(chosen, "routing-keys");
    const cJSON *k0 = cJSON_IsArray(keys) ? cJSON_GetArrayItem(keys, 0) : NULL;
    f->death_key = cJSON_IsString(k0) ? k0->valuestring : NULL;
}

static void peek__time(const char *label, double seconds)
{
    char buf[CORE_TIME_BUFSZ];
    if (seconds <= 0) {
        printf("    %s: -\n", label);
        return;
    }
    core_rfc3339((int64_t)seconds * 1000, buf);
    printf("    %s: %s\n", label, buf);
}

static void peek__str(const char *label, const char *value)
{
    printf("    %s: ", label);
    if (value != NULL)
        queues_print_escaped(stdout, value, strlen(value));
    else
        fputs("-", stdout);
    fputc('\n', stdout);
}

/* The message's body, decoded from the API's base64; caller frees. *len is set. */
static unsigned char *peek__body(const cJSON *msg, size_t *len)
{
    const char *b64 = mgmt_string(msg, "payload");
    size_t in = b64 != NULL ? strlen(b64) : 0;
    unsigned char *bin = xmalloc(in / 4 * 3 + 4);
    *len = 0;
    if (in > 0 &&
        sodium_base642bin(bin, in / 4 * 3 + 4, b64, in, NULL, len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
        *len = 0;
    return bin;
}

static void peek__print_text(const cJSON *msg, int index, const origin_facts_t *f, const char *to_exchange,
                             const char *to_key, const char *why)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(msg, "properties");
    const cJSON *headers = cJSON_IsObject(props) ? cJSON_GetObjectItemCaseSensitive(props, "headers") : NULL;
    printf("[%d]\n", index);
    peek__str("message_id", mgmt_string(props, "message_id"));
    peek__str("type", mgmt_string(props, "type"));
    peek__time("timestamp", mgmt_number(props, "timestamp", NULL));
    peek__str("app_id", mgmt_string(props, "app_id"));
    printf("    routing key: ");
    const char *rk = mgmt_string(msg, "routing_key"), *ex = mgmt_string(msg, "exchange");
    queues_print_escaped(stdout, rk ? rk : "-", strlen(rk ? rk : "-"));
    printf(" (exchange \"");
    queues_print_escaped(stdout, ex ? ex : "", strlen(ex ? ex : ""));
    printf("\")\n");
    peek__str("x-routing-key", f->routing_key);
    const cJSON *deaths =
        cJSON_IsObject(headers) ? cJSON_GetObjectItemCaseSensitive(headers, "x-death") : NULL;
    const cJSON *d, *list = cJSON_IsArray(deaths) ? deaths : NULL;
    int n = 0;
    cJSON_ArrayForEach(d, list)
    {
        if (!cJSON_IsObject(d))
            continue;
        const cJSON *keys = cJSON_GetObjectItemCaseSensitive(d, "routing-keys"), *k;
        if (!cJSON_IsArray(keys))
            keys = NULL;
        char when[CORE_TIME_BUFSZ] = "-";
        double t = mgmt_number(d, "time", NULL);
        if (t > 0)
            core_rfc3339((int64_t)t * 1000, when);
        printf("    x-death: count %.0f, reason ", mgmt_number(d, "count", NULL));
        const char *reason = mgmt_string(d, "reason"), *queue = mgmt_string(d, "queue");
        const char *exchange = mgmt_string(d, "exchange");
        queues_print_escaped(stdout, reason ? reason : "-", strlen(reason ? reason : "-"));
        printf(", queue ");
        queues_print_escaped(stdout, queue ? queue : "-", strlen(queue ? queue : "-"));
        printf(", exchange \"");
        queues_print_escaped(stdout, exchange ? exchange : "", strlen(exchange ? exchange : ""));
        printf("\", routing keys");
        cJSON_ArrayForEach(k, keys)
        {
            if (!cJSON_IsString(k))
                continue;
            fputc(' ', stdout);
            queues_print_escaped(stdout, k->valuestring, strlen(k->valuestring));
        }
        printf(", at %s\n", when);
        n++;
    }
    if (n == 0)
        printf("    x-death: -\n");
    if (to_exchange != NULL) {
        printf("    replays to: exchange \"");
        queues_print_escaped(stdout, to_exchange, strlen(to_exchange));
        printf("\", routing key ");
        queues_print_escaped(stdout, to_key, strlen(to_key));
        fputc('\n', stdout);
    } else {
        printf("    replays to: cannot be determined: %s\n", why);
    }
    size_t len;
    unsigned char *body = peek__body(msg, &len);
    double total = mgmt_number(msg, "payload_bytes", NULL);
    printf("    body (%.0f bytes, ", total);
    const char *ct = mgmt_string(props, "content_type");
    queues_print_escaped(stdout, ct ? ct : "no content type", strlen(ct ? ct : "no content type"));
    printf("): ");
    queues_print_escaped(stdout, (const char *)body, len);
    if (total > (double)len)
        printf(" [... %.0f more bytes]", total - (double)len);
    printf("\n\n");
    free(body);
}

static cJSON *peek__json(const cJSON *msg, const char *to_exchange, const char *to_key, const char *why)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(msg, "properties");
    const cJSON *headers = cJSON_IsObject(props) ? cJSON_GetObjectItemCaseSensitive(props, "headers") : NULL;
    cJSON *o = cJSON_CreateObject();
    static const char *const strings[] = {"message_id", "type", "app_id", "content_type", "correlation_id"};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(strings); i++) {
        const char *v = mgmt_string(props, strings[i]);
        cJSON_AddItemToObject(o, strings[i], v != NULL ? cJSON_CreateString(v) : cJSON_CreateNull());
    }
    const cJSON *ts = cJSON_IsObject(props) ? cJSON_GetObjectItemCaseSensitive(props, "timestamp") : NULL;
    cJSON_AddItemToObject(o, "timestamp",
                          cJSON_IsNumber(ts) ? cJSON_CreateNumber(ts->valuedouble) : cJSON_CreateNull());
    const char *rk = mgmt_string(msg, "routing_key"), *ex = mgmt_string(msg, "exchange");
    cJSON_AddItemToObject(o, "routing_key", rk ? cJSON_CreateString(rk) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "exchange", ex ? cJSON_CreateString(ex) : cJSON_CreateNull());
    const char *xrk = mgmt_string(headers, "x-routing-key");
    cJSON_AddItemToObject(o, "x_routing_key", xrk ? cJSON_CreateString(xrk) : cJSON_CreateNull());
    const cJSON *deaths =
        cJSON_IsObject(headers) ? cJSON_GetObjectItemCaseSensitive(headers, "x-death") : NULL;
    cJSON_AddItemToObject(o, "x_death",
                          cJSON_IsArray(deaths) ? cJSON_Duplicate(deaths, 1) : cJSON_CreateArray());
    cJSON_AddItemToObject(o, "headers",
                          cJSON_IsObject(headers) ? cJSON_Duplicate(headers, 1) : cJSON_CreateObject());
    if (to_exchange != NULL) {
        cJSON *to = cJSON_AddObjectToObject(o, "replay_to");
        cJSON_AddStringToObject(to, "exchange", to_exchange);
        cJSON_AddStringToObject(to, "routing_key", to_key);
        cJSON_AddNullToObject(o, "replay_error");
    } else {
        cJSON_AddNullToObject(o, "replay_to");
        cJSON_AddStringToObject(o, "replay_error", why);
    }
    size_t len;
    unsigned char *body = peek__body(msg, &len);
    cJSON_AddNumberToObject(o, "payload_bytes", mgmt_number(msg, "payload_bytes", NULL));
    cJSON_AddBoolToObject(o, "payload_truncated", mgmt_number(msg, "payload_bytes", NULL) > (double)len);
    /* text when it is text (valid UTF-8 without NUL), else base64 */
    if (json_utf8_valid((const char *)body, len) && memchr(body, '\0', len) == NULL) {
        char *text = xstrndup((const char *)body, len);
        cJSON_AddStringToObject(o, "payload", text);
        cJSON_AddNullToObject(o, "payload_base64");
        free(text);
    } else {
        cJSON_AddNullToObject(o, "payload");
        cJSON_AddStringToObject(o, "payload_base64", mgmt_string(msg, "payload"));
    }
    free(body);
    return o;
}

int peek_run(queues_t *q, const char *dlq, long count, char *err, size_t errlen)
{
    char *path = NULL, *out = NULL;
    cJSON *req = NULL, *answer = NULL, *doc = NULL;
    char *queue = NULL;
    origin_t origin;
    int rc = queues_check_dlq("peek", dlq, err, errlen);
    if (rc != QUEUES_EXIT_OK)
        return rc;
    queue = xstrndup(dlq, strlen(dlq) - strlen(QUEUES_DLQ_SUFFIX));
    origin_init(&origin, q->mgmt, queue);

    path = mgmt_path(q->mgmt, "queues", dlq, "get");
    req = cJSON_CreateObject();
    cJSON_AddNumberToObject(req, "count", (double)count);
    cJSON_AddStringToObject(req, "ackmode", "ack_requeue_true");
    cJSON_AddStringToObject(req, "encoding", "base64");
    cJSON_AddNumberToObject(req, "truncate", q->json ? PEEK_BODY_JSON : PEEK_BODY_TEXT);
    int mrc = mgmt_list(q->mgmt, path, req, &answer, err, errlen);
    if (mrc == MGMT_ENOTFOUND)
        snprintf(err, errlen, "no queue %s in vhost %s", dlq, q->vhost);
    if (mrc != MGMT_OK) {
        rc = mrc == MGMT_ENOTFOUND ? QUEUES_EXIT_REFUSED : QUEUES_EXIT_FAILED;
        goto out;
    }

    int n = cJSON_GetArraySize(answer), i = 0;
    /* message_count is what stayed in the queue after each get: depth = the first's + 1 */
    double depth = n > 0 ? mgmt_number(cJSON_GetArrayItem(answer, 0), "message_count", NULL) + 1 : 0;
    cJSON *list = NULL;
    if (q->json) {
        doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "queue", dlq);
        cJSON_AddNumberToObject(doc, "depth", depth);
        list = cJSON_AddArrayToObject(doc, "messages");
    } else if (n == 0) {
        printf("%s: no dead letters\n", dlq);
    } else {
        printf("%s: %.0f dead letter%s, the first %d shown and left in place\n\n", dlq, depth,
               depth == 1 ? "" : "s", n);
    }
    const cJSON *msg;
    cJSON_ArrayForEach(msg, answer)
    {
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(msg, "properties");
        const cJSON *headers =
            cJSON_IsObject(props) ? cJSON_GetObjectItemCaseSensitive(props, "headers") : NULL;
        origin_facts_t f;
        char *to_exchange = NULL, *to_key = NULL, why[512] = "";
        peek__facts(headers, queue, &f);
        int orc = origin_resolve(&origin, &f, &to_exchange, &to_key, why, sizeof(why));
        if (orc == ORIGIN_EAPI) {
            snprintf(err, errlen, "%s", why);
            rc = QUEUES_EXIT_FAILED;
            goto out;
        }
        if (q->json)
            cJSON_AddItemToArray(list, peek__json(msg, to_exchange, to_key, why));
        else
            peek__print_text(msg, ++i, &f, to_exchange, to_key, why);
        free(to_exchange);
        free(to_key);
    }
    if (q->json) {
        out = cJSON_PrintUnformatted(doc);
        CORE_ASSERT(out != NULL);
        printf("%s\n", out);
    }
    rc = QUEUES_EXIT_OK;
out:
    free(out);
    cJSON_Delete(doc);
    cJSON_Delete(answer);
    cJSON_Delete(req);
    free(path);
    origin_clear(&origin);
    free(queue);
    return rc;
}
