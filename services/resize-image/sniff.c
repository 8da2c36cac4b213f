/* sniff.c -- what an upload really is, from its first bytes (never from its Content-Type). */
#include <string.h>

#include "resize.h"

/* ISO BMFF brands of HEVC-coded HEIF (ISO/IEC 23008-12 Annex B). AVIF and plain "mif1" files
 * without one of these are not HEIC. */
static const char *const sniff__heic_brands[] = {"heic", "heix", "heim", "heis",
                                                 "hevc", "hevx", "hevm", "hevs"};

static int sniff__heic_brand(const uint8_t *b)
{
    for (size_t i = 0; i < sizeof(sniff__heic_brands) / sizeof(sniff__heic_brands[0]); i++)
        if (memcmp(b, sniff__heic_brands[i], 4) == 0)
            return 1;
    return 0;
}

/* An ftyp box first: size (big-endian, at least 16, within the data), "ftyp", the major brand,
 * a minor version, then compatible brands up to the end of the box. */
static int sniff__heic(const uint8_t *d, size_t len)
{
    if (len < 16 || memcmp(d + 4, "ftyp", 4) != 0)
        return 0;
    uint32_t box = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    if (box < 16 || box > len || box % 4 != 0 || box > 4096)
        return 0;
    if (sniff__heic_brand(d + 8))
        return 1;
    for (uint32_t at = 16; at + 4 <= box; at += 4)
        if (sniff__heic_brand(d + at))
            return 1;
    return 0;
}

image_format_t sniff_image(const uint8_t *d, size_t len)
{
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 4 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return IMAGE_JPEG;
    if (len >= sizeof(png) + 8 && memcmp(d, png, sizeof(png)) == 0)
        return IMAGE_PNG;
    if (len >= 16 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBPVP8", 7) == 0)
        return IMAGE_WEBP;
    if (sniff__heic(d, len))
        return IMAGE_HEIC;
    return IMAGE_UNKNOWN;
}

const char *sniff_name(image_format_t f)
{
    switch (f) {
    case IMAGE_JPEG:
        return "jpeg";
    case IMAGE_PNG:
        return "png";
    case IMAGE_WEBP:
        return "webp";
    case IMAGE_HEIC:
        return "heic";
    default:
        return "unknown";
    }
}
