/* scenarios: crashes, handovers and a zombie, against the fixture. */
#include "scenarios.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include "fixture.h"
#include "reference_stream.h"

static service_proc_t svc[3];

/* Totals exact and every alert there; the count of repeats. */
static size_t outcome(const stream_t *s, const char *what) {
    size_t duplicates = 0;
    stream_assert_outcome(s, 180000, &duplicates);
    fprintf(stderr, "%s: %zu payments, %zu alerts, %zu read more than once\n", what, s->events,
            s->alert_count, duplicates);
    return duplicates;
}

size_t scenario_sigkill(const char *const *flags, int kills, size_t events, uint64_t seed) {
    stream_t s;
    stream_make(&s, events, 2000, 20, seed);
    size_t chunk = s.events / (size_t)(kills + 1);
    uint64_t rng = (uint64_t)time(NULL) | 1;
    fprintf(stderr, "sigkill: seed %llu\n", (unsigned long long)rng);
    int mid_stream = 0;
    for (int k = 0; k < kills; k++) {
        service_start(&svc[0], &kafka, &redis_srv, flags);
        ck_assert(service_wait_log(&svc[0], "assigned", 60000));
        long long before = fixture_applied_payments();
        kafka_produce(&kafka, "payments", s.keys + k * chunk, s.values + k * chunk, chunk);
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        sleep_ms((int)(rng % 250)); /* somewhere in the middle of the work */
        /* Not started yet (the mock holds an empty fetch for its wait, a
         * real broker's member starts slowly): kill it as its first step
         * lands, with the rest of the chunk in hand. */
        int64_t deadline = mono_ms() + 60000;
        while (fixture_applied_payments() == before && mono_ms() < deadline) sleep_ms(2);
        service_kill(&svc[0]);
        long long applied = fixture_applied_payments();
        long long produced = (long long)((size_t)(k + 1) * chunk);
        fprintf(stderr, "kill %d: %lld of %lld payments applied\n", k + 1, applied, produced);
        mid_stream += applied < produced;
    }
    ck_assert_int_ge(mid_stream, 1); /* otherwise every kill hit an idle service */
    service_start(&svc[0], &kafka, &redis_srv, flags);
    size_t done = (size_t)kills * chunk;
    kafka_produce(&kafka, "payments", s.keys + done, s.values + done, s.events - done);
    size_t duplicates = outcome(&s, "sigkill");
    ck_assert_int_eq(service_stop(&svc[0]), 0);
    stream_free(&s);
    return duplicates;
}

size_t scenario_three_instances(const char *const *flags, size_t events, uint64_t seed) {
    stream_t s;
    stream_make(&s, events, 1000, 25, seed);
    size_t third = s.events / 3;
    service_start(&svc[0], &kafka, &redis_srv, flags);
    service_start(&svc[1], &kafka, &redis_srv, flags);
    ck_assert(service_wait_log(&svc[0], "assigned", 60000));
    kafka_produce(&kafka, "payments", s.keys, s.values, third);
    service_start(&svc[2], &kafka, &redis_srv, flags); /* joins mid-stream */
    kafka_produce(&kafka, "payments", s.keys + third, s.values + third, third);
    ck_assert(service_wait_log(&svc[2], "assigned", 60000));
    ck_assert_int_eq(service_stop(&svc[0]), 0); /* leaves mid-stream */
    kafka_produce(&kafka, "payments", s.keys + 2 * third, s.values + 2 * third,
                  s.events - 2 * third);
    size_t duplicates = outcome(&s, "three instances");
    ck_assert_int_eq(service_stop(&svc[1]), 0);
    ck_assert_int_eq(service_stop(&svc[2]), 0);
    stream_free(&s);
    return duplicates;
}

size_t scenario_zombie(const char *const *flags, size_t events, uint64_t seed,
                       bool must_be_refused) {
    stream_t s;
    stream_make(&s, events, 3000, 20, seed);
    s.redecided_ok = true; /* at_least_once: its last records may go out before its fence */
    service_start(&svc[0], &kafka, &redis_srv, flags);
    ck_assert(service_wait_log(&svc[0], "assigned", 60000));
    kafka_produce(&kafka, "payments", s.keys, s.values, s.events);
    ck_assert(fixture_wait_applied(15000, 60000));
    ck_assert_int_eq(kill(svc[0].pid, SIGSTOP), 0);
    long long applied = fixture_applied_payments();
    fprintf(stderr, "zombie: paused with %lld of %zu payments applied\n", applied, s.events);
    ck_assert_int_lt(applied, (long long)s.events);
    service_start(&svc[1], &kafka, &redis_srv, flags);
    ck_assert(service_wait_log(&svc[1], "assigned", 60000)); /* after svc[0]'s session ended */
    ck_assert(stream_totals_match(&s, 120000));
    ck_assert_int_eq(kill(svc[0].pid, SIGCONT), 0);
    /* With a batch in hand its step meets the newer checkpoint; paused
     * between batches, it finds its assignment lost instead. */
    if (must_be_refused)
        ck_assert(service_wait_log(&svc[0], "not what this instance saw", 30000) ||
                  service_log_has(&svc[0], "kafka: lost", NULL));
    sleep_ms(5000); /* whatever the zombie does next, it must not count */
    fprintf(stderr, "zombie: %s; %s\n",
            service_log_has(&svc[0], "not what this instance saw", NULL)
                ? "its step was refused by the Redis checkpoint"
                : "it had no step to refuse: its assignment was lost",
            service_log_has(&svc[0], "applied after the refused", NULL)
                ? "a batch applied while the refused step was in flight was discarded"
                : "nothing was applied while a refused step was in flight");
    size_t duplicates = outcome(&s, "zombie");
    ck_assert_int_eq(service_stop(&svc[1]), 0);
    service_kill(&svc[0]);
    stream_free(&s);
    return duplicates;
}
