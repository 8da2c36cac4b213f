/* test_origin.c -- where a dead letter goes back to (cli/queues/origin.c): topic matching and each rule,
 * with the management API replaced by canned answers. */
#include <criterion/criterion.h>

#include "../../../../cli/queues/origin.c"

/* ---------------------------------------------------------------- the management API, canned */

static const char *canned_bindings; /* JSON answer of GET /queues/{vhost}/{queue}/bindings; NULL: 404 */
static const char *canned_exchanges =
    "[{\"name\":\"\",\"type\":\"direct\"},{\"name\":\"events\",\"type\":\"topic\"},"
    "{\"name\":\"rpc\",\"type\":\"direct\"},{\"name\":\"fan\",\"type\":\"fanout\"},"
    "{\"name\":\"other\",\"type\":\"topic\"}]";
static int requests;

char *mgmt_path(mgmt_t *m, const char *collection, const char *name, const char *tail)
{
    (void)m;
    return xasprintf("/%s/%%2F%s%s%s%s", collection, name ? "/" : "", name ? name : "", tail ? "/" : "",
                     tail ? tail : "");
}

int mgmt_request(mgmt_t *m, const char *path, const cJSON *body, cJSON **out, char *err, size_t errlen)
{
    (void)m, (void)body;
    requests++;
    const char *answer = strstr(path, "/bindings") != NULL ? canned_bindings : canned_exchanges;
    if (answer == NULL) {
        snprintf(err, errlen, "not found");
        return MGMT_ENOTFOUND;
    }
    *out = cJSON_Parse(answer);
    return MGMT_OK;
}

const char *mgmt_string(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Resolves f for queue q; returns the status and fills "exchange|key" or the error into out. */
static int resolve(const origin_facts_t *f, char *out, size_t outlen)
{
    origin_t o;
    char *exchange, *key, err[256] = "";
    origin_init(&o, NULL, f->queue);
    int rc = origin_resolve(&o, f, &exchange, &key, err, sizeof(err));
    if (rc == ORIGIN_OK)
        snprintf(out, outlen, "%s|%s", exchange, key);
    else
        snprintf(out, outlen, "%s", err);
    free(exchange);
    free(key);
    origin_clear(&o);
    return rc;
}

/* ---------------------------------------------------------------- tests */

Test(origin, topic_patterns_match_as_rabbitmq_does)
{
    cr_assert(origin_topic_match("post.created", "post.created"));
    cr_assert(!origin_topic_match("post.created", "post.deleted"));
    cr_assert(origin_topic_match("post.*", "post.created"));
    cr_assert(!origin_topic_match("post.*", "post"));
    cr_assert(!origin_topic_match("post.*", "post.created.now"));
    cr_assert(origin_topic_match("#", "post.created"));
    cr_assert(origin_topic_match("#", ""));
    cr_assert(origin_topic_match("post.#", "post"));
    cr_assert(origin_topic_match("post.#", "post.a.b"));
    cr_assert(origin_topic_match("#.created", "post.created"));
    cr_assert(origin_topic_match("#.created", "a.b.created"));
    cr_assert(!origin_topic_match("#.created", "post.deleted"));
    cr_assert(origin_topic_match("a.#.z", "a.z"));
    cr_assert(origin_topic_match("a.#.z", "a.b.c.z"));
    cr_assert(!origin_topic_match("a.#.z", "a.b.c"));
    cr_assert(origin_topic_match("*.*", "a.b"));
    cr_assert(!origin_topic_match("*", "a.b"));
    cr_assert(!origin_topic_match("post", "post.created"));
}

Test(origin, a_message_dead_on_first_delivery_goes_back_where_x_death_says)
{
    char out[300];
    origin_facts_t f = {.queue = "notification.events",
                        .has_death = 1,
                        .death_exchange = "events",
                        .death_key = "device.registered"};
    requests = 0;
    cr_assert_eq(resolve(&f, out, sizeof(out)), ORIGIN_OK);
    cr_assert_str_eq(out, "events|device.registered");
    cr_assert_eq(requests, 0, "x-death is enough: no API request");
}

Test(origin, a_retried_event_goes_to_the_exchange_binding_its_key)
{
    char out[300];
    canned_bindings = "[{\"source\":\"\",\"routing_key\":\"publication.fanout\"},"
                      "{\"source\":\"events\",\"routing_key\":\"post.created\"},"
                      "{\"source\":\"events\",\"routing_key\":\"post.deleted\"}]";
    origin_facts_t f = {.queue = "publication.fanout",
                        .has_death = 1,
                        .death_exchange = "",
                        .death_key = "publication.fanout",
                        .routing_key = "post.deleted"};
    cr_assert_eq(resolve(&f, out, sizeof(out)), ORIGIN_OK);
    cr_assert_str_eq(out, "events|post.deleted");

    canned_bindings = "[{\"source\":\"events\",\"routing_key\":\"user.*\"}]";
    f = (origin_facts_t){.queue = "search.events",
                         .has_death = 1,
                         .death_exchange = "",
                         .death_key = "search.events",
                         .routing_key = "user.updated"};
    cr_assert_eq(resolve(&f, out, sizeof(out)), ORIGIN_OK);
    cr_assert_str_eq(out, "events|user.updated");

    canned_bindings = "[{\"source\":\"fan\",\"routing_key\":\"\"}]";
    cr_assert_eq(resolve(&f, out, sizeof(out)), ORIGIN_OK);
    cr_assert_str_eq(out, "fan|user.updated");
}

Test(origin, a_retried_work_message_goes_back_through_the_default_exchange)
{
    char out[300];
    origin_facts_t f = {.queue = "publication.fanout",
                        .has_death = 1,
                        .death_exchange = "",
                        .death_key = "publication.fanout",
                        .routing_key = "publication.fanout"};
    cr_assert_eq(resolve(&f, out, sizeof(out)), ORIGIN_OK);
    cr_assert_str_eq(out, "|publication.fanout");
    f.routing_key = NULL;
    cr_assert_eq(resolve(&f, out, sizeof(out)), ORIGIN_OK);
    cr_assert_str_eq(out, "|publication.fanout");
}

Test(origin, what_cannot_be_determined_is_said)
{
    char out[300];
    origin_facts_t f = {.queue = "auth.events"};
    cr_assert_eq(resolve(&f, out, sizeof(out)), ORIGIN_EUNKNOWN);
    cr_assert(strstr(out, "no x-death") != NULL, "%s", out);

    f = (origin_facts_t){.queue = "auth.events", .has_death = 1, .death_exchange = "events"};
    cr_assert_eq(resolve(&f, out, sizeof(out)), ORIGIN_EUNKNOWN);
    cr_assert(strstr(out, "no routing key") != NULL, "%s", out);

    f = (origin_facts_t){.queue = "auth.events",
                         .has_death = 1,
                         .death_exchange = "",
                         .death_key = "auth.events",
                         .routing_key = "post.created"};
    canned_bindings = "[{\"source\":\"events\",\"routing_key\":\"post.deleted\"}]";
    cr_assert_eq(resolve(&f, out, sizeof(out)), ORIGIN_EUNKNOWN);
    cr_assert(strstr(out, "no exchange binds auth.events for routing key post.created") != NULL, "%s", out);

    canned_bindings =
        "[{\"source\":\"events\",\"routing_key\":\"post.*\"},{\"source\":\"other\",\"routing_key\":\"#\"}]";
    cr_assert_eq(resolve(&f, out, sizeof(out)), ORIGIN_EUNKNOWN);
    cr_assert(strstr(out, "both exchanges events and other") != NULL, "%s", out);

    canned_bindings = NULL;
    cr_assert_eq(resolve(&f, out, sizeof(out)), ORIGIN_EUNKNOWN);
    cr_assert(strstr(out, "no longer exists") != NULL, "%s", out);
}
