/* test_server.c -- what our code relies on from the database server, checked on our FerretDB build
 * (deploy/local/ferretdb/): an update of one document is atomic, as MongoDB promises (without
 * atomic-update.patch, concurrent $addToSet and $inc on one document lose updates), and a lookup
 * by {_id: {$in: [...]}} finds exactly its documents (id-in-pushdown.patch hands it to SQLite), and
 * one update command of many statements finishes (stock FerretDB waits forever past 100). */
#include <criterion/criterion.h>
#include <pthread.h>

#include "../../testutil.h"

#define THREADS 8
#define EACH 150

static db_t *db;
static char dbname[64];

static void setup(void)
{
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "%d_%ld", (int)getpid(), (long)time(NULL));
    db = tu_db_open("db_server", suffix, dbname, sizeof(dbname));
    bson_t *doc = BCON_NEW("_id", BCON_UTF8("one"), "n", BCON_INT64(0));
    cr_assert_eq(db_insert(db, "buckets", doc), 0);
    bson_destroy(doc);
}

static void teardown(void)
{
    tu_db_drop(db, dbname);
}

static int sum_i(const bson_t *doc, void *ud)
{
    *(long *)ud += (long)db_doc_int(doc, "i");
    return 0;
}

/* EACH updates of the one document, each adding this thread's own member and counting it. */
static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    bson_t *f = BCON_NEW("_id", BCON_UTF8("one"));
    for (int i = 0; i < EACH; i++) {
        char member[32];
        snprintf(member, sizeof(member), "t%d_%d", t, i);
        bson_t *u =
            BCON_NEW("$addToSet", "{", "ids", BCON_UTF8(member), "}", "$inc", "{", "n", BCON_INT64(1), "}");
        cr_assert_eq(db_update_one(db, "buckets", f, u, 0), 1);
        bson_destroy(u);
    }
    bson_destroy(f);
    return NULL;
}

Test(db_server, concurrent_updates_of_one_document_all_count, .init = setup, .fini = teardown, .timeout = 120)
{
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    bson_t *f = BCON_NEW("_id", BCON_UTF8("one")), doc = BSON_INITIALIZER;
    cr_assert_eq(db_find_one(db, "buckets", f, NULL, &doc), 1);
    bson_iter_t it, arr;
    cr_assert(bson_iter_init_find(&it, &doc, "ids") && BSON_ITER_HOLDS_ARRAY(&it));
    cr_assert(bson_iter_recurse(&it, &arr));
    long members = 0;
    while (bson_iter_next(&arr))
        members++;
    cr_expect_eq(members, THREADS * EACH, "%ld of %d members: $addToSet updates were lost", members,
                 THREADS * EACH);
    cr_expect_eq(db_doc_int(&doc, "n"), THREADS * EACH, "n = %ld: $inc updates were lost",
                 (long)db_doc_int(&doc, "n"));
    bson_destroy(&doc);
    bson_destroy(f);
}

Test(db_server, lookup_by_id_in_finds_exactly_those, .init = setup, .fini = teardown)
{
    for (int i = 0; i < 50; i++) {
        char id[32];
        snprintf(id, sizeof(id), "k%02d", i);
        bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "i", BCON_INT64(i));
        cr_assert_eq(db_insert(db, "many", doc), 0);
        bson_destroy(doc);
    }
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "6b0200000000000000000001");
    bson_t *odoc = BCON_NEW("_id", BCON_OID(&oid), "i", BCON_INT64(100));
    cr_assert_eq(db_insert(db, "many", odoc), 0);
    bson_destroy(odoc);
    /* strings, an ObjectId, an absent id and a string that looks like the ObjectId */
    bson_t *f = BCON_NEW("_id", "{", "$in", "[", BCON_UTF8("k07"), BCON_UTF8("k42"), BCON_UTF8("nope"),
                         BCON_OID(&oid), BCON_UTF8("6b0200000000000000000002"), BCON_UTF8("k07"), "]", "}");
    long sum = 0;
    long n = db_each(db, "many", f, NULL, sum_i, &sum);
    cr_expect_eq(n, 3);
    cr_expect_eq(sum, 7 + 42 + 100);
    bson_destroy(f);
}

Test(db_server, bulk_update_of_a_thousand_statements_finishes, .init = setup, .fini = teardown, .timeout = 120)
{
    enum { N = 1000 };
    bson_t *f[N], *u[N];
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "b%04d", i);
        f[i] = BCON_NEW("_id", BCON_UTF8(id));
        u[i] = BCON_NEW("$addToSet", "{", "ids", BCON_UTF8("x"), "}");
    }
    cr_assert_eq(db_update_bulk(db, "bulk", f, u, N, 1), 0);
    cr_assert_eq(db_update_bulk(db, "bulk", f, u, N, 1), 0); /* again: every document is there now */
    for (int i = 0; i < N; i++) {
        bson_destroy(f[i]);
        bson_destroy(u[i]);
    }
    bson_t *all = bson_new();
    cr_expect_eq(db_count(db, "bulk", all), N);
    bson_destroy(all);
}
