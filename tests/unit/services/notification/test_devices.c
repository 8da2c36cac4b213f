/* test_devices.c -- the push tokens kept from device.registered and device.removed against a real
 * FerretDB (TEST_MONGO_URI): events applied in event-time order whatever order they arrive in, and
 * the tokens of many users read in one query. */
#include <criterion/criterion.h>
#include <sodium.h>

#include "../../testutil.h"
#include "../../../../services/notification/devices.c"

static db_t *db;
static char dbname[64];
static notif_conf_t conf;
static notif_t app = {.conf = &conf};

static void setup(void)
{
    char suffix[32];
    cr_assert_geq(sodium_init(), 0);
    snprintf(suffix, sizeof(suffix), "%d_%ld", (int)getpid(), (long)core_wall_ms());
    db = tu_db_open("notif_devices", suffix, dbname, sizeof(dbname));
    app.db = db;
}

static void teardown(void)
{
    tu_db_drop(db, dbname);
}

TestSuite(devices, .init = setup, .fini = teardown, .timeout = 60);

typedef struct {
    char seen[8][128];
    int n;
} tokens_t;

static void keep(const char *user, const char *token, void *ud)
{
    tokens_t *t = ud;
    if (t->n < 8)
        snprintf(t->seen[t->n++], sizeof(t->seen[0]), "%s %s", user, token);
}

static tokens_t tokens_of(const char *const *users, size_t n)
{
    tokens_t t = {0};
    cr_assert_eq(devices_each(&app, users, n, keep, &t), 0);
    return t;
}

Test(devices, registered_and_removed_apply_in_event_time_order)
{
    const char *ann[] = {"ann"};
    /* a token with a dot and a colon (keys may hold neither) */
    cr_assert_eq(devices_registered(&app, "ann", "fcm:a.b-1", "android", 1000), 0);
    cr_assert_eq(devices_registered(&app, "ann", "fcm:a.b-1", "android", 1000), 0); /* repeated */
    tokens_t t = tokens_of(ann, 1);
    cr_assert_eq(t.n, 1);
    cr_assert_str_eq(t.seen[0], "ann fcm:a.b-1");
    /* a removal older than the registration (taken out of order) leaves it */
    cr_assert_eq(devices_removed(&app, "ann", "fcm:a.b-1", 900), 0);
    cr_assert_eq(tokens_of(ann, 1).n, 1, "an older removal took a newer registration");
    cr_assert_eq(devices_removed(&app, "ann", "fcm:a.b-1", 2000), 0);
    cr_assert_eq(tokens_of(ann, 1).n, 0);
    /* a registration older than the removal, arriving late, does not bring it back */
    cr_assert_eq(devices_registered(&app, "ann", "fcm:a.b-1", "android", 1500), 0);
    cr_assert_eq(tokens_of(ann, 1).n, 0, "a late registration undid a newer removal");
    /* registered again later: back */
    cr_assert_eq(devices_registered(&app, "ann", "fcm:a.b-1", "ios", 3000), 0);
    cr_assert_eq(tokens_of(ann, 1).n, 1);
}

Test(devices, the_tokens_of_many_users_in_one_query_and_a_deleted_account_has_none)
{
    cr_assert_eq(devices_registered(&app, "bo", "t1", "android", 10), 0);
    cr_assert_eq(devices_registered(&app, "bo", "t2", "web", 11), 0);
    cr_assert_eq(devices_registered(&app, "cy", "t3", "ios", 12), 0);
    const char *users[] = {"bo", "cy", "nobody"};
    tokens_t t = tokens_of(users, 3);
    cr_assert_eq(t.n, 3);
    cr_assert_eq(devices_drop_all(&app, "bo"), 0);
    t = tokens_of(users, 3);
    cr_assert_eq(t.n, 1);
    cr_assert_str_eq(t.seen[0], "cy t3");
}
