/* db.h -- MongoDB through a libmongoc pool: connection, indexes, idempotent consumers. */
#ifndef DB_H
#define DB_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <mongoc/mongoc.h>

typedef struct db db_t;

/* Routes libmongoc's own log lines into our JSON log (warnings and above) instead of
 * stderr. Call once at start, before db_open. */
void db_log_init(void);

/* Opens a client pool for uri (mongodb://...; the database is the URI's, else default_db).
 * Sets serverSelectionTimeoutMS to 2000 unless the URI says otherwise, so a missing server
 * fails requests fast. Connects lazily. Returns NULL with a message in err on a bad URI. */
db_t *db_open(const char *uri, const char *default_db, const char *app_name, char *err, size_t errlen);
void db_close(db_t *db);

/* The database name in use; borrowed. */
const char *db_name(const db_t *db);

/* Borrows a client from the pool (blocks while all are in use); give it back with db_release.
 * Any thread. */
mongoc_client_t *db_acquire(db_t *db);
void db_release(db_t *db, mongoc_client_t *client);

/* A collection of our database on a borrowed client; caller destroys it with
 * mongoc_collection_destroy before releasing the client. */
mongoc_collection_t *db_collection(db_t *db, mongoc_client_t *client, const char *name);

/* Runs {ping: 1}. Returns 0 if the server answers, -1 with err filled otherwise. */
int db_ping(db_t *db, char *err, size_t errlen);

/* A daemon's readiness check of its database (admin /readyz): adds {"database": "up" | "down"}
 * to checks (NULL db: down) and returns 1 if up. */
int db_ready(db_t *db, cJSON *checks);
/* One index: keys as relaxed extended JSON ("{\"user_id\": 1, \"created_at\": -1}"). */
typedef struct {
    const char *name;
    const char *keys_json;
    int unique;
} db_index_t;

/* Creates the indexes if missing (createIndexes is idempotent for identical specs).
 * Returns 0, or -1 with err filled. */
int db_ensure_indexes(db_t *db, const char *collection, const db_index_t *indexes, size_t n, char *err,
                      size_t errlen);

/* The indexes of one collection, for db_ensure_all_indexes. */
typedef struct {
    const char *collection;
    const db_index_t *indexes;
    size_t n;
} db_index_set_t;

/* A daemon's start: creates the indexes of every collection, trying again once a second (with a
 * warning) while the database is not up yet, attempts times in all. Returns 0, or -1 with the
 * last error in err. */
int db_ensure_all_indexes(db_t *db, const db_index_set_t *sets, size_t nsets, int attempts, char *err,
                          size_t errlen);

/* ---------------------------------------------------------------- single operations
 *
 * Each borrows a pooled client for one operation (any thread). Documents passed in are
 * borrowed. -1 always means the database failed (the caller answers 503 or retries). */

/* Copies the first match into out (initialised by the call) when out is not NULL: 1 found,
 * 0 not found, -1. opts (sort, skip, projection) may be NULL; limit 1 is added. */
int db_find_one(db_t *db, const char *coll, const bson_t *filter, const bson_t *opts, bson_t *out);
/* 1 if a document matches, 0 if not, -1. */
int db_exists(db_t *db, const char *coll, const bson_t *filter);
/* 0 inserted, 1 a unique index refused it (duplicate), -1. */
int db_insert(db_t *db, const char *coll, const bson_t *doc);
/* The number deleted (0 or 1), or -1. */
int db_delete_one(db_t *db, const char *coll, const bson_t *filter);
/* The number deleted, or -1. */
long db_delete_many(db_t *db, const char *coll, const bson_t *filter);
/* The number matched (with upsert, 1 when it inserted), -2 when a unique index refused the
 * change, or -1. Atomic for the one document, as MongoDB promises; stock FerretDB 1.24 is not
 * (read, modify, write back without a lock), our build is (deploy/local/ferretdb/). */
int db_update_one(db_t *db, const char *coll, const bson_t *filter, const bson_t *update, int upsert);
/* n single-document updates (filters[i] with updates[i], borrowed) in one unordered bulk write,
 * one round trip: 0 when every one was applied, or -1 (some may have been: make them safe to
 * repeat). */
int db_update_bulk(db_t *db, const char *coll, bson_t *const *filters, bson_t *const *updates, size_t n, int upsert);
/* The number of matching documents, or -1. */
long db_count(db_t *db, const char *coll, const bson_t *filter);
/* Runs find and calls fn for each document, borrowed until fn returns (stop early by returning
 * non-zero). Returns the number of documents seen, or -1. */
long db_each(db_t *db, const char *coll, const bson_t *filter, const bson_t *opts,
             int (*fn)(const bson_t *doc, void *ud), void *ud);

/* db_each over the documents whose string _id is one of ids (n of them, at most 1000): one
 * query, answered from the _id index by MongoDB and by our FerretDB build. */
long db_find_ids(db_t *db, const char *coll, const char *const *ids, size_t n,
                 int (*fn)(const bson_t *doc, void *ud), void *ud);
/* Field readers: NULL / 0 when absent or of another type; strings are borrowed from doc. */
const char *db_doc_str(const bson_t *doc, const char *key);
int64_t db_doc_ms(const bson_t *doc, const char *key); /* a date (or an integer) as ms */
int64_t db_doc_int(const bson_t *doc, const char *key);

/* A fresh id: the 24 hex digits of a new ObjectId (time-ordered). */
void db_new_id(char out[25]);

/* ---------------------------------------------------------------- idempotent consumers
 *
 * Usage in an event handler:
 *     switch (db_message_seen(db, "search", msg->message_id)) {
 *     case 1: return MQ_ACK;            already applied
 *     case 0: apply the effect (itself safe to repeat), then db_message_mark(...); ack
 *     default: return MQ_WAIT-like retry  database down
 *     }
 * The mark is written after the effect, so a crash in between re-applies an effect that is
 * safe to repeat, and a redelivery after the mark changes nothing. */
#define DB_PROCESSED_COLLECTION "processed_messages"

/* 1 if (consumer, message_id) was marked, 0 if not, -1 on a database error. */
int db_message_seen(db_t *db, const char *consumer, const char *message_id);
/* Marks it processed (a second mark is not an error). Returns 0 or -1. */
int db_message_mark(db_t *db, const char *consumer, const char *message_id);
/* Removes marks older than older_than_ms (no TTL indexes on every target). Returns the number
 * removed or -1. */
long db_messages_purge(db_t *db, long older_than_ms);

#endif
