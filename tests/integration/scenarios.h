/* scenarios: the crash and handover scenarios that the exactly_once suite
 * (output.guarantee=at_least_once) and the transactions suite
 * (exactly_once) both run, each with its own service flags. Each checks
 * every user's totals exactly and every expected alert on the alert topic,
 * and returns how many alerts it read more than once. The instances are
 * the scenario's; the fixture's teardown kills what a failed one left. */
#ifndef FRAUD_TEST_SCENARIOS_H
#define FRAUD_TEST_SCENARIOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One instance SIGKILLed `kills` times, each time while it is at work on a
 * new chunk of the stream (somewhere in it, at random), then restarted. */
size_t scenario_sigkill(const char *const *flags, int kills, size_t events, uint64_t seed);

/* Two instances; a third joins mid-stream, and the first leaves. */
size_t scenario_three_instances(const char *const *flags, size_t events, uint64_t seed);

/* An instance paused mid-stream (SIGSTOP) past its session timeout, whose
 * partitions another instance takes over and finishes, then resumed;
 * whatever it does next must not count. flags must shorten the session.
 * must_be_refused: its next step must meet the newer checkpoint, or, paused
 * between batches, it must find its assignment lost (with exactly_once it
 * may be fenced in its commit instead). */
size_t scenario_zombie(const char *const *flags, size_t events, uint64_t seed,
                       bool must_be_refused);

#endif
