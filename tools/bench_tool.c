/* fraud-bench: the load generator and measuring consumers of `make bench`.
 *
 *   fraud-bench produce -b BROKERS [-t payments] --events N --users U
 *                       [--zipf S] [--alert-ratio R] [--rate R] [--seed S]
 *       JSON payments keyed by user, as users send them: uniform users, or
 *       Zipf-skewed with exponent S; about R of them jump by 20000 over the
 *       user's previous amount (an alert); R events/s, or as fast as
 *       possible. "timestamp" is the produce time, for latency.
 *   fraud-bench consume -b BROKERS [-t payments] --events N [-g GROUP]
 *       A bare consumer with the service's consumer settings that does
 *       nothing with the messages: the ceiling. Prints events/s from the
 *       first message to the Nth.
 *   fraud-bench latency -b BROKERS [-t fraud-alerts] --events N [--payments T]
 *       Reads N alerts and prints the distribution of alert time (the
 *       alert record's timestamp) minus the payment's event_time. With
 *       --payments T, whose records carry the broker's LogAppendTime, also
 *       the alert time minus the time the broker appended the payment
 *       (each alert's source partition and offset): the part of the
 *       latency that starts once Kafka has the payment, so a broker slow
 *       to append, which the first figure includes, shows apart.
 *   fraud-bench rate -b BROKERS -t ALERTS --events PAYMENTS [--alerts A]
 *       How fast a contender went through PAYMENTS payments, clocked by
 *       the timestamps of its alert records (bench-peers: LogAppendTime,
 *       so the broker's clock): reads the alert topic until A alerts, or
 *       10 s without one, and prints PAYMENTS x (n-1)/n over the span from
 *       the first alert to the last. Alerts fall evenly through the input,
 *       so every contender is clocked the same way.
 * Every result is one JSON line on stdout. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <librdkafka/rdkafka.h>

typedef struct options {
    const char *brokers, *topic, *group;
    long events, users;
    double zipf, alert_ratio, rate;
    unsigned long long seed;
    long alerts; /* rate: how many to wait for; 0: until idle */
    const char *payments; /* latency: the payments topic, LogAppendTime */
} options_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned long long next_random(unsigned long long *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double uniform01(unsigned long long *s) {
    return (double)(next_random(s) >> 11) / 9007199254740992.0;
}

static rd_kafka_t *client(rd_kafka_type_t type, const options_t *o) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr))) {
        fprintf(stderr, "fraud-bench: %s\n", errstr);
        exit(2);
    }
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
        /* A backlog is produced in big batches; live load (--rate) lingers
         * as librdkafka does by default, since its payments' latency counts
         * from the moment they are handed to the producer. */
        rd_kafka_conf_set(conf, "linger.ms", o->rate > 0 ? "5" : "20", NULL, 0);
        rd_kafka_conf_set(conf, "batch.num.messages", "10000", NULL, 0);
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", NULL, 0);
    } else {
        /* The service's consumer settings, so the ceiling is comparable. */
        rd_kafka_conf_set(conf, "group.id", o->group, NULL, 0);
        rd_kafka_conf_set(conf, "partition.assignment.strategy", "cooperative-sticky", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", NULL, 0);
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "false", NULL, 0);
        rd_kafka_conf_set(conf, "queued.min.messages", "1000000", NULL, 0);
        rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "32768", NULL, 0);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "fraud-bench: %s\n", errstr);
        exit(1);
    }
    return rk;
}

/* Cumulative Zipf weights 1/k^s over the users, for inverse sampling. */
static double *zipf_cdf_new(long users, double s) {
    double *cdf = malloc((size_t)users * sizeof(double)), total = 0;
    if (!cdf) exit(1);
    for (long k = 0; k < users; k++) cdf[k] = (total += 1.0 / pow((double)(k + 1), s));
    for (long k = 0; k < users; k++) cdf[k] /= total;
    return cdf;
}

static long pick_user(const options_t *o, const double *cdf, unsigned long long *rng) {
    if (!cdf) return (long)(next_random(rng) % (unsigned long long)o->users);
    double u = uniform01(rng);
    long lo = 0, hi = o->users - 1;
    while (lo < hi) {
        long mid = (lo + hi) / 2;
        if (cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int run_produce(const options_t *o) {
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, o);
    unsigned long long rng = o->seed ? o->seed : 88172645463325252ULL;
    double *cdf = o->zipf > 0 ? zipf_cdf_new(o->users, o->zipf) : NULL;
    double start = now_s();
    char key[32], value[160];
    for (long i = 0; i < o->events; i++) {
        if (o->rate > 0) { /* fixed offered load: wait for this event's slot */
            double due = start + (double)i / o->rate;
            /* Sleep (serving delivery reports) rather than spin: the
             * latency curve pins this process to the broker's core. A
             * remainder under a millisecond is slept too: polling it away
             * with a zero timeout spun a whole core at 1,000 and 10,000
             * events/s, starving the broker and Redis beside it. */
            double left;
            while ((left = due - now_s()) > 0) {
                if (left >= 0.001) {
                    rd_kafka_poll(rk, (int)(left * 1000));
                } else {
                    rd_kafka_poll(rk, 0);
                    struct timespec rest = {0, (long)(left * 1e9)};
                    nanosleep(&rest, NULL);
                }
            }
        }
        long user = pick_user(o, cdf, &rng);
        int jump = uniform01(&rng) < o->alert_ratio;
        /* Small amounts stay under 1000, so a jump of 20000 alerts. */
        long cents = jump ? 2000000 + (long)(next_random(&rng) % 100000)
                          : (long)(next_random(&rng) % 100000);
        int klen = snprintf(key, sizeof(key), "user%ld", user);
        int vlen = snprintf(value, sizeof(value),
                            "{\"user_id\":\"user%ld\",\"amount\":\"%ld.%02ld\",\"event_id\":"
                            "\"e%ld\",\"timestamp\":%lld}",
                            user, cents / 100, cents % 100, i, wall_ms());
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_KEY(key, (size_t)klen),
                RD_KAFKA_V_VALUE(value, (size_t)vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_END);
            if (!err) break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "fraud-bench: produce: %s\n", rd_kafka_err2str(err));
                free(cdf);
                rd_kafka_destroy(rk);
                return 1;
            }
            rd_kafka_poll(rk, 10);
        }
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "fraud-bench: flush timed out\n");
        free(cdf);
        rd_kafka_destroy(rk);
        return 1;
    }
    double elapsed = now_s() - start;
    printf("{\"produced\": %ld, \"seconds\": %.3f, \"events_per_second\": %.0f}\n", o->events,
           elapsed, (double)o->events / elapsed);
    free(cdf);
    rd_kafka_destroy(rk);
    return 0;
}

static int subscribe(rd_kafka_t *rk, const char *topic) {
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    if (err) fprintf(stderr, "fraud-bench: subscribe: %s\n", rd_kafka_err2str(err));
    return err ? -1 : 0;
}

static int run_consume(const options_t *o) {
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, o);
    if (subscribe(rk, o->topic) != 0) {
        rd_kafka_destroy(rk);
        return 1;
    }
    long seen = 0;
    double first = 0, last = 0, deadline = now_s() + 300;
    while (seen < o->events && now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err) {
            if (seen++ == 0) first = now_s();
            last = now_s();
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (seen < o->events) {
        fprintf(stderr, "fraud-bench: consumed %ld of %ld before the deadline\n", seen, o->events);
        return 1;
    }
    double elapsed = last - first;
    printf("{\"consumed\": %ld, \"seconds\": %.3f, \"events_per_second\": %.0f}\n", seen, elapsed,
           elapsed > 0 ? (double)seen / elapsed : 0);
    return 0;
}

static int compare_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The broker's append time of every payment, by partition and offset. */
#define APPEND_PARTITIONS_MAX 256
typedef struct append_times {
    long long *at[APPEND_PARTITIONS_MAX]; /* -1: not read */
    size_t len[APPEND_PARTITIONS_MAX];
} append_times_t;

static int append_times_put(append_times_t *t, int32_t partition, int64_t offset,
                            long long ts) {
    if (partition < 0 || partition >= APPEND_PARTITIONS_MAX || offset < 0) return -1;
    size_t need = (size_t)offset + 1;
    if (need > t->len[partition]) {
        size_t len = t->len[partition] ? t->len[partition] : 1024;
        while (len < need) len *= 2;
        long long *grown = realloc(t->at[partition], len * sizeof(*grown));
        if (!grown) return -1;
        for (size_t i = t->len[partition]; i < len; i++) grown[i] = -1;
        t->at[partition] = grown;
        t->len[partition] = len;
    }
    t->at[partition][offset] = ts;
    return 0;
}

static void free_append_times(append_times_t *t) {
    if (!t) return;
    for (int i = 0; i < APPEND_PARTITIONS_MAX; i++) free(t->at[i]);
    free(t);
}

static long long append_time_of(const append_times_t *t, double partition, double offset) {
    if (partition < 0 || partition >= APPEND_PARTITIONS_MAX || offset < 0 ||
        offset >= (double)t->len[(int)partition])
        return -1;
    return t->at[(int)partition][(size_t)offset];
}

/* Reads the whole payments topic (until 3 s pass without a record); 0, or
 * -1 when its records do not carry LogAppendTime. */
static int read_append_times(const options_t *o, append_times_t *t) {
    options_t po = *o;
    char group[64];
    snprintf(group, sizeof(group), "fraud-bench-appends-%ld", (long)getpid());
    po.group = group;
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, &po);
    if (subscribe(rk, o->payments) != 0) {
        rd_kafka_destroy(rk);
        return -1;
    }
    long read = 0, wrong_type = 0;
    double deadline = now_s() + 300, last = now_s();
    while (now_s() < deadline && now_s() - last < 3) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        last = now_s();
        if (!m->err) {
            rd_kafka_timestamp_type_t type;
            long long ts = rd_kafka_message_timestamp(m, &type);
            if (type != RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME) wrong_type++;
            else if (append_times_put(t, m->partition, m->offset, ts) == 0) read++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (wrong_type) {
        fprintf(stderr, "fraud-bench: %s: %ld records without LogAppendTime\n", o->payments,
                wrong_type);
        return -1;
    }
    return read > 0 ? 0 : -1;
}

static void print_percentiles(const char *suffix, long long *lat, long n) {
    qsort(lat, (size_t)n, sizeof(long long), compare_ll);
#define PCT(p) lat[(long)((double)(n - 1) * (p))]
    printf("\"p50%s_ms\": %lld, \"p99%s_ms\": %lld, \"p999%s_ms\": %lld, \"max%s_ms\": %lld",
           suffix, PCT(0.50), suffix, PCT(0.99), suffix, PCT(0.999), suffix, lat[n - 1]);
#undef PCT
}

static int run_latency(const options_t *o) {
    append_times_t *appends = o->payments ? calloc(1, sizeof(*appends)) : NULL;
    if (o->payments && (!appends || read_append_times(o, appends) != 0)) {
        free_append_times(appends);
        return 1;
    }
    long long *lat = calloc((size_t)o->events, sizeof(long long));
    long long *after = calloc((size_t)o->events, sizeof(long long));
    rd_kafka_t *rk = lat && after ? client(RD_KAFKA_CONSUMER, o) : NULL;
    if (!rk || subscribe(rk, o->topic) != 0) {
        if (rk) rd_kafka_destroy(rk);
        free(lat);
        free(after);
        free_append_times(appends);
        return 1;
    }
    long seen = 0, matched = 0;
    double deadline = now_s() + 300, last = now_s();
    /* Stops at N alerts, or after 5 s without one (the broker may have
     * dropped old ones: the mock cluster keeps a few MB per partition). */
    while (seen < o->events && now_s() < deadline && now_s() - last < 5) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        last = now_s();
        if (!m->err) {
            cJSON *a = cJSON_ParseWithLength(m->payload, m->len);
            const cJSON *event_time = cJSON_GetObjectItem(a, "event_time");
            const cJSON *source = cJSON_GetObjectItem(a, "source");
            long long ts = rd_kafka_message_timestamp(m, NULL);
            if (cJSON_IsNumber(event_time) && ts > 0) {
                lat[seen++] = ts - (long long)event_time->valuedouble;
                const cJSON *part = cJSON_GetObjectItem(source, "partition");
                const cJSON *off = cJSON_GetObjectItem(source, "offset");
                long long appended =
                    appends && cJSON_IsNumber(part) && cJSON_IsNumber(off)
                        ? append_time_of(appends, part->valuedouble, off->valuedouble)
                        : -1;
                if (appended > 0) after[matched++] = ts - appended;
            }
            cJSON_Delete(a);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free_append_times(appends);
    if (seen == 0) {
        fprintf(stderr, "fraud-bench: no alerts read\n");
        free(lat);
        free(after);
        return 1;
    }
    printf("{\"alerts\": %ld, ", seen);
    print_percentiles("", lat, seen);
    if (matched) {
        printf(", \"after_append\": %ld, ", matched);
        print_percentiles("_after_append", after, matched);
    }
    printf("}\n");
    free(lat);
    free(after);
    return 0;
}

static int run_rate(const options_t *o) {
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, o);
    if (subscribe(rk, o->topic) != 0) {
        rd_kafka_destroy(rk);
        return 1;
    }
    long seen = 0;
    long long first = -1, last = -1;
    double deadline = now_s() + 900, idle_since = now_s();
    while ((o->alerts <= 0 || seen < o->alerts) && now_s() < deadline &&
           now_s() - idle_since < 10) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        idle_since = now_s();
        long long ts = m->err ? -1 : rd_kafka_message_timestamp(m, NULL);
        if (ts > 0) {
            if (first < 0 || ts < first) first = ts;
            if (ts > last) last = ts;
            seen++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (seen < 2 || last <= first) {
        fprintf(stderr, "fraud-bench: %ld alerts on %s: too few to clock\n", seen, o->topic);
        return 1;
    }
    double seconds = (double)(last - first) / 1000.0;
    double covered = (double)o->events * (double)(seen - 1) / (double)seen;
    printf("{\"alerts\": %ld, \"first_ms\": %lld, \"last_ms\": %lld, \"seconds\": %.3f, "
           "\"events_per_second\": %.0f}\n",
           seen, first, last, seconds, covered / seconds);
    return 0;
}

int main(int argc, char **argv) {
    options_t o = {.topic = NULL, .group = "fraud-bench-ceiling", .events = 0, .users = 1000};
    static const struct option longopts[] = {
        {"events", required_argument, NULL, 'n'}, {"users", required_argument, NULL, 'u'},
        {"zipf", required_argument, NULL, 'z'},   {"alert-ratio", required_argument, NULL, 'a'},
        {"rate", required_argument, NULL, 'r'},   {"seed", required_argument, NULL, 's'},
        {"alerts", required_argument, NULL, 'A'}, {"payments", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0}};
    if (argc < 2) goto usage;
    const char *mode = argv[1];
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "b:t:g:", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o.brokers = optarg; break;
        case 't': o.topic = optarg; break;
        case 'g': o.group = optarg; break;
        case 'n': o.events = atol(optarg); break;
        case 'u': o.users = atol(optarg); break;
        case 'z': o.zipf = atof(optarg); break;
        case 'a': o.alert_ratio = atof(optarg); break;
        case 'r': o.rate = atof(optarg); break;
        case 's': o.seed = strtoull(optarg, NULL, 10); break;
        case 'A': o.alerts = atol(optarg); break;
        case 'P': o.payments = optarg; break;
        default: goto usage;
        }
    }
    if (!o.brokers || o.events <= 0 || o.users <= 0) goto usage;
    if (strcmp(mode, "produce") == 0) {
        if (!o.topic) o.topic = "payments";
        return run_produce(&o);
    }
    if (strcmp(mode, "consume") == 0) {
        if (!o.topic) o.topic = "payments";
        return run_consume(&o);
    }
    if (strcmp(mode, "latency") == 0) {
        if (!o.topic) o.topic = "fraud-alerts";
        if (strcmp(o.group, "fraud-bench-ceiling") == 0) o.group = "fraud-bench-latency";
        return run_latency(&o);
    }
    if (strcmp(mode, "rate") == 0 && o.topic) {
        if (strcmp(o.group, "fraud-bench-ceiling") == 0) o.group = "fraud-bench-rate";
        return run_rate(&o);
    }
usage:
    fprintf(stderr, "usage: fraud-bench produce|consume|latency|rate -b BROKERS --events N "
                    "[--users U] [--zipf S] [--alert-ratio R] [--rate R] [--alerts A] "
                    "[--payments T] [-t TOPIC] [-g GROUP]\n");
    return 2;
}
