/* pipeline: the conductor. consume -> decode -> state -> rules -> persist ->
 * produce -> commit, in that order, batch after batch.
 *
 * For each batch: every message is decoded; the users not cached are loaded
 * from Redis in one pipelined round trip; payments are applied in offset
 * order (skipping any below their partition's checkpoint: already
 * applied); dead letters are produced and acknowledged; each partition's
 * users, new checkpoint and output records go to Redis in one atomic step,
 * sent on its own thread while the next batch is applied (step_flight);
 * the records are then produced from that outbox and removed once
 * acknowledged; offsets are stored for commit last. State therefore changes
 * exactly once per payment whatever crashes; alerts are delivered at least
 * once with a stable alert_id. ARCHITECTURE.md walks through the modules
 * that each step belongs to.
 *
 * On a partition revoke the pending batch is finished and committed first,
 * then the cache forgets the users of those partitions, so their next owner
 * reads fresh state from Redis.
 *
 * The pipeline owns every module it wires: the Kafka clients, the Redis
 * connections and the step's thread, the cache, the batch, the partitions, the outbox, the dead
 * letters, the rules in force and the operations endpoints' answers. The
 * config is borrowed and must outlive it. */
#ifndef FRAUD_PIPELINE_H
#define FRAUD_PIPELINE_H

#include <signal.h>
#include <stddef.h>

#include "config.h"
#include "http_server.h"
#include "rule_control.h"

typedef struct pipeline pipeline_t;

/* Connects to Redis (failing fast when it is unreachable), creates the
 * Kafka clients, reads rules.topic and subscribes. NULL with a reason in
 * errstr. */
pipeline_t *pipeline_new(const config_t *cfg, char *errstr, size_t errstr_size);

/* Runs until *stop becomes non-zero or a fatal error. Returns 0 after a
 * clean stop (last batch persisted and committed), 1 on a fatal error. */
int pipeline_run(pipeline_t *p, volatile sig_atomic_t *stop);

/* Rules reload (SIGHUP): see rule_control_set_reload(). */
void pipeline_set_rules_reload(pipeline_t *p, volatile sig_atomic_t *requested,
                               rule_loader_fn load, void *ctx);

/* The operations endpoints' handlers, safe on the HTTP thread while the
 * pipeline runs. Stop the HTTP server before pipeline_destroy(). */
http_handlers_t pipeline_http_handlers(pipeline_t *p);

/* Leaves the group (committing what is done), then frees everything. */
void pipeline_destroy(pipeline_t *p);

#endif
