/* State: bounded cache, TTL semantics, backends, rebalances and Redis
 * outages, against a real redis-server and the Kafka protocol. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "decimal.h"
#include "harness.h"

static redis_server_t redis_srv;
static kafka_cluster_t kafka;
static service_proc_t svc, svc2;
static redisContext *redis;

static void start_servers(bool persistent, const char *password) {
    memset(&redis_srv, 0, sizeof(redis_srv));
    if (password) snprintf(redis_srv.password, sizeof(redis_srv.password), "%s", password);
    redis_server_start(&redis_srv, persistent);
    kafka_cluster_start(&kafka, 6);
    redis = redis_server_connect(&redis_srv);
}

static void setup(void) {
    memset(&svc, 0, sizeof(svc));
    memset(&svc2, 0, sizeof(svc2));
    redis = NULL;
}

static void teardown(void) {
    if (svc.pid > 0) service_kill(&svc);
    if (svc2.pid > 0) service_kill(&svc2);
    if (redis) redisFree(redis);
    kafka_cluster_stop(&kafka);
    redis_server_stop(&redis_srv);
}

static void show_log(const service_proc_t *s) {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", s->log_path);
    if (system(cmd) != 0) fprintf(stderr, "(no log)\n");
}

static long long redis_int(const char *fmt, const char *arg) {
    redisReply *r = redisCommand(redis, fmt, arg);
    ck_assert_ptr_nonnull(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
    freeReplyObject(r);
    return v;
}

static bool wait_key_gone(const char *key, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    while (mono_ms() < deadline) {
        if (redis_int("EXISTS %s", key) == 0) return true;
        sleep_ms(50);
    }
    return false;
}

/* ---- a stream with a reference, checked with one pipelined read -------- */

typedef struct stream {
    size_t events, users;
    char (*keys_buf)[16];
    char (*values_buf)[40];
    const char **keys, **values;
    decimal_t *cum;
    int64_t *count;
} stream_t;

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next_random(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void stream_make(stream_t *s, size_t events, size_t users) {
    s->events = events;
    s->users = users;
    s->keys_buf = calloc(events, sizeof(*s->keys_buf));
    s->values_buf = calloc(events, sizeof(*s->values_buf));
    s->keys = calloc(events, sizeof(char *));
    s->values = calloc(events, sizeof(char *));
    s->cum = calloc(users, sizeof(decimal_t));
    s->count = calloc(users, sizeof(int64_t));
    for (size_t i = 0; i < events; i++) {
        /* Every user at least once, then at random. */
        size_t u = i < users ? i : (size_t)(next_random() % users);
        decimal_t amount = (decimal_t)(next_random() % 100000000); /* up to 9999.9999 */
        snprintf(s->keys_buf[i], sizeof(s->keys_buf[i]), "s%zu", u);
        decimal_format(amount, s->values_buf[i], sizeof(s->values_buf[i]));
        s->keys[i] = s->keys_buf[i];
        s->values[i] = s->values_buf[i];
        s->cum[u] += amount;
        s->count[u]++;
    }
}

static void stream_free(stream_t *s) {
    free(s->keys_buf);
    free(s->values_buf);
    free(s->keys);
    free(s->values);
    free(s->cum);
    free(s->count);
}

/* Waits until Redis holds the reference for every user; false on timeout,
 * with the first mismatch printed. */
static bool stream_totals_match(const stream_t *s, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    char mismatch[256] = "";
    do {
        size_t bad = 0;
        for (size_t u = 0; u < s->users; u++) {
            char key[64]; /* hiredis formats only %s and %b: build the key here */
            snprintf(key, sizeof(key), "fraud:user:s%zu", u);
            redisAppendCommand(redis, "HMGET %s cum count", key);
        }
        for (size_t u = 0; u < s->users; u++) {
            redisReply *r = NULL;
            ck_assert_msg(redisGetReply(redis, (void **)&r) == REDIS_OK, "redis: %s",
                          redis->errstr);
            char want_cum[DECIMAL_TEXT_MAX], want_count[24];
            decimal_format(s->cum[u], want_cum, sizeof(want_cum));
            snprintf(want_count, sizeof(want_count), "%lld", (long long)s->count[u]);
            const char *cum = r->element[0]->str, *count = r->element[1]->str;
            if (!cum || !count || strcmp(cum, want_cum) || strcmp(count, want_count)) {
                if (!bad)
                    snprintf(mismatch, sizeof(mismatch), "s%zu: cum %s count %s, want %s %s", u,
                             cum ? cum : "-", count ? count : "-", want_cum, want_count);
                bad++;
            }
            freeReplyObject(r);
        }
        if (!bad) return true;
        sleep_ms(250);
    } while (mono_ms() < deadline);
    fprintf(stderr, "totals differ: %s\n", mismatch);
    return false;
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(test_large_stream_with_tiny_cache_has_exact_totals) {
    stream_t s;
    start_servers(false, NULL);
    stream_make(&s, 200000, 50000);
    const char *extra[] = {"state.cache.max.entries=1000", NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    kafka_produce(&kafka, "payments", s.keys, s.values, s.events);
    bool ok = stream_totals_match(&s, 240000);
    if (!ok) show_log(&svc);
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
    long long pttl = redis_int("PTTL %s", "fraud:user:ttl1");
    ck_assert_msg(pttl > 0 && pttl <= 1000, "PTTL %lld", pttl);
    ck_assert(wait_key_gone("fraud:user:ttl1", 5000));

    kafka_produce(&kafka, "payments", keys, second, 1);
    ck_assert(wait_for_user_field(redis, "ttl1", "cum", "50000", 30000));
    char *count = redis_hget(redis, "fraud:user:ttl1", "count");
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
    ck_assert(wait_key_gone("fraud:user:ttl2", 5000));

    kafka_produce(&kafka, "payments", keys, second, 1);
    ck_assert(wait_for_user_field(redis, "ttl2", "count", "2", 30000));
    char *cum = redis_hget(redis, "fraud:user:ttl2", "cum");
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

START_TEST(test_two_instances_with_moving_partitions_keep_totals_exact) {
    stream_t s;
    start_servers(false, NULL);
    stream_make(&s, 30000, 500);
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
        show_log(&svc);
        show_log(&svc2);
    }
    ck_assert(ok);
    ck_assert_int_eq(service_stop(&svc2), 0);
    stream_free(&s);
}
END_TEST

START_TEST(test_redis_stop_and_start_mid_stream_loses_nothing) {
    stream_t s;
    start_servers(true, NULL);
    stream_make(&s, 20000, 300);
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
    if (!ok) show_log(&svc);
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
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_expired_state_is_gone_from_redis_and_next_payment_is_the_first);
    tcase_add_test(tc, test_return_expired_if_not_cleaned_up_uses_the_cached_value);
    tcase_add_test(tc, test_memory_backend_needs_no_redis_and_alerts_the_same);
    tcase_add_test(tc, test_redis_password_file_authenticates_and_a_wrong_one_fails_clearly);
    tcase_add_test(tc, test_two_instances_with_moving_partitions_keep_totals_exact);
    tcase_add_test(tc, test_redis_stop_and_start_mid_stream_loses_nothing);
    tcase_add_test(tc, test_large_stream_with_tiny_cache_has_exact_totals);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
