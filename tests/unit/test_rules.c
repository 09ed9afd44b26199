#include <check.h>

#include "check_main.h"
#include <stdlib.h>

#include "rules.h"

#define D(x) ((decimal_t)(x) * DECIMAL_SCALE)

START_TEST(test_jump_of_exactly_the_threshold_fires) {
    decimal_t diff = 0;
    ck_assert(rule_amount_jump_fires(true, D(0), D(10000), D(10000), &diff));
    ck_assert_int_eq(diff, D(10000));
}
END_TEST

START_TEST(test_jump_just_below_the_threshold_does_not_fire) {
    decimal_t diff = 0;
    ck_assert(!rule_amount_jump_fires(true, D(0), D(10000) - 1, D(10000), &diff));
}
END_TEST

START_TEST(test_first_payment_never_fires) {
    decimal_t diff = 0;
    ck_assert(!rule_amount_jump_fires(false, 0, D(1000000), D(10000), &diff));
}
END_TEST

START_TEST(test_decrease_does_not_fire) {
    decimal_t diff = 0;
    ck_assert(!rule_amount_jump_fires(true, D(8000), D(3000), D(10000), &diff));
    ck_assert_int_eq(diff, D(-5000));
}
END_TEST

START_TEST(test_seed_sequence_gives_the_two_expected_alerts) {
    struct { int user; long amount; } seed[] = {{1, 5000}, {2, 2000}, {1, 7000}, {2, 8000},
                                                {1, 110000}, {2, 3000}, {2, 120000}};
    decimal_t prev[3] = {0}, cum[3] = {0};
    bool seen[3] = {false};
    int alerts = 0;
    for (int i = 0; i < 7; i++) {
        int u = seed[i].user;
        decimal_t diff;
        if (rule_amount_jump_fires(seen[u], prev[u], D(seed[i].amount), D(10000), &diff)) {
            alerts++;
            ck_assert(i == 4 || i == 6);
            ck_assert_int_eq(diff, i == 4 ? D(103000) : D(117000));
        }
        prev[u] = D(seed[i].amount);
        cum[u] += D(seed[i].amount);
        seen[u] = true;
    }
    ck_assert_int_eq(alerts, 2);
    ck_assert_int_eq(cum[1], D(122000));
    ck_assert_int_eq(cum[2], D(133000));
}
END_TEST

int main(void) {
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("amount_jump");
    tcase_add_test(tc, test_jump_of_exactly_the_threshold_fires);
    tcase_add_test(tc, test_jump_just_below_the_threshold_does_not_fire);
    tcase_add_test(tc, test_first_payment_never_fires);
    tcase_add_test(tc, test_decrease_does_not_fire);
    tcase_add_test(tc, test_seed_sequence_gives_the_two_expected_alerts);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
