/* db.c -- MongoDB through a libmongoc pool: connection, indexes, idempotent consumers. */
#include "db/db.h"

#include <string.h>

#include "core/core.h"
#include "log/log.h"

struct db {
    mongoc_uri_t *uri;
    mongoc_client_pool_t *pool;
    char *name;
};

static void db__log_handler(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void)ud;
    if (level <= MONGOC_LOG_LEVEL_WARNING)
        log_warn(NULL, "mongoc %s: %s", domain, message);
}

void db_log_init(void)
{
    mongoc_init();
    mongoc_log_set_handler(db__log_handler, NULL);
}

db_t *db_open(const char *uri_str, const char *default_db, const char *app_name, char *err, size_t errlen)
{
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_str, &error);
    if (uri == NULL) {
        snprintf(err, errlen, "bad MongoDB URI: %s", error.message);
        return NULL;
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 2000);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 2000);
    if (app_name != NULL && !mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(uri, app_name);
    db_t *db = xcalloc(1, sizeof(*db));
    db->uri = uri;
    db->pool = mongoc_client_pool_new(uri);
    CORE_ASSERT(db->pool != NULL);
    mongoc_client_pool_set_error_api(db->pool, MONGOC_ERROR_API_VERSION_2);
    const char *name = mongoc_uri_get_database(uri);
    db->name = xstrdup(name != NULL ? name : default_db);
    return db;
}

void db_close(db_t *db)
{
    if (db == NULL)
        return;
    mongoc_client_pool_destroy(db->pool);
    mongoc_uri_destroy(db->uri);
    free(db->name);
    free(db);
}

const char *db_name(const db_t *db)
{
    return db->name;
}

mongoc_client_t *db_acquire(db_t *db)
{
    return mongoc_client_pool_pop(db->pool);
}

void db_release(db_t *db, mongoc_client_t *client)
{
    mongoc_client_pool_push(db->pool, client);
}

mongoc_collection_t *db_collection(db_t *db, mongoc_client_t *client, const char *name)
{
    return mongoc_client_get_collection(client, db->name, name);
}

int db_ping(db_t *db, char *err, size_t errlen)
{
    bson_error_t error;
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    mongoc_client_t *client = db_acquire(db);
    bool ok = mongoc_client_command_simple(client, db->name, cmd, NULL, NULL, &error);
    db_release(db, client);
    bson_destroy(cmd);
    if (!ok) {
        snprintf(err, errlen, "%s", error.message);
        return -1;
    }
    return 0;
}

int db_ready(db_t *db, cJSON *checks)
{
    char err[256];
    int up = db != NULL && db_ping(db, err, sizeof(err)) == 0;
    cJSON_AddStringToObject(checks, "database", up ? "up" : "down");
    return up;
}

/* One createIndexes per index: FerretDB 1.24 panics (drops the connection) when one command
 * re-creates several existing indexes at once, and one at a time is as idempotent. */
static int db__ensure_index(db_t *db, const char *collection, const db_index_t *index, char *err,
                            size_t errlen)
{
    bson_error_t error;
    bson_t *keys = bson_new_from_json((const uint8_t *)index->keys_json, -1, &error);
    if (keys == NULL) {
        snprintf(err, errlen, "index %s: bad keys: %s", index->name, error.message);
        return -1;
    }
    bson_t cmd = BSON_INITIALIZER, arr, doc, reply;
    BSON_APPEND_UTF8(&cmd, "createIndexes", collection);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &doc);
    BSON_APPEND_DOCUMENT(&doc, "key", keys);
    BSON_APPEND_UTF8(&doc, "name", index->name);
    if (index->unique)
        BSON_APPEND_BOOL(&doc, "unique", true);
    bson_append_document_end(&arr, &doc);
    bson_append_array_end(&cmd, &arr);
    mongoc_client_t *client = db_acquire(db);
    bool ok = mongoc_client_write_command_with_opts(client, db->name, &cmd, NULL, &reply, &error);
    db_release(db, client);
    if (!ok)
        snprintf(err, errlen, "createIndexes %s on %s: %s", index->name, collection, error.message);
    bson_destroy(&reply);
    bson_destroy(&cmd);
    bson_destroy(keys);
    return ok ? 0 : -1;
}

int db_ensure_indexes(db_t *db, const char *collection, const db_index_t *indexes, size_t n, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (db__ensure_index(db, collection, &indexes[i], err, errlen) != 0)
            return -1;
    return 0;
}

int db_ensure_all_indexes(db_t *db, const db_index_set_t *sets, size_t nsets, int attempts, char *err,
                          size_t errlen)
{
    for (int attempt = 1;; attempt++) {
        size_t i = 0;
        while (i < nsets &&
               db_ensure_indexes(db, sets[i].collection, sets[i].indexes, sets[i].n, err, errlen) == 0)
            i++;
        if (i == nsets)
            return 0;
        if (attempt >= attempts)
            return -1;
        log_warn(NULL, "indexes: %s; retrying", err);
        core_sleep_ms(1000, NULL);
    }
}

/* ================================================================ idempotent consumers */

static char *db__mark_id(const char *consumer, const char *message_id)
{
    return xasprintf("%s:%s", consumer, message_id);
}

int db_message_seen(db_t *db, const char *consumer, const char *message_id)
{
    char *id = db__mark_id(consumer, message_id);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_exists(db, DB_PROCESSED_COLLECTION, filter);
    bson_destroy(filter);
    free(id);
    return rc;
}

int db_message_mark(db_t *db, const char *consumer, const char *message_id)
{
    char *id = db__mark_id(consumer, message_id);
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "at", BCON_DATE_TIME(core_wall_ms()));
    int rc = db_insert(db, DB_PROCESSED_COLLECTION, doc); /* 1: marked before, fine */
    bson_destroy(doc);
    free(id);
    return rc < 0 ? -1 : 0;
}

long db_messages_purge(db_t *db, long older_than_ms)
{
    bson_t *filter = BCON_NEW("at", "{", "$lt", BCON_DATE_TIME(core_wall_ms() - older_than_ms), "}");
    long n = db_delete_many(db, DB_PROCESSED_COLLECTION, filter);
    bson_destroy(filter);
    return n;
}
