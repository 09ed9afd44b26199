/* dead_letter: copies a rejected message to dlq.topic. The headers are
 * ours and always UTF-8, plus the message's own W3C trace context; the key
 * and value are the input's own bytes, deliberately unchanged, so the
 * message can be fixed and sent again. */
#include "dead_letter.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "record_headers.h"
#include "utf8.h"

struct dead_letter {
    char *topic;
    kafka_io_t *io;
    metrics_t *metrics;
    int64_t log_window_ms;
    int logged_in_window;
    uint64_t suppressed;
};

const char *dead_letter_reason_code(dead_letter_reason_t reason) {
    if (reason == DEAD_LETTER_CUMULATIVE_OVERFLOW) return "cumulative_overflow";
    if (reason == DEAD_LETTER_INVALID_RULE) return "invalid_rule";
    if (reason == DEAD_LETTER_TIMESTAMP_IN_FUTURE) return "timestamp_in_future";
    if (reason == DEAD_LETTER_TIMESTAMP_BEFORE_2000) return "timestamp_before_2000";
    return decode_reason_code((decode_reason_t)reason);
}

dead_letter_t *dead_letter_new(const char *topic, kafka_io_t *io, struct metrics *metrics) {
    dead_letter_t *dl = calloc(1, sizeof(*dl));
    if (!dl || !(dl->topic = strdup(topic))) {
        free(dl);
        return NULL;
    }
    dl->io = io;
    dl->metrics = metrics;
    return dl;
}

static void log_suppressed(dead_letter_t *dl) {
    if (dl->suppressed)
        log_warn("dlq", "%llu more dead letters were not logged",
                 (unsigned long long)dl->suppressed);
    dl->suppressed = 0;
}

static void log_sampled(dead_letter_t *dl, const kafka_msg_t *m, dead_letter_reason_t reason,
                        const char *reason_text) {
    int64_t now = clock_now_ms();
    if (now - dl->log_window_ms >= 1000) {
        log_suppressed(dl);
        dl->log_window_ms = now;
        dl->logged_in_window = 0;
    }
    if (dl->logged_in_window++ >= DEAD_LETTER_LOG_PER_SECOND) {
        dl->suppressed++;
        return;
    }
    log_warn("dlq", "%s [%d] offset %lld dead-lettered: %s (%s)", m->topic, (int)m->partition,
             (long long)m->offset, dead_letter_reason_code(reason), reason_text);
}

const char *const *dead_letter_headers_build(dead_letter_headers_t *h, const kafka_msg_t *m,
                                             dead_letter_reason_t reason,
                                             const char *reason_text,
                                             const trace_context_t *trace) {
    size_t n = 0;
    /* The reason may quote input (a rule record's setting name). */
    snprintf(h->error, sizeof(h->error), "%s", reason_text);
    utf8_sanitize(h->error);
    snprintf(h->partition, sizeof(h->partition), "%d", (int)m->partition);
    snprintf(h->offset, sizeof(h->offset), "%lld", (long long)m->offset);
    h->pairs[n++] = "fraud.dlq.reason";
    h->pairs[n++] = dead_letter_reason_code(reason);
    h->pairs[n++] = "fraud.dlq.error";
    h->pairs[n++] = h->error;
    h->pairs[n++] = "fraud.source.topic";
    h->pairs[n++] = m->topic;
    h->pairs[n++] = "fraud.source.partition";
    h->pairs[n++] = h->partition;
    h->pairs[n++] = "fraud.source.offset";
    h->pairs[n++] = h->offset;
    n = record_headers_add_trace(h->pairs, n, trace);
    h->pairs[n] = NULL;
    return h->pairs;
}

int dead_letter_send(dead_letter_t *dl, const kafka_msg_t *m, dead_letter_reason_t reason,
                     const char *reason_text, void *record_opaque) {
    char errstr[512];
    dead_letter_headers_t headers = {0};
    trace_context_t trace;
    int traced = trace_context_of_msg(m, &trace);
    const char *const *pairs =
        dead_letter_headers_build(&headers, m, reason, reason_text, traced ? &trace : NULL);
    if (kafka_io_produce(dl->io, dl->topic, m->key, m->key_len, m->value, m->value_len, pairs,
                         record_opaque, errstr, sizeof(errstr)) != 0) {
        log_error("dlq", "%s", errstr);
        return -1;
    }
    metrics_add(&dl->metrics->dead_letters[reason], 1);
    log_sampled(dl, m, reason, headers.error);
    return 0;
}

void dead_letter_destroy(dead_letter_t *dl) {
    if (!dl) return;
    log_suppressed(dl);
    free(dl->topic);
    free(dl);
}
