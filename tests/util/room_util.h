/* Helpers of the rill_try_emit tests (tests/test_thread_room*.c): a
 * threaded sink that checks what it gets and can be held at a gate inside
 * send on its first item, a source that emits with rill_try_emit only and
 * waits for room on the room fd with poll() as an event loop would, and
 * looks at queue and stage counters. Stage callbacks record into their
 * state or atomics; tests check in the test thread. Waits have generous
 * limits; nothing is timed. */
#ifndef RILL_TESTS_ROOM_UTIL_H
#define RILL_TESTS_ROOM_UTIL_H

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "thread_util.h"

enum { WAIT_S = 20, POLL_MS = WAIT_S * 1000 };

/* Items carry their value as an offset into this array, with no bytes: a
 * static item's len bytes are read (the tests' library checks they do not
 * change while queued), so len cannot carry it. Untouched bss: costs no page. */
enum { VALUE_MAX = 1 << 22 };
static const char value_base[VALUE_MAX];

static inline rill_item value(uint64_t v) {
    return rill_item_static(value_base + (v < VALUE_MAX ? v : VALUE_MAX - 1), 0);
}
static inline uint64_t value_of(const rill_item *it) {
    return (uint64_t)((const char *)it->data - value_base);
}

/* 1 if fd is readable within ms, 0 if not, -errno on failure. */
static inline int readable(int fd, int ms) {
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&pf, 1, ms)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n > 0 && (pf.revents & POLLIN);
}

static inline void drain(int fd) {
    uint64_t v;
    while (read(fd, &v, sizeof v) == (ssize_t)sizeof v)
        ;
}

/* ---- the sink --------------------------------------------------------------- */

/* Counts and sums the values it receives and checks they increase (with
 * count == n and sum == n(n-1)/2 that means 0 .. n-1 once each, in order);
 * waits at g (if any) on its first item; with `stall`, now and then busy for
 * a while. */
typedef struct sink {
    gate *g;
    uint64_t next, sum;
    bool bad;
    unsigned stall;      /* one item in `stall` (on average) spins up to 200 us */
    uint64_t rng;
    atomic_int count;    /* items received, for the test thread */
    atomic_int tid;      /* its thread, once it has received an item */
} sink;

static inline int sink_send(rill_stage *st, void *state, const rill_item *it) {
    sink *k = state;
    (void)st;
    if (k->next == 0)
        atomic_store(&k->tid, my_tid());
    if (k->g && k->next == 0)
        gate_pass(k->g);
    uint64_t v = value_of(it);
    if (v < k->next)
        k->bad = true;
    k->next = v + 1;
    k->sum += v;
    atomic_fetch_add(&k->count, 1);
    if (k->stall && rng_next(&k->rng) % k->stall == 0)
        spin_ns(rng_next(&k->rng) % 200000);
    return 0;
}

static const rill_stage_ops sink_ops = {.send = sink_send};

/* ---- the source ------------------------------------------------------------------ */

/* Emits 0 .. n-1 with rill_try_emit only. First, emit until refused
 * (recording what came back) and try `refused` more times; then, if refused,
 * publish the fd, phase 1, and wait for room with poll; phase 2; then emit
 * the rest, waiting on the fd after every refusal. */
typedef struct source {
    uint64_t n, next;
    unsigned refused;          /* extra tries after the first refusal (<= 4) */
    bool flush_each;           /* rill_stage_flush after every item */
    bool stop_after_wait;      /* after the first wait: one more try, then end */
    bool done_after_first;     /* end after the first part */
    bool late_fd;              /* refused: phase 1, wait for go, only then ask
                                  for the fd and look at it without waiting */
    uint64_t emitted_first;    /* items accepted before the first refusal */
    int first_rc, extra_rc[4];
    int wait_rc, after_rc, late_rc;
    unsigned eagain;           /* refusals after the first part */
    bool hung;                 /* a wait for room gave up: a lost wake-up */
    atomic_int fd, phase, go;
    atomic_int waits, woken;   /* waits for room begun in the loop, and ended */
} source;

/* Wait for room as an event loop would: poll the fd, drain, retry. */
static inline int wait_room(rill_stage *st, source *s) {
    int fd;
    int rc = rill_stage_room_fd(st, &fd);
    if (rc)
        return rc;
    atomic_fetch_add(&s->waits, 1);
    rc = readable(fd, POLL_MS);
    atomic_fetch_add(&s->woken, 1);
    if (rc <= 0) {
        s->hung = rc == 0;
        return rill_stage_fail(st, rc ? rc : -ETIMEDOUT, "waiting for room");
    }
    drain(fd);
    return 0;
}

static inline int try_value(rill_stage *st, uint64_t v) {
    rill_item it = value(v);
    return rill_try_emit(st, &it);
}

static inline int source_first(rill_stage *st, source *s) {
    int rc = 0, fd;
    while (s->next < s->n && (rc = try_value(st, s->next)) == 0) {
        s->next++;
        if (s->flush_each)
            rill_stage_flush(st);
    }
    s->emitted_first = s->next;
    s->first_rc = rc;
    for (unsigned i = 0; i < s->refused && i < 4; i++)
        s->extra_rc[i] = try_value(st, s->next);
    if (s->late_fd) {
        atomic_store(&s->phase, 1);
        double end = now_s() + WAIT_S;
        while (!atomic_load(&s->go) && now_s() < end)
            sleep_ms(1);
    }
    if ((rc = rill_stage_room_fd(st, &fd)))
        return rc;
    atomic_store(&s->fd, fd);
    if (s->late_fd) {
        s->late_rc = readable(fd, 0);
    } else if (s->first_rc == RILL_EAGAIN) {
        atomic_store(&s->phase, 1);
        s->wait_rc = readable(fd, POLL_MS);
        drain(fd);
    }
    if (s->stop_after_wait) {
        s->after_rc = try_value(st, s->next);
        atomic_store(&s->phase, 2);
        return s->after_rc ? s->after_rc : RILL_EDONE;
    }
    atomic_store(&s->phase, 2);
    return s->done_after_first ? RILL_EDONE : 0;
}

static inline int source_produce(rill_stage *st, void *state) {
    source *s = state;
    if (atomic_load(&s->phase) < 2) {
        int rc = source_first(st, s);
        if (rc)
            return rc;
    }
    for (unsigned k = 0; k < 1024 && s->next < s->n; k++) {
        int rc = try_value(st, s->next);
        if (rc == 0) {
            s->next++;
        } else if (rc == RILL_EAGAIN) {
            s->eagain++;
            if ((rc = wait_room(st, s)))
                return rc;
        } else {
            return rc;
        }
    }
    return s->next < s->n ? 0 : RILL_EDONE;
}

static const rill_stage_ops source_ops = {.produce = source_produce};

/* ---- building ------------------------------------------------------------------ */

static inline rill_stage *add_source(rill_pipeline *p, source *s, bool threaded) {
    rill_stage_opts o = {.flags = threaded ? RILL_STAGE_THREADED : 0};
    rill_stage *st = NULL;
    atomic_init(&s->fd, -1);
    atomic_init(&s->phase, 0);
    atomic_init(&s->go, 0);
    atomic_init(&s->waits, 0);
    atomic_init(&s->woken, 0);
    return rill_stage_add(p, "source", &source_ops, s, &o, &st) == 0 ? st : NULL;
}

static inline rill_stage *add_sink(rill_pipeline *p, const char *name, sink *k, unsigned cap,
                            unsigned batch, unsigned overflow) {
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = cap, .batch = batch,
                         .overflow = overflow};
    rill_stage *st = NULL;
    atomic_init(&k->count, 0);
    atomic_init(&k->tid, 0);
    return rill_stage_add(p, name, &sink_ops, k, &o, &st) == 0 ? st : NULL;
}

static inline uint64_t items_out(rill_pipeline *p, const char *name) {
    rill_stats *s = NULL;
    uint64_t n = UINT64_MAX;
    if (rill_pipeline_stats(p, &s) == 0)
        for (size_t i = 0; i < s->nstages; i++)
            if (strcmp(s->stages[i].name, name) == 0)
                n = s->stages[i].items_out;
    rill_stats_free(s);
    return n;
}

static inline bool wait_phase(source *s, int want) {
    double end = now_s() + WAIT_S;
    while (atomic_load(&s->phase) < want && now_s() < end)
        sleep_ms(1);
    return atomic_load(&s->phase) >= want;
}

#endif
