/* json.c -- untrusted JSON: size, UTF-8 and depth checked before cJSON sees the bytes. */
#include "json/json.h"

#include "core/core.h"

#include <string.h>

int json_utf8_valid(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* Table 3-7 of the Unicode standard: the allowed range of the second byte depends
         * on the first, which is what rules out overlongs, surrogates and > U+10FFFF. */
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0)
                lo = 0xA0; /* overlong below U+0800 */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates U+D800..U+DFFF */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0)
                lo = 0x90; /* overlong below U+10000 */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return 0; /* continuation byte, C0/C1 overlong lead, or F5..FF */
        }
        if (len - i < n)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += n;
    }
    return 1;
}

/* Walks the text once, tracking strings and escapes, before cJSON parses it:
 * - nesting of [ and { outside strings deeper than max_depth is JSON_ETOODEEP, found before
 *   cJSON's recursive descent can go that deep;
 * - a \u0000 escape or a raw control byte inside a string is JSON_ESYNTAX. cJSON would
 *   decode \u0000 into a NUL that silently cuts its C string short, so it can only be
 *   seen here, in the text; raw control bytes are not JSON but cJSON lets them through.
 * Unbalanced brackets and unterminated strings are left for cJSON to refuse. */
static json_err_t json__prescan(const char *buf, size_t len, int max_depth)
{
    int depth = 0, in_string = 0, bad_string = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (in_string) {
            if (c == '"') {
                in_string = 0;
            } else if (c == '\\') {
                if (i + 5 < len && memcmp(buf + i + 1, "u0000", 5) == 0)
                    bad_string = 1;
                i++; /* the escaped character cannot end the string */
            } else if (c < 0x20) {
                bad_string = 1;
            }
            continue;
        }
        if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return JSON_ETOODEEP;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return bad_string ? JSON_ESYNTAX : JSON_OK;
}

static int json__is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

cJSON *json_parse(const char *buf, size_t len, size_t max_bytes, int max_depth, json_err_t *err)
{
    json_err_t rc = JSON_OK;
    cJSON *v = NULL;
    const char *end = NULL;

    if (len > max_bytes) {
        rc = JSON_ETOOBIG;
        goto out;
    }
    if (!json_utf8_valid(buf, len)) {
        rc = JSON_EUTF8;
        goto out;
    }
    rc = json__prescan(buf, len, max_depth);
    if (rc != JSON_OK)
        goto out;
    if (len == 0) {
        rc = JSON_ESYNTAX;
        goto out;
    }
    v = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (v == NULL) {
        rc = JSON_ESYNTAX;
        goto out;
    }
    for (const char *p = end; p < buf + len; p++) {
        if (!json__is_space(*p)) {
            rc = JSON_ESYNTAX;
            goto out;
        }
    }
out:
    if (rc != JSON_OK) {
        cJSON_Delete(v);
        v = NULL;
    }
    if (err != NULL)
        *err = rc;
    return v;
}

cJSON *json_parse_object(const char *buf, size_t len, size_t max_bytes, int max_depth, json_err_t *err)
{
    json_err_t rc;
    cJSON *v = json_parse(buf, len, max_bytes, max_depth, &rc);
    if (v != NULL && !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        v = NULL;
        rc = JSON_ENOTOBJECT;
    }
    if (err != NULL)
        *err = rc;
    return v;
}

const char *json_strerror(json_err_t err)
{
    switch (err) {
    case JSON_OK:
        return "success";
    case JSON_ETOOBIG:
        return "document too large";
    case JSON_ETOODEEP:
        return "nested too deeply";
    case JSON_EUTF8:
        return "not valid UTF-8";
    case JSON_ESYNTAX:
        return "not valid JSON";
    case JSON_ENOTOBJECT:
        return "not a JSON object";
    }
    return "unknown JSON error";
}

char *json_print(const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    CORE_ASSERT(s != NULL);
    return s;
}
