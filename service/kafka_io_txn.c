/* kafka_io_txn: the transactional producer of output.guarantee=exactly_once,
 * as part of the kafka_io module. A transaction opens with the first record
 * or offset that goes in; kafka_io_commit_transaction() sends the offsets
 * with the consumer's group metadata and commits, retrying what librdkafka
 * calls retriable, aborting what needs it, and replacing a producer in a
 * fatal state. */
#include "kafka_io.h"

#include <stdlib.h>

#include <librdkafka/rdkafka.h>

#include "clock.h"
#include "errstr.h"
#include "kafka_io_private.h"
#include "log.h"

#define TXN_INIT_TIMEOUT_MS 60000
#define TXN_ABORT_TIMEOUT_MS 30000
#define TXN_RETRIES 3

/* A new producer; a transactional one has its transactions initialised,
 * which fences an older producer of the same transactional.id and aborts
 * what it left open. */
rd_kafka_t *kafka_io_start_producer(kafka_io_t *io, char *errstr, size_t errstr_size) {
    rd_kafka_t *producer = kafka_io_new_producer(io->cfg, io, errstr, errstr_size);
    if (!producer || !io->transactional) return producer;
    rd_kafka_error_t *error = rd_kafka_init_transactions(producer, TXN_INIT_TIMEOUT_MS);
    if (error) {
        errstr_set(errstr, errstr_size, "kafka producer: initialising transactions: %s",
                   rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        rd_kafka_destroy(producer);
        return NULL;
    }
    return producer;
}

static void txn_log_error(const char *what, const rd_kafka_error_t *error) {
    log_warn("kafka", "transaction: %s: %s (%s)", what, rd_kafka_error_string(error),
             rd_kafka_error_is_fatal(error)              ? "fatal"
             : rd_kafka_error_txn_requires_abort(error)  ? "abortable"
             : rd_kafka_error_is_retriable(error)        ? "retriable"
                                                         : "not retriable");
}

int kafka_io_txn_begin(kafka_io_t *io) {
    if (io->txn_open) return 0;
    rd_kafka_error_t *error = rd_kafka_begin_transaction(io->producer);
    if (error) {
        txn_log_error("begin", error);
        rd_kafka_error_destroy(error);
        return -1;
    }
    io->txn_open = 1;
    io->txn_doomed = 0;
    if (io->txn_since_ms < 0) io->txn_since_ms = clock_monotonic_ms();
    return 0;
}

/* A producer in a fatal state (fenced, or an idempotence failure) is of
 * no more use: a new one takes its place, with what was queued purged. */
static int restart_producer(kafka_io_t *io) {
    char reason[512], errstr[512];
    rd_kafka_fatal_error(io->producer, reason, sizeof(reason));
    log_error("kafka", "the transactional producer failed fatally (%s); starting a new one",
              reason);
    rd_kafka_purge(io->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(io->producer, 0); /* the purged records' reports */
    rd_kafka_destroy(io->producer);
    io->producer_restarts++;
    io->txn_open = 0;
    io->producer = kafka_io_start_producer(io, errstr, sizeof(errstr));
    if (!io->producer) {
        log_error("kafka", "%s", errstr);
        return -1;
    }
    return 0;
}

/* Aborts the open transaction and hands back the partitions whose offsets
 * it carried. -1 when the producer could not be made usable again. */
static int txn_abort(kafka_io_t *io) {
    int rc = 0;
    size_t count = (size_t)io->txn_offsets->cnt;
    int32_t *aborted = realloc(io->aborted, (count ? count : 1) * sizeof(*aborted));
    if (aborted) io->aborted = aborted;
    io->aborted_count = aborted ? count : 0;
    for (size_t i = 0; aborted && i < count; i++)
        io->aborted[i] = io->txn_offsets->elems[i].partition;
    rd_kafka_topic_partition_list_destroy(io->txn_offsets);
    io->txn_offsets = rd_kafka_topic_partition_list_new(16);
    io->txn_since_ms = -1;
    if (io->txn_open) {
        rd_kafka_error_t *error = NULL;
        for (int attempt = 0; attempt < TXN_RETRIES; attempt++) {
            if (error) rd_kafka_error_destroy(error);
            error = rd_kafka_abort_transaction(io->producer, TXN_ABORT_TIMEOUT_MS);
            if (!error || !rd_kafka_error_is_retriable(error)) break;
            txn_log_error("abort (retrying)", error);
        }
        if (error) {
            txn_log_error("abort", error);
            rc = rd_kafka_error_is_fatal(error) ? restart_producer(io) : -1;
            rd_kafka_error_destroy(error);
        }
    } else if (rd_kafka_fatal_error(io->producer, NULL, 0)) {
        rc = restart_producer(io);
    }
    io->txn_open = 0;
    io->txn_aborted++;
    return aborted ? rc : -1;
}

/* Runs one transactional call, again while librdkafka says it may. */
static rd_kafka_error_t *txn_call(kafka_io_t *io, int commit) {
    rd_kafka_error_t *error = NULL;
    for (int attempt = 0; attempt < TXN_RETRIES; attempt++) {
        if (error) rd_kafka_error_destroy(error);
        if (commit) {
            error = rd_kafka_commit_transaction(io->producer, -1);
        } else {
            rd_kafka_consumer_group_metadata_t *group =
                rd_kafka_consumer_group_metadata(io->consumer);
            error = rd_kafka_send_offsets_to_transaction(io->producer, io->txn_offsets, group,
                                                         -1);
            rd_kafka_consumer_group_metadata_destroy(group);
        }
        if (!error || !rd_kafka_error_is_retriable(error)) break;
        txn_log_error(commit ? "commit (retrying)" : "sending offsets (retrying)", error);
    }
    return error;
}

kafka_txn_result_t kafka_io_commit_transaction(kafka_io_t *io) {
    io->aborted_count = 0;
    if (!io->transactional || (!io->txn_open && io->txn_offsets->cnt == 0))
        return KAFKA_TXN_COMMITTED;
    rd_kafka_error_t *error = NULL;
    if (io->txn_doomed || kafka_io_txn_begin(io) != 0) {
        log_warn("kafka", "transaction: a record could not be produced in it; aborting");
    } else if (io->txn_offsets->cnt > 0 && (error = txn_call(io, 0)) != NULL) {
        txn_log_error("sending offsets", error);
    } else if ((error = txn_call(io, 1)) != NULL) {
        txn_log_error("commit", error);
    } else {
        io->txn_open = 0;
        io->txn_since_ms = -1;
        io->txn_committed++;
        rd_kafka_topic_partition_list_destroy(io->txn_offsets);
        io->txn_offsets = rd_kafka_topic_partition_list_new(16);
        return KAFKA_TXN_COMMITTED;
    }
    if (error) rd_kafka_error_destroy(error);
    return txn_abort(io) == 0 ? KAFKA_TXN_ABORTED : KAFKA_TXN_FAILED;
}

int64_t kafka_io_transaction_age_ms(const kafka_io_t *io) {
    return io->txn_since_ms < 0 ? -1 : clock_monotonic_ms() - io->txn_since_ms;
}

const int32_t *kafka_io_aborted_partitions(const kafka_io_t *io, size_t *count) {
    *count = io->aborted_count;
    return io->aborted;
}

kafka_txn_stats_t kafka_io_txn_stats(const kafka_io_t *io) {
    return (kafka_txn_stats_t){.committed = io->txn_committed, .aborted = io->txn_aborted,
                               .producer_restarts = io->producer_restarts};
}

int64_t kafka_io_committed_offset(kafka_io_t *io, const char *topic, int32_t partition) {
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition);
    rd_kafka_resp_err_t err = rd_kafka_committed(io->consumer, list, COMMITTED_TIMEOUT_MS);
    int64_t offset = err || list->elems[0].err ? -2 : list->elems[0].offset;
    if (err || list->elems[0].err)
        log_warn("kafka", "reading the committed offset of %s [%d]: %s", topic, (int)partition,
                 rd_kafka_err2str(err ? err : list->elems[0].err));
    rd_kafka_topic_partition_list_destroy(list);
    return offset == -2 ? -2 : offset >= 0 ? offset : -1;
}

void kafka_io_txn_add_offsets(kafka_io_t *io, const char *topic, const int32_t *partitions,
                              const int64_t *next_offsets, size_t count) {
    if (io->txn_since_ms < 0) io->txn_since_ms = clock_monotonic_ms();
    for (size_t i = 0; i < count; i++) {
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(io->txn_offsets, topic, partitions[i]);
        if (!tp) tp = rd_kafka_topic_partition_list_add(io->txn_offsets, topic, partitions[i]);
        tp->offset = next_offsets[i];
    }
}

/* What is still open committed nothing: its outbox goes again. */
void kafka_io_txn_abort_at_exit(kafka_io_t *io) {
    if (!io->txn_open) return;
    rd_kafka_error_t *error = rd_kafka_abort_transaction(io->producer, TXN_ABORT_TIMEOUT_MS);
    if (error) {
        txn_log_error("abort at shutdown", error);
        rd_kafka_error_destroy(error);
    }
    io->txn_open = 0;
}
