/* rill_try_emit under load (tests/util/room_util.h): a million items through
 * capacities 1, 7 and 4096 into a RILL_STAGE_THREADED sink that stalls at
 * random, with the source threaded and inline, and the arming window
 * forced open (RILL_FAULT_ROOM_ARM_US): everything arrives once, in order,
 * and no wait for room ever gives up. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "room_util.h"

/* ---- a million items ------------------------------------------------------------------ */

/* ThreadSanitizer makes every hand-off and system call far dearer; with
 * capacity 1 each item is a wake-up through the fd (about 50 s for a million
 * items there): a tenth of the items keeps the TSan run in the CI budget. */
#if defined(__SANITIZE_THREAD__)
#define ROOM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ROOM_TSAN 1
#endif
#endif
#ifdef ROOM_TSAN
enum { MILLION_CAP1 = 100000 };
#else
enum { MILLION_CAP1 = 1000000 };
#endif

/* try_emit + poll only, against a sink that stalls at random: everything
 * arrives once, in order, and no wait for room ever gives up. */
static void million(unsigned cap, bool threaded_source) {
    const uint64_t n = cap == 1 ? MILLION_CAP1 : 1000000;
    rill_pipeline *p = NULL;
    sink k = {.stall = 2000, .rng = 0x5eed0000u + cap};
    source s = {.n = n};
    CHECK_OK(rill_pipeline_new("million", &p));
    rill_stage *src = add_source(p, &s, threaded_source);
    rill_stage *snk = add_sink(p, "sink", &k, cap, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    int rc = rill_pipeline_run(p);
    rill_pipeline_free(p);

    CHECK_OK(rc);
    CHECK(!s.hung);
    CHECK(!k.bad);
    CHECK_EQ(atomic_load(&k.count), n);
    CHECK_EQ(k.sum, n * (n - 1) / 2);
    CHECK_EQ(s.next, n);
}

RILL_TEST(room, million_capacity_1_threaded_source) { million(1, true); }
RILL_TEST(room, million_capacity_7_threaded_source) { million(7, true); }
RILL_TEST(room, million_capacity_4096_threaded_source) { million(4096, true); }
RILL_TEST(room, million_capacity_1_inline_source) { million(1, false); }
RILL_TEST(room, million_capacity_7_inline_source) { million(7, false); }
RILL_TEST(room, million_capacity_4096_inline_source) { million(4096, false); }

/* ---- a hand-back while the source arms ------------------------------------------------- */

/* The window the arming protocol exists for: the consumer frees the last
 * room after the source's look found none, but before the source armed the
 * queue, so the consumer sees no flag and writes nothing. Only the source's
 * second look at the wake-up epoch notices; without it the source would
 * wait on a quiet fd with an empty queue. A stress run alone almost never
 * lands there (a few nanoseconds between a load and a store):
 * RILL_FAULT_ROOM_ARM_US makes every refused source spin that long between
 * its look and arming, so a fast sink's hand-back falls inside nearly every
 * time. Every item must arrive and no wait may give up. */
static void hand_back_while_arming(unsigned cap, bool threaded_source) {
    enum { N = 20000 };
    rill_pipeline *p = NULL;
    sink k = {0};
    source s = {.n = N};
    CHECK_OK(rill_pipeline_new("arming", &p));
    rill_stage *src = add_source(p, &s, threaded_source);
    rill_stage *snk = add_sink(p, "sink", &k, cap, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    CHECK(setenv("RILL_FAULT_ROOM_ARM_US", "20", 1) == 0);
    int rc_start = rill_pipeline_start(p); /* queues are built, and read it, here */
    unsetenv("RILL_FAULT_ROOM_ARM_US");
    int rc = rill_pipeline_run(p);
    rill_pipeline_free(p);

    CHECK_OK(rc_start);
    CHECK_OK(rc);
    CHECK(!s.hung);
    CHECK(!k.bad);
    CHECK_EQ(atomic_load(&k.count), N);
    CHECK_EQ(k.sum, (uint64_t)N * (N - 1) / 2);
    CHECK(s.eagain > 0);
}

RILL_TEST(room, hand_back_while_arming_capacity_1_threaded) { hand_back_while_arming(1, true); }
RILL_TEST(room, hand_back_while_arming_capacity_1_inline) { hand_back_while_arming(1, false); }
RILL_TEST(room, hand_back_while_arming_capacity_7_threaded) { hand_back_while_arming(7, true); }
