/* event_time: which time a payment has, whether it can be believed, and
 * where it stands in its user's time. */
#include <check.h>

#include "check_main.h"

#include "event_time.h"

#define T0 1700000000000LL /* 2023-11-14 */

static const time_policy_t EVENT = {.clock = CLOCK_EVENT, .max_out_of_orderness_ms = 500,
                                    .max_future_ms = 3600000};

START_TEST(test_the_timestamp_field_wins_over_the_record_timestamp) {
    ck_assert_int_eq(event_time_of(T0, T0 + 30000), T0);
    ck_assert_int_eq(event_time_of(-1, T0 + 30000), T0 + 30000); /* no field: Kafka's */
    ck_assert_int_eq(event_time_of(0, T0), 0); /* a field of 0 is a time, checked later */
    ck_assert_int_eq(event_time_of(-1, -1), -1);
}
END_TEST

START_TEST(test_future_and_ancient_times_are_not_believed) {
    ck_assert_int_eq(event_time_check(&EVENT, T0 + 3600000, T0), EVENT_TIME_OK);
    ck_assert_int_eq(event_time_check(&EVENT, T0 + 3600001, T0), EVENT_TIME_IN_FUTURE);
    ck_assert_int_eq(event_time_check(&EVENT, EVENT_TIME_EARLIEST_MS, T0), EVENT_TIME_OK);
    ck_assert_int_eq(event_time_check(&EVENT, EVENT_TIME_EARLIEST_MS - 1, T0),
                     EVENT_TIME_BEFORE_2000);
    ck_assert_int_eq(event_time_check(&EVENT, 0, T0), EVENT_TIME_BEFORE_2000);
    ck_assert_int_eq(event_time_check(&EVENT, T0 - 86400000LL * 365 * 5, T0), EVENT_TIME_OK);
}
END_TEST

START_TEST(test_in_order_payments_advance_the_users_time) {
    int64_t latest = 0, lateness = -1;
    rule_time_t t = event_time_place(&EVENT, T0, T0 + 999999, &latest, &lateness);
    ck_assert_int_eq(t.at_ms, T0); /* the service's clock plays no part */
    ck_assert_int_eq(t.latest_ms, T0);
    ck_assert_int_eq(latest, T0);
    ck_assert(!t.late);
    ck_assert_int_eq(lateness, 0);
    t = event_time_place(&EVENT, T0, T0, &latest, &lateness); /* equal times are in order */
    ck_assert(!t.late);
    ck_assert_int_eq(lateness, 0);
}
END_TEST

START_TEST(test_out_of_order_within_the_bound_is_placed_and_past_it_is_late) {
    int64_t latest = T0, lateness = 0;
    rule_time_t t = event_time_place(&EVENT, T0 - 500, T0, &latest, &lateness);
    ck_assert(!t.late);
    ck_assert_int_eq(t.at_ms, T0 - 500);
    ck_assert_int_eq(t.latest_ms, T0);
    ck_assert_int_eq(t.slack_ms, 500);
    ck_assert_int_eq(lateness, 500);
    t = event_time_place(&EVENT, T0 - 501, T0, &latest, &lateness);
    ck_assert(t.late);
    ck_assert_int_eq(lateness, 501);
    ck_assert_int_eq(latest, T0); /* an older payment never moves the user's time back */
}
END_TEST

START_TEST(test_processing_time_reads_the_service_clock_and_nothing_is_late) {
    time_policy_t processing = EVENT;
    processing.clock = CLOCK_PROCESSING;
    int64_t latest = T0, lateness = 0;
    rule_time_t t = event_time_place(&processing, T0 - 600000, T0 + 5, &latest, &lateness);
    ck_assert_int_eq(t.at_ms, T0 + 5);
    ck_assert(!t.late);
    ck_assert_int_eq(t.slack_ms, 0);
    ck_assert_int_eq(latest, T0); /* the user's event time is still kept */
    event_time_place(&processing, T0 + 1000, T0 + 6, &latest, &lateness);
    ck_assert_int_eq(latest, T0 + 1000);
}
END_TEST

START_TEST(test_an_unknown_event_time_falls_back_to_the_service_clock) {
    int64_t latest = 0, lateness = 0;
    rule_time_t t = event_time_place(&EVENT, -1, T0, &latest, &lateness);
    ck_assert_int_eq(t.at_ms, T0);
    ck_assert_int_eq(latest, T0);
}
END_TEST

START_TEST(test_clock_names_round_trip) {
    ck_assert_str_eq(time_clock_name(CLOCK_EVENT), "event");
    ck_assert_str_eq(time_clock_name(CLOCK_PROCESSING), "processing");
    ck_assert_int_eq(time_clock_parse("processing"), CLOCK_PROCESSING);
    ck_assert_int_eq(time_clock_parse("event"), CLOCK_EVENT);
}
END_TEST

int main(void) {
    Suite *s = suite_create("event_time");
    TCase *tc = tcase_create("event_time");
    tcase_add_test(tc, test_the_timestamp_field_wins_over_the_record_timestamp);
    tcase_add_test(tc, test_future_and_ancient_times_are_not_believed);
    tcase_add_test(tc, test_in_order_payments_advance_the_users_time);
    tcase_add_test(tc, test_out_of_order_within_the_bound_is_placed_and_past_it_is_late);
    tcase_add_test(tc, test_processing_time_reads_the_service_clock_and_nothing_is_late);
    tcase_add_test(tc, test_an_unknown_event_time_falls_back_to_the_service_clock);
    tcase_add_test(tc, test_clock_names_round_trip);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
