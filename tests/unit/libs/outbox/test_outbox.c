/* test_outbox.c -- libs/outbox against a real FerretDB (TEST_MONGO_URI) and RabbitMQ (TEST_AMQP_URL):
 * begin, commit, abort, relay passes, recovery through a fake callback, and the relay thread. */
#include <criterion/criterion.h>

#include "../../testutil.h"
#include "../mq/mq_test.h"
#include "db/db.h"
#include "json/json.h"
#include "metrics/metrics.h"
#include "outbox/outbox.h"

#define APP_ID "unit-outbox" /* metrics: unit_outbox_... */

static db_t *db;
static char dbname[48];
static metrics_registry_t *reg;
static mq_t *pub;       /* a publisher with confirms on the real broker, as the relay has */
static char queue[128]; /* bound to this run's two keys */
static char key_created[64], key_deleted[64];

/* What the fake callbacks were asked. The verdict follows the event's reference a: "ready",
 * "rewrite" (ready with a new body), "drop", anything else keep. */
static struct {
    pthread_mutex_t lock;
    int recover_calls, housekeeping_calls, wrong_ud;
    char b[64], request_id[64], body[256]; /* of the "rewrite" event */
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

static outbox_verdict_t fake_recover(void *ud, const bson_t *doc, char **body)
{
    const char *a = db_doc_str(doc, "a");
    pthread_mutex_lock(&fake.lock);
    fake.wrong_ud |= ud != &fake;
    fake.recover_calls++;
    pthread_mutex_unlock(&fake.lock);
    if (a == NULL)
        return OUTBOX_KEEP;
    if (strcmp(a, "ready") == 0)
        return OUTBOX_READY;
    if (strcmp(a, "rewrite") == 0) {
        mqt_copy(fake.b, sizeof(fake.b), db_doc_str(doc, "b"));
        mqt_copy(fake.request_id, sizeof(fake.request_id), db_doc_str(doc, "request_id"));
        mqt_copy(fake.body, sizeof(fake.body), db_doc_str(doc, "body"));
        *body = xstrdup("{\"rewritten\":true}");
        return OUTBOX_READY;
    }
    return strcmp(a, "drop") == 0 ? OUTBOX_DROP : OUTBOX_KEEP;
}

static void fake_housekeeping(void *ud)
{
    pthread_mutex_lock(&fake.lock);
    fake.wrong_ud |= ud != &fake; /* runs on the relay thread: no asserts here */
    fake.housekeeping_calls++;
    pthread_mutex_unlock(&fake.lock);
}

static void setup(void)
{
    mqt_setup();
    db = tu_db_open("outbox_test", mqt_suffix, dbname, sizeof(dbname));
    char err[256];
    cr_assert_eq(db_ensure_indexes(db, "outbox", outbox_indexes, outbox_nindexes, err, sizeof(err)), 0, "%s",
                 err);
    reg = metrics_registry_new();
    snprintf(key_created, sizeof(key_created), "ob_%s.created", mqt_suffix);
    snprintf(key_deleted, sizeof(key_deleted), "ob_%s.deleted", mqt_suffix);
    const char *keys[] = {key_created, key_deleted, NULL};
    mqt_name(queue, sizeof(queue), "outbox");
    pub = mqt_new(APP_ID, 1, 0);
    mq_declare_event_queue(pub, queue, keys, 0);
    cr_assert_eq(mq_connect(pub), 0, "cannot reach the broker at %s", mqt_url);
}

static void teardown(void)
{
    amqp_connection_state_t raw = mqt_raw_open();
    mqt_raw_delete_with_dlq(raw, queue);
    mqt_raw_close(raw);
    mq_free(pub);
    tu_db_drop(db, dbname);
    metrics_registry_free(reg);
}

TestSuite(outbox, .init = setup, .fini = teardown, .timeout = 60);

/* ================================================================ helpers */

/* An outbox on the test database; amqp_url NULL: no relay thread. */
static outbox_t *start(const char *amqp_url)
{
    outbox_conf_t conf = {.db = db,
                          .amqp_url = amqp_url,
                          .app_id = APP_ID,
                          .recover_after_ms = 1000,
                          .poll_ms = 50,
                          .recover = fake_recover,
                          .housekeeping = fake_housekeeping,
                          .ud = &fake,
                          .metrics = reg};
    char err[256] = "";
    outbox_t *o = outbox_start(&conf, err, sizeof(err));
    cr_assert_not_null(o, "%s", err);
    return o;
}

static void begin(outbox_t *o, const char *key, const char *json, const char *a, const char *b,
                  const char *rid, char id[37])
{
    cJSON *p = cJSON_Parse(json);
    cr_assert_not_null(p);
    cr_assert_eq(outbox_begin(o, key, p, a, b, rid, id), 0);
    cJSON_Delete(p);
    core_sleep_ms(3, NULL); /* the relay orders by created_at (ms), then by the random _id */
}

/* The stored event into out (initialised either way: db_find_one only fills it when found); 1
 * found, 0 gone. */
static int stored(const char *id, bson_t *out)
{
    bson_init(out);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_find_one(db, "outbox", f, NULL, out);
    bson_destroy(f);
    cr_assert_geq(rc, 0);
    return rc;
}

/* "pending", "ready", or NULL when the event is gone. */
static const char *state(const char *id)
{
    static char buf[16];
    bson_t doc;
    int found = stored(id, &doc);
    const char *s = found ? db_doc_str(&doc, "state") : NULL;
    if (s != NULL)
        snprintf(buf, sizeof(buf), "%s", s);
    bson_destroy(&doc);
    return s != NULL ? buf : NULL;
}

static void set_field(const char *id, const char *field, bson_t *value_doc)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *u = BCON_NEW("$set", BCON_DOCUMENT(value_doc));
    cr_assert_eq(db_update_one(db, "outbox", f, u, 0), 1, "set %s of %s", field, id);
    bson_destroy(f);
    bson_destroy(u);
    bson_destroy(value_doc);
}

/* Makes a pending event look begun age_ms ago. */
static void age(const char *id, int64_t age_ms)
{
    set_field(id, "created_at", BCON_NEW("created_at", BCON_DATE_TIME(core_wall_ms() - age_ms)));
}

/* A message from the test queue: its message_id, x-request-id, type and body. */
typedef struct {
    char message_id[64], request_id[64], type[128], app_id[64], body[256];
} got_t;

static void receive(amqp_connection_state_t raw, got_t *g)
{
    cr_assert(mqt_raw_wait_count(raw, queue, 1, 5000), "no message in %s", queue);
    amqp_message_t m;
    cr_assert(mqt_raw_get(raw, queue, &m));
    const amqp_basic_properties_t *p = &m.properties;
    char buf[256];
    mqt_copy(g->message_id, sizeof(g->message_id),
             mqt_prop(buf, sizeof(buf), p, AMQP_BASIC_MESSAGE_ID_FLAG, p->message_id));
    mqt_copy(g->type, sizeof(g->type), mqt_prop(buf, sizeof(buf), p, AMQP_BASIC_TYPE_FLAG, p->type));
    mqt_copy(g->app_id, sizeof(g->app_id), mqt_prop(buf, sizeof(buf), p, AMQP_BASIC_APP_ID_FLAG, p->app_id));
    mqt_copy(g->request_id, sizeof(g->request_id), mqt_header(buf, sizeof(buf), p, "x-request-id"));
    snprintf(g->body, sizeof(g->body), "%.*s", (int)m.body.len, (const char *)m.body.bytes);
    amqp_destroy_message(&m);
}

/* Whether the rendered metrics hold this line. */
static int has_metric(const char *line)
{
    char *text = metrics_render(reg, NULL), want[256];
    snprintf(want, sizeof(want), "\n%s\n", line);
    int found = strstr(text, want) != NULL;
    if (!found)
        cr_log_info("metrics:\n%s", text);
    free(text);
    return found;
}

/* ================================================================ handlers' side */

Test(outbox, the_index_is_the_one_the_queries_need)
{
    cr_assert_eq(outbox_nindexes, 1);
    cr_assert_str_eq(outbox_indexes[0].name, "state_1_created_at_1");
    cr_assert_str_eq(outbox_indexes[0].keys_json, "{\"state\": 1, \"created_at\": 1}");
    cr_assert_eq(outbox_indexes[0].unique, 0);
}

Test(outbox, begin_stores_a_pending_event_commit_readies_it_and_abort_deletes_it)
{
    outbox_t *o = start(NULL);
    char id[37], bare[37];
    begin(o, key_created, "{\"n\":1}", "ref-a", "ref-b", "rid-1", id);
    cr_assert(mqt_is_uuid(id), "%s", id);
    bson_t doc;
    cr_assert_eq(stored(id, &doc), 1);
    cr_assert_str_eq(db_doc_str(&doc, "state"), "pending");
    cr_assert_str_eq(db_doc_str(&doc, "key"), key_created);
    cr_assert_str_eq(db_doc_str(&doc, "body"), "{\"n\":1}");
    cr_assert_str_eq(db_doc_str(&doc, "a"), "ref-a");
    cr_assert_str_eq(db_doc_str(&doc, "b"), "ref-b");
    cr_assert_str_eq(db_doc_str(&doc, "request_id"), "rid-1");
    cr_assert(mqt_is_uuid(db_doc_str(&doc, "owner")));
    cr_assert_lt(llabs(db_doc_ms(&doc, "created_at") - core_wall_ms()), 10000);
    bson_destroy(&doc);

    begin(o, key_deleted, "{}", "ref-a", NULL, NULL, bare);
    cr_assert_eq(stored(bare, &doc), 1);
    cr_assert_null(db_doc_str(&doc, "b"));
    cr_assert_null(db_doc_str(&doc, "request_id"));
    bson_destroy(&doc);

    cr_assert_eq(outbox_commit(o, id), 0);
    cr_assert_str_eq(state(id), "ready");
    cr_assert_str_eq(state(bare), "pending");
    cr_assert(has_metric("unit_outbox_outbox_committed_total 1"));
    outbox_abort(o, id);
    outbox_abort(o, bare);
    cr_assert_null(state(id));
    cr_assert_null(state(bare));
    cr_assert_eq(fake.recover_calls, 0);
    outbox_stop(o);
}

/* ================================================================ relay passes */

Test(outbox, a_pass_publishes_ready_events_in_order_with_their_ids_and_deletes_them)
{
    outbox_t *o = start(NULL);
    char e1[37], e2[37], young[37];
    begin(o, key_created, "{\"n\":1}", "x", NULL, "rid-1", e1);
    begin(o, key_deleted, "{\"n\":2}", "x", "y", NULL, e2);
    begin(o, key_created, "{\"n\":3}", "x", NULL, NULL, young); /* its request is still running */
    cr_assert_eq(outbox_commit(o, e1), 0);
    cr_assert_eq(outbox_commit(o, e2), 0);

    cr_assert_eq(outbox_pass(o, pub, core_wall_ms()), 2);
    cr_assert_null(state(e1));
    cr_assert_null(state(e2));
    cr_assert_str_eq(state(young), "pending");
    cr_assert_eq(fake.recover_calls, 0, "a young pending event is nobody's business yet");

    amqp_connection_state_t raw = mqt_raw_open();
    got_t g;
    receive(raw, &g);
    cr_assert_str_eq(g.message_id, e1, "the outbox id is the message_id");
    cr_assert_str_eq(g.type, key_created);
    cr_assert_str_eq(g.request_id, "rid-1");
    cr_assert_str_eq(g.body, "{\"n\":1}");
    receive(raw, &g);
    cr_assert_str_eq(g.message_id, e2);
    cr_assert_str_eq(g.type, key_deleted);
    cr_assert_str_eq(g.request_id, MQT_NULL);
    cr_assert_str_eq(g.body, "{\"n\":2}");
    cr_assert_eq(mqt_raw_count(raw, queue), 0);
    mqt_raw_close(raw);

    char line[160];
    snprintf(line, sizeof(line), "unit_outbox_events_published_total{key=\"%s\"} 1", key_created);
    cr_assert(has_metric(line));
    snprintf(line, sizeof(line), "unit_outbox_events_published_total{key=\"%s\"} 1", key_deleted);
    cr_assert(has_metric(line));
    cr_assert_eq(outbox_pass(o, pub, core_wall_ms()), 0);
    outbox_stop(o);
}

Test(outbox, recovery_asks_the_callback_about_abandoned_pending_events_only)
{
    outbox_t *o = start(NULL);
    char ready[37], rewrite[37], drop[37], keep[37], young[37];
    begin(o, key_created, "{\"v\":\"ready\"}", "ready", "b", NULL, ready);
    begin(o, key_created, "{\"v\":\"old\"}", "rewrite", "b-ref", "rid-rw", rewrite);
    begin(o, key_created, "{}", "drop", "b", NULL, drop);
    begin(o, key_created, "{}", "keep", "b", NULL, keep);
    begin(o, key_created, "{}", "ready", "b", NULL, young);
    age(ready, 5000);
    age(rewrite, 4000);
    age(drop, 5000);
    age(keep, 5000);

    cr_assert_eq(outbox_pass(o, pub, core_wall_ms()), 2, "the ready and the rewritten one");
    cr_assert_eq(fake.recover_calls, 4);
    cr_assert_eq(fake.wrong_ud, 0);
    cr_assert_str_eq(fake.b, "b-ref", "the callback sees the references");
    cr_assert_str_eq(fake.request_id, "rid-rw");
    cr_assert_str_eq(fake.body, "{\"v\":\"old\"}");
    cr_assert_null(state(ready));
    cr_assert_null(state(rewrite));
    cr_assert_null(state(drop), "dropped: its write never happened");
    cr_assert_str_eq(state(keep), "pending", "kept for the next pass");
    cr_assert_str_eq(state(young), "pending");

    amqp_connection_state_t raw = mqt_raw_open();
    got_t g[2];
    receive(raw, &g[0]);
    receive(raw, &g[1]);
    int first_is_ready = strcmp(g[0].message_id, ready) == 0; /* aged to the same ms: either order */
    const got_t *r = &g[first_is_ready ? 0 : 1], *w = &g[first_is_ready ? 1 : 0];
    cr_assert_str_eq(r->message_id, ready);
    cr_assert_str_eq(r->body, "{\"v\":\"ready\"}");
    cr_assert_str_eq(w->message_id, rewrite);
    cr_assert_str_eq(w->body, "{\"rewritten\":true}", "the callback's body replaces the stored one");
    cr_assert_eq(mqt_raw_count(raw, queue), 0, "dropped, kept and young events are not published");
    mqt_raw_close(raw);

    cr_assert_eq(outbox_pass(o, pub, core_wall_ms()), 0);
    cr_assert_eq(fake.recover_calls, 5, "the kept one is asked about again");
    cr_assert_str_eq(state(keep), "pending");
    outbox_stop(o);
}

Test(outbox, ready_events_of_another_live_copy_wait_for_it_a_while)
{
    outbox_t *o = start(NULL);
    char id[37];
    begin(o, key_created, "{}", "x", NULL, NULL, id);
    cr_assert_eq(outbox_commit(o, id), 0);
    set_field(id, "owner", BCON_NEW("owner", "another-copy"));
    int64_t now = core_wall_ms();
    cr_assert_eq(outbox_pass(o, pub, now), 0, "its own relay publishes it");
    cr_assert_str_eq(state(id), "ready");
    cr_assert_eq(outbox_pass(o, pub, now + 3000), 1, "it lingered: taken over");
    cr_assert_null(state(id));
    outbox_stop(o);
}

Test(outbox, an_event_the_broker_did_not_confirm_stays_for_the_next_pass)
{
    outbox_t *o = start(NULL);
    mq_conf_t mc = {.url = MQT_DEAD_URL, .app_id = APP_ID, .confirms = 1};
    mq_t *dead = mq_new(&mc);
    char id[37];
    begin(o, key_created, "{}", "x", NULL, NULL, id);
    cr_assert_eq(outbox_commit(o, id), 0);
    cr_assert_eq(outbox_pass(o, dead, core_wall_ms()), -1);
    cr_assert_str_eq(state(id), "ready");
    cr_assert_eq(outbox_pass(o, pub, core_wall_ms()), 1);
    cr_assert_null(state(id));
    mq_free(dead);
    outbox_stop(o);
}

/* ================================================================ the relay thread */

Test(outbox, the_relay_thread_publishes_what_is_committed_and_does_the_housekeeping)
{
    outbox_t *o = start(mqt_url);
    char id[37];
    begin(o, key_created, "{\"n\":7}", "x", NULL, "rid-7", id);
    cr_assert_eq(outbox_commit(o, id), 0);
    amqp_connection_state_t raw = mqt_raw_open();
    got_t g;
    receive(raw, &g);
    cr_assert_str_eq(g.message_id, id);
    cr_assert_str_eq(g.app_id, APP_ID, "the relay publishes as the daemon");
    cr_assert_str_eq(g.body, "{\"n\":7}");
    mqt_raw_close(raw);
    uint64_t deadline = core_now_ms() + 5000;
    while (state(id) != NULL && core_now_ms() < deadline)
        core_sleep_ms(20, NULL);
    cr_assert_null(state(id), "deleted once confirmed");

    deadline = core_now_ms() + 10000; /* the first chores come about 5 s after the start */
    for (;;) {
        pthread_mutex_lock(&fake.lock);
        int n = fake.housekeeping_calls;
        pthread_mutex_unlock(&fake.lock);
        if (n > 0 || core_now_ms() >= deadline)
            break;
        core_sleep_ms(50, NULL);
    }
    cr_assert_geq(fake.housekeeping_calls, 1);
    cr_assert_eq(fake.wrong_ud, 0);
    outbox_stop(o);
}

Test(outbox, a_bad_amqp_url_fails_the_start_with_a_message)
{
    outbox_conf_t conf = {.db = db, .amqp_url = "http://nope", .app_id = APP_ID, .recover = fake_recover};
    char err[256] = "";
    cr_assert_null(outbox_start(&conf, err, sizeof(err)));
    cr_assert_str_eq(err, "AMQP_URL does not parse");
}
