/* user_hash: the format of one user's state in Redis, written and read
 * from a single table of fields.
 *
 *   prev, cum, count   always: last amount, running total, payments so far
 *   et                 always: the user's latest event time (0: none)
 *   cl                 cumulative_limit: the total last alerted at
 *   stl                small_then_large: when the small payment was seen
 *   avgn, avgs         count_average: how many and their sum
 *   vel                velocity: payment times, sorted, comma-separated
 *   inst               named instances: each one's own state, one part per
 *                      instance (its format is in user_hash.c)
 *
 * A rule's field is present only while it holds something. Amounts are
 * exact decimal text, never floating point. */
#ifndef FRAUD_USER_HASH_H
#define FRAUD_USER_HASH_H

#include <stdbool.h>
#include <stdint.h>

#include "redis_argv.h"
#include "state_cache.h"

struct redisReply;

/* How many fields the table has, and their names in table order: the
 * commit script takes them once per step, so a write of the four core
 * fields alone (USER_HASH_CORE_ONLY below) need not name them. */
#define USER_HASH_FIELD_COUNT 10
int user_hash_add_field_names(redis_argv_t *b);

/* A user's write for the commit script. First its shape: field i is set
 * (bit i), field i is deleted (bit 10 + i), the hash goes first because
 * the user was erased (USER_HASH_ERASE), the key's TTL must go
 * (USER_HASH_PERSIST). The shape USER_HASH_CORE_ONLY (the four core
 * fields, nothing else: nearly every user under the default rules) is
 * followed by their four values alone, since names and counts were most
 * of a step's arguments. Any other shape is followed by how many
 * field/value pairs to set, the pairs, how many fields to delete, and
 * their names, so the script's general path sends slices of its arguments
 * as they are.
 *
 * Deletes emptied rule fields when the hash may hold them
 * (CACHE_ENTRY_RULE_FIELDS), and updates that flag to what is written. An
 * erased user (CACHE_ENTRY_ERASED) with no payment since sets nothing: its
 * key simply goes. drop_ttl: the key may carry a TTL that must go (the
 * caller knows the TTL in force). 0, or -1 when out of memory. */
#define USER_HASH_CORE_ONLY 15
#define USER_HASH_ERASE (1 << 20)
#define USER_HASH_PERSIST (1 << 21)
int user_hash_add_fields(redis_argv_t *b, cache_entry_t *e, bool drop_ttl);

/* What one user hash holds. state.count 0: the user has no state. */
typedef struct stored_user {
    user_state_t state;   /* owns state.rules: user_state_reset() it */
    bool has_rule_fields; /* the hash holds at least one rule field */
    int64_t ttl_left_ms;  /* -1: no expiry, or no key */
} stored_user_t;

/* Reads the replies of HGETALL and of PTTL on the same key. Fields this
 * service does not know are passed over. 0, or -1 when Redis holds
 * something this service did not write: state that cannot be read must
 * not be silently reset. HGETALL, not HMGET of the ten names: a miss costs
 * Redis a third as much (0.8 against 2.1 us of its CPU per key, measured
 * over 200,000 absent keys), and most loads at 10^6 users are misses. */
int user_hash_parse(const struct redisReply *hmget, const struct redisReply *pttl,
                    stored_user_t *out);

#endif
