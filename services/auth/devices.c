/* devices.c -- the FCM registration tokens of each account (at most AUTH_MAX_DEVICES, oldest out). */
#include <string.h>

#include "auth.h"
#include "core/core.h"

/* Removes the device token of user_id with an outbox event saying why. 1 removed, 0 not there, -1. */
static int dev__remove(auth_t *a, const char *user_id, const char *token, const char *reason, const char *rid)
{
    cJSON *payload = cJSON_CreateObject();
    cJSON_AddStringToObject(payload, "user_id", user_id);
    cJSON_AddStringToObject(payload, "token", token);
    cJSON_AddStringToObject(payload, "reason", reason);
    json_add_time(payload, "removed_at", core_wall_ms());
    char evid[37];
    int rc = outbox_begin(a->outbox, "device.removed", payload, user_id, token, rid, evid);
    cJSON_Delete(payload);
    if (rc != 0)
        return -1;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(token), "user_id", BCON_UTF8(user_id));
    rc = db_delete_one(a->db, "devices", f);
    bson_destroy(f);
    if (rc == 1)
        outbox_commit(a->outbox, evid);
    else
        outbox_abort(a->outbox, evid);
    return rc;
}

typedef struct {
    cJSON *tokens; /* of the caller, oldest first */
} dev__list_t;

static int dev__collect(const bson_t *doc, void *ud)
{
    dev__list_t *l = ud;
    const char *t = db_doc_str(doc, "_id");
    if (t != NULL)
        cJSON_AddItemToArray(l->tokens, cJSON_CreateString(t));
    return 0;
}

void devices_add(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        return;
    static const rpc_field_t fields[] = {
        {"token", 1, 0, 1, 4096},
        {"platform", 1, 0, 1, 16},
    };
    cJSON *errors = cJSON_CreateObject(), *payload = NULL;
    dev__list_t list = {.tokens = cJSON_CreateArray()};
    bson_t me = BSON_INITIALIZER, old = BSON_INITIALIZER;
    bson_t *f = NULL, *doc = NULL, *opts = NULL;
    char evid[37];
    rpc_fields_check(body, fields, CORE_ARRAY_SIZE(fields), errors);
    const char *token = rpc_field_str(body, "token"), *platform = rpc_field_str(body, "platform");
    if (token != NULL && !cJSON_HasObjectItem(errors, "token") && !auth_device_token_valid(token))
        cJSON_AddStringToObject(errors, "token", "must be an FCM registration token");
    if (platform != NULL && !cJSON_HasObjectItem(errors, "platform") && strcmp(platform, "android") != 0 &&
        strcmp(platform, "ios") != 0 && strcmp(platform, "web") != 0)
        cJSON_AddStringToObject(errors, "platform", "must be android, ios or web");
    if (rpc_invalid_fields(r, &errors))
        goto out;
    if (user_caller(a, req, r, &me) != 1)
        goto out;
    const char *uid = req->user_id;

    /* A token another account registered moves here (the phone changed hands or accounts). */
    f = BCON_NEW("_id", BCON_UTF8(token));
    int rc = db_find_one(a->db, "devices", f, NULL, &old);
    const char *owner = rc == 1 ? db_doc_str(&old, "user_id") : NULL;
    if (rc < 0 || (owner != NULL && strcmp(owner, uid) != 0 &&
                   dev__remove(a, owner, token, "moved", req->request_id) < 0)) {
        rpc_db_error(r);
        goto out;
    }
    int64_t now = core_wall_ms();
    payload = cJSON_CreateObject();
    cJSON_AddStringToObject(payload, "user_id", uid);
    cJSON_AddStringToObject(payload, "token", token);
    cJSON_AddStringToObject(payload, "platform", platform);
    json_add_time(payload, "created_at", now);
    if (outbox_begin(a->outbox, "device.registered", payload, uid, token, req->request_id, evid) != 0) {
        rpc_db_error(r);
        goto out;
    }
    doc = BCON_NEW("$set", "{", "user_id", BCON_UTF8(uid), "platform", BCON_UTF8(platform), "created_at",
                   BCON_DATE_TIME(now), "op", BCON_UTF8(evid), "}");
    if (db_update_one(a->db, "devices", f, doc, 1) < 0) {
        outbox_abort(a->outbox, evid);
        rpc_db_error(r);
        goto out;
    }
    outbox_commit(a->outbox, evid);

    /* The oldest beyond the cap go. */
    bson_destroy(f);
    f = BCON_NEW("user_id", BCON_UTF8(uid));
    opts = BCON_NEW("sort", "{", "created_at", BCON_INT32(1), "_id", BCON_INT32(1), "}", "projection", "{",
                    "_id", BCON_INT32(1), "}");
    if (db_each(a->db, "devices", f, opts, dev__collect, &list) < 0) {
        rpc_db_error(r);
        goto out;
    }
    int n = cJSON_GetArraySize(list.tokens);
    for (int i = 0; i < n - a->conf->max_devices; i++) {
        const char *t = cJSON_GetArrayItem(list.tokens, i)->valuestring;
        if (strcmp(t, token) != 0 && dev__remove(a, uid, t, "evicted", req->request_id) < 0) {
            rpc_db_error(r);
            goto out;
        }
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "token", token);
    cJSON_AddStringToObject(o, "platform", platform);
    json_add_time(o, "created_at", now);
    rpc_json(r, 201, o);
out:
    if (f != NULL)
        bson_destroy(f);
    if (doc != NULL)
        bson_destroy(doc);
    if (opts != NULL)
        bson_destroy(opts);
    bson_destroy(&me);
    bson_destroy(&old);
    cJSON_Delete(list.tokens);
    cJSON_Delete(payload);
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

void devices_remove(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    char token[4097];
    if (rpc_param(req, "token", token, sizeof(token)) != 0 || !auth_device_token_valid(token)) {
        rpc_not_found(r, "no such device");
        return;
    }
    if (dev__remove(a, req->user_id, token, "removed", req->request_id) < 0)
        rpc_db_error(r);
    else
        rpc_no_content(r); /* removing a device that is not there is done already */
}
