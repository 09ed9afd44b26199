/* record_headers: the Kafka headers of the records the service writes.
 *
 * Two kinds, both optional: the payment's W3C trace context (traceparent,
 * tracestate), copied whenever the payment had one; and, with
 * output.cloudevents=true, the CloudEvents 1.0 Kafka protocol binding in
 * binary mode (ce_specversion, ce_id, ce_type, ce_source, ce_time and
 * content-type), which leaves the JSON value as it is. The header values
 * point into the record_headers_t and into what the caller passed; both
 * must outlive the produce call. */
#ifndef FRAUD_RECORD_HEADERS_H
#define FRAUD_RECORD_HEADERS_H

#include <stddef.h>
#include <stdint.h>

#include "trace_context.h"

#define CLOUDEVENTS_TYPE_MAX 64

typedef struct record_headers {
    char time[40];
    const char *pairs[2 * 8 + 1]; /* name, value, ..., NULL */
} record_headers_t;

/* What a record is, for CloudEvents. */
typedef struct cloudevent {
    const char *source; /* ce_source; NULL: CloudEvents off */
    const char *id;     /* ce_id: the record's id */
    const char *type;   /* ce_type, e.g. fraud.alert.amount_jump */
    int64_t time_ms;    /* ce_time; -1: the record has no time of its own */
} cloudevent_t;

/* Fills h; returns its NULL-terminated pairs, or NULL when the record gets
 * no header at all. ce and trace may be NULL. */
const char *const *record_headers_build(record_headers_t *h, const cloudevent_t *ce,
                                        const trace_context_t *trace);

/* Appends trace's traceparent and tracestate (when it has them) as name,
 * value pairs at pairs[n], which has room for 4 more; returns the new n. */
size_t record_headers_add_trace(const char **pairs, size_t n, const trace_context_t *trace);

/* Formats ms since the epoch as RFC 3339 in UTC with milliseconds
 * ("2026-11-26T03:01:05.123Z"). */
void record_headers_rfc3339(int64_t ms, char *buf, size_t bufsize);

#endif
