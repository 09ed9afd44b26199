/* metrics: the service's counters, gauges and histograms, and their
 * Prometheus text exposition.
 *
 * The consumer thread updates them; the HTTP thread renders them. Every
 * value is a C11 atomic, so neither thread ever waits for the other. The
 * metrics object is created by the pipeline and lives as long as it. */
#ifndef FRAUD_METRICS_H
#define FRAUD_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dead_letter.h"
#include "rules.h"

#define METRICS_MAX_PARTITIONS 1024
#define METRICS_BUCKETS 14

typedef enum {
    EVENT_VALID = 0,
    EVENT_DEAD_LETTER,
    EVENT_REPLAYED, /* below the checkpoint: already applied, skipped */
    EVENT_RESULT_COUNT
} event_result_t;

typedef struct histogram {
    atomic_uint_least64_t buckets[METRICS_BUCKETS]; /* not cumulative */
    atomic_uint_least64_t count;
    atomic_uint_least64_t sum_us;
} histogram_t;

typedef struct metrics {
    atomic_uint_least64_t events[EVENT_RESULT_COUNT];
    atomic_uint_least64_t dead_letters[DEAD_LETTER_REASON_COUNT];
    /* Raised: committed to the outbox (or, on the memory backend, decided
     * by a batch that completed). count_average's stay 0. */
    atomic_uint_least64_t alerts[RULE_TYPE_COUNT];
    atomic_uint_least64_t alerts_acknowledged[RULE_TYPE_COUNT];
    atomic_uint_least64_t averages_produced;
    atomic_uint_least64_t totals_produced;
    atomic_uint_least64_t late_payments; /* event time: found late */
    atomic_uint_least64_t users_erased;  /* tombstones applied */
    atomic_uint_least64_t late_produced; /* produced to late.topic and acknowledged */
    /* Rule changes: [source 0 SIGHUP, 1 rules.topic][0 applied, 1 rejected] */
    atomic_uint_least64_t rule_updates[2][2];
    atomic_uint_least64_t alerts_redelivered;
    /* output.guarantee=exactly_once */
    atomic_uint_least64_t transactions_committed, transactions_aborted, producer_restarts;
    atomic_uint_least64_t outboxes_cleared; /* on assignment, already committed: not produced */
    atomic_int rule_enabled[RULE_COUNT]; /* the fixed rules in force: 1 on, 0 off */
    atomic_int rules_active[RULE_TYPE_COUNT]; /* instances in force and not paused */
    atomic_uint_least64_t aggregate_payments_dropped; /* past an instance's max.events */
    atomic_uint_least64_t redis_commands, redis_errors;
    atomic_uint_least64_t redis_redirects, redis_map_reads; /* Redis Cluster only */
    atomic_uint_least64_t cache_hits, cache_misses, cache_evictions, cache_expirations;
    atomic_int_least64_t cached_users;
    atomic_int_least64_t assigned_partitions;
    atomic_int_least64_t consumer_lag[METRICS_MAX_PARTITIONS]; /* -1: not assigned/unknown */
    atomic_int kafka_brokers_up;  /* from the statistics callback; -1 before the first */
    atomic_int redis_up;          /* last round trip of the consumer thread succeeded */
    histogram_t batch_seconds;
    histogram_t event_to_alert_seconds;
} metrics_t;

/* Returns zeroed metrics with unknown gauges, or NULL when out of memory. */
metrics_t *metrics_new(void);
void metrics_destroy(metrics_t *m);

void metrics_add(atomic_uint_least64_t *counter, uint64_t n);
void metrics_observe(histogram_t *h, double seconds);

/* Takes consumer lag per partition and broker states from librdkafka's
 * statistics JSON (statistics.interval.ms). */
void metrics_update_from_kafka_stats(metrics_t *m, const char *json, const char *topic);

/* Renders the Prometheus text format; the caller frees the result. */
char *metrics_render_new(const metrics_t *m);

#endif
