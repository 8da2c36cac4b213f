/* cursor.c -- pagination cursors: base64url(json || HMAC-SHA256(key, json)[0..16)). */
#include "cursor/cursor.h"

#include "core/core.h"
#include "json/json.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CURSOR_TAGBYTES 16    /* truncated HMAC-SHA256: 128 bits is plenty against forgery */
#define CURSOR_MAX_CHARS 1024 /* longest token accepted by cursor_decode */
#define CURSOR_MAX_DEPTH 8    /* cursors hold flat keys (a timestamp, an id), never deep trees */
#define CURSOR_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

_Static_assert(CURSOR_KEYBYTES == crypto_auth_hmacsha256_KEYBYTES, "cursor key size");

void cursor_key_init(cursor_key_t *k, const char *secret)
{
    /* Idempotent; every cursor needs a key, so libsodium is ready before the first one. */
    int rc = sodium_init();
    CORE_ASSERT(rc >= 0);
    crypto_generichash(k->key, sizeof(k->key), (const unsigned char *)secret, strlen(secret), NULL, 0);
}

static void cursor__tag(const cursor_key_t *k, const unsigned char *json, size_t len,
                        unsigned char tag[CURSOR_TAGBYTES])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, json, len, k->key);
    memcpy(tag, mac, CURSOR_TAGBYTES);
    sodium_memzero(mac, sizeof(mac));
}

char *cursor_encode(const cursor_key_t *k, const cJSON *payload)
{
    char *json = json_print(payload);
    size_t json_len = strlen(json);
    size_t bin_len = json_len + CURSOR_TAGBYTES;
    unsigned char *bin = xmalloc(bin_len);
    memcpy(bin, json, json_len);
    cursor__tag(k, bin, json_len, bin + json_len);

    size_t b64_len = sodium_base64_encoded_len(bin_len, CURSOR_VARIANT);
    char *token = xmalloc(b64_len);
    sodium_bin2base64(token, b64_len, bin, bin_len, CURSOR_VARIANT);

    free(bin);
    free(json);
    return token;
}

cJSON *cursor_decode(const cursor_key_t *k, const char *cursor)
{
    cJSON *payload = NULL;
    unsigned char *bin = NULL;
    size_t b64_len, bin_len = 0, json_len;
    const char *end = NULL;
    unsigned char tag[CURSOR_TAGBYTES];

    if (cursor == NULL)
        goto out;
    b64_len = strnlen(cursor, CURSOR_MAX_CHARS + 1);
    if (b64_len == 0 || b64_len > CURSOR_MAX_CHARS)
        goto out;

    bin = xmalloc(b64_len / 4 * 3 + 3);
    if (sodium_base642bin(bin, b64_len / 4 * 3 + 3, cursor, b64_len, NULL, &bin_len, &end, CURSOR_VARIANT) !=
            0 ||
        end != cursor + b64_len)
        goto out;
    if (bin_len < CURSOR_TAGBYTES + 1)
        goto out;

    json_len = bin_len - CURSOR_TAGBYTES;
    cursor__tag(k, bin, json_len, tag);
    if (sodium_memcmp(tag, bin + json_len, CURSOR_TAGBYTES) != 0)
        goto out;

    /* A valid tag only says a holder of the key wrote it: parse with the usual limits. */
    payload = json_parse_object((const char *)bin, json_len, CURSOR_MAX_CHARS, CURSOR_MAX_DEPTH, NULL);
out:
    free(bin);
    return payload;
}
