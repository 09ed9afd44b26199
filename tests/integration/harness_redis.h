/* harness_redis: redis-server on a free port of 127.0.0.1, in a temporary
 * directory, and the reads a test makes of the service's state there. */
#ifndef FRAUD_TEST_HARNESS_REDIS_H
#define FRAUD_TEST_HARNESS_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <hiredis.h>

typedef struct redis_server {
    pid_t pid;
    int port;
    char dir[256];
    bool persistent;       /* AOF with fsync always */
    char password[64];     /* requirepass when not empty */
} redis_server_t;

/* Starts redis-server and waits until it answers PING. Set srv->password
 * before the call for a server that requires AUTH. */
void redis_server_start(redis_server_t *srv, bool persistent);
void redis_server_stop(redis_server_t *srv);
/* Stops the process but keeps its directory (and AOF), then starts it again
 * on the same port: an outage that loses nothing acknowledged. */
void redis_server_halt(redis_server_t *srv);
void redis_server_resume(redis_server_t *srv);
redisContext *redis_server_connect(const redis_server_t *srv);

/* Waits until the HASH field of a user reaches `want`. True when it did. */
bool wait_for_user_field(redisContext *c, const char *user, const char *field,
                         const char *want, int timeout_ms);

/* The key holding a user's state, fraud:{<topic>/<partition>}:user:<id>,
 * found with KEYS (tests only). False when the user has none. */
bool redis_find_user_key(redisContext *c, const char *user, char *key, size_t key_size);

/* HGET as a malloc'd string (NULL when absent); caller frees. */
char *redis_hget(redisContext *c, const char *key, const char *field);

#endif
