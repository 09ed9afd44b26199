#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"

static decimal_t parse_ok(const char *text) {
    decimal_t d = -1;
    ck_assert_int_eq(decimal_parse(text, strlen(text), &d), DECIMAL_OK);
    return d;
}

static decimal_status_t parse_status(const char *text) {
    decimal_t d;
    return decimal_parse(text, strlen(text), &d);
}

static const char *fmt(decimal_t d) {
    static char buf[DECIMAL_TEXT_MAX];
    decimal_format(d, buf, sizeof(buf));
    return buf;
}

START_TEST(test_parse_accepts_plain_and_fractional_forms) {
    ck_assert_int_eq(parse_ok("110000"), 110000LL * DECIMAL_SCALE);
    ck_assert_int_eq(parse_ok("0.3"), 3000);
    ck_assert_int_eq(parse_ok("12.50"), 125000);
    ck_assert_int_eq(parse_ok("0.0001"), 1);
    ck_assert_int_eq(parse_ok("-2.5"), -25000);
    ck_assert_int_eq(parse_ok("+7"), 70000);
    ck_assert_int_eq(parse_ok("1e3"), 1000LL * DECIMAL_SCALE);
    ck_assert_int_eq(parse_ok("1.5E-2"), 150);
    ck_assert_int_eq(parse_ok("0005"), 50000);
    ck_assert_int_eq(parse_ok(".5"), 5000);
    ck_assert_int_eq(parse_ok("1.00000000"), DECIMAL_SCALE);
    ck_assert_int_eq(parse_ok("1000000000000"), 1000000000000LL * DECIMAL_SCALE);
}
END_TEST

START_TEST(test_parse_rejects_syntax_precision_and_range) {
    ck_assert_int_eq(parse_status(""), DECIMAL_ERR_SYNTAX);
    ck_assert_int_eq(parse_status("-"), DECIMAL_ERR_SYNTAX);
    ck_assert_int_eq(parse_status("5."), DECIMAL_ERR_SYNTAX);
    ck_assert_int_eq(parse_status("1e"), DECIMAL_ERR_SYNTAX);
    ck_assert_int_eq(parse_status("12abc"), DECIMAL_ERR_SYNTAX);
    ck_assert_int_eq(parse_status(" 5"), DECIMAL_ERR_SYNTAX);
    ck_assert_int_eq(parse_status("0x10"), DECIMAL_ERR_SYNTAX);
    ck_assert_int_eq(parse_status("1.2.3"), DECIMAL_ERR_SYNTAX);
    ck_assert_int_eq(parse_status("0.00001"), DECIMAL_ERR_PRECISION);
    ck_assert_int_eq(parse_status("1e-5"), DECIMAL_ERR_PRECISION);
    ck_assert_int_eq(parse_status("99999999999999999999"), DECIMAL_ERR_RANGE);
    ck_assert_int_eq(parse_status("1e400"), DECIMAL_ERR_RANGE);
}
END_TEST

START_TEST(test_point_one_plus_point_two_is_exactly_point_three) {
    decimal_t sum;
    ck_assert(decimal_add(parse_ok("0.1"), parse_ok("0.2"), &sum));
    ck_assert_int_eq(sum, parse_ok("0.3"));
    ck_assert_str_eq(fmt(sum), "0.3");
}
END_TEST

START_TEST(test_format_is_shortest_exact_form) {
    ck_assert_str_eq(fmt(110000LL * DECIMAL_SCALE), "110000");
    ck_assert_str_eq(fmt(0), "0");
    ck_assert_str_eq(fmt(1), "0.0001");
    ck_assert_str_eq(fmt(125000), "12.5");
    ck_assert_str_eq(fmt(-72500), "-7.25");
    ck_assert_str_eq(fmt(INT64_MIN), "-922337203685477.5808");
    ck_assert_str_eq(fmt(INT64_MAX), "922337203685477.5807");
}
END_TEST

START_TEST(test_format_matches_printf_and_truncates_like_it) {
    /* The formatters replaced snprintf on the hot path: same text. */
    char mine[DECIMAL_TEXT_MAX], theirs[64];
    const int64_t ints[] = {0, 7, -7, 10, 1000000, INT64_MAX, INT64_MIN, -1234567890123LL};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        size_t len = decimal_format_int(ints[i], mine);
        snprintf(theirs, sizeof(theirs), "%lld", (long long)ints[i]);
        ck_assert_str_eq(mine, theirs);
        ck_assert_uint_eq(len, strlen(theirs));
    }
    for (int64_t v = -20001; v <= 20001; v += 7) { /* every fraction shape */
        snprintf(theirs, sizeof(theirs), "%s%lld.%04lld", v < 0 ? "-" : "",
                 (long long)(llabs(v) / DECIMAL_SCALE), (long long)(llabs(v) % DECIMAL_SCALE));
        size_t len = strlen(theirs);
        while (theirs[len - 1] == '0') theirs[--len] = '\0';
        if (theirs[len - 1] == '.') theirs[--len] = '\0';
        ck_assert_str_eq(fmt(v), strcmp(theirs, "-0") == 0 ? "0" : theirs);
    }
    ck_assert_uint_eq(decimal_format(-72500, mine, 4), 3);
    ck_assert_str_eq(mine, "-7.");
}
END_TEST

START_TEST(test_arithmetic_reports_overflow) {
    decimal_t out = 42;
    ck_assert(!decimal_add(INT64_MAX, 1, &out));
    ck_assert_int_eq(out, 42);
    ck_assert(!decimal_sub(INT64_MIN, 1, &out));
    ck_assert(decimal_sub(5, 7, &out));
    ck_assert_int_eq(out, -2);
}
END_TEST

START_TEST(test_from_double_uses_shortest_round_trip_text) {
    decimal_t d;
    ck_assert_int_eq(decimal_from_double(0.1, &d), DECIMAL_OK);
    ck_assert_int_eq(d, 1000);
    ck_assert_int_eq(decimal_from_double(5000, &d), DECIMAL_OK);
    ck_assert_int_eq(d, 5000LL * DECIMAL_SCALE);
    ck_assert_int_eq(decimal_from_double(123456.7891, &d), DECIMAL_OK);
    ck_assert_int_eq(d, 1234567891LL);
    ck_assert_int_eq(decimal_from_double(0.00001, &d), DECIMAL_ERR_PRECISION);
    ck_assert_int_eq(decimal_from_double(1e300, &d), DECIMAL_ERR_RANGE);
}
END_TEST

START_TEST(test_parse_then_format_round_trips) {
    const char *cases[] = {"0", "1", "0.5", "1234.5678", "999999999999.9999", "7.01"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_str_eq(fmt(parse_ok(cases[i])), cases[i]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("decimal");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parse_accepts_plain_and_fractional_forms);
    tcase_add_test(tc, test_parse_rejects_syntax_precision_and_range);
    tcase_add_test(tc, test_point_one_plus_point_two_is_exactly_point_three);
    tcase_add_test(tc, test_format_is_shortest_exact_form);
    tcase_add_test(tc, test_format_matches_printf_and_truncates_like_it);
    tcase_add_test(tc, test_arithmetic_reports_overflow);
    tcase_add_test(tc, test_from_double_uses_shortest_round_trip_text);
    tcase_add_test(tc, test_parse_then_format_round_trips);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
