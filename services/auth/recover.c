/* recover.c -- auth's outbox recovery: what an abandoned event's request wrote, and what followed it.
 *
 * A pending event older than AUTH_OUTBOX_RECOVER_AFTER belongs to a request that died between
 * its outbox_begin and its outbox_commit (kill -9, a database error). Recovery looks at the
 * decisive write of that request (the account, the edge with this event's op id, the device) and
 * either completes what followed it and lets the event go out, or drops the event: the write
 * never happened, and the client never got a success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "json/json.h"
#include "log/log.h"

static int rec__has(auth_t *a, const char *coll, const char *id, const char *k2, const char *v2)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    if (k2 != NULL)
        BSON_APPEND_UTF8(f, k2, v2);
    int rc = db_exists(a->db, coll, f);
    bson_destroy(f);
    return rc;
}

outbox_verdict_t auth_outbox_recover(void *ud, const bson_t *doc, char **body)
{
    auth_t *a = ud;
    const char *id = db_doc_str(doc, "_id"), *key = db_doc_str(doc, "key"), *ra = db_doc_str(doc, "a"),
               *rb = db_doc_str(doc, "b");
    if (id == NULL || key == NULL || ra == NULL)
        return OUTBOX_DROP;
    char edge[160];
    snprintf(edge, sizeof(edge), "%s:%s", ra, rb != NULL ? rb : "");
    int has;
    if (strcmp(key, "user.registered") == 0) {
        has = rec__has(a, "users", ra, NULL, NULL);
        return has < 0 ? OUTBOX_KEEP : has ? OUTBOX_READY : OUTBOX_DROP;
    }
    if (strcmp(key, "user.updated") == 0) {
        bson_t user = BSON_INITIALIZER;
        has = user_by_id(a, ra, &user);
        if (has == 1) { /* the profile as it is now, whether or not this update reached it */
            cJSON *p = user_updated_event(&user);
            *body = json_print(p);
            cJSON_Delete(p);
        }
        bson_destroy(&user);
        return has < 0 ? OUTBOX_KEEP : has ? OUTBOX_READY : OUTBOX_DROP;
    }
    if (strcmp(key, "user.deleted") == 0) {
        has = rec__has(a, "users", ra, NULL, NULL);
        if (has != 0)
            return has < 0 ? OUTBOX_KEEP : OUTBOX_DROP;
        return user_cleanup(a, ra) == 0 ? OUTBOX_READY : OUTBOX_KEEP;
    }
    if (rb == NULL)
        return OUTBOX_DROP;
    if (strcmp(key, "follow.created") == 0 || strcmp(key, "follow.deleted") == 0) {
        int created = key[7] == 'c';
        has = rec__has(a, "follows", edge, created ? "op" : NULL, id);
        if (has < 0)
            return OUTBOX_KEEP;
        if (has != created)
            return OUTBOX_DROP;
        return counter_recount(a, ra) == 0 && counter_recount(a, rb) == 0 ? OUTBOX_READY : OUTBOX_KEEP;
    }
    if (strcmp(key, "block.created") == 0) {
        has = rec__has(a, "blocks", edge, "op", id);
        if (has != 1)
            return has < 0 ? OUTBOX_KEEP : OUTBOX_DROP;
        if (graph_unfollow_edge(a, ra, rb) < 0 || graph_unfollow_edge(a, rb, ra) < 0 ||
            counter_recount(a, ra) != 0 || counter_recount(a, rb) != 0)
            return OUTBOX_KEEP;
        return OUTBOX_READY;
    }
    if (strcmp(key, "block.deleted") == 0) {
        has = rec__has(a, "blocks", edge, NULL, NULL);
        return has < 0 ? OUTBOX_KEEP : has ? OUTBOX_DROP : OUTBOX_READY;
    }
    if (strcmp(key, "device.registered") == 0) {
        has = rec__has(a, "devices", rb, "op", id);
        return has < 0 ? OUTBOX_KEEP : has ? OUTBOX_READY : OUTBOX_DROP;
    }
    if (strcmp(key, "device.removed") == 0) {
        has = rec__has(a, "devices", rb, "user_id", ra);
        return has < 0 ? OUTBOX_KEEP : has ? OUTBOX_DROP : OUTBOX_READY;
    }
    log_warn(NULL, "outbox %s: unknown key %s dropped", id, key);
    return OUTBOX_DROP;
}
