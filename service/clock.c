/* clock: the system's clocks, or an injected source. */
#include "clock.h"

#include <stddef.h>
#include <time.h>

static int64_t read_clock(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t system_now_ms(void *ctx) {
    (void)ctx;
    return read_clock(CLOCK_REALTIME);
}

static int64_t system_monotonic_ms(void *ctx) {
    (void)ctx;
    return read_clock(CLOCK_MONOTONIC);
}

static void system_sleep_ms(void *ctx, int64_t ms) {
    (void)ctx;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static const clock_source_t SYSTEM = {system_now_ms, system_monotonic_ms, system_sleep_ms, NULL};
static const clock_source_t *source = &SYSTEM;

int64_t clock_now_ms(void) { return source->now_ms(source->ctx); }
int64_t clock_monotonic_ms(void) { return source->monotonic_ms(source->ctx); }
void clock_sleep_ms(int64_t ms) { source->sleep_ms(source->ctx, ms); }
void clock_inject(const clock_source_t *injected) { source = injected ? injected : &SYSTEM; }
