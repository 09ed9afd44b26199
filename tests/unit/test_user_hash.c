/* user_hash: a user's write says by its shape which fields it sets and
 * deletes, and a hash read back with HGETALL gives the state it holds. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "check_main.h"

#include "user_hash.h"

#define D(units) ((decimal_t)(units) * DECIMAL_SCALE)
enum { CORE = 0xF, BIT_CL = 1 << 4, BIT_STL = 1 << 5, RULE_BITS = 0x3F0 };

static cache_entry_t *entry(void) {
    cache_entry_t *e = calloc(1, sizeof(*e) + 2);
    memcpy(e->user, "u", 2);
    e->user_len = 1;
    e->state = (user_state_t){.prev = D(5), .cum = D(12), .count = 3, .event_ms = 1000};
    return e;
}

static void free_entry(cache_entry_t *e) {
    user_state_reset(&e->state);
    free(e);
}

static char *arg(const redis_argv_t *b, size_t i) {
    static char text[64];
    ck_assert_uint_lt(b->lens[i], sizeof(text));
    memcpy(text, b->arena + b->offsets[i], b->lens[i]);
    text[b->lens[i]] = '\0';
    return text;
}

static long shape_of(cache_entry_t *e, bool drop_ttl, redis_argv_t *b) {
    redis_argv_reset(b);
    ck_assert_int_eq(user_hash_add_fields(b, e, drop_ttl), 0);
    return strtol(arg(b, 0), NULL, 10);
}

START_TEST(test_a_plain_payment_sends_the_four_core_values_alone) {
    cache_entry_t *e = entry();
    redis_argv_t b = {0};
    ck_assert_int_eq(shape_of(e, false, &b), USER_HASH_CORE_ONLY);
    ck_assert_uint_eq(b.count, 5);
    ck_assert_str_eq(arg(&b, 1), "5");
    ck_assert_str_eq(arg(&b, 2), "12");
    ck_assert_str_eq(arg(&b, 3), "3");
    ck_assert_str_eq(arg(&b, 4), "1000");
    ck_assert_int_eq(e->flags & CACHE_ENTRY_RULE_FIELDS, 0);
    redis_argv_free(&b);
    free_entry(e);
}
END_TEST

START_TEST(test_emptied_rule_fields_are_deleted_only_when_the_hash_may_hold_them) {
    cache_entry_t *e = entry();
    redis_argv_t b = {0};
    rule_state_t rs = {.cumulative_alerted = D(100), .small_at_ms = 7};
    e->state.rules = rule_state_move_to_heap(&rs);
    ck_assert_int_eq(shape_of(e, false, &b), CORE | BIT_CL | BIT_STL);
    /* shape, 6 pairs by name, no deletes */
    ck_assert_uint_eq(b.count, 1 + 1 + 12 + 1);
    ck_assert_str_eq(arg(&b, 1), "6");
    ck_assert_str_eq(arg(&b, 2), "prev");
    ck_assert_str_eq(arg(&b, 10), "cl");
    ck_assert_str_eq(arg(&b, 11), "100");
    ck_assert_str_eq(arg(&b, 12), "stl");
    ck_assert_str_eq(arg(&b, 13), "7");
    ck_assert_str_eq(arg(&b, 14), "0");
    ck_assert_int_ne(e->flags & CACHE_ENTRY_RULE_FIELDS, 0);

    e->state.rules->small_at_ms = 0; /* emptied: stl goes, and every other rule field */
    long shape = shape_of(e, false, &b);
    ck_assert_int_eq(shape & RULE_BITS, BIT_CL);
    ck_assert_int_eq(shape >> USER_HASH_FIELD_COUNT, RULE_BITS & ~BIT_CL);
    ck_assert_str_eq(arg(&b, 1 + 1 + 10), "5");
    ck_assert_str_eq(arg(&b, 1 + 1 + 10 + 1), "stl");
    ck_assert_str_eq(arg(&b, b.count - 1), "inst");

    user_state_reset(&e->state);
    e->state = (user_state_t){.prev = D(1), .cum = D(1), .count = 1};
    ck_assert_int_eq(shape_of(e, false, &b), CORE | (RULE_BITS << USER_HASH_FIELD_COUNT));
    ck_assert_int_eq(e->flags & CACHE_ENTRY_RULE_FIELDS, 0);
    ck_assert_int_eq(shape_of(e, false, &b), CORE); /* nothing left to delete */
    redis_argv_free(&b);
    free_entry(e);
}
END_TEST

START_TEST(test_an_erased_user_is_deleted_first_and_persist_is_asked_only_of_a_kept_key) {
    cache_entry_t *e = entry();
    redis_argv_t b = {0};
    ck_assert_int_eq(shape_of(e, true, &b), CORE | USER_HASH_PERSIST);
    ck_assert_str_eq(arg(&b, 1), "4"); /* not the core path: counts and names */
    ck_assert_str_eq(arg(&b, 2), "prev");
    e->flags |= CACHE_ENTRY_ERASED | CACHE_ENTRY_RULE_FIELDS;
    ck_assert_int_eq(shape_of(e, true, &b), CORE | USER_HASH_ERASE);
    user_state_reset(&e->state); /* erased, no payment since: the key only goes */
    ck_assert_int_eq(shape_of(e, true, &b), USER_HASH_ERASE);
    ck_assert_uint_eq(b.count, 3);
    ck_assert_str_eq(arg(&b, 1), "0");
    ck_assert_str_eq(arg(&b, 2), "0");
    redis_argv_free(&b);
    free_entry(e);
}
END_TEST

static redisReply str(const char *s) {
    return (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)s, .len = strlen(s)};
}

START_TEST(test_a_hash_reads_back_by_field_name_passing_over_unknown_fields) {
    redisReply r[] = {str("count"), str("2"), str("owner"), str("someone else"),
                      str("cum"), str("7.5"), str("prev"), str("2.5"), str("cl"), str("5")};
    redisReply *el[] = {&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6], &r[7], &r[8], &r[9]};
    redisReply hash = {.type = REDIS_REPLY_ARRAY, .elements = 10, .element = el};
    redisReply pttl = {.type = REDIS_REPLY_INTEGER, .integer = 900};
    stored_user_t out;
    ck_assert_int_eq(user_hash_parse(&hash, &pttl, &out), 0);
    ck_assert_int_eq(out.state.count, 2);
    ck_assert_int_eq(out.state.cum, D(15) / 2);
    ck_assert_int_eq(out.state.prev, D(5) / 2);
    ck_assert(out.has_rule_fields);
    ck_assert_ptr_nonnull(out.state.rules);
    ck_assert_int_eq(out.state.rules->cumulative_alerted, D(5));
    ck_assert_int_eq(out.ttl_left_ms, 900);
    user_state_reset(&out.state);
}
END_TEST

START_TEST(test_an_absent_key_is_no_state_and_a_damaged_reply_is_refused) {
    redisReply hash = {.type = REDIS_REPLY_ARRAY, .elements = 0};
    redisReply gone = {.type = REDIS_REPLY_INTEGER, .integer = -2};
    stored_user_t out;
    ck_assert_int_eq(user_hash_parse(&hash, &gone, &out), 0);
    ck_assert_int_eq(out.state.count, 0);
    ck_assert_int_eq(out.ttl_left_ms, -1);

    redisReply name = str("count"), number = {.type = REDIS_REPLY_INTEGER, .integer = 3};
    redisReply *odd[] = {&name};
    redisReply odd_hash = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = odd};
    ck_assert_int_eq(user_hash_parse(&odd_hash, &gone, &out), -1);
    redisReply *not_a_name[] = {&number, &name};
    redisReply bad_name = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = not_a_name};
    ck_assert_int_eq(user_hash_parse(&bad_name, &gone, &out), -1);
    redisReply text = str("three");
    redisReply *bad_count[] = {&name, &text};
    redisReply bad_value = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = bad_count};
    ck_assert_int_eq(user_hash_parse(&bad_value, &gone, &out), -1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("user_hash");
    TCase *tc = tcase_create("user_hash");
    tcase_add_test(tc, test_a_plain_payment_sends_the_four_core_values_alone);
    tcase_add_test(tc, test_emptied_rule_fields_are_deleted_only_when_the_hash_may_hold_them);
    tcase_add_test(tc,
                   test_an_erased_user_is_deleted_first_and_persist_is_asked_only_of_a_kept_key);
    tcase_add_test(tc, test_a_hash_reads_back_by_field_name_passing_over_unknown_fields);
    tcase_add_test(tc, test_an_absent_key_is_no_state_and_a_damaged_reply_is_refused);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
