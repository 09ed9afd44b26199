/* partitions: ownership and fencing of the input topic's partitions.
 *
 * It owns the table of partitions this instance owns, each with the Redis
 * checkpoint last seen for it (the next offset to apply), and the batch's
 * view of its partitions: the next offset each reached, and whether its
 * atomic step was refused.
 *
 * The checkpoint is the fence. A payment below it was applied already and
 * is skipped, so a replay changes nothing. Each partition's atomic step
 * (its users, its new checkpoint and its output records, all or nothing)
 * only lands if Redis still holds the checkpoint this instance last saw;
 * otherwise another owner moved on, and the partition's cached state and
 * queued records are dropped and the consumer seeks to Redis's
 * checkpoint. Offsets are stored for commit only for partitions whose step
 * landed.
 *
 * Consumer thread only, except partitions_owns() and the owned list, which
 * the state query reads under the conductor's lock. */
#ifndef FRAUD_PARTITIONS_H
#define FRAUD_PARTITIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_io.h"
#include "outbox.h"
#include "redis_retry.h"
#include "state_cache.h"
#include "store_redis.h"

typedef struct partitions partitions_t;

/* topic is borrowed. max_batch_partitions bounds the partitions of one
 * batch (its message count will do). NULL when out of memory. */
partitions_t *partitions_new(const char *topic, size_t max_batch_partitions);
void partitions_destroy(partitions_t *ps);

/* ---- ownership ---- */

/* Records the partition as owned, with the checkpoint seen (-1: none). */
int partitions_own(partitions_t *ps, int32_t partition, int64_t checkpoint);
void partitions_disown(partitions_t *ps, int32_t partition);
bool partitions_owns(const partitions_t *ps, int32_t partition);
size_t partitions_owned_count(const partitions_t *ps);
int32_t partitions_owned_at(const partitions_t *ps, size_t i);

/* On assignment: reads the partition's checkpoint from Redis (retrying)
 * and owns it. The start offset is the checkpoint, or without one the
 * group's committed offset (-1: none either, the reset policy decides). */
int partitions_assign(partitions_t *ps, store_t *store, const redis_retry_t *retry,
                      kafka_assigned_t *assigned);

/* True when the payment at offset was applied already. */
bool partitions_already_applied(const partitions_t *ps, int32_t partition, int64_t offset);

/* ---- the batch ---- */

void partitions_batch_begin(partitions_t *ps);
/* The batch holds a message of partition at offset. */
void partitions_batch_note(partitions_t *ps, int32_t partition, int64_t offset);

/* Writes every partition's dirty users, new checkpoint and queued output
 * records atomically, retrying while Redis is away (store NULL: the memory
 * backend, nothing to write). A refused partition's cached users and
 * queued records are dropped and the consumer seeks to Redis's checkpoint.
 * Returns -1 only when a stop was requested or memory ran out. */
int partitions_commit_batch(partitions_t *ps, store_t *store, state_cache_t *cache,
                            outbox_t *outbox, int64_t ttl_ms, const redis_retry_t *retry,
                            kafka_io_t *io);

/* Stores next offsets of the batch's partitions whose step landed. */
void partitions_store_offsets(const partitions_t *ps, kafka_io_t *io);

/* The i-th partition of the batch whose step landed, and the next offset
 * the batch reached on it; false past the last. */
bool partitions_batch_landed(const partitions_t *ps, size_t i, int32_t *partition,
                             int64_t *next_offset);

#endif
