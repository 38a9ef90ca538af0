/* Fault injection, for tests only. The library the tests link (CMake target
 * rill_testing, built with RILL_FAULT_HOOKS) reads these from the
 * environment; the installed library (rill) answers "no fault" and reads
 * nothing. Both come from the same objects but fault.c. */
#ifndef RILL_FAULT_H
#define RILL_FAULT_H

#include <stdbool.h>
#include <stdint.h>

/* Nanoseconds a refused rill_try_emit spins between its look for room and
 * arming the queue (RILL_FAULT_ROOM_ARM_US, under one second), so that a
 * consumer's hand-back lands in that window; 0 normally. Read when the
 * queues are built, at start. */
uint32_t rill__fault_room_arm_ns(void);

/* True if the thread of the stage named `stage` is to fail to start, as if
 * pthread_create said EAGAIN (RILL_FAULT_THREAD_START=name). */
bool rill__fault_thread_start(const char *stage);

/* RILL_FAULT_HANDOVER_US: nanoseconds a producer spins inside each publish,
 * with the hand-over open, as if preempted there, so that statistics
 * readers hit their retry bound; 0 normally. Read when queues are built. */
uint32_t rill__fault_handover_ns(void);

#endif
