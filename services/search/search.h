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

typedef struct {
    const search_conf_t *conf;
    db_t *db;
    search_index_t *index;
    metrics_registry_t *metrics;
} search_t;

/* One svc worker: its publisher of sync messages and its reader of the index. */
typedef struct {
    search_t *s;
    mq_t *pub;          /* confirms; search.sync */
    sqlite3 *reader;    /* opened on first use, reopened when the index is rebuilt */
    unsigned reader_gen;
} search_worker_t;

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
/* Registers the SQL functions the queries use on a connection. */
void index_register_functions(sqlite3 *db);

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
/* The FTS5 expression of posts_fts for w (n > 0): every word (#word in tags, @word in username,
 * others in any column), or, for two or more plain words, their phrase in the caption, which
 * matches the same posts and adds to the rank of those holding the words in order. g_free it. */
char *words_posts_match(const search_words_t *w);
/* The FTS5 expression of users_fts: each word a prefix of a word of the username (only there for
 * @word) or of the name. g_free it. */
char *words_users_match(const search_words_t *w);
/* NFKC of the case folding (GLib), as publication makes hashtags; g_free it. NULL if s is not
 * valid UTF-8. */
char *words_fold(const char *s, long len);

/* ---------------------------------------------------------------- query.c: the routes */

void query_search(search_worker_t *w, const mq_message_t *req, mq_reply_t *r);
void query_autocomplete(search_worker_t *w, const mq_message_t *req, mq_reply_t *r);

#endif
