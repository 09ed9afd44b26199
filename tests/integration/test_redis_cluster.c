/* The service on a real Redis Cluster (three masters, three replicas):
 * its slot function against Redis's own, the seed and /users/{id}, a
 * random stream against the reference, SIGKILLs of the service, a slot
 * migrated mid-stream, a manual failover and a killed master (case
 * "cluster"); and three instances joining and leaving over 300,000
 * payments on 12 partitions (case "scale", run on the real broker). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "check_main.h"
#include "fixture.h"
#include "redis_cluster.h"
#include "reference_stream.h"
#include "state_cache.h"
#include "store_redis.h"

#define PARTITIONS 6

static service_proc_t svc;
static int http_port;
static char listen_setting[64];
static char body[65536];
static const char *FAST_GROUP[] = {"kafka.consumer.session.timeout.ms=3000", NULL};

static void setup(void) {
    fixture_options_t opts = {.input_partitions = PARTITIONS, .redis_cluster = true};
    fixture_start(&opts);
    http_port = harness_free_port();
    snprintf(listen_setting, sizeof(listen_setting), "http.listen=127.0.0.1:%d", http_port);
}

static int partition_slot(int partition) {
    char key[64];
    snprintf(key, sizeof(key), "fraud:{payments/%d}:checkpoint", partition);
    return redis_test_cluster_slot(&redis_cluster, key);
}

/* How many masters the input partitions spread over. */
static int masters_in_use(void) {
    int used[TEST_CLUSTER_NODES] = {0}, n = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        int m = redis_test_cluster_master_of(&redis_cluster, partition_slot(p));
        ck_assert_int_ge(m, 0);
        n += !used[m]++;
    }
    return n;
}

static size_t count_log_lines(const service_proc_t *s, const char *needle) {
    char line[4096];
    size_t n = 0;
    FILE *f = fopen(s->log_path, "r");
    while (f && fgets(line, sizeof(line), f)) n += strstr(line, needle) != NULL;
    if (f) fclose(f);
    return n;
}

START_TEST(test_slot_function_agrees_with_redis) {
    /* Redis's own test vectors are in the unit test; here the server itself
     * judges 2,000 keys with and without tags. */
    const char alphabet[] = "ab{}:/01_x{}";
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    redisContext *node = redis_test_cluster_node(&redis_cluster, 0);
    char keys[2000][24];
    for (int k = 0; k < 2000; k++) {
        size_t len = 1 + k % 20;
        for (size_t i = 0; i < len; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            keys[k][i] = alphabet[rng % (sizeof(alphabet) - 1)];
        }
        keys[k][len] = '\0';
        redisAppendCommand(node, "CLUSTER KEYSLOT %s", keys[k]);
    }
    for (int k = 0; k < 2000; k++) {
        redisReply *r = NULL;
        ck_assert_int_eq(redisGetReply(node, (void **)&r), REDIS_OK);
        ck_assert_msg(r->integer == redis_key_slot(keys[k], strlen(keys[k])),
                      "slot of \"%s\": redis %lld, ours %u", keys[k], r->integer,
                      redis_key_slot(keys[k], strlen(keys[k])));
        freeReplyObject(r);
    }
}
END_TEST


static void start_with_http(void) {
    const char *extra[] = {listen_setting, NULL};
    service_start(&svc, &kafka, &redis_srv, extra);
    int64_t deadline = mono_ms() + 30000;
    while (http_get(http_port, "/healthz", body, sizeof(body)) != 200 && mono_ms() < deadline)
        sleep_ms(50);
}

/* ---- the store through a slot migration done by hand --------------------- */

typedef struct step_thread {
    store_t *store;
    store_step_t step;
    int rc;
    char err[512];
} step_thread_t;

static void *commit_in_thread(void *arg) {
    step_thread_t *t = arg;
    t->rc = store_commit_steps(t->store, &t->step, 1, 0, t->err, sizeof(t->err));
    return NULL;
}

static void node_command(int node, const char *cmd) {
    redisReply *r = redisCommand(redis_test_cluster_node(&redis_cluster, node), cmd);
    ck_assert_msg(r && r->type != REDIS_REPLY_ERROR, "node %d: %s: %s", node, cmd,
                  r ? r->str : "no reply");
    freeReplyObject(r);
}

/* A slot migrated step by step (CLUSTER SETSLOT, MIGRATE), so that each
 * redirection happens for certain: ASK for a key that already moved,
 * TRYAGAIN for a step whose keys the migration splits (it waits), MOVED
 * once the slot is the target's. */
START_TEST(test_store_follows_ask_tryagain_and_moved) {
    char err[512], cmd[512], src_id[64], dst_id[64];
    store_options_t opts = {.url = redis_cluster.url, .key_prefix = "fraud:",
                            .topic = "payments", .connect_timeout_ms = 2000,
                            .command_timeout_ms = 10000};
    store_t *store = store_new(&opts, err, sizeof(err));
    ck_assert_msg(store != NULL, "%s", err);
    state_cache_t *cache = state_cache_new(16);
    cache_entry_t *users[2] = {state_cache_put(cache, "ann", 3, 0),
                               state_cache_put(cache, "bob", 3, 0)};
    for (int i = 0; i < 2; i++) users[i]->state.cum = users[i]->state.count = 1;
    store_step_t step = {.partition = 0, .expected_checkpoint = -1, .next_offset = 10,
                         .users = users, .user_count = 2};
    ck_assert_int_eq(store_commit_steps(store, &step, 1, 0, err, sizeof(err)), 0);
    ck_assert(!step.conflict);

    int slot = partition_slot(0), src = redis_test_cluster_master_of(&redis_cluster, slot), dst;
    for (dst = 0; dst < TEST_CLUSTER_NODES; dst++)
        if (dst != src && redis_test_cluster_replica_of(&redis_cluster, dst) >= 0) break;
    redis_test_cluster_node_id(&redis_cluster, src, src_id, sizeof(src_id));
    redis_test_cluster_node_id(&redis_cluster, dst, dst_id, sizeof(dst_id));
    snprintf(cmd, sizeof(cmd), "CLUSTER SETSLOT %d IMPORTING %s", slot, src_id);
    node_command(dst, cmd);
    snprintf(cmd, sizeof(cmd), "CLUSTER SETSLOT %d MIGRATING %s", slot, dst_id);
    node_command(src, cmd);
    snprintf(cmd, sizeof(cmd), "MIGRATE 127.0.0.1 %d fraud:{payments/0}:user:ann 0 5000",
             redis_cluster.nodes[dst].port);
    node_command(src, cmd);

    /* ASK: ann is on the target now, bob still on the source. */
    state_cache_t *fresh = state_cache_new(16);
    cache_entry_t *loads[2] = {state_cache_put(fresh, "ann", 3, 0),
                               state_cache_put(fresh, "bob", 3, 0)};
    ck_assert_int_eq(store_load_users(store, loads, 2, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(loads[0]->state.count, 1);
    ck_assert_int_eq(loads[1]->state.count, 1);

    /* TRYAGAIN: the step's keys are on both sides until the rest moves. */
    for (int i = 0; i < 2; i++) users[i]->state.count = 2;
    step_thread_t t = {.store = store,
                       .step = {.partition = 0, .expected_checkpoint = 10, .next_offset = 20,
                                .users = users, .user_count = 2}};
    pthread_t thread;
    int64_t started = mono_ms();
    ck_assert_int_eq(pthread_create(&thread, NULL, commit_in_thread, &t), 0);
    sleep_ms(500);
    redisReply *keys = redisCommand(redis_test_cluster_node(&redis_cluster, src),
                                    "CLUSTER GETKEYSINSLOT %d 100", slot);
    ck_assert(keys && keys->type == REDIS_REPLY_ARRAY);
    for (size_t k = 0; k < keys->elements; k++) {
        snprintf(cmd, sizeof(cmd), "MIGRATE 127.0.0.1 %d %s 0 5000",
                 redis_cluster.nodes[dst].port, keys->element[k]->str);
        node_command(src, cmd);
    }
    freeReplyObject(keys);
    /* MOVED: the slot is the target's. */
    snprintf(cmd, sizeof(cmd), "CLUSTER SETSLOT %d NODE %s", slot, dst_id);
    node_command(dst, cmd);
    node_command(src, cmd);
    pthread_join(thread, NULL);
    ck_assert_msg(t.rc == 0, "%s", t.err);
    ck_assert(!t.step.conflict);
    ck_assert_int_ge(mono_ms() - started, 500); /* it waited for the migration */
    ck_assert_int_eq(redis_test_cluster_master_of(&redis_cluster, slot), dst);
    redisContext *target = redis_test_cluster_node(&redis_cluster, dst);
    redisReply *r = redisCommand(target, "HGET fraud:{payments/0}:user:ann count");
    ck_assert_str_eq(r->str, "2");
    freeReplyObject(r);
    r = redisCommand(target, "GET fraud:{payments/0}:checkpoint");
    ck_assert_str_eq(r->str, "20");
    freeReplyObject(r);
    int64_t checkpoint = -1;
    ck_assert_int_eq(store_get_checkpoint(store, 0, &checkpoint, err, sizeof(err)), 0);
    ck_assert_int_eq(checkpoint, 20);
    ck_assert_uint_ge(store_redirects_total(store), 2); /* ASK, then MOVED at least */
    ck_assert_uint_ge(store_map_reads_total(store), 2);
    state_cache_destroy(fresh);
    state_cache_destroy(cache);
    store_destroy(store);
}
END_TEST

START_TEST(test_seed_and_user_queries_through_the_cluster) {
    ck_assert_int_ge(masters_in_use(), 2); /* the partitions really spread */
    start_with_http();
    ck_assert(service_wait_log(&svc, "assigned", 60000));
    kafka_produce(&kafka, "payments", SEED_KEYS, SEED_VALUES, SEED_COUNT);
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", 2, 30000);
    ck_assert_int_eq(alerts.count, 2);
    ck_assert_ptr_nonnull(strstr(alerts.items[0].value, "\"amount\":1"));
    record_list_free(&alerts);
    ck_assert(fixture_wait_applied(7, 30000));
    ck_assert_int_eq(service_stop(&svc), 0);
    /* A new instance has nothing cached: /users/{id} reads the cluster. */
    start_with_http();
    ck_assert_int_eq(http_get(http_port, "/users/user1", body, sizeof(body)), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"previous_amount\":110000,"));
    ck_assert_ptr_nonnull(strstr(body, "\"cumulative_amount\":122000,"));
    ck_assert_ptr_nonnull(strstr(body, "\"event_count\":3,"));
    ck_assert_int_eq(http_get(http_port, "/users/user2", body, sizeof(body)), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"cumulative_amount\":133000,"));
    ck_assert_ptr_nonnull(strstr(body, "\"event_count\":4,"));
    ck_assert_int_eq(http_get(http_port, "/users/nobody", body, sizeof(body)), 404);
    /* The consumer's store read the map at start; /metrics shows it once
     * the partitions are assigned. */
    const char *reads = NULL;
    int64_t until = mono_ms() + 30000;
    do {
        ck_assert_int_eq(http_get(http_port, "/metrics", body, sizeof(body)), 200);
        reads = strstr(body, "\nfraud_redis_slot_map_reads_total ");
        if (reads && atoll(reads + 34) >= 1) break;
        sleep_ms(100);
    } while (mono_ms() < until);
    ck_assert_msg(reads && atoll(reads + 34) >= 1, "no slot map read in /metrics");
    int64_t deadline = mono_ms() + 30000;
    while (http_get(http_port, "/readyz", body, sizeof(body)) != 200 && mono_ms() < deadline)
        sleep_ms(100);
    ck_assert_msg(strstr(body, "\"ready\":true"), "/readyz: %s", body);
    ck_assert_int_eq(service_stop(&svc), 0);
}
END_TEST

START_TEST(test_random_stream_matches_the_reference) {
    stream_t s;
    stream_make(&s, 30000, 800, 20, 21);
    service_start(&svc, &kafka, &redis_srv, NULL);
    kafka_produce(&kafka, "payments", s.keys, s.values, s.events);
    size_t duplicates = 0;
    stream_assert_outcome(&s, 120000, &duplicates);
    ck_assert_int_eq(duplicates, 0);
    ck_assert_int_eq(service_stop(&svc), 0);
    stream_free(&s);
}
END_TEST

START_TEST(test_sigkill_at_random_points_changes_each_user_exactly_once) {
    stream_t s;
    const int kills = 4;
    stream_make(&s, 50000, 1000, 20, 22);
    size_t chunk = s.events / (kills + 1);
    uint64_t rng = (uint64_t)time(NULL) | 1;
    fprintf(stderr, "cluster sigkill test: seed %llu\n", (unsigned long long)rng);
    int mid_stream = 0;
    for (int k = 0; k < kills; k++) {
        service_start(&svc, &kafka, &redis_srv, FAST_GROUP);
        ck_assert(service_wait_log(&svc, "assigned", 60000));
        kafka_produce(&kafka, "payments", s.keys + k * chunk, s.values + k * chunk, chunk);
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        sleep_ms((int)(rng % 250));
        service_kill(&svc);
        long long applied = fixture_applied_payments();
        fprintf(stderr, "kill %d: %lld of %zu payments applied\n", k + 1, applied,
                (k + 1) * chunk);
        mid_stream += applied < (long long)((k + 1) * chunk);
    }
    ck_assert_int_ge(mid_stream, 1);
    service_start(&svc, &kafka, &redis_srv, FAST_GROUP);
    kafka_produce(&kafka, "payments", s.keys + kills * chunk, s.values + kills * chunk,
                  s.events - kills * chunk);
    size_t duplicates = 0;
    stream_assert_outcome(&s, 180000, &duplicates);
    fprintf(stderr, "cluster sigkill test: %zu alerts, %zu redelivered\n", s.alert_count,
            duplicates);
    ck_assert_int_eq(service_stop(&svc), 0);
    stream_free(&s);
}
END_TEST

static void kill_master(void);

/* The rest of a stream, produced in paced chunks while the test disturbs
 * the cluster, so that the service keeps writing through the disturbance. */
typedef struct paced {
    const stream_t *s;
    size_t from;
} paced_t;

static void *produce_paced(void *arg) {
    const paced_t *p = arg;
    const size_t chunks = 40;
    size_t per = (p->s->events - p->from + chunks - 1) / chunks;
    for (size_t at = p->from; at < p->s->events; at += per) {
        size_t n = at + per > p->s->events ? p->s->events - at : per;
        kafka_produce(&kafka, "payments", p->s->keys + at, p->s->values + at, n);
        sleep_ms(200);
    }
    return NULL;
}

/* A quarter of the stream, then `disturb` while the rest is produced over
 * about 8 s and applied. */
static void stream_across(void (*disturb)(void), int totals_timeout_ms, size_t *duplicates) {
    stream_t s;
    stream_make(&s, 40000, 1000, 20, 23);
    s.redecided_ok = disturb == kill_master; /* a killed master may lose its last steps */
    size_t quarter = s.events / 4;
    service_start(&svc, &kafka, &redis_srv, NULL);
    kafka_produce(&kafka, "payments", s.keys, s.values, quarter);
    ck_assert(fixture_wait_applied((long long)quarter, 60000));
    paced_t rest = {&s, quarter};
    pthread_t producer;
    ck_assert_int_eq(pthread_create(&producer, NULL, produce_paced, &rest), 0);
    disturb();
    pthread_join(producer, NULL);
    stream_assert_outcome(&s, totals_timeout_ms, duplicates);
    ck_assert_int_eq(service_stop(&svc), 0);
    stream_free(&s);
}

/* The partition whose slot redis-cli moves with the fewest others. */
static int resharded_slot, reshard_target;

static void reshard(void) {
    long long fewest = -1;
    for (int p = 0; p < PARTITIONS; p++) {
        long long cost = redis_test_cluster_reshard_cost(&redis_cluster, partition_slot(p));
        if (fewest < 0 || cost < fewest) fewest = cost, resharded_slot = partition_slot(p);
    }
    int from = redis_test_cluster_master_of(&redis_cluster, resharded_slot);
    for (reshard_target = 0; reshard_target < TEST_CLUSTER_NODES; reshard_target++)
        if (reshard_target != from &&
            redis_test_cluster_replica_of(&redis_cluster, reshard_target) >= 0)
            break; /* another master: it has a replica */
    ck_assert_int_lt(reshard_target, TEST_CLUSTER_NODES);
    ck_assert_int_eq(redis_test_cluster_reshard(&redis_cluster, resharded_slot, reshard_target),
                     0);
}

START_TEST(test_slot_migrated_mid_stream_loses_and_doubles_nothing) {
    size_t duplicates = 0;
    stream_across(reshard, 180000, &duplicates);
    ck_assert_int_eq(redis_test_cluster_master_of(&redis_cluster, resharded_slot), reshard_target);
    ck_assert_int_eq(duplicates, 0);
    ck_assert_uint_ge(count_log_lines(&svc, "slot map"), 1); /* it followed the move */
}
END_TEST

static int failed_over;

static void manual_failover(void) {
    int master = redis_test_cluster_master_of(&redis_cluster, partition_slot(0));
    failed_over = redis_test_cluster_replica_of(&redis_cluster, master);
    ck_assert_int_ge(failed_over, 0);
    redis_test_cluster_failover(&redis_cluster, failed_over);
}

START_TEST(test_manual_failover_mid_stream_loses_and_doubles_nothing) {
    size_t duplicates = 0;
    stream_across(manual_failover, 180000, &duplicates);
    ck_assert_int_eq(redis_test_cluster_master_of(&redis_cluster, partition_slot(0)), failed_over);
    ck_assert_int_eq(duplicates, 0);
}
END_TEST

static void kill_master(void) {
    int master = redis_test_cluster_master_of(&redis_cluster, partition_slot(0));
    failed_over = redis_test_cluster_replica_of(&redis_cluster, master);
    ck_assert_int_ge(failed_over, 0);
    redis_test_cluster_kill(&redis_cluster, master);
    ck_assert(redis_test_cluster_wait_ok(&redis_cluster, 60000));
}

/* What Redis acknowledged but had not yet copied to the replica is lost with
 * the master; the checkpoint goes back with it, in the same step, so the
 * service reads those payments again from Kafka: totals stay exact, and an
 * alert may be decided twice (same alert_id), never not at all. */
START_TEST(test_killed_master_loses_nothing_the_totals_show) {
    size_t duplicates = 0;
    stream_across(kill_master, 240000, &duplicates);
    ck_assert_int_eq(redis_test_cluster_master_of(&redis_cluster, partition_slot(0)), failed_over);
    fprintf(stderr, "killed master: %zu alerts redelivered\n", duplicates);
}
END_TEST

/* ---- scale-out: three instances, twelve partitions ------------------------ */

#define SCALE_PARTITIONS 12

static void scale_setup(void) {
    fixture_options_t opts = {.input_partitions = SCALE_PARTITIONS, .redis_cluster = true};
    fixture_start(&opts);
}

static service_proc_t inst[4];

/* Joins and leaves while 300,000 payments of 5,000 users go through: B
 * and C join one after the other, A leaves with SIGTERM, B is SIGKILLed and
 * D takes its place. Totals exact, every alert present. */
START_TEST(test_three_instances_join_and_leave_on_a_cluster) {
    stream_t s;
    stream_make(&s, 300000, 5000, 20, 31);
    size_t quarter = s.events / 4;
    service_start(&inst[0], &kafka, &redis_srv, FAST_GROUP);
    ck_assert(service_wait_log(&inst[0], "assigned", 60000));
    kafka_produce(&kafka, "payments", s.keys, s.values, quarter);
    service_start(&inst[1], &kafka, &redis_srv, FAST_GROUP);
    ck_assert(service_wait_log(&inst[1], "assigned", 60000));
    service_start(&inst[2], &kafka, &redis_srv, FAST_GROUP);
    kafka_produce(&kafka, "payments", s.keys + quarter, s.values + quarter, quarter);
    ck_assert(service_wait_log(&inst[2], "assigned", 60000));
    fprintf(stderr, "scale: 3 instances, %lld of %zu applied\n", fixture_applied_payments(),
            2 * quarter);
    ck_assert_int_eq(service_stop(&inst[0]), 0); /* SIGTERM: a clean leave */
    kafka_produce(&kafka, "payments", s.keys + 2 * quarter, s.values + 2 * quarter, quarter);
    sleep_ms(300);
    service_kill(&inst[1]); /* mid-stream */
    fprintf(stderr, "scale: B killed, %lld of %zu applied\n", fixture_applied_payments(),
            3 * quarter);
    service_start(&inst[3], &kafka, &redis_srv, FAST_GROUP);
    kafka_produce(&kafka, "payments", s.keys + 3 * quarter, s.values + 3 * quarter,
                  s.events - 3 * quarter);
    size_t duplicates = 0;
    stream_assert_outcome(&s, 300000, &duplicates);
    fprintf(stderr, "scale: %zu payments on %d partitions, %zu alerts, %zu redelivered\n",
            s.events, SCALE_PARTITIONS, s.alert_count, duplicates);
    ck_assert_int_eq(service_stop(&inst[2]), 0);
    ck_assert_int_eq(service_stop(&inst[3]), 0);
    stream_free(&s);
}
END_TEST

int main(void) {
    Suite *s = suite_create("redis_cluster");
    TCase *tc = tcase_create("cluster");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, fixture_teardown);
    tcase_add_test(tc, test_slot_function_agrees_with_redis);
    tcase_add_test(tc, test_seed_and_user_queries_through_the_cluster);
    tcase_add_test(tc, test_random_stream_matches_the_reference);
    tcase_add_test(tc, test_sigkill_at_random_points_changes_each_user_exactly_once);
    tcase_add_test(tc, test_slot_migrated_mid_stream_loses_and_doubles_nothing);
    tcase_add_test(tc, test_manual_failover_mid_stream_loses_and_doubles_nothing);
    tcase_add_test(tc, test_killed_master_loses_nothing_the_totals_show);
    suite_add_tcase(s, tc);
    TCase *store = tcase_create("store");
    tcase_set_timeout(store, 120);
    tcase_add_checked_fixture(store, setup, fixture_teardown);
    tcase_add_test(store, test_store_follows_ask_tryagain_and_moved);
    suite_add_tcase(s, store);
    /* Tagged: only ctest real_kafka_cluster_scale runs it, on the real broker. */
    TCase *scale = tcase_create("scale");
    tcase_set_tags(scale, "scale");
    tcase_set_timeout(scale, 1200);
    tcase_add_checked_fixture(scale, scale_setup, fixture_teardown);
    tcase_add_test(scale, test_three_instances_join_and_leave_on_a_cluster);
    suite_add_tcase(s, scale);
    return run_suite(s, CK_NOFORK, CK_VERBOSE);
}
