/* store_redis: the durable copy of user state, in Redis hashes.
 *
 * Key <prefix>user:<user_id>, fields prev, cum and count, amounts as exact
 * decimal strings. Reads and writes are pipelined: one round trip loads all
 * cache misses of a batch, one writes all its dirty users. Every write sets
 * the key's expiry (PEXPIRE, or PERSIST when the TTL is off), because HSET
 * keeps whatever TTL the key had before.
 *
 * After any failure the connection is dropped; the next call reconnects, so
 * callers simply retry. The store owns its hiredis context. */
#ifndef FRAUD_STORE_REDIS_H
#define FRAUD_STORE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "state_cache.h"

typedef struct store store_t;

typedef struct store_options {
    const char *url;          /* redis://[[user]:password@]host[:port][/db] */
    const char *key_prefix;
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

/* Writes the state of each entry and sets its expiry to ttl_ms (0: none).
 * Returns 0 only when Redis acknowledged every command. */
int store_write_users(store_t *store, cache_entry_t *const *entries, size_t count,
                      int64_t ttl_ms, char *errstr, size_t errstr_size);

/* Round trip to check reachability. */
int store_ping(store_t *store, char *errstr, size_t errstr_size);

/* Counters since start. */
uint64_t store_commands_total(const store_t *store);
uint64_t store_errors_total(const store_t *store);

#endif
