/* Which stage a thread's time goes to: per-stage busy time for the stages
 * that share one thread (inline stages on their producer's thread).
 *
 * Timing every inline send would cost two clock reads (about 30 ns each
 * here) per stage per item, more than the send itself. Instead each domain
 * counts its inline sends and now and then opens a short window: for the
 * next RILL__PROF_LEN transitions into and out of inline sends it reads the
 * clock at each one and charges the time since the last to the stage that
 * ran in between (`cur`, kept only inside windows), less any time the
 * thread waited meanwhile (its waiting counter, which only this thread
 * writes). Windows open every 8 inline sends at first, every 1024-1536
 * after a hundred or so (busy.c). The shares of a thread's stages in these
 * windows apportion the thread's measured busy time (busy.c). It is wall
 * time: a
 * thread preempted inside a stage charges that stage. Measured cost:
 * docs/stats.md. Only the domain's thread touches these fields, except
 * prof_ns, which snapshots read. */
#ifndef RILL_PROF_H
#define RILL_PROF_H

#include "pipeline/pipeline_int.h"

#define RILL__PROF_LEN 8u

/* busy.c: a transition that opens a window or is inside one; it sets the
 * count to the next transition to look at (1 inside a window). */
void rill__prof_window(rill__worker *w, rill_stage *to);

/* A transition into an inline send: `to` runs from now on this thread.
 * Outside windows, one decrement and one branch; `cur` is kept only inside
 * windows (the count is 1 there, so every transition looks). */
static inline void rill__prof_enter(rill__worker *w, rill_stage *to) {
    if (RILL__UNLIKELY(--w->prof_tick == 0))
        rill__prof_window(w, to);
}

/* The transition out of it, back to `to`: only a window looks at it. */
static inline void rill__prof_leave(rill__worker *w, rill_stage *to) {
    if (RILL__UNLIKELY(w->prof_left))
        rill__prof_window(w, to);
}

#endif
