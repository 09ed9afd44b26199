/* rule_control: rule updates at run time, from rules.topic.
 *
 * The config's rule.* keys are the base. A record on the control topic
 * changes one rule: its key is the rule's name, its value a JSON object of
 * that rule's settings by their config names ({"enabled": true,
 * "threshold": "5000", "window.ms": 30000}; "window_ms" works too). A record
 * with an empty value (a tombstone) returns the rule to the base. The last
 * accepted record of each rule is kept, so a new base (SIGHUP) gets the
 * updates layered on it again, as a compacted topic replayed from its start
 * would.
 *
 * Every instance reads every partition of the topic (it is broadcast, not
 * shared by the group), from the beginning, without committing.
 *
 * rule_control owns its consumer and the kept records. Only the consumer
 * thread uses it. */
#ifndef FRAUD_RULE_CONTROL_H
#define FRAUD_RULE_CONTROL_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "rules.h"

typedef struct rule_overrides {
    char *json[RULE_COUNT]; /* owned; NULL: the rule follows the base */
} rule_overrides_t;

/* Applies every kept update to base, giving *out. -1 with errstr when one
 * no longer applies (it was accepted against an earlier base). */
int rule_overrides_apply(const rule_overrides_t *ov, const rule_set_t *base, rule_set_t *out,
                         char *errstr, size_t errstr_size);

/* Takes one control record. On success the rule's update is kept (or
 * dropped, for a tombstone), *out is base with every update applied and
 * config_validate_rules() passed, and *changed names the rule. Otherwise -1
 * with a reason in errstr, and nothing changes. */
int rule_overrides_accept(rule_overrides_t *ov, const config_t *cfg, const rule_set_t *base,
                          const void *key, size_t key_len, const void *value,
                          size_t value_len, rule_set_t *out, int *changed, char *errstr,
                          size_t errstr_size);

void rule_overrides_clear(rule_overrides_t *ov);

typedef struct rule_control rule_control_t;

/* Creates the reader of cfg->rules_topic and reads it up to its end (as it
 * is when this starts), so the first batch already sees every rule update.
 * on_record is called for each record, in order. NULL with errstr when the
 * topic cannot be read within timeout_ms. */
typedef void (*rule_record_fn)(void *ctx, const rd_kafka_message_t *msg);
rule_control_t *rule_control_new(const config_t *cfg, rule_record_fn on_record, void *ctx,
                                 int timeout_ms, char *errstr, size_t errstr_size);

/* Hands every record that arrived since the last call to on_record,
 * without waiting. */
void rule_control_poll(rule_control_t *rc);

void rule_control_destroy(rule_control_t *rc);

#endif
