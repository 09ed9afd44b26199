/* http_server: routing and limits on top of libmicrohttpd. The path is
 * percent-decoded here, not by the daemon, so the exact bytes of a user id
 * are under our control (and fuzzed). */
#include "http_server.h"
#include "utf8.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "decode.h"

#define REQUEST_MEMORY_LIMIT (16 * 1024)
#define USERS_PREFIX "/users/"

struct http_server {
    struct MHD_Daemon *daemon;
    http_handlers_t handlers;
};

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

user_path_status_t http_parse_user_path(const char *path, char *user, size_t cap,
                                        size_t *len) {
    size_t prefix = strlen(USERS_PREFIX), n = 0;
    if (strncmp(path, USERS_PREFIX, prefix) != 0) return USER_PATH_NOT_A_USER_PATH;
    const char *p = path + prefix;
    if (*p == '\0' || strchr(p, '/')) return USER_PATH_NOT_A_USER_PATH;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '%') {
            int hi = hex_value(p[1]), lo = hi < 0 ? -1 : hex_value(p[2]);
            if (lo < 0) return USER_PATH_BAD_ENCODING;
            c = (unsigned char)(hi * 16 + lo);
            p += 2;
        }
        if (c < 0x20 || c == 0x7f) return USER_PATH_BAD_ENCODING;
        if (n >= PAYMENT_USER_MAX || n + 1 >= cap) return USER_PATH_TOO_LONG;
        user[n++] = (char)c;
    }
    user[n] = '\0';
    /* No user id that is not UTF-8 has state, and answers must stay UTF-8. */
    if (!utf8_valid(user, n, NULL)) return USER_PATH_BAD_ENCODING;
    *len = n;
    return USER_PATH_OK;
}

static enum MHD_Result respond(struct MHD_Connection *conn, int status, char *body,
                               const char *content_type) {
    static const char oom[] = "{\"error\":\"out of memory\"}";
    struct MHD_Response *response;
    if (body) {
        response = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    } else {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        response = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
                                                   MHD_RESPMEM_PERSISTENT);
    }
    if (!response) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned int)status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result respond_error(struct MHD_Connection *conn, int status,
                                     const char *message) {
    char text[256];
    snprintf(text, sizeof(text), "{\"error\":\"%s\"}\n", message);
    return respond(conn, status, strdup(text), "application/json");
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **request_state) {
    http_server_t *server = cls;
    const http_handlers_t *h = &server->handlers;
    char *body = NULL;
    (void)version;
    (void)upload_data;

    if (*request_state == NULL) {
        /* First call, headers only: refuse what we will never serve before
         * any body is read. */
        *request_state = server;
        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
            return respond_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET is served");
        if ((length && strcmp(length, "0") != 0) ||
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding"))
            return respond_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "no request body is accepted");
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* unreachable: bodies are refused above */
        return MHD_YES;
    }

    if (strcmp(url, "/metrics") == 0) {
        int status = h->metrics(h->ctx, &body);
        return respond(conn, status, body, "text/plain; version=0.0.4; charset=utf-8");
    }
    if (strcmp(url, "/healthz") == 0) {
        int status = h->health(h->ctx, &body);
        return respond(conn, status, body, "application/json");
    }
    if (strcmp(url, "/readyz") == 0) {
        int status = h->ready(h->ctx, &body);
        return respond(conn, status, body, "application/json");
    }
    if (strcmp(url, "/rules") == 0 && h->rules) {
        int status = h->rules(h->ctx, &body);
        return respond(conn, status, body, "application/json");
    }
    char user[PAYMENT_USER_MAX + 1];
    size_t user_len = 0;
    switch (http_parse_user_path(url, user, sizeof(user), &user_len)) {
    case USER_PATH_OK: {
        int status = h->user(h->ctx, user, user_len, &body);
        return respond(conn, status, body, "application/json");
    }
    case USER_PATH_BAD_ENCODING:
        return respond_error(conn, MHD_HTTP_BAD_REQUEST, "bad percent-encoding in user id");
    case USER_PATH_TOO_LONG:
        return respond_error(conn, MHD_HTTP_BAD_REQUEST, "user id longer than 256 bytes");
    case USER_PATH_NOT_A_USER_PATH:
        break;
    }
    return respond_error(conn, MHD_HTTP_NOT_FOUND, "not found");
}

/* Leaves the URL as it came: http_parse_user_path() decodes it. */
static size_t keep_url_escaped(void *cls, struct MHD_Connection *conn, char *s) {
    (void)cls;
    (void)conn;
    return strlen(s);
}

http_server_t *http_server_start(const char *listen, const http_handlers_t *handlers,
                                 char *errstr, size_t errstr_size) {
    struct sockaddr_in addr;
    char host[64];
    unsigned port;
    errstr[0] = '\0';
    if (strcmp(listen, "off") == 0) return NULL;
    const char *colon = strrchr(listen, ':');
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    if (!colon || (size_t)(colon - listen) >= sizeof(host) ||
        sscanf(colon + 1, "%u", &port) != 1 || port > 65535) {
        snprintf(errstr, errstr_size, "http.listen: expected host:port or off, got \"%s\"",
                 listen);
        return NULL;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        snprintf(errstr, errstr_size, "http.listen: \"%s\" is not an IPv4 address", host);
        return NULL;
    }
    addr.sin_port = htons((uint16_t)port);

    http_server_t *server = calloc(1, sizeof(*server));
    if (!server) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    server->handlers = *handlers;
    server->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, handle_request, server,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)REQUEST_MEMORY_LIMIT,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_url_escaped, NULL,
        MHD_OPTION_END);
    if (!server->daemon) {
        snprintf(errstr, errstr_size, "http.listen: cannot listen on %s (address in use?)",
                 listen);
        free(server);
        return NULL;
    }
    return server;
}

void http_server_stop(http_server_t *server) {
    if (!server) return;
    MHD_stop_daemon(server->daemon);
    free(server);
}
