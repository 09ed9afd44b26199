/* http_server: the operations endpoints, served by libmicrohttpd.
 *
 *   GET /metrics        Prometheus text exposition
 *   GET /healthz        liveness, JSON
 *   GET /readyz         readiness, JSON (503 when not ready)
 *   GET /users/{id}     a user's state, JSON (404 when unknown or expired)
 *   GET /rules          the rule instances in force, JSON
 * Anything else is 404; other methods are 405; a request with a body, or
 * headers larger than 16 KiB, is refused. The handlers run on the daemon's
 * single internal thread, one request at a time; they must be thread-safe
 * with respect to the consumer thread, which is their owner's business.
 * The server borrows the handler context; http_server_stop() frees the
 * server. */
#ifndef FRAUD_HTTP_SERVER_H
#define FRAUD_HTTP_SERVER_H

#include <stddef.h>

typedef struct http_handlers {
    void *ctx;
    /* Each returns an HTTP status and sets *body to text the server frees
     * (NULL when out of memory, answered with 500). */
    int (*metrics)(void *ctx, char **body);
    int (*health)(void *ctx, char **body);
    int (*ready)(void *ctx, char **body);
    int (*user)(void *ctx, const char *user, size_t user_len, char **body);
    int (*rules)(void *ctx, char **body); /* NULL: /rules is 404 */
} http_handlers_t;

typedef struct http_server http_server_t;

/* listen is "host:port" (IPv4) or "off", which returns NULL with errstr
 * empty. NULL with a reason otherwise. */
http_server_t *http_server_start(const char *listen, const http_handlers_t *handlers,
                                 char *errstr, size_t errstr_size);
void http_server_stop(http_server_t *server);

/* Path parsing, exposed for tests and fuzzing. */
typedef enum {
    USER_PATH_OK = 0,
    USER_PATH_NOT_A_USER_PATH, /* 404 */
    USER_PATH_BAD_ENCODING,    /* 400: bad %XX, a control byte, or not UTF-8 */
    USER_PATH_TOO_LONG         /* 400: over 256 bytes decoded */
} user_path_status_t;

/* Takes the raw (still percent-encoded) path "/users/<id>", decodes <id>
 * into user (cap bytes, NUL-terminated) and sets *len. */
user_path_status_t http_parse_user_path(const char *path, char *user, size_t cap, size_t *len);

#endif
