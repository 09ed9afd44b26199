/* txn_commit: the commit of exactly_once's transactions, and starting over
 * after an abort. */
#include "txn_commit.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define START_OVER_ATTEMPTS 3

struct txn_commit {
    txn_commit_env_t env;
    const char *crash_point; /* FD_TEST_CRASH_POINT; NULL: none */
    const int32_t *losing;
    size_t losing_count;
};

txn_commit_t *txn_commit_new(const txn_commit_env_t *env) {
    txn_commit_t *tc = calloc(1, sizeof(*tc));
    if (!tc) return NULL;
    tc->env = *env;
    tc->crash_point = getenv("FD_TEST_CRASH_POINT");
    return tc;
}

void txn_commit_destroy(txn_commit_t *tc) { free(tc); }

void txn_commit_set_losing(txn_commit_t *tc, const int32_t *partitions, size_t count) {
    if (!tc) return;
    tc->losing = partitions;
    tc->losing_count = count;
}

static bool is_losing(const txn_commit_t *tc, int32_t partition) {
    for (size_t i = 0; i < tc->losing_count; i++)
        if (tc->losing[i] == partition) return true;
    return false;
}

/* One partition of an aborted transaction, a few attempts; past them (this
 * instance was fenced, or Kafka and Redis both fail) the service stops and
 * the partition's next owner does the same. */
static int start_over(txn_commit_t *tc, int32_t partition) {
    const txn_commit_env_t *e = &tc->env;
    partitions_start_over(e->partitions, partition, e->cache, e->outbox, e->io);
    outbox_redelivery_t r = {.outbox = e->outbox, .partition = partition,
                             .checkpoint = partitions_checkpoint(e->partitions, partition)};
    char errstr[512];
    for (int attempt = 0; attempt < START_OVER_ATTEMPTS; attempt++) {
        if (attempt) clock_sleep_ms(1000LL << attempt);
        r.committed = -2; /* read afresh: what the group committed decides what goes again */
        if (outbox_redeliver_step(&r, errstr, sizeof(errstr)) == 0) return 0;
        log_warn("txn", "%s [%d]: starting over after an aborted transaction: %s",
                 e->cfg->input_topic, (int)partition, errstr);
    }
    log_error("txn", "%s [%d]: cannot deliver the outbox of an aborted transaction; stopping, "
              "its next owner delivers it", e->cfg->input_topic, (int)partition);
    return -1;
}

static int start_over_aborted(txn_commit_t *tc) {
    size_t count;
    const int32_t *aborted = kafka_io_aborted_partitions(tc->env.io, &count);
    int32_t *parts = malloc((count ? count : 1) * sizeof(*parts));
    if (!parts) {
        log_error("txn", "out of memory starting over after an aborted transaction");
        return -1;
    }
    memcpy(parts, aborted, count * sizeof(*parts)); /* the next commit reuses io's list */
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++)
        if (!is_losing(tc, parts[i])) rc = start_over(tc, parts[i]);
    free(parts);
    return rc;
}

static void crash_if_asked(const txn_commit_t *tc, const char *point) {
    if (!tc->crash_point || strcmp(tc->crash_point, point) != 0 ||
        outbox_in_transaction(tc->env.outbox) == 0)
        return;
    log_warn("txn", "test hook: crashing %s", point);
    kafka_io_flush(tc->env.io); /* the records reach the broker, uncommitted */
    raise(SIGKILL);
}

int txn_commit_if_due(txn_commit_t *tc, bool force) {
    const txn_commit_env_t *e = &tc->env;
    int64_t age = kafka_io_transaction_age_ms(e->io);
    if (!config_exactly_once(e->cfg) || age < 0 ||
        (!force && age < e->cfg->output_transaction_interval_ms))
        return 0;
    crash_if_asked(tc, "after_step");
    kafka_txn_result_t result = kafka_io_commit_transaction(e->io);
    if (result == KAFKA_TXN_COMMITTED) crash_if_asked(tc, "after_commit");
    outbox_transaction_done(e->outbox, result == KAFKA_TXN_COMMITTED);
    if (result == KAFKA_TXN_COMMITTED) return 0;
    return result == KAFKA_TXN_ABORTED ? start_over_aborted(tc) : -1;
}
