/* The operations endpoints of the real binary: /metrics counters after a
 * known stream, /readyz following Redis, /users/{id}, 404s and limits. */
#include <check.h>

#include "check_main.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static service_proc_t svc;
static int http_port;
static char listen_setting[64];
static char body[65536];

static void setup(void) {
    fixture_options_t opts = {.persistent_redis = true};
    fixture_start(&opts);
    http_port = harness_free_port();
    snprintf(listen_setting, sizeof(listen_setting), "http.listen=127.0.0.1:%d", http_port);
}

static void start_with(const char *extra_setting) {
    const char *extra[] = {listen_setting, extra_setting, NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    int64_t deadline = mono_ms() + 30000;
    while (http_get(http_port, "/healthz", body, sizeof(body)) != 200 && mono_ms() < deadline)
        sleep_ms(50);
}

/* The value of one exact metric line, e.g. name{label="x"}; -1 if absent. */
static long long metric(const char *text, const char *series) {
    char needle[256];
    snprintf(needle, sizeof(needle), "\n%s ", series);
    const char *at = strstr(text, needle);
    return at ? atoll(at + strlen(needle)) : -1;
}

static int wait_status(const char *path, int want, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    int status;
    do {
        status = http_get(http_port, path, body, sizeof(body));
        if (status == want) return status;
        sleep_ms(100);
    } while (mono_ms() < deadline);
    return status;
}

/* Every fraud_* name in the file at path is a series in the exposition. */
static void assert_series_exported(const char *exposition, const char *path) {
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char line[1024];
    int names = 0;
    while (fgets(line, sizeof(line), f)) {
        for (const char *p = strstr(line, "fraud_"); p; p = strstr(p + 1, "fraud_")) {
            char name[128], series[132];
            size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
            if (n >= sizeof(name) || (p > line && (p[-1] == '-' || p[-1] == '_'))) continue;
            memcpy(name, p, n);
            name[n] = '\0';
            snprintf(series, sizeof(series), "\n%s{", name);
            int found = strstr(exposition, series) != NULL;
            snprintf(series, sizeof(series), "\n%s ", name);
            found = found || strstr(exposition, series) != NULL;
            ck_assert_msg(found, "%s names %s, which /metrics does not export", path, name);
            names++;
        }
    }
    fclose(f);
    ck_assert_int_gt(names, 5);
}

START_TEST(test_metrics_count_exactly_what_was_produced) {
    start_with(NULL);
    const char *keys[] = {"user1", "user2", "user1", "user2", "user1", "user2", "user2",
                          "bad", "bad", "bad"};
    const char *values[] = {"5000", "2000", "7000", "8000", "110000", "3000", "120000",
                            "{oops", "-1", "1.23456"};
    kafka_produce(&kafka, "payments", keys, values, 10);
    ck_assert(wait_for_user_field(redis, "user2", "count", "4", 30000));
    int64_t deadline = mono_ms() + 30000;
    char text[65536] = "";
    /* Alerts are counted when raised, their acknowledgements when the
     * broker sends them: wait for the last counter to settle. */
    while (mono_ms() < deadline) {
        ck_assert_int_eq(http_get(http_port, "/metrics", text, sizeof(text)), 200);
        if (metric(text, "fraud_alerts_acknowledged_total{rule=\"amount_jump\"}") == 2) break;
        sleep_ms(100);
    }
    ck_assert_int_eq(metric(text, "fraud_events_total{result=\"valid\"}"), 7);
    ck_assert_int_eq(metric(text, "fraud_events_total{result=\"dead_letter\"}"), 3);
    ck_assert_int_eq(metric(text, "fraud_events_total{result=\"replayed\"}"), 0);
    ck_assert_int_eq(metric(text, "fraud_dead_letters_total{reason=\"malformed_json\"}"), 1);
    ck_assert_int_eq(metric(text, "fraud_dead_letters_total{reason=\"negative_amount\"}"), 1);
    ck_assert_int_eq(metric(text, "fraud_dead_letters_total{reason=\"amount_too_precise\"}"), 1);
    ck_assert_int_eq(metric(text, "fraud_alerts_total{rule=\"amount_jump\"}"), 2);
    ck_assert_int_eq(metric(text, "fraud_alerts_acknowledged_total{rule=\"amount_jump\"}"), 2);
    ck_assert_int_eq(metric(text, "fraud_cached_users"), 2);
    ck_assert_int_eq(metric(text, "fraud_assigned_partitions"), 3);
    ck_assert_int_eq(metric(text, "fraud_redis_up"), 1);
    ck_assert_int_eq(metric(text, "fraud_rule_enabled{rule=\"amount_jump\"}"), 1);
    ck_assert_int_eq(metric(text, "fraud_rule_enabled{rule=\"velocity\"}"), 0);
    ck_assert_int_ge(metric(text, "fraud_redis_commands_total"), 1);
    ck_assert_int_eq(metric(text, "fraud_event_to_alert_seconds_count"), 2);
    ck_assert_int_ge(metric(text, "fraud_batch_duration_seconds_count"), 1);
    ck_assert_ptr_nonnull(strstr(text, "# TYPE fraud_batch_duration_seconds histogram"));
    ck_assert_ptr_nonnull(strstr(text, "fraud_batch_duration_seconds_bucket{le=\"+Inf\"}"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE fraud_events_total counter"));
    /* Lag comes from librdkafka's statistics every 5 s. */
    deadline = mono_ms() + 15000;
    while ((metric(text, "fraud_consumer_lag{partition=\"0\"}") != 0 ||
            metric(text, "fraud_consumer_lag{partition=\"1\"}") != 0 ||
            metric(text, "fraud_consumer_lag{partition=\"2\"}") != 0) &&
           mono_ms() < deadline) {
        sleep_ms(250);
        http_get(http_port, "/metrics", text, sizeof(text));
    }
    for (int part = 0; part < 3; part++) {
        char series[64];
        snprintf(series, sizeof(series), "fraud_consumer_lag{partition=\"%d\"}", part);
        ck_assert_int_eq(metric(text, series), 0);
    }
    ck_assert_int_ge(metric(text, "fraud_kafka_brokers_up"), 1);
    /* The Prometheus alert rules, and their tests, name only series that
     * the service exports: neither can drift from the metric names. */
    assert_series_exported(text, FRAUD_SOURCE_DIR "/docker/prometheus/alerts.yml");
    assert_series_exported(text, FRAUD_SOURCE_DIR "/docker/prometheus/alerts.test.yml");
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

START_TEST(test_readyz_follows_redis_away_and_back) {
    start_with(NULL);
    ck_assert_int_eq(wait_status("/readyz", 200, 30000), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"ready\":true"));
    redisFree(redis);
    redis = NULL;
    redis_server_halt(&redis_srv);
    ck_assert_int_eq(wait_status("/readyz", 503, 15000), 503);
    ck_assert_ptr_nonnull(strstr(body, "\"reachable\":false"));
    ck_assert_int_eq(http_get(http_port, "/healthz", body, sizeof(body)), 200); /* alive */
    redis_server_resume(&redis_srv);
    redis = redis_server_connect(&redis_srv);
    ck_assert_int_eq(wait_status("/readyz", 200, 15000), 200);
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

START_TEST(test_users_endpoint_answers_known_unknown_and_encoded_ids) {
    start_with(NULL);
    const char *keys[] = {"user1", "user1", "user x/1"};
    const char *values[] = {"5000", "7.5", "12"};
    kafka_produce(&kafka, "payments", keys, values, 3);
    ck_assert(wait_for_user_field(redis, "user1", "count", "2", 30000));
    ck_assert_int_eq(http_get(http_port, "/users/user1", body, sizeof(body)), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"previous_amount\":7.5,"));
    ck_assert_ptr_nonnull(strstr(body, "\"cumulative_amount\":5007.5,"));
    ck_assert_ptr_nonnull(strstr(body, "\"event_count\":2,"));
    ck_assert_ptr_nonnull(strstr(body, "\"event_time\":1")); /* the user's latest, in ms */
    ck_assert_ptr_nonnull(strstr(body, "\"this_instance\":true"));
    ck_assert_ptr_nonnull(strstr(body, "\"ttl_remaining_ms\":null"));

    ck_assert_int_eq(http_get(http_port, "/users/nobody", body, sizeof(body)), 404);
    /* Percent-encoded: a space and a slash inside the id. */
    int64_t deadline = mono_ms() + 30000;
    int status;
    while ((status = http_get(http_port, "/users/user%20x%2F1", body, sizeof(body))) != 200 &&
           mono_ms() < deadline)
        sleep_ms(100);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(body, "\"user_id\":\"user x/1\""));
    ck_assert_int_eq(http_get(http_port, "/users/bad%zz", body, sizeof(body)), 400);
    ck_assert_int_eq(http_get(http_port, "/users/a%00b", body, sizeof(body)), 400);

    /* A new instance answers from Redis, and knows it owns the partition. */
    ck_assert_int_eq(service_stop(&svc), 0);
    start_with(NULL);
    ck_assert_int_eq(wait_status("/users/user1", 200, 30000), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"source\":\"redis\""));
    ck_assert_ptr_nonnull(strstr(body, "\"cumulative_amount\":5007.5,"));
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

START_TEST(test_expired_user_is_404_and_a_read_refreshes_under_on_read_and_write) {
    start_with("state.ttl.ms=1500");
    const char *keys[] = {"short"};
    const char *values[] = {"1"};
    kafka_produce(&kafka, "payments", keys, values, 1);
    ck_assert(wait_for_user_field(redis, "short", "count", "1", 30000));
    ck_assert_int_eq(http_get(http_port, "/users/short", body, sizeof(body)), 200);
    ck_assert_ptr_null(strstr(body, "\"ttl_remaining_ms\":null"));
    ck_assert_int_eq(wait_status("/users/short", 404, 10000), 404);
    ck_assert_int_eq(service_stop(&svc), 0);

    /* on_read_and_write: reading every 500 ms keeps a 1.5 s TTL alive. */
    const char *rw_settings = "state.ttl.update=on_read_and_write";
    const char *extra[] = {listen_setting, "state.ttl.ms=1500", rw_settings, NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    const char *keys2[] = {"kept"};
    kafka_produce(&kafka, "payments", keys2, values, 1);
    ck_assert(wait_for_user_field(redis, "kept", "count", "1", 30000));
    for (int i = 0; i < 8; i++) { /* 4 s, well past the TTL */
        ck_assert_int_eq(http_get(http_port, "/users/kept", body, sizeof(body)), 200);
        sleep_ms(500);
    }
    char key[256];
    ck_assert(redis_find_user_key(redis, "kept", key, sizeof(key)));
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

START_TEST(test_unknown_paths_methods_and_oversized_requests_are_refused) {
    start_with(NULL);
    ck_assert_int_eq(http_get(http_port, "/", body, sizeof(body)), 404);
    ck_assert_int_eq(http_get(http_port, "/users/", body, sizeof(body)), 404);
    ck_assert_int_eq(http_get(http_port, "/users/a/b", body, sizeof(body)), 404);
    ck_assert_int_eq(http_get(http_port, "/metrics/extra", body, sizeof(body)), 404);
    ck_assert_int_eq(http_request(http_port,
                                  "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                  "Connection: close\r\n\r\nabc",
                                  body, sizeof(body)),
                     405);
    ck_assert_int_eq(http_request(http_port,
                                  "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                  "Connection: close\r\n\r\nabc",
                                  body, sizeof(body)),
                     413);
    char long_id[400];
    memset(long_id, 'u', 300);
    long_id[300] = '\0';
    char path[512];
    snprintf(path, sizeof(path), "/users/%s", long_id);
    ck_assert_int_eq(http_get(http_port, path, body, sizeof(body)), 400);
    /* Headers beyond the 16 KiB request limit. */
    char *huge = malloc(40000);
    int n = snprintf(huge, 40000, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(huge + n, 'a', 30000);
    strcpy(huge + n + 30000, "\r\nConnection: close\r\n\r\n");
    int status = http_request(http_port, huge, body, sizeof(body));
    free(huge);
    ck_assert_msg(status == 431 || status == 413 || status == 414 || status == 400,
                  "oversized headers answered %d", status);
    ck_assert_int_eq(http_get(http_port, "/healthz", body, sizeof(body)), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"status\":\"ok\""));
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

/* Clients that keep asking while the service shuts down: the handlers
 * must never touch a Kafka or Redis handle that shutdown has freed. */
typedef struct hammer {
    pthread_t thread;
    const char *path;
    atomic_int *stop;
    long answered;
} hammer_t;

static void *hammer_endpoint(void *arg) {
    hammer_t *h = arg;
    char reply[4096];
    while (!atomic_load(h->stop))
        if (http_get(http_port, h->path, reply, sizeof(reply)) > 0) h->answered++;
    return NULL;
}

START_TEST(test_endpoints_hammered_during_sigterm_shut_down_cleanly) {
    start_with(NULL);
    const char *keys[] = {"user1", "user1"}, *values[] = {"5000", "110000"};
    kafka_produce(&kafka, "payments", keys, values, 2);
    ck_assert(wait_for_user_field(redis, "user1", "count", "2", 30000));
    /* An unknown user goes past the cache to the input topic's metadata
     * and Redis, the handles shutdown frees. */
    static const char *paths[] = {"/users/nobody", "/users/nobody", "/users/user1", "/readyz",
                                  "/metrics", "/healthz"};
    enum { CLIENTS = sizeof(paths) / sizeof(paths[0]) };
    atomic_int stop = 0;
    hammer_t clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (hammer_t){.path = paths[i], .stop = &stop};
        ck_assert_int_eq(pthread_create(&clients[i].thread, NULL, hammer_endpoint, &clients[i]), 0);
    }
    sleep_ms(2000);
    int status = service_stop(&svc);
    atomic_store(&stop, 1);
    long answered = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(clients[i].thread, NULL);
        answered += clients[i].answered;
    }
    ck_assert_msg(status == 0, "exit status %d under load; see %s", status, svc.log_path);
    ck_assert_int_ge(answered, CLIENTS); /* the clients did reach it */
    FILE *f = fopen(svc.log_path, "r");
    char line[4096];
    while (f && fgets(line, sizeof(line), f)) {
        ck_assert_msg(!strstr(line, "AddressSanitizer") && !strstr(line, "runtime error"),
                      "%s", line);
    }
    if (f) fclose(f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("operations");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, fixture_teardown);
    tcase_add_test(tc, test_metrics_count_exactly_what_was_produced);
    tcase_add_test(tc, test_readyz_follows_redis_away_and_back);
    tcase_add_test(tc, test_users_endpoint_answers_known_unknown_and_encoded_ids);
    tcase_add_test(tc, test_expired_user_is_404_and_a_read_refreshes_under_on_read_and_write);
    tcase_add_test(tc, test_unknown_paths_methods_and_oversized_requests_are_refused);
    tcase_add_test(tc, test_endpoints_hammered_during_sigterm_shut_down_cleanly);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_NOFORK, CK_VERBOSE);
}
