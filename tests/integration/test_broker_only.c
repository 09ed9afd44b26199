/* What only a real Apache Kafka broker can show (TEST_KAFKA_BROKER=real):
 * the cooperative-sticky assignor of a real group coordinator around a
 * member's crash,
 * a backlog longer than librdkafka's mock cluster keeps (100,000 messages
 * or 5 MB per partition), transactions read with read_committed, and a
 * broker restart in the middle of a stream. */
#include <check.h>

#include "check_main.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "reference_stream.h"

static service_proc_t svc[3];

static void start_servers(int partitions) {
    fixture_options_t opts = {.input_partitions = partitions};
    fixture_start(&opts);
}

/* A member that dies without leaving: the real coordinator expels it when
 * its session times out and hands its partitions to the two survivors,
 * then gives some back when it returns, with the incremental protocol. */
START_TEST(test_three_instances_rebalance_cooperatively_around_a_crash) {
    static const char *fast_group[] = {"kafka.consumer.session.timeout.ms=3000", NULL};
    stream_t s;
    start_servers(6);
    stream_make(&s, 60000, 1000, 25, 21);
    size_t third = s.events / 3;
    for (int i = 0; i < 3; i++) service_start(&svc[i], &kafka, &redis_srv, fast_group);
    for (int i = 0; i < 3; i++) ck_assert(service_wait_log(&svc[i], "assigned", 60000));
    kafka_produce(&kafka, "payments", s.keys, s.values, third);
    service_kill(&svc[0]); /* no LeaveGroup: only the session timeout tells */
    kafka_produce(&kafka, "payments", s.keys + third, s.values + third, third);
    /* Every payment so far, the dead member's partitions' included, is
     * applied by the two survivors before it comes back. */
    ck_assert(fixture_wait_applied((long long)(2 * third), 90000));
    ck_assert_int_eq(fixture_applied_payments(), (long long)(2 * third));
    service_start(&svc[0], &kafka, &redis_srv, fast_group);
    ck_assert(service_wait_log(&svc[0], "assigned", 60000));
    kafka_produce(&kafka, "payments", s.keys + 2 * third, s.values + 2 * third,
                  s.events - 2 * third);
    size_t duplicates = 0;
    stream_assert_outcome(&s, 240000, &duplicates);
    fprintf(stderr, "cooperative rebalance: %zu alerts redelivered after the crash\n",
            duplicates);
    /* The real coordinator agreed on the incremental protocol. */
    for (int i = 0; i < 3; i++)
        ck_assert_msg(service_log_has(&svc[i], "assigned", "COOPERATIVE"),
                      "instance %d was not assigned with the cooperative protocol", i);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(service_stop(&svc[i]), 0);
    stream_free(&s);
}
END_TEST

START_TEST(test_backlog_longer_than_the_mock_keeps_is_counted_whole) {
    stream_t s;
    start_servers(2);
    /* 240,000 payments on 2 partitions: about 120,000 each, past the mock
     * cluster's 100,000 messages per partition. All produced before the
     * service starts, so it reads them from the log's beginning. */
    stream_make(&s, 240000, 5000, 50, 22);
    kafka_produce(&kafka, "payments", s.keys, s.values, s.events);
    service_start(&svc[0], &kafka, &redis_srv, NULL);
    size_t duplicates = 0;
    stream_assert_outcome(&s, 240000, &duplicates);
    ck_assert_int_eq(duplicates, 0);
    ck_assert_int_eq(service_stop(&svc[0]), 0);
    stream_free(&s);
}
END_TEST

/* Produces count payments of `user` in one transaction, committed or
 * aborted. */
static void produce_transaction(const char *user, const char *amount, int count, bool commit) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", kafka.bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "transactional.id", "fraud-test-tx", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ck_assert_msg(rk != NULL, "%s", errstr);
    rd_kafka_error_t *error = rd_kafka_init_transactions(rk, 60000);
    ck_assert_msg(!error, "init_transactions: %s", error ? rd_kafka_error_string(error) : "");
    error = rd_kafka_begin_transaction(rk);
    ck_assert_msg(!error, "begin_transaction");
    for (int i = 0; i < count; i++) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC("payments"), RD_KAFKA_V_KEY(user, strlen(user)),
            RD_KAFKA_V_VALUE((void *)amount, strlen(amount)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        ck_assert_msg(!err, "produce: %s", rd_kafka_err2str(err));
    }
    error = commit ? rd_kafka_commit_transaction(rk, 60000) : rd_kafka_abort_transaction(rk, 60000);
    ck_assert_msg(!error, "%s: %s", commit ? "commit" : "abort",
                  error ? rd_kafka_error_string(error) : "");
    rd_kafka_destroy(rk);
}

START_TEST(test_only_committed_transactions_are_counted) {
    start_servers(3);
    service_start(&svc[0], &kafka, &redis_srv, NULL);
    ck_assert(service_wait_log(&svc[0], "assigned", 60000));
    produce_transaction("tx-user", "100", 40, false); /* aborted: never happened */
    produce_transaction("tx-user", "5", 25, true);
    produce_transaction("tx-user", "100", 10, false);
    produce_transaction("tx-user", "7", 3, true);
    const char *keys[] = {"tx-user"}, *values[] = {"1"};
    kafka_produce(&kafka, "payments", keys, values, 1); /* outside any transaction */
    ck_assert(wait_for_user_field(redis, "tx-user", "count", "29", 60000));
    char key[300];
    ck_assert(redis_find_user_key(redis, "tx-user", key, sizeof(key)));
    char *cum = redis_hget(redis, key, "cum");
    ck_assert_str_eq(cum, "147"); /* 25*5 + 3*7 + 1 */
    free(cum);
    sleep_ms(2000); /* nothing aborted trickles in later */
    char *count = redis_hget(redis, key, "count");
    ck_assert_str_eq(count, "29");
    free(count);
    ck_assert_int_eq(service_stop(&svc[0]), 0);
}
END_TEST

START_TEST(test_broker_restart_mid_stream_keeps_totals_exact) {
    stream_t s;
    start_servers(3);
    stream_make(&s, 60000, 1000, 25, 23);
    size_t half = s.events / 2;
    service_start(&svc[0], &kafka, &redis_srv, NULL);
    ck_assert(service_wait_log(&svc[0], "assigned", 60000));
    kafka_produce(&kafka, "payments", s.keys, s.values, half);
    /* Restart mid-stream when the service is that quick; the outcome decides. */
    (void)fixture_wait_applied(1, 60000);
    fprintf(stderr, "broker restart at %lld of %zu payments applied\n",
            fixture_applied_payments(), half);
    kafka_broker_restart(&kafka);
    kafka_produce(&kafka, "payments", s.keys + half, s.values + half, s.events - half);
    size_t duplicates = 0;
    stream_assert_outcome(&s, 240000, &duplicates);
    fprintf(stderr, "broker restart: %zu alerts redelivered\n", duplicates);
    ck_assert_int_eq(service_stop(&svc[0]), 0);
    stream_free(&s);
}
END_TEST

int main(void) {
    if (!kafka_use_real_broker()) {
        fprintf(stderr, "test_broker_only: needs TEST_KAFKA_BROKER=real (a real Apache Kafka "
                        "broker)\n");
        return 2;
    }
    Suite *s = suite_create("broker_only");
    TCase *tc = tcase_create("broker_only");
    tcase_add_checked_fixture(tc, NULL, fixture_teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_three_instances_rebalance_cooperatively_around_a_crash);
    tcase_add_test(tc, test_backlog_longer_than_the_mock_keeps_is_counted_whole);
    tcase_add_test(tc, test_only_committed_transactions_are_counted);
    tcase_add_test(tc, test_broker_restart_mid_stream_keeps_totals_exact);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_NOFORK, CK_VERBOSE);
}
