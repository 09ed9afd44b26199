/* state_ttl: Flink's StateTtlConfig semantics over the local cache.
 *
 * The Redis key carries the TTL natively (PEXPIRE), so Redis never holds
 * expired state. The cache mirrors the expiry in each entry's expires_at_ms
 * and applies the visibility rule when state is read:
 *   never_return_expired              expired state reads as absent;
 *   return_expired_if_not_cleaned_up  a cached value may be used after its
 *                                     time, until the cleaner drops it.
 * The update type decides whether a read (a state query) refreshes the TTL;
 * a write always does. Time is processing time, passed in by the caller so
 * tests can drive it. Nothing here allocates or does I/O. */
#ifndef FRAUD_STATE_TTL_H
#define FRAUD_STATE_TTL_H

#include <stdbool.h>
#include <stdint.h>

#include "state_cache.h"

typedef enum { TTL_UPDATE_ON_CREATE_AND_WRITE, TTL_UPDATE_ON_READ_AND_WRITE } ttl_update_t;

typedef enum {
    TTL_NEVER_RETURN_EXPIRED,
    TTL_RETURN_EXPIRED_IF_NOT_CLEANED_UP
} ttl_visibility_t;

typedef struct ttl_policy {
    int64_t ttl_ms; /* 0: state never expires */
    ttl_update_t update;
    ttl_visibility_t visibility;
} ttl_policy_t;

/* Parses the config names ("on_read_and_write", ...); -1 when unknown. */
int ttl_policy_init(ttl_policy_t *policy, int64_t ttl_ms, const char *update,
                    const char *visibility);

bool ttl_is_expired(const ttl_policy_t *policy, const cache_entry_t *entry, int64_t now_ms);

/* Applies a read at now_ms: under never_return_expired, expired state is
 * cleared (it reads as absent); under on_read_and_write a visible state's
 * expiry is pushed out. Returns true when the read refreshed the TTL (the
 * caller then refreshes the Redis key too). */
bool ttl_on_read(const ttl_policy_t *policy, cache_entry_t *entry, int64_t now_ms);

/* Applies a write at now_ms: the TTL starts again. */
void ttl_on_write(const ttl_policy_t *policy, cache_entry_t *entry, int64_t now_ms);

#endif
