/* step_flight: a mutex and a condition variable between the consumer
 * thread and one worker. The state says who may touch the store and the
 * built steps: the worker from LAUNCHED until it sets RAN, the consumer
 * thread otherwise. */
#include "step_flight.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "errstr.h"
#include "log.h"
#include "store_step.h"

typedef enum { FLIGHT_IDLE, FLIGHT_LAUNCHED, FLIGHT_RAN } flight_state_t;

struct step_flight {
    store_t *store;
    store_steps_t *steps;
    pthread_t worker;
    bool worker_started;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    flight_state_t state; /* under lock */
    bool quit;            /* under lock */
    int run_rc;           /* the worker's run: set with RAN */
    char run_error[512];
    atomic_uint_least64_t commands, errors, redirects, map_reads;
};

static void copy_counters(step_flight_t *f) {
    atomic_store(&f->commands, store_commands_total(f->store));
    atomic_store(&f->errors, store_errors_total(f->store));
    atomic_store(&f->redirects, store_redirects_total(f->store));
    atomic_store(&f->map_reads, store_map_reads_total(f->store));
}

static void *work(void *arg) {
    step_flight_t *f = arg;
    pthread_mutex_lock(&f->lock);
    for (;;) {
        while (f->state != FLIGHT_LAUNCHED && !f->quit) pthread_cond_wait(&f->changed, &f->lock);
        if (f->state != FLIGHT_LAUNCHED) break; /* quit with nothing in flight */
        pthread_mutex_unlock(&f->lock);
        char error[512] = "";
        int rc = store_steps_run(f->steps, f->store, error, sizeof(error));
        copy_counters(f);
        pthread_mutex_lock(&f->lock);
        f->run_rc = rc;
        memcpy(f->run_error, error, sizeof(error));
        f->state = FLIGHT_RAN;
        pthread_cond_broadcast(&f->changed);
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

step_flight_t *step_flight_new(const store_options_t *opts, char *errstr, size_t errstr_size) {
    step_flight_t *f = calloc(1, sizeof(*f));
    if (!f) {
        errstr_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->changed, NULL);
    f->store = store_new(opts, errstr, errstr_size);
    if (!f->store) {
        step_flight_destroy(f);
        return NULL;
    }
    f->steps = store_steps_new(opts->key_prefix, opts->topic);
    if (!f->steps) {
        errstr_set(errstr, errstr_size, "out of memory");
        step_flight_destroy(f);
        return NULL;
    }
    if (pthread_create(&f->worker, NULL, work, f) != 0) {
        errstr_set(errstr, errstr_size, "cannot start the Redis step thread");
        step_flight_destroy(f);
        return NULL;
    }
    f->worker_started = true;
    return f;
}

void step_flight_destroy(step_flight_t *f) {
    if (!f) return;
    if (f->worker_started) {
        pthread_mutex_lock(&f->lock);
        f->quit = true;
        pthread_cond_broadcast(&f->changed);
        pthread_mutex_unlock(&f->lock);
        pthread_join(f->worker, NULL); /* after a run in flight, if any */
    }
    store_steps_destroy(f->steps);
    store_destroy(f->store);
    pthread_cond_destroy(&f->changed);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

int step_flight_launch(step_flight_t *f, const store_step_t *steps, size_t count,
                       int64_t ttl_ms, char *errstr, size_t errstr_size) {
    if (step_flight_busy(f)) {
        errstr_set(errstr, errstr_size, "a Redis step is still in flight");
        return -1;
    }
    if (store_steps_build(f->steps, steps, count, ttl_ms, errstr, errstr_size) != 0) return -1;
    pthread_mutex_lock(&f->lock);
    f->state = FLIGHT_LAUNCHED;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
    return 0;
}

bool step_flight_busy(step_flight_t *f) {
    pthread_mutex_lock(&f->lock);
    bool busy = f->state != FLIGHT_IDLE;
    pthread_mutex_unlock(&f->lock);
    return busy;
}

bool step_flight_ready(step_flight_t *f) {
    pthread_mutex_lock(&f->lock);
    bool ready = f->state == FLIGHT_RAN;
    pthread_mutex_unlock(&f->lock);
    return ready;
}

static int run_again(void *arg, char *errstr, size_t errstr_size) {
    step_flight_t *f = arg;
    int rc = store_steps_run(f->steps, f->store, errstr, errstr_size);
    copy_counters(f);
    return rc;
}

int step_flight_land(step_flight_t *f, const redis_retry_t *retry) {
    pthread_mutex_lock(&f->lock);
    if (f->state == FLIGHT_IDLE) {
        pthread_mutex_unlock(&f->lock);
        return 0;
    }
    while (f->state != FLIGHT_RAN) pthread_cond_wait(&f->changed, &f->lock);
    int rc = f->run_rc;
    pthread_mutex_unlock(&f->lock);
    if (rc != 0) {
        /* The worker is idle now: the store and the steps are this
         * thread's until the next launch. */
        /* Warned, not debugged: a failure that the next attempt mends
         * would otherwise leave no trace at the default level. */
        log_warn("redis", "the batch's Redis step failed (%s); sending it again, nothing is "
                 "committed until it lands", f->run_error);
        rc = redis_retry_run(retry, run_again, f, "writing user state");
    }
    pthread_mutex_lock(&f->lock);
    f->state = FLIGHT_IDLE;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

const store_step_t *step_flight_outcome(const step_flight_t *f, size_t *count) {
    return store_steps_outcome(f->steps, count);
}

uint64_t step_flight_commands_total(const step_flight_t *f) { return atomic_load(&f->commands); }
uint64_t step_flight_errors_total(const step_flight_t *f) { return atomic_load(&f->errors); }
uint64_t step_flight_redirects_total(const step_flight_t *f) { return atomic_load(&f->redirects); }
uint64_t step_flight_map_reads_total(const step_flight_t *f) { return atomic_load(&f->map_reads); }
