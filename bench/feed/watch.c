/* watch.c -- how long one post takes to reach its author's followers' home timelines, read from the database. */
/*
 * bench-feed-watch MONGO_URI AUTHOR_ID POST_ID T0_MS [EVERY] [TIMEOUT_S] [PAUSE_MS]
 *
 * T0_MS: the wall-clock time (ms since the epoch) at which the POST that made POST_ID got its 201.
 * Reads the author's followers bucket, then polls, by _id, the timelines of a sample of them
 * (every EVERY-th follower in the bucket's order, default 200, and the last one; fanout writes
 * batches in that order) until each holds the entry
 * "<POST_ID>:<AUTHOR_ID>"; then sweeps every follower's timeline until all have it (each
 * follower is checked until found, never again after). Rounds of the sample are PAUSE_MS apart
 * (default 500): a timeline is about 50 KB of JSON for FerretDB to decode, and the watcher should
 * not take the CPU the fanout needs. Prints, as seconds after T0:
 *   sample S/S  first X  all Y (last one not there yet at Z)
 *   all    N/N  done by Y (verified in a sweep of every timeline)
 * then "check <id>" for five followers (the first, the last, three between), and the progress of
 * the sample, one line per round, on stderr. Timelines are read one at a
 * time (one connection), so the reading itself loads the database little.
 * Exits 1 when some follower did not get it within TIMEOUT_S (default 120).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench-feed-watch: %s: %s\n", what, why);
    exit(2);
}

/* 1 if user's timeline holds entry, 0 if not (or no timeline). */
static int timeline_has(mongoc_collection_t *tl, const char *user, const char *entry)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *c = mongoc_collection_find_with_opts(tl, f, opts, NULL);
    const bson_t *doc;
    int found = 0;
    if (mongoc_cursor_next(c, &doc)) {
        bson_iter_t it, arr;
        if (bson_iter_init_find(&it, doc, "e") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr))
            while (!found && bson_iter_next(&arr))
                found = BSON_ITER_HOLDS_UTF8(&arr) && strcmp(bson_iter_utf8(&arr, NULL), entry) == 0;
    }
    bson_error_t e;
    if (mongoc_cursor_error(c, &e))
        die("timelines", e.message);
    mongoc_cursor_destroy(c);
    bson_destroy(opts);
    bson_destroy(f);
    return found;
}

/* libmongoc's errors only (FerretDB has no endSessions: a warning at every client's end). */
static void quiet_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void)ud;
    if (level <= MONGOC_LOG_LEVEL_ERROR)
        fprintf(stderr, "%s: %s\n", domain, message);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s MONGO_URI AUTHOR_ID POST_ID T0_MS [EVERY] [TIMEOUT_S]\n", argv[0]);
        return 2;
    }
    const char *uri = argv[1], *author = argv[2], *post = argv[3];
    int64_t t0 = strtoll(argv[4], NULL, 10);
    int every = argc > 5 ? atoi(argv[5]) : 200;
    int64_t timeout_ms = (argc > 6 ? atoi(argv[6]) : 120) * 1000LL;
    long pause_ms = argc > 7 ? atol(argv[7]) : 500;
    if (every < 1)
        every = 1;
    char entry[128];
    snprintf(entry, sizeof(entry), "%s:%s", post, author);

    mongoc_init();
    mongoc_log_set_handler(quiet_log, NULL);
    bson_error_t e;
    mongoc_uri_t *muri = mongoc_uri_new_with_error(uri, &e);
    if (muri == NULL)
        die("MONGO_URI", e.message);
    mongoc_client_t *client = mongoc_client_new_from_uri(muri);
    const char *dbname = mongoc_uri_get_database(muri) != NULL ? mongoc_uri_get_database(muri) : "publication";
    /* a timeline is two documents: its head, where fanout adds, and its body (README, Store) */
    mongoc_collection_t *hd = mongoc_client_get_collection(client, dbname, "timeline_heads");
    mongoc_collection_t *tl = mongoc_client_get_collection(client, dbname, "timelines");
    mongoc_collection_t *fw = mongoc_client_get_collection(client, dbname, "followers");

    /* the followers, in the bucket's order */
    char **ids = NULL;
    size_t n = 0;
    {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(author));
        mongoc_cursor_t *c = mongoc_collection_find_with_opts(fw, f, NULL, NULL);
        const bson_t *doc;
        if (!mongoc_cursor_next(c, &doc)) {
            if (mongoc_cursor_error(c, &e))
                die("followers", e.message);
            die("followers", "the author has no followers bucket");
        }
        bson_iter_t it, arr;
        if (!bson_iter_init_find(&it, doc, "ids") || !bson_iter_recurse(&it, &arr))
            die("followers", "no ids");
        while (bson_iter_next(&arr)) {
            ids = realloc(ids, (n + 1) * sizeof(char *));
            ids[n++] = strdup(bson_iter_utf8(&arr, NULL));
        }
        mongoc_cursor_destroy(c);
        bson_destroy(f);
    }
    int64_t *seen = calloc(n ? n : 1, sizeof(int64_t)); /* ms after t0 it was first seen there; 0: not yet */
    int64_t *missed = calloc(n ? n : 1, sizeof(int64_t)); /* ms after t0 of the last check without it */

    /* the sample, round after round */
    size_t sample = 0, found = 0;
#define IN_SAMPLE(i) ((i) % (size_t)every == 0 || (i) == n - 1)
    for (size_t i = 0; i < n; i++)
        sample += IN_SAMPLE(i);
    int64_t first = -1, last = -1, last_missed = -1;
    int rounds = 0;
    while (found < sample && wall_ms() - t0 < timeout_ms) {
        if (rounds++ > 0)
            usleep((useconds_t)pause_ms * 1000);
        for (size_t i = 0; i < n; i++) {
            if (!IN_SAMPLE(i) || seen[i])
                continue;
            int has = (timeline_has(hd, ids[i], entry) || timeline_has(tl, ids[i], entry));
            int64_t at = wall_ms() - t0;
            if (has) {
                seen[i] = at > 0 ? at : 1;
                found++;
                if (first < 0)
                    first = seen[i];
                last = seen[i];
            } else {
                missed[i] = at;
                if (at > last_missed)
                    last_missed = at;
            }
        }
        fprintf(stderr, "bench-feed-watch: round %d at +%.3f s: %zu/%zu of the sample\n", rounds,
                (double)(wall_ms() - t0) / 1000, found, sample);
    }
    printf("sample %zu/%zu (every %d-th follower and the last), rounds %ld ms apart, first seen +%.3f s, all seen by +%.3f s (the last one still "
           "missing at +%.3f s), %d rounds\n",
           found, sample, every, pause_ms, first / 1000.0, last / 1000.0, last_missed / 1000.0, rounds);

    /* every follower, until all have it */
    size_t all = found;
    int sweeps = 0;
    int64_t sweep_start = 0;
    while (all < n && wall_ms() - t0 < timeout_ms) {
        sweeps++;
        sweep_start = wall_ms() - t0;
        for (size_t i = 0; i < n; i++) {
            if (seen[i])
                continue;
            int has = (timeline_has(hd, ids[i], entry) || timeline_has(tl, ids[i], entry));
            int64_t at = wall_ms() - t0;
            if (has) {
                seen[i] = at;
                all++;
            } else {
                missed[i] = at;
                if (at > last_missed)
                    last_missed = at;
            }
        }
    }
    int64_t done = wall_ms() - t0;
    printf("all %zu/%zu followers' timelines have it: verified by +%.3f s (%d sweeps, the last began at +%.3f s); "
           "the last check that found one still missing was at +%.3f s\n",
           all, n, done / 1000.0, sweeps, sweep_start / 1000.0, last_missed / 1000.0);
    for (size_t k = 0; k < 5 && n > 0; k++) /* a few followers for the caller to check otherwise */
        printf("check %s\n", ids[k * (n - 1) / 4]);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(seen);
    free(missed);
    mongoc_collection_destroy(hd);
    mongoc_collection_destroy(tl);
    mongoc_collection_destroy(fw);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(muri);
    mongoc_cleanup();
    return all == n ? 0 : 1;
}
