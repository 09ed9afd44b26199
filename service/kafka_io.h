/* kafka_io: the service's only door to librdkafka.
 *
 * It owns the group consumer (cooperative-sticky, manual offset store,
 * auto-commit of what was stored; with output.guarantee=exactly_once,
 * read_committed and offsets committed only in transactions), the
 * idempotent producer (transactional with exactly_once: kafka_io_txn.c)
 * and, for topics that every instance reads whole (rules.topic), readers
 * that join no group and never commit. Nothing else in the service calls rd_kafka_*: the rest
 * sees records as kafka_msg_t and partitions as numbers of the one input
 * topic.
 *
 * What the application does on a rebalance, a delivery report or a
 * statistics report is given as callbacks when the clients are created.
 * They run on the thread that polls: the consumer's for rebalances and
 * statistics, and, since the producer is only polled there too, for
 * delivery reports as well.
 *
 * kafka_io_destroy() closes the consumer (leaving the group, which runs the
 * revoke callback) and flushes the producer. */
#ifndef FRAUD_KAFKA_IO_H
#define FRAUD_KAFKA_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

typedef struct kafka_io kafka_io_t;

/* A consumed record. The pointers stay valid until kafka_msg_release(),
 * which the holder must call once. */
typedef struct kafka_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key; /* NULL when the record has none */
    size_t key_len;
    const void *value;
    size_t value_len;
    int64_t timestamp_ms; /* the record's CreateTime or LogAppendTime; -1: none */
    void *handle_;        /* kafka_io's */
} kafka_msg_t;

void kafka_msg_release(kafka_msg_t *msg);

/* The value of the record's last header of that name (not NUL-terminated,
 * valid while the record is), or NULL when it has none. */
const void *kafka_msg_header(const kafka_msg_t *msg, const char *name, size_t *size);

/* One newly assigned partition of the input topic. */
typedef struct kafka_assigned {
    int32_t partition;
    int64_t committed; /* the group's committed offset; -1: none or unknown */
    int committed_unknown; /* it could not be read (a transaction still open, say) */
    int64_t start;     /* set by on_assign: where to fetch; -1: the reset policy */
} kafka_assigned_t;

typedef struct kafka_io_callbacks {
    void *ctx;
    /* Partitions were assigned; committed offsets are filled in and each
     * start is -1 until the callee sets it. */
    void (*on_assign)(void *ctx, kafka_assigned_t *parts, size_t count);
    /* Partitions are about to go (lost: another member may own them
     * already). Returns 1 when what was gathered is done and stored, so the
     * stored offsets are committed before they go (never when lost). */
    int (*on_revoke)(void *ctx, const int32_t *partitions, size_t count, int lost);
    /* librdkafka's statistics JSON (statistics.interval.ms); borrowed. */
    void (*on_stats)(void *ctx, const char *json);
    /* A record produced with an opaque was acknowledged (failed == 0) or
     * given up on; the callee owns the opaque from then on. */
    void (*on_delivery)(void *ctx, void *record_opaque, int failed);
} kafka_io_callbacks_t;

/* Creates both clients with cfg's kafka.* settings. NULL with a reason
 * naming the bad property. cfg and callbacks are borrowed. */
kafka_io_t *kafka_io_new(const config_t *cfg, const kafka_io_callbacks_t *callbacks,
                         char *errstr, size_t errstr_size);
void kafka_io_destroy(kafka_io_t *io);

/* Subscribes the consumer to the one input topic. */
int kafka_io_subscribe(kafka_io_t *io, const char *topic, char *errstr, size_t errstr_size);

/* The next consumed record into *out (1), or none within timeout_ms (0).
 * Rebalance callbacks may run inside. Consumer errors are logged, not
 * returned. */
int kafka_io_poll(kafka_io_t *io, int timeout_ms, kafka_msg_t *out);

/* Pauses or resumes fetching for every assigned partition. */
void kafka_io_pause_all(kafka_io_t *io, int paused);

/* Moves the fetch position of one assigned partition. */
void kafka_io_seek(kafka_io_t *io, const char *topic, int32_t partition, int64_t offset);

/* Stores next offsets for the auto-commit (and the revoke and close
 * commits) to commit. */
void kafka_io_store_offsets(kafka_io_t *io, const char *topic, const int32_t *partitions,
                            const int64_t *next_offsets, size_t count);

/* The topic's partition count from the cluster's metadata, or -1. Safe on
 * any thread while io lives. */
int kafka_io_partition_count(kafka_io_t *io, const char *topic, int timeout_ms);

/* Produces one record (copied) with optional headers (NULL-terminated
 * name/value pairs, or NULL). record_opaque, when not NULL, is handed to
 * on_delivery with the delivery report. Waits while the local queue is
 * full. Returns 0, or -1 with errstr for a permanent error (the opaque
 * then stays the caller's). */
int kafka_io_produce(kafka_io_t *io, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, const char *const *headers,
                     void *record_opaque, char *errstr, size_t errstr_size);

/* ---- transactions: output.guarantee=exactly_once -------------------------
 * The producer is transactional. A transaction opens with the first record
 * produced (or at the commit, for offsets alone); kafka_io_store_offsets()
 * adds offsets to it instead of storing them for the auto-commit, and
 * kafka_io_commit_transaction() sends them with the consumer's group
 * metadata (KIP-447: a member that lost its partitions cannot commit) and
 * commits. Without exactly_once every call here is a no-op that commits. */
typedef enum {
    KAFKA_TXN_COMMITTED = 0,
    KAFKA_TXN_ABORTED,  /* aborted cleanly (or nothing was open); the producer is usable */
    KAFKA_TXN_FAILED,   /* aborted, and no usable producer could be made */
} kafka_txn_result_t;

kafka_txn_result_t kafka_io_commit_transaction(kafka_io_t *io);

/* How long ago the first record or offset went into the transaction not
 * yet committed; -1: nothing is waiting. */
int64_t kafka_io_transaction_age_ms(const kafka_io_t *io);

/* After KAFKA_TXN_ABORTED or _FAILED: the partitions whose offsets the
 * aborted transaction carried (borrowed, until the next commit). */
const int32_t *kafka_io_aborted_partitions(const kafka_io_t *io, size_t *count);

typedef struct kafka_txn_stats {
    uint64_t committed, aborted, producer_restarts;
} kafka_txn_stats_t;
kafka_txn_stats_t kafka_io_txn_stats(const kafka_io_t *io);

/* The group's committed offset of one partition of topic: -1 when it has
 * none, -2 when it could not be read. */
int64_t kafka_io_committed_offset(kafka_io_t *io, const char *topic, int32_t partition);

/* Serves the delivery reports that have arrived, without waiting. */
void kafka_io_serve_deliveries(kafka_io_t *io);

/* Sends what the producer holds, waiting up to 10 s. */
void kafka_io_flush(kafka_io_t *io);

/* Records that have failed to be delivered since the start. */
uint64_t kafka_io_delivery_failures(const kafka_io_t *io);

/* Waits, logging every second, until every produced record is acknowledged
 * or failed. Returns -1 with a log line when more have failed than
 * failures_before (from kafka_io_delivery_failures()). */
int kafka_io_await_deliveries(kafka_io_t *io, uint64_t failures_before);

/* A reader of a whole topic: every partition from its beginning, outside
 * any group, never committing. It remembers each partition's end as it was
 * when created. */
typedef struct kafka_reader kafka_reader_t;
kafka_reader_t *kafka_reader_new(const config_t *cfg, const char *topic, char *errstr,
                                 size_t errstr_size);
/* True once every partition was read up to the end remembered at creation. */
int kafka_reader_caught_up(kafka_reader_t *reader);
/* As kafka_io_poll(). */
int kafka_reader_poll(kafka_reader_t *reader, int timeout_ms, kafka_msg_t *out);
void kafka_reader_destroy(kafka_reader_t *reader);

/* For --dump-config: builds both clients' configurations as kafka_io_new()
 * would and prints each property the service or the user set, read back
 * from librdkafka, as librdkafka.<consumer|producer>.<name>=<value>, with
 * secrets masked. Returns -1 with errstr when librdkafka refuses one. */
int kafka_io_dump_config(const config_t *cfg, FILE *out, char *errstr, size_t errstr_size);

/* For fraud-repartition (kafka_io_admin.c). Per partition of topic, as the
 * cluster's metadata counts them: the committed offset of cfg's group
 * (-1: none) and the partition's end. *out is the caller's to free(). */
typedef struct kafka_group_position {
    int64_t committed;
    int64_t end;
} kafka_group_position_t;
int kafka_io_group_positions(const config_t *cfg, const char *topic,
                             kafka_group_position_t **out, int32_t *count, char *errstr,
                             size_t errstr_size);

/* The partition, of count, that a producer using librdkafka's partitioner
 * of that name puts key in: murmur2_random (the Java client's default),
 * consistent_random (librdkafka's and kcat's default) or fnv1a_random
 * (Sarama's); -1 for another name. */
int32_t kafka_io_partition_of_key(const char *partitioner, const void *key, size_t len,
                                  int32_t count);

/* librdkafka's version, for --version. */
const char *kafka_io_library_version(void);

#endif
