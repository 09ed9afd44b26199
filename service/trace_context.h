/* trace_context: the W3C Trace Context a payment carries in its Kafka
 * headers (traceparent, and with it tracestate), as OpenTelemetry's
 * messaging conventions put it there.
 *
 * The service starts no spans of its own: it copies the payment's context,
 * unchanged, onto every record the payment causes (alerts, averages, totals,
 * late payments, dead letters), so a trace that began at the producer
 * reaches whoever acts on the alert. A traceparent that is not valid by the
 * W3C rules is not copied, and neither is its tracestate; a tracestate that
 * is not valid is dropped alone. Pure functions; no allocation. */
#ifndef FRAUD_TRACE_CONTEXT_H
#define FRAUD_TRACE_CONTEXT_H

#include <stddef.h>

#include "kafka_io.h"

/* Version 00 is 55 characters; a later version may append fields. */
#define TRACEPARENT_MAX 255
/* The W3C limit. */
#define TRACESTATE_MAX 512

typedef struct trace_context {
    char traceparent[TRACEPARENT_MAX + 1]; /* "": none */
    char tracestate[TRACESTATE_MAX + 1];   /* "": none */
} trace_context_t;

/* Checks and copies a context. tracestate may be NULL. Returns 1 when
 * traceparent is valid (*out holds it), else 0 (*out is empty). */
int trace_context_set(trace_context_t *out, const void *traceparent, size_t traceparent_len,
                      const void *tracestate, size_t tracestate_len);

/* The record's context from its last traceparent and tracestate headers:
 * 1 when it has a valid one. */
int trace_context_of_msg(const kafka_msg_t *msg, trace_context_t *out);

#endif
