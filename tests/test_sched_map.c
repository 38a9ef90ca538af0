/* The scheduler's id map under a random mix of spawns and kills, against a
 * plain array of which ids are live: kill says 1 exactly for live ids, and
 * the count follows. Killing never-run tasks from outside exercises insert,
 * lookup and delete (with the table growing) without running anything. */
#include <stdlib.h>

#include "rill.h"
#include "rill_test.h"

struct idle {
    rill_gen gen;
};

static int idle_body(rill_gen *g) {
    RILL_GEN_BEGIN(g);
    RILL_YIELD(g, NULL);
    RILL_GEN_END(g);
}

static void idle_free(rill_gen *g) { free(RILL_CONTAINER_OF(g, struct idle, gen)); }

static uint64_t rnd(uint64_t *x) { /* xorshift64 */
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

RILL_TEST(sched_map, random_spawns_and_kills_match_a_reference) {
    enum { OPS = 200000, MAXID = OPS + 1 };
    unsigned char *live = calloc(MAXID + 1, 1);
    rill_sched *s;
    uint64_t next = 1, seed = 88172645463325252u;
    size_t count = 0;
    CHECK(live != NULL);
    CHECK_OK(rill_sched_new(&s));
    for (int op = 0; op < OPS; op++) {
        uint64_t r = rnd(&seed);
        if (r % 3 != 0 || next == 1) { /* spawn, twice as often as kill */
            struct idle *t = malloc(sizeof *t);
            uint64_t id;
            CHECK(t != NULL);
            rill_gen_init(&t->gen, idle_body, NULL);
            CHECK_OK(rill_sched_spawn(s, &t->gen, idle_free, &id));
            CHECK_EQ(id, next);
            live[next++] = 1;
            count++;
        } else {
            /* Mostly recent ids (the common case), sometimes any id, or
             * one never issued. */
            uint64_t span = r % 5 == 0 ? next : (next < 64 ? next : 64);
            uint64_t id = next - 1 - (rnd(&seed) % span);
            if (r % 17 == 0)
                id = next + rnd(&seed) % 10;
            int want = id < next && live[id];
            CHECK_EQ(rill_sched_kill(s, id), want);
            if (want) {
                live[id] = 0;
                count--;
            }
        }
        CHECK_EQ(rill_sched_count(s), count);
    }
    /* Every id is where the reference says. */
    for (uint64_t id = 1; id < next; id++)
        if (live[id]) {
            CHECK_EQ(rill_sched_kill(s, id), 1);
            count--;
        } else {
            CHECK_EQ(rill_sched_kill(s, id), 0);
        }
    CHECK_EQ(count, 0);
    CHECK_EQ(rill_sched_count(s), 0);
    rill_sched_free(s);
    free(live);
}

RILL_TEST(sched_map, ids_a_table_size_apart_survive_among_many_ends) {
    /* Keep every 1024th task, end the others: the survivors' ids are one
     * table size apart for several table sizes. */
    enum { N = 100000 };
    rill_sched *s;
    CHECK_OK(rill_sched_new(&s));
    for (uint64_t i = 1; i <= N; i++) {
        struct idle *t = malloc(sizeof *t);
        CHECK(t != NULL);
        rill_gen_init(&t->gen, idle_body, NULL);
        CHECK_OK(rill_sched_spawn(s, &t->gen, idle_free, NULL));
    }
    for (uint64_t i = 1; i <= N; i++)
        if (i % 1024 != 1)
            CHECK_EQ(rill_sched_kill(s, i), 1);
    CHECK_EQ(rill_sched_count(s), (N + 1023) / 1024);
    for (uint64_t i = 1; i <= N; i++)
        CHECK_EQ(rill_sched_kill(s, i), i % 1024 == 1);
    rill_sched_free(s);
}
