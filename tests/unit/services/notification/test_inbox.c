/* test_inbox.c -- the inbox documents against a real FerretDB (TEST_MONGO_URI), below the RPC layer:
 * trimming to the cap, a redelivery that keeps the read mark, retractions that an older event cannot
 * undo, and writers racing a retraction and a block without leaving anything behind. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>

#include "../../testutil.h"
#include "../../../../services/notification/inbox.c"
#include "../../../../services/notification/users.c"

static db_t *db;
static char dbname[64];
static notif_conf_t conf = {.max_items = 10, .trim_every = 1, .retention_ms = 90LL * 24 * 3600 * 1000,
                            .rpc_timeout_ms = 1000};
static notif_t app = {.conf = &conf};
static int64_t T0;

static void setup(void)
{
    char suffix[32];
    cr_assert_geq(sodium_init(), 0);
    T0 = core_wall_ms() - 60000;
    snprintf(suffix, sizeof(suffix), "%d_%ld", (int)getpid(), (long)core_wall_ms());
    db = tu_db_open("notif_inbox", suffix, dbname, sizeof(dbname));
    app.db = db;
}

static void teardown(void)
{
    tu_db_drop(db, dbname);
}

TestSuite(inbox, .init = setup, .fini = teardown, .timeout = 120);

/* ================================================================ helpers */

/* Times are ms after T0, a minute ago (older than NOTIFY_RETENTION would be hidden). */

static notif_entry_t like_of(const char *recipient, const char *actor, const char *post, const char *source,
                             int64_t at)
{
    at += T0;
    return (notif_entry_t){.type = "like",
                           .recipient = recipient,
                           .source = source,
                           .actor = actor,
                           .actor_username = "someone",
                           .post_id = post,
                           .at = at};
}

/* The ids of user's visible notifications, newest first (a NULL-terminated array to free). */
static size_t visible(const char *user, char ids[][NOTIF_ID_LEN + 1], size_t max, size_t *unread)
{
    inbox__view_t v;
    cr_assert_eq(inbox__load(&app, user, &v), 0);
    size_t n = 0;
    *unread = 0;
    for (size_t i = 0; i < v.n; i++)
        if (!v.items[i].hidden) {
            if (n < max)
                snprintf(ids[n], NOTIF_ID_LEN + 1, "%s", v.items[i].id);
            n++;
            *unread += !v.items[i].read;
        }
    inbox__view_free(&v);
    return n;
}

/* ================================================================ tests */

Test(inbox, trimmed_to_the_newest_max_items)
{
    char src[32], want[NOTIF_ID_LEN + 1], ids[32][NOTIF_ID_LEN + 1];
    for (int i = 0; i < 25; i++) {
        snprintf(src, sizeof(src), "p%d|u%d", i, i);
        notif_entry_t e = like_of("alice", "bob", "6b0200000000000000000001", src, 1000000 + i);
        cr_assert_eq(inbox_put(&app, &e), 1);
    }
    size_t unread, n = visible("alice", ids, 32, &unread);
    cr_assert_eq(n, 10, "kept %zu", n);
    cr_assert_eq(unread, 10);
    inbox_id("alice", "like", "p24|u24", want);
    cr_assert_str_eq(ids[0], want, "the newest first");
    inbox_id("alice", "like", "p15|u15", want);
    cr_assert_str_eq(ids[9], want, "the tenth newest last");
}

Test(inbox, a_redelivery_keeps_the_read_mark_and_adds_nothing)
{
    notif_entry_t e = like_of("carol", "dave", "6b0200000000000000000002", "x|dave", 5000);
    cr_assert_eq(inbox_put(&app, &e), 1);
    char id[NOTIF_ID_LEN + 1], key[64];
    inbox_id("carol", "like", "x|dave", id);
    snprintf(key, sizeof(key), "r.%s", id);
    bson_t *f = BCON_NEW("_id", BCON_UTF8("carol")), *u = BCON_NEW("$set", "{", key, BCON_INT32(1), "}");
    cr_assert_eq(db_update_one(db, "inboxes", f, u, 0), 1);
    bson_destroy(f);
    bson_destroy(u);
    cr_assert_eq(inbox_put(&app, &e), 1);
    char ids[4][NOTIF_ID_LEN + 1];
    size_t unread, n = visible("carol", ids, 4, &unread);
    cr_assert_eq(n, 1);
    cr_assert_eq(unread, 0, "the redelivery made it unread again");
}

Test(inbox, a_retraction_is_not_undone_by_an_older_event_and_never_to_oneself)
{
    notif_entry_t e = like_of("erin", "frank", "6b0200000000000000000003", "y|frank", 7000);
    cr_assert_eq(inbox_put(&app, &e), 1);
    cr_assert_eq(inbox_retract(&app, "erin", "like", "y|frank", T0 + 8000), 0);
    cr_assert_eq(inbox_put(&app, &e), 0, "the like of before the unlike came back");
    e.at = T0 + 9000; /* liked again */
    cr_assert_eq(inbox_put(&app, &e), 1);
    cr_assert_eq(inbox_retract(&app, "erin", "like", "y|frank", T0 + 8500), 0); /* an older unlike, late */
    char ids[4][NOTIF_ID_LEN + 1];
    size_t unread;
    cr_assert_eq(visible("erin", ids, 4, &unread), 1, "an older unlike took a newer like");
    notif_entry_t self = like_of("erin", "erin", "6b0200000000000000000003", "y|erin", 9000);
    char one[1][NOTIF_ID_LEN + 1];
    cr_assert_eq(inbox_put_many(&app, &self, (const char *const[]){"erin"}, 1, one), 0);
}

typedef struct {
    const char *recipient, *actor;
    int rounds;
} racer_t;

static void *put_many_times(void *arg)
{
    racer_t *r = arg;
    for (int i = 0; i < r->rounds; i++) {
        char src[32];
        snprintf(src, sizeof(src), "z%d|%s", i, r->actor);
        notif_entry_t e = like_of(r->recipient, r->actor, "6b0200000000000000000004", src, 100 + i);
        cr_assert_geq(inbox_put(&app, &e), 0);
    }
    return NULL;
}

/* A block lands while likes of the blocked one are being written: whatever order the writes and
 * the block's tombstone and cleanup take, nothing of the blocked one stays. */
Test(inbox, writers_racing_a_block_leave_nothing_behind)
{
    conf.max_items = 1000;
    racer_t r = {.recipient = "gina", .actor = "hank", .rounds = 40};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, put_many_times, &r), 0);
    core_sleep_ms(30, NULL);
    char k[160];
    stops_block_key("gina", "hank", k, sizeof(k));
    cr_assert_eq(stops_put(&app, k, core_wall_ms()), 0);
    cr_assert_eq(inbox_drop_matching(&app, "gina", "x", "hank"), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    char ids[64][NOTIF_ID_LEN + 1];
    size_t unread;
    /* read the document itself, not the filtered view: nothing may be stored */
    bson_t *f = BCON_NEW("_id", BCON_UTF8("gina")), doc = BSON_INITIALIZER;
    int rc = db_find_one(db, "inboxes", f, NULL, &doc);
    bson_iter_t it, n;
    size_t stored = 0;
    if (rc == 1 && bson_iter_init_find(&it, &doc, "n") && bson_iter_recurse(&it, &n))
        while (bson_iter_next(&n))
            stored++;
    bson_destroy(&doc);
    bson_destroy(f);
    cr_assert_eq(stored, 0, "%zu notifications of a blocked actor stayed", stored);
    cr_assert_eq(visible("gina", ids, 64, &unread), 0);
    conf.max_items = 10;
}
