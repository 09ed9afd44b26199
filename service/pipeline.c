/* pipeline: process_batch in protocol order, the run loop, the wiring of
 * assign and revoke, and new and destroy.
 *
 * Ordering is the whole point. Dead letters are acknowledged before the
 * batch's atomic Redis step; the step writes each partition's users, its
 * new checkpoint and its output records (to an outbox) all or nothing;
 * records are produced from it afterwards and removed once acknowledged;
 * offsets are stored last. The step runs on step_flight's thread while the
 * next batch is applied, and lands before that batch's step is launched.
 * With output.guarantee=exactly_once the landed batches' records and
 * offsets go out in Kafka transactions instead (txn_commit). With the
 * memory backend there is no step: the batch's offsets are sealed in the
 * acknowledgement watermark and stored as its records' delivery reports
 * come in, so the loop never waits for them. See ARCHITECTURE.md.
 *
 * The lock guards what the HTTP thread's state query reads (the cache and
 * the owned partitions): the consumer thread holds it while it processes a
 * batch or a rebalance. */
#include "pipeline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ack_watermark.h"
#include "batch.h"
#include "clock.h"
#include "dead_letter.h"
#include "kafka_io.h"
#include "log.h"
#include "metrics.h"
#include "ops_http.h"
#include "outbox.h"
#include "partitions.h"
#include "redis_retry.h"
#include "state_cache.h"
#include "state_ttl.h"
#include "step_flight.h"
#include "store_redis.h"
#include "txn_commit.h"

#define POLL_TIMEOUT_MS 100
#define EXPIRY_SCAN_MAX 1000 /* entries examined per cleanup pass */
#define RULES_TOPIC_CATCH_UP_MS 30000

struct pipeline {
    const config_t *cfg;
    metrics_t *metrics;
    state_cache_t *cache;
    store_t *store;       /* NULL: memory backend */
    store_t *query_store; /* the HTTP thread's own connection */
    step_flight_t *flight; /* the atomic step's thread and connection; NULL: memory */
    txn_commit_t *txn;     /* exactly_once's commits (a no-op otherwise) */
    ack_watermark_t *acks; /* memory backend only */
    kafka_io_t *io;
    dead_letter_t *dead_letters;
    outbox_t *outbox;
    partitions_t *partitions;
    batch_t *batch;
    rule_control_t *rules;
    ops_http_t *ops;
    ttl_policy_t ttl;
    redis_retry_t retry;
    batch_env_t env;
    int64_t next_cleanup_ms;
    int fatal;

    pthread_mutex_t lock;
    atomic_int_least64_t heartbeat_ms;
    atomic_int fatal_seen;
    char instance[128]; /* hostname:pid, named in state answers */
};

static int fail(pipeline_t *p) {
    p->fatal = 1;
    atomic_store(&p->fatal_seen, 1);
    return -1;
}

/* Copies what the cache and the store count into the metrics. */
static void publish_state_metrics(pipeline_t *p) {
    state_cache_stats_t cs = state_cache_stats(p->cache);
    atomic_store(&p->metrics->cache_hits, cs.hits);
    atomic_store(&p->metrics->cache_misses, cs.misses);
    atomic_store(&p->metrics->cache_evictions, cs.evictions);
    atomic_store(&p->metrics->cache_expirations, cs.expirations);
    atomic_store(&p->metrics->cached_users, (int64_t)state_cache_count(p->cache));
    atomic_store(&p->metrics->assigned_partitions,
                 (int64_t)partitions_owned_count(p->partitions));
    kafka_txn_stats_t txn = kafka_io_txn_stats(p->io);
    atomic_store(&p->metrics->transactions_committed, txn.committed);
    atomic_store(&p->metrics->transactions_aborted, txn.aborted);
    atomic_store(&p->metrics->producer_restarts, txn.producer_restarts);
    if (p->store) {
        atomic_store(&p->metrics->redis_commands, store_commands_total(p->store) +
                                                      step_flight_commands_total(p->flight));
        atomic_store(&p->metrics->redis_errors,
                     store_errors_total(p->store) + step_flight_errors_total(p->flight));
        atomic_store(&p->metrics->redis_redirects, store_redirects_total(p->store) +
                                                       step_flight_redirects_total(p->flight));
        atomic_store(&p->metrics->redis_map_reads, store_map_reads_total(p->store) +
                                                       step_flight_map_reads_total(p->flight));
    }
}

/* Memory backend: stores each partition's offset as far as every record
 * produced for it was acknowledged. */
static void store_acknowledged_offsets(pipeline_t *p) {
    int32_t parts[64];
    int64_t next[64];
    size_t n;
    if (!p->acks) return;
    do {
        n = ack_watermark_advance(p->acks, parts, next, 64);
        kafka_io_store_offsets(p->io, p->cfg->input_topic, parts, next, n);
    } while (n == 64);
}

/* Memory backend: the batch's offsets wait in the watermark, stored by
 * store_acknowledged_offsets() once the reports are in. */
static int seal_batch_offsets(pipeline_t *p) {
    int32_t partition;
    int64_t next_offset;
    for (size_t i = 0; partitions_batch_landed(p->partitions, i, &partition, &next_offset); i++)
        if (ack_watermark_seal(p->acks, partition, next_offset) != 0) {
            log_error("pipeline", "out of memory tracking acknowledgements");
            return -1;
        }
    return 0;
}

/* Lands the step in flight, if any: settles its partitions, produces the
 * records it wrote and stores its offsets (exactly_once: commits both in
 * one transaction). A refused partition, or one whose transaction aborted,
 * also takes back its messages from the batch being applied. */
static int land_step(pipeline_t *p) {
    if (!p->flight || !step_flight_busy(p->flight)) return 0;
    if (partitions_land_batch(p->partitions, p->flight, p->cache, p->outbox, &p->retry,
                              p->io) != 0)
        return fail(p);
    if (outbox_produce_sealed(p->outbox) != 0) return fail(p);
    partitions_store_offsets(p->partitions, p->io);
    if (txn_commit_if_due(p->txn, false) != 0) return fail(p);
    size_t refused_count;
    const int32_t *refused = partitions_refused(p->partitions, &refused_count);
    size_t discarded = refused_count ? batch_discard_partitions(p->batch, refused,
                                                                refused_count)
                                     : 0;
    if (discarded)
        log_warn("state", "discarded %zu message(s) of the batch applied after the refused "
                 "or aborted step; they are read again from Redis's checkpoint", discarded);
    return 0;
}

/* Memory backend: nothing to write, and nothing to wait for. */
static int finish_in_memory(pipeline_t *p) {
    state_cache_mark_all_clean(p->cache);
    if (outbox_produce_queued(p->outbox) != 0 || seal_batch_offsets(p) != 0) return fail(p);
    batch_release(p->batch);
    state_cache_evict(p->cache);
    if (outbox_complete_deliveries(p->outbox, &p->retry) != 0) return fail(p);
    store_acknowledged_offsets(p);
    return 0;
}

/* The protocol, in order. The batch is applied while the last batch's step
 * may still be in flight; that step lands before this one's is launched,
 * as this one is conditioned on the checkpoints it writes. On failure the
 * pipeline is marked fatal and nothing more is committed. */
static int process_batch(pipeline_t *p) {
    if (p->fatal) return -1;
    if (batch_count(p->batch) == 0) return land_step(p);
    /* A step that is back already lands first: its records go out now,
     * not after this batch is applied. */
    if (p->flight && step_flight_ready(p->flight) && land_step(p) != 0) return -1;
    if (batch_count(p->batch) == 0) return 0; /* all of it refused */
    int64_t started = clock_monotonic_ms();
    uint64_t failures_before = kafka_io_delivery_failures(p->io);
    long dead_letters = batch_apply(p->batch, &p->env, rule_control_rules(p->rules));
    if (dead_letters < 0) return fail(p);
    if (!p->flight) {
        if (finish_in_memory(p) != 0) return -1;
    } else {
        /* The checkpoint passes the dead letters: they must be in Kafka
         * first. Acknowledged records leave the Redis outbox before the
         * step goes, not behind it. */
        if (land_step(p) != 0 ||
            (dead_letters > 0 && kafka_io_await_deliveries(p->io, failures_before) != 0) ||
            outbox_complete_deliveries(p->outbox, &p->retry) != 0 ||
            partitions_launch_batch(p->partitions, p->flight, p->cache, p->outbox,
                                    p->ttl.ttl_ms) != 0)
            return fail(p);
        batch_release(p->batch);
        state_cache_evict(p->cache);
        if (!p->cfg->batch_overlap && land_step(p) != 0) return -1;
    }
    metrics_observe(&p->metrics->batch_seconds,
                    (double)(clock_monotonic_ms() - started) / 1000.0);
    publish_state_metrics(p);
    return 0;
}

/* Everything gathered is processed, its step landed and its records
 * acknowledged: 1, or 0 when something failed. */
static int finish_everything(pipeline_t *p) {
    if (process_batch(p) != 0 || land_step(p) != 0) return 0;
    if (txn_commit_if_due(p->txn, true) != 0) {
        fail(p);
        return 0;
    }
    return outbox_drain(p->outbox, &p->retry) == 0 && !outbox_failed(p->outbox);
}

/* ---- rebalance (inside a poll of the consumer thread) -------------------- */

/* Each partition resumes from its Redis checkpoint (the group's committed
 * offset only without one), once what its outbox held is delivered. */
static void on_assign(void *ctx, kafka_assigned_t *parts, size_t count) {
    pipeline_t *p = ctx;
    pthread_mutex_lock(&p->lock);
    /* exactly_once: a redelivery commits a transaction of its own, so
     * what the open one holds commits (or starts over) first. */
    if (config_exactly_once(p->cfg) && land_step(p) == 0 && txn_commit_if_due(p->txn, true) != 0)
        fail(p);
    for (size_t i = 0; i < count && !p->fatal; i++) {
        if (!p->store) { /* no checkpoint: librdkafka's committed offset */
            partitions_own(p->partitions, parts[i].partition, -1);
            continue;
        }
        outbox_redelivery_t r = {.outbox = p->outbox, .partition = parts[i].partition,
                                 .committed = parts[i].committed_unknown ? -2
                                                                         : parts[i].committed};
        if (partitions_assign(p->partitions, p->store, &p->retry, &parts[i]) != 0) {
            fail(p);
            break;
        }
        r.checkpoint = partitions_checkpoint(p->partitions, parts[i].partition);
        if (redis_retry_run(&p->retry, outbox_redeliver_step, &r, "redelivering the outbox") != 0)
            fail(p);
    }
    publish_state_metrics(p);
    pthread_mutex_unlock(&p->lock);
}

/* Finishes what was gathered (after a lost assignment, another member may
 * already own those partitions: their messages are dropped unprocessed and
 * uncommitted, so the new owner processes them once), then forgets the
 * partitions' users so their next owner reads them from Redis. */
static int on_revoke(void *ctx, const int32_t *partitions, size_t count, int lost) {
    pipeline_t *p = ctx;
    pthread_mutex_lock(&p->lock);
    if (lost) {
        batch_discard_partitions(p->batch, partitions, count);
        txn_commit_set_losing(p->txn, partitions, count);
    }
    int done = finish_everything(p);
    txn_commit_set_losing(p->txn, NULL, 0);
    if (done) store_acknowledged_offsets(p);
    size_t dropped = 0;
    for (size_t i = 0; i < count; i++) {
        dropped += state_cache_drop_partition(p->cache, partitions[i]);
        partitions_disown(p->partitions, partitions[i]);
        if (p->acks) ack_watermark_forget(p->acks, partitions[i]);
    }
    log_info("state", "forgot %zu cached user(s) of the revoked partitions", dropped);
    publish_state_metrics(p);
    pthread_mutex_unlock(&p->lock);
    return done;
}

static void on_stats(void *ctx, const char *json) {
    pipeline_t *p = ctx;
    int before = atomic_load(&p->metrics->kafka_brokers_up);
    metrics_update_from_kafka_stats(p->metrics, json, p->cfg->input_topic);
    int after = atomic_load(&p->metrics->kafka_brokers_up);
    if (before > 0 && after == 0) log_warn("kafka", "no broker is reachable");
    if (before == 0 && after > 0) log_info("kafka", "%d broker(s) reachable again", after);
}

static void on_delivery(void *ctx, void *record_opaque, int failed) {
    pipeline_t *p = ctx;
    outbox_on_delivery(p->outbox, record_opaque, failed);
    if (outbox_failed(p->outbox)) fail(p);
}

/* ---- the loop --------------------------------------------------------- */

/* Idle users must not keep memory: drop expired cache entries now and
 * then, a bounded number per pass, like Redis's active expiry. */
static void clean_up_expired_users(pipeline_t *p) {
    if (p->ttl.ttl_ms <= 0) return;
    int64_t now = clock_now_ms();
    if (now < p->next_cleanup_ms) return;
    p->next_cleanup_ms = now + p->cfg->state_ttl_cleanup_interval_ms;
    size_t dropped = state_cache_drop_expired(p->cache, now, EXPIRY_SCAN_MAX);
    if (dropped) log_debug("state", "dropped %zu expired user(s) from the cache", dropped);
}

static uint64_t counted(const atomic_uint_least64_t *counter) { return atomic_load(counter); }

static void log_summary(const pipeline_t *p) {
    const metrics_t *m = p->metrics;
    uint64_t alerts = 0;
    for (int r = 0; r < RULE_TYPE_COUNT; r++) alerts += counted(&m->alerts[r]);
    uint64_t valid = counted(&m->events[EVENT_VALID]);
    uint64_t dead = counted(&m->events[EVENT_DEAD_LETTER]);
    log_info("pipeline", "%s: %llu consumed, %llu valid, %llu dead-lettered, %llu alerts",
             p->fatal ? "stopped on error" : "stopped",
             (unsigned long long)(valid + dead + counted(&m->events[EVENT_REPLAYED])),
             (unsigned long long)valid, (unsigned long long)dead, (unsigned long long)alerts);
}

int pipeline_run(pipeline_t *p, volatile sig_atomic_t *stop) {
    p->retry.stop = stop;
    while (!*stop && !p->fatal) {
        atomic_store(&p->heartbeat_ms, clock_now_ms());
        rule_control_refresh(p->rules); /* between batches: one rule set per batch */
        if (rule_control_failed(p->rules)) {
            fail(p);
            break;
        }
        /* With a step in flight, take only what is fetched already: when
         * nothing is, landing the step comes first. */
        bool flying = p->flight && step_flight_busy(p->flight);
        batch_gather(p->batch, p->io, flying ? 0 : POLL_TIMEOUT_MS);
        kafka_io_serve_deliveries(p->io); /* stray delivery reports */
        pthread_mutex_lock(&p->lock);
        int rc = process_batch(p);
        /* exactly_once: what has gathered long enough commits, busy or
         * idle; with a step in flight, once it has landed. */
        bool landed = !(p->flight && step_flight_busy(p->flight));
        if (rc == 0 && landed && txn_commit_if_due(p->txn, false) != 0) rc = fail(p);
        /* Idle: removing what was acknowledged waits behind no step. */
        if (rc == 0 && landed) rc = outbox_complete_deliveries(p->outbox, &p->retry);
        if (rc == 0) store_acknowledged_offsets(p);
        clean_up_expired_users(p);
        pthread_mutex_unlock(&p->lock);
        if (rc != 0) fail(p);
    }
    pthread_mutex_lock(&p->lock);
    if (finish_everything(p)) store_acknowledged_offsets(p);
    pthread_mutex_unlock(&p->lock);
    log_summary(p);
    return p->fatal ? 1 : 0;
}

void pipeline_set_rules_reload(pipeline_t *p, volatile sig_atomic_t *requested,
                               rule_loader_fn load, void *ctx) {
    rule_control_set_reload(p->rules, requested, load, ctx);
}

http_handlers_t pipeline_http_handlers(pipeline_t *p) { return ops_http_handlers(p->ops); }

/* ---- new and destroy ---------------------------------------------------- */

static int connect_redis(pipeline_t *p, char *errstr, size_t errstr_size) {
    const config_t *cfg = p->cfg;
    if (strcmp(cfg->state_backend, "memory") == 0) {
        log_warn("state", "state.backend=memory: state lives only in this process and is lost "
                 "when it stops or its partitions move; NOT durable, for demos and tests");
        return 0;
    }
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
    if (p->query_store) p->flight = step_flight_new(&opts, errstr, errstr_size);
    return p->flight ? 0 : -1;
}

/* The modules below the conductor, each given only what it needs. */
static int wire_modules(pipeline_t *p, char *errstr, size_t errstr_size) {
    const config_t *cfg = p->cfg;
    kafka_io_callbacks_t callbacks = {.ctx = p, .on_assign = on_assign, .on_revoke = on_revoke,
                                      .on_stats = on_stats, .on_delivery = on_delivery};
    p->io = kafka_io_new(cfg, &callbacks, errstr, errstr_size);
    if (!p->io) return -1;
    p->retry = (redis_retry_t){.io = p->io, .metrics = p->metrics,
                               .heartbeat_ms = &p->heartbeat_ms};
    p->dead_letters = dead_letter_new(cfg->dlq_topic, p->io, p->metrics);
    if (!p->store && !(p->acks = ack_watermark_new())) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    p->outbox = outbox_new(cfg, p->io, p->store, p->acks, p->dead_letters, p->metrics);
    p->partitions = partitions_new(cfg->input_topic, (size_t)cfg->batch_max_messages);
    p->batch = batch_new(cfg);
    txn_commit_env_t txn_env = {.cfg = cfg, .io = p->io, .outbox = p->outbox,
                                .partitions = p->partitions, .cache = p->cache};
    p->txn = txn_commit_new(&txn_env);
    if (!p->dead_letters || !p->outbox || !p->partitions || !p->batch || !p->txn) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    p->env = (batch_env_t){.cfg = cfg, .cache = p->cache, .store = p->store,
                           .partitions = p->partitions, .outbox = p->outbox,
                           .dead_letters = p->dead_letters, .metrics = p->metrics,
                           .ttl = &p->ttl, .retry = &p->retry};
    p->rules = rule_control_new(cfg, p->dead_letters, p->metrics, RULES_TOPIC_CATCH_UP_MS,
                                errstr, errstr_size);
    if (!p->rules) return -1;
    ops_sources_t sources = {
        .cfg = cfg, .metrics = p->metrics, .lock = &p->lock, .cache = p->cache,
        .partitions = p->partitions, .ttl = &p->ttl, .query_store = p->query_store,
        .io = p->io, .rules = p->rules, .heartbeat_ms = &p->heartbeat_ms,
        .fatal = &p->fatal_seen,
        .started_ms = clock_now_ms(), .instance = p->instance,
    };
    p->ops = ops_http_new(&sources);
    if (!p->ops) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    return kafka_io_subscribe(p->io, cfg->input_topic, errstr, errstr_size);
}

pipeline_t *pipeline_new(const config_t *cfg, char *errstr, size_t errstr_size) {
    pipeline_t *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    pthread_mutex_init(&p->lock, NULL);
    atomic_init(&p->heartbeat_ms, clock_now_ms());
    atomic_init(&p->fatal_seen, 0);
    char host[64] = "unknown";
    gethostname(host, sizeof(host) - 1);
    snprintf(p->instance, sizeof(p->instance), "%s:%d", host, (int)getpid());
    p->metrics = metrics_new();
    p->cache = state_cache_new((size_t)cfg->state_cache_max_entries);
    if (!p->metrics || !p->cache) {
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
    if (connect_redis(p, errstr, errstr_size) != 0 || wire_modules(p, errstr, errstr_size) != 0) {
        pipeline_destroy(p);
        return NULL;
    }
    return p;
}

void pipeline_destroy(pipeline_t *p) {
    if (!p) return;
    /* Closing the consumer runs the revoke callback, which still needs
     * every module: Kafka goes first. */
    kafka_io_destroy(p->io);
    p->io = NULL;
    rule_control_destroy(p->rules);
    ops_http_destroy(p->ops);
    batch_destroy(p->batch);
    txn_commit_destroy(p->txn);
    partitions_destroy(p->partitions);
    outbox_destroy(p->outbox);
    ack_watermark_destroy(p->acks);
    dead_letter_destroy(p->dead_letters);
    step_flight_destroy(p->flight);
    store_destroy(p->store);
    store_destroy(p->query_store);
    state_cache_destroy(p->cache);
    metrics_destroy(p->metrics);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
