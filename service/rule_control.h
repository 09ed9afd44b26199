/* rule_control: rule updates at run time, from rules.topic.
 *
 * The config's rule.* keys are the base. A record on the control topic
 * changes one rule instance: its key is the instance's id, its value a JSON
 * object of that instance's settings by their config names ({"enabled":
 * true, "threshold": "5000", "window.ms": 30000}; "window_ms" works too),
 * layered on the base. A record for an id the base does not have creates a
 * named instance, and so must define it whole ("type" and its parameters).
 * A record with an empty value (a tombstone) returns the instance to the
 * base, or deletes one that only the topic defined. The last accepted
 * record of each id is kept, so a new base (SIGHUP) gets the updates
 * layered on it again, as a compacted topic replayed from its start would:
 * which is also why a record never builds on the one before it.
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

/* The kept record of one instance id. */
typedef struct rule_override {
    char id[RULE_ID_MAX + 1];
    char *json;                   /* owned */
    char origin[RULE_ORIGIN_MAX]; /* "topic <name> [<partition>] offset <offset>" */
    int64_t incarnation;          /* the record that created it, for a new instance */
} rule_override_t;

typedef struct rule_overrides {
    rule_override_t *items; /* owned; in the order the ids first came */
    size_t count;
} rule_overrides_t;

/* Where a control record was read. */
typedef struct rule_record_at {
    const char *topic;
    int32_t partition;
    int64_t offset;
} rule_record_at_t;

/* Applies every kept update to base, giving *out. -1 with errstr when one
 * no longer applies (it was accepted against an earlier base). */
int rule_overrides_apply(const rule_overrides_t *ov, const rule_set_t *base, rule_set_t *out,
                         char *errstr, size_t errstr_size);

/* Takes one control record, read at `at`. On success the instance's
 * update is kept (or dropped, for a tombstone), *out is base with every
 * update applied and config_validate_rules() passed, and changed names the
 * instance. Otherwise -1 with a reason in errstr, and nothing changes. */
int rule_overrides_accept(rule_overrides_t *ov, const config_t *cfg, const rule_set_t *base,
                          const void *key, size_t key_len, const void *value,
                          size_t value_len, const rule_record_at_t *at, rule_set_t *out,
                          char changed[RULE_ID_MAX + 1], char *errstr, size_t errstr_size);

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

/* The rules in force as rules_json_new() writes them, for GET /rules; any
 * thread may call it. Freed by the caller; NULL when out of memory. */
char *rule_control_rules_json(rule_control_t *rc);

/* True once a rejected record could not be dead-lettered. */
int rule_control_failed(const rule_control_t *rc);

void rule_control_destroy(rule_control_t *rc);

#endif
