/* redis_retry: how the consumer thread lives through a Redis outage.
 *
 * A Redis step (a load, the atomic step, an outbox read or removal) is
 * retried with capped exponential backoff until it succeeds or a stop is
 * requested. Meanwhile consumption is paused, so nothing piles up, and
 * nothing is committed. One log line when Redis goes away and one when it
 * is back, never one per attempt. The heartbeat keeps /healthz alive while
 * the loop waits, and redis_up tells /metrics. The struct's members are
 * borrowed. */
#ifndef FRAUD_REDIS_RETRY_H
#define FRAUD_REDIS_RETRY_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>

#include "kafka_io.h"
#include "metrics.h"

#define REDIS_RETRY_BACKOFF_START_MS 100
#define REDIS_RETRY_BACKOFF_MAX_MS 5000

typedef struct redis_retry {
    kafka_io_t *io;                     /* paused while Redis is away */
    metrics_t *metrics;                 /* redis_up */
    volatile sig_atomic_t *stop;        /* gives up once it is non-zero */
    atomic_int_least64_t *heartbeat_ms; /* the loop is alive */
} redis_retry_t;

/* One attempt: 0, or -1 with a reason in errstr. */
typedef int (*redis_step_fn)(void *arg, char *errstr, size_t errstr_size);

/* Returns 0 once step succeeded, -1 when a stop was requested first. */
int redis_retry_run(const redis_retry_t *retry, redis_step_fn step, void *arg,
                    const char *what);

#endif
