/* seed.c -- writes a synthetic social network straight into publication's database, in its store layout. */
/*
 * bench-feed-seed MONGO_URI OUT_FILE [options]
 *   -u USERS            accounts (default 12000)
 *   -f FOLLOWS          mean accounts each one follows among the regular ones (default 100; 50..150)
 *   -c CELEBS           accounts with merged posts (default 5), -C their followers each (default 10500)
 *   -F FAN_FOLLOWERS    followers of the fanout author (default 10000)
 *   -p POSTS            posts in all (default 100000), -P of them per celebrity (default 100)
 *   -m MAX_ITEMS        FEED_MAX_ITEMS (default 800), -t THRESHOLD FEED_FANOUT_MAX_FOLLOWERS (default 10000)
 *
 * Account 0 is the fanout author "bf_fan" (followed by FAN_FOLLOWERS accounts, no posts: bench/feed
 * measures how long its one new post takes to reach them); 1..CELEBS are "bf_celeb<i>"; the rest
 * are "bf_u<i>". Every account follows FOLLOWS regular accounts on average. The posts are spread
 * over the last 30 days, their ids time-ordered (the ObjectId's seconds are created_at's); each
 * has one photo shaped like resize-image's media. What fanout would have written is written
 * directly: the follows edges and following/followers buckets, recent (p: newest MAX_ITEMS),
 * merged_posts (the posts of authors above THRESHOLD followers), feed_meta "merged", and every account's
 * timeline (its own posts and its followees' but the merged ones, newest MAX_ITEMS).
 *
 * OUT_FILE gets one line per account: "<id> <username> <following> <followers> <timeline entries>".
 * Collections written are dropped first. Exits non-zero on any database error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#define ID_LEN 24

static struct {
    int users, follows, celebs, celeb_followers, fan_followers, posts, celeb_posts, max_items, threshold;
} conf = {
    .users = 12000,
    .follows = 100,
    .celebs = 5,
    .celeb_followers = 10500,
    .fan_followers = 10000,
    .posts = 100000,
    .celeb_posts = 100,
    .max_items = 800,
    .threshold = 10000,
};

/* ---------------------------------------------------------------- helpers */

static void die(const char *what, const bson_error_t *e)
{
    fprintf(stderr, "bench-feed-seed: %s: %s\n", what, e != NULL ? e->message : "");
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        die("out of memory", NULL);
    return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) /* xorshift64*: the same network every run */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}
static int rng_below(int n)
{
    return (int)(rng() % (uint64_t)n);
}

/* A growable list of account or post indices. */
typedef struct {
    int *v;
    int n, cap;
} list_t;

static void list_push(list_t *l, int x)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = realloc(l->v, (size_t)l->cap * sizeof(int));
        if (l->v == NULL)
            die("out of memory", NULL);
    }
    l->v[l->n++] = x;
}

static int list_has(const list_t *l, int x)
{
    for (int i = 0; i < l->n; i++)
        if (l->v[i] == x)
            return 1;
    return 0;
}

/* Inserts documents in big unordered bulk writes (libmongoc splits them into wire messages). */
typedef struct {
    mongoc_collection_t *coll;
    mongoc_bulk_operation_t *bulk;
    size_t docs, bytes, total;
    const char *name;
} inserter_t;

static void inserter_flush(inserter_t *in)
{
    if (in->bulk == NULL)
        return;
    bson_error_t e;
    bson_t reply;
    if (!mongoc_bulk_operation_execute(in->bulk, &reply, &e)) {
        char *s = bson_as_relaxed_extended_json(&reply, NULL);
        fprintf(stderr, "bench-feed-seed: insert into %s: %s\n", in->name, s);
        die(in->name, &e);
    }
    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(in->bulk);
    in->bulk = NULL;
    in->docs = in->bytes = 0;
}

static void inserter_add(inserter_t *in, const bson_t *doc)
{
    if (in->bulk == NULL) {
        bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
        in->bulk = mongoc_collection_create_bulk_operation_with_opts(in->coll, opts);
        bson_destroy(opts);
    }
    bson_error_t e;
    if (!mongoc_bulk_operation_insert_with_opts(in->bulk, doc, NULL, &e))
        die(in->name, &e);
    in->docs++;
    in->total++;
    in->bytes += doc->len;
    if (in->docs >= 20000 || in->bytes >= (size_t)32 << 20)
        inserter_flush(in);
}

static void inserter_open(inserter_t *in, mongoc_database_t *db, const char *name)
{
    memset(in, 0, sizeof(*in));
    in->name = name;
    in->coll = mongoc_database_get_collection(db, name);
    bson_error_t e;
    if (!mongoc_collection_drop(in->coll, &e) && strstr(e.message, "ns not found") == NULL &&
        strstr(e.message, "not found") == NULL)
        die(name, &e);
}

static void inserter_close(inserter_t *in, double t0)
{
    inserter_flush(in);
    mongoc_collection_destroy(in->coll);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    fprintf(stderr, "bench-feed-seed: %-10s %8zu documents (%.1f s)\n", in->name, in->total,
            (double)ts.tv_sec + ts.tv_nsec / 1e9 - t0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- the network */

static char (*user_id)[ID_LEN + 1];
static char (*user_name)[32];
static list_t *following, *followers, *posts_of; /* per account */
static char (*post_id)[ID_LEN + 1];              /* per post, oldest first */
static int *post_author;
static int64_t *post_ms;
static char *merged; /* per account: above the threshold */

static void network_make(int64_t now_ms)
{
    int n = conf.users, first_regular = 1 + conf.celebs, regular = n - first_regular;
    if (regular < conf.follows * 2 || regular < conf.celeb_followers || regular < conf.fan_followers)
        die("too few accounts for those follower counts", NULL);
    user_id = xcalloc((size_t)n, sizeof(*user_id));
    user_name = xcalloc((size_t)n, sizeof(*user_name));
    following = xcalloc((size_t)n, sizeof(list_t));
    followers = xcalloc((size_t)n, sizeof(list_t));
    posts_of = xcalloc((size_t)n, sizeof(list_t));
    merged = xcalloc((size_t)n, 1);
    /* ObjectId-shaped user ids, as auth makes them (a fixed time, then the index) */
    for (int u = 0; u < n; u++) {
        snprintf(user_id[u], sizeof(user_id[u]), "%08x%016x", 0x66000000u, (unsigned)u);
        if (u == 0)
            snprintf(user_name[u], sizeof(user_name[u]), "bf_fan");
        else if (u < first_regular)
            snprintf(user_name[u], sizeof(user_name[u]), "bf_celeb%d", u);
        else
            snprintf(user_name[u], sizeof(user_name[u]), "bf_u%05d", u);
    }
    /* everyone follows 50..150 regular accounts (mean FOLLOWS) */
    for (int u = 0; u < n; u++) {
        int k = conf.follows / 2 + rng_below(conf.follows + 1);
        while (following[u].n < k) {
            int v = first_regular + rng_below(regular);
            if (v != u && !list_has(&following[u], v))
                list_push(&following[u], v);
        }
    }
    /* celebrities and the fanout author: followers drawn without repetition (partial shuffle) */
    int *pool = xcalloc((size_t)regular, sizeof(int));
    for (int c = 0; c < first_regular; c++) {
        int want = c == 0 ? conf.fan_followers : conf.celeb_followers;
        for (int i = 0; i < regular; i++)
            pool[i] = first_regular + i;
        for (int i = 0; i < want; i++) {
            int j = i + rng_below(regular - i), t = pool[i];
            pool[i] = pool[j];
            pool[j] = t;
            list_push(&following[pool[i]], c);
        }
    }
    free(pool);
    for (int u = 0; u < n; u++)
        for (int i = 0; i < following[u].n; i++)
            list_push(&followers[following[u].v[i]], u);
    for (int u = 0; u < n; u++)
        merged[u] = followers[u].n > conf.threshold;
    /* posts: time-ordered over the last 30 days; about CELEBS x CELEB_POSTS by celebrities */
    post_id = xcalloc((size_t)conf.posts, sizeof(*post_id));
    post_author = xcalloc((size_t)conf.posts, sizeof(int));
    post_ms = xcalloc((size_t)conf.posts, sizeof(int64_t));
    int64_t span_ms = 30LL * 24 * 3600 * 1000, start_ms = now_ms - span_ms - 60000;
    for (int i = 0; i < conf.posts; i++) {
        int64_t ms = start_ms + span_ms * i / conf.posts;
        int celeb = conf.celebs > 0 && rng_below(conf.posts) < conf.celebs * conf.celeb_posts;
        post_author[i] = celeb ? 1 + rng_below(conf.celebs) : first_regular + rng_below(regular);
        post_ms[i] = ms;
        snprintf(post_id[i], sizeof(post_id[i]), "%08" PRIx64 "bfeed0%010x", (uint64_t)(ms / 1000), (unsigned)i);
        list_push(&posts_of[post_author[i]], i);
    }
}

/* ---------------------------------------------------------------- documents */

/* Appends under key the ids names[l->v[from..]] (account or post ids). */
static void append_ids_of(bson_t *doc, const char *key, char (*names)[ID_LEN + 1], const list_t *l, int from)
{
    bson_t arr;
    char k[16];
    const char *kp;
    bson_append_array_begin(doc, key, -1, &arr);
    for (int i = from, j = 0; i < l->n; i++, j++) {
        bson_uint32_to_string((uint32_t)j, &kp, k, sizeof(k));
        bson_append_utf8(&arr, kp, -1, names[l->v[i]], ID_LEN);
    }
    bson_append_array_end(doc, &arr);
}

static void append_ids(bson_t *doc, const char *key, const list_t *l, int from)
{
    append_ids_of(doc, key, user_id, l, from);
}

static void append_post_ids(bson_t *doc, const char *key, const list_t *l, int from)
{
    append_ids_of(doc, key, post_id, l, from);
}

/* One photo as resize-image describes it (and publication copies it into the post). */
static void append_media(bson_t *doc, int post)
{
    static const struct {
        const char *name;
        int w, h;
    } vs[] = {{"thumb", 150, 150}, {"small", 320, 240}, {"medium", 640, 480}, {"large", 1080, 810}};
    char mid[ID_LEN + 1], url[128], webp[128];
    snprintf(mid, sizeof(mid), "%08" PRIx64 "bfeed1%010x", (uint64_t)(post_ms[post] / 1000), (unsigned)post);
    bson_t arr, m, vars, v;
    bson_append_array_begin(doc, "media", -1, &arr);
    bson_append_document_begin(&arr, "0", -1, &m);
    BSON_APPEND_UTF8(&m, "id", mid);
    BSON_APPEND_INT32(&m, "width", 1080);
    BSON_APPEND_INT32(&m, "height", 810);
    BSON_APPEND_UTF8(&m, "blurhash", "LEHV6nWB2yk8pyo0adR*.7kCMdnj");
    bson_append_document_begin(&m, "variants", -1, &vars);
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        snprintf(url, sizeof(url), "/media/m/%s/%s.jpg", mid, vs[i].name);
        snprintf(webp, sizeof(webp), "/media/m/%s/%s.webp", mid, vs[i].name);
        bson_append_document_begin(&vars, vs[i].name, -1, &v);
        BSON_APPEND_UTF8(&v, "url", url);
        BSON_APPEND_UTF8(&v, "webp_url", webp);
        BSON_APPEND_INT32(&v, "width", vs[i].w);
        BSON_APPEND_INT32(&v, "height", vs[i].h);
        bson_append_document_end(&vars, &v);
    }
    bson_append_document_end(&m, &vars);
    bson_append_document_end(&arr, &m);
    bson_append_array_end(doc, &arr);
}

static int cmp_int_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

/* The newest MAX_ITEMS posts of u and of the accounts it follows that are fanned out, oldest
 * first (the order appends would have left them in). Returns their number; *out is reused. */
static int timeline_of(int u, list_t *out)
{
    out->n = 0;
    for (int i = 0; i < posts_of[u].n; i++)
        list_push(out, posts_of[u].v[i]);
    for (int f = 0; f < following[u].n; f++) {
        int a = following[u].v[f];
        if (merged[a])
            continue;
        for (int i = 0; i < posts_of[a].n; i++)
            list_push(out, posts_of[a].v[i]);
    }
    qsort(out->v, (size_t)out->n, sizeof(int), cmp_int_desc);
    if (out->n > conf.max_items)
        out->n = conf.max_items;
    for (int i = 0, j = out->n - 1; i < j; i++, j--) {
        int t = out->v[i];
        out->v[i] = out->v[j];
        out->v[j] = t;
    }
    return out->n;
}

/* ---------------------------------------------------------------- main */

/* libmongoc's errors only (FerretDB has no endSessions: a warning at every client's end). */
static void quiet_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void)ud;
    if (level <= MONGOC_LOG_LEVEL_ERROR)
        fprintf(stderr, "%s: %s\n", domain, message);
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "u:f:c:C:F:p:P:m:t:")) != -1) {
        int v = atoi(optarg);
        switch (opt) {
        case 'u': conf.users = v; break;
        case 'f': conf.follows = v; break;
        case 'c': conf.celebs = v; break;
        case 'C': conf.celeb_followers = v; break;
        case 'F': conf.fan_followers = v; break;
        case 'p': conf.posts = v; break;
        case 'P': conf.celeb_posts = v; break;
        case 'm': conf.max_items = v; break;
        case 't': conf.threshold = v; break;
        default:
            fprintf(stderr, "usage: %s MONGO_URI OUT_FILE [-u users] [-f follows] [-c celebs] [-C celeb followers] "
                            "[-F fan followers] [-p posts] [-P posts per celeb] [-m max items] [-t threshold]\n",
                    argv[0]);
            return 2;
        }
    }
    if (argc - optind != 2 || conf.users < 2 || conf.posts < 1 || conf.max_items < 1) {
        fprintf(stderr, "usage: %s MONGO_URI OUT_FILE [options] (see bench/feed/seed.c)\n", argv[0]);
        return 2;
    }
    const char *uri = argv[optind], *out_path = argv[optind + 1];
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t now_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    double t0 = now_s();
    network_make(now_ms);
    fprintf(stderr, "bench-feed-seed: network made in memory (%.1f s)\n", now_s() - t0);

    mongoc_init();
    mongoc_log_set_handler(quiet_log, NULL);
    bson_error_t e;
    mongoc_uri_t *muri = mongoc_uri_new_with_error(uri, &e);
    if (muri == NULL)
        die("MONGO_URI", &e);
    mongoc_client_t *client = mongoc_client_new_from_uri(muri);
    const char *dbname = mongoc_uri_get_database(muri) != NULL ? mongoc_uri_get_database(muri) : "publication";
    mongoc_database_t *db = mongoc_client_get_database(client, dbname);
    FILE *out = fopen(out_path, "w");
    if (out == NULL)
        die(out_path, NULL);

    inserter_t in;
    int n = conf.users;
    /* users and usernames */
    inserter_open(&in, db, "users");
    for (int u = 0; u < n; u++) {
        bson_t *d = BCON_NEW("_id", BCON_UTF8(user_id[u]), "username", BCON_UTF8(user_name[u]), "name",
                             BCON_UTF8(user_name[u]));
        BSON_APPEND_NULL(d, "avatar_media_id");
        BSON_APPEND_NULL(d, "avatar");
        BSON_APPEND_INT64(d, "v", now_ms - 40LL * 24 * 3600 * 1000);
        inserter_add(&in, d);
        bson_destroy(d);
    }
    inserter_close(&in, t0);
    inserter_open(&in, db, "usernames");
    for (int u = 0; u < n; u++) {
        bson_t *d = BCON_NEW("_id", BCON_UTF8(user_name[u]), "user_id", BCON_UTF8(user_id[u]));
        inserter_add(&in, d);
        bson_destroy(d);
    }
    inserter_close(&in, t0);
    /* the graph: edges and both buckets */
    inserter_open(&in, db, "follows");
    for (int u = 0; u < n; u++)
        for (int i = 0; i < following[u].n; i++) {
            char id[2 * ID_LEN + 2];
            int v = following[u].v[i];
            snprintf(id, sizeof(id), "%s:%s", user_id[u], user_id[v]);
            bson_t *d = BCON_NEW("_id", BCON_UTF8(id), "from", BCON_UTF8(user_id[u]), "to", BCON_UTF8(user_id[v]),
                                 "on", BCON_BOOL(true));
            BSON_APPEND_INT64(d, "at", now_ms - 35LL * 24 * 3600 * 1000 + u);
            inserter_add(&in, d);
            bson_destroy(d);
        }
    inserter_close(&in, t0);
    const char *bucket_names[2] = {"following", "followers"};
    list_t *buckets[2] = {following, followers};
    for (int b = 0; b < 2; b++) {
        inserter_open(&in, db, bucket_names[b]);
        for (int u = 0; u < n; u++) {
            if (buckets[b][u].n == 0)
                continue;
            bson_t *d = BCON_NEW("_id", BCON_UTF8(user_id[u]));
            append_ids(d, "ids", &buckets[b][u], 0);
            inserter_add(&in, d);
            bson_destroy(d);
        }
        inserter_close(&in, t0);
    }
    /* posts */
    inserter_open(&in, db, "posts");
    for (int i = 0; i < conf.posts; i++) {
        char caption[64];
        snprintf(caption, sizeof(caption), "feed bench post %d", i);
        bson_t *d = BCON_NEW("_id", BCON_UTF8(post_id[i]), "author_id", BCON_UTF8(user_id[post_author[i]]),
                             "caption", BCON_UTF8(caption));
        append_media(d, i);
        bson_t empty;
        bson_append_array_begin(d, "tags", -1, &empty);
        bson_append_array_end(d, &empty);
        bson_append_array_begin(d, "mentions", -1, &empty);
        bson_append_array_end(d, &empty);
        BSON_APPEND_DATE_TIME(d, "created_at", post_ms[i]);
        BSON_APPEND_NULL(d, "edited_at");
        inserter_add(&in, d);
        bson_destroy(d);
    }
    inserter_close(&in, t0);
    /* recent: the newest MAX_ITEMS of each author; u: all of a merged author's */
    inserter_open(&in, db, "recent");
    for (int u = 0; u < n; u++) {
        const list_t *l = &posts_of[u];
        if (l->n == 0)
            continue;
        bson_t *d = BCON_NEW("_id", BCON_UTF8(user_id[u]));
        append_post_ids(d, "p", l, l->n > conf.max_items ? l->n - conf.max_items : 0);
        inserter_add(&in, d);
        bson_destroy(d);
    }
    inserter_close(&in, t0);
    /* merged_posts: the newest MAX_ITEMS of each merged author, all of them not fanned out */
    inserter_open(&in, db, "merged_posts");
    for (int u = 0; u < n; u++) {
        const list_t *l = &posts_of[u];
        if (!merged[u] || l->n == 0)
            continue;
        bson_t *d = BCON_NEW("_id", BCON_UTF8(user_id[u]));
        append_post_ids(d, "ids", l, l->n > conf.max_items ? l->n - conf.max_items : 0);
        inserter_add(&in, d);
        bson_destroy(d);
    }
    inserter_close(&in, t0);
    inserter_open(&in, db, "feed_meta");
    {
        list_t m = {0};
        for (int u = 0; u < n; u++)
            if (merged[u] && posts_of[u].n > 0)
                list_push(&m, u);
        bson_t *d = BCON_NEW("_id", BCON_UTF8("merged"));
        append_ids(d, "ids", &m, 0);
        inserter_add(&in, d);
        bson_destroy(d);
        free(m.v);
    }
    inserter_close(&in, t0);
    /* timelines */
    inserter_open(&in, db, "timelines");
    list_t tl = {0};
    long entries = 0;
    for (int u = 0; u < n; u++) {
        int k = timeline_of(u, &tl);
        entries += k;
        bson_t *d = BCON_NEW("_id", BCON_UTF8(user_id[u])), arr;
        bson_append_array_begin(d, "e", -1, &arr);
        for (int i = 0; i < k; i++) {
            char key[16], entry[2 * ID_LEN + 2];
            const char *kp;
            bson_uint32_to_string((uint32_t)i, &kp, key, sizeof(key));
            int pi = tl.v[i];
            snprintf(entry, sizeof(entry), "%s:%s", post_id[pi], user_id[post_author[pi]]);
            bson_append_utf8(&arr, kp, -1, entry, -1);
        }
        bson_append_array_end(d, &arr);
        inserter_add(&in, d);
        bson_destroy(d);
        fprintf(out, "%s %s %d %d %d\n", user_id[u], user_name[u], following[u].n, followers[u].n, k);
    }
    inserter_close(&in, t0);
    free(tl.v);
    long follows = 0;
    int nmerged = 0;
    for (int u = 0; u < n; u++) {
        follows += following[u].n;
        nmerged += merged[u];
    }
    fprintf(stderr,
            "bench-feed-seed: %d accounts, %ld follows (mean %.1f), %d merged authors, %d posts, %ld timeline "
            "entries (mean %.0f) in %.1f s\n",
            n, follows, (double)follows / n, nmerged, conf.posts, entries, (double)entries / n, now_s() - t0);
    fclose(out);
    mongoc_database_destroy(db);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(muri);
    mongoc_cleanup();
    return 0;
}
