/* lists.c -- ?limit= and ?cursor= of publication's lists, and their next_cursor. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "pub.h"

int lists_page_args(pub_t *p, const mq_message_t *req, mq_reply_t *r, const char *list, long *limit,
                    char *after, size_t afterlen)
{
    return rpc_page_args(&p->cursor, req, r, list, limit, after, afterlen);
}

void lists_add_next(pub_t *p, cJSON *o, const char *list, const char *key)
{
    rpc_page_next(&p->cursor, o, list, key);
}

/* ================================================================ walking a list */

#define LISTS__ROUNDS 5

typedef struct {
    bson_t **docs;
    size_t n;
} lists__batch_t;

static int lists__keep(const bson_t *doc, void *ud)
{
    lists__batch_t *b = ud;
    b->docs = xrealloc(b->docs, (b->n + 1) * sizeof(*b->docs));
    b->docs[b->n++] = bson_copy(doc);
    return 0;
}

static void lists__batch_free(lists__batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        bson_destroy(b->docs[i]);
    free(b->docs);
    b->docs = NULL;
    b->n = 0;
}

int lists_walk(pub_t *p, const lists_walk_t *w, cJSON *items, char **next_key)
{
    char after[256];
    snprintf(after, sizeof(after), "%s", w->after);
    *next_key = NULL;
    long have = 0;
    int rc = 0;
    for (int round = 0; round < LISTS__ROUNDS; round++) {
        long want = w->limit - have + 1;
        bson_t filter;
        bson_copy_to(w->filter, &filter);
        if (after[0] != '\0') {
            bson_t range;
            bson_append_document_begin(&filter, w->key, -1, &range);
            bson_append_utf8(&range, w->descending ? "$lt" : "$gt", -1, after, -1);
            bson_append_document_end(&filter, &range);
        }
        bson_t *opts = BCON_NEW("sort", "{", w->key, BCON_INT32(w->descending ? -1 : 1), "}", "limit",
                                BCON_INT64(want));
        lists__batch_t b = {0};
        long n = db_each(p->db, w->coll, &filter, opts, lists__keep, &b);
        bson_destroy(&filter);
        bson_destroy(opts);
        if (n < 0) {
            lists__batch_free(&b);
            return -1;
        }
        int full = 0;
        for (size_t i = 0; i < b.n && rc == 0; i++) {
            if (have == w->limit) {
                full = 1; /* one more exists: the page ends at the last item shown */
                break;
            }
            const char *k = db_doc_str(b.docs[i], w->key);
            if (k == NULL || strlen(k) >= sizeof(after))
                continue;
            strcpy(after, k);
            const char *owner = db_doc_str(b.docs[i], w->owner);
            if (owner == NULL || (w->hidden != NULL && pub_ids_has(w->hidden, owner)))
                continue;
            int err = 0;
            cJSON *item = w->render(b.docs[i], w->ud, &err);
            if (err)
                rc = -1;
            else if (item != NULL) {
                cJSON_AddItemToArray(items, item);
                have++;
            }
        }
        lists__batch_free(&b);
        if (rc != 0)
            return -1;
        if (full) {
            *next_key = xstrdup(after);
            return 0;
        }
        if ((long)n < want)
            return 0; /* the end of the list */
    }
    /* Many hidden items in a row: a short page, and the next one goes on after what was read. */
    *next_key = xstrdup(after);
    return 0;
}

void lists_answer(pub_t *p, const mq_message_t *req, mq_reply_t *r, const char *list, lists_walk_t *w)
{
    lists_ctx_t ctx = {.p = p, .caller = req->user_id, .authors = users_authors_new(p)};
    cJSON *out = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(out, "items");
    char *next = NULL;
    w->ud = &ctx;
    w->hidden = &ctx.blocks;
    if (users_blockset(p, req->user_id, &ctx.blocks) != 0 || lists_walk(p, w, items, &next) != 0) {
        rpc_db_error(r);
        cJSON_Delete(out);
    } else {
        lists_add_next(p, out, list, next);
        rpc_json(r, 200, out);
    }
    free(next);
    pub_ids_free(&ctx.blocks);
    users_authors_free(ctx.authors);
}
