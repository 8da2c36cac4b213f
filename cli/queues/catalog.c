/* catalog.c -- what each queue of the suite is for, as `queues list` shows it (cli/queues/README.md
 * says the same at length; services/<daemon>/README.md are the source). */
#include <string.h>

#include "queues.h"

/* First match wins: exact names, then "prefix*" and "*suffix" patterns. */
static const struct {
    const char *name;
    const char *purpose;
} catalog[] = {
    {"auth.rpc", "RPC to auth: accounts, tokens, follow and block graph, devices"},
    {"auth.events", "events post.created/deleted: users' posts_count"},
    {"resize-image.rpc", "RPC to resize-image: uploads, media.get"},
    {"resize-image.events", "event user.deleted: the user's media and files"},
    {"publication.rpc", "RPC to publication: posts, comments, likes, feed, stories"},
    {"publication.events", "events user.*, follow.*, block.*: projections of users and graph"},
    {"publication.fanout", "work: post.created/deleted and fanout.batch into timelines"},
    {"notification.rpc", "RPC to notification: the inbox"},
    {"notification.events", "events that notify (likes, comments, follows, posts), devices"},
    {"notification.push", "work: push.job, pushes sent to FCM"},
    {"notification.mail", "event user.registered: the welcome e-mail"},
    {"search.rpc", "RPC to search: search, autocomplete"},
    {"search.events", "events of users, posts, likes, comments, follows, blocks: search documents"},
    {"search.sync.*", "one search copy's index sync (exclusive, exchange search.sync)"},
    {"echo.rpc", "RPC to echod, the test daemon"},
    {"*.rpc", "RPC requests (exchange rpc)"},
    {"*.dlq", "dead letters of a queue that is gone"},
};

static int catalog__match(const char *pattern, const char *name)
{
    size_t pl = strlen(pattern), nl = strlen(name);
    if (pl > 0 && pattern[pl - 1] == '*')
        return nl >= pl - 1 && strncmp(name, pattern, pl - 1) == 0;
    if (pattern[0] == '*')
        return nl >= pl - 1 && strcmp(name + nl - (pl - 1), pattern + 1) == 0;
    return strcmp(pattern, name) == 0;
}

const char *catalog_purpose(const char *queue)
{
    for (size_t i = 0; i < sizeof(catalog) / sizeof(catalog[0]); i++)
        if (catalog__match(catalog[i].name, queue))
            return catalog[i].purpose;
    return NULL;
}

int catalog_is_dlq(const char *name)
{
    size_t n = strlen(name), s = strlen(QUEUES_DLQ_SUFFIX);
    return n > s && strcmp(name + n - s, QUEUES_DLQ_SUFFIX) == 0;
}
