/* mail.c -- the welcome e-mail: user text made safe, the message built with curl MIME, replies classified.
 *
 * What libcurl 7.88 does for us with CURLOPT_MIMEPOST on smtp:// (lib/smtp.c, lib/mime.c):
 * - The CURLOPT_HTTPHEADER list becomes the message's top-level headers; a "Content-Type:" in it
 *   names the top-level multipart type (curl adds the boundary) and is not sent twice. It adds
 *   "Mime-Version: 1.0" unless the list has one. Header lines go out as given: a line may carry a
 *   folded continuation ("\r\n "), never anything a user typed unencoded.
 * - It dot-stuffs the body and ends it with CRLF.CRLF. Its quoted-printable encoder keeps CRLF as
 *   a line break and encodes a bare LF, so the texts below use CRLF.
 * - A refused RCPT TO, MAIL FROM or DATA ends the transfer with CURLE_SEND_ERROR, a refused end of
 *   message with CURLE_WEIRD_SERVER_REPLY, a refused AUTH with CURLE_LOGIN_DENIED. Which command
 *   was refused we learn from the protocol trace (CURLOPT_DEBUGFUNCTION): curl's error text is not
 *   an interface.
 */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "mail.h"

#define MAIL__DEFAULT_TIMEOUT_MS 30000u
#define MAIL__NAME_MAX_CP 64 /* code points kept of a name or username */
#define MAIL__ADDR_MAX 254   /* RFC 5321 path limit less the brackets */
#define MAIL__USER_ID_MAX 64
#define MAIL__LINE_MAX 76   /* RFC 2047 6.1: a header line with encoded words; also our folding width */
#define MAIL__EW_RAW_MAX 45 /* at most 45 bytes per encoded word: 12 + 60 base64 characters */
#define MAIL__REPLY_MAX 160 /* bytes kept of a server reply for err */

/* The one piece of process state: curl_global_init must run once, before any handle. */
static pthread_once_t mail__global_once = PTHREAD_ONCE_INIT;
static CURLcode mail__global_rc;

static void mail__global_init(void)
{
    mail__global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *mail_result_str(mail_result_t r)
{
    switch (r) {
    case MAIL_SENT:
        return "sent";
    case MAIL_RETRY:
        return "retry";
    case MAIL_REJECTED:
        return "rejected";
    }
    return "?";
}

/* ================================================================ strings */

/* A growing NUL-terminated string; free p. */
typedef struct {
    char *p;
    size_t len, cap;
} mail__sb_t;

static void mail__sb_addn(mail__sb_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void mail__sb_add(mail__sb_t *b, const char *s)
{
    mail__sb_addn(b, s, strlen(s));
}

/* Decodes one UTF-8 sequence at s (n bytes left, n > 0): returns its length and the code point in
 * *cp, or 0 when it is not valid UTF-8 (overlong, surrogate, above U+10FFFF, truncated). */
static size_t mail__utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c = s[0], min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* A copy of user text that is safe to show anywhere: valid UTF-8 (bad bytes become U+FFFD),
 * control characters (C0, DEL, C1, U+2028, U+2029) turned into spaces, bidi embeddings and
 * overrides (U+202A-202E, U+2066-2069) dropped, runs of spaces made one, trimmed, at most max_cp
 * code points. s may be NULL. Caller frees. */
static char *mail__clean_text(const char *s, size_t max_cp)
{
    mail__sb_t b = {0};
    mail__sb_add(&b, "");
    if (s == NULL)
        return b.p;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), ncp = 0;
    int space = 1; /* no leading space */
    while (n > 0 && ncp < max_cp) {
        uint32_t cp;
        size_t len = mail__utf8_next(p, n, &cp);
        const char *out = (const char *)p;
        size_t outlen = len;
        if (len == 0) {
            out = "\xEF\xBF\xBD", outlen = 3, len = 1;
        } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029) {
            out = " ", outlen = 1;
        } else if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069)) {
            outlen = 0;
        }
        p += len, n -= len;
        if (outlen == 0)
            continue;
        if (outlen == 1 && out[0] == ' ') {
            if (space)
                continue;
            space = 1;
        } else {
            space = 0;
        }
        mail__sb_addn(&b, out, outlen);
        ncp++;
    }
    while (b.len > 0 && b.p[b.len - 1] == ' ')
        b.p[--b.len] = '\0';
    return b.p;
}

/* s with & < > " ' as HTML character references. Caller frees. */
static char *mail__html_escape(const char *s)
{
    mail__sb_t b = {0};
    mail__sb_add(&b, "");
    for (; *s; s++) {
        switch (*s) {
        case '&':
            mail__sb_add(&b, "&amp;");
            break;
        case '<':
            mail__sb_add(&b, "&lt;");
            break;
        case '>':
            mail__sb_add(&b, "&gt;");
            break;
        case '"':
            mail__sb_add(&b, "&quot;");
            break;
        case '\'':
            mail__sb_add(&b, "&#39;");
            break;
        default:
            mail__sb_addn(&b, s, 1);
        }
    }
    return b.p;
}

static int mail__is_plain_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7E)
            return 0;
    return 1;
}

/* Plain printable ASCII folded at spaces so that no line is longer than MAIL__LINE_MAX where a
 * word allows it; used is what the first line already holds ("Subject: "). Caller frees. */
static char *mail__header_fold(const char *s, size_t used)
{
    mail__sb_t b = {0};
    mail__sb_add(&b, "");
    size_t col = used;
    while (*s) {
        size_t sp = strspn(s, " "), word = strcspn(s + sp, " ");
        if (b.len > 0 && sp > 0 && col + sp + word > MAIL__LINE_MAX) {
            mail__sb_add(&b, "\r\n");
            col = 0;
        }
        mail__sb_addn(&b, s, sp + word);
        col += sp + word;
        s += sp + word;
    }
    return b.p;
}

/* Header text (valid UTF-8, no control characters: from mail__clean_text) as it may appear in an
 * unstructured header, its lines at most MAIL__LINE_MAX long; used is what the first line already
 * holds ("Subject: "). Printable ASCII without "=?" is only folded; anything else becomes RFC 2047
 * encoded words (UTF-8, base64) of whole characters, one per line. Caller frees. */
static char *mail__header_encode(const char *s, size_t used)
{
    if (mail__is_plain_ascii(s) && strstr(s, "=?") == NULL)
        return mail__header_fold(s, used);
    mail__sb_t b = {0};
    mail__sb_add(&b, "");
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        /* 12 bytes of "=?UTF-8?B?" and "?=", 4 base64 characters per 3 bytes. */
        size_t room = MAIL__LINE_MAX - (b.len > 0 ? 1 : used), max = room > 12 ? (room - 12) / 4 * 3 : 3;
        if (max > MAIL__EW_RAW_MAX)
            max = MAIL__EW_RAW_MAX;
        size_t chunk = 0;
        uint32_t cp;
        for (;;) {
            size_t len = mail__utf8_next(p + chunk, n - chunk, &cp);
            if (len == 0)
                len = 1; /* cannot happen after mail__clean_text; keep going */
            if (chunk > 0 && chunk + len > max)
                break;
            chunk += len;
            if (chunk == n)
                break;
        }
        unsigned char enc[4 * ((MAIL__EW_RAW_MAX + 3) / 3) + 1];
        EVP_EncodeBlock(enc, p, (int)chunk);
        if (b.len > 0)
            mail__sb_add(&b, "\r\n ");
        mail__sb_add(&b, "=?UTF-8?B?");
        mail__sb_add(&b, (const char *)enc);
        mail__sb_add(&b, "?=");
        p += chunk, n -= chunk;
    }
    return b.p;
}

/* ================================================================ addresses */

/* An addr-spec we are willing to send to: printable ASCII without spaces and specials, one @
 * between a non-empty local part and a domain with no empty label. */
static int mail__address_ok(const char *a)
{
    if (a == NULL)
        return 0;
    size_t n = strlen(a);
    const char *at = strchr(a, '@');
    if (n == 0 || n > MAIL__ADDR_MAX || at == NULL || at == a || strchr(at + 1, '@') != NULL)
        return 0;
    for (const char *p = a; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch >= 0x7F || strchr("<>()[]\\,;:\"'`", ch) != NULL)
            return 0;
    }
    const char *d = at + 1;
    if (*d == '\0' || *d == '.' || a[n - 1] == '.' || strstr(d, "..") != NULL)
        return 0;
    return 1;
}

/* Splits MAIL_FROM into its address (copied into addr) and display name (into name, "" for none;
 * may be NULL). Returns 0, or -1 when it is not "addr" or "Name <addr>". */
static int mail__parse_from(const char *from, char *addr, size_t addrlen, char *name, size_t namelen)
{
    if (from == NULL)
        return -1;
    for (const char *p = from; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            return -1;
    const char *lt = strchr(from, '<');
    const char *a = from, *e = from + strlen(from);
    const char *nb = from, *ne = from;
    if (lt != NULL) {
        const char *gt = strchr(lt, '>');
        if (gt == NULL || strchr(lt + 1, '<') != NULL)
            return -1;
        for (const char *q = gt + 1; *q; q++)
            if (*q != ' ')
                return -1;
        a = lt + 1, e = gt;
        ne = lt;
    }
    while (a < e && *a == ' ')
        a++;
    while (e > a && e[-1] == ' ')
        e--;
    while (nb < ne && *nb == ' ')
        nb++;
    while (ne > nb && ne[-1] == ' ')
        ne--;
    if (ne - nb >= 2 && *nb == '"' && ne[-1] == '"')
        nb++, ne--;
    if ((size_t)(e - a) >= addrlen || (name != NULL && (size_t)(ne - nb) >= namelen))
        return -1;
    memcpy(addr, a, (size_t)(e - a));
    addr[e - a] = '\0';
    if (name != NULL) {
        memcpy(name, nb, (size_t)(ne - nb));
        name[ne - nb] = '\0';
    }
    return mail__address_ok(addr) ? 0 : -1;
}

/* The From header's value: the display name as is when it is a plain atom sequence, quoted when
 * it has specials, encoded words when it is not ASCII. Caller frees. */
static char *mail__from_header(const char *addr, const char *name)
{
    if (name[0] == '\0')
        return xasprintf("<%s>", addr);
    char *clean = mail__clean_text(name, 256), *out;
    if (!mail__is_plain_ascii(clean) || strstr(clean, "=?") != NULL) {
        char *enc = mail__header_encode(clean, strlen("From: "));
        out = xasprintf("%s <%s>", enc, addr);
        free(enc);
    } else if (strpbrk(clean, "()<>[]:;@\\,.\"") != NULL) {
        mail__sb_t q = {0};
        mail__sb_add(&q, "\"");
        for (const char *p = clean; *p; p++) {
            if (*p == '"' || *p == '\\')
                mail__sb_add(&q, "\\");
            mail__sb_addn(&q, p, 1);
        }
        mail__sb_add(&q, "\"");
        out = xasprintf("%s <%s>", q.p, addr);
        free(q.p);
    } else {
        out = xasprintf("%s <%s>", clean, addr);
    }
    free(clean);
    return out;
}

static int mail__user_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > MAIL__USER_ID_MAX)
        return 0;
    for (; *id; id++)
        if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') || (*id >= '0' && *id <= '9') ||
              *id == '.' || *id == '_' || *id == '-'))
            return 0;
    return 1;
}

/* RFC 5322 date of now, in UTC, with English names whatever the locale. */
static void mail__date(char *buf, size_t len)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int mail_conf_check(const mail_conf_t *c, char *err, size_t errlen)
{
    char addr[MAIL__ADDR_MAX + 1], name[256];
    if (c->url == NULL || (strncmp(c->url, "smtp://", 7) != 0 && strncmp(c->url, "smtps://", 8) != 0)) {
        snprintf(err, errlen, "SMTP_URL must start with smtp:// or smtps://");
        return -1;
    }
    for (const char *p = c->url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7F) {
            snprintf(err, errlen, "SMTP_URL holds a space or control character");
            return -1;
        }
    if (mail__parse_from(c->from, addr, sizeof(addr), name, sizeof(name)) != 0) {
        snprintf(err, errlen, "MAIL_FROM is not \"address\" or \"Name <address>\": %s",
                 c->from ? c->from : "(none)");
        return -1;
    }
    const char *strs[] = {c->user, c->password, c->product};
    for (size_t i = 0; i < CORE_ARRAY_SIZE(strs); i++)
        for (const char *p = strs[i]; p != NULL && *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7F) {
                snprintf(err, errlen,
                         "SMTP_USER, SMTP_PASSWORD or the product name holds a control character");
                return -1;
            }
    return 0;
}

/* ================================================================ the message */

/* The texts of the mail; each string is already made safe for where it goes. */
typedef struct {
    char *subject; /* header-encoded */
    char *text;    /* text/plain body, CRLF lines */
    char *html;    /* text/html body */
} mail__welcome_t;

static void mail__welcome_build(mail__welcome_t *w, const char *product_in, const char *username_in,
                                const char *name_in)
{
    char *product = mail__clean_text(product_in && *product_in ? product_in : "Photo", MAIL__NAME_MAX_CP);
    char *username = mail__clean_text(username_in, MAIL__NAME_MAX_CP);
    char *name = mail__clean_text(name_in, MAIL__NAME_MAX_CP);
    /* Whom we greet: the name, else @username. */
    char *greet = name[0] ? xstrdup(name) : xasprintf("@%s", username);

    char *subject = xasprintf("Welcome to %s, %s!", product, greet);
    w->subject = mail__header_encode(subject, strlen("Subject: "));
    free(subject);

    w->text = xasprintf("Hi %s,\r\n"
                        "\r\n"
                        "welcome to %s! Your account @%s is ready.\r\n"
                        "\r\n"
                        "Post your first photo, follow people you know, and see what they share.\r\n"
                        "\r\n"
                        "You get this e-mail because someone signed up to %s with this address.\r\n"
                        "If it was not you, you can ignore it.\r\n"
                        "\r\n"
                        "-- The %s team\r\n",
                        greet, product, username, product, product);

    char *h_product = mail__html_escape(product), *h_username = mail__html_escape(username);
    char *h_greet = mail__html_escape(greet);
    w->html =
        xasprintf("<!DOCTYPE html>\r\n"
                  "<html><head><meta charset=\"utf-8\"><title>Welcome to %s</title></head>\r\n"
                  "<body>\r\n"
                  "<p>Hi %s,</p>\r\n"
                  "<p>welcome to %s! Your account <b>@%s</b> is ready.</p>\r\n"
                  "<p>Post your first photo, follow people you know, and see what they share.</p>\r\n"
                  "<p style=\"color:#666;font-size:smaller\">You get this e-mail because someone signed "
                  "up to %s with this address. If it was not you, you can ignore it.</p>\r\n"
                  "<p>&mdash; The %s team</p>\r\n"
                  "</body></html>\r\n",
                  h_product, h_greet, h_product, h_username, h_product, h_product);
    free(h_product);
    free(h_username);
    free(h_greet);
    free(greet);
    free(name);
    free(username);
    free(product);
}

static void mail__welcome_free(mail__welcome_t *w)
{
    free(w->subject);
    free(w->text);
    free(w->html);
}

/* ================================================================ the SMTP answer */

typedef enum {
    MAIL__ST_GREETING = 0,
    MAIL__ST_EHLO,
    MAIL__ST_STARTTLS,
    MAIL__ST_AUTH,
    MAIL__ST_MAIL,
    MAIL__ST_RCPT,
    MAIL__ST_DATA,
    MAIL__ST_MESSAGE, /* after 354: the answer to the end of the message */
    MAIL__ST_QUIT,
    MAIL__ST_OTHER,
} mail__stage_t;

static const char *const mail__stage_names[] = {
    "greeting", "EHLO/HELO", "STARTTLS", "AUTH", "MAIL FROM", "RCPT TO", "DATA", "message", "QUIT", "command",
};

/* What the protocol trace told us: the command being answered, the last error reply. */
typedef struct {
    mail__stage_t stage;
    int fail_code; /* last reply >= 400 with nothing accepted since, else 0 */
    mail__stage_t fail_stage;
    char fail_text[MAIL__REPLY_MAX];
    char last_text[MAIL__REPLY_MAX]; /* the last final reply line */
} mail__trace_t;

/* A reply line without its line end and with anything unprintable made '?'. */
static void mail__copy_line(char *dst, size_t dstlen, const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && i + 1 < dstlen && s[i] != '\r' && s[i] != '\n'; i++)
        dst[i] = ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7F) ? '?' : s[i];
    dst[i] = '\0';
}

static void mail__trace_out(mail__trace_t *t, const char *s, size_t n)
{
    static const struct {
        const char *verb;
        mail__stage_t stage;
    } verbs[] = {
        {"EHLO ", MAIL__ST_EHLO}, {"HELO ", MAIL__ST_EHLO}, {"STARTTLS", MAIL__ST_STARTTLS},
        {"AUTH ", MAIL__ST_AUTH}, {"MAIL ", MAIL__ST_MAIL}, {"RCPT ", MAIL__ST_RCPT},
        {"DATA", MAIL__ST_DATA},  {"QUIT", MAIL__ST_QUIT},  {"RSET", MAIL__ST_OTHER},
        {"NOOP", MAIL__ST_OTHER},
    };
    for (size_t i = 0; i < CORE_ARRAY_SIZE(verbs); i++) {
        size_t vl = strlen(verbs[i].verb);
        if (n < vl || strncasecmp(s, verbs[i].verb, vl) != 0)
            continue;
        /* Verbs without arguments must end the line: an AUTH exchange's base64 lines never
         * hold a space, but one could read "DATA". */
        if (verbs[i].verb[vl - 1] != ' ' && t->stage == MAIL__ST_AUTH)
            continue;
        t->stage = verbs[i].stage;
        return;
    }
}

static void mail__trace_in(mail__trace_t *t, const char *s, size_t n)
{
    if (n < 3 || s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9')
        return;
    if (n > 3 && s[3] == '-')
        return; /* not the last line of a multi-line reply */
    int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    mail__copy_line(t->last_text, sizeof(t->last_text), s, n);
    if (t->stage == MAIL__ST_QUIT)
        return; /* what QUIT gets says nothing about the message */
    if (code >= 400) {
        /* A server without ESMTP refuses EHLO and curl says HELO: not a failure yet. */
        if (t->stage == MAIL__ST_EHLO && code >= 500 && code != 554)
            return;
        t->fail_code = code;
        t->fail_stage = t->stage;
        mail__copy_line(t->fail_text, sizeof(t->fail_text), s, n);
    } else {
        t->fail_code = 0;
        if (code == 354 && t->stage == MAIL__ST_DATA)
            t->stage = MAIL__ST_MESSAGE;
    }
}

static int mail__debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *userp)
{
    (void)h;
    mail__trace_t *t = userp;
    if (type == CURLINFO_HEADER_OUT)
        mail__trace_out(t, data, size);
    else if (type == CURLINFO_HEADER_IN)
        mail__trace_in(t, data, size);
    return 0;
}

/* The result for curl's rc and the trace; words into err. */
static mail_result_t mail__classify(CURLcode rc, const mail__trace_t *t, long resp, const char *curlerr,
                                    char *err, size_t errlen)
{
    if (rc == CURLE_OK) {
        snprintf(err, errlen, "sent: %s", t->last_text);
        return MAIL_SENT;
    }
    const char *stage = mail__stage_names[t->fail_stage];
    int code = t->fail_code;
    if (code >= 400 && code < 500) {
        snprintf(err, errlen, "%s deferred: %s", stage, t->fail_text);
        return MAIL_RETRY;
    }
    if (code >= 500 && (rc == CURLE_SEND_ERROR || rc == CURLE_WEIRD_SERVER_REPLY)) {
        if (t->fail_stage == MAIL__ST_RCPT || t->fail_stage == MAIL__ST_DATA ||
            t->fail_stage == MAIL__ST_MESSAGE || (t->fail_stage == MAIL__ST_MAIL && code == 552)) {
            snprintf(err, errlen, "%s refused: %s", stage, t->fail_text);
            return MAIL_REJECTED;
        }
    }
    if (code >= 500) {
        const char *check = t->fail_stage == MAIL__ST_AUTH   ? "SMTP_USER and SMTP_PASSWORD"
                            : t->fail_stage == MAIL__ST_MAIL ? "MAIL_FROM and SMTP_USER"
                                                             : "SMTP_URL";
        snprintf(err, errlen, "%s refused, the same for every message (check %s): %s", stage, check,
                 t->fail_text);
        return MAIL_RETRY;
    }
    if (rc == CURLE_LOGIN_DENIED) {
        snprintf(err, errlen, "authentication refused (check SMTP_USER, SMTP_PASSWORD): %s", curlerr);
        return MAIL_RETRY;
    }
    if (resp != 0)
        snprintf(err, errlen, "%s: %s (last reply %ld)", curl_easy_strerror(rc), curlerr, resp);
    else
        snprintf(err, errlen, "%s: %s", curl_easy_strerror(rc), curlerr);
    return MAIL_RETRY;
}

/* ================================================================ sending */

/* Appends a printf-formatted line to *l (curl copies it). */
__attribute__((format(printf, 2, 3))) static void mail__slist_addf(struct curl_slist **l, const char *fmt,
                                                                   ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    struct curl_slist *n = curl_slist_append(*l, s);
    CORE_ASSERT(n != NULL); /* out of memory */
    *l = n;
    free(s);
}

mail_result_t mail_send_welcome(const mail_conf_t *c, const char *to, const char *username, const char *name,
                                const char *user_id, char *err, size_t errlen)
{
    mail_result_t r = MAIL_RETRY;
    CURL *h = NULL;
    curl_mime *mime = NULL;
    struct curl_slist *rcpt = NULL, *hdrs = NULL;
    char *line = NULL, *from_hdr = NULL; /* line: MAIL FROM's "<addr>" */
    mail__welcome_t w = {0};
    mail__trace_t trace = {0};
    char curlerr[CURL_ERROR_SIZE] = "";
    char from_addr[MAIL__ADDR_MAX + 1], from_name[256], date[64];
    char dummy[1];
    if (err == NULL || errlen == 0)
        err = dummy, errlen = sizeof(dummy);
    err[0] = '\0';

    if (!mail__address_ok(to)) {
        snprintf(err, errlen, "not an address we can send to");
        r = MAIL_REJECTED;
        goto out;
    }
    if (!mail__user_id_ok(user_id)) {
        snprintf(err, errlen, "bad user id (want [A-Za-z0-9._-]{1,%d})", MAIL__USER_ID_MAX);
        r = MAIL_REJECTED;
        goto out;
    }
    if (mail__parse_from(c->from, from_addr, sizeof(from_addr), from_name, sizeof(from_name)) != 0) {
        snprintf(err, errlen, "MAIL_FROM is not \"address\" or \"Name <address>\"");
        goto out;
    }
    pthread_once(&mail__global_once, mail__global_init);
    if (mail__global_rc != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init: %s", curl_easy_strerror(mail__global_rc));
        goto out;
    }
    h = curl_easy_init();
    CORE_ASSERT(h != NULL); /* out of memory */

    mail__welcome_build(&w, c->product, username, name);
    from_hdr = mail__from_header(from_addr, from_name);
    mail__date(date, sizeof(date));
    const char *domain = strrchr(from_addr, '@') + 1;

    mail__slist_addf(&hdrs, "From: %s", from_hdr);
    mail__slist_addf(&hdrs, "To: <%s>", to);
    mail__slist_addf(&hdrs, "Subject: %s", w.subject);
    mail__slist_addf(&hdrs, "Date: %s", date);
    mail__slist_addf(&hdrs, "Message-ID: <welcome.%s@%s>", user_id, domain);
    mail__slist_addf(&hdrs, "MIME-Version: 1.0");
    mail__slist_addf(&hdrs, "Auto-Submitted: auto-generated");      /* RFC 3834: no auto-replies, please */
    mail__slist_addf(&hdrs, "Content-Type: multipart/alternative"); /* curl adds the boundary */

    /* Plain text first: RFC 2046 puts the preferred (richest) alternative last. */
    mime = curl_mime_init(h);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_data(part, w.text, CURL_ZERO_TERMINATED);
    curl_mime_type(part, "text/plain; charset=UTF-8");
    curl_mime_encoder(part, "quoted-printable");
    part = curl_mime_addpart(mime);
    curl_mime_data(part, w.html, CURL_ZERO_TERMINATED);
    curl_mime_type(part, "text/html; charset=UTF-8");
    curl_mime_encoder(part, "quoted-printable");

    mail__slist_addf(&rcpt, "<%s>", to);
    line = xasprintf("<%s>", from_addr);

    long timeout = (long)(c->timeout_ms ? c->timeout_ms : MAIL__DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_USE_SSL, (long)(c->starttls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
    if (c->user != NULL && c->user[0] != '\0') {
        curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->password ? c->password : "");
    }
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, line);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curlerr);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, mail__debug_cb);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &trace);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L); /* feeds the trace; nothing is printed */

    CURLcode rc = curl_easy_perform(h);
    long resp = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp);
    r = mail__classify(rc, &trace, resp, curlerr[0] ? curlerr : curl_easy_strerror(rc), err, errlen);

out:
    if (h != NULL)
        curl_easy_cleanup(h);
    curl_mime_free(mime);
    curl_slist_free_all(rcpt);
    curl_slist_free_all(hdrs);
    free(line);
    free(from_hdr);
    mail__welcome_free(&w);
    return r;
}
