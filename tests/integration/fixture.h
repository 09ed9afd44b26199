/* fixture: what every integration suite shares, so none copies it: one
 * redis-server, one Kafka, a connection to Redis for the test's own reads,
 * every service instance the test starts (killed at teardown), their logs
 * shown when a check fails, and waiting until N payments are applied. */
#ifndef FRAUD_TEST_FIXTURE_H
#define FRAUD_TEST_FIXTURE_H

#include <stdbool.h>

#include "harness.h"

typedef struct fixture_options {
    int input_partitions;      /* 0: 3 */
    bool persistent_redis;     /* AOF with fsync always */
    const char *redis_password; /* NULL: none */
    const char *const *topics; /* NULL-terminated "name:partitions" to create too */
    bool redis_cluster;        /* six nodes instead of one redis-server */
} fixture_options_t;

/* The seed (README): 7 payments of user1 and user2, two alerts, totals
 * 122000 (3 payments) and 133000 (4). */
#define SEED_COUNT 7
extern const char *const SEED_KEYS[SEED_COUNT];
extern const char *const SEED_VALUES[SEED_COUNT];

/* The servers of the running test. With redis_cluster, redis_srv names the
 * cluster (its url) and a directory for the instances' logs, and `redis`
 * is NULL: read through fixture_redis_for_key() and fixture_redis_masters(). */
extern redis_server_t redis_srv;
extern redis_test_cluster_t redis_cluster;
extern kafka_cluster_t kafka;
extern redisContext *redis;

/* Starts Redis and Kafka with the service's topics (NULL: defaults). */
void fixture_start(const fixture_options_t *opts);

/* The connection that serves key: `redis`, or the master of its slot. */
redisContext *fixture_redis_for_key(const char *key);

/* Connections to every master (one without a cluster); their number. */
size_t fixture_redis_masters(redisContext **out, size_t max);

/* SIGKILLs every service instance still running, then stops the servers. */
void fixture_stop(void);

/* For tcase_add_checked_fixture(): the defaults, and fixture_stop(). */
void fixture_setup(void);
void fixture_teardown(void);

/* The last `lines` lines of each instance's log, on stderr. */
void fixture_dump_logs(int lines);

/* Payments applied so far: the sum of the input partitions' checkpoints. */
long long fixture_applied_payments(void);

/* Waits until at least `payments` are applied; dumps the logs if not. */
bool fixture_wait_applied(long long payments, int timeout_ms);

#endif
