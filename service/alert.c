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

char *alert_encode_new(const alert_t *a) {
    char id[512];
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *source = NULL;
    if (!root) return NULL;

    alert_id_format(a->source_topic, a->source_partition, a->source_offset, a->rule, id,
                    sizeof(id));
    if (!cJSON_AddStringToObject(root, "alert_id", id) ||
        !cJSON_AddStringToObject(root, "rule", a->rule) ||
        !cJSON_AddStringToObject(root, "user_id", a->user_id) ||
        !add_decimal(root, "amount", a->amount) ||
        !add_decimal(root, "previous_amount", a->previous_amount) ||
        !add_decimal(root, "diff", a->diff) || !add_decimal(root, "threshold", a->threshold) ||
        !add_decimal(root, "cumulative_amount", a->cumulative_amount) ||
        !add_int(root, "event_count", a->event_count))
        goto done;
    source = cJSON_AddObjectToObject(root, "source");
    if (!source || !cJSON_AddStringToObject(source, "topic", a->source_topic) ||
        !add_int(source, "partition", a->source_partition) ||
        !add_int(source, "offset", a->source_offset))
        goto done;
    if (a->event_id && a->event_id[0] && !cJSON_AddStringToObject(root, "event_id", a->event_id))
        goto done;
    if (!add_int(root, "event_time", a->event_time_ms) ||
        !add_int(root, "detected_at", a->detected_at_ms))
        goto done;
    text = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return text;
}
