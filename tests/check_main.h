/* check_main: the one way our Check suites run. Integration suites pass
 * CK_NOFORK: their fixtures start servers (and librdkafka's mock cluster
 * threads) in this process, which a fork per test would not see. */
#ifndef FRAUD_TEST_CHECK_MAIN_H
#define FRAUD_TEST_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

static inline int run_suite(Suite *suite, enum fork_status fork_mode, enum print_output output) {
    SRunner *runner = srunner_create(suite);
    if (fork_mode == CK_NOFORK) srunner_set_fork_status(runner, CK_NOFORK);
    srunner_run_all(runner, output);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
