/* recover.c -- the fate of an event whose request died between its outbox_begin and its commit:
 * publish it when its decisive write happened (finishing what followed the write), else drop it. */
#include <string.h>

#include "json/json.h"
#include "log/log.h"
#include "pub.h"

/* 1 if coll has a document {_id: id} (and {op: op} when op is not NULL), 0 if not, -1. */
static int recover__exists(pub_t *p, const char *coll, const char *id, const char *op)
{
    /* by _id alone, then the op: FerretDB answers only {_id: x} from an index */
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id)), doc = BSON_INITIALIZER;
    int rc = db_find_one(p->db, coll, f, NULL, &doc);
    if (rc == 1 && op != NULL) {
        const char *has = db_doc_str(&doc, "op");
        rc = has != NULL && strcmp(has, op) == 0;
    }
    bson_destroy(&doc);
    bson_destroy(f);
    return rc;
}

/* A like's target (what precedes ':' in its id) and kind from the stored payload; recounts it. */
static int recover__like_count(pub_t *p, const char *body)
{
    cJSON *ev = json_parse_object(body, strlen(body), 1 << 20, 16, NULL);
    const char *target = rpc_field_str(ev, "target_id"), *type = rpc_field_str(ev, "target_type");
    int rc = target != NULL && type != NULL ? counts_sync(p, target, strcmp(type, "post") == 0) : 0;
    cJSON_Delete(ev);
    return rc;
}

outbox_verdict_t pub_outbox_recover(void *ud, const bson_t *doc, char **body)
{
    (void)body;
    pub_t *p = ud;
    const char *key = db_doc_str(doc, "key"), *a = db_doc_str(doc, "a"), *b = db_doc_str(doc, "b"),
               *payload = db_doc_str(doc, "body");
    if (key == NULL || a == NULL || payload == NULL)
        return OUTBOX_DROP;
    int rc;
    if (strcmp(key, "post.created") == 0) {
        rc = recover__exists(p, "posts", a, NULL);
    } else if (strcmp(key, "post.updated") == 0) {
        rc = b != NULL ? recover__exists(p, "posts", a, b) : 0;
    } else if (strcmp(key, "post.deleted") == 0) {
        rc = recover__exists(p, "posts", a, NULL);
        if (rc == 0) /* gone: finish its cascade, then publish */
            rc = posts_cascade(p, a) == 0 ? 1 : -1;
        else if (rc == 1)
            rc = 0;
    } else if (strcmp(key, "comment.created") == 0) {
        rc = recover__exists(p, "comments", a, NULL);
        if (rc == 1 && b != NULL && counts_sync(p, b, 1) != 0)
            rc = -1;
    } else if (strcmp(key, "comment.deleted") == 0) {
        rc = recover__exists(p, "comments", a, NULL);
        if (rc == 0)
            rc = b != NULL && comments_cascade(p, a, b, NULL) != 0 ? -1 : 1;
        else if (rc == 1)
            rc = 0;
    } else if (strcmp(key, "like.created") == 0 || strcmp(key, "like.deleted") == 0) {
        int created = key[5] == 'c';
        rc = recover__exists(p, "likes", a, b != NULL ? b : "");
        if (rc >= 0 && !created)
            rc = !rc; /* the like with this op is gone: the unlike happened */
        if (rc == 1 && recover__like_count(p, payload) != 0)
            rc = -1;
    } else {
        log_warn(NULL, "outbox event %s of unknown key %s dropped", db_doc_str(doc, "_id"), key);
        return OUTBOX_DROP;
    }
    if (rc < 0)
        return OUTBOX_KEEP;
    return rc == 1 ? OUTBOX_READY : OUTBOX_DROP;
}
