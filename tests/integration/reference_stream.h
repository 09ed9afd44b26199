/* reference_stream: a deterministic stream of payments with its expected
 * outcome computed here, independently of the service: every user's final
 * cum and count, and every alert the amount_jump rule must raise.
 * Users are "s<N>"; values are bare decimals with up to 4 fraction digits. */
#ifndef FRAUD_TEST_REFERENCE_STREAM_H
#define FRAUD_TEST_REFERENCE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decimal.h"
#include "harness.h"

typedef struct stream {
    size_t events, users;
    char (*keys_buf)[24];
    char (*values_buf)[40];
    const char **keys, **values;
    decimal_t *cum;
    int64_t *count;
    char (*alerts)[96]; /* "user previous amount count" of each expected alert */
    size_t alert_count;
    /* Redis may lose its last steps (a failover, a restored snapshot): an
     * alert is then decided again, and a repeat may differ in detected_at. */
    bool redecided_ok;
} stream_t;

/* jump_every: about one payment in jump_every is a large jump (0: none). */
void stream_make(stream_t *s, size_t events, size_t users, unsigned jump_every, uint64_t seed);
void stream_free(stream_t *s);

/* Reads every user key in the fixture's Redis (on every master of a
 * cluster) with pipelined HMGETs and compares with the reference (each user
 * once, exact cum and count), until they match or timeout_ms passes. Prints
 * the first difference on failure. */
bool stream_totals_match(const stream_t *s, int timeout_ms);

/* Reads the alert topic: every alert_id must always carry the same JSON
 * (but detected_at, with redecided_ok),
 * and the distinct alerts must be exactly the expected ones. Prints what
 * differs on failure. *duplicates receives how many repeats were seen. */
bool stream_alerts_match(const stream_t *s, const kafka_cluster_t *kc, int timeout_ms,
                         size_t *duplicates);

/* Both, against the fixture's Redis and Kafka: fails the test (showing the
 * instances' logs) unless the totals match within totals_timeout_ms and
 * then the alerts within a minute. */
void stream_assert_outcome(const stream_t *s, int totals_timeout_ms, size_t *duplicates);

#endif
