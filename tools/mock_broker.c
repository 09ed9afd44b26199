/* fraud-mock-broker: a development Kafka cluster on loopback.
 *
 * librdkafka's mock cluster speaks the Kafka protocol over TCP, with
 * consumer groups and idempotent producing, and needs no JVM. It is what
 * `make demo` and the shell tests use as a broker. It prints its bootstrap
 * address on stdout (and to --bootstrap-file), then serves until SIGTERM.
 * Topics: -t name:partitions, repeatable. Not for production data. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop_flag = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void usage(void) {
    fprintf(stderr, "Usage: fraud-mock-broker [-b brokers] [-t topic:partitions]... "
                    "[--bootstrap-file FILE]\n");
}

int main(int argc, char **argv) {
    char errstr[512];
    int brokers = 1;
    const char *bootstrap_file = NULL;
    const char *topics[64];
    int topic_count = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
            brokers = atoi(argv[++i]);
        } else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc && topic_count < 64) {
            topics[topic_count++] = argv[++i];
        } else if (strcmp(argv[i], "--bootstrap-file") == 0 && i + 1 < argc) {
            bootstrap_file = argv[++i];
        } else {
            usage();
            return 2;
        }
    }
    if (brokers < 1 || brokers > 9) {
        fprintf(stderr, "fraud-mock-broker: -b must be 1..9\n");
        return 2;
    }

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "fraud-mock-broker: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(rk, brokers);
    if (!cluster) {
        fprintf(stderr, "fraud-mock-broker: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < topic_count; i++) {
        char name[256];
        const char *colon = strrchr(topics[i], ':');
        int partitions = colon ? atoi(colon + 1) : 1;
        snprintf(name, sizeof(name), "%.*s",
                 (int)(colon ? (size_t)(colon - topics[i]) : strlen(topics[i])), topics[i]);
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
            cluster, name, partitions > 0 ? partitions : 1, brokers < 3 ? brokers : 3);
        if (err) {
            fprintf(stderr, "fraud-mock-broker: topic %s: %s\n", name, rd_kafka_err2str(err));
            rd_kafka_mock_cluster_destroy(cluster);
            rd_kafka_destroy(rk);
            return 1;
        }
    }

    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(cluster);
    printf("%s\n", bootstrap);
    fflush(stdout);
    if (bootstrap_file) {
        /* Written atomically so a waiting script never reads half a line. */
        char tmp[1024];
        snprintf(tmp, sizeof(tmp), "%s.tmp", bootstrap_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", bootstrap) < 0 || fclose(f) != 0 ||
            rename(tmp, bootstrap_file) != 0) {
            fprintf(stderr, "fraud-mock-broker: cannot write %s\n", bootstrap_file);
            rd_kafka_mock_cluster_destroy(cluster);
            rd_kafka_destroy(rk);
            return 1;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    while (!stop_flag) {
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(rk);
    return 0;
}
