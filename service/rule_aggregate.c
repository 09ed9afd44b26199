#include "rule_aggregate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const FUNCTIONS[AGG_FUNCTION_COUNT] = {"sum", "count", "avg", "min", "max"};
static const char *const OPERATORS[AGG_OP_COUNT] = {">", ">=", "<", "<=", "==", "!="};

const char *aggregate_function_name(int function) {
    return function >= 0 && function < AGG_FUNCTION_COUNT ? FUNCTIONS[function] : NULL;
}

const char *aggregate_operator_name(int op) {
    return op >= 0 && op < AGG_OP_COUNT ? OPERATORS[op] : NULL;
}

bool aggregate_compare(int op, decimal_t value, decimal_t limit) {
    switch (op) {
    case AGG_GT: return value > limit;
    case AGG_GE: return value >= limit;
    case AGG_LT: return value < limit;
    case AGG_LE: return value <= limit;
    case AGG_EQ: return value == limit;
    case AGG_NE: return value != limit;
    }
    return false;
}

static void drop_oldest(aggregate_state_t *st, uint32_t drop) {
    if (drop == 0) return;
    st->len -= drop;
    memmove(st->at_ms, st->at_ms + drop, st->len * sizeof(*st->at_ms));
    memmove(st->amounts, st->amounts + drop, st->len * sizeof(*st->amounts));
}

/* How many payments are older than bound (the list is sorted). */
static uint32_t count_before(const aggregate_state_t *st, int64_t bound) {
    uint32_t lo = 0, hi = st->len;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (st->at_ms[mid] < bound) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int reserve(aggregate_state_t *st, uint32_t want) {
    if (st->cap >= want) return 0;
    uint32_t cap = st->cap ? st->cap : 8;
    while (cap < want) cap *= 2;
    int64_t *at = realloc(st->at_ms, cap * sizeof(*at));
    if (!at) return -1;
    st->at_ms = at;
    decimal_t *amounts = realloc(st->amounts, cap * sizeof(*amounts));
    if (!amounts) return -1;
    st->amounts = amounts;
    st->cap = cap;
    return 0;
}

/* sum / n rounded half to even at the fourth place: sum is already in
 * ten-thousandths and never negative. */
static decimal_t average_half_even(decimal_t sum, int64_t n) {
    decimal_t q = sum / n, r = sum % n;
    if (2 * r > n || (2 * r == n && (q & 1))) q++;
    return q;
}

/* The function over payments [from, to] of the list. */
static decimal_t window_value(int function, const aggregate_state_t *st, uint32_t from,
                              uint32_t to) {
    int64_t n = (int64_t)(to - from) + 1;
    decimal_t sum = 0, min = st->amounts[from], max = st->amounts[from];
    for (uint32_t i = from; i <= to; i++) {
        decimal_t a = st->amounts[i];
        /* The window's payments are among those in the user's running
         * total, which is kept below DECIMAL_MAX: this cannot saturate. */
        if (!decimal_add(sum, a, &sum)) sum = DECIMAL_MAX;
        if (a < min) min = a;
        if (a > max) max = a;
    }
    switch (function) {
    case AGG_SUM: return sum;
    case AGG_COUNT: return n * DECIMAL_SCALE;
    case AGG_AVG: return average_half_even(sum, n);
    case AGG_MIN: return min;
    default: return max;
    }
}

int aggregate_observe(const aggregate_rule_t *rule, bool paused, aggregate_state_t *st,
                      decimal_t amount, int64_t at_ms, int64_t settled_ms,
                      aggregate_outcome_t *out) {
    memset(out, 0, sizeof(*out));
    drop_oldest(st, count_before(st, settled_ms - rule->window_ms));
    if (st->len >= rule->max_events) {
        out->dropped = st->len - (uint32_t)rule->max_events + 1;
        drop_oldest(st, out->dropped);
    }
    if (reserve(st, st->len + 1) != 0) return -1;
    /* In order, the payment goes last; out of order, after its equals. */
    uint32_t at = st->len;
    while (at > 0 && st->at_ms[at - 1] > at_ms) at--;
    memmove(st->at_ms + at + 1, st->at_ms + at, (st->len - at) * sizeof(*st->at_ms));
    memmove(st->amounts + at + 1, st->amounts + at, (st->len - at) * sizeof(*st->amounts));
    st->at_ms[at] = at_ms;
    st->amounts[at] = amount;
    st->len++;

    uint32_t from = count_before(st, at_ms - rule->window_ms);
    out->in_window = (int64_t)(at - from) + 1;
    out->value = window_value(rule->function, st, from, at);

    /* A cooldown that no payment still to come can fall within is over. */
    if (st->alerted_ms &&
        (rule->cooldown_ms == 0 || st->alerted_ms + rule->cooldown_ms <= settled_ms))
        st->alerted_ms = 0;
    if (paused || !aggregate_compare(rule->op, out->value, rule->limit)) return 0;
    if (rule->cooldown_ms > 0) {
        int64_t since = at_ms - st->alerted_ms;
        if (st->alerted_ms && since < rule->cooldown_ms && -since < rule->cooldown_ms) return 0;
        if (at_ms > st->alerted_ms) st->alerted_ms = at_ms > 0 ? at_ms : 1;
    }
    return 1;
}

bool aggregate_state_is_empty(const aggregate_state_t *st) {
    return st->len == 0 && st->alerted_ms == 0;
}

void aggregate_state_free(aggregate_state_t *st) {
    free(st->at_ms);
    free(st->amounts);
    st->at_ms = NULL;
    st->amounts = NULL;
    st->len = st->cap = 0;
    st->alerted_ms = 0;
}

int aggregate_state_restore(aggregate_state_t *st, int64_t at_ms, decimal_t amount) {
    if (st->len >= AGGREGATE_MAX_EVENTS || reserve(st, st->len + 1) != 0) return -1;
    uint32_t i = st->len;
    while (i > 0 && st->at_ms[i - 1] > at_ms) {
        st->at_ms[i] = st->at_ms[i - 1];
        st->amounts[i] = st->amounts[i - 1];
        i--;
    }
    st->at_ms[i] = at_ms;
    st->amounts[i] = amount;
    st->len++;
    return 0;
}
