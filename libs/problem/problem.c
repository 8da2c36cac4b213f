/* problem.c -- RFC 9457 problem+json bodies: type, title, status, detail and field errors. */
#include "problem/problem.h"

#include "core/core.h"
#include "json/json.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    int status;
    const char *title;
} problem_titles[] = {
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *problem_title(int status)
{
    for (size_t i = 0; i < CORE_ARRAY_SIZE(problem_titles); i++)
        if (problem_titles[i].status == status)
            return problem_titles[i].title;
    return "Error";
}

cJSON *problem_new(int status, const char *type, const char *detail, cJSON *errors)
{
    cJSON *p = cJSON_CreateObject();
    CORE_ASSERT(p != NULL);

    if (type == NULL) {
        cJSON_AddStringToObject(p, "type", "about:blank");
    } else if (strchr(type, ':') != NULL) {
        /* Already an absolute URI ("about:blank", "https://..."): used as given. */
        cJSON_AddStringToObject(p, "type", type);
    } else {
        char *uri = xasprintf("%s%s", PROBLEM_TYPE_BASE, type);
        cJSON_AddStringToObject(p, "type", uri);
        free(uri);
    }
    cJSON_AddStringToObject(p, "title", problem_title(status));
    cJSON_AddNumberToObject(p, "status", status);
    if (detail != NULL)
        cJSON_AddStringToObject(p, "detail", detail);
    /* errors is ours from here on: attached, or deleted if it could not be. */
    if (errors != NULL && !cJSON_AddItemToObject(p, "errors", errors))
        cJSON_Delete(errors);
    return p;
}

char *problem_json(int status, const char *type, const char *detail, cJSON *errors)
{
    cJSON *p = problem_new(status, type, detail, errors);
    char *s = json_print(p);
    cJSON_Delete(p);
    return s;
}
