/* harness: real servers for integration tests, started and stopped by the
 * test itself on 127.0.0.1.
 *
 * - redis-server on a free port, in a temporary directory;
 * - librdkafka's mock cluster (the Kafka protocol over TCP), in-process, or
 *   with TEST_KAFKA_BROKER=real a real Apache Kafka broker per test
 *   (tests/kafka/kafka.sh run, a JVM child process);
 * - the real fraud-detector binary as a child process.
 * Children get PR_SET_PDEATHSIG, so a crashed test leaves nothing behind. */
#ifndef FRAUD_TEST_HARNESS_H
#define FRAUD_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

typedef struct redis_server {
    pid_t pid;
    int port;
    char dir[256];
    bool persistent;       /* AOF with fsync always */
    char password[64];     /* requirepass when not empty */
} redis_server_t;

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

typedef struct service_proc {
    pid_t pid;
    char log_path[512];
} service_proc_t;

typedef struct record {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int32_t partition;
    int64_t offset;
    char *headers; /* "name=value\n" lines */
} record_t;

typedef struct record_list {
    record_t *items;
    size_t count;
} record_list_t;

/* A free TCP port on 127.0.0.1 (bound then released). */
int harness_free_port(void);

/* Starts redis-server and waits until it answers PING. Set srv->password
 * before the call for a server that requires AUTH. */
void redis_server_start(redis_server_t *srv, bool persistent);
void redis_server_stop(redis_server_t *srv);
/* Stops the process but keeps its directory (and AOF), then starts it again
 * on the same port: an outage that loses nothing acknowledged. */
void redis_server_halt(redis_server_t *srv);
void redis_server_resume(redis_server_t *srv);
redisContext *redis_server_connect(const redis_server_t *srv);

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

/* Starts build/fraud-detector with -X flags for the given servers plus
 * extra NULL-terminated "key=value" strings. */
void service_start(service_proc_t *svc, const kafka_cluster_t *kc, const redis_server_t *rs,
                   const char *const *extra);
/* The same with -c config_file first (NULL: none). */
void service_start_with_file(service_proc_t *svc, const kafka_cluster_t *kc,
                             const redis_server_t *rs, const char *config_file,
                             const char *const *extra);
/* True once a line of the service's log contains needle. */
bool service_wait_log(const service_proc_t *svc, const char *needle, int timeout_ms);
/* Sends a raw HTTP request to 127.0.0.1:port; returns the status (-1 on
 * no answer) and the body. */
int http_request(int port, const char *request, char *body, size_t body_size);
int http_get(int port, const char *path, char *body, size_t body_size);

/* Sends sig to the running service. */
void service_signal(const service_proc_t *svc, int sig);
/* SIGTERM, wait; returns the exit status (or 128+signal). */
int service_stop(service_proc_t *svc);
/* SIGKILL, wait. */
void service_kill(service_proc_t *svc);
/* Runs the binary to completion with argv; returns exit status, stderr in buf. */
int service_run_once(const char *const *args, char *stderr_buf, size_t stderr_size);

/* Waits until the HASH field of a user reaches `want`. True when it did. */
bool wait_for_user_field(redisContext *c, const char *user, const char *field,
                         const char *want, int timeout_ms);

/* The key holding a user's state, fraud:{<topic>/<partition>}:user:<id>,
 * found with KEYS (tests only). False when the user has none. */
bool redis_find_user_key(redisContext *c, const char *user, char *key, size_t key_size);

/* HGET as a malloc'd string (NULL when absent); caller frees. */
char *redis_hget(redisContext *c, const char *key, const char *field);

void sleep_ms(int ms);
int64_t mono_ms(void);

#endif
