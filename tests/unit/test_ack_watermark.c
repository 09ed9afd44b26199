/* The memory backend's acknowledgement watermark: what may be committed
 * while records are still in flight. */
#include <check.h>

#include "check_main.h"
#include <stdint.h>

#include "ack_watermark.h"

static ack_watermark_t *w;

static void setup(void) { w = ack_watermark_new(); }
static void teardown(void) { ack_watermark_destroy(w); }

/* The one partition reported, or -1 when none moved. */
static int64_t advanced(int32_t partition) {
    int32_t parts[8];
    int64_t next[8];
    size_t n = ack_watermark_advance(w, parts, next, 8);
    for (size_t i = 0; i < n; i++)
        if (parts[i] == partition) return next[i];
    return -1;
}

START_TEST(test_a_batch_without_records_moves_the_watermark_at_once) {
    ck_assert_int_eq(ack_watermark_seal(w, 3, 100), 0);
    ck_assert_int_eq(advanced(3), 100);
    ck_assert_int_eq(advanced(3), -1); /* reported once */
}
END_TEST

START_TEST(test_nothing_passes_a_record_not_yet_acknowledged) {
    ack_mark_t *a = ack_watermark_expect(w, 0);
    ack_mark_t *b = ack_watermark_expect(w, 0);
    ck_assert_ptr_eq(a, b); /* one mark per partition and batch */
    ck_assert_int_eq(ack_watermark_seal(w, 0, 10), 0);
    ack_mark_t *c = ack_watermark_expect(w, 0);
    ck_assert_int_eq(ack_watermark_seal(w, 0, 20), 0);
    ck_assert_int_eq(ack_watermark_seal(w, 0, 30), 0); /* nothing produced: stretches c */
    ck_assert_uint_eq(ack_watermark_outstanding(w, 0), 3);

    ack_mark_settle(c, 0); /* the newer batch first: still held by the older */
    ck_assert_int_eq(advanced(0), -1);
    ack_mark_settle(a, 0);
    ck_assert_int_eq(advanced(0), -1);
    ack_mark_settle(b, 0);
    ck_assert_int_eq(advanced(0), 30);
    ck_assert_uint_eq(ack_watermark_outstanding(w, 0), 0);
}
END_TEST

START_TEST(test_partitions_move_independently) {
    ack_mark_t *slow = ack_watermark_expect(w, 1);
    ack_watermark_seal(w, 1, 5);
    ack_watermark_seal(w, 2, 7);
    ck_assert_int_eq(advanced(2), 7);
    ck_assert_int_eq(advanced(1), -1);
    ack_mark_settle(slow, 0);
    ck_assert_int_eq(advanced(1), 5);
}
END_TEST

START_TEST(test_a_failed_delivery_holds_its_partition_for_good) {
    ack_mark_t *m = ack_watermark_expect(w, 4);
    ack_watermark_seal(w, 4, 50);
    ack_mark_settle(m, 1);
    ack_watermark_seal(w, 4, 60);
    ck_assert_int_eq(advanced(4), -1);
    ck_assert_uint_eq(ack_watermark_outstanding(w, 4), 0);
}
END_TEST

START_TEST(test_records_still_in_flight_survive_their_partition_being_forgotten) {
    /* The report may come after a revoke gave up on the partition; under
     * valgrind or ASan a freed mark here is a use after free. */
    ack_mark_t *m = ack_watermark_expect(w, 6);
    ack_watermark_seal(w, 6, 9);
    ack_watermark_forget(w, 6);
    ck_assert_uint_eq(ack_watermark_outstanding(w, 6), 0);
    ack_mark_settle(m, 0); /* frees it */
    ck_assert_int_eq(advanced(6), -1);
    ack_watermark_seal(w, 6, 12); /* owned again: starts afresh */
    ck_assert_int_eq(advanced(6), 12);
}
END_TEST

START_TEST(test_advance_reports_every_moved_partition_across_calls) {
    for (int32_t p = 0; p < 20; p++) ack_watermark_seal(w, p, 100 + p);
    int32_t parts[8];
    int64_t next[8];
    size_t total = 0, n;
    int seen[20] = {0};
    do {
        n = ack_watermark_advance(w, parts, next, 8);
        for (size_t i = 0; i < n; i++) {
            ck_assert_int_eq(next[i], 100 + parts[i]);
            seen[parts[i]]++;
        }
        total += n;
    } while (n == 8);
    ck_assert_uint_eq(total, 20);
    for (int p = 0; p < 20; p++) ck_assert_int_eq(seen[p], 1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ack_watermark");
    TCase *tc = tcase_create("watermark");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_a_batch_without_records_moves_the_watermark_at_once);
    tcase_add_test(tc, test_nothing_passes_a_record_not_yet_acknowledged);
    tcase_add_test(tc, test_partitions_move_independently);
    tcase_add_test(tc, test_a_failed_delivery_holds_its_partition_for_good);
    tcase_add_test(tc, test_records_still_in_flight_survive_their_partition_being_forgotten);
    tcase_add_test(tc, test_advance_reports_every_moved_partition_across_calls);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
