/* Which stage a thread's time goes to: per-stage busy time for the stages
 * that share one thread (inline stages on their producer's thread).
 *
 * Timing every inline send would cost two clock reads (about 30 ns each
 * here) per stage per item, more than the send itself. Instead each domain
 * counts transitions into and out of inline sends and now and then opens a
 * short window: for the next RILL__PROF_LEN transitions it reads the clock
 * at each one and charges the time since the last to the stage that ran in
 * between (`cur`, kept only inside windows), less
 * any time the thread waited meanwhile (its waiting counter, which only
 * this thread writes). Windows open every 512-1535 transitions, the gap
 * varied so that they do not keep landing on the same phase of a periodic
 * pattern (a broadcast to three filters). The shares of a thread's stages
 * in these windows apportion the thread's measured busy time (snapshot.c).
 * Measured cost: docs/stats.md. Only the domain's thread touches these
 * fields, except prof_ns, which snapshots read. */
#ifndef RILL_PROF_H
#define RILL_PROF_H

#include "pipeline/pipeline_int.h"

#define RILL__PROF_LEN 8u

/* busy.c: a transition that opens a window or is inside one; it sets the
 * count to the next transition to look at (1 inside a window). */
void rill__prof_window(rill__worker *w, rill_stage *to);

/* A transition: `to` runs from now on this thread. Outside windows it is
 * one decrement and one branch; `cur` is kept only inside windows. */
static inline void rill__prof_switch(rill__worker *w, rill_stage *to) {
    if (RILL__UNLIKELY(--w->prof_tick == 0)) /* one count for gap and window */
        rill__prof_window(w, to);
}

#endif
