/* config: the table of known keys drives parsing, --help, --dump-config and
 * the documented default file, so the four cannot disagree. */
#include "errstr.h"
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* KEY_ENUM keeps the string; KEY_CHOICE keeps the index of the choice. */
typedef enum { KEY_STRING, KEY_INT, KEY_DECIMAL, KEY_ENUM, KEY_BOOL, KEY_CHOICE } key_type_t;

typedef struct key_def {
    const char *name;
    key_type_t type;
    const char *default_value;
    int64_t min, max;       /* KEY_INT bounds, inclusive */
    const char *choices;    /* KEY_ENUM, KEY_CHOICE: '|'-separated */
    size_t offset;          /* where the value lives in config_t */
    const char *doc;
} key_def_t;

#define FIELD(f) offsetof(config_t, f)
#define RULE_FIELD(f) (offsetof(config_t, rules) + offsetof(rule_set_t, f))

static const key_def_t KEYS[] = {
    {"input.topic", KEY_STRING, "payments", 0, 0, NULL, FIELD(input_topic),
     "Topic the payments are consumed from."},
    {"alert.topic", KEY_STRING, "fraud-alerts", 0, 0, NULL, FIELD(alert_topic),
     "Topic alerts are produced to, keyed by user id."},
    {"dlq.topic", KEY_STRING, "payments-dlq", 0, 0, NULL, FIELD(dlq_topic),
     "Dead-letter topic: every message that is not a valid payment, with its reason in headers."},
    {"group.id", KEY_STRING, "fraud-detector", 0, 0, NULL, FIELD(group_id),
     "Kafka consumer group shared by all instances."},
    {"redis.url", KEY_STRING, "redis://127.0.0.1:6379", 0, 0, NULL, FIELD(redis_url),
     "Redis holding the state: redis://[[user]:password@]host[:port][/db]."},
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
    {"input.max.message.bytes", KEY_INT, "65536", 16, 16777216, NULL,
     FIELD(input_max_message_bytes),
     "Larger messages are dead-lettered (message_too_large) without being parsed."},
    {"input.max.user.id.bytes", KEY_INT, "256", 1, 256, NULL, FIELD(input_max_user_id_bytes),
     "Longest accepted user id; longer ones are dead-lettered (user_too_long)."},
    {"input.max.json.depth", KEY_INT, "8", 1, 100, NULL, FIELD(input_max_json_depth),
     "Deepest accepted nesting of JSON objects and arrays (json_too_deep past it)."},
    {"totals.topic", KEY_STRING, "", 0, 0, NULL, FIELD(totals_topic),
     "When set, each user's latest {user_id, cumulative_amount, event_count} is produced "
     "here after every batch that changed it, keyed by user id: a changelog, meant to be "
     "a compacted topic."},
    {"averages.topic", KEY_STRING, "", 0, 0, NULL, FIELD(averages_topic),
     "Topic the count_average rule writes its averages to, keyed by user id; required "
     "when that rule is enabled."},
    {"rules.topic", KEY_STRING, "", 0, 0, NULL, FIELD(rules_topic),
     "When set, every instance reads rule updates from this (compacted) topic, from its "
     "beginning: key = rule name, value = JSON such as {\"threshold\": \"5000\"}; an "
     "empty value returns the rule to this config. Changes apply from the next batch."},
    {"rule.amount_jump.enabled", KEY_BOOL, "true", 0, 0, NULL,
     RULE_FIELD(enabled[RULE_AMOUNT_JUMP]),
     "The seed's rule: alert when a payment exceeds the user's previous one by threshold."},
    {"rule.amount_jump.threshold", KEY_DECIMAL, "10000", 0, 0, NULL,
     RULE_FIELD(jump_threshold),
     "Alert when amount - previous_amount >= this (exact decimal)."},
    {"rule.amount_jump.direction", KEY_CHOICE, "up", 0, 0, "up|both",
     RULE_FIELD(jump_direction),
     "up: only increases count, as in the seed; both: |amount - previous_amount|."},
    {"rule.cumulative_limit.enabled", KEY_BOOL, "false", 0, 0, NULL,
     RULE_FIELD(enabled[RULE_CUMULATIVE_LIMIT]),
     "Alert once when a user's running total first reaches limit (remembered in state, "
     "so it survives restarts and expires with the state's TTL)."},
    {"rule.cumulative_limit.limit", KEY_DECIMAL, "100000", 0, 0, NULL,
     RULE_FIELD(cumulative_limit),
     "Running total (>=) at which cumulative_limit alerts."},
    {"rule.small_then_large.enabled", KEY_BOOL, "false", 0, 0, NULL,
     RULE_FIELD(enabled[RULE_SMALL_THEN_LARGE]),
     "Flink's fraud walkthrough: a payment below small, then the user's next payment above "
     "large within window.ms (processing time)."},
    {"rule.small_then_large.small", KEY_DECIMAL, "1.00", 0, 0, NULL,
     RULE_FIELD(small_amount),
     "A payment strictly below this starts the pattern."},
    {"rule.small_then_large.large", KEY_DECIMAL, "500.00", 0, 0, NULL,
     RULE_FIELD(large_amount),
     "The next payment strictly above this completes it."},
    {"rule.small_then_large.window.ms", KEY_INT, "60000", 0, INT64_MAX / 2, NULL,
     RULE_FIELD(small_window_ms),
     "Longest time from the small payment to the large one (inclusive)."},
    {"rule.count_average.enabled", KEY_BOOL, "false", 0, 0, NULL,
     RULE_FIELD(enabled[RULE_COUNT_AVERAGE]),
     "The seed's CountWindowAverage: every count payments of a user, produce their integer "
     "average to averages.topic, then start over."},
    {"rule.count_average.count", KEY_INT, "2", 1, 1000000, NULL,
     RULE_FIELD(average_count),
     "Payments per average."},
    {"rule.velocity.enabled", KEY_BOOL, "false", 0, 0, NULL,
     RULE_FIELD(enabled[RULE_VELOCITY]),
     "Alert on each payment that makes more than max.count payments of a user within "
     "window.ms (processing time)."},
    {"rule.velocity.max.count", KEY_INT, "10", 1, VELOCITY_MAX_COUNT, NULL,
     RULE_FIELD(velocity_max_count),
     "Payments allowed within the window; a user's state keeps this many times at most."},
    {"rule.velocity.window.ms", KEY_INT, "60000", 1, INT64_MAX / 2, NULL,
     RULE_FIELD(velocity_window_ms),
     "Length of the sliding window (inclusive)."},
    {"http.listen", KEY_STRING, "0.0.0.0:8080", 0, 0, NULL, FIELD(http_listen),
     "Address of the /metrics, /healthz, /readyz and /users/{id} endpoints (IPv4 host:port), "
     "or off."},
    {"log.level", KEY_ENUM, "info", 0, 0, "debug|info|warn|error", FIELD(log_level),
     "Least severe level logged."},
    {"log.format", KEY_ENUM, "text", 0, 0, "text|json", FIELD(log_format),
     "Log line format on stderr."},
};
#define KEY_COUNT (sizeof(KEYS) / sizeof(KEYS[0]))

/* librdkafka settings the service chooses unless the user overrides them. */
static const struct {
    const char *name, *value, *doc;
} KAFKA_DEFAULTS[] = {
    {"bootstrap.servers", "127.0.0.1:9092", "Kafka brokers."},
    {"auto.offset.reset", "earliest",
     "Where a group with no committed offset starts; earliest, as in Kafka Streams, so "
     "payments produced before the first start are processed."},
    {"consumer.statistics.interval.ms", "5000",
     "How often librdkafka reports consumer lag and broker states for /metrics and /readyz."},
};
#define KAFKA_DEFAULT_COUNT (sizeof(KAFKA_DEFAULTS) / sizeof(KAFKA_DEFAULTS[0]))

#define KAFKA_PREFIX "kafka."


static const key_def_t *find_key(const char *name) {
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(KEYS[i].name, name) == 0) return &KEYS[i];
    return NULL;
}

static int parse_int(const char *value, int64_t *out) {
    char *end;
    long long v;
    if (!*value || isspace((unsigned char)*value)) return -1;
    errno = 0;
    v = strtoll(value, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int choice_index(const char *choices, const char *value) {
    size_t len = strlen(value);
    const char *p = choices;
    for (int i = 0; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, value, n) == 0) return i;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

static const char *choice_name(const char *choices, int index, char *buf, size_t size) {
    const char *p = choices;
    for (int i = 0; i < index && p; i++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (!p) p = "";
    snprintf(buf, size, "%.*s", (int)strcspn(p, "|"), p);
    return buf;
}

static int set_field(void *field, const key_def_t *def, const char *value, char *errstr,
                     size_t errstr_size) {
    switch (def->type) {
    case KEY_BOOL:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
            errstr_set(errstr, errstr_size, "%s: invalid value \"%s\": expected true or false",
                       def->name, value);
            return -1;
        }
        *(bool *)field = value[0] == 't';
        return 0;
    case KEY_CHOICE: {
        int index = choice_index(def->choices, value);
        if (index < 0) {
            errstr_set(errstr, errstr_size, "%s: invalid value \"%s\": expected one of %s",
                       def->name, value, def->choices);
            return -1;
        }
        *(int *)field = index;
        return 0;
    }
    case KEY_STRING:
    case KEY_ENUM: {
        if (def->type == KEY_ENUM && choice_index(def->choices, value) < 0) {
            errstr_set(errstr, errstr_size, "%s: invalid value \"%s\": expected one of %s",
                      def->name, value, def->choices);
            return -1;
        }
        if (def->type == KEY_STRING && !*value && *def->default_value) {
            errstr_set(errstr, errstr_size, "%s: must not be empty", def->name);
            return -1;
        }
        char *copy = strdup(value);
        if (!copy) {
            errstr_set(errstr, errstr_size, "%s: out of memory", def->name);
            return -1;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case KEY_INT: {
        int64_t v;
        if (parse_int(value, &v) != 0 || v < def->min || v > def->max) {
            errstr_set(errstr, errstr_size,
                      "%s: invalid value \"%s\": expected an integer from %lld to %lld",
                      def->name, value, (long long)def->min, (long long)def->max);
            return -1;
        }
        *(int64_t *)field = v;
        return 0;
    }
    case KEY_DECIMAL: {
        decimal_t d;
        decimal_status_t st = decimal_parse(value, strlen(value), &d);
        if (st != DECIMAL_OK || d < 0) {
            errstr_set(errstr, errstr_size,
                      "%s: invalid value \"%s\": expected a non-negative decimal with at "
                      "most 4 digits after the point",
                      def->name, value);
            return -1;
        }
        *(decimal_t *)field = d;
        return 0;
    }
    }
    return -1;
}

static int set_known(config_t *cfg, const key_def_t *def, const char *value, char *errstr,
                     size_t errstr_size) {
    return set_field((char *)cfg + def->offset, def, value, errstr, errstr_size);
}

int config_set_rule(rule_set_t *rules, const char *key, const char *value, char *errstr,
                    size_t errstr_size) {
    const key_def_t *def = strncmp(key, "rule.", 5) == 0 ? find_key(key) : NULL;
    if (!def) {
        errstr_set(errstr, errstr_size, "unknown rule setting \"%s\"", key);
        return -1;
    }
    return set_field((char *)rules + (def->offset - offsetof(config_t, rules)), def, value,
                     errstr, errstr_size);
}

static int set_kafka(config_t *cfg, const char *name, const char *value, char *errstr,
                     size_t errstr_size) {
    if (!*name) {
        errstr_set(errstr, errstr_size, "kafka.: missing librdkafka property name");
        return -1;
    }
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        if (strcmp(cfg->kafka[i].name, name) == 0) {
            char *copy = strdup(value);
            if (!copy) goto oom;
            free(cfg->kafka[i].value);
            cfg->kafka[i].value = copy;
            return 0;
        }
    }
    config_kafka_prop_t *grown =
        realloc(cfg->kafka, (cfg->kafka_count + 1) * sizeof(*cfg->kafka));
    if (!grown) goto oom;
    cfg->kafka = grown;
    config_kafka_prop_t *prop = &cfg->kafka[cfg->kafka_count];
    prop->name = strdup(name);
    prop->value = strdup(value);
    if (!prop->name || !prop->value) {
        free(prop->name);
        free(prop->value);
        goto oom;
    }
    cfg->kafka_count++;
    return 0;
oom:
    errstr_set(errstr, errstr_size, "kafka.%s: out of memory", name);
    return -1;
}

int config_set(config_t *cfg, const char *key, const char *value, char *errstr,
               size_t errstr_size) {
    if (strncmp(key, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0)
        return set_kafka(cfg, key + strlen(KAFKA_PREFIX), value, errstr, errstr_size);
    if (strcmp(key, "kafka.group.id") == 0) {
        errstr_set(errstr, errstr_size, "kafka.group.id: use group.id instead");
        return -1;
    }
    const key_def_t *def = find_key(key);
    if (!def) {
        errstr_set(errstr, errstr_size,
                  "unknown configuration key \"%s\" (see fraud-detector --help)", key);
        return -1;
    }
    return set_known(cfg, def, value, errstr, errstr_size);
}

config_t *config_new(void) {
    char errstr[256];
    config_t *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) return NULL;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (set_known(cfg, &KEYS[i], KEYS[i].default_value, errstr, sizeof(errstr)) != 0) {
            config_destroy(cfg);
            return NULL;
        }
    }
    for (size_t i = 0; i < KAFKA_DEFAULT_COUNT; i++) {
        if (set_kafka(cfg, KAFKA_DEFAULTS[i].name, KAFKA_DEFAULTS[i].value, errstr,
                      sizeof(errstr)) != 0) {
            config_destroy(cfg);
            return NULL;
        }
    }
    return cfg;
}

void config_destroy(config_t *cfg) {
    if (!cfg) return;
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (KEYS[i].type == KEY_STRING || KEYS[i].type == KEY_ENUM)
            free(*(char **)((char *)cfg + KEYS[i].offset));
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        free(cfg->kafka[i].name);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    free(cfg);
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static char *trim(char *s) {
    char *end;
    while (is_blank(*s)) s++;
    end = s + strlen(s);
    while (end > s && is_blank(end[-1])) *--end = '\0';
    return s;
}

int config_load_text(config_t *cfg, const char *text, size_t len, const char *origin,
                     char *errstr, size_t errstr_size) {
    char line[4096];
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        size_t start = pos, n;
        while (pos < len && text[pos] != '\n') pos++;
        n = pos - start;
        pos++; /* past the newline */
        lineno++;
        if (n >= sizeof(line)) {
            errstr_set(errstr, errstr_size, "%s:%d: line longer than %zu bytes", origin,
                      lineno, sizeof(line) - 1);
            return -1;
        }
        memcpy(line, text + start, n);
        line[n] = '\0';
        if (memchr(line, '\0', n)) {
            errstr_set(errstr, errstr_size, "%s:%d: NUL byte in line", origin, lineno);
            return -1;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            errstr_set(errstr, errstr_size, "%s:%d: expected key=value, got \"%s\"", origin,
                      lineno, s);
            return -1;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        char reason[512];
        if (config_set(cfg, key, value, reason, sizeof(reason)) != 0) {
            errstr_set(errstr, errstr_size, "%s:%d: %s", origin, lineno, reason);
            return -1;
        }
    }
    return 0;
}

int config_load_file(config_t *cfg, const char *path, char *errstr, size_t errstr_size) {
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc;
    if (!f) {
        errstr_set(errstr, errstr_size, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            size_t new_cap = cap ? cap * 2 : 4096;
            char *grown = new_cap > (1u << 24) ? NULL : realloc(text, new_cap);
            if (!grown) {
                free(text);
                fclose(f);
                errstr_set(errstr, errstr_size, "config file %s: too large", path);
                return -1;
            }
            text = grown;
            cap = new_cap;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        errstr_set(errstr, errstr_size, "cannot read config file %s", path);
        free(text);
        fclose(f);
        return -1;
    }
    fclose(f);
    rc = config_load_text(cfg, text, len, path, errstr, errstr_size);
    free(text);
    return rc;
}

/* FRAUD_STATE_TTL_MS -> state.ttl.ms, matching known keys first so that a
 * key with an underscore in it (rule.amount_jump.threshold) maps back. */
static bool env_name_matches(const char *env_key, const char *key) {
    for (; *env_key && *key; env_key++, key++) {
        char want = (*key == '.') ? '_' : (char)toupper((unsigned char)*key);
        if (*env_key != want) return false;
    }
    return *env_key == '\0' && *key == '\0';
}

int config_load_env(config_t *cfg, char *const *envp, char *errstr, size_t errstr_size) {
    static const char prefix[] = "FRAUD_";
    for (; envp && *envp; envp++) {
        const char *entry = *envp;
        if (strncmp(entry, prefix, sizeof(prefix) - 1) != 0) continue;
        const char *eq = strchr(entry, '=');
        if (!eq) continue;
        char env_key[256], key[300];
        size_t n = (size_t)(eq - entry) - (sizeof(prefix) - 1);
        if (n == 0 || n >= sizeof(env_key)) {
            errstr_set(errstr, errstr_size, "environment: bad variable name %.*s",
                      (int)(eq - entry), entry);
            return -1;
        }
        memcpy(env_key, entry + sizeof(prefix) - 1, n);
        env_key[n] = '\0';

        const key_def_t *def = NULL;
        for (size_t i = 0; i < KEY_COUNT && !def; i++)
            if (env_name_matches(env_key, KEYS[i].name)) def = &KEYS[i];
        if (def) {
            snprintf(key, sizeof(key), "%s", def->name);
        } else if (strncmp(env_key, "KAFKA_", 6) == 0) {
            size_t k = 0;
            for (const char *p = env_key; *p && k + 1 < sizeof(key); p++)
                key[k++] = (*p == '_') ? '.' : (char)tolower((unsigned char)*p);
            key[k] = '\0';
        } else {
            errstr_set(errstr, errstr_size,
                      "environment: unknown configuration variable FRAUD_%s", env_key);
            return -1;
        }
        char reason[512];
        if (config_set(cfg, key, eq + 1, reason, sizeof(reason)) != 0) {
            errstr_set(errstr, errstr_size, "environment FRAUD_%s: %s", env_key, reason);
            return -1;
        }
    }
    return 0;
}

int config_validate(const config_t *cfg, char *errstr, size_t errstr_size) {
    if (strcmp(cfg->input_topic, cfg->alert_topic) == 0 ||
        strcmp(cfg->input_topic, cfg->dlq_topic) == 0) {
        errstr_set(errstr, errstr_size,
                  "input.topic \"%s\" must differ from alert.topic and dlq.topic",
                  cfg->input_topic);
        return -1;
    }
    const char *outputs[] = {cfg->rules_topic, cfg->totals_topic, cfg->averages_topic};
    for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
        if (strcmp(outputs[i], cfg->input_topic) == 0) {
            errstr_set(errstr, errstr_size,
                       "rules.topic, totals.topic and averages.topic must differ from "
                       "input.topic \"%s\"", cfg->input_topic);
            return -1;
        }
    }
    if (config_validate_rules(cfg, &cfg->rules, errstr, errstr_size) != 0) return -1;
    if (strncmp(cfg->redis_url, "redis://", 8) != 0) {
        errstr_set(errstr, errstr_size, "redis.url: expected redis://host:port, got \"%.*s\"",
                  8, cfg->redis_url);
        return -1;
    }
    return 0;
}

int config_validate_rules(const config_t *cfg, const rule_set_t *rules, char *errstr,
                          size_t errstr_size) {
    if (rules->enabled[RULE_COUNT_AVERAGE] && !cfg->averages_topic[0]) {
        errstr_set(errstr, errstr_size,
                   "rule.count_average.enabled=true needs averages.topic to write to");
        return -1;
    }
    return 0;
}

const char *config_kafka_get(const config_t *cfg, const char *name) {
    for (size_t i = 0; i < cfg->kafka_count; i++)
        if (strcmp(cfg->kafka[i].name, name) == 0) return cfg->kafka[i].value;
    return NULL;
}

bool config_key_is_secret(const char *key) {
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.jaas") ||
           strstr(key, "ssl.key.pem") || strstr(key, "ssl_key");
}

void config_mask_url(const char *url, char *out, size_t out_size) {
    const char *scheme_end = strstr(url, "://");
    const char *at = strrchr(url, '@');
    if (!scheme_end || !at || at < scheme_end) {
        snprintf(out, out_size, "%s", url);
        return;
    }
    const char *userinfo = scheme_end + 3;
    const char *colon = memchr(userinfo, ':', (size_t)(at - userinfo));
    if (colon) /* user:password@ keeps the user */
        snprintf(out, out_size, "%.*s:***%s", (int)(colon - url), url, at);
    else /* password-only form redis://secret@host */
        snprintf(out, out_size, "%.*s***%s", (int)(userinfo - url), url, at);
}

static void format_value(const config_t *cfg, const key_def_t *def, char *buf, size_t size) {
    const void *field = (const char *)cfg + def->offset;
    switch (def->type) {
    case KEY_STRING:
    case KEY_ENUM:
        if (strcmp(def->name, "redis.url") == 0)
            config_mask_url(*(char *const *)field, buf, size);
        else
            snprintf(buf, size, "%s", *(char *const *)field);
        break;
    case KEY_INT:
        snprintf(buf, size, "%lld", (long long)*(const int64_t *)field);
        break;
    case KEY_DECIMAL:
        decimal_format(*(const decimal_t *)field, buf, size);
        break;
    case KEY_BOOL:
        snprintf(buf, size, "%s", *(const bool *)field ? "true" : "false");
        break;
    case KEY_CHOICE:
        choice_name(def->choices, *(const int *)field, buf, size);
        break;
    }
}

bool config_differs_beyond_rules(const config_t *a, const config_t *b) {
    char va[1024], vb[1024];
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (strncmp(KEYS[i].name, "rule.", 5) == 0) continue;
        format_value(a, &KEYS[i], va, sizeof(va));
        format_value(b, &KEYS[i], vb, sizeof(vb));
        if (strcmp(va, vb) != 0) return true;
    }
    if (a->kafka_count != b->kafka_count) return true;
    for (size_t i = 0; i < a->kafka_count; i++)
        if (strcmp(a->kafka[i].name, b->kafka[i].name) != 0 ||
            strcmp(a->kafka[i].value, b->kafka[i].value) != 0)
            return true;
    return false;
}

void config_dump(const config_t *cfg, FILE *out) {
    char value[1024];
    for (size_t i = 0; i < KEY_COUNT; i++) {
        format_value(cfg, &KEYS[i], value, sizeof(value));
        fprintf(out, "%s=%s\n", KEYS[i].name, value);
    }
    for (size_t i = 0; i < cfg->kafka_count; i++)
        fprintf(out, "kafka.%s=%s\n", cfg->kafka[i].name,
                config_key_is_secret(cfg->kafka[i].name) ? "***" : cfg->kafka[i].value);
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

void config_print_defaults_file(FILE *out) {
    fprintf(out, "# fraud-detector configuration: every key with its default.\n"
                 "# Generated by `fraud-detector --print-default-config`; a test keeps it in\n"
                 "# step with the binary. Precedence: this file (-c), then FRAUD_* environment\n"
                 "# variables (FRAUD_ + key uppercased, dots as underscores), then -X key=value.\n"
                 "# Keys starting with kafka. go to librdkafka unchanged.\n");
    for (size_t i = 0; i < KEY_COUNT; i++) {
        fprintf(out, "\n");
        print_wrapped_comment(out, KEYS[i].doc);
        fprintf(out, "%s=%s\n", KEYS[i].name, KEYS[i].default_value);
    }
    for (size_t i = 0; i < KAFKA_DEFAULT_COUNT; i++) {
        fprintf(out, "\n");
        print_wrapped_comment(out, KAFKA_DEFAULTS[i].doc);
        fprintf(out, "kafka.%s=%s\n", KAFKA_DEFAULTS[i].name, KAFKA_DEFAULTS[i].value);
    }
}

void config_print_help(FILE *out) {
    for (size_t i = 0; i < KEY_COUNT; i++) {
        fprintf(out, "  %-28s (default %s)\n      %s\n", KEYS[i].name,
                *KEYS[i].default_value ? KEYS[i].default_value : "\"\"", KEYS[i].doc);
    }
    for (size_t i = 0; i < KAFKA_DEFAULT_COUNT; i++)
        fprintf(out, "  kafka.%-22s (default %s)\n      %s\n", KAFKA_DEFAULTS[i].name,
                KAFKA_DEFAULTS[i].value, KAFKA_DEFAULTS[i].doc);
    fprintf(out, "  kafka.<property>\n      Any other librdkafka property, passed through.\n");
}
