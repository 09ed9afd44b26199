/* step_flight: one batch's Redis step in flight on its own thread.
 *
 * The consumer thread builds a batch's steps (store_step) and launches
 * them; a worker thread sends them over the flight's own store (its own
 * connections, so the consumer's loads go on meanwhile) and waits for the
 * replies, while the consumer thread fetches, decodes and applies the next
 * batch. The consumer then waits for the outcome and, before it launches
 * anything else, settles it: a failed run is run again on the consumer
 * thread, under redis_retry, with the same bytes.
 *
 * At most one batch is in flight. The flight owns its thread, its store
 * and the built steps; while a run is in flight the consumer thread must
 * not touch them, and the functions below say when it may. */
#ifndef FRAUD_STEP_FLIGHT_H
#define FRAUD_STEP_FLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_retry.h"
#include "store_redis.h"

typedef struct step_flight step_flight_t;

/* Connects its own store and starts the worker. NULL with errstr. */
step_flight_t *step_flight_new(const store_options_t *opts, char *errstr, size_t errstr_size);

/* Waits for a run in flight, stops the worker, closes the store. */
void step_flight_destroy(step_flight_t *f);

/* Builds the steps (reading their users' cache entries, on this thread)
 * and hands them to the worker. Only when nothing is in flight. 0, or -1
 * with errstr when they cannot be built (nothing is launched). */
int step_flight_launch(step_flight_t *f, const store_step_t *steps, size_t count,
                       int64_t ttl_ms, char *errstr, size_t errstr_size);

/* True from a launch until step_flight_land() returns. */
bool step_flight_busy(step_flight_t *f);

/* True when the run in flight has finished: landing it will not wait. */
bool step_flight_ready(step_flight_t *f);

/* Waits for the run in flight; runs it again under retry while it fails.
 * Then the outcome, one per launched step in order, stays readable until
 * the next launch. 0, or -1 when a stop was requested first. */
int step_flight_land(step_flight_t *f, const redis_retry_t *retry);
const store_step_t *step_flight_outcome(const step_flight_t *f, size_t *count);

/* The flight store's counters, as of its last run. */
uint64_t step_flight_commands_total(const step_flight_t *f);
uint64_t step_flight_errors_total(const step_flight_t *f);
uint64_t step_flight_redirects_total(const step_flight_t *f);
uint64_t step_flight_map_reads_total(const step_flight_t *f);

#endif
