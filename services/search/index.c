/* index.c -- each copy's own full-text index (SQLite FTS5), built from MongoDB and kept current
 * from the sync messages of search.sync.
 *
 * The index thread owns an exclusive, auto-deleted queue search.sync.<uuid> bound to the three
 * kinds, and the only writer connection. Whenever that queue is new (the first connection, or a
 * reconnect: an exclusive queue dies with its connection, and what was sent meanwhile is lost) a
 * builder thread makes a fresh index file from MongoDB while the index thread goes on reading the
 * queue (heartbeats flow) and keeps the ids it hears of; once built, the new file replaces the
 * old one for every reader, and the ids heard meanwhile are synced into it. The queue exists
 * before the build reads MongoDB, and a document is written before its sync message is sent, so
 * every change is either in the build or heard after it. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "log/log.h"
#include "search.h"

/* A connection with its prepared statements, kept by the address of their SQL text (literals). */
struct index_db {
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } stmts[24];
    size_t n;
};
typedef index_db_t index__db_t;

struct search_index {
    search_t *s;
    pthread_t thread;
    int started;
    volatile int stop;
    mq_t *mq;
    char queue[64];

    pthread_mutex_t lock; /* guards path and gen, read by every worker */
    char *path;           /* the current index file */
    unsigned gen;         /* 0 until the first build */

    index__db_t *w; /* the writer of the current file (index thread only) */
    int need_build;

    /* the builder thread and what it hands back */
    pthread_t builder;
    int building;
    volatile int built; /* 1 done (ok or not): join it */
    int build_rc;
    index__db_t *fresh;
    char *fresh_path;
    /* sync messages heard during a build: "<kind> <id>" */
    char **pending;
    size_t npending, cpending;
};

/* ================================================================ schema */

static const char index__schema[] =
    "PRAGMA journal_mode=OFF;"
    "PRAGMA synchronous=OFF;"
    "PRAGMA cache_size=-65536;"
    "CREATE TABLE users(rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, username TEXT NOT NULL, name TEXT NOT NULL,"
    " followers INTEGER NOT NULL);"
    "CREATE INDEX users_username ON users(username);"
    /* autocomplete of a common prefix walks the most followed first */
    "CREATE INDEX users_followers ON users(followers DESC, username);"
    "CREATE VIRTUAL TABLE users_fts USING fts5(username, name, content='users', content_rowid='rid',"
    " tokenize=\"" SEARCH_FTS_TOKENIZE "\", prefix='1 2 3 4 5 6');"
    "CREATE TRIGGER users_ai AFTER INSERT ON users BEGIN"
    " INSERT INTO users_fts(rowid, username, name) VALUES (new.rid, new.username, new.name); END;"
    "CREATE TRIGGER users_ad AFTER DELETE ON users BEGIN"
    " INSERT INTO users_fts(users_fts, rowid, username, name) VALUES ('delete', old.rid, old.username, old.name); END;"
    "CREATE TRIGGER users_au AFTER UPDATE OF username, name ON users BEGIN"
    " INSERT INTO users_fts(users_fts, rowid, username, name) VALUES ('delete', old.rid, old.username, old.name);"
    " INSERT INTO users_fts(rowid, username, name) VALUES (new.rid, new.username, new.name); END;"
    "CREATE TABLE posts(rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, author TEXT NOT NULL,"
    " username TEXT NOT NULL, caption TEXT NOT NULL, tags TEXT NOT NULL, thumb TEXT, created INTEGER NOT NULL,"
    " edited INTEGER, likes INTEGER NOT NULL, comments INTEGER NOT NULL);"
    "CREATE INDEX posts_author ON posts(author);"
    "CREATE VIRTUAL TABLE posts_fts USING fts5(caption, tags, username, content='posts', content_rowid='rid',"
    " tokenize=\"" SEARCH_FTS_TOKENIZE "\");"
    "CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN"
    " INSERT INTO posts_fts(rowid, caption, tags, username) VALUES (new.rid, new.caption, new.tags, new.username);"
    " END;"
    "CREATE TRIGGER posts_ad AFTER DELETE ON posts BEGIN"
    " INSERT INTO posts_fts(posts_fts, rowid, caption, tags, username)"
    " VALUES ('delete', old.rid, old.caption, old.tags, old.username); END;"
    "CREATE TRIGGER posts_au AFTER UPDATE OF caption, tags, username ON posts BEGIN"
    " INSERT INTO posts_fts(posts_fts, rowid, caption, tags, username)"
    " VALUES ('delete', old.rid, old.caption, old.tags, old.username);"
    " INSERT INTO posts_fts(rowid, caption, tags, username) VALUES (new.rid, new.caption, new.tags, new.username);"
    " END;"
    /* hashtags: one row per (tag, post), and each tag's count kept by triggers */
    "CREATE TABLE post_tags(tag TEXT NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY (tag, rid)) WITHOUT ROWID;"
    "CREATE INDEX post_tags_rid ON post_tags(rid);"
    "CREATE TABLE tags(tag TEXT PRIMARY KEY, posts INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TRIGGER post_tags_ai AFTER INSERT ON post_tags BEGIN"
    " INSERT INTO tags(tag, posts) VALUES (new.tag, 1) ON CONFLICT(tag) DO UPDATE SET posts = posts + 1; END;"
    "CREATE TRIGGER post_tags_ad AFTER DELETE ON post_tags BEGIN"
    " UPDATE tags SET posts = posts - 1 WHERE tag = old.tag; DELETE FROM tags WHERE tag = old.tag AND posts <= 0;"
    " END;"
    "CREATE TABLE blocks(a TEXT NOT NULL, b TEXT NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;"
    "CREATE INDEX blocks_b ON blocks(b, a);";

/* ================================================================ writing rows */

static int index__exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error(NULL, "index: %s", err != NULL ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

/* The statement of sql (a literal) on d, prepared once, reset and unbound. */
static sqlite3_stmt *index__stmt(index__db_t *d, const char *sql)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->stmts[i].sql == sql) {
            sqlite3_reset(d->stmts[i].st);
            sqlite3_clear_bindings(d->stmts[i].st);
            return d->stmts[i].st;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        log_error(NULL, "index: %s: %s", sql, sqlite3_errmsg(d->db));
        return NULL;
    }
    CORE_ASSERT(d->n < CORE_ARRAY_SIZE(d->stmts));
    d->stmts[d->n].sql = sql;
    d->stmts[d->n++].st = st;
    return st;
}

static void index__close(index__db_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        sqlite3_finalize(d->stmts[i].st);
    sqlite3_close(d->db);
    free(d);
}

/* Runs one statement with text arguments (NULL binds NULL); for a SELECT, copies the first
 * column of the first row into *out as an int64 when out is not NULL. SQLITE_ROW, SQLITE_DONE
 * or -1. */
static int index__run(index__db_t *d, const char *sql, int64_t *out, int n, ...)
{
    sqlite3_stmt *st = index__stmt(d, sql);
    if (st == NULL)
        return -1;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *v = va_arg(ap, const char *);
        sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT);
    }
    va_end(ap);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && out != NULL)
        *out = sqlite3_column_int64(st, 0);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_error(NULL, "index: %s: %s", sql, sqlite3_errmsg(d->db));
        rc = -1;
    }
    sqlite3_reset(st);
    return rc;
}

/* The tags of a post document, space-separated (malloc'd). */
static char *index__tags(const bson_t *doc)
{
    bson_iter_t it, arr;
    size_t len = 0, cap = 64;
    char *out = xmalloc(cap);
    out[0] = '\0';
    if (bson_iter_init_find(&it, doc, "t") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            if (!BSON_ITER_HOLDS_UTF8(&arr))
                continue;
            uint32_t n;
            const char *t = bson_iter_utf8(&arr, &n);
            if (n == 0 || memchr(t, ' ', n) != NULL)
                continue;
            while (len + n + 2 > cap)
                out = xrealloc(out, cap *= 2);
            if (len > 0)
                out[len++] = ' ';
            memcpy(out + len, t, n);
            len += n;
            out[len] = '\0';
        }
    }
    return out;
}

/* Replaces the hashtag rows of post rid with the words of tags. 0 or -1. */
static int index__put_tags(index__db_t *db, int64_t rid, const char *tags)
{
    char ridbuf[24];
    snprintf(ridbuf, sizeof(ridbuf), "%lld", (long long)rid);
    if (index__run(db, "DELETE FROM post_tags WHERE rid = CAST(?1 AS INTEGER)", NULL, 1, ridbuf) < 0)
        return -1;
    for (const char *p = tags; *p != '\0';) {
        const char *end = strchr(p, ' ');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        char *tag = xstrndup(p, n);
        int rc = index__run(db, "INSERT OR IGNORE INTO post_tags(tag, rid) VALUES (?1, CAST(?2 AS INTEGER))", NULL, 2,
                            tag, ridbuf);
        free(tag);
        if (rc < 0)
            return -1;
        p = end != NULL ? end + 1 : p + n;
    }
    return 0;
}

static int index__delete_post(index__db_t *db, const char *id)
{
    int64_t rid = 0;
    int rc = index__run(db, "SELECT rid FROM posts WHERE id = ?1", &rid, 1, id);
    if (rc != SQLITE_ROW)
        return rc < 0 ? -1 : 0;
    if (index__put_tags(db, rid, "") != 0)
        return -1;
    return index__run(db, "DELETE FROM posts WHERE id = ?1", NULL, 1, id) < 0 ? -1 : 0;
}

/* Writes a post document into the index (or takes it out when it is not one to show). */
static int index__put_post(index__db_t *db, const bson_t *doc)
{
    const char *id = db_doc_str(doc, "_id"), *author = db_doc_str(doc, "a"), *username = db_doc_str(doc, "u");
    const char *caption = db_doc_str(doc, "c");
    if (id == NULL)
        return 0;
    if (author == NULL || username == NULL || db_doc_int(doc, "gone") != 0)
        return index__delete_post(db, id);
    int64_t created = db_doc_ms(doc, "at"), edited = db_doc_ms(doc, "e");
    char *tags = index__tags(doc);
    sqlite3_stmt *st = NULL;
    int64_t rid = 0;
    int rc = index__run(db, "SELECT rid FROM posts WHERE id = ?1", &rid, 1, id);
    int exists = rc == SQLITE_ROW;
    if (rc < 0)
        goto fail;
    if (!exists) {
        /* the rowid orders posts by time (newest matches are ranked first when there are too many):
         * created ms, then 10 bits of the id, stepping over a taken one */
        rid = (created > 0 ? created : 0) * 1024 + (search_hash(SEARCH_HASH_INIT, id) & 1023);
        for (;;) {
            char buf[24];
            snprintf(buf, sizeof(buf), "%lld", (long long)rid);
            rc = index__run(db, "SELECT 1 FROM posts WHERE rid = CAST(?1 AS INTEGER)", NULL, 1, buf);
            if (rc < 0)
                goto fail;
            if (rc == SQLITE_DONE)
                break;
            rid++;
        }
    }
    /* the text (and so the full-text rows and the hashtags) only when it changed: a like does not
     * re-index the caption */
    static const char ins[] = "INSERT INTO posts(rid, author, username, caption, tags, thumb, created, edited, likes,"
                              " comments, id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    static const char upd[] = "UPDATE posts SET author = ?2, thumb = ?6, created = ?7, edited = ?8, likes = ?9,"
                              " comments = ?10 WHERE rid = ?1";
    static const char upd_text[] = "UPDATE posts SET username = ?3, caption = ?4, tags = ?5 WHERE rid = ?1 AND"
                                   " (username IS NOT ?3 OR caption IS NOT ?4 OR tags IS NOT ?5)";
    const char *thumb = db_doc_str(doc, "th");
    int text_changed = !exists;
    for (int pass = 0; pass < (exists ? 2 : 1); pass++) {
        st = index__stmt(db, !exists ? ins : pass == 0 ? upd : upd_text);
        if (st == NULL)
            goto fail;
        sqlite3_bind_int64(st, 1, rid);
        if (pass == 0) {
            sqlite3_bind_text(st, 2, author, -1, SQLITE_STATIC);
            if (thumb != NULL)
                sqlite3_bind_text(st, 6, thumb, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 7, created);
            if (edited > 0)
                sqlite3_bind_int64(st, 8, edited);
            sqlite3_bind_int64(st, 9, db_doc_int(doc, "l"));
            sqlite3_bind_int64(st, 10, db_doc_int(doc, "k"));
        }
        if (!exists || pass == 1) {
            sqlite3_bind_text(st, 3, username, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, caption != NULL ? caption : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 5, tags, -1, SQLITE_STATIC);
        }
        if (!exists)
            sqlite3_bind_text(st, 11, id, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        sqlite3_reset(st);
        if (step != SQLITE_DONE)
            goto fail;
        if (pass == 1)
            text_changed = sqlite3_changes(db->db) > 0;
    }
    if (text_changed && index__put_tags(db, rid, tags) != 0)
        goto fail;
    free(tags);
    return 0;
fail:
    log_error(NULL, "index: post %s: %s", id, sqlite3_errmsg(db->db));
    free(tags);
    return -1;
}

static int index__put_user(index__db_t *db, const bson_t *doc)
{
    const char *id = db_doc_str(doc, "_id"), *username = db_doc_str(doc, "u"), *name = db_doc_str(doc, "n");
    if (id == NULL)
        return 0;
    if (db_doc_int(doc, "gone") != 0) {
        /* the account and everything it posted */
        if (index__run(db, "DELETE FROM post_tags WHERE rid IN (SELECT rid FROM posts WHERE author = ?1)", NULL, 1,
                       id) < 0 ||
            index__run(db, "DELETE FROM posts WHERE author = ?1", NULL, 1, id) < 0)
            return -1;
        return index__run(db, "DELETE FROM users WHERE id = ?1", NULL, 1, id) < 0 ? -1 : 0;
    }
    if (username == NULL) /* counted before it registered */
        return index__run(db, "DELETE FROM users WHERE id = ?1", NULL, 1, id) < 0 ? -1 : 0;
    char followers[24];
    snprintf(followers, sizeof(followers), "%lld", (long long)db_doc_int(doc, "f"));
    return index__run(db,
                      "INSERT INTO users(id, username, name, followers) VALUES (?1, ?2, ?3, CAST(?4 AS INTEGER))"
                      " ON CONFLICT(id) DO UPDATE SET username = excluded.username, name = excluded.name,"
                      " followers = excluded.followers",
                      NULL, 4, id, username, name != NULL ? name : "", followers) < 0
               ? -1
               : 0;
}

static int index__put_block(index__db_t *db, const bson_t *doc)
{
    const char *a = db_doc_str(doc, "a"), *b = db_doc_str(doc, "b");
    bson_iter_t it;
    int on = bson_iter_init_find(&it, doc, "on") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
    if (a == NULL || b == NULL)
        return 0;
    return index__run(db, on ? "INSERT OR IGNORE INTO blocks(a, b) VALUES (?1, ?2)" : "DELETE FROM blocks WHERE a = ?1 AND b = ?2",
                      NULL, 2, a, b) < 0
               ? -1
               : 0;
}

/* ================================================================ building */

typedef struct {
    index__db_t *db;
    volatile int *stop; /* the daemon stops: give up the build */
    long n;
    int failed;
    int (*put)(index__db_t *db, const bson_t *doc);
} index__load_t;

static int index__load_one(const bson_t *doc, void *ud)
{
    index__load_t *l = ud;
    if (*l->stop || l->put(l->db, doc) != 0) {
        l->failed = 1;
        return 1;
    }
    l->n++;
    return 0;
}

/* Loads a collection of MongoDB into db; the count loaded or -1. */
static long index__load(search_index_t *ix, index__db_t *db, const char *coll,
                        int (*put)(index__db_t *, const bson_t *))
{
    search_t *s = ix->s;
    index__load_t l = {.db = db, .stop = &ix->stop, .put = put};
    bson_t *f = bson_new(), *opts = BCON_NEW("batchSize", BCON_INT32(2000));
    long rc = db_each(s->db, coll, f, opts, index__load_one, &l);
    bson_destroy(f);
    bson_destroy(opts);
    return rc < 0 || l.failed ? -1 : l.n;
}

/* Opens path (creating it if asked) with the SQL functions registered; NULL after logging why. */
static sqlite3 *index__open(const char *path, int create)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        log_error(NULL, "index: cannot open %s: %s", path, db != NULL ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    if (rank_register(db) != 0) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static void index__remove_files(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(suffixes); i++) {
        char *p = xasprintf("%s%s", path, suffixes[i]);
        unlink(p);
        free(p);
    }
}

/* The builder thread: a new file from MongoDB into ix->fresh. */
static void *index__build_run(void *arg)
{
    search_index_t *ix = arg;
    int64_t t0 = core_now_ms();
    long users = -1, posts = -1, blocks = -1;
    index__db_t *db = xcalloc(1, sizeof(*db));
    int rc = -1;
    if ((db->db = index__open(ix->fresh_path, 1)) == NULL)
        goto out;
    if (index__exec(db->db, index__schema) != 0 || index__exec(db->db, "BEGIN") != 0)
        goto out;
    if ((users = index__load(ix, db, "users", index__put_user)) < 0 ||
        (posts = index__load(ix, db, "posts", index__put_post)) < 0 ||
        (blocks = index__load(ix, db, "blocks", index__put_block)) < 0) {
        if (!ix->stop)
            log_warn(NULL, "index: the build could not read MongoDB; tried again");
        goto out;
    }
    if (index__exec(db->db, "COMMIT") != 0 || index__exec(db->db, "PRAGMA journal_mode=WAL") != 0 ||
        index__exec(db->db, "PRAGMA cache_size=-8192; PRAGMA optimize") != 0)
        goto out;
    rc = 0;
    log_info(NULL, "index built: %ld posts, %ld users, %ld blocks in %lld ms (%s)", posts, users, blocks,
             (long long)(core_now_ms() - t0), ix->fresh_path);
out:
    if (rc != 0) {
        index__close(db);
        db = NULL;
        index__remove_files(ix->fresh_path);
    }
    ix->fresh = db;
    ix->build_rc = rc;
    __atomic_store_n(&ix->built, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void index__start_build(search_index_t *ix)
{
    static unsigned serial;
    free(ix->fresh_path);
    ix->fresh_path = xasprintf("%s/search-index.%ld.%u.db", ix->s->conf->index_dir, (long)getpid(), ++serial);
    index__remove_files(ix->fresh_path);
    ix->built = 0;
    ix->fresh = NULL;
    if (pthread_create(&ix->builder, NULL, index__build_run, ix) != 0) {
        log_error(NULL, "index: cannot start the builder thread");
        return;
    }
    ix->building = 1;
    ix->need_build = 0;
}

/* ================================================================ syncing one document */

/* Re-reads one document from MongoDB into db. 0, or -1 (MongoDB or SQLite failed). */
static int index__sync(search_index_t *ix, index__db_t *db, const char *kind, const char *id)
{
    const char *coll = strcmp(kind, "post") == 0 ? "posts" : strcmp(kind, "user") == 0 ? "users" : "blocks";
    int (*put)(index__db_t *, const bson_t *) = coll[0] == 'p' ? index__put_post : coll[0] == 'u' ? index__put_user
                                                                                                 : index__put_block;
    bson_t doc = BSON_INITIALIZER, *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_find_one(ix->s->db, coll, f, NULL, &doc);
    bson_destroy(f);
    if (rc == 0) { /* never written, or purged: as a tombstone would say */
        bson_reinit(&doc);
        BSON_APPEND_UTF8(&doc, "_id", id);
        if (coll[0] != 'b')
            BSON_APPEND_INT64(&doc, "gone", 1);
    }
    if (rc >= 0 && coll[0] == 'b' && rc == 0) {
        const char *colon = strchr(id, ':');
        if (colon != NULL) {
            char *a = xstrndup(id, (size_t)(colon - id));
            rc = index__run(db, "DELETE FROM blocks WHERE a = ?1 AND b = ?2", NULL, 2, a, colon + 1) < 0 ? -1 : 0;
            free(a);
        }
    } else if (rc >= 0) {
        rc = put(db, &doc);
    }
    bson_destroy(&doc);
    return rc < 0 ? -1 : 0;
}

static void index__pending_add(search_index_t *ix, const char *kind, const char *id)
{
    if (ix->npending == ix->cpending) {
        ix->cpending = ix->cpending ? ix->cpending * 2 : 256;
        ix->pending = xrealloc(ix->pending, ix->cpending * sizeof(*ix->pending));
    }
    ix->pending[ix->npending++] = xasprintf("%s %s", kind, id);
}

static void index__pending_clear(search_index_t *ix)
{
    for (size_t i = 0; i < ix->npending; i++)
        free(ix->pending[i]);
    ix->npending = 0;
}

static mq_disposition_t index__on_sync(mq_t *mq, const mq_message_t *msg, void *ud)
{
    (void)mq;
    search_index_t *ix = ud;
    const char *kind = msg->routing_key != NULL ? msg->routing_key : "";
    if ((strcmp(kind, "post") != 0 && strcmp(kind, "user") != 0 && strcmp(kind, "block") != 0) ||
        msg->body_len == 0 || msg->body_len > 200 || memchr(msg->body, '\0', msg->body_len) != NULL)
        return MQ_ACK; /* not ours to understand: nothing to sync */
    char id[201];
    memcpy(id, msg->body, msg->body_len);
    id[msg->body_len] = '\0';
    if (ix->building) {
        index__pending_add(ix, kind, id);
    } else if (ix->w != NULL && index__sync(ix, ix->w, kind, id) != 0) {
        log_warn(NULL, "index: sync of %s %s failed; the index is rebuilt", kind, id);
        ix->need_build = 1;
    }
    return MQ_ACK;
}

/* The build is done: its file becomes the index of every reader. */
static void index__finish_build(search_index_t *ix)
{
    pthread_join(ix->builder, NULL);
    ix->building = 0;
    if (ix->build_rc != 0) {
        ix->need_build = 1;
        index__pending_clear(ix);
        return;
    }
    size_t failed = 0;
    for (size_t i = 0; i < ix->npending; i++) {
        char *sp = strchr(ix->pending[i], ' ');
        *sp = '\0';
        if (index__sync(ix, ix->fresh, ix->pending[i], sp + 1) != 0)
            failed++;
    }
    index__pending_clear(ix);
    if (failed > 0)
        ix->need_build = 1;
    pthread_mutex_lock(&ix->lock);
    char *old = ix->path;
    ix->path = ix->fresh_path;
    ix->fresh_path = NULL;
    ix->gen++;
    pthread_mutex_unlock(&ix->lock);
    if (ix->w != NULL)
        index__close(ix->w);
    ix->w = ix->fresh;
    ix->fresh = NULL;
    if (old != NULL) { /* readers still on it keep their open files until they reopen */
        index__remove_files(old);
        free(old);
    }
}

/* ================================================================ the index thread */

static void *index__run_thread(void *arg)
{
    search_index_t *ix = arg;
    unsigned backoff_ms = 0;
    uint64_t next_build_ms = 0;
    while (!ix->stop) {
        mq_step(ix->mq, &ix->stop, 100, 256);
        if (!mq_connected(ix->mq)) {
            ix->need_build = 1; /* the queue died with the connection: changes were missed */
            core_sleep_ms(100, &ix->stop);
            continue;
        }
        if (ix->building && __atomic_load_n(&ix->built, __ATOMIC_ACQUIRE)) {
            index__finish_build(ix);
            if (ix->need_build) {
                backoff_ms = backoff_ms ? (backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2) : 500;
                next_build_ms = core_now_ms() + backoff_ms;
            } else {
                backoff_ms = 0;
            }
        }
        if (ix->need_build && !ix->building && core_now_ms() >= next_build_ms)
            index__start_build(ix);
    }
    if (ix->building) {
        pthread_join(ix->builder, NULL);
        index__close(ix->fresh);
        index__remove_files(ix->fresh_path);
    }
    return NULL;
}

/* Removes index files of this directory left by copies that died (their pid is gone). */
static void index__remove_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid;
        if (sscanf(e->d_name, "search-index.%ld.", &pid) != 1 || pid <= 0)
            continue;
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char *p = xasprintf("%s/%s", dir, e->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
}

/* mkdir -p. 0 or -1 (errno). */
static int index__mkdirs(const char *dir)
{
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *c = p + 1; rc == 0; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char was = *c;
        *c = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            rc = -1;
        *c = was;
        if (was == '\0')
            break;
    }
    free(p);
    return rc;
}

int index_start(search_t *s)
{
    search_index_t *ix = xcalloc(1, sizeof(*ix));
    ix->s = s;
    pthread_mutex_init(&ix->lock, NULL);
    if (index__mkdirs(s->conf->index_dir) != 0) {
        log_error(NULL, "SEARCH_INDEX_DIR: cannot create %s: %s", s->conf->index_dir, strerror(errno));
        free(ix);
        return -1;
    }
    index__remove_stale(s->conf->index_dir);
    char uuid[37];
    core_uuid(uuid);
    snprintf(ix->queue, sizeof(ix->queue), "search.sync.%s", uuid);
    mq_conf_t mc = {.url = s->conf->svc.amqp_url, .app_id = "search", .prefetch = 500};
    ix->mq = mq_new(&mc);
    static const char *const kinds[] = {"user", "post", "block", NULL};
    mq_declare_topic_queue(ix->mq, SEARCH_SYNC_EXCHANGE, ix->queue, kinds, 1);
    mq_consume(ix->mq, ix->queue, index__on_sync, ix);
    ix->need_build = 1;
    s->index = ix;
    if (pthread_create(&ix->thread, NULL, index__run_thread, ix) != 0) {
        log_error(NULL, "cannot start the index thread");
        return -1;
    }
    ix->started = 1;
    return 0;
}

void index_stop(search_t *s)
{
    search_index_t *ix = s->index;
    if (ix == NULL)
        return;
    ix->stop = 1;
    if (ix->started)
        pthread_join(ix->thread, NULL);
    mq_free(ix->mq);
    index__close(ix->w);
    if (ix->path != NULL)
        index__remove_files(ix->path);
    index__pending_clear(ix);
    free(ix->pending);
    free(ix->path);
    free(ix->fresh_path);
    pthread_mutex_destroy(&ix->lock);
    free(ix);
    s->index = NULL;
}

int index_ready(search_t *s)
{
    search_index_t *ix = s->index;
    pthread_mutex_lock(&ix->lock);
    int ready = ix->gen > 0;
    pthread_mutex_unlock(&ix->lock);
    return ready;
}

sqlite3 *index_reader(search_worker_t *w)
{
    search_index_t *ix = w->s->index;
    pthread_mutex_lock(&ix->lock);
    unsigned gen = ix->gen;
    char *path = gen != w->reader_gen && gen > 0 ? xstrdup(ix->path) : NULL;
    pthread_mutex_unlock(&ix->lock);
    if (path != NULL) {
        sqlite3 *db = index__open(path, 0);
        free(path);
        if (db != NULL) {
            index__exec(db, "PRAGMA cache_size=-16384; PRAGMA mmap_size=1073741824; PRAGMA query_only=1");
            index_reader_close(w);
            w->reader = xcalloc(1, sizeof(*w->reader));
            w->reader->db = db;
            w->reader_gen = gen;
        }
    }
    return w->reader != NULL ? w->reader->db : NULL;
}

sqlite3_stmt *index_stmt(search_worker_t *w, const char *sql)
{
    return w->reader != NULL ? index__stmt(w->reader, sql) : NULL;
}

void index_reader_close(search_worker_t *w)
{
    index__close(w->reader);
    w->reader = NULL;
}
