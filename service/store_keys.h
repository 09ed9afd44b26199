/* store_keys: the one layout of the service's Redis keys.
 *
 *   <prefix>{<topic>/<partition>}:user:<user_id>
 *   <prefix>{<topic>/<partition>}:checkpoint
 *   <prefix>{<topic>/<partition>}:outbox
 *
 * Redis Cluster hashes the first {...} of a key; the prefix comes before
 * the tag, so every key of a partition has the partition's one slot, and a
 * brace inside a user id changes nothing. The builders write into the
 * caller's buffer (bufsize >= 1) and return the length, 0 when it does not
 * fit; no printf, since they run once per user per batch. */
#ifndef FRAUD_STORE_KEYS_H
#define FRAUD_STORE_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* "<prefix>{<topic>/<partition>}:<what>" */
size_t store_partition_key(const char *prefix, const char *topic, int32_t partition,
                           const char *what, size_t what_len, char *buf, size_t bufsize);

/* "<prefix>{<topic>/<partition>}:user:<user>" */
size_t store_user_key(const char *prefix, const char *topic, int32_t partition,
                      const char *user, size_t user_len, char *buf, size_t bufsize);

/* A checkpoint as Redis holds it: decimal digits, or empty for none (-1).
 * 0, or -1 when it is not one. */
int store_checkpoint_parse(const char *text, size_t len, int64_t *out);

/* The slot that every key of the partition hashes to. */
uint16_t store_partition_slot(const char *prefix, const char *topic, int32_t partition);

#endif
