/* main.c -- the resize-image daemon: configuration, libvips, object store, database, outbox, RPC and event
 * wiring. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "log/log.h"
#include "resize.h"
#include "rpc/rpc.h"

static resize_conf_t conf;

static const cfg_var_t conf_table[] = {
    SVC_CFG_COMMON(conf.svc, "127.0.0.1:9102"),
    {"RESIZE_IMAGE_MONGO_URI", CFG_STRING, "mongodb://127.0.0.1:27017/resize_image",
     "MongoDB URI of resize-image's own database", &conf.mongo_uri},
    {"MEDIA_STORE", CFG_STRING, "local", "object store of the media files: local or s3", &conf.store},
    {"MEDIA_DIR", CFG_STRING, "var/media", "local store: the directory (the gateway serves it under /media/)",
     &conf.media_dir},
    {"MEDIA_PUBLIC_URL", CFG_STRING, "/media/",
     "prefix of the variants' URLs (a CDN or the bucket's URL with s3); keys follow it", &conf.public_url},
    {"MEDIA_S3_ENDPOINT", CFG_STRING, NULL, "s3: endpoint URL, e.g. https://s3.eu-west-1.amazonaws.com",
     &conf.s3_endpoint},
    {"MEDIA_S3_BUCKET", CFG_STRING, NULL, "s3: bucket", &conf.s3_bucket},
    {"MEDIA_S3_REGION", CFG_STRING, "us-east-1", "s3: region (SigV4 scope)", &conf.s3_region},
    {"AWS_ACCESS_KEY_ID", CFG_STRING, NULL, "s3: access key id", &conf.s3_access_key},
    {"AWS_SECRET_ACCESS_KEY", CFG_SECRET, NULL,
     "s3: secret access key; or a file in AWS_SECRET_ACCESS_KEY_FILE", &conf.s3_secret_key},
    {"AWS_SESSION_TOKEN", CFG_SECRET, NULL, "s3: session token of temporary credentials (ECS task roles)",
     &conf.s3_session_token},
    {"MEDIA_MAX_BYTES", CFG_INT, "20971520", "largest accepted image file (413 beyond)", &conf.max_bytes, 1,
     268435456},
    {"MEDIA_MAX_PIXELS", CFG_INT, "50000000", "largest accepted width x height (422 beyond, from the header)",
     &conf.variants.max_pixels, 1, 1000000000},
    {"MEDIA_JPEG_QUALITY", CFG_INT, "82", "JPEG quality of the variants", &conf.variants.jpeg_quality, 1,
     100},
    {"MEDIA_WEBP_QUALITY", CFG_INT, "80", "WebP quality of the variants", &conf.variants.webp_quality, 1,
     100},
    {"MEDIA_WEBP_EFFORT", CFG_INT, "1",
     "WebP encoder effort, 0 (fastest) to 6 (smallest): 1 is 3x faster than libwebp's 4 for ~1% larger files",
     &conf.variants.webp_effort, 0, 6},
    {"RESIZE_IMAGE_VIPS_THREADS", CFG_INT, "2", "libvips threads per image pipeline", &conf.vips_threads, 1,
     64},
    {"RESIZE_IMAGE_OUTBOX_RECOVER_AFTER", CFG_MS, "60s",
     "age of a pending outbox event after which it counts as abandoned (longer than any upload)",
     &conf.outbox_recover_after_ms, 1000, 3600000},
    {"RESIZE_IMAGE_OUTBOX_POLL", CFG_MS, "1s", "how often the relay looks for events when not woken",
     &conf.outbox_poll_ms, 10, 60000},
    {0},
};

static resize_t app = {.conf = &conf};
static const char *argv0 = "resize-image";

static const db_index_t idx_media[] = {{"owner_id_1", "{\"owner_id\": 1}", 0}};

/* Indexes are made at start; a database that is not up yet gets 30 s. */
static int resize_indexes(char *err, size_t errlen)
{
    const db_index_set_t all[] = {
        {"media", idx_media, CORE_ARRAY_SIZE(idx_media)},
        {"outbox", outbox_indexes, outbox_nindexes},
    };
    return db_ensure_all_indexes(app.db, all, CORE_ARRAY_SIZE(all), 30, err, errlen);
}

static int resize_open_store(char *err, size_t errlen)
{
    objstore_conf_t oc = {
        .backend = conf.store,
        .dir = conf.media_dir,
        .endpoint = conf.s3_endpoint,
        .bucket = conf.s3_bucket,
        .region = conf.s3_region,
        .access_key = conf.s3_access_key,
        .secret_key = conf.s3_secret_key,
        .session_token = conf.s3_session_token,
    };
    app.store = objstore_open(&oc, err, errlen);
    return app.store != NULL ? 0 : -1;
}

static int resize_start(svc_t *svc, void *ud)
{
    (void)ud;
    char err[512];
    if (sodium_init() < 0) {
        log_error(NULL, "libsodium cannot start");
        return -1;
    }
    if (resize_open_store(err, sizeof(err)) != 0) {
        log_error(NULL, "MEDIA_STORE=%s: %s", conf.store, err);
        return -1;
    }
    if (strcmp(conf.store, "s3") == 0)
        log_info(NULL, "media store: s3 bucket %s at %s, URLs under %s", conf.s3_bucket, conf.s3_endpoint,
                 conf.public_url);
    else
        log_info(NULL, "media store: directory %s, URLs under %s", conf.media_dir, conf.public_url);
    if (variants_init(argv0, (int)conf.vips_threads) != 0) {
        log_error(NULL, "libvips cannot start");
        return -1;
    }
    db_log_init();
    app.db = db_open(conf.mongo_uri, "resize_image", "resize-image", err, sizeof(err));
    if (app.db == NULL) {
        log_error(NULL, "RESIZE_IMAGE_MONGO_URI: %s", err);
        return -1;
    }
    if (resize_indexes(err, sizeof(err)) != 0) {
        log_error(NULL, "RESIZE_IMAGE_MONGO_URI: cannot create indexes (is the database up?): %s", err);
        return -1;
    }
    metrics_registry_t *m = svc_metrics(svc);
    static const char *const outcome_label[] = {"outcome", NULL};
    app.uploads = metrics_counter(m, "resize_image_uploads_total",
                                  "uploads, by outcome (stored, rejected, failed)", outcome_label);
    static const double bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16};
    app.process_time = metrics_histogram(m, "resize_image_process_seconds",
                                         "time to decode an upload and encode its variants", NULL, bounds,
                                         CORE_ARRAY_SIZE(bounds));
    outbox_conf_t oc = {
        .db = app.db,
        .amqp_url = conf.svc.amqp_url,
        .app_id = "resize-image",
        .recover_after_ms = conf.outbox_recover_after_ms,
        .poll_ms = conf.outbox_poll_ms,
        .recover = media_recover,
        .ud = &app,
        .metrics = m,
    };
    app.outbox = outbox_start(&oc, err, sizeof(err));
    if (app.outbox == NULL) {
        log_error(NULL, "outbox: %s", err);
        return -1;
    }
    return 0;
}

static void resize_stop(svc_t *svc, void *ud)
{
    (void)svc;
    (void)ud;
    outbox_stop(app.outbox);
    db_close(app.db);
    objstore_close(app.store);
    variants_shutdown();
    cfg_free(conf_table);
}

static int resize_ready(void *ud, cJSON *checks)
{
    (void)ud;
    return db_ready(app.db, checks);
}

/* ================================================================ RPC */

static const struct {
    rpc_method_t m;
    void (*fn)(resize_t *app, const mq_message_t *req, mq_reply_t *r);
} resize_methods[] = {
    {{"media.upload", 1}, upload_media},
    {{"media.show", 1}, media_get_one},
    {{"media.get", 0}, media_get_batch},
};

static void resize_rpc(mq_t *mq, const mq_message_t *req, mq_reply_t *reply, void *ud)
{
    (void)mq;
    long i = rpc_method_find(resize_methods, CORE_ARRAY_SIZE(resize_methods), sizeof(resize_methods[0]), req,
                             reply);
    if (i >= 0)
        resize_methods[i].fn(ud, req, reply);
}

static void setup_worker(svc_t *svc, mq_t *mq, void *ud)
{
    (void)ud;
    svc_serve_rpc(svc, mq, resize_rpc, &app);
    static const char *const keys[] = {"user.deleted", NULL};
    mq_declare_event_queue(mq, "resize-image.events", keys, 0);
    mq_consume(mq, "resize-image.events", media_on_user_deleted, &app);
}

int main(int argc, char **argv)
{
    static const svc_def_t def = {
        .name = "resize-image",
        .summary = "resize-image: photo uploads, safe decoding, variants in an object store",
        .setup_worker = setup_worker,
        .ready = resize_ready,
        .start = resize_start,
        .stop = resize_stop,
        .prefetch = 1,
    };
    argv0 = argv[0];
    return svc_main(argc, argv, &def, conf_table, &conf.svc);
}
