/* State: bounded cache, TTL semantics, backends, rebalances and Redis
 * outages, against a real redis-server and the Kafka protocol. */
#include <check.h>

#include "check_main.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "decimal.h"
#include "fixture.h"
#include "reference_stream.h"

static service_proc_t svc, svc2;

static void start_servers(bool persistent, const char *password) {
    fixture_options_t opts = {.input_partitions = 6, .persistent_redis = persistent,
                              .redis_password = password};
    fixture_start(&opts);
}

static long long redis_int(const char *fmt, const char *arg) {
    redisReply *r = redisCommand(redis, fmt, arg);
    ck_assert_ptr_nonnull(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
    freeReplyObject(r);
    return v;
}

static bool wait_user_gone(const char *user, int timeout_ms) {
    char key[256];
    int64_t deadline = mono_ms() + timeout_ms;
    while (mono_ms() < deadline) {
        if (!redis_find_user_key(redis, user, key, sizeof(key))) return true;
        sleep_ms(50);
    }
    return false;
}

static char *user_field(const char *user, const char *field) {
    char key[256];
    ck_assert_msg(redis_find_user_key(redis, user, key, sizeof(key)), "no state for %s", user);
    return redis_hget(redis, key, field);
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(test_large_stream_with_tiny_cache_has_exact_totals) {
    stream_t s;
    start_servers(false, NULL);
    stream_make(&s, 200000, 50000, 0, 1);
    const char *extra[] = {"state.cache.max.entries=1000", NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    kafka_produce(&kafka, "payments", s.keys, s.values, s.events);
    bool ok = stream_totals_match(&s, 240000);
    if (!ok) fixture_dump_logs(30);
    ck_assert(ok);
    ck_assert_int_eq(service_stop(&svc), 0);
    stream_free(&s);
}
END_TEST

START_TEST(test_expired_state_is_gone_from_redis_and_next_payment_is_the_first) {
    start_servers(false, NULL);
    const char *extra[] = {"state.ttl.ms=1000", NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    const char *keys[] = {"ttl1"};
    const char *first[] = {"100"}, *second[] = {"50000"};
    kafka_produce(&kafka, "payments", keys, first, 1);
    ck_assert(wait_for_user_field(redis, "ttl1", "count", "1", 30000));
    char key[256];
    ck_assert(redis_find_user_key(redis, "ttl1", key, sizeof(key)));
    long long pttl = redis_int("PTTL %s", key);
    ck_assert_msg(pttl > 0 && pttl <= 1000, "PTTL %lld", pttl);
    ck_assert(wait_user_gone("ttl1", 5000));

    kafka_produce(&kafka, "payments", keys, second, 1);
    ck_assert(wait_for_user_field(redis, "ttl1", "cum", "50000", 30000));
    char *count = user_field("ttl1", "count");
    ck_assert_str_eq(count, "1");
    free(count);
    ck_assert_int_eq(service_stop(&svc), 0);
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", 0, 1500);
    ck_assert_int_eq(alerts.count, 0); /* 100 -> 50000 would alert without the TTL */
    record_list_free(&alerts);
}
END_TEST

START_TEST(test_return_expired_if_not_cleaned_up_uses_the_cached_value) {
    start_servers(false, NULL);
    const char *extra[] = {"state.ttl.ms=1000",
                           "state.ttl.visibility=return_expired_if_not_cleaned_up",
                           "state.ttl.cleanup.interval.ms=600000", NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    const char *keys[] = {"ttl2"};
    const char *first[] = {"100"}, *second[] = {"50000"};
    kafka_produce(&kafka, "payments", keys, first, 1);
    ck_assert(wait_for_user_field(redis, "ttl2", "count", "1", 30000));
    ck_assert(wait_user_gone("ttl2", 5000));

    kafka_produce(&kafka, "payments", keys, second, 1);
    ck_assert(wait_for_user_field(redis, "ttl2", "count", "2", 30000));
    char *cum = user_field("ttl2", "cum");
    ck_assert_str_eq(cum, "50100");
    free(cum);
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", 1, 10000);
    ck_assert_int_eq(alerts.count, 1);
    ck_assert_ptr_nonnull(strstr(alerts.items[0].value, "\"previous_amount\":100,"));
    record_list_free(&alerts);
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

START_TEST(test_memory_backend_needs_no_redis_and_alerts_the_same) {
    start_servers(false, NULL);
    char closed[64];
    snprintf(closed, sizeof(closed), "redis.url=redis://127.0.0.1:%d", harness_free_port());
    const char *extra[] = {"state.backend=memory", closed, NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    const char *keys[] = {"m1", "m1", "m2", "m1"};
    const char *values[] = {"5000", "7000", "1", "110000"};
    kafka_produce(&kafka, "payments", keys, values, 4);
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", 1, 30000);
    ck_assert_int_eq(alerts.count, 1);
    ck_assert_ptr_nonnull(strstr(alerts.items[0].value, "\"cumulative_amount\":122000,"));
    record_list_free(&alerts);
    ck_assert_int_eq(service_stop(&svc), 0);
    FILE *f = fopen(svc.log_path, "r");
    char line[2048];
    int warned = 0;
    while (f && fgets(line, sizeof(line), f)) warned |= strstr(line, "NOT durable") != NULL;
    if (f) fclose(f);
    ck_assert(warned);
}
END_TEST

/* The valid payments /metrics counts, or -1 when it does not answer. */
static long long valid_payments(int http_port) {
    static char text[65536];
    const char *needle = "fraud_events_total{result=\"valid\"} ";
    if (http_get(http_port, "/metrics", text, sizeof(text)) != 200) return -1;
    const char *at = strstr(text, needle);
    return at ? atoll(at + strlen(needle)) : -1;
}

START_TEST(test_memory_backend_commits_no_offset_past_an_unacknowledged_alert) {
    /* The memory backend does not wait for its alerts' acknowledgements,
     * so the offsets it commits are all that keeps it at least once. */
    start_servers(false, NULL);
    if (!kafka.mock) {
        fprintf(stderr, "SKIP unacknowledged alert: needs the mock cluster's leader control\n");
        return;
    }
    int http_port = harness_free_port();
    char closed[64], listen[64];
    snprintf(closed, sizeof(closed), "redis.url=redis://127.0.0.1:%d", harness_free_port());
    snprintf(listen, sizeof(listen), "http.listen=127.0.0.1:%d", http_port);
    const char *extra[] = {"state.backend=memory", closed, listen,
                           "kafka.consumer.auto.commit.interval.ms=100", NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    ck_assert(service_wait_log(&svc, "assigned 6 partition(s)", 30000));
    const char *keys[] = {"w1", "w1"};
    const char *values[] = {"100", "50000"};
    kafka_produce(&kafka, "payments", keys, values, 1);
    int64_t deadline = mono_ms() + 20000;
    while (kafka_committed_total(&kafka, "fraud-detector", "payments", 6) != 1 &&
           mono_ms() < deadline)
        sleep_ms(100);
    ck_assert_int_eq(kafka_committed_total(&kafka, "fraud-detector", "payments", 6), 1);

    /* The alert topic loses its leader: the alert cannot be acknowledged. */
    ck_assert_int_eq(rd_kafka_mock_partition_set_leader(kafka.mock, "fraud-alerts", 0, -1), 0);
    kafka_produce(&kafka, "payments", keys + 1, values + 1, 1);
    deadline = mono_ms() + 20000;
    while (valid_payments(http_port) != 2 && mono_ms() < deadline) sleep_ms(50);
    ck_assert_int_eq(valid_payments(http_port), 2);
    sleep_ms(2000); /* twenty auto-commits */
    ck_assert_int_eq(kafka_committed_total(&kafka, "fraud-detector", "payments", 6), 1);

    ck_assert_int_eq(rd_kafka_mock_partition_set_leader(kafka.mock, "fraud-alerts", 0, 1), 0);
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", 1, 30000);
    ck_assert_int_eq(alerts.count, 1);
    record_list_free(&alerts);
    deadline = mono_ms() + 20000;
    while (kafka_committed_total(&kafka, "fraud-detector", "payments", 6) != 2 &&
           mono_ms() < deadline)
        sleep_ms(100);
    ck_assert_int_eq(kafka_committed_total(&kafka, "fraud-detector", "payments", 6), 2);
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

START_TEST(test_two_instances_with_moving_partitions_keep_totals_exact) {
    stream_t s;
    start_servers(false, NULL);
    stream_make(&s, 30000, 500, 0, 2);
    size_t third = s.events / 3;
    service_start(&svc, &kafka, &redis_srv, NULL);
    ck_assert(service_wait_log(&svc, "assigned 6 partition(s)", 30000));
    kafka_produce(&kafka, "payments", s.keys, s.values, third);
    service_start(&svc2, &kafka, &redis_srv, NULL); /* takes some partitions */
    kafka_produce(&kafka, "payments", s.keys + third, s.values + third, third);
    ck_assert(service_wait_log(&svc2, "assigned", 30000));
    ck_assert(service_wait_log(&svc, "revoked", 30000));
    ck_assert_int_eq(service_stop(&svc), 0); /* gives them all to svc2 */
    kafka_produce(&kafka, "payments", s.keys + 2 * third, s.values + 2 * third,
                  s.events - 2 * third);
    bool ok = stream_totals_match(&s, 120000);
    if (!ok) {
        fixture_dump_logs(30);
    }
    ck_assert(ok);
    ck_assert_int_eq(service_stop(&svc2), 0);
    stream_free(&s);
}
END_TEST

START_TEST(test_redis_stop_and_start_mid_stream_loses_nothing) {
    stream_t s;
    start_servers(true, NULL);
    stream_make(&s, 20000, 300, 0, 3);
    size_t half = s.events / 2;
    service_start(&svc, &kafka, &redis_srv, NULL);
    kafka_produce(&kafka, "payments", s.keys, s.values, half);
    redisFree(redis);
    redis_server_halt(&redis_srv);
    kafka_produce(&kafka, "payments", s.keys + half, s.values + half, s.events - half);
    sleep_ms(2000); /* the service meets the outage */
    ck_assert_int_eq(kill(svc.pid, 0), 0);
    redis_server_resume(&redis_srv);
    redis = redis_server_connect(&redis_srv);
    bool ok = stream_totals_match(&s, 120000);
    if (!ok) fixture_dump_logs(30);
    ck_assert(ok);
    ck_assert_int_eq(service_stop(&svc), 0);
    FILE *f = fopen(svc.log_path, "r");
    char line[2048];
    int paused = 0, resumed = 0;
    while (f && fgets(line, sizeof(line), f)) {
        paused += strstr(line, "consumption paused") != NULL;
        resumed += strstr(line, "resuming consumption") != NULL;
    }
    if (f) fclose(f);
    ck_assert_int_ge(paused, 1);
    ck_assert_int_eq(paused, resumed); /* one line per state change, not per attempt */
    stream_free(&s);
}
END_TEST

START_TEST(test_redis_password_file_authenticates_and_a_wrong_one_fails_clearly) {
    start_servers(false, "s3cret-pw");
    char path[] = "/tmp/fraud-test-pw-XXXXXX";
    int fd = mkstemp(path);
    ck_assert(write(fd, "s3cret-pw\n", 10) == 10);
    close(fd);
    char setting[128];
    snprintf(setting, sizeof(setting), "redis.password.file=%s", path);
    const char *extra[] = {setting, NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    const char *keys[] = {"pw1"};
    const char *values[] = {"42"};
    kafka_produce(&kafka, "payments", keys, values, 1);
    ck_assert(wait_for_user_field(redis, "pw1", "count", "1", 30000));
    ck_assert_int_eq(service_stop(&svc), 0);

    char url[64], out[4096];
    snprintf(url, sizeof(url), "redis.url=redis://:wrong@127.0.0.1:%d", redis_srv.port);
    const char *args[] = {"-X", url, NULL};
    ck_assert_int_eq(service_run_once(args, out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, "AUTH") != NULL, "%s", out);
    ck_assert_ptr_null(strstr(out, "wrong@"));
    unlink(path);
}
END_TEST

int main(void) {
    Suite *s = suite_create("state");
    TCase *tc = tcase_create("state");
    tcase_set_timeout(tc, 400);
    tcase_add_checked_fixture(tc, NULL, fixture_teardown);
    tcase_add_test(tc, test_expired_state_is_gone_from_redis_and_next_payment_is_the_first);
    tcase_add_test(tc, test_return_expired_if_not_cleaned_up_uses_the_cached_value);
    tcase_add_test(tc, test_memory_backend_needs_no_redis_and_alerts_the_same);
    tcase_add_test(tc, test_memory_backend_commits_no_offset_past_an_unacknowledged_alert);
    tcase_add_test(tc, test_redis_password_file_authenticates_and_a_wrong_one_fails_clearly);
    tcase_add_test(tc, test_two_instances_with_moving_partitions_keep_totals_exact);
    tcase_add_test(tc, test_redis_stop_and_start_mid_stream_loses_nothing);
    tcase_add_test(tc, test_large_stream_with_tiny_cache_has_exact_totals);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_NOFORK, CK_VERBOSE);
}
