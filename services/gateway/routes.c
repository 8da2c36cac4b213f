/* routes.c -- the declarative route table: METHOD /path/{param} -> service RPC, auth, limits. */
#include <string.h>

#include "core/core.h"
#include "gateway.h"

#define KiB 1024
#define MiB (1024 * 1024)

/* Every /v1 route of API.md, as its issue lands. A route names the service that serves it and
 * the RPC method; /readyz pings each service named here. */
static const gw_route_t gw__table[] = {
    /* Accounts and graph (auth). */
    {"POST", "/v1/auth/register", "auth", "auth.register", GW_AUTH_NONE, 16 * KiB, 0, 0},
    {"POST", "/v1/auth/login", "auth", "auth.login", GW_AUTH_NONE, 16 * KiB, 0, 0},
    {"POST", "/v1/auth/refresh", "auth", "auth.refresh", GW_AUTH_NONE, 16 * KiB, 0, 0},
    {"POST", "/v1/auth/logout", "auth", "auth.logout", GW_AUTH_NONE, 16 * KiB, 0, 0},
    {"GET", "/v1/me", "auth", "auth.me_get", GW_AUTH_REQUIRED, 0, 0, 0},
    {"PATCH", "/v1/me", "auth", "auth.me_update", GW_AUTH_REQUIRED, 16 * KiB, 0, 0},
    {"DELETE", "/v1/me", "auth", "auth.me_delete", GW_AUTH_REQUIRED, 0, 0, 0},
    {"POST", "/v1/me/devices", "auth", "auth.device_add", GW_AUTH_REQUIRED, 16 * KiB, 0, 0},
    {"DELETE", "/v1/me/devices/{token}", "auth", "auth.device_remove", GW_AUTH_REQUIRED, 0, 0, 0},
    {"GET", "/v1/users/{username}", "auth", "auth.user_get", GW_AUTH_OPTIONAL, 0, 0, 0},
    {"GET", "/v1/users/{username}/followers", "auth", "auth.followers", GW_AUTH_OPTIONAL, 0, 0, 0},
    {"GET", "/v1/users/{username}/following", "auth", "auth.following", GW_AUTH_OPTIONAL, 0, 0, 0},
    {"POST", "/v1/users/{username}/follow", "auth", "auth.follow", GW_AUTH_REQUIRED, 0, 0, 0},
    {"DELETE", "/v1/users/{username}/follow", "auth", "auth.unfollow", GW_AUTH_REQUIRED, 0, 0, 0},
    {"POST", "/v1/users/{username}/block", "auth", "auth.block", GW_AUTH_REQUIRED, 0, 0, 0},
    {"DELETE", "/v1/users/{username}/block", "auth", "auth.unblock", GW_AUTH_REQUIRED, 0, 0, 0},

    /* Media (resize-image): a 20 MiB image plus room for its multipart envelope; decoding and
     * encoding every variant of a large photo takes seconds, not the default 5. */
    {"POST", "/v1/media", "resize-image", "media.upload", GW_AUTH_REQUIRED, 20 * MiB + 64 * KiB, 30000, 0},
    {"GET", "/v1/media/{id}", "resize-image", "media.show", GW_AUTH_REQUIRED, 0, 0, 0},

    /* Posts, comments, likes (publication). Reads are open to anonymous callers. */
    {"POST", "/v1/posts", "publication", "publication.post_create", GW_AUTH_REQUIRED, 64 * KiB, 0, 0},
    {"GET", "/v1/posts/{id}", "publication", "publication.post_get", GW_AUTH_OPTIONAL, 0, 0, 0},
    {"PATCH", "/v1/posts/{id}", "publication", "publication.post_update", GW_AUTH_REQUIRED, 64 * KiB, 0, 0},
    {"DELETE", "/v1/posts/{id}", "publication", "publication.post_delete", GW_AUTH_REQUIRED, 0, 0, 0},
    {"GET", "/v1/users/{username}/posts", "publication", "publication.user_posts", GW_AUTH_OPTIONAL, 0, 0, 0},
    {"GET", "/v1/tags/{tag}/posts", "publication", "publication.tag_posts", GW_AUTH_OPTIONAL, 0, 0, 0},
    {"GET", "/v1/posts/{id}/comments", "publication", "publication.comments_list", GW_AUTH_OPTIONAL, 0, 0, 0},
    {"POST", "/v1/posts/{id}/comments", "publication", "publication.comment_create", GW_AUTH_REQUIRED,
     16 * KiB, 0, 0},
    {"GET", "/v1/comments/{id}", "publication", "publication.comment_get", GW_AUTH_OPTIONAL, 0, 0, 0},
    {"PATCH", "/v1/comments/{id}", "publication", "publication.comment_update", GW_AUTH_REQUIRED, 16 * KiB, 0,
     0},
    {"DELETE", "/v1/comments/{id}", "publication", "publication.comment_delete", GW_AUTH_REQUIRED, 0, 0, 0},
    {"POST", "/v1/posts/{id}/like", "publication", "publication.post_like", GW_AUTH_REQUIRED, 0, 0, 0},
    {"DELETE", "/v1/posts/{id}/like", "publication", "publication.post_unlike", GW_AUTH_REQUIRED, 0, 0, 0},
    {"POST", "/v1/comments/{id}/like", "publication", "publication.comment_like", GW_AUTH_REQUIRED, 0, 0, 0},
    {"DELETE", "/v1/comments/{id}/like", "publication", "publication.comment_unlike", GW_AUTH_REQUIRED, 0, 0,
     0},
    {"GET", "/v1/posts/{id}/likes", "publication", "publication.post_likes", GW_AUTH_OPTIONAL, 0, 0, 0},
    /* Home feed, stories, highlights (publication). */
    {"GET", "/v1/feed", "publication", "publication.feed", GW_AUTH_REQUIRED, 0, 0, 0},
    {"POST", "/v1/stories", "publication", "publication.story_create", GW_AUTH_REQUIRED, 4 * KiB, 0, 0},
    {"GET", "/v1/stories/feed", "publication", "publication.stories_feed", GW_AUTH_REQUIRED, 0, 0, 0},
    {"DELETE", "/v1/stories/{id}", "publication", "publication.story_delete", GW_AUTH_REQUIRED, 0, 0, 0},
    {"POST", "/v1/stories/{id}/seen", "publication", "publication.story_seen", GW_AUTH_REQUIRED, 0, 0, 0},
    {"GET", "/v1/users/{username}/stories", "publication", "publication.user_stories", GW_AUTH_OPTIONAL, 0, 0,
     0},
    {"POST", "/v1/highlights", "publication", "publication.highlight_create", GW_AUTH_REQUIRED, 16 * KiB, 0,
     0},
    {"GET", "/v1/users/{username}/highlights", "publication", "publication.user_highlights", GW_AUTH_OPTIONAL,
     0, 0, 0},
    {"DELETE", "/v1/highlights/{id}", "publication", "publication.highlight_delete", GW_AUTH_REQUIRED, 0, 0,
     0},
    /* Notifications (notification). */
    {"GET", "/v1/notifications", "notification", "notification.list", GW_AUTH_REQUIRED, 0, 0, 0},
    {"GET", "/v1/notifications/unread_count", "notification", "notification.unread_count", GW_AUTH_REQUIRED, 0,
     0, 0},
    {"POST", "/v1/notifications/read_all", "notification", "notification.read_all", GW_AUTH_REQUIRED, 0, 0, 0},
    {"PATCH", "/v1/notifications/{id}", "notification", "notification.mark", GW_AUTH_REQUIRED, 4 * KiB, 0, 0},
    /* Search (search): anonymous callers are served too, without block filtering. */
    {"GET", "/v1/search", "search", "search.search", GW_AUTH_OPTIONAL, 0, 0, 0},
    {"GET", "/v1/search/autocomplete", "search", "search.autocomplete", GW_AUTH_OPTIONAL, 0, 0, 0},
    /* Test and benchmark routes, served by tests/echod; only with GATEWAY_DEBUG_ROUTES=true. */
    {"GET", "/v1/debug/echo", "echo", "echo.echo", GW_AUTH_REQUIRED, 0, 0, 1},
    {"POST", "/v1/debug/echo", "echo", "echo.echo", GW_AUTH_REQUIRED, 64 * KiB, 0, 1},
    {"GET", "/v1/debug/public/{name}", "echo", "echo.echo", GW_AUTH_OPTIONAL, 0, 0, 1},
    {"GET", "/v1/debug/sleep", "echo", "echo.sleep", GW_AUTH_NONE, 0, 1000, 1},
    {"GET", "/v1/debug/status", "echo", "echo.status", GW_AUTH_NONE, 0, 0, 1},
    {"GET", "/v1/debug/nobody", "nobody", "nobody.echo", GW_AUTH_NONE, 0, 0, 2},
};

#define GW__MAX_SEGS 12

typedef struct {
    const gw_route_t *route;
    size_t nsegs;
    const char *segs[GW__MAX_SEGS]; /* literal, or NULL for a parameter */
    size_t seglens[GW__MAX_SEGS];
    const char *pnames[GW_MAX_PARAMS];
} gw__compiled_t;

static gw__compiled_t gw__routes[CORE_ARRAY_SIZE(gw__table)];
static size_t gw__nroutes;
static const char *gw__services[CORE_ARRAY_SIZE(gw__table) + 1];
static char gw__pname_store[CORE_ARRAY_SIZE(gw__table)][GW_MAX_PARAMS][32];

void gw_routes_init(int debug_routes)
{
    CORE_ASSERT(gw__nroutes == 0); /* once: the compiled table is static */
    size_t nservices = 0;
    for (size_t i = 0; i < CORE_ARRAY_SIZE(gw__table); i++) {
        const gw_route_t *r = &gw__table[i];
        /* debug == 2: a route to a service that never exists (503 tests); not pinged by /readyz */
        if (r->debug && !debug_routes)
            continue;
        gw__compiled_t *c = &gw__routes[gw__nroutes];
        c->route = r;
        size_t np = 0;
        const char *p = r->pattern + 1;
        while (*p != '\0') {
            const char *end = strchr(p, '/');
            size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
            CORE_ASSERT(c->nsegs < GW__MAX_SEGS);
            if (p[0] == '{') {
                CORE_ASSERT(np < GW_MAX_PARAMS && len - 2 < 32);
                memcpy(gw__pname_store[gw__nroutes][np], p + 1, len - 2);
                c->pnames[np] = gw__pname_store[gw__nroutes][np];
                np++;
                c->segs[c->nsegs] = NULL;
            } else {
                c->segs[c->nsegs] = p;
                c->seglens[c->nsegs] = len;
            }
            c->nsegs++;
            p += len;
            if (*p == '/')
                p++;
        }
        gw__nroutes++;
        if (r->debug == 2)
            continue;
        size_t k = 0;
        while (k < nservices && strcmp(gw__services[k], r->service) != 0)
            k++;
        if (k == nservices)
            gw__services[nservices++] = r->service;
    }
    gw__services[nservices] = NULL;
}

const char *const *gw_routes_services(void)
{
    return gw__services;
}

size_t gw_routes_max_body(size_t default_max)
{
    size_t m = default_max;
    for (size_t i = 0; i < gw__nroutes; i++)
        if (gw__routes[i].route->max_body > m)
            m = gw__routes[i].route->max_body;
    return m;
}

/* Copies a path segment into the pool. h2o's normalised path is already percent-decoded
 * (decoding again would turn "%2541" into "A"), so this only refuses control characters. */
static char *gw__param(h2o_mem_pool_t *pool, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return NULL;
    char *out = h2o_mem_alloc_pool(pool, len + 1);
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

/* The number of literal segments of route c if it matches the path's segments, else SIZE_MAX. */
static size_t gw__literals_matching(const gw__compiled_t *c, const char *const *segs, const size_t *lens,
                                    size_t nsegs)
{
    if (c->nsegs != nsegs)
        return SIZE_MAX;
    size_t lit = 0;
    for (size_t s = 0; s < nsegs; s++) {
        if (c->segs[s] == NULL)
            continue;
        if (c->seglens[s] != lens[s] || memcmp(c->segs[s], segs[s], lens[s]) != 0)
            return SIZE_MAX;
        lit++;
    }
    return lit;
}

int gw_routes_match(h2o_mem_pool_t *pool, const char *method, size_t mlen, const char *path, size_t plen,
                    gw_match_t *m, h2o_iovec_t *allow)
{
    const char *segs[GW__MAX_SEGS];
    size_t lens[GW__MAX_SEGS], nsegs = 0;
    if (plen == 0 || path[0] != '/')
        return GW_MATCH_NOT_FOUND;
    for (size_t i = 1; i <= plen;) {
        size_t j = i;
        while (j < plen && path[j] != '/')
            j++;
        if (j == i && j < plen)
            return GW_MATCH_NOT_FOUND; /* empty segment: "//" */
        if (j > i) {
            if (nsegs == GW__MAX_SEGS)
                return GW_MATCH_NOT_FOUND;
            segs[nsegs] = path + i;
            lens[nsegs++] = j - i;
        }
        i = j + 1;
    }
    /* As OpenAPI matches paths, a concrete path wins over a template: of the routes matching
     * the path, only those with the most literal segments count (GET /v1/stories/feed, not
     * DELETE /v1/stories/{id}, answers for /v1/stories/feed). */
    size_t best = 0;
    for (size_t r = 0; r < gw__nroutes; r++) {
        size_t lit = gw__literals_matching(&gw__routes[r], segs, lens, nsegs);
        if (lit != SIZE_MAX && lit > best)
            best = lit;
    }
    char allowed[128] = "";
    int path_matched = 0;
    for (size_t r = 0; r < gw__nroutes; r++) {
        const gw__compiled_t *c = &gw__routes[r];
        if (gw__literals_matching(c, segs, lens, nsegs) != best)
            continue;
        size_t s;
        if (strlen(c->route->method) != mlen || memcmp(c->route->method, method, mlen) != 0) {
            if (!path_matched || strstr(allowed, c->route->method) == NULL) {
                if (path_matched)
                    strncat(allowed, ", ", sizeof(allowed) - strlen(allowed) - 1);
                strncat(allowed, c->route->method, sizeof(allowed) - strlen(allowed) - 1);
            }
            path_matched = 1;
            continue;
        }
        m->route = c->route;
        m->nparams = 0;
        for (s = 0; s < nsegs; s++) {
            if (c->segs[s] != NULL)
                continue;
            char *v = gw__param(pool, segs[s], lens[s]);
            if (v == NULL)
                return GW_MATCH_BAD_PARAM;
            m->names[m->nparams] = c->pnames[m->nparams];
            m->values[m->nparams] = v;
            m->nparams++;
        }
        return GW_MATCH_OK;
    }
    if (path_matched) {
        if (allow != NULL)
            *allow = h2o_strdup(pool, allowed, SIZE_MAX);
        return GW_MATCH_BAD_METHOD;
    }
    return GW_MATCH_NOT_FOUND;
}
