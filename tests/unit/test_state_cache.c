#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_cache.h"

static cache_entry_t *put(state_cache_t *c, const char *user, int partition) {
    return state_cache_put(c, user, strlen(user), partition);
}

static cache_entry_t *get(state_cache_t *c, const char *user) {
    return state_cache_get(c, 0, user, strlen(user));
}

START_TEST(test_put_then_get_finds_the_same_entry) {
    state_cache_t *c = state_cache_new(10);
    cache_entry_t *e = put(c, "user1", 0);
    e->state.cum = 42;
    ck_assert_ptr_eq(get(c, "user1"), e);
    ck_assert_ptr_null(get(c, "user2"));
    ck_assert_str_eq(e->user, "user1");
    state_cache_destroy(c);
}
END_TEST

START_TEST(test_eviction_drops_least_recently_used_clean_entries) {
    state_cache_t *c = state_cache_new(2);
    put(c, "a", 0);
    put(c, "b", 0);
    put(c, "c", 0);
    get(c, "a"); /* b is now the least recently used */
    ck_assert_int_eq(state_cache_evict(c), 1);
    ck_assert_ptr_null(get(c, "b"));
    ck_assert_ptr_nonnull(get(c, "a"));
    ck_assert_ptr_nonnull(get(c, "c"));
    ck_assert_uint_eq(state_cache_stats(c).evictions, 1);
    state_cache_destroy(c);
}
END_TEST

START_TEST(test_dirty_entries_are_never_evicted) {
    state_cache_t *c = state_cache_new(1);
    state_cache_mark_dirty(c, put(c, "a", 0));
    state_cache_mark_dirty(c, put(c, "b", 0));
    ck_assert_int_eq(state_cache_evict(c), 0);
    ck_assert_int_eq(state_cache_count(c), 2);
    size_t n;
    state_cache_dirty(c, &n);
    ck_assert_int_eq(n, 2);
    state_cache_mark_all_clean(c);
    state_cache_dirty(c, &n);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(state_cache_evict(c), 1);
    state_cache_destroy(c);
}
END_TEST

/* A user whose write is in flight, read back from Redis, would miss it:
 * it stays cached until the write lands, expired or not. */
START_TEST(test_entries_in_flight_stay_until_their_write_lands) {
    state_cache_t *c = state_cache_new(1);
    cache_entry_t *a = put(c, "a", 0);
    a->expires_at_ms = 5;
    state_cache_mark_dirty(c, a);
    state_cache_mark_dirty(c, put(c, "b", 0));
    state_cache_launch_dirty(c);
    size_t n;
    state_cache_dirty(c, &n);
    ck_assert_int_eq(n, 0);
    ck_assert(a->flags & CACHE_ENTRY_IN_FLIGHT);
    ck_assert(!(a->flags & CACHE_ENTRY_DIRTY));
    ck_assert_int_eq(state_cache_evict(c), 0);
    ck_assert_int_eq(state_cache_drop_expired(c, 10, 100), 0);
    /* Changed again while in flight: dirty for the next write as well. */
    state_cache_mark_dirty(c, a);
    cache_entry_t **dirty = state_cache_dirty(c, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_ptr_eq(dirty[0], a);
    state_cache_landed(c);
    ck_assert(!(a->flags & CACHE_ENTRY_IN_FLIGHT));
    ck_assert_int_eq(state_cache_evict(c), 1); /* b; a is still dirty */
    ck_assert_ptr_null(get(c, "b"));
    ck_assert_ptr_eq(get(c, "a"), a);
    state_cache_destroy(c);
}
END_TEST

/* A refused partition's entries go, from the write in flight too, so
 * landing it touches nothing freed (ASan would say). */
START_TEST(test_drop_partition_forgets_entries_in_flight) {
    state_cache_t *c = state_cache_new(100);
    state_cache_mark_dirty(c, put(c, "p0a", 0));
    state_cache_mark_dirty(c, put(c, "p1a", 1));
    state_cache_launch_dirty(c);
    ck_assert_int_eq(state_cache_drop_partition(c, 0), 1);
    state_cache_landed(c);
    cache_entry_t *kept = state_cache_get(c, 1, "p1a", 3);
    ck_assert_ptr_nonnull(kept);
    ck_assert(!(kept->flags & CACHE_ENTRY_IN_FLIGHT));
    state_cache_destroy(c);
}
END_TEST

START_TEST(test_drop_partition_forgets_only_that_partition_dirty_included) {
    state_cache_t *c = state_cache_new(100);
    put(c, "p0a", 0);
    state_cache_mark_dirty(c, put(c, "p1a", 1));
    state_cache_mark_dirty(c, put(c, "p0b", 0));
    ck_assert_int_eq(state_cache_drop_partition(c, 0), 2);
    ck_assert_ptr_null(get(c, "p0a"));
    ck_assert_ptr_nonnull(state_cache_get(c, 1, "p1a", 3));
    size_t n;
    cache_entry_t **dirty = state_cache_dirty(c, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(dirty[0]->user, "p1a");
    state_cache_destroy(c);
}
END_TEST

START_TEST(test_same_user_in_two_partitions_is_two_states) {
    state_cache_t *c = state_cache_new(100);
    cache_entry_t *a = put(c, "u", 0), *b = put(c, "u", 3);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_eq(state_cache_get(c, 0, "u", 1), a);
    ck_assert_ptr_eq(state_cache_get(c, 3, "u", 1), b);
    ck_assert_ptr_null(state_cache_get(c, 1, "u", 1));
    state_cache_destroy(c);
}
END_TEST

START_TEST(test_many_users_survive_table_growth) {
    state_cache_t *c = state_cache_new(100000);
    char name[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "user-%d", i);
        put(c, name, i % 6)->state.count = i;
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "user-%d", i);
        cache_entry_t *e = state_cache_get(c, i % 6, name, strlen(name));
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->state.count, i);
    }
    state_cache_destroy(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("state_cache");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_put_then_get_finds_the_same_entry);
    tcase_add_test(tc, test_eviction_drops_least_recently_used_clean_entries);
    tcase_add_test(tc, test_dirty_entries_are_never_evicted);
    tcase_add_test(tc, test_drop_partition_forgets_only_that_partition_dirty_included);
    tcase_add_test(tc, test_entries_in_flight_stay_until_their_write_lands);
    tcase_add_test(tc, test_drop_partition_forgets_entries_in_flight);
    tcase_add_test(tc, test_same_user_in_two_partitions_is_two_states);
    tcase_add_test(tc, test_many_users_survive_table_growth);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
