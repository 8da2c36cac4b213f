/* seed.c -- a synthetic corpus written straight into search's database, and bench/search's queries. */
/*
 * bench-search-seed seed MONGO_URI [-u USERS] [-p POSTS] [-w WORDS] [-g TAGS] [-j CONNECTIONS] [-f]
 *     writes USERS (default 100,000) "users" and POSTS (default 1,000,000) "posts" documents in the
 *     layout of services/search/README.md "Documents", with insert_many batches of 1,000 over
 *     CONNECTIONS clients at once (default 2), then a marker {_id: "corpus"} in "bench_seed". When
 *     the marker names the same sizes and the first and last documents it names are there, nothing
 *     is written ("already seeded"); -f drops and writes them again.
 * bench-search-seed queries OUT_DIR [-u USERS] [-w WORDS] [-g TAGS] [-n LINES] [-P FILES]
 *     writes request paths for h2load -i (-B gives the host): FILES files (default 8) of LINES paths
 *     (default 4,000) per kind, OUT_DIR/<kind>-<i>.txt, kind one of posts (1-2 words), hashtag
 *     (#tag), users, tags, autocomplete, and mix (60% posts, 10% hashtag, 15% users, 5% tags, 10%
 *     autocomplete). Each file draws its own sequence: h2load starts every client of a run at the
 *     first line of its file.
 *
 * Everything comes from a fixed seed, so both commands make the same corpus at every run (times are
 * relative to the moment of seeding, kept in the marker as now_ms):
 *   - a vocabulary of WORDS (50,000) pseudo-words of 1-3 syllables, shorter ones more frequent
 *     (rank order), 10% of them with one accented letter (á, é, ü, ñ, ç, ...); captions and queries
 *     write such a word without its accent one time in five (captions) or two (queries);
 *   - TAGS (20,000) distinct ASCII hashtags: a word, two words, or a word and a number;
 *   - users: ObjectId-shaped ids, a first name (80, some accented: José, Zoë, Łukasz) and a surname
 *     (a word, capitalised), usernames "first_surname" (else variants, else a number appended),
 *     followers Zipf-like (2,000,000 / rank^1.15: 2M, 141k at rank 10, 703 at rank 1,000);
 *   - posts: ids ObjectId-shaped and increasing with created_at (its seconds first), spread evenly
 *     over the last 2 years; authors Zipf (s 0.8), half of them the most followed; a caption of
 *     5-25 words drawn Zipf (s 1.0) from the vocabulary, its first letter capitalised one time in
 *     two; 0-5 distinct tags (30% none) drawn Zipf from the tags, each also written "#tag" at a
 *     random place in the caption; likes heavy-tailed (3 x (1/x^0.9 - 1): median 2, p99 ~190,
 *     max ~750k), comments about 5% of likes.
 * Exits non-zero on any database error.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#define SEED 0x5ea4c4b3e9c1f00dULL
#define CORPUS_VERSION 1 /* raise when the documents change: a kept database is then seeded again */
#define BATCH 1000
#define WORD_MAX 32
#define NAME_MAX_LEN 31 /* usernames: at most 30 characters, as auth allows */

static struct {
    int users, posts, words, tags, connections, force, lines, files;
} conf = {
    .users = 100000,
    .posts = 1000000,
    .words = 50000,
    .tags = 20000,
    .connections = 2,
    .lines = 4000,
    .files = 8,
};

/* ---------------------------------------------------------------- helpers */

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench-search-seed: %s%s%s\n", what, why != NULL ? ": " : "", why != NULL ? why : "");
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        die("out of memory", NULL);
    return p;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* splitmix64: a stream per item (word, user, post, query file), so that an item does not depend on
 * which thread makes it or on what was drawn before it. */
typedef struct {
    uint64_t s;
} rng_t;

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static rng_t rng_for(uint64_t stream, uint64_t item)
{
    rng_t r = {mix64(SEED ^ mix64(stream * 0x9e3779b97f4a7c15ULL + item))};
    return r;
}

static uint64_t rng_next(rng_t *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix64(r->s);
}

static int rng_below(rng_t *r, int n)
{
    return (int)(rng_next(r) % (uint64_t)n);
}

static double rng_unit(rng_t *r) /* [0, 1) */
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* snprintf's answer n: the whole string fitted in size bytes (what does not is not used). */
static int fits(int n, size_t size)
{
    return n >= 0 && (size_t)n < size;
}

/* A Zipf distribution over ranks 0..n-1: P(rank k) proportional to 1 / (k + 1)^s. */
typedef struct {
    double *cdf;
    int n;
} zipf_t;

static void zipf_init(zipf_t *z, int n, double s)
{
    z->n = n;
    z->cdf = xcalloc((size_t)n, sizeof(double));
    double sum = 0;
    for (int k = 0; k < n; k++)
        z->cdf[k] = sum += 1.0 / pow(k + 1, s);
    for (int k = 0; k < n; k++)
        z->cdf[k] /= sum;
}

static int zipf_draw(const zipf_t *z, rng_t *r)
{
    double u = rng_unit(r);
    int lo = 0, hi = z->n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A permutation of 0..n-1 (a multiplier prime to n: our sizes have no factor 7919). */
static int perm(int x, int n)
{
    return (int)(((int64_t)x * 7919 + 104729) % n);
}

/* A set of strings (open addressing), to keep usernames and tags distinct. */
typedef struct {
    char **slot;
    size_t cap;
} strset_t;

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Adds s (copied) unless present; returns 1 when added. */
static int strset_add(strset_t *set, const char *s)
{
    size_t i = str_hash(s) & (set->cap - 1);
    while (set->slot[i] != NULL) {
        if (strcmp(set->slot[i], s) == 0)
            return 0;
        i = (i + 1) & (set->cap - 1);
    }
    set->slot[i] = strdup(s);
    if (set->slot[i] == NULL)
        die("out of memory", NULL);
    return 1;
}

static void strset_init(strset_t *set, size_t want)
{
    set->cap = 1;
    while (set->cap < want * 2)
        set->cap <<= 1;
    set->slot = xcalloc(set->cap, sizeof(char *));
}

static void strset_free(strset_t *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->slot[i]);
    free(set->slot);
}

/* Capitalises the first letter of s in place: ASCII, or a Latin-1 letter in UTF-8 (c3 a0..be). */
static void capitalise(char *s)
{
    unsigned char *u = (unsigned char *)s;
    if (u[0] >= 'a' && u[0] <= 'z')
        u[0] = (unsigned char)(u[0] - 32);
    else if (u[0] == 0xc3 && u[1] >= 0xa0 && u[1] <= 0xbe && u[1] != 0xb7)
        u[1] = (unsigned char)(u[1] - 0x20);
}

/* ---------------------------------------------------------------- vocabulary */

static const char *syllables[] = {
    "ka", "lo", "mi", "ne", "ra", "to", "su", "vi", "de",  "ba",  "ri",  "po",  "la", "me",
    "ni", "sa", "te", "ko", "ru", "fi", "go", "ha", "je",  "lu",  "ma",  "no",  "pe", "sho",
    "ti", "ve", "zo", "an", "el", "in", "or", "um", "bri", "cla", "dro", "fle",
};
#define NSYL ((int)(sizeof(syllables) / sizeof(syllables[0])))

/* Accented forms of the letters that have some (all precomposed Latin-1, all folding to the letter). */
static const struct {
    char letter;
    const char *forms[3];
} accents[] = {
    {'a', {"á", "à", "å"}}, {'e', {"é", "è", "ê"}}, {'i', {"í", "ï", "î"}}, {'o', {"ö", "ó", "ô"}},
    {'u', {"ü", "ú", "û"}}, {'n', {"ñ", "ñ", "ñ"}}, {'c', {"ç", "ç", "ç"}},
};

typedef struct {
    char plain[WORD_MAX]; /* ASCII */
    char disp[WORD_MAX];  /* as usually written: with its accent, if it has one */
} word_t;

static word_t *words; /* by rank: 0 is the most frequent */

/* Word of rank i: 1 syllable for the first NSYL ranks, 2 for the next NSYL^2, 3 after. */
static void word_make(int i, word_t *w)
{
    int n1 = NSYL, n2 = NSYL * NSYL, n3 = NSYL * NSYL * NSYL, code, len;
    if (i < n1) {
        code = perm(i, n1);
        len = 1;
    } else if (i < n1 + n2) {
        code = perm(i - n1, n2);
        len = 2;
    } else {
        code = perm((i - n1 - n2) % n3, n3);
        len = 3;
    }
    w->plain[0] = '\0';
    for (int k = 0; k < len; k++) {
        strcat(w->plain, syllables[code % NSYL]);
        code /= NSYL;
    }
    strcpy(w->disp, w->plain);
    rng_t r = rng_for(1, (uint64_t)i);
    if (rng_below(&r, 100) >= 10)
        return;
    /* one letter accented: the first that has accented forms, from a random place on */
    size_t n = strlen(w->plain), from = (size_t)rng_below(&r, (int)n);
    for (size_t k = 0; k < n; k++) {
        size_t at = (from + k) % n;
        for (size_t a = 0; a < sizeof(accents) / sizeof(accents[0]); a++) {
            if (accents[a].letter != w->plain[at])
                continue;
            snprintf(w->disp, sizeof(w->disp), "%.*s%s%s", (int)at, w->plain,
                     accents[a].forms[rng_below(&r, 3)], w->plain + at + 1);
            return;
        }
    }
}

static char (*tags)[WORD_MAX]; /* by rank */

/* TAGS distinct tags: a word (half), two words (three in ten) or a word and a number. */
static void tags_make(void)
{
    tags = xcalloc((size_t)conf.tags, sizeof(*tags));
    strset_t seen;
    strset_init(&seen, (size_t)conf.tags);
    /* tags of common words first: a word of rank about the tag's (plus noise) */
    for (int j = 0, attempt = 0; j < conf.tags; attempt++) {
        rng_t r = rng_for(2, (uint64_t)attempt);
        int kind = rng_below(&r, 10), span = j + 50;
        const char *w1 = words[rng_below(&r, span < conf.words ? span : conf.words)].plain;
        const char *w2 = words[rng_below(&r, conf.words)].plain;
        char t[WORD_MAX];
        int n;
        if (kind < 5)
            n = snprintf(t, sizeof(t), "%s", w1);
        else if (kind < 8)
            n = snprintf(t, sizeof(t), "%s%s", w1, w2);
        else
            n = snprintf(t, sizeof(t), "%s%d", w1,
                         rng_below(&r, 3) == 0 ? 2000 + rng_below(&r, 27) : rng_below(&r, 100));
        if (fits(n, sizeof(t)) && strset_add(&seen, t))
            strcpy(tags[j++], t);
    }
    strset_free(&seen);
}

/* ---------------------------------------------------------------- users */

static const struct {
    const char *disp, *plain;
} first_names[] = {
    {"Anna", "anna"},     {"José", "jose"},         {"Zoë", "zoe"},         {"Chloé", "chloe"},
    {"Björn", "bjorn"},   {"Renée", "renee"},       {"Søren", "soren"},     {"Łukasz", "lukasz"},
    {"Ángel", "angel"},   {"François", "francois"}, {"Noah", "noah"},       {"Emma", "emma"},
    {"Liam", "liam"},     {"Olivia", "olivia"},     {"Mia", "mia"},         {"Lucas", "lucas"},
    {"Léa", "lea"},       {"Hugo", "hugo"},         {"Inès", "ines"},       {"Jürgen", "jurgen"},
    {"Maëlle", "maelle"}, {"Raphaël", "raphael"},   {"Sofia", "sofia"},     {"Mateo", "mateo"},
    {"Lena", "lena"},     {"Elias", "elias"},       {"Ava", "ava"},         {"Leo", "leo"},
    {"Nora", "nora"},     {"Oscar", "oscar"},       {"Ida", "ida"},         {"Felix", "felix"},
    {"Clara", "clara"},   {"Jonas", "jonas"},       {"Maja", "maja"},       {"Emil", "emil"},
    {"Alice", "alice"},   {"Adam", "adam"},         {"Eva", "eva"},         {"David", "david"},
    {"Sara", "sara"},     {"Daniel", "daniel"},     {"Laura", "laura"},     {"Marco", "marco"},
    {"Julia", "julia"},   {"Pablo", "pablo"},       {"Lucía", "lucia"},     {"Andrés", "andres"},
    {"Mónica", "monica"}, {"Héctor", "hector"},     {"Iñigo", "inigo"},     {"Agnès", "agnes"},
    {"Hélène", "helene"}, {"Jérôme", "jerome"},     {"Dörte", "dorte"},     {"Jörg", "jorg"},
    {"Zoltán", "zoltan"}, {"Ágnes", "agnes"},       {"Mikaela", "mikaela"}, {"Yusuf", "yusuf"},
    {"Amira", "amira"},   {"Omar", "omar"},         {"Priya", "priya"},     {"Ravi", "ravi"},
    {"Kenji", "kenji"},   {"Yuki", "yuki"},         {"Mei", "mei"},         {"Wei", "wei"},
    {"Ola", "ola"},       {"Kofi", "kofi"},         {"Ama", "ama"},         {"Chidi", "chidi"},
    {"Sven", "sven"},     {"Astrid", "astrid"},     {"Nils", "nils"},       {"Freya", "freya"},
    {"Tomás", "tomas"},   {"Niamh", "niamh"},       {"Seán", "sean"},       {"Aoife", "aoife"},
};
#define NFIRST ((int)(sizeof(first_names) / sizeof(first_names[0])))

typedef struct {
    char id[25];
    char username[NAME_MAX_LEN];
    char name[64];
    int64_t followers;
    int first, surname; /* index of the first name, rank of the surname's word */
} user_t;

static user_t *users;
static int *user_by_rank; /* most followed first */
static zipf_t zipf_first;

/* USERS users; the surname is a word of rank 200..10,199 (not among the commonest). */
static void users_make(void)
{
    users = xcalloc((size_t)conf.users, sizeof(user_t));
    user_by_rank = xcalloc((size_t)conf.users, sizeof(int));
    strset_t seen;
    strset_init(&seen, (size_t)conf.users);
    uint32_t id_secs = 0x5f000000u; /* a fixed time (2020): the same ids at every run */
    for (int u = 0; u < conf.users; u++) {
        user_t *p = &users[u];
        rng_t r = rng_for(3, (uint64_t)u);
        snprintf(p->id, sizeof(p->id), "%08" PRIx32 "5ea2%012x", id_secs, (unsigned)u);
        p->first = zipf_draw(&zipf_first, &r);
        p->surname = 200 + rng_below(&r, 10000 < conf.words - 200 ? 10000 : conf.words - 200);
        const char *fp = first_names[p->first].plain, *sp = words[p->surname].plain;
        char surname[WORD_MAX];
        snprintf(surname, sizeof(surname), "%s", words[p->surname].disp);
        capitalise(surname);
        snprintf(p->name, sizeof(p->name), "%s %s", first_names[p->first].disp, surname);
        for (int attempt = 0;; attempt++) {
            int n, size = (int)sizeof(p->username);
            switch (attempt) {
            case 0:
                n = snprintf(p->username, size, "%s_%s", fp, sp);
                break;
            case 1:
                n = snprintf(p->username, size, "%s%s", fp, sp);
                break;
            case 2:
                n = snprintf(p->username, size, "%s.%s", fp, sp);
                break;
            default:
                n = snprintf(p->username, size, "%s_%.12s%d", fp, sp,
                             rng_below(&r, attempt < 20 ? 100 : 100000));
            }
            if (fits(n, sizeof(p->username)) && strset_add(&seen, p->username))
                break;
        }
        int rank = perm(u, conf.users);
        user_by_rank[rank] = u;
        p->followers = (int64_t)(2e6 / pow(rank + 1, 1.15));
    }
    strset_free(&seen);
}

/* ---------------------------------------------------------------- posts */

static zipf_t zipf_words, zipf_tags, zipf_authors, zipf_users;

typedef struct {
    char id[25], thumb[64];
    const user_t *author;
    char caption[1024];
    const char *tag[5];
    int ntags;
    int64_t ms, likes, comments;
} post_t;

/* Post i of the corpus, spread evenly over [start_ms, start_ms + span_ms). */
static void post_make(int i, int64_t start_ms, int64_t span_ms, post_t *p)
{
    rng_t r = rng_for(4, (uint64_t)i);
    int64_t step = span_ms / conf.posts;
    p->ms = start_ms + span_ms * i / conf.posts + (step > 1 ? (int64_t)rng_below(&r, (int)step) : 0);
    snprintf(p->id, sizeof(p->id), "%08" PRIx64 "5ea0%012x", (uint64_t)(p->ms / 1000), (unsigned)i);
    snprintf(p->thumb, sizeof(p->thumb), "/media/m/%08" PRIx64 "5ea1%012x/thumb.jpg",
             (uint64_t)(p->ms / 1000), (unsigned)i);
    int a = zipf_draw(&zipf_authors, &r);
    p->author = &users[rng_below(&r, 2) ? user_by_rank[a] : perm(a, conf.users)];
    /* tags: 30% none, then 1..5 */
    int k = rng_below(&r, 100);
    p->ntags = k < 30 ? 0 : k < 50 ? 1 : k < 65 ? 2 : k < 80 ? 3 : k < 90 ? 4 : 5;
    for (int t = 0; t < p->ntags; t++) {
        const char *tag = tags[zipf_draw(&zipf_tags, &r)];
        for (int s = 0; s < t; s++)
            if (p->tag[s] == tag)
                tag = NULL;
        if (tag == NULL)
            t--, p->ntags--; /* a repeat: one tag fewer */
        else
            p->tag[t] = tag;
    }
    /* the caption: 5..25 words, the tags in it at random places */
    int nwords = 5 + rng_below(&r, 21), total = nwords + p->ntags, next_tag = 0;
    size_t len = 0;
    for (int w = 0; w < total; w++) {
        char piece[WORD_MAX + 1];
        int tags_left = p->ntags - next_tag, slots_left = total - w;
        if (tags_left > 0 && rng_below(&r, slots_left) < tags_left) {
            snprintf(piece, sizeof(piece), "#%s", p->tag[next_tag++]);
            if (rng_below(&r, 10) == 0)
                capitalise(piece + 1);
        } else {
            const word_t *word = &words[zipf_draw(&zipf_words, &r)];
            snprintf(piece, sizeof(piece), "%s", rng_below(&r, 5) == 0 ? word->plain : word->disp);
            if (len == 0 && rng_below(&r, 2))
                capitalise(piece);
        }
        len += (size_t)snprintf(p->caption + len, sizeof(p->caption) - len, "%s%s", len ? " " : "", piece);
    }
    p->likes = (int64_t)(3 * (pow(1 - rng_unit(&r), -0.9) - 1));
    p->comments = p->likes / 20 + (rng_below(&r, 3) == 0 ? rng_below(&r, 3) : 0);
}

static bson_t *post_doc(const post_t *p)
{
    bson_t *d = bson_new(), arr;
    BSON_APPEND_UTF8(d, "_id", p->id);
    BSON_APPEND_UTF8(d, "a", p->author->id);
    BSON_APPEND_UTF8(d, "u", p->author->username);
    BSON_APPEND_UTF8(d, "c", p->caption);
    bson_append_array_begin(d, "t", -1, &arr);
    for (int t = 0; t < p->ntags; t++) {
        char key[16];
        const char *kp;
        bson_uint32_to_string((uint32_t)t, &kp, key, sizeof(key));
        bson_append_utf8(&arr, kp, -1, p->tag[t], -1);
    }
    bson_append_array_end(d, &arr);
    BSON_APPEND_UTF8(d, "th", p->thumb);
    BSON_APPEND_DATE_TIME(d, "at", p->ms);
    BSON_APPEND_INT64(d, "v", p->ms);
    BSON_APPEND_INT64(d, "l", p->likes);
    BSON_APPEND_INT64(d, "k", p->comments);
    return d;
}

static bson_t *user_doc(const user_t *u, int64_t v)
{
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "_id", u->id);
    BSON_APPEND_UTF8(d, "u", u->username);
    BSON_APPEND_UTF8(d, "n", u->name);
    BSON_APPEND_INT64(d, "f", u->followers);
    BSON_APPEND_INT64(d, "v", v);
    return d;
}

/* ---------------------------------------------------------------- seeding */

/* libmongoc's errors only (FerretDB has no endSessions: a warning at every client's end). */
static void quiet_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void)ud;
    if (level <= MONGOC_LOG_LEVEL_ERROR)
        fprintf(stderr, "%s: %s\n", domain, message);
}

static struct {
    mongoc_uri_t *uri;
    const char *db;
    int64_t now_ms, start_ms, span_ms;
    atomic_int next_batch; /* users' batches first, then posts' */
    atomic_long users_done, posts_done;
    int user_batches, post_batches;
} job;

static void insert_batch(mongoc_collection_t *coll, bson_t **docs, size_t n)
{
    bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
    bson_error_t e;
    if (!mongoc_collection_insert_many(coll, (const bson_t **)docs, n, opts, NULL, &e))
        die(mongoc_collection_get_name(coll), e.message);
    bson_destroy(opts);
    for (size_t i = 0; i < n; i++)
        bson_destroy(docs[i]);
}

/* One connection: takes batches until none is left. */
static void *seed_worker(void *arg)
{
    (void)arg;
    mongoc_client_t *client = mongoc_client_new_from_uri(job.uri);
    mongoc_collection_t *ucoll = mongoc_client_get_collection(client, job.db, "users");
    mongoc_collection_t *pcoll = mongoc_client_get_collection(client, job.db, "posts");
    bson_t *docs[BATCH];
    post_t *p = xcalloc(1, sizeof(post_t));
    for (;;) {
        int b = atomic_fetch_add(&job.next_batch, 1);
        if (b < job.user_batches) {
            int from = b * BATCH, to = from + BATCH < conf.users ? from + BATCH : conf.users;
            for (int u = from; u < to; u++)
                docs[u - from] = user_doc(&users[u], job.now_ms - 400LL * 24 * 3600 * 1000 + u);
            insert_batch(ucoll, docs, (size_t)(to - from));
            atomic_fetch_add(&job.users_done, to - from);
            continue;
        }
        b -= job.user_batches;
        if (b >= job.post_batches)
            break;
        int from = b * BATCH, to = from + BATCH < conf.posts ? from + BATCH : conf.posts;
        for (int i = from; i < to; i++) {
            post_make(i, job.start_ms, job.span_ms, p);
            docs[i - from] = post_doc(p);
        }
        insert_batch(pcoll, docs, (size_t)(to - from));
        atomic_fetch_add(&job.posts_done, to - from);
    }
    free(p);
    mongoc_collection_destroy(ucoll);
    mongoc_collection_destroy(pcoll);
    mongoc_client_destroy(client);
    return NULL;
}

static int64_t doc_int(const bson_t *d, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, d, key) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : -1;
}

/* 1 when a document with that _id is in the collection. */
static int has_id(mongoc_database_t *db, const char *coll_name, const char *id)
{
    bson_error_t e;
    mongoc_collection_t *coll = mongoc_database_get_collection(db, coll_name);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    mongoc_cursor_t *c = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *d;
    int found = mongoc_cursor_next(c, &d);
    if (mongoc_cursor_error(c, &e))
        die(coll_name, e.message);
    mongoc_cursor_destroy(c);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    return found;
}

static const char *doc_str(const bson_t *d, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, d, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
}

/* 1 when the marker names this corpus and the first and last user and post it names are there.
 * (The marker is written last, after the collections were dropped and filled: counting instead
 * takes FerretDB minutes over 1,000,000 documents.) */
static int already_seeded(mongoc_database_t *db)
{
    int ok = 0;
    bson_error_t e;
    mongoc_collection_t *marker = mongoc_database_get_collection(db, "bench_seed");
    bson_t *filter = BCON_NEW("_id", BCON_UTF8("corpus"));
    mongoc_cursor_t *c = mongoc_collection_find_with_opts(marker, filter, NULL, NULL);
    const bson_t *d;
    if (mongoc_cursor_next(c, &d) && doc_int(d, "version") == CORPUS_VERSION &&
        doc_int(d, "users") == conf.users && doc_int(d, "posts") == conf.posts &&
        doc_int(d, "words") == conf.words && doc_int(d, "tags") == conf.tags) {
        ok = has_id(db, "users", doc_str(d, "first_user")) && has_id(db, "users", doc_str(d, "last_user")) &&
             has_id(db, "posts", doc_str(d, "first_post")) && has_id(db, "posts", doc_str(d, "last_post"));
        fprintf(stderr, "bench-search-seed: marker found (seeded at %" PRId64 " ms, in %.1f s)%s\n",
                doc_int(d, "now_ms"), (double)doc_int(d, "seed_ms") / 1000,
                ok ? "" : ": its first and last documents are not all there, seeding again");
    }
    if (mongoc_cursor_error(c, &e))
        die("read bench_seed", e.message);
    mongoc_cursor_destroy(c);
    bson_destroy(filter);
    mongoc_collection_destroy(marker);
    return ok;
}

static void drop(mongoc_database_t *db, const char *name)
{
    bson_error_t e;
    mongoc_collection_t *c = mongoc_database_get_collection(db, name);
    if (!mongoc_collection_drop(c, &e) && strstr(e.message, "not found") == NULL)
        die(name, e.message);
    mongoc_collection_destroy(c);
}

static int cmd_seed(const char *uri_s)
{
    bson_error_t e;
    mongoc_init();
    mongoc_log_set_handler(quiet_log, NULL);
    job.uri = mongoc_uri_new_with_error(uri_s, &e);
    if (job.uri == NULL)
        die("MONGO_URI", e.message);
    job.db = mongoc_uri_get_database(job.uri) != NULL ? mongoc_uri_get_database(job.uri) : "search";
    mongoc_client_t *client = mongoc_client_new_from_uri(job.uri);
    mongoc_database_t *db = mongoc_client_get_database(client, job.db);
    if (!conf.force && already_seeded(db)) {
        fprintf(stderr, "bench-search-seed: already seeded (%d users, %d posts): nothing written\n",
                conf.users, conf.posts);
        goto out;
    }
    drop(db, "bench_seed");
    drop(db, "users");
    drop(db, "posts");

    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    job.now_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    job.span_ms = 2LL * 365 * 24 * 3600 * 1000;
    job.start_ms = job.now_ms - job.span_ms - 60000;
    job.user_batches = (conf.users + BATCH - 1) / BATCH;
    job.post_batches = (conf.posts + BATCH - 1) / BATCH;
    double t0 = now_s();
    pthread_t *threads = xcalloc((size_t)conf.connections, sizeof(pthread_t));
    for (int i = 0; i < conf.connections; i++)
        if (pthread_create(&threads[i], NULL, seed_worker, NULL) != 0)
            die("pthread_create", NULL);
    /* progress every 10 s: documents so far and the rate of the last 10 s */
    long last = 0;
    double last_t = t0;
    while (atomic_load(&job.users_done) + atomic_load(&job.posts_done) < (long)conf.users + conf.posts) {
        usleep(100000);
        double t = now_s();
        if (t - last_t < 10)
            continue;
        long done = atomic_load(&job.users_done) + atomic_load(&job.posts_done);
        fprintf(stderr, "bench-search-seed: %.0f s: %ld users, %ld posts (%.0f docs/s lately)\n", t - t0,
                atomic_load(&job.users_done), atomic_load(&job.posts_done), (done - last) / (t - last_t));
        last = done;
        last_t = t;
    }
    for (int i = 0; i < conf.connections; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    double secs = now_s() - t0;
    mongoc_collection_t *marker = mongoc_database_get_collection(db, "bench_seed");
    post_t *first = xcalloc(1, sizeof(post_t)), *final = xcalloc(1, sizeof(post_t));
    post_make(0, job.start_ms, job.span_ms, first);
    post_make(conf.posts - 1, job.start_ms, job.span_ms, final);
    bson_t *m = BCON_NEW("_id", BCON_UTF8("corpus"), "version", BCON_INT32(CORPUS_VERSION), "users",
                         BCON_INT32(conf.users), "posts", BCON_INT32(conf.posts), "words",
                         BCON_INT32(conf.words), "tags", BCON_INT32(conf.tags), "now_ms",
                         BCON_INT64(job.now_ms), "seed_ms", BCON_INT64((int64_t)(secs * 1000)), "first_user",
                         BCON_UTF8(users[0].id), "last_user", BCON_UTF8(users[conf.users - 1].id),
                         "first_post", BCON_UTF8(first->id), "last_post", BCON_UTF8(final->id));
    free(first);
    free(final);
    if (!mongoc_collection_insert_one(marker, m, NULL, NULL, &e))
        die("bench_seed", e.message);
    bson_destroy(m);
    mongoc_collection_destroy(marker);
    fprintf(
        stderr,
        "bench-search-seed: %d users and %d posts in %.1f s (%.0f docs/s, %d connections, batches of %d)\n",
        conf.users, conf.posts, secs, (conf.users + conf.posts) / secs, conf.connections, BATCH);
out:
    mongoc_database_destroy(db);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(job.uri);
    mongoc_cleanup();
    return 0;
}

/* ---------------------------------------------------------------- queries */

enum { Q_POSTS, Q_HASHTAG, Q_USERS, Q_TAGS, Q_AUTOCOMPLETE, Q_KINDS };
static const char *kind_names[Q_KINDS] = {"posts", "hashtag", "users", "tags", "autocomplete"};
static const int mix_percent[Q_KINDS] = {60, 10, 15, 5, 10};

/* Appends s percent-encoded (all but unreserved characters) to out. */
static void url_append(char *out, size_t size, const char *s)
{
    size_t len = strlen(out);
    for (const unsigned char *c = (const unsigned char *)s; *c && len + 4 < size; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("-._~", *c))
            out[len++] = (char)*c;
        else
            len += (size_t)snprintf(out + len, size - len, "%%%02X", *c);
    }
    out[len] = '\0';
}

/* The first n characters (ASCII here) of s: prefixes are drawn from plain forms. */
static void prefix_of(char *out, size_t size, const char *s, int n)
{
    snprintf(out, size, "%.*s", n, s);
}

static const word_t *query_word(rng_t *r, char *buf, size_t size)
{
    const word_t *w = &words[zipf_draw(&zipf_words, r)];
    snprintf(buf, size, "%s", rng_below(r, 2) ? w->disp : w->plain);
    return w;
}

/* One request path of the given kind. */
static void query_make(int kind, rng_t *r, char *path, size_t size)
{
    char q[128] = "", a[WORD_MAX], b[WORD_MAX];
    const user_t *u;
    switch (kind) {
    case Q_POSTS: /* 1 word (70%) or 2 */
        query_word(r, a, sizeof(a));
        if (rng_below(r, 10) < 3) {
            query_word(r, b, sizeof(b));
            snprintf(q, sizeof(q), "%s %s", a, b);
        } else {
            snprintf(q, sizeof(q), "%s", a);
        }
        snprintf(path, size, "/v1/search?q=");
        break;
    case Q_HASHTAG:
        snprintf(q, sizeof(q), "#%s", tags[zipf_draw(&zipf_tags, r)]);
        snprintf(path, size, "/v1/search?q=");
        break;
    case Q_USERS: { /* a first name, a surname, both, or a username's first 3-6 letters */
        u = &users[user_by_rank[zipf_draw(&zipf_users, r)]];
        int k = rng_below(r, 10);
        const word_t *s = &words[u->surname];
        if (k < 4)
            snprintf(q, sizeof(q), "%s",
                     rng_below(r, 2) ? first_names[u->first].disp : first_names[u->first].plain);
        else if (k < 7)
            snprintf(q, sizeof(q), "%s", rng_below(r, 2) ? s->disp : s->plain);
        else if (k < 8)
            snprintf(q, sizeof(q), "%s %s", first_names[u->first].disp, s->disp);
        else
            prefix_of(q, sizeof(q), u->username, 3 + rng_below(r, 4));
        snprintf(path, size, "/v1/search?type=users&q=");
        break;
    }
    case Q_TAGS: { /* a tag's first 2 letters .. the whole tag */
        const char *t = tags[zipf_draw(&zipf_tags, r)];
        int n = (int)strlen(t);
        prefix_of(q, sizeof(q), t, 2 + rng_below(r, n - 1));
        snprintf(path, size, "/v1/search?type=tags&q=");
        break;
    }
    default: { /* 1-4 letters: of a name (users and tags), "#" a tag's, "@" a username's */
        int k = rng_below(r, 3), n = 1 + rng_below(r, 4);
        u = &users[user_by_rank[zipf_draw(&zipf_users, r)]];
        if (k == 0) {
            prefix_of(a, sizeof(a), rng_below(r, 2) ? first_names[u->first].plain : words[u->surname].plain,
                      n);
            snprintf(q, sizeof(q), "%s", a);
        } else if (k == 1) {
            prefix_of(a, sizeof(a), tags[zipf_draw(&zipf_tags, r)], n);
            snprintf(q, sizeof(q), "#%s", a);
        } else {
            prefix_of(a, sizeof(a), u->username, n);
            snprintf(q, sizeof(q), "@%s", a);
        }
        snprintf(path, size, "/v1/search/autocomplete?q=");
    }
    }
    url_append(path, size, q);
}

static void write_file(const char *dir, const char *name, int file, int fixed_kind)
{
    char fn[4096], path[512];
    snprintf(fn, sizeof(fn), "%s/%s-%d.txt", dir, name, file);
    FILE *f = fopen(fn, "w");
    if (f == NULL)
        die(fn, strerror(errno));
    rng_t r = rng_for(5, (uint64_t)(fixed_kind + 1) * 1000 + (uint64_t)file);
    for (int i = 0; i < conf.lines; i++) {
        int kind = fixed_kind;
        if (kind < 0) {
            int x = rng_below(&r, 100);
            for (kind = 0; x >= mix_percent[kind]; kind++)
                x -= mix_percent[kind];
        }
        query_make(kind, &r, path, sizeof(path));
        fprintf(f, "%s\n", path);
    }
    if (fclose(f) != 0)
        die(fn, strerror(errno));
}

static int cmd_queries(const char *dir)
{
    mkdir(dir, 0777);
    for (int file = 0; file < conf.files; file++) {
        write_file(dir, "mix", file, -1);
        for (int k = 0; k < Q_KINDS; k++)
            write_file(dir, kind_names[k], file, k);
    }
    fprintf(stderr, "bench-search-seed: %d files of %d paths per kind (and mix) in %s\n", conf.files,
            conf.lines, dir);
    return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "seed") != 0 && strcmp(argv[1], "queries") != 0)) {
        fprintf(stderr,
                "usage: %s seed MONGO_URI [-u users] [-p posts] [-w words] [-g tags] [-j connections] [-f]\n"
                "       %s queries OUT_DIR [-u users] [-w words] [-g tags] [-n lines] [-P files]\n",
                argv[0], argv[0]);
        return 2;
    }
    const char *cmd = argv[1], *target = argv[2];
    optind = 3;
    int opt;
    while ((opt = getopt(argc, argv, "u:p:w:g:j:fn:P:")) != -1) {
        switch (opt) {
        case 'u':
            conf.users = atoi(optarg);
            break;
        case 'p':
            conf.posts = atoi(optarg);
            break;
        case 'w':
            conf.words = atoi(optarg);
            break;
        case 'g':
            conf.tags = atoi(optarg);
            break;
        case 'j':
            conf.connections = atoi(optarg);
            break;
        case 'f':
            conf.force = 1;
            break;
        case 'n':
            conf.lines = atoi(optarg);
            break;
        case 'P':
            conf.files = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    if (conf.users < 100 || conf.posts < 1 || conf.words < 1000 || conf.tags < 10 || conf.connections < 1 ||
        conf.lines < 1 || conf.files < 1 || conf.tags > conf.words * 4)
        die("sizes out of range (users >= 100, words >= 1000, tags 10..4 x words)", NULL);

    double t0 = now_s();
    words = xcalloc((size_t)conf.words, sizeof(word_t));
    for (int i = 0; i < conf.words; i++)
        word_make(i, &words[i]);
    zipf_init(&zipf_words, conf.words, 1.0);
    zipf_init(&zipf_tags, conf.tags, 1.0);
    zipf_init(&zipf_first, NFIRST, 0.8);
    zipf_init(&zipf_authors, conf.users, 0.8);
    zipf_init(&zipf_users, conf.users, 1.0);
    tags_make();
    users_make();
    fprintf(stderr, "bench-search-seed: vocabulary, tags and users made (%.1f s)\n", now_s() - t0);
    return strcmp(cmd, "seed") == 0 ? cmd_seed(target) : cmd_queries(target);
}
