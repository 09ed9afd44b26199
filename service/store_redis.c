/* store_redis: hiredis, blocking, with pipelining.
 *
 * A pipeline is appended in full, then every reply is read: a failure in the
 * middle (hiredis sets c->err and the context is dead) fails the whole call,
 * and since writes are idempotent full-state HSETs, retrying is safe. */
#include "store_redis.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis.h>

struct store {
    char host[256];
    int port;
    int db;
    char username[128];
    char password[256];
    char *key_prefix;
    struct timeval connect_timeout, command_timeout;
    redisContext *ctx;
    char *key_buf; /* reused for building keys */
    size_t key_cap;
    uint64_t commands, errors;
};

static void set_error(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(char *errstr, size_t errstr_size, const char *fmt, ...) {
    va_list ap;
    if (!errstr || !errstr_size) return;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

static struct timeval ms_to_timeval(int64_t ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_url(store_t *s, const char *url, char *errstr, size_t errstr_size) {
    const char *p = url, *at, *slash, *colon, *host_end;
    if (strncmp(p, "redis://", 8) != 0) {
        set_error(errstr, errstr_size, "redis.url: must start with redis://");
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
    set_error(errstr, errstr_size,
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
        set_error(errstr, errstr_size, "redis %s:%d: %s failed: %s", s->host, s->port, what,
                  s->ctx && s->ctx->errstr[0] ? s->ctx->errstr : "no reply");
        return -1;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        set_error(errstr, errstr_size, "redis %s:%d: %s refused: %.200s", s->host, s->port,
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
        set_error(errstr, errstr_size, "redis %s:%d: cannot connect: %s", s->host, s->port,
                  c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        s->errors++;
        return -1;
    }
    s->ctx = c;
    if (redisSetTimeout(c, s->command_timeout) != REDIS_OK) {
        set_error(errstr, errstr_size, "redis %s:%d: cannot set timeout", s->host, s->port);
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
        set_error(errstr, errstr_size, "redis.password.file: cannot open %s: %s", path,
                  strerror(errno));
        return -1;
    }
    char *got = fgets(s->password, sizeof(s->password), f);
    fclose(f);
    if (!got) {
        set_error(errstr, errstr_size, "redis.password.file: %s is empty", path);
        return -1;
    }
    s->password[strcspn(s->password, "\r\n")] = '\0';
    return 0;
}

store_t *store_new(const store_options_t *opts, char *errstr, size_t errstr_size) {
    store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        set_error(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->key_prefix = strdup(opts->key_prefix);
    if (!s->key_prefix || parse_url(s, opts->url, errstr, errstr_size) != 0) {
        if (!s->key_prefix) set_error(errstr, errstr_size, "out of memory");
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
    free(store->key_buf);
    free(store);
}

/* Builds <prefix>user:<id> in the reusable key buffer. */
static const char *user_key(store_t *s, const cache_entry_t *e, size_t *len) {
    size_t plen = strlen(s->key_prefix);
    size_t need = plen + 5 + e->user_len + 1;
    if (need > s->key_cap) {
        char *grown = realloc(s->key_buf, need * 2);
        if (!grown) return NULL;
        s->key_buf = grown;
        s->key_cap = need * 2;
    }
    memcpy(s->key_buf, s->key_prefix, plen);
    memcpy(s->key_buf + plen, "user:", 5);
    memcpy(s->key_buf + plen + 5, e->user, e->user_len);
    *len = plen + 5 + e->user_len;
    s->key_buf[*len] = '\0';
    return s->key_buf;
}

/* Fails the pipeline: drops the connection so the next call starts clean. */
static int pipeline_failed(store_t *s, char *errstr, size_t errstr_size, const char *what) {
    set_error(errstr, errstr_size, "redis %s:%d: %s: %s", s->host, s->port, what,
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

int store_load_users(store_t *s, cache_entry_t *const *entries, size_t count, int64_t now_ms,
                     char *errstr, size_t errstr_size) {
    if (count == 0) return 0;
    if (ensure_connected(s, errstr, errstr_size) != 0) return -1;
    for (size_t i = 0; i < count; i++) {
        size_t klen;
        const char *key = user_key(s, entries[i], &klen);
        if (!key) return pipeline_failed(s, errstr, errstr_size, "out of memory");
        const char *argv[] = {"HMGET", key, "prev", "cum", "count"};
        size_t argvlen[] = {5, klen, 4, 3, 5};
        const char *pttl[] = {"PTTL", key};
        size_t pttl_len[] = {4, klen};
        if (redisAppendCommandArgv(s->ctx, 5, argv, argvlen) != REDIS_OK ||
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
        int bad = r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
                  parse_field(r->element[0], &e->state.prev) != 0 ||
                  parse_field(r->element[1], &e->state.cum) != 0 ||
                  parse_field(r->element[2], &count_value) != 0 ||
                  count_value % DECIMAL_SCALE != 0 || count_value < 0 ||
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
            set_error(errstr, errstr_size,
                      "redis: corrupt state in key %suser:%.*s (fields prev, cum, count)",
                      s->key_prefix, (int)e->user_len, e->user);
            s->errors++;
            return -1;
        }
        e->state.count = count_value / DECIMAL_SCALE;
        if (e->state.count == 0) e->state.prev = e->state.cum = 0;
        e->flags |= CACHE_ENTRY_LOADED;
    }
    return 0;
}

int store_write_users(store_t *s, cache_entry_t *const *entries, size_t count, int64_t ttl_ms,
                      char *errstr, size_t errstr_size) {
    char ttl_text[24];
    size_t ttl_len = (size_t)snprintf(ttl_text, sizeof(ttl_text), "%lld", (long long)ttl_ms);
    if (count == 0) return 0;
    if (ensure_connected(s, errstr, errstr_size) != 0) return -1;
    for (size_t i = 0; i < count; i++) {
        const cache_entry_t *e = entries[i];
        char prev[DECIMAL_TEXT_MAX], cum[DECIMAL_TEXT_MAX], cnt[24];
        size_t klen;
        const char *key = user_key(s, e, &klen);
        if (!key) return pipeline_failed(s, errstr, errstr_size, "out of memory");
        size_t prev_len = decimal_format(e->state.prev, prev, sizeof(prev));
        size_t cum_len = decimal_format(e->state.cum, cum, sizeof(cum));
        size_t cnt_len = (size_t)snprintf(cnt, sizeof(cnt), "%lld", (long long)e->state.count);
        const char *hset[] = {"HSET", key, "prev", prev, "cum", cum, "count", cnt};
        size_t hset_len[] = {4, klen, 4, prev_len, 3, cum_len, 5, cnt_len};
        if (redisAppendCommandArgv(s->ctx, 8, hset, hset_len) != REDIS_OK)
            return pipeline_failed(s, errstr, errstr_size, "HSET append");
        int rc;
        if (ttl_ms > 0) {
            const char *exp[] = {"PEXPIRE", key, ttl_text};
            size_t exp_len[] = {7, klen, ttl_len};
            rc = redisAppendCommandArgv(s->ctx, 3, exp, exp_len);
        } else {
            const char *persist[] = {"PERSIST", key};
            size_t persist_len[] = {7, klen};
            rc = redisAppendCommandArgv(s->ctx, 2, persist, persist_len);
        }
        if (rc != REDIS_OK) return pipeline_failed(s, errstr, errstr_size, "expiry append");
    }
    s->commands += 2 * count;
    for (size_t i = 0; i < 2 * count; i++) {
        redisReply *r = NULL;
        if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK || !r)
            return pipeline_failed(s, errstr, errstr_size, "state write");
        int is_error = r->type == REDIS_REPLY_ERROR;
        if (is_error)
            set_error(errstr, errstr_size, "redis %s:%d: state write refused: %.200s",
                      s->host, s->port, r->str);
        freeReplyObject(r);
        if (is_error) {
            s->errors++;
            disconnect(s); /* unread replies remain: start over clean */
            return -1;
        }
    }
    return 0;
}

int store_ping(store_t *s, char *errstr, size_t errstr_size) {
    if (ensure_connected(s, errstr, errstr_size) != 0) return -1;
    s->commands++;
    redisReply *r = redisCommand(s->ctx, "PING");
    if (!r) return pipeline_failed(s, errstr, errstr_size, "PING");
    if (r->type == REDIS_REPLY_ERROR) {
        set_error(errstr, errstr_size, "redis %s:%d: PING refused: %.200s", s->host, s->port,
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
