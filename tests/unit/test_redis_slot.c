/* redis_cluster's slot function against Redis's own test vectors (the
 * cluster suite compares it with a live cluster's CLUSTER KEYSLOT too). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "redis_cluster.h"

static uint16_t slot(const char *key) { return redis_key_slot(key, strlen(key)); }

START_TEST(test_crc16_matches_redis_reference_output) {
    /* src/crc16.c: "Output for "123456789" : 31C3". */
    ck_assert_uint_eq(redis_crc16("123456789", 9), 0x31C3);
    ck_assert_uint_eq(redis_crc16("", 0), 0);
}
END_TEST

START_TEST(test_key_slots_match_redis_keyslot_vectors) {
    /* The KEYSLOT test of Redis's own suite. */
    ck_assert_uint_eq(slot("a"), 15495);
    ck_assert_uint_eq(slot("{a}b"), 15495);
    ck_assert_uint_eq(slot("{a"), 10276);
    ck_assert_uint_eq(slot("{{a}b"), 10276);
    ck_assert_uint_eq(slot("{b{a}c}d"), 7471);
    ck_assert_uint_eq(slot("b{a"), 7471);
    /* 123456789 is 0x31C3 = 12739, below 16384. */
    ck_assert_uint_eq(slot("123456789"), 12739);
}
END_TEST

START_TEST(test_hash_tags_follow_the_cluster_specification) {
    /* Only the first {...} counts, and only when not empty. */
    ck_assert_uint_eq(slot("{user1000}.following"), slot("{user1000}.followers"));
    ck_assert_uint_eq(slot("foo{bar}{zap}"), slot("bar"));
    ck_assert_uint_eq(slot("foo{{bar}}zap"), slot("{bar"));
    ck_assert_uint_ne(slot("foo{}{bar}"), slot("bar"));
    ck_assert_uint_eq(slot("foo{}{bar}"), redis_crc16("foo{}{bar}", 10) & 16383);
    /* Every key of a partition shares its slot, whatever the user id holds. */
    ck_assert_uint_eq(slot("fraud:{payments/7}:user:u{x}"), slot("fraud:{payments/7}:checkpoint"));
    ck_assert_uint_eq(slot("fraud:{payments/7}:outbox"), slot("payments/7"));
    /* Binary-safe: a NUL inside the key is hashed too. */
    ck_assert_uint_ne(redis_key_slot("a\0b", 3), slot("a"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("redis_slot");
    TCase *tc = tcase_create("slots");
    tcase_add_test(tc, test_crc16_matches_redis_reference_output);
    tcase_add_test(tc, test_key_slots_match_redis_keyslot_vectors);
    tcase_add_test(tc, test_hash_tags_follow_the_cluster_specification);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
