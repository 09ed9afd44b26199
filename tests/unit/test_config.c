#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "redis_conn.h"

static char err[512];

START_TEST(test_defaults_are_documented_values) {
    config_t *cfg = config_new();
    ck_assert_str_eq(cfg->input_topic, "payments");
    ck_assert_str_eq(cfg->alert_topic, "fraud-alerts");
    ck_assert_str_eq(cfg->dlq_topic, "payments-dlq");
    ck_assert_str_eq(cfg->group_id, "fraud-detector");
    ck_assert_str_eq(cfg->redis_url, "redis://127.0.0.1:6379");
    ck_assert_str_eq(cfg->redis_key_prefix, "fraud:");
    ck_assert_int_eq(cfg->state_ttl_ms, 0);
    ck_assert_int_eq(cfg->rules.builtin.jump_threshold, 10000LL * DECIMAL_SCALE);
    ck_assert_str_eq(cfg->time_characteristic, "event");
    ck_assert_int_eq(cfg->time_max_out_of_orderness_ms, 0);
    ck_assert_int_eq(cfg->time_max_future_ms, 3600000);
    ck_assert_str_eq(cfg->late_topic, "");
    ck_assert_str_eq(config_kafka_get(cfg, "auto.offset.reset"), "earliest");
    config_destroy(cfg);
}
END_TEST

START_TEST(test_file_then_env_then_flags_later_wins) {
    config_t *cfg = config_new();
    const char *file = "# comment\n\n  input.topic = from-file \nalert.topic=alerts-file\n"
                       "state.ttl.ms=5\nkafka.bootstrap.servers=file:9092\n";
    ck_assert_int_eq(config_load_text(cfg, file, strlen(file), "test.conf", err, sizeof(err)), 0);
    char *env[] = {"PATH=/bin", "FRAUD_ALERT_TOPIC=alerts-env", "FRAUD_STATE_TTL_MS=7",
                   "FRAUD_KAFKA_BOOTSTRAP_SERVERS=env:9092",
                   "FRAUD_RULE_AMOUNT_JUMP_THRESHOLD=12.5", NULL};
    ck_assert_int_eq(config_load_env(cfg, env, err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "state.ttl.ms", "9", err, sizeof(err)), 0);
    ck_assert_str_eq(cfg->input_topic, "from-file");
    ck_assert_str_eq(cfg->alert_topic, "alerts-env");
    ck_assert_int_eq(cfg->state_ttl_ms, 9);
    ck_assert_int_eq(cfg->rules.builtin.jump_threshold, 125000);
    ck_assert_str_eq(config_kafka_get(cfg, "bootstrap.servers"), "env:9092");
    config_destroy(cfg);
}
END_TEST

START_TEST(test_unknown_key_is_an_error_naming_it) {
    config_t *cfg = config_new();
    ck_assert_int_eq(config_set(cfg, "input.topik", "x", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "input.topik"));
    char *env[] = {"FRAUD_NOT_A_KEY=1", NULL};
    ck_assert_int_eq(config_load_env(cfg, env, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "FRAUD_NOT_A_KEY"));
    const char *file = "input.topic=a\nbogus line\n";
    ck_assert_int_eq(config_load_text(cfg, file, strlen(file), "x.conf", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "x.conf:2"));
    config_destroy(cfg);
}
END_TEST

START_TEST(test_bad_values_are_errors_saying_what_was_expected) {
    config_t *cfg = config_new();
    ck_assert_int_eq(config_set(cfg, "state.ttl.ms", "-1", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "state.ttl.ms"));
    ck_assert_int_eq(config_set(cfg, "state.ttl.ms", "10s", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(cfg, "rule.amount_jump.threshold", "1.00001", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "4 digits"));
    ck_assert_int_eq(config_set(cfg, "log.level", "loud", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "debug|info|warn|error"));
    ck_assert_int_eq(config_set(cfg, "input.topic", "", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(cfg, "alert.topic", "payments", err, sizeof(err)), 0);
    ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), -1);
    config_destroy(cfg);
}
END_TEST

START_TEST(test_redis_url_is_parsed_in_full_at_validation) {
    redis_url_t url;
    ck_assert_int_eq(redis_url_parse("redis://app:p@ss@redis:6380/2", &url, err, sizeof(err)), 0);
    ck_assert_str_eq(url.username, "app");
    ck_assert_str_eq(url.password, "p@ss");
    ck_assert_int_eq(url.cluster, 0);
    ck_assert_int_eq(url.node_count, 1);
    ck_assert_str_eq(url.nodes[0].host, "redis");
    ck_assert_int_eq(url.nodes[0].port, 6380);
    ck_assert_int_eq(url.db, 2);
    ck_assert_int_eq(redis_url_parse("redis://secret@h", &url, err, sizeof(err)), 0);
    ck_assert_str_eq(url.username, "");
    ck_assert_str_eq(url.password, "secret");
    ck_assert_int_eq(url.nodes[0].port, 6379);
    ck_assert_int_eq(redis_url_parse("redis-cluster://u:p,w@a:7000,b:7001,c", &url, err,
                                     sizeof(err)), 0);
    ck_assert_int_eq(url.cluster, 1);
    ck_assert_str_eq(url.username, "u");
    ck_assert_str_eq(url.password, "p,w");
    ck_assert_int_eq(url.node_count, 3);
    ck_assert_str_eq(url.nodes[1].host, "b");
    ck_assert_int_eq(url.nodes[1].port, 7001);
    ck_assert_int_eq(url.nodes[2].port, 6379);
    ck_assert_int_eq(redis_url_parse("redis-cluster://h:1/2", &url, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "only database 0"));
    const char *bad[] = {"http://h:1", "redis://", "redis://h:0", "redis://h:1x", "redis://h/db",
                         "redis://a:1,b:2", "redis-cluster://", "redis-cluster://a:1,",
                         "redis-cluster://a:1,,b:2", "redis-cluster://a:99999",
                         "redis-cluster://1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_t *cfg = config_new();
        ck_assert_int_eq(config_set(cfg, "redis.url", bad[i], err, sizeof(err)), 0);
        ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "redis.url: expected redis://"));
        config_destroy(cfg);
    }
}
END_TEST

/* A payment placed out of order must still fall in the windows it belongs to. */
START_TEST(test_out_of_orderness_may_not_exceed_the_smallest_enabled_window) {
    config_t *cfg = config_new();
    ck_assert_int_eq(config_set(cfg, "time.max.out.of.orderness.ms", "30000", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "rule.velocity.enabled", "true", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "rule.velocity.window.ms", "30000", err, sizeof(err)), 0);
    ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), 0); /* equal is fine */
    ck_assert_int_eq(config_set(cfg, "rule.small_then_large.enabled", "true", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "rule.small_then_large.window.ms", "29999", err, sizeof(err)),
                     0);
    ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "time.max.out.of.orderness.ms=30000"));
    /* In processing time the bound plays no part. */
    ck_assert_int_eq(config_set(cfg, "time.characteristic", "processing", err, sizeof(err)), 0);
    ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "time.characteristic", "ingestion", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(cfg, "late.topic", "payments", err, sizeof(err)), 0);
    ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "late.topic"));
    config_destroy(cfg);
}
END_TEST

START_TEST(test_dump_masks_secrets) {
    config_t *cfg = config_new();
    ck_assert_int_eq(config_set(cfg, "redis.url", "redis://app:hunter2@redis:6379/1", err,
                                sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "kafka.sasl.password", "s3cret", err, sizeof(err)), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    config_dump(cfg, out);
    fclose(out);
    ck_assert_ptr_null(strstr(text, "hunter2"));
    ck_assert_ptr_null(strstr(text, "s3cret"));
    ck_assert_ptr_nonnull(strstr(text, "redis.url=redis://app:***@redis:6379/1"));
    ck_assert_ptr_nonnull(strstr(text, "kafka.sasl.password=***"));
    free(text);
    config_destroy(cfg);
}
END_TEST

START_TEST(test_password_only_url_is_masked) {
    char out[256];
    redis_url_mask("redis://hunter2@host:1", out, sizeof(out));
    ck_assert_str_eq(out, "redis://***@host:1");
    redis_url_mask("redis://host:1", out, sizeof(out));
    ck_assert_str_eq(out, "redis://host:1");
    redis_url_mask("redis-cluster://app:p@ss,w@a:1,b:2", out, sizeof(out));
    ck_assert_str_eq(out, "redis-cluster://app:***@a:1,b:2");
    redis_url_mask("redis-cluster://hunter2@a:1,b:2", out, sizeof(out));
    ck_assert_str_eq(out, "redis-cluster://***@a:1,b:2");
}
END_TEST

START_TEST(test_default_file_parses_back_to_defaults) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    config_print_defaults_file(out);
    fclose(out);
    config_t *cfg = config_new();
    ck_assert_int_eq(config_load_text(cfg, text, len, "defaults", err, sizeof(err)), 0);
    ck_assert_str_eq(cfg->input_topic, "payments");
    free(text);
    config_destroy(cfg);
}
END_TEST

int main(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_defaults_are_documented_values);
    tcase_add_test(tc, test_redis_url_is_parsed_in_full_at_validation);
    tcase_add_test(tc, test_file_then_env_then_flags_later_wins);
    tcase_add_test(tc, test_unknown_key_is_an_error_naming_it);
    tcase_add_test(tc, test_bad_values_are_errors_saying_what_was_expected);
    tcase_add_test(tc, test_out_of_orderness_may_not_exceed_the_smallest_enabled_window);
    tcase_add_test(tc, test_dump_masks_secrets);
    tcase_add_test(tc, test_password_only_url_is_masked);
    tcase_add_test(tc, test_default_file_parses_back_to_defaults);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
