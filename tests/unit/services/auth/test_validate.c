/* test_validate.c -- the input rules of auth: usernames, e-mails, lengths, body shape. */
#include <criterion/criterion.h>

#include "../../../../services/auth/validate.c"

Test(username, case_folds_and_checks_the_pattern)
{
    char out[AUTH_USERNAME_MAX + 1];
    cr_assert_eq(auth_username_normalize("Alice_B.9", out), 0);
    cr_assert_str_eq(out, "alice_b.9");
    cr_assert_eq(auth_username_normalize("abc", out), 0);
    cr_assert_eq(auth_username_normalize("a23456789012345678901234567890", out), 0);   /* 30 */
    cr_assert_eq(auth_username_normalize("a234567890123456789012345678901", out), -1); /* 31 */
    cr_assert_eq(auth_username_normalize("ab", out), -1);
    cr_assert_eq(auth_username_normalize("", out), -1);
    cr_assert_eq(auth_username_normalize("ali ce", out), -1);
    cr_assert_eq(auth_username_normalize("ali-ce", out), -1);
    cr_assert_eq(auth_username_normalize("al$ne", out), -1);
    cr_assert_eq(auth_username_normalize("\xc3\xa9lise", out), -1); /* é */
}

Test(email, valid_addresses_are_lower_cased)
{
    char out[AUTH_EMAIL_MAX + 1];
    const char *why;
    cr_assert_eq(auth_email_normalize("Alice.Smith+tag@Example.COM", out, &why), 0);
    cr_assert_str_eq(out, "alice.smith+tag@example.com");
    cr_assert_eq(auth_email_normalize("a@b.co", out, &why), 0);
    cr_assert_eq(auth_email_normalize("x@sub-domain.example.org", out, &why), 0);
}

Test(email, invalid_addresses_are_refused)
{
    char out[AUTH_EMAIL_MAX + 1];
    const char *why;
    static const char *const bad[] = {
        "",          "plain",     "@example.com",  "a@",         "a@b",      "a@@b.com",
        "a@b@c.com", "a b@c.com", "a@b .com",      ".a@b.com",   "a.@b.com", "a..b@c.com",
        "a@-b.com",  "a@b-.com",  "a@b..com",      "a@.b.com",   "a@b.com.", "a\"b@c.com",
        "a<b@c.com", "a@b_c.com", "a@b.c\xc3\xa9", "a\tb@c.com",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(auth_email_normalize(bad[i], out, &why), -1, "accepted %s", bad[i]);
    char long_local[80];
    memset(long_local, 'a', 65);
    strcpy(long_local + 65, "@b.com");
    cr_assert_eq(auth_email_normalize(long_local, out, &why), -1);
    char huge[300];
    memset(huge, 'a', 260);
    strcpy(huge + 10, "@");
    memset(huge + 11, 'b', 249);
    strcpy(huge + 260, ".com");
    cr_assert_eq(auth_email_normalize(huge, out, &why), -1);
    cr_assert_str_eq(why, "at most 254 characters");
}

Test(chars, counts_code_points_not_bytes)
{
    cr_assert_eq(rpc_chars(""), 0);
    cr_assert_eq(rpc_chars("abc"), 3);
    cr_assert_eq(rpc_chars("\xc3\xa9t\xc3\xa9"), 3); /* été */
    cr_assert_eq(rpc_chars("\xf0\x9f\x93\xb7!"), 2); /* camera emoji + ! */
}

Test(ids, media_ids_and_device_tokens)
{
    cr_assert(auth_media_id_valid("6b01f96811eee1141605b512"));
    cr_assert(auth_media_id_valid("a_b-C"));
    cr_assert(!auth_media_id_valid(""));
    cr_assert(!auth_media_id_valid("a/b"));
    cr_assert(!auth_media_id_valid("{\"$ne\":null}"));
    cr_assert(auth_device_token_valid("fcm:APA91bH-x_y.z"));
    cr_assert(!auth_device_token_valid("a b"));
    cr_assert(!auth_device_token_valid(""));
    char big[4098];
    memset(big, 'a', 4097);
    big[4097] = '\0';
    cr_assert(!auth_device_token_valid(big));
    big[4096] = '\0';
    cr_assert(auth_device_token_valid(big));
}

static const rpc_field_t fields[] = {
    {"username", 1, 0, 1, 30},
    {"password", 1, 0, 8, 128},
    {"name", 0, 1, 0, 4},
};

static int check(const char *json, cJSON **errors)
{
    cJSON *body = cJSON_Parse(json);
    cr_assert_not_null(body, "%s", json);
    *errors = cJSON_CreateObject();
    int n = rpc_fields_check(body, fields, sizeof(fields) / sizeof(fields[0]), *errors);
    cJSON_Delete(body);
    return n;
}

static const char *why(cJSON *errors, const char *field)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(errors, field));
}

Test(fields, a_good_body_passes)
{
    cJSON *e;
    cr_assert_eq(check("{\"username\":\"al\",\"password\":\"12345678\",\"name\":null}", &e), 0);
    cJSON_Delete(e);
    cr_assert_eq(check("{\"username\":\"al\",\"password\":"
                       "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
                       &e),
                 0);
    cJSON_Delete(e);
}

Test(fields, each_problem_is_named)
{
    cJSON *e;
    cr_assert_eq(check("{\"password\":{\"$ne\":null},\"name\":\"12345\",\"role\":\"admin\"}", &e), 4);
    cr_assert_str_eq(why(e, "username"), "is required");
    cr_assert_str_eq(why(e, "password"), "must be a string");
    cr_assert_str_eq(why(e, "name"), "at most 4 characters");
    cr_assert_str_eq(why(e, "role"), "unknown field");
    cJSON_Delete(e);
    cr_assert_eq(check("{\"username\":null,\"password\":\"short\"}", &e), 2);
    cr_assert_str_eq(why(e, "username"), "is required");
    cr_assert_str_eq(why(e, "password"), "must be 8 to 128 characters");
    cJSON_Delete(e);
    cr_assert_eq(check("{\"username\":[\"a\"],\"password\":12345678}", &e), 2);
    cr_assert_str_eq(why(e, "username"), "must be a string");
    cr_assert_str_eq(why(e, "password"), "must be a string");
    cJSON_Delete(e);
}

Test(fields, a_member_given_twice_is_refused)
{
    cJSON *e;
    cr_assert_gt(check("{\"username\":\"al\",\"password\":\"12345678\",\"password\":{\"$gt\":\"\"}}", &e), 0);
    cr_assert_str_eq(why(e, "password"), "given twice");
    cJSON_Delete(e);
}
