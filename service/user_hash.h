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

/* The arguments of HMGET that reads every field, in table order. */
int user_hash_add_field_names(redis_argv_t *b);

/* The entry's fields for the commit script: how many field/value pairs to
 * set, the pairs, how many fields to delete, their names. Deletes emptied
 * rule fields when the hash may hold them (CACHE_ENTRY_RULE_FIELDS), and
 * updates that flag to what is written. 0, or -1 when out of memory. */
int user_hash_add_fields(redis_argv_t *b, cache_entry_t *e);

/* What one user hash holds. state.count 0: the user has no state. */
typedef struct stored_user {
    user_state_t state;   /* owns state.rules: user_state_reset() it */
    bool has_rule_fields; /* the hash holds at least one rule field */
    int64_t ttl_left_ms;  /* -1: no expiry, or no key */
} stored_user_t;

/* Reads the replies of the HMGET above and of PTTL on the same key. 0, or
 * -1 when Redis holds something this service did not write: state that
 * cannot be read must not be silently reset. */
int user_hash_parse(const struct redisReply *hmget, const struct redisReply *pttl,
                    stored_user_t *out);

#endif
