/* The engine's FIFO building block (engine/core/fifo.h), which the inline
 * depth limit's held items and barrier alignment's stashes share. The
 * library hides its internal symbols, so this test compiles the building
 * block itself. Expected orders come from a plain counter kept beside it. */
#include <stdint.h>

#include "rill_test.h"
#include "../engine/core/fifo.c"

struct entry {
    uint64_t seq;
    char pad[20]; /* an odd size: entries are not pointer-sized */
};

/* Push and pop in an interleaving that wraps the ring at every size it
 * grows through; every pop must give the oldest entry. */
RILL_TEST(fifo, keeps_order_across_wraps_and_growth) {
    rill__fifo f = {0};
    uint64_t pushed = 0, popped = 0;
    for (int round = 1; round <= 200; round++) {
        for (int k = 0; k < round % 37 + 3; k++) {
            struct entry *e = rill__fifo_reserve(&f, sizeof *e);
            CHECK(e != NULL);
            *e = (struct entry){.seq = pushed++};
            rill__fifo_commit(&f);
        }
        struct entry out;
        for (int k = 0; k < round % 29 + 1 && rill__fifo_pop(&f, &out, sizeof out); k++)
            CHECK_EQ(out.seq, popped++);
        CHECK_EQ(f.n, pushed - popped);
        CHECK(f.cap >= f.n);
    }
    struct entry out;
    while (rill__fifo_pop(&f, &out, sizeof out))
        CHECK_EQ(out.seq, popped++);
    CHECK_EQ(popped, pushed);
    CHECK(f.cap > 16); /* it grew on the way */
    rill__fifo_free(&f);
    CHECK(f.e == NULL && f.n == 0 && f.cap == 0);
}

/* An entry reserved but not committed (its filling failed) is not there. */
RILL_TEST(fifo, an_uncommitted_reserve_leaves_nothing) {
    rill__fifo f = {0};
    struct entry out;
    struct entry *e = rill__fifo_reserve(&f, sizeof *e);
    CHECK(e != NULL);
    e->seq = 7;
    CHECK_EQ(f.n, 0);
    CHECK(!rill__fifo_pop(&f, &out, sizeof out));
    e = rill__fifo_reserve(&f, sizeof *e);
    e->seq = 8;
    rill__fifo_commit(&f);
    CHECK(rill__fifo_pop(&f, &out, sizeof out));
    CHECK_EQ(out.seq, 8);
    CHECK(!rill__fifo_pop(&f, &out, sizeof out));
    rill__fifo_free(&f);
}

/* rill__fifo_at counts from the oldest entry, across the wrap. */
RILL_TEST(fifo, at_counts_from_the_oldest_entry) {
    rill__fifo f = {0};
    struct entry out;
    for (uint64_t i = 0; i < 16; i++) {
        struct entry *e = rill__fifo_reserve(&f, sizeof *e);
        CHECK(e != NULL);
        e->seq = i;
        rill__fifo_commit(&f);
    }
    for (int i = 0; i < 10; i++)
        CHECK(rill__fifo_pop(&f, &out, sizeof out));
    for (uint64_t i = 16; i < 24; i++) { /* wraps: the ring still has 16 */
        struct entry *e = rill__fifo_reserve(&f, sizeof *e);
        e->seq = i;
        rill__fifo_commit(&f);
    }
    CHECK_EQ(f.cap, 16);
    for (size_t k = 0; k < f.n; k++)
        CHECK_EQ(((struct entry *)rill__fifo_at(&f, k, sizeof(struct entry)))->seq, 10 + k);
    rill__fifo_free(&f);
}
