/* outbox_private: what the files of the outbox module share and nothing
 * else sees. */
#ifndef FRAUD_OUTBOX_PRIVATE_H
#define FRAUD_OUTBOX_PRIVATE_H

#include "outbox.h"

/* A produced record until its delivery report; then in acked[] (Redis
 * backend) or settled on its mark and freed (memory backend). */
typedef struct inflight {
    int kind; /* output_kind_t, or DEAD_LETTER_TICKET */
    int rule;
    int32_t partition;
    int64_t event_time_ms;
    ack_mark_t *mark; /* memory backend */
    char id[];
} inflight_t;

typedef struct record_list {
    output_record_t *items;
    size_t count, cap;
} record_list_t;

struct outbox {
    const config_t *cfg;
    kafka_io_t *io;
    store_t *store;       /* NULL: memory backend */
    ack_watermark_t *acks; /* memory backend only */
    dead_letter_t *dead_letters;
    metrics_t *metrics;
    int transactional; /* output.guarantee=exactly_once */
    record_list_t queued; /* decided in the batch being applied */
    record_list_t sealed; /* in the Redis step in flight */
    record_list_t committing; /* exactly_once: produced in the open transaction */
    inflight_t **acked;
    size_t acked_count, acked_cap;
    store_alert_t *ids; /* scratch for removals */
    store_step_t *steps;
    char *ce_source; /* NULL: CloudEvents off */
    int failed;
};

/* Produces one record as it was first produced (same key, value and
 * headers), with no delivery opaque. */
int outbox_produce_stored(outbox_t *ob, const output_record_t *r);

#endif
