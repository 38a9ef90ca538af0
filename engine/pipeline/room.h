/* The room doorbell: a producer that must not wait (rill_try_emit) is refused
 * instead, arms the queue that refused, and the consumer writes the producing
 * stage's room eventfd (rill_stage_room_fd) once it frees room there.
 *
 * The queue (queue.h) answers "can you take an item now?" (rill__queue_ready)
 * and keeps the flag (queue.armed); this is the protocol around it.
 *
 * Why no wake-up is lost. Consumer, as it hands back a batch that leaves the
 * queue half empty or the ring empty: make room (consumed, empty ring), then
 * increment space's epoch (rill__park_wake), then load armed. Producer: load
 * the epoch (e0), look for room, store armed, load the epoch again (e1). All
 * epoch and armed accesses are sequentially consistent. A hand-back whose
 * increment comes before e0 made room the look sees (the increment releases
 * it, e0 acquires it); one whose increment falls between e0 and e1 changes
 * the epoch, and we look again; one whose increment comes after e1 loads
 * armed after our store and signals. The flag is cleared only together with
 * a write of the eventfd; with no eventfd yet, the consumer leaves the signal
 * owed to the first one made (rill__queue_take_owed). A hand-back that leaves
 * the queue fuller than that neither wakes nor signals, but it leaves batches
 * in the ring, so one that does follows. */
#ifndef RILL_ROOM_H
#define RILL_ROOM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue.h"

/* queue.armed: the producer was refused and waits for the room signal; the
 * consumer freed room before the producing stage had a room eventfd. */
enum { RILL__ROOM_ARMED = 1, RILL__ROOM_OWED = 2 };

/* Producer, after rill__queue_ready said RILL__NO_ROOM: arm the room signal,
 * unless a look again finds room. RILL__ROOM if e may have room now (try
 * again; a spare signal may follow), RILL__NO_ROOM if it has none and the
 * consumer will write the room eventfd once it frees room, or RILL_ENOMEM. */
int rill__queue_arm(rill__queue *e);

/* Producer: signal the room eventfd now (room may be there, but the caller
 * stops looking), or owe the signal to the fd if none is made yet. */
void rill__queue_signal_now(rill__queue *e);

/* Producer, having just made its room eventfd: true if e owes it a signal
 * (the consumer freed room after a refusal while there was no fd); the
 * caller writes it. Clears the debt. */
bool rill__queue_take_owed(rill__queue *e);

/* Consumer, having freed room on an armed e (rill__queue_done): write the
 * room eventfd, or owe it to the one not made yet. */
#if defined(__GNUC__)
__attribute__((cold))
#endif
void rill__queue_room_freed(rill__queue *e);

/* Write 1 to the room eventfd *efd (stored + 1; nothing if 0). Async-signal-
 * safe; errno is left as found. */
void rill__room_signal(_Atomic int *efd);

#endif
