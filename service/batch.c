/* batch: decode, attach, apply. The order inside a batch is the order of
 * the input: a user's payments arrive in offset order on one partition, and
 * are applied in that order. */
#include "batch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "clock.h"
#include "event_time.h"
#include "log.h"
#include "trace_context.h"

typedef struct batch_item {
    kafka_msg_t msg; /* the batch's until released */
    dead_letter_reason_t reason;
    char reason_text[192];
    payment_t payment;
    bool erase;           /* a tombstone: erase payment.user_id's state */
    int64_t event_ms;     /* event_time_of() the payment; -1: unknown */
    cache_entry_t *entry; /* borrowed from the cache for this batch */
} batch_item_t;

struct batch {
    batch_item_t *items;
    size_t count, cap;
    size_t max_bytes;
    decode_limits_t limits;
    cache_entry_t **misses;
    long dead_letters;
    time_policy_t time;
    int64_t late_logged_at_ms; /* late payments are logged at most every 10 s */
    uint64_t late_unlogged;
};

#define LATE_LOG_INTERVAL_MS 10000

batch_t *batch_new(const config_t *cfg) {
    batch_t *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->cap = (size_t)cfg->batch_max_messages;
    b->max_bytes = (size_t)cfg->batch_max_bytes;
    b->limits = (decode_limits_t){.max_message_bytes = (size_t)cfg->input_max_message_bytes,
                                  .max_user_bytes = (size_t)cfg->input_max_user_id_bytes,
                                  .max_json_depth = (int)cfg->input_max_json_depth};
    b->time = (time_policy_t){.clock = time_clock_parse(cfg->time_characteristic),
                              .max_out_of_orderness_ms = cfg->time_max_out_of_orderness_ms,
                              .max_future_ms = cfg->time_max_future_ms};
    b->items = calloc(b->cap, sizeof(*b->items));
    b->misses = calloc(b->cap, sizeof(*b->misses));
    if (!b->items || !b->misses) {
        batch_destroy(b);
        return NULL;
    }
    return b;
}

void batch_destroy(batch_t *b) {
    if (!b) return;
    batch_release(b);
    free(b->items);
    free(b->misses);
    free(b);
}

size_t batch_count(const batch_t *b) { return b->count; }

void batch_gather(batch_t *b, kafka_io_t *io, int first_wait_ms) {
    int timeout = first_wait_ms;
    size_t bytes = 0;
    while (b->count < b->cap && bytes < b->max_bytes) {
        batch_item_t *it = &b->items[b->count];
        if (!kafka_io_poll(io, timeout, &it->msg)) break;
        timeout = 0; /* take what is already fetched, do not wait for more */
        bytes += it->msg.value_len + it->msg.key_len;
        b->count++;
    }
}

void batch_release(batch_t *b) {
    for (size_t i = 0; i < b->count; i++) kafka_msg_release(&b->items[i].msg);
    b->count = 0;
}

size_t batch_discard_partitions(batch_t *b, const int32_t *partitions, size_t count) {
    size_t kept = 0, before = b->count;
    for (size_t i = 0; i < b->count; i++) {
        int lost = 0;
        for (size_t k = 0; k < count && !lost; k++) lost = b->items[i].msg.partition == partitions[k];
        if (lost) kafka_msg_release(&b->items[i].msg);
        else b->items[kept++] = b->items[i];
    }
    b->count = kept;
    return before - kept;
}

/* In event time, a payment whose time cannot be believed is not applied. */
static void check_event_time(batch_t *b, batch_item_t *it, int64_t now) {
    if (b->time.clock != CLOCK_EVENT || it->event_ms < 0) return;
    switch (event_time_check(&b->time, it->event_ms, now)) {
    case EVENT_TIME_OK: return;
    case EVENT_TIME_IN_FUTURE:
        it->reason = DEAD_LETTER_TIMESTAMP_IN_FUTURE;
        snprintf(it->reason_text, sizeof(it->reason_text),
                 "event time %lld is %lld ms ahead of the service's clock (time.max.future.ms=%lld)",
                 (long long)it->event_ms, (long long)(it->event_ms - now),
                 (long long)b->time.max_future_ms);
        return;
    case EVENT_TIME_BEFORE_2000:
        it->reason = DEAD_LETTER_TIMESTAMP_BEFORE_2000;
        snprintf(it->reason_text, sizeof(it->reason_text),
                 "event time %lld is before 2000-01-01", (long long)it->event_ms);
        return;
    }
}

static void decode_all(batch_t *b, partitions_t *ps) {
    int64_t now = clock_now_ms();
    partitions_batch_begin(ps);
    for (size_t i = 0; i < b->count; i++) {
        batch_item_t *it = &b->items[i];
        const kafka_msg_t *m = &it->msg;
        it->entry = NULL;
        /* No value at all (not an empty one): a tombstone, Kafka's delete. */
        it->erase = m->value == NULL;
        it->reason = it->erase ? decode_erasure(m->key, m->key_len, &b->limits, &it->payment,
                                                it->reason_text, sizeof(it->reason_text))
                               : decode_payment(m->key, m->key_len, m->value, m->value_len,
                                                &b->limits, &it->payment, it->reason_text,
                                                sizeof(it->reason_text));
        if (it->reason == DECODE_OK && !it->erase) {
            it->event_ms = event_time_of(it->payment.timestamp_ms, m->timestamp_ms);
            check_event_time(b, it, now);
        }
        partitions_batch_note(ps, m->partition, m->offset);
    }
}

typedef struct load_args {
    store_t *store;
    cache_entry_t **misses;
    size_t count;
} load_args_t;

static int load_users(void *arg, char *errstr, size_t errstr_size) {
    load_args_t *a = arg;
    return store_load_users(a->store, a->misses, a->count, clock_now_ms(), errstr, errstr_size);
}

/* Finds or creates each user's cache entry; the ones not cached are loaded
 * from Redis together, in one pipelined round trip. */
static int attach_user_state(batch_t *b, const batch_env_t *env) {
    size_t miss_count = 0;
    for (size_t i = 0; i < b->count; i++) {
        batch_item_t *it = &b->items[i];
        const payment_t *pay = &it->payment;
        int32_t partition = it->msg.partition;
        if (it->reason != DECODE_OK ||
            partitions_already_applied(env->partitions, partition, it->msg.offset))
            continue;
        cache_entry_t *e = state_cache_get(env->cache, partition, pay->user_id, pay->user_len);
        if (!e) {
            e = state_cache_put(env->cache, pay->user_id, pay->user_len, partition);
            if (!e) {
                log_error("state", "out of memory caching user state");
                return -1;
            }
            b->misses[miss_count++] = e;
        }
        it->entry = e;
    }
    if (miss_count == 0) return 0;
    if (!env->store) { /* memory backend: a user not cached has no state */
        for (size_t i = 0; i < miss_count; i++) b->misses[i]->flags |= CACHE_ENTRY_LOADED;
        return 0;
    }
    load_args_t args = {.store = env->store, .misses = b->misses, .count = miss_count};
    return redis_retry_run(env->retry, load_users, &args, "loading user state");
}

/* With Redis, the caller awaits dead letters before the atomic step; with
 * the memory backend, a ticket holds the payment's offset back instead;
 * with exactly_once, the dead letter waits in the outbox, for the batch's
 * transaction. */
static int dead_letter(batch_t *b, const batch_env_t *env, const batch_item_t *it) {
    void *ticket = NULL;
    if (config_exactly_once(env->cfg)) {
        if (outbox_queue_dead_letter(env->outbox, &it->msg, it->reason, it->reason_text) != 0)
            return -1;
        metrics_add(&env->metrics->events[EVENT_DEAD_LETTER], 1);
        return 0;
    }
    if (!env->store && !(ticket = outbox_dead_letter_ticket(env->outbox, it->msg.partition)))
        return -1;
    if (dead_letter_send(env->dead_letters, &it->msg, it->reason, it->reason_text, ticket) != 0) {
        if (ticket) outbox_ticket_cancel(ticket);
        return -1;
    }
    b->dead_letters++;
    metrics_add(&env->metrics->events[EVENT_DEAD_LETTER], 1);
    return 0;
}

/* Where the records a payment causes come from, with the payment's trace
 * context (read from its headers only when it causes a record). */
static output_origin_t origin_of(const batch_item_t *it, int64_t event_time_ms,
                                 int64_t detected_at_ms, trace_context_t *trace) {
    const kafka_msg_t *m = &it->msg;
    return (output_origin_t){.topic = m->topic, .partition = m->partition, .offset = m->offset,
                             .event_time_ms = event_time_ms, .detected_at_ms = detected_at_ms,
                             .trace = trace_context_of_msg(m, trace) ? trace : NULL};
}

/* Turns what the rules decided into output records: alerts and averages. */
static int queue_rule_outputs(const batch_t *b, const batch_env_t *env, const batch_item_t *it,
                              const rule_set_t *rules, const rule_hit_t *hits, int hit_count,
                              decimal_t previous, int64_t now) {
    const payment_t *pay = &it->payment;
    const kafka_msg_t *m = &it->msg;
    const user_state_t *state = &it->entry->state;
    int64_t event_time = it->event_ms >= 0 ? it->event_ms : now;
    trace_context_t trace;
    output_origin_t origin = {0};
    if (hit_count > 0) origin = origin_of(it, event_time, now, &trace);
    for (int i = 0; i < hit_count; i++) {
        const rule_hit_t *h = &hits[i];
        char *json;
        output_kind_t kind = OUTPUT_ALERT;
        /* A built-in rule is named by its type and has the set's parameters. */
        const char *rule_id = rule_name(h->rule);
        const fixed_params_t *fixed = &rules->builtin;
        const aggregate_rule_t *aggregate = NULL;
        if (h->instance >= 0) {
            const rule_instance_t *inst = &rules->instances[h->instance];
            rule_id = inst->id;
            fixed = &inst->fixed;
            aggregate = &inst->aggregate;
        }
        if (h->rule == RULE_COUNT_AVERAGE) {
            average_event_t avg = {
                .rule_id = rule_id, .fixed = fixed, .user_id = pay->user_id,
                .average = h->average, .sum = h->sum, .count = h->count,
                .source_topic = m->topic, .source_partition = m->partition,
                .source_offset = m->offset, .detected_at_ms = now,
            };
            json = average_encode_new(&avg);
            kind = OUTPUT_AVERAGE;
        } else {
            alert_t alert = {
                .rule = rule_name(h->rule), .rule_id = rule_id,
                .fixed = h->rule == RULE_AGGREGATE ? NULL : fixed,
                .aggregate = h->rule == RULE_AGGREGATE ? aggregate : NULL,
                .aggregate_value = h->value, .user_id = pay->user_id,
                .amount = pay->amount, .previous_amount = previous, .diff = h->diff,
                .threshold = fixed->jump_threshold, .limit = fixed->cumulative_limit,
                .elapsed_ms = h->elapsed_ms, .payments_in_window = h->in_window,
                .cumulative_amount = state->cum, .event_count = state->count,
                .source_topic = m->topic, .source_partition = m->partition,
                .source_offset = m->offset, .event_id = pay->event_id,
                .event_time_ms = event_time, .clock = time_clock_name(b->time.clock),
                .detected_at_ms = now,
            };
            json = alert_encode_new(&alert);
        }
        if (outbox_queue(env->outbox, kind, h->rule, rule_id, &origin,
                         pay->user_id, json) != 0)
            return -1;
    }
    return 0;
}

/* Runs the rules, keeping a user's rule state on the heap only while it
 * holds something: most users of most rule sets remember nothing beyond
 * prev, cum and count. Returns the hits, or -1 when out of memory. */
static int evaluate_rules(const batch_env_t *env, cache_entry_t *e, const rule_set_t *rules,
                          decimal_t amount, decimal_t cum, const rule_time_t *t,
                          rule_hit_t *hits) {
    rule_state_t scratch = {0};
    rule_state_t *rs = e->state.rules ? e->state.rules : &scratch;
    uint64_t dropped = 0;
    int hit_count = rules_evaluate(rules, rs, e->state.count > 0, e->state.prev, amount, cum,
                                   t, hits, &dropped);
    if (dropped) metrics_add(&env->metrics->aggregate_payments_dropped, dropped);
    if (hit_count >= 0 && rs == &scratch && !rule_state_is_empty(&scratch)) {
        e->state.rules = rule_state_move_to_heap(&scratch);
        if (!e->state.rules) hit_count = -1;
    } else if (rs != &scratch && rule_state_is_empty(rs)) {
        rule_state_destroy(rs);
        e->state.rules = NULL;
    }
    rule_state_free(&scratch);
    return hit_count;
}

/* A late payment still counts in the user's totals; it is reported, to
 * late.topic through the outbox (so exactly once with its state), or else
 * counted and logged, sampled. */
static int report_late(batch_t *b, const batch_env_t *env, const batch_item_t *it,
                       const rule_time_t *t, int64_t lateness, int64_t now) {
    const kafka_msg_t *m = &it->msg;
    metrics_add(&env->metrics->late_payments, 1);
    if (env->cfg->late_topic[0]) {
        late_payment_t late = {
            .user_id = it->payment.user_id, .amount = it->payment.amount,
            .event_id = it->payment.event_id, .event_time_ms = t->at_ms,
            .user_event_time_ms = t->latest_ms, .lateness_ms = lateness,
            .max_out_of_orderness_ms = b->time.max_out_of_orderness_ms,
            .source_topic = m->topic, .source_partition = m->partition,
            .source_offset = m->offset, .detected_at_ms = now,
        };
        trace_context_t trace;
        output_origin_t origin = origin_of(it, t->at_ms, now, &trace);
        return outbox_queue(env->outbox, OUTPUT_LATE, -1, NULL, &origin, it->payment.user_id,
                            late_payment_encode_new(&late));
    }
    if (b->late_logged_at_ms && now - b->late_logged_at_ms < LATE_LOG_INTERVAL_MS) {
        b->late_unlogged++;
        return 0;
    }
    log_warn("time", "late payment %s [%d] offset %lld: %lld ms older than its user's latest "
             "event time (time.max.out.of.orderness.ms=%lld); counted in the totals, skipped "
             "by window rules; %llu more since the last line (set late.topic to get them all)",
             m->topic, (int)m->partition, (long long)m->offset, (long long)lateness,
             (long long)b->time.max_out_of_orderness_ms,
             (unsigned long long)b->late_unlogged);
    b->late_logged_at_ms = now;
    b->late_unlogged = 0;
    return 0;
}

static int apply_payment(batch_t *b, const batch_env_t *env, batch_item_t *it,
                         const rule_set_t *rules) {
    cache_entry_t *e = it->entry;
    const payment_t *pay = &it->payment;
    int64_t now = clock_now_ms();
    decimal_t cum;
    rule_hit_t hits[RULE_HITS_MAX];

    ttl_on_read(env->ttl, e, now); /* expired state may read as absent */
    if (!decimal_add(e->state.cum, pay->amount, &cum)) {
        it->reason = DEAD_LETTER_CUMULATIVE_OVERFLOW;
        snprintf(it->reason_text, sizeof(it->reason_text),
                 "cumulative amount of the user would exceed the exact range");
        return dead_letter(b, env, it);
    }
    decimal_t previous = e->state.prev;
    int64_t lateness;
    rule_time_t t = event_time_place(&b->time, it->event_ms, now, &e->state.event_ms, &lateness);
    int hit_count = evaluate_rules(env, e, rules, pay->amount, cum, &t, hits);
    if (hit_count < 0) {
        log_error("state", "out of memory evaluating rules");
        return -1;
    }
    e->state.prev = pay->amount;
    e->state.cum = cum;
    e->state.count++;
    ttl_on_write(env->ttl, e, now);
    state_cache_mark_dirty(env->cache, e);
    metrics_add(&env->metrics->events[EVENT_VALID], 1);
    if (t.late && report_late(b, env, it, &t, lateness, now) != 0) return -1;
    return queue_rule_outputs(b, env, it, rules, hits, hit_count, previous, now);
}

/* A tombstone keyed by a user: everything the service holds about the user
 * goes, in order with the user's payments, and the step that moves the
 * checkpoint past it deletes the user's Redis hash. Logged without the
 * user's history. */
static void apply_erasure(const batch_env_t *env, const batch_item_t *it) {
    cache_entry_t *e = it->entry;
    const kafka_msg_t *m = &it->msg;
    user_state_reset(&e->state);
    e->expires_at_ms = 0;
    e->flags |= CACHE_ENTRY_ERASED;
    e->flags &= (uint8_t)~(CACHE_ENTRY_RULE_FIELDS | CACHE_ENTRY_REDIS_TTL);
    state_cache_mark_dirty(env->cache, e);
    metrics_add(&env->metrics->users_erased, 1);
    log_info("state", "user %s erased by the tombstone at %s [%d] offset %lld",
             it->payment.user_id, m->topic, (int)m->partition, (long long)m->offset);
}

/* totals.topic: each user changed by the batch, once, with the state the
 * batch left, under the id of the user's last payment in it. */
static int queue_running_totals(batch_t *b, const batch_env_t *env) {
    int rc = 0;
    if (!env->cfg->totals_topic[0]) return 0;
    for (size_t i = b->count; i-- > 0 && rc == 0;) {
        batch_item_t *it = &b->items[i];
        cache_entry_t *e = it->entry;
        if (!e || it->reason != DECODE_OK || (e->flags & CACHE_ENTRY_TOTALS_QUEUED)) continue;
        e->flags |= CACHE_ENTRY_TOTALS_QUEUED;
        trace_context_t trace;
        /* A total has no time of its own: the state it shows is the batch's. */
        output_origin_t origin = origin_of(it, clock_now_ms(), -1, &trace);
        /* Erased, and nothing since: the changelog forgets the user too. */
        rc = e->state.count == 0
                 ? outbox_queue(env->outbox, OUTPUT_TOTAL_ERASED, -1, NULL, &origin,
                                it->payment.user_id, totals_erased_encode_new(it->payment.user_id))
                 : outbox_queue(env->outbox, OUTPUT_TOTAL, -1, NULL, &origin, it->payment.user_id,
                                totals_encode_new(it->payment.user_id, e->state.cum,
                                                  e->state.count));
    }
    for (size_t i = 0; i < b->count; i++)
        if (b->items[i].entry) b->items[i].entry->flags &= (uint8_t)~CACHE_ENTRY_TOTALS_QUEUED;
    return rc;
}

long batch_apply(batch_t *b, const batch_env_t *env, const rule_set_t *rules) {
    b->dead_letters = 0;
    decode_all(b, env->partitions);
    if (attach_user_state(b, env) != 0) return -1;
    for (size_t i = 0; i < b->count; i++) {
        batch_item_t *it = &b->items[i];
        if (partitions_already_applied(env->partitions, it->msg.partition, it->msg.offset)) {
            metrics_add(&env->metrics->events[EVENT_REPLAYED], 1);
            continue;
        }
        int rc = 0;
        if (it->reason != DECODE_OK) rc = dead_letter(b, env, it);
        else if (it->erase) apply_erasure(env, it);
        else rc = apply_payment(b, env, it, rules);
        if (rc != 0) return -1;
    }
    if (queue_running_totals(b, env) != 0) return -1;
    return b->dead_letters;
}
