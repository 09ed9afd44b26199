/* harness_redis: a real redis-server per test, and reading what the
 * service wrote there. */
#include "harness.h"
#include "harness_private.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    const char *argv[24] = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                            "--dir", srv->dir, "--save", "",
                            "--appendonly", srv->persistent ? "yes" : "no",
                            "--appendfsync", "always"};
    int n = 13;
    if (srv->cluster) {
        argv[n++] = "--cluster-enabled";
        argv[n++] = "yes";
        argv[n++] = "--cluster-node-timeout";
        argv[n++] = "2000"; /* a killed master's replica takes over within seconds */
    }
    if (srv->password[0]) {
        argv[n++] = "--requirepass";
        argv[n++] = srv->password;
    }
    argv[n] = NULL;
    srv->pid = harness_spawn(argv, log_path);
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
    srv->port = srv->cluster ? harness_free_port_pair(10000) : harness_free_port();
    srv->persistent = persistent;
    launch_redis(srv);
}

void redis_server_halt(redis_server_t *srv) {
    kill(srv->pid, SIGTERM);
    harness_wait_exit(srv->pid, 10000);
    srv->pid = 0;
}

void redis_server_resume(redis_server_t *srv) { launch_redis(srv); }

void redis_server_stop(redis_server_t *srv) {
    char cmd[400];
    if (srv->pid > 0) {
        kill(srv->pid, SIGTERM);
        harness_wait_exit(srv->pid, 10000);
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
