#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "alert.h"

#define D(x) ((decimal_t)(x) * DECIMAL_SCALE)

static alert_t seed_alert(void) {
    alert_t a = {
        .rule = "amount_jump", .user_id = "user1", .amount = D(110000),
        .previous_amount = D(7000), .diff = D(103000), .threshold = D(10000),
        .cumulative_amount = D(122000), .event_count = 3, .source_topic = "payments",
        .source_partition = 2, .source_offset = 41, .event_id = "",
        .event_time_ms = 1700000000000LL, .detected_at_ms = 1700000000005LL,
    };
    return a;
}

START_TEST(test_alert_has_every_documented_field) {
    alert_t a = seed_alert();
    char *json = alert_encode_new(&a);
    cJSON *root = cJSON_Parse(json);
    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(cJSON_GetObjectItem(root, "alert_id")->valuestring, "payments/2/41/amount_jump");
    ck_assert_str_eq(cJSON_GetObjectItem(root, "rule")->valuestring, "amount_jump");
    ck_assert_str_eq(cJSON_GetObjectItem(root, "user_id")->valuestring, "user1");
    ck_assert_int_eq((long)cJSON_GetObjectItem(root, "amount")->valuedouble, 110000);
    ck_assert_int_eq((long)cJSON_GetObjectItem(root, "previous_amount")->valuedouble, 7000);
    ck_assert_int_eq((long)cJSON_GetObjectItem(root, "diff")->valuedouble, 103000);
    ck_assert_int_eq((long)cJSON_GetObjectItem(root, "threshold")->valuedouble, 10000);
    ck_assert_int_eq((long)cJSON_GetObjectItem(root, "cumulative_amount")->valuedouble, 122000);
    ck_assert_int_eq((long)cJSON_GetObjectItem(root, "event_count")->valuedouble, 3);
    cJSON *src = cJSON_GetObjectItem(root, "source");
    ck_assert_str_eq(cJSON_GetObjectItem(src, "topic")->valuestring, "payments");
    ck_assert_int_eq((long)cJSON_GetObjectItem(src, "partition")->valuedouble, 2);
    ck_assert_int_eq((long)cJSON_GetObjectItem(src, "offset")->valuedouble, 41);
    ck_assert(cJSON_GetObjectItem(root, "event_time")->valuedouble == 1700000000000.0);
    ck_assert(cJSON_GetObjectItem(root, "detected_at")->valuedouble == 1700000000005.0);
    ck_assert_ptr_null(cJSON_GetObjectItem(root, "event_id"));
    cJSON_Delete(root);
    free(json);
}
END_TEST

START_TEST(test_amounts_are_written_in_exact_decimal_text) {
    alert_t a = seed_alert();
    a.amount = 9999999999999999LL; /* 999999999999.9999: not exact as a double */
    a.cumulative_amount = 3000;    /* 0.3 */
    char *json = alert_encode_new(&a);
    ck_assert_ptr_nonnull(strstr(json, "\"amount\":999999999999.9999"));
    ck_assert_ptr_nonnull(strstr(json, "\"cumulative_amount\":0.3"));
    free(json);
}
END_TEST

START_TEST(test_alert_id_is_deterministic_and_escaping_is_safe) {
    alert_t a = seed_alert();
    a.user_id = "we\"ird\\user";
    a.event_id = "e-1";
    char *first = alert_encode_new(&a);
    a.detected_at_ms += 1000;
    char *second = alert_encode_new(&a);
    cJSON *r1 = cJSON_Parse(first), *r2 = cJSON_Parse(second);
    ck_assert_ptr_nonnull(r1);
    ck_assert_str_eq(cJSON_GetObjectItem(r1, "alert_id")->valuestring,
                     cJSON_GetObjectItem(r2, "alert_id")->valuestring);
    ck_assert_str_eq(cJSON_GetObjectItem(r1, "user_id")->valuestring, "we\"ird\\user");
    ck_assert_str_eq(cJSON_GetObjectItem(r1, "event_id")->valuestring, "e-1");
    cJSON_Delete(r1);
    cJSON_Delete(r2);
    free(first);
    free(second);
}
END_TEST

int main(void) {
    Suite *s = suite_create("alert");
    TCase *tc = tcase_create("encode");
    tcase_add_test(tc, test_alert_has_every_documented_field);
    tcase_add_test(tc, test_amounts_are_written_in_exact_decimal_text);
    tcase_add_test(tc, test_alert_id_is_deterministic_and_escaping_is_safe);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
