/* dead_letter: copies a rejected message to dlq.topic. The headers are
 * ours and always UTF-8, plus the message's own W3C trace context; the key
 * and value are the input's own bytes, deliberately unchanged, so the
 * message can be fixed and sent again. */
#include "dead_letter.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

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

/* m's copy with its headers; the sanitized reason is left in headers. */
static int produce_copy(dead_letter_t *dl, const kafka_msg_t *m, dead_letter_reason_t reason,
                        const char *reason_text, const trace_context_t *trace,
                        dead_letter_headers_t *headers, void *record_opaque) {
    char errstr[512];
    const char *const *pairs = dead_letter_headers_build(headers, m, reason, reason_text, trace);
    if (kafka_io_produce(dl->io, dl->topic, m->key, m->key_len, m->value, m->value_len, pairs,
                         record_opaque, errstr, sizeof(errstr)) != 0) {
        log_error("dlq", "%s", errstr);
        return -1;
    }
    return 0;
}

int dead_letter_send(dead_letter_t *dl, const kafka_msg_t *m, dead_letter_reason_t reason,
                     const char *reason_text, void *record_opaque) {
    dead_letter_headers_t headers = {0};
    trace_context_t trace;
    int traced = trace_context_of_msg(m, &trace);
    if (produce_copy(dl, m, reason, reason_text, traced ? &trace : NULL, &headers,
                     record_opaque) != 0)
        return -1;
    metrics_add(&dl->metrics->dead_letters[reason], 1);
    log_sampled(dl, m, reason, headers.error);
    return 0;
}

void dead_letter_count(dead_letter_t *dl, const kafka_msg_t *m, dead_letter_reason_t reason,
                       const char *reason_text) {
    dead_letter_headers_t headers = {0};
    dead_letter_headers_build(&headers, m, reason, reason_text, NULL);
    metrics_add(&dl->metrics->dead_letters[reason], 1);
    log_sampled(dl, m, reason, headers.error);
}

/* ---- a dead letter kept as a record (output.guarantee=exactly_once) ------ */

static const char HEX[] = "0123456789abcdef";

static char *hex_encode(const void *bytes, size_t len) {
    const unsigned char *b = bytes;
    char *out = malloc(2 * len + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = HEX[b[i] >> 4];
        out[2 * i + 1] = HEX[b[i] & 15];
    }
    out[2 * len] = '\0';
    return out;
}

static int hex_digit(char c) {
    const char *p = c ? strchr(HEX, c) : NULL;
    return p ? (int)(p - HEX) : -1;
}

/* The bytes of a hex string (owned by the caller), or NULL when it is not
 * one or memory ran out. */
static unsigned char *hex_decode(const char *hex, size_t *len) {
    size_t n = strlen(hex);
    if (n % 2) return NULL;
    unsigned char *out = malloc(n / 2 + 1);
    for (size_t i = 0; out && i < n / 2; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    *len = n / 2;
    return out;
}

char *dead_letter_record_json(const kafka_msg_t *m, const char *reason_text) {
    char error[512];
    snprintf(error, sizeof(error), "%s", reason_text);
    utf8_sanitize(error);
    char *key = m->key ? hex_encode(m->key, m->key_len) : NULL;
    char *value = m->value ? hex_encode(m->value, m->value_len) : NULL;
    cJSON *root = cJSON_CreateObject();
    char *json = NULL;
    if (root && (key || !m->key) && (value || !m->value) &&
        cJSON_AddStringToObject(root, "error", error) &&
        (key ? cJSON_AddStringToObject(root, "key_hex", key) != NULL
             : cJSON_AddNullToObject(root, "key_hex") != NULL) &&
        (value ? cJSON_AddStringToObject(root, "value_hex", value) != NULL
               : cJSON_AddNullToObject(root, "value_hex") != NULL))
        json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    free(key);
    free(value);
    return json;
}

int dead_letter_send_record(dead_letter_t *dl, const char *json, const char *source_topic,
                            int32_t partition, int64_t offset, int reason,
                            const trace_context_t *trace, void *record_opaque) {
    cJSON *root = cJSON_Parse(json);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *key_hex = cJSON_GetObjectItemCaseSensitive(root, "key_hex");
    const cJSON *value_hex = cJSON_GetObjectItemCaseSensitive(root, "value_hex");
    size_t key_len = 0, value_len = 0;
    unsigned char *key = cJSON_IsString(key_hex) ? hex_decode(key_hex->valuestring, &key_len)
                                                 : NULL;
    unsigned char *value =
        cJSON_IsString(value_hex) ? hex_decode(value_hex->valuestring, &value_len) : NULL;
    int rc = -1;
    if (!cJSON_IsString(error) || (cJSON_IsString(key_hex) && !key) ||
        (cJSON_IsString(value_hex) ? !value : !cJSON_IsNull(value_hex)) || reason < 0 ||
        reason >= DEAD_LETTER_REASON_COUNT) {
        log_error("dlq", "%s [%d] offset %lld: unreadable dead letter in the outbox",
                  source_topic, (int)partition, (long long)offset);
    } else {
        kafka_msg_t m = {.topic = source_topic, .partition = partition, .offset = offset,
                         .key = key, .key_len = key_len, .value = value,
                         .value_len = value_len, .timestamp_ms = -1};
        dead_letter_headers_t headers = {0};
        rc = produce_copy(dl, &m, reason, error->valuestring, trace, &headers, record_opaque);
    }
    free(key);
    free(value);
    cJSON_Delete(root);
    return rc;
}

void dead_letter_destroy(dead_letter_t *dl) {
    if (!dl) return;
    log_suppressed(dl);
    free(dl->topic);
    free(dl);
}
