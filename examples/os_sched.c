/* The seed's "scheduler for OS" demo: foo and bar are tasks that talk to the
 * scheduler by yielding system calls (GetTid, NewTask, KillTask); the
 * scheduler prints "Task N terminated" as each one ends.
 *
 *     def foo():                              def bar():
 *         tid = yield GetTid()                    tid = yield GetTid()
 *         print(f"I'm foo ... {tid} process")     print(f"I'm bar ... {tid} process")
 *         for i in range(5):                      yield NewTask(foo())
 *             print(f"Foo {tid} is in {i} step")  for i in range(3):
 *             yield                                   print(f"Bar {tid} is in {i} step")
 *                                                     yield
 *                                                 yield KillTask(1)
 *
 * Output: the 19 lines the article shows (tests/test_sched.c checks them). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "rill.h"

struct foo {
    rill_gen gen;
    rill_syscall call;
    uint64_t tid;
    int i;
};

static int foo_body(rill_gen *g) {
    struct foo *f = RILL_CONTAINER_OF(g, struct foo, gen);
    RILL_GEN_BEGIN(g);
    RILL_SYSCALL(g, rill_sys_gettid(&f->call));
    f->tid = f->call.id;
    printf("I'm foo and I am living in %" PRIu64 " process\n", f->tid);
    for (f->i = 0; f->i < 5; f->i++) {
        printf("Foo %" PRIu64 " is in %d step\n", f->tid, f->i);
        RILL_YIELD(g, NULL);
    }
    RILL_GEN_END(g);
}

static rill_gen *foo_new(void) {
    struct foo *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    rill_gen_init(&f->gen, foo_body, NULL);
    return &f->gen;
}

static void foo_free(rill_gen *g) { free(RILL_CONTAINER_OF(g, struct foo, gen)); }

struct bar {
    rill_gen gen;
    rill_syscall call;
    uint64_t tid;
    rill_gen *child;
    int i;
};

static int bar_body(rill_gen *g) {
    struct bar *b = RILL_CONTAINER_OF(g, struct bar, gen);
    RILL_GEN_BEGIN(g);
    RILL_SYSCALL(g, rill_sys_gettid(&b->call));
    b->tid = b->call.id;
    printf("I'm bar and I'm living in %" PRIu64 " process\n", b->tid);
    if (!(b->child = foo_new()))
        return RILL_ENOMEM;
    RILL_SYSCALL(g, rill_sys_spawn(&b->call, b->child, foo_free));
    if (b->call.result < 0) { /* not spawned: the child is still ours */
        foo_free(b->child);
        return b->call.result;
    }
    for (b->i = 0; b->i < 3; b->i++) {
        printf("Bar %" PRIu64 " is in %d step\n", b->tid, b->i);
        RILL_YIELD(g, NULL);
    }
    RILL_SYSCALL(g, rill_sys_kill(&b->call, 1));
    RILL_GEN_END(g);
}

static void print_exit(void *arg, uint64_t id, int status) {
    (void)arg;
    (void)status;
    printf("Task %" PRIu64 " terminated\n", id);
}

int main(void) {
    rill_sched *s;
    struct bar *b = calloc(1, sizeof *b);
    rill_gen *f = foo_new();
    int rc = b && f ? rill_sched_new(&s) : RILL_ENOMEM;
    if (rc < 0) {
        fprintf(stderr, "os_sched: %s\n", rill_strerror(rc));
        free(b);
        if (f)
            foo_free(f);
        return 1;
    }
    rill_gen_init(&b->gen, bar_body, NULL);
    rill_sched_on_exit(s, print_exit, NULL);
    if ((rc = rill_sched_spawn(s, f, foo_free, NULL)) < 0)
        foo_free(f);
    else if ((rc = rill_sched_spawn(s, &b->gen, NULL, NULL)) == 0)
        rc = rill_sched_run(s);
    rill_sched_free(s);
    free(b);
    if (rc < 0) {
        fprintf(stderr, "os_sched: %s\n", rill_strerror(rc));
        return 1;
    }
    return 0;
}
