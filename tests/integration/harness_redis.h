/* harness_redis: redis-server on a free port of 127.0.0.1, in a temporary
 * directory, and the reads a test makes of the service's state there. */
#ifndef FRAUD_TEST_HARNESS_REDIS_H
#define FRAUD_TEST_HARNESS_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <hiredis.h>

typedef struct redis_server {
    pid_t pid;
    int port;
    char dir[256];
    bool persistent;       /* AOF with fsync always */
    char password[64];     /* requirepass when not empty */
    bool cluster;          /* cluster-enabled yes */
    char url[400];         /* what the service is given; empty: redis://127.0.0.1:<port> */
} redis_server_t;

/* Starts redis-server and waits until it answers PING. Set srv->password
 * before the call for a server that requires AUTH. */
void redis_server_start(redis_server_t *srv, bool persistent);
void redis_server_stop(redis_server_t *srv);
/* Stops the process but keeps its directory (and AOF), then starts it again
 * on the same port: an outage that loses nothing acknowledged. */
void redis_server_halt(redis_server_t *srv);
void redis_server_resume(redis_server_t *srv);
redisContext *redis_server_connect(const redis_server_t *srv);

/* A Redis Cluster of real redis-servers on loopback, each in its own
 * temporary directory: three masters with a replica each, made by
 * `redis-cli --cluster create`. The test's own reads go to the node that
 * the cluster itself names (CLUSTER KEYSLOT, CLUSTER SLOTS), never through
 * the service's slot function, which they check. */
#define TEST_CLUSTER_NODES 6

typedef struct redis_test_cluster {
    redis_server_t nodes[TEST_CLUSTER_NODES];
    redisContext *ctx[TEST_CLUSTER_NODES]; /* opened on demand */
    char url[400];                         /* redis-cluster:// with three seeds */
} redis_test_cluster_t;

void redis_test_cluster_start(redis_test_cluster_t *c);
void redis_test_cluster_stop(redis_test_cluster_t *c);
/* The test's connection to node i (NULL when it is down). */
redisContext *redis_test_cluster_node(redis_test_cluster_t *c, int i);
int redis_test_cluster_slot(redis_test_cluster_t *c, const char *key);
/* The node index of the master serving slot, and of that master's replica
 * (-1 when none). */
int redis_test_cluster_master_of(redis_test_cluster_t *c, int slot);
int redis_test_cluster_replica_of(redis_test_cluster_t *c, int master);
/* CLUSTER MYID of node i. */
void redis_test_cluster_node_id(redis_test_cluster_t *c, int i, char *out, size_t size);
/* Connections to every master, in out[]; their number. */
size_t redis_test_cluster_masters(redis_test_cluster_t *c, redisContext **out, size_t max);
/* Waits until every live node says cluster_state:ok and they agree on the
 * map; false after timeout_ms. */
bool redis_test_cluster_wait_ok(redis_test_cluster_t *c, int timeout_ms);
/* `redis-cli --cluster reshard` of the fewest slots that include `slot`
 * (it moves a source's slots from its lowest up) to node `to`. Its exit
 * status; the tool's output goes to the node's directory. */
int redis_test_cluster_reshard(redis_test_cluster_t *c, int slot, int to);
/* How many slots that reshard moves. */
long long redis_test_cluster_reshard_cost(redis_test_cluster_t *c, int slot);
/* CLUSTER FAILOVER on a replica: it becomes the master of its slots. */
void redis_test_cluster_failover(redis_test_cluster_t *c, int replica);
/* SIGKILL of a node; its replica takes over after cluster-node-timeout. */
void redis_test_cluster_kill(redis_test_cluster_t *c, int node);

/* Waits until the HASH field of a user reaches `want`. True when it did. */
bool wait_for_user_field(redisContext *c, const char *user, const char *field,
                         const char *want, int timeout_ms);

/* The key holding a user's state, fraud:{<topic>/<partition>}:user:<id>,
 * found with KEYS (tests only). False when the user has none. */
bool redis_find_user_key(redisContext *c, const char *user, char *key, size_t key_size);

/* HGET as a malloc'd string (NULL when absent); caller frees. */
char *redis_hget(redisContext *c, const char *key, const char *field);

#endif
