/* rule_instances: rule instances as settings, and as JSON.
 *
 * The fixed rules have their keys in the config catalogue
 * (rule.velocity.window.ms). Named instances, of any type, have keys of
 * their own id, rule.<id>.<parameter>, which no catalogue can list (a new
 * one starts from the catalogue's defaults, rule_set_t.defaults): this
 * module sets them on a rule set, checks them, maps their environment
 * variables, and writes the rules in force as GET /rules' JSON (parameters
 * in alert_add_params()'s form, the one alerts carry). It owns nothing
 * beyond what the caller passes. */
#ifndef FRAUD_RULE_INSTANCES_H
#define FRAUD_RULE_INSTANCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rules.h"

/* True when key is rule.<id>.<parameter> of a named instance, or of a
 * fixed rule's "type" (which must name itself): the keys that
 * rule_instance_set() takes. */
bool rule_instance_key(const char *key);

/* Sets one such key; origin says where it came from ("config file x",
 * "environment", "-X"). Creates the instance at its first key. 0, or -1
 * with a reason. */
int rule_instance_set(rule_set_t *rules, const char *key, const char *value, const char *origin,
                      char *errstr, size_t errstr_size);

/* Every named instance has a type, only its type's parameters, and what
 * its type needs (an aggregate's limit, averages.topic for count_average, a
 * window no shorter than the out-of-orderness slack_ms, 0 in processing
 * time). 0, or -1 with a reason. */
int rule_instances_validate(const rule_set_t *rules, bool has_averages_topic, int64_t slack_ms,
                            char *errstr, size_t errstr_size);

/* Writes every named instance's keys as key=value lines. */
void rule_instances_dump(const rule_set_t *rules, FILE *out);

/* RULE_BIG_SUM_WINDOW_MS (FRAUD_ taken off) -> rule.big_sum.window.ms: an
 * id in the environment reads back in lower case. 0 when env_key names an
 * instance parameter. */
int rule_instance_env_key(const char *env_key, char *key, size_t size);


/* {"rules": [{"id", "type", "state", "params", "origin"}...]}: every
 * instance in force, fixed ones included (state "disabled" when off).
 * Freed by the caller; NULL when out of memory. */
char *rules_json_new(const rule_set_t *rules);

#endif
