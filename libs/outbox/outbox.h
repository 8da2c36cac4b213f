/* outbox.h -- events stored before their write and relayed to the broker with confirms.
 *
 * A handler calls outbox_begin (the event, state "pending") before its write, then
 * outbox_commit ("ready") or outbox_abort (deleted). A relay thread publishes ready events in
 * the order they were begun, each with its outbox id as message_id, and deletes each once the
 * broker confirmed it: a crash before the delete publishes it again with the same message_id,
 * which consumers skip. No event is lost between a write and its publication.
 *
 * A pending event older than recover_after_ms belongs to a request that died between its begin
 * and its commit (kill -9, a database error). The daemon's recover callback looks at the decisive
 * write of that request and says whether the event goes out (the write happened; the callback
 * may finish what followed it) or is dropped (it never happened, and the client never got a
 * success). */
#ifndef OUTBOX_H
#define OUTBOX_H

#include <stdint.h>

#include <bson/bson.h>
#include <cjson/cJSON.h>

#include "db/db.h"
#include "metrics/metrics.h"
#include "mq/mq.h"

typedef struct outbox outbox_t;

typedef enum {
    OUTBOX_KEEP,  /* cannot tell now (database error): ask again at the next pass */
    OUTBOX_READY, /* the write happened: publish */
    OUTBOX_DROP,  /* the write never happened: forget the event */
} outbox_verdict_t;

/* Decides the fate of an abandoned pending event. doc has _id, key, body (JSON text), a, b (the
 * references given to outbox_begin; b may be absent) and request_id. May set *body to a new
 * payload (malloc'd; the outbox frees it) to publish instead of the stored one. Runs on the relay
 * thread. */
typedef outbox_verdict_t (*outbox_recover_fn)(void *ud, const bson_t *doc, char **body);

/* Periodic chores of the daemon (purging expired documents), run on the relay thread about
 * once a minute; may be NULL. */
typedef void (*outbox_housekeeping_fn)(void *ud);

typedef struct {
    db_t *db;              /* borrowed; the outbox lives in its collection "outbox" */
    const char *amqp_url;  /* NULL: no relay thread (tests drive outbox_pass themselves) */
    const char *app_id;    /* the daemon's name, app_id of the events */
    long recover_after_ms; /* age after which a pending event counts as abandoned */
    long poll_ms;          /* how often the relay looks when not woken */
    outbox_recover_fn recover;
    outbox_housekeeping_fn housekeeping;
    void *ud; /* for both callbacks */
    /* may be NULL; else the counters <app_id>_outbox_committed_total and
     * <app_id>_events_published_total{key} are registered (a '-' in app_id becomes '_') */
    metrics_registry_t *metrics;
} outbox_conf_t;

/* The index the outbox's queries need, for the daemon's db_ensure_indexes at start. */
extern const db_index_t outbox_indexes[];
extern const size_t outbox_nindexes;

/* Creates the outbox and, with an AMQP URL, starts its relay thread (its own publisher
 * connection with confirms). conf is copied; its strings must outlive the outbox. Returns NULL
 * with a message in err. */
outbox_t *outbox_start(const outbox_conf_t *conf, char *err, size_t errlen);
/* Stops the relay after a last pass and frees everything. NULL is fine. */
void outbox_stop(outbox_t *o);

/* Stores the event (payload is printed, not taken) as pending; ref_a and ref_b (may be NULL)
 * name what the write touches, for recovery. Fills id (the future message_id). 0 or -1. Any
 * thread. */
int outbox_begin(outbox_t *o, const char *key, const cJSON *payload, const char *ref_a, const char *ref_b,
                 const char *request_id, char id[37]);
/* Marks it ready and wakes the relay. 0, or -1 (it stays pending; recovery decides). */
int outbox_commit(outbox_t *o, const char *id);
/* Deletes it: the write did not happen. */
void outbox_abort(outbox_t *o, const char *id);

/* Runs recovery and one relay pass now through publisher (tests). Returns the number published,
 * or -1. */
long outbox_pass(outbox_t *o, mq_t *publisher, int64_t now_ms);

#endif
