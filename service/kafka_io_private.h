/* kafka_io_private: what the files of the kafka_io module share and nothing
 * else sees: the struct, and the transactional producer's hooks into
 * kafka_io.c (kafka_io_txn.c). */
#ifndef FRAUD_KAFKA_IO_PRIVATE_H
#define FRAUD_KAFKA_IO_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kafka_io.h"

#define COMMITTED_TIMEOUT_MS 10000

struct kafka_io {
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    kafka_io_callbacks_t cb;
    const config_t *cfg;
    /* output.guarantee=exactly_once: the producer is transactional. */
    int transactional;
    int txn_open;
    int txn_doomed; /* a produce failed inside it: it can only abort */
    int64_t txn_since_ms; /* monotonic; when the first record or offset went in; -1: none */
    rd_kafka_topic_partition_list_t *txn_offsets; /* what the open one commits */
    int32_t *aborted; /* the partitions whose offsets the last abort took back */
    size_t aborted_count;
    uint64_t txn_committed, txn_aborted, producer_restarts;
    /* Written by the delivery report callback, which runs on the thread
     * that polls or flushes the producer: the consumer's. */
    uint64_t produced;
    uint64_t delivered;
    uint64_t delivery_failures;
};

/* The producer client with the service's settings and delivery reports. */
rd_kafka_t *kafka_io_new_producer(const config_t *cfg, kafka_io_t *io, char *errstr,
                                  size_t errstr_size);
/* kafka_io_new_producer(), with transactions initialised when io is
 * transactional (which fences an older producer of the same
 * transactional.id and aborts what it left open). */
rd_kafka_t *kafka_io_start_producer(kafka_io_t *io, char *errstr, size_t errstr_size);
/* Opens a transaction unless one is: 0, or -1 with a log line. */
int kafka_io_txn_begin(kafka_io_t *io);
/* kafka_io_store_offsets() of a transactional io. */
void kafka_io_txn_add_offsets(kafka_io_t *io, const char *topic, const int32_t *partitions,
                              const int64_t *next_offsets, size_t count);
/* At destroy: aborts the open transaction, if any. */
void kafka_io_txn_abort_at_exit(kafka_io_t *io);

#endif
