/* outbox_redeliver: what a partition's Redis outbox still holds when the
 * partition is assigned, produced again (at_least_once: all of it;
 * exactly_once: what no committed transaction carried) or only cleared. Part
 * of the outbox module. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "log.h"
#include "outbox_format.h"
#include "outbox_private.h"

static int by_offset(const void *a, const void *b) {
    int64_t x = ((const outbox_stored_t *)a)->offset, y = ((const outbox_stored_t *)b)->offset;
    return (x > y) - (x < y);
}

/* Produces one stored record as it was first produced: same key, value and
 * headers (its time comes back from its JSON's detected_at). */
static int produce_one_stored(outbox_t *ob, int32_t partition, const outbox_stored_t *s) {
    cJSON *json = cJSON_Parse(s->json);
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(json, "user_id");
    const cJSON *detected = cJSON_GetObjectItemCaseSensitive(json, "detected_at");
    trace_context_t trace;
    int has_trace = outbox_format_trace(s, &trace);
    output_record_t r = {
        .kind = s->kind, .rule = s->rule, .json = s->json, .partition = partition,
        .offset = s->offset,
        .detected_at_ms = s->kind != OUTPUT_TOTAL && s->kind != OUTPUT_TOTAL_ERASED &&
                                  cJSON_IsNumber(detected)
                              ? (int64_t)detected->valuedouble
                              : -1,
        .trace = has_trace ? &trace : NULL,
        .user = cJSON_IsString(user)             ? user->valuestring
                : s->kind == OUTPUT_DEAD_LETTER ? "" /* its key is in its json */
                                                : NULL,
    };
    snprintf(r.id, sizeof(r.id), "%s", s->id);
    int rc = r.user ? outbox_produce_stored(ob, &r) : -1;
    cJSON_Delete(json);
    return rc;
}

/* Offset order, so a user's running totals arrive oldest first and the
 * latest stays last in a compacted topic. Only records of payments at or
 * past from_offset go; *produced says how many did. */
static int produce_stored(outbox_t *ob, int32_t partition, const store_outbox_t *outbox,
                          int64_t from_offset, size_t *produced) {
    outbox_stored_t *records = calloc(outbox->count ? outbox->count : 1, sizeof(*records));
    int rc = records ? 0 : -1;
    *produced = 0;
    for (size_t i = 0; i < outbox->count && rc == 0; i++)
        if (outbox_format_parse(outbox->alerts[i].json, &records[i]) != 0) {
            log_error("alert", "%s: unreadable outbox record", outbox->alerts[i].id);
            rc = -1;
        } else {
            records[i].id = outbox->alerts[i].id;
        }
    if (rc == 0) qsort(records, outbox->count, sizeof(*records), by_offset);
    for (size_t i = 0; i < outbox->count && rc == 0; i++) {
        if (records[i].offset < from_offset) continue;
        rc = produce_one_stored(ob, partition, &records[i]);
        if (rc == 0) ++*produced;
    }
    free(records);
    return rc;
}

static int remove_all(outbox_t *ob, int32_t partition, store_outbox_t *outbox, char *errstr,
                      size_t errstr_size) {
    store_step_t done = {.partition = partition, .alerts = outbox->alerts,
                         .alert_count = outbox->count};
    return store_outbox_remove(ob->store, &done, 1, errstr, errstr_size);
}

static void log_redelivered(const outbox_t *ob, int32_t partition, size_t count) {
    metrics_add(&ob->metrics->alerts_redelivered, count);
    log_info("alert", "%s [%d]: redelivered %zu record(s) left in the outbox",
             ob->cfg->input_topic, (int)partition, count);
}

/* at_least_once: everything in the outbox goes again, and is removed once
 * acknowledged. */
static int redeliver_all(outbox_t *ob, int32_t partition, store_outbox_t *outbox, char *errstr,
                         size_t errstr_size) {
    uint64_t failures_before = kafka_io_delivery_failures(ob->io);
    size_t produced;
    int rc = produce_stored(ob, partition, outbox, INT64_MIN, &produced);
    if (rc != 0) snprintf(errstr, errstr_size, "producing the outbox of partition %d failed",
                          (int)partition);
    if (rc == 0 && (rc = kafka_io_await_deliveries(ob->io, failures_before)) != 0)
        snprintf(errstr, errstr_size, "the outbox of partition %d was not acknowledged",
                 (int)partition);
    if (rc == 0) rc = remove_all(ob, partition, outbox, errstr, errstr_size);
    if (rc == 0) log_redelivered(ob, partition, outbox->count);
    return rc;
}

/* exactly_once: the group's committed offset says which transaction got
 * through. Records of payments below it were committed with it; the rest
 * (the last transaction aborted, or never began) go again in a new one that
 * commits the checkpoint as the partition's offset. */
static int redeliver_uncommitted(outbox_t *ob, int32_t partition, int64_t committed,
                                 int64_t checkpoint, store_outbox_t *outbox, char *errstr,
                                 size_t errstr_size) {
    if (committed < -1) {
        snprintf(errstr, errstr_size, "the committed offset of partition %d is unknown",
                 (int)partition);
        return -1;
    }
    size_t produced = 0;
    int rc = committed >= 0 && checkpoint >= 0 && committed >= checkpoint
                 ? 0
                 : produce_stored(ob, partition, outbox, committed, &produced);
    if (rc != 0) snprintf(errstr, errstr_size, "producing the outbox of partition %d failed",
                          (int)partition);
    if (rc == 0 && produced > 0) {
        if (checkpoint >= 0)
            kafka_io_store_offsets(ob->io, ob->cfg->input_topic, &partition, &checkpoint, 1);
        if (kafka_io_commit_transaction(ob->io) != KAFKA_TXN_COMMITTED) {
            snprintf(errstr, errstr_size, "the transaction redelivering the outbox of "
                     "partition %d aborted", (int)partition);
            rc = -1;
        }
    }
    if (rc == 0) rc = remove_all(ob, partition, outbox, errstr, errstr_size);
    if (rc != 0) return rc;
    if (produced > 0) {
        log_redelivered(ob, partition, produced);
    } else {
        metrics_add(&ob->metrics->outboxes_cleared, 1);
        log_info("alert", "%s [%d]: committed offset %lld has reached the checkpoint's "
                 "records: cleared %zu delivered record(s) from the outbox without producing "
                 "them again", ob->cfg->input_topic, (int)partition, (long long)committed,
                 outbox->count);
    }
    return 0;
}

int outbox_redeliver(outbox_t *ob, int32_t partition, int64_t committed, int64_t checkpoint,
                     char *errstr, size_t errstr_size) {
    store_outbox_t outbox;
    if (store_outbox_load(ob->store, partition, &outbox, errstr, errstr_size) != 0) return -1;
    int rc = outbox.count == 0 ? 0
             : ob->transactional
                 ? redeliver_uncommitted(ob, partition, committed, checkpoint, &outbox, errstr,
                                         errstr_size)
                 : redeliver_all(ob, partition, &outbox, errstr, errstr_size);
    store_outbox_free(&outbox);
    return rc;
}

int outbox_redeliver_step(void *arg, char *errstr, size_t errstr_size) {
    outbox_redelivery_t *r = arg;
    if (r->committed == -2 && r->outbox->transactional)
        r->committed = kafka_io_committed_offset(r->outbox->io, r->outbox->cfg->input_topic,
                                                 r->partition);
    return outbox_redeliver(r->outbox, r->partition, r->committed, r->checkpoint, errstr,
                            errstr_size);
}
