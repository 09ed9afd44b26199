/* config: every setting of the service, from one table of known keys.
 *
 * Sources are applied in order, later ones winning: built-in defaults, a
 * key=value file (-c), FRAUD_* environment variables, then -X key=value
 * flags. Keys starting with "kafka." pass through untouched to librdkafka
 * (both the consumer and the producer), as kcat's -X does. Unknown keys and
 * bad values are errors naming the key, the value and what was expected.
 *
 * The config owns every string in it; config_destroy() frees them. */
#ifndef FRAUD_CONFIG_H
#define FRAUD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "decimal.h"
#include "rules.h"

typedef struct config_kafka_prop {
    char *name;  /* librdkafka property, without the "kafka." prefix */
    char *value;
} config_kafka_prop_t;

typedef struct config {
    char *input_topic;
    char *alert_topic;
    char *dlq_topic;
    char *group_id;
    char *redis_url;
    char *redis_key_prefix;
    char *redis_password_file;
    int64_t redis_connect_timeout_ms;
    int64_t redis_command_timeout_ms;
    char *state_backend;
    int64_t state_ttl_ms;
    char *state_ttl_update;
    char *state_ttl_visibility;
    int64_t state_ttl_cleanup_interval_ms;
    int64_t state_cache_max_entries;
    int64_t batch_max_messages;
    int64_t batch_max_bytes;
    bool batch_overlap; /* apply the next batch while a step is in flight */
    int64_t input_max_message_bytes;
    int64_t input_max_user_id_bytes;
    int64_t input_max_json_depth;
    char *time_characteristic;   /* "event" or "processing" */
    int64_t time_max_out_of_orderness_ms;
    int64_t time_max_future_ms;
    char *late_topic;
    rule_set_t rules;            /* the rule.* keys; reloadable at run time */
    char loading_from[RULE_ORIGIN_MAX]; /* while loading: the source, for rules' origin */
    char *rules_topic;
    char *totals_topic;
    char *averages_topic;
    bool output_cloudevents;      /* CloudEvents binary-mode headers on outputs */
    char *output_cloudevents_source; /* ce_source; "": /fraud-detector/<group.id> */
    char *output_guarantee;       /* "at_least_once" or "exactly_once" */
    int64_t output_transaction_interval_ms; /* exactly_once: commit at most this often */
    char *log_level;
    char *log_format;
    char *http_listen;

    config_kafka_prop_t *kafka;  /* in the order first set */
    size_t kafka_count;
} config_t;

/* Returns a config holding the defaults; NULL only when out of memory. */
config_t *config_new(void);
void config_destroy(config_t *cfg);

/* Sets one key. Returns 0, or -1 with a reason in errstr. */
int config_set(config_t *cfg, const char *key, const char *value, char *errstr,
               size_t errstr_size);

/* Reads a key=value file: '#' starts a comment line, blank lines are skipped,
 * whitespace around key and value is trimmed. Errors carry path:line. */
int config_load_file(config_t *cfg, const char *path, char *errstr, size_t errstr_size);

/* Parses file text already in memory; `origin` names it in errors. */
int config_load_text(config_t *cfg, const char *text, size_t len, const char *origin,
                     char *errstr, size_t errstr_size);

/* Applies every FRAUD_* variable of envp (NULL-terminated, like environ).
 * FRAUD_STATE_TTL_MS is state.ttl.ms; FRAUD_KAFKA_X_Y is kafka.x.y. */
int config_load_env(config_t *cfg, char *const *envp, char *errstr, size_t errstr_size);

/* Every source in precedence order: the file (NULL: none), then the
 * FRAUD_* variables of envp, then the "key=value" settings (-X flags),
 * then config_validate(). Returns 0, or -1 with errstr. */
int config_load_sources(config_t *cfg, const char *file, char *const *envp,
                        const char *const *settings, int setting_count, char *errstr,
                        size_t errstr_size);

/* Cross-key checks once all sources are in, e.g. distinct topics. */
int config_validate(const config_t *cfg, char *errstr, size_t errstr_size);

/* output.guarantee=exactly_once: outputs and offsets in Kafka transactions. */
bool config_exactly_once(const config_t *cfg);

/* Sets one rule.* key on a rule set alone, as config_set() would on the
 * config's own (for rule updates at run time). */
int config_set_rule(rule_set_t *rules, const char *key, const char *value, char *errstr,
                    size_t errstr_size);

/* Checks a rule set against the rest of the config, e.g. that
 * count_average has averages.topic to write to. */
int config_validate_rules(const config_t *cfg, const rule_set_t *rules, char *errstr,
                          size_t errstr_size);

/* True when a and b differ in any key other than rule.* (and kafka.*
 * settings in any way). */
bool config_differs_beyond_rules(const config_t *a, const config_t *b);

/* Looks up a kafka.* value by librdkafka name; NULL when not set. */
const char *config_kafka_get(const config_t *cfg, const char *name);

/* key=value lines of the effective configuration, secrets masked. */
void config_dump(const config_t *cfg, FILE *out);

/* The documented default config file: what config/fraud-detector.conf holds. */
void config_print_defaults_file(FILE *out);

/* The key reference for --help. */
void config_print_help(FILE *out);

/* True for keys whose values must never be shown (passwords, secrets). */
bool config_key_is_secret(const char *key);


#endif
