/* kafka_io_admin: what fraud-repartition asks of Kafka, as part of the
 * kafka_io module: the group's committed offsets against the partitions'
 * ends, and where a producer's partitioner puts a key. */
#include "kafka_io.h"

#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "errstr.h"
#include "kafka_io_conf.h"

#define ADMIN_TIMEOUT_MS 10000

int32_t kafka_io_partition_of_key(const char *partitioner, const void *key, size_t len,
                                  int32_t count) {
    /* None of these reads its topic or opaques when the key is not NULL. */
    if (strcmp(partitioner, "murmur2_random") == 0 || strcmp(partitioner, "murmur2") == 0)
        return rd_kafka_msg_partitioner_murmur2(NULL, key, len, count, NULL, NULL);
    if (strcmp(partitioner, "consistent_random") == 0 || strcmp(partitioner, "consistent") == 0)
        return rd_kafka_msg_partitioner_consistent(NULL, key, len, count, NULL, NULL);
    if (strcmp(partitioner, "fnv1a_random") == 0 || strcmp(partitioner, "fnv1a") == 0)
        return rd_kafka_msg_partitioner_fnv1a(NULL, key, len, count, NULL, NULL);
    return -1;
}

static int32_t partition_count(rd_kafka_t *rk, const char *topic, char *errstr,
                               size_t errstr_size) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, ADMIN_TIMEOUT_MS)
                                  : RD_KAFKA_RESP_ERR__INVALID_ARG;
    int32_t count = -1;
    if (err)
        errstr_set(errstr, errstr_size, "metadata of %s: %s", topic, rd_kafka_err2str(err));
    else if (md->topic_cnt != 1 || md->topics[0].err)
        errstr_set(errstr, errstr_size, "topic %s: %s", topic,
                   md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not found");
    else
        count = md->topics[0].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    if (rkt) rd_kafka_topic_destroy(rkt);
    return count;
}

int kafka_io_group_positions(const config_t *cfg, const char *topic,
                             kafka_group_position_t **out, int32_t *count, char *errstr,
                             size_t errstr_size) {
    *out = NULL;
    *count = 0;
    rd_kafka_conf_t *conf = kafka_conf_consumer_new(cfg, errstr, errstr_size);
    rd_kafka_t *rk = conf ? kafka_conf_create_client(RD_KAFKA_CONSUMER, conf, "consumer", errstr,
                                                     errstr_size)
                          : NULL;
    if (!rk) return -1;
    int rc = -1;
    rd_kafka_topic_partition_list_t *parts = NULL;
    int32_t n = partition_count(rk, topic, errstr, errstr_size);
    kafka_group_position_t *positions = n > 0 ? calloc((size_t)n, sizeof(*positions)) : NULL;
    if (!positions) goto done;
    parts = rd_kafka_topic_partition_list_new(n);
    for (int32_t p = 0; p < n; p++) rd_kafka_topic_partition_list_add(parts, topic, p);
    /* Committed offsets of the group, without joining it. */
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, parts, ADMIN_TIMEOUT_MS);
    if (err) {
        errstr_set(errstr, errstr_size, "committed offsets of group %s: %s", cfg->group_id,
                   rd_kafka_err2str(err));
        goto done;
    }
    for (int32_t p = 0; p < n; p++) {
        int64_t low, high;
        err = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, ADMIN_TIMEOUT_MS);
        if (err) {
            errstr_set(errstr, errstr_size, "end of %s [%d]: %s", topic, (int)p,
                       rd_kafka_err2str(err));
            goto done;
        }
        positions[p].committed = parts->elems[p].offset >= 0 ? parts->elems[p].offset : -1;
        positions[p].end = high;
    }
    *out = positions;
    *count = n;
    positions = NULL;
    rc = 0;
done:
    free(positions);
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return rc;
}
