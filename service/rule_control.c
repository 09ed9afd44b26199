#include "rule_control.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "clock.h"
#include "errstr.h"
#include "log.h"
#include "rule_instances.h"

#define CONTROL_VALUE_MAX 4096

struct rule_control {
    const config_t *cfg;
    dead_letter_t *dead_letters;
    metrics_t *metrics;
    kafka_reader_t *reader; /* NULL without rules.topic */
    /* The config's rule.* keys (re-read on SIGHUP), the kept updates of
     * the topic, and the two together: the rules in force. */
    rule_set_t base;
    rule_overrides_t overrides;
    rule_set_t rules;
    pthread_mutex_t json_lock;
    char *json; /* rules_json_new() of the rules in force; guarded by json_lock */
    volatile sig_atomic_t *reload_requested;
    rule_loader_fn load;
    void *load_ctx;
    int failed;
};

/* A JSON number as the text config_set_rule() parses. Doubles are exact for
 * integers below 2^53 and, to 4 decimals, below 1e11; bigger amounts must
 * come as strings. */
static int number_text(const cJSON *item, char *buf, size_t size) {
    double v = item->valuedouble;
    if (!isfinite(v)) return -1;
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(buf, size, "%.0f", v);
    else if (fabs(v) < 1e11)
        snprintf(buf, size, "%.4f", v);
    else
        return -1;
    return 0;
}

/* Applies one rule's update object to *rules. */
static int apply_update(const char *rule, const char *json, rule_set_t *rules, char *errstr,
                        size_t errstr_size) {
    cJSON *root = cJSON_Parse(json);
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        errstr_set(errstr, errstr_size, "rule %s: value is not a JSON object", rule);
        goto done;
    }
    for (const cJSON *item = root->child; item; item = item->next) {
        char key[128], value[64];
        const char *text = value;
        if (strcmp(item->string, "rule") == 0) continue; /* checked by the caller */
        int n = snprintf(key, sizeof(key), "rule.%s.%s", rule, item->string);
        if (n < 0 || (size_t)n >= sizeof(key)) {
            errstr_set(errstr, errstr_size, "rule %s: setting name too long", rule);
            goto done;
        }
        for (char *c = key + 5 + strlen(rule) + 1; *c; c++)
            if (*c == '_') *c = '.';
        if (cJSON_IsBool(item)) {
            text = cJSON_IsTrue(item) ? "true" : "false";
        } else if (cJSON_IsString(item)) {
            text = item->valuestring;
        } else if (!cJSON_IsNumber(item) || number_text(item, value, sizeof(value)) != 0) {
            errstr_set(errstr, errstr_size,
                       "rule %s: %s: expected a string, a boolean or a number (amounts of "
                       "10^11 or more as strings)", rule, item->string);
            goto done;
        }
        if (config_set_rule(rules, key, text, errstr, errstr_size) != 0) goto done;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

static bool is_fixed_rule(const char *id) {
    int type = rule_id(id);
    return type >= 0 && type < RULE_COUNT;
}

/* One kept record on top of *rules: an instance the rules have is updated,
 * any other is created from the record alone. */
static int apply_override(const rule_override_t *o, rule_set_t *rules, char *errstr,
                          size_t errstr_size) {
    bool existed = is_fixed_rule(o->id) || rules_find_instance(rules, o->id);
    if (apply_update(o->id, o->json, rules, errstr, errstr_size) != 0) return -1;
    if (is_fixed_rule(o->id)) {
        snprintf(rules->origin[rule_id(o->id)], RULE_ORIGIN_MAX, "%s", o->origin);
        return 0;
    }
    rule_instance_t *inst = (rule_instance_t *)rules_find_instance(rules, o->id);
    if (!inst) {
        errstr_set(errstr, errstr_size, "rule %s: the record sets nothing", o->id);
        return -1;
    }
    if (!existed) inst->incarnation = o->incarnation;
    snprintf(inst->origin, sizeof(inst->origin), "%s", o->origin);
    return 0;
}

int rule_overrides_apply(const rule_overrides_t *ov, const rule_set_t *base, rule_set_t *out,
                         char *errstr, size_t errstr_size) {
    rule_set_t rules = *base;
    for (size_t i = 0; i < ov->count; i++)
        if (apply_override(&ov->items[i], &rules, errstr, errstr_size) != 0) return -1;
    *out = rules;
    return 0;
}

/* The instance a record is about: its key, else the value's "rule". */
static int record_rule(const void *key, size_t key_len, const cJSON *root,
                       char id[RULE_ID_MAX + 1], char *errstr, size_t errstr_size) {
    const cJSON *item = root ? cJSON_GetObjectItemCaseSensitive(root, "rule") : NULL;
    const char *named = item && cJSON_IsString(item) ? item->valuestring : NULL;
    id[0] = '\0';
    if (key_len > 0 && rule_id_is_valid(key, key_len)) {
        memcpy(id, key, key_len);
        id[key_len] = '\0';
    } else if (key_len == 0 && named && rule_id_is_valid(named, strlen(named))) {
        snprintf(id, RULE_ID_MAX + 1, "%s", named);
    }
    if (!id[0] || rule_id(id) == RULE_AGGREGATE) {
        errstr_set(errstr, errstr_size,
                   "the record names no rule: its key (or \"rule\") is a rule id, 1 to %d "
                   "letters, digits, '_' or '-' (amount_jump, cumulative_limit, "
                   "small_then_large, count_average, velocity, or a named instance's)",
                   RULE_ID_MAX);
        return -1;
    }
    if (named && strcmp(named, id) != 0) {
        errstr_set(errstr, errstr_size, "key %s and \"rule\": \"%.64s\" disagree", id, named);
        return -1;
    }
    return 0;
}

static rule_override_t *find_override(const rule_overrides_t *ov, const char *id) {
    for (size_t i = 0; ov->items && i < ov->count; i++)
        if (strcmp(ov->items[i].id, id) == 0) return &ov->items[i];
    return NULL;
}

/* ov with the record for id put in (json NULL: taken out), as a new list
 * that shares the other records' text. */
static int overrides_with(const rule_overrides_t *ov, const char *id, char *json,
                          const rule_record_at_t *at, rule_overrides_t *next) {
    const rule_override_t *old = find_override(ov, id);
    rule_override_t o = {.json = json};
    snprintf(o.id, sizeof(o.id), "%s", id);
    snprintf(o.origin, sizeof(o.origin), "topic %s [%d] offset %lld", at->topic,
             (int)at->partition, (long long)at->offset);
    /* An instance keeps the incarnation of the record that created it. */
    o.incarnation = old ? old->incarnation : ((int64_t)at->partition << 40) + at->offset + 1;
    next->count = 0;
    next->items = malloc((ov->count + 1) * sizeof(*next->items));
    if (!next->items) return -1;
    for (size_t i = 0; i < ov->count; i++) {
        if (&ov->items[i] != old) next->items[next->count++] = ov->items[i];
        else if (json) next->items[next->count++] = o;
    }
    if (!old && json) next->items[next->count++] = o;
    return 0;
}

int rule_overrides_accept(rule_overrides_t *ov, const config_t *cfg, const rule_set_t *base,
                          const void *key, size_t key_len, const void *value,
                          size_t value_len, const rule_record_at_t *at, rule_set_t *out,
                          char changed[RULE_ID_MAX + 1], char *errstr, size_t errstr_size) {
    char *json = NULL, id[RULE_ID_MAX + 1];
    cJSON *root = NULL;
    rule_overrides_t next = {0};
    int rc = -1;
    if (value_len > CONTROL_VALUE_MAX) {
        errstr_set(errstr, errstr_size, "rule update larger than %d bytes", CONTROL_VALUE_MAX);
        return -1;
    }
    if (value_len > 0) {
        json = malloc(value_len + 1);
        if (!json) {
            errstr_set(errstr, errstr_size, "out of memory");
            return -1;
        }
        memcpy(json, value, value_len);
        json[value_len] = '\0';
        root = cJSON_Parse(json);
        if (!cJSON_IsObject(root)) {
            errstr_set(errstr, errstr_size, "value is not a JSON object");
            goto done;
        }
    }
    if (record_rule(key, key_len, root, id, errstr, errstr_size) != 0) goto done;
    if (root && !is_fixed_rule(id) && !rules_find_instance(base, id) &&
        !cJSON_GetObjectItemCaseSensitive(root, "type")) {
        errstr_set(errstr, errstr_size,
                   "rule %s: only the topic defines this instance, so each of its records "
                   "defines it whole (\"type\" and its parameters): a compacted topic keeps "
                   "only its last record", id);
        goto done;
    }
    rule_set_t rules;
    if (overrides_with(ov, id, json, at, &next) != 0) {
        errstr_set(errstr, errstr_size, "out of memory");
        goto done;
    }
    if (rule_overrides_apply(&next, base, &rules, errstr, errstr_size) != 0 ||
        config_validate_rules(cfg, &rules, errstr, errstr_size) != 0)
        goto done;
    rule_override_t *old = find_override(ov, id);
    if (old) free(old->json);
    free(ov->items);
    *ov = next;
    next.items = NULL;
    json = NULL;
    *out = rules;
    snprintf(changed, RULE_ID_MAX + 1, "%s", id);
    rc = 0;
done:
    free(next.items);
    cJSON_Delete(root);
    free(json);
    return rc;
}

void rule_overrides_clear(rule_overrides_t *ov) {
    for (size_t i = 0; i < ov->count; i++) free(ov->items[i].json);
    free(ov->items);
    ov->items = NULL;
    ov->count = 0;
}

/* ---- the rules in force ------------------------------------------------ */

/* Every change of the rules in force is logged whole and shown in
 * fraud_rule_enabled. */
static void announce_rules(rule_control_t *rc, const char *why) {
    char text[2048];
    int active[RULE_TYPE_COUNT];
    rules_describe(&rc->rules, text, sizeof(text));
    log_info("rules", "%s: %s", why, text);
    for (int r = 0; r < RULE_COUNT; r++)
        atomic_store(&rc->metrics->rule_enabled[r], rc->rules.enabled[r] ? 1 : 0);
    rules_count_active(&rc->rules, active);
    for (int r = 0; r < RULE_TYPE_COUNT; r++)
        atomic_store(&rc->metrics->rules_active[r], active[r]);
    /* GET /rules reads this copy from the HTTP thread. */
    char *json = rules_json_new(&rc->rules);
    pthread_mutex_lock(&rc->json_lock);
    if (json) {
        free(rc->json);
        rc->json = json;
    }
    pthread_mutex_unlock(&rc->json_lock);
}

enum { UPDATE_SIGHUP = 0, UPDATE_TOPIC = 1, UPDATE_APPLIED = 0, UPDATE_REJECTED = 1 };

/* A record of rules.topic, read between batches. A record that cannot be
 * applied changes nothing and goes to the dead-letter topic. */
static void take_record(rule_control_t *rc, const kafka_msg_t *m) {
    char errstr[512], why[256], changed[RULE_ID_MAX + 1];
    rule_set_t rules;
    rule_record_at_t at = {.topic = m->topic, .partition = m->partition, .offset = m->offset};
    if (rule_overrides_accept(&rc->overrides, rc->cfg, &rc->base, m->key, m->key_len, m->value,
                              m->value_len, &at, &rules, changed, errstr,
                              sizeof(errstr)) != 0) {
        metrics_add(&rc->metrics->rule_updates[UPDATE_TOPIC][UPDATE_REJECTED], 1);
        log_error("rules", "%s [%d] offset %lld rejected, the rules in force stay: %s", m->topic,
                  (int)m->partition, (long long)m->offset, errstr);
        if (dead_letter_send(rc->dead_letters, m, DEAD_LETTER_INVALID_RULE, errstr, NULL) != 0)
            rc->failed = 1;
        return;
    }
    bool existed = rule_id(changed) >= 0 || rules_find_instance(&rc->rules, changed);
    bool exists = rule_id(changed) >= 0 || rules_find_instance(&rules, changed);
    rc->rules = rules;
    metrics_add(&rc->metrics->rule_updates[UPDATE_TOPIC][UPDATE_APPLIED], 1);
    snprintf(why, sizeof(why), "%s %s from %s [%d] offset %lld", changed,
             !exists                           ? "deleted"
             : !existed                        ? "created"
             : m->value_len                    ? "updated"
                                               : "returned to the config",
             m->topic, (int)m->partition, (long long)m->offset);
    announce_rules(rc, why);
}

/* SIGHUP: the config's rule.* keys again, with the topic's updates on top.
 * Anything invalid keeps the rules in force. */
static void reload_from_config(rule_control_t *rc) {
    rule_set_t base, rules;
    char errstr[1024];
    if (rc->load(rc->load_ctx, &base, errstr, sizeof(errstr)) != 0 ||
        rule_overrides_apply(&rc->overrides, &base, &rules, errstr, sizeof(errstr)) != 0 ||
        config_validate_rules(rc->cfg, &rules, errstr, sizeof(errstr)) != 0) {
        metrics_add(&rc->metrics->rule_updates[UPDATE_SIGHUP][UPDATE_REJECTED], 1);
        log_error("rules", "SIGHUP: rules not reloaded, the rules in force stay: %s", errstr);
        return;
    }
    rc->base = base;
    rc->rules = rules;
    metrics_add(&rc->metrics->rule_updates[UPDATE_SIGHUP][UPDATE_APPLIED], 1);
    announce_rules(rc, "reloaded on SIGHUP");
}

static void take_arrived_records(rule_control_t *rc, int timeout_ms, size_t *taken) {
    kafka_msg_t m;
    while (kafka_reader_poll(rc->reader, timeout_ms, &m)) {
        take_record(rc, &m);
        kafka_msg_release(&m);
        if (taken) (*taken)++;
        timeout_ms = 0;
    }
}

rule_control_t *rule_control_new(const config_t *cfg, dead_letter_t *dead_letters,
                                 metrics_t *metrics, int timeout_ms, char *errstr,
                                 size_t errstr_size) {
    rule_control_t *rc = calloc(1, sizeof(*rc));
    if (!rc) {
        errstr_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&rc->json_lock, NULL);
    rc->cfg = cfg;
    rc->dead_letters = dead_letters;
    rc->metrics = metrics;
    rc->base = rc->rules = cfg->rules;
    if (cfg->rules_topic[0]) {
        char reason[512];
        rc->reader = kafka_reader_new(cfg, cfg->rules_topic, reason, sizeof(reason));
        if (!rc->reader) {
            errstr_set(errstr, errstr_size, "rules.topic %s", reason);
            goto fail;
        }
        int64_t deadline = clock_monotonic_ms() + timeout_ms;
        size_t records = 0;
        while (!kafka_reader_caught_up(rc->reader)) {
            if (clock_monotonic_ms() > deadline) {
                errstr_set(errstr, errstr_size,
                           "rules.topic %s: not read to its end within %d ms", cfg->rules_topic,
                           timeout_ms);
                goto fail;
            }
            take_arrived_records(rc, 100, &records);
        }
        log_info("rules", "read %zu rule updates from %s", records, cfg->rules_topic);
    }
    announce_rules(rc, "in force");
    return rc;
fail:
    rule_control_destroy(rc);
    return NULL;
}

void rule_control_set_reload(rule_control_t *rc, volatile sig_atomic_t *requested,
                             rule_loader_fn load, void *ctx) {
    rc->reload_requested = requested;
    rc->load = load;
    rc->load_ctx = ctx;
}

void rule_control_refresh(rule_control_t *rc) {
    if (rc->reload_requested && *rc->reload_requested) {
        *rc->reload_requested = 0;
        if (rc->load) reload_from_config(rc);
    }
    if (rc->reader) take_arrived_records(rc, 0, NULL);
}

const rule_set_t *rule_control_rules(const rule_control_t *rc) { return &rc->rules; }

char *rule_control_rules_json(rule_control_t *rc) {
    pthread_mutex_lock(&rc->json_lock);
    char *copy = rc->json ? strdup(rc->json) : NULL;
    pthread_mutex_unlock(&rc->json_lock);
    return copy;
}

int rule_control_failed(const rule_control_t *rc) { return rc->failed; }

void rule_control_destroy(rule_control_t *rc) {
    if (!rc) return;
    kafka_reader_destroy(rc->reader);
    rule_overrides_clear(&rc->overrides);
    free(rc->json);
    pthread_mutex_destroy(&rc->json_lock);
    free(rc);
}
