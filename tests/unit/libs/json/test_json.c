/* test_json.c -- size, depth, UTF-8, syntax and NUL checks on untrusted JSON. */
#include "json/json.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* Parses exactly len bytes from a heap copy with no NUL after it, so ASan catches any
 * read past the end. */
static cJSON *test_parse_n(const char *text, size_t len, size_t max_bytes, int max_depth, json_err_t *err)
{
    char *buf = malloc(len ? len : 1);
    memcpy(buf, text, len);
    cJSON *v = json_parse(buf, len, max_bytes, max_depth, err);
    free(buf);
    return v;
}

static json_err_t test_err(const char *text)
{
    json_err_t err = JSON_ETOOBIG; /* overwritten on every path; never the answer here */
    cJSON *v = test_parse_n(text, strlen(text), 4096, 32, &err);
    if (v != NULL) {
        cr_assert_eq(err, JSON_OK);
        cJSON_Delete(v);
    } else {
        cr_assert_neq(err, JSON_OK);
    }
    return err;
}

Test(json, valid_nested_object)
{
    const char *text =
        " {\"user\":{\"id\":\"u1\",\"tags\":[\"a\",\"b\"],\"n\":3.5,\"ok\":true,\"x\":null},"
        "\"caption\":\"caf\xc3\xa9 \xf0\x9f\x93\xb7 \\u00e9 \\ud83d\\udcf7 \\\"q\\\"\"}\r\n\t ";
    json_err_t err;
    cJSON *v = test_parse_n(text, strlen(text), 4096, 32, &err);
    cr_assert_not_null(v);
    cr_assert_eq(err, JSON_OK);
    cJSON *user = cJSON_GetObjectItem(v, "user");
    cr_assert_str_eq(cJSON_GetObjectItem(user, "id")->valuestring, "u1");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(user, "tags")), 2);
    cr_assert_float_eq(cJSON_GetObjectItem(user, "n")->valuedouble, 3.5, 1e-12);
    cr_assert_str_eq(cJSON_GetObjectItem(v, "caption")->valuestring,
                     "caf\xc3\xa9 \xf0\x9f\x93\xb7 \xc3\xa9 \xf0\x9f\x93\xb7 \"q\"");
    char *s = json_print(v);
    cr_assert_str_eq(s, "{\"user\":{\"id\":\"u1\",\"tags\":[\"a\",\"b\"],\"n\":3.5,\"ok\":true,\"x\":null},"
                        "\"caption\":\"caf\xc3\xa9 \xf0\x9f\x93\xb7 \xc3\xa9 \xf0\x9f\x93\xb7 \\\"q\\\"\"}");
    free(s);
    cJSON_Delete(v);
}

Test(json, scalars_and_empty_containers)
{
    cr_assert_eq(test_err("0"), JSON_OK);
    cr_assert_eq(test_err("\"\""), JSON_OK);
    cr_assert_eq(test_err("[]"), JSON_OK);
    cr_assert_eq(test_err("{}"), JSON_OK);
    cr_assert_eq(test_err("null"), JSON_OK);
    cr_assert_eq(test_err("-1.5e3"), JSON_OK);
}

Test(json, too_big_checked_first)
{
    const char *text = "{\"a\":\"0123456789\"}";
    size_t len = strlen(text);
    json_err_t err;
    cr_assert_null(test_parse_n(text, len, len - 1, 32, &err));
    cr_assert_eq(err, JSON_ETOOBIG);
    cJSON *v = test_parse_n(text, len, len, 32, &err);
    cr_assert_not_null(v);
    cJSON_Delete(v);

    /* Size wins over every other problem. */
    cr_assert_null(test_parse_n("\xff[[[[", 5, 4, 1, &err));
    cr_assert_eq(err, JSON_ETOOBIG);
}

static char *test_nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);
    for (int i = 0; i < depth; i++) {
        s[i] = '[';
        s[depth * 2 - 1 - i] = ']';
    }
    s[depth * 2] = '\0';
    return s;
}

Test(json, too_deep)
{
    json_err_t err;
    char *deep = test_nested(1000);
    cr_assert_null(test_parse_n(deep, strlen(deep), 1 << 20, 32, &err));
    cr_assert_eq(err, JSON_ETOODEEP);
    free(deep);

    /* Exactly max_depth is fine, one more is not; objects count as well as arrays. */
    char *ok = test_nested(32);
    cJSON *v = test_parse_n(ok, strlen(ok), 1 << 20, 32, &err);
    cr_assert_not_null(v);
    cJSON_Delete(v);
    free(ok);
    char *over = test_nested(33);
    cr_assert_null(test_parse_n(over, strlen(over), 1 << 20, 32, &err));
    cr_assert_eq(err, JSON_ETOODEEP);
    free(over);

    const char *objs = "{\"a\":{\"b\":[{\"c\":1}]}}";
    cr_assert_null(test_parse_n(objs, strlen(objs), 4096, 3, &err));
    cr_assert_eq(err, JSON_ETOODEEP);
    v = test_parse_n(objs, strlen(objs), 4096, 4, &err);
    cr_assert_not_null(v);
    cJSON_Delete(v);

    /* Brackets inside strings, even after escaped quotes, do not count. */
    const char *in_string = "[\"[[[[\\\"[[[[\"]";
    v = test_parse_n(in_string, strlen(in_string), 4096, 1, &err);
    cr_assert_not_null(v, "err %d", err);
    cJSON_Delete(v);

    /* Unbalanced closing brackets do not let the depth go negative and hide later nesting. */
    cr_assert_eq(test_err("]]]]"), JSON_ESYNTAX);
    const char *sneaky = "]]][[";
    cr_assert_null(test_parse_n(sneaky, strlen(sneaky), 4096, 1, &err));
    cr_assert_eq(err, JSON_ETOODEEP);
}

Test(json, bad_utf8)
{
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"\"\xc0\xaf\"", "overlong C0 AF"},
        {"\"\xc1\xbf\"", "overlong C1"},
        {"\"\xe0\x80\xaf\"", "overlong 3-byte"},
        {"\"\xf0\x80\x80\xaf\"", "overlong 4-byte"},
        {"\"\xed\xa0\x80\"", "lone surrogate ED A0 80"},
        {"\"\xed\xbf\xbf\"", "surrogate ED BF BF"},
        {"\"\xf4\x90\x80\x80\"", "above U+10FFFF"},
        {"\"\xf5\x80\x80\x80\"", "F5 lead"},
        {"\"\xff\"", "FF byte"},
        {"\"\x80\"", "lone continuation"},
        {"\"\xc3\"", "truncated 2-byte"},
        {"\"\xe2\x82\"", "truncated 3-byte"},
        {"\"\xf0\x9f\x93\"", "truncated 4-byte"},
        {"\"\xe2\x28\xa1\"", "bad continuation"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(test_err(cases[i].text), JSON_EUTF8, "%s", cases[i].why);

    /* Truncation at the very end of the buffer must not read past it. */
    json_err_t err;
    cr_assert_null(test_parse_n("\"\xf0\x9f", 3, 4096, 32, &err));
    cr_assert_eq(err, JSON_EUTF8);
}

Test(json, utf8_valid_boundaries)
{
    cr_assert(json_utf8_valid("", 0));
    cr_assert(json_utf8_valid("\x7f", 1));
    cr_assert(json_utf8_valid("\xc2\x80", 2));          /* U+0080 */
    cr_assert(json_utf8_valid("\xdf\xbf", 2));          /* U+07FF */
    cr_assert(json_utf8_valid("\xe0\xa0\x80", 3));      /* U+0800 */
    cr_assert(json_utf8_valid("\xed\x9f\xbf", 3));      /* U+D7FF */
    cr_assert(json_utf8_valid("\xee\x80\x80", 3));      /* U+E000 */
    cr_assert(json_utf8_valid("\xef\xbf\xbf", 3));      /* U+FFFF */
    cr_assert(json_utf8_valid("\xf0\x90\x80\x80", 4));  /* U+10000 */
    cr_assert(json_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
    cr_assert_not(json_utf8_valid("\xf4\x8f\xbf", 3));  /* truncated */
    cr_assert_not(json_utf8_valid("\xed\xb0\x80", 3));  /* low surrogate */
    cr_assert_not(json_utf8_valid("a\xc2\x80\xc2", 4)); /* truncated at the end */
}

Test(json, trailing_garbage)
{
    cr_assert_eq(test_err("{} x"), JSON_ESYNTAX);
    cr_assert_eq(test_err("{}{}"), JSON_ESYNTAX);
    cr_assert_eq(test_err("1 2"), JSON_ESYNTAX);
    cr_assert_eq(test_err("[1]]"), JSON_ESYNTAX);
    cr_assert_eq(test_err("{} \n\r\t "), JSON_OK);

    json_err_t err;
    cr_assert_null(test_parse_n("{}\0", 3, 4096, 32, &err), "a NUL after the value is not whitespace");
    cr_assert_eq(err, JSON_ESYNTAX);
}

Test(json, syntax_errors)
{
    const char *bad[] = {
        "",         " ",     "{",       "[1,",        "{\"a\"}", "{\"a\":}", "[1,]", "tru", "\"unterminated",
        "'single'", "{a:1}", "\"\\x\"", "\"\\ud800\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(test_err(bad[i]), JSON_ESYNTAX, "accepted %s", bad[i]);
}

Test(json, nul_in_strings_and_keys)
{
    cr_assert_eq(test_err("\"a\\u0000b\""), JSON_ESYNTAX);
    cr_assert_eq(test_err("[\"ok\",\"\\u0000\"]"), JSON_ESYNTAX);
    cr_assert_eq(test_err("{\"k\\u0000ey\":1}"), JSON_ESYNTAX);
    cr_assert_eq(test_err("{\"a\":{\"b\":\"x\\u0000\"}}"), JSON_ESYNTAX);
    /* A raw NUL or other control byte inside a string is not JSON either. */
    json_err_t err;
    cr_assert_null(test_parse_n("\"a\0b\"", 5, 4096, 32, &err));
    cr_assert_eq(err, JSON_ESYNTAX);
    cr_assert_eq(test_err("\"tab\there\""), JSON_ESYNTAX);

    /* Lookalikes that are fine: an escaped backslash before u0000, and U+0001. */
    cJSON *v = test_parse_n("\"\\\\u0000\"", 9, 4096, 32, &err);
    cr_assert_not_null(v);
    cr_assert_str_eq(v->valuestring, "\\u0000");
    cJSON_Delete(v);
    cr_assert_eq(test_err("\"\\u0001\""), JSON_OK);
}

Test(json, parse_object)
{
    json_err_t err;
    const char *obj = "{\"a\":1}";
    cJSON *v = json_parse_object(obj, strlen(obj), 100, 4, &err);
    cr_assert_not_null(v);
    cr_assert_eq(err, JSON_OK);
    cJSON_Delete(v);

    cr_assert_null(json_parse_object("[1]", 3, 100, 4, &err));
    cr_assert_eq(err, JSON_ENOTOBJECT);
    cr_assert_null(json_parse_object("\"s\"", 3, 100, 4, &err));
    cr_assert_eq(err, JSON_ENOTOBJECT);
    cr_assert_null(json_parse_object("{", 1, 100, 4, &err));
    cr_assert_eq(err, JSON_ESYNTAX);
    cr_assert_null(json_parse_object("{}", 2, 1, 4, NULL), "err may be NULL");
}

Test(json, strerror_covers_every_code)
{
    json_err_t codes[] = {JSON_OK, JSON_ETOOBIG, JSON_ETOODEEP, JSON_EUTF8, JSON_ESYNTAX, JSON_ENOTOBJECT};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        cr_assert_not_null(json_strerror(codes[i]));
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(json_strerror(codes[i]), json_strerror(codes[j]));
    }
    cr_assert_str_eq(json_strerror(JSON_ETOODEEP), "nested too deeply");
    cr_assert_not_null(json_strerror((json_err_t)-99));
}
