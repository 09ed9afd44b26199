/* partitions: ownership and fencing of the input topic's partitions.
 *
 * It owns the table of partitions this instance owns, each with the Redis
 * checkpoint last seen for it (the next offset to apply), and the batch's
 * view of its partitions: the next offset each reached, and whether its
 * atomic step was refused.
 *
 * The checkpoint is the fence. A payment below it was applied already and
 * is skipped, so a replay changes nothing. The batch being applied and the
 * batch whose step is in flight each have their own view, so the next
 * batch is applied while the last one's step is in Redis. Each partition's atomic step
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
#include "step_flight.h"
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

/* Builds one step per partition of the batch (its dirty users, new
 * checkpoint and queued output records) and launches them on the flight;
 * the dirty users go in flight, the queued records are sealed, and the
 * batch's partitions become the flight's. Only with nothing in flight,
 * since each step is conditioned on the checkpoint the one before wrote.
 * -1 when the steps cannot be built (out of memory). */
int partitions_launch_batch(partitions_t *ps, step_flight_t *flight, state_cache_t *cache,
                            outbox_t *outbox, int64_t ttl_ms);

/* Waits for the flight, retrying while Redis is away, and settles each
 * partition: landed, it owns the new checkpoint; refused, its cached users,
 * sealed and queued records and its part of the batch being applied are
 * forgotten (see partitions_refused()) and the consumer seeks to Redis's
 * checkpoint. Returns -1 only when a stop was requested first. */
int partitions_land_batch(partitions_t *ps, step_flight_t *flight, state_cache_t *cache,
                          outbox_t *outbox, const redis_retry_t *retry, kafka_io_t *io);

/* exactly_once, after the transaction of a landed batch aborted: forgets
 * what this instance holds of the partition past its checkpoint (its
 * cached users, queued records, its part of the batch being applied),
 * counts it with the refused ones and seeks to the checkpoint. The
 * checkpoint's records are still in the Redis outbox. */
void partitions_start_over(partitions_t *ps, int32_t partition, state_cache_t *cache,
                           outbox_t *outbox, kafka_io_t *io);

/* The checkpoint last seen for an owned partition; -1: none, or not owned. */
int64_t partitions_checkpoint(const partitions_t *ps, int32_t partition);

/* The partitions the last landing refused (or started over): the caller
 * discards their messages from the batch being applied. */
const int32_t *partitions_refused(const partitions_t *ps, size_t *count);

/* Stores the next offsets of the landed batch's partitions that were not
 * refused, once. */
void partitions_store_offsets(partitions_t *ps, kafka_io_t *io);

/* Memory backend, which launches nothing: the i-th partition of the batch
 * being applied and the next offset it reached there; false past the
 * last. */
bool partitions_batch_landed(const partitions_t *ps, size_t i, int32_t *partition,
                             int64_t *next_offset);

#endif
