/* test_multipart.c -- the one file of a multipart/form-data body, and every way to get it wrong. */
#include <criterion/criterion.h>

#include "../../../../services/resize-image/multipart.c"

static int find(const char *body, multipart_file_t *f, const char **why)
{
    return multipart_find_file((const uint8_t *)body, strlen(body), "XyZ", "file", f, why);
}

Test(multipart, boundary_parameter)
{
    char b[80];
    cr_assert_eq(multipart_boundary("multipart/form-data; boundary=abc-123", b, sizeof(b)), 0);
    cr_assert_str_eq(b, "abc-123");
    cr_assert_eq(multipart_boundary("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b:c\"", b, sizeof(b)),
                 0);
    cr_assert_str_eq(b, "a b:c");
    cr_assert_eq(multipart_boundary("multipart/form-data", b, sizeof(b)), -1);
    cr_assert_eq(multipart_boundary("multipart/form-data; boundary=", b, sizeof(b)), -1);
    cr_assert_eq(multipart_boundary("multipart/form-data; boundary=\"unterminated", b, sizeof(b)), -1);
    cr_assert_eq(multipart_boundary("multipart/form-data; boundary=\"ends with space \"", b, sizeof(b)), -1);
    cr_assert_eq(multipart_boundary("multipart/form-data; boundary=bad<char>", b, sizeof(b)), -1);
    cr_assert_eq(multipart_boundary("multipart/mixed; boundary=abc", b, sizeof(b)), -1);
    cr_assert_eq(multipart_boundary("image/jpeg", b, sizeof(b)), -1);
    cr_assert_eq(multipart_boundary(NULL, b, sizeof(b)), -1);
    char long71[128] = "multipart/form-data; boundary=";
    memset(long71 + strlen(long71), 'a', 71);
    cr_assert_eq(multipart_boundary(long71, b, sizeof(b)), -1);
}

Test(multipart, finds_the_file_among_fields)
{
    multipart_file_t f;
    const char *why = NULL;
    const char *body =
        "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nhi\r\n"
        "--XyZ\r\ncontent-disposition: form-data; name=file; filename=\"a \\\"b\\\".jpg\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\r\n-XyZ-not-it\r\nmore\r\n--XyZ--\r\nepilogue";
    cr_assert_eq(find(body, &f, &why), MULTIPART_OK, "%s", why);
    cr_assert_eq(f.len, strlen("\xff\xd8\xff\r\n-XyZ-not-it\r\nmore"));
    cr_assert(memcmp(f.data, "\xff\xd8\xff", 3) == 0);
    cr_assert_str_eq(f.filename, "a \"b\".jpg");
    cr_assert_str_eq(f.content_type, "image/jpeg");
}

Test(multipart, empty_part_and_transport_padding)
{
    multipart_file_t f;
    const char *why = NULL;
    cr_assert_eq(
        find("--XyZ  \r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n\r\n--XyZ--", &f, &why),
        MULTIPART_OK, "%s", why);
    cr_assert_eq(f.len, 0);
}

Test(multipart, errors)
{
    multipart_file_t f;
    const char *why = NULL;
    static const struct {
        const char *body;
        int rc;
    } cases[] = {
        {"", MULTIPART_EMALFORMED},
        {"no boundary at all", MULTIPART_EMALFORMED},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\ndata", MULTIPART_EMALFORMED},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\ndata\r\n--XyZ", MULTIPART_EMALFORMED},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"file\"", MULTIPART_EMALFORMED},
        {"--XyZ\r\nno colon here\r\n\r\nx\r\n--XyZ--", MULTIPART_EMALFORMED},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"file\r\n\r\nx\r\n--XyZ--", MULTIPART_EMALFORMED},
        {"--XyZjunk\r\n\r\nx\r\n--XyZ--", MULTIPART_EMALFORMED},
        {"--XyZ--", MULTIPART_ENOFILE},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"photo\"\r\n\r\nx\r\n--XyZ--", MULTIPART_ENOFILE},
        {"--XyZ\r\nContent-Disposition: attachment; name=\"file\"\r\n\r\nx\r\n--XyZ--", MULTIPART_ENOFILE},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--XyZ\r\n"
         "Content-Disposition: form-data; name=\"file\"\r\n\r\ny\r\n--XyZ--",
         MULTIPART_ETWO},
        {"--XyZ\r\nContent-Disposition: form-data; name=\"other\"; filename=\"b.jpg\"\r\n\r\ny\r\n--XyZ\r\n"
         "Content-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--XyZ--",
         MULTIPART_ETWO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why = NULL;
        cr_assert_eq(find(cases[i].body, &f, &why), cases[i].rc, "case %zu", i);
        cr_assert_not_null(why, "case %zu", i);
    }
}

Test(multipart, too_many_parts)
{
    char body[8192] = "";
    for (int i = 0; i < 40; i++)
        strcat(body, "--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nx\r\n");
    strcat(body, "--XyZ--");
    multipart_file_t f;
    const char *why = NULL;
    cr_assert_eq(find(body, &f, &why), MULTIPART_EMALFORMED);
    cr_assert_str_eq(why, "too many parts");
}
