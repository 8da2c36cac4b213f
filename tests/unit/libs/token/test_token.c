/* test_token.c -- RS256 access tokens: claims checks, algorithm confusion, tampering, bad input. */
#include "token/token.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISS "https://auth.photo.test"
#define AUD "photo-api"
#define NOW ((int64_t)1900000000) /* a fixed "now": every time below is relative to it */

typedef struct {
    char *priv, *pub;
    size_t priv_len, pub_len;
} test_keys_t;

static test_keys_t keys;
static token_verifier_t *verifier;
static char err[256];

/* ================================================================ helpers */

/* Copies what a memory BIO holds into a new NUL-terminated string; NULL if empty. */
static char *test_bio_string(BIO *b, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    if (n <= 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    *len = (size_t)n;
    return s;
}

/* Writes pkey's private and public halves as PEM into k and frees pkey. Returns 0 or -1. */
static int test_keys_from(EVP_PKEY *pkey, test_keys_t *k)
{
    memset(k, 0, sizeof(*k));
    if (pkey == NULL)
        return -1;
    BIO *b = BIO_new(BIO_s_mem());
    if (PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL) == 1)
        k->priv = test_bio_string(b, &k->priv_len);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    if (PEM_write_bio_PUBKEY(b, pkey) == 1)
        k->pub = test_bio_string(b, &k->pub_len);
    BIO_free(b);
    EVP_PKEY_free(pkey);
    return k->priv != NULL && k->pub != NULL ? 0 : -1;
}

static void test_rsa_keys(test_keys_t *k)
{
    cr_assert_eq(test_keys_from(EVP_RSA_gen(2048), k), 0, "cannot make an RSA key pair");
}

static void test_keys_free(test_keys_t *k)
{
    free(k->priv);
    free(k->pub);
    memset(k, 0, sizeof(*k));
}

/* base64url without padding of len bytes; caller frees. */
static char *test_b64url(const void *bin, size_t len)
{
    size_t cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    sodium_bin2base64(out, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* "b64(header).b64(payload).b64(sig)" from raw parts; caller frees. */
static char *test_compact(const char *header, const char *payload, const void *sig, size_t sig_len)
{
    char *h = test_b64url(header, strlen(header)), *p = test_b64url(payload, strlen(payload));
    char *s = sig_len > 0 ? test_b64url(sig, sig_len) : strdup("");
    size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
    char *out = malloc(n);
    snprintf(out, n, "%s.%s.%s", h, p, s);
    free(h);
    free(p);
    free(s);
    return out;
}

/* A token with exactly the given claims (JSON object), signed by libjwt with alg and key. */
static char *test_sign_claims(const char *claims_json, jwt_alg_t alg, const char *key, size_t key_len)
{
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_new(&jwt), 0);
    cr_assert_eq(jwt_add_grants_json(jwt, claims_json), 0, "bad test claims %s", claims_json);
    cr_assert_eq(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)key_len), 0);
    char *s = jwt_encode_str(jwt);
    cr_assert_not_null(s, "libjwt could not sign with %s", jwt_alg_str(alg));
    jwt_free(jwt);
    return s;
}

/* RS256 with our key over claims; with iss, aud and sub filled unless the caller gave them. */
static char *test_rs256(const char *claims_json)
{
    return test_sign_claims(claims_json, JWT_ALG_RS256, keys.priv, keys.priv_len);
}

static token_err_t test_verify(const char *tok, char *sub)
{
    char scratch[TOKEN_SUB_MAX + 1];
    return token_verify(verifier, tok, strlen(tok), NOW, sub != NULL ? sub : scratch);
}

/* Asserts the verifier answers want for tok; frees tok (first, so a failure leaks nothing). */
static void test_expect(char *tok, token_err_t want)
{
    token_err_t got = test_verify(tok, NULL);
    char shown[120];
    snprintf(shown, sizeof(shown), "%s", tok);
    free(tok);
    cr_assert_eq(got, want, "want %d (%s), got %d (%s) for %s...", want, token_strerror(want), got,
                 token_strerror(got), shown);
}

/* The run's RSA key pair is made once, in the runner before any test process starts, and handed
 * down through the environment: a 2048-bit key per test would cost seconds. */
#define TEST_ENV_PRIV "TEST_TOKEN_PRIVATE_PEM"
#define TEST_ENV_PUB "TEST_TOKEN_PUBLIC_PEM"

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    test_keys_t k;
    if (test_keys_from(EVP_RSA_gen(2048), &k) == 0) {
        setenv(TEST_ENV_PRIV, k.priv, 1);
        setenv(TEST_ENV_PUB, k.pub, 1);
    }
    free(k.priv);
    free(k.pub);
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    const char *priv = getenv(TEST_ENV_PRIV), *pub = getenv(TEST_ENV_PUB);
    if (priv != NULL && pub != NULL) {
        keys.priv = strdup(priv);
        keys.priv_len = strlen(priv);
        keys.pub = strdup(pub);
        keys.pub_len = strlen(pub);
    } else {
        test_rsa_keys(&keys);
    }
    verifier = token_verifier_new(keys.pub, keys.pub_len, "RS256", ISS, AUD, 0, err, sizeof(err));
    cr_assert_not_null(verifier, "token_verifier_new: %s", err);
}

static void teardown(void)
{
    token_verifier_free(verifier);
    verifier = NULL;
    test_keys_free(&keys);
}

TestSuite(token, .init = setup, .fini = teardown, .timeout = 20);

/* ================================================================ the good path */

Test(token, signed_token_verifies_and_its_subject_is_copied)
{
    char *tok =
        token_sign_rs256(keys.priv, keys.priv_len, "u_123-abc", ISS, AUD, NOW - 10, 900, err, sizeof(err));
    cr_assert_not_null(tok, "token_sign_rs256: %s", err);
    char sub[TOKEN_SUB_MAX + 1];
    memset(sub, 'x', sizeof(sub));
    cr_assert_eq(test_verify(tok, sub), TOKEN_OK);
    cr_assert_str_eq(sub, "u_123-abc");

    /* The claims token_sign_rs256 promises: sub, iss, aud, iat, exp = iat + ttl, jti; RS256 header. */
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_decode(&jwt, tok, (const unsigned char *)keys.pub, (int)keys.pub_len), 0);
    cr_assert_eq(jwt_get_alg(jwt), JWT_ALG_RS256);
    cr_assert_str_eq(jwt_get_grant(jwt, "sub"), "u_123-abc");
    cr_assert_str_eq(jwt_get_grant(jwt, "iss"), ISS);
    cr_assert_str_eq(jwt_get_grant(jwt, "aud"), AUD);
    cr_assert_eq(jwt_get_grant_int(jwt, "iat"), NOW - 10);
    cr_assert_eq(jwt_get_grant_int(jwt, "exp"), NOW - 10 + 900);
    const char *jti = jwt_get_grant(jwt, "jti");
    cr_assert(jti != NULL && strlen(jti) == 36, "jti should be a UUID");
    jwt_free(jwt);
    free(tok);
}

Test(token, two_tokens_for_the_same_claims_get_different_jti)
{
    char *a = token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW, 60, err, sizeof(err));
    char *b = token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW, 60, err, sizeof(err));
    cr_assert(a != NULL && b != NULL);
    cr_assert_str_neq(a, b);
    free(a);
    free(b);
}

Test(token, token_need_not_be_nul_terminated)
{
    char *tok = token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW, 60, err, sizeof(err));
    size_t n = strlen(tok);
    char *buf = malloc(n + 8);
    memcpy(buf, tok, n);
    memcpy(buf + n, "garbage", 7); /* what follows in an HTTP header buffer */
    char sub[TOKEN_SUB_MAX + 1];
    cr_assert_eq(token_verify(verifier, buf, n, NOW, sub), TOKEN_OK);
    cr_assert_str_eq(sub, "u1");
    free(buf);
    free(tok);
}

Test(token, sign_with_a_bad_private_key_fails_with_a_message)
{
    err[0] = '\0';
    cr_assert_null(token_sign_rs256("not a key", 9, "u1", ISS, AUD, NOW, 60, err, sizeof(err)));
    cr_assert_neq(err[0], '\0');
}

/* ================================================================ time claims */

Test(token, expired_tokens_are_refused)
{
    test_expect(token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW - 3600, 60, err, sizeof(err)),
                TOKEN_EEXPIRED);
    /* exp == now is already expired (RFC 7519: now must be before exp). */
    test_expect(token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW - 60, 60, err, sizeof(err)),
                TOKEN_EEXPIRED);
    test_expect(token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW - 60, 61, err, sizeof(err)),
                TOKEN_OK);
}

Test(token, missing_or_non_numeric_exp_counts_as_expired)
{
    char claims[256];
    snprintf(claims, sizeof(claims), "{\"sub\":\"u1\",\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%lld}", ISS, AUD,
             (long long)NOW);
    test_expect(test_rs256(claims), TOKEN_EEXPIRED);
    snprintf(claims, sizeof(claims), "{\"sub\":\"u1\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":\"%lld\"}", ISS,
             AUD, (long long)NOW + 600);
    test_expect(test_rs256(claims), TOKEN_EEXPIRED);
}

Test(token, iat_or_nbf_in_the_future_is_not_yet_valid)
{
    test_expect(token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW + 600, 900, err, sizeof(err)),
                TOKEN_ENOTYET);
    char claims[256];
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"u1\",\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld}", ISS,
             AUD, (long long)NOW - 10, (long long)NOW + 300, (long long)NOW + 900);
    test_expect(test_rs256(claims), TOKEN_ENOTYET);
    /* nbf == now is valid. */
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"u1\",\"iss\":\"%s\",\"aud\":\"%s\",\"nbf\":%lld,\"exp\":%lld}", ISS, AUD,
             (long long)NOW, (long long)NOW + 900);
    test_expect(test_rs256(claims), TOKEN_OK);
    /* A non-numeric nbf is not a way around the check. */
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"u1\",\"iss\":\"%s\",\"aud\":\"%s\",\"nbf\":\"x\",\"exp\":%lld}", ISS, AUD,
             (long long)NOW + 900);
    test_expect(test_rs256(claims), TOKEN_ENOTYET);
}

Test(token, leeway_tolerates_small_clock_skew_only)
{
    token_verifier_t *lenient =
        token_verifier_new(keys.pub, keys.pub_len, "RS256", ISS, AUD, 30, err, sizeof(err));
    cr_assert_not_null(lenient, "%s", err);
    char sub[TOKEN_SUB_MAX + 1];
    struct {
        int64_t iat;
        long ttl;
        token_err_t want;
    } cases[] = {
        {NOW - 80, 60, TOKEN_OK},        /* expired 20 s ago */
        {NOW - 100, 60, TOKEN_EEXPIRED}, /* expired 40 s ago */
        {NOW + 20, 600, TOKEN_OK},       /* issued 20 s "in the future" */
        {NOW + 40, 600, TOKEN_ENOTYET},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok = token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, cases[i].iat, cases[i].ttl,
                                     err, sizeof(err));
        token_err_t got = token_verify(lenient, tok, strlen(tok), NOW, sub);
        cr_assert_eq(got, cases[i].want, "case %zu: want %s, got %s", i, token_strerror(cases[i].want),
                     token_strerror(got));
        free(tok);
    }
    token_verifier_free(lenient);
}

/* ================================================================ issuer, audience, subject */

Test(token, wrong_issuer_is_refused)
{
    test_expect(
        token_sign_rs256(keys.priv, keys.priv_len, "u1", "https://evil.test", AUD, NOW, 60, err, sizeof(err)),
        TOKEN_EISSUER);
    char claims[256];
    snprintf(claims, sizeof(claims), "{\"sub\":\"u1\",\"aud\":\"%s\",\"exp\":%lld}", AUD,
             (long long)NOW + 60);
    test_expect(test_rs256(claims), TOKEN_EISSUER);
}

Test(token, wrong_audience_is_refused)
{
    test_expect(token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, "other-api", NOW, 60, err, sizeof(err)),
                TOKEN_EAUDIENCE);
    char claims[256];
    snprintf(claims, sizeof(claims), "{\"sub\":\"u1\",\"iss\":\"%s\",\"exp\":%lld}", ISS,
             (long long)NOW + 60);
    test_expect(test_rs256(claims), TOKEN_EAUDIENCE);
}

Test(token, audience_array_must_contain_ours)
{
    char claims[256];
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"u1\",\"iss\":\"%s\",\"aud\":[\"other\",\"%s\"],\"exp\":%lld}", ISS, AUD,
             (long long)NOW + 60);
    test_expect(test_rs256(claims), TOKEN_OK);
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"u1\",\"iss\":\"%s\",\"aud\":[\"other\",\"photo\",7],\"exp\":%lld}", ISS,
             (long long)NOW + 60);
    test_expect(test_rs256(claims), TOKEN_EAUDIENCE);
    snprintf(claims, sizeof(claims), "{\"sub\":\"u1\",\"iss\":\"%s\",\"aud\":[],\"exp\":%lld}", ISS,
             (long long)NOW + 60);
    test_expect(test_rs256(claims), TOKEN_EAUDIENCE);
}

Test(token, subject_must_be_present_and_well_formed)
{
    char claims[512];
    snprintf(claims, sizeof(claims), "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", ISS, AUD,
             (long long)NOW + 60);
    test_expect(test_rs256(claims), TOKEN_ESUBJECT);
    snprintf(claims, sizeof(claims), "{\"sub\":42,\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", ISS, AUD,
             (long long)NOW + 60);
    test_expect(test_rs256(claims), TOKEN_ESUBJECT);

    const char *bad[] = {"", "a b", "../etc", "u1\"", "é", "a.b", "u1\\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        test_expect(token_sign_rs256(keys.priv, keys.priv_len, bad[i], ISS, AUD, NOW, 60, err, sizeof(err)),
                    TOKEN_ESUBJECT);

    char longest[TOKEN_SUB_MAX + 2];
    memset(longest, 'a', TOKEN_SUB_MAX);
    longest[TOKEN_SUB_MAX] = '\0';
    char *tok = token_sign_rs256(keys.priv, keys.priv_len, longest, ISS, AUD, NOW, 60, err, sizeof(err));
    char sub[TOKEN_SUB_MAX + 1];
    cr_assert_eq(test_verify(tok, sub), TOKEN_OK);
    cr_assert_str_eq(sub, longest);
    free(tok);
    longest[TOKEN_SUB_MAX] = 'a';
    longest[TOKEN_SUB_MAX + 1] = '\0';
    test_expect(token_sign_rs256(keys.priv, keys.priv_len, longest, ISS, AUD, NOW, 60, err, sizeof(err)),
                TOKEN_ESUBJECT);
}

/* ================================================================ signatures */

Test(token, token_signed_with_another_key_is_refused)
{
    test_keys_t other;
    test_rsa_keys(&other);
    test_expect(token_sign_rs256(other.priv, other.priv_len, "u1", ISS, AUD, NOW, 60, err, sizeof(err)),
                TOKEN_ESIGNATURE);
    test_keys_free(&other);
}

Test(token, tampered_payload_or_signature_is_refused)
{
    char *tok = token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW, 60, err, sizeof(err));
    char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
    cr_assert(dot1 != NULL && dot2 != NULL && dot1 != dot2);

    /* Same header and signature, payload naming someone else. */
    char claims[256];
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"admin\",\"iss\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld}", ISS, AUD,
             (long long)NOW, (long long)NOW + 60);
    char *payload = test_b64url(claims, strlen(claims));
    size_t n = strlen(tok) + strlen(payload) + 1;
    char *forged = malloc(n);
    snprintf(forged, n, "%.*s.%s%s", (int)(dot1 - tok), tok, payload, dot2);
    test_expect(forged, TOKEN_ESIGNATURE);
    free(payload);

    /* One bit of the signature flipped (a base64url letter changed). */
    char *flipped = strdup(tok);
    char *c = flipped + (dot2 - tok) + 10;
    *c = *c == 'A' ? 'B' : 'A';
    test_expect(flipped, TOKEN_ESIGNATURE);

    /* No signature at all. */
    char *unsigned_tok = strndup(tok, (size_t)(dot2 - tok) + 1);
    test_expect(unsigned_tok, TOKEN_ESIGNATURE);
    free(tok);
}

/* ================================================================ algorithm confusion */

Test(token, alg_none_is_refused)
{
    char claims[256];
    snprintf(claims, sizeof(claims), "{\"sub\":\"u1\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", ISS, AUD,
             (long long)NOW + 60);
    test_expect(test_compact("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, NULL, 0), TOKEN_EALG);
    test_expect(test_compact("{\"alg\":\"None\"}", claims, NULL, 0), TOKEN_EALG);
    test_expect(test_compact("{\"typ\":\"JWT\"}", claims, NULL, 0), TOKEN_EALG);
    test_expect(test_compact("{\"alg\":256}", claims, NULL, 0), TOKEN_EALG);
}

/* The classic confusion: HS256 keyed with the server's public key PEM, which attackers know. */
Test(token, hs256_keyed_with_the_public_key_pem_is_refused)
{
    char claims[256];
    snprintf(claims, sizeof(claims), "{\"sub\":\"admin\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", ISS,
             AUD, (long long)NOW + 60);
    const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *h = test_b64url(header, strlen(header));
    char *p = test_b64url(claims, strlen(claims));
    size_t n = strlen(h) + strlen(p) + 2;
    char *signing_input = malloc(n);
    snprintf(signing_input, n, "%s.%s", h, p);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)keys.pub, keys.pub_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing_input, strlen(signing_input));
    crypto_auth_hmacsha256_final(&st, mac);
    char *s = test_b64url(mac, sizeof(mac));
    n = strlen(signing_input) + strlen(s) + 2;
    char *tok = malloc(n);
    snprintf(tok, n, "%s.%s", signing_input, s);

    /* libjwt alone accepts it: the forged token is real, so only our alg check stops it. */
    jwt_t *jwt = NULL;
    char *copy = strdup(tok);
    cr_assert_eq(jwt_decode(&jwt, copy, (const unsigned char *)keys.pub, (int)keys.pub_len), 0,
                 "test premise: libjwt should accept this HS256 token");
    jwt_free(jwt);
    free(copy);
    /* libjwt's own HS256 token over the same claims and key is refused too. */
    char *by_libjwt = test_sign_claims(claims, JWT_ALG_HS256, keys.pub, keys.pub_len);
    test_expect(by_libjwt, TOKEN_EALG);

    test_expect(tok, TOKEN_EALG);
    free(h);
    free(p);
    free(s);
    free(signing_input);
}

Test(token, rs256_only_verifier_refuses_other_asymmetric_algorithms)
{
    char claims[256];
    snprintf(claims, sizeof(claims), "{\"sub\":\"u1\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", ISS, AUD,
             (long long)NOW + 60);
    test_expect(test_sign_claims(claims, JWT_ALG_RS512, keys.priv, keys.priv_len), TOKEN_EALG);
}

Test(token, verifier_with_several_algorithms_and_an_ec_key)
{
    test_keys_t eck;
    cr_assert_eq(test_keys_from(EVP_EC_gen("P-256"), &eck), 0, "cannot make an EC key pair");
    token_verifier_t *v =
        token_verifier_new(eck.pub, eck.pub_len, "RS256, ES256", ISS, AUD, 0, err, sizeof(err));
    cr_assert_not_null(v, "%s", err);
    char claims[256];
    snprintf(claims, sizeof(claims), "{\"sub\":\"u1\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", ISS, AUD,
             (long long)NOW + 60);
    char sub[TOKEN_SUB_MAX + 1];
    char *tok = test_sign_claims(claims, JWT_ALG_ES256, eck.priv, eck.priv_len);
    cr_assert_eq(token_verify(v, tok, strlen(tok), NOW, sub), TOKEN_OK);
    cr_assert_str_eq(sub, "u1");
    free(tok);
    /* An RS256 token (allowed algorithm) against the EC key does not verify. */
    tok = test_rs256(claims);
    cr_assert_eq(token_verify(v, tok, strlen(tok), NOW, sub), TOKEN_ESIGNATURE);
    free(tok);
    token_verifier_free(v);
    test_keys_free(&eck);
}

Test(token, verifier_new_refuses_symmetric_and_none_in_the_allow_list)
{
    const char *lists[] = {"HS256", "none", "RS256,HS256", "HS384 RS256", "RS256,none", "", ", ,", "RS999"};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        err[0] = '\0';
        token_verifier_t *v =
            token_verifier_new(keys.pub, keys.pub_len, lists[i], ISS, AUD, 0, err, sizeof(err));
        cr_assert_null(v, "allow-list \"%s\" was accepted", lists[i]);
        cr_assert_neq(err[0], '\0', "no message for \"%s\"", lists[i]);
    }
}

Test(token, verifier_new_refuses_a_missing_or_non_public_key)
{
    cr_assert_null(token_verifier_new(NULL, 0, "RS256", ISS, AUD, 0, err, sizeof(err)));
    cr_assert_null(token_verifier_new(keys.pub, 0, "RS256", ISS, AUD, 0, err, sizeof(err)));
    /* The private key is not a public key (and must never be mistaken for one). */
    cr_assert_null(token_verifier_new(keys.priv, keys.priv_len, "RS256", ISS, AUD, 0, err, sizeof(err)));
    cr_assert_null(token_verifier_new("secret", 6, "RS256", ISS, AUD, 0, err, sizeof(err)));
}

/* ================================================================ malformed input */

Test(token, oversize_token_is_malformed)
{
    char *tok = token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW, 60, err, sizeof(err));
    size_t n = TOKEN_MAX_LEN + 1;
    char *big = malloc(n + 1);
    memset(big, 'A', n);
    big[n] = '\0';
    memcpy(big, tok, strlen(tok)); /* a real token followed by padding in its signature part */
    test_expect(big, TOKEN_EMALFORMED);
    free(tok);
}

Test(token, garbage_is_malformed)
{
    const char *bad[] = {"x", "abc", ".", "..", "a.b.c", "!!!.e30.", "e30", ".e30.", "eyJhbGciOiJSUzI1NiJ9"};
    char sub[TOKEN_SUB_MAX + 1];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        token_err_t got = token_verify(verifier, bad[i], strlen(bad[i]), NOW, sub);
        cr_assert_eq(got, TOKEN_EMALFORMED, "\"%s\": got %s", bad[i], token_strerror(got));
    }
    cr_assert_eq(token_verify(verifier, "", 0, NOW, sub), TOKEN_EMALFORMED);
    /* Header that is not JSON, or JSON but not an object. */
    test_expect(test_compact("not json", "{}", "sig", 3), TOKEN_EMALFORMED);
    test_expect(test_compact("[\"RS256\"]", "{}", "sig", 3), TOKEN_EMALFORMED);
    /* A NUL inside the given length. */
    char *tok = token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW, 60, err, sizeof(err));
    size_t n = strlen(tok);
    tok[n / 2] = '\0';
    cr_assert_eq(token_verify(verifier, tok, n, NOW, sub), TOKEN_EMALFORMED);
    free(tok);
}

/* token.h: TOKEN_EMALFORMED is "not three base64url parts". */
Test(token, a_real_token_cut_to_two_parts_is_malformed)
{
    char *tok = token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW, 60, err, sizeof(err));
    char *two = strndup(tok, (size_t)(strrchr(tok, '.') - tok));
    free(tok);
    test_expect(two, TOKEN_EMALFORMED);
}

Test(token, a_real_token_with_a_fourth_part_is_malformed)
{
    char *tok = token_sign_rs256(keys.priv, keys.priv_len, "u1", ISS, AUD, NOW, 60, err, sizeof(err));
    size_t n = strlen(tok) + 8;
    char *four = malloc(n);
    snprintf(four, n, "%s.e30", tok);
    free(tok);
    test_expect(four, TOKEN_EMALFORMED);
}

Test(token, strerror_names_every_code)
{
    for (int e = TOKEN_ESUBJECT; e <= TOKEN_OK; e++) {
        const char *s = token_strerror((token_err_t)e);
        cr_assert(s != NULL && s[0] != '\0');
    }
    cr_assert_str_eq(token_strerror(TOKEN_OK), "ok");
    cr_assert_str_neq(token_strerror(TOKEN_EEXPIRED), token_strerror(TOKEN_ENOTYET));
    cr_assert_not_null(token_strerror((token_err_t)-100));
}
