/* store_redis: hiredis, blocking, with pipelining, through redis_cluster.
 *
 * Each call is one pipeline (per node, on a cluster): its commands are
 * built on demand by the callbacks below, then its replies are judged in
 * order. A lost connection fails the whole call. Retrying is safe: a
 * partition step whose first attempt did land is refused by its checkpoint
 * comparison and reported as a conflict whose actual_checkpoint equals its
 * next_offset, which the caller treats as done. */
#include "store_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "errstr.h"
#include "redis_argv.h"
#include "redis_cluster.h"
#include "store_keys.h"
#include "store_step.h"
#include "user_hash.h"

struct store {
    redis_cluster_t *redis;
    char *key_prefix;
    char *topic;
    uint16_t *slots; /* per partition: its slot + 1; 0 not computed yet */
    size_t slots_cap;
    redisReply **replies;
    size_t replies_cap;
    size_t *picked; /* store_outbox_remove: which steps send an HDEL */
    size_t picked_cap;
    store_steps_t *own_steps; /* store_commit_steps() */
};

static int add_partition_key(store_t *s, redis_argv_t *b, int32_t partition, const char *what) {
    char key[1024];
    size_t len = store_partition_key(s->key_prefix, s->topic, partition, what, strlen(what),
                                     key, sizeof(key));
    return len ? redis_argv_add(b, key, len) : -1;
}

static int add_user_key(store_t *s, redis_argv_t *b, int32_t partition, const char *user,
                        size_t user_len) {
    char key[1024];
    size_t len = store_user_key(s->key_prefix, s->topic, partition, user, user_len, key,
                                sizeof(key));
    return len ? redis_argv_add(b, key, len) : -1;
}

/* A partition's slot, computed once. */
static uint16_t partition_slot(store_t *s, int32_t partition) {
    size_t p = partition >= 0 ? (size_t)partition : 0;
    if (p < s->slots_cap && s->slots[p]) return (uint16_t)(s->slots[p] - 1);
    uint16_t slot = store_partition_slot(s->key_prefix, s->topic, partition);
    if (p >= s->slots_cap) {
        size_t cap = p * 2 + 16;
        uint16_t *grown = realloc(s->slots, cap * sizeof(*grown));
        if (!grown) return slot; /* computed again next time */
        memset(grown + s->slots_cap, 0, (cap - s->slots_cap) * sizeof(*grown));
        s->slots = grown;
        s->slots_cap = cap;
    }
    s->slots[p] = (uint16_t)(slot + 1);
    return slot;
}

/* A reply array for `count` commands, kept between calls. */
static redisReply **replies_for(store_t *s, size_t count, char *errstr, size_t errstr_size) {
    if (count > s->replies_cap) {
        redisReply **grown = realloc(s->replies, count * 2 * sizeof(*grown));
        if (!grown) {
            errstr_set(errstr, errstr_size, "out of memory");
            return NULL;
        }
        s->replies = grown;
        s->replies_cap = count * 2;
    }
    return s->replies;
}

static void free_replies(redisReply **replies, size_t count) {
    for (size_t i = 0; i < count; i++) freeReplyObject(replies[i]);
}

store_t *store_new(const store_options_t *opts, char *errstr, size_t errstr_size) {
    store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        errstr_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    redis_conn_options_t conn_opts = {
        .url = opts->url, .password_file = opts->password_file,
        .connect_timeout_ms = opts->connect_timeout_ms,
        .command_timeout_ms = opts->command_timeout_ms, .script = STORE_STEP_SCRIPT,
    };
    s->redis = redis_cluster_new(&conn_opts, errstr, errstr_size);
    if (!s->redis) {
        store_destroy(s);
        return NULL;
    }
    s->key_prefix = strdup(opts->key_prefix);
    s->topic = strdup(opts->topic);
    if (!s->key_prefix || !s->topic) {
        errstr_set(errstr, errstr_size, "out of memory");
        store_destroy(s);
        return NULL;
    }
    if (store_ping(s, errstr, errstr_size) != 0) {
        store_destroy(s);
        return NULL;
    }
    return s;
}

void store_destroy(store_t *store) {
    if (!store) return;
    redis_cluster_destroy(store->redis);
    free(store->key_prefix);
    free(store->topic);
    free(store->slots);
    free(store->replies);
    free(store->picked);
    store_steps_destroy(store->own_steps);
    free(store);
}

/* The read of one user hash: HGETALL (even commands), then PTTL (odd
 * ones). */
static int build_user_read(store_t *s, redis_argv_t *b, int32_t partition, const char *user,
                           size_t user_len, int pttl) {
    if (pttl)
        return redis_argv_add(b, "PTTL", 4) || add_user_key(s, b, partition, user, user_len);
    return redis_argv_add(b, "HGETALL", 7) || add_user_key(s, b, partition, user, user_len);
}

typedef struct load_job {
    store_t *store;
    cache_entry_t *const *entries;
} load_job_t;

static uint16_t load_slot(void *arg, size_t i) {
    load_job_t *job = arg;
    return partition_slot(job->store, job->entries[i / 2]->partition);
}

static int load_build(void *arg, size_t i, redis_argv_t *b, const char *sha) {
    (void)sha;
    load_job_t *job = arg;
    const cache_entry_t *e = job->entries[i / 2];
    return build_user_read(job->store, b, e->partition, e->user, e->user_len, (int)(i % 2));
}

int store_load_users(store_t *s, cache_entry_t *const *entries, size_t count, int64_t now_ms,
                     char *errstr, size_t errstr_size) {
    if (count == 0) return 0;
    redisReply **replies = replies_for(s, 2 * count, errstr, errstr_size);
    load_job_t job = {s, entries};
    redis_pipeline_t p = {.count = 2 * count, .arg = &job, .slot_of = load_slot,
                          .build = load_build, .what = "HGETALL"};
    if (!replies || redis_cluster_run(s->redis, &p, replies, errstr, errstr_size) != 0)
        return -1;
    const cache_entry_t *corrupt_entry = NULL;
    for (size_t i = 0; i < count && !corrupt_entry; i++) {
        cache_entry_t *e = entries[i];
        stored_user_t stored;
        if (user_hash_parse(replies[2 * i], replies[2 * i + 1], &stored) != 0) {
            corrupt_entry = e;
            continue;
        }
        user_state_reset(&e->state);
        e->state = stored.state;
        e->expires_at_ms = stored.ttl_left_ms > 0 ? now_ms + stored.ttl_left_ms : 0;
        if (stored.ttl_left_ms > 0) e->flags |= CACHE_ENTRY_REDIS_TTL;
        if (stored.has_rule_fields) e->flags |= CACHE_ENTRY_RULE_FIELDS;
        e->flags |= CACHE_ENTRY_LOADED;
    }
    free_replies(replies, 2 * count);
    if (corrupt_entry) {
        errstr_set(errstr, errstr_size, "redis: corrupt state for user %.*s of partition %d",
                   (int)corrupt_entry->user_len, corrupt_entry->user,
                   (int)corrupt_entry->partition);
        redis_cluster_count_error(s->redis);
        return -1;
    }
    return 0;
}

int store_run_pipeline(store_t *s, const redis_pipeline_t *pipeline, redisReply **replies,
                       char *errstr, size_t errstr_size) {
    return redis_cluster_run(s->redis, pipeline, replies, errstr, errstr_size);
}

void store_count_error(store_t *s) { redis_cluster_count_error(s->redis); }

int store_commit_steps(store_t *s, store_step_t *steps, size_t count, int64_t ttl_ms,
                       char *errstr, size_t errstr_size) {
    if (count == 0) return 0;
    if (!s->own_steps && !(s->own_steps = store_steps_new(s->key_prefix, s->topic))) {
        errstr_set(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (store_steps_build(s->own_steps, steps, count, ttl_ms, errstr, errstr_size) != 0 ||
        store_steps_run(s->own_steps, s, errstr, errstr_size) != 0)
        return -1;
    size_t ran;
    const store_step_t *outcome = store_steps_outcome(s->own_steps, &ran);
    for (size_t i = 0; i < ran; i++) {
        steps[i].conflict = outcome[i].conflict;
        steps[i].actual_checkpoint = outcome[i].actual_checkpoint;
    }
    return 0;
}

/* One command on one key of a partition: the partition's own key `what`,
 * or a user's key; with an integer argument when has_arg. */
typedef struct key_command {
    store_t *store;
    const char *verb;
    int32_t partition;
    const char *what;
    const char *user;
    size_t user_len;
    int has_arg;
    int64_t arg;
} key_command_t;

static uint16_t key_command_slot(void *arg, size_t i) {
    (void)i;
    key_command_t *kc = arg;
    return partition_slot(kc->store, kc->partition);
}

static int key_command_build(void *arg, size_t i, redis_argv_t *b, const char *sha) {
    (void)i, (void)sha;
    key_command_t *kc = arg;
    if (redis_argv_add(b, kc->verb, strlen(kc->verb)) ||
        (kc->user ? add_user_key(kc->store, b, kc->partition, kc->user, kc->user_len)
                  : add_partition_key(kc->store, b, kc->partition, kc->what)))
        return -1;
    return kc->has_arg ? redis_argv_add_int(b, kc->arg) : 0;
}

/* Its reply (the caller frees it), or NULL with errstr. */
static redisReply *run_key_command(store_t *s, key_command_t *kc, char *errstr,
                                   size_t errstr_size) {
    redisReply *r = NULL;
    redis_pipeline_t p = {.count = 1, .arg = kc, .slot_of = key_command_slot,
                          .build = key_command_build, .what = kc->verb};
    return redis_cluster_run(s->redis, &p, &r, errstr, errstr_size) == 0 ? r : NULL;
}

int store_get_checkpoint(store_t *s, int32_t partition, int64_t *offset, char *errstr,
                         size_t errstr_size) {
    key_command_t kc = {.store = s, .verb = "GET", .partition = partition,
                        .what = "checkpoint"};
    redisReply *r = run_key_command(s, &kc, errstr, errstr_size);
    if (!r) return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_NIL) *offset = -1;
    else if (r->type != REDIS_REPLY_STRING || store_checkpoint_parse(r->str, r->len, offset) != 0) {
        errstr_set(errstr, errstr_size, "redis: corrupt checkpoint of partition %d",
                   (int)partition);
        redis_cluster_count_error(s->redis);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

int store_outbox_load(store_t *s, int32_t partition, store_outbox_t *out, char *errstr,
                      size_t errstr_size) {
    memset(out, 0, sizeof(*out));
    key_command_t kc = {.store = s, .verb = "HGETALL", .partition = partition,
                        .what = "outbox"};
    redisReply *r = run_key_command(s, &kc, errstr, errstr_size);
    if (!r) return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        freeReplyObject(r);
        errstr_set(errstr, errstr_size, "redis: unexpected outbox of partition %d",
                   (int)partition);
        redis_cluster_count_error(s->redis);
        return -1;
    }
    out->count = r->elements / 2;
    out->alerts = out->count ? calloc(out->count, sizeof(*out->alerts)) : NULL;
    if (out->count && !out->alerts) {
        freeReplyObject(r);
        errstr_set(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < out->count; i++) {
        out->alerts[i].id = r->element[2 * i]->str;
        out->alerts[i].json = r->element[2 * i + 1]->str;
    }
    out->reply_ = r;
    return 0;
}

void store_outbox_free(store_outbox_t *outbox) {
    free(outbox->alerts);
    if (outbox->reply_) freeReplyObject(outbox->reply_);
    memset(outbox, 0, sizeof(*outbox));
}

typedef struct remove_job {
    store_t *store;
    const store_step_t *steps;
    const size_t *picked;
} remove_job_t;

static uint16_t remove_slot(void *arg, size_t i) {
    remove_job_t *job = arg;
    return partition_slot(job->store, job->steps[job->picked[i]].partition);
}

static int remove_build(void *arg, size_t i, redis_argv_t *b, const char *sha) {
    (void)sha;
    remove_job_t *job = arg;
    const store_step_t *st = &job->steps[job->picked[i]];
    if (redis_argv_add(b, "HDEL", 4) || add_partition_key(job->store, b, st->partition, "outbox"))
        return -1;
    for (size_t k = 0; k < st->alert_count; k++)
        if (redis_argv_add(b, st->alerts[k].id, strlen(st->alerts[k].id))) return -1;
    return 0;
}

int store_outbox_remove(store_t *s, const store_step_t *steps, size_t count, char *errstr,
                        size_t errstr_size) {
    if (count > s->picked_cap) {
        size_t *grown = realloc(s->picked, count * 2 * sizeof(*grown));
        if (!grown) {
            errstr_set(errstr, errstr_size, "out of memory");
            return -1;
        }
        s->picked = grown;
        s->picked_cap = count * 2;
    }
    size_t sent = 0;
    for (size_t i = 0; i < count; i++)
        if (steps[i].alert_count > 0 && !steps[i].conflict) s->picked[sent++] = i;
    if (sent == 0) return 0;
    redisReply **replies = replies_for(s, sent, errstr, errstr_size);
    remove_job_t job = {s, steps, s->picked};
    redis_pipeline_t p = {.count = sent, .arg = &job, .slot_of = remove_slot,
                          .build = remove_build, .what = "HDEL outbox"};
    if (!replies || redis_cluster_run(s->redis, &p, replies, errstr, errstr_size) != 0)
        return -1;
    int bad = 0;
    for (size_t i = 0; i < sent; i++) bad |= replies[i]->type == REDIS_REPLY_ERROR;
    if (bad) {
        errstr_set(errstr, errstr_size, "redis: HDEL outbox refused");
        redis_cluster_count_error(s->redis);
    }
    free_replies(replies, sent);
    return bad ? -1 : 0;
}

typedef struct find_job {
    store_t *store;
    const char *user;
    size_t user_len;
} find_job_t;

static uint16_t find_slot(void *arg, size_t i) {
    find_job_t *job = arg;
    return partition_slot(job->store, (int32_t)(i / 2));
}

static int find_build(void *arg, size_t i, redis_argv_t *b, const char *sha) {
    (void)sha;
    find_job_t *job = arg;
    return build_user_read(job->store, b, (int32_t)(i / 2), job->user, job->user_len,
                           (int)(i % 2));
}

int store_find_user(store_t *s, const char *user, size_t user_len, int32_t partition_count,
                    store_user_view_t *out, char *errstr, size_t errstr_size) {
    memset(out, 0, sizeof(*out));
    if (partition_count <= 0) return 0;
    size_t count = 2 * (size_t)partition_count;
    redisReply **replies = replies_for(s, count, errstr, errstr_size);
    find_job_t job = {s, user, user_len};
    redis_pipeline_t p = {.count = count, .arg = &job, .slot_of = find_slot,
                          .build = find_build, .what = "user lookup"};
    if (!replies || redis_cluster_run(s->redis, &p, replies, errstr, errstr_size) != 0)
        return -1;
    int rc = 0;
    for (int32_t part = 0; part < partition_count; part++) {
        stored_user_t stored;
        int corrupt = user_hash_parse(replies[2 * part], replies[2 * part + 1], &stored) != 0;
        if (corrupt && rc == 0) {
            errstr_set(errstr, errstr_size, "redis: corrupt state for user %.*s of partition %d",
                       (int)user_len, user, (int)part);
            redis_cluster_count_error(s->redis);
            rc = -1;
        } else if (!corrupt && !out->found && stored.state.count > 0) {
            out->found = 1;
            out->partition = part;
            out->state.prev = stored.state.prev;
            out->state.cum = stored.state.cum;
            out->state.count = stored.state.count;
            out->ttl_ms = stored.ttl_left_ms;
        }
        if (!corrupt) user_state_reset(&stored.state);
    }
    free_replies(replies, count);
    return rc;
}

int store_touch_user(store_t *s, int32_t partition, const char *user, size_t user_len,
                     int64_t ttl_ms, char *errstr, size_t errstr_size) {
    key_command_t kc = {.store = s, .verb = "PEXPIRE", .partition = partition, .user = user,
                        .user_len = user_len, .has_arg = 1, .arg = ttl_ms};
    redisReply *r = run_key_command(s, &kc, errstr, errstr_size);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

int store_ping(store_t *s, char *errstr, size_t errstr_size) {
    return redis_cluster_ping(s->redis, errstr, errstr_size);
}

uint64_t store_commands_total(const store_t *store) {
    return redis_cluster_commands_total(store->redis);
}

uint64_t store_errors_total(const store_t *store) {
    return redis_cluster_errors_total(store->redis);
}

uint64_t store_redirects_total(const store_t *store) {
    return redis_cluster_redirects(store->redis);
}

uint64_t store_map_reads_total(const store_t *store) {
    return redis_cluster_map_reads(store->redis);
}
