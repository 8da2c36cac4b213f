/* token.c -- access tokens: RS256 JWTs checked the way libjwt does not (alg, exp, nbf, iss, aud). */
#include "token/token.h"

#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/core.h"
#include "json/json.h"

#define TOKEN__MAX_ALGS 8

struct token_verifier {
    char *key;
    size_t key_len;
    jwt_alg_t algs[TOKEN__MAX_ALGS];
    size_t nalgs;
    char *issuer, *audience;
    int leeway_s;
};

const char *token_strerror(token_err_t err)
{
    switch (err) {
    case TOKEN_OK:
        return "ok";
    case TOKEN_EMALFORMED:
        return "malformed token";
    case TOKEN_EALG:
        return "token algorithm not allowed";
    case TOKEN_ESIGNATURE:
        return "token signature invalid";
    case TOKEN_EEXPIRED:
        return "token expired";
    case TOKEN_ENOTYET:
        return "token not valid yet";
    case TOKEN_EISSUER:
        return "token issuer not accepted";
    case TOKEN_EAUDIENCE:
        return "token audience not accepted";
    case TOKEN_ESUBJECT:
        return "token subject invalid";
    }
    return "invalid token";
}

static int token__asymmetric(jwt_alg_t a)
{
    return (a >= JWT_ALG_RS256 && a <= JWT_ALG_RS512) || (a >= JWT_ALG_ES256 && a <= JWT_ALG_ES512);
}

token_verifier_t *token_verifier_new(const char *public_key_pem, size_t key_len, const char *algs,
                                     const char *issuer, const char *audience, int leeway_s, char *err,
                                     size_t errlen)
{
    token_verifier_t *v = xcalloc(1, sizeof(*v));
    char *list = xstrdup(algs), *save = NULL;
    for (char *a = strtok_r(list, ", ", &save); a != NULL; a = strtok_r(NULL, ", ", &save)) {
        jwt_alg_t alg = jwt_str_alg(a);
        if (!token__asymmetric(alg) || v->nalgs == TOKEN__MAX_ALGS) {
            snprintf(err, errlen, "token algorithm %s not allowed (asymmetric algorithms only)", a);
            free(list);
            token_verifier_free(v);
            return NULL;
        }
        v->algs[v->nalgs++] = alg;
    }
    free(list);
    if (v->nalgs == 0 || public_key_pem == NULL || key_len == 0) {
        snprintf(err, errlen, "token verifier needs a public key and at least one algorithm");
        token_verifier_free(v);
        return NULL;
    }
    v->key = xstrndup(public_key_pem, key_len);
    v->key_len = key_len;
    v->issuer = xstrdup(issuer);
    v->audience = xstrdup(audience);
    v->leeway_s = leeway_s;
    /* Parse the key now: libjwt only reports a bad key when verifying, so a broken file would
     * otherwise turn every request into a 401. */
    BIO *bio = BIO_new_mem_buf(v->key, (int)key_len);
    EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    if (pkey == NULL) {
        snprintf(err, errlen, "token verifier: key is not a PEM public key");
        token_verifier_free(v);
        return NULL;
    }
    return v;
}

void token_verifier_free(token_verifier_t *v)
{
    if (v == NULL)
        return;
    free(v->key);
    free(v->issuer);
    free(v->audience);
    free(v);
}

/* Reads the header's alg without trusting anything else in the token. */
static token_err_t token__header_alg(const char *token, size_t len, jwt_alg_t *alg)
{
    const char *dot = memchr(token, '.', len);
    if (dot == NULL || dot == token || (size_t)(dot - token) > 1024)
        return TOKEN_EMALFORMED;
    unsigned char hdr[800];
    size_t hlen;
    if (sodium_base642bin(hdr, sizeof(hdr) - 1, token, (size_t)(dot - token), NULL, &hlen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return TOKEN_EMALFORMED;
    cJSON *h = json_parse_object((const char *)hdr, hlen, sizeof(hdr), 4, NULL);
    if (h == NULL)
        return TOKEN_EMALFORMED;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(h, "alg");
    token_err_t rc = TOKEN_EALG;
    if (cJSON_IsString(a)) {
        *alg = jwt_str_alg(a->valuestring);
        rc = TOKEN_OK;
    }
    cJSON_Delete(h);
    return rc;
}

static int token__sub_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TOKEN_SUB_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* Verifies fully; on success also returns the token's exp. */
static token_err_t token__verify(const token_verifier_t *v, const char *token, size_t len, int64_t now,
                                 char *sub, int64_t *exp_out)
{
    token_err_t rc;
    jwt_t *jwt = NULL;
    char *claims_json = NULL, *copy = NULL;
    cJSON *claims = NULL;
    jwt_alg_t alg = JWT_ALG_INVAL;

    if (len == 0 || len > TOKEN_MAX_LEN || memchr(token, '\0', len) != NULL)
        return TOKEN_EMALFORMED;
    size_t dots = 0;
    for (size_t i = 0; i < len; i++)
        dots += token[i] == '.';
    if (dots != 2) /* a compact JWS is header.payload.signature */
        return TOKEN_EMALFORMED;
    if ((rc = token__header_alg(token, len, &alg)) != TOKEN_OK)
        return rc;
    rc = TOKEN_EALG;
    for (size_t i = 0; i < v->nalgs; i++)
        if (v->algs[i] == alg)
            rc = TOKEN_OK;
    if (rc != TOKEN_OK)
        return rc;

    copy = xstrndup(token, len);
    if (jwt_decode(&jwt, copy, (const unsigned char *)v->key, (int)v->key_len) != 0 || jwt == NULL) {
        rc = TOKEN_ESIGNATURE;
        goto out;
    }
    /* libjwt takes the algorithm from the token: check it is still the one we allowed. */
    if (jwt_get_alg(jwt) != alg) {
        rc = TOKEN_EALG;
        goto out;
    }
    claims_json = jwt_get_grants_json(jwt, NULL);
    if (claims_json == NULL ||
        (claims = json_parse_object(claims_json, strlen(claims_json), TOKEN_MAX_LEN, 8, NULL)) == NULL) {
        rc = TOKEN_EMALFORMED;
        goto out;
    }
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(claims, "nbf");
    const cJSON *iat = cJSON_GetObjectItemCaseSensitive(claims, "iat");
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(claims, "sub");
    if (!cJSON_IsNumber(exp) || exp->valuedouble + v->leeway_s <= (double)now) {
        rc = TOKEN_EEXPIRED;
        goto out;
    }
    if ((nbf != NULL && (!cJSON_IsNumber(nbf) || nbf->valuedouble > (double)(now + v->leeway_s))) ||
        (iat != NULL && (!cJSON_IsNumber(iat) || iat->valuedouble > (double)(now + v->leeway_s)))) {
        rc = TOKEN_ENOTYET;
        goto out;
    }
    if (!cJSON_IsString(iss) || strcmp(iss->valuestring, v->issuer) != 0) {
        rc = TOKEN_EISSUER;
        goto out;
    }
    int aud_ok = 0;
    if (cJSON_IsString(aud)) {
        aud_ok = strcmp(aud->valuestring, v->audience) == 0;
    } else if (cJSON_IsArray(aud)) {
        const cJSON *a;
        cJSON_ArrayForEach(a, aud) aud_ok |= cJSON_IsString(a) && strcmp(a->valuestring, v->audience) == 0;
    }
    if (!aud_ok) {
        rc = TOKEN_EAUDIENCE;
        goto out;
    }
    if (!cJSON_IsString(s) || !token__sub_ok(s->valuestring)) {
        rc = TOKEN_ESUBJECT;
        goto out;
    }
    snprintf(sub, TOKEN_SUB_MAX + 1, "%s", s->valuestring);
    *exp_out = (int64_t)exp->valuedouble;
    rc = TOKEN_OK;
out:
    cJSON_Delete(claims);
    free(claims_json);
    jwt_free(jwt);
    free(copy);
    return rc;
}

token_err_t token_verify(const token_verifier_t *v, const char *token, size_t len, int64_t now, char *sub)
{
    int64_t exp;
    return token__verify(v, token, len, now, sub, &exp);
}

/* ================================================================ verification cache */

typedef struct {
    unsigned char key[32]; /* BLAKE2b-256 of the token; all zero when empty */
    int64_t exp;
    char sub[TOKEN_SUB_MAX + 1];
} token__slot_t;

struct token_cache {
    size_t mask;
    token__slot_t *slots;
};

token_cache_t *token_cache_new(size_t capacity)
{
    size_t n = 1;
    while (n < capacity)
        n <<= 1;
    token_cache_t *c = xcalloc(1, sizeof(*c));
    c->mask = n - 1;
    c->slots = xcalloc(n, sizeof(*c->slots));
    CORE_ASSERT(sodium_init() >= 0);
    return c;
}

void token_cache_free(token_cache_t *c)
{
    if (c == NULL)
        return;
    free(c->slots);
    free(c);
}

token_err_t token_verify_cached(const token_verifier_t *v, token_cache_t *c, const char *token, size_t len,
                                int64_t now, char *sub)
{
    if (c == NULL || len == 0 || len > TOKEN_MAX_LEN)
        return token_verify(v, token, len, now, sub);
    unsigned char key[32];
    crypto_generichash(key, sizeof(key), (const unsigned char *)token, len, NULL, 0);
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    token__slot_t *slot = &c->slots[h & c->mask];
    if (sodium_memcmp(slot->key, key, sizeof(key)) == 0 && slot->exp + v->leeway_s > now) {
        memcpy(sub, slot->sub, sizeof(slot->sub));
        return TOKEN_OK;
    }
    int64_t exp = 0;
    token_err_t rc = token__verify(v, token, len, now, sub, &exp);
    if (rc == TOKEN_OK) {
        memcpy(slot->key, key, sizeof(key));
        slot->exp = exp;
        memcpy(slot->sub, sub, sizeof(slot->sub));
    }
    return rc;
}

char *token_sign_rs256(const char *private_key_pem, size_t key_len, const char *sub, const char *issuer,
                       const char *audience, int64_t iat, long ttl_s, char *err, size_t errlen)
{
    jwt_t *jwt = NULL;
    char *out = NULL, jti[CORE_UUID_BUFSZ];
    core_uuid(jti);
    if (jwt_new(&jwt) != 0)
        goto fail;
    if (jwt_add_grant(jwt, "sub", sub) || jwt_add_grant(jwt, "iss", issuer) ||
        jwt_add_grant(jwt, "aud", audience) || jwt_add_grant(jwt, "jti", jti) ||
        jwt_add_grant_int(jwt, "iat", (long)iat) || jwt_add_grant_int(jwt, "exp", (long)(iat + ttl_s)))
        goto fail;
    if (jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)private_key_pem, (int)key_len) != 0)
        goto fail;
    char *s = jwt_encode_str(jwt);
    if (s == NULL)
        goto fail;
    out = xstrdup(s);
    free(s); /* libjwt 1.10 allocates with malloc and has no jwt_free_str */
    jwt_free(jwt);
    return out;
fail:
    snprintf(err, errlen, "cannot sign token (bad private key?)");
    jwt_free(jwt);
    return NULL;
}
