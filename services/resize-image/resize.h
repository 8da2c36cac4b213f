/* resize.h -- what the files of the resize-image daemon share: its context, image work, store access. */
#ifndef RESIZE_H
#define RESIZE_H

#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <cjson/cJSON.h>

#include "db/db.h"
#include "mq/mq.h"
#include "objstore/objstore.h"
#include "outbox/outbox.h"
#include "svc/svc.h"

/* ================================================================ configuration and context */

typedef struct {
    long max_pixels;   /* width x height of the upright original */
    long jpeg_quality; /* 1..100 */
    long webp_quality; /* 1..100 */
    long webp_effort;  /* 0 (fastest) .. 6 (smallest) */
} variants_conf_t;

typedef struct {
    svc_conf_t svc;
    char *mongo_uri;
    char *store;      /* "local" or "s3" */
    char *media_dir;  /* local store */
    char *public_url; /* prefix of variant URLs: "/media/" (the gateway serves the local store) */
    char *s3_endpoint, *s3_bucket, *s3_region, *s3_access_key, *s3_secret_key, *s3_session_token;
    long max_bytes;
    variants_conf_t variants;
    long vips_threads;
    long outbox_recover_after_ms, outbox_poll_ms;
} resize_conf_t;

typedef struct {
    const resize_conf_t *conf;
    db_t *db;
    objstore_t *store;
    outbox_t *outbox;
    metrics_counter_t *uploads;        /* by outcome */
    metrics_histogram_t *process_time; /* seconds to decode and encode every variant */
} resize_t;

/* ================================================================ sniffing (sniff.c) */

typedef enum { IMAGE_UNKNOWN, IMAGE_JPEG, IMAGE_PNG, IMAGE_WEBP, IMAGE_HEIC } image_format_t;

/* The format of data from its signature, whatever anyone claims it is. */
image_format_t sniff_image(const uint8_t *data, size_t len);
const char *sniff_name(image_format_t f);

/* ================================================================ multipart (multipart.c) */

#define MULTIPART_FILENAME_MAX 256

typedef struct {
    const uint8_t *data; /* points into the body */
    size_t len;
    char filename[MULTIPART_FILENAME_MAX]; /* "" when the part has none; cut if longer */
    char content_type[128];                /* the part's Content-Type, "" if none; never trusted */
} multipart_file_t;

enum {
    MULTIPART_OK = 0,
    MULTIPART_EMALFORMED = -1, /* not a well-formed multipart body */
    MULTIPART_ENOFILE = -2,    /* well-formed, but no part of that name */
    MULTIPART_ETWO = -3,       /* more than one file */
};

/* The boundary parameter of a multipart/form-data Content-Type into out (at least 71 bytes).
 * Returns 0, or -1 if the type is another one or the boundary is missing or invalid. */
int multipart_boundary(const char *content_type, char *out, size_t outlen);
/* Finds the one part named field in body (any order, other non-file parts ignored). Fills out
 * (pointing into body) and returns MULTIPART_OK, or an error with why set to a static phrase. */
int multipart_find_file(const uint8_t *body, size_t len, const char *boundary, const char *field,
                        multipart_file_t *out, const char **why);

/* ================================================================ blurhash (blurhash.c) */

#define BLURHASH_MAX (1 + 1 + 4 + 2 * 80)

/* Encodes an 8-bit RGB image (rows of stride bytes) with xc x yc components (1..9 each) into
 * out. Returns 0, or -1 on bad arguments. */
int blurhash_encode(const uint8_t *rgb, int width, int height, size_t stride, int xc, int yc,
                    char out[BLURHASH_MAX + 1]);

/* ================================================================ variants (variants.c) */

typedef enum { VARIANT_THUMB, VARIANT_SMALL, VARIANT_MEDIUM, VARIANT_LARGE, VARIANT_COUNT } variant_t;

/* "thumb", "small", "medium", "large". */
const char *variant_name(variant_t v);

typedef struct {
    int width, height;
    void *jpeg, *webp; /* g_malloc'd encodings; variants_free frees them */
    size_t jpeg_len, webp_len;
} variant_out_t;

typedef struct {
    int width, height; /* the original, upright */
    variant_out_t v[VARIANT_COUNT];
    char blurhash[BLURHASH_MAX + 1];
} variants_t;

enum {
    VARIANTS_OK = 0,
    VARIANTS_ETOOBIG = -1,  /* more pixels than allowed (found from the header alone) */
    VARIANTS_ECORRUPT = -2, /* cannot be decoded: truncated, corrupt */
};

/* Starts libvips for a server: untrusted operations blocked, no operation cache, threads per
 * pipeline. Returns 0 or -1. */
int variants_init(const char *argv0, int threads);
void variants_shutdown(void);

/* Decodes data (already sniffed as fmt) and makes every variant: upright, never upscaled, no
 * metadata but the colour profile, JPEG and WebP, and the blurhash. The header is checked
 * against max_pixels before any pixel is decoded. Fills out (free with variants_free, also after
 * an error) and returns VARIANTS_OK, or an error with a phrase in err. data is borrowed. Any
 * thread. */
int variants_make(const variants_conf_t *c, image_format_t fmt, const void *data, size_t len, variants_t *out,
                  char *err, size_t errlen);
void variants_free(variants_t *v);

/* ================================================================ media (media.c) */

#define MEDIA_ID_LEN 32 /* lower-case hex of 16 random bytes */

/* 1 if s has the shape of a media id. */
int media_id_valid(const char *s);
/* The object key of one encoding of a variant: "m/<id>/<variant>.<jpg|webp>". */
void media_key(char *out, size_t outlen, const char *id, variant_t v, int webp);
/* The API shape of a stored media document (URLs from the configured public prefix). */
cJSON *media_json(resize_t *app, const bson_t *doc);
/* Deletes one media: its media.deleted event (pending), its files, its document, the event
 * released. 0, or -1 (the event stays pending; recovery finishes the deletion). */
int media_delete(resize_t *app, const char *id, const char *owner, const char *request_id);
/* 1 if user_id's account was deleted (user.deleted seen), 0 if not, -1. */
int media_owner_gone(resize_t *app, const char *user_id);
/* Deletes every object of media id; 0, or -1 if one could not be deleted. */
int media_delete_objects(resize_t *app, const char *id);

/* The outbox's recovery (media.c): decides abandoned media.created / media.deleted events. */
outbox_verdict_t media_recover(void *ud, const bson_t *doc, char **body);

/* ================================================================ handlers */

/* media.upload (upload.c). */
void upload_media(resize_t *app, const mq_message_t *req, mq_reply_t *r);
/* media.show: GET /v1/media/{id}; media.get: a batch for other services (media.c). */
void media_get_one(resize_t *app, const mq_message_t *req, mq_reply_t *r);
void media_get_batch(resize_t *app, const mq_message_t *req, mq_reply_t *r);
/* user.deleted consumer (media.c). */
mq_disposition_t media_on_user_deleted(mq_t *mq, const mq_message_t *msg, void *ud);

#endif
