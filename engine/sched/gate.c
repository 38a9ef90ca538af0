/* Gates (rill/sched.h): a task that sleeps until it is killed, so that
 * killing it wakes every task waiting for it. The TCP server's accept task
 * and the TCP line source's refused connections wait on one. */
#include "core/rill_int.h"

static int rill__gate_body(rill_gen *g) {
    rill_sched_gate *gate = RILL_CONTAINER_OF(g, rill_sched_gate, gen);
    RILL_GEN_BEGIN(g);
    RILL_SYSCALL(g, rill_sys_sleep(&gate->call, INT64_MAX));
    RILL_GEN_END(g);
}

static void rill__gate_down(rill_gen *g) { RILL_CONTAINER_OF(g, rill_sched_gate, gen)->id = 0; }

RILL_API int rill_sched_gate_up(rill_sched *s, rill_sched_gate *gate) {
    if (!s || !gate)
        return RILL_EINVAL;
    if (gate->id)
        return 0;
    rill_gen_init(&gate->gen, rill__gate_body, NULL);
    int rc = rill_sched_spawn(s, &gate->gen, rill__gate_down, &gate->id);
    if (rc < 0)
        gate->id = 0;
    return rc;
}

RILL_API void rill_sched_gate_open(rill_sched *s, rill_sched_gate *gate) {
    if (s && gate && gate->id)
        rill_sched_kill(s, gate->id);
}
