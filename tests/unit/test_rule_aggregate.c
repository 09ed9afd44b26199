#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "rule_aggregate.h"
#include "rule_control.h"
#include "rule_instances.h"
#include "rules.h"
#include "state_cache.h"
#include "user_hash.h"

#include <hiredis.h>

#define D(x) ((decimal_t)(x) * DECIMAL_SCALE)

static aggregate_rule_t rule_of(int function, int op, decimal_t limit, int64_t window_ms) {
    aggregate_rule_t g = {.function = function, .op = op, .limit = limit,
                          .window_ms = window_ms, .max_events = 1000};
    return g;
}

static int set(config_t *cfg, const char *key, const char *value) {
    char errstr[256];
    return config_set(cfg, key, value, errstr, sizeof(errstr));
}

/* Observes a payment in order at at_ms; returns whether it fired. */
static int pay(const aggregate_rule_t *g, aggregate_state_t *st, decimal_t amount, int64_t at_ms,
               aggregate_outcome_t *out) {
    aggregate_outcome_t ignored;
    return aggregate_observe(g, false, st, amount, at_ms, at_ms, out ? out : &ignored);
}

START_TEST(test_every_operator_at_its_edge) {
    struct { int op; decimal_t value; int holds; } cases[] = {
        {AGG_GT, D(5000), 0}, {AGG_GT, D(5000) + 1, 1},
        {AGG_GE, D(5000), 1}, {AGG_GE, D(5000) - 1, 0},
        {AGG_LT, D(5000), 0}, {AGG_LT, D(5000) - 1, 1},
        {AGG_LE, D(5000), 1}, {AGG_LE, D(5000) + 1, 0},
        {AGG_EQ, D(5000), 1}, {AGG_EQ, D(5000) + 1, 0},
        {AGG_NE, D(5000), 0}, {AGG_NE, D(5000) - 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(aggregate_compare(cases[i].op, cases[i].value, D(5000)) == cases[i].holds,
                      "case %zu", i);
}
END_TEST

START_TEST(test_every_function_over_the_window) {
    const decimal_t amounts[] = {D(10), D(3) + 5000, D(7)}; /* 10, 3.5, 7 */
    const decimal_t want[AGG_FUNCTION_COUNT] = {
        [AGG_SUM] = D(20) + 5000, [AGG_COUNT] = D(3), [AGG_AVG] = 68333, /* 6.8333 */
        [AGG_MIN] = D(3) + 5000, [AGG_MAX] = D(10)};
    for (int f = 0; f < AGG_FUNCTION_COUNT; f++) {
        aggregate_rule_t g = rule_of(f, AGG_GE, D(1000000), 60000);
        aggregate_state_t st = {0};
        aggregate_outcome_t out;
        for (int i = 0; i < 3; i++) ck_assert_int_eq(pay(&g, &st, amounts[i], 1000 + i, &out), 0);
        ck_assert_msg(out.value == want[f], "%s: %lld", aggregate_function_name(f),
                      (long long)out.value);
        ck_assert_int_eq(out.in_window, 3);
        aggregate_state_free(&st);
    }
}
END_TEST

START_TEST(test_avg_rounds_half_to_even_at_four_places) {
    /* Sums in ten-thousandths over 2 payments: x.5 units round to even. */
    struct { decimal_t a, b, avg; } cases[] = {
        {1, 0, 0},   /* 0.00005 -> 0.0000 (0 is even) */
        {3, 0, 2},   /* 0.00015 -> 0.0002 */
        {5, 0, 2},   /* 0.00025 -> 0.0002 */
        {7, 0, 4},   /* 0.00035 -> 0.0004 */
        {D(1), 1, 5000}, /* 1.0001 / 2 = 0.50005 -> 0.5000 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        aggregate_rule_t g = rule_of(AGG_AVG, AGG_GT, D(1000000), 60000);
        aggregate_state_t st = {0};
        aggregate_outcome_t out;
        pay(&g, &st, cases[i].a, 1000, NULL);
        pay(&g, &st, cases[i].b, 1001, &out);
        ck_assert_msg(out.value == cases[i].avg, "case %zu: %lld", i, (long long)out.value);
        aggregate_state_free(&st);
    }
    /* Over three: 2 / 3 = 0.66666... -> 0.6667 (above half rounds up). */
    aggregate_rule_t g = rule_of(AGG_AVG, AGG_GT, D(1000000), 60000);
    aggregate_state_t st = {0};
    aggregate_outcome_t out;
    pay(&g, &st, D(1), 1, NULL);
    pay(&g, &st, 0, 2, NULL);
    pay(&g, &st, D(1), 3, &out);
    ck_assert_int_eq(out.value, 6667);
    aggregate_state_free(&st);
}
END_TEST

START_TEST(test_window_edges_are_inclusive) {
    aggregate_rule_t g = rule_of(AGG_SUM, AGG_GT, D(100), 1000);
    aggregate_state_t st = {0};
    aggregate_outcome_t out;
    ck_assert_int_eq(pay(&g, &st, D(60), 10000, &out), 0);
    /* exactly window.ms later: the first is still in [t - 1000, t] */
    ck_assert_int_eq(pay(&g, &st, D(41), 11000, &out), 1);
    ck_assert_int_eq(out.in_window, 2);
    ck_assert_int_eq(out.value, D(101));
    /* one ms more: the first has left */
    ck_assert_int_eq(pay(&g, &st, D(1), 11001, &out), 0);
    ck_assert_int_eq(out.in_window, 2);
    ck_assert_int_eq(out.value, D(42));
    ck_assert_uint_eq(st.len, 2); /* what no window can reach is gone */
    aggregate_state_free(&st);
}
END_TEST

START_TEST(test_out_of_order_payment_counts_only_what_precedes_it) {
    aggregate_rule_t g = rule_of(AGG_COUNT, AGG_GE, D(100), 1000);
    aggregate_state_t st = {0};
    aggregate_outcome_t out;
    /* settled 5000 before: the slack keeps room for older payments */
    ck_assert_int_eq(aggregate_observe(&g, false, &st, D(1), 10000, 5000, &out), 0);
    ck_assert_int_eq(aggregate_observe(&g, false, &st, D(2), 12000, 7000, &out), 0);
    ck_assert_int_eq(aggregate_observe(&g, false, &st, D(3), 9500, 7000, &out), 0);
    ck_assert_int_eq(out.in_window, 1); /* [8500, 9500]: itself only */
    ck_assert_int_eq(aggregate_observe(&g, false, &st, D(4), 10500, 7000, &out), 0);
    ck_assert_int_eq(out.in_window, 3); /* 9500, 10000 and itself; 12000 is after it */
    ck_assert_int_eq(st.at_ms[0], 9500);
    ck_assert_int_eq(st.at_ms[3], 12000);
    aggregate_state_free(&st);
}
END_TEST

START_TEST(test_max_events_drops_the_oldest_and_says_so) {
    aggregate_rule_t g = rule_of(AGG_SUM, AGG_GT, D(1000000), 60000);
    g.max_events = 3;
    aggregate_state_t st = {0};
    aggregate_outcome_t out;
    for (int i = 1; i <= 3; i++) pay(&g, &st, D(i), i, &out);
    ck_assert_uint_eq(out.dropped, 0);
    pay(&g, &st, D(4), 4, &out);
    ck_assert_uint_eq(out.dropped, 1);
    ck_assert_int_eq(out.value, D(9)); /* 2 + 3 + 4 */
    ck_assert_int_eq(out.in_window, 3);
    /* a state kept under a larger bound is trimmed to the new one at once */
    g.max_events = 1;
    pay(&g, &st, D(5), 5, &out);
    ck_assert_uint_eq(out.dropped, 3);
    ck_assert_int_eq(out.value, D(5));
    ck_assert_uint_eq(st.len, 1);
    aggregate_state_free(&st);
}
END_TEST

START_TEST(test_cooldown_suppresses_repeats_within_it_only) {
    aggregate_rule_t g = rule_of(AGG_SUM, AGG_GT, D(100), 600000);
    g.cooldown_ms = 1000;
    aggregate_state_t st = {0};
    ck_assert_int_eq(pay(&g, &st, D(101), 10000, NULL), 1);
    ck_assert_int_eq(pay(&g, &st, D(1), 10999, NULL), 0); /* within the cooldown */
    ck_assert_int_eq(pay(&g, &st, D(1), 11000, NULL), 1); /* exactly cooldown.ms later */
    ck_assert_int_eq(pay(&g, &st, D(1), 11500, NULL), 0);
    /* without a cooldown every payment past the limit alerts */
    g.cooldown_ms = 0;
    ck_assert_int_eq(pay(&g, &st, D(1), 11600, NULL), 1);
    ck_assert_int_eq(pay(&g, &st, D(1), 11700, NULL), 1);
    ck_assert_int_eq(st.alerted_ms, 0);
    aggregate_state_free(&st);
}
END_TEST

START_TEST(test_paused_keeps_its_state_and_raises_nothing) {
    aggregate_rule_t g = rule_of(AGG_SUM, AGG_GT, D(100), 60000);
    aggregate_state_t st = {0};
    aggregate_outcome_t out;
    ck_assert_int_eq(aggregate_observe(&g, true, &st, D(60), 1000, 1000, &out), 0);
    ck_assert_int_eq(aggregate_observe(&g, true, &st, D(60), 2000, 2000, &out), 0);
    ck_assert_int_eq(out.value, D(120)); /* past the limit, but paused */
    ck_assert_int_eq(pay(&g, &st, D(1), 3000, &out), 1); /* resumed: the window is whole */
    ck_assert_int_eq(out.value, D(121));
    aggregate_state_free(&st);
}
END_TEST

/* The user hash's inst field, written by user_hash_add_fields() and read
 * back by user_hash_parse() through replies built here. */
static char *inst_field_of(cache_entry_t *e, size_t *len) {
    redis_argv_t b = {0};
    ck_assert_int_eq(user_hash_add_fields(&b, e, false), 0);
    char *text = NULL;
    for (size_t i = 0; i + 1 < b.count; i++)
        if (b.lens[i] == 4 && memcmp(b.arena + b.offsets[i], "inst", 4) == 0) {
            *len = b.lens[i + 1];
            text = malloc(*len + 1);
            memcpy(text, b.arena + b.offsets[i + 1], *len);
            text[*len] = '\0';
        }
    redis_argv_free(&b);
    return text;
}

static int parse_inst_field(const char *text, size_t len, stored_user_t *out) {
    redisReply count_name = {.type = REDIS_REPLY_STRING, .str = "count", .len = 5};
    redisReply count = {.type = REDIS_REPLY_STRING, .str = "2", .len = 1};
    redisReply inst_name = {.type = REDIS_REPLY_STRING, .str = "inst", .len = 4};
    redisReply inst = {.type = REDIS_REPLY_STRING, .str = (char *)text, .len = len};
    redisReply *fields[] = {&count_name, &count, &inst_name, &inst};
    redisReply hash = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = fields};
    redisReply pttl = {.type = REDIS_REPLY_INTEGER, .integer = -1};
    return user_hash_parse(&hash, &pttl, out);
}

START_TEST(test_instance_states_round_trip_through_the_user_hash) {
    config_t *cfg = config_new();
    ck_assert_int_eq(set(cfg, "rule.a-1.type", "aggregate"), 0);
    ck_assert_int_eq(set(cfg, "rule.a-1.limit", "5"), 0);
    ck_assert_int_eq(set(cfg, "rule.a-1.cooldown.ms", "100"), 0);
    ck_assert_int_eq(set(cfg, "rule.fast.type", "velocity"), 0);
    ck_assert_int_eq(set(cfg, "rule.fast.max.count", "1"), 0);
    ck_assert_int_eq(set(cfg, "rule.big.type", "cumulative_limit"), 0);
    ck_assert_int_eq(set(cfg, "rule.big.limit", "7"), 0);
    ck_assert_int_eq(set(cfg, "rule.avg3.type", "count_average"), 0);
    ck_assert_int_eq(set(cfg, "rule.avg3.count", "3"), 0);
    cache_entry_t *e = calloc(1, sizeof(*e) + 2);
    rule_state_t *rs = calloc(1, sizeof(*rs));
    e->state.rules = rs;
    rule_hit_t hits[RULE_HITS_MAX];
    uint64_t dropped = 0;
    rule_time_t t1 = {.at_ms = 1000, .latest_ms = 1000}, t2 = {.at_ms = 1001, .latest_ms = 1001};
    rules_evaluate(&cfg->rules, rs, false, 0, D(3) + 1234, D(3) + 1234, &t1, hits, &dropped);
    int n = rules_evaluate(&cfg->rules, rs, true, D(3) + 1234, D(4), D(7) + 1234, &t2, hits,
                           &dropped);
    ck_assert_int_eq(n, 3); /* a-1 (7.1234 > 5), fast (2 > 1), big (>= 7) */
    size_t len;
    char *text = inst_field_of(e, &len);
    /* big remembered nothing after the first payment: it comes last */
    ck_assert_str_eq(text, "a-1#0#aggregate#1001#1000:3.1234,1001:4|fast#0#velocity#####1001"
                           "|avg3#0#count_average###2#7.1234#|big#0#cumulative_limit#7####");
    stored_user_t back;
    ck_assert_int_eq(parse_inst_field(text, len, &back), 0);
    rule_state_t *b = back.state.rules;
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->instance_len, 4);
    ck_assert_str_eq(b->instances[0].id, "a-1");
    ck_assert_int_eq(b->instances[0].type, RULE_AGGREGATE);
    ck_assert_int_eq(b->instances[0].aggregate.alerted_ms, 1001);
    ck_assert_uint_eq(b->instances[0].aggregate.len, 2);
    ck_assert_int_eq(b->instances[0].aggregate.amounts[0], D(3) + 1234);
    ck_assert_int_eq(b->instances[1].fixed->velocity_len, 1); /* max.count 1 keeps one */
    ck_assert_int_eq(b->instances[2].fixed->average_n, 2);
    ck_assert_int_eq(b->instances[2].fixed->average_sum, D(7) + 1234);
    ck_assert_int_eq(b->instances[3].fixed->cumulative_alerted, D(7));
    /* the same text again from what was read */
    cache_entry_t *again = calloc(1, sizeof(*again) + 2);
    again->state.rules = b;
    size_t len2;
    char *text2 = inst_field_of(again, &len2);
    ck_assert_str_eq(text2, text);
    const char *bad[] = {"a#0#aggregate#0#1:2,", "a#0#aggregate#0#1:x", "a#0#aggregate#0#-1:2",
                         "a b#0#aggregate#0#1:2", "a#0#aggregate#0#1:2|", "a#0#aggregate#0",
                         "#0#aggregate#0#1:2", "a#0#aggregate#0#1:2.12345",
                         "a#0#aggregate#0#1:-2", "a#0#median#0#1:2", "v#0#velocity####1,x",
                         "v#0#velocity###", "v#0#velocity######", "c#0#cumulative_limit#-7####"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        stored_user_t ignored;
        ck_assert_msg(parse_inst_field(bad[i], strlen(bad[i]), &ignored) == -1, "accepted %s",
                      bad[i]);
    }
    free(text);
    free(text2);
    user_state_reset(&e->state);
    user_state_reset(&again->state);
    free(e);
    free(again);
    config_destroy(cfg);
}
END_TEST

/* ---- instances as settings ---- */

START_TEST(test_instances_from_the_config_and_their_checks) {
    config_t *cfg = config_new();
    char errstr[512];
    ck_assert_int_eq(set(cfg, "rule.sum_10m.limit", "5000"), 0); /* any order */
    ck_assert_int_eq(config_validate(cfg, errstr, sizeof(errstr)), -1); /* no type yet */
    ck_assert_ptr_nonnull(strstr(errstr, "rule.sum_10m.type"));
    ck_assert_int_eq(set(cfg, "rule.sum_10m.type", "aggregate"), 0);
    ck_assert_int_eq(set(cfg, "rule.sum_10m.window.ms", "600000"), 0);
    ck_assert_int_eq(config_validate(cfg, errstr, sizeof(errstr)), 0);
    const rule_instance_t *inst = rules_find_instance(&cfg->rules, "sum_10m");
    ck_assert_ptr_nonnull(inst);
    const aggregate_rule_t *g = &inst->aggregate;
    ck_assert_int_eq(g->function, AGG_SUM);
    ck_assert_int_eq(g->op, AGG_GT);
    ck_assert_int_eq(g->max_events, 1000);
    ck_assert_int_eq(g->window_ms, 600000);
    const char *bad[][2] = {
        {"rule.x.type", "nonsense"},
        {"rule.x.function", "median"},     {"rule.x.operator", "=>"},
        {"rule.x.limit", "1.23456"},       {"rule.x.max.events", "10001"},
        {"rule.x.max.events", "0"},        {"rule.x.window.ms", "-1"},
        {"rule.x.enabled", "true"},        {"rule.bad id.type", "aggregate"},
        {"rule.aggregate.type", "aggregate"}, {"rule.velocity.type", "aggregate"},
        {"rule.x.state", "sleeping"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(set(cfg, bad[i][0], bad[i][1]) == -1, "accepted %s=%s", bad[i][0],
                      bad[i][1]);
    ck_assert_ptr_null(rules_find_instance(&cfg->rules, "x")); /* nothing half made */
    ck_assert_int_eq(set(cfg, "rule.velocity.type", "velocity"), 0); /* names itself */
    ck_assert_int_eq(set(cfg, "rule.velocity.state", "paused"), 0);
    ck_assert_int_eq(cfg->rules.state[RULE_VELOCITY], RULE_PAUSED);
    char id[80];
    for (int i = 1; i < RULE_INSTANCES_MAX; i++) {
        snprintf(id, sizeof(id), "rule.r%d.type", i);
        ck_assert_int_eq(set(cfg, id, "aggregate"), 0);
    }
    ck_assert_int_eq(set(cfg, "rule.one_too_many.type", "aggregate"), -1);
    config_destroy(cfg);
}
END_TEST

START_TEST(test_instances_from_the_environment_remember_their_origin) {
    config_t *cfg = config_new();
    char errstr[512];
    char *env[] = {"FRAUD_RULE_BIG_SUM_TYPE=aggregate", "FRAUD_RULE_BIG_SUM_LIMIT=20000",
                   "FRAUD_RULE_BIG_SUM_WINDOW_MS=86400000", "FRAUD_RULE_BIG_SUM_MAX_EVENTS=50",
                   "FRAUD_RULE_VELOCITY_STATE=paused", NULL};
    const char *flags[] = {"rule.avg_1h.type=aggregate", "rule.avg_1h.function=avg",
                           "rule.avg_1h.limit=99.5"};
    ck_assert_int_eq(config_load_sources(cfg, NULL, env, flags, 3, errstr, sizeof(errstr)), 0);
    const rule_instance_t *g = rules_find_instance(&cfg->rules, "big_sum");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->aggregate.window_ms, 86400000);
    ck_assert_int_eq(g->aggregate.max_events, 50);
    ck_assert_str_eq(g->origin, "environment");
    ck_assert_str_eq(cfg->rules.origin[RULE_VELOCITY], "environment");
    ck_assert_str_eq(rules_find_instance(&cfg->rules, "avg_1h")->origin, "-X");
    ck_assert_str_eq(cfg->rules.origin[RULE_AMOUNT_JUMP], "");
    char *json = rules_json_new(&cfg->rules);
    ck_assert_ptr_nonnull(strstr(json, "{\"id\":\"big_sum\",\"type\":\"aggregate\",\"state\":"
                                       "\"active\",\"params\":{\"function\":\"sum\",\"operator\":"
                                       "\">\",\"limit\":20000,\"window_ms\":86400000,"
                                       "\"max_events\":50,\"cooldown_ms\":0},\"origin\":"
                                       "\"environment\"}"));
    ck_assert_ptr_nonnull(strstr(json, "{\"id\":\"velocity\",\"type\":\"velocity\",\"state\":"
                                       "\"disabled\""));
    ck_assert_ptr_nonnull(strstr(json, "\"origin\":\"default\""));
    free(json);
    config_destroy(cfg);
}
END_TEST

/* ---- instances through the control topic ---- */

static int64_t next_offset;

static int accept(rule_overrides_t *ov, const config_t *cfg, const char *key, const char *value,
                  rule_set_t *out, char *errstr) {
    char changed[RULE_ID_MAX + 1];
    rule_record_at_t at = {.topic = "rules", .partition = 0, .offset = next_offset++};
    return rule_overrides_accept(ov, cfg, &cfg->rules, key, strlen(key), value,
                                 value ? strlen(value) : 0, &at, out, changed, errstr, 512);
}

START_TEST(test_topic_creates_updates_pauses_and_deletes_an_instance) {
    config_t *cfg = config_new();
    rule_overrides_t ov = {0};
    rule_set_t r;
    char errstr[512];
    next_offset = 10;
    const char *def = "{\"type\": \"aggregate\", \"function\": \"sum\", \"operator\": \">\", "
                      "\"limit\": \"5000\", \"window_ms\": 600000}";
    ck_assert_int_eq(accept(&ov, cfg, "sum_10m", def, &r, errstr), 0);
    const rule_instance_t *g = rules_find_instance(&r, "sum_10m");
    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(g->origin, "topic rules [0] offset 10");
    int64_t born = g->incarnation;
    ck_assert_int_ne(born, 0);
    /* a record without its definition cannot stand alone on a compacted topic */
    ck_assert_int_eq(accept(&ov, cfg, "sum_10m", "{\"state\": \"paused\"}", &r, errstr), -1);
    ck_assert_ptr_nonnull(strstr(errstr, "defines it whole"));
    const char *paused = "{\"type\": \"aggregate\", \"limit\": \"5000\", \"window_ms\": 600000, "
                         "\"state\": \"paused\"}";
    ck_assert_int_eq(accept(&ov, cfg, "sum_10m", paused, &r, errstr), 0);
    g = rules_find_instance(&r, "sum_10m");
    ck_assert(g->paused);
    ck_assert_int_eq(g->incarnation, born); /* an update keeps the instance's state */
    ck_assert_str_eq(g->origin, "topic rules [0] offset 12");
    int active[RULE_TYPE_COUNT];
    rules_count_active(&r, active);
    ck_assert_int_eq(active[RULE_AGGREGATE], 0);
    ck_assert_int_eq(active[RULE_AMOUNT_JUMP], 1);
    ck_assert_int_eq(accept(&ov, cfg, "sum_10m", NULL, &r, errstr), 0); /* tombstone */
    ck_assert_ptr_null(rules_find_instance(&r, "sum_10m"));
    ck_assert_uint_eq(ov.count, 0);
    ck_assert_int_eq(accept(&ov, cfg, "sum_10m", def, &r, errstr), 0); /* created again */
    ck_assert_int_ne(rules_find_instance(&r, "sum_10m")->incarnation, born);
    ck_assert_int_eq(accept(&ov, cfg, "never_seen", NULL, &r, errstr), 0);
    ck_assert_int_eq(accept(&ov, cfg, "bad id", def, &r, errstr), -1);
    ck_assert_int_eq(accept(&ov, cfg, "x", "{\"type\": \"aggregate\"}", &r, errstr), -1);
    rule_overrides_clear(&ov);
    config_destroy(cfg);
}
END_TEST

START_TEST(test_topic_updates_a_configured_instance_and_a_tombstone_returns_it) {
    config_t *cfg = config_new();
    rule_overrides_t ov = {0};
    rule_set_t r;
    char errstr[512];
    ck_assert_int_eq(set(cfg, "rule.day.type", "aggregate"), 0);
    ck_assert_int_eq(set(cfg, "rule.day.limit", "20000"), 0);
    ck_assert_int_eq(accept(&ov, cfg, "day", "{\"state\": \"paused\"}", &r, errstr), 0);
    ck_assert(rules_find_instance(&r, "day")->paused);
    ck_assert_int_eq(rules_find_instance(&r, "day")->incarnation, 0);
    ck_assert_int_eq(accept(&ov, cfg, "day", NULL, &r, errstr), 0);
    ck_assert(!rules_find_instance(&r, "day")->paused);
    ck_assert_int_eq(rules_find_instance(&r, "day")->aggregate.limit, D(20000));
    ck_assert_int_eq(accept(&ov, cfg, "amount_jump", "{\"state\": \"paused\"}", &r, errstr), 0);
    ck_assert_int_eq(r.state[RULE_AMOUNT_JUMP], RULE_PAUSED);
    rule_overrides_clear(&ov);
    config_destroy(cfg);
}
END_TEST

/* ---- evaluation within the rule set ---- */

START_TEST(test_deleted_instance_state_goes_and_paused_fixed_rule_is_silent) {
    config_t *cfg = config_new();
    ck_assert_int_eq(set(cfg, "rule.a.type", "aggregate"), 0);
    ck_assert_int_eq(set(cfg, "rule.a.limit", "10"), 0);
    ck_assert_int_eq(set(cfg, "rule.b.type", "aggregate"), 0);
    ck_assert_int_eq(set(cfg, "rule.b.function", "count"), 0);
    ck_assert_int_eq(set(cfg, "rule.b.limit", "1"), 0);
    ck_assert_int_eq(set(cfg, "rule.amount_jump.state", "paused"), 0);
    rule_set_t r = cfg->rules;
    rule_state_t st = {0};
    rule_hit_t hits[RULE_HITS_MAX];
    uint64_t dropped = 0;
    rule_time_t t = {.at_ms = 1000, .latest_ms = 1000};
    int n = rules_evaluate(&r, &st, true, 0, D(20000), D(20000), &t, hits, &dropped);
    ck_assert_int_eq(n, 1); /* a: 20000 > 10; amount_jump paused; b: 1 is not > 1 */
    ck_assert_int_eq(hits[0].rule, RULE_AGGREGATE);
    ck_assert_int_eq(hits[0].instance, 0);
    ck_assert_int_eq(hits[0].value, D(20000));
    t.at_ms = t.latest_ms = 2000;
    n = rules_evaluate(&r, &st, true, D(20000), D(1), D(20001), &t, hits, &dropped);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(hits[1].instance, 1);
    ck_assert_int_eq(hits[1].value, D(2));
    ck_assert_uint_eq(st.instance_len, 2);
    /* b goes: its state goes at the user's next payment */
    r.instance_count = 1;
    t.at_ms = t.latest_ms = 3000;
    rules_evaluate(&r, &st, true, D(1), D(1), D(20002), &t, hits, &dropped);
    ck_assert_uint_eq(st.instance_len, 1);
    ck_assert_str_eq(st.instances[0].id, "a");
    /* a created again under the same id is another instance */
    r.instances[0].incarnation = 99;
    ck_assert(rule_state_prune(&st, &r));
    ck_assert_uint_eq(st.instance_len, 0);
    rule_state_free(&st);
    config_destroy(cfg);
}
END_TEST

START_TEST(test_named_instances_of_fixed_types_beside_the_built_in_ones) {
    config_t *cfg = config_new();
    char errstr[512];
    char *env[] = {"FRAUD_RULE_FAST_TYPE=velocity", "FRAUD_RULE_FAST_MAX_COUNT=1",
                   "FRAUD_RULE_FAST_WINDOW_MS=1000", NULL};
    const char *flags[] = {"rule.velocity.enabled=true", "rule.velocity.max.count=2",
                           "rule.big_jump.type=amount_jump", "rule.big_jump.threshold=50000",
                           "averages.topic=averages", "rule.avg3.type=count_average",
                           "rule.avg3.count=3"};
    ck_assert_int_eq(config_load_sources(cfg, NULL, env, flags, 7, errstr, sizeof(errstr)), 0);
    const rule_instance_t *fast = rules_find_instance(&cfg->rules, "fast");
    ck_assert_int_eq(fast->type, RULE_VELOCITY);
    ck_assert_int_eq(fast->fixed.velocity_max_count, 1); /* _MAX_COUNT, not _COUNT */
    ck_assert_int_eq(fast->fixed.velocity_window_ms, 1000);
    ck_assert_int_eq(rules_find_instance(&cfg->rules, "big_jump")->fixed.jump_direction,
                     JUMP_UP); /* the catalogue's default */
    rule_set_t r = cfg->rules;
    rule_state_t st = {0};
    rule_hit_t hits[RULE_HITS_MAX];
    uint64_t dropped = 0;
    /* 20000, then 80000 1 ms later: amount_jump (10000) and big_jump (50000);
     * fast: 2 payments in 1 s > 1; the built-in velocity (2 in 60 s) not yet. */
    rule_time_t t = {.at_ms = 1000, .latest_ms = 1000};
    ck_assert_int_eq(rules_evaluate(&r, &st, false, 0, D(20000), D(20000), &t, hits, &dropped),
                     0);
    t.at_ms = t.latest_ms = 1001;
    int n = rules_evaluate(&r, &st, true, D(20000), D(80000), D(100000), &t, hits, &dropped);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(hits[0].rule, RULE_AMOUNT_JUMP);
    ck_assert_int_eq(hits[0].instance, -1);
    ck_assert_int_eq(hits[1].rule, RULE_VELOCITY);
    ck_assert_int_eq(hits[1].instance, 0); /* fast: from the environment, first */
    ck_assert_int_eq(hits[1].in_window, 2);
    ck_assert_int_eq(hits[2].rule, RULE_AMOUNT_JUMP);
    ck_assert_str_eq(r.instances[hits[2].instance].id, "big_jump");
    ck_assert_int_eq(hits[2].diff, D(60000));
    /* 2.5 s later: fast's window has only this one; avg3 averages its three */
    t.at_ms = t.latest_ms = 3500;
    n = rules_evaluate(&r, &st, true, D(80000), D(5), D(100005), &t, hits, &dropped);
    ck_assert_int_eq(n, 2); /* the built-in velocity (3 > 2) and avg3 */
    ck_assert_int_eq(hits[0].rule, RULE_VELOCITY);
    ck_assert_int_eq(hits[0].instance, -1);
    ck_assert_int_eq(hits[1].rule, RULE_COUNT_AVERAGE);
    ck_assert_int_eq(hits[1].sum, D(100005));
    /* each instance keeps a state of its own: the built-in ring has 3 times */
    ck_assert_int_eq(st.velocity_len, 2); /* max.count 2 kept */
    /* fast only: big_jump never remembers anything, avg3 has just started over */
    ck_assert_uint_eq(st.instance_len, 1);
    ck_assert_str_eq(st.instances[0].id, "fast");
    rule_state_free(&st);
    /* what an instance's type has no use for, or lacks, is refused */
    const char *bad[][2] = {{"rule.fast.threshold", "5"}, {"rule.fast.window.ms", "0"},
                            {"rule.big_jump.limit", "5"}, {"rule.x.type", "cumulative_limit"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_t *c = config_new();
        ck_assert_int_eq(config_load_sources(c, NULL, env, NULL, 0, errstr, sizeof(errstr)), 0);
        ck_assert_int_eq(set(c, bad[i][0], bad[i][1]), 0); /* any order: checked as a whole */
        if (strcmp(bad[i][0], "rule.x.type") == 0)
            ck_assert_int_eq(set(c, "rule.x.limit", "-1"), 0);
        ck_assert_msg(config_validate(c, errstr, sizeof(errstr)) == -1, "accepted %s=%s",
                      bad[i][0], bad[i][1]);
        config_destroy(c);
    }
    config_t *c = config_new();
    ck_assert_int_eq(set(c, "rule.avg.type", "count_average"), 0);
    ck_assert_int_eq(config_validate(c, errstr, sizeof(errstr)), -1); /* no averages.topic */
    ck_assert_ptr_nonnull(strstr(errstr, "averages.topic"));
    ck_assert_int_eq(set(c, "rule.avg.type", "velocity"), 0);
    ck_assert_int_eq(set(c, "time.max.out.of.orderness.ms", "70000"), 0);
    ck_assert_int_eq(config_validate(c, errstr, sizeof(errstr)), -1); /* slack past its window */
    ck_assert_ptr_nonnull(strstr(errstr, "rule.avg.window.ms"));
    config_destroy(c);
    config_destroy(cfg);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rule_aggregate");
    TCase *tc = tcase_create("aggregate");
    tcase_add_test(tc, test_every_operator_at_its_edge);
    tcase_add_test(tc, test_every_function_over_the_window);
    tcase_add_test(tc, test_avg_rounds_half_to_even_at_four_places);
    tcase_add_test(tc, test_window_edges_are_inclusive);
    tcase_add_test(tc, test_out_of_order_payment_counts_only_what_precedes_it);
    tcase_add_test(tc, test_max_events_drops_the_oldest_and_says_so);
    tcase_add_test(tc, test_cooldown_suppresses_repeats_within_it_only);
    tcase_add_test(tc, test_paused_keeps_its_state_and_raises_nothing);
    tcase_add_test(tc, test_instance_states_round_trip_through_the_user_hash);
    suite_add_tcase(s, tc);
    tc = tcase_create("instances");
    tcase_add_test(tc, test_instances_from_the_config_and_their_checks);
    tcase_add_test(tc, test_instances_from_the_environment_remember_their_origin);
    tcase_add_test(tc, test_topic_creates_updates_pauses_and_deletes_an_instance);
    tcase_add_test(tc, test_topic_updates_a_configured_instance_and_a_tombstone_returns_it);
    tcase_add_test(tc, test_deleted_instance_state_goes_and_paused_fixed_rule_is_silent);
    tcase_add_test(tc, test_named_instances_of_fixed_types_beside_the_built_in_ones);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
