/* output.guarantee=exactly_once: each batch's records and offsets in one
 * Kafka transaction, tied to the Redis checkpoint, so a read_committed
 * reader of the alert topic sees every alert once across crashes (at random
 * points, and in each window of the protocol), a rebalance and a zombie.
 *
 * librdkafka 2.0's mock cluster runs the transactional protocol but keeps
 * no transactional offsets and filters no aborted records, so the proofs
 * of "no duplicate" run on the real broker (TEST_KAFKA_BROKER=real); on the
 * mock, broker faults injected into the transactional requests must lose
 * nothing and count nothing twice. */
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

static service_proc_t svc[3];

static void setup(void) {
    fixture_options_t opts = {.input_partitions = 6};
    fixture_start(&opts);
}

/* Redis that keeps what it acknowledged across a stop (AOF, fsync always). */
static void setup_persistent(void) {
    fixture_options_t opts = {.input_partitions = 6, .persistent_redis = true};
    fixture_start(&opts);
}

/* Quick failure detection; static membership, so a restarted member keeps
 * its transactional.id and fences (aborts) what its former self left open. */
static const char *const STATIC_MEMBER[] = {"output.guarantee=exactly_once",
                                            "kafka.consumer.session.timeout.ms=6000",
                                            "kafka.consumer.group.instance.id=member-1", NULL};
static const char *const EXACTLY_ONCE[] = {"output.guarantee=exactly_once", NULL};
static const char *const EXACTLY_ONCE_FAST[] = {"output.guarantee=exactly_once",
                                                "kafka.consumer.session.timeout.ms=3000", NULL};

static bool needs_real_broker(const char *what) {
    if (kafka.mock) fprintf(stderr, "SKIP %s: the mock cluster keeps no transactional offsets "
                            "and shows aborted records\n", what);
    return kafka.mock != NULL;
}

static void assert_no_duplicate(const stream_t *s, const char *what) {
    size_t duplicates = 0;
    stream_assert_outcome(s, 180000, &duplicates);
    fprintf(stderr, "%s: %zu payments, %zu alerts, %zu duplicates\n", what, s->events,
            s->alert_count, duplicates);
    if (duplicates) fixture_dump_logs(60);
    ck_assert_int_eq(duplicates, 0);
}

START_TEST(test_sigkill_at_random_points_duplicates_no_alert) {
    if (needs_real_broker("sigkill")) return;
    ck_assert_int_eq(scenario_sigkill(STATIC_MEMBER, 5, 100000, 31), 0);
}
END_TEST

/* The instance kills itself at one point of the protocol (a test hook),
 * at its first batch with records; its successor must neither lose nor
 * repeat what that batch decided. */
static void crash_at(const char *point, const char *successor_log) {
    stream_t s;
    stream_make(&s, 20000, 400, 20, 32);
    setenv("FD_TEST_CRASH_POINT", point, 1);
    service_start(&svc[0], &kafka, &redis_srv, STATIC_MEMBER);
    unsetenv("FD_TEST_CRASH_POINT");
    kafka_produce(&kafka, "payments", s.keys, s.values, s.events);
    bool crashed = service_wait_log(&svc[0], "test hook: crashing", 60000);
    if (!crashed) fixture_dump_logs(40);
    ck_assert(crashed);
    ck_assert_int_ne(service_stop(&svc[0]), 0); /* it died by SIGKILL */
    service_start(&svc[1], &kafka, &redis_srv, STATIC_MEMBER);
    ck_assert_msg(service_wait_log(&svc[1], successor_log, 60000), "no \"%s\"", successor_log);
    assert_no_duplicate(&s, point);
    ck_assert_int_eq(service_stop(&svc[1]), 0);
    stream_free(&s);
}

START_TEST(test_crash_after_the_step_before_the_commit_redelivers_once) {
    if (needs_real_broker("crash after the step")) return;
    crash_at("after_step", "redelivered");
}
END_TEST

START_TEST(test_crash_after_the_commit_clears_the_outbox_without_producing) {
    if (needs_real_broker("crash after the commit")) return;
    crash_at("after_commit", "without producing them again");
}
END_TEST

START_TEST(test_three_instances_rebalancing_duplicate_no_alert) {
    if (needs_real_broker("rebalance")) return;
    ck_assert_int_eq(scenario_three_instances(EXACTLY_ONCE, 60000, 33), 0);
}
END_TEST

/* Paused past its session timeout while another instance takes over, then
 * resumed: whatever it had in flight is refused by Redis or fenced by the
 * group's generation, so it commits nothing. */
START_TEST(test_a_resumed_zombie_commits_nothing) {
    if (needs_real_broker("zombie")) return;
    ck_assert_int_eq(scenario_zombie(EXACTLY_ONCE_FAST, 150000, 34, false), 0);
}
END_TEST

/* librdkafka's Kafka protocol ApiKeys (rdkafka_protocol.h is private). */
#define API_ADD_PARTITIONS_TO_TXN 24
#define API_ADD_OFFSETS_TO_TXN 25
#define API_END_TXN 26
#define API_TXN_OFFSET_COMMIT 28

/* Errors in the commit and in sending the offsets: each transaction they
 * hit is retried or aborted, and what it held goes again from the outbox. */
START_TEST(test_faults_in_commit_and_send_offsets_lose_nothing) {
    if (!kafka.mock) {
        fprintf(stderr, "SKIP transactional faults: needs the mock cluster's fault injection\n");
        return;
    }
    stream_t s;
    stream_make(&s, 40000, 800, 20, 35);
    s.redecided_ok = true;
    size_t quarter = s.events / 4;
    service_start(&svc[0], &kafka, &redis_srv, EXACTLY_ONCE);
    ck_assert(service_wait_log(&svc[0], "assigned", 60000));
    kafka_produce(&kafka, "payments", s.keys, s.values, quarter);
    ck_assert(fixture_wait_applied((long long)quarter, 60000));
    /* Retriable ones first, then ones that abort the transaction. */
    rd_kafka_mock_push_request_errors(kafka.mock, API_END_TXN, 3,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                      RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS);
    rd_kafka_mock_push_request_errors(kafka.mock, API_TXN_OFFSET_COMMIT, 2,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    rd_kafka_mock_push_request_errors(kafka.mock, API_ADD_OFFSETS_TO_TXN, 2,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
    kafka_produce(&kafka, "payments", s.keys + quarter, s.values + quarter, quarter);
    ck_assert(fixture_wait_applied((long long)(2 * quarter), 60000));
    rd_kafka_mock_push_request_errors(kafka.mock, API_TXN_OFFSET_COMMIT, 1,
                                      RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID);
    rd_kafka_mock_push_request_errors(kafka.mock, API_ADD_PARTITIONS_TO_TXN, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    rd_kafka_mock_push_request_errors(kafka.mock, API_END_TXN, 1,
                                      RD_KAFKA_RESP_ERR_INVALID_TXN_STATE);
    kafka_produce(&kafka, "payments", s.keys + 2 * quarter, s.values + 2 * quarter,
                  s.events - 2 * quarter);
    size_t duplicates = 0;
    stream_assert_outcome(&s, 180000, &duplicates);
    fprintf(stderr, "transactional faults: %zu alerts seen again (the mock shows aborted "
            "records)\n", duplicates);
    ck_assert_int_eq(kill(svc[0].pid, 0), 0); /* still running */
    ck_assert(service_log_has(&svc[0], "transaction: commit", NULL)); /* the faults hit */
    ck_assert_int_eq(service_stop(&svc[0]), 0);
    stream_free(&s);
}
END_TEST

/* Redis away for longer than the transaction timeout while a transaction
 * is open: the broker aborts it, the commit after Redis is back fails, and
 * its partitions start over from their checkpoints in a new one. */
START_TEST(test_a_redis_outage_longer_than_the_transaction_timeout_loses_nothing) {
    stream_t s;
    stream_make(&s, 20000, 300, 20, 36);
    s.redecided_ok = kafka.mock != NULL; /* the mock shows the aborted records */
    size_t half = s.events / 2;
    const char *slow_commits[] = {"output.guarantee=exactly_once",
                                  "output.transaction.interval.ms=5000", NULL};
    service_start(&svc[0], &kafka, &redis_srv, slow_commits);
    ck_assert(service_wait_log(&svc[0], "assigned", 60000));
    kafka_produce(&kafka, "payments", s.keys, s.values, half);
    ck_assert(fixture_wait_applied((long long)half, 60000)); /* its transaction is open */
    redisFree(redis);
    redis_server_halt(&redis_srv);
    kafka_produce(&kafka, "payments", s.keys + half, s.values + half, s.events - half);
    sleep_ms(14000); /* past transaction.timeout.ms (10 s) */
    ck_assert_int_eq(kill(svc[0].pid, 0), 0);
    redis_server_resume(&redis_srv);
    redis = redis_server_connect(&redis_srv);
    size_t duplicates = 0;
    stream_assert_outcome(&s, 120000, &duplicates);
    fprintf(stderr, "redis outage: %zu duplicates; %s\n", duplicates,
            service_log_has(&svc[0], "transaction: ", NULL)
                ? "the open transaction was aborted and its partitions started over"
                : "the open transaction outlived the outage");
    if (!kafka.mock) ck_assert_int_eq(duplicates, 0);
    ck_assert_int_eq(service_stop(&svc[0]), 0);
    stream_free(&s);
}
END_TEST

/* A dead letter waits in the outbox with its batch's alerts and goes out in
 * the batch's transaction, its key and value the input's own bytes. */
START_TEST(test_dead_letters_go_out_in_the_transaction_byte_for_byte) {
    static const char bad_value[] = {'{', '"', 'u', '\0', '\xff', '"', '}'};
    const char *keys[] = {"k\x01\xfe", NULL, "user1"};
    const size_t key_lens[] = {3, 0, 5};
    const char *values[] = {bad_value, "not json", "{\"user_id\":\"user1\",\"amount\":10}"};
    const size_t value_lens[] = {sizeof(bad_value), 8, strlen(values[2])};
    service_start(&svc[0], &kafka, &redis_srv, EXACTLY_ONCE);
    ck_assert(service_wait_log(&svc[0], "assigned", 60000));
    kafka_produce_bytes(&kafka, "payments", keys, key_lens, values, value_lens, 3);
    record_list_t dlq = kafka_read_topic(&kafka, "payments-dlq", 2, 30000);
    ck_assert_int_eq(dlq.count, 2);
    for (size_t i = 0; i < dlq.count; i++) {
        const record_t *r = &dlq.items[i];
        bool first = r->value_len == sizeof(bad_value);
        ck_assert_mem_eq(r->value, first ? bad_value : "not json", r->value_len);
        if (first) ck_assert_mem_eq(r->key, "k\x01\xfe", 3);
        else ck_assert_ptr_null(r->key);
        ck_assert_ptr_nonnull(strstr(r->headers, "fraud.dlq.reason="));
        ck_assert_ptr_nonnull(strstr(r->headers, "fraud.source.topic=payments\n"));
    }
    record_list_free(&dlq);
    ck_assert(fixture_wait_applied(1, 30000));
    ck_assert_int_eq(service_stop(&svc[0]), 0);
}
END_TEST

START_TEST(test_exactly_once_needs_the_redis_backend) {
    const char *args[] = {"-X", "output.guarantee=exactly_once", "-X", "state.backend=memory",
                          "--dump-config", NULL};
    char err[2048];
    ck_assert_int_ne(service_run_once(args, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "needs state.backend=redis"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("transactions");
    TCase *tc = tcase_create("transactions");
    tcase_set_timeout(tc, 900);
    tcase_add_checked_fixture(tc, setup, fixture_teardown);
    const char *only = getenv("TEST_ONLY");
#define ADD(t) if (!only || strstr(#t, only)) tcase_add_test(tc, t)
    ADD(test_exactly_once_needs_the_redis_backend);
    ADD(test_dead_letters_go_out_in_the_transaction_byte_for_byte);
    ADD(test_faults_in_commit_and_send_offsets_lose_nothing);
    ADD(test_crash_after_the_step_before_the_commit_redelivers_once);
    ADD(test_crash_after_the_commit_clears_the_outbox_without_producing);
    ADD(test_three_instances_rebalancing_duplicate_no_alert);
    ADD(test_a_resumed_zombie_commits_nothing);
    ADD(test_sigkill_at_random_points_duplicates_no_alert);
    suite_add_tcase(s, tc);
    TCase *outage = tcase_create("redis_outage");
    tcase_set_timeout(outage, 900);
    tcase_add_checked_fixture(outage, setup_persistent, fixture_teardown);
    tc = outage;
    ADD(test_a_redis_outage_longer_than_the_transaction_timeout_loses_nothing);
    suite_add_tcase(s, outage);
    return run_suite(s, CK_NOFORK, CK_VERBOSE);
}
