/* The ledger the Redis source and its sink share (stages/redis/conn.c),
 * without a server. The library hides its internal symbols, so this test
 * compiles the file itself.
 *
 * What it pins down: the source skips an entry XAUTOCLAIM returns while the
 * ledger holds it, and a batch the sink has taken to commit is still held
 * until its commit is over (rill__ledger_done). A ledger that forgot the
 * batch at the take would let the source emit the entries of a slow commit
 * again; past max_deliveries they would go to the dead letters. The
 * end-to-end test (redis_api.slow_commit_...) cannot catch that window: it
 * is as long as one EVALSHA. */
#include <stdlib.h>
#include <string.h>

#include "rill_test.h"
#include "../stages/redis/conn.c"

/* A batch's ID array as rill__ledger_put takes it (the ledger frees it). */
static char **ids_of(const char *a, const char *b) {
    char **ids = calloc(2, sizeof *ids);
    if (ids) {
        ids[0] = strdup(a);
        ids[1] = b ? strdup(b) : NULL;
    }
    return ids;
}

RILL_TEST(redis_ledger, a_batch_being_committed_is_held_until_done) {
    rill__ledger l;
    CHECK_OK(rill__ledger_init(&l));
    CHECK_OK(rill__ledger_put(&l, 1, ids_of("1-0", "1-1"), 2));
    CHECK_OK(rill__ledger_put(&l, 2, ids_of("2-0", NULL), 1));
    CHECK(rill__ledger_holds(&l, "1-1"));
    CHECK(rill__ledger_holds(&l, "2-0"));
    CHECK(!rill__ledger_holds(&l, "3-0"));

    rill__batch *b = rill__ledger_take(&l, 1);
    CHECK(b != NULL);
    CHECK_EQ(rill__ledger_open(&l), 2);
    CHECK(rill__ledger_holds(&l, "1-0")); /* its commit is not over */
    CHECK(rill__ledger_holds(&l, "1-1"));
    CHECK(rill__ledger_take(&l, 1) == NULL); /* taken once */
    CHECK(rill__ledger_holds(&l, "1-0")); /* a take that finds nothing changes nothing */
    rill__ledger_done(&l, b);
    rill__batch_free(b);
    CHECK_EQ(rill__ledger_open(&l), 1);
    CHECK(!rill__ledger_holds(&l, "1-0")); /* acknowledged: no longer in flight */
    CHECK(rill__ledger_holds(&l, "2-0"));

    b = rill__ledger_take(&l, 2);
    CHECK(b != NULL);
    CHECK(rill__ledger_holds(&l, "2-0"));
    rill__ledger_done(&l, b);
    rill__batch_free(b);
    CHECK_EQ(rill__ledger_open(&l), 0);
    CHECK(!rill__ledger_holds(&l, "2-0"));
    rill__ledger_fini(&l);
}
