/* test_recover.c -- what the outbox's recovery does with uploads and deletions that died half-way
 * (media_recover), against a real FerretDB (TEST_MONGO_URI), RabbitMQ (TEST_AMQP_URL) and a local
 * object store in a temporary directory: the kill -9 test of the e2e suite reaches these states
 * only by chance. */
#include <criterion/criterion.h>
#include <sys/stat.h>

#include "../../libs/mq/mq_test.h"
#include "../../testutil.h"
#include "../../../../services/resize-image/media.c"
#include "../../../../services/resize-image/blurhash.c"
#include "../../../../services/resize-image/variants.c" /* variant_name, and what it needs */

static db_t *db;
static char dbname[48], dir[64];
static mq_t *pub;
static resize_conf_t conf = {.public_url = "/media/"};
static resize_t app = {.conf = &conf};

static void setup(void)
{
    mqt_setup();
    db = tu_db_open("resize_test", mqt_suffix, dbname, sizeof(dbname));
    char err[256];
    cr_assert_eq(db_ensure_indexes(db, "outbox", outbox_indexes, outbox_nindexes, err, sizeof(err)), 0, "%s",
                 err);
    snprintf(dir, sizeof(dir), "/tmp/resize-recover-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    objstore_conf_t oc = {.backend = "local", .dir = dir};
    app.db = db;
    app.store = objstore_open(&oc, err, sizeof(err));
    cr_assert_not_null(app.store, "%s", err);
    outbox_conf_t obc = {.db = db,
                         .app_id = "unit-resize",
                         .recover_after_ms = 1000,
                         .poll_ms = 50,
                         .recover = media_recover,
                         .ud = &app};
    app.outbox = outbox_start(&obc, err, sizeof(err));
    cr_assert_not_null(app.outbox, "%s", err);
    pub = mqt_new("unit-resize", 1, 0);
    cr_assert_eq(mq_connect(pub), 0, "cannot reach the broker at %s", mqt_url);
}

static void teardown(void)
{
    mq_free(pub);
    outbox_stop(app.outbox);
    objstore_close(app.store);
    tu_db_drop(db, dbname);
    char *cmd = xasprintf("rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    free(cmd);
}

TestSuite(recover, .init = setup, .fini = teardown, .timeout = 60);

/* ================================================================ helpers */

static void media_doc(const char *id, const char *owner, const char *state)
{
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(id), "owner_id", BCON_UTF8(owner), "state", BCON_UTF8(state), "width",
                 BCON_INT32(10), "height", BCON_INT32(10), "created_at", BCON_DATE_TIME(core_wall_ms()));
    cr_assert_eq(db_insert(db, "media", doc), 0);
    bson_destroy(doc);
}

static int media_exists(const char *id)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_exists(db, "media", f);
    bson_destroy(f);
    cr_assert_geq(rc, 0);
    return rc;
}

static int event_exists(const char *ob)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(ob));
    int rc = db_exists(db, "outbox", f);
    bson_destroy(f);
    cr_assert_geq(rc, 0);
    return rc;
}

/* Puts the first n of a media's 8 files. */
static void files(const char *id, int n)
{
    char key[128], err[256];
    for (int i = 0; i < n; i++) {
        media_key(key, sizeof(key), id, i / 2, i % 2);
        cr_assert_eq(objstore_put(app.store, key, "x", 1, "image/jpeg", err, sizeof(err)), 0, "%s", err);
    }
}

static int files_left(const char *id)
{
    int n = 0;
    char key[128], err[256];
    for (int i = 0; i < 8; i++) {
        void *data = NULL;
        size_t len = 0;
        media_key(key, sizeof(key), id, i / 2, i % 2);
        if (objstore_get(app.store, key, &data, &len, err, sizeof(err)) == OBJSTORE_OK)
            n++;
        free(data);
    }
    return n;
}

static void pending(const char *key, const char *id, char ob[37])
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "id", id);
    cr_assert_eq(outbox_begin(app.outbox, key, p, id, "owner", "rid", ob), 0);
    cJSON_Delete(p);
}

/* A pass as the relay would make it once the events are older than recover_after. */
static long later_pass(void)
{
    return outbox_pass(app.outbox, pub, core_wall_ms() + 5000);
}

/* ================================================================ uploads */

Test(recover, an_upload_that_died_before_ready_leaves_nothing)
{
    const char *id = "0123456789abcdef0123456789abcd01";
    char ob[37];
    pending("media.created", id, ob);
    media_doc(id, "owner", "uploading");
    files(id, 3); /* killed while writing the fourth */
    cr_assert_eq(later_pass(), 0, "nothing to publish");
    cr_assert_not(event_exists(ob), "the event is dropped");
    cr_assert_not(media_exists(id), "the document is removed");
    cr_assert_eq(files_left(id), 0, "the files are removed");
    struct stat st;
    char *m = xasprintf("%s/m/%s", dir, id);
    cr_assert_neq(stat(m, &st), 0, "its directory is removed");
    free(m);
}

Test(recover, an_upload_that_died_before_its_document_leaves_nothing)
{
    const char *id = "0123456789abcdef0123456789abcd02";
    char ob[37];
    pending("media.created", id, ob);
    cr_assert_eq(later_pass(), 0);
    cr_assert_not(event_exists(ob));
    cr_assert_not(media_exists(id));
}

Test(recover, an_upload_that_died_after_ready_is_announced_and_kept)
{
    const char *id = "0123456789abcdef0123456789abcd03";
    char ob[37];
    pending("media.created", id, ob);
    media_doc(id, "owner", "ready");
    files(id, 8);
    cr_assert_eq(later_pass(), 1, "published");
    cr_assert_not(event_exists(ob));
    cr_assert(media_exists(id));
    cr_assert_eq(files_left(id), 8);
}

Test(recover, a_young_pending_upload_is_left_alone)
{
    const char *id = "0123456789abcdef0123456789abcd04";
    char ob[37];
    pending("media.created", id, ob);
    media_doc(id, "owner", "uploading");
    files(id, 2);
    cr_assert_eq(outbox_pass(app.outbox, pub, core_wall_ms()), 0);
    cr_assert(event_exists(ob) && media_exists(id));
    cr_assert_eq(files_left(id), 2, "an upload under way keeps its files");
}

/* ================================================================ deletions */

Test(recover, a_deletion_that_died_half_way_is_finished_and_announced)
{
    const char *id = "0123456789abcdef0123456789abcd05";
    char ob[37];
    media_doc(id, "owner", "ready");
    files(id, 5); /* three were deleted before the kill */
    pending("media.deleted", id, ob);
    cr_assert_eq(later_pass(), 1);
    cr_assert_not(event_exists(ob));
    cr_assert_not(media_exists(id));
    cr_assert_eq(files_left(id), 0);
}

Test(recover, an_event_of_another_kind_or_a_bad_id_is_dropped)
{
    char ob[37], ob2[37];
    pending("media.updated", "0123456789abcdef0123456789abcd06", ob);
    pending("media.created", "../../etc", ob2);
    cr_assert_eq(later_pass(), 0);
    cr_assert_not(event_exists(ob));
    cr_assert_not(event_exists(ob2));
}
