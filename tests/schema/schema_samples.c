/* schema_samples: one record of every shape the service's encoders write,
 * as "<schema>\t<key>\t<json>" lines for validate_records.py: each rule's
 * alert (with and without an event_id, in both clocks), an average, a late
 * payment, a running total, and the dead-letter headers of every reason,
 * with and without trace context. Because the schemas refuse unknown
 * fields, a field added to an encoder but not to its schema fails the
 * test that pipes this program into the validator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "alert.h"
#include "config.h"
#include "dead_letter.h"
#include "rules.h"
#include "trace_context.h"

static decimal_t dec(const char *text) {
    decimal_t d;
    if (decimal_parse(text, strlen(text), &d) != DECIMAL_OK) abort();
    return d;
}

static void emit(const char *schema, const char *key, char *json) {
    if (!json) {
        fprintf(stderr, "an encoder returned NULL for %s\n", schema);
        exit(1);
    }
    printf("%s\t%s\t%s\n", schema, key, json);
    free(json);
}

static void alerts(const rule_set_t *rules) {
    static const rule_id_t fired[] = {RULE_AMOUNT_JUMP, RULE_CUMULATIVE_LIMIT,
                                      RULE_SMALL_THEN_LARGE, RULE_VELOCITY};
    for (size_t i = 0; i < sizeof(fired) / sizeof(fired[0]); i++)
        for (int with_id = 0; with_id < 2; with_id++) {
            alert_t a = {
                .rule = rule_name(fired[i]), .fixed = &rules->builtin, .user_id = "user1",
                .amount = dec("110000.25"), .previous_amount = dec("7000"),
                .diff = dec("103000.25"), .threshold = rules->builtin.jump_threshold,
                .limit = rules->builtin.cumulative_limit, .elapsed_ms = 1200,
                .payments_in_window = 11, .cumulative_amount = dec("122000.25"),
                .event_count = 3, .source_topic = "payments", .source_partition = 1,
                .source_offset = 4, .event_id = with_id ? "e-17" : "",
                .event_time_ms = 1700000000000, .clock = with_id ? "event" : "processing",
                .detected_at_ms = 1700000000012,
            };
            emit("alert", "user1", alert_encode_new(&a));
        }
    /* A named instance's alert: of each aggregate function, and of fixed
     * types beside their built-in instances. */
    for (uint32_t i = 0; i < rules->instance_count; i++) {
        const rule_instance_t *inst = &rules->instances[i];
        if (inst->type == RULE_COUNT_AVERAGE) continue;
        alert_t a = {
            .rule = rule_name((rule_id_t)inst->type), .rule_id = inst->id,
            .fixed = inst->type == RULE_AGGREGATE ? NULL : &inst->fixed,
            .aggregate = inst->type == RULE_AGGREGATE ? &inst->aggregate : NULL,
            .diff = dec("-2000"), .threshold = inst->fixed.jump_threshold,
            .limit = inst->fixed.cumulative_limit, .elapsed_ms = 10,
            .aggregate_value = dec("5000.1235"), .user_id = "user1",
            .amount = dec("2500"), .previous_amount = dec("2500.247"),
            .payments_in_window = 2, .cumulative_amount = dec("5000.247"), .event_count = 2,
            .source_topic = "payments", .source_partition = 1, .source_offset = 5,
            .event_id = i % 2 ? "e-18" : "", .event_time_ms = 1700000000000,
            .clock = "event", .detected_at_ms = 1700000000012,
        };
        emit("alert", "user1", alert_encode_new(&a));
    }
}

static void other_outputs(const rule_set_t *rules) {
    average_event_t avg = {.fixed = &rules->builtin, .user_id = "user1", .average = 6000,
                           .sum = dec("12000"), .count = 2, .source_topic = "payments",
                           .source_partition = 0, .source_offset = 9,
                           .detected_at_ms = 1700000000012};
    emit("average", "user1", average_encode_new(&avg));
    const rule_instance_t *avg10 = rules_find_instance(rules, "avg10");
    average_event_t named = avg;
    named.rule_id = avg10->id;
    named.fixed = &avg10->fixed;
    emit("average", "user1", average_encode_new(&named));
    for (int with_id = 0; with_id < 2; with_id++) {
        late_payment_t late = {.user_id = "user2", .amount = dec("12.5"),
                               .event_id = with_id ? "e-9" : NULL,
                               .event_time_ms = 1700000000000,
                               .user_event_time_ms = 1700000090000, .lateness_ms = 90000,
                               .max_out_of_orderness_ms = 5000, .source_topic = "payments",
                               .source_partition = 2, .source_offset = 77,
                               .detected_at_ms = 1700000100000};
        emit("late-payment", "user2", late_payment_encode_new(&late));
    }
    emit("total", "user1", totals_encode_new("user1", dec("122000.25"), 3));
}

static void dead_letter_headers(void) {
    trace_context_t trace;
    const char *parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const char *state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
    if (!trace_context_set(&trace, parent, strlen(parent), state, strlen(state))) abort();
    for (dead_letter_reason_t r = DECODE_OK + 1; r < DEAD_LETTER_REASON_COUNT; r++) {
        kafka_msg_t m = {.topic = "payments", .partition = 3, .offset = 41};
        dead_letter_headers_t h;
        const char *const *pairs = dead_letter_headers_build(
            &h, &m, r, "a reason, with \"quotes\"", r % 2 ? &trace : NULL);
        cJSON *obj = cJSON_CreateObject();
        for (size_t i = 0; obj && pairs[i]; i += 2)
            if (!cJSON_AddStringToObject(obj, pairs[i], pairs[i + 1])) abort();
        emit("dead-letter-headers", "", cJSON_PrintUnformatted(obj));
        cJSON_Delete(obj);
    }
}

/* One aggregate instance per function, with every operator among them. */
static int add_aggregates(config_t *cfg) {
    static const char *const settings[][2] = {
        {"rule.sum_10m.type", "aggregate"}, {"rule.sum_10m.limit", "5000"},
        {"rule.sum_10m.window.ms", "600000"}, {"rule.sum_10m.cooldown.ms", "60000"},
        {"rule.n-5.type", "aggregate"}, {"rule.n-5.function", "count"},
        {"rule.n-5.operator", ">="}, {"rule.n-5.limit", "2"},
        {"rule.avg.type", "aggregate"}, {"rule.avg.function", "avg"},
        {"rule.avg.operator", "!="}, {"rule.avg.limit", "0.5"},
        {"rule.low.type", "aggregate"}, {"rule.low.function", "min"},
        {"rule.low.operator", "<"}, {"rule.low.limit", "-1"}, {"rule.low.state", "paused"},
        {"rule.high.type", "aggregate"}, {"rule.high.function", "max"},
        {"rule.high.operator", "<="}, {"rule.high.limit", "10"},
        {"rule.eq.type", "aggregate"}, {"rule.eq.operator", "=="}, {"rule.eq.limit", "0"},
        {"rule.eq.max.events", "10000"}, {"rule.eq.window.ms", "0"},
        {"rule.big_jump.type", "amount_jump"}, {"rule.big_jump.threshold", "50000"},
        {"rule.big_jump.direction", "both"}, {"rule.total_1m.type", "cumulative_limit"},
        {"rule.total_1m.limit", "1000000"}, {"rule.stl_5s.type", "small_then_large"},
        {"rule.stl_5s.window.ms", "5000"}, {"rule.fast.type", "velocity"},
        {"rule.fast.max.count", "3"}, {"rule.avg10.type", "count_average"},
        {"rule.avg10.count", "10"},
    };
    char errstr[256];
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (config_set(cfg, settings[i][0], settings[i][1], errstr, sizeof(errstr)) != 0) {
            fprintf(stderr, "%s\n", errstr);
            return -1;
        }
    return 0;
}

int main(void) {
    config_t *cfg = config_new();
    if (!cfg || add_aggregates(cfg) != 0) return 1;
    alerts(&cfg->rules);
    other_outputs(&cfg->rules);
    dead_letter_headers();
    config_destroy(cfg);
    return 0;
}
