/* harness_kafka: librdkafka's mock cluster (the Kafka protocol over TCP),
 * in-process, or with TEST_KAFKA_BROKER=real a real Apache Kafka broker per
 * test (tests/kafka/kafka.sh run, a JVM child process); the test's own
 * producer, and a reader of whole topics. */
#ifndef FRAUD_TEST_HARNESS_KAFKA_H
#define FRAUD_TEST_HARNESS_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* The Kafka the tests talk to: librdkafka's mock cluster, or, with
 * TEST_KAFKA_BROKER=real in the environment, a real Apache Kafka broker
 * (tests/kafka/kafka.sh run) started fresh for each test in a temporary
 * directory. */
typedef struct kafka_cluster {
    rd_kafka_t *rk;                /* the test's producer; admin requests too */
    rd_kafka_mock_cluster_t *mock; /* NULL on a real broker */
    char bootstrap[256];
    pid_t broker_pid;              /* real broker only */
    char broker_dir[256];
    int broker_port, controller_port;
} kafka_cluster_t;

typedef struct record {
    char *key;
    size_t key_len;
    char *value;      /* "" for a tombstone, as for an empty value */
    size_t value_len;
    bool tombstone;   /* the record had no value at all */
    int32_t partition;
    int64_t offset;
    char *headers; /* "name=value\n" lines */
} record_t;

typedef struct record_list {
    record_t *items;
    size_t count;
} record_list_t;

/* True when TEST_KAFKA_BROKER=real asks for a real broker. */
bool kafka_use_real_broker(void);

/* Creates the cluster with the service's three topics. */
void kafka_cluster_start(kafka_cluster_t *kc, int input_partitions);
/* Real broker only: stops it cleanly (SIGTERM) and starts it again on the
 * same ports and log directory, waiting until it serves again. */
void kafka_broker_restart(kafka_cluster_t *kc);
void kafka_cluster_stop(kafka_cluster_t *kc);
/* Creates one more topic (single replica). */
void kafka_create_topic(const kafka_cluster_t *kc, const char *topic, int partitions);

/* Produces key/value records and waits for every acknowledgement. */
void kafka_produce(const kafka_cluster_t *kc, const char *topic, const char *const *keys,
                   const char *const *values, size_t count);
/* The same with explicit lengths (NULL: strlen), for keys and values that
 * hold NUL bytes. */
void kafka_produce_bytes(const kafka_cluster_t *kc, const char *topic, const char *const *keys,
                         const size_t *key_lens, const char *const *values,
                         const size_t *value_lens, size_t count);

/* Reads a whole topic from the beginning until `expected` records have
 * arrived (or timeout_ms passed), and a little longer to catch extras. */
record_list_t kafka_read_topic(const kafka_cluster_t *kc, const char *topic, size_t expected,
                               int timeout_ms);
void record_list_free(record_list_t *list);

struct cJSON;
/* A record's value parsed as JSON (cJSON_Delete() it); NULL if it is not. */
struct cJSON *record_json(const record_t *r);

/* The sum over topic's partitions of what group has committed (a partition
 * with no commit counts 0), or -1 when the coordinator did not answer. */
long long kafka_committed_total(const kafka_cluster_t *kc, const char *group, const char *topic,
                                int partitions);

#endif
