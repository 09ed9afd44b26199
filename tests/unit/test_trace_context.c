/* trace_context and record_headers: which trace contexts are passed on, and
 * the headers an output record gets. */
#include <check.h>
#include <string.h>

#include "check_main.h"

#include "record_headers.h"
#include "trace_context.h"

/* The W3C specification's own example. */
#define PARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define STATE "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"

static int set(trace_context_t *t, const char *parent, const char *state) {
    return trace_context_set(t, parent, strlen(parent), state, state ? strlen(state) : 0);
}

START_TEST(test_a_valid_context_is_copied_whole) {
    trace_context_t t;
    ck_assert_int_eq(set(&t, PARENT, STATE), 1);
    ck_assert_str_eq(t.traceparent, PARENT);
    ck_assert_str_eq(t.tracestate, STATE);
    ck_assert_int_eq(set(&t, PARENT, NULL), 1);
    ck_assert_str_eq(t.tracestate, "");
    /* A later version may append fields after a '-'. */
    ck_assert_int_eq(set(&t, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what", NULL),
                     1);
}
END_TEST

START_TEST(test_an_invalid_traceparent_passes_nothing_on) {
    static const char *const bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",         /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",      /* 00 is 55 long */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        /* zero parent id */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        /* upper case */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        /* separator */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",       /* no '-' after */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trace_context_t t;
        ck_assert_msg(set(&t, bad[i], STATE) == 0, "%s passed", bad[i]);
        ck_assert_str_eq(t.traceparent, "");
        ck_assert_str_eq(t.tracestate, "");
    }
}
END_TEST

START_TEST(test_an_invalid_tracestate_is_dropped_alone) {
    trace_context_t t;
    char long_state[TRACESTATE_MAX + 2];
    memset(long_state, 'a', sizeof(long_state) - 1);
    long_state[sizeof(long_state) - 1] = '\0';
    ck_assert_int_eq(set(&t, PARENT, long_state), 1);
    ck_assert_str_eq(t.tracestate, "");
    ck_assert_int_eq(set(&t, PARENT, "rojo=1\n"), 1); /* a control character */
    ck_assert_str_eq(t.tracestate, "");
    ck_assert_int_eq(trace_context_set(&t, PARENT, strlen(PARENT), "a=1\0b", 5), 1);
    ck_assert_str_eq(t.tracestate, "");
    ck_assert_str_eq(t.traceparent, PARENT);
}
END_TEST

START_TEST(test_cloudevents_headers_in_binary_mode) {
    record_headers_t h;
    trace_context_t t;
    set(&t, PARENT, STATE);
    cloudevent_t ce = {.source = "/fraud-detector/g", .id = "payments/1/4/amount_jump",
                       .type = "fraud.alert.amount_jump", .time_ms = 1700000000012};
    const char *const *p = record_headers_build(&h, &ce, &t);
    const char *want[] = {"ce_specversion", "1.0", "ce_id", "payments/1/4/amount_jump",
                          "ce_type", "fraud.alert.amount_jump", "ce_source", "/fraud-detector/g",
                          "ce_time", "2023-11-14T22:13:20.012Z", "content-type",
                          "application/json", "traceparent", PARENT, "tracestate", STATE, NULL};
    for (size_t i = 0; want[i]; i++) ck_assert_str_eq(p[i], want[i]);
    ck_assert_ptr_null(p[16]);
    ce.time_ms = -1; /* a running total has no time of its own */
    p = record_headers_build(&h, &ce, NULL);
    ck_assert_str_eq(p[8], "content-type");
    ck_assert_ptr_null(p[10]);
    ck_assert_ptr_null(record_headers_build(&h, NULL, NULL));
    p = record_headers_build(&h, NULL, &t);
    ck_assert_str_eq(p[0], "traceparent");
}
END_TEST

START_TEST(test_rfc3339_times) {
    char buf[40];
    record_headers_rfc3339(0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
    record_headers_rfc3339(951782400999, buf, sizeof(buf)); /* 2000-02-29 */
    ck_assert_str_eq(buf, "2000-02-29T00:00:00.999Z");
    record_headers_rfc3339(-1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
}
END_TEST

int main(void) {
    Suite *s = suite_create("trace_context");
    TCase *tc = tcase_create("trace_context");
    tcase_add_test(tc, test_a_valid_context_is_copied_whole);
    tcase_add_test(tc, test_an_invalid_traceparent_passes_nothing_on);
    tcase_add_test(tc, test_an_invalid_tracestate_is_dropped_alone);
    tcase_add_test(tc, test_cloudevents_headers_in_binary_mode);
    tcase_add_test(tc, test_rfc3339_times);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
