#include "rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const NAMES[RULE_TYPE_COUNT] = {
    [RULE_AMOUNT_JUMP] = "amount_jump",
    [RULE_CUMULATIVE_LIMIT] = "cumulative_limit",
    [RULE_SMALL_THEN_LARGE] = "small_then_large",
    [RULE_COUNT_AVERAGE] = "count_average",
    [RULE_VELOCITY] = "velocity",
    [RULE_AGGREGATE] = "aggregate",
};

const char *rule_name(rule_id_t id) {
    return (unsigned)id < RULE_TYPE_COUNT ? NAMES[id] : NULL;
}

int rule_id(const char *name) {
    for (int i = 0; i < RULE_TYPE_COUNT; i++)
        if (strcmp(NAMES[i], name) == 0) return i;
    return -1;
}

bool rule_amount_jump_fires(bool has_previous, decimal_t previous, decimal_t amount,
                            decimal_t threshold, int direction, decimal_t *diff) {
    decimal_t d;
    if (!has_previous) return false;
    /* Both lie in 0..1e12, so the difference cannot overflow. */
    if (!decimal_sub(amount, previous, &d)) return false;
    *diff = d;
    if (direction == JUMP_BOTH && d < 0) d = -d;
    return d >= threshold;
}

bool rule_cumulative_limit_fires(rule_state_t *st, decimal_t cum, decimal_t limit) {
    if (cum < limit || st->cumulative_alerted == limit) return false;
    st->cumulative_alerted = limit;
    return true;
}

bool rule_small_then_large_fires(rule_state_t *st, decimal_t amount, const rule_time_t *t,
                                 const rule_set_t *rules, int64_t *elapsed_ms) {
    bool fires = false;
    /* Out of order: which payment it follows is not known, so it leaves
     * any pattern in progress as it is. */
    if (t->at_ms < t->latest_ms) return false;
    if (st->small_at_ms > 0 && amount > rules->large_amount) {
        int64_t elapsed = t->at_ms - st->small_at_ms;
        /* A processing clock stepping back must not open the window wider. */
        if (elapsed < 0) elapsed = 0;
        if (elapsed <= rules->small_window_ms) {
            *elapsed_ms = elapsed;
            fires = true;
        }
    }
    /* Whatever this payment is, it ends any pattern in progress. */
    st->small_at_ms = amount < rules->small_amount ? (t->at_ms > 0 ? t->at_ms : 1) : 0;
    return fires;
}

bool rule_count_average_fires(rule_state_t *st, decimal_t amount, int64_t count,
                              int64_t *average, decimal_t *sum, int64_t *n) {
    decimal_t total;
    /* Each amount is at most 1e12 and count at most 1e6: no overflow. */
    if (!decimal_add(st->average_sum, amount, &total)) total = st->average_sum;
    st->average_sum = total;
    st->average_n++;
    if (st->average_n < count) return false;
    *sum = st->average_sum;
    *n = st->average_n;
    *average = (int64_t)(st->average_sum / DECIMAL_SCALE / st->average_n);
    st->average_sum = 0;
    st->average_n = 0;
    return true;
}

static void velocity_drop_oldest(rule_state_t *st, uint16_t drop) {
    if (drop == 0) return;
    st->velocity_len = (uint16_t)(st->velocity_len - drop);
    memmove(st->velocity_ms, st->velocity_ms + drop,
            st->velocity_len * sizeof(*st->velocity_ms));
}

/* How many times of the ring are below `bound` (the ring is sorted). */
static uint16_t velocity_count_before(const rule_state_t *st, int64_t bound) {
    uint16_t n = 0;
    while (n < st->velocity_len && st->velocity_ms[n] < bound) n++;
    return n;
}

int rule_velocity_fires(rule_state_t *st, const rule_time_t *t, int64_t max_count,
                        int64_t window_ms, int64_t *in_window) {
    /* A payment still to come lies at or after latest - slack, so its
     * window starts no earlier than this. */
    int64_t settled = t->latest_ms - t->slack_ms;
    velocity_drop_oldest(st, velocity_count_before(st, settled - window_ms));
    /* In order, this payment goes last; out of order, after its equals. */
    uint16_t at = st->velocity_len;
    while (at > 0 && st->velocity_ms[at - 1] > t->at_ms) at--;
    uint16_t from = velocity_count_before(st, t->at_ms - window_ms);
    *in_window = at - from + 1;
    int fires = *in_window > max_count;
    /* Room for this payment within the bound; a ring loaded under other
     * settings may hold more than that. */
    int64_t ring_max = t->slack_ms > 0 ? 2 * max_count : max_count;
    if (st->velocity_len >= ring_max) {
        uint16_t drop = (uint16_t)(st->velocity_len - ring_max + 1);
        velocity_drop_oldest(st, drop);
        at = at > drop ? (uint16_t)(at - drop) : 0;
    }
    if (st->velocity_cap < ring_max) {
        int64_t *grown = realloc(st->velocity_ms, (size_t)ring_max * sizeof(*grown));
        if (!grown) return -1;
        st->velocity_ms = grown;
        st->velocity_cap = (uint16_t)ring_max;
    }
    memmove(st->velocity_ms + at + 1, st->velocity_ms + at,
            (size_t)(st->velocity_len - at) * sizeof(*st->velocity_ms));
    st->velocity_ms[at] = t->at_ms;
    st->velocity_len++;
    /* Of the times at or before settled, a payment to come needs only the
     * newest max_count: with them all in its window it fires anyway. */
    uint16_t old = velocity_count_before(st, settled + 1);
    if (old > max_count) velocity_drop_oldest(st, (uint16_t)(old - max_count));
    return fires;
}

static void velocity_free(rule_state_t *st) {
    free(st->velocity_ms);
    st->velocity_ms = NULL;
    st->velocity_len = 0;
    st->velocity_cap = 0;
}

const aggregate_rule_t *rules_find_aggregate(const rule_set_t *rules, const char *id) {
    for (uint32_t i = 0; i < rules->aggregate_count; i++)
        if (strcmp(rules->aggregates[i].id, id) == 0) return &rules->aggregates[i];
    return NULL;
}

/* The instance a state belongs to, if it is still in force. */
static bool aggregate_in_force(const rule_set_t *rules, const aggregate_state_t *as) {
    const aggregate_rule_t *rule = rules_find_aggregate(rules, as->id);
    return rule && rule->incarnation == as->incarnation;
}

bool rule_state_prune(rule_state_t *st, const rule_set_t *rules) {
    bool changed = false;
    if (!rules->enabled[RULE_CUMULATIVE_LIMIT] && st->cumulative_alerted) {
        st->cumulative_alerted = 0;
        changed = true;
    }
    if (!rules->enabled[RULE_SMALL_THEN_LARGE] && st->small_at_ms) {
        st->small_at_ms = 0;
        changed = true;
    }
    if (!rules->enabled[RULE_COUNT_AVERAGE] && (st->average_n || st->average_sum)) {
        st->average_n = 0;
        st->average_sum = 0;
        changed = true;
    }
    if (!rules->enabled[RULE_VELOCITY]) {
        if (st->velocity_len) changed = true;
        velocity_free(st);
    } else if (st->velocity_len > 2 * rules->velocity_max_count) {
        velocity_drop_oldest(st, (uint16_t)(st->velocity_len - 2 * rules->velocity_max_count));
        changed = true;
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < st->aggregate_len; i++) {
        if (aggregate_in_force(rules, &st->aggregates[i])) {
            st->aggregates[kept++] = st->aggregates[i];
        } else {
            aggregate_state_free(&st->aggregates[i]);
            changed = true;
        }
    }
    st->aggregate_len = kept;
    if (kept == 0) {
        free(st->aggregates);
        st->aggregates = NULL;
    }
    return changed;
}

bool rule_state_is_empty(const rule_state_t *st) {
    return !st->cumulative_alerted && !st->small_at_ms && !st->average_n && !st->average_sum &&
           !st->velocity_len && !st->aggregate_len;
}

rule_state_t *rule_state_move_to_heap(rule_state_t *st) {
    rule_state_t *copy = malloc(sizeof(*copy));
    if (!copy) return NULL;
    *copy = *st;
    st->velocity_ms = NULL;
    st->velocity_len = st->velocity_cap = 0;
    st->aggregates = NULL;
    st->aggregate_len = 0;
    return copy;
}

void rule_state_destroy(rule_state_t *st) {
    if (!st) return;
    rule_state_free(st);
    free(st);
}

void rule_state_free(rule_state_t *st) {
    velocity_free(st);
    aggregate_states_destroy(st->aggregates, st->aggregate_len);
    st->aggregates = NULL;
    st->aggregate_len = 0;
}

/* The user's state of an instance, made when it has none. NULL when out of
 * memory. */
static aggregate_state_t *aggregate_state_of(rule_state_t *st, const aggregate_rule_t *rule) {
    for (uint32_t i = 0; i < st->aggregate_len; i++)
        if (strcmp(st->aggregates[i].id, rule->id) == 0) return &st->aggregates[i];
    aggregate_state_t *grown =
        realloc(st->aggregates, (st->aggregate_len + 1) * sizeof(*st->aggregates));
    if (!grown) return NULL;
    st->aggregates = grown;
    aggregate_state_t *as = &st->aggregates[st->aggregate_len++];
    memset(as, 0, sizeof(*as));
    memcpy(as->id, rule->id, sizeof(as->id));
    as->incarnation = rule->incarnation;
    return as;
}

static int evaluate_aggregates(const rule_set_t *r, rule_state_t *st, decimal_t amount,
                               const rule_time_t *t, rule_hit_t *hits, int n,
                               uint64_t *dropped) {
    for (uint32_t i = 0; i < r->aggregate_count; i++) {
        const aggregate_rule_t *rule = &r->aggregates[i];
        aggregate_outcome_t out;
        aggregate_state_t *as = aggregate_state_of(st, rule);
        if (!as) return -1;
        int fires = aggregate_observe(rule, as, amount, t->at_ms, t->latest_ms - t->slack_ms,
                                      &out);
        if (fires < 0) return -1;
        *dropped += out.dropped;
        if (!fires) continue;
        hits[n].rule = RULE_AGGREGATE;
        hits[n].aggregate = i;
        hits[n].value = out.value;
        hits[n].in_window = out.in_window;
        n++;
    }
    return n;
}

void rules_count_active(const rule_set_t *r, int active[RULE_TYPE_COUNT]) {
    for (int i = 0; i < RULE_TYPE_COUNT; i++) active[i] = 0;
    for (int i = 0; i < RULE_COUNT; i++)
        active[i] = r->enabled[i] && r->state[i] == RULE_ACTIVE;
    for (uint32_t i = 0; i < r->aggregate_count; i++)
        active[RULE_AGGREGATE] += !r->aggregates[i].paused;
}

int rules_evaluate(const rule_set_t *r, rule_state_t *st, bool has_previous,
                   decimal_t previous, decimal_t amount, decimal_t cum, const rule_time_t *t,
                   rule_hit_t hits[RULE_HITS_MAX], uint64_t *dropped) {
    int n = 0;
    rule_state_prune(st, r);
    memset(hits, 0, RULE_HITS_MAX * sizeof(*hits));
    if (r->enabled[RULE_AMOUNT_JUMP] &&
        rule_amount_jump_fires(has_previous, previous, amount, r->jump_threshold,
                               r->jump_direction, &hits[n].diff))
        hits[n++].rule = RULE_AMOUNT_JUMP;
    if (r->enabled[RULE_CUMULATIVE_LIMIT] &&
        rule_cumulative_limit_fires(st, cum, r->cumulative_limit))
        hits[n++].rule = RULE_CUMULATIVE_LIMIT;
    if (r->enabled[RULE_SMALL_THEN_LARGE] && !t->late &&
        rule_small_then_large_fires(st, amount, t, r, &hits[n].elapsed_ms))
        hits[n++].rule = RULE_SMALL_THEN_LARGE;
    if (r->enabled[RULE_COUNT_AVERAGE] &&
        rule_count_average_fires(st, amount, r->average_count, &hits[n].average, &hits[n].sum,
                                 &hits[n].count))
        hits[n++].rule = RULE_COUNT_AVERAGE;
    if (r->enabled[RULE_VELOCITY] && !t->late) {
        int fires = rule_velocity_fires(st, t, r->velocity_max_count,
                                        r->velocity_window_ms, &hits[n].in_window);
        if (fires < 0) return -1;
        if (fires) hits[n++].rule = RULE_VELOCITY;
    }
    /* A paused fixed rule ran above, so its state moved on; its hit goes. */
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (r->state[hits[i].rule] == RULE_ACTIVE) hits[kept++] = hits[i];
    memset(hits + kept, 0, (size_t)(n - kept) * sizeof(*hits));
    if (t->late) return kept;
    return evaluate_aggregates(r, st, amount, t, hits, kept, dropped);
}

void rules_describe(const rule_set_t *r, char *buf, size_t size) {
    char a[DECIMAL_TEXT_MAX], b[DECIMAL_TEXT_MAX];
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < RULE_COUNT && len < size; i++) {
        int n = 0;
        const char *sep = len ? " " : "";
        if (r->enabled[i] && r->state[i] == RULE_PAUSED) {
            n = snprintf(buf + len, size - len, "%s%s(paused)", sep, NAMES[i]);
        } else if (!r->enabled[i]) {
            n = snprintf(buf + len, size - len, "%s%s(off)", sep, NAMES[i]);
        } else if (i == RULE_AMOUNT_JUMP) {
            decimal_format(r->jump_threshold, a, sizeof(a));
            n = snprintf(buf + len, size - len, "%s%s(threshold=%s direction=%s)", sep, NAMES[i],
                         a, r->jump_direction == JUMP_BOTH ? "both" : "up");
        } else if (i == RULE_CUMULATIVE_LIMIT) {
            decimal_format(r->cumulative_limit, a, sizeof(a));
            n = snprintf(buf + len, size - len, "%s%s(limit=%s)", sep, NAMES[i], a);
        } else if (i == RULE_SMALL_THEN_LARGE) {
            decimal_format(r->small_amount, a, sizeof(a));
            decimal_format(r->large_amount, b, sizeof(b));
            n = snprintf(buf + len, size - len, "%s%s(small=%s large=%s window.ms=%lld)", sep,
                         NAMES[i], a, b, (long long)r->small_window_ms);
        } else if (i == RULE_COUNT_AVERAGE) {
            n = snprintf(buf + len, size - len, "%s%s(count=%lld)", sep, NAMES[i],
                         (long long)r->average_count);
        } else {
            n = snprintf(buf + len, size - len, "%s%s(max.count=%lld window.ms=%lld)", sep,
                         NAMES[i], (long long)r->velocity_max_count,
                         (long long)r->velocity_window_ms);
        }
        if (n < 0) break;
        len += (size_t)n;
    }
    for (uint32_t i = 0; i < r->aggregate_count && len < size; i++) {
        const aggregate_rule_t *g = &r->aggregates[i];
        decimal_format(g->limit, a, sizeof(a));
        int n = snprintf(buf + len, size - len, " %s(aggregate %s %s %s window.ms=%lld%s)", g->id,
                         aggregate_function_name(g->function), aggregate_operator_name(g->op),
                         a, (long long)g->window_ms, g->paused ? " paused" : "");
        if (n < 0) break;
        len += (size_t)n;
    }
}
