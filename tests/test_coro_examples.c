/* The coroutine examples print exactly what the seed article shows for its
 * Python programs (literal strings from the article, not from a past run).
 * Python's print(x, end=' ') leaves a trailing space and no newline; the
 * examples end the line without the trailing space (docs/coroutines.md). */
#include <stdio.h>
#include <stdlib.h>

#include "rill.h"
#include "rill_test.h"
#include "run_cmd.h"

#define BIN(name) "'" RILL_BIN_DIR "/" name "'"

RILL_TEST(coro_examples, fib_prints_the_first_ten_fibonacci_numbers) {
    char out[256];
    CHECK_EQ(run(BIN("fib"), out, sizeof out), 0);
    CHECK_STREQ(out, "0 1 1 2 3 5 8 13 21 34\n");
}

RILL_TEST(coro_examples, say_prints_three_words_then_stop_iteration) {
    char out[256];
    CHECK_EQ(run(BIN("say") " 2>/dev/null", out, sizeof out), 0);
    CHECK_STREQ(out, "C\nJava\nPython\n");
    CHECK_EQ(run(BIN("say") " 2>&1 >/dev/null", out, sizeof out), 0); /* stderr only */
    CHECK_STREQ(out, "StopIteration\n");
}

RILL_TEST(coro_examples, tree_walk_visits_the_seed_tree_in_order) {
    char out[256];
    CHECK_EQ(run(BIN("tree_walk"), out, sizeof out), 0);
    CHECK_STREQ(out, "7 8 1 2 9 10 3 0 4 5 6\n");
}

RILL_TEST(coro_examples, coro_fn_sends_then_closes) {
    char out[256];
    CHECK_EQ(run(BIN("coro_fn") " 2>&1", out, sizeof out), 0);
    CHECK_STREQ(out, "Starting\nConsume data\nHello World\n");
}
