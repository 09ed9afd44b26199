/* store_redis: the durable copy of user state, in Redis, written with
 * atomic per-partition checkpoints.
 *
 * Keys share one hash tag per input partition, so each partition's atomic
 * step touches a single Redis Cluster slot:
 *   <prefix>{<topic>/<partition>}:user:<user_id>  hash prev, cum, count, and
 *                                                 the rules' cl, stl, avgn,
 *                                                 avgs, vel while they hold
 *                                                 something
 *   <prefix>{<topic>/<partition>}:checkpoint      next offset to apply
 *   <prefix>{<topic>/<partition>}:outbox          hash id -> JSON of an alert,
 *                                                 average or running total
 * A partition step (a Lua script) compares the checkpoint with the one the
 * caller last saw, then writes the users (DEL of an erased user's key,
 * HSET, HDEL of emptied rule fields, then PEXPIRE or PERSIST, as HSET keeps
 * an old TTL), adds the batch's alerts to the outbox and moves the
 * checkpoint, all or nothing. Steps of several partitions share one
 * pipelined round trip, as do the loads of a batch's cache misses.
 *
 * After any failure the connection is dropped; the next call reconnects, so
 * callers simply retry. The store owns its redis_cluster (the connections
 * and the slot map) and leaves the key names to store_keys, the hash's
 * fields to user_hash, and the step's script and commands to store_step.
 * A store is used by one thread at a time. */
#ifndef FRAUD_STORE_REDIS_H
#define FRAUD_STORE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "redis_cluster.h"
#include "state_cache.h"

typedef struct store store_t;

typedef struct store_options {
    const char *url;          /* redis://[[user]:password@]host[:port][/db] */
    const char *key_prefix;
    const char *topic;         /* input topic: part of every key's hash tag */
    const char *password_file; /* NULL or "": none; else overrides the URL's */
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
} store_options_t;

/* Parses the URL and connects. Returns NULL with a reason in errstr (the
 * reason never contains the password). Free with store_destroy(). */
store_t *store_new(const store_options_t *opts, char *errstr, size_t errstr_size);
void store_destroy(store_t *store);

/* Fills the state of each entry from Redis and sets CACHE_ENTRY_LOADED;
 * a user with no key gets empty state. The key's remaining TTL becomes the
 * entry's expires_at_ms, counted from now_ms. Returns 0, or -1 with errstr. */
int store_load_users(store_t *store, cache_entry_t *const *entries, size_t count,
                     int64_t now_ms, char *errstr, size_t errstr_size);

typedef struct store_alert {
    const char *id;   /* alert_id */
    const char *json; /* the alert exactly as it is produced */
} store_alert_t;

/* One partition's share of a batch. */
typedef struct store_step {
    int32_t partition;
    int64_t expected_checkpoint; /* as last seen; -1: none yet */
    int64_t next_offset;         /* the new checkpoint */
    cache_entry_t **users;       /* borrowed; written with their state */
    size_t user_count;
    const store_alert_t *alerts; /* borrowed; added to the outbox */
    size_t alert_count;
    /* Filled in: the checkpoint differed from expected_checkpoint, so
     * nothing was written (another owner moved on); actual_checkpoint is
     * what Redis holds (-1: none). */
    int conflict;
    int64_t actual_checkpoint;
} store_step_t;

/* Runs every step in one pipelined round trip, each atomically, with
 * ttl_ms for the user keys (0: no expiry). Returns 0 when Redis answered
 * every step (conflicts are answers), -1 with errstr otherwise. Builds and
 * runs at once; store_step.h builds ahead for a run elsewhere. */
int store_commit_steps(store_t *store, store_step_t *steps, size_t count, int64_t ttl_ms,
                       char *errstr, size_t errstr_size);

/* The partition's checkpoint, or -1 when it has none. */
int store_get_checkpoint(store_t *store, int32_t partition, int64_t *offset, char *errstr,
                         size_t errstr_size);

/* The partition's outbox: alerts decided but maybe not yet delivered. The
 * caller frees it with store_outbox_free(). */
typedef struct store_outbox {
    store_alert_t *alerts;
    size_t count;
    void *reply_; /* owns the strings */
} store_outbox_t;

int store_outbox_load(store_t *store, int32_t partition, store_outbox_t *out, char *errstr,
                      size_t errstr_size);
void store_outbox_free(store_outbox_t *outbox);

/* Removes delivered alerts from the outboxes of the given steps. */
int store_outbox_remove(store_t *store, const store_step_t *steps, size_t count,
                        char *errstr, size_t errstr_size);

/* A user's state as Redis holds it, for the state query. */
typedef struct store_user_view {
    int found;
    int32_t partition;
    user_state_t state;
    int64_t ttl_ms; /* remaining; -1 when the key has no expiry */
} store_user_view_t;

/* Looks the user up in every partition 0..partition_count-1, in one
 * pipelined round trip; the first partition holding state wins. */
int store_find_user(store_t *store, const char *user, size_t user_len, int32_t partition_count,
                    store_user_view_t *out, char *errstr, size_t errstr_size);

/* Restarts the TTL of a user's key (a read under on_read_and_write). */
int store_touch_user(store_t *store, int32_t partition, const char *user, size_t user_len,
                     int64_t ttl_ms, char *errstr, size_t errstr_size);

/* Round trip to check reachability. */
int store_ping(store_t *store, char *errstr, size_t errstr_size);

/* Runs a pipeline over the store's connections (store_step's steps). */
int store_run_pipeline(store_t *store, const redis_pipeline_t *pipeline,
                       struct redisReply **replies, char *errstr, size_t errstr_size);

/* Counts an error that keeps the connections. */
void store_count_error(store_t *store);

/* Counters since start; the last two stay 0 with one Redis. */
uint64_t store_commands_total(const store_t *store);
uint64_t store_errors_total(const store_t *store);
uint64_t store_redirects_total(const store_t *store);
uint64_t store_map_reads_total(const store_t *store);

#endif
