/* harness_service: the real fraud-detector binary as a child process,
 * pointed at the test's Kafka and Redis, and its HTTP endpoints. */
#ifndef FRAUD_TEST_HARNESS_SERVICE_H
#define FRAUD_TEST_HARNESS_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness_kafka.h"
#include "harness_redis.h"

typedef struct service_proc {
    pid_t pid;
    char log_path[512];
} service_proc_t;

/* Starts build/fraud-detector with -X flags for the given servers plus
 * extra NULL-terminated "key=value" strings. */
void service_start(service_proc_t *svc, const kafka_cluster_t *kc, const redis_server_t *rs,
                   const char *const *extra);
/* The same with -c config_file first (NULL: none). */
void service_start_with_file(service_proc_t *svc, const kafka_cluster_t *kc,
                             const redis_server_t *rs, const char *config_file,
                             const char *const *extra);
/* True when one line of the service's log contains needle, and also
 * needle2 unless it is NULL. */
bool service_log_has(const service_proc_t *svc, const char *needle, const char *needle2);
/* True once service_log_has(svc, needle, NULL). */
bool service_wait_log(const service_proc_t *svc, const char *needle, int timeout_ms);
/* Sends a raw HTTP request to 127.0.0.1:port; returns the status (-1 on
 * no answer) and the body. */
int http_request(int port, const char *request, char *body, size_t body_size);
int http_get(int port, const char *path, char *body, size_t body_size);

/* Every instance started since service_forget_all(), for teardown and log
 * dumps (fixture.c). The pointers are the callers'. */
size_t service_started_count(void);
service_proc_t *service_started_at(size_t i);
void service_forget_all(void);

/* Sends sig to the running service. */
void service_signal(const service_proc_t *svc, int sig);
/* SIGTERM, wait; returns the exit status (or 128+signal). */
int service_stop(service_proc_t *svc);
/* SIGKILL, wait. */
void service_kill(service_proc_t *svc);
/* Runs the binary to completion with argv; returns exit status, stderr in buf. */
int service_run_once(const char *const *args, char *stderr_buf, size_t stderr_size);

#endif
