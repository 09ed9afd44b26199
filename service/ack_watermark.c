/* ack_watermark: a lane per partition, each a FIFO of sealed marks in
 * offset order plus the mark the current batch is filling. A batch that
 * produced nothing for a partition needs no mark of its own: it moves the
 * watermark at once, or stretches the newest mark still waiting. */
#include "ack_watermark.h"

#include <stdbool.h>
#include <stdlib.h>

struct ack_mark {
    ack_mark_t *next;
    size_t outstanding;
    int64_t next_offset; /* -1 until sealed */
    bool failed;
    bool orphan; /* its partition was forgotten: the last report frees it */
};

typedef struct lane {
    int32_t partition;
    ack_mark_t *open;        /* the current batch's, not yet sealed */
    ack_mark_t *head, *tail; /* sealed, oldest first */
    int64_t watermark;       /* -1: none yet */
    bool moved;              /* since the last ack_watermark_advance() report */
} lane_t;

struct ack_watermark {
    lane_t *lanes;
    size_t count, cap;
};

ack_watermark_t *ack_watermark_new(void) { return calloc(1, sizeof(ack_watermark_t)); }

static void free_or_orphan(ack_mark_t *m) {
    if (m->outstanding == 0) free(m);
    else m->orphan = true;
}

static void release_lane(lane_t *l) {
    if (l->open) free_or_orphan(l->open);
    for (ack_mark_t *m = l->head, *next; m; m = next) {
        next = m->next;
        free_or_orphan(m);
    }
}

void ack_watermark_destroy(ack_watermark_t *w) {
    if (!w) return;
    for (size_t i = 0; i < w->count; i++) release_lane(&w->lanes[i]);
    free(w->lanes);
    free(w);
}

static lane_t *find_lane(const ack_watermark_t *w, int32_t partition) {
    for (size_t i = 0; i < w->count; i++)
        if (w->lanes[i].partition == partition) return &w->lanes[i];
    return NULL;
}

static lane_t *lane_of(ack_watermark_t *w, int32_t partition) {
    lane_t *l = find_lane(w, partition);
    if (l) return l;
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        lane_t *grown = realloc(w->lanes, cap * sizeof(*grown));
        if (!grown) return NULL;
        w->lanes = grown;
        w->cap = cap;
    }
    l = &w->lanes[w->count++];
    *l = (lane_t){.partition = partition, .watermark = -1};
    return l;
}

ack_mark_t *ack_watermark_expect(ack_watermark_t *w, int32_t partition) {
    lane_t *l = lane_of(w, partition);
    if (!l) return NULL;
    if (!l->open) {
        l->open = calloc(1, sizeof(*l->open));
        if (!l->open) return NULL;
        l->open->next_offset = -1;
    }
    l->open->outstanding++;
    return l->open;
}

void ack_mark_settle(ack_mark_t *m, int failed) {
    if (failed) m->failed = true;
    m->outstanding--;
    if (m->orphan && m->outstanding == 0) free(m);
}

int ack_watermark_seal(ack_watermark_t *w, int32_t partition, int64_t next_offset) {
    lane_t *l = lane_of(w, partition);
    if (!l) return -1;
    if (!l->open) {
        if (l->tail) {
            l->tail->next_offset = next_offset;
        } else if (next_offset > l->watermark) {
            l->watermark = next_offset;
            l->moved = true;
        }
        return 0;
    }
    ack_mark_t *m = l->open;
    l->open = NULL;
    m->next_offset = next_offset;
    if (l->tail) l->tail->next = m;
    else l->head = m;
    l->tail = m;
    return 0;
}

static void pass_settled(lane_t *l) {
    while (l->head && l->head->outstanding == 0 && !l->head->failed) {
        ack_mark_t *m = l->head;
        if (m->next_offset > l->watermark) {
            l->watermark = m->next_offset;
            l->moved = true;
        }
        l->head = m->next;
        if (!l->head) l->tail = NULL;
        free(m);
    }
}

size_t ack_watermark_advance(ack_watermark_t *w, int32_t *partitions, int64_t *next_offsets,
                             size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < w->count; i++) pass_settled(&w->lanes[i]);
    for (size_t i = 0; i < w->count && n < cap; i++) {
        lane_t *l = &w->lanes[i];
        if (!l->moved) continue;
        l->moved = false;
        partitions[n] = l->partition;
        next_offsets[n++] = l->watermark;
    }
    return n;
}

size_t ack_watermark_outstanding(const ack_watermark_t *w, int32_t partition) {
    const lane_t *l = find_lane(w, partition);
    size_t n = 0;
    if (!l) return 0;
    if (l->open) n += l->open->outstanding;
    for (const ack_mark_t *m = l->head; m; m = m->next) n += m->outstanding;
    return n;
}

void ack_watermark_forget(ack_watermark_t *w, int32_t partition) {
    lane_t *l = find_lane(w, partition);
    if (!l) return;
    release_lane(l);
    *l = w->lanes[--w->count];
}
