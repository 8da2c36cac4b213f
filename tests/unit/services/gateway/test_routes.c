/* test_routes.c -- the gateway's route table: literal and parameter matching, 404, 405 with Allow,
 * malformed parameters, debug routes, the services /readyz pings and the body cap. */

/* The file under test, with its static table and helpers (gateway.h comes along from its directory). */
#include "../../../../services/gateway/routes.c"

#include <criterion/criterion.h>
#include <h2o.h>
#include <stdint.h>
#include <string.h>

static h2o_mem_pool_t pool;

static void setup(void)
{
    h2o_mem_init_pool(&pool);
}

static void teardown(void)
{
    h2o_mem_clear_pool(&pool);
}

TestSuite(routes, .init = setup, .fini = teardown, .timeout = 10);

/* ================================================================ helpers */

/* Matches NUL-terminated method and path; m is cleared first. */
static int match(const char *method, const char *path, gw_match_t *m, h2o_iovec_t *allow)
{
    memset(m, 0, sizeof(*m));
    if (allow != NULL)
        *allow = h2o_iovec_init(NULL, 0);
    return gw_routes_match(&pool, method, strlen(method), path, strlen(path), m, allow);
}

/* Asserts path matches the route "method pattern" with no parameters. */
static void check_route(const char *method, const char *path, const char *pattern, const char *rpc)
{
    gw_match_t m;
    int rc = match(method, path, &m, NULL);
    cr_assert_eq(rc, GW_MATCH_OK, "%s %s: %d", method, path, rc);
    cr_assert_not_null(m.route, "%s %s", method, path);
    cr_assert_str_eq(m.route->method, method);
    cr_assert_str_eq(m.route->pattern, pattern, "%s %s matched %s", method, path, m.route->pattern);
    cr_assert_str_eq(m.route->rpc, rpc);
    cr_assert_eq(m.nparams, 0);
}

static void check_not_found(const char *method, const char *path)
{
    gw_match_t m;
    h2o_iovec_t allow;
    int rc = match(method, path, &m, &allow);
    cr_assert_eq(rc, GW_MATCH_NOT_FOUND, "%s \"%s\": %d, not 404", method, path, rc);
    cr_assert_null(allow.base, "%s %s: an Allow list with a 404", method, path);
}

/* Asserts a 405 whose Allow list is exactly want. */
static void check_bad_method(const char *method, const char *path, const char *want)
{
    gw_match_t m;
    h2o_iovec_t allow;
    int rc = match(method, path, &m, &allow);
    cr_assert_eq(rc, GW_MATCH_BAD_METHOD, "%s %s: %d, not 405", method, path, rc);
    cr_assert_not_null(allow.base, "%s %s: no Allow list", method, path);
    cr_assert_eq(allow.len, strlen(want), "%s %s: Allow \"%.*s\", want \"%s\"", method, path, (int)allow.len,
                 allow.base, want);
    cr_assert_eq(memcmp(allow.base, want, allow.len), 0, "%s %s: Allow \"%.*s\", want \"%s\"", method, path,
                 (int)allow.len, allow.base, want);
}

/* A parameter route must refuse the one-segment value (len bytes) as a bad parameter. */
static void check_bad_param(const char *value, size_t len)
{
    char path[64] = "/v1/debug/public/";
    size_t plen = strlen(path);
    memcpy(path + plen, value, len);
    plen += len;
    gw_match_t m = {0};
    int rc = gw_routes_match(&pool, "GET", 3, path, plen, &m, NULL);
    cr_assert_eq(rc, GW_MATCH_BAD_PARAM, "value with byte 0x%02x: %d, not a bad parameter",
                 (unsigned char)value[1], rc);
    /* The route is known (the gateway labels the 400 with it). */
    cr_assert_not_null(m.route);
    cr_assert_str_eq(m.route->pattern, "/v1/debug/public/{name}");
}

/* ================================================================ matching */

Test(routes, literal_routes_match_their_method_and_path)
{
    gw_routes_init(1);
    check_route("GET", "/v1/debug/echo", "/v1/debug/echo", "echo.echo");
    check_route("POST", "/v1/debug/echo", "/v1/debug/echo", "echo.echo");
    check_route("GET", "/v1/debug/sleep", "/v1/debug/sleep", "echo.sleep");
    check_route("GET", "/v1/debug/status", "/v1/debug/status", "echo.status");
    check_route("GET", "/v1/debug/nobody", "/v1/debug/nobody", "nobody.echo");

    gw_match_t m;
    cr_assert_eq(match("GET", "/v1/debug/echo", &m, NULL), GW_MATCH_OK);
    cr_assert_str_eq(m.route->service, "echo");
    cr_assert_eq(m.route->auth, GW_AUTH_REQUIRED);
    cr_assert_eq(m.route->max_body, 0);
    cr_assert_eq(match("POST", "/v1/debug/echo", &m, NULL), GW_MATCH_OK);
    cr_assert_eq(m.route->max_body, 64 * 1024);
    cr_assert_eq(match("GET", "/v1/debug/sleep", &m, NULL), GW_MATCH_OK);
    cr_assert_eq(m.route->auth, GW_AUTH_NONE);
    cr_assert_eq(m.route->timeout_ms, 1000);
    cr_assert_eq(match("GET", "/v1/debug/nobody", &m, NULL), GW_MATCH_OK);
    cr_assert_str_eq(m.route->service, "nobody");
}

Test(routes, method_and_path_are_length_delimited)
{
    gw_routes_init(1);
    gw_match_t m = {0};
    /* Neither buffer is NUL-terminated at the given length. */
    const char method[] = "GETX", path[] = "/v1/debug/echoXYZ";
    cr_assert_eq(gw_routes_match(&pool, method, 3, path, strlen("/v1/debug/echo"), &m, NULL), GW_MATCH_OK);
    cr_assert_str_eq(m.route->pattern, "/v1/debug/echo");
    cr_assert_str_eq(m.route->method, "GET");
    const char pub[] = "/v1/debug/public/bobby";
    cr_assert_eq(gw_routes_match(&pool, "GET", 3, pub, strlen(pub) - 2, &m, NULL), GW_MATCH_OK);
    cr_assert_eq(m.nparams, 1);
    cr_assert_str_eq(m.values[0], "bob");
}

Test(routes, parameters_are_named_and_copied_into_the_pool)
{
    gw_routes_init(1);
    char path[] = "/v1/debug/public/alice";
    gw_match_t m = {0};
    cr_assert_eq(gw_routes_match(&pool, "GET", 3, path, strlen(path), &m, NULL), GW_MATCH_OK);
    cr_assert_str_eq(m.route->pattern, "/v1/debug/public/{name}");
    cr_assert_eq(m.route->auth, GW_AUTH_OPTIONAL);
    cr_assert_eq(m.nparams, 1);
    cr_assert_str_eq(m.names[0], "name");
    cr_assert_str_eq(m.values[0], "alice");
    /* A copy, not a pointer into the request's path. */
    cr_assert(m.values[0] < path || m.values[0] >= path + sizeof(path), "the value points into the path");
    memset(path, 'X', sizeof(path) - 1);
    cr_assert_str_eq(m.values[0], "alice");

    /* Each match gets its own copy. */
    gw_match_t m2 = {0};
    const char other[] = "/v1/debug/public/bob";
    cr_assert_eq(gw_routes_match(&pool, "GET", 3, other, strlen(other), &m2, NULL), GW_MATCH_OK);
    cr_assert_str_eq(m2.values[0], "bob");
    cr_assert_str_eq(m.values[0], "alice");
}

Test(routes, parameters_are_taken_as_they_come)
{
    gw_routes_init(1);
    gw_match_t m;
    /* The normalised path is already percent-decoded: nothing is decoded twice. */
    cr_assert_eq(match("GET", "/v1/debug/public/a%41", &m, NULL), GW_MATCH_OK);
    cr_assert_str_eq(m.values[0], "a%41");
    /* UTF-8, spaces and punctuation pass; only control characters are refused. */
    cr_assert_eq(match("GET", "/v1/debug/public/caf\xc3\xa9", &m, NULL), GW_MATCH_OK);
    cr_assert_str_eq(m.values[0], "caf\xc3\xa9");
    cr_assert_eq(match("GET", "/v1/debug/public/a b~!$&'()*+,;=:@.", &m, NULL), GW_MATCH_OK);
    cr_assert_str_eq(m.values[0], "a b~!$&'()*+,;=:@.");
    cr_assert_eq(match("GET", "/v1/debug/public/\xff\x80", &m, NULL), GW_MATCH_OK);
    cr_assert_str_eq(m.values[0], "\xff\x80");
    /* A parameter may look like a literal segment of another route. */
    cr_assert_eq(match("GET", "/v1/debug/public/echo", &m, NULL), GW_MATCH_OK);
    cr_assert_str_eq(m.route->pattern, "/v1/debug/public/{name}");
    cr_assert_str_eq(m.values[0], "echo");
    /* A long value (one segment) is fine. */
    char path[600] = "/v1/debug/public/";
    memset(path + strlen(path), 'v', 500);
    cr_assert_eq(match("GET", path, &m, NULL), GW_MATCH_OK);
    cr_assert_eq(strlen(m.values[0]), 500);
}

Test(routes, control_characters_in_a_parameter_are_refused)
{
    gw_routes_init(1);
    const unsigned char bad[] = {0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x7f};
    for (size_t i = 0; i < sizeof(bad); i++) {
        char v[3] = {'a', (char)bad[i], 'b'};
        check_bad_param(v, sizeof(v));
    }
    /* At either end, or alone. */
    check_bad_param("\x01zz", 3);
    check_bad_param("zz\x7f", 3);
    check_bad_param("\x00", 1);
    /* The first printable and the last ASCII byte before DEL pass. */
    gw_match_t m;
    cr_assert_eq(match("GET", "/v1/debug/public/ ~", &m, NULL), GW_MATCH_OK);
}

/* ================================================================ 404 */

Test(routes, unknown_paths_are_not_found)
{
    gw_routes_init(1);
    check_not_found("GET", "/v1/no/such/route");
    check_not_found("GET", "/nothing-here");
    check_not_found("GET", "/");
    check_not_found("GET", "");
    check_not_found("GET", "v1/debug/echo"); /* not absolute */
    check_not_found("GET", "/v1");
    check_not_found("GET", "/v1/debug");
    check_not_found("GET", "/v1/debug/echo/extra");
    check_not_found("GET", "/v1/debug/ECHO"); /* literals are case-sensitive */
    check_not_found("GET", "/V1/debug/echo");
    check_not_found("GET", "/v1/debug/ech");
    check_not_found("GET", "/v1/debug/echoo");
    check_not_found("GET", "/v1/debug/public");      /* the parameter is missing */
    check_not_found("GET", "/v1/debug/public/");     /* ... or empty */
    check_not_found("GET", "/v1/debug/public/a/b");  /* a value never spans segments */
    check_not_found("POST", "/v1/debug/public/a/b"); /* 404, not 405, for another method */
    check_not_found("GET", "/v2/debug/echo");
}

Test(routes, empty_segments_are_not_found)
{
    gw_routes_init(1);
    check_not_found("GET", "//v1/debug/echo");
    check_not_found("GET", "/v1//debug/echo");
    check_not_found("GET", "/v1/debug//echo");
    check_not_found("GET", "/v1/debug/echo//");
    check_not_found("GET", "//");
    check_not_found("GET", "/v1/debug//public/x");
    check_not_found("GET", "/v1/debug/public//x");
    check_not_found("GET", "/v1/debug/public/x//");
}

Test(routes, one_trailing_slash_is_tolerated)
{
    gw_routes_init(1);
    check_route("GET", "/v1/debug/echo/", "/v1/debug/echo", "echo.echo");
    check_route("POST", "/v1/debug/echo/", "/v1/debug/echo", "echo.echo");
    gw_match_t m;
    cr_assert_eq(match("GET", "/v1/debug/public/bob/", &m, NULL), GW_MATCH_OK);
    cr_assert_eq(m.nparams, 1);
    cr_assert_str_eq(m.values[0], "bob", "the trailing slash is not part of the value");
    check_bad_method("DELETE", "/v1/debug/echo/", "GET, POST");
}

Test(routes, too_many_segments_are_not_found)
{
    gw_routes_init(1);
    char path[256] = "";
    for (int i = 0; i < GW__MAX_SEGS; i++)
        strcat(path, "/s");
    check_not_found("GET", path); /* as many as allowed, but no such route */
    strcat(path, "/s");
    check_not_found("GET", path); /* one more */
    for (int i = 0; i < 50; i++)
        strcat(path, "/s");
    check_not_found("GET", path);
}

/* ================================================================ 405 */

Test(routes, other_methods_get_405_with_the_allow_list)
{
    gw_routes_init(1);
    check_bad_method("DELETE", "/v1/debug/echo", "GET, POST");
    check_bad_method("PUT", "/v1/debug/echo", "GET, POST");
    check_bad_method("HEAD", "/v1/debug/echo", "GET, POST");
    check_bad_method("get", "/v1/debug/echo", "GET, POST"); /* methods are case-sensitive */
    check_bad_method("GE", "/v1/debug/echo", "GET, POST");
    check_bad_method("GETS", "/v1/debug/echo", "GET, POST");
    check_bad_method("POST", "/v1/debug/sleep", "GET");
    check_bad_method("PATCH", "/v1/debug/public/x", "GET");
    check_bad_method("OPTIONS", "/v1/debug/status", "GET");
    /* A bad method wins over a bad parameter: the parameter is not looked at. */
    gw_match_t m;
    h2o_iovec_t allow;
    cr_assert_eq(gw_routes_match(&pool, "POST", 4, "/v1/debug/public/a\x01", 19, &m, &allow),
                 GW_MATCH_BAD_METHOD);
}

Test(routes, allow_lists_each_method_once)
{
    gw_routes_init(1);
    gw_match_t m;
    h2o_iovec_t allow;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(match("DELETE", "/v1/debug/echo", &m, &allow), GW_MATCH_BAD_METHOD);
        /* Count every method of the list. */
        char list[128];
        snprintf(list, sizeof(list), "%.*s", (int)allow.len, allow.base);
        int get = 0, post = 0, n = 0;
        for (char *save = NULL, *tok = strtok_r(list, ", ", &save); tok != NULL;
             tok = strtok_r(NULL, ", ", &save)) {
            n++;
            get += strcmp(tok, "GET") == 0;
            post += strcmp(tok, "POST") == 0;
        }
        cr_assert_eq(n, 2, "Allow: %.*s", (int)allow.len, allow.base);
        cr_assert_eq(get, 1);
        cr_assert_eq(post, 1);
    }
}

Test(routes, allow_is_optional)
{
    gw_routes_init(1);
    gw_match_t m = {0};
    cr_assert_eq(gw_routes_match(&pool, "DELETE", 6, "/v1/debug/echo", 14, &m, NULL), GW_MATCH_BAD_METHOD);
}

/* ================================================================ debug routes, services, body cap */

Test(routes, debug_routes_only_when_enabled)
{
    gw_routes_init(0);
    check_not_found("GET", "/v1/debug/echo");
    check_not_found("POST", "/v1/debug/echo");
    check_not_found("DELETE", "/v1/debug/echo");
    check_not_found("GET", "/v1/debug/public/x");
    check_not_found("GET", "/v1/debug/nobody");
    const char *const *services = gw_routes_services();
    cr_assert_not_null(services);
    for (size_t i = 0; services[i] != NULL; i++)
        cr_assert(strcmp(services[i], "echo") != 0 && strcmp(services[i], "nobody") != 0,
                  "debug service %s listed without debug routes", services[i]);
}

Test(routes, services_list_each_service_once_without_the_missing_one)
{
    gw_routes_init(1);
    const char *const *services = gw_routes_services();
    cr_assert_not_null(services);
    size_t n = 0, echo = 0; /* more services join as product routes land */
    for (; services[n] != NULL; n++) {
        cr_assert_str_neq(services[n], "nobody", "a debug == 2 route's service is pinged by /readyz");
        echo += strcmp(services[n], "echo") == 0;
        for (size_t j = 0; j < n; j++)
            cr_assert_str_neq(services[j], services[n], "%s listed twice", services[n]);
    }
    cr_assert_eq(echo, 1, "echo is listed %zu times", echo);
    /* The same static list on every call. */
    cr_assert_eq(gw_routes_services(), services);
}

#define MEDIA_CAP (20 * 1024 * 1024 + 64 * 1024) /* POST /v1/media: 20 MiB and its multipart envelope */

Test(routes, max_body_is_the_largest_enabled_cap)
{
    gw_routes_init(1);
    cr_assert_eq(gw_routes_max_body(1000), MEDIA_CAP, "no smaller route cap lowers it");
    cr_assert_eq(gw_routes_max_body(MEDIA_CAP + 1), MEDIA_CAP + 1, "a larger default raises it");
    cr_assert_eq(gw_routes_max_body(0), MEDIA_CAP);
}

Test(routes, max_body_without_debug_routes_is_the_largest_product_cap)
{
    gw_routes_init(0);
    cr_assert_eq(gw_routes_max_body(1000), MEDIA_CAP, "uploads are the largest bodies");
    cr_assert_eq(gw_routes_max_body(64 * 1024 * 1024), 64 * 1024 * 1024);
}

Test(routes, product_routes_and_their_methods)
{
    gw_routes_init(0);
    const char *const *services = gw_routes_services();
    cr_assert_str_eq(services[0], "auth");
    cr_assert_str_eq(services[1], "resize-image");
    cr_assert_str_eq(services[2], "publication");
    cr_assert_str_eq(services[3], "notification");
    cr_assert_str_eq(services[4], "search");
    cr_assert_null(services[5]);
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    static const struct {
        const char *method, *path, *rpc, *param;
    } cases[] = {
        {"POST", "/v1/auth/register", "auth.register", NULL},
        {"PATCH", "/v1/me", "auth.me_update", NULL},
        {"DELETE", "/v1/me/devices/fcm:AP-x_y", "auth.device_remove", "fcm:AP-x_y"},
        {"GET", "/v1/users/alice", "auth.user_get", "alice"},
        {"GET", "/v1/users/alice/following", "auth.following", "alice"},
        {"DELETE", "/v1/users/alice/block", "auth.unblock", "alice"},
        {"POST", "/v1/media", "media.upload", NULL},
        {"GET", "/v1/media/0123456789abcdef0123456789abcdef", "media.show",
         "0123456789abcdef0123456789abcdef"},
        {"POST", "/v1/posts", "publication.post_create", NULL},
        {"PATCH", "/v1/posts/65f0c0ffee0123456789abcd", "publication.post_update", "65f0c0ffee0123456789abcd"},
        {"GET", "/v1/users/alice/posts", "publication.user_posts", "alice"},
        {"GET", "/v1/tags/caf%C3%A9/posts", "publication.tag_posts", "caf%C3%A9"},
        {"POST", "/v1/posts/p1/comments", "publication.comment_create", "p1"},
        {"DELETE", "/v1/comments/c1", "publication.comment_delete", "c1"},
        {"DELETE", "/v1/comments/c1/like", "publication.comment_unlike", "c1"},
        {"POST", "/v1/posts/p1/like", "publication.post_like", "p1"},
        {"GET", "/v1/posts/p1/likes", "publication.post_likes", "p1"},
        {"GET", "/v1/feed", "publication.feed", NULL},
        {"GET", "/v1/stories/feed", "publication.stories_feed", NULL},
        {"POST", "/v1/stories/65f0c0ffee0123456789abcd/seen", "publication.story_seen", "65f0c0ffee0123456789abcd"},
        {"DELETE", "/v1/stories/s1", "publication.story_delete", "s1"},
        {"GET", "/v1/users/alice/stories", "publication.user_stories", "alice"},
        {"GET", "/v1/users/alice/highlights", "publication.user_highlights", "alice"},
        {"DELETE", "/v1/highlights/h1", "publication.highlight_delete", "h1"},
        {"GET", "/v1/notifications", "notification.list", NULL},
        {"GET", "/v1/notifications/unread_count", "notification.unread_count", NULL},
        {"POST", "/v1/notifications/read_all", "notification.read_all", NULL},
        {"PATCH", "/v1/notifications/0123456789abcdef01234567", "notification.mark", "0123456789abcdef01234567"},
        {"GET", "/v1/search", "search.search", NULL},
        {"GET", "/v1/search/autocomplete", "search.autocomplete", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_match_t m;
        h2o_iovec_t allow = {0};
        int rc = gw_routes_match(&pool, cases[i].method, strlen(cases[i].method), cases[i].path,
                                 strlen(cases[i].path), &m, &allow);
        cr_assert_eq(rc, GW_MATCH_OK, "%s %s", cases[i].method, cases[i].path);
        cr_assert_str_eq(m.route->rpc, cases[i].rpc);
        if (cases[i].param != NULL)
            cr_assert_str_eq(m.values[0], cases[i].param);
    }
    gw_match_t m;
    h2o_iovec_t allow = {0};
    cr_assert_eq(gw_routes_match(&pool, "PUT", 3, "/v1/me", 6, &m, &allow), GW_MATCH_BAD_METHOD);
    cr_assert(allow.len > 0 && memmem(allow.base, allow.len, "PATCH", 5) != NULL);
    /* a concrete path is not a notification id */
    cr_assert_eq(gw_routes_match(&pool, "PATCH", 5, "/v1/notifications/read_all", 26, &m, &allow),
                 GW_MATCH_BAD_METHOD);
    /* a concrete path wins over a template, as in OpenAPI: /v1/stories/feed is not a story id */
    allow = (h2o_iovec_t){0};
    cr_assert_eq(gw_routes_match(&pool, "DELETE", 6, "/v1/stories/feed", 16, &m, &allow), GW_MATCH_BAD_METHOD);
    cr_assert_eq(allow.len, 3);
    cr_assert_eq(memcmp(allow.base, "GET", 3), 0);
    cr_assert_eq(gw_routes_match(&pool, "DELETE", 6, "/v1/stories/feeds", 17, &m, &allow), GW_MATCH_OK);
    cr_assert_str_eq(m.route->rpc, "publication.story_delete");
    h2o_mem_clear_pool(&pool);
}
