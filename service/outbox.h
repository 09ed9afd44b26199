/* outbox: output records from decision to removal.
 *
 * An output record (an alert, a count_average event, a running total or a
 * late payment) is decided while a batch is applied and queued here. Its
 * partition's atomic Redis step writes it into that partition's outbox
 * together with the state that raised it; it waits sealed while that step
 * is in flight, and only once the step landed is it produced. Acknowledged records are removed
 * from the Redis outbox in bulk, after later batches; whatever a crash
 * leaves there is produced again, in offset order, by the partition's next
 * owner before anything new (outbox_redeliver). The record's kind, never its
 * id, chooses its topic and its metric, and the id is built in one place.
 *
 * In Redis a record is stored under its id in outbox_format's form, with
 * its payment's W3C trace context when it had one, so a redelivered record
 * carries the same headers. The headers (trace context, and CloudEvents
 * with output.cloudevents) are built when the record is produced. With the memory backend there is no Redis outbox: records are
 * produced after the batch without waiting, and each one (and each dead
 * letter, through a ticket) counts on its input partition's mark in the
 * acknowledgement watermark until its delivery report.
 *
 * The outbox owns its queued records, the records in flight and the
 * acknowledgements it has not yet removed; it borrows the producer, the
 * store (NULL: memory backend), the watermark (memory backend only), the
 * metrics and the topic names in cfg. Consumer thread only. */
#ifndef FRAUD_OUTBOX_H
#define FRAUD_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "ack_watermark.h"
#include "alert.h"
#include "config.h"
#include "dead_letter.h"
#include "kafka_io.h"
#include "metrics.h"
#include "outbox_format.h"
#include "redis_retry.h"
#include "store_redis.h"
#include "trace_context.h"

/* The payment that caused a record. */
typedef struct output_origin {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t event_time_ms;        /* of the payment */
    int64_t detected_at_ms;       /* the record's own time (ce_time); -1: none */
    const trace_context_t *trace; /* the payment's; NULL: none */
} output_origin_t;

/* A record decided in this batch, waiting for its partition's step. */
typedef struct output_record {
    output_kind_t kind;
    int rule; /* OUTPUT_ALERT: the rule_id_t that fired; else -1 */
    int32_t partition;
    int64_t offset;         /* of the payment that caused it */
    int64_t event_time_ms;  /* of that payment */
    int64_t detected_at_ms; /* -1: none */
    trace_context_t *trace; /* owned; NULL: none */
    char *user;             /* owned: the record's key */
    char *stored;          /* owned: what the Redis outbox holds */
    const char *json;      /* inside stored: what Kafka gets */
    char id[ALERT_ID_MAX];
} output_record_t;

typedef struct outbox outbox_t;

/* Exactly one of store and acks: the Redis backend's store, or the memory
 * backend's watermark. */
outbox_t *outbox_new(const config_t *cfg, kafka_io_t *io, store_t *store, ack_watermark_t *acks,
                     dead_letter_t *dead_letters, metrics_t *metrics);
void outbox_destroy(outbox_t *ob);

/* Queues a record; takes ownership of json (freed on failure too). rule is
 * the rule_id_t (its type) for an alert, ignored otherwise; rule_id is the
 * instance's id that names an alert or an average (its alert_id or
 * average_id), ignored otherwise. origin is copied. */
int outbox_queue(outbox_t *ob, output_kind_t kind, int rule, const char *rule_id,
                 const output_origin_t *origin, const char *user, char *json);

/* The records queued in this batch, for the atomic step. */
const output_record_t *outbox_queued(const outbox_t *ob, size_t *count);

/* The queued records' step was launched: they wait, sealed, for it to
 * land, while the next batch queues its own. */
void outbox_seal_queued(outbox_t *ob);

/* Forgets a partition's queued and sealed records: its step was refused. */
void outbox_drop_partition(outbox_t *ob, int32_t partition);

/* Count the alerts as raised and produce every sealed (Redis backend: the
 * step landed) or queued (memory backend: no step) record, without
 * waiting, then forget them. With exactly_once the sealed records go into
 * the open transaction and are kept until outbox_transaction_done(). */
int outbox_produce_sealed(outbox_t *ob);
int outbox_produce_queued(outbox_t *ob);

/* exactly_once: the transaction holding the produced records committed
 * (they count as delivered and leave the Redis outbox in bulk later) or
 * aborted (they stay in the Redis outbox, to go again). */
void outbox_transaction_done(outbox_t *ob, int committed);
/* exactly_once: records produced in the open transaction. */
size_t outbox_in_transaction(const outbox_t *ob);

/* exactly_once: a dead letter is queued like an output record, so that it
 * goes out in its batch's transaction; it is counted and logged now. */
int outbox_queue_dead_letter(outbox_t *ob, const kafka_msg_t *msg, dead_letter_reason_t reason,
                             const char *reason_text);

/* Memory backend: the opaque for a dead letter of an input partition's
 * payment, so that its report settles the partition's mark. NULL when out
 * of memory. A ticket the producer refused goes back with
 * outbox_ticket_cancel(). */
void *outbox_dead_letter_ticket(outbox_t *ob, int32_t partition);
void outbox_ticket_cancel(void *ticket);

/* The delivery report of a record produced by outbox_produce_queued(), or
 * of a dead letter's ticket. Takes over opaque. */
void outbox_on_delivery(outbox_t *ob, void *opaque, int failed);

/* Serves delivery reports and removes the acknowledged records from the
 * Redis outbox, in one pipelined round trip. */
int outbox_complete_deliveries(outbox_t *ob, const redis_retry_t *retry);

/* Waits for every record in flight, then completes them. */
int outbox_drain(outbox_t *ob, const redis_retry_t *retry);

/* What the partition's Redis outbox still holds, on assignment, in offset
 * order. at_least_once: all of it is produced, acknowledged and removed.
 * exactly_once: the records of payments below committed (the group's
 * committed offset, -1: none) were committed by a transaction and are only
 * removed; the others are produced in a new transaction that commits
 * checkpoint (the Redis checkpoint) as the partition's offset, then
 * removed. */
int outbox_redeliver(outbox_t *ob, int32_t partition, int64_t committed, int64_t checkpoint,
                     char *errstr, size_t errstr_size);

/* outbox_redeliver() as a redis_retry step. exactly_once reads the
 * committed offset as stable: while a transaction of the partition's
 * former owner is open it is not known yet (committed -2), and the attempt
 * waits (up to that transaction's timeout) or fails, to be retried. */
typedef struct outbox_redelivery {
    outbox_t *outbox;
    int32_t partition;
    int64_t committed;  /* the group's; -1: none; -2: read it first */
    int64_t checkpoint; /* Redis's; -1: none */
} outbox_redelivery_t;
int outbox_redeliver_step(void *arg, char *errstr, size_t errstr_size);

/* True once a record could not be delivered: it stays in the Redis outbox,
 * and the service must stop without committing. */
int outbox_failed(const outbox_t *ob);

#endif
