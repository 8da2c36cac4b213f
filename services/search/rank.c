/* rank.c -- how results are ranked: BM25 over the ranked rows only, with document frequencies
 * from a per-copy cache; the in-order bonus; engagement, recency and followers.
 *
 * FTS5's own bm25() reads the whole doclist of every phrase of the query, on every query, to
 * count the rows that hold it: 29 ms for a word in 700,000 posts however few rows are ranked.
 * search_bm25() takes those counts as an argument instead (rank_terms_t): the query finds them in
 * a cache of this copy, counted once and again after RANK_DF_TTL_MS (they change slowly, and a
 * weight a few minutes old ranks the same; beyond RANK_DF_COUNT_MAX rows, estimated), and only when the query
 * has two phrases or more (with one, its weight is a constant factor of every score: the order does not
 * depend on it). */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "log/log.h"
#include "search.h"

#define RANK_K1 1.2
#define RANK_B 0.75
#define RANK_DF_TTL_MS (10 * 60 * 1000) /* a cached document frequency is counted again after */
#define RANK_DF_MAX 65536               /* cached counts at most (the cache is emptied beyond) */
#define RANK_DF_COUNT_MAX 20000         /* matches counted at most for a frequency (beyond: estimated) */
#define RANK_INST_MAX 64                /* caption positions of a phrase looked at for the bonus */
#define RANK_TERMS_TYPE "search_terms"  /* sqlite3_bind_pointer's type of a rank_terms_t */

/* ================================================================ document frequencies */

typedef struct {
    int64_t n;
    int64_t at_ms;
} rank__df_t;

struct search_rank {
    pthread_mutex_t lock;
    GHashTable *df; /* "<table>\x1f<expression>" -> rank__df_t */
};

search_rank_t *rank_new(void)
{
    search_rank_t *r = xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->df = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return r;
}

void rank_free(search_rank_t *r)
{
    if (r == NULL)
        return;
    g_hash_table_destroy(r->df);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Rows of table (posts_fts or users_fts) matching expr, from the cache or counted on db. -1 when
 * the count failed. */
static int64_t rank__df(search_rank_t *r, sqlite3 *db, const char *table, const char *expr)
{
    char *key = g_strconcat(table, "\x1f", expr, NULL);
    int64_t now = core_wall_ms(), n = -1;
    pthread_mutex_lock(&r->lock);
    rank__df_t *c = g_hash_table_lookup(r->df, key);
    if (c != NULL && now - c->at_ms < RANK_DF_TTL_MS)
        n = c->n;
    pthread_mutex_unlock(&r->lock);
    if (n >= 0) {
        g_free(key);
        return n;
    }
    /* counted outside the lock (two workers may count the same phrase at once, harmlessly), from
     * the newest row, up to RANK_DF_COUNT_MAX: beyond, the count is extrapolated from the share of
     * the rowids (creation times for posts, hashes for users) that those matches covered */
    static const char *const sql[2] = {
        "SELECT count(*), min(rowid), (SELECT min(rid) FROM posts), (SELECT max(rid) FROM posts)"
        " FROM (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?2)",
        "SELECT count(*), min(rowid), (SELECT min(rid) FROM users), (SELECT max(rid) FROM users)"
        " FROM (SELECT rowid FROM users_fts WHERE users_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?2)"};
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql[strcmp(table, "users_fts") == 0], -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, RANK_DF_COUNT_MAX);
        if (sqlite3_step(st) == SQLITE_ROW) {
            n = sqlite3_column_int64(st, 0);
            double seen = sqlite3_column_double(st, 1), first = sqlite3_column_double(st, 2),
                   last = sqlite3_column_double(st, 3);
            if (n >= RANK_DF_COUNT_MAX && last > seen)
                n = (int64_t)((double)n * (last - first) / (last - seen));
        }
    }
    if (n < 0)
        log_error(NULL, "search: counting %s in %s: %s", expr, table, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (n < 0) {
        g_free(key);
        return -1;
    }
    rank__df_t *v = g_new(rank__df_t, 1);
    v->n = n;
    v->at_ms = now;
    pthread_mutex_lock(&r->lock);
    if (g_hash_table_size(r->df) >= RANK_DF_MAX)
        g_hash_table_remove_all(r->df);
    g_hash_table_replace(r->df, key, v);
    pthread_mutex_unlock(&r->lock);
    return n;
}

int rank_terms(search_rank_t *r, sqlite3 *db, const char *table, const search_words_t *words, int users,
               rank_terms_t *out)
{
    memset(out, 0, sizeof(*out));
    out->n = (int)words->n;
    size_t plain = 0;
    for (size_t i = 0; i < words->n; i++)
        plain += words->w[i].sigil == 0;
    out->ordered = !users && plain >= 2 && plain == words->n;
    if (words->n < 2)
        return 0; /* df 0: one phrase weighs the same in every row */
    for (size_t i = 0; i < words->n; i++) {
        char *expr = users ? words_users_phrase(&words->w[i]) : words_posts_phrase(&words->w[i]);
        out->df[i] = rank__df(r, db, table, expr);
        g_free(expr);
        if (out->df[i] < 0)
            return -1;
    }
    return 0;
}

/* ================================================================ search_bm25() */

/* What one query's rows share: the weights of its phrases. */
typedef struct {
    int nphrase;
    double idf[SEARCH_MAX_WORDS];
    double idf_ordered; /* the words in order, as one more phrase (rank_terms_t.ordered) */
    double avgdl;       /* tokens of a row on average, all columns */
} rank__query_t;

static rank__query_t *rank__query(const Fts5ExtensionApi *api, Fts5Context *fts, const rank_terms_t *t)
{
    rank__query_t *q = api->xGetAuxdata(fts, 0);
    if (q != NULL)
        return q;
    q = sqlite3_malloc(sizeof(*q));
    if (q == NULL)
        return NULL;
    memset(q, 0, sizeof(*q));
    sqlite3_int64 rows = 0, tokens = 0;
    api->xRowCount(fts, &rows);
    for (int c = 0; c < api->xColumnCount(fts); c++) {
        sqlite3_int64 n = 0;
        api->xColumnTotalSize(fts, c, &n);
        tokens += n;
    }
    q->avgdl = rows > 0 ? (double)tokens / (double)rows : 1;
    q->nphrase = api->xPhraseCount(fts);
    if (q->nphrase > SEARCH_MAX_WORDS)
        q->nphrase = SEARCH_MAX_WORDS;
    for (int i = 0; i < q->nphrase; i++) {
        /* Lucene's form: always positive, small for a phrase in most rows */
        double df = t != NULL && i < t->n ? (double)t->df[i] : 0;
        if (df > (double)rows)
            df = (double)rows;
        q->idf[i] = t != NULL && t->n >= 2 ? log(1 + ((double)rows - df + 0.5) / (df + 0.5)) : 1;
        q->idf_ordered += q->idf[i];
    }
    if (api->xSetAuxdata(fts, q, sqlite3_free) != SQLITE_OK)
        return NULL; /* xSetAuxdata freed it */
    return q;
}

/* Times the phrases occur one after the other, in query order, in column col. */
static int rank__in_order(const Fts5ExtensionApi *api, Fts5Context *fts, int nphrase, int col)
{
    int off[SEARCH_MAX_WORDS][RANK_INST_MAX], noff[SEARCH_MAX_WORDS];
    for (int i = 0; i < nphrase; i++) {
        Fts5PhraseIter it;
        int c = -1, o = -1;
        noff[i] = 0;
        for (api->xPhraseFirst(fts, i, &it, &c, &o); c >= 0; api->xPhraseNext(fts, &it, &c, &o))
            if (c == col && noff[i] < RANK_INST_MAX)
                off[i][noff[i]++] = o;
        if (noff[i] == 0)
            return 0;
    }
    int times = 0;
    for (int k = 0; k < noff[0]; k++) {
        int at = off[0][k] + api->xPhraseSize(fts, 0), ok = 1;
        for (int i = 1; i < nphrase && ok; i++) {
            ok = 0;
            for (int j = 0; j < noff[i] && !ok; j++)
                ok = off[i][j] == at;
            at += api->xPhraseSize(fts, i);
        }
        times += ok;
    }
    return times;
}

/* search_bm25(fts_table, terms, weight of column 0, of column 1, ...): the row's BM25 (positive;
 * higher is better). terms is a rank_terms_t bound with sqlite3_bind_pointer (RANK_TERMS_TYPE), or
 * NULL: every phrase weighs the same. Per phrase, the tf is the sum over columns of its
 * occurrences times the column's weight, as FTS5's bm25() takes it; the row's length is all its
 * columns' tokens. */
static void rank__bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                       sqlite3_value **val)
{
    const rank_terms_t *t = nval > 0 ? sqlite3_value_pointer(val[0], RANK_TERMS_TYPE) : NULL;
    rank__query_t *q = rank__query(api, fts, t);
    if (q == NULL) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    double tf[SEARCH_MAX_WORDS] = {0};
    int ninst = 0;
    if (api->xInstCount(fts, &ninst) != SQLITE_OK) {
        sqlite3_result_error(ctx, "search_bm25: no instances", -1);
        return;
    }
    for (int k = 0; k < ninst; k++) {
        int p, c, o;
        if (api->xInst(fts, k, &p, &c, &o) == SQLITE_OK && p < q->nphrase)
            tf[p] += (1 + c < nval) ? sqlite3_value_double(val[1 + c]) : 1.0; /* the column's weight */
    }
    int len = 0;
    api->xColumnSize(fts, -1, &len);
    double norm = RANK_K1 * (1 - RANK_B + RANK_B * (double)len / q->avgdl), score = 0;
    for (int i = 0; i < q->nphrase; i++)
        score += q->idf[i] * tf[i] * (RANK_K1 + 1) / (tf[i] + norm);
    if (t != NULL && t->ordered && q->nphrase >= 2) {
        double w = 1 < nval ? sqlite3_value_double(val[1]) : 1.0,
               f = w * rank__in_order(api, fts, q->nphrase, 0);
        score += q->idf_ordered * f * (RANK_K1 + 1) / (f + norm);
    }
    sqlite3_result_double(ctx, score);
}

/* ================================================================ blending */

/* search_rank(relevance, likes, comments, created_ms, now_ms): README's formula for posts. */
static void rank__posts(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    double relevance = sqlite3_value_double(argv[0]);
    double likes = fmax(0, sqlite3_value_double(argv[1])), comments = fmax(0, sqlite3_value_double(argv[2]));
    double age_days = fmax(0, (sqlite3_value_double(argv[4]) - sqlite3_value_double(argv[3])) / 86400000.0);
    double engagement = 1 + 0.25 * log1p(likes + 2 * comments);
    double recency = 0.5 + 0.5 * exp2(-age_days / 30);
    sqlite3_result_double(ctx, relevance * engagement * recency);
}

/* search_rank_user(relevance, followers, exact): README's formula for users. */
static void rank__users(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    double relevance = sqlite3_value_double(argv[0]);
    double followers = fmax(0, sqlite3_value_double(argv[1]));
    sqlite3_result_double(ctx,
                          relevance * (1 + 0.25 * log1p(followers)) * (sqlite3_value_int(argv[2]) ? 10 : 1));
}

/* FTS5's API of db (NULL when FTS5 is missing). */
static fts5_api *rank__fts5(sqlite3 *db)
{
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_pointer(st, 1, &api, "fts5_api_ptr", NULL);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return api;
}

int rank_register(sqlite3 *db)
{
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC;
    fts5_api *fts5 = rank__fts5(db);
    if (fts5 == NULL || fts5->iVersion < 2 ||
        fts5->xCreateFunction(fts5, "search_bm25", NULL, rank__bm25, NULL) != SQLITE_OK ||
        sqlite3_create_function(db, "search_rank", 5, flags, NULL, rank__posts, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(db, "search_rank_user", 3, flags, NULL, rank__users, NULL, NULL) !=
            SQLITE_OK) {
        log_error(NULL, "search: the ranking functions could not be registered: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

void rank_bind_terms(sqlite3_stmt *st, int i, rank_terms_t *t)
{
    sqlite3_bind_pointer(st, i, t, RANK_TERMS_TYPE, NULL);
}
