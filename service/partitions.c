/* partitions: the owned table, the batch's partitions, and the atomic step
 * that moves each one's checkpoint. Tables are small (a few partitions per
 * instance), so lookups are linear. */
#include "partitions.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef struct owned_partition {
    int32_t partition;
    int64_t checkpoint; /* next offset to apply; -1: none yet */
} owned_partition_t;

typedef struct batch_partition {
    int32_t partition;
    int64_t next_offset;
    bool refused; /* its step met another owner's checkpoint */
} batch_partition_t;

struct partitions {
    const char *topic;
    owned_partition_t *owned;
    size_t owned_count, owned_cap;
    batch_partition_t *batch; /* the batch being applied */
    size_t batch_count, batch_cap;
    batch_partition_t *flying; /* the batch whose step was launched last */
    size_t flying_count;
    int32_t *refused; /* partitions the last landing refused */
    size_t refused_count;
    store_step_t *steps;        /* one per batch partition */
    cache_entry_t **step_users; /* dirty users grouped by partition */
    size_t step_users_cap;
    store_alert_t *step_records; /* queued records grouped by partition */
    size_t step_records_cap;
};

partitions_t *partitions_new(const char *topic, size_t max_batch_partitions) {
    partitions_t *ps = calloc(1, sizeof(*ps));
    if (!ps) return NULL;
    ps->topic = topic;
    ps->batch_cap = max_batch_partitions;
    ps->batch = calloc(max_batch_partitions, sizeof(*ps->batch));
    ps->flying = calloc(max_batch_partitions, sizeof(*ps->flying));
    ps->refused = calloc(max_batch_partitions, sizeof(*ps->refused));
    ps->steps = calloc(max_batch_partitions, sizeof(*ps->steps));
    if (!ps->batch || !ps->flying || !ps->refused || !ps->steps) {
        partitions_destroy(ps);
        return NULL;
    }
    return ps;
}

void partitions_destroy(partitions_t *ps) {
    if (!ps) return;
    free(ps->owned);
    free(ps->batch);
    free(ps->flying);
    free(ps->refused);
    free(ps->steps);
    free(ps->step_users);
    free(ps->step_records);
    free(ps);
}

/* ---- ownership ------------------------------------------------------------ */

static owned_partition_t *find_owned(const partitions_t *ps, int32_t partition) {
    for (size_t i = 0; i < ps->owned_count; i++)
        if (ps->owned[i].partition == partition) return &ps->owned[i];
    return NULL;
}

int partitions_own(partitions_t *ps, int32_t partition, int64_t checkpoint) {
    owned_partition_t *o = find_owned(ps, partition);
    if (!o) {
        if (ps->owned_count == ps->owned_cap) {
            size_t cap = ps->owned_cap ? ps->owned_cap * 2 : 16;
            owned_partition_t *grown = realloc(ps->owned, cap * sizeof(*grown));
            if (!grown) return -1;
            ps->owned = grown;
            ps->owned_cap = cap;
        }
        o = &ps->owned[ps->owned_count++];
        o->partition = partition;
    }
    o->checkpoint = checkpoint;
    return 0;
}

void partitions_disown(partitions_t *ps, int32_t partition) {
    owned_partition_t *o = find_owned(ps, partition);
    if (o) *o = ps->owned[--ps->owned_count];
}

bool partitions_owns(const partitions_t *ps, int32_t partition) {
    return find_owned(ps, partition) != NULL;
}

size_t partitions_owned_count(const partitions_t *ps) { return ps->owned_count; }

int32_t partitions_owned_at(const partitions_t *ps, size_t i) { return ps->owned[i].partition; }

bool partitions_already_applied(const partitions_t *ps, int32_t partition, int64_t offset) {
    const owned_partition_t *o = find_owned(ps, partition);
    return o && o->checkpoint >= 0 && offset < o->checkpoint;
}

typedef struct checkpoint_read {
    store_t *store;
    int32_t partition;
    int64_t checkpoint;
} checkpoint_read_t;

static int read_checkpoint(void *arg, char *errstr, size_t errstr_size) {
    checkpoint_read_t *r = arg;
    return store_get_checkpoint(r->store, r->partition, &r->checkpoint, errstr, errstr_size);
}

int partitions_assign(partitions_t *ps, store_t *store, const redis_retry_t *retry,
                      kafka_assigned_t *a) {
    checkpoint_read_t r = {.store = store, .partition = a->partition, .checkpoint = -1};
    if (redis_retry_run(retry, read_checkpoint, &r, "reading a checkpoint") != 0) return -1;
    /* Redis, not the group, says what is applied: a checkpoint behind the
     * committed offset means Redis lost its last steps (a replica promoted
     * before it had them, a restored snapshot), and the payments since are
     * read again. Only without a checkpoint does the group's offset count. */
    if (a->committed >= 0 && r.checkpoint >= 0 && a->committed > r.checkpoint)
        log_warn("state", "%s [%d]: committed offset %lld is past the Redis checkpoint "
                 "%lld: Redis state is older than the group's progress; reading again from the "
                 "checkpoint", ps->topic, (int)a->partition, (long long)a->committed,
                 (long long)r.checkpoint);
    a->start = r.checkpoint >= 0 ? r.checkpoint : a->committed;
    log_info("state", "%s [%d]: checkpoint %lld, committed %lld, resuming at %lld", ps->topic,
             (int)a->partition, (long long)r.checkpoint, (long long)a->committed,
             (long long)a->start);
    return partitions_own(ps, a->partition, r.checkpoint);
}

/* ---- the batch ---------------------------------------------------------- */

void partitions_batch_begin(partitions_t *ps) { ps->batch_count = 0; }

void partitions_batch_note(partitions_t *ps, int32_t partition, int64_t offset) {
    batch_partition_t *bp = NULL;
    for (size_t i = 0; i < ps->batch_count && !bp; i++)
        if (ps->batch[i].partition == partition) bp = &ps->batch[i];
    if (!bp) {
        if (ps->batch_count == ps->batch_cap) return; /* cannot happen: cap >= messages */
        bp = &ps->batch[ps->batch_count++];
        *bp = (batch_partition_t){.partition = partition, .next_offset = -1};
    }
    if (offset + 1 > bp->next_offset) bp->next_offset = offset + 1;
}

/* One step per partition of the batch, with its dirty users and queued
 * records next to each other in the step arrays. */
static void build_steps(partitions_t *ps, state_cache_t *cache, const output_record_t *records,
                        size_t record_count) {
    size_t dirty_count, users_used = 0, records_used = 0;
    cache_entry_t **dirty = state_cache_dirty(cache, &dirty_count);
    for (size_t i = 0; i < ps->batch_count; i++) {
        const batch_partition_t *bp = &ps->batch[i];
        const owned_partition_t *o = find_owned(ps, bp->partition);
        store_step_t *st = &ps->steps[i];
        *st = (store_step_t){.partition = bp->partition,
                             .expected_checkpoint = o ? o->checkpoint : -1,
                             .next_offset = bp->next_offset};
        st->users = &ps->step_users[users_used];
        for (size_t k = 0; k < dirty_count; k++)
            if (dirty[k]->partition == bp->partition) ps->step_users[users_used++] = dirty[k];
        st->user_count = (size_t)(&ps->step_users[users_used] - st->users);
        st->alerts = &ps->step_records[records_used];
        for (size_t k = 0; k < record_count; k++)
            if (records[k].partition == bp->partition)
                ps->step_records[records_used++] =
                    (store_alert_t){.id = records[k].id, .json = records[k].stored};
        st->alert_count = (size_t)(&ps->step_records[records_used] - st->alerts);
    }
}

static int grow_step_arrays(partitions_t *ps, size_t users, size_t records) {
    if (users + 1 > ps->step_users_cap) {
        cache_entry_t **grown = realloc(ps->step_users, (users + 1) * sizeof(*grown));
        if (!grown) return -1;
        ps->step_users = grown;
        ps->step_users_cap = users + 1;
    }
    if (records + 1 > ps->step_records_cap) {
        store_alert_t *grown = realloc(ps->step_records, (records + 1) * sizeof(*grown));
        if (!grown) return -1;
        ps->step_records = grown;
        ps->step_records_cap = records + 1;
    }
    return 0;
}

int partitions_launch_batch(partitions_t *ps, step_flight_t *flight, state_cache_t *cache,
                            outbox_t *outbox, int64_t ttl_ms) {
    char errstr[256];
    size_t dirty_count, record_count;
    state_cache_dirty(cache, &dirty_count);
    const output_record_t *records = outbox_queued(outbox, &record_count);
    if (grow_step_arrays(ps, dirty_count, record_count) != 0) {
        log_error("state", "out of memory preparing the Redis step");
        return -1;
    }
    build_steps(ps, cache, records, record_count);
    if (step_flight_launch(flight, ps->steps, ps->batch_count, ttl_ms, errstr,
                           sizeof(errstr)) != 0) {
        log_error("state", "cannot launch the Redis step: %s", errstr);
        return -1;
    }
    state_cache_launch_dirty(cache);
    outbox_seal_queued(outbox);
    batch_partition_t *table = ps->flying;
    ps->flying = ps->batch;
    ps->flying_count = ps->batch_count;
    ps->batch = table;
    ps->batch_count = 0;
    return 0;
}

/* Forgets what this instance holds of a partition beyond checkpoint (its
 * cached users, queued and sealed records, its part of the batch being
 * applied) and reads again from there. */
static void start_over(partitions_t *ps, int32_t partition, int64_t checkpoint,
                       state_cache_t *cache, outbox_t *outbox, kafka_io_t *io) {
    state_cache_drop_partition(cache, partition);
    outbox_drop_partition(outbox, partition);
    for (size_t i = 0; i < ps->batch_count; i++)
        if (ps->batch[i].partition == partition) {
            ps->batch[i] = ps->batch[--ps->batch_count];
            break;
        }
    size_t k = 0;
    while (k < ps->refused_count && ps->refused[k] != partition) k++;
    if (k == ps->refused_count && ps->refused_count < ps->batch_cap)
        ps->refused[ps->refused_count++] = partition;
    partitions_own(ps, partition, checkpoint);
    if (checkpoint >= 0) kafka_io_seek(io, ps->topic, partition, checkpoint);
}

/* Another owner moved the partition on (we lost it, or a zombie wrote), or
 * Redis lost its last steps (a failover): forget our view of it, with what
 * the batch applied since, and read again from its checkpoint. */
static void refuse(partitions_t *ps, batch_partition_t *bp, int64_t actual, state_cache_t *cache,
                   outbox_t *outbox, kafka_io_t *io) {
    bp->refused = true;
    log_warn("state", "%s [%d]: checkpoint in Redis is %lld, not what this instance saw: "
             "another owner wrote it, or Redis lost its last steps; discarding this batch's "
             "work for the partition and reading again from there", ps->topic,
             (int)bp->partition, (long long)actual);
    start_over(ps, bp->partition, actual, cache, outbox, io);
}

void partitions_start_over(partitions_t *ps, int32_t partition, state_cache_t *cache,
                           outbox_t *outbox, kafka_io_t *io) {
    const owned_partition_t *o = find_owned(ps, partition);
    start_over(ps, partition, o ? o->checkpoint : -1, cache, outbox, io);
}

int64_t partitions_checkpoint(const partitions_t *ps, int32_t partition) {
    const owned_partition_t *o = find_owned(ps, partition);
    return o ? o->checkpoint : -1;
}

int partitions_land_batch(partitions_t *ps, step_flight_t *flight, state_cache_t *cache,
                          outbox_t *outbox, const redis_retry_t *retry, kafka_io_t *io) {
    ps->refused_count = 0;
    if (step_flight_land(flight, retry) != 0) return -1;
    state_cache_landed(cache);
    size_t count;
    const store_step_t *outcome = step_flight_outcome(flight, &count);
    for (size_t i = 0; i < count && i < ps->flying_count; i++) {
        const store_step_t *st = &outcome[i];
        /* An earlier attempt that landed before its reply was lost shows
         * up as a "conflict" already at our own next offset: done. */
        if (st->conflict && st->actual_checkpoint != st->next_offset)
            refuse(ps, &ps->flying[i], st->actual_checkpoint, cache, outbox, io);
        else
            partitions_own(ps, st->partition, st->next_offset);
    }
    return 0;
}

const int32_t *partitions_refused(const partitions_t *ps, size_t *count) {
    *count = ps->refused_count;
    return ps->refused;
}

void partitions_store_offsets(partitions_t *ps, kafka_io_t *io) {
    int32_t parts[64];
    int64_t next[64];
    size_t n = 0;
    for (size_t i = 0; i < ps->flying_count; i++) {
        if (ps->flying[i].refused) continue;
        parts[n] = ps->flying[i].partition;
        next[n++] = ps->flying[i].next_offset;
        if (n == 64) {
            kafka_io_store_offsets(io, ps->topic, parts, next, n);
            n = 0;
        }
    }
    kafka_io_store_offsets(io, ps->topic, parts, next, n);
    ps->flying_count = 0;
}

bool partitions_batch_landed(const partitions_t *ps, size_t i, int32_t *partition,
                             int64_t *next_offset) {
    size_t seen = 0;
    for (size_t k = 0; k < ps->batch_count; k++) {
        if (ps->batch[k].refused || seen++ != i) continue;
        *partition = ps->batch[k].partition;
        *next_offset = ps->batch[k].next_offset;
        return true;
    }
    return false;
}
