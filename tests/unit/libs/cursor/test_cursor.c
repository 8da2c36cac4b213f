/* test_cursor.c -- cursors round-trip, and any tampering, truncation or wrong key is refused. */
#include "cursor/cursor.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char test_b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static cJSON *test_payload(void)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "after", "2026-11-21T18:40:03.123Z");
    cJSON_AddStringToObject(p, "id", "0b5e6f1a-9c2d-4e7f-8a1b-2c3d4e5f6a7b");
    cJSON_AddNumberToObject(p, "n", 20);
    return p;
}

/* Builds a token the way cursor_encode is specified to, from raw JSON text, so tests can
 * sign payloads cursor_encode would never produce. Caller frees. */
static char *test_sign_raw(const cursor_key_t *k, const char *json)
{
    size_t len = strlen(json);
    unsigned char *bin = malloc(len + 16);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    memcpy(bin, json, len);
    crypto_auth_hmacsha256(mac, bin, len, k->key);
    memcpy(bin + len, mac, 16);
    size_t b64_len = sodium_base64_encoded_len(len + 16, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *token = malloc(b64_len);
    sodium_bin2base64(token, b64_len, bin, len + 16, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(bin);
    return token;
}

Test(cursor, round_trip)
{
    cursor_key_t k;
    cursor_key_init(&k, "correct horse battery staple");
    cJSON *p = test_payload();
    char *token = cursor_encode(&k, p);
    cr_assert_not_null(token);
    cr_assert_eq(strspn(token, test_b64_alphabet), strlen(token), "not base64url: %s", token);
    cr_assert_null(strchr(token, '='));

    cJSON *back = cursor_decode(&k, token);
    cr_assert_not_null(back);
    cr_assert(cJSON_Compare(p, back, 1));
    cJSON_Delete(back);
    cJSON_Delete(p);
    free(token);
}

Test(cursor, format_is_json_then_16_byte_tag)
{
    cursor_key_t k;
    cursor_key_init(&k, "s");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "a", 1);
    char *token = cursor_encode(&k, p);
    char *expected = test_sign_raw(&k, "{\"a\":1}");
    cr_assert_str_eq(token, expected);

    unsigned char bin[64];
    size_t bin_len;
    cr_assert_eq(sodium_base642bin(bin, sizeof(bin), token, strlen(token), NULL, &bin_len, NULL,
                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                 0);
    cr_assert_eq(bin_len, strlen("{\"a\":1}") + 16);
    cr_assert(memcmp(bin, "{\"a\":1}", 7) == 0);
    free(expected);
    free(token);
    cJSON_Delete(p);
}

Test(cursor, key_derivation_is_deterministic)
{
    cursor_key_t a, b, c;
    cursor_key_init(&a, "secret");
    cursor_key_init(&b, "secret");
    cursor_key_init(&c, "secret2");
    cr_assert(memcmp(a.key, b.key, sizeof(a.key)) == 0);
    cr_assert(memcmp(a.key, c.key, sizeof(a.key)) != 0);
}

Test(cursor, any_changed_character_is_refused)
{
    cursor_key_t k;
    cursor_key_init(&k, "k");
    cJSON *p = test_payload();
    char *token = cursor_encode(&k, p);
    size_t len = strlen(token);
    for (size_t i = 0; i < len; i++) {
        char saved = token[i];
        /* Try a few replacements per position, including ones that only touch low bits. */
        const char *alt = strchr(test_b64_alphabet, saved);
        cr_assert_not_null(alt);
        size_t at = (size_t)(alt - test_b64_alphabet);
        size_t deltas[] = {1, 2, 16, 32, 63};
        for (size_t d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
            token[i] = test_b64_alphabet[(at + deltas[d]) % 64];
            cJSON *v = cursor_decode(&k, token);
            cr_assert_null(v, "accepted with position %zu changed to %c", i, token[i]);
        }
        token[i] = saved;
    }
    cJSON *v = cursor_decode(&k, token);
    cr_assert_not_null(v, "the restored token still decodes");
    cJSON_Delete(v);
    cJSON_Delete(p);
    free(token);
}

Test(cursor, any_flipped_bit_in_the_bytes_is_refused)
{
    cursor_key_t k;
    cursor_key_init(&k, "k");
    cJSON *p = test_payload();
    char *token = cursor_encode(&k, p);
    unsigned char bin[512];
    size_t bin_len;
    cr_assert_eq(sodium_base642bin(bin, sizeof(bin), token, strlen(token), NULL, &bin_len, NULL,
                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                 0);
    char out[1024];
    for (size_t i = 0; i < bin_len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            bin[i] ^= (unsigned char)(1u << bit);
            sodium_bin2base64(out, sizeof(out), bin, bin_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
            cr_assert_null(cursor_decode(&k, out), "accepted with byte %zu bit %d flipped", i, bit);
            bin[i] ^= (unsigned char)(1u << bit);
        }
    }
    cJSON_Delete(p);
    free(token);
}

Test(cursor, truncated_is_refused)
{
    cursor_key_t k;
    cursor_key_init(&k, "k");
    cJSON *p = test_payload();
    char *token = cursor_encode(&k, p);
    for (size_t len = strlen(token); len-- > 0;) {
        token[len] = '\0';
        cr_assert_null(cursor_decode(&k, token), "accepted truncated to %zu", len);
    }
    cJSON_Delete(p);
    free(token);
}

Test(cursor, trailing_characters_are_refused)
{
    cursor_key_t k;
    cursor_key_init(&k, "k");
    cJSON *p = test_payload();
    char *token = cursor_encode(&k, p);
    const char *tails[] = {"=", "==", " ", "\n", ".", "!", "%00"};
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        size_t len = strlen(token) + strlen(tails[i]) + 1;
        char *longer = malloc(len);
        snprintf(longer, len, "%s%s", token, tails[i]);
        cr_assert_null(cursor_decode(&k, longer), "accepted with \"%s\" appended", tails[i]);
        free(longer);
    }
    cJSON_Delete(p);
    free(token);
}

Test(cursor, wrong_key_is_refused)
{
    cursor_key_t k1, k2;
    cursor_key_init(&k1, "service-a");
    cursor_key_init(&k2, "service-b");
    cJSON *p = test_payload();
    char *token = cursor_encode(&k1, p);
    cr_assert_null(cursor_decode(&k2, token));
    cJSON_Delete(p);
    free(token);
}

Test(cursor, garbage_is_refused)
{
    cursor_key_t k;
    cursor_key_init(&k, "k");
    const char *bad[] = {"",
                         "a",
                         "!!!!",
                         "abc=",
                         "eyJhIjoxfQ==",
                         "eyJhIjoxfQ",
                         "    ",
                         "abc def",
                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                         "+/+/+/+/+/+/+/+/+/+/+/+/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_null(cursor_decode(&k, bad[i]), "accepted %s", bad[i]);
    cr_assert_null(cursor_decode(&k, NULL));
}

Test(cursor, too_long_is_refused)
{
    cursor_key_t k;
    cursor_key_init(&k, "k");
    char *junk = malloc(4097);
    memset(junk, 'A', 4096);
    junk[4096] = '\0';
    cr_assert_null(cursor_decode(&k, junk));
    free(junk);

    /* Even a correctly signed cursor over the limit is refused; one at the limit is not. */
    char json[1024];
    for (size_t pad = 700; pad < 780; pad++) {
        memset(json, 0, sizeof(json));
        strcpy(json, "{\"p\":\"");
        memset(json + 6, 'x', pad);
        strcat(json, "\"}");
        char *token = test_sign_raw(&k, json);
        cJSON *v = cursor_decode(&k, token);
        if (strlen(token) > 1024) {
            cr_assert_null(v, "accepted %zu chars", strlen(token));
        } else {
            cr_assert_not_null(v, "refused %zu chars", strlen(token));
            cJSON_Delete(v);
        }
        free(token);
    }
}

Test(cursor, signed_but_not_an_object_is_refused)
{
    cursor_key_t k;
    cursor_key_init(&k, "k");
    const char *bad[] = {"[1,2]",
                         "\"str\"",
                         "42",
                         "null",
                         "{\"a\":",
                         "{\"a\":1} x",
                         "{\"a\":\"\\u0000\"}",
                         "{\"a\":[[[[[[[[[1]]]]]]]]]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *token = test_sign_raw(&k, bad[i]);
        cr_assert_null(cursor_decode(&k, token), "accepted %s", bad[i]);
        free(token);
    }
    /* A correctly signed object within the depth limit is the control. */
    char *token = test_sign_raw(&k, "{\"a\":[[[[[[1]]]]]]}");
    cJSON *v = cursor_decode(&k, token);
    cr_assert_not_null(v);
    cJSON_Delete(v);
    free(token);
}

Test(cursor, sixteen_bytes_alone_are_refused)
{
    cursor_key_t k;
    cursor_key_init(&k, "k");
    /* An empty JSON text with a valid tag: 16 bytes decode, but there is no payload. */
    char *token = test_sign_raw(&k, "");
    cr_assert_null(cursor_decode(&k, token));
    free(token);
}
