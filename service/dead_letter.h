/* dead_letter: a message that is not a valid payment (or rule update) goes
 * to dlq.topic, with its key and value unchanged and headers saying why and
 * where from: fraud.dlq.reason (a stable code), fraud.dlq.error (a
 * sentence), fraud.source.topic, fraud.source.partition and
 * fraud.source.offset, and the message's W3C traceparent and tracestate
 * when it had a valid one. Each is counted by reason, and logged, at most
 * DEAD_LETTER_LOG_PER_SECOND lines a second so that a flood of bad input
 * is not a flood of logs.
 *
 * The reasons are decode's, plus the ones that are not about decoding.
 * dead_letter borrows the producer and the metrics; the consumer thread
 * alone uses it. */
#ifndef FRAUD_DEAD_LETTER_H
#define FRAUD_DEAD_LETTER_H

#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "kafka_io.h"
#include "trace_context.h"

#define DEAD_LETTER_LOG_PER_SECOND 5

/* A decode_reason_t, or one of these. */
typedef int dead_letter_reason_t;
enum {
    /* The payment would overflow the user's total. */
    DEAD_LETTER_CUMULATIVE_OVERFLOW = DECODE_REASON_COUNT,
    /* A rules.topic record that cannot be applied. */
    DEAD_LETTER_INVALID_RULE,
    /* Event time: further ahead than time.max.future.ms, or before 2000. */
    DEAD_LETTER_TIMESTAMP_IN_FUTURE,
    DEAD_LETTER_TIMESTAMP_BEFORE_2000,
    DEAD_LETTER_REASON_COUNT
};

/* Stable snake_case code of a reason, e.g. "amount_too_precise". */
const char *dead_letter_reason_code(dead_letter_reason_t reason);

/* A dead letter's headers, as kafka_io_produce() takes them. */
typedef struct dead_letter_headers {
    char partition[16], offset[24], error[512];
    const char *pairs[2 * 7 + 1]; /* name, value, ..., NULL */
} dead_letter_headers_t;

/* Fills h for msg (its topic, partition and offset) and returns its pairs,
 * which point into h, msg and trace (NULL: none). */
const char *const *dead_letter_headers_build(dead_letter_headers_t *h, const kafka_msg_t *msg,
                                             dead_letter_reason_t reason,
                                             const char *reason_text,
                                             const trace_context_t *trace);

struct metrics;
typedef struct dead_letter dead_letter_t;

/* topic is copied; io and metrics are borrowed. NULL when out of memory. */
dead_letter_t *dead_letter_new(const char *topic, kafka_io_t *io, struct metrics *metrics);

/* Produces msg's copy to the dead-letter topic (without waiting for it),
 * counts it and logs it (sampled). record_opaque, when not NULL, goes to
 * the delivery report (kafka_io_produce). Returns -1 with a log line when
 * the producer refuses it; the opaque then stays the caller's. */
int dead_letter_send(dead_letter_t *dl, const kafka_msg_t *msg, dead_letter_reason_t reason,
                     const char *reason_text, void *record_opaque);

/* output.guarantee=exactly_once, where a dead letter waits in the Redis
 * outbox with the batch's other records and goes out in its transaction:
 *
 * dead_letter_count() counts and logs (sampled) one decided now;
 * dead_letter_record_json() is what the outbox keeps of it: {"error",
 * "key_hex" and "value_hex" (null: none)}, the bytes unchanged (the
 * caller frees it; NULL when out of memory); dead_letter_send_record()
 * produces it from that as dead_letter_send() would have produced the
 * message at source_topic [partition] offset, with record_opaque as
 * dead_letter_send() takes it. -1 with a log line when the record is
 * unreadable or the producer refuses it (the opaque stays the caller's). */
void dead_letter_count(dead_letter_t *dl, const kafka_msg_t *msg, dead_letter_reason_t reason,
                       const char *reason_text);
char *dead_letter_record_json(const kafka_msg_t *msg, const char *reason_text);
int dead_letter_send_record(dead_letter_t *dl, const char *json, const char *source_topic,
                            int32_t partition, int64_t offset, int reason,
                            const trace_context_t *trace, void *record_opaque);

/* Logs how many lines the sampling left out, then frees. */
void dead_letter_destroy(dead_letter_t *dl);

#endif
