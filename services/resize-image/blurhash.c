/* blurhash.c -- the BlurHash of a small RGB image (https://blurha.sh): a few DCT components in base 83. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "resize.h"

static const char bh__digits[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

static char *bh__base83(char *out, long value, int length)
{
    for (int i = 1; i <= length; i++) {
        long divisor = 1;
        for (int k = 0; k < length - i; k++)
            divisor *= 83;
        *out++ = bh__digits[(value / divisor) % 83];
    }
    return out;
}

static double bh__to_linear(int v)
{
    double x = v / 255.0;
    return x <= 0.04045 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4);
}

static long bh__to_srgb(double v)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return v <= 0.0031308 ? (long)(v * 12.92 * 255 + 0.5)
                          : (long)((1.055 * pow(v, 1 / 2.4) - 0.055) * 255 + 0.5);
}

static double bh__sign_pow(double v, double e)
{
    return copysign(pow(fabs(v), e), v);
}

int blurhash_encode(const uint8_t *rgb, int width, int height, size_t stride, int xc, int yc,
                    char out[BLURHASH_MAX + 1])
{
    if (xc < 1 || xc > 9 || yc < 1 || yc > 9 || width < 1 || height < 1)
        return -1;
    double factors[9 * 9][3] = {{0}};
    double *lin = xmalloc(sizeof(double) * 3 * (size_t)width * (size_t)height);
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            for (int c = 0; c < 3; c++)
                lin[3 * ((size_t)y * width + x) + c] =
                    bh__to_linear(rgb[(size_t)y * stride + 3 * (size_t)x + c]);
    double *cx = xmalloc(sizeof(double) * (size_t)width), *cy = xmalloc(sizeof(double) * (size_t)height);
    for (int j = 0; j < yc; j++) {
        for (int y = 0; y < height; y++)
            cy[y] = cos(M_PI * j * y / height);
        for (int i = 0; i < xc; i++) {
            for (int x = 0; x < width; x++)
                cx[x] = cos(M_PI * i * x / width);
            double norm = (i == 0 && j == 0) ? 1 : 2, r = 0, g = 0, b = 0;
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++) {
                    double basis = cx[x] * cy[y];
                    const double *p = &lin[3 * ((size_t)y * width + x)];
                    r += basis * p[0], g += basis * p[1], b += basis * p[2];
                }
            double scale = norm / ((double)width * height);
            double *f = factors[j * xc + i];
            f[0] = r * scale, f[1] = g * scale, f[2] = b * scale;
        }
    }
    free(lin);
    free(cx);
    free(cy);

    char *o = bh__base83(out, (xc - 1) + (yc - 1) * 9, 1);
    int nac = xc * yc - 1;
    double max_ac = 1;
    if (nac > 0) {
        double actual = 0;
        for (int k = 1; k <= nac; k++)
            for (int c = 0; c < 3; c++)
                if (fabs(factors[k][c]) > actual)
                    actual = fabs(factors[k][c]);
        long q = (long)floor(actual * 166 - 0.5);
        q = q < 0 ? 0 : q > 82 ? 82 : q;
        max_ac = (q + 1) / 166.0;
        o = bh__base83(o, q, 1);
    } else {
        o = bh__base83(o, 0, 1);
    }
    o = bh__base83(o,
                   (bh__to_srgb(factors[0][0]) << 16) + (bh__to_srgb(factors[0][1]) << 8) +
                       bh__to_srgb(factors[0][2]),
                   4);
    for (int k = 1; k <= nac; k++) {
        long q[3];
        for (int c = 0; c < 3; c++) {
            double v = floor(bh__sign_pow(factors[k][c] / max_ac, 0.5) * 9 + 9.5);
            q[c] = v < 0 ? 0 : v > 18 ? 18 : (long)v;
        }
        o = bh__base83(o, q[0] * 19 * 19 + q[1] * 19 + q[2], 2);
    }
    *o = '\0';
    return 0;
}
