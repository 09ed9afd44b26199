/* store_redis against a real redis-server: the atomic partition step, its
 * checkpoint comparison, the outbox, TTLs and the key layout. */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "state_cache.h"
#include "store_keys.h"
#include "store_redis.h"

static redis_server_t redis_srv;
static redisContext *redis;
static store_t *store;
static state_cache_t *cache;
static char err[512];

static void setup(void) {
    char url[64];
    memset(&redis_srv, 0, sizeof(redis_srv));
    redis_server_start(&redis_srv, false);
    redis = redis_server_connect(&redis_srv);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis_srv.port);
    store_options_t opts = {.url = url, .key_prefix = "fraud:", .topic = "payments",
                            .connect_timeout_ms = 2000, .command_timeout_ms = 5000};
    store = store_new(&opts, err, sizeof(err));
    ck_assert_msg(store != NULL, "%s", err);
    cache = state_cache_new(100);
}

static void teardown(void) {
    store_destroy(store);
    state_cache_destroy(cache);
    redisFree(redis);
    redis_server_stop(&redis_srv);
}

static cache_entry_t *user(const char *name, int partition, long long cum_units, int count) {
    cache_entry_t *e = state_cache_put(cache, name, strlen(name), partition);
    e->state.prev = 1000;
    e->state.cum = cum_units;
    e->state.count = count;
    return e;
}

static char *get(const char *fmt, const char *a, const char *b) {
    redisReply *r = b ? redisCommand(redis, fmt, a, b) : redisCommand(redis, fmt, a);
    ck_assert_ptr_nonnull(r);
    char *out = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return out;
}

static long long integer(const char *fmt, const char *a) {
    redisReply *r = redisCommand(redis, fmt, a);
    ck_assert_ptr_nonnull(r);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

START_TEST(test_step_writes_users_checkpoint_and_outbox_together) {
    cache_entry_t *users[] = {user("alice", 2, 30000, 2), user("bob", 2, 5, 1)};
    store_alert_t alerts[] = {{"payments/2/7/amount_jump", "{\"user_id\":\"alice\"}"}};
    store_step_t step = {.partition = 2, .expected_checkpoint = -1, .next_offset = 8,
                         .users = users, .user_count = 2, .alerts = alerts, .alert_count = 1};
    ck_assert_msg(store_commit_steps(store, &step, 1, 0, err, sizeof(err)) == 0, "%s", err);
    ck_assert(!step.conflict);
    char *cum = get("HGET %s %s", "fraud:{payments/2}:user:alice", "cum");
    ck_assert_str_eq(cum, "3");
    free(cum);
    char *cp = get("GET %s", "fraud:{payments/2}:checkpoint", NULL);
    ck_assert_str_eq(cp, "8");
    free(cp);
    char *json = get("HGET %s %s", "fraud:{payments/2}:outbox", "payments/2/7/amount_jump");
    ck_assert_str_eq(json, "{\"user_id\":\"alice\"}");
    free(json);
    ck_assert_int_eq(integer("PTTL %s", "fraud:{payments/2}:user:bob"), -1);
    int64_t checkpoint;
    ck_assert_int_eq(store_get_checkpoint(store, 2, &checkpoint, err, sizeof(err)), 0);
    ck_assert_int_eq(checkpoint, 8);
    ck_assert_int_eq(store_get_checkpoint(store, 3, &checkpoint, err, sizeof(err)), 0);
    ck_assert_int_eq(checkpoint, -1);
}
END_TEST

START_TEST(test_step_with_a_stale_checkpoint_writes_nothing) {
    cache_entry_t *first[] = {user("carol", 1, 10000, 1)};
    store_step_t step = {.partition = 1, .expected_checkpoint = -1, .next_offset = 5,
                         .users = first, .user_count = 1};
    ck_assert_int_eq(store_commit_steps(store, &step, 1, 0, err, sizeof(err)), 0);

    first[0]->state.cum = 990000; /* a zombie's view, from checkpoint 3 */
    store_step_t zombie = {.partition = 1, .expected_checkpoint = 3, .next_offset = 9,
                           .users = first, .user_count = 1};
    ck_assert_int_eq(store_commit_steps(store, &zombie, 1, 0, err, sizeof(err)), 0);
    ck_assert(zombie.conflict);
    ck_assert_int_eq(zombie.actual_checkpoint, 5);
    char *cum = get("HGET %s %s", "fraud:{payments/1}:user:carol", "cum");
    ck_assert_str_eq(cum, "1");
    free(cum);

    /* The same step sent again after it landed reports its own offset. */
    store_step_t again = {.partition = 1, .expected_checkpoint = -1, .next_offset = 5,
                          .users = first, .user_count = 1};
    ck_assert_int_eq(store_commit_steps(store, &again, 1, 0, err, sizeof(err)), 0);
    ck_assert(again.conflict);
    ck_assert_int_eq(again.actual_checkpoint, again.next_offset);
}
END_TEST

START_TEST(test_steps_set_the_ttl_and_users_load_back_with_it) {
    cache_entry_t *users[] = {user("dave", 0, 70000, 3)};
    store_step_t step = {.partition = 0, .expected_checkpoint = -1, .next_offset = 1,
                         .users = users, .user_count = 1};
    ck_assert_int_eq(store_commit_steps(store, &step, 1, 60000, err, sizeof(err)), 0);
    long long pttl = integer("PTTL %s", "fraud:{payments/0}:user:dave");
    ck_assert(pttl > 59000 && pttl <= 60000);

    state_cache_t *fresh = state_cache_new(10);
    cache_entry_t *e = state_cache_put(fresh, "dave", 4, 0);
    cache_entry_t *missing = state_cache_put(fresh, "nobody", 6, 0);
    cache_entry_t *load[] = {e, missing};
    ck_assert_int_eq(store_load_users(store, load, 2, 1000000, err, sizeof(err)), 0);
    ck_assert_int_eq(e->state.cum, 70000);
    ck_assert_int_eq(e->state.count, 3);
    ck_assert(e->expires_at_ms > 1000000 + 59000 && e->expires_at_ms <= 1000000 + 60000);
    ck_assert_int_eq(missing->state.count, 0);
    ck_assert(missing->flags & CACHE_ENTRY_LOADED);
    state_cache_destroy(fresh);
}
END_TEST

/* The batch's loads and the state query read the hash the same way: the
 * same user, the same "no TTL" (-1), the same verdict on a corrupt hash. */
/* Calls of one command since the last CONFIG RESETSTAT. */
static long long command_calls(const char *command) {
    char *info = get("INFO %s", "commandstats", NULL);
    char needle[64];
    snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", command);
    const char *at = strstr(info, needle);
    long long calls = at ? atoll(at + strlen(needle)) : 0;
    free(info);
    return calls;
}

START_TEST(test_ttl_off_persists_only_keys_that_had_one) {
    /* dave is written with a TTL, then, with the TTL turned off, loaded and
     * written again: his key must lose it. erin never had one: no PERSIST
     * for her (it cost a third of the step at 100,000 users). */
    cache_entry_t *with_ttl[] = {user("dave", 0, 70000, 3)};
    store_step_t first = {.partition = 0, .expected_checkpoint = -1, .next_offset = 1,
                          .users = with_ttl, .user_count = 1};
    ck_assert_int_eq(store_commit_steps(store, &first, 1, 60000, err, sizeof(err)), 0);

    state_cache_t *fresh = state_cache_new(10);
    cache_entry_t *dave = state_cache_put(fresh, "dave", 4, 0);
    cache_entry_t *erin = state_cache_put(fresh, "erin", 4, 0);
    cache_entry_t *load[] = {dave, erin};
    ck_assert_int_eq(store_load_users(store, load, 2, 1000000, err, sizeof(err)), 0);
    erin->state.count = 1;
    freeReplyObject(redisCommand(redis, "CONFIG RESETSTAT"));
    store_step_t second = {.partition = 0, .expected_checkpoint = 1, .next_offset = 2,
                           .users = load, .user_count = 2};
    ck_assert_int_eq(store_commit_steps(store, &second, 1, 0, err, sizeof(err)), 0);
    ck_assert(!second.conflict);
    ck_assert_int_eq(integer("PTTL %s", "fraud:{payments/0}:user:dave"), -1);
    ck_assert_int_eq(integer("PTTL %s", "fraud:{payments/0}:user:erin"), -1);
    ck_assert_int_eq(command_calls("persist"), 1);

    /* Persisted now: the next write sends none. */
    store_step_t third = {.partition = 0, .expected_checkpoint = 2, .next_offset = 3,
                          .users = load, .user_count = 2};
    ck_assert_int_eq(store_commit_steps(store, &third, 1, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(command_calls("persist"), 1);
    state_cache_destroy(fresh);
}
END_TEST

START_TEST(test_loads_and_the_state_query_agree_on_one_hash) {
    cache_entry_t *users[] = {user("erin", 1, 20000, 2)};
    store_step_t step = {.partition = 1, .expected_checkpoint = -1, .next_offset = 1,
                         .users = users, .user_count = 1};
    ck_assert_int_eq(store_commit_steps(store, &step, 1, 0, err, sizeof(err)), 0);
    store_user_view_t view;
    ck_assert_int_eq(store_find_user(store, "erin", 4, 3, &view, err, sizeof(err)), 0);
    ck_assert(view.found);
    ck_assert_int_eq(view.partition, 1);
    ck_assert_int_eq(view.state.cum, 20000);
    ck_assert_int_eq(view.state.count, 2);
    ck_assert_int_eq(view.ttl_ms, -1);

    state_cache_t *fresh = state_cache_new(10);
    cache_entry_t *e = state_cache_put(fresh, "erin", 4, 1);
    cache_entry_t *load[] = {e};
    ck_assert_int_eq(store_load_users(store, load, 1, 5000, err, sizeof(err)), 0);
    ck_assert_int_eq(e->state.count, 2);
    ck_assert_int_eq(e->expires_at_ms, 0);

    /* A hash with no count holds no state for either reader. */
    freeReplyObject(redisCommand(redis, "HSET fraud:{payments/0}:user:frank prev 5"));
    ck_assert_int_eq(store_find_user(store, "frank", 5, 3, &view, err, sizeof(err)), 0);
    ck_assert(!view.found);

    /* A count that is not a whole number is corrupt for both. */
    freeReplyObject(redisCommand(redis, "HSET fraud:{payments/1}:user:erin count 2.5"));
    ck_assert_int_eq(store_find_user(store, "erin", 4, 3, &view, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "corrupt state for user erin"));
    state_cache_clear(fresh);
    cache_entry_t *again = state_cache_put(fresh, "erin", 4, 1);
    cache_entry_t *reload[] = {again};
    ck_assert_int_eq(store_load_users(store, reload, 1, 5000, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "corrupt state for user erin"));
    ck_assert(!(again->flags & CACHE_ENTRY_LOADED));
    state_cache_destroy(fresh);
}
END_TEST

/* Event time keeps the velocity ring sorted and the user's latest event
 * time in "et"; a hash written before either (a ring in processing time,
 * out of order after a clock step back; no "et") loads, sorted, with no
 * event time yet. */
START_TEST(test_a_hash_from_before_event_time_loads_sorted) {
    freeReplyObject(redisCommand(redis, "HSET fraud:{payments/2}:user:gina prev 5 cum 15 count 3 "
                                        "vel 1700000003000,1700000001000,1700000002000"));
    state_cache_t *fresh = state_cache_new(10);
    cache_entry_t *e = state_cache_put(fresh, "gina", 4, 2);
    cache_entry_t *load[] = {e};
    ck_assert_int_eq(store_load_users(store, load, 1, 5000, err, sizeof(err)), 0);
    ck_assert_int_eq(e->state.count, 3);
    ck_assert_int_eq(e->state.event_ms, 0);
    ck_assert_ptr_nonnull(e->state.rules);
    ck_assert_int_eq(e->state.rules->velocity_len, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(e->state.rules->velocity_ms[i], 1700000001000LL + 1000 * i);
    state_cache_destroy(fresh);
}
END_TEST

START_TEST(test_outbox_is_loaded_and_emptied_by_id) {
    store_alert_t alerts[] = {{"payments/4/1/amount_jump", "{\"a\":1}"},
                              {"payments/4/2/amount_jump", "{\"a\":2}"}};
    store_step_t step = {.partition = 4, .expected_checkpoint = -1, .next_offset = 3,
                         .alerts = alerts, .alert_count = 2};
    ck_assert_int_eq(store_commit_steps(store, &step, 1, 0, err, sizeof(err)), 0);
    store_outbox_t outbox;
    ck_assert_int_eq(store_outbox_load(store, 4, &outbox, err, sizeof(err)), 0);
    ck_assert_int_eq(outbox.count, 2);
    store_outbox_free(&outbox);
    step.alert_count = 1;
    ck_assert_int_eq(store_outbox_remove(store, &step, 1, err, sizeof(err)), 0);
    ck_assert_int_eq(store_outbox_load(store, 4, &outbox, err, sizeof(err)), 0);
    ck_assert_int_eq(outbox.count, 1);
    ck_assert_str_eq(outbox.alerts[0].id, "payments/4/2/amount_jump");
    store_outbox_free(&outbox);
}
END_TEST

START_TEST(test_every_key_of_a_step_shares_one_hash_tag) {
    char key[256];
    size_t n = store_user_key("fraud:", "payments", 5, "u:{x}", 5, key, sizeof(key));
    ck_assert_int_eq(n, strlen(key));
    /* Redis Cluster hashes only the first {...}: the partition's tag. */
    ck_assert_str_eq(key, "fraud:{payments/5}:user:u:{x}");
}
END_TEST

START_TEST(test_a_restarted_redis_gets_the_script_again) {
    redisReply *r = redisCommand(redis, "SCRIPT FLUSH");
    freeReplyObject(r);
    cache_entry_t *users[] = {user("erin", 3, 1, 1)};
    store_step_t step = {.partition = 3, .expected_checkpoint = -1, .next_offset = 1,
                         .users = users, .user_count = 1};
    uint64_t errors = store_errors_total(store);
    /* NOSCRIPT: the step is sent again on a new connection, which loads the
     * script first, within the same call. */
    ck_assert_int_eq(store_commit_steps(store, &step, 1, 0, err, sizeof(err)), 0);
    ck_assert(!step.conflict);
    ck_assert_uint_eq(store_errors_total(store), errors + 1); /* the dropped connection */
    char *cp = redis_hget(redis, "fraud:{payments/3}:user:erin", "count");
    ck_assert_str_eq(cp, "1");
    free(cp);
}
END_TEST

int main(void) {
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_step_writes_users_checkpoint_and_outbox_together);
    tcase_add_test(tc, test_step_with_a_stale_checkpoint_writes_nothing);
    tcase_add_test(tc, test_steps_set_the_ttl_and_users_load_back_with_it);
    tcase_add_test(tc, test_ttl_off_persists_only_keys_that_had_one);
    tcase_add_test(tc, test_outbox_is_loaded_and_emptied_by_id);
    tcase_add_test(tc, test_every_key_of_a_step_shares_one_hash_tag);
    tcase_add_test(tc, test_a_restarted_redis_gets_the_script_again);
    tcase_add_test(tc, test_loads_and_the_state_query_agree_on_one_hash);
    tcase_add_test(tc, test_a_hash_from_before_event_time_loads_sorted);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_NOFORK, CK_VERBOSE);
}
