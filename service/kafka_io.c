/* kafka_io: librdkafka behind the service's own types.
 *
 * The rebalance callback is where librdkafka's protocols differ: with the
 * cooperative-sticky assignor partitions are added and removed
 * incrementally, with an eager one the whole assignment is replaced. That
 * difference, reading committed offsets and committing on revoke stay
 * here; the application only says where to start and when it is done. */
#include "kafka_io.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "clock.h"
#include "errstr.h"
#include "kafka_io_conf.h"
#include "kafka_io_private.h"
#include "log.h"

#define SEEK_TIMEOUT_MS 5000
#define METADATA_TIMEOUT_MS 10000

struct kafka_reader {
    rd_kafka_t *rk;
    char *topic;
    rd_kafka_topic_partition_list_t *ends;
};


static void delivery_report_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
    kafka_io_t *io = opaque;
    (void)rk;
    if (msg->err) {
        io->delivery_failures++;
        /* An aborted transaction purges its records: expected, and their
         * outbox in Redis is what goes out again. */
        int purged = msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                     msg->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
        log_msg(io->transactional && purged ? LOG_DEBUG : LOG_ERROR, "kafka",
                "delivery to %s [%d] failed: %s", rd_kafka_topic_name(msg->rkt),
                (int)msg->partition, rd_kafka_err2str(msg->err));
    } else {
        io->delivered++;
    }
    if (msg->_private && io->cb.on_delivery)
        io->cb.on_delivery(io->cb.ctx, msg->_private, msg->err != 0);
}


/* ---- rebalance --------------------------------------------------------- */

static void log_partitions(rd_kafka_t *rk, const char *what,
                           const rd_kafka_topic_partition_list_t *parts) {
    char text[1024];
    size_t len = 0;
    text[0] = '\0';
    for (int i = 0; i < parts->cnt && len < sizeof(text) - 32; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s[%d]", i ? " " : "",
                                parts->elems[i].topic, (int)parts->elems[i].partition);
    log_info("kafka", "%s %d partition(s) (%s rebalance): %s", what, parts->cnt,
             rd_kafka_rebalance_protocol(rk), text);
}

/* The committed offsets are read here, the start offsets are the
 * application's, and librdkafka's reset policy applies where it has none. */
static void assign(kafka_io_t *io, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                   int cooperative) {
    size_t count = (size_t)parts->cnt;
    kafka_assigned_t *assigned = calloc(count ? count : 1, sizeof(*assigned));
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, committed, COMMITTED_TIMEOUT_MS);
    if (err) log_warn("kafka", "reading committed offsets: %s", rd_kafka_err2str(err));
    for (size_t i = 0; assigned && i < count; i++) {
        int64_t offset = committed->elems[i].offset;
        int unknown = err || committed->elems[i].err;
        assigned[i] = (kafka_assigned_t){.partition = parts->elems[i].partition,
                                         .committed = !unknown && offset >= 0 ? offset : -1,
                                         .committed_unknown = unknown, .start = -1};
    }
    rd_kafka_topic_partition_list_destroy(committed);
    if (assigned && io->cb.on_assign) io->cb.on_assign(io->cb.ctx, assigned, count);
    for (size_t i = 0; assigned && i < count; i++)
        parts->elems[i].offset = assigned[i].start >= 0 ? assigned[i].start
                                                        : RD_KAFKA_OFFSET_INVALID;
    if (!assigned) log_error("kafka", "out of memory on assignment; using committed offsets");
    free(assigned);
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_assign(rk, parts);
        if (error) {
            log_error("kafka", "incremental assign: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    } else if ((err = rd_kafka_assign(rk, parts)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_error("kafka", "assign: %s", rd_kafka_err2str(err));
    }
}

static void revoke(kafka_io_t *io, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                   int cooperative) {
    int lost = rd_kafka_assignment_lost(rk);
    size_t count = (size_t)parts->cnt;
    int32_t *partitions = calloc(count ? count : 1, sizeof(*partitions));
    log_partitions(rk, lost ? "lost" : "revoked", parts);
    for (size_t i = 0; partitions && i < count; i++) partitions[i] = parts->elems[i].partition;
    int done = partitions && io->cb.on_revoke
                   ? io->cb.on_revoke(io->cb.ctx, partitions, count, lost)
                   : 0;
    free(partitions);
    if (done && !lost) {
        rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            log_warn("kafka", "commit on revoke: %s", rd_kafka_err2str(err));
    }
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(rk, parts);
        if (error) {
            log_error("kafka", "incremental unassign: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    } else {
        rd_kafka_resp_err_t err = rd_kafka_assign(rk, NULL);
        if (err) log_error("kafka", "unassign: %s", rd_kafka_err2str(err));
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_partitions(rk, "assigned", parts);
        assign(opaque, rk, parts, cooperative);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        revoke(opaque, rk, parts, cooperative);
    } else {
        log_error("kafka", "rebalance failed: %s", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque) {
    kafka_io_t *io = opaque;
    (void)rk;
    (void)json_len;
    if (io->cb.on_stats) io->cb.on_stats(io->cb.ctx, json);
    return 0; /* librdkafka frees json */
}

/* ---- clients ----------------------------------------------------------- */

static rd_kafka_t *new_consumer(const config_t *cfg, kafka_io_t *io, char *errstr,
                                size_t errstr_size) {
    rd_kafka_conf_t *conf = kafka_conf_consumer_new(cfg, errstr, errstr_size);
    if (!conf) return NULL;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_opaque(conf, io);
    return kafka_conf_create_client(RD_KAFKA_CONSUMER, conf, "consumer", errstr, errstr_size);
}

rd_kafka_t *kafka_io_new_producer(const config_t *cfg, kafka_io_t *io, char *errstr,
                                  size_t errstr_size) {
    rd_kafka_conf_t *conf = kafka_conf_producer_new(cfg, errstr, errstr_size);
    if (!conf) return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_report_cb);
    rd_kafka_conf_set_opaque(conf, io);
    return kafka_conf_create_client(RD_KAFKA_PRODUCER, conf, "producer", errstr, errstr_size);
}

kafka_io_t *kafka_io_new(const config_t *cfg, const kafka_io_callbacks_t *callbacks,
                         char *errstr, size_t errstr_size) {
    kafka_io_t *io = calloc(1, sizeof(*io));
    if (!io) {
        errstr_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    io->cb = *callbacks;
    io->cfg = cfg;
    io->transactional = config_exactly_once(cfg);
    io->txn_offsets = rd_kafka_topic_partition_list_new(16);
    io->txn_since_ms = -1;
    io->producer = kafka_io_start_producer(io, errstr, errstr_size);
    if (io->producer) io->consumer = new_consumer(cfg, io, errstr, errstr_size);
    if (!io->producer || !io->consumer) {
        if (io->producer) rd_kafka_destroy(io->producer);
        rd_kafka_topic_partition_list_destroy(io->txn_offsets);
        free(io);
        return NULL;
    }
    return io;
}

int kafka_io_subscribe(kafka_io_t *io, const char *topic, char *errstr, size_t errstr_size) {
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(io->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        errstr_set(errstr, errstr_size, "subscribe to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

int kafka_io_produce(kafka_io_t *io, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, const char *const *headers,
                     void *record_opaque, char *errstr, size_t errstr_size) {
    if (io->transactional && !io->txn_doomed && kafka_io_txn_begin(io) != 0) io->txn_doomed = 1;
    if (io->txn_doomed) return 0; /* the transaction aborts; what it held goes again */
    for (;;) {
        rd_kafka_headers_t *hdrs = NULL;
        if (headers) {
            size_t n = 0;
            while (headers[n]) n += 2;
            hdrs = rd_kafka_headers_new(n / 2);
            for (size_t i = 0; headers[i]; i += 2)
                rd_kafka_header_add(hdrs, headers[i], -1, headers[i + 1], -1);
        }
        rd_kafka_resp_err_t err = rd_kafka_producev(
            io->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(record_opaque), RD_KAFKA_V_END);
        if (!err) { /* the record now owns hdrs */
            io->produced++;
            return 0;
        }
        if (hdrs) rd_kafka_headers_destroy(hdrs);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            /* Serve delivery reports to make room, then try again. */
            rd_kafka_poll(io->producer, 100);
            continue;
        }
        if (io->transactional) { /* a transaction in error: it aborts, and goes again */
            log_warn("kafka", "produce to %s inside a transaction: %s; the transaction will "
                     "abort", topic, rd_kafka_err2str(err));
            io->txn_doomed = 1;
            return 0;
        }
        errstr_set(errstr, errstr_size, "produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
}

/* Serves delivery reports until each produced record has one. Unlike
 * rd_kafka_flush(), which sleeps in 10 ms steps, rd_kafka_poll() returns
 * as soon as a report arrives, so a batch waits for its acks, not longer. */
static int wait_deliveries(kafka_io_t *io, int timeout_ms) {
    int64_t start = clock_monotonic_ms();
    while (io->delivered + io->delivery_failures < io->produced) {
        int64_t elapsed = clock_monotonic_ms() - start;
        if (elapsed >= timeout_ms) return -1;
        rd_kafka_poll(io->producer, (int)(timeout_ms - elapsed));
    }
    return 0;
}

int kafka_io_await_deliveries(kafka_io_t *io, uint64_t failures_before) {
    while (wait_deliveries(io, 1000) != 0)
        log_warn("kafka", "waiting for %d produced record(s) to be acknowledged",
                 rd_kafka_outq_len(io->producer));
    if (io->delivery_failures != failures_before) {
        log_error("kafka", "%llu records could not be delivered; stopping without "
                  "committing, so the batch is processed again after restart",
                  (unsigned long long)(io->delivery_failures - failures_before));
        return -1;
    }
    return 0;
}

void kafka_io_serve_deliveries(kafka_io_t *io) { rd_kafka_poll(io->producer, 0); }

void kafka_io_flush(kafka_io_t *io) { rd_kafka_flush(io->producer, 10000); }

uint64_t kafka_io_delivery_failures(const kafka_io_t *io) { return io->delivery_failures; }

/* The record's fields as kafka_msg_t; it keeps the record until released. */
static int take_message(rd_kafka_message_t *m, const char *what, kafka_msg_t *out) {
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("kafka", "%s: %s", what, rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return 0;
    }
    *out = (kafka_msg_t){.topic = rd_kafka_topic_name(m->rkt), .partition = m->partition,
                         .offset = m->offset, .key = m->key, .key_len = m->key_len,
                         .value = m->payload, .value_len = m->len,
                         .timestamp_ms = rd_kafka_message_timestamp(m, NULL), .handle_ = m};
    return 1;
}

int kafka_io_poll(kafka_io_t *io, int timeout_ms, kafka_msg_t *out) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(io->consumer, timeout_ms);
    return m ? take_message(m, "consumer", out) : 0;
}

const void *kafka_msg_header(const kafka_msg_t *msg, const char *name, size_t *size) {
    rd_kafka_headers_t *headers = NULL;
    const void *value = NULL;
    *size = 0;
    if (!msg->handle_ ||
        rd_kafka_message_headers(msg->handle_, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(headers, name, &value, size) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    return value;
}

void kafka_msg_release(kafka_msg_t *msg) {
    if (msg->handle_) rd_kafka_message_destroy(msg->handle_);
    msg->handle_ = NULL;
}

void kafka_io_pause_all(kafka_io_t *io, int paused) {
    rd_kafka_topic_partition_list_t *assignment = NULL;
    if (rd_kafka_assignment(io->consumer, &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    rd_kafka_resp_err_t err = paused ? rd_kafka_pause_partitions(io->consumer, assignment)
                                     : rd_kafka_resume_partitions(io->consumer, assignment);
    if (err) log_warn("kafka", "%s partitions: %s", paused ? "pause" : "resume",
                      rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(assignment);
}

void kafka_io_seek(kafka_io_t *io, const char *topic, int32_t partition, int64_t offset) {
    rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(seek, topic, partition)->offset = offset;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(io->consumer, seek, SEEK_TIMEOUT_MS);
    if (error) {
        log_error("kafka", "seek [%d] to %lld: %s", (int)partition, (long long)offset,
                  rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    rd_kafka_topic_partition_list_destroy(seek);
}

void kafka_io_store_offsets(kafka_io_t *io, const char *topic, const int32_t *partitions,
                            const int64_t *next_offsets, size_t count) {
    if (count == 0) return;
    if (io->transactional) { /* committed with the transaction's records */
        kafka_io_txn_add_offsets(io, topic, partitions, next_offsets, count);
        return;
    }
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new((int)count);
    for (size_t i = 0; i < count; i++)
        rd_kafka_topic_partition_list_add(offsets, topic, partitions[i])->offset =
            next_offsets[i];
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(io->consumer, offsets);
    if (err) log_warn("kafka", "storing offsets: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(offsets);
}

/* The partitions of topic, from rk's metadata: NULL with errstr on failure. */
static const rd_kafka_metadata_topic_t *topic_metadata(rd_kafka_t *rk, const char *topic,
                                                       int timeout_ms,
                                                       const rd_kafka_metadata_t **md,
                                                       char *errstr, size_t errstr_size) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rkt ? rd_kafka_metadata(rk, 0, rkt, md, timeout_ms)
                                  : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (rkt) rd_kafka_topic_destroy(rkt);
    if (err) {
        errstr_set(errstr, errstr_size, "%s: %s", topic, rd_kafka_err2str(err));
        return NULL;
    }
    if ((*md)->topic_cnt != 1 || (*md)->topics[0].err || (*md)->topics[0].partition_cnt == 0) {
        errstr_set(errstr, errstr_size, "%s: %s", topic,
                   (*md)->topic_cnt == 1 && (*md)->topics[0].err
                       ? rd_kafka_err2str((*md)->topics[0].err)
                       : "no partitions (create the topic first)");
        rd_kafka_metadata_destroy(*md);
        return NULL;
    }
    return &(*md)->topics[0];
}

int kafka_io_partition_count(kafka_io_t *io, const char *topic, int timeout_ms) {
    const rd_kafka_metadata_t *md = NULL;
    char errstr[256];
    const rd_kafka_metadata_topic_t *t =
        topic_metadata(io->consumer, topic, timeout_ms, &md, errstr, sizeof(errstr));
    if (!t) return -1;
    int count = t->partition_cnt;
    rd_kafka_metadata_destroy(md);
    return count;
}

void kafka_io_destroy(kafka_io_t *io) {
    if (!io) return;
    if (io->consumer) {
        rd_kafka_resp_err_t err = rd_kafka_consumer_close(io->consumer);
        if (err) log_warn("kafka", "consumer close: %s", rd_kafka_err2str(err));
        rd_kafka_destroy(io->consumer);
    }
    if (io->producer) kafka_io_txn_abort_at_exit(io);
    if (io->producer) {
        if (rd_kafka_flush(io->producer, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            log_error("kafka", "%d records still undelivered at shutdown",
                      rd_kafka_outq_len(io->producer));
        rd_kafka_destroy(io->producer);
    }
    rd_kafka_topic_partition_list_destroy(io->txn_offsets);
    free(io->aborted);
    free(io);
}

/* ---- readers of a whole topic ------------------------------------------ */


/* Assigns every partition of the topic from its beginning, and remembers
 * the high watermarks to read up to. */
static int assign_whole_topic(kafka_reader_t *r, char *errstr, size_t errstr_size) {
    const rd_kafka_metadata_t *md = NULL;
    const rd_kafka_metadata_topic_t *t =
        topic_metadata(r->rk, r->topic, METADATA_TIMEOUT_MS, &md, errstr, errstr_size);
    if (!t) return -1;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->partition_cnt);
    r->ends = rd_kafka_topic_partition_list_new(t->partition_cnt);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; i < t->partition_cnt && !err; i++) {
        int32_t id = t->partitions[i].id;
        int64_t low = 0, high = 0;
        rd_kafka_topic_partition_list_add(parts, r->topic, id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_query_watermark_offsets(r->rk, r->topic, id, &low, &high,
                                               METADATA_TIMEOUT_MS);
        rd_kafka_topic_partition_list_add(r->ends, r->topic, id)->offset = high;
    }
    rd_kafka_metadata_destroy(md);
    if (!err) err = rd_kafka_assign(r->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        errstr_set(errstr, errstr_size, "%s: %s", r->topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

kafka_reader_t *kafka_reader_new(const config_t *cfg, const char *topic, char *errstr,
                                 size_t errstr_size) {
    kafka_reader_t *r = calloc(1, sizeof(*r));
    if (r) r->topic = strdup(topic);
    if (!r || !r->topic) {
        errstr_set(errstr, errstr_size, "out of memory");
        kafka_reader_destroy(r);
        return NULL;
    }
    r->rk = kafka_conf_reader_new(cfg, errstr, errstr_size);
    if (!r->rk || assign_whole_topic(r, errstr, errstr_size) != 0) {
        kafka_reader_destroy(r);
        return NULL;
    }
    return r;
}

/* The position (not the last record + 1) also moves past compacted-away
 * offsets and transaction markers. */
int kafka_reader_caught_up(kafka_reader_t *r) {
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(r->ends);
    int done = rd_kafka_position(r->rk, pos) == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; done && i < pos->cnt; i++)
        if (r->ends->elems[i].offset > 0 && pos->elems[i].offset < r->ends->elems[i].offset)
            done = 0;
    rd_kafka_topic_partition_list_destroy(pos);
    return done;
}

int kafka_reader_poll(kafka_reader_t *r, int timeout_ms, kafka_msg_t *out) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, timeout_ms);
    return m ? take_message(m, r->topic, out) : 0;
}

void kafka_reader_destroy(kafka_reader_t *r) {
    if (!r) return;
    if (r->rk) {
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    if (r->ends) rd_kafka_topic_partition_list_destroy(r->ends);
    free(r->topic);
    free(r);
}

const char *kafka_io_library_version(void) { return rd_kafka_version_str(); }
