/* harness_service: the real fraud-detector binary as a child process, its
 * log, its signals, and its HTTP endpoints. */
#include "harness.h"
#include "harness_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define STARTED_MAX 16
static service_proc_t *started[STARTED_MAX];
static size_t started_count;

static void remember(service_proc_t *svc) {
    for (size_t i = 0; i < started_count; i++)
        if (started[i] == svc) return;
    if (started_count == STARTED_MAX) DIE("more than %d service instances", STARTED_MAX);
    started[started_count++] = svc;
}

size_t service_started_count(void) { return started_count; }
service_proc_t *service_started_at(size_t i) { return started[i]; }
void service_forget_all(void) { started_count = 0; }

void service_start(service_proc_t *svc, const kafka_cluster_t *kc, const redis_server_t *rs,
                   const char *const *extra) {
    service_start_with_file(svc, kc, rs, NULL, extra);
}

void service_start_with_file(service_proc_t *svc, const kafka_cluster_t *kc,
                             const redis_server_t *rs, const char *config_file,
                             const char *const *extra) {
    static char args[64][512];
    const char *argv[140];
    int n = 0, a = 0;
    snprintf(svc->log_path, sizeof(svc->log_path), "%s/service-%d.log", rs->dir,
             harness_free_port());
    argv[n++] = FRAUD_DETECTOR_BIN;
    if (config_file) {
        argv[n++] = "-c";
        argv[n++] = config_file;
    }
    snprintf(args[a], sizeof(args[a]), "kafka.bootstrap.servers=%s", kc->bootstrap);
    argv[n++] = "-X";
    argv[n++] = args[a++];
    if (rs->url[0]) snprintf(args[a], sizeof(args[a]), "redis.url=%s", rs->url);
    else snprintf(args[a], sizeof(args[a]), "redis.url=redis://127.0.0.1:%d", rs->port);
    argv[n++] = "-X";
    argv[n++] = args[a++];
    /* Fast rejoin in tests; production keeps librdkafka's defaults. */
    argv[n++] = "-X";
    argv[n++] = "kafka.consumer.session.timeout.ms=6000";
    argv[n++] = "-X";
    argv[n++] = "kafka.consumer.heartbeat.interval.ms=500";
    argv[n++] = "-X";
    argv[n++] = "kafka.topic.metadata.refresh.interval.ms=1000";
    argv[n++] = "-X";
    argv[n++] = "http.listen=off"; /* tests that want it pass their own */
    for (size_t i = 0; extra && extra[i] && n < 136; i++) {
        argv[n++] = "-X";
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    svc->pid = harness_spawn(argv, svc->log_path);
    remember(svc);
}

void service_signal(const service_proc_t *svc, int sig) {
    if (svc->pid > 0 && kill(svc->pid, sig) != 0) DIE("kill %d: %s", (int)svc->pid, strerror(errno));
}

bool service_log_has(const service_proc_t *svc, const char *needle, const char *needle2) {
    char line[4096];
    bool found = false;
    FILE *f = fopen(svc->log_path, "r");
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) && (!needle2 || strstr(line, needle2));
    if (f) fclose(f);
    return found;
}

bool service_wait_log(const service_proc_t *svc, const char *needle, int timeout_ms) {
    int64_t deadline = mono_ms() + timeout_ms;
    do {
        if (service_log_has(svc, needle, NULL)) return true;
        sleep_ms(50);
    } while (mono_ms() < deadline);
    return false;
}

int http_request(int port, const char *request, char *body, size_t body_size) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    size_t len = strlen(request), sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0) break; /* the server may refuse before reading it all */
        sent += (size_t)n;
    }
    char response[65536];
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, response + got, sizeof(response) - 1 - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
        if (got == sizeof(response) - 1) break;
    }
    close(fd);
    response[got] = '\0';
    int status = -1;
    if (sscanf(response, "HTTP/1.%*d %d", &status) != 1) return -1;
    const char *start = strstr(response, "\r\n\r\n");
    snprintf(body, body_size, "%s", start ? start + 4 : "");
    return status;
}

int http_get(int port, const char *path, char *body, size_t body_size) {
    char request[4096];
    snprintf(request, sizeof(request),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    return http_request(port, request, body, body_size);
}

int service_stop(service_proc_t *svc) {
    if (svc->pid <= 0) return -1;
    kill(svc->pid, SIGTERM);
    int rc = harness_wait_exit(svc->pid, 60000);
    svc->pid = 0;
    return rc;
}

void service_kill(service_proc_t *svc) {
    if (svc->pid <= 0) return;
    kill(svc->pid, SIGKILL);
    harness_wait_exit(svc->pid, 10000);
    svc->pid = 0;
}

int service_run_once(const char *const *args, char *stderr_buf, size_t stderr_size) {
    char path[] = "/tmp/fraud-test-run-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) DIE("mkstemp");
    close(fd);
    const char *argv[64];
    int n = 0;
    argv[n++] = FRAUD_DETECTOR_BIN;
    for (size_t i = 0; args[i] && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = harness_spawn(argv, path);
    int rc = harness_wait_exit(pid, 30000);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(stderr_buf, 1, stderr_size - 1, f) : 0;
    stderr_buf[got] = '\0';
    if (f) fclose(f);
    unlink(path);
    return rc;
}
