/* ops_http: the answers of /metrics, /healthz, /readyz, /users/{id} and
 * /rules. */
#include "ops_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "clock.h"
#include "log.h"

#define QUERY_LOCK_WAIT_MS 2000
#define STALL_LIMIT_MS 120000 /* liveness fails when the loop stops this long */
#define METADATA_TIMEOUT_MS 2000
#define PARTITION_COUNT_MAX_AGE_MS 10000

struct ops_http {
    ops_sources_t src;
    /* Touched only by the HTTP thread (libmicrohttpd's one polling thread). */
    int partition_count;
    int64_t partition_count_at_ms;
};

ops_http_t *ops_http_new(const ops_sources_t *sources) {
    ops_http_t *ops = calloc(1, sizeof(*ops));
    if (ops) ops->src = *sources;
    return ops;
}

void ops_http_destroy(ops_http_t *ops) { free(ops); }

static int http_metrics(void *ctx, char **body) {
    *body = metrics_render_new(((ops_http_t *)ctx)->src.metrics);
    return 200;
}

static int http_health(void *ctx, char **body) {
    const ops_sources_t *s = &((ops_http_t *)ctx)->src;
    int64_t now = clock_now_ms(), idle = now - atomic_load(s->heartbeat_ms);
    int fatal = atomic_load(s->fatal), ok = !fatal && idle < STALL_LIMIT_MS;
    char text[256];
    snprintf(text, sizeof(text),
             "{\"status\":\"%s\",\"uptime_seconds\":%lld,\"last_loop_ms_ago\":%lld,"
             "\"fatal_error\":%s}\n",
             ok ? "ok" : "failing", (long long)((now - s->started_ms) / 1000), (long long)idle,
             fatal ? "true" : "false");
    *body = strdup(text);
    return ok ? 200 : 503;
}

static int http_ready(void *ctx, char **body) {
    const ops_sources_t *s = &((ops_http_t *)ctx)->src;
    char errstr[256] = "";
    int redis_ok = !s->query_store || store_ping(s->query_store, errstr, sizeof(errstr)) == 0;
    int brokers = atomic_load(&s->metrics->kafka_brokers_up);
    long long assigned = (long long)atomic_load(&s->metrics->assigned_partitions);
    /* Before librdkafka's first statistics, an assignment proves Kafka. */
    int kafka_ok = brokers > 0 || (brokers < 0 && assigned > 0);
    int fatal = atomic_load(s->fatal);
    int ready = redis_ok && kafka_ok && !fatal;
    char text[512];
    snprintf(text, sizeof(text),
             "{\"ready\":%s,\"redis\":{\"backend\":\"%s\",\"reachable\":%s},"
             "\"kafka\":{\"reachable\":%s,\"brokers_up\":%d},"
             "\"partitions\":{\"assigned\":%lld,\"state\":\"%s\"},\"fatal_error\":%s}\n",
             ready ? "true" : "false", s->query_store ? "redis" : "memory",
             redis_ok ? "true" : "false", kafka_ok ? "true" : "false", brokers, assigned,
             assigned > 0 ? "assigned" : "waiting for assignment", fatal ? "true" : "false");
    *body = strdup(text);
    return ready ? 200 : 503;
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

static int lock_consumer_state(const ops_sources_t *s) {
    struct timespec deadline; /* pthread_mutex_timedlock wants CLOCK_REALTIME */
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += QUERY_LOCK_WAIT_MS / 1000;
    return pthread_mutex_timedlock(s->lock, &deadline);
}

/* The cache first, for the partitions this instance owns. */
static int lookup_cached_user(const ops_sources_t *s, const char *user, size_t len,
                              user_answer_t *a) {
    if (lock_consumer_state(s) != 0) return -1;
    int64_t now = clock_now_ms();
    for (size_t i = 0; i < partitions_owned_count(s->partitions) && !a->found; i++) {
        cache_entry_t *e =
            state_cache_peek(s->cache, partitions_owned_at(s->partitions, i), user, len);
        if (!e || e->state.count == 0) continue;
        if (ttl_is_expired(s->ttl, e, now) && s->ttl->visibility == TTL_NEVER_RETURN_EXPIRED)
            continue; /* expired reads as absent, and Redis has dropped it */
        a->touch_redis = ttl_on_read(s->ttl, e, now);
        a->found = 1;
        a->source = "cache";
        a->partition = e->partition;
        a->state = e->state;
        a->ttl_ms = e->expires_at_ms > 0 ? e->expires_at_ms - now : -1;
        a->owned = 1;
    }
    pthread_mutex_unlock(s->lock);
    return 0;
}

static int owns_partition(const ops_sources_t *s, int32_t partition) {
    pthread_mutex_lock(s->lock);
    int owned = partitions_owns(s->partitions, partition);
    pthread_mutex_unlock(s->lock);
    return owned;
}

/* The input topic's partition count, asked of the brokers at most every
 * 10 s: a metadata round trip per query would put a broker request (and its
 * wait behind the consumer's fetches) in front of every Redis lookup. A
 * partition added since shows up within those 10 s. */
static int input_partition_count(ops_http_t *ops) {
    int64_t now = clock_now_ms();
    if (ops->partition_count > 0 && now - ops->partition_count_at_ms < PARTITION_COUNT_MAX_AGE_MS)
        return ops->partition_count;
    int count = kafka_io_partition_count(ops->src.io, ops->src.cfg->input_topic,
                                         METADATA_TIMEOUT_MS);
    if (count > 0) {
        ops->partition_count = count;
        ops->partition_count_at_ms = now;
    }
    return count;
}

/* Redis, for a user no owned partition has cached. 0, 404 or 503. */
static int lookup_stored_user(ops_http_t *ops, const char *user, size_t len, user_answer_t *a,
                              const char **error) {
    const ops_sources_t *s = &ops->src;
    char errstr[512];
    store_user_view_t view;
    int partitions = input_partition_count(ops);
    if (partitions <= 0) {
        *error = "input topic metadata unavailable";
        return 503;
    }
    if (store_find_user(s->query_store, user, len, partitions, &view, errstr, sizeof(errstr)) !=
        0) {
        *error = "redis unavailable";
        return 503;
    }
    if (!view.found) return 0;
    a->found = 1;
    a->source = "redis";
    a->partition = view.partition;
    a->state = view.state;
    a->ttl_ms = view.ttl_ms;
    a->owned = owns_partition(s, view.partition);
    if (s->ttl->ttl_ms > 0 && s->ttl->update == TTL_UPDATE_ON_READ_AND_WRITE) {
        a->touch_redis = 1;
        a->ttl_ms = s->ttl->ttl_ms;
    }
    return 0;
}

static char *user_answer_json(const ops_sources_t *s, const char *user, const user_answer_t *a) {
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
    snprintf(num, sizeof(num), "%lld", (long long)a->state.event_ms);
    if (a->state.event_ms > 0 ? !cJSON_AddRawToObject(root, "event_time", num)
                              : !cJSON_AddNullToObject(root, "event_time"))
        goto done;
    if (a->ttl_ms >= 0) {
        snprintf(num, sizeof(num), "%lld", (long long)a->ttl_ms);
        if (!cJSON_AddRawToObject(root, "ttl_remaining_ms", num)) goto done;
    } else if (!cJSON_AddNullToObject(root, "ttl_remaining_ms")) {
        goto done;
    }
    snprintf(num, sizeof(num), "%d", (int)a->partition);
    if (!cJSON_AddStringToObject(root, "topic", s->cfg->input_topic) ||
        !cJSON_AddRawToObject(root, "partition", num) ||
        !cJSON_AddStringToObject(root, "source", a->source) ||
        !(owner = cJSON_AddObjectToObject(root, "owner")) ||
        !cJSON_AddBoolToObject(owner, "this_instance", a->owned) ||
        !(a->owned ? cJSON_AddStringToObject(owner, "instance", s->instance)
                   : cJSON_AddNullToObject(owner, "instance")) ||
        !cJSON_AddStringToObject(owner, "group_id", s->cfg->group_id))
        goto done;
    text = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return text;
}

static char *error_json(const char *error) {
    char text[256];
    snprintf(text, sizeof(text), "{\"error\":\"%s\"}\n", error);
    return strdup(text);
}

static int http_user(void *ctx, const char *user, size_t len, char **body) {
    ops_http_t *ops = ctx;
    const ops_sources_t *s = &ops->src;
    char errstr[512];
    const char *error = NULL;
    user_answer_t a = {.ttl_ms = -1};
    if (lookup_cached_user(s, user, len, &a) != 0) {
        *body = error_json("busy: the consumer holds the state; try again");
        return 503;
    }
    if (!a.found && s->query_store) {
        int status = lookup_stored_user(ops, user, len, &a, &error);
        if (status) {
            *body = error_json(error);
            return status;
        }
    }
    if (!a.found) {
        *body = error_json("no state for this user (unknown or expired)");
        return 404;
    }
    if (a.touch_redis && s->query_store &&
        store_touch_user(s->query_store, a.partition, user, len, s->ttl->ttl_ms, errstr,
                         sizeof(errstr)) != 0)
        log_warn("http", "refreshing the TTL of a queried user: %s", errstr);
    *body = user_answer_json(s, user, &a);
    return 200;
}

static int http_rules(void *ctx, char **body) {
    *body = rule_control_rules_json(((ops_http_t *)ctx)->src.rules);
    return 200;
}

http_handlers_t ops_http_handlers(ops_http_t *ops) {
    http_handlers_t h = {.ctx = ops, .metrics = http_metrics, .health = http_health,
                         .ready = http_ready, .user = http_user,
                         .rules = ops->src.rules ? http_rules : NULL};
    return h;
}
