/* test_mail.c -- the welcome e-mail through the test stack's SMTP sink: headers, parts, hostile names, faults. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../../testutil.h"
#include "../../../../services/notification/mail.c"

#include <cjson/cJSON.h>

#define TM_FROM "Photo <no-reply@photo.test>"

static const char *tm_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v != NULL && v[0] != '\0', "%s is not set (. deploy/local/test-env.sh, then stack.sh infra-up)",
              name);
    return v;
}

static mail_conf_t tm_conf(const char *url)
{
    return (mail_conf_t){.url = url, .from = TM_FROM, .timeout_ms = 10000, .product = "Photo"};
}

/* A recipient no other test (nor an earlier run) used: "<prefix>-<uuid>@example.test". */
static char *tm_addr(const char *prefix)
{
    char id[CORE_UUID_BUFSZ];
    core_uuid(id);
    return xasprintf("%s-%s@example.test", prefix, id);
}

static char *tm_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = xmalloc((size_t)n + 1);
    size_t got = fread(p, 1, (size_t)n, f);
    p[got] = '\0';
    fclose(f);
    return p;
}

static void tm_write_file(const char *dir, const char *name, const char *text)
{
    char *tmp = xasprintf("%s/%s.tmp", dir, name), *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f, "%s: %s", tmp, strerror(errno));
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0);
    free(tmp);
    free(path);
}

/* The message the sink in dir stored for rcpt (its .json in *meta when meta is not NULL), or NULL. */
static char *tm_find(const char *dir, const char *rcpt, cJSON **meta)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
    char *found = NULL;
    struct dirent *e;
    while (found == NULL && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0 || e->d_name[0] == '.')
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        char *text = tm_read_file(path);
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        cJSON *to = cJSON_GetObjectItem(j, "rcpt_to");
        if (cJSON_GetArraySize(to) >= 1 && strcmp(cJSON_GetArrayItem(to, 0)->valuestring, rcpt) == 0) {
            path[strlen(path) - 5] = '\0';
            char *eml = xasprintf("%s.eml", path);
            found = tm_read_file(eml);
            free(eml);
            if (meta != NULL) {
                *meta = j;
                j = NULL;
            }
        }
        cJSON_Delete(j);
        free(text);
        free(path);
    }
    closedir(d);
    return found;
}

/* ================================================================ reading a message */

static const char *tm_body_of(const char *msg)
{
    const char *b = strstr(msg, "\r\n\r\n");
    cr_assert_not_null(b, "no end of headers");
    return b + 4;
}

/* The unfolded value of the first header called name in the header section at msg (NULL when
 * there is none); *count gets how many there are. Caller frees. */
static char *tm_header(const char *msg, const char *name, int *count)
{
    const char *end = strstr(msg, "\r\n\r\n");
    cr_assert_not_null(end);
    size_t nl = strlen(name);
    char *value = NULL;
    int n = 0;
    for (const char *l = msg; l < end; l = strstr(l, "\r\n") + 2) {
        if (strncasecmp(l, name, nl) != 0 || l[nl] != ':')
            continue;
        n++;
        if (value != NULL)
            continue;
        mail__sb_t v = {0};
        mail__sb_add(&v, "");
        const char *p = l + nl + 1;
        while (*p == ' ')
            p++;
        for (;;) {
            const char *eol = strstr(p, "\r\n");
            mail__sb_addn(&v, p, (size_t)(eol - p));
            if (eol[2] != ' ' && eol[2] != '\t')
                break;
            p = eol + 2;
        }
        value = v.p;
    }
    if (count != NULL)
        *count = n;
    return value;
}

static int tm_hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/* Quoted-printable decoded (RFC 2045 6.7). Caller frees. */
static char *tm_qp_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2;
        } else if (s[i] == '=' && i + 2 < n && tm_hexval(s[i + 1]) >= 0 && tm_hexval(s[i + 2]) >= 0) {
            *o++ = (char)(tm_hexval(s[i + 1]) * 16 + tm_hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static char *tm_b64_decode(const char *s, size_t n)
{
    unsigned char *out = xmalloc(n + 1);
    int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    cr_assert_geq(len, 0, "bad base64: %.*s", (int)n, s);
    while (n > 0 && s[n - 1] == '=')
        n--, len--;
    out[len] = '\0';
    return (char *)out;
}

/* The decoded body of the part of the multipart message msg whose Content-Type starts with type;
 * its Content-Type into *ctype (caller frees) when ctype is not NULL. Fails when there is none. */
static char *tm_part(const char *msg, const char *type, char **ctype)
{
    char *top = tm_header(msg, "Content-Type", NULL);
    cr_assert_not_null(top);
    char *b = strstr(top, "boundary=");
    cr_assert_not_null(b, "no boundary in %s", top);
    b += 9;
    if (*b == '"')
        b++;
    char *delim = xasprintf("\r\n--%.*s", (int)strcspn(b, "\";"), b);
    free(top);
    const char *body = tm_body_of(msg) - 2; /* the first delimiter may follow the blank line */
    char *out = NULL;
    for (const char *p = strstr(body, delim); p != NULL && out == NULL;) {
        const char *start = p + strlen(delim);
        if (strncmp(start, "--", 2) == 0)
            break;
        start += 2; /* CRLF */
        const char *next = strstr(start, delim);
        cr_assert_not_null(next, "unterminated part");
        char *ct = tm_header(start, "Content-Type", NULL);
        if (ct != NULL && strncasecmp(ct, type, strlen(type)) == 0) {
            char *cte = tm_header(start, "Content-Transfer-Encoding", NULL);
            const char *pb = tm_body_of(start);
            size_t n = (size_t)(next - pb);
            if (cte != NULL && strcasecmp(cte, "quoted-printable") == 0)
                out = tm_qp_decode(pb, n);
            else if (cte != NULL && strcasecmp(cte, "base64") == 0)
                out = tm_b64_decode(pb, n);
            else
                out = xstrndup(pb, n);
            free(cte);
            if (ctype != NULL)
                *ctype = xstrdup(ct);
        }
        free(ct);
        p = next;
    }
    free(delim);
    cr_assert_not_null(out, "no %s part", type);
    return out;
}

/* An unstructured header value with its RFC 2047 encoded words (UTF-8, B) decoded; the blanks
 * between two encoded words are dropped. Caller frees. */
static char *tm_rfc2047_decode(const char *v)
{
    mail__sb_t o = {0};
    mail__sb_add(&o, "");
    int prev_word = 0;
    while (*v) {
        if (strncasecmp(v, "=?UTF-8?B?", 10) == 0) {
            const char *end = strstr(v + 10, "?=");
            cr_assert_not_null(end);
            char *dec = tm_b64_decode(v + 10, (size_t)(end - v - 10));
            mail__sb_add(&o, dec);
            free(dec);
            v = end + 2;
            prev_word = 1;
        } else if (prev_word && (*v == ' ' || *v == '\t') &&
                   strncasecmp(v + strspn(v, " \t"), "=?", 2) == 0) {
            v += strspn(v, " \t");
        } else {
            mail__sb_addn(&o, v++, 1);
            prev_word = 0;
        }
    }
    return o.p;
}

/* Every line of the Subject header, folded ones too, is at most max characters long. */
static void tm_assert_subject_lines(const char *msg, size_t max)
{
    const char *l = strstr(msg, "\r\nSubject: ");
    cr_assert_not_null(l);
    l += 2;
    do {
        size_t n = strcspn(l, "\r\n");
        cr_assert_leq(n, max, "long Subject line: %.*s", (int)n, l);
        l += n + 2;
    } while (*l == ' ' || *l == '\t');
}

/* Sends the welcome mail through the stack's sink and returns the stored message (meta too). */
static char *tm_send_and_fetch(const char *to, const char *username, const char *name, const char *user_id,
                               cJSON **meta)
{
    mail_conf_t c = tm_conf(tm_env("TEST_SMTP_URL"));
    char err[256];
    mail_result_t r = mail_send_welcome(&c, to, username, name, user_id, err, sizeof(err));
    cr_assert_eq(r, MAIL_SENT, "%s: %s", mail_result_str(r), err);
    cr_assert(strncmp(err, "sent: 250", 9) == 0, "%s", err);
    char *msg = tm_find(tm_env("TEST_MAIL_DIR"), to, meta);
    cr_assert_not_null(msg, "no message for %s in %s", to, tm_env("TEST_MAIL_DIR"));
    return msg;
}

static void tm_no_fail_file(void)
{
    const char *dir = getenv("TEST_MAIL_DIR");
    if (dir != NULL) {
        char *p = xasprintf("%s/.fail", dir);
        unlink(p);
        free(p);
    }
}

TestSuite(welcome, .init = tm_no_fail_file, .fini = tm_no_fail_file, .timeout = 30);

/* ================================================================ the message */

Test(welcome, arrives_with_its_headers_and_both_parts)
{
    char *to = tm_addr("ann");
    cJSON *meta = NULL;
    char *msg = tm_send_and_fetch(to, "ann_lee", "Ann Lee", "u0123abc", &meta);

    char *v = tm_header(msg, "From", NULL);
    cr_assert_str_eq(v, "Photo <no-reply@photo.test>");
    free(v);
    char *want = xasprintf("<%s>", to);
    v = tm_header(msg, "To", NULL);
    cr_assert_str_eq(v, want);
    free(v);
    free(want);
    v = tm_header(msg, "Subject", NULL);
    cr_assert_str_eq(v, "Welcome to Photo, Ann Lee!");
    free(v);
    v = tm_header(msg, "Message-ID", NULL);
    cr_assert_str_eq(v, "<welcome.u0123abc@photo.test>");
    free(v);
    int n;
    v = tm_header(msg, "MIME-Version", &n);
    cr_assert_str_eq(v, "1.0");
    cr_assert_eq(n, 1, "curl added a second MIME-Version");
    free(v);
    v = tm_header(msg, "Date", &n);
    cr_assert_eq(n, 1);
    regex_t re;
    cr_assert_eq(
        regcomp(
            &re,
            "^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
            "20[0-9][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] \\+0000$",
            REG_EXTENDED | REG_NOSUB),
        0);
    cr_assert_eq(regexec(&re, v, 0, NULL, 0), 0, "Date: %s", v);
    regfree(&re);
    free(v);
    v = tm_header(msg, "Content-Type", NULL);
    cr_assert(strncmp(v, "multipart/alternative; boundary=", 32) == 0, "Content-Type: %s", v);
    free(v);

    char *ct = NULL;
    char *text = tm_part(msg, "text/plain", &ct);
    cr_assert(strstr(ct, "charset=UTF-8") != NULL, "%s", ct);
    cr_assert(strstr(text, "Hi Ann Lee,\r\n") != NULL, "%s", text);
    cr_assert(strstr(text, "Your account @ann_lee is ready.") != NULL, "%s", text);
    free(ct);
    char *html = tm_part(msg, "text/html", &ct);
    cr_assert(strstr(ct, "charset=UTF-8") != NULL, "%s", ct);
    cr_assert(strstr(html, "<b>@ann_lee</b>") != NULL, "%s", html);
    cr_assert(strstr(html, "<p>Hi Ann Lee,</p>") != NULL, "%s", html);
    free(ct);

    cr_assert_str_eq(cJSON_GetObjectItem(meta, "mail_from")->valuestring, "no-reply@photo.test");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(meta, "rcpt_to")), 1);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(meta, "auth_user")));
    cJSON_Delete(meta);
    free(text);
    free(html);
    free(msg);
    free(to);
}

Test(welcome, greets_the_username_when_there_is_no_name)
{
    char *to = tm_addr("noname");
    char *msg = tm_send_and_fetch(to, "bob", "", "u1", NULL);
    char *v = tm_header(msg, "Subject", NULL);
    cr_assert_str_eq(v, "Welcome to Photo, @bob!");
    char *text = tm_part(msg, "text/plain", NULL);
    cr_assert(strstr(text, "Hi @bob,\r\n") != NULL, "%s", text);
    free(text);
    free(v);
    free(msg);
    free(to);
}

Test(welcome, message_id_is_the_same_at_every_attempt)
{
    char *to1 = tm_addr("dup"), *to2 = tm_addr("dup");
    char *m1 = tm_send_and_fetch(to1, "dup", "Dup", "66a0f0c2e4b0a1b2c3d4e5f6", NULL);
    char *m2 = tm_send_and_fetch(to2, "dup", "Dup", "66a0f0c2e4b0a1b2c3d4e5f6", NULL);
    char *id1 = tm_header(m1, "Message-ID", NULL), *id2 = tm_header(m2, "Message-ID", NULL);
    cr_assert_str_eq(id1, "<welcome.66a0f0c2e4b0a1b2c3d4e5f6@photo.test>");
    cr_assert_str_eq(id1, id2);
    free(id1);
    free(id2);
    free(m1);
    free(m2);
    free(to1);
    free(to2);
}

/* ================================================================ hostile input */

Test(welcome, a_hostile_name_adds_no_header_and_no_markup)
{
    char *to = tm_addr("eve");
    cJSON *meta = NULL;
    char *msg =
        tm_send_and_fetch(to, "eve<b>", "Eve\r\nBcc: x@y\r\n\r\n<script>alert('x')</script>", "u2", &meta);

    /* The header section holds exactly our headers, each once. */
    static const char *const ours[] = {"From",       "To",           "Subject",        "Date",
                                       "Message-ID", "MIME-Version", "Auto-Submitted", "Content-Type"};
    const char *end = strstr(msg, "\r\n\r\n");
    int lines = 0;
    for (const char *l = msg; l < end; l = strstr(l, "\r\n") + 2) {
        if (*l == ' ' || *l == '\t')
            continue; /* a folded line */
        int known = 0;
        for (size_t i = 0; i < CORE_ARRAY_SIZE(ours); i++)
            known |= strncasecmp(l, ours[i], strlen(ours[i])) == 0 && l[strlen(ours[i])] == ':';
        cr_assert(known, "unexpected header line: %.*s", (int)(strstr(l, "\r\n") - l), l);
        lines++;
    }
    cr_assert_eq(lines, (int)CORE_ARRAY_SIZE(ours));
    int n;
    free(tm_header(msg, "Bcc", &n));
    cr_assert_eq(n, 0);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(meta, "rcpt_to")), 1);

    char *v = tm_header(msg, "Subject", NULL);
    cr_assert_str_eq(v, "Welcome to Photo, Eve Bcc: x@y <script>alert('x')</script>!");
    free(v);

    char *html = tm_part(msg, "text/html", NULL);
    cr_assert_null(strstr(html, "<script"), "%s", html);
    cr_assert_null(strstr(html, "eve<b>"), "%s", html);
    cr_assert(strstr(html, "<p>Hi Eve Bcc: x@y &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;,</p>") != NULL,
              "%s", html);
    cr_assert(strstr(html, "<b>@eve&lt;b&gt;</b>") != NULL, "%s", html);
    char *text = tm_part(msg, "text/plain", NULL);
    cr_assert(strstr(text, "Hi Eve Bcc: x@y <script>alert('x')</script>,\r\n") != NULL, "%s", text);
    cJSON_Delete(meta);
    free(text);
    free(html);
    free(msg);
    free(to);
}

Test(welcome, a_non_ascii_name_is_encoded_and_decodes_back)
{
    const char *name =
        "Zo\xC3\xAB \xC3\x85ngstr\xC3\xB6m \xE5\xB1\xB1\xE7\x94\xB0 \xF0\x9F\x99\x82"; /* Zoë Ångström 山田
                                                                                          🙂 */
    char *to = tm_addr("zoe");
    char *msg = tm_send_and_fetch(to, "zoe", name, "u3", NULL);

    /* The whole message is 7-bit, its lines within RFC 5322's 998 characters (curl's boundary line
     * passes 78), the Subject's within RFC 2047's 76. */
    for (const char *p = msg; *p; p++)
        cr_assert_lt((unsigned char)*p, 0x80, "8-bit byte at offset %zu", (size_t)(p - msg));
    for (const char *l = msg; *l; l = strstr(l, "\r\n") ? strstr(l, "\r\n") + 2 : l + strlen(l))
        cr_assert_leq(strcspn(l, "\r\n"), 998, "long line: %.*s", (int)strcspn(l, "\r\n"), l);
    tm_assert_subject_lines(msg, 76);

    char *raw = tm_header(msg, "Subject", NULL);
    cr_assert(strncmp(raw, "=?UTF-8?B?", 10) == 0, "Subject: %s", raw);
    char *subject = tm_rfc2047_decode(raw);
    char *want = xasprintf("Welcome to Photo, %s!", name);
    cr_assert_str_eq(subject, want);
    free(want);

    char *text = tm_part(msg, "text/plain", NULL);
    want = xasprintf("Hi %s,\r\n", name);
    cr_assert(strstr(text, want) != NULL, "%s", text);
    free(want);
    char *html = tm_part(msg, "text/html", NULL);
    want = xasprintf("<p>Hi %s,</p>", name);
    cr_assert(strstr(html, want) != NULL, "%s", html);
    free(want);
    free(html);
    free(text);
    free(subject);
    free(raw);
    free(msg);
    free(to);
}

Test(welcome, a_long_non_ascii_name_folds_into_several_encoded_words)
{
    mail__sb_t name = {0};
    for (int i = 0; i < 70; i++)
        mail__sb_add(&name, "\xE5\xB1\xB1"); /* 山: 3 bytes */
    char *to = tm_addr("long");
    char *msg = tm_send_and_fetch(to, "long", name.p, "u4", NULL);
    const char *s = strstr(msg, "\r\nSubject: ");
    cr_assert_not_null(s);
    cr_assert_eq(s[strcspn(s + 2, "\n") + 3], ' ', "Subject is not folded");
    tm_assert_subject_lines(msg, 76);
    char *raw = tm_header(msg, "Subject", NULL);
    char *subject = tm_rfc2047_decode(raw);
    name.p[64 * 3] = '\0'; /* cut at 64 characters */
    char *want = xasprintf("Welcome to Photo, %s!", name.p);
    cr_assert_str_eq(subject, want);
    free(want);
    free(subject);
    free(raw);
    free(name.p);
    free(msg);
    free(to);
}

Test(welcome, a_long_ascii_name_is_folded_at_spaces)
{
    const char *name = "Alexander Maximilian Bartholomew Fitzgerald-Wolfeschlegelsteinhausen III";
    char *to = tm_addr("longascii");
    char *msg = tm_send_and_fetch(to, "alex", name, "u4a", NULL);
    tm_assert_subject_lines(msg, 78);
    char *v = tm_header(msg, "Subject", NULL);
    char *want = xasprintf("Welcome to Photo, %.64s!", name); /* cut at 64 characters */
    cr_assert_str_eq(v, want);
    free(want);
    free(v);
    free(msg);
    free(to);
}

/* The cleaning itself, through the static helper. */
Test(welcome, names_are_cleaned_before_use)
{
    struct {
        const char *in, *want;
    } cases[] = {
        {"  a\tb\r\n\x01 c  ", "a b c"},
        {"x\x7F"
         "y\xC2\x85z",
         "x y z"}, /* DEL and NEL (C1) */
        {"ab\xE2\x80\xAE"
         "cd",
         "abcd"}, /* RIGHT-TO-LEFT OVERRIDE dropped */
        {"a\xE2\x80\xA8"
         "b",
         "a b"}, /* LINE SEPARATOR */
        {"\xFF"
         "a\xC0\xAF",
         "\xEF\xBF\xBD"
         "a\xEF\xBF\xBD\xEF\xBF\xBD"},                            /* invalid and overlong */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* a surrogate */
        {NULL, ""},
    };
    for (size_t i = 0; i < CORE_ARRAY_SIZE(cases); i++) {
        char *got = mail__clean_text(cases[i].in, MAIL__NAME_MAX_CP);
        cr_assert_str_eq(got, cases[i].want, "case %zu", i);
        free(got);
    }
    char *got = mail__clean_text("abcdefghij", 4);
    cr_assert_str_eq(got, "abcd");
    free(got);
    char *enc = mail__header_encode("plain =?but looks encoded?=", 9);
    cr_assert(strncmp(enc, "=?UTF-8?B?", 10) == 0, "%s", enc);
    free(enc);
}

/* ================================================================ refused before sending */

Test(welcome, a_bad_recipient_or_user_id_is_rejected_without_a_connection)
{
    /* Nothing listens there: MAIL_REJECTED proves no connection was tried. */
    char *url = xasprintf("smtp://127.0.0.1:%d", tu_free_port());
    mail_conf_t c = tm_conf(url);
    const char *bad[] = {"",
                         "no-at-sign",
                         "a@b@c",
                         "a@b\r\nRCPT TO:<x@y>",
                         "<a@b.c>",
                         "a b@c.d",
                         "@example.test",
                         "a@",
                         "a@.example",
                         "a@example..test",
                         "a,b@c.d",
                         "a@b.c\n",
                         "z\xC3\xB6@b.c",
                         NULL};
    char err[256];
    for (size_t i = 0; i < CORE_ARRAY_SIZE(bad); i++) {
        mail_result_t r = mail_send_welcome(&c, bad[i], "u", "n", "u5", err, sizeof(err));
        cr_assert_eq(r, MAIL_REJECTED, "address %zu: %s", i, err);
    }
    cr_assert_eq(mail_send_welcome(&c, "ok@example.test", "u", "n", "id>\r\nBcc: x", err, sizeof(err)),
                 MAIL_REJECTED);
    cr_assert_eq(mail_send_welcome(&c, "ok@example.test", "u", "n", "", err, sizeof(err)), MAIL_REJECTED);
    free(url);
}

Test(welcome, conf_check)
{
    char err[256];
    mail_conf_t c = tm_conf("smtp://127.0.0.1:25");
    cr_assert_eq(mail_conf_check(&c, err, sizeof(err)), 0, "%s", err);
    c.url = "smtps://mail.example:465/photo.example";
    c.from = "no-reply@photo.test";
    cr_assert_eq(mail_conf_check(&c, err, sizeof(err)), 0, "%s", err);
    c.url = "http://x";
    cr_assert_eq(mail_conf_check(&c, err, sizeof(err)), -1);
    c.url = "smtp://x";
    c.from = "Photo <no-reply>";
    cr_assert_eq(mail_conf_check(&c, err, sizeof(err)), -1);
    c.from = "Photo <a@b.c>\r\nBcc: x@y";
    cr_assert_eq(mail_conf_check(&c, err, sizeof(err)), -1);
    c.from = "\"Photo, Inc.\" <a@b.c>";
    cr_assert_eq(mail_conf_check(&c, err, sizeof(err)), 0, "%s", err);
    char addr[64], name[64];
    cr_assert_eq(mail__parse_from(c.from, addr, sizeof(addr), name, sizeof(name)), 0);
    cr_assert_str_eq(addr, "a@b.c");
    cr_assert_str_eq(name, "Photo, Inc.");
    char *h = mail__from_header(addr, name);
    cr_assert_str_eq(h, "\"Photo, Inc.\" <a@b.c>");
    free(h);
}

/* ================================================================ injected failures */

static mail_result_t tm_send_with_fail(const char *fail, const char *to, char *err, size_t errlen)
{
    tm_write_file(tm_env("TEST_MAIL_DIR"), ".fail", fail);
    mail_conf_t c = tm_conf(tm_env("TEST_SMTP_URL"));
    mail_result_t r = mail_send_welcome(&c, to, "f", "F", "u6", err, errlen);
    char *path = xasprintf("%s/.fail", tm_env("TEST_MAIL_DIR"));
    cr_assert_neq(access(path, F_OK), 0, "the sink did not use up %s", path);
    free(path);
    char *msg = tm_find(tm_env("TEST_MAIL_DIR"), to, NULL);
    cr_assert_null(msg, "the sink stored a message it refused");
    return r;
}

Test(welcome, a_451_at_the_end_of_data_is_retry)
{
    char err[256], *to = tm_addr("f451");
    cr_assert_eq(tm_send_with_fail("451 4.3.0 try later\n", to, err, sizeof(err)), MAIL_RETRY, "%s", err);
    cr_assert_str_eq(err, "message deferred: 451 4.3.0 try later");
    free(to);
}

Test(welcome, a_550_at_the_end_of_data_is_rejected)
{
    char err[256], *to = tm_addr("f550");
    cr_assert_eq(tm_send_with_fail("550 5.7.1 content refused\n", to, err, sizeof(err)), MAIL_REJECTED, "%s",
                 err);
    cr_assert_str_eq(err, "message refused: 550 5.7.1 content refused");
    free(to);
}

Test(welcome, a_550_to_rcpt_is_rejected)
{
    char err[256], *to = tm_addr("r550");
    cr_assert_eq(tm_send_with_fail("times=1\nat=rcpt\n550 5.1.1 no such user\n", to, err, sizeof(err)),
                 MAIL_REJECTED, "%s", err);
    cr_assert_str_eq(err, "RCPT TO refused: 550 5.1.1 no such user");
    free(to);
}

Test(welcome, a_450_to_rcpt_is_retry)
{
    char err[256], *to = tm_addr("r450");
    cr_assert_eq(tm_send_with_fail("at=rcpt\n450 4.2.1 mailbox busy\n", to, err, sizeof(err)), MAIL_RETRY,
                 "%s", err);
    cr_assert_str_eq(err, "RCPT TO deferred: 450 4.2.1 mailbox busy");
    free(to);
}

Test(welcome, a_553_to_mail_from_is_retry_as_it_is_the_same_for_every_mail)
{
    char err[256], *to = tm_addr("m553");
    cr_assert_eq(tm_send_with_fail("at=mail\n553 5.7.1 sender not allowed\n", to, err, sizeof(err)),
                 MAIL_RETRY, "%s", err);
    cr_assert(strstr(err, "MAIL FROM refused") != NULL && strstr(err, "553 5.7.1 sender not allowed") != NULL,
              "%s", err);
    free(to);
}

Test(welcome, times_uses_the_failure_that_often)
{
    char err[256], *to = tm_addr("times");
    tm_write_file(tm_env("TEST_MAIL_DIR"), ".fail", "times=2\n451 4.3.0 try later\n");
    mail_conf_t c = tm_conf(tm_env("TEST_SMTP_URL"));
    cr_assert_eq(mail_send_welcome(&c, to, "t", "T", "u7", err, sizeof(err)), MAIL_RETRY, "%s", err);
    cr_assert_eq(mail_send_welcome(&c, to, "t", "T", "u7", err, sizeof(err)), MAIL_RETRY, "%s", err);
    cr_assert_eq(mail_send_welcome(&c, to, "t", "T", "u7", err, sizeof(err)), MAIL_SENT, "%s", err);
    char *msg = tm_find(tm_env("TEST_MAIL_DIR"), to, NULL);
    cr_assert_not_null(msg);
    free(msg);
    free(to);
}

/* ================================================================ no server, slow server */

Test(welcome, nothing_listening_is_retry_at_once)
{
    char *url = xasprintf("smtp://127.0.0.1:%d", tu_free_port());
    mail_conf_t c = tm_conf(url);
    char err[256];
    uint64_t t0 = core_now_ms();
    mail_result_t r = mail_send_welcome(&c, "a@example.test", "a", "A", "u8", err, sizeof(err));
    uint64_t took = core_now_ms() - t0;
    cr_assert_eq(r, MAIL_RETRY, "%s", err);
    cr_assert(strstr(err, "connect") != NULL, "%s", err);
    cr_assert_lt(took, 2000, "took %llu ms", (unsigned long long)took);
    free(url);
}

Test(welcome, a_server_that_never_answers_times_out)
{
    /* Listens and never accepts: the connection is made (backlog), the greeting never comes. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 4), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char *url = xasprintf("smtp://127.0.0.1:%d", ntohs(sa.sin_port));
    mail_conf_t c = tm_conf(url);
    c.timeout_ms = 700;
    char err[256];
    uint64_t t0 = core_now_ms();
    mail_result_t r = mail_send_welcome(&c, "a@example.test", "a", "A", "u9", err, sizeof(err));
    uint64_t took = core_now_ms() - t0;
    cr_assert_eq(r, MAIL_RETRY, "%s", err);
    cr_assert(strstr(err, "Timeout") != NULL || strstr(err, "timed out") != NULL, "%s", err);
    cr_assert(took >= 650 && took < 3000, "took %llu ms", (unsigned long long)took);
    close(fd);
    free(url);
}

/* ================================================================ AUTH (a sink of the test's own) */

#define TM_USER "mailer"
#define TM_PASSWORD "s3cret pass"

/* The sink started by auth_start: its pid, directory and URL. Test state, one per test process. */
static struct {
    pid_t pid;
    char dir[64];
    char url[64];
} auth_sink;

static int tm_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static void auth_start(void)
{
    const char *python = tm_env("TEST_PYTHON"), *sink = tm_env("TEST_SMTP_SINK");
    snprintf(auth_sink.dir, sizeof(auth_sink.dir), "/tmp/test_mail.XXXXXX");
    cr_assert_not_null(mkdtemp(auth_sink.dir));
    int port = tu_free_port();
    snprintf(auth_sink.url, sizeof(auth_sink.url), "smtp://127.0.0.1:%d", port);
    char listen_arg[32];
    snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", port);
    char *logpath = xasprintf("%s/sink.log", auth_sink.dir);
    auth_sink.pid = fork();
    cr_assert_geq(auth_sink.pid, 0);
    if (auth_sink.pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(python, python, sink, "--listen", listen_arg, "--dir", auth_sink.dir, "--user", TM_USER,
              "--password", TM_PASSWORD, (char *)NULL);
        _exit(127);
    }
    free(logpath);
    for (int i = 0; i < 200 && !tm_port_open(port); i++)
        usleep(50 * 1000);
    cr_assert(tm_port_open(port), "the AUTH sink did not listen on %d within 10 s (%s/sink.log)", port,
              auth_sink.dir);
}

static void auth_stop(void)
{
    if (auth_sink.pid > 0) {
        kill(auth_sink.pid, SIGTERM);
        waitpid(auth_sink.pid, NULL, 0);
        auth_sink.pid = 0;
    }
    if (auth_sink.dir[0] != '\0') {
        DIR *d = opendir(auth_sink.dir);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *p = xasprintf("%s/%s", auth_sink.dir, e->d_name);
            unlink(p);
            free(p);
        }
        if (d != NULL)
            closedir(d);
        rmdir(auth_sink.dir);
    }
}

TestSuite(auth, .init = auth_start, .fini = auth_stop, .timeout = 30);

Test(auth, the_right_password_sends)
{
    mail_conf_t c = tm_conf(auth_sink.url);
    c.user = TM_USER;
    c.password = TM_PASSWORD;
    char err[256];
    mail_result_t r = mail_send_welcome(&c, "auth@example.test", "au", "Au", "u10", err, sizeof(err));
    cr_assert_eq(r, MAIL_SENT, "%s: %s", mail_result_str(r), err);
    cJSON *meta = NULL;
    char *msg = tm_find(auth_sink.dir, "auth@example.test", &meta);
    cr_assert_not_null(msg);
    cr_assert_str_eq(cJSON_GetObjectItem(meta, "auth_user")->valuestring, TM_USER);
    cJSON_Delete(meta);
    free(msg);
}

Test(auth, a_wrong_password_is_retry)
{
    mail_conf_t c = tm_conf(auth_sink.url);
    c.user = TM_USER;
    c.password = "wrong";
    char err[256];
    mail_result_t r = mail_send_welcome(&c, "auth@example.test", "au", "Au", "u11", err, sizeof(err));
    cr_assert_eq(r, MAIL_RETRY, "%s: %s", mail_result_str(r), err);
    cr_assert(strstr(err, "AUTH refused") != NULL || strstr(err, "authentication refused") != NULL, "%s",
              err);
    cr_assert(strstr(err, "535") != NULL, "%s", err);
}

Test(auth, no_credentials_where_auth_is_required_is_retry)
{
    mail_conf_t c = tm_conf(auth_sink.url);
    char err[256];
    mail_result_t r = mail_send_welcome(&c, "auth@example.test", "au", "Au", "u12", err, sizeof(err));
    cr_assert_eq(r, MAIL_RETRY, "%s: %s", mail_result_str(r), err);
    cr_assert(strstr(err, "MAIL FROM refused") != NULL && strstr(err, "530") != NULL, "%s", err);
}

Test(auth, required_starttls_the_server_lacks_is_retry)
{
    mail_conf_t c = tm_conf(auth_sink.url);
    c.user = TM_USER;
    c.password = TM_PASSWORD;
    c.starttls = 1;
    char err[256];
    mail_result_t r = mail_send_welcome(&c, "auth@example.test", "au", "Au", "u13", err, sizeof(err));
    cr_assert_eq(r, MAIL_RETRY, "%s: %s", mail_result_str(r), err);
}
