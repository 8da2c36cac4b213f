/* ops.c -- one MongoDB operation per call on a pooled client, and readers of document fields. */
#include <string.h>

#include "core/core.h"
#include "db/db.h"
#include "log/log.h"

#define DB__DUPLICATE_KEY 11000

/* A unique index refused the write. FerretDB reports a violating update with code 1 and
 * SQLite's words rather than 11000. */
static int db__duplicate(const bson_error_t *e)
{
    return e->code == DB__DUPLICATE_KEY || strstr(e->message, "E11000") != NULL ||
           strstr(e->message, "UNIQUE constraint failed") != NULL;
}

static void db__log(const char *op, const char *coll, const bson_error_t *e)
{
    log_warn(NULL, "mongo %s %s: %s (code %u)", op, coll, e->message, e->code);
}

typedef struct {
    mongoc_client_t *client;
    mongoc_collection_t *coll;
} db__handle_t;

static void db__open(db_t *db, const char *coll, db__handle_t *h)
{
    h->client = db_acquire(db);
    h->coll = db_collection(db, h->client, coll);
}

static void db__close(db_t *db, db__handle_t *h)
{
    mongoc_collection_destroy(h->coll);
    db_release(db, h->client);
}

int db_find_one(db_t *db, const char *coll, const bson_t *filter, const bson_t *opts, bson_t *out)
{
    db__handle_t h;
    db__open(db, coll, &h);
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
        db__log("find", coll, &e);
        rc = -1;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&o);
    db__close(db, &h);
    return rc;
}

int db_exists(db_t *db, const char *coll, const bson_t *filter)
{
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
    int rc = db_find_one(db, coll, filter, opts, NULL);
    bson_destroy(opts);
    return rc;
}

int db_insert(db_t *db, const char *coll, const bson_t *doc)
{
    db__handle_t h;
    db__open(db, coll, &h);
    bson_error_t e;
    int rc = 0;
    if (!mongoc_collection_insert_one(h.coll, doc, NULL, NULL, &e)) {
        if (db__duplicate(&e)) {
            rc = 1;
        } else {
            db__log("insert", coll, &e);
            rc = -1;
        }
    }
    db__close(db, &h);
    return rc;
}

static int64_t db__reply_int(const bson_t *reply, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, reply, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return 0;
}

static long db__delete(db_t *db, const char *coll, const bson_t *filter, int many)
{
    db__handle_t h;
    db__open(db, coll, &h);
    bson_error_t e;
    bson_t reply;
    long rc;
    int ok = many ? mongoc_collection_delete_many(h.coll, filter, NULL, &reply, &e)
                  : mongoc_collection_delete_one(h.coll, filter, NULL, &reply, &e);
    if (ok) {
        rc = (long)db__reply_int(&reply, "deletedCount");
    } else {
        db__log("delete", coll, &e);
        rc = -1;
    }
    bson_destroy(&reply);
    db__close(db, &h);
    return rc;
}

int db_delete_one(db_t *db, const char *coll, const bson_t *filter)
{
    return (int)db__delete(db, coll, filter, 0);
}

long db_delete_many(db_t *db, const char *coll, const bson_t *filter)
{
    return db__delete(db, coll, filter, 1);
}

int db_update_one(db_t *db, const char *coll, const bson_t *filter, const bson_t *update, int upsert)
{
    db__handle_t h;
    db__open(db, coll, &h);
    bson_error_t e;
    bson_t reply;
    bson_t *opts = upsert ? BCON_NEW("upsert", BCON_BOOL(true)) : NULL;
    int rc;
    if (mongoc_collection_update_one(h.coll, filter, update, opts, &reply, &e)) {
        rc = (int)(db__reply_int(&reply, "matchedCount") + db__reply_int(&reply, "upsertedCount"));
    } else if (db__duplicate(&e)) {
        rc = -2;
    } else {
        db__log("update", coll, &e);
        rc = -1;
    }
    bson_destroy(&reply);
    if (opts != NULL)
        bson_destroy(opts);
    db__close(db, &h);
    return rc;
}

int db_update_bulk(db_t *db, const char *coll, bson_t *const *filters, bson_t *const *updates, size_t n, int upsert)
{
    if (n == 0)
        return 0;
    db__handle_t h;
    db__open(db, coll, &h);
    bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
    mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(h.coll, opts);
    bson_t *one = upsert ? BCON_NEW("upsert", BCON_BOOL(true)) : NULL;
    bson_error_t e;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (!mongoc_bulk_operation_update_one_with_opts(bulk, filters[i], updates[i], one, &e)) {
            db__log("bulk update", coll, &e);
            rc = -1;
        }
    if (rc == 0) {
        bson_t reply; /* initialised by execute, failing or not */
        if (!mongoc_bulk_operation_execute(bulk, &reply, &e)) {
            db__log("bulk update", coll, &e);
            rc = -1;
        }
        bson_destroy(&reply);
    }
    mongoc_bulk_operation_destroy(bulk);
    if (one != NULL)
        bson_destroy(one);
    bson_destroy(opts);
    db__close(db, &h);
    return rc;
}

long db_count(db_t *db, const char *coll, const bson_t *filter)
{
    db__handle_t h;
    db__open(db, coll, &h);
    bson_error_t e;
    int64_t n = mongoc_collection_count_documents(h.coll, filter, NULL, NULL, NULL, &e);
    if (n < 0)
        db__log("count", coll, &e);
    db__close(db, &h);
    return n < 0 ? -1 : (long)n;
}

long db_each(db_t *db, const char *coll, const bson_t *filter, const bson_t *opts,
             int (*fn)(const bson_t *doc, void *ud), void *ud)
{
    db__handle_t h;
    db__open(db, coll, &h);
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
        db__log("find", coll, &e);
        n = -1;
    }
    mongoc_cursor_destroy(cur);
    db__close(db, &h);
    return n;
}

const char *db_doc_str(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

int64_t db_doc_ms(const bson_t *doc, const char *key)
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

int64_t db_doc_int(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return 0;
}

void db_new_id(char out[25])
{
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, out);
}
