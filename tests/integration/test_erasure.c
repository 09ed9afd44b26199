/* Erasing a user: a tombstone keyed by the user on the payments topic
 * removes every trace of the user's state, in order with the user's
 * payments, in the partition's atomic step, and a crash or a replay from
 * the beginning brings nothing back. */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static service_proc_t svc, svc2;
static int http_port;
static char listen_setting[64];
static char body[65536];

static void setup(void) {
    static const char *const topics[] = {"payment-totals:1", NULL};
    fixture_options_t opts = {.topics = topics};
    fixture_start(&opts);
    http_port = harness_free_port();
    snprintf(listen_setting, sizeof(listen_setting), "http.listen=127.0.0.1:%d", http_port);
}

static bool user_has_state(const char *user) {
    char key[256];
    return redis_find_user_key(redis, user, key, sizeof(key));
}

static char *field(const char *user, const char *name) {
    char key[256];
    ck_assert_msg(redis_find_user_key(redis, user, key, sizeof(key)), "no state for %s", user);
    return redis_hget(redis, key, name);
}

static void assert_field(const char *user, const char *name, const char *want) {
    char *got = field(user, name);
    ck_assert_msg(got && strcmp(got, want) == 0, "%s.%s: %s, expected %s", user, name,
                  got ? got : "(none)", want);
    free(got);
}

static bool wait_gone(const char *user, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    while (user_has_state(user))
        if (mono_ms() > deadline) return false;
        else sleep_ms(50);
    return true;
}

START_TEST(test_a_tombstone_erases_the_user_in_order_with_its_payments) {
    const char *extra[] = {listen_setting, "rule.velocity.enabled=true",
                           "rule.cumulative_limit.enabled=true", "rule.cumulative_limit.limit=100",
                           "totals.topic=payment-totals", NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    /* NULL values are tombstones. "again" pays after its erasure; "gone"
     * does not; a tombstone with no key cannot name a user. */
    const char *keys[] = {"again", "again", "gone", "again", "gone", "again", NULL, "stays"};
    const char *values[] = {"100", "20000", "5", NULL, NULL, "50", NULL, "7"};
    kafka_produce(&kafka, "payments", keys, values, 8);
    ck_assert(wait_for_user_field(redis, "stays", "count", "1", 30000));
    ck_assert(wait_for_user_field(redis, "again", "cum", "50", 30000));
    assert_field("again", "count", "1");
    assert_field("again", "prev", "50");
    char *vel = field("again", "vel"); /* one payment in the ring, not three */
    ck_assert_msg(vel && !strchr(vel, ','), "velocity ring %s", vel ? vel : "(none)");
    free(vel);
    char *cl = field("again", "cl"); /* 50 is below the limit: alerted state erased too */
    ck_assert_ptr_null(cl);
    ck_assert(wait_gone("gone", 10000));
    ck_assert_int_eq(http_get(http_port, "/users/gone", body, sizeof(body)), 404);
    ck_assert_int_eq(http_get(http_port, "/users/again", body, sizeof(body)), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"event_count\":1"));
    ck_assert_int_eq(http_get(http_port, "/metrics", body, sizeof(body)), 200);
    ck_assert_ptr_nonnull(strstr(body, "\nfraud_users_erased_total 2\n"));
    /* The keyless tombstone is a dead letter; the log names no amount. */
    record_list_t dlq = kafka_read_topic(&kafka, "payments-dlq", 1, 30000);
    ck_assert_int_eq(dlq.count, 1);
    ck_assert_ptr_nonnull(strstr(dlq.items[0].headers, "fraud.dlq.reason=missing_user"));
    record_list_free(&dlq);
    /* The totals changelog forgets "gone" too: its last record there is a
     * tombstone; "again"'s last total is the one after its erasure. */
    record_list_t totals = kafka_read_topic(&kafka, "payment-totals", 3, 30000);
    const record_t *last_gone = NULL, *last_again = NULL;
    for (size_t i = 0; i < totals.count; i++) {
        if (strcmp(totals.items[i].key, "gone") == 0) last_gone = &totals.items[i];
        if (strcmp(totals.items[i].key, "again") == 0) last_again = &totals.items[i];
    }
    ck_assert_ptr_nonnull(last_gone);
    ck_assert_msg(last_gone->tombstone, "gone's last total: %s", last_gone->value);
    ck_assert_ptr_nonnull(last_again);
    ck_assert(!last_again->tombstone);
    ck_assert_ptr_nonnull(strstr(last_again->value, "\"cumulative_amount\":50,\"event_count\":1"));
    record_list_free(&totals);
    ck_assert(service_wait_log(&svc, "user gone erased by the tombstone", 1000));
    ck_assert(!service_log_has(&svc, "20000", NULL));
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

START_TEST(test_an_erasure_holds_across_a_sigkill_and_a_replay) {
    const char *extra[] = {listen_setting, NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    const char *keys[] = {"k1", "k1", "k1"};
    const char *before[] = {"10", "20", "30"};
    kafka_produce(&kafka, "payments", keys, before, 3);
    ck_assert(wait_for_user_field(redis, "k1", "count", "3", 30000));
    service_kill(&svc);
    const char *after_keys[] = {"k1", "k1"};
    const char *after[] = {NULL, "4"};
    kafka_produce(&kafka, "payments", after_keys, after, 2);
    /* A new group reads the topic from its beginning: the payments before
     * the tombstone come again, and the checkpoint must keep them out. */
    const char *replay[] = {listen_setting, "group.id=fraud-detector-replay", NULL};
    service_start(&svc2, &kafka, &redis_srv, replay);
    ck_assert(wait_for_user_field(redis, "k1", "cum", "4", 60000));
    ck_assert(fixture_wait_applied(5, 30000));
    sleep_ms(500);
    assert_field("k1", "count", "1");
    assert_field("k1", "cum", "4");
    ck_assert_int_eq(service_stop(&svc2), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("erasure");
    TCase *tc = tcase_create("erasure");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, fixture_teardown);
    tcase_add_test(tc, test_a_tombstone_erases_the_user_in_order_with_its_payments);
    tcase_add_test(tc, test_an_erasure_holds_across_a_sigkill_and_a_replay);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_NOFORK, CK_VERBOSE);
}
