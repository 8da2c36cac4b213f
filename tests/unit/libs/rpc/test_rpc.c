/* test_rpc.c -- libs/rpc: replies (JSON, problem+json and their headers) and request parts (body, path
 * and query parameters). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"

static void reply_clear(mq_reply_t *r)
{
    free(r->body);
    free(r->content_type);
    free(r->headers_json);
    memset(r, 0, sizeof(*r));
}

/* The member name of the reply's JSON body as a string (or NULL); copied into buf. */
static const char *member(const mq_reply_t *r, const char *name, char *buf, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    cr_assert_not_null(j, "not JSON: %s", r->body);
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, name));
    if (v != NULL)
        snprintf(buf, len, "%s", v);
    cJSON_Delete(j);
    return v != NULL ? buf : NULL;
}

/* ================================================================ replies */

Test(rpc, json_takes_the_body)
{
    mq_reply_t r = {0};
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "a", "b");
    rpc_json(&r, 201, b);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(r.body, "{\"a\":\"b\"}");
    cr_assert_eq(r.body_len, strlen(r.body));
    cr_assert_null(r.content_type, "NULL means application/json");
    reply_clear(&r);
}

Test(rpc, problems_replace_what_the_reply_held)
{
    mq_reply_t r = {0};
    rpc_rate_limited(&r, 0, "slow down");
    cr_assert_eq(r.status, 429);
    cr_assert_str_eq(r.headers_json, "{\"retry-after\":\"1\"}", "at least one second");
    rpc_not_found(&r, "no such thing");
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(r.content_type, "application/problem+json");
    cr_assert_null(r.headers_json, "the 429's Retry-After does not stick to the 404");
    char buf[256];
    cr_assert_str_eq(member(&r, "type", buf, sizeof(buf)), "https://problems.photo.invalid/not-found");
    cr_assert_str_eq(member(&r, "detail", buf, sizeof(buf)), "no such thing");
    reply_clear(&r);

    rpc_db_error(&r);
    cr_assert_eq(r.status, 503);
    cr_assert_str_eq(member(&r, "detail", buf, sizeof(buf)), "the database is unavailable; try again");
    cr_assert_str_eq(r.headers_json, "{\"retry-after\":\"1\"}");
    reply_clear(&r);

    rpc_unauthorized(&r, "invalid-token", "gone");
    cr_assert_eq(r.status, 401);
    cr_assert_str_eq(r.headers_json, "{\"www-authenticate\":\"Bearer error=\\\"invalid_token\\\"\"}");
    reply_clear(&r);

    rpc_no_content(&r);
    cr_assert_eq(r.status, 204);
    cr_assert_null(r.body);
}

Test(rpc, invalid_fields_answer_422_only_when_there_are_some)
{
    mq_reply_t r = {0};
    cJSON *errors = cJSON_CreateObject();
    cr_assert_eq(rpc_invalid_fields(&r, &errors), 0);
    cr_assert_eq(r.status, 0);
    cJSON_AddStringToObject(errors, "name", "too long");
    cr_assert_eq(rpc_invalid_fields(&r, &errors), 1);
    cr_assert_null(errors, "taken");
    cr_assert_eq(r.status, 422);
    cr_assert(strstr(r.body, "\"errors\":{\"name\":\"too long\"}") != NULL, "%s", r.body);
    reply_clear(&r);

    rpc_invalid(&r, "bio", "must be a string");
    cr_assert_eq(r.status, 422);
    char buf[128];
    cr_assert_str_eq(member(&r, "detail", buf, sizeof(buf)), "bio: must be a string");
    reply_clear(&r);
}

/* ================================================================ requests */

Test(rpc, body_is_a_json_object_or_an_answer)
{
    mq_reply_t r = {0};
    const char ok[] = "{\"a\":1}";
    mq_message_t m = {
        .content_type = "application/json; charset=utf-8", .body = ok, .body_len = sizeof(ok) - 1};
    cJSON *b = rpc_body(&m, &r);
    cr_assert_not_null(b);
    cr_assert_eq(r.status, 0);
    cJSON_Delete(b);

    m.content_type = "text/plain";
    cr_assert_null(rpc_body(&m, &r));
    cr_assert_eq(r.status, 415);
    reply_clear(&r);

    m.content_type = NULL;
    m.body = "[1]";
    m.body_len = 3;
    cr_assert_null(rpc_body(&m, &r));
    cr_assert_eq(r.status, 400);
    reply_clear(&r);

    m.body_len = 0;
    cr_assert_null(rpc_body(&m, &r));
    cr_assert_eq(r.status, 400);
    reply_clear(&r);

    size_t n = 70 * 1024;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    m.body = big;
    m.body_len = n;
    cr_assert_null(rpc_body(&m, &r));
    cr_assert_eq(r.status, 413);
    reply_clear(&r);
    free(big);
}

Test(rpc, path_parameters)
{
    mq_message_t m = {.params = "{\"username\":\"alice\",\"n\":3}"};
    char out[8];
    cr_assert_eq(rpc_param(&m, "username", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "alice");
    cr_assert_eq(rpc_param(&m, "n", out, sizeof(out)), -1, "not a string");
    cr_assert_eq(rpc_param(&m, "missing", out, sizeof(out)), -1);
    cr_assert_eq(rpc_param(&m, "username", out, 5), -1, "too long for out");
    m.params = NULL;
    cr_assert_eq(rpc_param(&m, "username", out, sizeof(out)), -1);
}

Test(rpc, query_parameters_are_percent_decoded)
{
    mq_message_t m = {.query = "limit=20&cursor=a%2Fb+c&bad=%4&nul=%00&limit2=x"};
    char out[16];
    cr_assert_eq(rpc_query(&m, "limit", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "20");
    cr_assert_eq(rpc_query(&m, "cursor", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "a/b c");
    cr_assert_eq(rpc_query(&m, "bad", out, sizeof(out)), -1);
    cr_assert_eq(rpc_query(&m, "nul", out, sizeof(out)), -1);
    cr_assert_eq(rpc_query(&m, "cursor", out, 4), -1, "too long for out");
    cr_assert_eq(rpc_query(&m, "absent", out, sizeof(out)), 0);
    m.query = NULL;
    cr_assert_eq(rpc_query(&m, "limit", out, sizeof(out)), 0);
}

/* ================================================================ JSON */

Test(rpc, times_are_rfc3339_utc_with_milliseconds)
{
    cJSON *o = cJSON_CreateObject();
    json_add_time(o, "at", 1700000000123);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "at")), "2023-11-14T22:13:20.123Z");
    cJSON_Delete(o);
}
