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

bool rule_id_is_valid(const char *id, size_t len) {
    if (len == 0 || len > RULE_ID_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
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
                                 const fixed_params_t *p, int64_t *elapsed_ms) {
    bool fires = false;
    /* Out of order: which payment it follows is not known, so it leaves
     * any pattern in progress as it is. */
    if (t->at_ms < t->latest_ms) return false;
    if (st->small_at_ms > 0 && amount > p->large_amount) {
        int64_t elapsed = t->at_ms - st->small_at_ms;
        /* A processing clock stepping back must not open the window wider. */
        if (elapsed < 0) elapsed = 0;
        if (elapsed <= p->small_window_ms) {
            *elapsed_ms = elapsed;
            fires = true;
        }
    }
    /* Whatever this payment is, it ends any pattern in progress. */
    st->small_at_ms = amount < p->small_amount ? (t->at_ms > 0 ? t->at_ms : 1) : 0;
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

const rule_instance_t *rules_find_instance(const rule_set_t *rules, const char *id) {
    for (uint32_t i = 0; i < rules->instance_count; i++)
        if (strcmp(rules->instances[i].id, id) == 0) return &rules->instances[i];
    return NULL;
}

/* The instance a user's state belongs to, if it is still in force. */
static bool instance_in_force(const rule_set_t *rules, const instance_state_t *is) {
    const rule_instance_t *inst = rules_find_instance(rules, is->id);
    return inst && inst->incarnation == is->incarnation && inst->type == is->type;
}

/* The fixed rules' own state, for a built-in instance that is off. */
static bool forget_fixed(rule_state_t *st, int type) {
    bool changed = false;
    switch (type) {
    case RULE_CUMULATIVE_LIMIT:
        changed = st->cumulative_alerted != 0;
        st->cumulative_alerted = 0;
        break;
    case RULE_SMALL_THEN_LARGE:
        changed = st->small_at_ms != 0;
        st->small_at_ms = 0;
        break;
    case RULE_COUNT_AVERAGE:
        changed = st->average_n || st->average_sum;
        st->average_n = 0;
        st->average_sum = 0;
        break;
    case RULE_VELOCITY:
        changed = st->velocity_len != 0;
        velocity_free(st);
        break;
    }
    return changed;
}

bool rule_state_prune(rule_state_t *st, const rule_set_t *rules) {
    bool changed = false;
    for (int type = RULE_CUMULATIVE_LIMIT; type < RULE_COUNT; type++)
        if (!rules->enabled[type]) changed |= forget_fixed(st, type);
    int64_t ring_max = 2 * rules->builtin.velocity_max_count;
    if (rules->enabled[RULE_VELOCITY] && st->velocity_len > ring_max) {
        velocity_drop_oldest(st, (uint16_t)(st->velocity_len - ring_max));
        changed = true;
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < st->instance_len; i++) {
        if (instance_in_force(rules, &st->instances[i])) {
            st->instances[kept++] = st->instances[i];
        } else {
            instance_state_free(&st->instances[i]);
            changed = true;
        }
    }
    st->instance_len = kept;
    if (kept == 0) {
        free(st->instances);
        st->instances = NULL;
    }
    return changed;
}

bool rule_state_is_empty(const rule_state_t *st) {
    return !st->cumulative_alerted && !st->small_at_ms && !st->average_n && !st->average_sum &&
           !st->velocity_len && !st->instance_len;
}

rule_state_t *rule_state_move_to_heap(rule_state_t *st) {
    rule_state_t *copy = malloc(sizeof(*copy));
    if (!copy) return NULL;
    *copy = *st;
    st->velocity_ms = NULL;
    st->velocity_len = st->velocity_cap = 0;
    st->instances = NULL;
    st->instance_len = 0;
    return copy;
}

void rule_state_destroy(rule_state_t *st) {
    if (!st) return;
    rule_state_free(st);
    free(st);
}

void instance_state_free(instance_state_t *is) {
    aggregate_state_free(&is->aggregate);
    rule_state_destroy(is->fixed);
    is->fixed = NULL;
}

void rule_state_free(rule_state_t *st) {
    velocity_free(st);
    for (uint32_t i = 0; i < st->instance_len; i++) instance_state_free(&st->instances[i]);
    free(st->instances);
    st->instances = NULL;
    st->instance_len = 0;
}

/* The user's state of an instance, made when it has none. NULL when out of
 * memory. */
static instance_state_t *instance_state_of(rule_state_t *st, const rule_instance_t *inst) {
    for (uint32_t i = 0; i < st->instance_len; i++)
        if (strcmp(st->instances[i].id, inst->id) == 0) return &st->instances[i];
    instance_state_t *grown =
        realloc(st->instances, (st->instance_len + 1) * sizeof(*st->instances));
    if (!grown) return NULL;
    st->instances = grown;
    instance_state_t *is = &st->instances[st->instance_len++];
    memset(is, 0, sizeof(*is));
    memcpy(is->id, inst->id, sizeof(is->id));
    is->incarnation = inst->incarnation;
    is->type = inst->type;
    return is;
}

/* One fixed type's rule on the payment, with parameters p and state st.
 * 1 when it fires (hit filled), 0 when not, -1 when out of memory. */
static int evaluate_fixed(int type, const fixed_params_t *p, rule_state_t *st,
                          bool has_previous, decimal_t previous, decimal_t amount, decimal_t cum,
                          const rule_time_t *t, rule_hit_t *hit) {
    switch (type) {
    case RULE_AMOUNT_JUMP:
        return rule_amount_jump_fires(has_previous, previous, amount, p->jump_threshold,
                                      p->jump_direction, &hit->diff);
    case RULE_CUMULATIVE_LIMIT:
        return rule_cumulative_limit_fires(st, cum, p->cumulative_limit);
    case RULE_SMALL_THEN_LARGE:
        return !t->late && rule_small_then_large_fires(st, amount, t, p, &hit->elapsed_ms);
    case RULE_COUNT_AVERAGE:
        return rule_count_average_fires(st, amount, p->average_count, &hit->average, &hit->sum,
                                        &hit->count);
    case RULE_VELOCITY:
        return t->late ? 0
                       : rule_velocity_fires(st, t, p->velocity_max_count, p->velocity_window_ms,
                                             &hit->in_window);
    }
    return 0;
}

/* A named instance of a fixed type keeps a rule state of its own. */
static int evaluate_named_fixed(const rule_instance_t *inst, instance_state_t *is,
                                bool has_previous, decimal_t previous, decimal_t amount,
                                decimal_t cum, const rule_time_t *t, rule_hit_t *hit) {
    rule_state_t scratch = {0};
    rule_state_t *own = is->fixed ? is->fixed : &scratch;
    int fires = evaluate_fixed(inst->type, &inst->fixed, own, has_previous, previous, amount,
                               cum, t, hit);
    if (fires >= 0 && own == &scratch && !rule_state_is_empty(&scratch) &&
        !(is->fixed = rule_state_move_to_heap(&scratch)))
        fires = -1;
    else if (own != &scratch && rule_state_is_empty(own)) { /* it remembers nothing now */
        rule_state_destroy(own);
        is->fixed = NULL;
    }
    rule_state_free(&scratch);
    return fires;
}

static int evaluate_instances(const rule_set_t *r, rule_state_t *st, bool has_previous,
                              decimal_t previous, decimal_t amount, decimal_t cum,
                              const rule_time_t *t, rule_hit_t *hits, int n,
                              uint64_t *dropped) {
    for (uint32_t i = 0; i < r->instance_count; i++) {
        const rule_instance_t *inst = &r->instances[i];
        int fires;
        if (t->late && (inst->type == RULE_AGGREGATE || inst->type == RULE_SMALL_THEN_LARGE ||
                        inst->type == RULE_VELOCITY))
            continue; /* a window rule: a late payment is in none of its windows */
        instance_state_t *is = instance_state_of(st, inst);
        if (!is) return -1;
        hits[n] = (rule_hit_t){.rule = (rule_id_t)inst->type, .instance = (int)i};
        if (inst->type == RULE_AGGREGATE) {
            aggregate_outcome_t out;
            fires = aggregate_observe(&inst->aggregate, inst->paused, &is->aggregate, amount,
                                      t->at_ms, t->latest_ms - t->slack_ms, &out);
            *dropped += out.dropped;
            hits[n].value = out.value;
            hits[n].in_window = out.in_window;
        } else {
            fires = evaluate_named_fixed(inst, is, has_previous, previous, amount, cum, t,
                                         &hits[n]);
        }
        if (fires < 0) return -1;
        if (fires && !inst->paused) n++;
    }
    return n;
}

/* An instance that remembers nothing for the user (amount_jump never does)
 * keeps no entry: most users then need no rule state at all. */
static void drop_empty_instances(rule_state_t *st) {
    uint32_t kept = 0;
    for (uint32_t i = 0; i < st->instance_len; i++) {
        instance_state_t *is = &st->instances[i];
        if (is->fixed || !aggregate_state_is_empty(&is->aggregate)) st->instances[kept++] = *is;
        else instance_state_free(is);
    }
    st->instance_len = kept;
    if (kept == 0) {
        free(st->instances);
        st->instances = NULL;
    }
}

void rules_count_active(const rule_set_t *r, int active[RULE_TYPE_COUNT]) {
    for (int i = 0; i < RULE_TYPE_COUNT; i++) active[i] = 0;
    for (int i = 0; i < RULE_COUNT; i++)
        active[i] = r->enabled[i] && r->state[i] == RULE_ACTIVE;
    for (uint32_t i = 0; i < r->instance_count; i++)
        if (r->instances[i].type >= 0 && r->instances[i].type < RULE_TYPE_COUNT)
            active[r->instances[i].type] += !r->instances[i].paused;
}

int rules_evaluate(const rule_set_t *r, rule_state_t *st, bool has_previous,
                   decimal_t previous, decimal_t amount, decimal_t cum, const rule_time_t *t,
                   rule_hit_t hits[RULE_HITS_MAX], uint64_t *dropped) {
    int n = 0;
    rule_state_prune(st, r);
    for (int type = 0; type < RULE_COUNT; type++) {
        if (!r->enabled[type]) continue;
        hits[n] = (rule_hit_t){.rule = (rule_id_t)type, .instance = -1};
        int fires = evaluate_fixed(type, &r->builtin, st, has_previous, previous, amount, cum,
                                   t, &hits[n]);
        if (fires < 0) return -1;
        /* A paused rule ran, so its state moved on; its hit goes. */
        if (fires && r->state[type] == RULE_ACTIVE) n++;
    }
    n = evaluate_instances(r, st, has_previous, previous, amount, cum, t, hits, n, dropped);
    drop_empty_instances(st);
    return n;
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
            decimal_format(r->builtin.jump_threshold, a, sizeof(a));
            n = snprintf(buf + len, size - len, "%s%s(threshold=%s direction=%s)", sep, NAMES[i],
                         a, r->builtin.jump_direction == JUMP_BOTH ? "both" : "up");
        } else if (i == RULE_CUMULATIVE_LIMIT) {
            decimal_format(r->builtin.cumulative_limit, a, sizeof(a));
            n = snprintf(buf + len, size - len, "%s%s(limit=%s)", sep, NAMES[i], a);
        } else if (i == RULE_SMALL_THEN_LARGE) {
            decimal_format(r->builtin.small_amount, a, sizeof(a));
            decimal_format(r->builtin.large_amount, b, sizeof(b));
            n = snprintf(buf + len, size - len, "%s%s(small=%s large=%s window.ms=%lld)", sep,
                         NAMES[i], a, b, (long long)r->builtin.small_window_ms);
        } else if (i == RULE_COUNT_AVERAGE) {
            n = snprintf(buf + len, size - len, "%s%s(count=%lld)", sep, NAMES[i],
                         (long long)r->builtin.average_count);
        } else {
            n = snprintf(buf + len, size - len, "%s%s(max.count=%lld window.ms=%lld)", sep,
                         NAMES[i], (long long)r->builtin.velocity_max_count,
                         (long long)r->builtin.velocity_window_ms);
        }
        if (n < 0) break;
        len += (size_t)n;
    }
    for (uint32_t i = 0; i < r->instance_count && len < size; i++) {
        const rule_instance_t *inst = &r->instances[i];
        int n;
        if (inst->type == RULE_AGGREGATE) {
            const aggregate_rule_t *g = &inst->aggregate;
            decimal_format(g->limit, a, sizeof(a));
            n = snprintf(buf + len, size - len, " %s(aggregate %s %s %s window.ms=%lld%s)",
                         inst->id, aggregate_function_name(g->function),
                         aggregate_operator_name(g->op), a, (long long)g->window_ms,
                         inst->paused ? " paused" : "");
        } else {
            n = snprintf(buf + len, size - len, " %s(%s%s)", inst->id,
                         rule_name((rule_id_t)inst->type), inst->paused ? " paused" : "");
        }
        if (n < 0) break;
        len += (size_t)n;
    }
}
