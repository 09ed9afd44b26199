/* redis_cluster: which Redis connection serves a key, and pipelines that
 * follow the answer.
 *
 * Owns one redis_conn per node and the slot map. With redis:// there is a
 * single node and it serves every slot. With redis-cluster:// the map comes
 * from CLUSTER SLOTS, asked of the known nodes and then of the URL's seeds,
 * at the first call and again after a MOVED or a lost connection.
 *
 * A pipeline's commands are appended to the connections of their slots'
 * nodes, every connection is flushed before any reply is read (the nodes
 * work at once), and the replies are read in order. A command that a node
 * did not execute is sent again, alone, until the command timeout: after
 * MOVED (to the new owner, the map read again), ASK (ASKING, then the
 * command, on the node named), TRYAGAIN or CLUSTERDOWN (a slot being
 * migrated, or a failover: after a pause), NOSCRIPT (a new master without
 * the script: reconnecting loads it) and LOADING. A lost connection fails
 * the call once every other node's replies are read, and the caller
 * retries, as with a single Redis. Each command names keys of one slot, so
 * a script stays atomic wherever it runs. */
#ifndef FRAUD_REDIS_CLUSTER_H
#define FRAUD_REDIS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "redis_argv.h"
#include "redis_conn.h"

#define REDIS_CLUSTER_SLOTS 16384

struct redisReply;

/* CRC16-CCITT (XMODEM), the checksum of Redis Cluster's key slots. */
uint16_t redis_crc16(const char *buf, size_t len);

/* The slot of a key: CRC16 of its hash tag (the bytes between the first
 * '{' and the first '}' after it, when not empty), else of the whole key,
 * modulo 16384. */
uint16_t redis_key_slot(const char *key, size_t len);

typedef struct redis_cluster redis_cluster_t;

/* Parses the URL; connects at the first call. NULL with errstr on failure.
 * opts->node is ignored: the URL names the nodes. */
redis_cluster_t *redis_cluster_new(const redis_conn_options_t *opts, char *errstr,
                                   size_t errstr_size);
void redis_cluster_destroy(redis_cluster_t *cluster);

int redis_cluster_is_cluster(const redis_cluster_t *cluster);

typedef struct redis_pipeline {
    size_t count;
    void *arg;
    /* The slot of command i (any value with one Redis). */
    uint16_t (*slot_of)(void *arg, size_t i);
    /* Builds command i into argv (reset by the caller); script_sha is the
     * SHA1 of the connection's script. 0, or -1 when it cannot be built. */
    int (*build)(void *arg, size_t i, redis_argv_t *argv, const char *script_sha);
    const char *what; /* names the commands in messages */
} redis_pipeline_t;

/* Runs every command and gives replies[i] the reply of command i, errors
 * included; the caller frees each with freeReplyObject(). Returns 0, or -1
 * with errstr and no reply left to free. */
int redis_cluster_run(redis_cluster_t *cluster, const redis_pipeline_t *pipeline,
                      struct redisReply **replies, char *errstr, size_t errstr_size);

/* PING to the one Redis, or to every master of the cluster (reading the
 * map first when needed): 0 when all answered, -1 with errstr. */
int redis_cluster_ping(redis_cluster_t *cluster, char *errstr, size_t errstr_size);

/* How many nodes own slots (1 with one Redis), and how often the map was
 * read and commands were redirected, for logs and tests. */
size_t redis_cluster_master_count(const redis_cluster_t *cluster);
uint64_t redis_cluster_map_reads(const redis_cluster_t *cluster);
uint64_t redis_cluster_redirects(const redis_cluster_t *cluster);

/* Commands sent, and errors, over every node since the start. */
uint64_t redis_cluster_commands_total(const redis_cluster_t *cluster);
uint64_t redis_cluster_errors_total(const redis_cluster_t *cluster);

/* Counts an error that keeps the connections (a reply that is not what
 * this service wrote). */
void redis_cluster_count_error(redis_cluster_t *cluster);

#endif
