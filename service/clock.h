/* clock: the service's one source of time.
 *
 * Every module that reads the time or waits asks this one. Wall-clock
 * milliseconds stamp alerts and decide TTL (and windows in processing time); monotonic
 * milliseconds measure durations and deadlines; sleeping waits out a
 * backoff. Tests inject their own source, so TTL, windows and backoff are
 * driven rather than slept through. The default is the system's clocks. */
#ifndef FRAUD_CLOCK_H
#define FRAUD_CLOCK_H

#include <stdint.h>

typedef struct clock_source {
    int64_t (*now_ms)(void *ctx);       /* wall clock, ms since the epoch */
    int64_t (*monotonic_ms)(void *ctx); /* never goes back */
    void (*sleep_ms)(void *ctx, int64_t ms);
    void *ctx;
} clock_source_t;

int64_t clock_now_ms(void);
int64_t clock_monotonic_ms(void);
void clock_sleep_ms(int64_t ms);

/* Replaces the source (NULL: back to the system's). Call before any thread
 * that reads the clock starts; the source is borrowed. */
void clock_inject(const clock_source_t *source);

#endif
