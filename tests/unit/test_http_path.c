#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "http_server.h"

static char user[300];
static size_t len;

START_TEST(test_plain_and_percent_encoded_ids_decode) {
    ck_assert_int_eq(http_parse_user_path("/users/user1", user, sizeof(user), &len), USER_PATH_OK);
    ck_assert_str_eq(user, "user1");
    ck_assert_int_eq(len, 5);
    ck_assert_int_eq(http_parse_user_path("/users/a%20b%2Fc%2b", user, sizeof(user), &len),
                     USER_PATH_OK);
    ck_assert_str_eq(user, "a b/c+");
    ck_assert_int_eq(http_parse_user_path("/users/caf%C3%A9", user, sizeof(user), &len),
                     USER_PATH_OK);
    ck_assert_int_eq(len, 5);
}
END_TEST

START_TEST(test_other_paths_are_not_user_paths) {
    ck_assert_int_eq(http_parse_user_path("/users/", user, sizeof(user), &len),
                     USER_PATH_NOT_A_USER_PATH);
    ck_assert_int_eq(http_parse_user_path("/users", user, sizeof(user), &len),
                     USER_PATH_NOT_A_USER_PATH);
    ck_assert_int_eq(http_parse_user_path("/users/a/b", user, sizeof(user), &len),
                     USER_PATH_NOT_A_USER_PATH);
    ck_assert_int_eq(http_parse_user_path("/userss/a", user, sizeof(user), &len),
                     USER_PATH_NOT_A_USER_PATH);
}
END_TEST

START_TEST(test_bad_encodings_control_bytes_and_long_ids_are_refused) {
    ck_assert_int_eq(http_parse_user_path("/users/a%2", user, sizeof(user), &len),
                     USER_PATH_BAD_ENCODING);
    ck_assert_int_eq(http_parse_user_path("/users/a%zz", user, sizeof(user), &len),
                     USER_PATH_BAD_ENCODING);
    ck_assert_int_eq(http_parse_user_path("/users/a%00", user, sizeof(user), &len),
                     USER_PATH_BAD_ENCODING);
    ck_assert_int_eq(http_parse_user_path("/users/a%0A", user, sizeof(user), &len),
                     USER_PATH_BAD_ENCODING);
    ck_assert_int_eq(http_parse_user_path("/users/u%FF%FE", user, sizeof(user), &len),
                     USER_PATH_BAD_ENCODING);
    ck_assert_int_eq(http_parse_user_path("/users/caf%C3", user, sizeof(user), &len),
                     USER_PATH_BAD_ENCODING);
    char path[400] = "/users/";
    memset(path + 7, 'x', 256);
    path[7 + 256] = '\0';
    ck_assert_int_eq(http_parse_user_path(path, user, sizeof(user), &len), USER_PATH_OK);
    ck_assert_int_eq(len, 256);
    strcat(path, "x");
    ck_assert_int_eq(http_parse_user_path(path, user, sizeof(user), &len), USER_PATH_TOO_LONG);
}
END_TEST

int main(void) {
    Suite *s = suite_create("http_path");
    TCase *tc = tcase_create("decode");
    tcase_add_test(tc, test_plain_and_percent_encoded_ids_decode);
    tcase_add_test(tc, test_other_paths_are_not_user_paths);
    tcase_add_test(tc, test_bad_encodings_control_bytes_and_long_ids_are_refused);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
