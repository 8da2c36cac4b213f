/* text.c -- hashtags and @mentions in captions, with GLib's Unicode tables (NFKC, case folding). */
#include <string.h>

#include <glib.h>

#include "core/core.h"
#include "pub.h"

/* A character of a tag's run: letters, marks, digits and '_'. */
static int text__tag_char(gunichar c)
{
    return g_unichar_isalnum(c) || g_unichar_ismark(c) || c == '_';
}

static int text__name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

static void text__add_distinct(cJSON *arr, const char *s, int max)
{
    if (cJSON_GetArraySize(arr) >= max)
        return;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (strcmp(it->valuestring, s) == 0)
            return;
    }
    cJSON_AddItemToArray(arr, cJSON_CreateString(s));
}

/* The normal form of a tag's run of len bytes: NFKC of its case folding, itself NFKC (so that
 * folding cannot leave a non-normal string). Returns a g_malloc'd string or NULL (not a tag): the
 * normal form must itself be a tag (NFKC turns some letters into punctuation: U+0140 is "l" and a
 * middle dot), hold a letter, and have at most PUB_TAG_MAX_CHARS characters. So a stored tag is
 * its own normal form, and the list route finds it from its own text. */
static char *text__tag_normal(const char *run, size_t len)
{
    char *nfkc = g_utf8_normalize(run, (gssize)len, G_NORMALIZE_NFKC);
    char *folded = nfkc != NULL ? g_utf8_casefold(nfkc, -1) : NULL;
    char *out = folded != NULL ? g_utf8_normalize(folded, -1, G_NORMALIZE_NFKC) : NULL;
    g_free(nfkc);
    g_free(folded);
    int letter = 0, ok = out != NULL && out[0] != '\0' && g_utf8_strlen(out, -1) <= PUB_TAG_MAX_CHARS;
    for (const char *q = out; ok && *q != '\0'; q = g_utf8_next_char(q)) {
        gunichar c = g_utf8_get_char(q);
        ok = text__tag_char(c);
        letter |= g_unichar_isalpha(c);
    }
    if (!ok || !letter) {
        g_free(out);
        out = NULL;
    }
    return out;
}

cJSON *text_hashtags(const char *caption)
{
    cJSON *tags = cJSON_CreateArray();
    if (!g_utf8_validate(caption, -1, NULL))
        return tags;
    gunichar prev = 0;
    for (const char *q = caption; *q != '\0';) {
        gunichar c = g_utf8_get_char(q);
        const char *next = g_utf8_next_char(q);
        if (c == '#' && (prev == 0 || !text__tag_char(prev))) {
            const char *end = next;
            while (*end != '\0' && text__tag_char(g_utf8_get_char(end)))
                end = g_utf8_next_char(end);
            if (end > next) {
                char *tag = text__tag_normal(next, (size_t)(end - next));
                if (tag != NULL)
                    text__add_distinct(tags, tag, PUB_TAGS_MAX);
                g_free(tag);
                /* the run is consumed: "#a#b" is one tag "a" followed by text, not two */
                prev = g_utf8_get_char(g_utf8_prev_char(end));
                q = end;
                continue;
            }
        }
        prev = c;
        q = next;
    }
    return tags;
}

cJSON *text_mentions(const char *caption)
{
    cJSON *names = cJSON_CreateArray();
    size_t len = strlen(caption);
    for (size_t i = 0; i < len; i++) {
        if (caption[i] != '@')
            continue;
        if (i > 0) {
            /* after a letter or digit of any script, '@' is part of a word (an e-mail address) */
            const char *before = g_utf8_find_prev_char(caption, caption + i);
            gunichar b = before != NULL ? g_utf8_get_char(before) : 0;
            if (g_unichar_isalnum(b) || b == '_' || b == '.')
                continue;
        }
        size_t s = i + 1, e = s;
        while (e < len && text__name_char(caption[e]))
            e++;
        size_t n = e - s;
        while (n > 0 && caption[s + n - 1] == '.') /* "@alice." ends a sentence */
            n--;
        /* a longer run, or one followed by more of a word (non-ASCII letters), is not a name */
        int glued = e < len && (unsigned char)caption[e] >= 0x80 && g_unichar_isalnum(g_utf8_get_char(caption + e));
        if (n >= 3 && n <= PUB_USERNAME_MAX && !glued && e - s <= PUB_USERNAME_MAX) {
            char name[PUB_USERNAME_MAX + 1];
            for (size_t k = 0; k < n; k++)
                name[k] = (char)g_ascii_tolower(caption[s + k]);
            name[n] = '\0';
            text__add_distinct(names, name, PUB_MENTIONS_MAX);
        }
        i = e - 1;
    }
    return names;
}

int text_tag_normalize(const char *in, char *out, size_t outlen)
{
    if (in[0] == '#')
        in++;
    if (in[0] == '\0' || !g_utf8_validate(in, -1, NULL))
        return -1;
    for (const char *q = in; *q != '\0'; q = g_utf8_next_char(q))
        if (!text__tag_char(g_utf8_get_char(q)))
            return -1;
    char *tag = text__tag_normal(in, strlen(in));
    int rc = -1;
    if (tag != NULL && strlen(tag) < outlen) {
        strcpy(out, tag);
        rc = 0;
    }
    g_free(tag);
    return rc;
}

int text_has_content(const char *s)
{
    if (!g_utf8_validate(s, -1, NULL))
        return 0;
    for (const char *q = s; *q != '\0'; q = g_utf8_next_char(q)) {
        gunichar c = g_utf8_get_char(q);
        /* zero-width and format characters (U+200B, U+FEFF) are not content either */
        if (!g_unichar_isspace(c) && g_unichar_type(c) != G_UNICODE_FORMAT)
            return 1;
    }
    return 0;
}

int pub_id_valid(const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0'; i++)
        if (i >= PUB_ID_LEN || !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == PUB_ID_LEN;
}
