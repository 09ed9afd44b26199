#include "rule_instances.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "errstr.h"

enum { P_TYPE, P_STATE, P_FUNCTION, P_OPERATOR, P_LIMIT, P_WINDOW, P_MAX_EVENTS, P_COOLDOWN,
       P_COUNT };
static const char *const PARAMS[P_COUNT] = {"type",  "state",     "function",   "operator",
                                            "limit", "window.ms", "max.events", "cooldown.ms"};
static const char *const ENV_PARAMS[P_COUNT] = {"_TYPE",  "_STATE",     "_FUNCTION",
                                                "_OPERATOR", "_LIMIT", "_WINDOW_MS",
                                                "_MAX_EVENTS", "_COOLDOWN_MS"};

static int param_index(const char *name) {
    for (int i = 0; i < P_COUNT; i++)
        if (strcmp(PARAMS[i], name) == 0) return i;
    return -1;
}

/* Splits rule.<id>.<param>; 0 when key has that shape. */
static int split_key(const char *key, char *id, size_t id_size, const char **param) {
    if (strncmp(key, "rule.", 5) != 0) return -1;
    const char *start = key + 5, *dot = strchr(start, '.');
    if (!dot || dot == start || (size_t)(dot - start) >= id_size || !dot[1]) return -1;
    memcpy(id, start, (size_t)(dot - start));
    id[dot - start] = '\0';
    *param = dot + 1;
    return 0;
}

static bool is_fixed(const char *id) {
    int type = rule_id(id);
    return type >= 0 && type < RULE_COUNT;
}

bool rule_instance_key(const char *key) {
    char id[RULE_ID_MAX + 2];
    const char *param;
    if (split_key(key, id, sizeof(id), &param) != 0) return false;
    return is_fixed(id) ? strcmp(param, "type") == 0 : param_index(param) >= 0;
}

static int choice(const char *choices, const char *value) {
    size_t len = strlen(value);
    int index = 0;
    for (const char *p = choices; *p; index++) {
        size_t n = strcspn(p, "|");
        if (n == len && strncmp(p, value, n) == 0) return index;
        p += n + (p[n] == '|');
    }
    return -1;
}

static int parse_ms(const char *value, int64_t min, int64_t max, int64_t *out) {
    char *end;
    if (!*value) return -1;
    long long v = strtoll(value, &end, 10);
    if (*end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int set_param(aggregate_rule_t *g, int param, const char *key, const char *value,
                     char *errstr, size_t errstr_size) {
    int index;
    switch (param) {
    case P_TYPE:
        if (strcmp(value, "aggregate") == 0) {
            g->typed = true;
            return 0;
        }
        if (is_fixed(value))
            errstr_set(errstr, errstr_size,
                       "%s=%s: %s is a fixed rule with one instance, set as rule.%s.*; "
                       "named instances are of type aggregate", key, value, value, value);
        else
            errstr_set(errstr, errstr_size, "%s=%s: unknown rule type (aggregate)", key, value);
        return -1;
    case P_STATE:
        if ((index = choice("active|paused", value)) < 0) break;
        g->paused = index == 1;
        return 0;
    case P_FUNCTION:
        if ((index = choice(AGGREGATE_FUNCTION_CHOICES, value)) < 0) break;
        g->function = index;
        return 0;
    case P_OPERATOR:
        if ((index = choice(AGGREGATE_OPERATOR_CHOICES, value)) < 0) break;
        g->op = index;
        return 0;
    case P_LIMIT:
        if (decimal_parse(value, strlen(value), &g->limit) != DECIMAL_OK) break;
        g->has_limit = true;
        return 0;
    case P_WINDOW:
        if (parse_ms(value, 0, INT64_MAX / 2, &g->window_ms) != 0) break;
        return 0;
    case P_MAX_EVENTS:
        if (parse_ms(value, 1, AGGREGATE_MAX_EVENTS, &g->max_events) != 0) break;
        return 0;
    case P_COOLDOWN:
        if (parse_ms(value, 0, INT64_MAX / 2, &g->cooldown_ms) != 0) break;
        return 0;
    }
    static const char *const expected[P_COUNT] = {
        [P_STATE] = "active or paused",
        [P_FUNCTION] = "one of " AGGREGATE_FUNCTION_CHOICES,
        [P_OPERATOR] = "one of " AGGREGATE_OPERATOR_CHOICES,
        [P_LIMIT] = "an exact decimal with at most 4 places",
        [P_WINDOW] = "milliseconds, 0 or more",
        [P_MAX_EVENTS] = "1 to 10000",
        [P_COOLDOWN] = "milliseconds, 0 or more",
    };
    errstr_set(errstr, errstr_size, "%s=\"%s\": expected %s", key, value, expected[param]);
    return -1;
}

int rule_instance_set(rule_set_t *rules, const char *key, const char *value, const char *origin,
                      char *errstr, size_t errstr_size) {
    char id[RULE_ID_MAX + 2];
    const char *param;
    if (split_key(key, id, sizeof(id), &param) != 0) {
        errstr_set(errstr, errstr_size, "unknown rule setting \"%s\"", key);
        return -1;
    }
    if (is_fixed(id)) {
        if (strcmp(param, "type") != 0) {
            errstr_set(errstr, errstr_size, "unknown rule setting \"%s\"", key);
            return -1;
        }
        if (strcmp(value, id) != 0) {
            errstr_set(errstr, errstr_size,
                       "%s=%s: the rule named %s is of type %s; give the instance another id",
                       key, value, id, id);
            return -1;
        }
        snprintf(rules->origin[rule_id(id)], RULE_ORIGIN_MAX, "%s", origin);
        return 0;
    }
    if (!rule_id_is_valid(id, strlen(id)) || rule_id(id) == RULE_AGGREGATE) {
        errstr_set(errstr, errstr_size,
                   "%s: a rule id is 1 to %d letters, digits, '_' or '-' (and not a type's "
                   "name)", key, RULE_ID_MAX);
        return -1;
    }
    int p = param_index(param);
    if (p < 0) {
        errstr_set(errstr, errstr_size,
                   "unknown rule setting \"%s\" (an aggregate instance has type, state, "
                   "function, operator, limit, window.ms, max.events and cooldown.ms)", key);
        return -1;
    }
    aggregate_rule_t *found = (aggregate_rule_t *)rules_find_aggregate(rules, id);
    aggregate_rule_t g;
    if (found) {
        g = *found;
    } else if (rules->aggregate_count >= AGGREGATE_RULES_MAX) {
        errstr_set(errstr, errstr_size, "%s: at most %d aggregate instances", key,
                   AGGREGATE_RULES_MAX);
        return -1;
    } else {
        memset(&g, 0, sizeof(g));
        memcpy(g.id, id, strlen(id) + 1); /* valid: at most RULE_ID_MAX bytes */
        g.function = AGG_SUM;
        g.op = AGG_GT;
        g.window_ms = 60000;
        g.max_events = 1000;
    }
    if (set_param(&g, p, key, value, errstr, errstr_size) != 0) return -1;
    snprintf(g.origin, sizeof(g.origin), "%s", origin);
    if (found) *found = g;
    else rules->aggregates[rules->aggregate_count++] = g;
    return 0;
}

int rule_instances_validate(const rule_set_t *rules, char *errstr, size_t errstr_size) {
    for (uint32_t i = 0; i < rules->aggregate_count; i++) {
        const aggregate_rule_t *g = &rules->aggregates[i];
        if (!g->typed || !g->has_limit) {
            errstr_set(errstr, errstr_size,
                       "rule %s: an instance needs rule.%s.type=aggregate and rule.%s.limit",
                       g->id, g->id, g->id);
            return -1;
        }
    }
    return 0;
}

int rule_instance_env_key(const char *env_key, char *key, size_t size) {
    if (strncmp(env_key, "RULE_", 5) != 0) return -1;
    const char *id = env_key + 5;
    size_t len = strlen(id);
    for (int p = 0; p < P_COUNT; p++) {
        size_t suffix = strlen(ENV_PARAMS[p]);
        if (len <= suffix || strcmp(id + len - suffix, ENV_PARAMS[p]) != 0) continue;
        size_t id_len = len - suffix;
        if (id_len > RULE_ID_MAX || 5 + id_len + 1 + strlen(PARAMS[p]) + 1 > size) return -1;
        memcpy(key, "rule.", 6);
        for (size_t i = 0; i < id_len; i++) {
            char c = id[i];
            key[5 + i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        snprintf(key + 5 + id_len, size - 5 - id_len, ".%s", PARAMS[p]);
        return 0;
    }
    return -1;
}

void rule_instances_dump(const rule_set_t *rules, FILE *out) {
    for (uint32_t i = 0; i < rules->aggregate_count; i++) {
        const aggregate_rule_t *g = &rules->aggregates[i];
        char limit[DECIMAL_TEXT_MAX];
        decimal_format(g->limit, limit, sizeof(limit));
        fprintf(out,
                "rule.%s.type=aggregate\nrule.%s.state=%s\nrule.%s.function=%s\n"
                "rule.%s.operator=%s\nrule.%s.limit=%s\nrule.%s.window.ms=%lld\n"
                "rule.%s.max.events=%lld\nrule.%s.cooldown.ms=%lld\n",
                g->id, g->id, g->paused ? "paused" : "active", g->id,
                aggregate_function_name(g->function), g->id, aggregate_operator_name(g->op),
                g->id, limit, g->id, (long long)g->window_ms, g->id, (long long)g->max_events,
                g->id, (long long)g->cooldown_ms);
    }
}

/* cJSON keeps numbers as doubles; raw text keeps decimals exact. */
static cJSON *add_decimal(cJSON *obj, const char *name, decimal_t value) {
    char text[DECIMAL_TEXT_MAX];
    decimal_format(value, text, sizeof(text));
    return cJSON_AddRawToObject(obj, name, text);
}

static cJSON *add_int(cJSON *obj, const char *name, int64_t value) {
    char text[DECIMAL_INT_TEXT_MAX];
    decimal_format_int(value, text);
    return cJSON_AddRawToObject(obj, name, text);
}

static int add_aggregate_params(cJSON *params, const aggregate_rule_t *g) {
    return cJSON_AddStringToObject(params, "function", aggregate_function_name(g->function)) &&
                   cJSON_AddStringToObject(params, "operator", aggregate_operator_name(g->op)) &&
                   add_decimal(params, "limit", g->limit) &&
                   add_int(params, "window_ms", g->window_ms) &&
                   add_int(params, "max_events", g->max_events) &&
                   add_int(params, "cooldown_ms", g->cooldown_ms)
               ? 0
               : -1;
}

int rule_params_add(cJSON *obj, int type, const rule_set_t *r, const aggregate_rule_t *g) {
    cJSON *params = cJSON_AddObjectToObject(obj, "params");
    if (!params) return -1;
    switch (type) {
    case RULE_AMOUNT_JUMP:
        return add_decimal(params, "threshold", r->jump_threshold) &&
                       cJSON_AddStringToObject(params, "direction",
                                               r->jump_direction == JUMP_BOTH ? "both" : "up")
                   ? 0
                   : -1;
    case RULE_CUMULATIVE_LIMIT:
        return add_decimal(params, "limit", r->cumulative_limit) ? 0 : -1;
    case RULE_SMALL_THEN_LARGE:
        return add_decimal(params, "small", r->small_amount) &&
                       add_decimal(params, "large", r->large_amount) &&
                       add_int(params, "window_ms", r->small_window_ms)
                   ? 0
                   : -1;
    case RULE_COUNT_AVERAGE:
        return add_int(params, "count", r->average_count) ? 0 : -1;
    case RULE_VELOCITY:
        return add_int(params, "max_count", r->velocity_max_count) &&
                       add_int(params, "window_ms", r->velocity_window_ms)
                   ? 0
                   : -1;
    case RULE_AGGREGATE:
        return g ? add_aggregate_params(params, g) : -1;
    }
    return -1;
}

static int add_instance(cJSON *list, const char *id, int type, const char *state,
                        const rule_set_t *r, const aggregate_rule_t *g, const char *origin) {
    cJSON *item = cJSON_CreateObject();
    if (!item) return -1;
    cJSON_AddItemToArray(list, item);
    return cJSON_AddStringToObject(item, "id", id) &&
                   cJSON_AddStringToObject(item, "type", rule_name((rule_id_t)type)) &&
                   cJSON_AddStringToObject(item, "state", state) &&
                   rule_params_add(item, type, r, g) == 0 &&
                   cJSON_AddStringToObject(item, "origin", origin[0] ? origin : "default")
               ? 0
               : -1;
}

char *rules_json_new(const rule_set_t *r) {
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *list = root ? cJSON_AddArrayToObject(root, "rules") : NULL;
    if (!list) goto done;
    for (int i = 0; i < RULE_COUNT; i++) {
        const char *state = !r->enabled[i]                 ? "disabled"
                            : r->state[i] == RULE_PAUSED ? "paused"
                                                         : "active";
        if (add_instance(list, rule_name((rule_id_t)i), i, state, r, NULL, r->origin[i]) != 0)
            goto done;
    }
    for (uint32_t i = 0; i < r->aggregate_count; i++) {
        const aggregate_rule_t *g = &r->aggregates[i];
        if (add_instance(list, g->id, RULE_AGGREGATE, g->paused ? "paused" : "active", r, g,
                         g->origin) != 0)
            goto done;
    }
    text = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return text;
}
