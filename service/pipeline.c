/* pipeline: the batch loop and the rebalance callback.
 *
 * Ordering is the whole point of this file. State reaches Redis and records
 * reach Kafka before an offset is stored; the rebalance callback finishes
 * the pending batch before giving partitions away. See ARCHITECTURE.md. */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "kafka_io.h"
#include "log.h"
#include "rules.h"
#include "state_cache.h"
#include "state_ttl.h"
#include "store_redis.h"

#define POLL_TIMEOUT_MS 100
#define BACKOFF_START_MS 100
#define BACKOFF_MAX_MS 5000
#define EXPIRY_SCAN_MAX 1000 /* entries examined per cleanup pass */

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
    ttl_policy_t ttl;
    int64_t next_cleanup_ms;
    volatile sig_atomic_t *stop;
    int fatal;
    pipeline_stats_t stats;
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

/* ---- decode and load -------------------------------------------------- */

static void decode_batch(pipeline_t *p) {
    for (size_t i = 0; i < p->item_count; i++) {
        batch_item_t *it = &p->items[i];
        const rd_kafka_message_t *m = it->msg;
        it->entry = NULL;
        it->reason = decode_payment(m->key, m->key_len, m->payload, m->len, &it->payment,
                                    it->reason_text, sizeof(it->reason_text));
    }
}

/* Retries a Redis step with capped exponential backoff. Logs once when
 * Redis goes away and once when it is back, never per attempt. Gives up
 * only when a stop is requested. */
typedef int (*redis_step_fn)(pipeline_t *p, size_t n, char *errstr, size_t errstr_size);

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

static int retry_redis_step(pipeline_t *p, redis_step_fn step, size_t n, const char *what) {
    char errstr[512];
    int64_t backoff = BACKOFF_START_MS;
    int failing = 0;
    for (;;) {
        if (step(p, n, errstr, sizeof(errstr)) == 0) {
            if (failing) {
                log_info("redis", "%s succeeded again; resuming consumption", what);
                set_consumption_paused(p, 0);
            }
            return 0;
        }
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

static int load_step(pipeline_t *p, size_t n, char *errstr, size_t errstr_size) {
    return store_load_users(p->store, p->misses, n, now_ms(), errstr, errstr_size);
}

static int write_step(pipeline_t *p, size_t n, char *errstr, size_t errstr_size) {
    size_t dirty_count;
    cache_entry_t **dirty = state_cache_dirty(p->cache, &dirty_count);
    (void)n;
    return store_write_users(p->store, dirty, dirty_count, p->cfg->state_ttl_ms, errstr,
                             errstr_size);
}

/* Finds or creates each user's cache entry; the ones not cached are loaded
 * from Redis together, in one pipelined round trip. */
static int attach_user_state(pipeline_t *p) {
    size_t miss_count = 0;
    for (size_t i = 0; i < p->item_count; i++) {
        batch_item_t *it = &p->items[i];
        if (it->reason != DECODE_OK) continue;
        const payment_t *pay = &it->payment;
        cache_entry_t *e = state_cache_get(p->cache, pay->user_id, pay->user_len);
        if (!e) {
            e = state_cache_put(p->cache, pay->user_id, pay->user_len, it->msg->partition);
            if (!e) {
                log_error("state", "out of memory caching user state");
                return -1;
            }
            p->misses[miss_count++] = e;
        }
        e->partition = it->msg->partition;
        it->entry = e;
    }
    if (miss_count == 0) return 0;
    if (!p->store) { /* memory backend: a user not cached has no state */
        for (size_t i = 0; i < miss_count; i++) p->misses[i]->flags |= CACHE_ENTRY_LOADED;
        return 0;
    }
    return retry_redis_step(p, load_step, miss_count, "loading user state");
}

/* ---- apply ------------------------------------------------------------ */

static int produce_dead_letter(pipeline_t *p, const batch_item_t *it) {
    const rd_kafka_message_t *m = it->msg;
    char partition[16], offset[24], errstr[512];
    snprintf(partition, sizeof(partition), "%d", (int)m->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)m->offset);
    const char *headers[] = {"fraud.dlq.reason", decode_reason_code(it->reason),
                             "fraud.dlq.error", it->reason_text,
                             "fraud.source.topic", rd_kafka_topic_name(m->rkt),
                             "fraud.source.partition", partition,
                             "fraud.source.offset", offset,
                             NULL};
    if (kafka_io_produce(p->io, p->cfg->dlq_topic, m->key, m->key_len, m->payload, m->len,
                         headers, errstr, sizeof(errstr)) != 0) {
        log_error("dlq", "%s", errstr);
        return -1;
    }
    p->stats.dead_lettered++;
    p->stats.dead_lettered_by_reason[it->reason]++;
    log_debug("dlq", "%s [%d] offset %lld: %s (%s)", rd_kafka_topic_name(m->rkt),
              (int)m->partition, (long long)m->offset, decode_reason_code(it->reason),
              it->reason_text);
    return 0;
}

static int produce_alert(pipeline_t *p, const batch_item_t *it, const alert_t *alert) {
    char errstr[512];
    char *json = alert_encode_new(alert);
    if (!json) {
        log_error("alert", "out of memory encoding an alert");
        return -1;
    }
    int rc = kafka_io_produce(p->io, p->cfg->alert_topic, it->payment.user_id,
                              it->payment.user_len, json, strlen(json), NULL, errstr,
                              sizeof(errstr));
    free(json);
    if (rc != 0) {
        log_error("alert", "%s", errstr);
        return -1;
    }
    p->stats.alerts++;
    return 0;
}

static int apply_payment_to_state(pipeline_t *p, batch_item_t *it) {
    cache_entry_t *e = it->entry;
    const payment_t *pay = &it->payment;
    const rd_kafka_message_t *m = it->msg;
    int64_t now = now_ms();
    decimal_t diff = 0, cum;

    ttl_on_read(&p->ttl, e, now); /* expired state may read as absent */
    if (!decimal_add(e->state.cum, pay->amount, &cum)) {
        it->reason = DECODE_CUMULATIVE_OVERFLOW;
        snprintf(it->reason_text, sizeof(it->reason_text),
                 "cumulative amount of the user would exceed the exact range");
        return produce_dead_letter(p, it);
    }
    int fires = rule_amount_jump_fires(e->state.count > 0, e->state.prev, pay->amount,
                                       p->cfg->amount_jump_threshold, &diff);
    decimal_t previous = e->state.prev;
    e->state.prev = pay->amount;
    e->state.cum = cum;
    e->state.count++;
    ttl_on_write(&p->ttl, e, now);
    state_cache_mark_dirty(p->cache, e);
    p->stats.valid++;
    if (!fires) return 0;

    int64_t kafka_ts = rd_kafka_message_timestamp(m, NULL);
    alert_t alert = {
        .rule = RULE_AMOUNT_JUMP,
        .user_id = pay->user_id,
        .amount = pay->amount,
        .previous_amount = previous,
        .diff = diff,
        .threshold = p->cfg->amount_jump_threshold,
        .cumulative_amount = e->state.cum,
        .event_count = e->state.count,
        .source_topic = rd_kafka_topic_name(m->rkt),
        .source_partition = m->partition,
        .source_offset = m->offset,
        .event_id = pay->event_id,
        .event_time_ms = pay->timestamp_ms >= 0 ? pay->timestamp_ms
                         : kafka_ts >= 0        ? kafka_ts
                                                : now,
        .detected_at_ms = now,
    };
    return produce_alert(p, it, &alert);
}

static int apply_batch(pipeline_t *p) {
    for (size_t i = 0; i < p->item_count; i++) {
        batch_item_t *it = &p->items[i];
        int rc = it->reason == DECODE_OK ? apply_payment_to_state(p, it)
                                         : produce_dead_letter(p, it);
        if (rc != 0) return -1;
    }
    return 0;
}

/* ---- persist, acknowledge, commit ------------------------------------- */

static int flush_dirty_users_to_redis(pipeline_t *p) {
    size_t dirty_count;
    state_cache_dirty(p->cache, &dirty_count);
    if (dirty_count == 0) return 0;
    if (p->store && retry_redis_step(p, write_step, dirty_count, "writing user state") != 0)
        return -1;
    state_cache_mark_all_clean(p->cache);
    return 0;
}

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

/* Stores next offset = last processed + 1 per partition; librdkafka's
 * auto-commit (and the revoke/close paths) commit what is stored. */
static int store_processed_offsets(pipeline_t *p) {
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < p->item_count; i++) {
        const rd_kafka_message_t *m = p->items[i].msg;
        const char *topic = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(offsets, topic, m->partition);
        if (!tp) tp = rd_kafka_topic_partition_list_add(offsets, topic, m->partition);
        if (m->offset + 1 > tp->offset) tp->offset = m->offset + 1;
    }
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(p->io->consumer, offsets);
    if (err) log_warn("kafka", "storing offsets: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(offsets);
    return 0;
}

static void release_batch(pipeline_t *p) {
    for (size_t i = 0; i < p->item_count; i++) rd_kafka_message_destroy(p->items[i].msg);
    p->item_count = 0;
}

/* Processes everything gathered so far. On failure the pipeline is marked
 * fatal and nothing of the batch is committed. */
static int process_batch(pipeline_t *p) {
    if (p->item_count == 0 || p->fatal) return p->fatal ? -1 : 0;
    uint64_t failures_before = p->io->delivery_failures;
    decode_batch(p);
    if (attach_user_state(p) != 0 || apply_batch(p) != 0 ||
        flush_dirty_users_to_redis(p) != 0 || await_produced_records(p, failures_before) != 0) {
        p->fatal = 1;
        return -1;
    }
    store_processed_offsets(p);
    p->stats.consumed += p->item_count;
    p->stats.batches++;
    release_batch(p);
    state_cache_evict(p->cache);
    return 0;
}

/* ---- rebalance -------------------------------------------------------- */

static void log_partitions(const char *what, const rd_kafka_topic_partition_list_t *parts) {
    char text[1024];
    size_t len = 0;
    text[0] = '\0';
    for (int i = 0; i < parts->cnt && len < sizeof(text) - 32; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s[%d]", i ? " " : "",
                                parts->elems[i].topic, (int)parts->elems[i].partition);
    log_info("kafka", "%s %d partition(s): %s", what, parts->cnt, text);
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
    log_partitions(lost ? "lost" : "revoked", parts);
    if (lost) discard_pending_of(p, parts);
    if (process_batch(p) == 0 && !lost) {
        rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            log_warn("kafka", "commit on revoke: %s", rd_kafka_err2str(err));
    }
    size_t dropped = 0;
    for (int i = 0; i < parts->cnt; i++)
        dropped += state_cache_drop_partition(p->cache, parts->elems[i].partition);
    log_info("state", "forgot %zu cached user(s) of the revoked partitions", dropped);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    pipeline_t *p = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t assign_err = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_partitions("assigned", parts);
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
}

/* ---- loop ------------------------------------------------------------- */

/* Collects up to batch.max.messages. A rebalance callback may run inside
 * any poll here and process what was gathered so far. */
static void gather_batch(pipeline_t *p) {
    int timeout = POLL_TIMEOUT_MS;
    while (p->item_count < p->item_cap && !p->fatal) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->io->consumer, timeout);
        if (!m) break;
        timeout = 0; /* take what is already fetched, do not wait for more */
        if (m->err) {
            log_warn("kafka", "consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
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
        gather_batch(p);
        rd_kafka_poll(p->io->producer, 0); /* serve stray delivery reports */
        if (process_batch(p) != 0) break;
        clean_up_expired_users(p);
    }
    if (!p->fatal) process_batch(p);
    log_info("pipeline", "%s: %llu consumed, %llu valid, %llu dead-lettered, %llu alerts",
             p->fatal ? "stopped on error" : "stopped", (unsigned long long)p->stats.consumed,
             (unsigned long long)p->stats.valid, (unsigned long long)p->stats.dead_lettered,
             (unsigned long long)p->stats.alerts);
    return p->fatal ? 1 : 0;
}

pipeline_stats_t pipeline_stats(const pipeline_t *p) { return p->stats; }

pipeline_t *pipeline_new(const config_t *cfg, char *errstr, size_t errstr_size) {
    pipeline_t *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    p->item_cap = (size_t)cfg->batch_max_messages;
    p->items = calloc(p->item_cap, sizeof(*p->items));
    p->misses = calloc(p->item_cap, sizeof(*p->misses));
    p->cache = state_cache_new((size_t)cfg->state_cache_max_entries);
    if (!p->items || !p->misses || !p->cache) {
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
            .password_file = cfg->redis_password_file,
            .connect_timeout_ms = cfg->redis_connect_timeout_ms,
            .command_timeout_ms = cfg->redis_command_timeout_ms,
        };
        p->store = store_new(&opts, errstr, errstr_size);
        if (!p->store) {
            pipeline_destroy(p);
            return NULL;
        }
    }
    p->io = kafka_io_new(cfg, on_rebalance, p, errstr, errstr_size);
    if (!p->io || kafka_io_subscribe(p->io, cfg->input_topic, errstr, errstr_size) != 0) {
        pipeline_destroy(p);
        return NULL;
    }
    return p;
}

void pipeline_destroy(pipeline_t *p) {
    if (!p) return;
    /* Closing the consumer runs the revoke callback, which still needs the
     * store, the cache and the producer: tear down Kafka first. */
    kafka_io_destroy(p->io);
    p->io = NULL;
    release_batch(p);
    store_destroy(p->store);
    state_cache_destroy(p->cache);
    free(p->items);
    free(p->misses);
    free(p);
}
