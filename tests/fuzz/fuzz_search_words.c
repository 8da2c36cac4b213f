/* fuzz_search_words.c -- libFuzzer target for search's query words (words.c): whatever a client
 * puts in ?q=, the FTS5 expressions made of it must be accepted by SQLite, never an engine error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../libs/core/core.c"
#include "../../services/search/words.c"

#include "fuzz.h"

static sqlite3 *db;

/* Runs expr as a MATCH of table: it must prepare and run to its end. */
static void fuzz_match(const char *table, const char *expr)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT rowid, bm25(%s) FROM %s WHERE %s MATCH ?1 ORDER BY rank", table, table, table);
    sqlite3_stmt *st = NULL;
    FUZZ_CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
    sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        fprintf(stderr, "%s MATCH '%s': %s\n", table, expr, sqlite3_errmsg(db));
    FUZZ_CHECK(rc == SQLITE_DONE);
    sqlite3_finalize(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (db == NULL) { /* the tables as index.c makes them, with a few rows */
        FUZZ_CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
        FUZZ_CHECK(sqlite3_exec(db,
                                "CREATE VIRTUAL TABLE posts_fts USING fts5(caption, tags, username,"
                                " tokenize=\"" SEARCH_FTS_TOKENIZE "\");"
                                "CREATE VIRTUAL TABLE users_fts USING fts5(username, name,"
                                " tokenize=\"" SEARCH_FTS_TOKENIZE "\", prefix='1 2 3');"
                                "INSERT INTO posts_fts VALUES ('sunset at the beach #sea', 'sea', 'bob_smith'),"
                                " ('Café au lait', 'café', 'zoë');"
                                "INSERT INTO users_fts VALUES ('bob_smith', 'Bob Smith'), ('zoe', 'Zoë Ångström');",
                                NULL, NULL, NULL) == SQLITE_OK);
    }
    char *q = malloc(size + 1);
    FUZZ_CHECK(q != NULL);
    memcpy(q, data, size);
    q[size] = '\0';
    /* the route passes only valid UTF-8 without NUL; anything else is refused before */
    if (g_utf8_validate(q, -1, NULL)) {
        search_words_t w;
        words_split(q, &w);
        FUZZ_CHECK(w.n <= SEARCH_MAX_WORDS);
        for (size_t i = 0; i < w.n; i++) {
            FUZZ_CHECK(w.w[i].text[0] != '\0' && strchr(w.w[i].text, '"') == NULL);
            FUZZ_CHECK(g_utf8_validate(w.w[i].text, -1, NULL));
            FUZZ_CHECK(w.w[i].sigil == 0 || w.w[i].sigil == '#' || w.w[i].sigil == '@');
        }
        if (w.n > 0) {
            char *m = words_posts_match(&w);
            fuzz_match("posts_fts", m);
            g_free(m);
            m = words_users_match(&w);
            fuzz_match("users_fts", m);
            g_free(m);
        }
        words_free(&w);
        char *folded = words_fold(q, -1);
        FUZZ_CHECK(folded != NULL && g_utf8_validate(folded, -1, NULL));
        g_free(folded);
    }
    free(q);
    return 0;
}
