/* Shared fan-out (share.c): a stage whose every port crosses to another
 * thread appends each item once, to one batch that all its queues receive,
 * instead of once per queue. Private to engine/pipeline. */
#ifndef RILL_SHARE_H
#define RILL_SHARE_H

#include <stdbool.h>
#include <stdint.h>

#include "queue.h"

typedef struct rill__share rill__share;
struct rill_pipeline;

/* plan.c, after every queue is made: group the ports that can share. 0 or
 * RILL_ENOMEM. */
int rill__share_plan(struct rill_pipeline *p);

/* Producer: append item for every member (port < 0) or for one (rill_emit_to).
 * Blocks while a member it goes to is full, or while every batch is in
 * flight. 0, stop_code, or RILL_ENOMEM. */
int rill__share_push(rill__share *sh, int port, const rill_item *item, int stop_code);

/* Producer: rill__share_push for every member, items[0..n) a chunk at a
 * time; *queued gets how many went in (all but on an error). */
int rill__share_push_items(rill__share *sh, const rill_item *items, size_t n, int stop_code,
                           size_t *queued);

/* Producer: hand the partial batch to every member it is for (queue.c's
 * publish of a member comes here). */
void rill__share_publish(rill__share *sh, bool wake);

/* Producer: rill__queue_ready for member e. */
int rill__share_ready(rill__queue *e);

/* Producer: end of stream (eos) or barrier id for member e alone, after the
 * items appended so far. 0 or stop_code (or RILL_ENOMEM). */
int rill__share_mark(rill__queue *e, bool eos, uint64_t id, int stop_code);

/* Consumer of member e, done with b: the last of b's consumers recycles it. */
void rill__share_release(rill__queue *e, rill__batch *b);

/* Freeing (queue_life.c): a batch still in a member's ring, and a member
 * gone (the last one frees the share and what it holds). */
void rill__share_fini_batch(rill__batch *b);
void rill__share_member_gone(rill__share *sh);

#endif
