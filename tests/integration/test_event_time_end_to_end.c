/* Event time end to end: window rules decide on the payments' own
 * timestamps, whether read live or as a backlog, and the same input gives
 * the same alerts through crashes and rebalances; late payments are
 * reported and still counted; absurd timestamps are dead-lettered. Against
 * a real redis-server and the Kafka protocol (the mock cluster, or with
 * TEST_KAFKA_BROKER=real a real broker). */
#include <check.h>

#include "check_main.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "fixture.h"

static service_proc_t svc[2];

/* The mock cluster keeps 5 MB of a partition: the crash test's alert
 * topics have room for all of its alerts. */
static const char *const TOPICS[] = {"payments-late:1", "payment-averages:4", "alerts-clean:4",
                                     "alerts-crash:4", NULL};

static void setup(void) {
    fixture_options_t opts = {.input_partitions = 4, .topics = TOPICS};
    fixture_start(&opts);
}

static uint64_t next_random(uint64_t *rng) {
    *rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17;
    return *rng;
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One user's payments in event-time order, with gaps from none to minutes,
 * and amounts small (< 1), large (> 500) or in between. */
typedef struct timed_stream {
    size_t count;
    char (*keys_buf)[24];
    char (*values_buf)[128];
    const char **keys, **values;
    int64_t *at_ms;
    int *amount_class; /* 0 small, 1 middle, 2 large */
    size_t *user_of;
} timed_stream_t;

static void timed_stream_make(timed_stream_t *s, size_t users, size_t per_user, uint64_t seed) {
    s->count = users * per_user;
    s->keys_buf = calloc(s->count, sizeof(*s->keys_buf));
    s->values_buf = calloc(s->count, sizeof(*s->values_buf));
    s->keys = calloc(s->count, sizeof(*s->keys));
    s->values = calloc(s->count, sizeof(*s->values));
    s->at_ms = calloc(s->count, sizeof(*s->at_ms));
    s->amount_class = calloc(s->count, sizeof(*s->amount_class));
    s->user_of = calloc(s->count, sizeof(*s->user_of));
    int64_t *clock = calloc(users, sizeof(*clock));
    ck_assert_ptr_nonnull(clock);
    int64_t start = wall_ms() - 2LL * 86400000; /* two days ago: old, not absurd */
    uint64_t rng = seed;
    for (size_t u = 0; u < users; u++) clock[u] = start + (int64_t)(next_random(&rng) % 60000);
    /* Users interleave; each user's own payments stay in order. */
    for (size_t i = 0; i < s->count; i++) {
        size_t u = i % users;
        uint64_t r = next_random(&rng);
        int64_t gap = r % 4 == 0 ? 20000 + (int64_t)(r >> 8) % 100000 /* up to 2 minutes */
                                 : (int64_t)(r >> 8) % 8000;
        clock[u] += gap;
        uint64_t a = next_random(&rng) % 4;
        const char *amount = a == 0 ? "0.5" : a == 3 ? "600" : "20";
        s->amount_class[i] = a == 0 ? 0 : a == 3 ? 2 : 1;
        s->at_ms[i] = clock[u];
        s->user_of[i] = u;
        snprintf(s->keys_buf[i], sizeof(s->keys_buf[i]), "t%zu", u);
        snprintf(s->values_buf[i], sizeof(s->values_buf[i]),
                 "{\"amount\":\"%s\",\"event_id\":\"e%zu\",\"timestamp\":%" PRId64 "}", amount, i,
                 clock[u]);
        s->keys[i] = s->keys_buf[i];
        s->values[i] = s->values_buf[i];
    }
    free(clock);
}

static void timed_stream_free(timed_stream_t *s) {
    free(s->keys_buf), free(s->values_buf), free(s->keys), free(s->values);
    free(s->at_ms), free(s->amount_class), free(s->user_of);
}

#define WINDOW_MS 60000
#define VELOCITY_MAX 3

/* The alerts velocity and small_then_large must raise, computed from the
 * timestamps alone: "rule event_id detail" lines, sorted. */
static size_t reference_alerts(const timed_stream_t *s, char (*out)[96]) {
    size_t n = 0;
    for (size_t i = 0; i < s->count; i++) {
        size_t before = 0, prev = SIZE_MAX;
        for (size_t j = 0; j < i; j++) {
            if (s->user_of[j] != s->user_of[i]) continue;
            prev = j;
            before += s->at_ms[j] >= s->at_ms[i] - WINDOW_MS;
        }
        if (prev != SIZE_MAX && s->amount_class[prev] == 0 && s->amount_class[i] == 2 &&
            s->at_ms[i] - s->at_ms[prev] <= WINDOW_MS)
            snprintf(out[n++], 96, "small_then_large e%zu %" PRId64, i, s->at_ms[i] - s->at_ms[prev]);
        if (before >= VELOCITY_MAX) /* the ring holds max_count: it reports at most max + 1 */
            snprintf(out[n++], 96, "velocity e%zu %d", i, VELOCITY_MAX + 1);
    }
    qsort(out, n, sizeof(*out), (int (*)(const void *, const void *))strcmp);
    return n;
}

/* Two aggregate instances side by side, windows of different lengths, one
 * with a cooldown; and a named velocity instance beside them. */
#define SUM_WINDOW_MS 30000
#define SUM_LIMIT_TENTHS 12000 /* sum > 1200 */
#define COUNT_WINDOW_MS 120000
#define COUNT_LIMIT 4          /* count >= 4 */
#define COUNT_COOLDOWN_MS 60000
static const char *const AGGREGATE_RULES[] = {
    "rule.sum_30s.type=aggregate", "rule.sum_30s.function=sum", "rule.sum_30s.operator=>",
    "rule.sum_30s.limit=1200", "rule.sum_30s.window.ms=30000",
    "rule.n-2m.type=aggregate", "rule.n-2m.function=count", "rule.n-2m.operator=>=",
    "rule.n-2m.limit=4", "rule.n-2m.window.ms=120000", "rule.n-2m.cooldown.ms=60000",
    "rule.fast.type=velocity", "rule.fast.max.count=3", "rule.fast.window.ms=120000", NULL};

static long long tenths_of_class(int amount_class) {
    return amount_class == 0 ? 5 : amount_class == 2 ? 6000 : 200; /* 0.5, 600, 20 */
}

/* The alerts of AGGREGATE_RULES, from the payments alone, by the issue's
 * definition: each user's payments in [t - window, t] up to this one.
 * "rule_id event_id value-in-tenths in_window" lines (velocity: "rule_id
 * event_id in_window"), sorted. */
static size_t reference_aggregate_alerts(const timed_stream_t *s, size_t users,
                                         char (*out)[96]) {
    size_t n = 0;
    int64_t *count_alerted = calloc(users, sizeof(*count_alerted));
    ck_assert_ptr_nonnull(count_alerted);
    for (size_t i = 0; i < s->count; i++) {
        size_t u = s->user_of[i];
        long long sum = 0, in_sum = 0, in_count = 0;
        for (size_t j = 0; j <= i; j++) {
            if (s->user_of[j] != u) continue;
            if (s->at_ms[j] >= s->at_ms[i] - SUM_WINDOW_MS)
                sum += tenths_of_class(s->amount_class[j]), in_sum++;
            in_count += s->at_ms[j] >= s->at_ms[i] - COUNT_WINDOW_MS;
        }
        if (sum > SUM_LIMIT_TENTHS)
            snprintf(out[n++], 96, "sum_30s e%zu %lld %lld", i, sum, in_sum);
        if (in_count >= COUNT_LIMIT && (!count_alerted[u] ||
                                        s->at_ms[i] - count_alerted[u] >= COUNT_COOLDOWN_MS)) {
            snprintf(out[n++], 96, "n-2m e%zu %lld %lld", i, in_count * 10, in_count);
            count_alerted[u] = s->at_ms[i];
        }
        /* more than 3 in the window; its ring holds 3, so it reports at most 4 */
        if (in_count > 3) snprintf(out[n++], 96, "fast e%zu %d", i, 4);
    }
    free(count_alerted);
    qsort(out, n, sizeof(*out), (int (*)(const void *, const void *))strcmp);
    return n;
}

static cJSON *parse_value(const record_t *r) {
    cJSON *json = record_json(r);
    ck_assert_ptr_nonnull(json);
    return json;
}

static const char *string_field(const cJSON *obj, const char *name) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : "";
}

static long long number_field(const cJSON *obj, const char *name) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(item) ? (long long)item->valuedouble : -1;
}

static void wait_user_count(const char *user, long long count) {
    char want[24];
    snprintf(want, sizeof(want), "%lld", count);
    if (!wait_for_user_field(redis, user, "count", want, 60000)) fixture_dump_logs(40);
    ck_assert(wait_for_user_field(redis, user, "count", want, 1));
}

/* got, sorted here, must be want line for line. */
static void assert_same_alerts(char (*want)[96], size_t want_count, char (*got)[96],
                               size_t got_count) {
    qsort(got, got_count, sizeof(*got), (int (*)(const void *, const void *))strcmp);
    for (size_t i = 0; i < want_count || i < got_count; i++) {
        const char *w = i < want_count ? want[i] : "(none)", *g = i < got_count ? got[i] : "(none)";
        ck_assert_msg(strcmp(w, g) == 0, "alert %zu of %zu: expected %s, got %s (%zu alerts)", i,
                      want_count, w, g, got_count);
    }
}

START_TEST(test_a_backlog_decides_on_the_payments_timestamps) {
    timed_stream_t s;
    timed_stream_make(&s, 40, 60, 21);
    /* All of it is there before the service starts: a backlog read in
     * seconds that spans more than an hour of event time. */
    kafka_produce(&kafka, "payments", s.keys, s.values, s.count);
    const char *extra[] = {"rule.amount_jump.enabled=false", "rule.velocity.enabled=true",
                           "rule.velocity.max.count=3", "rule.velocity.window.ms=60000",
                           "rule.small_then_large.enabled=true",
                           "rule.small_then_large.window.ms=60000", NULL};
    service_start(&svc[0], &kafka, &redis_srv, extra);
    ck_assert(fixture_wait_applied((long long)s.count, 120000));

    char (*want)[96] = calloc(2 * s.count, sizeof(*want));
    char (*got)[96] = calloc(2 * s.count + 1, sizeof(*got));
    size_t want_count = reference_alerts(&s, want), got_count = 0;
    ck_assert_int_gt(want_count, 10); /* the stream exercises both rules */
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", want_count, 60000);
    for (size_t i = 0; i < alerts.count && got_count <= 2 * s.count; i++) {
        cJSON *a = parse_value(&alerts.items[i]);
        const char *rule = string_field(a, "rule");
        ck_assert_str_eq(string_field(a, "clock"), "event");
        snprintf(got[got_count++], 96, "%s %s %lld", rule, string_field(a, "event_id"),
                 number_field(a, strcmp(rule, "velocity") == 0 ? "payments_in_window"
                                                               : "elapsed_ms"));
        cJSON_Delete(a);
    }
    assert_same_alerts(want, want_count, got, got_count);
    fprintf(stderr, "backlog: %zu payments, %zu alerts as the timestamps say\n", s.count,
            got_count);
    record_list_free(&alerts);
    free(want);
    free(got);
    ck_assert_int_eq(service_stop(&svc[0]), 0);
    timed_stream_free(&s);
}
END_TEST

START_TEST(test_named_instances_match_a_reference_model) {
    timed_stream_t s;
    const size_t users = 300;
    timed_stream_make(&s, users, 10, 23);
    kafka_produce(&kafka, "payments", s.keys, s.values, s.count);
    const char *extra[24] = {"rule.amount_jump.enabled=false"};
    for (size_t i = 0; AGGREGATE_RULES[i]; i++) extra[i + 1] = AGGREGATE_RULES[i];
    service_start(&svc[0], &kafka, &redis_srv, extra);
    ck_assert(fixture_wait_applied((long long)s.count, 120000));

    char (*want)[96] = calloc(2 * s.count, sizeof(*want));
    char (*got)[96] = calloc(2 * s.count + 1, sizeof(*got));
    size_t want_count = reference_aggregate_alerts(&s, users, want), got_count = 0;
    size_t per_rule[3] = {0};
    for (size_t i = 0; i < want_count; i++)
        per_rule[want[i][0] == 'n' ? 1 : want[i][0] == 'f' ? 2 : 0]++;
    for (int r = 0; r < 3; r++) ck_assert_int_gt(per_rule[r], 20); /* each instance fires */
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", want_count, 60000);
    for (size_t i = 0; i < alerts.count && got_count <= 2 * s.count; i++) {
        cJSON *a = parse_value(&alerts.items[i]);
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(a, "value");
        if (strcmp(string_field(a, "rule"), "velocity") == 0)
            snprintf(got[got_count++], 96, "%s %s %lld", string_field(a, "rule_id"),
                     string_field(a, "event_id"), number_field(a, "payments_in_window"));
        else
            snprintf(got[got_count++], 96, "%s %s %lld %lld", string_field(a, "rule_id"),
                     string_field(a, "event_id"),
                     cJSON_IsNumber(value) ? (long long)(value->valuedouble * 10 + 0.5) : -1,
                     number_field(a, "payments_in_window"));
        cJSON_Delete(a);
    }
    assert_same_alerts(want, want_count, got, got_count);
    fprintf(stderr, "instances: %zu payments of %zu users, %zu + %zu + %zu alerts as the model "
            "says\n", s.count, users, per_rule[0], per_rule[1], per_rule[2]);
    record_list_free(&alerts);
    free(want);
    free(got);
    ck_assert_int_eq(service_stop(&svc[0]), 0);
    timed_stream_free(&s);
}
END_TEST

START_TEST(test_a_late_payment_is_reported_and_still_counted) {
    int64_t t = wall_ms() - 600000;
    char v[6][160];
    snprintf(v[0], sizeof(v[0]), "{\"amount\":\"10\",\"timestamp\":%" PRId64 "}", t);
    snprintf(v[1], sizeof(v[1]), "{\"amount\":\"10\",\"timestamp\":%" PRId64 "}", t + 5000);
    /* 2000 ms older than the user's latest, with a bound of 1000: late. */
    snprintf(v[2], sizeof(v[2]),
             "{\"amount\":\"7.25\",\"event_id\":\"late-one\",\"timestamp\":%" PRId64 "}",
             t + 3000);
    /* 500 ms older: within the bound, placed in the windows. */
    snprintf(v[3], sizeof(v[3]), "{\"amount\":\"10\",\"timestamp\":%" PRId64 "}", t + 4500);
    /* Not believed: before 2000, and two hours ahead of the clock. */
    snprintf(v[4], sizeof(v[4]), "{\"amount\":\"10\",\"timestamp\":946684799999}");
    snprintf(v[5], sizeof(v[5]), "{\"amount\":\"10\",\"timestamp\":%" PRId64 "}",
             wall_ms() + 7200000);
    const char *keys[] = {"late", "late", "late", "late", "late", "late"};
    const char *values[] = {v[0], v[1], v[2], v[3], v[4], v[5]};
    const char *extra[] = {"late.topic=payments-late", "time.max.out.of.orderness.ms=1000",
                           "rule.velocity.enabled=true", "rule.velocity.window.ms=60000",
                           "rule.velocity.max.count=1", NULL};
    service_start(&svc[0], &kafka, &redis_srv, extra);
    ck_assert(service_wait_log(&svc[0], "assigned", 60000));
    kafka_produce(&kafka, "payments", keys, values, 6);
    wait_user_count("late", 4);

    char *cum = NULL;
    for (int i = 0; i < 100 && !cum; i++) {
        redisReply *r = redisCommand(redis, "KEYS fraud:{payments/*}:user:late");
        if (r->elements == 1) cum = redis_hget(redis, r->element[0]->str, "cum");
        freeReplyObject(r);
    }
    ck_assert_ptr_nonnull(cum);
    ck_assert_str_eq(cum, "37.25"); /* the late payment's money is in */
    free(cum);

    record_list_t late = kafka_read_topic(&kafka, "payments-late", 1, 30000);
    ck_assert_int_eq(late.count, 1);
    cJSON *l = parse_value(&late.items[0]);
    ck_assert_str_eq(string_field(l, "reason"), "late");
    ck_assert_str_eq(string_field(l, "user_id"), "late");
    ck_assert_str_eq(string_field(l, "event_id"), "late-one");
    ck_assert_int_eq(number_field(l, "lateness_ms"), 2000);
    ck_assert_int_eq(number_field(l, "event_time"), t + 3000);
    ck_assert_int_eq(number_field(l, "user_event_time"), t + 5000);
    ck_assert_int_eq(number_field(l, "max_out_of_orderness_ms"), 1000);
    ck_assert_str_eq(late.items[0].key, "late");
    cJSON_Delete(l);
    record_list_free(&late);

    /* Velocity (more than 1 in 60 s) fires at t+5000, and at t+4500, placed
     * where it belongs: its window holds t and itself, not t+5000. The late
     * payment takes no part. */
    record_list_t alerts = kafka_read_topic(&kafka, "fraud-alerts", 2, 30000);
    ck_assert_int_eq(alerts.count, 2);
    const int64_t want_time[] = {t + 5000, t + 4500};
    for (size_t i = 0; i < 2; i++) {
        cJSON *a = parse_value(&alerts.items[i]);
        ck_assert_str_eq(string_field(a, "rule"), "velocity");
        ck_assert_int_eq(number_field(a, "payments_in_window"), 2);
        ck_assert_int_eq(number_field(a, "event_time"), want_time[i]);
        cJSON_Delete(a);
    }
    record_list_free(&alerts);

    record_list_t dlq = kafka_read_topic(&kafka, "payments-dlq", 2, 30000);
    ck_assert_int_eq(dlq.count, 2);
    ck_assert_ptr_nonnull(strstr(dlq.items[0].headers, "fraud.dlq.reason=timestamp_before_2000"));
    ck_assert_ptr_nonnull(strstr(dlq.items[1].headers, "fraud.dlq.reason=timestamp_in_future"));
    record_list_free(&dlq);

    ck_assert_int_eq(service_stop(&svc[0]), 0);
}
END_TEST

/* Each alert once, keyed by alert_id, as its JSON without detected_at;
 * repeats must carry the same JSON. Returns the number of distinct ones. */
static size_t alerts_without_detected_at(const record_list_t *list, char ***ids, char ***texts) {
    size_t n = 0;
    *ids = calloc(list->count + 1, sizeof(**ids));
    *texts = calloc(list->count + 1, sizeof(**texts));
    for (size_t i = 0; i < list->count; i++) {
        cJSON *a = parse_value(&list->items[i]);
        cJSON_DeleteItemFromObjectCaseSensitive(a, "detected_at");
        char *text = cJSON_PrintUnformatted(a);
        const char *id = string_field(a, "alert_id");
        size_t k = 0;
        while (k < n && strcmp((*ids)[k], id) != 0) k++;
        if (k < n) {
            ck_assert_msg(strcmp((*texts)[k], text) == 0, "%s delivered twice, differently:\n%s\n%s",
                          id, (*texts)[k], text);
            free(text);
        } else {
            (*ids)[n] = strdup(id);
            (*texts)[n++] = text;
        }
        cJSON_Delete(a);
    }
    return n;
}

static long long applied_under(const char *prefix) {
    long long sum = 0;
    for (int part = 0; part < 4; part++) {
        redisReply *r = redisCommand(redis, "GET %s{payments/%d}:checkpoint", prefix, part);
        if (r && r->type == REDIS_REPLY_STRING) sum += atoll(r->str);
        freeReplyObject(r);
    }
    return sum;
}

static void wait_applied_under(const char *prefix, long long payments) {
    for (int i = 0; i < 3000 && applied_under(prefix) < payments; i++) sleep_ms(50);
    if (applied_under(prefix) < payments) fixture_dump_logs(40);
    ck_assert_int_eq(applied_under(prefix), payments);
}

START_TEST(test_crashes_and_rebalances_change_no_alert) {
    timed_stream_t s;
    timed_stream_make(&s, 300, 120, 22);
    const char *every_rule[] = {
        "kafka.consumer.session.timeout.ms=3000", "averages.topic=payment-averages",
        "alert.topic=alerts-crash",
        "rule.amount_jump.threshold=590", "rule.cumulative_limit.enabled=true",
        "rule.cumulative_limit.limit=1000", "rule.small_then_large.enabled=true",
        "rule.count_average.enabled=true", "rule.count_average.count=5",
        "rule.velocity.enabled=true", "rule.velocity.max.count=5", "batch.max.messages=200",
        "rule.sum_30s.type=aggregate", "rule.sum_30s.limit=1200",
        "rule.sum_30s.window.ms=30000", "rule.n-2m.type=aggregate", "rule.n-2m.function=count",
        "rule.n-2m.operator=>=", "rule.n-2m.limit=6", "rule.n-2m.window.ms=120000",
        "rule.n-2m.cooldown.ms=60000", NULL};
    const int kills = 5;
    size_t chunk = s.count / (kills + 2);
    uint64_t rng = (uint64_t)time(NULL) | 1;
    fprintf(stderr, "event-time crash test: seed %llu\n", (unsigned long long)rng);
    int mid_stream = 0;
    for (int k = 0; k < kills; k++) {
        service_start(&svc[0], &kafka, &redis_srv, every_rule);
        ck_assert(service_wait_log(&svc[0], "assigned", 60000));
        long long before = fixture_applied_payments();
        kafka_produce(&kafka, "payments", s.keys + k * chunk, s.values + k * chunk, chunk);
        /* Once the work has begun, somewhere in it. */
        ck_assert(fixture_wait_applied(before + 1, 60000));
        sleep_ms((int)(next_random(&rng) % 40));
        service_kill(&svc[0]);
        long long applied = fixture_applied_payments();
        fprintf(stderr, "kill %d: %lld of %zu payments applied\n", k + 1, applied,
                (k + 1) * chunk);
        mid_stream += applied < (long long)((k + 1) * chunk);
    }
    ck_assert_int_ge(mid_stream, 1);
    /* Then two instances share the partitions, and one leaves mid-stream. */
    service_start(&svc[0], &kafka, &redis_srv, every_rule);
    service_start(&svc[1], &kafka, &redis_srv, every_rule);
    ck_assert(service_wait_log(&svc[0], "assigned", 60000));
    kafka_produce(&kafka, "payments", s.keys + kills * chunk, s.values + kills * chunk, chunk);
    ck_assert(service_wait_log(&svc[1], "assigned", 60000));
    ck_assert_int_eq(service_stop(&svc[0]), 0);
    size_t done = (size_t)(kills + 1) * chunk;
    kafka_produce(&kafka, "payments", s.keys + done, s.values + done, s.count - done);
    wait_applied_under("fraud:", (long long)s.count);
    ck_assert_int_eq(service_stop(&svc[1]), 0); /* every alert delivered */

    /* One clean run over the same input, with its own group, state and
     * alert topic. */
    const char *clean[32];
    size_t n = 0;
    while (every_rule[n]) clean[n] = every_rule[n], n++;
    clean[n++] = "group.id=clean-run";
    clean[n++] = "redis.key.prefix=clean:";
    clean[n++] = "alert.topic=alerts-clean";
    clean[n] = NULL;
    service_start(&svc[0], &kafka, &redis_srv, clean);
    wait_applied_under("clean:", (long long)s.count);
    ck_assert_int_eq(service_stop(&svc[0]), 0);

    record_list_t clean_list = kafka_read_topic(&kafka, "alerts-clean", SIZE_MAX, 8000);
    char **clean_ids, **clean_texts, **crash_ids, **crash_texts;
    size_t clean_count = alerts_without_detected_at(&clean_list, &clean_ids, &clean_texts);
    ck_assert_int_eq(clean_count, clean_list.count); /* a clean run repeats nothing */
    ck_assert_int_gt(clean_count, 100);
    record_list_t crash_list = kafka_read_topic(&kafka, "alerts-crash", clean_count, 60000);
    size_t crash_count = alerts_without_detected_at(&crash_list, &crash_ids, &crash_texts);
    size_t rules_seen = 0;
    const char *rules[] = {"amount_jump", "cumulative_limit", "small_then_large", "velocity",
                           "\"sum_30s\"", "\"n-2m\""};
    for (size_t r = 0; r < 6; r++) {
        int seen = 0;
        for (size_t i = 0; i < clean_count && !seen; i++)
            seen = strstr(clean_texts[i], rules[r]) != NULL;
        rules_seen += (size_t)seen;
    }
    ck_assert_int_eq(rules_seen, 6);
    for (size_t i = 0; i < clean_count; i++) {
        size_t k = 0;
        while (k < crash_count && strcmp(crash_ids[k], clean_ids[i]) != 0) k++;
        ck_assert_msg(k < crash_count, "%s: raised by the clean run only", clean_ids[i]);
        ck_assert_msg(strcmp(crash_texts[k], clean_texts[i]) == 0, "%s differs:\n%s\n%s",
                      clean_ids[i], clean_texts[i], crash_texts[k]);
    }
    for (size_t k = 0, shown = 0; k < crash_count && crash_count != clean_count && shown < 5; k++) {
        size_t i = 0;
        while (i < clean_count && strcmp(crash_ids[k], clean_ids[i]) != 0) i++;
        if (i == clean_count) fprintf(stderr, "raised after crashes only: %s\n", crash_texts[k]);
        shown += i == clean_count;
    }
    ck_assert_int_eq(crash_count, clean_count);
    fprintf(stderr, "event-time crash test: %zu alerts, %zu records after %d kills and a "
            "rebalance, the same as a clean run\n", clean_count, crash_list.count, kills);
    for (size_t i = 0; i < clean_count; i++) free(clean_ids[i]), free(clean_texts[i]);
    for (size_t i = 0; i < crash_count; i++) free(crash_ids[i]), free(crash_texts[i]);
    free(clean_ids), free(clean_texts), free(crash_ids), free(crash_texts);
    record_list_free(&clean_list);
    record_list_free(&crash_list);
    timed_stream_free(&s);
}
END_TEST

int main(void) {
    Suite *s = suite_create("event_time");
    TCase *tc = tcase_create("event_time");
    tcase_add_checked_fixture(tc, setup, fixture_teardown);
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_a_backlog_decides_on_the_payments_timestamps);
    tcase_add_test(tc, test_named_instances_match_a_reference_model);
    tcase_add_test(tc, test_a_late_payment_is_reported_and_still_counted);
    tcase_add_test(tc, test_crashes_and_rebalances_change_no_alert);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_NOFORK, CK_NORMAL);
}
