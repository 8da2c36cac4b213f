/* store.c -- document helpers every file of publication shares: JSON members of documents, and
 * bucket documents (an array of ids read by _id alone and changed by one update operator). */
#include <string.h>

#include "core/core.h"
#include "json/json.h"
#include "pub.h"

/* ================================================================ id sets */

void pub_ids_add(pub_ids_t *s, const char *id)
{
    s->ids = xrealloc(s->ids, (s->n + 1) * sizeof(*s->ids));
    s->ids[s->n++] = xstrdup(id);
}

int pub_ids_has(const pub_ids_t *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            return 1;
    return 0;
}

void pub_ids_free(pub_ids_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->ids[i]);
    free(s->ids);
    s->ids = NULL;
    s->n = 0;
}

/* ================================================================ bucket documents */

int store_ids_load(pub_t *p, const char *coll, const char *id, const char *key, pub_ids_t *out)
{
    memset(out, 0, sizeof(*out));
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id)), doc = BSON_INITIALIZER;
    int rc = db_find_one(p->db, coll, f, NULL, &doc);
    bson_iter_t it, arr;
    if (rc == 1 && bson_iter_init_find(&it, &doc, key) && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr))
            if (BSON_ITER_HOLDS_UTF8(&arr))
                pub_ids_add(out, bson_iter_utf8(&arr, NULL));
    bson_destroy(&doc);
    bson_destroy(f);
    return rc < 0 ? -1 : 0;
}

int store_ids_change(pub_t *p, const char *coll, const char *id, const char *key, const char *op,
                     const char *const *ids, size_t n)
{
    if (n == 0)
        return 0;
    int add = strcmp(op, "$addToSet") == 0, all = strcmp(op, "$pullAll") == 0;
    CORE_ASSERT(add || all || (strcmp(op, "$pull") == 0 && n == 1));
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id)), *u = bson_new(), inner, each, arr;
    bson_append_document_begin(u, op, -1, &inner);
    if (n == 1 && !all) {
        BSON_APPEND_UTF8(&inner, key, ids[0]);
    } else {
        bson_t *parent = &inner;
        if (add) { /* {$addToSet: {key: {$each: [...]}}} */
            bson_append_document_begin(&inner, key, -1, &each);
            parent = &each;
        }
        bson_append_array_begin(parent, add ? "$each" : key, -1, &arr);
        for (size_t i = 0; i < n; i++) {
            char k[16];
            const char *kp;
            bson_uint32_to_string((uint32_t)i, &kp, k, sizeof(k));
            bson_append_utf8(&arr, kp, -1, ids[i], -1);
        }
        bson_append_array_end(parent, &arr);
        if (add)
            bson_append_document_end(&inner, &each);
    }
    bson_append_document_end(u, &inner);
    /* only an addition makes the bucket: a removal from an absent one has nothing to do */
    int rc = db_update_one(p->db, coll, f, u, add) < 0 ? -1 : 0;
    bson_destroy(u);
    bson_destroy(f);
    return rc;
}

int store_ids_change_each(pub_t *p, const char *coll, const char *const *docs, size_t n, const char *key,
                          const char *op, const char *value)
{
    int add = strcmp(op, "$addToSet") == 0;
    CORE_ASSERT(add || strcmp(op, "$pull") == 0);
    bson_t **f = xcalloc(n + 1, sizeof(*f)), **u = xcalloc(n + 1, sizeof(*u));
    for (size_t i = 0; i < n; i++) {
        f[i] = BCON_NEW("_id", BCON_UTF8(docs[i]));
        u[i] = BCON_NEW(op, "{", key, BCON_UTF8(value), "}");
    }
    int rc = db_update_bulk(p->db, coll, f, u, n, add);
    for (size_t i = 0; i < n; i++) {
        bson_destroy(f[i]);
        bson_destroy(u[i]);
    }
    free(f);
    free(u);
    return rc;
}

/* ================================================================ the documents of a path */

int store_visible(pub_t *p, const mq_message_t *req, mq_reply_t *r, const char *coll, const char *owner_key,
                  const char *what, bson_t *out)
{
    char id[64];
    int rc = 0;
    if (rpc_param(req, "id", id, sizeof(id)) == 0 && pub_id_valid(id)) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
        rc = db_find_one(p->db, coll, f, NULL, out);
        bson_destroy(f);
    }
    const char *owner = rc == 1 ? db_doc_str(out, owner_key) : NULL;
    if (rc == 1 && owner == NULL)
        rc = 0;
    if (rc == 1) {
        int h = users_hidden(p, req->user_id, owner);
        rc = h < 0 ? -1 : h ? 0 : 1;
    }
    if (rc < 0) {
        rpc_db_error(r);
    } else if (rc == 0) {
        char *why = xasprintf("no such %s", what);
        rpc_not_found(r, why);
        free(why);
    }
    return rc;
}

/* ================================================================ JSON members */

cJSON *store_member_json(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    cJSON *v = NULL;
    if (bson_iter_init_find(&it, doc, key) && (BSON_ITER_HOLDS_ARRAY(&it) || BSON_ITER_HOLDS_DOCUMENT(&it))) {
        const uint8_t *data;
        uint32_t len;
        bson_t sub;
        int array = BSON_ITER_HOLDS_ARRAY(&it);
        if (array)
            bson_iter_array(&it, &len, &data);
        else
            bson_iter_document(&it, &len, &data);
        if (bson_init_static(&sub, data, len)) {
            size_t n;
            char *text = array ? bson_array_as_json(&sub, &n) : bson_as_relaxed_extended_json(&sub, &n);
            if (text != NULL)
                v = json_parse(text, n, 64 << 20, 64, NULL);
            bson_free(text);
        }
    }
    return v;
}

void store_append_json(bson_t *doc, const char *key, const cJSON *v)
{
    /* wrapped in an object: libbson parses documents, not bare arrays */
    cJSON *wrap = cJSON_CreateObject();
    cJSON_AddItemReferenceToObject(wrap, "v", (cJSON *)v);
    char *text = json_print(wrap);
    cJSON_Delete(wrap);
    bson_error_t e;
    bson_t *b = bson_new_from_json((const uint8_t *)text, -1, &e);
    CORE_ASSERT(b != NULL); /* our own JSON */
    bson_iter_t it;
    if (bson_iter_init_find(&it, b, "v"))
        bson_append_iter(doc, key, -1, &it);
    bson_destroy(b);
    free(text);
}
