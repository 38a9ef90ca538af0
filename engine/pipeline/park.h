/* Parking a thread until another one signals progress: an event counter
 * ("epoch") plus a futex. Waking is lock-free and async-signal-safe (one
 * atomic increment and, only if someone sleeps, one futex syscall), which is
 * what lets rill_pipeline_abort() run inside a signal handler.
 *
 * Protocol (no lost wake-ups):
 *     uint32_t seen = rill__park_epoch(k);   // 1. snapshot
 *     if (condition holds) ...               // 2. re-check the condition
 *     else rill__park_wait(k, seen);         // 3. sleep unless woken since 1.
 * and the signalling side makes the condition true, then rill__park_wake(k).
 * All four operations are sequentially consistent, so either the waker sees
 * the sleeper registered, or the sleeper sees the new epoch. */
#ifndef RILL_PARK_H
#define RILL_PARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct rill__park {
    _Atomic uint32_t epoch;
    _Atomic uint32_t sleepers;
} rill__park;

static inline void rill__park_init(rill__park *k) {
    atomic_init(&k->epoch, 0);
    atomic_init(&k->sleepers, 0);
}

static inline uint32_t rill__park_epoch(rill__park *k) {
    return atomic_load_explicit(&k->epoch, memory_order_seq_cst);
}

/* Sleep until the epoch differs from seen (or a spurious wake-up, or the
 * timeout in nanoseconds passes; 0 = none). Callers loop on their condition. */
void rill__park_wait(rill__park *k, uint32_t seen, uint64_t timeout_ns);

/* Advance the epoch and wake every sleeper. Async-signal-safe. */
void rill__park_wake(rill__park *k);

/* Spin briefly (a few microseconds at most) for progress before parking:
 * hand-offs between two running threads then cost no syscall. */
void rill__cpu_relax(void);

/* One round of waiting before parking: a pause for the first rounds, then a
 * sched_yield() for a bounded number more. Returns false once it is time to
 * park. Waking a parked thread costs 5-14 us here, more than a producer
 * takes to fill a batch, so parking on every empty moment halves a hop's
 * throughput; yielding keeps the thread ready without burning a core that
 * another runnable thread wants (six stages on two cores). */
bool rill__backoff(unsigned round);

#endif
