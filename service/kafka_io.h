/* kafka_io: the service's two librdkafka clients and how it writes to Kafka.
 *
 * The consumer joins group.id with the cooperative-sticky assignor, manual
 * offset store (offsets are stored only once a batch is durable) and
 * auto-commit of what was stored. The producer is idempotent; its delivery
 * reports are counted so a batch can wait until every alert and dead-letter
 * record it produced is acknowledged.
 *
 * kafka_io owns both handles; kafka_io_destroy() closes the consumer (leaving
 * the group, which runs the rebalance callback) and flushes the producer. */
#ifndef FRAUD_KAFKA_IO_H
#define FRAUD_KAFKA_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "config.h"

/* Called for every record produced with an opaque, once Kafka acknowledged
 * it (failed == 0) or gave up on it; the callee owns the opaque then. */
typedef void (*kafka_io_delivery_fn)(void *app, void *record_opaque, int failed);

typedef struct kafka_io {
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    kafka_io_delivery_fn on_delivery;
    void *app;
    /* Written by the delivery report callback, which runs on the thread
     * that polls or flushes the producer: ours. */
    uint64_t produced;
    uint64_t delivered;
    uint64_t delivery_failures;
} kafka_io_t;

/* Creates both clients with cfg's kafka.* settings. rebalance_cb, stats_cb
 * and opaque go to the consumer. Returns NULL with a reason naming the bad property. */
kafka_io_t *kafka_io_new(const config_t *cfg,
                         void (*rebalance_cb)(rd_kafka_t *, rd_kafka_resp_err_t,
                                              rd_kafka_topic_partition_list_t *, void *),
                         int (*stats_cb)(rd_kafka_t *, char *, size_t, void *), void *opaque,
                         char *errstr, size_t errstr_size);

/* A consumer outside any group, with the user's kafka.* and
 * kafka.consumer.* settings, that never commits: for topics every instance
 * reads whole (rules.topic). The caller assigns it and destroys it. */
rd_kafka_t *kafka_io_new_reader(const config_t *cfg, char *errstr, size_t errstr_size);

/* Subscribes the consumer to one topic. */
int kafka_io_subscribe(kafka_io_t *io, const char *topic, char *errstr, size_t errstr_size);

/* Produces one record (copied) with optional headers (NULL-terminated
 * name/value pairs, or NULL). record_opaque, when not NULL, is handed to
 * on_delivery with the delivery report. Waits while the local queue is
 * full. Returns 0, or -1 with errstr for a permanent error (the opaque
 * then stays the caller's). */
int kafka_io_produce(kafka_io_t *io, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, const char *const *headers,
                     void *record_opaque, char *errstr, size_t errstr_size);

/* Waits until every produced record is acknowledged or failed; gives up
 * after timeout_ms and returns -1 if some are still in flight. */
int kafka_io_wait_deliveries(kafka_io_t *io, int timeout_ms);

void kafka_io_destroy(kafka_io_t *io);

/* For --dump-config: builds both clients' configurations as kafka_io_new()
 * would and prints each property the service or the user set, read back
 * from librdkafka, as librdkafka.<consumer|producer>.<name>=<value>, with
 * secrets masked. Returns -1 with errstr when librdkafka refuses one. */
int kafka_io_dump_config(const config_t *cfg, FILE *out, char *errstr, size_t errstr_size);

#endif
