#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIE(...)                                   \
    do {                                           \
        fprintf(stderr, "harness: " __VA_ARGS__);  \
        fprintf(stderr, "\n");                     \
        abort();                                   \
    } while (0)

void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int harness_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(addr);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        DIE("cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(addr.sin_port);
}

static pid_t spawn(const char *const *argv, const char *log_path) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) DIE("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int fd = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid, int timeout_ms) {
    int status;
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        sleep_ms(20);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

static redisContext *connect_authed(const redis_server_t *srv) {
    redisContext *c = redisConnect("127.0.0.1", srv->port);
    if (!c || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    if (srv->password[0]) {
        redisReply *r = redisCommand(c, "AUTH %s", srv->password);
        if (r) freeReplyObject(r);
    }
    return c;
}

static void launch_redis(redis_server_t *srv) {
    char port[16], log_path[300];
    snprintf(port, sizeof(port), "%d", srv->port);
    snprintf(log_path, sizeof(log_path), "%s/redis.log", srv->dir);
    const char *argv[20] = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                            "--dir", srv->dir, "--save", "",
                            "--appendonly", srv->persistent ? "yes" : "no",
                            "--appendfsync", "always"};
    int n = 13;
    if (srv->password[0]) {
        argv[n++] = "--requirepass";
        argv[n++] = srv->password;
    }
    argv[n] = NULL;
    srv->pid = spawn(argv, log_path);
    int64_t deadline = mono_ms() + 10000;
    while (mono_ms() < deadline) {
        redisContext *c = connect_authed(srv);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;
            if (r) freeReplyObject(r);
            redisFree(c);
            if (ok) return;
        }
        sleep_ms(50);
    }
    DIE("redis-server did not start on port %d (see %s)", srv->port, log_path);
}

void redis_server_start(redis_server_t *srv, bool persistent) {
    snprintf(srv->dir, sizeof(srv->dir), "/tmp/fraud-test-redis-XXXXXX");
    if (!mkdtemp(srv->dir)) DIE("mkdtemp: %s", strerror(errno));
    srv->port = harness_free_port();
    srv->persistent = persistent;
    launch_redis(srv);
}

void redis_server_halt(redis_server_t *srv) {
    kill(srv->pid, SIGTERM);
    wait_exit(srv->pid, 10000);
    srv->pid = 0;
}

void redis_server_resume(redis_server_t *srv) { launch_redis(srv); }

void redis_server_stop(redis_server_t *srv) {
    char cmd[400];
    if (srv->pid > 0) {
        kill(srv->pid, SIGTERM);
        wait_exit(srv->pid, 10000);
        srv->pid = 0;
    }
    if (srv->dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", srv->dir);
        if (system(cmd) != 0) fprintf(stderr, "harness: could not remove %s\n", srv->dir);
        srv->dir[0] = '\0';
    }
}

redisContext *redis_server_connect(const redis_server_t *srv) {
    redisContext *c = connect_authed(srv);
    if (!c) DIE("connect to redis on port %d", srv->port);
    return c;
}

bool redis_find_user_key(redisContext *c, const char *user, char *key, size_t key_size) {
    char pattern[512];
    snprintf(pattern, sizeof(pattern), "fraud:{*}:user:%s", user);
    redisReply *r = redisCommand(c, "KEYS %s", pattern);
    if (!r) DIE("KEYS failed: %s", c->errstr);
    bool found = r->type == REDIS_REPLY_ARRAY && r->elements >= 1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 1)
        DIE("user %s has state in %zu partitions", user, r->elements);
    if (found) snprintf(key, key_size, "%s", r->element[0]->str);
    freeReplyObject(r);
    return found;
}

char *redis_hget(redisContext *c, const char *key, const char *field) {
    redisReply *r = redisCommand(c, "HGET %s %s", key, field);
    char *out = NULL;
    if (!r) DIE("HGET failed: %s", c->errstr);
    if (r->type == REDIS_REPLY_STRING) out = strdup(r->str);
    freeReplyObject(r);
    return out;
}

bool wait_for_user_field(redisContext *c, const char *user, const char *field,
                         const char *want, int timeout_ms) {
    char key[512];
    int64_t deadline = mono_ms() + timeout_ms;
    do {
        char *v = redis_find_user_key(c, user, key, sizeof(key)) ? redis_hget(c, key, field)
                                                                  : NULL;
        bool ok = v && strcmp(v, want) == 0;
        free(v);
        if (ok) return true;
        sleep_ms(50);
    } while (mono_ms() < deadline);
    return false;
}

bool kafka_use_real_broker(void) {
    const char *which = getenv("TEST_KAFKA_BROKER");
    return which && strcmp(which, "real") == 0;
}

static void real_broker_spawn(kafka_cluster_t *kc) {
    char port[16], cport[16], log_path[300];
    snprintf(port, sizeof(port), "%d", kc->broker_port);
    snprintf(cport, sizeof(cport), "%d", kc->controller_port);
    snprintf(log_path, sizeof(log_path), "%s/broker.log", kc->broker_dir);
    const char *argv[] = {FRAUD_SOURCE_DIR "/tests/kafka/kafka.sh", "run", kc->broker_dir, port,
                          cport, NULL};
    kc->broker_pid = spawn(argv, log_path);
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
    real_broker_spawn(kc);
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
    if (wait_exit(kc->broker_pid, 60000) < 0)
        fprintf(stderr, "harness: the Kafka broker did not stop in 60 s; killed\n");
    kc->broker_pid = 0;
}

void kafka_broker_restart(kafka_cluster_t *kc) {
    if (kc->mock) DIE("kafka_broker_restart needs a real broker");
    real_broker_halt(kc);
    real_broker_spawn(kc);
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

record_list_t kafka_read_topic(const kafka_cluster_t *kc, const char *topic, size_t expected,
                               int timeout_ms) {
    char errstr[512];
    record_list_t list = {0};
    size_t cap = 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", kc->bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "group.id", "test-reader", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!c) DIE("consumer: %s", errstr);

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

void service_start(service_proc_t *svc, const kafka_cluster_t *kc, const redis_server_t *rs,
                   const char *const *extra) {
    service_start_with_file(svc, kc, rs, NULL, extra);
}

void service_start_with_file(service_proc_t *svc, const kafka_cluster_t *kc,
                             const redis_server_t *rs, const char *config_file,
                             const char *const *extra) {
    static char args[64][512];
    const char *argv[140];
    int n = 0, a = 0;
    snprintf(svc->log_path, sizeof(svc->log_path), "%s/service-%d.log", rs->dir,
             harness_free_port());
    argv[n++] = FRAUD_DETECTOR_BIN;
    if (config_file) {
        argv[n++] = "-c";
        argv[n++] = config_file;
    }
    snprintf(args[a], sizeof(args[a]), "kafka.bootstrap.servers=%s", kc->bootstrap);
    argv[n++] = "-X";
    argv[n++] = args[a++];
    snprintf(args[a], sizeof(args[a]), "redis.url=redis://127.0.0.1:%d", rs->port);
    argv[n++] = "-X";
    argv[n++] = args[a++];
    /* Fast rejoin in tests; production keeps librdkafka's defaults. */
    argv[n++] = "-X";
    argv[n++] = "kafka.consumer.session.timeout.ms=6000";
    argv[n++] = "-X";
    argv[n++] = "kafka.consumer.heartbeat.interval.ms=500";
    argv[n++] = "-X";
    argv[n++] = "kafka.topic.metadata.refresh.interval.ms=1000";
    argv[n++] = "-X";
    argv[n++] = "http.listen=off"; /* tests that want it pass their own */
    for (size_t i = 0; extra && extra[i] && n < 136; i++) {
        argv[n++] = "-X";
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    svc->pid = spawn(argv, svc->log_path);
}

void service_signal(const service_proc_t *svc, int sig) {
    if (svc->pid > 0 && kill(svc->pid, sig) != 0) DIE("kill %d: %s", (int)svc->pid, strerror(errno));
}

bool service_wait_log(const service_proc_t *svc, const char *needle, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    char line[4096];
    do {
        FILE *f = fopen(svc->log_path, "r");
        bool found = false;
        while (f && !found && fgets(line, sizeof(line), f)) found = strstr(line, needle) != NULL;
        if (f) fclose(f);
        if (found) return true;
        sleep_ms(50);
    } while (mono_ms() < deadline);
    return false;
}

int http_request(int port, const char *request, char *body, size_t body_size) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    size_t len = strlen(request), sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0) break; /* the server may refuse before reading it all */
        sent += (size_t)n;
    }
    char response[65536];
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, response + got, sizeof(response) - 1 - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
        if (got == sizeof(response) - 1) break;
    }
    close(fd);
    response[got] = '\0';
    int status = -1;
    if (sscanf(response, "HTTP/1.%*d %d", &status) != 1) return -1;
    const char *start = strstr(response, "\r\n\r\n");
    snprintf(body, body_size, "%s", start ? start + 4 : "");
    return status;
}

int http_get(int port, const char *path, char *body, size_t body_size) {
    char request[4096];
    snprintf(request, sizeof(request),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    return http_request(port, request, body, body_size);
}

int service_stop(service_proc_t *svc) {
    if (svc->pid <= 0) return -1;
    kill(svc->pid, SIGTERM);
    int rc = wait_exit(svc->pid, 60000);
    svc->pid = 0;
    return rc;
}

void service_kill(service_proc_t *svc) {
    if (svc->pid <= 0) return;
    kill(svc->pid, SIGKILL);
    wait_exit(svc->pid, 10000);
    svc->pid = 0;
}

int service_run_once(const char *const *args, char *stderr_buf, size_t stderr_size) {
    char path[] = "/tmp/fraud-test-run-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) DIE("mkstemp");
    close(fd);
    const char *argv[64];
    int n = 0;
    argv[n++] = FRAUD_DETECTOR_BIN;
    for (size_t i = 0; args[i] && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = spawn(argv, path);
    int rc = wait_exit(pid, 30000);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(stderr_buf, 1, stderr_size - 1, f) : 0;
    stderr_buf[got] = '\0';
    if (f) fclose(f);
    unlink(path);
    return rc;
}
