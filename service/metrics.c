/* metrics: atomics in, Prometheus text out. Names follow the Prometheus
 * conventions: a fraud_ prefix, _total for counters, _seconds for time. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

static const double BUCKET_BOUNDS[METRICS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static const char *const EVENT_RESULTS[EVENT_RESULT_COUNT] = {"valid", "dead_letter",
                                                               "replayed"};

metrics_t *metrics_new(void) {
    metrics_t *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    for (int i = 0; i < METRICS_MAX_PARTITIONS; i++) atomic_init(&m->consumer_lag[i], -1);
    atomic_init(&m->kafka_brokers_up, -1);
    atomic_init(&m->redis_up, 1);
    return m;
}

void metrics_destroy(metrics_t *m) { free(m); }

void metrics_add(atomic_uint_least64_t *counter, uint64_t n) {
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

void metrics_observe(histogram_t *h, double seconds) {
    int i = 0;
    if (seconds < 0) seconds = 0;
    while (i < METRICS_BUCKETS && seconds > BUCKET_BOUNDS[i]) i++;
    if (i < METRICS_BUCKETS) metrics_add(&h->buckets[i], 1);
    metrics_add(&h->count, 1);
    metrics_add(&h->sum_us, (uint64_t)(seconds * 1e6));
}

void metrics_update_from_kafka_stats(metrics_t *m, const char *json, const char *topic) {
    cJSON *root = cJSON_Parse(json);
    if (!root) return;
    int up = 0;
    const cJSON *broker;
    cJSON_ArrayForEach(broker, cJSON_GetObjectItem(root, "brokers")) {
        const cJSON *state = cJSON_GetObjectItem(broker, "state");
        const cJSON *nodeid = cJSON_GetObjectItem(broker, "nodeid");
        const cJSON *source = cJSON_GetObjectItem(broker, "source");
        /* Bootstrap entries (nodeid -1) and the logical coordinator handle
         * are not brokers of their own. */
        if (cJSON_IsString(state) && strcmp(state->valuestring, "UP") == 0 &&
            cJSON_IsNumber(nodeid) && nodeid->valuedouble >= 0 &&
            !(cJSON_IsString(source) && strcmp(source->valuestring, "logical") == 0))
            up++;
    }
    atomic_store(&m->kafka_brokers_up, up);
    const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "topics"), topic);
    const cJSON *partition;
    cJSON_ArrayForEach(partition, cJSON_GetObjectItem(t, "partitions")) {
        const cJSON *id = cJSON_GetObjectItem(partition, "partition");
        const cJSON *desired = cJSON_GetObjectItem(partition, "desired");
        const cJSON *hi = cJSON_GetObjectItem(partition, "hi_offset");
        const cJSON *app = cJSON_GetObjectItem(partition, "app_offset");
        const cJSON *next = cJSON_GetObjectItem(partition, "next_offset");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 ||
            id->valuedouble >= METRICS_MAX_PARTITIONS || !cJSON_IsNumber(hi) ||
            !cJSON_IsNumber(app) || !cJSON_IsNumber(next))
            continue;
        /* librdkafka's own consumer_lag stays -1 until the application has
         * consumed from the partition; an idle assigned partition is 0
         * behind its fetch position. */
        int64_t position = app->valuedouble >= 0 ? (int64_t)app->valuedouble
                                                 : (int64_t)next->valuedouble;
        int64_t lag = -1;
        if (cJSON_IsTrue(desired) && hi->valuedouble >= 0 && position >= 0)
            lag = (int64_t)hi->valuedouble > position ? (int64_t)hi->valuedouble - position : 0;
        atomic_store(&m->consumer_lag[(int)id->valuedouble], lag);
    }
    cJSON_Delete(root);
}

typedef struct text {
    char *buf;
    size_t len, cap;
    int failed;
} text_t;

static void append(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(text_t *t, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        if (t->failed) return;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *grown = realloc(t->buf, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

static uint64_t load(const atomic_uint_least64_t *v) {
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void counter_header(text_t *t, const char *name, const char *help) {
    append(t, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
}

static void gauge_header(text_t *t, const char *name, const char *help) {
    append(t, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void render_histogram(text_t *t, const char *name, const char *help,
                             const histogram_t *h) {
    uint64_t cumulative = 0;
    append(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        cumulative += load(&h->buckets[i]);
        append(t, "%s_bucket{le=\"%g\"} %llu\n", name, BUCKET_BOUNDS[i],
               (unsigned long long)cumulative);
    }
    append(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)load(&h->count));
    append(t, "%s_sum %.6f\n", name, (double)load(&h->sum_us) / 1e6);
    append(t, "%s_count %llu\n", name, (unsigned long long)load(&h->count));
}

char *metrics_render_new(const metrics_t *m) {
    text_t t = {.buf = malloc(8192), .cap = 8192};
    if (!t.buf) return NULL;
    t.buf[0] = '\0';

    counter_header(&t, "fraud_events_total", "Payments consumed, by result.");
    for (int i = 0; i < EVENT_RESULT_COUNT; i++)
        append(&t, "fraud_events_total{result=\"%s\"} %llu\n", EVENT_RESULTS[i],
               (unsigned long long)load(&m->events[i]));
    counter_header(&t, "fraud_dead_letters_total", "Messages sent to the dead-letter topic, by reason.");
    for (int r = 1; r < DEAD_LETTER_REASON_COUNT; r++)
        append(&t, "fraud_dead_letters_total{reason=\"%s\"} %llu\n",
               dead_letter_reason_code(r), (unsigned long long)load(&m->dead_letters[r]));
    counter_header(&t, "fraud_alerts_total",
                   "Alerts raised, by rule: committed to the outbox with the state that raised them.");
    for (int r = 0; r < RULE_TYPE_COUNT; r++)
        if (r != RULE_COUNT_AVERAGE)
            append(&t, "fraud_alerts_total{rule=\"%s\"} %llu\n", rule_name((rule_id_t)r),
                   (unsigned long long)load(&m->alerts[r]));
    counter_header(&t, "fraud_alerts_acknowledged_total",
                   "Alerts the broker acknowledged, by rule (redeliveries not included).");
    for (int r = 0; r < RULE_TYPE_COUNT; r++)
        if (r != RULE_COUNT_AVERAGE)
            append(&t, "fraud_alerts_acknowledged_total{rule=\"%s\"} %llu\n",
                   rule_name((rule_id_t)r), (unsigned long long)load(&m->alerts_acknowledged[r]));
    counter_header(&t, "fraud_averages_total",
                   "count_average events produced to averages.topic and acknowledged.");
    append(&t, "fraud_averages_total %llu\n", (unsigned long long)load(&m->averages_produced));
    counter_header(&t, "fraud_totals_total",
                   "Running totals produced to totals.topic and acknowledged.");
    append(&t, "fraud_totals_total %llu\n", (unsigned long long)load(&m->totals_produced));
    counter_header(&t, "fraud_users_erased_total",
                   "Users whose state a tombstone on the input topic erased.");
    append(&t, "fraud_users_erased_total %llu\n", (unsigned long long)load(&m->users_erased));
    counter_header(&t, "fraud_late_payments_total",
                   "Payments older than their user's latest event time by more than "
                   "time.max.out.of.orderness.ms: counted in totals, skipped by window rules.");
    append(&t, "fraud_late_payments_total %llu\n", (unsigned long long)load(&m->late_payments));
    counter_header(&t, "fraud_late_produced_total",
                   "Late payments produced to late.topic and acknowledged.");
    append(&t, "fraud_late_produced_total %llu\n", (unsigned long long)load(&m->late_produced));
    gauge_header(&t, "fraud_rule_enabled", "The rules in force: 1 when the rule is on.");
    for (int r = 0; r < RULE_COUNT; r++)
        append(&t, "fraud_rule_enabled{rule=\"%s\"} %d\n", rule_name((rule_id_t)r),
               atomic_load(&m->rule_enabled[r]));
    gauge_header(&t, "fraud_rules_active",
                 "Rule instances in force and not paused, by type.");
    for (int r = 0; r < RULE_TYPE_COUNT; r++)
        append(&t, "fraud_rules_active{type=\"%s\"} %d\n", rule_name((rule_id_t)r),
               atomic_load(&m->rules_active[r]));
    counter_header(&t, "fraud_aggregate_payments_dropped_total",
                   "Payments an aggregate instance dropped from a user's window to keep "
                   "max.events: its aggregate then covers the newest max.events only.");
    append(&t, "fraud_aggregate_payments_dropped_total %llu\n",
           (unsigned long long)load(&m->aggregate_payments_dropped));
    counter_header(&t, "fraud_rule_updates_total",
                   "Rule changes by source (sighup, topic) and result (applied, rejected).");
    for (int src = 0; src < 2; src++)
        for (int res = 0; res < 2; res++)
            append(&t, "fraud_rule_updates_total{source=\"%s\",result=\"%s\"} %llu\n",
                   src ? "topic" : "sighup", res ? "rejected" : "applied",
                   (unsigned long long)load(&m->rule_updates[src][res]));
    counter_header(&t, "fraud_alerts_redelivered_total",
                   "Alerts produced again from a partition's outbox after a crash or handover.");
    append(&t, "fraud_alerts_redelivered_total %llu\n",
           (unsigned long long)load(&m->alerts_redelivered));
    counter_header(&t, "fraud_transactions_total",
                   "Kafka transactions (output.guarantee=exactly_once) by result.");
    append(&t, "fraud_transactions_total{result=\"committed\"} %llu\n",
           (unsigned long long)load(&m->transactions_committed));
    append(&t, "fraud_transactions_total{result=\"aborted\"} %llu\n",
           (unsigned long long)load(&m->transactions_aborted));
    counter_header(&t, "fraud_producer_restarts_total",
                   "Transactional producers replaced after a fatal error.");
    append(&t, "fraud_producer_restarts_total %llu\n",
           (unsigned long long)load(&m->producer_restarts));
    counter_header(&t, "fraud_outboxes_cleared_total",
                   "Outboxes found on assignment whose records a committed transaction had "
                   "delivered: cleared without producing them again.");
    append(&t, "fraud_outboxes_cleared_total %llu\n",
           (unsigned long long)load(&m->outboxes_cleared));
    counter_header(&t, "fraud_redis_commands_total", "Redis commands sent by the consumer.");
    append(&t, "fraud_redis_commands_total %llu\n", (unsigned long long)load(&m->redis_commands));
    counter_header(&t, "fraud_redis_errors_total", "Failed Redis round trips (each is retried).");
    append(&t, "fraud_redis_errors_total %llu\n", (unsigned long long)load(&m->redis_errors));
    counter_header(&t, "fraud_redis_redirects_total",
                   "Redis Cluster redirections followed (MOVED, ASK).");
    append(&t, "fraud_redis_redirects_total %llu\n",
           (unsigned long long)load(&m->redis_redirects));
    counter_header(&t, "fraud_redis_slot_map_reads_total",
                   "Redis Cluster slot map reads (at start, then after a change).");
    append(&t, "fraud_redis_slot_map_reads_total %llu\n",
           (unsigned long long)load(&m->redis_map_reads));
    counter_header(&t, "fraud_cache_requests_total", "State cache lookups, by result.");
    append(&t, "fraud_cache_requests_total{result=\"hit\"} %llu\n",
           (unsigned long long)load(&m->cache_hits));
    append(&t, "fraud_cache_requests_total{result=\"miss\"} %llu\n",
           (unsigned long long)load(&m->cache_misses));
    counter_header(&t, "fraud_cache_evictions_total",
                   "Users dropped from the cache: past state.cache.max.entries, or expired.");
    append(&t, "fraud_cache_evictions_total{cause=\"size\"} %llu\n",
           (unsigned long long)load(&m->cache_evictions));
    append(&t, "fraud_cache_evictions_total{cause=\"ttl\"} %llu\n",
           (unsigned long long)load(&m->cache_expirations));

    gauge_header(&t, "fraud_cached_users", "Users in the in-process state cache.");
    append(&t, "fraud_cached_users %lld\n", (long long)atomic_load(&m->cached_users));
    gauge_header(&t, "fraud_assigned_partitions", "Input partitions assigned to this instance.");
    append(&t, "fraud_assigned_partitions %lld\n", (long long)atomic_load(&m->assigned_partitions));
    gauge_header(&t, "fraud_consumer_lag", "Messages behind the partition's end, from librdkafka statistics.");
    for (int i = 0; i < METRICS_MAX_PARTITIONS; i++) {
        long long lag = (long long)atomic_load(&m->consumer_lag[i]);
        if (lag >= 0) append(&t, "fraud_consumer_lag{partition=\"%d\"} %lld\n", i, lag);
    }
    gauge_header(&t, "fraud_kafka_brokers_up", "Brokers librdkafka reports UP (-1: no statistics yet).");
    append(&t, "fraud_kafka_brokers_up %d\n", atomic_load(&m->kafka_brokers_up));
    gauge_header(&t, "fraud_redis_up", "1 when the last Redis round trip of the consumer succeeded.");
    append(&t, "fraud_redis_up %d\n", atomic_load(&m->redis_up));

    render_histogram(&t, "fraud_batch_duration_seconds",
                     "Time to process one batch, from decode to stored offsets.", &m->batch_seconds);
    render_histogram(&t, "fraud_event_to_alert_seconds",
                     "From the payment's event time to the alert's acknowledgement.",
                     &m->event_to_alert_seconds);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}
