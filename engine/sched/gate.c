/* Owned tasks and gates (rill/sched.h). An owned task is spawned with a
 * free_fn that zeroes its id, so its owner can tell at any time whether it
 * lives without keeping a second record. A gate is an owned task that
 * sleeps until it is killed, so that killing it wakes every task waiting
 * for it: the TCP server's accept task and the TCP line source's refused
 * connections wait on one. */
#include "core/rill_int.h"

static void rill__owned_gone(rill_gen *g) { RILL_CONTAINER_OF(g, rill_sched_owned, gen)->id = 0; }

RILL_API int rill_sched_owned_up(rill_sched *s, rill_sched_owned *t, rill_gen_body_fn body,
                                 rill_gen_close_fn on_close) {
    if (!s || !t || !body)
        return RILL_EINVAL;
    if (t->id)
        return 0;
    rill_gen_init(&t->gen, body, on_close);
    int rc = rill_sched_spawn(s, &t->gen, rill__owned_gone, &t->id);
    if (rc < 0)
        t->id = 0;
    return rc;
}

RILL_API int rill_sched_owned_kill(rill_sched *s, rill_sched_owned *t) {
    if (!s || !t || !t->id)
        return 0;
    return rill_sched_kill(s, t->id);
}

static int rill__gate_body(rill_gen *g) {
    rill_sched_gate *gate = RILL_CONTAINER_OF(g, rill_sched_gate, gen);
    RILL_GEN_BEGIN(g);
    RILL_SYSCALL(g, rill_sys_sleep(&gate->call, INT64_MAX));
    RILL_GEN_END(g);
}

RILL_API int rill_sched_gate_up(rill_sched *s, rill_sched_gate *gate) {
    return rill_sched_owned_up(s, gate, rill__gate_body, NULL);
}

RILL_API void rill_sched_gate_open(rill_sched *s, rill_sched_gate *gate) {
    rill_sched_owned_kill(s, gate);
}
