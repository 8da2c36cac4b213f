/* test_sniff.c -- image formats by signature, whatever the bytes claim. */
#include <criterion/criterion.h>

#include "../../../../services/resize-image/sniff.c"

static image_format_t sniff(const char *bytes, size_t len)
{
    return sniff_image((const uint8_t *)bytes, len);
}

Test(sniff, signatures)
{
    cr_assert_eq(sniff("\xff\xd8\xff\xe0\0\x10JFIF", 10), IMAGE_JPEG);
    cr_assert_eq(sniff("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), IMAGE_PNG);
    cr_assert_eq(sniff("RIFF\x24\0\0\0WEBPVP8 \x10\0\0\0", 20), IMAGE_WEBP);
    cr_assert_eq(sniff("RIFF\x24\0\0\0WEBPVP8L\x10\0\0\0", 20), IMAGE_WEBP);
    cr_assert_eq(sniff("\0\0\0\x18"
                       "ftypheic\0\0\0\0mif1heic",
                       24),
                 IMAGE_HEIC);
    cr_assert_eq(sniff("\0\0\0\x18"
                       "ftypmif1\0\0\0\0mif1heic",
                       24),
                 IMAGE_HEIC); /* compatible brand */
}

Test(sniff, lookalikes_are_unknown)
{
    cr_assert_eq(sniff("", 0), IMAGE_UNKNOWN);
    cr_assert_eq(sniff("\xff\xd8", 2), IMAGE_UNKNOWN);
    cr_assert_eq(sniff("\x89PNG\r\n\x1a\n", 8), IMAGE_UNKNOWN);                 /* signature only */
    cr_assert_eq(sniff("RIFF\x24\0\0\0WAVEfmt \x10\0\0\0", 20), IMAGE_UNKNOWN); /* audio */
    cr_assert_eq(sniff("\0\0\0\x18"
                       "ftypavif\0\0\0\0mif1avif",
                       24),
                 IMAGE_UNKNOWN); /* AVIF is not HEIC */
    cr_assert_eq(sniff("\0\0\0\x18"
                       "ftypmif1\0\0\0\0mif1miaf",
                       24),
                 IMAGE_UNKNOWN);
    cr_assert_eq(sniff("\0\0\x10\0"
                       "ftypheic\0\0\0\0",
                       16),
                 IMAGE_UNKNOWN); /* box longer than data */
    cr_assert_eq(sniff("\0\0\0\x0c"
                       "ftypheic\0\0\0\0",
                       16),
                 IMAGE_UNKNOWN); /* box too short */
    cr_assert_eq(sniff("GIF89a\x01\0\x01\0\0\0\0\0\0\0", 16), IMAGE_UNKNOWN);
    cr_assert_eq(sniff("<svg xmlns='http://www.w3.org/2000/svg'/>", 40), IMAGE_UNKNOWN);
    cr_assert_str_eq(sniff_name(IMAGE_UNKNOWN), "unknown");
    cr_assert_str_eq(sniff_name(IMAGE_HEIC), "heic");
}
