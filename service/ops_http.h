/* ops_http: what the operations endpoints answer.
 *
 *   /metrics      the metrics, rendered
 *   /healthz      alive: the loop ran recently and hit no fatal error
 *   /readyz       ready: Redis answers, brokers are up, no fatal error
 *   /users/{id}   a user's state: the cache for partitions this instance
 *                 owns, else Redis over the HTTP thread's own connection
 *   /rules        the rule instances in force: type, parameters, state and
 *                 where each came from (rule_control's published copy)
 *
 * The handlers run on the HTTP thread. The cache and the owned partitions
 * belong to the consumer thread, so the state query reads them under the
 * consumer's lock, which it takes itself and waits for at most 2 s (503
 * "busy" after that). Everything it reads is borrowed and must outlive the
 * HTTP server: stop the server before freeing any of it. */
#ifndef FRAUD_OPS_HTTP_H
#define FRAUD_OPS_HTTP_H

#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "http_server.h"
#include "kafka_io.h"
#include "metrics.h"
#include "partitions.h"
#include "rule_control.h"
#include "state_cache.h"
#include "state_ttl.h"
#include "store_redis.h"

/* What the endpoints read; all borrowed. */
typedef struct ops_sources {
    const config_t *cfg;
    metrics_t *metrics;
    pthread_mutex_t *lock;         /* the consumer's: guards cache and partitions */
    state_cache_t *cache;
    const partitions_t *partitions;
    const ttl_policy_t *ttl;
    store_t *query_store;          /* the HTTP thread's own; NULL: memory backend */
    kafka_io_t *io;                /* the input topic's partition count */
    rule_control_t *rules;         /* NULL: /rules is 404 */
    atomic_int_least64_t *heartbeat_ms;
    atomic_int *fatal;
    int64_t started_ms;
    const char *instance;          /* hostname:pid */
} ops_sources_t;

typedef struct ops_http ops_http_t;

/* NULL when out of memory. Copies sources. */
ops_http_t *ops_http_new(const ops_sources_t *sources);
void ops_http_destroy(ops_http_t *ops);

/* The handlers for http_server_start(); they borrow ops. */
http_handlers_t ops_http_handlers(ops_http_t *ops);

#endif
