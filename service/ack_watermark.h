/* ack_watermark: how far each input partition is safe to commit when the
 * only guarantee is the acknowledgement of what a batch produced (the
 * memory backend, which has no checkpoint and no Redis outbox).
 *
 * A batch opens, per input partition, a mark; every record produced for a
 * payment of that partition (an output record or a dead letter) counts on
 * its mark until its delivery report. When the batch is done, each mark is
 * sealed with the next offset the batch reached. A partition's watermark is
 * the next offset of its newest sealed mark with no record outstanding in
 * it or in any older mark: the offsets up to there may be committed, and
 * nothing past a record not yet acknowledged ever is. So the consumer
 * never waits for acknowledgements, and a crash still loses nothing: what
 * was not acknowledged is read again (at least once).
 *
 * A failed delivery poisons its mark: the partition's watermark never
 * passes it (the service stops on the failure anyway).
 *
 * The watermark owns the marks. A mark lives until it is sealed, done and
 * passed, or, for a forgotten partition, until its last report. Consumer
 * thread only (delivery reports are served there too). */
#ifndef FRAUD_ACK_WATERMARK_H
#define FRAUD_ACK_WATERMARK_H

#include <stddef.h>
#include <stdint.h>

typedef struct ack_watermark ack_watermark_t;
typedef struct ack_mark ack_mark_t;

/* NULL when out of memory. */
ack_watermark_t *ack_watermark_new(void);
/* Frees every mark; reports still outstanding must not arrive after. */
void ack_watermark_destroy(ack_watermark_t *w);

/* One more record of the current batch for partition is about to be
 * produced: returns the mark its delivery report must settle (creating the
 * partition's open mark on first use), or NULL when out of memory. */
ack_mark_t *ack_watermark_expect(ack_watermark_t *w, int32_t partition);

/* The delivery report of a record counted on m. */
void ack_mark_settle(ack_mark_t *m, int failed);

/* The batch reached next_offset on partition: seals its open mark (or
 * adds an empty one). -1 when out of memory. */
int ack_watermark_seal(ack_watermark_t *w, int32_t partition, int64_t next_offset);

/* Passes every partition's fully settled sealed marks. Fills at most cap
 * partitions whose watermark moved, with the watermark as next offset, and
 * returns how many; call again while it returns cap. */
size_t ack_watermark_advance(ack_watermark_t *w, int32_t *partitions, int64_t *next_offsets,
                             size_t cap);

/* Records of partition still outstanding. */
size_t ack_watermark_outstanding(const ack_watermark_t *w, int32_t partition);

/* Forgets a partition (revoked): marks with reports still to come are
 * freed by their last report. */
void ack_watermark_forget(ack_watermark_t *w, int32_t partition);

#endif
