/* The state query's TTL on an injected clock: /users/{id} answers from the
 * cache as Flink's StateTtlConfig reads, with the clock moved by the test
 * instead of slept through. Memory backend: no Redis, no Kafka. */
#include <check.h>

#include "check_main.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "clock.h"
#include "ops_http.h"

static int64_t fake_now_ms;
static int64_t fake_now(void *ctx) {
    (void)ctx;
    return fake_now_ms;
}
static void fake_sleep(void *ctx, int64_t ms) {
    (void)ctx;
    fake_now_ms += ms;
}
static const clock_source_t fake_clock = {.now_ms = fake_now, .monotonic_ms = fake_now,
                                          .sleep_ms = fake_sleep};

#define T0 1700000000000LL
#define TTL_MS 60000

static config_t *cfg;
static metrics_t *metrics;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static state_cache_t *cache;
static partitions_t *partitions;
static ttl_policy_t ttl;
static atomic_int_least64_t heartbeat;
static atomic_int fatal;
static ops_http_t *ops;

static void start(const char *update, const char *visibility) {
    fake_now_ms = T0;
    clock_inject(&fake_clock);
    cfg = config_new();
    metrics = metrics_new();
    cache = state_cache_new(100);
    partitions = partitions_new("payments", 8);
    ck_assert_int_eq(partitions_own(partitions, 0, -1), 0);
    ck_assert_int_eq(ttl_policy_init(&ttl, TTL_MS, update, visibility), 0);
    atomic_init(&heartbeat, T0);
    atomic_init(&fatal, 0);
    ops_sources_t sources = {.cfg = cfg, .metrics = metrics, .lock = &lock, .cache = cache,
                             .partitions = partitions, .ttl = &ttl, .heartbeat_ms = &heartbeat,
                             .fatal = &fatal, .started_ms = T0, .instance = "test:1"};
    ops = ops_http_new(&sources);
    /* user1 paid 5 at T0: state created, TTL started. */
    cache_entry_t *e = state_cache_put(cache, "user1", 5, 0);
    ck_assert_ptr_nonnull(e);
    e->state.prev = e->state.cum = 5 * DECIMAL_SCALE;
    e->state.count = 1;
    e->flags |= CACHE_ENTRY_LOADED;
    ttl_on_write(&ttl, e, T0);
}

static void teardown(void) {
    ops_http_destroy(ops);
    partitions_destroy(partitions);
    state_cache_destroy(cache);
    metrics_destroy(metrics);
    config_destroy(cfg);
    clock_inject(NULL);
}

/* The status of GET /users/user1 at the clock's time; *ttl_left gets
 * ttl_remaining_ms (-1 when null or absent). */
static int query_user1(long long *ttl_left) {
    http_handlers_t h = ops_http_handlers(ops);
    char *body = NULL;
    int status = h.user(h.ctx, "user1", 5, &body);
    ck_assert_ptr_nonnull(body);
    *ttl_left = -1;
    cJSON *json = cJSON_Parse(body);
    ck_assert_ptr_nonnull(json);
    const cJSON *left = cJSON_GetObjectItemCaseSensitive(json, "ttl_remaining_ms");
    if (cJSON_IsNumber(left)) *ttl_left = (long long)left->valuedouble;
    cJSON_Delete(json);
    free(body);
    return status;
}

START_TEST(test_never_return_expired_hides_state_once_its_ttl_passes) {
    long long left;
    start("on_create_and_write", "never_return_expired");
    fake_now_ms = T0 + 10000;
    ck_assert_int_eq(query_user1(&left), 200);
    ck_assert_int_eq(left, TTL_MS - 10000);
    fake_now_ms = T0 + TTL_MS - 1;
    ck_assert_int_eq(query_user1(&left), 200);
    ck_assert_int_eq(left, 1);
    fake_now_ms = T0 + TTL_MS;
    ck_assert_int_eq(query_user1(&left), 404);
}
END_TEST

START_TEST(test_return_expired_if_not_cleaned_up_still_answers) {
    long long left;
    start("on_create_and_write", "return_expired_if_not_cleaned_up");
    fake_now_ms = T0 + TTL_MS + 5000;
    ck_assert_int_eq(query_user1(&left), 200);
}
END_TEST

START_TEST(test_on_read_and_write_a_query_restarts_the_ttl) {
    long long left;
    start("on_read_and_write", "never_return_expired");
    fake_now_ms = T0 + 50000;
    ck_assert_int_eq(query_user1(&left), 200);
    ck_assert_int_eq(left, TTL_MS);
    /* Past the first expiry, alive because the read pushed it out. */
    fake_now_ms = T0 + 50000 + TTL_MS - 1;
    ck_assert_int_eq(query_user1(&left), 200);
    ck_assert_int_eq(left, TTL_MS);
}
END_TEST

START_TEST(test_on_create_and_write_a_query_does_not) {
    long long left;
    start("on_create_and_write", "never_return_expired");
    fake_now_ms = T0 + 50000;
    ck_assert_int_eq(query_user1(&left), 200);
    ck_assert_int_eq(left, TTL_MS - 50000);
    fake_now_ms = T0 + TTL_MS;
    ck_assert_int_eq(query_user1(&left), 404);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops_http");
    TCase *tc = tcase_create("state query TTL");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_never_return_expired_hides_state_once_its_ttl_passes);
    tcase_add_test(tc, test_return_expired_if_not_cleaned_up_still_answers);
    tcase_add_test(tc, test_on_read_and_write_a_query_restarts_the_ttl);
    tcase_add_test(tc, test_on_create_and_write_a_query_does_not);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
