/* Which stage a thread's time goes to: per-stage busy time for the stages
 * that share one thread (inline stages on their producer's thread).
 *
 * Timing every inline send would cost two clock reads (about 30 ns each
 * here) per stage per item, more than the send itself. Instead each domain
 * keeps `cur`, the stage whose code runs now (one store per transition into
 * and out of an inline send), and now and then opens a short window: for
 * the next RILL__PROF_LEN transitions it reads the clock at each one and
 * charges the time since the last to the stage that ran in between, less
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

void rill__prof_window(rill__worker *w); /* snapshot.c: a transition in a window */

/* A transition: `to` runs from now on this thread (NULL: none of the
 * pipeline's stages, the pushing caller's own code). */
static inline void rill__prof_switch(rill__worker *w, rill_stage *to) {
    if (RILL__UNLIKELY(w->prof_left) || RILL__UNLIKELY(w->prof_gap-- == 0))
        rill__prof_window(w);
    w->cur = to;
}

#endif
