/* harness_kafka: librdkafka's mock cluster, or a real Apache Kafka broker
 * (TEST_KAFKA_BROKER=real), with the test's own producer and reader. */
#include "harness.h"
#include "harness_private.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

bool kafka_use_real_broker(void) {
    const char *which = getenv("TEST_KAFKA_BROKER");
    return which && strcmp(which, "real") == 0;
}

static void real_broker_harness_spawn(kafka_cluster_t *kc) {
    char port[16], cport[16], log_path[300];
    snprintf(port, sizeof(port), "%d", kc->broker_port);
    snprintf(cport, sizeof(cport), "%d", kc->controller_port);
    snprintf(log_path, sizeof(log_path), "%s/broker.log", kc->broker_dir);
    const char *argv[] = {FRAUD_SOURCE_DIR "/tests/kafka/kafka.sh", "run", kc->broker_dir, port,
                          cport, NULL};
    kc->broker_pid = harness_spawn(argv, log_path);
}

static void dump_broker_log(const kafka_cluster_t *kc) {
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "tail -n 30 '%s/broker.log' >&2", kc->broker_dir);
    if (system(cmd) != 0) fprintf(stderr, "(no broker log)\n");
}

/* Until the broker answers a metadata request (the JVM takes seconds). */
static void real_broker_wait_ready(const kafka_cluster_t *kc) {
    int64_t deadline = mono_ms() + 120000;
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(kc->rk, 0, NULL, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            int brokers = md->broker_cnt;
            rd_kafka_metadata_destroy(md);
            if (brokers > 0) return;
        }
        int status;
        if (waitpid(kc->broker_pid, &status, WNOHANG) == kc->broker_pid) {
            dump_broker_log(kc);
            DIE("the Kafka broker exited during start (status %d)", status);
        }
        if (mono_ms() > deadline) {
            dump_broker_log(kc);
            DIE("the Kafka broker at %s did not become ready in 120 s", kc->bootstrap);
        }
        sleep_ms(200);
    }
}

/* CreateTopics through the admin API, then waits until every partition has
 * a leader, so the first produce does not race the controller. */
static void real_broker_create_topic(const kafka_cluster_t *kc, const char *topic,
                                     int partitions) {
    char errstr[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
    if (!nt) DIE("NewTopic %s: %s", topic, errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(kc->rk);
    rd_kafka_CreateTopics(kc->rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (!ev) DIE("CreateTopics %s: no answer", topic);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **results = res ? rd_kafka_CreateTopics_result_topics(res, &n)
                                                  : NULL;
    if (rd_kafka_event_error(ev)) DIE("CreateTopics %s: %s", topic, rd_kafka_event_error_string(ev));
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_topic_result_error(results[i]) &&
            rd_kafka_topic_result_error(results[i]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            DIE("CreateTopics %s: %s", topic, rd_kafka_topic_result_error_string(results[i]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    int64_t deadline = mono_ms() + 30000;
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(kc->rk, topic, NULL);
        int led = 0;
        if (rd_kafka_metadata(kc->rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && !md->topics[0].err &&
                md->topics[0].partition_cnt == partitions) {
                led = 1;
                for (int i = 0; i < partitions; i++)
                    if (md->topics[0].partitions[i].leader < 0) led = 0;
            }
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
        if (led) return;
        if (mono_ms() > deadline) DIE("topic %s has no leaders after 30 s", topic);
        sleep_ms(100);
    }
}

static void real_broker_start(kafka_cluster_t *kc) {
    char errstr[512];
    snprintf(kc->broker_dir, sizeof(kc->broker_dir), "/tmp/fraud-kafka-test-XXXXXX");
    if (!mkdtemp(kc->broker_dir)) DIE("mkdtemp: %s", strerror(errno));
    kc->broker_port = harness_free_port();
    kc->controller_port = harness_free_port();
    snprintf(kc->bootstrap, sizeof(kc->bootstrap), "127.0.0.1:%d", kc->broker_port);
    real_broker_harness_spawn(kc);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", kc->bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
    kc->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!kc->rk) DIE("rd_kafka_new: %s", errstr);
    int64_t started = mono_ms();
    real_broker_wait_ready(kc);
    fprintf(stderr, "harness: real Apache Kafka broker at %s ready in %lld ms (%s)\n",
            kc->bootstrap, (long long)(mono_ms() - started), kc->broker_dir);
}

static void real_broker_halt(kafka_cluster_t *kc) {
    if (kc->broker_pid <= 0) return;
    kill(kc->broker_pid, SIGTERM);
    if (harness_wait_exit(kc->broker_pid, 60000) < 0)
        fprintf(stderr, "harness: the Kafka broker did not stop in 60 s; killed\n");
    kc->broker_pid = 0;
}

void kafka_broker_restart(kafka_cluster_t *kc) {
    if (kc->mock) DIE("kafka_broker_restart needs a real broker");
    real_broker_halt(kc);
    real_broker_harness_spawn(kc);
    int64_t started = mono_ms();
    real_broker_wait_ready(kc);
    fprintf(stderr, "harness: Kafka broker restarted in %lld ms\n",
            (long long)(mono_ms() - started));
}

void kafka_cluster_start(kafka_cluster_t *kc, int input_partitions) {
    char errstr[512];
    memset(kc, 0, sizeof(*kc));
    if (kafka_use_real_broker()) {
        real_broker_start(kc);
        real_broker_create_topic(kc, "payments", input_partitions);
        real_broker_create_topic(kc, "fraud-alerts", 1);
        real_broker_create_topic(kc, "payments-dlq", 1);
        return;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    kc->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!kc->rk) DIE("rd_kafka_new: %s", errstr);
    kc->mock = rd_kafka_mock_cluster_new(kc->rk, 1);
    if (!kc->mock) DIE("mock cluster");
    if (rd_kafka_mock_topic_create(kc->mock, "payments", input_partitions, 1) ||
        rd_kafka_mock_topic_create(kc->mock, "fraud-alerts", 1, 1) ||
        rd_kafka_mock_topic_create(kc->mock, "payments-dlq", 1, 1))
        DIE("topic create");
    snprintf(kc->bootstrap, sizeof(kc->bootstrap), "%s",
             rd_kafka_mock_cluster_bootstraps(kc->mock));
}

void kafka_create_topic(const kafka_cluster_t *kc, const char *topic, int partitions) {
    if (!kc->mock) {
        real_broker_create_topic(kc, topic, partitions);
        return;
    }
    if (rd_kafka_mock_topic_create(kc->mock, topic, partitions, 1)) DIE("topic create %s", topic);
}

void kafka_cluster_stop(kafka_cluster_t *kc) {
    if (kc->mock) rd_kafka_mock_cluster_destroy(kc->mock);
    if (kc->rk) rd_kafka_destroy(kc->rk);
    kc->mock = NULL;
    kc->rk = NULL;
    if (kc->broker_dir[0]) {
        real_broker_halt(kc);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", kc->broker_dir);
        if (getenv("TEST_KEEP_BROKER_DIR") == NULL && system(cmd) != 0)
            fprintf(stderr, "harness: could not remove %s\n", kc->broker_dir);
        kc->broker_dir[0] = '\0';
    }
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    if (level <= 3) fprintf(stderr, "test client: %s: %s\n", fac, buf);
}

void kafka_produce(const kafka_cluster_t *kc, const char *topic, const char *const *keys,
                   const char *const *values, size_t count) {
    kafka_produce_bytes(kc, topic, keys, NULL, values, NULL, count);
}

static size_t length_of(const char *const *texts, const size_t *lens, size_t i) {
    if (!texts || !texts[i]) return 0;
    return lens ? lens[i] : strlen(texts[i]);
}

void kafka_produce_bytes(const kafka_cluster_t *kc, const char *topic, const char *const *keys,
                         const size_t *key_lens, const char *const *values,
                         const size_t *value_lens, size_t count) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", kc->bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "5", NULL, 0);
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p) DIE("producer: %s", errstr);
    for (size_t i = 0; i < count; i++) {
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC(topic),
                RD_KAFKA_V_KEY(keys && keys[i] ? keys[i] : NULL,
                               length_of(keys, key_lens, i)),
                RD_KAFKA_V_VALUE((void *)values[i], length_of(values, value_lens, i)),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (!err) break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) DIE("produce: %s", rd_kafka_err2str(err));
            rd_kafka_poll(p, 50);
        }
    }
    if (rd_kafka_flush(p, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) DIE("produce flush timed out");
    rd_kafka_destroy(p);
}

static char *dup_bytes(const void *p, size_t n) {
    char *out = malloc(n + 1);
    if (!out) DIE("oom");
    if (n) memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

/* A consumer of group that never commits and logs only errors. */
static rd_kafka_t *quiet_consumer(const kafka_cluster_t *kc, const char *group) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", kc->bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!c) DIE("consumer: %s", errstr);
    return c;
}

record_list_t kafka_read_topic(const kafka_cluster_t *kc, const char *topic, size_t expected,
                               int timeout_ms) {
    record_list_t list = {0};
    size_t cap = 0;
    rd_kafka_t *c = quiet_consumer(kc, "test-reader");

    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, topic, NULL);
    if (rd_kafka_metadata(c, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        DIE("metadata for %s", topic);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    int64_t deadline = mono_ms() + timeout_ms, settle_until = -1;
    while (mono_ms() < deadline && (settle_until < 0 || mono_ms() < settle_until)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        if (!m->err) {
            if (list.count == cap) {
                cap = cap ? cap * 2 : 64;
                list.items = realloc(list.items, cap * sizeof(*list.items));
                if (!list.items) DIE("oom");
            }
            record_t *r = &list.items[list.count++];
            r->key = m->key ? dup_bytes(m->key, m->key_len) : NULL;
            r->key_len = m->key_len;
            r->value = dup_bytes(m->payload, m->len);
            r->tombstone = m->payload == NULL;
            r->value_len = m->len;
            r->partition = m->partition;
            r->offset = m->offset;
            char hbuf[4096] = "";
            size_t hlen = 0;
            rd_kafka_headers_t *hdrs;
            if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                const char *name;
                const void *val;
                size_t vlen;
                for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &vlen); i++)
                    hlen += (size_t)snprintf(hbuf + hlen, sizeof(hbuf) - hlen, "%s=%.*s\n", name,
                                             (int)vlen, (const char *)val);
            }
            r->headers = strdup(hbuf);
            /* Once the expected count is in, wait briefly for duplicates. */
            if (list.count >= expected && settle_until < 0) settle_until = mono_ms() + 500;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return list;
}

cJSON *record_json(const record_t *r) {
    char *text = strndup(r->value, r->value_len);
    cJSON *json = text ? cJSON_Parse(text) : NULL;
    free(text);
    return json;
}

void record_list_free(record_list_t *list) {
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].key);
        free(list->items[i].value);
        free(list->items[i].headers);
    }
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

long long kafka_committed_total(const kafka_cluster_t *kc, const char *group, const char *topic,
                                int partitions) {
    rd_kafka_t *c = quiet_consumer(kc, group);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int i = 0; i < partitions; i++) rd_kafka_topic_partition_list_add(parts, topic, i);
    long long total = -1;
    if (rd_kafka_committed(c, parts, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        total = 0;
        for (int i = 0; i < parts->cnt; i++)
            if (parts->elems[i].offset > 0) total += parts->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(c);
    return total;
}
