/* tokens.c -- password hashes (argon2id), access tokens (RS256 JWT) and refresh-token families. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "core/core.h"
#include "log/log.h"
#include "token/token.h"

#define TOK__REFRESH_BYTES 32
#define TOK__REFRESH_MAX 512

/* ================================================================ passwords */

int password_hash(auth_t *a, const char *password, char out[crypto_pwhash_STRBYTES])
{
    return crypto_pwhash_str_alg(out, password, strlen(password), (unsigned long long)a->conf->pw_opslimit,
                                 (size_t)a->conf->pw_memlimit_kib * 1024, crypto_pwhash_ALG_ARGON2ID13);
}

int password_verify(const char *hash, const char *password)
{
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

int password_needs_rehash(auth_t *a, const char *hash)
{
    return crypto_pwhash_str_needs_rehash(hash, (unsigned long long)a->conf->pw_opslimit,
                                          (size_t)a->conf->pw_memlimit_kib * 1024) != 0;
}

/* ================================================================ refresh tokens */

/* The stored form of a refresh token: hex SHA-256 (the token itself is never stored). */
static void tok__hash(const char *token, char out[crypto_hash_sha256_BYTES * 2 + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, crypto_hash_sha256_BYTES * 2 + 1, h, sizeof(h));
}

static int tok__family_revoked(auth_t *a, const char *family)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(family));
    int rc = db_exists(a->db, "revoked_families", f);
    bson_destroy(f);
    return rc;
}

int tokens_revoke_family(auth_t *a, const char *family)
{
    int64_t now = core_wall_ms();
    /* The mark first: a refresh racing with this checks it after storing its new token. */
    bson_t *mark = BCON_NEW("_id", BCON_UTF8(family), "revoked_at", BCON_DATE_TIME(now), "expires_at",
                            BCON_DATE_TIME(now + a->conf->refresh_ttl_ms));
    int rc = db_insert(a->db, "revoked_families", mark);
    bson_destroy(mark);
    if (rc < 0)
        return -1;
    bson_t *f = BCON_NEW("family", BCON_UTF8(family));
    long n = db_delete_many(a->db, "refresh_tokens", f);
    bson_destroy(f);
    return n < 0 ? -1 : 0;
}

static int tok__collect_family(const bson_t *doc, void *ud)
{
    cJSON *families = ud;
    const char *f = db_doc_str(doc, "family");
    if (f != NULL)
        cJSON_AddItemToArray(families, cJSON_CreateString(f));
    return 0;
}

int tokens_revoke_user(auth_t *a, const char *user_id)
{
    cJSON *families = cJSON_CreateArray();
    bson_t *f = BCON_NEW("user_id", BCON_UTF8(user_id));
    bson_t *opts = BCON_NEW("projection", "{", "family", BCON_INT32(1), "}");
    int rc = db_each(a->db, "refresh_tokens", f, opts, tok__collect_family, families) < 0 ? -1 : 0;
    const cJSON *fam;
    cJSON_ArrayForEach(fam, families)
    {
        if (rc == 0)
            rc = tokens_revoke_family(a, fam->valuestring);
    }
    bson_destroy(f);
    bson_destroy(opts);
    cJSON_Delete(families);
    return rc;
}

int tokens_issue(auth_t *a, const bson_t *user, const char *family, int status, mq_reply_t *r)
{
    const char *uid = db_doc_str(user, "_id");
    char fam[37];
    if (family == NULL) {
        core_uuid(fam);
        family = fam;
    }
    unsigned char raw[TOK__REFRESH_BYTES];
    randombytes_buf(raw, sizeof(raw));
    char refresh[sodium_base64_ENCODED_LEN(TOK__REFRESH_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(refresh, sizeof(refresh), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char hash[crypto_hash_sha256_BYTES * 2 + 1];
    tok__hash(refresh, hash);

    int64_t now = core_wall_ms();
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(hash), "family", BCON_UTF8(family), "user_id", BCON_UTF8(uid), "created_at",
                 BCON_DATE_TIME(now), "expires_at", BCON_DATE_TIME(now + a->conf->refresh_ttl_ms));
    int rc = db_insert(a->db, "refresh_tokens", doc);
    bson_destroy(doc);
    if (rc != 0) {
        rpc_db_error(r);
        return -1;
    }
    /* A family revoked while this token was being stored (reuse detected by a racing request,
     * logout) must not live on through it. */
    int revoked = tok__family_revoked(a, family);
    if (revoked != 0) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(hash));
        db_delete_one(a->db, "refresh_tokens", f);
        bson_destroy(f);
        if (revoked < 0)
            rpc_db_error(r);
        else
            rpc_problem(r, 401, "invalid-refresh-token", "this session was revoked; log in again", NULL);
        return -1;
    }

    char err[256];
    const char *key = a->conf->private_key;
    char *access = token_sign_rs256(key, strlen(key), uid, a->conf->jwt_issuer, a->conf->jwt_audience,
                                    now / 1000, a->conf->access_ttl_ms / 1000, err, sizeof(err));
    if (access == NULL) {
        log_error(NULL, "cannot sign an access token: %s", err);
        rpc_problem(r, 503, "signing-unavailable", "cannot issue tokens now", NULL);
        return -1;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "user", user_account_json(a, user, 1));
    cJSON_AddStringToObject(out, "access_token", access);
    cJSON_AddStringToObject(out, "refresh_token", refresh);
    cJSON_AddStringToObject(out, "token_type", "Bearer");
    cJSON_AddNumberToObject(out, "expires_in", (double)(a->conf->access_ttl_ms / 1000));
    free(access);
    sodium_memzero(refresh, sizeof(refresh));
    rpc_json(r, status, out);
    return 0;
}

/* Reads {refresh_token} into hash; answers 400/422 and returns -1 when it is not there. */
static int tok__body_hash(const mq_message_t *req, mq_reply_t *r, char hash[crypto_hash_sha256_BYTES * 2 + 1])
{
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        return -1;
    static const rpc_field_t fields[] = {{"refresh_token", 1, 0, 1, TOK__REFRESH_MAX}};
    cJSON *errors = cJSON_CreateObject();
    int rc = -1;
    rpc_fields_check(body, fields, CORE_ARRAY_SIZE(fields), errors);
    if (!rpc_invalid_fields(r, &errors)) {
        tok__hash(rpc_field_str(body, "refresh_token"), hash);
        rc = 0;
    }
    cJSON_Delete(errors);
    cJSON_Delete(body);
    return rc;
}

void tokens_refresh(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    char hash[crypto_hash_sha256_BYTES * 2 + 1];
    if (tok__body_hash(req, r, hash) != 0)
        return;
    static const char invalid[] = "the refresh token is not valid; log in again";
    bson_t *f = BCON_NEW("_id", BCON_UTF8(hash));
    bson_t tok = BSON_INITIALIZER, user = BSON_INITIALIZER;
    int found = db_find_one(a->db, "refresh_tokens", f, NULL, &tok);
    const char *family = found == 1 ? db_doc_str(&tok, "family") : NULL;
    const char *uid = found == 1 ? db_doc_str(&tok, "user_id") : NULL;
    if (found < 0)
        goto db_error;
    if (found == 0 || family == NULL || uid == NULL || db_doc_ms(&tok, "expires_at") <= core_wall_ms()) {
        rpc_problem(r, 401, "invalid-refresh-token", invalid, NULL);
        goto out;
    }
    /* A revoked family has no tokens left to find (tokens_revoke_family deletes them), and one
     * revoked while this runs is caught by tokens_issue's check after it stores the new token. */
    /* Spending is an insert under a unique _id: of two requests with the same token exactly one
     * succeeds, and the other is a reuse. */
    bson_t *spent =
        BCON_NEW("_id", BCON_UTF8(hash), "family", BCON_UTF8(family), "spent_at",
                 BCON_DATE_TIME(core_wall_ms()), "expires_at", BCON_DATE_TIME(db_doc_ms(&tok, "expires_at")));
    int rc = db_insert(a->db, "refresh_spent", spent);
    bson_destroy(spent);
    if (rc < 0)
        goto db_error;
    if (rc == 1) {
        log_warn(req->request_id, "refresh token reused: family %s of user %s revoked", family, uid);
        if (tokens_revoke_family(a, family) != 0)
            goto db_error;
        rpc_problem(r, 401, "refresh-token-reused",
                    "this refresh token was already used; every session descended from its login is revoked",
                    NULL);
        goto out;
    }
    int u = user_by_id(a, uid, &user);
    if (u < 0)
        goto db_error;
    if (u == 0) {
        rpc_problem(r, 401, "invalid-refresh-token", invalid, NULL);
        goto out;
    }
    tokens_issue(a, &user, family, 200, r);
    goto out;
db_error:
    rpc_db_error(r);
out:
    bson_destroy(f);
    bson_destroy(&tok);
    bson_destroy(&user);
}

void tokens_logout(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    char hash[crypto_hash_sha256_BYTES * 2 + 1];
    if (tok__body_hash(req, r, hash) != 0)
        return;
    bson_t *f = BCON_NEW("_id", BCON_UTF8(hash));
    bson_t tok = BSON_INITIALIZER;
    int found = db_find_one(a->db, "refresh_tokens", f, NULL, &tok);
    const char *family = found == 1 ? db_doc_str(&tok, "family") : NULL;
    if (found < 0 || (family != NULL && tokens_revoke_family(a, family) != 0))
        rpc_db_error(r);
    else
        rpc_no_content(r); /* an unknown or spent token is logged out already */
    bson_destroy(f);
    bson_destroy(&tok);
}
