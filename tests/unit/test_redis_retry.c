/* redis_retry on an injected clock: the backoff doubles from 100 ms to its
 * 5 s cap, the heartbeat follows the clock, and a stop gives up, all
 * without sleeping. */
#include <check.h>

#include "check_main.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "kafka_io.h"
#include "metrics.h"
#include "redis_retry.h"

typedef struct fake_clock {
    int64_t now_ms;
    int64_t slept[32];
    int sleeps;
} fake_clock_t;

static int64_t fake_now(void *ctx) { return ((fake_clock_t *)ctx)->now_ms; }

static void fake_sleep(void *ctx, int64_t ms) {
    fake_clock_t *c = ctx;
    if (c->sleeps < 32) c->slept[c->sleeps++] = ms;
    c->now_ms += ms;
}

typedef struct flaky {
    int failures_left;
    int calls;
    int stop_on_call; /* 0: never */
    volatile sig_atomic_t *stop;
    int64_t heartbeat_seen[32];
    atomic_int_least64_t *heartbeat;
} flaky_t;

static int flaky_step(void *arg, char *errstr, size_t errstr_size) {
    flaky_t *f = arg;
    if (f->calls < 32) f->heartbeat_seen[f->calls] = atomic_load(f->heartbeat);
    f->calls++;
    if (f->stop_on_call && f->calls == f->stop_on_call) *f->stop = 1;
    if (f->failures_left > 0) {
        f->failures_left--;
        snprintf(errstr, errstr_size, "connection refused");
        return -1;
    }
    return 0;
}

static fake_clock_t fake;
static clock_source_t source = {.now_ms = fake_now, .monotonic_ms = fake_now,
                                .sleep_ms = fake_sleep, .ctx = &fake};
static config_t *cfg;
static kafka_io_t *io;
static metrics_t *metrics;
static atomic_int_least64_t heartbeat;
static volatile sig_atomic_t stop;
static redis_retry_t retry;

static void setup(void) {
    char errstr[512];
    memset(&fake, 0, sizeof(fake));
    fake.now_ms = 1700000000000;
    clock_inject(&source);
    cfg = config_new();
    ck_assert_ptr_nonnull(cfg);
    /* A consumer that is never subscribed: pausing it is a no-op. */
    ck_assert_int_eq(config_set(cfg, "kafka.bootstrap.servers", "127.0.0.1:1", errstr,
                                sizeof(errstr)), 0);
    kafka_io_callbacks_t callbacks = {0};
    io = kafka_io_new(cfg, &callbacks, errstr, sizeof(errstr));
    ck_assert_msg(io != NULL, "%s", errstr);
    metrics = metrics_new();
    atomic_init(&heartbeat, 0);
    stop = 0;
    retry = (redis_retry_t){.io = io, .metrics = metrics, .stop = &stop,
                            .heartbeat_ms = &heartbeat};
}

static void teardown(void) {
    kafka_io_destroy(io);
    metrics_destroy(metrics);
    config_destroy(cfg);
    clock_inject(NULL);
}

START_TEST(test_backoff_doubles_to_its_cap_on_the_injected_clock) {
    flaky_t f = {.failures_left = 8, .heartbeat = &heartbeat};
    int64_t started = fake.now_ms;
    ck_assert_int_eq(redis_retry_run(&retry, flaky_step, &f, "test step"), 0);
    static const int64_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
    ck_assert_int_eq(fake.sleeps, 8);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(fake.slept[i], want[i]);
    ck_assert_int_eq(f.calls, 9);
    /* Each attempt beats the heartbeat at the clock's time first. */
    int64_t at = started;
    for (int i = 0; i < 9; i++) {
        ck_assert_int_eq(f.heartbeat_seen[i], at);
        if (i < 8) at += want[i];
    }
    ck_assert_int_eq(fake.now_ms, started + 16300);
    ck_assert_int_eq(atomic_load(&metrics->redis_up), 1);
}
END_TEST

START_TEST(test_a_step_that_succeeds_at_once_never_waits) {
    flaky_t f = {.heartbeat = &heartbeat};
    ck_assert_int_eq(redis_retry_run(&retry, flaky_step, &f, "test step"), 0);
    ck_assert_int_eq(fake.sleeps, 0);
    ck_assert_int_eq(atomic_load(&metrics->redis_up), 1);
}
END_TEST

START_TEST(test_a_stop_during_an_outage_gives_up_without_waiting_again) {
    flaky_t f = {.failures_left = 100, .stop_on_call = 3, .stop = &stop, .heartbeat = &heartbeat};
    ck_assert_int_eq(redis_retry_run(&retry, flaky_step, &f, "test step"), -1);
    ck_assert_int_eq(f.calls, 3);
    ck_assert_int_eq(fake.sleeps, 2);
    ck_assert_int_eq(atomic_load(&metrics->redis_up), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("redis_retry");
    TCase *tc = tcase_create("backoff");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_backoff_doubles_to_its_cap_on_the_injected_clock);
    tcase_add_test(tc, test_a_step_that_succeeds_at_once_never_waits);
    tcase_add_test(tc, test_a_stop_during_an_outage_gives_up_without_waiting_again);
    suite_add_tcase(s, tc);
    return run_suite(s, CK_FORK, CK_NORMAL);
}
