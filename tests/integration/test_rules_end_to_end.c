/* Every rule end to end through Kafka (the mock cluster) and a real
 * redis-server, the running totals topic, and rule changes at run time:
 * SIGHUP and the rules control topic. */
#include <check.h>

#include "check_main.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "fixture.h"

static service_proc_t svc;

static const char *const RULE_TOPICS[] = {"fraud-rules:1", "payment-totals:3",
                                          "payment-averages:1", NULL};

static void setup(void) {
    fixture_options_t opts = {.topics = RULE_TOPICS};
    fixture_start(&opts);
}

static void start(const char *const *extra) {
    service_start(&svc, &kafka, &redis_srv, extra);
    if (!service_wait_log(&svc, "assigned", 30000)) fixture_dump_logs(30);
}

static void pay(const char *user, const char *amount) {
    const char *keys[] = {user}, *values[] = {amount};
    kafka_produce(&kafka, "payments", keys, values, 1);
}

/* Produces one user's payments and waits until Redis counted them all. */
static void pay_all(const char *user, const char *const *amounts, size_t n, int count_after) {
    char want[16];
    for (size_t i = 0; i < n; i++) pay(user, amounts[i]);
    snprintf(want, sizeof(want), "%d", count_after);
    if (!wait_for_user_field(redis, user, "count", want, 30000)) fixture_dump_logs(30);
}

static cJSON *parse_record(const record_t *r) {
    cJSON *json = record_json(r);
    ck_assert_ptr_nonnull(json);
    return json;
}

static double number(const cJSON *obj, const char *name) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    ck_assert_msg(cJSON_IsNumber(item), "no number %s", name);
    return item->valuedouble;
}

static const char *string(const cJSON *obj, const char *name) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    ck_assert_msg(cJSON_IsString(item), "no string %s", name);
    return item->valuestring;
}

/* Reads the alert topic, expecting exactly `expected` alerts. */
static record_list_t alerts_exactly(size_t expected) {
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", expected, 20000);
    if (alerts.count != expected) fixture_dump_logs(30);
    ck_assert_int_eq(alerts.count, expected);
    return alerts;
}

START_TEST(test_amount_jump_both_directions) {
    const char *extra[] = {"rule.amount_jump.direction=both", NULL};
    start(extra);
    const char *amounts[] = {"20000", "5000", "14999"};
    pay_all("d", amounts, 3, 3);
    record_list_t alerts = alerts_exactly(1);
    cJSON *a = parse_record(&alerts.items[0]);
    ck_assert_str_eq(string(a, "rule"), "amount_jump");
    ck_assert(number(a, "diff") == -15000.0);
    cJSON *params = cJSON_GetObjectItemCaseSensitive(a, "params");
    ck_assert_str_eq(string(params, "direction"), "both");
    ck_assert(number(params, "threshold") == 10000.0);
    cJSON_Delete(a);
    record_list_free(&alerts);
}
END_TEST

START_TEST(test_cumulative_limit_fires_once_and_remembers_across_restarts) {
    const char *extra[] = {"rule.amount_jump.enabled=false", "rule.cumulative_limit.enabled=true",
                           "rule.cumulative_limit.limit=1000", NULL};
    start(extra);
    const char *amounts[] = {"400", "600", "50"};
    pay_all("c", amounts, 3, 3);
    record_list_t alerts = alerts_exactly(1);
    cJSON *a = parse_record(&alerts.items[0]);
    ck_assert_str_eq(string(a, "rule"), "cumulative_limit");
    ck_assert(number(a, "cumulative_amount") == 1000.0); /* crossed exactly at the limit */
    ck_assert(number(a, "limit") == 1000.0);
    cJSON_Delete(a);
    record_list_free(&alerts);
    char key[300];
    ck_assert(redis_find_user_key(redis, "c", key, sizeof(key)));
    char *crossed = redis_hget(redis, key, "cl");
    ck_assert_str_eq(crossed, "1000");
    free(crossed);

    ck_assert_int_eq(service_stop(&svc), 0);
    start(extra);
    const char *more[] = {"10"};
    pay_all("c", more, 1, 4);
    alerts = alerts_exactly(1);
    record_list_free(&alerts);
}
END_TEST

START_TEST(test_cumulative_limit_crossing_expires_with_the_state) {
    const char *extra[] = {"rule.amount_jump.enabled=false", "rule.cumulative_limit.enabled=true",
                           "rule.cumulative_limit.limit=1000", "state.ttl.ms=1500", NULL};
    start(extra);
    const char *amounts[] = {"1000"};
    pay_all("e", amounts, 1, 1);
    char key[300];
    ck_assert(redis_find_user_key(redis, "e", key, sizeof(key)));
    int64_t deadline = mono_ms() + 20000; /* Redis expires the user, crossing included */
    while (redis_find_user_key(redis, "e", key, sizeof(key)) && mono_ms() < deadline)
        sleep_ms(100);
    ck_assert(!redis_find_user_key(redis, "e", key, sizeof(key)));
    pay_all("e", amounts, 1, 1); /* a new total from zero crosses again */
    record_list_t alerts = alerts_exactly(2);
    record_list_free(&alerts);
}
END_TEST

START_TEST(test_small_then_large_and_a_payment_in_between) {
    const char *extra[] = {"rule.amount_jump.enabled=false",
                           "rule.small_then_large.enabled=true", NULL};
    start(extra);
    const char *pattern[] = {"0.5", "600"};
    const char *broken[] = {"0.5", "20", "600"};
    const char *edges[] = {"1.00", "501", "0.99", "500"};
    pay_all("s", pattern, 2, 2);
    pay_all("t", broken, 3, 3);
    pay_all("u", edges, 4, 4);
    record_list_t alerts = alerts_exactly(1);
    cJSON *a = parse_record(&alerts.items[0]);
    ck_assert_str_eq(string(a, "rule"), "small_then_large");
    ck_assert_str_eq(string(a, "user_id"), "s");
    ck_assert(number(a, "previous_amount") == 0.5);
    ck_assert(number(a, "amount") == 600.0);
    ck_assert(number(a, "elapsed_ms") <= 60000.0);
    cJSON *params = cJSON_GetObjectItemCaseSensitive(a, "params");
    ck_assert(number(params, "small") == 1.0);
    ck_assert(number(params, "large") == 500.0);
    ck_assert(number(params, "window_ms") == 60000.0);
    cJSON_Delete(a);
    record_list_free(&alerts);
}
END_TEST

START_TEST(test_count_average_of_the_seed) {
    const char *extra[] = {"rule.count_average.enabled=true", "averages.topic=payment-averages",
                           NULL};
    start(extra);
    const char *user1[] = {"5000", "7000", "110000"};
    const char *user2[] = {"2000", "8000", "3000", "120000"};
    pay_all("user1", user1, 3, 3);
    pay_all("user2", user2, 4, 4);
    record_list_t avgs = kafka_read_topic(&kafka, "payment-averages", 3, 20000);
    ck_assert_int_eq(avgs.count, 3);
    double want_user2[] = {5000, 61500};
    int seen2 = 0;
    for (size_t i = 0; i < avgs.count; i++) {
        cJSON *e = parse_record(&avgs.items[i]);
        ck_assert_int_eq((int)number(e, "count"), 2);
        if (strcmp(string(e, "user_id"), "user1") == 0) {
            ck_assert(number(e, "average") == 6000.0);
        } else {
            ck_assert(number(e, "average") == want_user2[seen2++]);
        }
        cJSON_Delete(e);
    }
    ck_assert_int_eq(seen2, 2);
    record_list_free(&avgs);
    /* the seed's amount_jump alerts still go to the alert topic */
    record_list_t alerts = alerts_exactly(2);
    record_list_free(&alerts);
}
END_TEST

START_TEST(test_velocity_over_max_count) {
    const char *extra[] = {"rule.amount_jump.enabled=false", "rule.velocity.enabled=true",
                           "rule.velocity.max.count=3", "rule.velocity.window.ms=60000", NULL};
    start(extra);
    const char *amounts[] = {"1", "2", "3", "4", "5"};
    pay_all("v", amounts, 5, 5);
    record_list_t alerts = alerts_exactly(2);
    for (size_t i = 0; i < alerts.count; i++) {
        cJSON *a = parse_record(&alerts.items[i]);
        ck_assert_str_eq(string(a, "rule"), "velocity");
        ck_assert(number(a, "payments_in_window") >= 4.0);
        cJSON_Delete(a);
    }
    record_list_free(&alerts);
    char key[300];
    ck_assert(redis_find_user_key(redis, "v", key, sizeof(key)));
    char *ring = redis_hget(redis, key, "vel");
    ck_assert_ptr_nonnull(ring);
    int times = 1;
    for (const char *c = ring; *c; c++) times += *c == ',';
    ck_assert_int_eq(times, 3); /* bounded by max.count */
    free(ring);
}
END_TEST

START_TEST(test_running_totals_topic_ends_with_each_users_total) {
    const char *extra[] = {"totals.topic=payment-totals", NULL};
    start(extra);
    const char *user1[] = {"5000", "7000", "110000"};
    const char *user2[] = {"2000", "8000", "3000", "120000"};
    pay_all("user1", user1, 3, 3);
    pay_all("user2", user2, 4, 4);
    /* One record per user per batch at least once; the last one counts. */
    record_list_t totals = kafka_read_topic(&kafka, "payment-totals", 2, 20000);
    ck_assert_int_ge(totals.count, 2);
    ck_assert_int_le(totals.count, 7);
    double last_cum[2] = {-1, -1}, last_count[2] = {-1, -1};
    for (size_t i = 0; i < totals.count; i++) {
        cJSON *t = parse_record(&totals.items[i]);
        const char *user = string(t, "user_id");
        ck_assert_int_eq(totals.items[i].key_len, strlen(user));
        ck_assert(memcmp(totals.items[i].key, user, strlen(user)) == 0);
        int u = strcmp(user, "user1") == 0 ? 0 : 1;
        ck_assert(number(t, "event_count") > last_count[u]); /* in order per user */
        last_cum[u] = number(t, "cumulative_amount");
        last_count[u] = number(t, "event_count");
        cJSON_Delete(t);
    }
    ck_assert(last_cum[0] == 122000.0 && last_count[0] == 3.0);
    ck_assert(last_cum[1] == 133000.0 && last_count[1] == 4.0);
    record_list_free(&totals);
}
END_TEST

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_sighup_reloads_rules_and_keeps_them_when_the_file_is_bad) {
    char path[400];
    snprintf(path, sizeof(path), "%s/rules.conf", redis_srv.dir);
    write_file(path, "rule.amount_jump.threshold=10000\n");
    service_start_with_file(&svc, &kafka, &redis_srv, path, NULL);
    ck_assert(service_wait_log(&svc, "assigned", 30000));
    const char *first[] = {"0", "6000"};
    pay_all("h", first, 2, 2);

    write_file(path, "rule.amount_jump.threshold=5000\n");
    service_signal(&svc, SIGHUP);
    ck_assert(service_wait_log(&svc, "reloaded on SIGHUP: amount_jump(threshold=5000", 10000));
    const char *second[] = {"12000"};
    pay_all("h", second, 1, 3);

    write_file(path, "rule.amount_jump.threshold=lots\n");
    service_signal(&svc, SIGHUP);
    ck_assert(service_wait_log(&svc, "rules not reloaded", 10000));
    const char *third[] = {"18000"};
    pay_all("h", third, 1, 4);

    record_list_t alerts = alerts_exactly(2);
    for (size_t i = 0; i < alerts.count; i++) {
        cJSON *a = parse_record(&alerts.items[i]);
        ck_assert(number(a, "threshold") == 5000.0);
        ck_assert(number(a, "diff") == 6000.0);
        cJSON_Delete(a);
    }
    record_list_free(&alerts);
}
END_TEST

static void send_rule(const char *rule, const char *json) {
    const char *keys[] = {rule}, *values[] = {json};
    kafka_produce(&kafka, "fraud-rules", keys, values, 1);
}

START_TEST(test_rules_topic_changes_the_next_batch_and_drops_unused_state) {
    send_rule("velocity", "{\"enabled\": true, \"max.count\": 2}"); /* before the start */
    const char *extra[] = {"rules.topic=fraud-rules", NULL};
    start(extra);
    ck_assert(service_wait_log(&svc, "read 1 rule updates from fraud-rules", 1000));
    const char *first[] = {"0", "150"};
    pay_all("r", first, 2, 2);
    char key[300];
    ck_assert(redis_find_user_key(redis, "r", key, sizeof(key)));
    char *ring = redis_hget(redis, key, "vel");
    ck_assert_ptr_nonnull(ring);
    free(ring);

    send_rule("amount_jump", "{\"threshold\": \"100\"}");
    send_rule("velocity", "{\"enabled\": false}");
    send_rule("amount_jump", "{\"threshold\": \"not a number\"}"); /* rejected */
    ck_assert(service_wait_log(&svc, "velocity updated from fraud-rules", 20000));
    ck_assert(service_wait_log(&svc, "rejected, the rules in force stay", 20000));
    const char *second[] = {"250"};
    pay_all("r", second, 1, 3);

    record_list_t alerts = alerts_exactly(1);
    cJSON *a = parse_record(&alerts.items[0]);
    ck_assert_str_eq(string(a, "rule"), "amount_jump");
    ck_assert(number(a, "threshold") == 100.0);
    ck_assert(number(a, "amount") == 250.0);
    cJSON_Delete(a);
    record_list_free(&alerts);
    ring = redis_hget(redis, key, "vel"); /* velocity is off: its state is gone */
    ck_assert_ptr_null(ring);

    record_list_t dead = kafka_read_topic(&kafka, "payments-dlq", 1, 20000);
    ck_assert_int_eq(dead.count, 1);
    ck_assert_ptr_nonnull(strstr(dead.items[0].headers, "fraud.dlq.reason=invalid_rule"));
    record_list_free(&dead);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rules_end_to_end");
    TCase *tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, setup, fixture_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_amount_jump_both_directions);
    tcase_add_test(tc, test_cumulative_limit_fires_once_and_remembers_across_restarts);
    tcase_add_test(tc, test_cumulative_limit_crossing_expires_with_the_state);
    tcase_add_test(tc, test_small_then_large_and_a_payment_in_between);
    tcase_add_test(tc, test_count_average_of_the_seed);
    tcase_add_test(tc, test_velocity_over_max_count);
    tcase_add_test(tc, test_running_totals_topic_ends_with_each_users_total);
    tcase_add_test(tc, test_sighup_reloads_rules_and_keeps_them_when_the_file_is_bad);
    tcase_add_test(tc, test_rules_topic_changes_the_next_batch_and_drops_unused_state);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_NOFORK, CK_NORMAL);
}
