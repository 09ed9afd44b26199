/* store_redis: hiredis, blocking, with pipelining.
 *
 * A pipeline is appended in full, then every reply is read: a failure in the
 * middle (hiredis sets c->err and the context is dead) fails the whole call.
 * Retrying is safe: a partition step whose first attempt did land is refused
 * by its checkpoint comparison and reported as a conflict whose
 * actual_checkpoint equals its next_offset, which the caller treats as done. */
#include "errstr.h"
#include "store_redis.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis.h>

/* The atomic partition step. KEYS: checkpoint, outbox, then the users.
 * ARGV: expected checkpoint ("" for none), next offset, ttl ms, user count,
 * then per user: how many field/value pairs to set, the pairs, how many
 * fields to delete, the fields; then alert id/json pairs. */
static const char COMMIT_SCRIPT[] =
    "local current = redis.call('GET', KEYS[1])\n"
    "if (current or '') ~= ARGV[1] then return {0, current or ''} end\n"
    "local n = tonumber(ARGV[4])\n"
    "local ttl = tonumber(ARGV[3])\n"
    "local a = 5\n"
    "for i = 1, n do\n"
    "  local k = KEYS[2 + i]\n"
    "  local sets = tonumber(ARGV[a])\n"
    "  redis.call('HSET', k, unpack(ARGV, a + 1, a + 2 * sets))\n"
    "  a = a + 1 + 2 * sets\n"
    "  local dels = tonumber(ARGV[a])\n"
    "  if dels > 0 then redis.call('HDEL', k, unpack(ARGV, a + 1, a + dels)) end\n"
    "  a = a + 1 + dels\n"
    "  if ttl > 0 then redis.call('PEXPIRE', k, ttl) else redis.call('PERSIST', k) end\n"
    "end\n"
    "while a < #ARGV do\n"
    "  redis.call('HSET', KEYS[2], ARGV[a], ARGV[a + 1])\n"
    "  a = a + 2\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[2])\n"
    "return {1, ARGV[2]}\n";

/* A user's hash: prev, cum, count, then what the rules remember, each field
 * present only while it holds something. */
static const char *const RULE_FIELDS[] = {"cl", "stl", "avgn", "avgs", "vel"};
#define RULE_FIELD_COUNT 5
#define USER_FIELD_COUNT (3 + RULE_FIELD_COUNT)

/* Arguments of one command, built in a reusable arena. Strings are kept as
 * offsets while building, since the arena may move when it grows. */
typedef struct argv_builder {
    char *arena;
    size_t used, cap;
    size_t *offsets, *lens;
    size_t count, slots;
    const char **argv; /* valid after argv_finish() */
} argv_builder_t;

struct store {
    char host[256];
    int port;
    int db;
    char username[128];
    char password[256];
    char *key_prefix;
    char *topic;
    struct timeval connect_timeout, command_timeout;
    redisContext *ctx;
    char script_sha[41];
    argv_builder_t args;
    uint64_t commands, errors;
};

static void argv_reset(argv_builder_t *b) {
    b->used = 0;
    b->count = 0;
}

static int argv_reserve(argv_builder_t *b, size_t bytes) {
    if (b->count == b->slots) {
        size_t slots = b->slots ? b->slots * 2 : 64;
        size_t *offsets = realloc(b->offsets, slots * sizeof(*offsets));
        if (!offsets) return -1;
        b->offsets = offsets;
        size_t *lens = realloc(b->lens, slots * sizeof(*lens));
        if (!lens) return -1;
        b->lens = lens;
        const char **argv = realloc(b->argv, slots * sizeof(*argv));
        if (!argv) return -1;
        b->argv = argv;
        b->slots = slots;
    }
    if (b->used + bytes > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->used + bytes) cap *= 2;
        char *arena = realloc(b->arena, cap);
        if (!arena) return -1;
        b->arena = arena;
        b->cap = cap;
    }
    return 0;
}

static int argv_add(argv_builder_t *b, const char *data, size_t len) {
    if (argv_reserve(b, len) != 0) return -1;
    memcpy(b->arena + b->used, data, len);
    b->offsets[b->count] = b->used;
    b->lens[b->count++] = len;
    b->used += len;
    return 0;
}

static int argv_addf(argv_builder_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int argv_addf(argv_builder_t *b, const char *fmt, ...) {
    char tmp[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) return -1;
    return argv_add(b, tmp, (size_t)n);
}

static int argv_add_decimal(argv_builder_t *b, decimal_t value) {
    char text[DECIMAL_TEXT_MAX];
    return argv_add(b, text, decimal_format(value, text, sizeof(text)));
}

static const char **argv_finish(argv_builder_t *b) {
    for (size_t i = 0; i < b->count; i++) b->argv[i] = b->arena + b->offsets[i];
    return b->argv;
}

static void argv_free(argv_builder_t *b) {
    free(b->arena);
    free(b->offsets);
    free(b->lens);
    free(b->argv);
    memset(b, 0, sizeof(*b));
}

size_t store_user_key(const char *prefix, const char *topic, int32_t partition,
                      const char *user, size_t user_len, char *buf, size_t bufsize) {
    int n = snprintf(buf, bufsize, "%s{%s/%d}:user:", prefix, topic, (int)partition);
    if (n < 0 || (size_t)n + user_len >= bufsize) return 0;
    memcpy(buf + n, user, user_len);
    buf[n + user_len] = '\0';
    return (size_t)n + user_len;
}

static int add_partition_key(store_t *s, argv_builder_t *b, int32_t partition,
                             const char *what) {
    return argv_addf(b, "%s{%s/%d}:%s", s->key_prefix, s->topic, (int)partition, what);
}

static int add_user_key(store_t *s, argv_builder_t *b, const cache_entry_t *e) {
    char key[1024];
    size_t len = store_user_key(s->key_prefix, s->topic, e->partition, e->user, e->user_len,
                                key, sizeof(key));
    return len ? argv_add(b, key, len) : -1;
}


static struct timeval ms_to_timeval(int64_t ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_url(store_t *s, const char *url, char *errstr, size_t errstr_size) {
    const char *p = url, *at, *slash, *colon, *host_end;
    if (strncmp(p, "redis://", 8) != 0) {
        errstr_set(errstr, errstr_size, "redis.url: must start with redis://");
        return -1;
    }
    p += 8;
    s->port = 6379;
    slash = strchr(p, '/');
    host_end = slash ? slash : p + strlen(p);
    at = NULL;
    for (const char *q = p; q < host_end; q++)
        if (*q == '@') at = q;
    if (at) {
        colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            size_t ulen = (size_t)(colon - p), plen = (size_t)(at - colon - 1);
            if (ulen >= sizeof(s->username) || plen >= sizeof(s->password)) goto bad;
            memcpy(s->username, p, ulen);
            memcpy(s->password, colon + 1, plen);
        } else {
            size_t plen = (size_t)(at - p);
            if (plen >= sizeof(s->password)) goto bad;
            memcpy(s->password, p, plen);
        }
        p = at + 1;
    }
    colon = memchr(p, ':', (size_t)(host_end - p));
    size_t hlen = (size_t)((colon ? colon : host_end) - p);
    if (hlen == 0 || hlen >= sizeof(s->host)) goto bad;
    memcpy(s->host, p, hlen);
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != host_end || port < 1 || port > 65535) goto bad;
        s->port = (int)port;
    }
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 100000) goto bad;
        s->db = (int)db;
    }
    return 0;
bad:
    errstr_set(errstr, errstr_size,
              "redis.url: expected redis://[[user]:password@]host[:port][/db]");
    return -1;
}

static void disconnect(store_t *s) {
    if (s->ctx) redisFree(s->ctx);
    s->ctx = NULL;
}

static int expect_ok_reply(store_t *s, redisReply *reply, const char *what, char *errstr,
                           size_t errstr_size) {
    if (!reply) {
        errstr_set(errstr, errstr_size, "redis %s:%d: %s failed: %s", s->host, s->port, what,
                  s->ctx && s->ctx->errstr[0] ? s->ctx->errstr : "no reply");
        return -1;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        errstr_set(errstr, errstr_size, "redis %s:%d: %s refused: %.200s", s->host, s->port,
                  what, reply->str);
        freeReplyObject(reply);
        return -1;
    }
    freeReplyObject(reply);
    return 0;
}

static int ensure_connected(store_t *s, char *errstr, size_t errstr_size) {
    if (s->ctx) return 0;
    redisContext *c = redisConnectWithTimeout(s->host, s->port, s->connect_timeout);
    if (!c || c->err) {
        errstr_set(errstr, errstr_size, "redis %s:%d: cannot connect: %s", s->host, s->port,
                  c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        s->errors++;
        return -1;
    }
    s->ctx = c;
    if (redisSetTimeout(c, s->command_timeout) != REDIS_OK) {
        errstr_set(errstr, errstr_size, "redis %s:%d: cannot set timeout", s->host, s->port);
        goto fail;
    }
    if (s->password[0]) {
        redisReply *r = s->username[0]
                            ? redisCommand(c, "AUTH %s %s", s->username, s->password)
                            : redisCommand(c, "AUTH %s", s->password);
        if (expect_ok_reply(s, r, "AUTH", errstr, errstr_size) != 0) goto fail;
    }
    if (s->db) {
        redisReply *r = redisCommand(c, "SELECT %d", s->db);
        if (expect_ok_reply(s, r, "SELECT", errstr, errstr_size) != 0) goto fail;
    }
    /* Loaded on every connect: a restarted Redis has forgotten it. */
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", COMMIT_SCRIPT);
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        if (r && r->type == REDIS_REPLY_ERROR)
            errstr_set(errstr, errstr_size, "redis %s:%d: SCRIPT LOAD refused: %.200s", s->host,
                      s->port, r->str);
        else
            errstr_set(errstr, errstr_size, "redis %s:%d: SCRIPT LOAD failed", s->host, s->port);
        if (r) freeReplyObject(r);
        goto fail;
    }
    memcpy(s->script_sha, r->str, 40);
    s->script_sha[40] = '\0';
    freeReplyObject(r);
    return 0;
fail:
    s->errors++;
    disconnect(s);
    return -1;
}

/* First line of the file, without its newline. The reason never quotes the
 * content. */
static int read_password_file(store_t *s, const char *path, char *errstr, size_t errstr_size) {
    FILE *f = fopen(path, "r");
    if (!f) {
        errstr_set(errstr, errstr_size, "redis.password.file: cannot open %s: %s", path,
                  strerror(errno));
        return -1;
    }
    char *got = fgets(s->password, sizeof(s->password), f);
    fclose(f);
    if (!got) {
        errstr_set(errstr, errstr_size, "redis.password.file: %s is empty", path);
        return -1;
    }
    s->password[strcspn(s->password, "\r\n")] = '\0';
    return 0;
}

store_t *store_new(const store_options_t *opts, char *errstr, size_t errstr_size) {
    store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        errstr_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->key_prefix = strdup(opts->key_prefix);
    s->topic = strdup(opts->topic);
    if (!s->key_prefix || !s->topic || parse_url(s, opts->url, errstr, errstr_size) != 0) {
        if (!s->key_prefix || !s->topic) errstr_set(errstr, errstr_size, "out of memory");
        store_destroy(s);
        return NULL;
    }
    if (opts->password_file && opts->password_file[0] &&
        read_password_file(s, opts->password_file, errstr, errstr_size) != 0) {
        store_destroy(s);
        return NULL;
    }
    s->connect_timeout = ms_to_timeval(opts->connect_timeout_ms);
    s->command_timeout = ms_to_timeval(opts->command_timeout_ms);
    if (ensure_connected(s, errstr, errstr_size) != 0 ||
        store_ping(s, errstr, errstr_size) != 0) {
        store_destroy(s);
        return NULL;
    }
    return s;
}

void store_destroy(store_t *store) {
    if (!store) return;
    disconnect(store);
    /* Do not leave the password in freed memory. */
    memset(store->password, 0, sizeof(store->password));
    free(store->key_prefix);
    free(store->topic);
    argv_free(&store->args);
    free(store);
}

/* Fails the pipeline: drops the connection so the next call starts clean. */
static int pipeline_failed(store_t *s, char *errstr, size_t errstr_size, const char *what) {
    errstr_set(errstr, errstr_size, "redis %s:%d: %s: %s", s->host, s->port, what,
              s->ctx && s->ctx->errstr[0] ? s->ctx->errstr : "unexpected reply");
    s->errors++;
    disconnect(s);
    return -1;
}

static int parse_field(const redisReply *r, decimal_t *out) {
    if (r->type == REDIS_REPLY_NIL) {
        *out = 0;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING) return -1;
    return decimal_parse(r->str, r->len, out) == DECIMAL_OK ? 0 : -1;
}

static int parse_int_field(const redisReply *r, int64_t min, int64_t max, int64_t *out) {
    char buf[32], *end;
    if (r->type == REDIS_REPLY_NIL) {
        *out = 0;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof(buf)) return -1;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    long long v = strtoll(buf, &end, 10);
    if (*end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* "t1,t2,..." oldest first; at most VELOCITY_MAX_COUNT are kept. */
static int parse_velocity(const redisReply *r, rule_state_t *rs) {
    if (r->type == REDIS_REPLY_NIL) return 0;
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 32 * VELOCITY_MAX_COUNT)
        return -1;
    size_t n = 1;
    for (size_t i = 0; i < r->len; i++) n += r->str[i] == ',';
    if (n > VELOCITY_MAX_COUNT) return -1;
    rs->velocity_ms = malloc(n * sizeof(*rs->velocity_ms));
    if (!rs->velocity_ms) return -1;
    rs->velocity_cap = (uint16_t)n;
    const char *p = r->str, *end = r->str + r->len;
    while (p < end) {
        char buf[32], *stop;
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof(buf) || p + len > end) return -1;
        memcpy(buf, p, len);
        buf[len] = '\0';
        long long v = strtoll(buf, &stop, 10);
        if (*stop || v <= 0) return -1;
        rs->velocity_ms[rs->velocity_len++] = v;
        p += len + 1;
    }
    return 0;
}

static int parse_rule_fields(redisReply *const *fields, cache_entry_t *e) {
    rule_state_t rs = {0};
    int64_t n = 0;
    int rc = 0;
    if (parse_field(fields[0], &rs.cumulative_alerted) != 0 ||
        parse_int_field(fields[1], 0, INT64_MAX, &rs.small_at_ms) != 0 ||
        parse_int_field(fields[2], 0, 1000000, &n) != 0 ||
        parse_field(fields[3], &rs.average_sum) != 0 || parse_velocity(fields[4], &rs) != 0)
        rc = -1;
    rs.average_n = (int32_t)n;
    for (int i = 0; i < RULE_FIELD_COUNT; i++)
        if (fields[i]->type != REDIS_REPLY_NIL) e->flags |= CACHE_ENTRY_RULE_FIELDS;
    rule_state_destroy(e->state.rules);
    e->state.rules = NULL;
    if (rc == 0 && !rule_state_is_empty(&rs)) {
        e->state.rules = rule_state_move_to_heap(&rs);
        if (!e->state.rules) rc = -1;
    }
    rule_state_free(&rs);
    return rc;
}

int store_load_users(store_t *s, cache_entry_t *const *entries, size_t count, int64_t now_ms,
                     char *errstr, size_t errstr_size) {
    if (count == 0) return 0;
    if (ensure_connected(s, errstr, errstr_size) != 0) return -1;
    for (size_t i = 0; i < count; i++) {
        char key[1024];
        size_t klen = store_user_key(s->key_prefix, s->topic, entries[i]->partition,
                                     entries[i]->user, entries[i]->user_len, key, sizeof(key));
        if (!klen) return pipeline_failed(s, errstr, errstr_size, "user key too long");
        const char *argv[] = {"HMGET", key, "prev", "cum", "count", "cl", "stl", "avgn",
                              "avgs", "vel"};
        size_t argvlen[2 + USER_FIELD_COUNT] = {5, klen};
        for (size_t k = 2; k < 2 + USER_FIELD_COUNT; k++) argvlen[k] = strlen(argv[k]);
        const char *pttl[] = {"PTTL", key};
        size_t pttl_len[] = {4, klen};
        if (redisAppendCommandArgv(s->ctx, 2 + USER_FIELD_COUNT, argv, argvlen) != REDIS_OK ||
            redisAppendCommandArgv(s->ctx, 2, pttl, pttl_len) != REDIS_OK)
            return pipeline_failed(s, errstr, errstr_size, "HMGET append");
    }
    s->commands += 2 * count;
    for (size_t i = 0; i < count; i++) {
        redisReply *r = NULL, *ttl = NULL;
        if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK || !r)
            return pipeline_failed(s, errstr, errstr_size, "HMGET");
        if (redisGetReply(s->ctx, (void **)&ttl) != REDIS_OK || !ttl) {
            freeReplyObject(r);
            return pipeline_failed(s, errstr, errstr_size, "PTTL");
        }
        cache_entry_t *e = entries[i];
        decimal_t count_value = 0;
        int bad = r->type != REDIS_REPLY_ARRAY || r->elements != USER_FIELD_COUNT ||
                  parse_field(r->element[0], &e->state.prev) != 0 ||
                  parse_field(r->element[1], &e->state.cum) != 0 ||
                  parse_field(r->element[2], &count_value) != 0 ||
                  count_value % DECIMAL_SCALE != 0 || count_value < 0 ||
                  parse_rule_fields(r->element + 3, e) != 0 ||
                  ttl->type != REDIS_REPLY_INTEGER;
        /* PTTL: -2 no key, -1 no expiry, else milliseconds left. */
        e->expires_at_ms = (!bad && ttl->integer > 0) ? now_ms + ttl->integer : 0;
        freeReplyObject(r);
        freeReplyObject(ttl);
        if (bad) {
            /* Read the rest so the connection stays in step, then fail:
             * state we cannot read must not be silently reset. */
            for (size_t j = 2 * (i + 1); j < 2 * count; j++) {
                if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK) break;
                freeReplyObject(r);
            }
            errstr_set(errstr, errstr_size,
                      "redis: corrupt state for user %.*s of partition %d (fields prev, cum, "
                      "count, cl, stl, avgn, avgs, vel)", (int)e->user_len, e->user,
                      (int)e->partition);
            s->errors++;
            return -1;
        }
        e->state.count = count_value / DECIMAL_SCALE;
        if (e->state.count == 0) e->state.prev = e->state.cum = 0;
        e->flags |= CACHE_ENTRY_LOADED;
    }
    return 0;
}

static int add_velocity(argv_builder_t *b, const rule_state_t *rs) {
    char text[32 * VELOCITY_MAX_COUNT];
    size_t len = 0;
    for (uint16_t i = 0; i < rs->velocity_len && len + 32 < sizeof(text); i++) {
        int n = snprintf(text + len, sizeof(text) - len, "%s%lld", i ? "," : "",
                         (long long)rs->velocity_ms[i]);
        if (n < 0) return -1;
        len += (size_t)n;
    }
    return argv_add(b, text, len);
}

/* The user's fields: prev, cum and count always, a rule's field while it
 * holds something, and an HDEL of the emptied ones when the hash may still
 * have them (CACHE_ENTRY_RULE_FIELDS). */
static int add_user_fields(argv_builder_t *b, cache_entry_t *e) {
    const user_state_t *state = &e->state;
    static const rule_state_t none;
    const rule_state_t *rs = state->rules ? state->rules : &none;
    bool present[RULE_FIELD_COUNT] = {rs->cumulative_alerted != 0, rs->small_at_ms != 0,
                                      rs->average_n != 0, rs->average_n != 0,
                                      rs->velocity_len != 0};
    size_t sets = 3, dels = 0;
    for (int i = 0; i < RULE_FIELD_COUNT; i++) {
        sets += present[i];
        dels += !present[i] && (e->flags & CACHE_ENTRY_RULE_FIELDS);
    }
    char prev[DECIMAL_TEXT_MAX], cum[DECIMAL_TEXT_MAX];
    size_t prev_len = decimal_format(state->prev, prev, sizeof(prev));
    size_t cum_len = decimal_format(state->cum, cum, sizeof(cum));
    if (argv_addf(b, "%zu", sets) || argv_add(b, "prev", 4) || argv_add(b, prev, prev_len) ||
        argv_add(b, "cum", 3) || argv_add(b, cum, cum_len) || argv_add(b, "count", 5) ||
        argv_addf(b, "%lld", (long long)state->count))
        return -1;
    if (present[0] && (argv_add(b, "cl", 2) || argv_add_decimal(b, rs->cumulative_alerted)))
        return -1;
    if (present[1] && (argv_add(b, "stl", 3) || argv_addf(b, "%lld", (long long)rs->small_at_ms)))
        return -1;
    if (present[2] && (argv_add(b, "avgn", 4) || argv_addf(b, "%d", (int)rs->average_n) ||
                       argv_add(b, "avgs", 4) || argv_add_decimal(b, rs->average_sum)))
        return -1;
    if (present[4] && (argv_add(b, "vel", 3) || add_velocity(b, rs))) return -1;
    if (argv_addf(b, "%zu", dels)) return -1;
    for (int i = 0; i < RULE_FIELD_COUNT && dels; i++)
        if (!present[i] && argv_add(b, RULE_FIELDS[i], strlen(RULE_FIELDS[i]))) return -1;
    /* What is written now is all the hash will hold. */
    if (sets > 3) e->flags |= CACHE_ENTRY_RULE_FIELDS;
    else e->flags &= (uint8_t)~CACHE_ENTRY_RULE_FIELDS;
    return 0;
}

static int append_step(store_t *s, const store_step_t *st, int64_t ttl_ms) {
    argv_builder_t *b = &s->args;
    char num[32];
    argv_reset(b);
    if (argv_add(b, "EVALSHA", 7) || argv_add(b, s->script_sha, 40) ||
        argv_addf(b, "%zu", 2 + st->user_count) ||
        add_partition_key(s, b, st->partition, "checkpoint") ||
        add_partition_key(s, b, st->partition, "outbox"))
        return -1;
    for (size_t i = 0; i < st->user_count; i++)
        if (add_user_key(s, b, st->users[i])) return -1;
    if (st->expected_checkpoint >= 0) snprintf(num, sizeof(num), "%lld",
                                               (long long)st->expected_checkpoint);
    else num[0] = '\0';
    if (argv_add(b, num, strlen(num)) || argv_addf(b, "%lld", (long long)st->next_offset) ||
        argv_addf(b, "%lld", (long long)ttl_ms) || argv_addf(b, "%zu", st->user_count))
        return -1;
    for (size_t i = 0; i < st->user_count; i++)
        if (add_user_fields(b, st->users[i]) != 0) return -1;
    for (size_t i = 0; i < st->alert_count; i++)
        if (argv_add(b, st->alerts[i].id, strlen(st->alerts[i].id)) ||
            argv_add(b, st->alerts[i].json, strlen(st->alerts[i].json)))
            return -1;
    const char **argv = argv_finish(b);
    return redisAppendCommandArgv(s->ctx, (int)b->count, argv, b->lens) == REDIS_OK ? 0 : -1;
}

static int parse_checkpoint(const char *text, size_t len, int64_t *out) {
    char buf[32];
    char *end;
    if (len == 0) {
        *out = -1;
        return 0;
    }
    if (len >= sizeof(buf)) return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    long long v = strtoll(buf, &end, 10);
    if (*end || v < 0) return -1;
    *out = v;
    return 0;
}

int store_commit_steps(store_t *s, store_step_t *steps, size_t count, int64_t ttl_ms,
                       char *errstr, size_t errstr_size) {
    if (count == 0) return 0;
    if (ensure_connected(s, errstr, errstr_size) != 0) return -1;
    for (size_t i = 0; i < count; i++)
        if (append_step(s, &steps[i], ttl_ms) != 0)
            return pipeline_failed(s, errstr, errstr_size, "building a partition step");
    s->commands += count;
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        redisReply *r = NULL;
        if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK || !r)
            return pipeline_failed(s, errstr, errstr_size, "partition step");
        store_step_t *st = &steps[i];
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_INTEGER &&
            r->element[1]->type == REDIS_REPLY_STRING &&
            parse_checkpoint(r->element[1]->str, r->element[1]->len, &st->actual_checkpoint) ==
                0) {
            st->conflict = r->element[0]->integer == 0;
        } else if (!failed) {
            failed = 1;
            errstr_set(errstr, errstr_size, "redis %s:%d: partition %d step refused: %.200s",
                      s->host, s->port, (int)st->partition,
                      r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        }
        freeReplyObject(r);
    }
    if (failed) {
        s->errors++;
        disconnect(s); /* reconnecting reloads the script after a Redis restart */
        return -1;
    }
    return 0;
}

int store_get_checkpoint(store_t *s, int32_t partition, int64_t *offset, char *errstr,
                         size_t errstr_size) {
    argv_builder_t *b = &s->args;
    if (ensure_connected(s, errstr, errstr_size) != 0) return -1;
    argv_reset(b);
    if (argv_add(b, "GET", 3) || add_partition_key(s, b, partition, "checkpoint"))
        return pipeline_failed(s, errstr, errstr_size, "out of memory");
    s->commands++;
    redisReply *r = redisCommandArgv(s->ctx, (int)b->count, argv_finish(b), b->lens);
    if (!r) return pipeline_failed(s, errstr, errstr_size, "GET checkpoint");
    int rc = 0;
    if (r->type == REDIS_REPLY_NIL) *offset = -1;
    else if (r->type != REDIS_REPLY_STRING || parse_checkpoint(r->str, r->len, offset) != 0) {
        errstr_set(errstr, errstr_size, "redis: corrupt checkpoint of partition %d",
                  (int)partition);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

int store_outbox_load(store_t *s, int32_t partition, store_outbox_t *out, char *errstr,
                      size_t errstr_size) {
    argv_builder_t *b = &s->args;
    memset(out, 0, sizeof(*out));
    if (ensure_connected(s, errstr, errstr_size) != 0) return -1;
    argv_reset(b);
    if (argv_add(b, "HGETALL", 7) || add_partition_key(s, b, partition, "outbox"))
        return pipeline_failed(s, errstr, errstr_size, "out of memory");
    s->commands++;
    redisReply *r = redisCommandArgv(s->ctx, (int)b->count, argv_finish(b), b->lens);
    if (!r) return pipeline_failed(s, errstr, errstr_size, "HGETALL outbox");
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        freeReplyObject(r);
        errstr_set(errstr, errstr_size, "redis: unexpected outbox of partition %d",
                  (int)partition);
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

int store_outbox_remove(store_t *s, const store_step_t *steps, size_t count, char *errstr,
                        size_t errstr_size) {
    argv_builder_t *b = &s->args;
    size_t sent = 0;
    if (ensure_connected(s, errstr, errstr_size) != 0) return -1;
    for (size_t i = 0; i < count; i++) {
        const store_step_t *st = &steps[i];
        if (st->alert_count == 0 || st->conflict) continue;
        argv_reset(b);
        if (argv_add(b, "HDEL", 4) || add_partition_key(s, b, st->partition, "outbox"))
            return pipeline_failed(s, errstr, errstr_size, "out of memory");
        for (size_t k = 0; k < st->alert_count; k++)
            if (argv_add(b, st->alerts[k].id, strlen(st->alerts[k].id)))
                return pipeline_failed(s, errstr, errstr_size, "out of memory");
        if (redisAppendCommandArgv(s->ctx, (int)b->count, argv_finish(b), b->lens) != REDIS_OK)
            return pipeline_failed(s, errstr, errstr_size, "HDEL append");
        sent++;
    }
    s->commands += sent;
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK || !r)
            return pipeline_failed(s, errstr, errstr_size, "HDEL outbox");
        int bad = r->type == REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (bad) return pipeline_failed(s, errstr, errstr_size, "HDEL outbox refused");
    }
    return 0;
}

int store_find_user(store_t *s, const char *user, size_t user_len, int32_t partition_count,
                    store_user_view_t *out, char *errstr, size_t errstr_size) {
    memset(out, 0, sizeof(*out));
    if (ensure_connected(s, errstr, errstr_size) != 0) return -1;
    for (int32_t part = 0; part < partition_count; part++) {
        char key[1024];
        size_t klen = store_user_key(s->key_prefix, s->topic, part, user, user_len, key,
                                     sizeof(key));
        if (!klen) return pipeline_failed(s, errstr, errstr_size, "user key too long");
        const char *hmget[] = {"HMGET", key, "prev", "cum", "count"};
        size_t hmget_len[] = {5, klen, 4, 3, 5};
        const char *pttl[] = {"PTTL", key};
        size_t pttl_len[] = {4, klen};
        if (redisAppendCommandArgv(s->ctx, 5, hmget, hmget_len) != REDIS_OK ||
            redisAppendCommandArgv(s->ctx, 2, pttl, pttl_len) != REDIS_OK)
            return pipeline_failed(s, errstr, errstr_size, "HMGET append");
    }
    s->commands += 2 * (uint64_t)partition_count;
    int rc = 0;
    for (int32_t part = 0; part < partition_count; part++) {
        redisReply *r = NULL, *ttl = NULL;
        if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK || !r ||
            redisGetReply(s->ctx, (void **)&ttl) != REDIS_OK || !ttl) {
            if (r) freeReplyObject(r);
            return pipeline_failed(s, errstr, errstr_size, "user lookup");
        }
        decimal_t prev = 0, cum = 0, count = 0;
        if (!out->found && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[2]->type == REDIS_REPLY_STRING) {
            if (parse_field(r->element[0], &prev) || parse_field(r->element[1], &cum) ||
                parse_field(r->element[2], &count)) {
                errstr_set(errstr, errstr_size, "redis: corrupt state for user %.*s",
                          (int)user_len, user);
                rc = -1;
            } else {
                out->found = 1;
                out->partition = part;
                out->state.prev = prev;
                out->state.cum = cum;
                out->state.count = count / DECIMAL_SCALE;
                out->ttl_ms = ttl->type == REDIS_REPLY_INTEGER && ttl->integer >= 0
                                  ? ttl->integer : -1;
            }
        }
        freeReplyObject(r);
        freeReplyObject(ttl);
    }
    return rc;
}

int store_touch_user(store_t *s, int32_t partition, const char *user, size_t user_len,
                     int64_t ttl_ms, char *errstr, size_t errstr_size) {
    char key[1024], ttl[24];
    size_t klen = store_user_key(s->key_prefix, s->topic, partition, user, user_len, key,
                                 sizeof(key));
    if (!klen || ensure_connected(s, errstr, errstr_size) != 0) return -1;
    size_t ttl_len = (size_t)snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
    const char *argv[] = {"PEXPIRE", key, ttl};
    size_t argv_len[] = {7, klen, ttl_len};
    s->commands++;
    redisReply *r = redisCommandArgv(s->ctx, 3, argv, argv_len);
    if (!r) return pipeline_failed(s, errstr, errstr_size, "PEXPIRE");
    freeReplyObject(r);
    return 0;
}

int store_ping(store_t *s, char *errstr, size_t errstr_size) {
    if (ensure_connected(s, errstr, errstr_size) != 0) return -1;
    s->commands++;
    redisReply *r = redisCommand(s->ctx, "PING");
    if (!r) return pipeline_failed(s, errstr, errstr_size, "PING");
    if (r->type == REDIS_REPLY_ERROR) {
        errstr_set(errstr, errstr_size, "redis %s:%d: PING refused: %.200s", s->host, s->port,
                  r->str);
        freeReplyObject(r);
        s->errors++;
        disconnect(s);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

uint64_t store_commands_total(const store_t *store) { return store->commands; }
uint64_t store_errors_total(const store_t *store) { return store->errors; }
