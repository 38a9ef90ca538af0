/* The library's one counter: a count that a single thread writes and other
 * threads read while it runs (statistics, progress reports).
 *
 * The writer adds with a load and a store, not a read-modify-write: no
 * locked instruction, which the item's path could not afford per item. That
 * is sound only with one writer per counter. Both are relaxed: a stronger
 * store would also keep the compiler from holding anything in registers
 * across it (measured: a few instructions more per item on the emit path).
 * A reader that needs the count ordered with other state orders its own
 * reads (the queue counters' snapshot, stats/stats_int.h).
 *
 * rill__counter_add(&c, n) takes an `_Atomic uint64_t` counter, or a plain
 * `uint64_t` field of a public struct (which C++ callers must be able to
 * include, so it cannot be _Atomic; readers load it with __atomic_load_n). */
#ifndef RILL_COUNTER_H
#define RILL_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

static inline void rill__counter_add_atomic(_Atomic uint64_t *c, uint64_t n) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void rill__counter_add_plain(uint64_t *c, uint64_t n) {
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

#define rill__counter_add(c, n)                                                            \
    _Generic((c), _Atomic uint64_t *: rill__counter_add_atomic,                           \
             uint64_t *: rill__counter_add_plain)(c, n)

/* The same for a gauge, which also goes down (modulo 2^64, as unsigned
 * arithmetic is): one writer, readers see each value whole. */
#define rill__counter_sub(c, n) rill__counter_add(c, -(uint64_t)(n))

#endif
