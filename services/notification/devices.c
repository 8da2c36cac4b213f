/* devices.c -- the push tokens of each user, kept from auth's device.registered and
 * device.removed: one document per user, {tokens: {<h>: {t, p, at}}, gone: {<h>: at}}, where <h>
 * is a hash of the token (tokens may hold dots, which keys may not). */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "notif.h"

static void devices__key(const char *token, char out[17])
{
    unsigned char h[8];
    crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* The versions of token in user's document: *on the registration's (or -1), *off the removal's
 * (or -1). 0 or -1. */
static int devices__versions(notif_t *n, const char *user, const char *h, int64_t *on, int64_t *off)
{
    *on = *off = -1;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user)), doc = BSON_INITIALIZER;
    int rc = db_find_one(n->db, "devices", f, NULL, &doc);
    char path[64];
    bson_iter_t it, d;
    snprintf(path, sizeof(path), "tokens.%s.at", h);
    if (rc == 1 && bson_iter_init(&it, &doc) && bson_iter_find_descendant(&it, path, &d))
        *on = bson_iter_as_int64(&d);
    snprintf(path, sizeof(path), "gone.%s", h);
    if (rc == 1 && bson_iter_init(&it, &doc) && bson_iter_find_descendant(&it, path, &d))
        *off = bson_iter_as_int64(&d);
    bson_destroy(&doc);
    bson_destroy(f);
    return rc < 0 ? -1 : 0;
}

int devices_registered(notif_t *n, const char *user, const char *token, const char *platform, int64_t at)
{
    char h[17], k1[64], k2[64];
    devices__key(token, h);
    int64_t on, off;
    if (devices__versions(n, user, h, &on, &off) != 0)
        return -1;
    if (on >= at || off > at) /* repeated, or removed later than this registration */
        return 0;
    snprintf(k1, sizeof(k1), "tokens.%s", h);
    snprintf(k2, sizeof(k2), "gone.%s", h);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user));
    bson_t *u = BCON_NEW("$set", "{", k1, "{", "t", BCON_UTF8(token), "p", BCON_UTF8(platform), "at", BCON_INT64(at),
                         "}", "}", "$unset", "{", k2, "", "}");
    int rc = db_update_one(n->db, "devices", f, u, 1) < 0 ? -1 : 0;
    bson_destroy(f);
    bson_destroy(u);
    return rc;
}

int devices_removed(notif_t *n, const char *user, const char *token, int64_t at)
{
    char h[17], k1[64], k2[64];
    devices__key(token, h);
    int64_t on, off;
    if (devices__versions(n, user, h, &on, &off) != 0)
        return -1;
    if (on > at || off >= at) /* registered again later, or repeated */
        return 0;
    snprintf(k1, sizeof(k1), "tokens.%s", h);
    snprintf(k2, sizeof(k2), "gone.%s", h);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user));
    bson_t *u = BCON_NEW("$unset", "{", k1, "", "}", "$set", "{", k2, BCON_INT64(at), "}");
    int rc = db_update_one(n->db, "devices", f, u, 1) < 0 ? -1 : 0;
    bson_destroy(f);
    bson_destroy(u);
    return rc;
}

int devices_drop_all(notif_t *n, const char *user)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(user));
    int rc = db_delete_one(n->db, "devices", f) < 0 ? -1 : 0;
    bson_destroy(f);
    return rc;
}

typedef struct {
    void (*fn)(const char *user, const char *token, void *ud);
    void *ud;
} devices__each_t;

static int devices__each_doc(const bson_t *doc, void *ud)
{
    devices__each_t *e = ud;
    const char *user = db_doc_str(doc, "_id");
    bson_iter_t it, toks, fld;
    if (user == NULL || !bson_iter_init_find(&it, doc, "tokens") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
        !bson_iter_recurse(&it, &toks))
        return 0;
    while (bson_iter_next(&toks))
        if (BSON_ITER_HOLDS_DOCUMENT(&toks) && bson_iter_recurse(&toks, &fld) && bson_iter_find(&fld, "t") &&
            BSON_ITER_HOLDS_UTF8(&fld))
            e->fn(user, bson_iter_utf8(&fld, NULL), e->ud);
    return 0;
}

int devices_each(notif_t *n, const char *const *users, size_t count,
                 void (*fn)(const char *user, const char *token, void *ud), void *ud)
{
    devices__each_t e = {fn, ud};
    for (size_t i = 0; i < count; i += 1000)
        if (db_find_ids(n->db, "devices", users + i, count - i < 1000 ? count - i : 1000, devices__each_doc, &e) < 0)
            return -1;
    return 0;
}
