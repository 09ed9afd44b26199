#include "rule_control.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "clock.h"
#include "errstr.h"
#include "log.h"

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

int rule_overrides_apply(const rule_overrides_t *ov, const rule_set_t *base, rule_set_t *out,
                         char *errstr, size_t errstr_size) {
    rule_set_t rules = *base;
    for (int i = 0; i < RULE_COUNT; i++)
        if (ov->json[i] && apply_update(rule_name(i), ov->json[i], &rules, errstr,
                                        errstr_size) != 0)
            return -1;
    *out = rules;
    return 0;
}

/* The rule a record is about: its key, else the value's "rule". */
static int record_rule(const void *key, size_t key_len, const cJSON *root, char *errstr,
                       size_t errstr_size) {
    char name[64] = "";
    const cJSON *item = root ? cJSON_GetObjectItemCaseSensitive(root, "rule") : NULL;
    const char *named = item && cJSON_IsString(item) ? item->valuestring : NULL;
    if (key_len > 0 && key_len < sizeof(name) && !memchr(key, '\0', key_len)) {
        memcpy(name, key, key_len);
        name[key_len] = '\0';
    } else if (key_len == 0 && named) {
        snprintf(name, sizeof(name), "%s", named);
    }
    int id = name[0] ? rule_id(name) : -1;
    if (id < 0) {
        errstr_set(errstr, errstr_size,
                   "the record names no known rule (key or \"rule\": amount_jump, "
                   "cumulative_limit, small_then_large, count_average or velocity)");
        return -1;
    }
    if (named && strcmp(named, name) != 0) {
        errstr_set(errstr, errstr_size, "key %s and \"rule\": \"%.64s\" disagree", name, named);
        return -1;
    }
    return id;
}

int rule_overrides_accept(rule_overrides_t *ov, const config_t *cfg, const rule_set_t *base,
                          const void *key, size_t key_len, const void *value,
                          size_t value_len, rule_set_t *out, int *changed, char *errstr,
                          size_t errstr_size) {
    char *json = NULL;
    cJSON *root = NULL;
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
    int id = record_rule(key, key_len, root, errstr, errstr_size);
    if (id < 0) goto done;
    rule_overrides_t next = *ov;
    next.json[id] = json; /* NULL for a tombstone */
    rule_set_t rules;
    if (rule_overrides_apply(&next, base, &rules, errstr, errstr_size) != 0 ||
        config_validate_rules(cfg, &rules, errstr, errstr_size) != 0)
        goto done;
    free(ov->json[id]);
    ov->json[id] = json;
    json = NULL;
    *out = rules;
    *changed = id;
    rc = 0;
done:
    cJSON_Delete(root);
    free(json);
    return rc;
}

void rule_overrides_clear(rule_overrides_t *ov) {
    for (int i = 0; i < RULE_COUNT; i++) {
        free(ov->json[i]);
        ov->json[i] = NULL;
    }
}

/* ---- the rules in force ------------------------------------------------ */

/* Every change of the rules in force is logged whole and shown in
 * fraud_rule_enabled. */
static void announce_rules(rule_control_t *rc, const char *why) {
    char text[512];
    rules_describe(&rc->rules, text, sizeof(text));
    log_info("rules", "%s: %s", why, text);
    for (int r = 0; r < RULE_COUNT; r++)
        atomic_store(&rc->metrics->rule_enabled[r], rc->rules.enabled[r] ? 1 : 0);
}

enum { UPDATE_SIGHUP = 0, UPDATE_TOPIC = 1, UPDATE_APPLIED = 0, UPDATE_REJECTED = 1 };

/* A record of rules.topic, read between batches. A record that cannot be
 * applied changes nothing and goes to the dead-letter topic. */
static void take_record(rule_control_t *rc, const kafka_msg_t *m) {
    char errstr[512], why[256];
    int changed = -1;
    rule_set_t rules;
    if (rule_overrides_accept(&rc->overrides, rc->cfg, &rc->base, m->key, m->key_len, m->value,
                              m->value_len, &rules, &changed, errstr, sizeof(errstr)) != 0) {
        metrics_add(&rc->metrics->rule_updates[UPDATE_TOPIC][UPDATE_REJECTED], 1);
        log_error("rules", "%s [%d] offset %lld rejected, the rules in force stay: %s", m->topic,
                  (int)m->partition, (long long)m->offset, errstr);
        if (dead_letter_send(rc->dead_letters, m, DEAD_LETTER_INVALID_RULE, errstr, NULL) != 0)
            rc->failed = 1;
        return;
    }
    rc->rules = rules;
    metrics_add(&rc->metrics->rule_updates[UPDATE_TOPIC][UPDATE_APPLIED], 1);
    snprintf(why, sizeof(why), "%s %s from %s [%d] offset %lld", rule_name(changed),
             m->value_len ? "updated" : "returned to the config", m->topic, (int)m->partition,
             (long long)m->offset);
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

int rule_control_failed(const rule_control_t *rc) { return rc->failed; }

void rule_control_destroy(rule_control_t *rc) {
    if (!rc) return;
    kafka_reader_destroy(rc->reader);
    rule_overrides_clear(&rc->overrides);
    free(rc);
}
