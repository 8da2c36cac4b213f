/* search.h -- what the search daemon's files share: configuration, documents, the index. */
#ifndef SEARCH_H
#define SEARCH_H

#include <pthread.h>
#include <stdint.h>

#include <sqlite3.h>

#include "db/db.h"
#include "metrics/metrics.h"
#include "mq/mq.h"
#include "rpc/rpc.h"
#include "svc/svc.h"

/* The topic exchange on which the documents' writer tells every copy what changed: routing key
 * "user", "post" or "block", body the document's id (text/plain). */
#define SEARCH_SYNC_EXCHANGE "search.sync"

typedef struct {
    svc_conf_t svc;
    char *mongo_uri;
    char *index_dir;
    long candidates;     /* posts ranked at most per query (the newest matches) */
    long purge_after_ms; /* age of tombstones (deleted posts and accounts) that are removed */
} search_conf_t;

typedef struct search_index search_index_t;
typedef struct search_rank search_rank_t;
typedef struct index_db index_db_t;

typedef struct {
    const search_conf_t *conf;
    db_t *db;
    search_index_t *index;
    search_rank_t *rank; /* document frequencies */
    metrics_registry_t *metrics;
} search_t;

/* One svc worker: its publisher of sync messages and its reader of the index. */
typedef struct {
    search_t *s;
    mq_t *pub;          /* confirms; search.sync */
    index_db_t *reader; /* opened on first use, reopened when the index is rebuilt */
    unsigned reader_gen;
} search_worker_t;

/* FNV-1a of s continuing from h (start with SEARCH_HASH_INIT): buckets, lock stripes, rowids. */
#define SEARCH_HASH_INIT 2166136261u
static inline uint32_t search_hash(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* ---------------------------------------------------------------- docs.c: documents from events */

/* Handler of search.events (an svc worker connection; ud is the search_worker_t). */
mq_disposition_t docs_on_event(mq_t *mq, const mq_message_t *msg, void *ud);
/* Removes tombstones older than conf->purge_after_ms. 0 or -1. */
int docs_purge(search_t *s);

/* ---------------------------------------------------------------- index.c: the full-text index */

/* Starts the index thread: its own exclusive queue on search.sync, a first build from MongoDB
 * (again after every lost broker connection), then every change. 0 or -1. */
int index_start(search_t *s);
void index_stop(search_t *s);
/* 1 once a first build is done. */
int index_ready(search_t *s);
/* The worker's reader of the current index (reopened after a rebuild), or NULL while none is
 * built. Borrowed by the worker. */
sqlite3 *index_reader(search_worker_t *w);
/* The worker's statement of sql (a literal: kept by its address) on its reader, prepared once per
 * index file, reset and unbound; NULL after logging why. Call index_reader first. Borrowed; reset it
 * when done (a statement left stepping holds its read). */
sqlite3_stmt *index_stmt(search_worker_t *w, const char *sql);
/* Closes the worker's reader and its statements. */
void index_reader_close(search_worker_t *w);

/* ---------------------------------------------------------------- words.c: queries to FTS5 */

/* The tokenizer of both full-text tables: case and diacritics folded, '_' inside words. */
#define SEARCH_FTS_TOKENIZE "unicode61 remove_diacritics 2 tokenchars '_'"
#define SEARCH_MAX_WORDS 16 /* words of a query that count */

typedef struct {
    char *text; /* g_malloc'd, as written (FTS5 folds it) */
    char sigil; /* '#', '@' or 0 */
} search_word_t;

typedef struct {
    search_word_t w[SEARCH_MAX_WORDS];
    size_t n;
} search_words_t;

/* Picks the first SEARCH_MAX_WORDS words out of q (valid UTF-8) into out; free with words_free. */
void words_split(const char *q, search_words_t *out);
void words_free(search_words_t *w);
/* The FTS5 expression of posts_fts for w (n > 0): every word's phrase (words_posts_phrase), phrase
 * i being word i. g_free it. */
char *words_posts_match(const search_words_t *w);
/* The FTS5 expression of users_fts: every word's phrase (words_users_phrase). g_free it. */
char *words_users_match(const search_words_t *w);
/* One word's phrase in posts_fts: #word in tags, @word in username, others in any column. g_free it. */
char *words_posts_phrase(const search_word_t *w);
/* One word's phrase in users_fts: a prefix of a word of the username (only there for @word) or of
 * the name. g_free it. */
char *words_users_phrase(const search_word_t *w);
/* NFKC of the case folding (GLib), as publication makes hashtags; g_free it. NULL if s is not
 * valid UTF-8. */
char *words_fold(const char *s, long len);

/* ---------------------------------------------------------------- rank.c: ranking */

/* What search_bm25() needs of a query: each phrase's document frequency (rows holding it; 0 for
 * all when the query has one phrase), and whether the words' order in the caption counts. */
typedef struct {
    int n;
    int ordered; /* two or more plain words: rows holding them in order in the caption rank higher */
    int64_t df[SEARCH_MAX_WORDS];
} rank_terms_t;

/* This copy's cache of document frequencies (any thread). */
search_rank_t *rank_new(void);
void rank_free(search_rank_t *r);
/* Fills out for words on the reader db (table "posts_fts" or "users_fts"; users: the users
 * phrases): counts not cached are counted there. 0, or -1 when a count failed. */
int rank_terms(search_rank_t *r, sqlite3 *db, const char *table, const search_words_t *words, int users,
               rank_terms_t *out);
/* Binds t (borrowed until the statement is reset) as search_bm25()'s terms argument. */
void rank_bind_terms(sqlite3_stmt *st, int i, rank_terms_t *t);
/* Registers search_bm25() (an FTS5 auxiliary function), search_rank() and search_rank_user() on
 * db. 0 or -1. */
int rank_register(sqlite3 *db);

/* ---------------------------------------------------------------- query.c: the routes */

void query_search(search_worker_t *w, const mq_message_t *req, mq_reply_t *r);
void query_autocomplete(search_worker_t *w, const mq_message_t *req, mq_reply_t *r);

#endif
