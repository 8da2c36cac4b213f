/* test_rank.c -- search_bm25(): the order of FTS5's bm25() for one phrase, document frequencies
 * for more, the in-order bonus, column weights; the cache of document frequencies. */
#include <criterion/criterion.h>
#include <glib.h>

#include "../../../../services/search/rank.c"
#include "../../../../services/search/words.c"

static sqlite3 *db;

static void exec(const char *sql)
{
    char *err = NULL;
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &err), SQLITE_OK, "%s: %s", sql, err ? err : "");
}

static void setup(void)
{
    cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
    cr_assert_eq(rank_register(db), 0);
    /* as index.c makes them: the FTS table's content in posts */
    exec("CREATE TABLE posts(rid INTEGER PRIMARY KEY, caption TEXT, tags TEXT, username TEXT)");
    exec("CREATE VIRTUAL TABLE posts_fts USING fts5(caption, tags, username, content='posts', "
         "content_rowid='rid',"
         " tokenize=\"" SEARCH_FTS_TOKENIZE "\")");
    exec("CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN INSERT INTO posts_fts(rowid, caption, tags, "
         "username)"
         " VALUES (new.rid, new.caption, new.tags, new.username); END");
}

static void teardown(void)
{
    sqlite3_close(db);
}

static void post(sqlite3_int64 rowid, const char *caption, const char *tags)
{
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "INSERT INTO posts(rid, caption, tags, username) VALUES (?1, ?2, ?3, 'someone')",
                       -1, &st, NULL);
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_text(st, 2, caption, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, tags, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* The rowids matching match, best first by sql's score (terms bound as ?2 when given), as "1,2,3". */
static char *order(const char *sql, const char *match, rank_terms_t *terms)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    if (terms != NULL)
        rank_bind_terms(st, 2, terms);
    GString *out = g_string_new("");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        g_string_append_printf(out, "%s%lld", out->len ? "," : "", (long long)sqlite3_column_int64(st, 0));
    cr_assert_eq(rc, SQLITE_DONE, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return g_string_free(out, FALSE);
}

static const char ours[] = "SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?1"
                           " ORDER BY search_bm25(posts_fts, ?2, 1.0, 2.0, 1.5) DESC, rowid";
static const char fts5s[] = "SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?1"
                            " ORDER BY bm25(posts_fts, 1.0, 2.0, 1.5), rowid";

Test(search_bm25, one_phrase_orders_as_fts5_bm25, .init = setup, .fini = teardown)
{
    /* rows of different lengths, the word once or more, in the caption or the tags (weighed 2) */
    static const char *const words[] = {"sea", "sky", "sand", "wave", "blue", "shell", "dune"};
    GRand *rnd = g_rand_new_with_seed(7);
    for (int i = 1; i <= 200; i++) {
        GString *c = g_string_new(""), *t = g_string_new("");
        int n = g_rand_int_range(rnd, 1, 30);
        for (int k = 0; k < n; k++)
            g_string_append_printf(c, "%s ", words[g_rand_int_range(rnd, 0, 7)]);
        if (g_rand_int_range(rnd, 0, 4) == 0)
            g_string_append_printf(t, "%s", words[g_rand_int_range(rnd, 0, 7)]);
        post(i, c->str, t->str);
        g_string_free(c, TRUE);
        g_string_free(t, TRUE);
    }
    g_rand_free(rnd);
    /* "dune" is in less than half the rows, as FTS5's bm25() needs for a weight above 0 */
    char *a = order(ours, "\"dune\"", NULL), *b = order(fts5s, "\"dune\"", NULL);
    cr_assert_gt(strlen(a), 20);
    cr_assert_str_eq(a, b);
    g_free(a);
    g_free(b);
    a = order(ours, "tags : \"shell\"", NULL), b = order(fts5s, "tags : \"shell\"", NULL);
    cr_assert_str_eq(a, b);
    g_free(a);
    g_free(b);
}

Test(search_bm25, document_frequencies_weigh_the_phrases, .init = setup, .fini = teardown)
{
    post(1, "common common rare filler", "");
    post(2, "common rare rare filler", "");
    rank_terms_t t = {.n = 2, .df = {1000, 2}}; /* "common" in 1,000 rows, "rare" in 2 */
    for (int i = 3; i < 1000; i++)
        post(i, "common", "");
    char *got = order(ours, "\"common\" \"rare\"", &t);
    cr_assert_str_eq(got, "2,1", "the rarer word counts more");
    g_free(got);
    t.df[0] = 2, t.df[1] = 1000; /* the other way round */
    got = order(ours, "\"common\" \"rare\"", &t);
    cr_assert_str_eq(got, "1,2");
    g_free(got);
}

Test(search_bm25, words_in_order_rank_higher, .init = setup, .fini = teardown)
{
    post(1, "blue sea and sky", "");
    post(2, "sea blue and sky", "");
    post(3, "sky and blue sea", "");
    rank_terms_t t = {.n = 2, .df = {3, 3}, .ordered = 1};
    char *got = order(ours, "\"blue\" \"sea\"", &t);
    cr_assert_str_eq(got, "1,3,2");
    g_free(got);
    t.ordered = 0; /* without the bonus the three are alike */
    got = order(ours, "\"blue\" \"sea\"", &t);
    cr_assert_str_eq(got, "1,2,3");
    g_free(got);
}

Test(search_bm25, column_weights, .init = setup, .fini = teardown)
{
    post(1, "sunset here", "other");
    post(2, "here other", "sunset");
    char *got = order(ours, "\"sunset\"", NULL);
    cr_assert_str_eq(got, "2,1", "the tags weigh 2, the caption 1");
    g_free(got);
}

Test(rank_terms, counted_once_then_cached, .init = setup, .fini = teardown)
{
    search_rank_t *r = rank_new();
    post(1, "alpha beta", "");
    post(2, "alpha gamma", "#beta");
    search_words_t w;
    words_split("alpha #beta", &w);
    rank_terms_t t;
    cr_assert_eq(rank_terms(r, db, "posts_fts", &w, 0, &t), 0);
    cr_assert_eq(t.n, 2);
    cr_assert_eq(t.df[0], 2);
    cr_assert_eq(t.df[1], 1, "#beta: in the tags only");
    cr_assert_eq(t.ordered, 0, "a #tag is no caption word");
    post(3, "alpha", "");
    cr_assert_eq(rank_terms(r, db, "posts_fts", &w, 0, &t), 0);
    cr_assert_eq(t.df[0], 2, "from the cache");
    words_free(&w);

    words_split("alpha", &w);
    cr_assert_eq(rank_terms(r, db, "posts_fts", &w, 0, &t), 0);
    cr_assert_eq(t.n, 1);
    cr_assert_eq(t.df[0], 0, "one phrase: not counted");
    words_free(&w);

    words_split("alpha gamma", &w);
    cr_assert_eq(rank_terms(r, db, "posts_fts", &w, 0, &t), 0);
    cr_assert_eq(t.ordered, 1);
    cr_assert_eq(t.df[1], 1);
    words_free(&w);
    rank_free(r);
}

Test(rank_terms, beyond_the_count_estimated_from_the_rowids_covered, .init = setup, .fini = teardown)
{
    exec("BEGIN");
    for (int i = 1; i <= 50000; i++) /* "even" in every other row, spread evenly */
        post(i, i % 2 == 0 ? "even row" : "odd row", "");
    exec("COMMIT");
    search_rank_t *r = rank_new();
    search_words_t w;
    words_split("even odd", &w);
    rank_terms_t t;
    cr_assert_eq(rank_terms(r, db, "posts_fts", &w, 0, &t), 0);
    cr_assert(t.df[0] > 24500 && t.df[0] < 25500, "about 25,000: %lld", (long long)t.df[0]);
    cr_assert(t.df[1] > 24500 && t.df[1] < 25500, "about 25,000: %lld", (long long)t.df[1]);
    words_free(&w);
    rank_free(r);
}
