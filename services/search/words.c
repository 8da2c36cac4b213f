/* words.c -- a query's words, and the FTS5 expressions made of them (never of the caller's text).
 *
 * A word is a run of letters, digits, marks and '_' holding a letter or a digit; a '#' or '@' right
 * before it (and after no word character) is kept as its kind. Each word goes into the expression
 * quoted, and a word cannot hold '"', so whatever the caller typed is searched as words. */
#include <glib.h>
#include <string.h>

#include "search.h"

static int words__char(gunichar c)
{
    return g_unichar_isalnum(c) || c == '_' || g_unichar_ismark(c);
}

/* Picks the words out of q (valid UTF-8). */
void words_split(const char *q, search_words_t *out)
{
    out->n = 0;
    const char *p = q;
    gunichar prev = 0;
    while (*p != '\0' && out->n < SEARCH_MAX_WORDS) {
        gunichar c = g_utf8_get_char(p);
        const char *next = g_utf8_next_char(p);
        char sigil = 0;
        if ((c == '#' || c == '@') && !words__char(prev) && *next != '\0' &&
            words__char(g_utf8_get_char(next))) {
            sigil = (char)c;
            prev = c;
            p = next;
            c = g_utf8_get_char(p);
            next = g_utf8_next_char(p);
        }
        if (!words__char(c)) {
            prev = c;
            p = next;
            continue;
        }
        const char *start = p;
        int alnum = 0;
        while (*p != '\0' && words__char(c = g_utf8_get_char(p))) {
            alnum |= g_unichar_isalnum(c);
            prev = c;
            p = g_utf8_next_char(p);
        }
        if (alnum) { /* a run of marks alone is no word */
            out->w[out->n].text = g_strndup(start, (gsize)(p - start));
            out->w[out->n++].sigil = sigil;
        }
    }
}

void words_free(search_words_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        g_free(w->w[i].text);
    w->n = 0;
}

char *words_fold(const char *s, long len)
{
    if (!g_utf8_validate(s, len, NULL))
        return NULL;
    char *folded = g_utf8_casefold(s, len);
    char *norm = g_utf8_normalize(folded, -1, G_NORMALIZE_NFKC);
    g_free(folded);
    return norm;
}

/* The FTS5 expression for posts: every word, and (two or more plain words) the
 * phrase of them in the caption as an alternative that matches the same posts and adds to the
 * rank of those holding the words in order. */
char *words_posts_match(const search_words_t *w)
{
    GString *m = g_string_new("(");
    size_t plain = 0;
    for (size_t i = 0; i < w->n; i++) {
        const char *col = w->w[i].sigil == '#' ? "tags : " : w->w[i].sigil == '@' ? "username : " : "";
        g_string_append_printf(m, "%s%s\"%s\"", i ? " " : "", col, w->w[i].text);
        plain += w->w[i].sigil == 0;
    }
    g_string_append_c(m, ')');
    if (plain >= 2 && plain == w->n) {
        g_string_append(m, " OR caption : \"");
        for (size_t i = 0; i < w->n; i++)
            g_string_append_printf(m, "%s%s", i ? " " : "", w->w[i].text);
        g_string_append_c(m, '"');
    }
    return g_string_free(m, FALSE);
}

/* Users: each word a prefix of a word of the username (only there for @word) or of the name. */
char *words_users_match(const search_words_t *w)
{
    GString *m = g_string_new("");
    for (size_t i = 0; i < w->n; i++)
        g_string_append_printf(m, "%s%s\"%s\"*", i ? " " : "", w->w[i].sigil == '@' ? "username : " : "",
                               w->w[i].text);
    return g_string_free(m, FALSE);
}

