#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

redis_server_t redis_srv;
kafka_cluster_t kafka;
redisContext *redis;
static int input_partitions;

void fixture_start(const fixture_options_t *opts) {
    static const fixture_options_t defaults = {0};
    if (!opts) opts = &defaults;
    input_partitions = opts->input_partitions > 0 ? opts->input_partitions : 3;
    service_forget_all();
    memset(&redis_srv, 0, sizeof(redis_srv));
    if (opts->redis_password)
        snprintf(redis_srv.password, sizeof(redis_srv.password), "%s", opts->redis_password);
    redis_server_start(&redis_srv, opts->persistent_redis);
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
    redis = redis_server_connect(&redis_srv);
}

void fixture_stop(void) {
    for (size_t i = 0; i < service_started_count(); i++) service_kill(service_started_at(i));
    service_forget_all();
    if (redis) redisFree(redis);
    redis = NULL;
    kafka_cluster_stop(&kafka);
    redis_server_stop(&redis_srv);
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
        redisReply *r = redisCommand(redis, "GET fraud:{payments/%d}:checkpoint", part);
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
