/* outbox: queued, produced, acknowledged, removed (redelivery is in
 * outbox_redeliver.c).
 *
 * A record produced here carries an inflight_t as its opaque. Its delivery
 * report hands it back: acknowledged ones wait in `acked` until one
 * pipelined HDEL removes them all from the Redis outbox; a failed one stays
 * in the Redis outbox, and the outbox is marked failed, so the service
 * stops without committing and the next owner produces it again. With the
 * memory backend the report settles the record's watermark mark instead.
 * With exactly_once a record goes into the open transaction with no opaque
 * and waits in `committing` for the transaction's outcome. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "clock.h"
#include "log.h"
#include "outbox_format.h"
#include "outbox_private.h"
#include "record_headers.h"
#include "rules.h"

/* The last part of a running total's id, where an alert's has its rule. */
#define TOTALS_ID_SUFFIX "totals"
#define LATE_ID_SUFFIX "late"
#define DEAD_LETTER_ID_SUFFIX "dlq"

/* An inflight_t's kind when it is a dead letter's ticket. */
#define DEAD_LETTER_TICKET OUTPUT_KIND_COUNT

outbox_t *outbox_new(const config_t *cfg, kafka_io_t *io, store_t *store, ack_watermark_t *acks,
                     dead_letter_t *dead_letters, metrics_t *metrics) {
    outbox_t *ob = calloc(1, sizeof(*ob));
    if (!ob) return NULL;
    ob->cfg = cfg;
    ob->io = io;
    ob->store = store;
    ob->acks = acks;
    ob->dead_letters = dead_letters;
    ob->metrics = metrics;
    ob->transactional = config_exactly_once(cfg);
    if (cfg->output_cloudevents) {
        const char *source = cfg->output_cloudevents_source;
        size_t size = strlen(source) + strlen(cfg->group_id) + sizeof("/fraud-detector/");
        if (!(ob->ce_source = malloc(size))) {
            free(ob);
            return NULL;
        }
        if (source[0]) snprintf(ob->ce_source, size, "%s", source);
        else snprintf(ob->ce_source, size, "/fraud-detector/%s", cfg->group_id);
    }
    return ob;
}

static void free_record(output_record_t *r) {
    free(r->user);
    free(r->stored);
    free(r->trace);
}

static void free_records(record_list_t *list) {
    for (size_t i = 0; i < list->count; i++) free_record(&list->items[i]);
    list->count = 0;
}

static void free_acked(outbox_t *ob) {
    for (size_t i = 0; i < ob->acked_count; i++) free(ob->acked[i]);
    ob->acked_count = 0;
}

void outbox_destroy(outbox_t *ob) {
    if (!ob) return;
    free_records(&ob->queued);
    free_records(&ob->sealed);
    free_records(&ob->committing);
    free_acked(ob);
    free(ob->queued.items);
    free(ob->sealed.items);
    free(ob->committing.items);
    free(ob->acked);
    free(ob->ids);
    free(ob->steps);
    free(ob->ce_source);
    free(ob);
}

static const char *topic_of(const outbox_t *ob, output_kind_t kind) {
    if (kind == OUTPUT_TOTAL || kind == OUTPUT_TOTAL_ERASED) return ob->cfg->totals_topic;
    if (kind == OUTPUT_AVERAGE) return ob->cfg->averages_topic;
    if (kind == OUTPUT_LATE) return ob->cfg->late_topic;
    if (kind == OUTPUT_DEAD_LETTER) return ob->cfg->dlq_topic;
    return ob->cfg->alert_topic;
}

int outbox_queue(outbox_t *ob, output_kind_t kind, int rule, const char *rule_id,
                 const output_origin_t *origin, const char *user, char *json) {
    const trace_context_t *trace =
        origin->trace && origin->trace->traceparent[0] ? origin->trace : NULL;
    if (!json) goto oom;
    record_list_t *queued = &ob->queued;
    if (queued->count == queued->cap) {
        size_t cap = queued->cap ? queued->cap * 2 : 64;
        output_record_t *grown = realloc(queued->items, cap * sizeof(*grown));
        if (!grown) goto oom;
        queued->items = grown;
        queued->cap = cap;
    }
    output_record_t *r = &queued->items[queued->count];
    *r = (output_record_t){.kind = kind,
                           .rule = kind == OUTPUT_ALERT || kind == OUTPUT_DEAD_LETTER ? rule : -1,
                           .partition = origin->partition, .offset = origin->offset,
                           .event_time_ms = origin->event_time_ms,
                           .detected_at_ms = origin->detected_at_ms};
    const char *last = kind == OUTPUT_ALERT || kind == OUTPUT_AVERAGE ? rule_id
                       : kind == OUTPUT_LATE                          ? LATE_ID_SUFFIX
                       : kind == OUTPUT_DEAD_LETTER                   ? DEAD_LETTER_ID_SUFFIX
                                                : TOTALS_ID_SUFFIX; /* totals, or their tombstone */
    alert_id_format(origin->topic, origin->partition, origin->offset, last, r->id,
                    sizeof(r->id));
    char head[OUTBOX_HEAD_MAX];
    int head_len = outbox_format_head(head, sizeof(head), kind, r->rule, origin->offset, trace);
    if (head_len < 0) goto oom;
    size_t json_len = strlen(json);
    r->user = strdup(user);
    r->stored = malloc((size_t)head_len + json_len + 1);
    if (trace && (r->trace = malloc(sizeof(*r->trace)))) *r->trace = *trace;
    if (!r->user || !r->stored || (trace && !r->trace)) {
        free_record(r);
        goto oom;
    }
    memcpy(r->stored, head, (size_t)head_len);
    memcpy(r->stored + head_len, json, json_len + 1);
    r->json = r->stored + head_len;
    free(json);
    queued->count++;
    return 0;
oom:
    free(json);
    log_error("alert", "out of memory queueing an output record");
    return -1;
}

int outbox_queue_dead_letter(outbox_t *ob, const kafka_msg_t *m, dead_letter_reason_t reason,
                             const char *reason_text) {
    trace_context_t trace;
    output_origin_t origin = {.topic = m->topic, .partition = m->partition, .offset = m->offset,
                              .event_time_ms = -1, .detected_at_ms = -1,
                              .trace = trace_context_of_msg(m, &trace) ? &trace : NULL};
    if (outbox_queue(ob, OUTPUT_DEAD_LETTER, reason, NULL, &origin, "",
                     dead_letter_record_json(m, reason_text)) != 0)
        return -1;
    dead_letter_count(ob->dead_letters, m, reason, reason_text);
    return 0;
}

const output_record_t *outbox_queued(const outbox_t *ob, size_t *count) {
    *count = ob->queued.count;
    return ob->queued.items;
}

static void drop_records_of(record_list_t *list, int32_t partition) {
    size_t kept = 0;
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i].partition == partition) free_record(&list->items[i]);
        else list->items[kept++] = list->items[i];
    }
    list->count = kept;
}

void outbox_drop_partition(outbox_t *ob, int32_t partition) {
    drop_records_of(&ob->queued, partition);
    drop_records_of(&ob->sealed, partition);
}

void outbox_seal_queued(outbox_t *ob) {
    free_records(&ob->sealed); /* produced already, or refused */
    record_list_t emptied = ob->sealed; /* swapped: both keep their memory */
    ob->sealed = ob->queued;
    ob->queued = emptied;
}

/* What a record is to a CloudEvents reader: fraud.alert.<rule>,
 * fraud.average, fraud.total or fraud.late. */
static void cloudevent_type(output_kind_t kind, int rule, char *buf, size_t size) {
    if (kind == OUTPUT_ALERT && rule >= 0)
        snprintf(buf, size, "fraud.alert.%s", rule_name((rule_id_t)rule));
    else if (kind == OUTPUT_ALERT)
        snprintf(buf, size, "fraud.alert");
    else snprintf(buf, size, "fraud.%s", kind == OUTPUT_AVERAGE ? "average"
                                         : kind == OUTPUT_LATE  ? "late"
                                                                : "total");
}

/* Produces one record with its headers; a topic unset since the record was
 * decided drops it (it leaves the Redis outbox at the next redelivery). */
static int produce(outbox_t *ob, const output_record_t *r, inflight_t *inflight) {
    char errstr[512], type[CLOUDEVENTS_TYPE_MAX];
    const char *topic = topic_of(ob, r->kind);
    if (r->kind == OUTPUT_DEAD_LETTER)
        return dead_letter_send_record(ob->dead_letters, r->json, ob->cfg->input_topic,
                                       r->partition, r->offset, r->rule, r->trace, inflight);
    if (!topic[0]) {
        log_warn("alert", "%s: no topic configured for it any more; dropped", r->id);
        if (inflight && inflight->mark) ack_mark_settle(inflight->mark, 0); /* done with it */
        free(inflight);
        return 0;
    }
    /* A tombstone deletes a key of a compacted topic: it has no value, and
     * so is no CloudEvent; it keeps the payment's trace context. */
    int tombstone = r->kind == OUTPUT_TOTAL_ERASED;
    record_headers_t headers;
    cloudevent_t ce = {.source = ob->ce_source, .id = r->id, .type = type,
                       .time_ms = r->detected_at_ms};
    if (ob->ce_source && !tombstone) cloudevent_type(r->kind, r->rule, type, sizeof(type));
    const char *const *pairs = record_headers_build(
        &headers, ob->ce_source && !tombstone ? &ce : NULL, r->trace);
    if (kafka_io_produce(ob->io, topic, r->user, strlen(r->user), tombstone ? NULL : r->json,
                         tombstone ? 0 : strlen(r->json), pairs, inflight, errstr,
                         sizeof(errstr)) != 0) {
        log_error("alert", "%s", errstr);
        return -1;
    }
    return 0;
}

/* An opaque for a record of an input partition; with the memory backend it
 * counts on the partition's mark. NULL when out of memory. */
static inflight_t *inflight_new(outbox_t *ob, int kind, int rule, int32_t partition,
                                int64_t event_time_ms, const char *id) {
    size_t id_len = strlen(id) + 1;
    inflight_t *a = malloc(sizeof(*a) + id_len);
    if (!a) return NULL;
    *a = (inflight_t){.kind = kind, .rule = rule, .partition = partition,
                      .event_time_ms = event_time_ms};
    memcpy(a->id, id, id_len);
    if (ob->acks && !(a->mark = ack_watermark_expect(ob->acks, partition))) {
        free(a);
        return NULL;
    }
    return a;
}

void outbox_ticket_cancel(void *ticket) {
    inflight_t *a = ticket;
    if (a->mark) ack_mark_settle(a->mark, 1);
    free(a);
}

void *outbox_dead_letter_ticket(outbox_t *ob, int32_t partition) {
    inflight_t *a = inflight_new(ob, DEAD_LETTER_TICKET, -1, partition, -1, "dead letter");
    if (!a) log_error("dlq", "out of memory tracking a dead letter");
    return a;
}

static int produce_records(outbox_t *ob, record_list_t *list) {
    int rc = 0;
    for (size_t i = 0; i < list->count && rc == 0; i++) {
        const output_record_t *r = &list->items[i];
        inflight_t *a = inflight_new(ob, r->kind, r->rule, r->partition, r->event_time_ms, r->id);
        if (!a) {
            log_error("alert", "out of memory producing an output record");
            rc = -1;
            break;
        }
        if (r->kind == OUTPUT_ALERT) metrics_add(&ob->metrics->alerts[r->rule], 1);
        if (produce(ob, r, a) != 0) {
            outbox_ticket_cancel(a);
            rc = -1;
        }
    }
    free_records(list);
    return rc;
}

int outbox_produce_queued(outbox_t *ob) {
    return produce_records(ob, &ob->queued);
}

/* exactly_once: the records go out in the open transaction, with no
 * opaque (an abort purges them, and their reports say nothing the commit
 * does not); they are kept until the transaction's outcome. */
static int produce_in_transaction(outbox_t *ob, record_list_t *list) {
    record_list_t *committing = &ob->committing;
    if (committing->count + list->count > committing->cap) {
        size_t cap = committing->count + list->count;
        output_record_t *grown = realloc(committing->items, cap * sizeof(*grown));
        if (!grown) {
            log_error("alert", "out of memory producing output records");
            return -1;
        }
        committing->items = grown;
        committing->cap = cap;
    }
    int rc = 0;
    size_t i = 0;
    for (; i < list->count && rc == 0; i++) {
        const output_record_t *r = &list->items[i];
        if (r->kind == OUTPUT_ALERT) metrics_add(&ob->metrics->alerts[r->rule], 1);
        rc = produce(ob, r, NULL);
        committing->items[committing->count++] = *r; /* moved: the list forgets it */
    }
    /* What was not produced stays the list's. */
    memmove(list->items, list->items + i, (list->count - i) * sizeof(*list->items));
    list->count -= i;
    return rc;
}

int outbox_produce_sealed(outbox_t *ob) {
    return ob->transactional ? produce_in_transaction(ob, &ob->sealed)
                             : produce_records(ob, &ob->sealed);
}

/* What a delivery report counts, for a record whose delivery is known. */
static void count_delivered(outbox_t *ob, int kind, int rule, int64_t event_time_ms) {
    if (kind == OUTPUT_TOTAL || kind == OUTPUT_TOTAL_ERASED) {
        metrics_add(&ob->metrics->totals_produced, 1);
    } else if (kind == OUTPUT_AVERAGE) {
        metrics_add(&ob->metrics->averages_produced, 1);
    } else if (kind == OUTPUT_LATE) {
        metrics_add(&ob->metrics->late_produced, 1);
    } else if (kind == OUTPUT_ALERT) {
        metrics_add(&ob->metrics->alerts_acknowledged[rule], 1);
        metrics_observe(&ob->metrics->event_to_alert_seconds,
                        (double)(clock_now_ms() - event_time_ms) / 1000.0);
    }
}

/* Keeps a delivered record's id for the bulk removal from Redis. */
static void remember_acked(outbox_t *ob, inflight_t *a) {
    if (ob->acked_count == ob->acked_cap) {
        size_t cap = ob->acked_cap ? ob->acked_cap * 2 : 256;
        inflight_t **grown = realloc(ob->acked, cap * sizeof(*grown));
        if (!grown) { /* it stays in the outbox: cleared or produced again on assignment */
            free(a);
            return;
        }
        ob->acked = grown;
        ob->acked_cap = cap;
    }
    ob->acked[ob->acked_count++] = a;
}

size_t outbox_in_transaction(const outbox_t *ob) { return ob->committing.count; }

void outbox_transaction_done(outbox_t *ob, int committed) {
    for (size_t i = 0; committed && i < ob->committing.count; i++) {
        const output_record_t *r = &ob->committing.items[i];
        count_delivered(ob, r->kind, r->rule, r->event_time_ms);
        inflight_t *a = inflight_new(ob, r->kind, r->rule, r->partition, r->event_time_ms, r->id);
        if (a) remember_acked(ob, a);
    }
    free_records(&ob->committing); /* aborted: the Redis outbox keeps them */
}

void outbox_on_delivery(outbox_t *ob, void *opaque, int failed) {
    inflight_t *a = opaque;
    if (a->mark) ack_mark_settle(a->mark, failed);
    if (failed) {
        log_error(a->kind == DEAD_LETTER_TICKET ? "dlq" : "alert",
                  "%s (from %s [%d]) could not be delivered; stopping, %s", a->id,
                  ob->cfg->input_topic, (int)a->partition,
                  ob->store ? "the outbox keeps it" : "its payment's offset stays uncommitted");
        free(a);
        ob->failed = 1;
        return;
    }
    if (a->kind == DEAD_LETTER_TICKET) {
        free(a);
        return;
    }
    count_delivered(ob, a->kind, a->rule, a->event_time_ms);
    if (!ob->store) { /* nothing to remove from Redis */
        free(a);
        return;
    }
    remember_acked(ob, a); /* or, out of memory, a duplicate later, never a loss */
}

int outbox_failed(const outbox_t *ob) { return ob->failed; }

/* One removal step per partition, its acknowledged ids side by side. */
static int remove_acked_step(void *arg, char *errstr, size_t errstr_size) {
    outbox_t *ob = arg;
    size_t steps = 0, used = 0;
    for (size_t i = 0; i < ob->acked_count; i++) {
        int32_t part = ob->acked[i]->partition;
        size_t k = 0;
        while (k < steps && ob->steps[k].partition != part) k++;
        if (k == steps) ob->steps[steps++] = (store_step_t){.partition = part};
    }
    for (size_t k = 0; k < steps; k++) {
        ob->steps[k].alerts = &ob->ids[used];
        for (size_t i = 0; i < ob->acked_count; i++)
            if (ob->acked[i]->partition == ob->steps[k].partition)
                ob->ids[used++] = (store_alert_t){.id = ob->acked[i]->id, .json = NULL};
        ob->steps[k].alert_count = (size_t)(&ob->ids[used] - ob->steps[k].alerts);
    }
    return store_outbox_remove(ob->store, ob->steps, steps, errstr, errstr_size);
}

int outbox_complete_deliveries(outbox_t *ob, const redis_retry_t *retry) {
    kafka_io_serve_deliveries(ob->io);
    if (ob->acked_count == 0) return 0;
    int rc = 0;
    if (ob->store) {
        store_alert_t *ids = realloc(ob->ids, ob->acked_count * sizeof(*ids));
        if (ids) ob->ids = ids;
        store_step_t *steps = ids ? realloc(ob->steps, ob->acked_count * sizeof(*steps)) : NULL;
        if (steps) ob->steps = steps;
        rc = ids && steps ? redis_retry_run(retry, remove_acked_step, ob,
                                            "clearing delivered alerts")
                          : -1;
    }
    free_acked(ob);
    return rc;
}

int outbox_drain(outbox_t *ob, const redis_retry_t *retry) {
    /* A failure is the delivery report's to tell (outbox_failed). */
    kafka_io_await_deliveries(ob->io, kafka_io_delivery_failures(ob->io));
    return outbox_complete_deliveries(ob, retry);
}

int outbox_produce_stored(outbox_t *ob, const output_record_t *r) {
    return produce(ob, r, NULL);
}
