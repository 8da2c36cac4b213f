/* store.c -- one MongoDB operation per call on a pooled client, and readers of document fields. */
#include <string.h>

#include "auth.h"
#include "core/core.h"
#include "log/log.h"

#define ST__DUPLICATE_KEY 11000

/* A unique index refused the write. FerretDB reports a violating update with code 1 and
 * SQLite's words rather than 11000. */
static int st__duplicate(const bson_error_t *e)
{
    return e->code == ST__DUPLICATE_KEY || strstr(e->message, "E11000") != NULL ||
           strstr(e->message, "UNIQUE constraint failed") != NULL;
}

static void st__log(const char *op, const char *coll, const bson_error_t *e)
{
    log_warn(NULL, "mongo %s %s: %s (code %u)", op, coll, e->message, e->code);
}

typedef struct {
    mongoc_client_t *client;
    mongoc_collection_t *coll;
} st__handle_t;

static void st__open(auth_t *a, const char *coll, st__handle_t *h)
{
    h->client = db_acquire(a->db);
    h->coll = db_collection(a->db, h->client, coll);
}

static void st__close(auth_t *a, st__handle_t *h)
{
    mongoc_collection_destroy(h->coll);
    db_release(a->db, h->client);
}

int st_find_one(auth_t *a, const char *coll, const bson_t *filter, const bson_t *opts, bson_t *out)
{
    st__handle_t h;
    st__open(a, coll, &h);
    bson_t o = BSON_INITIALIZER;
    if (opts != NULL)
        bson_concat(&o, opts);
    BSON_APPEND_INT64(&o, "limit", 1);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h.coll, filter, &o, NULL);
    const bson_t *doc;
    int rc = 0;
    if (mongoc_cursor_next(cur, &doc)) {
        if (out != NULL)
            bson_copy_to(doc, out);
        rc = 1;
    }
    bson_error_t e;
    if (rc == 0 && mongoc_cursor_error(cur, &e)) {
        st__log("find", coll, &e);
        rc = -1;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&o);
    st__close(a, &h);
    return rc;
}

int st_exists(auth_t *a, const char *coll, const bson_t *filter)
{
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
    int rc = st_find_one(a, coll, filter, opts, NULL);
    bson_destroy(opts);
    return rc;
}

int st_insert(auth_t *a, const char *coll, const bson_t *doc)
{
    st__handle_t h;
    st__open(a, coll, &h);
    bson_error_t e;
    int rc = 0;
    if (!mongoc_collection_insert_one(h.coll, doc, NULL, NULL, &e)) {
        if (st__duplicate(&e)) {
            rc = 1;
        } else {
            st__log("insert", coll, &e);
            rc = -1;
        }
    }
    st__close(a, &h);
    return rc;
}

static int64_t st__reply_int(const bson_t *reply, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, reply, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return 0;
}

static long st__delete(auth_t *a, const char *coll, const bson_t *filter, int many)
{
    st__handle_t h;
    st__open(a, coll, &h);
    bson_error_t e;
    bson_t reply;
    long rc;
    int ok = many ? mongoc_collection_delete_many(h.coll, filter, NULL, &reply, &e)
                  : mongoc_collection_delete_one(h.coll, filter, NULL, &reply, &e);
    if (ok) {
        rc = (long)st__reply_int(&reply, "deletedCount");
    } else {
        st__log("delete", coll, &e);
        rc = -1;
    }
    bson_destroy(&reply);
    st__close(a, &h);
    return rc;
}

int st_delete_one(auth_t *a, const char *coll, const bson_t *filter)
{
    return (int)st__delete(a, coll, filter, 0);
}

long st_delete_many(auth_t *a, const char *coll, const bson_t *filter)
{
    return st__delete(a, coll, filter, 1);
}

int st_update_one(auth_t *a, const char *coll, const bson_t *filter, const bson_t *update, int upsert)
{
    st__handle_t h;
    st__open(a, coll, &h);
    bson_error_t e;
    bson_t reply;
    bson_t *opts = upsert ? BCON_NEW("upsert", BCON_BOOL(true)) : NULL;
    int rc;
    if (mongoc_collection_update_one(h.coll, filter, update, opts, &reply, &e)) {
        rc = (int)(st__reply_int(&reply, "matchedCount") + st__reply_int(&reply, "upsertedCount"));
    } else if (st__duplicate(&e)) {
        rc = -2;
    } else {
        st__log("update", coll, &e);
        rc = -1;
    }
    bson_destroy(&reply);
    if (opts != NULL)
        bson_destroy(opts);
    st__close(a, &h);
    return rc;
}

long st_count(auth_t *a, const char *coll, const bson_t *filter)
{
    st__handle_t h;
    st__open(a, coll, &h);
    bson_error_t e;
    int64_t n = mongoc_collection_count_documents(h.coll, filter, NULL, NULL, NULL, &e);
    if (n < 0)
        st__log("count", coll, &e);
    st__close(a, &h);
    return n < 0 ? -1 : (long)n;
}

long st_each(auth_t *a, const char *coll, const bson_t *filter, const bson_t *opts,
             int (*fn)(const bson_t *doc, void *ud), void *ud)
{
    st__handle_t h;
    st__open(a, coll, &h);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h.coll, filter, opts, NULL);
    const bson_t *doc;
    long n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        n++;
        if (fn(doc, ud) != 0)
            break;
    }
    bson_error_t e;
    if (mongoc_cursor_error(cur, &e)) {
        st__log("find", coll, &e);
        n = -1;
    }
    mongoc_cursor_destroy(cur);
    st__close(a, &h);
    return n;
}

const char *doc_str(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

int64_t doc_ms(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key))
        return 0;
    if (BSON_ITER_HOLDS_DATE_TIME(&it))
        return bson_iter_date_time(&it);
    if (BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return 0;
}

int64_t doc_int(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return 0;
}

void st_new_id(char out[25])
{
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, out);
}

void json_add_time(cJSON *obj, const char *name, int64_t ms)
{
    char buf[32];
    core_rfc3339(ms, buf);
    cJSON_AddStringToObject(obj, name, buf);
}
