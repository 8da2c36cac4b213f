/* token.h -- access tokens: RS256 JWTs checked the way libjwt does not (alg, exp, nbf, iss, aud). */
#ifndef TOKEN_H
#define TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_MAX_LEN 8192
#define TOKEN_SUB_MAX 64

typedef enum {
    TOKEN_OK = 0,
    TOKEN_EMALFORMED = -1, /* not three base64url parts, bad JSON, or too long */
    TOKEN_EALG = -2,       /* header alg not in the allow-list (none, HS256, ...) */
    TOKEN_ESIGNATURE = -3, /* signature does not verify with our key */
    TOKEN_EEXPIRED = -4,   /* exp in the past (or missing) */
    TOKEN_ENOTYET = -5,    /* nbf or iat in the future */
    TOKEN_EISSUER = -6,
    TOKEN_EAUDIENCE = -7,
    TOKEN_ESUBJECT = -8, /* sub missing or not [A-Za-z0-9_-]{1,64} */
} token_err_t;

const char *token_strerror(token_err_t err);

typedef struct token_verifier token_verifier_t;

/* A verifier for tokens signed with the private half of public_key_pem (an RSA or EC public
 * key). algs: comma-separated allow-list ("RS256"); symmetric (HS*) and "none" are refused
 * here. issuer and audience are required values of iss and aud. leeway_s tolerates clock
 * skew. Returns NULL with err filled on a bad key or list. Everything is copied. Read-only
 * after creation: any thread may verify. */
token_verifier_t *token_verifier_new(const char *public_key_pem, size_t key_len, const char *algs,
                                     const char *issuer, const char *audience, int leeway_s, char *err,
                                     size_t errlen);
void token_verifier_free(token_verifier_t *v);

/* Verifies a compact JWS at time now (seconds since the epoch). On success copies the
 * subject into sub (TOKEN_SUB_MAX + 1 bytes) and returns TOKEN_OK. */
token_err_t token_verify(const token_verifier_t *v, const char *token, size_t len, int64_t now, char *sub);

/* A cache of successful verifications, so a client reusing its token (for its 15 minutes)
 * costs a hash instead of an RSA verification. Keyed by the BLAKE2b-256 of the whole token:
 * only the very same bytes hit. Each hit is checked against the token's own exp again.
 * Direct-mapped with capacity slots (rounded up to a power of two): bounded memory, a
 * colliding token just replaces the older one. Not thread-safe: one owner thread. */
typedef struct token_cache token_cache_t;
token_cache_t *token_cache_new(size_t capacity);
void token_cache_free(token_cache_t *c);

/* token_verify through the cache c (c may be NULL: no caching). */
token_err_t token_verify_cached(const token_verifier_t *v, token_cache_t *c, const char *token, size_t len,
                                int64_t now, char *sub);

/* Signs claims {sub, iss, aud, iat, exp = iat + ttl_s, jti} with RS256 (private_key_pem).
 * Returns a malloc'd token or NULL with err filled. For auth, and for tests. */
char *token_sign_rs256(const char *private_key_pem, size_t key_len, const char *sub, const char *issuer,
                       const char *audience, int64_t iat, long ttl_s, char *err, size_t errlen);

#endif
