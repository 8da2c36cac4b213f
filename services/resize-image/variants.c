/* variants.c -- from an uploaded image to its variants with libvips: header check, shrink-on-load,
 * autorotation, JPEG and WebP without metadata but the colour profile, and a blurhash. */
#include <pthread.h>
#include <string.h>

#include <vips/vips.h>
#include <webp/mux.h>

#include "core/core.h"
#include "log/log.h"
#include "resize.h"

#define VAR__MAX_ICC (1024 * 1024) /* a larger "profile" is not one worth keeping */

static const struct {
    const char *name;
    int width; /* target width; thumb is a square crop */
} var__spec[VARIANT_COUNT] = {
    [VARIANT_THUMB] = {"thumb", 150},
    [VARIANT_SMALL] = {"small", 320},
    [VARIANT_MEDIUM] = {"medium", 640},
    [VARIANT_LARGE] = {"large", 1080},
};

const char *variant_name(variant_t v)
{
    return var__spec[v].name;
}

/* libvips' warnings ("VipsJpeg: Premature end of JPEG file") as our log lines, at debug: the
 * upload's own log line says what was refused and why. */
static void var__glib_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer ud)
{
    (void)level;
    (void)ud;
    log_debug(NULL, "%s: %s", domain != NULL ? domain : "glib", message);
}

int variants_init(const char *argv0, int threads)
{
    if (VIPS_INIT(argv0) != 0)
        return -1;
    g_log_set_handler("VIPS",
                      G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG,
                      var__glib_log, NULL);
    vips_block_untrusted_set(TRUE);
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    vips_concurrency_set(threads);
    return 0;
}

void variants_shutdown(void)
{
    vips_shutdown();
}

void variants_free(variants_t *v)
{
    for (int i = 0; i < VARIANT_COUNT; i++) {
        g_free(v->v[i].jpeg);
        g_free(v->v[i].webp);
    }
    memset(v, 0, sizeof(*v));
}

/* Copies libvips's error text for this failure into err, prefixed by what failed. */
static void var__error(char *err, size_t errlen, const char *what)
{
    char *msg = vips_error_buffer_copy();
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    char *nl;
    while ((nl = strchr(msg, '\n')) != NULL)
        *nl = ' ';
    snprintf(err, errlen, "%s: %s", what, msg[0] != '\0' ? msg : "libvips failed");
    g_free(msg);
}

/* ================================================================ the header */

/* Opens data with the loader of its sniffed format only (no other loader gets a say), reading
 * the header and nothing else. */
static VipsImage *var__header(image_format_t fmt, const void *data, size_t len)
{
    VipsImage *im = NULL;
    void *d = (void *)data; /* libvips takes a non-const pointer but only reads */
    switch (fmt) {
    case IMAGE_JPEG:
        vips_jpegload_buffer(d, len, &im, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
        break;
    case IMAGE_PNG:
        vips_pngload_buffer(d, len, &im, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
        break;
    case IMAGE_WEBP:
        vips_webpload_buffer(d, len, &im, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
        break;
    case IMAGE_HEIC:
        vips_heifload_buffer(d, len, &im, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
        break;
    default:
        break;
    }
    return im;
}

/* ================================================================ encodings */

/* JPEG has no alpha: lay it over white. Returns a new reference. */
static VipsImage *var__opaque(VipsImage *in)
{
    if (!vips_image_hasalpha(in)) {
        g_object_ref(in);
        return in;
    }
    VipsImage *out = NULL;
    int n = in->Bands - 1;
    VipsArrayDouble *white = vips_array_double_newv(n == 1 ? 1 : 3, 255.0, 255.0, 255.0);
    if (vips_flatten(in, &out, "background", white, NULL) != 0)
        out = NULL;
    vips_area_unref(VIPS_AREA(white));
    return out;
}

/* JPEG with the profile as APP2 "ICC_PROFILE" segments after SOI (ICC.1 Annex B.4): the encoder
 * wrote no metadata at all (strip), so this is the only one there is. Takes *buf. */
static int var__jpeg_add_icc(void **buf, size_t *len, const uint8_t *icc, size_t icc_len)
{
    enum { CHUNK = 65519 };
    uint8_t *in = *buf;
    if (*len < 2 || in[0] != 0xff || in[1] != 0xd8)
        return -1;
    size_t nseg = (icc_len + CHUNK - 1) / CHUNK;
    if (nseg == 0 || nseg > 255)
        return -1;
    size_t out_len = *len + nseg * (4 + 14) + icc_len;
    uint8_t *out = g_malloc(out_len), *o = out;
    *o++ = 0xff, *o++ = 0xd8;
    for (size_t s = 0; s < nseg; s++) {
        size_t n = icc_len - s * CHUNK < CHUNK ? icc_len - s * CHUNK : CHUNK;
        size_t seglen = 2 + 14 + n;
        *o++ = 0xff, *o++ = 0xe2;
        *o++ = (uint8_t)(seglen >> 8), *o++ = (uint8_t)seglen;
        memcpy(o, "ICC_PROFILE", 12); /* with its NUL */
        o += 12;
        *o++ = (uint8_t)(s + 1), *o++ = (uint8_t)nseg;
        memcpy(o, icc + s * CHUNK, n);
        o += n;
    }
    memcpy(o, in + 2, *len - 2);
    o += *len - 2;
    CORE_ASSERT((size_t)(o - out) == out_len);
    g_free(in);
    *buf = out;
    *len = out_len;
    return 0;
}

/* WebP: no EXIF, no XMP, and the profile as the ICCP chunk (libwebpmux turns a simple file into
 * an extended one). libvips 8.14.1's webpsave ignores "strip" (its own, never-set flag shadows the
 * saver's) and writes EXIF rebuilt from the image, so the chunks are removed here whatever it
 * did. Takes *buf. */
static int var__webp_metadata(void **buf, size_t *len, const uint8_t *icc, size_t icc_len)
{
    WebPData in = {*buf, *len}, profile = {icc, icc_len}, out = {NULL, 0};
    WebPMux *mux = WebPMuxCreate(&in, 0);
    int ok = mux != NULL;
    static const char *const drop[] = {"EXIF", "XMP "};
    for (size_t i = 0; ok && i < CORE_ARRAY_SIZE(drop); i++) {
        WebPMuxError e = WebPMuxDeleteChunk(mux, drop[i]);
        ok = e == WEBP_MUX_OK || e == WEBP_MUX_NOT_FOUND;
    }
    if (ok) {
        WebPMuxError e =
            icc != NULL ? WebPMuxSetChunk(mux, "ICCP", &profile, 0) : WebPMuxDeleteChunk(mux, "ICCP");
        ok = e == WEBP_MUX_OK || e == WEBP_MUX_NOT_FOUND;
    }
    ok = ok && WebPMuxAssemble(mux, &out) == WEBP_MUX_OK;
    WebPMuxDelete(mux);
    if (!ok) {
        WebPDataClear(&out);
        return -1;
    }
    g_free(*buf);
    *buf = g_malloc(out.size);
    memcpy(*buf, out.bytes, out.size);
    *len = out.size;
    WebPDataClear(&out);
    return 0;
}

/* Forgets every metadata item of im but its colour profile (EXIF with GPS, XMP, IPTC, comments,
 * PNG text), so that no saver can write any of them whatever its options. */
static void var__drop_metadata(VipsImage *im)
{
    gchar **fields = vips_image_get_fields(im);
    for (int i = 0; fields[i] != NULL; i++)
        if (strcmp(fields[i], VIPS_META_ICC_NAME) != 0)
            vips_image_remove(im, fields[i]);
    g_strfreev(fields);
}

static int var__encode(const variants_conf_t *c, VipsImage *im, int no_subsample, const uint8_t *icc,
                       size_t icc_len, variant_out_t *out, char *err, size_t errlen)
{
    out->width = im->Xsize;
    out->height = im->Ysize;
    VipsImage *opaque = var__opaque(im);
    int rc = opaque == NULL
                 ? -1
                 : vips_jpegsave_buffer(
                       opaque, &out->jpeg, &out->jpeg_len, "Q", (int)c->jpeg_quality, "strip", TRUE,
                       "optimize_coding", TRUE, "subsample_mode",
                       no_subsample ? VIPS_FOREIGN_SUBSAMPLE_OFF : VIPS_FOREIGN_SUBSAMPLE_AUTO, NULL);
    if (opaque != NULL)
        g_object_unref(opaque);
    if (rc != 0) {
        var__error(err, errlen, "cannot decode the image");
        return VARIANTS_ECORRUPT;
    }
    if (vips_webpsave_buffer(im, &out->webp, &out->webp_len, "Q", (int)c->webp_quality, "effort",
                             (int)c->webp_effort, "strip", TRUE, NULL) != 0) {
        var__error(err, errlen, "cannot decode the image");
        return VARIANTS_ECORRUPT;
    }
    if ((icc != NULL && var__jpeg_add_icc(&out->jpeg, &out->jpeg_len, icc, icc_len) != 0) ||
        var__webp_metadata(&out->webp, &out->webp_len, icc, icc_len) != 0) {
        snprintf(err, errlen, "cannot attach the colour profile");
        return VARIANTS_ECORRUPT;
    }
    return VARIANTS_OK;
}

/* One variant's encodings on another thread. */
typedef struct {
    const variants_conf_t *c;
    VipsImage *im;
    const uint8_t *icc;
    size_t icc_len;
    variant_out_t *out;
    int rc;
    char err[256];
} var__job_t;

static void *var__encode_job(void *arg)
{
    var__job_t *j = arg;
    j->rc = var__encode(j->c, j->im, 1, j->icc, j->icc_len, j->out, j->err, sizeof(j->err));
    return NULL;
}

/* ================================================================ blurhash */

static int var__blurhash(VipsImage *small, char out[BLURHASH_MAX + 1])
{
    VipsImage *tiny = NULL, *opaque = NULL, *srgb = NULL, *rgb = NULL;
    void *pixels = NULL;
    int rc = -1;
    if (vips_thumbnail_image(small, &tiny, 32, "height", 32, "no_rotate", TRUE, NULL) != 0)
        goto out;
    if ((opaque = var__opaque(tiny)) == NULL ||
        vips_colourspace(opaque, &srgb, VIPS_INTERPRETATION_sRGB, NULL) != 0 ||
        vips_cast_uchar(srgb, &rgb, NULL) != 0)
        goto out;
    size_t size;
    if (rgb->Bands < 3 || (pixels = vips_image_write_to_memory(rgb, &size)) == NULL)
        goto out;
    int w = rgb->Xsize, h = rgb->Ysize, bands = rgb->Bands;
    /* Pack to RGB when the image had more bands. */
    uint8_t *px = pixels;
    if (bands != 3)
        for (size_t i = 0; i < (size_t)w * h; i++)
            memmove(px + 3 * i, px + (size_t)bands * i, 3);
    rc = blurhash_encode(px, w, h, (size_t)w * 3, w >= h ? 4 : 3, w >= h ? 3 : 4, out);
out:
    g_free(pixels);
    VIPS_UNREF(rgb);
    VIPS_UNREF(srgb);
    VIPS_UNREF(opaque);
    VIPS_UNREF(tiny);
    return rc;
}

/* ================================================================ the pipeline */

/* Downsizes in to width (never up), keeping the aspect ratio, into memory. Returns a new
 * reference. */
static VipsImage *var__narrow(VipsImage *in, int width)
{
    VipsImage *out = NULL;
    if (in->Xsize <= width) {
        /* Already narrow enough: the same pixels under a header of its own, since the encoders
         * (webpsave rebuilds EXIF on its input) may touch metadata while another thread
         * encodes the large variant from in. */
        return vips_copy(in, &out, NULL) == 0 ? out : NULL;
    }
    if (vips_thumbnail_image(in, &out, width, "height", VIPS_MAX_COORD, "size", VIPS_SIZE_DOWN, "no_rotate",
                             TRUE, NULL) != 0)
        return NULL;
    /* Into memory: each variant is encoded twice (JPEG, WebP) and the next is made from it. */
    VipsImage *copy = vips_image_copy_memory(out);
    g_object_unref(out);
    return copy;
}

int variants_make(const variants_conf_t *c, image_format_t fmt, const void *data, size_t len, variants_t *out,
                  char *err, size_t errlen)
{
    VipsImage *hdr = NULL, *large = NULL, *mem = NULL, *img[VARIANT_COUNT] = {NULL};
    void *d = (void *)data;
    uint8_t *icc = NULL;
    size_t icc_len = 0;
    int rc = VARIANTS_ECORRUPT;
    memset(out, 0, sizeof(*out));

    /* 1. The header only: its size decides before a single pixel is decoded. */
    if ((hdr = var__header(fmt, data, len)) == NULL) {
        var__error(err, errlen, "cannot read the image header");
        goto out;
    }
    int64_t pixels = (int64_t)hdr->Xsize * hdr->Ysize;
    int swap = vips_image_get_orientation_swap(hdr);
    out->width = swap ? hdr->Ysize : hdr->Xsize;
    out->height = swap ? hdr->Xsize : hdr->Ysize;
    if (pixels > c->max_pixels) {
        snprintf(err, errlen, "%dx%d is %lld pixels; at most %ld are accepted", out->width, out->height,
                 (long long)pixels, c->max_pixels);
        rc = VARIANTS_ETOOBIG;
        goto out;
    }

    /* 2. The largest variant, decoded with shrink-on-load and autorotated, into memory: a
     * truncated or corrupt file fails here, before anything is stored. */
    if (vips_thumbnail_buffer(d, len, &large, var__spec[VARIANT_LARGE].width, "height", VIPS_MAX_COORD,
                              "size", VIPS_SIZE_DOWN, "option_string", "fail_on=truncated", NULL) != 0 ||
        (mem = vips_image_copy_memory(large)) == NULL) {
        var__error(err, errlen, "cannot decode the image");
        goto out;
    }
    const void *blob;
    size_t blob_len;
    if (vips_image_get_typeof(mem, VIPS_META_ICC_NAME) &&
        vips_image_get_blob(mem, VIPS_META_ICC_NAME, &blob, &blob_len) == 0 && blob_len > 0 &&
        blob_len <= VAR__MAX_ICC) {
        icc = xmalloc(blob_len);
        memcpy(icc, blob, blob_len);
        icc_len = blob_len;
    }

    /* 3. The smaller ones from it, each from the next larger. The square thumb comes from the
     * smallest variant with 150 pixels on its short side; a panorama thinner than that even at
     * 1080 wide gets its thumb from the original. */
    img[VARIANT_LARGE] = mem;
    g_object_ref(mem);
    if ((img[VARIANT_MEDIUM] = var__narrow(mem, var__spec[VARIANT_MEDIUM].width)) == NULL ||
        (img[VARIANT_SMALL] = var__narrow(img[VARIANT_MEDIUM], var__spec[VARIANT_SMALL].width)) == NULL) {
        var__error(err, errlen, "cannot resize the image");
        goto out;
    }
    int side = var__spec[VARIANT_THUMB].width;
    int orig_short = out->width < out->height ? out->width : out->height;
    VipsImage *thumb = NULL, *from = NULL;
    for (int v = VARIANT_SMALL; v <= VARIANT_LARGE && from == NULL; v++) {
        int s = img[v]->Xsize < img[v]->Ysize ? img[v]->Xsize : img[v]->Ysize;
        if (s >= side || s >= orig_short) /* enough, or all there is */
            from = img[v];
    }
    if (from != NULL) {
        int s = from->Xsize < from->Ysize ? from->Xsize : from->Ysize;
        side = s < side ? s : side;
        if (vips_thumbnail_image(from, &thumb, side, "height", side, "crop", VIPS_INTERESTING_CENTRE, "size",
                                 VIPS_SIZE_DOWN, "no_rotate", TRUE, NULL) != 0)
            thumb = NULL;
    } else {
        side = orig_short < side ? orig_short : side;
        VipsImage *t = NULL;
        if (vips_thumbnail_buffer(d, len, &t, side, "height", side, "crop", VIPS_INTERESTING_CENTRE, "size",
                                  VIPS_SIZE_DOWN, "option_string", "fail_on=truncated", NULL) == 0)
            thumb = vips_image_copy_memory(t);
        VIPS_UNREF(t);
    }
    if ((img[VARIANT_THUMB] = thumb) == NULL) {
        var__error(err, errlen, "cannot make the thumbnail");
        goto out;
    }

    /* 4. Encodings: the large variant (half the work) on a thread of its own, the others and the
     * blurhash here meanwhile. */
    for (int v = 0; v < VARIANT_COUNT; v++)
        var__drop_metadata(img[v]);
    var__job_t large_job = {c, img[VARIANT_LARGE], icc, icc_len, &out->v[VARIANT_LARGE], VARIANTS_OK, ""};
    pthread_t large_thread;
    int threaded = pthread_create(&large_thread, NULL, var__encode_job, &large_job) == 0;
    if (!threaded)
        var__encode_job(&large_job);
    rc = VARIANTS_OK;
    for (int v = 0; v < VARIANT_LARGE && rc == VARIANTS_OK; v++)
        rc = var__encode(c, img[v], 0, icc, icc_len, &out->v[v], err, errlen);
    if (rc == VARIANTS_OK && var__blurhash(img[VARIANT_SMALL], out->blurhash) != 0)
        out->blurhash[0] = '\0'; /* optional in the reply */
    if (threaded)
        pthread_join(large_thread, NULL);
    if (rc == VARIANTS_OK && large_job.rc != VARIANTS_OK) {
        rc = large_job.rc;
        snprintf(err, errlen, "%s", large_job.err);
    }
out:
    if (rc != VARIANTS_OK)
        vips_error_clear();
    for (int v = 0; v < VARIANT_COUNT; v++)
        VIPS_UNREF(img[v]);
    VIPS_UNREF(mem);
    VIPS_UNREF(large);
    VIPS_UNREF(hdr);
    free(icc);
    return rc;
}
