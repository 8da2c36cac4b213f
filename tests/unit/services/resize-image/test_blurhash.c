/* test_blurhash.c -- blurhash_encode against a vector from the Python blurhash package. */
#include <criterion/criterion.h>

#include "../../../../services/resize-image/blurhash.c"

/* 32x24, r = 8x mod 256, g = 10y mod 256, b = 5(x+y) mod 256; blurhash.encode(img, 4, 3). */
Test(blurhash, matches_the_reference_implementation)
{
    enum { W = 32, H = 24 };
    uint8_t px[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = &px[3 * (y * W + x)];
            p[0] = (uint8_t)((x * 8) % 256), p[1] = (uint8_t)((y * 10) % 256),
            p[2] = (uint8_t)(((x + y) * 5) % 256);
        }
    char out[BLURHASH_MAX + 1];
    cr_assert_eq(blurhash_encode(px, W, H, W * 3, 4, 3, out), 0);
    cr_assert_str_eq(out, "LxH27+2jwzX7m9WYjvf5gIflfOfl");
}

Test(blurhash, flat_colour_has_only_a_dc_component)
{
    uint8_t px[4 * 4 * 3];
    memset(px, 128, sizeof(px));
    char out[BLURHASH_MAX + 1];
    cr_assert_eq(blurhash_encode(px, 4, 4, 12, 1, 1, out), 0);
    cr_assert_eq(strlen(out), 6);
    cr_assert_eq(out[0], '0'); /* 1x1 components */
}

Test(blurhash, refuses_bad_arguments)
{
    uint8_t px[3] = {0};
    char out[BLURHASH_MAX + 1];
    cr_assert_eq(blurhash_encode(px, 1, 1, 3, 0, 3, out), -1);
    cr_assert_eq(blurhash_encode(px, 1, 1, 3, 10, 3, out), -1);
    cr_assert_eq(blurhash_encode(px, 0, 1, 3, 4, 3, out), -1);
    cr_assert_eq(blurhash_encode(px, 1, 1, 3, 9, 9, out), 0);
    cr_assert_eq(strlen(out), 2 + 4 + 2 * 80);
}
