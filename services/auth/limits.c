/* limits.c -- attempts (failed logins, registrations) counted in a sliding window per key.
 *
 * One document per attempt rather than a counter: inserts are atomic on every server we run
 * on, read-modify-write counters are not on FerretDB, and concurrent guesses must all count. */
#include "auth.h"
#include "core/core.h"

long limit_check(auth_t *a, const char *key, long max, long window_ms)
{
    /* Limited while the max-th most recent attempt is inside the window: one lookup, allowed
     * again when that attempt ages out of it. */
    int64_t now = core_wall_ms();
    bson_t *f = BCON_NEW("key", BCON_UTF8(key), "at", "{", "$gt", BCON_DATE_TIME(now - window_ms), "}");
    bson_t *opts = BCON_NEW("sort", "{", "at", BCON_INT32(-1), "}", "skip", BCON_INT64(max - 1));
    bson_t doc = BSON_INITIALIZER;
    int rc = db_find_one(a->db, "attempts", f, opts, &doc);
    long wait = rc < 0 ? -1 : 0;
    if (rc == 1) {
        wait = (long)((db_doc_ms(&doc, "at") + window_ms - now + 999) / 1000);
        if (wait < 1)
            wait = 1;
    }
    bson_destroy(f);
    bson_destroy(opts);
    bson_destroy(&doc);
    return wait;
}

int limit_record(auth_t *a, const char *key)
{
    char id[25];
    db_new_id(id);
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "key", BCON_UTF8(key), "at", BCON_DATE_TIME(core_wall_ms()));
    int rc = db_insert(a->db, "attempts", doc);
    bson_destroy(doc);
    return rc == 0 ? 0 : -1;
}

void limit_purge(auth_t *a, long older_than_ms)
{
    bson_t *f = BCON_NEW("at", "{", "$lt", BCON_DATE_TIME(core_wall_ms() - older_than_ms), "}");
    db_delete_many(a->db, "attempts", f);
    bson_destroy(f);
}
