/* test_mq.c -- connections, confirmed publishing, the message envelope, events, retries and dead letters,
 * against a real RabbitMQ (TEST_AMQP_URL); the RPC client and server are in test_rpc_client.c. */
#include "mq/mq.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "mq_test.h"

TestSuite(mq, .init = mqt_setup, .timeout = 30);

/* ================================================================ basics */

Test(mq, strerror_names_every_code)
{
    const int codes[] = {MQ_OK,       MQ_EDOWN,     MQ_ENACK,    MQ_ETIMEOUT,
                         MQ_ENOROUTE, MQ_EPROTOCOL, MQ_ESTOPPED, MQ_ECONFIG};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = mq_strerror(codes[i]);
        cr_assert(s != NULL && s[0] != '\0');
        cr_assert_str_neq(s, mq_strerror(-100), "code %d has no name", codes[i]);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(s, mq_strerror(codes[j]), "codes %d and %d share a name", codes[i], codes[j]);
    }
    cr_assert_str_eq(mq_strerror(MQ_OK), "ok");
    cr_assert_not_null(mq_strerror(12345));
}

Test(mq, new_refuses_a_bad_url)
{
    const char *bad[] = {"", "not a url", "http://127.0.0.1:5672/", "amqp://127.0.0.1:notaport/",
                         "amqps://guest:guest@127.0.0.1:5671/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mq_conf_t conf = {.url = bad[i], .app_id = "unit"};
        cr_assert_null(mq_new(&conf), "\"%s\" was accepted", bad[i]);
        cr_assert_null(mq_rpc_client_start(&conf), "rpc client: \"%s\" was accepted", bad[i]);
    }
    mq_conf_t none = {.url = NULL};
    cr_assert_null(mq_new(&none));
    mq_free(NULL);
}

Test(mq, a_trailing_slash_means_the_default_vhost)
{
    /* rabbitmq-c alone parses "amqp://host:port/" as the vhost "" and the broker refuses it. */
    char url[600];
    snprintf(url, sizeof(url), "%s/", mqt_url);
    mq_conf_t conf = {.url = url, .app_id = "unit"};
    mq_t *mq = mq_new(&conf);
    cr_assert_not_null(mq);
    cr_assert_eq(mq_connect(mq), 0, "%s was refused", url);
    mq_free(mq);
}

Test(mq, new_connects_lazily_and_connect_reports_a_dead_broker_at_once)
{
    mq_conf_t conf = {.url = MQT_DEAD_URL, .app_id = "unit"};
    mq_t *mq = mq_new(&conf);
    cr_assert_not_null(mq);
    cr_assert_eq(mq_connected(mq), 0);
    uint64_t t0 = core_now_ms();
    cr_assert_eq(mq_connect(mq), MQ_EDOWN);
    cr_assert_eq(mq_connected(mq), 0);
    mq_publish_t p = {.exchange = "", .routing_key = "x", .body = "{}", .body_len = 2};
    cr_assert_eq(mq_publish(mq, &p, 1000), MQ_EDOWN);
    cr_assert_lt(core_now_ms() - t0, 1000, "a refused connection must fail fast");
    mq_free(mq);
}

Test(mq, connect_to_the_test_broker)
{
    mq_t *mq = mqt_new("unit-connect", 0, 0);
    cr_assert_eq(mq_connected(mq), 0, "mq_new must not connect");
    cr_assert_eq(mq_connect(mq), 0);
    cr_assert_eq(mq_connected(mq), 1);
    cr_assert_eq(mq_connect(mq), 0, "connecting again while up is a no-op");
    mq_free(mq);
}

/* ================================================================ publishing */

Test(mq, publish_with_confirms_delivers_the_design_envelope)
{
    char q[128];
    mqt_name(q, sizeof(q), "work");
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    mq_declare_work_queue(pub, q);
    const char body[] = "{\"media_id\":\"m1\",\"size\":1080}";
    mq_publish_t p = {
        .exchange = "",
        .routing_key = q,
        .type = "media.resize",
        .request_id = "req-envelope-1",
        .persistent = 1,
        .body = body,
        .body_len = sizeof(body) - 1,
    };
    int64_t before = core_wall_ms() / 1000;
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    int64_t after = core_wall_ms() / 1000;

    amqp_connection_state_t raw = mqt_raw_open();
    amqp_message_t m;
    cr_assert(mqt_raw_get(raw, q, &m), "the message did not arrive in %s", q);
    const amqp_basic_properties_t *pr = &m.properties;
    char s[256];
    cr_assert_str_eq(mqt_prop(s, sizeof(s), pr, AMQP_BASIC_CONTENT_TYPE_FLAG, pr->content_type),
                     "application/json");
    cr_assert_str_eq(mqt_prop(s, sizeof(s), pr, AMQP_BASIC_TYPE_FLAG, pr->type), "media.resize");
    cr_assert_str_eq(mqt_prop(s, sizeof(s), pr, AMQP_BASIC_APP_ID_FLAG, pr->app_id), "unit-publisher");
    cr_assert(mqt_is_uuid(mqt_prop(s, sizeof(s), pr, AMQP_BASIC_MESSAGE_ID_FLAG, pr->message_id)),
              "message_id is not a UUID: %s", s);
    cr_assert(pr->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG);
    cr_assert_eq(pr->delivery_mode, AMQP_DELIVERY_PERSISTENT);
    cr_assert(pr->_flags & AMQP_BASIC_TIMESTAMP_FLAG);
    cr_assert((int64_t)pr->timestamp >= before && (int64_t)pr->timestamp <= after,
              "timestamp %llu not in [%lld, %lld] (seconds)", (unsigned long long)pr->timestamp,
              (long long)before, (long long)after);
    cr_assert_str_eq(mqt_header(s, sizeof(s), pr, "x-request-id"), "req-envelope-1");
    cr_assert_eq(m.body.len, sizeof(body) - 1);
    cr_assert_eq(memcmp(m.body.bytes, body, m.body.len), 0);
    amqp_destroy_message(&m);
    cr_assert_not(mqt_raw_get(raw, q, &m), "exactly one message expected");

    /* A given message_id and content type are kept; no request id means no header; transient. */
    p.message_id = "11111111-2222-4333-8444-555555555555";
    p.content_type = "text/plain";
    p.request_id = NULL;
    p.persistent = 0;
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    cr_assert(mqt_raw_get(raw, q, &m));
    pr = &m.properties;
    cr_assert_str_eq(mqt_prop(s, sizeof(s), pr, AMQP_BASIC_MESSAGE_ID_FLAG, pr->message_id),
                     "11111111-2222-4333-8444-555555555555");
    cr_assert_str_eq(mqt_prop(s, sizeof(s), pr, AMQP_BASIC_CONTENT_TYPE_FLAG, pr->content_type),
                     "text/plain");
    cr_assert_eq(pr->delivery_mode, AMQP_DELIVERY_NONPERSISTENT);
    cr_assert_str_eq(mqt_header(s, sizeof(s), pr, "x-request-id"), MQT_NULL);
    amqp_destroy_message(&m);

    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

Test(mq, message_ids_are_new_for_each_publish)
{
    char q[128];
    mqt_name(q, sizeof(q), "ids");
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    mq_declare_work_queue(pub, q);
    mq_publish_t p = {.exchange = "", .routing_key = q, .body = "{}", .body_len = 2};
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    amqp_connection_state_t raw = mqt_raw_open();
    amqp_message_t a, b;
    cr_assert(mqt_raw_get(raw, q, &a) && mqt_raw_get(raw, q, &b));
    char sa[64], sb[64];
    mqt_prop(sa, sizeof(sa), &a.properties, AMQP_BASIC_MESSAGE_ID_FLAG, a.properties.message_id);
    mqt_prop(sb, sizeof(sb), &b.properties, AMQP_BASIC_MESSAGE_ID_FLAG, b.properties.message_id);
    cr_assert_str_neq(sa, sb);
    amqp_destroy_message(&a);
    amqp_destroy_message(&b);
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

Test(mq, many_confirmed_publishes_in_a_row_all_arrive)
{
    char q[128];
    mqt_name(q, sizeof(q), "many");
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    mq_declare_work_queue(pub, q);
    for (int i = 0; i < 300; i++) {
        char body[32];
        int n = snprintf(body, sizeof(body), "{\"i\":%d}", i);
        mq_publish_t p = {.exchange = "", .routing_key = q, .body = body, .body_len = (size_t)n};
        cr_assert_eq(mq_publish(pub, &p, 5000), 0, "publish %d", i);
    }
    amqp_connection_state_t raw = mqt_raw_open();
    cr_assert_eq(mqt_raw_count(raw, q), 300);
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

Test(mq, a_refused_message_is_enack)
{
    /* A queue that holds one message and refuses more: the broker nacks the second publish. */
    char q[128];
    mqt_name(q, sizeof(q), "full");
    amqp_connection_state_t raw = mqt_raw_open();
    amqp_table_entry_t args[2] = {
        {.key = amqp_cstring_bytes("x-max-length"), .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 1}},
        {.key = amqp_cstring_bytes("x-overflow"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("reject-publish")}},
    };
    amqp_table_t table = {2, args};
    amqp_queue_declare(raw, 1, amqp_cstring_bytes(q), 0, 0, 0, 0, table);
    cr_assert_eq(amqp_get_rpc_reply(raw).reply_type, AMQP_RESPONSE_NORMAL);

    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    mq_publish_t p = {.exchange = "", .routing_key = q, .body = "{}", .body_len = 2};
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    cr_assert_eq(mq_publish(pub, &p, 5000), MQ_ENACK);
    /* The connection is still usable after a nack. */
    mqt_raw_purge(raw, q);
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

Test(mq, a_channel_error_is_edown_and_the_next_publish_reconnects)
{
    char q[128], missing[128];
    mqt_name(q, sizeof(q), "after-error");
    mqt_name(missing, sizeof(missing), "no-such-exchange");
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    mq_declare_work_queue(pub, q);
    mq_publish_t bad = {.exchange = missing, .routing_key = "x", .body = "{}", .body_len = 2};
    cr_assert_eq(mq_publish(pub, &bad, 5000), MQ_EDOWN);
    cr_assert_eq(mq_connected(pub), 0);
    mq_publish_t good = {.exchange = "", .routing_key = q, .body = "{}", .body_len = 2};
    cr_assert_eq(mq_publish(pub, &good, 5000), 0);
    cr_assert_eq(mq_connected(pub), 1);
    amqp_connection_state_t raw = mqt_raw_open();
    cr_assert_eq(mqt_raw_count(raw, q), 1);
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

/* mq.h: every connection reconnects by itself; mq_publish reconnects first if needed. A publisher
 * that was idle longer than two heartbeats has been dropped by the broker. */
Test(mq, an_idle_publisher_publishes_after_the_broker_dropped_it)
{
    char q[128];
    mqt_name(q, sizeof(q), "idle");
    mq_conf_t conf = {.url = mqt_url, .app_id = "unit-idle", .confirms = 1, .heartbeat_s = 1};
    mq_t *pub = mq_new(&conf);
    cr_assert_not_null(pub);
    mq_declare_work_queue(pub, q);
    mq_publish_t p = {.exchange = "", .routing_key = q, .body = "{}", .body_len = 2};
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    core_sleep_ms(3500, NULL); /* the broker closes it after two missed 1 s heartbeats */
    int rc = mq_publish(pub, &p, 5000);
    amqp_connection_state_t raw = mqt_raw_open();
    unsigned n = mqt_raw_count(raw, q);
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
    cr_assert_eq(rc, 0, "first publish after idling: %s", mq_strerror(rc));
    cr_assert_eq(n, 2);
}

/* ================================================================ consuming */

Test(mq, consumer_gets_the_decoded_envelope_and_ack_removes_the_message)
{
    char q[128];
    mqt_name(q, sizeof(q), "consume");
    mqt_declare_work_queue(q);
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    const char body[] = "{\"post_id\":\"p1\"}";
    mq_publish_t p = {.exchange = "",
                      .routing_key = q,
                      .type = "publication.fanout",
                      .message_id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
                      .request_id = "req-consume-1",
                      .persistent = 1,
                      .body = body,
                      .body_len = sizeof(body) - 1};
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);

    mqt_inbox_t in;
    mqt_inbox_init(&in, MQ_ACK);
    mq_t *consumer = mqt_new("unit-consumer", 0, 0);
    mq_consume(consumer, q, mqt_inbox_handler, &in);
    mqt_runner_t run;
    mqt_runner_start(&run, consumer);
    cr_assert_eq(mqt_inbox_wait(&in, 1, 5000), 1, "no delivery within 5 s");
    core_sleep_ms(200, NULL); /* a redelivery would show now */
    mqt_runner_stop(&run);

    cr_assert_eq(in.calls, 1);
    const mqt_seen_t *m = &in.seen[0];
    cr_assert_str_eq(m->queue, q);
    cr_assert_str_eq(m->exchange, "");
    cr_assert_str_eq(m->routing_key, q);
    cr_assert_str_eq(m->type, "publication.fanout");
    cr_assert_str_eq(m->message_id, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
    cr_assert_str_eq(m->app_id, "unit-publisher");
    cr_assert_str_eq(m->content_type, "application/json");
    cr_assert_str_eq(m->request_id, "req-consume-1");
    cr_assert_str_eq(m->correlation_id, MQT_NULL);
    cr_assert_str_eq(m->user_id, MQT_NULL);
    cr_assert_str_eq(m->body, body);
    cr_assert_lt(llabs(m->timestamp - core_wall_ms() / 1000), 10);
    cr_assert_eq(m->retries, 0);
    cr_assert_eq(m->redelivered, 0);

    amqp_connection_state_t raw = mqt_raw_open();
    cr_assert_eq(mqt_raw_count(raw, q), 0, "an acked message must be gone");
    char dlq[160];
    snprintf(dlq, sizeof(dlq), "%s.dlq", q);
    cr_assert_eq(mqt_raw_count(raw, dlq), 0);
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

Test(mq, retry_redelivers_max_retries_times_then_dead_letters)
{
    char q[128], dlq[160];
    mqt_name(q, sizeof(q), "retry");
    snprintf(dlq, sizeof(dlq), "%s.dlq", q);
    mqt_declare_work_queue(q);
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    mq_publish_t p = {.exchange = "",
                      .routing_key = q,
                      .type = "t",
                      .message_id = "00000000-0000-4000-8000-000000000001",
                      .request_id = "req-retry",
                      .body = "{\"n\":1}",
                      .body_len = 7};
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);

    mqt_inbox_t in;
    mqt_inbox_init(&in, MQ_RETRY);
    mq_t *consumer = mqt_new("unit-consumer", 0, 3);
    mq_consume(consumer, q, mqt_inbox_handler, &in);
    mqt_runner_t run;
    mqt_runner_start(&run, consumer);
    amqp_connection_state_t raw = mqt_raw_open();
    cr_assert(mqt_raw_wait_count(raw, dlq, 1, 8000), "nothing reached %s", dlq);
    core_sleep_ms(300, NULL); /* no further delivery may follow */
    mqt_runner_stop(&run);

    /* max_retries = 3: the first delivery and three redeliveries, counted by x-retry. */
    cr_assert_eq(in.calls, 4, "handler ran %d times", in.calls);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(in.seen[i].retries, (unsigned)i);
        cr_assert_str_eq(in.seen[i].message_id, "00000000-0000-4000-8000-000000000001");
        cr_assert_str_eq(in.seen[i].request_id, "req-retry");
        cr_assert_str_eq(in.seen[i].body, "{\"n\":1}");
    }
    cr_assert_eq(mqt_raw_count(raw, q), 0);
    amqp_message_t m;
    cr_assert(mqt_raw_get(raw, dlq, &m));
    char s[128];
    cr_assert_str_eq(
        mqt_prop(s, sizeof(s), &m.properties, AMQP_BASIC_MESSAGE_ID_FLAG, m.properties.message_id),
        "00000000-0000-4000-8000-000000000001");
    cr_assert_eq(m.body.len, 7);
    cr_assert_eq(memcmp(m.body.bytes, "{\"n\":1}", 7), 0);
    cr_assert_str_neq(mqt_header(s, sizeof(s), &m.properties, "x-death"), MQT_NULL,
                      "dead-lettered by the broker");
    amqp_destroy_message(&m);
    cr_assert_not(mqt_raw_get(raw, dlq, &m), "exactly one dead letter expected");

    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

Test(mq, retry_with_default_max_retries_delivers_six_times)
{
    char q[128], dlq[160];
    mqt_name(q, sizeof(q), "retry5");
    snprintf(dlq, sizeof(dlq), "%s.dlq", q);
    mqt_declare_work_queue(q);
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    mq_publish_t p = {.exchange = "", .routing_key = q, .body = "{}", .body_len = 2};
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    mqt_inbox_t in;
    mqt_inbox_init(&in, MQ_RETRY);
    mq_t *consumer = mqt_new("unit-consumer", 0, 0); /* 0 means 5 */
    mq_consume(consumer, q, mqt_inbox_handler, &in);
    mqt_runner_t run;
    mqt_runner_start(&run, consumer);
    amqp_connection_state_t raw = mqt_raw_open();
    cr_assert(mqt_raw_wait_count(raw, dlq, 1, 10000), "nothing reached %s", dlq);
    mqt_runner_stop(&run);
    cr_assert_eq(in.calls, 6);
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

Test(mq, dead_dead_letters_at_once)
{
    char q[128], dlq[160];
    mqt_name(q, sizeof(q), "dead");
    snprintf(dlq, sizeof(dlq), "%s.dlq", q);
    mqt_declare_work_queue(q);
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    mq_publish_t p = {.exchange = "", .routing_key = q, .body = "not json", .body_len = 8};
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    mqt_inbox_t in;
    mqt_inbox_init(&in, MQ_DEAD);
    mq_t *consumer = mqt_new("unit-consumer", 0, 5);
    mq_consume(consumer, q, mqt_inbox_handler, &in);
    mqt_runner_t run;
    mqt_runner_start(&run, consumer);
    amqp_connection_state_t raw = mqt_raw_open();
    uint64_t t0 = core_now_ms();
    cr_assert(mqt_raw_wait_count(raw, dlq, 1, 5000), "nothing reached %s", dlq);
    cr_assert_lt(core_now_ms() - t0, 1000, "MQ_DEAD must not wait for retries");
    core_sleep_ms(200, NULL);
    mqt_runner_stop(&run);
    cr_assert_eq(in.calls, 1);
    cr_assert_eq(mqt_raw_count(raw, q), 0);
    amqp_message_t m;
    cr_assert(mqt_raw_get(raw, dlq, &m));
    cr_assert_eq(m.body.len, 8);
    amqp_destroy_message(&m);
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

/* A daemon may connect first to fail fast at start, then run: its consumers must still start. */
Test(mq, a_consumer_connected_before_mq_run_still_consumes)
{
    char q[128];
    mqt_name(q, sizeof(q), "connect-first");
    mqt_declare_work_queue(q);
    mqt_inbox_t in;
    mqt_inbox_init(&in, MQ_ACK);
    mq_t *consumer = mqt_new("unit-consumer", 0, 0);
    mq_declare_work_queue(consumer, q);
    mq_consume(consumer, q, mqt_inbox_handler, &in);
    cr_assert_eq(mq_connect(consumer), 0);
    mqt_runner_t run;
    mqt_runner_start(&run, consumer);
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    mq_publish_t p = {.exchange = "", .routing_key = q, .body = "{}", .body_len = 2};
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    int got = mqt_inbox_wait(&in, 1, 3000);
    mqt_runner_stop(&run);
    amqp_connection_state_t raw = mqt_raw_open();
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
    cr_assert_eq(got, 1, "mq_connect before mq_run: the consumer never started");
}

Test(mq, stop_finishes_the_message_in_hand_and_acks_it)
{
    char q[128];
    mqt_name(q, sizeof(q), "stop");
    mqt_declare_work_queue(q);
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    mq_publish_t p = {.exchange = "", .routing_key = q, .body = "{}", .body_len = 2};
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    mqt_inbox_t in;
    mqt_inbox_init(&in, MQ_ACK);
    in.delay_ms = 400;
    mq_t *consumer = mqt_new("unit-consumer", 0, 0);
    mq_consume(consumer, q, mqt_inbox_handler, &in);
    mqt_runner_t run;
    mqt_runner_start(&run, consumer);
    cr_assert_eq(mqt_inbox_wait_started(&in, 5000), 1);
    uint64_t t0 = core_now_ms();
    mqt_runner_stop(&run); /* while the handler sleeps */
    uint64_t took = core_now_ms() - t0;
    cr_assert_eq(in.calls, 1, "the handler must finish");
    cr_assert_lt(took, 2000, "mq_run took %llu ms to stop", (unsigned long long)took);
    amqp_connection_state_t raw = mqt_raw_open();
    cr_assert_eq(mqt_raw_count(raw, q), 0, "the finished message must have been acked");
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

/* mq.c reconnects when the broker cancels its consumer; the broker only says so to clients that
 * announce the consumer_cancel_notify capability. */
Test(mq, a_queue_deleted_under_a_consumer_is_redeclared_and_consumed_again)
{
    char q[128];
    mqt_name(q, sizeof(q), "redeclare");
    mqt_inbox_t in;
    mqt_inbox_init(&in, MQ_ACK);
    mq_t *consumer = mqt_new("unit-consumer", 0, 0);
    mq_declare_work_queue(consumer, q);
    mq_consume(consumer, q, mqt_inbox_handler, &in);
    mqt_runner_t run;
    mqt_runner_start(&run, consumer);
    cr_assert(mqt_wait_queue(q, 5000), "the consumer did not declare %s", q);
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    mq_publish_t p = {.exchange = "", .routing_key = q, .body = "{\"n\":1}", .body_len = 7};
    cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    cr_assert_eq(mqt_inbox_wait(&in, 1, 5000), 1);

    amqp_connection_state_t raw = mqt_raw_open();
    mqt_raw_delete_queue(raw, q);
    int back = mqt_wait_queue(q, 3000);
    int got = 0;
    if (back) {
        p.body = "{\"n\":2}";
        cr_assert_eq(mq_publish(pub, &p, 5000), 0);
        got = mqt_inbox_wait(&in, 2, 5000);
    }
    mqt_runner_stop(&run);
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
    cr_assert(back, "the consumer did not notice %s was deleted (no basic.cancel?) and never redeclared it",
              q);
    cr_assert_eq(got, 2, "no delivery after the queue came back");
    cr_assert_str_eq(in.seen[1].body, "{\"n\":2}");
}

static void test_tick(mq_t *mq, void *ud)
{
    (void)mq;
    mqt_ticks_t *t = ud;
    if (t->count > 0 && !pthread_equal(pthread_self(), t->thread))
        t->changed = 1;
    t->thread = pthread_self();
    t->count++;
}

Test(mq, tick_runs_on_the_run_thread_about_every_tick_ms)
{
    mq_t *mq = mqt_new("unit-tick", 0, 0);
    mqt_ticks_t ticks = {0};
    mq_set_tick(mq, 100, test_tick, &ticks);
    mqt_runner_t run;
    mqt_runner_start(&run, mq);
    core_sleep_ms(1050, NULL);
    pthread_t runner = run.thread;
    mqt_runner_stop(&run);
    cr_assert_eq(ticks.changed, 0);
    cr_assert(ticks.count == 0 || pthread_equal(ticks.thread, runner), "the tick ran off the mq_run thread");
    cr_assert(ticks.count >= 6 && ticks.count <= 12, "%d ticks of 100 ms in about 1 s", ticks.count);
}

/* ================================================================ events */

/* Entities carry the run's suffix ("post_<random>.created"), so runs sharing a broker never see
 * each other's events. */
/* A retried event goes back to its queue through the default exchange, where its routing key would
 * become the queue's name: consumers that tell events apart by key must still see the first one. */
Test(mq, a_retried_event_keeps_its_routing_key)
{
    char q[128], key[64];
    mqt_name(q, sizeof(q), "retrykey");
    snprintf(key, sizeof(key), "thing_%s.created", mqt_suffix);
    const char *keys[] = {key, NULL};
    mq_t *pub = mqt_new("unit-events", 1, 0);
    mq_declare_event_queue(pub, q, keys, 0);
    cr_assert_eq(mq_connect(pub), 0);
    cr_assert_eq(mq_publish_event(pub, key, NULL, "req-rk", "{}", 2, 5000), 0);
    mqt_inbox_t in;
    mqt_inbox_init(&in, MQ_RETRY);
    mq_t *consumer = mqt_new("unit-consumer", 0, 2);
    mq_declare_event_queue(consumer, q, keys, 0);
    mq_consume(consumer, q, mqt_inbox_handler, &in);
    mqt_runner_t run;
    mqt_runner_start(&run, consumer);
    cr_assert_eq(mqt_inbox_wait(&in, 3, 8000), 3, "the first delivery and two retries");
    mqt_runner_stop(&run);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(in.seen[i].retries, (unsigned)i);
        cr_assert_str_eq(in.seen[i].routing_key, key, "delivery %d came with key %s", i, in.seen[i].routing_key);
        cr_assert_str_eq(in.seen[i].request_id, "req-rk");
    }
    amqp_connection_state_t raw = mqt_raw_open();
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

Test(mq, events_are_routed_by_topic_to_bound_queues_only)
{
    char q[128], post_any[64], post_created[64], post_extra[64], user_deleted[64], comment_created[64];
    mqt_name(q, sizeof(q), "events");
    snprintf(post_any, sizeof(post_any), "post_%s.*", mqt_suffix);
    snprintf(post_created, sizeof(post_created), "post_%s.created", mqt_suffix);
    snprintf(post_extra, sizeof(post_extra), "post_%s.created.extra", mqt_suffix);
    snprintf(user_deleted, sizeof(user_deleted), "user_%s.deleted", mqt_suffix);
    snprintf(comment_created, sizeof(comment_created), "comment_%s.created", mqt_suffix);
    const char *keys[] = {post_any, user_deleted, NULL};
    mq_t *pub = mqt_new("unit-events", 1, 0);
    mq_declare_event_queue(pub, q, keys, 0);
    cr_assert_eq(mq_connect(pub), 0);

    const char post[] = "{\"post_id\":\"p9\"}";
    cr_assert_eq(mq_publish_event(pub, comment_created, NULL, "r0", "{}", 2, 5000), 0,
                 "unbound keys are fine");
    cr_assert_eq(mq_publish_event(pub, post_created, "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "req-ev-1", post,
                                  sizeof(post) - 1, 5000),
                 0);
    cr_assert_eq(mq_publish_event(pub, user_deleted, NULL, NULL, "{}", 2, 5000), 0);
    cr_assert_eq(mq_publish_event(pub, post_extra, NULL, NULL, "{}", 2, 5000), 0);

    mqt_inbox_t in;
    mqt_inbox_init(&in, MQ_ACK);
    mq_t *consumer = mqt_new("unit-consumer", 0, 0);
    mq_declare_event_queue(consumer, q, keys, 0);
    mq_consume(consumer, q, mqt_inbox_handler, &in);
    mqt_runner_t run;
    mqt_runner_start(&run, consumer);
    cr_assert_eq(mqt_inbox_wait(&in, 2, 5000), 2);
    core_sleep_ms(300, NULL);
    mqt_runner_stop(&run);
    cr_assert_eq(in.calls, 2, "only post_*.created and user_*.deleted are bound");

    const mqt_seen_t *m = &in.seen[0];
    cr_assert_str_eq(m->queue, q);
    cr_assert_str_eq(m->exchange, MQ_EXCHANGE_EVENTS);
    cr_assert_str_eq(m->routing_key, post_created);
    cr_assert_str_eq(m->type, post_created, "type is the routing key");
    cr_assert_str_eq(m->message_id, "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb");
    cr_assert_str_eq(m->request_id, "req-ev-1");
    cr_assert_str_eq(m->app_id, "unit-events");
    cr_assert_str_eq(m->content_type, "application/json");
    cr_assert_str_eq(m->body, post);
    cr_assert_lt(llabs(m->timestamp - core_wall_ms() / 1000), 10);
    cr_assert_str_eq(in.seen[1].routing_key, user_deleted);
    cr_assert(mqt_is_uuid(in.seen[1].message_id), "a NULL message_id gets a UUID, got %s",
              in.seen[1].message_id);

    amqp_connection_state_t raw = mqt_raw_open();
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

Test(mq, event_publish_is_persistent)
{
    char q[128];
    mqt_name(q, sizeof(q), "ev-persist");
    char key[160];
    snprintf(key, sizeof(key), "unit.%s", q + 5); /* a key no other test binds */
    const char *keys[] = {key, NULL};
    mq_t *pub = mqt_new("unit-events", 1, 0);
    mq_declare_event_queue(pub, q, keys, 0);
    cr_assert_eq(mq_publish_event(pub, key, NULL, NULL, "{\"a\":1}", 7, 5000), 0);
    amqp_connection_state_t raw = mqt_raw_open();
    amqp_message_t m;
    cr_assert(mqt_raw_get(raw, q, &m));
    cr_assert_eq(m.properties.delivery_mode, AMQP_DELIVERY_PERSISTENT);
    char s[64];
    cr_assert_str_eq(
        mqt_prop(s, sizeof(s), &m.properties, AMQP_BASIC_CONTENT_TYPE_FLAG, m.properties.content_type),
        "application/json");
    cr_assert(m.properties._flags & AMQP_BASIC_TIMESTAMP_FLAG);
    amqp_destroy_message(&m);
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}

/* ================================================================ topology (management API) */

Test(mq, declared_topology_matches_the_design)
{
    char q[128], dlq[160], ex_q[128], ex_dlq[160], svc[128], rpcq[160];
    mqt_name(q, sizeof(q), "topo");
    snprintf(dlq, sizeof(dlq), "%s.dlq", q);
    mqt_name(ex_q, sizeof(ex_q), "topo-copy");
    snprintf(ex_dlq, sizeof(ex_dlq), "%s.dlq", ex_q);
    mqt_name(svc, sizeof(svc), "topo-svc");
    snprintf(rpcq, sizeof(rpcq), "%s.rpc", svc);
    const char *keys[] = {"follow.created", NULL};
    mq_t *mq = mqt_new("unit-topology", 0, 0);
    mq_declare_event_queue(mq, q, keys, 0);
    mq_declare_event_queue(mq, ex_q, keys, 1);
    mq_declare_rpc_queue(mq, svc);
    cr_assert_eq(mq_connect(mq), 0);

    cJSON *j = mqt_api_get("/exchanges/%%2F/%s", MQ_EXCHANGE_RPC);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "type")->valuestring, "direct");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "durable")));
    cJSON_Delete(j);
    j = mqt_api_get("/exchanges/%%2F/%s", MQ_EXCHANGE_EVENTS);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "type")->valuestring, "topic");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "durable")));
    cJSON_Delete(j);

    /* The durable event queue dead-letters to its .dlq through the default exchange. */
    j = mqt_api_get("/queues/%%2F/%s", q);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "durable")));
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "exclusive")));
    cJSON *args = cJSON_GetObjectItem(j, "arguments");
    cr_assert_str_eq(cJSON_GetObjectItem(args, "x-dead-letter-exchange")->valuestring, "");
    cr_assert_str_eq(cJSON_GetObjectItem(args, "x-dead-letter-routing-key")->valuestring, dlq);
    cJSON_Delete(j);
    j = mqt_api_get("/queues/%%2F/%s", dlq);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "durable")));
    cJSON_Delete(j);
    j = mqt_api_get("/queues/%%2F/%s/bindings", q);
    cr_assert(mqt_has_binding(j, MQ_EXCHANGE_EVENTS, "follow.created"), "no binding events -> %s", q);
    cJSON_Delete(j);

    /* A per-copy queue is exclusive and auto-deleted; its dead letters still go somewhere durable. */
    j = mqt_api_get("/queues/%%2F/%s", ex_q);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "exclusive")));
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "auto_delete")));
    cJSON_Delete(j);

    j = mqt_api_get("/queues/%%2F/%s", rpcq);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "durable")));
    cJSON_Delete(j);
    j = mqt_api_get("/queues/%%2F/%s/bindings", rpcq);
    cr_assert(mqt_has_binding(j, MQ_EXCHANGE_RPC, svc), "no binding rpc -> %s with key %s", rpcq, svc);
    cJSON_Delete(j);

    mq_free(mq);
    amqp_connection_state_t raw = mqt_raw_open();
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_delete_queue(raw, ex_dlq);
    mqt_raw_delete_queue(raw, rpcq);
    mqt_raw_close(raw);
    /* The exclusive queue went away with its connection. */
    cr_assert_not(mqt_queue_exists(ex_q));
}

/* ================================================================ held deliveries (mq_step, mq_settle) */

typedef struct {
    mq_delivery_t d[8];
    char body[8][16];
    int n;
} held_t;

static mq_disposition_t hold_handler(mq_t *mq, const mq_message_t *msg, void *ud)
{
    (void)mq;
    held_t *h = ud;
    if (h->n < 8) {
        h->d[h->n] = msg->delivery;
        snprintf(h->body[h->n], sizeof(h->body[0]), "%.*s", (int)msg->body_len, (const char *)msg->body);
        h->n++;
    }
    return MQ_HOLD;
}

/* A consumer with an event loop of its own holds deliveries and settles them in any order: an ack
 * of a later one must not cover an earlier one still held, and what is still held when the
 * connection goes is redelivered. */
Test(mq, held_deliveries_are_settled_one_by_one_and_requeued_when_the_connection_goes)
{
    char q[128], dlq[160];
    mqt_name(q, sizeof(q), "held");
    snprintf(dlq, sizeof(dlq), "%s.dlq", q);
    mqt_declare_work_queue(q);
    mq_t *pub = mqt_new("unit-publisher", 1, 0);
    static const char *const bodies[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        mq_publish_t p = {.exchange = "", .routing_key = q, .body = bodies[i], .body_len = 1};
        cr_assert_eq(mq_publish(pub, &p, 5000), 0);
    }
    mq_conf_t conf = {.url = mqt_url, .app_id = "unit-held", .settle_later = 1, .prefetch = 10};
    mq_t *c = mq_new(&conf);
    held_t h = {0};
    mq_consume(c, q, hold_handler, &h);
    volatile int stop = 0;
    uint64_t t0 = core_now_ms();
    while (h.n < 4 && core_now_ms() - t0 < 5000)
        cr_assert_leq(mq_step(c, &stop, 50, 2), 2, "more deliveries than asked for");
    cr_assert_eq(h.n, 4, "got %d of 4 deliveries", h.n);
    cr_assert_geq(mq_fd(c), 0);
    cr_assert_str_eq(h.body[0], "a");
    cr_assert_eq(mq_settle(c, &h.d[3], MQ_ACK), 0); /* d: acked alone, a..c still held */
    cr_assert_eq(mq_settle(c, &h.d[1], MQ_DEAD), 0); /* b: dead-lettered */
    cr_assert_eq(mq_settle(c, &h.d[2], MQ_ACK), 0);  /* c */
    for (int i = 0; i < 5; i++)
        mq_step(c, &stop, 20, 8);
    mq_free(c); /* a is still held: the broker requeues it */

    amqp_connection_state_t raw = mqt_raw_open();
    cr_assert(mqt_raw_wait_count(raw, q, 1, 5000), "the held message must be back in %s", q);
    cr_assert(mqt_raw_wait_count(raw, dlq, 1, 5000), "b must be dead-lettered");
    amqp_message_t m;
    cr_assert(mqt_raw_get(raw, q, &m));
    cr_assert_eq(m.body.len, 1);
    cr_assert_eq(((char *)m.body.bytes)[0], 'a');
    amqp_destroy_message(&m);
    cr_assert_not(mqt_raw_get(raw, q, &m), "only a may remain");

    /* a settle naming a delivery of a connection that is gone does nothing */
    c = mq_new(&conf);
    cr_assert_eq(mq_settle(c, &h.d[0], MQ_ACK), MQ_EDOWN);
    mq_free(c);
    mqt_raw_delete_with_dlq(raw, q);
    mqt_raw_close(raw);
    mq_free(pub);
}
