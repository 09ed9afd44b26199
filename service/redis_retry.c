/* redis_retry: backoff around a Redis step, on the injectable clock. */
#include "redis_retry.h"

#include "clock.h"
#include "log.h"

int redis_retry_run(const redis_retry_t *r, redis_step_fn step, void *arg, const char *what) {
    char errstr[512];
    int64_t backoff = REDIS_RETRY_BACKOFF_START_MS;
    int failing = 0;
    for (;;) {
        atomic_store(r->heartbeat_ms, clock_now_ms());
        if (step(arg, errstr, sizeof(errstr)) == 0) {
            atomic_store(&r->metrics->redis_up, 1);
            if (failing) {
                log_info("redis", "%s succeeded again; resuming consumption", what);
                kafka_io_pause_all(r->io, 0);
            }
            return 0;
        }
        atomic_store(&r->metrics->redis_up, 0);
        if (!failing) {
            log_error("redis", "%s failed: %s; consumption paused, retrying with backoff "
                      "up to %d ms, nothing is committed meanwhile", what, errstr,
                      REDIS_RETRY_BACKOFF_MAX_MS);
            kafka_io_pause_all(r->io, 1);
        }
        failing = 1;
        if (r->stop && *r->stop) {
            log_error("redis", "stop requested while Redis is unavailable: the batch is not "
                      "persisted and will be processed again after restart");
            return -1;
        }
        clock_sleep_ms(backoff);
        backoff = backoff * 2 > REDIS_RETRY_BACKOFF_MAX_MS ? REDIS_RETRY_BACKOFF_MAX_MS
                                                           : backoff * 2;
    }
}
