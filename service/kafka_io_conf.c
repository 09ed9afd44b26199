/* kafka_io_conf: how kafka_io configures librdkafka's clients: the
 * service's own choices first, then the user's kafka.*, kafka.consumer.*
 * and kafka.producer.* settings, with the service's log and error
 * callbacks. Part of the kafka_io module (the only code that calls
 * rd_kafka_*); its header is private to it. */
#include "kafka_io_conf.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "errstr.h"
#include "log.h"

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    log_level_t lvl = level <= 3 ? LOG_ERROR : level <= 4 ? LOG_WARN : level <= 6 ? LOG_INFO
                                                                                  : LOG_DEBUG;
    log_msg(lvl, "librdkafka", "%s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)opaque;
    /* Most errors are transient and already logged by librdkafka, which
     * retries them itself; only the ones that change what we do are ours. */
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        log_error("kafka", "fatal: %s", fatal);
    } else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        log_warn("kafka", "all brokers are down: %s", reason);
    } else {
        log_debug("kafka", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    }
}

/* kafka.X goes to both clients (librdkafka ignores, with a warning, what
 * does not apply); kafka.consumer.X and kafka.producer.X go to one only. */
static int set_prop(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                    size_t errstr_size) {
    char reason[512];
    if (rd_kafka_conf_set(conf, name, value, reason, sizeof(reason)) != RD_KAFKA_CONF_OK) {
        errstr_set(errstr, errstr_size, "kafka.%s: %s", name, reason);
        return -1;
    }
    return 0;
}

static int apply_user_props(rd_kafka_conf_t *conf, const config_t *cfg, int is_consumer,
                            char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        const char *name = cfg->kafka[i].name;
        if (strncmp(name, "consumer.", 9) == 0) {
            if (!is_consumer) continue;
            name += 9;
        } else if (strncmp(name, "producer.", 9) == 0) {
            if (is_consumer) continue;
            name += 9;
        }
        /* Topic-level consumer settings would only warn on the producer. */
        if (!is_consumer && strcmp(name, "auto.offset.reset") == 0) continue;
        if (set_prop(conf, name, cfg->kafka[i].value, errstr, errstr_size) != 0) {
            /* Name the key as the user wrote it. */
            if (name != cfg->kafka[i].name) {
                char reason[512];
                snprintf(reason, sizeof(reason), "%s", errstr);
                errstr_set(errstr, errstr_size, "kafka.%s: %s", cfg->kafka[i].name,
                          strchr(reason, ' ') ? strchr(reason, ' ') + 1 : reason);
            }
            return -1;
        }
    }
    return 0;
}

/* What the service sets itself, before the user's kafka.* settings. */
static const char *const CONSUMER_CHOICES[][2] = {
    {"partition.assignment.strategy", "cooperative-sticky"},
    {"enable.auto.offset.store", "false"},
    {"enable.auto.commit", "true"},
    {"enable.partition.eof", "false"},
    /* Prefetch: librdkafka's default of 100,000 messages per partition makes
     * the consumer stop fetching between batches; a million lets the byte
     * bound below decide instead, which doubled the rate on a backlog
     * (README, Performance). Users can lower either. */
    {"queued.min.messages", "1000000"},
    /* The bound: 32 MB of payloads in the one consumer queue, plus what
     * fetches in flight bring (fetch.message.max.bytes per partition).
     * librdkafka 2.0 stops fetching for up to a second once the queue
     * reaches it (fetch.queue.backoff.ms came in 2.2), so the queue must
     * hold about a second of work: with 16 MB the consumer thread waited
     * 100-300 ms at a time on an empty queue while a backlog waited in
     * Kafka (README, Defaults and their trade-offs). */
    {"queued.max.messages.kbytes", "32768"},
    /* Small requests must not wait for the peer's delayed ACK (40 ms). */
    {"socket.nagle.disable", "true"},
};
static const char *const PRODUCER_CHOICES[][2] = {
    {"enable.idempotence", "true"},
    /* Alerts are few and a batch waits for them: send them at once. */
    {"linger.ms", "1"},
    /* A batch waits for its alerts' acks: Nagle would add 40 ms to each. */
    {"socket.nagle.disable", "true"},
};

rd_kafka_conf_t *kafka_conf_consumer_new(const config_t *cfg, char *errstr,
                                          size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int failed = set_prop(conf, "group.id", cfg->group_id, errstr, errstr_size);
    for (size_t i = 0; !failed && i < sizeof(CONSUMER_CHOICES) / sizeof(CONSUMER_CHOICES[0]); i++)
        failed = set_prop(conf, CONSUMER_CHOICES[i][0], CONSUMER_CHOICES[i][1], errstr,
                          errstr_size);
    /* exactly_once: offsets are committed only inside transactions, and
     * what this instance reads of its own outputs is committed data. */
    if (!failed && config_exactly_once(cfg))
        failed = set_prop(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
                 set_prop(conf, "isolation.level", "read_committed", errstr, errstr_size);
    if (failed || apply_user_props(conf, cfg, 1, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* Without a manual offset store, librdkafka would commit offsets of
     * messages whose state is not yet in Redis. */
    char store[16];
    size_t size = sizeof(store);
    if (rd_kafka_conf_get(conf, "enable.auto.offset.store", store, &size) == RD_KAFKA_CONF_OK &&
        strcmp(store, "false") != 0) {
        errstr_set(errstr, errstr_size,
                  "kafka.enable.auto.offset.store: must stay false (offsets are stored once "
                  "state is persisted)");
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* The user's value of a kafka.* setting for one client, or NULL. */
static const char *user_prop(const config_t *cfg, const char *client, const char *name) {
    const char *found = NULL;
    size_t client_len = strlen(client);
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        const char *n = cfg->kafka[i].name;
        if (strncmp(n, client, client_len) == 0 && n[client_len] == '.') n += client_len + 1;
        if (strcmp(n, name) == 0) found = cfg->kafka[i].value;
    }
    return found;
}

/* One transactional.id per instance: <group.id>-<group.instance.id> with
 * static membership, so a restarted member fences its own former self;
 * otherwise <group.id>-<host>-<pid>, unique to this process. Either way
 * the group's generation (KIP-447) is what fences a member that lost its
 * partitions. */
static void default_transactional_id(const config_t *cfg, char *buf, size_t size) {
    const char *instance = user_prop(cfg, "consumer", "group.instance.id");
    if (instance && instance[0]) {
        snprintf(buf, size, "%s-%s", cfg->group_id, instance);
        return;
    }
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(buf, size, "%s-%s-%d", cfg->group_id, host, (int)getpid());
}

rd_kafka_conf_t *kafka_conf_producer_new(const config_t *cfg, char *errstr,
                                          size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int failed = 0;
    for (size_t i = 0; !failed && i < sizeof(PRODUCER_CHOICES) / sizeof(PRODUCER_CHOICES[0]); i++)
        failed = set_prop(conf, PRODUCER_CHOICES[i][0], PRODUCER_CHOICES[i][1], errstr,
                          errstr_size);
    if (!failed && config_exactly_once(cfg)) {
        char id[512];
        default_transactional_id(cfg, id, sizeof(id));
        /* A transaction holds one batch's records for as long as they take
         * to send: seconds at most. The timeout bounds how long a crashed
         * or paused instance's open transaction holds back read_committed
         * readers and the partitions' next owner (librdkafka: 60 s). */
        failed = set_prop(conf, "transactional.id", id, errstr, errstr_size) ||
                 set_prop(conf, "transaction.timeout.ms", "10000", errstr, errstr_size);
    }
    if (failed || apply_user_props(conf, cfg, 0, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

static void dump_prop(FILE *out, const char *client, rd_kafka_conf_t *conf, const char *name) {
    char value[1024];
    size_t size = sizeof(value);
    if (rd_kafka_conf_get(conf, name, value, &size) != RD_KAFKA_CONF_OK) return;
    fprintf(out, "librdkafka.%s.%s=%s\n", client, name,
            config_key_is_secret(name) ? "***" : value);
}

/* Reads back, from librdkafka's own conf objects, every property the
 * service or the user set: proof that the settings reach it. */
int kafka_io_dump_config(const config_t *cfg, FILE *out, char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *consumer = kafka_conf_consumer_new(cfg, errstr, errstr_size);
    rd_kafka_conf_t *producer = consumer ? kafka_conf_producer_new(cfg, errstr, errstr_size) : NULL;
    if (!consumer || !producer) {
        if (consumer) rd_kafka_conf_destroy(consumer);
        return -1;
    }
    dump_prop(out, "consumer", consumer, "group.id");
    for (size_t i = 0; i < sizeof(CONSUMER_CHOICES) / sizeof(CONSUMER_CHOICES[0]); i++)
        dump_prop(out, "consumer", consumer, CONSUMER_CHOICES[i][0]);
    for (size_t i = 0; i < sizeof(PRODUCER_CHOICES) / sizeof(PRODUCER_CHOICES[0]); i++)
        dump_prop(out, "producer", producer, PRODUCER_CHOICES[i][0]);
    if (config_exactly_once(cfg)) {
        dump_prop(out, "consumer", consumer, "isolation.level");
        dump_prop(out, "producer", producer, "transactional.id");
        dump_prop(out, "producer", producer, "transaction.timeout.ms");
    }
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        const char *name = cfg->kafka[i].name;
        int consumer_only = strncmp(name, "consumer.", 9) == 0;
        int producer_only = strncmp(name, "producer.", 9) == 0;
        if (!producer_only) dump_prop(out, "consumer", consumer, consumer_only ? name + 9 : name);
        if (!consumer_only && strcmp(name, "auto.offset.reset") != 0)
            dump_prop(out, "producer", producer, producer_only ? name + 9 : name);
    }
    rd_kafka_conf_destroy(consumer);
    rd_kafka_conf_destroy(producer);
    return 0;
}

/* Creates a client from conf (which it takes over, or destroys on failure)
 * with the service's log and error callbacks. */
rd_kafka_t *kafka_conf_create_client(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                                 char *errstr, size_t errstr_size) {
    char reason[512];
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_t *rk = rd_kafka_new(type, conf, reason, sizeof(reason));
    if (!rk) {
        errstr_set(errstr, errstr_size, "kafka %s: %s", what, reason);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (type == RD_KAFKA_CONSUMER) rd_kafka_poll_set_consumer(rk);
    return rk;
}

rd_kafka_t *kafka_conf_reader_new(const config_t *cfg, char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char group[512];
    /* librdkafka wants a group.id even to assign(); with assign() and no
     * commits the broker never sees this group. */
    snprintf(group, sizeof(group), "%s.reader", cfg->group_id);
    if (apply_user_props(conf, cfg, 1, errstr, errstr_size) != 0 ||
        set_prop(conf, "group.id", group, errstr, errstr_size) != 0 ||
        set_prop(conf, "enable.auto.commit", "false", errstr, errstr_size) != 0 ||
        set_prop(conf, "enable.auto.offset.store", "false", errstr, errstr_size) != 0 ||
        set_prop(conf, "enable.partition.eof", "false", errstr, errstr_size) != 0 ||
        set_prop(conf, "socket.nagle.disable", "true", errstr, errstr_size) != 0 ||
        /* A reader reports no lag: the group's statistics stay the consumer's. */
        set_prop(conf, "statistics.interval.ms", "0", errstr, errstr_size) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return kafka_conf_create_client(RD_KAFKA_CONSUMER, conf, "reader", errstr, errstr_size);
}
