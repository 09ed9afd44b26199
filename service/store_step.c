/* store_step: the partition step's script, its commands, and their
 * replies. */
#include "store_step.h"

#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "errstr.h"
#include "redis_argv.h"
#include "redis_cluster.h"
#include "store_keys.h"
#include "user_hash.h"

/* KEYS: checkpoint, outbox, then the users. ARGV: expected checkpoint (""
 * for none), next offset, ttl ms, user count, the user hash's field names
 * (their count first), then per user its write as user_hash.h says (a
 * shape, and the values of the four core fields when it is 15; else how
 * many field/value pairs to set, the pairs, how many fields to delete,
 * their names), then outbox id/json pairs. The shape 15, the four core
 * fields and nothing else, is nearly every user with the default rules:
 * 5 arguments instead of 13 saved Redis about 2 us of its 9.5 per new key.
 * (Naming every shape's fields by bit cost the other shapes a Lua table
 * each, 3.5 us more per user: measured, and not kept.) With
 * the TTL off, a PERSIST per user cost about a third of the step's time at
 * 100,000 users, so it is sent only for keys loaded with a TTL. */
#define SHAPE_TEXT_(n) #n
#define SHAPE_TEXT(n) SHAPE_TEXT_(n)
const char STORE_STEP_SCRIPT[] =
    "local current = redis.call('GET', KEYS[1])\n"
    "if (current or '') ~= ARGV[1] then return {0, current or ''} end\n"
    "local n = tonumber(ARGV[4])\n"
    "local ttl = tonumber(ARGV[3])\n"
    "local nf = tonumber(ARGV[5])\n"
    "local F = {unpack(ARGV, 6, 5 + nf)}\n"
    "local band, ERASE, PERSIST = bit.band, 2 ^ 20, 2 ^ 21\n"
    "local a = 6 + nf\n"
    "for i = 1, n do\n"
    "  local k = KEYS[2 + i]\n"
    "  local s = ARGV[a]\n"
    "  a = a + 1\n"
    "  if s == '" SHAPE_TEXT(USER_HASH_CORE_ONLY) "' then\n"
    "    redis.call('HSET', k, F[1], ARGV[a], F[2], ARGV[a + 1], F[3], ARGV[a + 2], F[4],"
    " ARGV[a + 3])\n"
    "    a = a + 4\n"
    "    if ttl > 0 then redis.call('PEXPIRE', k, ttl) end\n"
    "  else\n"
    "    local shape = tonumber(s)\n"
    "    if band(shape, ERASE) ~= 0 then redis.call('DEL', k) end\n"
    "    local sets = tonumber(ARGV[a])\n"
    "    a = a + 1\n"
    "    if sets > 0 then redis.call('HSET', k, unpack(ARGV, a, a + 2 * sets - 1)) end\n"
    "    a = a + 2 * sets\n"
    "    local dels = tonumber(ARGV[a])\n"
    "    if dels > 0 then redis.call('HDEL', k, unpack(ARGV, a + 1, a + dels)) end\n"
    "    a = a + 1 + dels\n"
    "    if sets > 0 then\n"
    "      if ttl > 0 then redis.call('PEXPIRE', k, ttl)\n"
    "      elseif band(shape, PERSIST) ~= 0 then redis.call('PERSIST', k) end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "while a < #ARGV do\n"
    "  redis.call('HSET', KEYS[2], ARGV[a], ARGV[a + 1])\n"
    "  a = a + 2\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[2])\n"
    "return {1, ARGV[2]}\n";

/* Where EVALSHA's SHA1 goes in a built command: each connection sends its
 * own, as loaded there. */
#define SHA_ARG 1
#define SHA_PLACEHOLDER "0000000000000000000000000000000000000000"

struct store_steps {
    char *key_prefix;
    char *topic;
    store_step_t *steps; /* copies: partition, offsets, outcome */
    uint16_t *slots;
    redis_argv_t *commands; /* one per step, built with the placeholder SHA */
    size_t count, cap;
    redisReply **replies;
};

store_steps_t *store_steps_new(const char *key_prefix, const char *topic) {
    store_steps_t *ss = calloc(1, sizeof(*ss));
    if (!ss) return NULL;
    ss->key_prefix = strdup(key_prefix);
    ss->topic = strdup(topic);
    if (!ss->key_prefix || !ss->topic) {
        store_steps_destroy(ss);
        return NULL;
    }
    return ss;
}

void store_steps_destroy(store_steps_t *ss) {
    if (!ss) return;
    for (size_t i = 0; i < ss->cap; i++) redis_argv_free(&ss->commands[i]);
    free(ss->commands);
    free(ss->steps);
    free(ss->slots);
    free(ss->replies);
    free(ss->key_prefix);
    free(ss->topic);
    free(ss);
}

static int reserve(store_steps_t *ss, size_t count) {
    if (count <= ss->cap) return 0;
    size_t cap = count * 2;
    store_step_t *steps = realloc(ss->steps, cap * sizeof(*steps));
    if (steps) ss->steps = steps;
    uint16_t *slots = realloc(ss->slots, cap * sizeof(*slots));
    if (slots) ss->slots = slots;
    redisReply **replies = realloc(ss->replies, cap * sizeof(*replies));
    if (replies) ss->replies = replies;
    redis_argv_t *commands = realloc(ss->commands, cap * sizeof(*commands));
    if (commands) {
        memset(commands + ss->cap, 0, (cap - ss->cap) * sizeof(*commands));
        ss->commands = commands;
    }
    /* The capacity grows only once every array has it. */
    if (!steps || !slots || !replies || !commands) return -1;
    ss->cap = cap;
    return 0;
}

static int add_partition_key(const store_steps_t *ss, redis_argv_t *b, int32_t partition,
                             const char *what) {
    char key[1024];
    size_t len = store_partition_key(ss->key_prefix, ss->topic, partition, what, strlen(what),
                                     key, sizeof(key));
    return len ? redis_argv_add(b, key, len) : -1;
}

static int add_user_key(const store_steps_t *ss, redis_argv_t *b, int32_t partition,
                        const cache_entry_t *e) {
    char key[1024];
    size_t len = store_user_key(ss->key_prefix, ss->topic, partition, e->user, e->user_len, key,
                                sizeof(key));
    return len ? redis_argv_add(b, key, len) : -1;
}

static int build_one(const store_steps_t *ss, redis_argv_t *b, const store_step_t *st,
                     int64_t ttl_ms) {
    redis_argv_reset(b);
    if (redis_argv_add(b, "EVALSHA", 7) || redis_argv_add(b, SHA_PLACEHOLDER, 40) ||
        redis_argv_add_int(b, (int64_t)(2 + st->user_count)) ||
        add_partition_key(ss, b, st->partition, "checkpoint") ||
        add_partition_key(ss, b, st->partition, "outbox"))
        return -1;
    for (size_t k = 0; k < st->user_count; k++)
        if (add_user_key(ss, b, st->partition, st->users[k])) return -1;
    if ((st->expected_checkpoint >= 0 ? redis_argv_add_int(b, st->expected_checkpoint)
                                      : redis_argv_add(b, "", 0)) ||
        redis_argv_add_int(b, st->next_offset) || redis_argv_add_int(b, ttl_ms) ||
        redis_argv_add_int(b, (int64_t)st->user_count) ||
        redis_argv_add_int(b, USER_HASH_FIELD_COUNT) || user_hash_add_field_names(b))
        return -1;
    for (size_t k = 0; k < st->user_count; k++) {
        cache_entry_t *e = st->users[k];
        bool drop_ttl = ttl_ms <= 0 && (e->flags & CACHE_ENTRY_REDIS_TTL);
        if (user_hash_add_fields(b, e, drop_ttl) != 0) return -1;
    }
    for (size_t k = 0; k < st->alert_count; k++)
        if (redis_argv_add(b, st->alerts[k].id, strlen(st->alerts[k].id)) ||
            redis_argv_add(b, st->alerts[k].json, strlen(st->alerts[k].json)))
            return -1;
    return 0;
}

int store_steps_build(store_steps_t *ss, const store_step_t *steps, size_t count,
                      int64_t ttl_ms, char *errstr, size_t errstr_size) {
    ss->count = 0;
    if (reserve(ss, count) != 0) {
        errstr_set(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const store_step_t *st = &steps[i];
        if (build_one(ss, &ss->commands[i], st, ttl_ms) != 0) {
            errstr_set(errstr, errstr_size, "redis: cannot build the step of partition %d",
                       (int)st->partition);
            return -1;
        }
        /* The TTL as the step leaves it. Were the step refused, the
         * partition's entries are dropped anyway. */
        for (size_t k = 0; k < st->user_count; k++) {
            if (ttl_ms > 0) st->users[k]->flags |= CACHE_ENTRY_REDIS_TTL;
            else st->users[k]->flags &= (uint8_t)~CACHE_ENTRY_REDIS_TTL;
        }
        ss->steps[i] = (store_step_t){.partition = st->partition,
                                      .expected_checkpoint = st->expected_checkpoint,
                                      .next_offset = st->next_offset,
                                      .user_count = st->user_count,
                                      .alert_count = st->alert_count,
                                      .actual_checkpoint = -1};
        ss->slots[i] = store_partition_slot(ss->key_prefix, ss->topic, st->partition);
    }
    ss->count = count;
    return 0;
}

static uint16_t step_slot(void *arg, size_t i) {
    const store_steps_t *ss = arg;
    return ss->slots[i];
}

static int step_command(void *arg, size_t i, redis_argv_t *b, const char *sha) {
    const store_steps_t *ss = arg;
    return redis_argv_add(b, "EVALSHA", 7) || redis_argv_add(b, sha, 40) ||
           redis_argv_add_from(b, &ss->commands[i], SHA_ARG + 1);
}

int store_steps_run(store_steps_t *ss, store_t *store, char *errstr, size_t errstr_size) {
    if (ss->count == 0) return 0;
    redis_pipeline_t p = {.count = ss->count, .arg = ss, .slot_of = step_slot,
                          .build = step_command, .what = "partition step"};
    if (store_run_pipeline(store, &p, ss->replies, errstr, errstr_size) != 0) return -1;
    int failed = 0;
    for (size_t i = 0; i < ss->count; i++) {
        const redisReply *r = ss->replies[i];
        store_step_t *st = &ss->steps[i];
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_INTEGER &&
            r->element[1]->type == REDIS_REPLY_STRING &&
            store_checkpoint_parse(r->element[1]->str, r->element[1]->len,
                                   &st->actual_checkpoint) == 0) {
            st->conflict = r->element[0]->integer == 0;
        } else if (!failed) {
            failed = 1;
            errstr_set(errstr, errstr_size, "redis: partition %d step refused: %.200s",
                       (int)st->partition,
                       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        }
    }
    for (size_t i = 0; i < ss->count; i++) freeReplyObject(ss->replies[i]);
    if (failed) store_count_error(store);
    return failed ? -1 : 0;
}

const store_step_t *store_steps_outcome(const store_steps_t *ss, size_t *count) {
    *count = ss->count;
    return ss->steps;
}
