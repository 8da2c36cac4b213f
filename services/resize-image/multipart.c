/* multipart.c -- finds the one file of a multipart/form-data body (RFC 7578, RFC 2046), in place. */
#include <string.h>
#include <strings.h>

#include "resize.h"

#define MP__MAX_PARTS 32
#define MP__MAX_HEADERS 8192 /* bytes of one part's header block */

/* ================================================================ Content-Type */

static int mp__bchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           strchr("'()+_,-./:=? ", c);
}

int multipart_boundary(const char *content_type, char *out, size_t outlen)
{
    static const char mt[] = "multipart/form-data";
    if (content_type == NULL || strncasecmp(content_type, mt, sizeof(mt) - 1) != 0)
        return -1;
    for (const char *p = content_type + sizeof(mt) - 1; (p = strchr(p, ';')) != NULL;) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "boundary=", 9) != 0)
            continue;
        p += 9;
        size_t n = 0;
        if (*p == '"') {
            for (p++; *p != '\0' && *p != '"'; p++) {
                if (!mp__bchar(*p) || n + 1 >= outlen)
                    return -1;
                out[n++] = *p;
            }
            if (*p != '"')
                return -1;
        } else {
            for (; *p != '\0' && *p != ';' && *p != ' ' && *p != '\t'; p++) {
                if (!mp__bchar(*p) || *p == ' ' || n + 1 >= outlen)
                    return -1;
                out[n++] = *p;
            }
        }
        out[n] = '\0';
        /* RFC 2046: 1 to 70 characters, not ending in a space. */
        return n >= 1 && n <= 70 && out[n - 1] != ' ' ? 0 : -1;
    }
    return -1;
}

/* ================================================================ headers of a part */

typedef struct {
    int form_data;
    int has_name, has_filename;
    char name[64];
    char filename[MULTIPART_FILENAME_MAX];
} mp__disposition_t;

/* Copies a parameter value (token or quoted-string) at p (ending before end) into out; returns
 * the position after it, or NULL if malformed. Values too long for out are cut. */
static const char *mp__param_value(const char *p, const char *end, char *out, size_t outlen)
{
    size_t n = 0;
    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\' && p + 1 < end)
                p++;
            if (n + 1 < outlen)
                out[n++] = *p;
        }
        if (p == end)
            return NULL;
        p++;
    } else {
        for (; p < end && *p != ';' && *p != ' ' && *p != '\t'; p++)
            if (n + 1 < outlen)
                out[n++] = *p;
    }
    out[n] = '\0';
    return p;
}

static int mp__disposition(const char *v, const char *end, mp__disposition_t *d)
{
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    size_t tlen = 0;
    while (v + tlen < end && v[tlen] != ';' && v[tlen] != ' ' && v[tlen] != '\t')
        tlen++;
    d->form_data = tlen == 9 && strncasecmp(v, "form-data", 9) == 0;
    const char *p = v + tlen;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
            p++;
        if (p == end)
            break;
        const char *eq = p;
        while (eq < end && *eq != '=' && *eq != ';')
            eq++;
        if (eq == end || *eq != '=')
            return -1;
        size_t klen = (size_t)(eq - p);
        while (klen > 0 && (p[klen - 1] == ' ' || p[klen - 1] == '\t'))
            klen--;
        char scratch[8];
        char *dst = scratch;
        size_t dlen = sizeof(scratch);
        if (klen == 4 && strncasecmp(p, "name", 4) == 0) {
            dst = d->name, dlen = sizeof(d->name), d->has_name = 1;
        } else if ((klen == 8 && strncasecmp(p, "filename", 8) == 0) ||
                   (klen == 9 && strncasecmp(p, "filename*", 9) == 0)) {
            dst = d->filename, dlen = sizeof(d->filename), d->has_filename = 1;
        }
        p = mp__param_value(eq + 1, end, dst, dlen);
        if (p == NULL)
            return -1;
    }
    return 0;
}

/* Parses the header block [p, end) of one part: lines "Name: value" separated by CRLF. */
static int mp__headers(const char *p, const char *end, mp__disposition_t *d, char *ctype, size_t ctlen)
{
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || colon == p)
            return -1;
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 1;
        if (nlen == 19 && strncasecmp(p, "content-disposition", 19) == 0) {
            if (mp__disposition(v, eol, d) != 0)
                return -1;
        } else if (nlen == 12 && strncasecmp(p, "content-type", 12) == 0) {
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t n = (size_t)(eol - v) < ctlen - 1 ? (size_t)(eol - v) : ctlen - 1;
            memcpy(ctype, v, n);
            ctype[n] = '\0';
        }
        p = eol + 2;
    }
    return 0;
}

/* ================================================================ the body */

int multipart_find_file(const uint8_t *body, size_t len, const char *boundary, const char *field,
                        multipart_file_t *out, const char **why)
{
    char delim[2 + 2 + 70 + 1]; /* CRLF "--" boundary */
    size_t blen = strlen(boundary);
    if (blen == 0 || blen > 70) {
        *why = "the boundary is not valid";
        return MULTIPART_EMALFORMED;
    }
    snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
    size_t dlen = blen + 4;
    const char *b = (const char *)body, *end = b + len;
    memset(out, 0, sizeof(*out));

    /* The first delimiter opens the body, or follows a preamble and a CRLF. */
    const char *p;
    if (len >= dlen - 2 && memcmp(b, delim + 2, dlen - 2) == 0) {
        p = b + dlen - 2;
    } else {
        const char *at = memmem(b, len, delim, dlen);
        if (at == NULL) {
            *why = "no boundary line opens the body";
            return MULTIPART_EMALFORMED;
        }
        p = at + dlen;
    }
    int found = 0, nparts = 0, other_files = 0;
    for (;;) {
        /* After a delimiter: "--" closes the body; else optional padding, then CRLF. */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            *why = "a boundary line is not followed by CRLF";
            return MULTIPART_EMALFORMED;
        }
        p += 2;
        if (++nparts > MP__MAX_PARTS) {
            *why = "too many parts";
            return MULTIPART_EMALFORMED;
        }
        /* Headers end at an empty line (directly, when there are none). */
        const char *hend, *data;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            hend = p;
            data = p + 2;
        } else {
            size_t span = (size_t)(end - p) < MP__MAX_HEADERS ? (size_t)(end - p) : MP__MAX_HEADERS;
            hend = memmem(p, span, "\r\n\r\n", 4);
            if (hend == NULL) {
                *why = "a part's headers do not end";
                return MULTIPART_EMALFORMED;
            }
            data = hend + 4;
        }
        mp__disposition_t d = {0};
        char ctype[sizeof(out->content_type)] = "";
        if (hend > p && mp__headers(p, hend, &d, ctype, sizeof(ctype)) != 0) {
            *why = "a part's headers are malformed";
            return MULTIPART_EMALFORMED;
        }
        const char *next = memmem(data, (size_t)(end - data), delim, dlen);
        if (next == NULL) {
            *why = "the body ends without its closing boundary";
            return MULTIPART_EMALFORMED;
        }
        int is_field = d.form_data && d.has_name && strcmp(d.name, field) == 0;
        if (is_field) {
            if (found) {
                *why = "more than one file";
                return MULTIPART_ETWO;
            }
            found = 1;
            out->data = (const uint8_t *)data;
            out->len = (size_t)(next - data);
            memcpy(out->filename, d.filename, sizeof(out->filename));
            memcpy(out->content_type, ctype, sizeof(out->content_type));
        } else if (d.has_filename) {
            other_files++;
        }
        p = next + dlen;
    }
    if (!found) {
        *why = "no part is named as the file field";
        return MULTIPART_ENOFILE;
    }
    if (other_files > 0) {
        *why = "more than one file";
        return MULTIPART_ETWO;
    }
    return MULTIPART_OK;
}
