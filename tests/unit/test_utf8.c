#include <check.h>

#include "check_main.h"
#include <string.h>

#include "utf8.h"

static bool valid(const char *s) { return utf8_valid(s, strlen(s), NULL); }

START_TEST(test_well_formed_text_of_every_length_is_valid) {
    ck_assert(valid(""));
    ck_assert(valid("plain ascii"));
    ck_assert(valid("caf\xc3\xa9"));                 /* U+00E9 */
    ck_assert(valid("\xe2\x82\xac"));                /* U+20AC */
    ck_assert(valid("\xef\xbf\xbf"));                /* U+FFFF */
    ck_assert(valid("\xf0\x9f\x92\xb3"));            /* U+1F4B3 */
    ck_assert(valid("\xf4\x8f\xbf\xbf"));            /* U+10FFFF, the last */
    ck_assert(utf8_valid("a\0b", 3, NULL));          /* NUL is UTF-8; callers refuse it */
}
END_TEST

START_TEST(test_ill_formed_sequences_are_found_at_their_first_byte) {
    size_t at = 99;
    ck_assert(!utf8_valid("u\xff\xfe", 3, &at));
    ck_assert_uint_eq(at, 1);
    ck_assert(!valid("\x80"));                       /* lone continuation */
    ck_assert(!valid("\xc0\xaf"));                   /* overlong '/' */
    ck_assert(!valid("\xc1\xbf"));                   /* overlong */
    ck_assert(!valid("\xe0\x80\xaf"));               /* overlong */
    ck_assert(!valid("\xf0\x80\x80\xaf"));           /* overlong */
    ck_assert(!valid("\xed\xa0\x80"));               /* U+D800, a surrogate */
    ck_assert(!valid("\xed\xbf\xbf"));               /* U+DFFF */
    ck_assert(!valid("\xf4\x90\x80\x80"));           /* above U+10FFFF */
    ck_assert(!valid("\xf5\x80\x80\x80"));
    ck_assert(!utf8_valid("ab\xe2\x82", 4, &at));    /* cut short */
    ck_assert_uint_eq(at, 2);
    ck_assert(!valid("\xe2\x28\xa1"));               /* bad continuation */
}
END_TEST

START_TEST(test_sanitize_replaces_only_what_is_not_utf8) {
    char text[] = "ok caf\xc3\xa9 \xff\xfe end \xe2\x82";
    ck_assert_uint_eq(utf8_sanitize(text), 4);
    ck_assert_str_eq(text, "ok caf\xc3\xa9 ?? end ??");
    ck_assert(valid(text));
    char clean[] = "\xf0\x9f\x92\xb3 fine";
    ck_assert_uint_eq(utf8_sanitize(clean), 0);
    ck_assert_str_eq(clean, "\xf0\x9f\x92\xb3 fine");
}
END_TEST

int main(void) {
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_well_formed_text_of_every_length_is_valid);
    tcase_add_test(tc, test_ill_formed_sequences_are_found_at_their_first_byte);
    tcase_add_test(tc, test_sanitize_replaces_only_what_is_not_utf8);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
