#include "redis_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis.h>

#include "errstr.h"

struct redis_conn {
    redis_url_t url;
    redis_addr_t node; /* the one this connection reaches */
    char name[300]; /* host:port */
    struct timeval connect_timeout, command_timeout;
    char *script;
    char script_sha[41];
    redisContext *ctx;
    uint64_t commands, errors;
};

static int url_invalid(char *errstr, size_t errstr_size) {
    errstr_set(errstr, errstr_size,
               "redis.url: expected redis://[[user]:password@]host[:port][/db] or "
               "redis-cluster://[[user]:password@]host:port[,host:port...]");
    return -1;
}

/* host[:port] in [p, end). */
static int parse_addr(const char *p, const char *end, redis_addr_t *out) {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    size_t hlen = (size_t)((colon ? colon : end) - p);
    if (hlen == 0 || hlen >= sizeof(out->host)) return -1;
    memcpy(out->host, p, hlen);
    out->host[hlen] = '\0';
    out->port = 6379;
    if (colon) {
        char digits[8];
        size_t dlen = (size_t)(end - colon - 1);
        if (dlen == 0 || dlen >= sizeof(digits)) return -1;
        memcpy(digits, colon + 1, dlen);
        digits[dlen] = '\0';
        char *stop;
        long port = strtol(digits, &stop, 10);
        if (*stop || port < 1 || port > 65535) return -1;
        out->port = (int)port;
    }
    return 0;
}

int redis_url_parse(const char *url, redis_url_t *out, char *errstr, size_t errstr_size) {
    const char *p = url, *at = NULL, *slash, *host_end;
    memset(out, 0, sizeof(*out));
    if (strncmp(p, "redis-cluster://", 16) == 0) {
        out->cluster = 1;
        p += 16;
    } else if (strncmp(p, "redis://", 8) == 0) {
        p += 8;
    } else {
        return url_invalid(errstr, errstr_size);
    }
    slash = strchr(p, '/');
    host_end = slash ? slash : p + strlen(p);
    for (const char *q = p; q < host_end; q++)
        if (*q == '@') at = q; /* the last one: a password may hold '@' */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pass = colon ? colon + 1 : p;
        size_t ulen = colon ? (size_t)(colon - p) : 0, plen = (size_t)(at - pass);
        if (ulen >= sizeof(out->username) || plen >= sizeof(out->password))
            return url_invalid(errstr, errstr_size);
        memcpy(out->username, p, ulen);
        memcpy(out->password, pass, plen);
        p = at + 1;
    }
    while (p <= host_end) {
        const char *comma = memchr(p, ',', (size_t)(host_end - p));
        const char *node_end = comma ? comma : host_end;
        if (out->node_count == REDIS_URL_NODES_MAX || (comma && !out->cluster) ||
            parse_addr(p, node_end, &out->nodes[out->node_count]) != 0)
            return url_invalid(errstr, errstr_size);
        out->node_count++;
        p = node_end + 1;
    }
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 100000) return url_invalid(errstr, errstr_size);
        out->db = (int)db;
    }
    if (out->cluster && out->db != 0) {
        errstr_set(errstr, errstr_size,
                   "redis.url: a Redis Cluster has only database 0; drop the /%d", out->db);
        return -1;
    }
    return 0;
}

void redis_url_mask(const char *url, char *out, size_t out_size) {
    const char *scheme_end = strstr(url, "://");
    const char *at = strrchr(url, '@');
    if (!scheme_end || !at || at < scheme_end) {
        snprintf(out, out_size, "%s", url);
        return;
    }
    const char *userinfo = scheme_end + 3;
    const char *colon = memchr(userinfo, ':', (size_t)(at - userinfo));
    if (colon) /* user:password@ keeps the user */
        snprintf(out, out_size, "%.*s:***%s", (int)(colon - url), url, at);
    else /* password-only form redis://secret@host */
        snprintf(out, out_size, "%.*s***%s", (int)(userinfo - url), url, at);
}

/* First line of the file, without its newline. The reason never quotes the
 * content. */
static int read_password_file(redis_url_t *url, const char *path, char *errstr,
                              size_t errstr_size) {
    FILE *f = fopen(path, "r");
    if (!f) {
        errstr_set(errstr, errstr_size, "redis.password.file: cannot open %s: %s", path,
                   strerror(errno));
        return -1;
    }
    char *got = fgets(url->password, sizeof(url->password), f);
    fclose(f);
    if (!got) {
        errstr_set(errstr, errstr_size, "redis.password.file: %s is empty", path);
        return -1;
    }
    url->password[strcspn(url->password, "\r\n")] = '\0';
    return 0;
}

static struct timeval ms_to_timeval(int64_t ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

redis_conn_t *redis_conn_new(const redis_conn_options_t *opts, char *errstr, size_t errstr_size) {
    redis_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        errstr_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (redis_url_parse(opts->url, &c->url, errstr, errstr_size) != 0 ||
        (opts->password_file && opts->password_file[0] &&
         read_password_file(&c->url, opts->password_file, errstr, errstr_size) != 0)) {
        redis_conn_destroy(c);
        return NULL;
    }
    if (opts->script && !(c->script = strdup(opts->script))) {
        errstr_set(errstr, errstr_size, "out of memory");
        redis_conn_destroy(c);
        return NULL;
    }
    c->node = opts->node ? *opts->node : c->url.nodes[0];
    snprintf(c->name, sizeof(c->name), "%s:%d", c->node.host, c->node.port);
    c->connect_timeout = ms_to_timeval(opts->connect_timeout_ms);
    c->command_timeout = ms_to_timeval(opts->command_timeout_ms);
    return c;
}

static void disconnect(redis_conn_t *c) {
    if (c->ctx) redisFree(c->ctx);
    c->ctx = NULL;
}

void redis_conn_destroy(redis_conn_t *conn) {
    if (!conn) return;
    disconnect(conn);
    /* Do not leave the password in freed memory. */
    memset(conn->url.password, 0, sizeof(conn->url.password));
    free(conn->script);
    free(conn);
}

static int expect_reply(redis_conn_t *c, redisReply *reply, int type, const char *what,
                        char *errstr, size_t errstr_size) {
    int ok = reply && reply->type == type;
    if (!reply)
        errstr_set(errstr, errstr_size, "redis %s: %s failed: %s", c->name, what,
                   c->ctx && c->ctx->errstr[0] ? c->ctx->errstr : "no reply");
    else if (reply->type == REDIS_REPLY_ERROR)
        errstr_set(errstr, errstr_size, "redis %s: %s refused: %.200s", c->name, what,
                   reply->str);
    else if (!ok)
        errstr_set(errstr, errstr_size, "redis %s: %s: unexpected reply", c->name, what);
    return ok ? 0 : -1;
}

/* AUTH, SELECT and SCRIPT LOAD on a fresh context. */
static int prepare(redis_conn_t *c, char *errstr, size_t errstr_size) {
    redisReply *r;
    int rc;
    if (redisSetTimeout(c->ctx, c->command_timeout) != REDIS_OK) {
        errstr_set(errstr, errstr_size, "redis %s: cannot set timeout", c->name);
        return -1;
    }
    if (c->url.password[0]) {
        r = c->url.username[0]
                ? redisCommand(c->ctx, "AUTH %s %s", c->url.username, c->url.password)
                : redisCommand(c->ctx, "AUTH %s", c->url.password);
        rc = expect_reply(c, r, REDIS_REPLY_STATUS, "AUTH", errstr, errstr_size);
        if (r) freeReplyObject(r);
        if (rc) return -1;
    }
    if (c->url.db) {
        r = redisCommand(c->ctx, "SELECT %d", c->url.db);
        rc = expect_reply(c, r, REDIS_REPLY_STATUS, "SELECT", errstr, errstr_size);
        if (r) freeReplyObject(r);
        if (rc) return -1;
    }
    if (!c->script) return 0;
    r = redisCommand(c->ctx, "SCRIPT LOAD %s", c->script);
    rc = expect_reply(c, r, REDIS_REPLY_STRING, "SCRIPT LOAD", errstr, errstr_size);
    if (rc == 0 && r->len == 40) {
        memcpy(c->script_sha, r->str, 40);
        c->script_sha[40] = '\0';
    } else if (rc == 0) {
        errstr_set(errstr, errstr_size, "redis %s: SCRIPT LOAD: unexpected reply", c->name);
        rc = -1;
    }
    if (r) freeReplyObject(r);
    return rc;
}

redisContext *redis_conn_get(redis_conn_t *c, char *errstr, size_t errstr_size) {
    if (c->ctx) return c->ctx;
    c->ctx = redisConnectWithTimeout(c->node.host, c->node.port, c->connect_timeout);
    if (!c->ctx || c->ctx->err) {
        errstr_set(errstr, errstr_size, "redis %s: cannot connect: %s", c->name,
                   c->ctx ? c->ctx->errstr : "out of memory");
        c->errors++;
        disconnect(c);
        return NULL;
    }
    if (prepare(c, errstr, errstr_size) != 0) {
        c->errors++;
        disconnect(c);
        return NULL;
    }
    return c->ctx;
}

const char *redis_conn_script_sha(const redis_conn_t *conn) { return conn->script_sha; }

int redis_conn_fail(redis_conn_t *c, const char *what, char *errstr, size_t errstr_size) {
    errstr_set(errstr, errstr_size, "redis %s: %s: %s", c->name, what,
               c->ctx && c->ctx->errstr[0] ? c->ctx->errstr : "unexpected reply");
    redis_conn_drop(c);
    return -1;
}

void redis_conn_drop(redis_conn_t *c) {
    c->errors++;
    disconnect(c);
}

int redis_conn_ping(redis_conn_t *c, char *errstr, size_t errstr_size) {
    redisContext *ctx = redis_conn_get(c, errstr, errstr_size);
    if (!ctx) return -1;
    c->commands++;
    redisReply *r = redisCommand(ctx, "PING");
    int rc = expect_reply(c, r, REDIS_REPLY_STATUS, "PING", errstr, errstr_size);
    if (r) freeReplyObject(r);
    if (rc) redis_conn_drop(c);
    return rc;
}

const char *redis_conn_name(const redis_conn_t *conn) { return conn->name; }
void redis_conn_count(redis_conn_t *conn, uint64_t commands) { conn->commands += commands; }
void redis_conn_count_error(redis_conn_t *conn) { conn->errors++; }
uint64_t redis_conn_commands_total(const redis_conn_t *conn) { return conn->commands; }
uint64_t redis_conn_errors_total(const redis_conn_t *conn) { return conn->errors; }
