#include "rule_control.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "errstr.h"
#include "kafka_io.h"
#include "log.h"

#define CONTROL_VALUE_MAX 4096
#define METADATA_TIMEOUT_MS 5000

struct rule_control {
    rd_kafka_t *reader;
    const char *topic; /* borrowed from the config */
    rule_record_fn on_record;
    void *ctx;
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

/* Assigns every partition of the topic from its beginning, and returns
 * the high watermarks to read up to. */
static rd_kafka_topic_partition_list_t *assign_whole_topic(rule_control_t *rc, char *errstr,
                                                           size_t errstr_size) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rc->reader, rc->topic, NULL);
    rd_kafka_resp_err_t err =
        rkt ? rd_kafka_metadata(rc->reader, 0, rkt, &md, METADATA_TIMEOUT_MS)
            : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (rkt) rd_kafka_topic_destroy(rkt);
    if (err) {
        errstr_set(errstr, errstr_size, "rules.topic %s: %s", rc->topic, rd_kafka_err2str(err));
        return NULL;
    }
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        errstr_set(errstr, errstr_size, "rules.topic %s: %s", rc->topic,
                   md->topic_cnt == 1 && md->topics[0].err
                       ? rd_kafka_err2str(md->topics[0].err)
                       : "no partitions (create the topic first)");
        rd_kafka_metadata_destroy(md);
        return NULL;
    }
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    rd_kafka_topic_partition_list_t *ends =
        rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t id = md->topics[0].partitions[i].id;
        int64_t low = 0, high = 0;
        rd_kafka_topic_partition_list_add(parts, rc->topic, id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_query_watermark_offsets(rc->reader, rc->topic, id, &low, &high,
                                               METADATA_TIMEOUT_MS);
        if (err) break;
        rd_kafka_topic_partition_list_add(ends, rc->topic, id)->offset = high;
    }
    rd_kafka_metadata_destroy(md);
    if (!err) err = rd_kafka_assign(rc->reader, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        errstr_set(errstr, errstr_size, "rules.topic %s: %s", rc->topic, rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(ends);
        return NULL;
    }
    return ends;
}

static int64_t monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True once every partition's position reached its end mark. The position
 * (not the last record + 1) also moves past compacted-away offsets and
 * transaction markers. */
static int caught_up(const rule_control_t *rc, const rd_kafka_topic_partition_list_t *ends) {
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(ends);
    int done = rd_kafka_position(rc->reader, pos) == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; done && i < pos->cnt; i++)
        if (ends->elems[i].offset > 0 && pos->elems[i].offset < ends->elems[i].offset)
            done = 0;
    rd_kafka_topic_partition_list_destroy(pos);
    return done;
}

static void hand_over(rule_control_t *rc, rd_kafka_message_t *m) {
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("rules", "reading %s: %s", rc->topic, rd_kafka_message_errstr(m));
    } else {
        rc->on_record(rc->ctx, m);
    }
    rd_kafka_message_destroy(m);
}

rule_control_t *rule_control_new(const config_t *cfg, rule_record_fn on_record, void *ctx,
                                 int timeout_ms, char *errstr, size_t errstr_size) {
    rule_control_t *rc = calloc(1, sizeof(*rc));
    if (!rc) {
        errstr_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    rc->topic = cfg->rules_topic;
    rc->on_record = on_record;
    rc->ctx = ctx;
    rc->reader = kafka_io_new_reader(cfg, errstr, errstr_size);
    if (!rc->reader) goto fail;
    rd_kafka_topic_partition_list_t *ends = assign_whole_topic(rc, errstr, errstr_size);
    if (!ends) goto fail;
    int64_t deadline = monotonic_ms() + timeout_ms;
    size_t records = 0;
    while (!caught_up(rc, ends)) {
        if (monotonic_ms() > deadline) {
            errstr_set(errstr, errstr_size, "rules.topic %s: not read to its end within %d ms",
                       rc->topic, timeout_ms);
            rd_kafka_topic_partition_list_destroy(ends);
            goto fail;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rc->reader, 100);
        if (!m) continue;
        records += !m->err;
        hand_over(rc, m);
    }
    log_info("rules", "read %zu rule updates from %s", records, rc->topic);
    rd_kafka_topic_partition_list_destroy(ends);
    return rc;
fail:
    rule_control_destroy(rc);
    return NULL;
}

void rule_control_poll(rule_control_t *rc) {
    rd_kafka_message_t *m;
    while ((m = rd_kafka_consumer_poll(rc->reader, 0)) != NULL) hand_over(rc, m);
}

void rule_control_destroy(rule_control_t *rc) {
    if (!rc) return;
    if (rc->reader) {
        rd_kafka_consumer_close(rc->reader);
        rd_kafka_destroy(rc->reader);
    }
    free(rc);
}
