/* Futex-backed parking; see park.h for the protocol. */
#include <errno.h>
#include <sched.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "park.h"
#include "stats/stats_int.h"

void rill__park_wait(rill__park *k, uint32_t seen, uint64_t timeout_ns) {
    atomic_fetch_add_explicit(&k->sleepers, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&k->epoch, memory_order_seq_cst) == seen) {
        struct timespec ts, *tsp = NULL;
        if (timeout_ns) {
            ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
            ts.tv_nsec = (long)(timeout_ns % 1000000000u);
            tsp = &ts;
        }
        /* EAGAIN (epoch already moved), EINTR and ETIMEDOUT all just return:
         * the caller re-checks its condition. */
        syscall(SYS_futex, (uint32_t *)&k->epoch, FUTEX_WAIT_PRIVATE, seen, tsp, NULL, 0);
    }
    atomic_fetch_sub_explicit(&k->sleepers, 1, memory_order_seq_cst);
}

void rill__park_wake(rill__park *k) {
    int saved = errno; /* async-signal-safe: leave errno as found */
    atomic_fetch_add_explicit(&k->epoch, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&k->sleepers, memory_order_seq_cst))
        syscall(SYS_futex, (uint32_t *)&k->epoch, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
    errno = saved;
}

enum { RILL__SPIN_ROUNDS = 64, RILL__YIELD_ROUNDS = 16 };

bool rill__backoff(unsigned round) {
    if (round < RILL__SPIN_ROUNDS) {
        rill__cpu_relax();
        return true;
    }
    if (round < RILL__SPIN_ROUNDS + RILL__YIELD_ROUNDS) {
        if (round == RILL__SPIN_ROUNDS) /* from here on a wait costs CPU: count it */
            rill__wait_cpu_mark();
        sched_yield();
        return true;
    }
    return false;
}

void rill__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
