/* limits.c -- attempts (failed logins, registrations) counted in a sliding window per key.
 *
 * One document per attempt rather than a counter: inserts are atomic on every server we run
 * on, read-modify-write counters are not on FerretDB, and concurrent guesses must all count. */
#include "auth.h"
#include "core/core.h"

long limit_check(auth_t *a, const char *key, long max, long window_ms)
{
    int64_t now = core_wall_ms();
    bson_t *f = BCON_NEW("key", BCON_UTF8(key), "at", "{", "$gt", BCON_DATE_TIME(now - window_ms), "}");
    long n = st_count(a, "attempts", f);
    long wait = n < 0 ? -1 : 0;
    if (n >= max) {
        /* Allowed again when the oldest attempts of the window have aged out of it. */
        bson_t *opts = BCON_NEW("sort", "{", "at", BCON_INT32(-1), "}", "skip", BCON_INT64(max - 1));
        bson_t doc = BSON_INITIALIZER;
        int rc = st_find_one(a, "attempts", f, opts, &doc);
        if (rc < 0)
            wait = -1;
        else
            wait = rc == 1 ? (long)((doc_ms(&doc, "at") + window_ms - now + 999) / 1000) : 1;
        if (wait == 0)
            wait = 1;
        bson_destroy(opts);
        bson_destroy(&doc);
    }
    bson_destroy(f);
    return wait;
}

int limit_record(auth_t *a, const char *key)
{
    char id[25];
    st_new_id(id);
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "key", BCON_UTF8(key), "at", BCON_DATE_TIME(core_wall_ms()));
    int rc = st_insert(a, "attempts", doc);
    bson_destroy(doc);
    return rc == 0 ? 0 : -1;
}

void limit_purge(auth_t *a, long older_than_ms)
{
    bson_t *f = BCON_NEW("at", "{", "$lt", BCON_DATE_TIME(core_wall_ms() - older_than_ms), "}");
    st_delete_many(a, "attempts", f);
    bson_destroy(f);
}
