/* highlights.c -- highlights: titled collections of one's stories that outlive the 24 hours. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "log/log.h"
#include "pub.h"

/* ================================================================ store */

static int highlights__load(pub_t *p, const char *id, bson_t *out)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_find_one(p->db, "highlights", f, NULL, out);
    bson_destroy(f);
    return rc;
}

/* Deletes highlight id of owner: the document, then its id in the bucket (an id left behind by a
 * failure in between names nothing, and readers skip and pull it). 1, 0 it was not there, -1. */
static int highlights__delete(pub_t *p, const char *id, const char *owner)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_delete_one(p->db, "highlights", f);
    bson_destroy(f);
    const char *one[1] = {id};
    if (rc >= 0 && store_ids_change(p, "user_highlights", owner, "ids", "$pull", one, 1) != 0)
        rc = -1;
    return rc;
}

/* The number of stories highlight h holds; sets *copy (borrowed from h, NULL when not there) to
 * the stored element of story_id when story_id is not NULL. */
static int highlights__stories(const bson_t *h, const char *story_id, bson_iter_t *copy, int *has)
{
    bson_iter_t it, a;
    int n = 0;
    *has = 0;
    if (!bson_iter_init_find(&it, h, "stories") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &a))
        return 0;
    while (bson_iter_next(&a)) {
        n++;
        bson_iter_t id;
        if (story_id != NULL && !*has && BSON_ITER_HOLDS_DOCUMENT(&a) && bson_iter_recurse(&a, &id) &&
            bson_iter_find(&id, "id") && BSON_ITER_HOLDS_UTF8(&id) &&
            strcmp(bson_iter_utf8(&id, NULL), story_id) == 0) {
            *copy = a;
            *has = 1;
        }
    }
    return n;
}

/* Takes story_id out of highlight hid ($pull of the exact stored element: our FerretDB pulls
 * equal values only, no conditions) and deletes the highlight when that leaves it empty. 0 (also
 * when hid or the story in it is not there) or -1. */
static int highlights__pull_story(pub_t *p, const char *hid, const char *story_id)
{
    bson_t h = BSON_INITIALIZER;
    int rc = highlights__load(p, hid, &h);
    bson_iter_t el;
    int has = 0;
    if (rc == 1)
        highlights__stories(&h, story_id, &el, &has);
    if (rc == 1 && has) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(hid)), *u = bson_new(), pull;
        bson_append_document_begin(u, "$pull", -1, &pull);
        bson_append_iter(&pull, "stories", -1, &el);
        bson_append_document_end(u, &pull);
        rc = db_update_one(p->db, "highlights", f, u, 0);
        bson_destroy(f);
        bson_destroy(u);
        bson_destroy(&h);
        bson_init(&h);
        if (rc >= 0)
            rc = highlights__load(p, hid, &h); /* again: whatever else was taken meanwhile counts too */
        int left = rc == 1 ? highlights__stories(&h, story_id, &el, &has) : 1;
        if (rc == 1 && has) {
            log_error(NULL, "highlight %s: story %s was not pulled", hid, story_id);
            rc = -1;
        } else if (rc == 1 && left == 0) {
            const char *owner = db_doc_str(&h, "owner_id");
            rc = highlights__delete(p, hid, owner != NULL ? owner : "");
        }
    }
    bson_destroy(&h);
    return rc < 0 ? -1 : 0;
}

int highlights_drop_story(pub_t *p, const char *owner, const char *story_id)
{
    pub_ids_t ids;
    if (store_ids_load(p, "user_highlights", owner, "ids", &ids) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < ids.n && rc == 0; i++)
        rc = highlights__pull_story(p, ids.ids[i], story_id);
    pub_ids_free(&ids);
    return rc;
}

int highlights_user_gone(pub_t *p, const char *user_id)
{
    pub_ids_t ids;
    if (store_ids_load(p, "user_highlights", user_id, "ids", &ids) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < ids.n && rc == 0; i++) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(ids.ids[i]));
        rc = db_delete_one(p->db, "highlights", f) < 0 ? -1 : 0;
        bson_destroy(f);
    }
    pub_ids_free(&ids);
    if (rc == 0) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
        rc = db_delete_one(p->db, "user_highlights", f) < 0 ? -1 : 0;
        bson_destroy(f);
    }
    return rc;
}

/* ================================================================ the Highlight shape */

/* The Highlight JSON of a stored highlight; NULL with *err = 1 on a database error, NULL with
 * *err = 0 when its owner is gone. */
static cJSON *highlights__json(pub_authors_t *authors, const bson_t *h, int *err)
{
    *err = 0;
    const char *id = db_doc_str(h, "_id"), *owner = db_doc_str(h, "owner_id"),
               *title = db_doc_str(h, "title");
    const cJSON *author = id != NULL && owner != NULL ? users_authors_get(authors, owner, err) : NULL;
    if (author == NULL)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddItemToObject(o, "owner", cJSON_Duplicate(author, 1));
    cJSON_AddStringToObject(o, "title", title != NULL ? title : "");
    cJSON *stories = cJSON_AddArrayToObject(o, "stories");
    bson_iter_t it, a;
    if (bson_iter_init_find(&it, h, "stories") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &a))
        while (bson_iter_next(&a)) {
            const uint8_t *data;
            uint32_t len;
            bson_t el;
            if (!BSON_ITER_HOLDS_DOCUMENT(&a))
                continue;
            bson_iter_document(&a, &len, &data);
            if (!bson_init_static(&el, data, len) || db_doc_str(&el, "id") == NULL)
                continue;
            cJSON *s = cJSON_CreateObject(), *media = store_member_json(&el, "media");
            cJSON_AddStringToObject(s, "id", db_doc_str(&el, "id"));
            cJSON_AddItemToObject(s, "media", media != NULL ? media : cJSON_CreateObject());
            json_add_time(s, "created_at", db_doc_ms(&el, "created_at"));
            cJSON_AddItemToArray(stories, s);
        }
    json_add_time(o, "created_at", db_doc_ms(h, "created_at"));
    return o;
}

/* ================================================================ create */

/* story_ids of a body: an array of 1..PUB_HIGHLIGHT_STORIES_MAX distinct well-formed ids; adds why
 * to errors otherwise. */
static void highlights__check_story_ids(const cJSON *ids, cJSON *errors)
{
    const char *why = NULL;
    int n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : -1;
    if (n < 0)
        why = "must be an array of story ids";
    else if (n < 1 || n > PUB_HIGHLIGHT_STORIES_MAX)
        why = "must hold 1 to 100 story ids";
    for (int i = 0; i < n && why == NULL; i++) {
        const cJSON *a = cJSON_GetArrayItem(ids, i);
        if (!cJSON_IsString(a) || !pub_id_valid(a->valuestring)) {
            why = "every story id must be 24 lower-case hex digits";
            break;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(cJSON_GetArrayItem(ids, j)->valuestring, a->valuestring) == 0)
                why = "a story id is given twice";
    }
    if (why != NULL && !cJSON_HasObjectItem(errors, "story_ids"))
        cJSON_AddStringToObject(errors, "story_ids", why);
}

/* Appends the highlight's copy of a story, {id, media, created_at}, to the array arr at index i. */
static void highlights__append_copy(bson_t *arr, uint32_t i, const bson_t *story)
{
    char key[16];
    const char *k;
    bson_uint32_to_string(i, &k, key, sizeof(key));
    bson_t el;
    bson_append_document_begin(arr, k, -1, &el);
    BSON_APPEND_UTF8(&el, "id", db_doc_str(story, "_id"));
    bson_iter_t it;
    if (bson_iter_init_find(&it, story, "media"))
        bson_append_iter(&el, "media", -1, &it);
    BSON_APPEND_DATE_TIME(&el, "created_at", db_doc_ms(story, "created_at"));
    bson_append_document_end(arr, &el);
}

/* After the insert: a story whose delete began meanwhile may have missed this highlight (it was
 * not in the bucket yet when that delete read it); such stories are taken out here. Either the
 * delete's mark comes before this read, or this highlight was in the bucket before the delete
 * read it. 0 or -1. */
static int highlights__recheck(pub_t *p, const char *hid, const cJSON *ids)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, ids)
    {
        bson_t s = BSON_INITIALIZER;
        int rc = stories_load(p, it->valuestring, &s);
        bson_iter_t d;
        int gone = rc == 0 || (rc == 1 && bson_iter_init_find(&d, &s, "deleting") &&
                               BSON_ITER_HOLDS_BOOL(&d) && bson_iter_bool(&d));
        bson_destroy(&s);
        if (rc < 0 || (gone && highlights__pull_story(p, hid, it->valuestring) != 0))
            return -1;
    }
    return 0;
}

void highlights_create(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    static const rpc_field_t fields[] = {
        {"title", 1, 0, 1, PUB_HIGHLIGHT_TITLE_MAX, 0},
        {"story_ids", 1, 0, 0, 0, 1},
    };
    cJSON *errors = NULL, *o = NULL;
    bson_t *doc = NULL, **stories = NULL;
    size_t nstories = 0;
    pub_authors_t *authors = NULL;
    char id[25] = "";
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        return;
    errors = cJSON_CreateObject();
    rpc_fields_check(body, fields, CORE_ARRAY_SIZE(fields), errors);
    const char *title = rpc_field_str(body, "title");
    if (title != NULL && !cJSON_HasObjectItem(errors, "title") && !text_has_content(title))
        cJSON_AddStringToObject(errors, "title", "must not be only white space");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(body, "story_ids");
    if (ids != NULL)
        highlights__check_story_ids(ids, errors);
    if (rpc_invalid_fields(r, &errors) || users_caller(p, req, r, NULL) != 1)
        goto out;
    const char *uid = req->user_id;
    int64_t now = core_wall_ms();
    size_t n = (size_t)cJSON_GetArraySize(ids);
    stories = xcalloc(n, sizeof(*stories));
    for (size_t i = 0; i < n; i++) {
        const char *sid = cJSON_GetArrayItem(ids, (int)i)->valuestring;
        bson_t doc = BSON_INITIALIZER; /* db_find_one copies into it: not a bson_new() */
        int rc = stories_load(p, sid, &doc);
        stories[nstories++] = bson_copy(&doc);
        bson_destroy(&doc);
        if (rc < 0) {
            rpc_db_error(r);
            goto out;
        }
        /* in order given, the first bad id decides: unknown or expired 422, someone else's 403 */
        if (rc == 0 || !stories_active(stories[i], now)) {
            char *why = xasprintf("no such active story: %s", sid);
            rpc_invalid(r, "story_ids", why);
            free(why);
            goto out;
        }
        const char *owner = db_doc_str(stories[i], "owner_id");
        if (owner == NULL || strcmp(owner, uid) != 0) {
            char *why = xasprintf("story %s is not yours", sid);
            rpc_problem(r, 403, "forbidden", why, NULL);
            free(why);
            goto out;
        }
    }
    db_new_id(id);
    doc = BCON_NEW("_id", BCON_UTF8(id), "owner_id", BCON_UTF8(uid), "title", BCON_UTF8(title));
    bson_t arr;
    bson_append_array_begin(doc, "stories", -1, &arr);
    for (size_t i = 0; i < n; i++)
        highlights__append_copy(&arr, (uint32_t)i, stories[i]);
    bson_append_array_end(doc, &arr);
    BSON_APPEND_DATE_TIME(doc, "created_at", now);
    if (db_insert(p->db, "highlights", doc) != 0) {
        rpc_db_error(r);
        goto out;
    }
    const char *one[1] = {id};
    if (store_ids_change(p, "user_highlights", uid, "ids", "$addToSet", one, 1) != 0) {
        highlights__delete(p, id, uid); /* else a document no bucket names: never shown */
        rpc_db_error(r);
        goto out;
    }
    if (highlights__recheck(p, id, ids) != 0) {
        rpc_db_error(r);
        goto out;
    }
    /* The account's user.deleted may have swept its highlights meanwhile: then this one goes too. */
    if (users_gone(p, uid) == 1) {
        highlights__delete(p, id, uid);
        rpc_unauthorized(r, "account-gone", "this account has been deleted");
        goto out;
    }
    bson_t fresh = BSON_INITIALIZER;
    int rc = highlights__load(p, id, &fresh), err = 0;
    authors = users_authors_new(p);
    o = rc == 1 ? highlights__json(authors, &fresh, &err) : NULL;
    bson_destroy(&fresh);
    if (rc < 0 || err)
        rpc_db_error(r);
    else if (rc == 0) /* every story of it was deleted meanwhile */
        rpc_invalid(r, "story_ids", "the stories were deleted meanwhile");
    else if (o == NULL)
        rpc_unauthorized(r, "account-gone", "this account has been deleted");
    else {
        rpc_json(r, 201, o);
        o = NULL;
    }
out:
    for (size_t i = 0; i < nstories; i++)
        bson_destroy(stories[i]);
    free(stories);
    cJSON_Delete(o);
    users_authors_free(authors);
    bson_destroy(doc);
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

/* ================================================================ list, delete */

static int highlights__newest_first(const void *a, const void *b)
{
    return strcmp(*(char *const *)b, *(char *const *)a);
}

void highlights_of_user(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    char uid[64], after[64];
    long limit;
    if (lists_page_args(p, req, r, "user_highlights", &limit, after, sizeof(after)) != 0 ||
        users_from_path(p, req, r, uid) != 1)
        return;
    pub_ids_t ids;
    if (store_ids_load(p, "user_highlights", uid, "ids", &ids) != 0) {
        rpc_db_error(r);
        return;
    }
    /* Newest first by id (time-ordered); the cursor is the last id shown, so highlights made
     * or deleted meanwhile never shift a page. */
    if (ids.n > 1) /* qsort of a NULL array, even of none, is undefined */
        qsort(ids.ids, ids.n, sizeof(*ids.ids), highlights__newest_first);
    pub_authors_t *authors = users_authors_new(p);
    cJSON *out = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(out, "items");
    const char **gone = xcalloc(ids.n + 1, sizeof(*gone));
    size_t ngone = 0;
    const char *last = NULL, *next = NULL;
    long have = 0;
    int rc = 0;
    for (size_t i = 0; i < ids.n && rc == 0; i++) {
        if (after[0] != '\0' && strcmp(ids.ids[i], after) >= 0)
            continue;
        bson_t h = BSON_INITIALIZER;
        int found = highlights__load(p, ids.ids[i], &h);
        if (found < 0)
            rc = -1;
        else if (found == 0)
            gone[ngone++] = ids.ids[i]; /* a delete cut short between document and bucket */
        else if (have == limit)
            next = last; /* one more exists: the page ends at the last one shown */
        else {
            int err;
            cJSON *o = highlights__json(authors, &h, &err);
            if (err)
                rc = -1;
            else if (o != NULL) {
                cJSON_AddItemToArray(items, o);
                last = ids.ids[i];
                have++;
            }
        }
        bson_destroy(&h);
        if (next != NULL)
            break;
    }
    if (rc == 0 && ngone > 0 &&
        store_ids_change(p, "user_highlights", uid, "ids", "$pullAll", gone, ngone) != 0)
        log_warn(req->request_id, "user_highlights %s: leftover ids stay for now", uid);
    if (rc != 0) {
        cJSON_Delete(out);
        rpc_db_error(r);
    } else {
        lists_add_next(p, out, "user_highlights", next);
        rpc_json(r, 200, out);
    }
    free(gone);
    users_authors_free(authors);
    pub_ids_free(&ids);
}

void highlights_remove(pub_t *p, const mq_message_t *req, mq_reply_t *r)
{
    bson_t h = BSON_INITIALIZER;
    if (users_caller(p, req, r, NULL) != 1)
        goto out;
    /* hidden by a block like the owner's list: 404, not 403 */
    if (store_visible(p, req, r, "highlights", "owner_id", "highlight", &h) != 1)
        goto out;
    const char *owner = db_doc_str(&h, "owner_id"), *id = db_doc_str(&h, "_id");
    if (strcmp(owner, req->user_id) != 0) {
        rpc_problem(r, 403, "forbidden", "only its owner deletes a highlight", NULL);
        goto out;
    }
    int rc = id != NULL ? highlights__delete(p, id, owner) : 0;
    if (rc < 0)
        rpc_db_error(r);
    else if (rc == 0)
        rpc_not_found(r, "no such highlight");
    else
        rpc_no_content(r);
out:
    bson_destroy(&h);
}
