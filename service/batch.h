/* batch: the messages in hand, from poll to release.
 *
 * A batch gathers what the consumer has fetched (up to batch.max.messages
 * or batch.max.bytes, never waiting to fill up once the first message is
 * in), decodes every message, skips what is below its partition's
 * checkpoint, attaches each user's cached state (the ones not cached are
 * loaded from Redis together, in one pipelined round trip), and applies the
 * payments in offset order through the rules in force. A payment that is
 * not valid goes to the dead-letter topic; what the rules decide goes to
 * the outbox. The messages stay the batch's until batch_release().
 *
 * The batch owns its items and buffers (allocated once, reused); the
 * collaborators in batch_env_t are borrowed. Consumer thread only. */
#ifndef FRAUD_BATCH_H
#define FRAUD_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dead_letter.h"
#include "decode.h"
#include "kafka_io.h"
#include "metrics.h"
#include "outbox.h"
#include "partitions.h"
#include "redis_retry.h"
#include "rules.h"
#include "state_cache.h"
#include "state_ttl.h"
#include "store_redis.h"

/* What a batch works with; all borrowed. */
typedef struct batch_env {
    const config_t *cfg;
    state_cache_t *cache;
    store_t *store; /* NULL: memory backend */
    partitions_t *partitions;
    outbox_t *outbox;
    dead_letter_t *dead_letters;
    metrics_t *metrics;
    const ttl_policy_t *ttl;
    const redis_retry_t *retry;
} batch_env_t;

typedef struct batch batch_t;

/* NULL when out of memory. */
batch_t *batch_new(const config_t *cfg);
void batch_destroy(batch_t *b);

/* Adds what the consumer has, waiting at most first_wait_ms for the first
 * message. A rebalance may run inside and process what was gathered. */
void batch_gather(batch_t *b, kafka_io_t *io, int first_wait_ms);
size_t batch_count(const batch_t *b);

/* Decodes, attaches state and applies every message. Returns how many dead
 * letters it produced (with Redis, their acknowledgement is the caller's to
 * await; the memory backend's watermark waits for them; with exactly_once
 * none: they wait in the outbox, counted there), or -1 on a failure that
 * must stop the service. */
long batch_apply(batch_t *b, const batch_env_t *env, const rule_set_t *rules);

/* Drops the messages of partitions that were lost, or whose step was
 * refused; returns how many. */
size_t batch_discard_partitions(batch_t *b, const int32_t *partitions, size_t count);

/* Releases every message. */
void batch_release(batch_t *b);

#endif
