/* rill_try_emit's room fd and stops (tests/util/room_util.h): an abort or a
 * stage's error wakes a loop waiting for room, and its next rill_try_emit
 * returns the stop; an fd made after the room was freed, or after a stop,
 * or before the start is readable when it must be (the signal is owed to
 * it). RILL_STAGE_THREADED sinks throughout. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "room_util.h"

/* ---- a stop wakes a waiting loop ---------------------------------------------------- */

/* The source waits for room behind a held sink; the test aborts (or a third
 * stage fails): the fd becomes readable and rill_try_emit returns the stop. */
typedef struct failer {
    gate *g;
} failer;

static int failer_send(rill_stage *st, void *state, const rill_item *it) {
    failer *f = state;
    (void)it;
    gate_pass(f->g);
    return rill_stage_fail(st, -EPIPE, "told to fail");
}

static const rill_stage_ops failer_ops = {.send = failer_send};

static void stop_while_waiting(bool abort_it) {
    enum { CAP = 4 };
    rill_pipeline *p = NULL;
    gate g, gf;
    gate_init(&g);
    gate_init(&gf);
    sink k = {.g = &g};
    failer f = {.g = &gf};
    source s = {.n = 100, .stop_after_wait = true};
    rill_stage_opts t = {.flags = RILL_STAGE_THREADED};
    CHECK_OK(rill_pipeline_new("stop", &p));
    rill_stage *src = add_source(p, &s, true), *fs = NULL;
    rill_stage *snk = add_sink(p, "sink", &k, CAP, 0, RILL_OVERFLOW_BLOCK);
    CHECK_OK(rill_stage_add(p, "fail", &failer_ops, &f, &t, &fs));
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    CHECK_OK(rill_connect(src, fs));
    CHECK_OK(rill_pipeline_start(p));
    bool waited = wait_phase(&s, 1);
    int quiet = readable(atomic_load(&s.fd), 0);
    sleep_ms(20);
    int still_waiting = atomic_load(&s.phase) == 1;
    if (abort_it)
        rill_pipeline_abort(p);
    else
        gate_open(&gf);
    bool woke = wait_phase(&s, 2);
    gate_open(&g);
    gate_open(&gf);
    int rc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    gate_fini(&g);
    gate_fini(&gf);

    int want = abort_it ? RILL_EABORTED : -EPIPE;
    CHECK(waited);
    CHECK_EQ(quiet, 0);
    CHECK(still_waiting);
    CHECK(woke);
    CHECK_EQ(s.wait_rc, 1);
    CHECK_EQ(s.after_rc, want);
    CHECK_EQ(rc, want);
}

RILL_TEST(room, abort_wakes_a_loop_waiting_for_room) { stop_while_waiting(true); }
RILL_TEST(room, an_error_wakes_a_loop_waiting_for_room) { stop_while_waiting(false); }

/* ---- the fd made late ---------------------------------------------------------------- */

/* Refused before the fd existed; then either room freed before the fd was
 * made, or the pipeline stopped while the sink still holds the queue
 * (nothing frees room). Either way the new fd is readable at once: the
 * consumer kept its signal for the fd, and rill_stage_room_fd looks at the
 * stop itself (rill__wake_all wrote only the fds that existed). */
static void late_fd(bool stop_it) {
    enum { N = 2000, CAP = 7 };
    rill_pipeline *p = NULL;
    gate g;
    gate_init(&g);
    sink k = {.g = &g};
    source s = {.n = N, .late_fd = true};
    CHECK_OK(rill_pipeline_new("late", &p));
    rill_stage *src = add_source(p, &s, true);
    rill_stage *snk = add_sink(p, "sink", &k, CAP, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    CHECK_OK(rill_pipeline_start(p));
    bool refused = wait_phase(&s, 1), drained = true, parked = true;
    if (stop_it) {
        rill_pipeline_abort(p);
    } else {
        gate_open(&g);
        /* The sink has handed the batch back once it sleeps after item
         * CAP-1 (it parks waiting for input only after the hand-back). */
        drained = wait_for(&k.count, CAP, WAIT_S);
        parked = false;
        for (double end = now_s() + WAIT_S; drained && !parked && now_s() < end; sleep_ms(1))
            parked = queue_to(p, "sink").out == CAP && thread_state(atomic_load(&k.tid)) == 'S';
    }
    atomic_store(&s.go, 1);
    bool looked = wait_phase(&s, 2);
    gate_open(&g);
    int rc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    gate_fini(&g);

    CHECK(refused);
    CHECK(drained);
    CHECK(parked);
    CHECK(looked);
    CHECK_EQ(s.first_rc, RILL_EAGAIN);
    CHECK_EQ(s.late_rc, 1);
    CHECK(!s.hung);
    if (stop_it) {
        CHECK_EQ(rc, RILL_EABORTED);
    } else {
        CHECK_OK(rc);
        CHECK_EQ(atomic_load(&k.count), N);
        CHECK(!k.bad);
    }
}

RILL_TEST(room, fd_made_after_the_room_was_freed_is_readable) { late_fd(false); }
RILL_TEST(room, fd_made_after_an_abort_is_readable) { late_fd(true); }

/* An fd made before the start, and an abort before the start: readable once
 * the pipeline starts (a loop may wait on it before its first try). */
RILL_TEST(room, abort_before_start_signals_at_start) {
    rill_pipeline *p = NULL;
    sink k = {0};
    source s = {.n = 10};
    int fd = -1, fd2 = -1;
    CHECK_OK(rill_pipeline_new("early", &p));
    rill_stage *src = add_source(p, &s, false);
    rill_stage *snk = add_sink(p, "sink", &k, 4, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    CHECK_OK(rill_stage_room_fd(src, &fd));
    CHECK_OK(rill_stage_room_fd(src, &fd2));
    CHECK_EQ(fd, fd2);
    int quiet = readable(fd, 0);
    rill_pipeline_abort(p);
    int rc_start = rill_pipeline_start(p);
    int woke = readable(fd, 0);
    int rc = rill_pipeline_close(p);
    int after = rill_stage_room_fd(src, &fd2);
    rill_pipeline_free(p);

    CHECK_EQ(quiet, 0);
    CHECK_OK(rc_start);
    CHECK_EQ(woke, 1);
    CHECK_EQ(rc, RILL_EABORTED);
    CHECK_EQ(after, RILL_ESTATE);
    CHECK_EQ(atomic_load(&k.count), 0);
}
