/* event_time: when a payment happened, and where that stands in its
 * user's own time.
 *
 * With time.characteristic=event a payment's time is its `timestamp` field,
 * else its Kafka record's timestamp (CreateTime or LogAppendTime, as the
 * topic has it); a record with neither falls back to the service's clock.
 * Time is kept per user, not as a global watermark: a user's payments
 * arrive in order on one partition, so the latest event time seen for the
 * user (in the user's state) is the user's watermark, and an idle partition
 * holds nothing back. A payment older than that by at most
 * time.max.out.of.orderness.ms is still placed in the user's windows; an
 * older one is late: it counts in prev, cum and count, but the window rules
 * skip it. A time further ahead of the service's clock than
 * time.max.future.ms, or before 2000, is not believed at all.
 *
 * With time.characteristic=processing the service's clock when the payment
 * is applied decides, as it did before event time existed.
 *
 * Pure functions over a policy value; the module keeps no state. */
#ifndef FRAUD_EVENT_TIME_H
#define FRAUD_EVENT_TIME_H

#include <stdint.h>

#include "rules.h"

typedef enum { CLOCK_EVENT = 0, CLOCK_PROCESSING } time_clock_t;

typedef struct time_policy {
    time_clock_t clock;
    int64_t max_out_of_orderness_ms; /* >= 0 */
    int64_t max_future_ms;           /* >= 0 */
} time_policy_t;

/* 2000-01-01T00:00:00Z: no payment of this service's users is older. */
#define EVENT_TIME_EARLIEST_MS 946684800000LL

/* "event" or "processing": what alerts say decided them. */
const char *time_clock_name(time_clock_t clock);

/* The clock named by time.characteristic; CLOCK_EVENT for anything else. */
time_clock_t time_clock_parse(const char *name);

/* The payment's own time: its timestamp field when it has one (>= 0),
 * else the record's timestamp; -1 when neither is known. */
int64_t event_time_of(int64_t payment_timestamp_ms, int64_t record_timestamp_ms);

typedef enum {
    EVENT_TIME_OK = 0,
    EVENT_TIME_IN_FUTURE,   /* more than max_future_ms ahead of now */
    EVENT_TIME_BEFORE_2000,
} event_time_verdict_t;

/* Whether an event time (>= 0) can be believed when the service's clock
 * reads now_ms. */
event_time_verdict_t event_time_check(const time_policy_t *policy, int64_t event_ms,
                                      int64_t now_ms);

/* The window rules' view of one payment of a user: event_ms is the
 * payment's event time (-1: unknown, the service's clock stands in),
 * *user_latest_ms the latest event time seen for the user (0: none), which
 * this advances. In processing time the payment's time is now_ms and
 * nothing is ever late; the user's latest event time still advances, so
 * that a change of clock finds it current. *lateness_ms receives how much
 * older than the user's latest the payment is (0 when it is not). */
rule_time_t event_time_place(const time_policy_t *policy, int64_t event_ms, int64_t now_ms,
                             int64_t *user_latest_ms, int64_t *lateness_ms);

#endif
