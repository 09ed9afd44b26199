#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "json_arena.h"

static payment_t pay;
static char err[256];

static const char *shown(const char *value) { return value ? value : "(null)"; }

static decode_reason_t run(const char *key, const char *value) {
    err[0] = '\0';
    return decode_payment(key, key ? strlen(key) : 0, value, value ? strlen(value) : 0, NULL,
                          &pay, err, sizeof(err));
}

#define ACCEPTS(key, value, user, amount_units)                 \
    do {                                                        \
        ck_assert_msg(run(key, value) == DECODE_OK, "%s", err); \
        ck_assert_str_eq(pay.user_id, user);                    \
        ck_assert_int_eq(pay.amount, amount_units);             \
    } while (0)

#define REJECTS(key, value, reason)                                                   \
    do {                                                                              \
        decode_reason_t r_ = run(key, value);                                         \
        ck_assert_msg(r_ == reason, "%s: got %s (%s)", shown(value),      \
                      decode_reason_code(r_), err);                                   \
        ck_assert(strlen(err) > 0);                                                   \
    } while (0)

START_TEST(test_json_object_with_user_and_number_amount) {
    ACCEPTS(NULL, "{\"user_id\":\"user1\",\"amount\":5000}", "user1", 50000000);
    ACCEPTS("user1", "{\"user_id\":\"user1\",\"amount\":5000}", "user1", 50000000);
    ACCEPTS(NULL, " {\"user_id\":\"u\",\"amount\":0.1}\n", "u", 1000);
    ACCEPTS(NULL, "{\"user_id\":\"u\",\"amount\":0}", "u", 0);
    ACCEPTS(NULL, "{\"user_id\":\"u\",\"amount\":1e12}", "u", 1000000000000LL * 10000);
}
END_TEST

START_TEST(test_a_tombstone_names_the_user_to_erase) {
    payment_t p;
    char why[128] = "";
    ck_assert_int_eq(decode_erasure("user1", 5, NULL, &p, why, sizeof(why)), DECODE_OK);
    ck_assert_str_eq(p.user_id, "user1");
    ck_assert_uint_eq(p.user_len, 5);
    ck_assert_int_eq(decode_erasure(NULL, 0, NULL, &p, why, sizeof(why)), DECODE_MISSING_USER);
    ck_assert(strlen(why) > 0);
    ck_assert_int_eq(decode_erasure("a\0b", 3, NULL, &p, why, sizeof(why)),
                     DECODE_NUL_CHARACTER);
    ck_assert_int_eq(decode_erasure("\xff", 1, NULL, &p, why, sizeof(why)),
                     DECODE_INVALID_USER_ID);
    decode_limits_t short_ids = DECODE_DEFAULT_LIMITS;
    short_ids.max_user_bytes = 3;
    ck_assert_int_eq(decode_erasure("user1", 5, &short_ids, &p, why, sizeof(why)),
                     DECODE_USER_TOO_LONG);
}
END_TEST

START_TEST(test_json_amount_as_numeric_string_is_exact) {
    ACCEPTS(NULL, "{\"user_id\":\"u\",\"amount\":\"999999999999.9999\"}", "u",
            9999999999999999LL);
    ACCEPTS(NULL, "{\"user_id\":\"u\",\"amount\":\"12.50\"}", "u", 125000);
}
END_TEST

START_TEST(test_json_without_user_takes_the_key) {
    ACCEPTS("user7", "{\"amount\":12}", "user7", 120000);
}
END_TEST

START_TEST(test_optional_event_id_and_timestamp) {
    ck_assert_int_eq(
        run(NULL, "{\"user_id\":\"u\",\"amount\":1,\"event_id\":\"e-9\",\"timestamp\":1700000000123}"),
        DECODE_OK);
    ck_assert_str_eq(pay.event_id, "e-9");
    ck_assert_int_eq(pay.timestamp_ms, 1700000000123LL);
    ck_assert_int_eq(run(NULL, "{\"user_id\":\"u\",\"amount\":1,\"event_id\":42}"), DECODE_OK);
    ck_assert_str_eq(pay.event_id, "42");
    ck_assert_int_eq(run(NULL, "{\"user_id\":\"u\",\"amount\":1}"), DECODE_OK);
    ck_assert_int_eq(pay.timestamp_ms, -1);
    ck_assert_str_eq(pay.event_id, "");
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":1,\"timestamp\":\"now\"}", DECODE_BAD_TIMESTAMP);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":1,\"timestamp\":-5}", DECODE_BAD_TIMESTAMP);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":1,\"event_id\":[1]}", DECODE_BAD_EVENT_ID);
}
END_TEST

START_TEST(test_bare_number_with_key_is_the_kcat_form) {
    ACCEPTS("user1", "5000", "user1", 50000000);
    ACCEPTS("user1", " 7.25\n", "user1", 72500);
    REJECTS(NULL, "5000", DECODE_MISSING_USER);
    REJECTS("user1", "-5", DECODE_NEGATIVE_AMOUNT);
    REJECTS("user1", "5000abc", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS("user1", "NaN", DECODE_NON_FINITE_AMOUNT);
    REJECTS("user1", "inf", DECODE_NON_FINITE_AMOUNT);
    REJECTS("user1", "1.00001", DECODE_AMOUNT_TOO_PRECISE);
    REJECTS("user1", "1000000000000.0001", DECODE_AMOUNT_OUT_OF_RANGE);
}
END_TEST

START_TEST(test_malformed_json_and_non_objects_are_rejected) {
    REJECTS("u", "", DECODE_EMPTY);
    REJECTS("u", NULL, DECODE_EMPTY);
    REJECTS("u", "   ", DECODE_EMPTY);
    REJECTS("u", "{\"user_id\":\"u\",\"amount\":5", DECODE_MALFORMED_JSON);
    REJECTS("u", "{bad", DECODE_MALFORMED_JSON);
    REJECTS("u", "{\"user_id\":\"u\",\"amount\":5} trailing", DECODE_TRAILING_GARBAGE);
    REJECTS("u", "{\"user_id\":\"u\",\"amount\":5}{}", DECODE_TRAILING_GARBAGE);
    REJECTS("u", "[1,2]", DECODE_NOT_AN_OBJECT);
    REJECTS("u", "\"5000\"", DECODE_NOT_AN_OBJECT);
    REJECTS("u", "true", DECODE_NOT_AN_OBJECT);
}
END_TEST

START_TEST(test_user_must_be_present_sized_and_consistent) {
    char long_user[400], json[600];
    memset(long_user, 'x', 257);
    long_user[257] = '\0';
    snprintf(json, sizeof(json), "{\"user_id\":\"%s\",\"amount\":1}", long_user);
    REJECTS(NULL, json, DECODE_USER_TOO_LONG);
    long_user[256] = '\0';
    snprintf(json, sizeof(json), "{\"user_id\":\"%s\",\"amount\":1}", long_user);
    ck_assert_int_eq(run(NULL, json), DECODE_OK);
    ck_assert_int_eq(pay.user_len, 256);
    REJECTS(NULL, "{\"amount\":1}", DECODE_MISSING_USER);
    REJECTS(NULL, "{\"user_id\":\"\",\"amount\":1}", DECODE_EMPTY_USER);
    REJECTS(NULL, "{\"user_id\":5,\"amount\":1}", DECODE_BAD_USER);
    REJECTS(NULL, "{\"user_id\":\"a\\nb\",\"amount\":1}", DECODE_INVALID_USER_ID);
    REJECTS("other", "{\"user_id\":\"u\",\"amount\":1}", DECODE_KEY_MISMATCH);
}
END_TEST

START_TEST(test_amount_must_be_present_numeric_and_in_range) {
    REJECTS(NULL, "{\"user_id\":\"u\"}", DECODE_MISSING_AMOUNT);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":null}", DECODE_MISSING_AMOUNT);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":\"abc\"}", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":true}", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":{}}", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":-1}", DECODE_NEGATIVE_AMOUNT);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":\"-0.5\"}", DECODE_NEGATIVE_AMOUNT);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":1e999}", DECODE_NON_FINITE_AMOUNT);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":\"Infinity\"}", DECODE_NON_FINITE_AMOUNT);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":1e13}", DECODE_AMOUNT_OUT_OF_RANGE);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":0.00001}", DECODE_AMOUNT_TOO_PRECISE);
    REJECTS(NULL, "{\"user_id\":\"u\",\"amount\":\"1.23456\"}", DECODE_AMOUNT_TOO_PRECISE);
}
END_TEST

/* With explicit lengths, for raw NUL and non-UTF-8 bytes. */
static decode_reason_t run_bytes(const char *key, size_t key_len, const char *value,
                                 size_t value_len) {
    err[0] = '\0';
    return decode_payment(key, key_len, value, value_len, NULL, &pay, err, sizeof(err));
}

START_TEST(test_an_escaped_nul_never_truncates_an_identity) {
    /* The JSON names k40\0zzz: it must not change k40's state. */
    REJECTS("k40", "{\"user_id\":\"k40\\u0000zzz\",\"amount\":5}", DECODE_NUL_CHARACTER);
    REJECTS(NULL, "{\"user_id\":\"k40\\u0000\",\"amount\":5}", DECODE_NUL_CHARACTER);
    REJECTS("u", "{\"amount\":\"5\\u0000\"}", DECODE_NUL_CHARACTER);
    REJECTS("u", "{\"amount\":5,\"event_id\":\"e\\u00001\"}", DECODE_NUL_CHARACTER);
    /* A field name that would read as "user_id" is no way around it. */
    REJECTS("k40", "{\"user_id\\u0000x\":\"k40\",\"amount\":5}", DECODE_NUL_CHARACTER);
    /* An escaped backslash followed by the text u0000 is no NUL. */
    ACCEPTS("u", "{\"amount\":5,\"event_id\":\"a\\\\u0000\"}", "u", 50000);
    ck_assert_str_eq(pay.event_id, "a\\u0000");
    /* Other escapes still decode. */
    ACCEPTS(NULL, "{\"user_id\":\"caf\\u00e9\",\"amount\":1}", "caf\xc3\xa9", 10000);
}
END_TEST

START_TEST(test_a_raw_nul_is_refused_wherever_it_is) {
    ck_assert_int_eq(run_bytes("k40\0", 4, "5", 1), DECODE_NUL_CHARACTER);
    ck_assert_int_eq(run_bytes("u", 1, "5\0", 2), DECODE_NUL_CHARACTER);
    static const char in_user[] = "{\"user_id\":\"k40\0zzz\",\"amount\":5}";
    ck_assert_int_eq(run_bytes(NULL, 0, in_user, sizeof(in_user) - 1), DECODE_NUL_CHARACTER);
    static const char in_amount[] = "{\"user_id\":\"u\",\"amount\":\"5\0\"}";
    ck_assert_int_eq(run_bytes(NULL, 0, in_amount, sizeof(in_amount) - 1), DECODE_NUL_CHARACTER);
    static const char between[] = "{\"user_id\":\"u\",\0\"amount\":5}";
    ck_assert_int_eq(run_bytes(NULL, 0, between, sizeof(between) - 1), DECODE_NUL_CHARACTER);
}
END_TEST

START_TEST(test_user_ids_are_utf8_in_the_key_and_in_the_json) {
    ck_assert_int_eq(run_bytes("u\xff\xfe", 3, "5", 1), DECODE_INVALID_USER_ID);
    ck_assert_int_eq(run_bytes("u\xff\xfe", 3, "{\"amount\":5}", 12), DECODE_INVALID_USER_ID);
    REJECTS(NULL, "{\"user_id\":\"u\xff\xfe\",\"amount\":5}", DECODE_INVALID_USER_ID);
    REJECTS(NULL, "{\"user_id\":\"\xc0\xaf\",\"amount\":5}", DECODE_INVALID_USER_ID); /* overlong */
    REJECTS(NULL, "{\"user_id\":\"\xed\xa0\x80\",\"amount\":5}", DECODE_INVALID_USER_ID); /* surrogate */
    REJECTS(NULL, "{\"user_id\":\"\xf4\x90\x80\x80\",\"amount\":5}", DECODE_INVALID_USER_ID);
    REJECTS(NULL, "{\"user_id\":\"ab\xe2\x82\",\"amount\":5}", DECODE_INVALID_USER_ID); /* cut */
    REJECTS(NULL, "{\"user_id\":\"a\x7f\",\"amount\":5}", DECODE_INVALID_USER_ID);
    REJECTS(NULL, "{\"user_id\":\"a\\u0007\",\"amount\":5}", DECODE_INVALID_USER_ID);
    ACCEPTS("\xf0\x9f\x92\xb3u\xc3\xa9", "5", "\xf0\x9f\x92\xb3u\xc3\xa9", 50000);
    ACCEPTS(NULL, "{\"user_id\":\"\\ud83d\\udcb3\",\"amount\":5}", "\xf0\x9f\x92\xb3", 50000);
    /* An event id is echoed in alerts: it must be UTF-8 too. */
    REJECTS("u", "{\"amount\":5,\"event_id\":\"e\xff\"}", DECODE_BAD_EVENT_ID);
}
END_TEST

START_TEST(test_json_numbers_follow_rfc_8259) {
    REJECTS("u", "{\"amount\":007}", DECODE_MALFORMED_JSON);
    REJECTS("u", "{\"amount\":-01}", DECODE_MALFORMED_JSON);
    REJECTS("u", "{\"amount\":5.}", DECODE_MALFORMED_JSON);
    REJECTS("u", "{\"amount\":1.e3}", DECODE_MALFORMED_JSON);
    REJECTS("u", "{\"amount\":5,\"timestamp\":0017}", DECODE_MALFORMED_JSON);
    REJECTS("u", "{\"amount\":5,\"x\":[1,02]}", DECODE_MALFORMED_JSON);
    REJECTS("u", "{\"amount\":NaN}", DECODE_MALFORMED_JSON);
    REJECTS("u", "{\"amount\":Infinity}", DECODE_MALFORMED_JSON);
    REJECTS("u", "{\"amount\":+5}", DECODE_MALFORMED_JSON);
    REJECTS("u", "{\"amount\":.5}", DECODE_MALFORMED_JSON);
    ACCEPTS("u", "{\"amount\":0.5}", "u", 5000);
    ACCEPTS("u", "{\"amount\":1.5E+3}", "u", 15000000);
    ACCEPTS("u", "{\"amount\":0}", "u", 0);
    ACCEPTS("u", "{\"amount\":-0}", "u", 0); /* zero, written with a sign */
    ACCEPTS("u", "{\"amount\":10,\"note\":\"007 and 5.\"}", "u", 100000); /* in a string */
    ACCEPTS("u", "{\"amount\":5,\"ok\":true,\"no\":false,\"n\":null}", "u", 50000);
}
END_TEST

START_TEST(test_numeric_strings_are_json_numbers_in_quotes) {
    ACCEPTS("u", "{\"amount\":\"12.50\"}", "u", 125000);
    ACCEPTS("u", "{\"amount\":\"1e3\"}", "u", 10000000);
    ACCEPTS("u", "{\"amount\":\"-0\"}", "u", 0);
    REJECTS("u", "{\"amount\":\" 5\"}", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS("u", "{\"amount\":\"5 \"}", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS("u", "{\"amount\":\"+5\"}", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS("u", "{\"amount\":\"5.\"}", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS("u", "{\"amount\":\".5\"}", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS("u", "{\"amount\":\"007\"}", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS("u", "{\"amount\":\"0x10\"}", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS("u", "{\"amount\":\"NaN\"}", DECODE_NON_FINITE_AMOUNT);
    /* The bare form is a JSON text too: whitespace around it, nothing else. */
    ACCEPTS("u", " 12.50\n", "u", 125000);
    ACCEPTS("u", "1e3", "u", 10000000);
    ACCEPTS("u", "-0", "u", 0);
    REJECTS("u", "+5", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS("u", "5.", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS("u", ".5", DECODE_NON_NUMERIC_AMOUNT);
    REJECTS("u", "007", DECODE_NON_NUMERIC_AMOUNT);
}
END_TEST

START_TEST(test_every_reason_has_a_stable_code) {
    for (int r = 0; r < DECODE_REASON_COUNT; r++) {
        ck_assert_ptr_nonnull(decode_reason_code((decode_reason_t)r));
        ck_assert_str_ne(decode_reason_code((decode_reason_t)r), "unknown");
    }
    ck_assert_str_eq(decode_reason_code(DECODE_AMOUNT_TOO_PRECISE), "amount_too_precise");
}
END_TEST

START_TEST(test_limits_refuse_large_deep_and_long_input) {
    decode_limits_t tight = {.max_message_bytes = 64, .max_user_bytes = 4, .max_json_depth = 2};
    char big[200];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *head = "{\"user_id\":\"u\",\"amount\":1}";
    memcpy(big, head, strlen(head)); /* then spaces: valid, but too large */
    ck_assert_int_eq(decode_payment("u", 1, big, strlen(big), &tight, &pay, err, sizeof(err)),
                     DECODE_MESSAGE_TOO_LARGE);
    const char *deep = "{\"user_id\":\"u\",\"amount\":1,\"x\":{\"y\":{}}}";
    ck_assert_int_eq(decode_payment(NULL, 0, deep, strlen(deep), &tight, &pay, err, sizeof(err)),
                     DECODE_TOO_DEEP);
    const char *ok = "{\"user_id\":\"u\",\"amount\":1,\"x\":{\"y\":1}}";
    ck_assert_int_eq(decode_payment(NULL, 0, ok, strlen(ok), &tight, &pay, err, sizeof(err)),
                     DECODE_OK);
    ck_assert_int_eq(decode_payment("userX", 5, "1", 1, &tight, &pay, err, sizeof(err)),
                     DECODE_USER_TOO_LONG);
    ck_assert_int_eq(decode_payment("user", 4, "1", 1, &tight, &pay, err, sizeof(err)), DECODE_OK);
    /* Beyond cJSON's own nesting limit it is simply malformed, never a crash. */
    static char very_deep[5000];
    memset(very_deep, '[', 2500);
    memset(very_deep + 2500, ']', 2500);
    ck_assert_int_ne(decode_payment("u", 1, very_deep, sizeof(very_deep), NULL, &pay, err,
                                    sizeof(err)),
                     DECODE_OK);
}
END_TEST

/* Every test here decodes through json_arena (main installs it). A tree
 * larger than the arena's block spills into malloc; the next decode starts
 * from an empty block again. ASan, in the hardening pass, checks the frees. */
START_TEST(test_a_tree_larger_than_the_arena_spills_into_malloc) {
    size_t fields = 6000, size = fields * 16 + 64, len = 0;
    char *big = malloc(size);
    ck_assert_ptr_nonnull(big);
    len += (size_t)snprintf(big + len, size - len, "{\"user_id\":\"big\",\"amount\":7");
    for (size_t i = 0; i < fields; i++)
        len += (size_t)snprintf(big + len, size - len, ",\"f%zu\":\"v\"", i);
    len += (size_t)snprintf(big + len, size - len, "}");
    decode_limits_t limits = DECODE_DEFAULT_LIMITS;
    limits.max_message_bytes = size;
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(decode_payment(NULL, 0, big, len, &limits, &pay, err, sizeof(err)),
                         DECODE_OK);
        ck_assert_str_eq(pay.user_id, "big");
        ck_assert_int_eq(pay.amount, 70000);
        ACCEPTS(NULL, "{\"user_id\":\"small\",\"amount\":1}", "small", 10000);
    }
    free(big);
    json_arena_release();
}
END_TEST

int main(void) {
    json_arena_install();
    Suite *s = suite_create("decode");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_json_object_with_user_and_number_amount);
    tcase_add_test(tc, test_a_tree_larger_than_the_arena_spills_into_malloc);
    tcase_add_test(tc, test_json_amount_as_numeric_string_is_exact);
    tcase_add_test(tc, test_json_without_user_takes_the_key);
    tcase_add_test(tc, test_optional_event_id_and_timestamp);
    tcase_add_test(tc, test_bare_number_with_key_is_the_kcat_form);
    tcase_add_test(tc, test_malformed_json_and_non_objects_are_rejected);
    tcase_add_test(tc, test_user_must_be_present_sized_and_consistent);
    tcase_add_test(tc, test_amount_must_be_present_numeric_and_in_range);
    tcase_add_test(tc, test_an_escaped_nul_never_truncates_an_identity);
    tcase_add_test(tc, test_a_raw_nul_is_refused_wherever_it_is);
    tcase_add_test(tc, test_user_ids_are_utf8_in_the_key_and_in_the_json);
    tcase_add_test(tc, test_json_numbers_follow_rfc_8259);
    tcase_add_test(tc, test_numeric_strings_are_json_numbers_in_quotes);
    tcase_add_test(tc, test_every_reason_has_a_stable_code);
    tcase_add_test(tc, test_a_tombstone_names_the_user_to_erase);
    tcase_add_test(tc, test_limits_refuse_large_deep_and_long_input);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
