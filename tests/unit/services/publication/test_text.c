/* test_text.c -- hashtags and @mentions of captions, tag normal forms, blank text, id shapes. */
#include <criterion/criterion.h>

#include "../../../../services/publication/text.c"

/* The array as one string "a,b,c" for comparisons; caller frees. */
static char *joined(cJSON *arr)
{
    char *out = xstrdup("");
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        char *next = xasprintf("%s%s%s", out, out[0] != '\0' ? "," : "", it->valuestring);
        free(out);
        out = next;
    }
    cJSON_Delete(arr);
    return out;
}

static void tags_are(const char *caption, const char *want)
{
    char *got = joined(text_hashtags(caption));
    cr_assert_str_eq(got, want, "tags of \"%s\"", caption);
    free(got);
}

static void mentions_are(const char *caption, const char *want)
{
    char *got = joined(text_mentions(caption));
    cr_assert_str_eq(got, want, "mentions of \"%s\"", caption);
    free(got);
}

Test(hashtags, words_case_folded_distinct_in_order)
{
    tags_are("", "");
    tags_are("#Sunset at the #beach, #SUNSET again", "sunset,beach");
    tags_are("#a #b #a", "a,b");
    tags_are("start#not a tag, (#yes) #under_score", "yes,under_score");
    tags_are("#sun!#moon", "sun,moon"); /* '!' is not a tag character: "#moon" starts after it */
    tags_are("#a#b", "a");              /* the run "a" ends at '#', which then follows a tag character */
    tags_are("# #", "");
}

Test(hashtags, unicode_letters_nfkc_and_case_folding)
{
    tags_are("#Café #CAFÉ #cafe\xcc\x81", "café");                /* composed, upper, and e + U+0301 */
    tags_are("#Straße #STRASSE", "strasse");                     /* full case folding: ß is ss */
    tags_are("#\xef\xac\x81re", "fire");                         /* the ﬁ ligature is NFKC "fi" */
    tags_are("#東京 #Москва #مرحبا", "東京,москва,مرحبا");
    tags_are("#ｔｏｋｙｏ", "tokyo");                            /* fullwidth letters */
    tags_are("#\xc5\x80m #ok", "ok"); /* U+0140 is NFKC "l" + a middle dot: its normal form is no tag */
}

Test(hashtags, needs_a_letter_and_at_most_100_characters)
{
    tags_are("#123 #2024 #1st", "1st");
    char caption[256] = "#", want[128];
    memset(caption + 1, 'a', 100);
    strcpy(caption + 101, " #ok");
    memset(want, 'a', 100);
    strcpy(want + 100, ",ok");
    tags_are(caption, want);
    caption[101] = 'a'; /* 101 letters: not a tag */
    strcpy(caption + 102, " #ok");
    tags_are(caption, "ok");
}

Test(hashtags, at_most_thirty)
{
    char caption[1024] = "";
    for (int i = 0; i < 40; i++)
        sprintf(caption + strlen(caption), "#t%02d ", i);
    cJSON *tags = text_hashtags(caption);
    cr_assert_eq(cJSON_GetArraySize(tags), PUB_TAGS_MAX);
    cr_assert_str_eq(cJSON_GetArrayItem(tags, 0)->valuestring, "t00");
    cr_assert_str_eq(cJSON_GetArrayItem(tags, 29)->valuestring, "t29");
    cJSON_Delete(tags);
}

Test(mentions, names_lower_cased_distinct_in_order)
{
    mentions_are("hi @Alice and @bob_1, @ALICE again", "alice,bob_1");
    mentions_are("mail me at me@example.com", "");
    mentions_are("@ab is too short, @abc is fine.", "abc");
    mentions_are("thanks @alice.", "alice");
    mentions_are("@a.b.c @x_y", "a.b.c,x_y");
    mentions_are("(@carol) @dave!", "carol,dave");
    mentions_are("@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ""); /* 31 characters */
    mentions_are("@bob\xc3\xa9", "");                     /* glued to a letter that no name has */
}

Test(tags, path_normal_form)
{
    char out[512];
    cr_assert_eq(text_tag_normalize("Sunset", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "sunset");
    cr_assert_eq(text_tag_normalize("#CAFÉ", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "café");
    cr_assert_eq(text_tag_normalize("", out, sizeof(out)), -1);
    cr_assert_eq(text_tag_normalize("#", out, sizeof(out)), -1);
    cr_assert_eq(text_tag_normalize("2024", out, sizeof(out)), -1);
    cr_assert_eq(text_tag_normalize("two words", out, sizeof(out)), -1);
    cr_assert_eq(text_tag_normalize("\xff\xfe", out, sizeof(out)), -1);
}

Test(text, content_and_ids)
{
    cr_assert(text_has_content("x"));
    cr_assert(text_has_content("  é "));
    cr_assert_not(text_has_content(""));
    cr_assert_not(text_has_content(" \t\n\xe2\x80\x83"));     /* an em space */
    cr_assert_not(text_has_content("\xe2\x80\x8b\xef\xbb\xbf")); /* zero-width space, BOM */
    cr_assert(pub_id_valid("6b021814813e897da70dbf11"));
    cr_assert_not(pub_id_valid("6B021814813E897DA70DBF11"));
    cr_assert_not(pub_id_valid("6b021814813e897da70dbf1"));
    cr_assert_not(pub_id_valid("6b021814813e897da70dbf111"));
    cr_assert_not(pub_id_valid("6b021814813e897da70dbf1g"));
    cr_assert_not(pub_id_valid(""));
}
