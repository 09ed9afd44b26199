/* rule_instances: rule instances as settings, and as JSON.
 *
 * The fixed rules have their keys in the config catalogue
 * (rule.velocity.window.ms). Named instances have keys of their own id,
 * rule.<id>.<parameter>, which no catalogue can list: this module sets them
 * on a rule set, checks them, maps their environment variables, and writes
 * every instance's parameters as JSON, one form for alerts and for
 * GET /rules. It owns nothing beyond what the caller passes. */
#ifndef FRAUD_RULE_INSTANCES_H
#define FRAUD_RULE_INSTANCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "rules.h"

struct cJSON;

/* True when key is rule.<id>.<parameter> of a named instance, or of a
 * fixed rule's "type" (which must name itself): the keys that
 * rule_instance_set() takes. */
bool rule_instance_key(const char *key);

/* Sets one such key; origin says where it came from ("config file x",
 * "environment", "-X"). Creates the instance at its first key. 0, or -1
 * with a reason. */
int rule_instance_set(rule_set_t *rules, const char *key, const char *value, const char *origin,
                      char *errstr, size_t errstr_size);

/* Every named instance is complete (type and limit given). 0, or -1. */
int rule_instances_validate(const rule_set_t *rules, char *errstr, size_t errstr_size);

/* Writes every named instance's keys as key=value lines. */
void rule_instances_dump(const rule_set_t *rules, FILE *out);

/* FRAUD_RULE_BIG_SUM_WINDOW_MS (without FRAUD_) -> rule.big_sum.window.ms:
 * an id in the environment is lower case, its '-' written '_'... and so
 * read back as '_'. 0 when env_key names an instance parameter. */
int rule_instance_env_key(const char *env_key, char *key, size_t size);

/* Adds "params" to obj: the parameters of fixed rule `type`, or of
 * `aggregate` when type is RULE_AGGREGATE. 0, or -1 when out of memory. */
int rule_params_add(struct cJSON *obj, int type, const rule_set_t *rules,
                    const aggregate_rule_t *aggregate);

/* {"rules": [{"id", "type", "state", "params", "origin"}...]}: every
 * instance in force, fixed ones included (state "disabled" when off).
 * Freed by the caller; NULL when out of memory. */
char *rules_json_new(const rule_set_t *rules);

#endif
