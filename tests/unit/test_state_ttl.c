/* Flink's TTL semantics, driven by an explicit clock. */
#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "state_cache.h"
#include "state_ttl.h"

static state_cache_t *cache;
static cache_entry_t *e;

static void setup(void) {
    cache = state_cache_new(100);
    e = state_cache_put(cache, "u", 1, 0);
    e->state.prev = 5;
    e->state.cum = 5;
    e->state.count = 1;
}

static void teardown(void) { state_cache_destroy(cache); }

static ttl_policy_t policy(const char *update, const char *visibility) {
    ttl_policy_t p;
    ck_assert_int_eq(ttl_policy_init(&p, 1000, update, visibility), 0);
    return p;
}

START_TEST(test_write_starts_the_ttl_and_state_expires_at_its_end) {
    ttl_policy_t p = policy("on_create_and_write", "never_return_expired");
    ttl_on_write(&p, e, 10000);
    ck_assert_int_eq(e->expires_at_ms, 11000);
    ck_assert(!ttl_is_expired(&p, e, 10999));
    ck_assert(ttl_is_expired(&p, e, 11000));
}
END_TEST

START_TEST(test_never_return_expired_reads_expired_state_as_absent) {
    ttl_policy_t p = policy("on_create_and_write", "never_return_expired");
    ttl_on_write(&p, e, 0);
    ttl_on_read(&p, e, 999);
    ck_assert_int_eq(e->state.count, 1);
    ttl_on_read(&p, e, 1000);
    ck_assert_int_eq(e->state.count, 0);
    ck_assert_int_eq(e->state.cum, 0);
}
END_TEST

START_TEST(test_return_expired_if_not_cleaned_up_keeps_the_cached_value) {
    ttl_policy_t p = policy("on_create_and_write", "return_expired_if_not_cleaned_up");
    ttl_on_write(&p, e, 0);
    ttl_on_read(&p, e, 5000);
    ck_assert_int_eq(e->state.count, 1);
    ck_assert_int_eq(e->state.cum, 5);
}
END_TEST

START_TEST(test_on_read_and_write_refreshes_on_read_only_then) {
    ttl_policy_t rw = policy("on_read_and_write", "never_return_expired");
    ttl_on_write(&rw, e, 0);
    ck_assert(ttl_on_read(&rw, e, 900));
    ck_assert_int_eq(e->expires_at_ms, 1900);
    ck_assert(!ttl_is_expired(&rw, e, 1500));

    ttl_policy_t cw = policy("on_create_and_write", "never_return_expired");
    ttl_on_write(&cw, e, 0);
    ck_assert(!ttl_on_read(&cw, e, 900));
    ck_assert_int_eq(e->expires_at_ms, 1000);
}
END_TEST

START_TEST(test_ttl_zero_means_never_expires) {
    ttl_policy_t p;
    ck_assert_int_eq(ttl_policy_init(&p, 0, "on_create_and_write", "never_return_expired"), 0);
    ttl_on_write(&p, e, 0);
    ck_assert_int_eq(e->expires_at_ms, 0);
    ttl_on_read(&p, e, INT64_MAX / 2);
    ck_assert_int_eq(e->state.count, 1);
}
END_TEST

START_TEST(test_unknown_policy_names_are_rejected) {
    ttl_policy_t p;
    ck_assert_int_eq(ttl_policy_init(&p, 1, "on_write", "never_return_expired"), -1);
    ck_assert_int_eq(ttl_policy_init(&p, 1, "on_create_and_write", "sometimes"), -1);
}
END_TEST

START_TEST(test_cleaner_drops_only_expired_clean_entries) {
    ttl_policy_t p = policy("on_create_and_write", "never_return_expired");
    cache_entry_t *fresh = state_cache_put(cache, "fresh", 5, 0);
    cache_entry_t *dirty = state_cache_put(cache, "dirty", 5, 0);
    ttl_on_write(&p, e, 0);
    ttl_on_write(&p, fresh, 5000);
    ttl_on_write(&p, dirty, 0);
    state_cache_mark_dirty(cache, dirty);
    ck_assert_int_eq(state_cache_drop_expired(cache, 2000, 100), 1);
    ck_assert_ptr_null(state_cache_get(cache, 0, "u", 1));
    ck_assert_ptr_nonnull(state_cache_get(cache, 0, "fresh", 5));
    ck_assert_ptr_nonnull(state_cache_get(cache, 0, "dirty", 5));
    ck_assert_uint_eq(state_cache_stats(cache).expirations, 1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("state_ttl");
    TCase *tc = tcase_create("flink_semantics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_write_starts_the_ttl_and_state_expires_at_its_end);
    tcase_add_test(tc, test_never_return_expired_reads_expired_state_as_absent);
    tcase_add_test(tc, test_return_expired_if_not_cleaned_up_keeps_the_cached_value);
    tcase_add_test(tc, test_on_read_and_write_refreshes_on_read_only_then);
    tcase_add_test(tc, test_ttl_zero_means_never_expires);
    tcase_add_test(tc, test_unknown_policy_names_are_rejected);
    tcase_add_test(tc, test_cleaner_drops_only_expired_clean_entries);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
