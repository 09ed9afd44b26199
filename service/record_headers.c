/* record_headers: CloudEvents binary mode and W3C trace context on Kafka. */
#include "record_headers.h"

#include <stdio.h>
#include <time.h>

void record_headers_rfc3339(int64_t ms, char *buf, size_t bufsize) {
    time_t seconds = (time_t)(ms / 1000);
    int millis = (int)(ms % 1000);
    if (millis < 0) { /* before 1970: floor, so the fraction stays positive */
        seconds -= 1;
        millis += 1000;
    }
    struct tm tm;
    char date[32];
    if (!gmtime_r(&seconds, &tm) || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(buf, bufsize, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(buf, bufsize, "%s.%03dZ", date, millis);
}

size_t record_headers_add_trace(const char **pairs, size_t n, const trace_context_t *trace) {
    if (!trace || !trace->traceparent[0]) return n;
    pairs[n++] = "traceparent";
    pairs[n++] = trace->traceparent;
    if (trace->tracestate[0]) {
        pairs[n++] = "tracestate";
        pairs[n++] = trace->tracestate;
    }
    return n;
}

const char *const *record_headers_build(record_headers_t *h, const cloudevent_t *ce,
                                        const trace_context_t *trace) {
    size_t n = 0;
    if (ce && ce->source) {
        h->pairs[n++] = "ce_specversion";
        h->pairs[n++] = "1.0";
        h->pairs[n++] = "ce_id";
        h->pairs[n++] = ce->id;
        h->pairs[n++] = "ce_type";
        h->pairs[n++] = ce->type;
        h->pairs[n++] = "ce_source";
        h->pairs[n++] = ce->source;
        if (ce->time_ms >= 0) {
            record_headers_rfc3339(ce->time_ms, h->time, sizeof(h->time));
            h->pairs[n++] = "ce_time";
            h->pairs[n++] = h->time;
        }
        h->pairs[n++] = "content-type";
        h->pairs[n++] = "application/json";
    }
    n = record_headers_add_trace(h->pairs, n, trace);
    h->pairs[n] = NULL;
    return n ? h->pairs : NULL;
}
