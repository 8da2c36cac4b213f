/* list.c -- `queues list`: every queue of the vhost with its depth, consumers, rates, its dead
 * letters (<queue>.dlq's depth on the same row) and what it is for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "queues.h"

typedef struct {
    const char *name; /* borrowed from the API's answer */
    const char *purpose;
    double ready, unacked, consumers;
    double publish_rate, deliver_rate, ack_rate;
    const char *dlq; /* NULL: none */
    double dead;
} list_row_t;

static int list__by_name(const void *a, const void *b)
{
    return strcmp(((const list_row_t *)a)->name, ((const list_row_t *)b)->name);
}

static const cJSON *list__find(const cJSON *queues, const char *name)
{
    const cJSON *q;
    cJSON_ArrayForEach(q, queues)
    {
        const char *n = mgmt_string(q, "name");
        if (n != NULL && strcmp(n, name) == 0)
            return q;
    }
    return NULL;
}

/* The rows: queues that are not the dlq of a listed queue (those are folded into its row). */
static size_t list__rows(const cJSON *queues, list_row_t *rows)
{
    size_t n = 0;
    const cJSON *q;
    cJSON_ArrayForEach(q, queues)
    {
        const char *name = mgmt_string(q, "name");
        if (name == NULL)
            continue;
        if (catalog_is_dlq(name)) {
            char *parent = xstrndup(name, strlen(name) - strlen(QUEUES_DLQ_SUFFIX));
            int folded = list__find(queues, parent) != NULL;
            free(parent);
            if (folded)
                continue;
        }
        list_row_t *r = &rows[n++];
        *r = (list_row_t){
            .name = name,
            .purpose = catalog_purpose(name),
            .ready = mgmt_number(q, "messages_ready", NULL),
            .unacked = mgmt_number(q, "messages_unacknowledged", NULL),
            .consumers = mgmt_number(q, "consumers", NULL),
            .publish_rate = mgmt_number(q, "message_stats", "publish_details", "rate", NULL),
            .deliver_rate = mgmt_number(q, "message_stats", "deliver_get_details", "rate", NULL),
            .ack_rate = mgmt_number(q, "message_stats", "ack_details", "rate", NULL),
        };
        char *dlq_name = xasprintf("%s%s", name, QUEUES_DLQ_SUFFIX);
        const cJSON *dlq = list__find(queues, dlq_name);
        free(dlq_name);
        if (dlq != NULL) {
            r->dlq = mgmt_string(dlq, "name");
            r->dead = mgmt_number(dlq, "messages", NULL);
        }
    }
    qsort(rows, n, sizeof(*rows), list__by_name);
    return n;
}

static void list__print_json(const char *vhost, const list_row_t *rows, size_t n)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "vhost", vhost);
    cJSON *list = cJSON_AddArrayToObject(doc, "queues");
    for (size_t i = 0; i < n; i++) {
        const list_row_t *r = &rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddItemToObject(o, "purpose", r->purpose ? cJSON_CreateString(r->purpose) : cJSON_CreateNull());
        cJSON_AddNumberToObject(o, "messages_ready", r->ready);
        cJSON_AddNumberToObject(o, "messages_unacked", r->unacked);
        cJSON_AddNumberToObject(o, "consumers", r->consumers);
        cJSON_AddNumberToObject(o, "publish_rate", r->publish_rate);
        cJSON_AddNumberToObject(o, "deliver_rate", r->deliver_rate);
        cJSON_AddNumberToObject(o, "ack_rate", r->ack_rate);
        cJSON_AddItemToObject(o, "dlq", r->dlq ? cJSON_CreateString(r->dlq) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "dead_letters", r->dlq ? cJSON_CreateNumber(r->dead) : cJSON_CreateNull());
        cJSON_AddItemToArray(list, o);
    }
    char *s = cJSON_PrintUnformatted(doc);
    CORE_ASSERT(s != NULL);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(doc);
}

/* The cells of a row as text (or the header when r is NULL). */
#define LIST_COLS 9
#define LIST_CELL 128
static void list__cells(const list_row_t *r, char cells[LIST_COLS][LIST_CELL])
{
    static const char *const head[LIST_COLS] = {"QUEUE",     "READY", "UNACKED", "CONSUMERS", "PUBLISH/S",
                                                "DELIVER/S", "ACK/S", "DEAD",    "FOR"};
    if (r == NULL) {
        for (int i = 0; i < LIST_COLS; i++)
            snprintf(cells[i], LIST_CELL, "%s", head[i]);
        return;
    }
    snprintf(cells[0], LIST_CELL, "%s", r->name);
    snprintf(cells[1], LIST_CELL, "%.0f", r->ready);
    snprintf(cells[2], LIST_CELL, "%.0f", r->unacked);
    snprintf(cells[3], LIST_CELL, "%.0f", r->consumers);
    snprintf(cells[4], LIST_CELL, "%.1f", r->publish_rate);
    snprintf(cells[5], LIST_CELL, "%.1f", r->deliver_rate);
    snprintf(cells[6], LIST_CELL, "%.1f", r->ack_rate);
    if (r->dlq != NULL)
        snprintf(cells[7], LIST_CELL, "%.0f", r->dead);
    else
        snprintf(cells[7], LIST_CELL, "-");
    snprintf(cells[8], LIST_CELL, "%s", r->purpose ? r->purpose : "");
}

static void list__print_table(const list_row_t *rows, size_t n)
{
    size_t width[LIST_COLS] = {0};
    char cells[LIST_COLS][LIST_CELL];
    for (size_t i = 0; i <= n; i++) {
        list__cells(i == 0 ? NULL : &rows[i - 1], cells);
        for (int c = 0; c < LIST_COLS; c++)
            if (strlen(cells[c]) > width[c])
                width[c] = strlen(cells[c]);
        if (i > 0 && strlen(rows[i - 1].name) > width[0])
            width[0] = strlen(rows[i - 1].name);
    }
    for (size_t i = 0; i <= n; i++) {
        const list_row_t *r = i == 0 ? NULL : &rows[i - 1];
        list__cells(r, cells);
        /* the name in full and escaped (a queue's name is anyone's string); numbers right-aligned */
        const char *name = r != NULL ? r->name : cells[0];
        queues_print_escaped(stdout, name, strlen(name));
        printf("%*s", (int)(width[0] - strlen(name)), "");
        for (int c = 1; c < LIST_COLS - 1; c++)
            printf("  %*s", (int)width[c], cells[c]);
        printf("  %s\n", cells[LIST_COLS - 1]);
    }
}

int list_run(queues_t *q, char *err, size_t errlen)
{
    char *path = mgmt_path(q->mgmt, "queues", NULL, NULL);
    cJSON *answer = NULL;
    list_row_t *rows = NULL;
    int rc;
    int mrc = mgmt_list(q->mgmt, path, NULL, &answer, err, errlen);
    if (mrc == MGMT_ENOTFOUND)
        snprintf(err, errlen, "QUEUES_VHOST: no vhost %s", q->vhost);
    if (mrc != MGMT_OK) {
        rc = mrc == MGMT_ENOTFOUND ? QUEUES_EXIT_REFUSED : QUEUES_EXIT_FAILED;
        goto out;
    }
    rows = xcalloc((size_t)cJSON_GetArraySize(answer) + 1, sizeof(*rows));
    size_t n = list__rows(answer, rows);
    if (q->json)
        list__print_json(q->vhost, rows, n);
    else
        list__print_table(rows, n);
    rc = QUEUES_EXIT_OK;
out:
    free(rows);
    cJSON_Delete(answer);
    free(path);
    return rc;
}
