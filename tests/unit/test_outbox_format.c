/* outbox_format: a stored output record reads back as it was written. */
#include <check.h>
#include <string.h>

#include "check_main.h"

#include "outbox_format.h"
#include "rules.h"

#define PARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void store(char *buf, size_t size, output_kind_t kind, int rule, int64_t offset,
                  const trace_context_t *trace, const char *json) {
    int n = outbox_format_head(buf, size, kind, rule, offset, trace);
    ck_assert_int_ge(n, 0);
    ck_assert_uint_lt((size_t)n + strlen(json), size);
    strcpy(buf + n, json);
}

START_TEST(test_a_record_without_trace_reads_back) {
    char value[256];
    outbox_stored_t s;
    store(value, sizeof(value), OUTPUT_ALERT, RULE_VELOCITY, 41, NULL, "{\"user_id\":\"u\"}");
    ck_assert_str_eq(value, "a 4 41 {\"user_id\":\"u\"}");
    ck_assert_int_eq(outbox_format_parse(value, &s), 0);
    ck_assert_int_eq(s.kind, OUTPUT_ALERT);
    ck_assert_int_eq(s.rule, RULE_VELOCITY);
    ck_assert_int_eq(s.offset, 41);
    ck_assert_str_eq(s.json, "{\"user_id\":\"u\"}");
    ck_assert_ptr_null(s.trace);
}
END_TEST

START_TEST(test_a_record_with_trace_reads_back_with_its_context) {
    char value[OUTBOX_HEAD_MAX + 64];
    trace_context_t in, out;
    ck_assert_int_eq(trace_context_set(&in, PARENT, strlen(PARENT), "a=1 b", 5), 1);
    outbox_stored_t s;
    store(value, sizeof(value), OUTPUT_TOTAL, -1, 7, &in, "{\"user_id\":\"u\"}");
    ck_assert_int_eq(outbox_format_parse(value, &s), 0);
    ck_assert_int_eq(s.kind, OUTPUT_TOTAL);
    ck_assert_int_eq(s.rule, -1);
    ck_assert_int_eq(s.offset, 7);
    ck_assert_str_eq(s.json, "{\"user_id\":\"u\"}");
    ck_assert_int_eq(outbox_format_trace(&s, &out), 1);
    ck_assert_str_eq(out.traceparent, PARENT);
    ck_assert_str_eq(out.tracestate, "a=1 b"); /* a space inside needs no escaping */
    /* ... and with a traceparent alone. */
    ck_assert_int_eq(trace_context_set(&in, PARENT, strlen(PARENT), NULL, 0), 1);
    store(value, sizeof(value), OUTPUT_LATE, -1, 8, &in, "{}");
    ck_assert_int_eq(outbox_format_parse(value, &s), 0);
    ck_assert_int_eq(outbox_format_trace(&s, &out), 1);
    ck_assert_str_eq(out.tracestate, "");
    ck_assert_str_eq(s.json, "{}");
    /* An erased user's tombstone keeps only what names its key. */
    store(value, sizeof(value), OUTPUT_TOTAL_ERASED, -1, 9, NULL, "{\"user_id\":\"u\"}");
    ck_assert_str_eq(value, "e -1 9 {\"user_id\":\"u\"}");
    ck_assert_int_eq(outbox_format_parse(value, &s), 0);
    ck_assert_int_eq(s.kind, OUTPUT_TOTAL_ERASED);
}
END_TEST

/* exactly_once keeps a dead letter in the outbox: its "rule" is its
 * reason, which may be past the rule types. */
START_TEST(test_a_dead_letter_keeps_its_reason) {
    char value[256];
    outbox_stored_t s;
    store(value, sizeof(value), OUTPUT_DEAD_LETTER, RULE_TYPE_COUNT + 3, 12, NULL,
          "{\"error\":\"x\",\"key_hex\":null,\"value_hex\":\"00ff\"}");
    ck_assert_int_eq(value[0], 'd');
    ck_assert_int_eq(outbox_format_parse(value, &s), 0);
    ck_assert_int_eq(s.kind, OUTPUT_DEAD_LETTER);
    ck_assert_int_eq(s.rule, RULE_TYPE_COUNT + 3);
    ck_assert_int_eq(s.offset, 12);
    /* An alert's rule stays bounded by the rule types. */
    store(value, sizeof(value), OUTPUT_ALERT, RULE_TYPE_COUNT + 3, 12, NULL, "{}");
    ck_assert_int_eq(outbox_format_parse(value, &s), -1);
}
END_TEST

START_TEST(test_an_untyped_record_is_classified_by_its_fields) {
    outbox_stored_t s;
    ck_assert_int_eq(outbox_format_parse("{\"alert_id\":\"p/0/3/amount_jump\",\"rule\":\"amount_jump\","
                                         "\"source\":{\"offset\":3}}", &s), 0);
    ck_assert_int_eq(s.kind, OUTPUT_ALERT);
    ck_assert_int_eq(s.rule, RULE_AMOUNT_JUMP);
    ck_assert_int_eq(s.offset, 3);
    ck_assert_int_eq(outbox_format_parse("{\"user_id\":\"u\",\"cumulative_amount\":5}", &s), 0);
    ck_assert_int_eq(s.kind, OUTPUT_TOTAL);
}
END_TEST

START_TEST(test_damaged_records_are_refused) {
    static const char *const bad[] = {
        "", "x 1 2 {}", "a1 2 {}", "a 99 2 {}", "a -1 2 {}", "a 1 2{}",
        "t -1 2 t55,0 00-4bf9", /* lengths longer than what is there */
        "t -1 2 t999,0 {}", "t -1 2 t1,x {}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        outbox_stored_t s;
        ck_assert_msg(outbox_format_parse(bad[i], &s) != 0, "\"%s\" was read", bad[i]);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("outbox_format");
    TCase *tc = tcase_create("outbox_format");
    tcase_add_test(tc, test_a_record_without_trace_reads_back);
    tcase_add_test(tc, test_a_record_with_trace_reads_back_with_its_context);
    tcase_add_test(tc, test_a_dead_letter_keeps_its_reason);
    tcase_add_test(tc, test_an_untyped_record_is_classified_by_its_fields);
    tcase_add_test(tc, test_damaged_records_are_refused);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
