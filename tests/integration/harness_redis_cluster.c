/* harness_redis_cluster: a real Redis Cluster of six redis-servers, and
 * what a test does to it (reshard, failover, kill). */
#include "harness.h"
#include "harness_private.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void node_close(redis_test_cluster_t *c, int i) {
    if (c->ctx[i]) redisFree(c->ctx[i]);
    c->ctx[i] = NULL;
}

redisContext *redis_test_cluster_node(redis_test_cluster_t *c, int i) {
    if (c->nodes[i].pid <= 0) return NULL;
    if (c->ctx[i] && c->ctx[i]->err) node_close(c, i);
    if (!c->ctx[i]) {
        struct timeval tv = {.tv_sec = 5};
        c->ctx[i] = redisConnectWithTimeout("127.0.0.1", c->nodes[i].port, tv);
        if (!c->ctx[i] || c->ctx[i]->err) {
            node_close(c, i);
            return NULL;
        }
        redisSetTimeout(c->ctx[i], tv);
    }
    return c->ctx[i];
}

static redisReply *any_node_command(redis_test_cluster_t *c, const char *cmd) {
    for (int i = 0; i < TEST_CLUSTER_NODES; i++) {
        redisContext *ctx = redis_test_cluster_node(c, i);
        redisReply *r = ctx ? redisCommand(ctx, cmd) : NULL;
        if (r && r->type != REDIS_REPLY_ERROR) return r;
        if (r) freeReplyObject(r);
    }
    DIE("no cluster node answered %s", cmd);
}

static int node_by_port(const redis_test_cluster_t *c, long long port) {
    for (int i = 0; i < TEST_CLUSTER_NODES; i++)
        if (c->nodes[i].port == port) return i;
    return -1;
}

void redis_test_cluster_start(redis_test_cluster_t *c) {
    memset(c, 0, sizeof(*c));
    char cmd[2048] = "redis-cli --cluster create";
    for (int i = 0; i < TEST_CLUSTER_NODES; i++) {
        c->nodes[i].cluster = true;
        redis_server_start(&c->nodes[i], false);
        size_t len = strlen(cmd);
        snprintf(cmd + len, sizeof(cmd) - len, " 127.0.0.1:%d", c->nodes[i].port);
    }
    size_t len = strlen(cmd);
    snprintf(cmd + len, sizeof(cmd) - len,
             " --cluster-replicas 1 --cluster-yes > '%s/create.log' 2>&1", c->nodes[0].dir);
    if (system(cmd) != 0) DIE("redis-cli --cluster create failed (see %s/create.log)",
                              c->nodes[0].dir);
    snprintf(c->url, sizeof(c->url), "redis-cluster://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
             c->nodes[0].port, c->nodes[1].port, c->nodes[2].port);
    if (!redis_test_cluster_wait_ok(c, 30000)) DIE("the cluster did not come up");
    /* Every node knows every master's replica, and the replicas hold a copy,
     * before the test starts. */
    int64_t deadline = mono_ms() + 30000;
    for (int i = 0; i < TEST_CLUSTER_NODES; i++) {
        for (;;) {
            redisReply *r = redisCommand(redis_test_cluster_node(c, i), "CLUSTER SLOTS");
            bool all = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0;
            for (size_t e = 0; all && e < r->elements; e++) all = r->element[e]->elements > 3;
            if (r) freeReplyObject(r);
            if (all) break;
            if (mono_ms() > deadline) DIE("node %d does not list every replica", i);
            sleep_ms(100);
        }
    }
    for (int i = 0; i < TEST_CLUSTER_NODES; i++) {
        for (;;) {
            redisReply *r = redisCommand(redis_test_cluster_node(c, i), "INFO replication");
            bool ready = r && r->type == REDIS_REPLY_STRING &&
                         (strstr(r->str, "role:master") ||
                          strstr(r->str, "master_link_status:up"));
            if (r) freeReplyObject(r);
            if (ready) break;
            if (mono_ms() > deadline) DIE("replica %d did not sync", i);
            sleep_ms(100);
        }
    }
}

void redis_test_cluster_stop(redis_test_cluster_t *c) {
    for (int i = 0; i < TEST_CLUSTER_NODES; i++) {
        node_close(c, i);
        redis_server_stop(&c->nodes[i]);
    }
}

int redis_test_cluster_slot(redis_test_cluster_t *c, const char *key) {
    for (int i = 0; i < TEST_CLUSTER_NODES; i++) {
        redisContext *ctx = redis_test_cluster_node(c, i);
        redisReply *r = ctx ? redisCommand(ctx, "CLUSTER KEYSLOT %s", key) : NULL;
        int slot = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
        if (r) freeReplyObject(r);
        if (slot >= 0) return slot;
    }
    DIE("no node answered CLUSTER KEYSLOT");
}

/* The CLUSTER SLOTS entry holding slot. */
static const redisReply *slot_entry(const redisReply *slots, int slot) {
    for (size_t i = 0; i < slots->elements; i++) {
        const redisReply *e = slots->element[i];
        if (e->element[0]->integer <= slot && slot <= e->element[1]->integer) return e;
    }
    return NULL;
}

int redis_test_cluster_master_of(redis_test_cluster_t *c, int slot) {
    redisReply *r = any_node_command(c, "CLUSTER SLOTS");
    const redisReply *e = slot_entry(r, slot);
    int node = e ? node_by_port(c, e->element[2]->element[1]->integer) : -1;
    freeReplyObject(r);
    return node;
}

int redis_test_cluster_replica_of(redis_test_cluster_t *c, int master) {
    redisReply *r = any_node_command(c, "CLUSTER SLOTS");
    int replica = -1;
    for (size_t i = 0; i < r->elements && replica < 0; i++) {
        const redisReply *e = r->element[i];
        if (node_by_port(c, e->element[2]->element[1]->integer) == master && e->elements > 3)
            replica = node_by_port(c, e->element[3]->element[1]->integer);
    }
    freeReplyObject(r);
    return replica;
}

size_t redis_test_cluster_masters(redis_test_cluster_t *c, redisContext **out, size_t max) {
    bool is_master[TEST_CLUSTER_NODES] = {false};
    redisReply *r = any_node_command(c, "CLUSTER SLOTS");
    for (size_t i = 0; i < r->elements; i++) {
        int node = node_by_port(c, r->element[i]->element[2]->element[1]->integer);
        if (node >= 0) is_master[node] = true;
    }
    freeReplyObject(r);
    size_t n = 0;
    for (int i = 0; i < TEST_CLUSTER_NODES && n < max; i++) {
        redisContext *ctx = is_master[i] ? redis_test_cluster_node(c, i) : NULL;
        if (ctx) out[n++] = ctx;
    }
    return n;
}

bool redis_test_cluster_wait_ok(redis_test_cluster_t *c, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    do {
        bool ok = true;
        char first[64] = "";
        for (int i = 0; i < TEST_CLUSTER_NODES && ok; i++) {
            redisContext *ctx = redis_test_cluster_node(c, i);
            if (!ctx) continue; /* killed */
            redisReply *r = redisCommand(ctx, "CLUSTER INFO");
            const char *epoch = r && r->type == REDIS_REPLY_STRING
                                    ? strstr(r->str, "cluster_current_epoch:")
                                    : NULL;
            ok = epoch && strstr(r->str, "cluster_state:ok");
            if (ok) { /* agreement: every node at the same epoch */
                char mine[64];
                snprintf(mine, sizeof(mine), "%.*s", (int)strcspn(epoch, "\r\n"), epoch);
                if (!first[0]) snprintf(first, sizeof(first), "%s", mine);
                ok = strcmp(first, mine) == 0;
            }
            if (r) freeReplyObject(r);
        }
        if (ok) return true;
        sleep_ms(100);
    } while (mono_ms() < deadline);
    return false;
}

void redis_test_cluster_node_id(redis_test_cluster_t *c, int i, char *out, size_t size) {
    redisReply *r = redisCommand(redis_test_cluster_node(c, i), "CLUSTER MYID");
    if (!r || r->type != REDIS_REPLY_STRING) DIE("CLUSTER MYID of node %d", i);
    snprintf(out, size, "%s", r->str);
    freeReplyObject(r);
}

long long redis_test_cluster_reshard_cost(redis_test_cluster_t *c, int slot) {
    int from = redis_test_cluster_master_of(c, slot);
    /* redis-cli takes a source's slots from its lowest up: count them. */
    redisReply *r = any_node_command(c, "CLUSTER SLOTS");
    long long moving = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (node_by_port(c, e->element[2]->element[1]->integer) != from) continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if (lo <= slot) moving += (slot < hi ? slot : hi) - lo + 1;
    }
    freeReplyObject(r);
    return moving;
}

int redis_test_cluster_reshard(redis_test_cluster_t *c, int slot, int to) {
    int from = redis_test_cluster_master_of(c, slot);
    if (from < 0 || from == to) DIE("reshard: slot %d is served by %d", slot, from);
    long long moving = redis_test_cluster_reshard_cost(c, slot);
    char from_id[64], to_id[64], cmd[1024];
    redis_test_cluster_node_id(c, from, from_id, sizeof(from_id));
    redis_test_cluster_node_id(c, to, to_id, sizeof(to_id));
    snprintf(cmd, sizeof(cmd),
             "redis-cli --cluster reshard 127.0.0.1:%d --cluster-from %s --cluster-to %s "
             "--cluster-slots %lld --cluster-yes > '%s/reshard.log' 2>&1",
             c->nodes[from].port, from_id, to_id, moving, c->nodes[0].dir);
    fprintf(stderr, "reshard: %lld slots up to %d, node %d -> %d\n", moving, slot, from, to);
    return system(cmd);
}

void redis_test_cluster_failover(redis_test_cluster_t *c, int replica) {
    redisReply *r = redisCommand(redis_test_cluster_node(c, replica), "CLUSTER FAILOVER");
    if (!r || r->type == REDIS_REPLY_ERROR) DIE("CLUSTER FAILOVER on node %d", replica);
    freeReplyObject(r);
    int64_t deadline = mono_ms() + 30000;
    for (;;) {
        r = redisCommand(redis_test_cluster_node(c, replica), "ROLE");
        bool master = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                      strcmp(r->element[0]->str, "master") == 0;
        if (r) freeReplyObject(r);
        if (master) return;
        if (mono_ms() > deadline) DIE("node %d did not become a master", replica);
        sleep_ms(50);
    }
}

void redis_test_cluster_kill(redis_test_cluster_t *c, int node) {
    node_close(c, node);
    kill(c->nodes[node].pid, SIGKILL);
    harness_wait_exit(c->nodes[node].pid, 10000);
    c->nodes[node].pid = 0;
}
