/* outbox_format: writing and reading a stored output record. */
#include "outbox_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "rules.h"

static const char KIND_CODES[OUTPUT_KIND_COUNT] = {'a', 'v', 't', 'l', 'e', 'd'};

int outbox_format_head(char *buf, size_t size, output_kind_t kind, int rule, int64_t offset,
                       const trace_context_t *trace) {
    int n = trace && trace->traceparent[0]
                ? snprintf(buf, size, "%c %d %lld t%zu,%zu %s%s ", KIND_CODES[kind], rule,
                           (long long)offset, strlen(trace->traceparent),
                           strlen(trace->tracestate), trace->traceparent, trace->tracestate)
                : snprintf(buf, size, "%c %d %lld ", KIND_CODES[kind], rule, (long long)offset);
    return n < 0 || (size_t)n >= size ? -1 : n;
}

/* A value written before records were typed: its kind from its fields, its
 * offset from its source. */
static void classify_untyped(outbox_stored_t *s) {
    cJSON *root = cJSON_Parse(s->json);
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(root, "rule");
    const cJSON *source = cJSON_GetObjectItemCaseSensitive(root, "source");
    const cJSON *offset = cJSON_GetObjectItemCaseSensitive(source, "offset");
    s->kind = cJSON_GetObjectItemCaseSensitive(root, "late_id")      ? OUTPUT_LATE
              : cJSON_GetObjectItemCaseSensitive(root, "average_id") ? OUTPUT_AVERAGE
              : cJSON_IsString(rule)                               ? OUTPUT_ALERT
                                                                   : OUTPUT_TOTAL;
    s->rule = cJSON_IsString(rule) ? rule_id(rule->valuestring) : -1;
    s->offset = cJSON_IsNumber(offset) ? (int64_t)offset->valuedouble : 0;
    cJSON_Delete(root);
}

/* "t<n>,<m> <n + m bytes> "; p is at the 't'. Returns what follows. */
static const char *parse_trace(const char *p, outbox_stored_t *s) {
    char *end;
    unsigned long long n = strtoull(p + 1, &end, 10), m;
    if (*end != ',' || n > TRACEPARENT_MAX) return NULL;
    m = strtoull(end + 1, &end, 10);
    if (*end != ' ' || m > TRACESTATE_MAX || strnlen(end + 1, n + m + 1) != n + m + 1 ||
        end[1 + n + m] != ' ')
        return NULL;
    s->trace = end + 1;
    s->traceparent_len = (size_t)n;
    s->tracestate_len = (size_t)m;
    return end + 1 + n + m + 1;
}

int outbox_format_parse(const char *value, outbox_stored_t *s) {
    const char *p = value;
    char *end;
    s->trace = NULL;
    s->traceparent_len = s->tracestate_len = 0;
    if (p[0] == '{') {
        s->json = p;
        classify_untyped(s);
        return 0;
    }
    const char *code = memchr(KIND_CODES, p[0], OUTPUT_KIND_COUNT);
    if (!code || p[1] != ' ') return -1;
    s->kind = (output_kind_t)(code - KIND_CODES);
    long rule = strtol(p + 2, &end, 10);
    /* A dead letter's reason is checked where it is produced. */
    if (*end != ' ' || rule < -1 || (s->kind != OUTPUT_DEAD_LETTER && rule >= RULE_TYPE_COUNT) ||
        rule > 1000)
        return -1;
    s->rule = (int)rule;
    s->offset = strtoll(end + 1, &end, 10);
    if (*end != ' ') return -1;
    s->json = end + 1;
    if (s->json[0] == 't' && !(s->json = parse_trace(s->json, s))) return -1;
    return s->kind == OUTPUT_ALERT && s->rule < 0 ? -1 : 0;
}

int outbox_format_trace(const outbox_stored_t *s, trace_context_t *out) {
    return s->trace ? trace_context_set(out, s->trace, s->traceparent_len,
                                        s->trace + s->traceparent_len, s->tracestate_len)
                    : 0;
}
