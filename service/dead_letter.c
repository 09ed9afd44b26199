/* dead_letter: copies a rejected message to dlq.topic. The headers are
 * ours and always UTF-8; the key and value are the input's own bytes,
 * deliberately unchanged, so the message can be fixed and sent again. */
#include "dead_letter.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
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

int dead_letter_send(dead_letter_t *dl, const kafka_msg_t *m, dead_letter_reason_t reason,
                     const char *reason_text, void *record_opaque) {
    char partition[16], offset[24], errstr[512], error[512];
    /* The reason may quote input (a rule record's setting name). */
    snprintf(error, sizeof(error), "%s", reason_text);
    utf8_sanitize(error);
    snprintf(partition, sizeof(partition), "%d", (int)m->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)m->offset);
    const char *headers[] = {"fraud.dlq.reason", dead_letter_reason_code(reason),
                             "fraud.dlq.error", error,
                             "fraud.source.topic", m->topic,
                             "fraud.source.partition", partition,
                             "fraud.source.offset", offset,
                             NULL};
    if (kafka_io_produce(dl->io, dl->topic, m->key, m->key_len, m->value, m->value_len, headers,
                         record_opaque, errstr, sizeof(errstr)) != 0) {
        log_error("dlq", "%s", errstr);
        return -1;
    }
    metrics_add(&dl->metrics->dead_letters[reason], 1);
    log_sampled(dl, m, reason, error);
    return 0;
}

void dead_letter_destroy(dead_letter_t *dl) {
    if (!dl) return;
    log_suppressed(dl);
    free(dl->topic);
    free(dl);
}
