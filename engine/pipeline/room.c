/* Emitting without waiting, the part beside the item's path (rill_try_emit
 * is in flow.c): the room eventfd (rill_stage_room_fd) and the arming
 * protocol between a refused producer and the consumer that frees room
 * (room.h). The fd is made by the producing
 * stage, written by consumers and by stops, closed by destroy. */
#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pipeline_int.h"
#include "room.h"

/* ---- the queue's half ------------------------------------------------------- */

int rill__queue_arm(rill__queue *e) {
    uint32_t seen = rill__park_epoch(&e->space);
    e->consumed_seen = atomic_load_explicit(&e->consumed, memory_order_acquire);
    int rc = rill__queue_ready(e);
    if (rc != RILL__NO_ROOM)
        return rc;
    if (RILL__UNLIKELY(e->arm_delay_ns))
        rill__busy_wait(e->arm_delay_ns);
    atomic_store_explicit(&e->armed, RILL__ROOM_ARMED, memory_order_seq_cst);
    return rill__park_epoch(&e->space) == seen ? RILL__NO_ROOM : RILL__ROOM;
}

void rill__room_signal(_Atomic int *efd) {
    int fd = efd ? atomic_load_explicit(efd, memory_order_seq_cst) : 0;
    if (fd > 0) {
        int saved = errno;
        uint64_t one = 1;
        /* A non-blocking eventfd write fails only if the counter is about to
         * overflow (2^64 - 2 unread signals): readable anyway. */
        ssize_t r = write(fd - 1, &one, sizeof one);
        (void)r;
        errno = saved;
    }
}

/* With no eventfd yet, the signal is owed to the first one made: mark it
 * owed, then look for the fd again (rill_stage_room_fd stores the fd, then
 * looks for owed signals; both sequentially consistent, so one of the two
 * sees the other). The flag is cleared by whoever writes the fd. */
void rill__queue_room_freed(rill__queue *e) {
    if (!e->room_efd)
        return;
    if (atomic_load_explicit(e->room_efd, memory_order_seq_cst) == 0) {
        atomic_store_explicit(&e->armed, RILL__ROOM_OWED, memory_order_seq_cst);
        if (atomic_load_explicit(e->room_efd, memory_order_seq_cst) == 0)
            return;
    }
    if (atomic_exchange_explicit(&e->armed, 0, memory_order_seq_cst))
        rill__room_signal(e->room_efd);
}

void rill__queue_signal_now(rill__queue *e) {
    if (e->room_efd && atomic_load_explicit(e->room_efd, memory_order_seq_cst) > 0)
        rill__room_signal(e->room_efd);
    else
        atomic_store_explicit(&e->armed, RILL__ROOM_OWED, memory_order_seq_cst);
}

bool rill__queue_take_owed(rill__queue *e) {
    return atomic_load_explicit(&e->armed, memory_order_seq_cst) == RILL__ROOM_OWED &&
           atomic_exchange_explicit(&e->armed, 0, memory_order_seq_cst) != 0;
}

/* ---- the stage's half -------------------------------------------------------- */

/* A refused producer waits for the room fd, outside rill; its next
 * rill_try_emit (or its close) ends the wait. The time between goes to the
 * refusing queue's wait_full_ns and to the thread's waiting time, as a
 * blocking emit's wait does: otherwise an event-loop source stuck behind a
 * full queue looks busy, and its queue never looks waited on. */
void rill__room_waited(rill_stage *st) {
    uint64_t waited = rill__now_ns() - st->refused_at;
    st->refused_at = 0;
    rill__counter_add(&st->refused->q->wait_full_ns, waited);
    rill__counter_add(st->refused->producer_waited, waited);
}

RILL_API int rill_stage_room_fd(rill_stage *st, int *fd) {
    if (!st || !fd)
        return RILL_EINVAL;
    rill_pipeline *p = st->p;
    if (atomic_load_explicit(&p->phase, memory_order_acquire) == RILL__CLOSED)
        return RILL_ESTATE;
    int efd = atomic_load_explicit(&st->room_efd, memory_order_relaxed);
    if (!efd) {
        int made = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (made < 0)
            return -errno;
        efd = made + 1;
        atomic_store_explicit(&st->room_efd, efd, memory_order_seq_cst);
        /* Signals owed to an fd not made yet: a stop that came first
         * (rill__wake_all writes only the fds it sees) or room freed after a
         * refusal (rill__queue_room_freed). Each side stores, then loads,
         * sequentially consistent: one of the two sees the other. */
        bool owed = atomic_load_explicit(&p->stop, memory_order_seq_cst) != 0;
        for (unsigned i = 0; i < st->nout; i++)
            if (st->out[i].queue && rill__queue_take_owed(st->out[i].queue))
                owed = true;
        if (owed)
            rill__room_signal(&st->room_efd);
    }
    *fd = efd - 1;
    return 0;
}

/* ---- the pipeline's half -------------------------------------------------------- */

void rill__room_signal_all(rill_pipeline *p) {
    /* The stages are fixed once the pipeline has started (before,
     * rill_stage_add may be moving them) and live until destroy; an fd made
     * after this read sees the stop itself (rill_stage_room_fd), a start
     * after it calls this again. */
    if (atomic_load_explicit(&p->phase, memory_order_seq_cst) != RILL__NEW)
        for (unsigned i = 0; i < p->n; i++)
            rill__room_signal(&p->stages[i]->room_efd);
}

void rill__room_fds_close(rill_pipeline *p) {
    for (unsigned i = 0; i < p->n; i++) {
        int efd = atomic_exchange(&p->stages[i]->room_efd, 0);
        if (efd)
            close(efd - 1);
    }
}
