/* store_step: a batch's atomic partition steps, built now and run later.
 *
 * Building reads the cache entries (their state, and their flags, which
 * building also updates) and must happen on the consumer thread. What it
 * builds owns a copy of every byte it will send, so the steps can then run
 * on another thread, over another store's connections, while the consumer
 * goes on changing the cache. Running them again after a failure sends the
 * same bytes: a step that did land is refused by its checkpoint comparison
 * and reported as a conflict whose actual_checkpoint is its own
 * next_offset, which the caller treats as done.
 *
 * The script itself (STORE_STEP_SCRIPT) is described in store_redis.h,
 * with the keys it writes. store_steps_t owns its commands and its copy of
 * each step's partition, offsets and outcome; nothing it holds points into
 * the cache after store_steps_build() returns. */
#ifndef FRAUD_STORE_STEP_H
#define FRAUD_STORE_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "store_redis.h"

/* The Lua of the atomic partition step, loaded on every connection. */
extern const char STORE_STEP_SCRIPT[];

typedef struct store_steps store_steps_t;

/* prefix and topic are copied: every key names them. NULL when out of
 * memory. */
store_steps_t *store_steps_new(const char *key_prefix, const char *topic);
void store_steps_destroy(store_steps_t *ss);

/* Builds one command per step, with ttl_ms for the user keys (0: no
 * expiry), replacing what was built before. Marks each written user's key
 * as carrying ttl_ms's TTL or none, as the step will leave it. 0, or -1
 * with errstr (out of memory, or a key too long). */
int store_steps_build(store_steps_t *ss, const store_step_t *steps, size_t count,
                      int64_t ttl_ms, char *errstr, size_t errstr_size);

/* Runs what was built in one pipelined round trip (per node, on a
 * cluster). 0 when Redis answered every step (conflicts are answers), -1
 * with errstr otherwise. */
int store_steps_run(store_steps_t *ss, store_t *store, char *errstr, size_t errstr_size);

/* The built steps, in order, with their outcome after a successful run
 * (conflict, actual_checkpoint); users and alerts are NULL. */
const store_step_t *store_steps_outcome(const store_steps_t *ss, size_t *count);

#endif
