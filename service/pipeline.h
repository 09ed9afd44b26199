/* pipeline: consume -> decode -> state -> rule -> persist -> alert -> commit.
 *
 * Messages are processed in batches. For each batch: every message is
 * decoded; all users missing from the cache are loaded from Redis in one
 * pipelined round trip; payments are applied in offset order (skipping any
 * below the partition's checkpoint: already applied); dead letters are
 * produced and acknowledged; each partition's users, new checkpoint and
 * alerts go to Redis in one atomic step; the alerts are then produced from
 * that outbox and removed once acknowledged; offsets are stored for commit
 * last. State therefore changes exactly once per payment whatever crashes;
 * alerts are delivered at least once with a stable alert_id.
 *
 * Rules come from the config's rule.* keys, reloaded on SIGHUP, with the
 * updates of rules.topic on top; a change applies from the next batch.
 * Alerts, count_average's averages and totals.topic's running totals all
 * go through the same outbox.
 *
 * On a partition revoke the pending batch is finished and committed first,
 * then the cache forgets the users of those partitions, so their next owner
 * reads fresh state from Redis.
 *
 * The pipeline owns its Kafka clients, Redis store and cache; the config is
 * borrowed and must outlive it. */
#ifndef FRAUD_PIPELINE_H
#define FRAUD_PIPELINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "decode.h"
#include "http_server.h"

typedef struct pipeline pipeline_t;

typedef struct pipeline_stats {
    uint64_t consumed;
    uint64_t valid;
    uint64_t dead_lettered;
    uint64_t dead_lettered_by_reason[DECODE_REASON_COUNT];
    uint64_t alerts;
    uint64_t replays_skipped; /* below the checkpoint: applied before */
    uint64_t batches;
} pipeline_stats_t;

/* Connects to Redis (failing fast when it is unreachable), creates the
 * Kafka clients and subscribes. NULL with a reason in errstr. */
pipeline_t *pipeline_new(const config_t *cfg, char *errstr, size_t errstr_size);

/* Runs until *stop becomes non-zero or a fatal error. Returns 0 after a
 * clean stop (last batch persisted and committed), 1 on a fatal error. */
int pipeline_run(pipeline_t *p, volatile sig_atomic_t *stop);

/* Reads the rule.* keys again from the config's sources. 0, or -1 with a
 * reason (then the rules in force stay). */
typedef int (*pipeline_rules_loader_fn)(void *ctx, rule_set_t *out, char *errstr,
                                        size_t errstr_size);

/* Rules reload (SIGHUP): whenever *requested is non-zero before a batch, the
 * loop clears it, calls load and puts the result (with rules.topic's
 * updates on top) in force. */
void pipeline_set_rules_reload(pipeline_t *p, volatile sig_atomic_t *requested,
                               pipeline_rules_loader_fn load, void *ctx);

/* The operations endpoints' handlers (metrics, health, readiness, state
 * query), safe to call from the HTTP thread while the pipeline runs. */
http_handlers_t pipeline_http_handlers(pipeline_t *p);

/* Leaves the group, committing what is done. The HTTP handlers stay valid
 * until pipeline_destroy(). */
void pipeline_destroy_kafka(pipeline_t *p);

/* Leaves the group if still in it, and frees everything. */
void pipeline_destroy(pipeline_t *p);

#endif
