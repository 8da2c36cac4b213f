/* load.c -- push work for bench/push: device tokens written into notification's database, push jobs on its queue. */
/*
 * bench-push-load seed MONGO_URI USERS TOKENS
 *     replaces the "devices" collection with USERS documents, users bp_u<i> (i = 0..USERS-1), each
 *     with TOKENS device tokens "bp:<i>-<k>_x.y", in devices.c's layout:
 *     {_id: user, tokens: {<16-hex BLAKE2b-64 of the token>: {t: token, p: "android", at: int64 ms}}}
 * bench-push-load jobs AMQP_URL USERS ITEMS RUN
 *     publishes push.job messages (proto/schemas/notification.push.json) to the default exchange with
 *     routing key notification.push, persistent, with confirms, as push_enqueue does: ITEMS recipients
 *     (bp_u0 ..) a job, one notification each, its id "<RUN as 8 hex><i as 16 hex>"; prints how many
 *     jobs and how long publishing took.
 * Exits non-zero on any database or broker error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mongoc/mongoc.h>
#include <sodium.h>

#include "core/core.h"
#include "mq/mq.h"

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench-push-load: %s: %s\n", what, why != NULL ? why : "");
    exit(1);
}

/* devices.c's key of a token: the first 8 bytes of BLAKE2b, in hex. */
static void token_key(const char *token, char out[17])
{
    unsigned char h[8];
    crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int seed(const char *uri_s, long users, long tokens)
{
    bson_error_t err;
    mongoc_init();
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_s, &err);
    if (uri == NULL)
        die("MONGO_URI", err.message);
    mongoc_client_t *client = mongoc_client_new_from_uri(uri);
    const char *dbname = mongoc_uri_get_database(uri) != NULL ? mongoc_uri_get_database(uri) : "notification";
    mongoc_collection_t *coll = mongoc_client_get_collection(client, dbname, "devices");
    if (!mongoc_collection_drop(coll, &err) && strstr(err.message, "not found") == NULL)
        fprintf(stderr, "bench-push-load: drop devices: %s (going on)\n", err.message);
    int64_t at = (int64_t)time(NULL) * 1000;
    for (long i = 0; i < users;) {
        mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, NULL);
        for (long b = 0; b < 1000 && i < users; b++, i++) {
            char user[32];
            snprintf(user, sizeof(user), "bp_u%ld", i);
            bson_t doc = BSON_INITIALIZER, toks;
            BSON_APPEND_UTF8(&doc, "_id", user);
            BSON_APPEND_DOCUMENT_BEGIN(&doc, "tokens", &toks);
            for (long k = 0; k < tokens; k++) {
                char token[64], key[17];
                bson_t t;
                snprintf(token, sizeof(token), "bp:%ld-%ld_x.y", i, k);
                token_key(token, key);
                BSON_APPEND_DOCUMENT_BEGIN(&toks, key, &t);
                BSON_APPEND_UTF8(&t, "t", token);
                BSON_APPEND_UTF8(&t, "p", "android");
                BSON_APPEND_INT64(&t, "at", at);
                bson_append_document_end(&toks, &t);
            }
            bson_append_document_end(&doc, &toks);
            mongoc_bulk_operation_insert(bulk, &doc);
            bson_destroy(&doc);
        }
        bson_t reply;
        if (!mongoc_bulk_operation_execute(bulk, &reply, &err))
            die("insert devices", err.message);
        bson_destroy(&reply);
        mongoc_bulk_operation_destroy(bulk);
    }
    fprintf(stderr, "bench-push-load: %ld users with %ld tokens each in %s.devices\n", users, tokens, dbname);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return 0;
}

static int jobs(const char *url, long users, long items, unsigned long run)
{
    mq_conf_t c = {.url = url, .app_id = "notification", .confirms = 1};
    mq_t *mq = mq_new(&c);
    if (mq == NULL)
        die("AMQP_URL", url);
    int st = mq_connect(mq);
    if (st != 0)
        die("connect", mq_strerror(st));
    mq_declare_work_queue(mq, "notification.push");
    /* the shape push_enqueue writes: a like of a post by bp_actor */
    static const char head[] = "{\"type\":\"like\",\"title\":\"Photo\",\"body\":\"bp_actor liked your post.\","
                               "\"data\":{\"type\":\"like\",\"actor_id\":\"bp_actor\","
                               "\"post_id\":\"6740a9c3e4b0c1d2e3f40512\"},\"items\":[";
    size_t cap = sizeof(head) + (size_t)items * 96 + 64;
    char *body = xcalloc(1, cap);
    uint64_t t0 = core_now_ms();
    long njobs = 0;
    for (long i = 0; i < users; njobs++) {
        size_t len = (size_t)snprintf(body, cap, "%s", head);
        for (long k = 0; k < items && i < users; k++, i++)
            len += (size_t)snprintf(body + len, cap - len, "%s{\"user_id\":\"bp_u%ld\",\"notification_id\":\"%08lx%016lx\"}",
                                    k > 0 ? "," : "", i, run & 0xffffffffUL, (unsigned long)i);
        len += (size_t)snprintf(body + len, cap - len, "],\"attempt\":0}");
        mq_publish_t m = {.exchange = "",
                          .routing_key = "notification.push",
                          .type = "push.job",
                          .persistent = 1,
                          .body = body,
                          .body_len = len};
        if ((st = mq_publish(mq, &m, 10000)) != 0)
            die("publish", mq_strerror(st));
    }
    printf("%ld jobs of up to %ld items published in %" PRIu64 " ms\n", njobs, items, core_now_ms() - t0);
    free(body);
    mq_free(mq);
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        die("libsodium", "cannot start");
    if (argc == 5 && strcmp(argv[1], "seed") == 0)
        return seed(argv[2], atol(argv[3]), atol(argv[4]));
    if (argc == 6 && strcmp(argv[1], "jobs") == 0)
        return jobs(argv[2], atol(argv[3]), atol(argv[4]), strtoul(argv[5], NULL, 10));
    fprintf(stderr, "usage: bench-push-load seed MONGO_URI USERS TOKENS\n"
                    "       bench-push-load jobs AMQP_URL USERS ITEMS RUN\n");
    return 2;
}
