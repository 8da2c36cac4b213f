/* users.c -- projections of other services' data the inbox shows: users (actors) and posts
 * (thumbnails), kept from events and read by _id. */
#include <string.h>

#include "core/core.h"
#include "log/log.h"
#include "notif.h"

int users_gone(notif_t *n, const char *user_id)
{
    char key[96];
    snprintf(key, sizeof(key), "u:%s", user_id);
    return stops_get(n, key, NULL);
}

int users_apply(notif_t *n, const char *user_id, const char *username, const char *name,
                const char *avatar_media_id, int64_t v, const char *request_id)
{
    int d = users_gone(n, user_id);
    if (d != 0)
        return d < 0 ? -1 : 0;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id)), cur = BSON_INITIALIZER;
    int rc = db_find_one(n->db, "users", f, NULL, &cur);
    int stale = rc == 1 && db_doc_int(&cur, "v") >= v;
    bson_destroy(&cur);
    char *url = NULL;
    if (rc >= 0 && !stale && avatar_media_id != NULL &&
        rpc_media_thumb(n->rpc, user_id, avatar_media_id, request_id, (unsigned)n->conf->rpc_timeout_ms, &url) < 0)
        rc = -1;
    if (rc >= 0 && !stale) {
        /* read, compare, write: two versions of one user at once are rare, and the next event
         * about the user mends a lost race */
        bson_t *u = bson_new(), set;
        bson_append_document_begin(u, "$set", -1, &set);
        BSON_APPEND_UTF8(&set, "username", username);
        BSON_APPEND_UTF8(&set, "name", name != NULL ? name : "");
        if (url != NULL)
            BSON_APPEND_UTF8(&set, "avatar", url);
        else
            BSON_APPEND_NULL(&set, "avatar");
        BSON_APPEND_INT64(&set, "v", v);
        bson_append_document_end(u, &set);
        rc = db_update_one(n->db, "users", f, u, 1) < 0 ? -1 : 0;
        bson_destroy(u);
    }
    free(url);
    /* user.deleted may have run between the check and the write */
    if (rc >= 0 && users_gone(n, user_id) == 1)
        rc = db_delete_one(n->db, "users", f) < 0 ? -1 : 0;
    bson_destroy(f);
    return rc < 0 ? -1 : 0;
}

typedef struct {
    cJSON *out;
} users__collect_t;

static int users__keep_actor(const bson_t *doc, void *ud)
{
    users__collect_t *c = ud;
    const char *id = db_doc_str(doc, "_id"), *username = db_doc_str(doc, "username");
    if (id == NULL || username == NULL)
        return 0;
    const char *name = db_doc_str(doc, "name"), *avatar = db_doc_str(doc, "avatar");
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", id);
    cJSON_AddStringToObject(a, "username", username);
    cJSON_AddStringToObject(a, "name", name != NULL ? name : "");
    if (avatar != NULL)
        cJSON_AddStringToObject(a, "avatar", avatar);
    else
        cJSON_AddNullToObject(a, "avatar");
    cJSON_DeleteItemFromObjectCaseSensitive(c->out, id);
    cJSON_AddItemToObject(c->out, id, a);
    return 0;
}

cJSON *users_actors(notif_t *n, const char *const *ids, const char *const *usernames, size_t count)
{
    users__collect_t c = {.out = cJSON_CreateObject()};
    /* an actor not projected yet (its user.registered still on its way) shows the username the
     * event carried */
    for (size_t i = 0; i < count; i++) {
        if (cJSON_GetObjectItemCaseSensitive(c.out, ids[i]) != NULL)
            continue;
        cJSON *a = cJSON_AddObjectToObject(c.out, ids[i]);
        cJSON_AddStringToObject(a, "id", ids[i]);
        cJSON_AddStringToObject(a, "username", usernames[i] != NULL ? usernames[i] : "");
        cJSON_AddStringToObject(a, "name", "");
        cJSON_AddNullToObject(a, "avatar");
    }
    for (size_t i = 0; i < count; i += 1000)
        if (db_find_ids(n->db, "users", ids + i, count - i < 1000 ? count - i : 1000, users__keep_actor, &c) < 0) {
            cJSON_Delete(c.out);
            return NULL;
        }
    return c.out;
}

int users_post_put(notif_t *n, const char *post_id, const char *author_id, const char *thumb_url)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(post_id)), *u = bson_new(), set;
    bson_append_document_begin(u, "$set", -1, &set);
    BSON_APPEND_UTF8(&set, "author", author_id);
    if (thumb_url != NULL)
        BSON_APPEND_UTF8(&set, "thumb", thumb_url);
    else
        BSON_APPEND_NULL(&set, "thumb");
    bson_append_document_end(u, &set);
    int rc = db_update_one(n->db, "posts", f, u, 1) < 0 ? -1 : 0;
    bson_destroy(f);
    bson_destroy(u);
    return rc;
}

int users_post_gone(notif_t *n, const char *post_id)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(post_id));
    int rc = db_delete_one(n->db, "posts", f) < 0 ? -1 : 0;
    bson_destroy(f);
    return rc;
}

static int users__keep_thumb(const bson_t *doc, void *ud)
{
    const char *id = db_doc_str(doc, "_id"), *thumb = db_doc_str(doc, "thumb");
    if (id != NULL && thumb != NULL && cJSON_GetObjectItemCaseSensitive(ud, id) == NULL)
        cJSON_AddStringToObject(ud, id, thumb);
    return 0;
}

cJSON *users_post_thumbs(notif_t *n, const char *const *ids, size_t count)
{
    cJSON *out = cJSON_CreateObject();
    for (size_t i = 0; i < count; i += 1000)
        if (db_find_ids(n->db, "posts", ids + i, count - i < 1000 ? count - i : 1000, users__keep_thumb, out) < 0) {
            cJSON_Delete(out);
            return NULL;
        }
    return out;
}
