/* query.c -- the two routes: ranked search of posts, users and tags, and autocomplete.
 *
 * A query never reaches FTS5 as the caller wrote it: words.c picks its words out and builds the
 * FTS5 expression from them, so no input is FTS syntax. */
#include <errno.h>
#include <glib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "log/log.h"
#include "search.h"

#define QUERY_MAX_CHARS 512
#define QUERY_MAX_OFFSET 10000
#define SEARCH_TOTAL_MAX 1000 /* matches counted at most: a total above says 1,000 ("1,000+") */
#define AUTOCOMPLETE_MAX_CHARS 100
#define AUTOCOMPLETE_ITEMS 10

/* ================================================================ parameters */

/* Trims white space of s in place; returns the start. */
static char *query__trim(char *s)
{
    while (*s != '\0' && g_unichar_isspace(g_utf8_get_char(s)))
        s = g_utf8_next_char(s);
    char *end = s + strlen(s);
    while (end > s) {
        char *prev = g_utf8_prev_char(end);
        if (!g_unichar_isspace(g_utf8_get_char(prev)))
            break;
        end = prev;
    }
    *end = '\0';
    return s;
}

/* Reads ?q= into buf (cap bytes) and checks it: the trimmed text, or NULL after answering 400. */
static char *query__q(const mq_message_t *req, mq_reply_t *r, char *buf, size_t cap, size_t max_chars)
{
    int rc = rpc_query(req, "q", buf, cap);
    const char *why = NULL;
    char *q = NULL;
    if (rc == 0)
        why = "is required";
    else if (rc < 0 || !g_utf8_validate(buf, -1, NULL))
        why = "must be percent-encoded UTF-8 text without NUL, of a reasonable length";
    else if ((q = query__trim(buf))[0] == '\0')
        why = "must not be empty";
    else if ((size_t)g_utf8_strlen(q, -1) > max_chars)
        why = max_chars == QUERY_MAX_CHARS ? "must be at most 512 characters"
                                           : "must be at most 100 characters";
    if (why == NULL)
        return q;
    cJSON *errors = cJSON_CreateObject();
    cJSON_AddStringToObject(errors, "q", why);
    rpc_problem(r, 400, "invalid-query", "the query parameter q is not usable", errors);
    return NULL;
}

/* An integer parameter in [min, max] (above clamp: clamped to it when clamp > 0), default def.
 * 0, or -1 after answering 400. */
static int query__int(const mq_message_t *req, mq_reply_t *r, const char *name, long def, long min, long max,
                      long clamp, long *out)
{
    char buf[64];
    int rc = rpc_query(req, name, buf, sizeof(buf));
    *out = def;
    if (rc == 0)
        return 0;
    char *end = NULL;
    long v = 0;
    int ok = rc == 1 && buf[0] >= '0' && buf[0] <= '9';
    if (ok) {
        errno = 0;
        v = strtol(buf, &end, 10);
        ok = *end == '\0';
        if (ok && errno == ERANGE) /* digits beyond a long: clamped like any large value, else refused */
            v = clamp > 0 ? clamp : LONG_MAX;
    }
    if (ok && clamp > 0 && v > clamp)
        v = clamp;
    if (ok && v >= min && v <= max) {
        *out = v;
        return 0;
    }
    char why[96];
    snprintf(why, sizeof(why), "must be an integer from %ld to %ld", min, clamp > 0 ? clamp : max);
    cJSON *errors = cJSON_CreateObject();
    cJSON_AddStringToObject(errors, name, why);
    rpc_problem(r, 400, "invalid-query", "a query parameter is out of range", errors);
    return -1;
}

/* ================================================================ blocks */

/* Who is hidden from the caller: accounts they block and accounts that block them. ?1 = caller
 * ("" for none). */
#define QUERY__HIDDEN "(SELECT b FROM blocks WHERE a = ?1 UNION ALL SELECT a FROM blocks WHERE b = ?1)"

/* ================================================================ items */

static void query__add_time(cJSON *o, const char *name, sqlite3_int64 ms)
{
    if (ms > 0)
        json_add_time(o, name, ms);
    else
        cJSON_AddNullToObject(o, name);
}

static const char *query__text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t != NULL ? (const char *)t : "";
}

/* A user row (id, username, name, followers from column col) as the API shows it. */
static cJSON *query__user(sqlite3_stmt *st, int col)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", query__text(st, col));
    cJSON_AddStringToObject(o, "username", query__text(st, col + 1));
    cJSON_AddStringToObject(o, "name", query__text(st, col + 2));
    cJSON_AddNumberToObject(o, "followers_count", (double)sqlite3_column_int64(st, col + 3));
    return o;
}

static cJSON *query__tag(sqlite3_stmt *st, int col)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", query__text(st, col));
    cJSON_AddNumberToObject(o, "post_count", (double)sqlite3_column_int64(st, col + 1));
    return o;
}

/* ================================================================ running statements */

typedef struct {
    search_worker_t *w;
    sqlite3 *db;
    sqlite3_stmt *st;
    int failed;
} query__run_t;

/* The worker's statement of sql (a literal), the one before it reset. */
static sqlite3_stmt *query__prepare(query__run_t *q, const char *sql)
{
    if (q->st != NULL)
        sqlite3_reset(q->st);
    q->st = index_stmt(q->w, sql);
    if (q->st == NULL)
        q->failed = 1;
    return q->st;
}

/* Ends the request's reading (a statement left stepping holds its read). */
static void query__done(query__run_t *q)
{
    if (q->st != NULL)
        sqlite3_reset(q->st);
    q->st = NULL;
}

/* sqlite3_step with errors remembered (the caller answers 503 then). */
static int query__step(query__run_t *q)
{
    if (q->st == NULL)
        return SQLITE_DONE;
    int rc = sqlite3_step(q->st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_error(NULL, "search: %s", sqlite3_errmsg(q->db));
        q->failed = 1;
        return SQLITE_DONE;
    }
    return rc;
}

static long query__count(query__run_t *q)
{
    long n = query__step(q) == SQLITE_ROW ? (long)sqlite3_column_int64(q->st, 0) : 0;
    return n;
}

/* The upper bound of a prefix range: prefix with its last byte raised (UTF-8 never holds 0xff). */
static char *query__prefix_end(const char *prefix)
{
    char *end = xstrdup(prefix);
    size_t n = strlen(end);
    if (n > 0)
        end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
    return end;
}

/* ================================================================ search */

static void query__posts(search_worker_t *w, query__run_t *q, const char *me, const search_words_t *words,
                         long limit, long offset, cJSON *items, long *total)
{
    char *match = words_posts_match(words);
    int hides = 0;
    if (me[0] != '\0' && query__prepare(q, "SELECT EXISTS " QUERY__HIDDEN)) {
        sqlite3_bind_text(q->st, 1, me, -1, SQLITE_STATIC);
        hides = query__count(q) > 0;
    }
    /* total: the matches, less those of hidden authors, counted up to SEARCH_TOTAL_MAX (the
     * newest first: counting every post of a common word costs more than the page) */
    if (query__prepare(
            q, hides ? "SELECT count(*) FROM (SELECT rowid AS rid FROM posts_fts WHERE posts_fts MATCH ?2"
                       " AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.rid = posts_fts.rowid AND p.author "
                       "IN " QUERY__HIDDEN ") ORDER BY rowid DESC LIMIT ?3)"
                     : "SELECT count(*) FROM (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?2"
                       " ORDER BY rowid DESC LIMIT ?3)")) {
        if (hides)
            sqlite3_bind_text(q->st, 1, me, -1, SQLITE_STATIC);
        sqlite3_bind_text(q->st, 2, match, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q->st, 3, SEARCH_TOTAL_MAX);
        *total = query__count(q);
    }
    /* the page: the newest SEARCH_CANDIDATES matches ranked, hidden authors left out; names only
     * for the page */
    static const char page[] =
        "SELECT r.id, r.author, r.username, coalesce(u.name, ''), r.caption, r.tags, r.thumb, r.created, "
        "r.edited,"
        " r.likes, r.comments FROM"
        " (SELECT p.rid, p.id, p.author, p.username, p.caption, p.tags, p.thumb, p.created, p.edited, "
        "p.likes,"
        "   p.comments, search_rank(m.r, p.likes, p.comments, p.created, ?4) AS score"
        "  FROM (SELECT rowid AS rid, search_bm25(posts_fts, ?7, 1.0, 2.0, 1.5) AS r FROM posts_fts"
        "        WHERE posts_fts MATCH ?2"
        "        ORDER BY rowid DESC LIMIT ?3) m"
        "  JOIN posts p ON p.rid = m.rid WHERE p.author NOT IN " QUERY__HIDDEN
        "  ORDER BY score DESC, p.rid DESC LIMIT ?5 OFFSET ?6) r"
        " LEFT JOIN users u ON u.id = r.author ORDER BY r.score DESC, r.rid DESC";
    rank_terms_t terms;
    if (*total > offset && rank_terms(w->s->rank, q->db, "posts_fts", words, 0, &terms) != 0)
        q->failed = 1;
    else if (*total > offset && query__prepare(q, page)) {
        sqlite3_bind_text(q->st, 1, me, -1, SQLITE_STATIC);
        sqlite3_bind_text(q->st, 2, match, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q->st, 3, w->s->conf->candidates);
        sqlite3_bind_int64(q->st, 4, core_wall_ms());
        rank_bind_terms(q->st, 7, &terms);
        sqlite3_bind_int64(q->st, 5, limit);
        sqlite3_bind_int64(q->st, 6, offset);
        while (query__step(q) == SQLITE_ROW) {
            sqlite3_stmt *st = q->st;
            cJSON *o = cJSON_CreateObject(), *author = cJSON_CreateObject(), *tags = cJSON_CreateArray();
            cJSON_AddStringToObject(o, "id", query__text(st, 0));
            cJSON_AddStringToObject(author, "id", query__text(st, 1));
            cJSON_AddStringToObject(author, "username", query__text(st, 2));
            cJSON_AddStringToObject(author, "name", query__text(st, 3));
            cJSON_AddItemToObject(o, "author", author);
            cJSON_AddStringToObject(o, "caption", query__text(st, 4));
            char **t = g_strsplit(query__text(st, 5), " ", -1);
            for (char **p = t; *p != NULL; p++)
                if (**p != '\0')
                    cJSON_AddItemToArray(tags, cJSON_CreateString(*p));
            g_strfreev(t);
            cJSON_AddItemToObject(o, "tags", tags);
            if (sqlite3_column_type(st, 6) == SQLITE_NULL)
                cJSON_AddNullToObject(o, "thumbnail_url");
            else
                cJSON_AddStringToObject(o, "thumbnail_url", query__text(st, 6));
            cJSON_AddNumberToObject(
                o, "like_count", (double)(sqlite3_column_int64(st, 9) > 0 ? sqlite3_column_int64(st, 9) : 0));
            cJSON_AddNumberToObject(
                o, "comment_count",
                (double)(sqlite3_column_int64(st, 10) > 0 ? sqlite3_column_int64(st, 10) : 0));
            query__add_time(o, "created_at", sqlite3_column_int64(st, 7));
            query__add_time(o, "edited_at", sqlite3_column_int64(st, 8));
            cJSON_AddItemToArray(items, o);
        }
    }
    g_free(match);
}

static void query__users(search_worker_t *w, query__run_t *q, const char *me, const search_words_t *words,
                         long limit, long offset, cJSON *items, long *total)
{
    char *match = words_users_match(words);
    char *exact = g_ascii_strdown(words->w[0].text, -1);
    if (query__prepare(q,
                       "SELECT count(*) FROM (SELECT u.rid FROM users_fts f JOIN users u ON u.rid = f.rowid"
                       " WHERE users_fts MATCH ?2 AND u.id NOT IN " QUERY__HIDDEN " LIMIT ?3)")) {
        sqlite3_bind_text(q->st, 1, me, -1, SQLITE_STATIC);
        sqlite3_bind_text(q->st, 2, match, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q->st, 3, SEARCH_TOTAL_MAX);
        *total = query__count(q);
    }
    static const char page[] =
        "SELECT u.id, u.username, u.name, u.followers"
        " FROM (SELECT rowid AS rid, search_bm25(users_fts, ?7) AS r FROM users_fts WHERE users_fts MATCH ?2"
        "       ORDER BY rowid DESC LIMIT ?3) m JOIN users u ON u.rid = m.rid"
        " WHERE u.id NOT IN " QUERY__HIDDEN
        " ORDER BY search_rank_user(m.r, u.followers, u.username = ?4) DESC, u.username LIMIT ?5 OFFSET ?6";
    rank_terms_t terms;
    if (*total > offset && rank_terms(w->s->rank, q->db, "users_fts", words, 1, &terms) != 0)
        q->failed = 1;
    else if (*total > offset && query__prepare(q, page)) {
        sqlite3_bind_text(q->st, 1, me, -1, SQLITE_STATIC);
        sqlite3_bind_text(q->st, 2, match, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q->st, 3, w->s->conf->candidates);
        sqlite3_bind_text(q->st, 4, exact, -1, SQLITE_STATIC);
        rank_bind_terms(q->st, 7, &terms);
        sqlite3_bind_int64(q->st, 5, limit);
        sqlite3_bind_int64(q->st, 6, offset);
        while (query__step(q) == SQLITE_ROW)
            cJSON_AddItemToArray(items, query__user(q->st, 0));
    }
    g_free(exact);
    g_free(match);
}

/* Tags starting with prefix (folded): the exact one first (exact_first), then the most used. */
static void query__tags(query__run_t *q, const char *prefix, int exact_first, long limit, long offset,
                        cJSON *items, long *total)
{
    char *end = query__prefix_end(prefix);
    if (query__prepare(q, "SELECT count(*) FROM tags WHERE tag >= ?1 AND tag < ?2")) {
        sqlite3_bind_text(q->st, 1, prefix, -1, SQLITE_STATIC);
        sqlite3_bind_text(q->st, 2, end, -1, SQLITE_STATIC);
        *total = query__count(q);
    }
    if (*total > offset &&
        query__prepare(q, "SELECT tag, posts FROM tags WHERE tag >= ?1 AND tag < ?2"
                          " ORDER BY tag = ?1 AND ?5 DESC, posts DESC, tag LIMIT ?3 OFFSET ?4")) {
        sqlite3_bind_text(q->st, 1, prefix, -1, SQLITE_STATIC);
        sqlite3_bind_text(q->st, 2, end, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q->st, 3, limit);
        sqlite3_bind_int64(q->st, 4, offset);
        sqlite3_bind_int(q->st, 5, exact_first);
        while (query__step(q) == SQLITE_ROW)
            cJSON_AddItemToArray(items, query__tag(q->st, 0));
    }
    free(end);
}

/* The folded tag of a query: without a leading '#', case-folded, NFKC (g_free), or NULL. */
static char *query__tag_prefix(const char *q)
{
    while (*q == '#')
        q++;
    char *t = words_fold(q, -1);
    if (t != NULL && t[0] == '\0') {
        g_free(t);
        t = NULL;
    }
    return t;
}

static sqlite3 *query__reader(search_worker_t *w, mq_reply_t *r)
{
    sqlite3 *db = index_reader(w);
    if (db == NULL)
        rpc_unavailable(r, "index-not-ready", "the search index is being built; try again in a moment");
    return db;
}

void query_search(search_worker_t *w, const mq_message_t *req, mq_reply_t *r)
{
    char buf[8192], type[16];
    char *text = query__q(req, r, buf, sizeof(buf), QUERY_MAX_CHARS);
    long limit, offset;
    if (text == NULL || query__int(req, r, "limit", 20, 1, 100, 100, &limit) != 0 ||
        query__int(req, r, "offset", 0, 0, QUERY_MAX_OFFSET, 0, &offset) != 0)
        return;
    int trc = rpc_query(req, "type", type, sizeof(type));
    if (trc == 0)
        strcpy(type, "posts");
    if (trc < 0 || (strcmp(type, "posts") != 0 && strcmp(type, "users") != 0 && strcmp(type, "tags") != 0)) {
        cJSON *errors = cJSON_CreateObject();
        cJSON_AddStringToObject(errors, "type", "must be posts, users or tags");
        rpc_problem(r, 400, "invalid-query", "a query parameter is out of range", errors);
        return;
    }
    query__run_t q = {.w = w, .db = query__reader(w, r)};
    if (q.db == NULL)
        return;
    const char *me = req->user_id != NULL ? req->user_id : "";
    cJSON *items = cJSON_CreateArray();
    long total = 0;
    if (type[0] == 't') {
        char *prefix = query__tag_prefix(text);
        if (prefix != NULL)
            query__tags(&q, prefix, 1, limit, offset, items, &total);
        g_free(prefix);
    } else {
        search_words_t words;
        words_split(text, &words);
        if (words.n > 0 && type[0] == 'p')
            query__posts(w, &q, me, &words, limit, offset, items, &total);
        else if (words.n > 0)
            query__users(w, &q, me, &words, limit, offset, items, &total);
        words_free(&words);
    }
    query__done(&q);
    if (q.failed) {
        cJSON_Delete(items);
        rpc_unavailable(r, "index-error", "the search index could not answer; try again");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "items", items);
    cJSON_AddNumberToObject(o, "total", (double)total);
    rpc_json(r, 200, o);
}

/* ================================================================ autocomplete */

/* Up to AUTOCOMPLETE_ITEMS users matching a prefix, most followed first (then by username), the
 * hidden left out. Two plans give the same answer: when few users match (under
 * AUTOCOMPLETE_DENSE), the matches sorted; when many do, the users walked most followed first,
 * each checked, which stops after the first few. Each plan's statement: ?1 the caller, ?2 the
 * match (a users_fts expression) or the username range [?2, ?3), ?4 the items. */
typedef struct {
    const char *count; /* matches counted up to ?4 */
    const char *sparse, *dense;
} query__plans_t;

#define AUTOCOMPLETE_DENSE 2000

static const query__plans_t query__by_username = {
    "SELECT count(*) FROM (SELECT 1 FROM users WHERE username >= ?2 AND username < ?3 LIMIT ?4)",
    "SELECT id, username, name, followers FROM users WHERE username >= ?2 AND username < ?3"
    " AND id NOT IN " QUERY__HIDDEN " ORDER BY followers DESC, username LIMIT ?4",
    "SELECT id, username, name, followers FROM users INDEXED BY users_followers WHERE username >= ?2"
    " AND username < ?3 AND id NOT IN " QUERY__HIDDEN " ORDER BY followers DESC, username LIMIT ?4"};
static const query__plans_t query__by_words = {
    "SELECT count(*) FROM (SELECT 1 FROM users_fts WHERE users_fts MATCH ?2 LIMIT ?4)",
    "SELECT u.id, u.username, u.name, u.followers FROM users u WHERE u.rid IN"
    " (SELECT rowid FROM users_fts WHERE users_fts MATCH ?2) AND u.id NOT IN " QUERY__HIDDEN
    " ORDER BY u.followers DESC, u.username LIMIT ?4",
    "SELECT u.id, u.username, u.name, u.followers FROM users u INDEXED BY users_followers WHERE u.rid IN"
    " (SELECT rowid FROM users_fts WHERE users_fts MATCH ?2) AND u.id NOT IN " QUERY__HIDDEN
    " ORDER BY u.followers DESC, u.username LIMIT ?4"};

static void query__users_by(query__run_t *q, const query__plans_t *plans, const char *me, const char *a,
                            const char *b, cJSON *users)
{
    long n = 0;
    if (query__prepare(q, plans->count)) {
        sqlite3_bind_text(q->st, 2, a, -1, SQLITE_STATIC);
        if (b != NULL)
            sqlite3_bind_text(q->st, 3, b, -1, SQLITE_STATIC);
        sqlite3_bind_int(q->st, 4, AUTOCOMPLETE_DENSE);
        n = query__count(q);
    }
    if (n > 0 && query__prepare(q, n < AUTOCOMPLETE_DENSE ? plans->sparse : plans->dense)) {
        sqlite3_bind_text(q->st, 1, me, -1, SQLITE_STATIC);
        sqlite3_bind_text(q->st, 2, a, -1, SQLITE_STATIC);
        if (b != NULL)
            sqlite3_bind_text(q->st, 3, b, -1, SQLITE_STATIC);
        sqlite3_bind_int(q->st, 4, AUTOCOMPLETE_ITEMS);
        while (query__step(q) == SQLITE_ROW)
            cJSON_AddItemToArray(users, query__user(q->st, 0));
    }
}

/* Users for autocomplete: "@pre", the usernames starting with it; otherwise a word of the username
 * or of the name starting with each word. */
static void query__autocomplete_users(query__run_t *q, const char *me, const char *text, cJSON *users)
{
    if (text[0] == '@') {
        char *prefix = g_ascii_strdown(text + 1, -1);
        if (prefix[0] != '\0') {
            char *end = query__prefix_end(prefix);
            query__users_by(q, &query__by_username, me, prefix, end, users);
            free(end);
        }
        g_free(prefix);
        return;
    }
    search_words_t words;
    words_split(text, &words);
    if (words.n > 0) {
        char *match = words_users_match(&words);
        query__users_by(q, &query__by_words, me, match, NULL, users);
        g_free(match);
    }
    words_free(&words);
}

void query_autocomplete(search_worker_t *w, const mq_message_t *req, mq_reply_t *r)
{
    char buf[2048];
    char *text = query__q(req, r, buf, sizeof(buf), AUTOCOMPLETE_MAX_CHARS);
    if (text == NULL)
        return;
    query__run_t q = {.w = w, .db = query__reader(w, r)};
    if (q.db == NULL)
        return;
    const char *me = req->user_id != NULL ? req->user_id : "";
    int want_users = text[0] != '#', want_tags = text[0] != '@';
    cJSON *users = cJSON_CreateArray(), *tags = cJSON_CreateArray();
    long unused;
    if (want_tags) {
        char *prefix = query__tag_prefix(text);
        if (prefix != NULL) {
            query__tags(&q, prefix, 0, AUTOCOMPLETE_ITEMS, 0, tags, &unused); /* most used first */
            g_free(prefix);
        }
    }
    if (want_users)
        query__autocomplete_users(&q, me, text, users);
    query__done(&q);
    if (q.failed) {
        cJSON_Delete(users);
        cJSON_Delete(tags);
        rpc_unavailable(r, "index-error", "the search index could not answer; try again");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "users", users);
    cJSON_AddItemToObject(o, "tags", tags);
    rpc_json(r, 200, o);
}
