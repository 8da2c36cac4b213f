/* problem.h -- RFC 9457 problem+json bodies, the one error shape of every reply. */
#ifndef PROBLEM_H
#define PROBLEM_H

#include <cjson/cJSON.h>

#define PROBLEM_CONTENT_TYPE "application/problem+json"

/* The standard reason phrase of an HTTP status ("Too Many Requests"), or "Error". */
const char *problem_title(int status);

/* Builds {"type","title","status","detail"?,"errors"?} and returns it serialised
 * (caller frees with free()). type NULL means "about:blank"; otherwise a slug such as
 * "rate-limited" becomes "https://problems.photo.invalid/rate-limited" (PROBLEM_TYPE_BASE).
 * detail may be NULL. errors (field -> reason) may be NULL; ownership is taken. */
#define PROBLEM_TYPE_BASE "https://problems.photo.invalid/"
char *problem_json(int status, const char *type, const char *detail, cJSON *errors);

/* Same as a cJSON object; caller frees with cJSON_Delete. */
cJSON *problem_new(int status, const char *type, const char *detail, cJSON *errors);

#endif
