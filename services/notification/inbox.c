/* inbox.c -- each user's notifications: one document per recipient, tombstones of what vanished,
 * and the four routes that read and mark them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "json/json.h"
#include "log/log.h"
#include "notif.h"

#define INBOX__KEYS_PER_QUERY 1000

/* ================================================================ ids and tombstones */

void inbox_id(const char *recipient, const char *type, const char *source, char out[NOTIF_ID_LEN + 1])
{
    crypto_generichash_state st;
    unsigned char h[16];
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    const char *parts[] = {recipient, type, source};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(parts); i++)
        crypto_generichash_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    crypto_generichash_final(&st, h, sizeof(h));
    for (int i = 0; i < NOTIF_ID_LEN / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

void stops_block_key(const char *a, const char *b, char *out, size_t outlen)
{
    if (strcmp(a, b) > 0) {
        const char *t = a;
        a = b;
        b = t;
    }
    snprintf(out, outlen, "b:%s:%s", a, b);
}

int stops_put(notif_t *n, const char *key, int64_t at)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(key));
    bson_t *u = BCON_NEW("$max", "{", "at", BCON_INT64(at), "}");
    int rc = db_update_one(n->db, "stops", f, u, 1) < 0 ? -1 : 0;
    bson_destroy(f);
    bson_destroy(u);
    return rc;
}

int stops_delete(notif_t *n, const char *key)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(key));
    int rc = db_delete_one(n->db, "stops", f) < 0 ? -1 : 0;
    bson_destroy(f);
    return rc;
}

int stops_get(notif_t *n, const char *key, int64_t *at)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(key)), doc = BSON_INITIALIZER;
    int rc = db_find_one(n->db, "stops", f, NULL, &doc);
    if (rc == 1 && at != NULL)
        *at = db_doc_int(&doc, "at");
    bson_destroy(&doc);
    bson_destroy(f);
    return rc;
}

/* A set of tombstone keys to look up, and what was found. */
typedef struct {
    char **keys;
    size_t n;
    cJSON *found; /* {key: at} */
} inbox__stops_t;

static void inbox__stops_add(inbox__stops_t *s, const char *prefix, const char *id)
{
    if (id == NULL || id[0] == '\0')
        return;
    char *k = xasprintf("%s%s", prefix, id);
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->keys[i], k) == 0) {
            free(k);
            return;
        }
    s->keys = xrealloc(s->keys, (s->n + 1) * sizeof(*s->keys));
    s->keys[s->n++] = k;
}

static int inbox__stops_keep(const bson_t *doc, void *ud)
{
    inbox__stops_t *s = ud;
    const char *id = db_doc_str(doc, "_id");
    if (id != NULL)
        cJSON_AddNumberToObject(s->found, id, (double)db_doc_int(doc, "at"));
    return 0;
}

/* Looks every key up (in queries of up to 1000). 0 or -1. */
static int inbox__stops_fetch(notif_t *n, inbox__stops_t *s)
{
    cJSON_Delete(s->found);
    s->found = cJSON_CreateObject();
    for (size_t i = 0; i < s->n; i += INBOX__KEYS_PER_QUERY) {
        size_t k = s->n - i < INBOX__KEYS_PER_QUERY ? s->n - i : INBOX__KEYS_PER_QUERY;
        if (db_find_ids(n->db, "stops", (const char *const *)s->keys + i, k, inbox__stops_keep, s) < 0)
            return -1;
    }
    return 0;
}

static int inbox__stopped(const inbox__stops_t *s, const char *prefix, const char *id)
{
    if (id == NULL || id[0] == '\0')
        return 0;
    char k[160];
    snprintf(k, sizeof(k), "%s%s", prefix, id);
    return cJSON_GetObjectItemCaseSensitive(s->found, k) != NULL;
}

static void inbox__stops_free(inbox__stops_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->keys[i]);
    free(s->keys);
    cJSON_Delete(s->found);
    memset(s, 0, sizeof(*s));
}

/* ================================================================ writing */

/* Appends the stored form of e as member key of doc. */
static void inbox__append_entry(bson_t *doc, const char *key, const notif_entry_t *e)
{
    bson_t v;
    bson_append_document_begin(doc, key, -1, &v);
    BSON_APPEND_UTF8(&v, "t", e->type);
    BSON_APPEND_INT64(&v, "a", e->at);
    BSON_APPEND_UTF8(&v, "x", e->actor);
    BSON_APPEND_UTF8(&v, "xn", e->actor_username != NULL ? e->actor_username : "");
    if (e->post_id != NULL)
        BSON_APPEND_UTF8(&v, "p", e->post_id);
    if (e->comment_id != NULL)
        BSON_APPEND_UTF8(&v, "c", e->comment_id);
    if (e->reply_to != NULL)
        BSON_APPEND_UTF8(&v, "rt", e->reply_to);
    if (e->text != NULL)
        BSON_APPEND_UTF8(&v, "s", e->text);
    bson_append_document_end(doc, &v);
}

/* {$set: {n.<id>: entry}} or {$unset: {n.<id>: "", r.<id>: ""}} for recipient's inbox. */
static bson_t *inbox__change(const notif_entry_t *e, const char *id)
{
    bson_t *u = bson_new(), op;
    char key[64];
    if (e != NULL) {
        bson_append_document_begin(u, "$set", -1, &op);
        snprintf(key, sizeof(key), "n.%s", id);
        inbox__append_entry(&op, key, e);
    } else {
        bson_append_document_begin(u, "$unset", -1, &op);
        snprintf(key, sizeof(key), "n.%s", id);
        BSON_APPEND_UTF8(&op, key, "");
        snprintf(key, sizeof(key), "r.%s", id);
        BSON_APPEND_UTF8(&op, key, "");
    }
    bson_append_document_end(u, &op);
    return u;
}

static int inbox__write(notif_t *n, const char *recipient, const notif_entry_t *e, const char *id)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(recipient)), *u = inbox__change(e, id);
    int rc = db_update_one(n->db, "inboxes", f, u, e != NULL) < 0 ? -1 : 0;
    bson_destroy(f);
    bson_destroy(u);
    return rc;
}

/* The tombstones that keep e from recipient (id its notification id). */
static void inbox__stops_of(inbox__stops_t *s, const notif_entry_t *e, const char *recipient, const char *id)
{
    char k[160];
    inbox__stops_add(s, "u:", e->actor);
    inbox__stops_add(s, "u:", recipient);
    inbox__stops_add(s, "p:", e->post_id);
    inbox__stops_add(s, "c:", e->comment_id);
    inbox__stops_add(s, "c:", e->reply_to);
    stops_block_key(e->actor, recipient, k, sizeof(k));
    inbox__stops_add(s, "", k);
    inbox__stops_add(s, "r:", id);
}

/* 1 if a tombstone found in s keeps e from recipient. */
static int inbox__unwanted(const inbox__stops_t *s, const notif_entry_t *e, const char *recipient, const char *id)
{
    char k[160];
    stops_block_key(e->actor, recipient, k, sizeof(k));
    if (inbox__stopped(s, "u:", e->actor) || inbox__stopped(s, "u:", recipient) ||
        inbox__stopped(s, "p:", e->post_id) || inbox__stopped(s, "c:", e->comment_id) ||
        inbox__stopped(s, "c:", e->reply_to) || inbox__stopped(s, "", k))
        return 1;
    /* retracted: only what happened before the retraction stays out (like, unlike, like again) */
    snprintf(k, sizeof(k), "r:%s", id);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(s->found, k);
    return r != NULL && (int64_t)r->valuedouble >= e->at;
}

/* Trims recipient's inbox to the newest max_items, now and then (one write in trim_every). */
static void inbox__maybe_trim(notif_t *n, const char *recipient);

long inbox_put_many(notif_t *n, const notif_entry_t *e, const char *const *recipients, size_t nr,
                    char (*ids)[NOTIF_ID_LEN + 1])
{
    inbox__stops_t s = {0};
    bson_t **filters = xcalloc(nr ? nr : 1, sizeof(*filters)), **updates = xcalloc(nr ? nr : 1, sizeof(*updates));
    char *want = xcalloc(nr ? nr : 1, 1);
    long stored = -1;
    size_t nw = 0;
    for (size_t i = 0; i < nr; i++) {
        inbox_id(recipients[i], e->type, e->source, ids[i]);
        inbox__stops_of(&s, e, recipients[i], ids[i]);
    }
    if (inbox__stops_fetch(n, &s) != 0)
        goto out;
    for (size_t i = 0; i < nr; i++) {
        want[i] = strcmp(recipients[i], e->actor) != 0 && !inbox__unwanted(&s, e, recipients[i], ids[i]);
        if (!want[i])
            continue;
        filters[nw] = BCON_NEW("_id", BCON_UTF8(recipients[i]));
        updates[nw] = inbox__change(e, ids[i]);
        nw++;
    }
    if (nw > 0 && db_update_bulk(n->db, "inboxes", filters, updates, nw, 1) != 0)
        goto out;
    /* A retraction writes its tombstone and then cleans; this looks again after writing, so one of
     * the two always sees the other. */
    if (nw > 0 && inbox__stops_fetch(n, &s) != 0)
        goto out;
    stored = 0;
    for (size_t i = 0; i < nr; i++) {
        if (!want[i])
            continue;
        if (inbox__unwanted(&s, e, recipients[i], ids[i])) {
            if (inbox__write(n, recipients[i], NULL, ids[i]) != 0) {
                stored = -1;
                goto out;
            }
            want[i] = 0;
            continue;
        }
        stored++;
        inbox__maybe_trim(n, recipients[i]);
    }
out:
    for (size_t i = 0; i < nw; i++) {
        bson_destroy(filters[i]);
        bson_destroy(updates[i]);
    }
    /* what was not stored gets an empty id: the caller pushes nothing for it */
    for (size_t i = 0; stored >= 0 && i < nr; i++)
        if (!want[i])
            ids[i][0] = '\0';
    free(filters);
    free(updates);
    free(want);
    inbox__stops_free(&s);
    return stored;
}

int inbox_put(notif_t *n, const notif_entry_t *e)
{
    char id[1][NOTIF_ID_LEN + 1];
    long rc = inbox_put_many(n, e, &e->recipient, 1, id);
    return rc < 0 ? -1 : (int)rc;
}

int inbox_retract(notif_t *n, const char *recipient, const char *type, const char *source, int64_t at)
{
    char id[NOTIF_ID_LEN + 1], key[NOTIF_ID_LEN + 8];
    inbox_id(recipient, type, source, id);
    snprintf(key, sizeof(key), "r:%s", id);
    if (stops_put(n, key, at) != 0)
        return -1;
    /* a retraction older than the notification there (unlike, then like again; events taken out of
     * order) leaves it */
    snprintf(key, sizeof(key), "n.%s.a", id);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(recipient)), *opts = BCON_NEW("projection", "{", key, BCON_INT32(1), "}");
    bson_t doc = BSON_INITIALIZER;
    bson_iter_t it, a;
    int rc = db_find_one(n->db, "inboxes", f, opts, &doc);
    int newer = rc == 1 && bson_iter_init(&it, &doc) && bson_iter_find_descendant(&it, key, &a) &&
                bson_iter_as_int64(&a) > at;
    bson_destroy(&doc);
    bson_destroy(opts);
    bson_destroy(f);
    if (rc < 0)
        return -1;
    return newer ? 0 : inbox__write(n, recipient, NULL, id);
}

int inbox_drop_all(notif_t *n, const char *user)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user));
    int rc = db_delete_one(n->db, "inboxes", f) < 0 ? -1 : 0;
    bson_destroy(f);
    return rc;
}

/* ================================================================ reading */

/* One notification of an inbox as read from its document (strings borrowed from the document). */
typedef struct {
    const char *id, *type, *actor, *actor_username, *post, *comment, *reply_to, *text;
    int64_t at;
    int read, hidden;
} inbox__item_t;

typedef struct {
    bson_t doc;
    inbox__item_t *items; /* newest first */
    size_t n;
} inbox__view_t;

static int inbox__str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int inbox__newer_first(const void *a, const void *b)
{
    const inbox__item_t *x = a, *y = b;
    if (x->at != y->at)
        return x->at > y->at ? -1 : 1;
    return -strcmp(x->id, y->id);
}

/* Reads user's inbox into v, newest first, with hidden set on what a tombstone (or age) removes.
 * 0 or -1. */
static int inbox__load(notif_t *n, const char *user, inbox__view_t *v)
{
    memset(v, 0, sizeof(*v));
    bson_init(&v->doc);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user));
    int rc = db_find_one(n->db, "inboxes", f, NULL, &v->doc);
    bson_destroy(f);
    if (rc <= 0)
        return rc;
    bson_iter_t it, ent, fld, rd;
    /* the read marks, sorted, to look each notification up in */
    const char **reads = NULL;
    size_t nreads = 0;
    if (bson_iter_init_find(&it, &v->doc, "r") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &rd))
        while (bson_iter_next(&rd)) {
            reads = xrealloc(reads, (nreads + 1) * sizeof(*reads));
            reads[nreads++] = bson_iter_key(&rd);
        }
    if (nreads > 1)
        qsort(reads, nreads, sizeof(*reads), inbox__str_cmp);
    if (!bson_iter_init_find(&it, &v->doc, "n") || !BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &ent)) {
        free(reads);
        return 0;
    }
    while (bson_iter_next(&ent)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&ent) || !bson_iter_recurse(&ent, &fld))
            continue;
        inbox__item_t x = {.id = bson_iter_key(&ent)};
        while (bson_iter_next(&fld)) {
            const char *k = bson_iter_key(&fld);
            if (BSON_ITER_HOLDS_UTF8(&fld)) {
                const char *s = bson_iter_utf8(&fld, NULL);
                if (strcmp(k, "t") == 0)
                    x.type = s;
                else if (strcmp(k, "x") == 0)
                    x.actor = s;
                else if (strcmp(k, "xn") == 0)
                    x.actor_username = s;
                else if (strcmp(k, "p") == 0)
                    x.post = s;
                else if (strcmp(k, "c") == 0)
                    x.comment = s;
                else if (strcmp(k, "rt") == 0)
                    x.reply_to = s;
                else if (strcmp(k, "s") == 0)
                    x.text = s;
            } else if (strcmp(k, "a") == 0 && (BSON_ITER_HOLDS_INT64(&fld) || BSON_ITER_HOLDS_INT32(&fld))) {
                x.at = bson_iter_as_int64(&fld);
            }
        }
        if (x.type == NULL || x.actor == NULL)
            continue;
        x.read = nreads > 0 && bsearch(&x.id, reads, nreads, sizeof(*reads), inbox__str_cmp) != NULL;
        v->items = xrealloc(v->items, (v->n + 1) * sizeof(*v->items));
        v->items[v->n++] = x;
    }
    free(reads);
    if (v->n > 1)
        qsort(v->items, v->n, sizeof(*v->items), inbox__newer_first);

    /* what vanished since: posts, comments, actors (tombstones), and what is past the retention */
    inbox__stops_t s = {0};
    for (size_t i = 0; i < v->n; i++) {
        inbox__stops_add(&s, "u:", v->items[i].actor);
        inbox__stops_add(&s, "p:", v->items[i].post);
        inbox__stops_add(&s, "c:", v->items[i].comment);
        inbox__stops_add(&s, "c:", v->items[i].reply_to);
    }
    rc = inbox__stops_fetch(n, &s);
    int64_t oldest = core_wall_ms() - n->conf->retention_ms;
    size_t hidden = 0;
    for (size_t i = 0; rc == 0 && i < v->n; i++) {
        inbox__item_t *x = &v->items[i];
        x->hidden = x->at < oldest || inbox__stopped(&s, "u:", x->actor) || inbox__stopped(&s, "p:", x->post) ||
                    inbox__stopped(&s, "c:", x->comment) || inbox__stopped(&s, "c:", x->reply_to);
        hidden += (size_t)x->hidden;
    }
    inbox__stops_free(&s);
    if (rc != 0)
        return -1;
    if (hidden > 0) { /* clean up what is hidden (best effort: reads hide it anyway) */
        bson_t *u = bson_new(), op;
        char key[64];
        bson_append_document_begin(u, "$unset", -1, &op);
        for (size_t i = 0; i < v->n; i++)
            if (v->items[i].hidden) {
                snprintf(key, sizeof(key), "n.%s", v->items[i].id);
                BSON_APPEND_UTF8(&op, key, "");
                snprintf(key, sizeof(key), "r.%s", v->items[i].id);
                BSON_APPEND_UTF8(&op, key, "");
            }
        bson_append_document_end(u, &op);
        f = BCON_NEW("_id", BCON_UTF8(user));
        if (db_update_one(n->db, "inboxes", f, u, 0) < 0)
            log_warn(NULL, "inbox of %s: could not remove %zu vanished notifications", user, hidden);
        bson_destroy(f);
        bson_destroy(u);
    }
    return 0;
}

static void inbox__view_free(inbox__view_t *v)
{
    free(v->items);
    bson_destroy(&v->doc);
    memset(v, 0, sizeof(*v));
}

static void inbox__maybe_trim(notif_t *n, const char *recipient)
{
    if (n->conf->trim_every > 1 && randombytes_uniform((uint32_t)n->conf->trim_every) != 0)
        return;
    inbox__view_t v;
    if (inbox__load(n, recipient, &v) != 0) {
        inbox__view_free(&v);
        return;
    }
    size_t keep = 0, cut = 0;
    bson_t *u = bson_new(), op;
    bson_append_document_begin(u, "$unset", -1, &op);
    for (size_t i = 0; i < v.n; i++) {
        if (v.items[i].hidden)
            continue;
        if (++keep <= (size_t)n->conf->max_items)
            continue;
        char key[64];
        snprintf(key, sizeof(key), "n.%s", v.items[i].id);
        BSON_APPEND_UTF8(&op, key, "");
        snprintf(key, sizeof(key), "r.%s", v.items[i].id);
        BSON_APPEND_UTF8(&op, key, "");
        cut++;
    }
    bson_append_document_end(u, &op);
    if (cut > 0) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(recipient));
        if (db_update_one(n->db, "inboxes", f, u, 0) < 0)
            log_warn(NULL, "inbox of %s: trimming failed; tried again later", recipient);
        bson_destroy(f);
    }
    bson_destroy(u);
    inbox__view_free(&v);
}

int inbox_drop_matching(notif_t *n, const char *user, const char *key, const char *value)
{
    inbox__view_t v;
    int rc = inbox__load(n, user, &v);
    size_t cut = 0;
    bson_t *u = bson_new(), op;
    bson_append_document_begin(u, "$unset", -1, &op);
    for (size_t i = 0; rc == 0 && i < v.n; i++) {
        const inbox__item_t *x = &v.items[i];
        const char *have = strcmp(key, "p") == 0 ? x->post : strcmp(key, "c") == 0 ? x->comment : x->actor;
        if (have == NULL || strcmp(have, value) != 0)
            continue;
        char k[64];
        snprintf(k, sizeof(k), "n.%s", x->id);
        BSON_APPEND_UTF8(&op, k, "");
        snprintf(k, sizeof(k), "r.%s", x->id);
        BSON_APPEND_UTF8(&op, k, "");
        cut++;
    }
    bson_append_document_end(u, &op);
    if (rc == 0 && cut > 0) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(user));
        rc = db_update_one(n->db, "inboxes", f, u, 0) < 0 ? -1 : 0;
        bson_destroy(f);
    }
    bson_destroy(u);
    inbox__view_free(&v);
    return rc < 0 ? -1 : 0;
}

/* ================================================================ purge */

int inbox_purge(notif_t *n)
{
    /* Tombstones outlive what they hide by the retention: an entry older than that is hidden by
     * its age. stops is small next to the inboxes (one per deletion), so scanning it is fine. */
    int64_t before = core_wall_ms() - n->conf->retention_ms - 24LL * 3600 * 1000;
    bson_t *f = BCON_NEW("at", "{", "$lt", BCON_INT64(before), "}");
    long rc = db_delete_many(n->db, "stops", f);
    bson_destroy(f);
    return rc < 0 ? -1 : 0;
}

/* ================================================================ rendering */

static cJSON *inbox__render(const inbox__item_t *x, const cJSON *actors, const cJSON *thumbs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", x->id);
    cJSON_AddStringToObject(o, "type", x->type);
    json_add_time(o, "created_at", x->at);
    cJSON_AddBoolToObject(o, "read", x->read);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(actors, x->actor);
    cJSON_AddItemToObject(o, "actor", cJSON_Duplicate(a, 1));
    if (x->post == NULL) {
        cJSON_AddNullToObject(o, "target");
        return o;
    }
    cJSON *t = cJSON_AddObjectToObject(o, "target");
    cJSON_AddStringToObject(t, "type", x->comment != NULL ? "comment" : "post");
    cJSON_AddStringToObject(t, "id", x->comment != NULL ? x->comment : x->post);
    cJSON_AddStringToObject(t, "post_id", x->post);
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(thumbs, x->post);
    if (cJSON_IsString(th))
        cJSON_AddStringToObject(t, "thumbnail_url", th->valuestring);
    else
        cJSON_AddNullToObject(t, "thumbnail_url");
    if (strcmp(x->type, "comment") == 0) {
        cJSON_AddStringToObject(t, "text", x->text != NULL ? x->text : "");
        if (x->reply_to != NULL)
            cJSON_AddStringToObject(t, "reply_to", x->reply_to);
        else
            cJSON_AddNullToObject(t, "reply_to");
    }
    return o;
}

/* Renders items[0..count) (each visible) into array out. 0 or -1. */
static int inbox__render_all(notif_t *n, inbox__item_t *const *items, size_t count, cJSON *out)
{
    const char **actors = xcalloc(count ? count : 1, sizeof(*actors)),
               **names = xcalloc(count ? count : 1, sizeof(*names)),
               **posts = xcalloc(count ? count : 1, sizeof(*posts));
    size_t np = 0;
    for (size_t i = 0; i < count; i++) {
        actors[i] = items[i]->actor;
        names[i] = items[i]->actor_username;
        if (items[i]->post != NULL)
            posts[np++] = items[i]->post;
    }
    cJSON *a = users_actors(n, actors, names, count), *t = a != NULL ? users_post_thumbs(n, posts, np) : NULL;
    int rc = a != NULL && t != NULL ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < count; i++)
        cJSON_AddItemToArray(out, inbox__render(items[i], a, t));
    cJSON_Delete(a);
    cJSON_Delete(t);
    free(actors);
    free(names);
    free(posts);
    return rc;
}

/* ================================================================ routes */

/* The page arguments; a cursor's position is "<ms>:<id>" of the last notification of its page.
 * 0, or -1 answered. */
static int inbox__page_args(notif_t *n, const mq_message_t *req, mq_reply_t *r, long *limit, int64_t *after_at,
                            char *after_id)
{
    char after[64];
    *after_at = 0;
    after_id[0] = '\0';
    if (rpc_page_args(&n->cursor, req, r, "notifications", limit, after, sizeof(after)) != 0)
        return -1;
    if (after[0] == '\0')
        return 0;
    char *colon = strchr(after, ':'), *end;
    long long at = strtoll(after, &end, 10);
    if (colon == NULL || end != colon || strlen(colon + 1) != NOTIF_ID_LEN) {
        rpc_problem(r, 400, "bad-cursor", "the cursor is not one this list gave", NULL);
        return -1;
    }
    *after_at = at;
    strcpy(after_id, colon + 1);
    return 0;
}

void inbox_list(notif_t *n, const mq_message_t *req, mq_reply_t *r)
{
    long limit;
    int64_t after_at;
    char after_id[NOTIF_ID_LEN + 1];
    if (inbox__page_args(n, req, r, &limit, &after_at, after_id) != 0)
        return;
    inbox__view_t v;
    if (inbox__load(n, req->user_id, &v) != 0) {
        inbox__view_free(&v);
        rpc_db_error(r);
        return;
    }
    inbox__item_t **page = xcalloc((size_t)limit, sizeof(*page));
    size_t np = 0, i = 0;
    if (after_id[0] != '\0') /* past the cursor's place: it need not be there any more */
        while (i < v.n && (v.items[i].at > after_at ||
                           (v.items[i].at == after_at && strcmp(v.items[i].id, after_id) >= 0)))
            i++;
    for (; i < v.n && np < (size_t)limit; i++)
        if (!v.items[i].hidden)
            page[np++] = &v.items[i];
    int more = 0;
    for (; i < v.n && !more; i++)
        more = !v.items[i].hidden;
    cJSON *o = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(o, "items");
    if (inbox__render_all(n, page, np, items) != 0) {
        cJSON_Delete(o);
        rpc_db_error(r);
    } else {
        char key[64];
        if (more)
            snprintf(key, sizeof(key), "%lld:%s", (long long)page[np - 1]->at, page[np - 1]->id);
        rpc_page_next(&n->cursor, o, "notifications", more ? key : NULL);
        rpc_json(r, 200, o);
    }
    free(page);
    inbox__view_free(&v);
}

void inbox_unread_count(notif_t *n, const mq_message_t *req, mq_reply_t *r)
{
    inbox__view_t v;
    if (inbox__load(n, req->user_id, &v) != 0) {
        inbox__view_free(&v);
        rpc_db_error(r);
        return;
    }
    long count = 0;
    for (size_t i = 0; i < v.n; i++)
        count += !v.items[i].hidden && !v.items[i].read;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)count);
    rpc_json(r, 200, o);
    inbox__view_free(&v);
}

void inbox_read_all(notif_t *n, const mq_message_t *req, mq_reply_t *r)
{
    inbox__view_t v;
    if (inbox__load(n, req->user_id, &v) != 0) {
        inbox__view_free(&v);
        rpc_db_error(r);
        return;
    }
    bson_t *u = bson_new(), op;
    size_t marks = 0;
    bson_append_document_begin(u, "$set", -1, &op);
    for (size_t i = 0; i < v.n; i++)
        if (!v.items[i].read && !v.items[i].hidden) {
            char key[64];
            snprintf(key, sizeof(key), "r.%s", v.items[i].id);
            BSON_APPEND_INT32(&op, key, 1);
            marks++;
        }
    bson_append_document_end(u, &op);
    int rc = 0;
    if (marks > 0) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(req->user_id));
        rc = db_update_one(n->db, "inboxes", f, u, 0) < 0 ? -1 : 0;
        bson_destroy(f);
    }
    bson_destroy(u);
    inbox__view_free(&v);
    if (rc != 0)
        rpc_db_error(r);
    else
        rpc_no_content(r);
}

static int inbox__hex_id(const char *s)
{
    if (strlen(s) != NOTIF_ID_LEN)
        return 0;
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return 0;
    return 1;
}

void inbox_mark(notif_t *n, const mq_message_t *req, mq_reply_t *r)
{
    char id[NOTIF_ID_LEN + 2];
    cJSON *body = NULL;
    inbox__view_t v = {0};
    bson_init(&v.doc);
    if (rpc_param(req, "id", id, sizeof(id)) != 0 || !inbox__hex_id(id)) {
        rpc_not_found(r, "no such notification");
        goto out;
    }
    body = rpc_body(req, r);
    if (body == NULL)
        goto out;
    const cJSON *read = cJSON_GetObjectItemCaseSensitive(body, "read");
    cJSON *errors = cJSON_CreateObject();
    if (!cJSON_IsBool(read))
        cJSON_AddStringToObject(errors, "read", "required: true or false");
    for (const cJSON *m = body->child; m != NULL; m = m->next)
        if (strcmp(m->string, "read") != 0)
            cJSON_AddStringToObject(errors, m->string, "unknown member");
    if (rpc_invalid_fields(r, &errors))
        goto out;
    cJSON_Delete(errors);
    inbox__view_free(&v);
    if (inbox__load(n, req->user_id, &v) != 0) {
        rpc_db_error(r);
        goto out;
    }
    inbox__item_t *x = NULL;
    for (size_t i = 0; i < v.n && x == NULL; i++)
        if (strcmp(v.items[i].id, id) == 0 && !v.items[i].hidden)
            x = &v.items[i];
    if (x == NULL) {
        rpc_not_found(r, "no such notification");
        goto out;
    }
    int want = cJSON_IsTrue(read);
    if (want != x->read) {
        char key[NOTIF_ID_LEN + 8];
        snprintf(key, sizeof(key), "r.%s", id);
        bson_t *f = BCON_NEW("_id", BCON_UTF8(req->user_id));
        bson_t *u = want ? BCON_NEW("$set", "{", key, BCON_INT32(1), "}") : BCON_NEW("$unset", "{", key, "", "}");
        int rc = db_update_one(n->db, "inboxes", f, u, 0);
        bson_destroy(f);
        bson_destroy(u);
        if (rc < 0) {
            rpc_db_error(r);
            goto out;
        }
        x->read = want;
    }
    cJSON *one = cJSON_CreateArray();
    if (inbox__render_all(n, &x, 1, one) != 0) {
        cJSON_Delete(one);
        rpc_db_error(r);
        goto out;
    }
    rpc_json(r, 200, cJSON_DetachItemFromArray(one, 0));
    cJSON_Delete(one);
out:
    cJSON_Delete(body);
    inbox__view_free(&v);
}
