/* validate.c -- the rules of API.md for what clients send: usernames, e-mails, lengths, body shape. */
#include <ctype.h>
#include <string.h>

#include "auth.h"

int auth_username_normalize(const char *in, char out[AUTH_USERNAME_MAX + 1])
{
    size_t len = strlen(in);
    if (len < 3 || len > AUTH_USERNAME_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = (char)tolower((unsigned char)in[i]);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return -1;
        out[i] = c;
    }
    out[len] = '\0';
    return 0;
}

static int auth__label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int auth_email_normalize(const char *in, char out[AUTH_EMAIL_MAX + 1], const char **why)
{
    size_t len = strlen(in);
    *why = "must be an e-mail address (name@example.com)";
    if (len > AUTH_EMAIL_MAX) {
        *why = "at most 254 characters";
        return -1;
    }
    const char *at = strchr(in, '@');
    if (at == NULL || strchr(at + 1, '@') != NULL)
        return -1;
    size_t local = (size_t)(at - in), domain = len - local - 1;
    if (local < 1 || local > 64 || domain < 3)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[len] = '\0';
    /* The local part: printable ASCII without spaces, quotes, brackets or separators that break
     * mail headers; no leading, trailing or doubled dots. */
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),:;<>[\\]", c) != NULL)
            return -1;
        if (c == '.' && (i == 0 || i == local - 1 || out[i - 1] == '.'))
            return -1;
    }
    /* The domain: dot-separated labels of [a-z0-9-], none empty, none starting or ending with
     * '-', at least two of them. */
    const char *d = out + local + 1;
    int labels = 0;
    for (const char *p = d; *p != '\0';) {
        const char *end = strchr(p, '.');
        size_t l = end != NULL ? (size_t)(end - p) : strlen(p);
        if (l == 0 || l > 63 || p[0] == '-' || p[l - 1] == '-')
            return -1;
        for (size_t i = 0; i < l; i++)
            if (!auth__label_char(p[i]))
                return -1;
        labels++;
        p += l;
        if (*p == '.') {
            p++;
            if (*p == '\0')
                return -1;
        }
    }
    return labels >= 2 ? 0 : -1;
}

static int auth__charset(const char *s, size_t max, const char *extra)
{
    size_t len = strlen(s);
    if (len < 1 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c) != NULL))
            return 0;
    }
    return 1;
}

int auth_media_id_valid(const char *s)
{
    return auth__charset(s, 64, "_-");
}

int auth_device_token_valid(const char *s)
{
    return auth__charset(s, 4096, "_:.-");
}

