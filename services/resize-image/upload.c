/* upload.c -- POST /v1/media: the file out of the request, sniffed, turned into variants, stored, announced.
 */
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "core/core.h"
#include "log/log.h"
#include "resize.h"
#include "rpc/rpc.h"

/* ================================================================ the file in the request */

static int up__is(const char *ct, const char *prefix)
{
    return ct != NULL && strncasecmp(ct, prefix, strlen(prefix)) == 0;
}

/* Finds the file's bytes: the one part "file" of a multipart/form-data body, or a raw image
 * body. Returns 0, or -1 after answering. */
static int up__file(resize_t *app, const mq_message_t *req, mq_reply_t *r, const uint8_t **data, size_t *len)
{
    const char *ct = req->content_type;
    if (req->body_len == 0) {
        rpc_problem(
            r, 400, "empty-body",
            "the body is empty: send the image as multipart/form-data field \"file\" or as an image/* body",
            NULL);
        return -1;
    }
    if (up__is(ct, "multipart/")) {
        char boundary[80];
        if (multipart_boundary(ct, boundary, sizeof(boundary)) != 0) {
            rpc_problem(r, 400, "malformed-multipart",
                        "Content-Type must be multipart/form-data with a valid boundary parameter", NULL);
            return -1;
        }
        multipart_file_t f;
        const char *why = "";
        int rc = multipart_find_file(req->body, req->body_len, boundary, "file", &f, &why);
        if (rc != MULTIPART_OK) {
            char *detail = xasprintf("%s (one image in the part named \"file\" is expected)", why);
            rpc_problem(r, 400,
                        rc == MULTIPART_ENOFILE ? "missing-file"
                        : rc == MULTIPART_ETWO  ? "too-many-files"
                                                : "malformed-multipart",
                        detail, NULL);
            free(detail);
            return -1;
        }
        *data = f.data;
        *len = f.len;
    } else if (up__is(ct, "image/")) {
        *data = req->body;
        *len = req->body_len;
    } else {
        rpc_problem(r, 415, "unsupported-media-type",
                    "send multipart/form-data (field \"file\") or an image/* body", NULL);
        return -1;
    }
    if (*len == 0) {
        rpc_problem(r, 400, "empty-file", "the file is empty", NULL);
        return -1;
    }
    if ((long)*len > app->conf->max_bytes) {
        char *detail = xasprintf("the image is over %ld bytes", app->conf->max_bytes);
        rpc_problem(r, 413, "body-too-large", detail, NULL);
        free(detail);
        return -1;
    }
    return 0;
}

/* ================================================================ storing */

static void up__new_id(char id[MEDIA_ID_LEN + 1])
{
    uint8_t raw[MEDIA_ID_LEN / 2];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(id, MEDIA_ID_LEN + 1, raw, sizeof(raw));
}

static bson_t *up__doc(const char *id, const char *owner, image_format_t fmt, size_t bytes,
                       const variants_t *v, int64_t now)
{
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(id), "owner_id", BCON_UTF8(owner), "state", BCON_UTF8("uploading"),
                 "format", BCON_UTF8(sniff_name(fmt)), "bytes", BCON_INT64((int64_t)bytes), "width",
                 BCON_INT32(v->width), "height", BCON_INT32(v->height), "created_at", BCON_DATE_TIME(now));
    if (v->blurhash[0] != '\0')
        BSON_APPEND_UTF8(doc, "blurhash", v->blurhash);
    bson_t vars, one;
    BSON_APPEND_DOCUMENT_BEGIN(doc, "variants", &vars);
    for (int i = 0; i < VARIANT_COUNT; i++) {
        BSON_APPEND_DOCUMENT_BEGIN(&vars, variant_name(i), &one);
        BSON_APPEND_INT32(&one, "width", v->v[i].width);
        BSON_APPEND_INT32(&one, "height", v->v[i].height);
        BSON_APPEND_INT64(&one, "jpeg_bytes", (int64_t)v->v[i].jpeg_len);
        BSON_APPEND_INT64(&one, "webp_bytes", (int64_t)v->v[i].webp_len);
        bson_append_document_end(&vars, &one);
    }
    bson_append_document_end(doc, &vars);
    return doc;
}

static int up__put_all(resize_t *app, const char *id, const variants_t *v, const char *request_id)
{
    char key[128], err[256];
    for (int i = 0; i < VARIANT_COUNT; i++) {
        for (int webp = 0; webp <= 1; webp++) {
            media_key(key, sizeof(key), id, i, webp);
            int rc = objstore_put(app->store, key, webp ? v->v[i].webp : v->v[i].jpeg,
                                  webp ? v->v[i].webp_len : v->v[i].jpeg_len,
                                  webp ? "image/webp" : "image/jpeg", err, sizeof(err));
            if (rc != OBJSTORE_OK) {
                log_error(request_id, "media %s: %s", id, err);
                return -1;
            }
        }
    }
    return 0;
}

static int up__set_state(resize_t *app, const char *id, const char *state)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *u = BCON_NEW("$set", "{", "state", BCON_UTF8(state), "}");
    int rc = db_update_one(app->db, "media", f, u, 0);
    bson_destroy(f);
    bson_destroy(u);
    return rc == 1 ? 0 : -1;
}

static void up__forget(resize_t *app, const char *id)
{
    media_delete_objects(app, id);
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    db_delete_one(app->db, "media", f);
    bson_destroy(f);
}

/* ================================================================ the handler */

void upload_media(resize_t *app, const mq_message_t *req, mq_reply_t *r)
{
    const uint8_t *data = NULL;
    size_t len = 0;
    variants_t v = {0};
    bson_t *doc = NULL;
    cJSON *payload = NULL;
    const char *outcome = "rejected";
    if (up__file(app, req, r, &data, &len) != 0)
        goto out;
    int gone = media_owner_gone(app, req->user_id);
    if (gone != 0) {
        if (gone < 0)
            rpc_db_error(r);
        else
            rpc_unauthorized(r, "account-gone", "this account was deleted");
        goto out;
    }
    image_format_t fmt = sniff_image(data, len);
    if (fmt == IMAGE_UNKNOWN) {
        rpc_problem(r, 415, "unsupported-image", "the file is not a JPEG, PNG, WebP or HEIC image", NULL);
        goto out;
    }

    char err[512];
    uint64_t t0 = core_now_us();
    int rc = variants_make(&app->conf->variants, fmt, data, len, &v, err, sizeof(err));
    metrics_histogram_observe(app->process_time, NULL, (double)(core_now_us() - t0) / 1e6);
    if (rc != VARIANTS_OK) {
        log_info(req->request_id, "upload refused (%s, %zu bytes): %s", sniff_name(fmt), len, err);
        rpc_problem(r, 422, rc == VARIANTS_ETOOBIG ? "image-too-large" : "corrupt-image", err, NULL);
        goto out;
    }

    /* The event first (pending), then the document (state "uploading": invisible), the files,
     * and "ready": a crash anywhere leaves a pending event whose recovery either publishes it
     * (ready) or removes the document and files and drops it. */
    outcome = "failed";
    char id[MEDIA_ID_LEN + 1], ob[37];
    int64_t now = core_wall_ms();
    up__new_id(id);
    doc = up__doc(id, req->user_id, fmt, len, &v, now);
    bson_t ready = BSON_INITIALIZER;
    bson_copy_to_excluding_noinit(doc, &ready, "state", NULL);
    BSON_APPEND_UTF8(&ready, "state", "ready");
    payload = media_json(app, &ready);
    bson_destroy(&ready);
    rc = outbox_begin(app->outbox, "media.created", payload, id, req->user_id, req->request_id, ob);
    if (rc != 0) {
        rpc_db_error(r);
        goto out;
    }
    if (db_insert(app->db, "media", doc) != 0) {
        outbox_abort(app->outbox, ob);
        rpc_db_error(r);
        goto out;
    }
    if (up__put_all(app, id, &v, req->request_id) != 0) {
        up__forget(app, id);
        outbox_abort(app->outbox, ob);
        rpc_unavailable(r, "storage-unavailable", "the media store is unavailable; try again");
        goto out;
    }
    if (up__set_state(app, id, "ready") != 0) {
        up__forget(app, id);
        outbox_abort(app->outbox, ob);
        rpc_db_error(r);
        goto out;
    }
    outbox_commit(app->outbox, ob); /* if this fails, recovery finds the media ready and publishes */
    if (media_owner_gone(app, req->user_id) == 1) {
        /* The account went while this upload was under way, after its media were deleted. */
        media_delete(app, id, req->user_id, req->request_id);
        rpc_unauthorized(r, "account-gone", "this account was deleted");
        goto out;
    }
    outcome = "stored";
    log_info(req->request_id, "media %s stored: %s %dx%d, %zu bytes", id, sniff_name(fmt), v.width, v.height,
             len);
    rpc_json(r, 201, payload);
    payload = NULL;
    r->headers_json = xasprintf("{\"location\":\"/v1/media/%s\"}", id);
out:
    if (doc != NULL)
        bson_destroy(doc);
    cJSON_Delete(payload);
    variants_free(&v);
    metrics_counter_add(app->uploads, &outcome, 1);
}
