/* media.c -- stored media: their JSON, reads by the owner and by other services, deletion with
 * the account, and the outbox's recovery of interrupted uploads and deletions. */
#include <string.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "resize.h"
#include "rpc/rpc.h"

#define MEDIA__BATCH_MAX 50 /* ids per media.get */

/* ================================================================ ids, keys, JSON */

int media_id_valid(const char *s)
{
    if (s == NULL || strlen(s) != MEDIA_ID_LEN)
        return 0;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

void media_key(char *out, size_t outlen, const char *id, variant_t v, int webp)
{
    snprintf(out, outlen, "m/%s/%s.%s", id, variant_name(v), webp ? "webp" : "jpg");
}

static int32_t media__int(const bson_t *doc, const char *dotted)
{
    bson_iter_t it;
    return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, dotted, &it) &&
                   BSON_ITER_HOLDS_INT32(&it)
               ? bson_iter_int32(&it)
               : 0;
}

cJSON *media_json(resize_t *app, const bson_t *doc)
{
    const char *id = db_doc_str(doc, "_id");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "owner_id", db_doc_str(doc, "owner_id"));
    cJSON_AddNumberToObject(o, "width", media__int(doc, "width"));
    cJSON_AddNumberToObject(o, "height", media__int(doc, "height"));
    cJSON *vars = cJSON_AddObjectToObject(o, "variants");
    for (int i = 0; i < VARIANT_COUNT; i++) {
        char key[128], path[64];
        cJSON *one = cJSON_AddObjectToObject(vars, variant_name(i));
        media_key(key, sizeof(key), id, i, 0);
        char *url = xasprintf("%s%s", app->conf->public_url, key);
        cJSON_AddStringToObject(one, "url", url);
        free(url);
        media_key(key, sizeof(key), id, i, 1);
        url = xasprintf("%s%s", app->conf->public_url, key);
        cJSON_AddStringToObject(one, "webp_url", url);
        free(url);
        snprintf(path, sizeof(path), "variants.%s.width", variant_name(i));
        cJSON_AddNumberToObject(one, "width", media__int(doc, path));
        snprintf(path, sizeof(path), "variants.%s.height", variant_name(i));
        cJSON_AddNumberToObject(one, "height", media__int(doc, path));
    }
    const char *bh = db_doc_str(doc, "blurhash");
    if (bh != NULL)
        cJSON_AddStringToObject(o, "blurhash", bh);
    json_add_time(o, "created_at", db_doc_ms(doc, "created_at"));
    return o;
}

int media_delete_objects(resize_t *app, const char *id)
{
    char key[128], err[256];
    int rc = 0;
    for (int i = 0; i < VARIANT_COUNT; i++)
        for (int webp = 0; webp <= 1; webp++) {
            media_key(key, sizeof(key), id, i, webp);
            if (objstore_delete(app->store, key, err, sizeof(err)) != OBJSTORE_OK) {
                log_warn(NULL, "media %s: %s", id, err);
                rc = -1;
            }
        }
    return rc;
}

/* Loads a ready media document: 1, 0 absent (or still uploading), -1. */
static int media__load(resize_t *app, const char *id, bson_t *out)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id), "state", BCON_UTF8("ready"));
    int rc = db_find_one(app->db, "media", f, NULL, out);
    bson_destroy(f);
    return rc;
}

/* ================================================================ reads */

void media_get_one(resize_t *app, const mq_message_t *req, mq_reply_t *r)
{
    char id[MEDIA_ID_LEN + 8];
    if (rpc_param(req, "id", id, sizeof(id)) != 0 || !media_id_valid(id)) {
        rpc_not_found(r, "no such media");
        return;
    }
    bson_t doc = BSON_INITIALIZER;
    int rc = media__load(app, id, &doc);
    const char *owner = rc == 1 ? db_doc_str(&doc, "owner_id") : NULL;
    if (rc < 0)
        rpc_db_error(r);
    else if (owner == NULL || strcmp(owner, req->user_id) != 0) /* someone else's is none of yours */
        rpc_not_found(r, "no such media");
    else
        rpc_json(r, 200, media_json(app, &doc));
    bson_destroy(&doc);
}

/* Body {"ids": [...]} (1..50 media ids). Answers {items: [media, in the order asked, each with
 * owner_id], missing: [ids not found]}; the caller decides what someone else's media means. */
void media_get_batch(resize_t *app, const mq_message_t *req, mq_reply_t *r)
{
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        return;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(body, "ids");
    int n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : -1;
    if (n < 1 || n > MEDIA__BATCH_MAX) {
        rpc_invalid(r, "ids", "an array of 1 to 50 media ids is required");
        cJSON_Delete(body);
        return;
    }
    cJSON *out = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(out, "items"),
          *missing = cJSON_AddArrayToObject(out, "missing");
    const cJSON *it;
    cJSON_ArrayForEach(it, ids)
    {
        if (!cJSON_IsString(it)) {
            rpc_invalid(r, "ids", "every id must be a string");
            goto fail;
        }
        bson_t doc = BSON_INITIALIZER;
        int rc = media_id_valid(it->valuestring) ? media__load(app, it->valuestring, &doc) : 0;
        if (rc < 0) {
            bson_destroy(&doc);
            rpc_db_error(r);
            goto fail;
        }
        if (rc == 1)
            cJSON_AddItemToArray(items, media_json(app, &doc));
        else
            cJSON_AddItemToArray(missing, cJSON_CreateString(it->valuestring));
        bson_destroy(&doc);
    }
    cJSON_Delete(body);
    rpc_json(r, 200, out);
    return;
fail:
    cJSON_Delete(out);
    cJSON_Delete(body);
}

/* ================================================================ deletion with the account */

int media_owner_gone(resize_t *app, const char *user_id)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
    int rc = db_exists(app->db, "deleted_users", f);
    bson_destroy(f);
    return rc;
}

int media_delete(resize_t *app, const char *id, const char *owner, const char *request_id)
{
    cJSON *payload = cJSON_CreateObject();
    cJSON_AddStringToObject(payload, "id", id);
    cJSON_AddStringToObject(payload, "owner_id", owner);
    json_add_time(payload, "deleted_at", core_wall_ms());
    char ob[37];
    int rc = outbox_begin(app->outbox, "media.deleted", payload, id, owner, request_id, ob);
    cJSON_Delete(payload);
    if (rc != 0)
        return -1;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    rc = media_delete_objects(app, id) == 0 ? db_delete_one(app->db, "media", f) : -1;
    bson_destroy(f);
    if (rc == 1)
        outbox_commit(app->outbox, ob);
    else if (rc == 0) /* a concurrent delivery of the same user.deleted deleted it, with its event */
        outbox_abort(app->outbox, ob);
    /* else the event stays pending and recovery finishes the deletion */
    return rc < 0 ? -1 : 0;
}

typedef struct {
    char ids[100][MEDIA_ID_LEN + 1];
    size_t n;
} media__ids_t;

static int media__collect(const bson_t *doc, void *ud)
{
    media__ids_t *b = ud;
    const char *id = db_doc_str(doc, "_id");
    if (id != NULL && strlen(id) == MEDIA_ID_LEN)
        memcpy(b->ids[b->n++], id, MEDIA_ID_LEN + 1);
    return b->n == CORE_ARRAY_SIZE(b->ids);
}

mq_disposition_t media_on_user_deleted(mq_t *mq, const mq_message_t *msg, void *ud)
{
    (void)mq;
    resize_t *app = ud;
    cJSON *body = json_parse_object(msg->body, msg->body_len, 1 << 20, 16, NULL);
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(body, "user_id");
    mq_disposition_t d = MQ_ACK;
    if (!cJSON_IsString(uid) || uid->valuestring[0] == '\0') {
        log_warn(msg->request_id, "user.deleted %s without user_id: dead-lettered",
                 msg->message_id != NULL ? msg->message_id : "-");
        d = MQ_DEAD;
        goto out;
    }
    /* Remembered first: an upload with a token issued before the deletion (valid for minutes
     * more) is refused from now on, and one that was under way finds it and undoes itself. */
    bson_t *gone = BCON_NEW("_id", BCON_UTF8(uid->valuestring), "at", BCON_DATE_TIME(core_wall_ms()));
    int rc = db_insert(app->db, "deleted_users", gone);
    bson_destroy(gone);
    if (rc < 0) {
        d = MQ_RETRY;
        goto out;
    }
    /* In batches until none is left: a redelivery finds nothing more to do. */
    for (;;) {
        media__ids_t *b = xcalloc(1, sizeof(*b));
        bson_t *f = BCON_NEW("owner_id", BCON_UTF8(uid->valuestring));
        bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(100));
        long found = db_each(app->db, "media", f, opts, media__collect, b);
        bson_destroy(f);
        bson_destroy(opts);
        int failed = found < 0;
        for (size_t i = 0; i < b->n && !failed; i++)
            failed = media_delete(app, b->ids[i], uid->valuestring, msg->request_id) != 0;
        size_t n = b->n;
        free(b);
        if (failed) {
            d = MQ_RETRY;
            break;
        }
        if (n == 0)
            break;
        log_info(msg->request_id, "user %s deleted: %zu media removed", uid->valuestring, n);
    }
out:
    cJSON_Delete(body);
    return d;
}

/* ================================================================ recovery */

outbox_verdict_t media_recover(void *ud, const bson_t *doc, char **body)
{
    (void)body;
    resize_t *app = ud;
    const char *key = db_doc_str(doc, "key"), *id = db_doc_str(doc, "a");
    if (key == NULL || !media_id_valid(id))
        return OUTBOX_DROP;
    bson_t media = BSON_INITIALIZER;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int has = db_find_one(app->db, "media", f, NULL, &media);
    const char *state = has == 1 ? db_doc_str(&media, "state") : NULL;
    outbox_verdict_t v = OUTBOX_KEEP;
    if (has < 0)
        goto out;
    if (strcmp(key, "media.created") == 0) {
        /* Ready: the client got (or could have got) its 201. Anything else: the upload died
         * half-way; what it left goes, and so does the event. */
        if (state != NULL && strcmp(state, "ready") == 0)
            v = OUTBOX_READY;
        else if (media_delete_objects(app, id) == 0 && db_delete_one(app->db, "media", f) >= 0)
            v = OUTBOX_DROP;
    } else if (strcmp(key, "media.deleted") == 0) {
        /* A deletion is only begun for an account that is gone: finish it. */
        if (media_delete_objects(app, id) == 0 && db_delete_one(app->db, "media", f) >= 0)
            v = OUTBOX_READY;
    } else {
        v = OUTBOX_DROP;
    }
out:
    bson_destroy(f);
    bson_destroy(&media);
    return v;
}
