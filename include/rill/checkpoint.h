/* rill — in-band checkpoint barriers.
 *
 * A barrier is a marker with an id that travels through the pipeline with
 * the items, as end of stream does: on every edge it arrives after every item
 * emitted before it and before every item emitted after it. A stage with
 * several inputs acts on barrier `id` once it has arrived on all of them
 * (aligned): meanwhile nothing is taken from an input whose barrier has
 * arrived, so the stage's state at the barrier covers exactly the items
 * before it on every input. At that point the stage's optional
 * rill_stage_ops.barrier callback runs (it may emit, e.g. a delta since the
 * last barrier), and the barrier is then passed on to every output port,
 * after what the callback emitted. An input that has reached end of stream
 * counts as aligned for every later barrier.
 *
 * Sources feeding one stage should emit the same ids in the same order: a
 * stage aligns each input's next barrier with the others' and passes on the
 * largest of their ids. Mechanism, cost and limits: docs/checkpoints.md.
 */
#ifndef RILL_CHECKPOINT_H
#define RILL_CHECKPOINT_H

#include <stdint.h>

#include "rill/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Emit barrier `id` to every output port of st, after every item st emitted
 * before (also items still in a partial batch to another thread: that batch
 * is handed over at once, barrier last). Ids a stage emits must increase.
 *
 * Call only from st's callbacks (a source's produce, a send, a barrier
 * callback), on st's thread. Stages after st on the same thread run the
 * barrier (and their callbacks) inside this call, up to the inline depth
 * limit past which it is held in order with the items (docs/threads.md). A
 * queue to another thread may make the call wait for a free batch, as an
 * emit waits for room. Returns 0, RILL_EINVAL (st NULL, or id not above the
 * last id st emitted), the pipeline's error once it has stopped
 * (RILL_EABORTED after an abort), an error of a downstream stage's barrier
 * callback or send, or RILL_ENOMEM. */
int rill_emit_barrier(rill_stage *st, uint64_t id);

/* Barrier counters of one stage (rill_stage_barrier_stats). */
struct rill_stage_barrier_stats {
    uint64_t barriers;  /* barriers aligned at this stage (callback run, passed on) */
    uint64_t align_ns;  /* time from the first input's barrier to the alignment,
                           summed: inputs held back meanwhile */
};

/* Read st's barrier counters into *out. Exact after close; while running, from
 * any thread, each counter is a recent value. Returns 0 or RILL_EINVAL. */
int rill_stage_barrier_stats(const rill_stage *st, struct rill_stage_barrier_stats *out);

#ifdef __cplusplus
}
#endif
#endif
