/* test_atomic.c -- what the feed's bucket documents rely on: an update of one document is atomic,
 * as MongoDB promises, on our FerretDB build too (deploy/local/ferretdb/atomic-update.patch).
 * Without the patch, concurrent $addToSet and $inc on one document lose updates. */
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
    db = tu_db_open("db_atomic", suffix, dbname, sizeof(dbname));
    bson_t *doc = BCON_NEW("_id", BCON_UTF8("one"), "n", BCON_INT64(0));
    cr_assert_eq(db_insert(db, "buckets", doc), 0);
    bson_destroy(doc);
}

static void teardown(void)
{
    tu_db_drop(db, dbname);
}

/* EACH updates of the one document, each adding this thread's own member and counting it. */
static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    bson_t *f = BCON_NEW("_id", BCON_UTF8("one"));
    for (int i = 0; i < EACH; i++) {
        char member[32];
        snprintf(member, sizeof(member), "t%d_%d", t, i);
        bson_t *u = BCON_NEW("$addToSet", "{", "ids", BCON_UTF8(member), "}", "$inc", "{", "n", BCON_INT64(1), "}");
        cr_assert_eq(db_update_one(db, "buckets", f, u, 0), 1);
        bson_destroy(u);
    }
    bson_destroy(f);
    return NULL;
}

Test(db_atomic, concurrent_updates_of_one_document_all_count, .init = setup, .fini = teardown, .timeout = 120)
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
    cr_expect_eq(members, THREADS * EACH, "%ld of %d members: $addToSet updates were lost", members, THREADS * EACH);
    cr_expect_eq(db_doc_int(&doc, "n"), THREADS * EACH, "n = %ld: $inc updates were lost", (long)db_doc_int(&doc, "n"));
    bson_destroy(&doc);
    bson_destroy(f);
}
