/* trace_context: W3C Trace Context level 1, section 3.2 (traceparent) and
 * 3.3 (tracestate), checked as a receiver must before passing them on. */
#include "trace_context.h"

#include <string.h>

static int is_lower_hex(const char *s, size_t n, int *all_zero) {
    *all_zero = 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
        if (c != '0') *all_zero = 0;
    }
    return 1;
}

/* version-traceid-parentid-flags: "00-<32 hex>-<16 hex>-<2 hex>"; a version
 * above 00 may go on after a '-', version ff is invalid. */
static int traceparent_valid(const char *s, size_t len) {
    int zero;
    if (len < 55 || len > TRACEPARENT_MAX) return 0;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-') return 0;
    if (!is_lower_hex(s, 2, &zero) || strncmp(s, "ff", 2) == 0) return 0;
    if (strncmp(s, "00", 2) == 0 ? len != 55 : len > 55 && s[55] != '-') return 0;
    if (!is_lower_hex(s + 3, 32, &zero) || zero) return 0;   /* trace-id */
    if (!is_lower_hex(s + 36, 16, &zero) || zero) return 0;  /* parent-id */
    if (!is_lower_hex(s + 53, 2, &zero)) return 0;           /* flags */
    for (size_t i = 55; i < len; i++)
        if (s[i] < 0x20 || s[i] > 0x7e) return 0;
    return 1;
}

/* Printable ASCII within the W3C limit; its list members are the
 * vendors' to judge. */
static int tracestate_valid(const char *s, size_t len) {
    if (len == 0 || len > TRACESTATE_MAX) return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] > 0x7e) return 0;
    return 1;
}

int trace_context_set(trace_context_t *out, const void *traceparent, size_t traceparent_len,
                      const void *tracestate, size_t tracestate_len) {
    out->traceparent[0] = '\0';
    out->tracestate[0] = '\0';
    if (!traceparent || !traceparent_valid(traceparent, traceparent_len)) return 0;
    memcpy(out->traceparent, traceparent, traceparent_len);
    out->traceparent[traceparent_len] = '\0';
    if (tracestate && tracestate_valid(tracestate, tracestate_len)) {
        memcpy(out->tracestate, tracestate, tracestate_len);
        out->tracestate[tracestate_len] = '\0';
    }
    return 1;
}

int trace_context_of_msg(const kafka_msg_t *msg, trace_context_t *out) {
    size_t parent_len = 0, state_len = 0;
    const void *parent = kafka_msg_header(msg, "traceparent", &parent_len);
    const void *state = parent ? kafka_msg_header(msg, "tracestate", &state_len) : NULL;
    return trace_context_set(out, parent, parent_len, state, state_len);
}
