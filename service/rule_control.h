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
 * rule_control owns its reader, the kept records and the rules in force.
 * Only the consumer thread uses it. */
#ifndef FRAUD_RULE_CONTROL_H
#define FRAUD_RULE_CONTROL_H

#include <stddef.h>

#include <signal.h>

#include "config.h"
#include "dead_letter.h"
#include "metrics.h"
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

/* The rules in force: the config's rule.* keys (re-read on SIGHUP) with
 * the kept updates of rules.topic on top. They change only between
 * batches (rule_control_refresh), so a batch sees one rule set. A
 * rules.topic record that cannot be applied goes to the dead-letter topic
 * as invalid_rule. */
typedef struct rule_control rule_control_t;

/* Reads the config's rule.* keys again. 0, or -1 with a reason. */
typedef int (*rule_loader_fn)(void *ctx, rule_set_t *out, char *errstr, size_t errstr_size);

/* With rules.topic, creates its reader and reads it up to its end (as it is
 * when this starts), so the first batch already sees every update. NULL
 * with errstr when the topic cannot be read within timeout_ms. cfg, the
 * dead letters and the metrics are borrowed. */
rule_control_t *rule_control_new(const config_t *cfg, dead_letter_t *dead_letters,
                                 metrics_t *metrics, int timeout_ms, char *errstr,
                                 size_t errstr_size);

/* SIGHUP: whenever *requested is non-zero at a refresh, it is cleared and
 * load's rules (with the topic's updates on top) are put in force. */
void rule_control_set_reload(rule_control_t *rc, volatile sig_atomic_t *requested,
                             rule_loader_fn load, void *ctx);

/* Between batches: a requested reload, then the records that arrived. */
void rule_control_refresh(rule_control_t *rc);

const rule_set_t *rule_control_rules(const rule_control_t *rc);

/* True once a rejected record could not be dead-lettered. */
int rule_control_failed(const rule_control_t *rc);

void rule_control_destroy(rule_control_t *rc);

#endif
