/* harness_private: what the harness's parts share and the suites do not
 * call. */
#ifndef FRAUD_TEST_HARNESS_PRIVATE_H
#define FRAUD_TEST_HARNESS_PRIVATE_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#define DIE(...)                                   \
    do {                                           \
        fprintf(stderr, "harness: " __VA_ARGS__);  \
        fprintf(stderr, "\n");                     \
        abort();                                   \
    } while (0)

/* Forks argv with stdout and stderr to log_path (NULL: /dev/null); the
 * child is killed when the test dies (PR_SET_PDEATHSIG). */
pid_t harness_spawn(const char *const *argv, const char *log_path);

/* Waits for the child; SIGKILLs it after timeout_ms. Its exit status,
 * 128+signal, or -1 on timeout. */
int harness_wait_exit(pid_t pid, int timeout_ms);

#endif
