#include "event_time.h"

#include <string.h>

const char *time_clock_name(time_clock_t clock) {
    return clock == CLOCK_PROCESSING ? "processing" : "event";
}

time_clock_t time_clock_parse(const char *name) {
    return strcmp(name, "processing") == 0 ? CLOCK_PROCESSING : CLOCK_EVENT;
}

int64_t event_time_of(int64_t payment_timestamp_ms, int64_t record_timestamp_ms) {
    if (payment_timestamp_ms >= 0) return payment_timestamp_ms;
    return record_timestamp_ms >= 0 ? record_timestamp_ms : -1;
}

event_time_verdict_t event_time_check(const time_policy_t *policy, int64_t event_ms,
                                      int64_t now_ms) {
    if (event_ms < EVENT_TIME_EARLIEST_MS) return EVENT_TIME_BEFORE_2000;
    /* event_ms >= 0 and now_ms > 0: the difference cannot overflow. */
    if (event_ms - now_ms > policy->max_future_ms) return EVENT_TIME_IN_FUTURE;
    return EVENT_TIME_OK;
}

rule_time_t event_time_place(const time_policy_t *policy, int64_t event_ms, int64_t now_ms,
                             int64_t *user_latest_ms, int64_t *lateness_ms) {
    int64_t at = event_ms >= 0 ? event_ms : now_ms;
    int64_t before = *user_latest_ms;
    *lateness_ms = 0;
    if (at > before) *user_latest_ms = at;
    if (policy->clock == CLOCK_PROCESSING)
        return (rule_time_t){.at_ms = now_ms, .latest_ms = now_ms};
    if (before > at) *lateness_ms = before - at;
    return (rule_time_t){.at_ms = at,
                         .latest_ms = *user_latest_ms,
                         .slack_ms = policy->max_out_of_orderness_ms,
                         .late = *lateness_ms > policy->max_out_of_orderness_ms};
}
