/* test_problem.c -- problem+json bodies: titles, type URIs, optional detail and errors. */
#include "problem/problem.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(problem, titles)
{
    static const struct {
        int status;
        const char *title;
    } cases[] = {
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_str_eq(problem_title(cases[i].status), cases[i].title, "%d", cases[i].status);
    cr_assert_str_eq(problem_title(299), "Error");
    cr_assert_str_eq(problem_title(0), "Error");
    cr_assert_str_eq(problem_title(-1), "Error");
}

Test(problem, minimal_body_is_exact)
{
    char *s = problem_json(404, NULL, NULL, NULL);
    cr_assert_str_eq(s, "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404}");
    free(s);
}

Test(problem, slug_detail_and_errors)
{
    cJSON *errors = cJSON_CreateObject();
    cJSON_AddStringToObject(errors, "caption", "too long");
    cJSON_AddStringToObject(errors, "album_id", "required");
    char *s = problem_json(422, "validation", "2 fields are invalid", errors);
    cr_assert_str_eq(
        s, "{\"type\":\"https://problems.photo.invalid/validation\",\"title\":\"Unprocessable Content\","
           "\"status\":422,\"detail\":\"2 fields are invalid\","
           "\"errors\":{\"caption\":\"too long\",\"album_id\":\"required\"}}");
    free(s);
}

Test(problem, new_returns_object)
{
    cJSON *p = problem_new(429, "rate-limited", "slow down", NULL);
    cr_assert_not_null(p);
    cr_assert_str_eq(cJSON_GetObjectItem(p, "type")->valuestring, PROBLEM_TYPE_BASE "rate-limited");
    cr_assert_str_eq(cJSON_GetObjectItem(p, "title")->valuestring, "Too Many Requests");
    cr_assert_eq(cJSON_GetObjectItem(p, "status")->valueint, 429);
    cr_assert_str_eq(cJSON_GetObjectItem(p, "detail")->valuestring, "slow down");
    cr_assert_null(cJSON_GetObjectItem(p, "errors"));
    cJSON_Delete(p);
}

Test(problem, absolute_type_uri_is_kept)
{
    cJSON *p = problem_new(400, "https://example.com/probs/out-of-credit", NULL, NULL);
    cr_assert_str_eq(cJSON_GetObjectItem(p, "type")->valuestring, "https://example.com/probs/out-of-credit");
    cr_assert_null(cJSON_GetObjectItem(p, "detail"));
    cJSON_Delete(p);
}

Test(problem, unknown_status_and_escaping)
{
    char *s = problem_json(599, "x", "quote \" and\nnewline", NULL);
    cJSON *p = cJSON_Parse(s);
    cr_assert_not_null(p, "%s", s);
    cr_assert_str_eq(cJSON_GetObjectItem(p, "title")->valuestring, "Error");
    cr_assert_eq(cJSON_GetObjectItem(p, "status")->valueint, 599);
    cr_assert_str_eq(cJSON_GetObjectItem(p, "detail")->valuestring, "quote \" and\nnewline");
    cJSON_Delete(p);
    free(s);
}

Test(problem, errors_array_is_attached_and_owned)
{
    /* Ownership of errors passes to problem_new; LeakSanitizer checks nothing is lost. */
    cJSON *errors = cJSON_CreateArray();
    cJSON_AddItemToArray(errors, cJSON_CreateString("bad"));
    cJSON *p = problem_new(400, NULL, NULL, errors);
    cr_assert_eq(cJSON_GetObjectItem(p, "errors"), errors);
    cJSON_Delete(p);
}
