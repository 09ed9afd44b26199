/* redis_conn: one hiredis connection to one Redis node, kept alive.
 *
 * Owns the redis:// and redis-cluster:// URLs (parsed and masked here
 * only), the password, the timeouts and the hiredis context; a cluster's
 * node is named by the caller (redis_cluster), the URL's first node
 * otherwise. It connects lazily, then sends AUTH,
 * SELECT and SCRIPT LOAD of the caller's script on every connect, since a
 * restarted Redis has forgotten the script. After a failure the caller
 * drops the connection with redis_conn_fail(); the next redis_conn_get()
 * reconnects, so callers simply retry. Blocking, one thread per conn. */
#ifndef FRAUD_REDIS_CONN_H
#define FRAUD_REDIS_CONN_H

#include <stddef.h>
#include <stdint.h>

struct redisContext;

#define REDIS_URL_NODES_MAX 16

typedef struct redis_addr {
    char host[256];
    int port;
} redis_addr_t;

/* redis://[[user]:password@]host[:port][/db], or
 * redis-cluster://[[user]:password@]host:port[,host:port...] naming seed
 * nodes of a Redis Cluster (database 0, the only one a cluster has). */
typedef struct redis_url {
    int cluster;
    redis_addr_t nodes[REDIS_URL_NODES_MAX]; /* port 6379 when the URL has none */
    size_t node_count;                       /* 1 for redis:// */
    int db;
    char username[128];
    char password[256];
} redis_url_t;

/* Returns 0, or -1 with a reason that never quotes the password. */
int redis_url_parse(const char *url, redis_url_t *out, char *errstr, size_t errstr_size);

/* Copies url with its password replaced by "***", for logs. */
void redis_url_mask(const char *url, char *out, size_t out_size);

typedef struct redis_conn redis_conn_t;

typedef struct redis_conn_options {
    const char *url;
    const redis_addr_t *node;  /* NULL: the URL's first node; else this one */
    const char *password_file; /* NULL or "": none; else overrides the URL's */
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
    const char *script; /* borrowed; loaded on every connect; NULL: none */
} redis_conn_options_t;

/* Parses the URL and reads the password file; does not connect yet.
 * NULL with errstr on failure. Free with redis_conn_destroy(). */
redis_conn_t *redis_conn_new(const redis_conn_options_t *opts, char *errstr, size_t errstr_size);
void redis_conn_destroy(redis_conn_t *conn);

/* The live context, connecting first when needed; NULL with errstr when
 * Redis cannot be reached. Borrowed until the next redis_conn_fail(). */
struct redisContext *redis_conn_get(redis_conn_t *conn, char *errstr, size_t errstr_size);

/* The SHA1 of the script as loaded on the current connection. */
const char *redis_conn_script_sha(const redis_conn_t *conn);

/* Records a failure of `what`, with hiredis's reason when it has one, and
 * drops the connection. Always returns -1. */
int redis_conn_fail(redis_conn_t *conn, const char *what, char *errstr, size_t errstr_size);

/* The same, for a caller that has written errstr itself. */
void redis_conn_drop(redis_conn_t *conn);

/* A PING round trip: 0 when Redis answered, -1 with errstr. */
int redis_conn_ping(redis_conn_t *conn, char *errstr, size_t errstr_size);

/* "host:port", for messages. */
const char *redis_conn_name(const redis_conn_t *conn);

/* Counts commands sent, and errors that keep the connection (a reply
 * that is not what this service wrote), for the metrics. */
void redis_conn_count(redis_conn_t *conn, uint64_t commands);
void redis_conn_count_error(redis_conn_t *conn);
uint64_t redis_conn_commands_total(const redis_conn_t *conn);
uint64_t redis_conn_errors_total(const redis_conn_t *conn);

#endif
