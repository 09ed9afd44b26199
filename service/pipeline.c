/* pipeline: the batch loop and the rebalance callback.
 *
 * Ordering is the whole point of this file. Dead letters are acknowledged
 * before the batch's atomic Redis step; the step writes each partition's
 * users, its new checkpoint and its alerts (to an outbox) all or nothing;
 * alerts are produced from it afterwards and removed once acknowledged;
 * offsets are stored last. A message below its partition's checkpoint has
 * been applied already and is skipped, so a replay after a crash or a
 * rebalance changes nothing. See ARCHITECTURE.md. */
#include "pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "alert.h"
#include "kafka_io.h"
#include "log.h"
#include "metrics.h"
#include "rule_control.h"
#include "rules.h"
#include "state_cache.h"
#include "state_ttl.h"
#include "store_redis.h"
#include "utf8.h"

#define POLL_TIMEOUT_MS 100
#define BACKOFF_START_MS 100
#define BACKOFF_MAX_MS 5000
#define EXPIRY_SCAN_MAX 1000 /* entries examined per cleanup pass */
#define QUERY_LOCK_WAIT_MS 2000
#define STALL_LIMIT_MS 120000 /* liveness fails when the loop stops this long */
#define DLQ_LOG_PER_SECOND 5
#define RULES_TOPIC_CATCH_UP_MS 30000

/* An assigned partition and the checkpoint last seen in Redis. */
typedef struct owned_partition {
    int32_t partition;
    int64_t checkpoint; /* next offset to apply; -1: none yet */
} owned_partition_t;

/* A partition's share of the batch in hand. */
typedef struct batch_partition {
    int32_t partition;
    int64_t next_offset;
    int refused; /* its Redis step met another owner's checkpoint */
} batch_partition_t;

/* An alert produced from the outbox, until Kafka acknowledges it and it
 * leaves the outbox. Owned by librdkafka's record, then by acked[]. */
typedef struct inflight_alert {
    int32_t partition;
    int64_t event_time_ms;
    char id[];
} inflight_alert_t;

/* An alert decided in this batch, waiting for the atomic step. */
typedef struct pending_alert {
    int32_t partition;
    char id[320];
    char *json;    /* owned */
    char *user_id; /* owned: the record key */
    int64_t event_time_ms;
} pending_alert_t;

typedef struct batch_item {
    rd_kafka_message_t *msg; /* owned until the batch is released */
    decode_reason_t reason;
    char reason_text[192];
    payment_t payment;
    cache_entry_t *entry; /* borrowed from the cache for this batch */
} batch_item_t;

struct pipeline {
    const config_t *cfg;
    kafka_io_t *io;
    store_t *store;
    state_cache_t *cache;
    batch_item_t *items;
    size_t item_count, item_cap;
    cache_entry_t **misses;
    owned_partition_t *owned;
    size_t owned_count, owned_cap;
    batch_partition_t *batch_parts;
    size_t batch_part_count;
    pending_alert_t *pending;
    size_t pending_count, pending_cap;
    store_step_t *steps;          /* one per batch partition */
    cache_entry_t **step_users;   /* dirty users grouped by partition */
    store_alert_t *step_alerts;   /* pending alerts grouped by partition */
    inflight_alert_t **acked;     /* delivered, still to remove from the outbox */
    size_t acked_count, acked_cap;
    size_t dead_letters_in_batch;
    ttl_policy_t ttl;
    decode_limits_t limits;
    int64_t next_cleanup_ms;
    volatile sig_atomic_t *stop;
    int fatal;
    pipeline_stats_t stats;

    /* Shared with the HTTP thread. The lock guards the cache and the owned
     * partitions; the consumer holds it while it processes a batch or a
     * rebalance, a state query while it reads them. */
    pthread_mutex_t lock;
    metrics_t *metrics;
    store_t *query_store;        /* the HTTP thread's own Redis connection */
    atomic_int_least64_t heartbeat_ms;
    atomic_int fatal_seen;
    int64_t started_ms;
    char instance[128];          /* hostname:pid, named in state answers */
    int64_t dlq_log_window_ms;   /* dead-letter log sampling */
    int dlq_logged_in_window;
    uint64_t dlq_suppressed;

    /* The rules in force: the config's rule.* keys (re-read on SIGHUP) with
     * the control topic's updates on top. Consumer thread only. */
    rule_set_t base_rules;
    rule_set_t rules;
    rule_overrides_t overrides;
    rule_control_t *control;
    volatile sig_atomic_t *reload_requested;
    pipeline_rules_loader_fn load_rules;
    void *load_rules_ctx;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int stop_requested(const pipeline_t *p) { return p->stop && *p->stop; }

/* ---- partitions ---------------------------------------------------------- */

static owned_partition_t *find_owned(pipeline_t *p, int32_t partition) {
    for (size_t i = 0; i < p->owned_count; i++)
        if (p->owned[i].partition == partition) return &p->owned[i];
    return NULL;
}

static int add_owned(pipeline_t *p, int32_t partition, int64_t checkpoint) {
    owned_partition_t *o = find_owned(p, partition);
    if (!o) {
        if (p->owned_count == p->owned_cap) {
            size_t cap = p->owned_cap ? p->owned_cap * 2 : 16;
            owned_partition_t *grown = realloc(p->owned, cap * sizeof(*grown));
            if (!grown) return -1;
            p->owned = grown;
            p->owned_cap = cap;
        }
        o = &p->owned[p->owned_count++];
        o->partition = partition;
    }
    o->checkpoint = checkpoint;
    return 0;
}

static void remove_owned(pipeline_t *p, int32_t partition) {
    owned_partition_t *o = find_owned(p, partition);
    if (o) *o = p->owned[--p->owned_count];
}

static batch_partition_t *batch_part(pipeline_t *p, int32_t partition) {
    for (size_t i = 0; i < p->batch_part_count; i++)
        if (p->batch_parts[i].partition == partition) return &p->batch_parts[i];
    return NULL;
}

/* ---- decode and load -------------------------------------------------- */

static void decode_batch(pipeline_t *p) {
    p->batch_part_count = 0;
    for (size_t i = 0; i < p->item_count; i++) {
        batch_item_t *it = &p->items[i];
        const rd_kafka_message_t *m = it->msg;
        it->entry = NULL;
        it->reason = decode_payment(m->key, m->key_len, m->payload, m->len, &p->limits,
                                    &it->payment, it->reason_text, sizeof(it->reason_text));
        batch_partition_t *bp = batch_part(p, m->partition);
        if (!bp) {
            /* items are at most item_cap, so are their partitions */
            bp = &p->batch_parts[p->batch_part_count++];
            bp->partition = m->partition;
            bp->next_offset = -1;
            bp->refused = 0;
        }
        if (m->offset + 1 > bp->next_offset) bp->next_offset = m->offset + 1;
    }
}

/* A message below its partition's checkpoint is already in Redis: an
 * earlier owner, or this one before a crash, applied it. */
static int already_applied(pipeline_t *p, const rd_kafka_message_t *m) {
    const owned_partition_t *o = find_owned(p, m->partition);
    return o && o->checkpoint >= 0 && m->offset < o->checkpoint;
}

/* Pauses (or resumes) fetching for every assigned partition, so nothing
 * piles up while Redis is away. */
static void set_consumption_paused(pipeline_t *p, int paused) {
    rd_kafka_topic_partition_list_t *assignment = NULL;
    if (rd_kafka_assignment(p->io->consumer, &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    rd_kafka_resp_err_t err = paused ? rd_kafka_pause_partitions(p->io->consumer, assignment)
                                     : rd_kafka_resume_partitions(p->io->consumer, assignment);
    if (err) log_warn("kafka", "%s partitions: %s", paused ? "pause" : "resume",
                      rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(assignment);
}

/* Retries a Redis step with capped exponential backoff, consumption paused
 * meanwhile. Logs once when Redis goes away and once when it is back, never
 * per attempt. Gives up only when a stop is requested. */
typedef int (*redis_step_fn)(pipeline_t *p, void *arg, char *errstr, size_t errstr_size);

static int retry_redis_step(pipeline_t *p, redis_step_fn step, void *arg, const char *what) {
    char errstr[512];
    int64_t backoff = BACKOFF_START_MS;
    int failing = 0;
    for (;;) {
        atomic_store(&p->heartbeat_ms, now_ms());
        if (step(p, arg, errstr, sizeof(errstr)) == 0) {
            atomic_store(&p->metrics->redis_up, 1);
            if (failing) {
                log_info("redis", "%s succeeded again; resuming consumption", what);
                set_consumption_paused(p, 0);
            }
            return 0;
        }
        atomic_store(&p->metrics->redis_up, 0);
        if (!failing) {
            log_error("redis", "%s failed: %s; consumption paused, retrying with backoff "
                      "up to %d ms, nothing is committed meanwhile", what, errstr,
                      BACKOFF_MAX_MS);
            set_consumption_paused(p, 1);
        }
        failing = 1;
        if (stop_requested(p)) {
            log_error("redis", "stop requested while Redis is unavailable: the batch is not "
                      "persisted and will be processed again after restart");
            return -1;
        }
        sleep_ms(backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
}

static int load_step(pipeline_t *p, void *arg, char *errstr, size_t errstr_size) {
    return store_load_users(p->store, p->misses, *(size_t *)arg, now_ms(), errstr,
                            errstr_size);
}

/* Finds or creates each user's cache entry; the ones not cached are loaded
 * from Redis together, in one pipelined round trip. */
static int attach_user_state(pipeline_t *p) {
    size_t miss_count = 0;
    for (size_t i = 0; i < p->item_count; i++) {
        batch_item_t *it = &p->items[i];
        if (it->reason != DECODE_OK || already_applied(p, it->msg)) continue;
        const payment_t *pay = &it->payment;
        int32_t partition = it->msg->partition;
        cache_entry_t *e = state_cache_get(p->cache, partition, pay->user_id, pay->user_len);
        if (!e) {
            e = state_cache_put(p->cache, pay->user_id, pay->user_len, partition);
            if (!e) {
                log_error("state", "out of memory caching user state");
                return -1;
            }
            p->misses[miss_count++] = e;
        }
        it->entry = e;
    }
    if (miss_count == 0) return 0;
    if (!p->store) { /* memory backend: a user not cached has no state */
        for (size_t i = 0; i < miss_count; i++) p->misses[i]->flags |= CACHE_ENTRY_LOADED;
        return 0;
    }
    return retry_redis_step(p, load_step, &miss_count, "loading user state");
}

/* ---- apply ------------------------------------------------------------ */

/* One line per dead letter, but at most DLQ_LOG_PER_SECOND a second: a
 * flood of bad input must not become a flood of logs. */
static void log_dead_letter_sampled(pipeline_t *p, const rd_kafka_message_t *m,
                                    decode_reason_t reason, const char *reason_text) {
    int64_t now = now_ms();
    if (now - p->dlq_log_window_ms >= 1000) {
        if (p->dlq_suppressed)
            log_warn("dlq", "%llu more dead letters were not logged",
                     (unsigned long long)p->dlq_suppressed);
        p->dlq_log_window_ms = now;
        p->dlq_logged_in_window = 0;
        p->dlq_suppressed = 0;
    }
    if (p->dlq_logged_in_window++ >= DLQ_LOG_PER_SECOND) {
        p->dlq_suppressed++;
        return;
    }
    log_warn("dlq", "%s [%d] offset %lld dead-lettered: %s (%s)", rd_kafka_topic_name(m->rkt),
             (int)m->partition, (long long)m->offset, decode_reason_code(reason), reason_text);
}

/* Copies the message to the dead-letter topic with why and where from. */
static int send_dead_letter(pipeline_t *p, const rd_kafka_message_t *m, decode_reason_t reason,
                            const char *reason_text) {
    char partition[16], offset[24], errstr[512], error[512];
    /* The reason may quote input (a rule record's setting name): the
     * headers stay UTF-8; only the copied key and value are the input's. */
    snprintf(error, sizeof(error), "%s", reason_text);
    utf8_sanitize(error);
    reason_text = error;
    snprintf(partition, sizeof(partition), "%d", (int)m->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)m->offset);
    const char *headers[] = {"fraud.dlq.reason", decode_reason_code(reason),
                             "fraud.dlq.error", reason_text,
                             "fraud.source.topic", rd_kafka_topic_name(m->rkt),
                             "fraud.source.partition", partition,
                             "fraud.source.offset", offset,
                             NULL};
    if (kafka_io_produce(p->io, p->cfg->dlq_topic, m->key, m->key_len, m->payload, m->len,
                         headers, NULL, errstr, sizeof(errstr)) != 0) {
        log_error("dlq", "%s", errstr);
        return -1;
    }
    metrics_add(&p->metrics->dead_letters[reason], 1);
    log_dead_letter_sampled(p, m, reason, reason_text);
    return 0;
}

static int produce_dead_letter(pipeline_t *p, const batch_item_t *it) {
    if (send_dead_letter(p, it->msg, it->reason, it->reason_text) != 0) return -1;
    p->dead_letters_in_batch++;
    p->stats.dead_lettered++;
    p->stats.dead_lettered_by_reason[it->reason]++;
    metrics_add(&p->metrics->events[EVENT_DEAD_LETTER], 1);
    return 0;
}

/* The rule (or RULE_COUNT for a running total) an output record's id ends
 * with: "<topic>/<partition>/<offset>/<rule>". */
static int record_rule_of(const char *id) {
    const char *slash = strrchr(id, '/');
    const char *name = slash ? slash + 1 : id;
    if (strcmp(name, RECORD_TOTALS) == 0) return RULE_COUNT;
    int rule = rule_id(name);
    return rule >= 0 ? rule : RULE_AMOUNT_JUMP;
}

/* Alerts, averages and running totals share the outbox; the id says where
 * each goes. */
static const char *record_topic(const pipeline_t *p, const char *id) {
    int rule = record_rule_of(id);
    if (rule == RULE_COUNT) return p->cfg->totals_topic;
    if (rule == RULE_COUNT_AVERAGE) return p->cfg->averages_topic;
    return p->cfg->alert_topic;
}

static int produce_alert_record(pipeline_t *p, const char *id, const char *user_id,
                                const char *json, inflight_alert_t *inflight) {
    char errstr[512];
    const char *topic = record_topic(p, id);
    if (!topic[0]) { /* its topic was unset since: nowhere to go, drop it */
        log_warn("alert", "%s: no topic configured for it any more; dropped", id);
        free(inflight);
        return 0;
    }
    if (kafka_io_produce(p->io, topic, user_id, strlen(user_id), json,
                         strlen(json), NULL, inflight, errstr, sizeof(errstr)) != 0) {
        log_error("alert", "%s", errstr);
        return -1;
    }
    return 0;
}

/* Keeps an encoded record (alert, average or running total) until its
 * partition's atomic step has put it in the outbox (the memory backend has
 * none, and just waits for the batch). Takes ownership of json. */
static int queue_record(pipeline_t *p, int32_t partition, const char *id, char *json,
                        const char *user_id, int64_t event_time_ms) {
    char *user = json ? strdup(user_id) : NULL;
    if (!json || !user) goto oom;
    if (p->pending_count == p->pending_cap) {
        size_t cap = p->pending_cap ? p->pending_cap * 2 : 64;
        pending_alert_t *grown = realloc(p->pending, cap * sizeof(*grown));
        if (!grown) goto oom;
        p->pending = grown;
        p->pending_cap = cap;
    }
    pending_alert_t *pa = &p->pending[p->pending_count++];
    pa->partition = partition;
    snprintf(pa->id, sizeof(pa->id), "%s", id);
    pa->json = json;
    pa->user_id = user;
    pa->event_time_ms = event_time_ms;
    return 0;
oom:
    free(json);
    free(user);
    log_error("alert", "out of memory encoding an output record");
    return -1;
}

static int queue_alert(pipeline_t *p, const alert_t *alert) {
    char id[sizeof(((pending_alert_t *)0)->id)];
    alert_id_format(alert->source_topic, alert->source_partition, alert->source_offset,
                    alert->rule, id, sizeof(id));
    return queue_record(p, alert->source_partition, id, alert_encode_new(alert),
                        alert->user_id, alert->event_time_ms);
}

static void free_pending_alerts(pipeline_t *p) {
    for (size_t i = 0; i < p->pending_count; i++) {
        free(p->pending[i].json);
        free(p->pending[i].user_id);
    }
    p->pending_count = 0;
}

/* Turns what the rules decided into records: alerts, and averages. */
static int queue_rule_outputs(pipeline_t *p, const batch_item_t *it, const rule_hit_t *hits,
                              int hit_count, decimal_t previous, int64_t now) {
    const payment_t *pay = &it->payment;
    const rd_kafka_message_t *m = it->msg;
    const user_state_t *state = &it->entry->state;
    int64_t kafka_ts = rd_kafka_message_timestamp(m, NULL);
    int64_t event_time = pay->timestamp_ms >= 0 ? pay->timestamp_ms
                         : kafka_ts >= 0        ? kafka_ts
                                                : now;
    for (int i = 0; i < hit_count; i++) {
        const rule_hit_t *h = &hits[i];
        if (h->rule == RULE_COUNT_AVERAGE) {
            average_event_t avg = {
                .rules = &p->rules, .user_id = pay->user_id, .average = h->average, .sum = h->sum,
                .count = h->count, .source_topic = rd_kafka_topic_name(m->rkt),
                .source_partition = m->partition, .source_offset = m->offset,
                .detected_at_ms = now,
            };
            char id[sizeof(((pending_alert_t *)0)->id)];
            alert_id_format(avg.source_topic, m->partition, m->offset,
                            rule_name(RULE_COUNT_AVERAGE), id, sizeof(id));
            if (queue_record(p, m->partition, id, average_encode_new(&avg), pay->user_id,
                             event_time) != 0)
                return -1;
            continue;
        }
        alert_t alert = {
            .rule = rule_name(h->rule),
            .rules = &p->rules,
            .user_id = pay->user_id,
            .amount = pay->amount,
            .previous_amount = previous,
            .diff = h->diff,
            .threshold = p->rules.jump_threshold,
            .limit = p->rules.cumulative_limit,
            .elapsed_ms = h->elapsed_ms,
            .payments_in_window = h->in_window,
            .cumulative_amount = state->cum,
            .event_count = state->count,
            .source_topic = rd_kafka_topic_name(m->rkt),
            .source_partition = m->partition,
            .source_offset = m->offset,
            .event_id = pay->event_id,
            .event_time_ms = event_time,
            .detected_at_ms = now,
        };
        if (queue_alert(p, &alert) != 0) return -1;
    }
    return 0;
}

static int apply_payment_to_state(pipeline_t *p, batch_item_t *it) {
    cache_entry_t *e = it->entry;
    const payment_t *pay = &it->payment;
    int64_t now = now_ms();
    decimal_t cum;
    rule_hit_t hits[RULE_COUNT];

    ttl_on_read(&p->ttl, e, now); /* expired state may read as absent */
    if (!decimal_add(e->state.cum, pay->amount, &cum)) {
        it->reason = DECODE_CUMULATIVE_OVERFLOW;
        snprintf(it->reason_text, sizeof(it->reason_text),
                 "cumulative amount of the user would exceed the exact range");
        return produce_dead_letter(p, it);
    }
    decimal_t previous = e->state.prev;
    /* Most users of most rule sets remember nothing beyond prev/cum/count:
     * their rule state lives on the heap only while it holds something. */
    rule_state_t scratch = {0};
    rule_state_t *rs = e->state.rules ? e->state.rules : &scratch;
    int hit_count = rules_evaluate(&p->rules, rs, e->state.count > 0, previous, pay->amount,
                                   cum, now, hits);
    if (hit_count >= 0 && rs == &scratch && !rule_state_is_empty(&scratch)) {
        e->state.rules = rule_state_move_to_heap(&scratch);
        if (!e->state.rules) hit_count = -1;
    } else if (rs != &scratch && rule_state_is_empty(rs)) {
        rule_state_destroy(rs);
        e->state.rules = NULL;
    }
    rule_state_free(&scratch);
    if (hit_count < 0) {
        log_error("state", "out of memory evaluating rules");
        return -1;
    }
    e->state.prev = pay->amount;
    e->state.cum = cum;
    e->state.count++;
    ttl_on_write(&p->ttl, e, now);
    state_cache_mark_dirty(p->cache, e);
    p->stats.valid++;
    metrics_add(&p->metrics->events[EVENT_VALID], 1);
    return queue_rule_outputs(p, it, hits, hit_count, previous, now);
}

/* totals.topic: each user changed by the batch, once, with the state the
 * batch left, under the id of the user's last payment in it. */
static int queue_running_totals(pipeline_t *p) {
    int rc = 0;
    if (!p->cfg->totals_topic[0]) return 0;
    for (size_t i = p->item_count; i-- > 0 && rc == 0;) {
        batch_item_t *it = &p->items[i];
        cache_entry_t *e = it->entry;
        if (!e || it->reason != DECODE_OK || (e->flags & CACHE_ENTRY_TOTALS_QUEUED)) continue;
        e->flags |= CACHE_ENTRY_TOTALS_QUEUED;
        char id[sizeof(((pending_alert_t *)0)->id)];
        alert_id_format(rd_kafka_topic_name(it->msg->rkt), it->msg->partition, it->msg->offset,
                        RECORD_TOTALS, id, sizeof(id));
        rc = queue_record(p, it->msg->partition, id,
                          totals_encode_new(it->payment.user_id, e->state.cum, e->state.count),
                          it->payment.user_id, now_ms());
    }
    for (size_t i = 0; i < p->item_count; i++)
        if (p->items[i].entry) p->items[i].entry->flags &= (uint8_t)~CACHE_ENTRY_TOTALS_QUEUED;
    return rc;
}

static int apply_batch(pipeline_t *p) {
    for (size_t i = 0; i < p->item_count; i++) {
        batch_item_t *it = &p->items[i];
        if (already_applied(p, it->msg)) {
            p->stats.replays_skipped++;
            metrics_add(&p->metrics->events[EVENT_REPLAYED], 1);
            continue;
        }
        int rc = it->reason == DECODE_OK ? apply_payment_to_state(p, it)
                                         : produce_dead_letter(p, it);
        if (rc != 0) return -1;
    }
    return queue_running_totals(p);
}

/* ---- the atomic step -------------------------------------------------- */

/* One step per partition of the batch, with its dirty users and alerts
 * grouped next to each other in the step arrays. */
static void build_partition_steps(pipeline_t *p) {
    size_t dirty_count, users_used = 0, alerts_used = 0;
    cache_entry_t **dirty = state_cache_dirty(p->cache, &dirty_count);
    for (size_t i = 0; i < p->batch_part_count; i++) {
        const batch_partition_t *bp = &p->batch_parts[i];
        const owned_partition_t *o = find_owned(p, bp->partition);
        store_step_t *st = &p->steps[i];
        memset(st, 0, sizeof(*st));
        st->partition = bp->partition;
        st->expected_checkpoint = o ? o->checkpoint : -1;
        st->next_offset = bp->next_offset;
        st->users = &p->step_users[users_used];
        for (size_t k = 0; k < dirty_count; k++)
            if (dirty[k]->partition == bp->partition) p->step_users[users_used++] = dirty[k];
        st->user_count = (size_t)(&p->step_users[users_used] - st->users);
        st->alerts = &p->step_alerts[alerts_used];
        for (size_t k = 0; k < p->pending_count; k++) {
            if (p->pending[k].partition != bp->partition) continue;
            p->step_alerts[alerts_used].id = p->pending[k].id;
            p->step_alerts[alerts_used++].json = p->pending[k].json;
        }
        st->alert_count = (size_t)(&p->step_alerts[alerts_used] - st->alerts);
    }
}

static int grow_step_arrays(pipeline_t *p) {
    size_t dirty_count;
    state_cache_dirty(p->cache, &dirty_count);
    cache_entry_t **users = realloc(p->step_users, (dirty_count + 1) * sizeof(*users));
    if (users) p->step_users = users;
    store_alert_t *alerts = realloc(p->step_alerts, (p->pending_count + 1) * sizeof(*alerts));
    if (alerts) p->step_alerts = alerts;
    return users && alerts ? 0 : -1;
}

static int commit_step(pipeline_t *p, void *arg, char *errstr, size_t errstr_size) {
    (void)arg;
    build_partition_steps(p);
    return store_commit_steps(p->store, p->steps, p->batch_part_count, p->ttl.ttl_ms, errstr,
                              errstr_size);
}

/* Another owner moved the partition on (we lost it, or a zombie wrote):
 * forget our view of it and read again from its checkpoint. */
static void refuse_partition(pipeline_t *p, batch_partition_t *bp, int64_t actual) {
    bp->refused = 1;
    state_cache_drop_partition(p->cache, bp->partition);
    add_owned(p, bp->partition, actual);
    log_warn("state", "%s [%d]: checkpoint in Redis is %lld, not what this instance saw: "
             "another owner wrote it; discarding this batch's work for the partition and "
             "reading again from there", p->cfg->input_topic, (int)bp->partition,
             (long long)actual);
    if (actual < 0) return;
    rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(seek, p->cfg->input_topic, bp->partition)->offset = actual;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(p->io->consumer, seek, 5000);
    if (error) {
        log_error("kafka", "seek [%d] to %lld: %s", (int)bp->partition, (long long)actual,
                  rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    rd_kafka_topic_partition_list_destroy(seek);
}

/* Writes every partition's users, checkpoint and alerts atomically. */
static int commit_state_to_redis(pipeline_t *p) {
    if (!p->store) {
        state_cache_mark_all_clean(p->cache);
        return 0;
    }
    if (grow_step_arrays(p) != 0) {
        log_error("state", "out of memory preparing the Redis step");
        return -1;
    }
    if (retry_redis_step(p, commit_step, NULL, "writing user state") != 0) return -1;
    state_cache_mark_all_clean(p->cache);
    for (size_t i = 0; i < p->batch_part_count; i++) {
        const store_step_t *st = &p->steps[i];
        /* An earlier attempt that landed before its reply was lost shows
         * up as a "conflict" already at our own next offset: done. */
        if (st->conflict && st->actual_checkpoint != st->next_offset)
            refuse_partition(p, &p->batch_parts[i], st->actual_checkpoint);
        else
            add_owned(p, st->partition, st->next_offset);
    }
    return 0;
}

/* ---- acknowledge, commit ---------------------------------------------- */

static int await_produced_records(pipeline_t *p, uint64_t failures_before) {
    while (kafka_io_wait_deliveries(p->io, 1000) != 0)
        log_warn("kafka", "waiting for %d alert/dead-letter records to be acknowledged",
                 rd_kafka_outq_len(p->io->producer));
    if (p->io->delivery_failures != failures_before) {
        log_error("kafka", "%llu records could not be delivered; stopping without "
                  "committing, so the batch is processed again after restart",
                  (unsigned long long)(p->io->delivery_failures - failures_before));
        return -1;
    }
    return 0;
}

/* Delivery report of an alert (runs inside rd_kafka_poll, on this thread).
 * Acknowledged alerts are removed from the outbox later, in bulk. */
static void on_alert_delivered(void *app, void *record_opaque, int failed) {
    pipeline_t *p = app;
    inflight_alert_t *a = record_opaque;
    if (failed) {
        /* It stays in the outbox: the next owner of the partition, or this
         * process after a restart, produces it again. */
        log_error("alert", "%s could not be delivered; stopping, the outbox keeps it", a->id);
        free(a);
        p->fatal = 1;
        atomic_store(&p->fatal_seen, 1);
        return;
    }
    int rule = record_rule_of(a->id);
    if (rule == RULE_COUNT) {
        metrics_add(&p->metrics->totals_produced, 1);
    } else if (rule == RULE_COUNT_AVERAGE) {
        metrics_add(&p->metrics->averages_produced, 1);
    } else {
        p->stats.alerts++;
        metrics_add(&p->metrics->alerts[rule], 1);
        metrics_observe(&p->metrics->event_to_alert_seconds,
                        (double)(now_ms() - a->event_time_ms) / 1000.0);
    }
    if (p->acked_count == p->acked_cap) {
        size_t cap = p->acked_cap ? p->acked_cap * 2 : 256;
        inflight_alert_t **grown = realloc(p->acked, cap * sizeof(*grown));
        if (!grown) { /* it stays in the outbox: a duplicate later, never a loss */
            free(a);
            return;
        }
        p->acked = grown;
        p->acked_cap = cap;
    }
    p->acked[p->acked_count++] = a;
}

static int outbox_remove_acked_step(pipeline_t *p, void *arg, char *errstr, size_t errstr_size) {
    size_t steps = 0, used = 0;
    store_step_t *st = arg;
    /* One step per partition, its acknowledged ids side by side. */
    for (size_t i = 0; i < p->acked_count; i++) {
        int32_t part = p->acked[i]->partition;
        size_t k = 0;
        while (k < steps && st[k].partition != part) k++;
        if (k == steps) {
            memset(&st[steps], 0, sizeof(st[steps]));
            st[steps++].partition = part;
        }
    }
    for (size_t k = 0; k < steps; k++) {
        st[k].alerts = &p->step_alerts[used];
        for (size_t i = 0; i < p->acked_count; i++)
            if (p->acked[i]->partition == st[k].partition)
                p->step_alerts[used++] = (store_alert_t){.id = p->acked[i]->id, .json = NULL};
        st[k].alert_count = (size_t)(&p->step_alerts[used] - st[k].alerts);
    }
    return store_outbox_remove(p->store, st, steps, errstr, errstr_size);
}

/* Serves delivery reports and empties the outbox of acknowledged alerts:
 * one pipelined HDEL round trip for all of them. */
static int complete_alert_deliveries(pipeline_t *p) {
    rd_kafka_poll(p->io->producer, 0);
    if (p->acked_count == 0) return 0;
    int rc = 0;
    if (p->store) {
        store_alert_t *alerts = realloc(p->step_alerts, p->acked_count * sizeof(*alerts));
        store_step_t *steps = calloc(p->acked_count, sizeof(*steps));
        if (alerts) p->step_alerts = alerts;
        rc = alerts && steps
                 ? retry_redis_step(p, outbox_remove_acked_step, steps, "clearing delivered alerts")
                 : -1;
        free(steps);
    }
    for (size_t i = 0; i < p->acked_count; i++) free(p->acked[i]);
    p->acked_count = 0;
    return rc;
}

/* Waits for every alert in flight (before partitions go away, or at stop)
 * and clears them from the outbox. */
static int drain_alert_deliveries(pipeline_t *p) {
    while (kafka_io_wait_deliveries(p->io, 1000) != 0)
        log_warn("kafka", "waiting for %d alert(s) to be acknowledged",
                 rd_kafka_outq_len(p->io->producer));
    return complete_alert_deliveries(p);
}

/* Produces the batch's alerts once they are safe in the outbox, without
 * waiting: acknowledgements arrive while the next batch runs, and a crash
 * before them leaves the alerts in the outbox for redelivery. The memory
 * backend has no outbox, so there the batch waits for them. */
static int deliver_committed_alerts(pipeline_t *p) {
    uint64_t failures_before = p->io->delivery_failures;
    size_t produced = 0;
    for (size_t i = 0; i < p->pending_count; i++) {
        const pending_alert_t *pa = &p->pending[i];
        const batch_partition_t *bp = batch_part(p, pa->partition);
        if (bp && bp->refused) continue;
        size_t id_len = strlen(pa->id) + 1;
        inflight_alert_t *a = malloc(sizeof(*a) + id_len);
        if (!a) {
            log_error("alert", "out of memory producing an alert");
            return -1;
        }
        a->partition = pa->partition;
        a->event_time_ms = pa->event_time_ms;
        memcpy(a->id, pa->id, id_len);
        if (produce_alert_record(p, pa->id, pa->user_id, pa->json, a) != 0) {
            free(a);
            return -1;
        }
        produced++;
    }
    if (produced == 0 || p->store) return 0;
    return await_produced_records(p, failures_before);
}

/* Stores next offset = last processed + 1 per partition; librdkafka's
 * auto-commit (and the revoke/close paths) commit what is stored. */
static void store_processed_offsets(pipeline_t *p) {
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < p->batch_part_count; i++) {
        const batch_partition_t *bp = &p->batch_parts[i];
        if (!bp->refused)
            rd_kafka_topic_partition_list_add(offsets, p->cfg->input_topic, bp->partition)
                ->offset = bp->next_offset;
    }
    rd_kafka_resp_err_t err = offsets->cnt ? rd_kafka_offsets_store(p->io->consumer, offsets)
                                           : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err) log_warn("kafka", "storing offsets: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(offsets);
}

static void release_batch(pipeline_t *p) {
    for (size_t i = 0; i < p->item_count; i++) rd_kafka_message_destroy(p->items[i].msg);
    p->item_count = 0;
    p->batch_part_count = 0;
    free_pending_alerts(p);
}

/* Copies what the cache and the store count into the metrics. */
static void publish_state_metrics(pipeline_t *p) {
    state_cache_stats_t cs = state_cache_stats(p->cache);
    atomic_store(&p->metrics->cache_hits, cs.hits);
    atomic_store(&p->metrics->cache_misses, cs.misses);
    atomic_store(&p->metrics->cache_evictions, cs.evictions);
    atomic_store(&p->metrics->cache_expirations, cs.expirations);
    atomic_store(&p->metrics->cached_users, (int64_t)state_cache_count(p->cache));
    atomic_store(&p->metrics->assigned_partitions, (int64_t)p->owned_count);
    if (p->store) {
        atomic_store(&p->metrics->redis_commands, store_commands_total(p->store));
        atomic_store(&p->metrics->redis_errors, store_errors_total(p->store));
    }
}

/* Processes everything gathered so far. On failure the pipeline is marked
 * fatal and nothing of the batch is committed. */
static int process_batch(pipeline_t *p) {
    if (p->item_count == 0 || p->fatal) return p->fatal ? -1 : 0;
    int64_t started = now_ms();
    uint64_t failures_before = p->io->delivery_failures;
    p->dead_letters_in_batch = 0;
    decode_batch(p);
    if (attach_user_state(p) != 0 || apply_batch(p) != 0 ||
        (p->dead_letters_in_batch && await_produced_records(p, failures_before) != 0) ||
        commit_state_to_redis(p) != 0 || deliver_committed_alerts(p) != 0) {
        p->fatal = 1;
        atomic_store(&p->fatal_seen, 1);
        return -1;
    }
    store_processed_offsets(p);
    p->stats.consumed += p->item_count;
    p->stats.batches++;
    release_batch(p);
    state_cache_evict(p->cache);
    if (complete_alert_deliveries(p) != 0) {
        p->fatal = 1;
        atomic_store(&p->fatal_seen, 1);
        return -1;
    }
    metrics_observe(&p->metrics->batch_seconds, (double)(now_ms() - started) / 1000.0);
    publish_state_metrics(p);
    return 0;
}

/* ---- rebalance -------------------------------------------------------- */

static void log_partitions(rd_kafka_t *rk, const char *what,
                           const rd_kafka_topic_partition_list_t *parts) {
    char text[1024];
    size_t len = 0;
    text[0] = '\0';
    for (int i = 0; i < parts->cnt && len < sizeof(text) - 32; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s[%d]", i ? " " : "",
                                parts->elems[i].topic, (int)parts->elems[i].partition);
    log_info("kafka", "%s %d partition(s) (%s rebalance): %s", what, parts->cnt,
             rd_kafka_rebalance_protocol(rk), text);
}

/* The source offset in an outbox id "<topic>/<partition>/<offset>/<rule>". */
static long long outbox_id_offset(const char *id) {
    const char *last = strrchr(id, '/');
    const char *start = last;
    while (start && start > id && start[-1] != '/') start--;
    return start ? strtoll(start, NULL, 10) : 0;
}

static int by_source_offset(const void *a, const void *b) {
    long long x = outbox_id_offset(((const store_alert_t *)a)->id);
    long long y = outbox_id_offset(((const store_alert_t *)b)->id);
    return (x > y) - (x < y);
}

/* Produces what a previous owner (or this process before a crash) put in
 * the partition's outbox but may not have delivered, before anything new.
 * In offset order, so a user's running totals arrive oldest first and the
 * latest stays last in the compacted topic. */
static int redeliver_outbox(pipeline_t *p, int32_t partition) {
    store_outbox_t outbox;
    char errstr[512];
    if (store_outbox_load(p->store, partition, &outbox, errstr, sizeof(errstr)) != 0) {
        log_error("redis", "%s", errstr);
        return -1;
    }
    if (outbox.count == 0) {
        store_outbox_free(&outbox);
        return 0;
    }
    uint64_t failures_before = p->io->delivery_failures;
    int rc = 0;
    qsort(outbox.alerts, outbox.count, sizeof(*outbox.alerts), by_source_offset);
    for (size_t i = 0; i < outbox.count && rc == 0; i++) {
        cJSON *json = cJSON_Parse(outbox.alerts[i].json);
        const cJSON *user = cJSON_GetObjectItemCaseSensitive(json, "user_id");
        rc = cJSON_IsString(user)
                 ? produce_alert_record(p, outbox.alerts[i].id, user->valuestring,
                                        outbox.alerts[i].json, NULL)
                 : -1;
        cJSON_Delete(json);
    }
    if (rc == 0) rc = await_produced_records(p, failures_before);
    if (rc == 0) {
        store_step_t done = {.partition = partition, .alerts = outbox.alerts,
                             .alert_count = outbox.count};
        rc = store_outbox_remove(p->store, &done, 1, errstr, sizeof(errstr));
        if (rc != 0) log_error("redis", "%s", errstr);
    }
    if (rc == 0) {
        metrics_add(&p->metrics->alerts_redelivered, outbox.count);
        log_info("alert", "%s [%d]: redelivered %zu alert(s) left in the outbox",
                 p->cfg->input_topic, (int)partition, outbox.count);
    }
    store_outbox_free(&outbox);
    return rc;
}

typedef struct assign_arg {
    int32_t partition;
    int64_t checkpoint;
} assign_arg_t;

static int checkpoint_step(pipeline_t *p, void *arg, char *errstr, size_t errstr_size) {
    assign_arg_t *a = arg;
    return store_get_checkpoint(p->store, a->partition, &a->checkpoint, errstr, errstr_size);
}

static int outbox_step(pipeline_t *p, void *arg, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    return redeliver_outbox(p, ((assign_arg_t *)arg)->partition);
}

/* Each partition resumes from the later of its Redis checkpoint and the
 * group's committed offset, after its outbox has been delivered. */
static void prepare_assigned_partitions(pipeline_t *p, rd_kafka_t *rk,
                                        rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, committed, 10000);
    if (err) log_warn("kafka", "reading committed offsets: %s", rd_kafka_err2str(err));
    for (int i = 0; i < parts->cnt && !p->fatal; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        assign_arg_t a = {.partition = tp->partition, .checkpoint = -1};
        if (retry_redis_step(p, checkpoint_step, &a, "reading a checkpoint") != 0 ||
            retry_redis_step(p, outbox_step, &a, "redelivering the outbox") != 0) {
            p->fatal = 1;
            break;
        }
        int64_t group = err ? -1 : committed->elems[i].offset;
        if (group >= 0 && a.checkpoint >= 0 && group > a.checkpoint)
            log_warn("state", "%s [%d]: committed offset %lld is past the Redis checkpoint "
                     "%lld: Redis state looks older than the group's progress", tp->topic,
                     (int)tp->partition, (long long)group, (long long)a.checkpoint);
        int64_t start = group > a.checkpoint ? group : a.checkpoint;
        tp->offset = start >= 0 ? start : RD_KAFKA_OFFSET_INVALID; /* invalid: reset policy */
        add_owned(p, tp->partition, a.checkpoint);
        log_info("state", "%s [%d]: checkpoint %lld, committed %lld, resuming at %lld",
                 tp->topic, (int)tp->partition, (long long)a.checkpoint, (long long)group,
                 (long long)start);
    }
    rd_kafka_topic_partition_list_destroy(committed);
}

/* After a lost assignment another member may already own the partitions:
 * their pending messages are dropped unprocessed (not committed), so the
 * new owner processes them once. */
static void discard_pending_of(pipeline_t *p, const rd_kafka_topic_partition_list_t *parts) {
    size_t kept = 0;
    for (size_t i = 0; i < p->item_count; i++) {
        rd_kafka_message_t *m = p->items[i].msg;
        if (rd_kafka_topic_partition_list_find(parts, rd_kafka_topic_name(m->rkt),
                                               m->partition)) {
            rd_kafka_message_destroy(m);
            continue;
        }
        p->items[kept++].msg = m;
    }
    p->item_count = kept;
}

static void on_revoke(pipeline_t *p, rd_kafka_t *rk,
                      const rd_kafka_topic_partition_list_t *parts) {
    int lost = rd_kafka_assignment_lost(rk);
    log_partitions(rk, lost ? "lost" : "revoked", parts);
    if (lost) discard_pending_of(p, parts);
    if (process_batch(p) == 0 && drain_alert_deliveries(p) == 0 && !lost) {
        rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            log_warn("kafka", "commit on revoke: %s", rd_kafka_err2str(err));
    }
    size_t dropped = 0;
    for (int i = 0; i < parts->cnt; i++) {
        dropped += state_cache_drop_partition(p->cache, parts->elems[i].partition);
        remove_owned(p, parts->elems[i].partition);
    }
    log_info("state", "forgot %zu cached user(s) of the revoked partitions", dropped);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    pipeline_t *p = opaque;
    pthread_mutex_lock(&p->lock);
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t assign_err = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_partitions(rk, "assigned", parts);
        if (p->store) prepare_assigned_partitions(p, rk, parts);
        if (cooperative) error = rd_kafka_incremental_assign(rk, parts);
        else assign_err = rd_kafka_assign(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(p, rk, parts);
        if (cooperative) error = rd_kafka_incremental_unassign(rk, parts);
        else assign_err = rd_kafka_assign(rk, NULL);
    } else {
        log_error("kafka", "rebalance failed: %s", rd_kafka_err2str(err));
        assign_err = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        log_error("kafka", "incremental (un)assign: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    if (assign_err) log_error("kafka", "assign: %s", rd_kafka_err2str(assign_err));
    if (p->fatal) atomic_store(&p->fatal_seen, 1);
    publish_state_metrics(p);
    pthread_mutex_unlock(&p->lock);
}

static void on_kafka_stats(pipeline_t *p, const char *json) {
    int before = atomic_load(&p->metrics->kafka_brokers_up);
    metrics_update_from_kafka_stats(p->metrics, json, p->cfg->input_topic);
    int after = atomic_load(&p->metrics->kafka_brokers_up);
    if (before > 0 && after == 0) log_warn("kafka", "no broker is reachable");
    if (before == 0 && after > 0) log_info("kafka", "%d broker(s) reachable again", after);
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque) {
    (void)rk;
    (void)json_len;
    on_kafka_stats(opaque, json);
    return 0; /* librdkafka frees json */
}

/* ---- rules ------------------------------------------------------------ */

static void log_rules(const char *why, const rule_set_t *rules) {
    char text[512];
    rules_describe(rules, text, sizeof(text));
    log_info("rules", "%s: %s", why, text);
}

enum { UPDATE_SIGHUP = 0, UPDATE_TOPIC = 1, UPDATE_APPLIED = 0, UPDATE_REJECTED = 1 };

/* A record of rules.topic, read between batches on this thread. A record
 * that cannot be applied changes nothing and goes to the dead-letter topic. */
static void on_rule_record(void *ctx, const rd_kafka_message_t *m) {
    pipeline_t *p = ctx;
    char errstr[512], why[256];
    int changed = -1;
    rule_set_t rules;
    if (rule_overrides_accept(&p->overrides, p->cfg, &p->base_rules, m->key, m->key_len,
                              m->payload, m->len, &rules, &changed, errstr,
                              sizeof(errstr)) != 0) {
        metrics_add(&p->metrics->rule_updates[UPDATE_TOPIC][UPDATE_REJECTED], 1);
        log_error("rules", "%s [%d] offset %lld rejected, the rules in force stay: %s",
                  rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset,
                  errstr);
        if (send_dead_letter(p, m, DECODE_INVALID_RULE, errstr) != 0) {
            p->fatal = 1;
            atomic_store(&p->fatal_seen, 1);
        }
        return;
    }
    p->rules = rules;
    metrics_add(&p->metrics->rule_updates[UPDATE_TOPIC][UPDATE_APPLIED], 1);
    snprintf(why, sizeof(why), "%s %s from %s [%d] offset %lld", rule_name(changed),
             m->len ? "updated" : "returned to the config", rd_kafka_topic_name(m->rkt),
             (int)m->partition, (long long)m->offset);
    log_rules(why, &p->rules);
}

/* SIGHUP: the config's rule.* keys again, with the topic's updates on top.
 * Anything invalid keeps the rules in force. */
static void reload_rules_from_config(pipeline_t *p) {
    rule_set_t base, rules;
    char errstr[1024];
    if (p->load_rules(p->load_rules_ctx, &base, errstr, sizeof(errstr)) != 0 ||
        rule_overrides_apply(&p->overrides, &base, &rules, errstr, sizeof(errstr)) != 0 ||
        config_validate_rules(p->cfg, &rules, errstr, sizeof(errstr)) != 0) {
        metrics_add(&p->metrics->rule_updates[UPDATE_SIGHUP][UPDATE_REJECTED], 1);
        log_error("rules", "SIGHUP: rules not reloaded, the rules in force stay: %s", errstr);
        return;
    }
    p->base_rules = base;
    p->rules = rules;
    metrics_add(&p->metrics->rule_updates[UPDATE_SIGHUP][UPDATE_APPLIED], 1);
    log_rules("reloaded on SIGHUP", &p->rules);
}

/* Between batches, so a batch sees one rule set throughout. */
static void refresh_rules(pipeline_t *p) {
    if (p->reload_requested && *p->reload_requested) {
        *p->reload_requested = 0;
        if (p->load_rules) reload_rules_from_config(p);
    }
    if (p->control) rule_control_poll(p->control);
}

void pipeline_set_rules_reload(pipeline_t *p, volatile sig_atomic_t *requested,
                               pipeline_rules_loader_fn load, void *ctx) {
    p->reload_requested = requested;
    p->load_rules = load;
    p->load_rules_ctx = ctx;
}

/* ---- loop ------------------------------------------------------------- */

/* Collects up to batch.max.messages or batch.max.bytes. A rebalance
 * callback may run inside any poll here and process what was gathered so
 * far. */
static void gather_batch(pipeline_t *p) {
    int timeout = POLL_TIMEOUT_MS;
    size_t bytes = 0;
    while (p->item_count < p->item_cap && bytes < (size_t)p->cfg->batch_max_bytes &&
           !p->fatal) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->io->consumer, timeout);
        if (!m) break;
        timeout = 0; /* take what is already fetched, do not wait for more */
        if (m->err) {
            log_warn("kafka", "consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        bytes += m->len + m->key_len;
        p->items[p->item_count++].msg = m;
    }
}

/* Idle users must not keep memory: drop expired cache entries now and
 * then, a bounded number per pass, like Redis's active expiry. */
static void clean_up_expired_users(pipeline_t *p) {
    if (p->ttl.ttl_ms <= 0) return;
    int64_t now = now_ms();
    if (now < p->next_cleanup_ms) return;
    p->next_cleanup_ms = now + p->cfg->state_ttl_cleanup_interval_ms;
    size_t dropped = state_cache_drop_expired(p->cache, now, EXPIRY_SCAN_MAX);
    if (dropped) log_debug("state", "dropped %zu expired user(s) from the cache", dropped);
}

int pipeline_run(pipeline_t *p, volatile sig_atomic_t *stop) {
    p->stop = stop;
    while (!stop_requested(p) && !p->fatal) {
        atomic_store(&p->heartbeat_ms, now_ms());
        refresh_rules(p);
        if (p->fatal) break;
        gather_batch(p);
        rd_kafka_poll(p->io->producer, 0); /* serve stray delivery reports */
        pthread_mutex_lock(&p->lock);
        int rc = process_batch(p);
        if (rc == 0 && p->item_count == 0) rc = complete_alert_deliveries(p);
        clean_up_expired_users(p);
        pthread_mutex_unlock(&p->lock);
        if (rc != 0 || p->fatal) break;
    }
    pthread_mutex_lock(&p->lock);
    if (!p->fatal && process_batch(p) == 0) drain_alert_deliveries(p);
    pthread_mutex_unlock(&p->lock);
    if (p->dlq_suppressed)
        log_warn("dlq", "%llu more dead letters were not logged",
                 (unsigned long long)p->dlq_suppressed);
    log_info("pipeline", "%s: %llu consumed, %llu valid, %llu dead-lettered, %llu alerts",
             p->fatal ? "stopped on error" : "stopped", (unsigned long long)p->stats.consumed,
             (unsigned long long)p->stats.valid, (unsigned long long)p->stats.dead_lettered,
             (unsigned long long)p->stats.alerts);
    return p->fatal ? 1 : 0;
}

/* ---- operations endpoints (HTTP thread) ------------------------------- */

static int http_metrics(void *ctx, char **body) {
    *body = metrics_render_new(((pipeline_t *)ctx)->metrics);
    return 200;
}

static int http_health(void *ctx, char **body) {
    pipeline_t *p = ctx;
    int64_t now = now_ms(), idle = now - atomic_load(&p->heartbeat_ms);
    int fatal = atomic_load(&p->fatal_seen), ok = !fatal && idle < STALL_LIMIT_MS;
    char text[256];
    snprintf(text, sizeof(text),
             "{\"status\":\"%s\",\"uptime_seconds\":%lld,\"last_loop_ms_ago\":%lld,"
             "\"fatal_error\":%s}\n",
             ok ? "ok" : "failing", (long long)((now - p->started_ms) / 1000), (long long)idle,
             fatal ? "true" : "false");
    *body = strdup(text);
    return ok ? 200 : 503;
}

static int http_ready(void *ctx, char **body) {
    pipeline_t *p = ctx;
    char errstr[256] = "";
    int redis_ok = !p->query_store || store_ping(p->query_store, errstr, sizeof(errstr)) == 0;
    int brokers = atomic_load(&p->metrics->kafka_brokers_up);
    long long assigned = (long long)atomic_load(&p->metrics->assigned_partitions);
    /* Before librdkafka's first statistics, an assignment proves Kafka. */
    int kafka_ok = brokers > 0 || (brokers < 0 && assigned > 0);
    int fatal = atomic_load(&p->fatal_seen);
    int ready = redis_ok && kafka_ok && !fatal;
    char text[512];
    snprintf(text, sizeof(text),
             "{\"ready\":%s,\"redis\":{\"backend\":\"%s\",\"reachable\":%s},"
             "\"kafka\":{\"reachable\":%s,\"brokers_up\":%d},"
             "\"partitions\":{\"assigned\":%lld,\"state\":\"%s\"},\"fatal_error\":%s}\n",
             ready ? "true" : "false", p->store ? "redis" : "memory",
             redis_ok ? "true" : "false", kafka_ok ? "true" : "false", brokers, assigned,
             assigned > 0 ? "assigned" : "waiting for assignment", fatal ? "true" : "false");
    *body = strdup(text);
    return ready ? 200 : 503;
}

static int input_partition_count(pipeline_t *p) {
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->io->consumer, p->cfg->input_topic, NULL);
    int count = -1;
    if (rkt && rd_kafka_metadata(p->io->consumer, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && !md->topics[0].err) count = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    if (rkt) rd_kafka_topic_destroy(rkt);
    return count;
}

typedef struct user_answer {
    int found;
    const char *source;
    int32_t partition;
    user_state_t state;
    int64_t ttl_ms; /* -1: none */
    int owned;
    int touch_redis; /* on_read_and_write: restart the key's TTL too */
} user_answer_t;

/* The cache first, for the partitions this instance owns. */
static int lookup_cached_user(pipeline_t *p, const char *user, size_t len, user_answer_t *a) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += QUERY_LOCK_WAIT_MS / 1000;
    if (pthread_mutex_timedlock(&p->lock, &deadline) != 0) return -1;
    int64_t now = now_ms();
    for (size_t i = 0; i < p->owned_count && !a->found; i++) {
        cache_entry_t *e = state_cache_peek(p->cache, p->owned[i].partition, user, len);
        if (!e || e->state.count == 0) continue;
        if (ttl_is_expired(&p->ttl, e, now) && p->ttl.visibility == TTL_NEVER_RETURN_EXPIRED)
            continue; /* expired reads as absent, and Redis has dropped it */
        a->touch_redis = ttl_on_read(&p->ttl, e, now);
        a->found = 1;
        a->source = "cache";
        a->partition = e->partition;
        a->state = e->state;
        a->ttl_ms = e->expires_at_ms > 0 ? e->expires_at_ms - now : -1;
        a->owned = 1;
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static int partition_is_owned(pipeline_t *p, int32_t partition) {
    pthread_mutex_lock(&p->lock);
    int owned = find_owned(p, partition) != NULL;
    pthread_mutex_unlock(&p->lock);
    return owned;
}

static char *user_answer_json(const pipeline_t *p, const char *user, const user_answer_t *a) {
    char prev[DECIMAL_TEXT_MAX], cum[DECIMAL_TEXT_MAX], num[32];
    cJSON *root = cJSON_CreateObject(), *owner;
    char *text = NULL;
    decimal_format(a->state.prev, prev, sizeof(prev));
    decimal_format(a->state.cum, cum, sizeof(cum));
    snprintf(num, sizeof(num), "%lld", (long long)a->state.count);
    if (!root || !cJSON_AddStringToObject(root, "user_id", user) ||
        !cJSON_AddRawToObject(root, "previous_amount", prev) ||
        !cJSON_AddRawToObject(root, "cumulative_amount", cum) ||
        !cJSON_AddRawToObject(root, "event_count", num))
        goto done;
    if (a->ttl_ms >= 0) {
        snprintf(num, sizeof(num), "%lld", (long long)a->ttl_ms);
        if (!cJSON_AddRawToObject(root, "ttl_remaining_ms", num)) goto done;
    } else if (!cJSON_AddNullToObject(root, "ttl_remaining_ms")) {
        goto done;
    }
    snprintf(num, sizeof(num), "%d", (int)a->partition);
    if (!cJSON_AddStringToObject(root, "topic", p->cfg->input_topic) ||
        !cJSON_AddRawToObject(root, "partition", num) ||
        !cJSON_AddStringToObject(root, "source", a->source) ||
        !(owner = cJSON_AddObjectToObject(root, "owner")) ||
        !cJSON_AddBoolToObject(owner, "this_instance", a->owned) ||
        !(a->owned ? cJSON_AddStringToObject(owner, "instance", p->instance)
                   : cJSON_AddNullToObject(owner, "instance")) ||
        !cJSON_AddStringToObject(owner, "group_id", p->cfg->group_id))
        goto done;
    text = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return text;
}

static int http_user(void *ctx, const char *user, size_t len, char **body) {
    pipeline_t *p = ctx;
    char errstr[512];
    user_answer_t a = {.ttl_ms = -1};
    if (lookup_cached_user(p, user, len, &a) != 0) {
        *body = strdup("{\"error\":\"busy: the consumer holds the state; try again\"}\n");
        return 503;
    }
    if (!a.found && p->query_store) {
        int partitions = input_partition_count(p);
        store_user_view_t view;
        if (partitions <= 0) {
            *body = strdup("{\"error\":\"input topic metadata unavailable\"}\n");
            return 503;
        }
        if (store_find_user(p->query_store, user, len, partitions, &view, errstr,
                            sizeof(errstr)) != 0) {
            *body = strdup("{\"error\":\"redis unavailable\"}\n");
            return 503;
        }
        if (view.found) {
            a.found = 1;
            a.source = "redis";
            a.partition = view.partition;
            a.state = view.state;
            a.ttl_ms = view.ttl_ms;
            a.owned = partition_is_owned(p, view.partition);
            if (p->ttl.ttl_ms > 0 && p->ttl.update == TTL_UPDATE_ON_READ_AND_WRITE) {
                a.touch_redis = 1;
                a.ttl_ms = p->ttl.ttl_ms;
            }
        }
    }
    if (!a.found) {
        *body = strdup("{\"error\":\"no state for this user (unknown or expired)\"}\n");
        return 404;
    }
    if (a.touch_redis && p->query_store &&
        store_touch_user(p->query_store, a.partition, user, len, p->ttl.ttl_ms, errstr,
                         sizeof(errstr)) != 0)
        log_warn("http", "refreshing the TTL of a queried user: %s", errstr);
    *body = user_answer_json(p, user, &a);
    return 200;
}

http_handlers_t pipeline_http_handlers(pipeline_t *p) {
    http_handlers_t h = {.ctx = p, .metrics = http_metrics, .health = http_health,
                         .ready = http_ready, .user = http_user};
    return h;
}

pipeline_t *pipeline_new(const config_t *cfg, char *errstr, size_t errstr_size) {
    pipeline_t *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    pthread_mutex_init(&p->lock, NULL);
    p->started_ms = now_ms();
    atomic_init(&p->heartbeat_ms, p->started_ms);
    atomic_init(&p->fatal_seen, 0);
    char host[64] = "unknown";
    gethostname(host, sizeof(host) - 1);
    snprintf(p->instance, sizeof(p->instance), "%s:%d", host, (int)getpid());
    p->metrics = metrics_new();
    p->limits.max_message_bytes = (size_t)cfg->input_max_message_bytes;
    p->limits.max_user_bytes = (size_t)cfg->input_max_user_id_bytes;
    p->limits.max_json_depth = (int)cfg->input_max_json_depth;
    p->item_cap = (size_t)cfg->batch_max_messages;
    p->items = calloc(p->item_cap, sizeof(*p->items));
    p->misses = calloc(p->item_cap, sizeof(*p->misses));
    p->batch_parts = calloc(p->item_cap, sizeof(*p->batch_parts));
    p->steps = calloc(p->item_cap, sizeof(*p->steps));
    p->cache = state_cache_new((size_t)cfg->state_cache_max_entries);
    if (!p->items || !p->misses || !p->batch_parts || !p->steps || !p->cache || !p->metrics) {
        snprintf(errstr, errstr_size, "out of memory");
        pipeline_destroy(p);
        return NULL;
    }
    if (ttl_policy_init(&p->ttl, cfg->state_ttl_ms, cfg->state_ttl_update,
                        cfg->state_ttl_visibility) != 0) {
        snprintf(errstr, errstr_size, "state.ttl.update or state.ttl.visibility: unknown value");
        pipeline_destroy(p);
        return NULL;
    }
    if (strcmp(cfg->state_backend, "memory") == 0) {
        log_warn("state", "state.backend=memory: state lives only in this process and is lost "
                 "when it stops or its partitions move; NOT durable, for demos and tests");
    } else {
        store_options_t opts = {
            .url = cfg->redis_url,
            .key_prefix = cfg->redis_key_prefix,
            .topic = cfg->input_topic,
            .password_file = cfg->redis_password_file,
            .connect_timeout_ms = cfg->redis_connect_timeout_ms,
            .command_timeout_ms = cfg->redis_command_timeout_ms,
        };
        p->store = store_new(&opts, errstr, errstr_size);
        if (p->store) p->query_store = store_new(&opts, errstr, errstr_size);
        if (!p->store || !p->query_store) {
            pipeline_destroy(p);
            return NULL;
        }
    }
    p->io = kafka_io_new(cfg, on_rebalance, stats_cb, p, errstr, errstr_size);
    if (p->io) {
        p->io->on_delivery = on_alert_delivered;
        p->io->app = p;
    }
    if (!p->io) {
        pipeline_destroy(p);
        return NULL;
    }
    p->base_rules = p->rules = cfg->rules;
    if (cfg->rules_topic[0]) {
        p->control = rule_control_new(cfg, on_rule_record, p, RULES_TOPIC_CATCH_UP_MS, errstr,
                                      errstr_size);
        if (!p->control) {
            pipeline_destroy(p);
            return NULL;
        }
    }
    log_rules("in force", &p->rules);
    if (kafka_io_subscribe(p->io, cfg->input_topic, errstr, errstr_size) != 0) {
        pipeline_destroy(p);
        return NULL;
    }
    return p;
}

void pipeline_destroy_kafka(pipeline_t *p) {
    /* Closing the consumer runs the revoke callback, which still needs the
     * store, the cache and the producer: tear down Kafka first. */
    kafka_io_t *io = p->io;
    rule_control_destroy(p->control);
    p->control = NULL;
    kafka_io_destroy(io);
    pthread_mutex_lock(&p->lock);
    p->io = NULL;
    pthread_mutex_unlock(&p->lock);
}

void pipeline_destroy(pipeline_t *p) {
    if (!p) return;
    if (p->io) pipeline_destroy_kafka(p);
    rule_control_destroy(p->control);
    rule_overrides_clear(&p->overrides);
    release_batch(p);
    store_destroy(p->store);
    store_destroy(p->query_store);
    state_cache_destroy(p->cache);
    metrics_destroy(p->metrics);
    pthread_mutex_destroy(&p->lock);
    free(p->items);
    free(p->misses);
    free(p->owned);
    free(p->batch_parts);
    free(p->pending);
    free(p->steps);
    free(p->step_users);
    free(p->step_alerts);
    for (size_t i = 0; i < p->acked_count; i++) free(p->acked[i]);
    free(p->acked);
    free(p);
}
