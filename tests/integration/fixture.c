#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

const char *const SEED_KEYS[SEED_COUNT] = {"user1", "user2", "user1", "user2",
                                           "user1", "user2", "user2"};
const char *const SEED_VALUES[SEED_COUNT] = {
    "{\"user_id\":\"user1\",\"amount\":5000}",   "{\"user_id\":\"user2\",\"amount\":2000}",
    "{\"user_id\":\"user1\",\"amount\":7000}",   "{\"user_id\":\"user2\",\"amount\":8000}",
    "{\"user_id\":\"user1\",\"amount\":110000}", "{\"user_id\":\"user2\",\"amount\":3000}",
    "{\"user_id\":\"user2\",\"amount\":120000}"};

redis_server_t redis_srv;
redis_test_cluster_t redis_cluster;
kafka_cluster_t kafka;
redisContext *redis;
static int input_partitions;
static bool clustered;

/* A directory for the instances' logs, and the cluster's URL. */
static void start_cluster(void) {
    redis_test_cluster_start(&redis_cluster);
    snprintf(redis_srv.dir, sizeof(redis_srv.dir), "/tmp/fraud-test-cluster-XXXXXX");
    if (!mkdtemp(redis_srv.dir)) ck_abort_msg("mkdtemp failed");
    redis_srv.port = redis_cluster.nodes[0].port;
    snprintf(redis_srv.url, sizeof(redis_srv.url), "%s", redis_cluster.url);
}

void fixture_start(const fixture_options_t *opts) {
    static const fixture_options_t defaults = {0};
    if (!opts) opts = &defaults;
    input_partitions = opts->input_partitions > 0 ? opts->input_partitions : 3;
    service_forget_all();
    memset(&redis_srv, 0, sizeof(redis_srv));
    if (opts->redis_password)
        snprintf(redis_srv.password, sizeof(redis_srv.password), "%s", opts->redis_password);
    clustered = opts->redis_cluster;
    if (clustered) start_cluster();
    else redis_server_start(&redis_srv, opts->persistent_redis);
    kafka_cluster_start(&kafka, input_partitions);
    for (size_t i = 0; opts->topics && opts->topics[i]; i++) {
        char name[256];
        int partitions = 1;
        const char *colon = strchr(opts->topics[i], ':');
        size_t len = colon ? (size_t)(colon - opts->topics[i]) : strlen(opts->topics[i]);
        snprintf(name, sizeof(name), "%.*s", (int)len, opts->topics[i]);
        if (colon) partitions = atoi(colon + 1);
        kafka_create_topic(&kafka, name, partitions);
    }
    /* A cluster's nodes can be killed: tests read it through the two calls below. */
    redis = clustered ? NULL : redis_server_connect(&redis_srv);
}

redisContext *fixture_redis_for_key(const char *key) {
    if (!clustered) return redis;
    int node = redis_test_cluster_master_of(&redis_cluster,
                                            redis_test_cluster_slot(&redis_cluster, key));
    redisContext *ctx = node >= 0 ? redis_test_cluster_node(&redis_cluster, node) : NULL;
    ck_assert_msg(ctx != NULL, "no live master serves %s", key);
    return ctx;
}

size_t fixture_redis_masters(redisContext **out, size_t max) {
    if (!clustered) {
        out[0] = redis;
        return 1;
    }
    return redis_test_cluster_masters(&redis_cluster, out, max);
}

void fixture_stop(void) {
    for (size_t i = 0; i < service_started_count(); i++) service_kill(service_started_at(i));
    service_forget_all();
    if (redis) redisFree(redis);
    redis = NULL;
    kafka_cluster_stop(&kafka);
    redis_server_stop(&redis_srv); /* with a cluster: only the log directory */
    if (clustered) redis_test_cluster_stop(&redis_cluster);
    clustered = false;
}

void fixture_setup(void) { fixture_start(NULL); }
void fixture_teardown(void) { fixture_stop(); }

void fixture_dump_logs(int lines) {
    for (size_t i = 0; i < service_started_count(); i++) {
        const service_proc_t *svc = service_started_at(i);
        char cmd[1200];
        snprintf(cmd, sizeof(cmd), "echo '--- instance %zu: %s' >&2; tail -n %d '%s' >&2", i,
                 svc->log_path, lines, svc->log_path);
        if (system(cmd) != 0) fprintf(stderr, "(no log at %s)\n", svc->log_path);
    }
}

long long fixture_applied_payments(void) {
    long long sum = 0;
    for (int part = 0; part < input_partitions; part++) {
        char key[64];
        snprintf(key, sizeof(key), "fraud:{payments/%d}:checkpoint", part);
        redisReply *r = redisCommand(fixture_redis_for_key(key), "GET %s", key);
        ck_assert_ptr_nonnull(r);
        if (r->type == REDIS_REPLY_STRING) sum += atoll(r->str);
        freeReplyObject(r);
    }
    return sum;
}

bool fixture_wait_applied(long long payments, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    while (fixture_applied_payments() < payments) {
        if (mono_ms() > deadline) {
            fprintf(stderr, "fixture: %lld of %lld payments applied after %d ms\n",
                    fixture_applied_payments(), payments, timeout_ms);
            fixture_dump_logs(40);
            return false;
        }
        sleep_ms(50);
    }
    return true;
}
