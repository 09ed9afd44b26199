/* txn_commit: when output.guarantee=exactly_once commits, and what an
 * aborted transaction starts over.
 *
 * Landed batches' records and offsets gather in one Kafka transaction
 * (kafka_io) for output.transaction.interval.ms, then commit; the outbox
 * then counts them as delivered. A transaction that aborts took back
 * records whose state Redis holds: each of its partitions forgets what this
 * instance applied past its checkpoint, seeks there, and has its Redis
 * outbox produced again in a new transaction, as on assignment. Inside a
 * revoke of lost partitions those are left to their next owner.
 *
 * The test hook FD_TEST_CRASH_POINT=after_step|after_commit makes the
 * process kill itself before the commit of a transaction with records, or
 * after it (its records still in the Redis outbox), so that the tests can
 * prove each window of the protocol.
 *
 * It owns nothing but its own state; the modules in env are borrowed.
 * Consumer thread only. */
#ifndef FRAUD_TXN_COMMIT_H
#define FRAUD_TXN_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "kafka_io.h"
#include "outbox.h"
#include "partitions.h"
#include "state_cache.h"

typedef struct txn_commit_env {
    const config_t *cfg;
    kafka_io_t *io;
    outbox_t *outbox;
    partitions_t *partitions;
    state_cache_t *cache;
} txn_commit_env_t;

typedef struct txn_commit txn_commit_t;

/* NULL when out of memory. */
txn_commit_t *txn_commit_new(const txn_commit_env_t *env);
void txn_commit_destroy(txn_commit_t *tc);

/* Commits the open transaction once it has gathered long enough, or now
 * with force; only with no Redis step in flight, so that what an abort
 * starts over is all in Redis. An aborted one is started over here. 0, or
 * -1 when the service must stop (no usable producer, or an aborted
 * outbox that could not go again). A no-op without exactly_once. */
int txn_commit_if_due(txn_commit_t *tc, bool force);

/* Inside a revoke of lost partitions: those (borrowed until the call
 * with NULL, 0). */
void txn_commit_set_losing(txn_commit_t *tc, const int32_t *partitions, size_t count);

#endif
