/* Fault injection (fault.h): the environment is read only in the library
 * built for the tests. */
#include "fault.h"

#ifdef RILL_FAULT_HOOKS
#include <stdlib.h>
#include <string.h>

uint32_t rill__fault_room_arm_ns(void) {
    const char *us = getenv("RILL_FAULT_ROOM_ARM_US");
    unsigned long v = us ? strtoul(us, NULL, 10) : 0;
    return v && v < 1000000 ? (uint32_t)v * 1000u : 0;
}

uint32_t rill__fault_handover_ns(void) {
    const char *us = getenv("RILL_FAULT_HANDOVER_US");
    unsigned long v = us ? strtoul(us, NULL, 10) : 0;
    return v && v < 1000000 ? (uint32_t)v * 1000u : 0;
}

bool rill__fault_thread_start(const char *stage) {
    const char *name = getenv("RILL_FAULT_THREAD_START");
    return name && strcmp(name, stage) == 0;
}

#else

uint32_t rill__fault_room_arm_ns(void) { return 0; }

uint32_t rill__fault_handover_ns(void) { return 0; }

bool rill__fault_thread_start(const char *stage) {
    (void)stage;
    return false;
}

#endif
