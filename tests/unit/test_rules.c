#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "rule_control.h"
#include "rules.h"

#define D(x) ((decimal_t)(x) * DECIMAL_SCALE)
/* A payment in order at time ms. */
#define AT(ms) (&(rule_time_t){.at_ms = (ms), .latest_ms = (ms)})

/* ---- amount_jump ---- */

START_TEST(test_jump_of_exactly_the_threshold_fires) {
    decimal_t diff = 0;
    ck_assert(rule_amount_jump_fires(true, D(0), D(10000), D(10000), JUMP_UP, &diff));
    ck_assert_int_eq(diff, D(10000));
}
END_TEST

START_TEST(test_jump_just_below_the_threshold_does_not_fire) {
    decimal_t diff = 0;
    ck_assert(!rule_amount_jump_fires(true, D(0), D(10000) - 1, D(10000), JUMP_UP, &diff));
}
END_TEST

START_TEST(test_first_payment_never_fires) {
    decimal_t diff = 0;
    ck_assert(!rule_amount_jump_fires(false, 0, D(1000000), D(10000), JUMP_BOTH, &diff));
}
END_TEST

START_TEST(test_decrease_fires_only_in_both_directions) {
    decimal_t diff = 0;
    ck_assert(!rule_amount_jump_fires(true, D(18000), D(8000), D(10000), JUMP_UP, &diff));
    ck_assert_int_eq(diff, D(-10000));
    ck_assert(rule_amount_jump_fires(true, D(18000), D(8000), D(10000), JUMP_BOTH, &diff));
    ck_assert_int_eq(diff, D(-10000));
    ck_assert(!rule_amount_jump_fires(true, D(18000), D(8000) + 1, D(10000), JUMP_BOTH, &diff));
}
END_TEST

START_TEST(test_seed_sequence_gives_the_two_expected_alerts) {
    struct { int user; long amount; } seed[] = {{1, 5000}, {2, 2000}, {1, 7000}, {2, 8000},
                                                {1, 110000}, {2, 3000}, {2, 120000}};
    decimal_t prev[3] = {0}, cum[3] = {0};
    bool seen[3] = {false};
    int alerts = 0;
    for (int i = 0; i < 7; i++) {
        int u = seed[i].user;
        decimal_t diff;
        if (rule_amount_jump_fires(seen[u], prev[u], D(seed[i].amount), D(10000), JUMP_UP,
                                   &diff)) {
            alerts++;
            ck_assert(i == 4 || i == 6);
            ck_assert_int_eq(diff, i == 4 ? D(103000) : D(117000));
        }
        prev[u] = D(seed[i].amount);
        cum[u] += D(seed[i].amount);
        seen[u] = true;
    }
    ck_assert_int_eq(alerts, 2);
    ck_assert_int_eq(cum[1], D(122000));
    ck_assert_int_eq(cum[2], D(133000));
}
END_TEST

/* ---- cumulative_limit ---- */

START_TEST(test_cumulative_crossing_exactly_at_the_limit_fires_once) {
    rule_state_t st = {0};
    ck_assert(!rule_cumulative_limit_fires(&st, D(1000) - 1, D(1000)));
    ck_assert(rule_cumulative_limit_fires(&st, D(1000), D(1000)));
    ck_assert_int_eq(st.cumulative_alerted, D(1000));
    ck_assert(!rule_cumulative_limit_fires(&st, D(1000), D(1000)));
    ck_assert(!rule_cumulative_limit_fires(&st, D(5000), D(1000)));
}
END_TEST

START_TEST(test_cumulative_new_limit_fires_again_and_disabling_forgets) {
    rule_state_t st = {0};
    rule_set_t rules = {0};
    ck_assert(rule_cumulative_limit_fires(&st, D(1500), D(1000)));
    ck_assert(!rule_cumulative_limit_fires(&st, D(1600), D(2000)));
    ck_assert(rule_cumulative_limit_fires(&st, D(2000), D(2000)));
    ck_assert(rule_state_prune(&st, &rules)); /* cumulative_limit disabled */
    ck_assert_int_eq(st.cumulative_alerted, 0);
    ck_assert(!rule_state_prune(&st, &rules));
}
END_TEST

/* ---- small_then_large ---- */

static rule_set_t walkthrough_rules(void) {
    rule_set_t r = {0};
    r.enabled[RULE_SMALL_THEN_LARGE] = true;
    r.builtin.small_amount = D(1);
    r.builtin.large_amount = D(500);
    r.builtin.small_window_ms = 60000;
    return r;
}

START_TEST(test_small_then_large_within_the_window_fires) {
    rule_set_t r = walkthrough_rules();
    rule_state_t st = {0};
    int64_t elapsed = -1;
    ck_assert(!rule_small_then_large_fires(&st, D(1) - 1, AT(1000), &r.builtin, &elapsed));
    ck_assert(rule_small_then_large_fires(&st, D(500) + 1, AT(1000 + 60000), &r.builtin, &elapsed));
    ck_assert_int_eq(elapsed, 60000); /* the window's last millisecond is inside */
    ck_assert_int_eq(st.small_at_ms, 0);
    ck_assert(!rule_small_then_large_fires(&st, D(900), AT(1000 + 60001), &r.builtin, &elapsed));
}
END_TEST

START_TEST(test_small_then_large_edges_are_strict) {
    rule_set_t r = walkthrough_rules();
    rule_state_t st = {0};
    int64_t elapsed;
    ck_assert(!rule_small_then_large_fires(&st, D(1), AT(1000), &r.builtin, &elapsed)); /* 1.00 not small */
    ck_assert(!rule_small_then_large_fires(&st, D(600), AT(1001), &r.builtin, &elapsed));
    ck_assert(!rule_small_then_large_fires(&st, D(0), AT(2000), &r.builtin, &elapsed));
    ck_assert(!rule_small_then_large_fires(&st, D(500), AT(2001), &r.builtin, &elapsed)); /* not large */
}
END_TEST

START_TEST(test_small_then_large_after_the_window_does_not_fire) {
    rule_set_t r = walkthrough_rules();
    rule_state_t st = {0};
    int64_t elapsed;
    ck_assert(!rule_small_then_large_fires(&st, 5000, AT(1000), &r.builtin, &elapsed)); /* 0.5 */
    ck_assert(!rule_small_then_large_fires(&st, D(501), AT(1000 + 60001), &r.builtin, &elapsed));
}
END_TEST

START_TEST(test_small_then_large_is_broken_by_a_payment_in_between) {
    rule_set_t r = walkthrough_rules();
    rule_state_t st = {0};
    int64_t elapsed;
    ck_assert(!rule_small_then_large_fires(&st, 5000, AT(1000), &r.builtin, &elapsed));
    ck_assert(!rule_small_then_large_fires(&st, D(20), AT(1001), &r.builtin, &elapsed));
    ck_assert(!rule_small_then_large_fires(&st, D(501), AT(1002), &r.builtin, &elapsed));
    /* a second small one restarts the pattern from itself */
    ck_assert(!rule_small_then_large_fires(&st, 5000, AT(2000), &r.builtin, &elapsed));
    ck_assert(!rule_small_then_large_fires(&st, 100, AT(70000), &r.builtin, &elapsed));
    ck_assert(rule_small_then_large_fires(&st, D(501), AT(70000 + 60000), &r.builtin, &elapsed));
}
END_TEST

/* ---- count_average ---- */

START_TEST(test_count_average_matches_the_seed) {
    long user2[] = {2000, 8000, 3000, 120000};
    long want[] = {0, 5000, 0, 61500};
    rule_state_t st = {0};
    for (int i = 0; i < 4; i++) {
        int64_t avg = -1, n = 0;
        decimal_t sum = 0;
        bool fired = rule_count_average_fires(&st, D(user2[i]), 2, &avg, &sum, &n);
        ck_assert_int_eq(fired, want[i] != 0);
        if (fired) {
            ck_assert_int_eq(avg, want[i]);
            ck_assert_int_eq(n, 2);
        }
    }
    ck_assert_int_eq(st.average_n, 0);
    ck_assert_int_eq(st.average_sum, 0);
}
END_TEST

START_TEST(test_count_average_truncates_to_an_integer) {
    rule_state_t st = {0};
    int64_t avg = -1, n = 0;
    decimal_t sum = 0;
    ck_assert(!rule_count_average_fires(&st, D(1), 3, &avg, &sum, &n));
    ck_assert(!rule_count_average_fires(&st, D(2), 3, &avg, &sum, &n));
    ck_assert(rule_count_average_fires(&st, D(2) + 5000, 3, &avg, &sum, &n)); /* 5.5 / 3 */
    ck_assert_int_eq(avg, 1);
    ck_assert_int_eq(sum, D(5) + 5000);
    ck_assert_int_eq(n, 3);
}
END_TEST

/* ---- velocity ---- */

START_TEST(test_velocity_fires_past_max_count_within_the_window) {
    rule_state_t st = {0};
    int64_t n = 0;
    ck_assert_int_eq(rule_velocity_fires(&st, AT(1000), 3, 1000, &n), 0);
    ck_assert_int_eq(rule_velocity_fires(&st, AT(1500), 3, 1000, &n), 0);
    ck_assert_int_eq(rule_velocity_fires(&st, AT(1900), 3, 1000, &n), 0);
    ck_assert_int_eq(n, 3); /* exactly max_count: not more */
    ck_assert_int_eq(rule_velocity_fires(&st, AT(2000), 3, 1000, &n), 1); /* 1000 is 1000 ago */
    ck_assert_int_eq(n, 4);
    rule_state_free(&st);
}
END_TEST

START_TEST(test_velocity_window_edge_lets_the_oldest_go) {
    rule_state_t st = {0};
    int64_t n = 0;
    rule_velocity_fires(&st, AT(1000), 3, 1000, &n);
    rule_velocity_fires(&st, AT(1500), 3, 1000, &n);
    rule_velocity_fires(&st, AT(1900), 3, 1000, &n);
    ck_assert_int_eq(rule_velocity_fires(&st, AT(2001), 3, 1000, &n), 0);
    ck_assert_int_eq(n, 3);
    rule_state_free(&st);
}
END_TEST

START_TEST(test_velocity_state_stays_bounded) {
    rule_state_t st = {0};
    int64_t n = 0;
    int fired = 0;
    for (int i = 0; i < 100000; i++) fired += rule_velocity_fires(&st, AT(1000 + i), 5, 60000, &n);
    ck_assert_int_le(st.velocity_len, 5);
    ck_assert_int_le(st.velocity_cap, 5);
    ck_assert_int_eq(fired, 100000 - 5);
    rule_set_t rules = {0};
    rules.enabled[RULE_VELOCITY] = true;
    rules.builtin.velocity_max_count = 2;
    ck_assert(rule_state_prune(&st, &rules)); /* down to twice max.count: the slack's room */
    ck_assert_int_eq(st.velocity_len, 4);
    ck_assert_int_eq(st.velocity_ms[3], 1000 + 99999); /* the newest are kept */
    ck_assert_int_eq(rule_velocity_fires(&st, AT(1000 + 100000), 2, 60000, &n), 1);
    ck_assert_int_eq(st.velocity_len, 2); /* and then max.count */
    rules.enabled[RULE_VELOCITY] = false;
    ck_assert(rule_state_prune(&st, &rules));
    ck_assert_ptr_null(st.velocity_ms);
}
END_TEST

/* ---- event time: out of order within the slack, late past it ---- */

/* A payment of a user whose latest time is latest, with slack. */
#define EV(ms, latest, slack) \
    (&(rule_time_t){.at_ms = (ms), .latest_ms = (latest), .slack_ms = (slack)})

START_TEST(test_velocity_places_an_out_of_order_payment_in_its_window) {
    rule_state_t st = {0};
    int64_t n = 0;
    /* max 2 in 1000 ms; the user's clock reaches 3000, slack 2000. */
    ck_assert_int_eq(rule_velocity_fires(&st, EV(1000, 1000, 2000), 2, 1000, &n), 0);
    ck_assert_int_eq(rule_velocity_fires(&st, EV(3000, 3000, 2000), 2, 1000, &n), 0);
    ck_assert_int_eq(rule_velocity_fires(&st, EV(1200, 3000, 2000), 2, 1000, &n), 0);
    ck_assert_int_eq(n, 2); /* 1000 and 1200: 3000 is after it */
    ck_assert_int_eq(rule_velocity_fires(&st, EV(1400, 3000, 2000), 2, 1000, &n), 1);
    ck_assert_int_eq(n, 3); /* 1000, 1200, 1400 lie in [400, 1400] */
    ck_assert_int_eq(rule_velocity_fires(&st, EV(3100, 3100, 2000), 2, 1000, &n), 0);
    ck_assert_int_eq(n, 2); /* [2100, 3100]: 3000 and 3100 only */
    for (uint16_t i = 1; i < st.velocity_len; i++)
        ck_assert_int_le(st.velocity_ms[i - 1], st.velocity_ms[i]); /* kept sorted */
    rule_state_free(&st);
}
END_TEST

START_TEST(test_velocity_window_edges_are_inclusive_in_event_time) {
    rule_state_t st = {0};
    int64_t n = 0;
    /* Out of order: 5000 is in, then 4000 lands exactly 1000 before it. */
    ck_assert_int_eq(rule_velocity_fires(&st, EV(3000, 3000, 1000), 1, 1000, &n), 0);
    ck_assert_int_eq(rule_velocity_fires(&st, EV(5000, 5000, 1000), 1, 1000, &n), 0);
    ck_assert_int_eq(rule_velocity_fires(&st, EV(4000, 5000, 1000), 1, 1000, &n), 1);
    ck_assert_int_eq(n, 2); /* [3000, 4000] holds 3000 and 4000 itself, both edges in */
    ck_assert_int_eq(rule_velocity_fires(&st, EV(5001, 5001, 1000), 1, 1000, &n), 1);
    ck_assert_int_eq(n, 2); /* [4001, 5001]: 5000 and itself; 4000 is just out */
    rule_state_free(&st);
}
END_TEST

START_TEST(test_late_payment_takes_no_part_in_window_rules) {
    rule_set_t r = {0};
    rule_state_t st = {0};
    rule_hit_t hits[RULE_HITS_MAX];
    uint64_t dropped = 0;
    r.enabled[RULE_AMOUNT_JUMP] = r.enabled[RULE_VELOCITY] = r.enabled[RULE_SMALL_THEN_LARGE] = true;
    r.builtin.jump_threshold = D(100);
    r.builtin.velocity_max_count = 1;
    r.builtin.velocity_window_ms = 60000;
    r.builtin.small_amount = D(1);
    r.builtin.large_amount = D(500);
    r.builtin.small_window_ms = 60000;
    ck_assert_int_eq(rules_evaluate(&r, &st, false, 0, 5000, 5000, EV(10000, 10000, 0), hits, &dropped), 0);
    rule_time_t late = {.at_ms = 9000, .latest_ms = 10000, .late = true};
    /* A large jump, within the velocity window, after a small payment: only
     * amount_jump, which has no window, sees it. */
    int n = rules_evaluate(&r, &st, true, 5000, D(1000), D(1000) + 5000, &late, hits, &dropped);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(hits[0].rule, RULE_AMOUNT_JUMP);
    ck_assert_int_eq(st.velocity_len, 1); /* not recorded */
    ck_assert_int_eq(st.small_at_ms, 10000); /* the pattern waits for the next one */
    n = rules_evaluate(&r, &st, true, D(1000), D(600), D(1600) + 5000, EV(10500, 10500, 0), hits, &dropped);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(hits[0].rule, RULE_SMALL_THEN_LARGE);
    ck_assert_int_eq(hits[0].elapsed_ms, 500);
    ck_assert_int_eq(hits[1].rule, RULE_VELOCITY);
    rule_state_free(&st);
}
END_TEST

START_TEST(test_small_then_large_out_of_order_neither_completes_nor_breaks) {
    rule_set_t r = {0};
    rule_state_t st = {0};
    int64_t elapsed = 0;
    r.builtin.small_amount = D(1);
    r.builtin.large_amount = D(500);
    r.builtin.small_window_ms = 60000;
    ck_assert(!rule_small_then_large_fires(&st, 5000, EV(2000, 2000, 5000), &r.builtin, &elapsed));
    /* Older than the small payment: it did not come after it. */
    ck_assert(!rule_small_then_large_fires(&st, D(900), EV(1500, 2000, 5000), &r.builtin, &elapsed));
    ck_assert_int_eq(st.small_at_ms, 2000);
    ck_assert(rule_small_then_large_fires(&st, D(900), EV(62000, 62000, 5000), &r.builtin, &elapsed));
    ck_assert_int_eq(elapsed, 60000); /* the window's edge, in event time */
    rule_state_free(&st);
}
END_TEST

/* A ring written under other settings (a larger slack, a larger
 * max.count) and loaded as it is: longer than this payment's bound, with no
 * spare room. */
START_TEST(test_velocity_ring_longer_than_its_bound_is_trimmed_not_overrun) {
    rule_state_t st = {0};
    int64_t n = 0;
    st.velocity_ms = malloc(15 * sizeof(*st.velocity_ms));
    ck_assert_ptr_nonnull(st.velocity_ms);
    for (int i = 0; i < 15; i++) st.velocity_ms[i] = 1000 + i;
    st.velocity_len = st.velocity_cap = 15;
    ck_assert_int_eq(rule_velocity_fires(&st, AT(1015), 10, 60000, &n), 1);
    ck_assert_int_eq(n, 16); /* every time of the ring is in the window */
    ck_assert_int_eq(st.velocity_len, 10);
    ck_assert_int_eq(st.velocity_ms[9], 1015); /* the newest are kept */
    rule_state_free(&st);
}
END_TEST

/* ---- all together ---- */

START_TEST(test_evaluate_runs_enabled_rules_and_forgets_disabled_ones) {
    config_t *cfg = config_new();
    rule_set_t r = cfg->rules;
    rule_state_t st = {0};
    rule_hit_t hits[RULE_HITS_MAX];
    uint64_t dropped = 0;
    r.enabled[RULE_CUMULATIVE_LIMIT] = true;
    r.builtin.cumulative_limit = D(100);
    r.enabled[RULE_VELOCITY] = true;
    r.builtin.velocity_max_count = 1;
    ck_assert_int_eq(rules_evaluate(&r, &st, false, 0, D(50), D(50), AT(1000), hits, &dropped), 0);
    int n = rules_evaluate(&r, &st, true, D(50), D(20000), D(20050), AT(1001), hits, &dropped);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(hits[0].rule, RULE_AMOUNT_JUMP);
    ck_assert_int_eq(hits[0].diff, D(19950));
    ck_assert_int_eq(hits[1].rule, RULE_CUMULATIVE_LIMIT);
    ck_assert_int_eq(hits[2].rule, RULE_VELOCITY);
    ck_assert_int_eq(hits[2].in_window, 2);
    r.enabled[RULE_VELOCITY] = false;
    r.enabled[RULE_CUMULATIVE_LIMIT] = false;
    ck_assert_int_eq(rules_evaluate(&r, &st, true, D(20000), D(1), D(20051), AT(1002), hits, &dropped), 0);
    ck_assert_int_eq(st.cumulative_alerted, 0);
    ck_assert_ptr_null(st.velocity_ms);
    config_destroy(cfg);
}
END_TEST

/* ---- control-topic updates ---- */

static int accept_update(rule_overrides_t *ov, const config_t *cfg, const char *key, const char *value,
                  rule_set_t *out, char *errstr) {
    static int64_t offset;
    char changed[RULE_ID_MAX + 1];
    rule_record_at_t at = {.topic = "rules", .partition = 0, .offset = offset++};
    return rule_overrides_accept(ov, cfg, &cfg->rules, key, key ? strlen(key) : 0, value,
                                 value ? strlen(value) : 0, &at, out, changed, errstr, 256);
}

START_TEST(test_control_update_changes_only_its_rule_and_tombstone_reverts) {
    config_t *cfg = config_new();
    rule_overrides_t ov = {0};
    rule_set_t r;
    char errstr[256];
    ck_assert_int_eq(accept_update(&ov, cfg, "amount_jump",
                            "{\"threshold\": 5000.5, \"direction\": \"both\"}", &r, errstr), 0);
    ck_assert_int_eq(r.builtin.jump_threshold, D(5000) + 5000);
    ck_assert_int_eq(r.builtin.jump_direction, JUMP_BOTH);
    ck_assert_int_eq(accept_update(&ov, cfg, NULL,
                            "{\"rule\": \"velocity\", \"enabled\": true, \"max_count\": 3, "
                            "\"window.ms\": 1000}", &r, errstr), 0);
    ck_assert(r.enabled[RULE_VELOCITY]);
    ck_assert_int_eq(r.builtin.velocity_max_count, 3);
    ck_assert_int_eq(r.builtin.velocity_window_ms, 1000);
    ck_assert_int_eq(r.builtin.jump_threshold, D(5000) + 5000); /* the earlier update holds */
    ck_assert_int_eq(accept_update(&ov, cfg, "amount_jump", NULL, &r, errstr), 0); /* tombstone */
    ck_assert_int_eq(r.builtin.jump_threshold, D(10000));
    ck_assert(r.enabled[RULE_VELOCITY]);
    /* a new base (SIGHUP) gets the kept updates on top */
    rule_set_t base = cfg->rules, out;
    base.builtin.velocity_window_ms = 5;
    base.builtin.jump_threshold = D(7);
    ck_assert_int_eq(rule_overrides_apply(&ov, &base, &out, errstr, sizeof(errstr)), 0);
    ck_assert_int_eq(out.builtin.velocity_window_ms, 1000);
    ck_assert_int_eq(out.builtin.jump_threshold, D(7));
    rule_overrides_clear(&ov);
    config_destroy(cfg);
}
END_TEST

START_TEST(test_control_rejects_bad_updates_and_keeps_the_rules) {
    config_t *cfg = config_new();
    rule_overrides_t ov = {0};
    rule_set_t r;
    memset(&r, 0x5a, sizeof(r));
    rule_set_t untouched = r;
    char errstr[256];
    const char *bad[][2] = {
        {"no_such_rule", "{\"enabled\": true}"},
        {"amount_jump", "{\"threshold\": \"abc\"}"},
        {"amount_jump", "{\"threshold\": -5}"},
        {"amount_jump", "{\"direction\": \"sideways\"}"},
        {"amount_jump", "{\"no_such_setting\": 1}"},
        {"amount_jump", "[1, 2]"},
        {"amount_jump", "{\"threshold\": 1e300}"},
        {"amount_jump", "{\"rule\": \"velocity\"}"},
        {"velocity", "{\"max.count\": 1001}"},
        {"count_average", "{\"enabled\": true}"}, /* no averages.topic */
        {NULL, "{\"enabled\": true}"},
        {"amount_jump", "{not json"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errstr[0] = '\0';
        ck_assert_msg(accept_update(&ov, cfg, bad[i][0], bad[i][1], &r, errstr) == -1, "accepted %s",
                      bad[i][1]);
        ck_assert_msg(errstr[0] != '\0', "no reason for %s", bad[i][1]);
    }
    ck_assert_int_eq(memcmp(&r, &untouched, sizeof(r)), 0);
    ck_assert_uint_eq(ov.count, 0);
    config_destroy(cfg);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("amount_jump");
    tcase_add_test(tc, test_jump_of_exactly_the_threshold_fires);
    tcase_add_test(tc, test_jump_just_below_the_threshold_does_not_fire);
    tcase_add_test(tc, test_first_payment_never_fires);
    tcase_add_test(tc, test_decrease_fires_only_in_both_directions);
    tcase_add_test(tc, test_seed_sequence_gives_the_two_expected_alerts);
    suite_add_tcase(s, tc);
    tc = tcase_create("cumulative_limit");
    tcase_add_test(tc, test_cumulative_crossing_exactly_at_the_limit_fires_once);
    tcase_add_test(tc, test_cumulative_new_limit_fires_again_and_disabling_forgets);
    suite_add_tcase(s, tc);
    tc = tcase_create("small_then_large");
    tcase_add_test(tc, test_small_then_large_within_the_window_fires);
    tcase_add_test(tc, test_small_then_large_edges_are_strict);
    tcase_add_test(tc, test_small_then_large_after_the_window_does_not_fire);
    tcase_add_test(tc, test_small_then_large_is_broken_by_a_payment_in_between);
    suite_add_tcase(s, tc);
    tc = tcase_create("count_average");
    tcase_add_test(tc, test_count_average_matches_the_seed);
    tcase_add_test(tc, test_count_average_truncates_to_an_integer);
    suite_add_tcase(s, tc);
    tc = tcase_create("velocity");
    tcase_add_test(tc, test_velocity_fires_past_max_count_within_the_window);
    tcase_add_test(tc, test_velocity_window_edge_lets_the_oldest_go);
    tcase_add_test(tc, test_velocity_state_stays_bounded);
    suite_add_tcase(s, tc);
    tc = tcase_create("event_time");
    tcase_add_test(tc, test_velocity_places_an_out_of_order_payment_in_its_window);
    tcase_add_test(tc, test_velocity_window_edges_are_inclusive_in_event_time);
    tcase_add_test(tc, test_late_payment_takes_no_part_in_window_rules);
    tcase_add_test(tc, test_small_then_large_out_of_order_neither_completes_nor_breaks);
    tcase_add_test(tc, test_velocity_ring_longer_than_its_bound_is_trimmed_not_overrun);
    suite_add_tcase(s, tc);
    tc = tcase_create("evaluate");
    tcase_add_test(tc, test_evaluate_runs_enabled_rules_and_forgets_disabled_ones);
    suite_add_tcase(s, tc);
    tc = tcase_create("control");
    tcase_add_test(tc, test_control_update_changes_only_its_rule_and_tombstone_reverts);
    tcase_add_test(tc, test_control_rejects_bad_updates_and_keeps_the_rules);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
