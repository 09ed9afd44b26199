/* outbox_format: the one format of an output record in a partition's Redis
 * outbox (a hash field per record, under the record's id).
 *
 *   "<kind> <rule> <offset> <json>"
 *   "<kind> <rule> <offset> t<n>,<m> <traceparent><tracestate> <json>"
 *
 * kind is one letter (a alert, v average, t total, l late payment, e an
 * erased user's tombstone on totals.topic, whose json only names the key,
 * d a dead letter, with output.guarantee=exactly_once, whose json is
 * dead_letter's), rule the rule_id_t of an alert, a dead letter's reason
 * (else -1), offset the payment's. The second
 * form, for a payment that carried a W3C trace context, has the two
 * lengths n and m, so neither value needs escaping. A bare JSON object is
 * a record written before records were typed; its kind and offset are read
 * from its fields. */
#ifndef FRAUD_OUTBOX_FORMAT_H
#define FRAUD_OUTBOX_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "trace_context.h"

typedef enum {
    OUTPUT_ALERT = 0,
    OUTPUT_AVERAGE,
    OUTPUT_TOTAL,
    OUTPUT_LATE,          /* a late payment, for late.topic */
    OUTPUT_TOTAL_ERASED,  /* a tombstone on totals.topic: the user was erased */
    OUTPUT_DEAD_LETTER,   /* exactly_once: a dead letter waits in the outbox too */
    OUTPUT_KIND_COUNT
} output_kind_t;

/* Room for the longest head. */
#define OUTBOX_HEAD_MAX (64 + TRACEPARENT_MAX + TRACESTATE_MAX)

/* Writes the part before the JSON; returns its length, or -1 when it does
 * not fit. trace may be NULL. */
int outbox_format_head(char *buf, size_t size, output_kind_t kind, int rule, int64_t offset,
                       const trace_context_t *trace);

/* A stored record, read in place: the pointers are into the value. */
typedef struct outbox_stored {
    output_kind_t kind;
    int rule; /* an alert's rule_id_t, a dead letter's reason; -1: none, or unknown in an
               * untyped alert */
    int64_t offset;
    const char *json;
    const char *trace; /* "<traceparent><tracestate>", not terminated; NULL: none */
    size_t traceparent_len, tracestate_len;
    const char *id; /* left to the caller: the record's hash field */
} outbox_stored_t;

/* Reads a stored value; -1 when it is in neither form. */
int outbox_format_parse(const char *value, outbox_stored_t *out);

/* The stored trace context, checked again as on input: 1 when it has one. */
int outbox_format_trace(const outbox_stored_t *s, trace_context_t *out);

#endif
