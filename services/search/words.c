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

/* A post's phrase of one word: #word in the tags, @word in the username, others in any column. */
char *words_posts_phrase(const search_word_t *w)
{
    const char *col = w->sigil == '#' ? "tags : " : w->sigil == '@' ? "username : " : "";
    return g_strdup_printf("%s\"%s\"", col, w->text);
}

/* A user's phrase of one word: a prefix of a word of the username (only there for @word) or of the
 * name. */
char *words_users_phrase(const search_word_t *w)
{
    return g_strdup_printf("%s\"%s\"*", w->sigil == '@' ? "username : " : "", w->text);
}

/* Every word's phrase, in the query's order (phrase i of the expression is word i). */
static char *words__match(const search_words_t *w, char *(*phrase)(const search_word_t *))
{
    GString *m = g_string_new("");
    for (size_t i = 0; i < w->n; i++) {
        char *p = phrase(&w->w[i]);
        g_string_append_printf(m, "%s%s", i ? " " : "", p);
        g_free(p);
    }
    return g_string_free(m, FALSE);
}

char *words_posts_match(const search_words_t *w)
{
    return words__match(w, words_posts_phrase);
}

char *words_users_match(const search_words_t *w)
{
    return words__match(w, words_users_phrase);
}
