/* Gates (rill/sched.h): tasks that wait for a gate all resume when it is
 * opened, with RILL_ECLOSED, and the gate is down until put up again. */
#include <stdlib.h>

#include "rill.h"
#include "rill_test.h"

enum { NWAIT = 3 };

typedef struct waiter {
    rill_gen gen;
    rill_syscall call;
    rill_sched_gate *gate;
    rill_sched *s;
    int result; /* of the wait; 1 until it returns */
} waiter;

static int waiter_body(rill_gen *g) {
    waiter *w = RILL_CONTAINER_OF(g, waiter, gen);
    RILL_GEN_BEGIN(g);
    if (rill_sched_gate_up(w->s, w->gate) < 0)
        return RILL_ENOMEM;
    RILL_SYSCALL(g, rill_sys_wait(&w->call, w->gate->id, RILL_SCHED_FOREVER));
    w->result = w->call.result;
    RILL_GEN_END(g);
}

/* Opens the gate once every waiter waits (they ran first: FIFO). */
typedef struct opener {
    rill_gen gen;
    rill_sched_gate *gate;
    rill_sched *s;
    uint64_t id_seen;
    int woken_before;
    waiter *w;
} opener;

static int opener_body(rill_gen *g) {
    opener *o = RILL_CONTAINER_OF(g, opener, gen);
    RILL_GEN_BEGIN(g);
    o->id_seen = o->gate->id;
    for (int i = 0; i < NWAIT; i++)
        o->woken_before += o->w[i].result != 1;
    rill_sched_gate_open(o->s, o->gate);
    RILL_GEN_END(g);
}

RILL_TEST(sched_gate, opening_wakes_every_waiter_and_puts_it_down) {
    rill_sched *s;
    CHECK_OK(rill_sched_new(&s));
    rill_sched_gate gate = {0};
    waiter w[NWAIT];
    for (int i = 0; i < NWAIT; i++) {
        w[i] = (waiter){.gate = &gate, .s = s, .result = 1};
        rill_gen_init(&w[i].gen, waiter_body, NULL);
        CHECK_OK(rill_sched_spawn(s, &w[i].gen, NULL, NULL));
    }
    opener o = {.gate = &gate, .s = s, .w = w};
    rill_gen_init(&o.gen, opener_body, NULL);
    CHECK_OK(rill_sched_spawn(s, &o.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK(o.id_seen != 0);       /* one gate, put up by the first waiter */
    CHECK_EQ(o.woken_before, 0); /* nobody passed before it opened */
    for (int i = 0; i < NWAIT; i++)
        CHECK_EQ(w[i].result, RILL_ECLOSED);
    CHECK_EQ(gate.id, 0);        /* down again */
    CHECK_EQ(rill_sched_count(s), 0);
    rill_sched_free(s);
}

RILL_TEST(sched_gate, up_twice_is_one_gate_and_open_when_down_is_nothing) {
    rill_sched *s;
    CHECK_OK(rill_sched_new(&s));
    rill_sched_gate gate = {0};
    rill_sched_gate_open(s, &gate); /* down: nothing */
    CHECK_OK(rill_sched_gate_up(s, &gate));
    uint64_t id = gate.id;
    CHECK(id != 0);
    CHECK_OK(rill_sched_gate_up(s, &gate));
    CHECK_EQ(gate.id, id);
    CHECK_EQ(rill_sched_count(s), 1);
    rill_sched_gate_open(s, &gate);
    CHECK_EQ(gate.id, 0);
    CHECK_EQ(rill_sched_count(s), 0);
    CHECK_OK(rill_sched_gate_up(s, &gate)); /* a new one */
    CHECK(gate.id != 0 && gate.id != id);
    CHECK_EQ(rill_sched_gate_up(NULL, &gate), RILL_EINVAL);
    CHECK_EQ(rill_sched_gate_up(s, NULL), RILL_EINVAL);
    rill_sched_free(s); /* frees the gate that is still up */
    CHECK_EQ(gate.id, 0);
}

/* An owned task reaches its owner by container-of, runs once however often
 * it is put up while alive, and its id is 0 again once it has ended: by
 * itself, or killed (then its on_close runs). */
typedef struct owner {
    int steps, closed, kill_rc;
    int64_t sleep_ns;
    rill_sched *s;
    rill_gen killer;
    rill_sched_owned task;
} owner;

static int owned_body(rill_gen *g) {
    rill_sched_owned *t = RILL_CONTAINER_OF(g, rill_sched_owned, gen);
    owner *o = RILL_CONTAINER_OF(t, owner, task);
    RILL_GEN_BEGIN(g);
    o->steps++;
    RILL_SYSCALL(g, rill_sys_sleep(&t->call, o->sleep_ns));
    o->steps++;
    RILL_GEN_END(g);
}

static int owned_close(rill_gen *g) {
    rill_sched_owned *t = RILL_CONTAINER_OF(g, rill_sched_owned, gen);
    RILL_CONTAINER_OF(t, owner, task)->closed++;
    return 0;
}

/* Kills the owned task once it sleeps (it ran first: FIFO). */
static int killer_body(rill_gen *g) {
    owner *o = RILL_CONTAINER_OF(g, owner, killer);
    RILL_GEN_BEGIN(g);
    o->kill_rc = rill_sched_owned_kill(o->s, &o->task);
    RILL_GEN_END(g);
}

RILL_TEST(sched_gate, an_owned_task_runs_once_and_its_id_clears_when_it_ends) {
    rill_sched *s;
    CHECK_OK(rill_sched_new(&s));
    owner o = {.sleep_ns = 1000};
    o.s = s;
    CHECK_EQ(rill_sched_owned_kill(s, &o.task), 0); /* not alive: nothing */
    CHECK_OK(rill_sched_owned_up(s, &o.task, owned_body, owned_close));
    uint64_t id = o.task.id;
    CHECK(id != 0);
    CHECK_OK(rill_sched_owned_up(s, &o.task, owned_body, owned_close));
    CHECK_EQ(o.task.id, id);
    CHECK_EQ(rill_sched_count(s), 1);
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(o.steps, 2);
    CHECK_EQ(o.closed, 0);
    CHECK_EQ(o.task.id, 0);

    o.steps = 0;
    o.sleep_ns = INT64_MAX;
    CHECK_OK(rill_sched_owned_up(s, &o.task, owned_body, owned_close));
    CHECK(o.task.id > id); /* a new task: ids are never reused */
    rill_gen_init(&o.killer, killer_body, NULL);
    CHECK_OK(rill_sched_spawn(s, &o.killer, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(o.kill_rc, 1);
    CHECK_EQ(o.steps, 1);
    CHECK_EQ(o.closed, 1);
    CHECK_EQ(o.task.id, 0);
    rill_sched_free(s);
}
