/* hash.c -- what one argon2id password hash costs here, at auth's parameters (the ceiling of logins/s).
 *
 *   bench-hash [N] [opslimit] [memlimit_kib]    (defaults: 20, 2, 19456: AUTH_PASSWORD_* defaults) */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20;
    unsigned long long ops = argc > 2 ? strtoull(argv[2], NULL, 10) : 2;
    size_t mem = (size_t)(argc > 3 ? strtoul(argv[3], NULL, 10) : 19456) * 1024;
    if (sodium_init() < 0 || n < 1)
        return 1;
    char out[crypto_pwhash_STRBYTES];
    double best = 1e9, total = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now_s();
        if (crypto_pwhash_str_alg(out, "correct horse battery", 21, ops, mem, crypto_pwhash_ALG_ARGON2ID13) !=
            0)
            return 1;
        double t = now_s() - t0;
        total += t;
        if (t < best)
            best = t;
    }
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        if (crypto_pwhash_str_verify(out, "correct horse battery", 21) != 0)
            return 1;
    double verify = (now_s() - t0) / n;
    printf("argon2id m=%zu KiB t=%llu p=1: hash mean %.1f ms (best %.1f ms), verify mean %.1f ms, "
           "%.1f verifications/s on one core\n",
           mem / 1024, ops, total / n * 1e3, best * 1e3, verify * 1e3, 1.0 / verify);
    return 0;
}
