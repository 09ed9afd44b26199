/* harness: real servers for integration tests, started and stopped by the
 * test itself on 127.0.0.1, in three parts:
 *   harness_redis.h    redis-server
 *   harness_kafka.h    the mock cluster or a real Apache Kafka broker
 *   harness_service.h  the real fraud-detector binary
 * Children get PR_SET_PDEATHSIG, so a crashed test leaves nothing behind.
 * Suites usually take all of it through fixture.h. */
#ifndef FRAUD_TEST_HARNESS_H
#define FRAUD_TEST_HARNESS_H

#include <stdint.h>

#include "harness_kafka.h"
#include "harness_redis.h"
#include "harness_service.h"

/* A free TCP port on 127.0.0.1 (bound then released). */
int harness_free_port(void);
/* A free port p whose p+offset is free too (a cluster node's bus port). */
int harness_free_port_pair(int offset);

void sleep_ms(int ms);
int64_t mono_ms(void);

#endif
