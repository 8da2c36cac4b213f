/* fuzz_caption.c -- libFuzzer target for the caption parsers (text.c): every caption and comment a
 * client sends goes through them, and their output goes to the database and to events. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../libs/core/core.c"
#include "../../services/publication/text.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Captions arrive NUL-terminated and valid UTF-8 (libs/json checks both); the parsers are also
     * given what is not, which they must survive. */
    char *caption = malloc(size + 1);
    FUZZ_CHECK(caption != NULL);
    memcpy(caption, data, size);
    caption[size] = '\0';

    cJSON *tags = text_hashtags(caption);
    FUZZ_CHECK(cJSON_GetArraySize(tags) <= PUB_TAGS_MAX);
    const cJSON *t;
    cJSON_ArrayForEach(t, tags)
    {
        const char *s = t->valuestring;
        FUZZ_CHECK(s != NULL && s[0] != '\0' && g_utf8_validate(s, -1, NULL));
        FUZZ_CHECK(g_utf8_strlen(s, -1) <= PUB_TAG_MAX_CHARS);
        /* a tag is its own normal form: the list route finds what the parser stored */
        char again[1024];
        FUZZ_CHECK(text_tag_normalize(s, again, sizeof(again)) == 0 && strcmp(again, s) == 0);
    }
    cJSON_Delete(tags);

    cJSON *names = text_mentions(caption);
    FUZZ_CHECK(cJSON_GetArraySize(names) <= PUB_MENTIONS_MAX);
    cJSON_ArrayForEach(t, names)
    {
        size_t n = strlen(t->valuestring);
        FUZZ_CHECK(n >= 3 && n <= PUB_USERNAME_MAX);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(strchr("abcdefghijklmnopqrstuvwxyz0123456789_.", t->valuestring[i]) != NULL);
    }
    cJSON_Delete(names);

    char out[256];
    (void)text_tag_normalize(caption, out, sizeof(out));
    (void)text_has_content(caption);
    (void)pub_id_valid(caption);
    free(caption);
    return 0;
}
