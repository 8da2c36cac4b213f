/* accounts.c -- register, login, and the caller's own account (GET, PATCH, DELETE /v1/me). */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "core/core.h"
#include "log/log.h"

/* ================================================================ users */

cJSON *user_account_json(auth_t *a, const bson_t *user, int with_email)
{
    const char *uid = db_doc_str(user, "_id");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", uid);
    cJSON_AddStringToObject(o, "username", db_doc_str(user, "username"));
    if (with_email)
        cJSON_AddStringToObject(o, "email", db_doc_str(user, "email"));
    const char *name = db_doc_str(user, "name"), *bio = db_doc_str(user, "bio"),
               *avatar = db_doc_str(user, "avatar_media_id");
    cJSON_AddStringToObject(o, "name", name != NULL ? name : "");
    cJSON_AddStringToObject(o, "bio", bio != NULL ? bio : "");
    if (avatar != NULL)
        cJSON_AddStringToObject(o, "avatar_media_id", avatar);
    else
        cJSON_AddNullToObject(o, "avatar_media_id");
    json_add_time(o, "created_at", db_doc_ms(user, "created_at"));
    long c[3] = {0, 0, 0};
    if (counter_get(a, uid, c) != 0)
        log_warn(NULL, "counters of %s unavailable", uid);
    cJSON_AddNumberToObject(o, "posts_count", (double)c[CTR_POSTS]);
    cJSON_AddNumberToObject(o, "followers_count", (double)c[CTR_FOLLOWERS]);
    cJSON_AddNumberToObject(o, "following_count", (double)c[CTR_FOLLOWING]);
    return o;
}

int user_by_id(auth_t *a, const char *id, bson_t *out)
{
    bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
    int rc = db_find_one(a->db, "users", f, NULL, out);
    bson_destroy(f);
    return rc;
}

int user_caller(auth_t *a, const mq_message_t *req, mq_reply_t *r, bson_t *out)
{
    int rc = user_by_id(a, req->user_id, out);
    if (rc < 0)
        rpc_db_error(r);
    else if (rc == 0)
        rpc_unauthorized(r, "account-gone", "the account of this access token no longer exists");
    return rc;
}

cJSON *user_updated_event(const bson_t *user)
{
    cJSON *e = cJSON_CreateObject();
    const char *name = db_doc_str(user, "name"), *bio = db_doc_str(user, "bio"),
               *avatar = db_doc_str(user, "avatar_media_id");
    cJSON_AddStringToObject(e, "user_id", db_doc_str(user, "_id"));
    cJSON_AddStringToObject(e, "username", db_doc_str(user, "username"));
    cJSON_AddStringToObject(e, "email", db_doc_str(user, "email"));
    cJSON_AddStringToObject(e, "name", name != NULL ? name : "");
    cJSON_AddStringToObject(e, "bio", bio != NULL ? bio : "");
    if (avatar != NULL)
        cJSON_AddStringToObject(e, "avatar_media_id", avatar);
    else
        cJSON_AddNullToObject(e, "avatar_media_id");
    json_add_time(e, "updated_at", db_doc_ms(user, "updated_at"));
    return e;
}

/* Collects a string field of each document into a JSON array. */
static int acc__collect(const bson_t *doc, void *ud)
{
    cJSON *arr = ud;
    const char *v = db_doc_str(doc, cJSON_GetStringValue(cJSON_GetArrayItem(arr, 0)));
    if (v != NULL)
        cJSON_AddItemToArray(arr, cJSON_CreateString(v));
    return 0;
}

/* Calls graph_unfollow_edge for every follow edge whose `side` is user_id. */
static int acc__drop_follows(auth_t *a, const char *user_id, const char *side)
{
    const char *other = strcmp(side, "from") == 0 ? "to" : "from";
    cJSON *ids = cJSON_CreateArray();
    cJSON_AddItemToArray(ids, cJSON_CreateString(other)); /* item 0: the field to collect */
    bson_t *f = BCON_NEW(side, BCON_UTF8(user_id));
    int rc = db_each(a->db, "follows", f, NULL, acc__collect, ids) < 0 ? -1 : 0;
    bson_destroy(f);
    for (int i = 1; rc == 0 && i < cJSON_GetArraySize(ids); i++) {
        const char *o = cJSON_GetArrayItem(ids, i)->valuestring;
        rc = graph_unfollow_edge(a, side[0] == 'f' ? user_id : o, side[0] == 'f' ? o : user_id) < 0 ? -1 : 0;
    }
    cJSON_Delete(ids);
    return rc;
}

int user_cleanup(auth_t *a, const char *user_id)
{
    if (acc__drop_follows(a, user_id, "from") != 0 || acc__drop_follows(a, user_id, "to") != 0)
        return -1;
    int rc = 0;
    static const char *const by_user[][2] = {
        {"blocks", "from"}, {"blocks", "to"}, {"devices", "user_id"}, {"user_posts", "user_id"}};
    for (size_t i = 0; rc == 0 && i < CORE_ARRAY_SIZE(by_user); i++) {
        bson_t *f = BCON_NEW(by_user[i][1], BCON_UTF8(user_id));
        rc = db_delete_many(a->db, by_user[i][0], f) < 0 ? -1 : 0;
        bson_destroy(f);
    }
    if (rc == 0)
        rc = tokens_revoke_user(a, user_id);
    if (rc == 0) {
        bson_t *f = BCON_NEW("_id", BCON_UTF8(user_id));
        rc = db_delete_many(a->db, "counters", f) < 0 ? -1 : 0;
        bson_destroy(f);
    }
    return rc;
}

/* 409 naming whichever of username and email is taken (checked after a duplicate-key error). */
static void acc__conflict(auth_t *a, mq_reply_t *r, const char *username, const char *email)
{
    int taken = 0;
    if (username != NULL) {
        bson_t *f = BCON_NEW("username", BCON_UTF8(username));
        taken = db_exists(a->db, "users", f);
        bson_destroy(f);
    }
    const char *field = taken == 1 || email == NULL ? "username" : "email";
    cJSON *errors = cJSON_CreateObject();
    cJSON_AddStringToObject(errors, field, "taken");
    rpc_problem(r, 409, "taken", field[0] == 'u' ? "that username is taken" : "that e-mail address is in use",
                errors);
}

/* ================================================================ register */

void accounts_register(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        return;
    static const rpc_field_t fields[] = {
        {"username", 1, 0, 1, 1000},
        {"email", 1, 0, 1, 1000},
        {"password", 1, 0, 8, 128},
        {"name", 0, 1, 0, 64},
    };
    cJSON *errors = cJSON_CreateObject();
    cJSON *payload = NULL;
    bson_t *doc = NULL;
    char evid[37] = "";
    char username[AUTH_USERNAME_MAX + 1], email[AUTH_EMAIL_MAX + 1];
    const char *why;
    rpc_fields_check(body, fields, CORE_ARRAY_SIZE(fields), errors);
    const char *u = rpc_field_str(body, "username"), *e = rpc_field_str(body, "email");
    if (u != NULL && !cJSON_HasObjectItem(errors, "username") && auth_username_normalize(u, username) != 0)
        cJSON_AddStringToObject(errors, "username", "must be 3 to 30 characters of a-z, 0-9, _ and .");
    if (e != NULL && !cJSON_HasObjectItem(errors, "email") && auth_email_normalize(e, email, &why) != 0)
        cJSON_AddStringToObject(errors, "email", why);
    if (rpc_invalid_fields(r, &errors))
        goto out;
    if (req->client_addr != NULL) {
        char *key = xasprintf("register:%s", req->client_addr);
        long wait = limit_check(a, key, a->conf->registrations_per_address, a->conf->registration_window_ms);
        if (wait == 0)
            wait = limit_record(a, key);
        free(key);
        if (wait < 0) {
            rpc_db_error(r);
            goto out;
        }
        if (wait > 0) {
            rpc_rate_limited(r, wait, "too many registrations from this address; try later");
            goto out;
        }
    }

    char hash[crypto_pwhash_STRBYTES];
    if (password_hash(a, rpc_field_str(body, "password"), hash) != 0) {
        rpc_problem(r, 503, "overloaded", "cannot hash the password now (out of memory)", NULL);
        goto out;
    }
    char id[25];
    db_new_id(id);
    int64_t now = core_wall_ms();
    const char *name = rpc_field_str(body, "name");
    payload = cJSON_CreateObject();
    cJSON_AddStringToObject(payload, "user_id", id);
    cJSON_AddStringToObject(payload, "username", username);
    cJSON_AddStringToObject(payload, "email", email);
    cJSON_AddStringToObject(payload, "name", name != NULL ? name : "");
    json_add_time(payload, "created_at", now);
    if (outbox_begin(a->outbox, "user.registered", payload, id, NULL, req->request_id, evid) != 0) {
        rpc_db_error(r);
        goto out;
    }
    doc = BCON_NEW("_id", BCON_UTF8(id), "username", BCON_UTF8(username), "email", BCON_UTF8(email), "name",
                   BCON_UTF8(name != NULL ? name : ""), "bio", BCON_UTF8(""), "avatar_media_id", BCON_NULL,
                   "password_hash", BCON_UTF8(hash), "created_at", BCON_DATE_TIME(now), "updated_at",
                   BCON_DATE_TIME(now));
    sodium_memzero(hash, sizeof(hash));
    int rc = db_insert(a->db, "users", doc);
    if (rc != 0) {
        outbox_abort(a->outbox, evid);
        if (rc == 1)
            acc__conflict(a, r, username, email);
        else
            rpc_db_error(r);
        goto out;
    }
    outbox_commit(a->outbox, evid); /* if this fails, recovery finds the account and publishes */
    log_info(req->request_id, "registered %s (%s)", username, id);
    tokens_issue(a, doc, NULL, 201, r);
out:
    if (doc != NULL)
        bson_destroy(doc);
    cJSON_Delete(payload);
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

/* ================================================================ login */

void accounts_login(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        return;
    static const rpc_field_t fields[] = {
        {"login", 1, 0, 1, 1000},
        {"password", 1, 0, 1, 1000},
    };
    cJSON *errors = cJSON_CreateObject();
    bson_t user = BSON_INITIALIZER;
    char *acct_key = NULL, *addr_key = NULL;
    rpc_fields_check(body, fields, CORE_ARRAY_SIZE(fields), errors);
    if (rpc_invalid_fields(r, &errors))
        goto out;
    const char *login = rpc_field_str(body, "login"), *password = rpc_field_str(body, "password");
    char norm[AUTH_EMAIL_MAX + 1];
    const char *why;
    int found = 0;
    if (strchr(login, '@') != NULL) {
        if (auth_email_normalize(login, norm, &why) == 0) {
            bson_t *f = BCON_NEW("email", BCON_UTF8(norm));
            found = db_find_one(a->db, "users", f, NULL, &user);
            bson_destroy(f);
        }
    } else if (auth_username_normalize(login, norm) == 0) {
        bson_t *f = BCON_NEW("username", BCON_UTF8(norm));
        found = db_find_one(a->db, "users", f, NULL, &user);
        bson_destroy(f);
    }
    if (found < 0) {
        rpc_db_error(r);
        goto out;
    }
    /* Per account; a login naming nobody is limited the same way, so the answers do not tell
     * whether the account exists. */
    if (found == 1) {
        acct_key = xasprintf("login-account:%s", db_doc_str(&user, "_id"));
    } else {
        char lower[1001];
        size_t n = strlen(login) < sizeof(lower) - 1 ? strlen(login) : sizeof(lower) - 1;
        for (size_t i = 0; i < n; i++)
            lower[i] = (char)((login[i] >= 'A' && login[i] <= 'Z') ? login[i] + 32 : login[i]);
        lower[n] = '\0';
        acct_key = xasprintf("login-name:%s", lower);
    }
    long wait =
        limit_check(a, acct_key, a->conf->login_failures_per_account, a->conf->login_failure_window_ms);
    if (wait == 0 && req->client_addr != NULL) {
        addr_key = xasprintf("login-address:%s", req->client_addr);
        wait =
            limit_check(a, addr_key, a->conf->login_failures_per_address, a->conf->login_failure_window_ms);
    }
    if (wait < 0) {
        rpc_db_error(r);
        goto out;
    }
    if (wait > 0) {
        rpc_rate_limited(r, wait, "too many failed logins; try later");
        goto out;
    }

    /* One argon2id verification either way, so both answers take as long. */
    const char *hash = found == 1 ? db_doc_str(&user, "password_hash") : NULL;
    int ok = password_verify(hash != NULL ? hash : a->dummy_hash, password) && hash != NULL;
    const char *outcome = ok ? "ok" : "failed";
    metrics_counter_add(a->logins, &outcome, 1);
    if (!ok) {
        if (limit_record(a, acct_key) < 0 || (addr_key != NULL && limit_record(a, addr_key) < 0)) {
            rpc_db_error(r);
            goto out;
        }
        rpc_problem(r, 401, "invalid-credentials", "invalid login or password", NULL);
        goto out;
    }
    bson_t *f = BCON_NEW("key", BCON_UTF8(acct_key));
    db_delete_many(a->db, "attempts", f); /* a success forgives the account's earlier failures */
    bson_destroy(f);
    if (password_needs_rehash(a, hash)) {
        char fresh[crypto_pwhash_STRBYTES];
        if (password_hash(a, password, fresh) == 0) {
            bson_t *uf = BCON_NEW("_id", BCON_UTF8(db_doc_str(&user, "_id")));
            bson_t *up = BCON_NEW("$set", "{", "password_hash", BCON_UTF8(fresh), "}");
            db_update_one(a->db, "users", uf, up, 0);
            bson_destroy(uf);
            bson_destroy(up);
        }
    }
    tokens_issue(a, &user, NULL, 200, r);
out:
    free(acct_key);
    free(addr_key);
    bson_destroy(&user);
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

/* ================================================================ /v1/me */

void accounts_me_get(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    bson_t user = BSON_INITIALIZER;
    if (user_caller(a, req, r, &user) == 1)
        rpc_json(r, 200, user_account_json(a, &user, 1));
    bson_destroy(&user);
}

void accounts_me_update(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        return;
    static const rpc_field_t fields[] = {
        {"name", 0, 1, 0, 64},
        {"bio", 0, 1, 0, 300},
        {"avatar_media_id", 0, 1, 1, 64},
        {"email", 0, 0, 1, 1000},
    };
    cJSON *errors = cJSON_CreateObject(), *payload = NULL;
    bson_t user = BSON_INITIALIZER, after = BSON_INITIALIZER;
    bson_t *set = NULL, *filter = NULL, *update = NULL;
    char email[AUTH_EMAIL_MAX + 1], evid[37];
    const char *why;
    rpc_fields_check(body, fields, CORE_ARRAY_SIZE(fields), errors);
    const char *e = rpc_field_str(body, "email"), *avatar = rpc_field_str(body, "avatar_media_id");
    if (e != NULL && !cJSON_HasObjectItem(errors, "email") && auth_email_normalize(e, email, &why) != 0)
        cJSON_AddStringToObject(errors, "email", why);
    if (avatar != NULL && !cJSON_HasObjectItem(errors, "avatar_media_id") && !auth_media_id_valid(avatar))
        cJSON_AddStringToObject(errors, "avatar_media_id", "must be a media id");
    if (rpc_invalid_fields(r, &errors))
        goto out;
    if (user_caller(a, req, r, &user) != 1)
        goto out;
    if (body->child == NULL) { /* nothing to change */
        rpc_json(r, 200, user_account_json(a, &user, 1));
        goto out;
    }

    /* The document as it will be: the event says what the profile became. */
    set = bson_new();
    static const char *const text[] = {"name", "bio"};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(text); i++) {
        if (cJSON_HasObjectItem(body, text[i])) {
            const char *v = rpc_field_str(body, text[i]);
            BSON_APPEND_UTF8(set, text[i], v != NULL ? v : "");
        }
    }
    if (cJSON_HasObjectItem(body, "avatar_media_id")) {
        if (avatar != NULL)
            BSON_APPEND_UTF8(set, "avatar_media_id", avatar);
        else
            BSON_APPEND_NULL(set, "avatar_media_id");
    }
    if (e != NULL)
        BSON_APPEND_UTF8(set, "email", email);
    BSON_APPEND_DATE_TIME(set, "updated_at", core_wall_ms());
    bson_iter_t it;
    if (bson_iter_init(&it, &user))
        while (bson_iter_next(&it))
            if (!bson_has_field(set, bson_iter_key(&it)))
                bson_append_iter(&after, bson_iter_key(&it), -1, &it);
    bson_concat(&after, set);
    payload = user_updated_event(&after);
    if (outbox_begin(a->outbox, "user.updated", payload, req->user_id, NULL, req->request_id, evid) != 0) {
        rpc_db_error(r);
        goto out;
    }
    filter = BCON_NEW("_id", BCON_UTF8(req->user_id));
    update = BCON_NEW("$set", BCON_DOCUMENT(set));
    int rc = db_update_one(a->db, "users", filter, update, 0);
    if (rc <= 0) {
        outbox_abort(a->outbox, evid);
        if (rc == -2)
            acc__conflict(a, r, NULL, email);
        else if (rc == 0)
            rpc_unauthorized(r, "account-gone", "the account of this access token no longer exists");
        else
            rpc_db_error(r);
        goto out;
    }
    outbox_commit(a->outbox, evid);
    rpc_json(r, 200, user_account_json(a, &after, 1));
out:
    if (set != NULL)
        bson_destroy(set);
    if (filter != NULL)
        bson_destroy(filter);
    if (update != NULL)
        bson_destroy(update);
    bson_destroy(&user);
    bson_destroy(&after);
    cJSON_Delete(payload);
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

void accounts_me_delete(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    bson_t user = BSON_INITIALIZER;
    cJSON *payload = NULL;
    char evid[37];
    if (user_caller(a, req, r, &user) != 1)
        goto out;
    payload = cJSON_CreateObject();
    cJSON_AddStringToObject(payload, "user_id", req->user_id);
    cJSON_AddStringToObject(payload, "username", db_doc_str(&user, "username"));
    json_add_time(payload, "deleted_at", core_wall_ms());
    if (outbox_begin(a->outbox, "user.deleted", payload, req->user_id, NULL, req->request_id, evid) != 0) {
        rpc_db_error(r);
        goto out;
    }
    bson_t *f = BCON_NEW("_id", BCON_UTF8(req->user_id));
    int rc = db_delete_one(a->db, "users", f);
    bson_destroy(f);
    if (rc <= 0) {
        outbox_abort(a->outbox, evid);
        if (rc == 0)
            rpc_unauthorized(r, "account-gone", "the account of this access token no longer exists");
        else
            rpc_db_error(r);
        goto out;
    }
    /* The account is gone from here on; if the rest fails, recovery finishes it. */
    if (user_cleanup(a, req->user_id) == 0)
        outbox_commit(a->outbox, evid);
    log_info(req->request_id, "deleted account %s", req->user_id);
    rpc_no_content(r);
out:
    bson_destroy(&user);
    cJSON_Delete(payload);
}

/* ================================================================ for other services */

#define ACCOUNTS__BATCH_MAX 100

void accounts_users_get(auth_t *a, const mq_message_t *req, mq_reply_t *r)
{
    cJSON *body = rpc_body(req, r);
    if (body == NULL)
        return;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(body, "ids");
    int n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : -1;
    cJSON *out = NULL;
    if (n < 1 || n > ACCOUNTS__BATCH_MAX) {
        rpc_invalid(r, "ids", "an array of 1 to 100 user ids is required");
        goto out;
    }
    out = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(out, "items"), *missing = cJSON_AddArrayToObject(out, "missing");
    const cJSON *it;
    cJSON_ArrayForEach(it, ids)
    {
        if (!cJSON_IsString(it)) {
            rpc_invalid(r, "ids", "every id must be a string");
            goto out;
        }
        bson_t user = BSON_INITIALIZER;
        /* one point lookup each: FerretDB scans the collection for {_id: {$in: ...}} */
        int rc = user_by_id(a, it->valuestring, &user);
        if (rc < 0) {
            bson_destroy(&user);
            rpc_db_error(r);
            goto out;
        }
        if (rc == 1) {
            const char *name = db_doc_str(&user, "name"), *avatar = db_doc_str(&user, "avatar_media_id");
            cJSON *u = cJSON_CreateObject();
            cJSON_AddStringToObject(u, "id", db_doc_str(&user, "_id"));
            cJSON_AddStringToObject(u, "username", db_doc_str(&user, "username"));
            cJSON_AddStringToObject(u, "name", name != NULL ? name : "");
            if (avatar != NULL)
                cJSON_AddStringToObject(u, "avatar_media_id", avatar);
            else
                cJSON_AddNullToObject(u, "avatar_media_id");
            cJSON_AddItemToArray(items, u);
        } else {
            cJSON_AddItemToArray(missing, cJSON_CreateString(it->valuestring));
        }
        bson_destroy(&user);
    }
    rpc_json(r, 200, out);
    out = NULL;
out:
    cJSON_Delete(out);
    cJSON_Delete(body);
}
