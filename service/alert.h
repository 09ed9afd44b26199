/* alert: the JSON an alert carries on the alert topic.
 *
 * alert_id is derived only from where the payment was read and which rule
 * fired ("<topic>/<partition>/<offset>/<rule>"), so a payment processed twice
 * yields the same id and consumers can drop the repeat. Amounts are written
 * as JSON numbers in their exact decimal form. */
#ifndef FRAUD_ALERT_H
#define FRAUD_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "decimal.h"

typedef struct alert {
    const char *rule;
    const char *user_id;          /* NUL-terminated */
    decimal_t amount;
    decimal_t previous_amount;
    decimal_t diff;
    decimal_t threshold;
    decimal_t cumulative_amount;
    int64_t event_count;
    const char *source_topic;
    int32_t source_partition;
    int64_t source_offset;
    const char *event_id;         /* "" or NULL when the payment had none */
    int64_t event_time_ms;        /* payment timestamp, else Kafka's */
    int64_t detected_at_ms;       /* wall clock when the rule fired */
} alert_t;

/* Writes the deterministic id into buf; returns its length. */
size_t alert_id_format(const char *topic, int32_t partition, int64_t offset,
                       const char *rule, char *buf, size_t bufsize);

/* Returns the alert as a JSON object text that the caller frees with free(),
 * or NULL when out of memory. */
char *alert_encode_new(const alert_t *alert);

#endif
