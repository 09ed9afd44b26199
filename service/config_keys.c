/* config_keys: the catalogue of every setting, one table that drives
 * parsing, --help, --dump-config and the documented default file, so the
 * four cannot disagree. */
#include "config_keys.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define FIELD(f) offsetof(config_t, f)
#define RULE_FIELD(f) (offsetof(config_t, rules) + offsetof(rule_set_t, f))
#define RULE_STATE_DOC                                                                        \
    "paused: the rule keeps its settings and its state, which payments still update, but "  \
    "raises nothing."

const key_def_t CONFIG_KEYS[] = {
    {"input.topic", KEY_STRING, "payments", 0, 0, NULL, FIELD(input_topic),
     "Topic the payments are consumed from."},
    {"alert.topic", KEY_STRING, "fraud-alerts", 0, 0, NULL, FIELD(alert_topic),
     "Topic alerts are produced to, keyed by user id."},
    {"dlq.topic", KEY_STRING, "payments-dlq", 0, 0, NULL, FIELD(dlq_topic),
     "Dead-letter topic: every message that is not a valid payment, with its reason in headers."},
    {"group.id", KEY_STRING, "fraud-detector", 0, 0, NULL, FIELD(group_id),
     "Kafka consumer group shared by all instances."},
    {"redis.url", KEY_STRING, "redis://127.0.0.1:6379", 0, 0, NULL, FIELD(redis_url),
     "Redis holding the state: redis://[[user]:password@]host[:port][/db], or a Redis Cluster: "
     "redis-cluster://[[user]:password@]host:port[,host:port...] (seed nodes)."},
    {"redis.key.prefix", KEY_STRING, "fraud:", 0, 0, NULL, FIELD(redis_key_prefix),
     "Prefix of every Redis key the service writes."},
    {"redis.password.file", KEY_STRING, "", 0, 0, NULL, FIELD(redis_password_file),
     "File holding the Redis password (its first line); overrides a password in redis.url. "
     "Empty: none. Env: FRAUD_REDIS_PASSWORD_FILE."},
    {"redis.connect.timeout.ms", KEY_INT, "2000", 1, 600000, NULL,
     FIELD(redis_connect_timeout_ms), "Timeout for connecting to Redis."},
    {"redis.command.timeout.ms", KEY_INT, "5000", 1, 600000, NULL,
     FIELD(redis_command_timeout_ms), "Timeout for one Redis pipeline round trip."},
    {"state.backend", KEY_ENUM, "redis", 0, 0, "redis|memory", FIELD(state_backend),
     "Where state lives: redis (durable, the default), or memory (in this process only, "
     "lost on exit: for demos and tests)."},
    {"state.ttl.ms", KEY_INT, "0", 0, INT64_MAX / 2, NULL, FIELD(state_ttl_ms),
     "Time to live of a user's state, in ms of processing time, carried by the Redis key "
     "itself (PEXPIRE). 0 means state never expires."},
    {"state.ttl.update", KEY_ENUM, "on_create_and_write", 0, 0,
     "on_create_and_write|on_read_and_write", FIELD(state_ttl_update),
     "What refreshes the TTL, as Flink's StateTtlConfig.UpdateType: writes only, or reads "
     "(a state query) too."},
    {"state.ttl.visibility", KEY_ENUM, "never_return_expired", 0, 0,
     "never_return_expired|return_expired_if_not_cleaned_up", FIELD(state_ttl_visibility),
     "Whether expired state still in the local cache may be used, as Flink's "
     "StateTtlConfig.StateVisibility."},
    {"state.ttl.cleanup.interval.ms", KEY_INT, "1000", 1, INT64_MAX / 2, NULL,
     FIELD(state_ttl_cleanup_interval_ms),
     "How often the local cache drops expired users, so idle users do not keep memory."},
    {"state.cache.max.entries", KEY_INT, "1000000", 1, INT64_MAX / 2, NULL,
     FIELD(state_cache_max_entries),
     "Users held in the in-process cache; past it the least recently used clean users "
     "are evicted after each batch."},
    {"batch.max.messages", KEY_INT, "10000", 1, 1000000, NULL, FIELD(batch_max_messages),
     "Most messages processed, persisted and committed as one batch."},
    {"batch.max.bytes", KEY_INT, "16777216", 1024, 1073741824, NULL, FIELD(batch_max_bytes),
     "Most message bytes held in one batch: with batch.max.messages it bounds the memory of a "
     "batch."},
    {"batch.overlap", KEY_BOOL, "true", 0, 0, NULL, FIELD(batch_overlap),
     "Fetch, decode and apply the next batch while this one's Redis step is in flight (its "
     "own connection and thread); false waits for each step before the next batch."},
    {"input.max.message.bytes", KEY_INT, "65536", 16, 16777216, NULL,
     FIELD(input_max_message_bytes),
     "Larger messages are dead-lettered (message_too_large) without being parsed."},
    {"input.max.user.id.bytes", KEY_INT, "256", 1, 256, NULL, FIELD(input_max_user_id_bytes),
     "Longest accepted user id; longer ones are dead-lettered (user_too_long)."},
    {"input.max.json.depth", KEY_INT, "8", 1, 100, NULL, FIELD(input_max_json_depth),
     "Deepest accepted nesting of JSON objects and arrays (json_too_deep past it)."},
    {"time.characteristic", KEY_ENUM, "event", 0, 0, "event|processing",
     FIELD(time_characteristic),
     "The clock of the window rules (small_then_large, velocity). event: the payment's "
     "timestamp field, else its Kafka record's timestamp, so a backlog or a replay decides "
     "as a live stream did. processing: the service's clock when the payment is applied."},
    {"time.max.out.of.orderness.ms", KEY_INT, "0", 0, INT64_MAX / 2, NULL,
     FIELD(time_max_out_of_orderness_ms),
     "Event time: a payment up to this much older than its user's latest is still placed "
     "in the user's windows; an older one is late. At most the smallest enabled window."},
    {"time.max.future.ms", KEY_INT, "3600000", 0, INT64_MAX / 2, NULL,
     FIELD(time_max_future_ms),
     "Event time: a payment whose time is further ahead of the service's clock is "
     "dead-lettered (timestamp_in_future), as is one before 2000 (timestamp_before_2000)."},
    {"late.topic", KEY_STRING, "", 0, 0, NULL, FIELD(late_topic),
     "When set, each late payment (event time) is produced here with its lateness, keyed by "
     "user id; otherwise late payments are counted in fraud_late_payments_total and logged "
     "(sampled). Either way they still count in the user's totals."},
    {"totals.topic", KEY_STRING, "", 0, 0, NULL, FIELD(totals_topic),
     "When set, each user's latest {user_id, cumulative_amount, event_count} is produced "
     "here after every batch that changed it, keyed by user id: a changelog, meant to be "
     "a compacted topic."},
    {"averages.topic", KEY_STRING, "", 0, 0, NULL, FIELD(averages_topic),
     "Topic the count_average rule writes its averages to, keyed by user id; required "
     "when that rule is enabled."},
    {"output.cloudevents", KEY_BOOL, "false", 0, 0, NULL, FIELD(output_cloudevents),
     "Adds CloudEvents 1.0 headers (Kafka binding, binary mode: ce_specversion, ce_id, ce_type, "
     "ce_source, ce_time, content-type) to alerts, averages, totals and late payments; the "
     "JSON value stays the same."},
    {"output.cloudevents.source", KEY_STRING, "", 0, 0, NULL, FIELD(output_cloudevents_source),
     "The ce_source of those records (a URI reference); empty: /fraud-detector/<group.id>."},
    {"output.guarantee", KEY_ENUM, "at_least_once", 0, 0, "at_least_once|exactly_once",
     FIELD(output_guarantee),
     "at_least_once: a crash may produce again records Kafka had acknowledged (same ids). "
     "exactly_once: each batch's records and offsets go out in one Kafka transaction, so a "
     "read_committed consumer sees every record once; needs state.backend=redis."},
    {"output.transaction.interval.ms", KEY_INT, "100", 0, 5000, NULL,
     FIELD(output_transaction_interval_ms),
     "exactly_once: how long a transaction gathers landed batches before it commits (as Kafka "
     "Streams' commit.interval.ms); a read_committed consumer sees records up to this much "
     "later. 0: one transaction per batch."},
    {"rules.topic", KEY_STRING, "", 0, 0, NULL, FIELD(rules_topic),
     "When set, every instance reads rule updates from this (compacted) topic, from its "
     "beginning: key = rule name, value = JSON such as {\"threshold\": \"5000\"}; an "
     "empty value returns the rule to this config. Changes apply from the next batch."},
    {"rule.amount_jump.state", KEY_CHOICE, "active", 0, 0, "active|paused",
     RULE_FIELD(state[RULE_AMOUNT_JUMP]),
     RULE_STATE_DOC},
    {"rule.amount_jump.enabled", KEY_BOOL, "true", 0, 0, NULL,
     RULE_FIELD(enabled[RULE_AMOUNT_JUMP]),
     "The seed's rule: alert when a payment exceeds the user's previous one by threshold."},
    {"rule.amount_jump.threshold", KEY_DECIMAL, "10000", 0, 0, NULL,
     RULE_FIELD(builtin.jump_threshold),
     "Alert when amount - previous_amount >= this (exact decimal)."},
    {"rule.amount_jump.direction", KEY_CHOICE, "up", 0, 0, "up|both",
     RULE_FIELD(builtin.jump_direction),
     "up: only increases count, as in the seed; both: |amount - previous_amount|."},
    {"rule.cumulative_limit.state", KEY_CHOICE, "active", 0, 0, "active|paused",
     RULE_FIELD(state[RULE_CUMULATIVE_LIMIT]),
     RULE_STATE_DOC},
    {"rule.cumulative_limit.enabled", KEY_BOOL, "false", 0, 0, NULL,
     RULE_FIELD(enabled[RULE_CUMULATIVE_LIMIT]),
     "Alert once when a user's running total first reaches limit (remembered in state, "
     "so it survives restarts and expires with the state's TTL)."},
    {"rule.cumulative_limit.limit", KEY_DECIMAL, "100000", 0, 0, NULL,
     RULE_FIELD(builtin.cumulative_limit),
     "Running total (>=) at which cumulative_limit alerts."},
    {"rule.small_then_large.state", KEY_CHOICE, "active", 0, 0, "active|paused",
     RULE_FIELD(state[RULE_SMALL_THEN_LARGE]),
     RULE_STATE_DOC},
    {"rule.small_then_large.enabled", KEY_BOOL, "false", 0, 0, NULL,
     RULE_FIELD(enabled[RULE_SMALL_THEN_LARGE]),
     "Flink's fraud walkthrough: a payment below small, then the user's next payment above "
     "large within window.ms (in time.characteristic's clock)."},
    {"rule.small_then_large.small", KEY_DECIMAL, "1.00", 0, 0, NULL,
     RULE_FIELD(builtin.small_amount),
     "A payment strictly below this starts the pattern."},
    {"rule.small_then_large.large", KEY_DECIMAL, "500.00", 0, 0, NULL,
     RULE_FIELD(builtin.large_amount),
     "The next payment strictly above this completes it."},
    {"rule.small_then_large.window.ms", KEY_INT, "60000", 0, INT64_MAX / 2, NULL,
     RULE_FIELD(builtin.small_window_ms),
     "Longest time from the small payment to the large one (inclusive)."},
    {"rule.count_average.state", KEY_CHOICE, "active", 0, 0, "active|paused",
     RULE_FIELD(state[RULE_COUNT_AVERAGE]),
     RULE_STATE_DOC},
    {"rule.count_average.enabled", KEY_BOOL, "false", 0, 0, NULL,
     RULE_FIELD(enabled[RULE_COUNT_AVERAGE]),
     "The seed's CountWindowAverage: every count payments of a user, produce their integer "
     "average to averages.topic, then start over."},
    {"rule.count_average.count", KEY_INT, "2", 1, 1000000, NULL,
     RULE_FIELD(builtin.average_count),
     "Payments per average."},
    {"rule.velocity.state", KEY_CHOICE, "active", 0, 0, "active|paused",
     RULE_FIELD(state[RULE_VELOCITY]),
     RULE_STATE_DOC},
    {"rule.velocity.enabled", KEY_BOOL, "false", 0, 0, NULL,
     RULE_FIELD(enabled[RULE_VELOCITY]),
     "Alert on each payment that makes more than max.count payments of a user within "
     "window.ms (in time.characteristic's clock)."},
    {"rule.velocity.max.count", KEY_INT, "10", 1, VELOCITY_MAX_COUNT, NULL,
     RULE_FIELD(builtin.velocity_max_count),
     "Payments allowed within the window; a user's state keeps this many times at most "
     "(twice as many with time.max.out.of.orderness.ms)."},
    {"rule.velocity.window.ms", KEY_INT, "60000", 1, INT64_MAX / 2, NULL,
     RULE_FIELD(builtin.velocity_window_ms),
     "Length of the sliding window (inclusive)."},
    {"http.listen", KEY_STRING, "0.0.0.0:8080", 0, 0, NULL, FIELD(http_listen),
     "Address of the /metrics, /healthz, /readyz, /rules and /users/{id} endpoints (IPv4 "
     "host:port), or off."},
    {"log.level", KEY_ENUM, "info", 0, 0, "debug|info|warn|error", FIELD(log_level),
     "Least severe level logged."},
    {"log.format", KEY_ENUM, "text", 0, 0, "text|json", FIELD(log_format),
     "Log line format on stderr."},
};
const size_t CONFIG_KEY_COUNT = sizeof(CONFIG_KEYS) / sizeof(CONFIG_KEYS[0]);

const kafka_default_t CONFIG_KAFKA_DEFAULTS[] = {
    {"bootstrap.servers", "127.0.0.1:9092", "Kafka brokers."},
    {"auto.offset.reset", "earliest",
     "Where a group with no committed offset starts; earliest, as in Kafka Streams, so "
     "payments produced before the first start are processed."},
    {"consumer.statistics.interval.ms", "5000",
     "How often librdkafka reports consumer lag and broker states for /metrics and /readyz."},
};
const size_t CONFIG_KAFKA_DEFAULT_COUNT =
    sizeof(CONFIG_KAFKA_DEFAULTS) / sizeof(CONFIG_KAFKA_DEFAULTS[0]);

const key_def_t *config_keys_find(const char *name) {
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++)
        if (strcmp(CONFIG_KEYS[i].name, name) == 0) return &CONFIG_KEYS[i];
    return NULL;
}

static void print_wrapped_comment(FILE *out, const char *text) {
    const int width = 78;
    const char *p = text;
    while (*p) {
        int n = (int)strlen(p);
        if (n > width - 2) {
            n = width - 2;
            while (n > 0 && p[n] != ' ') n--;
            if (n == 0) n = width - 2;
        }
        fprintf(out, "# %.*s\n", n, p);
        p += n;
        while (*p == ' ') p++;
    }
}

/* Named instances have no catalogue keys: their ids are the user's. */
static const char INSTANCES_DOC[] =
    "Named rule instances, up to 16, of any type beside the built-in ones above: "
    "rule.<id>.type=<type> with that type's keys (as above, without enabled) and "
    "rule.<id>.state; an id is 1 to 64 letters, digits, '_' or '-'. The type aggregate fires "
    "when function (sum|count|avg|min|max; sum) over the user's payments in "
    "[t - window.ms, t] (60000) compared by operator (>|>=|<|<=|==|!=; >) with limit (an "
    "exact decimal, required) holds, keeping at most max.events payments per user (1 to "
    "10000; 1000), with cooldown.ms (0) between a user's alerts. For example:";
static const char *const INSTANCES_EXAMPLE[] = {
    "rule.sum_10m.type=aggregate", "rule.sum_10m.function=sum",
    "rule.sum_10m.operator=>",     "rule.sum_10m.limit=5000",
    "rule.sum_10m.window.ms=600000", "rule.big_jump.type=amount_jump",
    "rule.big_jump.threshold=50000",
};

/* After the last rule.* key. */
static bool ends_rule_keys(size_t i) {
    return strncmp(CONFIG_KEYS[i].name, "rule.", 5) == 0 &&
           (i + 1 == CONFIG_KEY_COUNT || strncmp(CONFIG_KEYS[i + 1].name, "rule.", 5) != 0);
}

void config_print_defaults_file(FILE *out) {
    fprintf(out, "# fraud-detector configuration: every key with its default.\n"
                 "# Generated by `fraud-detector --print-default-config`; a test keeps it in\n"
                 "# step with the binary. Precedence: this file (-c), then FRAUD_* environment\n"
                 "# variables (FRAUD_ + key uppercased, dots as underscores), then -X key=value.\n"
                 "# Keys starting with kafka. go to librdkafka unchanged.\n");
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        fprintf(out, "\n");
        print_wrapped_comment(out, CONFIG_KEYS[i].doc);
        fprintf(out, "%s=%s\n", CONFIG_KEYS[i].name, CONFIG_KEYS[i].default_value);
        if (!ends_rule_keys(i)) continue;
        fprintf(out, "\n");
        print_wrapped_comment(out, INSTANCES_DOC);
        for (size_t k = 0; k < sizeof(INSTANCES_EXAMPLE) / sizeof(*INSTANCES_EXAMPLE); k++)
            fprintf(out, "#%s\n", INSTANCES_EXAMPLE[k]);
    }
    for (size_t i = 0; i < CONFIG_KAFKA_DEFAULT_COUNT; i++) {
        fprintf(out, "\n");
        print_wrapped_comment(out, CONFIG_KAFKA_DEFAULTS[i].doc);
        fprintf(out, "kafka.%s=%s\n", CONFIG_KAFKA_DEFAULTS[i].name, CONFIG_KAFKA_DEFAULTS[i].value);
    }
}

void config_print_help(FILE *out) {
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        fprintf(out, "  %-28s (default %s)\n      %s\n", CONFIG_KEYS[i].name,
                *CONFIG_KEYS[i].default_value ? CONFIG_KEYS[i].default_value : "\"\"", CONFIG_KEYS[i].doc);
        if (!ends_rule_keys(i)) continue;
        fprintf(out, "  rule.<id>.*\n      %s", INSTANCES_DOC);
        for (size_t k = 0; k < sizeof(INSTANCES_EXAMPLE) / sizeof(*INSTANCES_EXAMPLE); k++)
            fprintf(out, " %s", INSTANCES_EXAMPLE[k]);
        fprintf(out, "\n");
    }
    for (size_t i = 0; i < CONFIG_KAFKA_DEFAULT_COUNT; i++)
        fprintf(out, "  kafka.%-22s (default %s)\n      %s\n", CONFIG_KAFKA_DEFAULTS[i].name,
                CONFIG_KAFKA_DEFAULTS[i].value, CONFIG_KAFKA_DEFAULTS[i].doc);
    fprintf(out, "  kafka.<property>\n      Any other librdkafka property, passed through.\n");
}
