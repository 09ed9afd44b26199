#include "alert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>


size_t alert_id_format(const char *topic, int32_t partition, int64_t offset,
                       const char *rule, char *buf, size_t bufsize) {
    int n = snprintf(buf, bufsize, "%s/%d/%lld/%s", topic, (int)partition,
                     (long long)offset, rule);
    if (n < 0) return 0;
    return (size_t)n < bufsize ? (size_t)n : bufsize - 1;
}

/* cJSON stores numbers as doubles; raw text keeps big decimals exact. */
static cJSON *add_decimal(cJSON *obj, const char *name, decimal_t value) {
    char text[DECIMAL_TEXT_MAX];
    decimal_format(value, text, sizeof(text));
    return cJSON_AddRawToObject(obj, name, text);
}

static cJSON *add_int(cJSON *obj, const char *name, int64_t value) {
    char text[24];
    snprintf(text, sizeof(text), "%lld", (long long)value);
    return cJSON_AddRawToObject(obj, name, text);
}

/* Every record says which version of its schema (schemas/) it follows. */
static int add_schema_version(cJSON *root) {
    return add_int(root, "schema_version", OUTPUT_SCHEMA_VERSION) ? 0 : -1;
}

static int add_source(cJSON *root, const char *topic, int32_t partition, int64_t offset) {
    cJSON *source = cJSON_AddObjectToObject(root, "source");
    return source && cJSON_AddStringToObject(source, "topic", topic) &&
                   add_int(source, "partition", partition) && add_int(source, "offset", offset)
               ? 0
               : -1;
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

int alert_add_params(cJSON *obj, int type, const fixed_params_t *r, const aggregate_rule_t *g) {
    if (type == RULE_AGGREGATE ? !g : !r) return -1; /* no parameters to write */
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
        return add_aggregate_params(params, g);
    }
    return -1;
}

/* What only this rule's alerts carry. */
static int add_details(cJSON *root, const alert_t *a) {
    switch (rule_id(a->rule)) {
    case RULE_AMOUNT_JUMP:
        return add_decimal(root, "diff", a->diff) && add_decimal(root, "threshold", a->threshold)
                   ? 0
                   : -1;
    case RULE_CUMULATIVE_LIMIT:
        return add_decimal(root, "limit", a->limit) ? 0 : -1;
    case RULE_SMALL_THEN_LARGE:
        return add_int(root, "elapsed_ms", a->elapsed_ms) ? 0 : -1;
    case RULE_VELOCITY:
        return add_int(root, "payments_in_window", a->payments_in_window) ? 0 : -1;
    case RULE_AGGREGATE:
        return add_decimal(root, "value", a->aggregate_value) &&
                       add_int(root, "payments_in_window", a->payments_in_window)
                   ? 0
                   : -1;
    default:
        return 0;
    }
}

char *alert_encode_new(const alert_t *a) {
    char id[ALERT_ID_MAX];
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;

    const char *instance = a->rule_id ? a->rule_id : a->rule;
    alert_id_format(a->source_topic, a->source_partition, a->source_offset, instance, id,
                    sizeof(id));
    if (!cJSON_AddStringToObject(root, "alert_id", id) || add_schema_version(root) != 0 ||
        !cJSON_AddStringToObject(root, "rule", a->rule) ||
        !cJSON_AddStringToObject(root, "rule_id", instance) ||
        !cJSON_AddStringToObject(root, "user_id", a->user_id) ||
        !add_decimal(root, "amount", a->amount) ||
        !add_decimal(root, "previous_amount", a->previous_amount) ||
        add_details(root, a) != 0 ||
        !add_decimal(root, "cumulative_amount", a->cumulative_amount) ||
        !add_int(root, "event_count", a->event_count))
        goto done;
    if ((a->fixed || a->aggregate) && rule_id(a->rule) >= 0 &&
        alert_add_params(root, rule_id(a->rule), a->fixed, a->aggregate) != 0)
        goto done;
    if (add_source(root, a->source_topic, a->source_partition, a->source_offset) != 0)
        goto done;
    if (a->event_id && a->event_id[0] && !cJSON_AddStringToObject(root, "event_id", a->event_id))
        goto done;
    if (!add_int(root, "event_time", a->event_time_ms) ||
        (a->clock && !cJSON_AddStringToObject(root, "clock", a->clock)) ||
        !add_int(root, "detected_at", a->detected_at_ms))
        goto done;
    text = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return text;
}

char *average_encode_new(const average_event_t *e) {
    char id[ALERT_ID_MAX];
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    const char *instance = e->rule_id ? e->rule_id : rule_name(RULE_COUNT_AVERAGE);
    alert_id_format(e->source_topic, e->source_partition, e->source_offset, instance, id,
                    sizeof(id));
    if (cJSON_AddStringToObject(root, "average_id", id) && add_schema_version(root) == 0 &&
        cJSON_AddStringToObject(root, "rule_id", instance) &&
        cJSON_AddStringToObject(root, "user_id", e->user_id) &&
        add_int(root, "average", e->average) && add_decimal(root, "sum", e->sum) &&
        add_int(root, "count", e->count) &&
        (!e->fixed || alert_add_params(root, RULE_COUNT_AVERAGE, e->fixed, NULL) == 0) &&
        add_source(root, e->source_topic, e->source_partition, e->source_offset) == 0 &&
        add_int(root, "detected_at", e->detected_at_ms))
        text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

char *late_payment_encode_new(const late_payment_t *l) {
    char id[ALERT_ID_MAX];
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    alert_id_format(l->source_topic, l->source_partition, l->source_offset, "late", id,
                    sizeof(id));
    if (cJSON_AddStringToObject(root, "late_id", id) && add_schema_version(root) == 0 &&
        cJSON_AddStringToObject(root, "reason", "late") &&
        cJSON_AddStringToObject(root, "user_id", l->user_id) &&
        add_decimal(root, "amount", l->amount) &&
        (!l->event_id || !l->event_id[0] ||
         cJSON_AddStringToObject(root, "event_id", l->event_id)) &&
        add_int(root, "event_time", l->event_time_ms) &&
        add_int(root, "user_event_time", l->user_event_time_ms) &&
        add_int(root, "lateness_ms", l->lateness_ms) &&
        add_int(root, "max_out_of_orderness_ms", l->max_out_of_orderness_ms) &&
        add_source(root, l->source_topic, l->source_partition, l->source_offset) == 0 &&
        add_int(root, "detected_at", l->detected_at_ms))
        text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

char *totals_erased_encode_new(const char *user_id) {
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    if (root && cJSON_AddStringToObject(root, "user_id", user_id))
        text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

char *totals_encode_new(const char *user_id, decimal_t cumulative_amount, int64_t event_count) {
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    if (cJSON_AddStringToObject(root, "user_id", user_id) && add_schema_version(root) == 0 &&
        add_decimal(root, "cumulative_amount", cumulative_amount) &&
        add_int(root, "event_count", event_count))
        text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}
