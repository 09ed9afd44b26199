#include "rule_instances.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "alert.h"
#include "errstr.h"

enum { P_TYPE, P_STATE, P_FUNCTION, P_OPERATOR, P_LIMIT, P_WINDOW, P_MAX_EVENTS, P_COOLDOWN,
       P_THRESHOLD, P_DIRECTION, P_SMALL, P_LARGE, P_EVERY, P_MAX_COUNT, P_COUNT };
static const char *const PARAMS[P_COUNT] = {
    "type",        "state",     "function",  "operator", "limit", "window.ms", "max.events",
    "cooldown.ms", "threshold", "direction", "small",    "large", "count",     "max.count"};
#define BIT(p) (1u << (p))
/* The parameters of each type, beyond type and state. */
static const unsigned TYPE_PARAMS[RULE_TYPE_COUNT] = {
    [RULE_AMOUNT_JUMP] = BIT(P_THRESHOLD) | BIT(P_DIRECTION),
    [RULE_CUMULATIVE_LIMIT] = BIT(P_LIMIT),
    [RULE_SMALL_THEN_LARGE] = BIT(P_SMALL) | BIT(P_LARGE) | BIT(P_WINDOW),
    [RULE_COUNT_AVERAGE] = BIT(P_EVERY),
    [RULE_VELOCITY] = BIT(P_MAX_COUNT) | BIT(P_WINDOW),
    [RULE_AGGREGATE] = BIT(P_FUNCTION) | BIT(P_OPERATOR) | BIT(P_LIMIT) | BIT(P_WINDOW) |
                       BIT(P_MAX_EVENTS) | BIT(P_COOLDOWN),
};

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

static int parse_int(const char *value, int64_t min, int64_t max, int64_t *out) {
    char *end;
    if (!*value) return -1;
    long long v = strtoll(value, &end, 10);
    if (*end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_amount(const char *value, bool any_sign, decimal_t *out) {
    decimal_t d;
    if (decimal_parse(value, strlen(value), &d) != DECIMAL_OK || (!any_sign && d < 0)) return -1;
    *out = d;
    return 0;
}

/* A parameter's value goes wherever it may mean something ("limit" is
 * cumulative_limit's and aggregate's), since the type may come later;
 * rule_instances_validate() then refuses what the type has no use for. */
static int set_param(rule_instance_t *inst, int param, const char *value) {
    fixed_params_t *f = &inst->fixed;
    aggregate_rule_t *g = &inst->aggregate;
    int index;
    int64_t n;
    decimal_t d;
    switch (param) {
    case P_TYPE:
        if ((index = rule_id(value)) < 0) return -1;
        inst->type = index;
        return 0;
    case P_STATE:
        if ((index = choice("active|paused", value)) < 0) return -1;
        inst->paused = index == 1;
        return 0;
    case P_FUNCTION:
        if ((index = choice(AGGREGATE_FUNCTION_CHOICES, value)) < 0) return -1;
        g->function = index;
        return 0;
    case P_OPERATOR:
        if ((index = choice(AGGREGATE_OPERATOR_CHOICES, value)) < 0) return -1;
        g->op = index;
        return 0;
    case P_LIMIT:
        if (parse_amount(value, true, &d) != 0) return -1;
        g->limit = f->cumulative_limit = d;
        return 0;
    case P_WINDOW:
        if (parse_int(value, 0, INT64_MAX / 2, &n) != 0) return -1;
        g->window_ms = f->small_window_ms = f->velocity_window_ms = n;
        return 0;
    case P_MAX_EVENTS: return parse_int(value, 1, AGGREGATE_MAX_EVENTS, &g->max_events);
    case P_COOLDOWN: return parse_int(value, 0, INT64_MAX / 2, &g->cooldown_ms);
    case P_THRESHOLD: return parse_amount(value, false, &f->jump_threshold);
    case P_DIRECTION:
        if ((index = choice("up|both", value)) < 0) return -1;
        f->jump_direction = index == 1 ? JUMP_BOTH : JUMP_UP;
        return 0;
    case P_SMALL: return parse_amount(value, false, &f->small_amount);
    case P_LARGE: return parse_amount(value, false, &f->large_amount);
    case P_EVERY: return parse_int(value, 1, 1000000, &f->average_count);
    case P_MAX_COUNT: return parse_int(value, 1, VELOCITY_MAX_COUNT, &f->velocity_max_count);
    }
    return -1;
}

static const char *const EXPECTED[P_COUNT] = {
    [P_TYPE] = "a rule type (amount_jump, cumulative_limit, small_then_large, count_average, "
               "velocity or aggregate)",
    [P_STATE] = "active or paused",
    [P_FUNCTION] = "one of " AGGREGATE_FUNCTION_CHOICES,
    [P_OPERATOR] = "one of " AGGREGATE_OPERATOR_CHOICES,
    [P_LIMIT] = "an exact decimal with at most 4 places",
    [P_WINDOW] = "milliseconds, 0 or more",
    [P_MAX_EVENTS] = "1 to 10000",
    [P_COOLDOWN] = "milliseconds, 0 or more",
    [P_THRESHOLD] = "an exact decimal, 0 or more",
    [P_DIRECTION] = "up or both",
    [P_SMALL] = "an exact decimal, 0 or more",
    [P_LARGE] = "an exact decimal, 0 or more",
    [P_EVERY] = "1 to 1000000",
    [P_MAX_COUNT] = "1 to 1000",
};

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
        errstr_set(errstr, errstr_size, "unknown rule setting \"%s\"", key);
        return -1;
    }
    rule_instance_t *found = (rule_instance_t *)rules_find_instance(rules, id);
    rule_instance_t inst;
    if (found) {
        inst = *found;
    } else if (rules->instance_count >= RULE_INSTANCES_MAX) {
        errstr_set(errstr, errstr_size, "%s: at most %d named rule instances", key,
                   RULE_INSTANCES_MAX);
        return -1;
    } else {
        memset(&inst, 0, sizeof(inst));
        memcpy(inst.id, id, strlen(id) + 1); /* valid: at most RULE_ID_MAX bytes */
        inst.type = -1;
        inst.fixed = rules->defaults;
        inst.aggregate = (aggregate_rule_t){.function = AGG_SUM, .op = AGG_GT,
                                            .window_ms = 60000, .max_events = 1000};
    }
    if (set_param(&inst, p, value) != 0) {
        errstr_set(errstr, errstr_size, "%s=\"%s\": expected %s", key, value, EXPECTED[p]);
        return -1;
    }
    inst.params_set |= BIT(p);
    snprintf(inst.origin, sizeof(inst.origin), "%s", origin);
    if (found) *found = inst;
    else rules->instances[rules->instance_count++] = inst;
    return 0;
}

/* The parameters a type takes, for an error message. */
static void describe_params(unsigned mask, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (int p = P_FUNCTION; p < P_COUNT; p++) {
        if (!(mask & BIT(p)) || len >= size) continue;
        int n = snprintf(buf + len, size - len, "%s%s", len ? ", " : "", PARAMS[p]);
        if (n > 0) len += (size_t)n;
    }
}

/* What an instance needs of the rest of the config. */
static int check_context(const rule_instance_t *inst, bool has_averages_topic, int64_t slack_ms,
                         char *errstr, size_t errstr_size) {
    int64_t window = inst->type == RULE_SMALL_THEN_LARGE ? inst->fixed.small_window_ms
                     : inst->type == RULE_VELOCITY       ? inst->fixed.velocity_window_ms
                                                         : INT64_MAX;
    if (inst->type == RULE_COUNT_AVERAGE && !has_averages_topic) {
        errstr_set(errstr, errstr_size, "rule %s (count_average) needs averages.topic",
                   inst->id);
        return -1;
    }
    /* A payment placed out of order must still fall in every window. */
    if (slack_ms > window) {
        errstr_set(errstr, errstr_size,
                   "time.max.out.of.orderness.ms=%lld is longer than rule.%s.window.ms=%lld: "
                   "it may be at most that window", (long long)slack_ms, inst->id,
                   (long long)window);
        return -1;
    }
    return 0;
}

int rule_instances_validate(const rule_set_t *rules, bool has_averages_topic, int64_t slack_ms,
                            char *errstr, size_t errstr_size) {
    for (uint32_t i = 0; i < rules->instance_count; i++) {
        const rule_instance_t *inst = &rules->instances[i];
        char takes[128];
        if (inst->type < 0) {
            errstr_set(errstr, errstr_size, "rule %s: an instance needs rule.%s.type", inst->id,
                       inst->id);
            return -1;
        }
        unsigned extra = inst->params_set & ~(TYPE_PARAMS[inst->type] | BIT(P_TYPE) | BIT(P_STATE));
        if (extra) {
            int p = 0;
            while (!(extra & BIT(p))) p++;
            describe_params(TYPE_PARAMS[inst->type], takes, sizeof(takes));
            errstr_set(errstr, errstr_size, "rule.%s.%s: %s takes no %s (it takes %s)",
                       inst->id, PARAMS[p], rule_name((rule_id_t)inst->type), PARAMS[p], takes);
            return -1;
        }
        if (inst->type == RULE_AGGREGATE && !(inst->params_set & BIT(P_LIMIT))) {
            errstr_set(errstr, errstr_size, "rule %s: an aggregate instance needs rule.%s.limit",
                       inst->id, inst->id);
            return -1;
        }
        if (inst->type == RULE_CUMULATIVE_LIMIT && inst->fixed.cumulative_limit < 0) {
            errstr_set(errstr, errstr_size, "rule.%s.limit: a running total's limit is 0 or more",
                       inst->id);
            return -1;
        }
        if (inst->type == RULE_VELOCITY && inst->fixed.velocity_window_ms < 1) {
            errstr_set(errstr, errstr_size, "rule.%s.window.ms: velocity's window is 1 ms or more",
                       inst->id);
            return -1;
        }
        if (check_context(inst, has_averages_topic, slack_ms, errstr, errstr_size) != 0)
            return -1;
    }
    return 0;
}

int rule_instance_env_key(const char *env_key, char *key, size_t size) {
    if (strncmp(env_key, "RULE_", 5) != 0) return -1;
    const char *id = env_key + 5;
    size_t len = strlen(id), best_suffix = 0;
    int best = -1;
    /* The longest parameter that ends the name: _MAX_COUNT before _COUNT. */
    for (int p = 0; p < P_COUNT; p++) {
        char suffix[32];
        size_t n = 0;
        suffix[n++] = '_';
        for (const char *c = PARAMS[p]; *c && n + 1 < sizeof(suffix); c++)
            suffix[n++] = *c == '.' ? '_' : (char)(*c - 'a' + 'A');
        suffix[n] = '\0';
        if (len > n && strcmp(id + len - n, suffix) == 0 && n > best_suffix) {
            best = p;
            best_suffix = n;
        }
    }
    if (best < 0) return -1;
    size_t id_len = len - best_suffix;
    if (id_len > RULE_ID_MAX || 5 + id_len + 1 + strlen(PARAMS[best]) + 1 > size) return -1;
    memcpy(key, "rule.", 6);
    for (size_t i = 0; i < id_len; i++) {
        char c = id[i];
        key[5 + i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    snprintf(key + 5 + id_len, size - 5 - id_len, ".%s", PARAMS[best]);
    return 0;
}

static void dump_fixed(const rule_instance_t *inst, FILE *out) {
    const fixed_params_t *f = &inst->fixed;
    char a[DECIMAL_TEXT_MAX], b[DECIMAL_TEXT_MAX];
    const char *id = inst->id;
    switch (inst->type) {
    case RULE_AMOUNT_JUMP:
        decimal_format(f->jump_threshold, a, sizeof(a));
        fprintf(out, "rule.%s.threshold=%s\nrule.%s.direction=%s\n", id, a, id,
                f->jump_direction == JUMP_BOTH ? "both" : "up");
        break;
    case RULE_CUMULATIVE_LIMIT:
        decimal_format(f->cumulative_limit, a, sizeof(a));
        fprintf(out, "rule.%s.limit=%s\n", id, a);
        break;
    case RULE_SMALL_THEN_LARGE:
        decimal_format(f->small_amount, a, sizeof(a));
        decimal_format(f->large_amount, b, sizeof(b));
        fprintf(out, "rule.%s.small=%s\nrule.%s.large=%s\nrule.%s.window.ms=%lld\n", id, a, id,
                b, id, (long long)f->small_window_ms);
        break;
    case RULE_COUNT_AVERAGE:
        fprintf(out, "rule.%s.count=%lld\n", id, (long long)f->average_count);
        break;
    case RULE_VELOCITY:
        fprintf(out, "rule.%s.max.count=%lld\nrule.%s.window.ms=%lld\n", id,
                (long long)f->velocity_max_count, id, (long long)f->velocity_window_ms);
        break;
    }
}

void rule_instances_dump(const rule_set_t *rules, FILE *out) {
    for (uint32_t i = 0; i < rules->instance_count; i++) {
        const rule_instance_t *inst = &rules->instances[i];
        const char *id = inst->id;
        fprintf(out, "rule.%s.type=%s\nrule.%s.state=%s\n", id,
                inst->type >= 0 ? rule_name((rule_id_t)inst->type) : "", id,
                inst->paused ? "paused" : "active");
        if (inst->type != RULE_AGGREGATE) {
            dump_fixed(inst, out);
            continue;
        }
        const aggregate_rule_t *g = &inst->aggregate;
        char limit[DECIMAL_TEXT_MAX];
        decimal_format(g->limit, limit, sizeof(limit));
        fprintf(out,
                "rule.%s.function=%s\nrule.%s.operator=%s\nrule.%s.limit=%s\n"
                "rule.%s.window.ms=%lld\nrule.%s.max.events=%lld\nrule.%s.cooldown.ms=%lld\n",
                id, aggregate_function_name(g->function), id, aggregate_operator_name(g->op), id,
                limit, id, (long long)g->window_ms, id, (long long)g->max_events, id,
                (long long)g->cooldown_ms);
    }
}

static int add_instance(cJSON *list, const char *id, int type, const char *state,
                        const fixed_params_t *fixed, const aggregate_rule_t *g,
                        const char *origin) {
    cJSON *item = cJSON_CreateObject();
    if (!item) return -1;
    cJSON_AddItemToArray(list, item);
    return cJSON_AddStringToObject(item, "id", id) &&
                   cJSON_AddStringToObject(item, "type", rule_name((rule_id_t)type)) &&
                   cJSON_AddStringToObject(item, "state", state) &&
                   alert_add_params(item, type, fixed, g) == 0 &&
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
        if (add_instance(list, rule_name((rule_id_t)i), i, state, &r->builtin, NULL,
                         r->origin[i]) != 0)
            goto done;
    }
    for (uint32_t i = 0; i < r->instance_count; i++) {
        const rule_instance_t *inst = &r->instances[i];
        if (add_instance(list, inst->id, inst->type, inst->paused ? "paused" : "active",
                         &inst->fixed, &inst->aggregate, inst->origin) != 0)
            goto done;
    }
    text = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return text;
}
