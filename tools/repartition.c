/* fraud-repartition: moves each user's state to the partition its key
 * hashes to after the input topic's partition count grew.
 *
 * A user's Redis hash lives under its partition's hash tag
 * (<prefix>{<topic>/<partition>}:user:<id>), so when Kafka starts sending a
 * user's payments to another partition, the state must follow. Run it with
 * the service stopped, after the group has applied everything on the old
 * partitions and the topic was given its new partitions (README: "Changing
 * the partition count"). It refuses, changing nothing, when:
 *   - the group has not committed up to the end of every old partition, or
 *     the Redis checkpoint of one differs from the committed offset;
 *   - an outbox still holds records (the service delivers them at start);
 *   - a user is on a partition that --partitioner does not give it with
 *     --from partitions (the producers hash keys some other way).
 * A move is DUMP, RESTORE (with the key's TTL) under the new tag, DEL; a
 * run stopped half-way is finished by running it again. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "config.h"
#include "kafka_io.h"
#include "redis_conn.h"
#include "store_keys.h"

#define MAX_X_FLAGS 64

extern char **environ;

typedef struct move {
    char *user;
    size_t user_len;
    int32_t from, to;
} move_t;

typedef struct plan {
    move_t *moves;
    size_t count, cap;
    size_t stay, already_moved;
} plan_t;

static void usage(FILE *out) {
    fprintf(out,
            "Usage: fraud-repartition [-c FILE] [-X key=value]... --from N --partitioner NAME\n"
            "                         [--dry-run]\n"
            "Moves each user's state in Redis to the partition of input.topic its key now\n"
            "hashes to, after the topic grew from N partitions. The configuration is the\n"
            "service's (-c, FRAUD_*, -X): input.topic, group.id, redis.*, kafka.*.\n"
            "  --from N            the partition count before the change\n"
            "  --partitioner NAME  how the producers pick a partition: murmur2_random (the\n"
            "                      Java client), consistent_random (librdkafka, kcat) or\n"
            "                      fnv1a_random (Sarama)\n"
            "  --dry-run           check and print the plan, move nothing\n");
}

static redisReply *command(redis_conn_t *conn, char *errstr, size_t errstr_size,
                           const char *fmt, ...) {
    redisContext *ctx = redis_conn_get(conn, errstr, errstr_size);
    if (!ctx) return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    if (!r) redis_conn_fail(conn, fmt, errstr, errstr_size);
    else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errstr_size, "%s: %s", fmt, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int add_move(plan_t *plan, const char *user, size_t len, int32_t from, int32_t to) {
    if (plan->count == plan->cap) {
        size_t cap = plan->cap ? plan->cap * 2 : 1024;
        move_t *grown = realloc(plan->moves, cap * sizeof(*grown));
        if (!grown) return -1;
        plan->moves = grown;
        plan->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, user, len);
    copy[len] = '\0';
    plan->moves[plan->count++] = (move_t){.user = copy, .user_len = len, .from = from, .to = to};
    return 0;
}

/* Old partitions: every one drained, its checkpoint where the group committed,
 * its outbox empty. */
static int check_drained(const config_t *cfg, redis_conn_t *conn, int32_t from,
                         int32_t *to_count, char *errstr, size_t errstr_size) {
    kafka_group_position_t *pos;
    int32_t count;
    if (kafka_io_group_positions(cfg, cfg->input_topic, &pos, &count, errstr, errstr_size) != 0)
        return -1;
    int rc = 0;
    if (count < from) {
        snprintf(errstr, errstr_size, "%s has %d partitions, fewer than --from %d",
                 cfg->input_topic, (int)count, (int)from);
        rc = -1;
    }
    for (int32_t p = 0; p < from && rc == 0; p++) {
        char key[512];
        snprintf(key, sizeof(key), "%s{%s/%d}:checkpoint", cfg->redis_key_prefix,
                 cfg->input_topic, (int)p);
        redisReply *cp = command(conn, errstr, errstr_size, "GET %s", key);
        snprintf(key, sizeof(key), "%s{%s/%d}:outbox", cfg->redis_key_prefix, cfg->input_topic,
                 (int)p);
        redisReply *ob = cp ? command(conn, errstr, errstr_size, "HLEN %s", key) : NULL;
        long long checkpoint = cp && cp->type == REDIS_REPLY_STRING ? atoll(cp->str) : 0;
        if (!cp || !ob) {
            rc = -1;
        } else if (pos[p].committed < pos[p].end && pos[p].end > 0) {
            snprintf(errstr, errstr_size,
                     "%s [%d]: group %s committed %lld of %lld: stop the producers and let the "
                     "service finish before repartitioning",
                     cfg->input_topic, (int)p, cfg->group_id, (long long)pos[p].committed,
                     (long long)pos[p].end);
            rc = -1;
        } else if (pos[p].end > 0 && checkpoint != pos[p].committed) {
            snprintf(errstr, errstr_size, "%s [%d]: Redis checkpoint %lld, group committed %lld",
                     cfg->input_topic, (int)p, checkpoint, (long long)pos[p].committed);
            rc = -1;
        } else if (ob->integer > 0) {
            snprintf(errstr, errstr_size,
                     "%s [%d]: the outbox still holds %lld record(s): start the service once "
                     "to deliver them", cfg->input_topic, (int)p, ob->integer);
            rc = -1;
        }
        if (cp) freeReplyObject(cp);
        if (ob) freeReplyObject(ob);
    }
    *to_count = count;
    free(pos);
    return rc;
}

/* Scans one partition's users into the plan: each must be where the
 * partitioner puts it with the old count (to stay or move) or the new one
 * (moved already). */
static int plan_partition(const config_t *cfg, redis_conn_t *conn, const char *partitioner,
                          int32_t p, int32_t from, int32_t to_count, plan_t *plan, char *errstr,
                          size_t errstr_size) {
    char prefix[512], pattern[sizeof(prefix) + 1];
    int prefix_len = snprintf(prefix, sizeof(prefix), "%s{%s/%d}:user:", cfg->redis_key_prefix,
                              cfg->input_topic, (int)p);
    snprintf(pattern, sizeof(pattern), "%s*", prefix);
    char cursor[32] = "0";
    do {
        redisReply *r = command(conn, errstr, errstr_size, "SCAN %s MATCH %s COUNT 1000", cursor,
                                pattern);
        if (!r) return -1;
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const redisReply *k = r->element[1]->element[i];
            const char *user = k->str + prefix_len;
            size_t len = k->len - (size_t)prefix_len;
            int32_t before = kafka_io_partition_of_key(partitioner, user, len, from);
            int32_t after = kafka_io_partition_of_key(partitioner, user, len, to_count);
            if (before == p && after == p) {
                plan->stay++;
            } else if (before == p) {
                if (add_move(plan, user, len, p, after) != 0) {
                    snprintf(errstr, errstr_size, "out of memory");
                    freeReplyObject(r);
                    return -1;
                }
            } else if (after == p) {
                plan->already_moved++; /* a run before this one moved it */
            } else {
                snprintf(errstr, errstr_size,
                         "user %.*s is on partition %d, but %s puts it on %d of %d: the "
                         "producers do not use that partitioner, or --from is wrong",
                         (int)len, user, (int)p, partitioner, (int)before, (int)from);
                freeReplyObject(r);
                return -1;
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static int move_user(const config_t *cfg, redis_conn_t *conn, const move_t *m, char *errstr,
                     size_t errstr_size) {
    char from[1024], to[1024];
    if (!store_user_key(cfg->redis_key_prefix, cfg->input_topic, m->from, m->user, m->user_len,
                        from, sizeof(from)) ||
        !store_user_key(cfg->redis_key_prefix, cfg->input_topic, m->to, m->user, m->user_len, to,
                        sizeof(to))) {
        snprintf(errstr, errstr_size, "user key too long");
        return -1;
    }
    redisReply *dump = command(conn, errstr, errstr_size, "DUMP %s", from);
    redisReply *ttl = dump ? command(conn, errstr, errstr_size, "PTTL %s", from) : NULL;
    int rc = -1;
    if (dump && ttl && dump->type == REDIS_REPLY_STRING) {
        long long keep = ttl->integer > 0 ? ttl->integer : 0;
        redisReply *r = command(conn, errstr, errstr_size, "RESTORE %s %lld %b REPLACE", to,
                                keep, dump->str, dump->len);
        redisReply *d = r ? command(conn, errstr, errstr_size, "DEL %s", from) : NULL;
        rc = r && d ? 0 : -1;
        if (r) freeReplyObject(r);
        if (d) freeReplyObject(d);
    } else if (dump && ttl) {
        rc = 0; /* gone since the scan: expired */
    }
    if (dump) freeReplyObject(dump);
    if (ttl) freeReplyObject(ttl);
    return rc;
}

int main(int argc, char **argv) {
    const char *file = NULL, *partitioner = NULL, *settings[MAX_X_FLAGS];
    int setting_count = 0, dry_run = 0;
    long from = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(arg, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(arg, "--dry-run") == 0) {
            dry_run = 1;
        } else if (strcmp(arg, "-c") == 0 && has_value) {
            file = argv[++i];
        } else if (strcmp(arg, "-X") == 0 && has_value && setting_count < MAX_X_FLAGS) {
            settings[setting_count++] = argv[++i];
        } else if (strcmp(arg, "--from") == 0 && has_value) {
            from = strtol(argv[++i], NULL, 10);
        } else if (strcmp(arg, "--partitioner") == 0 && has_value) {
            partitioner = argv[++i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (from < 1 || !partitioner || kafka_io_partition_of_key(partitioner, "k", 1, 1) < 0) {
        fprintf(stderr, "fraud-repartition: --from N (N >= 1) and --partitioner "
                        "murmur2_random|consistent_random|fnv1a_random are required\n");
        return 2;
    }

    char errstr[1024];
    config_t *cfg = config_new();
    redis_conn_t *conn = NULL;
    plan_t plan = {0};
    int32_t to_count = 0;
    int rc = 1;
    if (!cfg || config_load_sources(cfg, file, environ, settings, setting_count, errstr,
                                    sizeof(errstr)) != 0)
        goto fail;
    redis_url_t url;
    if (redis_url_parse(cfg->redis_url, &url, errstr, sizeof(errstr)) != 0) goto fail;
    memset(url.password, 0, sizeof(url.password));
    if (url.cluster) {
        snprintf(errstr, sizeof(errstr),
                 "works on one Redis, not on a Redis Cluster (redis.url is redis-cluster://); "
                 "see README, \"Changing the partition count\"");
        goto fail;
    }
    redis_conn_options_t opts = {.url = cfg->redis_url,
                                 .password_file = cfg->redis_password_file,
                                 .connect_timeout_ms = cfg->redis_connect_timeout_ms,
                                 .command_timeout_ms = cfg->redis_command_timeout_ms};
    if (!(conn = redis_conn_new(&opts, errstr, sizeof(errstr))) ||
        check_drained(cfg, conn, (int32_t)from, &to_count, errstr, sizeof(errstr)) != 0)
        goto fail;
    /* The new partitions too: what a run before this one moved must be where
     * it belongs. */
    for (int32_t p = 0; p < to_count; p++)
        if (plan_partition(cfg, conn, partitioner, p, (int32_t)from, to_count, &plan, errstr,
                           sizeof(errstr)) != 0)
            goto fail;
    printf("%s: %d -> %d partitions (%s): %zu user(s) to move, %zu stay, %zu moved before\n",
           cfg->input_topic, (int)from, (int)to_count, partitioner, plan.count, plan.stay,
           plan.already_moved);
    for (size_t i = 0; i < plan.count; i++) {
        const move_t *m = &plan.moves[i];
        if (dry_run) {
            printf("  %s: %d -> %d\n", m->user, (int)m->from, (int)m->to);
        } else if (move_user(cfg, conn, m, errstr, sizeof(errstr)) != 0) {
            fprintf(stderr, "fraud-repartition: %zu of %zu moved; run again to finish\n", i,
                    plan.count);
            goto fail;
        }
    }
    if (!dry_run) printf("moved %zu user(s)\n", plan.count);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "fraud-repartition: %s\n", cfg ? errstr : "out of memory");
done:
    for (size_t i = 0; i < plan.count; i++) free(plan.moves[i].user);
    free(plan.moves);
    redis_conn_destroy(conn);
    config_destroy(cfg);
    return rc;
}
