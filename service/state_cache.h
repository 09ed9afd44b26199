/* state_cache: the in-process map from (partition, user id) to state.
 *
 * Hot users cost no Redis round trip: the pipeline reads and updates entries
 * here and persists the dirty ones once per batch. The cache is bounded by
 * max_entries; state_cache_evict() drops the least recently used clean
 * entries, and is called between batches, so an entry pointer taken during a
 * batch stays valid until the batch is persisted. Dirty entries are never
 * evicted, nor are entries whose write is still in flight (launched, not yet
 * landed): reading such a user back from Redis would miss that write. A user's state belongs to the input partition it arrives on (as
 * its Redis key does), so the partition is part of the key.
 *
 * The cache owns its entries. Pointers it returns are borrowed and valid
 * until the next state_cache_evict(), state_cache_drop_partition() or
 * state_cache_destroy(). Not thread-safe: only the consumer thread uses it. */
#ifndef FRAUD_STATE_CACHE_H
#define FRAUD_STATE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decimal.h"
#include "rules.h"

typedef struct user_state {
    decimal_t prev;   /* last payment's amount */
    decimal_t cum;    /* running total */
    int64_t count;    /* payments so far; 0 means no state */
    int64_t event_ms; /* latest event time seen for the user; 0: none */
    rule_state_t *rules; /* owned; NULL while no rule remembers anything */
} user_state_t;

/* Empties a state, freeing what it owns. */
void user_state_reset(user_state_t *state);

enum {
    CACHE_ENTRY_DIRTY = 1 << 0,  /* changed since last persisted */
    CACHE_ENTRY_LOADED = 1 << 1, /* state known: loaded or created */
    CACHE_ENTRY_RULE_FIELDS = 1 << 2, /* its Redis hash may hold rule fields */
    CACHE_ENTRY_TOTALS_QUEUED = 1 << 3, /* during a batch: running total queued */
    CACHE_ENTRY_REDIS_TTL = 1 << 4, /* its Redis hash may carry a TTL (store_redis) */
    CACHE_ENTRY_ERASED = 1 << 5, /* erased since last persisted: its Redis hash goes first */
    CACHE_ENTRY_IN_FLIGHT = 1 << 6, /* written by the Redis step in flight */
};

typedef struct cache_entry {
    struct cache_entry *bucket_next;
    struct cache_entry *lru_prev, *lru_next; /* lru_prev is more recent */
    user_state_t state;
    int64_t expires_at_ms; /* processing-time expiry; 0 = none */
    uint32_t hash;
    int32_t partition;     /* input partition owning this state */
    uint16_t user_len;
    uint8_t flags;
    char user[];           /* user_len bytes, then NUL */
} cache_entry_t;

typedef struct state_cache state_cache_t;

typedef struct state_cache_stats {
    uint64_t hits, misses, evictions, expirations;
} state_cache_stats_t;

/* Returns NULL when out of memory. Free with state_cache_destroy(). */
state_cache_t *state_cache_new(size_t max_entries);
void state_cache_destroy(state_cache_t *cache);

/* Finds the user and marks it most recently used; NULL when absent. */
cache_entry_t *state_cache_get(state_cache_t *cache, int32_t partition, const char *user,
                               size_t len);

/* Finds the user without touching the LRU order or the hit statistics
 * (for state queries, which must not disturb the cache). */
cache_entry_t *state_cache_peek(state_cache_t *cache, int32_t partition, const char *user,
                                size_t len);

/* Adds an entry with no state yet (flags 0). NULL when out of memory.
 * The user must not be present already. */
cache_entry_t *state_cache_put(state_cache_t *cache, const char *user, size_t len,
                               int32_t partition);

/* Records a change, so the entry is persisted with the batch. */
void state_cache_mark_dirty(state_cache_t *cache, cache_entry_t *entry);

/* The dirty entries, in the order they became dirty. */
cache_entry_t **state_cache_dirty(state_cache_t *cache, size_t *count);

/* Call once the dirty entries are persisted: clears every dirty flag. */
void state_cache_mark_all_clean(state_cache_t *cache);

/* Call once the dirty entries' write is built and on its way: clears
 * their dirty flags (a later change makes them dirty again) and holds them
 * in the cache, unevictable, until state_cache_landed(). */
void state_cache_launch_dirty(state_cache_t *cache);

/* The write launched last is in Redis (or its partitions were dropped):
 * its entries may be evicted again. */
void state_cache_landed(state_cache_t *cache);

/* Evicts least recently used clean entries until at most max_entries
 * remain. Returns how many were evicted. */
size_t state_cache_evict(state_cache_t *cache);

/* Drops every entry of `partition`, dirty or not (on revoke, or when its
 * batch was refused). Returns how many were dropped. */
size_t state_cache_drop_partition(state_cache_t *cache, int32_t partition);

/* Drops clean entries whose expires_at_ms has passed, examining at most
 * max_scan entries from the least recently used end (where idle users
 * gather), the way Redis samples keys in its active expiry cycle.
 * Returns how many were dropped. */
size_t state_cache_drop_expired(state_cache_t *cache, int64_t now_ms, size_t max_scan);

/* Drops every entry, dirty or not. */
void state_cache_clear(state_cache_t *cache);

size_t state_cache_count(const state_cache_t *cache);
state_cache_stats_t state_cache_stats(const state_cache_t *cache);

#endif
