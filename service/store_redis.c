/* store_redis: hiredis, blocking, with pipelining.
 *
 * A pipeline is appended in full, then every reply is read: a failure in the
 * middle (hiredis sets c->err and the context is dead) fails the whole call.
 * Retrying is safe: a partition step whose first attempt did land is refused
 * by its checkpoint comparison and reported as a conflict whose
 * actual_checkpoint equals its next_offset, which the caller treats as done. */
#include "store_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "errstr.h"
#include "redis_argv.h"
#include "redis_conn.h"
#include "user_hash.h"

/* The atomic partition step. KEYS: checkpoint, outbox, then the users.
 * ARGV: expected checkpoint ("" for none), next offset, ttl ms, user count,
 * then per user: a mode ("e": the user was erased, so its key goes first;
 * "p": its key may carry a TTL that must go, with ttl 0; else "0"), how
 * many field/value pairs to set, the pairs, how many fields to delete, the
 * fields; then alert id/json pairs. With the TTL off, a PERSIST per user
 * cost about a third of the step's time at 100,000 users, so it is sent
 * only for keys loaded with a TTL. An erased user with no payment after
 * the erasure sets nothing: its key is simply gone. */
static const char COMMIT_SCRIPT[] =
    "local current = redis.call('GET', KEYS[1])\n"
    "if (current or '') ~= ARGV[1] then return {0, current or ''} end\n"
    "local n = tonumber(ARGV[4])\n"
    "local ttl = tonumber(ARGV[3])\n"
    "local a = 5\n"
    "for i = 1, n do\n"
    "  local k = KEYS[2 + i]\n"
    "  local mode = ARGV[a]\n"
    "  if mode == 'e' then redis.call('DEL', k) end\n"
    "  local sets = tonumber(ARGV[a + 1])\n"
    "  a = a + 2\n"
    "  if sets > 0 then redis.call('HSET', k, unpack(ARGV, a, a + 2 * sets - 1)) end\n"
    "  a = a + 2 * sets\n"
    "  local dels = tonumber(ARGV[a])\n"
    "  if dels > 0 then redis.call('HDEL', k, unpack(ARGV, a + 1, a + dels)) end\n"
    "  a = a + 1 + dels\n"
    "  if sets > 0 then\n"
    "    if ttl > 0 then redis.call('PEXPIRE', k, ttl)\n"
    "    elseif mode == 'p' then redis.call('PERSIST', k) end\n"
    "  end\n"
    "end\n"
    "while a < #ARGV do\n"
    "  redis.call('HSET', KEYS[2], ARGV[a], ARGV[a + 1])\n"
    "  a = a + 2\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[2])\n"
    "return {1, ARGV[2]}\n";

struct store {
    redis_conn_t *conn;
    char *key_prefix;
    char *topic;
    redis_argv_t args;
};

static char *put(char *out, const char *bytes, size_t len) {
    memcpy(out, bytes, len);
    return out + len;
}

/* "<prefix>{<topic>/<partition>}:<what>" into buf (bufsize >= 1); its
 * length, or 0 when it does not fit. One per user per batch: no printf. */
static size_t partition_key(const char *prefix, const char *topic, int32_t partition,
                            const char *what, size_t what_len, char *buf, size_t bufsize) {
    char number[DECIMAL_INT_TEXT_MAX];
    size_t number_len = decimal_format_int(partition, number);
    size_t prefix_len = strlen(prefix), topic_len = strlen(topic);
    size_t len = prefix_len + 1 + topic_len + 1 + number_len + 2 + what_len;
    if (len >= bufsize) return 0;
    char *p = put(buf, prefix, prefix_len);
    p = put(put(p, "{", 1), topic, topic_len);
    p = put(put(p, "/", 1), number, number_len);
    put(put(p, "}:", 2), what, what_len);
    buf[len] = '\0';
    return len;
}

size_t store_user_key(const char *prefix, const char *topic, int32_t partition,
                      const char *user, size_t user_len, char *buf, size_t bufsize) {
    size_t head = partition_key(prefix, topic, partition, "user:", 5, buf, bufsize);
    if (!head || head + user_len >= bufsize) return 0;
    memcpy(buf + head, user, user_len);
    buf[head + user_len] = '\0';
    return head + user_len;
}

static int add_partition_key(store_t *s, int32_t partition, const char *what) {
    char key[1024];
    size_t len = partition_key(s->key_prefix, s->topic, partition, what, strlen(what), key,
                               sizeof(key));
    return len ? redis_argv_add(&s->args, key, len) : -1;
}

static int add_user_key(store_t *s, int32_t partition, const char *user, size_t user_len) {
    char key[1024];
    size_t len = store_user_key(s->key_prefix, s->topic, partition, user, user_len, key,
                                sizeof(key));
    return len ? redis_argv_add(&s->args, key, len) : -1;
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
        .command_timeout_ms = opts->command_timeout_ms, .script = COMMIT_SCRIPT,
    };
    s->conn = redis_conn_new(&conn_opts, errstr, errstr_size);
    if (!s->conn) {
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
    redis_conn_destroy(store->conn);
    free(store->key_prefix);
    free(store->topic);
    redis_argv_free(&store->args);
    free(store);
}

/* Appends the read of one user hash: HMGET of every field, then PTTL. */
static int append_user_read(store_t *s, redisContext *ctx, int32_t partition, const char *user,
                            size_t user_len) {
    char key[1024];
    size_t key_len = store_user_key(s->key_prefix, s->topic, partition, user, user_len, key,
                                    sizeof(key));
    redis_argv_t *b = &s->args;
    redis_argv_reset(b);
    if (!key_len || redis_argv_add(b, "HMGET", 5) || redis_argv_add(b, key, key_len) ||
        user_hash_add_field_names(b))
        return -1;
    if (redis_argv_append(b, ctx) != 0) return -1;
    redis_argv_reset(b);
    if (redis_argv_add(b, "PTTL", 4) || redis_argv_add(b, key, key_len) ||
        redis_argv_append(b, ctx) != 0)
        return -1;
    redis_conn_count(s->conn, 2);
    return 0;
}

/* Reads the next HMGET and PTTL replies. -1: the connection failed. */
static int read_stored_user(redisContext *ctx, stored_user_t *out, int *corrupt) {
    redisReply *hash = NULL, *pttl = NULL;
    if (redisGetReply(ctx, (void **)&hash) != REDIS_OK || !hash ||
        redisGetReply(ctx, (void **)&pttl) != REDIS_OK || !pttl) {
        if (hash) freeReplyObject(hash);
        return -1;
    }
    *corrupt = user_hash_parse(hash, pttl, out) != 0;
    freeReplyObject(hash);
    freeReplyObject(pttl);
    return 0;
}

int store_load_users(store_t *s, cache_entry_t *const *entries, size_t count, int64_t now_ms,
                     char *errstr, size_t errstr_size) {
    if (count == 0) return 0;
    redisContext *ctx = redis_conn_get(s->conn, errstr, errstr_size);
    if (!ctx) return -1;
    for (size_t i = 0; i < count; i++)
        if (append_user_read(s, ctx, entries[i]->partition, entries[i]->user,
                             entries[i]->user_len) != 0)
            return redis_conn_fail(s->conn, "appending HMGET", errstr, errstr_size);
    const cache_entry_t *corrupt_entry = NULL;
    for (size_t i = 0; i < count; i++) {
        cache_entry_t *e = entries[i];
        stored_user_t stored;
        int corrupt = 0;
        if (read_stored_user(ctx, &stored, &corrupt) != 0)
            return redis_conn_fail(s->conn, "HMGET", errstr, errstr_size);
        /* Read every reply so the connection stays in step. */
        if (corrupt || corrupt_entry) {
            if (!corrupt_entry && corrupt) corrupt_entry = e;
            user_state_reset(&stored.state);
            continue;
        }
        user_state_reset(&e->state);
        e->state = stored.state;
        e->expires_at_ms = stored.ttl_left_ms > 0 ? now_ms + stored.ttl_left_ms : 0;
        if (stored.ttl_left_ms > 0) e->flags |= CACHE_ENTRY_REDIS_TTL;
        if (stored.has_rule_fields) e->flags |= CACHE_ENTRY_RULE_FIELDS;
        e->flags |= CACHE_ENTRY_LOADED;
    }
    if (corrupt_entry) {
        errstr_set(errstr, errstr_size, "redis: corrupt state for user %.*s of partition %d",
                   (int)corrupt_entry->user_len, corrupt_entry->user,
                   (int)corrupt_entry->partition);
        redis_conn_count_error(s->conn);
        return -1;
    }
    return 0;
}

static int append_step(store_t *s, redisContext *ctx, const store_step_t *st, int64_t ttl_ms) {
    redis_argv_t *b = &s->args;
    redis_argv_reset(b);
    if (redis_argv_add(b, "EVALSHA", 7) ||
        redis_argv_add(b, redis_conn_script_sha(s->conn), 40) ||
        redis_argv_add_int(b, (int64_t)(2 + st->user_count)) ||
        add_partition_key(s, st->partition, "checkpoint") ||
        add_partition_key(s, st->partition, "outbox"))
        return -1;
    for (size_t i = 0; i < st->user_count; i++)
        if (add_user_key(s, st->partition, st->users[i]->user, st->users[i]->user_len))
            return -1;
    if ((st->expected_checkpoint >= 0 ? redis_argv_add_int(b, st->expected_checkpoint)
                                      : redis_argv_add(b, "", 0)) ||
        redis_argv_add_int(b, st->next_offset) || redis_argv_add_int(b, ttl_ms) ||
        redis_argv_add_int(b, (int64_t)st->user_count))
        return -1;
    for (size_t i = 0; i < st->user_count; i++) {
        cache_entry_t *e = st->users[i];
        int erased = (e->flags & CACHE_ENTRY_ERASED) != 0;
        int persist = ttl_ms <= 0 && (e->flags & CACHE_ENTRY_REDIS_TTL);
        if (redis_argv_add(b, erased ? "e" : persist ? "p" : "0", 1) != 0) return -1;
        if (erased && e->state.count == 0 ? redis_argv_add_int(b, 0) || redis_argv_add_int(b, 0)
                                          : user_hash_add_fields(b, e) != 0)
            return -1;
    }
    for (size_t i = 0; i < st->alert_count; i++)
        if (redis_argv_add(b, st->alerts[i].id, strlen(st->alerts[i].id)) ||
            redis_argv_add(b, st->alerts[i].json, strlen(st->alerts[i].json)))
            return -1;
    return redis_argv_append(b, ctx);
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
    redisContext *ctx = redis_conn_get(s->conn, errstr, errstr_size);
    if (!ctx) return -1;
    for (size_t i = 0; i < count; i++)
        if (append_step(s, ctx, &steps[i], ttl_ms) != 0)
            return redis_conn_fail(s->conn, "building a partition step", errstr, errstr_size);
    redis_conn_count(s->conn, count);
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK || !r)
            return redis_conn_fail(s->conn, "partition step", errstr, errstr_size);
        store_step_t *st = &steps[i];
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_INTEGER &&
            r->element[1]->type == REDIS_REPLY_STRING &&
            parse_checkpoint(r->element[1]->str, r->element[1]->len, &st->actual_checkpoint) ==
                0) {
            st->conflict = r->element[0]->integer == 0;
            for (size_t k = 0; k < st->user_count && !st->conflict; k++) {
                if (ttl_ms > 0) st->users[k]->flags |= CACHE_ENTRY_REDIS_TTL;
                else st->users[k]->flags &= (uint8_t)~CACHE_ENTRY_REDIS_TTL;
            }
        } else if (!failed) {
            failed = 1;
            errstr_set(errstr, errstr_size, "redis %s: partition %d step refused: %.200s",
                       redis_conn_name(s->conn), (int)st->partition,
                       r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        }
        freeReplyObject(r);
    }
    if (failed) {
        redis_conn_drop(s->conn); /* reconnecting reloads the script after a Redis restart */
        return -1;
    }
    return 0;
}

/* Sends the command built in s->args and returns its reply (the caller
 * frees it), or NULL with errstr after dropping the connection. */
static redisReply *run_command(store_t *s, const char *what, char *errstr, size_t errstr_size) {
    redisContext *ctx = redis_conn_get(s->conn, errstr, errstr_size);
    if (!ctx) return NULL;
    redis_conn_count(s->conn, 1);
    redisReply *r = NULL;
    if (redis_argv_append(&s->args, ctx) != 0 || redisGetReply(ctx, (void **)&r) != REDIS_OK ||
        !r) {
        if (r) freeReplyObject(r);
        redis_conn_fail(s->conn, what, errstr, errstr_size);
        return NULL;
    }
    return r;
}

int store_get_checkpoint(store_t *s, int32_t partition, int64_t *offset, char *errstr,
                         size_t errstr_size) {
    redis_argv_reset(&s->args);
    if (redis_argv_add(&s->args, "GET", 3) || add_partition_key(s, partition, "checkpoint"))
        return redis_conn_fail(s->conn, "out of memory", errstr, errstr_size);
    redisReply *r = run_command(s, "GET checkpoint", errstr, errstr_size);
    if (!r) return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_NIL) *offset = -1;
    else if (r->type != REDIS_REPLY_STRING || parse_checkpoint(r->str, r->len, offset) != 0) {
        errstr_set(errstr, errstr_size, "redis: corrupt checkpoint of partition %d",
                   (int)partition);
        redis_conn_count_error(s->conn);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

int store_outbox_load(store_t *s, int32_t partition, store_outbox_t *out, char *errstr,
                      size_t errstr_size) {
    memset(out, 0, sizeof(*out));
    redis_argv_reset(&s->args);
    if (redis_argv_add(&s->args, "HGETALL", 7) || add_partition_key(s, partition, "outbox"))
        return redis_conn_fail(s->conn, "out of memory", errstr, errstr_size);
    redisReply *r = run_command(s, "HGETALL outbox", errstr, errstr_size);
    if (!r) return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        freeReplyObject(r);
        errstr_set(errstr, errstr_size, "redis: unexpected outbox of partition %d",
                   (int)partition);
        redis_conn_count_error(s->conn);
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
    redis_argv_t *b = &s->args;
    size_t sent = 0;
    redisContext *ctx = redis_conn_get(s->conn, errstr, errstr_size);
    if (!ctx) return -1;
    for (size_t i = 0; i < count; i++) {
        const store_step_t *st = &steps[i];
        if (st->alert_count == 0 || st->conflict) continue;
        redis_argv_reset(b);
        if (redis_argv_add(b, "HDEL", 4) || add_partition_key(s, st->partition, "outbox"))
            return redis_conn_fail(s->conn, "out of memory", errstr, errstr_size);
        for (size_t k = 0; k < st->alert_count; k++)
            if (redis_argv_add(b, st->alerts[k].id, strlen(st->alerts[k].id)))
                return redis_conn_fail(s->conn, "out of memory", errstr, errstr_size);
        if (redis_argv_append(b, ctx) != 0)
            return redis_conn_fail(s->conn, "appending HDEL", errstr, errstr_size);
        sent++;
    }
    redis_conn_count(s->conn, sent);
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK || !r)
            return redis_conn_fail(s->conn, "HDEL outbox", errstr, errstr_size);
        int bad = r->type == REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (bad) return redis_conn_fail(s->conn, "HDEL outbox refused", errstr, errstr_size);
    }
    return 0;
}

int store_find_user(store_t *s, const char *user, size_t user_len, int32_t partition_count,
                    store_user_view_t *out, char *errstr, size_t errstr_size) {
    memset(out, 0, sizeof(*out));
    redisContext *ctx = redis_conn_get(s->conn, errstr, errstr_size);
    if (!ctx) return -1;
    for (int32_t part = 0; part < partition_count; part++)
        if (append_user_read(s, ctx, part, user, user_len) != 0)
            return redis_conn_fail(s->conn, "appending HMGET", errstr, errstr_size);
    int rc = 0;
    for (int32_t part = 0; part < partition_count; part++) {
        stored_user_t stored;
        int corrupt = 0;
        if (read_stored_user(ctx, &stored, &corrupt) != 0)
            return redis_conn_fail(s->conn, "user lookup", errstr, errstr_size);
        if (corrupt && rc == 0) {
            errstr_set(errstr, errstr_size, "redis: corrupt state for user %.*s of partition %d",
                       (int)user_len, user, (int)part);
            redis_conn_count_error(s->conn);
            rc = -1;
        } else if (!corrupt && !out->found && stored.state.count > 0) {
            out->found = 1;
            out->partition = part;
            out->state.prev = stored.state.prev;
            out->state.cum = stored.state.cum;
            out->state.count = stored.state.count;
            out->ttl_ms = stored.ttl_left_ms;
        }
        user_state_reset(&stored.state);
    }
    return rc;
}

int store_touch_user(store_t *s, int32_t partition, const char *user, size_t user_len,
                     int64_t ttl_ms, char *errstr, size_t errstr_size) {
    redis_argv_reset(&s->args);
    if (redis_argv_add(&s->args, "PEXPIRE", 7) || add_user_key(s, partition, user, user_len) ||
        redis_argv_add_int(&s->args, ttl_ms)) {
        errstr_set(errstr, errstr_size, "user key too long");
        return -1;
    }
    redisReply *r = run_command(s, "PEXPIRE", errstr, errstr_size);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

int store_ping(store_t *s, char *errstr, size_t errstr_size) {
    return redis_conn_ping(s->conn, errstr, errstr_size);
}

uint64_t store_commands_total(const store_t *store) {
    return redis_conn_commands_total(store->conn);
}

uint64_t store_errors_total(const store_t *store) { return redis_conn_errors_total(store->conn); }
