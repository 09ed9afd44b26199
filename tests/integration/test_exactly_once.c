/* Exactly-once state and effectively-once alerts: crashes at random points,
 * instances joining and leaving, and broker faults, against a real
 * redis-server and the Kafka protocol (librdkafka's mock cluster). */
#include <check.h>

#include "check_main.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "reference_stream.h"
#include "scenarios.h"
#include "rules.h"

static service_proc_t svc[3];

/* Quick failure detection, so each restart after SIGKILL rejoins soon. */
static const char *FAST_GROUP[] = {"kafka.consumer.session.timeout.ms=3000", NULL};

static void setup(void) {
    fixture_options_t opts = {.input_partitions = 6};
    fixture_start(&opts);
}

START_TEST(test_sigkill_at_random_points_changes_each_user_exactly_once) {
    size_t repeated = scenario_sigkill(FAST_GROUP, 6, 120000, 11);
    fprintf(stderr, "sigkill: %zu alerts redelivered (at_least_once)\n", repeated);
}
END_TEST

START_TEST(test_three_instances_joining_and_leaving_keep_totals_exact) {
    /* Clean handovers redeliver nothing. */
    ck_assert_int_eq(scenario_three_instances(NULL, 60000, 12), 0);
}
END_TEST

/* A zombie: an instance paused mid-stream (SIGSTOP) past its session
 * timeout, whose partitions another instance took over and moved on, then
 * resumed with a batch applied and a step in flight or about to go. Its
 * steps meet the newer checkpoints and are refused, with the batch applied
 * after them; nothing it did while it was a zombie counts. */
START_TEST(test_a_resumed_zombie_is_refused_and_changes_nothing) {
    size_t repeated = scenario_zombie(FAST_GROUP, 150000, 16, true);
    fprintf(stderr, "zombie: %zu alerts decided again\n", repeated);
}
END_TEST

/* librdkafka's Kafka protocol ApiKeys (rdkafka_protocol.h is private). */
#define API_PRODUCE 0
#define API_FETCH 1
#define API_OFFSET_COMMIT 8

START_TEST(test_broker_faults_lose_no_alert_and_count_nothing_twice) {
    stream_t s;
    if (!kafka.mock) { /* a real broker is restarted in test_real_kafka instead */
        fprintf(stderr, "SKIP broker faults: needs the mock cluster's fault injection\n");
        return;
    }
    stream_make(&s, 40000, 800, 20, 13);
    size_t quarter = s.events / 4;
    service_start(&svc[0], &kafka, &redis_srv, NULL);
    ck_assert(service_wait_log(&svc[0], "assigned", 60000));
    kafka_produce(&kafka, "payments", s.keys, s.values, quarter);

    /* Retriable errors on produce, fetch and commit... */
    rd_kafka_mock_push_request_errors(kafka.mock, API_PRODUCE, 6,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    rd_kafka_mock_push_request_errors(kafka.mock, API_FETCH, 4,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    rd_kafka_mock_push_request_errors(kafka.mock, API_OFFSET_COMMIT, 4,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    kafka_produce(&kafka, "payments", s.keys + quarter, s.values + quarter, quarter);
    sleep_ms(1500);

    /* ...then the broker goes down mid-stream and comes back. */
    rd_kafka_mock_broker_set_down(kafka.mock, 1);
    sleep_ms(2000);
    rd_kafka_mock_broker_set_up(kafka.mock, 1);
    kafka_produce(&kafka, "payments", s.keys + 2 * quarter, s.values + 2 * quarter,
                  s.events - 2 * quarter);

    size_t duplicates = 0;
    stream_assert_outcome(&s, 180000, &duplicates);
    ck_assert_int_eq(kill(svc[0].pid, 0), 0);
    ck_assert_int_eq(service_stop(&svc[0]), 0);
    stream_free(&s);
}
END_TEST

START_TEST(test_replayed_batch_below_the_checkpoint_changes_nothing) {
    /* Commit offsets lag the checkpoint on purpose: the second instance
     * then reads messages that are already in Redis and must skip them. */
    stream_t s;
    stream_make(&s, 5000, 50, 10, 14);
    const char *no_commit[] = {"kafka.consumer.enable.auto.commit=false", NULL};
    service_start(&svc[0], &kafka, &redis_srv, no_commit);
    kafka_produce(&kafka, "payments", s.keys, s.values, s.events);
    ck_assert(stream_totals_match(&s, 60000));
    service_kill(&svc[0]); /* nothing committed to Kafka at all */
    service_start(&svc[1], &kafka, &redis_srv, NULL);
    ck_assert(service_wait_log(&svc[1], "resuming at", 60000));
    sleep_ms(1000);
    size_t duplicates = 0;
    stream_assert_outcome(&s, 180000, &duplicates);
    ck_assert_int_eq(service_stop(&svc[1]), 0);
    stream_free(&s);
}
END_TEST

/* Redis comes back older than the group's progress: a replica promoted
 * before it had the last steps, or a restored snapshot. The checkpoint went
 * back with the state, so the payments after it are read again from Kafka,
 * although the group's committed offset is past them. */
START_TEST(test_redis_older_than_the_group_replays_from_its_checkpoint) {
    stream_t s;
    stream_make(&s, 20000, 400, 20, 15);
    s.redecided_ok = true; /* the second half's alerts are decided twice */
    size_t half = s.events / 2;
    service_start(&svc[0], &kafka, &redis_srv, NULL);
    kafka_produce(&kafka, "payments", s.keys, s.values, half);
    ck_assert(fixture_wait_applied((long long)half, 60000));
    redisReply *r = redisCommand(redis, "SAVE"); /* the snapshot Redis will come back with */
    ck_assert(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    kafka_produce(&kafka, "payments", s.keys + half, s.values + half, s.events - half);
    ck_assert(fixture_wait_applied((long long)s.events, 60000));
    ck_assert_int_eq(service_stop(&svc[0]), 0); /* commits every offset */
    redisFree(redis);
    redis_server_halt(&redis_srv); /* no save at shutdown: dump.rdb is the snapshot */
    redis_server_resume(&redis_srv);
    redis = redis_server_connect(&redis_srv);
    ck_assert_int_eq(fixture_applied_payments(), (long long)half);
    service_start(&svc[1], &kafka, &redis_srv, NULL);
    ck_assert(service_wait_log(&svc[1], "past the Redis checkpoint", 60000));
    size_t duplicates = 0;
    stream_assert_outcome(&s, 120000, &duplicates);
    fprintf(stderr, "older redis: %zu alerts decided again\n", duplicates);
    ck_assert_int_eq(service_stop(&svc[1]), 0);
    stream_free(&s);
}
END_TEST

START_TEST(test_outbox_left_by_a_crash_is_delivered_on_assignment) {
    /* What a crash between the atomic step and the alert's delivery leaves. */
    const char *json = "{\"alert_id\":\"payments/3/41/amount_jump\",\"rule\":\"amount_jump\","
                       "\"user_id\":\"ghost\",\"amount\":20000}";
    redisReply *r = redisCommand(redis, "HSET %s %s %s", "fraud:{payments/3}:outbox",
                                 "payments/3/41/amount_jump", json);
    freeReplyObject(r);
    service_start(&svc[0], &kafka, &redis_srv, NULL);
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", 1, 30000);
    ck_assert_int_eq(alerts.count, 1);
    ck_assert_str_eq(alerts.items[0].value, json);
    ck_assert_str_eq(alerts.items[0].key, "ghost");
    record_list_free(&alerts);
    ck_assert(service_wait_log(&svc[0], "redelivered 1 record(s)", 10000));
    r = redisCommand(redis, "HLEN %s", "fraud:{payments/3}:outbox");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    ck_assert_int_eq(service_stop(&svc[0]), 0);
}
END_TEST

START_TEST(test_outbox_record_with_trace_context_keeps_its_headers_when_redelivered) {
    /* As outbox_queue() stores an alert whose payment carried a trace. */
    const char *parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const char *state = "congo=t61rcWkgMzE";
    const char *json = "{\"alert_id\":\"payments/2/7/velocity\",\"schema_version\":1,"
                       "\"rule\":\"velocity\",\"user_id\":\"traced\",\"amount\":5,"
                       "\"detected_at\":1700000000012}";
    char stored[512];
    snprintf(stored, sizeof(stored), "a %d 7 t%zu,%zu %s%s %s", (int)RULE_VELOCITY,
             strlen(parent), strlen(state), parent, state, json);
    redisReply *r = redisCommand(redis, "HSET %s %s %s", "fraud:{payments/2}:outbox",
                                 "payments/2/7/velocity", stored);
    freeReplyObject(r);
    const char *cloudevents[] = {"output.cloudevents=true", NULL};
    service_start(&svc[0], &kafka, &redis_srv, cloudevents);
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", 1, 30000);
    ck_assert_int_eq(alerts.count, 1);
    ck_assert_str_eq(alerts.items[0].value, json);
    ck_assert_str_eq(alerts.items[0].key, "traced");
    const char *h = alerts.items[0].headers;
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(strstr(h, "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    ck_assert_ptr_nonnull(strstr(h, "tracestate=congo=t61rcWkgMzE\n"));
    ck_assert_ptr_nonnull(strstr(h, "ce_id=payments/2/7/velocity\n"));
    ck_assert_ptr_nonnull(strstr(h, "ce_type=fraud.alert.velocity\n"));
    ck_assert_ptr_nonnull(strstr(h, "ce_time=2023-11-14T22:13:20.012Z\n"));
    record_list_free(&alerts);
    ck_assert(service_wait_log(&svc[0], "redelivered 1 record(s)", 10000));
    ck_assert_int_eq(service_stop(&svc[0]), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("exactly_once");
    TCase *tc = tcase_create("exactly_once");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, fixture_teardown);
    tcase_add_test(tc, test_outbox_left_by_a_crash_is_delivered_on_assignment);
    tcase_add_test(tc, test_outbox_record_with_trace_context_keeps_its_headers_when_redelivered);
    tcase_add_test(tc, test_replayed_batch_below_the_checkpoint_changes_nothing);
    tcase_add_test(tc, test_redis_older_than_the_group_replays_from_its_checkpoint);
    tcase_add_test(tc, test_three_instances_joining_and_leaving_keep_totals_exact);
    tcase_add_test(tc, test_a_resumed_zombie_is_refused_and_changes_nothing);
    tcase_add_test(tc, test_broker_faults_lose_no_alert_and_count_nothing_twice);
    tcase_add_test(tc, test_sigkill_at_random_points_changes_each_user_exactly_once);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_NOFORK, CK_VERBOSE);
}
