/* test_db.c -- MongoDB helpers against a real FerretDB (TEST_MONGO_URI): open, ping, indexes, marks. */
#include "db/db.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "log/log.h"

/* Nothing listens on port 1; a short selection timeout keeps the failing tests fast. */
#define DEAD_URI "mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=300"

static char err[512];
static char suffix[16]; /* random, per test: names of what a test creates */
static char *db_uri;    /* TEST_MONGO_URI with this test's own database */
static char dbname[64];
static db_t *db;

/* ================================================================ helpers */

static const char *test_mongo_uri(void)
{
    const char *uri = getenv("TEST_MONGO_URI");
    cr_assert(uri != NULL && uri[0] != '\0',
              "TEST_MONGO_URI is not set: start FerretDB (deploy/local/stack.sh infra-up) and export "
              "TEST_MONGO_URI=mongodb://127.0.0.1:<port>/unit_tests");
    return uri;
}

/* A new random id (hex). */
static void test_random_id(char *out, size_t len)
{
    char uuid[CORE_UUID_BUFSZ];
    core_uuid(uuid);
    size_t j = 0;
    for (size_t i = 0; uuid[i] != '\0' && j + 1 < len; i++)
        if (uuid[i] != '-')
            out[j++] = uuid[i];
    out[j] = '\0';
}

/* TEST_MONGO_URI pointed at a database of this test's own, so tests may run in parallel and
 * db_messages_purge counts only what this test wrote. Caller frees. */
static char *test_uri_with_db(const char *name)
{
    const char *uri = test_mongo_uri();
    const char *hosts = strstr(uri, "://");
    cr_assert_not_null(hosts, "TEST_MONGO_URI is not a mongodb:// URI: %s", uri);
    const char *path = strchr(hosts + 3, '/');
    const char *opts = strchr(hosts + 3, '?');
    if (path == NULL || (opts != NULL && opts < path))
        path = opts != NULL ? opts : uri + strlen(uri);
    const char *rest = opts != NULL ? opts : "";
    size_t n = (size_t)(path - uri) + strlen(name) + strlen(rest) + 2;
    char *out = malloc(n);
    snprintf(out, n, "%.*s/%s%s", (int)(path - uri), uri, name, rest);
    return out;
}

static void test_drop_database(void)
{
    mongoc_client_t *client = db_acquire(db);
    mongoc_database_t *d = mongoc_client_get_database(client, db_name(db));
    bson_error_t error;
    if (!mongoc_database_drop(d, &error))
        cr_log_warn("dropping %s: %s", db_name(db), error.message);
    mongoc_database_destroy(d);
    db_release(db, client);
}

static void setup(void)
{
    log_init("test_db", LOG_ERROR); /* FerretDB answers "no such command: endSessions" at every close */
    db_log_init();
    test_random_id(suffix, sizeof(suffix));
    snprintf(dbname, sizeof(dbname), "unit_db_%s", suffix);
    db_uri = test_uri_with_db(dbname);
    db = db_open(db_uri, "unused", "test_db", err, sizeof(err));
    cr_assert_not_null(db, "db_open(%s): %s", db_uri, err);
    cr_assert_eq(db_ping(db, err, sizeof(err)), 0, "FerretDB at %s does not answer: %s", db_uri, err);
}

static void teardown(void)
{
    if (db != NULL) {
        test_drop_database();
        db_close(db);
    }
    db = NULL;
    free(db_uri);
    db_uri = NULL;
}

/* Inserts doc into collection; returns the server error code (0 on success). */
static uint32_t test_insert(const char *collection, const char *json)
{
    bson_error_t error;
    bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &error);
    cr_assert_not_null(doc, "bad test JSON %s", json);
    mongoc_client_t *client = db_acquire(db);
    mongoc_collection_t *coll = db_collection(db, client, collection);
    bool ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &error);
    mongoc_collection_destroy(coll);
    db_release(db, client);
    bson_destroy(doc);
    return ok ? 0 : (error.code != 0 ? error.code : 1);
}

static int64_t test_count(const char *collection, const char *filter_json)
{
    bson_error_t error;
    bson_t *filter = bson_new_from_json((const uint8_t *)filter_json, -1, &error);
    cr_assert_not_null(filter);
    mongoc_client_t *client = db_acquire(db);
    mongoc_collection_t *coll = db_collection(db, client, collection);
    int64_t n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &error);
    mongoc_collection_destroy(coll);
    db_release(db, client);
    bson_destroy(filter);
    cr_assert_geq(n, 0, "count: %s", error.message);
    return n;
}

/* The unique flag of each index of collection, by name: 1 unique, 0 not, -1 absent. */
static int test_index_unique(const char *collection, const char *name)
{
    bson_error_t error;
    mongoc_client_t *client = db_acquire(db);
    mongoc_collection_t *coll = db_collection(db, client, collection);
    mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(coll, NULL);
    const bson_t *doc;
    int found = -1;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it) &&
            strcmp(bson_iter_utf8(&it, NULL), name) == 0)
            found = bson_iter_init_find(&it, doc, "unique") && bson_iter_as_bool(&it) ? 1 : 0;
    }
    cr_assert_not(mongoc_cursor_error(cur, &error), "listIndexes: %s", error.message);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    db_release(db, client);
    return found;
}

TestSuite(db, .init = setup, .fini = teardown, .timeout = 30);

/* ================================================================ open and ping */

Test(db, open_takes_the_database_from_the_uri_or_the_default)
{
    cr_assert_str_eq(db_name(db), dbname);
    db_t *d = db_open("mongodb://127.0.0.1:1/?appname=x", "fallback_db", NULL, err, sizeof(err));
    cr_assert_not_null(d, "%s", err);
    cr_assert_str_eq(db_name(d), "fallback_db");
    db_close(d);
    db_close(NULL);
}

Test(db, open_refuses_a_bad_uri_with_a_message)
{
    const char *bad[] = {"",
                         "localhost:27017",
                         "http://127.0.0.1/",
                         "mongodb://",
                         "mongodb://127.0.0.1:99999/x",
                         "mongodb://127.0.0.1/x?serverSelectionTimeoutMS=abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        db_t *d = db_open(bad[i], "x", "test_db", err, sizeof(err));
        cr_assert_null(d, "\"%s\" was accepted", bad[i]);
        cr_assert_neq(err[0], '\0', "no message for \"%s\"", bad[i]);
    }
}

Test(db, ping_answers_on_a_live_server)
{
    err[0] = '\0';
    cr_assert_eq(db_ping(db, err, sizeof(err)), 0, "%s", err);
}

Test(db, ping_on_a_dead_port_fails_within_about_a_second)
{
    db_t *dead = db_open(DEAD_URI, "x", "test_db", err, sizeof(err));
    cr_assert_not_null(dead, "%s", err);
    err[0] = '\0';
    uint64_t t0 = core_now_ms();
    cr_assert_eq(db_ping(dead, err, sizeof(err)), -1);
    uint64_t took = core_now_ms() - t0;
    cr_assert_lt(took, 1500, "ping took %llu ms", (unsigned long long)took);
    cr_assert_neq(err[0], '\0');
    db_close(dead);
}

/* One thread: pings and marks its own messages, counting what went wrong. */
static void *test_worker(void *arg)
{
    long n = (long)(intptr_t)arg, failures = 0;
    char id[64], e[256];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "%s-%ld-%d", suffix, n, i);
        failures += db_ping(db, e, sizeof(e)) != 0;
        failures += db_message_seen(db, "threads", id) != 0;
        failures += db_message_mark(db, "threads", id) != 0;
        failures += db_message_seen(db, "threads", id) != 1;
    }
    return (void *)(intptr_t)failures;
}

Test(db, any_thread_may_use_the_pool)
{
    enum { THREADS = 6 };
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, test_worker, (void *)(intptr_t)i), 0);
    long failures = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        failures += (long)(intptr_t)r;
    }
    cr_assert_eq(failures, 0);
    cr_assert_eq(test_count(DB_PROCESSED_COLLECTION, "{}"), THREADS * 10);
}

/* ================================================================ indexes */

static const db_index_t test_indexes[] = {
    {.name = "email_unique", .keys_json = "{\"email\": 1}", .unique = 1},
    {.name = "user_created", .keys_json = "{\"user_id\": 1, \"created_at\": -1}", .unique = 0},
};

Test(db, ensure_indexes_creates_them_and_is_idempotent)
{
    char coll[64];
    snprintf(coll, sizeof(coll), "users_%s", suffix);
    cr_assert_eq(db_ensure_indexes(db, coll, test_indexes, 2, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(test_index_unique(coll, "email_unique"), 1);
    cr_assert_eq(test_index_unique(coll, "user_created"), 0);
    cr_assert_eq(test_index_unique(coll, "no_such_index"), -1);
    /* A daemon's second start: the same list again must succeed (db.h: idempotent). */
    cr_assert_eq(db_ensure_indexes(db, coll, test_indexes, 2, err, sizeof(err)), 0, "second call: %s", err);
    cr_assert_eq(db_ensure_indexes(db, coll, test_indexes, 1, err, sizeof(err)), 0, "subset: %s", err);
    cr_assert_eq(test_index_unique(coll, "email_unique"), 1);
}

Test(db, a_unique_index_rejects_a_duplicate)
{
    char coll[64];
    snprintf(coll, sizeof(coll), "users_%s", suffix);
    cr_assert_eq(db_ensure_indexes(db, coll, test_indexes, 2, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(test_insert(coll, "{\"email\": \"ann@example.com\", \"user_id\": 1}"), 0);
    cr_assert_eq(test_insert(coll, "{\"email\": \"bob@example.com\", \"user_id\": 1}"), 0);
    cr_assert_eq(test_insert(coll, "{\"email\": \"ann@example.com\", \"user_id\": 2}"), 11000,
                 "a duplicate email must fail with duplicate key (11000)");
    /* The non-unique index takes duplicates. */
    cr_assert_eq(test_insert(coll, "{\"email\": \"cy@example.com\", \"user_id\": 1}"), 0);
    cr_assert_eq(test_count(coll, "{\"email\": \"ann@example.com\"}"), 1);
}

/* What every daemon does at each start: ensure the same indexes again, one by one. */
Test(db, ensure_indexes_one_at_a_time_is_idempotent_and_keeps_uniqueness)
{
    char coll[64];
    snprintf(coll, sizeof(coll), "users_%s", suffix);
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < 2; i++)
            cr_assert_eq(db_ensure_indexes(db, coll, &test_indexes[i], 1, err, sizeof(err)), 0,
                         "round %d: %s", round, err);
    cr_assert_eq(test_insert(coll, "{\"email\": \"ann@example.com\"}"), 0);
    cr_assert_eq(test_insert(coll, "{\"email\": \"ann@example.com\"}"), 11000);
}

Test(db, ensure_indexes_reports_bad_keys)
{
    char coll[64];
    snprintf(coll, sizeof(coll), "bad_%s", suffix);
    db_index_t bad[] = {{.name = "broken", .keys_json = "{user_id: ", .unique = 0}};
    err[0] = '\0';
    cr_assert_eq(db_ensure_indexes(db, coll, bad, 1, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "broken"), "err should name the index: %s", err);
}

Test(db, ensure_indexes_on_a_dead_server_fails_with_a_message)
{
    db_t *dead = db_open(DEAD_URI, "x", "test_db", err, sizeof(err));
    cr_assert_not_null(dead);
    err[0] = '\0';
    cr_assert_eq(db_ensure_indexes(dead, "c", test_indexes, 2, err, sizeof(err)), -1);
    cr_assert_neq(err[0], '\0');
    db_close(dead);
}

/* ================================================================ processed messages */

Test(db, message_is_seen_only_after_it_is_marked)
{
    char id[40];
    test_random_id(id, sizeof(id));
    cr_assert_eq(db_message_seen(db, "search", id), 0);
    cr_assert_eq(db_message_mark(db, "search", id), 0);
    cr_assert_eq(db_message_seen(db, "search", id), 1);
    /* A second mark (a redelivery raced the first) is not an error and changes nothing. */
    cr_assert_eq(db_message_mark(db, "search", id), 0);
    cr_assert_eq(db_message_seen(db, "search", id), 1);
    cr_assert_eq(test_count(DB_PROCESSED_COLLECTION, "{}"), 1);
}

Test(db, marks_are_per_consumer_and_per_message)
{
    char a[40], b[40];
    test_random_id(a, sizeof(a));
    test_random_id(b, sizeof(b));
    cr_assert_eq(db_message_mark(db, "search", a), 0);
    cr_assert_eq(db_message_seen(db, "notification", a), 0, "another consumer has not processed it");
    cr_assert_eq(db_message_seen(db, "search", b), 0);
    /* Ids that would collide if the two parts were simply concatenated. */
    cr_assert_eq(db_message_mark(db, "ab", "c"), 0);
    cr_assert_eq(db_message_seen(db, "a", "bc"), 0);
}

Test(db, seen_and_mark_on_a_dead_server_return_minus_1)
{
    db_t *dead = db_open(DEAD_URI, "x", "test_db", err, sizeof(err));
    cr_assert_not_null(dead);
    cr_assert_eq(db_message_seen(dead, "search", "m1"), -1);
    cr_assert_eq(db_message_mark(dead, "search", "m1"), -1);
    cr_assert_eq(db_messages_purge(dead, 1000), -1);
    db_close(dead);
}

/* Inserts a mark as db_message_mark would have written it at wall time at_ms. */
static void test_mark_at(const char *id, int64_t at_ms)
{
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "at", BCON_DATE_TIME(at_ms));
    bson_error_t error;
    mongoc_client_t *client = db_acquire(db);
    mongoc_collection_t *coll = db_collection(db, client, DB_PROCESSED_COLLECTION);
    bool ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &error);
    mongoc_collection_destroy(coll);
    db_release(db, client);
    bson_destroy(doc);
    cr_assert(ok, "insert: %s", error.message);
}

Test(db, purge_removes_only_marks_older_than_the_limit)
{
    const int64_t day = 86400000;
    int64_t now = core_wall_ms();
    test_mark_at("c:old1", now - 10 * day);
    test_mark_at("c:old2", now - 3 * day);
    test_mark_at("c:old3", now - 2 * day - 60000);
    test_mark_at("c:recent", now - day);
    cr_assert_eq(db_message_mark(db, "c", "fresh"), 0);

    cr_assert_eq(db_messages_purge(db, 2 * day), 3);
    cr_assert_eq(db_message_seen(db, "c", "old1"), 0);
    cr_assert_eq(db_message_seen(db, "c", "old2"), 0);
    cr_assert_eq(db_message_seen(db, "c", "old3"), 0);
    cr_assert_eq(db_message_seen(db, "c", "recent"), 1);
    cr_assert_eq(db_message_seen(db, "c", "fresh"), 1);
    cr_assert_eq(db_messages_purge(db, 2 * day), 0, "nothing left to purge");
    /* A mark just written is purged once older than the limit. */
    cr_assert_eq(db_messages_purge(db, 12 * 3600 * 1000L), 1);
    cr_assert_eq(db_message_seen(db, "c", "recent"), 0);
    cr_assert_eq(db_message_seen(db, "c", "fresh"), 1);
}

Test(db, purge_of_an_empty_collection_is_zero)
{
    cr_assert_eq(db_messages_purge(db, 1000), 0);
}

/* ================================================================ single operations */

static int test_collect_first_two(const bson_t *doc, void *ud)
{
    long *seen = ud;
    *seen += db_doc_int(doc, "n");
    return db_doc_int(doc, "n") >= 2; /* stop after n == 2 */
}

Test(db, single_operations_report_duplicates_counts_and_misses)
{
    char coll[64];
    snprintf(coll, sizeof(coll), "ops_%s", suffix);
    cr_assert_eq(db_ensure_indexes(db, coll, test_indexes, 1, err, sizeof(err)), 0, "%s", err);
    bson_t *a = BCON_NEW("_id", "a", "email", "a@x.io", "n", BCON_INT32(1), "at", BCON_DATE_TIME(1234));
    bson_t *b = BCON_NEW("_id", "b", "email", "b@x.io", "n", BCON_INT32(2));
    bson_t *c = BCON_NEW("_id", "c", "email", "c@x.io", "n", BCON_INT32(3));
    cr_assert_eq(db_insert(db, coll, a), 0);
    cr_assert_eq(db_insert(db, coll, b), 0);
    cr_assert_eq(db_insert(db, coll, c), 0);
    cr_assert_eq(db_insert(db, coll, a), 1, "the same _id again is a duplicate, not an error");

    /* An update that breaks a unique index is -2 (FerretDB says so with code 1, not 11000). */
    bson_t *fb = BCON_NEW("_id", "b"), *taken = BCON_NEW("$set", "{", "email", "a@x.io", "}");
    cr_assert_eq(db_update_one(db, coll, fb, taken, 0), -2);
    bson_t *fz = BCON_NEW("_id", "z"), *set = BCON_NEW("$set", "{", "n", BCON_INT32(9), "}");
    cr_assert_eq(db_update_one(db, coll, fz, set, 0), 0);
    cr_assert_eq(db_update_one(db, coll, fz, set, 1), 1, "an upsert counts as one");

    bson_t out = BSON_INITIALIZER;
    bson_t *fa = BCON_NEW("_id", "a");
    cr_assert_eq(db_find_one(db, coll, fa, NULL, &out), 1);
    cr_assert_str_eq(db_doc_str(&out, "email"), "a@x.io");
    cr_assert_eq(db_doc_ms(&out, "at"), 1234);
    cr_assert_null(db_doc_str(&out, "n"), "a number is not a string");
    cr_assert_eq(db_exists(db, coll, fa), 1);
    cr_assert_eq(db_exists(db, coll, fz), 1);
    bson_t *all = bson_new();
    cr_assert_eq(db_count(db, coll, all), 4);

    long seen = 0;
    bson_t *sorted = BCON_NEW("sort", "{", "n", BCON_INT32(1), "}");
    cr_assert_eq(db_each(db, coll, all, sorted, test_collect_first_two, &seen), 2, "stops when fn says so");
    cr_assert_eq(seen, 3);

    cr_assert_eq(db_delete_one(db, coll, fa), 1);
    cr_assert_eq(db_delete_one(db, coll, fa), 0, "only the first delete removes it");
    cr_assert_eq(db_delete_many(db, coll, all), 3);
    cr_assert_eq(db_find_one(db, coll, fa, NULL, NULL), 0);

    char id1[25], id2[25];
    db_new_id(id1);
    db_new_id(id2);
    cr_assert_eq(strlen(id1), 24);
    cr_assert_str_neq(id1, id2);
    bson_t *docs[] = {a, b, c, fb, taken, fz, set, fa, all, sorted};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
        bson_destroy(docs[i]);
    bson_destroy(&out);
}

Test(db, single_operations_on_a_dead_server_return_minus_1)
{
    db_t *dead = db_open(DEAD_URI, "x", "test", err, sizeof(err));
    cr_assert_not_null(dead);
    bson_t *doc = BCON_NEW("_id", "a");
    cr_assert_eq(db_insert(dead, "c", doc), -1);
    cr_assert_eq(db_find_one(dead, "c", doc, NULL, NULL), -1);
    cr_assert_eq(db_update_one(dead, "c", doc, doc, 0), -1);
    cr_assert_eq(db_delete_one(dead, "c", doc), -1);
    cr_assert_eq(db_count(dead, "c", doc), -1);
    bson_destroy(doc);
    db_close(dead);
}
