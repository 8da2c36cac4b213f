/* cursor.h -- opaque pagination cursors: a JSON payload, MACed, base64url; tampering is refused. */
#ifndef CURSOR_H
#define CURSOR_H

#include <stddef.h>
#include <cjson/cJSON.h>

#define CURSOR_KEYBYTES 32 /* crypto_auth_hmacsha256_KEYBYTES */

typedef struct {
    unsigned char key[CURSOR_KEYBYTES];
} cursor_key_t;

/* Derives the key from a secret of any length (e.g. the CURSOR_SECRET environment variable)
 * with a generic hash; every copy of a service must use the same secret. */
void cursor_key_init(cursor_key_t *k, const char *secret);

/* Encodes payload (borrowed) as base64url(no padding) of "json || HMAC-SHA256 tag truncated
 * to 16 bytes". Returns a string the caller frees with free(). */
char *cursor_encode(const cursor_key_t *k, const cJSON *payload);

/* Decodes and verifies a cursor. Returns the payload (caller frees with cJSON_Delete), or
 * NULL if it is not base64url, too long (> 1024 chars), its tag does not verify, or its
 * JSON is not an object: the caller answers 400. */
cJSON *cursor_decode(const cursor_key_t *k, const char *cursor);

#endif
