/* variants.c -- one upload through resize-image's whole variant set (variants_make), timed, for bench/media.
 *
 *   bench-variants FILE [OUTDIR]
 *
 * Reads FILE, starts libvips as the daemon does (RESIZE_IMAGE_VIPS_THREADS, default 2), runs
 * variants_make once with the daemon's defaults (MEDIA_JPEG_QUALITY 82, MEDIA_WEBP_QUALITY 80,
 * MEDIA_MAX_PIXELS 50000000, the same variables override them), writes the 8 encodings to
 * OUTDIR/<variant>.jpg|.webp if OUTDIR is given, and prints one line:
 *   variants_make <ms> ms, <w>x<h> upright, <bytes> bytes in 8 encodings, <n> vips threads */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "resize.h" /* services/resize-image */

/* A positive number from the environment, or def. */
static long env_long(const char *name, long def)
{
    const char *s = getenv(name);
    char *end;
    long v = s != NULL ? strtol(s, &end, 10) : 0;
    return s != NULL && *s != '\0' && *end == '\0' && v > 0 ? v : def;
}

/* The whole file into a new buffer (caller frees), or NULL with errno set. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        if (n == cap)
            buf = xrealloc(buf, cap = cap != 0 ? cap * 2 : 1 << 20);
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

static int write_file(const char *dir, const char *name, const char *ext, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(data, 1, len, f) == len;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "bench-variants: cannot write %s: %s\n", path, strerror(errno));
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench-variants FILE [OUTDIR]\n");
        return 2;
    }
    const char *outdir = argc > 2 ? argv[2] : NULL;
    variants_conf_t conf = {
        .max_pixels = env_long("MEDIA_MAX_PIXELS", 50000000),
        .jpeg_quality = env_long("MEDIA_JPEG_QUALITY", 82),
        .webp_quality = env_long("MEDIA_WEBP_QUALITY", 80),
        .webp_effort = env_long("MEDIA_WEBP_EFFORT", 1),
    };
    int threads = (int)env_long("RESIZE_IMAGE_VIPS_THREADS", 2);
    variants_t v = {0};
    uint8_t *data = NULL;
    size_t len = 0;
    char err[512];
    int status = 1;

    if ((data = read_file(argv[1], &len)) == NULL) {
        fprintf(stderr, "bench-variants: cannot read %s: %s\n", argv[1], strerror(errno));
        goto out;
    }
    image_format_t fmt = sniff_image(data, len);
    if (fmt == IMAGE_UNKNOWN) {
        fprintf(stderr, "bench-variants: %s is not an image we take\n", argv[1]);
        goto out;
    }
    if (variants_init(argv[0], threads) != 0) {
        fprintf(stderr, "bench-variants: libvips cannot start\n");
        goto out;
    }
    uint64_t t0 = core_now_us();
    int rc = variants_make(&conf, fmt, data, len, &v, err, sizeof(err));
    uint64_t took = core_now_us() - t0;
    if (rc != VARIANTS_OK) {
        fprintf(stderr, "bench-variants: %s\n", err);
        goto out;
    }

    size_t bytes = 0;
    for (int i = 0; i < VARIANT_COUNT; i++) {
        bytes += v.v[i].jpeg_len + v.v[i].webp_len;
        if (outdir != NULL &&
            (write_file(outdir, variant_name(i), "jpg", v.v[i].jpeg, v.v[i].jpeg_len) != 0 ||
             write_file(outdir, variant_name(i), "webp", v.v[i].webp, v.v[i].webp_len) != 0))
            goto out;
    }
    printf("variants_make %.1f ms, %dx%d upright, %zu bytes in %d encodings, %d vips threads\n",
           took / 1000.0, v.width, v.height, bytes, 2 * VARIANT_COUNT, threads);
    status = 0;
out:
    variants_free(&v);
    free(data);
    return status;
}
